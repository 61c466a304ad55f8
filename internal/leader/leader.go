package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Backend names how leadership is decided; it is the "backend" field of Status.
type Backend string

// Backends.
const (
	// BackendNone is a single replica without election: it is always the writer.
	BackendNone Backend = "none"
	// BackendLease is a Kubernetes coordination.k8s.io/v1 Lease.
	BackendLease Backend = "lease"
	// BackendFile is an flock(2) on a lock file on a volume the replicas share.
	BackendFile Backend = "file"
)

// Role is this replica's part, as /status and metrics report it.
type Role string

// Roles.
const (
	// RoleNone: no election is configured; the replica writes as the only one.
	RoleNone Role = "none"
	// RoleLeader: this replica holds the lease or lock and may write.
	RoleLeader Role = "leader"
	// RoleFollower: another replica leads (or nobody yet); this one must not write.
	RoleFollower Role = "follower"
)

// Default timings, the ones Kubernetes' own controllers use.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Callbacks are what an Elector tells the daemon. Every field is optional.
type Callbacks struct {
	// OnStartedLeading is called, on a goroutine of its own, when this replica becomes
	// the leader. ctx is cancelled as soon as the term ends: the lease was lost, its
	// renew deadline passed, or Run's context was cancelled. On shutdown the lock is
	// released only after OnStartedLeading has returned, so it must return promptly
	// once ctx is done.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading is called once at the end of each term that OnStartedLeading
	// began, after the term's context was cancelled. It is not called for a replica
	// that never led.
	OnStoppedLeading func()
	// OnNewLeader is called when the observed leader changes, with its identity ("" when
	// the lock was released and nobody holds it yet). It includes this replica.
	OnNewLeader func(identity string)
}

// Status is the election state for /status and metrics.
type Status struct {
	Backend  Backend `json:"backend"`
	Role     Role    `json:"role"`
	Identity string  `json:"identity"`         // this replica
	Leader   string  `json:"leader,omitempty"` // the observed leader; "" when unknown
	// Writing is what Writing() said when the status was taken.
	Writing bool `json:"writing"`
	// Transitions counts the times this replica became or stopped being the leader.
	Transitions int64 `json:"transitions"`
	// LeaderChanges counts the times the observed leader changed.
	LeaderChanges int64 `json:"leader_changes"`
	// RenewedAt is the last time this replica acquired or renewed its lease or lock
	// (zero when it does not lead); writing stops at RenewedAt + renew deadline.
	RenewedAt time.Time `json:"renewed_at,omitzero"`
}

// Elector decides whether this replica is the one that writes.
type Elector interface {
	// Run takes part in the election until ctx is cancelled, calling cb as leadership
	// comes and goes. A lost lease makes the replica a follower again, still
	// campaigning; Run returns nil when ctx is cancelled (after releasing the lock if
	// it held it) and an error only when the election cannot run at all. Run is called
	// at most once.
	Run(ctx context.Context, cb Callbacks) error
	// IsLeader reports whether a term is in progress on this replica.
	IsLeader() bool
	// Writing reports whether this replica may write now: it leads and its last
	// successful renewal is younger than the renew deadline. It is judged by the
	// clock, not only by callbacks, so a replica whose renewals stall stops writing
	// before any other replica can acquire the lease. Call it (or Guard) before each
	// write.
	Writing() bool
	// Guard returns nil when this replica may write now, ctx.Err() when ctx is done,
	// and a *NotLeaderError otherwise.
	Guard(ctx context.Context) error
	// Leader returns the identity of the observed leader; "" when unknown.
	Leader() string
	// Identity returns this replica's identity in the election.
	Identity() string
	// Status returns the state for /status and metrics.
	Status() Status
}

// NotLeaderError is Guard's answer when this replica must not write.
type NotLeaderError struct {
	Identity string // this replica
	Leader   string // the observed leader; "" when unknown
	// Expired is true when this replica still believes it leads but its last renewal
	// is older than the renew deadline.
	Expired bool
}

func (e *NotLeaderError) Error() string {
	switch {
	case e.Expired:
		return fmt.Sprintf("replica %s: leadership renewal overdue: not writing", e.Identity)
	case e.Leader == "":
		return fmt.Sprintf("replica %s is not the leader: not writing", e.Identity)
	}
	return fmt.Sprintf("replica %s is not the leader (%s is): not writing", e.Identity, e.Leader)
}

// ConfigError is a configuration an elector cannot run with.
type ConfigError struct {
	Field  string // "LeaseDuration", "Namespace", "Path", …
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("leader election: %s: %s", e.Field, e.Reason)
}

// Timings bound how leadership is held and lost.
type Timings struct {
	// LeaseDuration is how long another replica waits without seeing a renewal before
	// it takes the lease over. Lease backend only: a lock file is taken over as soon as
	// its holder's process dies. Default 15s; whole seconds.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps writing without a successful renewal
	// (of the Lease, or of the lock file's heartbeat). Default 10s; must be shorter
	// than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is how often renewals and takeover attempts are made. Default 2s.
	RetryPeriod time.Duration
}

func (t Timings) withDefaults() Timings {
	if t.LeaseDuration == 0 {
		t.LeaseDuration = DefaultLeaseDuration
	}
	if t.RenewDeadline == 0 {
		t.RenewDeadline = DefaultRenewDeadline
	}
	if t.RetryPeriod == 0 {
		t.RetryPeriod = DefaultRetryPeriod
	}
	return t
}

// validate checks the rules client-go enforces (JitterFactor 1.2), for both backends,
// so a lock file and a Lease accept the same settings.
func (t Timings) validate() error {
	switch {
	case t.LeaseDuration < 0 || t.RenewDeadline < 0 || t.RetryPeriod < 0:
		return &ConfigError{Field: "Timings", Reason: "durations must not be negative"}
	case t.LeaseDuration%time.Second != 0:
		return &ConfigError{Field: "LeaseDuration", Reason: fmt.Sprintf("%s: must be whole seconds (the Lease stores seconds)", t.LeaseDuration)}
	case t.LeaseDuration <= t.RenewDeadline:
		return &ConfigError{Field: "RenewDeadline", Reason: fmt.Sprintf("%s: must be shorter than the lease duration %s", t.RenewDeadline, t.LeaseDuration)}
	case float64(t.RenewDeadline) <= 1.2*float64(t.RetryPeriod):
		return &ConfigError{Field: "RetryPeriod", Reason: fmt.Sprintf("%s: the renew deadline %s must exceed 1.2 × the retry period", t.RetryPeriod, t.RenewDeadline)}
	}
	return nil
}

// NewIdentity returns a replica identity: the pod or host name (HOSTNAME, else
// os.Hostname) and a random suffix, so that a restarted pod with the same name is
// never mistaken for its predecessor.
func NewIdentity() string {
	host := os.Getenv("HOSTNAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "flagsync"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return host + "_" + hex.EncodeToString(b[:])
}

// term is one period of leadership.
type term struct {
	cancel  context.CancelFunc
	done    chan struct{} // closed when OnStartedLeading has returned
	ended   chan struct{} // closed when the term ends
	stopped bool          // the term has ended (OnStoppedLeading called or calling)
}

// state is what every backend shares: the role, the clock-based write guard and the
// bookkeeping of terms.
type state struct {
	backend       Backend
	identity      string
	renewDeadline time.Duration
	now           func() time.Time
	log           *slog.Logger

	mu            sync.Mutex
	cb            Callbacks
	term          *term // the current or last term; nil before the first
	leader        string
	renewedAt     time.Time
	transitions   int64
	leaderChanges int64
}

func newState(backend Backend, identity string, renewDeadline time.Duration, now func() time.Time, log *slog.Logger) *state {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &state{backend: backend, identity: identity, renewDeadline: renewDeadline, now: now, log: log}
}

func (s *state) setCallbacks(cb Callbacks) {
	s.mu.Lock()
	s.cb = cb
	s.mu.Unlock()
}

// leading reports whether a term is in progress; s.mu held.
func (s *state) leading() bool { return s.term != nil && !s.term.stopped }

// startTerm begins a term whose last renewal was at renewedAt and runs
// OnStartedLeading with the term's context. It returns the term, or nil when one is
// already in progress.
func (s *state) startTerm(parent context.Context, renewedAt time.Time) *term {
	s.mu.Lock()
	if s.leading() {
		s.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(parent)
	t := &term{cancel: cancel, done: make(chan struct{}), ended: make(chan struct{})}
	s.term = t
	s.renewedAt = renewedAt
	s.transitions++
	cb := s.cb
	s.mu.Unlock()

	s.observe(s.identity)
	s.log.Info("became leader", "identity", s.identity, "backend", string(s.backend))
	go func() {
		defer close(t.done)
		if cb.OnStartedLeading != nil {
			cb.OnStartedLeading(ctx)
		}
	}()
	return t
}

// renewed records a successful renewal at t if a term is in progress.
func (s *state) renewed(at time.Time) {
	s.mu.Lock()
	if s.leading() && at.After(s.renewedAt) {
		s.renewedAt = at
	}
	s.mu.Unlock()
}

// endTerm ends t, if it is still in progress: its context is cancelled first, then
// OnStoppedLeading is called. A graceful end (shutdown) is logged as information, any
// other as a warning. It reports whether it ended the term.
func (s *state) endTerm(t *term, reason string, graceful bool) bool {
	s.mu.Lock()
	if t == nil || t.stopped {
		s.mu.Unlock()
		return false
	}
	t.stopped = true
	t.cancel()
	close(t.ended)
	s.transitions++
	s.renewedAt = time.Time{}
	if s.leader == s.identity {
		s.leader = ""
	}
	cb := s.cb
	s.mu.Unlock()

	level := slog.LevelWarn
	if graceful {
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "stopped leading", "identity", s.identity, "backend", string(s.backend), "reason", reason)
	if cb.OnStoppedLeading != nil {
		cb.OnStoppedLeading()
	}
	return true
}

// current returns the current or last term.
func (s *state) current() *term {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// observe records the observed leader and calls OnNewLeader when it changed.
func (s *state) observe(identity string) {
	s.mu.Lock()
	if identity == s.leader {
		s.mu.Unlock()
		return
	}
	s.leader = identity
	s.leaderChanges++
	cb := s.cb
	s.mu.Unlock()
	if identity != "" && identity != s.identity {
		s.log.Info("following", "identity", s.identity, "leader", identity, "backend", string(s.backend))
	}
	if cb.OnNewLeader != nil {
		cb.OnNewLeader(identity)
	}
}

// expiry returns when writing must stop, and whether a term is in progress.
func (s *state) expiry() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewedAt.Add(s.renewDeadline), s.leading()
}

// IsLeader reports whether a term is in progress on this replica.
func (s *state) IsLeader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading()
}

// Writing reports whether this replica leads and renewed within the renew deadline.
func (s *state) Writing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writingLocked()
}

func (s *state) writingLocked() bool {
	return s.leading() && s.now().Before(s.renewedAt.Add(s.renewDeadline))
}

// Guard returns nil when this replica may write now.
func (s *state) Guard(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writingLocked() {
		return nil
	}
	return &NotLeaderError{Identity: s.identity, Leader: s.leader, Expired: s.leading()}
}

// Leader returns the observed leader.
func (s *state) Leader() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// Identity returns this replica's identity.
func (s *state) Identity() string { return s.identity }

// Status returns the state for /status and metrics.
func (s *state) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Backend:       s.backend,
		Role:          RoleFollower,
		Identity:      s.identity,
		Leader:        s.leader,
		Writing:       s.writingLocked(),
		Transitions:   s.transitions,
		LeaderChanges: s.leaderChanges,
	}
	if s.leading() {
		st.Role, st.RenewedAt = RoleLeader, s.renewedAt
	}
	return st
}

// watchdog ends t once its renew deadline passes without a renewal, then calls
// abandon so the backend stops holding the lock. It returns when t ends.
func (s *state) watchdog(t *term, abandon func()) {
	timer := time.NewTimer(s.renewDeadline)
	defer timer.Stop()
	for {
		deadline, leading := s.expiry()
		if !leading || s.current() != t {
			return
		}
		wait := deadline.Sub(s.now())
		if wait <= 0 {
			if s.endTerm(t, "renew deadline passed without a renewal", false) {
				abandon()
			}
			return
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-t.ended:
			return
		}
	}
}

// waitTerm waits for the term's OnStartedLeading to return, warning when that takes
// longer than the renew deadline: the lock is held until it does.
func (s *state) waitTerm(t *term) {
	if t == nil {
		return
	}
	select {
	case <-t.done:
		return
	case <-time.After(s.renewDeadline):
		s.log.Warn("waiting for the leader's work to stop before releasing the lock", "identity", s.identity)
	}
	<-t.done
}
