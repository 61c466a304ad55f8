package kclient

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a minimal hand-written stand-in for the Automation API: a token endpoint
// and whatever resource handler a test gives it. It records every request.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	calls    []fakeCall
	issued   int             // tokens issued
	valid    map[string]bool // tokens the resource endpoints accept
	tokenTTL int             // expires_in in seconds; 0 leaves it out

	// tokenReply, when set, answers token requests instead of issuing a token.
	tokenReply func(w http.ResponseWriter, r *http.Request) bool
	// handle answers resource requests that carry a valid token.
	handle func(w http.ResponseWriter, r *http.Request, body []byte)
}

type fakeCall struct {
	Method, Path, Query string
	Body                string
	Auth                string
}

func (c fakeCall) String() string { return c.Method + " " + c.Path }

func newFakeAPI(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, valid: map[string]bool{}, tokenTTL: 7200, handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(body), Auth: r.Header.Get("Authorization")})
	f.mu.Unlock()

	if r.URL.Path == tokenPath {
		if f.tokenReply != nil && f.tokenReply(w, r) {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("grant_type") != "client_credentials" ||
			form.Get("client_id") != "id" || form.Get("client_secret") != testSecret ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"Bad client credentials"}`)
			return
		}
		f.mu.Lock()
		f.issued++
		tok := fmt.Sprintf("%s-%d", testTokenPrefix, f.issued)
		f.valid[tok] = true
		ttl := f.tokenTTL
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if ttl > 0 {
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, ttl)
		} else {
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer"}`, tok)
		}
		return
	}
	f.mu.Lock()
	ok := f.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"invalid token"}`)
		return
	}
	if f.handle == nil {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	f.handle(w, r, body)
}

// revoke makes every issued token invalid.
func (f *fakeAPI) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid = map[string]bool{}
}

func (f *fakeAPI) tokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued
}

// log returns the requests so far as "METHOD /path".
func (f *fakeAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.String()
	}
	return out
}

func (f *fakeAPI) requests() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// count returns how many requests had the given method and path.
func (f *fakeAPI) count(method, path string) int {
	n := 0
	for _, c := range f.requests() {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}

const (
	testSecret      = "canary-client-secret-8d1f"
	testTokenPrefix = "canary-token-51e0"
)

// testConfig is a client configuration for tests: fast backoff, debug logs captured.
func testConfig(baseURL string, logs io.Writer) Config {
	if logs == nil {
		logs = io.Discard
	}
	return Config{
		BaseURL:      baseURL,
		ClientID:     "id",
		ClientSecret: testSecret,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase:  time.Millisecond,
		BackoffMax:   5 * time.Millisecond,
		CallTimeout:  5 * time.Second,
	}
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// completeFields are the members a flag in read shape needs for the client to take it as
// complete: one variation and one environment (see missingFields).
const completeFields = `"variables":[],"secondaryGoalIds":[],"variations":[{"key":"off","name":"Off"}],` +
	`"environmentConfigurations":[{"environmentKey":"production","featureEnabled":false,"defaultVariationKey":"off","rolloutRules":[]}]`

// replies returns a handler that answers successive requests with the given statuses
// (the last one repeats) and a JSON body for 2xx.
func replies(statuses ...int) func(w http.ResponseWriter, r *http.Request, body []byte) {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		s := statuses[min(n, len(statuses)-1)]
		n++
		mu.Unlock()
		if s == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(s)
		if s < 300 {
			io.WriteString(w, `{"siteCode":"s","featureKey":"k","id":1,`+completeFields+`}`)
		} else {
			fmt.Fprintf(w, `{"message":"status %d"}`, s)
		}
	}
}
