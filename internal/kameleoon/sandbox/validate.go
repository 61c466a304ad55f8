package ksandbox

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Documented limits and enums (the create and patch reference pages in the vendor docs).
var (
	featureKeyPattern = regexp.MustCompile(`^[a-z0-9_-]{1,255}$`)

	variableTypes            = []string{"BOOLEAN", "NUMBER", "STRING", "JSON", "JS", "CSS", "ENUM"}
	ruleTypes                = []string{"TARGETED_DELIVERY", "PROGRESSIVE_DELIVERY", "EXPERIMENTATION"}
	ruleStates               = []string{"ACTIVE", "PAUSED"}
	trafficAllocationMethods = []string{"MANUAL", "MULTI_ARMED_BANDIT", "CONTEXTUAL_BANDIT"}
	rollbackTargets          = []string{"RULE", "ENVIRONMENT"}
	rollbackCriteria         = []string{"UPLIFT", "DOWNLIFT", "CONVERSION_RATE"}
	comparisonOperators      = []string{"GREATER_THAN", "LESS_THAN"}
	bucketingKeyTypes        = []string{"VISITOR_CODE", "CUSTOM_DATA"}
	healths                  = []string{"PERMANENT", "HEALTHY", "STALE", "SMELLY"}
)

const (
	maxNameLen        = 100
	maxDescriptionLen = 5000
	maxKeyLen         = 255
	siteCodeLen       = 10
)

// releaseLayouts are the forms a release window bound may take: the tutorial's local
// time without zone, and RFC 3339 as on the reference pages.
var releaseLayouts = []string{"2006-01-02T15:04:05", time.RFC3339}

func oneOf(p *problems, path, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		if value == "" {
			p.add(path, "required (one of %s)", strings.Join(allowed, ", "))
			return
		}
		p.add(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

// validate checks the whole flag as it would be stored. Every write (and every seed)
// goes through it, so the store only ever holds flags that pass.
func (s *Server) validate(f *flagDoc, p *problems) {
	s.validateFields(f, p)
	vars := validateVariables(f, p)
	variations := validateVariations(f, vars, p)
	usedVariation := func(path, key string) {
		if !variations[key] {
			p.add(path, "variation %q does not exist", key)
		}
	}
	if len(f.EnvironmentConfigurations) != len(s.envs) {
		p.add("environmentConfigurations", "must hold the project's environments %s", strings.Join(s.envs, ", "))
	}
	for _, e := range f.EnvironmentConfigurations {
		path := "environmentConfigurations[" + e.EnvironmentKey + "]"
		if !slices.Contains(s.envs, e.EnvironmentKey) {
			p.add(path+".environmentKey", "unknown environment %q (the project's environments are %s)", e.EnvironmentKey, strings.Join(s.envs, ", "))
		}
		usedVariation(path+".defaultVariationKey", e.DefaultVariationKey)
		for i := range e.RolloutRules {
			s.validateRule(p, fmt.Sprintf("%s.rolloutRules[%d]", path, i), &e.RolloutRules[i], usedVariation)
		}
	}
}

// validateFields checks the flag's own fields.
func (s *Server) validateFields(f *flagDoc, p *problems) {
	if !featureKeyPattern.MatchString(f.FeatureKey) {
		p.add("featureKey", "%q does not match ^[a-z0-9_-]{1,255}$", f.FeatureKey)
	}
	if n := utf8.RuneCountInString(f.Name); n == 0 || n > maxNameLen {
		p.add("name", "must be 1 to %d characters, got %d", maxNameLen, n)
	}
	if err := s.checkSiteCode(f.SiteCode); err != "" {
		p.add("siteCode", "%s", err)
	}
	if n := utf8.RuneCountInString(f.Description); n > maxDescriptionLen {
		p.add("description", "must be at most %d characters, got %d", maxDescriptionLen, n)
	}
	for i, t := range f.Tags {
		if strings.TrimSpace(t) == "" {
			p.add(fmt.Sprintf("tags[%d]", i), "must not be empty")
		}
	}
	if f.AttributionWindow < 0 {
		p.add("attributionWindow", "must not be negative")
	}
	if f.BucketingKey != nil {
		oneOf(p, "bucketingKey.bucketingKeyType", f.BucketingKey.BucketingKeyType, bucketingKeyTypes)
		if f.BucketingKey.BucketingKeyType == "CUSTOM_DATA" && val(f.BucketingKey.CustomDataID) <= 0 {
			p.add("bucketingKey.customDataId", "required when bucketingKeyType is CUSTOM_DATA")
		}
	}
	if f.PrimaryGoalID != nil && *f.PrimaryGoalID <= 0 {
		p.add("primaryGoalId", "must be a positive goal id")
	}
	for i, g := range f.SecondaryGoalIDs {
		if g <= 0 {
			p.add(fmt.Sprintf("secondaryGoalIds[%d]", i), "must be a positive goal id")
		}
	}
	oneOf(p, "health", f.Health, healths)
}

// validateVariables checks the flag-level variables and returns them by key.
func validateVariables(f *flagDoc, p *problems) map[string]variable {
	vars := map[string]variable{}
	for i, v := range f.Variables {
		path := fmt.Sprintf("variables[%d]", i)
		checkKey(p, path+".key", v.Key)
		if _, dup := vars[v.Key]; dup && v.Key != "" {
			p.add(path+".key", "variable %q is defined twice", v.Key)
		}
		vars[v.Key] = v
		oneOf(p, path+".type", v.Type, variableTypes)
		if v.Type == "ENUM" && len(v.AllowedValues) == 0 {
			p.add(path+".allowedValues", "required for an ENUM variable")
		}
		if v.Type != "ENUM" && v.AllowedValues != nil {
			p.add(path+".allowedValues", "only an ENUM variable has allowed values")
		}
		checkValue(p, path+".value", v, v.Value)
	}
	return vars
}

// validateVariations checks the variations (and the variables each sets) and returns
// their keys.
func validateVariations(f *flagDoc, vars map[string]variable, p *problems) map[string]bool {
	variations := map[string]bool{}
	if len(f.Variations) == 0 {
		p.add("variations", "a flag needs at least one variation")
	}
	for i, v := range f.Variations {
		path := fmt.Sprintf("variations[%d]", i)
		checkKey(p, path+".key", v.Key)
		if variations[v.Key] && v.Key != "" {
			p.add(path+".key", "variation %q is defined twice", v.Key)
		}
		variations[v.Key] = true
		if utf8.RuneCountInString(v.Name) > maxNameLen {
			p.add(path+".name", "must be at most %d characters", maxNameLen)
		}
		seen := map[string]bool{}
		for j, x := range v.Variables {
			xp := fmt.Sprintf("%s.variables[%d]", path, j)
			fv, ok := vars[x.Key]
			if !ok {
				p.add(xp+".key", "variable %q is not defined at flag level", x.Key)
				continue
			}
			if seen[x.Key] {
				p.add(xp+".key", "variable %q is set twice", x.Key)
			}
			seen[x.Key] = true
			checkValue(p, xp+".value", fv, x.Value)
		}
	}
	return variations
}

func (s *Server) validateRule(p *problems, path string, r *rule, usedVariation func(path, key string)) {
	if utf8.RuneCountInString(r.Name) > maxNameLen {
		p.add(path+".name", "must be at most %d characters", maxNameLen)
	}
	oneOf(p, path+".type", r.Type, ruleTypes)
	oneOf(p, path+".state", r.Status, ruleStates)
	if r.Exposition != nil && (*r.Exposition < 0 || *r.Exposition > 100) {
		p.add(path+".exposition", "must be between 0 and 100, got %v", *r.Exposition)
	}
	if r.SegmentID != nil && *r.SegmentID <= 0 {
		p.add(path+".segmentId", "must be a positive segment id")
	}
	if r.VariationKey != "" {
		usedVariation(path+".variationKey", r.VariationKey)
	}
	if r.ControlVariationKey != "" {
		usedVariation(path+".controlVariationKey", r.ControlVariationKey)
	}
	if r.TrafficAllocationMethod != "" {
		oneOf(p, path+".trafficAllocationMethod", r.TrafficAllocationMethod, trafficAllocationMethods)
		if r.MultiArmedBandit && r.TrafficAllocationMethod != "MULTI_ARMED_BANDIT" {
			p.add(path+".multiArmedBandit", "true contradicts trafficAllocationMethod %q", r.TrafficAllocationMethod)
		}
	}
	validateAllocations(p, path, r.TrafficAllocations, usedVariation)
	if r.Release != nil {
		validateRelease(p, path+".release", r.Release)
	}
	for i, c := range r.RollbackConditions {
		validateRollback(p, fmt.Sprintf("%s.rollbackConditions[%d]", path, i), c)
	}
}

// validateAllocations checks a rule's traffic allocations: known variations,
// expositions in range and adding up to at most 100.
func validateAllocations(p *problems, path string, allocations []trafficAllocation, usedVariation func(path, key string)) {
	var total float64
	for i, a := range allocations {
		ap := fmt.Sprintf("%s.trafficAllocations[%d]", path, i)
		usedVariation(ap+".variationKey", a.VariationKey)
		if a.Exposition < 0 || a.Exposition > 100 {
			p.add(ap+".exposition", "must be between 0 and 100, got %v", a.Exposition)
		}
		total += a.Exposition
	}
	if total > 100+1e-9 {
		p.add(path+".trafficAllocations", "expositions add up to %v, more than 100", total)
	}
}

// validateRelease checks a rule's release window: dates that parse, in order.
func validateRelease(p *problems, path string, rel *release) {
	var from, to time.Time
	for _, b := range []struct {
		name  string
		value string
		t     *time.Time
	}{{"releaseFrom", rel.ReleaseFrom, &from}, {"releaseTo", rel.ReleaseTo, &to}} {
		if b.value == "" {
			continue
		}
		t, ok := parseRelease(b.value)
		if !ok {
			p.add(path+"."+b.name, "%q is not a date-time like 2025-12-11T11:58:01", b.value)
		}
		*b.t = t
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		p.add(path, "releaseTo is before releaseFrom")
	}
}

// validateRollback checks one rollback condition.
func validateRollback(p *problems, cp string, c rollbackCondition) {
	oneOf(p, cp+".target", c.Target, rollbackTargets)
	oneOf(p, cp+".criteria", c.Criteria, rollbackCriteria)
	oneOf(p, cp+".comparisonOperator", c.ComparisonOperator, comparisonOperators)
	if c.GoalID != nil && *c.GoalID <= 0 {
		p.add(cp+".goalId", "must be a positive goal id")
	}
	if c.Visitors != nil && *c.Visitors < 0 {
		p.add(cp+".visitors", "must not be negative")
	}
	for j, rcp := range c.Recipients {
		if strings.TrimSpace(rcp) == "" {
			p.add(fmt.Sprintf("%s.recipients[%d]", cp, j), "must not be empty")
		}
	}
}

func parseRelease(s string) (time.Time, bool) {
	for _, layout := range releaseLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func checkKey(p *problems, path, key string) {
	switch n := len(key); {
	case n == 0:
		p.add(path, "required")
	case n > maxKeyLen:
		p.add(path, "must be at most %d characters", maxKeyLen)
	}
}

// checkValue checks that a variable value (always a string on the wire) holds a value of
// the variable's type.
func checkValue(p *problems, path string, v variable, value string) {
	switch v.Type {
	case "BOOLEAN":
		if value != "true" && value != "false" {
			p.add(path, "%q is not a BOOLEAN (true or false)", value)
		}
	case "NUMBER":
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			p.add(path, "%q is not a NUMBER", value)
		}
	case "JSON":
		if !json.Valid([]byte(value)) {
			p.add(path, "%q is not valid JSON", value)
		}
	case "ENUM":
		if len(v.AllowedValues) > 0 && !slices.Contains(v.AllowedValues, value) {
			p.add(path, "%q is not one of the allowed values %s", value, strings.Join(v.AllowedValues, ", "))
		}
	}
}

// checkSiteCode returns what is wrong with a site code, or "".
func (s *Server) checkSiteCode(code string) string {
	if len(code) != siteCodeLen {
		return fmt.Sprintf("%q must be exactly %d characters", code, siteCodeLen)
	}
	if len(s.sites) > 0 && !slices.Contains(s.sites, code) {
		return fmt.Sprintf("site %q is not one of this account's sites", code)
	}
	return ""
}
