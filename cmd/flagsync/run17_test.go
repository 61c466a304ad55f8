package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	"github.com/flagsync/flagsync/internal/logtest"
	"github.com/flagsync/flagsync/internal/notify"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	splitsandboxtest "github.com/flagsync/flagsync/internal/split/sandbox/sandboxtest"
)

// TestRunRefusesPlaceholderSecrets: each of the daemon's secrets, set but empty or a
// placeholder, stops the daemon at start with an error naming the setting and never the
// value.
func TestRunRefusesPlaceholderSecrets(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	placeholder := filepath.Join(dir, "placeholder")
	if err := os.WriteFile(empty, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(placeholder, []byte("Replace-Me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{kclient.EnvClientID: "id", kclient.EnvClientSecret: "secret", "FLAGSYNC_REPO": t.TempDir(),
		"FLAGSYNC_CACHE_DIR": t.TempDir(), "FLAGSYNC_WEBHOOK_BRANCH": "main"}
	for _, tc := range []struct {
		env     map[string]string
		args    []string
		setting string
		value   string
	}{
		{map[string]string{"FLAGSYNC_ADMIN_TOKEN": "replace-me"}, nil, "FLAGSYNC_ADMIN_TOKEN", "replace-me"},
		{map[string]string{"FLAGSYNC_ADMIN_TOKEN": "CHANGEME"}, nil, "FLAGSYNC_ADMIN_TOKEN", "CHANGEME"},
		{map[string]string{"FLAGSYNC_ADMIN_TOKEN_FILE": empty}, nil, "FLAGSYNC_ADMIN_TOKEN_FILE", ""},
		{map[string]string{"FLAGSYNC_WEBHOOK_SECRET": "xxx"}, nil, "FLAGSYNC_WEBHOOK_SECRET", "xxx"},
		{map[string]string{"FLAGSYNC_WEBHOOK_SECRET_FILE": placeholder}, nil, "FLAGSYNC_WEBHOOK_SECRET_FILE", "Replace-Me"},
		{nil, []string{"--webhook-secret", "todo"}, "--webhook-secret", "todo"},
		{map[string]string{"FLAGSYNC_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x", "FLAGSYNC_NOTIFY_WEBHOOK_SECRET": "Example"}, nil, "FLAGSYNC_NOTIFY_WEBHOOK_SECRET", "Example"},
		{map[string]string{"FLAGSYNC_NOTIFY_SLACK_URL_FILE": placeholder}, nil, "FLAGSYNC_NOTIFY_SLACK_URL_FILE", "Replace-Me"},
		{map[string]string{"FLAGSYNC_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x", "FLAGSYNC_NOTIFY_WEBHOOK_SECRET_FILE": empty}, nil, "FLAGSYNC_NOTIFY_WEBHOOK_SECRET_FILE", ""},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			code, _, stderr := runWithEnv(env, append([]string{"run"}, tc.args...)...)
			if code == exitOK || !strings.Contains(stderr, tc.setting+": ") {
				t.Fatalf("exit %d, stderr:\n%s\nwant a refusal naming %s", code, stderr, tc.setting)
			}
			if tc.value != "" && strings.Contains(stderr, tc.value) {
				t.Errorf("the error shows the value %q:\n%s", tc.value, stderr)
			}
		})
	}
}

// TestPlaceholderListMatchesChart: the daemon refuses the placeholders the Helm chart
// refuses, no more, no less.
func TestPlaceholderListMatchesChart(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\$placeholders := list ((?:"[^"]*"\s*)+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no $placeholders list in the chart's _helpers.tpl")
	}
	var chart []string
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllSubmatch(m[1], -1) {
		chart = append(chart, string(q[1]))
	}
	daemonList := slices.Clone(placeholderSecrets)
	slices.Sort(chart)
	slices.Sort(daemonList)
	if !slices.Equal(chart, daemonList) {
		t.Errorf("the chart refuses %v, the daemon %v", chart, daemonList)
	}
}

// TestRunAdminListen: with --admin-listen on its own address, the main address serves
// only /healthz, /readyz and /webhook, and the admin address /status, /metrics,
// /suspend and /resume (and the build info).
func TestRunAdminListen(t *testing.T) {
	adm := freePort(t)
	d := startRunDaemon(t, map[string]string{"FLAGSYNC_ADMIN_LISTEN": adm})
	d.waitSync("startup", 1)
	get := func(base, path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s%s: %v", base, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	admin := "http://" + adm
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/status": 404, "/metrics": 404} {
		if got := get(d.base, path); got != want {
			t.Errorf("main %s = %d, want %d", path, got, want)
		}
	}
	for path, want := range map[string]int{"/status": 200, "/metrics": 200, "/webhook": 404, "/healthz": 404} {
		if got := get(admin, path); got != want {
			t.Errorf("admin %s = %d, want %d", path, got, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, admin+"/suspend", nil)
	req.Header.Set("Authorization", "Bearer "+runAdminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("admin /suspend: %v %v", resp, err)
	}
	if resp, _ := http.Post(d.base+"/suspend", "", nil); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("main /suspend = %d, want no such endpoint", resp.StatusCode)
	}
	resp, _ := http.Get(admin + "/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`flagsync_build_info{goversion="go`, `revision=`, `flagsync_leader_role{backend="none",role="none"} 1`, "flagsync_changes_awaiting_approval 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// healthcheck finds both from the same settings.
	env := map[string]string{"FLAGSYNC_LISTEN": strings.TrimPrefix(d.base, "http://"), "FLAGSYNC_ADMIN_LISTEN": adm}
	for _, args := range [][]string{{"healthcheck"}, {"healthcheck", "--endpoint", "/readyz"}, {"healthcheck", "--endpoint", "/status"}} {
		if code, _, stderr := runWithEnv(env, args...); code != exitOK {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
}

// TestRunTracksDefaultBranch: without --ref, the daemon learns the remote's default
// branch from its HEAD, says so, and accepts pushes to it.
func TestRunTracksDefaultBranch(t *testing.T) {
	d := startRunDaemon(t, map[string]string{"FLAGSYNC_REF": ""})
	line := d.waitLog("tracking the default branch main (the remote's HEAD): pushes to it trigger a sync")
	if line["branch"] != "main" {
		t.Errorf("log line %v", line)
	}
	d.waitSync("startup", 1)
	before := d.repo.Head(t)
	after := d.repo.Commit(t, map[string]string{"flags/alpha.yaml": runFlagYAML("alpha", true)}, "alpha on")
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, before, after))
	mac := hmac.New(sha256.New, []byte(runWebhookSecret))
	mac.Write(body)
	hd := http.Header{"Content-Type": {"application/json"}, "X-Flagsync-Signature": {"sha256=" + hex.EncodeToString(mac.Sum(nil))}}
	if code, resp := d.request(http.MethodPost, "/webhook/generic", hd, body); code != http.StatusAccepted {
		t.Fatalf("push to the default branch: %d %s", code, resp)
	}
	if rec := d.waitSync("webhook", 1); rec["revision"] != after || rec["result"] != "success" {
		t.Errorf("webhook sync %v", rec)
	}
}

// TestRunDocsQuickStart follows docs/daemon.md in a fresh flags repository: `flagsync
// run --sandbox --repo . --path flags` in its work tree. The daemon keeps its state (the
// sandbox's flags) under the cache folder, so the work tree stays clean: every tick on
// the unchanged, converged revision is skipped and makes zero API calls.
func TestRunDocsQuickStart(t *testing.T) {
	gitFreeEnv(t)
	repo := gittest.NewRepo(t)
	repo.Commit(t, map[string]string{
		"flags/flagsync.yaml": "siteCode: " + runSite + "\nenvironments: [development, production]\n",
		"flags/alpha.yaml":    runFlagYAML("alpha", false),
	}, "flags")
	cache := t.TempDir()
	env := map[string]string{"HOME": t.TempDir(), "FLAGSYNC_CACHE_DIR": cache, "FLAGSYNC_LISTEN": "127.0.0.1:0", "FLAGSYNC_ADMIN_LISTEN": "127.0.0.1:0",
		"FLAGSYNC_LOG_FORMAT": "json", "FLAGSYNC_LOG_LEVEL": "debug"}
	logs := &logtest.Buffer{}
	a := &app{stdout: io.Discard, stderr: logs, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- a.dispatch(ctx, []string{"run", "--sandbox", "--repo", repo.Work, "--path", "flags", "--schedule", "@every 1s", "--jitter", "10ms"})
	}()
	t.Cleanup(func() {
		cancel()
		<-code
		if t.Failed() {
			t.Logf("logs:\n%s", lastLines(logs.String(), 40))
		}
	})
	d := &runDaemon{t: t, logs: logs, env: env}
	listening := d.waitLog("daemon listening")
	d.base, d.admin = "http://"+listening["addr"].(string), "http://"+listening["admin_addr"].(string)
	if rec := d.waitSync("startup", 1); rec["result"] != "success" {
		t.Fatalf("startup sync %v", rec)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := d.status()
		if chk, _ := s["lastCheck"].(map[string]any); chk != nil && chk["trigger"] == "schedule" {
			if chk["result"] != "skipped" {
				t.Fatalf("a tick on the unchanged revision: %v", chk)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled tick")
		}
		time.Sleep(100 * time.Millisecond)
	}
	calls := func() string {
		_, m := d.request(http.MethodGet, "/metrics", nil, nil)
		return strings.Join(regexp.MustCompile(`(?m)^flagsync_api_calls_total.*$`).FindAllString(m, -1), "\n")
	}
	before := calls()
	time.Sleep(2500 * time.Millisecond) // two more ticks
	if after := calls(); after != before {
		t.Errorf("ticks on the unchanged revision made API calls:\nbefore\n%s\nafter\n%s", before, after)
	}
	if s := d.status(); len(s["syncs"].([]any)) != 1 {
		t.Errorf("%d syncs, want only the startup sync: %v", len(s["syncs"].([]any)), s["syncs"])
	}
	if out := repo.Git(t, "status", "--porcelain", "--untracked-files=all"); out != "" {
		t.Errorf("the daemon left files in the repository:\n%s", out)
	}
	states, _ := filepath.Glob(filepath.Join(cache, "sandbox-*", "sandbox.json"))
	if len(states) != 1 {
		t.Errorf("sandbox state under the cache folder: %v, want one file", states)
	}
}

// TestSyncExitsZeroAwaitingApproval: a sync whose only difference left is a change
// filed for approval (a Split environment that requires approvals) did all it could: it
// says so, without calling the change refused, and exits 0; a CI job goes on.
func TestSyncExitsZeroAwaitingApproval(t *testing.T) {
	_, srv := splitsandboxtest.NewTestServer(t, splitsandbox.Options{RatePerSecond: -1, RatePerMinute: -1,
		Environments: []string{"Staging", "Production"}, ApprovalEnvironments: []string{"Production"}})
	dir := t.TempDir()
	flags := filepath.Join(dir, "flags")
	if err := os.MkdirAll(flags, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"flagsync.yaml": splitSettings, "new_checkout.yaml": splitFlag} {
		if err := os.WriteFile(filepath.Join(flags, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"SPLIT_API_URL": srv.URL, "SPLIT_ADMIN_API_KEY": splitsandbox.DefaultAPIKey, "SPLIT_CHANGE_APPROVERS": "lead@example.com", "HOME": t.TempDir()}
	for i, what := range []string{"files the change request", "finds it open"} {
		code, stdout, stderr := runWithEnv(env, "sync", "--repo", dir, "--path", "flags")
		if code != exitOK || !strings.Contains(stdout, "awaiting approval in Split") || strings.Contains(stdout, "refused") {
			t.Errorf("sync %d (%s): exit %d\n%s\n%s\nwant exit 0 and the change awaiting approval, not refused", i+1, what, code, stdout, stderr)
		}
	}
}

// TestRunNotifies: the notification settings reach the daemon: an invalid revision sends
// one signed sync_failed message with the revision and the plan link, its fix one
// recovered message, and the metrics count them.
func TestRunNotifies(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	var mu sync.Mutex
	var got []map[string]any
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		want := "v1," + notify.Sign(key, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
		if r.Header.Get("webhook-signature") != want {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	// The URL carries a token in its path: logs name the sink by scheme and host only.
	const urlToken = "canary-url-token-4b7e"
	d := startRunDaemon(t, map[string]string{"FLAGSYNC_NOTIFY_WEBHOOK_URL": rc.URL + "/hooks/" + urlToken, "FLAGSYNC_NOTIFY_WEBHOOK_SECRET": secret,
		"FLAGSYNC_PLAN_URL": "https://ci.example.com/plans/{revision}", "FLAGSYNC_NOTIFY_WEBHOOK_EVENTS": "sync_failed,recovered"})
	d.waitSync("startup", 1)
	push := func(files map[string]string, id string) string {
		before := d.repo.Head(t)
		after := d.repo.Commit(t, files, id)
		body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, before, after))
		mac := hmac.New(sha256.New, []byte(runWebhookSecret))
		mac.Write(body)
		hd := http.Header{"Content-Type": {"application/json"}, "X-Flagsync-Signature": {"sha256=" + hex.EncodeToString(mac.Sum(nil))}}
		if code, resp := d.request(http.MethodPost, "/webhook/generic", hd, body); code != http.StatusAccepted {
			t.Fatalf("push %s: %d %s", id, code, resp)
		}
		return after
	}
	messages := func(n int) []map[string]any {
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			out := slices.Clone(got)
			mu.Unlock()
			if len(out) >= n || time.Now().After(deadline) {
				return out
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	bad := push(map[string]string{"flags/alpha.yaml": "featureKey: alpha\nname: [unclosed\n"}, "broken")
	m := messages(1)
	if len(m) != 1 || m[0]["type"] != "sync_failed" {
		t.Fatalf("messages %v, want one sync_failed", m)
	}
	data, _ := m[0]["data"].(map[string]any)
	if data["revision"] != bad || data["plan_url"] != "https://ci.example.com/plans/"+bad || data["scope"] != "kameleoon/flags" {
		t.Errorf("sync_failed data %v", data)
	}
	push(map[string]string{"flags/alpha.yaml": runFlagYAML("alpha", true)}, "fixed")
	if m := messages(2); len(m) != 2 || m[1]["type"] != "recovered" {
		t.Fatalf("messages %v, want sync_failed then recovered", m)
	}
	_, metricsText := d.request(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{`flagsync_notifications_total{kind="sync_failed",outcome="sent",sink="webhook"} 1`, `flagsync_notifications_total{kind="recovered",outcome="sent",sink="webhook"} 1`} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(d.logs.String(), secret) || strings.Contains(d.logs.String(), urlToken) {
		t.Error("the logs show the notification secret or URL")
	}
}
