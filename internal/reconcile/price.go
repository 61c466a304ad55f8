package reconcile

import (
	"context"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/plan"
)

// Pricer is implemented by a Repo whose service prices its plans (the price step): the
// calls its read made, its price rule for applying and confirming, and the rate budget
// its calls are charged to. A Repo without it is priced by a neutral default (one call
// per change, the run's calls so far as its reads, no limits), which the price says.
type Pricer interface {
	// Quote prices p, the Repo's part of the run's plan, after its read.
	Quote(p plan.Plan) Quote
}

// Quote is a service's price of its part of a run's plan.
type Quote struct {
	Token int // token requests the run made so far
	Reads int // calls the read step made (list pages, searches, gets)
	// ReadsUncounted: the service does not count its reads; the price step takes the
	// run's calls so far that no other service counted (Input.Calls) as its reads.
	ReadsUncounted bool
	// Calls is how many calls sending a change makes, each charged to Budget (nil: one
	// per change).
	Calls func(plan.Change) int
	// ConfirmReads is how many reads the confirm step makes once every change is
	// applied (none where the writes' answers confirm them).
	ConfirmReads int
	// Budget is the rate budget the service's calls are charged to; nil when not known.
	// Apply sends the plan in waves that fit its longest window.
	Budget *api.Budget
}

// defaultRule is what a price made by the neutral default says.
const defaultRule = "default price: one call per change, the run's calls so far as its reads; the service states no price rule"

// price prices the plan (see Pricer), says when applying it does not fit what is left of
// a service's window, and shows the priced plan (Input.OnPlan).
func (r *run) price(context.Context) (bool, error) {
	p := &plan.Price{DryRun: r.in.DryRun, Services: []plan.ServicePrice{}}
	merged := r.planned.merged
	unpriced := 0 // calls the run made that no Pricer claimed
	if r.in.Calls != nil {
		unpriced = int(r.in.Calls() - r.calls0)
	}
	offset := 0
	r.quotes = make([]Quote, len(r.loaded.Parts))
	defaults := []int{}
	for i, pt := range r.loaded.Parts {
		sub := r.planned.parts[i]
		sub.Changes = merged.Changes[offset : offset+len(sub.Changes)]
		offset += len(sub.Changes)
		var q Quote
		pricer, ok := pt.Repo.(Pricer)
		if ok {
			q = pricer.Quote(sub)
			unpriced -= q.Token + q.Reads
		}
		if !ok || q.ReadsUncounted {
			defaults = append(defaults, i)
		}
		r.quotes[i] = q
		p.Services = append(p.Services, servicePrice(sub, q, r.in.DryRun))
		if !ok {
			p.Services[i].Rule = defaultRule
		}
	}
	if len(defaults) > 0 && unpriced > 0 {
		// Only the run's calls so far are known: they are the reads of the services that
		// do not count theirs, all given to the first.
		sp := &p.Services[defaults[0]]
		sp.Reads += unpriced
		sp.Calls += unpriced
	}
	for _, sp := range p.Services {
		p.Calls += sp.Calls
	}
	r.planned.merged.Price = p
	r.rep.Plan.Price = p
	for _, sp := range p.Services {
		attrs := []any{"service", sp.Service, "calls", sp.Calls, "token", sp.Token, "reads", sp.Reads, "writes", sp.Writes,
			"confirm_reads", sp.ConfirmReads, "dry_run", r.in.DryRun}
		if sp.Window != nil {
			attrs = append(attrs, "window", sp.Window.Period, "window_left", sp.Window.Left, "apply_time", sp.Duration().Round(time.Second))
		}
		r.logger.Info("plan priced", attrs...)
		if !sp.Fits && !r.in.DryRun {
			r.logger.Warn("applying the plan does not fit the API budget left in this window: it goes in waves, each waiting for the window to make room",
				append(attrs, "waves", sp.Waves)...)
		}
	}
	if r.in.OnPlan != nil {
		r.in.OnPlan(r.planned.merged)
	}
	return true, nil
}

// servicePrice prices sub, one service's part of the plan, by its quote.
func servicePrice(sub plan.Plan, q Quote, dryRun bool) plan.ServicePrice {
	sp := plan.ServicePrice{Service: sub.ServiceName(), Token: q.Token, Reads: q.Reads, Limits: []plan.Limit{}, Fits: true}
	for _, c := range sub.Changes {
		if q.Calls == nil {
			sp.Writes++
		} else {
			sp.Writes += q.Calls(c)
		}
	}
	if sp.Writes > 0 {
		sp.ConfirmReads = q.ConfirmReads
	}
	sp.Calls = sp.Token + sp.Reads
	if !dryRun {
		sp.Calls += sp.Apply()
	}
	if sp.Writes > 0 {
		sp.Waves = 1
	}
	if q.Budget == nil {
		return sp
	}
	for _, w := range q.Budget.Windows() {
		sp.Limits = append(sp.Limits, plan.Limit{Calls: w.Limit, Period: periodName(w.Period)})
	}
	w, room, ok := q.Budget.Room()
	if !ok {
		return sp
	}
	sp.Window = &plan.Window{Period: periodName(w.Period), Limit: w.Limit, Left: room, Apply: sp.Apply()}
	if sp.Writes == 0 {
		return sp
	}
	waves := apply.Waves(sub, q.Calls, room, w.Limit)
	sp.Waves = len(waves)
	sp.Fits = sp.Apply() <= room
	if sp.ConfirmReads > 0 {
		waves[len(waves)-1] += sp.ConfirmReads
	}
	sp.Seconds = q.Budget.Time(waves).Seconds()
	return sp
}

// periodName renders a window's period compactly: 10s, 1h, 1m.
func periodName(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, z) {
			s = strings.TrimSuffix(s, z[1:])
		}
	}
	return s
}
