package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/logtest"
)

// canary is the webhook secret of every test server: it must never show up in a log
// line or a response body.
const canary = "canary-secret-7Hq2vX9pL4"

// standardCanary is a GitLab signing token ("whsec_" + base64 of a 32-byte key).
var standardCanary = "whsec_" + base64.StdEncoding.EncodeToString([]byte("canary-signing-key-32-bytes-long"))

var testNow = time.Date(2026, 3, 2, 9, 15, 30, 0, time.UTC)

const (
	shaBefore = "f75de4b5a49857af12f2611bc7e5e873aa571caa"
	shaAfter  = "2c4c6cb67abab6e6cb46d0e94b6b646c8523ebf6"
	shaZero   = "0000000000000000000000000000000000000000"
)

// documentedFiles are the changed files of the testdata payloads that list them.
var documentedFiles = []string{
	"flags/checkout/express_pay.yaml",
	"flags/checkout/new_checkout.yaml",
	"flagsync.yaml",
	"flags/legacy/old_banner.yaml",
}

// env is a webhook handler behind a real HTTP server, with everything it reported.
type env struct {
	t        *testing.T
	srv      *httptest.Server
	logs     *logtest.Buffer
	mu       sync.Mutex
	pushes   []Push
	observed []string
	bodies   []string // every response body
}

func newEnv(t *testing.T, mutate func(*Options)) *env {
	t.Helper()
	e := &env{t: t, logs: &logtest.Buffer{}}
	opts := Options{
		Secret: []byte(canary),
		Branch: "main",
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnPush: func(p Push) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.pushes = append(e.pushes, p)
		},
		Observe: func(provider, outcome string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.observed = append(e.observed, provider+"/"+outcome)
		},
		Now: func() time.Time { return testNow },
	}
	if mutate != nil {
		mutate(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

type response struct {
	status  int
	outcome string
	reason  string
	header  http.Header
}

func (e *env) do(method, path string, hd http.Header, body io.Reader) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hd {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.bodies = append(e.bodies, string(raw))
	e.mu.Unlock()
	var out struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s %s: response %q is not JSON: %v", method, path, raw, err)
	}
	return response{status: resp.StatusCode, outcome: out.Outcome, reason: out.Reason, header: resp.Header}
}

func (e *env) post(path string, hd http.Header, body []byte) response {
	e.t.Helper()
	return e.do(http.MethodPost, path, hd, bytes.NewReader(body))
}

func (e *env) observations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.observed...)
}

func (e *env) got() []Push {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Push(nil), e.pushes...)
}

// assertClean checks that no log line and no response carries a secret.
func (e *env) assertClean(secrets ...string) {
	e.t.Helper()
	logs := e.logs.String()
	e.mu.Lock()
	bodies := strings.Join(e.bodies, "\n")
	e.mu.Unlock()
	for _, s := range append(secrets, canary, standardCanary) {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			e.t.Errorf("a log line contains the secret %q:\n%s", s, logs)
		}
		if strings.Contains(bodies, s) {
			e.t.Errorf("a response contains the secret %q:\n%s", s, bodies)
		}
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexMAC(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// standardSig is a Standard Webhooks "v1,<base64>" signature with the given token.
func standardSig(token, id, ts string, body []byte) string {
	key := []byte(token)
	if rest, ok := strings.CutPrefix(token, "whsec_"); ok {
		key, _ = base64.StdEncoding.DecodeString(rest)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Header sets as each host sends them, signed with secret.

func githubHeaders(secret string, event, delivery string, body []byte) http.Header {
	return http.Header{
		"Content-Type":        {"application/json"},
		"User-Agent":          {"GitHub-Hookshot/7a6b2c1"},
		"X-Github-Event":      {event},
		"X-Github-Delivery":   {delivery},
		"X-Github-Hook-Id":    {"471928301"},
		"X-Hub-Signature-256": {"sha256=" + hexMAC(secret, body)},
	}
}

func gitlabTokenHeaders(token, delivery string) http.Header {
	return http.Header{
		"Content-Type":        {"application/json"},
		"User-Agent":          {"GitLab/18.9.0"},
		"X-Gitlab-Event":      {"Push Hook"},
		"X-Gitlab-Token":      {token},
		"X-Gitlab-Event-Uuid": {delivery},
		"X-Gitlab-Instance":   {"https://gitlab.example.com"},
		"Idempotency-Key":     {delivery + "-idem"},
	}
}

func gitlabSignedHeaders(token, id string, sent time.Time, body []byte) http.Header {
	ts := strconv.FormatInt(sent.Unix(), 10)
	return http.Header{
		"Content-Type":        {"application/json"},
		"User-Agent":          {"GitLab/19.0.0"},
		"X-Gitlab-Event":      {"Push Hook"},
		"X-Gitlab-Event-Uuid": {"b3f5e3d0-8a4f-4c1e-9d67-0c5d2b1e7a90"},
		"Idempotency-Key":     {id},
		"Webhook-Id":          {id},
		"Webhook-Timestamp":   {ts},
		"Webhook-Signature":   {standardSig(token, id, ts, body)},
	}
}

// giteaHeaders is the full set Gitea sends, GitHub and Gogs look-alikes included.
func giteaHeaders(secret, event, delivery string, body []byte) http.Header {
	sig := hexMAC(secret, body)
	sha1ish := strings.Repeat("ab", 20)
	return http.Header{
		"Content-Type":        {"application/json"},
		"X-Gitea-Delivery":    {delivery},
		"X-Gitea-Event":       {event},
		"X-Gitea-Event-Type":  {event},
		"X-Gitea-Signature":   {sig},
		"X-Gogs-Delivery":     {delivery},
		"X-Gogs-Event":        {event},
		"X-Gogs-Event-Type":   {event},
		"X-Gogs-Signature":    {sig},
		"X-Hub-Signature":     {"sha1=" + sha1ish},
		"X-Hub-Signature-256": {"sha256=" + sig},
		"X-Github-Delivery":   {delivery},
		"X-Github-Event":      {event},
		"X-Github-Event-Type": {event},
	}
}

func forgejoHeaders(secret, delivery string, body []byte) http.Header {
	hd := giteaHeaders(secret, "push", delivery, body)
	hd.Set("X-Forgejo-Delivery", delivery)
	hd.Set("X-Forgejo-Event", "push")
	hd.Set("X-Forgejo-Event-Type", "push")
	hd.Set("X-Forgejo-Signature", hexMAC(secret, body))
	return hd
}

func gogsHeaders(secret, delivery string, body []byte) http.Header {
	return http.Header{
		"Content-Type":     {"application/json"},
		"X-Gogs-Delivery":  {delivery},
		"X-Gogs-Event":     {"push"},
		"X-Gogs-Signature": {hexMAC(secret, body)},
	}
}

func bitbucketCloudHeaders(secret, event, delivery string, body []byte) http.Header {
	return http.Header{
		"Content-Type":     {"application/json"},
		"User-Agent":       {"Bitbucket-Webhooks/2.0"},
		"X-Event-Key":      {event},
		"X-Hook-Uuid":      {"a9f1a1d0-3c43-4a1e-8a49-5a8e3f0e5b11"},
		"X-Request-Uuid":   {delivery},
		"X-Attempt-Number": {"1"},
		"X-Hub-Signature":  {"sha256=" + hexMAC(secret, body)},
	}
}

func bitbucketServerHeaders(secret, event, delivery string, body []byte) http.Header {
	return http.Header{
		"Content-Type":    {"application/json; charset=utf-8"},
		"User-Agent":      {"Atlassian HttpClient 4.2.0 / Bitbucket-9.4.2 (9004002) / Default"},
		"X-Event-Key":     {event},
		"X-Request-Id":    {delivery},
		"X-Hub-Signature": {"sha256=" + hexMAC(secret, body)},
	}
}

func genericHeaders(secret, delivery string, body []byte) http.Header {
	hd := http.Header{
		"Content-Type":         {"application/json"},
		"X-Flagsync-Signature": {"sha256=" + hexMAC(secret, body)},
	}
	if delivery != "" {
		hd.Set("X-Flagsync-Delivery", delivery)
	}
	return hd
}

// TestDocumentedPayloads sends each host's documented push, correctly signed, and
// expects exactly one OnPush with the branch, commits and files the payload names.
func TestDocumentedPayloads(t *testing.T) {
	hub := Push{Branch: "main", Before: shaBefore, After: shaAfter, ChangedFiles: documentedFiles, Repository: "acme/feature-flags"}
	with := func(p Push, provider, delivery string, mutate func(*Push)) Push {
		p.Provider, p.DeliveryID = provider, delivery
		if mutate != nil {
			mutate(&p)
		}
		return p
	}
	noFiles := func(p *Push) { p.ChangedFiles = nil }

	tests := []struct {
		name    string
		file    string
		path    string
		secret  string // server secret; default canary
		headers func(body []byte) http.Header
		want    Push
	}{
		{
			name: "github",
			file: "github-push.json",
			headers: func(b []byte) http.Header {
				return githubHeaders(canary, "push", "8e0b4c40-17a3-11f1-8a3e-5b1a9c7d2e01", b)
			},
			want: with(hub, ProviderGitHub, "8e0b4c40-17a3-11f1-8a3e-5b1a9c7d2e01", nil),
		},
		{
			name:    "gitlab secret token",
			file:    "gitlab-push.json",
			headers: func(b []byte) http.Header { return gitlabTokenHeaders(canary, "2f9d3c1a-6b4e-4a0f-9c1d-7e8f9a0b1c2d") },
			want:    with(hub, ProviderGitLab, "2f9d3c1a-6b4e-4a0f-9c1d-7e8f9a0b1c2d-idem", nil),
		},
		{
			name:   "gitlab signing token",
			file:   "gitlab-push.json",
			secret: standardCanary,
			headers: func(b []byte) http.Header {
				return gitlabSignedHeaders(standardCanary, "msg_2f9d3c1a6b4e", testNow.Add(-40*time.Second), b)
			},
			want: with(hub, ProviderGitLab, "msg_2f9d3c1a6b4e", nil),
		},
		{
			name: "gitea",
			file: "gitea-push.json",
			headers: func(b []byte) http.Header {
				return giteaHeaders(canary, "push", "4c6f2a9e-0d1b-4f3a-8e2c-5b7d9f1a3c5e", b)
			},
			want: with(hub, ProviderGitea, "4c6f2a9e-0d1b-4f3a-8e2c-5b7d9f1a3c5e", nil),
		},
		{
			name:    "forgejo",
			file:    "gitea-push.json",
			headers: func(b []byte) http.Header { return forgejoHeaders(canary, "77b1c0de-5a4e-4b8f-9d2c-1e3f5a7b9c0d", b) },
			want:    with(hub, ProviderForgejo, "77b1c0de-5a4e-4b8f-9d2c-1e3f5a7b9c0d", nil),
		},
		{
			name:    "gogs",
			file:    "gitea-push.json",
			headers: func(b []byte) http.Header { return gogsHeaders(canary, "1b2c3d4e-5f60-4718-9a0b-c1d2e3f40516", b) },
			want:    with(hub, ProviderGogs, "1b2c3d4e-5f60-4718-9a0b-c1d2e3f40516", nil),
		},
		{
			name: "bitbucket cloud",
			file: "bitbucket-cloud-push.json",
			headers: func(b []byte) http.Header {
				return bitbucketCloudHeaders(canary, "repo:push", "0c2f4e6a-8b1d-4c3e-9f5a-7b9d1e3f5a7c", b)
			},
			want: with(hub, ProviderBitbucketCloud, "0c2f4e6a-8b1d-4c3e-9f5a-7b9d1e3f5a7c", noFiles),
		},
		{
			name: "bitbucket server",
			file: "bitbucket-server-refs-changed.json",
			headers: func(b []byte) http.Header {
				return bitbucketServerHeaders(canary, "repo:refs_changed", "e4a1c2b3-d5f6-4789-8a0b-1c2d3e4f5a6b", b)
			},
			want: with(hub, ProviderBitbucketServer, "e4a1c2b3-d5f6-4789-8a0b-1c2d3e4f5a6b", func(p *Push) {
				p.ChangedFiles, p.Repository = nil, "FLAGS/feature-flags"
			}),
		},
		{
			name:    "generic",
			file:    "generic-push.json",
			headers: func(b []byte) http.Header { return genericHeaders(canary, "ci-run-8812", b) },
			want:    with(hub, ProviderGeneric, "ci-run-8812", noFiles),
		},
		{
			name:    "github on its own path",
			file:    "github-push.json",
			path:    "/webhook/github",
			headers: func(b []byte) http.Header { return githubHeaders(canary, "push", "d1", b) },
			want:    with(hub, ProviderGitHub, "d1", nil),
		},
		{
			name: "bitbucket family path picks server from headers",
			file: "bitbucket-server-refs-changed.json",
			path: "/hooks/bitbucket",
			headers: func(b []byte) http.Header {
				return bitbucketServerHeaders(canary, "repo:refs_changed", "d2", b)
			},
			want: with(hub, ProviderBitbucketServer, "d2", func(p *Push) {
				p.ChangedFiles, p.Repository = nil, "FLAGS/feature-flags"
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := tc.secret
			if secret == "" {
				secret = canary
			}
			e := newEnv(t, func(o *Options) { o.Secret = []byte(secret) })
			body := readTestdata(t, tc.file)
			path := tc.path
			if path == "" {
				path = "/webhook"
			}
			hd := tc.headers(body)
			resp := e.post(path, hd, body)
			if resp.status != http.StatusAccepted || resp.outcome != OutcomeAccepted {
				t.Fatalf("got %d %q (%s), want 202 accepted; logs:\n%s", resp.status, resp.outcome, resp.reason, e.logs)
			}
			pushes := e.got()
			if len(pushes) != 1 {
				t.Fatalf("OnPush called %d times, want 1", len(pushes))
			}
			if !reflect.DeepEqual(pushes[0], tc.want) {
				t.Errorf("push:\n got %+v\nwant %+v", pushes[0], tc.want)
			}
			if want := []string{tc.want.Provider + "/" + OutcomeAccepted}; !reflect.DeepEqual(e.observations(), want) {
				t.Errorf("observed %v, want %v", e.observations(), want)
			}
			e.assertClean(secret, hd.Get("X-Hub-Signature-256"), hd.Get("X-Gitea-Signature"), hd.Get("X-Hub-Signature"), hd.Get("Webhook-Signature"))
		})
	}
}

// rewrite decodes a testdata payload, changes it and encodes it again.
func rewrite(t *testing.T, name string, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readTestdata(t, name), &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRejectedAndIgnored covers every way a delivery must not trigger a sync.
func TestRejectedAndIgnored(t *testing.T) {
	github := readTestdata(t, "github-push.json")
	gitlab := readTestdata(t, "gitlab-push.json")
	bbCloud := readTestdata(t, "bitbucket-cloud-push.json")

	develop := rewrite(t, "github-push.json", func(m map[string]any) { m["ref"] = "refs/heads/develop" })
	tag := rewrite(t, "github-push.json", func(m map[string]any) {
		m["ref"], m["before"], m["commits"] = "refs/tags/v1.4.0", shaZero, []any{}
	})
	deleted := rewrite(t, "github-push.json", func(m map[string]any) {
		m["after"], m["deleted"], m["commits"], m["head_commit"] = shaZero, true, []any{}, nil
	})
	pullRef := rewrite(t, "generic-push.json", func(m map[string]any) { m["ref"] = "refs/pull/42/head" })
	bbCloudOther := rewrite(t, "bitbucket-cloud-push.json", func(m map[string]any) {
		change := m["push"].(map[string]any)["changes"].([]any)[0].(map[string]any)
		change["new"].(map[string]any)["name"] = "feature/express-pay"
	})
	bbCloudDeleted := rewrite(t, "bitbucket-cloud-push.json", func(m map[string]any) {
		change := m["push"].(map[string]any)["changes"].([]any)[0].(map[string]any)
		change["new"], change["closed"] = nil, true
	})
	bbServerDeleted := rewrite(t, "bitbucket-server-refs-changed.json", func(m map[string]any) {
		change := m["changes"].([]any)[0].(map[string]any)
		change["type"], change["toHash"] = "DELETE", shaZero
	})
	bbServerTag := rewrite(t, "bitbucket-server-refs-changed.json", func(m map[string]any) {
		change := m["changes"].([]any)[0].(map[string]any)
		change["ref"] = map[string]any{"id": "refs/tags/v1.4.0", "displayId": "v1.4.0", "type": "TAG"}
		change["refId"], change["type"], change["fromHash"] = "refs/tags/v1.4.0", "ADD", shaZero
	})
	malformed := []byte(`{"ref": "refs/heads/main", "after": "` + shaAfter + `", "commits": [`)
	notAPush := []byte(`{"ref": "refs/heads/main", "after": "not-a-sha"}`)

	badSig := githubHeaders(canary, "push", "x1", github)
	badSig.Set("X-Hub-Signature-256", "sha256="+hexMAC("not-the-secret", github))
	noSig := githubHeaders(canary, "push", "x2", github)
	noSig.Del("X-Hub-Signature-256")
	sha1Only := githubHeaders(canary, "push", "x3", github)
	sha1Only.Del("X-Hub-Signature-256")
	sha1Only.Set("X-Hub-Signature", "sha1="+strings.Repeat("0", 40))
	truncatedSig := githubHeaders(canary, "push", "x4", github)
	truncatedSig.Set("X-Hub-Signature-256", truncatedSig.Get("X-Hub-Signature-256")[:40])
	tampered := append(append([]byte(nil), github...), ' ')

	wrongToken := gitlabTokenHeaders("not-the-secret", "g1")
	noToken := gitlabTokenHeaders("", "g2")
	noToken.Del("X-Gitlab-Token")
	tokenInSignedForm := gitlabSignedHeaders("not-the-secret", "msg_1", testNow, gitlab)
	tokenInSignedForm.Set("X-Gitlab-Token", canary) // a good token does not rescue a bad signature

	giteaBad := giteaHeaders(canary, "push", "t1", github)
	giteaBad.Set("X-Gitea-Signature", hexMAC("not-the-secret", github))

	tests := []struct {
		name       string
		path       string
		headers    http.Header
		body       []byte
		wantStatus int
		wantOut    string
		wantReason string
	}{
		{"wrong signature", "", badSig, github, 401, OutcomeUnauthorized, errMismatch.Error()},
		{"missing signature", "", noSig, github, 401, OutcomeUnauthorized, errMissing.Error()},
		{"SHA-1 signature only", "", sha1Only, github, 401, OutcomeUnauthorized, errMissing.Error()},
		{"truncated signature", "", truncatedSig, github, 401, OutcomeUnauthorized, errMismatch.Error()},
		{"body changed after signing", "", githubHeaders(canary, "push", "x5", github), tampered, 401, OutcomeUnauthorized, errMismatch.Error()},
		{"gitea wrong signature", "", giteaBad, github, 401, OutcomeUnauthorized, errMismatch.Error()},
		{"gitlab wrong token", "", wrongToken, gitlab, 401, OutcomeUnauthorized, errMismatch.Error()},
		{"gitlab no token", "", noToken, gitlab, 401, OutcomeUnauthorized, errMissing.Error()},
		{"gitlab bad signature with good token", "", tokenInSignedForm, gitlab, 401, OutcomeUnauthorized, errMismatch.Error()},
		{"gitlab signed but stale", "", gitlabSignedHeaders(canary, "msg_2", testNow.Add(-6*time.Minute), gitlab), gitlab, 401, OutcomeStale, errStale.Error()},
		{"gitlab signed in the future", "", gitlabSignedHeaders(canary, "msg_3", testNow.Add(6*time.Minute), gitlab), gitlab, 401, OutcomeStale, errStale.Error()},
		{"forced provider mismatch", "/webhook/gitlab", githubHeaders(canary, "push", "x6", github), github, 401, OutcomeUnauthorized, errMissing.Error()},
		{"unknown provider", "", http.Header{"Content-Type": {"application/json"}}, github, 400, OutcomeUnknownProvider, ""},
		{"other branch", "", githubHeaders(canary, "push", "i1", develop), develop, 202, OutcomeIgnored, ReasonOtherBranch},
		{"tag push", "", githubHeaders(canary, "push", "i2", tag), tag, 202, OutcomeIgnored, ReasonTag},
		{"branch deletion", "", githubHeaders(canary, "push", "i3", deleted), deleted, 202, OutcomeIgnored, ReasonDeleted},
		{"pull request ref", "", genericHeaders(canary, "", pullRef), pullRef, 202, OutcomeIgnored, ReasonOtherRef},
		{"other event", "", githubHeaders(canary, "issues", "i4", github), github, 202, OutcomeIgnored, ReasonEvent},
		{"gitlab tag push hook", "", func() http.Header {
			hd := gitlabTokenHeaders(canary, "i5")
			hd.Set("X-Gitlab-Event", "Tag Push Hook")
			return hd
		}(), gitlab, 202, OutcomeIgnored, ReasonEvent},
		{"github ping", "", githubHeaders(canary, "ping", "p1", []byte(`{"zen":"Keep it logically awesome.","hook_id":471928301}`)), []byte(`{"zen":"Keep it logically awesome.","hook_id":471928301}`), 200, OutcomePing, ""},
		{"bitbucket server ping", "", bitbucketServerHeaders(canary, "diagnostics:ping", "p2", []byte(`{"test": true}`)), []byte(`{"test": true}`), 200, OutcomePing, ""},
		{"bitbucket cloud other branch", "", bitbucketCloudHeaders(canary, "repo:push", "i6", bbCloudOther), bbCloudOther, 202, OutcomeIgnored, ReasonOtherBranch},
		{"bitbucket cloud branch deleted", "", bitbucketCloudHeaders(canary, "repo:push", "i7", bbCloudDeleted), bbCloudDeleted, 202, OutcomeIgnored, ReasonDeleted},
		{"bitbucket cloud pull request event", "", bitbucketCloudHeaders(canary, "pullrequest:created", "i8", bbCloud), bbCloud, 202, OutcomeIgnored, ReasonEvent},
		{"bitbucket server branch deleted", "", bitbucketServerHeaders(canary, "repo:refs_changed", "i9", bbServerDeleted), bbServerDeleted, 202, OutcomeIgnored, ReasonDeleted},
		{"bitbucket server tag", "", bitbucketServerHeaders(canary, "repo:refs_changed", "i10", bbServerTag), bbServerTag, 202, OutcomeIgnored, ReasonTag},
		{"malformed JSON, valid signature", "", githubHeaders(canary, "push", "m1", malformed), malformed, 400, OutcomeMalformed, ""},
		{"not a commit id, valid signature", "", genericHeaders(canary, "m2", notAPush), notAPush, 400, OutcomeMalformed, ""},
		{"bitbucket cloud without push", "", bitbucketCloudHeaders(canary, "repo:push", "m3", []byte(`{}`)), []byte(`{}`), 400, OutcomeMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			path := tc.path
			if path == "" {
				path = "/webhook"
			}
			resp := e.post(path, tc.headers, tc.body)
			if resp.status != tc.wantStatus || resp.outcome != tc.wantOut {
				t.Errorf("got %d %q (%s), want %d %q", resp.status, resp.outcome, resp.reason, tc.wantStatus, tc.wantOut)
			}
			if tc.wantReason != "" && resp.reason != tc.wantReason {
				t.Errorf("reason %q, want %q", resp.reason, tc.wantReason)
			}
			if n := len(e.got()); n != 0 {
				t.Errorf("OnPush called %d times, want 0", n)
			}
			if obs := e.observations(); len(obs) != 1 || !strings.HasSuffix(obs[0], "/"+tc.wantOut) {
				t.Errorf("observed %v, want one %q", obs, tc.wantOut)
			}
			secrets := []string{hexMAC(canary, tc.body)}
			for _, name := range []string{"X-Hub-Signature-256", "X-Hub-Signature", "X-Gitea-Signature", "X-Gitlab-Token", "Webhook-Signature"} {
				if v := tc.headers.Get(name); len(v) > 8 {
					secrets = append(secrets, v)
				}
			}
			e.assertClean(secrets...)
		})
	}
}

func TestOversizedBody(t *testing.T) {
	body := readTestdata(t, "github-push.json")
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%t", chunked), func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.MaxBody = 1024 })
			var r io.Reader = bytes.NewReader(body)
			if chunked {
				r = io.MultiReader(r) // unknown length: the server must stop reading itself
			}
			resp := e.do(http.MethodPost, "/webhook", githubHeaders(canary, "push", "big", body), r)
			if resp.status != http.StatusRequestEntityTooLarge || resp.outcome != OutcomeTooLarge {
				t.Errorf("got %d %q, want 413 too_large", resp.status, resp.outcome)
			}
			if n := len(e.got()); n != 0 {
				t.Errorf("OnPush called %d times, want 0", n)
			}
		})
	}
}

func TestOnlyPost(t *testing.T) {
	e := newEnv(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		resp := e.do(method, "/webhook", nil, nil)
		if resp.status != http.StatusMethodNotAllowed || resp.header.Get("Allow") != http.MethodPost {
			t.Errorf("%s: got %d Allow=%q, want 405 Allow=POST", method, resp.status, resp.header.Get("Allow"))
		}
	}
}

// TestRedelivery: a host's retry (same delivery id) syncs once, also when the copies
// arrive at the same time; a new delivery of the same commits syncs again.
func TestRedelivery(t *testing.T) {
	body := readTestdata(t, "github-push.json")
	e := newEnv(t, nil)
	first := e.post("/webhook", githubHeaders(canary, "push", "same-id", body), body)
	again := e.post("/webhook", githubHeaders(canary, "push", "same-id", body), body)
	if first.status != 202 || first.outcome != OutcomeAccepted {
		t.Fatalf("first delivery: %d %q", first.status, first.outcome)
	}
	if again.status != 200 || again.outcome != OutcomeDuplicate {
		t.Errorf("redelivery: got %d %q, want 200 duplicate", again.status, again.outcome)
	}
	if n := len(e.got()); n != 1 {
		t.Errorf("OnPush called %d times, want 1", n)
	}

	const copies = 8
	var wg sync.WaitGroup
	for range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.post("/webhook", githubHeaders(canary, "push", "burst-id", body), body)
		}()
	}
	wg.Wait()
	if n := len(e.got()); n != 2 {
		t.Errorf("after %d simultaneous copies of one new delivery OnPush was called %d times in all, want 2", copies, n)
	}

	// The same id from another provider is another delivery.
	gl := readTestdata(t, "gitlab-push.json")
	hd := gitlabTokenHeaders(canary, "x")
	hd.Set("Idempotency-Key", "same-id")
	if resp := e.post("/webhook", hd, gl); resp.outcome != OutcomeAccepted {
		t.Errorf("gitlab delivery with a github delivery's id: %q, want accepted", resp.outcome)
	}
	e.assertClean()
}

func TestGitLabSignatureList(t *testing.T) {
	body := readTestdata(t, "gitlab-push.json")
	e := newEnv(t, func(o *Options) { o.Secret = []byte(standardCanary) })
	hd := gitlabSignedHeaders(standardCanary, "msg_rotate", testNow, body)
	good := hd.Get("Webhook-Signature")
	old := standardSig("whsec_"+base64.StdEncoding.EncodeToString([]byte("the-previous-signing-key-32bytes")), "msg_rotate", hd.Get("Webhook-Timestamp"), body)
	hd.Set("Webhook-Signature", "v1a,bm90LWFuLWVkMjU1MTktc2lnbmF0dXJl "+old+" "+good)
	if resp := e.post("/webhook", hd, body); resp.outcome != OutcomeAccepted {
		t.Fatalf("signature list with one match: %d %q (%s)", resp.status, resp.outcome, resp.reason)
	}
	hd = gitlabSignedHeaders(standardCanary, "msg_rotate2", testNow, body)
	hd.Set("Webhook-Signature", old)
	if resp := e.post("/webhook", hd, body); resp.status != 401 {
		t.Errorf("signature list without a match: %d %q, want 401", resp.status, resp.outcome)
	}
	// The signed id is what is remembered: the same delivery again is a duplicate.
	hd = gitlabSignedHeaders(standardCanary, "msg_rotate", testNow.Add(time.Minute), body)
	if resp := e.post("/webhook", hd, body); resp.outcome != OutcomeDuplicate {
		t.Errorf("replayed signed delivery: %q, want duplicate", resp.outcome)
	}
	if n := len(e.got()); n != 1 {
		t.Errorf("OnPush called %d times, want 1", n)
	}
	e.assertClean(good, old)
}

func TestNew(t *testing.T) {
	onPush := func(Push) {}
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no secret", Options{Branch: "main", OnPush: onPush}, "secret is required"},
		{"no secret, unsigned allowed", Options{Branch: "main", OnPush: onPush, AllowUnsigned: true}, ""},
		{"no branch", Options{Secret: []byte(canary), OnPush: onPush}, "tracked branch is required"},
		{"full ref branch", Options{Secret: []byte(canary), Branch: "refs/heads/main", OnPush: onPush}, ""},
		{"no OnPush", Options{Secret: []byte(canary), Branch: "main"}, "OnPush is required"},
		{"negative max body", Options{Secret: []byte(canary), Branch: "main", OnPush: onPush, MaxBody: -1}, "must not be negative"},
		{"negative rate limit", Options{Secret: []byte(canary), Branch: "main", OnPush: onPush, RateLimit: -1}, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s := fmt.Sprint(h) + fmt.Sprintf("%v %+v", h, h); strings.Contains(s, canary) {
					t.Errorf("printing the handler shows the secret: %s", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New: err %v, want one containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}

	opts := Options{Secret: []byte(canary), Branch: "main"}
	var logs logtest.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("options", "opts", opts)
	for _, s := range []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), logs.String()} {
		if strings.Contains(s, canary) {
			t.Errorf("printed options show the secret: %s", s)
		}
	}
}

func TestAllowUnsigned(t *testing.T) {
	body := readTestdata(t, "generic-push.json")
	e := newEnv(t, func(o *Options) { o.Secret, o.AllowUnsigned = nil, true })
	for i := range 2 {
		resp := e.post("/webhook/generic", http.Header{"X-Flagsync-Delivery": {fmt.Sprint(i)}}, body)
		if resp.outcome != OutcomeAccepted {
			t.Fatalf("unsigned delivery %d: %d %q", i, resp.status, resp.outcome)
		}
	}
	if n := strings.Count(e.logs.String(), "NOT verified"); n != 2 {
		t.Errorf("%d per-request warnings about unverified deliveries, want 2:\n%s", n, e.logs)
	}
}

func TestSecretSetIgnoresAllowUnsigned(t *testing.T) {
	body := readTestdata(t, "generic-push.json")
	e := newEnv(t, func(o *Options) { o.AllowUnsigned = true })
	if resp := e.post("/webhook/generic", nil, body); resp.status != http.StatusUnauthorized {
		t.Errorf("unsigned delivery with a secret configured: %d %q, want 401", resp.status, resp.outcome)
	}
}

// TestAcceptedLogOmitsUnknowns: a push that names neither its repository nor its files
// (a generic sender) is logged without a "repository" of "" or "changed_files" of -1.
func TestAcceptedLogOmitsUnknowns(t *testing.T) {
	after := strings.Repeat("ab", 20)
	tests := []struct {
		name     string
		body     string
		want     map[string]any
		notWants []string
	}{
		{"nothing but ref and after", `{"ref":"refs/heads/main","after":"` + after + `"}`,
			map[string]any{"after": after}, []string{"repository", "changed_files"}},
		{"repository named", `{"ref":"main","after":"` + after + `","repository":"acme/flags"}`,
			map[string]any{"repository": "acme/flags"}, []string{"changed_files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			body := []byte(tt.body)
			hd := http.Header{"Content-Type": {"application/json"}, "X-Flagsync-Signature": {"sha256=" + hexMAC(canary, body)}}
			if resp := e.post("/webhook/generic", hd, body); resp.status != http.StatusAccepted {
				t.Fatalf("got %d %q (%s), want 202", resp.status, resp.outcome, resp.reason)
			}
			var line map[string]any
			for _, l := range strings.Split(e.logs.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "webhook delivery" {
					line = rec
				}
			}
			if line == nil {
				t.Fatalf("no delivery log line:\n%s", e.logs)
			}
			for k, v := range tt.want {
				if line[k] != v {
					t.Errorf("log %s = %v, want %v", k, line[k], v)
				}
			}
			for _, k := range tt.notWants {
				if v, ok := line[k]; ok {
					t.Errorf("log has %s = %v, want it left out when unknown", k, v)
				}
			}
		})
	}
}
