package split

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

// Client is what Split's side of the pipeline needs from the Admin API; *splitclient.Client
// satisfies it.
type Client interface {
	ReadFlags(ctx context.Context, workspace string, envs []string) ([]splitmodel.Flag, error)
	ReadFlag(ctx context.Context, workspace, name string, envs []string) (splitmodel.Flag, error)
	apply.Doer
}

// Vendor returns the reconcile.Vendor for Split through c. c may be nil for a vendor
// that only loads files (the provider's Files, for reconcile.Load).
func Vendor(c Client) reconcile.Vendor { return vendor{c} }

type vendor struct{ Client }

// Service names Split.
func (vendor) Service() string { return splitplan.Service }

// Do sends a planned request through the Split client.
func (v vendor) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	if v.Client == nil {
		return nil, errors.New("split: not connected: this vendor only loads flag files")
	}
	return v.Client.Do(ctx, req)
}

// Claim takes the Split flag files (see splitload.Claim).
func (vendor) Claim(src reconcile.Source) ([]string, bool, error) {
	return splitload.Claim(src.FS, src.Dir)
}

// Load reads the Split flag files with splitload.
func (v vendor) Load(src reconcile.Source) (reconcile.Repo, error) {
	desired, err := splitload.Load(src.FS, src.Dir)
	if err != nil {
		return nil, err
	}
	desired.Revision = src.Revision
	logger := src.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &repo{client: v.Client, logger: logger, desired: desired}, nil
}

// repo is Split's part of one run.
type repo struct {
	client  Client
	logger  *slog.Logger
	desired *splitmodel.Desired
	partial bool
	live    []splitmodel.Flag
}

// Bind returns the repository read and written through v, a connected Split vendor
// (reconcile.Binder), or nil when v is another service's.
func (r *repo) Bind(v reconcile.Vendor) reconcile.Repo {
	sv, ok := v.(vendor)
	if !ok {
		return nil
	}
	bound := *r
	bound.client = sv.Client
	return &bound
}

// Restrict keeps only the named flags (a partial run).
func (r *repo) Restrict(only []plan.Address) {
	r.partial = true
	want := make(map[plan.Address]bool, len(only))
	for _, a := range only {
		want[a.Flag()] = true
	}
	kept := r.desired.Flags[:0:0]
	for _, f := range r.desired.Flags {
		if want[splitplan.AddressOf(f.Ref(), "")] {
			kept = append(kept, f)
		}
	}
	r.desired.Flags = kept
}

// Scopes are the workspaces a full run reads.
func (r *repo) Scopes() []string {
	if r.partial {
		return nil
	}
	return r.desired.Workspaces()
}

// Read reads, in a full run, each workspace's flags and its definitions in every
// environment the repository uses (one list of flags and one list per environment, paged);
// in a partial run, each desired flag and its definitions with gets.
func (r *repo) Read(ctx context.Context, partial bool) error {
	var err error
	if partial {
		r.live, err = r.get(ctx, refsOf(r.desired.Flags))
		return err
	}
	r.live, err = r.list(ctx, r.Scopes())
	return err
}

func refsOf(flags []splitmodel.Flag) []splitmodel.Ref {
	out := make([]splitmodel.Ref, len(flags))
	for i := range flags {
		out[i] = flags[i].Ref()
	}
	return out
}

func (r *repo) list(ctx context.Context, workspaces []string) ([]splitmodel.Flag, error) {
	envs := r.desired.EnvironmentNames()
	var live []splitmodel.Flag
	for _, ws := range workspaces {
		flags, err := r.client.ReadFlags(ctx, ws, envs)
		if err != nil {
			return nil, fmt.Errorf("read live flags of workspace %s: %w", ws, err)
		}
		for _, f := range flags {
			f.Workspace = ws
			live = append(live, f)
		}
		r.logger.Debug("live flags read", "workspace", ws, "flags", len(flags), "environments", len(envs))
	}
	return live, nil
}

func (r *repo) get(ctx context.Context, refs []splitmodel.Ref) ([]splitmodel.Flag, error) {
	var live []splitmodel.Flag
	for _, ref := range refs {
		var envs []string
		for i := range r.desired.Flags {
			if r.desired.Flags[i].Ref() == ref {
				envs = r.desired.Flags[i].EnvironmentNames()
			}
		}
		f, err := r.client.ReadFlag(ctx, ref.Workspace, ref.Name, envs)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read live flag %s: %w", ref, err)
		}
		f.Workspace = ref.Workspace
		live = append(live, f)
	}
	return live, nil
}

// Files returns where each desired flag is defined.
func (r *repo) Files() []reconcile.FlagFile {
	out := make([]reconcile.FlagFile, 0, len(r.desired.Flags))
	for _, f := range r.desired.Flags {
		out = append(out, reconcile.FlagFile{Flag: splitplan.AddressOf(f.Ref(), ""), File: f.Source.File, Line: f.Source.Line})
	}
	return out
}

// Plan plans the desired flags against the last read.
func (r *repo) Plan(opts reconcile.PlanOptions) (plan.Plan, error) { return r.compute(r.live, opts) }

func (r *repo) compute(live []splitmodel.Flag, o reconcile.PlanOptions) (plan.Plan, error) {
	opts := splitplan.OptionsFor(r.desired.Settings)
	opts.Prune = !o.Partial && (opts.Prune || o.Prune)
	opts.MaxArchive, opts.AllowMassArchive = o.MaxArchive, o.AllowMassArchive
	p, err := splitplan.Compute(r.desired, live, opts)
	p.Revision = o.Revision
	if o.Partial {
		p.Unmanaged = []plan.Address{}
	}
	return p, err
}

// Confirm reads again what the results touched, with gets per touched flag when that
// takes fewer calls than listing the touched workspaces again, and re-plans.
func (r *repo) Confirm(ctx context.Context, results []apply.Result, opts reconcile.PlanOptions) ([]plan.Change, error) {
	touched := map[splitmodel.Ref]bool{}
	wss := map[string]bool{}
	for _, res := range results {
		if res.Status == apply.Skipped {
			continue
		}
		touched[splitmodel.Ref{Workspace: res.Change.Scope, Name: res.Change.Key}] = true
		wss[res.Change.Scope] = true
	}
	refs := make([]splitmodel.Ref, 0, len(touched))
	for ref := range touched {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b splitmodel.Ref) int { return compare(a.String(), b.String()) })
	var fresh []splitmodel.Flag
	var stale func(f *splitmodel.Flag) bool
	var err error
	if gets, _ := r.confirmCalls(touched, opts.Partial); gets {
		fresh, err = r.get(ctx, refs)
		stale = func(f *splitmodel.Flag) bool { return touched[f.Ref()] }
	} else {
		list := make([]string, 0, len(wss))
		for ws := range wss {
			list = append(list, ws)
		}
		slices.Sort(list)
		fresh, err = r.list(ctx, list)
		stale = func(f *splitmodel.Flag) bool { return wss[f.Workspace] }
	}
	if err != nil {
		return nil, fmt.Errorf("confirm convergence: %w", err)
	}
	now := fresh
	for i := range r.live {
		if !stale(&r.live[i]) {
			now = append(now, r.live[i])
		}
	}
	p, _ := r.compute(now, opts)
	return p.Changes, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
