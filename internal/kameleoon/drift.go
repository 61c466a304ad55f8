package kameleoon

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// The one-call drift check. A daemon's vendor lives across its syncs; it keeps the live
// flags of each site it read in full (liveState), patched with every flag it sees
// afterwards (write answers, gets). The next full read of the site asks only for the
// flags modified since the last complete read — POST /feature-flags/search sorted by
// dateModified, newest first, one call while fewer than a page (100) changed — and
// merges them in. The search's total count header says whether flags were deleted (the
// count then differs from the flags known), and the whole list is read instead. The list
// also stays the safety net: every Drift.FullEvery-th read of a site, and whenever the
// search cannot serve (refused, unsorted, no total count: see
// kclient.SearchUnsupportedError), more changed than a search page or two would hold, or
// the search's count disagrees with the list's.
//
// Since when? Dates are the server's, to the second. What the vendor knows of the
// server's clock is the lead of every flag it saw: its dateModified minus the vendor's
// (the client's) time when the answer arrived. A date is never after the server's time
// of the answer, so the server's time at any later instant t of the client's clock is at
// least t + lead (the largest lead seen). A flag modified after the last complete read
// started (at S) has a dateModified of at least S + lead, less a second of truncation;
// the search asks for dateModified ≥ S + lead − Drift.Overlap, the overlap (5 s) covering
// the truncation and skew between the server's machines. Flags modified shortly before
// S come back again; merging them changes nothing.

// Drift tunes the drift check of a vendor that lives across syncs (see VendorWith).
type Drift struct {
	// Off makes every full read list the whole site.
	Off bool
	// FullEvery: every FullEvery-th read of a site lists it whole (default 6: with the
	// daemon's hourly drift check, the whole list every 6 hours, and at once whenever
	// something is in doubt).
	FullEvery int
	// Overlap is how far before the last complete read the search reaches back (default
	// 5 s; at least the dates' one-second resolution).
	Overlap time.Duration
}

// Defaults of Drift's zero values.
const (
	DefaultFullEvery    = 6
	DefaultDriftOverlap = 5 * time.Second
)

func (d Drift) withDefaults() Drift {
	if d.FullEvery <= 0 {
		d.FullEvery = DefaultFullEvery
	}
	if d.Overlap <= 0 {
		d.Overlap = DefaultDriftOverlap
	}
	return d
}

// driftClient is what the drift check needs of the client; *kclient.Client has it. A
// client without it (a test's fake) lists every site whole.
type driftClient interface {
	ReadSite(ctx context.Context, siteCode string) (kclient.SiteRead, error)
	SearchModified(ctx context.Context, siteCode string, since time.Time, maxPages int) (kclient.SiteRead, error)
	Now() time.Time
}

// liveState is what a vendor knows of the sites' live flags between syncs, in memory
// only (it holds flags, never a credential).
type liveState struct {
	drift Drift

	mu    sync.Mutex
	sites map[string]*siteState
	// countsDiffer: the search's total count disagreed with the whole list's: deletions
	// cannot be noticed, so every full read lists the site.
	countsDiffer bool
}

// siteState is one site's live flags, as of since.
type siteState struct {
	flags   map[string]kmodel.Flag // by feature key
	since   time.Time              // when the last complete read started (the client's clock)
	lead    time.Duration          // the largest dateModified − arrival seen (see kclient.SiteRead.Lead)
	hasLead bool
	reads   int // reads since the last whole list
}

func newLiveState(d Drift) *liveState {
	return &liveState{drift: d.withDefaults(), sites: map[string]*siteState{}}
}

func (st *siteState) observe(lead time.Duration, ok bool) {
	if ok && (!st.hasLead || lead > st.lead) {
		st.lead, st.hasLead = lead, true
	}
}

// sorted returns the site's flags in id order, as the list gives them.
func (st *siteState) sorted() []kmodel.Flag {
	out := make([]kmodel.Flag, 0, len(st.flags))
	for _, f := range st.flags {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b kmodel.Flag) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.FeatureKey, b.FeatureKey))
	})
	return out
}

// read returns the live flags of site: what changed since the last complete read merged
// into what the state holds, or the whole list (see the comment at the top).
func (ls *liveState) read(ctx context.Context, dc driftClient, site string, logger *slog.Logger) ([]kmodel.Flag, error) {
	start := dc.Now()
	expect := -1 // the search's total count, when a list follows a search whose count disagreed
	if search, since, pages, ok := ls.searchable(site); ok {
		res, err := dc.SearchModified(ctx, site, since, pages)
		var unsupported *kclient.SearchUnsupportedError
		switch {
		case errors.As(err, &unsupported):
			// The client logged it once; the whole list serves.
		case err != nil:
			return nil, err
		case !res.Complete:
			logger.Info("more flags changed than the drift check's search reads; listing the site", "site", site, "pages", res.Pages)
		default:
			if flags, ok := ls.merge(site, search, res, start); ok {
				logger.Debug("live flags read: what changed since the last read", "site", site, "changed", len(res.Flags),
					"flags", len(flags), "since", since.UTC().Format(time.RFC3339))
				return flags, nil
			}
			expect = res.Total
			logger.Info("the site's flag count differs from the flags known (a flag was deleted?); listing the site", "site", site, "count", res.Total)
		}
	}
	res, err := dc.ReadSite(ctx, site)
	if err != nil {
		return nil, err
	}
	ls.store(site, res, start, expect, logger)
	return res.Flags, nil
}

// searchable says whether site's next read may search: since is the cutoff and pages
// the most pages worth searching (fewer than the whole list takes); search is the
// state the search is merged into.
func (ls *liveState) searchable(site string) (search *siteState, since time.Time, pages int, ok bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	st := ls.sites[site]
	if ls.drift.Off || ls.countsDiffer || st == nil || !st.hasLead || st.reads+1 >= ls.drift.FullEvery {
		return nil, time.Time{}, 0, false
	}
	pages = 1
	if st.reads > 0 {
		// Fewer pages than the list takes. The first search after a whole list reads one
		// page only: what it knows of the server's clock comes from that list, whose
		// newest flags may all come back if they were changed in bulk.
		pages = max(1, (len(st.flags)+kclient.DefaultPerPage-1)/kclient.DefaultPerPage-1)
	}
	return st, st.since.Add(st.lead).Add(-ls.drift.Overlap), pages, true
}

// merge patches the site's state with a complete search read at start, when the
// search's count matches the flags then known; ok false leaves the state as it was.
func (ls *liveState) merge(site string, st *siteState, res kclient.SiteRead, start time.Time) ([]kmodel.Flag, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.sites[site] != st {
		return nil, false // replaced meanwhile
	}
	flags := make(map[string]kmodel.Flag, len(st.flags)+len(res.Flags))
	for k, f := range st.flags {
		flags[k] = f
	}
	for _, f := range res.Flags {
		if f.SiteCode == site {
			flags[f.FeatureKey] = f
		}
	}
	if len(flags) != res.Total {
		return nil, false
	}
	st.flags, st.since = flags, start
	st.observe(res.Lead, res.HasLead)
	st.reads++
	return st.sorted(), true
}

// store replaces the site's state with a whole list read at start. When the list
// follows a search whose count (expect) disagreed with the flags known and the list
// disagrees with that count too, the search counts another way than the list: deletions
// cannot be noticed by it, and every full read lists the site from now on.
func (ls *liveState) store(site string, res kclient.SiteRead, start time.Time, expect int, logger *slog.Logger) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	st := &siteState{flags: make(map[string]kmodel.Flag, len(res.Flags)), since: start}
	if old := ls.sites[site]; old != nil {
		st.observe(old.lead, old.hasLead) // the server's clock only moves on
	}
	for _, f := range res.Flags {
		if f.SiteCode == site {
			st.flags[f.FeatureKey] = f
		}
	}
	st.observe(res.Lead, res.HasLead)
	ls.sites[site] = st
	if expect >= 0 && len(st.flags) != expect && !ls.countsDiffer {
		ls.countsDiffer = true
		logger.Warn("the flag search counts the site's flags differently from the list; drift checks list the whole site from now on",
			"site", site, "search_count", expect, "list_count", len(st.flags))
	}
}

// seen records flags read or written after the site's last complete read (gets, write
// answers), seen at the client's time at; modified is each flag's dateModified (zero when
// unknown). A site the state does not hold is ignored.
func (ls *liveState) seen(flags []kmodel.Flag, modified []time.Time, at time.Time) {
	if ls == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for i, f := range flags {
		st := ls.sites[f.SiteCode]
		if st == nil {
			continue
		}
		st.flags[f.FeatureKey] = f
		if !modified[i].IsZero() {
			st.observe(modified[i].Sub(at), true)
		}
	}
}
