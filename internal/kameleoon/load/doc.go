// Package kload reads a Kameleoon flag repository from an fs.FS, validates every flag
// file against the embedded JSON Schema and Kameleoon's semantic rules, and returns the
// desired flags or every problem found, each with its file, line and column.
package kload
