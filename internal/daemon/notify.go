package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/notify"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// notifyQueue is how many outcomes may wait for the notifier; more are dropped (and
// logged): notifications never hold the sync loop.
const notifyQueue = 64

// notifyDrain bounds how long the outcomes still queued at shutdown may take.
const notifyDrain = 5 * time.Second

// startNotifier runs the notifier on a goroutine of its own. The returned function
// stops taking outcomes, lets the queued ones go out within notifyDrain, and waits.
func (d *Daemon) startNotifier() (stop func()) {
	if d.notes == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for o := range d.notes {
			d.cfg.Notifier.Observe(ctx, o)
		}
	}()
	return func() {
		close(d.notes)
		t := time.AfterFunc(notifyDrain, cancel)
		<-done
		t.Stop()
		cancel()
	}
}

// notify hands a sync's outcome to the notifier without waiting.
func (d *Daemon) notify(c *cycle, o notify.Outcome) {
	if d.notes == nil {
		return
	}
	select {
	case d.notes <- o:
	default:
		c.log.Warn("notification dropped: the notifier is behind", "revision", o.Revision)
	}
}

// outcome is what a sync came to, for notifications: whether it failed, the drift it
// found and the changes refused, each identified by a digest so that the same drift
// or refusal seen again is not notified twice.
func (d *Daemon) outcome(c *cycle, rep *reconcile.Report, err error) notify.Outcome {
	o := notify.Outcome{Scope: d.cfg.NotifyScope, Revision: c.rev}
	var tooMany *reconcile.TooManyChangesError
	var mass *plan.MassArchiveError
	switch {
	case errors.As(err, &tooMany) || errors.As(err, &mass):
		// A guard refused the plan: nothing was written, nothing failed.
		o.Refused = digest(err.Error())
		o.Summary = err.Error()
		return o
	case c.rec.Result == ResultFailed && !onlyRefused(rep, err):
		o.Failed = true
		o.Summary = c.rec.Error
		return o
	case c.rec.Result == ResultInvalid:
		o.Failed = true
		o.Summary = c.rec.Error
		return o
	}
	if rep != nil {
		o.Summary = rep.Plan.SummaryLine()
		if len(rep.Refused) > 0 {
			var keys []string
			for _, b := range rep.Refused {
				keys = append(keys, fmt.Sprintf("%s %s %s", b.Flag(), b.Kind, b.Reason))
			}
			o.Refused = digest(keys...)
		}
		if c.rec.Drift {
			var keys []string
			for _, ch := range rep.Plan.Changes {
				keys = append(keys, fmt.Sprintf("%s %s %s", ch.Flag(), ch.Environment, ch.Action))
			}
			o.Drift = digest(keys...)
		}
	}
	return o
}

// onlyRefused reports whether a run is unconverged only because the planner refused
// changes or changes wait for approval: a refusal to notify, not a failed sync.
func onlyRefused(rep *reconcile.Report, err error) bool {
	return err == nil && rep != nil && rep.Summary.Failed == 0 && !needsRetry(rep, nil) && (len(rep.Refused) > 0 || rep.AwaitingApprovalCount() > 0)
}

// digest identifies a set of strings, whatever their order.
func digest(keys ...string) string {
	sort.Strings(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:8])
}
