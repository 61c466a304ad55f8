package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	fl "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
)

// beforeCalls are the calls of flagsync's syncs on main (revision 23f42fc, issue 18's
// measurement and the BENCHMARKS.md of that revision), by flags and changed flags: the
// token, the list pages, the writes and one confirming get per changed flag.
var beforeCalls = map[[2]int]int{
	{1000, 0}: 11, {1000, 10}: beforeOnePercent1k,
	{10000, 0}: 101, {10000, 100}: beforeOnePercent10k,
}

// terraformParallelism is how many resources Terraform refreshes and applies at once by
// default (-parallelism=10).
const terraformParallelism = 10

// setupCalls measures the API calls and the time of a steady-state sync and of a sync
// of a 1% change, done by flagsync (list the site, write what differs, confirm) and done
// the way per-resource tools work (one get per flag, then the same writes), with the
// same client, latency on every call and Kameleoon's rate limits.
func setupCalls(fset *flag.FlagSet) measure {
	ns := sizes{1000, 10000}
	fset.Var(&ns, "n", "comma-separated numbers of flags")
	pct := fset.Float64("change", 1, "percentage of flags changed (one environment each) for the change sync")
	latency := fset.Duration("latency", 100*time.Millisecond, "latency added to every API call (on the sandbox's clock)")
	scale := fset.Float64("scale", 1, "time scale of flagsync's syncs (1: real time)")
	prScale := fset.Float64("per-resource-scale", 600, "time scale of the per-resource syncs (600: an hour in 6 s)")
	concurrency := fset.Int("concurrency", apply.DefaultConcurrency, "flags flagsync applies at once")
	quick := fset.Bool("quick", false, "CI variant: -n 1000")
	return func(ctx context.Context, progress io.Writer) (*section, error) {
		if err := applyQuick(fset, *quick, map[string]string{"n": "1000"}); err != nil {
			return nil, err
		}
		if *pct <= 0 || *pct > 100 || *latency < 0 || *scale <= 0 || *prScale <= 0 || *concurrency < 1 {
			return nil, usageError("want 0 < -change <= 100, -latency >= 0, -scale > 0, -per-resource-scale > 0, -concurrency >= 1")
		}
		return measureCalls(ctx, callsOptions{sizes: ns, pct: *pct, latency: *latency, scale: *scale, prScale: *prScale, concurrency: *concurrency}, progress)
	}
}

type callsOptions struct {
	sizes          []int
	pct            float64
	latency        time.Duration
	scale, prScale float64
	concurrency    int
}

// callsRow is one sync measured both ways.
type callsRow struct {
	n            int
	pass         string
	want         int // changes the sync must make: one environment patch per changed flag
	list, perRes passFigures
	listReal     time.Duration // flagsync's time, brought back to real time
	perResReal   time.Duration // the per-resource time, brought back to real time
}

// target returns what flagsync's sync of r must cost and whether it did (issue 18's
// minimum): the token, the list pages and one write per changed environment, with no
// confirming read (every patch answers with the whole flag), counted by the sandbox.
func (r callsRow) target() (string, bool) {
	f := r.list
	pages := max(1, (r.n+pageSize-1)/pageSize)
	if r.want == 0 {
		return fmt.Sprintf("token + %d list pages, 0 writes", pages),
			f.writes == 0 && f.serverWrites == 0 && f.calls == 1+pages
	}
	return fmt.Sprintf("token + %d list pages + %d %s (one per changed environment), 0 confirm reads", pages, r.want, plural(r.want, "write", "writes")),
		f.writes == r.want && f.serverWrites == r.want && f.confirmReads == 0 && f.calls == 1+pages+r.want
}

// checkCalls records in sec every way r's figures are wrong.
func checkCalls(sec *section, r callsRow) {
	f, p := r.list, r.perRes
	target, met := r.target()
	sec.check(met, "flagsync, %d flags, %s: %d calls, %d writes (sandbox: %d), want %s", r.n, r.pass, f.calls, f.writes, f.serverWrites, target)
	sec.check(f.changes == r.want, "flagsync, %d flags, %s: %d changes, want %d", r.n, r.pass, f.changes, r.want)
	sec.check(f.converged, "flagsync, %d flags, %s: did not converge", r.n, r.pass)
	sec.check(f.tooMany == 0 && f.serverTooMany == 0, "flagsync, %d flags, %s: %d 429s (sandbox: %d)", r.n, r.pass, f.tooMany, f.serverTooMany)
	sec.check(f.priced == f.calls && f.clientCalls == f.calls, "flagsync, %d flags, %s: the sandbox logged %d calls, the plan priced %d, the client counted %d",
		r.n, r.pass, f.calls, f.priced, f.clientCalls)

	sec.check(p.changes == r.want && p.writes == r.want && p.serverWrites == r.want,
		"per resource, %d flags, %s: %d changes, %d writes (sandbox: %d), want %d", r.n, r.pass, p.changes, p.writes, p.serverWrites, r.want)
	sec.check(p.gets == r.n, "per resource, %d flags, %s: %d gets, want one per flag", r.n, r.pass, p.gets)
	sec.check(p.converged, "per resource, %d flags, %s: did not converge", r.n, r.pass)
	sec.check(p.tooMany == 0 && p.serverTooMany == 0, "per resource, %d flags, %s: %d 429s (sandbox: %d)", r.n, r.pass, p.tooMany, p.serverTooMany)
	sec.check(p.calls > f.calls, "%d flags, %s: per resource made %d calls, not more than flagsync's %d", r.n, r.pass, p.calls, f.calls)
}

func measureCalls(ctx context.Context, o callsOptions, progress io.Writer) (*section, error) {
	var rows []callsRow
	sec := &section{title: "API calls: flagsync against a per-resource tool"}
	for _, n := range o.sizes {
		r, err := callsForSize(ctx, n, o, progress)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}

	timeLabel := "real time, measured"
	if o.scale != 1 {
		timeLabel = fmt.Sprintf("real-time equivalent, time-scaled ×%g", o.scale)
	}
	sec.intro = []string{
		fmt.Sprintf("Each flag has %s. Each size is created in a fresh sandbox, then synced four times, each sync a new process with a fresh "+
			"budget an hour after the last: flagsync with the files unchanged (steady state), flagsync after about %g%% of the "+
			"flags changed one production exposition, then the per-resource strategy unchanged, and the per-resource strategy "+
			"undoing that change (the same number of writes).", flagShape, o.pct),
		fmt.Sprintf("Both strategies use the same API client, with Kameleoon's limits (50 calls per 10 s, 1,000 per hour) in its "+
			"budget and in the sandbox, and %s of latency added to every call. flagsync runs reconcile.Run: list the site "+
			"(%d flags per page), plan, write, confirm. The per-resource strategy works the way a Terraform provider does: one "+
			"GetFlag per flag in the files (refresh, %d at once, Terraform's default parallelism), the same plan.Compute, the "+
			"same writes through apply (%d flags at once). It reads nothing after writing, and refreshes once per sync (a Terraform "+
			"workflow that plans on the pull request and applies after merge refreshes twice): both favour it.",
			o.latency, pageSize, terraformParallelism, o.concurrency),
	}

	t1 := &table{
		title:  "flagsync: API calls per sync",
		header: []string{"flags", "sync", "changes", "API calls", "token", "list pages", "writes", "confirm reads", "retries", "429s", "target", "met"},
	}
	for _, r := range rows {
		checkCalls(sec, r)
		f := r.list
		target, met := r.target()
		t1.add(count(r.n), r.pass, f.changes, f.calls, f.token, f.listPages, f.writes, f.confirmReads, f.retries, tooMany(f), target, yes(met))
		sec.headline(fmt.Sprintf("flagsync sync of %s flags, %s", count(r.n), r.pass),
			fmt.Sprintf("%s API calls (%d token, %d list pages, %d writes, %d confirm reads), %s 429s, %s",
				count(f.calls), f.token, f.listPages, f.writes, f.confirmReads, tooMany(f), human(r.listReal)))
	}

	t0 := &table{
		title:  "flagsync before (main) and after issue 18",
		header: []string{"flags", "sync", "before (main): API calls", "after: API calls", "after: charged to the budget", "the limit (issue 18)"},
	}
	for _, r := range rows {
		f := r.list
		before := "–"
		if b, ok := beforeCalls[[2]int{r.n, r.want}]; ok {
			before = count(b)
		}
		pages := max(1, (r.n+pageSize-1)/pageSize)
		limit := fmt.Sprintf("%d list pages + %d writes (+1 token at most)", pages, r.want)
		t0.add(count(r.n), r.pass, before, count(f.calls), count(f.calls-f.token), limit)
	}

	t2 := &table{
		title: "The same syncs, per resource, against flagsync",
		header: []string{"flags", "sync", "flagsync calls", "per-resource calls (token + gets + writes + retries)", "calls ratio",
			"flagsync time (" + timeLabel + ")",
			fmt.Sprintf("per-resource time (real-time equivalent of a run time-scaled ×%g)", o.prScale),
			"per-resource floor (derived from its calls)", "time ratio", "per-resource 429s"},
	}
	for _, r := range rows {
		p := r.perRes
		t2.add(count(r.n), r.pass, r.list.calls,
			fmt.Sprintf("%s (%d + %s + %d + %d)", count(p.calls), p.token, count(p.gets), p.writes, p.retries),
			ratio(float64(p.calls), float64(r.list.calls)),
			human(r.listReal), human(r.perResReal), "≥ "+human(limitFloor(p.calls-p.token))+" at Kameleoon's limits",
			ratio(float64(r.perResReal), float64(r.listReal)), tooMany(p))
		sec.headline(fmt.Sprintf("per-resource sync (a get per flag) of %s flags, %s", count(r.n), r.pass),
			fmt.Sprintf("%s API calls (%s flagsync's), %s (%s flagsync's time; ≥ %s at Kameleoon's limits)",
				count(p.calls), ratio(float64(p.calls), float64(r.list.calls)), human(r.perResReal),
				ratio(float64(r.perResReal), float64(r.listReal)), human(limitFloor(p.calls-p.token))))
	}
	sec.tables = []*table{t0, t1, t2}
	unauthorized := 0
	for _, r := range rows {
		unauthorized += r.list.unauthorized + r.perRes.unauthorized
	}
	sec.notes = []string{
		"API calls are counted by the sandbox's call log (every HTTP exchange it received, token and retries included: what " +
			"Kameleoon would receive); the client's own count and the plan's price (flagsync's price step, made before " +
			"anything is written) must both equal it. confirm reads are reads after writing: flagsync makes none when every " +
			"write's answer is the whole flag, as Kameleoon's creates and patches are, and reads again only a flag whose " +
			"answer was lost.",
		fmt.Sprintf("Time: flagsync's syncs ran %s. The per-resource syncs would take hours, so they ran on a clock %g times "+
			"faster than the wall clock (rate windows and latency shortened alike) and the time shown is the sandbox-clock "+
			"time they took, with their CPU-bound steps (loading the files, planning) counted at their wall time: the time "+
			"they would take against Kameleoon. The floor is derived, not measured: the least time that many calls take "+
			"at 50 per 10 s and 1,000 per hour, whatever the client (token requests are not charged, as the client's budget "+
			"does not charge them: KAMELEOON_TOKEN_COUNTS=no).",
			map[bool]string{true: "in real time", false: fmt.Sprintf("time-scaled ×%g from their first API call on (the time shown is the sandbox-clock time, brought back to real time)", o.scale)}[o.scale == 1],
			o.prScale),
	}
	if unauthorized > 0 {
		sec.notes = append(sec.notes, fmt.Sprintf("retries: %d calls were answered 401 and sent again. Over hours of waiting for the "+
			"hourly budget the token (valid 2 h) expires, and the client takes its token before it waits for a budget slot "+
			"(internal/api, Client.send), so a call that waited past the token's expiry is refused once, spending a slot, "+
			"and sent again with a new token.", unauthorized))
	}
	return sec, nil
}

// callsForSize seeds a sandbox with n flags and measures the four syncs.
func callsForSize(ctx context.Context, n int, o callsOptions, progress io.Writer) ([]callsRow, error) {
	e, err := newEnv(o.scale)
	if err != nil {
		return nil, err
	}
	defer e.close()
	fmt.Fprintf(progress, "calls: %d flags: seeding the sandbox\n", n)
	if err := e.seed(ctx, genRepo(n, nil)); err != nil {
		return nil, err
	}
	edits := editEvery(n, o.pct)
	original, changed := genRepo(n, nil), genRepo(n, edits)
	steady := callsRow{n: n, pass: "steady state", want: 0}
	change := callsRow{n: n, pass: fmt.Sprintf("%g%% change", o.pct), want: len(edits)}

	// flagsync: the files as created, then with the change.
	for _, r := range []struct {
		row  *callsRow
		fsys fs.FS
	}{{&steady, original}, {&change, changed}} {
		e.clock.Advance(time.Hour)
		fmt.Fprintf(progress, "calls: %d flags: flagsync, %s\n", n, r.row.pass)
		f, err := syncPass(ctx, e, r.fsys, n, o.concurrency, o.latency, o.scale)
		if err != nil {
			return nil, fmt.Errorf("flagsync sync of %d flags, %s: %w", n, r.row.pass, err)
		}
		r.row.list, r.row.listReal = f, f.scaled
	}

	// Per resource: the changed files (now live: steady state), then back to the original.
	e.clock.SetScale(o.prScale)
	for _, r := range []struct {
		row  *callsRow
		fsys fs.FS
	}{{&steady, changed}, {&change, original}} {
		e.clock.Advance(time.Hour)
		fmt.Fprintf(progress, "calls: %d flags: per resource, %s\n", n, r.row.pass)
		f, realTime, err := perResourcePass(ctx, e, r.fsys, terraformParallelism, o.concurrency, o.latency)
		if err != nil {
			return nil, fmt.Errorf("per-resource sync of %d flags, %s: %w", n, r.row.pass, err)
		}
		r.row.perRes, r.row.perResReal = f, realTime
	}
	return []callsRow{steady, change}, nil
}

// perResourcePass syncs fsys the way per-resource tools do — a Terraform provider
// refreshes each resource with its own read, then writes the changed ones: one GetFlag
// per flag in the files (refreshConcurrency at once), the same plan.Compute, and the
// plan's writes through apply, with a new client like syncPass's. It returns the figures
// and the time the sync would take in real time: the wall time of its CPU-bound steps
// (load, plan) plus the sandbox-clock time of its API steps.
func perResourcePass(ctx context.Context, e *env, fsys fs.FS, refreshConcurrency, applyConcurrency int, latency time.Duration) (passFigures, time.Duration, error) {
	start := time.Now()
	e.sandbox.ResetCalls()
	desired, err := kload.Load(fsys, ".")
	if err != nil {
		return passFigures{}, 0, fmt.Errorf("load flags: %w", err)
	}
	cpu := time.Since(start)
	m := &meter{}
	client, err := e.clientAt(m, latency, e.clock.scaleNow())
	if err != nil {
		return passFigures{}, 0, err
	}

	scaledStart := e.clock.Now()
	live, err := refresh(ctx, client, desired.Flags, refreshConcurrency)
	if err != nil {
		return passFigures{}, 0, err
	}
	api1 := e.clock.Now().Sub(scaledStart)

	planStart := time.Now()
	p, err := kplan.Compute(desired, live, kplan.OptionsFor(desired.Settings))
	if err != nil {
		return passFigures{}, 0, fmt.Errorf("plan: %w", err)
	}
	cpu += time.Since(planStart)

	scaledStart = e.clock.Now()
	out := apply.Plan(ctx, client, p, apply.Options{Concurrency: applyConcurrency, Logger: slog.New(slog.DiscardHandler)})
	api2 := e.clock.Now().Sub(scaledStart)
	wall := time.Since(start)
	if out.Summary.Failed > 0 || out.Summary.Skipped > 0 {
		return passFigures{}, 0, fmt.Errorf("apply: %s", out.Summary)
	}

	f := passFigures{changes: len(p.Changes), wall: wall, scaled: api1 + api2, priced: -1}
	// By kind from the sandbox's log (a retry counts under its kind); retries from the client.
	for _, c := range e.sandbox.Calls() {
		f.calls++
		switch {
		case c.Path == "/oauth/token":
			f.token++
		case c.Method == "GET":
			f.gets++
		default:
			f.writes++
		}
	}
	f.clientCalls, f.retries, f.tooMany, f.unauthorized = m.figures()
	for _, ci := range m.since(0) { // a retry is counted once, as a retry
		switch {
		case ci.Attempt == 1:
		case ci.Endpoint == "/oauth/token":
			f.token--
		case ci.Method == "GET":
			f.gets--
		default:
			f.writes--
		}
	}
	f.serverWrites, f.serverTooMany = serverFigures(e)
	// Whether the sandbox now matches the files is checked outside the measurement, with
	// the seeding client, since this strategy itself does not read again.
	f.converged, err = e.matches(ctx, fsys)
	if err != nil {
		return passFigures{}, 0, err
	}
	return f, cpu + api1 + api2, nil
}

// refresh reads each flag with its own get, concurrency at once; flags that do not exist
// are left out.
func refresh(ctx context.Context, client *kclient.Client, flags []fl.Flag, concurrency int) ([]fl.Flag, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make([]*fl.Flag, len(flags))
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				f, err := client.GetFlag(ctx, flags[i].SiteCode, flags[i].FeatureKey)
				if api.IsNotFound(err) {
					continue
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("refresh %s: %w", flags[i].Ref(), err); cancel() })
					continue
				}
				got[i] = &f
			}
		})
	}
feed:
	for i := range flags {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	live := make([]fl.Flag, 0, len(flags))
	for _, f := range got {
		if f != nil {
			live = append(live, *f)
		}
	}
	return live, nil
}

// matches reports whether the sandbox's flags match fsys (an empty plan), read with the
// seeding client: outside any measurement.
func (e *env) matches(ctx context.Context, fsys fs.FS) (bool, error) {
	desired, err := kload.Load(fsys, ".")
	if err != nil {
		return false, fmt.Errorf("load flags: %w", err)
	}
	c, err := e.seedClient()
	if err != nil {
		return false, err
	}
	// An hour on, so that the sandbox's windows no longer hold the measured sync's calls
	// (a per-resource sync of 1,000 flags fills the hour's 1,000).
	e.clock.Advance(time.Hour)
	live, err := c.ListFlags(ctx, benchSite)
	if err != nil {
		return false, fmt.Errorf("check convergence: %w", err)
	}
	p, err := kplan.Compute(desired, live, kplan.OptionsFor(desired.Settings))
	if err != nil {
		return false, fmt.Errorf("check convergence: %w", err)
	}
	e.clock.Advance(time.Hour) // the check's calls are out of the next measurement's windows
	return len(p.Changes) == 0, nil
}

// tooMany renders the 429s the client and the sandbox saw, which agree when all is well.
func tooMany(f passFigures) string {
	if f.tooMany == f.serverTooMany {
		return strconv.Itoa(f.tooMany)
	}
	return fmt.Sprintf("%d (sandbox: %d)", f.tooMany, f.serverTooMany)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// ratio renders a/b as "12.3×".
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64) + "×"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// human renders a duration for people: "850 ms", "12.3 s", "4 min 10 s", "10 h 3 min".
func human(d time.Duration) string {
	if d < time.Second {
		return ms(d)
	}
	if r := d.Round(100 * time.Millisecond); r < time.Minute {
		return strconv.FormatFloat(r.Seconds(), 'f', 1, 64) + " s"
	}
	if r := d.Round(time.Second); r < time.Hour {
		return fmt.Sprintf("%d min %d s", int(r.Minutes()), int(r.Seconds())%60)
	}
	r := d.Round(time.Minute)
	return fmt.Sprintf("%d h %d min", int(r.Hours()), int(r.Minutes())%60)
}
