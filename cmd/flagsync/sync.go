package main

import (
	"context"
	"fmt"
)

// cmdSync is being built; this placeholder is replaced by the real command.
func cmdSync(_ context.Context, a *app, _ []string) int {
	fmt.Fprintln(a.stderr, "flagsync sync: not built yet")
	return exitFail
}
