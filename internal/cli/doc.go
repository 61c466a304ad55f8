// Package cli is flagsync's command-line framework on the standard library's flag
// package: a command's flags with one environment variable each, the values a flag
// takes, help text as users see it, "did you mean" for mistyped flags and commands, and
// shell completion for bash, zsh and fish.
package cli
