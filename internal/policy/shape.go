package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Shape is the tree of field names a flag file may hold, as its JSON Schema declares them.
// Compile uses it (WithShape) to check every field a policy reads from flag and live by
// name: flag.ownr and r.expositon inside rolloutRules.all(r, …) become Problems. Build one
// with ShapeFromJSONSchema; merge the shapes of several vendors with Merge.
type Shape struct {
	path   string            // where this shape sits, for messages: environments.<key>.rolloutRules[]
	kind   shapeKind         // what the schema says this value is
	fields map[string]*Shape // the declared keys of an object
	strict bool              // an object that allows no other key
	values *Shape            // the value of an object keyed by the user's names (environments.<key>)
	elem   *Shape            // the element of an array
}

type shapeKind int

const (
	kindOpen   shapeKind = iota // anything: nothing is checked below
	kindObject                  // a mapping
	kindArray                   // a list
	kindScalar                  // a string, number or boolean
)

// Field returns the shape of the object's key name; it adds the key, as a value of any
// shape, when the object does not declare it. This is how a caller adds fields the schema
// does not list yet.
func (s *Shape) Field(name string) *Shape {
	if s.fields == nil {
		s.fields = map[string]*Shape{}
	}
	if f, ok := s.fields[name]; ok {
		return f
	}
	f := &Shape{path: joinPath(s.path, name)}
	s.fields[name] = f
	return f
}

// Merge returns a shape that allows what either shape allows (a repository with flags of
// several vendors checks policies against all of their shapes).
func Merge(a, b *Shape) *Shape {
	if a == nil || b == nil || a.kind != b.kind || a.kind == kindOpen {
		if a != nil && b != nil && a.kind == b.kind {
			return a
		}
		return &Shape{path: pathOf(a, b)}
	}
	m := &Shape{path: a.path, kind: a.kind, strict: a.strict && b.strict}
	switch a.kind {
	case kindArray:
		m.elem = Merge(a.elem, b.elem)
	case kindObject:
		if a.values != nil || b.values != nil {
			m.values = Merge(a.values, b.values)
			if a.values == nil || b.values == nil {
				m.values = &Shape{path: m.path + ".<key>"}
			}
		}
		m.fields = map[string]*Shape{}
		for k, f := range a.fields {
			m.fields[k] = f
		}
		for k, f := range b.fields {
			if g, ok := m.fields[k]; ok {
				m.fields[k] = Merge(g, f)
			} else {
				m.fields[k] = f
			}
		}
	}
	return m
}

func pathOf(a, b *Shape) string {
	if a != nil {
		return a.path
	}
	if b != nil {
		return b.path
	}
	return ""
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// ShapeFromJSONSchema builds the shape of the documents a JSON Schema describes: the
// properties of each object (and whether it allows others), the values of objects keyed
// by the user's names (additionalProperties or patternProperties with a schema), the items
// of arrays; local $ref, allOf, anyOf, oneOf and if/then/else are followed. A value the
// schema says nothing about accepts any field.
func ShapeFromJSONSchema(schema []byte) (*Shape, error) {
	var root map[string]any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, fmt.Errorf("read JSON Schema: %w", err)
	}
	b := schemaBuilder{root: root, seen: map[string]*Shape{}}
	return b.build(root, ""), nil
}

type schemaBuilder struct {
	root map[string]any
	seen map[string]*Shape
}

func (b *schemaBuilder) build(s map[string]any, path string) *Shape {
	if ref, ok := s["$ref"].(string); ok && strings.HasPrefix(ref, "#/") {
		return b.ref(ref, path)
	}
	sh := &Shape{path: path, kind: kindOf(s)}
	if props, ok := s["properties"].(map[string]any); ok {
		sh.kind = kindObject
		sh.fields = map[string]*Shape{}
		for name, p := range props {
			if pm, ok := p.(map[string]any); ok {
				sh.fields[name] = b.build(pm, joinPath(path, name))
			}
		}
	}
	if sh.kind == kindObject {
		b.values(sh, s, path)
	}
	if items, ok := s["items"].(map[string]any); ok {
		sh.kind = kindArray
		sh.elem = b.build(items, path+"[]")
	} else if sh.kind == kindArray {
		sh.elem = &Shape{path: path + "[]"}
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		alts, _ := s[key].([]any)
		for _, a := range alts {
			if am, ok := a.(map[string]any); ok {
				sh = mergeInto(sh, b.build(am, path))
			}
		}
	}
	for _, key := range []string{"then", "else"} {
		if am, ok := s[key].(map[string]any); ok {
			sh = mergeInto(sh, b.build(am, path))
		}
	}
	return sh
}

// ref builds the shape a local $ref points to, once per reference (a recursive schema
// refers to itself).
func (b *schemaBuilder) ref(ref, path string) *Shape {
	if sh, ok := b.seen[ref]; ok {
		return sh
	}
	var target any = b.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, _ := target.(map[string]any)
		target = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	t, ok := target.(map[string]any)
	if !ok {
		return &Shape{path: path}
	}
	sh := &Shape{path: path}
	b.seen[ref] = sh
	*sh = *b.build(t, path)
	return sh
}

// kindOf is the kind a schema's type, enum or const says.
func kindOf(s map[string]any) shapeKind {
	switch t := s["type"].(type) {
	case string:
		return kindOfType(t)
	case []any:
		// A union of types: an object or array among them decides; else a scalar.
		for _, e := range t {
			if k := kindOfType(fmt.Sprint(e)); k == kindObject || k == kindArray || k == kindOpen {
				return k
			}
		}
		return kindScalar
	}
	if _, ok := s["enum"]; ok {
		return kindScalar
	}
	if _, ok := s["const"]; ok {
		return kindScalar
	}
	var zero shapeKind
	return zero
}

// values sets what an object's other keys hold (additionalProperties,
// patternProperties) and whether it is strict; an object the schema does not describe
// is open.
func (b *schemaBuilder) values(sh *Shape, s map[string]any, path string) {
	switch ap := s["additionalProperties"].(type) {
	case bool:
		sh.strict = !ap
	case map[string]any:
		sh.values = b.build(ap, path+".<key>")
	}
	if pp, ok := s["patternProperties"].(map[string]any); ok {
		for _, p := range pp {
			if pm, ok := p.(map[string]any); ok {
				sh.values = b.build(pm, path+".<key>")
				break
			}
		}
	}
	if sh.values != nil {
		sh.strict = true
	}
	if sh.fields == nil && sh.values == nil && !sh.strict {
		sh.kind = kindOpen // an object the schema does not describe
	}
}

// mergeInto adds to sh the fields an alternative (allOf, then, …) declares, keeping sh's
// kind and strictness: an alternative that only adds required keys changes nothing.
func mergeInto(sh, alt *Shape) *Shape {
	if alt.kind != kindObject || sh.kind != kindObject {
		return sh
	}
	for k, f := range alt.fields {
		if g, ok := sh.fields[k]; ok {
			sh.fields[k] = Merge(g, f)
		} else {
			sh.fields[k] = f
		}
	}
	return sh
}

func kindOfType(t string) shapeKind {
	switch t {
	case "object":
		return kindObject
	case "array":
		return kindArray
	case "string", "number", "integer", "boolean", "null":
		return kindScalar
	}
	return kindOpen
}

// selectField is the shape of s's key name, or a problem when s cannot have it; nil when
// nothing is known.
func (s *Shape) selectField(name string) (*Shape, string) {
	if s == nil {
		return nil, ""
	}
	switch s.kind {
	case kindObject:
		if f, ok := s.fields[name]; ok {
			return f, ""
		}
		if s.values != nil {
			return s.values, ""
		}
		if !s.strict {
			return nil, ""
		}
		where := "the flag file"
		if s.path != "" {
			where = s.path + " of the flag file"
		}
		msg := fmt.Sprintf("%s has no field %q", where, name)
		if m := closest(name, s.fields); m != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", m)
		}
		return nil, msg + "; known: " + strings.Join(sortedKeys(s.fields), ", ")
	case kindArray:
		return nil, fmt.Sprintf("%s of the flag file is a list: it has no field %q (use .all(r, …), .exists(r, …) or [index])", s.path, name)
	case kindScalar:
		return nil, fmt.Sprintf("%s of the flag file is a value, not a mapping: it has no field %q", s.path, name)
	}
	return nil, ""
}

// closest is the known field nearest to name by edit distance, when it is near enough to
// be a typo.
func closest(name string, fields map[string]*Shape) string {
	best, bestD := "", 3
	for k := range fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

type shapeProblem struct {
	loc common.Location
	msg string
}

// checkShape walks a checked expression and reports every field read by name from flag or
// live (directly, through cel.bind, optional selection, or a comprehension variable) that
// the shape does not allow.
func checkShape(a *cel.Ast, flag, live *Shape) []shapeProblem {
	native := a.NativeRep()
	w := shapeWalker{info: native.SourceInfo(), flag: flag, live: live}
	w.walk(native.Expr(), nil)
	sort.SliceStable(w.probs, func(i, j int) bool {
		li, lj := w.probs[i].loc, w.probs[j].loc
		return li.Line() < lj.Line() || (li.Line() == lj.Line() && li.Column() < lj.Column())
	})
	return w.probs
}

type shapeWalker struct {
	info  *ast.SourceInfo
	flag  *Shape
	live  *Shape
	probs []shapeProblem
	seen  map[string]bool
}

// scope binds the names of comprehension variables to their shapes (nil: unknown).
type scope struct {
	name   string
	shape  *Shape
	parent *scope
}

func (s *scope) lookup(name string) (*Shape, bool) {
	for ; s != nil; s = s.parent {
		if s.name == name {
			return s.shape, true
		}
	}
	return nil, false
}

func (w *shapeWalker) report(id int64, msg string) {
	if msg == "" {
		return
	}
	loc := w.info.GetStartLocation(id)
	key := fmt.Sprintf("%d:%d:%s", loc.Line(), loc.Column(), msg)
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	if w.seen[key] {
		return
	}
	w.seen[key] = true
	w.probs = append(w.probs, shapeProblem{loc: loc, msg: msg})
}

// walk returns the shape of e's value (nil when unknown) and reports unknown fields below.
func (w *shapeWalker) walk(e ast.Expr, sc *scope) *Shape {
	switch e.Kind() {
	case ast.IdentKind:
		name := e.AsIdent()
		if sh, ok := sc.lookup(name); ok {
			return sh
		}
		switch name {
		case VarFlag:
			return w.flag
		case VarLive:
			return w.live
		}
		return nil
	case ast.SelectKind:
		sel := e.AsSelect()
		sh, msg := w.walk(sel.Operand(), sc).selectField(sel.FieldName())
		w.report(e.ID(), msg)
		return sh
	case ast.CallKind:
		return w.call(e, sc)
	case ast.ListKind:
		var elem *Shape
		for _, el := range e.AsList().Elements() {
			if sh := w.walk(el, sc); sh != nil && elem == nil {
				elem = sh
			}
		}
		if elem == nil {
			return nil
		}
		return &Shape{path: elem.path, kind: kindArray, elem: elem}
	case ast.MapKind:
		for _, entry := range e.AsMap().Entries() {
			me := entry.AsMapEntry()
			w.walk(me.Key(), sc)
			w.walk(me.Value(), sc)
		}
		return nil
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			w.walk(f.AsStructField().Value(), sc)
		}
		return nil
	case ast.ComprehensionKind:
		return w.comprehension(e.AsComprehension(), sc)
	}
	return nil
}

// index is the shape of operand[key] (or operand.?key): a field's for a literal string
// key (an unknown one is reported), an element's for an array, a value's for a map.
func (w *shapeWalker) index(e ast.Expr, operand *Shape, key ast.Expr) *Shape {
	if key.Kind() == ast.LiteralKind {
		switch v := key.AsLiteral().(type) {
		case types.String:
			sh, msg := operand.selectField(string(v))
			w.report(e.ID(), msg)
			return sh
		case types.Int, types.Uint:
			if operand != nil && operand.kind == kindArray {
				return operand.elem
			}
			return nil
		}
	}
	if operand != nil && operand.kind == kindArray {
		return operand.elem
	}
	if operand != nil && operand.kind == kindObject {
		return operand.values
	}
	return nil
}

func (w *shapeWalker) call(e ast.Expr, sc *scope) *Shape {
	c := e.AsCall()
	var target *Shape
	if c.IsMemberFunction() {
		target = w.walk(c.Target(), sc)
	}
	args := make([]*Shape, len(c.Args()))
	for i, a := range c.Args() {
		args[i] = w.walk(a, sc)
	}
	switch c.FunctionName() {
	case operators.OptSelect, operators.Index, operators.OptIndex:
		if len(c.Args()) != 2 {
			return nil
		}
		return w.index(e, args[0], c.Args()[1])
	case "orValue", "value":
		return target
	case operators.Conditional:
		if len(args) == 3 {
			return firstShape(args[1], args[2])
		}
	case operators.Add:
		if len(args) == 2 {
			return firstShape(args[0], args[1])
		}
	case "first", "last":
		if target != nil && target.kind == kindArray {
			return target.elem
		}
	case "flatten", "distinct", "sort", "slice", "reverse", "pick", "omit":
		return target
	case "indexBy":
		if target != nil && target.kind == kindArray {
			return &Shape{path: target.path, kind: kindObject, values: target.elem, strict: true}
		}
	}
	return nil
}

func firstShape(a, b *Shape) *Shape {
	if a != nil {
		return a
	}
	return b
}

// comprehension binds the iteration variables to the shapes of the range's elements (or
// keys and values) and the accumulator to its initial value's shape, which is how
// cel.bind names a document.
func (w *shapeWalker) comprehension(c ast.ComprehensionExpr, sc *scope) *Shape {
	rng := w.walk(c.IterRange(), sc)
	var v1, v2 *Shape
	if rng != nil {
		switch rng.kind {
		case kindArray:
			if c.HasIterVar2() {
				v2 = rng.elem // (index, element)
			} else {
				v1 = rng.elem
			}
		case kindObject:
			if c.HasIterVar2() {
				v2 = rng.values // (key, value)
			}
		}
	}
	accu := w.walk(c.AccuInit(), sc)
	inner := &scope{name: c.AccuVar(), shape: accu, parent: sc}
	inner = &scope{name: c.IterVar(), shape: v1, parent: inner}
	if c.HasIterVar2() {
		inner = &scope{name: c.IterVar2(), shape: v2, parent: inner}
	}
	w.walk(c.LoopCondition(), inner)
	if step := w.walk(c.LoopStep(), inner); step != nil && accu == nil {
		// filter and map build their result in the accumulator: [] + [element].
		accu = step
	}
	res := &scope{name: c.AccuVar(), shape: accu, parent: sc}
	return w.walk(c.Result(), res)
}
