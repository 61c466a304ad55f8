package faults

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/gittest"
	"github.com/flagsync/flagsync/internal/kameleoon"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// daemonRig is a daemon following a Git remote (behind a gitFront) and syncing into a
// world's sandbox, with its endpoints on a loopback port.
type daemonRig struct {
	t    *testing.T
	w    *world
	d    *daemon.Daemon
	base string
}

// syncNow asks for a full sync, waits until it has run and returns the status after it.
func (r *daemonRig) syncNow() daemon.Status {
	r.t.Helper()
	before := r.d.Status().LastCheck
	r.d.RequestSync("test")
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := r.d.Status()
		if s.Running == nil && s.LastCheck != nil && (before == nil || s.LastCheck.At.After(before.At)) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", "  ")
			r.t.Fatalf("the requested sync did not finish within 20s; status:\n%s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get fetches a daemon endpoint.
func (r *daemonRig) get(path string) string {
	r.t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestDaemonRidesOutFaults runs the daemon through an invalid revision, a Git outage and
// a failing API, one after another: each is reported in /status with a clear error
// while the last good revision stays applied and nothing is written, and the first sync
// after the faults converges on the newest revision.
func TestDaemonRidesOutFaults(t *testing.T) {
	t.Parallel()
	forEachReading(t, func(t *testing.T, reading ksandbox.Reading) {
		t.Parallel()
		testDaemonRidesOutFaults(t, reading)
	})
}

func testDaemonRidesOutFaults(t *testing.T, reading ksandbox.Reading) {
	w := newWorld(t, ksandbox.Options{Strict: reading.Strict})
	flags := genFlags(6)
	repo := gittest.NewRepo(t)
	revA := repo.Commit(t, repoFiles(flags), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	front := startGitFront(t, srv.URL)
	remote := front.url(srv.URL)
	src := newGitSource(t, w, remote, t.TempDir(), 2*time.Second)
	p := w.proc(procOptions{})
	budget := api.NewBudgetWindows(api.Window{Limit: 1_000_000, Period: 10 * time.Second})
	d, err := daemon.New(daemon.Config{
		Source: src, Dir: "flags", Vendors: []reconcile.Vendor{kameleoon.Vendor(p.client)}, Calls: p.calls.Load, Budget: budget, Metrics: metrics.New(),
		WebhookSecret: []byte(canaryWebhookSecret), WebhookBranch: "main", AdminToken: canaryAdminToken,
		Logger: w.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the daemon did not stop within 20s")
		}
	})
	r := &daemonRig{t: t, w: w, d: d, base: "http://" + ln.Addr().String()}

	// The startup sync: the daemon asked for it itself.
	deadline := time.Now().Add(20 * time.Second)
	for s := d.Status(); len(s.Syncs) == 0 || s.Running != nil; s = d.Status() {
		if time.Now().After(deadline) {
			t.Fatal("no startup sync within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := d.Status(); s.Revision != revA || !s.Converged {
		t.Fatalf("after the startup sync: revision %q converged %t, want %s converged", s.Revision, s.Converged, revA)
	}
	var lines []string
	expect := func(phase string, s daemon.Status, result string, want ...string) {
		t.Helper()
		if len(s.Syncs) == 0 {
			t.Fatalf("%s: no sync listed", phase)
		}
		rec := s.Syncs[0]
		if rec.Result != result {
			t.Errorf("%s: result %q, want %q (error %q)", phase, rec.Result, result, rec.Error)
		}
		assertErrorNames(t, phase+": the sync's error", rec.Error, want...)
		lines = append(lines, phase+": "+rec.Result+" "+strings.TrimSpace(rec.Error))
	}

	// 1. An invalid revision (a broken file with a good edit): not applied, reported.
	flags[1].exposition = 41
	bad := repoFiles(flags)
	bad["flags/zz_broken.yaml"] = brokenFlag
	revBad := repo.Commit(t, bad, "broken")
	writes0 := w.sb.Writes()
	s := r.syncNow()
	expect("invalid revision", s, daemon.ResultInvalid)
	if v := s.LastValidationFailure; v == nil || v.Revision != revBad || !v.Current || v.Problems < 2 {
		t.Errorf("lastValidationFailure = %+v, want %s with its problems", v, revBad)
	}
	if s.Revision != revA {
		t.Errorf("revision %q after an invalid one, want the last good %s", s.Revision, revA)
	}

	// 2. The fix is pushed while the Git server is down.
	fixed := repoFiles(flags)
	fixed["flags/zz_broken.yaml"] = ""
	revC := repo.Commit(t, fixed, "fixed")
	front.down()
	s = r.syncNow()
	expect("git down", s, daemon.ResultFailed, remote, "connection refused")
	front.up()

	// 3. The Git server is back, but the API's read fails on every attempt: the list, or
	// the search that reads what changed since the daemon's last read (issue 18).
	w.sb.InjectFault(ksandbox.Fault{PathPrefix: "/feature-flags", Status: 503, Count: testMaxAttempts})
	s = r.syncNow()
	expect("API read failing", s, daemon.ResultFailed, "/feature-flags", "503 Service Unavailable")
	if n := w.sb.Writes() - writes0; n != 0 {
		t.Errorf("%d writes while the faults lasted, want 0", n)
	}
	if s.Revision != revA {
		t.Errorf("revision %q while the faults lasted, want %s", s.Revision, revA)
	}
	status, metricsText := r.get("/status"), r.get("/metrics")
	if !strings.Contains(metricsText, `flagsync_syncs_total{result="invalid"} 1`) || !strings.Contains(metricsText, `flagsync_syncs_total{result="failed"} 2`) {
		t.Errorf("/metrics does not count the invalid and failed syncs:\n%s", grepLines(metricsText, "flagsync_syncs_total"))
	}

	// 4. Faults gone: the next sync converges on the fixed revision, edit included.
	s = r.syncNow()
	if rec := s.Syncs[0]; rec.Result != daemon.ResultSuccess || s.Revision != revC || !s.Converged {
		t.Fatalf("after the faults: result %q (%s), revision %q, converged %t; want success on %s", rec.Result, rec.Error, s.Revision, s.Converged, revC)
	}
	if s.LastValidationFailure == nil || s.LastValidationFailure.Current {
		t.Errorf("lastValidationFailure %+v: want it kept, no longer current", s.LastValidationFailure)
	}
	applied := w.sb.Writes() - writes0
	if applied != 1 {
		t.Errorf("the converging sync sent %d writes, want 1 (the edit that came with the broken file)", applied)
	}
	writes1 := w.sb.Writes()
	if s = r.syncNow(); w.sb.Writes() != writes1 || s.Syncs[0].Result != daemon.ResultSuccess {
		t.Errorf("a further sync sent %d writes (result %s), want 0", w.sb.Writes()-writes1, s.Syncs[0].Result)
	}
	for what, text := range map[string]string{"/status": status + r.get("/status"), "/metrics": metricsText + r.get("/metrics")} {
		w.assertNoSecrets(what, text)
	}
	w.settle(repoFiles(flags), revC)
	summary(t, "fault daemon-faults%s: %s; %q; then converged on %s (%d write), a further sync sent 0 writes, /status and /metrics hold no secret, %d duplicates",
		readingTag(reading), w.stats(p), lines, revC[:7], applied, len(w.duplicates()))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
