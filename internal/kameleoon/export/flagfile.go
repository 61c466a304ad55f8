package kexport

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// flagDocument builds the YAML of one flag. Keys come in a fixed order: siteCode,
// featureKey, name, description, tags, archived, variables, variations, goals,
// bucketingKey, attributionWindow, environments. What the planner counts as a default
// (normalise.go in internal/kameleoon/plan) is left out, and server-owned fields (ids, dates,
// health) are not part of the model. It returns notes on what could not be written.
func flagDocument(f *kmodel.Flag, siteCode string, withSite bool) (*yaml.Node, []string, error) {
	m := export.NewMapping()
	if withSite {
		m.Add("siteCode", export.Str(siteCode))
	}
	m.Add("featureKey", export.Str(f.FeatureKey))
	m.Add("name", export.Str(f.Name))
	if f.Description != "" {
		m.Add("description", export.Str(f.Description))
	}
	if tags := tagSet(f.Tags); len(tags) > 0 {
		m.Add("tags", export.StrSeq(tags))
	}
	if f.Archived {
		m.AddComment("archived", export.BoolNode(true), "Archived in Kameleoon: flagsync leaves an archived flag as it is. Set archived: false to restore it.")
	}
	if len(f.Variables) > 0 {
		m.Add("variables", variablesNode(f.Variables))
	}
	if len(f.Variations) > 0 {
		m.Add("variations", variationsNode(f))
	}
	if f.PrimaryGoalID != 0 {
		m.Add("primaryGoalId", export.IntNode(f.PrimaryGoalID))
	}
	if goals := int64Set(f.SecondaryGoalIDs); len(goals) > 0 {
		m.Add("secondaryGoalIds", export.IntSeq(goals))
	}
	if bk := f.BucketingKey; bk != nil && *bk != (kmodel.BucketingKey{BucketingKeyType: "VISITOR_CODE"}) && *bk != (kmodel.BucketingKey{}) {
		bm := export.NewMapping()
		typ := bk.BucketingKeyType
		if typ == "" {
			typ = "VISITOR_CODE" // what the planner reads an empty type as
		}
		bm.Add("bucketingKeyType", export.Str(typ))
		if bk.CustomDataID != 0 {
			bm.Add("customDataId", export.IntNode(bk.CustomDataID))
		}
		m.Add("bucketingKey", bm.Node())
	}
	if w := f.AttributionWindow; w != 0 && w != kmodel.DefaultAttributionWindow {
		m.Add("attributionWindow", export.IntNode(w))
	}

	envs, notes, err := environmentsNode(f)
	if err != nil {
		return nil, nil, err
	}
	if envs.Len() > 0 {
		m.Add("environments", envs.Node())
	}
	return m.Node(), notes, nil
}

// variablesNode is the flag-level variables.
func variablesNode(vars []kmodel.Variable) *yaml.Node {
	items := make([]*yaml.Node, len(vars))
	for i, v := range vars {
		vm := export.NewMapping()
		vm.Add("key", export.Str(v.Key))
		vm.Add("type", export.Str(v.Type))
		vm.Add("value", export.Str(value(v.Type, v.Value)))
		if len(v.AllowedValues) > 0 {
			vm.Add("allowedValues", export.StrSeq(v.AllowedValues))
		}
		items[i] = vm.Node()
	}
	return export.Seq(items...)
}

// variationsNode is the variations, with their overrides written as their variable's
// type reads them.
func variationsNode(f *kmodel.Flag) *yaml.Node {
	types := make(map[string]string, len(f.Variables))
	for _, v := range f.Variables {
		types[v.Key] = v.Type
	}
	items := make([]*yaml.Node, len(f.Variations))
	for i, v := range f.Variations {
		vm := export.NewMapping()
		vm.Add("key", export.Str(v.Key))
		if v.Name != "" {
			vm.Add("name", export.Str(v.Name))
		}
		if len(v.Variables) > 0 {
			overrides := make([]*yaml.Node, len(v.Variables))
			for j, o := range v.Variables {
				om := export.NewMapping()
				om.Add("key", export.Str(o.Key))
				om.Add("value", export.Str(value(types[o.Key], o.Value)))
				overrides[j] = om.Node()
			}
			vm.Add("variables", export.Seq(overrides...))
		}
		items[i] = vm.Node()
	}
	return export.Seq(items...)
}

// environmentsNode is the environments that have a default variation, in the export's
// order, and a note on each left out.
func environmentsNode(f *kmodel.Flag) (export.Mapping, []string, error) {
	var notes []string
	envs := export.NewMapping()
	for _, k := range export.OrderEnvironments(f.EnvironmentKeys()) {
		env := f.Environments[k]
		if env.DefaultVariationKey == "" {
			// A flag file must name the default variation of every environment it lists;
			// an environment left out is not touched by flagsync, which is exactly how
			// it is now.
			notes = append(notes, fmt.Sprintf("environment %s is not in the file: Kameleoon has no default variation for it, and flagsync leaves environments that are not listed as they are", k))
			continue
		}
		n, err := environmentNode(env)
		if err != nil {
			return export.Mapping{}, nil, fmt.Errorf("environment %s: %w", k, err)
		}
		envs.Add(k, n)
	}
	return envs, notes, nil
}

// value is a variable value as it is written: the live text, except that BOOLEAN and
// NUMBER values lose surrounding blanks and BOOLEAN values are lower-cased, which the
// planner treats as equal and the loader requires.
func value(typ, v string) string {
	switch typ {
	case kmodel.TypeBoolean:
		if t := strings.TrimSpace(v); strings.EqualFold(t, "true") || strings.EqualFold(t, "false") {
			return strings.ToLower(t)
		}
	case kmodel.TypeNumber:
		t := strings.TrimSpace(v)
		if _, err := strconv.ParseFloat(t, 64); err == nil {
			return t
		}
	}
	return v
}

func environmentNode(env kmodel.Environment) (*yaml.Node, error) {
	m := export.NewMapping()
	m.Add("featureEnabled", export.BoolNode(env.FeatureEnabled))
	m.Add("defaultVariationKey", export.Str(env.DefaultVariationKey))
	if len(env.RolloutRules) > 0 {
		items := make([]*yaml.Node, len(env.RolloutRules))
		for i := range env.RolloutRules {
			items[i] = ruleNode(&env.RolloutRules[i])
		}
		m.Add("rolloutRules", export.Seq(items...))
	}
	if in := env.Integrations; in != nil && (len(in.DeliveryRules) > 0 || len(in.ExperimentRules) > 0) {
		im := export.NewMapping()
		for _, part := range []struct {
			key   string
			items []any
		}{{"deliveryRules", in.DeliveryRules}, {"experimentRules", in.ExperimentRules}} {
			if len(part.items) == 0 {
				continue
			}
			n, err := export.JSONNode(part.items)
			if err != nil {
				return nil, fmt.Errorf("integrations.%s: %w", part.key, err)
			}
			im.Add(part.key, n)
		}
		m.Add("integrations", im.Node())
	}
	return m.Node(), nil
}

// ruleNode writes a rule: name, type and state first. The rule's Kameleoon id is a
// comment: flagsync identifies rules by name and carries the id into its patches, so
// the rule (and its experiment) survives a sync as long as the name stays.
func ruleNode(r *kmodel.Rule) *yaml.Node {
	m := export.NewMapping()
	m.Add("name", export.Str(r.Name))
	m.Add("type", export.Str(r.Type))
	// The written state, not `status`: a rule Kameleoon's automation paused is still
	// ACTIVE in what was written, and exporting PAUSED would make Git pause it for good.
	m.Add("state", export.Str(r.WrittenState()))
	if r.SegmentID != 0 {
		m.Add("segmentId", export.IntNode(r.SegmentID))
	}
	if r.Exposition != nil {
		m.Add("exposition", export.FloatNode(*r.Exposition))
	}
	if r.VariationKey != "" {
		m.Add("variationKey", export.Str(r.VariationKey))
	}
	if r.ControlVariationKey != "" {
		m.Add("controlVariationKey", export.Str(r.ControlVariationKey))
	}
	// MANUAL is the default of an experiment and means nothing for other rule types.
	if method := r.TrafficAllocationMethod; method != "" && method != "MANUAL" {
		m.Add("trafficAllocationMethod", export.Str(method))
	}
	if len(r.TrafficAllocations) > 0 {
		items := make([]*yaml.Node, len(r.TrafficAllocations))
		for i, a := range r.TrafficAllocations {
			am := export.NewMapping()
			am.Add("variationKey", export.Str(a.VariationKey))
			am.Add("exposition", export.FloatNode(a.Exposition))
			items[i] = am.Node()
		}
		m.Add("trafficAllocations", export.Seq(items...))
	}
	if r.Reallocation {
		m.Add("reallocation", export.BoolNode(true))
	}
	if rel := r.Release; rel != nil && *rel != (kmodel.Release{}) {
		rm := export.NewMapping()
		if rel.ReleaseFrom != "" {
			rm.Add("releaseFrom", export.Str(rel.ReleaseFrom))
		}
		if rel.ReleaseTo != "" {
			rm.Add("releaseTo", export.Str(rel.ReleaseTo))
		}
		if rel.TimeZone != "" {
			rm.Add("timeZone", export.Str(rel.TimeZone))
		}
		m.Add("release", rm.Node())
	}
	if len(r.RollbackConditions) > 0 {
		items := make([]*yaml.Node, len(r.RollbackConditions))
		for i, c := range r.RollbackConditions {
			cm := export.NewMapping()
			cm.Add("target", export.Str(c.Target))
			cm.Add("criteria", export.Str(c.Criteria))
			cm.Add("comparisonOperator", export.Str(c.ComparisonOperator))
			cm.Add("matchValue", export.FloatNode(c.MatchValue))
			if c.GoalID != 0 {
				cm.Add("goalId", export.IntNode(c.GoalID))
			}
			if c.Visitors != 0 {
				cm.Add("visitors", export.IntNode(c.Visitors))
			}
			if rs := stringSet(c.Recipients); len(rs) > 0 {
				cm.Add("recipients", export.StrSeq(rs))
			}
			items[i] = cm.Node()
		}
		m.Add("rollbackConditions", export.Seq(items...))
	}
	if r.ID != 0 {
		comment := "Kameleoon rule id " + strconv.FormatInt(r.ID, 10)
		if r.ExperimentID != 0 {
			comment += ", experiment " + strconv.FormatInt(r.ExperimentID, 10)
		}
		m.Node().HeadComment = comment + ": kept by flagsync while the rule keeps this name."
	}
	return m.Node()
}

// settingsFile renders flagsync.yaml.
func settingsFile(s kmodel.Settings, sites []string, schema string) (export.File, error) {
	m := export.NewMapping()
	if s.SiteCode != "" {
		m.AddComment("siteCode", export.Str(s.SiteCode), "Default siteCode of the flag files.")
	}
	if len(s.Environments) > 0 {
		m.AddComment("environments", export.StrSeq(s.Environments), "The environments the flags configure, in the order flagsync applies changes.")
	}
	m.AddComment("prune", export.BoolNode(false), "Archive flags whose file is removed (only flags flagsync created). Off: such flags are reported and left alone.")
	what := "Exported from Kameleoon site " + strings.Join(sites, ", ") + " by flagsync export."
	if len(sites) > 1 {
		what = "Exported from Kameleoon sites " + strings.Join(sites, ", ") + " by flagsync export: one folder per site."
	}
	data, err := export.WithHeader(m.Node(), export.HeaderLines(schema, loaderSchemaSettings, 0, what))
	if err != nil {
		return export.File{}, fmt.Errorf("export %s: %w", flagrepo.SettingsFile, err)
	}
	return export.File{Path: flagrepo.SettingsFile, Data: data}, nil
}

// tagSet is the flag's tags sorted, without duplicates and without flagsync's ownership
// tag, which the planner never shows as drift.
func tagSet(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t != kmodel.OwnershipTag {
			out = append(out, t)
		}
	}
	return stringSet(out)
}

func stringSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func int64Set(s []int64) []int64 {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
