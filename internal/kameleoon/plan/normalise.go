package kplan

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata"

	// Release windows are compared as instants in their time zone (see releaseEqual);
	// the embedded zone database keeps that working in images without
	// /usr/share/zoneinfo (distroless), in every binary that plans.
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// Normalisation puts a flag from Git and a flag read from Kameleoon into one canonical
// form, so that equal configurations compare equal and every sync does not show false
// drift. Both sides go through normalise before any comparison. The rules, also written
// up in the README:
//
//   - Server-owned fields (ids, experimentId, dates, health, orderIndex, variationId)
//     are not in the model or are ignored by the comparisons below; rule and rollback
//     condition ids are kept only to be carried into patches.
//   - Defaults the API fills in count as absent: attributionWindow 0 is
//     flag.DefaultAttributionWindow, a missing bucketingKey is {VISITOR_CODE}, missing
//     integrations are two empty arrays, a rule's missing state is ACTIVE, a missing
//     trafficAllocationMethod of an EXPERIMENTATION rule is MANUAL (other rule types
//     have no allocation method, so MANUAL there counts as absent), an empty release
//     is no release.
//   - Sets are compared as sets and shown sorted: tags (without flagsync's ownership
//     tag, which is never drift), secondaryGoalIds, ENUM allowedValues (sent as written), rollback
//     recipients, a variation's variable overrides (keyed by variable key) and a rule's
//     traffic allocations (keyed by variation key).
//   - Ordered lists are compared in order: variables and variations (keyed by key,
//     order as written), rolloutRules (keyed by name; order is evaluation order) and a
//     rule's rollbackConditions (by position).
//   - Variable values are compared by their declared type: JSON as parsed JSON
//     (whitespace and key order do not matter), NUMBER by numeric value, BOOLEAN
//     without regard to case; other types as exact strings.
//   - Release windows are compared as instants: a bound without a zone is a local time
//     in the window's timeZone, so 2025-12-11T11:58:01 in Europe/Paris equals
//     2025-12-11T10:58:01Z (see releaseEqual). A bound that does not parse compares as
//     a string.

// normalise returns f in canonical form, except its environments (see normaliseEnv).
// Lists already in canonical form are shared with f; callers never change them in place.
func normalise(f *kmodel.Flag) kmodel.Flag {
	n := kmodel.Flag{
		ID:            f.ID,
		SiteCode:      f.SiteCode,
		FeatureKey:    f.FeatureKey,
		Name:          f.Name,
		Description:   f.Description,
		Tags:          tagSet(f.Tags),
		PrimaryGoalID: f.PrimaryGoalID,
		Archived:      f.Archived,
		Source:        f.Source,
	}
	n.AttributionWindow = f.AttributionWindow
	if n.AttributionWindow == 0 {
		n.AttributionWindow = kmodel.DefaultAttributionWindow
	}
	n.BucketingKey = defaultBucketingKey
	if f.BucketingKey != nil && *f.BucketingKey != *defaultBucketingKey {
		bk := *f.BucketingKey
		if bk.BucketingKeyType == "" {
			bk.BucketingKeyType = "VISITOR_CODE"
		}
		n.BucketingKey = &bk
	}
	if len(f.SecondaryGoalIDs) > 0 {
		n.SecondaryGoalIDs = slices.Clone(f.SecondaryGoalIDs)
		slices.Sort(n.SecondaryGoalIDs)
		n.SecondaryGoalIDs = slices.Compact(n.SecondaryGoalIDs)
	}
	// Lists already in normal form are shared, not copied: planning 10,000 flags is
	// mostly allocation. Nothing downstream modifies a normalised list in place.
	n.Variables = f.Variables // allowedValues are compared as sets but sent as written

	if len(f.Variations) > 0 {
		n.Variations = f.Variations
		if slices.ContainsFunc(f.Variations, func(v kmodel.Variation) bool { return !overridesNormal(v.Variables) }) {
			n.Variations = make([]kmodel.Variation, len(f.Variations))
			for i, v := range f.Variations {
				if len(v.Variables) > 0 {
					v.Variables = slices.Clone(v.Variables)
					slices.SortStableFunc(v.Variables, func(a, b kmodel.VariationVariable) int { return strings.Compare(a.Key, b.Key) })
				} else {
					v.Variables = nil
				}
				n.Variations[i] = v
			}
		}
	}
	n.Environments = f.Environments // normalised one by one, see normaliseEnvs
	return n
}

// normaliseEnvs returns a copy of envs with every environment normalised. Updates
// normalise the environments they compare one at a time instead, which spares a map
// per flag.
func normaliseEnvs(envs map[string]kmodel.Environment) map[string]kmodel.Environment {
	if len(envs) == 0 {
		return nil
	}
	out := make(map[string]kmodel.Environment, len(envs))
	for k, e := range envs {
		out[k] = normaliseEnv(e)
	}
	return out
}

func normaliseEnv(e kmodel.Environment) kmodel.Environment {
	n := kmodel.Environment{FeatureEnabled: e.FeatureEnabled, DefaultVariationKey: e.DefaultVariationKey}
	if e.Integrations != nil && (len(e.Integrations.DeliveryRules) > 0 || len(e.Integrations.ExperimentRules) > 0) {
		n.Integrations = &kmodel.Integrations{
			DeliveryRules:   slices.Clone(e.Integrations.DeliveryRules),
			ExperimentRules: slices.Clone(e.Integrations.ExperimentRules),
		}
	}
	if len(e.RolloutRules) > 0 {
		n.RolloutRules = e.RolloutRules
		if !rulesNormal(e.RolloutRules) {
			n.RolloutRules = make([]kmodel.Rule, len(e.RolloutRules))
			for i := range e.RolloutRules {
				n.RolloutRules[i] = normaliseRule(e.RolloutRules[i])
			}
		}
	}
	return n
}

var defaultBucketingKey = &kmodel.BucketingKey{BucketingKeyType: "VISITOR_CODE"}

// overridesNormal reports whether a variation's overrides are already nil or sorted.
func overridesNormal(vs []kmodel.VariationVariable) bool {
	return vs == nil || len(vs) > 0 && slices.IsSortedFunc(vs, func(a, b kmodel.VariationVariable) int { return strings.Compare(a.Key, b.Key) })
}

func rulesNormal(rules []kmodel.Rule) bool {
	for i := range rules {
		if !ruleNormal(&rules[i]) {
			return false
		}
	}
	return true
}

// ruleNormal reports whether normaliseRule would leave r as it is.
func ruleNormal(r *kmodel.Rule) bool {
	if r.State == "" || r.Release != nil && *r.Release == (kmodel.Release{}) {
		return false
	}
	if r.Type == kmodel.RuleExperimentation && r.TrafficAllocationMethod == "" || r.Type != kmodel.RuleExperimentation && r.TrafficAllocationMethod == "MANUAL" {
		return false
	}
	if r.TrafficAllocations != nil && (len(r.TrafficAllocations) == 0 || !slices.IsSortedFunc(r.TrafficAllocations, compareAllocations)) {
		return false
	}
	if r.RollbackConditions != nil && len(r.RollbackConditions) == 0 {
		return false
	}
	for _, c := range r.RollbackConditions {
		if !setNormal(c.Recipients) {
			return false
		}
	}
	return true
}

// setNormal reports whether stringSet(s) would equal s.
func setNormal(s []string) bool {
	if s == nil {
		return true
	}
	if len(s) == 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func normaliseRule(r kmodel.Rule) kmodel.Rule {
	if r.State == "" {
		r.State = kmodel.StateActive
	}
	switch {
	case r.Type == kmodel.RuleExperimentation && r.TrafficAllocationMethod == "":
		r.TrafficAllocationMethod = "MANUAL"
	case r.Type != kmodel.RuleExperimentation && r.TrafficAllocationMethod == "MANUAL":
		r.TrafficAllocationMethod = ""
	}
	// Pointers (exposition, release) and lists already in canonical form are shared.
	switch {
	case len(r.TrafficAllocations) == 0:
		r.TrafficAllocations = nil
	case !slices.IsSortedFunc(r.TrafficAllocations, compareAllocations):
		r.TrafficAllocations = slices.Clone(r.TrafficAllocations)
		slices.SortStableFunc(r.TrafficAllocations, compareAllocations)
	}
	if r.Release != nil && *r.Release == (kmodel.Release{}) {
		r.Release = nil
	}
	switch {
	case len(r.RollbackConditions) == 0:
		r.RollbackConditions = nil
	case slices.ContainsFunc(r.RollbackConditions, func(c kmodel.RollbackCondition) bool { return !setNormal(c.Recipients) }):
		rcs := make([]kmodel.RollbackCondition, len(r.RollbackConditions))
		for i, c := range r.RollbackConditions {
			c.Recipients = stringSet(c.Recipients)
			rcs[i] = c
		}
		r.RollbackConditions = rcs
	}
	return r
}

func compareAllocations(a, b kmodel.TrafficAllocation) int {
	return strings.Compare(a.VariationKey, b.VariationKey)
}

// tagSet is the tags as a sorted set without flagsync's ownership tag.
func tagSet(tags []string) []string {
	if setNormal(tags) && !slices.Contains(tags, kmodel.OwnershipTag) {
		return tags
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t != kmodel.OwnershipTag {
			out = append(out, t)
		}
	}
	return stringSet(out)
}

// stringSet is a sorted copy of s without duplicates, nil when empty.
func stringSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func hasTag(tags []string, tag string) bool { return slices.Contains(tags, tag) }

// --- comparisons of normalised values --------------------------------------------------

func stringsEqual(a, b []string) bool { return slices.Equal(a, b) }

func bucketingEqual(a, b *kmodel.BucketingKey) bool {
	// Both sides are normalised, so neither is nil.
	return *a == *b
}

// valueEqual compares two variable values of the given type.
func valueEqual(typ, a, b string) bool {
	if a == b {
		return true
	}
	switch typ {
	case kmodel.TypeJSON:
		var x, y any
		if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
			return false
		}
		return reflect.DeepEqual(x, y)
	case kmodel.TypeNumber:
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		return err1 == nil && err2 == nil && x == y
	case kmodel.TypeBoolean:
		return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return false
}

func variableEqual(a, b *kmodel.Variable) bool {
	return a.Key == b.Key && a.Type == b.Type && valueEqual(a.Type, a.Value, b.Value) &&
		setEqual(a.AllowedValues, b.AllowedValues)
}

// setEqual compares two string lists as sets.
func setEqual(a, b []string) bool {
	return slices.Equal(a, b) || slices.Equal(stringSet(a), stringSet(b))
}

// variableTypes maps each flag-level variable key to its type, to compare the values
// of variation overrides by type.
func variableTypes(vars []kmodel.Variable) map[string]string {
	m := make(map[string]string, len(vars))
	for _, v := range vars {
		m[v.Key] = v.Type
	}
	return m
}

func overridesEqual(a, b []kmodel.VariationVariable, typesA, typesB map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key {
			return false
		}
		ta, tb := typesA[a[i].Key], typesB[b[i].Key]
		if ta != tb {
			ta = ""
		}
		if !valueEqual(ta, a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func variationEqual(a, b *kmodel.Variation, typesA, typesB map[string]string) bool {
	return a.Key == b.Key && a.Name == b.Name && overridesEqual(a.Variables, b.Variables, typesA, typesB)
}

func envEqual(a, b *kmodel.Environment) bool {
	if a.FeatureEnabled != b.FeatureEnabled || a.DefaultVariationKey != b.DefaultVariationKey {
		return false
	}
	if !integrationsEqual(a.Integrations, b.Integrations) || len(a.RolloutRules) != len(b.RolloutRules) {
		return false
	}
	for i := range a.RolloutRules {
		if !ruleEqual(&a.RolloutRules[i], &b.RolloutRules[i]) {
			return false
		}
	}
	return true
}

// integrationsEqual compares integration elements as JSON: they may come from YAML
// (ints) on one side and JSON (float64) on the other.
func integrationsEqual(a, b *kmodel.Integrations) bool {
	if a == nil || b == nil {
		return a == b
	}
	return canonicalJSON(a) == canonicalJSON(b)
}

// canonicalJSON encodes v, decodes it to plain values and encodes that again, so that
// equal JSON values give equal strings (maps sort their keys, numbers are float64).
func canonicalJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "!" + err.Error()
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return string(b)
	}
	out, err := json.Marshal(x)
	if err != nil {
		return string(b)
	}
	return string(out)
}

func ruleEqual(a, b *kmodel.Rule) bool {
	return a.Name == b.Name && a.Type == b.Type && a.State == b.State && a.SegmentID == b.SegmentID &&
		floatPtrEqual(a.Exposition, b.Exposition) && a.VariationKey == b.VariationKey &&
		a.ControlVariationKey == b.ControlVariationKey && a.TrafficAllocationMethod == b.TrafficAllocationMethod &&
		slices.Equal(a.TrafficAllocations, b.TrafficAllocations) && a.Reallocation == b.Reallocation &&
		releaseEqual(a.Release, b.Release) && rollbacksEqual(a.RollbackConditions, b.RollbackConditions)
}

func floatPtrEqual(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// releaseEqual compares two release windows by the instants they name, not by how the
// instants are spelt: Git writes a local time in the window's timeZone (as the vendor
// tutorial does), and the API may read it back so, or as a UTC instant with a Z, or with
// an offset. 2025-12-11T11:58:01 in Europe/Paris is 2025-12-11T10:58:01Z. The timeZone
// itself must be the same on both sides: it is what Kameleoon shows and evaluates the
// window in.
func releaseEqual(a, b *kmodel.Release) bool {
	if a == nil || b == nil {
		return a == b
	}
	if *a == *b {
		return true
	}
	return a.TimeZone == b.TimeZone &&
		instantEqual(a.ReleaseFrom, b.ReleaseFrom, a.TimeZone) && instantEqual(a.ReleaseTo, b.ReleaseTo, a.TimeZone)
}

// instantEqual compares two bounds of a release window in timeZone. A bound with a zone
// (Z or an offset) is that instant; one without is a local time in timeZone, or in UTC
// when timeZone is empty. A bound that does not parse, or a timeZone that is not known,
// compares as a string: flagsync never guesses an instant.
func instantEqual(a, b, timeZone string) bool {
	if a == b {
		return true
	}
	ta, okA := releaseInstant(a, timeZone)
	tb, okB := releaseInstant(b, timeZone)
	return okA && okB && ta.Equal(tb)
}

// releaseLocalLayouts are the forms of a bound without a zone; time.RFC3339Nano reads
// those with one (Z or ±hh:mm, with or without fractional seconds).
var releaseLocalLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"}

func releaseInstant(s, timeZone string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	loc, ok := location(timeZone)
	if !ok {
		return time.Time{}, false
	}
	for _, layout := range releaseLocalLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// locations caches time.LoadLocation, which reads the zone database on every call. It
// is only ever filled with the same answer for the same name, so planning stays pure.
var locations sync.Map // name → *time.Location, or nil for an unknown name

func location(name string) (*time.Location, bool) {
	if name == "" {
		return time.UTC, true
	}
	if v, ok := locations.Load(name); ok {
		loc, _ := v.(*time.Location)
		return loc, loc != nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		// "Local" is the machine's zone, not the window's: never an answer.
		locations.Store(name, (*time.Location)(nil))
		return nil, false
	}
	locations.Store(name, loc)
	return loc, true
}

func rollbacksEqual(a, b []kmodel.RollbackCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !rollbackEqual(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

func rollbackEqual(a, b *kmodel.RollbackCondition) bool {
	return a.Target == b.Target && a.Criteria == b.Criteria && a.ComparisonOperator == b.ComparisonOperator &&
		a.MatchValue == b.MatchValue && a.GoalID == b.GoalID && a.Visitors == b.Visitors &&
		stringsEqual(a.Recipients, b.Recipients)
}
