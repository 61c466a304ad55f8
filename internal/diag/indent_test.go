package diag

import (
	"strings"
	"testing"
)

// TestIndentationErrorAtItsOwnLine checks that a block whose indentation is broken is
// reported at the misindented line, not at the line of the mapping yaml.v3 names.
func TestIndentationErrorAtItsOwnLine(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line, col  int
	}{
		{"dedent to no open column", "name: a\nenvironments:\n  Staging:\n    treatments:\n      - name: \"on\"\n     defaultTreatment: \"off\"\n", 6, 6},
		{"dedent deep in a file", "name: a\ndescription: x\nenvironments:\n  Staging:\n    treatments:\n    - name: \"on\"\n      description: first\n    - name: \"off\"\n    defaultTreatment: \"off\"\n   killed: true\n", 10, 4},
		{"key at a nested sequence's column", "a:\n  - x\n  y: 1\n", 3, 3},
		{"comments and block scalars are skipped", "a:\n  # note\n  b: |\n     text\n   more text\n  c: 1\n d: 2\n", 7, 2},
		{"flow collections spanning lines are skipped", "a:\n  b: [1,\n     2]\n  c: 1\n d: 2\n", 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("f.yaml", []byte(tc.yaml), Kind{What: "flag fields"})
			if len(diags) != 1 {
				t.Fatalf("diagnostics: %v", diags)
			}
			d := diags[0]
			if d.Line != tc.line || d.Column != tc.col || !strings.Contains(d.Message, "bad indentation") {
				t.Errorf("got %s, want line %d column %d", d, tc.line, tc.col)
			}
		})
	}
}

// TestOtherSyntaxErrorsKeepTheirPosition checks that the indentation search leaves other
// errors (and tabs) where yaml.v3 puts them.
func TestOtherSyntaxErrorsKeepTheirPosition(t *testing.T) {
	_, diags := Parse("f.yaml", []byte("a:\n  b: 1\n    c: 2\n"), Kind{What: "flag fields"})
	if len(diags) != 1 || diags[0].Line != 3 || strings.Contains(diags[0].Message, "bad indentation") {
		t.Errorf("over-indented value: %v", diags)
	}
	_, diags = Parse("f.yaml", []byte("a:\n\tb: 1\n"), Kind{What: "flag fields"})
	if len(diags) != 1 || diags[0].Line != 2 || !strings.Contains(diags[0].Message, "tab character") {
		t.Errorf("tab: %v", diags)
	}
	if _, _, ok := misindentedLine([]byte("a:\n  b: 1\n"), 1); ok {
		t.Error("a well-indented file has a misindented line")
	}
}
