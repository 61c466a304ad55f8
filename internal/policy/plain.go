package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Plain returns v as plain data a policy can read: map[string]any, []any, string, bool,
// int64, float64 or nil. Values that already are plain data (including int, float32 and
// map[string]any from a YAML or JSON decoder) are converted without a round trip; anything
// else (a vendor model's structs) is converted through its JSON encoding, so its json tags
// name the fields. Integral JSON numbers become int64, others float64.
func Plain(v any) (any, error) {
	if p, ok := plainFast(v); ok {
		return p, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convert %T to plain data: %w", v, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("convert %T to plain data: %w", v, err)
	}
	return fromJSON(out), nil
}

// plainFast converts values that are already plain data, recursively; ok is false when some
// value needs the JSON round trip.
func plainFast(v any) (any, bool) {
	switch t := v.(type) {
	case nil, string, bool, int64, float64:
		return t, true
	case int:
		return int64(t), true
	case int32:
		return int64(t), true
	case float32:
		return float64(t), true
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			p, ok := plainFast(e)
			if !ok {
				return nil, false
			}
			out[k] = p
		}
		return out, true
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			p, ok := plainFast(e)
			if !ok {
				return nil, false
			}
			out[i] = p
		}
		return out, true
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out, true
	}
	return nil, false
}

func fromJSON(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = fromJSON(e)
		}
	case []any:
		for i, e := range t {
			t[i] = fromJSON(e)
		}
	}
	return v
}

// FromYAML returns the plain data of a YAML node, as a policy sees a flag file: mappings
// become map[string]any, sequences []any, integers int64, floats float64, booleans bool,
// null nil, and every other scalar (dates and times included) the string written, which is
// how flag files read dates. Anchors, aliases and non-string keys are refused, as the flag
// loader refuses them.
func FromYAML(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return FromYAML(n.Content[0])
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "") {
				return nil, fmt.Errorf("line %d: key %q is not a string", k.Line, k.Value)
			}
			v, err := FromYAML(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := FromYAML(c)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return b, nil
		case "!!int":
			if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return i, nil
			}
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: %q is not a finite number", n.Line, n.Value)
			}
			return f, nil
		}
		return n.Value, nil
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: aliases are not supported", n.Line)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
