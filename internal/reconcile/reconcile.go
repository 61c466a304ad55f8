package reconcile

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
	"github.com/flagsync/flagsync/internal/plan"
)

// Input is one sync to run.
type Input struct {
	Revision string // the Git revision FS holds; carried by the plan and every log line
	FS       fs.FS  // the repository at Revision
	Dir      string // the flag folder inside FS ("." for the root)

	// Vendors are the flag services to sync, in order (see Vendor); at least one. A
	// repository may hold files of several services; each takes its own.
	Vendors []Vendor

	// DryRun computes the plan and goes through apply without sending a write.
	DryRun bool
	// Prune archives managed flags removed from Git; flagsync.yaml's prune: true turns
	// it on as well. Never in a partial run.
	Prune bool
	// MaxChanges refuses a plan with more changes than this (0: no limit). The plan is
	// still reported; Run returns a *TooManyChangesError and sends nothing.
	MaxChanges int
	// MaxArchive and AllowMassArchive are the planner's mass-archive guard.
	MaxArchive       int
	AllowMassArchive bool

	// Only makes a partial run (the daemon's webhook fast path): only these flags are
	// planned, each read with one get instead of listing their sites (named flags that
	// are not in Git are not read at all), and nothing is reported unmanaged or pruned.
	Only []plan.Address

	// Concurrency, Hard and FinishStarted are passed to apply (see apply.Options).
	Concurrency   int
	Hard          context.Context
	FinishStarted bool

	// NoVerify skips the confirming read after applying (Report.Verified stays false).
	NoVerify bool

	// OnPlan, when set, is called with the plan as soon as it is computed, before any
	// guard or write, so a command can show it while the changes are applied. It must
	// not block: the plan is applied from the live read just made, and a plan held
	// back for long (for a confirmation, say) would be applied to stale state.
	OnPlan func(plan.Plan)
	// OnResult, when set, is called for each change as it finishes (concurrently).
	OnResult func(apply.Result)

	// Calls, when set, returns how many HTTP calls the client has made so far (from its
	// Observer); the report records how many this run made.
	Calls func() int64

	Logger *slog.Logger
}

// Report is what one sync did.
type Report struct {
	Revision    string            `json:"revision"`
	DryRun      bool              `json:"dryRun"`
	Partial     bool              `json:"partial"`
	Diagnostics []diag.Diagnostic `json:"diagnostics,omitempty"` // set when the files are invalid; nothing was called
	Plan        plan.Plan         `json:"plan"`
	Results     []apply.Result    `json:"results"` // one per change, in plan order
	Summary     apply.Summary     `json:"summary"`
	Verified    bool              `json:"verified"`            // live state was read again after applying
	Remaining   []plan.Change     `json:"remaining,omitempty"` // differences left after applying (when Verified)
	Converged   bool              `json:"converged"`           // live state matches the files (as far as known)
	APICalls    int64             `json:"apiCalls"`            // HTTP calls this run made (when Input.Calls is set)
	Duration    time.Duration     `json:"-"`
	Sites       []string          `json:"sites"` // site codes (Split: workspace ids) read

	// Refused lists the changes the planner refused to make (the plan's Blocked, such as
	// a variation an environment Git does not manage still uses). Git still differs
	// from the service there, so a run with any is not converged, though every other
	// change was planned and applied as usual.
	Refused []plan.Blocked `json:"refused,omitempty"`
}

// TooManyChangesError is returned when a plan has more changes than Input.MaxChanges.
type TooManyChangesError struct {
	Changes, Max int
}

func (e *TooManyChangesError) Error() string {
	return fmt.Sprintf("plan has %d changes, more than the limit of %d: nothing was applied", e.Changes, e.Max)
}

// Run loads and validates the files, reads the live flags, computes the plan, checks the
// guards, applies the plan (unless dry run) and reads the touched sites again to confirm
// convergence. It returns an error when the pipeline stopped before or instead of
// applying (invalid files — a *diag.InvalidError, with the diagnostics also in the
// report —, a failed read, a guard); failed changes are not an error but results, and the
// report is always non-nil.
//
// Every step that knows a flag service goes through a Vendor (Input.Vendors): with
// several, each loads its own files, their plans are shown as one plan
// (each service's changes in its own order, services in Input.Vendors' order) and the
// guards count the whole plan.
func Run(ctx context.Context, in Input) (*Report, error) {
	start := time.Now()
	logger := in.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base := logger // apply adds the revision itself
	logger = logger.With("revision", in.Revision)
	var calls0 int64
	if in.Calls != nil {
		calls0 = in.Calls()
	}
	rep := &Report{Revision: in.Revision, DryRun: in.DryRun, Partial: len(in.Only) > 0}
	defer func() {
		rep.Duration = time.Since(start)
		if in.Calls != nil {
			rep.APICalls = in.Calls() - calls0
		}
	}()

	if len(in.Vendors) == 0 {
		return rep, errors.New("reconcile: no flag service to sync")
	}
	parts, err := load(in.Vendors, Source{FS: in.FS, Dir: in.Dir, Revision: in.Revision, Logger: logger})
	if err != nil {
		var invalid *diag.InvalidError
		if errors.As(err, &invalid) {
			rep.Diagnostics = invalid.Diagnostics
			logger.Warn("flag files are invalid: nothing read or written", "problems", len(invalid.Diagnostics))
		}
		return rep, fmt.Errorf("load flags from %s: %w", in.Dir, err)
	}
	opts := PlanOptions{Revision: in.Revision, Partial: rep.Partial, Prune: in.Prune, MaxArchive: in.MaxArchive, AllowMassArchive: in.AllowMassArchive}
	var plans []plan.Plan
	var planErr error
	for _, pt := range parts {
		if rep.Partial {
			pt.repo.Restrict(in.Only)
		}
		if err := pt.repo.Read(ctx, rep.Partial); err != nil {
			return rep, err
		}
		if !rep.Partial {
			rep.Sites = append(rep.Sites, pt.repo.Scopes()...)
		}
		p, err := pt.repo.Plan(opts)
		if planErr == nil {
			planErr = err
		}
		plans = append(plans, p)
	}
	p := merge(in.Revision, plans)
	rep.Plan = p
	rep.Refused = p.Blocked
	logger.Info("plan computed", "changes", len(p.Changes), "unmanaged", len(p.Unmanaged), "refused", len(p.Blocked), "left_alone", len(p.Notes), "dry_run", in.DryRun)
	if in.OnPlan != nil {
		in.OnPlan(p)
	}
	if planErr != nil {
		return rep, planErr // a *plan.MassArchiveError or a vendor's refusal, which says what it refused
	}
	if in.MaxChanges > 0 && len(p.Changes) > in.MaxChanges {
		return rep, &TooManyChangesError{Changes: len(p.Changes), Max: in.MaxChanges}
	}
	if len(p.Changes) == 0 {
		rep.Converged = len(rep.Refused) == 0
		rep.Results = []apply.Result{}
		if rep.Converged {
			logger.Info("in sync: no changes")
		} else {
			logRefused(logger, rep.Refused)
		}
		return rep, nil
	}

	// Each service's changes are applied through its own client, one service after the
	// other; their results keep the merged plan's order.
	var results [][]apply.Result
	offset := 0
	for i, pt := range parts {
		sub := plans[i]
		sub.Changes = p.Changes[offset : offset+len(sub.Changes)]
		offset += len(sub.Changes)
		out := apply.Plan(ctx, pt.vendor, sub, apply.Options{
			Concurrency: in.Concurrency, DryRun: in.DryRun, Hard: in.Hard, FinishStarted: in.FinishStarted,
			OnResult: in.OnResult, Logger: base,
		})
		results = append(results, out.Results)
		rep.Results = append(rep.Results, out.Results...)
	}
	rep.Summary = apply.Summarize(rep.Results)
	logger.Info("plan applied", "applied", rep.Summary.Applied, "failed", rep.Summary.Failed, "skipped", rep.Summary.Skipped, "dry_run", in.DryRun)
	if in.DryRun || in.NoVerify {
		return rep, nil
	}
	if ctx.Err() != nil {
		logger.Warn("sync cancelled: changes not yet sent were skipped; the next sync picks them up", "skipped", rep.Summary.Skipped)
		return rep, nil
	}

	var remaining []plan.Change
	for i, pt := range parts {
		if len(results[i]) == 0 {
			continue
		}
		r, err := pt.repo.Confirm(ctx, results[i], opts)
		if err != nil {
			// The changes were applied; only the confirmation is missing.
			logger.Warn("could not confirm convergence", "error", err)
			return rep, nil
		}
		remaining = append(remaining, r...)
	}
	rep.Verified = true
	rep.Remaining = remaining
	// A refused change was not sent, so what it would have changed still differs.
	rep.Converged = len(remaining) == 0 && len(rep.Refused) == 0
	switch {
	case rep.Converged:
		logger.Info("converged")
	case len(remaining) > 0:
		logger.Warn("not converged: differences remain after applying", "remaining", len(remaining), "refused", len(rep.Refused))
	default:
		logRefused(logger, rep.Refused)
	}
	return rep, nil
}

// logRefused warns that a run is not converged because the planner refused changes,
// one line per refusal.
func logRefused(logger *slog.Logger, refused []plan.Blocked) {
	for _, b := range refused {
		logger.Warn("not converged: change refused by the planner", "flag", b.Flag().String(), "reason", b.Reason)
	}
}

// NotConverged says, for people, why the run is not converged ("" when it is): the
// differences left after applying, the changes the planner refused, or that
// convergence was not confirmed (a dry run, an error, a cancelled run, no verify).
func (r *Report) NotConverged() string {
	if r == nil || r.Converged {
		return ""
	}
	var parts []string
	if r.Verified && len(r.Remaining) > 0 {
		verb := "remain"
		if len(r.Remaining) == 1 {
			verb = "remains"
		}
		parts = append(parts, fmt.Sprintf("%d %s %s after applying", len(r.Remaining), plural(len(r.Remaining), "difference"), verb))
	}
	if n := len(r.Refused); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s refused by the planner", n, plural(n, "change")))
	}
	if len(parts) == 0 {
		return "convergence not confirmed"
	}
	return strings.Join(parts, "; ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
