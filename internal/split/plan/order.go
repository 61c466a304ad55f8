package splitplan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// This file arranges the changes of a plan across flags: what waits for a change request,
// what Split would refuse because a flag it names is missing, and in which order flags
// that name each other are applied (IN_SPLIT dependencies).

// group is one flag's changes.
type group struct {
	ref     splitmodel.Ref
	changes []plan.Change
	desired *splitmodel.Flag // nil for a pruned flag
	live    *splitmodel.Flag // nil for a flag the plan creates
	created bool             // the plan creates the flag
	pruned  bool             // the plan kills it because it is gone from Git
}

// refEnv is a flag's definition in one environment.
type refEnv struct {
	ref splitmodel.Ref
	env string
}

// arranger arranges the groups of one plan.
type arranger struct {
	groups  []group // sorted by ref
	desired map[splitmodel.Ref]*splitmodel.Flag
	live    map[splitmodel.Ref]*splitmodel.Flag
	blocked []plan.Blocked

	pendingCreate map[refEnv]string // definitions whose creation awaits approval: the change request
	refusedWhole  map[splitmodel.Ref]string
	refusedEnv    map[refEnv]string
	// waitWhole and waitEnv are the refusals above that only wait for a change request
	// (a dependency's creation awaits approval): the change request they wait for. They
	// are held back as awaiting approval, not refused: once the request is approved, the
	// next sync writes them.
	waitWhole map[splitmodel.Ref]string
	waitEnv   map[refEnv]string
}

// arrange returns the plan's changes in order, numbered, with Change.After set, and the
// changes it holds back.
func (a *arranger) arrange() ([]plan.Change, []plan.Blocked) {
	a.pendingCreate = map[refEnv]string{}
	a.refusedWhole = map[splitmodel.Ref]string{}
	a.refusedEnv = map[refEnv]string{}
	a.waitWhole = map[splitmodel.Ref]string{}
	a.waitEnv = map[refEnv]string{}
	a.awaitApprovals()
	a.refuseMissingDependencies()
	var changes []plan.Change
	for _, gi := range a.flagOrder() {
		for _, c := range a.groups[gi].changes {
			c.Order = len(changes) + 1
			changes = append(changes, c)
		}
	}
	a.link(changes)
	return sortChanges(changes), a.blocked
}

// awaitApprovals marks the definition changes of environments where the live flag has a
// change request open: the change stays in the plan (Split still differs from Git), and
// is reported as awaiting approval; the client neither writes nor files it again while
// the request is open.
func (a *arranger) awaitApprovals() {
	for gi := range a.groups {
		g := &a.groups[gi]
		if g.live == nil || len(g.live.OpenChangeRequests) == 0 {
			continue
		}
		for ci, c := range g.changes {
			cr, open := g.live.OpenChangeRequests[c.Environment]
			if c.Environment == "" || !open {
				continue
			}
			if _, configured := g.live.Environments[c.Environment]; !configured {
				a.pendingCreate[refEnv{g.ref, c.Environment}] = cr.ID
			}
			what := cr.OperationType
			if what == "" {
				what = "a change"
			}
			a.blocked = append(a.blocked, plan.Blocked{Address: c.Address, Kind: plan.BlockedAwaitingApproval, ChangeRequest: cr.ID,
				Reason: fmt.Sprintf("change request %s (%s) waits for approval in Split; flagsync does not write or file this change again while it is open", cr.ID, what)})
			g.changes[ci].Reason += fmt.Sprintf("; change request %s is open for it in Split: it waits for approval and is not sent or filed again", cr.ID)
		}
	}
}

// refuseMissingDependencies refuses the definition changes that name (IN_SPLIT) a flag
// that will not exist in their environment: neither in Split nor created by the plan
// (it may itself be refused, or wait for approval). Split would refuse such a write. A
// flag the plan creates is refused whole, so that it is not left half-created.
func (a *arranger) refuseMissingDependencies() {
	// An entry moves from none to waiting (for a change request) to refused, never back,
	// so the passes end.
	for changed := true; changed; {
		changed = false
		for gi := range a.groups {
			g := &a.groups[gi]
			if g.desired == nil || (a.refusedWhole[g.ref] != "" && a.waitWhole[g.ref] == "") {
				continue
			}
			for _, c := range g.changes {
				if a.holdBack(g, c.Environment) {
					changed = true
				}
				if a.refusedWhole[g.ref] != "" && a.waitWhole[g.ref] == "" {
					break
				}
			}
		}
	}
	for gi := range a.groups {
		g := &a.groups[gi]
		if why := a.refusedWhole[g.ref]; why != "" {
			a.blocked = append(a.blocked, held(AddressOf(g.ref, ""), why, a.waitWhole[g.ref]))
			g.changes = nil
			continue
		}
		kept := g.changes[:0:0]
		for _, c := range g.changes {
			re := refEnv{g.ref, c.Environment}
			if why := a.refusedEnv[re]; why != "" && c.Environment != "" {
				a.blocked = append(a.blocked, held(c.Address, why, a.waitEnv[re]))
				continue
			}
			kept = append(kept, c)
		}
		g.changes = kept
	}
}

// holdBack holds back group g's definition in env when a flag it names (IN_SPLIT) will
// not exist there: as waiting when every such flag waits for a change request, else as
// refused. It reports whether it changed what it had decided before.
func (a *arranger) holdBack(g *group, env string) bool {
	re := refEnv{g.ref, env}
	if env == "" || (a.refusedEnv[re] != "" && a.waitEnv[re] == "") {
		return false
	}
	d := g.desired.Environments[env]
	name, why, hint, cr := a.missing(g.ref, env, d.DependencyNames())
	if name == "" {
		return false
	}
	if g.created {
		if a.refusedWhole[g.ref] != "" && cr != "" {
			return false // already held back; another wait changes nothing
		}
		a.refusedWhole[g.ref] = fmt.Sprintf("not created: its definition in %s names flag %s (IN_SPLIT), which %s; Split refuses a definition that names an absent flag, and creating %s without it would leave it half-created%s",
			env, name, why, g.ref.Name, hint)
		setWait(a.waitWhole, g.ref, cr)
		return true
	}
	if a.refusedEnv[re] != "" && cr != "" {
		return false
	}
	a.refusedEnv[re] = fmt.Sprintf("definition in %s not written: it names flag %s (IN_SPLIT), which %s; Split would refuse it%s", env, name, why, hint)
	setWait(a.waitEnv, re, cr)
	return true
}

// setWait records the change request k waits for, or that it waits for none.
func setWait[K comparable](m map[K]string, k K, cr string) {
	if cr == "" {
		delete(m, k)
		return
	}
	m[k] = cr
}

// missing returns the flag among names (those a definition of self in env names) that
// keeps that definition from being written, with why and a hint: first one that will not
// exist for another reason than a change request (cr ""), else the first whose creation
// waits for one (cr its id); name is "" when every named flag will exist.
func (a *arranger) missing(self splitmodel.Ref, env string, names []string) (name, why, hint, cr string) {
	for _, n := range names {
		other := splitmodel.Ref{Workspace: self.Workspace, Name: n}
		if other == self {
			continue
		}
		w, h := a.unavailable(other, env)
		if w == "" {
			continue
		}
		c := a.waitsFor(other, env)
		if c == "" {
			return n, w, h, ""
		}
		if name == "" {
			name, why, hint, cr = n, w, h, c
		}
	}
	return name, why, hint, cr
}

// waitsFor is the change request whose approval would make flag ref exist in env: its
// own creation there awaits approval, or it is held back waiting for another's; "" when
// ref is missing for another reason.
func (a *arranger) waitsFor(ref splitmodel.Ref, env string) string {
	if cr := a.pendingCreate[refEnv{ref, env}]; cr != "" {
		return cr
	}
	if cr := a.waitWhole[ref]; cr != "" {
		return cr
	}
	return a.waitEnv[refEnv{ref, env}]
}

// held is the Blocked entry of a change held back for a missing dependency: awaiting
// approval when all it waits for is change request cr (not a refusal: the next sync after
// the approval writes it), else refused.
func held(addr plan.Address, why, cr string) plan.Blocked {
	if cr != "" {
		return plan.Blocked{Address: addr, Kind: plan.BlockedAwaitingApproval, ChangeRequest: cr,
			Reason: why + "; it waits for that approval and is written by the next sync after it"}
	}
	return plan.Blocked{Address: addr, Kind: plan.BlockedMissingDependency, Reason: why}
}

// unavailable says why flag ref will not exist in env once the plan is applied ("" when
// it will: it is configured there in Split, or Git configures it there and the plan
// neither refuses nor holds back that definition), with a did-you-mean hint for a name
// that exists nowhere.
func (a *arranger) unavailable(ref splitmodel.Ref, env string) (why, hint string) {
	if l := a.live[ref]; l != nil {
		if _, ok := l.Environments[env]; ok {
			return "", ""
		}
	}
	d := a.desired[ref]
	switch {
	case d == nil && a.live[ref] == nil:
		if h := a.suggest(ref, env); h != "" {
			hint = " (" + strings.TrimPrefix(h, "; ") + ")"
		}
		return "exists in " + env + " neither in Git nor in Split", hint
	case d == nil:
		return "is not configured in " + env + " in Split (and Git does not configure it there)", ""
	case !hasEnv(d, env):
		return "Git does not configure in " + env + " and is not configured there in Split", ""
	case a.refusedWhole[ref] != "":
		return "this plan does not create (it is refused too)", ""
	case a.refusedEnv[refEnv{ref, env}] != "":
		return "this plan does not configure in " + env + " (refused too)", ""
	case a.pendingCreate[refEnv{ref, env}] != "":
		return "is not configured in " + env + " until change request " + a.pendingCreate[refEnv{ref, env}] + " is approved", ""
	}
	return "", ""
}

func hasEnv(f *splitmodel.Flag, env string) bool {
	_, ok := f.Environments[env]
	return ok
}

// suggest is a did-you-mean hint among the flags of ref's workspace that Git or Split
// has in env.
func (a *arranger) suggest(ref splitmodel.Ref, env string) string {
	var names []string
	for r, f := range a.desired {
		if r.Workspace == ref.Workspace && hasEnv(f, env) {
			names = append(names, r.Name)
		}
	}
	for r, f := range a.live {
		if r.Workspace == ref.Workspace && hasEnv(f, env) && !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return diag.DidYouMean(ref.Name, names)
}

// dependencies returns, for a group, the flags whose changes must come first: for a
// desired flag, the flags its changed definitions name; pruned flags are killed after
// the pruned flags that name them (removals in reverse).
func (a *arranger) dependencies() map[string][]string {
	deps := map[string][]string{}
	add := func(from, to splitmodel.Ref) {
		k := from.String()
		if !slices.Contains(deps[k], to.String()) {
			deps[k] = append(deps[k], to.String())
		}
	}
	for _, g := range a.groups {
		for _, c := range g.changes {
			if c.Environment == "" {
				continue
			}
			ref := func(name string) splitmodel.Ref { return splitmodel.Ref{Workspace: g.ref.Workspace, Name: name} }
			switch {
			case g.desired != nil:
				d := g.desired.Environments[c.Environment]
				for _, name := range d.DependencyNames() {
					add(g.ref, ref(name))
				}
			case g.pruned && g.live != nil:
				d := g.live.Environments[c.Environment]
				for _, name := range d.DependencyNames() {
					add(ref(name), g.ref) // the flag it names waits for its kill
				}
			}
		}
	}
	return deps
}

// flagOrder returns the indexes of the groups with changes in the order they are
// applied: by ref, with each flag after the flags it needs.
func (a *arranger) flagOrder() []int {
	var nodes []string
	at := map[string]int{}
	for gi, g := range a.groups {
		if len(g.changes) == 0 {
			continue
		}
		at[g.ref.String()] = gi
		nodes = append(nodes, g.ref.String())
	}
	order, _ := splitmodel.TopologicalOrder(nodes, a.dependencies())
	out := make([]int, len(order))
	for i, n := range order {
		out[i] = at[n]
	}
	return out
}

// link sets Change.After: a definition change waits for the changes of the flags its
// definition names in that environment (and for their creation); a pruned flag's kill
// waits for the kills of the pruned flags that name it.
func (a *arranger) link(changes []plan.Change) {
	byEnv := map[refEnv][]int{} // a flag's changes in an environment, "" for the flag itself
	for _, c := range changes {
		re := refEnv{splitmodel.Ref{Workspace: c.Scope, Name: c.Key}, c.Environment}
		byEnv[re] = append(byEnv[re], c.Order)
	}
	creates := map[splitmodel.Ref]int{}
	for _, c := range changes {
		if c.Environment == "" && c.Action == plan.ActionCreate {
			creates[splitmodel.Ref{Workspace: c.Scope, Name: c.Key}] = c.Order
		}
	}
	for i := range changes {
		c := &changes[i]
		if c.Environment == "" {
			continue
		}
		self := splitmodel.Ref{Workspace: c.Scope, Name: c.Key}
		var after []int
		if d := a.desired[self]; d != nil && c.Action != plan.ActionArchive {
			def := d.Environments[c.Environment]
			for _, name := range def.DependencyNames() {
				other := splitmodel.Ref{Workspace: self.Workspace, Name: name}
				if other == self {
					continue
				}
				after = append(after, byEnv[refEnv{other, c.Environment}]...)
				if o, ok := creates[other]; ok {
					after = append(after, o)
				}
			}
		}
		if c.Action == plan.ActionArchive {
			for _, g := range a.groups {
				if !g.pruned || g.live == nil || g.ref == self {
					continue
				}
				def := g.live.Environments[c.Environment]
				if slices.Contains(def.DependencyNames(), self.Name) {
					after = append(after, byEnv[refEnv{g.ref, c.Environment}]...)
				}
			}
		}
		slices.Sort(after)
		c.After = slices.Compact(after)
	}
}

// sortChanges reorders changes, when their After needs it, so that every change comes
// after the changes it needs and after its own flag's creation, keeping the given order
// wherever it can, and renumbers them. Flags ordered by their dependencies already are,
// so this only moves changes when flags need each other in different environments.
func sortChanges(changes []plan.Change) []plan.Change {
	needs := map[string][]string{}
	created := map[string]int{}
	nodes := make([]string, len(changes))
	for i, c := range changes {
		nodes[i] = strconv.Itoa(c.Order)
		if c.Action == plan.ActionCreate && c.Environment == "" {
			created[c.Flag().String()] = c.Order
		}
	}
	moved := false
	for _, c := range changes {
		k := strconv.Itoa(c.Order)
		for _, o := range c.After {
			needs[k] = append(needs[k], strconv.Itoa(o))
			moved = moved || o > c.Order
		}
		if o, ok := created[c.Flag().String()]; ok && o != c.Order {
			needs[k] = append(needs[k], strconv.Itoa(o))
		}
	}
	if !moved {
		return changes
	}
	order, _ := splitmodel.TopologicalOrder(nodes, needs)
	byOld := make(map[int]plan.Change, len(changes))
	for _, c := range changes {
		byOld[c.Order] = c
	}
	renumber := make(map[int]int, len(changes))
	out := make([]plan.Change, 0, len(changes))
	for i, n := range order {
		old, _ := strconv.Atoi(n)
		renumber[old] = i + 1
		out = append(out, byOld[old])
	}
	for i := range out {
		out[i].Order = i + 1
		after := make([]int, len(out[i].After))
		for j, o := range out[i].After {
			after[j] = renumber[o]
		}
		slices.Sort(after)
		out[i].After = after
	}
	return out
}
