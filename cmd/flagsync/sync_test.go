package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
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
	if !strings.Contains(r.stderr, kclient.EnvClientID) || !strings.Contains(r.stderr, "--sandbox") {
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
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{ClientID: "id-1", ClientSecret: canary, RatePer10s: -1, RatePerHour: -1})
	h := &syncHarness{t: t, sb: sb, url: ts.URL, env: map[string]string{
		kclient.EnvClientID: "id-1", kclient.EnvClientSecret: canary, kclient.EnvAPIURL: ts.URL,
	}}
	dir := t.TempDir()
	writeGenRepo(t, dir, genFlags(2))
	sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 400, Body: `{"message":"bad"}`})
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
	h.env[kclient.EnvClientSecret] = canary + "-wrong"
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
	a := &app{stdout: &out, stderr: &errb, outTTY: true, errTTY: true, getenv: func(k string) string { return h.env[k] }}
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

// onLog is a slog handler that calls fn for each record with message msg and the given
// method and path attributes: the sandbox logs a call after handling it, before answering.
type onLog struct {
	msg, method, path string
	fn                func()
}

func (h onLog) Enabled(context.Context, slog.Level) bool { return true }
func (h onLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onLog) WithGroup(string) slog.Handler            { return h }
func (h onLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		var method, path string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "method":
				method = a.Value.String()
			case "path":
				path = a.Value.String()
			}
			return true
		})
		if method == h.method && path == h.path {
			h.fn()
		}
	}
	return nil
}

func TestSyncInterruptedFinishesTheInFlightChangeOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	// The interrupt arrives while the first create is being answered.
	h := newSyncHarnessWith(t, ksandbox.Options{Logger: slog.New(onLog{"sandbox call", "POST", "/feature-flags", func() { once.Do(cancel) }})})
	dir := t.TempDir()
	flags := genFlags(5)
	writeGenRepo(t, dir, flags)

	var out, errb strings.Builder
	a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return h.env[k] }}
	code := a.dispatch(ctx, []string{"sync", "--repo", dir, "--concurrency", "1"})
	if code != exitFail {
		t.Errorf("interrupted sync: exit %d, want %d", code, exitFail)
	}
	if got := h.sb.Writes(); got != 1 {
		t.Errorf("interrupted sync sent %d writes, want only the one in flight", got)
	}
	if !strings.Contains(out.String(), "applied  create   "+genSiteA+"/flag_0000\n") ||
		strings.Count(out.String(), "(cancelled before it was sent)") != 4 ||
		!strings.Contains(out.String(), "1 applied, 0 failed, 4 skipped; convergence not confirmed") {
		t.Errorf("interrupted sync output:\n%s", out.String())
	}
	r := h.mustRun(exitOK, "sync", "--repo", dir)
	if r.writes != 4 {
		t.Errorf("the next sync sent %d writes, want the 4 skipped creates", r.writes)
	}
	h.assertLive(flags)
}
