package diag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file turns YAML bytes into a JSON value the schema validator can check, keeping
// the yaml.Node tree for positions. yaml.v3's surprises are handled here, each with a
// clear diagnostic instead of a silent misread: timestamps stay the text written,
// variable values keep their literal text, and non-string keys, anchors, aliases, merge
// keys, duplicate keys and extra documents are errors.

// seg is one step of a path into a document: a mapping key, or a sequence index when
// idx >= 0.
type seg struct {
	key string
	idx int
}

func keySeg(k string) seg { return seg{key: k, idx: -1} }
func idxSeg(i int) seg    { return seg{key: strconv.Itoa(i), idx: i} }

// fieldPath renders segments as environments.production.rolloutRules[0].exposition.
func fieldPath(segs []seg) string {
	var b strings.Builder
	for _, s := range segs {
		switch {
		case s.idx >= 0:
			b.WriteString("[" + s.key + "]")
		case plainKey(s.key):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			b.WriteString("[" + strconv.Quote(s.key) + "]")
		}
	}
	return b.String()
}

// plainKey reports whether a key can be written after a dot in a field path.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r == '-' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// pointer renders segments as a JSON pointer (RFC 6901).
func pointer(segs []seg) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(s.key, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// document is one parsed YAML file.
type document struct {
	file     string
	root     *yaml.Node     // the top-level mapping
	value    map[string]any // root converted to JSON values
	poisoned []string       // JSON pointers already reported; schema errors under them are dropped
	partial  []string       // JSON pointers of mappings with keys left out; their "missing field" errors are dropped
}

// suppressed reports whether a schema error at the pointer is a consequence of a problem
// already reported during conversion.
func (d *document) suppressed(ptr string) bool {
	for _, p := range d.poisoned {
		if ptr == p || strings.HasPrefix(ptr, p+"/") {
			return true
		}
	}
	return false
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Kind says what kind of file a document is: how it converts and how its messages read.
type Kind struct {
	// AllowEmpty makes an empty file an empty mapping (settings files); otherwise an
	// empty file is the diagnostic Empty.
	AllowEmpty bool
	// What names what the top-level mapping holds, for messages: "flag fields", "settings".
	What string
	// Empty is the message for an empty file, when that is not allowed.
	Empty string
	// Literal lists the paths whose scalar values keep the literal text written, as
	// strings ("[]" stands for any sequence index): a vendor whose API stores values as
	// text (Kameleoon's variable values) lists them, so that `value: 1.50` is "1.50".
	Literal [][]string
}

// parseDocument parses one YAML file of kind k. It returns a nil document when nothing
// could be checked (syntax error, empty file, top level not a mapping).
func parseDocument(file string, data []byte, k Kind) (doc *document, diags []Diagnostic) {
	defer func() {
		// yaml.v3 reports errors through panics it recovers itself; anything else that
		// escapes is a parser bug, which must not take the whole run down.
		if r := recover(); r != nil {
			doc = nil
			diags = append(diags[:0:0], Diagnostic{File: file, Line: 1, Column: 1, Message: fmt.Sprintf("cannot parse YAML: %v", r)})
		}
	}()

	top, diags, ok := parseTop(file, data)
	switch {
	case !ok:
		return nil, diags
	case top == nil:
		return emptyDocument(file, 1, 1, k, diags)
	}
	return documentOf(file, top, k, diags)
}

// parseTop parses the first YAML document of a file. It returns a nil node for a file
// without any document, the problems found (a second document), and false when the first
// document has a syntax error. yaml.v3 reports errors through panics it recovers itself;
// the caller recovers from anything else.
func parseTop(file string, data []byte) (*yaml.Node, []Diagnostic, bool) {
	if !mayHoldDocuments(data) {
		// One document for sure: parse from the bytes, which saves the reader's buffers.
		var top yaml.Node
		if err := yaml.Unmarshal(data, &top); err != nil {
			return nil, []Diagnostic{syntaxDiagnostic(file, data, err)}, false
		}
		if top.Kind == 0 {
			return nil, nil, true
		}
		return &top, nil, true
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var top yaml.Node
	if err := dec.Decode(&top); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, true
		}
		return nil, []Diagnostic{syntaxDiagnostic(file, data, err)}, false
	}
	var diags []Diagnostic
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		diags = append(diags, syntaxDiagnostic(file, data, err))
	default:
		diags = append(diags, Diagnostic{File: file, Line: next.Line, Column: next.Column,
			Message: "a second YAML document (after ---): a file holds exactly one flag; move it to its own file"})
	}
	return &top, diags, true
}

// mayHoldDocuments reports whether data has a line starting with a document marker
// (--- or ...), without which YAML cannot hold a second document.
func mayHoldDocuments(data []byte) bool {
	for line := range bytes.Lines(bytes.TrimPrefix(data, []byte("\ufeff"))) {
		if bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("...")) {
			return true
		}
	}
	return false
}

// documentOf checks the parsed top of a file and converts it.
func documentOf(file string, top *yaml.Node, k Kind, diags []Diagnostic) (*document, []Diagnostic) {
	at := func(line, col int, format string, args ...any) {
		diags = append(diags, Diagnostic{File: file, Line: line, Column: col, Message: fmt.Sprintf(format, args...)})
	}

	if top.Kind != yaml.DocumentNode || len(top.Content) != 1 {
		at(1, 1, "cannot read the YAML document")
		return nil, diags
	}
	root := top.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" && root.Value == "" {
		return emptyDocument(file, root.Line, root.Column, k, diags)
	}
	if root.Kind != yaml.MappingNode {
		at(root.Line, root.Column, "the top level must be a mapping of %s, got %s", k.What, describeNode(root))
		return nil, diags
	}
	c := converter{file: file, literal: k.Literal}
	v := c.convert(root, nil)
	diags = append(diags, c.diags...)
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return &document{file: file, root: root, value: m, poisoned: c.poisoned, partial: c.partial}, diags
}

// emptyDocument handles a file without content: an empty mapping where that is allowed
// (flagsync.yaml), else an error.
func emptyDocument(file string, line, col int, k Kind, diags []Diagnostic) (*document, []Diagnostic) {
	if k.AllowEmpty {
		return &document{file: file, root: &yaml.Node{Kind: yaml.MappingNode, Line: line, Column: col}, value: map[string]any{}}, diags
	}
	return nil, append(diags, Diagnostic{File: file, Line: line, Column: col, Message: k.Empty})
}

// syntaxDiagnostic turns a yaml.v3 error into a diagnostic. yaml.v3 gives a line but no
// column; a tab in the indentation, the most common cause, gets its own message and
// column.
func syntaxDiagnostic(file string, data []byte, err error) Diagnostic {
	msg := err.Error()
	line := 1
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if l, col, ok := tabIndent(data, line); ok {
		return Diagnostic{File: file, Line: l, Column: col, Message: "tab character in indentation: YAML indents with spaces only"}
	}
	if d, ok := indentDiagnostic(file, data, line, msg); ok {
		return d
	}
	return Diagnostic{File: file, Line: line, Column: 1, Message: "YAML syntax error: " + msg}
}

// tabIndent finds a tab in the leading whitespace of the given line or the one after it
// (yaml.v3 sometimes reports the line before the problem).
func tabIndent(data []byte, line int) (int, int, bool) {
	// Line breaks as YAML counts them: \r\n, \r or \n.
	data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	lines := bytes.Split(data, []byte("\n"))
	for l := line; l <= line+1 && l <= len(lines); l++ {
		if l < 1 {
			continue
		}
		for col, ch := range lines[l-1] {
			if ch == '\t' {
				return l, col + 1, true
			}
			if ch != ' ' {
				break
			}
		}
	}
	return 0, 0, false
}

// converter converts a yaml.Node tree into JSON values (map[string]any, []any, string,
// json.Number, bool, nil).
type converter struct {
	file     string
	literal  [][]string // see Kind.Literal
	diags    []Diagnostic
	poisoned []string
	partial  []string
}

func (c *converter) report(n *yaml.Node, path []seg, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{File: c.file, Line: n.Line, Column: n.Column, Field: fieldPath(path), Message: fmt.Sprintf(format, args...)})
}

func (c *converter) poison(path []seg) { c.poisoned = append(c.poisoned, pointer(path)) }

// isValueField reports whether path is one of the Kind's Literal paths, whose scalar is
// kept as the literal text written.
func (c *converter) isValueField(path []seg) bool {
	for _, lit := range c.literal {
		if matchesLiteral(lit, path) {
			return true
		}
	}
	return false
}

// matchesLiteral reports whether path is the literal path pattern ("[]": any index).
func matchesLiteral(pattern []string, path []seg) bool {
	if len(pattern) != len(path) {
		return false
	}
	for i, p := range pattern {
		if p == "[]" {
			if path[i].idx < 0 {
				return false
			}
		} else if path[i].key != p {
			return false
		}
	}
	return true
}

func (c *converter) convert(n *yaml.Node, path []seg) any {
	if n.Kind == yaml.AliasNode {
		c.report(n, path, "aliases (*%s) are not supported: write the value out in full", n.Value)
		c.poison(path)
		return nil
	}
	if n.Anchor != "" {
		c.report(n, path, "anchors (&%s) are not supported: write the value out in full", n.Anchor)
	}
	if n.Style&yaml.TaggedStyle != 0 && !(n.Kind == yaml.ScalarNode && n.Tag == "!!str" || n.Kind == yaml.MappingNode && n.Tag == "!!map" || n.Kind == yaml.SequenceNode && n.Tag == "!!seq") {
		c.report(n, path, "YAML tag %s is not supported: remove it (quote text to keep it a string)", n.Tag)
		c.poison(path)
		return nil
	}
	if c.isValueField(path) {
		switch {
		case n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode:
			c.report(n, path, "must be a string, got %s; to give a JSON value, quote it: value: '{\"a\": 1}'", describeNode(n))
			c.poison(path)
			return nil
		default:
			return n.Value
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		return c.mapping(n, path)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, item := range n.Content {
			out[i] = c.convert(item, append(path, idxSeg(i)))
		}
		return out
	case yaml.ScalarNode:
		return c.scalar(n, path)
	}
	c.report(n, path, "unsupported YAML node")
	c.poison(path)
	return nil
}

func (c *converter) mapping(n *yaml.Node, path []seg) any {
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			// The pair is reported and left out below; a field it might have held must not
			// also be reported missing.
			c.partial = append(c.partial, pointer(path))
		}
		switch {
		case k.Kind == yaml.AliasNode:
			c.report(k, path, "aliases (*%s) are not supported: write the value out in full", k.Value)
			continue
		case k.Kind != yaml.ScalarNode:
			c.report(k, path, "mapping keys must be strings, got %s", describeNode(k))
			continue
		case k.Tag == "!!merge":
			c.report(k, path, "merge keys (<<) are not supported: write the fields out in full")
			continue
		case k.Tag != "!!str":
			c.report(k, path, "mapping keys must be strings, got %s; quote it: %s", describeNode(k), strconv.Quote(k.Value))
			continue
		}
		if k.Anchor != "" {
			c.report(k, path, "anchors (&%s) are not supported: write the value out in full", k.Anchor)
		}
		if _, dup := out[k.Value]; dup {
			c.report(k, append(path, keySeg(k.Value)), "duplicate key %q (first defined at line %d)", k.Value, firstKey(n, k.Value).Line)
			continue
		}
		out[k.Value] = c.convert(v, append(path, keySeg(k.Value)))
	}
	return out
}

// firstKey returns the first key node of mapping n named name.
func firstKey(n *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!str" && k.Value == name {
			return k
		}
	}
	return n
}

// leadingZero reports whether s is digits with a leading zero, after an optional sign
// (^[-+]?0[0-9]+$): text YAML 1.1 would read as octal.
func leadingZero(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if len(s) < 2 || s[0] != '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (c *converter) scalar(n *yaml.Node, path []seg) any {
	switch n.Tag {
	case "!!str":
		return n.Value
	case "!!timestamp":
		// yaml.v3 would make this a time.Time and re-render it; the text written is what
		// the API takes (release windows are local times), so keep it.
		return n.Value
	case "!!null":
		return nil
	case "!!bool":
		return strings.EqualFold(n.Value, "true")
	case "!!int":
		num, problem := intNumber(n.Value)
		if problem != "" {
			c.report(n, path, "%s", problem)
			c.poison(path)
			return nil
		}
		return num
	case "!!float":
		num, problem := floatNumber(n.Value, strings.ReplaceAll(n.Value, "_", ""))
		if problem != "" {
			c.report(n, path, "%s", problem)
			c.poison(path)
			return nil
		}
		return num
	}
	c.report(n, path, "unsupported YAML value %s (tag %s): quote it to make it a string", strconv.Quote(n.Value), n.Tag)
	c.poison(path)
	return nil
}

// intNumber converts the text of an !!int scalar to a JSON number, or says what is
// wrong with it.
func intNumber(value string) (json.Number, string) {
	plain := strings.ReplaceAll(value, "_", "")
	if leadingZero(plain) {
		return "", fmt.Sprintf("number %s has a leading zero, which YAML may read as octal: write it without the zero, or quote it if it is text", value)
	}
	if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return json.Number(strconv.FormatInt(i, 10)), ""
	}
	if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return json.Number(strconv.FormatUint(u, 10)), ""
	}
	return floatNumber(value, plain)
}

// floatNumber converts plain, the text of a number scalar written value (underscores
// removed), to a finite JSON number, or says what is wrong with it.
func floatNumber(value, plain string) (json.Number, string) {
	if leadingZero(plain) {
		return "", fmt.Sprintf("number %s has a leading zero, which YAML may read as octal: write it without the zero, or quote it if it is text", value)
	}
	f, err := strconv.ParseFloat(plain, 64)
	if err != nil {
		switch strings.ToLower(strings.TrimLeft(plain, "+-")) {
		case ".inf":
			f = math.Inf(1)
		case ".nan":
			f = math.NaN()
		default:
			return "", fmt.Sprintf("cannot read number %s: quote it if it is text", value)
		}
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Sprintf("must be a finite number, got %s", value)
	}
	if math.Abs(f) < 1e21 {
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), ""
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), ""
}

// describeNode says what a node is, for messages: a mapping, a list, null, true, 42, "text".
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!null":
		return "null"
	case "!!bool", "!!int", "!!float":
		return n.Value
	}
	return strconv.Quote(n.Value)
}
