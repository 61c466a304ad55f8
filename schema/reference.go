package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Reference renders a schema as a Markdown field reference: one table per object, each
// field with its type, whether it is required, its constraints and its description.
// docs/*-reference.md are generated with it, so the reference says exactly what the
// schema enforces.
func Reference(title string, schemaJSON []byte) ([]byte, error) {
	var root map[string]any
	if err := json.Unmarshal(schemaJSON, &root); err != nil {
		return nil, fmt.Errorf("read schema %s: %w", title, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintln(&b, "<!-- Generated from the JSON Schema by `go test ./schema -update`; do not edit by hand. -->")
	fmt.Fprintln(&b)
	if d, _ := root["description"].(string); d != "" {
		fmt.Fprintf(&b, "%s\n\n", d)
	}
	order, err := keyOrder(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("read schema %s: %w", title, err)
	}
	r := &refWriter{b: &b, order: order}
	r.object("(top level)", "", root)
	return b.Bytes(), nil
}

type refWriter struct {
	b     *bytes.Buffer
	order map[string][]string // JSON pointer of an object → its keys in file order
}

// object writes the table of one object schema (at JSON pointer ptr), then the tables
// of its nested objects.
func (r *refWriter) object(path, ptr string, s map[string]any) {
	props, _ := s["properties"].(map[string]any)
	if len(props) == 0 {
		return
	}
	required := map[string]bool{}
	for _, n := range asList(s["required"]) {
		required[fmt.Sprint(n)] = true
	}
	fmt.Fprintf(r.b, "## `%s`\n\n", path)
	if d, _ := s["description"].(string); d != "" && path != "(top level)" {
		fmt.Fprintf(r.b, "%s\n\n", oneLine(d))
	}
	if s["additionalProperties"] == false {
		fmt.Fprintln(r.b, "No other fields are allowed.")
		fmt.Fprintln(r.b)
	}
	fmt.Fprintln(r.b, "| field | type | required | constraints | description |")
	fmt.Fprintln(r.b, "|---|---|---|---|---|")
	var later []child
	for _, name := range r.order[ptr+"/properties"] {
		p, _ := props[name].(map[string]any)
		req := ""
		if required[name] {
			req = "yes"
		}
		fmt.Fprintf(r.b, "| `%s` | %s | %s | %s | %s |\n", name, typeOf(p), req, cell(constraints(p)), cell(oneLine(str(p["description"]))))
		later = append(later, children(join(path, name), ptr+"/properties/"+name, p)...)
	}
	fmt.Fprintln(r.b)
	for _, n := range later {
		r.object(n.path, n.ptr, n.s)
	}
}

type child struct {
	path, ptr string
	s         map[string]any
}

// children returns the object schemas nested in p: its own properties, the items of an
// array, and the values of a map (additionalProperties given as a schema).
func children(path, ptr string, p map[string]any) []child {
	var out []child
	if _, ok := p["properties"].(map[string]any); ok {
		out = append(out, child{path, ptr, p})
	}
	if items, ok := p["items"].(map[string]any); ok {
		out = append(out, children(path+"[]", ptr+"/items", items)...)
	}
	if vals, ok := p["additionalProperties"].(map[string]any); ok {
		out = append(out, children(path+".<key>", ptr+"/additionalProperties", vals)...)
	}
	return out
}

// keyOrder records, for every object in a JSON document, its keys in document order,
// keyed by the object's JSON pointer (property names are plain identifiers here, so no
// pointer escaping is needed).
func keyOrder(data []byte) (map[string][]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	order := map[string][]string{}
	var walk func(ptr string) error
	walk = func(ptr string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				order[ptr] = append(order[ptr], key)
				if err := walk(ptr + "/" + key); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s/%d", ptr, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return order, walk("")
}

func join(path, name string) string {
	if path == "(top level)" {
		return name
	}
	return path + "." + name
}

func typeOf(p map[string]any) string {
	t := p["type"]
	switch v := t.(type) {
	case string:
		if v == "array" {
			if items, ok := p["items"].(map[string]any); ok {
				return "list of " + typeOf(items)
			}
		}
		if v == "object" {
			if _, ok := p["additionalProperties"].(map[string]any); ok {
				return "map"
			}
		}
		return v
	case []any:
		var parts []string
		for _, x := range v {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, " or ")
	}
	if _, ok := p["enum"]; ok {
		return "enum"
	}
	if _, ok := p["oneOf"]; ok {
		return "one of several forms"
	}
	return "any"
}

func constraints(p map[string]any) string {
	var c []string
	if e := asList(p["enum"]); len(e) > 0 {
		var vals []string
		for _, v := range e {
			vals = append(vals, fmt.Sprintf("`%v`", v))
		}
		c = append(c, "one of "+strings.Join(vals, ", "))
	}
	if v, ok := p["const"]; ok {
		c = append(c, fmt.Sprintf("always `%v`", v))
	}
	if p["minLength"] != nil && p["minLength"] == p["maxLength"] {
		c = append(c, "exactly "+num(p["minLength"])+" characters")
	}
	for _, k := range []struct{ key, label string }{
		{"minimum", ">= %v"}, {"maximum", "<= %v"}, {"exclusiveMinimum", "> %v"}, {"exclusiveMaximum", "< %v"},
		{"minLength", "at least %v characters"}, {"maxLength", "at most %v characters"},
		{"minItems", "at least %v items"}, {"maxItems", "at most %v items"},
	} {
		if v, ok := p[k.key]; ok {
			if (k.key == "minLength" || k.key == "maxLength") && p["minLength"] == p["maxLength"] {
				continue
			}
			c = append(c, fmt.Sprintf(k.label, num(v)))
		}
	}
	if v, ok := p["pattern"].(string); ok {
		c = append(c, "matches `"+v+"`")
	}
	if v, ok := p["format"].(string); ok {
		c = append(c, "format "+v)
	}
	if p["uniqueItems"] == true {
		c = append(c, "unique items")
	}
	if v, ok := p["default"]; ok {
		b, _ := json.Marshal(v)
		c = append(c, "default `"+string(b)+"`")
	}
	return strings.Join(c, "; ")
}

// num prints a JSON number without exponent notation.
func num(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cell escapes what would break a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
