package lifecycle

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Flag is what a vendor knows of one flag in Git and its live state, for the report. The
// vendor fills it from the flag file and its last read of the service; Build judges it.
type Flag struct {
	plan.Address        // the flag (no environment)
	File         string // the flag file
	Line         int    // the line of the flag's key

	// Owner, Expires and Permanent are flagsync's own fields of the flag file, as
	// written (Expires a date, YYYY-MM-DD).
	Owner     string
	Expires   string
	Permanent bool
	// ArchivedInGit is the flag file's archived: true.
	ArchivedInGit bool

	// Live is true when the service has the flag; the fields below are then known as
	// far as the vendor reads them.
	Live bool
	// Created is when the service created the flag; zero when it does not say.
	Created time.Time
	// Health is the vendor's own verdict on the flag, as the vendor words it
	// (Kameleoon's health: PERMANENT, HEALTHY, STALE, SMELLY; Unleash's "stale"); empty
	// when the vendor has none.
	Health string
	// Stale is true when the vendor's health says the flag needs attention.
	Stale bool
	// Archived is true when the flag is archived in the service.
	Archived bool
	// Environments are the flag's live environments, in the vendor's order.
	Environments []Environment
}

// Environment is a flag's live state in one environment.
type Environment struct {
	Name string
	// Serving is On or Off when every visitor gets the same outcome there (see the
	// vendor's definition in docs/lifecycle.md), Partial otherwise.
	Serving Serving
	// Since is when the environment last changed in the service; zero when the vendor
	// does not say.
	Since time.Time
}

// Serving is what an environment serves to everyone.
type Serving string

// What an environment serves.
const (
	On      Serving = "on"      // every visitor gets the flag's "on" outcome
	Off     Serving = "off"     // every visitor gets the "off" outcome (or the environment is disabled)
	Partial Serving = "partial" // rules, segments or a rollout decide
)

// The states Build finds; a flag may be in several. The daemon exports their counts as
// flagsync_flags{state}.
const (
	StateOverdue      = "overdue"       // expires is past
	StateNoOwner      = "no-owner"      // no owner in the flag file
	StateNoExpiry     = "no-expiry"     // neither expires nor permanent: true
	StatePermanent    = "permanent"     // permanent: true
	StateStale        = "stale"         // the vendor's health says so
	StateFullyOn      = "fully-on"      // fully on in some environment for the report's days or more
	StateFullyOff     = "fully-off"     // fully off in some environment for the report's days or more
	StateArchivedLive = "archived-live" // archived in the service, still in Git (and not archived there)
	StateNotLive      = "not-live"      // in Git, not in the service (not synced yet)
)

// States lists every state, in the order reports count them.
var States = []string{StateOverdue, StateStale, StateFullyOn, StateFullyOff, StateArchivedLive, StateNoOwner, StateNoExpiry, StatePermanent, StateNotLive}

// Options are what Build judges by.
type Options struct {
	// Now is the time of the report.
	Now time.Time
	// Days is how long an environment must have served the same outcome to everyone to
	// be reported fully on or off; DefaultDays when 0.
	Days int
}

// DefaultDays is the Options.Days of a report that sets none.
const DefaultDays = 30

// Entry is one flag of the report.
type Entry struct {
	Flag
	// AgeDays is the whole days since Created; -1 when unknown.
	AgeDays int
	// OverdueDays is the whole days since Expires when it has passed (0 on the day after
	// it); -1 when the flag is not overdue.
	OverdueDays int
	// Settled are the environments fully on or off for Options.Days or more.
	Settled []Settled
	// States are the states the flag is in, in the order of States.
	States []string
}

// Settled is an environment that has served one outcome to everyone for a while.
type Settled struct {
	Environment string  `json:"environment"`
	Serving     Serving `json:"serving"`
	Days        int     `json:"days"`
}

// Report is the lifecycle report of a repository.
type Report struct {
	Now  time.Time
	Days int
	// Flags are sorted: overdue flags first (longest overdue first), then flags with an
	// expiry date (soonest first), then the others; ties by service, scope and key.
	Flags []Entry
	// Counts are the flags in each state (every state of States, zero included).
	Counts map[string]int
}

// Build judges each flag at opts.Now and returns the report.
func Build(flags []Flag, opts Options) Report {
	days := opts.Days
	if days <= 0 {
		days = DefaultDays
	}
	now := opts.Now.UTC()
	r := Report{Now: now, Days: days, Flags: make([]Entry, 0, len(flags)), Counts: make(map[string]int, len(States))}
	for _, s := range States {
		r.Counts[s] = 0
	}
	for _, f := range flags {
		e := judge(f, now, days)
		for _, s := range e.States {
			r.Counts[s]++
		}
		r.Flags = append(r.Flags, e)
	}
	slices.SortStableFunc(r.Flags, compareEntries)
	return r
}

// judge finds one flag's states.
func judge(f Flag, now time.Time, days int) Entry {
	e := Entry{Flag: f, AgeDays: -1, OverdueDays: -1}
	if !f.Created.IsZero() {
		e.AgeDays = wholeDays(now.Sub(f.Created))
	}
	if exp, ok := ParseDate(f.Expires); ok && !now.Before(exp.AddDate(0, 0, 1)) {
		e.OverdueDays = wholeDays(now.Sub(exp.AddDate(0, 0, 1)))
	}
	for _, env := range f.Environments {
		if env.Serving == Partial || env.Serving == "" || env.Since.IsZero() {
			continue
		}
		if d := wholeDays(now.Sub(env.Since)); d >= days {
			e.Settled = append(e.Settled, Settled{Environment: env.Name, Serving: env.Serving, Days: d})
		}
	}
	has := map[string]bool{
		StateOverdue:      e.OverdueDays >= 0,
		StateNoOwner:      strings.TrimSpace(f.Owner) == "",
		StateNoExpiry:     f.Expires == "" && !f.Permanent,
		StatePermanent:    f.Permanent,
		StateStale:        f.Live && f.Stale,
		StateArchivedLive: f.Live && f.Archived && !f.ArchivedInGit,
		StateNotLive:      !f.Live && !f.ArchivedInGit,
	}
	for _, s := range e.Settled {
		has[map[Serving]string{On: StateFullyOn, Off: StateFullyOff}[s.Serving]] = true
	}
	for _, s := range States {
		if has[s] {
			e.States = append(e.States, s)
		}
	}
	return e
}

// wholeDays is d in whole days, never negative.
func wholeDays(d time.Duration) int { return max(0, int(d/(24*time.Hour))) }

// ParseDate reads a YYYY-MM-DD date (midnight UTC).
func ParseDate(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	return t, err == nil
}

// compareEntries orders overdue flags first (longest overdue first), then flags with an
// expiry date (soonest first), then the rest; ties by address.
func compareEntries(a, b Entry) int {
	rank := func(e Entry) int {
		switch {
		case e.OverdueDays >= 0:
			return 0
		case e.Expires != "":
			return 1
		}
		return 2
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	if a.OverdueDays >= 0 {
		if c := cmp.Compare(b.OverdueDays, a.OverdueDays); c != 0 {
			return c
		}
	} else if a.Expires != "" {
		if c := strings.Compare(a.Expires, b.Expires); c != 0 {
			return c
		}
	}
	return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Scope, b.Scope), strings.Compare(a.Key, b.Key))
}

// Reader is implemented by a reconcile.Repo that can say where its flags stand, from
// its flag files and its last full read of the service (no API call of its own).
type Reader interface {
	// Lifecycle returns one Flag per desired flag.
	Lifecycle() []Flag
}

// Collect returns where the flags of every service of l stand, from each repository's
// last read (the services whose repository is not a Reader are left out).
func Collect(l *reconcile.Loaded) []Flag {
	var out []Flag
	for _, pt := range l.Parts {
		if r, ok := pt.Repo.(Reader); ok {
			out = append(out, r.Lifecycle()...)
		}
	}
	return out
}
