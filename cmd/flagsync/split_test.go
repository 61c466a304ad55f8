package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSandboxCommandSplit(t *testing.T) {
	state := filepath.Join(t.TempDir(), "split.json")
	base, _, stop := startSandboxCmd(t, map[string]string{"FLAGSYNC_SANDBOX_API_KEY": "k3y"},
		"--vendor", "split", "--state", state, "--environments", "Staging,Production", "--rate-second", "-1")
	call := func(method, path, key, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/internal/api/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call("GET", "/splits/ws/ws-1", "sandbox", ""); got != 401 {
		t.Errorf("default key with a configured one: %d, want 401", got)
	}
	if got := call("POST", "/splits/ws/ws-1/trafficTypes/user", "k3y", `{"name":"cli"}`); got != 200 {
		t.Errorf("create: %d", got)
	}
	if got := call("POST", "/splits/ws/ws-1/cli/environments/Production", "k3y",
		`{"treatments":[{"name":"on"},{"name":"off"}],"defaultTreatment":"off","defaultRule":[{"treatment":"off","size":100}]}`); got != 200 {
		t.Errorf("create definition: %d", got)
	}
	if got := call("PATCH", "/splits/ws/ws-1/cli/environments/Production", "k3y", `[{"op":"test","path":"/killed","value":true}]`); got != 409 {
		t.Errorf("failed test: %d, want 409", got)
	}
	if code := stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if b, err := os.ReadFile(state); err != nil || !bytes.Contains(b, []byte(`"cli"`)) {
		t.Errorf("state file: %v", err)
	}
}

const splitSettings = "vendor: split\nworkspace: ws-1\ntrafficType: user\nenvironments: [Staging, Production]\n"

const splitFlag = `name: new_checkout
environments:
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
    trafficAllocation: 40
`

// TestSyncSplitRepositoryWithTheSandbox runs plan and sync on a Split repository with
// --sandbox: no Kameleoon credentials are needed, the second sync writes nothing, one
// edit is one PATCH, and an invalid file stops everything.
func TestSyncSplitRepositoryWithTheSandbox(t *testing.T) {
	dir := t.TempDir()
	flags := filepath.Join(dir, "flags")
	if err := os.MkdirAll(flags, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(flags, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("flagsync.yaml", splitSettings)
	write("new_checkout.yaml", splitFlag)
	state := filepath.Join(dir, "split.json")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		a := &app{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		args = append(args, "--repo", dir, "--path", "flags", "--sandbox", "--split-sandbox-state", state,
			"--sandbox-state", filepath.Join(dir, "kameleoon.json"), "--log-level", "error")
		code := a.dispatch(context.Background(), args)
		return code, out.String(), errb.String()
	}
	code, out, errs := run("sync")
	if code != exitOK || !strings.Contains(out, "2 applied, 0 failed, 0 skipped; converged") {
		t.Fatalf("first sync: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "kameleoon.json")); err == nil {
		t.Error("a Split repository started the Kameleoon sandbox")
	}
	code, out, _ = run("sync")
	if code != exitOK || !strings.Contains(out, "already in sync") {
		t.Fatalf("second sync: exit %d\n%s", code, out)
	}
	write("new_checkout.yaml", strings.Replace(splitFlag, "trafficAllocation: 40", "trafficAllocation: 60", 1))
	code, out, _ = run("plan", "--format", "json", "--detailed-exitcode")
	if code != exitChanges || !strings.Contains(out, `"body": [`) || !strings.Contains(out, `"path": "/trafficAllocation"`) || !strings.Contains(out, `"service": "Split"`) {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	code, out, _ = run("sync")
	if code != exitOK || !strings.Contains(out, "1 applied") {
		t.Fatalf("sync of the edit: exit %d\n%s", code, out)
	}
	write("new_checkout.yaml", strings.Replace(splitFlag, `defaultTreatment: "off"`, `defaultTreatment: "maybe"`, 1))
	code, _, errs = run("sync")
	if code != exitFail || !strings.Contains(errs, `flags/new_checkout.yaml:5:23: environments.Production.defaultTreatment: unknown treatment "maybe"`) ||
		!strings.Contains(errs, "nothing was read from or written to the API") {
		t.Fatalf("invalid file: exit %d\n%s", code, errs)
	}
}

func TestSplitCredentialsComeFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flagsync.yaml"), []byte(splitSettings), 0o644); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	a := &app{stdout: io.Discard, stderr: &errb, getenv: func(string) string { return "" }}
	if code := a.dispatch(context.Background(), []string{"plan", "--repo", dir, "--log-level", "error"}); code != exitFail {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "SPLIT_ADMIN_API_KEY (or SPLIT_ADMIN_API_KEY_FILE) not set") || strings.Contains(errb.String(), "KAMELEOON") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}

// TestExportSplitRoundTrip exports a Split workspace that a sync filled, and plans the
// exported files against it: zero changes.
func TestExportSplitRoundTrip(t *testing.T) {
	dir := t.TempDir()
	flags := filepath.Join(dir, "flags")
	if err := os.MkdirAll(flags, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"flagsync.yaml": splitSettings, "new_checkout.yaml": splitFlag,
		"dark_mode.yaml": "name: dark_mode\ntags: [ui]\nenvironments:\n  Staging:\n    treatments: [{name: dark, keys: [u1]}, {name: light}]\n    defaultTreatment: light\n    killed: true\n"} {
		if err := os.WriteFile(filepath.Join(flags, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "split.json")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		a := &app{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := a.dispatch(context.Background(), append(args, "--sandbox", "--split-sandbox-state", state, "--log-level", "error"))
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("sync", "--repo", dir, "--path", "flags"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errs)
	}
	exported := filepath.Join(dir, "exported")
	code, out, errs := run("export", "--vendor", "split", "--workspace", "ws-1", "--out", exported, "--schema", "none")
	if code != exitOK || !strings.Contains(out, "Exported 2 flags from workspace ws-1") || !strings.Contains(out, "4 API calls") || !strings.Contains(out, "plan to no change") {
		t.Fatalf("export: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = run("plan", "--repo", exported, "--detailed-exitcode")
	if code != exitOK || !strings.Contains(out, "No changes. Split matches") {
		t.Fatalf("plan of the export: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := run("export", "--vendor", "split", "--workspace", "ws-1", "--out", exported); code != exitFail {
		t.Errorf("a second export without --force: exit %d, want %d", code, exitFail)
	}
	if code, _, _ := run("export", "--vendor", "split", "--site-code", "pzllysfw2f"); code != exitUsage {
		t.Errorf("--vendor split with --site-code: exit %d", code)
	}
}

func TestValidateSplitAndMixedRepositories(t *testing.T) {
	validate := func(files map[string]string) (int, string) {
		dir := t.TempDir()
		for name, body := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		a := &app{stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }}
		return a.dispatch(context.Background(), []string{"validate", "--repo", dir}), out.String()
	}
	code, out := validate(map[string]string{"flagsync.yaml": splitSettings, "a.yaml": splitFlag,
		"b.yaml": strings.Replace(splitFlag, "new_checkout", "other", 1)})
	if code != exitOK || out != "2 flag files valid (1 Split workspace)\n" {
		t.Errorf("Split repository: exit %d, %q", code, out)
	}
	kameleoonFlag := "featureKey: banner\nname: Banner\nvariations: [{key: \"off\"}]\n"
	code, out = validate(map[string]string{"flagsync.yaml": "siteCode: pzllysfw2f\n", "banner.yaml": kameleoonFlag,
		"split/a.yaml": "vendor: split\nworkspace: ws-1\ntrafficType: user\n" + splitFlag})
	if code != exitOK || out != "2 flag files valid (1 site, 1 Split workspace)\n" {
		t.Errorf("mixed repository: exit %d, %q", code, out)
	}
	code, out = validate(map[string]string{"flagsync.yaml": "siteCode: pzllysfw2f\n", "banner.yaml": strings.Replace(kameleoonFlag, "name: Banner", "nme: Banner", 1),
		"split/a.yaml": "vendor: split\nworkspace: ws-1\ntrafficType: user\n" + strings.Replace(splitFlag, "trafficAllocation: 40", "trafficAllocation: 400", 1)})
	want := `banner.yaml:1:1: missing required field "name"
banner.yaml:2:1: nme: unknown field "nme"; did you mean "name"?
split/a.yaml:9:24: environments.Production.trafficAllocation: must be <= 100
3 problems in 2 files
`
	if code != exitFail || out != want {
		t.Errorf("invalid mixed repository: exit %d\n%s\nwant\n%s", code, out, want)
	}
}
