package apply

import (
	"context"
	"encoding/json"
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
	Skipped Status = "skipped" // not sent: dry run, cancelled, or an earlier change of the flag failed
	Failed  Status = "failed"  // sent (or tried) and refused
)

// Reasons a change is skipped.
const (
	ReasonDryRun     = "dry run"
	ReasonCancelled  = "cancelled before it was sent"
	ReasonFlagFailed = "not sent: an earlier change of this flag failed"
)

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
}

// Result is what happened to one change.
type Result struct {
	Change   plan.Change
	Status   Status
	Err      error  // set when Status is Failed
	Note     string // why a change was skipped, or a remark on an applied one
	Duration time.Duration
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
		}
	}
	return s
}

// String renders the summary as "N applied, N failed, N skipped".
func (s Summary) String() string {
	return fmt.Sprintf("%d applied, %d failed, %d skipped", s.Applied, s.Failed, s.Skipped)
}

// Outcome is the result of applying a plan.
type Outcome struct {
	Results []Result // one per change, in plan order
	Summary Summary
}

// Plan applies p through d and returns one result per change, in plan order. It never
// returns early on a failed change: that flag's remaining changes are skipped and the
// other flags go on. The caller decides what a failure means (the CLI exits 1).
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

	r := &runner{doer: d, opts: opts, soft: ctx, hard: hard, logger: logger, results: make([]Result, len(p.Changes))}
	jobs := groupByFlag(p.Changes)
	if workers > len(jobs) {
		workers = len(jobs)
	}
	next := make(chan []int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range next {
				r.flag(p.Changes, idx)
			}
		}()
	}
	for _, idx := range jobs {
		next <- idx
	}
	close(next)
	wg.Wait()
	return Outcome{Results: r.results, Summary: Summarize(r.results)}
}

type runner struct {
	doer    Doer
	opts    Options
	soft    context.Context // cancelled: start nothing new
	hard    context.Context // cancelled: stop what is running
	logger  *slog.Logger
	results []Result // indexed like the plan's changes; each index written by one goroutine
}

// flag applies one flag's changes (indexes into changes, in order), strictly in sequence.
func (r *runner) flag(changes []plan.Change, idx []int) {
	stop := "" // once set, the reason every remaining change is skipped
	if r.soft.Err() != nil {
		stop = ReasonCancelled
	}
	for n, i := range idx {
		c := changes[i]
		if stop == "" && n > 0 && r.hard.Err() != nil {
			stop = ReasonCancelled
		}
		if stop == "" && n > 0 && !r.opts.FinishStarted && r.soft.Err() != nil {
			stop = ReasonCancelled
		}
		var res Result
		switch {
		case stop != "":
			res = Result{Change: c, Status: Skipped, Note: stop}
		case r.opts.DryRun:
			res = Result{Change: c, Status: Skipped, Note: ReasonDryRun}
		default:
			res = r.send(c)
			if res.Status == Failed {
				stop = ReasonFlagFailed
			}
		}
		r.results[i] = res
		r.log(res)
		if r.opts.OnResult != nil {
			r.opts.OnResult(res)
		}
	}
}

// send sends one change under the hard context, so that cancelling the run does not cut
// a request that is already on its way.
func (r *runner) send(c plan.Change) Result {
	start := time.Now()
	_, err := r.doer.Do(r.hard, c.Request)
	res := Result{Change: c, Status: Applied, Duration: time.Since(start)}
	switch {
	case err == nil:
	case c.Action == plan.ActionCreate && api.IsConflict(err):
		res.Note = NoteAlreadyExists
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
		r.logger.Info("change applied", append(attrs, "duration", res.Duration)...)
	case Failed:
		r.logger.Warn("change failed", append(attrs, "error", res.Err)...)
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

// groupByFlag returns, for each flag in order of its first change, the indexes of its
// changes sorted by Change.Order.
func groupByFlag(changes []plan.Change) [][]int {
	pos := make(map[plan.Address]int)
	var groups [][]int
	for i := range changes {
		ref := changes[i].Flag()
		g, ok := pos[ref]
		if !ok {
			g = len(groups)
			pos[ref] = g
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
