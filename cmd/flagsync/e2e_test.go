package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
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
	sb  *ksandbox.Server
	url string
	env map[string]string
}

func newSyncHarness(t *testing.T) *syncHarness {
	t.Helper()
	return newSyncHarnessWith(t, ksandbox.Options{})
}

// forEachReading runs test as one subtest per reading of what Kameleoon's docs leave
// open (sandbox.Readings: the default, each strict variant, all of them), each against
// a sandbox that follows it.
func forEachReading(t *testing.T, test func(t *testing.T, h *syncHarness, r ksandbox.Reading)) {
	for _, r := range ksandbox.Readings() {
		t.Run(r.Name, func(t *testing.T) {
			test(t, newSyncHarnessWith(t, ksandbox.Options{Strict: r.Strict}), r)
		})
	}
}

// newSyncHarnessWith starts the sandbox with opts. Its rate limits are lifted: the tests
// are about what is sent, and the fault tests inject 429s themselves.
func newSyncHarnessWith(t *testing.T, opts ksandbox.Options) *syncHarness {
	t.Helper()
	opts.RatePer10s, opts.RatePerHour = -1, -1
	sb, ts := ksandboxtest.NewTestServer(t, opts)
	return &syncHarness{t: t, sb: sb, url: ts.URL, env: map[string]string{
		kclient.EnvClientID:     ksandbox.DefaultClientID,
		kclient.EnvClientSecret: ksandbox.DefaultClientSecret,
		kclient.EnvAPIURL:       ts.URL,
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
	exposition int    // of the production rule "beta testers"
	stagingOn  bool
	reordered  bool // production lists "gradual" before "beta testers"
}

// rules are the generated flag's production rules, in Git's order. "gradual" carries a
// release window as the vendor tutorial writes one: a local time in its timeZone.
func (g genFlag) rules() string {
	beta := fmt.Sprintf(`      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403694
        exposition: %d
        variationKey: "on"
        state: ACTIVE
`, g.exposition)
	gradual := `      - name: gradual
        type: PROGRESSIVE_DELIVERY
        exposition: 5
        variationKey: "on"
        state: PAUSED
        release: {releaseFrom: "2030-01-10T11:58:01", releaseTo: "2030-07-10T11:58:01", timeZone: Europe/Paris}
`
	if g.reordered {
		return gradual + beta
	}
	return beta + gradual
}

// ruleOrder is the names of the generated flag's production rules, in Git's order.
func (g genFlag) ruleOrder() string {
	if g.reordered {
		return "gradual,beta testers"
	}
	return "beta testers,gradual"
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
%s`, g.key, g.key, g.stagingOn, g.rules())
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
func writeCalls(calls []ksandbox.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Method == "POST" && c.Path == "/feature-flags" || c.Method == "PATCH" {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}

// createsPerKey counts successful creates (201) per site/featureKey in the call log.
func createsPerKey(t testing.TB, calls []ksandbox.Call) map[string]int {
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
		f, err := kclient.DecodeFlag(raw)
		if err != nil {
			h.t.Fatal(err)
		}
		prod := f.Environments["production"]
		var order []string
		var beta *kmodel.Rule
		for i, r := range prod.RolloutRules {
			order = append(order, r.Name)
			if r.Name == "beta testers" {
				beta = &prod.RolloutRules[i]
			}
		}
		if got := strings.Join(order, ","); got != g.ruleOrder() {
			h.t.Errorf("%s: production rules in the order %s, want %s", g.key, got, g.ruleOrder())
		}
		if beta == nil || beta.Exposition == nil || int(*beta.Exposition) != g.exposition {
			h.t.Errorf("%s: production rules %+v, want beta testers at exposition %d", g.key, prod.RolloutRules, g.exposition)
		}
		if f.Environments["staging"].FeatureEnabled != g.stagingOn {
			h.t.Errorf("%s: staging enabled = %t, want %t", g.key, f.Environments["staging"].FeatureEnabled, g.stagingOn)
		}
	}
}

func TestSyncEndToEnd(t *testing.T) { forEachReading(t, testSyncEndToEnd) }

func testSyncEndToEnd(t *testing.T, h *syncHarness, _ ksandbox.Reading) {
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
	want := []string{"PATCH " + kclient.EnvironmentPath(genSiteA, "flag_0003", "production")}
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

	// 8. A reorder of two rules is one environment patch, and it converges: the next
	// sync writes nothing, whether the API orders rules by position or by orderIndex.
	flags[2].reordered = true
	writeGenRepo(t, dir, flags)
	h.sb.ResetCalls()
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	want = []string{"PATCH " + kclient.EnvironmentPath(genSiteA, "flag_0002", "production")}
	if got := writeCalls(h.sb.Calls()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("reorder sent %q, want %q", got, want)
	}
	if !strings.Contains(r.stdout, "; converged") {
		t.Errorf("reorder did not converge:\n%s", r.stdout)
	}
	h.assertLive(flags)
	if r = h.mustRun(exitOK, "sync", "--repo", dir); r.writes != 0 {
		t.Errorf("sync after the reorder sent %d writes, want 0", r.writes)
	}
	if n := createsPerKey(t, h.sb.Calls()); len(n) != 0 {
		t.Errorf("creates after the first sync: %v", n)
	}
}

func TestSyncJSONReport(t *testing.T) { forEachReading(t, testSyncJSONReport) }

func testSyncJSONReport(t *testing.T, h *syncHarness, reading ksandbox.Reading) {
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
			FeatureKey string `json:"key"`
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
	// token, one list (all three flags are on one site), 3 creates, each confirmed by its
	// answer (the whole flag), so no confirming read; where the API refuses flagsync's
	// optionalFields, the list is refused once first (the client then asks for the
	// documented ones). The site is empty, so no flag is read one by one.
	want := 1 + 1 + 3
	if reading.Has(ksandbox.OptionalFieldsRefused) {
		want++
	}
	if rep.APICalls != r.calls || r.calls != want {
		t.Errorf("report counts %d API calls, the sandbox saw %d (want %d)", rep.APICalls, r.calls, want)
	}
}

func TestSyncConvergesThroughFaults(t *testing.T) {
	forEachReading(t, testSyncConvergesThroughFaults)
}

func testSyncConvergesThroughFaults(t *testing.T, h *syncHarness, _ ksandbox.Reading) {
	dir := t.TempDir()
	flags := genFlags(20)
	writeGenRepo(t, dir, flags)

	faults := []ksandbox.Fault{
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
	for _, f := range []ksandbox.Fault{
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

func TestSyncFailedChangeExitsOne(t *testing.T) { forEachReading(t, testSyncFailedChangeExitsOne) }

func testSyncFailedChangeExitsOne(t *testing.T, h *syncHarness, _ ksandbox.Reading) {
	dir := t.TempDir()
	flags := genFlags(3)
	writeGenRepo(t, dir, flags)
	h.mustRun(exitOK, "sync", "--repo", dir)

	flags[1].exposition = 77
	flags[2].exposition = 78
	writeGenRepo(t, dir, flags)
	// A refusal that no retry can fix, on one flag only.
	h.sb.InjectFault(ksandbox.Fault{Method: "PATCH", PathPrefix: kclient.EnvironmentPath(genSiteA, "flag_0001", "production"), Status: 400, Body: `{"message":"rule rejected"}`})
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

func TestSyncGuards(t *testing.T) { forEachReading(t, testSyncGuards) }

func testSyncGuards(t *testing.T, h *syncHarness, _ ksandbox.Reading) {
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

// TestEnvPatchRequiredRefusesOldBodies shows what the env-patch-required reading catches:
// the environment patch flagsync used to send (only the fields that changed) is refused
// with a 400 naming the required members, and the patch flagsync plans now, the same
// change with featureKey, name, integrations and rolloutRules, is accepted. The default
// reading accepts both, which is why only the strict sandbox could tell.
func TestEnvPatchRequiredRefusesOldBodies(t *testing.T) {
	for _, tc := range []struct {
		reading   ksandbox.Reading
		oldStatus int
	}{
		{ksandbox.Reading{Name: "default"}, 200},
		{ksandbox.Reading{Name: string(ksandbox.EnvPatchRequired), Strict: []ksandbox.Variant{ksandbox.EnvPatchRequired}}, 400},
	} {
		t.Run(tc.reading.Name, func(t *testing.T) {
			h := newSyncHarnessWith(t, ksandbox.Options{Strict: tc.reading.Strict})
			dir := t.TempDir()
			flags := genFlags(2)
			writeGenRepo(t, dir, flags)
			h.mustRun(exitOK, "sync", "--repo", dir)

			// The planned patch of one changed switch.
			flags[1].stagingOn = !flags[1].stagingOn
			writeGenRepo(t, dir, flags)
			r := h.mustRun(exitOK, "plan", "--repo", dir, "--format", "json")
			var p struct {
				Changes []struct {
					Request api.Request `json:"request"`
				} `json:"changes"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || len(p.Changes) != 1 {
				t.Fatalf("plan: %v, %d changes\n%s", err, len(p.Changes), r.stdout)
			}
			planned := p.Changes[0].Request
			var body map[string]any
			if err := json.Unmarshal(planned.Body, &body); err != nil {
				t.Fatal(err)
			}
			for _, k := range kclient.EnvironmentPatchRequired {
				if _, ok := body[k]; !ok {
					t.Errorf("planned body lacks %s: %s", k, planned.Body)
				}
			}
			// The old body: only what changed.
			old := planned
			old.Body = json.RawMessage(`{"featureEnabled":` + fmt.Sprint(body["featureEnabled"]) + `}`)

			c, err := kclient.New(kclient.Config{BaseURL: h.url, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Do(context.Background(), old)
			var apiErr *api.Error
			switch {
			case tc.oldStatus == 200 && err != nil:
				t.Fatalf("the old body %s: %v, want it accepted by the default reading", old.Body, err)
			case tc.oldStatus == 400 && (!errors.As(err, &apiErr) || apiErr.Status != 400):
				t.Fatalf("the old body %s: err = %v, want a 400", old.Body, err)
			case tc.oldStatus == 400 && !strings.HasPrefix(apiErr.Message, "featureKey, name, integrations, rolloutRules: required"):
				t.Errorf("the 400 says %q, want the four missing members named", apiErr.Message)
			}
			if tc.oldStatus == 400 {
				if r := h.mustRun(exitOK, "plan", "--repo", dir, "--format", "json"); !strings.Contains(r.stdout, `"featureEnabled"`) {
					t.Fatalf("the refused old body changed the flag: the plan has no change left\n%s", r.stdout)
				}
				if _, err := c.Do(context.Background(), planned); err != nil {
					t.Fatalf("the planned body %s: %v", planned.Body, err)
				}
			}
			h.assertLive(flags)
			if r := h.mustRun(exitOK, "sync", "--repo", dir); r.writes != 0 {
				t.Errorf("sync after the patch sent %d writes, want 0", r.writes)
			}
		})
	}
}
