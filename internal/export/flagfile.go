package export

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// flagDocument builds the YAML of one flag. Keys come in a fixed order: siteCode,
// featureKey, name, description, tags, archived, variables, variations, goals,
// bucketingKey, attributionWindow, environments. What the planner counts as a default
// (normalise.go in internal/kameleoon/plan) is left out, and server-owned fields (ids, dates,
// health) are not part of the model. It returns notes on what could not be written.
func flagDocument(f *kmodel.Flag, siteCode string, withSite bool) (*yaml.Node, []string, error) {
	m := newMapping()
	if withSite {
		m.add("siteCode", str(siteCode))
	}
	m.add("featureKey", str(f.FeatureKey))
	m.add("name", str(f.Name))
	if f.Description != "" {
		m.add("description", str(f.Description))
	}
	if tags := tagSet(f.Tags); len(tags) > 0 {
		m.add("tags", strSeq(tags))
	}
	if f.Archived {
		m.addComment("archived", boolNode(true),
			"Archived in Kameleoon: flagsync leaves an archived flag as it is. Set archived: false to restore it.")
	}
	if len(f.Variables) > 0 {
		items := make([]*yaml.Node, len(f.Variables))
		for i, v := range f.Variables {
			vm := newMapping()
			vm.add("key", str(v.Key))
			vm.add("type", str(v.Type))
			vm.add("value", str(value(v.Type, v.Value)))
			if len(v.AllowedValues) > 0 {
				vm.add("allowedValues", strSeq(v.AllowedValues))
			}
			items[i] = vm.n
		}
		m.add("variables", seq(items...))
	}
	types := make(map[string]string, len(f.Variables))
	for _, v := range f.Variables {
		types[v.Key] = v.Type
	}
	if len(f.Variations) > 0 {
		items := make([]*yaml.Node, len(f.Variations))
		for i, v := range f.Variations {
			vm := newMapping()
			vm.add("key", str(v.Key))
			if v.Name != "" {
				vm.add("name", str(v.Name))
			}
			if len(v.Variables) > 0 {
				overrides := make([]*yaml.Node, len(v.Variables))
				for j, o := range v.Variables {
					om := newMapping()
					om.add("key", str(o.Key))
					om.add("value", str(value(types[o.Key], o.Value)))
					overrides[j] = om.n
				}
				vm.add("variables", seq(overrides...))
			}
			items[i] = vm.n
		}
		m.add("variations", seq(items...))
	}
	if f.PrimaryGoalID != 0 {
		m.add("primaryGoalId", intNode(f.PrimaryGoalID))
	}
	if goals := int64Set(f.SecondaryGoalIDs); len(goals) > 0 {
		m.add("secondaryGoalIds", intSeq(goals))
	}
	if bk := f.BucketingKey; bk != nil && *bk != (kmodel.BucketingKey{BucketingKeyType: "VISITOR_CODE"}) && *bk != (kmodel.BucketingKey{}) {
		bm := newMapping()
		typ := bk.BucketingKeyType
		if typ == "" {
			typ = "VISITOR_CODE" // what the planner reads an empty type as
		}
		bm.add("bucketingKeyType", str(typ))
		if bk.CustomDataID != 0 {
			bm.add("customDataId", intNode(bk.CustomDataID))
		}
		m.add("bucketingKey", bm.n)
	}
	if w := f.AttributionWindow; w != 0 && w != kmodel.DefaultAttributionWindow {
		m.add("attributionWindow", intNode(w))
	}

	var notes []string
	envs := newMapping()
	for _, k := range orderEnvironments(f.EnvironmentKeys()) {
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
			return nil, nil, fmt.Errorf("environment %s: %w", k, err)
		}
		envs.add(k, n)
	}
	if envs.len() > 0 {
		m.add("environments", envs.n)
	}
	return m.n, notes, nil
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
	m := newMapping()
	m.add("featureEnabled", boolNode(env.FeatureEnabled))
	m.add("defaultVariationKey", str(env.DefaultVariationKey))
	if len(env.RolloutRules) > 0 {
		items := make([]*yaml.Node, len(env.RolloutRules))
		for i := range env.RolloutRules {
			items[i] = ruleNode(&env.RolloutRules[i])
		}
		m.add("rolloutRules", seq(items...))
	}
	if in := env.Integrations; in != nil && (len(in.DeliveryRules) > 0 || len(in.ExperimentRules) > 0) {
		im := newMapping()
		for _, part := range []struct {
			key   string
			items []any
		}{{"deliveryRules", in.DeliveryRules}, {"experimentRules", in.ExperimentRules}} {
			if len(part.items) == 0 {
				continue
			}
			n, err := jsonNode(part.items)
			if err != nil {
				return nil, fmt.Errorf("integrations.%s: %w", part.key, err)
			}
			im.add(part.key, n)
		}
		m.add("integrations", im.n)
	}
	return m.n, nil
}

// ruleNode writes a rule: name, type and state first. The rule's Kameleoon id is a
// comment: flagsync identifies rules by name and carries the id into its patches, so
// the rule (and its experiment) survives a sync as long as the name stays.
func ruleNode(r *kmodel.Rule) *yaml.Node {
	m := newMapping()
	m.add("name", str(r.Name))
	m.add("type", str(r.Type))
	// The written state, not `status`: a rule Kameleoon's automation paused is still
	// ACTIVE in what was written, and exporting PAUSED would make Git pause it for good.
	m.add("state", str(r.WrittenState()))
	if r.SegmentID != 0 {
		m.add("segmentId", intNode(r.SegmentID))
	}
	if r.Exposition != nil {
		m.add("exposition", floatNode(*r.Exposition))
	}
	if r.VariationKey != "" {
		m.add("variationKey", str(r.VariationKey))
	}
	if r.ControlVariationKey != "" {
		m.add("controlVariationKey", str(r.ControlVariationKey))
	}
	// MANUAL is the default of an experiment and means nothing for other rule types.
	if method := r.TrafficAllocationMethod; method != "" && method != "MANUAL" {
		m.add("trafficAllocationMethod", str(method))
	}
	if len(r.TrafficAllocations) > 0 {
		items := make([]*yaml.Node, len(r.TrafficAllocations))
		for i, a := range r.TrafficAllocations {
			am := newMapping()
			am.add("variationKey", str(a.VariationKey))
			am.add("exposition", floatNode(a.Exposition))
			items[i] = am.n
		}
		m.add("trafficAllocations", seq(items...))
	}
	if r.Reallocation {
		m.add("reallocation", boolNode(true))
	}
	if rel := r.Release; rel != nil && *rel != (kmodel.Release{}) {
		rm := newMapping()
		if rel.ReleaseFrom != "" {
			rm.add("releaseFrom", str(rel.ReleaseFrom))
		}
		if rel.ReleaseTo != "" {
			rm.add("releaseTo", str(rel.ReleaseTo))
		}
		if rel.TimeZone != "" {
			rm.add("timeZone", str(rel.TimeZone))
		}
		m.add("release", rm.n)
	}
	if len(r.RollbackConditions) > 0 {
		items := make([]*yaml.Node, len(r.RollbackConditions))
		for i, c := range r.RollbackConditions {
			cm := newMapping()
			cm.add("target", str(c.Target))
			cm.add("criteria", str(c.Criteria))
			cm.add("comparisonOperator", str(c.ComparisonOperator))
			cm.add("matchValue", floatNode(c.MatchValue))
			if c.GoalID != 0 {
				cm.add("goalId", intNode(c.GoalID))
			}
			if c.Visitors != 0 {
				cm.add("visitors", intNode(c.Visitors))
			}
			if rs := stringSet(c.Recipients); len(rs) > 0 {
				cm.add("recipients", strSeq(rs))
			}
			items[i] = cm.n
		}
		m.add("rollbackConditions", seq(items...))
	}
	if r.ID != 0 {
		comment := "Kameleoon rule id " + strconv.FormatInt(r.ID, 10)
		if r.ExperimentID != 0 {
			comment += ", experiment " + strconv.FormatInt(r.ExperimentID, 10)
		}
		m.n.HeadComment = comment + ": kept by flagsync while the rule keeps this name."
	}
	return m.n
}

// settingsFile renders flagsync.yaml.
func settingsFile(s kmodel.Settings, sites []string, schema string) (File, error) {
	m := newMapping()
	if s.SiteCode != "" {
		m.addComment("siteCode", str(s.SiteCode), "Default siteCode of the flag files.")
	}
	if len(s.Environments) > 0 {
		m.addComment("environments", strSeq(s.Environments), "The environments the flags configure, in the order flagsync applies changes.")
	}
	m.addComment("prune", boolNode(false), "Archive flags whose file is removed (only flags flagsync created). Off: such flags are reported and left alone.")
	what := "Exported from Kameleoon site " + strings.Join(sites, ", ") + " by flagsync export."
	if len(sites) > 1 {
		what = "Exported from Kameleoon sites " + strings.Join(sites, ", ") + " by flagsync export: one folder per site."
	}
	data, err := withHeader(m.n, headerLines(schema, loaderSchemaSettings, 0, what))
	if err != nil {
		return File{}, fmt.Errorf("export %s: %w", flagrepo.SettingsFile, err)
	}
	return File{Path: flagrepo.SettingsFile, Data: data}, nil
}

// withHeader encodes root after the given comment lines.
func withHeader(root *yaml.Node, lines []string) ([]byte, error) {
	body, err := encodeYAML(root)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	b.Write(body)
	return []byte(b.String()), nil
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
