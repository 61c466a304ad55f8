package main

import (
	"context"
	"fmt"
)

// cmdExport is being built; this placeholder is replaced by the real command.
func cmdExport(_ context.Context, a *app, _ []string) int {
	fmt.Fprintln(a.stderr, "flagsync export: not built yet")
	return exitFail
}
