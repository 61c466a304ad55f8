package api

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Window is one rate limit: at most Limit requests in any Period.
type Window struct {
	Limit  int
	Period time.Duration
}

// WindowStatus is a window's state at one moment, for metrics and status pages.
type WindowStatus struct {
	Name      string // the period, e.g. "10s", "1h"
	Limit     int
	Used      int // requests in flight or finished within the last Period
	Remaining int
}

// Budget is a client-side rate budget shared by every caller in the process, so that
// flagsync itself never makes a vendor's API answer 429. It keeps sliding windows. Every
// HTTP request a Caller sends takes a slot, retries included, unless the call is marked
// Uncharged (a token request the vendor's limits are not shown to count).
//
// A budget knows only what its own process spent: a fresh process assumes every window
// is empty. Where other tools share the account, give the budget lower limits.
//
// A request holds a slot from the moment it is sent until its response has arrived, and
// its slot stays counted for one Period after that. Counting from the response rather than
// the send is what keeps the server's count within the limit: the server sees a request
// somewhere between send and response, so a window measured on the server can never hold
// more requests than the client allowed, whatever the latency.
type Budget struct {
	windows []Window
	now     func() time.Time

	// queue is held by the one caller that waits for a slot; the others wait for the
	// queue, in turn, instead of all waking up on every release.
	queue chan struct{}

	mu       sync.Mutex
	inFlight int
	done     []time.Time   // completion times, oldest first, pruned past the longest period
	changed  chan struct{} // closed and replaced whenever a slot is released
}

// NewBudgetWindows returns a budget with the given windows (a vendor's limits; tests use
// short ones).
// Windows with a Limit or Period <= 0 are ignored.
func NewBudgetWindows(windows ...Window) *Budget {
	b := &Budget{now: time.Now, changed: make(chan struct{}), queue: make(chan struct{}, 1)}
	for _, w := range windows {
		if w.Limit > 0 && w.Period > 0 {
			b.windows = append(b.windows, w)
		}
	}
	sort.Slice(b.windows, func(i, j int) bool { return b.windows[i].Period < b.windows[j].Period })
	return b
}

// Wait blocks until every window has a free slot, then counts one request sent now and
// finished at once. Callers that send a request themselves should prefer Acquire, which
// keeps the slot until the response is in.
func (b *Budget) Wait(ctx context.Context) error {
	release, err := b.Acquire(ctx)
	if err != nil {
		return err
	}
	release()
	return nil
}

// Acquire blocks until every window has a free slot and takes it. The caller must call
// release exactly once, when the response has arrived (or the request failed); the slot
// then stays counted for each window's period. Acquire returns ctx's error if ctx ends
// first.
func (b *Budget) Acquire(ctx context.Context) (release func(), err error) {
	rel, err := b.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return func() { rel(true) }, nil
}

// acquire is Acquire whose release says whether the slot was used: a slot handed back
// unused (release(false)) is not counted, as if it had never been taken.
func (b *Budget) acquire(ctx context.Context) (release func(used bool), err error) {
	select {
	case b.queue <- struct{}{}:
		defer func() { <-b.queue }()
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for API budget: %w", ctx.Err())
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("wait for API budget: %w", err)
		}
		b.mu.Lock()
		wait, ok := b.freeLocked(b.now())
		if ok {
			b.inFlight++
			b.mu.Unlock()
			var once sync.Once
			return func(used bool) { once.Do(func() { b.release(used) }) }, nil
		}
		changed := b.changed
		b.mu.Unlock()

		var timer *time.Timer
		var expired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (b *Budget) release(used bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight--
	if used {
		b.done = append(b.done, b.now())
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// freeLocked reports whether every window has a free slot at now. If not, it returns how
// long until a finished request leaves the fullest window, or 0 when only a release can
// free a slot (every slot of some window is in flight).
func (b *Budget) freeLocked(now time.Time) (wait time.Duration, ok bool) {
	b.pruneLocked(now)
	ok = true
	for _, w := range b.windows {
		recent := b.recentLocked(now, w.Period)
		if b.inFlight+len(recent) < w.Limit {
			continue
		}
		ok = false
		// Slots free up as the oldest finished requests age out; the window needs
		// (used - limit + 1) of them to go.
		need := b.inFlight + len(recent) - w.Limit + 1
		if need > len(recent) {
			continue // waits for a release
		}
		if d := recent[need-1].Add(w.Period).Sub(now); d > wait {
			wait = d
		}
	}
	return wait, ok
}

// recentLocked returns the completion times within period before now.
func (b *Budget) recentLocked(now time.Time, period time.Duration) []time.Time {
	cut := now.Add(-period)
	i := sort.Search(len(b.done), func(i int) bool { return b.done[i].After(cut) })
	return b.done[i:]
}

func (b *Budget) pruneLocked(now time.Time) {
	if len(b.windows) == 0 {
		b.done = b.done[:0]
		return
	}
	longest := b.windows[len(b.windows)-1].Period
	old := len(b.done) - len(b.recentLocked(now, longest))
	if old > 0 {
		b.done = append(b.done[:0], b.done[old:]...)
	}
}

// Remaining returns each window's use at this moment, shortest window first.
func (b *Budget) Remaining() []WindowStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.pruneLocked(now)
	out := make([]WindowStatus, 0, len(b.windows))
	for _, w := range b.windows {
		used := b.inFlight + len(b.recentLocked(now, w.Period))
		out = append(out, WindowStatus{Name: periodName(w.Period), Limit: w.Limit, Used: used, Remaining: max(w.Limit-used, 0)})
	}
	return out
}

// periodName renders a period compactly: 10s, 1h, 200ms.
func periodName(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, z) {
			s = strings.TrimSuffix(s, z[1:])
		}
	}
	return s
}

// Room returns the longest window (an hour for Kameleoon) and how many of its slots are
// free now; ok is false for a budget without windows, which never waits.
func (b *Budget) Room() (w Window, free int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.windows) == 0 {
		return Window{}, 0, false
	}
	now := b.now()
	b.pruneLocked(now)
	w = b.windows[len(b.windows)-1]
	return w, max(w.Limit-b.inFlight-len(b.recentLocked(now, w.Period)), 0), true
}

// Windows returns the budget's windows, shortest first.
func (b *Budget) Windows() []Window {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Window(nil), b.windows...)
}

// WaitRoom blocks until the longest window has n free slots (at most its limit), or ctx
// ends. It takes no slot: it is how a sender that must not split a batch of calls across
// windows (apply's waves) waits for the window to make room for the whole batch.
func (b *Budget) WaitRoom(ctx context.Context, n int) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for API budget: %w", err)
		}
		b.mu.Lock()
		if len(b.windows) == 0 {
			b.mu.Unlock()
			return nil
		}
		now := b.now()
		b.pruneLocked(now)
		w := b.windows[len(b.windows)-1]
		recent := b.recentLocked(now, w.Period)
		excess := b.inFlight + len(recent) - (w.Limit - min(n, w.Limit))
		if excess <= 0 {
			b.mu.Unlock()
			return nil
		}
		var wait time.Duration // 0: only a release can make room
		if excess <= len(recent) {
			wait = max(recent[excess-1].Add(w.Period).Sub(now), time.Millisecond)
		}
		changed := b.changed
		b.mu.Unlock()

		var timer *time.Timer
		var expired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// Time returns how long sending waves of calls takes from now at the budget's limits:
// each call as soon as every window has a free slot, and each wave after the first only
// once the longest window has room for all of it (at most its limit), as apply sends
// waves. Calls are taken to be instant (latency is not counted) and those in flight to
// finish now, so the figure is the least time the limits allow.
func (b *Budget) Time(waves []int) time.Duration {
	b.mu.Lock()
	now := b.now()
	b.pruneLocked(now)
	done := append([]time.Time(nil), b.done...)
	for range b.inFlight {
		done = append(done, now)
	}
	windows := append([]Window(nil), b.windows...)
	b.mu.Unlock()

	t := now
	for i, n := range waves {
		if i > 0 && len(windows) > 0 {
			t = earliestFree(done, t, windows[len(windows)-1], n)
		}
		for range n {
			for moved := true; moved; {
				moved = false
				for _, w := range windows {
					if u := earliestFree(done, t, w, 1); u.After(t) {
						t, moved = u, true
					}
				}
			}
			done = append(done, t) // t never goes back, so done stays sorted
		}
	}
	return t.Sub(now)
}

// earliestFree is the first instant from t on at which window w has need free slots
// (at most its limit), given the completion times done (sorted, none after t).
func earliestFree(done []time.Time, t time.Time, w Window, need int) time.Time {
	cut := t.Add(-w.Period)
	i := sort.Search(len(done), func(i int) bool { return done[i].After(cut) })
	excess := len(done) - i - (w.Limit - min(need, w.Limit))
	if excess <= 0 {
		return t
	}
	return done[i+excess-1].Add(w.Period)
}
