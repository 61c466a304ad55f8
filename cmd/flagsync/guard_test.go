package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updatePromoteGolden = flag.Bool("update-promote", false, "rewrite testdata/promote/checkout.promoted.golden")

// copyPromoteRepo copies testdata/promote (without its golden file) into a new folder.
func copyPromoteRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"flagsync.yaml", "checkout.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "promote", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// jsonPlan is what the round trip reads of a JSON plan.
type jsonPlan struct {
	Changes []struct {
		Action      string `json:"action"`
		Key         string `json:"key"`
		Environment string `json:"environment"`
		Fields      []struct {
			Path string `json:"path"`
		} `json:"fields"`
	} `json:"changes"`
}

func readPlan(t *testing.T, out string) jsonPlan {
	t.Helper()
	var p jsonPlan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not a JSON plan: %v\n%s", err, out)
	}
	return p
}

// TestPromoteRoundTrip: promote staging to production against the sandbox prints the
// plan of the production patch alone; --write edits the file as the golden file says
// (comments and key order kept, the segment mapped, production's exposure kept); plan
// then shows exactly that patch, a sync applies it, and promoting again changes nothing.
func TestPromoteRoundTrip(t *testing.T) {
	h := newSyncHarness(t)
	dir := copyPromoteRepo(t)
	file := filepath.Join(dir, "checkout.yaml")
	before, _ := os.ReadFile(file)
	h.mustRun(exitOK, "sync", "--repo", dir)

	r := h.mustRun(exitOK, "promote", "checkout", "--from", "staging", "--to", "production", "--repo", dir, "--format", "json")
	if r.writes != 0 {
		t.Errorf("promote without --write wrote %d times to the service", r.writes)
	}
	if now, _ := os.ReadFile(file); string(now) != string(before) {
		t.Error("promote without --write edited the file")
	}
	for _, want := range []string{
		"environments.production rewritten from environments.staging",
		"segment environments.production.rolloutRules[name=beta testers].segmentId: 403690 → 403694 (promote.segments)",
		"kept environments.production.rolloutRules[name=beta testers].exposition (promote.keep)",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("promote's summary lacks %q:\n%s", want, r.stderr)
		}
	}
	promoted := readPlan(t, r.stdout)
	if len(promoted.Changes) != 1 || promoted.Changes[0].Key != "checkout" || promoted.Changes[0].Environment != "production" {
		t.Fatalf("promote's plan: %+v", promoted.Changes)
	}

	r = h.mustRun(exitOK, "promote", "pzllysfw2f/checkout", "--from", "staging", "--to", "production", "--repo", dir, "--write")
	if !strings.Contains(r.stdout, "Wrote checkout.yaml.") || r.writes != 0 {
		t.Errorf("promote --write: %d writes to the service\n%s", r.writes, r.stdout)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "promote", "checkout.promoted.golden")
	if *updatePromoteGolden {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/flagsync -run TestPromoteRoundTrip -update-promote)", err)
	}
	if string(got) != string(want) {
		t.Errorf("the promoted file differs from %s:\n%s", golden, got)
	}

	r = h.mustRun(exitOK, "plan", "--repo", dir, "--format", "json")
	planned := readPlan(t, r.stdout)
	if len(planned.Changes) != 1 || planned.Changes[0].Environment != "production" || planned.Changes[0].Key != "checkout" {
		t.Fatalf("plan after promote: %+v", planned.Changes)
	}
	if len(planned.Changes[0].Fields) != len(promoted.Changes[0].Fields) || planned.Changes[0].Fields[0].Path != promoted.Changes[0].Fields[0].Path {
		t.Errorf("plan after promote %+v, promote showed %+v", planned.Changes[0], promoted.Changes[0])
	}
	h.mustRun(exitOK, "sync", "--repo", dir)
	r = h.mustRun(exitOK, "promote", "checkout", "--from", "staging", "--to", "production", "--repo", dir, "--write")
	if !strings.Contains(r.stdout, "nothing to change") || r.calls != 0 {
		t.Errorf("second promote (%d calls):\n%s", r.calls, r.stdout)
	}
}

func TestPromoteUsage(t *testing.T) {
	h := newSyncHarness(t)
	dir := copyPromoteRepo(t)
	for _, args := range [][]string{
		{"promote", "--from", "staging", "--to", "production", "--repo", dir},
		{"promote", "checkout", "--to", "production", "--repo", dir},
		{"promote", "checkout", "--from", "staging", "--to", "staging", "--repo", dir},
		{"promote", "checkout", "--from", "staging", "--to", "production", "--repo", dir, "--write", "--ref", "main"},
		{"promote", "checkout", "extra", "--from", "staging", "--to", "production", "--repo", dir},
	} {
		if r := h.run(args...); r.code != exitUsage || r.calls != 0 {
			t.Errorf("flagsync %s: exit %d with %d calls, want %d and none\n%s", strings.Join(args, " "), r.code, r.calls, exitUsage, r.stderr)
		}
	}
	r := h.mustRun(exitFail, "promote", "checkot", "--from", "staging", "--to", "production", "--repo", dir)
	if !strings.Contains(r.stderr, `no flag "checkot" in the flag files; did you mean "checkout"?`) {
		t.Errorf("unknown flag: %s", r.stderr)
	}
	r = h.mustRun(exitFail, "promote", "checkout", "--from", "qa", "--to", "production", "--repo", dir)
	if !strings.Contains(r.stderr, "the source environment is not in the flag file") {
		t.Errorf("unknown environment: %s", r.stderr)
	}
}

// TestSyncWithADeniedChange: sync applies every change but the one a deny policy
// refuses, shows it, and exits 1 as for any refused change; validate reports a policy
// that does not compile with its place in flagsync.yaml.
func TestSyncWithADeniedChange(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(3))
	settings := "siteCode: " + genSiteA + "\nenvironments: [development, staging, production]\npolicies:\n" +
		"  - name: not-flag-1\n    message: flag_0001 is frozen\n    expr: change.key != \"flag_0001\"\n"
	if err := os.WriteFile(filepath.Join(dir, "flagsync.yaml"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.mustRun(exitFail, "sync", "--repo", dir)
	if r.writes != 2 || !strings.Contains(r.stdout, "! "+genSiteA+"/flag_0001: 2. create: not-flag-1: flag_0001 is frozen (flag_0001.yaml:") {
		t.Errorf("sync: %d writes\n%s", r.writes, r.stdout)
	}
	r = h.mustRun(exitOK, "validate", "--repo", dir)
	if !strings.Contains(r.stdout, "3 flag files valid (1 site; 1 policy compiled)") {
		t.Errorf("validate: %s", r.stdout)
	}
	bad := strings.Replace(settings, `change.key != "flag_0001"`, `change.kee != "flag_0001"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "flagsync.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun(exitFail, "validate", "--repo", dir)
	if !strings.Contains(r.stdout+r.stderr, "flagsync.yaml:6:17: policies[0].expr (not-flag-1): undefined field 'kee'") {
		t.Errorf("validate with a broken policy:\n%s%s", r.stdout, r.stderr)
	}
	r = h.mustRun(exitFail, "sync", "--repo", dir)
	if r.calls != 0 {
		t.Errorf("a sync with a broken policy made %d calls", r.calls)
	}
}

// TestReportCommand: flagsync report reads each site once and counts the flags by state
// in every format.
func TestReportCommand(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(10))
	h.mustRun(exitOK, "sync", "--repo", dir)
	r := h.mustRun(exitOK, "report", "--repo", dir, "--format", "json")
	if r.calls != 3 { // the token and one list per site
		t.Errorf("report made %d calls, want 3", r.calls)
	}
	var doc struct {
		Flags  []json.RawMessage `json:"flags"`
		Counts map[string]int    `json:"counts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Flags) != 10 || doc.Counts["no-owner"] != 10 || doc.Counts["not-live"] != 0 {
		t.Errorf("report: %d flags, counts %v", len(doc.Flags), doc.Counts)
	}
	r = h.mustRun(exitOK, "report", "--repo", dir)
	if !strings.Contains(r.stdout, "Report: 10 flags; 10 without an owner, 10 without an expiry date.") {
		t.Errorf("text report:\n%s", r.stdout)
	}
	r = h.mustRun(exitOK, "report", "--repo", dir, "--format", "markdown", "--days", "7")
	if !strings.Contains(r.stdout, "| flag | service | owner |") {
		t.Errorf("markdown report:\n%s", r.stdout)
	}
	if r := h.run("report", "--repo", dir, "--days", "0"); r.code != exitUsage {
		t.Errorf("--days 0: exit %d", r.code)
	}
}
