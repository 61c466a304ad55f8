package promote

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// text is a file split into lines, each with its line ending.
type text []string

func splitLines(src []byte) text {
	return strings.SplitAfter(string(src), "\n")
}

// body is line i without its line ending.
func (t text) body(i int) string {
	return strings.TrimRight(t[i], "\r\n")
}

// byteCol is the byte offset in line i of 1-based character column col, as yaml.v3
// counts columns.
func (t text) byteCol(i, col int) int {
	line := t.body(i)
	off := 0
	for c := 1; c < col && off < len(line); c++ {
		_, size := utf8.DecodeRuneInString(line[off:])
		off += size
	}
	return off
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }

func isComment(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "#") }

// blockEnd is the 0-based index of the last line of the value of the key on line keyLine
// (0-based) indented by keyIndent: every following line up to the first content line
// indented no deeper than the key, less trailing blank lines; comment lines right after
// the last content line belong to the block when they are indented deeper than the key.
func (t text) blockEnd(keyLine, keyIndent int) int {
	last := keyLine
	for i := keyLine + 1; i < len(t); i++ {
		b := t.body(i)
		if isBlank(b) || isComment(b) {
			continue
		}
		if indentOf(b) <= keyIndent {
			break
		}
		last = i
	}
	for i := last + 1; i < len(t); i++ {
		b := t.body(i)
		if isBlank(b) || !isComment(b) || indentOf(b) <= keyIndent {
			break
		}
		last = i
	}
	return last
}

// headStart is the first line of the comments right above the key on line keyLine that
// are indented like it: they belong to the key and move with it.
func (t text) headStart(keyLine, keyIndent int) int {
	start := keyLine
	for i := keyLine - 1; i >= 0; i-- {
		b := t.body(i)
		if !isComment(b) || indentOf(b) != keyIndent {
			break
		}
		start = i
	}
	return start
}

// scalarSpan is the byte range on its line of scalar n's text as written, when it is on
// one line and reads back as n's value; ok is false otherwise (block scalars, multi-line
// or escaped quoted scalars).
func (t text) scalarSpan(n *yaml.Node) (line, from, to int, ok bool) {
	if n.Kind != yaml.ScalarNode || n.Line < 1 || n.Line > len(t) {
		return 0, 0, 0, false
	}
	line = n.Line - 1
	b := t.body(line)
	from = t.byteCol(line, n.Column)
	if from > len(b) {
		return 0, 0, 0, false
	}
	rest := b[from:]
	switch n.Style {
	case 0:
		if !strings.HasPrefix(rest, n.Value) || n.Value == "" {
			return 0, 0, 0, false
		}
		return line, from, from + len(n.Value), true
	case yaml.SingleQuotedStyle:
		raw := "'" + strings.ReplaceAll(n.Value, "'", "''") + "'"
		if !strings.HasPrefix(rest, raw) {
			return 0, 0, 0, false
		}
		return line, from, from + len(raw), true
	case yaml.DoubleQuotedStyle:
		if !strings.HasPrefix(rest, `"`) {
			return 0, 0, 0, false
		}
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				var v string
				if yaml.Unmarshal([]byte(rest[:i+1]), &v) != nil || v != n.Value {
					return 0, 0, 0, false
				}
				return line, from, from + i + 1, true
			}
		}
	}
	return 0, 0, 0, false
}

// edit replaces bytes [from, to) of a line.
type edit struct {
	line, from, to int
	text           string
}

// apply returns the lines with the edits made; edits on one line must not overlap.
func (t text) apply(edits []edit) text {
	out := make(text, len(t))
	copy(out, t)
	byLine := map[int][]edit{}
	for _, e := range edits {
		byLine[e.line] = append(byLine[e.line], e)
	}
	for line, es := range byLine {
		// Right to left, so earlier offsets stay valid.
		for i := 1; i < len(es); i++ {
			for j := i; j > 0 && es[j].from > es[j-1].from; j-- {
				es[j], es[j-1] = es[j-1], es[j]
			}
		}
		s := out[line]
		for _, e := range es {
			s = s[:e.from] + e.text + s[e.to:]
		}
		out[line] = s
	}
	return out
}
