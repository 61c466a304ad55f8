package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// measure runs a scenario whose flags have been parsed and returns its figures; progress
// receives a line per step of a long run.
type measure func(ctx context.Context, progress io.Writer) (*section, error)

// scenario is one benchmark: setup registers its flags on a flag set and returns the
// measurement to run once they are parsed.
type scenario struct {
	summary string
	setup   func(fset *flag.FlagSet) measure
}

// scenarios are the benchmarks, by subcommand; "all" runs them one after another.
var scenarios = map[string]scenario{
	"load":   {"load and validate 1,000 and 10,000 generated flag files: time, bytes allocated, peak heap", setupLoad},
	"plan":   {"plan.Compute for 1,000 and 10,000 flags against a matching and a 1%-changed live state", setupPlan},
	"calls":  {"API calls of a steady-state and a 1% sync, list-based (flagsync) against per-resource (a get per flag), with latency", setupCalls},
	"import": {"first import of 1,000 flags at Kameleoon's rate limits (time-scaled): time and 429s", setupImport},
	"sync":   {"sync N generated flags into a sandbox at Kameleoon's rate limits (time-scaled), then a 1% change", setupSync},
	"policy": {"the five documented policies on a plan of 10,000 flags × 3 environments: the pipeline's step and the engine alone", setupPolicy},
	"daemon": {"the daemon's API calls, before and after issue 18: start (ready time), drift checks, a webhook", setupDaemon},
}

// usageError is a flag value a scenario cannot run with (exit 64).
type usageError string

func (e usageError) Error() string { return string(e) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 64
	}
	if args[0] == "all" {
		return benchAll(ctx, args[1:], stdout, stderr)
	}
	m, format, code := prepare(args[0], args[1:], stderr)
	if m == nil {
		return code
	}
	sec, code := measureOne(ctx, args[0], m, stderr)
	if sec == nil {
		return code
	}
	sec.command = commandLine(args)
	sec.write(stdout, format)
	return code
}

// prepare parses a scenario's flags and returns its measurement and output format, or
// nil and the exit code (0 for -h).
func prepare(name string, args []string, stderr io.Writer) (measure, string, int) {
	sc, ok := scenarios[name]
	if !ok {
		fmt.Fprintf(stderr, "flagsync-bench: unknown scenario %q\n\n", name)
		usage(stderr)
		return nil, "", 64
	}
	fset := flag.NewFlagSet("flagsync-bench "+name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	format := fset.String("format", "text", "output: text or markdown")
	m := sc.setup(fset)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", 0
		}
		return nil, "", 64
	}
	if fset.NArg() > 0 || (*format != "text" && *format != "markdown") {
		fmt.Fprintf(stderr, "flagsync-bench %s: unexpected arguments %q or -format %q (text or markdown)\n", name, fset.Args(), *format)
		return nil, "", 64
	}
	return m, *format, 0
}

// measureOne runs m and returns its section and the exit code: 1 when the section's
// figures failed a check (the section is still returned) or m failed, 64 for a usage error.
func measureOne(ctx context.Context, name string, m measure, stderr io.Writer) (*section, int) {
	sec, err := m(ctx, &stampWriter{w: stderr, start: time.Now()})
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "flagsync-bench %s: %v\n", name, err)
		return nil, 64
	case err != nil:
		fmt.Fprintf(stderr, "flagsync-bench %s: %v\n", name, err)
		return nil, 1
	case len(sec.problems) > 0:
		fmt.Fprintf(stderr, "flagsync-bench %s: %d failed checks:\n  %s\n", name, len(sec.problems), strings.Join(sec.problems, "\n  "))
		return sec, 1
	}
	return sec, 0
}

// commandLine renders args as the command that runs them from the repository root.
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	prog := "go run ./cmd/flagsync-bench"
	if exe := filepath.Base(os.Args[0]); exe == "flagsync-bench" && !strings.Contains(os.Args[0], "go-build") {
		prog = "flagsync-bench" // a built binary
	}
	return strings.TrimSpace(prog + " " + strings.Join(q, " "))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: flagsync-bench <scenario> [flags]\n\nScenarios:")
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  %-8s %s\n", "all", "every scenario below, in turn; --out FILE writes the results as Markdown (BENCHMARKS.md); -quick for CI")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, scenarios[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'flagsync-bench <scenario> -h' for a scenario's flags.")
}

// stampWriter prefixes each write (one progress line) with the time since start.
type stampWriter struct {
	w     io.Writer
	start time.Time
}

func (s *stampWriter) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(s.w, "[%6.1fs] %s", time.Since(s.start).Seconds(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}
