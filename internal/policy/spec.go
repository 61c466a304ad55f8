package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Level is what a policy's refusal does to a change.
type Level string

const (
	// Deny refuses the change: it is shown with the policy's message and never applied.
	Deny Level = "deny"
	// Warn shows the policy's message with the change, which is applied.
	Warn Level = "warn"
)

// Spec is one entry of the `policies:` list of flagsync.yaml, as written.
type Spec struct {
	// Name identifies the policy in plans and messages; unique within the list.
	Name string
	// Level is "deny" or "warn"; empty means deny.
	Level string
	// Message is shown when the policy refuses a change.
	Message string
	// MessageExpr, when set, is a CEL expression of type string over the same variables
	// as Expr, whose value is shown instead of Message (Message is the fallback when it
	// fails to evaluate).
	MessageExpr string
	// Expr is a CEL expression of type bool, evaluated once per planned change; true allows
	// the change.
	Expr string
	// Pos says where the entry and its fields were written, for diagnostics; optional.
	Pos Positions

	// skip marks an entry ParseYAML already reported a problem for: Compile leaves it out
	// but keeps counting, so that indexes stay those of the list in the file.
	skip bool
}

// Positions says where a policy and its fields were written. Every position is optional;
// a zero Position is unknown and left out of messages.
type Positions struct {
	// Item is the list entry; the others are the values of its keys.
	Item, Name, Level, Message, MessageExpr, Expr Position
	// ExprText and MessageExprText are where the first character of the expression's text
	// is, when the text's lines and columns map one to one onto the file (a literal block
	// scalar `|`, or a one-line scalar without escapes); then an error inside the
	// expression is reported at its own line and column. Zero otherwise.
	ExprText, MessageExprText Position
}

// Position is a place in a file; Line and Column are 1-based, zero when unknown.
type Position struct {
	File         string
	Line, Column int
}

// IsZero reports whether nothing is known of the position.
func (p Position) IsZero() bool { return p.File == "" && p.Line == 0 }

// String renders the position as file:line:col, leaving out what is unknown.
func (p Position) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	return b.String()
}

// Field names a Problem can carry.
const (
	FieldItem        = ""
	FieldName        = "name"
	FieldLevel       = "level"
	FieldMessage     = "message"
	FieldMessageExpr = "messageExpr"
	FieldExpr        = "expr"
)

// Problem is something wrong with a policy, found before any change is evaluated: a shape
// error in the YAML, an expression that does not compile, a reference to an unknown field,
// an expression of the wrong type.
type Problem struct {
	// Index is the policy's position in the list (0-based), -1 for the list itself.
	Index int
	// Name is the policy's name, when it has one.
	Name string
	// Field is the key of the policy the problem is about (FieldExpr, FieldLevel, ...);
	// FieldItem for the entry as a whole.
	Field string
	// Pos is where the problem is, when the Spec carried positions; for an expression, the
	// line and column inside it where they map onto the file.
	Pos Position
	// Message says what is wrong.
	Message string
}

// Path is the problem's place in flagsync.yaml's shape: policies[2].expr.
func (p Problem) Path() string {
	if p.Index < 0 {
		return "policies"
	}
	s := fmt.Sprintf("policies[%d]", p.Index)
	if p.Field != "" {
		s += "." + p.Field
	}
	return s
}

// Error renders the problem as file:line:col: policies[2].expr: message, leaving out the
// position when it is unknown.
func (p Problem) Error() string {
	where := p.Path()
	if p.Name != "" {
		where += " (" + p.Name + ")"
	}
	if !p.Pos.IsZero() {
		return p.Pos.String() + ": " + where + ": " + p.Message
	}
	return where + ": " + p.Message
}

// ParseYAML reads the value of the `policies:` key of a settings file (a sequence of
// mappings) into Specs with every position filled in. file names the file in positions;
// src, when given, is the file's text, used to place errors inside literal block
// expressions exactly. Shape errors (not a list, unknown or duplicate keys, a value that is
// not a string, a missing name or expr, an unknown level, a duplicate name) are Problems.
// It returns one Spec per entry, in order, so that Compile's indexes are the file's; an
// entry with a problem is marked, and Compile leaves it out without reporting it again.
func ParseYAML(file string, src []byte, node *yaml.Node) ([]Spec, []Problem) {
	pos := func(n *yaml.Node) Position { return Position{File: file, Line: n.Line, Column: n.Column} }
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null" {
		return nil, nil
	}
	if node.Kind != yaml.SequenceNode {
		return nil, []Problem{{Index: -1, Pos: pos(node), Message: "must be a list of {name, level, message, expr}"}}
	}
	var lines []string
	if src != nil {
		lines = strings.Split(string(src), "\n")
	}
	var specs []Spec
	var probs []Problem
	names := map[string]int{}
	for i, item := range node.Content {
		if item.Kind != yaml.MappingNode {
			probs = append(probs, Problem{Index: i, Pos: pos(item), Message: "must be a mapping {name, level, message, expr}"})
			specs = append(specs, Spec{Pos: Positions{Item: pos(item)}, skip: true})
			continue
		}
		s := Spec{Pos: Positions{Item: pos(item)}}
		bad := false
		seen := map[string]bool{}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			if seen[k.Value] {
				probs = append(probs, Problem{Index: i, Field: k.Value, Pos: pos(k), Message: "duplicate key"})
				bad = true
				continue
			}
			seen[k.Value] = true
			var dst *string
			var at *Position
			switch k.Value {
			case FieldName:
				dst, at = &s.Name, &s.Pos.Name
			case FieldLevel:
				dst, at = &s.Level, &s.Pos.Level
			case FieldMessage:
				dst, at = &s.Message, &s.Pos.Message
			case FieldMessageExpr:
				dst, at = &s.MessageExpr, &s.Pos.MessageExpr
				s.Pos.MessageExprText = textOrigin(file, lines, k, v)
			case FieldExpr:
				dst, at = &s.Expr, &s.Pos.Expr
				s.Pos.ExprText = textOrigin(file, lines, k, v)
			default:
				probs = append(probs, Problem{Index: i, Field: k.Value, Pos: pos(k),
					Message: "unknown key (a policy has name, level, message, messageExpr and expr)"})
				bad = true
				continue
			}
			*at = pos(v)
			if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
				probs = append(probs, Problem{Index: i, Field: k.Value, Pos: pos(v), Message: "must be a string"})
				bad = true
				continue
			}
			*dst = v.Value
		}
		for _, p := range specProblems(i, &s, names) {
			probs = append(probs, p)
			bad = true
		}
		s.skip = bad
		specs = append(specs, s)
	}
	return specs, probs
}

// specProblems checks the fields of one Spec that need no compiler: a name, an expr, a
// known level, a unique name. names collects the names seen so far.
func specProblems(i int, s *Spec, names map[string]int) []Problem {
	var probs []Problem
	at := func(p Position) Position {
		if p.IsZero() {
			return s.Pos.Item
		}
		return p
	}
	if strings.TrimSpace(s.Name) == "" {
		probs = append(probs, Problem{Index: i, Field: FieldName, Pos: at(s.Pos.Name), Message: "required: a name that identifies the policy in plans"})
	} else if j, dup := names[s.Name]; dup {
		probs = append(probs, Problem{Index: i, Name: s.Name, Field: FieldName, Pos: at(s.Pos.Name),
			Message: fmt.Sprintf("duplicate policy name (policies[%d] has it too)", j)})
	} else {
		names[s.Name] = i
	}
	switch Level(s.Level) {
	case "", Deny, Warn:
	default:
		probs = append(probs, Problem{Index: i, Name: s.Name, Field: FieldLevel, Pos: at(s.Pos.Level),
			Message: fmt.Sprintf("must be deny or warn, not %q", s.Level)})
	}
	if strings.TrimSpace(s.Expr) == "" {
		probs = append(probs, Problem{Index: i, Name: s.Name, Field: FieldExpr, Pos: at(s.Pos.Expr),
			Message: "required: a CEL expression that is true when the change is allowed"})
	}
	if strings.TrimSpace(s.Message) == "" && strings.TrimSpace(s.MessageExpr) == "" {
		probs = append(probs, Problem{Index: i, Name: s.Name, Field: FieldMessage, Pos: at(s.Pos.Message),
			Message: "required: message (or messageExpr), shown when the policy refuses a change"})
	}
	return probs
}

// textOrigin is where the first character of scalar v's text is, when its lines and
// columns map one to one onto the file; zero otherwise (folded or multi-line flow scalars,
// escapes, or a block scalar whose indentation cannot be read because src is missing).
func textOrigin(file string, lines []string, k, v *yaml.Node) Position {
	if v.Kind != yaml.ScalarNode {
		return Position{}
	}
	switch v.Style {
	case yaml.LiteralStyle:
		if lines == nil || v.Line >= len(lines) {
			return Position{}
		}
		// The text starts on the line after the indicator; its indentation is that of the
		// first line that is not blank.
		for l := v.Line; l < len(lines); l++ {
			line := lines[l]
			if strings.TrimSpace(line) == "" {
				continue
			}
			indent := len(line) - len(strings.TrimLeft(line, " "))
			if indent <= k.Column-1 {
				return Position{}
			}
			return Position{File: file, Line: v.Line + 1, Column: indent + 1}
		}
		return Position{}
	case 0: // plain
		if strings.Contains(v.Value, "\n") {
			return Position{}
		}
		return Position{File: file, Line: v.Line, Column: v.Column}
	case yaml.SingleQuotedStyle:
		if strings.ContainsAny(v.Value, "'\n") {
			return Position{}
		}
		return Position{File: file, Line: v.Line, Column: v.Column + 1}
	case yaml.DoubleQuotedStyle:
		if strings.ContainsAny(v.Value, "\"\\\n\t") {
			return Position{}
		}
		return Position{File: file, Line: v.Line, Column: v.Column + 1}
	}
	return Position{}
}
