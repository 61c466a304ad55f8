package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Issue 18's figures on main (revision 23f42fc), before the API-call work: what the
// before column of the daemon scenario's table shows. They were measured on main with
// this command's calls and sync scenarios and a daemon on the sandbox.
const (
	beforeWebhookCalls  = 3   // GET, PATCH, confirming GET
	beforeDriftCalls10k = 100 // the whole list of 10,000 flags
	beforeOnePercent10k = 301 // token + 100 list pages + 100 patches + 100 confirming gets
	beforeOnePercent1k  = 31  // token + 10 list pages + 10 patches + 10 confirming gets
	benchWebhookSecret  = "flagsync-bench-webhook-secret"
	benchBranch         = "main"
	// benchDriftInterval is how far the sandbox's clock moves between two checks: the
	// token (2 h) outlives the measured checks, as it does between a daemon's checks 10
	// minutes apart; a check that renews it makes one more call, not charged.
	benchDriftInterval  = 10 * time.Minute
	benchDaemonWaitTime = 10 * time.Minute
)

// setupDaemon measures what the daemon spends: its start (ready time, with and without
// the token charged to the budget), a steady-state drift check, a drift check that finds
// a change made in Kameleoon, and a webhook that changes one file, at Kameleoon's limits
// in real time, counted by the sandbox's call log.
func setupDaemon(fset *flag.FlagSet) measure {
	n := fset.Int("n", 10000, "flags of the repository the drift checks and the webhook run on")
	start := fset.Int("start", 5000, "flags of the repository the daemon starts on")
	latency := fset.Duration("latency", 50*time.Millisecond, "latency added to every API call")
	quick := fset.Bool("quick", false, "CI variant: -n 1000 -start 1000")
	return func(ctx context.Context, progress io.Writer) (*section, error) {
		if err := applyQuick(fset, *quick, map[string]string{"n": "1000", "start": "1000"}); err != nil {
			return nil, err
		}
		if *n < 20 || *start < 1 || *latency < 0 {
			return nil, usageError("want -n >= 20, -start >= 1, -latency >= 0")
		}
		return measureDaemon(ctx, *n, *start, *latency, progress)
	}
}

// daemonFigures are one daemon sync's figures, from the sandbox's log.
type daemonFigures struct {
	calls, token, reads, writes int
	changes                     int
	ready                       time.Duration // start: from Run to ready
	converged                   bool
}

func measureDaemon(ctx context.Context, n, start int, latency time.Duration, progress io.Writer) (*section, error) {
	sec := &section{title: "API calls of the daemon: start, drift checks, a webhook"}
	t := &table{header: []string{"measure", "before (main)", "after", "API calls after (token + reads + writes)", "the limit (issue 18)", "met"}}

	startFigures := map[kclient.TokenCounting]daemonFigures{}
	for _, counts := range []kclient.TokenCounting{kclient.TokenCountsYes, kclient.TokenCountsNo} {
		fmt.Fprintf(progress, "daemon: start on %d flags, token requests charged: %s\n", start, counts)
		f, err := daemonStart(ctx, start, latency, counts)
		if err != nil {
			return nil, fmt.Errorf("daemon start on %d flags (token charged: %s): %w", start, counts, err)
		}
		startFigures[counts] = f
	}
	before, after := startFigures[kclient.TokenCountsYes], startFigures[kclient.TokenCountsNo]
	pages := max(1, (start+pageSize-1)/pageSize)
	startMet := after.calls == 1+pages // the times are figures, not checked
	t.add(fmt.Sprintf("daemon start on %s flags: ready after", count(start)), human(before.ready)+" (token charged: KAMELEOON_TOKEN_COUNTS=yes, main's budget)",
		human(after.ready), fmt.Sprintf("%d (%d + %d + %d)", after.calls, after.token, after.reads, after.writes),
		fmt.Sprintf("token + %d list pages in one 10 s window", pages), yes(startMet))
	sec.check(startMet, "daemon start on %d flags: %d calls, want token + %d pages", start, after.calls, pages)
	sec.check(before.converged && after.converged, "daemon start on %d flags did not converge", start)
	sec.headline(fmt.Sprintf("daemon start on %s flags: ready after", count(start)),
		fmt.Sprintf("%s (%d calls: token + %d list pages); %s with the token charged to the budget (before)", human(after.ready), after.calls, pages, human(before.ready)))

	fmt.Fprintf(progress, "daemon: %d flags: start, drift checks, a webhook\n", n)
	steps, err := daemonSteps(ctx, n, latency, progress)
	if err != nil {
		return nil, err
	}
	drift, repair, hook := steps["drift"], steps["repair"], steps["webhook"]
	driftBefore := "–"
	if n == 10000 {
		driftBefore = fmt.Sprint(beforeDriftCalls10k)
	}
	driftMet := drift.calls == 1 && drift.writes == 0
	listPages := (n + pageSize - 1) / pageSize
	t.add(fmt.Sprintf("steady-state drift check, %s flags", count(n)), driftBefore+fmt.Sprintf(" (the whole list: %d %s)", listPages, plural(listPages, "page", "pages")), drift.calls,
		fmt.Sprintf("%d (%d + %d + %d)", drift.calls, drift.token, drift.reads, drift.writes), "1 call while fewer than 100 flags changed", yes(driftMet))
	sec.check(driftMet, "steady-state drift check of %d flags: %d calls (%d writes), want 1", n, drift.calls, drift.writes)
	repairMet := repair.calls == 2 && repair.changes == 1 && repair.converged
	t.add("drift check that finds one flag changed in Kameleoon, and repairs it", "–", repair.calls,
		fmt.Sprintf("%d (%d + %d + %d)", repair.calls, repair.token, repair.reads, repair.writes), "1 search + 1 write", yes(repairMet))
	sec.check(repairMet, "drift check finding one change: %d calls, %d changes, converged %t; want 2, 1, true", repair.calls, repair.changes, repair.converged)
	hookMet := hook.calls == 2 && hook.reads == 1 && hook.writes == 1 && hook.converged
	t.add("a webhook that changes one file (partial sync)", fmt.Sprint(beforeWebhookCalls)+" (GET, PATCH, confirming GET)", hook.calls,
		fmt.Sprintf("%d (%d + %d + %d)", hook.calls, hook.token, hook.reads, hook.writes), "2: GET + PATCH, the PATCH's answer confirming", yes(hookMet))
	sec.check(hookMet, "webhook changing one file: %d calls (%d reads, %d writes), converged %t; want GET + PATCH", hook.calls, hook.reads, hook.writes, hook.converged)
	sec.headline(fmt.Sprintf("daemon drift check of %s flags, steady state", count(n)), fmt.Sprintf("%d API call (before: %s)", drift.calls, driftBefore))
	sec.headline("daemon partial sync of a webhook changing one file", fmt.Sprintf("%d API calls (before: %d)", hook.calls, beforeWebhookCalls))

	sec.intro = []string{
		fmt.Sprintf("The daemon (internal/daemon) runs on an in-memory Git source against the sandbox, served on a loopback port "+
			"with Kameleoon's limits (50 calls per 10 s, 1,000 per hour) enforced by the sandbox and kept by the client's budget, "+
			"%s of latency added to every call, in real time. Calls are counted by the sandbox's call log. Each flag has %s.", latency, flagShape),
		fmt.Sprintf("Start: a new daemon on %s flags already in the sandbox, from its Run to /readyz ready (the first sync done: load, "+
			"token, list, plan, nothing to write), once with token requests charged to the budget as main charged them "+
			"(KAMELEOON_TOKEN_COUNTS=yes) and once as flagsync now does by default (no): the token and %d list pages fit one "+
			"10-second window only when the token is not charged.", count(start), pages),
		fmt.Sprintf("Drift checks and the webhook, on %s flags: the daemon starts (one whole list), a first drift check reads what "+
			"changed since with one search (POST /feature-flags/search, dateModified DESC); the steady-state check measured is the "+
			"one after it. Then one flag's production is turned on in Kameleoon by another client, and the next drift check finds "+
			"and repairs it. Then a commit changes one flag file and its signed GitHub push reaches the daemon's webhook: a partial "+
			"sync of that flag.", count(n)),
	}
	sec.tables = []*table{t}
	sec.notes = []string{
		"before (main) is issue 18's measurement of main (revision 23f42fc) with the same shapes: a drift check read the whole list " +
			"(one call per 100 flags), a webhook's partial sync confirmed its patch with a second GET, and the daemon's budget " +
			"charged the token, so the token and 50 list pages did not fit one 10-second window. The start's before is measured " +
			"here, with KAMELEOON_TOKEN_COUNTS=yes.",
		"The drift check lists the whole site every 6th check (the safety net), and whenever the search's total count says a flag " +
			"was deleted, more than a page or two changed, or the account refuses the sort (see docs/kameleoon-api.md).",
	}
	return sec, nil
}

// daemonStart starts a daemon on n flags already in the sandbox and measures the time to
// ready and the calls of its first sync.
func daemonStart(ctx context.Context, n int, latency time.Duration, counts kclient.TokenCounting) (daemonFigures, error) {
	e, err := newEnv(1)
	if err != nil {
		return daemonFigures{}, err
	}
	defer e.close()
	files := genRepo(n, nil)
	if err := e.seed(ctx, files); err != nil {
		return daemonFigures{}, err
	}
	src := newMemSource(files)
	client, err := e.daemonClient(latency, counts)
	if err != nil {
		return daemonFigures{}, err
	}
	e.sandbox.ResetCalls()
	rig, err := startDaemon(ctx, src, client)
	if err != nil {
		return daemonFigures{}, err
	}
	defer rig.stop()
	ready, err := rig.waitReady(ctx)
	if err != nil {
		return daemonFigures{}, err
	}
	f := figuresOf(e)
	f.ready = ready
	s := rig.d.Status()
	f.converged = s.Converged
	return f, nil
}

// daemonSteps runs a daemon on n flags through its start, two drift checks, a change in
// Kameleoon and a webhook, and returns the figures of the steady drift check ("drift"),
// of the one that repairs ("repair") and of the webhook's partial sync ("webhook").
func daemonSteps(ctx context.Context, n int, latency time.Duration, progress io.Writer) (map[string]daemonFigures, error) {
	e, err := newEnv(1)
	if err != nil {
		return nil, err
	}
	defer e.close()
	files := genRepo(n, nil)
	fmt.Fprintf(progress, "daemon: seeding %d flags\n", n)
	if err := e.seed(ctx, files); err != nil {
		return nil, err
	}
	src := newMemSource(files)
	client, err := e.daemonClient(latency, kclient.TokenCountsNo)
	if err != nil {
		return nil, err
	}
	rig, err := startDaemon(ctx, src, client)
	if err != nil {
		return nil, err
	}
	defer rig.stop()
	if _, err := rig.waitReady(ctx); err != nil {
		return nil, err
	}
	out := map[string]daemonFigures{}
	sync := func(name string, trigger func() error) error {
		e.clock.Advance(benchDriftInterval) // the next check
		e.sandbox.ResetCalls()
		if err := rig.syncOnce(ctx, trigger); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		f := figuresOf(e)
		rec := rig.d.Status().Syncs[0]
		if rec.Result != daemon.ResultSuccess {
			return fmt.Errorf("%s: %s: %s", name, rec.Result, rec.Error)
		}
		if rec.Plan != nil {
			f.changes = rec.Plan.Changes
		}
		f.converged = rec.Converged
		out[name] = f
		fmt.Fprintf(progress, "daemon: %s: %d calls\n", name, f.calls)
		return nil
	}
	drift := func() error { rig.d.RequestSync("drift"); return nil }
	if err := sync("first drift check", drift); err != nil {
		return nil, err
	}
	if err := sync("drift", drift); err != nil {
		return nil, err
	}
	// Someone turns a flag's production on in Kameleoon.
	ui, err := e.seedClient()
	if err != nil {
		return nil, err
	}
	k := n / 2
	key := fmt.Sprintf("flag_%05d", k)
	if _, err := ui.Do(ctx, api.Request{Method: http.MethodPatch, Path: kclient.EnvironmentPath(benchSite, key, "production"),
		Body: fmt.Appendf(nil, `{"featureEnabled": %t}`, k%3 == 0)}); err != nil { // genRepo enables production unless k%3 == 0
		return nil, fmt.Errorf("change a flag in the sandbox: %w", err)
	}
	if err := sync("repair", drift); err != nil {
		return nil, err
	}
	// A commit changes one flag file; its push reaches the webhook.
	edited := n/3 + 1
	if err := sync("webhook", func() error {
		from := src.head()
		to, file := src.commit(genRepo(n, map[int]bool{edited: true}))
		return rig.push(from, to, file)
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// figuresOf counts the sandbox's log by kind.
func figuresOf(e *env) daemonFigures {
	var f daemonFigures
	for _, c := range e.sandbox.Calls() {
		f.calls++
		switch {
		case c.Path == "/oauth/token":
			f.token++
		case c.Method == http.MethodGet || c.Path == "/feature-flags/search":
			f.reads++
		default:
			f.writes++
		}
	}
	return f
}

// daemonClient is a daemon's API client: Kameleoon's limits in real time, latency on
// every call, token requests charged as counts says.
func (e *env) daemonClient(latency time.Duration, counts kclient.TokenCounting) (*kclient.Client, error) {
	return kclient.New(kclient.Config{
		BaseURL: e.url, ClientID: "sandbox", ClientSecret: "sandbox",
		HTTPClient: &http.Client{Transport: &latencyTransport{next: newTransport(), latency: latency}},
		Budget:     kclient.NewBudget(0, 0), TokenCounts: counts, Now: e.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
	})
}

// daemonRig is a running daemon.
type daemonRig struct {
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error
	began  time.Time
}

func startDaemon(ctx context.Context, src *memSource, client *kclient.Client) (*daemonRig, error) {
	d, err := daemon.New(daemon.Config{
		Source: src, Dir: ".", Vendors: []reconcile.Vendor{kameleoon.Vendor(client)}, Budget: client.Budget(),
		DriftInterval: benchDriftInterval, WebhookSecret: []byte(benchWebhookSecret), WebhookBranch: benchBranch,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &daemonRig{d: d, cancel: cancel, done: make(chan error, 1), began: time.Now()}
	go func() { r.done <- d.Run(ctx, nil, nil) }()
	return r, nil
}

func (r *daemonRig) stop() {
	r.cancel()
	<-r.done
}

// waitReady waits for the daemon's first sync and returns the time from Run to ready.
func (r *daemonRig) waitReady(ctx context.Context) (time.Duration, error) {
	deadline := time.Now().Add(benchDaemonWaitTime)
	for !r.d.Status().Ready {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("the daemon was not ready within %s: %+v", benchDaemonWaitTime, r.d.Status().Syncs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(r.began), nil
}

// syncOnce triggers one sync and waits for it to finish.
func (r *daemonRig) syncOnce(ctx context.Context, trigger func() error) error {
	n := len(r.d.Status().Syncs)
	if err := trigger(); err != nil {
		return err
	}
	deadline := time.Now().Add(benchDaemonWaitTime)
	for {
		s := r.d.Status()
		if len(s.Syncs) > n && s.Running == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no sync within %s", benchDaemonWaitTime)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// push delivers a signed GitHub push of branch main from before to after, changing
// file, to the daemon's webhook.
func (r *daemonRig) push(before, after, file string) error {
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/" + benchBranch, "before": before, "after": after,
		"commits":    []any{map[string]any{"added": []string{}, "removed": []string{}, "modified": []string{file}}},
		"repository": map[string]any{"full_name": "bench/flags"},
	})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(benchWebhookSecret))
	mac.Write(body)
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", after)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	rec := httptest.NewRecorder()
	r.d.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		return fmt.Errorf("webhook answered %d: %s", rec.Code, rec.Body.String())
	}
	return nil
}

// memSource is a Git source held in memory: revisions of generated repositories.
type memSource struct {
	mu   sync.Mutex
	revs map[string]fstest.MapFS
	tip  string
	n    int
}

func newMemSource(files fstest.MapFS) *memSource {
	m := &memSource{revs: map[string]fstest.MapFS{}}
	m.commit(files)
	return m
}

// commit makes files the new head and returns its revision and one file that changed.
func (m *memSource) commit(files fstest.MapFS) (rev, changed string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	sum := sha1.Sum(fmt.Appendf(nil, "bench revision %d", m.n))
	rev = hex.EncodeToString(sum[:])
	if prev, ok := m.revs[m.tip]; ok {
		if d := diffFiles(prev, files); len(d) > 0 {
			changed = d[0]
		}
	}
	m.revs[rev], m.tip = files, rev
	return rev, changed
}

func (m *memSource) head() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tip
}

// Fetch returns the head (daemon.Source).
func (m *memSource) Fetch(context.Context) (*gitsource.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &gitsource.Snapshot{Revision: m.tip, FS: m.revs[m.tip]}, nil
}

// ChangedFiles lists the files that differ between two revisions (daemon.Source).
func (m *memSource) ChangedFiles(_ context.Context, from, to string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok1 := m.revs[from]
	b, ok2 := m.revs[to]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("changed files %s..%s: %w", from, to, gitsource.ErrHistoryUnavailable)
	}
	return diffFiles(a, b), nil
}

// diffFiles lists the paths whose content differs between a and b, sorted.
func diffFiles(a, b fstest.MapFS) []string {
	var out []string
	for p, f := range b {
		if g, ok := a[p]; !ok || !bytes.Equal(g.Data, f.Data) {
			out = append(out, p)
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
