package plan

import (
	"fmt"
	"strings"
	"time"
)

// Price is what a run's plan costs in API calls, per service: the calls the run made to
// read the live state the plan was computed from, and those applying it and confirming
// what was applied will make, against the service's rate limits. The price step of a
// sync sets it (reconcile.Run), after the plan and before anything is written; a plan
// computed on its own has none. Each service prices its own plan (its price rule); the
// core renders it.
type Price struct {
	// DryRun: nothing is applied, so Calls holds the reads only; the writes are still
	// stated, as what a sync of the plan would add.
	DryRun bool `json:"dryRun"`
	// Calls is every call the run makes: the services' Calls summed.
	Calls    int            `json:"calls"`
	Services []ServicePrice `json:"services"`
}

// ServicePrice is one service's part of a Price.
type ServicePrice struct {
	Service string `json:"service"`
	// Rule says how the calls were priced when the service has no price rule of its own
	// (a default: one call per change, reads not counted); "" when it has.
	Rule string `json:"rule,omitempty"`

	Token        int `json:"token"`        // token requests the run made to read
	Reads        int `json:"reads"`        // calls the run made to read the live state
	Writes       int `json:"writes"`       // calls applying the plan makes
	ConfirmReads int `json:"confirmReads"` // reads that confirm what was applied
	// Calls is Token + Reads, plus Writes and ConfirmReads unless the run is a dry run:
	// what the run makes in all.
	Calls int `json:"calls"`

	// Limits are the rate limits the calls are charged to, shortest first; empty when
	// the service's are not known.
	Limits []Limit `json:"limits"`
	// Window is the longest limit's window as the plan was priced; nil without limits.
	Window *Window `json:"window,omitempty"`
	// Waves is how many waves apply sends the plan in (1 when it fits the window, 0 when
	// there is nothing to apply); Seconds the least time applying takes at the limits
	// (latency not counted); Fits whether applying fits what is left of the window.
	Waves   int     `json:"waves"`
	Seconds float64 `json:"seconds"`
	Fits    bool    `json:"fits"`
}

// Limit is one rate limit: Calls per Period.
type Limit struct {
	Calls  int    `json:"calls"`
	Period string `json:"period"` // "10s", "1h", "1m"
}

// Window is the state of the longest limit's window (an hour for Kameleoon) when the
// plan was priced: as far as this process knows, since a process knows only the calls it
// made itself (a fresh process takes the whole window as left).
type Window struct {
	Period string `json:"period"`
	Limit  int    `json:"limit"`
	Left   int    `json:"left"`  // calls left in the window now, after the reads
	Apply  int    `json:"apply"` // calls applying charges to it: writes, confirming reads, and token requests where the service charges them
}

// Apply is what applying the plan makes: writes and confirming reads.
func (s ServicePrice) Apply() int { return s.Writes + s.ConfirmReads }

// Duration is Seconds as a duration.
func (s ServicePrice) Duration() time.Duration {
	return time.Duration(s.Seconds * float64(time.Second))
}

// Lines says the price for people, one line per service and one for its budget, as the
// text and Markdown plans show it.
func (p Price) Lines() []string {
	var out []string
	for _, s := range p.Services {
		out = append(out, s.line(p.DryRun))
		if b := s.budgetLine(p.DryRun); b != "" {
			out = append(out, "  "+b)
		}
	}
	return out
}

func (s ServicePrice) line(dryRun bool) string {
	who := s.Service
	if s.Rule != "" {
		who += ", " + s.Rule
	}
	read := fmt.Sprintf("%d %s, %d %s", s.Token, plural(s.Token, "token request"), s.Reads, plural(s.Reads, "read"))
	apply := fmt.Sprintf("%d %s, %d %s to confirm", s.Writes, plural(s.Writes, "write"), s.ConfirmReads, plural(s.ConfirmReads, "read"))
	switch {
	case s.Apply() == 0:
		return fmt.Sprintf("API calls (%s): %d (%s); nothing to apply.", who, s.Calls, read)
	case dryRun:
		return fmt.Sprintf("API calls (%s): %d made to plan (%s); applying adds %d (%s).", who, s.Calls, read, s.Apply(), apply)
	}
	return fmt.Sprintf("API calls (%s): %d (%s; then %s).", who, s.Calls, read, apply)
}

func (s ServicePrice) budgetLine(dryRun bool) string {
	w := s.Window
	if w == nil || s.Apply() == 0 {
		return ""
	}
	limits := make([]string, len(s.Limits))
	for i, l := range s.Limits {
		limits[i] = fmt.Sprintf("%d per %s", l.Calls, l.Period)
	}
	verb := "uses"
	if dryRun {
		verb = "would use"
	}
	at := fmt.Sprintf("about %s at %s's limits (%s)", HumanDuration(s.Duration()), s.Service, strings.Join(limits, ", "))
	if s.Fits {
		return fmt.Sprintf("Budget: applying %s %d of the %d calls left in this %s window; %s.", verb, w.Apply, w.Left, w.Period, at)
	}
	return fmt.Sprintf("Budget: applying needs %d calls, more than the %d left in this %s window: it goes in %d waves, each waiting for the window to make room; %s.",
		w.Apply, w.Left, w.Period, s.Waves, at)
}

// HumanDuration renders d for people: "0 s", "12 s", "4 min 10 s", "2 h 5 min".
func HumanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}
