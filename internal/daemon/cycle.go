package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/notify"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/webhook"
)

// errSuspended is the cause of a sync's context when applying was suspended under it.
var errSuspended = errors.New("applying was suspended during the sync: flags not yet started were left")

// cycle is one wake-up of the loop: the request it answers and what it came to.
type cycle struct {
	id        int64
	req       request
	trigger   string
	suspended bool
	leading   bool            // this replica may sync and write (see Daemon.leadingLocked)
	soft      context.Context // cancelled: start nothing new (shutdown, suspend)
	hard      context.Context // cancelled: stop what is running (shutdown deadline)
	log       *slog.Logger    // with sync and trigger; reconcile adds the revision
	start     time.Time

	rev   string
	rec   *Record // nil until the cycle is a sync (not a skip)
	chk   Check
	ok    bool // ended as it should (for readiness)
	retry bool // failed in a way worth retrying by itself (see needsRetry)
	// note, when set, is the sync's outcome for the notifier.
	note *notifyOutcome
}

// cycle runs one wake-up: take the merged request, fetch, decide and sync (or skip).
func (d *Daemon) cycle(ctx context.Context) {
	req := d.take()
	if req.n == 0 {
		return
	}
	soft, stopSoft := context.WithCancelCause(ctx)
	defer stopSoft(nil)
	hard, stopHard := hardContext(ctx, d.cfg.ShutdownTimeout)
	defer stopHard()

	d.mu.Lock()
	d.seq++
	c := &cycle{
		id: d.seq, req: req, trigger: strings.Join(req.triggers, ","),
		suspended: d.susp.on, leading: d.leadingLocked(), soft: soft, hard: hard, start: time.Now(),
	}
	if d.term != nil {
		// The term's end stops the sync from starting more flags; the guard stops its writes.
		stopTerm := context.AfterFunc(d.term, func() { stopSoft(errNotLeader) })
		defer stopTerm()
	}
	d.stopRun = stopSoft
	d.running = &Running{ID: c.id, Trigger: c.trigger, Started: c.start}
	d.mu.Unlock()
	c.log = d.log.With("sync", c.id, "trigger", c.trigger)
	calls0 := d.cfg.Calls()

	d.runCycle(c)

	took := time.Since(c.start)
	c.chk.At, c.chk.Trigger, c.chk.Revision = c.start, c.trigger, c.rev
	if c.rec != nil {
		c.rec.ID, c.rec.Trigger, c.rec.Requests, c.rec.Started = c.id, c.trigger, req.n, c.start
		c.rec.Revision = c.rev
		c.rec.DurationMS = took.Milliseconds()
		c.rec.APICalls = d.cfg.Calls() - calls0
		switch {
		case ctx.Err() != nil && c.rec.Result == ResultFailed:
			c.rec.Error = "interrupted by shutdown: flags not yet started were left for the next run (" + c.rec.Error + ")"
			c.retry, c.note = false, nil
		case context.Cause(soft) == errSuspended && c.rec.Result == ResultFailed:
			c.rec.Error = errSuspended.Error() + " (" + c.rec.Error + ")"
		case context.Cause(soft) == errNotLeader && c.rec.Result == ResultFailed:
			c.rec.Error = errNotLeader.Error() + " (" + c.rec.Error + ")"
			c.retry, c.note = false, nil
		}
		c.chk.Result = c.rec.Result
		if c.chk.Reason == "" {
			c.chk.Reason = c.rec.Error
		}
		d.m.ObserveSync(c.rec.Result, took)
		d.logRecord(c)
	} else {
		d.m.ObserveSync(ResultSkipped, took)
		c.chk.Result = ResultSkipped
		c.log.Debug("nothing to sync", "revision", c.rev, "reason", c.chk.Reason)
	}

	d.afterCycle(c)
	if c.note != nil && !c.suspended {
		d.notify(c, c.note.Outcome)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopRun, d.running = nil, nil
	if c.rec != nil {
		d.history = append([]Record{*c.rec}, d.history...)
		if len(d.history) > d.cfg.History {
			d.history = d.history[:d.cfg.History]
		}
		if c.rev != "" && c.rec.Result != ResultSkipped {
			d.pub.attempted = &Attempt{Revision: c.rev, At: c.start, Result: c.rec.Result}
			d.m.SetAttemptedRevision(c.rev)
		}
	}
	chk := c.chk
	d.pub.lastCheck = &chk
	d.pub.firstDone = true
	if c.ok {
		d.pub.lastOK = time.Now()
	}
	d.pub.converged, d.pub.lastFullRead = d.loop.converged, d.loop.lastFullRead
	d.cycled.Broadcast()
}

// notifyOutcome is a sync's outcome for the notifier.
type notifyOutcome struct{ notify.Outcome }

// runCycle fetches the repository and decides: skip, a partial sync of the changed
// flags, or a full sync.
func (d *Daemon) runCycle(c *cycle) {
	snap, err := d.cfg.Source.Fetch(c.soft)
	if err != nil {
		c.rec = &Record{Result: ResultFailed, Error: fmt.Sprintf("fetch: %v", err)}
		if c.leading {
			c.retry = true
			c.note = &notifyOutcome{notify.Outcome{Scope: d.cfg.NotifyScope, Failed: true, Summary: c.rec.Error}}
		}
		return
	}
	c.rev = snap.Revision
	d.cfg.RevisionTag.set(c.rev)
	defer d.cfg.RevisionTag.set("")
	d.mu.Lock()
	d.pub.head = snap.Revision
	d.pub.fetched = &RevisionAt{Revision: snap.Revision, At: time.Now()}
	d.mu.Unlock()
	d.m.SetFetchedRevision(snap.Revision)
	d.learnBranch(c, snap)
	if !c.leading {
		if l := d.elector.Leader(); l == d.elector.Identity() {
			c.skip("elected: the first sync as the leader follows")
		} else {
			c.skip("following: the leader (" + orUnknown(l) + ") syncs")
		}
		return
	}

	if n := len(c.req.pushes); n > 0 && !strings.EqualFold(c.req.pushes[n-1].After, snap.Revision) {
		c.log.Info("the last webhook named another revision than the branch holds now; syncing what the branch holds",
			"revision", snap.Revision, "webhook_after", c.req.pushes[n-1].After)
	}
	st := &d.loop
	stable := snap.Revision != "" && !snap.Dirty // the revision names the files exactly
	driftDue := d.cfg.DriftInterval > 0 && (st.lastFullRead.IsZero() || time.Since(st.lastFullRead) >= d.cfg.DriftInterval)
	full := c.req.full || driftDue
	if full {
		st.fullTried = time.Now()
	}
	if why := d.skipReason(c, snap.Revision, stable, full); why != "" {
		c.skip(why)
		return
	}
	reason := d.fullReason(c, stable, driftDue)
	if reason == "" {
		if done := d.partial(c, snap, &reason); done {
			return
		}
	}
	d.full(c, snap, reason)
}

// learnBranch makes the branch the snapshot was read from the one webhooks are
// accepted for, when no branch was given: the remote's default branch, as its HEAD
// says, as Argo CD does.
func (d *Daemon) learnBranch(c *cycle, snap *gitsource.Snapshot) {
	if d.cfg.WebhookBranch != "" || len(d.cfg.WebhookSecret) == 0 {
		return
	}
	d.mu.Lock()
	was := d.branch
	d.mu.Unlock()
	switch {
	case snap.Branch == was:
	case snap.Branch == "":
		c.log.Warn("webhooks are off: the repository's default branch is not known (its HEAD names no single branch); give --ref BRANCH or --webhook-branch")
	default:
		if err := d.setBranch(snap.Branch); err != nil {
			c.log.Error("webhooks are off: build the webhook handler", "branch", snap.Branch, "error", err)
			return
		}
		if was == "" {
			c.log.Info("tracking the remote's default branch: pushes to it trigger a sync", "branch", snap.Branch)
		} else {
			c.log.Warn("the remote's default branch changed: pushes to the new one trigger a sync", "branch", snap.Branch, "was", was)
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "not known yet"
	}
	return s
}

// skipReason says why the cycle has nothing to sync, or "".
func (d *Daemon) skipReason(c *cycle, rev string, stable, full bool) string {
	st := &d.loop
	switch {
	case !stable:
		return ""
	case rev == st.invalidRev:
		return "the revision failed validation; the last good revision stays applied until a new revision arrives"
	case full:
		return ""
	case c.suspended && rev == st.dryChecked:
		return "revision unchanged since the last plan (applying suspended)"
	case !c.suspended && rev == st.applied && st.converged:
		return "revision unchanged and the flag services converged"
	case !c.suspended && rev == st.refusedRev:
		return "a guard refused this revision's plan; retried on a new revision, a drift check or a signal"
	}
	return ""
}

// fullReason says why the whole repository must be synced, or "" when a partial sync
// of the changed flags may do.
func (d *Daemon) fullReason(c *cycle, stable, driftDue bool) string {
	st := &d.loop
	switch {
	case c.req.full:
		return "requested by " + c.trigger
	case driftDue:
		return "drift check due"
	case !stable:
		return "the work tree has uncommitted changes"
	case c.suspended:
		return "applying suspended: the whole repository is planned"
	case st.index == nil || st.applied != st.index.rev:
		return "no revision applied yet"
	case !st.converged:
		return "the last sync did not converge"
	}
	return ""
}

// skip ends the cycle without a sync.
func (c *cycle) skip(reason string) {
	c.chk.Reason = reason
	c.ok = true
}

// partial syncs only the flags whose files changed since the applied revision, and
// reports true; or reports false with the reason the whole repository must be synced.
func (d *Daemon) partial(c *cycle, snap *gitsource.Snapshot, reason *string) bool {
	st := &d.loop
	from, rev := st.index.rev, snap.Revision
	changed, err := d.cfg.Source.ChangedFiles(c.soft, from, rev)
	if err != nil {
		changed = pushedFiles(c.req.pushes, from, rev)
		if changed == nil {
			*reason = fmt.Sprintf("changed files unknown: %v", err)
			return false
		}
		c.log.Info("changed files taken from the webhook payload", "revision", rev, "error", err)
	}
	n, err := st.index.narrow(snap.FS, d.cfg.Dir, rev, changed, func(fsys fs.FS) (*reconcile.Loaded, error) { return d.load(fsys, rev, c.log) })
	var invalid *diag.InvalidError
	switch {
	case errors.As(err, &invalid):
		d.invalid(c, rev, true, invalid)
		return true
	case err != nil:
		*reason = fmt.Sprintf("changed files not narrowed: %v", err)
		return false
	case n.full != "":
		*reason = n.full
		return false
	}
	d.valid()
	c.rec = &Record{Mode: ModePartial}
	for _, r := range n.only {
		c.rec.Flags = append(c.rec.Flags, r.String())
	}
	if len(n.only) == 0 {
		// No flag file changed: the new revision holds the flags the applied one held.
		c.log.Info("no flag file changed", "revision", rev, "from", from, "changed_files", len(changed))
		st.applied, st.index = rev, n.next
		c.rec.Result, c.rec.Converged, c.rec.Plan = ResultSuccess, st.converged, planInfo(plan.Plan{})
		c.ok = true
		if st.converged {
			d.fullyApplied(rev)
		}
		return true
	}
	c.log.Info("partial sync of the changed flags", "revision", rev, "from", from, "flags", len(n.only), "files", strings.Join(n.files, ","))
	rep, err := d.reconcile(c, reconcile.Input{Revision: rev, Loaded: n.loaded, Only: n.only})
	st.index = n.next
	if err == nil && !c.suspended {
		st.applied, st.converged = rev, rep.Converged || rep.OnlyAwaitingApproval()
	}
	if err == nil && !c.suspended {
		d.awaiting(rep, n.only)
	}
	d.result(c, rep, err)
	return true
}

// pushedFiles returns the changed files the webhook payloads name for exactly the
// revisions from..to, or nil when they do not cover that range.
func pushedFiles(pushes []webhook.Push, from, to string) []string {
	for _, p := range pushes {
		if strings.EqualFold(p.Before, from) && strings.EqualFold(p.After, to) && p.ChangedFiles != nil {
			return p.ChangedFiles
		}
	}
	return nil
}

// full loads and validates the whole repository and syncs every flag.
func (d *Daemon) full(c *cycle, snap *gitsource.Snapshot, reason string) {
	if n := len(c.req.pushes); n > 0 && !strings.EqualFold(c.req.pushes[n-1].After, snap.Revision) {
		c.log.Info("the last webhook named another revision than the branch holds now; syncing what the branch holds",
			"revision", snap.Revision, "webhook_after", c.req.pushes[n-1].After)
	}
	st := &d.loop
	rev := snap.Revision
	stable := rev != "" && !snap.Dirty
	loaded, err := d.load(snap.FS, rev, c.log)
	var invalid *diag.InvalidError
	switch {
	case errors.As(err, &invalid):
		d.invalid(c, rev, stable, invalid)
		return
	case err != nil:
		c.rec = &Record{Mode: ModeFull, Reason: reason, Result: ResultFailed, Error: err.Error()}
		return
	}
	d.valid()
	checkOfApplied := rev == st.applied && st.converged && stable
	desired := loaded.Files()
	c.log.Info("full sync", "revision", rev, "flags", len(desired), "reason", reason)
	c.rec = &Record{Mode: ModeFull, Reason: reason}
	// The pipeline syncs what this load loaded: the revision is read and validated once.
	rep, err := d.reconcile(c, reconcile.Input{Revision: rev, Loaded: loaded, Prune: d.cfg.Prune})
	if stable {
		st.index = newFileIndex(rev, desired)
	} else {
		st.index = nil
	}
	var tooMany *reconcile.TooManyChangesError
	var mass *plan.MassArchiveError
	refused := errors.As(err, &tooMany) || errors.As(err, &mass)
	if err == nil || refused {
		st.lastFullRead = time.Now()
		d.observeLifecycle(loaded)
	}
	switch {
	case c.suspended && (err == nil || refused):
		st.dryChecked = rev
	case c.suspended:
	case refused:
		st.refusedRev, st.converged = rev, false
	case err == nil:
		st.applied, st.converged, st.refusedRev = rev, rep.Converged || rep.OnlyAwaitingApproval(), ""
		d.awaiting(rep, nil)
	}
	if checkOfApplied && rep != nil && len(rep.Plan.Changes) > 0 {
		c.rec.Drift = true
		d.m.DriftDetected.Inc()
		for _, ch := range rep.Plan.Changes {
			c.log.Warn("drift: "+rep.Plan.ServiceName()+" differs from the applied revision", "revision", rev,
				"flag", ch.Flag().String(), "env", ch.Environment, "action", string(ch.Action), "reason", ch.Reason)
		}
	}
	d.result(c, rep, err)
}

// reconcile runs the sync pipeline with the daemon's settings.
func (d *Daemon) reconcile(c *cycle, in reconcile.Input) (*reconcile.Report, error) {
	in.Dir = d.cfg.Dir
	in.Vendors = d.cfg.Vendors
	in.DryRun = c.suspended
	in.MaxChanges, in.MaxArchive, in.AllowMassArchive = d.cfg.MaxChanges, d.cfg.MaxArchive, d.cfg.AllowMassArchive
	in.Concurrency = d.cfg.Concurrency
	in.Hard, in.FinishStarted = c.hard, true
	in.Calls = d.cfg.Calls
	in.Logger = c.log
	if d.elected {
		in.Guard = d.elector.Guard
	}
	return reconcile.Run(c.soft, in)
}

// result fills the record from the report and counts the changes.
func (d *Daemon) result(c *cycle, rep *reconcile.Report, err error) {
	c.rec.fillReport(rep)
	if rep != nil {
		for _, ch := range rep.Plan.Changes {
			d.m.Changes.WithLabelValues("planned", string(ch.Action)).Inc()
		}
		for _, r := range rep.Results {
			switch r.Status {
			case apply.Applied:
				d.m.Changes.WithLabelValues("applied", string(r.Change.Action)).Inc()
			case apply.Failed:
				d.m.Changes.WithLabelValues("failed", string(r.Change.Action)).Inc()
			}
		}
	}
	switch {
	case err != nil:
		c.rec.Result, c.rec.Error = ResultFailed, err.Error()
	case rep.Summary.Failed > 0:
		c.rec.Result, c.rec.Error = ResultFailed, fmt.Sprintf("%d of %d changes failed", rep.Summary.Failed, len(rep.Results))
	case !rep.DryRun && rep.OnlyAwaitingApproval():
		// All the sync could do is done: a person approves the rest in the service.
		c.rec.Result = ResultSuccess
		c.ok = true
	case !rep.DryRun && !rep.Converged:
		c.rec.Result = ResultFailed
		c.rec.Error = "not converged: " + rep.NotConverged()
	default:
		c.rec.Result = ResultSuccess
		c.ok = true
		if !rep.DryRun && c.rev != "" && !strings.HasSuffix(c.rec.Reason, "uncommitted changes") {
			d.fullyApplied(c.rev)
		}
	}
	c.retry = !c.suspended && needsRetry(rep, err)
	c.note = &notifyOutcome{d.outcome(c, rep, err)}
}

// fullyApplied records rev as applied and converged.
func (d *Daemon) fullyApplied(rev string) {
	d.mu.Lock()
	d.pub.applied = &RevisionAt{Revision: rev, At: time.Now()}
	d.mu.Unlock()
	d.m.SetRevision(rev)
}

// awaiting records the changes waiting for approval after a sync: of the flags only
// (a partial sync), or of every flag (nil only).
func (d *Daemon) awaiting(rep *reconcile.Report, only []plan.Address) {
	if rep == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if only == nil {
		clear(d.pub.awaiting)
	}
	for _, a := range only {
		delete(d.pub.awaiting, a.Flag())
	}
	for _, b := range rep.AwaitingApproval {
		d.pub.awaiting[b.Flag()] = AwaitingChange{Flag: b.Flag().String(), Service: b.Service, ChangeRequest: b.ChangeRequest}
	}
	for _, r := range rep.Results {
		if r.Status != apply.AwaitingApproval {
			continue
		}
		a := r.Change.Flag()
		if _, ok := d.pub.awaiting[a]; !ok {
			d.pub.awaiting[a] = AwaitingChange{Flag: a.String(), Service: r.Change.Service, Note: r.Note}
		}
	}
	d.m.AwaitingApproval.Set(float64(len(d.pub.awaiting)))
}

// invalid records a revision that does not validate. The last good revision stays
// applied, and a stable revision is not tried again.
func (d *Daemon) invalid(c *cycle, rev string, stable bool, e *diag.InvalidError) {
	if stable {
		d.loop.invalidRev = rev
	}
	c.rec = &Record{Result: ResultInvalid, Problems: len(e.Diagnostics),
		Error: fmt.Sprintf("%s in %s: nothing read or written; %s stays applied",
			plural(len(e.Diagnostics), "problem"), plural(e.FileCount(), "file"), orNone(d.loop.applied))}
	c.ok = true
	c.note = &notifyOutcome{notify.Outcome{Scope: d.cfg.NotifyScope, Revision: rev, Failed: true, Summary: c.rec.Error}}
	diags := e.Diagnostics
	if len(diags) > maxDiagnostics {
		diags = diags[:maxDiagnostics]
	}
	d.mu.Lock()
	d.pub.validation = &ValidationFailure{Revision: rev, At: time.Now(), Current: true, Problems: len(e.Diagnostics), Diagnostics: diags}
	d.mu.Unlock()
	d.m.ValidationFailed.Set(1)
	c.log.Warn("revision fails validation: nothing read or written; the last good revision stays applied",
		"revision", rev, "applied", d.loop.applied, "problems", len(e.Diagnostics), "files", e.FileCount())
	for i, diag := range e.Diagnostics {
		if i == maxDiagnostics {
			c.log.Warn("more validation problems not logged", "revision", rev, "more", len(e.Diagnostics)-i)
			break
		}
		c.log.Warn("validation problem", "revision", rev, "file", diag.File, "line", diag.Line, "column", diag.Column, "field", diag.Field, "message", diag.Message)
	}
}

// valid records that the newest revision validates.
func (d *Daemon) valid() {
	d.loop.invalidRev = ""
	d.mu.Lock()
	if d.pub.validation != nil {
		d.pub.validation.Current = false
	}
	d.mu.Unlock()
	d.m.ValidationFailed.Set(0)
}

// logRecord logs the one line that sums a sync up.
func (d *Daemon) logRecord(c *cycle) {
	r := c.rec
	attrs := []any{"revision", r.Revision, "result", r.Result, "mode", r.Mode, "dry_run", r.DryRun,
		"applied", r.Summary.Applied, "failed", r.Summary.Failed, "skipped", r.Summary.Skipped,
		"converged", r.Converged, "api_calls", r.APICalls, "duration_ms", r.DurationMS}
	if r.Plan != nil {
		attrs = append(attrs, "changes", r.Plan.Changes)
	}
	if r.Error != "" {
		attrs = append(attrs, "error", r.Error)
	}
	if r.Result == ResultSuccess {
		c.log.Info("sync finished", attrs...)
	} else {
		c.log.Warn("sync finished", attrs...)
	}
}

func orNone(rev string) string {
	if rev == "" {
		return "nothing"
	}
	return "revision " + rev
}

// plural writes n and noun, with an s unless n is 1: "1 problem", "3 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
