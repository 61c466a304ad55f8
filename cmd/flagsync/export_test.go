package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
)

// adoptedFlag is a flag made in Kameleoon's UI, not by flagsync (no ownership tag), in
// the API's read shape: an experiment with a bandit, a YAML-boolean variation name and
// a rule id to keep.
const adoptedFlag = `{
  "id": 91001, "featureKey": "adopted_experiment", "name": "Adopted: experiment",
  "tags": ["ui", "no"],
  "variables": [{"key": "limit", "type": "NUMBER", "value": "42"}, {"key": "payload", "type": "JSON", "value": "{\"a\": {\"b\": [1, 2]}}"}],
  "variations": [{"key": "off", "name": "No"}, {"key": "on", "name": "Yes", "variables": [{"key": "limit", "value": "7"}]}],
  "bucketingKey": {"bucketingKeyType": "CUSTOM_DATA", "customDataId": 5},
  "attributionWindow": 3600000,
  "environmentConfigurations": [
    {"environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "off",
     "rolloutRules": [{"id": 77001, "experimentId": 88001, "name": "split", "type": "EXPERIMENTATION", "status": "ACTIVE",
       "controlVariationKey": "off", "trafficAllocationMethod": "MULTI_ARMED_BANDIT",
       "trafficAllocations": [{"variationKey": "off", "exposition": 50}, {"variationKey": "on", "exposition": 50}]}]}
  ]
}`

const archivedFlag = `{"id": 91002, "featureKey": "retired", "name": "Retired", "archived": true,
  "variations": [{"key": "off", "name": "Off"}, {"key": "on", "name": "On"}]}`

// newExportHarness returns a harness whose sandbox holds genFlags(n) (synced by
// flagsync, every tenth on genSiteB) and two flags made outside flagsync on genSiteA.
func newExportHarness(t *testing.T, n int) *syncHarness {
	t.Helper()
	h := newSyncHarness(t)
	repo := t.TempDir()
	writeGenRepo(t, repo, genFlags(n))
	h.mustRun(exitOK, "sync", "--repo", repo)
	for _, raw := range []string{adoptedFlag, archivedFlag} {
		if err := h.sb.SetFlagJSON(genSiteA, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExportAdoptsTheAccount(t *testing.T) {
	h := newExportHarness(t, 11)
	out := filepath.Join(t.TempDir(), "flags")

	r := h.mustRun(exitOK, "export", "--site-code", genSiteA+","+genSiteB, "--out", out)
	if r.writes != 0 {
		t.Errorf("export sent %d writes", r.writes)
	}
	// A token and one list per site: never a read per flag.
	if r.calls != 3 {
		t.Errorf("export made %d API calls, want 3 (token, one list per site)", r.calls)
	}
	for _, want := range []string{
		"wrote    " + filepath.Join(out, "flagsync.yaml"),
		"wrote    " + filepath.Join(out, genSiteA, "adopted_experiment.yaml"),
		"wrote    " + filepath.Join(out, genSiteB, "flag_0009.yaml"),
		"Exported 13 flags (1 archived) from 2 sites into " + out + ": 14 files, 3 API calls.",
		"The files are valid and plan to no change. Next: flagsync plan --repo " + out,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	first := readTree(t, out)
	if len(first) != 14 {
		t.Errorf("%d files written, want 14", len(first))
	}
	adopted := first[genSiteA+"/adopted_experiment.yaml"]
	for _, want := range []string{"siteCode: " + genSiteA, "name: 'Adopted: experiment'", `name: "No"`, `value: "42"`, "trafficAllocationMethod: MULTI_ARMED_BANDIT", "# Kameleoon rule id 77001, experiment 88001"} {
		if !strings.Contains(adopted, want) {
			t.Errorf("adopted_experiment.yaml lacks %q:\n%s", want, adopted)
		}
	}
	if strings.Contains(first[genSiteA+"/flag_0000.yaml"], "managed-by-flagsync") {
		t.Error("the ownership tag was written into a flag file")
	}

	// The adopted repository plans to nothing through the real command.
	r = h.mustRun(exitOK, "plan", "--repo", out, "--detailed-exitcode")
	if r.writes != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan of the export (%d writes):\n%s", r.writes, r.stdout)
	}

	// Again: refused without --force, nothing changed.
	mine := filepath.Join(out, "notes.txt")
	if err := os.WriteFile(mine, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, genSiteB, "flag_0009.yaml"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun(exitFail, "export", "--site-code", genSiteA+","+genSiteB, "--out", out)
	if !strings.Contains(r.stderr, "already holds 14 of the files: nothing was written (pass --force") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if got := readTree(t, out)[genSiteB+"/flag_0009.yaml"]; got != "edited\n" {
		t.Errorf("a refused export changed a file: %q", got)
	}

	// With --force: the same bytes as the first time, and other files left alone.
	r = h.mustRun(exitOK, "export", "--site-code", genSiteA, "--site-code", genSiteB, "--out", out, "--force")
	if !strings.Contains(r.stdout, "replaced "+filepath.Join(out, genSiteB, "flag_0009.yaml")) {
		t.Errorf("stdout does not say which files were replaced:\n%s", r.stdout)
	}
	second := readTree(t, out)
	if second["notes.txt"] != "mine" {
		t.Error("--force touched a file that is not part of the export")
	}
	delete(second, "notes.txt")
	if len(second) != len(first) {
		t.Fatalf("%d files, then %d", len(first), len(second))
	}
	for name, data := range first {
		if second[name] != data {
			t.Errorf("%s differs between two exports of the same flags", name)
		}
	}
}

func TestExportOneSite(t *testing.T) {
	h := newExportHarness(t, 3)
	work := t.TempDir()
	out := filepath.Join(work, "flags")
	h.mustRun(exitOK, "export", "--site-code", genSiteA, "--out", out)
	files := readTree(t, out)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"adopted_experiment.yaml", "flag_0000.yaml", "flag_0001.yaml", "flag_0002.yaml", "flagsync.yaml", "retired.yaml"}
	if !slices.Equal(names, want) {
		t.Errorf("files = %q, want %q", names, want)
	}
	if !strings.Contains(files["flagsync.yaml"], "siteCode: "+genSiteA) || strings.Contains(files["flag_0000.yaml"], "siteCode") {
		t.Errorf("one site: the site code belongs in flagsync.yaml only:\n%s", files["flagsync.yaml"])
	}
	h.mustRun(exitOK, "plan", "--repo", work, "--path", "flags", "--detailed-exitcode")
}

func TestExportFromTheEmbeddedSandbox(t *testing.T) {
	h := newSyncHarness(t)
	h.env = map[string]string{} // --sandbox needs no credentials
	repo, work := t.TempDir(), t.TempDir()
	writeGenRepo(t, repo, genFlags(3))
	state := filepath.Join(t.TempDir(), "sandbox.json")
	h.mustRun(exitOK, "sync", "--sandbox", "--sandbox-state", state, "--repo", repo)

	out := filepath.Join(work, "adopted")
	r := h.mustRun(exitOK, "export", "--sandbox", "--sandbox-state", state, "--site-code", genSiteA, "--out", out)
	if !strings.Contains(r.stdout, "Exported 3 flags from 1 site") || !strings.Contains(r.stdout, "--sandbox --sandbox-state "+state) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if r.calls != 0 {
		t.Errorf("the embedded sandbox run touched the test's sandbox %d times", r.calls)
	}
	h.mustRun(exitOK, "plan", "--sandbox", "--sandbox-state", state, "--repo", out, "--detailed-exitcode")
}

func TestExportUsageAndErrors(t *testing.T) {
	h := newExportHarness(t, 1)
	out := filepath.Join(t.TempDir(), "flags")
	usage := [][]string{
		{"export"},
		{"export", "--site-code", "short"},
		{"export", "--site-code", genSiteA, "--sandbox", "--api-url", "http://127.0.0.1:1"},
		{"export", "--site-code", genSiteA, "extra"},
		{"export", "--site-code", genSiteA, "--out", ""},
	}
	for _, args := range usage {
		if r := h.run(args...); r.code != exitUsage || r.calls != 0 {
			t.Errorf("flagsync %s: exit %d with %d calls, want %d and none", strings.Join(args, " "), r.code, r.calls, exitUsage)
		}
	}

	r := h.mustRun(exitFail, "export", "--site-code", "nositehere", "--out", out)
	if !strings.Contains(r.stderr, "nothing to export: 1 site nositehere has no flags") {
		t.Errorf("empty site:\n%s", r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("an empty export created the output folder")
	}

	r = h.mustRun(exitOK, "export", "--site-code", genSiteA+",nositehere", "--out", out)
	if !strings.Contains(r.stdout, "note: site nositehere has no flags") {
		t.Errorf("a site without flags is not reported:\n%s", r.stdout)
	}

	h.env = map[string]string{kclient.EnvAPIURL: h.url}
	r = h.mustRun(exitFail, "export", "--site-code", genSiteA, "--out", out)
	if !strings.Contains(r.stderr, kclient.EnvClientID) || !strings.Contains(r.stderr, "--sandbox") {
		t.Errorf("without credentials:\n%s", r.stderr)
	}
}

func TestExportSchemaComment(t *testing.T) {
	repo := t.TempDir()
	for _, d := range []string{".git", "schema", "team/flags"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "schema", "flag.schema.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A schema above the top of another work tree is not that tree's.
	outside := t.TempDir()
	for _, d := range []string{"schema", "other/.git"} {
		if err := os.MkdirAll(filepath.Join(outside, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "schema", "flag.schema.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, flag, out, want string
	}{
		{"found in the repository", "", filepath.Join(repo, "team", "flags"), "../../schema"},
		{"not looked for above the work tree", "", filepath.Join(outside, "other", "flags"), ""},
		{"a URL", "https://example.com/schema", outside, "https://example.com/schema"},
		{"a path", filepath.Join(outside, "s"), filepath.Join(outside, "x", "flags"), "../../s"},
		{"none", "none", filepath.Join(repo, "team", "flags"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exportSchema(tt.flag, tt.out)
			if err != nil || got != tt.want {
				t.Errorf("exportSchema(%q, %q) = %q, %v; want %q", tt.flag, tt.out, got, err, tt.want)
			}
		})
	}

	h := newExportHarness(t, 1)
	out := filepath.Join(repo, "team", "flags")
	h.mustRun(exitOK, "export", "--site-code", genSiteA, "--out", out)
	b, err := os.ReadFile(filepath.Join(out, "flag_0000.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("# yaml-language-server: $schema=../../schema/flag.schema.json\n")) {
		t.Errorf("flag_0000.yaml starts:\n%s", b[:min(len(b), 200)])
	}
}
