package kameleoon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// These tests count API calls with the sandbox's call log, never the client's own count:
// what Kameleoon would receive.

// testClock is a clock tests move by hand, shared by the sandbox (flag dates, token
// expiry) and the clients.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// callsWorld is a sandbox on a hand-moved clock, whose own rate limiter is off (the
// clients' budgets keep Kameleoon's limits).
type callsWorld struct {
	sb    *ksandbox.Server
	url   string
	clock *testClock
}

func newCallsWorld(t *testing.T, strict []ksandbox.Variant) *callsWorld {
	t.Helper()
	clock := newTestClock()
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Now: clock.Now, Strict: strict,
		Environments: []string{"development", "production"}})
	return &callsWorld{sb: sb, url: ts.URL, clock: clock}
}

// process returns a client as a new flagsync process has one: no token yet, and a fresh
// budget of Kameleoon's limits.
func (w *callsWorld) process(t *testing.T) *kclient.Client {
	t.Helper()
	return w.processWith(t, nil)
}

// processWith is process with budget (nil: Kameleoon's limits).
func (w *callsWorld) processWith(t *testing.T, budget *api.Budget) *kclient.Client {
	t.Helper()
	c, err := kclient.New(kclient.Config{BaseURL: w.url, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Now: w.clock.Now, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sync runs one sync of fsys through v and returns its report and the calls the sandbox
// logged for it.
func (w *callsWorld) sync(t *testing.T, v reconcile.Vendor, fsys fstest.MapFS, adjust func(*reconcile.Input)) (*reconcile.Report, []ksandbox.Call) {
	t.Helper()
	w.sb.ResetCalls()
	in := reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{v}}
	if adjust != nil {
		adjust(&in)
	}
	rep, err := reconcile.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep, w.sb.Calls()
}

// seed creates fsys's flags in the sandbox with a process of its own, one second of the
// clock per call (as flags are created over time), then moves the clock on a minute.
func (w *callsWorld) seed(t *testing.T, fsys fstest.MapFS) {
	t.Helper()
	c, err := kclient.New(kclient.Config{BaseURL: w.url, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Now: w.clock.Now, Budget: api.NewBudgetWindows(), Observer: func(api.CallInfo) { w.clock.Advance(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := w.sync(t, Vendor(c), fsys, func(in *reconcile.Input) { in.Concurrency = 8 })
	if !rep.Converged {
		t.Fatalf("seeding did not converge: %+v", rep.Summary)
	}
	w.clock.Advance(time.Minute)
}

// manyFlags is a repository of n flags on siteA, flag_0000 …; the flags in on have
// production enabled.
func manyFlags(n int, on map[int]bool) fstest.MapFS {
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte("siteCode: " + siteA + "\nenvironments: [development, production]\n")}}
	for i := range n {
		key := fmt.Sprintf("flag_%04d", i)
		fsys["flags/"+key+".yaml"] = &fstest.MapFile{Data: []byte(flagYAML(key, "", on[i]))}
	}
	return fsys
}

// every returns the indexes 0, step, 2·step, … below n.
func every(n, step int) map[int]bool {
	out := map[int]bool{}
	for i := 0; i < n; i += step {
		out[i] = true
	}
	return out
}

// tally counts logged calls by kind.
type tally struct{ token, reads, writes, other int }

func count(calls []ksandbox.Call) tally {
	var n tally
	for _, c := range calls {
		switch {
		case c.Path == "/oauth/token":
			n.token++
		case c.Method == http.MethodGet || c.Path == "/feature-flags/search":
			n.reads++
		case c.Method == http.MethodPost || c.Method == http.MethodPatch:
			n.writes++
		default:
			n.other++
		}
	}
	return n
}

func lines(calls []ksandbox.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s %d", c.Method, c.Path, c.Status)
	}
	return b.String()
}

// checkPrice checks that the run's plan priced exactly what the sandbox logged.
func checkPrice(t *testing.T, rep *reconcile.Report, calls []ksandbox.Call) {
	t.Helper()
	p := rep.Plan.Price
	if p == nil || len(p.Services) != 1 {
		t.Fatalf("plan price = %+v, want one service", p)
	}
	sp, n := p.Services[0], count(calls)
	if p.Calls != len(calls) || sp.Token != n.token {
		t.Errorf("priced %d calls (%d token), the sandbox logged %d (%d token):%s", p.Calls, sp.Token, len(calls), n.token, lines(calls))
	}
	reads, writes := sp.Reads, 0
	if !p.DryRun {
		reads += sp.ConfirmReads
		writes = sp.Writes
	}
	if reads != n.reads || writes != n.writes {
		t.Errorf("priced %d reads and %d writes, the sandbox logged %d and %d:%s", reads, writes, n.reads, n.writes, lines(calls))
	}
}

// TestOnePercentOfAThousandFlags is issue 18's figure: a sync (a new process) of 1,000
// flags of which 1 % changed costs 10 list pages and 10 writes, plus the token: the
// patches' answers confirm them, no read follows. The plan priced exactly that.
func TestOnePercentOfAThousandFlags(t *testing.T) {
	w := newCallsWorld(t, nil)
	w.seed(t, manyFlags(1000, nil))
	rep, calls := w.sync(t, Vendor(w.process(t)), manyFlags(1000, every(1000, 100)), nil)
	if got, want := count(calls), (tally{token: 1, reads: 10, writes: 10}); got != want || !rep.Converged || len(rep.Plan.Changes) != 10 {
		t.Errorf("calls %+v, want %+v; converged %t, %d changes:%s", got, want, rep.Converged, len(rep.Plan.Changes), lines(calls))
	}
	checkPrice(t, rep, calls)
	sp := rep.Plan.Price.Services[0]
	if !sp.Fits || sp.Waves != 1 || sp.Window == nil || sp.Window.Left != 990 || sp.Window.Apply != 10 {
		t.Errorf("price %+v, window %+v: want it to fit in one wave, 10 of the 990 calls left this hour", sp, sp.Window)
	}
}

// TestPriceMatchesTheCallLog: for several plan shapes, and under every reading of the
// sandbox, the plan's price is what the sync then spends, call for call.
func TestPriceMatchesTheCallLog(t *testing.T) {
	for _, rd := range ksandbox.Readings() {
		t.Run(rd.Name, func(t *testing.T) {
			w := newCallsWorld(t, rd.Strict)
			c := w.processWith(t, kclient.NewBudget(100000, 100000)) // the readings that get each flag make hundreds of calls
			base := manyFlags(30, nil)
			shapes := []struct {
				name   string
				fsys   fstest.MapFS
				adjust func(*reconcile.Input)
			}{
				{"creates", base, nil},
				{"environment patches", manyFlags(30, every(30, 7)), nil},
				{"a dry run prices its reads", base, func(in *reconcile.Input) { in.DryRun = true }},
				{"archives", func() fstest.MapFS {
					fsys := manyFlags(30, every(30, 7))
					delete(fsys, "flags/flag_0003.yaml")
					delete(fsys, "flags/flag_0004.yaml")
					return fsys
				}(), func(in *reconcile.Input) { in.Prune = true }},
				{"in sync", nil, nil},
			}
			last := base
			for _, sh := range shapes {
				fsys := sh.fsys
				if fsys == nil {
					fsys = last
				}
				w.clock.Advance(time.Minute)
				rep, calls := w.sync(t, Vendor(c), fsys, sh.adjust)
				checkPrice(t, rep, calls)
				if !rep.DryRun && !rep.Converged {
					t.Errorf("%s: not converged: %v", sh.name, rep.Remaining)
				}
				if t.Failed() {
					t.Fatalf("%s: price %+v", sh.name, rep.Plan.Price)
				}
				if !rep.DryRun {
					last = fsys
				}
			}
		})
	}
}

// TestWritesConfirmThemselves: no confirming read follows a write whose answer vouches
// for its flag, under every reading; a read follows only a write whose answer was lost
// or cannot vouch.
func TestWritesConfirmThemselves(t *testing.T) {
	patch := "/feature-flags/" + siteA + "/flag_0000/production"
	for _, tt := range []struct {
		name     string
		fault    *ksandbox.Fault
		confirms int // confirming GETs
	}{
		{"the answer vouches", nil, 0},
		// A dropped connection: the client sends the merge patch again; the second
		// answer vouches.
		{"a dropped answer is sent again", &ksandbox.Fault{Method: "PATCH", PathPrefix: patch, AfterHandle: true, Drop: true}, 0},
		{"a partial answer", &ksandbox.Fault{Method: "PATCH", PathPrefix: patch, AfterHandle: true, Status: 200, Body: `{"featureKey":"flag_0000"}`}, 1},
		{"an unparsable answer", &ksandbox.Fault{Method: "PATCH", PathPrefix: patch, AfterHandle: true, Status: 200, Body: "<html>"}, 1},
		// Every attempt answers 502 after applying: the write failed as far as the client
		// knows, yet may have landed.
		{"an answer lost every time", &ksandbox.Fault{Method: "PATCH", PathPrefix: patch, AfterHandle: true, Status: 502, Count: 5}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newCallsWorld(t, nil)
			w.seed(t, manyFlags(3, nil))
			if tt.fault != nil {
				w.sb.InjectFault(*tt.fault)
			}
			rep, calls := w.sync(t, Vendor(w.process(t)), manyFlags(3, every(3, 3)), nil)
			if got := count(calls); got.reads != 1+tt.confirms {
				t.Errorf("%d reads, want the list and %d confirming reads:%s", got.reads, tt.confirms, lines(calls))
			}
			if !rep.Converged {
				t.Errorf("not converged: %+v, remaining %v", rep.Summary, rep.Remaining)
			}
		})
	}
}

// TestDriftCheck: a vendor that lives across syncs (a daemon's) reads a site whole once,
// then only what changed: a steady-state check is one call; a change made in Kameleoon
// is found by that one call; a deletion shows in the total count and the site is listed
// again; every FullEvery-th read lists the site; an account whose search refuses the sort
// is listed every time.
func TestDriftCheck(t *testing.T) {
	w := newCallsWorld(t, nil)
	fsys := manyFlags(250, nil)
	w.seed(t, fsys)
	big := func() *api.Budget { return kclient.NewBudget(100000, 100000) } // no waiting in the test
	v := VendorWith(w.processWith(t, big()), Drift{FullEvery: 5})
	step := func(name string, want tally, changes int) {
		t.Helper()
		w.clock.Advance(5 * time.Minute) // a drift interval; the token (2 h) outlives the test
		rep, calls := w.sync(t, v, fsys, nil)
		if got := count(calls); got != want || len(rep.Plan.Changes) != changes || !rep.Converged {
			t.Errorf("%s: calls %+v, want %+v; %d changes, want %d; converged %t:%s", name, got, want, len(rep.Plan.Changes), changes, rep.Converged, lines(calls))
		}
		checkPrice(t, rep, calls)
	}
	step("first read: the whole list", tally{token: 1, reads: 3}, 0)
	step("steady state: one search", tally{reads: 1}, 0)

	// Someone turns flag_0007's production on in Kameleoon.
	ui := w.processWith(t, big())
	if _, err := ui.Do(context.Background(), api.Request{Method: "PATCH", Path: kclient.EnvironmentPath(siteA, "flag_0007", "production"),
		Body: []byte(`{"featureEnabled":true}`)}); err != nil {
		t.Fatal(err)
	}
	step("a change in Kameleoon: found by the search, repaired", tally{reads: 1, writes: 1}, 1)
	step("the repair is steady", tally{reads: 1}, 0)

	// Someone deletes flag_0011: the count shows it; the list finds it gone; it is created again.
	if _, err := ui.Do(context.Background(), api.Request{Method: "DELETE", Path: kclient.FlagPath(siteA, "flag_0011")}); err != nil {
		t.Fatal(err)
	}
	step("a deletion: the count differs, the list follows", tally{reads: 1 + 3, writes: 1}, 1)
	step("after the list: one search", tally{reads: 1}, 0)
	step("steady", tally{reads: 1}, 0)
	step("steady", tally{reads: 1}, 0)
	step("steady", tally{reads: 1}, 0)
	step("the safety net: every 5th read lists the site", tally{reads: 3}, 0)
	step("and then searches again", tally{reads: 1}, 0)

	// 150 flags change in Kameleoon, a second apart: more than a search page. The search
	// must see that its first page does not reach back to the last read, and read on.
	for i := 100; i < 250; i++ {
		w.clock.Advance(time.Second)
		if _, err := ui.Do(context.Background(), api.Request{Method: "PATCH", Path: kclient.EnvironmentPath(siteA, fmt.Sprintf("flag_%04d", i), "production"),
			Body: []byte(`{"featureEnabled":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	step("150 changed: two search pages, 150 repairs", tally{reads: 2, writes: 150}, 150)

	// The account refuses the sort from now on: the list, every time.
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags/search", Status: 400, Count: 2,
		Body: `{"message":"sort: field dateModified is not sortable"}`})
	step("the search refused: the list", tally{reads: 2 + 3}, 0)
	step("and the list from then on", tally{reads: 3}, 0)
}

// TestWebhookPartialSyncIsTwoCalls is issue 18's figure for a webhook changing one file:
// the daemon's partial sync gets the flag and patches it, and the patch's answer confirms
// it.
func TestWebhookPartialSyncIsTwoCalls(t *testing.T) {
	w := newCallsWorld(t, nil)
	w.seed(t, manyFlags(20, nil))
	v := Vendor(w.process(t))
	w.sync(t, v, manyFlags(20, nil), nil) // the daemon's startup sync: the token is held from then on
	w.clock.Advance(time.Minute)
	rep, calls := w.sync(t, v, manyFlags(20, map[int]bool{5: true}), func(in *reconcile.Input) {
		in.Only = []plan.Address{{Service: "Kameleoon", Scope: siteA, Key: "flag_0005"}}
	})
	want := []string{"GET " + kclient.FlagPath(siteA, "flag_0005"), "PATCH " + kclient.EnvironmentPath(siteA, "flag_0005", "production")}
	var got []string
	for _, c := range calls {
		got = append(got, c.Method+" "+c.Path)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !rep.Converged {
		t.Errorf("calls:%s\nwant %q; converged %t", lines(calls), want, rep.Converged)
	}
	checkPrice(t, rep, calls)
	// The drift check that follows knows the patched flag from the patch's answer.
	w.clock.Advance(time.Hour)
	rep, calls = w.sync(t, v, manyFlags(20, map[int]bool{5: true}), nil)
	if got := count(calls); got != (tally{reads: 1}) || len(rep.Plan.Changes) != 0 {
		t.Errorf("drift check after the partial sync: %+v, %d changes:%s", got, len(rep.Plan.Changes), lines(calls))
	}
}

// TestSyncLargerThanTheWindowGoesInWaves: a sync whose writes do not fit what is left of
// the budget's longest window says so before it starts (the price, a warning) and
// applies in waves, without a 429. The "hour" here lasts 300 ms.
func TestSyncLargerThanTheWindowGoesInWaves(t *testing.T) {
	w := newCallsWorld(t, nil)
	w.seed(t, manyFlags(30, nil))
	budget := api.NewBudgetWindows(api.Window{Limit: 50, Period: 100 * time.Millisecond}, api.Window{Limit: 20, Period: 300 * time.Millisecond})
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	rep, calls := w.sync(t, Vendor(w.processWith(t, budget)), manyFlags(30, every(30, 1)), func(in *reconcile.Input) { in.Logger = logger })
	sp := rep.Plan.Price.Services[0]
	if sp.Fits || sp.Waves != 2 || sp.Window.Left != 19 || sp.Window.Apply != 30 {
		t.Errorf("price %+v, window %+v: want 30 writes, 19 left, 2 waves", sp, sp.Window)
	}
	var txt strings.Builder
	if err := plan.RenderText(&txt, rep.Plan, plan.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "more than the 19 left in this 300ms window: it goes in 2 waves") {
		t.Errorf("the plan does not say it goes in waves:\n%s", tail(txt.String()))
	}
	if !strings.Contains(logs.String(), "does not fit the API budget") {
		t.Errorf("no warning before applying:\n%s", logs.String())
	}
	n := count(calls)
	for _, c := range calls {
		if c.Status == http.StatusTooManyRequests {
			t.Errorf("a 429: %s %s", c.Method, c.Path)
		}
	}
	if n.writes != 30 || !rep.Converged {
		t.Errorf("%+v, converged %t", n, rep.Converged)
	}
	checkPrice(t, rep, calls)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-4):], "\n")
}
