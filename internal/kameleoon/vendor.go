package kameleoon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Client is what the pipeline needs from the API: one list call per site for a full
// run, one get per flag for a partial run, and Do to send planned requests.
// *kclient.Client satisfies it.
type Client interface {
	ListFlags(ctx context.Context, siteCode string) ([]kmodel.Flag, error)
	GetFlag(ctx context.Context, siteCode, featureKey string) (kmodel.Flag, error)
	apply.Doer
}

// Vendor returns the reconcile.Vendor for Kameleoon's Automation API through c. It
// claims no file: it loads whatever the other vendors of a run leave. c may be nil for a
// vendor that only loads files (the provider's Files, for reconcile.Load).
//
// The vendor keeps, in memory, the live flags of the sites its runs read (see Drift): a
// vendor used for many runs, as a daemon's is, reads only what changed since its last
// read (one call while fewer than a page of flags changed) instead of the whole list.
func Vendor(c Client) reconcile.Vendor { return VendorWith(c, Drift{}) }

// VendorWith is Vendor with the drift check tuned by d.
func VendorWith(c Client, d Drift) reconcile.Vendor {
	return kameleoon{client: c, live: newLiveState(d)}
}

type kameleoon struct {
	client Client
	live   *liveState // shared by the runs of this vendor
}

// Service names Kameleoon.
func (kameleoon) Service() string { return kplan.Service }

// Claim takes no file: Kameleoon loads what the other services leave.
func (kameleoon) Claim(reconcile.Source) ([]string, bool, error) { return nil, false, nil }

// TakesUnclaimed says that Kameleoon takes the flag files no service claims: its files
// name no vendor (reconcile.Fallback).
func (kameleoon) TakesUnclaimed() bool { return true }

// Do sends a planned request through the Kameleoon client.
func (k kameleoon) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	if k.client == nil {
		return nil, errNoClient
	}
	return k.client.Do(ctx, req)
}

// errNoClient is what a vendor that only loads files answers when asked to send.
var errNoClient = errors.New("kameleoon: not connected: this vendor only loads flag files")

// Load reads the Kameleoon flag files with the loader.
func (k kameleoon) Load(src reconcile.Source) (reconcile.Repo, error) {
	desired, err := loadDesired(src)
	if err != nil {
		return nil, err
	}
	desired.Revision = src.Revision
	logger := src.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &run{client: k.client, state: k.live, logger: logger, desired: desired}, nil
}

// run is Kameleoon's part of one Run between its steps.
type run struct {
	client  Client
	state   *liveState // the vendor's: what it knows of the sites between runs
	logger  *slog.Logger
	desired *kmodel.Desired
	partial bool
	live    []kmodel.Flag
	spent   kclient.Counts // the calls Read made (for the price)
}

// Bind returns the repository read and written through v, a connected Kameleoon vendor
// (reconcile.Binder), or nil when v is another service's.
func (s *run) Bind(v reconcile.Vendor) reconcile.Repo {
	k, ok := v.(kameleoon)
	if !ok {
		return nil
	}
	bound := *s
	bound.client, bound.state = k.client, k.live
	return &bound
}

// Restrict keeps only the desired flags of a partial run.
func (s *run) Restrict(only []plan.Address) {
	s.partial = true
	want := make(map[plan.Address]bool, len(only))
	for _, a := range only {
		want[a.Flag()] = true
	}
	kept := s.desired.Flags[:0:0]
	for _, f := range s.desired.Flags {
		if want[kplan.AddressOf(f.Ref(), "")] {
			kept = append(kept, f)
		}
	}
	s.desired.Flags = kept
}

// Scopes returns the site codes a full run reads: every site code in the desired flags
// and the settings' default (so that pruning sees a site whose last flag was removed).
func (s *run) Scopes() []string {
	if s.partial {
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

// Read reads the live flags: in a full run each site once, with what changed since the
// vendor's last read of it when it has one (see Drift), else the whole list; in a partial
// run, one get per named flag that is in Git (one that is not has nothing to apply, since
// a partial run never prunes).
func (s *run) Read(ctx context.Context, partial bool) error {
	before := s.counts()
	defer func() { s.spent = s.counts().Sub(before) }()
	var err error
	if partial {
		refs := make([]kmodel.Ref, len(s.desired.Flags))
		for i := range s.desired.Flags {
			refs[i] = s.desired.Flags[i].Ref()
		}
		s.live, err = s.get(ctx, refs)
		return err
	}
	s.live, err = s.list(ctx, s.Scopes(), false)
	return err
}

// counts returns the client's calls so far, when it counts them.
func (s *run) counts() kclient.Counts {
	if c, ok := s.client.(interface{ Counts() kclient.Counts }); ok {
		return c.Counts()
	}
	return kclient.Counts{}
}

// list reads the live flags of sites: through the vendor's state (what changed since its
// last read) unless whole, or when the client cannot.
func (s *run) list(ctx context.Context, sites []string, whole bool) ([]kmodel.Flag, error) {
	var live []kmodel.Flag
	dc, drift := s.client.(driftClient)
	for _, site := range sites {
		var flags []kmodel.Flag
		var err error
		switch {
		case drift && whole:
			var res kclient.SiteRead
			start := dc.Now()
			if res, err = dc.ReadSite(ctx, site); err == nil {
				s.state.store(site, res, start, -1, s.logger)
				flags = res.Flags
			}
		case drift:
			flags, err = s.state.read(ctx, dc, site, s.logger)
		default:
			flags, err = s.client.ListFlags(ctx, site)
		}
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

func (s *run) get(ctx context.Context, refs []kmodel.Ref) ([]kmodel.Flag, error) {
	var live []kmodel.Flag
	seen := make(map[kmodel.Ref]bool, len(refs))
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		f, err := s.client.GetFlag(ctx, r.SiteCode, r.FeatureKey)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read live flag %s: %w", r, err)
		}
		live = append(live, f)
	}
	s.state.seen(live, make([]time.Time, len(live)), time.Time{})
	return live, nil
}

// Files returns where each desired flag is defined.
func (s *run) Files() []reconcile.FlagFile {
	out := make([]reconcile.FlagFile, 0, len(s.desired.Flags))
	for _, f := range s.desired.Flags {
		out = append(out, reconcile.FlagFile{Flag: kplan.AddressOf(f.Ref(), ""), File: f.Source.File, Line: f.Source.Line})
	}
	return out
}

// Plan plans the desired flags against the last read.
func (s *run) Plan(opts reconcile.PlanOptions) (plan.Plan, error) { return s.compute(s.live, opts) }

// compute plans the desired flags against live. A partial run neither prunes nor reports
// unmanaged flags: it has not seen the whole site.
func (s *run) compute(live []kmodel.Flag, o reconcile.PlanOptions) (plan.Plan, error) {
	opts := kplan.OptionsFor(s.desired.Settings)
	opts.Prune = !o.Partial && (opts.Prune || o.Prune)
	opts.MaxArchive, opts.AllowMassArchive = o.MaxArchive, o.AllowMassArchive
	p, err := kplan.Compute(s.desired, live, opts)
	p.Revision = o.Revision
	if o.Partial {
		p.Unmanaged = []plan.Address{}
	}
	return p, err
}

// Confirm re-plans against the flags as the writes left them, and returns what
// remains. A create or patch answers with the whole flag (see kclient.Vouches): each
// flag's last such answer is its confirmed state, with no read. Only a flag whose write
// answer cannot vouch for it is read again: the answer was lost (a timeout, a dropped
// connection, a 5xx) or is not a whole flag (a create found existing (409), an empty or
// partial body). Those are read with the fewest calls: one get each when that is fewer
// calls than listing their sites again (always in a partial run), else one list per site.
func (s *run) Confirm(ctx context.Context, results []apply.Result, opts reconcile.PlanOptions) ([]plan.Change, error) {
	confirmed, toRead := s.confirmed(results)
	var read []kmodel.Flag
	listed := map[string]bool{} // sites listed whole: their flags are all in read
	if len(toRead) > 0 {
		var err error
		if read, listed, err = s.confirmingRead(ctx, toRead, opts.Partial); err != nil {
			return nil, fmt.Errorf("confirm convergence: %w", err)
		}
	}
	wasRead := make(map[kmodel.Ref]bool, len(toRead))
	for _, r := range toRead {
		wasRead[r] = true // read again; absent from read when it no longer exists
	}
	now := slices.Clone(read)
	refs := make([]kmodel.Ref, 0, len(confirmed))
	for ref := range confirmed {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, ref := range refs {
		if !listed[ref.SiteCode] {
			now = append(now, confirmed[ref])
		}
	}
	for i := range s.live {
		f := &s.live[i]
		_, answered := confirmed[f.Ref()]
		if !answered && !wasRead[f.Ref()] && !listed[f.SiteCode] {
			now = append(now, *f)
		}
	}
	p, _ := s.compute(now, opts) // a guard refusal here still lists what differs
	return p.Changes, nil
}

// confirmed returns, per flag the results touched, the flag its last write answer
// vouches for, and the flags that only a read can confirm (sorted).
func (s *run) confirmed(results []apply.Result) (map[kmodel.Ref]kmodel.Flag, []kmodel.Ref) {
	vouch := kclient.Vouches
	if c, ok := s.client.(interface {
		Confirmed(json.RawMessage) (kmodel.Flag, time.Time, bool)
	}); ok {
		vouch = c.Confirmed
	}
	confirmed := map[kmodel.Ref]kmodel.Flag{}
	needRead := map[kmodel.Ref]bool{}
	var seen []kmodel.Flag
	var dates []time.Time
	for _, r := range results {
		ref := refOf(r.Change.Address)
		switch r.Status {
		case apply.Applied:
			f, modified, ok := kmodel.Flag{}, time.Time{}, false
			if len(r.Response) > 0 {
				f, modified, ok = vouch(r.Response)
			}
			if f.SiteCode == "" {
				f.SiteCode = ref.SiteCode
			}
			if ok && f.Ref() == ref {
				confirmed[ref], needRead[ref] = f, false
				seen, dates = append(seen, f), append(dates, modified)
				continue
			}
			needRead[ref] = true // applied, but the answer cannot say to what
		case apply.Failed:
			if api.Ambiguous(r.Err) {
				needRead[ref] = true // the write may have landed, its answer lost
			}
		}
	}
	if dc, ok := s.client.(driftClient); ok {
		s.state.seen(seen, dates, dc.Now())
	}
	var toRead []kmodel.Ref
	for ref, read := range needRead {
		if read {
			toRead = append(toRead, ref)
			delete(confirmed, ref)
		}
	}
	sort.Slice(toRead, func(i, j int) bool { return toRead[i].String() < toRead[j].String() })
	return confirmed, toRead
}

// confirmingRead reads refs again with the fewest calls: a get each, or (when fewer
// calls, and not in a partial run) a whole list of their sites, which it returns as
// listed.
func (s *run) confirmingRead(ctx context.Context, refs []kmodel.Ref, partial bool) ([]kmodel.Flag, map[string]bool, error) {
	sites := map[string]int{}
	for _, r := range refs {
		sites[r.SiteCode] = 0
	}
	for _, f := range s.live {
		if _, ok := sites[f.SiteCode]; ok {
			sites[f.SiteCode]++
		}
	}
	pages := 0
	for _, n := range sites {
		pages += max(1, (n+len(refs)+kclient.DefaultPerPage-1)/kclient.DefaultPerPage)
	}
	if partial || len(refs) < pages {
		flags, err := s.get(ctx, refs)
		return flags, map[string]bool{}, err
	}
	list := make([]string, 0, len(sites))
	for site := range sites {
		list = append(list, site)
	}
	sort.Strings(list)
	flags, err := s.list(ctx, list, true)
	listed := make(map[string]bool, len(list))
	for _, site := range list {
		listed[site] = true
	}
	return flags, listed, err
}

// refOf is the Kameleoon flag a change's address names.
func refOf(a plan.Address) kmodel.Ref { return kmodel.Ref{SiteCode: a.Scope, FeatureKey: a.Key} }
