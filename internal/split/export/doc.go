// Package splitexport writes a live Split workspace as flag files that flagsync loads
// back as exactly those flags, and verifies that they plan to nothing.
package splitexport
