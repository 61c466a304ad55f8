package policy

import (
	"fmt"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Input is what the policies see for one planned change.
type Input struct {
	// Change is the planned change.
	Change Change
	// Flag is the flag file's content in the flag-file shape, as plain data (see Plain and
	// FromYAML); nil reads as an empty map (a flag archived because its file is gone).
	// The same map may be shared by every change of the flag, and is only read.
	Flag map[string]any
	// Live is the live flag in the same shape, nil for a flag the vendor does not have yet.
	Live map[string]any
	// Now is the time policies read as `now`; the zero time means time.Now() when Evaluate
	// runs (tests and the planner set it, so plans stay reproducible).
	Now time.Time
}

// Result is one policy's verdict on one change.
type Result struct {
	// Index is the policy's place in the list given to Compile.
	Index int
	// Name is the policy's name.
	Name string
	// Level is the policy's level; Deny whenever Err is set, since a policy that cannot
	// decide never lets a change through silently.
	Level Level
	// Allowed is true when the expression returned true.
	Allowed bool
	// Message is empty when Allowed; otherwise the policy's message (its messageExpr's
	// value when it has one), or the evaluation error.
	Message string
	// Err is the error that stopped the evaluation, nil when the expression returned a bool.
	Err error
}

// EvalError is the error of a policy that could not decide on a change: a missing key in
// flag or live, an operation on values of the wrong type, a division by zero.
type EvalError struct {
	// Policy is the policy's name.
	Policy string
	// Err is CEL's error.
	Err error
}

// Error implements error.
func (e *EvalError) Error() string { return fmt.Sprintf("policy %s: %v", e.Policy, e.Err) }

// Unwrap returns the underlying error.
func (e *EvalError) Unwrap() error { return e.Err }

// Evaluate runs every policy of the set on one change and returns one Result per policy, in
// the order of the list given to Compile.
func (s *Set) Evaluate(in Input) []Result {
	return s.AppendEvaluate(nil, &in)
}

// AppendEvaluate is Evaluate appending to dst, for a caller that evaluates many changes and
// reuses one slice.
func (s *Set) AppendEvaluate(dst []Result, in *Input) []Result {
	if s == nil || len(s.policies) == 0 {
		return dst
	}
	act := s.activation(in)
	for i := range s.policies {
		dst = append(dst, s.policies[i].eval(act))
	}
	return dst
}

// Denied reports whether any result refuses its change at level deny.
func Denied(results []Result) bool {
	for _, r := range results {
		if !r.Allowed && r.Level == Deny {
			return true
		}
	}
	return false
}

// Refusals returns the results that did not allow their change (denials and warnings),
// in order.
func Refusals(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !r.Allowed {
			out = append(out, r)
		}
	}
	return out
}

func (c *compiled) eval(act *activation) Result {
	r := Result{Index: c.index, Name: c.name, Level: c.level}
	out, _, err := c.prog.Eval(act)
	if err == nil {
		b, ok := out.(types.Bool)
		if !ok {
			err = fmt.Errorf("returned %s, not a bool", out.Type().TypeName())
		} else if b {
			r.Allowed = true
			return r
		}
	}
	if err != nil {
		r.Err = &EvalError{Policy: c.name, Err: err}
		r.Level = Deny
		r.Message = "could not evaluate the policy, so the change is refused: " + err.Error()
		return r
	}
	r.Message = c.message
	if c.msgProg != nil {
		m, _, merr := c.msgProg.Eval(act)
		if s, ok := m.(types.String); merr == nil && ok {
			r.Message = string(s)
		} else if merr != nil && r.Message == "" {
			r.Message = "(messageExpr failed: " + merr.Error() + ")"
		}
	}
	return r
}

// activation resolves the four variables of one change; it is built once per change and
// shared by every policy of the set, so the flag and live documents are wrapped once.
type activation struct {
	change changeVal
	flag   ref.Val
	live   ref.Val
	now    ref.Val
}

func (s *Set) activation(in *Input) *activation {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	act := &activation{
		change: changeVal{c: &in.Change, adapter: s.adapter},
		flag:   s.adapter.NativeToValue(in.Flag),
		live:   types.NullValue,
		now:    types.Timestamp{Time: now},
	}
	if in.Live != nil {
		act.live = s.adapter.NativeToValue(in.Live)
	}
	return act
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case VarChange:
		return &a.change, true
	case VarFlag:
		return a.flag, true
	case VarLive:
		return a.live, true
	case VarNow:
		return a.now, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }
