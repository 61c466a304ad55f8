// Package lifecycle reports where each flag in Git stands in its life: its owner, age and
// expiry, the vendor's own health, the environments it has been fully on or fully off in
// for a while, and flags archived in the service but still in Git.
package lifecycle
