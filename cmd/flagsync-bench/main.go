package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// scenario runs one benchmark with its own flags and prints its figures to stdout.
type scenario struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var scenarios = map[string]scenario{
	"sync": {"sync N generated flags into a sandbox at Kameleoon's rate limits (time-scaled), then a 1% change", benchSync},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 64
	}
	sc, ok := scenarios[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "flagsync-bench: unknown scenario %q\n\n", args[0])
		usage(stderr)
		return 64
	}
	return sc.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: flagsync-bench <scenario> [flags]\n\nScenarios:")
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, scenarios[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'flagsync-bench <scenario> -h' for a scenario's flags.")
}
