package ksandbox

import (
	"fmt"
	"slices"
	"strings"
	"time"
	// The zoned-dates variant converts release windows with time.LoadLocation; embedded
	// zone data keeps it working in images without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Variant is a stricter reading of a point Kameleoon's documentation leaves open. By
// default the sandbox takes the most lenient reading of each; Options.Strict switches
// on the stricter ones, so that a client can be tested against every reading the real
// API may follow. The names are the ones `flagsync sandbox --strict` takes.
type Variant string

// The strict variants. Each is described by Variant.Description and in docs/sandbox.md.
const (
	// EnvPatchRequired: an environment PATCH answers 400 unless its body carries
	// featureKey, name, integrations and rolloutRules, as the newer reference page marks
	// them required.
	EnvPatchRequired Variant = "env-patch-required"
	// OrderIndex: rules are evaluated (and listed) by orderIndex, and a rule that persists
	// but is sent without orderIndex keeps its old index.
	OrderIndex Variant = "order-index"
	// OptionalFieldsRefused: optionalFields other than the documented tags and
	// description answer 400; the list and search return the other optional fields
	// empty, and the single-flag GET returns the whole flag.
	OptionalFieldsRefused Variant = "optional-fields-refused"
	// OptionalFieldsIgnored: unknown optionalFields are silently ignored; the list and
	// search leave the undocumented fields out entirely, and the single-flag GET returns
	// the whole flag.
	OptionalFieldsIgnored Variant = "optional-fields-ignored"
	// ZonedDates: release windows read back as UTC instants with a Z, converted from the
	// written local time and timeZone.
	ZonedDates Variant = "zoned-dates"
)

// Variants lists every strict variant, in the order docs/sandbox.md describes them.
// Tests in other packages loop over it to run a suite against each reading.
var Variants = []Variant{EnvPatchRequired, OrderIndex, OptionalFieldsRefused, OptionalFieldsIgnored, ZonedDates}

// AllVariants is the name ParseVariants reads as every variant.
const AllVariants = "all"

// DocumentedOptionalFields are the optionalFields names Kameleoon's docs name. The
// optional-fields variants accept (or honour) only these.
var DocumentedOptionalFields = []string{"tags", "description"}

// envPatchRequired are the members EnvPatchRequired requires in an environment patch.
var envPatchRequired = []string{"featureKey", "name", "integrations", "rolloutRules"}

// Description says in one sentence what the variant changes, for help texts.
func (v Variant) Description() string {
	switch v {
	case EnvPatchRequired:
		return "an environment PATCH answers 400 unless the body carries featureKey, name, integrations and rolloutRules"
	case OrderIndex:
		return "rules are ordered by orderIndex; a persisted rule sent without orderIndex keeps its old index"
	case OptionalFieldsRefused:
		return "optionalFields other than tags and description answer 400; the list returns the other fields empty, a single-flag GET returns the whole flag"
	case OptionalFieldsIgnored:
		return "unknown optionalFields are ignored; the list leaves the undocumented fields out, a single-flag GET returns the whole flag"
	case ZonedDates:
		return "release windows read back as UTC instants with a Z, converted from the written local time and timeZone"
	}
	return "unknown variant"
}

// ParseVariants reads a comma-separated list of variant names, as `--strict` takes it.
// "all" stands for every variant; an empty string (or "none") for none. Unknown names are
// an error that lists the known ones. The result is in the order of Variants, without
// duplicates.
func ParseVariants(s string) ([]Variant, error) {
	set := map[Variant]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "" || name == "none":
		case name == AllVariants:
			for _, v := range Variants {
				set[v] = true
			}
		case slices.Contains(Variants, Variant(name)):
			set[Variant(name)] = true
		default:
			return nil, fmt.Errorf("strict variant %q: unknown (known: %s, or %s)", name, variantNames(), AllVariants)
		}
	}
	var out []Variant
	for _, v := range Variants {
		if set[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

func variantNames() string {
	names := make([]string, len(Variants))
	for i, v := range Variants {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// variantSet is the variants a server follows.
type variantSet map[Variant]bool

func newVariantSet(vs []Variant) (variantSet, error) {
	set := variantSet{}
	for _, v := range vs {
		if !slices.Contains(Variants, v) {
			return nil, fmt.Errorf("sandbox strict variant %q: unknown (known: %s)", v, variantNames())
		}
		set[v] = true
	}
	return set, nil
}

// Strict returns the strict variants the server follows, in the order of Variants.
func (s *Server) Strict() []Variant {
	var out []Variant
	for _, v := range Variants {
		if s.strict[v] {
			out = append(out, v)
		}
	}
	return out
}

// optionalFieldsMode is how the server reads optionalFields: the sandbox's own lenient
// reading (every optional field it knows may be named, others are a 400), or one of the
// two strict readings. Refused wins when both strict readings are on: a 400 comes first.
type optionalFieldsMode int

const (
	optionalFieldsKnown optionalFieldsMode = iota
	optionalFieldsRefusedMode
	optionalFieldsIgnoredMode
)

func (s *Server) optionalFieldsMode() optionalFieldsMode {
	switch {
	case s.strict[OptionalFieldsRefused]:
		return optionalFieldsRefusedMode
	case s.strict[OptionalFieldsIgnored]:
		return optionalFieldsIgnoredMode
	}
	return optionalFieldsKnown
}

// missingRequired lists the members EnvPatchRequired requires that patch lacks (absent
// or null), in the order the reference page lists them.
func missingRequired(patch map[string]any) []string {
	var missing []string
	for _, k := range envPatchRequired {
		if v, ok := patch[k]; !ok || v == nil {
			missing = append(missing, k)
		}
	}
	return missing
}

// zonedRelease converts a release window bound to a UTC instant with a Z: a value with
// a zone (Z or an offset) is that instant; one without is a local time in timeZone (UTC
// when timeZone is empty). A value that parses as neither is returned unchanged, for
// validation to refuse.
func zonedRelease(value, timeZone string) (string, error) {
	if value == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339, value); err == nil {
		return t.UTC().Format(zonedLayout), nil
	}
	loc := time.UTC
	if timeZone != "" {
		l, err := time.LoadLocation(timeZone)
		if err != nil {
			return value, fmt.Errorf("unknown time zone %q", timeZone)
		}
		loc = l
	}
	t, err := time.ParseInLocation(dateLayout, value, loc)
	if err != nil {
		return value, nil
	}
	return t.UTC().Format(zonedLayout), nil
}

// zonedLayout is how the zoned-dates variant writes release window bounds.
const zonedLayout = "2006-01-02T15:04:05Z"

// Reading is one way the sandbox reads the open points: the default (no variant), one
// strict variant, or all of them at once.
type Reading struct {
	Name   string // "default", a variant's name, or "all"
	Strict []Variant
}

// Readings returns the readings a suite runs against, for tests to loop over: the
// default, each variant of Variants alone, then all of them together.
func Readings() []Reading {
	out := []Reading{{Name: "default"}}
	for _, v := range Variants {
		out = append(out, Reading{Name: string(v), Strict: []Variant{v}})
	}
	return append(out, Reading{Name: AllVariants, Strict: slices.Clone(Variants)})
}

// Has reports whether the reading follows variant v.
func (r Reading) Has(v Variant) bool { return slices.Contains(r.Strict, v) }
