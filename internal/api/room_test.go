package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func newClockBudget(start time.Time, windows ...Window) (*Budget, *fakeClock) {
	clock := &fakeClock{t: start}
	b := NewBudgetWindows(windows...)
	b.now = clock.Now
	return b, clock
}

// spend charges n calls finished at the clock's time.
func spend(t *testing.T, b *Budget, n int) {
	t.Helper()
	for range n {
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBudgetRoom(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b, clock := newClockBudget(start, Window{Limit: 50, Period: 10 * time.Second}, Window{Limit: 100, Period: time.Hour})
	spend(t, b, 30)
	w, free, ok := b.Room()
	if !ok || w.Period != time.Hour || w.Limit != 100 || free != 70 {
		t.Errorf("Room() = %+v, %d, %t; want the hour window with 70 free", w, free, ok)
	}
	clock.Set(start.Add(time.Hour))
	if _, free, _ := b.Room(); free != 100 {
		t.Errorf("an hour later: %d free, want 100", free)
	}
	if _, _, ok := NewBudgetWindows().Room(); ok {
		t.Error("a budget without windows has a room")
	}
}

// TestBudgetTime: the time n calls take at the limits, from what the windows hold.
func TestBudgetTime(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	windows := []Window{{Limit: 50, Period: 10 * time.Second}, {Limit: 1000, Period: time.Hour}}
	tests := []struct {
		name  string
		spent int // calls finished at start
		waves []int
		want  time.Duration
	}{
		{"nothing to send", 0, nil, 0},
		{"one window's worth", 0, []int{50}, 0},
		{"51 calls wait one window", 0, []int{51}, 10 * time.Second},
		{"200 calls: four windows", 0, []int{200}, 30 * time.Second},
		{"the 10 s window is full already", 50, []int{1}, 10 * time.Second},
		// 950 spent at start: 50 left this hour. The second wave waits until the hour
		// window has room for its 100 calls: when the first 100 spent age out, at 1 h.
		{"a second wave waits for the hour", 950, []int{50, 100}, time.Hour + 10*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newClockBudget(start, windows...)
			b.mu.Lock()
			for range tt.spent {
				b.done = append(b.done, start)
			}
			b.mu.Unlock()
			if got := b.Time(tt.waves); got != tt.want {
				t.Errorf("Time(%v) = %v, want %v", tt.waves, got, tt.want)
			}
		})
	}
}

// TestBudgetWaitRoom: WaitRoom returns at once when the longest window has room for the
// batch, and otherwise when enough finished calls age out; it takes no slot.
func TestBudgetWaitRoom(t *testing.T) {
	b := NewBudgetWindows(Window{Limit: 4, Period: 150 * time.Millisecond})
	spend(t, b, 3)
	ctx := context.Background()
	if err := b.WaitRoom(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, free, _ := b.Room(); free != 1 {
		t.Fatalf("WaitRoom took a slot: %d free, want 1", free)
	}
	if err := b.WaitRoom(ctx, 3); err != nil { // the three spent age out
		t.Fatal(err)
	}
	if _, free, _ := b.Room(); free < 3 {
		t.Errorf("WaitRoom(3) returned with %d free", free)
	}
	if err := b.WaitRoom(ctx, 9); err != nil { // more than the limit: the whole window
		t.Fatal(err)
	}
	spend(t, b, 4)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.WaitRoom(cancelled, 4); err == nil {
		t.Error("WaitRoom on a cancelled context returned nil")
	}
}

// TestCallerUnchargedCallTakesNoSlot: a call marked Uncharged is sent without a slot of
// the budget, even when the budget is spent; the next charged call takes one.
func TestCallerUnchargedCallTakesNoSlot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	b := NewBudgetWindows(Window{Limit: 1, Period: time.Hour})
	c := NewCaller(CallerConfig{BaseURL: srv.URL, Budget: b, CallTimeout: 5 * time.Second, MaxAttempts: 1, MaxElapsed: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, Call{Method: http.MethodGet, Path: "/charged"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Send(ctx, Call{Method: http.MethodPost, Path: "/oauth/token", Uncharged: true}); err != nil {
			t.Fatalf("uncharged call with the budget spent: %v", err)
		}
	}
	if got := b.Remaining()[0].Used; got != 1 {
		t.Errorf("the budget counts %d calls, want the one charged call", got)
	}
}
