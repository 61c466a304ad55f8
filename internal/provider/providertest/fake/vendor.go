package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// BlockedLocked is the refusal to change a flag someone locked.
const BlockedLocked plan.BlockedKind = "locked"

// Vendor returns the fake service's reconcile.Vendor through c (nil: files only).
func Vendor(c *Client) reconcile.Vendor { return vendor{c} }

type vendor struct{ client *Client }

// Service names the fake service.
func (vendor) Service() string { return Service }

// Claim takes the files that say vendor: fake, or all of them when flagsync.yaml does.
func (vendor) Claim(src reconcile.Source) ([]string, bool, error) { return claim(src.FS, src.Dir) }

// Load reads and validates the fake flag files.
func (v vendor) Load(src reconcile.Source) (reconcile.Repo, error) {
	flags, err := load(src.FS, src.Dir)
	if err != nil {
		return nil, err
	}
	logger := src.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &repo{client: v.client, desired: flags, logger: logger}, nil
}

// Do sends a planned request.
func (v vendor) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	if v.client == nil {
		return nil, errors.New("fake: not connected")
	}
	return v.client.Do(ctx, req)
}

// repo is the fake service's part of one run.
type repo struct {
	client  *Client
	logger  *slog.Logger
	desired []Flag
	live    []Flag
}

// Bind reads and writes through v from now on.
func (r *repo) Bind(v reconcile.Vendor) reconcile.Repo {
	fv, ok := v.(vendor)
	if !ok {
		return nil
	}
	bound := *r
	bound.client = fv.client
	return &bound
}

// Restrict keeps the named flags.
func (r *repo) Restrict(only []plan.Address) {
	want := map[string]bool{}
	for _, a := range only {
		want[a.Key] = true
	}
	kept := r.desired[:0:0]
	for _, f := range r.desired {
		if want[f.Key] {
			kept = append(kept, f)
		}
	}
	r.desired = kept
}

// Scopes is the one scope.
func (r *repo) Scopes() []string { return []string{Scope} }

// Read lists every flag (one call), or gets each desired flag in a partial run.
func (r *repo) Read(ctx context.Context, partial bool) error {
	if !partial {
		live, err := r.client.List(ctx)
		if err != nil {
			return fmt.Errorf("read live flags of %s: %w", Scope, err)
		}
		r.live = live
		return nil
	}
	r.live = nil
	for _, f := range r.desired {
		l, err := r.client.Get(ctx, f.Key)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read live flag %s: %w", f.Key, err)
		}
		r.live = append(r.live, l)
	}
	return nil
}

// Plan plans the desired flags against the last read.
func (r *repo) Plan(o reconcile.PlanOptions) (plan.Plan, error) { return compute(r.desired, r.live, o) }

// Confirm lists again and re-plans.
func (r *repo) Confirm(ctx context.Context, _ []apply.Result, o reconcile.PlanOptions) ([]plan.Change, error) {
	if err := r.Read(ctx, o.Partial); err != nil {
		return nil, fmt.Errorf("confirm convergence: %w", err)
	}
	p, _ := r.Plan(o)
	return p.Changes, nil
}

// Files says where each desired flag is defined.
func (r *repo) Files() []reconcile.FlagFile {
	out := make([]reconcile.FlagFile, len(r.desired))
	for i, f := range r.desired {
		out[i] = reconcile.FlagFile{Flag: Address(f.Key), File: f.file, Line: f.line}
	}
	return out
}

// compute plans desired against live (pure): a create for a new flag, an update for one
// that differs (refused when someone locked it), and, when pruning, an archive for a
// managed flag gone from Git within the mass-archive guard; other live flags are
// unmanaged.
func compute(desired, live []Flag, o reconcile.PlanOptions) (plan.Plan, error) {
	p := plan.Plan{Revision: o.Revision, Service: Service, Changes: []plan.Change{}, Unmanaged: []plan.Address{}}
	byKey := map[string]Flag{}
	for _, f := range live {
		byKey[f.Key] = f
	}
	inGit := map[string]bool{}
	for _, d := range desired {
		inGit[d.Key] = true
		l, ok := byKey[d.Key]
		switch {
		case !ok:
			p.Changes = append(p.Changes, change(plan.ActionCreate, d, nil))
		case l.Enabled == d.Enabled && l.Value == d.Value:
		case l.Locked:
			p.Blocked = append(p.Blocked, plan.Blocked{Address: Address(d.Key), Kind: BlockedLocked, Reason: "locked in the service: not changed"})
		default:
			p.Changes = append(p.Changes, change(plan.ActionUpdate, d, &l))
		}
	}
	var prune []plan.Address
	managed := map[string]int{}
	for _, l := range live {
		if l.Managed {
			managed[Scope]++
		}
		switch {
		case inGit[l.Key]:
		case l.Managed && o.Prune && !o.Partial:
			prune = append(prune, Address(l.Key))
		case !o.Partial:
			p.Unmanaged = append(p.Unmanaged, Address(l.Key))
		}
	}
	var err error
	if limit := plan.MassArchiveLimit(prune, managed, o.MaxArchive, o.AllowMassArchive, "space"); limit != "" {
		for _, a := range prune {
			p.Blocked = append(p.Blocked, plan.Blocked{Address: a, Reason: "removed from Git; archiving refused by the mass-archive guard (" + limit + ")"})
		}
		err = &plan.MassArchiveError{Flags: prune, Limit: limit}
	} else {
		for _, a := range prune {
			p.Changes = append(p.Changes, plan.Change{Action: plan.ActionArchive, Address: a,
				Request: api.Request{Method: http.MethodPost, Path: "/flags/" + a.Key + "/archive"}, Reason: "removed from Git"})
		}
	}
	sort.SliceStable(p.Changes, func(i, j int) bool { return p.Changes[i].Key < p.Changes[j].Key })
	for i := range p.Changes {
		p.Changes[i].Order = i + 1
	}
	return p, err
}

// change is the create or update that makes the service hold d.
func change(action plan.Action, d Flag, live *Flag) plan.Change {
	body, _ := json.Marshal(Flag{Key: d.Key, Enabled: d.Enabled, Value: d.Value})
	c := plan.Change{Action: action, Address: Address(d.Key), Request: api.Request{Method: http.MethodPost, Path: "/flags", Body: body}, Reason: "new in Git"}
	if live == nil {
		c.Fields = []plan.FieldChange{{Path: "enabled", After: d.Enabled}, {Path: "value", After: d.Value}}
		return c
	}
	c.Request.Method, c.Request.Path, c.Reason = http.MethodPatch, "/flags/"+d.Key, "differs from Git"
	if live.Enabled != d.Enabled {
		c.Fields = append(c.Fields, plan.FieldChange{Path: "enabled", Before: live.Enabled, After: d.Enabled})
	}
	if live.Value != d.Value {
		c.Fields = append(c.Fields, plan.FieldChange{Path: "value", Before: live.Value, After: d.Value})
	}
	return c
}
