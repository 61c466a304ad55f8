package daemon

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/leader"
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
	// Revision is the revision last fully applied (synced, and the services matched it
	// after); HeadRevision the newest one fetched. LastFetched, LastAttempted and
	// LastApplied say when, and what the last attempt came to: a revision attempted
	// but not applied (a failed sync) is LastAttempted, never Revision.
	Revision      string      `json:"revision"`
	HeadRevision  string      `json:"headRevision"`
	LastFetched   *RevisionAt `json:"lastFetched"`
	LastAttempted *Attempt    `json:"lastAttempted"`
	LastApplied   *RevisionAt `json:"lastApplied"`
	// Converged says whether the services matched the last revision synced after it
	// was applied (changes waiting for approval aside).
	Converged bool   `json:"converged"`
	Ready     bool   `json:"ready"`
	ReadyWhy  string `json:"readyReason"`
	// Role is this replica's part in the leader election: leader, follower, or none
	// (no election: a lone replica); Leader has the details.
	Role   string        `json:"role"`
	Leader leader.Status `json:"leader"`
	// Retry is the self-retry of a failed or unconverged sync; absent when none.
	Retry *Retry `json:"retry,omitempty"`
	// AwaitingApproval lists the changes filed for approval in their service and not yet
	// approved (a Split change request), one per flag.
	AwaitingApproval []AwaitingChange `json:"awaitingApproval"`
	// Build is the running binary.
	Build BuildInfo `json:"build"`
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

// RevisionAt is a revision and when it was reached.
type RevisionAt struct {
	Revision string    `json:"revision"`
	At       time.Time `json:"at"`
}

// Attempt is a revision a sync tried to apply and what came of it (a Result).
type Attempt struct {
	Revision string    `json:"revision"`
	At       time.Time `json:"at"`
	Result   string    `json:"result"`
}

// AwaitingChange is a flag whose change waits for approval in its service.
type AwaitingChange struct {
	Flag          string `json:"flag"`
	Service       string `json:"service"`
	ChangeRequest string `json:"changeRequest,omitempty"`
	Note          string `json:"note,omitempty"`
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
	// Summary counts the changes applied, failed and skipped, and those awaiting
	// approval in their service.
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
	Blocked   int                 `json:"blocked"` // refused by the planner, not counting AwaitingApproval
	// AwaitingApproval counts the changes already filed for approval in their service.
	AwaitingApproval int `json:"awaitingApproval"`
}

func planInfo(p plan.Plan) *PlanInfo {
	sum := p.Summary()
	pi := &PlanInfo{Changes: len(p.Changes), ByAction: map[plan.Action]int{}, Unmanaged: len(p.Unmanaged), Blocked: sum.Blocked, AwaitingApproval: sum.AwaitingApproval}
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
	election := d.electionStatus()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{
		HeadRevision:     d.pub.head,
		LastFetched:      d.pub.fetched,
		LastAttempted:    d.pub.attempted,
		LastApplied:      d.pub.applied,
		Converged:        d.pub.converged,
		Ready:            ready,
		ReadyWhy:         why,
		Role:             string(election.Role),
		Leader:           election,
		Retry:            d.pub.retry,
		AwaitingApproval: []AwaitingChange{},
		Build:            d.cfg.Build,
		Suspended:        d.susp.on,
		LastCheck:        d.pub.lastCheck,
		Budget:           d.budget(),
		Syncs:            slices.Clone(d.history),
	}
	if d.pub.applied != nil {
		s.Revision = d.pub.applied.Revision
	}
	for _, a := range d.pub.awaiting {
		s.AwaitingApproval = append(s.AwaitingApproval, a)
	}
	slices.SortFunc(s.AwaitingApproval, func(a, b AwaitingChange) int { return strings.Compare(a.Flag, b.Flag) })
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

// electionStatus is the election's state, its role "none" for a lone replica.
func (d *Daemon) electionStatus() leader.Status {
	return d.elector.Status()
}

// refreshGauges sets the gauges read from state kept elsewhere: the election's and the
// API budget's.
func (d *Daemon) refreshGauges() {
	st := d.electionStatus()
	d.m.SetLeaderRole(string(st.Backend), string(st.Role))
	if st.Writing {
		d.m.LeaderWriting.Set(1)
	} else {
		d.m.LeaderWriting.Set(0)
	}
	d.m.LeaderChanges.Set(float64(st.LeaderChanges))
	for _, w := range d.budget() {
		d.m.APIBudget.WithLabelValues(w.Window).Set(float64(w.Remaining))
	}
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
//
// A follower is ready as long as it is not shutting down: it does not sync, and must
// stay in the Service, ready to take over and to hand webhook deliveries on.
func (d *Daemon) readiness(now time.Time) (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closing:
		return false, "shutting down"
	case !d.leadingLocked():
		return true, "ok: following the leader"
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
