package kload

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/diag"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// environmentProblem checks an ignore path below environments: the environment is one
// the flag file (or flagsync.yaml) lists, and a rule it selects by name exists there.
func environmentProblem(s string, steps []kmodel.PathStep, scope ignoreScope) (int, string) {
	fail := func(at int, format string, args ...any) (int, string) {
		return at, fmt.Sprintf("ignore path %q: ", s) + fmt.Sprintf(format, args...)
	}
	f, env := scope.flag, steps[1]
	keys := scope.environments
	if f != nil {
		keys = f.EnvironmentKeys()
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
}

// variationsProblem checks an ignore path below variations: the variation and the
// override's variable it selects by key exist in the flag file.
func variationsProblem(s string, steps []kmodel.PathStep, f *kmodel.Flag) (int, string) {
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
	return 0, ""
}
