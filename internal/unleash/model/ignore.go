package unleashmodel

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// An ignore path names, in the flag file's own shape, a field flagsync leaves to someone
// else (Unleash's UI, another tool): it is never written, and a difference there is shown in
// the plan as owned outside Git. The grammar is the planner's field paths, with wildcards:
//
//	path     = step *("." step)
//	step     = name [ "[" selector "]" ]
//	selector = "*" | index | "title=" value      ; value: text up to "]", or a Go-quoted string
//
// The paths that can match a field flagsync writes are
//
//	description | type | impressionData | tags
//	environments.<env|*>.enabled
//	environments.<env|*>.strategies                          (every strategy of the environment)
//	environments.<env|*>.strategies[<sel>].disabled|parameters|constraints|segments|variants
//	environments.<env|*>.strategies[<sel>].parameters.<name>
//
// where a strategy is selected as it is identified (see MatchStrategies): [title=beta] for
// a titled strategy, [2] for the strategy at that position in the flag file's list when it
// is untitled, or [*]. Ignoring a field of a strategy flagsync creates has no effect: a new
// strategy is written as Git has it.
type IgnorePath struct {
	raw   string
	steps []PathStep
}

// PathStep is one step of a field path: a field name (under environments, an environment
// name or *) and, for the strategies list, which strategies.
type PathStep struct {
	Name   string
	Sel    Selector
	Offset int // byte offset of the step in the path, for diagnostics
}

// SelectorKind says how a step selects strategies.
type SelectorKind int

// Selector kinds.
const (
	SelectNone  SelectorKind = iota // the field itself (the whole list)
	SelectAll                       // [*]
	SelectTitle                     // [title=value]
	SelectIndex                     // [0]
)

// Selector picks elements of a list.
type Selector struct {
	Kind   SelectorKind
	Value  string // SelectTitle: the title
	Index  int    // SelectIndex
	Offset int    // byte offset of "[" in the path
}

// PathError is what is wrong with an ignore path, and where.
type PathError struct {
	Path   string // the path as written
	Offset int    // byte offset in Path of the step the problem is at
	Msg    string
	// Near and Candidates, when set, are the name written at Offset and the names valid
	// there, for a "did you mean" hint.
	Near       string
	Candidates []string
}

// Error says what is wrong.
func (e *PathError) Error() string { return e.Msg }

// String renders the path as written, normalised.
func (p IgnorePath) String() string { return p.raw }

var (
	flagFields     = []string{"description", "environments", "impressionData", "tags", "type"}
	envFields      = []string{"enabled", "strategies"}
	strategyFields = []string{"constraints", "disabled", "parameters", "segments", "variants"}
	fixedFields    = map[string]string{
		"name":     "it identifies the flag",
		"project":  "it identifies the flag",
		"archived": "flagsync archives or revives a flag only as Git says",
		"vendor":   "it is flagsync's own field, never sent to Unleash",
		"ignore":   "it is flagsync's own field, never sent to Unleash",
	}
)

// ParseIgnorePath parses one ignore path and checks that it can match a field flagsync
// writes. The error is a *PathError.
func ParseIgnorePath(s string) (IgnorePath, error) {
	steps, err := ParseFieldPath(s)
	if err != nil {
		return IgnorePath{}, err
	}
	if err := (pathCheck{s: s, steps: steps}).flag(); err != nil {
		return IgnorePath{}, err
	}
	return IgnorePath{raw: FormatFieldPath(steps), steps: steps}, nil
}

// pathCheck checks a parsed ignore path, one method per level of a flag file: the flag,
// an environment, its strategies, a strategy's field.
type pathCheck struct {
	s     string
	steps []PathStep
}

func (c pathCheck) fail(i int, msg string) error {
	return &PathError{Path: c.s, Offset: c.steps[i].Offset, Msg: msg}
}

// unknown is an unknown field name at step i, with the names valid there.
func (c pathCheck) unknown(i int, where string, names []string) error {
	return &PathError{Path: c.s, Offset: c.steps[i].Offset, Msg: fmt.Sprintf("unknown field %q in %s", c.steps[i].Name, where),
		Near: c.steps[i].Name, Candidates: names}
}

// noSel refuses a selector on step i, which is not a list of strategies.
func (c pathCheck) noSel(i int) error {
	if c.steps[i].Sel.Kind != SelectNone {
		return &PathError{Path: c.s, Offset: c.steps[i].Sel.Offset, Msg: c.steps[i].Name + " is not a list of strategies: no selector"}
	}
	return nil
}

// last refuses steps after step i, a field without fields.
func (c pathCheck) last(i int) error {
	if i != len(c.steps)-1 {
		return c.fail(i+1, c.steps[i].Name+" has no fields: ignore it as a whole")
	}
	return nil
}

// flag checks the first step, a field of the flag.
func (c pathCheck) flag() error {
	first := c.steps[0]
	if why, ok := fixedFields[first.Name]; ok {
		return c.fail(0, first.Name+" cannot be ignored: "+why)
	}
	if slices.Contains(envFields, first.Name) {
		return c.fail(0, fmt.Sprintf("%s is a field of an environment: write environments.*.%s", first.Name, FormatFieldPath(c.steps)))
	}
	if !slices.Contains(flagFields, first.Name) {
		return c.unknown(0, "a flag", flagFields)
	}
	if err := c.noSel(0); err != nil {
		return err
	}
	if first.Name != "environments" {
		return c.last(0)
	}
	return c.environment()
}

// environment checks environments.<env>.<field>.
func (c pathCheck) environment() error {
	steps := c.steps
	if len(steps) < 3 {
		if len(steps) == 2 && slices.Contains(envFields, steps[1].Name) {
			return c.fail(1, "environments is a map keyed by environment: name one, or * for every environment, as in environments.*."+steps[1].Name)
		}
		return c.fail(len(steps)-1, "a path ends at a field of an environment, such as environments.*.enabled")
	}
	if err := c.noSel(1); err != nil {
		return err
	}
	if !slices.Contains(envFields, steps[2].Name) {
		return c.unknown(2, "an environment", envFields)
	}
	if steps[2].Name == "enabled" {
		if err := c.noSel(2); err != nil {
			return err
		}
		return c.last(2)
	}
	return c.strategies()
}

// strategies checks environments.<env>.strategies: the whole list, or a field of the
// strategies a selector picks.
func (c pathCheck) strategies() error {
	switch {
	case c.steps[2].Sel.Kind == SelectNone && len(c.steps) > 3:
		return c.fail(2, "strategies is a list: select strategies with [*], [title=…] or a position such as [0]")
	case c.steps[2].Sel.Kind == SelectNone:
		return nil
	case len(c.steps) == 3:
		return c.fail(2, "a path ends at a field: ignore a field of the strategies, or the whole strategies list")
	}
	return c.strategyField()
}

// strategyField checks the field of a strategy a path ends at (a parameter's name may
// follow parameters).
func (c pathCheck) strategyField() error {
	field := c.steps[3]
	switch {
	case field.Name == "name":
		return c.fail(3, "a strategy's name (its type) cannot be ignored")
	case field.Name == "title":
		return c.fail(3, "a strategy's title cannot be ignored: it identifies the strategy")
	case !slices.Contains(strategyFields, field.Name):
		return c.unknown(3, "a strategy", strategyFields)
	}
	if err := c.noSel(3); err != nil {
		return err
	}
	if field.Name == "parameters" && len(c.steps) == 5 {
		return c.noSel(4)
	}
	return c.last(3)
}

// ParseFieldPath parses a field path of the planner's grammar without checking its names.
// The error is a *PathError.
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
func parseSelector(s string, at int) (Selector, int, error) {
	fail := func(msg string) (Selector, int, error) {
		return Selector{}, 0, &PathError{Path: s, Offset: at, Msg: msg}
	}
	const help = "a selector is [*], a position such as [0], or a title such as [title=beta]"
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
		n, err := strconv.Atoi(s[i:j])
		if j == len(s) || s[j] != ']' || err != nil {
			return fail(help)
		}
		sel.Kind, sel.Index = SelectIndex, n
		return sel, j + 1, nil
	case strings.HasPrefix(s[i:], "title="):
		i += len("title=")
	default:
		if eq := strings.IndexByte(s[i:], '='); eq > 0 && !strings.ContainsAny(s[i:i+eq], "]") {
			return fail(fmt.Sprintf("strategies are selected by title, not %s: write [title=…]", s[i:i+eq]))
		}
		return fail(help)
	}
	sel.Kind = SelectTitle
	if i < len(s) && s[i] == '"' {
		q, err := strconv.QuotedPrefix(s[i:])
		if err != nil {
			return fail("unterminated quoted title")
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return fail("invalid quoted title")
		}
		sel.Value = v
		i += len(q)
		if i == len(s) || s[i] != ']' {
			return fail("missing ']' after the quoted title")
		}
		return sel, i + 1, nil
	}
	end := strings.IndexByte(s[i:], ']')
	if end < 0 {
		return fail("missing ']'")
	}
	sel.Value = s[i : i+end]
	if strings.Contains(sel.Value, "[") {
		return fail(`a title with '[' must be quoted: [title="a [b]"]`)
	}
	return sel, i + end + 1, nil
}

// FormatFieldPath renders steps as a path, quoting titles that need it.
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
		case SelectTitle:
			b.WriteString("[title=" + QuoteKey(st.Sel.Value) + "]")
		}
	}
	return b.String()
}

// Matches reports whether the planner's field path (such as
// environments.production.strategies[title=beta].parameters.rollout) is this path or inside
// it.
func (p IgnorePath) Matches(field string) bool {
	steps, err := ParseFieldPath(field)
	if err != nil || len(p.steps) == 0 || len(steps) < len(p.steps) {
		return false
	}
	for i, ps := range p.steps {
		fs := steps[i]
		if ps.Name != fs.Name && !(ps.Name == "*" && i == 1 && p.steps[0].Name == "environments") {
			return false
		}
		last := i == len(p.steps)-1
		switch ps.Sel.Kind {
		case SelectNone:
			if fs.Sel.Kind != SelectNone && !last {
				return false
			}
		case SelectAll:
			if fs.Sel.Kind == SelectNone {
				return false
			}
		case SelectTitle:
			if fs.Sel.Kind != SelectTitle || fs.Sel.Value != ps.Sel.Value {
				return false
			}
		case SelectIndex:
			if fs.Sel.Kind != SelectIndex || fs.Sel.Index != ps.Sel.Index {
				return false
			}
		}
	}
	return true
}

// Ignores is the ignore paths that apply to one flag, each with the file it is written in.
type Ignores []Ignore

// Ignore is one parsed ignore path and where it is written.
type Ignore struct {
	Path   IgnorePath
	Source string // flagsync.yaml or the flag file
}

// Match returns the first ignore path that matches field, and whether one does.
func (is Ignores) Match(field string) (Ignore, bool) {
	for _, i := range is {
		if i.Path.Matches(field) {
			return i, true
		}
	}
	return Ignore{}, false
}
