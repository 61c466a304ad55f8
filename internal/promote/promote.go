package promote

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Errors Promote wraps; check them with errors.Is.
var (
	// ErrNoEnvironments: the flag file has no environments mapping.
	ErrNoEnvironments = errors.New("the flag file has no environments")
	// ErrNoSource: the source environment is not in the flag file.
	ErrNoSource = errors.New("the source environment is not in the flag file")
	// ErrUnsupported: the file is written in a way promote does not edit (environments in
	// flow style, anchors and aliases in the blocks).
	ErrUnsupported = errors.New("the flag file is written in a way promote cannot edit")
)

// Options says what one promotion copies where.
type Options struct {
	// From and To are the source and target environment keys.
	From, To string
	// Settings are flagsync.yaml's promote settings.
	Settings Settings
	// Order is flagsync.yaml's environments list. A target block that does not exist yet
	// is placed after the file's last environment that Order lists before To (or before
	// the first one it lists after To); without such a neighbour, after the source block.
	Order []string
}

// Result is the edited file and what changed in it.
type Result struct {
	// Out is the new file. It equals the input when nothing changes.
	Out []byte `json:"-"`
	// Changed is false when the target block already had the source's configuration.
	Changed bool `json:"changed"`
	// Created is true when the file had no target block.
	Created bool `json:"created"`
	// Reformatted is true when the block had to be re-rendered by the YAML encoder (a
	// kept field the source or target lacks): the block's data is exact, its layout is the
	// encoder's; everything outside it is untouched.
	Reformatted bool `json:"reformatted"`
	// Fields are the differences in environments.<To>, in the new block's order.
	Fields []FieldChange `json:"fields"`
	// Segments are the segment ids mapped on the way.
	Segments []SegmentChange `json:"segments,omitempty"`
	// Unmapped are segment ids copied as they are: the settings have no mapping for them.
	Unmapped []SegmentChange `json:"unmapped,omitempty"`
	// Kept are the fields whose target value was kept (Settings.Keep), as full paths.
	Kept []string `json:"kept,omitempty"`
}

// SegmentChange is one segment id met in the source block.
type SegmentChange struct {
	Path string `json:"path"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Promote rewrites environments.<To> of the flag file src from environments.<From>: every
// key of the source block, with segment ids mapped and Settings.Keep paths kept from the
// target. It edits the text: the lines of the target block are replaced by the source
// block's lines (comments included) with single scalars changed in place, and every other
// byte of the file is kept. The result is read back and checked before it is returned.
func Promote(src []byte, opts Options) (*Result, error) {
	res, err := promote(src, opts)
	if err != nil {
		return nil, fmt.Errorf("promote %s to %s: %w", opts.From, opts.To, err)
	}
	return res, nil
}

func promote(src []byte, opts Options) (*Result, error) {
	if opts.From == "" || opts.To == "" || opts.From == opts.To {
		return nil, fmt.Errorf("need two different environments, got %q and %q", opts.From, opts.To)
	}
	keep := make([][]step, len(opts.Settings.Keep))
	for i, p := range opts.Settings.Keep {
		st, err := parsePath(p)
		if err != nil {
			return nil, err
		}
		keep[i] = st
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("read the flag file: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: not a mapping", ErrNoEnvironments)
	}
	_, envs := lookup(doc.Content[0], "environments")
	if envs == nil || envs.Kind != yaml.MappingNode {
		return nil, ErrNoEnvironments
	}
	if envs.Style&yaml.FlowStyle != 0 {
		return nil, fmt.Errorf("%w: environments is written in flow style ({...}); write it as a block", ErrUnsupported)
	}
	srcKey, srcVal := lookup(envs, opts.From)
	if srcKey == nil {
		return nil, fmt.Errorf("%w: environments has no %s (it has %s)", ErrNoSource, opts.From, strings.Join(envKeys(envs), ", "))
	}
	if hasAlias(srcVal) {
		return nil, fmt.Errorf("%w: environments.%s uses anchors or aliases", ErrUnsupported, opts.From)
	}
	dstKey, dstVal := lookup(envs, opts.To)
	lines := splitLines(src)
	for _, kv := range [][2]*yaml.Node{{srcKey, srcVal}, {dstKey, dstVal}} {
		// The block's text ends where the indentation says; a node past that end means the
		// text is laid out in a way the line scan misreads.
		if kv[0] != nil && maxLine(kv[1])-1 > lines.blockEnd(kv[0].Line-1, kv[0].Column-1) {
			return nil, fmt.Errorf("%w: cannot find where environments.%s ends", ErrUnsupported, kv[0].Value)
		}
	}

	p := &promotion{opts: opts, lines: lines, res: &Result{Created: dstKey == nil}}
	block := clone(srcVal)
	p.mapSegments(block, "environments."+opts.To)
	for _, st := range keep {
		p.keep(block, dstVal, st, "environments."+opts.To)
	}
	diff("environments."+opts.To, dstVal, block, &p.res.Fields)
	if dstKey != nil && len(p.res.Fields) == 0 {
		p.res.Out = src
		return p.res, nil
	}
	p.res.Changed = true

	value, inline := p.render(srcKey, srcVal, block)
	out := p.splice(envs, srcKey, dstKey, dstVal, value, inline)
	if err := verify(&doc, out, opts.To, block); err != nil {
		return nil, err
	}
	p.res.Out = out
	return p.res, nil
}

// promotion carries one Promote call's state.
type promotion struct {
	opts       Options
	lines      text
	res        *Result
	edits      map[*yaml.Node]string // scalar of the new block -> its new text
	structural bool                  // the new block differs from the source's text by more than scalars
}

func (p *promotion) setScalar(n *yaml.Node, value, raw string) {
	if p.edits == nil {
		p.edits = map[*yaml.Node]string{}
	}
	n.Value = value
	p.edits[n] = raw
}

// mapSegments maps every segment id of the new block through the source environment's
// table and records what it met.
func (p *promotion) mapSegments(n *yaml.Node, path string) {
	table := p.opts.Settings.Segments[p.opts.From]
	keys := p.opts.Settings.segmentKeys()
	var walk func(n *yaml.Node, path string)
	mapOne := func(v *yaml.Node, path string) {
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
			return
		}
		to, ok := table[v.Value]
		if !ok {
			p.res.Unmapped = append(p.res.Unmapped, SegmentChange{Path: path, From: v.Value, To: v.Value})
			return
		}
		p.res.Segments = append(p.res.Segments, SegmentChange{Path: path, From: v.Value, To: to})
		if to != v.Value {
			raw := quoteLike(v, to)
			v.Tag = tagOf(raw)
			p.setScalar(v, to, raw)
		}
	}
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				if slices.Contains(keys, k) {
					switch v.Kind {
					case yaml.ScalarNode:
						mapOne(v, join(path, k))
						continue
					case yaml.SequenceNode:
						for j, e := range v.Content {
							mapOne(e, fmt.Sprintf("%s[%d]", join(path, k), j))
						}
						continue
					}
				}
				walk(v, join(path, k))
			}
		case yaml.SequenceNode:
			id := identity(n)
			for i, e := range n.Content {
				walk(e, elementPath(path, n, i, id))
			}
		}
	}
	walk(n, path)
}

// keep makes the new block hold the target's value at a keep path wherever the target has
// the element that contains it.
func (p *promotion) keep(block, target *yaml.Node, steps []step, path string) {
	if target == nil {
		return
	}
	st := steps[0]
	nk, nv := lookup(block, st.key)
	_, tv := lookup(target, st.key)
	if block.Kind != yaml.MappingNode || target.Kind != yaml.MappingNode {
		return
	}
	here := join(path, st.key)
	if len(steps) == 1 {
		p.keepField(block, target, st.key, nk, nv, tv, here)
		return
	}
	if nv == nil || tv == nil {
		return
	}
	if !st.hasSel {
		p.keep(nv, tv, steps[1:], here)
		return
	}
	if nv.Kind != yaml.SequenceNode || tv.Kind != yaml.SequenceNode {
		return
	}
	id := identity(nv)
	for i, e := range nv.Content {
		switch {
		case st.sel == "*":
		case st.selField != "":
			if _, v := lookup(e, st.selField); v == nil || v.Value != st.selValue {
				continue
			}
		default:
			if i != st.selIndex {
				continue
			}
		}
		var te *yaml.Node
		if st.selField == "" && st.sel != "*" {
			if st.selIndex < len(tv.Content) {
				te = tv.Content[st.selIndex]
			}
		} else {
			te = match(nv, i, tv)
		}
		if te != nil {
			p.keep(e, te, steps[1:], elementPath(here, nv, i, id))
		}
	}
}

// keepField gives the new block's mapping the target's key (value or absence).
func (p *promotion) keepField(block, target *yaml.Node, key string, nk, nv, tv *yaml.Node, path string) {
	switch {
	case nv == nil && tv == nil:
		return
	case nv != nil && tv != nil:
		if reflect.DeepEqual(plain(nv), plain(tv)) {
			return
		}
		p.res.Kept = append(p.res.Kept, path)
		if nv.Kind == yaml.ScalarNode && tv.Kind == yaml.ScalarNode {
			if _, from, to, ok := p.lines.scalarSpan(tv); ok {
				raw := p.lines.body(tv.Line - 1)[from:to]
				nv.Tag, nv.Style = tv.Tag, tv.Style
				p.setScalar(nv, tv.Value, raw)
				return
			}
		}
		c := clone(tv)
		for i := 0; i+1 < len(block.Content); i += 2 {
			if block.Content[i] == nk {
				block.Content[i+1] = c
			}
		}
		p.structural = true
	case tv != nil: // the target has it, the source not: add it
		p.res.Kept = append(p.res.Kept, path)
		tk, _ := lookup(target, key)
		block.Content = append(block.Content, clone(tk), clone(tv))
		p.structural = true
	default: // the source has it, the target not: drop it
		p.res.Kept = append(p.res.Kept, path)
		for i := 0; i+1 < len(block.Content); i += 2 {
			if block.Content[i] == nk {
				block.Content = append(block.Content[:i], block.Content[i+2:]...)
				break
			}
		}
		p.structural = true
	}
}

// render is the text of the new block's value: the source block's own lines with scalar
// edits made, or, when the block changed structurally or an edit cannot be placed, the
// YAML encoder's rendering indented like the file. inline is true when the value is
// written on the key's line (a flow mapping).
func (p *promotion) render(srcKey, srcVal, block *yaml.Node) (string, bool) {
	keyLine, keyIndent := srcKey.Line-1, srcKey.Column-1
	inline := srcVal.Line == srcKey.Line
	if !p.structural {
		var edits []edit
		ok := true
		for n, raw := range p.edits {
			line, from, to, found := p.lines.scalarSpan(sourceOf(srcVal, block, n))
			if !found {
				ok = false
				break
			}
			edits = append(edits, edit{line: line, from: from, to: to, text: raw})
		}
		if ok {
			lines := p.lines.apply(edits)
			end := lines.blockEnd(keyLine, keyIndent)
			eol := lineEnding(lines[keyLine])
			if inline {
				first := lines[keyLine][lines.byteCol(keyLine, srcVal.Column):]
				return withEOL(first+strings.Join(lines[keyLine+1:end+1], ""), eol), true
			}
			return withEOL(strings.Join(lines[keyLine+1:end+1], ""), eol), false
		}
	}
	p.res.Reformatted = true
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	step := p.indentStep(srcKey, srcVal)
	enc.SetIndent(step)
	if err := enc.Encode(block); err != nil {
		// Encoding nodes that came out of the decoder cannot fail; say so if it does.
		return fmt.Sprintf("# promote: could not render the block: %v\n", err), false
	}
	if inline {
		return buf.String(), true
	}
	var out strings.Builder
	pad := strings.Repeat(" ", keyIndent+step)
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l == "" {
			continue
		}
		if isBlank(l) {
			out.WriteString(l)
			continue
		}
		out.WriteString(pad + l)
	}
	return out.String(), false
}

// sourceOf finds, in the source block, the node at the same place as n in its clone.
func sourceOf(src, cloned, n *yaml.Node) *yaml.Node {
	if cloned == n {
		return src
	}
	for i := range cloned.Content {
		if i < len(src.Content) {
			if f := sourceOf(src.Content[i], cloned.Content[i], n); f != nil {
				return f
			}
		}
	}
	return nil
}

// indentStep is how much deeper than its key the source block is indented (2 by default).
func (p *promotion) indentStep(k, v *yaml.Node) int {
	if v.Line > k.Line && v.Column > k.Column {
		return v.Column - k.Column
	}
	return 2
}

// splice puts the new value text in place of the target block, or inserts a new target
// block where Options.Order says.
func (p *promotion) splice(envs, srcKey, dstKey, dstVal *yaml.Node, value string, inline bool) []byte {
	lines := p.lines
	keyIndent := srcKey.Column - 1
	var out strings.Builder
	write := func(ls text) {
		for _, l := range ls {
			out.WriteString(l)
		}
	}
	if dstKey != nil {
		kl := dstKey.Line - 1
		end := lines.blockEnd(kl, dstKey.Column-1)
		keyText := lines.body(kl)
		if dstVal.Line == dstKey.Line && !(dstVal.Kind == yaml.ScalarNode && dstVal.ShortTag() == "!!null") {
			keyText = strings.TrimRight(keyText[:lines.byteCol(kl, dstVal.Column)], " ")
		}
		write(lines[:kl])
		out.WriteString(keyLine(keyText, value, inline, lineEnding(lines[kl])))
		if !inline {
			out.WriteString(value)
		}
		write(lines[end+1:])
		return []byte(out.String())
	}
	at := p.insertAt(envs, srcKey)
	write(lines[:at])
	if at > 0 && !strings.HasSuffix(lines[at-1], "\n") {
		out.WriteString("\n")
	}
	out.WriteString(keyLine(strings.Repeat(" ", keyIndent)+quoteKey(p.opts.To)+":", value, inline, lineEnding(lines[srcKey.Line-1])))
	if !inline {
		out.WriteString(value)
	}
	write(lines[at:])
	return []byte(out.String())
}

// keyLine is the target's key line: the key (and for a block value its line's comment),
// then the value when it is written on that line.
func keyLine(keyText, value string, inline bool, eol string) string {
	if eol == "" {
		eol = "\n"
	}
	if !inline {
		return keyText + eol
	}
	// The value takes the line's end, so a comment after the key goes.
	k := keyText
	if c := strings.Index(k, ":"); c >= 0 {
		if j := strings.Index(k[c:], " #"); j >= 0 {
			k = k[:c+j]
		}
	}
	k = strings.TrimRight(k, " ")
	v := value
	if !strings.HasSuffix(v, "\n") {
		v += eol
	}
	return k + " " + v
}

// withEOL ends a non-empty text with a line ending: the source block may be the file's
// last line, without one, and be copied above other lines.
func withEOL(s, eol string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	if eol == "" {
		eol = "\n"
	}
	return s + eol
}

func lineEnding(l string) string {
	if strings.HasSuffix(l, "\r\n") {
		return "\r\n"
	}
	if strings.HasSuffix(l, "\n") {
		return "\n"
	}
	return ""
}

// quoteKey writes an environment key as YAML reads it back as that string.
func quoteKey(k string) string {
	var probe yaml.Node
	if yaml.Unmarshal([]byte(k+": x"), &probe) == nil && len(probe.Content) == 1 && len(probe.Content[0].Content) == 2 {
		if kn := probe.Content[0].Content[0]; kn.Value == k && kn.ShortTag() == "!!str" {
			return k
		}
	}
	return `"` + strings.ReplaceAll(k, `"`, `\"`) + `"`
}

// insertAt is the line a new target block starts on: after the block of the file's last
// environment that Order places before the target, else before the first (and its head
// comments) that Order places after it, else after the source block.
func (p *promotion) insertAt(envs, srcKey *yaml.Node) int {
	lines := p.lines
	pos := slices.Index(p.opts.Order, p.opts.To)
	if pos >= 0 {
		var before, after *yaml.Node
		for i := 0; i+1 < len(envs.Content); i += 2 {
			k := envs.Content[i]
			j := slices.Index(p.opts.Order, k.Value)
			if j < 0 {
				continue
			}
			if j < pos {
				before = k
			} else if after == nil {
				after = k
			}
		}
		if before != nil {
			return lines.blockEnd(before.Line-1, before.Column-1) + 1
		}
		if after != nil {
			return lines.headStart(after.Line-1, after.Column-1)
		}
	}
	return lines.blockEnd(srcKey.Line-1, srcKey.Column-1) + 1
}

// verify reads the edited file back: everything but environments.<to> must be the data it
// was, environments keep their order with <to> in it, and <to> must be the new block.
func verify(before *yaml.Node, out []byte, to string, block *yaml.Node) error {
	var after yaml.Node
	if err := yaml.Unmarshal(out, &after); err != nil {
		return fmt.Errorf("the edited file does not parse (a bug in promote; the file was not written): %w", err)
	}
	want := plain(before).(map[string]any)
	got, ok := plain(&after).(map[string]any)
	if !ok {
		return errors.New("the edited file is not a mapping (a bug in promote; the file was not written)")
	}
	wantEnvs := map[string]any{}
	for k, v := range want["environments"].(map[string]any) {
		wantEnvs[k] = v
	}
	wantEnvs[to] = plain(block)
	want["environments"] = wantEnvs
	if !reflect.DeepEqual(want, got) {
		return errors.New("the edited file does not read back as intended (a bug in promote; the file was not written)")
	}
	_, envsBefore := lookup(before.Content[0], "environments")
	_, envsAfter := lookup(after.Content[0], "environments")
	if got, want := envKeys(envsAfter), envKeys(envsBefore); !slices.Equal(slices.DeleteFunc(got, func(k string) bool { return k == to }),
		slices.DeleteFunc(want, func(k string) bool { return k == to })) {
		return errors.New("the edited file has its environments in another order (a bug in promote; the file was not written)")
	}
	return nil
}

func envKeys(envs *yaml.Node) []string {
	var keys []string
	for i := 0; i+1 < len(envs.Content); i += 2 {
		keys = append(keys, envs.Content[i].Value)
	}
	return keys
}

func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c) {
			return true
		}
	}
	return false
}
