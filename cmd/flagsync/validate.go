package main

import (
	"context"
	"fmt"
)

// cmdValidate is being built; this placeholder is replaced by the real command.
func cmdValidate(_ context.Context, a *app, _ []string) int {
	fmt.Fprintln(a.stderr, "flagsync validate: not built yet")
	return exitFail
}
