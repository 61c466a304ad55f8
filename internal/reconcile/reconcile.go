package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/flag"
	"github.com/flagsync/flagsync/internal/loader"
	"github.com/flagsync/flagsync/internal/plan"
)

// Client is what the pipeline needs from the API: one list call per site for a full
// run, one get per flag for a partial run, and Do to send planned requests.
// *api.Client satisfies it.
type Client interface {
	ListFlags(ctx context.Context, siteCode string) ([]flag.Flag, error)
	GetFlag(ctx context.Context, siteCode, featureKey string) (flag.Flag, error)
	apply.Doer
}

// Input is one sync to run.
type Input struct {
	Revision string // the Git revision FS holds; carried by the plan and every log line
	FS       fs.FS  // the repository at Revision
	Dir      string // the flag folder inside FS ("." for the root)
	Client   Client

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
	Only []flag.Ref

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
	Revision    string              `json:"revision"`
	DryRun      bool                `json:"dryRun"`
	Partial     bool                `json:"partial"`
	Diagnostics []loader.Diagnostic `json:"diagnostics,omitempty"` // set when the files are invalid; nothing was called
	Plan        plan.Plan           `json:"plan"`
	Results     []apply.Result      `json:"results"` // one per change, in plan order
	Summary     apply.Summary       `json:"summary"`
	Verified    bool                `json:"verified"`            // live state was read again after applying
	Remaining   []plan.Change       `json:"remaining,omitempty"` // differences left after applying (when Verified)
	Converged   bool                `json:"converged"`           // live state matches the files (as far as known)
	APICalls    int64               `json:"apiCalls"`            // HTTP calls this run made (when Input.Calls is set)
	Duration    time.Duration       `json:"-"`
	Sites       []string            `json:"sites"` // site codes read
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
// applying (invalid files — a *loader.InvalidError, with the diagnostics also in the
// report —, a failed read, a guard); failed changes are not an error but results, and the
// report is always non-nil.
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

	desired, err := loader.Load(in.FS, in.Dir)
	if err != nil {
		var invalid *loader.InvalidError
		if errors.As(err, &invalid) {
			rep.Diagnostics = invalid.Diagnostics
			logger.Warn("flag files are invalid: nothing read or written", "problems", len(invalid.Diagnostics))
		}
		return rep, fmt.Errorf("load flags from %s: %w", in.Dir, err)
	}
	desired.Revision = in.Revision
	s := &run{in: in, logger: logger, desired: desired}
	if rep.Partial {
		s.restrict()
	}

	live, err := s.read(ctx)
	if err != nil {
		return rep, err
	}
	rep.Sites = s.sites()
	p, planErr := s.compute(live)
	rep.Plan = p
	logger.Info("plan computed", "changes", len(p.Changes), "unmanaged", len(p.Unmanaged), "dry_run", in.DryRun)
	if in.OnPlan != nil {
		in.OnPlan(p)
	}
	if planErr != nil {
		return rep, planErr // a *plan.MassArchiveError, which says what it refused
	}
	if in.MaxChanges > 0 && len(p.Changes) > in.MaxChanges {
		return rep, &TooManyChangesError{Changes: len(p.Changes), Max: in.MaxChanges}
	}
	if len(p.Changes) == 0 {
		rep.Converged = true
		rep.Results = []apply.Result{}
		logger.Info("in sync: no changes")
		return rep, nil
	}

	out := apply.Plan(ctx, in.Client, p, apply.Options{
		Concurrency: in.Concurrency, DryRun: in.DryRun, Hard: in.Hard, FinishStarted: in.FinishStarted,
		OnResult: in.OnResult, Logger: base,
	})
	rep.Results, rep.Summary = out.Results, out.Summary
	logger.Info("plan applied", "applied", out.Summary.Applied, "failed", out.Summary.Failed, "skipped", out.Summary.Skipped, "dry_run", in.DryRun)
	if in.DryRun || in.NoVerify {
		return rep, nil
	}
	if ctx.Err() != nil {
		logger.Warn("sync cancelled: changes not yet sent were skipped; the next sync picks them up", "skipped", out.Summary.Skipped)
		return rep, nil
	}

	remaining, err := s.verify(ctx, live, out.Results)
	if err != nil {
		// The changes were applied; only the confirmation is missing.
		logger.Warn("could not confirm convergence", "error", err)
		return rep, nil
	}
	rep.Verified = true
	rep.Remaining = remaining
	rep.Converged = len(remaining) == 0
	if rep.Converged {
		logger.Info("converged")
	} else {
		logger.Warn("not converged: differences remain after applying", "remaining", len(remaining))
	}
	return rep, nil
}

// run is the state of one Run between its steps.
type run struct {
	in      Input
	logger  *slog.Logger
	desired *flag.Desired
}

// restrict keeps only the desired flags of a partial run.
func (s *run) restrict() {
	want := make(map[flag.Ref]bool, len(s.in.Only))
	for _, r := range s.in.Only {
		want[r] = true
	}
	kept := s.desired.Flags[:0:0]
	for _, f := range s.desired.Flags {
		if want[f.Ref()] {
			kept = append(kept, f)
		}
	}
	s.desired.Flags = kept
}

// sites returns the site codes a full run reads: every site code in the desired flags
// and the settings' default (so that pruning sees a site whose last flag was removed).
func (s *run) sites() []string {
	if len(s.in.Only) > 0 {
		return nil
	}
	seen := map[string]bool{}
	if s.desired.Settings.SiteCode != "" {
		seen[s.desired.Settings.SiteCode] = true
	}
	for _, f := range s.desired.Flags {
		seen[f.SiteCode] = true
	}
	out := make([]string, 0, len(seen))
	for site := range seen {
		out = append(out, site)
	}
	sort.Strings(out)
	return out
}

// read returns the live flags: one list per site in a full run; in a partial run, one
// get per named flag that is in Git (one that is not has nothing to apply, since a
// partial run never prunes).
func (s *run) read(ctx context.Context) ([]flag.Flag, error) {
	if len(s.in.Only) > 0 {
		refs := make([]flag.Ref, len(s.desired.Flags))
		for i := range s.desired.Flags {
			refs[i] = s.desired.Flags[i].Ref()
		}
		return s.get(ctx, refs)
	}
	return s.list(ctx, s.sites())
}

func (s *run) list(ctx context.Context, sites []string) ([]flag.Flag, error) {
	var live []flag.Flag
	for _, site := range sites {
		flags, err := s.in.Client.ListFlags(ctx, site)
		if err != nil {
			return nil, fmt.Errorf("read live flags of site %s: %w", site, err)
		}
		n := 0
		for _, f := range flags {
			// Whether the list endpoint filters by site is not documented: filter here too.
			if f.SiteCode == site {
				live = append(live, f)
				n++
			}
		}
		s.logger.Debug("live flags read", "site", site, "flags", n)
	}
	return live, nil
}

func (s *run) get(ctx context.Context, refs []flag.Ref) ([]flag.Flag, error) {
	var live []flag.Flag
	seen := make(map[flag.Ref]bool, len(refs))
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		f, err := s.in.Client.GetFlag(ctx, r.SiteCode, r.FeatureKey)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read live flag %s: %w", r, err)
		}
		live = append(live, f)
	}
	return live, nil
}

// compute plans the desired flags against live. A partial run neither prunes nor reports
// unmanaged flags: it has not seen the whole site.
func (s *run) compute(live []flag.Flag) (plan.Plan, error) {
	partial := len(s.in.Only) > 0
	opts := plan.OptionsFor(s.desired.Settings)
	opts.Prune = !partial && (opts.Prune || s.in.Prune)
	opts.MaxArchive, opts.AllowMassArchive = s.in.MaxArchive, s.in.AllowMassArchive
	p, err := plan.Compute(s.desired, live, opts)
	p.Revision = s.in.Revision
	if partial {
		p.Unmanaged = []flag.Ref{}
	}
	return p, err
}

// verify reads again what the results touched and re-plans; the changes of that plan are
// what remains. It spends the fewest calls it can: one get per touched flag when that is
// fewer calls than listing the touched sites again (always in a partial run), otherwise
// one list per touched site.
func (s *run) verify(ctx context.Context, live []flag.Flag, results []apply.Result) ([]plan.Change, error) {
	touched := map[flag.Ref]bool{}
	sites := map[string]bool{}
	for _, r := range results {
		if r.Status == apply.Skipped {
			continue // never sent: the first read still holds for it
		}
		touched[r.Change.Ref()] = true
		sites[r.Change.SiteCode] = true
	}
	perSite := map[string]int{} // flags on each touched site once the creates landed
	for _, f := range live {
		if sites[f.SiteCode] {
			perSite[f.SiteCode]++
		}
	}
	for _, r := range results {
		if r.Status != apply.Skipped && r.Change.Action == plan.ActionCreate {
			perSite[r.Change.SiteCode]++
		}
	}
	pages := 0
	for site := range sites {
		pages += max(1, (perSite[site]+api.DefaultPerPage-1)/api.DefaultPerPage)
	}

	// stale reports whether a live flag is replaced by what is read now.
	var stale func(f *flag.Flag) bool
	var fresh []flag.Flag
	var err error
	if len(s.in.Only) > 0 || len(touched) < pages {
		refs := make([]flag.Ref, 0, len(touched))
		for r := range touched {
			refs = append(refs, r)
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
		fresh, err = s.get(ctx, refs)
		stale = func(f *flag.Flag) bool { return touched[f.Ref()] }
	} else {
		list := make([]string, 0, len(sites))
		for site := range sites {
			list = append(list, site)
		}
		sort.Strings(list)
		fresh, err = s.list(ctx, list)
		stale = func(f *flag.Flag) bool { return sites[f.SiteCode] }
	}
	if err != nil {
		return nil, fmt.Errorf("confirm convergence: %w", err)
	}
	now := fresh
	for i := range live {
		if !stale(&live[i]) {
			now = append(now, live[i])
		}
	}
	p, _ := s.compute(now) // a guard refusal here still lists what differs
	return p.Changes, nil
}
