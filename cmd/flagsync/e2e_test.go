package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/sandbox"
)

// Site codes of the generated repositories: most flags on genSiteA (flagsync.yaml's
// default), every tenth on genSiteB.
const (
	genSiteA = "e2esitea01"
	genSiteB = "e2esiteb02"
)

// syncHarness runs flagsync commands in-process against a sandbox on a loopback httptest
// server, with credentials passed through the environment.
type syncHarness struct {
	t   *testing.T
	sb  *sandbox.Server
	url string
	env map[string]string
}

func newSyncHarness(t *testing.T) *syncHarness {
	t.Helper()
	return newSyncHarnessWith(t, sandbox.Options{})
}

// newSyncHarnessWith starts the sandbox with opts. Its rate limits are lifted: the tests
// are about what is sent, and the fault tests inject 429s themselves.
func newSyncHarnessWith(t *testing.T, opts sandbox.Options) *syncHarness {
	t.Helper()
	opts.RatePer10s, opts.RatePerHour = -1, -1
	sb, ts := sandbox.NewTestServer(t, opts)
	return &syncHarness{t: t, sb: sb, url: ts.URL, env: map[string]string{
		api.EnvClientID:     sandbox.DefaultClientID,
		api.EnvClientSecret: sandbox.DefaultClientSecret,
		api.EnvAPIURL:       ts.URL,
	}}
}

// runResult is what one in-process run printed and returned.
type runResult struct {
	code           int
	stdout, stderr string
	calls, writes  int // API calls and writes the sandbox received during the run
}

// run runs flagsync with args (plus quick retries and a generous budget) and reports
// what the sandbox received meanwhile.
func (h *syncHarness) run(args ...string) runResult {
	h.t.Helper()
	if len(args) > 0 && (args[0] == "sync" || args[0] == "plan") {
		args = append(args, "--retry-base", "2ms", "--rate-10s", "100000", "--rate-hour", "1000000", "--log-level", "debug")
	}
	calls0, writes0 := len(h.sb.Calls()), h.sb.Writes()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return h.env[k] }}
	code := a.dispatch(context.Background(), args)
	return runResult{code: code, stdout: out.String(), stderr: errb.String(),
		calls: len(h.sb.Calls()) - calls0, writes: h.sb.Writes() - writes0}
}

// mustRun runs flagsync and fails the test unless it exits with want.
func (h *syncHarness) mustRun(want int, args ...string) runResult {
	h.t.Helper()
	r := h.run(args...)
	if r.code != want {
		h.t.Fatalf("flagsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, lastLines(r.stderr, 40))
	}
	return r
}

// tail returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// genFlag is one generated flag's content; the fields are what tests edit.
type genFlag struct {
	key        string
	site       string // "" for the default site
	exposition int    // of the production rule
	stagingOn  bool
}

func genFlags(n int) []genFlag {
	flags := make([]genFlag, n)
	for i := range flags {
		flags[i] = genFlag{key: fmt.Sprintf("flag_%04d", i), exposition: 10 + i%80, stagingOn: i%2 == 0}
		if i%10 == 9 {
			flags[i].site = genSiteB
		}
	}
	return flags
}

func (g genFlag) yaml() string {
	var b strings.Builder
	if g.site != "" {
		fmt.Fprintf(&b, "siteCode: %s\n", g.site)
	}
	fmt.Fprintf(&b, `featureKey: %s
name: Generated %s
description: A generated flag with three environments and rules.
tags: [generated]
variables:
  - {key: color, type: STRING, value: blue}
variations:
  - {key: "off", name: Off}
  - key: "on"
    name: On
    variables: [{key: color, value: green}]
environments:
  development:
    featureEnabled: true
    defaultVariationKey: "on"
  staging:
    featureEnabled: %t
    defaultVariationKey: "on"
  production:
    featureEnabled: true
    defaultVariationKey: "off"
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403694
        exposition: %d
        variationKey: "on"
        state: ACTIVE
      - name: gradual
        type: PROGRESSIVE_DELIVERY
        exposition: 5
        variationKey: "on"
        state: PAUSED
`, g.key, g.key, g.stagingOn, g.exposition)
	return b.String()
}

// writeGenRepo writes flagsync.yaml and one file per flag into dir, replacing what was there.
func writeGenRepo(t testing.TB, dir string, flags []genFlag) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	settings := "siteCode: " + genSiteA + "\nenvironments: [development, staging, production]\n"
	if err := os.WriteFile(filepath.Join(dir, "flagsync.yaml"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range flags {
		if err := os.WriteFile(filepath.Join(dir, f.key+".yaml"), []byte(f.yaml()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (g genFlag) siteCode() string {
	if g.site == "" {
		return genSiteA
	}
	return g.site
}

// writeCalls lists the write calls of the sandbox's log after index from, as "METHOD path".
func writeCalls(calls []sandbox.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Method == "POST" && c.Path == "/feature-flags" || c.Method == "PATCH" {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}

// createsPerKey counts successful creates (201) per site/featureKey in the call log.
func createsPerKey(t testing.TB, calls []sandbox.Call) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, c := range calls {
		if c.Method != "POST" || c.Path != "/feature-flags" || c.Status != 201 {
			continue
		}
		var body struct{ SiteCode, FeatureKey string }
		if err := json.Unmarshal(c.Body, &body); err != nil {
			t.Fatalf("create body: %v", err)
		}
		n[body.SiteCode+"/"+body.FeatureKey]++
	}
	return n
}

// assertLive checks that every generated flag exists in the sandbox with its production
// exposition and staging switch.
func (h *syncHarness) assertLive(flags []genFlag) {
	h.t.Helper()
	for _, g := range flags {
		raw, ok := h.sb.FlagJSON(g.siteCode(), g.key)
		if !ok {
			h.t.Errorf("%s/%s missing from the sandbox", g.siteCode(), g.key)
			continue
		}
		f, err := api.DecodeFlag(raw)
		if err != nil {
			h.t.Fatal(err)
		}
		prod := f.Environments["production"]
		if len(prod.RolloutRules) != 2 || prod.RolloutRules[0].Exposition == nil || int(*prod.RolloutRules[0].Exposition) != g.exposition {
			h.t.Errorf("%s: production rules %+v, want exposition %d first", g.key, prod.RolloutRules, g.exposition)
		}
		if f.Environments["staging"].FeatureEnabled != g.stagingOn {
			h.t.Errorf("%s: staging enabled = %t, want %t", g.key, f.Environments["staging"].FeatureEnabled, g.stagingOn)
		}
	}
}

func TestSyncEndToEnd(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(12)
	writeGenRepo(t, dir, flags)

	// 1. The first sync creates everything: one POST per flag, nothing else written.
	r := h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != len(flags) {
		t.Errorf("first sync sent %d writes, want %d creates", r.writes, len(flags))
	}
	if !strings.Contains(r.stdout, "12 applied, 0 failed, 0 skipped; converged") {
		t.Errorf("first sync summary missing:\n%s", r.stdout)
	}
	h.assertLive(flags)

	// 2. A second sync reads and writes nothing: token, one list per site.
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != 0 {
		t.Errorf("second sync sent %d writes, want 0", r.writes)
	}
	if !strings.Contains(r.stdout, "already in sync") {
		t.Errorf("second sync output:\n%s", r.stdout)
	}

	// 3. A one-field edit sends exactly one write, to that environment.
	flags[3].exposition = 99
	writeGenRepo(t, dir, flags)
	h.sb.ResetCalls()
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	want := []string{"PATCH " + api.EnvironmentPath(genSiteA, "flag_0003", "production")}
	if got := writeCalls(h.sb.Calls()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("one-field edit sent %q, want %q", got, want)
	}
	h.assertLive(flags)

	// 4. Drift made directly in Kameleoon is repaired by the next sync.
	raw, _ := h.sb.FlagJSON(genSiteB, "flag_0009")
	drifted := strings.Replace(string(raw), `"featureEnabled":true`, `"featureEnabled":false`, 1)
	if drifted == string(raw) {
		t.Fatal("drift fixture: no featureEnabled true to flip")
	}
	if err := h.sb.SetFlagJSON(genSiteB, []byte(drifted)); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != 1 {
		t.Errorf("drift repair sent %d writes, want 1", r.writes)
	}
	h.assertLive(flags)
	if r = h.mustRun(exitOK, "sync", "--repo", dir); r.writes != 0 {
		t.Errorf("sync after the repair sent %d writes, want 0", r.writes)
	}

	// 5. A dry run goes through everything but sends no write.
	flags[5].stagingOn = !flags[5].stagingOn
	flags[7].exposition = 1
	writeGenRepo(t, dir, flags)
	r = h.mustRun(exitOK, "sync", "--repo", dir, "--dry-run")
	if r.writes != 0 {
		t.Errorf("dry run sent %d writes", r.writes)
	}
	if !strings.Contains(r.stdout, "Dry run: 2 changes not sent.") {
		t.Errorf("dry run output:\n%s", r.stdout)
	}

	// 6. One invalid file anywhere: zero API calls at all, every problem printed.
	bad := filepath.Join(dir, "nested", "broken.yaml")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("featureKey: Not Valid\nname: x\nvariations: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun(exitFail, "sync", "--repo", dir)
	if r.calls != 0 {
		t.Errorf("invalid repository made %d API calls, want 0", r.calls)
	}
	if !strings.Contains(r.stderr, "nested/broken.yaml:1:") || !strings.Contains(r.stderr, "nothing was read from or written to the API") {
		t.Errorf("diagnostics not printed as file:line:col:\n%s", r.stderr)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}

	// 7. The edits of step 5 go out now, and the state converges.
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != 2 {
		t.Errorf("sync of two edits sent %d writes, want 2", r.writes)
	}
	h.assertLive(flags)
	if n := createsPerKey(t, h.sb.Calls()); len(n) != 0 {
		t.Errorf("creates after the first sync: %v", n)
	}
}

func TestSyncJSONReport(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(3))
	r := h.mustRun(exitOK, "sync", "--repo", dir, "--format", "json")
	var rep struct {
		Revision string `json:"revision"`
		Plan     struct {
			Changes []struct{ Action string } `json:"changes"`
		} `json:"plan"`
		Results []struct {
			Status     string `json:"status"`
			FeatureKey string `json:"featureKey"`
		} `json:"results"`
		Summary   struct{ Applied, Failed, Skipped int } `json:"summary"`
		Converged bool                                   `json:"converged"`
		APICalls  int                                    `json:"apiCalls"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("sync --format json is not one JSON document: %v\n%s", err, r.stdout)
	}
	if len(rep.Plan.Changes) != 3 || len(rep.Results) != 3 || rep.Summary.Applied != 3 || !rep.Converged {
		t.Errorf("report = %+v", rep)
	}
	// token, one list (all three flags are on one site), 3 creates, the confirming list
	if rep.APICalls != r.calls || r.calls != 1+1+3+1 {
		t.Errorf("report counts %d API calls, the sandbox saw %d (want 6)", rep.APICalls, r.calls)
	}
}

func TestSyncConvergesThroughFaults(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(20)
	writeGenRepo(t, dir, flags)

	faults := []sandbox.Fault{
		{Method: "POST", PathPrefix: "/feature-flags", Status: 429, Count: 4},                    // refused: budget spent elsewhere
		{Method: "POST", PathPrefix: "/feature-flags", Status: 429, RetryAfter: "0", Count: 1},   // with Retry-After
		{Method: "POST", PathPrefix: "/feature-flags", Status: 503, Count: 2},                    // server trouble before handling
		{Method: "POST", PathPrefix: "/feature-flags", Drop: true, Count: 2},                     // connection dropped before handling
		{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Drop: true, Count: 2},  // created, response lost
		{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Status: 502, Count: 1}, // created, then a 502
		{Method: "GET", PathPrefix: "/feature-flags", Status: 500, Count: 1},                     // the list itself fails once
	}
	for _, f := range faults {
		h.sb.InjectFault(f)
	}
	r := h.mustRun(exitOK, "sync", "--repo", dir, "--concurrency", "6")
	if !strings.Contains(r.stdout, "; converged;") {
		t.Errorf("first sync did not converge:\n%s", r.stdout)
	}
	h.assertLive(flags)

	// Faults while patching: every flag's production exposition and staging switch change.
	for i := range flags {
		flags[i].exposition++
		flags[i].stagingOn = !flags[i].stagingOn
	}
	writeGenRepo(t, dir, flags)
	for _, f := range []sandbox.Fault{
		{Method: "PATCH", Status: 429, Count: 5},
		{Method: "PATCH", Status: 500, Count: 3},
		{Method: "PATCH", Drop: true, Count: 3},
		{Method: "PATCH", AfterHandle: true, Drop: true, Count: 3},
		{Method: "PATCH", Status: 423, Count: 1},
	} {
		h.sb.InjectFault(f)
	}
	r = h.mustRun(exitOK, "sync", "--repo", dir, "--concurrency", "6")
	if !strings.Contains(r.stdout, "40 applied, 0 failed, 0 skipped; converged") {
		t.Errorf("patch sync did not converge:\n%s", r.stdout)
	}
	h.assertLive(flags)

	if r = h.mustRun(exitOK, "sync", "--repo", dir); r.writes != 0 {
		t.Errorf("sync after the faults sent %d writes, want 0", r.writes)
	}
	// Every injected fault was met (a dropped connection is logged with status 0).
	statuses := map[int]int{}
	for _, c := range h.sb.Calls() {
		statuses[c.Status]++
	}
	for status, least := range map[int]int{429: 10, 503: 2, 500: 4, 502: 1, 423: 1, 0: 10} {
		if statuses[status] < least {
			t.Errorf("the sandbox answered %d %d times, want at least %d: a fault was not met", status, statuses[status], least)
		}
	}
	for key, n := range createsPerKey(t, h.sb.Calls()) {
		if n > 1 {
			t.Errorf("%s created %d times", key, n)
		}
	}
}

func TestSyncFailedChangeExitsOne(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(3)
	writeGenRepo(t, dir, flags)
	h.mustRun(exitOK, "sync", "--repo", dir)

	flags[1].exposition = 77
	flags[2].exposition = 78
	writeGenRepo(t, dir, flags)
	// A refusal that no retry can fix, on one flag only.
	h.sb.InjectFault(sandbox.Fault{Method: "PATCH", PathPrefix: api.EnvironmentPath(genSiteA, "flag_0001", "production"), Status: 400, Body: `{"message":"rule rejected"}`})
	r := h.mustRun(exitFail, "sync", "--repo", dir)
	if !strings.Contains(r.stdout, "failed   update   "+genSiteA+"/flag_0001/production: update "+genSiteA+"/flag_0001/production: PATCH") ||
		!strings.Contains(r.stdout, "rule rejected") {
		t.Errorf("failed change not reported:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "1 applied, 1 failed, 0 skipped; NOT converged (1 difference remains after applying)") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	// The other flag went through, and the next sync finishes the job.
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != 1 {
		t.Errorf("retry sync sent %d writes, want 1", r.writes)
	}
}

func TestSyncGuards(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(6))
	r := h.mustRun(exitFail, "sync", "--repo", dir, "--max-changes", "5")
	if r.writes != 0 || !strings.Contains(r.stderr, "plan has 6 changes, more than the limit of 5") {
		t.Errorf("max-changes: %d writes, stderr:\n%s", r.writes, r.stderr)
	}
	if !strings.Contains(r.stdout, "Plan: 6 to create") {
		t.Errorf("the refused plan is not shown:\n%s", r.stdout)
	}
	h.mustRun(exitOK, "sync", "--repo", dir, "--max-changes", "6")

	// Removing every flag from Git with --prune trips the mass-archive guard.
	writeGenRepo(t, dir, nil)
	r = h.mustRun(exitFail, "sync", "--repo", dir, "--prune")
	if r.writes != 0 || !strings.Contains(r.stderr, "--allow-mass-archive") {
		t.Errorf("mass archive: %d writes, stderr:\n%s", r.writes, r.stderr)
	}
	r = h.mustRun(exitOK, "sync", "--repo", dir, "--prune", "--allow-mass-archive")
	if r.writes != 6 { // all six flags are on genSiteA
		t.Errorf("allowed mass archive sent %d writes, want 6", r.writes)
	}
}
