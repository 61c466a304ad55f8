package jsonpatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Error is why a patch was refused. Nothing of the document was changed.
type Error struct {
	Index   int    // the failing operation's position in the patch, from 0; -1 for the patch as a whole
	Op      string // the failing operation's op, when known
	Path    string // the failing operation's path, when known
	Message string
	// TestFailed is set when a test operation found a different value: the document is
	// not in the state the patch was written for (409 Conflict), as opposed to a patch
	// that is malformed or cannot apply (400 Bad Request).
	TestFailed bool
}

// Error renders the error as "operation 2 (remove /rules/3): message".
func (e *Error) Error() string {
	if e.Index < 0 {
		return "json patch: " + e.Message
	}
	what := e.Op
	if e.Path != "" || e.Op != "" {
		what = fmt.Sprintf("%s %s", e.Op, e.Path)
	}
	return fmt.Sprintf("json patch operation %d (%s): %s", e.Index, what, e.Message)
}

// Apply applies patch (an RFC 6902 patch document) to doc and returns the result. It
// follows RFC 6902 exactly: operations apply in order to the result of the previous one,
// and if any fails — a failed test, a missing target, an invalid member or index — Apply
// returns an *Error and no result: the patch applies entirely or not at all.
//
// Numbers keep their text (JSON numbers are compared numerically by test); members of
// the result keep no particular order.
func Apply(doc, patch []byte) ([]byte, error) {
	d, err := decode(doc)
	if err != nil {
		return nil, &Error{Index: -1, Message: "document: " + err.Error()}
	}
	ops, err := parsePatch(patch)
	if err != nil {
		return nil, err
	}
	for i, op := range ops {
		if d, err = op.apply(d); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				pe.Index, pe.Op, pe.Path = i, op.op, op.path
				return nil, pe
			}
			return nil, &Error{Index: i, Op: op.op, Path: op.path, Message: err.Error()}
		}
	}
	out, err := marshal(d)
	if err != nil {
		return nil, &Error{Index: -1, Message: "encode result: " + err.Error()}
	}
	return out, nil
}

// decode reads one JSON value, keeping numbers as json.Number.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: data after the value")
	}
	return v, nil
}

// operation is one parsed operation of a patch being applied.
type operation struct {
	op       string
	path     string
	from     string
	tokens   []string
	fromToks []string
	value    any
}

// parsePatch checks the patch document's shape: an array of objects, each with a known
// op, a valid path, and the members that op requires. Members an op does not use are
// ignored, as RFC 6902 §4 says.
func parsePatch(patch []byte) ([]operation, error) {
	v, err := decode(patch)
	if err != nil {
		return nil, &Error{Index: -1, Message: "patch: " + err.Error()}
	}
	list, ok := v.([]any)
	if !ok {
		return nil, &Error{Index: -1, Message: "patch: must be a JSON array of operations"}
	}
	ops := make([]operation, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, &Error{Index: i, Message: "must be a JSON object"}
		}
		str := func(name string) (string, error) {
			x, ok := m[name]
			if !ok {
				return "", fmt.Errorf("missing member %q", name)
			}
			s, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("member %q must be a string", name)
			}
			return s, nil
		}
		var o operation
		fail := func(err error) error { return &Error{Index: i, Op: o.op, Path: o.path, Message: err.Error()} }
		if o.op, err = str("op"); err != nil {
			return nil, fail(err)
		}
		switch o.op {
		case OpAdd, OpRemove, OpReplace, OpMove, OpCopy, OpTest:
		default:
			return nil, fail(fmt.Errorf("unknown op %q (want add, remove, replace, move, copy or test)", o.op))
		}
		if o.path, err = str("path"); err != nil {
			return nil, fail(err)
		}
		if o.tokens, err = ParsePointer(o.path); err != nil {
			return nil, fail(err)
		}
		switch o.op {
		case OpAdd, OpReplace, OpTest:
			x, ok := m["value"]
			if !ok {
				return nil, fail(errors.New(`missing member "value"`))
			}
			o.value = x
		case OpMove, OpCopy:
			if o.from, err = str("from"); err != nil {
				return nil, fail(err)
			}
			if o.fromToks, err = ParsePointer(o.from); err != nil {
				return nil, fail(err)
			}
		}
		ops[i] = o
	}
	return ops, nil
}

func (o *operation) apply(doc any) (any, error) {
	switch o.op {
	case OpAdd:
		return add(doc, o.tokens, o.value)
	case OpRemove:
		if len(o.tokens) == 0 {
			return nil, errors.New("cannot remove the whole document")
		}
		out, _, err := remove(doc, o.tokens)
		return out, err
	case OpReplace:
		if len(o.tokens) == 0 {
			return o.value, nil
		}
		return mutate(doc, o.tokens, func(c any, t string) (any, error) {
			switch c := c.(type) {
			case map[string]any:
				if _, ok := c[t]; !ok {
					return nil, fmt.Errorf("member %q does not exist", t)
				}
				c[t] = o.value
				return c, nil
			case []any:
				i, err := arrayIndex(t, len(c), false)
				if err != nil {
					return nil, err
				}
				c[i] = o.value
				return c, nil
			}
			return nil, fmt.Errorf("cannot replace %q inside %s", t, kind(c))
		})
	case OpMove:
		if slices.Equal(o.tokens, o.fromToks) {
			_, err := get(doc, o.fromToks)
			return doc, err
		}
		if len(o.fromToks) < len(o.tokens) && slices.Equal(o.fromToks, o.tokens[:len(o.fromToks)]) {
			return nil, fmt.Errorf("cannot move %s into its own child", o.from)
		}
		if len(o.fromToks) == 0 {
			return nil, errors.New("cannot move the whole document")
		}
		out, v, err := remove(doc, o.fromToks)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		return add(out, o.tokens, v)
	case OpCopy:
		v, err := get(doc, o.fromToks)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		return add(doc, o.tokens, deepCopy(v))
	case OpTest:
		v, err := get(doc, o.tokens)
		if err != nil {
			return nil, err
		}
		if !Equal(v, o.value) {
			return nil, &Error{TestFailed: true, Message: "test failed: the value is " + describe(v)}
		}
		return doc, nil
	}
	return nil, fmt.Errorf("unknown op %q", o.op)
}

// get returns the value at tokens.
func get(doc any, tokens []string) (any, error) {
	v := doc
	for _, t := range tokens {
		switch c := v.(type) {
		case map[string]any:
			x, ok := c[t]
			if !ok {
				return nil, fmt.Errorf("member %q does not exist", t)
			}
			v = x
		case []any:
			i, err := arrayIndex(t, len(c), false)
			if err != nil {
				return nil, err
			}
			v = c[i]
		default:
			return nil, fmt.Errorf("cannot look up %q inside %s", t, kind(c))
		}
	}
	return v, nil
}

// mutate calls fn with the container that holds the last token and stores the container
// fn returns in its parent (an array that grows or shrinks is a new slice).
func mutate(doc any, tokens []string, fn func(container any, token string) (any, error)) (any, error) {
	if len(tokens) == 1 {
		return fn(doc, tokens[0])
	}
	t := tokens[0]
	switch c := doc.(type) {
	case map[string]any:
		child, ok := c[t]
		if !ok {
			return nil, fmt.Errorf("member %q does not exist", t)
		}
		nc, err := mutate(child, tokens[1:], fn)
		if err != nil {
			return nil, err
		}
		c[t] = nc
		return c, nil
	case []any:
		i, err := arrayIndex(t, len(c), false)
		if err != nil {
			return nil, err
		}
		nc, err := mutate(c[i], tokens[1:], fn)
		if err != nil {
			return nil, err
		}
		c[i] = nc
		return c, nil
	}
	return nil, fmt.Errorf("cannot look up %q inside %s", t, kind(doc))
}

func add(doc any, tokens []string, v any) (any, error) {
	if len(tokens) == 0 {
		return v, nil
	}
	return mutate(doc, tokens, func(c any, t string) (any, error) {
		switch c := c.(type) {
		case map[string]any:
			c[t] = v
			return c, nil
		case []any:
			i, err := arrayIndex(t, len(c), true)
			if err != nil {
				return nil, err
			}
			return slices.Insert(c, i, v), nil
		}
		return nil, fmt.Errorf("cannot add %q inside %s", t, kind(c))
	})
}

// remove deletes the value at tokens (not the root) and returns it.
func remove(doc any, tokens []string) (any, any, error) {
	var removed any
	out, err := mutate(doc, tokens, func(c any, t string) (any, error) {
		switch c := c.(type) {
		case map[string]any:
			x, ok := c[t]
			if !ok {
				return nil, fmt.Errorf("member %q does not exist", t)
			}
			removed = x
			delete(c, t)
			return c, nil
		case []any:
			i, err := arrayIndex(t, len(c), false)
			if err != nil {
				return nil, err
			}
			removed = c[i]
			return slices.Delete(c, i, i+1), nil
		}
		return nil, fmt.Errorf("cannot remove %q inside %s", t, kind(c))
	})
	return out, removed, err
}

// Equal reports whether two decoded JSON values are equal as RFC 6902's test defines it:
// numbers by value, strings, booleans and null by identity, arrays element by element,
// objects member by member whatever their order. Values may come from encoding/json with
// or without UseNumber.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !Equal(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	xn, ok1 := number(a)
	yn, ok2 := number(b)
	return ok1 && ok2 && xn.Cmp(yn) == 0
}

// number reads a decoded JSON number exactly.
func number(v any) (*big.Rat, bool) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(n) == nil {
			return nil, false
		}
		return r, true
	default:
		return nil, false
	}
	if hugeExponent(s) {
		// 1e999999999 would take big.Rat minutes and gigabytes: compare such numbers as
		// float64, where they are ±Inf or 0 anyway.
		f, _ := strconv.ParseFloat(s, 64)
		r := new(big.Rat)
		if math.IsInf(f, 0) || r.SetFloat64(f) == nil {
			return big.NewRat(int64(math.Copysign(1, f))*math.MaxInt64, 1), true
		}
		return r, true
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// hugeExponent reports whether a number's exponent is too large to compute exactly.
func hugeExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	return err != nil || e > 400 || e < -400
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

// describe renders a value for an error message, cut short.
func describe(v any) string {
	b, err := marshal(v)
	if err != nil {
		return kind(v)
	}
	const max = 80
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
