package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultAttempts = 3
	DefaultBackoff  = time.Second
	// maxRetryAfter bounds how long a receiver's Retry-After can hold a sync's
	// notifications.
	maxRetryAfter = 30 * time.Second
)

// Config configures a Notifier.
type Config struct {
	Sinks []Sink
	// PlanURL is a link template for the plan of a revision, e.g.
	// "https://ci.example.com/flagsync/plans/{revision}"; {revision}, {scope} and
	// {kind} are replaced. Empty: messages carry no link.
	PlanURL string
	// Client sends the messages. Default: a client without a global timeout (each
	// attempt has Timeout).
	Client *http.Client
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration
	// Attempts is how many times a message is tried: a network error, a 5xx or a 429
	// is retried, any other answer is final. Default 3.
	Attempts int
	// Backoff is the wait before the first retry, doubled for each further one; a 429's
	// Retry-After (up to 30s) takes its place. Default 1s.
	Backoff time.Duration
	// Logger receives one line per delivery that failed and one per message sent.
	// Default: discard.
	Logger *slog.Logger
	// Now stamps events and attempts. Default time.Now.
	Now func() time.Time
	// Observe, when set, is called once per message and sink with the outcome, for
	// metrics.
	Observe func(sink string, kind Kind, delivered bool)
}

// Notifier turns sync outcomes into notifications, sending each only when the state of
// its scope changed. It is safe for concurrent use; outcomes of one scope should be
// reported in order.
type Notifier struct {
	sinks    []Sink
	planURL  string
	client   *http.Client
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	log      *slog.Logger
	now      func() time.Time
	observe  func(string, Kind, bool)

	mu     sync.Mutex
	scopes map[string]*scopeState
	stats  Stats
}

// scopeState is what was last notified about a scope.
type scopeState struct {
	failed    bool   // sync_failed was sent and no success since
	unhealthy bool   // something other than "converged" was sent since the last recovered
	drift     string // the drift last seen ("" none)
	refused   string // the refused set last seen ("" none)
}

// Stats counts messages, for metrics.
type Stats struct {
	Sent   int64 // deliveries a receiver accepted
	Failed int64 // deliveries given up on
}

// New checks cfg and returns a Notifier. A Notifier without sinks is valid and sends
// nothing.
func New(cfg Config) (*Notifier, error) {
	for i, s := range cfg.Sinks {
		if s == nil {
			return nil, fmt.Errorf("notification sink %d: nil", i)
		}
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("notification sink %s: %w", s.SinkName(), err)
		}
	}
	n := &Notifier{
		sinks: cfg.Sinks, planURL: cfg.PlanURL, client: cfg.Client, timeout: cfg.Timeout,
		attempts: cfg.Attempts, backoff: cfg.Backoff, log: cfg.Logger, now: cfg.Now, observe: cfg.Observe,
		scopes: map[string]*scopeState{},
	}
	if cfg.PlanURL != "" {
		if err := checkURL(expandPlanURL(cfg.PlanURL, Event{Revision: "0"})); err != nil {
			return nil, fmt.Errorf("plan URL template: %w", err)
		}
	}
	if n.client == nil {
		n.client = &http.Client{}
	}
	if n.timeout <= 0 {
		n.timeout = DefaultTimeout
	}
	if n.attempts <= 0 {
		n.attempts = DefaultAttempts
	}
	if n.backoff <= 0 {
		n.backoff = DefaultBackoff
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	return n, nil
}

// Report is what one Observe did. Failures are for metrics and logs only: a
// notification failure never fails a sync.
type Report struct {
	Events   []Event          // the events the outcome caused (sent or not)
	Failures []*DeliveryError // deliveries given up on
}

// DeliveryError is a message a sink did not accept after all attempts. It names the
// sink, never its URL or secret.
type DeliveryError struct {
	Sink     string
	Kind     Kind
	Attempts int
	Status   int   // the last HTTP status; 0 when no response came
	Err      error // the last transport error, when there was no response
}

func (e *DeliveryError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("notify %s of %s: %d attempt(s): status %d", e.Sink, e.Kind, e.Attempts, e.Status)
	}
	return fmt.Sprintf("notify %s of %s: %d attempt(s): %v", e.Sink, e.Kind, e.Attempts, e.Err)
}

// Unwrap returns the transport error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Observe records the outcome of a sync of o.Scope and sends the notifications it
// causes: sync_failed when a scope starts failing, drift_found and refused_changes for
// each new drift or refused set, recovered when a scope that was in any of those
// states is converged again. An outcome that changes nothing sends nothing.
// Deliveries happen before Observe returns, bounded by Attempts × Timeout plus the
// backoff; errors are logged, counted and returned in the Report.
func (n *Notifier) Observe(ctx context.Context, o Outcome) Report {
	events := n.transition(o)
	rep := Report{Events: events}
	for _, ev := range events {
		for _, s := range n.sinks {
			if !s.Wants(ev.Kind) {
				continue
			}
			if err := n.deliver(ctx, s, ev); err != nil {
				rep.Failures = append(rep.Failures, err)
			}
		}
	}
	return rep
}

// transition updates the scope's state and returns the events of the change.
func (n *Notifier) transition(o Outcome) []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.scopes[o.Scope]
	if st == nil {
		st = &scopeState{}
		n.scopes[o.Scope] = st
	}
	var kinds []Kind
	if o.Failed {
		if !st.failed {
			kinds = append(kinds, SyncFailed)
		}
		st.failed, st.unhealthy = true, true
	} else {
		st.failed = false
		if o.Drift != "" && o.Drift != st.drift {
			kinds = append(kinds, DriftFound)
		}
		if o.Refused != "" && o.Refused != st.refused {
			kinds = append(kinds, RefusedChanges)
		}
		st.drift, st.refused = o.Drift, o.Refused
		switch {
		case !o.converged():
			st.unhealthy = true
		case st.unhealthy:
			kinds = append(kinds, Recovered)
			st.unhealthy = false
		}
	}
	now := n.now()
	events := make([]Event, 0, len(kinds))
	for _, k := range kinds {
		ev := Event{Kind: k, Scope: o.Scope, Revision: o.Revision, Summary: o.Summary, Time: now}
		ev.PlanURL = expandPlanURL(n.planURL, ev)
		events = append(events, ev)
	}
	return events
}

// deliver sends ev to s with bounded retries.
func (n *Notifier) deliver(ctx context.Context, s Sink, ev Event) *DeliveryError {
	id := newMessageID()
	derr := &DeliveryError{Sink: s.SinkName(), Kind: ev.Kind}
	wait := n.backoff
	for attempt := 1; attempt <= n.attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			derr.Err = err
			break
		}
		derr.Attempts = attempt
		status, retryAfter, err := n.attempt(ctx, s, ev, id)
		derr.Status, derr.Err = status, err
		if err == nil && status >= 200 && status < 300 {
			n.count(s, ev, true)
			n.log.Info("notification sent", "sink", s.SinkName(), "kind", string(ev.Kind), "scope", ev.Scope, "revision", ev.Revision, "attempts", attempt)
			return nil
		}
		if err == nil && !retryable(status) {
			break
		}
		if attempt == n.attempts {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = min(retryAfter, maxRetryAfter)
		}
		wait *= 2
		select {
		case <-ctx.Done():
			derr.Err = ctx.Err()
			attempt = n.attempts // stop
		case <-time.After(d):
		}
	}
	if derr.Status != 0 {
		derr.Err = nil
	}
	n.count(s, ev, false)
	n.log.Warn("notification not delivered", "sink", s.SinkName(), "kind", string(ev.Kind), "scope", ev.Scope, "revision", ev.Revision, "err", derr.Error())
	return derr
}

func (n *Notifier) count(s Sink, ev Event, ok bool) {
	n.mu.Lock()
	if ok {
		n.stats.Sent++
	} else {
		n.stats.Failed++
	}
	n.mu.Unlock()
	if n.observe != nil {
		n.observe(s.SinkName(), ev.Kind, ok)
	}
}

// Stats returns the delivery counts so far.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// attempt makes one delivery attempt: the status, a Retry-After when one was given,
// or a transport error with the URL taken out (a Slack URL is a secret).
func (n *Notifier) attempt(ctx context.Context, s Sink, ev Event, id string) (int, time.Duration, error) {
	req, err := s.request(ev, id, n.now())
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	resp, err := n.client.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var after time.Duration
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		after = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, after, nil
}
