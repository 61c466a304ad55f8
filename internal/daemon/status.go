package daemon

import (
	"fmt"
	"slices"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Sync results: the result label of flagsync_syncs_total and Record.Result.
const (
	ResultSuccess = "success" // planned, applied (unless suspended) and converged
	ResultFailed  = "failed"  // fetch, read or guard stopped it, a change failed, or Kameleoon still differs
	ResultInvalid = "invalid" // the revision does not validate: nothing read or written
	ResultSkipped = "skipped" // nothing to do: not listed in Status.Syncs, see Status.LastCheck
)

// Sync modes.
const (
	ModeFull    = "full"    // every flag planned from one list call per site
	ModePartial = "partial" // only the flags whose files changed, one get each
)

// maxListed bounds the diagnostics and failures one status lists.
const (
	maxDiagnostics = 200
	maxFailures    = 20
)

// Status is what GET /status answers.
type Status struct {
	// Revision is the revision last applied; HeadRevision the newest one fetched.
	Revision     string `json:"revision"`
	HeadRevision string `json:"headRevision"`
	// Converged says whether Kameleoon matched Revision after it was applied.
	Converged bool   `json:"converged"`
	Ready     bool   `json:"ready"`
	ReadyWhy  string `json:"readyReason"`
	// Suspended is true while applying is suspended; Suspension says since when and why.
	Suspended  bool        `json:"suspended"`
	Suspension *Suspension `json:"suspension,omitempty"`
	// Running is the sync in flight.
	Running *Running `json:"running,omitempty"`
	// NextRun is the schedule's next tick (before jitter, up to MaxJitter later).
	NextRun   *time.Time `json:"nextRun,omitempty"`
	MaxJitter string     `json:"maxJitter,omitempty"`
	// NextDriftCheck is when the live flags are next read although nothing changed.
	NextDriftCheck *time.Time `json:"nextDriftCheck,omitempty"`
	LastFullRead   *time.Time `json:"lastFullRead,omitempty"`
	// LastCheck is the last time the loop woke, whatever it did (skips included).
	LastCheck *Check `json:"lastCheck,omitempty"`
	// Budget is the API rate budget left in each window.
	Budget []BudgetWindow `json:"budget"`
	// LastValidationFailure is the newest revision that did not validate, with its
	// problems; Current is false once a newer revision validated.
	LastValidationFailure *ValidationFailure `json:"lastValidationFailure"`
	// Syncs are the last syncs, newest first (skipped checks are not listed).
	Syncs []Record `json:"syncs"`
}

// Suspension says who suspended applying, when and why.
type Suspension struct {
	Since  time.Time `json:"since"`
	By     string    `json:"by"` // "flag" (--suspend) or "api" (POST /suspend)
	Reason string    `json:"reason,omitempty"`
}

// Running is the sync in flight.
type Running struct {
	ID      int64     `json:"id"`
	Trigger string    `json:"trigger"`
	Started time.Time `json:"started"`
}

// Check is one wake-up of the loop.
type Check struct {
	At       time.Time `json:"at"`
	Trigger  string    `json:"trigger"`
	Revision string    `json:"revision,omitempty"`
	Result   string    `json:"result"`
	Reason   string    `json:"reason,omitempty"`
}

// BudgetWindow is one rate-limit window of the API budget.
type BudgetWindow struct {
	Window    string `json:"window"`
	Limit     int    `json:"limit"`
	Used      int    `json:"used"`
	Remaining int    `json:"remaining"`
}

// ValidationFailure is a revision that did not validate.
type ValidationFailure struct {
	Revision    string            `json:"revision"`
	At          time.Time         `json:"at"`
	Current     bool              `json:"current"`  // still the newest revision
	Problems    int               `json:"problems"` // all of them; Diagnostics lists the first 200
	Diagnostics []diag.Diagnostic `json:"diagnostics"`
}

// Record is one sync, as /status lists it.
type Record struct {
	ID         int64     `json:"id"`
	Trigger    string    `json:"trigger"`  // what asked for it: startup, schedule, webhook, signal, drift, resume; merged requests are comma-separated
	Requests   int       `json:"requests"` // how many requests it answered
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"durationMs"`
	Revision   string    `json:"revision,omitempty"`
	Mode       string    `json:"mode,omitempty"`   // full or partial; empty when it stopped before planning
	Reason     string    `json:"reason,omitempty"` // why a full rather than a partial sync
	Result     string    `json:"result"`
	DryRun     bool      `json:"dryRun"`          // applying suspended: planned, nothing sent
	Flags      []string  `json:"flags,omitempty"` // partial: the flags planned
	Plan       *PlanInfo `json:"plan,omitempty"`
	// Summary counts the changes applied, failed and skipped.
	Summary   apply.Summary `json:"summary"`
	Converged bool          `json:"converged"`
	// Drift is set when a check of the applied revision found Kameleoon changed.
	Drift    bool     `json:"drift"`
	APICalls int64    `json:"apiCalls"`
	Error    string   `json:"error,omitempty"`
	Failures []string `json:"failures,omitempty"` // failed changes (the first 20)
	Problems int      `json:"problems,omitempty"` // invalid: see LastValidationFailure
}

// PlanInfo summarises a plan.
type PlanInfo struct {
	Changes   int                 `json:"changes"`
	ByAction  map[plan.Action]int `json:"byAction"`
	Unmanaged int                 `json:"unmanaged"`
	Blocked   int                 `json:"blocked"`
}

func planInfo(p plan.Plan) *PlanInfo {
	pi := &PlanInfo{Changes: len(p.Changes), ByAction: map[plan.Action]int{}, Unmanaged: len(p.Unmanaged), Blocked: len(p.Blocked)}
	for _, c := range p.Changes {
		pi.ByAction[c.Action]++
	}
	return pi
}

// fillReport copies what the record shows of a reconcile report.
func (r *Record) fillReport(rep *reconcile.Report) {
	if rep == nil {
		return
	}
	r.DryRun = rep.DryRun
	if rep.Plan.Changes != nil || rep.Plan.Unmanaged != nil || rep.Sites != nil || rep.Partial {
		r.Plan = planInfo(rep.Plan)
	}
	r.Summary = rep.Summary
	r.Converged = rep.Converged
	for _, res := range rep.Results {
		if res.Status != apply.Failed || len(r.Failures) >= maxFailures {
			continue
		}
		c := res.Change
		target := c.Flag().String()
		if c.Environment != "" {
			target += "/" + c.Environment
		}
		r.Failures = append(r.Failures, fmt.Sprintf("%s %s: %v", c.Action, target, res.Err))
	}
}

// Status returns what GET /status shows.
func (d *Daemon) Status() Status {
	now := time.Now()
	ready, why := d.readiness(now)
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{
		Revision:     d.pub.applied,
		HeadRevision: d.pub.head,
		Converged:    d.pub.converged,
		Ready:        ready,
		ReadyWhy:     why,
		Suspended:    d.susp.on,
		LastCheck:    d.pub.lastCheck,
		Budget:       d.budget(),
		Syncs:        slices.Clone(d.history),
	}
	if s.Syncs == nil {
		s.Syncs = []Record{}
	}
	if d.susp.on {
		s.Suspension = &Suspension{Since: d.susp.since, By: d.susp.by, Reason: d.susp.reason}
	}
	if d.running != nil {
		r := *d.running
		s.Running = &r
	}
	if d.sched != nil {
		next := d.sched.Next(now)
		s.NextRun = &next
		s.MaxJitter = d.maxJitter(now).String()
	}
	if !d.pub.lastFullRead.IsZero() {
		t := d.pub.lastFullRead
		s.LastFullRead = &t
		if d.cfg.DriftInterval > 0 {
			next := t.Add(d.cfg.DriftInterval)
			s.NextDriftCheck = &next
		}
	}
	if v := d.pub.validation; v != nil {
		vc := *v
		s.LastValidationFailure = &vc
	}
	return s
}

// budget returns the API budget's windows; callers hold mu or need no consistency.
func (d *Daemon) budget() []BudgetWindow {
	out := []BudgetWindow{}
	if d.cfg.Budget == nil {
		return out
	}
	for _, w := range d.cfg.Budget.Remaining() {
		out = append(out, BudgetWindow{Window: w.Name, Limit: w.Limit, Used: w.Used, Remaining: w.Remaining})
	}
	return out
}

// readiness says whether the daemon is ready, and why not. Ready means: not shutting
// down, the first sync has finished (whatever its result), and a sync or check ended
// as it should (success, skipped, or a new revision refused as invalid) within the
// last ReadyIntervals × interval, where interval is the schedule's period, or the drift
// interval without a schedule; the time since start counts until the first one did.
// With neither a schedule nor drift checks, only the first two conditions apply.
func (d *Daemon) readiness(now time.Time) (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closing:
		return false, "shutting down"
	case !d.pub.firstDone:
		return false, "first sync not finished"
	}
	interval := d.period(now)
	if interval <= 0 {
		interval = d.cfg.DriftInterval
	}
	if interval <= 0 {
		return true, "ok"
	}
	since := d.pub.lastOK
	if since.IsZero() {
		since = d.started
	}
	limit := time.Duration(d.cfg.ReadyIntervals) * interval
	if age := now.Sub(since); age > limit {
		return false, fmt.Sprintf("no successful sync or check for %s (limit %d × %s)", age.Round(time.Second), d.cfg.ReadyIntervals, interval)
	}
	return true, "ok"
}
