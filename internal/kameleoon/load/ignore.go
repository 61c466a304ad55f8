package kload

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// ignoreScope is what the ignore paths of one file may name: a flag file's own
// environments, rules, variables and variations, or (flagsync.yaml, flag nil) any flag's,
// with the environments flagsync.yaml lists when it lists them.
type ignoreScope struct {
	flag         *kmodel.Flag
	environments []string // known environment keys; empty: any
}

// checkIgnores checks the paths of doc's top-level ignore list (decoded as paths) and
// returns a diagnostic for each that does not parse or can never match a field, placed
// on the path's text at the step the problem is at. Entries that already have a problem
// (known) are skipped.
func checkIgnores(doc *diag.Document, paths []string, known []diag.Diagnostic, scope ignoreScope) []diag.Diagnostic {
	var diags []diag.Diagnostic
	for i, s := range paths {
		l := doc.Locate("ignore", i)
		if !l.Found {
			continue
		}
		field := l.Field
		if slices.ContainsFunc(known, func(d diag.Diagnostic) bool {
			return d.Field != "" && (diag.Under(field, d.Field) || diag.Under(d.Field, field))
		}) {
			continue
		}
		offset, msg := ignoreProblem(s, scope)
		if msg == "" {
			continue
		}
		line, col := l.At(false)
		col += columnOffset(l.Node, offset)
		diags = append(diags, diag.Diagnostic{File: doc.File(), Line: line, Column: col, Field: field, Message: msg})
	}
	return diags
}

// columnOffset is how many columns after a scalar's start the byte at offset of its
// value is written, as far as that can be told: a plain or quoted scalar on one line.
func columnOffset(n *yaml.Node, offset int) int {
	if strings.ContainsAny(n.Value, "\n\\'") || offset > len(n.Value) {
		return 0
	}
	switch n.Style {
	case 0:
		return offset
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return 1 + offset
	}
	return 0
}

// ignoreProblem returns what is wrong with ignore path s in scope and the byte offset it
// is at, or "" when s is fine.
func ignoreProblem(s string, scope ignoreScope) (int, string) {
	p, err := kmodel.ParseIgnorePath(s)
	var pe *kmodel.PathError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("ignore path %q: %s", s, pe.Msg)
		if hint := diag.DidYouMean(pe.Near, pe.Candidates); hint != "" {
			msg += hint
		} else if pe.Suggest != "" {
			msg += fmt.Sprintf("; write %q", pe.Suggest)
		}
		return pe.Offset, msg
	}
	if err != nil {
		return 0, fmt.Sprintf("ignore path %q: %v", s, err)
	}
	steps := p.Steps()
	f := scope.flag
	switch steps[0].Name {
	case "environments":
		return environmentProblem(s, steps, scope)
	case "variables":
		if f == nil || steps[0].Sel.Kind != kmodel.SelectKey {
			return 0, ""
		}
		return known(s, steps[0], "variable", keysOf(f.Variables, func(v kmodel.Variable) string { return v.Key }))
	case "variations":
		return variationsProblem(s, steps, f)
	}
	return 0, ""
}

// known checks that the key a step selects is one of keys.
func known(path string, st kmodel.PathStep, noun string, keys []string) (int, string) {
	if slices.Contains(keys, st.Sel.Value) {
		return 0, ""
	}
	return st.Sel.Offset, fmt.Sprintf("ignore path %q: no %s with key %q in this flag file%s", path, noun, st.Sel.Value, orList(diag.DidYouMean(st.Sel.Value, keys), "the file has", keys))
}

// orList is hint when there is one, else the candidates after intro, or "".
func orList(hint, intro string, candidates []string) string {
	switch {
	case hint != "":
		return hint
	case len(candidates) == 0:
		return ""
	}
	return " (" + intro + " " + strings.Join(candidates, ", ") + ")"
}

func keysOf[T any](items []T, key func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = key(it)
	}
	return out
}
