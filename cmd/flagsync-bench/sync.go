package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// pageSize is the client's list page size (kclient.DefaultPerPage), for the minimum.
const pageSize = kclient.DefaultPerPage

// setupSync syncs n generated flags into an empty sandbox, then syncs again after about
// 1% of them changed, and reports per pass the API calls used against the minimum
// possible, the 429s seen and the wall time.
//
// Time scale: the sandbox enforces Kameleoon's 50 calls per 10 s and 1,000 per hour on a
// clock running -scale times faster than the wall clock, and the client's budget uses
// the same limits over windows shortened by the same factor. A run therefore takes
// 1/scale of the time it would take against Kameleoon, with the same calls and the same
// waits (but the CPU work and the loopback latency are not scaled).
func setupSync(fset *flag.FlagSet) measure {
	n := fset.Int("n", 100, "number of generated flags (3 environments, 4 rules each)")
	scale := fset.Float64("scale", 60, "time scale: rate windows pass this many times faster (60: an hour in a minute)")
	pct := fset.Float64("change", 1, "percentage of flags changed for the second pass")
	concurrency := fset.Int("concurrency", apply.DefaultConcurrency, "flags applied at once")
	return func(ctx context.Context, progress io.Writer) (*section, error) {
		if *n < 1 || *scale <= 0 || *pct <= 0 || *pct > 100 || *concurrency < 1 {
			return nil, usageError("want -n >= 1, -scale > 0, 0 < -change <= 100, -concurrency >= 1")
		}
		return measureSync(ctx, *n, *scale, *pct, *concurrency, progress)
	}
}

func measureSync(ctx context.Context, n int, scale, pct float64, concurrency int, progress io.Writer) (*section, error) {
	e, err := newEnv(scale)
	if err != nil {
		return nil, err
	}
	defer e.close()

	sec := &section{
		title: fmt.Sprintf("Sync of %s flags, then a %g%% change", count(n), pct),
		intro: []string{
			fmt.Sprintf("flagsync-bench sync: %d flags × %d environments (4 rules each), concurrency %d", n, len(benchEnvironments), concurrency),
			fmt.Sprintf("rate limits: Kameleoon's 50/10 s and 1000/h in the sandbox and the client budget, time scaled ×%g (10 s → %s, 1 h → %s)",
				scale, e.clock.real(10*time.Second).Round(time.Millisecond), e.clock.real(time.Hour).Round(time.Millisecond)),
		},
	}
	t := &table{header: []string{"pass", "changes", "API calls", "minimum", "token", "list pages", "writes", "confirm reads", "retries", "429s", "wall", "real-limit floor", "converged"}}
	passes := []struct {
		name  string
		edits map[int]bool
		live  int // flags that exist before the pass
	}{
		{fmt.Sprintf("create %d", n), nil, 0},
		{fmt.Sprintf("change %g%%", pct), editEvery(n, pct), n},
	}
	for i, p := range passes {
		if i > 0 {
			// The second pass is a later sync: a new process (fresh budget), an hour after
			// the first so that the sandbox's hourly window has emptied.
			e.clock.Advance(time.Hour)
		}
		fmt.Fprintf(progress, "sync -n %d: pass %q\n", n, p.name)
		f, err := syncPass(ctx, e, genRepo(n, p.edits), p.live, concurrency, 0, scale)
		if err != nil {
			return nil, fmt.Errorf("pass %q: %w", p.name, err)
		}
		sec.check(f.converged, "pass %q did not converge", p.name)
		sec.check(f.tooMany == 0, "pass %q saw %d 429s", p.name, f.tooMany)
		sec.check(f.priced == f.calls && f.clientCalls == f.calls, "pass %q: the sandbox logged %d calls, the plan priced %d, the client counted %d",
			p.name, f.calls, f.priced, f.clientCalls)
		t.add(p.name, f.changes, f.calls, f.minimum, f.token, f.listPages, f.writes, f.confirmReads, f.retries, f.tooMany,
			human(f.wall), human(limitFloor(f.calls-f.token)), f.converged)
	}
	sec.tables = []*table{t}
	sec.notes = []string{
		fmt.Sprintf("minimum = list pages (%d flags per page, at least 1) + one write per change (one create per new flag, one patch per changed environment);", pageSize),
		"API calls (counted by the sandbox's call log, and equal to what the plan priced) = minimum + token + retries + the confirming reads of writes whose answer was lost (none here: every create and patch answers with the whole flag).",
		"wall = wall-clock time of the time-scaled run; real-limit floor = the least time that many calls take at Kameleoon's unscaled limits, whatever the client.",
	}
	return sec, nil
}

// limitFloor is the least time calls API calls charged to the budget take under
// Kameleoon's limits: the k-th call (from 0) cannot go before k/50 ten-second windows
// nor k/1000 hours have passed. Token requests are not charged (KAMELEOON_TOKEN_COUNTS=no).
func limitFloor(calls int) time.Duration {
	if calls <= 0 {
		return 0
	}
	k := calls - 1
	return max(time.Duration(k/kclient.DefaultPer10s)*10*time.Second, time.Duration(k/kclient.DefaultPerHour)*time.Hour)
}

// passFigures are one sync's measurements. The calls by kind are counted by the
// sandbox's call log (what Kameleoon would receive); retries and 401s by the client.
type passFigures struct {
	changes                                int
	calls, minimum                         int
	token, listPages, writes, confirmReads int
	gets                                   int // per-resource refresh: one get per desired flag
	clientCalls                            int // the client's own count, which must agree
	priced                                 int // the plan's price (reconcile.Run's price step); -1 without one
	retries, tooMany, unauthorized         int // as the client saw them
	serverWrites, serverTooMany            int // as the sandbox logged them
	wall                                   time.Duration
	scaled                                 time.Duration // elapsed on the sandbox's (scaled) clock
	converged                              bool
}

// syncPass runs one sync of fsys through the real pipeline with a new client (latency
// added to each of its calls) and classifies the HTTP exchanges the sandbox logged. The
// sandbox's clock runs at the wall clock's pace until the client's first request (while
// the files load), then scale times faster: figures.scaled is the time the sync would
// take against Kameleoon.
func syncPass(ctx context.Context, e *env, fsys fs.FS, live, concurrency int, latency time.Duration, scale float64) (passFigures, error) {
	m := &meter{}
	client, err := e.clientAt(m, latency, scale)
	if err != nil {
		return passFigures{}, err
	}
	e.clock.SetScale(1)
	e.sandbox.ResetCalls()
	readDone := -1 // calls the sandbox logged when the plan was computed: the reads before it
	start, scaledStart := time.Now(), e.clock.Now()
	rep, err := reconcile.Run(ctx, reconcile.Input{
		Revision: "bench", FS: fsys, Dir: ".", Vendors: []reconcile.Vendor{kameleoon.Vendor(client)}, Concurrency: concurrency,
		OnPlan: func(plan.Plan) { readDone = len(e.sandbox.Calls()) },
	})
	wall, scaled := time.Since(start), e.clock.Now().Sub(scaledStart)
	if err != nil {
		return passFigures{}, err
	}
	f := passFigures{changes: len(rep.Plan.Changes), wall: wall, scaled: scaled, converged: rep.Converged, priced: -1}
	if rep.Plan.Price != nil {
		f.priced = rep.Plan.Price.Calls
	}
	for i, c := range e.sandbox.Calls() {
		f.calls++
		switch {
		case c.Path == "/oauth/token":
			f.token++
		case i < readDone: // the reads the plan was computed from: list pages (or searches, gets)
			f.listPages++
		case c.Method == "GET": // after the plan: confirming reads
			f.confirmReads++
		default:
			f.writes++
		}
	}
	f.clientCalls, f.retries, f.tooMany, f.unauthorized = m.figures()
	f.serverWrites, f.serverTooMany = serverFigures(e)
	f.minimum = max(1, (live+pageSize-1)/pageSize) + f.changes
	return f, nil
}

// figures returns the exchanges the client recorded, its retries, its 429s and 401s.
func (m *meter) figures() (calls, retries, tooMany, unauthorized int) {
	for _, ci := range m.since(0) {
		calls++
		if ci.Attempt > 1 {
			retries++
		}
		switch ci.Status {
		case 429:
			tooMany++
		case 401:
			unauthorized++
		}
	}
	return calls, retries, tooMany, unauthorized
}

// serverFigures returns the writes and the 429s in the sandbox's call log.
func serverFigures(e *env) (writes, tooMany int) {
	for _, c := range e.sandbox.Calls() {
		if c.Status == 429 {
			tooMany++
		}
	}
	return e.sandbox.Writes(), tooMany
}
