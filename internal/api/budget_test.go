package api

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestBudgetSlidingWindows(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := NewBudgetWindows(Window{Limit: 3, Period: time.Second}, Window{Limit: 5, Period: time.Minute})
	b.now = clock.Now
	at := func(d time.Duration) { clock.Set(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)) }
	take := func() func() {
		t.Helper()
		b.mu.Lock()
		_, ok := b.freeLocked(b.now())
		b.mu.Unlock()
		if !ok {
			t.Fatalf("no slot at %v: %+v", clock.Now(), b.Remaining())
		}
		release, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return release
	}
	check := func(wantWait time.Duration, wantOK bool) {
		t.Helper()
		b.mu.Lock()
		wait, ok := b.freeLocked(b.now())
		b.mu.Unlock()
		if wait != wantWait || ok != wantOK {
			t.Errorf("at %v: freeLocked = %v, %v; want %v, %v (%+v)", clock.Now().Format("04:05.000"), wait, ok, wantWait, wantOK, b.Remaining())
		}
	}

	at(0)
	r1, r2, r3 := take(), take(), take()
	check(0, false) // three in flight: only a release frees a slot
	at(100 * time.Millisecond)
	r1()
	check(time.Second, false) // finished at 0.1 s: counted until 1.1 s
	at(300 * time.Millisecond)
	r2()
	r3()
	at(1100 * time.Millisecond)
	check(0, true)
	if got := b.Remaining(); got[0].Used != 2 || got[1].Used != 3 {
		t.Errorf("Remaining() = %+v", got)
	}
	take()()
	check(200*time.Millisecond, false) // second window: 0.3, 0.3, 1.1; the first 0.3 leaves at 1.3 s
	at(1350 * time.Millisecond)
	take()()
	check(58750*time.Millisecond, false) // minute window full: the oldest (0.1 s) leaves at 60.1 s
	at(60100 * time.Millisecond)
	check(0, true)
}

func TestBudgetAcquireHonoursContext(t *testing.T) {
	b := NewBudgetWindows(Window{Limit: 1, Period: time.Hour})
	release, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // a second call is a no-op
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire on a full budget with a cancelled context = %v", err)
	}
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a full budget with a cancelled context = %v", err)
	}
	if got := b.Remaining()[0]; got.Used != 1 || got.Remaining != 0 {
		t.Errorf("Remaining() = %+v", got)
	}
}

// TestBudgetUnderLoad runs many concurrent holders through a small window and checks,
// from the recorded send and response times, that no request was sent while Limit
// others were in flight or had answered within the last Period.
func TestBudgetUnderLoad(t *testing.T) {
	const limit, period, callers = 4, 40 * time.Millisecond, 40
	b := NewBudgetWindows(Window{Limit: limit, Period: period})
	type span struct{ sent, done time.Time }
	var mu sync.Mutex
	var spans []span
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := b.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			s := span{sent: time.Now()}
			time.Sleep(time.Duration(i%3) * time.Millisecond) // the request's latency
			s.done = time.Now()
			release()
			mu.Lock()
			spans = append(spans, s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(spans, func(i, j int) bool { return spans[i].sent.Before(spans[j].sent) })
	for i, s := range spans {
		busy := 0
		for _, o := range spans[:i] {
			if o.done.Add(period).After(s.sent) {
				busy++
			}
		}
		if busy >= limit {
			t.Fatalf("request %d sent with %d others in flight or within the window", i, busy)
		}
	}
	if len(spans) != callers {
		t.Errorf("%d of %d callers got a slot", len(spans), callers)
	}
}

func TestPeriodName(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Second: "10s", time.Hour: "1h", 200 * time.Millisecond: "200ms", time.Minute: "1m", 90 * time.Second: "1m30s"} {
		if got := periodName(d); got != want {
			t.Errorf("periodName(%v) = %q, want %q", d, got, want)
		}
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
