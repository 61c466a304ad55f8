package kplan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
)

// This file decides what Git does not own in a flag that exists in Kameleoon, before
// the flag is diffed: the fields `ignore:` paths hand to someone else, and the changes
// Kameleoon's own automation makes (see docs/plan.md, "Fields Git does not own"). Both
// work the same way: Git's flag is planned with Kameleoon's value in those places, so the
// diff finds nothing to write there, and any patch that sends the place for another
// reason sends Kameleoon's value back unchanged. Every difference left alone this way is
// a Note.

// ignoreRule is one parsed ignore path and where it is written.
type ignoreRule struct {
	path   kmodel.IgnorePath
	source string // "flagsync.yaml" or the flag file
}

// ignoreRules parses the ignore paths of the repository settings and of flag d. Paths
// that do not parse are left out: the loader rejects them, with their position, before
// anything is planned.
func ignoreRules(settings []kmodel.IgnorePath, d *kmodel.Flag) []ignoreRule {
	out := make([]ignoreRule, 0, len(settings)+len(d.Ignore))
	for _, p := range settings {
		out = append(out, ignoreRule{path: p, source: "flagsync.yaml"})
	}
	for _, s := range d.Ignore {
		if p, err := kmodel.ParseIgnorePath(s); err == nil {
			src := d.Source.File
			if src == "" {
				src = "the flag file"
			}
			out = append(out, ignoreRule{path: p, source: src})
		}
	}
	return out
}

// parseIgnores parses the repository-wide ignore paths once per plan.
func parseIgnores(paths []string) []kmodel.IgnorePath {
	var out []kmodel.IgnorePath
	for _, s := range paths {
		if p, err := kmodel.ParseIgnorePath(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// own returns Git's flag d and live flag l as the planner compares them: Kameleoon's
// automation defaults applied to the rules both have, then the fields d's ignore rules
// name set to their live values in d. It returns d and l themselves when nothing is
// left alone, and the notes for every difference it leaves alone. d and l are never
// modified.
func own(d, l *kmodel.Flag, ignores []ignoreRule, order []string) (*kmodel.Flag, *kmodel.Flag, []plan.Note) {
	o := owner{orig: d, d: d, origLive: l, l: l}
	o.automation()
	if len(ignores) > 0 {
		o.ignore(ignores, order)
	}
	slices.SortStableFunc(o.notes, func(a, b plan.Note) int {
		return cmp.Or(cmp.Compare(envRank(a.Environment, order), envRank(b.Environment, order)),
			strings.Compare(a.Environment, b.Environment))
	})
	return o.d, o.l, o.notes
}

// envRank orders flag-level notes first, then environments in apply order.
func envRank(env string, order []string) int {
	if env == "" {
		return -1
	}
	if i := slices.Index(order, env); i >= 0 {
		return i
	}
	return len(order)
}

type owner struct {
	orig, d     *kmodel.Flag // Git's flag, and as planned
	origLive, l *kmodel.Flag // the live flag, and as compared
	notes       []plan.Note
}

// writable makes o.d a copy of Git's flag that may be changed.
func (o *owner) writable() {
	if o.d == o.orig {
		o.d = cloneFlag(o.orig)
	}
}

// writableLive makes o.l a copy of the live flag that may be changed.
func (o *owner) writableLive() {
	if o.l == o.origLive {
		o.l = cloneFlag(o.origLive)
	}
}

// cloneFlag copies f deeply enough to change any field the planner may set: its lists,
// its environments and their rules are the copy's own (pointers are replaced, never
// written through).
func cloneFlag(f *kmodel.Flag) *kmodel.Flag {
	c := *f
	c.Variables = slices.Clone(c.Variables)
	c.Variations = slices.Clone(c.Variations)
	for i := range c.Variations {
		c.Variations[i].Variables = slices.Clone(c.Variations[i].Variables)
	}
	if c.Environments != nil {
		envs := make(map[string]kmodel.Environment, len(c.Environments))
		for k, e := range c.Environments {
			e.RolloutRules = slices.Clone(e.RolloutRules)
			for i := range e.RolloutRules {
				e.RolloutRules[i].RollbackConditions = slices.Clone(e.RolloutRules[i].RollbackConditions)
			}
			envs[k] = e
		}
		c.Environments = envs
	}
	return &c
}

func (o *owner) note(env string, kind plan.NoteKind, path string, git, live any, reason string) {
	o.notes = append(o.notes, plan.Note{Address: AddressOf(o.orig.Ref(), env),
		Kind: kind, Path: path, Git: untypedNil(git), Live: untypedNil(live), Reason: reason})
}

// liveRule returns the first live rule named name in environment env, or nil.
func liveRule(e kmodel.Environment, name string) *kmodel.Rule {
	for i := range e.RolloutRules {
		if e.RolloutRules[i].Name == name {
			return &e.RolloutRules[i]
		}
	}
	return nil
}

// --- Kameleoon's automation ---------------------------------------------------------

// automation applies the defaults that never fight Kameleoon's automation to every rule
// Git and Kameleoon both have (matched by name in an environment both have); see
// pause and ramp. Git's changes to other fields of those rules are planned as usual.
func (o *owner) automation() {
	// Environments in any order: notes are sorted by environment afterwards, and within
	// one environment they come in rule order.
	for k, de := range o.orig.Environments {
		le, ok := o.origLive.Environments[k]
		if !ok || len(le.RolloutRules) == 0 {
			continue
		}
		for i := range de.RolloutRules {
			w := &de.RolloutRules[i]
			j := slices.IndexFunc(le.RolloutRules, func(r kmodel.Rule) bool { return r.Name == w.Name })
			if j < 0 {
				continue
			}
			h := &le.RolloutRules[j]
			paused := cmp.Or(w.State, kmodel.StateActive) == kmodel.StateActive && (h.Status == kmodel.StatePaused || h.State == kmodel.StatePaused)
			progressive := w.Type == kmodel.RuleProgressiveDelivery && h.Type == kmodel.RuleProgressiveDelivery
			if !paused && !progressive {
				continue // the common case: nothing Kameleoon's automation could have done
			}
			prefix := keyPath("environments."+k+".rolloutRules", "name", w.Name)
			if paused {
				switch o.pause(k, prefix, w, h) {
				case keepPaused:
					o.writable()
					o.d.Environments[k].RolloutRules[i].State = kmodel.StatePaused
				case readActive:
					o.writableLive()
					o.l.Environments[k].RolloutRules[j].State = kmodel.StateActive
				}
			}
			if x, ok := o.ramp(k, prefix, w, h); ok {
				o.writable()
				o.d.Environments[k].RolloutRules[i].Exposition = x
			}
		}
	}
}

// pauseAction is what pause decided.
type pauseAction int

const (
	planAsGit  pauseAction = iota // plan Git's state as it is
	keepPaused                    // plan the rule PAUSED: patches keep Kameleoon's PAUSED
	readActive                    // read the live written state as ACTIVE: patches write ACTIVE, unchanged
)

// pause decides how Git's rule w, ACTIVE in Git, is planned against live rule h that
// Kameleoon reports PAUSED (docs/plan.md, "Kameleoon's automation"):
//
//   - state ACTIVE, status PAUSED: Kameleoon paused it (the vendor tutorial shows this
//     after a release window ended). Nothing written differs; a note says so.
//   - PAUSED (written, or status only), and the rule has rollback conditions in Git and
//     in Kameleoon: a fired rollback may have paused it, and whether a rollback writes
//     state too is not documented. Not re-activated: patches keep it PAUSED.
//   - status PAUSED with no state in the read shape, and a release window in Git and in
//     Kameleoon: Kameleoon pauses a rule outside its window while its written state
//     stays ACTIVE (the tutorial). The written state is read as ACTIVE, so nothing
//     differs and a patch writes ACTIVE unchanged, as the tutorial's patch did.
//   - Otherwise the rule was paused by hand: Git's ACTIVE applies.
//
// Git's PAUSED always applies. Removing the rule's rollback conditions or its window
// in Git is a Git change to the rule: the rule is then re-activated as Git says.
func (o *owner) pause(env, prefix string, w, h *kmodel.Rule) pauseAction {
	git := cmp.Or(w.State, kmodel.StateActive)
	written := h.WrittenState()
	status := cmp.Or(h.Status, written)
	if git != kmodel.StateActive || status != kmodel.StatePaused {
		return planAsGit
	}
	rollback := len(h.RollbackConditions) > 0 && len(w.RollbackConditions) > 0
	window := hasWindow(h.Release) && hasWindow(w.Release)
	if written == kmodel.StateActive {
		o.note(env, plan.NotePaused, prefix+".state", git, status,
			fmt.Sprintf("paused by Kameleoon (status PAUSED, state ACTIVE: %s); flagsync does not re-activate it, and writes state ACTIVE unchanged when it patches the environment",
				pauseCause(h, len(h.RollbackConditions) > 0, hasWindow(h.Release))))
		return planAsGit
	}
	switch {
	case rollback:
		o.note(env, plan.NotePaused, prefix+".state", git, kmodel.StatePaused,
			"paused in Kameleoon, and the rule has rollback conditions: a fired rollback may have paused it (whether a rollback also writes state is not documented); "+
				"flagsync does not re-activate it, and patches keep it PAUSED: resume it in Kameleoon once the cause is dealt with")
		return keepPaused
	case h.State == "" && window:
		o.note(env, plan.NotePaused, prefix+".state", git, kmodel.StatePaused,
			"paused by Kameleoon outside its release window "+releaseText(h.Release)+": the read shape has only status, and Kameleoon pauses a rule outside its window "+
				"while its written state stays ACTIVE (as in the vendor tutorial); flagsync does not re-activate it, and writes state ACTIVE unchanged when it patches the environment")
		return readActive
	}
	return planAsGit
}

func hasWindow(r *kmodel.Release) bool { return r != nil && *r != (kmodel.Release{}) }

func pauseCause(h *kmodel.Rule, rollback, window bool) string {
	switch {
	case window && rollback:
		return "its release window " + releaseText(h.Release) + " is not open, or a rollback condition fired"
	case window:
		return "its release window " + releaseText(h.Release) + " is not open"
	case rollback:
		return "a rollback condition fired"
	}
	return "Kameleoon's own status"
}

func releaseText(r *kmodel.Release) string {
	s := cmp.Or(r.ReleaseFrom, "…") + " → " + cmp.Or(r.ReleaseTo, "…")
	if r.TimeZone != "" {
		s += " " + r.TimeZone
	}
	return "(" + s + ")"
}

// ramp decides the exposition of Git's rule w against live rule h. It returns the
// exposition to plan with, and true when that is not Git's.
func (o *owner) ramp(env, prefix string, w, h *kmodel.Rule) (*float64, bool) {
	if w.Type != kmodel.RuleProgressiveDelivery || h.Type != kmodel.RuleProgressiveDelivery {
		return nil, false
	}
	if h.CurrentExposition != nil {
		// exposition is the target Git writes; currentExposition is the ramp, never
		// written. A different target in Git is a Git change, planned as usual.
		if h.Exposition == nil || *h.CurrentExposition != *h.Exposition {
			o.note(env, plan.NoteRamp, prefix+".exposition", w.Exposition, *h.CurrentExposition,
				fmt.Sprintf("progressive delivery ramping: exposure at %s%% on its way to the target %s; flagsync does not touch the ramp (currentExposition is never written)",
					formatPercent(*h.CurrentExposition), optPercent(h.Exposition)))
		}
		return nil, false
	}
	if w.Exposition == nil || h.Exposition == nil || *h.Exposition >= *w.Exposition {
		return nil, false // equal, or Git lowers the target: applied
	}
	o.note(env, plan.NoteRamp, prefix+".exposition", *w.Exposition, *h.Exposition,
		fmt.Sprintf("progressive delivery: exposition %s%% in Kameleoon, %s%% in Git, read as Kameleoon's ramp climbing toward Git's target (the read shape has no currentExposition); flagsync does not revert it and patches keep %s%%",
			formatPercent(*h.Exposition), formatPercent(*w.Exposition), formatPercent(*h.Exposition)))
	x := *h.Exposition
	return &x, true
}

func formatPercent(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func optPercent(x *float64) string {
	if x == nil {
		return "(none)"
	}
	return formatPercent(*x) + "%"
}

// --- ignore rules -----------------------------------------------------------------

// ignore sets the fields the rules name to their live values, and notes each difference
// it leaves alone: the fields a plan of the flag without the rules would change, under
// one of the rules.
func (o *owner) ignore(rules []ignoreRule, order []string) {
	before := o.d
	o.d = cloneFlag(before)
	changed := false
	for _, r := range rules {
		if overlayFlag(o.d, o.l, r.path.Steps()) {
			changed = true
		}
	}
	if !changed {
		o.d = before // nothing was set: plan what the automation defaults gave
		return
	}
	dropUnfitOverridesOf(o.d)
	// What would be written without the rules, under them, is what they leave alone.
	would, _ := updateChanges(before, o.l, order)
	for _, c := range would {
		if _, live := o.l.Environments[c.Environment]; c.Environment != "" && !live {
			continue // an environment Kameleoon lacks is sent with Git's values
		}
		for _, f := range c.Fields {
			steps, err := kmodel.ParseFieldPath(f.Path)
			if err != nil {
				continue
			}
			for _, r := range rules {
				if !r.path.MatchesSteps(steps) {
					continue
				}
				o.notes = append(o.notes, plan.Note{Address: AddressOf(o.orig.Ref(), c.Environment),
					Kind: plan.NoteIgnored, Path: f.Path, Git: untypedNil(f.After), Live: untypedNil(f.Before),
					Ignore: r.path.String(), Source: r.source,
					Reason: fmt.Sprintf("owned outside Git (ignore %s in %s): Kameleoon's value stays and is never written", r.path, r.source)})
				break
			}
		}
	}
}

// dropUnfitOverridesOf leaves out the variation overrides that do not fit f's variables
// (an override kept from Kameleoon by an ignore rule, of a variable Git removes or
// changes): Kameleoon refuses a flag patch with one.
func dropUnfitOverridesOf(f *kmodel.Flag) {
	vars := make(map[string]*kmodel.Variable, len(f.Variables))
	for i := range f.Variables {
		vars[f.Variables[i].Key] = &f.Variables[i]
	}
	for i := range f.Variations {
		v := &f.Variations[i]
		v.Variables = slices.DeleteFunc(v.Variables, func(o kmodel.VariationVariable) bool {
			decl, ok := vars[o.Key]
			return !ok || !valueFits(decl, o.Value)
		})
	}
}

// valueFits reports whether a variation's value fits the declared variable, as
// Kameleoon checks it.
func valueFits(decl *kmodel.Variable, value string) bool {
	switch decl.Type {
	case kmodel.TypeBoolean:
		return value == "true" || value == "false"
	case kmodel.TypeNumber:
		_, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return err == nil
	case kmodel.TypeJSON:
		return json.Valid([]byte(value))
	case kmodel.TypeEnum:
		return len(decl.AllowedValues) == 0 || slices.Contains(decl.AllowedValues, value)
	}
	return true
}

// overlayFlag sets the fields of d that steps name to their values in l, where l has
// the element they belong to; it reports whether anything changed. d must be writable.
func overlayFlag(d, l *kmodel.Flag, steps []kmodel.PathStep) bool {
	st, rest := steps[0], steps[1:]
	switch st.Name {
	case "name":
		return set(&d.Name, l.Name)
	case "description":
		return set(&d.Description, l.Description)
	case "tags":
		if stringsEqual(tagSet(d.Tags), tagSet(l.Tags)) {
			return false // equal but for order or flagsync's tag: nothing left alone
		}
		return set(&d.Tags, l.Tags)
	case "attributionWindow":
		return set(&d.AttributionWindow, l.AttributionWindow)
	case "bucketingKey":
		return set(&d.BucketingKey, l.BucketingKey)
	case "primaryGoalId":
		return set(&d.PrimaryGoalID, l.PrimaryGoalID)
	case "secondaryGoalIds":
		return set(&d.SecondaryGoalIDs, l.SecondaryGoalIDs)
	case "variables":
		return overlayVariables(d, l, st, rest)
	case "variations":
		return overlayVariations(d, l, st, rest)
	case "environments":
		changed := false
		for k, e := range d.Environments {
			if rest[0].Name != "*" && rest[0].Name != k {
				continue
			}
			le, ok := l.Environments[k]
			if !ok {
				continue // not in Kameleoon yet: Git's values are sent
			}
			if overlayEnv(&e, le, rest[1:]) {
				d.Environments[k] = e
				changed = true
			}
		}
		return changed
	}
	return false
}

// overlayVariables sets the flag-level variables (or the fields rest names of those st
// selects) to l's.
func overlayVariables(d, l *kmodel.Flag, st kmodel.PathStep, rest []kmodel.PathStep) bool {
	if len(rest) == 0 {
		return set(&d.Variables, slices.Clone(l.Variables))
	}
	changed := false
	for i := range d.Variables {
		w := &d.Variables[i]
		if !st.Sel.SelectsKey(w.Key, i) {
			continue
		}
		j := slices.IndexFunc(l.Variables, func(v kmodel.Variable) bool { return v.Key == w.Key })
		if j < 0 {
			continue
		}
		h := &l.Variables[j]
		switch rest[0].Name {
		case "type":
			changed = set(&w.Type, h.Type) || changed
		case "value":
			changed = set(&w.Value, h.Value) || changed
		case "allowedValues":
			changed = set(&w.AllowedValues, h.AllowedValues) || changed
		}
	}
	return changed
}

// overlayVariations sets the variations (or the fields rest names of those st selects)
// to l's.
func overlayVariations(d, l *kmodel.Flag, st kmodel.PathStep, rest []kmodel.PathStep) bool {
	if len(rest) == 0 {
		vs := slices.Clone(l.Variations)
		for i := range vs {
			vs[i].Variables = slices.Clone(vs[i].Variables)
		}
		return set(&d.Variations, vs)
	}
	changed := false
	for i := range d.Variations {
		w := &d.Variations[i]
		if !st.Sel.SelectsKey(w.Key, i) {
			continue
		}
		j := slices.IndexFunc(l.Variations, func(v kmodel.Variation) bool { return v.Key == w.Key })
		if j < 0 {
			continue
		}
		h := &l.Variations[j]
		switch rest[0].Name {
		case "name":
			changed = set(&w.Name, h.Name) || changed
		case "variables":
			changed = overlayOverrides(w, h, rest[0].Sel) || changed
		}
	}
	return changed
}

// overlayOverrides sets the overrides of variation w that sel picks to live variation
// h's: an override only Kameleoon has is added, one only Git has goes.
func overlayOverrides(w, h *kmodel.Variation, sel kmodel.Selector) bool {
	if sel.Kind == kmodel.SelectNone || sel.Kind == kmodel.SelectAll {
		return set(&w.Variables, slices.Clone(h.Variables))
	}
	key := sel.Value
	i := slices.IndexFunc(w.Variables, func(o kmodel.VariationVariable) bool { return o.Key == key })
	j := slices.IndexFunc(h.Variables, func(o kmodel.VariationVariable) bool { return o.Key == key })
	switch {
	case j >= 0 && i >= 0:
		return set(&w.Variables[i].Value, h.Variables[j].Value)
	case j >= 0:
		w.Variables = append(w.Variables, h.Variables[j])
		return true
	case i >= 0:
		w.Variables = slices.Delete(w.Variables, i, i+1)
		return true
	}
	return false
}

// overlayEnv sets the fields of Git's environment e that steps name to live
// environment le's.
func overlayEnv(e *kmodel.Environment, le kmodel.Environment, steps []kmodel.PathStep) bool {
	st, rest := steps[0], steps[1:]
	switch st.Name {
	case "featureEnabled":
		return set(&e.FeatureEnabled, le.FeatureEnabled)
	case "defaultVariationKey":
		return set(&e.DefaultVariationKey, le.DefaultVariationKey)
	case "integrations":
		return set(&e.Integrations, le.Integrations)
	case "rolloutRules":
		if len(rest) == 0 {
			rules := make([]kmodel.Rule, len(le.RolloutRules))
			for i, r := range le.RolloutRules {
				r.State = r.WrittenState()
				rules[i] = r
			}
			return set(&e.RolloutRules, rules)
		}
		changed := false
		for i := range e.RolloutRules {
			w := &e.RolloutRules[i]
			if !st.Sel.SelectsKey(w.Name, i) {
				continue
			}
			if h := liveRule(le, w.Name); h != nil {
				changed = overlayRule(w, h, rest) || changed
			}
		}
		return changed
	}
	return false
}

// overlayRule sets the field of Git's rule w that steps name to live rule h's.
func overlayRule(w, h *kmodel.Rule, steps []kmodel.PathStep) bool {
	st, rest := steps[0], steps[1:]
	switch st.Name {
	case "type":
		return set(&w.Type, h.Type)
	case "state":
		return set(&w.State, h.WrittenState())
	case "segmentId":
		return set(&w.SegmentID, h.SegmentID)
	case "exposition":
		return set(&w.Exposition, h.Exposition)
	case "variationKey":
		return set(&w.VariationKey, h.VariationKey)
	case "controlVariationKey":
		return set(&w.ControlVariationKey, h.ControlVariationKey)
	case "trafficAllocationMethod":
		return set(&w.TrafficAllocationMethod, h.TrafficAllocationMethod)
	case "trafficAllocations":
		return set(&w.TrafficAllocations, h.TrafficAllocations)
	case "reallocation":
		return set(&w.Reallocation, h.Reallocation)
	case "release":
		return set(&w.Release, h.Release)
	case "rollbackConditions":
		return overlayConditions(w, h, st, rest)
	}
	return false
}

// overlayConditions sets the rollback conditions (or the field rest names of those st
// selects) of Git's rule w to live rule h's.
func overlayConditions(w, h *kmodel.Rule, st kmodel.PathStep, rest []kmodel.PathStep) bool {
	if len(rest) == 0 {
		return set(&w.RollbackConditions, slices.Clone(h.RollbackConditions))
	}
	changed := false
	for i := range w.RollbackConditions {
		if !st.Sel.SelectsKey("", i) || i >= len(h.RollbackConditions) {
			continue
		}
		a, b := &w.RollbackConditions[i], &h.RollbackConditions[i]
		switch rest[0].Name {
		case "target":
			changed = set(&a.Target, b.Target) || changed
		case "criteria":
			changed = set(&a.Criteria, b.Criteria) || changed
		case "comparisonOperator":
			changed = set(&a.ComparisonOperator, b.ComparisonOperator) || changed
		case "matchValue":
			changed = set(&a.MatchValue, b.MatchValue) || changed
		case "goalId":
			changed = set(&a.GoalID, b.GoalID) || changed
		case "visitors":
			changed = set(&a.Visitors, b.Visitors) || changed
		case "recipients":
			changed = set(&a.Recipients, b.Recipients) || changed
		}
	}
	return changed
}

// set stores v in *p and reports whether that changed anything.
func set[T any](p *T, v T) bool {
	if reflect.DeepEqual(*p, v) {
		return false
	}
	*p = v
	return true
}
