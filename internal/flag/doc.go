// Package flag defines the vendor-neutral model of a Kameleoon feature flag that the
// loader produces from YAML, the API client produces from live state, and the planner diffs.
package flag
