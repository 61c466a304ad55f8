package kameleoon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
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
func Vendor(c Client) reconcile.Vendor { return kameleoon{c} }

type kameleoon struct{ client Client }

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
	desired, err := kload.Load(src.FS, src.Dir)
	if err != nil {
		return nil, err
	}
	desired.Revision = src.Revision
	logger := src.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &run{client: k.client, logger: logger, desired: desired}, nil
}

// run is Kameleoon's part of one Run between its steps.
type run struct {
	client  Client
	logger  *slog.Logger
	desired *kmodel.Desired
	partial bool
	live    []kmodel.Flag
	facts   map[kmodel.Ref]kclient.Facts // what the lists said of each flag's life (provider_lifecycle.go)
}

// Bind returns the repository read and written through v, a connected Kameleoon vendor
// (reconcile.Binder), or nil when v is another service's.
func (s *run) Bind(v reconcile.Vendor) reconcile.Repo {
	k, ok := v.(kameleoon)
	if !ok {
		return nil
	}
	bound := *s
	bound.client = k.client
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

// Read reads the live flags: one list per site in a full run; in a partial run, one
// get per named flag that is in Git (one that is not has nothing to apply, since a
// partial run never prunes).
func (s *run) Read(ctx context.Context, partial bool) error {
	var err error
	if partial {
		refs := make([]kmodel.Ref, len(s.desired.Flags))
		for i := range s.desired.Flags {
			refs[i] = s.desired.Flags[i].Ref()
		}
		s.live, err = s.get(ctx, refs)
		return err
	}
	s.live, err = s.list(ctx, s.Scopes())
	return err
}

func (s *run) list(ctx context.Context, sites []string) ([]kmodel.Flag, error) {
	var live []kmodel.Flag
	for _, site := range sites {
		flags, err := s.listSite(ctx, site)
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

// Confirm reads again what the results touched and re-plans; the changes of that plan are
// what remains. It spends the fewest calls it can: one get per touched flag when that is
// fewer calls than listing the touched sites again (always in a partial run), otherwise
// one list per touched site.
func (s *run) Confirm(ctx context.Context, results []apply.Result, opts reconcile.PlanOptions) ([]plan.Change, error) {
	live := s.live
	touched := map[kmodel.Ref]bool{}
	sites := map[string]bool{}
	for _, r := range results {
		if r.Status == apply.Skipped {
			continue // never sent: the first read still holds for it
		}
		touched[refOf(r.Change.Address)] = true
		sites[r.Change.Scope] = true
	}
	perSite := map[string]int{} // flags on each touched site once the creates landed
	for _, f := range live {
		if sites[f.SiteCode] {
			perSite[f.SiteCode]++
		}
	}
	for _, r := range results {
		if r.Status != apply.Skipped && r.Change.Action == plan.ActionCreate {
			perSite[r.Change.Scope]++
		}
	}
	pages := 0
	for site := range sites {
		pages += max(1, (perSite[site]+kclient.DefaultPerPage-1)/kclient.DefaultPerPage)
	}

	// stale reports whether a live flag is replaced by what is read now.
	var stale func(f *kmodel.Flag) bool
	var fresh []kmodel.Flag
	var err error
	if opts.Partial || len(touched) < pages {
		refs := make([]kmodel.Ref, 0, len(touched))
		for r := range touched {
			refs = append(refs, r)
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
		fresh, err = s.get(ctx, refs)
		stale = func(f *kmodel.Flag) bool { return touched[f.Ref()] }
	} else {
		list := make([]string, 0, len(sites))
		for site := range sites {
			list = append(list, site)
		}
		sort.Strings(list)
		fresh, err = s.list(ctx, list)
		stale = func(f *kmodel.Flag) bool { return sites[f.SiteCode] }
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
	p, _ := s.compute(now, opts) // a guard refusal here still lists what differs
	return p.Changes, nil
}

// refOf is the Kameleoon flag a change's address names.
func refOf(a plan.Address) kmodel.Ref { return kmodel.Ref{SiteCode: a.Scope, FeatureKey: a.Key} }
