package unleashplan

import (
	"encoding/json"
	"fmt"
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

// envWrites are the strategy writes of one environment, before they become changes.
type envWrites struct {
	creates, updates, deletes []write
	sortOrders                []unleashwire.SortOrder // of the strategies Unleash has
	orderField                *plan.FieldChange       // the reorder, when there is one
	orderReason               string
	createOrder               map[int]int // Git's index of a new strategy → its sort order
}

// environment plans one environment of a flag that exists in Unleash: the strategies
// added, changed, deleted and reordered, then the environment turned on or off. de and le
// are normalised.
func (c *computer) environment(d *unleashmodel.Flag, de, le unleashmodel.Environment, env string, ignores unleashmodel.Ignores) []plan.Change {
	ref := d.Ref()
	base := "environments." + env
	ew := envWrites{createOrder: map[int]int{}}
	if ig, ok := ignores.Match(base + ".strategies"); ok {
		if !sameJSON(stripIDs(de.Strategies), stripIDs(le.Strategies)) {
			c.notes = append(c.notes, plan.Note{Address: AddressOf(ref, env), Kind: plan.NoteIgnored, Path: base + ".strategies",
				Git: stripIDs(de.Strategies), Live: stripIDs(le.Strategies), Ignore: ig.Path.String(), Source: ig.Source,
				Reason: fmt.Sprintf("owned outside Git (ignore %s in %s): Unleash's strategies stay and are never written", ig.Path, ig.Source)})
		}
	} else {
		ew = c.strategyWrites(ref, env, base, de, le, ignores)
	}
	out := c.strategyChanges(d, env, le, ew)
	if ch, ok := c.toggle(d, de, le, env, ignores, ew); ok {
		out = append(out, ch)
	}
	return out
}

// strategyWrites pairs Git's strategies with Unleash's and returns the writes that make
// Unleash's like Git's: creates, updates (those that enable a strategy first, so that
// Unleash does not turn the environment off on the way) and deletes, and the sort orders.
func (c *computer) strategyWrites(ref unleashmodel.Ref, env, base string, de, le unleashmodel.Environment, ignores unleashmodel.Ignores) envWrites {
	ew := envWrites{createOrder: map[int]int{}}
	match := unleashmodel.MatchStrategies(de.Strategies, le.Strategies)
	used := make([]bool, len(le.Strategies))
	for i := range de.Strategies {
		ds := de.Strategies[i]
		path := base + "." + unleashmodel.StrategyPath(&ds, i)
		j := match[i]
		if j < 0 {
			ew.creates = append(ew.creates, write{desired: i, live: -1, s: ds, path: path, fields: strategyFields(path, &ds)})
			continue
		}
		used[j] = true
		w := c.diffStrategy(ignores, ref, env, path, ds, le.Strategies[j])
		w.desired, w.live = i, j
		if len(w.fields) > 0 {
			ew.updates = append(ew.updates, w)
		}
	}
	for j := range le.Strategies {
		if used[j] {
			continue
		}
		ls := le.Strategies[j]
		path := base + "." + unleashmodel.StrategyPath(&ls, j)
		ew.deletes = append(ew.deletes, write{desired: -1, live: j, s: ls, path: path,
			fields: []plan.FieldChange{{Path: path, Before: stripID(ls)}}})
	}
	slices.SortStableFunc(ew.updates, func(a, b write) int { return boolRank(a.s.Disabled) - boolRank(b.s.Disabled) })
	ew.sortOrder(base, match, used, de.Strategies, le.Strategies)
	return ew
}

// sortOrder plans where Git's strategies go: each new one's sort order, the kept ones'
// that must change, and the reorder's field change and reason.
func (ew *envWrites) sortOrder(base string, match []int, used []bool, desired, live []unleashmodel.Strategy) {
	orders, renumber := planSortOrder(match, live)
	for i, so := range orders {
		if match[i] < 0 {
			ew.createOrder[i] = so
		} else if live[match[i]].SortOrder != so {
			ew.sortOrders = append(ew.sortOrders, unleashwire.SortOrder{ID: live[match[i]].ID, SortOrder: so})
		}
	}
	if !renumber {
		return
	}
	ew.orderField = &plan.FieldChange{Path: base + ".strategies", Before: identities(live, used), After: identities(desired, nil)}
	ew.orderReason = "strategies reordered"
	if kept := keptOrder(match); slices.IsSorted(kept) && !hasTies(match, live) {
		ew.orderReason = "a new strategy goes between strategies whose sort orders leave no room"
	}
}

// strategyChanges turns an environment's strategy writes into changes: creates, updates,
// deletes, then the sort order.
func (c *computer) strategyChanges(d *unleashmodel.Flag, env string, le unleashmodel.Environment, ew envWrites) []plan.Change {
	ref := d.Ref()
	var written []unleashmodel.Strategy
	for _, w := range append(slices.Clone(ew.creates), ew.updates...) {
		written = append(written, w.s)
	}
	ids := c.segmentIDs(d, env, written)

	var out []plan.Change
	for _, w := range ew.creates {
		so := ew.createOrder[w.desired]
		out = append(out, change(plan.ActionCreate, ref, env, unleashwire.AddStrategyRequest(d.Project, d.Name, env, &w.s, ids, so), w.fields,
			fmt.Sprintf("strategy %s is in Git but not in Unleash; one POST adds it at sort order %d", describe(&w.s, w.desired), so)))
	}
	for _, w := range ew.updates {
		id := le.Strategies[w.live].ID
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.UpdateStrategyRequest(d.Project, d.Name, env, id, &w.s, ids), w.fields,
			fmt.Sprintf("strategy %s differs from Git: %s; one PUT replaces it, keeping its id", describe(&w.s, w.desired), strings.Join(w.reasons, "; "))))
	}
	for _, w := range ew.deletes {
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.DeleteStrategyRequest(d.Project, d.Name, env, w.s.ID), w.fields,
			fmt.Sprintf("strategy %s is in Unleash but not in Git; one DELETE removes it", describe(&w.s, w.live))))
	}
	if ew.orderField != nil && len(ew.sortOrders) > 0 {
		out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.SortOrderRequest(d.Project, d.Name, env, ew.sortOrders),
			[]plan.FieldChange{*ew.orderField}, ew.orderReason+"; one call sets the sort order of the strategies Unleash has (new ones were added at theirs)"))
	}
	return out
}

// toggle turns the environment on or off, as Git says, once the strategies are in place;
// Unleash turns an environment off by itself when a PUT or a DELETE leaves only disabled
// strategies. It returns false when there is nothing to send.
func (c *computer) toggle(d *unleashmodel.Flag, de, le unleashmodel.Environment, env string, ignores unleashmodel.Ignores, ew envWrites) (plan.Change, bool) {
	ref := d.Ref()
	base := "environments." + env
	target := de.Enabled
	if de.Enabled != le.Enabled && c.ignored(ignores, ref, env, base+".enabled", de.Enabled, le.Enabled) {
		target = le.Enabled
	}
	state, why, none := simulate(le.Enabled, le.Strategies, ew.creates, ew.updates, ew.deletes)
	if target && !state && none {
		// Unleash would turn it on by adding a strategy of its own: possible only when an
		// ignore rule keeps enabled (or the strategies) from Git, which has none enabled.
		// This note replaces the ignore rule's: Unleash's value does not stay.
		c.notes = slices.DeleteFunc(c.notes, func(n plan.Note) bool { return n.Address == AddressOf(ref, env) && n.Path == base+".enabled" })
		c.notes = append(c.notes, plan.Note{Address: AddressOf(ref, env), Kind: plan.NoteIgnored, Path: base + ".enabled",
			Git: de.Enabled, Live: le.Enabled,
			Reason: "Unleash turns it off once Git's strategies, all disabled, are written, and flagsync does not turn it on again: Unleash would add a strategy Git does not have"})
		return plan.Change{}, false
	}
	if target == state {
		return plan.Change{}, false
	}
	reason := "Git turns it off"
	if target {
		reason = "Git turns it on, once its strategies are in place"
	}
	if le.Enabled == target {
		reason = fmt.Sprintf("turned on again: Unleash turns an environment off when %s leaves only disabled strategies", why)
	}
	return change(plan.ActionUpdate, ref, env, unleashwire.ToggleRequest(d.Project, d.Name, env, target),
		[]plan.FieldChange{{Path: base + ".enabled", Before: state, After: target}}, reason), true
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
