package unleash

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
	unleashclient "github.com/flagsync/flagsync/internal/unleash/client"
	unleashload "github.com/flagsync/flagsync/internal/unleash/load"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
)

// Client is what Unleash's side of the pipeline needs from the admin API;
// *unleashclient.Client satisfies it.
type Client interface {
	ReadProjects(ctx context.Context, projects []string, opts unleashclient.ReadOptions) (*unleashmodel.Live, error)
	ArchivedFeatures(ctx context.Context, project string) ([]string, error)
	apply.Doer
}

// Vendor returns the reconcile.Vendor for Unleash through c. c may be nil for a vendor
// that only claims and loads files (the provider's Files, for reconcile.Load): its Do
// and its repositories' reads fail.
func Vendor(c Client) reconcile.Vendor { return vendor{client: c} }

// The adapter is exactly the pipeline's seam.
var (
	_ reconcile.Vendor = vendor{}
	_ reconcile.Binder = (*Repo)(nil)
	_ Client           = (*unleashclient.Client)(nil)
)

// errNotConnected is what a vendor without a client answers a call with.
var errNotConnected = errors.New("unleash: not connected: this vendor only loads flag files")

type vendor struct{ client Client }

// Service names Unleash.
func (vendor) Service() string { return unleashmodel.Service }

// Claim takes the Unleash flag files: every flag file when flagsync.yaml says vendor:
// unleash, else the files that say so themselves (see unleashload.Claim).
func (vendor) Claim(src reconcile.Source) ([]string, bool, error) {
	return unleashload.Claim(src.FS, src.Dir)
}

// Load reads and validates the Unleash flag files with unleashload.
func (v vendor) Load(src reconcile.Source) (reconcile.Repo, error) {
	desired, err := unleashload.Load(src.FS, src.Dir)
	if err != nil {
		return nil, err
	}
	desired.Revision = src.Revision
	logger := src.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Repo{client: v.client, logger: logger, desired: desired}, nil
}

// Do sends a planned request through the client.
func (v vendor) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	if v.client == nil {
		return nil, errNotConnected
	}
	return v.client.Do(ctx, req)
}

// Repo is Unleash's part of one run: the desired flags, and the live state last read.
type Repo struct {
	client  Client
	logger  *slog.Logger
	desired *unleashmodel.Desired
	partial bool
	live    *unleashmodel.Live
}

// Desired returns the flags the run loaded (after Restrict).
func (r *Repo) Desired() *unleashmodel.Desired { return r.desired }

// Live returns the live state last read (nil before Read).
func (r *Repo) Live() *unleashmodel.Live { return r.live }

// Bind returns the repository read and written through v, a connected Unleash vendor
// (reconcile.Binder), or nil when v is another service's: the files loaded before the
// connection are not loaded again.
func (r *Repo) Bind(v reconcile.Vendor) reconcile.Repo {
	uv, ok := v.(vendor)
	if !ok {
		return nil
	}
	bound := *r
	bound.client = uv.client
	return &bound
}

// Restrict keeps only the named flags (a partial run). The desired flags are copied, not
// cut in place, so that a repository bound from this one keeps its own.
func (r *Repo) Restrict(only []plan.Address) {
	r.partial = true
	want := make(map[plan.Address]bool, len(only))
	for _, a := range only {
		want[a.Flag()] = true
	}
	kept := r.desired.Flags[:0:0]
	for _, f := range r.desired.Flags {
		if want[unleashplan.AddressOf(f.Ref(), "")] {
			kept = append(kept, f)
		}
	}
	d := *r.desired
	d.Flags = kept
	r.desired = &d
}

// Scopes are the projects a full run reads: every project the flags and the settings name.
func (r *Repo) Scopes() []string {
	if r.partial {
		return nil
	}
	return r.desired.Projects()
}

// Read reads the live state the plan needs: each project's flag list (one call per
// project), one GET per desired flag with strategies in Unleash, the segment list when a
// strategy uses segments, and the archived flags (the rate-limited search) only of
// projects where a flag Git has is missing. A partial run reads the same, for the projects
// of the named flags and those flags' strategies only.
func (r *Repo) Read(ctx context.Context, partial bool) error {
	if r.client == nil {
		return errNotConnected
	}
	projects := r.desired.Projects()
	if partial {
		projects = nil
		for _, f := range r.desired.Flags {
			projects = append(projects, f.Project)
		}
		slices.Sort(projects)
		projects = slices.Compact(projects)
	}
	live, err := r.read(ctx, projects, r.wanted(nil))
	if err != nil {
		return err
	}
	r.live = live
	return nil
}

// wanted returns the flags whose strategies a read needs: the desired flags (only those in
// touched, when given).
func (r *Repo) wanted(touched map[unleashmodel.Ref]bool) map[unleashmodel.Ref]bool {
	out := map[unleashmodel.Ref]bool{}
	for _, f := range r.desired.Flags {
		if touched == nil || touched[f.Ref()] {
			out[f.Ref()] = true
		}
	}
	return out
}

// read reads projects, the strategies of the wanted flags, and the archived flags of the
// projects where a wanted flag Git keeps active is missing.
func (r *Repo) read(ctx context.Context, projects []string, wanted map[unleashmodel.Ref]bool) (*unleashmodel.Live, error) {
	segments := false
	for _, f := range r.desired.Flags {
		for _, e := range f.Environments {
			for _, s := range e.Strategies {
				segments = segments || len(s.Segments) > 0
			}
		}
	}
	live, err := r.client.ReadProjects(ctx, projects, unleashclient.ReadOptions{
		Detail:   func(f *unleashmodel.Flag) bool { return wanted[f.Ref()] },
		Segments: segments,
	})
	if err != nil {
		return nil, fmt.Errorf("read live flags of %s %v: %w", plural(len(projects), "project"), projects, err)
	}
	for i := range live.Projects {
		p := &live.Projects[i]
		active := map[string]bool{}
		for _, f := range p.Flags {
			active[f.Name] = true
		}
		missing := false
		for _, f := range r.desired.Flags {
			missing = missing || (f.Project == p.Name && wanted[f.Ref()] && !f.Archived && !active[f.Name])
		}
		if missing {
			if p.Archived, err = r.client.ArchivedFeatures(ctx, p.Name); err != nil {
				return nil, err
			}
			p.ArchivedRead = true
		}
		r.logger.Debug("live flags read", "project", p.Name, "flags", len(p.Flags), "archived_looked_up", p.ArchivedRead)
	}
	return live, nil
}

// Plan plans the desired flags against the last read.
func (r *Repo) Plan(opts reconcile.PlanOptions) (plan.Plan, error) { return r.compute(r.live, opts) }

func (r *Repo) compute(live *unleashmodel.Live, o reconcile.PlanOptions) (plan.Plan, error) {
	opts := unleashplan.OptionsFor(r.desired)
	opts.Prune = !o.Partial && (opts.Prune || o.Prune)
	opts.MaxArchive, opts.AllowMassArchive = o.MaxArchive, o.AllowMassArchive
	p, err := unleashplan.Compute(r.desired, live, opts)
	p.Revision = o.Revision
	if o.Partial {
		p.Unmanaged = []plan.Address{}
	}
	return p, err
}

// Confirm reads again the projects the results touched — their flag lists, and the
// strategies of the touched flags only — and re-plans: the changes that remain. Flags the
// results did not touch keep what the first read found.
func (r *Repo) Confirm(ctx context.Context, results []apply.Result, opts reconcile.PlanOptions) ([]plan.Change, error) {
	touched := map[unleashmodel.Ref]bool{}
	var projects []string
	for _, res := range results {
		if res.Status == apply.Skipped {
			continue
		}
		touched[unleashmodel.Ref{Project: res.Change.Scope, Name: res.Change.Key}] = true
		projects = append(projects, res.Change.Scope)
	}
	if len(touched) == 0 {
		p, _ := r.compute(r.live, opts)
		return p.Changes, nil
	}
	slices.Sort(projects)
	projects = slices.Compact(projects)
	fresh, err := r.read(ctx, projects, r.wanted(touched))
	if err != nil {
		return nil, fmt.Errorf("confirm convergence: %w", err)
	}
	now := &unleashmodel.Live{SegmentIDs: fresh.SegmentIDs}
	if now.SegmentIDs == nil && r.live != nil {
		now.SegmentIDs = r.live.SegmentIDs
	}
	for _, p := range fresh.Projects {
		if old := r.live.Project(p.Name); old != nil {
			// Untouched flags keep their first read (the fresh list did not read their
			// strategies); archived names not looked up again stay as they were.
			for i := range p.Flags {
				if touched[p.Flags[i].Ref()] {
					continue
				}
				for _, of := range old.Flags {
					if of.Name == p.Flags[i].Name {
						p.Flags[i] = of
					}
				}
			}
			if !p.ArchivedRead {
				p.Archived, p.ArchivedRead = old.Archived, old.ArchivedRead
			}
		}
		now.Projects = append(now.Projects, p)
	}
	if r.live != nil {
		for _, p := range r.live.Projects {
			if now.Project(p.Name) == nil {
				now.Projects = append(now.Projects, p)
			}
		}
	}
	p, _ := r.compute(now, opts)
	return p.Changes, nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// Files returns where each desired flag is defined, for the daemon's index of a
// repository and for comments on a pull request.
func (r *Repo) Files() []reconcile.FlagFile {
	out := make([]reconcile.FlagFile, 0, len(r.desired.Flags))
	for _, f := range r.desired.Flags {
		out = append(out, reconcile.FlagFile{Flag: unleashplan.AddressOf(f.Ref(), ""), File: f.Source.File, Line: f.Source.Line})
	}
	return out
}
