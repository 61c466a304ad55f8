package main

import (
	"context"
	"fmt"
)

// cmdRun is being built; this placeholder is replaced by the real command.
func cmdRun(_ context.Context, a *app, _ []string) int {
	fmt.Fprintln(a.stderr, "flagsync run: not built yet")
	return exitFail
}
