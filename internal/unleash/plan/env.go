package unleashplan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/plan"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

// write is one strategy write of an environment, before it becomes a change.
type write struct {
	desired int                   // index in Git's list; -1 for a delete
	live    int                   // index in Unleash's list; -1 for a create
	s       unleashmodel.Strategy // what is written (Git's, with ignored fields Unleash's)
	fields  []plan.FieldChange    //
	reasons []string              //
	path    string                // the strategy's field path
}

// environment plans one environment of a flag that exists in Unleash: the strategies
// added, changed, deleted and reordered, then the environment turned on or off. de and le
// are normalised.
func (c *computer) environment(d *unleashmodel.Flag, de, le unleashmodel.Environment, env string, ignores unleashmodel.Ignores) []plan.Change {
	ref := d.Ref()
	base := "environments." + env
	var creates, updates, deletes []write
	var sortOrders []unleashwire.SortOrder
	var orderField *plan.FieldChange
	orderReason := ""
	createOrder := map[int]int{}

	if ig, ok := ignores.Match(base + ".strategies"); ok {
		if !sameJSON(stripIDs(de.Strategies), stripIDs(le.Strategies)) {
			c.notes = append(c.notes, plan.Note{Address: AddressOf(ref, env), Kind: plan.NoteIgnored, Path: base + ".strategies",
				Git: stripIDs(de.Strategies), Live: stripIDs(le.Strategies), Ignore: ig.Path.String(), Source: ig.Source,
				Reason: fmt.Sprintf("owned outside Git (ignore %s in %s): Unleash's strategies stay and are never written", ig.Path, ig.Source)})
		}
	} else {
		match := unleashmodel.MatchStrategies(de.Strategies, le.Strategies)
		used := make([]bool, len(le.Strategies))
		for i := range de.Strategies {
			ds := de.Strategies[i]
			path := base + "." + unleashmodel.StrategyPath(&ds, i)
			j := match[i]
			if j < 0 {
				creates = append(creates, write{desired: i, live: -1, s: ds, path: path,
					fields: strategyFields(path, &ds)})
				continue
			}
			used[j] = true
			w := c.diffStrategy(ignores, ref, env, path, ds, le.Strategies[j])
			w.desired, w.live = i, j
			if len(w.fields) > 0 {
				updates = append(updates, w)
			}
		}
		for j := range le.Strategies {
			if used[j] {
				continue
			}
			ls := le.Strategies[j]
			path := base + "." + unleashmodel.StrategyPath(&ls, j)
			deletes = append(deletes, write{desired: -1, live: j, s: ls, path: path,
				fields: []plan.FieldChange{{Path: path, Before: stripID(ls)}}})
		}
		// Enabling updates first, so that Unleash does not turn the environment off
		// on the way (it does when every strategy left is disabled).
		slices.SortStableFunc(updates, func(a, b write) int { return boolRank(a.s.Disabled) - boolRank(b.s.Disabled) })

		orders, renumber := planSortOrder(match, le.Strategies)
		for i, so := range orders {
			if match[i] < 0 {
				createOrder[i] = so
			} else if le.Strategies[match[i]].SortOrder != so {
				sortOrders = append(sortOrders, unleashwire.SortOrder{ID: le.Strategies[match[i]].ID, SortOrder: so})
			}
		}
		if renumber {
			before := identities(le.Strategies, used)
			after := identities(de.Strategies, nil)
			orderField = &plan.FieldChange{Path: base + ".strategies", Before: before, After: after}
			orderReason = "strategies reordered"
			if kept := keptOrder(match); slices.IsSorted(kept) && !hasTies(match, le.Strategies) {
				orderReason = "a new strategy goes between strategies whose sort orders leave no room"
			}
		}
	}

	var written []unleashmodel.Strategy
	for _, w := range append(slices.Clone(creates), updates...) {
		written = append(written, w.s)
	}
	ids := c.segmentIDs(d, env, written)

	var out []plan.Change
	for _, w := range creates {
		so := createOrder[w.desired]
		out = append(out, change(plan.ActionCreate, ref, env, unleashwire.AddStrategyRequest(d.Project, d.Name, env, &w.s, ids, so), w.fields,
			fmt.Sprintf("strategy %s is in Git but not in Unleash; one POST adds it at sort order %d", describe(&w.s, w.desired), so)))
	}
	for _, w := range updates {
		id := le.Strategies[w.live].ID
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.UpdateStrategyRequest(d.Project, d.Name, env, id, &w.s, ids), w.fields,
			fmt.Sprintf("strategy %s differs from Git: %s; one PUT replaces it, keeping its id", describe(&w.s, w.desired), strings.Join(w.reasons, "; "))))
	}
	for _, w := range deletes {
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.DeleteStrategyRequest(d.Project, d.Name, env, w.s.ID), w.fields,
			fmt.Sprintf("strategy %s is in Unleash but not in Git; one DELETE removes it", describe(&w.s, w.live))))
	}
	if orderField != nil && len(sortOrders) > 0 {
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.SortOrderRequest(d.Project, d.Name, env, sortOrders),
			[]plan.FieldChange{*orderField}, orderReason+"; one call sets the sort order of the strategies Unleash has (new ones were added at theirs)"))
	}

	// On or off, as Git says, once the strategies are in place; Unleash turns an
	// environment off by itself when a PUT or a DELETE leaves only disabled strategies.
	target := de.Enabled
	if de.Enabled != le.Enabled && c.ignored(ignores, ref, env, base+".enabled", de.Enabled, le.Enabled) {
		target = le.Enabled
	}
	state, why, none := simulate(le.Enabled, le.Strategies, creates, updates, deletes)
	if target && !state && none {
		// Unleash would turn it on by adding a strategy of its own: possible only when an
		// ignore rule keeps enabled (or the strategies) from Git, which has none enabled.
		// This note replaces the ignore rule's: Unleash's value does not stay.
		c.notes = slices.DeleteFunc(c.notes, func(n plan.Note) bool { return n.Address == AddressOf(ref, env) && n.Path == base+".enabled" })
		c.notes = append(c.notes, plan.Note{Address: AddressOf(ref, env), Kind: plan.NoteIgnored, Path: base + ".enabled",
			Git: de.Enabled, Live: le.Enabled,
			Reason: "Unleash turns it off once Git's strategies, all disabled, are written, and flagsync does not turn it on again: Unleash would add a strategy Git does not have"})
		return out
	}
	if target != state {
		reason := "Git turns it off"
		if target {
			reason = "Git turns it on, once its strategies are in place"
		}
		if le.Enabled == target {
			reason = fmt.Sprintf("turned on again: Unleash turns an environment off when %s leaves only disabled strategies", why)
		}
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.ToggleRequest(d.Project, d.Name, env, target),
			[]plan.FieldChange{{Path: base + ".enabled", Before: state, After: target}}, reason))
	}
	return out
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// simulate follows Unleash's rules through the writes of one environment and returns
// whether the environment is enabled afterwards: adding a strategy changes nothing; a PUT
// or a DELETE that leaves only disabled strategies (or none) turns it off. why says which
// write did; none, that every strategy left is disabled (or there is none).
func simulate(enabled bool, live []unleashmodel.Strategy, creates, updates, deletes []write) (state bool, why string, none bool) {
	disabled := map[string]bool{} // by a key: "live:<j>" or "new:<i>"
	for j, s := range live {
		disabled[fmt.Sprintf("live:%d", j)] = s.Disabled
	}
	for _, w := range creates {
		disabled[fmt.Sprintf("new:%d", w.desired)] = w.s.Disabled
	}
	allDisabled := func() bool {
		for _, d := range disabled {
			if !d {
				return false
			}
		}
		return true
	}
	for _, w := range updates {
		disabled[fmt.Sprintf("live:%d", w.live)] = w.s.Disabled
		if enabled && allDisabled() {
			enabled, why = false, "changing strategy "+describe(&w.s, w.desired)
		}
	}
	for _, w := range deletes {
		delete(disabled, fmt.Sprintf("live:%d", w.live))
		if enabled && allDisabled() {
			enabled, why = false, "deleting strategy "+describe(&w.s, w.live)
		}
	}
	return enabled, why, allDisabled()
}

// describe names a strategy for people: "beta" (titled) or "#2 (flexibleRollout)".
func describe(s *unleashmodel.Strategy, index int) string {
	if s.Title != "" {
		return fmt.Sprintf("%q", s.Title)
	}
	return fmt.Sprintf("#%d (%s)", index, s.Name)
}

// identities names strategies for a reorder's field change, leaving out those not kept.
func identities(ss []unleashmodel.Strategy, kept []bool) []string {
	out := []string{}
	for i := range ss {
		if kept != nil && !kept[i] {
			continue
		}
		out = append(out, strings.TrimPrefix(unleashmodel.StrategyPath(&ss[i], i), "strategies"))
	}
	return out
}

// planSortOrder returns the sort order of each of Git's strategies (match gives each one's
// index in live, or -1 for a new one) and whether the strategies Unleash has must be
// renumbered. Kept strategies keep their sort orders when those are already in Git's order
// and new ones fit between them; otherwise every strategy gets its position in Git's list.
func planSortOrder(match []int, live []unleashmodel.Strategy) ([]int, bool) {
	out := make([]int, len(match))
	renumber := func() ([]int, bool) {
		for i := range out {
			out[i] = i
		}
		return out, true
	}
	prev := -1 // sort order of the last kept strategy; -1: none yet
	for i := 0; i < len(match); {
		if match[i] >= 0 {
			so := live[match[i]].SortOrder
			if so <= prev || so < 0 {
				return renumber()
			}
			out[i], prev = so, so
			i++
			continue
		}
		// A run of new strategies, i..k-1, between prev and the next kept one.
		k := i
		for k < len(match) && match[k] < 0 {
			k++
		}
		n := k - i
		lo := prev + 1
		if k < len(match) {
			next := live[match[k]].SortOrder
			if prev < 0 && next-n >= 0 {
				lo = next - n // before the first kept strategy: just below it
			}
			if lo+n > next {
				return renumber()
			}
		}
		for x := range n {
			out[i+x] = lo + x
		}
		prev = lo + n - 1
		i = k
	}
	return out, false
}

// keptOrder returns the live indexes of the kept strategies in Git's order.
func keptOrder(match []int) []int {
	var out []int
	for _, j := range match {
		if j >= 0 {
			out = append(out, j)
		}
	}
	return out
}

// hasTies reports whether two kept strategies share a sort order.
func hasTies(match []int, live []unleashmodel.Strategy) bool {
	seen := map[int]bool{}
	for _, j := range match {
		if j < 0 {
			continue
		}
		if seen[live[j].SortOrder] {
			return true
		}
		seen[live[j].SortOrder] = true
	}
	return false
}

// diffStrategy compares Git's strategy ds with Unleash's ls (both normalised) and returns
// the write that makes Unleash's like Git's: Git's strategy with the fields ignore paths
// leave to Unleash set to Unleash's values, and the fields that change.
func (c *computer) diffStrategy(ignores unleashmodel.Ignores, ref unleashmodel.Ref, env, path string, ds, ls unleashmodel.Strategy) write {
	w := write{s: ds, path: path}
	w.s.ID = ls.ID
	set := func(field string, before, after any, reason string) {
		w.fields = append(w.fields, plan.FieldChange{Path: path + "." + field, Before: before, After: after})
		w.reasons = append(w.reasons, reason)
	}
	if ds.Name != ls.Name {
		set("name", ls.Name, ds.Name, fmt.Sprintf("type %s → %s", ls.Name, ds.Name))
	}
	if ds.Disabled != ls.Disabled {
		if c.ignored(ignores, ref, env, path+".disabled", ds.Disabled, ls.Disabled) {
			w.s.Disabled = ls.Disabled
		} else if ds.Disabled {
			set("disabled", false, true, "disabled")
		} else {
			set("disabled", true, false, "enabled (disabled false)")
		}
	}
	if !maps.Equal(ds.Parameters, ls.Parameters) {
		if c.ignored(ignores, ref, env, path+".parameters", paramsOrNil(ds.Parameters), paramsOrNil(ls.Parameters)) {
			w.s.Parameters = maps.Clone(ls.Parameters)
		} else {
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
				if c.ignored(ignores, ref, env, path+".parameters."+k, optParam(gv, gok), optParam(lv, lok)) {
					if params == nil {
						params = map[string]string{}
					}
					if lok {
						params[k] = lv
					} else {
						delete(params, k)
					}
					continue
				}
				set("parameters."+k, optParam(lv, lok), optParam(gv, gok), fmt.Sprintf("%s %s → %s", k, showParam(lv, lok), showParam(gv, gok)))
			}
			w.s.Parameters = params
		}
	}
	if !sameJSON(ds.Constraints, ls.Constraints) {
		if c.ignored(ignores, ref, env, path+".constraints", ds.Constraints, ls.Constraints) {
			w.s.Constraints = ls.Constraints
		} else {
			for i := range max(len(ds.Constraints), len(ls.Constraints)) {
				var before, after any
				if i < len(ls.Constraints) {
					before = ls.Constraints[i]
				}
				if i < len(ds.Constraints) {
					after = ds.Constraints[i]
				}
				switch {
				case sameJSON(before, after):
				case before == nil:
					set(fmt.Sprintf("constraints[%d]", i), nil, after, fmt.Sprintf("constraint %d added", i))
				case after == nil:
					set(fmt.Sprintf("constraints[%d]", i), before, nil, fmt.Sprintf("constraint %d removed", i))
				default:
					set(fmt.Sprintf("constraints[%d]", i), before, after, fmt.Sprintf("constraint %d changed", i))
				}
			}
		}
	}
	if !slices.Equal(ds.Segments, ls.Segments) {
		if c.ignored(ignores, ref, env, path+".segments", nonNil(ds.Segments), nonNil(ls.Segments)) {
			w.s.Segments = ls.Segments
		} else {
			added, removed := setDiff(ls.Segments, ds.Segments)
			var parts []string
			for _, s := range added {
				parts = append(parts, "+"+s)
			}
			for _, s := range removed {
				parts = append(parts, "-"+s)
			}
			set("segments", nonNil(ls.Segments), nonNil(ds.Segments), "segments "+strings.Join(parts, ", "))
		}
	}
	if !sameJSON(ds.Variants, ls.Variants) {
		if c.ignored(ignores, ref, env, path+".variants", ds.Variants, ls.Variants) {
			w.s.Variants = ls.Variants
		} else {
			byName := func(vs []unleashmodel.Variant, name string) any {
				for _, v := range vs {
					if v.Name == name {
						return v
					}
				}
				return nil
			}
			var names []string
			for _, v := range append(slices.Clone(ds.Variants), ls.Variants...) {
				if !slices.Contains(names, v.Name) {
					names = append(names, v.Name)
				}
			}
			slices.Sort(names)
			for _, name := range names {
				before, after := byName(ls.Variants, name), byName(ds.Variants, name)
				at := "variants[name=" + unleashmodel.QuoteKey(name) + "]"
				switch {
				case sameJSON(before, after):
				case before == nil:
					set(at, nil, after, fmt.Sprintf("variant %s added", name))
				case after == nil:
					set(at, before, nil, fmt.Sprintf("variant %s removed", name))
				default:
					set(at, before, after, fmt.Sprintf("variant %s changed", name))
				}
			}
		}
	}
	return w
}

func paramsOrNil(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func optParam(v string, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

func showParam(v string, ok bool) string {
	if !ok {
		return "(none)"
	}
	return v
}

// sameJSON compares two values by their JSON: the model's lists of plain structs.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func stripID(s unleashmodel.Strategy) unleashmodel.Strategy {
	s.ID, s.SortOrder = "", 0
	return s
}

func stripIDs(ss []unleashmodel.Strategy) []unleashmodel.Strategy {
	out := make([]unleashmodel.Strategy, len(ss))
	for i, s := range ss {
		out[i] = stripID(s)
	}
	return out
}
