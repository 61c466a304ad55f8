package main

import (
	"context"
	"fmt"
)

// cmdSandbox is being built; this placeholder is replaced by the real command.
func cmdSandbox(_ context.Context, a *app, _ []string) int {
	fmt.Fprintln(a.stderr, "flagsync sandbox: not built yet")
	return exitFail
}
