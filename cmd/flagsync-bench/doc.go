// Command flagsync-bench measures flagsync against an in-process sandbox with fixed,
// generated inputs and prints the figures: API calls against the minimum possible,
// 429s, wall time.
//
// Usage:
//
//	go run ./cmd/flagsync-bench sync -n 1000
//
// Each scenario is a subcommand; add one by writing a function with the scenario
// signature and listing it in scenarios.
package main
