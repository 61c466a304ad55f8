package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file builds yaml.Node trees by hand, so that keys come in a fixed, readable order
// and every string is written so that flagsync's loader (and any other YAML reader)
// reads back exactly the text that was exported.

// Mapping is a YAML mapping under construction.
type Mapping struct{ n *yaml.Node }

// NewMapping starts an empty block mapping.
func NewMapping() Mapping {
	return Mapping{&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}}
}

// Add appends key: v.
func (m Mapping) Add(key string, v *yaml.Node) {
	m.n.Content = append(m.n.Content, Str(key), v)
}

// AddComment appends key: v with a comment on the line above the key.
func (m Mapping) AddComment(key string, v *yaml.Node, comment string) {
	k := Str(key)
	k.HeadComment = comment
	m.n.Content = append(m.n.Content, k, v)
}

// Node returns the mapping's node, to encode or to nest.
func (m Mapping) Node() *yaml.Node { return m.n }

// Len is the number of keys in m.
func (m Mapping) Len() int { return len(m.n.Content) / 2 }

// Seq returns a block sequence of items.
func Seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

// FlowSeq returns a sequence written on one line, [a, b], for short lists of scalars.
func FlowSeq(items ...*yaml.Node) *yaml.Node {
	n := Seq(items...)
	n.Style = yaml.FlowStyle
	return n
}

// StrSeq is a flow sequence of strings, each written as Str writes it.
func StrSeq(ss []string) *yaml.Node {
	items := make([]*yaml.Node, len(ss))
	for i, s := range ss {
		items[i] = Str(s)
	}
	return FlowSeq(items...)
}

// IntSeq is a flow sequence of integers.
func IntSeq(is []int64) *yaml.Node {
	items := make([]*yaml.Node, len(is))
	for i, v := range is {
		items[i] = IntNode(v)
	}
	return FlowSeq(items...)
}

// Str is a string scalar. Text that a YAML reader would take for something else — a
// boolean (true, on, yes, n), null (~, null), a number (42, 1e3, 0x1F, 1:30), a date or
// an empty string — is double-quoted; multi-line text is written as a literal block.
func Str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if mustQuote(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// leadingDate matches text that starts like a date; YAML 1.1 readers take 2025-12-11 for
// a timestamp, and a quoted date reads the same everywhere.
var leadingDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}`)

// mustQuote reports whether s must be quoted to be read back as the same string.
// yaml.v3's own encoder is the judge for a single string: it quotes whatever would
// resolve to another type, YAML 1.1 booleans and base-60 numbers included. Multi-line
// text is left to the emitter, which picks a literal block (or quotes when a block
// cannot hold the text exactly).
func mustQuote(s string) bool {
	if strings.Contains(s, "\n") {
		return false
	}
	if s == "" || leadingDate.MatchString(s) {
		return true
	}
	out, err := yaml.Marshal(s)
	return err != nil || bytes.HasPrefix(out, []byte(`"`))
}

// BoolNode is a boolean scalar.
func BoolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

// IntNode is an integer scalar.
func IntNode(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

// FloatNode writes a number in its shortest exact form: 59, 33.33, 1e+21.
func FloatNode(f float64) *yaml.Node {
	text := strconv.FormatFloat(f, 'f', -1, 64)
	if f >= 1e21 || f <= -1e21 {
		text = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return NumberNode(text)
}

// NumberNode writes a JSON number's text, tagged as YAML will resolve it.
func NumberNode(text string) *yaml.Node {
	tag := "!!int"
	if strings.ContainsAny(text, ".eE") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: text}
}

// NullNode is an explicit null.
func NullNode() *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}

// JSONNode converts a decoded JSON value of any shape (integration elements, whose
// shape is not documented) to YAML. Object keys are sorted, so the same value is always
// written the same way. Numbers keep the text JSON gave them.
func JSONNode(v any) (*yaml.Node, error) {
	// A round trip through encoding/json turns any Go value into the plain JSON types,
	// with numbers as json.Number so that no digit is lost.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode JSON value: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var plain any
	if err := dec.Decode(&plain); err != nil {
		return nil, fmt.Errorf("decode JSON value: %w", err)
	}
	return PlainNode(plain), nil
}

// PlainNode writes a decoded JSON value (map, list, string, number, bool, nil) as YAML
// nodes, maps with sorted keys.
func PlainNode(v any) *yaml.Node {
	switch v := v.(type) {
	case nil:
		return NullNode()
	case bool:
		return BoolNode(v)
	case json.Number:
		return NumberNode(v.String())
	case string:
		return Str(v)
	case []any:
		items := make([]*yaml.Node, len(v))
		for i, x := range v {
			items[i] = PlainNode(x)
		}
		return Seq(items...)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := NewMapping()
		for _, k := range keys {
			m.Add(k, PlainNode(v[k]))
		}
		return m.n
	}
	// Unreachable: json.Decoder with UseNumber yields only the types above.
	return Str(fmt.Sprint(v))
}

// EncodeYAML renders a document with two-space indentation.
func EncodeYAML(root *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return buf.Bytes(), nil
}
