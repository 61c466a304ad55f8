package split

import (
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/policy"
	"github.com/flagsync/flagsync/internal/reconcile"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
	"github.com/flagsync/flagsync/schema"
)

// FlagSchema is the schema of a Split flag file: flagsync.yaml's policies are compiled
// against it (reconcile.FlagShaper).
func (vendor) FlagSchema() []byte { return schema.SplitFlag() }

// PolicyDocuments returns each flag's file content and live flag in the flag file's shape
// (the model's JSON names: name, workspace, environments.<name>.treatments, …, and
// owner, expires, permanent), for flagsync.yaml's policies (reconcile.PolicyRepo).
func (r *repo) PolicyDocuments(flags []plan.Address) []reconcile.PolicyDocument {
	desired := make(map[plan.Address]*splitmodel.Flag, len(r.desired.Flags))
	for i := range r.desired.Flags {
		desired[splitplan.AddressOf(r.desired.Flags[i].Ref(), "")] = &r.desired.Flags[i]
	}
	live := make(map[plan.Address]*splitmodel.Flag, len(r.live))
	for i := range r.live {
		live[splitplan.AddressOf(r.live[i].Ref(), "")] = &r.live[i]
	}
	out := make([]reconcile.PolicyDocument, len(flags))
	for i, a := range flags {
		if d := desired[a.Flag()]; d != nil {
			out[i].Flag, out[i].File, out[i].Line = plainMap(d), d.Source.File, d.Source.Line
		}
		if l := live[a.Flag()]; l != nil {
			out[i].Live = plainMap(l)
		}
	}
	return out
}

// plainMap is f as plain data through its JSON names; nil when it cannot be converted.
func plainMap(f *splitmodel.Flag) map[string]any {
	v, err := policy.Plain(f)
	if err != nil {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}
