package diag

import (
	"fmt"
	"strings"
)

// Diagnostic is one problem in the flag repository.
type Diagnostic struct {
	File    string `json:"file"`   // path relative to the repository root, slash-separated
	Line    int    `json:"line"`   // 1-based
	Column  int    `json:"column"` // 1-based
	Field   string `json:"field"`  // field path such as environments.production.rolloutRules[0].exposition; "" for the whole file
	Message string `json:"message"`
}

// String renders the diagnostic as file:line:col: field: message, leaving out "field: "
// when the problem is not about one field.
func (d Diagnostic) String() string {
	if d.Field == "" {
		return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", d.File, d.Line, d.Column, d.Field, d.Message)
}

// InvalidError is what a vendor's loader returns when the repository does not validate.
// It carries every problem of every file, sorted by file, line and column.
type InvalidError struct {
	Diagnostics []Diagnostic
	Files       int // number of flag files read (flagsync.yaml not counted)
}

// Error lists the diagnostics, one per line.
func (e *InvalidError) Error() string {
	var b strings.Builder
	for i, d := range e.Diagnostics {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// FileCount returns the number of distinct files the diagnostics are in.
func (e *InvalidError) FileCount() int {
	seen := make(map[string]bool)
	for _, d := range e.Diagnostics {
		seen[d.File] = true
	}
	return len(seen)
}
