package diag

import (
	"encoding/json"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file is the API of a vendor's fast path: a loader that decodes a flag file
// straight from its yaml.Node tree into the vendor's model and checks it in Go, and hands
// the file to the schema path (Parse, Schema.Validate), which writes the diagnostics, as
// soon as anything is not plainly valid. Each function here answers a question the way
// Parse's conversion would, so that the fast path accepts exactly what the schema path
// accepts: where Parse would report a problem, these return false.

// ParseRoot parses data as Parse does and returns its top-level mapping when the file is
// one YAML document, without a syntax error, whose top level is a mapping; otherwise nil
// (an empty file, a list, a second document, a syntax error), and Parse tells what is
// wrong. The caller still checks the root with Plain.
func ParseRoot(data []byte) (root *yaml.Node) {
	defer func() {
		if r := recover(); r != nil {
			root = nil // Parse reports the parser's panic
		}
	}()
	top, diags, ok := parseTop("", data)
	if !ok || len(diags) > 0 || top == nil || top.Kind != yaml.DocumentNode || len(top.Content) != 1 {
		return nil
	}
	if root = top.Content[0]; root.Kind != yaml.MappingNode {
		return nil
	}
	return root
}

// Plain reports whether Parse takes node n as it is written: not an alias, no anchor, and
// no tag but the standard one of its kind (!!str, !!map, !!seq).
func Plain(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return false
	}
	return n.Style&yaml.TaggedStyle == 0 ||
		n.Kind == yaml.ScalarNode && n.Tag == "!!str" ||
		n.Kind == yaml.MappingNode && n.Tag == "!!map" ||
		n.Kind == yaml.SequenceNode && n.Tag == "!!seq"
}

// PlainKey reports whether Parse takes mapping key k as it is: a string, without an
// anchor (merge keys, aliases and non-string keys are problems). Duplicate keys are the
// caller's to find.
func PlainKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Tag == "!!str" && k.Anchor == ""
}

// String returns the text of n when Parse makes a string of it (text, or a timestamp
// kept as written), and false otherwise.
func String(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || !Plain(n) || n.Tag != "!!str" && n.Tag != "!!timestamp" {
		return "", false
	}
	return n.Value, true
}

// Number returns the JSON number Parse makes of n, and false when n is not a number or
// Parse would report a problem with it (a leading zero, an infinite number).
func Number(n *yaml.Node) (json.Number, bool) {
	if n.Kind != yaml.ScalarNode || !Plain(n) {
		return "", false
	}
	var num json.Number
	var problem string
	switch n.Tag {
	case "!!int":
		num, problem = intNumber(n.Value)
	case "!!float":
		num, problem = floatNumber(n.Value, strings.ReplaceAll(n.Value, "_", ""))
	default:
		return "", false
	}
	return num, problem == ""
}

// Bool returns the boolean Parse makes of n, and false when n is not true or false.
func Bool(n *yaml.Node) (value, ok bool) {
	if n.Kind != yaml.ScalarNode || !Plain(n) || n.Tag != "!!bool" {
		return false, false
	}
	return strings.EqualFold(n.Value, "true"), true
}

// Literal returns the text of node n at a path Kind.Literal lists (the value is the text
// written, whatever it looks like), and false when Parse would report a problem there.
func Literal(n *yaml.Node) (string, bool) {
	if !Plain(n) || n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		return "", false
	}
	return n.Value, true
}

// Value returns the value of the subtree n as decoding into an `any` gives it
// (map[string]any, []any, float64, string, bool, nil), and false when Parse would report
// a problem anywhere inside it. n must not be at or above a Kind.Literal path.
func Value(n *yaml.Node) (any, bool) {
	c := converter{}
	v := c.convert(n, nil)
	if len(c.diags) > 0 {
		return nil, false
	}
	return plainJSON(v), true
}
