// Package kload reads a Kameleoon flag repository from an fs.FS, validates every flag
// file against the embedded JSON Schema and Kameleoon's semantic rules, and returns the
// desired flags or every problem found, each with its file, line and column.
//
// A valid file takes the fast path (fast.go): decoded from its YAML node tree straight
// into the model, the schema's constraints and the semantic rules checked in Go. A file
// with any problem takes the schema path, which writes the diagnostics, so the schema
// stays the contract. With Options.Cache, what each file gave is kept in the validation
// cache (internal/loadcache, docs/cache.md) and an unchanged file is not parsed again.
package kload
