package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
)

// setupImport measures a first import: n flags synced into an empty account through the
// real pipeline, at Kameleoon's rate limits on a time-scaled clock, with latency on every
// call. It must see no 429.
func setupImport(fset *flag.FlagSet) measure {
	n := fset.Int("n", 1000, "number of generated flags")
	scale := fset.Float64("scale", 120, "time scale: rate windows and latency pass this many times faster (120: an hour in 30 s)")
	latency := fset.Duration("latency", 100*time.Millisecond, "latency added to every API call (on the sandbox's clock)")
	concurrency := fset.Int("concurrency", apply.DefaultConcurrency, "flags applied at once")
	quick := fset.Bool("quick", false, "CI variant: -scale 600")
	return func(ctx context.Context, progress io.Writer) (*section, error) {
		if err := applyQuick(fset, *quick, map[string]string{"scale": "600"}); err != nil {
			return nil, err
		}
		if *n < 1 || *scale <= 0 || *latency < 0 || *concurrency < 1 {
			return nil, usageError("want -n >= 1, -scale > 0, -latency >= 0, -concurrency >= 1")
		}
		return measureImport(ctx, *n, *scale, *latency, *concurrency, progress)
	}
}

func measureImport(ctx context.Context, n int, scale float64, latency time.Duration, concurrency int, progress io.Writer) (*section, error) {
	fsys := genRepo(n, nil)
	e, err := newEnv(scale)
	if err != nil {
		return nil, err
	}
	defer e.close()
	fmt.Fprintf(progress, "import: %d flags, time scale ×%g\n", n, scale)
	f, err := syncPass(ctx, e, fsys, 0, concurrency, latency, scale)
	if err != nil {
		return nil, fmt.Errorf("import %d flags: %w", n, err)
	}
	sec := &section{
		title: fmt.Sprintf("First import of %s flags", count(n)),
		intro: []string{fmt.Sprintf("flagsync sync (reconcile.Run) of %s new flags into an empty sandbox: one create per flag. Each flag has %s. "+
			"Kameleoon's limits (50 calls per 10 s, 1,000 per hour) are enforced by the sandbox and kept by the client's budget, "+
			"%s of latency is added to every call, %d flags are applied at once. Time-scaled ×%g: the rate windows and the "+
			"latency pass %g times faster than the wall clock.", count(n), flagShape, latency, concurrency, scale, scale)},
	}
	t := &table{header: []string{"flags", "API calls", "token", "list pages", "creates", "confirm reads", "retries", "429s (client)", "429s (sandbox)",
		"wall (time-scaled run)", "real-time equivalent (measured, scaled back)", "floor at Kameleoon's limits (derived)", "converged"}}
	t.add(count(n), count(f.calls), f.token, f.listPages, count(f.writes), f.confirmReads, f.retries, f.tooMany, f.serverTooMany,
		human(f.wall), human(f.scaled), human(limitFloor(f.calls-f.token)), f.converged)
	sec.tables = []*table{t}
	sec.notes = []string{fmt.Sprintf("real-time equivalent is the time the import took on the sandbox's clock: the time it "+
		"would take against Kameleoon. That clock runs at the wall clock's pace while the files load, then ×%g from the "+
		"first API call on, so the CPU work between calls (decoding, planning, the sandbox's own) is stretched ×%g too and "+
		"the figure errs on the long side; the floor is derived from the calls charged to the budget (the token request is not). More calls than 1,000 "+
		"(creates + the list) make the import wait for the hourly window: it goes in waves, the second once the window has "+
		"room for it.", scale, scale)}
	sec.headline(fmt.Sprintf("first import of %s flags", count(n)),
		fmt.Sprintf("%s API calls, %s 429s, %s at Kameleoon's limits (real-time equivalent of a run time-scaled ×%g)",
			count(f.calls), tooMany(f), human(f.scaled), scale))
	checkImport(sec, n, f)
	return sec, nil
}

// checkImport records in sec every way the figures f of an import of n flags are wrong:
// a 429, a create too many or too few, a sync that did not converge.
func checkImport(sec *section, n int, f passFigures) {
	sec.check(f.tooMany == 0 && f.serverTooMany == 0, "import of %d flags saw %d 429s (sandbox: %d), want 0", n, f.tooMany, f.serverTooMany)
	sec.check(f.converged, "import of %d flags did not converge", n)
	sec.check(f.writes == n && f.serverWrites == n, "import of %d flags: %d creates (sandbox: %d), want %d", n, f.writes, f.serverWrites, n)
	sec.check(f.priced == f.calls, "import of %d flags: the sandbox logged %d calls, the plan priced %d", n, f.calls, f.priced)
}
