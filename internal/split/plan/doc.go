// Package splitplan computes the plan that brings live Split flags in line with the
// flags in Git, and is the one place Split's definitions are compared: treatments,
// rules and sets are aligned once (patch.go) for both the RFC 6902 JSON Patch each change
// sends and the account of the change people read in the plan.
package splitplan
