package kameleoon

import (
	"math"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/policy"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/schema"
)

// FlagSchema is the schema of a Kameleoon flag file: flagsync.yaml's policies are
// compiled against it (reconcile.FlagShaper).
func (kameleoon) FlagSchema() []byte { return schema.Flag() }

// PolicyDocuments returns each flag's file content and live flag in the flag file's shape,
// for flagsync.yaml's policies (reconcile.PolicyRepo). Both are the model as its JSON
// names write it (flagDoc), so that a policy compares staging's live rules with
// production's rules in Git field for field.
func (s *run) PolicyDocuments(flags []plan.Address) []reconcile.PolicyDocument {
	desired := make(map[plan.Address]*kmodel.Flag, len(s.desired.Flags))
	for i := range s.desired.Flags {
		desired[kplan.AddressOf(s.desired.Flags[i].Ref(), "")] = &s.desired.Flags[i]
	}
	live := make(map[plan.Address]*kmodel.Flag, len(s.live))
	for i := range s.live {
		live[kplan.AddressOf(s.live[i].Ref(), "")] = &s.live[i]
	}
	out := make([]reconcile.PolicyDocument, len(flags))
	for i, a := range flags {
		if d := desired[a.Flag()]; d != nil {
			out[i].Flag, out[i].File, out[i].Line = flagDoc(d), d.Source.File, d.Source.Line
		}
		if l := live[a.Flag()]; l != nil {
			out[i].Live = flagDoc(l)
		}
	}
	return out
}

// flagDoc is f as plain data, exactly as policy.Plain makes it through f's JSON encoding
// once resolved (a test holds the two equal), written by hand because a policy step
// converts every changed flag: 10,000 flags through encoding/json would cost more than
// evaluating the policies. Environments, variables and variations are policy.Lazy: built
// only when a policy reads them (most read production alone, or nothing).
func flagDoc(f *kmodel.Flag) map[string]any {
	m := make(map[string]any, 16)
	m["siteCode"], m["featureKey"], m["name"] = f.SiteCode, f.FeatureKey, f.Name
	setString(m, "description", f.Description)
	if len(f.Tags) > 0 {
		m["tags"] = anyStrings(f.Tags)
	}
	setInt(m, "attributionWindow", f.AttributionWindow)
	if f.BucketingKey != nil {
		bk := map[string]any{"bucketingKeyType": f.BucketingKey.BucketingKeyType}
		setInt(bk, "customDataId", f.BucketingKey.CustomDataID)
		m["bucketingKey"] = bk
	}
	setInt(m, "primaryGoalId", f.PrimaryGoalID)
	if len(f.SecondaryGoalIDs) > 0 {
		ids := make([]any, len(f.SecondaryGoalIDs))
		for i, id := range f.SecondaryGoalIDs {
			ids[i] = id
		}
		m["secondaryGoalIds"] = ids
	}
	if len(f.Variables) > 0 {
		m["variables"] = policy.NewLazy(func() any { return variablesDoc(f.Variables) })
	}
	if len(f.Variations) > 0 {
		m["variations"] = policy.NewLazy(func() any { return variationsDoc(f.Variations) })
	}
	if len(f.Environments) > 0 {
		envs := make(map[string]any, len(f.Environments))
		for k := range f.Environments {
			e := f.Environments[k]
			envs[k] = policy.NewLazy(func() any { return environmentDoc(&e) })
		}
		m["environments"] = envs
	}
	if f.Archived {
		m["archived"] = true
	}
	if len(f.Ignore) > 0 {
		m["ignore"] = anyStrings(f.Ignore)
	}
	setString(m, "owner", f.Owner)
	setString(m, "expires", f.Expires)
	if f.Permanent {
		m["permanent"] = true
	}
	return m
}

func variablesDoc(vars []kmodel.Variable) []any {
	vs := make([]any, len(vars))
	for i, v := range vars {
		vm := map[string]any{"key": v.Key, "type": v.Type, "value": v.Value}
		if len(v.AllowedValues) > 0 {
			vm["allowedValues"] = anyStrings(v.AllowedValues)
		}
		vs[i] = vm
	}
	return vs
}

func variationsDoc(variations []kmodel.Variation) []any {
	vs := make([]any, len(variations))
	for i, v := range variations {
		vm := map[string]any{"key": v.Key}
		setString(vm, "name", v.Name)
		if len(v.Variables) > 0 {
			ov := make([]any, len(v.Variables))
			for j, x := range v.Variables {
				ov[j] = map[string]any{"key": x.Key, "value": x.Value}
			}
			vm["variables"] = ov
		}
		vs[i] = vm
	}
	return vs
}

func environmentDoc(e *kmodel.Environment) map[string]any {
	m := make(map[string]any, 4)
	m["featureEnabled"] = e.FeatureEnabled
	setString(m, "defaultVariationKey", e.DefaultVariationKey)
	if len(e.RolloutRules) > 0 {
		rules := make([]any, len(e.RolloutRules))
		for i := range e.RolloutRules {
			rules[i] = ruleDoc(&e.RolloutRules[i])
		}
		m["rolloutRules"] = rules
	}
	if e.Integrations != nil {
		in := map[string]any{}
		if len(e.Integrations.DeliveryRules) > 0 {
			in["deliveryRules"] = plainList(e.Integrations.DeliveryRules)
		}
		if len(e.Integrations.ExperimentRules) > 0 {
			in["experimentRules"] = plainList(e.Integrations.ExperimentRules)
		}
		m["integrations"] = in
	}
	return m
}

func ruleDoc(r *kmodel.Rule) map[string]any {
	m := make(map[string]any, 8)
	m["name"], m["type"] = r.Name, r.Type
	setString(m, "state", r.State)
	setInt(m, "segmentId", r.SegmentID)
	if r.Exposition != nil {
		m["exposition"] = number(*r.Exposition)
	}
	setString(m, "variationKey", r.VariationKey)
	setString(m, "controlVariationKey", r.ControlVariationKey)
	setString(m, "trafficAllocationMethod", r.TrafficAllocationMethod)
	if len(r.TrafficAllocations) > 0 {
		ts := make([]any, len(r.TrafficAllocations))
		for i, t := range r.TrafficAllocations {
			ts[i] = map[string]any{"variationKey": t.VariationKey, "exposition": number(t.Exposition)}
		}
		m["trafficAllocations"] = ts
	}
	if r.Reallocation {
		m["reallocation"] = true
	}
	if r.Release != nil {
		rel := map[string]any{}
		setString(rel, "releaseFrom", r.Release.ReleaseFrom)
		setString(rel, "releaseTo", r.Release.ReleaseTo)
		setString(rel, "timeZone", r.Release.TimeZone)
		m["release"] = rel
	}
	if len(r.RollbackConditions) > 0 {
		cs := make([]any, len(r.RollbackConditions))
		for i, c := range r.RollbackConditions {
			cm := make(map[string]any, 8)
			cm["target"], cm["criteria"], cm["comparisonOperator"], cm["matchValue"] = c.Target, c.Criteria, c.ComparisonOperator, number(c.MatchValue)
			setInt(cm, "goalId", c.GoalID)
			setInt(cm, "visitors", c.Visitors)
			if len(c.Recipients) > 0 {
				cm["recipients"] = anyStrings(c.Recipients)
			}
			cs[i] = cm
		}
		m["rollbackConditions"] = cs
	}
	return m
}

func setString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func setInt(m map[string]any, k string, v int64) {
	if v != 0 {
		m[k] = v
	}
}

func anyStrings(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// number is f as a JSON round trip reads it back: an int64 when it is integral (JSON
// writes 50.0 as 50), a float64 otherwise.
func number(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return int64(f)
	}
	return f
}

// plainList is undocumented JSON kept as decoded (integrations: maps, lists, strings,
// float64, bools), as plain data: its numbers as a JSON round trip reads them back.
func plainList(l []any) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = plainJSON(v)
	}
	return out
}

func plainJSON(v any) any {
	switch t := v.(type) {
	case float64:
		return number(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = plainJSON(e)
		}
		return m
	case []any:
		return plainList(t)
	}
	if p, err := policy.Plain(v); err == nil {
		return p
	}
	return v
}
