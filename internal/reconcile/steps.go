package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
)

// Run loads and validates the files, connects the services they need, reads the live
// flags, computes the plan, prices it (the API calls, the budget and the time it takes),
// checks the guards, applies the plan (unless dry run) and confirms convergence from the
// writes' answers, reading again what they cannot vouch for. It returns an error when the
// pipeline stopped before or instead of applying (invalid files — a *diag.InvalidError,
// with the diagnostics also in the report —, a failed connection or read, a guard);
// failed changes are not an error but results, and the report is always non-nil.
//
// Every step that knows a flag service goes through a Vendor: with several, each loads
// its own files, their plans are shown as one plan (each service's changes in its own
// order, services in the vendors' order) and the guards count the whole plan.
func Run(ctx context.Context, in Input) (*Report, error) {
	r := newRun(in)
	defer r.finish()
	for _, s := range r.steps() {
		next, err := s(ctx)
		if err != nil {
			return r.rep, err
		}
		if !next {
			break
		}
	}
	return r.rep, nil
}

// step is one stage of a run, in the manner of Flux's reconcilers: it does one job,
// keeps its typed result in the run, and says whether the run goes on. The first error
// ends the run.
type step func(ctx context.Context) (next bool, err error)

// steps are the stages of a run, in order.
func (r *run) steps() []step {
	return []step{
		r.load,    // → r.loaded: the services the repository needs, their files validated
		r.connect, // → r.loaded bound to connected vendors
		r.read,    // → each Repo holds its live state; the report's scopes
		r.plan,    // → r.planned: one plan per service, and the merged plan
		r.policy,  // → r.planned without the changes policies refuse (and those that need them), with their warnings
		r.price,   // → the plan's price (API calls, budget, time) and r.quotes; the plan is shown
		r.guard,   // refuses the whole plan (a planner guard, --max-changes)
		r.apply,   // → r.applied: each service's results, in waves that fit its budget
		r.confirm, // → the report's remaining differences and convergence
	}
}

// run is one Run between its steps.
type run struct {
	in     Input
	rep    *Report
	logger *slog.Logger // with the revision
	base   *slog.Logger // without it: apply adds the revision itself
	start  time.Time
	calls0 int64

	loaded  *Loaded
	opts    PlanOptions
	planned planned
	quotes  []Quote          // per part: the price step's quotes, for apply's waves
	applied [][]apply.Result // per part, in plan order
}

// planned is the plan step's result.
type planned struct {
	parts   []plan.Plan // one per part of the loaded repository
	merged  plan.Plan   // what the run shows and applies
	refusal error       // a planner guard's refusal (a usable plan is still shown)
}

func newRun(in Input) *run {
	logger := in.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &run{in: in, base: logger, logger: logger.With("revision", in.Revision), start: time.Now()}
	if in.Calls != nil {
		r.calls0 = in.Calls()
	}
	r.rep = &Report{Revision: in.Revision, DryRun: in.DryRun, Partial: len(in.Only) > 0}
	r.opts = PlanOptions{Revision: in.Revision, Partial: r.rep.Partial, Prune: in.Prune, MaxArchive: in.MaxArchive, AllowMassArchive: in.AllowMassArchive}
	return r
}

// finish records how long the run took and the calls it made.
func (r *run) finish() {
	r.rep.Duration = time.Since(r.start)
	if r.in.Calls != nil {
		r.rep.APICalls = r.in.Calls() - r.calls0
	}
}

// load loads and validates the repository (see Load), unless the input carries it.
func (r *run) load(context.Context) (bool, error) {
	if r.in.Loaded != nil {
		r.loaded = r.in.Loaded
		return true, nil
	}
	if len(r.in.Vendors) == 0 {
		return false, errors.New("reconcile: no flag service to sync")
	}
	l, err := Load(r.in.Vendors, Source{FS: r.in.FS, Dir: r.in.Dir, Revision: r.in.Revision, Logger: r.logger, Cache: r.in.Cache})
	if err != nil {
		var invalid *diag.InvalidError
		if errors.As(err, &invalid) {
			r.rep.Diagnostics = invalid.Diagnostics
			r.logger.Warn("flag files are invalid: nothing read or written", "problems", len(invalid.Diagnostics))
		}
		return false, fmt.Errorf("load flags from %s: %w", r.in.Dir, err)
	}
	r.loaded = l
	return true, nil
}

// connect binds the loaded repository to the connected services (Input.Connect).
func (r *run) connect(ctx context.Context) (bool, error) {
	if r.in.Connect == nil {
		return true, nil
	}
	vendors, err := r.in.Connect(ctx, r.loaded)
	if err != nil {
		return false, err
	}
	if r.loaded, err = r.loaded.Connect(vendors); err != nil {
		return false, err
	}
	return true, nil
}

// read reads each service's live state: every scope in a full run, the named flags in a
// partial one.
func (r *run) read(ctx context.Context) (bool, error) {
	for _, pt := range r.loaded.Parts {
		if r.rep.Partial {
			pt.Repo.Restrict(r.in.Only)
		}
		if err := pt.Repo.Read(ctx, r.rep.Partial); err != nil {
			return false, err
		}
		if !r.rep.Partial {
			r.rep.Sites = append(r.rep.Sites, pt.Repo.Scopes()...)
		}
	}
	return true, nil
}

// plan computes each service's plan from its last read and merges them (a pure step).
func (r *run) plan(context.Context) (bool, error) {
	for _, pt := range r.loaded.Parts {
		p, err := pt.Repo.Plan(r.opts)
		if r.planned.refusal == nil {
			r.planned.refusal = err
		}
		r.planned.parts = append(r.planned.parts, p)
	}
	p := merge(r.in.Revision, r.planned.parts)
	r.planned.merged = p
	r.rep.Plan = p
	r.rep.Refused, r.rep.AwaitingApproval = splitBlocked(p.Blocked)
	r.logger.Info("plan computed", "changes", len(p.Changes), "unmanaged", len(p.Unmanaged), "refused", len(p.Blocked), "left_alone", len(p.Notes), "dry_run", r.in.DryRun)
	return true, nil
}

// guard refuses the whole plan for a planner guard (mass archive) or --max-changes, and
// ends a run with nothing to apply.
func (r *run) guard(context.Context) (bool, error) {
	p := r.planned.merged
	if r.planned.refusal != nil {
		return false, r.planned.refusal // a *plan.MassArchiveError or a vendor's refusal, which says what it refused
	}
	if r.in.MaxChanges > 0 && len(p.Changes) > r.in.MaxChanges {
		return false, &TooManyChangesError{Changes: len(p.Changes), Max: r.in.MaxChanges}
	}
	if len(p.Changes) > 0 {
		return true, nil
	}
	r.rep.Converged = len(r.rep.Refused) == 0 && len(r.rep.AwaitingApproval) == 0
	r.rep.Results = []apply.Result{}
	if r.rep.Converged {
		r.logger.Info("in sync: no changes")
	} else {
		logRefused(r.logger, r.rep)
	}
	return false, nil
}

// apply applies each service's changes through its own vendor, one service after the
// other; the results keep the merged plan's order.
func (r *run) apply(ctx context.Context) (bool, error) {
	p := r.planned.merged
	offset := 0
	for i, pt := range r.loaded.Parts {
		sub := r.planned.parts[i]
		sub.Changes = p.Changes[offset : offset+len(sub.Changes)]
		offset += len(sub.Changes)
		var doer apply.Doer = pt.Vendor
		if r.in.Guard != nil {
			doer = guarded{doer: doer, guard: r.in.Guard}
		}
		out := apply.Plan(ctx, doer, sub, apply.Options{
			Concurrency: r.in.Concurrency, DryRun: r.in.DryRun, Hard: r.in.Hard, FinishStarted: r.in.FinishStarted,
			OnResult: r.in.OnResult, Logger: r.base, Budget: r.quotes[i].Budget, Calls: r.quotes[i].Calls,
		})
		r.applied = append(r.applied, out.Results)
		r.rep.Results = append(r.rep.Results, out.Results...)
	}
	r.rep.Summary = apply.Summarize(r.rep.Results)
	r.logger.Info("plan applied", "applied", r.rep.Summary.Applied, "failed", r.rep.Summary.Failed, "skipped", r.rep.Summary.Skipped, "dry_run", r.in.DryRun)
	if r.in.DryRun || r.in.NoVerify {
		return false, nil
	}
	if ctx.Err() != nil {
		r.logger.Warn("sync cancelled: changes not yet sent were skipped; the next sync picks them up", "skipped", r.rep.Summary.Skipped)
		return false, nil
	}
	return true, nil
}

// confirm reads again what the results touched and records what remains. A failed
// confirmation is logged, not an error: the changes were applied.
func (r *run) confirm(ctx context.Context) (bool, error) {
	var remaining []plan.Change
	for i, pt := range r.loaded.Parts {
		if len(r.applied[i]) == 0 {
			continue
		}
		left, err := pt.Repo.Confirm(ctx, r.applied[i], r.opts)
		if err != nil {
			r.logger.Warn("could not confirm convergence", "error", err)
			return false, nil
		}
		remaining = append(remaining, left...)
	}
	r.rep.Verified = true
	r.rep.Remaining = remaining
	// A refused change was not sent, and one awaiting approval not applied, so what
	// either would have changed still differs.
	r.rep.Converged = len(remaining) == 0 && len(r.rep.Refused) == 0 && len(r.rep.AwaitingApproval) == 0
	switch {
	case r.rep.Converged:
		r.logger.Info("converged")
	case r.rep.OnlyAwaitingApproval():
		logRefused(r.logger, r.rep)
	case len(remaining) > 0:
		r.logger.Warn("not converged: differences remain after applying", "remaining", len(remaining), "refused", len(r.rep.Refused), "awaiting_approval", r.rep.AwaitingApprovalCount())
	default:
		logRefused(r.logger, r.rep)
	}
	return true, nil
}

// guarded is a vendor's Doer behind Input.Guard: the guard is asked before the change
// is handed to the vendor, and travels in the context to every request the vendor's
// client sends for it (api.WithGuard), retries included.
type guarded struct {
	doer  apply.Doer
	guard func(context.Context) error
}

func (g guarded) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	if err := g.guard(ctx); err != nil {
		return nil, &api.GuardError{Method: req.Method, Path: req.Path, Err: err}
	}
	return g.doer.Do(api.WithGuard(ctx, g.guard), req)
}

// merge joins the services' plans into the one plan a run shows and applies: changes in
// the services' order, renumbered.
func merge(revision string, plans []plan.Plan) plan.Plan {
	switch len(plans) {
	case 0:
		return plan.Plan{Revision: revision, Changes: []plan.Change{}, Unmanaged: []plan.Address{}}
	case 1:
		return plans[0]
	}
	out := plan.Plan{Revision: revision, Changes: []plan.Change{}, Unmanaged: []plan.Address{}}
	var services []string
	for _, p := range plans {
		if len(p.Changes)+len(p.Unmanaged)+len(p.Blocked)+len(p.Notes) > 0 || len(plans) == 1 {
			services = append(services, p.ServiceName())
		}
		// Orders are renumbered across the services, and so are the orders a change
		// needs first (Change.After), which a planner numbers from 1 in its own plan.
		base := len(out.Changes)
		for _, c := range p.Changes {
			c.Order = len(out.Changes) + 1
			if len(c.After) > 0 {
				after := make([]int, len(c.After))
				for i, o := range c.After {
					after[i] = o + base
				}
				c.After = after
			}
			out.Changes = append(out.Changes, c)
		}
		out.Unmanaged = append(out.Unmanaged, p.Unmanaged...)
		out.Blocked = append(out.Blocked, p.Blocked...)
		out.Notes = append(out.Notes, p.Notes...)
		out.Warnings = append(out.Warnings, p.Warnings...)
	}
	switch {
	case len(services) == 0:
		// Nothing to show: the plan speaks for the first service.
		out.Service = plans[0].Service
	case len(services) == 1:
		out.Service = services[0]
	default:
		out.Service = strings.Join(services, " and ")
	}
	return out
}
