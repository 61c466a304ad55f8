package kmodel

import (
	"errors"
	"strings"
	"testing"
)

func TestParseIgnorePathAccepts(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tags", "tags"},
		{"name", "name"},
		{"bucketingKey", "bucketingKey"},
		{"variables", "variables"},
		{"variables[key=color].value", "variables[key=color].value"},
		{"variables[*].allowedValues", "variables[*].allowedValues"},
		{"variations[key=on].name", "variations[key=on].name"},
		{"variations[*].variables", "variations[*].variables"},
		{"variations[key=on].variables[key=color]", "variations[key=on].variables[key=color]"},
		{"variations[key=on].variables[key=color].value", "variations[key=on].variables[key=color]"},
		{"environments.*.featureEnabled", "environments.*.featureEnabled"},
		{"environments.production.integrations", "environments.production.integrations"},
		{"environments.production.rolloutRules", "environments.production.rolloutRules"},
		{"environments.production.rolloutRules[*].exposition", "environments.production.rolloutRules[*].exposition"},
		{"environments.production.rolloutRules[name=beta testers].state", "environments.production.rolloutRules[name=beta testers].state"},
		{`environments.production.rolloutRules[name="a [b]"].state`, `environments.production.rolloutRules[name="a [b]"].state`},
		{`environments.production.rolloutRules[name="beta"].state`, `environments.production.rolloutRules[name=beta].state`},
		{"environments.staging-eu.rolloutRules[*].rollbackConditions", "environments.staging-eu.rolloutRules[*].rollbackConditions"},
		{"environments.*.rolloutRules[*].rollbackConditions[0].matchValue", "environments.*.rolloutRules[*].rollbackConditions[0].matchValue"},
		{"environments.*.rolloutRules[*].rollbackConditions[*].recipients", "environments.*.rolloutRules[*].rollbackConditions[*].recipients"},
	}
	for _, tt := range tests {
		p, err := ParseIgnorePath(tt.in)
		if err != nil {
			t.Errorf("ParseIgnorePath(%q): %v", tt.in, err)
			continue
		}
		if p.String() != tt.want {
			t.Errorf("ParseIgnorePath(%q) = %q, want %q", tt.in, p.String(), tt.want)
		}
	}
}

func TestParseIgnorePathRefuses(t *testing.T) {
	tests := []struct {
		in      string
		offset  int
		msg     string // part of the message
		suggest string
	}{
		{"", 0, "empty path", ""},
		{"tags.", 4, "ends with '.'", ""},
		{"expositon", 0, `unknown field "expositon" in a flag`, ""},
		{"featureKey", 0, "featureKey cannot be ignored", ""},
		{"archived", 0, "archived cannot be ignored", ""},
		{"ignore", 0, "ignore cannot be ignored", ""},
		{"variables[*].key", 13, "key cannot be ignored", ""},
		{"environments.*.rolloutRules[*].name", 31, "name cannot be ignored", ""},
		{"environments", 0, "a path ends at a field", "environments.*.featureEnabled"},
		{"environments.production", 13, "a path ends at a field", "environments.production.featureEnabled"},
		{"environments.featureEnabled", 13, "map keyed by environment", "environments.*.featureEnabled"},
		{"environments.prod uction.featureEnabled", 13, "not a field name", ""},
		{"environments[*].featureEnabled", 12, "environments are a map", ""},
		{"rolloutRules[*].exposition", 0, "a field of an environment", "environments.*.rolloutRules[*].exposition"},
		{"environments.*.rolloutRules.exposition", 15, "rolloutRules is a list", "environments.*.rolloutRules[*].exposition"},
		{"environments.*.rolloutRules[*]", 15, "a path ends at a field", "environments.*.rolloutRules"},
		{"environments.*.rolloutRules[0].state", 27, "matched by name, not by position", "environments.*.rolloutRules[*].state"},
		{"environments.*.rolloutRules[key=beta].state", 27, "selected by name", "environments.*.rolloutRules[name=beta].state"},
		{"environments.*.rolloutRules[*].rollbackConditions[name=x].matchValue", 49, "no key", "environments.*.rolloutRules[*].rollbackConditions[*].matchValue"},
		{"environments.*.rolloutRules[*].release.releaseTo", 39, "compares release as a whole", "environments.*.rolloutRules[*].release"},
		{"bucketingKey.customDataId", 13, "compares bucketingKey as a whole", "bucketingKey"},
		{"tags[*]", 4, "compared as a set", "tags"},
		{"name[*]", 4, "not a list", "name"},
		{"name.first", 5, "name has no fields", "name"},
		{"variations[key=on].variables[key=color].type", 40, "only a value", "variations[key=on].variables[key=color]"},
		{"variables[key=color", 9, "missing ']'", ""},
		{"variables[key=a [b]].value", 9, "must be quoted", ""},
		{`variables[key="a].value`, 9, "unterminated quoted key", ""},
		{"variables[=a].value", 9, "a selector is", ""},
	}
	for _, tt := range tests {
		_, err := ParseIgnorePath(tt.in)
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("ParseIgnorePath(%q) = %v, want a *PathError", tt.in, err)
			continue
		}
		if pe.Offset != tt.offset || !strings.Contains(pe.Msg, tt.msg) || pe.Suggest != tt.suggest {
			t.Errorf("ParseIgnorePath(%q): offset %d, %q, suggest %q; want offset %d, a message with %q, suggest %q",
				tt.in, pe.Offset, pe.Msg, pe.Suggest, tt.offset, tt.msg, tt.suggest)
		}
	}
	var pe *PathError
	if _, err := ParseIgnorePath("environments.*.rolloutRules[*].expositon"); !errors.As(err, &pe) || pe.Near != "expositon" || !strings.Contains(strings.Join(pe.Candidates, " "), "exposition") {
		t.Errorf("a misspelt field does not offer the right candidates: %+v", pe)
	}
}

func TestIgnorePathMatches(t *testing.T) {
	tests := []struct {
		pattern, field string
		want           bool
	}{
		{"tags", "tags", true},
		{"tags", "name", false},
		{"variables", "variables", true},
		{"variables", "variables[key=color].value", true},
		{"variables[key=color].value", "variables[key=color].value", true},
		{"variables[key=color].value", "variables[key=size].value", false},
		{"variables[*].value", "variables[key=size].value", true},
		{"variables[*].value", "variables[key=size]", false},
		{"variables[*].value", "variables", false},
		{"variations[key=on].variables", "variations[key=on].variables[key=color]", true},
		{"variations[*].variables[key=color]", "variations[key=on].variables[key=color]", true},
		{"environments.*.featureEnabled", "environments.production.featureEnabled", true},
		{"environments.*.featureEnabled", "environments.production.defaultVariationKey", false},
		{"environments.staging.featureEnabled", "environments.production.featureEnabled", false},
		{"environments.*.rolloutRules[*].exposition", "environments.production.rolloutRules[name=beta testers].exposition", true},
		{"environments.*.rolloutRules[*].exposition", "environments.production.rolloutRules[name=beta testers]", false},
		{"environments.*.rolloutRules[*].exposition", "environments.production.rolloutRules", false},
		{"environments.production.rolloutRules", "environments.production.rolloutRules[name=beta testers]", true},
		{"environments.production.rolloutRules", "environments.production.rolloutRules", true},
		{`environments.*.rolloutRules[name="a [b]"].state`, `environments.production.rolloutRules[name="a [b]"].state`, true},
		{"environments.*.rolloutRules[name=beta].state", "environments.production.rolloutRules[name=beta2].state", false},
		{"environments.*.rolloutRules[*].rollbackConditions[0].matchValue", "environments.production.rolloutRules[name=b].rollbackConditions[0].matchValue", true},
		{"environments.*.rolloutRules[*].rollbackConditions[0].matchValue", "environments.production.rolloutRules[name=b].rollbackConditions[1].matchValue", false},
		{"environments.*.rolloutRules[*].rollbackConditions", "environments.production.rolloutRules[name=b].rollbackConditions[1]", true},
	}
	for _, tt := range tests {
		p, err := ParseIgnorePath(tt.pattern)
		if err != nil {
			t.Fatalf("ParseIgnorePath(%q): %v", tt.pattern, err)
		}
		if got := p.Matches(tt.field); got != tt.want {
			t.Errorf("%q matches %q = %t, want %t", tt.pattern, tt.field, got, tt.want)
		}
	}
}

func TestWrittenState(t *testing.T) {
	tests := []struct {
		rule Rule
		want string
	}{
		{Rule{State: StateActive, Status: StatePaused}, StateActive},
		{Rule{Status: StatePaused}, StatePaused},
		{Rule{State: StatePaused}, StatePaused},
		{Rule{}, StateActive},
	}
	for _, tt := range tests {
		if got := tt.rule.WrittenState(); got != tt.want {
			t.Errorf("%+v: WrittenState() = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

// FuzzParseIgnorePath: no input makes the parser panic; a path it accepts is written back
// in a form it accepts again, unchanged, and matches its own field path.
func FuzzParseIgnorePath(f *testing.F) {
	for _, s := range []string{"tags", "environments.*.rolloutRules[*].exposition", `environments.p.rolloutRules[name="a [b]"].state`,
		"variations[key=on].variables[key=c].value", "environments.*.rolloutRules[*].rollbackConditions[0].matchValue", "a[", "a[=", `a[k="`, "[*]", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseFieldPath(s)
		p, err := ParseIgnorePath(s)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("ParseIgnorePath(%q): %v (%T)", s, err, err)
			}
			return
		}
		q, err := ParseIgnorePath(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("ParseIgnorePath(%q) = %q, which parses as %q, %v", s, p.String(), q.String(), err)
		}
		if !strings.Contains(p.String(), "*") && !p.Matches(p.String()) {
			t.Fatalf("%q does not match itself", p.String())
		}
	})
}
