package daemon

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/leader"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// retryState is the self-retry of a failed or unconverged sync, kept by the loop: a
// failure schedules a retry on a bounded, jittered backoff, whatever the schedule says;
// a sync or check that ends as it should clears it.
type retryState struct {
	rev       string    // the revision the streak is about: a new one starts a new streak
	attempt   int       // retries scheduled for this streak of failures
	next      time.Time // when the next one is due; zero when none is
	reason    string    // why: the failed sync's error
	exhausted bool      // the last allowed retry failed too: the next trigger tries again
}

// Retry is the self-retry state /status shows.
type Retry struct {
	Attempt     int        `json:"attempt"`     // retries scheduled so far for this streak
	MaxAttempts int        `json:"maxAttempts"` // the most it schedules
	Next        *time.Time `json:"next,omitempty"`
	Reason      string     `json:"reason"`
	// Exhausted: every retry failed; the next scheduled sync, drift check, push or
	// signal tries again.
	Exhausted bool `json:"exhausted"`
}

func (r *retryState) reset() { *r = retryState{} }

// retryDelay is the wait before retry n (from 1): base doubled n-1 times, at most max,
// plus up to a quarter more at random.
func retryDelay(n int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d + rand.N(d/4+1)
}

// afterCycle schedules a retry after a sync that needs one, and clears the retry state
// after one that ended as it should.
func (d *Daemon) afterCycle(c *cycle) {
	st := &d.loop.retry
	switch {
	case !c.leading:
		st.reset()
	case c.retry:
		if st.rev != c.rev {
			st.reset()
			st.rev = c.rev
		}
		if st.exhausted {
			break
		}
		st.attempt++
		st.reason = c.rec.Error
		if st.attempt > d.cfg.RetryAttempts {
			st.attempt, st.next, st.exhausted = d.cfg.RetryAttempts, time.Time{}, true
			c.log.Warn("sync failed after every retry; the next trigger tries again", "retries", d.cfg.RetryAttempts, "error", st.reason)
			break
		}
		wait := retryDelay(st.attempt, d.cfg.RetryBase, d.cfg.RetryMax)
		st.next = time.Now().Add(wait)
		c.log.Info("sync will be retried", "retry", st.attempt, "of", d.cfg.RetryAttempts, "in", wait.Round(time.Millisecond).String())
	case c.ok:
		if st.attempt > 0 {
			c.log.Info("sync recovered", "after_retries", st.attempt)
		}
		st.reset()
	}
	var pub *Retry
	if st.attempt > 0 || st.exhausted {
		pub = &Retry{Attempt: st.attempt, MaxAttempts: d.cfg.RetryAttempts, Reason: st.reason, Exhausted: st.exhausted}
		if !st.next.IsZero() {
			next := st.next
			pub.Next = &next
		}
	}
	d.mu.Lock()
	d.pub.retry = pub
	d.mu.Unlock()
	d.m.SyncRetryAttempt.Set(float64(st.attempt))
	if st.next.IsZero() {
		d.m.SyncRetryNext.Set(0)
	} else {
		d.m.SyncRetryNext.Set(float64(st.next.Unix()))
	}
}

// armRetry sets the retry timer to the retry that is due, or stops it.
func (d *Daemon) armRetry(t *time.Timer) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	if next := d.loop.retry.next; !next.IsZero() {
		t.Reset(max(time.Until(next), 0))
	}
}

// needsRetry reports whether a sync's outcome is worth trying again by itself: it
// failed, or changes failed, or it applied changes without converging. Not: a guard's
// refusal or an invalid revision (the same revision would fail the same way), changes
// the planner refused or that wait for approval (people act on those), a dry run, a
// shutdown, or a replica that stopped leading.
func needsRetry(rep *reconcile.Report, err error) bool {
	var tooMany *reconcile.TooManyChangesError
	var mass *plan.MassArchiveError
	var notLeader *leader.NotLeaderError
	var guard *api.GuardError
	switch {
	case err != nil:
		return !errors.As(err, &tooMany) && !errors.As(err, &mass) && !errors.As(err, &notLeader) && !errors.As(err, &guard)
	case rep == nil || rep.DryRun || rep.Converged || rep.OnlyAwaitingApproval():
		return false
	case rep.Summary.Failed > 0:
		for _, r := range rep.Results {
			if r.Err != nil && !errors.As(r.Err, &guard) {
				return true
			}
		}
		return false
	case len(rep.Plan.Changes) == 0:
		return false // nothing to apply: only refusals or approvals keep it unconverged
	case !rep.Verified:
		return true // convergence not confirmed
	}
	held := map[plan.Address]bool{}
	for _, b := range rep.AwaitingApproval {
		held[b.Flag()] = true
	}
	for _, c := range rep.Remaining {
		if !held[c.Flag()] {
			return true
		}
	}
	return false
}
