// Package buildinfo says which build of flagsync is running: its version, the commit it
// was built from and the Go version, for `flagsync version`, the daemon's /status and
// the flagsync_build_info metric.
package buildinfo
