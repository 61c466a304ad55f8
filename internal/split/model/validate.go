package splitmodel

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Published limits of a definition, checked by Validate before anything is written (the
// sources are listed in docs/split.md).
const (
	// MinTreatments and MaxTreatments bound a definition's treatments: a flag chooses
	// between at least two.
	MinTreatments = 2
	MaxTreatments = 20
	// MaxKeysPerTreatment is the most keys one treatment may target individually; more
	// belong in a segment.
	MaxKeysPerTreatment = 500
	// MaxConfigurationBytes is the most bytes a treatment's dynamic configuration may
	// hold (1 KB).
	MaxConfigurationBytes = 1024
)

// MatcherRule says which fields a matcher type needs: Value is the field holding what is
// matched (string, strings, bool, number, date, between or depends), and Attribute
// whether an attribute must be named.
type MatcherRule struct {
	Value     string
	Attribute bool
}

// MatcherTypes are the matcher types of Split's grammar and the fields each needs. The
// string matchers match the key itself when no attribute is named.
var MatcherTypes = map[string]MatcherRule{
	"IN_SEGMENT":                   {Value: "string"},
	"EQUAL_SET":                    {Value: "strings", Attribute: true},
	"ANY_OF_SET":                   {Value: "strings", Attribute: true},
	"ALL_OF_SET":                   {Value: "strings", Attribute: true},
	"PART_OF_SET":                  {Value: "strings", Attribute: true},
	"ON_DATE":                      {Value: "date", Attribute: true},
	"ON_OR_AFTER_DATE":             {Value: "date", Attribute: true},
	"ON_OR_BEFORE_DATE":            {Value: "date", Attribute: true},
	"BETWEEN_DATE":                 {Value: "between", Attribute: true},
	"BOOLEAN":                      {Value: "bool", Attribute: true},
	"EQUAL_NUMBER":                 {Value: "number", Attribute: true},
	"LESS_THAN_OR_EQUAL_NUMBER":    {Value: "number", Attribute: true},
	"GREATER_THAN_OR_EQUAL_NUMBER": {Value: "number", Attribute: true},
	"BETWEEN_NUMBER":               {Value: "between", Attribute: true},
	"IN_LIST_STRING":               {Value: "strings"},
	"STARTS_WITH_STRING":           {Value: "strings"},
	"ENDS_WITH_STRING":             {Value: "strings"},
	"CONTAINS_STRING":              {Value: "strings"},
	"MATCHES_STRING":               {Value: "string"},
	"IN_SPLIT":                     {Value: "depends"},
}

// ReservedTreatmentNames cannot name a treatment (Split's documentation).
var ReservedTreatmentNames = []string{"all", "and", "between", "contain", "contains", "control", "datetime", "does", "end", "ends",
	"false", "has", "have", "if", "in", "is", "match", "matches", "not", "number", "set", "split", "start", "starts", "string",
	"then", "treatment", "true", "with"}

// TreatmentNamePattern is what a treatment name looks like: a letter or a digit, then
// letters, digits, '_' and '-'. Names that are numbers ("1", "2") are treatment names;
// flag names must start with a letter.
var TreatmentNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// FlagNamePattern is what a flag name looks like: a letter, then letters, digits, '_'
// and '-'.
var FlagNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// Problem is one way a definition breaks Split's rules: where (a path into the definition
// such as "rules", 0, "buckets") and what.
type Problem struct {
	Path    []any
	Message string
	// Unknown and Known are set for a reference to a treatment that does not exist: the
	// name written and the treatments there are, for a typo hint.
	Unknown string
	Known   []string
}

// String renders the problem as rules[0].buckets: message.
func (p Problem) String() string {
	var b strings.Builder
	for _, s := range p.Path {
		switch s := s.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, s)
		}
	}
	if b.Len() == 0 {
		return p.Message
	}
	return b.String() + ": " + p.Message
}

// Validate checks a definition against Split's rules: treatments named, unique and
// known wherever they are referenced (rules, default rule, default and baseline
// treatment), bucket sizes that add up to 100, a traffic allocation from 0 to 100,
// matchers with the fields their type needs, configurations that are JSON, and an
// individual target in at most one treatment. It returns every problem found.
func Validate(d *Definition) []Problem {
	var ps []Problem
	add := func(msg string, path ...any) { ps = append(ps, Problem{Path: path, Message: msg}) }
	names := d.TreatmentNames()
	switch {
	case len(d.Treatments) < MinTreatments:
		add(fmt.Sprintf("at least %d treatments are required, got %d", MinTreatments, len(d.Treatments)), "treatments")
	case len(d.Treatments) > MaxTreatments:
		add(fmt.Sprintf("at most %d treatments are allowed, got %d", MaxTreatments, len(d.Treatments)), "treatments")
	}
	ps = append(ps, treatmentProblems(d.Treatments, names)...)
	known := treatmentRefs(names)
	if d.DefaultTreatment == "" {
		add("a default treatment is required", "defaultTreatment")
	} else {
		ps = append(ps, known.check(d.DefaultTreatment, "defaultTreatment")...)
	}
	if d.BaselineTreatment != "" {
		ps = append(ps, known.check(d.BaselineTreatment, "baselineTreatment")...)
	}
	if a := d.Allocation(); a < 0 || a > 100 {
		add(fmt.Sprintf("must be from 0 to 100, got %d", a), "trafficAllocation")
	}
	for i, r := range d.Rules {
		ps = append(ps, ruleProblems(r, i, known)...)
	}
	if len(d.DefaultRule) > 0 { // when it is left out, it is the default treatment, checked above
		ps = append(ps, bucketProblems(d.DefaultRule, known, "defaultRule")...)
	}
	return ps
}

// treatmentProblems checks each treatment on its own (name, configuration, number of
// keys) and against those before it (names is every treatment's name, in order): a name,
// an individually targeted key or a segment may appear in one treatment only.
func treatmentProblems(ts []Treatment, names []string) []Problem {
	var ps []Problem
	add := func(msg string, path ...any) { ps = append(ps, Problem{Path: path, Message: msg}) }
	keyOwner := map[string]int{}
	segmentOwner := map[string]int{}
	for i, t := range ts {
		switch {
		case !TreatmentNamePattern.MatchString(t.Name):
			add(fmt.Sprintf("%q is not a treatment name: start with a letter or a digit, then letters, digits, '_' or '-'", t.Name), "treatments", i, "name")
		case slices.Contains(ReservedTreatmentNames, strings.ToLower(t.Name)):
			add(fmt.Sprintf("%q is a reserved word and cannot name a treatment", t.Name), "treatments", i, "name")
		}
		if j := slices.Index(names, t.Name); j < i {
			add(fmt.Sprintf("duplicate treatment %q (also treatments[%d])", t.Name, j), "treatments", i, "name")
		}
		if t.Configurations != "" && !json.Valid([]byte(t.Configurations)) {
			add("must be JSON text", "treatments", i, "configurations")
		}
		if n := len(t.Configurations); n > MaxConfigurationBytes {
			add(fmt.Sprintf("is %d bytes; a treatment's configuration may hold at most %d (1 KB)", n, MaxConfigurationBytes), "treatments", i, "configurations")
		}
		if n := len(t.Keys); n > MaxKeysPerTreatment {
			add(fmt.Sprintf("%d keys; a treatment may target at most %d keys individually (use a segment for more)", n, MaxKeysPerTreatment), "treatments", i, "keys")
		}
		for k, key := range t.Keys {
			if j, dup := keyOwner[key]; dup {
				add(fmt.Sprintf("key %q is already targeted by treatments[%d]", key, j), "treatments", i, "keys", k)
				continue
			}
			keyOwner[key] = i
		}
		for k, seg := range t.Segments {
			if j, dup := segmentOwner[seg]; dup {
				add(fmt.Sprintf("segment %q is already targeted by treatments[%d]", seg, j), "treatments", i, "segments", k)
				continue
			}
			segmentOwner[seg] = i
		}
	}
	return ps
}

// treatmentRefs are the names of a definition's treatments, which references to a
// treatment are checked against.
type treatmentRefs []string

// check returns the problem, at path, of a reference to a treatment that does not
// exist; none when it exists or when there are no treatments at all (a problem
// reported once, on the treatments).
func (k treatmentRefs) check(name string, path ...any) []Problem {
	if len(k) == 0 || slices.Contains(k, name) {
		return nil
	}
	return []Problem{{Path: path, Unknown: name, Known: k,
		Message: fmt.Sprintf("unknown treatment %q; the treatments are %s", name, strings.Join(k, ", "))}}
}

// ruleProblems checks rule i: its matchers, and its buckets, whose treatments known
// checks.
func ruleProblems(r Rule, i int, known treatmentRefs) []Problem {
	var ps []Problem
	if len(r.Condition.Matchers) == 0 {
		ps = append(ps, Problem{Path: []any{"rules", i, "condition", "matchers"}, Message: "a rule needs at least one matcher"})
	}
	for j, m := range r.Condition.Matchers {
		for _, msg := range matcherProblems(m) {
			ps = append(ps, Problem{Path: []any{"rules", i, "condition", "matchers", j}, Message: msg})
		}
	}
	return append(ps, bucketProblems(r.Buckets, known, "rules", i, "buckets")...)
}

// bucketProblems checks buckets at path: their treatments exist and appear once, their
// sizes add up to 100. The unknown treatments come first.
func bucketProblems(bs []Bucket, known treatmentRefs, path ...any) []Problem {
	var unknown, ps []Problem
	at := func(more ...any) []any { return append(slices.Clip(path), more...) }
	if len(bs) == 0 {
		return []Problem{{Path: path, Message: "at least one bucket is required"}}
	}
	sum := 0
	seen := map[string]int{}
	for i, b := range bs {
		unknown = append(unknown, known.check(b.Treatment, at(i, "treatment")...)...)
		if j, dup := seen[b.Treatment]; dup {
			ps = append(ps, Problem{Path: at(i, "treatment"), Message: fmt.Sprintf("treatment %q already has bucket %d", b.Treatment, j)})
		}
		seen[b.Treatment] = i
		if b.Size < 0 || b.Size > 100 {
			ps = append(ps, Problem{Path: at(i, "size"), Message: fmt.Sprintf("must be from 0 to 100, got %d", b.Size)})
		}
		sum += b.Size
	}
	if sum != 100 {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf("bucket sizes add up to %d; they must add up to 100", sum)})
	}
	return append(unknown, ps...)
}

// matcherProblems checks that a matcher has the fields its type needs and no value field
// of another type.
func matcherProblems(m Matcher) []string {
	rule, ok := MatcherTypes[m.Type]
	if !ok {
		return []string{fmt.Sprintf("unknown matcher type %q", m.Type)}
	}
	var out []string
	has := map[string]bool{
		"string": m.String != "", "strings": len(m.Strings) > 0, "bool": m.Bool != nil, "number": m.Number != nil,
		"date": m.Date != nil, "between": m.Between != nil, "depends": m.Depends != nil,
	}
	if !has[rule.Value] {
		out = append(out, fmt.Sprintf("a %s matcher needs %q", m.Type, rule.Value))
	}
	for _, f := range []string{"string", "strings", "bool", "number", "date", "between", "depends"} {
		if f != rule.Value && has[f] {
			out = append(out, fmt.Sprintf("a %s matcher takes %q, not %q", m.Type, rule.Value, f))
		}
	}
	if rule.Attribute && m.Attribute == "" {
		out = append(out, fmt.Sprintf("a %s matcher needs an attribute", m.Type))
	}
	if m.Between != nil && m.Between.From > m.Between.To {
		out = append(out, "between.from must not be greater than between.to")
	}
	if m.Depends != nil && (m.Depends.SplitName == "" || m.Depends.Treatment == "") {
		out = append(out, "depends needs splitName and treatment")
	}
	if m.Depends != nil && m.Depends.SplitName != "" && !FlagNamePattern.MatchString(m.Depends.SplitName) {
		out = append(out, fmt.Sprintf("depends.splitName %q is not a flag name", m.Depends.SplitName))
	}
	return out
}
