package diag

import (
	"bytes"
	"fmt"
	"strings"
)

// yaml.v3 reports a block whose indentation is broken at the line of the mapping or
// sequence that is still open ("did not find expected key", "did not find expected '-'
// indicator"), which can be many lines above the line whose indentation is wrong. The
// functions below find that line, so that the diagnostic points at it.

// blockErrors are the yaml.v3 messages that misindentedLine explains.
var blockErrors = []string{"did not find expected key", "did not find expected '-' indicator"}

// indentDiagnostic returns the diagnostic for a yaml.v3 block error reported at line
// reported: the first line from there on whose indentation matches no enclosing block,
// with its column. ok is false when msg is not a block error or no such line is found,
// and the caller keeps yaml.v3's position.
func indentDiagnostic(file string, data []byte, reported int, msg string) (Diagnostic, bool) {
	known := false
	for _, e := range blockErrors {
		if strings.Contains(msg, e) {
			known = true
		}
	}
	if !known {
		return Diagnostic{}, false
	}
	line, col, ok := misindentedLine(data, reported)
	if !ok {
		return Diagnostic{}, false
	}
	return Diagnostic{File: file, Line: line, Column: col, Message: fmt.Sprintf(
		"YAML syntax error: bad indentation: this line is indented %d spaces, which matches no enclosing block (%s; the block opens on line %d)",
		col-1, msg, reported)}, true
}

// level is one open block: the column its entries start at (0-based), and whether only
// sequence entries ("- ") were seen there.
type level struct {
	indent  int
	seqOnly bool
}

// misindentedLine walks the block structure of data by indentation and returns the
// first line at or after from whose indentation is wrong: a dedent to a column no open
// block uses, or a mapping key at the column of a nested sequence's entries. Comments,
// blank lines, block scalars (| and >) and multi-line flow collections are skipped.
func misindentedLine(data []byte, from int) (line, col int, ok bool) {
	data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var stack []level
	scalarIndent := -1 // inside a block scalar: the indentation of the line that opened it
	flow := 0          // depth of an open flow collection ([ or {) spanning lines
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		text := strings.TrimRight(raw, " \t")
		content := strings.TrimLeft(text, " ")
		indent := len(text) - len(content)
		if content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		if scalarIndent >= 0 {
			if indent > scalarIndent {
				continue
			}
			scalarIndent = -1
		}
		if flow > 0 {
			flow += flowDepth(content)
			continue
		}
		if strings.HasPrefix(content, "---") || strings.HasPrefix(content, "...") {
			stack = stack[:0]
			continue
		}
		dash := isDash(content)
		var bad bool
		if stack, bad = place(stack, indent, dash); bad && n >= from {
			return n, indent + 1, true
		}
		var rest string
		stack, rest = openEntries(stack, content, indent)
		if opensBlockScalar(rest) {
			scalarIndent = indent
		}
		flow = flowDepth(rest)
		if flow < 0 {
			flow = 0
		}
	}
	return 0, 0, false
}

// isDash reports whether a line's content is a sequence entry ("- x", or "-" alone).
func isDash(content string) bool { return content == "-" || strings.HasPrefix(content, "- ") }

// place puts a line of the given indentation on the stack of open blocks: a deeper line
// opens a block, a shallower one closes blocks down to its column. bad is true when the
// line matches no open column, or is a mapping key at the column of a nested sequence's
// entries; the stack is then repaired as if the line were right.
func place(stack []level, indent int, dash bool) ([]level, bool) {
	if len(stack) == 0 || indent > stack[len(stack)-1].indent {
		return append(stack, level{indent: indent, seqOnly: dash}), false
	}
	for len(stack) > 0 && stack[len(stack)-1].indent > indent {
		stack = stack[:len(stack)-1]
	}
	top := len(stack) - 1
	if top < 0 || stack[top].indent != indent {
		return append(stack, level{indent: indent, seqOnly: dash}), true
	}
	bad := stack[top].seqOnly && !dash && top > 0 && stack[top-1].indent < indent
	if !dash {
		stack[top].seqOnly = false
	}
	return stack, bad
}

// openEntries opens a block at the column of the entry after each "- " of a line (also
// "- - x"), and returns the line's content after them.
func openEntries(stack []level, content string, indent int) ([]level, string) {
	rest, at := content, indent
	for isDash(rest) {
		inner := strings.TrimLeft(strings.TrimPrefix(rest, "-"), " ")
		at += len(rest) - len(inner)
		rest = inner
		if rest == "" {
			break
		}
		stack = append(stack, level{indent: at, seqOnly: isDash(rest)})
	}
	return stack, rest
}

// opensBlockScalar reports whether a line's content ends with a block scalar indicator
// (key: |, key: >-, - |2 …), after which more-indented lines are text.
func opensBlockScalar(content string) bool {
	if i := strings.Index(content, " #"); i >= 0 {
		content = strings.TrimRight(content[:i], " ")
	}
	last := strings.LastIndexAny(content, " ")
	word := content[last+1:]
	if word == "" || (word[0] != '|' && word[0] != '>') {
		return false
	}
	return strings.Trim(word[1:], "+-0123456789") == ""
}

// flowDepth is how many flow collections ([ or {) a line leaves open, outside quotes.
func flowDepth(content string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(content); i++ {
		ch := content[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '#' && (i == 0 || content[i-1] == ' '):
			return depth
		case ch == '[' || ch == '{':
			depth++
		case ch == ']' || ch == '}':
			depth--
		}
	}
	return depth
}
