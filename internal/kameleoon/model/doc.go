// Package kmodel is the model of a Kameleoon feature flag that Kameleoon's loader
// produces from YAML, its API client produces from live state, and its planner diffs.
package kmodel
