package diag

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// This file is the API every vendor's loader uses: YAML parsed with positions and its
// pitfalls reported, JSON Schema errors rendered as diagnostics, semantic problems placed
// on the node they are about, typo hints. Every vendor's files then read alike.

// Schema is a JSON Schema (draft 2020-12) compiled for checking documents.
type Schema struct{ cs compiledSchema }

// CompileSchema compiles the schema data, named name in its errors. hints explains
// unknown fields that people copy from API responses (name → what to write instead).
func CompileSchema(name string, data []byte, hints map[string]string) (*Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	url := "mem://flagsync/" + name
	if err := c.AddResource(url, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("add schema %s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", name, err)
	}
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("read schema %s: %w", name, err)
	}
	return &Schema{compiledSchema{schema: s, raw: raw, hints: hints}}, nil
}

// Validate checks doc against the schema and returns one diagnostic per problem, placed
// on the node the problem is about. The error is reserved for the validator failing.
func (s *Schema) Validate(doc *Document) ([]Diagnostic, error) { return s.cs.validate(doc.d) }

// Document is one YAML file parsed for checking.
type Document struct{ d *document }

// ParseDocument parses a YAML file as flag files are parsed: timestamps stay the text
// written; anchors, aliases, merge keys, tags, non-string and duplicate keys, tabs and a
// second document are diagnostics. It returns a nil Document when nothing could be
// checked. what names the top-level fields for messages ("flag fields", "settings");
// empty is the message for an empty file, and "" makes an empty file an empty mapping.
func ParseDocument(file string, data []byte, what, empty string) (*Document, []Diagnostic) {
	return Parse(file, data, Kind{AllowEmpty: empty == "", What: what, Empty: empty})
}

// Parse parses a YAML file of kind k (see ParseDocument).
func Parse(file string, data []byte, k Kind) (*Document, []Diagnostic) {
	d, diags := parseDocument(file, data, k)
	if d == nil {
		return nil, diags
	}
	return &Document{d}, diags
}

// File returns the document's file name.
func (d *Document) File() string { return d.d.file }

// Value returns the document converted to JSON values (map[string]any, []any, string,
// json.Number, bool, nil).
func (d *Document) Value() map[string]any { return d.d.value }

// Decode stores the document's values in the struct into points to, by json tags, as
// encoding/json would; it goes on past a value of the wrong type and returns the first
// such error.
func (d *Document) Decode(into any) error { return decodeValue(d.d.value, into) }

// Root returns the document's top-level mapping node.
func (d *Document) Root() *yaml.Node { return d.d.root }

// Has reports whether a value is written at path (mapping keys as strings, sequence
// indexes as ints).
func (d *Document) Has(path ...any) bool { return locate(d.d.root, tokens(path)).found }

// At returns where path is written — its key when atKey and the last step is a mapping
// key — and its field path (environments.Production.treatments[0]); a path that is not
// written resolves to the deepest node that is.
func (d *Document) At(atKey bool, path ...any) (line, col int, field string) {
	l := locate(d.d.root, tokens(path))
	line, col = l.at(atKey)
	return line, col, l.field()
}

func tokens(path []any) []string {
	out := make([]string, len(path))
	for i, p := range path {
		switch p := p.(type) {
		case int:
			out[i] = strconv.Itoa(p)
		default:
			out[i] = fmt.Sprint(p)
		}
	}
	return out
}

// Location is where a path leads in a document (see Document.Locate).
type Location struct {
	Key   *yaml.Node // the key node when the last step was a mapping key
	Node  *yaml.Node // the value node (the deepest one found)
	Field string     // the field path of the steps found, e.g. rolloutRules[0].name
	Found bool       // every step was found
}

// At returns the position to report: the key of a mapping entry when atKey, else the
// value.
func (l Location) At(atKey bool) (line, col int) {
	return located{key: l.Key, node: l.Node}.at(atKey)
}

// Locate follows path (strings are mapping keys, ints sequence indexes) from the root
// mapping; it stops at the deepest node found.
func (d *Document) Locate(path ...any) Location {
	l := locate(d.d.root, tokens(path))
	return Location{Key: l.key, Node: l.node, Field: l.field(), Found: l.found}
}

// ValueAt returns the JSON value written at path (see Value), and whether there is one.
func (d *Document) ValueAt(path ...any) (any, bool) { return resolveRaw(d.d.value, tokens(path)) }

// FieldPath renders a path (strings are mapping keys, ints sequence indexes) as a field
// path: environments.production.rolloutRules[0].exposition.
func FieldPath(path ...any) string {
	segs := make([]seg, len(path))
	for i, p := range path {
		switch p := p.(type) {
		case int:
			segs[i] = idxSeg(p)
		default:
			segs[i] = keySeg(fmt.Sprint(p))
		}
	}
	return fieldPath(segs)
}

// Under reports whether field path f is p or inside it.
func Under(f, p string) bool {
	if !strings.HasPrefix(f, p) {
		return false
	}
	return len(f) == len(p) || f[len(p)] == '.' || f[len(p)] == '['
}

// Decode stores JSON values (as Document.Value holds them) in the struct into points to,
// by json tags, as encoding/json would; it goes on past a value of the wrong type and
// returns the first such error.
func Decode(v any, into any) error { return decodeValue(v, into) }

// Checks collects the semantic problems of one document, the checks the schema cannot
// express. A problem at or inside a field that already has a problem is left out, so
// that one mistake is reported once.
type Checks struct {
	doc   *Document
	known []Diagnostic
	Diags []Diagnostic // the problems added
}

// Checks starts collecting problems of d, given those already found (syntax, schema).
func (d *Document) Checks(known []Diagnostic) *Checks { return &Checks{doc: d, known: known} }

// Troubled reports whether a problem found before the checks (syntax, schema) is at
// field or inside it.
func (c *Checks) Troubled(field string) bool {
	for _, d := range c.known {
		if Under(d.Field, field) {
			return true
		}
	}
	return false
}

// Add reports msg at path (strings are mapping keys, ints sequence indexes); atKey places
// it on the key rather than on the value.
func (c *Checks) Add(atKey bool, msg string, path ...any) {
	line, col, field := c.doc.At(atKey, path...)
	for _, d := range c.known {
		if d.Field != "" && Under(field, d.Field) {
			return
		}
	}
	c.Diags = append(c.Diags, Diagnostic{File: c.doc.d.file, Line: line, Column: col, Field: field, Message: msg})
}

// DidYouMean returns `; did you mean "x"?` for the candidate closest to s when it is a
// likely typo, or "".
func DidYouMean(s string, candidates []string) string { return didYouMean(s, candidates) }

// SortDiagnostics sorts diagnostics by file, line, column, field and message, the order
// an *InvalidError lists them in.
func SortDiagnostics(ds []Diagnostic) {
	slices.SortFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			strings.Compare(a.Field, b.Field), strings.Compare(a.Message, b.Message))
	})
}
