package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// recorder is a test server that answers each request with the next status of its
// script (the last one repeats) and records what it got.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header // added to every answer
	got      []string    // "METHOD /path Authorization"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.got = append(r.got, req.Method+" "+req.URL.Path+" "+req.Header.Get("Authorization"))
	status := r.statuses[min(len(r.got), len(r.statuses))-1]
	r.mu.Unlock()
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	w.Write([]byte(`{"message":"status ` + http.StatusText(status) + `"}`))
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func newTestCaller(t *testing.T, rec *recorder, hooks Hooks) *Caller {
	t.Helper()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return NewCaller(CallerConfig{
		BaseURL: srv.URL, Budget: NewBudgetWindows(), CallTimeout: 5 * time.Second,
		BackoffBase: time.Millisecond, BackoffMax: time.Millisecond, MaxAttempts: 4, MaxElapsed: time.Minute,
		Hooks: hooks,
	})
}

// TestCallerNeverBlindlyResendsAPost: by default a POST whose outcome is unknown (a 5xx)
// is sent once, a GET is retried, and a refusal (429) is retried whatever the method.
func TestCallerNeverBlindlyResendsAPost(t *testing.T) {
	for _, tt := range []struct {
		method   string
		statuses []int
		calls    int
		ok       bool
	}{
		{http.MethodPost, []int{502, 200}, 1, false},
		{http.MethodGet, []int{502, 200}, 2, true},
		{http.MethodPost, []int{429, 200}, 2, true},
	} {
		rec := &recorder{statuses: tt.statuses}
		c := newTestCaller(t, rec, Hooks{})
		_, err := c.Do(context.Background(), Request{Method: tt.method, Path: "/x", Body: []byte(`{}`)})
		if (err == nil) != tt.ok || len(rec.calls()) != tt.calls {
			t.Errorf("%s after %v: err %v, %d calls; want ok=%v, %d calls", tt.method, tt.statuses, err, len(rec.calls()), tt.ok, tt.calls)
		}
	}
	// A vendor that knows its PATCH is idempotent says so with MayResend.
	rec := &recorder{statuses: []int{503, 200}}
	c := newTestCaller(t, rec, Hooks{MayResend: func(r Request) bool { return r.Method != http.MethodPost }})
	if _, err := c.Do(context.Background(), Request{Method: http.MethodPatch, Path: "/x"}); err != nil || len(rec.calls()) != 2 {
		t.Errorf("idempotent PATCH after a 503: err %v, %d calls; want one retry", err, len(rec.calls()))
	}
}

// TestCallerRateLimitWaitHook: the vendor's rate-limit reading decides the wait after a 429.
func TestCallerRateLimitWaitHook(t *testing.T) {
	rec := &recorder{statuses: []int{429, 200}, header: http.Header{"X-Wait": {"1"}}}
	var asked []string
	c := newTestCaller(t, rec, Hooks{RateLimitWait: func(h http.Header, _ time.Time) (time.Duration, bool) {
		asked = append(asked, h.Get("X-Wait"))
		return time.Millisecond, true
	}})
	if _, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "1" || len(rec.calls()) != 2 {
		t.Errorf("hook asked %q, %d calls; want the 429's header once and one retry", asked, len(rec.calls()))
	}
}

// tokens is a renewable api.Auth: each Ready after a refusal hands out the next token.
type tokens struct {
	mu      sync.Mutex
	n       int
	current string
}

func (a *tokens) Ready(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == "" {
		a.n++
		a.current = "Bearer t" + string(rune('0'+a.n))
	}
	return nil
}
func (a *tokens) Header() (string, bool) { a.mu.Lock(); defer a.mu.Unlock(); return a.current, true }
func (a *tokens) Refused(v string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == v {
		a.current = ""
	}
	return true
}
func (a *tokens) Secrets() []string { return nil }

// TestCallerRenewsCredentialsOnceOn401: a 401 drops the token and the call is sent once
// more with a new one; a second 401 is the call's error.
func TestCallerRenewsCredentialsOnceOn401(t *testing.T) {
	rec := &recorder{statuses: []int{401, 200}}
	c := newTestCaller(t, rec, Hooks{Auth: &tokens{}})
	if _, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.calls(); len(got) != 2 || got[0] != "GET /x Bearer t1" || got[1] != "GET /x Bearer t2" {
		t.Errorf("calls %q; want the call with t1, then once more with t2", got)
	}

	rec = &recorder{statuses: []int{401}}
	c = newTestCaller(t, rec, Hooks{Auth: &tokens{}})
	_, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/x"})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || len(rec.calls()) != 2 {
		t.Errorf("err %v after %d calls; want a 401 *Error after exactly one renewal", err, len(rec.calls()))
	}
}
