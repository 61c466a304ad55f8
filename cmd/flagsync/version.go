package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/flagsync/flagsync/internal/buildinfo"
)

const versionSynopsis = `Usage: flagsync version [--format text|json]

Prints the build of this binary: its version (a release's, set at build time; the module
version of go install …@vX.Y.Z; else devel), the commit it was built from and that
commit's date, whether the work tree was modified, and the Go version. flagsync --version
prints the same.

Examples:
  flagsync version
  flagsync version --format json | jq -r .commit`

func cmdVersion(_ context.Context, a *app, args []string) int {
	fs := a.newFlagSet("version", versionSynopsis)
	format := fs.String("format", "text", "output: text or json")
	fs.Enum("format", "text", "json")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	info := buildinfo.Get()
	if *format == "json" {
		b, _ := json.MarshalIndent(info, "", "  ")
		fmt.Fprintf(a.stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(a.stdout, "%s\n%s", info, info.Details())
	return exitOK
}
