package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/plan"
)

func TestPlanExitCodes(t *testing.T) {
	h := newSyncHarness(t)
	synced, changed, invalid := t.TempDir(), t.TempDir(), t.TempDir()
	flags := genFlags(4)
	writeGenRepo(t, synced, flags)
	h.mustRun(exitOK, "sync", "--repo", synced)
	flags[2].stagingOn = !flags[2].stagingOn
	writeGenRepo(t, changed, flags)
	writeGenRepo(t, invalid, flags)
	if err := os.WriteFile(filepath.Join(invalid, "bad.yaml"), []byte("featureKey: bad\nname: Bad\nvariations: [{key: a}]\nenvironments: {production: {defaultVariationKey: nope}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		args      []string
		want      int
		wantCalls bool
	}{
		{"in sync", []string{"plan", "--repo", synced}, exitOK, true},
		{"in sync, detailed", []string{"plan", "--repo", synced, "--detailed-exitcode"}, exitOK, true},
		{"changes", []string{"plan", "--repo", changed}, exitOK, true},
		{"changes, detailed", []string{"plan", "--repo", changed, "--detailed-exitcode"}, exitChanges, true},
		{"invalid files", []string{"plan", "--repo", invalid, "--detailed-exitcode"}, exitFail, false},
		{"missing repository", []string{"plan", "--repo", filepath.Join(synced, "nope")}, exitFail, false},
		{"unknown flag", []string{"plan", "--colour"}, exitUsage, false},
		{"help", []string{"plan", "-h"}, exitOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.mustRun(tt.want, tt.args...)
			if r.writes != 0 {
				t.Errorf("plan sent %d writes", r.writes)
			}
			if (r.calls > 0) != tt.wantCalls {
				t.Errorf("plan made %d API calls", r.calls)
			}
		})
	}
}

func TestPlanFormats(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(11) // flag_0009 is on the second site
	writeGenRepo(t, dir, flags)
	h.mustRun(exitOK, "sync", "--repo", dir)
	flags[9].exposition = 42
	writeGenRepo(t, dir, flags)

	r := h.mustRun(exitChanges, "plan", "--repo", dir, "--detailed-exitcode")
	if !strings.Contains(r.stdout, genSiteB+"/flag_0009") || !strings.Contains(r.stdout, "Plan: 0 to create, 1 to update, 0 to archive.") {
		t.Errorf("text plan:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("text plan has colour codes although stdout is not a terminal")
	}

	r = h.mustRun(exitOK, "plan", "--repo", dir, "--format", "markdown")
	if !strings.HasPrefix(r.stdout, plan.MarkdownMarker) || !strings.Contains(r.stdout, "flag_0009") {
		t.Errorf("markdown plan:\n%s", r.stdout)
	}

	r = h.mustRun(exitOK, "plan", "--repo", dir, "--format", "json")
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("json plan: %v\n%s", err, r.stdout)
	}
	if len(p.Changes) != 1 || p.Changes[0].Key != "flag_0009" || p.Changes[0].Environment != "production" {
		t.Errorf("json plan changes = %+v", p.Changes)
	}

	out := filepath.Join(t.TempDir(), "plan.md")
	r = h.mustRun(exitChanges, "plan", "--repo", dir, "--format", "markdown", "--out", out, "--detailed-exitcode")
	if r.stdout != "" {
		t.Errorf("--out still printed to stdout:\n%s", r.stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "flag_0009") {
		t.Errorf("--out file: %v\n%s", err, b)
	}

	// One run, one live read: the Markdown comment and the JSON artifact of a PR job.
	jsonOut := filepath.Join(t.TempDir(), "plan.json")
	r = h.mustRun(exitOK, "plan", "--repo", dir, "--format", "markdown", "--out", out, "--json-out", jsonOut)
	if r.calls != 3 { // token, one list per site
		t.Errorf("plan with --json-out made %d API calls, want 3", r.calls)
	}
	b, err = os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var pj plan.Plan
	if err := json.Unmarshal(b, &pj); err != nil || len(pj.Changes) != 1 || pj.Changes[0].Key != "flag_0009" {
		t.Errorf("--json-out plan: %v\n%s", err, b)
	}
}

func TestPlanInvalidFilesInEveryFormat(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(2))
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("featureKey: bad\nname: Bad\nvariations: [{key: a}]\nenvironments: {production: {defaultVariationKey: nope}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			r := h.mustRun(exitFail, "plan", "--repo", dir, "--format", format)
			if r.calls != 0 {
				t.Errorf("invalid files made %d API calls", r.calls)
			}
			if !strings.Contains(r.stderr, "bad.yaml:4:") {
				t.Errorf("stderr lacks the diagnostic:\n%s", r.stderr)
			}
			switch format {
			case "markdown":
				if !strings.HasPrefix(r.stdout, plan.MarkdownMarker) || !strings.Contains(r.stdout, "bad.yaml:4:") {
					t.Errorf("markdown output does not explain the problem:\n%s", r.stdout)
				}
			case "json":
				var out struct {
					Diagnostics []struct{ File string } `json:"diagnostics"`
				}
				if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Diagnostics) == 0 || out.Diagnostics[0].File != "bad.yaml" {
					t.Errorf("json output %q: %v", r.stdout, err)
				}
			}
		})
	}
}

func TestPlanPruneShowsArchives(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(8)
	writeGenRepo(t, dir, flags)
	h.mustRun(exitOK, "sync", "--repo", dir)
	writeGenRepo(t, dir, flags[1:]) // flag_0000 removed from Git

	r := h.mustRun(exitOK, "plan", "--repo", dir)
	if !strings.Contains(r.stdout, "1 unmanaged flag left alone") {
		t.Errorf("without --prune the removed flag is unmanaged:\n%s", r.stdout)
	}
	r = h.mustRun(exitChanges, "plan", "--repo", dir, "--prune", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "1 to archive") {
		t.Errorf("with --prune the removed flag is archived:\n%s", r.stdout)
	}
}

// TestPlanMassArchiveRefusedIsNotAnError: archives the mass-archive guard refuses are
// refused changes, not an error of the plan command: plan exits 0, or 2 with
// --detailed-exitcode, shows the refusal and still shows the rest of the plan. sync
// refuses the whole plan, applies nothing and exits 1 (Kameleoon still differs).
func TestPlanMassArchiveRefusedIsNotAnError(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(8)
	writeGenRepo(t, dir, flags)
	h.mustRun(exitOK, "sync", "--repo", dir)
	flags = flags[2:] // flag_0000 and flag_0001 removed from Git: 2 of 8 managed flags
	flags[0].stagingOn = !flags[0].stagingOn
	writeGenRepo(t, dir, flags)

	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"plan", "--repo", dir, "--prune"}, exitOK},
		{[]string{"plan", "--repo", dir, "--prune", "--detailed-exitcode"}, exitChanges},
		{[]string{"plan", "--repo", dir, "--prune", "--format", "json", "--detailed-exitcode"}, exitChanges},
	} {
		r := h.mustRun(tt.want, tt.args...)
		if r.writes != 0 {
			t.Errorf("%v sent %d writes", tt.args, r.writes)
		}
		if !strings.Contains(r.stdout, "refused by the mass-archive guard") || !strings.Contains(r.stdout, "flag_0002") {
			t.Errorf("%v: the plan does not show the refusal and the other change:\n%s", tt.args, r.stdout)
		}
	}

	r := h.mustRun(exitFail, "sync", "--repo", dir, "--prune")
	if r.writes != 0 {
		t.Errorf("sync sent %d writes after the guard refused the plan", r.writes)
	}
	if !strings.Contains(r.stderr, "nothing was applied") {
		t.Errorf("sync does not say nothing was applied:\n%s", r.stderr)
	}
}

// TestPlanOnlyIgnoredDifferences: when the only differences are in fields flagsync.yaml
// ignores, plan says "No changes" with the notes, and --detailed-exitcode exits 0.
func TestPlanOnlyIgnoredDifferences(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	flags := genFlags(3)
	writeGenRepo(t, dir, flags)
	h.mustRun(exitOK, "sync", "--repo", dir)
	flags[1].exposition = 77 // differs from Kameleoon now, but ignored
	writeGenRepo(t, dir, flags)
	settings := filepath.Join(dir, "flagsync.yaml")
	data, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settings, append(data, "ignore:\n  - environments.production.rolloutRules[*].exposition\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.mustRun(exitOK, "plan", "--repo", dir, "--detailed-exitcode")
	if !strings.Contains(r.stdout, "Left alone") || !strings.Contains(r.stdout, "environments.production.rolloutRules[name=beta testers].exposition: 77 in Git") ||
		!strings.Contains(r.stdout, "No changes. Kameleoon matches") || !strings.Contains(r.stdout, "1 difference left alone") {
		t.Errorf("plan does not show the ignored difference as a note:\n%s", r.stdout)
	}
	r = h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != 0 || !strings.Contains(r.stdout, "already in sync; 1 difference left alone") {
		t.Errorf("sync wrote %d times:\n%s", r.writes, r.stdout)
	}
}
