package kclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/logtest"
)

func TestNewValidatesConfig(t *testing.T) {
	const secret = "sekrit-1f0c"
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{ClientID: "a", ClientSecret: secret}, true},
		{"base URL with prefix", Config{BaseURL: "http://127.0.0.1:8080/kameleoon/", ClientID: "a", ClientSecret: secret}, true},
		{"no id", Config{ClientSecret: secret}, false},
		{"no secret", Config{ClientID: "a"}, false},
		{"relative URL", Config{BaseURL: "api.kameleoon.com", ClientID: "a", ClientSecret: secret}, false},
		{"other scheme", Config{BaseURL: "ftp://x", ClientID: "a", ClientSecret: secret}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			if c != nil && (c.base == "" || strings.HasSuffix(c.base, "/") || c.budget == nil || c.cfg.CallTimeout != DefaultCallTimeout) {
				t.Errorf("defaults not filled: %+v", c.cfg)
			}
		})
	}
}

func TestTokenFetchedOnceForConcurrentCalls(t *testing.T) {
	f := newFakeAPI(t, replies(200))
	gate := make(chan struct{})
	f.tokenReply = func(http.ResponseWriter, *http.Request) bool {
		<-gate // hold the first fetch until every caller is waiting for a token
		return false
	}
	c := newTestClient(t, testConfig(f.srv.URL, nil))

	const callers = 30
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.GetFlag(context.Background(), "s", "k")
			errs <- err
		}()
	}
	// Callers either wait on the one running fetch or have not asked yet; all are served
	// by the first token either way.
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokensIssued(); n != 1 {
		t.Errorf("%d tokens fetched for %d concurrent calls, want 1", n, callers)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestTokenRenewal(t *testing.T) {
	t0 := time.Date(2025, 12, 17, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		ttl    int // expires_in; 0 = absent
		at     []time.Duration
		tokens []int // tokens fetched after each call
	}{
		{"renewed 60 s before expiry", 3600, []time.Duration{0, 58*time.Minute + 59*time.Second, 59*time.Minute + time.Second, 60 * time.Minute}, []int{1, 1, 2, 2}},
		{"short-lived renewed at half life", 100, []time.Duration{0, 49 * time.Second, 51 * time.Second}, []int{1, 1, 2}},
		{"no expires_in: kept until refused", 0, []time.Duration{0, 24 * time.Hour}, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, replies(200))
			f.tokenTTL = tt.ttl
			clock := &fakeClock{t: t0}
			cfg := testConfig(f.srv.URL, nil)
			cfg.Now = clock.Now
			c := newTestClient(t, cfg)
			for i, at := range tt.at {
				clock.Set(t0.Add(at))
				if _, err := c.GetFlag(context.Background(), "s", "k"); err != nil {
					t.Fatal(err)
				}
				if n := f.tokensIssued(); n != tt.tokens[i] {
					t.Errorf("after the call at +%v: %d tokens fetched, want %d", at, n, tt.tokens[i])
				}
			}
		})
	}
}

func TestUnauthorizedRenewsTokenOnce(t *testing.T) {
	f := newFakeAPI(t, replies(200))
	c := newTestClient(t, testConfig(f.srv.URL, nil))
	ctx := context.Background()
	if _, err := c.GetFlag(ctx, "s", "k"); err != nil {
		t.Fatal(err)
	}
	f.revoke()
	if _, err := c.GetFlag(ctx, "s", "k"); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /oauth/token", "GET /feature-flags/s/k", "GET /feature-flags/s/k", "POST /oauth/token", "GET /feature-flags/s/k"}
	if got := f.log(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n got %v\nwant %v", got, want)
	}

	// A server that refuses every token: one renewal, then the 401 is the answer.
	f2 := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"forbidden for this account"}`)
	})
	c2 := newTestClient(t, testConfig(f2.srv.URL, nil))
	_, err := c2.GetFlag(ctx, "s", "k")
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want a 401 *api.Error", err)
	}
	if n, gets := f2.tokensIssued(), f2.count("GET", "/feature-flags/s/k"); n != 2 || gets != 2 {
		t.Errorf("%d tokens and %d GETs for a refused call, want 2 and 2", n, gets)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name     string
		reply    func(w http.ResponseWriter) // nil: the fake's own credential check
		secret   string
		status   int // want *api.Error with this status; 0: a plain error
		message  string
		requests int // token requests made
	}{
		{"bad credentials", nil, "wrong-" + testSecret, 401, "invalid_client: Bad client credentials", 1},
		{"400 echoing the secret", func(w http.ResponseWriter) {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"invalid_request","error_description":"client_secret %s is malformed"}`, testSecret)
		}, testSecret, 400, "invalid_request: client_secret [REDACTED] is malformed", 1},
		{"403 not retried", func(w http.ResponseWriter) { w.WriteHeader(403) }, testSecret, 403, "", 1},
		{"5xx retried until attempts run out", func(w http.ResponseWriter) { w.WriteHeader(503) }, testSecret, 503, "", DefaultMaxAttempts},
		{"200 without a token", func(w http.ResponseWriter) {
			fmt.Fprintf(w, `{"token":"%s-x","expires_in":7200}`, testTokenPrefix)
		}, testSecret, 0, "response has no access_token", 1},
		{"200 with invalid JSON holding the token", func(w http.ResponseWriter) {
			fmt.Fprintf(w, `{"access_token":"%s-y",`, testTokenPrefix)
		}, testSecret, 0, "response has no access_token", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, nil)
			if tt.reply != nil {
				f.tokenReply = func(w http.ResponseWriter, _ *http.Request) bool { tt.reply(w); return true }
			}
			logs := &logtest.Buffer{}
			cfg := testConfig(f.srv.URL, logs)
			cfg.ClientSecret = tt.secret
			c := newTestClient(t, cfg)
			_, err := c.ListFlags(context.Background(), "s")
			if err == nil {
				t.Fatal("no error")
			}
			var apiErr *api.Error
			switch {
			case tt.status != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.status):
				t.Errorf("err = %v, want an *api.Error with status %d", err, tt.status)
			case tt.status != 0 && apiErr.Message != tt.message:
				t.Errorf("message = %q, want %q", apiErr.Message, tt.message)
			case tt.status == 0 && !strings.Contains(err.Error(), tt.message):
				t.Errorf("err = %v, want it to say %q", err, tt.message)
			}
			if n := f.count("POST", tokenPath); n != tt.requests {
				t.Errorf("%d token requests, want %d", n, tt.requests)
			}
			if f.count("GET", "/feature-flags") != 0 {
				t.Error("a resource call went out without a token")
			}
			assertNoSecrets(t, "error", fmt.Sprintf("%v %+v", err, apiErr), tt.secret)
			assertNoSecrets(t, "logs", logs.String(), tt.secret)
		})
	}
}

// assertNoSecrets fails if text holds the secret or any token the fakes issue.
func assertNoSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, testSecret, testTokenPrefix) {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds a secret (%q):\n%s", what, s, text)
		}
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		statuses  []int
		wantCalls int
		wantErr   int // status of the *api.Error returned, 0 for success
	}{
		{"GET 503 then 200", "GET", "/feature-flags/s/k", []int{503, 200}, 2, 0},
		{"GET 429 then 200", "GET", "/feature-flags/s/k", []int{429, 200}, 2, 0},
		{"GET 423 then 200", "GET", "/feature-flags/s/k", []int{423, 200}, 2, 0},
		{"GET 500 until attempts run out", "GET", "/feature-flags/s/k", []int{500}, DefaultMaxAttempts, 500},
		{"GET 400 not retried", "GET", "/feature-flags/s/k", []int{400}, 1, 400},
		{"GET 404 not retried", "GET", "/feature-flags/s/k", []int{404}, 1, 404},
		{"PATCH 502 then 200 (a merge patch is idempotent)", "PATCH", "/feature-flags/s/k/production", []int{502, 200}, 2, 0},
		{"PATCH 409 not retried", "PATCH", "/feature-flags/s/k/production", []int{409}, 1, 409},
		{"other POST 503 not resent", "POST", "/feature-flags/search", []int{503, 200}, 1, 503},
		{"other POST 429 resent (refused, not applied)", "POST", "/feature-flags/search", []int{429, 200}, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, replies(tt.statuses...))
			c := newTestClient(t, testConfig(f.srv.URL, nil))
			_, err := c.Do(context.Background(), api.Request{Method: tt.method, Path: tt.path, Body: json.RawMessage(`{}`)})
			if n := f.count(tt.method, tt.path); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
			var apiErr *api.Error
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Errorf("err = %v", err)
			case tt.wantErr != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.wantErr):
				t.Errorf("err = %v, want an *api.Error with status %d", err, tt.wantErr)
			case tt.wantErr != 0 && apiErr.Retryable != api.RetryableStatus(tt.wantErr):
				t.Errorf("Retryable = %v for %d", apiErr.Retryable, tt.wantErr)
			}
		})
	}
}

func TestRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	c := newTestClient(t, testConfig(f.srv.URL, nil))
	_, err := c.GetFlag(context.Background(), "s", "k")
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 429 || !apiErr.Retryable {
		t.Fatalf("err = %v, want a retryable 429", err)
	}
	if n := f.count("GET", "/feature-flags/s/k"); n != 1 {
		t.Errorf("%d calls, want 1: waiting an hour is past MaxElapsed", n)
	}
}

func TestCancelStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		cancel() // the caller gives up while the server fails
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	cfg := testConfig(f.srv.URL, nil)
	cfg.BackoffBase = time.Hour
	cfg.MaxElapsed = 10 * time.Hour
	c := newTestClient(t, cfg)
	_, err := c.GetFlag(ctx, "s", "k")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := f.count("GET", "/feature-flags/s/k"); n != 1 {
		t.Errorf("%d calls after cancellation, want 1", n)
	}
}

func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	n := 0
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			select { // hang until the client times out
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		io.WriteString(w, `{"siteCode":"s","featureKey":"k",`+completeFields+`}`)
	})
	cfg := testConfig(f.srv.URL, nil)
	cfg.CallTimeout = 250 * time.Millisecond
	c := newTestClient(t, cfg)
	if _, err := c.GetFlag(context.Background(), "s", "k"); err != nil {
		t.Fatalf("a GET that timed out once was not retried: %v", err)
	}
	if got := f.count("GET", "/feature-flags/s/k"); got != 2 {
		t.Errorf("%d GETs, want 2", got)
	}
}

// dropAfter returns a handler that closes the connection without answering for the
// first n requests and then calls next.
func dropAfter(t *testing.T, n int, next func(w http.ResponseWriter, r *http.Request, body []byte)) func(w http.ResponseWriter, r *http.Request, body []byte) {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		drop := n > 0
		n--
		mu.Unlock()
		if !drop {
			next(w, r, body)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("GET retried after a dropped connection", func(t *testing.T) {
		f := newFakeAPI(t, dropAfter(t, 1, replies(200)))
		c := newTestClient(t, testConfig(f.srv.URL, nil))
		if _, err := c.GetFlag(context.Background(), "s", "k"); err != nil {
			t.Fatal(err)
		}
		if n := f.count("GET", "/feature-flags/s/k"); n != 2 {
			t.Errorf("%d GETs, want 2", n)
		}
	})
	t.Run("other POST not resent after a dropped connection", func(t *testing.T) {
		f := newFakeAPI(t, dropAfter(t, 1, replies(200)))
		c := newTestClient(t, testConfig(f.srv.URL, nil))
		_, err := c.Do(context.Background(), api.Request{Method: "POST", Path: "/feature-flags/search", Body: json.RawMessage(`{}`)})
		if err == nil || !strings.HasPrefix(err.Error(), "POST /feature-flags/search: ") {
			t.Errorf("err = %v, want a network error naming the call", err)
		}
		if n := f.count("POST", "/feature-flags/search"); n != 1 {
			t.Errorf("%d POSTs, want 1", n)
		}
	})
	t.Run("connection refused is wrapped with method and path", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg := testConfig("http://"+addr, nil)
		cfg.MaxAttempts = 2
		c := newTestClient(t, cfg)
		_, err = c.GetFlag(context.Background(), "s", "k")
		if err == nil || !strings.Contains(err.Error(), "POST /oauth/token: ") || !strings.Contains(err.Error(), "refused") {
			t.Errorf("err = %v", err)
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) {
			t.Errorf("a network error is an *api.Error: %v", err)
		}
	})
}

// flagStore is a fake's in-memory flags for create tests.
type flagStore struct {
	mu    sync.Mutex
	flags map[string]string
}

func (s *flagStore) handler(failPost func(n int) string) func(w http.ResponseWriter, r *http.Request, body []byte) {
	posts := 0
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/feature-flags":
			posts++
			mode := failPost(posts)
			if mode == "503" {
				w.WriteHeader(503)
				return
			}
			var id kmodel.Ref
			json.Unmarshal(body, &id)
			if _, ok := s.flags[id.FeatureKey]; ok {
				w.WriteHeader(409)
				io.WriteString(w, `{"message":"feature flag already exists"}`)
				return
			}
			s.flags[id.FeatureKey] = fmt.Sprintf(`{"id":%d,"siteCode":%q,"featureKey":%q}`, len(s.flags)+1, id.SiteCode, id.FeatureKey)
			if mode == "lost" || mode == "503 after create" {
				if mode == "503 after create" {
					w.WriteHeader(503)
					return
				}
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			w.WriteHeader(201)
			io.WriteString(w, s.flags[id.FeatureKey])
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/feature-flags/s/"):
			f, ok := s.flags[strings.TrimPrefix(r.URL.Path, "/feature-flags/s/")]
			if !ok {
				w.WriteHeader(404)
				return
			}
			io.WriteString(w, f)
		default:
			w.WriteHeader(400)
		}
	}
}

func TestCreateNeverDuplicates(t *testing.T) {
	tests := []struct {
		name      string
		failPost  func(n int) string
		wantPosts int
		wantGets  int
		wantErr   int
	}{
		{"created", func(int) string { return "" }, 1, 0, 0},
		{"response lost after the create: GET finds it", func(n int) string { return "lost" }, 1, 1, 0},
		{"503 after the create: GET finds it", func(n int) string { return "503 after create" }, 1, 1, 0},
		{"503 before the create: GET does not find it, POST again", func(n int) string {
			if n == 1 {
				return "503"
			}
			return ""
		}, 2, 1, 0},
		{"503 every time: gives up after MaxAttempts", func(int) string { return "503" }, DefaultMaxAttempts, DefaultMaxAttempts, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &flagStore{flags: map[string]string{}}
			f := newFakeAPI(t, store.handler(tt.failPost))
			logs := &logtest.Buffer{}
			c := newTestClient(t, testConfig(f.srv.URL, logs))
			got, err := c.CreateFlag(context.Background(), &kmodel.Flag{SiteCode: "s", FeatureKey: "new", Name: "New"}, nil)
			if tt.wantErr == 0 && (err != nil || got.FeatureKey != "new" || got.ID == 0) {
				t.Errorf("CreateFlag = %+v, %v", got, err)
			}
			var apiErr *api.Error
			if tt.wantErr != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.wantErr) {
				t.Errorf("err = %v, want status %d", err, tt.wantErr)
			}
			if n := f.count("POST", "/feature-flags"); n != tt.wantPosts {
				t.Errorf("%d POSTs, want %d", n, tt.wantPosts)
			}
			if n := f.count("GET", "/feature-flags/s/new"); n != tt.wantGets {
				t.Errorf("%d GETs, want %d", n, tt.wantGets)
			}
			if tt.wantGets > 0 && tt.wantErr == 0 && tt.wantPosts == 1 && !strings.Contains(logs.String(), "create response lost") {
				t.Errorf("the lost response was not logged:\n%s", logs.String())
			}
		})
	}

	t.Run("409 is a conflict, not retried", func(t *testing.T) {
		store := &flagStore{flags: map[string]string{"old": `{}`}}
		f := newFakeAPI(t, store.handler(func(int) string { return "" }))
		c := newTestClient(t, testConfig(f.srv.URL, nil))
		_, err := c.CreateFlag(context.Background(), &kmodel.Flag{SiteCode: "s", FeatureKey: "old", Name: "Old"}, nil)
		if !api.IsConflict(err) {
			t.Errorf("err = %v, want a conflict", err)
		}
		if err == nil || !strings.HasPrefix(err.Error(), "create s/old: POST /feature-flags: 409 Conflict: feature flag already exists") {
			t.Errorf("err = %v", err)
		}
		if n, gets := f.count("POST", "/feature-flags"), f.count("GET", "/feature-flags/s/old"); n != 1 || gets != 0 {
			t.Errorf("%d POSTs and %d GETs, want 1 and 0", n, gets)
		}
	})
}

func TestDoSendsRequestExactly(t *testing.T) {
	var got struct {
		method, path, body, contentType, auth, accept string
	}
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		got.method, got.path, got.body = r.Method, r.URL.EscapedPath(), string(body)
		got.contentType, got.auth, got.accept = r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("Accept")
		io.WriteString(w, `{"ok":true}`)
	})
	c := newTestClient(t, testConfig(f.srv.URL+"/", nil))
	req := PatchEnvironmentRequest("s c", "k", "K", "production", kmodel.Environment{FeatureEnabled: true}, []string{"featureEnabled"})
	raw, err := c.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"ok":true}` {
		t.Errorf("Do returned %s", raw)
	}
	if got.method != "PATCH" || got.path != "/feature-flags/s%20c/k/production" || got.body != string(req.Body) ||
		got.contentType != "application/json" || got.auth != "Bearer "+testTokenPrefix+"-1" || got.accept != "application/json" {
		t.Errorf("sent %+v for %s %s %s", got, req.Method, req.Path, req.Body)
	}
}

func TestWrappersDecodeAndName(t *testing.T) {
	var bodies []string
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+string(body))
		if strings.Contains(r.URL.Path, "missing") {
			w.WriteHeader(404)
			io.WriteString(w, `{"message":"Feature flag not found"}`)
			return
		}
		io.WriteString(w, `{"id":9,"siteCode":"s","featureKey":"k","archived":true}`)
	})
	c := newTestClient(t, testConfig(f.srv.URL, nil))
	ctx := context.Background()

	if fl, err := c.Archive(ctx, "s", "k"); err != nil || !fl.Archived || fl.ID != 9 {
		t.Errorf("Archive = %+v, %v", fl, err)
	}
	if _, err := c.UpdateFlag(ctx, &kmodel.Flag{SiteCode: "s", FeatureKey: "k", Name: "N"}, []string{"name"}); err != nil {
		t.Error(err)
	}
	if _, err := c.UpdateRule(ctx, 20557, map[string]any{"rollbackConditions": []any{}}); err != nil {
		t.Error(err)
	}
	want := []string{
		`PATCH /feature-flags/s/k {"isArchived":true}`,
		`PATCH /feature-flags/s/k {"name":"N"}`,
		`PATCH /feature-flags/rules/20557 {"rollbackConditions":[]}`,
	}
	if !reflect.DeepEqual(bodies, want) {
		t.Errorf("requests:\n got %q\nwant %q", bodies, want)
	}

	_, err := c.PatchEnvironment(ctx, "s", "missing", "Missing", "production", kmodel.Environment{}, []string{"featureEnabled"})
	if !api.IsNotFound(err) {
		t.Errorf("err = %v, want not found", err)
	}
	if want := "update s/missing/production: PATCH /feature-flags/s/missing/production: 404 Not Found: Feature flag not found"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if _, err := c.GetFlag(ctx, "s", "missing"); !api.IsNotFound(err) || api.IsConflict(err) {
		t.Errorf("GetFlag err = %v, want not found", err)
	}
}

func TestListFlagsPaging(t *testing.T) {
	flagJSON := func(site string, i int) string {
		return fmt.Sprintf(`{"id":%d,"siteCode":%q,"featureKey":"f%03d","name":"F",%s}`, i, site, i, completeFields)
	}
	tests := []struct {
		name      string
		total     int
		perPage   int
		header    bool // send X-Pagination-Page-Count
		otherSite int  // flags of another site mixed in (on the first page)
		clamp     int  // the server's largest page, reported in X-Pagination-Per-Page
		wantCalls int
	}{
		{"header, 3 pages", 5, 2, true, 0, 0, 3},
		{"header, exact pages", 4, 2, true, 0, 0, 2},
		{"no header: stop on a short page", 5, 2, false, 0, 0, 3},
		{"no header: exact pages end on an empty one", 4, 2, false, 0, 0, 3},
		{"empty site", 0, 2, false, 0, 0, 1},
		{"other sites filtered out", 3, 10, false, 2, 0, 1},
		{"perPage clamped by the server, no page count", 5, 10, false, 0, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []string
			for i := range tt.otherSite {
				all = append(all, flagJSON("othersite0", 100+i))
			}
			for i := range tt.total {
				all = append(all, flagJSON("mysite0001", i))
			}
			f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				q := r.URL.Query()
				if r.URL.Path != "/feature-flags" || q.Get("siteCode") != "mysite0001" || q.Get("perPage") != strconv.Itoa(tt.perPage) ||
					q.Get("optionalFields") != strings.Join(OptionalFields, ",") {
					t.Errorf("list request %s", r.URL)
				}
				page, _ := strconv.Atoi(q.Get("page"))
				per := tt.perPage
				if tt.clamp > 0 {
					per = min(per, tt.clamp)
					w.Header().Set("X-Pagination-Per-Page", strconv.Itoa(per))
				}
				from := min((page-1)*per, len(all))
				to := min(from+per, len(all))
				if tt.header {
					w.Header().Set("X-Pagination-Page-Count", strconv.Itoa((len(all)+per-1)/per))
				}
				io.WriteString(w, "["+strings.Join(all[from:to], ",")+"]")
			})
			cfg := testConfig(f.srv.URL, nil)
			cfg.PerPage = tt.perPage
			c := newTestClient(t, cfg)
			flags, err := c.ListFlags(context.Background(), "mysite0001")
			if err != nil {
				t.Fatal(err)
			}
			if len(flags) != tt.total {
				t.Errorf("%d flags, want %d", len(flags), tt.total)
			}
			for i, fl := range flags {
				if fl.SiteCode != "mysite0001" || fl.FeatureKey != fmt.Sprintf("f%03d", i) {
					t.Errorf("flag %d = %s", i, fl.Ref())
				}
			}
			if n := f.count("GET", "/feature-flags"); n != tt.wantCalls {
				t.Errorf("%d list calls, want %d", n, tt.wantCalls)
			}
		})
	}

	t.Run("a server ignoring page is not read forever", func(t *testing.T) {
		f := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			io.WriteString(w, "["+flagJSON("mysite0001", 1)+","+flagJSON("mysite0001", 2)+"]")
		})
		cfg := testConfig(f.srv.URL, nil)
		cfg.PerPage = 2
		c := newTestClient(t, cfg)
		if _, err := c.ListFlags(context.Background(), "mysite0001"); err == nil || !strings.Contains(err.Error(), "repeats") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestResourceErrorsRedactSecrets(t *testing.T) {
	// A server that echoes the request's credentials back in its error body.
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"message":"bad request with header %s and secret %s"}`, r.Header.Get("Authorization"), testSecret)
	})
	logs := &logtest.Buffer{}
	c := newTestClient(t, testConfig(f.srv.URL, logs))
	_, err := c.PatchEnvironment(context.Background(), "s", "k", "K", "e", kmodel.Environment{}, []string{"featureEnabled"})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("err = %v", err)
	}
	assertNoSecrets(t, "error", fmt.Sprintf("%v|%s|%s", err, apiErr.Message, apiErr.Body))
	assertNoSecrets(t, "logs", logs.String())
	if !strings.Contains(apiErr.Message, "[REDACTED]") {
		t.Errorf("message %q: redaction not visible", apiErr.Message)
	}
	if !strings.Contains(logs.String(), "path=/feature-flags/s/k/e") || !strings.Contains(logs.String(), "status=400") {
		t.Errorf("no debug line for the call:\n%s", logs.String())
	}
}

func TestObserver(t *testing.T) {
	f := newFakeAPI(t, replies(503, 200))
	var mu sync.Mutex
	var seen []string
	cfg := testConfig(f.srv.URL, nil)
	cfg.Observer = func(ci api.CallInfo) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %s %d #%d", ci.Method, ci.Endpoint, ci.Status, ci.Attempt))
	}
	c := newTestClient(t, cfg)
	if _, err := c.GetFlag(context.Background(), "s", "k"); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /oauth/token 200 #1", "GET /feature-flags/{siteCode}/{featureKey} 503 #1", "GET /feature-flags/{siteCode}/{featureKey} 200 #2"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("observed %q, want %q", seen, want)
	}
}

func TestEndpointTemplate(t *testing.T) {
	tests := map[string]string{
		"/oauth/token":                     "/oauth/token",
		"/feature-flags":                   "/feature-flags",
		"/feature-flags/search":            "/feature-flags/search",
		"/feature-flags/rules/20557":       "/feature-flags/rules/{ruleId}",
		"/rules/20557":                     "/rules/{ruleId}",
		"/feature-flags/pzllysfw2f/k":      "/feature-flags/{siteCode}/{featureKey}",
		"/feature-flags/pzllysfw2f/k/prod": "/feature-flags/{siteCode}/{featureKey}/{environmentKey}",
		"/segments/search":                 "other",
		"/feature-flags/a/b/c/d":           "other",
	}
	for path, want := range tests {
		if got := endpointTemplate(path); got != want {
			t.Errorf("endpointTemplate(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 12, 17, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{"0", 0, true},
		{"-3", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		got, ok := api.RetryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("api.RetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := newTestClient(t, Config{ClientID: "a", ClientSecret: "b"})
	for n, base := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 120 * time.Second, 120 * time.Second} {
		for range 20 {
			if d := c.caller.Backoff(n + 1); d < base || d > base+base/2 {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", n+1, d, base, base+base/2)
			}
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"variables", map[string]string{"KAMELEOON_CLIENT_ID": "id", "KAMELEOON_CLIENT_SECRET": "sec", "KAMELEOON_API_URL": "http://127.0.0.1:9"},
			Config{BaseURL: "http://127.0.0.1:9", ClientID: "id", ClientSecret: "sec"}, ""},
		{"secret from file", map[string]string{"KAMELEOON_CLIENT_ID": "id", "KAMELEOON_CLIENT_SECRET_FILE": secretFile},
			Config{ClientID: "id", ClientSecret: "from-file"}, ""},
		{"variable wins over file", map[string]string{"KAMELEOON_CLIENT_ID": "id", "KAMELEOON_CLIENT_SECRET": "sec", "KAMELEOON_CLIENT_SECRET_FILE": secretFile},
			Config{ClientID: "id", ClientSecret: "sec"}, ""},
		{"id from file", map[string]string{"KAMELEOON_CLIENT_ID_FILE": secretFile, "KAMELEOON_CLIENT_SECRET": "sec"},
			Config{ClientID: "from-file", ClientSecret: "sec"}, ""},
		{"nothing set", map[string]string{}, Config{}, "KAMELEOON_CLIENT_ID (or KAMELEOON_CLIENT_ID_FILE) and KAMELEOON_CLIENT_SECRET (or KAMELEOON_CLIENT_SECRET_FILE) not set"},
		{"missing file", map[string]string{"KAMELEOON_CLIENT_ID": "id", "KAMELEOON_CLIENT_SECRET_FILE": filepath.Join(dir, "nope")}, Config{}, "read KAMELEOON_CLIENT_SECRET_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ConfigFromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestBaseURLPrefix(t *testing.T) {
	f := newFakeAPI(t, nil)
	var paths []string
	var mu sync.Mutex
	// A reverse proxy that serves the API under /kameleoon.
	proxy := http.NewServeMux()
	proxy.HandleFunc("/kameleoon/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		u, _ := url.Parse(f.srv.URL + strings.TrimPrefix(r.URL.Path, "/kameleoon") + "?" + r.URL.RawQuery)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, u.String(), r.Body)
		req.Header = r.Header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	f.handle = replies(200)
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	c := newTestClient(t, testConfig(srv.URL+"/kameleoon", nil))
	if _, err := c.GetFlag(context.Background(), "s", "k"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/kameleoon/oauth/token", "/kameleoon/feature-flags/s/k"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %v, want %v", paths, want)
	}
}
