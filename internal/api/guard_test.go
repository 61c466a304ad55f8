package api

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestGuardStopsRetries: a guard in the context is asked before every attempt, retries
// included; once it refuses, nothing more is sent and the call ends with a *GuardError
// wrapping the guard's answer. Calls without a guard are untouched.
func TestGuardStopsRetries(t *testing.T) {
	lost := errors.New("lease lost")
	var asked atomic.Int32
	guard := func(context.Context) error {
		if asked.Add(1) > 1 { // the first attempt may go, the retry may not
			return lost
		}
		return nil
	}
	rec := &recorder{statuses: []int{http.StatusTooManyRequests, http.StatusOK}}
	c := newTestCaller(t, rec, Hooks{})
	c.cfg.Budget = NewBudgetWindows(Window{Limit: 100, Period: time.Hour})
	_, err := c.Do(WithGuard(context.Background(), guard), Request{Method: http.MethodPatch, Path: "/flags/a"})
	var g *GuardError
	if !errors.As(err, &g) || !errors.Is(err, lost) || g.Method != http.MethodPatch || g.Path != "/flags/a" {
		t.Fatalf("err = %v, want a *GuardError wrapping the guard's answer", err)
	}
	if n := len(rec.calls()); n != 1 {
		t.Errorf("%d requests sent, want 1: the retry after the 429 must not go out once the guard refuses", n)
	}
	if asked.Load() != 2 {
		t.Errorf("guard asked %d times, want 2 (once per attempt)", asked.Load())
	}
	// A budget slot handed back unused is not counted.
	if used := c.Budget().Remaining()[0].Used; used != 1 {
		t.Errorf("budget used %d, want 1", used)
	}

	rec = &recorder{statuses: []int{http.StatusTooManyRequests, http.StatusOK}}
	c = newTestCaller(t, rec, Hooks{})
	if _, err := c.Do(context.Background(), Request{Method: http.MethodPatch, Path: "/flags/a"}); err != nil || len(rec.calls()) != 2 {
		t.Errorf("without a guard: err %v, %d requests; want the retry to succeed", err, len(rec.calls()))
	}
}

// TestUserAgent: every request carries the process's User-Agent.
func TestUserAgent(t *testing.T) {
	t.Cleanup(func() { SetUserAgent("") })
	var got atomic.Value
	rec := &recorder{statuses: []int{http.StatusOK}}
	c := newTestCaller(t, rec, Hooks{})
	c.http.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got.Store(r.Header.Get("User-Agent"))
		return http.DefaultTransport.RoundTrip(r)
	})
	SetUserAgent("flagsync/v9 (replica a_1)")
	if _, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "flagsync/v9 (replica a_1)" {
		t.Errorf("User-Agent %v", got.Load())
	}
	SetUserAgent("")
	if UserAgent() != DefaultUserAgent {
		t.Errorf("UserAgent() = %q after reset", UserAgent())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
