package splitload

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/diag"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// dependencyProblems checks the IN_SPLIT matchers of the valid flags, per workspace and
// environment, with what Git alone can decide: a flag does not depend on itself, a flag
// Git configures in that environment has the treatment named, and the flags Git
// configures there do not depend on each other in a cycle (flagsync applies a flag's
// definition after those of the flags it names, which a cycle makes impossible). A flag
// Git does not configure in that environment may exist in Split: that is checked against
// the live flags when the plan is computed.
func dependencyProblems(flags []splitmodel.Flag, docs map[splitmodel.Ref]*diag.Document) []diag.Diagnostic {
	var out []diag.Diagnostic
	byRef := make(map[splitmodel.Ref]*splitmodel.Flag, len(flags))
	for i := range flags {
		byRef[flags[i].Ref()] = &flags[i]
	}
	type key struct{ ws, env string }
	graphs := map[key]map[string][]string{}
	for i := range flags {
		f := &flags[i]
		doc := docs[f.Ref()]
		if doc == nil {
			continue
		}
		for _, env := range f.EnvironmentNames() {
			d := f.Environments[env]
			k := key{f.Workspace, env}
			if graphs[k] == nil {
				graphs[k] = map[string][]string{}
			}
			graphs[k][f.Name] = nil
			for ri, r := range d.Rules {
				for mi, m := range r.Condition.Matchers {
					if m.Depends == nil || m.Depends.SplitName == "" {
						continue
					}
					at := func(field string) (string, int, int) {
						line, col, path := doc.At(false, "environments", env, "rules", ri, "condition", "matchers", mi, "depends", field)
						return path, line, col
					}
					add := func(field, msg string) {
						path, line, col := at(field)
						out = append(out, diag.Diagnostic{File: doc.File(), Line: line, Column: col, Field: path, Message: msg})
					}
					dep := m.Depends
					if dep.SplitName == f.Name {
						add("splitName", fmt.Sprintf("flag %s cannot depend on itself", f.Name))
						continue
					}
					other := byRef[splitmodel.Ref{Workspace: f.Workspace, Name: dep.SplitName}]
					if other == nil {
						continue // perhaps a flag Git does not manage: checked live at plan time
					}
					od, configured := other.Environments[env]
					if !configured {
						continue // Git leaves that environment of the flag to Split: checked live
					}
					if names := od.TreatmentNames(); !slices.Contains(names, dep.Treatment) {
						hint := diag.DidYouMean(dep.Treatment, names)
						if hint == "" {
							hint = "; its treatments are " + strings.Join(names, ", ")
						}
						add("treatment", fmt.Sprintf("flag %s has no treatment %q in %s%s", dep.SplitName, dep.Treatment, env, hint))
					}
					if !slices.Contains(graphs[k][f.Name], dep.SplitName) {
						graphs[k][f.Name] = append(graphs[k][f.Name], dep.SplitName)
					}
				}
			}
		}
	}
	keys := make([]key, 0, len(graphs))
	for k := range graphs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.ws, b.ws); c != 0 {
			return c
		}
		return strings.Compare(a.env, b.env)
	})
	for _, k := range keys {
		cycle := splitmodel.FindCycle(graphs[k])
		if cycle == nil {
			continue
		}
		f := byRef[splitmodel.Ref{Workspace: k.ws, Name: cycle[0]}]
		doc := docs[f.Ref()]
		line, col, path := dependencyPosition(doc, f, k.env, cycle[1])
		out = append(out, diag.Diagnostic{File: doc.File(), Line: line, Column: col, Field: path,
			Message: fmt.Sprintf("dependency cycle in environment %s: %s; a flag's definition is applied after those of the flags it names, which a cycle makes impossible",
				k.env, strings.Join(cycle, " → "))})
	}
	return out
}

// dependencyPosition is where f's definition in env names flag name first.
func dependencyPosition(doc *diag.Document, f *splitmodel.Flag, env, name string) (int, int, string) {
	d := f.Environments[env]
	for ri, r := range d.Rules {
		for mi, m := range r.Condition.Matchers {
			if m.Depends != nil && m.Depends.SplitName == name {
				return doc.At(false, "environments", env, "rules", ri, "condition", "matchers", mi, "depends", "splitName")
			}
		}
	}
	return doc.At(true, "environments", env)
}
