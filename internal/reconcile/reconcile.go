package reconcile

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/plan"
)

// Input is one sync to run.
type Input struct {
	Revision string // the Git revision FS holds; carried by the plan and every log line
	FS       fs.FS  // the repository at Revision
	Dir      string // the flag folder inside FS ("." for the root)

	// Vendors are the flag services that may sync the repository, in order (see Vendor);
	// at least one unless Loaded is set. A repository may hold files of several services;
	// the load step decides which it needs, and each takes its own files.
	Vendors []Vendor
	// Cache, when not nil, is the validation cache the load step's loaders use (see
	// Source.Cache).
	Cache *loadcache.Cache
	// Loaded, when set, is the repository already loaded by Load (the daemon indexes a
	// revision with it before syncing it): the run starts at the connect step.
	Loaded *Loaded
	// Connect, when set, is the connect step: it gets the loaded repository (an embedded
	// sandbox takes its environments from it) and returns connected vendors of its
	// services, through which the loaded repository is read and written. Without it, the
	// vendors that loaded the repository are used as they are.
	Connect func(ctx context.Context, l *Loaded) ([]Vendor, error)

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

	// Guard, when set, is asked before every HTTP request sent for a change (each
	// vendor's Do, and every retry inside it; see api.WithGuard): an error fails the
	// change unsent. The daemon passes its leader election's guard, so a replica that
	// lost its lease stops writing before its next request.
	Guard func(ctx context.Context) error

	// OnPlan, when set, is called with the plan as soon as it is computed, the policies
	// evaluated on it and priced, before any guard or write, so a command can show it
	// while the changes are applied. It must
	// not block: the plan is applied from the live read just made, and a plan held
	// back for long (for a confirmation, say) would be applied to stale state.
	OnPlan func(plan.Plan)
	// Now, when set, is the clock the policies read as `now` (tests); time.Now otherwise.
	Now func() time.Time
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
	// a variation an environment Git does not manage still uses), without those awaiting
	// approval. Git still differs from the service there, so a run with any is not
	// converged, though every other change was planned and applied as usual.
	Refused []plan.Blocked `json:"refused,omitempty"`
	// AwaitingApproval lists the changes already filed for approval in the service (the
	// plan's Blocked of kind plan.BlockedAwaitingApproval). They are not refused: the
	// service holds them for a person to approve. Until then it differs from Git, so the
	// run is not converged; see OnlyAwaitingApproval.
	AwaitingApproval []plan.Blocked `json:"awaitingApproval,omitempty"`
}

// TooManyChangesError is returned when a plan has more changes than Input.MaxChanges.
type TooManyChangesError struct {
	Changes, Max int
}

func (e *TooManyChangesError) Error() string {
	return fmt.Sprintf("plan has %d changes, more than the limit of %d: nothing was applied", e.Changes, e.Max)
}

// logRefused warns that a run is not converged because the planner refused changes,
// one line per refusal (the planner's or a policy's), and says which changes wait for
// approval, one line each.
func logRefused(logger *slog.Logger, rep *Report) {
	for _, b := range rep.Refused {
		by := "the planner"
		if b.Kind == plan.BlockedPolicy {
			by = "a policy"
		}
		logger.Warn("not converged: change refused by "+by, "flag", b.Flag().String(), "env", b.Environment, "reason", b.Reason)
	}
	for _, b := range rep.AwaitingApproval {
		logger.Info("not converged: change awaiting approval in "+b.Service, "flag", b.Flag().String(), "change_request", b.ChangeRequest)
	}
}

// splitBlocked separates a plan's refused changes from those awaiting approval.
func splitBlocked(blocked []plan.Blocked) (refused, awaiting []plan.Blocked) {
	for _, b := range blocked {
		if b.Kind == plan.BlockedAwaitingApproval {
			awaiting = append(awaiting, b)
		} else {
			refused = append(refused, b)
		}
	}
	return refused, awaiting
}

// AwaitingFlags returns the flags whose changes wait for approval in their service,
// each with its service: those the plan knew of, and those apply filed (or found
// filed) now.
func (r *Report) AwaitingFlags() map[plan.Address]string {
	out := map[plan.Address]string{}
	for _, b := range r.AwaitingApproval {
		out[b.Flag()] = b.Service
	}
	for _, res := range r.Results {
		if res.Status == apply.AwaitingApproval {
			out[res.Change.Flag()] = res.Change.Service
		}
	}
	return out
}

// AwaitingApprovalCount is how many changes wait for approval in their service: the
// plan's awaiting entries, or apply's results awaiting approval, whichever says more.
func (r *Report) AwaitingApprovalCount() int {
	if r == nil {
		return 0
	}
	return max(len(r.AwaitingApproval), r.Summary.AwaitingApproval)
}

// OnlyAwaitingApproval reports whether the run did all it could and is not converged
// only because changes wait for approval in their service: nothing failed, nothing was
// refused, and every difference left after applying is a change awaiting approval. A
// person, not another run, moves it on; sync exits 0 for it.
func (r *Report) OnlyAwaitingApproval() bool {
	if r == nil || r.Converged || r.DryRun || r.Summary.Failed > 0 || len(r.Refused) > 0 || r.AwaitingApprovalCount() == 0 {
		return false
	}
	held := r.AwaitingFlags()
	for _, c := range r.Remaining {
		if _, ok := held[c.Flag()]; !ok {
			return false
		}
	}
	return r.Verified || len(r.Plan.Changes) == 0 || len(r.Results) > 0
}

// NotConverged says, for people, why the run is not converged ("" when it is): the
// differences left after applying, the changes the planner refused, the changes
// awaiting approval in their service, or that convergence was not confirmed (a dry
// run, an error, a cancelled run, no verify).
func (r *Report) NotConverged() string {
	if r == nil || r.Converged {
		return ""
	}
	var parts []string
	held := r.AwaitingFlags()
	if r.Verified {
		left := 0
		for _, c := range r.Remaining {
			if _, ok := held[c.Flag()]; !ok {
				left++
			}
		}
		if left > 0 {
			verb := "remain"
			if left == 1 {
				verb = "remains"
			}
			parts = append(parts, fmt.Sprintf("%d %s %s after applying", left, plural(left, "difference"), verb))
		}
	}
	policies := 0
	for _, b := range r.Refused {
		if b.Kind == plan.BlockedPolicy {
			policies++
		}
	}
	if n := len(r.Refused) - policies; n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s refused by the planner", n, plural(n, "change")))
	}
	if policies > 0 {
		parts = append(parts, fmt.Sprintf("%d %s refused by policies", policies, plural(policies, "change")))
	}
	if n := r.AwaitingApprovalCount(); n > 0 {
		services := map[string]bool{}
		var names []string
		for _, s := range held {
			if s != "" && !services[s] {
				services[s] = true
				names = append(names, s)
			}
		}
		sort.Strings(names)
		where := strings.Join(names, " and ")
		if where == "" {
			where = "the service"
		}
		parts = append(parts, fmt.Sprintf("%d %s awaiting approval in %s", n, plural(n, "change"), where))
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
