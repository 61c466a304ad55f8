// Package splitplan computes the plan that brings live Split flags in line with the Split
// flag files: creates, then one RFC 6902 JSON Patch per changed definition, as shared
// plan.Change values the plan renderers and apply already handle.
package splitplan
