// Package splitload finds and reads the Split flag files of a repository (vendor: split
// in flagsync.yaml or in a file), validates them against the Split JSON Schema and
// Split's rules, and returns the desired Split flags or every problem with its file,
// line and column.
package splitload
