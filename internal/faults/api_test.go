package faults

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// The API scenarios: each breaks the Automation API in one way while a sync runs, checks
// that the sync rides it out (or, while the fault outlasts the retries, fails with an
// error that names it), and ends with settle: an invalid revision sends nothing, the
// next run converges, a further run sends no write, no flag was created twice.

// attempt is one call of the log and what came before it for the same request.
type attempt struct {
	call     ksandbox.Call
	failures int           // consecutive failures of this request before this attempt
	gap      time.Duration // since the previous attempt of the same request
}

// retries pairs every call that followed a failed attempt of the same request (same
// method, path, query and body) with the time since that attempt was received.
func retries(calls []ksandbox.Call, failed func(ksandbox.Call) bool) []attempt {
	calls = slices.Clone(calls)
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	last := map[string]ksandbox.Call{}
	fails := map[string]int{}
	var out []attempt
	for _, c := range calls {
		id := c.Method + " " + c.Path + "?" + c.Query + " " + string(c.Body)
		if prev, ok := last[id]; ok && failed(prev) {
			out = append(out, attempt{call: c, failures: fails[id], gap: c.Time.Sub(prev.Time)})
		}
		last[id] = c
		if failed(c) {
			fails[id]++
		} else {
			fails[id] = 0
		}
	}
	return out
}

// busiestWindow returns the most calls the server received within any span of period.
func busiestWindow(calls []ksandbox.Call, period time.Duration) int {
	times := make([]time.Time, len(calls))
	for i, c := range calls {
		times[i] = c.Time
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < period; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

func is(status int) func(ksandbox.Call) bool {
	return func(c ksandbox.Call) bool { return c.Status == status }
}

// persistentFault makes the change to one environment fail on every attempt of one
// sync, and returns that sync's failed-change errors.
func persistentFault(t *testing.T, w *world, p *proc, files map[string]string, rev string, f ksandbox.Fault) []string {
	t.Helper()
	f.Count = testMaxAttempts
	w.sb.InjectFault(f)
	rep, err := w.run(testContext(t), p, files, rev)
	if err != nil {
		t.Fatalf("sync %s: %v", rev, err)
	}
	errs := failedErrors(rep)
	if len(errs) != 1 || rep.Converged {
		t.Fatalf("sync %s under a persistent %d on %s: %s, converged %t; want exactly one failed change\n%s",
			rev, f.Status, f.PathPrefix, rep.Summary, rep.Converged, failures(rep))
	}
	return errs
}

func TestFault429StormRetryAfter(t *testing.T) {
	w := newWorld(t, ksandbox.Options{})
	flags := genFlags(10)
	window := api.Window{Limit: 6, Period: 300 * time.Millisecond}
	p := w.proc(procOptions{budget: api.NewBudgetWindows(window)})

	// Something else spends the account's budget: the list and the creates get 429s
	// that ask for 150 ms.
	const retryAfter = 150 * time.Millisecond
	w.sb.InjectFault(ksandbox.Fault{Method: "GET", PathPrefix: "/feature-flags", Status: 429, RetryAfter: "0.15", Count: 2})
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 429, RetryAfter: "0.15", Count: 6})
	w.mustApply(p, repoFiles(flags), "rev-1")

	// While the 429s outlast the retries, the change fails and says so.
	flags[1].exposition = 99
	target := kclient.EnvironmentPath(siteA, flags[1].key, "production")
	errs := persistentFault(t, w, p, repoFiles(flags), "rev-2",
		ksandbox.Fault{Method: "PATCH", PathPrefix: target, Status: 429, RetryAfter: "0.05"})
	assertErrorNames(t, "the error of a change refused with 429", errs[0], "429 Too Many Requests", "PATCH "+target)

	calls := w.sb.Calls()
	waits := retries(calls, is(429))
	shortest := time.Hour
	for _, a := range waits {
		want := retryAfter
		if a.call.Method == http.MethodPatch {
			want = 50 * time.Millisecond
		}
		if a.gap < want {
			t.Errorf("%s %s was retried %s after a 429 that asked for %s", a.call.Method, a.call.Path, a.gap, want)
		}
		shortest = min(shortest, a.gap)
	}
	if len(waits) < 8 {
		t.Errorf("%d retries after a 429, want at least 8 (2 lists, 6 creates)", len(waits))
	}
	busiest := busiestWindow(calls, window.Period)
	if busiest > window.Limit {
		t.Errorf("the server received %d calls within %s; the client's budget allows %d", busiest, window.Period, window.Limit)
	}
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-2")
	summary(t, "fault 429-storm-retry-after: %s, %d answered 429, shortest wait %s (Retry-After 150ms/50ms), busiest %s window %d calls (budget %d), error %q, converged, %d duplicates",
		st, w.statuses()[429], shortest.Round(time.Millisecond), window.Period, busiest, window.Limit, errs[0], len(w.duplicates()))
}

func TestFault429StormBackoff(t *testing.T) { forEachReading(t, testFault429StormBackoff) }

func testFault429StormBackoff(t *testing.T, reading ksandbox.Reading) {
	w := newWorld(t, ksandbox.Options{Strict: reading.Strict})
	flags := genFlags(6)
	const base, most = 20 * time.Millisecond, 60 * time.Millisecond
	p := w.proc(procOptions{backoff: base, backoffMax: most, attempts: 5})

	// No Retry-After: the client backs off from BackoffBase, doubling up to BackoffMax.
	// One flag at a time, so that one create meets three 429s in a row.
	w.sb.InjectFault(ksandbox.Fault{Method: "GET", PathPrefix: "/feature-flags", Status: 429, Count: 2})
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 429, Count: 3})
	w.mustApply(p, repoFiles(flags), "rev-1", func(in *reconcile.Input) { in.Concurrency = 1 })

	var gaps []string
	waits := retries(w.sb.Calls(), is(429))
	for _, a := range waits {
		want := base << (a.failures - 1)
		want = min(want, most)
		if a.gap < want {
			t.Errorf("%s %s: retry %d came %s after the 429, want at least %s (base %s doubling, capped at %s)",
				a.call.Method, a.call.Path, a.failures, a.gap, want, base, most)
		}
		gaps = append(gaps, a.gap.Round(time.Millisecond).String())
	}
	if len(waits) != 5 {
		t.Errorf("%d retries after a 429, want 5", len(waits))
	}

	flags[2].stagingOn = !flags[2].stagingOn
	target := kclient.EnvironmentPath(siteA, flags[2].key, "staging")
	errs := persistentFault(t, w, w.proc(procOptions{}), repoFiles(flags), "rev-2",
		ksandbox.Fault{Method: "PATCH", PathPrefix: target, Status: 429})
	assertErrorNames(t, "the error of a change refused with 429", errs[0], "429 Too Many Requests", "PATCH "+target)
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-2")
	summary(t, "fault 429-storm-backoff%s: %s, waits %s (base %s, doubling, cap %s, up to 50%% jitter), error %q, converged, %d duplicates",
		readingTag(reading), st, strings.Join(gaps, " "), base, most, errs[0], len(w.duplicates()))
}

func TestFault5xxAnd423Bursts(t *testing.T) { forEachReading(t, testFault5xxAnd423Bursts) }

func testFault5xxAnd423Bursts(t *testing.T, reading ksandbox.Reading) {
	w := newWorld(t, ksandbox.Options{Strict: reading.Strict})
	flags := genFlags(8)
	w.mustApply(w.proc(procOptions{}), repoFiles(flags), "rev-1")

	// Every flag changes two environments while the patches and the list call meet
	// bursts of server errors and locks.
	flags = edited(flags)
	for _, f := range []ksandbox.Fault{
		{Method: "GET", PathPrefix: "/feature-flags", Status: 502, Count: 2}, // three failures of
		{Method: "GET", PathPrefix: "/feature-flags", Status: 423, Count: 1}, // four attempts
		{Method: "PATCH", Status: 503, Count: 3},
		{Method: "PATCH", Status: 423, Count: 3},
		{Method: "PATCH", Status: 500, Count: 2},
		{Method: "PATCH", AfterHandle: true, Status: 504, Count: 2}, // applied, then a 504
	} {
		w.sb.InjectFault(f)
	}
	p := w.proc(procOptions{})
	rep := w.mustApply(p, repoFiles(flags), "rev-2")
	if rep.Summary.Applied != 16 {
		t.Errorf("%s, want 16 patches applied", rep.Summary)
	}
	got := w.statuses()
	for status, least := range map[int]int{502: 2, 423: 4, 503: 3, 500: 2, 504: 2} {
		if got[status] < least {
			t.Errorf("the sandbox answered %d %d times, want at least %d: a fault was not met", status, got[status], least)
		}
	}

	// While the list call keeps failing, nothing is written and the error names it.
	calls0, writes0 := len(w.sb.Calls()), w.sb.Writes()
	flags[0].exposition = 1
	w.sb.InjectFault(ksandbox.Fault{Method: "GET", PathPrefix: "/feature-flags", Status: 503, Count: testMaxAttempts})
	_, err := w.run(testContext(t), w.proc(procOptions{}), repoFiles(flags), "rev-3")
	if err == nil {
		t.Fatal("a sync whose list call always fails returned no error")
	}
	assertErrorNames(t, "the error of a failed list", err.Error(), "503 Service Unavailable", "GET /feature-flags", "site "+siteA)
	if n := w.sb.Writes() - writes0; n != 0 {
		t.Errorf("a sync that could not read the live flags sent %d writes", n)
	}
	listAttempts := len(w.sb.Calls()) - calls0

	// A persistent 423 on one environment fails that change only.
	target := kclient.EnvironmentPath(siteA, flags[0].key, "production")
	errs := persistentFault(t, w, w.proc(procOptions{}), repoFiles(flags), "rev-3",
		ksandbox.Fault{Method: "PATCH", PathPrefix: target, Status: 423})
	assertErrorNames(t, "the error of a locked change", errs[0], "423 Locked", "PATCH "+target)
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-3")
	summary(t, "fault 5xx-423-bursts%s: %s, answered 500/502/503/504/423 %d/%d/%d/%d/%d times, failing list: %d calls, 0 writes, error %q; locked patch: error %q; converged, %d duplicates",
		readingTag(reading), st, got[500], got[502], got[503], got[504], got[423], listAttempts, err, errs[0], len(w.duplicates()))
}

func TestFault5xxOnCreate(t *testing.T) { forEachReading(t, testFault5xxOnCreate) }

func testFault5xxOnCreate(t *testing.T, reading ksandbox.Reading) {
	w := newWorld(t, ksandbox.Options{Strict: reading.Strict})
	flags := genFlags(8)
	// A 500 before the create is handled (the flag is not created), then creates that
	// take effect but answer 502 and 503: the client must look before it sends again.
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 500, Count: 1})
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Status: 502, Count: 2})
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Status: 503, Count: 1})
	p := w.proc(procOptions{})
	w.mustApply(p, repoFiles(flags), "rev-1")

	checks := assertCreatesChecked(t, w)
	if _, conflicts := w.created(); conflicts != 0 {
		t.Errorf("%d creates were sent again for a flag that existed (409): the client resent blindly", conflicts)
	}

	// While every create of a flag fails, that change fails and names the create.
	flags = append(flags, genFlag{key: "flag_late", exposition: 5})
	errs := persistentFault(t, w, w.proc(procOptions{}), repoFiles(flags), "rev-2",
		ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 500})
	assertErrorNames(t, "the error of a failed create", errs[0], "500 Internal Server Error", "POST /feature-flags", "create "+siteA+"/flag_late")
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-2")
	_, conflicts := w.created()
	summary(t, "fault 5xx-on-create%s: %s, %d existence checks after an ambiguous create, %d creates refused 409, error %q, converged, %d duplicates",
		readingTag(reading), st, checks, conflicts, errs[0], len(w.duplicates()))
}

// assertCreatesChecked checks that every create that failed ambiguously (5xx, or no
// answer) was followed by a read of that flag before anything else was sent for it, and
// that a create that had taken effect was not sent again. It returns the checks seen.
func assertCreatesChecked(t *testing.T, w *world) int {
	t.Helper()
	calls := w.sb.Calls()
	checks := 0
	for i, c := range calls {
		if c.Method != http.MethodPost || c.Path != "/feature-flags" || (c.Status != 0 && c.Status < 500) {
			continue
		}
		key := createKey(t, c.Body)
		site, fk, _ := strings.Cut(key, "/")
		path := kclient.FlagPath(site, fk)
		var next *ksandbox.Call
		for j := i + 1; j < len(calls); j++ {
			if calls[j].Path == path || (calls[j].Path == "/feature-flags" && calls[j].Method == http.MethodPost && createKey(t, calls[j].Body) == key) {
				next = &calls[j]
				break
			}
		}
		switch {
		case next == nil || next.Method != http.MethodGet:
			t.Errorf("create of %s answered %d was not followed by a read of the flag", key, c.Status)
		case next.Status == http.StatusOK:
			checks++
			for _, later := range calls[i+1:] {
				if later.Method == http.MethodPost && later.Path == "/feature-flags" && createKey(t, later.Body) == key {
					t.Errorf("%s existed after its ambiguous create, but the create was sent again", key)
				}
			}
		default:
			checks++
		}
	}
	return checks
}

func TestFaultDroppedConnections(t *testing.T) { forEachReading(t, testFaultDroppedConnections) }

func testFaultDroppedConnections(t *testing.T, reading ksandbox.Reading) {
	w := newWorld(t, ksandbox.Options{Strict: reading.Strict})
	flags := genFlags(8)
	// Creates: the connection drops before the request is handled (nothing created),
	// or after (created, answer lost).
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Drop: true, Count: 2})
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Drop: true, Count: 2})
	p := w.proc(procOptions{})
	w.mustApply(p, repoFiles(flags), "rev-1")
	checks := assertCreatesChecked(t, w)
	if _, conflicts := w.created(); conflicts != 0 {
		t.Errorf("%d creates were sent again for a flag that existed (409)", conflicts)
	}

	// Patches: the same, on two environments of every flag.
	flags = edited(flags)
	w.sb.InjectFault(ksandbox.Fault{Method: "PATCH", Drop: true, Count: 3})
	w.sb.InjectFault(ksandbox.Fault{Method: "PATCH", AfterHandle: true, Drop: true, Count: 3})
	w.mustApply(p, repoFiles(flags), "rev-2")
	dropped := w.statuses()[0]
	if dropped < 10 {
		t.Errorf("%d connections were dropped, want 10", dropped)
	}

	// While every attempt of a patch loses its connection, the change fails and says where.
	flags[3].exposition = 3
	target := kclient.EnvironmentPath(siteA, flags[3].key, "production")
	errs := persistentFault(t, w, w.proc(procOptions{}), repoFiles(flags), "rev-3",
		ksandbox.Fault{Method: "PATCH", PathPrefix: target, Drop: true})
	assertErrorNames(t, "the error of a patch whose connections dropped", errs[0], "PATCH "+target)
	if !strings.Contains(errs[0], "EOF") && !strings.Contains(errs[0], "connection reset") {
		t.Errorf("the error does not say the connection was lost: %s", errs[0])
	}
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-3")
	summary(t, "fault dropped-connections%s: %s, %d connections dropped (before and after the write), %d existence checks, error %q, converged, %d duplicates",
		readingTag(reading), st, w.statuses()[0], checks, errs[0], len(w.duplicates()))
}

// clock is a sandbox clock that a test can move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// onWrite returns a before-hook that calls f once, when the n-th write arrives.
func onWrite(n int64, f func()) func(*http.Request) {
	var seen atomic.Int64
	return func(r *http.Request) {
		if isWriteRequest(r) && seen.Add(1) == n {
			f()
		}
	}
}

func isWriteRequest(r *http.Request) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodPatch) && strings.HasPrefix(r.URL.Path, "/feature-flags") && r.URL.Path != "/feature-flags/search"
}

func TestFaultTokenExpiry(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	w := newWorld(t, ksandbox.Options{TokenTTL: time.Second, Now: clk.now})
	flags := genFlags(6)

	// Tokens live one second and the sync takes longer (each create is slow): the
	// client renews the token before it expires.
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Latency: 250 * time.Millisecond, Count: 6})
	p := w.proc(procOptions{})
	w.mustApply(p, repoFiles(flags), "rev-1", func(in *reconcile.Input) { in.Concurrency = 1 })
	renewed := w.tokenCalls()
	if renewed < 2 {
		t.Errorf("a 1.5 s sync with 1 s tokens fetched %d tokens, want at least 2", renewed)
	}
	early401 := w.statuses()[401]

	// The API's clock jumps past the token's expiry in the middle of a sync (a token
	// revoked or expired early, by the client's clock): the refused calls get a new
	// token and go through.
	flags = edited(flags)
	w.front.setBefore(onWrite(3, func() { clk.advance(3 * time.Hour) }))
	w.mustApply(p, repoFiles(flags), "rev-2")
	w.front.setBefore(nil)
	refused := w.statuses()[401] - early401
	if refused < 1 {
		t.Error("no call was refused after the API's clock passed the token's expiry: the fault was not met")
	}

	// While the token endpoint is down, the calls fail and say it.
	clk.advance(3 * time.Hour)
	flags[0].exposition = 2
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/oauth/token", Status: 503, Count: testMaxAttempts})
	rep, err := w.run(testContext(t), p, repoFiles(flags), "rev-3")
	if err == nil {
		t.Fatalf("a sync without any token: %s, no error", rep.Summary)
	}
	assertErrorNames(t, "the error of a sync that got no token", err.Error(), "access token", "POST /oauth/token", "503 Service Unavailable")
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-3")
	summary(t, "fault token-expiry: %s, a 1.5 s sync with 1 s tokens fetched %d tokens (%d calls refused 401), %d calls refused 401 after the API's clock passed the expiry and retried with a new token, error %q, converged, %d duplicates",
		st, renewed, early401, refused, err, len(w.duplicates()))
}

func TestFaultTokenRevoked(t *testing.T) { forEachReading(t, testFaultTokenRevoked) }

func testFaultTokenRevoked(t *testing.T, reading ksandbox.Reading) {
	w := newWorld(t, ksandbox.Options{Strict: reading.Strict})
	flags := genFlags(12)

	// Every token is revoked when the fourth write arrives, with four flags in flight.
	w.front.setBefore(onWrite(4, w.sb.RevokeTokens))
	p := w.proc(procOptions{})
	w.mustApply(p, repoFiles(flags), "rev-1")
	w.front.setBefore(nil)
	refused, tokens := w.statuses()[401], w.tokenCalls()
	if refused < 1 || tokens < 2 {
		t.Errorf("%d calls refused 401 and %d tokens fetched; want the revocation met and a new token", refused, tokens)
	}

	// Revoked again, and the token endpoint now refuses the client (and quotes its
	// secret back): the affected changes fail with the token endpoint's answer, redacted.
	flags = edited(flags)
	body := fmt.Sprintf(`{"error":"invalid_client","error_description":"client secret %s was disabled"}`, canaryClientSecret)
	w.front.setBefore(onWrite(1, func() {
		w.sb.RevokeTokens()
		w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/oauth/token", Status: 401, Body: body, Count: 1})
	}))
	rep, err := w.run(testContext(t), p, repoFiles(flags), "rev-2")
	w.front.setBefore(nil)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	errs := failedErrors(rep)
	if len(errs) == 0 {
		t.Fatalf("no change failed while the token endpoint refused the client: %s", rep.Summary)
	}
	assertErrorNames(t, "the error of a change without a token", errs[0], "POST /oauth/token", "401 Unauthorized", "invalid_client")
	st := w.stats(p)
	w.settle(repoFiles(flags), "rev-2")
	summary(t, "fault token-revoked%s: %s, %d calls refused 401 after the revocation, %d tokens fetched; token endpoint refusing: %d changes failed with %q; converged, %d duplicates",
		readingTag(reading), st, refused, tokens, len(errs), errs[0], len(w.duplicates()))
}
