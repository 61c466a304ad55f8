package unleash

import (
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/policy"
	"github.com/flagsync/flagsync/internal/reconcile"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
	"github.com/flagsync/flagsync/schema"
)

// FlagSchema is the schema of an Unleash flag file: flagsync.yaml's policies are
// compiled against it (reconcile.FlagShaper).
func (vendor) FlagSchema() []byte { return schema.UnleashFlag() }

// PolicyDocuments returns each flag's file content and live flag in the flag file's shape
// (the model's JSON names: name, project, environments.<name>.strategies, …, and owner,
// expires, permanent), for flagsync.yaml's policies (reconcile.PolicyRepo).
func (r *Repo) PolicyDocuments(flags []plan.Address) []reconcile.PolicyDocument {
	desired := make(map[plan.Address]*unleashmodel.Flag, len(r.desired.Flags))
	for i := range r.desired.Flags {
		desired[unleashplan.AddressOf(r.desired.Flags[i].Ref(), "")] = &r.desired.Flags[i]
	}
	live := map[plan.Address]*unleashmodel.Flag{}
	if r.live != nil {
		for pi := range r.live.Projects {
			p := &r.live.Projects[pi]
			for i := range p.Flags {
				live[unleashplan.AddressOf(p.Flags[i].Ref(), "")] = &p.Flags[i]
			}
		}
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
func plainMap(f *unleashmodel.Flag) map[string]any {
	v, err := policy.Plain(f)
	if err != nil {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}
