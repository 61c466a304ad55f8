package kload

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata"

	"github.com/flagsync/flagsync/internal/diag"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model" // release windows name IANA zones; check them the same on every machine
)

// checker runs the checks the schema cannot express on one flag, as far as it could be
// read. Every check reports a path into the document, which is resolved to the node
// written at that place; a problem inside a field that already has one is dropped as
// its consequence.
//
// On the fast path there is no document (doc is nil): the schema path will write the
// diagnostics, so the first problem only marks the file failed. The checks that depend
// on flagsync.yaml are not here but in finish, which runs on every load.
type checker struct {
	doc     *diag.Document                        // nil on the fast path
	written func(env string, rule int) ruleFields // fast path: the fields each rule has written
	known   []diag.Diagnostic                     // problems already found in this file (syntax, schema)
	diags   []diag.Diagnostic
	failed  bool // a problem was found (on the fast path, the only record of it)
}

// troubled reports whether a problem is already known at field or inside it.
func (c *checker) troubled(field string) bool {
	for _, d := range c.known {
		if diag.Under(d.Field, field) {
			return true
		}
	}
	return false
}

// add reports msg at path (strings are mapping keys, ints sequence indices); atKey
// places it on the key rather than on the value.
func (c *checker) add(atKey bool, msg string, path ...any) {
	if c.doc == nil {
		c.failed = true
		return
	}
	l := c.doc.Locate(path...)
	field := l.Field
	for _, d := range c.known {
		if d.Field != "" && diag.Under(field, d.Field) {
			return // a consequence of a problem already reported
		}
	}
	line, col := l.At(atKey)
	c.failed = true
	c.diags = append(c.diags, diag.Diagnostic{File: c.doc.File(), Line: line, Column: col, Field: field, Message: msg})
}

func (c *checker) flag(f *kmodel.Flag) {
	// References are checked only against lists that are themselves fine, so that one
	// mistake in a variation is not reported again at every place that names it.
	variablesOK := !c.troubled("variables")
	variationsOK := !c.troubled("variations")
	vars := c.variables(f.Variables)
	variations := c.variations(f.Variations, vars, variablesOK)

	// knownVariation checks a reference to a variation; the path to report is built only
	// when there is a problem.
	knownVariation := func(key string, path func() []any) {
		if !variationsOK || slices.Contains(variations, key) {
			return
		}
		msg := fmt.Sprintf("unknown variation %q", key)
		if hint := diag.DidYouMean(key, variations); hint != "" {
			msg += hint
		} else {
			msg += "; the flag's variations are " + strings.Join(variations, ", ")
		}
		c.add(false, msg, path()...)
	}

	for _, ek := range f.EnvironmentKeys() {
		env := f.Environments[ek]
		knownVariation(env.DefaultVariationKey, func() []any { return []any{"environments", ek, "defaultVariationKey"} })
		names := make(map[string]int, len(env.RolloutRules))
		for ri, r := range env.RolloutRules {
			c.rule(ek, ri, r, names, knownVariation)
		}
	}

	if len(f.Ignore) > 0 {
		c.ignores(f, variablesOK && variationsOK)
	}
}

// declaredVariables are a flag's variables by key (the first of a duplicated key), and
// their keys in the order written, for hints.
type declaredVariables struct {
	byKey map[string]kmodel.Variable
	keys  []string
}

// variables checks the flag's variables (unique keys, values of their type) and returns
// them.
func (c *checker) variables(vs []kmodel.Variable) declaredVariables {
	d := declaredVariables{byKey: make(map[string]kmodel.Variable, len(vs)), keys: make([]string, 0, len(vs))}
	for i, v := range vs {
		d.keys = append(d.keys, v.Key)
		if _, dup := d.byKey[v.Key]; dup {
			c.add(false, fmt.Sprintf("duplicate variable key %q (also variables[%d])", v.Key, indexOfVariable(vs, v.Key)), "variables", i, "key")
			continue
		}
		d.byKey[v.Key] = v
		if p := valueProblem(v, v.Value); p != "" {
			c.add(false, p, "variables", i, "value")
		}
	}
	return d
}

// variations checks the flag's variations (unique keys and, when the variables are fine
// (varsOK), the variables each sets) and returns their keys in order.
func (c *checker) variations(vrs []kmodel.Variation, vars declaredVariables, varsOK bool) []string {
	keys := make([]string, 0, len(vrs))
	for i, vr := range vrs {
		if j := slices.Index(keys, vr.Key); j >= 0 {
			c.add(false, fmt.Sprintf("duplicate variation key %q (also variations[%d])", vr.Key, j), "variations", i, "key")
		}
		keys = append(keys, vr.Key)
		if varsOK {
			c.variationVariables(i, vr, vars)
		}
	}
	return keys
}

// variationVariables checks the variables variation i sets: declared, set once, with a
// value of the declared type.
func (c *checker) variationVariables(i int, vr kmodel.Variation, vars declaredVariables) {
	seen := make(map[string]int, len(vr.Variables))
	for j, vv := range vr.Variables {
		decl, ok := vars.byKey[vv.Key]
		if !ok {
			msg := fmt.Sprintf("unknown variable %q", vv.Key)
			if hint := diag.DidYouMean(vv.Key, vars.keys); hint != "" {
				msg += hint
			} else {
				msg += ": declare it in the flag's variables first"
			}
			c.add(false, msg, "variations", i, "variables", j, "key")
			continue
		}
		if k, dup := seen[vv.Key]; dup {
			c.add(false, fmt.Sprintf("duplicate variable %q in this variation (also variables[%d])", vv.Key, k), "variations", i, "variables", j, "key")
			continue
		}
		seen[vv.Key] = j
		if p := valueProblem(decl, vv.Value); p != "" {
			c.add(false, p, "variations", i, "variables", j, "value")
		}
	}
}

// ignores checks the flag's ignore paths. They name this file's environments, rules,
// variables and variations: the names are checked against lists that are themselves
// fine (namesOK: the variables and variations are), the paths' shape always.
func (c *checker) ignores(f *kmodel.Flag, namesOK bool) {
	scope := ignoreScope{flag: f}
	if !namesOK || c.troubled("environments") {
		scope = ignoreScope{}
	}
	if c.doc == nil {
		for _, s := range f.Ignore {
			if _, msg := ignoreProblem(s, scope); msg != "" {
				c.failed = true
			}
		}
		return
	}
	d := checkIgnores(c.doc, f.Ignore, append(c.known, c.diags...), scope)
	c.failed = c.failed || len(d) > 0
	c.diags = append(c.diags, d...)
}

func (c *checker) rule(ek string, ri int, r kmodel.Rule, names map[string]int, knownVariation func(string, func() []any)) {
	at := func(more ...any) []any { return append([]any{"environments", ek, "rolloutRules", ri}, more...) }
	if j, dup := names[r.Name]; dup {
		c.add(false, fmt.Sprintf("duplicate rule name %q (also rolloutRules[%d]): rule names must be unique within an environment", r.Name, j), at("name")...)
	} else {
		names[r.Name] = ri
	}
	c.ruleFields(r.Type, ek, ri)
	if r.VariationKey != "" {
		knownVariation(r.VariationKey, func() []any { return at("variationKey") })
	}
	if r.ControlVariationKey != "" {
		knownVariation(r.ControlVariationKey, func() []any { return at("controlVariationKey") })
	}
	var sum float64
	allocated := make(map[string]int, len(r.TrafficAllocations))
	for ai, a := range r.TrafficAllocations {
		knownVariation(a.VariationKey, func() []any { return at("trafficAllocations", ai, "variationKey") })
		if j, dup := allocated[a.VariationKey]; dup {
			c.add(false, fmt.Sprintf("variation %q is already allocated in trafficAllocations[%d]", a.VariationKey, j), at("trafficAllocations", ai, "variationKey")...)
		} else {
			allocated[a.VariationKey] = ai
		}
		sum += a.Exposition
	}
	// A small tolerance so that 33.33+33.33+33.34 is not reported for rounding.
	if sum > 100+1e-9 && !c.troubled(diag.FieldPath(at("trafficAllocations")...)) {
		c.add(false, fmt.Sprintf("traffic allocations add up to %s, more than 100", strconv.FormatFloat(sum, 'f', -1, 64)), at("trafficAllocations")...)
	}
	if r.Release != nil {
		c.release(r.Release, at("release"))
	}
}

// ruleFieldNames are the fields a rule may have; a ruleFields value has bit i set when
// field ruleFieldNames[i] is written.
var ruleFieldNames = [...]string{"name", "type", "state", "segmentId", "exposition", "variationKey", "controlVariationKey",
	"trafficAllocationMethod", "trafficAllocations", "reallocation", "release", "rollbackConditions"}

// ruleFields is the set of fields written in one rule (see ruleFieldNames).
type ruleFields uint16

// ruleFieldBit returns the bit of a rule field, and false for a field rules do not have.
func ruleFieldBit(name string) (ruleFields, bool) {
	for i, n := range ruleFieldNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// ruleTypes lists, per rule type, the fields a rule must have and the fields it must
// not have. These live here rather than in the schema's if/then because evaluating
// three conditions per rule in the validator cost a seventh of the loading time; the
// schema's descriptions state them for editors.
var ruleTypes = map[string]struct{ required, forbidden []string }{
	kmodel.RuleTargetedDelivery:    {[]string{"variationKey"}, []string{"controlVariationKey", "trafficAllocationMethod", "reallocation"}},
	kmodel.RuleProgressiveDelivery: {[]string{"variationKey", "exposition"}, []string{"controlVariationKey", "trafficAllocationMethod", "reallocation"}},
	kmodel.RuleExperimentation:     {[]string{"trafficAllocations"}, []string{"variationKey"}},
}

// ruleFields checks the fields written in rule ri of environment ek against its type.
// A field written with an empty or false value counts as written.
func (c *checker) ruleFields(typ, ek string, ri int) {
	fields, ok := ruleTypes[typ]
	if !ok {
		return
	}
	base := []any{"environments", ek, "rolloutRules", ri}
	var has func(string) bool
	if c.doc != nil {
		v, _ := c.doc.ValueAt(base...)
		written, _ := v.(map[string]any)
		has = func(f string) bool { _, ok := written[f]; return ok }
	} else {
		written := c.written(ek, ri)
		has = func(f string) bool { bit, _ := ruleFieldBit(f); return written&bit != 0 }
	}
	for _, f := range fields.required {
		if !has(f) {
			c.add(false, fmt.Sprintf("missing required field %q when type is %s", f, typ), base...)
		}
	}
	for _, f := range fields.forbidden {
		if has(f) {
			c.add(true, "not allowed when type is "+typ, append(slices.Clip(base), f)...)
		}
	}
}

func (c *checker) release(rel *kmodel.Release, base []any) {
	at := func(f string) []any { return append(slices.Clip(base), f) }
	if rel.TimeZone != "" {
		if !knownTimeZone(rel.TimeZone) {
			c.add(false, fmt.Sprintf("unknown time zone %q: use an IANA name such as Europe/Paris or UTC", rel.TimeZone), at("timeZone")...)
		}
	}
	from, fromZone, fromOK := parseReleaseTime(rel.ReleaseFrom)
	if rel.ReleaseFrom != "" && !fromOK {
		c.add(false, fmt.Sprintf("%q is not a valid date-time", rel.ReleaseFrom), at("releaseFrom")...)
	}
	to, toZone, toOK := parseReleaseTime(rel.ReleaseTo)
	if rel.ReleaseTo != "" && !toOK {
		c.add(false, fmt.Sprintf("%q is not a valid date-time", rel.ReleaseTo), at("releaseTo")...)
	}
	if fromOK && toOK && fromZone == toZone && !to.After(from) {
		c.add(false, fmt.Sprintf("must be after releaseFrom (%s)", rel.ReleaseFrom), at("releaseTo")...)
	}
}

// parseReleaseTime parses a release time as the schema's pattern allows it, reporting
// whether it names its own zone.
func parseReleaseTime(s string) (t time.Time, zoned, ok bool) {
	if s == "" {
		return time.Time{}, false, false
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, false, true
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true, true
		}
	}
	return time.Time{}, false, false
}

func indexOfVariable(vs []kmodel.Variable, key string) int {
	return slices.IndexFunc(vs, func(v kmodel.Variable) bool { return v.Key == key })
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// valueProblem checks that value fits the declared variable's type; it returns "" when
// it does.
func valueProblem(decl kmodel.Variable, value string) string {
	kind := fmt.Sprintf("variable %q is %s", decl.Key, decl.Type)
	switch decl.Type {
	case kmodel.TypeBoolean:
		if value != "true" && value != "false" {
			return fmt.Sprintf("must be true or false (%s), got %q", kind, value)
		}
	case kmodel.TypeNumber:
		if !jsonNumber.MatchString(value) {
			return fmt.Sprintf("must be a number such as 42 or -1.5 (%s), got %q", kind, value)
		}
	case kmodel.TypeJSON:
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return fmt.Sprintf("must be valid JSON (%s): %v", kind, err)
		}
	case kmodel.TypeEnum:
		if !slices.Contains(decl.AllowedValues, value) {
			return fmt.Sprintf("must be one of %s (%s), got %q", strings.Join(decl.AllowedValues, ", "), kind, value) + diag.DidYouMean(value, decl.AllowedValues)
		}
	}
	return ""
}

// timeZones caches time zone lookups: loading a zone from the embedded database parses
// it each time, and the same few zones appear in every file.
var timeZones sync.Map // name → bool

func knownTimeZone(name string) bool {
	if ok, hit := timeZones.Load(name); hit {
		return ok.(bool)
	}
	_, err := time.LoadLocation(name)
	ok := err == nil && name != "Local"
	timeZones.Store(name, ok)
	return ok
}
