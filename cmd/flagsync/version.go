package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func cmdVersion(_ context.Context, a *app, args []string) int {
	fs := a.newFlagSet("version", "Usage: flagsync version\n\nPrints the version of this binary (set at build time with -ldflags \"-X main.version=v1.2.3\", else the module version).\n\nExample:\n  flagsync version")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(a.stdout, "flagsync %s\n", v)
	return exitOK
}
