package unleashplan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/internal/plan"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

// Service is the name the plan renderers use for Unleash.
const Service = unleashmodel.Service

// NoteLegacyVariants is a note on an environment whose flag has feature (environment)
// variants in Unleash: deprecated in Unleash 8, not in flag files, left alone.
const NoteLegacyVariants plan.NoteKind = "legacy-variants"

// AddressOf is the neutral address of an Unleash flag (the project is its scope, the flag
// name its key) and, when env is set, of its configuration in that environment.
func AddressOf(ref unleashmodel.Ref, env string) plan.Address {
	return plan.Address{Service: Service, Scope: ref.Project, Key: ref.Name, Environment: env}
}

func addressesOf(refs []unleashmodel.Ref) []plan.Address {
	out := make([]plan.Address, len(refs))
	for i, r := range refs {
		out[i] = AddressOf(r, "")
	}
	return out
}

// Options tune Compute. The zero value plans without pruning, environments in
// alphabetical order, without repository-wide ignore paths.
type Options struct {
	// Prune archives the live flags that are gone from Git and carry the ownership tag.
	Prune bool
	// EnvironmentOrder is the order environments are changed in (the settings'
	// environments); others follow alphabetically.
	EnvironmentOrder []string
	// MaxArchive and AllowMassArchive are the mass-archive guard (plan.MassArchiveLimit).
	MaxArchive       int
	AllowMassArchive bool
	// Ignore are the settings' ignore paths, written in SettingsFile.
	Ignore       []string
	SettingsFile string
}

// OptionsFor returns the options an Unleash repository's settings ask for.
func OptionsFor(d *unleashmodel.Desired) Options {
	file := d.SettingsFile
	if file == "" {
		file = flagrepo.SettingsFile
	}
	return Options{Prune: d.Settings.Prune, EnvironmentOrder: slices.Clone(d.Settings.Environments),
		Ignore: slices.Clone(d.Settings.Ignore), SettingsFile: file}
}

// RefusedError is returned when Git asks for what Unleash cannot do as written: a strategy
// names a segment Unleash does not have, or a flag configures an environment that is not
// enabled for its project. The plan returned with it holds every change; the pipeline
// applies nothing, as for invalid files.
type RefusedError struct {
	Problems []string // "project/flag: what", sorted
}

// Error lists the problems.
func (e *RefusedError) Error() string {
	return "plan: Git asks for what Unleash does not have, so nothing is applied: " + strings.Join(e.Problems, "; ")
}

// Compute returns the changes that bring live in line with desired. It is pure: the same
// arguments give the same plan. The error is nil, a *plan.MassArchiveError or a
// *RefusedError, returned with a usable plan.
//
// Per flag, strictly: create or revive → metadata → tags → per environment in the
// configured order: strategies added, changed, deleted, reordered, then the environment
// turned on or off → archive. Flags are ordered by project, then name.
func Compute(desired *unleashmodel.Desired, live *unleashmodel.Live, opts Options) (plan.Plan, error) {
	p := plan.Plan{Changes: []plan.Change{}, Unmanaged: []plan.Address{}, Service: Service}
	c := &computer{opts: opts, live: live, settingsIgnores: parseIgnores(opts.Ignore, opts.SettingsFile)}
	var want []*unleashmodel.Flag
	if desired != nil {
		p.Revision = desired.Revision
		for i := range desired.Flags {
			want = append(want, &desired.Flags[i])
		}
	}
	slices.SortStableFunc(want, func(a, b *unleashmodel.Flag) int { return unleashmodel.CompareRefs(a.Ref(), b.Ref()) })
	byRef, archived := indexLive(live)

	var groups []group
	inGit := map[unleashmodel.Ref]bool{}
	for _, d := range want {
		ref := d.Ref()
		if inGit[ref] {
			continue
		}
		inGit[ref] = true
		if cs := c.flag(d, byRef[ref], archived[ref]); len(cs) > 0 {
			groups = append(groups, group{ref, cs})
		}
	}

	unmanaged, prune, managed := c.unmanaged(byRef, inGit)
	p.Unmanaged = append(p.Unmanaged, unmanaged...)
	var err error
	if limit := plan.MassArchiveLimit(addressesOf(prune), managed, opts.MaxArchive, opts.AllowMassArchive, "project"); limit != "" {
		for _, ref := range prune {
			p.Blocked = append(p.Blocked, plan.Blocked{Address: AddressOf(ref, ""),
				Reason: "removed from Git; archiving refused by the mass-archive guard (" + limit + ")"})
		}
		err = &plan.MassArchiveError{Flags: addressesOf(prune), Limit: limit}
	} else {
		for _, ref := range prune {
			groups = append(groups, group{ref, []plan.Change{change(plan.ActionArchive, ref, "", unleashwire.ArchiveRequest(ref.Project, ref.Name),
				[]plan.FieldChange{{Path: "archived", Before: false, After: true}},
				fmt.Sprintf("removed from Git; tagged %s and prune is on, so it is archived (never deleted)", unleashmodel.OwnershipTag))}})
		}
	}
	if len(c.refused) > 0 && err == nil {
		slices.Sort(c.refused)
		err = &RefusedError{Problems: slices.Compact(c.refused)}
	}

	slices.SortStableFunc(groups, func(a, b group) int { return unleashmodel.CompareRefs(a.ref, b.ref) })
	for _, g := range groups {
		for _, ch := range g.changes {
			ch.Order = len(p.Changes) + 1
			p.Changes = append(p.Changes, ch)
		}
	}
	p.Notes = c.notes
	return p, err
}

// group is the changes of one flag, kept together in the plan's order.
type group struct {
	ref     unleashmodel.Ref
	changes []plan.Change
}

// indexLive returns the live active flags by reference (the first of a name, should a
// project list one twice) and the archived flags' references.
func indexLive(live *unleashmodel.Live) (map[unleashmodel.Ref]*unleashmodel.Flag, map[unleashmodel.Ref]bool) {
	byRef := map[unleashmodel.Ref]*unleashmodel.Flag{}
	archived := map[unleashmodel.Ref]bool{}
	if live == nil {
		return byRef, archived
	}
	for pi := range live.Projects {
		lp := &live.Projects[pi]
		for i := range lp.Flags {
			f := &lp.Flags[i]
			f.Project = lp.Name
			if _, dup := byRef[f.Ref()]; !dup {
				byRef[f.Ref()] = f
			}
		}
		for _, name := range lp.Archived {
			archived[unleashmodel.Ref{Project: lp.Name, Name: name}] = true
		}
	}
	return byRef, archived
}

// flag plans one flag Git has: l is its active live flag (nil when there is none), and
// archived says whether Unleash has it archived.
func (c *computer) flag(d, l *unleashmodel.Flag, archived bool) []plan.Change {
	ref := d.Ref()
	switch {
	case l != nil && d.Archived:
		return []plan.Change{change(plan.ActionArchive, ref, "", unleashwire.ArchiveRequest(ref.Project, ref.Name),
			[]plan.FieldChange{{Path: "archived", Before: false, After: true}},
			"Git archives the flag (archived: true); Unleash keeps it, with its strategies and tags, until it is revived or deleted")}
	case l != nil:
		return c.update(d, l)
	case d.Archived:
		// Archived in Git and not active in Unleash: archived or absent, nothing to do.
		return nil
	case archived:
		return []plan.Change{change(plan.ActionUpdate, ref, "", unleashwire.ReviveRequest(ref.Name),
			[]plan.FieldChange{{Path: "archived", Before: true, After: false}},
			"archived in Unleash but active in Git"+where(d)+"; one POST revives it, its strategies and tags as they were and every environment disabled. "+
				"Unleash shows an archived flag's strategies only once revived, so the next sync plans the rest (this one reports the differences left)")}
	}
	return c.create(d)
}

// unmanaged sorts the live flags Git does not have: reported unmanaged, or to prune (the
// ones flagsync owns, when pruning is on). managed counts each project's owned flags, for
// the mass-archive guard.
func (c *computer) unmanaged(byRef map[unleashmodel.Ref]*unleashmodel.Flag, inGit map[unleashmodel.Ref]bool) (unmanaged []plan.Address, prune []unleashmodel.Ref, managed map[string]int) {
	refs := make([]unleashmodel.Ref, 0, len(byRef))
	for ref := range byRef {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, unleashmodel.CompareRefs)
	managed = map[string]int{}
	for _, ref := range refs {
		owned := byRef[ref].HasTag(unleashmodel.OwnershipTag)
		if owned {
			managed[ref.Project]++
		}
		switch {
		case inGit[ref]:
		case c.opts.Prune && owned:
			prune = append(prune, ref)
		default:
			unmanaged = append(unmanaged, AddressOf(ref, ""))
		}
	}
	return unmanaged, prune, managed
}

// computer holds what one Compute gathers besides the changes.
type computer struct {
	opts            Options
	live            *unleashmodel.Live
	settingsIgnores unleashmodel.Ignores
	notes           []plan.Note
	refused         []string
}

func parseIgnores(paths []string, source string) unleashmodel.Ignores {
	var out unleashmodel.Ignores
	for _, s := range paths {
		// Paths that do not parse never get here: the loader rejects them.
		if p, err := unleashmodel.ParseIgnorePath(s); err == nil {
			out = append(out, unleashmodel.Ignore{Path: p, Source: source})
		}
	}
	return out
}

// ignoresOf returns the ignore paths that apply to d: the settings' and its own.
func (c *computer) ignoresOf(d *unleashmodel.Flag) unleashmodel.Ignores {
	src := d.Source.File
	if src == "" {
		src = "the flag file"
	}
	return append(slices.Clone(c.settingsIgnores), parseIgnores(d.Ignore, src)...)
}

func change(action plan.Action, ref unleashmodel.Ref, env string, req api.Request, fields []plan.FieldChange, reason string) plan.Change {
	return plan.Change{Action: action, Address: AddressOf(ref, env), Request: req, Fields: fields, Reason: reason}
}

func where(d *unleashmodel.Flag) string {
	if d.Source.File != "" {
		return " (" + d.Source.File + ")"
	}
	return ""
}

// segmentIDs returns the live segment ids, refusing the plan for every segment d's
// environment env names that Unleash lacks.
func (c *computer) segmentIDs(d *unleashmodel.Flag, env string, strategies []unleashmodel.Strategy) map[string]int {
	var ids map[string]int
	if c.live != nil {
		ids = c.live.SegmentIDs
	}
	for i, s := range strategies {
		for _, name := range s.Segments {
			if _, ok := ids[name]; !ok {
				c.refused = append(c.refused, fmt.Sprintf("%s: environment %s, %s uses segment %q, which Unleash does not have (create it in Unleash first)",
					d.Ref(), env, unleashmodel.StrategyPath(&s, i), name))
			}
		}
	}
	return ids
}

// checkEnvironment refuses the plan when env is not enabled for d's project (when the
// project's environments are known).
func (c *computer) checkEnvironment(d *unleashmodel.Flag, env string, known []string) bool {
	if known == nil || slices.Contains(known, env) {
		return true
	}
	c.refused = append(c.refused, fmt.Sprintf("%s: environment %s is not enabled for project %s (it has %s)",
		d.Ref(), env, d.Project, strings.Join(known, ", ")))
	return false
}

// --- create -----------------------------------------------------------------------

func (c *computer) create(d *unleashmodel.Flag) []plan.Change {
	ref := d.Ref()
	n := unleashmodel.NormaliseFlag(*d)
	fields := []plan.FieldChange{{Path: "name", After: d.Name}, {Path: "type", After: n.Type}}
	if d.Description != "" {
		fields = append(fields, plan.FieldChange{Path: "description", After: d.Description})
	}
	if d.ImpressionData {
		fields = append(fields, plan.FieldChange{Path: "impressionData", After: true})
	}
	out := []plan.Change{change(plan.ActionCreate, ref, "", unleashwire.CreateFeatureRequest(d), fields,
		"in Git"+where(d)+" but not in Unleash; one POST creates it, every environment disabled and without strategies")}
	tags := requestTags(n.Tags, true)
	out = append(out, change(plan.ActionUpdate, ref, "", unleashwire.TagsRequest(d.Name, tags, nil),
		[]plan.FieldChange{{Path: "tags", After: tags}},
		fmt.Sprintf("tags of the new flag, with flagsync's ownership tag %s (one PUT; Unleash refuses to create a flag with tags it has not seen)", unleashmodel.OwnershipTag)))
	var known []string
	if lp := c.live.Project(d.Project); lp != nil {
		known = lp.Environments
	}
	for _, env := range plan.EnvOrder(n.Environments, c.opts.EnvironmentOrder) {
		if !c.checkEnvironment(d, env, known) {
			continue
		}
		e := n.Environments[env]
		ids := c.segmentIDs(d, env, e.Strategies)
		for i := range e.Strategies {
			s := &e.Strategies[i]
			out = append(out, change(plan.ActionCreate, ref, env, unleashwire.AddStrategyRequest(d.Project, d.Name, env, s, ids, i),
				strategyFields("environments."+env+"."+unleashmodel.StrategyPath(s, i), s),
				fmt.Sprintf("strategy %d of %d in %s", i+1, len(e.Strategies), env)))
		}
		if e.Enabled {
			out = append(out, change(plan.ActionUpdate, ref, env, unleashwire.ToggleRequest(d.Project, d.Name, env, true),
				[]plan.FieldChange{{Path: "environments." + env + ".enabled", Before: false, After: true}},
				"enabled in Git; turned on once its strategies are in place"))
		}
	}
	return out
}

// strategyFields lists what a new strategy sets.
func strategyFields(prefix string, s *unleashmodel.Strategy) []plan.FieldChange {
	fc := []plan.FieldChange{{Path: prefix + ".name", After: s.Name}}
	if s.Disabled {
		fc = append(fc, plan.FieldChange{Path: prefix + ".disabled", After: true})
	}
	for _, k := range sortedKeys(s.Parameters) {
		fc = append(fc, plan.FieldChange{Path: prefix + ".parameters." + k, After: s.Parameters[k]})
	}
	if len(s.Constraints) > 0 {
		fc = append(fc, plan.FieldChange{Path: prefix + ".constraints", After: s.Constraints})
	}
	if len(s.Segments) > 0 {
		fc = append(fc, plan.FieldChange{Path: prefix + ".segments", After: s.Segments})
	}
	if len(s.Variants) > 0 {
		fc = append(fc, plan.FieldChange{Path: prefix + ".variants", After: s.Variants})
	}
	return fc
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// requestTags are the tags a write sends: Git's, plus the ownership tag when the flag
// carries it or flagsync creates or adopts it; sorted.
func requestTags(tags []string, owned bool) []string {
	out := slices.Clone(tags)
	if owned && !slices.Contains(out, unleashmodel.OwnershipTag) {
		out = append(out, unleashmodel.OwnershipTag)
	}
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// --- update -----------------------------------------------------------------------

func (c *computer) update(d, l *unleashmodel.Flag) []plan.Change {
	ref := d.Ref()
	ignores := c.ignoresOf(d)
	n, ln := unleashmodel.NormaliseFlag(*d), unleashmodel.NormaliseFlag(*l)
	var out []plan.Change

	// Metadata: one JSON Patch of the fields that differ.
	var ops []unleashwire.PatchOp
	var fields []plan.FieldChange
	meta := []struct {
		path       string
		git, live  any
		equal      bool
		patchValue any
	}{
		{"type", n.Type, ln.Type, n.Type == ln.Type, n.Type},
		{"description", optString(n.Description), optString(ln.Description), n.Description == ln.Description, n.Description},
		{"impressionData", n.ImpressionData, ln.ImpressionData, n.ImpressionData == ln.ImpressionData, n.ImpressionData},
	}
	for _, m := range meta {
		if m.equal || c.ignored(ignores, ref, "", m.path, m.git, m.live) {
			continue
		}
		ops = append(ops, unleashwire.PatchOp{Op: "replace", Path: "/" + m.path, Value: m.patchValue})
		fields = append(fields, plan.FieldChange{Path: m.path, Before: m.live, After: m.git})
	}
	if len(ops) > 0 {
		var what []string
		for _, f := range fields {
			what = append(what, f.Path)
		}
		out = append(out, change(plan.ActionUpdate, ref, "", unleashwire.PatchFeatureRequest(d.Project, d.Name, ops), fields,
			"Git changes "+andList(what)+"; one JSON Patch"))
	}

	// Tags: one PUT adding and removing.
	owned := l.HasTag(unleashmodel.OwnershipTag)
	adopt := !owned && d.HasTag(unleashmodel.OwnershipTag)
	tags := requestTags(n.Tags, owned || adopt)
	if added, removed := setDiff(ln.Tags, tags); len(added)+len(removed) > 0 && !c.ignored(ignores, ref, "", "tags", tags, ln.Tags) {
		var parts []string
		for _, t := range added {
			parts = append(parts, "+"+t)
		}
		for _, t := range removed {
			parts = append(parts, "-"+t)
		}
		reason := "Git changes tags (" + strings.Join(parts, ", ") + "); one PUT adds and removes them"
		if adopt {
			reason += "; Git lists the ownership tag, so flagsync adopts the flag"
		}
		out = append(out, change(plan.ActionUpdate, ref, "", unleashwire.TagsRequest(d.Name, added, removed),
			[]plan.FieldChange{{Path: "tags", Before: nonNil(ln.Tags), After: tags}}, reason))
	}

	var known []string
	for k := range l.Environments {
		known = append(known, k)
	}
	slices.Sort(known)
	for _, env := range plan.EnvOrder(n.Environments, c.opts.EnvironmentOrder) {
		le, ok := ln.Environments[env]
		if !ok {
			c.checkEnvironment(d, env, known)
			continue
		}
		if le.Unread {
			c.refused = append(c.refused, fmt.Sprintf("%s: environment %s: its strategies were not read", ref, env))
			continue
		}
		if count := l.LegacyVariants[env]; count > 0 {
			c.notes = append(c.notes, plan.Note{Address: AddressOf(ref, env), Kind: NoteLegacyVariants,
				Path: "environments." + env + ".variants", Git: nil, Live: fmt.Sprintf("%d feature variants", count),
				Reason: "feature (environment) variants are deprecated in Unleash 8 and not in flag files: left as they are; move them to strategy variants"})
		}
		out = append(out, c.environment(d, n.Environments[env], le, env, ignores)...)
	}
	return out
}

// ignored reports whether an ignore path leaves field (which differs: Git has git, Unleash
// live) to someone else, and notes it when so.
func (c *computer) ignored(ignores unleashmodel.Ignores, ref unleashmodel.Ref, env, field string, git, live any) bool {
	ig, ok := ignores.Match(field)
	if !ok {
		return false
	}
	c.notes = append(c.notes, plan.Note{Address: AddressOf(ref, env), Kind: plan.NoteIgnored, Path: field, Git: git, Live: live,
		Ignore: ig.Path.String(), Source: ig.Source,
		Reason: fmt.Sprintf("owned outside Git (ignore %s in %s): Unleash's value stays and is never written", ig.Path, ig.Source)})
	return true
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

// setDiff returns what want adds to have, and what it removes.
func setDiff(have, want []string) (added, removed []string) {
	for _, s := range want {
		if !slices.Contains(have, s) && !slices.Contains(added, s) {
			added = append(added, s)
		}
	}
	for _, s := range have {
		if !slices.Contains(want, s) && !slices.Contains(removed, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

func andList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
