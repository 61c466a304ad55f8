package unleashmodel

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Feature types: the fixed list of an Unleash instance.
var FeatureTypes = []string{"release", "experiment", "operational", "kill-switch", "permission", "sunset"}

// DefaultFeatureType is the type Unleash gives a flag created without one.
const DefaultFeatureType = "release"

// Strategy types built into Unleash 8 (the legacy userWithId and gradualRollout* are gone).
const (
	StrategyDefault             = "default"
	StrategyFlexibleRollout     = "flexibleRollout"
	StrategyRemoteAddress       = "remoteAddress"
	StrategyApplicationHostname = "applicationHostname"
)

// StrategyTypes are the strategy types flag files may use, with the parameters each takes.
var StrategyTypes = map[string][]string{
	StrategyDefault:             nil,
	StrategyFlexibleRollout:     {"rollout", "stickiness", "groupId"},
	StrategyRemoteAddress:       {"IPs"},
	StrategyApplicationHostname: {"hostNames"},
}

// DefaultStickiness is the stickiness of a flexible rollout or a variant that names none.
const DefaultStickiness = "default"

// Variant weight types.
const (
	WeightVariable = "variable"
	WeightFix      = "fix"
)

// TotalWeight is what a strategy's variant weights add up to.
const TotalWeight = 1000

// Resource limits of an Unleash instance (the UNLEASH_*_LIMIT defaults).
const (
	MaxStrategies       = 30
	MaxConstraints      = 30
	MaxConstraintValues = 250
)

// OperatorKind says which value a constraint operator compares with.
type OperatorKind int

// Operator kinds.
const (
	OpStrings OperatorKind = iota // values: a list of strings
	OpNumber                      // value: a number
	OpDate                        // value: an RFC 3339 date-time
	OpSemver                      // value: a semantic version
	OpRegex                       // value: a regular expression
)

// Operators are the constraint operators of Unleash 8 and the value each takes.
var Operators = map[string]OperatorKind{
	"IN": OpStrings, "NOT_IN": OpStrings,
	"STR_STARTS_WITH": OpStrings, "STR_ENDS_WITH": OpStrings, "STR_CONTAINS": OpStrings,
	"NUM_EQ": OpNumber, "NUM_GT": OpNumber, "NUM_GTE": OpNumber, "NUM_LT": OpNumber, "NUM_LTE": OpNumber,
	"DATE_AFTER": OpDate, "DATE_BEFORE": OpDate,
	"SEMVER_EQ": OpSemver, "SEMVER_GT": OpSemver, "SEMVER_LT": OpSemver, "SEMVER_GTE": OpSemver, "SEMVER_LTE": OpSemver,
	"REGEX": OpRegex,
}

// Problem is one way a flag breaks Unleash's rules: where (a path into the flag such as
// "environments", "production", "strategies", 0, "parameters", "rollout") and what.
type Problem struct {
	Path    []any
	Message string
	AtKey   bool // the problem is about the key (a name), not its value
	// Near and Candidates, when set, are a name written and the names valid there, for a
	// "did you mean" hint.
	Near       string
	Candidates []string
}

var (
	urlFriendly = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	digits      = regexp.MustCompile(`^[0-9]+$`)
)

// Validate checks what the schema cannot express. It returns the problems in the order of
// the file (flag fields, then environments by name, strategies in order).
func Validate(f *Flag) []Problem {
	var out []Problem
	add := func(msg string, path ...any) { out = append(out, Problem{Path: path, Message: msg}) }
	for i, tag := range f.Tags {
		typ, value, ok := SplitTag(tag)
		switch {
		case !ok:
			add(fmt.Sprintf("a tag is type:value; write %q for a tag of the type every Unleash has", "simple:"+tag), "tags", i)
		case !urlFriendly.MatchString(typ):
			add(fmt.Sprintf("tag type %q must be URL-friendly (letters, digits, '.', '_', '~' and '-')", typ), "tags", i)
		case utf8.RuneCountInString(value) < 2 || utf8.RuneCountInString(value) > 50:
			add(fmt.Sprintf("tag value %q must be 2 to 50 characters long, got %d", value, utf8.RuneCountInString(value)), "tags", i)
		}
	}
	for _, env := range f.EnvironmentNames() {
		e := f.Environments[env]
		for _, p := range ValidateEnvironment(&e) {
			p.Path = append([]any{"environments", env}, p.Path...)
			out = append(out, p)
		}
	}
	return out
}

// ValidateEnvironment checks one environment's strategies (paths relative to it).
func ValidateEnvironment(e *Environment) []Problem {
	var out []Problem
	add := func(msg string, path ...any) { out = append(out, Problem{Path: path, Message: msg}) }
	if len(e.Strategies) > MaxStrategies {
		add(fmt.Sprintf("at most %d strategies per environment (Unleash's limit), got %d", MaxStrategies, len(e.Strategies)), "strategies")
	}
	if e.Enabled && !slices.ContainsFunc(e.Strategies, func(s Strategy) bool { return !s.Disabled }) {
		add("an enabled environment needs a strategy that is not disabled: Unleash adds a flexibleRollout of 100% to one "+
			"without, which Git would then remove; write it, e.g. strategies: [{name: flexibleRollout, parameters: {rollout: 100}}]", "enabled")
	}
	titles := map[string]int{}
	for i := range e.Strategies {
		s := &e.Strategies[i]
		if s.Title != "" {
			if j, dup := titles[s.Title]; dup {
				add(fmt.Sprintf("title %q is also strategy %d's: a title identifies a strategy within its environment", s.Title, j), "strategies", i, "title")
			} else {
				titles[s.Title] = i
			}
		}
		for _, p := range ValidateStrategy(s) {
			p.Path = append([]any{"strategies", i}, p.Path...)
			out = append(out, p)
		}
	}
	return out
}

// ValidateStrategy checks one strategy (paths relative to it).
func ValidateStrategy(s *Strategy) []Problem {
	var out []Problem
	add := func(msg string, path ...any) { out = append(out, Problem{Path: path, Message: msg}) }
	params, known := StrategyTypes[s.Name]
	if known {
		names := make([]string, 0, len(s.Parameters))
		for k := range s.Parameters {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			if !slices.Contains(params, k) {
				msg := fmt.Sprintf("unknown parameter %q of a %s strategy", k, s.Name)
				if len(params) == 0 {
					msg += ", which takes none"
				} else {
					msg += "; it takes " + strings.Join(params, ", ")
				}
				out = append(out, Problem{Path: []any{"parameters", k}, Message: msg, AtKey: true, Near: k, Candidates: params})
				continue
			}
			if msg := checkParameter(s.Name, k, s.Parameters[k]); msg != "" {
				add(msg, "parameters", k)
			}
		}
		switch s.Name {
		case StrategyRemoteAddress, StrategyApplicationHostname:
			if _, ok := s.Parameters[params[0]]; !ok {
				add(fmt.Sprintf("a %s strategy needs the parameter %s", s.Name, params[0]), "parameters")
			}
		}
	}
	if len(s.Constraints) > MaxConstraints {
		add(fmt.Sprintf("at most %d constraints per strategy (Unleash's limit), got %d", MaxConstraints, len(s.Constraints)), "constraints")
	}
	for i := range s.Constraints {
		for _, p := range ValidateConstraint(&s.Constraints[i]) {
			p.Path = append([]any{"constraints", i}, p.Path...)
			out = append(out, p)
		}
	}
	for _, p := range ValidateVariants(s.Variants) {
		p.Path = append([]any{"variants"}, p.Path...)
		out = append(out, p)
	}
	return out
}

// checkParameter returns what is wrong with a known parameter's value, or "".
func checkParameter(strategy, name, value string) string {
	switch name {
	case "rollout":
		n, err := strconv.Atoi(value)
		if !digits.MatchString(value) || err != nil || n > 100 {
			return fmt.Sprintf("rollout is a percentage, a whole number from 0 to 100, got %q", value)
		}
	case "stickiness", "groupId":
		if strings.TrimSpace(value) == "" {
			return name + " must not be empty (leave it out for Unleash's default)"
		}
	case "IPs":
		for _, ip := range splitList(value) {
			if _, err := netip.ParsePrefix(ip); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(ip); err != nil {
				return fmt.Sprintf("IPs is a comma-separated list of IP addresses or CIDR ranges; %q is neither", ip)
			}
		}
		if len(splitList(value)) == 0 {
			return "IPs must list at least one IP address or CIDR range"
		}
	case "hostNames":
		if len(splitList(value)) == 0 {
			return "hostNames must list at least one host name (comma-separated)"
		}
	}
	return ""
}

// splitList splits a comma-separated parameter, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// ValidateConstraint checks that a constraint's values fit its operator (paths relative to
// it).
func ValidateConstraint(c *Constraint) []Problem {
	var out []Problem
	add := func(msg string, path ...any) { out = append(out, Problem{Path: path, Message: msg}) }
	kind, ok := Operators[c.Operator]
	if !ok {
		return nil // the schema reports it
	}
	if kind == OpStrings {
		if c.Value != "" {
			add(fmt.Sprintf("%s compares with a list: write values: [...], not value", c.Operator), "value")
		}
		if len(c.Values) == 0 {
			add(fmt.Sprintf("%s needs at least one value in values", c.Operator), "values")
		}
		if len(c.Values) > MaxConstraintValues {
			add(fmt.Sprintf("at most %d values per constraint (Unleash's limit), got %d", MaxConstraintValues, len(c.Values)), "values")
		}
		return out
	}
	if len(c.Values) > 0 {
		add(fmt.Sprintf("%s compares with one value: write value: ..., not values", c.Operator), "values")
	}
	if c.CaseInsensitive && kind != OpRegex {
		add(fmt.Sprintf("caseInsensitive applies to string and REGEX operators, not %s", c.Operator), "caseInsensitive")
	}
	if c.Value == "" {
		add(fmt.Sprintf("%s needs a value", c.Operator), "value")
		return out
	}
	switch kind {
	case OpNumber:
		if _, err := strconv.ParseFloat(c.Value, 64); err != nil {
			add(fmt.Sprintf("%s compares numbers: %q is not a number", c.Operator, c.Value), "value")
		}
	case OpDate:
		if _, err := time.Parse(time.RFC3339, c.Value); err != nil {
			add(fmt.Sprintf("%s compares dates: %q is not an RFC 3339 date-time such as 2025-12-31T23:00:00Z", c.Operator, c.Value), "value")
		}
	case OpSemver:
		if !StrictSemver(c.Value) {
			add(fmt.Sprintf("%s compares versions: %q is not a semantic version such as 1.2.3 or 2.0.0-beta.1", c.Operator, c.Value), "value")
		}
	case OpRegex:
		if _, err := regexp.Compile(c.Value); err != nil {
			add(fmt.Sprintf("not a valid regular expression: %v", err), "value")
		}
		if c.Inverted {
			add("Unleash does not allow inverting a REGEX constraint", "inverted")
		}
	}
	return out
}

var semverPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-((0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?` +
	`(\+([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?$`)

// StrictSemver reports whether v is a semantic version (semver.org 2.0.0) written in its
// canonical form, as Unleash requires of SEMVER_* constraints.
func StrictSemver(v string) bool { return semverPattern.MatchString(v) }

// ValidateVariants checks a strategy's variants (paths relative to the list).
func ValidateVariants(vs []Variant) []Problem {
	var out []Problem
	add := func(msg string, path ...any) { out = append(out, Problem{Path: path, Message: msg}) }
	if len(vs) == 0 {
		return nil
	}
	names := map[string]int{}
	fixed, variable := 0, 0
	for i := range vs {
		v := &vs[i]
		if j, dup := names[v.Name]; dup {
			add(fmt.Sprintf("variant %q is also variant %d: names are unique within a strategy", v.Name, j), i, "name")
		} else {
			names[v.Name] = i
		}
		switch v.WeightType {
		case WeightFix:
			fixed += v.Weight
		default:
			variable++
			if v.Weight != 0 {
				add(fmt.Sprintf("Unleash computes a variable variant's weight (%d minus the fix weights, shared equally): leave weight out, or set weightType: fix", TotalWeight), i, "weight")
			}
		}
		if v.Payload != nil {
			switch v.Payload.Type {
			case "json":
				if !json.Valid([]byte(v.Payload.Value)) {
					add("a json payload's value must be JSON text", i, "payload", "value")
				}
			case "number":
				if _, err := strconv.ParseFloat(v.Payload.Value, 64); err != nil {
					add(fmt.Sprintf("a number payload's value must be a number, got %q", v.Payload.Value), i, "payload", "value")
				}
			}
		}
	}
	if variable == 0 {
		add(fmt.Sprintf("at least one variant must be variable (weightType: variable takes what the fix weights leave of %d)", TotalWeight))
	}
	if fixed > TotalWeight {
		add(fmt.Sprintf("the fix weights add up to %d, more than %d", fixed, TotalWeight))
	}
	return out
}
