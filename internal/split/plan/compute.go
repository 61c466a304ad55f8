package splitplan

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/jsonpatch"
	"github.com/flagsync/flagsync/internal/plan"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// Service is the name the plan renderers use for Split.
const Service = "Split"

// AddressOf is the neutral address of a Split flag (the workspace id is its scope, the
// flag name its key) and, when env is set, of its definition in that environment.
func AddressOf(ref splitmodel.Ref, env string) plan.Address {
	return plan.Address{Service: Service, Scope: ref.Workspace, Key: ref.Name, Environment: env}
}

// addressesOf returns the flags' addresses, in order.
func addressesOf(refs []splitmodel.Ref) []plan.Address {
	out := make([]plan.Address, len(refs))
	for i, r := range refs {
		out[i] = AddressOf(r, "")
	}
	return out
}

// Options tune Compute. The zero value plans without pruning, environments in
// alphabetical order.
type Options struct {
	// Prune kills, in every environment flagsync reads, the live flags that are gone from
	// Git and carry the ownership tag. Split flags are never deleted.
	Prune bool
	// EnvironmentOrder is the order definitions are created and patched in (the
	// settings' environments); others follow alphabetically.
	EnvironmentOrder []string
	// MaxArchive and AllowMassArchive are the mass-archive guard (see plan.MassArchiveLimit).
	MaxArchive       int
	AllowMassArchive bool
}

// OptionsFor returns the options a Split repository's settings ask for.
func OptionsFor(s splitmodel.Settings) Options {
	return Options{Prune: s.Prune, EnvironmentOrder: slices.Clone(s.Environments)}
}

// TrafficTypeError is returned when Git gives flags a traffic type other than the one
// they have in Split, which Split cannot change. The plan returned with it holds every
// other change; applying it is refused by the pipeline.
type TrafficTypeError struct {
	Flags []string // "workspace/name: Git user, Split account", sorted
}

// Error lists the flags whose traffic type differs.
func (e *TrafficTypeError) Error() string {
	return fmt.Sprintf("plan: a flag's traffic type cannot be changed in Split (delete and recreate the flag, or change the file back): %s",
		strings.Join(e.Flags, "; "))
}

// Compute returns the changes that bring live in line with desired. It is pure: the same
// arguments give the same plan. Live flags carry the definitions of the environments
// that were read. The error is nil, a *plan.MassArchiveError or a *TrafficTypeError,
// returned with a usable plan.
//
// Per flag, strictly: create the flag → create its new definitions → patch the flag's
// description and tags → patch changed definitions, environments in order. Flags are
// ordered by workspace, then name, except that a flag's definitions come after those of
// the flags its rules name (IN_SPLIT), and a pruned flag is killed after the flags that
// depend on it: such changes carry Change.After. A definition change that names a flag
// that exists in its environment neither in Git nor in Split is refused (a new flag with
// one is refused whole, so that it is never left half-created), and one whose live flag
// has a change request open in that environment waits for it (see arrange).
func Compute(desired *splitmodel.Desired, live []splitmodel.Flag, opts Options) (plan.Plan, error) {
	p := plan.Plan{Changes: []plan.Change{}, Unmanaged: []plan.Address{}, Service: Service}
	var want []*splitmodel.Flag
	if desired != nil {
		p.Revision = desired.Revision
		for i := range desired.Flags {
			want = append(want, &desired.Flags[i])
		}
	}
	slices.SortStableFunc(want, func(a, b *splitmodel.Flag) int { return splitmodel.CompareRefs(a.Ref(), b.Ref()) })
	byRef := make(map[splitmodel.Ref]*splitmodel.Flag, len(live))
	for i := range live {
		if _, dup := byRef[live[i].Ref()]; !dup {
			byRef[live[i].Ref()] = &live[i]
		}
	}

	groups, typeErrs, inGit := gitGroups(want, byRef, opts.EnvironmentOrder)
	prune, managed, unmanaged := liveOnly(byRef, inGit, opts.Prune)
	p.Unmanaged = append(p.Unmanaged, unmanaged...)

	var err error
	if limit := plan.MassArchiveLimit(addressesOf(prune), managed, opts.MaxArchive, opts.AllowMassArchive, "workspace"); limit != "" {
		for _, ref := range prune {
			p.Blocked = append(p.Blocked, plan.Blocked{Address: AddressOf(ref, ""),
				Reason: "removed from Git; killing refused by the mass-archive guard (" + limit + ")"})
		}
		err = &plan.MassArchiveError{Flags: addressesOf(prune), Limit: limit}
	} else {
		for _, ref := range prune {
			groups = append(groups, group{ref: ref, changes: pruneChanges(byRef[ref], opts.EnvironmentOrder), live: byRef[ref], pruned: true})
		}
	}
	if len(typeErrs) > 0 && err == nil {
		slices.Sort(typeErrs)
		err = &TrafficTypeError{Flags: typeErrs}
	}

	slices.SortStableFunc(groups, func(a, b group) int { return splitmodel.CompareRefs(a.ref, b.ref) })
	a := arranger{groups: groups, desired: map[splitmodel.Ref]*splitmodel.Flag{}, live: byRef}
	for _, d := range want {
		a.desired[d.Ref()] = d
	}
	changes, blocked := a.arrange()
	p.Changes = append(p.Changes, changes...)
	p.Blocked = append(p.Blocked, blocked...)
	return p, err
}

// gitGroups returns the changes of each flag in Git (want, sorted; the first of a
// duplicated flag counts), a group per flag that has any; the flags whose traffic type
// differs from Split's ("ref: Git type, Split type", unsorted); and the flags in Git.
func gitGroups(want []*splitmodel.Flag, byRef map[splitmodel.Ref]*splitmodel.Flag, order []string) ([]group, []string, map[splitmodel.Ref]bool) {
	var groups []group
	var typeErrs []string
	inGit := make(map[splitmodel.Ref]bool, len(want))
	for _, d := range want {
		ref := d.Ref()
		if inGit[ref] {
			continue
		}
		inGit[ref] = true
		var cs []plan.Change
		l, exists := byRef[ref]
		if exists {
			if d.TrafficType != "" && d.TrafficType != l.TrafficType && d.TrafficType != l.TrafficTypeID {
				typeErrs = append(typeErrs, fmt.Sprintf("%s: Git %s, Split %s", ref, d.TrafficType, l.TrafficType))
			}
			cs = updateChanges(d, l, order)
		} else {
			cs = createChanges(d, order)
		}
		if len(cs) > 0 {
			groups = append(groups, group{ref: ref, changes: cs, desired: d, live: l, created: !exists})
		}
	}
	return groups, typeErrs, inGit
}

// liveOnly sorts out the live flags, in order: the flags to prune (managed, gone from
// Git, not yet retired, and prune is on), the count of managed flags per workspace that
// are not retired (for the mass-archive guard), and the addresses of the flags gone from
// Git that flagsync leaves alone.
func liveOnly(byRef map[splitmodel.Ref]*splitmodel.Flag, inGit map[splitmodel.Ref]bool, pruneOn bool) (prune []splitmodel.Ref, managed map[string]int, unmanaged []plan.Address) {
	refs := make([]splitmodel.Ref, 0, len(byRef))
	for ref := range byRef {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, splitmodel.CompareRefs)
	managed = map[string]int{}
	for _, ref := range refs {
		l := byRef[ref]
		owned := slices.Contains(l.Tags, splitmodel.OwnershipTag)
		retired := owned && allKilled(l)
		if owned && !retired {
			managed[ref.Workspace]++
		}
		if inGit[ref] || retired {
			continue // a managed flag killed everywhere and gone from Git is retired: not listed, not touched
		}
		if pruneOn && owned {
			prune = append(prune, ref)
			continue
		}
		unmanaged = append(unmanaged, AddressOf(ref, ""))
	}
	return prune, managed, unmanaged
}

// allKilled reports whether a live flag is killed in every environment that was read
// (and is configured in at least one).
func allKilled(f *splitmodel.Flag) bool {
	if len(f.Environments) == 0 {
		return false
	}
	for _, d := range f.Environments {
		if !d.Killed {
			return false
		}
	}
	return true
}

// requestTags are the tags a write sends: Git's, plus the ownership tag when the flag
// carries it or is created by flagsync.
func requestTags(tags []string, owned bool) []string {
	out := slices.Clone(tags)
	if owned && !slices.Contains(out, splitmodel.OwnershipTag) {
		out = append(out, splitmodel.OwnershipTag)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// --- create -----------------------------------------------------------------------

func change(action plan.Action, f *splitmodel.Flag, env string, req api.Request, fields []plan.FieldChange, reason string) plan.Change {
	return plan.Change{Action: action, Address: AddressOf(f.Ref(), env), Request: req, Fields: fields, Reason: reason}
}

func createChanges(d *splitmodel.Flag, order []string) []plan.Change {
	tags := requestTags(d.Tags, true)
	where := "in Git"
	if d.Source.File != "" {
		where += " (" + d.Source.File + ")"
	}
	envs := plan.EnvOrder(d.Environments, order)
	reason := fmt.Sprintf("%s but not in Split; one POST creates it with the %s tag", where, splitmodel.OwnershipTag)
	if len(envs) > 0 {
		reason += fmt.Sprintf(", then one POST per environment configures it (%s)", strings.Join(envs, ", "))
	}
	fields := []plan.FieldChange{{Path: "name", After: d.Name}, {Path: "trafficType", After: d.TrafficType}}
	if d.Description != "" {
		fields = append(fields, plan.FieldChange{Path: "description", After: d.Description})
	}
	fields = append(fields, plan.FieldChange{Path: "tags", After: tags})
	changes := []plan.Change{change(plan.ActionCreate, d, "", splitclient.CreateFlagRequest(d, tags), fields, reason)}
	for _, env := range envs {
		changes = append(changes, createDefinition(d, env, "the flag is new"))
	}
	return changes
}

func createDefinition(d *splitmodel.Flag, env, why string) plan.Change {
	def := splitmodel.Normalise(d.Environments[env])
	reason := fmt.Sprintf("environment %s is in Git but %s has no definition there (%s); one POST configures it", env, d.Name, why)
	if def.Killed {
		reason += " killed (should Split refuse a definition created killed, it is created, then killed with PUT …/kill)"
	}
	return change(plan.ActionCreate, d, env, splitclient.CreateDefinitionRequest(d.Workspace, d.Name, env, def),
		definitionFields("environments."+env, def), reason)
}

// definitionFields lists what a new definition sets.
func definitionFields(prefix string, d splitmodel.Definition) []plan.FieldChange {
	var fc []plan.FieldChange
	add := func(path string, v any) { fc = append(fc, plan.FieldChange{Path: prefix + "." + path, After: v}) }
	for _, t := range d.Treatments {
		add(keyPath("treatments", t.Name), t)
	}
	add("defaultTreatment", d.DefaultTreatment)
	if d.BaselineTreatment != "" {
		add("baselineTreatment", d.BaselineTreatment)
	}
	add("trafficAllocation", d.Allocation())
	if d.Killed {
		add("killed", true)
	}
	if d.ImpressionsDisabled {
		add("impressionsDisabled", true)
	}
	for i, r := range d.Rules {
		add(fmt.Sprintf("rules[%d]", i), r)
	}
	add("defaultRule", d.DefaultRule)
	return fc
}

// keyPath names a treatment: treatments[name=on].
func keyPath(list, name string) string {
	if name == "" || strings.ContainsAny(name, `[]="`) {
		name = fmt.Sprintf("%q", name)
	}
	return list + "[name=" + name + "]"
}

// --- update -----------------------------------------------------------------------

func updateChanges(d, l *splitmodel.Flag, order []string) []plan.Change {
	var creates, patches []plan.Change
	owned := slices.Contains(l.Tags, splitmodel.OwnershipTag)
	adopt := !owned && slices.Contains(d.Tags, splitmodel.OwnershipTag)
	tags := requestTags(d.Tags, owned || adopt)
	if fp := FlagPatch(l, d.Description, tags); len(fp) > 0 {
		var fields []plan.FieldChange
		var what []string
		if l.Description != d.Description {
			fields = append(fields, plan.FieldChange{Path: "description", Before: optString(l.Description), After: optString(d.Description)})
			what = append(what, "description")
		}
		if !sameSet(l.Tags, tags) {
			fields = append(fields, plan.FieldChange{Path: "tags", Before: nonNil(l.Tags), After: tags})
			what = append(what, "tags")
		}
		reason := "Git changes " + strings.Join(what, " and ")
		if adopt {
			reason += "; Git lists the " + splitmodel.OwnershipTag + " tag, so flagsync adopts the flag"
		}
		patches = append(patches, change(plan.ActionUpdate, d, "", splitclient.PatchFlagRequest(d.Workspace, d.Name, fp), fields, reason))
	}
	for _, env := range plan.EnvOrder(d.Environments, order) {
		ld, ok := l.Environments[env]
		if !ok {
			creates = append(creates, createDefinition(d, env, "the flag exists"))
			continue
		}
		want := splitmodel.Normalise(d.Environments[env])
		p := DefinitionPatch(ld, want)
		if len(p) == 0 {
			continue
		}
		fields, reasons := definitionDiff("environments."+env, splitmodel.Normalise(ld), want)
		patches = append(patches, change(plan.ActionUpdate, d, env, splitclient.PatchDefinitionRequest(d.Workspace, d.Name, env, p), fields,
			fmt.Sprintf("environment %s differs from Git: %s; one JSON Patch of %d %s", env, strings.Join(reasons, "; "), len(p), plural(len(p), "operation"))))
	}
	return append(creates, patches...)
}

// pruneChanges kill a flag removed from Git in every environment where it is not killed.
func pruneChanges(l *splitmodel.Flag, order []string) []plan.Change {
	var out []plan.Change
	for _, env := range plan.EnvOrder(l.Environments, order) {
		if l.Environments[env].Killed {
			continue
		}
		p := jsonpatch.Patch{{Op: jsonpatch.OpReplace, Path: "/killed", Value: true}}
		out = append(out, change(plan.ActionArchive, l, env, splitclient.PatchDefinitionRequest(l.Workspace, l.Name, env, p),
			[]plan.FieldChange{{Path: "environments." + env + ".killed", Before: false, After: true}},
			fmt.Sprintf("removed from Git; carries the %s tag and prune is on, so it is killed in %s (Split flags are never deleted)", splitmodel.OwnershipTag, env)))
	}
	return out
}

// definitionDiff describes, for people, how a definition changes: the fields in the file
// format's names, and short reasons.
func definitionDiff(prefix string, live, want splitmodel.Definition) ([]plan.FieldChange, []string) {
	d := defDiff{prefix: prefix}
	if live.Killed != want.Killed {
		d.set("killed", live.Killed, want.Killed)
		if want.Killed {
			d.because("killed")
		} else {
			d.because("restored (killed false)")
		}
	}
	d.treatments(live, want)
	if !reflect.DeepEqual(live.Rules, want.Rules) {
		d.fields = append(d.fields, ruleFields(prefix, live.Rules, want.Rules, &d.reasons)...)
	}
	d.settings(live, want)
	return d.fields, d.reasons
}

// defDiff collects what definitionDiff finds: the fields that change, under prefix, and
// the reasons, in the order they are found.
type defDiff struct {
	prefix  string
	fields  []plan.FieldChange
	reasons []string
}

func (d *defDiff) set(path string, before, after any) {
	d.fields = append(d.fields, plan.FieldChange{Path: d.prefix + "." + path, Before: before, After: after})
}

func (d *defDiff) because(format string, args ...any) {
	d.reasons = append(d.reasons, fmt.Sprintf(format, args...))
}

// treatments describes the treatments' changes, aligned as the patch aligns them: by
// name, and a new name where an old one was is a rename.
func (d *defDiff) treatments(live, want splitmodel.Definition) {
	partner := matchTreatments(live.Treatments, want.Treatments)
	from := make([]int, len(want.Treatments)) // the live treatment each desired one continues, or -1
	for j := range from {
		from[j] = -1
	}
	for i, j := range partner {
		if j < 0 {
			continue
		}
		from[j] = i
		if t := live.Treatments[i]; t.Name != want.Treatments[j].Name {
			d.set(keyPath("treatments", t.Name)+".name", t.Name, want.Treatments[j].Name)
			d.because("treatment %q renamed to %q", t.Name, want.Treatments[j].Name)
		}
	}
	for j, w := range want.Treatments {
		if i := from[j]; i >= 0 {
			d.treatment(live.Treatments[i], w)
			continue
		}
		d.set(keyPath("treatments", w.Name), nil, w)
		d.because("treatment %q added", w.Name)
	}
	for i, t := range live.Treatments {
		if partner[i] < 0 {
			d.set(keyPath("treatments", t.Name), t, nil)
			d.because("treatment %q removed", t.Name)
		}
	}
	if names := kept(partner, want.Treatments); !slices.Equal(names, orderOf(want.TreatmentNames(), names)) {
		d.set("treatments", live.TreatmentNames(), want.TreatmentNames())
		d.because("treatments reordered")
	}
}

// treatment describes how the live treatment old, which w continues (under w's name),
// changes.
func (d *defDiff) treatment(old, w splitmodel.Treatment) {
	at := keyPath("treatments", w.Name)
	if old.Description != w.Description {
		d.set(at+".description", optString(old.Description), optString(w.Description))
	}
	if !SameJSONText(old.Configurations, w.Configurations) {
		d.set(at+".configurations", optString(old.Configurations), optString(w.Configurations))
	}
	for _, l := range []struct {
		name      string
		old, want []string
	}{{"keys", old.Keys, w.Keys}, {"segments", old.Segments, w.Segments}} {
		if sameSet(l.old, l.want) {
			continue
		}
		d.set(at+"."+l.name, nonNil(l.old), nonNil(l.want))
		added, removed := setDiff(l.old, l.want)
		var parts []string
		for _, s := range added {
			parts = append(parts, "+"+s)
		}
		for _, s := range removed {
			parts = append(parts, "-"+s)
		}
		d.because("%s of treatment %q: %s", l.name, w.Name, strings.Join(parts, ", "))
	}
	if old.Description != w.Description || !SameJSONText(old.Configurations, w.Configurations) {
		d.because("treatment %q changed", w.Name)
	}
}

// settings describes the changes of the default rule and the definition's single
// values.
func (d *defDiff) settings(live, want splitmodel.Definition) {
	if !reflect.DeepEqual(live.DefaultRule, want.DefaultRule) {
		d.set("defaultRule", live.DefaultRule, want.DefaultRule)
		d.because("default rule changed")
	}
	if live.DefaultTreatment != want.DefaultTreatment {
		d.set("defaultTreatment", live.DefaultTreatment, want.DefaultTreatment)
		d.because("default treatment %s → %s", live.DefaultTreatment, want.DefaultTreatment)
	}
	if live.BaselineTreatment != want.BaselineTreatment {
		d.set("baselineTreatment", optString(live.BaselineTreatment), optString(want.BaselineTreatment))
		d.because("baseline treatment changed")
	}
	if live.Allocation() != want.Allocation() {
		d.set("trafficAllocation", live.Allocation(), want.Allocation())
		d.because("traffic allocation %d → %d", live.Allocation(), want.Allocation())
	}
	if live.ImpressionsDisabled != want.ImpressionsDisabled {
		d.set("impressionsDisabled", live.ImpressionsDisabled, want.ImpressionsDisabled)
		if want.ImpressionsDisabled {
			d.because("impressions disabled")
		} else {
			d.because("impressions enabled (impressionsDisabled false)")
		}
	}
}

// kept returns the names of the live treatments that persist (renamed ones by their new
// name), in live order.
func kept(partner []int, want []splitmodel.Treatment) []string {
	var out []string
	for _, j := range partner {
		if j >= 0 {
			out = append(out, want[j].Name)
		}
	}
	return out
}

// orderOf returns the names of subset in the order they have in order.
func orderOf(order, subset []string) []string {
	var out []string
	for _, n := range order {
		if slices.Contains(subset, n) {
			out = append(out, n)
		}
	}
	return out
}

// ruleFields describes rule changes the way the patch makes them: rules that stay are a
// longest common subsequence; between them, rules are changed in place pairwise, and the
// rest removed or added.
func ruleFields(prefix string, live, want []splitmodel.Rule, reasons *[]string) []plan.FieldChange {
	var fc []plan.FieldChange
	at := func(i int) string { return fmt.Sprintf("%s.rules[%d]", prefix, i) }
	anchors := append(lcs(len(live), len(want), func(i, j int) bool { return reflect.DeepEqual(live[i], want[j]) }), [2]int{len(live), len(want)})
	i, j := 0, 0
	for _, a := range anchors {
		n := min(a[0]-i, a[1]-j)
		for k := range n {
			fc = append(fc, plan.FieldChange{Path: at(j + k), Before: live[i+k], After: want[j+k]})
			if i+k == j+k {
				*reasons = append(*reasons, fmt.Sprintf("rule %d changed", j+k))
			} else {
				*reasons = append(*reasons, fmt.Sprintf("rule %d changed (rule %d in Split)", j+k, i+k))
			}
		}
		for k := i + n; k < a[0]; k++ {
			fc = append(fc, plan.FieldChange{Path: fmt.Sprintf("%s.rules[%d]", prefix, k), Before: live[k]})
			*reasons = append(*reasons, fmt.Sprintf("rule %d of Split removed", k))
		}
		for k := j + n; k < a[1]; k++ {
			fc = append(fc, plan.FieldChange{Path: at(k), After: want[k]})
			*reasons = append(*reasons, fmt.Sprintf("rule %d added", k))
		}
		i, j = a[0]+1, a[1]+1
	}
	return fc
}

func setDiff(old, want []string) (added, removed []string) {
	for _, s := range want {
		if !slices.Contains(old, s) && !slices.Contains(added, s) {
			added = append(added, s)
		}
	}
	for _, s := range old {
		if !slices.Contains(want, s) && !slices.Contains(removed, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
