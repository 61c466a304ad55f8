package faults

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/gittest"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/webhook"
)

// TestSecretsNeverShowInProcess puts a canary in every secret's place — the client
// secret, the access tokens the API issues, the Git password (right and wrong), the
// webhook secret — makes every part of the pipeline log at debug level, fail, and quote
// the secrets back in error bodies, and checks that no canary reaches a log line (JSON
// and text), an error, a rendered plan, a report or a webhook answer.
func TestSecretsNeverShowInProcess(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ksandbox.Options{})
	wrongPassword := canaryGitPassword + "-wrong"
	secrets := func() []string { return append(w.secrets(), wrongPassword) }
	var texts []string // everything flagsync produced, checked at the end
	see := func(what string, s string) { texts = append(texts, what+":\n"+s) }

	repo := gittest.NewRepo(t)
	flags := genFlags(5)
	repo.Commit(t, repoFiles(flags), "v1")
	srv := gittest.StartHTTPServer(t, repo, gitUser, canaryGitPassword)
	snap, err := newGitSource(t, w, srv.URL, t.TempDir(), 20*time.Second).Fetch(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proc(procOptions{})
	rep := w.mustApplyFS(p, snap.FS, snap.Revision)

	// The plan in every rendering, and the report as the CLI writes it.
	var text, md, js bytes.Buffer
	if err := plan.RenderText(&text, rep.Plan, plan.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := plan.RenderMarkdown(&md, rep.Plan, plan.MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := plan.RenderJSON(&js, rep.Plan); err != nil {
		t.Fatal(err)
	}
	report, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	see("the text plan", text.String())
	see("the Markdown plan", md.String())
	see("the JSON plan", js.String())
	see("the JSON report", string(report))
	if !strings.Contains(text.String(), flags[0].key) {
		t.Fatalf("the text plan does not show the flags:\n%s", text.String())
	}

	// The API quotes the token and the client secret back in an error body.
	tokens := w.front.issued()
	if len(tokens) == 0 {
		t.Fatal("no access token was captured")
	}
	tok := tokens[len(tokens)-1]
	flags[0].exposition = 70
	target := kclient.EnvironmentPath(siteA, flags[0].key, "production")
	w.sb.InjectFault(ksandbox.Fault{Method: "PATCH", PathPrefix: target, Status: 400,
		Body: fmt.Sprintf(`{"message":"token %s (Authorization: Bearer %s) of client secret %s refused"}`, tok, tok, canaryClientSecret)})
	rep2, err := w.run(testContext(t), p, repoFiles(flags), "v2")
	if err != nil {
		t.Fatal(err)
	}
	errs := failedErrors(rep2)
	if len(errs) != 1 || !strings.Contains(errs[0], "400 Bad Request") || !strings.Contains(errs[0], "[REDACTED]") {
		t.Fatalf("failed changes %q: want the 400 with the secrets redacted", errs)
	}
	see("a change's error", errs[0])
	report2, _ := json.Marshal(rep2)
	see("the JSON report of a failed change", string(report2))

	// The token endpoint refuses the client and quotes the secret back.
	w.sb.InjectFault(ksandbox.Fault{Method: "POST", PathPrefix: "/oauth/token", Status: 400,
		Body: fmt.Sprintf(`{"error":"invalid_request","error_description":"client_secret=%s is malformed"}`, canaryClientSecret)})
	_, err = w.run(testContext(t), w.proc(procOptions{}), repoFiles(flags), "v2")
	if err == nil || !strings.Contains(err.Error(), "POST /oauth/token: 400 Bad Request") {
		t.Fatalf("sync with a refused client: err = %v", err)
	}
	see("a token error", err.Error())

	// Wrong Git credentials, and credentials written into the URL.
	bad, err := gitsource.New(gitsource.Options{Repo: srv.URL, Path: "flags", CacheDir: t.TempDir(), Timeout: 20 * time.Second,
		Auth: gitsource.Auth{Username: gitUser, Password: wrongPassword}, Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Fetch(testContext(t)); err == nil {
		t.Fatal("a fetch with a wrong password succeeded")
	} else {
		see("a refused git fetch", err.Error())
	}
	inURL := strings.Replace(srv.URL, "http://", "http://"+gitUser+":"+canaryGitPassword+"@", 1)
	viaURL, err := gitsource.New(gitsource.Options{Repo: inURL, Path: "flags", CacheDir: t.TempDir(), Timeout: 20 * time.Second, Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viaURL.Fetch(testContext(t)); err != nil {
		t.Fatalf("fetch with the credentials in the URL: %v", err)
	}
	see("the remote's name", viaURL.Remote())
	auth := gitsource.Auth{Username: gitUser, Password: canaryGitPassword, Token: canaryGitPassword, SSHKeyPassphrase: canaryGitPassword}
	see("a printed gitsource.Auth", fmt.Sprintf("%v %+v %#v %s", auth, auth, auth, auth))
	w.log.Info("printing credentials", "auth", auth)

	// A webhook endpoint logging at debug level: a GitLab delivery carries the secret
	// itself as its token, and a malformed body makes the handler log an error.
	hook, err := webhook.New(webhook.Options{Secret: []byte(canaryWebhookSecret), Branch: "main", Logger: w.log, OnPush: func(webhook.Push) {}})
	if err != nil {
		t.Fatal(err)
	}
	w.log.Info("webhook options", "options", webhook.Options{Secret: []byte(canaryWebhookSecret), Branch: "main"})
	see("printed webhook options", fmt.Sprintf("%v %+v %s", webhook.Options{Secret: []byte(canaryWebhookSecret)}, hook, hook))
	for _, req := range []*http.Request{
		gitlabRequest(canaryWebhookSecret, `{"ref": "refs/heads/main", "after": `),
		gitlabRequest(canaryWebhookSecret+"x", `{}`),
		githubRequest([]byte("wrong key"), []byte(`{"ref":"refs/heads/main"}`)),
	} {
		rec := httptest.NewRecorder()
		hook.ServeHTTP(rec, req)
		if rec.Code < 400 {
			t.Errorf("webhook delivery answered %d, want a refusal", rec.Code)
		}
		see("a webhook answer", rec.Body.String())
	}

	// The sandbox's call log keeps request bodies: the token request's secret is redacted.
	see("the sandbox call log", fmt.Sprintf("%+v", w.sb.Calls()))

	for _, s := range texts {
		what, body, _ := strings.Cut(s, ":\n")
		assertNoSecrets(t, what, body, secrets())
	}
	assertNoSecrets(t, "the debug logs", w.logs.String(), secrets())
	summary(t, "security canaries-in-process: client secret, %d access tokens, git password (right, wrong, in the URL), webhook secret: absent from %d KiB of debug logs (JSON and text), %d errors and renderings (plans in text/Markdown/JSON, reports, webhook answers, call log); redacted error %q",
		len(w.front.issued()), len(w.logs.String())>>10, len(texts), errs[0])
}

func gitlabRequest(token, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhook/gitlab", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Gitlab-Event", "Push Hook")
	r.Header.Set("X-Gitlab-Token", token)
	return r
}

// githubRequest is a GitHub push delivery of body signed with key (unsigned when key
// is nil).
func githubRequest(key, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhook/github", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", time.Now().UnixNano()))
	if key != nil {
		r.Header.Set("X-Hub-Signature-256", "sha256="+sign(key, body))
	}
	return r
}

func sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

const githubPush = `{"ref":"refs/heads/main","before":"f75de4b5a49857af12f2611bc7e5e873aa571caa","after":"2c4c6cb67abab6e6cb46d0e94b6b646c8523ebf6","repository":{"full_name":"acme/flags"},"commits":[{"id":"2c4c6cb67abab6e6cb46d0e94b6b646c8523ebf6","added":[],"removed":[],"modified":["flags/a.yaml"]}],"head_commit":{"id":"2c4c6cb67abab6e6cb46d0e94b6b646c8523ebf6"}}`

func TestWebhookRejectsBadDeliveries(t *testing.T) {
	t.Parallel()
	secret := []byte(canaryWebhookSecret)
	logs := &logtest.Buffer{}
	var pushes atomic.Int64
	h, err := webhook.New(webhook.Options{Secret: secret, Branch: "main", MaxBody: 4 << 10, Logger: debugLogger(logs),
		OnPush: func(webhook.Push) { pushes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	push := []byte(githubPush)
	large := []byte(strings.Replace(githubPush, `"full_name":"acme/flags"`, `"full_name":"acme/flags","pad":"`+strings.Repeat("x", 5<<10)+`"`, 1))
	cases := []struct {
		name    string
		req     func() *http.Request
		status  int
		outcome string
	}{
		{"signed push", func() *http.Request { return githubRequest(secret, push) }, 202, webhook.OutcomeAccepted},
		{"unsigned", func() *http.Request { return githubRequest(nil, push) }, 401, webhook.OutcomeUnauthorized},
		{"signed with another key", func() *http.Request { return githubRequest([]byte("not the secret"), push) }, 401, webhook.OutcomeUnauthorized},
		{"signature of another body", func() *http.Request {
			r := githubRequest(secret, push)
			r.Header.Set("X-Hub-Signature-256", "sha256="+sign(secret, []byte(`{"ref":"refs/heads/other"}`)))
			return r
		}, 401, webhook.OutcomeUnauthorized},
		{"legacy SHA-1 signature only", func() *http.Request {
			r := githubRequest(nil, push)
			m := hmac.New(sha1.New, secret)
			m.Write(push)
			r.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
			return r
		}, 401, webhook.OutcomeUnauthorized},
		{"oversized, signed", func() *http.Request { return githubRequest(secret, large) }, 413, webhook.OutcomeTooLarge},
		{"oversized, no length given", func() *http.Request {
			r := githubRequest(secret, large)
			r.ContentLength = -1
			return r
		}, 413, webhook.OutcomeTooLarge},
		{"malformed JSON, signed", func() *http.Request { return githubRequest(secret, []byte(`{"ref": "refs/heads/main", `)) }, 400, webhook.OutcomeMalformed},
		{"form-encoded, signed", func() *http.Request {
			body := []byte("payload=" + githubPush)
			r := githubRequest(secret, body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400, webhook.OutcomeMalformed},
		{"GitLab, wrong token", func() *http.Request { return gitlabRequest("not-the-secret", githubPush) }, 401, webhook.OutcomeUnauthorized},
		{"generic, wrongly signed", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/webhook/generic", bytes.NewReader(push))
			r.Header.Set("X-Flagsync-Signature", "sha256="+sign([]byte("nope"), push))
			return r
		}, 401, webhook.OutcomeUnauthorized},
		{"no provider", func() *http.Request { return httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(push)) }, 400, webhook.OutcomeUnknownProvider},
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/webhook/github", nil) }, 405, webhook.OutcomeMethodNotAllowed},
	}
	var got []string
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req())
		var body struct{ Outcome, Reason string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.Outcome != tc.outcome {
			t.Errorf("%s: %d %s, want %d %s", tc.name, rec.Code, rec.Body.String(), tc.status, tc.outcome)
		}
		assertNoSecrets(t, tc.name+": the answer", rec.Body.String(), []string{canaryWebhookSecret})
		got = append(got, fmt.Sprintf("%s %d", tc.name, rec.Code))
	}
	if n := pushes.Load(); n != 1 {
		t.Errorf("%d pushes accepted, want 1 (the signed one)", n)
	}
	assertNoSecrets(t, "the webhook's debug logs", logs.String(), []string{canaryWebhookSecret})
	summary(t, "security webhook-rejects: %s; only the signed push triggered a sync; the secret is in no answer or log line", strings.Join(got, ", "))
}

func TestSSHRefusesUnknownHostKey(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(genFlags(2)), "v1")
	keyFile, pub := gittest.NewKey(t, "")
	url, hostKey := gittest.StartSSH(t, repo, pub)
	_, otherKey := gittest.NewKey(t, "")
	logs := &logtest.Buffer{}
	fetch := func(knownHosts string) error {
		src, err := gitsource.New(gitsource.Options{Repo: url, Path: "flags", CacheDir: t.TempDir(), Timeout: 20 * time.Second,
			Auth: gitsource.Auth{SSHKeyFile: keyFile}, KnownHostsFile: knownHosts, Logger: debugLogger(logs)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Fetch(testContext(t))
		return err
	}
	elsewhere := gittest.WriteKnownHosts(t, "127.0.0.1:1", hostKey) // the right key, for another host
	var got []string
	for _, tc := range []struct {
		name       string
		knownHosts string
		mismatch   bool
	}{
		{"a different key for the host", gittest.WriteKnownHosts(t, url, otherKey), true},
		{"the host not listed", elsewhere, false},
	} {
		err := fetch(tc.knownHosts)
		var hk *gitsource.HostKeyError
		if !errors.As(err, &hk) || hk.Mismatch != tc.mismatch {
			t.Errorf("%s: err = %v, want a host key error (mismatch %t)", tc.name, err, tc.mismatch)
			continue
		}
		got = append(got, tc.name+": "+err.Error())
	}
	if err := fetch(filepath.Join(t.TempDir(), "missing_known_hosts")); err == nil {
		t.Error("a fetch without any known_hosts file succeeded")
	} else {
		got = append(got, "no known_hosts: "+err.Error())
	}
	if err := fetch(gittest.WriteKnownHosts(t, url, hostKey)); err != nil {
		t.Errorf("the right host key was refused: %v", err)
	}
	summary(t, "security ssh-host-key: refused %q; the right key fetched", got)
}

func TestTLSVerifiedByDefault(t *testing.T) {
	t.Parallel()
	// The API over HTTPS with a certificate no system authority signed.
	sb, err := ksandbox.New(ksandbox.Options{ClientID: clientID, ClientSecret: canaryClientSecret, RatePer10s: -1, RatePerHour: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(sb)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	ts.StartTLS()
	t.Cleanup(ts.Close)
	client := func(hc *http.Client) error {
		c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: clientID, ClientSecret: canaryClientSecret, HTTPClient: hc,
			MaxAttempts: 2, BackoffBase: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListFlags(testContext(t), siteA)
		return err
	}
	apiErr := client(nil)
	if apiErr == nil || !strings.Contains(apiErr.Error(), "x509") {
		t.Errorf("the API client accepted an unknown certificate: err = %v", apiErr)
	}
	if calls := sb.Calls(); len(calls) != 0 {
		t.Errorf("the untrusted server received %d calls (the client secret was sent)", len(calls))
	}
	if err := client(ts.Client()); err != nil {
		t.Errorf("with the server's certificate trusted: %v", err)
	}

	// Git over HTTPS, certificate from a private authority.
	repo := gittest.NewRepo(t)
	repo.Commit(t, repoFiles(genFlags(2)), "v1")
	srv, caPEM := gittest.StartHTTPS(t, repo, gitUser, canaryGitPassword)
	fetch := func(caFile string) error {
		src, err := gitsource.New(gitsource.Options{Repo: srv.URL, Path: "flags", CacheDir: t.TempDir(), Timeout: 20 * time.Second,
			Auth: gitsource.Auth{Username: gitUser, Password: canaryGitPassword}, CAFile: caFile})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Fetch(testContext(t))
		return err
	}
	gitErr := fetch("")
	if gitErr == nil || !strings.Contains(gitErr.Error(), "certificate") {
		t.Errorf("git accepted an unknown certificate: err = %v", gitErr)
	}
	if srv.Requests() != 0 {
		t.Errorf("the untrusted git server received %d requests", srv.Requests())
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fetch(ca); err != nil {
		t.Errorf("git with --git-ca-file: %v", err)
	}
	summary(t, "security tls-verify: API %q; git %q; both work once the authority is trusted (HTTPClient, CAFile)", apiErr, gitErr)
}

// certPEM is the PEM of a test server's certificate.
func certPEM(ts *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
}
