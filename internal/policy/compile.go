package policy

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Names of the variables every policy sees.
const (
	VarFlag   = "flag"
	VarLive   = "live"
	VarChange = "change"
	VarNow    = "now"
)

// Set is a list of compiled policies, ready to evaluate against any number of changes.
// A Set is safe for concurrent use.
type Set struct {
	policies []compiled
	adapter  *adapter
}

// compiled is one policy: its spec and programs.
type compiled struct {
	index   int
	name    string
	level   Level
	message string
	prog    cel.Program
	msgProg cel.Program // nil without messageExpr
}

// Option changes how Compile checks policies.
type Option func(*options)

type options struct {
	flag, live *Shape
	liveSet    bool
}

// WithShape makes Compile check every field a policy reads from flag and live against the
// flag-file shape s (built with ShapeFromJSONSchema): a misspelt field there is a Problem
// instead of an evaluation error. Without it, only change is checked field by field.
func WithShape(s *Shape) Option {
	return func(o *options) {
		o.flag = s
		if !o.liveSet {
			o.live = s
		}
	}
}

// WithLiveShape checks what policies read from live against s instead of the flag shape,
// for a vendor whose live flags carry more than files do (Kameleoon's read-only health);
// nil leaves live unchecked.
func WithLiveShape(s *Shape) Option { return func(o *options) { o.live, o.liveSet = s, true } }

// Len is the number of policies in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.policies)
}

// Compile type-checks and plans every policy once. It returns the set of the policies that
// compiled and one Problem for each thing wrong: an expression that does not parse or
// type-check (an unknown variable, function, or field of change), an expr whose type is not
// bool, a messageExpr whose type is not string, and the shape errors ParseYAML also finds.
// A caller that treats any problem as a validation error, as validate does, uses the Set
// only when there are none.
func Compile(specs []Spec, opts ...Option) (*Set, []Problem) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a, env, err := newEnv()
	if err != nil {
		// The environment is built from constants: failing here is a bug, not user input.
		return nil, []Problem{{Index: -1, Message: "build the CEL environment: " + err.Error()}}
	}
	set := &Set{adapter: a}
	var probs []Problem
	names := map[string]int{}
	for i := range specs {
		s := &specs[i]
		if s.skip {
			continue
		}
		if p := specProblems(i, s, names); len(p) > 0 {
			probs = append(probs, p...)
			continue
		}
		c := compiled{index: i, name: s.Name, level: Level(s.Level), message: s.Message}
		if c.level == "" {
			c.level = Deny
		}
		prog, p := compileExpr(env, i, s, FieldExpr, s.Expr, s.Pos.Expr, s.Pos.ExprText, cel.BoolType, &o)
		probs = append(probs, p...)
		if s.MessageExpr != "" {
			msg, p2 := compileExpr(env, i, s, FieldMessageExpr, s.MessageExpr, s.Pos.MessageExpr, s.Pos.MessageExprText, cel.StringType, &o)
			probs = append(probs, p2...)
			c.msgProg = msg
			if msg == nil {
				prog = nil
			}
		}
		if prog == nil {
			continue
		}
		c.prog = prog
		set.policies = append(set.policies, c)
	}
	return set, probs
}

// newEnv builds the CEL environment policies compile in: the four variables, the standard
// library, optional values (flag.?owner), and the strings, lists, sets, math, bindings
// (cel.bind) and two-variable comprehension (transformMap) extensions.
func newEnv() (*adapter, *cel.Env, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, nil, err
	}
	a := &adapter{base: reg}
	p := &provider{Registry: reg, adapter: a}
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(p),
		cel.CustomTypeAdapter(a),
		cel.Variable(VarFlag, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(VarLive, cel.DynType),
		cel.Variable(VarChange, changeType),
		cel.Variable(VarNow, cel.TimestampType),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
		ext.Lists(ext.ListsMaxRangeSize(10000)),
		ext.Sets(),
		ext.Math(),
		ext.Bindings(),
		ext.TwoVarComprehensions(),
	}
	env, err := cel.NewEnv(append(opts, functions(a)...)...)
	if err != nil {
		return nil, nil, err
	}
	return a, env, nil
}

// compileExpr compiles one expression of a policy to a program whose output must be of
// type want; on failure it returns nil and the problems, placed inside the expression where
// text says how it maps onto the file.
func compileExpr(env *cel.Env, i int, s *Spec, field, src string, at, text Position, want *cel.Type, o *options) (cel.Program, []Problem) {
	if at.IsZero() {
		at = s.Pos.Item
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var probs []Problem
		for _, e := range iss.Errors() {
			probs = append(probs, Problem{Index: i, Name: s.Name, Field: field, Pos: inText(at, text, e.Location), Message: celMessage(e, text)})
		}
		return nil, probs
	}
	if got := ast.OutputType(); !got.IsExactType(want) {
		return nil, []Problem{{Index: i, Name: s.Name, Field: field, Pos: at,
			Message: fmt.Sprintf("must be of type %s, is %s%s", want, got, typeHint(want, got))}}
	}
	if o.flag != nil || o.live != nil {
		if probs := checkShape(ast, o.flag, o.live); len(probs) > 0 {
			out := make([]Problem, len(probs))
			for j, sp := range probs {
				out[j] = Problem{Index: i, Name: s.Name, Field: field, Pos: inText(at, text, sp.loc), Message: sp.msg}
			}
			return nil, out
		}
	}
	prog, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, []Problem{{Index: i, Name: s.Name, Field: field, Pos: at, Message: "plan the program: " + err.Error()}}
	}
	return prog, nil
}

func typeHint(want, got *cel.Type) string {
	if want.IsExactType(cel.BoolType) && got.IsExactType(cel.DynType) {
		return " (a value read from flag or live has no static type: compare it, as in flag.permanent == true, or wrap it in bool(...))"
	}
	if want.IsExactType(cel.StringType) && got.IsExactType(cel.DynType) {
		return " (wrap a value read from flag or live in string(...))"
	}
	return ""
}

// celMessage is a CEL error's message; when the error's place inside the expression
// cannot be mapped onto the file, it says where in the expression it is.
func celMessage(e *common.Error, text Position) string {
	msg := strings.TrimSpace(e.Message)
	if text.IsZero() && e.Location != nil && e.Location.Line() > 0 {
		msg = fmt.Sprintf("%s (at line %d, column %d of the expression)", msg, e.Location.Line(), e.Location.Column()+1)
	}
	return msg
}

// inText places a location inside an expression onto the file, when text says where the
// expression's text starts and maps one to one; otherwise it is the expression's position.
func inText(at, text Position, loc common.Location) Position {
	if text.IsZero() || loc == nil || loc.Line() < 1 {
		return at
	}
	return Position{File: text.File, Line: text.Line + loc.Line() - 1, Column: text.Column + loc.Column()}
}
