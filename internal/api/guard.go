package api

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// A write guard stops a replica that lost its right to write (a leader whose lease
// lapsed) before its next HTTP request, retries of a call already under way included:
// a call can spend minutes in backoff, longer than any lease.

type guardKey struct{}

// WithGuard returns ctx carrying guard. A Caller asks guard before every HTTP attempt it
// makes for a call with that context, once the attempt's budget slot is granted and
// right before the request goes out; an error stops the call with a *GuardError, and
// nothing is sent.
func WithGuard(ctx context.Context, guard func(context.Context) error) context.Context {
	if guard == nil {
		return ctx
	}
	return context.WithValue(ctx, guardKey{}, guard)
}

func guardFrom(ctx context.Context) func(context.Context) error {
	g, _ := ctx.Value(guardKey{}).(func(context.Context) error)
	return g
}

// GuardError is a call the context's guard (WithGuard) stopped before it was sent.
type GuardError struct {
	Method, Path string
	Err          error // the guard's answer
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("%s %s: not sent: %v", e.Method, e.Path, e.Err)
}

// Unwrap returns the guard's answer.
func (e *GuardError) Unwrap() error { return e.Err }

// guardStopped reports whether the guard stopped a call: it is never retried.
func guardStopped(err error) bool {
	var g *GuardError
	return errors.As(err, &g)
}

// userAgent is the User-Agent every Caller sends; see SetUserAgent.
var userAgent atomic.Pointer[string]

// DefaultUserAgent is the User-Agent sent until SetUserAgent is called.
const DefaultUserAgent = "flagsync"

// SetUserAgent sets the User-Agent header every Caller of the process sends, e.g.
// "flagsync/v1.2.0 (replica pod-7_ab12cd34)". It is process-wide on purpose: it names
// the process to the servers it calls, so that their logs tell replicas apart. An empty
// value restores DefaultUserAgent.
func SetUserAgent(ua string) {
	if ua == "" {
		userAgent.Store(nil)
		return
	}
	userAgent.Store(&ua)
}

// UserAgent returns the User-Agent Callers send.
func UserAgent() string {
	if p := userAgent.Load(); p != nil {
		return *p
	}
	return DefaultUserAgent
}
