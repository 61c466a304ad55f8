package daemon

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/gittest"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/leader"
	"github.com/flagsync/flagsync/internal/logtest"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/notify"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// TestReplayWithFreshIDCausesNoSync: a captured signed delivery sent again with a new
// delivery id (which the signature does not cover) is answered duplicate and starts
// nothing, from any host; a new push naming the revision already applied and converged
// is answered up_to_date without a fetch.
func TestReplayWithFreshIDCausesNoSync(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitStartup()
	before := h.repo.Head(t)
	after := h.repo.Commit(t, map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on")
	files := []string{"flags/alpha.yaml"}
	for _, provider := range []string{"github", "gitea", "bitbucket-cloud", "generic"} {
		dl := pushDelivery(t, provider, testWebhookSecret, before, after, files, "first-"+provider)
		next := h.cycles() + 1
		code, body := h.post(dl.path, dl.header, dl.body)
		if provider == "github" {
			if code != http.StatusAccepted {
				t.Fatalf("first delivery: %d %s", code, body)
			}
			h.waitCycle(next)
			continue
		}
		// Another host's delivery of the revision now applied and converged.
		if code != http.StatusOK || !strings.Contains(body, `"up_to_date"`) {
			t.Errorf("%s delivery of the applied revision: %d %s, want 200 up_to_date", provider, code, strings.TrimSpace(body))
		}
	}
	writes, cycles, fetches := h.writes(), h.cycles(), h.status().LastFetched
	for i := range 20 {
		for _, provider := range []string{"github", "gitea", "bitbucket-cloud", "generic"} {
			dl := pushDelivery(t, provider, testWebhookSecret, before, after, files, fmt.Sprintf("fresh-%s-%d", provider, i))
			code, body := h.post(dl.path, dl.header, dl.body)
			if code != http.StatusOK || !strings.Contains(body, `"duplicate"`) && !strings.Contains(body, `"up_to_date"`) {
				t.Fatalf("replay %d from %s: %d %s, want 200 duplicate", i, provider, code, strings.TrimSpace(body))
			}
		}
	}
	if h.cycles() != cycles || !h.idle() || h.writes() != writes {
		t.Errorf("80 replays caused %d wake-ups and %d writes, want none", h.cycles()-cycles, h.writes()-writes)
	}
	if got := h.status().LastFetched; got == nil || !got.At.Equal(fetches.At) {
		t.Errorf("a replay fetched: last fetch %+v, was %+v", got, fetches)
	}
}

// TestPushBurstAtMostTwoSyncs: five distinct pushes in quick succession are merged by
// the debounce and the one-slot queue into at most two syncs, which apply the last.
func TestPushBurstAtMostTwoSyncs(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.WebhookDebounce = 500 * time.Millisecond }})
	h.waitStartup()
	cycles0 := h.cycles()
	var last string
	for i := range 5 {
		before := h.repo.Head(t)
		last = h.repo.Commit(t, map[string]string{"flags/beta.yaml": flagYAML("beta", fmt.Sprintf("Beta %d", i), i%2 == 0)}, "beta "+strconv.Itoa(i))
		dl := pushDelivery(t, "github", testWebhookSecret, before, last, []string{"flags/beta.yaml"}, "burst-"+strconv.Itoa(i))
		if code, body := h.post(dl.path, dl.header, dl.body); code != http.StatusAccepted {
			t.Fatalf("push %d: %d %s", i, code, body)
		}
	}
	h.waitFor("the last push to be applied", func() bool { return h.status().Revision == last && h.idle() })
	if n := h.cycles() - cycles0; n > 2 {
		t.Errorf("5 pushes caused %d syncs, want at most 2", n)
	}
}

// gate blocks the sandbox's calls while closed.
type gate struct {
	mu     sync.Mutex
	closed chan struct{} // nil while open
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

func (g *gate) wait() {
	g.mu.Lock()
	c := g.closed
	g.mu.Unlock()
	if c != nil {
		<-c
	}
}

// TestFailedSyncRetriesItself: a push whose write meets a storm of 429s past the
// client's retry cap fails; with no schedule and no further trigger, the daemon retries
// it on its own backoff and converges. /status shows throughout which revision was
// fetched, which was attempted and which is applied, and the retry.
func TestFailedSyncRetriesItself(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Schedule, c.DriftInterval = "", 0
		c.RetryBase, c.RetryMax = 100*time.Millisecond, 200*time.Millisecond
	}})
	start := h.waitStartup()
	rev0 := start.Revision
	const storm = 5 // kclient.DefaultMaxAttempts: every attempt of the write is refused
	h.sb.InjectFault(ksandbox.Fault{Method: http.MethodPatch, PathPrefix: "/feature-flags/", Status: http.StatusTooManyRequests, Count: storm})
	// Hold the retry's calls: it cannot end before the failed sync's state is checked.
	var g gate
	g.close()
	h.api.setHook(func(*http.Request) {
		h.d.mu.Lock()
		retrying := h.d.running != nil && h.d.running.Trigger == "retry"
		h.d.mu.Unlock()
		if retrying {
			g.wait()
		}
	})
	t.Cleanup(g.open)

	rev1, next := h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on")
	failed := h.waitCycle(next)
	if failed.Result != ResultFailed || failed.Summary.Failed != 1 || !strings.Contains(strings.Join(failed.Failures, " "), "429") {
		t.Fatalf("the stormed sync = %+v, want it failed on the 429s", failed)
	}
	s := h.status()
	if s.Revision != rev0 || s.LastApplied == nil || s.LastApplied.Revision != rev0 {
		t.Errorf("during the failure: revision %s, lastApplied %+v; want %s, the last revision applied", s.Revision, s.LastApplied, rev0)
	}
	if s.HeadRevision != rev1 || s.LastFetched == nil || s.LastFetched.Revision != rev1 {
		t.Errorf("during the failure: head %s, lastFetched %+v; want %s", s.HeadRevision, s.LastFetched, rev1)
	}
	if s.LastAttempted == nil || s.LastAttempted.Revision != rev1 || s.LastAttempted.Result != ResultFailed {
		t.Errorf("during the failure: lastAttempted %+v, want %s failed", s.LastAttempted, rev1)
	}
	if s.Retry == nil || s.Retry.Attempt != 1 || s.Retry.Next == nil || s.Retry.MaxAttempts != DefaultRetryAttempts || s.Retry.Exhausted || !strings.Contains(s.Retry.Reason, "failed") {
		t.Errorf("during the failure: retry %+v, want the first retry scheduled", s.Retry)
	}
	_, m := h.get("/metrics")
	for _, want := range []string{
		"flagsync_sync_retry_attempt 1",
		`flagsync_applied_revision_info{revision="` + rev0 + `"} 1`,
		`flagsync_fetched_revision_info{revision="` + rev1 + `"} 1`,
		`flagsync_attempted_revision_info{revision="` + rev1 + `"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics during the failure lacks %s", want)
		}
	}
	if strings.Contains(m, "flagsync_sync_retry_next_timestamp_seconds 0\n") {
		t.Error("/metrics shows no retry scheduled")
	}

	g.open()
	h.waitFor("the retry to apply the revision", func() bool { return h.status().Revision == rev1 && h.idle() })
	s = h.status()
	if s.Retry != nil || s.LastAttempted == nil || s.LastAttempted.Result != ResultSuccess || !s.Converged {
		t.Errorf("after the retry: retry %+v, lastAttempted %+v, converged %t", s.Retry, s.LastAttempted, s.Converged)
	}
	if rec := s.Syncs[0]; rec.Trigger != "retry" || rec.Result != ResultSuccess || rec.Revision != rev1 {
		t.Errorf("the converging sync = %+v, want a successful retry of %s", rec, rev1)
	}
	if on, _ := h.prodEnabled("alpha"); !on {
		t.Error("alpha was not turned on")
	}
	n429 := 0
	for _, c := range h.sb.Calls() {
		if c.Status == http.StatusTooManyRequests {
			n429++
		}
	}
	if n429 != storm {
		t.Errorf("%d answers were 429, want the %d injected", n429, storm)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, "flagsync_sync_retries_total 1") || !strings.Contains(m, "flagsync_sync_retry_attempt 0") {
		t.Error("/metrics does not show one retry run and none pending")
	}
}

// TestRetryIsBounded: a sync that keeps failing is retried at most RetryAttempts times,
// then waits for the next trigger.
func TestRetryIsBounded(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Schedule, c.DriftInterval = "", 0
		c.RetryBase, c.RetryMax, c.RetryAttempts = 10*time.Millisecond, 20*time.Millisecond, 3
	}})
	h.waitStartup()
	h.sb.InjectFault(ksandbox.Fault{Method: http.MethodPatch, PathPrefix: "/feature-flags/", Status: http.StatusTooManyRequests, Count: 1000})
	h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on")
	h.waitFor("the retries to run out", func() bool {
		s := h.status()
		return s.Retry != nil && s.Retry.Exhausted && h.idle()
	})
	s := h.status()
	retries := 0
	for _, r := range s.Syncs {
		if r.Trigger == "retry" {
			retries++
		}
	}
	if retries != 3 || s.Retry.Attempt != 3 || s.Retry.Next != nil {
		t.Errorf("%d retries run, retry state %+v; want 3 and none pending", retries, s.Retry)
	}
}

// receiver is a Standard Webhooks receiver that verifies each message as
// docs/notifications.md shows and keeps what it got.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []map[string]any
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := verifyStandardWebhook(rc.secret, r.Header, body, time.Now()); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, m)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) kinds() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, m := range rc.got {
		out = append(out, fmt.Sprint(m["type"]))
	}
	return out
}

// verifyStandardWebhook is the receiver's check of docs/notifications.md.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp too old or too new")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// TestNotificationsOnChange: against a local receiver, one signed message per event
// (sync failed, recovered, refused changes, drift found), each with the revision, the
// summary and the plan link, and nothing for syncs and ticks that change nothing.
func TestNotificationsOnChange(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	rc := &receiver{t: t, secret: secret}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	n, err := notify.New(notify.Config{
		Sinks:   []notify.Sink{&notify.Webhook{URL: notify.Secret(srv.URL + "/hooks"), Secret: notify.Secret(secret)}},
		PlanURL: "https://ci.example.com/plans/{revision}",
		Backoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Schedule, c.DriftInterval = "", 0
		c.RetryBase, c.RetryMax = 50*time.Millisecond, 50*time.Millisecond
		c.Notifier, c.NotifyScope = n, "kameleoon/flags"
	}})
	h.waitStartup()
	// From now on, a plan of more than one change is refused; the request that wakes
	// the loop orders this write before the loop's next read.
	h.d.cfg.MaxChanges = 1
	want := 0
	quiet := func(what string) {
		t.Helper()
		next := h.cycles() + 1
		h.d.request("schedule", false, nil)
		h.waitCycle(next)
		time.Sleep(50 * time.Millisecond) // a message would be on its way by now
		if k := rc.kinds(); len(k) != want {
			t.Fatalf("%s: messages %v, want %d", what, k, want)
		}
	}
	quiet("startup and a no-op tick")

	// A failing write, then its retry: sync_failed, then recovered.
	h.sb.InjectFault(ksandbox.Fault{Method: http.MethodPatch, PathPrefix: "/feature-flags/", Status: http.StatusTooManyRequests, Count: 5})
	rev1, _ := h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on")
	h.waitFor("sync_failed and recovered", func() bool { return len(rc.kinds()) >= 2 })
	want = 2
	quiet("after recovering")

	// A plan the --max-changes guard refuses: refused_changes, once, however often
	// the refused revision is looked at again.
	h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha 2", false), "flags/beta.yaml": flagYAML("beta", "Beta 2", true)}, "two flags")
	h.waitFor("refused_changes", func() bool { return len(rc.kinds()) >= 3 })
	want = 3
	h.d.RequestSync("signal") // the same refusal found again
	h.waitFor("the signal's sync", func() bool { return h.idle() && h.status().LastCheck.Trigger == "signal" })
	quiet("the refusal again")

	// Fixed in Git (the refused change reverted): recovered.
	h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true), "flags/beta.yaml": flagYAML("beta", "Beta", false)}, "revert")
	h.waitFor("recovered", func() bool { return len(rc.kinds()) >= 4 })
	want = 4
	quiet("after the fix")

	// Someone changes a flag in the service: the next full check finds (and repairs)
	// the drift: drift_found; the check after it finds none: recovered.
	raw, _ := h.sb.FlagJSON(testSite, "beta")
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	f["name"] = "Renamed in the UI"
	edited, _ := json.Marshal(f)
	if err := h.sb.SetFlagJSON(testSite, edited); err != nil {
		t.Fatal(err)
	}
	h.d.RequestSync("signal")
	h.waitFor("drift_found", func() bool { return len(rc.kinds()) >= 5 })
	want = 5
	quiet("after the drift")
	h.d.RequestSync("signal")
	h.waitFor("recovered", func() bool { return len(rc.kinds()) >= 6 })
	want = 6
	quiet("after the drift was repaired")

	got := rc.kinds()
	if strings.Join(got, ",") != "sync_failed,recovered,refused_changes,recovered,drift_found,recovered" {
		t.Errorf("messages %v", got)
	}
	rc.mu.Lock()
	first := rc.got[0]
	rc.mu.Unlock()
	data, _ := first["data"].(map[string]any)
	if data["revision"] != rev1 || data["scope"] != "kameleoon/flags" || data["plan_url"] != "https://ci.example.com/plans/"+rev1 || !strings.Contains(fmt.Sprint(data["summary"]), "failed") {
		t.Errorf("sync_failed message data %v", data)
	}
	if rc.bad != 0 {
		t.Errorf("%d messages failed verification", rc.bad)
	}
}

// TestWorkTreeTicksCallNothing: following docs/daemon.md in a fresh flags repository
// (the daemon syncs the work tree it runs in, where an older flagsync left a .flagsync
// folder), every tick on the unchanged, converged revision makes zero API calls, counted
// by the sandbox itself.
func TestWorkTreeTicksCallNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{local: true, config: func(c *Config) { c.Schedule = "@every 1s"; c.Jitter = 10 * time.Millisecond }})
	for _, f := range []string{".flagsync/sandbox.json", ".flagsync/cache/0123/HEAD", "flags/.flagsync/split-sandbox.json"} {
		p := filepath.Join(h.repo.Work, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := h.waitStartup()
	if rec.Revision != h.repo.Head(t) || rec.Reason == "the work tree has uncommitted changes" {
		t.Fatalf("startup sync %+v: the .flagsync folder made the tree dirty", rec)
	}
	sbCalls0 := len(h.sb.Calls())
	h.waitFor("three scheduled ticks", func() bool { return h.cycles() >= 4 && h.idle() })
	if n := len(h.sb.Calls()) - sbCalls0; n != 0 {
		t.Errorf("ticks on the unchanged, converged work tree made %d API calls", n)
	}
	if s := h.status(); s.LastCheck == nil || s.LastCheck.Result != ResultSkipped || len(s.Syncs) != 1 {
		t.Errorf("last check %+v, %d syncs: want skipped ticks after the one startup sync", s.LastCheck, len(s.Syncs))
	}
}

// replica is one daemon of several on the same repository and sandbox.
type replica struct {
	d      *Daemon
	base   string
	calls  atomic.Int64
	cancel context.CancelFunc
	done   chan error
	logs   *logtest.Buffer
	once   sync.Once
}

func (r *replica) status(t *testing.T) Status {
	t.Helper()
	resp, err := http.Get(r.base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// startReplica runs a daemon that elects its leader with the lock file lock.
func startReplica(t *testing.T, name, gitURL, apiURL, lock string) *replica {
	t.Helper()
	r := &replica{logs: &logtest.Buffer{}, done: make(chan error, 1)}
	logger := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	src, err := gitsource.New(gitsource.Options{Repo: gitURL, Ref: "main", Path: "flags", CacheDir: t.TempDir(), Depth: 1,
		Auth: gitsource.Auth{Username: gitUser, Password: gitPass}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	budget := kclient.NewBudget(1_000_000, 10_000_000)
	client, err := kclient.New(kclient.Config{BaseURL: apiURL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Budget: budget, BackoffBase: 2 * time.Millisecond, Logger: logger, Observer: APIObserver(m, &r.calls)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.base = "http://" + ln.Addr().String()
	el, err := leader.NewFile(leader.FileConfig{Path: lock, Identity: Identity(name, r.base), Logger: logger,
		Timings: leader.Timings{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	r.d, err = New(Config{Source: src, Dir: "flags", Vendors: []reconcile.Vendor{kameleoon.Vendor(client)}, Calls: r.calls.Load, Budget: budget, Metrics: m,
		WebhookSecret: []byte(testWebhookSecret), WebhookBranch: "main", Elector: el, Logger: logger, WebhookDebounce: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.d.Run(ctx, ln, nil) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("%s logs (last 40 lines):\n%s", name, lastLines(r.logs.String(), 40))
		}
	})
	return r
}

func (r *replica) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(waitLimit):
			t.Errorf("replica did not stop within %s", waitLimit)
		}
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFollowerHandsPushToLeader: of two daemons electing a leader with one lock file,
// the follower stays ready and makes no API call; a push delivered to it is handed to
// the leader, which syncs it; when the leader stops, the follower takes over.
func TestFollowerHandsPushToLeader(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, testRepo(), "initial flags")
	gitURL := gittest.StartHTTP(t, repo, gitUser, gitPass)
	sb, err := ksandbox.New(ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Environments: []string{"development", "production"}})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	lock := filepath.Join(t.TempDir(), "flagsync.lock")

	a := startReplica(t, "a", gitURL, api.URL, lock)
	waitUntil(t, "a to lead and sync", func() bool {
		s := a.status(t)
		return s.Role == "leader" && s.Revision == repo.Head(t)
	})
	b := startReplica(t, "b", gitURL, api.URL, lock)
	waitUntil(t, "b to follow a", func() bool {
		s := b.status(t)
		return s.Role == "follower" && strings.HasPrefix(s.Leader.Leader, "a@") && s.LastCheck != nil
	})
	if resp, err := http.Get(b.base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the follower's /readyz: %v %v, want 200", resp, err)
	}

	before := repo.Head(t)
	after := repo.Commit(t, map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on")
	dl := pushDelivery(t, "github", testWebhookSecret, before, after, []string{"flags/alpha.yaml"}, "to-the-follower")
	req, _ := http.NewRequest(http.MethodPost, b.base+dl.path, strings.NewReader(string(dl.body)))
	req.Header = dl.header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), "accepted") {
		t.Fatalf("push to the follower: %d %s, want 202 accepted (from the leader)", resp.StatusCode, body)
	}
	waitUntil(t, "the leader to apply the push", func() bool { return a.status(t).Revision == after })
	if b.calls.Load() != 0 {
		t.Errorf("the follower made %d API calls", b.calls.Load())
	}
	resp, _ = http.Get(b.base + "/metrics")
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`flagsync_webhook_forwarded_total{outcome="forwarded"} 1`, `flagsync_leader_role{backend="file",role="follower"} 1`, "flagsync_leader_writing 0"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("the follower's /metrics lacks %s", want)
		}
	}

	a.stop(t)
	waitUntil(t, "b to take over", func() bool { s := b.status(t); return s.Role == "leader" && s.Revision == after })
	if n := b.status(t).Syncs[0]; n.Trigger != "elected" || n.Summary.Applied != 0 {
		t.Errorf("b's first sync as leader: %+v, want a full sync that finds nothing to do", n)
	}
}

// fakeElector leads from the start until lose is called; its guard then refuses.
type fakeElector struct {
	mu     sync.Mutex
	lost   bool
	cancel context.CancelFunc
}

func (e *fakeElector) Run(ctx context.Context, cb leader.Callbacks) error {
	term, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.cancel = cancel
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cb.OnStartedLeading(term)
	}()
	<-ctx.Done()
	cancel()
	<-done
	return nil
}

// lose ends the term as a lapsed lease does: the guard refuses at once, and the term's
// context is cancelled.
func (e *fakeElector) lose() {
	e.mu.Lock()
	e.lost = true
	cancel := e.cancel
	e.mu.Unlock()
	cancel()
}

func (e *fakeElector) IsLeader() bool { return e.Writing() }
func (e *fakeElector) Writing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.lost
}
func (e *fakeElector) Guard(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !e.Writing() {
		return &leader.NotLeaderError{Identity: "me", Leader: "other"}
	}
	return nil
}
func (e *fakeElector) Leader() string {
	if e.Writing() {
		return "me"
	}
	return "other"
}
func (e *fakeElector) Identity() string { return "me" }
func (e *fakeElector) Status() leader.Status {
	st := leader.Status{Backend: leader.BackendFile, Role: leader.RoleFollower, Identity: "me", Leader: e.Leader(), Writing: e.Writing()}
	if st.Writing {
		st.Role = leader.RoleLeader
	}
	return st
}

// TestLostLeadershipStopsWrites: when the term ends while a sync is writing, the write
// already on its way finishes, and nothing more is sent: not the other flag's write, not
// a retry. The sync is recorded as stopped by the lost leadership, and the replica
// reports itself a follower.
func TestLostLeadershipStopsWrites(t *testing.T) {
	el := &fakeElector{}
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Elector, c.Concurrency = el, 1
		c.RetryBase = 10 * time.Millisecond
	}})
	h.waitFor("the elected sync", func() bool { s := h.d.Status(); return s.Role == "leader" && s.Revision == h.repo.Head(t) && h.idle() })
	writes0 := h.writes()
	var once sync.Once
	h.api.setHook(func(r *http.Request) {
		if isWrite(r) {
			once.Do(el.lose) // the lease lapses while the first write is on its way
		}
	})
	// alpha: two changes in order (its name, its production environment): a started flag
	// would send its second change after the sync was told to stop; only the guard
	// stops it. beta: a flag not started yet.
	_, next := h.push(map[string]string{
		"flags/alpha.yaml": flagYAML("alpha", "Alpha renamed", true),
		"flags/beta.yaml":  flagYAML("beta", "Beta", true),
	}, "two flags")
	rec := h.waitCycle(next)
	if n := h.writes() - writes0; n != 1 {
		t.Errorf("%d writes reached the service, want 1: the one on its way when the term ended", n)
	}
	if rec.Plan == nil || rec.Plan.Changes != 3 {
		t.Fatalf("the sync planned %+v, want 3 changes (two of alpha, one of beta)", rec.Plan)
	}
	if rec.Result != ResultFailed || !strings.Contains(rec.Error, "stopped leading") || !strings.Contains(strings.Join(rec.Failures, " "), "not the leader") {
		t.Errorf("the sync = %+v, want it stopped by the lost leadership", rec)
	}
	time.Sleep(100 * time.Millisecond) // a retry would be due by now
	s := h.d.Status()
	if s.Role != "follower" || s.Retry != nil || h.writes()-writes0 != 1 {
		t.Errorf("after the term: role %s, retry %+v, %d writes; want a follower, no retry, nothing more sent", s.Role, s.Retry, h.writes()-writes0)
	}
	if code, _ := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("the follower's /readyz = %d, want 200", code)
	}
}
