package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/logtest"
)

const (
	runSite          = "runsite001"
	runWebhookSecret = "canary-run-webhook-8d2f"
	runAdminToken    = "canary-run-admin-40be"
	runGitPassword   = "canary-run-git-9a71"
)

func runFlagYAML(key string, prodOn bool) string {
	return fmt.Sprintf(`featureKey: %s
name: Flag %s
variations:
  - {key: "off", name: Off}
  - {key: "on", name: On}
environments:
  development:
    featureEnabled: true
    defaultVariationKey: "on"
  production:
    featureEnabled: %t
    defaultVariationKey: "off"
`, key, key, prodOn)
}

// runDaemon is `flagsync run` running in-process against a real Git smart-HTTP server
// and a sandbox, both on 127.0.0.1.
type runDaemon struct {
	t      *testing.T
	repo   *gittest.Repo
	sb     *ksandbox.Server
	env    map[string]string
	logs   *logtest.Buffer
	base   string // the main listener: /healthz, /readyz, /webhook
	admin  string // the admin listener: /status, /metrics, /suspend, /resume
	cancel context.CancelFunc
	code   chan int
}

func startRunDaemon(t *testing.T, extra map[string]string, args ...string) *runDaemon {
	t.Helper()
	gitFreeEnv(t)
	repo := gittest.NewRepo(t)
	repo.Commit(t, map[string]string{
		"flags/flagsync.yaml": "siteCode: " + runSite + "\nenvironments: [development, production]\n",
		"flags/alpha.yaml":    runFlagYAML("alpha", false),
		"flags/beta.yaml":     runFlagYAML("beta", false),
	}, "flags")
	gitURL := gittest.StartHTTP(t, repo, "flagsync", runGitPassword)
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Environments: []string{"development", "production"}})
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(runWebhookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		kclient.EnvClientID: ksandbox.DefaultClientID, kclient.EnvClientSecret: ksandbox.DefaultClientSecret, kclient.EnvAPIURL: ts.URL,
		"FLAGSYNC_REPO": gitURL, "FLAGSYNC_REF": "main", "FLAGSYNC_PATH": "flags",
		"FLAGSYNC_CACHE_DIR":           t.TempDir(),
		"FLAGSYNC_GIT_USERNAME":        "flagsync",
		"FLAGSYNC_GIT_PASSWORD":        runGitPassword,
		"FLAGSYNC_WEBHOOK_SECRET_FILE": secretFile,
		"FLAGSYNC_ADMIN_TOKEN":         runAdminToken,
		"FLAGSYNC_LISTEN":              "127.0.0.1:0",
		"FLAGSYNC_ADMIN_LISTEN":        "127.0.0.1:0", // the same address: one listener serves every endpoint
		"FLAGSYNC_SCHEDULE":            "off",
		"FLAGSYNC_RETRY_BASE":          "5ms",
		"FLAGSYNC_LOG_FORMAT":          "json",
		"FLAGSYNC_LOG_LEVEL":           "debug",
		"FLAGSYNC_RATE_10S":            "100000",
		"FLAGSYNC_RATE_HOUR":           "1000000",
		"FLAGSYNC_SHUTDOWN_TIMEOUT":    "10s",
		"FLAGSYNC_WEBHOOK_MAX_BODY":    "65536",
		"FLAGSYNC_GIT_TIMEOUT":         "20s",
		"FLAGSYNC_STATUS_HISTORY":      "5",
		"FLAGSYNC_DRIFT_INTERVAL":      "1h",
		"FLAGSYNC_READY_INTERVALS":     "3",
		"FLAGSYNC_CONCURRENCY":         "2",
		"FLAGSYNC_MAX_CHANGES":         "100",
		"FLAGSYNC_JITTER":              "1s",
		"FLAGSYNC_SUSPEND":             "false",
	}
	for k, v := range extra {
		env[k] = v
	}
	d := &runDaemon{t: t, repo: repo, sb: sb, env: env, logs: &logtest.Buffer{}, code: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	a := &app{stdout: io.Discard, stderr: d.logs, getenv: func(k string) string { return env[k] }}
	go func() { d.code <- a.dispatch(ctx, append([]string{"run"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.code:
		case <-time.After(20 * time.Second):
			t.Error("flagsync run did not stop")
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", lastLines(d.logs.String(), 60))
		}
	})
	listening := d.waitLog("daemon listening")
	d.base, d.admin = "http://"+listening["addr"].(string), "http://"+listening["admin_addr"].(string)
	return d
}

// waitLog waits for a JSON log line with msg and returns it.
func (d *runDaemon) waitLog(msg string) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(d.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		select {
		case code := <-d.code:
			d.t.Fatalf("flagsync run exited %d before logging %q:\n%s", code, msg, d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no %q log line:\n%s", msg, d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *runDaemon) request(method, path string, hd http.Header, body []byte) (int, string) {
	d.t.Helper()
	base := d.base
	switch path {
	case "/status", "/metrics", "/suspend", "/resume":
		if d.admin != "" {
			base = d.admin
		}
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	for k, v := range hd {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// statusOf fetches /status.
func (d *runDaemon) status() map[string]any {
	d.t.Helper()
	code, body := d.request(http.MethodGet, "/status", nil, nil)
	if code != http.StatusOK {
		d.t.Fatalf("/status: %d %s", code, body)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		d.t.Fatal(err)
	}
	return s
}

// waitSync waits until /status lists a sync with this trigger that is not running.
func (d *runDaemon) waitSync(trigger string, n int) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := d.status()
		seen := 0
		if s["running"] == nil {
			for _, r := range s["syncs"].([]any) {
				if rec := r.(map[string]any); rec["trigger"] == trigger {
					seen++
					if seen == n {
						return rec
					}
				}
			}
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", "  ")
			d.t.Fatalf("no finished %q sync #%d; status:\n%s", trigger, n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *runDaemon) prodEnabled(key string) bool {
	raw, ok := d.sb.FlagJSON(runSite, key)
	if !ok {
		d.t.Fatalf("flag %s not in the sandbox", key)
	}
	var f struct {
		EnvironmentConfigurations []struct {
			EnvironmentKey string `json:"environmentKey"`
			FeatureEnabled bool   `json:"featureEnabled"`
		} `json:"environmentConfigurations"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		d.t.Fatal(err)
	}
	for _, e := range f.EnvironmentConfigurations {
		if e.EnvironmentKey == "production" {
			return e.FeatureEnabled
		}
	}
	return false
}

// TestRunDaemon runs `flagsync run` configured only through the environment: the startup
// sync creates the flags, a signed webhook applies a push, SIGHUP asks for a full sync,
// the admin endpoints suspend and resume, and cancelling the context exits 0.
func TestRunDaemon(t *testing.T) {
	d := startRunDaemon(t, nil)
	if rec := d.waitSync("startup", 1); rec["result"] != "success" {
		t.Fatalf("startup sync: %v", rec)
	}
	if code, body := d.request(http.MethodGet, "/readyz", nil, nil); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	before := d.repo.Head(t)
	after := d.repo.Commit(t, map[string]string{"flags/alpha.yaml": runFlagYAML("alpha", true)}, "alpha on")
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q,"repository":"acme/flags"}`, before, after))
	mac := hmac.New(sha256.New, []byte(runWebhookSecret))
	mac.Write(body)
	hd := http.Header{"Content-Type": {"application/json"}, "X-Flagsync-Signature": {"sha256=" + hex.EncodeToString(mac.Sum(nil))}, "X-Flagsync-Delivery": {"run-1"}}
	if code, resp := d.request(http.MethodPost, "/webhook", hd, body); code != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", code, resp)
	}
	if rec := d.waitSync("webhook", 1); rec["result"] != "success" || rec["mode"] != "partial" || rec["revision"] != after {
		t.Fatalf("webhook sync: %v", rec)
	}
	if !d.prodEnabled("alpha") {
		t.Fatal("the pushed change was not applied")
	}
	hd.Set("X-Flagsync-Signature", "sha256="+strings.Repeat("0", 64))
	hd.Set("X-Flagsync-Delivery", "run-2")
	if code, _ := d.request(http.MethodPost, "/webhook", hd, body); code != http.StatusUnauthorized {
		t.Errorf("badly signed webhook: %d, want 401", code)
	}

	// SIGHUP asks for a full sync (the daemon caught SIGHUP before it listened).
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if rec := d.waitSync("signal", 1); rec["mode"] != "full" || rec["result"] != "success" {
		t.Fatalf("SIGHUP sync: %v", rec)
	}

	admin := http.Header{"Authorization": {"Bearer " + runAdminToken}}
	if code, resp := d.request(http.MethodPost, "/suspend", admin, nil); code != http.StatusOK {
		t.Fatalf("/suspend: %d %s", code, resp)
	}
	if s := d.status(); s["suspended"] != true {
		t.Errorf("status suspended = %v", s["suspended"])
	}
	if code, _ := d.request(http.MethodPost, "/resume", admin, nil); code != http.StatusOK {
		t.Fatalf("/resume: %d", code)
	}
	d.waitSync("resume", 1)

	_, metricsText := d.request(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{`flagsync_syncs_total{result="success"} 4`, `flagsync_webhook_deliveries_total{outcome="accepted",provider="generic"} 1`, `endpoint="/feature-flags/{siteCode}/{featureKey}"`} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	d.cancel() // SIGTERM
	select {
	case code := <-d.code:
		if code != exitOK {
			t.Errorf("flagsync run exited %d after SIGTERM, want 0", code)
		}
		d.code <- code // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("flagsync run did not stop after its context was cancelled")
	}
	logs := d.logs.String()
	for _, secret := range []string{runWebhookSecret, runAdminToken, runGitPassword, ksandbox.DefaultClientSecret + `"`} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the secret %q", secret)
		}
	}
}

// TestRunWebhookSecretOnCommandLineWarns: a secret given as a flag works, with a warning.
func TestRunWebhookSecretOnCommandLineWarns(t *testing.T) {
	d := startRunDaemon(t, map[string]string{"FLAGSYNC_WEBHOOK_SECRET_FILE": ""}, "--webhook-secret", runWebhookSecret)
	rec := d.waitLog("--webhook-secret on the command line shows in process lists; use FLAGSYNC_WEBHOOK_SECRET or FLAGSYNC_WEBHOOK_SECRET_FILE")
	if rec["level"] != "WARN" {
		t.Errorf("warning logged at %v", rec["level"])
	}
	if code, _ := d.request(http.MethodPost, "/webhook/generic", http.Header{"X-Flagsync-Signature": {"sha256=00"}}, []byte(`{}`)); code != http.StatusUnauthorized {
		t.Errorf("webhook with the flag's secret set: %d, want 401 for a bad signature", code)
	}
}

// TestRunUsage covers the command-line and environment mistakes that stop the daemon
// before it starts.
func TestRunUsage(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := map[string]string{kclient.EnvClientID: "id", kclient.EnvClientSecret: "secret", "FLAGSYNC_REPO": t.TempDir(), "FLAGSYNC_CACHE_DIR": t.TempDir()}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"bad duration in the environment", map[string]string{"FLAGSYNC_DRIFT_INTERVAL": "soon"}, nil, exitUsage, "FLAGSYNC_DRIFT_INTERVAL"},
		{"bad bool in the environment", map[string]string{"FLAGSYNC_SUSPEND": "maybe"}, nil, exitUsage, "FLAGSYNC_SUSPEND"},
		{"bad schedule", nil, []string{"--schedule", "every tuesday"}, exitUsage, "schedule"},
		{"webhook without a branch", map[string]string{"FLAGSYNC_WEBHOOK_SECRET": "s"}, nil, exitUsage, "--webhook-branch"},
		{"zero concurrency", nil, []string{"--concurrency", "0"}, exitUsage, "--concurrency"},
		{"negative drift interval", nil, []string{"--drift-interval", "-1s"}, exitUsage, "--drift-interval"},
		{"no credentials", map[string]string{kclient.EnvClientID: "", kclient.EnvClientSecret: ""}, nil, exitFail, "--sandbox"},
		{"address in use", nil, []string{"--listen", busy.Addr().String(), "--schedule", "off"}, exitFail, "listen on"},
		{"unexpected argument", nil, []string{"now"}, exitUsage, "unexpected argument"},
		{"unknown election backend", nil, []string{"--leader-elect", "raft"}, exitUsage, `--leader-elect: leader election: Mode: "raft": want auto, lease, file or none`},
		{"lock file without a path", nil, []string{"--leader-elect", "file", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, exitUsage, "--leader-lock PATH"},
		{"lock file in a missing folder", nil, []string{"--leader-lock", filepath.Join(t.TempDir(), "missing", "flagsync.lock"), "--schedule", "off", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, exitFail, "open lock file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			code, _, stderr := runWithEnv(env, append([]string{"run"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestRefBranch(t *testing.T) {
	for ref, want := range map[string]string{
		"":                       "",
		"main":                   "main",
		"release/2":              "release/2",
		"refs/heads/main":        "main",
		"refs/tags/v1.0.0":       "",
		"refs/pull/1/head":       "",
		strings.Repeat("ab", 20): "",
	} {
		if got := refBranch(ref); got != want {
			t.Errorf("refBranch(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestRunSandboxLinesCarryRevision: with --sandbox, the embedded sandbox's lines about
// the calls it serves during a sync name the sync's revision, like the API client's.
func TestRunSandboxLinesCarryRevision(t *testing.T) {
	d := startRunDaemon(t, map[string]string{"FLAGSYNC_SANDBOX": "true",
		"FLAGSYNC_SANDBOX_STATE": filepath.Join(t.TempDir(), "sandbox.json")})
	rec := d.waitSync("startup", 1)
	if rec["result"] != "success" {
		t.Fatalf("startup sync: %v", rec)
	}
	calls := 0
	for _, line := range logLines(t, d.logs.String()) {
		if line["msg"] != "sandbox call" {
			continue
		}
		calls++
		if line["revision"] != rec["revision"] {
			t.Errorf("sandbox line without the revision %v: %v", rec["revision"], line)
		}
	}
	if calls == 0 {
		t.Fatal("the startup sync logged no sandbox call")
	}
}
