package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/sandbox"
)

func TestSyncUsage(t *testing.T) {
	h := newSyncHarness(t)
	for _, args := range [][]string{
		{"sync", "--format", "yaml"},
		{"sync", "--concurrency", "0"},
		{"sync", "--sandbox", "--api-url", "http://127.0.0.1:1"},
		{"sync", "extra"},
		{"plan", "--format", "html"},
	} {
		if r := h.run(args...); r.code != exitUsage || r.calls != 0 {
			t.Errorf("flagsync %s: exit %d with %d calls, want %d and none", strings.Join(args, " "), r.code, r.calls, exitUsage)
		}
	}
}

func TestSyncWithoutCredentialsPointsToSandbox(t *testing.T) {
	h := newSyncHarness(t)
	h.env = map[string]string{}
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(1))
	r := h.mustRun(exitFail, "sync", "--repo", dir)
	if !strings.Contains(r.stderr, api.EnvClientID) || !strings.Contains(r.stderr, "--sandbox") {
		t.Errorf("stderr does not explain the credentials and --sandbox:\n%s", r.stderr)
	}
}

func TestSyncEmbeddedSandboxKeepsState(t *testing.T) {
	h := newSyncHarness(t)
	h.env = map[string]string{} // no credentials: --sandbox needs none
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(4))
	state := filepath.Join(t.TempDir(), "state", "sandbox.json")

	r := h.mustRun(exitOK, "sync", "--sandbox", "--sandbox-state", state, "--repo", dir)
	if !strings.Contains(r.stdout, "4 applied, 0 failed, 0 skipped; converged") || !strings.Contains(r.stdout, "the sandbox ("+state+")") {
		t.Errorf("first embedded sync:\n%s", r.stdout)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("state file not written: %v", err)
	}
	r = h.mustRun(exitOK, "sync", "--sandbox", "--sandbox-state", state, "--repo", dir)
	if !strings.Contains(r.stdout, "already in sync") {
		t.Errorf("second embedded sync:\n%s", r.stdout)
	}
	if r.calls != 0 {
		t.Errorf("the embedded sandbox runs touched the test's sandbox %d times", r.calls)
	}
}

func TestSyncNeverPrintsTheSecret(t *testing.T) {
	const canary = "canary-secret-4f9c2a"
	sb, ts := sandbox.NewTestServer(t, sandbox.Options{ClientID: "id-1", ClientSecret: canary, RatePer10s: -1, RatePerHour: -1})
	h := &syncHarness{t: t, sb: sb, url: ts.URL, env: map[string]string{
		api.EnvClientID: "id-1", api.EnvClientSecret: canary, api.EnvAPIURL: ts.URL,
	}}
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(2))
	sb.InjectFault(sandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 400, Body: `{"message":"bad"}`})
	sb.RevokeTokens()
	var all strings.Builder
	for _, args := range [][]string{
		{"sync", "--repo", dir},
		{"sync", "--repo", dir, "--format", "json"},
		{"plan", "--repo", dir, "--format", "json"},
	} {
		r := h.run(args...)
		all.WriteString(r.stdout + r.stderr)
	}
	// A wrong secret too: the token endpoint's refusal must not echo it.
	h.env[api.EnvClientSecret] = canary + "-wrong"
	r := h.run("sync", "--repo", dir)
	all.WriteString(r.stdout + r.stderr)
	if strings.Contains(all.String(), canary) {
		t.Error("the client secret appears in flagsync's output or logs")
	}
}

func TestSyncEmbeddedSandboxTakesTheRepositorysEnvironments(t *testing.T) {
	h := newSyncHarness(t)
	h.env = map[string]string{}
	dir := t.TempDir()
	files := map[string]string{
		"flagsync.yaml": "siteCode: " + genSiteA + "\nenvironments: [dev, qa, live]\n",
		"one.yaml":      "featureKey: one\nname: One\nvariations: [{key: \"off\"}, {key: \"on\"}]\nenvironments:\n  qa: {featureEnabled: true, defaultVariationKey: \"on\"}\n  live: {featureEnabled: false, defaultVariationKey: \"off\"}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(t.TempDir(), "sandbox.json")
	r := h.mustRun(exitOK, "sync", "--sandbox", "--sandbox-state", state, "--repo", dir)
	if !strings.Contains(r.stdout, "1 applied, 0 failed, 0 skipped; converged") {
		t.Errorf("sync with custom environments:\n%s", r.stdout)
	}
	h.mustRun(exitOK, "plan", "--sandbox", "--sandbox-state", state, "--repo", dir, "--detailed-exitcode")
}

func TestSyncOnATerminalLogsOnlyWarnings(t *testing.T) {
	h := newSyncHarness(t)
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(2))
	var out, errb strings.Builder
	a := &app{stdout: &out, stderr: &errb, isTTY: true, getenv: func(k string) string { return h.env[k] }}
	if code := a.dispatch(t.Context(), []string{"sync", "--repo", dir}); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if errb.Len() != 0 {
		t.Errorf("a terminal sync logged more than warnings:\n%s", errb.String())
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Error("the plan on a terminal has no colour")
	}
	h.env["FLAGSYNC_LOG_LEVEL"] = "info"
	errb.Reset()
	a.dispatch(t.Context(), []string{"sync", "--repo", dir})
	if !strings.Contains(errb.String(), "in sync: no changes") {
		t.Errorf("FLAGSYNC_LOG_LEVEL=info is not honoured on a terminal:\n%s", errb.String())
	}
}
