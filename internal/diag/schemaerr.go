package diag

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// compiledSchema is one schema compiled for validation, with its raw JSON kept to read
// keyword values (enum lists, limits, property names) when rendering errors.
type compiledSchema struct {
	schema *jsonschema.Schema
	raw    any
	hints  map[string]string // unknown fields people copy from API responses, and what to write instead
}

// validate checks doc.value against the schema and returns one diagnostic per problem,
// placed on the node the problem is about.
func (cs *compiledSchema) validate(doc *document) ([]Diagnostic, error) {
	err := cs.schema.Validate(any(doc.value))
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("validate %s: %w", doc.file, err)
	}
	var diags []Diagnostic
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			diags = append(diags, cs.leaf(doc, e)...)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return diags, nil
}

// splitPointer splits a JSON pointer as the validator writes it (tokens escaped for
// RFC 6901 and then URL path-escaped).
func splitPointer(p string) []string {
	p = strings.TrimPrefix(p, "#")
	if p == "" || p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts
}

// tokenPointer renders pointer tokens as an RFC 6901 pointer.
func tokenPointer(tokens []string) string {
	segs := make([]seg, len(tokens))
	for i, t := range tokens {
		segs[i] = keySeg(t)
	}
	return pointer(segs)
}

// resolveRaw follows pointer tokens into a decoded JSON document.
func resolveRaw(v any, tokens []string) (any, bool) {
	for _, t := range tokens {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[t]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// located is a node found by following a path through a document.
type located struct {
	key   *yaml.Node // the key node when the last step was a mapping key
	node  *yaml.Node // the value node
	segs  []seg      // the steps actually taken
	found bool       // every step was found
}

func (l located) field() string { return fieldPath(l.segs) }

// at returns the position to report: the key for a mapping entry if wantKey, else the
// value.
func (l located) at(wantKey bool) (int, int) {
	n := l.node
	if wantKey && l.key != nil {
		n = l.key
	}
	return n.Line, n.Column
}

// locate follows tokens from the root mapping; it stops at the deepest node found.
func locate(root *yaml.Node, tokens []string) located {
	l := located{node: root, found: true}
	for _, t := range tokens {
		n := l.node
		switch n.Kind {
		case yaml.MappingNode:
			var hit bool
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == t && k.Tag == "!!str" {
					l.key, l.node, hit = k, n.Content[i+1], true
					break
				}
			}
			if !hit {
				l.found = false
				return l
			}
			l.segs = append(l.segs, keySeg(t))
		case yaml.SequenceNode:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(n.Content) {
				l.found = false
				return l
			}
			l.key, l.node = nil, n.Content[i]
			l.segs = append(l.segs, idxSeg(i))
		default:
			l.found = false
			return l
		}
	}
	return l
}

// leaf renders one leaf validation error as diagnostics.
func (cs *compiledSchema) leaf(doc *document, e *jsonschema.ValidationError) []Diagnostic {
	inst := splitPointer(e.InstanceLocation)
	// The validator URL-escapes pointer tokens; compare pointers in plain RFC 6901 form.
	ptr := tokenPointer(inst)
	if doc.suppressed(ptr) {
		return nil
	}
	loc := locate(doc.root, inst)
	_, frag, _ := strings.Cut(e.AbsoluteKeywordLocation, "#")
	ktoks := splitPointer(frag)
	mk := func(wantKey bool, field, msg string) Diagnostic {
		line, col := loc.at(wantKey)
		return Diagnostic{File: doc.file, Line: line, Column: col, Field: field, Message: msg}
	}
	val, _ := resolveRaw(doc.value, inst)
	inPropertyNames := slices.Contains(ktoks, "propertyNames")
	if inPropertyNames && len(inst) > 0 {
		val = inst[len(inst)-1] // the instance is the key itself
	}

	// A `false` subschema under properties: the property is not allowed here.
	if len(ktoks) >= 2 && ktoks[len(ktoks)-2] == "properties" {
		sub, _ := resolveRaw(cs.raw, ktoks)
		if b, isBool := sub.(bool); isBool && !b {
			return []Diagnostic{mk(true, loc.field(), "not allowed"+cs.condition(ktoks))}
		}
	}
	if len(ktoks) == 0 {
		return []Diagnostic{mk(false, loc.field(), e.Message)}
	}
	keyword := ktoks[len(ktoks)-1]
	parent, _ := resolveRaw(cs.raw, ktoks[:len(ktoks)-1])
	pm, _ := parent.(map[string]any)
	kv := pm[keyword]

	switch keyword {
	case "additionalProperties":
		obj, _ := val.(map[string]any)
		props, _ := pm["properties"].(map[string]any)
		allowed := make([]string, 0, len(props))
		for name := range props {
			allowed = append(allowed, name)
		}
		slices.Sort(allowed)
		var out []Diagnostic
		for name := range obj {
			if _, ok := props[name]; ok {
				continue
			}
			kl := locate(doc.root, append(slices.Clip(inst), name))
			line, col := kl.at(true)
			out = append(out, Diagnostic{File: doc.file, Line: line, Column: col, Field: kl.field(), Message: unknownField(name, allowed, cs.hints)})
		}
		return out
	case "required":
		if slices.Contains(doc.partial, ptr) {
			return nil
		}
		obj, _ := val.(map[string]any)
		names, _ := kv.([]any)
		var out []Diagnostic
		for _, n := range names {
			name, _ := n.(string)
			if _, ok := obj[name]; ok {
				continue
			}
			out = append(out, mk(false, loc.field(), fmt.Sprintf("missing required field %q%s", name, cs.condition(ktoks))))
		}
		return out
	case "uniqueItems":
		var i, j int
		if _, err := fmt.Sscanf(e.Message, "items at index %d and %d are equal", &i, &j); err == nil {
			if doc.suppressed(ptr+"/"+strconv.Itoa(i)) || doc.suppressed(ptr+"/"+strconv.Itoa(j)) {
				return nil // items already reported, read as null
			}
			il := locate(doc.root, append(slices.Clip(inst), strconv.Itoa(j)))
			line, col := il.at(false)
			return []Diagnostic{{File: doc.file, Line: line, Column: col, Field: il.field(), Message: fmt.Sprintf("duplicate value %s (also item %d)", describeNode(il.node), i)}}
		}
		return []Diagnostic{mk(false, loc.field(), "items must be unique")}
	}

	msg := cs.message(keyword, kv, pm, val, loc.node)
	if inPropertyNames {
		return []Diagnostic{mk(true, loc.field(), "key "+msg)}
	}
	return []Diagnostic{mk(false, loc.field(), msg)}
}

// condition explains an if/then/else branch an error came from: " when type is
// EXPERIMENTATION", " unless type is ENUM", or "".
func (cs *compiledSchema) condition(ktoks []string) string {
	for i := len(ktoks) - 1; i > 0; i-- {
		if ktoks[i] != "then" && ktoks[i] != "else" {
			continue
		}
		parent, _ := resolveRaw(cs.raw, ktoks[:i])
		pm, _ := parent.(map[string]any)
		ifs, _ := pm["if"].(map[string]any)
		props, _ := ifs["properties"].(map[string]any)
		for name, p := range props {
			pc, _ := p.(map[string]any)
			if c, ok := pc["const"]; ok {
				word := "when"
				if ktoks[i] == "else" {
					word = "unless"
				}
				return fmt.Sprintf(" %s %s is %v", word, name, c)
			}
		}
		return ""
	}
	return ""
}

// patternHelp says in words what the schema's patterns mean.
var patternHelp = map[string]string{
	`^[a-z0-9_-]{1,255}$`:    "lower-case letters, digits, '_' and '-' only",
	`^[A-Za-z0-9_-]{1,255}$`: "letters, digits, '_' and '-' only",
	`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?$`: "a date-time such as 2025-12-11T11:58:01",
	`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`:                                                        "an IANA time zone such as Europe/Paris",
}

// message renders a value-level keyword error plainly.
func (cs *compiledSchema) message(keyword string, kv any, pm map[string]any, val any, n *yaml.Node) string {
	switch keyword {
	case "type":
		return typeMessage(kv, n)
	case "enum":
		return enumMessage(kv, val, n)
	case "const":
		return fmt.Sprintf("must be %v", kv)
	case "minimum":
		return "must be >= " + schemaNumber(kv)
	case "maximum":
		return "must be <= " + schemaNumber(kv)
	case "exclusiveMinimum":
		return "must be > " + schemaNumber(kv)
	case "exclusiveMaximum":
		return "must be < " + schemaNumber(kv)
	case "minLength", "maxLength":
		return lengthMessage(keyword, kv, pm, val)
	case "pattern":
		return patternMessage(kv, val)
	case "minItems", "maxItems", "minProperties":
		return countMessage(keyword, kv)
	case "format":
		return fmt.Sprintf("%s is not a valid %v", describeNode(n), kv)
	}
	return keyword + ": not valid"
}

// typeNames renders a schema "type" as words: "a string", "a string, a number or true/false".
func typeNames(kv any) string {
	var types []string
	switch t := kv.(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, fmt.Sprint(x))
		}
	}
	words := map[string]string{
		"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
		"array": "a list", "object": "a mapping", "null": "null",
	}
	for i, t := range types {
		if w, ok := words[t]; ok {
			types[i] = w
		}
	}
	switch len(types) {
	case 0:
		return "a valid value"
	case 1:
		return types[0]
	}
	return strings.Join(types[:len(types)-1], ", ") + " or " + types[len(types)-1]
}

// unknownField renders an additionalProperties error for one name.
func unknownField(name string, allowed []string, hints map[string]string) string {
	if hint, ok := hints[name]; ok && !slices.Contains(allowed, name) {
		return fmt.Sprintf("unknown field %q; %s", name, hint)
	}
	return fmt.Sprintf("unknown field %q", name) + didYouMean(name, allowed)
}
