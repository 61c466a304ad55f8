package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// clock runs scale times faster than the wall clock, so that the API's rate windows
// (10 seconds, 1 hour) pass scale times sooner while their limits stay Kameleoon's. The
// scale can change between measurements (SetScale); the clock never goes back.
type clock struct {
	mu     sync.Mutex
	base   time.Time // the scaled time at wallAt
	wallAt time.Time // wall time of the last change of scale
	scale  float64
}

func newClock(scale float64) *clock {
	now := time.Now()
	return &clock{base: now, wallAt: now, scale: scale}
}

// Now is the scaled time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *clock) nowLocked() time.Time {
	return c.base.Add(time.Duration(float64(time.Since(c.wallAt)) * c.scale))
}

// Advance jumps the scaled time forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.base = c.base.Add(d)
	c.mu.Unlock()
}

// SetScale makes the clock run scale times faster than the wall clock from now on.
// Clients made before keep the windows of the old scale: make new ones.
func (c *clock) SetScale(scale float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.nowLocked()
	c.wallAt = time.Now()
	c.scale = scale
}

// scaleNow returns the current scale.
func (c *clock) scaleNow() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scale
}

// real converts a scaled duration to wall-clock time at the current scale.
func (c *clock) real(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(float64(d) / c.scale)
}

// env is a sandbox with Kameleoon's rate limits on a scaled clock, served over real HTTP
// on a loopback port so that every call goes through the client's whole stack.
type env struct {
	clock   *clock
	sandbox *ksandbox.Server
	url     string
	srv     *http.Server
}

func newEnv(scale float64) (*env, error) {
	c := newClock(scale)
	sb, err := ksandbox.New(ksandbox.Options{Now: c.Now}) // rate limits: Kameleoon's 50/10 s and 1,000/h
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &env{clock: c, sandbox: sb, url: "http://" + ln.Addr().String(), srv: srv}, nil
}

// close stops the server at once: a graceful Shutdown would wait up to 5 s for
// connections a client opened but never used.
func (e *env) close() { _ = e.srv.Close() }

// clientAt returns a new API client, as a new flagsync process would have: a fresh budget
// of Kameleoon's limits over windows shortened by the time scale, backoff shortened
// alike, and the scaled clock for token expiry. Every HTTP exchange is recorded in m.
// The clock runs scale times faster than the wall clock, with
// latency (on that clock) added to every HTTP exchange, half before the request is sent
// and half after its response arrived, as a network between flagsync and Kameleoon
// would: the budget slot is held throughout.
//
// The clock is set to scale when the client sends its first request, not before: what
// a sync does before it calls the API (loading the files) is CPU-bound and must not be
// stretched by the scale when the time is brought back to real time. Callers set the
// clock to 1 beforehand for that.
func (e *env) clientAt(m *meter, latency time.Duration, scale float64) (*kclient.Client, error) {
	wall := func(d time.Duration) time.Duration { return time.Duration(float64(d) / scale) }
	return kclient.New(kclient.Config{
		BaseURL:      e.url,
		ClientID:     ksandbox.DefaultClientID,
		ClientSecret: ksandbox.DefaultClientSecret,
		HTTPClient: &http.Client{Transport: &latencyTransport{next: newTransport(), latency: wall(latency),
			first: func() { e.clock.SetScale(scale) }}},
		Budget: api.NewBudgetWindows(
			api.Window{Limit: kclient.DefaultPer10s, Period: wall(10 * time.Second)},
			api.Window{Limit: kclient.DefaultPerHour, Period: wall(time.Hour)},
		),
		BackoffBase: wall(kclient.DefaultBackoffBase),
		BackoffMax:  wall(kclient.DefaultBackoffMax),
		MaxElapsed:  2 * time.Hour, // on the scaled clock, as the client measures it
		Now:         e.clock.Now,
		Observer:    m.observe,
		Logger:      slog.New(slog.DiscardHandler),
	})
}

// newTransport is http.DefaultTransport with enough idle connections kept for the
// benchmark's concurrency: with the default two, thousands of calls at a concurrency of
// 10 would open (and leave in TIME_WAIT) a loopback connection for most calls.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}

// latencyTransport delays every exchange by latency: half before sending, half after
// the response headers arrived. first, when set, is called once, before the first
// request is sent.
type latencyTransport struct {
	next    http.RoundTripper
	latency time.Duration
	first   func()
	once    sync.Once
}

func (t *latencyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.first != nil {
		t.once.Do(t.first)
	}
	if t.latency <= 0 {
		return t.next.RoundTrip(r)
	}
	half := t.latency / 2
	if err := sleep(r.Context(), half); err != nil {
		return nil, err
	}
	res, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if err := sleep(r.Context(), t.latency-half); err != nil {
		_ = res.Body.Close()
		return nil, err
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seedClient returns a client for setting the sandbox up, not for measuring: it has no
// budget, and the sandbox's clock jumps three minutes after every 40 of its calls, so
// that the sandbox's rate limits (50 per 10 s, 1,000 per hour on that clock: at most 47
// calls land in 10 s, 800 in an hour) never refuse one and thousands of flags are
// created or read in seconds. The jumps are short against the token's life (2 h), so a
// token that expires between two jumps is renewed by the client's one retry after a 401.
func (e *env) seedClient() (*kclient.Client, error) {
	var calls atomic.Int64
	return kclient.New(kclient.Config{
		BaseURL:      e.url,
		ClientID:     ksandbox.DefaultClientID,
		ClientSecret: ksandbox.DefaultClientSecret,
		HTTPClient:   &http.Client{Transport: newTransport()},
		Budget:       api.NewBudgetWindows(), // no window: no limit
		BackoffBase:  time.Millisecond,
		BackoffMax:   10 * time.Millisecond,
		Now:          e.clock.Now,
		Observer: func(api.CallInfo) {
			if calls.Add(1)%40 == 0 {
				e.clock.Advance(3 * time.Minute)
			}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
}

// seedConcurrency is how many creates seed sends at once: with 40 calls between two
// clock jumps, at most 47 land in one sandbox window.
const seedConcurrency = 8

// seed creates the flags of fsys in the sandbox with the requests flagsync's first sync
// would send (the plan against an empty account), with seedClient. Afterwards the clock
// is an hour on, so that the sandbox's windows are empty, and the call log is empty.
func (e *env) seed(ctx context.Context, fsys fs.FS) error {
	desired, err := kload.Load(fsys, ".")
	if err != nil {
		return fmt.Errorf("seed the sandbox: %w", err)
	}
	p, err := kplan.Compute(desired, nil, kplan.OptionsFor(desired.Settings))
	if err != nil {
		return fmt.Errorf("seed the sandbox: %w", err)
	}
	c, err := e.seedClient()
	if err != nil {
		return fmt.Errorf("seed the sandbox: %w", err)
	}
	out := apply.Plan(ctx, c, p, apply.Options{Concurrency: seedConcurrency, Logger: slog.New(slog.DiscardHandler)})
	for _, r := range out.Results {
		if r.Status != apply.Applied {
			return fmt.Errorf("seed the sandbox: %s %s: %s %v", r.Change.Action, r.Change.Flag(), r.Status, r.Err)
		}
	}
	e.clock.Advance(time.Hour)
	e.sandbox.ResetCalls()
	return nil
}

// meter records the client's HTTP exchanges.
type meter struct {
	mu    sync.Mutex
	calls []api.CallInfo
}

func (m *meter) observe(ci api.CallInfo) {
	m.mu.Lock()
	m.calls = append(m.calls, ci)
	m.mu.Unlock()
}

// since returns the exchanges recorded after mark.
func (m *meter) since(mark int) []api.CallInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]api.CallInfo(nil), m.calls[mark:]...)
}
