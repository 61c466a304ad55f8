// Package schema embeds the JSON Schemas of flag files and of flagsync.yaml, the same
// files that editors and other validators read from the repository.
package schema
