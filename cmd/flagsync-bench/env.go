package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/sandbox"
)

// clock runs scale times faster than the wall clock, so that the API's rate windows
// (10 seconds, 1 hour) pass scale times sooner while their limits stay Kameleoon's.
type clock struct {
	start time.Time
	scale float64

	mu   sync.Mutex
	skip time.Duration // scaled time jumped over by Advance
}

func newClock(scale float64) *clock { return &clock{start: time.Now(), scale: scale} }

// Now is the scaled time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(c.skip + time.Duration(float64(time.Since(c.start))*c.scale))
}

// Advance jumps the scaled time forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.skip += d
	c.mu.Unlock()
}

// real converts a scaled duration to wall-clock time.
func (c *clock) real(d time.Duration) time.Duration { return time.Duration(float64(d) / c.scale) }

// env is a sandbox with Kameleoon's rate limits on a scaled clock, served over real HTTP
// on a loopback port so that every call goes through the client's whole stack.
type env struct {
	clock   *clock
	sandbox *sandbox.Server
	url     string
	srv     *http.Server
}

func newEnv(scale float64) (*env, error) {
	c := newClock(scale)
	sb, err := sandbox.New(sandbox.Options{Now: c.Now}) // rate limits: Kameleoon's 50/10 s and 1,000/h
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

func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
}

// client returns a new API client, as a new flagsync process would have: a fresh budget
// of Kameleoon's limits over windows shortened by the time scale, backoff shortened
// alike, and the scaled clock for token expiry. Every HTTP exchange is recorded in m.
func (e *env) client(m *meter) (*api.Client, error) {
	return api.New(api.Config{
		BaseURL:      e.url,
		ClientID:     sandbox.DefaultClientID,
		ClientSecret: sandbox.DefaultClientSecret,
		Budget: api.NewBudgetWindows(
			api.Window{Limit: api.DefaultPer10s, Period: e.clock.real(10 * time.Second)},
			api.Window{Limit: api.DefaultPerHour, Period: e.clock.real(time.Hour)},
		),
		BackoffBase: e.clock.real(api.DefaultBackoffBase),
		BackoffMax:  e.clock.real(api.DefaultBackoffMax),
		MaxElapsed:  2 * time.Hour, // on the scaled clock, as the client measures it
		Now:         e.clock.Now,
		Observer:    m.observe,
		Logger:      slog.New(slog.DiscardHandler),
	})
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

// mark returns how many exchanges were recorded so far.
func (m *meter) mark() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// since returns the exchanges recorded after mark.
func (m *meter) since(mark int) []api.CallInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]api.CallInfo(nil), m.calls[mark:]...)
}
