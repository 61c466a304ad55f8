package leader

import (
	"context"
	"log/slog"
	"time"
)

// Single is the Elector of a replica that runs without election: it is always the
// leader and always writing. Use it when one replica is all there is.
type Single struct {
	*state
}

// NewSingle returns the Elector of a lone replica with the given identity (NewIdentity
// when empty).
func NewSingle(identity string, log *slog.Logger) *Single {
	if identity == "" {
		identity = NewIdentity()
	}
	return &Single{state: newState(BackendNone, identity, 0, nil, log)}
}

// Run starts the one term at once and ends it when ctx is cancelled, after
// OnStartedLeading has returned.
func (e *Single) Run(ctx context.Context, cb Callbacks) error {
	e.setCallbacks(cb)
	t := e.startTerm(ctx, time.Now())
	<-ctx.Done()
	e.endTerm(t, "shutting down", true)
	e.waitTerm(t)
	return nil
}

// IsLeader is always true: a lone replica leads.
func (e *Single) IsLeader() bool { return true }

// Writing is always true: nothing can take a lone replica's place.
func (e *Single) Writing() bool { return true }

// Guard returns ctx.Err(): a lone replica may always write.
func (e *Single) Guard(ctx context.Context) error { return ctx.Err() }

// Leader returns this replica's identity.
func (e *Single) Leader() string { return e.identity }

// Status reports role "none", writing.
func (e *Single) Status() Status {
	st := e.state.Status()
	st.Role, st.Leader, st.Writing, st.RenewedAt = RoleNone, e.identity, true, time.Time{}
	return st
}
