package main

import (
	"context"
	"fmt"
)

// cmdPlan is being built; this placeholder is replaced by the real command.
func cmdPlan(_ context.Context, a *app, _ []string) int {
	fmt.Fprintln(a.stderr, "flagsync plan: not built yet")
	return exitFail
}
