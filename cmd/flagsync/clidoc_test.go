package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "regenerate docs/cli.md from the commands' help")

// TestCLIReferenceUpToDate keeps docs/cli.md — every command, flag, default and
// environment variable — equal to what the binary's help says.
// Regenerate with `go test ./cmd/flagsync -run TestCLIReference -update-docs`.
func TestCLIReferenceUpToDate(t *testing.T) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	fmt.Fprintln(&b, "# Command reference")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "<!-- Generated from the commands' help by `go test ./cmd/flagsync -run TestCLIReference -update-docs`; do not edit by hand. -->")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Every flag's default is shown; the environment variable that sets it is named in its description.")
	fmt.Fprintln(&b, "Secrets are read only from the environment, or from the file named by the variable + `_FILE`.")
	fmt.Fprintln(&b)
	for _, n := range names {
		fmt.Fprintf(&b, "- [`flagsync %s`](#flagsync-%s): %s\n", n, n, commands[n].summary)
	}
	for _, n := range names {
		fmt.Fprintf(&b, "\n## flagsync %s\n\n```text\n%s```\n", n, helpText(t, n))
	}
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *updateDocs {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with -update-docs)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Error("docs/cli.md is out of date with the commands: run `go test ./cmd/flagsync -run TestCLIReference -update-docs`")
	}
}
