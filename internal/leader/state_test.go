package leader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Writing.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestWritingIsClockBased: a term whose renewals stop stops writing at its renew
// deadline by the clock alone, before any callback says so, and writes again once
// renewed.
func TestWritingIsClockBased(t *testing.T) {
	clock := newFakeClock()
	s := newState(BackendFile, "me", 10*time.Second, clock.Now, nil)
	var stopped int
	s.setCallbacks(Callbacks{OnStoppedLeading: func() { stopped++ }})
	ctx := context.Background()

	if s.Writing() {
		t.Fatal("Writing before any term")
	}
	var nl *NotLeaderError
	if err := s.Guard(ctx); !errors.As(err, &nl) || nl.Expired {
		t.Fatalf("Guard before any term: %v, want a NotLeaderError, not expired", err)
	}

	term := s.startTerm(ctx, clock.Now())
	if !s.Writing() || s.Guard(ctx) != nil {
		t.Fatal("not writing right after acquiring")
	}
	clock.Advance(9 * time.Second)
	if !s.Writing() {
		t.Fatal("not writing 9s after the last renewal (deadline 10s)")
	}
	clock.Advance(time.Second)
	if s.Writing() {
		t.Fatal("still writing at the renew deadline")
	}
	if err := s.Guard(ctx); !errors.As(err, &nl) || !nl.Expired {
		t.Fatalf("Guard past the deadline: %v, want an expired NotLeaderError", err)
	}
	if !s.IsLeader() || stopped != 0 {
		t.Fatalf("IsLeader %t, stopped %d: the deadline alone must not end the term (the watchdog does)", s.IsLeader(), stopped)
	}
	st := s.Status()
	if st.Role != RoleLeader || st.Writing {
		t.Errorf("status %+v, want leader, not writing", st)
	}

	s.renewed(clock.Now())
	if !s.Writing() {
		t.Fatal("not writing after a renewal")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Guard(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Guard on a cancelled context: %v", err)
	}

	if !s.endTerm(term, "test", true) || s.endTerm(term, "again", true) {
		t.Error("endTerm must end a term exactly once")
	}
	<-term.done
	if s.Writing() || s.IsLeader() || stopped != 1 {
		t.Errorf("after the term: writing %t leader %t stopped %d", s.Writing(), s.IsLeader(), stopped)
	}
	if st := s.Status(); st.Role != RoleFollower || st.Transitions != 2 {
		t.Errorf("status %+v, want follower after 2 transitions", st)
	}
}

// TestWatchdogEndsStalledTerm: the watchdog cancels the term's context and calls
// OnStoppedLeading once the deadline passes without a renewal.
func TestWatchdogEndsStalledTerm(t *testing.T) {
	s := newState(BackendLease, "me", 50*time.Millisecond, nil, nil)
	stopped := make(chan struct{})
	termCtx := make(chan context.Context, 1)
	s.setCallbacks(Callbacks{
		OnStartedLeading: func(ctx context.Context) { termCtx <- ctx; <-ctx.Done() },
		OnStoppedLeading: func() { close(stopped) },
	})
	term := s.startTerm(context.Background(), time.Now())
	abandoned := make(chan struct{})
	go s.watchdog(term, func() { close(abandoned) })
	ctx := <-termCtx
	select {
	case <-abandoned:
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not end a term whose renewals stopped")
	}
	select {
	case <-stopped:
	default:
		t.Error("OnStoppedLeading not called before abandoning the lock")
	}
	if ctx.Err() == nil {
		t.Error("the term's context is not cancelled")
	}
	if s.Writing() {
		t.Error("still writing")
	}
}

func TestSingle(t *testing.T) {
	e := NewSingle("solo", nil)
	if !e.Writing() || !e.IsLeader() || e.Leader() != "solo" || e.Guard(context.Background()) != nil {
		t.Fatal("a lone replica must always write")
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan context.Context, 1)
	var stopped bool
	done := make(chan error)
	go func() {
		done <- e.Run(ctx, Callbacks{
			OnStartedLeading: func(c context.Context) { started <- c; <-c.Done() },
			OnStoppedLeading: func() { stopped = true },
		})
	}()
	termCtx := <-started
	if st := e.Status(); st.Role != RoleNone || !st.Writing || st.Backend != BackendNone {
		t.Errorf("status %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if termCtx.Err() == nil || !stopped {
		t.Error("Run returned before ending the term")
	}
}

func TestTimingsValidate(t *testing.T) {
	tests := []struct {
		name string
		t    Timings
		ok   bool
	}{
		{"defaults", Timings{}.withDefaults(), true},
		{"sub-second lease", Timings{LeaseDuration: 1500 * time.Millisecond, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}, false},
		{"deadline not shorter than lease", Timings{LeaseDuration: 10 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: time.Second}, false},
		{"retry too long for the deadline", Timings{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 9 * time.Second}, false},
		{"negative", Timings{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: -time.Second}, false},
	}
	for _, tc := range tests {
		err := tc.t.validate()
		var ce *ConfigError
		if tc.ok != (err == nil) || (err != nil && !errors.As(err, &ce)) {
			t.Errorf("%s: validate() = %v", tc.name, err)
		}
	}
}
