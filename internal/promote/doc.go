// Package promote copies one environment's block of a flag file onto another's, keeping
// what is environment-specific, and edits the file's text so that everything else is
// left exactly as written.
package promote
