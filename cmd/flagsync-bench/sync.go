package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// pageSize is the client's list page size (api.DefaultPerPage), for the minimum.
const pageSize = api.DefaultPerPage

// benchSync syncs n generated flags into an empty sandbox, then syncs again after about
// 1% of them changed, and prints per pass the API calls used against the minimum
// possible, the 429s seen and the wall time.
//
// Time scale: the sandbox enforces Kameleoon's 50 calls per 10 s and 1,000 per hour on a
// clock running -scale times faster than the wall clock, and the client's budget uses
// the same limits over windows shortened by the same factor. A run therefore takes
// 1/scale of the time it would take against Kameleoon, with the same calls and the same
// waits (but the CPU work and the loopback latency are not scaled).
func benchSync(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("flagsync-bench sync", flag.ContinueOnError)
	fset.SetOutput(stderr)
	n := fset.Int("n", 100, "number of generated flags (3 environments, 3 rules each)")
	scale := fset.Float64("scale", 60, "time scale: rate windows pass this many times faster (60: an hour in a minute)")
	pct := fset.Float64("change", 1, "percentage of flags changed for the second pass")
	concurrency := fset.Int("concurrency", apply.DefaultConcurrency, "flags applied at once")
	format := fset.String("format", "text", "output: text or markdown")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 64
	}
	if *n < 1 || *scale <= 0 || *pct <= 0 || *pct > 100 || *concurrency < 1 || (*format != "text" && *format != "markdown") {
		fmt.Fprintln(stderr, "flagsync-bench sync: want -n >= 1, -scale > 0, 0 < -change <= 100, -concurrency >= 1, -format text or markdown")
		return 64
	}

	e, err := newEnv(*scale)
	if err != nil {
		fmt.Fprintf(stderr, "flagsync-bench sync: %v\n", err)
		return 1
	}
	defer e.close()

	fmt.Fprintf(stdout, "flagsync-bench sync: %d flags × %d environments (3 rules each), concurrency %d\n", *n, len(benchEnvironments), *concurrency)
	fmt.Fprintf(stdout, "rate limits: Kameleoon's 50/10 s and 1000/h in the sandbox and the client budget, time scaled ×%g (10 s → %s, 1 h → %s)\n\n",
		*scale, e.clock.real(10*time.Second).Round(time.Millisecond), e.clock.real(time.Hour).Round(time.Millisecond))

	t := &table{header: []string{"pass", "changes", "API calls", "minimum", "token", "list pages", "writes", "confirm reads", "retries", "429s", "wall", "real-limit floor", "converged"}}
	passes := []struct {
		name  string
		edits map[int]bool
		live  int // flags that exist before the pass
	}{
		{fmt.Sprintf("create %d", *n), nil, 0},
		{fmt.Sprintf("change %g%%", *pct), editEvery(*n, *pct), *n},
	}
	failed := false
	for i, p := range passes {
		if i > 0 {
			// The second pass is a later sync: a new process (fresh budget), an hour after
			// the first so that the sandbox's hourly window has emptied.
			e.clock.Advance(time.Hour)
		}
		f, err := syncPass(ctx, e, genRepo(*n, p.edits), p.live, *concurrency)
		if err != nil {
			fmt.Fprintf(stderr, "flagsync-bench sync: pass %q: %v\n", p.name, err)
			return 1
		}
		failed = failed || !f.converged || f.tooMany > 0
		t.add(p.name, f.changes, f.calls, f.minimum, f.token, f.listPages, f.writes, f.confirmReads, f.retries, f.tooMany,
			f.wall.Round(time.Millisecond), limitFloor(f.calls), f.converged)
	}
	t.write(stdout, *format)
	fmt.Fprintf(stdout, "\nminimum = list pages (%d flags per page, at least 1) + one write per change (one create per new flag, one patch per changed environment);\n", pageSize)
	fmt.Fprintln(stdout, "API calls = minimum + token + the confirming re-read (list pages, or one get per changed flag when fewer) + retries.")
	fmt.Fprintln(stdout, "real-limit floor = the least time that many calls take at Kameleoon's unscaled limits, whatever the client.")
	if failed {
		fmt.Fprintln(stderr, "flagsync-bench sync: a pass did not converge or saw 429s")
		return 1
	}
	return 0
}

// limitFloor is the least time calls API calls take under Kameleoon's limits: the k-th
// call (from 0) cannot go before k/50 ten-second windows nor k/1000 hours have passed.
func limitFloor(calls int) time.Duration {
	if calls <= 0 {
		return 0
	}
	k := calls - 1
	return max(time.Duration(k/api.DefaultPer10s)*10*time.Second, time.Duration(k/api.DefaultPerHour)*time.Hour)
}

// passFigures are one sync's measurements.
type passFigures struct {
	changes                                int
	calls, minimum                         int
	token, listPages, writes, confirmReads int
	retries, tooMany                       int
	wall                                   time.Duration
	converged                              bool
}

// syncPass runs one sync of fsys through the real pipeline with a new client and
// classifies its HTTP exchanges.
func syncPass(ctx context.Context, e *env, fsys fs.FS, live, concurrency int) (passFigures, error) {
	m := &meter{}
	client, err := e.client(m)
	if err != nil {
		return passFigures{}, err
	}
	readDone := -1 // exchanges recorded when the plan was computed: the reads before it
	start := time.Now()
	rep, err := reconcile.Run(ctx, reconcile.Input{
		Revision: "bench", FS: fsys, Dir: ".", Client: client, Concurrency: concurrency,
		OnPlan: func(plan.Plan) { readDone = m.mark() },
	})
	wall := time.Since(start)
	if err != nil {
		return passFigures{}, err
	}
	f := passFigures{changes: len(rep.Plan.Changes), wall: wall, converged: rep.Converged}
	for i, ci := range m.since(0) {
		f.calls++
		if ci.Attempt > 1 {
			f.retries++
		}
		if ci.Status == 429 {
			f.tooMany++
		}
		switch {
		case ci.Endpoint == "/oauth/token":
			f.token++
		case ci.Method == "GET" && ci.Endpoint == "/feature-flags" && i < readDone:
			f.listPages++
		case ci.Method == "GET": // after the plan: the confirming list pages or gets
			f.confirmReads++
		case ci.Method == "POST" || ci.Method == "PATCH":
			f.writes++
		}
	}
	f.minimum = max(1, (live+pageSize-1)/pageSize) + f.changes
	return f, nil
}
