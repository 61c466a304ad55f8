package kmodel

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// An ignore path names, in the flag file's own shape, a field that flagsync leaves to
// someone else (Kameleoon's UI, another tool, Kameleoon's automation): it is never
// written, and a difference there is shown in the plan as owned outside Git. The grammar
// is the planner's field paths with wildcards:
//
//	path     = step *("." step)
//	step     = name [ "[" selector "]" ]
//	selector = "*" | index | keyField "=" value      ; value: text up to "]", or a Go-quoted string
//
// for example `tags`, `environments.*.featureEnabled`,
// `environments.production.rolloutRules[*].exposition`,
// `environments.production.rolloutRules[name=beta testers].state`,
// `variations[key=on].variables[key=button_color]` and
// `environments.*.rolloutRules[*].rollbackConditions[0].matchValue`. Under
// `environments` the step is an environment key or `*`. Lists of things with a key are
// selected by that key (`key` for variables, variations and a variation's overrides,
// `name` for rules) or `*`; rollback conditions, which have no key, by position or `*`.
// A path ends at a field, never at one element of a list, except a variation's override
// of one variable (the override is the value). A path goes no deeper than flagsync
// compares: a rule's `release` is compared as a whole, so `…release.releaseTo` is an
// error that says to write `…release`.

// IgnorePath is one checked entry of an `ignore:` list.
type IgnorePath struct {
	raw   string
	steps []PathStep
}

// PathStep is one step of a field path: a field name (under environments, an
// environment key or *) and, for a list, which elements.
type PathStep struct {
	Name   string
	Sel    Selector
	Offset int // byte offset of the step in the path, for diagnostics
}

// SelectorKind says how a step selects elements of a list.
type SelectorKind int

// Selector kinds.
const (
	SelectNone  SelectorKind = iota // the field itself (a whole list)
	SelectAll                       // [*]
	SelectKey                       // [key=value], [name=value]
	SelectIndex                     // [0]
)

// Selector picks elements of a list.
type Selector struct {
	Kind   SelectorKind
	Field  string // SelectKey: the key field, "key" or "name"
	Value  string // SelectKey: the key, unquoted
	Index  int    // SelectIndex
	Offset int    // byte offset of "[" in the path
}

// String renders the path as written, normalised (a trailing `.value` after a variation
// override left out, keys quoted only where needed).
func (p IgnorePath) String() string { return p.raw }

// Steps returns the path's steps. The caller must not modify them.
func (p IgnorePath) Steps() []PathStep { return p.steps }

// PathError is what is wrong with an ignore path, and where.
type PathError struct {
	Path   string // the path as written
	Offset int    // byte offset in Path of the step the problem is at
	Msg    string // what is wrong
	// Near and Candidates, when set, are the name written at Offset and the names that
	// would be valid there, for a "did you mean" hint.
	Near       string
	Candidates []string
	// Suggest, when set, is a path to write instead.
	Suggest string
}

// Error says what is wrong and, when known, what to write instead.
func (e *PathError) Error() string {
	msg := e.Msg
	if e.Suggest != "" {
		msg += fmt.Sprintf(": write %q", e.Suggest)
	}
	return msg
}

// fieldSpec describes, for ignore paths, one field of the flag file: what may follow it.
type fieldSpec struct {
	fields  map[string]*fieldSpec // an object's fields
	noun    string                // "a rule", for messages about an object's fields
	list    *fieldSpec            // a list of objects: its element
	key     string                // a keyed list's key field ("key", "name"); "" when matched by position
	elems   string                // a list's elements, for messages: "rules"
	envs    *fieldSpec            // the environments map: an environment
	parts   []string              // a leaf with sub-fields flagsync compares as a whole
	set     bool                  // a leaf that is a list of plain values, compared whole
	fixed   string                // not ignorable: why
	valueOf bool                  // a list element that is itself a value (a variation's override)
}

func leaf() *fieldSpec                 { return &fieldSpec{} }
func whole(parts ...string) *fieldSpec { return &fieldSpec{parts: parts} }
func setOf() *fieldSpec                { return &fieldSpec{set: true} }
func fixedField(why string) *fieldSpec { return &fieldSpec{fixed: why} }
func object(noun string, fields map[string]*fieldSpec) *fieldSpec {
	return &fieldSpec{noun: noun, fields: fields}
}
func keyedList(key, elems string, elem *fieldSpec) *fieldSpec {
	return &fieldSpec{list: elem, key: key, elems: elems}
}

// ignorable is the flag file's shape as far as ignore paths go: the planner compares
// (and so can leave alone) exactly these fields.
var ignorable = object("a flag", map[string]*fieldSpec{
	"siteCode":          fixedField("it identifies the flag"),
	"featureKey":        fixedField("it identifies the flag"),
	"archived":          fixedField("flagsync archives or restores a flag only as Git says"),
	"ignore":            fixedField("it is flagsync's own field, never sent to Kameleoon"),
	"name":              leaf(),
	"description":       leaf(),
	"tags":              setOf(),
	"attributionWindow": leaf(),
	"bucketingKey":      whole("bucketingKeyType", "customDataId"),
	"primaryGoalId":     leaf(),
	"secondaryGoalIds":  setOf(),
	"variables": keyedList("key", "variables", object("a variable", map[string]*fieldSpec{
		"key":           fixedField("it identifies the variable; ignore its type, value or allowedValues"),
		"type":          leaf(),
		"value":         leaf(),
		"allowedValues": setOf(),
	})),
	"variations": keyedList("key", "variations", object("a variation", map[string]*fieldSpec{
		"key":       fixedField("it identifies the variation; ignore its name or variables"),
		"name":      leaf(),
		"variables": keyedList("key", "overrides", &fieldSpec{valueOf: true}),
	})),
	"environments": {envs: object("an environment", map[string]*fieldSpec{
		"featureEnabled":      leaf(),
		"defaultVariationKey": leaf(),
		"integrations":        whole("deliveryRules", "experimentRules"),
		"rolloutRules": keyedList("name", "rules", object("a rule", map[string]*fieldSpec{
			"name":                    fixedField("it identifies the rule (renaming a rule replaces it)"),
			"type":                    leaf(),
			"state":                   leaf(),
			"segmentId":               leaf(),
			"exposition":              leaf(),
			"variationKey":            leaf(),
			"controlVariationKey":     leaf(),
			"trafficAllocationMethod": leaf(),
			"trafficAllocations":      whole("variationKey", "exposition"),
			"reallocation":            leaf(),
			"release":                 whole("releaseFrom", "releaseTo", "timeZone"),
			"rollbackConditions": keyedList("", "rollback conditions", object("a rollback condition", map[string]*fieldSpec{
				"target":             leaf(),
				"criteria":           leaf(),
				"comparisonOperator": leaf(),
				"matchValue":         leaf(),
				"goalId":             leaf(),
				"visitors":           leaf(),
				"recipients":         setOf(),
			})),
		})),
	})},
})

func (s *fieldSpec) names() []string {
	var out []string
	for k, f := range s.fields {
		if f.fixed == "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

var envKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// ParseIgnorePath parses one ignore path and checks that it can match a field of a flag
// file that flagsync compares. The error is a *PathError.
func ParseIgnorePath(s string) (IgnorePath, error) {
	steps, err := ParseFieldPath(s)
	if err != nil {
		return IgnorePath{}, err
	}
	steps, perr := check(s, steps)
	if perr != nil {
		return IgnorePath{}, perr
	}
	return IgnorePath{raw: FormatFieldPath(steps), steps: steps}, nil
}

// check walks steps through the ignorable shape. It returns the steps, normalised.
func check(path string, steps []PathStep) ([]PathStep, *PathError) {
	c := pathCheck{path: path, steps: steps}
	spec := ignorable
	for i := range steps {
		var out stepResult
		if spec.envs != nil {
			// steps[i] is an environment key (the step naming "environments" came before).
			out = c.envKey(i, spec)
		} else {
			out = c.field(i, spec)
		}
		switch {
		case out.err != nil:
			return nil, out.err
		case out.done != nil:
			return out.done, nil
		}
		spec = out.next
	}
	return steps, nil
}

// pathCheck is one ignore path being checked.
type pathCheck struct {
	path  string
	steps []PathStep
}

// stepResult is what checking one step found: the shape the next step is in, the
// normalised steps when the path is complete, or the problem.
type stepResult struct {
	next *fieldSpec
	done []PathStep
	err  *PathError
}

func (c pathCheck) fail(i int, msg string) stepResult {
	return stepResult{err: &PathError{Path: c.path, Offset: c.steps[i].Offset, Msg: msg}}
}

func (c pathCheck) failSuggest(i int, msg string, suggest []PathStep) stepResult {
	r := c.fail(i, msg)
	r.err.Suggest = FormatFieldPath(suggest)
	return r
}

// notAMapSelector is the problem of a selector on environments.
func (c pathCheck) notAMapSelector(st PathStep) stepResult {
	return stepResult{err: &PathError{Path: c.path, Offset: st.Sel.Offset, Msg: "environments are a map, selected by key: environments.production or environments.*"}}
}

// envKey checks steps[i] as an environment key of spec (environments).
func (c pathCheck) envKey(i int, spec *fieldSpec) stepResult {
	st, last := c.steps[i], i == len(c.steps)-1
	if _, isEnvField := spec.envs.fields[st.Name]; isEnvField {
		// environments.featureEnabled: the environment key is missing.
		fixed := append(append([]PathStep(nil), c.steps[:i]...), PathStep{Name: "*"})
		return c.failSuggest(i, "environments is a map keyed by environment: name one, or * for every environment", append(fixed, c.steps[i:]...))
	}
	if st.Name != "*" && !envKeyPattern.MatchString(st.Name) {
		return c.fail(i, fmt.Sprintf("%q is not an environment key (letters, digits, '_' and '-') or *", st.Name))
	}
	if st.Sel.Kind != SelectNone {
		return c.notAMapSelector(st)
	}
	if last {
		return c.failSuggest(i, "a path ends at a field: ignore fields of the environment, such as featureEnabled; an environment the flag file does not list is left alone anyway",
			append(append([]PathStep(nil), c.steps...), PathStep{Name: "featureEnabled"}))
	}
	return stepResult{next: spec.envs}
}

// field checks steps[i] as a field of spec.
func (c pathCheck) field(i int, spec *fieldSpec) stepResult {
	st, last := c.steps[i], i == len(c.steps)-1
	f, ok := spec.fields[st.Name]
	if !ok {
		r := c.fail(i, fmt.Sprintf("unknown field %q in %s", st.Name, spec.noun))
		if _, envField := ignorable.fields["environments"].envs.fields[st.Name]; envField && i == 0 {
			// rolloutRules[*].exposition: a field of an environment, written at the top.
			r.err.Msg = st.Name + " is a field of an environment"
			r.err.Suggest = FormatFieldPath(append([]PathStep{{Name: "environments"}, {Name: "*"}}, c.steps...))
			return r
		}
		r.err.Near, r.err.Candidates = st.Name, spec.names()
		return r
	}
	if f.fixed != "" {
		return c.fail(i, st.Name+" cannot be ignored: "+f.fixed)
	}
	switch {
	case f.envs != nil:
		if st.Sel.Kind != SelectNone {
			return c.notAMapSelector(st)
		}
		if last {
			r := c.fail(i, "a path ends at a field: ignore fields of environments, such as environments.*.featureEnabled")
			r.err.Suggest = "environments.*.featureEnabled"
			return r
		}
		return stepResult{next: f}
	case f.list != nil:
		return c.listField(i, f)
	}
	return c.wholeField(i, f)
}

// listField checks steps[i], which names list f: the whole list, or its elements by a
// selector.
func (c pathCheck) listField(i int, f *fieldSpec) stepResult {
	st, last := c.steps[i], i == len(c.steps)-1
	if st.Sel.Kind == SelectNone {
		if last {
			return stepResult{done: c.steps} // the whole list
		}
		fixed := append([]PathStep(nil), c.steps...)
		fixed[i].Sel = Selector{Kind: SelectAll}
		return c.failSuggest(i, fmt.Sprintf("%s is a list: select %s with %s", st.Name, f.elems, selectorHint(f)), fixed)
	}
	if perr := checkSelector(c.path, c.steps, i, f); perr != nil {
		return stepResult{err: perr}
	}
	elem := f.list
	if elem.valueOf {
		// A variation's override is the value: it may end the path, and a trailing
		// .value says the same.
		if !last && i+1 == len(c.steps)-1 && c.steps[i+1].Name == "value" && c.steps[i+1].Sel.Kind == SelectNone {
			return stepResult{done: c.steps[:i+1]}
		}
		if !last {
			return c.failSuggest(i+1, fmt.Sprintf("an override of %s has only a value", st.Name), c.steps[:i+1])
		}
		return stepResult{done: c.steps}
	}
	if last {
		return c.failSuggest(i, fmt.Sprintf("a path ends at a field: ignore a field of the %s, or the whole %s", f.elems, st.Name), withoutSel(c.steps, i))
	}
	return stepResult{next: elem}
}

// wholeField checks steps[i], which names a field compared as a whole: it ends the path
// and takes no selector.
func (c pathCheck) wholeField(i int, f *fieldSpec) stepResult {
	st, last := c.steps[i], i == len(c.steps)-1
	if st.Sel.Kind != SelectNone {
		msg := st.Name + " is not a list"
		if f.set {
			msg = st.Name + " is compared as a set: ignore it as a whole"
		} else if len(f.parts) > 0 {
			msg = st.Name + " is compared as a whole: ignore it as a whole"
		}
		return stepResult{err: &PathError{Path: c.path, Offset: st.Sel.Offset, Msg: msg, Suggest: FormatFieldPath(withoutSel(c.steps[:i+1], i))}}
	}
	if !last {
		msg := st.Name + " has no fields"
		if len(f.parts) > 0 {
			msg = fmt.Sprintf("flagsync compares %s as a whole (%s): ignore it as a whole", st.Name, strings.Join(f.parts, ", "))
		}
		return c.failSuggest(i+1, msg, c.steps[:i+1])
	}
	return stepResult{done: c.steps}
}

func selectorHint(f *fieldSpec) string {
	if f.key == "" {
		return "[*] or by position, [0]"
	}
	return fmt.Sprintf("[*] or by %s, [%s=…]", f.key, f.key)
}

// checkSelector checks the selector of steps[i], which names list f.
func checkSelector(path string, steps []PathStep, i int, f *fieldSpec) *PathError {
	st := steps[i]
	fail := func(msg string, sel Selector) *PathError {
		fixed := append([]PathStep(nil), steps...)
		fixed[i].Sel = sel
		return &PathError{Path: path, Offset: st.Sel.Offset, Msg: msg, Suggest: FormatFieldPath(fixed)}
	}
	switch st.Sel.Kind {
	case SelectAll:
		return nil
	case SelectIndex:
		if f.key != "" {
			return fail(fmt.Sprintf("%s are matched by %s, not by position: select them with [*] or [%s=…]", f.elems, f.key, f.key), Selector{Kind: SelectAll})
		}
	case SelectKey:
		if f.key == "" {
			return fail(fmt.Sprintf("%s have no key: select them by position, [0], or with [*]", f.elems), Selector{Kind: SelectAll})
		}
		if st.Sel.Field != f.key {
			return fail(fmt.Sprintf("%s are selected by %s", f.elems, f.key), Selector{Kind: SelectKey, Field: f.key, Value: st.Sel.Value})
		}
	}
	return nil
}

func withoutSel(steps []PathStep, i int) []PathStep {
	out := append([]PathStep(nil), steps[:i+1]...)
	out[i].Sel = Selector{}
	return out
}

// ParseFieldPath parses a field path of the planner's grammar (see IgnorePath) without
// checking its names: the paths of a plan's field changes, and the first step of
// ParseIgnorePath. The error is a *PathError.
func ParseFieldPath(s string) ([]PathStep, error) {
	if s == "" {
		return nil, &PathError{Path: s, Msg: "empty path"}
	}
	var steps []PathStep
	i := 0
	for {
		start := i
		for i < len(s) && s[i] != '.' && s[i] != '[' {
			i++
		}
		name := s[start:i]
		if name == "" {
			return nil, &PathError{Path: s, Offset: start, Msg: "a field name is missing"}
		}
		if strings.ContainsAny(name, " ]=\"") {
			return nil, &PathError{Path: s, Offset: start, Msg: fmt.Sprintf("%q is not a field name", name)}
		}
		st := PathStep{Name: name, Offset: start}
		if i < len(s) && s[i] == '[' {
			sel, next, err := parseSelector(s, i)
			if err != nil {
				return nil, err
			}
			st.Sel, i = sel, next
		}
		steps = append(steps, st)
		if i == len(s) {
			return steps, nil
		}
		if s[i] != '.' {
			return nil, &PathError{Path: s, Offset: i, Msg: fmt.Sprintf("unexpected %q: steps are separated by '.'", s[i])}
		}
		i++
		if i == len(s) {
			return nil, &PathError{Path: s, Offset: i - 1, Msg: "the path ends with '.'"}
		}
	}
}

// parseSelector parses the selector that starts with '[' at s[at].
func parseSelector(s string, at int) (Selector, int, *PathError) {
	fail := func(msg string) (Selector, int, *PathError) {
		return Selector{}, 0, &PathError{Path: s, Offset: at, Msg: msg}
	}
	i := at + 1
	sel := Selector{Offset: at}
	switch {
	case strings.HasPrefix(s[i:], "*]"):
		sel.Kind = SelectAll
		return sel, i + 2, nil
	case i < len(s) && s[i] >= '0' && s[i] <= '9':
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == len(s) || s[j] != ']' {
			return fail("a selector is [*], a position such as [0], or key=value such as [name=beta]")
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil {
			return fail("position out of range")
		}
		sel.Kind, sel.Index = SelectIndex, n
		return sel, j + 1, nil
	}
	eq := strings.IndexByte(s[i:], '=')
	if eq <= 0 {
		return fail("a selector is [*], a position such as [0], or key=value such as [name=beta]")
	}
	sel.Kind, sel.Field = SelectKey, s[i:i+eq]
	if strings.ContainsAny(sel.Field, "[]\". ") {
		return fail("a selector is [*], a position such as [0], or key=value such as [name=beta]")
	}
	i += eq + 1
	if i < len(s) && s[i] == '"' {
		q, err := strconv.QuotedPrefix(s[i:])
		if err != nil {
			return fail("unterminated quoted key")
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return fail("invalid quoted key")
		}
		sel.Value = v
		i += len(q)
		if i == len(s) || s[i] != ']' {
			return fail("missing ']' after the quoted key")
		}
		return sel, i + 1, nil
	}
	end := strings.IndexByte(s[i:], ']')
	if end < 0 {
		return fail("missing ']'")
	}
	sel.Value = s[i : i+end]
	if strings.Contains(sel.Value, "[") {
		return fail("a key with '[' must be quoted: [name=\"a [b]\"]")
	}
	return sel, i + end + 1, nil
}

// FormatFieldPath renders steps as a path, quoting keys that need it (as the planner's
// field paths do).
func FormatFieldPath(steps []PathStep) string {
	var b strings.Builder
	for i, st := range steps {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(st.Name)
		switch st.Sel.Kind {
		case SelectAll:
			b.WriteString("[*]")
		case SelectIndex:
			b.WriteString("[" + strconv.Itoa(st.Sel.Index) + "]")
		case SelectKey:
			b.WriteString("[" + st.Sel.Field + "=" + QuoteKey(st.Sel.Value) + "]")
		}
	}
	return b.String()
}

// QuoteKey writes a key for a field path selector: as it is, or Go-quoted when it is
// empty, has leading or trailing spaces, or holds '[', ']', '=' or '"'.
func QuoteKey(key string) string {
	if key == "" || strings.ContainsAny(key, `[]="`) || strings.TrimSpace(key) != key {
		return strconv.Quote(key)
	}
	return key
}

// Matches reports whether the planner's field path (a FieldChange path such as
// environments.production.rolloutRules[name=beta].exposition) is this path or inside
// it.
func (p IgnorePath) Matches(field string) bool {
	steps, err := ParseFieldPath(field)
	if err != nil {
		return false
	}
	return p.MatchesSteps(steps)
}

// MatchesSteps is Matches for a parsed field path.
func (p IgnorePath) MatchesSteps(field []PathStep) bool {
	if len(p.steps) == 0 || len(field) < len(p.steps) {
		return false
	}
	for i, ps := range p.steps {
		fs := field[i]
		if ps.Name != fs.Name && ps.Name != "*" {
			return false
		}
		if ps.Name == "*" && (i == 0 || p.steps[i-1].Name != "environments") {
			return false
		}
		if !ps.Sel.matches(fs.Sel, i == len(p.steps)-1) {
			return false
		}
	}
	return true
}

// matches reports whether selector s (of an ignore path) selects field selector f; last
// says s is the ignore path's last step, where no selector means the whole list.
func (s Selector) matches(f Selector, last bool) bool {
	switch s.Kind {
	case SelectNone:
		return f.Kind == SelectNone || last
	case SelectAll:
		return f.Kind != SelectNone
	case SelectKey:
		return f.Kind == SelectKey && f.Field == s.Field && f.Value == s.Value
	case SelectIndex:
		return f.Kind == SelectIndex && f.Index == s.Index
	}
	return false
}

// SelectsKey reports whether the selector picks the element with this key (a keyed
// list) or at this position (index, for a list matched by position).
func (s Selector) SelectsKey(key string, index int) bool {
	switch s.Kind {
	case SelectAll:
		return true
	case SelectKey:
		return s.Value == key
	case SelectIndex:
		return s.Index == index
	}
	return false
}
