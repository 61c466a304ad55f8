package splitload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/loader"
	"github.com/flagsync/flagsync/schema"
)

// This file is the stand-in for the Kameleoon loader's document machinery (YAML to
// JSON with positions, schema errors as diagnostics, typo hints), which is not exported
// yet. It implements the document interface splitload needs; once internal/loader
// exports its machinery, this file is replaced by an adapter to it, and the Split files
// get exactly the Kameleoon files' diagnostics.

// yamlDoc is one parsed YAML file.
type yamlDoc struct {
	file  string
	root  *yaml.Node
	value map[string]any
}

// parse parses a YAML file whose top level must be a mapping; it returns nil and
// diagnostics when nothing could be checked.
func parse(file string, data []byte, allowEmpty bool) (doc *yamlDoc, diags []loader.Diagnostic) {
	defer func() {
		if r := recover(); r != nil {
			doc, diags = nil, []loader.Diagnostic{{File: file, Line: 1, Column: 1, Message: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	var top yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&top); err != nil {
		if allowEmpty && strings.TrimSpace(string(data)) == "" {
			return &yamlDoc{file: file, root: &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}, value: map[string]any{}}, nil
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 1
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, tail
				}
			}
		}
		return nil, []loader.Diagnostic{{File: file, Line: line, Column: 1, Message: "YAML syntax error: " + msg}}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		diags = append(diags, loader.Diagnostic{File: file, Line: next.Line, Column: next.Column, Message: "a second YAML document (after ---): a file holds exactly one flag"})
	}
	if len(top.Content) != 1 || top.Content[0].Kind != yaml.MappingNode {
		n := &top
		if len(top.Content) == 1 {
			n = top.Content[0]
		}
		return nil, append(diags, loader.Diagnostic{File: file, Line: max(n.Line, 1), Column: max(n.Column, 1), Message: "the top level must be a mapping of fields"})
	}
	doc = &yamlDoc{file: file, root: top.Content[0]}
	v, cd := doc.convert(doc.root, nil)
	doc.value, _ = v.(map[string]any)
	return doc, append(diags, cd...)
}

func (d *yamlDoc) convert(n *yaml.Node, path []any) (any, []loader.Diagnostic) {
	at := func(msg string) []loader.Diagnostic {
		return []loader.Diagnostic{{File: d.file, Line: n.Line, Column: n.Column, Field: fieldPath(path), Message: msg}}
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, at("anchors and aliases are not supported: write the value out in full")
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		var diags []loader.Diagnostic
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				diags = append(diags, loader.Diagnostic{File: d.file, Line: k.Line, Column: k.Column, Field: fieldPath(path), Message: "mapping keys must be strings; quote it"})
				continue
			}
			if _, dup := out[k.Value]; dup {
				diags = append(diags, loader.Diagnostic{File: d.file, Line: k.Line, Column: k.Column, Field: fieldPath(append(path, k.Value)), Message: fmt.Sprintf("duplicate key %q", k.Value)})
				continue
			}
			cv, cd := d.convert(v, append(path[:len(path):len(path)], k.Value))
			out[k.Value] = cv
			diags = append(diags, cd...)
		}
		return out, diags
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		var diags []loader.Diagnostic
		for i, c := range n.Content {
			var cd []loader.Diagnostic
			out[i], cd = d.convert(c, append(path[:len(path):len(path)], i))
			diags = append(diags, cd...)
		}
		return out, diags
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str", "!!timestamp":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			return strings.EqualFold(n.Value, "true"), nil
		case "!!int", "!!float":
			plain := strings.ReplaceAll(n.Value, "_", "")
			if f, err := strconv.ParseFloat(plain, 64); err == nil {
				return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), nil
			}
			if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
				return json.Number(strconv.FormatInt(i, 10)), nil
			}
			return nil, at(fmt.Sprintf("cannot read number %s: quote it if it is text", n.Value))
		}
		return nil, at(fmt.Sprintf("unsupported YAML value %q: quote it to make it a string", n.Value))
	}
	return nil, at("unsupported YAML node")
}

// node returns the node at path, the key node when the last step is a mapping key, and
// the deepest path found.
func (d *yamlDoc) node(path []any) (key, val *yaml.Node, found []any) {
	val = d.root
	for _, p := range path {
		switch val.Kind {
		case yaml.MappingNode:
			name := fmt.Sprint(p)
			hit := false
			for i := 0; i+1 < len(val.Content); i += 2 {
				if val.Content[i].Value == name {
					key, val, hit = val.Content[i], val.Content[i+1], true
					break
				}
			}
			if !hit {
				return key, val, found
			}
		case yaml.SequenceNode:
			i, ok := p.(int)
			if !ok || i < 0 || i >= len(val.Content) {
				return key, val, found
			}
			key, val = nil, val.Content[i]
		default:
			return key, val, found
		}
		found = append(found, p)
	}
	return key, val, found
}

// at returns the position and field path of path (the key when atKey and there is one).
func (d *yamlDoc) at(atKey bool, path ...any) (int, int, string) {
	key, val, found := d.node(path)
	n := val
	if atKey && key != nil {
		n = key
	}
	return n.Line, n.Column, fieldPath(found)
}

func (d *yamlDoc) decode(into any) error {
	b, err := json.Marshal(d.value)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// fieldPath renders a path as environments.Production.treatments[0].name.
func fieldPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, p)
		}
	}
	return b.String()
}

var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	out := map[string]*jsonschema.Schema{}
	for name, data := range map[string][]byte{schema.SplitFlagName: schema.SplitFlag(), schema.SplitSettingsName: schema.SplitSettings()} {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		if err := c.AddResource("mem://flagsync/"+name, bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", name, err)
		}
		s, err := c.Compile("mem://flagsync/" + name)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
})

// validate checks the document against the named schema.
func (d *yamlDoc) validate(schemaName string) ([]loader.Diagnostic, error) {
	schemas, err := compiled()
	if err != nil {
		return nil, err
	}
	err = schemas[schemaName].Validate(any(d.value))
	var ve *jsonschema.ValidationError
	if err == nil {
		return nil, nil
	}
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("validate %s: %w", d.file, err)
	}
	var diags []loader.Diagnostic
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		var path []any
		for _, t := range strings.Split(strings.TrimPrefix(e.InstanceLocation, "/"), "/") {
			if t == "" {
				continue
			}
			t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
			if i, err := strconv.Atoi(t); err == nil {
				path = append(path, i)
			} else {
				path = append(path, t)
			}
		}
		line, col, field := d.at(false, path...)
		diags = append(diags, loader.Diagnostic{File: d.file, Line: line, Column: col, Field: field, Message: e.Message})
	}
	walk(ve)
	return diags, nil
}
