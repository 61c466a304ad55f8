package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/kameleoon"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// TestWebhookFromEachProvider pushes a commit and delivers each Git host's documented
// push payload, correctly signed, and expects the change in the sandbox after a partial
// sync of the one flag, in a handful of API calls.
func TestWebhookFromEachProvider(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	start := h.waitStartup()
	if start.Mode != ModeFull || start.Plan == nil || start.Plan.ByAction["create"] != 2 {
		t.Fatalf("startup sync = %+v, want a full sync creating 2 flags", start)
	}
	on := false
	for i, provider := range providers {
		t.Run(provider, func(t *testing.T) {
			on = !on
			before := h.repo.Head(t)
			after := h.repo.Commit(t, map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", on)}, "alpha in production: "+provider)
			dl := pushDelivery(t, provider, testWebhookSecret, before, after, []string{"flags/alpha.yaml"}, fmt.Sprintf("delivery-%s-%d", provider, i))
			next := h.cycles() + 1
			code, body := h.post(dl.path, dl.header, dl.body)
			if code != http.StatusAccepted || !strings.Contains(body, `"accepted"`) {
				t.Fatalf("%s webhook: %d %s, want 202 accepted", provider, code, body)
			}
			rec := h.waitCycle(next)
			if got, _ := h.prodEnabled("alpha"); got != on {
				t.Fatalf("alpha production featureEnabled = %t after the %s webhook, want %t; sync: %+v", got, provider, on, rec)
			}
			if rec.Trigger != "webhook" || rec.Revision != after || rec.Mode != ModePartial || rec.Result != ResultSuccess {
				t.Errorf("sync record = %+v, want a successful partial webhook sync of %s", rec, after)
			}
			if !slices.Equal(rec.Flags, []string{testSite + "/alpha"}) {
				t.Errorf("partial sync planned %q, want only alpha", rec.Flags)
			}
			// One get, one patch, one confirming get.
			if rec.APICalls > 3 || rec.Summary.Applied != 1 {
				t.Errorf("one-flag change took %d API calls (%d applied), want at most 3 (1)", rec.APICalls, rec.Summary.Applied)
			}
		})
	}
	_, metricsText := h.get("/metrics")
	for _, p := range []string{"github", "gitlab", "gitea", "forgejo", "gogs", "bitbucket-cloud", "bitbucket-server", "generic"} {
		if want := fmt.Sprintf(`flagsync_webhook_deliveries_total{outcome="accepted",provider=%q}`, p); !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestWebhookRefused sends deliveries that must not sync: a wrong signature, another
// branch, a body over the limit and a replayed delivery.
func TestWebhookRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitStartup()
	before := h.repo.Head(t)
	after := h.repo.Commit(t, map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on")
	files := []string{"flags/alpha.yaml"}

	// A delivery accepted once, to replay below.
	first := pushDelivery(t, "github", testWebhookSecret, before, after, files, "replayed-id")
	next := h.cycles() + 1
	if code, body := h.post(first.path, first.header, first.body); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", code, body)
	}
	h.waitCycle(next)
	writes, cycles := h.writes(), h.cycles()

	wrongSig := pushDelivery(t, "github", "not-the-secret", before, after, files, "wrong-sig")
	otherBranch := pushDelivery(t, "generic", testWebhookSecret, before, after, files, "other-branch")
	otherBranch.body = bytes.Replace(otherBranch.body, []byte(`refs/heads/main`), []byte(`refs/heads/feature`), 1)
	otherBranch.header.Set("X-Flagsync-Signature", "sha256="+hexMAC(testWebhookSecret, otherBranch.body))
	huge := pushDelivery(t, "generic", testWebhookSecret, before, after, files, "huge")
	huge.body = append(bytes.TrimSuffix(huge.body, []byte("}")), []byte(`,"padding":"`+strings.Repeat("x", 1<<20)+`"}`)...)
	huge.header.Set("X-Flagsync-Signature", "sha256="+hexMAC(testWebhookSecret, huge.body))
	gitlabWrongToken := pushDelivery(t, "gitlab", "not-the-secret", before, after, files, "gitlab-wrong")

	tests := []struct {
		name     string
		dl       delivery
		code     int
		outcome  string
		provider string
	}{
		{"wrong signature", wrongSig, http.StatusUnauthorized, "unauthorized", "github"},
		{"wrong gitlab token", gitlabWrongToken, http.StatusUnauthorized, "unauthorized", "gitlab"},
		{"other branch", otherBranch, http.StatusAccepted, "ignored", "generic"},
		{"oversized body", huge, http.StatusRequestEntityTooLarge, "too_large", "generic"},
		{"replayed delivery id", first, http.StatusOK, "duplicate", "github"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.post(tt.dl.path, tt.dl.header, tt.dl.body)
			if code != tt.code || !strings.Contains(body, `"`+tt.outcome+`"`) {
				t.Errorf("got %d %s, want %d %s", code, strings.TrimSpace(body), tt.code, tt.outcome)
			}
			// OnPush runs before the response is written: a sync it asked for would
			// already be pending or running.
			if h.cycles() != cycles || !h.idle() {
				t.Errorf("the delivery triggered a sync")
			}
		})
	}
	if h.writes() != writes {
		t.Errorf("refused deliveries caused %d writes", h.writes()-writes)
	}
	_, metricsText := h.get("/metrics")
	for _, want := range []string{
		`flagsync_webhook_deliveries_total{outcome="unauthorized",provider="github"} 1`,
		`flagsync_webhook_deliveries_total{outcome="too_large",provider="generic"} 1`,
		`flagsync_webhook_deliveries_total{outcome="duplicate",provider="github"} 1`,
		`flagsync_webhook_deliveries_total{outcome="ignored",provider="generic"} 1`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestWebhookBurstCoalesces delivers 100 concurrent webhooks for one push, each with its
// own delivery id, while the first sync is held in its first API call: the push is
// recognised by what its signature covers, so one delivery is accepted and 99 are
// answered duplicate; at most two wake-ups follow and one sync writes.
func TestWebhookBurstCoalesces(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitStartup()
	before := h.repo.Head(t)
	after := h.repo.Commit(t, map[string]string{"flags/beta.yaml": flagYAML("beta", "Beta", true)}, "beta on")

	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.api.setHook(func(*http.Request) {
		once.Do(func() {
			close(held)
			<-release
		})
	})
	cycles0, writes0 := h.cycles(), h.writes()

	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for w := range 10 {
		wg.Go(func() {
			for i := range 10 {
				dl := pushDelivery(t, "github", testWebhookSecret, before, after, []string{"flags/beta.yaml"}, fmt.Sprintf("burst-%d-%d", w, i))
				code, _ := h.post(dl.path, dl.header, dl.body)
				codes <- code
			}
		})
	}
	wg.Wait()
	close(codes)
	answers := map[int]int{}
	for code := range codes {
		answers[code]++
	}
	if answers[http.StatusAccepted] != 1 || answers[http.StatusOK] != 99 {
		t.Fatalf("burst answered %v, want 1 × 202 accepted and 99 × 200 duplicate", answers)
	}
	_, metricsText := h.get("/metrics")
	for _, want := range []string{`flagsync_webhook_deliveries_total{outcome="accepted",provider="github"} 1`, `flagsync_webhook_deliveries_total{outcome="duplicate",provider="github"} 99`} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	select {
	case <-held:
	case <-time.After(waitLimit):
		t.Fatal("no sync reached the API")
	}
	close(release)
	h.waitFor("the burst's syncs to finish", func() bool { return h.idle() && h.cycles() > cycles0 })

	if n := h.cycles() - cycles0; n > 2 {
		t.Errorf("100 webhooks caused %d wake-ups, want at most 2", n)
	}
	syncs := 0
	for _, r := range h.d.Status().Syncs {
		if r.ID > cycles0 {
			syncs++
			if r.Requests < 1 {
				t.Errorf("sync %d answered %d requests", r.ID, r.Requests)
			}
		}
	}
	if syncs > 2 {
		t.Errorf("100 webhooks caused %d syncs, want at most 2", syncs)
	}
	if w := h.writes() - writes0; w != 1 {
		t.Errorf("the burst caused %d writes, want 1", w)
	}
	if on, _ := h.prodEnabled("beta"); !on {
		t.Error("beta was not turned on")
	}
}

// TestShutdownFinishesFlagInFlight cancels the daemon's context (SIGTERM) while the
// first change of a flag is in flight: that flag's remaining changes are still sent in
// order, no new flag is started, and Run returns nil.
func TestShutdownFinishesFlagInFlight(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Concurrency = 1; c.ShutdownTimeout = 10 * time.Second }})
	h.waitStartup()

	// alpha changes name and both environments: three ordered patches. beta changes too.
	alpha := strings.Replace(flagYAML("alpha", "Alpha renamed", true), "featureEnabled: true\n    defaultVariationKey: \"on\"", "featureEnabled: false\n    defaultVariationKey: \"on\"", 1)
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.api.setHook(func(r *http.Request) {
		if r.Method == http.MethodPatch {
			once.Do(func() {
				close(arrived)
				<-release
			})
		}
	})
	writes0 := h.writes()
	h.push(map[string]string{"flags/alpha.yaml": alpha, "flags/beta.yaml": flagYAML("beta", "Beta", true)}, "alpha and beta")
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("no patch reached the API")
	}
	h.cancel() // SIGTERM: the context from main is cancelled
	// Run must not return while the flag is in flight.
	select {
	case err := <-h.done:
		t.Fatalf("Run returned %v with a change in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	var err error
	select {
	case err = <-h.done:
		close(h.done)
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after the flag in flight completed")
	}
	if err != nil {
		t.Fatalf("Run returned %v, want nil (exit 0)", err)
	}

	var patches []string
	for _, c := range h.sb.Calls() {
		if c.Method == http.MethodPatch {
			patches = append(patches, c.Path)
		}
	}
	want := []string{
		"/feature-flags/" + testSite + "/alpha",
		"/feature-flags/" + testSite + "/alpha/development",
		"/feature-flags/" + testSite + "/alpha/production",
	}
	if !slices.Equal(patches, want) {
		t.Errorf("patches sent:\n  %s\nwant alpha's three, in order, and none of beta:\n  %s", strings.Join(patches, "\n  "), strings.Join(want, "\n  "))
	}
	if w := h.writes() - writes0; w != 3 {
		t.Errorf("%d writes, want 3", w)
	}
	if on, _ := h.prodEnabled("alpha"); !on {
		t.Error("alpha's last change (production on) was not applied")
	}
	if on, _ := h.prodEnabled("beta"); on {
		t.Error("beta was started after the shutdown began")
	}
	if rec := h.d.Status().Syncs[0]; rec.Summary.Applied != 3 || rec.Summary.Skipped != 1 || !strings.Contains(rec.Error, "interrupted by shutdown") {
		t.Errorf("interrupted sync recorded as %+v", rec)
	}
}

// TestShutdownVisibleWhileFlagInFlight cancels the daemon's context while a change is in
// flight: before that change ends, /readyz already answers 503 "shutting down", a
// webhook starts no further sync, and the logs say the shutdown began.
func TestShutdownVisibleWhileFlagInFlight(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Concurrency = 1; c.ShutdownTimeout = 10 * time.Second }})
	h.waitStartup()
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.api.setHook(func(r *http.Request) {
		if r.Method == http.MethodPatch {
			once.Do(func() {
				close(arrived)
				<-release
			})
		}
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha renamed", true)}, "alpha renamed")
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("no patch reached the API")
	}
	h.cancel() // SIGTERM
	h.waitFor("/readyz to report the shutdown", func() bool {
		code, body := h.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
	h.waitFor("a log line about the shutdown", func() bool {
		return strings.Contains(h.logs.String(), `"msg":"shutting down: no new trigger or flag is taken`)
	})
	seq := h.d.Status().Syncs
	h.d.RequestSync("signal") // a trigger during the shutdown is dropped
	close(release)
	select {
	case err := <-h.done:
		close(h.done)
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after the flag in flight completed")
	}
	if got := h.d.Status().Syncs; len(got) != len(seq)+1 {
		t.Errorf("%d syncs recorded after the shutdown began, want only the interrupted one", len(got)-len(seq))
	}
}

// TestInvalidRevisionKeepsLastGood pushes a revision that does not validate: nothing
// is read or written, /status and /metrics say why, the revision is not retried, and a
// fixed revision is applied.
func TestInvalidRevisionKeepsLastGood(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	good := h.waitStartup().Revision
	bad := strings.Replace(flagYAML("alpha", "Alpha", true), "defaultVariationKey: \"off\"", "defaultVariationKey: \"maybe\"", 1)

	tests := []struct {
		name  string
		files map[string]string
		file  string
		error string // the start of the sync's error, when the count is known
	}{
		{"changed flag file (partial path)", map[string]string{"flags/alpha.yaml": bad}, "flags/alpha.yaml", "1 problem in 1 file: "},
		{"settings file (full path)", map[string]string{"flags/flagsync.yaml": "siteCode: 12\n"}, "flags/flagsync.yaml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls0 := h.calls.Load()
			rev, next := h.push(tt.files, "break "+tt.file)
			rec := h.waitCycle(next)
			if rec.Result != ResultInvalid || rec.Revision != rev || rec.Problems == 0 {
				t.Fatalf("sync = %+v, want an invalid result for %s", rec, rev)
			}
			if !strings.HasPrefix(rec.Error, tt.error) {
				t.Errorf("sync error %q, want it to start with %q", rec.Error, tt.error)
			}
			if n := h.calls.Load() - calls0; n != 0 {
				t.Errorf("an invalid revision made %d API calls", n)
			}
			s := h.status()
			v := s.LastValidationFailure
			if v == nil || !v.Current || v.Revision != rev || len(v.Diagnostics) == 0 || v.Diagnostics[0].File != tt.file {
				t.Fatalf("status lastValidationFailure = %+v, want the diagnostics of %s", v, tt.file)
			}
			if s.Revision != good || s.HeadRevision != rev {
				t.Errorf("status revision=%s head=%s, want the last good %s applied and head %s", s.Revision, s.HeadRevision, good, rev)
			}
			if _, m := h.get("/metrics"); !strings.Contains(m, "flagsync_validation_failed 1") || !strings.Contains(m, `flagsync_syncs_total{result="invalid"}`) {
				t.Error("/metrics does not show the validation failure")
			}
			if !strings.Contains(h.logs.String(), tt.file) {
				t.Error("the logs do not name the invalid file")
			}

			// The same revision is not tried again: a tick skips it without an API call.
			next = h.cycles() + 1
			h.d.request("schedule", false, nil)
			h.waitCycle(next)
			if chk := h.d.Status().LastCheck; chk.Result != ResultSkipped || !strings.Contains(chk.Reason, "failed validation") {
				t.Errorf("tick on the invalid revision: %+v, want skipped", chk)
			}
			if n := h.calls.Load() - calls0; n != 0 {
				t.Errorf("retrying the invalid revision made %d API calls", n)
			}

			// Put the file back: the new revision validates again.
			fixed := map[string]string{tt.file: testRepo()[tt.file]}
			rev, next = h.push(fixed, "fix "+tt.file)
			if rec := h.waitCycle(next); rec.Result != ResultSuccess {
				t.Fatalf("sync of the fixed revision = %+v", rec)
			}
			s = h.status()
			if s.Revision != rev || s.LastValidationFailure == nil || s.LastValidationFailure.Current {
				t.Errorf("after the fix: revision=%s failure=%+v, want %s applied and the failure no longer current", s.Revision, s.LastValidationFailure, rev)
			}
			good = rev
		})
	}
}

// TestSuspendPlansWithoutWriting suspends applying through the admin endpoint: a push
// is planned but nothing is written; resuming applies it.
func TestSuspendPlansWithoutWriting(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitStartup()

	for _, tc := range []struct {
		name string
		auth string
		code int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer " + testAdminToken + "x", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testAdminToken, http.StatusUnauthorized},
	} {
		hd := http.Header{}
		if tc.auth != "" {
			hd.Set("Authorization", tc.auth)
		}
		if code, body := h.post("/suspend", hd, nil); code != tc.code {
			t.Errorf("%s: POST /suspend = %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	if h.d.Status().Suspended {
		t.Fatal("suspended by a refused request")
	}

	admin := http.Header{"Authorization": {"Bearer " + testAdminToken}, "Content-Type": {"application/x-www-form-urlencoded"}}
	if code, body := h.post("/suspend", admin, []byte("reason=incident+42")); code != http.StatusOK {
		t.Fatalf("POST /suspend = %d %s", code, body)
	}
	writes0 := h.writes()
	_, next := h.push(map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)}, "alpha on while suspended")
	rec := h.waitCycle(next)
	if !rec.DryRun || rec.Plan == nil || rec.Plan.Changes != 1 || rec.Result != ResultSuccess {
		t.Fatalf("suspended sync = %+v, want a dry run planning 1 change", rec)
	}
	if w := h.writes() - writes0; w != 0 {
		t.Fatalf("suspended daemon sent %d writes", w)
	}
	s := h.status()
	if !s.Suspended || s.Suspension == nil || s.Suspension.By != "api" || s.Suspension.Reason != "incident 42" {
		t.Errorf("status suspended=%t suspension=%+v", s.Suspended, s.Suspension)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, "flagsync_suspended 1") {
		t.Error("/metrics does not show flagsync_suspended 1")
	}

	next = h.cycles() + 1
	if code, body := h.post("/resume", admin, nil); code != http.StatusOK {
		t.Fatalf("POST /resume = %d %s", code, body)
	}
	rec = h.waitCycle(next)
	if rec.DryRun || rec.Trigger != "resume" || rec.Summary.Applied != 1 || !rec.Converged {
		t.Fatalf("sync after resume = %+v, want the change applied", rec)
	}
	if on, _ := h.prodEnabled("alpha"); !on {
		t.Error("alpha not applied after resume")
	}
	if logs := h.logs.String(); strings.Contains(logs, testAdminToken) || strings.Contains(logs, testWebhookSecret) || strings.Contains(logs, gitPass) {
		t.Error("a secret appears in the logs")
	}
}

// TestAdminAndWebhookOffWithoutSecrets: without a token or secret the endpoints are off.
func TestAdminAndWebhookOffWithoutSecrets(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.AdminToken, c.WebhookSecret = "", nil }})
	h.waitStartup()
	for _, p := range []string{"/suspend", "/resume", "/webhook", "/webhook/github"} {
		hd := http.Header{"Authorization": {"Bearer " + testAdminToken}}
		if code, _ := h.post(p, hd, []byte(`{}`)); code != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", p, code)
		}
	}
}

// TestDriftRepairedOnInterval changes a flag in Kameleoon behind flagsync's back: the
// next drift check finds and repairs it without any trigger.
func TestDriftRepairedOnInterval(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.DriftInterval = 300 * time.Millisecond }})
	h.waitStartup()
	raw, ok := h.sb.FlagJSON(testSite, "alpha")
	if !ok {
		t.Fatal("alpha not created")
	}
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, e := range f["environmentConfigurations"].([]any) {
		if env := e.(map[string]any); env["environmentKey"] == "production" {
			env["featureEnabled"] = true // someone turned it on in the UI
		}
	}
	edited, _ := json.Marshal(f)
	if err := h.sb.SetFlagJSON(testSite, edited); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the drift to be repaired", func() bool {
		on, _ := h.prodEnabled("alpha")
		return !on
	})
	h.waitFor("the drift sync to be recorded", func() bool {
		for _, r := range h.d.Status().Syncs {
			if r.Trigger == "drift" && r.Drift && r.Summary.Applied == 1 && r.Converged {
				return true
			}
		}
		return false
	})
	if _, m := h.get("/metrics"); !strings.Contains(m, "flagsync_drift_detected_total 1") && !strings.Contains(m, "flagsync_drift_detected_total 2") {
		t.Error("/metrics does not count the drift")
	}
	if !strings.Contains(h.logs.String(), `"flag":"`+testSite+`/alpha","env":"production","action":"update"`) {
		t.Error("no drift log line naming the flag, environment and action")
	}
}

// TestDriftCheckIsOneRequest: each drift check is one request, as /status reports it,
// not the timer's request plus a second one from the timer re-armed before the check ran.
func TestDriftCheckIsOneRequest(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.DriftInterval = 50 * time.Millisecond }})
	h.waitStartup()
	var drifts []Record
	h.waitFor("six drift checks", func() bool {
		drifts = drifts[:0]
		for _, r := range h.d.Status().Syncs {
			if r.Trigger == "drift" {
				drifts = append(drifts, r)
			}
		}
		return len(drifts) >= 6
	})
	for _, r := range drifts {
		if r.Requests != 1 {
			t.Errorf("drift check %d merged %d requests, want 1", r.ID, r.Requests)
		}
	}
}

// TestUnchangedTickCallsNothing: a scheduled tick on an unchanged, converged revision
// fetches from Git but makes no API call.
func TestUnchangedTickCallsNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Schedule = "@every 1s"; c.Jitter = 50 * time.Millisecond }})
	h.waitStartup()
	calls0, sbCalls0 := h.calls.Load(), len(h.sb.Calls())
	h.waitFor("two scheduled ticks", func() bool { return h.cycles() >= 3 && h.idle() })
	s := h.status()
	if s.LastCheck == nil || s.LastCheck.Trigger != "schedule" || s.LastCheck.Result != ResultSkipped {
		t.Fatalf("last check = %+v, want a skipped scheduled tick", s.LastCheck)
	}
	if n := h.calls.Load() - calls0; n != 0 {
		t.Errorf("unchanged ticks made %d API calls", n)
	}
	if n := len(h.sb.Calls()) - sbCalls0; n != 0 {
		t.Errorf("the sandbox saw %d calls", n)
	}
	if len(s.Syncs) != 1 || s.NextRun == nil || s.MaxJitter != "50ms" {
		t.Errorf("status syncs=%d nextRun=%v maxJitter=%q", len(s.Syncs), s.NextRun, s.MaxJitter)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `flagsync_syncs_total{result="skipped"}`) {
		t.Error("/metrics does not count skipped ticks")
	}
}

// TestEndpoints checks /healthz, /readyz, /metrics and /status after a sync.
func TestEndpoints(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Schedule = "*/5 * * * *" }})
	rec := h.waitStartup()
	if code, _ := h.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, m := h.get("/metrics")
	for _, want := range []string{
		`flagsync_syncs_total{result="success"} 1`,
		`flagsync_sync_duration_seconds_count{result="success"} 1`,
		`flagsync_applied_revision_info{revision="` + rec.Revision + `"} 1`,
		`flagsync_changes_total{action="create",stage="planned"} 2`,
		`flagsync_changes_total{action="create",stage="applied"} 2`,
		`flagsync_api_calls_total{code="200",endpoint="/oauth/token",method="POST"} 1`,
		`flagsync_api_budget_remaining{window="10s"}`,
		`flagsync_api_budget_remaining{window="1h"}`,
		"flagsync_last_success_timestamp_seconds",
		"flagsync_suspended 0",
		"flagsync_validation_failed 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	s := h.status()
	if s.Revision != rec.Revision || !s.Converged || !s.Ready || s.NextRun == nil || s.NextDriftCheck == nil || len(s.Budget) != 2 || s.Suspended {
		t.Errorf("status = %s", h.statusJSON())
	}
	if len(s.Syncs) != 1 || s.Syncs[0].Plan.ByAction["create"] != 2 || s.Syncs[0].APICalls == 0 {
		t.Errorf("status syncs = %+v", s.Syncs)
	}
	if code, _ := h.get("/webhook"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /webhook = %d, want 405", code)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestReadiness follows /readyz through start, staleness and shutdown.
func TestReadiness(t *testing.T) {
	d, err := New(Config{Source: noSource{}, Vendors: []reconcile.Vendor{kameleoon.Vendor(noClient{})}, Dir: "flags", Schedule: "@every 1m"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if ok, why := d.readiness(now); ok || why != "first sync not finished" {
		t.Errorf("before the first sync: %t %q", ok, why)
	}
	d.pub.firstDone = true
	d.pub.lastOK = now.Add(-2 * time.Minute)
	if ok, why := d.readiness(now); !ok {
		t.Errorf("2 minutes after a good sync (limit 3): %t %q", ok, why)
	}
	d.pub.lastOK = now.Add(-4 * time.Minute)
	if ok, why := d.readiness(now); ok || !strings.Contains(why, "no successful sync") {
		t.Errorf("4 minutes after a good sync: %t %q", ok, why)
	}
	d.pub.lastOK = now
	d.closing = true
	if ok, why := d.readiness(now); ok || why != "shutting down" {
		t.Errorf("shutting down: %t %q", ok, why)
	}
}

// TestLogLinesCarryRevision: every line logged during a sync, the API client's
// included, names the revision; change lines name the flag and action.
func TestLogLinesCarryRevision(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitStartup()
	_, next := h.push(map[string]string{"flags/beta.yaml": flagYAML("beta", "Beta", true)}, "beta on")
	h.waitCycle(next)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	changeLines := 0
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		_, inSync := rec["sync"]
		if (inSync || rec["msg"] == "API call") && rec["revision"] == nil {
			t.Errorf("log line without revision: %s", line)
		}
		if rec["msg"] == "change applied" {
			changeLines++
			if rec["flag"] == nil || rec["action"] == nil {
				t.Errorf("change line without flag or action: %s", line)
			}
		}
	}
	if changeLines != 3 {
		t.Errorf("%d change lines, want 3 (two creates, one update)", changeLines)
	}
}

// noHistory is a source whose cache lost the history (re-cloned, say): ChangedFiles fails.
type noHistory struct{ Source }

func (noHistory) ChangedFiles(context.Context, string, string) ([]string, error) {
	return nil, fmt.Errorf("changed files: %w", gitsource.ErrHistoryUnavailable)
}

// TestChangedFilesWithoutHistory: when Git cannot tell what changed, a payload that lists
// the changed files for exactly the applied..new range still narrows the sync; one that
// does not (Bitbucket lists no files) leads to a full sync.
func TestChangedFilesWithoutHistory(t *testing.T) {
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Source = noHistory{c.Source} }})
	h.waitStartup()
	for _, tc := range []struct {
		provider string
		mode     string
	}{
		{"github", ModePartial},
		{"bitbucket-cloud", ModeFull},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			on, _ := h.prodEnabled("alpha")
			before := h.repo.Head(t)
			after := h.repo.Commit(t, map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", !on)}, "toggle alpha")
			dl := pushDelivery(t, tc.provider, testWebhookSecret, before, after, []string{"flags/alpha.yaml"}, "nohist-"+tc.provider)
			next := h.cycles() + 1
			if code, body := h.post(dl.path, dl.header, dl.body); code != http.StatusAccepted {
				t.Fatalf("webhook: %d %s", code, body)
			}
			rec := h.waitCycle(next)
			if rec.Mode != tc.mode || rec.Result != ResultSuccess || rec.Summary.Applied != 1 {
				t.Errorf("sync = %+v, want a successful %s sync", rec, tc.mode)
			}
			if tc.mode == ModeFull && !strings.Contains(rec.Reason, "changed files unknown") {
				t.Errorf("full sync reason = %q", rec.Reason)
			}
		})
	}
}
