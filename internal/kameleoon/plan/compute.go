package kplan

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
)

// DefaultEnvironmentOrder is the apply order of environments when flagsync.yaml lists
// none. Environments not listed come after these, alphabetically.
var DefaultEnvironmentOrder = []string{"development", "staging", "production"}

// Options tune Compute. The zero value plans without pruning, in DefaultEnvironmentOrder.
type Options struct {
	// Prune archives live flags that are gone from Git and carry flag.OwnershipTag.
	Prune bool
	// EnvironmentOrder is the order environment patches are applied in (flagsync.yaml's
	// environments). Keys not listed follow, alphabetically. Empty means
	// DefaultEnvironmentOrder.
	EnvironmentOrder []string
	// MaxArchive is the most flags pruning may archive in one plan; 0 means
	// DefaultMaxArchive, a negative value means no limit on the count.
	MaxArchive int
	// AllowMassArchive lifts both mass-archive limits.
	AllowMassArchive bool
}

// OptionsFor returns the options a repository's flagsync.yaml asks for.
func OptionsFor(s kmodel.Settings) Options {
	return Options{Prune: s.Prune, EnvironmentOrder: slices.Clone(s.Environments)}
}

// Service is the name plans and renderers give Kameleoon.
const Service = "Kameleoon"

// AddressOf is the neutral address of a Kameleoon flag (the site code is its scope, the
// feature key its key) and, when env is set, of one of its environments.
func AddressOf(ref kmodel.Ref, env string) plan.Address {
	return plan.Address{Service: Service, Scope: ref.SiteCode, Key: ref.FeatureKey, Environment: env}
}

// addressesOf returns the flags' addresses, in order.
func addressesOf(refs []kmodel.Ref) []plan.Address {
	out := make([]plan.Address, len(refs))
	for i, r := range refs {
		out[i] = AddressOf(r, "")
	}
	return out
}

// Compute returns the changes that bring live in line with desired. It is pure: the
// same arguments give the same plan, whatever the order of live. The error is nil or a
// *MassArchiveError, returned with a usable plan that leaves the refused archives out.
func Compute(desired *kmodel.Desired, live []kmodel.Flag, opts Options) (plan.Plan, error) {
	order := opts.EnvironmentOrder
	if len(order) == 0 {
		order = DefaultEnvironmentOrder
	}
	p := plan.Plan{Changes: []plan.Change{}, Unmanaged: []plan.Address{}, Service: Service}
	var want []*kmodel.Flag
	if desired != nil {
		p.Revision = desired.Revision
		for i := range desired.Flags {
			want = append(want, &desired.Flags[i])
		}
	}
	slices.SortStableFunc(want, func(a, b *kmodel.Flag) int { return kmodel.CompareRefs(a.Ref(), b.Ref()) })

	byRef := liveByRef(live)
	var groups []flagChanges
	var settingsIgnores []kmodel.IgnorePath
	if desired != nil {
		settingsIgnores = parseIgnores(desired.Settings.Ignore)
	}
	inGit := make(map[kmodel.Ref]bool, len(want))
	for i, d := range want {
		ref := d.Ref()
		if inGit[ref] {
			continue // duplicates are rejected by the loader; keep the first
		}
		inGit[ref] = true
		var cs []plan.Change
		if l, ok := byRef[ref]; ok {
			d := want[i]
			if !(d.Archived && l.Archived) { // an archived flag is frozen: nothing to say
				var notes []plan.Note
				d, l, notes = own(d, l, ignoreRules(settingsIgnores, d), order)
				p.Notes = append(p.Notes, notes...)
			}
			var blocked []plan.Blocked
			cs, blocked = updateChanges(d, l, order)
			p.Blocked = append(p.Blocked, blocked...)
		} else {
			cs = createChanges(want[i], order)
		}
		if len(cs) > 0 {
			groups = append(groups, flagChanges{ref, cs})
		}
	}

	prune, managed, unmanaged := retired(byRef, inGit, opts.Prune)
	p.Unmanaged = append(p.Unmanaged, unmanaged...)
	var err error
	if limit := plan.MassArchiveLimit(addressesOf(prune), managed, opts.MaxArchive, opts.AllowMassArchive, "site"); limit != "" {
		mae := &plan.MassArchiveError{Flags: addressesOf(prune), Limit: limit}
		for _, ref := range prune {
			p.Blocked = append(p.Blocked, plan.Blocked{Address: AddressOf(ref, ""),
				Reason: "removed from Git; archiving refused by the mass-archive guard (" + limit + ")"})
		}
		err = mae
	} else {
		for _, ref := range prune {
			groups = append(groups, flagChanges{ref, []plan.Change{{
				Action: plan.ActionArchive, Address: AddressOf(ref, ""),
				Request: kclient.ArchiveFlagRequest(ref.SiteCode, ref.FeatureKey, true),
				Fields:  []plan.FieldChange{{Path: "archived", Before: false, After: true}},
				Reason:  "removed from Git; carries the " + kmodel.OwnershipTag + " tag and prune is on, so it is archived (never deleted)",
			}}})
		}
	}
	finish(&p, groups)
	return p, err
}

// flagChanges are one flag's changes, in order.
type flagChanges struct {
	ref     kmodel.Ref
	changes []plan.Change
}

// liveByRef indexes the live flags: one per ref; should the API ever list one twice,
// the lowest id wins.
func liveByRef(live []kmodel.Flag) map[kmodel.Ref]*kmodel.Flag {
	byRef := make(map[kmodel.Ref]*kmodel.Flag, len(live))
	for i := range live {
		l := &live[i]
		if prev, ok := byRef[l.Ref()]; !ok || l.ID < prev.ID {
			byRef[l.Ref()] = l
		}
	}
	return byRef
}

// retired sorts out the live flags Git does not have: the managed ones pruning
// archives (with prune), the managed flags per site (for the mass-archive guard), and
// the unmanaged ones. Archived flags gone from Git are retired: neither.
func retired(byRef map[kmodel.Ref]*kmodel.Flag, inGit map[kmodel.Ref]bool, prune bool) (pruned []kmodel.Ref, managed map[string]int, unmanaged []plan.Address) {
	refs := make([]kmodel.Ref, 0, len(byRef))
	for ref := range byRef {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, kmodel.CompareRefs)
	managed = map[string]int{} // per site: live, not archived, carrying the ownership tag
	for _, ref := range refs {
		l := byRef[ref]
		owned := hasTag(l.Tags, kmodel.OwnershipTag)
		if owned && !l.Archived {
			managed[ref.SiteCode]++
		}
		if inGit[ref] || l.Archived {
			continue
		}
		if prune && owned {
			pruned = append(pruned, ref)
			continue
		}
		unmanaged = append(unmanaged, AddressOf(ref, ""))
	}
	return pruned, managed, unmanaged
}

// finish puts the flags' changes into the plan in the flags' order, numbered, with
// typed nils made untyped (so JSON and equality read them as null).
func finish(p *plan.Plan, groups []flagChanges) {
	for i := range p.Notes {
		p.Notes[i].Git, p.Notes[i].Live = untypedNil(p.Notes[i].Git), untypedNil(p.Notes[i].Live)
	}
	slices.SortStableFunc(groups, func(a, b flagChanges) int { return kmodel.CompareRefs(a.ref, b.ref) })
	for _, g := range groups {
		for _, c := range g.changes {
			for i := range c.Fields {
				c.Fields[i].Before = untypedNil(c.Fields[i].Before)
				c.Fields[i].After = untypedNil(c.Fields[i].After)
			}
			c.Order = len(p.Changes) + 1
			p.Changes = append(p.Changes, c)
		}
	}
}

// requestTags are the tags a write sends: Git's tags, plus the ownership tag when the
// flag carries it (or is being created by flagsync).
func requestTags(tags []string, owned bool) []string {
	out := slices.Clone(tags)
	if owned {
		out = append(out, kmodel.OwnershipTag)
	}
	return out
}

// --- create -----------------------------------------------------------------------

func createChanges(d *kmodel.Flag, order []string) []plan.Change {
	want := normalise(d)
	want.Environments = normaliseEnvs(d.Environments)
	want.Tags = requestTags(want.Tags, true)
	want.Archived = false
	ref := want.Ref()
	reason := "in Git but not in Kameleoon"
	if d.Source.File != "" {
		reason = "in Git (" + d.Source.File + ") but not in Kameleoon"
	}
	reason += fmt.Sprintf("; one POST creates it with its %d %s and the %s tag",
		len(want.Environments), plural(len(want.Environments), "environment"), kmodel.OwnershipTag)
	changes := []plan.Change{{
		Action: plan.ActionCreate, Address: AddressOf(ref, ""),
		Request: kclient.CreateFlagRequest(&want, order),
		Fields:  createFields(&want, order),
		Reason:  reason,
	}}
	if d.Archived {
		// Git keeps archived flags as a record; the flag is created as written and
		// archived straight after, so Kameleoon holds the same record.
		changes = append(changes, plan.Change{
			Action: plan.ActionArchive, Address: AddressOf(ref, ""),
			Request: kclient.ArchiveFlagRequest(ref.SiteCode, ref.FeatureKey, true),
			Fields:  []plan.FieldChange{{Path: "archived", Before: false, After: true}},
			Reason:  "archived: true in Git; archived right after it is created",
		})
	}
	return changes
}

// createFields lists what a create sets, in file order, each with a nil Before.
func createFields(f *kmodel.Flag, order []string) []plan.FieldChange {
	var fc []plan.FieldChange
	add := func(path string, v any) { fc = append(fc, plan.FieldChange{Path: path, After: v}) }
	add("name", f.Name)
	if f.Description != "" {
		add("description", f.Description)
	}
	add("tags", f.Tags)
	add("attributionWindow", f.AttributionWindow)
	add("bucketingKey", f.BucketingKey)
	if f.PrimaryGoalID != 0 {
		add("primaryGoalId", f.PrimaryGoalID)
	}
	if len(f.SecondaryGoalIDs) > 0 {
		add("secondaryGoalIds", f.SecondaryGoalIDs)
	}
	for _, v := range f.Variables {
		add(keyPath("variables", "key", v.Key), v)
	}
	for _, v := range f.Variations {
		add(keyPath("variations", "key", v.Key), v)
	}
	for _, k := range plan.EnvOrder(f.Environments, order) {
		fc = append(fc, envAddedFields("environments."+k, f.Environments[k])...)
	}
	return fc
}

// envAddedFields lists every field of an environment that is new to Kameleoon.
func envAddedFields(prefix string, e kmodel.Environment) []plan.FieldChange {
	fc := []plan.FieldChange{{Path: prefix + ".featureEnabled", After: e.FeatureEnabled}}
	if e.DefaultVariationKey != "" {
		fc = append(fc, plan.FieldChange{Path: prefix + ".defaultVariationKey", After: e.DefaultVariationKey})
	}
	for _, r := range e.RolloutRules {
		fc = append(fc, plan.FieldChange{Path: keyPath(prefix+".rolloutRules", "name", r.Name), After: r})
	}
	if e.Integrations != nil {
		fc = append(fc, plan.FieldChange{Path: prefix + ".integrations", After: e.Integrations})
	}
	return fc
}

// --- update -----------------------------------------------------------------------

// updateChanges returns the changes that bring live flag l in line with d, and the
// changes it refuses to make (variations Git removes that an environment Git does not
// manage still uses).
func updateChanges(d, l *kmodel.Flag, order []string) ([]plan.Change, []plan.Blocked) {
	if d.Archived && l.Archived {
		// Archived on both sides: the flag is frozen. Its content is reconciled when
		// Git restores it.
		return nil, nil
	}
	var u flagUpdate
	u.init(d, l)
	var changes []plan.Change
	if c, ok := u.additions(); ok {
		changes = append(changes, c)
	}
	changes = append(changes, u.environments(order)...)
	if c, ok := u.removals(); ok {
		changes = append(changes, c)
	}
	if d.Archived && !l.Archived {
		changes = append(changes, u.change(plan.ActionArchive, "", kclient.ArchiveFlagRequest(d.SiteCode, d.FeatureKey, true),
			[]plan.FieldChange{{Path: "archived", Before: false, After: true}}, "archived: true in Git"))
	}
	return changes, u.blocked
}

// flagUpdate compares one flag in Git (d, normalised as want) with its live form (l,
// normalised as have).
type flagUpdate struct {
	d, l       *kmodel.Flag
	want, have kmodel.Flag
	owned      bool // the live flag carries the ownership tag, or Git adopts it
	adopt      bool // Git lists the ownership tag and the live flag lacks it
	vars       keyedDiff[kmodel.Variable]
	variations keyedDiff[kmodel.Variation]

	// kept are the variations Git removes that an environment Git does not manage still
	// uses, in live order: they stay, and blocked says why.
	kept    []string
	blocked []plan.Blocked
}

func (u *flagUpdate) init(d, l *kmodel.Flag) {
	*u = flagUpdate{d: d, l: l, want: normalise(d), have: normalise(l), owned: hasTag(l.Tags, kmodel.OwnershipTag)}
	// Listing the ownership tag in Git adopts a flag created elsewhere: the tag is
	// written once, and from then on pruning may archive the flag.
	u.adopt = !u.owned && hasTag(d.Tags, kmodel.OwnershipTag)
	u.owned = u.owned || u.adopt

	// Variable types are needed only when overrides differ as strings.
	wantVars, haveVars := u.want.Variables, u.have.Variables
	var wantTypes, haveTypes map[string]string
	types := func() (map[string]string, map[string]string) {
		if wantTypes == nil {
			wantTypes, haveTypes = variableTypes(wantVars), variableTypes(haveVars)
		}
		return wantTypes, haveTypes
	}
	u.vars = diffKeyed("variables", "variable", u.want.Variables, u.have.Variables,
		func(v *kmodel.Variable) string { return v.Key }, variableEqual, variableFields)
	u.variations = diffKeyed("variations", "variation", u.want.Variations, u.have.Variations,
		func(v *kmodel.Variation) string { return v.Key },
		func(a, b *kmodel.Variation) bool {
			if a.Key == b.Key && a.Name == b.Name && slices.Equal(a.Variables, b.Variables) {
				return true
			}
			wt, ht := types()
			return variationEqual(a, b, wt, ht)
		},
		func(prefix string, after, before *kmodel.Variation) []plan.FieldChange {
			wt, ht := types()
			return variationFields(prefix, after, before, wt, ht)
		})
	u.keepServedVariations()
	u.dropUnfitOverrides()
}

// keepServedVariations keeps the variations Git removes that a live environment the flag
// file does not list still uses (as its default variation, or in a rule), or that an
// environment it lists still uses in a field Git does not own (an ignore rule keeps
// Kameleoon's value there): Kameleoon refuses a flag patch that removes a variation in
// use, which would take the flag's other removals down with it on every sync. Each kept
// variation is a refused change.
func (u *flagUpdate) keepServedVariations() {
	d := &u.variations
	if len(d.removed) == 0 {
		return
	}
	var unmanaged []string
	for k := range u.l.Environments {
		if _, ok := u.d.Environments[k]; !ok {
			unmanaged = append(unmanaged, k)
		}
	}
	slices.Sort(unmanaged)
	managed := u.d.EnvironmentKeys()
	var removed []string
	var last []plan.FieldChange
	for i, key := range d.removed {
		var envs, uses, owned, ownedUses []string
		for _, k := range unmanaged {
			if use := variationUses(u.l.Environments[k], key); len(use) > 0 {
				envs = append(envs, k)
				uses = append(uses, k+" ("+strings.Join(use, ", ")+")")
			}
		}
		// Git's own environments never use a variation Git removes (the loader checks);
		// one that does holds a value an ignore rule keeps from Kameleoon.
		for _, k := range managed {
			if use := variationUses(u.d.Environments[k], key); len(use) > 0 {
				owned = append(owned, k)
				ownedUses = append(ownedUses, k+" ("+strings.Join(use, ", ")+")")
			}
		}
		if len(envs)+len(owned) == 0 {
			removed = append(removed, key)
			last = append(last, d.last[i])
			continue
		}
		u.kept = append(u.kept, key)
		var reason string
		if len(owned) == 0 {
			reason = fmt.Sprintf("variation %q is removed from Git but still used by %s %s, which the flag file does not list; "+
				"the variation is kept: list %s %s in the file (and stop using the variation there), or change %s in Kameleoon first",
				key, plural(len(envs), "environment"), andList(uses), plural(len(envs), "environment"), andList(envs), pronoun(len(envs)))
		} else {
			var where, fix []string
			if len(envs) > 0 {
				where = append(where, fmt.Sprintf("by %s %s, which the flag file does not list", plural(len(envs), "environment"), andList(uses)))
				fix = append(fix, fmt.Sprintf("list %s %s in the file (and stop using the variation there)", plural(len(envs), "environment"), andList(envs)))
			}
			where = append(where, fmt.Sprintf("by %s %s in fields an ignore rule leaves to Kameleoon", plural(len(owned), "environment"), andList(ownedUses)))
			fix = append(fix, "stop ignoring those fields")
			reason = fmt.Sprintf("variation %q is removed from Git but still used %s; the variation is kept: %s, or change %s in Kameleoon first",
				key, strings.Join(where, " and "), strings.Join(fix, ", "), pronoun(len(envs)+len(owned)))
			envs = append(envs, owned...)
			slices.Sort(envs)
		}
		u.blocked = append(u.blocked, plan.Blocked{
			Address: AddressOf(u.d.Ref(), ""), Kind: plan.BlockedVariationInUse,
			Variation: key, Environments: envs, Reason: reason,
		})
	}
	d.removed, d.last = removed, last
}

// variationUses says where environment e uses variation key: "defaultVariationKey" and
// `rule "name"` for each rule that serves it (variationKey, controlVariationKey or a
// traffic allocation).
func variationUses(e kmodel.Environment, key string) []string {
	var uses []string
	if e.DefaultVariationKey == key {
		uses = append(uses, "defaultVariationKey")
	}
	for _, r := range e.RolloutRules {
		if r.VariationKey == key || r.ControlVariationKey == key ||
			slices.ContainsFunc(r.TrafficAllocations, func(a kmodel.TrafficAllocation) bool { return a.VariationKey == key }) {
			uses = append(uses, fmt.Sprintf("rule %q", r.Name))
		}
	}
	return uses
}

// dropUnfitOverrides leaves out, of the variations only live has, the overrides that no
// longer fit Git's variables (the variable's type changes, or an ENUM value is no longer
// allowed). Those variations stay in the first flag patch until the removal patch (or
// for good, when an environment Git does not manage keeps them), but Kameleoon checks
// every override against the variables the patch sends and would refuse the whole
// patch: the unfit override goes in the first patch. It runs after
// keepServedVariations, which moves kept variations out of d.removed; the variations
// only live has are all of d.union after Git's.
func (u *flagUpdate) dropUnfitOverrides() {
	d := &u.variations
	if len(d.removed) == 0 && len(u.kept) == 0 {
		return
	}
	want := make(map[string]*kmodel.Variable, len(u.want.Variables))
	for i := range u.want.Variables {
		want[u.want.Variables[i].Key] = &u.want.Variables[i]
	}
	haveTypes := variableTypes(u.have.Variables)
	fits := func(o kmodel.VariationVariable) bool {
		w, ok := want[o.Key]
		if !ok {
			return true // a removed variable: the union still sends it as it was
		}
		if w.Type != haveTypes[o.Key] {
			return false
		}
		return w.Type != kmodel.TypeEnum || len(w.AllowedValues) == 0 || slices.Contains(w.AllowedValues, o.Value)
	}
	for i := len(u.want.Variations); i < len(d.union); i++ {
		v := &d.union[i]
		if !slices.ContainsFunc(v.Variables, func(o kmodel.VariationVariable) bool { return !fits(o) }) {
			continue
		}
		var dropped []string
		var vars []kmodel.VariationVariable
		for _, o := range v.Variables {
			if fits(o) {
				vars = append(vars, o)
				continue
			}
			dropped = append(dropped, o.Key)
			d.first = append(d.first, plan.FieldChange{Path: keyPath(keyPath("variations", "key", v.Key)+".variables", "key", o.Key), Before: o.Value})
		}
		v.Variables = vars
		d.patch = true
		until := "until the variation is removed"
		if slices.Contains(u.kept, v.Key) {
			until = "and keeps the variation (an environment the flag file does not list still uses it)"
		}
		d.reasons = append(d.reasons, fmt.Sprintf("drops the override of %s %s from variation %q, which no longer fits Git's variables, %s",
			plural(len(dropped), "variable"), quoteList(dropped), v.Key, until))
	}
}

func (u *flagUpdate) change(action plan.Action, env string, req api.Request, fields []plan.FieldChange, reason string) plan.Change {
	return plan.Change{Action: action, Address: AddressOf(u.d.Ref(), env), Request: req, Fields: fields, Reason: reason}
}

// patchBase is Git's flag as a flag patch sends it: with the ownership tag when the
// flag has it, and not archived (archiving is a change of its own).
func (u *flagUpdate) patchBase() kmodel.Flag {
	f := u.want
	f.Tags = requestTags(u.want.Tags, u.owned)
	f.Archived = false
	return f
}

// additions is the first flag patch: every changed scalar or set field, a restore from
// the archive, and variables and variations as live ∪ Git, so that the environment
// patches that follow may use new ones.
func (u *flagUpdate) additions() (plan.Change, bool) {
	want, have := &u.want, &u.have
	var names []string
	var fields []plan.FieldChange
	set := func(name string, before, after any) {
		names = append(names, name)
		fields = append(fields, plan.FieldChange{Path: name, Before: before, After: after})
	}
	if want.Name != have.Name {
		set("name", have.Name, want.Name)
	}
	if want.Description != have.Description {
		set("description", optString(have.Description), optString(want.Description))
	}
	switch {
	case u.adopt:
		set("tags", nonNilStrings(have.Tags), requestTags(want.Tags, true))
	case !stringsEqual(want.Tags, have.Tags):
		set("tags", nonNilStrings(have.Tags), nonNilStrings(want.Tags))
	}
	if want.AttributionWindow != have.AttributionWindow {
		set("attributionWindow", have.AttributionWindow, want.AttributionWindow)
	}
	if !bucketingEqual(want.BucketingKey, have.BucketingKey) {
		set("bucketingKey", have.BucketingKey, want.BucketingKey)
	}
	if want.PrimaryGoalID != have.PrimaryGoalID {
		set("primaryGoalId", optInt(have.PrimaryGoalID), optInt(want.PrimaryGoalID))
	}
	if !slices.Equal(want.SecondaryGoalIDs, have.SecondaryGoalIDs) {
		set("secondaryGoalIds", nonNilInts(have.SecondaryGoalIDs), nonNilInts(want.SecondaryGoalIDs))
	}
	var reasons []string
	if len(names) > 0 {
		reasons = append(reasons, "Git changes "+strings.Join(names, ", "))
	}
	if u.adopt {
		reasons = append(reasons, "Git lists the "+kmodel.OwnershipTag+" tag, so flagsync adopts the flag")
	}
	if u.l.Archived && !u.d.Archived {
		names = append(names, "archived")
		fields = append(fields, plan.FieldChange{Path: "archived", Before: true, After: false})
		reasons = append(reasons, "restores the archived flag (archived is false in Git)")
	}

	after := u.patchBase()
	if u.vars.patch {
		names = append(names, "variables")
		fields = append(fields, u.vars.first...)
		reasons = append(reasons, u.vars.reasons...)
		after.Variables = u.vars.union
	}
	if u.variations.patch {
		names = append(names, "variations")
		fields = append(fields, u.variations.first...)
		reasons = append(reasons, u.variations.reasons...)
		after.Variations = u.variations.union
	}
	if len(u.vars.removed)+len(u.variations.removed) > 0 && (u.vars.patch || u.variations.patch) {
		reasons = append(reasons, "removals wait for the last patch")
	}
	if len(names) == 0 {
		return plan.Change{}, false
	}
	return u.change(plan.ActionUpdate, "", kclient.UpdateFlagRequest(&after, names), fields, sentence(reasons)), true
}

// environments are the environment patches, in the configured order. Environments
// only in Kameleoon are not managed and are left alone.
func (u *flagUpdate) environments(order []string) []plan.Change {
	var changes []plan.Change
	site, key := u.d.SiteCode, u.d.FeatureKey
	for _, k := range plan.EnvOrder(u.d.Environments, order) {
		prefix := "environments." + k
		wantEnv := normaliseEnv(u.d.Environments[k])
		liveEnv, ok := u.l.Environments[k]
		if !ok {
			changes = append(changes, u.change(plan.ActionUpdate, k,
				kclient.PatchEnvironmentRequest(site, key, u.d.Name, k, wantEnv, kclient.EnvironmentPatchFields),
				envAddedFields(prefix, wantEnv),
				"environment "+k+" is in Git but not in Kameleoon; the patch sends its whole configuration"))
			continue
		}
		haveEnv := normaliseEnv(writtenStates(liveEnv))
		if envEqual(&wantEnv, &haveEnv) {
			continue
		}
		ed := diffEnv(prefix, wantEnv, &haveEnv)
		if len(ed.names) == 0 {
			continue
		}
		changes = append(changes, u.change(plan.ActionUpdate, k,
			kclient.PatchEnvironmentRequest(site, key, u.d.Name, k, ed.after, ed.names),
			ed.fields, "environment "+k+" differs from Git: "+strings.Join(ed.reasons, "; ")))
	}
	return changes
}

// writtenStates returns live environment e with every rule's State set to its written
// state as best known (flag.Rule.WrittenState): a read shape that carries only `status`
// leaves State empty, which normalisation would read as ACTIVE.
func writtenStates(e kmodel.Environment) kmodel.Environment {
	if !slices.ContainsFunc(e.RolloutRules, func(r kmodel.Rule) bool { return r.State == "" }) {
		return e
	}
	rules := slices.Clone(e.RolloutRules)
	for i := range rules {
		rules[i].State = rules[i].WrittenState()
	}
	e.RolloutRules = rules
	return e
}

// removals is the last flag patch, with Git's final variables and variations, once no
// environment uses what goes.
func (u *flagUpdate) removals() (plan.Change, bool) {
	if len(u.vars.removed)+len(u.variations.removed) == 0 {
		return plan.Change{}, false
	}
	final := u.patchBase()
	keptFields, keptReasons := u.keptVariations(&final)
	var names, parts []string
	var fields []plan.FieldChange
	if len(u.vars.removed) > 0 {
		names = append(names, "variables")
		fields = append(fields, u.vars.last...)
		parts = append(parts, plural(len(u.vars.removed), "variable")+" "+quoteList(u.vars.removed))
	}
	if len(u.variations.removed) > 0 || len(keptFields) > 0 {
		names = append(names, "variations")
		fields = append(fields, u.variations.last...)
		fields = append(fields, keptFields...)
	}
	if len(u.variations.removed) > 0 {
		parts = append(parts, plural(len(u.variations.removed), "variation")+" "+quoteList(u.variations.removed))
	}
	reasons := []string{"removes " + strings.Join(parts, " and ") + ", after the environment patches stop using them"}
	if len(u.kept) > 0 {
		reasons = append(reasons, fmt.Sprintf("keeps %s %s, which an environment the flag file does not list still uses (see the refused changes)",
			plural(len(u.kept), "variation"), quoteList(u.kept)))
	}
	reasons = append(reasons, keptReasons...)
	return u.change(plan.ActionUpdate, "", kclient.UpdateFlagRequest(&final, names), fields, sentence(reasons)), true
}

// keptVariations appends the kept variations to final's, as the first patch leaves them
// and without their overrides of variables final no longer has (Kameleoon refuses an
// override of a variable the flag does not define). It returns the overrides it drops
// and why.
func (u *flagUpdate) keptVariations(final *kmodel.Flag) ([]plan.FieldChange, []string) {
	if len(u.kept) == 0 {
		return nil, nil
	}
	defined := make(map[string]bool, len(final.Variables))
	for _, v := range final.Variables {
		defined[v.Key] = true
	}
	var fields []plan.FieldChange
	var reasons []string
	final.Variations = slices.Clone(final.Variations)
	for _, v := range u.variations.union[len(u.want.Variations):] {
		if !slices.Contains(u.kept, v.Key) {
			continue
		}
		var vars []kmodel.VariationVariable
		var dropped []string
		for _, o := range v.Variables {
			if defined[o.Key] {
				vars = append(vars, o)
				continue
			}
			dropped = append(dropped, o.Key)
			fields = append(fields, plan.FieldChange{Path: keyPath(keyPath("variations", "key", v.Key)+".variables", "key", o.Key), Before: o.Value})
		}
		v.Variables = vars
		final.Variations = append(final.Variations, v)
		if len(dropped) > 0 {
			reasons = append(reasons, fmt.Sprintf("drops the override of removed %s %s from kept variation %q",
				plural(len(dropped), "variable"), quoteList(dropped), v.Key))
		}
	}
	return fields, reasons
}

// keyedDiff is the difference of two keyed, ordered lists (variables, variations).
type keyedDiff[T any] struct {
	patch   bool               // the first flag patch must send union
	union   []T                // Git's items in Git's order, then items only live has
	first   []plan.FieldChange // additions, changes and reordering
	last    []plan.FieldChange // removals
	removed []string           // keys only live has
	reasons []string
}

func diffKeyed[T any](path, noun string, want, have []T, key func(*T) string, eq func(a, b *T) bool,
	fieldsOf func(prefix string, after, before *T) []plan.FieldChange) keyedDiff[T] {
	var d keyedDiff[T]
	if len(want) == len(have) {
		same := true
		for i := range want {
			if !eq(&want[i], &have[i]) {
				same = false
				break
			}
		}
		if same {
			return d
		}
	}
	haveAt := make(map[string]int, len(have))
	for i := range have {
		haveAt[key(&have[i])] = i
	}
	inWant := make(map[string]bool, len(want))
	var added, changed []string
	var common []int // have indexes of common items, in Git's order
	for i := range want {
		k := key(&want[i])
		inWant[k] = true
		j, ok := haveAt[k]
		if !ok {
			added = append(added, k)
			d.first = append(d.first, plan.FieldChange{Path: keyPath(path, "key", k), After: want[i]})
			continue
		}
		common = append(common, j)
		if !eq(&want[i], &have[j]) {
			changed = append(changed, k)
			d.first = append(d.first, fieldsOf(keyPath(path, "key", k), &want[i], &have[j])...)
		}
	}
	reordered := !slices.IsSorted(common)
	if reordered {
		d.first = append(d.first, plan.FieldChange{Path: path, Before: keysOf(have, key), After: keysOf(want, key)})
	}
	d.union = slices.Clone(want)
	for i := range have {
		k := key(&have[i])
		if !inWant[k] {
			d.removed = append(d.removed, k)
			d.last = append(d.last, plan.FieldChange{Path: keyPath(path, "key", k), Before: have[i]})
			d.union = append(d.union, have[i])
		}
	}
	d.patch = len(d.first) > 0
	if len(added) > 0 {
		d.reasons = append(d.reasons, "adds "+plural(len(added), noun)+" "+quoteList(added))
	}
	if len(changed) > 0 {
		d.reasons = append(d.reasons, "changes "+plural(len(changed), noun)+" "+quoteList(changed))
	}
	if reordered {
		d.reasons = append(d.reasons, "reorders "+noun+"s")
	}
	return d
}

func keysOf[T any](items []T, key func(*T) string) []string {
	out := make([]string, len(items))
	for i := range items {
		out[i] = key(&items[i])
	}
	return out
}

func variableFields(prefix string, after, before *kmodel.Variable) []plan.FieldChange {
	var fc []plan.FieldChange
	if after.Type != before.Type {
		fc = append(fc, plan.FieldChange{Path: prefix + ".type", Before: before.Type, After: after.Type})
	}
	if after.Type != before.Type || !valueEqual(after.Type, after.Value, before.Value) {
		fc = append(fc, plan.FieldChange{Path: prefix + ".value", Before: before.Value, After: after.Value})
	}
	if !setEqual(after.AllowedValues, before.AllowedValues) {
		fc = append(fc, plan.FieldChange{Path: prefix + ".allowedValues", Before: nonNilStrings(stringSet(before.AllowedValues)), After: nonNilStrings(stringSet(after.AllowedValues))})
	}
	return fc
}

func variationFields(prefix string, after, before *kmodel.Variation, afterTypes, beforeTypes map[string]string) []plan.FieldChange {
	var fc []plan.FieldChange
	if after.Name != before.Name {
		fc = append(fc, plan.FieldChange{Path: prefix + ".name", Before: optString(before.Name), After: optString(after.Name)})
	}
	// Overrides are sorted by key on both sides: merge the two lists.
	a, b := after.Variables, before.Variables
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].Key < b[0].Key):
			fc = append(fc, plan.FieldChange{Path: keyPath(prefix+".variables", "key", a[0].Key), After: a[0].Value})
			a = a[1:]
		case len(a) == 0 || b[0].Key < a[0].Key:
			fc = append(fc, plan.FieldChange{Path: keyPath(prefix+".variables", "key", b[0].Key), Before: b[0].Value})
			b = b[1:]
		default:
			ta, tb := afterTypes[a[0].Key], beforeTypes[b[0].Key]
			if ta != tb {
				ta = ""
			}
			if !valueEqual(ta, a[0].Value, b[0].Value) {
				fc = append(fc, plan.FieldChange{Path: keyPath(prefix+".variables", "key", a[0].Key), Before: b[0].Value, After: a[0].Value})
			}
			a, b = a[1:], b[1:]
		}
	}
	return fc
}

// envDiff is what one environment patch sends and why.
type envDiff struct {
	names   []string // environment patch fields
	after   kmodel.Environment
	fields  []plan.FieldChange
	reasons []string
}

func diffEnv(prefix string, want kmodel.Environment, have *kmodel.Environment) envDiff {
	d := envDiff{after: want}
	if want.FeatureEnabled != have.FeatureEnabled {
		d.names = append(d.names, "featureEnabled")
		d.fields = append(d.fields, plan.FieldChange{Path: prefix + ".featureEnabled", Before: have.FeatureEnabled, After: want.FeatureEnabled})
		d.reasons = append(d.reasons, fmt.Sprintf("featureEnabled %t → %t", have.FeatureEnabled, want.FeatureEnabled))
	}
	if want.DefaultVariationKey != have.DefaultVariationKey {
		d.names = append(d.names, "defaultVariationKey")
		d.fields = append(d.fields, plan.FieldChange{Path: prefix + ".defaultVariationKey", Before: optString(have.DefaultVariationKey), After: optString(want.DefaultVariationKey)})
		d.reasons = append(d.reasons, "defaultVariationKey changed")
	}
	rules := diffRules(prefix+".rolloutRules", want.RolloutRules, have.RolloutRules)
	d.after.RolloutRules = rules.after
	if len(rules.fields) > 0 {
		d.names = append(d.names, "rolloutRules")
		d.fields = append(d.fields, rules.fields...)
		d.reasons = append(d.reasons, rules.reasons...)
	}
	if !integrationsEqual(want.Integrations, have.Integrations) {
		d.names = append(d.names, "integrations")
		d.fields = append(d.fields, plan.FieldChange{Path: prefix + ".integrations", Before: have.Integrations, After: want.Integrations})
		d.reasons = append(d.reasons, "integrations changed")
	}
	return d
}

type rulesDiff struct {
	after   []kmodel.Rule // Git's rules carrying the live ids of rules that persist
	fields  []plan.FieldChange
	reasons []string
}

// diffRules matches rules by name. A rule that persists keeps its live id, and its
// rollback conditions keep the live ids of the conditions at the same positions.
func diffRules(path string, want, have []kmodel.Rule) rulesDiff {
	d := rulesDiff{after: slices.Clone(want)}
	byName := make(map[string][]int, len(have))
	for j := range have {
		byName[have[j].Name] = append(byName[have[j].Name], j)
	}
	matched := make([]bool, len(have))
	var common []int
	type added struct {
		at   int
		name string
	}
	var adds []added
	for i := range d.after {
		w := &d.after[i]
		p := keyPath(path, "name", w.Name)
		js := byName[w.Name]
		if len(js) == 0 {
			adds = append(adds, added{i, w.Name})
			d.fields = append(d.fields, plan.FieldChange{Path: p, After: *w})
			continue
		}
		j := js[0]
		byName[w.Name] = js[1:]
		matched[j] = true
		common = append(common, j)
		h := &have[j]
		w.ID = h.ID
		if len(w.RollbackConditions) > 0 {
			w.RollbackConditions = slices.Clone(w.RollbackConditions)
			for k := range w.RollbackConditions {
				if k < len(h.RollbackConditions) {
					w.RollbackConditions[k].ID = h.RollbackConditions[k].ID
				}
			}
		}
		if fc := ruleFields(p, w, h); len(fc) > 0 {
			d.fields = append(d.fields, fc...)
			d.reasons = append(d.reasons, fmt.Sprintf("rule %q changed, keeping id %d", w.Name, h.ID))
		}
	}
	var removed []int
	for j := range have {
		if !matched[j] {
			removed = append(removed, j)
			d.fields = append(d.fields, plan.FieldChange{Path: keyPath(path, "name", have[j].Name), Before: have[j]})
		}
	}
	// A rule added where a rule was removed is most likely a rename: say what that means.
	renamed := make(map[int]bool)
	for _, a := range adds {
		for _, j := range removed {
			if j == a.at && !renamed[j] {
				renamed[j] = true
				d.reasons = append(d.reasons, fmt.Sprintf("rule %q renamed to %q: a renamed rule is a new rule (new id, new experiment; id %d goes)", have[j].Name, a.name, have[j].ID))
				a.name = ""
				break
			}
		}
		if a.name != "" {
			d.reasons = append(d.reasons, fmt.Sprintf("rule %q added", a.name))
		}
	}
	for _, j := range removed {
		if !renamed[j] {
			d.reasons = append(d.reasons, fmt.Sprintf("rule %q removed (id %d)", have[j].Name, have[j].ID))
		}
	}
	if !slices.IsSorted(common) {
		d.fields = append(d.fields, plan.FieldChange{Path: path, Before: ruleNames(have), After: ruleNames(want)})
		d.reasons = append(d.reasons, "rules reordered")
	}
	return d
}

func ruleNames(rules []kmodel.Rule) []string {
	out := make([]string, len(rules))
	for i := range rules {
		out[i] = rules[i].Name
	}
	return out
}

func ruleFields(prefix string, after, before *kmodel.Rule) []plan.FieldChange {
	var fc []plan.FieldChange
	diff := func(name string, changed bool, b, a any) {
		if changed {
			fc = append(fc, plan.FieldChange{Path: prefix + "." + name, Before: b, After: a})
		}
	}
	diff("type", after.Type != before.Type, before.Type, after.Type)
	diff("state", after.State != before.State, before.State, after.State)
	diff("segmentId", after.SegmentID != before.SegmentID, optInt(before.SegmentID), optInt(after.SegmentID))
	diff("exposition", !floatPtrEqual(after.Exposition, before.Exposition), before.Exposition, after.Exposition)
	diff("variationKey", after.VariationKey != before.VariationKey, optString(before.VariationKey), optString(after.VariationKey))
	diff("controlVariationKey", after.ControlVariationKey != before.ControlVariationKey, optString(before.ControlVariationKey), optString(after.ControlVariationKey))
	diff("trafficAllocationMethod", after.TrafficAllocationMethod != before.TrafficAllocationMethod, optString(before.TrafficAllocationMethod), optString(after.TrafficAllocationMethod))
	diff("trafficAllocations", !slices.Equal(after.TrafficAllocations, before.TrafficAllocations), before.TrafficAllocations, after.TrafficAllocations)
	diff("reallocation", after.Reallocation != before.Reallocation, before.Reallocation, after.Reallocation)
	diff("release", !releaseEqual(after.Release, before.Release), before.Release, after.Release)
	for k := 0; k < max(len(after.RollbackConditions), len(before.RollbackConditions)); k++ {
		p := fmt.Sprintf("%s.rollbackConditions[%d]", prefix, k)
		switch {
		case k >= len(before.RollbackConditions):
			fc = append(fc, plan.FieldChange{Path: p, After: after.RollbackConditions[k]})
		case k >= len(after.RollbackConditions):
			fc = append(fc, plan.FieldChange{Path: p, Before: before.RollbackConditions[k]})
		default:
			a, b := &after.RollbackConditions[k], &before.RollbackConditions[k]
			diff := func(name string, changed bool, bv, av any) {
				if changed {
					fc = append(fc, plan.FieldChange{Path: p + "." + name, Before: bv, After: av})
				}
			}
			diff("target", a.Target != b.Target, b.Target, a.Target)
			diff("criteria", a.Criteria != b.Criteria, b.Criteria, a.Criteria)
			diff("comparisonOperator", a.ComparisonOperator != b.ComparisonOperator, b.ComparisonOperator, a.ComparisonOperator)
			diff("matchValue", a.MatchValue != b.MatchValue, b.MatchValue, a.MatchValue)
			diff("goalId", a.GoalID != b.GoalID, optInt(b.GoalID), optInt(a.GoalID))
			diff("visitors", a.Visitors != b.Visitors, b.Visitors, a.Visitors)
			diff("recipients", !stringsEqual(a.Recipients, b.Recipients), nonNilStrings(b.Recipients), nonNilStrings(a.Recipients))
		}
	}
	return fc
}

// --- small helpers ------------------------------------------------------------------

// keyPath names one element of a keyed list: variations[key=on], rolloutRules[name=beta].
// Keys that would make the path ambiguous are quoted.
func keyPath(list, field, key string) string {
	if key == "" || strings.ContainsAny(key, `[]="`) || strings.TrimSpace(key) != key {
		key = fmt.Sprintf("%q", key)
	}
	return list + "[" + field + "=" + key + "]"
}

// untypedNil turns a nil pointer or slice held in v into a plain nil, so that "absent"
// is one value for the renderers.
func untypedNil(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
	}
	return v
}

// optString shows an empty string as absent (null).
func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// optInt shows a zero id as absent (null).
func optInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilInts(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// andList joins items for a sentence: "a", "a and b", "a, b and c".
func andList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// pronoun is "it" for one thing, "them" for more.
func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func sentence(parts []string) string { return strings.Join(parts, "; ") }

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
