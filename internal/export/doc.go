// Package export turns live Kameleoon flags into flag files in flagsync's format, so an
// existing account can be adopted without retyping it.
package export
