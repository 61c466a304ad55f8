package ksandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Defaults the sandbox fills in, as in the vendor tutorial's create response.
const (
	defaultAttributionWindow int64 = 604800000 // 7 days in ms; also what `attributionWindow: null` resets to
	defaultCreatedByID       int64 = 34255
	defaultHealth                  = "HEALTHY"
	defaultRuleState               = "ACTIVE"
)

// First ids handed out, taken from the vendor tutorial so that its first flag, rule,
// experiment and rollback condition get exactly the ids its responses show.
const (
	firstFlagID              int64 = 13134
	firstRuleID              int64 = 20557
	firstExperimentID        int64 = 354972
	firstRollbackConditionID int64 = 648
)

// idCounters are the next ids to hand out. A write works on a copy and the copy replaces
// the server's counters only when the write succeeds.
type idCounters struct {
	Flag              int64 `json:"flag"`
	Rule              int64 `json:"rule"`
	Experiment        int64 `json:"experiment"`
	RollbackCondition int64 `json:"rollbackCondition"`
}

func newIDCounters() idCounters {
	return idCounters{Flag: firstFlagID, Rule: firstRuleID, Experiment: firstExperimentID, RollbackCondition: firstRollbackConditionID}
}

func take(p *int64) int64 {
	v := *p
	*p++
	return v
}

// seen raises the counters above the ids f already uses (seeded and loaded flags).
func (c *idCounters) seen(f *flagDoc) {
	c.Flag = max(c.Flag, f.ID+1)
	for _, e := range f.EnvironmentConfigurations {
		for _, r := range e.RolloutRules {
			c.Rule = max(c.Rule, r.ID+1)
			c.Experiment = max(c.Experiment, r.ExperimentID+1)
			for _, rc := range r.RollbackConditions {
				c.RollbackCondition = max(c.RollbackCondition, rc.ID+1)
			}
		}
	}
}

// problems collects everything wrong with a body, so one 400 names all of it.
type problems []string

func (p *problems) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	*p = append(*p, msg)
}

func (p problems) message() string { return strings.Join(p, "; ") }

// builder turns a write-shape flag into a stored flag.
type builder struct {
	envs  []string    // the project's environments, in listing order
	ids   *idCounters // where new ids come from
	seed  bool        // a read-shape seed: keep ids, dates, status and archived as given
	probs problems

	// orderIndex (the order-index variant): rules take the orderIndex they are sent with,
	// else keep the one they had, else their position; an environment's rules are
	// ordered by it. Otherwise orderIndex is the position and a sent one is ignored.
	orderIndex bool
	// zonedDates (the zoned-dates variant): release window bounds are stored as UTC
	// instants with a Z. Seeds keep theirs as given.
	zonedDates bool
}

// flag builds the stored flag that w describes. prev is the flag as stored before the
// write (nil for a create or seed): rules and rollback conditions sent with an id must
// exist there, and they keep their id and experiment. Dates are left to stamp.
func (b *builder) flag(w *wFlag, prev *flagDoc) *flagDoc {
	f := &flagDoc{
		SiteCode:          val(w.SiteCode),
		FeatureKey:        val(w.FeatureKey),
		Name:              val(w.Name),
		Description:       val(w.Description),
		Tags:              nonNil(val(w.Tags)),
		PrimaryGoalID:     w.PrimaryGoalID,
		SecondaryGoalIDs:  nonNil(val(w.SecondaryGoalIDs)),
		AttributionWindow: defaultAttributionWindow,
		Health:            defaultHealth,
		CreatedByID:       defaultCreatedByID,
		Archived:          val(w.IsArchived),
	}
	if w.SiteCode == nil {
		b.probs.add("siteCode", "required")
	}
	if w.FeatureKey == nil {
		b.probs.add("featureKey", "required")
	}
	if w.Name == nil {
		b.probs.add("name", "required")
	}
	if w.AttributionWindow != nil {
		f.AttributionWindow = *w.AttributionWindow
	}
	if w.BucketingKey != nil {
		f.BucketingKey = &bucketingKey{BucketingKeyType: val(w.BucketingKey.BucketingKeyType), CustomDataID: w.BucketingKey.CustomDataID}
	}
	f.Variables = b.variables(val(w.Variables))
	f.Variations = b.variations(w.Variations, f.Variables)

	switch {
	case prev != nil:
		f.ID, f.CreatedByID, f.Health = prev.ID, prev.CreatedByID, prev.Health
		f.DateCreated, f.DateModified, f.DateContentModified = prev.DateCreated, prev.DateModified, prev.DateContentModified
	case b.seed:
		f.ID = val(w.ID)
		if f.ID == 0 {
			f.ID = take(&b.ids.Flag)
		}
		if w.CreatedByID != nil {
			f.CreatedByID = *w.CreatedByID
		}
		if w.Health != nil {
			f.Health = *w.Health
		}
		f.DateCreated, f.DateModified, f.DateContentModified = val(w.DateCreated), val(w.DateModified), val(w.DateContentModified)
	default:
		f.ID = take(&b.ids.Flag)
	}
	if b.seed && w.Archived != nil {
		f.Archived = *w.Archived
	}

	f.EnvironmentConfigurations = b.environments(val(w.EnvironmentConfigurations), prev, f.Variations)
	return f
}

func (b *builder) variables(ws []wVariable) []variable {
	out := make([]variable, 0, len(ws))
	for i, w := range ws {
		path := fmt.Sprintf("variables[%d]", i)
		v := variable{Key: val(w.Key), Type: val(w.Type), Value: val(w.Value)}
		if w.Value == nil {
			b.probs.add(path+".value", "required")
		}
		if w.AllowedValues != nil {
			v.AllowedValues = nonNil(*w.AllowedValues)
		}
		out = append(out, v)
	}
	return out
}

// defaultVariations are what a flag created without `variations` gets (the variations
// Kameleoon's own UI starts a flag with).
func defaultVariations() []variation {
	return []variation{
		{Name: "Off", Key: "off", Variables: []variationVariable{}},
		{Name: "On", Key: "on", Variables: []variationVariable{}},
	}
}

func (b *builder) variations(ws *[]wVariation, vars []variable) []variation {
	if ws == nil {
		return defaultVariations()
	}
	types := make(map[string]string, len(vars))
	for _, v := range vars {
		types[v.Key] = v.Type
	}
	out := make([]variation, 0, len(*ws))
	for i, w := range *ws {
		path := fmt.Sprintf("variations[%d]", i)
		v := variation{Key: val(w.Key), Name: val(w.Name), Variables: []variationVariable{}}
		for j, x := range val(w.Variables) {
			xp := fmt.Sprintf("%s.variables[%d]", path, j)
			vv := variationVariable{Key: val(x.Key), Value: val(x.Value), Type: types[val(x.Key)]}
			if x.Value == nil {
				b.probs.add(xp+".value", "required")
			}
			if x.Type != nil && vv.Type != "" && *x.Type != vv.Type {
				b.probs.add(xp+".type", "%q does not match the type %q of variable %q", *x.Type, vv.Type, vv.Key)
			}
			v.Variables = append(v.Variables, vv)
		}
		out = append(out, v)
	}
	return out
}

// environmentDefaults are what an environment gets when it is not sent on create, and
// what featureEnabled and defaultVariationKey reset to when absent or null: the vendor
// tutorial's create response has development enabled serving `on`, every other
// environment disabled serving `off`. A flag without that variation serves its first one.
func environmentDefaults(key string, vs []variation) (enabled bool, variationKey string) {
	want := "off"
	if key == "development" {
		enabled, want = true, "on"
	}
	for _, v := range vs {
		if v.Key == want {
			return enabled, want
		}
	}
	if len(vs) > 0 {
		return enabled, vs[0].Key
	}
	return enabled, ""
}

func (b *builder) environments(ws []wEnvironment, prev *flagDoc, vs []variation) []environment {
	given := make(map[string]*wEnvironment, len(ws))
	for i := range ws {
		path := fmt.Sprintf("environmentConfigurations[%d].environmentKey", i)
		key := val(ws[i].EnvironmentKey)
		switch {
		case key == "":
			b.probs.add(path, "required")
		case !slices.Contains(b.envs, key):
			b.probs.add(path, "unknown environment %q (the project's environments are %s)", key, strings.Join(b.envs, ", "))
		case given[key] != nil:
			b.probs.add(path, "environment %q is listed twice", key)
		default:
			given[key] = &ws[i]
		}
	}
	out := make([]environment, 0, len(b.envs))
	for _, key := range b.envs {
		var prevEnv *environment
		if prev != nil {
			prevEnv = prev.environment(key)
		}
		switch w := given[key]; {
		case w != nil:
			out = append(out, b.environment(key, w, prevEnv, vs))
		case prevEnv != nil:
			out = append(out, *prevEnv)
		default:
			enabled, dv := environmentDefaults(key, vs)
			out = append(out, environment{
				EnvironmentKey: key, FeatureEnabled: enabled, DefaultVariationKey: dv,
				RolloutRules: []rule{}, Integrations: emptyIntegrations(),
			})
		}
	}
	return out
}

func emptyIntegrations() integrations {
	return integrations{DeliveryRules: []json.RawMessage{}, ExperimentRules: []json.RawMessage{}}
}

func (b *builder) environment(key string, w *wEnvironment, prev *environment, vs []variation) environment {
	enabled, dv := environmentDefaults(key, vs)
	e := environment{EnvironmentKey: key, FeatureEnabled: enabled, DefaultVariationKey: dv, Integrations: emptyIntegrations()}
	if w.FeatureEnabled != nil {
		e.FeatureEnabled = *w.FeatureEnabled
	}
	if val(w.DefaultVariationKey) != "" {
		e.DefaultVariationKey = *w.DefaultVariationKey
	}
	if w.Integrations != nil {
		e.Integrations.DeliveryRules = nonNil(val(w.Integrations.DeliveryRules))
		e.Integrations.ExperimentRules = nonNil(val(w.Integrations.ExperimentRules))
	}
	if b.seed {
		e.DateModified = val(w.DateModified)
	} else if prev != nil {
		e.DateModified = prev.DateModified
	}
	path := "environmentConfigurations[" + key + "]"
	ids := map[int64]bool{}
	e.RolloutRules = make([]rule, 0)
	for i := range val(w.RolloutRules) {
		wr := &(*w.RolloutRules)[i]
		rp := fmt.Sprintf("%s.rolloutRules[%d]", path, i)
		if wr.ID != nil {
			if ids[*wr.ID] {
				b.probs.add(rp+".id", "rule %d is listed twice", *wr.ID)
			}
			ids[*wr.ID] = true
		}
		e.RolloutRules = append(e.RolloutRules, b.rule(rp, key, wr, prev, i))
	}
	if b.orderIndex {
		slices.SortStableFunc(e.RolloutRules, func(x, y rule) int { return cmp.Compare(x.OrderIndex, y.OrderIndex) })
	}
	return e
}

func (b *builder) rule(path, envKey string, w *wRule, prevEnv *environment, index int) rule {
	r := rule{
		Name:                    val(w.Name),
		Type:                    val(w.Type),
		OrderIndex:              index,
		Variations:              nonNil(val(w.Variations)),
		SegmentID:               w.SegmentID,
		Exposition:              w.Exposition,
		VariationKey:            val(w.VariationKey),
		ControlVariationKey:     val(w.ControlVariationKey),
		TrafficAllocationMethod: val(w.TrafficAllocationMethod),
		MultiArmedBandit:        val(w.MultiArmedBandit),
		Reallocation:            val(w.Reallocation),
		Status:                  defaultRuleState,
	}
	if ts := bytes.TrimSpace(w.ReallocationTimestamp); len(ts) > 0 && string(ts) != "null" {
		r.ReallocationTimestamp = append(json.RawMessage(nil), ts...)
	}
	switch {
	case w.State != nil:
		r.Status = *w.State
	case b.seed && w.Status != nil:
		r.Status = *w.Status
	}
	if r.MultiArmedBandit && r.TrafficAllocationMethod == "" {
		r.TrafficAllocationMethod = "MULTI_ARMED_BANDIT"
	}
	if w.Release != nil {
		r.Release = &release{ReleaseFrom: val(w.Release.ReleaseFrom), ReleaseTo: val(w.Release.ReleaseTo), TimeZone: val(w.Release.TimeZone)}
		if b.zonedDates && !b.seed {
			b.zoneRelease(path, r.Release)
		}
	}

	prevRule := b.ruleIdentity(&r, path, envKey, w, prevEnv)
	if b.orderIndex {
		switch {
		case w.OrderIndex != nil:
			r.OrderIndex = int(*w.OrderIndex)
		case prevRule != nil:
			r.OrderIndex = prevRule.OrderIndex
		}
	}
	b.automate(&r, w, prevRule)
	r.TrafficAllocations = b.allocations(path, val(w.TrafficAllocations))
	r.RollbackConditions = b.rollbackConditions(path, val(w.RollbackConditions), prevRule)
	return r
}

// ruleIdentity gives r its id and experiment id: a seeded rule's own, a persisted rule's
// (which it returns), or new ones.
func (b *builder) ruleIdentity(r *rule, path, envKey string, w *wRule, prevEnv *environment) *rule {
	var prevRule *rule
	switch {
	case w.ID != nil && b.seed:
		r.ID = *w.ID
		r.ExperimentID = val(w.ExperimentID)
		if r.ExperimentID == 0 {
			r.ExperimentID = take(&b.ids.Experiment)
		}
	case w.ID != nil:
		if prevEnv != nil {
			prevRule = prevEnv.rule(*w.ID)
		}
		if prevRule == nil {
			b.probs.add(path+".id", "rule %d does not exist in environment %q (send a new rule without an id)", *w.ID, envKey)
		} else {
			r.ID, r.ExperimentID = prevRule.ID, prevRule.ExperimentID
		}
	default:
		r.ID = take(&b.ids.Rule)
		r.ExperimentID = take(&b.ids.Experiment)
	}
	return prevRule
}

// allocations builds a rule's traffic allocations.
func (b *builder) allocations(path string, ws []wTrafficAllocation) []trafficAllocation {
	out := make([]trafficAllocation, 0)
	for i, a := range ws {
		ap := fmt.Sprintf("%s.trafficAllocations[%d]", path, i)
		if a.VariationKey == nil {
			b.probs.add(ap+".variationKey", "required")
		}
		if a.Exposition == nil {
			b.probs.add(ap+".exposition", "required")
		}
		out = append(out, trafficAllocation{VariationKey: val(a.VariationKey), Exposition: val(a.Exposition), VariationID: a.VariationID})
	}
	return out
}

// rollbackConditions builds a rule's rollback conditions: each keeps its id when the
// persisted rule has it, or gets a new one.
func (b *builder) rollbackConditions(path string, ws []wRollbackCondition, prevRule *rule) []rollbackCondition {
	out := make([]rollbackCondition, 0)
	ids := map[int64]bool{}
	for i, c := range ws {
		cp := fmt.Sprintf("%s.rollbackConditions[%d]", path, i)
		rc := rollbackCondition{
			Target: val(c.Target), Criteria: val(c.Criteria), ComparisonOperator: val(c.ComparisonOperator),
			MatchValue: val(c.MatchValue), GoalID: c.GoalID, Visitors: c.Visitors, Recipients: nonNil(val(c.Recipients)),
		}
		if c.MatchValue == nil {
			b.probs.add(cp+".matchValue", "required")
		}
		switch {
		case c.ID != nil && ids[*c.ID]:
			b.probs.add(cp+".id", "rollback condition %d is listed twice", *c.ID)
		case c.ID != nil && b.seed:
			rc.ID = *c.ID
		case c.ID != nil:
			if prevRule == nil || !prevRule.hasCondition(*c.ID) {
				b.probs.add(cp+".id", "rollback condition %d does not exist in this rule (send a new condition without an id)", *c.ID)
			}
			rc.ID = *c.ID
		default:
			rc.ID = take(&b.ids.RollbackCondition)
		}
		if c.ID != nil {
			ids[*c.ID] = true
		}
		out = append(out, rc)
	}
	return out
}

// zoneRelease rewrites a release window's bounds as UTC instants (the zoned-dates
// variant).
func (b *builder) zoneRelease(path string, r *release) {
	for _, bound := range []*string{&r.ReleaseFrom, &r.ReleaseTo} {
		z, err := zonedRelease(*bound, r.TimeZone)
		if err != nil {
			b.probs.add(path+".release.timeZone", "%v", err)
			return
		}
		*bound = z
	}
}

func (f *flagDoc) environment(key string) *environment {
	for i := range f.EnvironmentConfigurations {
		if f.EnvironmentConfigurations[i].EnvironmentKey == key {
			return &f.EnvironmentConfigurations[i]
		}
	}
	return nil
}

func (e *environment) rule(id int64) *rule {
	for i := range e.RolloutRules {
		if e.RolloutRules[i].ID == id {
			return &e.RolloutRules[i]
		}
	}
	return nil
}

func (r *rule) hasCondition(id int64) bool {
	for _, c := range r.RollbackConditions {
		if c.ID == id {
			return true
		}
	}
	return false
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
