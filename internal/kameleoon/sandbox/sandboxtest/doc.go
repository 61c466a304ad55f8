// Package ksandboxtest starts Kameleoon's sandbox for tests of any package; it is kept
// out of the sandbox package so that the binary never links testing.
package ksandboxtest
