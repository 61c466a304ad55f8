package promote

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// lookup returns the key and value nodes of key in mapping m, or nils.
func lookup(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// clone copies a node tree, positions and comments included.
func clone(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, e := range n.Content {
			c.Content[i] = clone(e)
		}
	}
	return &c
}

// plain is a node's data: maps, lists, int64, float64, bool, nil and strings (dates and
// times as the text written, as flag files read them).
func plain(n *yaml.Node) any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return plain(n.Content[0])
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = plain(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = plain(c)
		}
		return l
	case yaml.AliasNode:
		return plain(n.Alias)
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i
		}
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	}
	return n.Value
}

// identity is the field that identifies the elements of a list of mappings (rules by name,
// variables and variations by key), or "" when there is none.
func identity(list *yaml.Node) string {
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return ""
	}
	for _, f := range []string{"name", "key"} {
		all := true
		for _, e := range list.Content {
			if _, v := lookup(e, f); v == nil || v.Kind != yaml.ScalarNode {
				all = false
				break
			}
		}
		if all {
			return f
		}
	}
	return ""
}

// elementPath is the path of element i of list at path, by identity when it has one.
func elementPath(path string, list *yaml.Node, i int, id string) string {
	if id != "" {
		_, v := lookup(list.Content[i], id)
		return fmt.Sprintf("%s[%s=%s]", path, id, v.Value)
	}
	return fmt.Sprintf("%s[%d]", path, i)
}

// match finds the element of other that corresponds to element i of list: the one with
// the same identity, or the same position when the elements have none.
func match(list *yaml.Node, i int, other *yaml.Node) *yaml.Node {
	if other == nil || other.Kind != yaml.SequenceNode {
		return nil
	}
	if id := identity(list); id != "" && identity(other) == id {
		_, want := lookup(list.Content[i], id)
		for _, e := range other.Content {
			if _, v := lookup(e, id); v.Value == want.Value {
				return e
			}
		}
		return nil
	}
	if i < len(other.Content) {
		return other.Content[i]
	}
	return nil
}

// FieldChange is one difference the promotion makes in the target block, in the flag
// file's shape: environments.production.rolloutRules[name=beta testers].exposition.
// Before is nil for a field the target did not have, After nil for one it loses.
type FieldChange struct {
	Path   string `json:"path"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// diff lists the differences from a to b under path, in b's order, removals last.
func diff(path string, a, b *yaml.Node, out *[]FieldChange) {
	switch {
	case a == nil && b == nil:
		return
	case a == nil && b.Kind == yaml.MappingNode:
		a = &yaml.Node{Kind: yaml.MappingNode}
	case b == nil && a.Kind == yaml.MappingNode:
		b = &yaml.Node{Kind: yaml.MappingNode}
	}
	switch {
	case a == nil || b == nil:
		*out = append(*out, FieldChange{Path: path, Before: plain(a), After: plain(b)})
		return
	}
	if a.Kind == yaml.MappingNode && b.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(b.Content); i += 2 {
			k := b.Content[i].Value
			_, av := lookup(a, k)
			diff(join(path, k), av, b.Content[i+1], out)
		}
		for i := 0; i+1 < len(a.Content); i += 2 {
			if k, _ := lookup(b, a.Content[i].Value); k == nil {
				*out = append(*out, FieldChange{Path: join(path, a.Content[i].Value), Before: plain(a.Content[i+1])})
			}
		}
		return
	}
	if a.Kind == yaml.SequenceNode && b.Kind == yaml.SequenceNode {
		if id := identity(b); id != "" && identity(a) == id && sameIDs(a, b, id) {
			for i := range b.Content {
				diff(elementPath(path, b, i, id), match(b, i, a), b.Content[i], out)
			}
			return
		}
	}
	if pa, pb := plain(a), plain(b); !reflect.DeepEqual(pa, pb) {
		*out = append(*out, FieldChange{Path: path, Before: pa, After: pb})
	}
}

// sameIDs reports whether two lists hold the same identities in the same order; only then
// are they compared element by element.
func sameIDs(a, b *yaml.Node, id string) bool {
	if len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		_, x := lookup(a.Content[i], id)
		_, y := lookup(b.Content[i], id)
		if x.Value != y.Value {
			return false
		}
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// maxLine is the last line any node of the tree starts on.
func maxLine(n *yaml.Node) int {
	m := n.Line
	for _, c := range n.Content {
		m = max(m, maxLine(c))
	}
	return m
}

// quoteLike renders value as a scalar in the style of old: plain when old was plain and
// the value reads back as the same kind of scalar, otherwise quoted as old was (double
// quotes when old was plain).
func quoteLike(old *yaml.Node, value string) string {
	switch old.Style {
	case yaml.SingleQuotedStyle:
		return "'" + strings.ReplaceAll(value, "'", "''") + "'"
	case yaml.DoubleQuotedStyle:
		return strconv.Quote(value)
	}
	var probe yaml.Node
	if yaml.Unmarshal([]byte("v: "+value), &probe) == nil && len(probe.Content) == 1 {
		if _, v := lookup(probe.Content[0], "v"); v != nil && v.Kind == yaml.ScalarNode && v.Value == value && v.Style == 0 &&
			(v.ShortTag() == old.ShortTag() || (old.ShortTag() == "!!int" && v.ShortTag() == "!!str")) {
			return value
		}
	}
	return strconv.Quote(value)
}

// tagOf is the tag YAML gives the scalar written as raw (!!int for 403700, !!str for
// "403700" or beta).
func tagOf(raw string) string {
	var probe yaml.Node
	if yaml.Unmarshal([]byte("v: "+raw), &probe) == nil && len(probe.Content) == 1 {
		if _, v := lookup(probe.Content[0], "v"); v != nil {
			return v.ShortTag()
		}
	}
	return "!!str"
}
