package unleashplan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/plan"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
)

// strategyDiff is one comparison of Git's strategy with Unleash's: the write it builds,
// and where ignore rules are looked up.
type strategyDiff struct {
	c       *computer
	ignores unleashmodel.Ignores
	ref     unleashmodel.Ref
	env     string
	w       write
}

// diffStrategy compares Git's strategy ds with Unleash's ls (both normalised) and returns
// the write that makes Unleash's like Git's: Git's strategy with the fields ignore paths
// leave to Unleash set to Unleash's values, and the fields that change.
func (c *computer) diffStrategy(ignores unleashmodel.Ignores, ref unleashmodel.Ref, env, path string, ds, ls unleashmodel.Strategy) write {
	d := &strategyDiff{c: c, ignores: ignores, ref: ref, env: env, w: write{s: ds, path: path}}
	d.w.s.ID = ls.ID
	if ds.Name != ls.Name {
		d.set("name", ls.Name, ds.Name, fmt.Sprintf("type %s → %s", ls.Name, ds.Name))
	}
	d.disabled(ds, ls)
	d.parameters(ds, ls)
	d.constraints(ds, ls)
	d.segments(ds, ls)
	d.variants(ds, ls)
	return d.w
}

// set records a field that changes, and why.
func (d *strategyDiff) set(field string, before, after any, reason string) {
	d.w.fields = append(d.w.fields, plan.FieldChange{Path: d.w.path + "." + field, Before: before, After: after})
	d.w.reasons = append(d.w.reasons, reason)
}

// ignored reports whether an ignore path leaves the strategy's field to Unleash (and
// notes the difference when it does).
func (d *strategyDiff) ignored(field string, git, live any) bool {
	return d.c.ignored(d.ignores, d.ref, d.env, d.w.path+"."+field, git, live)
}

func (d *strategyDiff) disabled(ds, ls unleashmodel.Strategy) {
	switch {
	case ds.Disabled == ls.Disabled:
	case d.ignored("disabled", ds.Disabled, ls.Disabled):
		d.w.s.Disabled = ls.Disabled
	case ds.Disabled:
		d.set("disabled", false, true, "disabled")
	default:
		d.set("disabled", true, false, "enabled (disabled false)")
	}
}

// parameters compares the parameters as a whole (an ignore path on parameters), then
// one by one (an ignore path on one parameter keeps Unleash's value of it).
func (d *strategyDiff) parameters(ds, ls unleashmodel.Strategy) {
	if maps.Equal(ds.Parameters, ls.Parameters) {
		return
	}
	if d.ignored("parameters", paramsOrNil(ds.Parameters), paramsOrNil(ls.Parameters)) {
		d.w.s.Parameters = maps.Clone(ls.Parameters)
		return
	}
	keys := sortedKeys(ds.Parameters)
	for _, k := range sortedKeys(ls.Parameters) {
		if _, ok := ds.Parameters[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	params := maps.Clone(ds.Parameters)
	for _, k := range keys {
		gv, gok := ds.Parameters[k]
		lv, lok := ls.Parameters[k]
		if gok == lok && gv == lv {
			continue
		}
		if d.ignored("parameters."+k, optParam(gv, gok), optParam(lv, lok)) {
			params = keepParam(params, k, lv, lok)
			continue
		}
		d.set("parameters."+k, optParam(lv, lok), optParam(gv, gok), fmt.Sprintf("%s %s → %s", k, showParam(lv, lok), showParam(gv, gok)))
	}
	d.w.s.Parameters = params
}

// keepParam sets parameter k of params to Unleash's value (lv; none unless lok).
func keepParam(params map[string]string, k, lv string, lok bool) map[string]string {
	if params == nil {
		params = map[string]string{}
	}
	if lok {
		params[k] = lv
	} else {
		delete(params, k)
	}
	return params
}

// constraints compares the constraints by position.
func (d *strategyDiff) constraints(ds, ls unleashmodel.Strategy) {
	if sameJSON(ds.Constraints, ls.Constraints) {
		return
	}
	if d.ignored("constraints", ds.Constraints, ls.Constraints) {
		d.w.s.Constraints = ls.Constraints
		return
	}
	for i := range max(len(ds.Constraints), len(ls.Constraints)) {
		var before, after any
		if i < len(ls.Constraints) {
			before = ls.Constraints[i]
		}
		if i < len(ds.Constraints) {
			after = ds.Constraints[i]
		}
		d.element(fmt.Sprintf("constraints[%d]", i), fmt.Sprintf("constraint %d", i), before, after)
	}
}

// element records the change of one element of a list (a constraint, a variant): added,
// removed or changed; nothing when it is the same.
func (d *strategyDiff) element(field, what string, before, after any) {
	switch {
	case sameJSON(before, after):
	case before == nil:
		d.set(field, nil, after, what+" added")
	case after == nil:
		d.set(field, before, nil, what+" removed")
	default:
		d.set(field, before, after, what+" changed")
	}
}

// segments compares the segments as a set (both are sorted).
func (d *strategyDiff) segments(ds, ls unleashmodel.Strategy) {
	if slices.Equal(ds.Segments, ls.Segments) {
		return
	}
	if d.ignored("segments", nonNil(ds.Segments), nonNil(ls.Segments)) {
		d.w.s.Segments = ls.Segments
		return
	}
	added, removed := setDiff(ls.Segments, ds.Segments)
	var parts []string
	for _, s := range added {
		parts = append(parts, "+"+s)
	}
	for _, s := range removed {
		parts = append(parts, "-"+s)
	}
	d.set("segments", nonNil(ls.Segments), nonNil(ds.Segments), "segments "+strings.Join(parts, ", "))
}

// variants compares the variants by name.
func (d *strategyDiff) variants(ds, ls unleashmodel.Strategy) {
	if sameJSON(ds.Variants, ls.Variants) {
		return
	}
	if d.ignored("variants", ds.Variants, ls.Variants) {
		d.w.s.Variants = ls.Variants
		return
	}
	var names []string
	for _, v := range append(slices.Clone(ds.Variants), ls.Variants...) {
		if !slices.Contains(names, v.Name) {
			names = append(names, v.Name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		at := "variants[name=" + unleashmodel.QuoteKey(name) + "]"
		d.element(at, "variant "+name, variantNamed(ls.Variants, name), variantNamed(ds.Variants, name))
	}
}

// variantNamed returns the variant called name, or nil.
func variantNamed(vs []unleashmodel.Variant, name string) any {
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	return nil
}
