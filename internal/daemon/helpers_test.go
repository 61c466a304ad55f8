package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/gittest"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/reconcile"
)

const (
	testSite          = "sitea00001"
	testWebhookSecret = "canary-webhook-secret-7f3a"
	testAdminToken    = "canary-admin-token-91c2"
	gitUser, gitPass  = "flagsync", "canary-git-password-5d1e"
	waitLimit         = 20 * time.Second
)

// hookedAPI serves the sandbox behind a hook that sees every request first, so a test
// can hold a call in flight or time the writes.
type hookedAPI struct {
	h    http.Handler
	hook atomic.Pointer[func(*http.Request)]
}

func (a *hookedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f := a.hook.Load(); f != nil {
		(*f)(r)
	}
	a.h.ServeHTTP(w, r)
}

func (a *hookedAPI) setHook(f func(*http.Request)) {
	if f == nil {
		a.hook.Store(nil)
		return
	}
	a.hook.Store(&f)
}

func isWrite(r *http.Request) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodPatch) && strings.HasPrefix(r.URL.Path, "/feature-flags") && r.URL.Path != "/feature-flags/search"
}

// harness is a daemon on a real Git smart-HTTP server and a sandbox API, all on
// 127.0.0.1, with its HTTP endpoints on a loopback port.
type harness struct {
	t      testing.TB
	repo   *gittest.Repo
	sb     *ksandbox.Server
	api    *hookedAPI
	d      *Daemon
	m      *metrics.Metrics
	calls  atomic.Int64
	base   string // the daemon's URL
	logs   *logtest.Buffer
	cancel context.CancelFunc
	done   chan error
	http   *http.Client
	limit  time.Duration // bound of every wait
}

type harnessOptions struct {
	files  map[string]string // the first commit; default: testRepo()
	local  bool              // sync the work clone in place (no ref), not the remote
	config func(*Config)
	quiet  bool          // log at info instead of debug (benchmarks)
	limit  time.Duration // bound of every wait; default waitLimit
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	files := o.files
	if files == nil {
		files = testRepo()
	}
	h := &harness{t: t, logs: &logtest.Buffer{}, m: metrics.New(), http: &http.Client{Timeout: 10 * time.Second}, limit: o.limit}
	if h.limit == 0 {
		h.limit = waitLimit
	}
	level := slog.LevelDebug
	if o.quiet {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: level}))

	h.repo = gittest.NewRepo(t)
	h.repo.Commit(t, files, "initial flags")
	gitURL := gittest.StartHTTP(t, h.repo, gitUser, gitPass)
	srcOpts := gitsource.Options{
		Repo: gitURL, Ref: "main", Path: "flags", CacheDir: t.TempDir(), Depth: 1,
		Auth: gitsource.Auth{Username: gitUser, Password: gitPass}, Logger: logger,
	}
	if o.local {
		srcOpts = gitsource.Options{Repo: h.repo.Work, Path: "flags", Logger: logger}
	}
	src, err := gitsource.New(srcOpts)
	if err != nil {
		t.Fatal(err)
	}

	h.sb, err = ksandbox.New(ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Environments: []string{"development", "production"}})
	if err != nil {
		t.Fatal(err)
	}
	h.api = &hookedAPI{h: h.sb}
	ts := httptest.NewServer(h.api)
	t.Cleanup(ts.Close)
	budget := kclient.NewBudget(1_000_000, 10_000_000)
	tag := &RevisionTag{}
	client, err := kclient.New(kclient.Config{
		BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Budget: budget, BackoffBase: 2 * time.Millisecond, Logger: tag.Wrap(logger),
		Observer: APIObserver(h.m, &h.calls),
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := Config{
		Source: src, Dir: "flags", Vendors: []reconcile.Vendor{kameleoon.Vendor(client)}, Calls: h.calls.Load, Budget: budget, Metrics: h.m,
		DriftInterval: time.Hour, WebhookSecret: []byte(testWebhookSecret), WebhookBranch: "main",
		AdminToken: testAdminToken, Logger: logger, RevisionTag: tag,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	h.d, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.base = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx, ln, nil) }()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("daemon logs (last 60 lines):\n%s", lastLines(h.logs.String(), 60))
		}
	})
	return h
}

// stop cancels the daemon's context, as SIGTERM does, and waits for Run to return.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(h.limit):
		h.t.Fatalf("daemon did not stop within %s", h.limit)
		return nil
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(h.limit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s; status:\n%s", h.limit, what, h.statusJSON())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cycles returns how many times the loop has woken so far.
func (h *harness) cycles() int64 {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return h.d.seq
}

// idle reports whether no sync runs and none is asked for.
func (h *harness) idle() bool {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return h.d.running == nil && h.d.pending.n == 0 && len(h.d.wake) == 0
}

// waitCycle waits until the loop has finished wake-up number n and is idle, and returns
// the newest sync record.
func (h *harness) waitCycle(n int64) Record {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("wake-up %d to finish", n), func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return h.d.seq >= n && h.d.running == nil && h.d.pub.lastCheck != nil
	})
	s := h.d.Status()
	if len(s.Syncs) == 0 {
		return Record{}
	}
	return s.Syncs[0]
}

// waitStartup waits for the startup sync and fails unless it succeeded.
func (h *harness) waitStartup() Record {
	h.t.Helper()
	rec := h.waitCycle(1)
	if rec.Result != ResultSuccess {
		h.t.Fatalf("startup sync: %+v", rec)
	}
	return rec
}

func (h *harness) statusJSON() string {
	b, _ := json.MarshalIndent(h.d.Status(), "", "  ")
	return string(b)
}

// get fetches a daemon endpoint.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := h.http.Get(h.base + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a request to a daemon endpoint and returns its status and body.
func (h *harness) post(path string, hd http.Header, body []byte) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hd {
		req.Header[k] = v
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// status fetches /status over HTTP.
func (h *harness) status() Status {
	h.t.Helper()
	code, body := h.get("/status")
	if code != http.StatusOK {
		h.t.Fatalf("GET /status: %d %s", code, body)
	}
	var s Status
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		h.t.Fatalf("decode /status: %v\n%s", err, body)
	}
	return s
}

// live returns a flag's environment setting as the sandbox holds it.
func (h *harness) prodEnabled(key string) (enabled, exists bool) {
	raw, ok := h.sb.FlagJSON(testSite, key)
	if !ok {
		return false, false
	}
	var f struct {
		EnvironmentConfigurations []struct {
			EnvironmentKey string `json:"environmentKey"`
			FeatureEnabled bool   `json:"featureEnabled"`
		} `json:"environmentConfigurations"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		h.t.Fatalf("decode sandbox flag %s: %v", key, err)
	}
	for _, e := range f.EnvironmentConfigurations {
		if e.EnvironmentKey == "production" {
			return e.FeatureEnabled, true
		}
	}
	return false, true
}

func (h *harness) writes() int { return h.sb.Writes() }

// --- flag repository ----------------------------------------------------------------

const settingsYAML = "siteCode: " + testSite + "\nenvironments: [development, production]\n"

func testRepo() map[string]string {
	return map[string]string{
		"README.md":           "flags of the test\n",
		"flags/flagsync.yaml": settingsYAML,
		"flags/alpha.yaml":    flagYAML("alpha", "Alpha", false),
		"flags/beta.yaml":     flagYAML("beta", "Beta", false),
	}
}

func flagYAML(key, name string, prodOn bool) string {
	return fmt.Sprintf(`featureKey: %s
name: %s
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
`, key, name, prodOn)
}

// --- webhook deliveries -------------------------------------------------------------

func hexMAC(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// delivery is one webhook request as a Git host sends it.
type delivery struct {
	path   string
	header http.Header
	body   []byte
}

// providers are the hosts a push can come from, each with its documented payload.
var providers = []string{"github", "gitlab", "gitlab-signed", "gitea", "forgejo", "gogs", "bitbucket-cloud", "bitbucket-server", "generic"}

// pushDelivery builds provider's documented push payload (internal/webhook/testdata),
// rewritten to name the real branch, commits and files, signed with secret.
func pushDelivery(t testing.TB, provider, secret, before, after string, files []string, id string) delivery {
	t.Helper()
	file := map[string]string{
		"github": "github-push.json", "gitlab": "gitlab-push.json", "gitlab-signed": "gitlab-push.json",
		"gitea": "gitea-push.json", "forgejo": "gitea-push.json", "gogs": "gitea-push.json",
		"bitbucket-cloud": "bitbucket-cloud-push.json", "bitbucket-server": "bitbucket-server-refs-changed.json",
		"generic": "generic-push.json",
	}[provider]
	raw, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	switch provider {
	case "bitbucket-cloud":
		ch := m["push"].(map[string]any)["changes"].([]any)[0].(map[string]any)
		nw, old := ch["new"].(map[string]any), ch["old"].(map[string]any)
		nw["name"], old["name"] = "main", "main"
		nw["target"].(map[string]any)["hash"] = after
		old["target"].(map[string]any)["hash"] = before
	case "bitbucket-server":
		ch := m["changes"].([]any)[0].(map[string]any)
		ch["refId"], ch["fromHash"], ch["toHash"], ch["type"] = "refs/heads/main", before, after, "UPDATE"
		ch["ref"].(map[string]any)["id"] = "refs/heads/main"
	case "generic":
		m["ref"], m["before"], m["after"] = "refs/heads/main", before, after
	default: // GitHub, GitLab, Gitea, Forgejo, Gogs share the push shape
		m["ref"], m["before"], m["after"] = "refs/heads/main", before, after
		commit := m["commits"].([]any)[0].(map[string]any)
		commit["id"] = after
		commit["added"], commit["removed"] = []any{}, []any{}
		mod := []any{}
		for _, f := range files {
			mod = append(mod, f)
		}
		commit["modified"] = mod
		m["commits"] = []any{commit}
		if _, ok := m["head_commit"]; ok {
			m["head_commit"] = commit
		}
		for _, k := range []string{"total_commits", "total_commits_count"} {
			if _, ok := m[k]; ok {
				m[k] = 1
			}
		}
		if _, ok := m["checkout_sha"]; ok {
			m["checkout_sha"] = after
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig := hexMAC(secret, body)
	hd := http.Header{"Content-Type": {"application/json"}}
	path := "/webhook"
	switch provider {
	case "github":
		hd.Set("X-GitHub-Event", "push")
		hd.Set("X-GitHub-Delivery", id)
		hd.Set("X-Hub-Signature-256", "sha256="+sig)
	case "gitlab":
		hd.Set("X-Gitlab-Event", "Push Hook")
		hd.Set("X-Gitlab-Token", secret)
		hd.Set("X-Gitlab-Event-UUID", id)
	case "gitlab-signed":
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "%s.%s.", id, ts)
		mac.Write(body)
		hd.Set("X-Gitlab-Event", "Push Hook")
		hd.Set("Webhook-Id", id)
		hd.Set("Webhook-Timestamp", ts)
		hd.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	case "gitea":
		hd.Set("X-Gitea-Event", "push")
		hd.Set("X-Gitea-Delivery", id)
		hd.Set("X-Gitea-Signature", sig)
		hd.Set("X-GitHub-Event", "push") // Gitea sends GitHub's headers too
		hd.Set("X-Hub-Signature-256", "sha256="+sig)
	case "forgejo":
		hd.Set("X-Forgejo-Event", "push")
		hd.Set("X-Forgejo-Delivery", id)
		hd.Set("X-Forgejo-Signature", sig)
		hd.Set("X-Gitea-Event", "push")
		hd.Set("X-Gitea-Signature", sig)
	case "gogs":
		hd.Set("X-Gogs-Event", "push")
		hd.Set("X-Gogs-Delivery", id)
		hd.Set("X-Gogs-Signature", sig)
		path = "/webhook/gogs"
	case "bitbucket-cloud":
		hd.Set("X-Event-Key", "repo:push")
		hd.Set("X-Request-UUID", id)
		hd.Set("X-Hook-UUID", "a9f1a1d0-3c43-4a1e-8a49-5a8e3f0e5b11")
		hd.Set("X-Hub-Signature", "sha256="+sig)
	case "bitbucket-server":
		hd.Set("X-Event-Key", "repo:refs_changed")
		hd.Set("X-Request-Id", id)
		hd.Set("X-Hub-Signature", "sha256="+sig)
		path = "/webhook/bitbucket-server"
	case "generic":
		hd.Set("X-Flagsync-Delivery", id)
		hd.Set("X-Flagsync-Signature", "sha256="+sig)
		path = "/webhook/generic"
	default:
		t.Fatalf("unknown provider %q", provider)
	}
	return delivery{path: path, header: hd, body: body}
}

// push commits files and delivers a signed GitHub webhook for the commit; it returns
// the commit and the number of the wake-up the webhook will cause.
func (h *harness) push(files map[string]string, msg string) (string, int64) {
	h.t.Helper()
	before := h.repo.Head(h.t)
	after := h.repo.Commit(h.t, files, msg)
	var changed []string
	for f := range files {
		changed = append(changed, f)
	}
	dl := pushDelivery(h.t, "github", testWebhookSecret, before, after, changed, "d-"+after[:12])
	next := h.cycles() + 1
	if code, body := h.post(dl.path, dl.header, dl.body); code != http.StatusAccepted {
		h.t.Fatalf("webhook: %d %s", code, body)
	}
	return after, next
}
