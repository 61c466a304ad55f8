package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
)

// Doer sends one planned request exactly as it is. Every vendor's client satisfies it;
// its budget does all the waiting, so apply adds no pacing of its own.
type Doer interface {
	Do(ctx context.Context, req api.Request) (json.RawMessage, error)
}

// Status is what happened to one change.
type Status string

// Statuses of a change.
const (
	Applied Status = "applied" // sent and accepted (or found already done, see Result.Note)
	Skipped Status = "skipped" // not sent: dry run, cancelled, or a change it needs failed
	Failed  Status = "failed"  // sent (or tried) and refused
	// AwaitingApproval: the service did not apply the change but holds it for a person to
	// approve (the Doer returned a *PendingApproval): filed now, or already waiting.
	AwaitingApproval Status = "awaiting-approval"
)

// Reasons a change is skipped.
const (
	ReasonDryRun     = "dry run"
	ReasonCancelled  = "cancelled before it was sent"
	ReasonFlagFailed = "not sent: an earlier change of this flag failed"
)

// PendingApproval is the error a Doer returns when the service did not apply a change
// but holds it for approval: a change request was filed for it, or one for the same
// change was already waiting (Filed false) and was not filed again. Apply reports the
// change as AwaitingApproval, not as failed.
type PendingApproval struct {
	Request string // the service's id of the request that waits for approval
	Filed   bool   // filed by this call; false: it was already open
	Detail  string // for people: what waits for whom
}

// Error says what waits for approval.
func (e *PendingApproval) Error() string {
	s := "awaiting approval: change request " + e.Request
	if e.Filed {
		s += " filed"
	} else {
		s += " already open; not filed again"
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Sending is the change a Doer is asked to send, with the plan's revision. A vendor whose
// API records why a change is made (a title and a comment), or files it for approval,
// reads it from the context with SendingFrom.
type Sending struct {
	Change   plan.Change
	Revision string
}

type sendingKey struct{}

// SendingFrom returns the change being sent when ctx is the context Plan passes to
// Doer.Do.
func SendingFrom(ctx context.Context) (Sending, bool) {
	s, ok := ctx.Value(sendingKey{}).(Sending)
	return s, ok
}

// NoteAlreadyExists is the note on a create that the API refused with 409: the flag exists,
// most likely from an earlier run whose create landed but whose response was lost. It counts
// as applied; the re-plan that follows patches any difference.
const NoteAlreadyExists = "flag already existed (409); any difference is patched by the re-plan"

// DefaultConcurrency is how many flags are applied at once when Options.Concurrency is 0.
const DefaultConcurrency = 4

// DefaultGrace is how long work already started may go on after the context passed to
// Plan is cancelled, when Options.Hard is nil.
const DefaultGrace = 10 * time.Second

// Options tune how a plan is applied.
type Options struct {
	// Concurrency is how many flags are applied at once (DefaultConcurrency when 0).
	// The changes of one flag always go strictly one after another.
	Concurrency int

	// DryRun goes through every step but sends nothing: each change is skipped with
	// ReasonDryRun.
	DryRun bool

	// Hard bounds work already started. Cancelling the context passed to Plan stops new
	// flags from starting; a started flag's in-flight request runs on until it completes
	// or Hard is done. When nil, Hard ends DefaultGrace after the Plan context ends.
	Hard context.Context

	// FinishStarted lets a started flag send its remaining changes after the Plan
	// context is cancelled, as long as Hard lasts (a daemon shutting down with a
	// deadline). Without it, a started flag stops after its in-flight change and the
	// rest of its changes are skipped with ReasonCancelled.
	FinishStarted bool

	// OnResult, when set, is called once per change as soon as its result is known,
	// from the goroutine that applied it (so it must be safe for concurrent use).
	OnResult func(Result)

	// Logger receives one line per change, carrying revision, flag, env and action.
	Logger *slog.Logger

	// Budget, when set, is the rate budget the Doer's calls are charged to. Apply then
	// sends the plan in waves that fit its longest window (Kameleoon's hour): the first
	// wave holds the flags whose calls fit what is left of the window now, each later
	// wave at most the window's limit, and a wave starts only once the window has room
	// for all of it. A flag's changes are never split across waves, so a sync larger than
	// what is left this hour waits for the window instead of leaving flags half-applied
	// for an hour, and never causes a 429 itself.
	Budget *api.Budget
	// Calls is how many budgeted calls sending a change takes (the vendor's price rule);
	// nil means one per change.
	Calls func(plan.Change) int
}

// Result is what happened to one change.
type Result struct {
	Change   plan.Change
	Status   Status
	Err      error  // set when Status is Failed
	Note     string // why a change was skipped, or a remark on an applied one
	Duration time.Duration
	// Response is the service's answer to an applied change (nil when it had none, or
	// the change was not applied). A vendor whose writes answer with the whole flag
	// confirms the change with it instead of reading the flag again.
	Response json.RawMessage
}

// MarshalJSON renders the result with the change's identity (not its request) and the
// error as text.
func (r Result) MarshalJSON() ([]byte, error) {
	out := struct {
		Order       int         `json:"order"`
		Action      plan.Action `json:"action"`
		Service     string      `json:"service"`
		Scope       string      `json:"scope"`
		Key         string      `json:"key"`
		Environment string      `json:"environment,omitempty"`
		Status      Status      `json:"status"`
		Error       string      `json:"error,omitempty"`
		Note        string      `json:"note,omitempty"`
		DurationMS  int64       `json:"durationMs"`
	}{
		Order: r.Change.Order, Action: r.Change.Action, Service: r.Change.Service, Scope: r.Change.Scope,
		Key: r.Change.Key, Environment: r.Change.Environment,
		Status: r.Status, Note: r.Note, DurationMS: r.Duration.Milliseconds(),
	}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	return json.Marshal(out)
}

// Summary counts results by status.
type Summary struct {
	Applied int `json:"applied"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// AwaitingApproval counts the changes the service holds for approval (absent when 0).
	AwaitingApproval int `json:"awaitingApproval,omitempty"`
}

// Summarize counts results by status.
func Summarize(results []Result) Summary {
	var s Summary
	for _, r := range results {
		switch r.Status {
		case Applied:
			s.Applied++
		case Failed:
			s.Failed++
		case Skipped:
			s.Skipped++
		case AwaitingApproval:
			s.AwaitingApproval++
		}
	}
	return s
}

// String renders the summary as "N applied, N failed, N skipped", followed by
// ", N awaiting approval" when any change waits for approval.
func (s Summary) String() string {
	out := fmt.Sprintf("%d applied, %d failed, %d skipped", s.Applied, s.Failed, s.Skipped)
	if s.AwaitingApproval > 0 {
		out += fmt.Sprintf(", %d awaiting approval", s.AwaitingApproval)
	}
	return out
}

// Outcome is the result of applying a plan.
type Outcome struct {
	Results []Result // one per change, in plan order
	Summary Summary
}

// Plan applies p through d and returns one result per change, in plan order. It never
// returns early on a failed change: that flag's remaining changes are skipped, and so
// are the changes that need it (Change.After), and the other flags go on. The caller
// decides what a failure means (the CLI exits 1).
//
// Flags are applied concurrently, each flag's changes strictly in order. Flags whose
// changes are linked by Change.After (a definition that needs another flag's definition
// first) are applied as one unit, their changes strictly in plan order, so that a change
// is sent only after the changes it needs were applied.
func Plan(ctx context.Context, d Doer, p plan.Plan, opts Options) Outcome {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("revision", p.Revision)
	hard := opts.Hard
	if hard == nil {
		var cancel context.CancelFunc
		hard, cancel = graceContext(ctx, DefaultGrace)
		defer cancel()
	}
	workers := opts.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}

	r := &runner{doer: d, opts: opts, soft: ctx, hard: hard, logger: logger, revision: p.Revision, results: make([]Result, len(p.Changes))}
	units := groupUnits(p.Changes)
	waves := []wave{{units: units}}
	if opts.Budget != nil && !opts.DryRun {
		if w, room, ok := opts.Budget.Room(); ok {
			waves = splitWaves(p.Changes, units, callsOf(opts.Calls), room, w.Limit)
		}
	}
	for i, w := range waves {
		if len(waves) > 1 {
			// Waits for the window to make room for the whole wave; on cancellation the
			// wave's changes are skipped as cancelled by unit.
			logger.Info("applying in waves that fit the API budget: waiting for room for the next wave",
				"wave", i+1, "waves", len(waves), "calls", w.calls, "flags", len(w.units))
			if err := opts.Budget.WaitRoom(ctx, w.calls); err != nil {
				logger.Warn("wave not started", "wave", i+1, "error", err.Error())
			}
		}
		r.run(p.Changes, w.units, workers)
	}
	return Outcome{Results: r.results, Summary: Summarize(r.results)}
}

// run applies units (see groupUnits) with at most workers at once.
func (r *runner) run(changes []plan.Change, units [][]int, workers int) {
	workers = min(workers, len(units))
	next := make(chan []int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range next {
				r.unit(changes, idx)
			}
		}()
	}
	for _, idx := range units {
		next <- idx
	}
	close(next)
	wg.Wait()
}

// wave is units (see groupUnits) sent together, and the budgeted calls they take.
type wave struct {
	units [][]int
	calls int
}

func callsOf(calls func(plan.Change) int) func(plan.Change) int {
	if calls == nil {
		return func(plan.Change) int { return 1 }
	}
	return calls
}

// splitWaves splits units into waves: the first holds the units whose calls fit room, in
// order; each later one at most limit calls. A unit is never split; a unit alone larger
// than a wave's capacity is a wave of its own. When not even the first unit fits room,
// the first wave waits for the window like the others, and may hold limit calls.
func splitWaves(changes []plan.Change, units [][]int, calls func(plan.Change) int, room, limit int) []wave {
	var out []wave
	cur, capacity := wave{}, room
	for k, u := range units {
		n := 0
		for _, i := range u {
			n += calls(changes[i])
		}
		if k == 0 && n > room {
			capacity = max(limit, room)
		}
		if len(cur.units) > 0 && cur.calls+n > capacity {
			out = append(out, cur)
			cur, capacity = wave{}, limit
		}
		cur.units = append(cur.units, u)
		cur.calls += n
	}
	if len(cur.units) > 0 || len(out) == 0 {
		out = append(out, cur)
	}
	return out
}

// Waves returns the budgeted calls of each wave Plan sends p in (see Options.Budget),
// when room calls are left in the budget's longest window of limit calls; calls is the
// vendor's price rule (nil: one call per change). The price step states them before the
// plan is applied.
func Waves(p plan.Plan, calls func(plan.Change) int, room, limit int) []int {
	waves := splitWaves(p.Changes, groupUnits(p.Changes), callsOf(calls), room, limit)
	out := make([]int, len(waves))
	for i, w := range waves {
		out[i] = w.calls
	}
	return out
}

type runner struct {
	doer     Doer
	opts     Options
	soft     context.Context // cancelled: start nothing new
	hard     context.Context // cancelled: stop what is running
	logger   *slog.Logger
	revision string
	results  []Result // indexed like the plan's changes; each index written by one goroutine
}

// unit applies the changes of one flag, or of flags linked by Change.After (indexes into
// changes, in order), strictly in sequence. A failed change skips the later changes of
// its flag; a change whose After names a change that was not applied is skipped.
func (r *runner) unit(changes []plan.Change, idx []int) {
	cancelled := "" // once set, the reason every remaining change is skipped
	if r.soft.Err() != nil {
		cancelled = ReasonCancelled
	}
	stopped := map[plan.Address]bool{} // flags with a failed change
	byOrder := make(map[int]int, len(idx))
	for _, i := range idx {
		byOrder[changes[i].Order] = i
	}
	for n, i := range idx {
		c := changes[i]
		if cancelled == "" && n > 0 && r.hard.Err() != nil {
			cancelled = ReasonCancelled
		}
		if cancelled == "" && n > 0 && !r.opts.FinishStarted && r.soft.Err() != nil {
			cancelled = ReasonCancelled
		}
		var res Result
		switch {
		case stopped[c.Flag()]:
			res = Result{Change: c, Status: Skipped, Note: ReasonFlagFailed}
		case cancelled != "":
			res = Result{Change: c, Status: Skipped, Note: cancelled}
		case r.opts.DryRun:
			res = Result{Change: c, Status: Skipped, Note: ReasonDryRun}
		default:
			if note := r.unmet(c, byOrder); note != "" {
				res = Result{Change: c, Status: Skipped, Note: note}
				break
			}
			res = r.send(c)
			if res.Status == Failed {
				stopped[c.Flag()] = true
			}
		}
		r.results[i] = res
		r.log(res)
		if r.opts.OnResult != nil {
			r.opts.OnResult(res)
		}
	}
}

// unmet says why c cannot be sent because a change it needs (Change.After) was not
// applied; "" when every one was. Needed changes come earlier in the same unit, so their
// results are known.
func (r *runner) unmet(c plan.Change, byOrder map[int]int) string {
	for _, o := range c.After {
		i, ok := byOrder[o]
		if !ok {
			continue
		}
		switch res := r.results[i]; res.Status {
		case Applied:
		case AwaitingApproval:
			return fmt.Sprintf("not sent: change %d it needs is awaiting approval", o)
		default:
			return fmt.Sprintf("not sent: change %d it needs was not applied (%s)", o, res.Status)
		}
	}
	return ""
}

// send sends one change under the hard context, so that cancelling the run does not cut
// a request that is already on its way. The context tells the Doer which change it
// sends (SendingFrom).
func (r *runner) send(c plan.Change) Result {
	start := time.Now()
	ctx := context.WithValue(r.hard, sendingKey{}, Sending{Change: c, Revision: r.revision})
	body, err := r.doer.Do(ctx, c.Request)
	res := Result{Change: c, Status: Applied, Duration: time.Since(start)}
	if err == nil {
		res.Response = body
	}
	var pending *PendingApproval
	switch {
	case err == nil:
	case c.Action == plan.ActionCreate && api.IsConflict(err):
		res.Note = NoteAlreadyExists
	case errors.As(err, &pending):
		res.Status = AwaitingApproval
		res.Note = pending.Error()
	default:
		res.Status = Failed
		res.Err = fmt.Errorf("%s %s: %w", c.Action, changeTarget(c), err)
	}
	return res
}

func (r *runner) log(res Result) {
	c := res.Change
	attrs := []any{"flag", c.Flag().String(), "action", string(c.Action), "order", c.Order}
	if c.Environment != "" {
		attrs = append(attrs, "env", c.Environment)
	}
	switch res.Status {
	case Applied:
		if res.Note != "" {
			attrs = append(attrs, "note", res.Note)
		}
		r.logger.Info("change applied", append(attrs, "duration_ms", res.Duration.Milliseconds())...)
	case Failed:
		r.logger.Warn("change failed", append(attrs, "error", res.Err)...)
	case AwaitingApproval:
		r.logger.Info("change awaiting approval", append(attrs, "note", res.Note)...)
	case Skipped:
		r.logger.Debug("change skipped", append(attrs, "reason", res.Note)...)
	}
}

// changeTarget names what a change touches: site/key or site/key/env.
func changeTarget(c plan.Change) string {
	if c.Environment != "" {
		return c.Flag().String() + "/" + c.Environment
	}
	return c.Flag().String()
}

// groupUnits returns the units applied one after the other: each flag's changes, with
// the flags that Change.After links merged into one unit; units in order of their first
// change, each unit's indexes sorted by Change.Order.
func groupUnits(changes []plan.Change) [][]int {
	parent := map[plan.Address]plan.Address{}
	var find func(a plan.Address) plan.Address
	find = func(a plan.Address) plan.Address {
		p, ok := parent[a]
		if !ok || p == a {
			return a
		}
		root := find(p)
		parent[a] = root
		return root
	}
	flagOf := make(map[int]plan.Address, len(changes))
	for i := range changes {
		flagOf[changes[i].Order] = changes[i].Flag()
	}
	for i := range changes {
		for _, o := range changes[i].After {
			if other, ok := flagOf[o]; ok {
				a, b := find(changes[i].Flag()), find(other)
				if a != b {
					parent[a] = b
				}
			}
		}
	}
	pos := make(map[plan.Address]int)
	var groups [][]int
	for i := range changes {
		root := find(changes[i].Flag())
		g, ok := pos[root]
		if !ok {
			g = len(groups)
			pos[root] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range groups {
		sort.SliceStable(g, func(a, b int) bool { return changes[g[a]].Order < changes[g[b]].Order })
	}
	return groups
}

// graceContext returns a context that ends grace after parent ends (or when cancel is
// called), keeping none of parent's cancellation itself.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() { stop(); cancel() }
}
