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
	fail := func(at int, format string, args ...any) (int, string) {
		return at, fmt.Sprintf("ignore path %q: ", s) + fmt.Sprintf(format, args...)
	}
	f := scope.flag
	switch steps[0].Name {
	case "environments":
		env := steps[1]
		var keys []string
		switch {
		case f != nil:
			keys = f.EnvironmentKeys()
		default:
			keys = scope.environments
		}
		switch {
		case f != nil && len(keys) == 0:
			return fail(steps[0].Offset, "this flag file lists no environments; an environment the file does not list is left alone anyway")
		case f != nil && env.Name != "*" && !slices.Contains(keys, env.Name):
			return fail(env.Offset, "environment %q is not in this flag file%s; an environment the file does not list is left alone anyway",
				env.Name, orList(diag.DidYouMean(env.Name, keys), "the file lists", keys))
		case f == nil && env.Name != "*" && len(keys) > 0 && !slices.Contains(keys, env.Name):
			return fail(env.Offset, "unknown environment %q%s (flagsync.yaml lists %s)", env.Name, diag.DidYouMean(env.Name, keys), strings.Join(keys, ", "))
		}
		if f == nil || len(steps) < 3 || steps[2].Name != "rolloutRules" || steps[2].Sel.Kind != kmodel.SelectKey {
			return 0, ""
		}
		name := steps[2].Sel.Value
		var names []string
		for _, k := range keys {
			if env.Name != "*" && k != env.Name {
				continue
			}
			for _, r := range f.Environments[k].RolloutRules {
				if r.Name == name {
					return 0, ""
				}
				if !slices.Contains(names, r.Name) {
					names = append(names, r.Name)
				}
			}
		}
		where := "in environment " + env.Name
		if env.Name == "*" {
			where = "in any environment of this flag file"
		}
		return fail(steps[2].Sel.Offset, "no rule named %q %s%s", name, where, orList(diag.DidYouMean(name, names), "the rules are", names))
	case "variables":
		if f == nil || steps[0].Sel.Kind != kmodel.SelectKey {
			return 0, ""
		}
		return known(s, steps[0], "variable", keysOf(f.Variables, func(v kmodel.Variable) string { return v.Key }))
	case "variations":
		if f == nil {
			return 0, ""
		}
		if steps[0].Sel.Kind == kmodel.SelectKey {
			if at, msg := known(s, steps[0], "variation", keysOf(f.Variations, func(v kmodel.Variation) string { return v.Key })); msg != "" {
				return at, msg
			}
		}
		if len(steps) > 1 && steps[1].Name == "variables" && steps[1].Sel.Kind == kmodel.SelectKey {
			return known(s, steps[1], "variable", keysOf(f.Variables, func(v kmodel.Variable) string { return v.Key }))
		}
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
