// Package kexport writes live Kameleoon flags as flag files that flagsync loads back as
// exactly those flags, and verifies that they plan to nothing.
package kexport
