package policy

import (
	"reflect"
	"sync/atomic"
	"testing"
)

// TestLazyIsBuiltWhenRead: a document's Lazy parts are built when a policy reads them,
// once, and read as the plain data they build; the others are never built.
func TestLazyIsBuiltWhenRead(t *testing.T) {
	var prod, staging atomic.Int64
	flag := map[string]any{
		"owner": "team-web",
		"environments": map[string]any{
			"production": NewLazy(func() any {
				prod.Add(1)
				return map[string]any{"featureEnabled": true, "rolloutRules": []any{map[string]any{"name": "beta", "exposition": int64(30)}}}
			}),
			"staging": NewLazy(func() any { staging.Add(1); return map[string]any{"featureEnabled": false} }),
		},
	}
	set, probs := Compile([]Spec{
		{Name: "a", Message: "m", Expr: `flag.environments.production.rolloutRules.all(r, r.exposition <= 50)`},
		{Name: "b", Message: "m", Expr: `has(flag.owner) && flag.environments.production.rolloutRules.indexBy("name").beta.exposition == 30`},
	})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for range 3 {
		for _, r := range set.Evaluate(Input{Change: Change{Action: "update"}, Flag: flag}) {
			if !r.Allowed || r.Err != nil {
				t.Fatalf("%+v", r)
			}
		}
	}
	if prod.Load() != 1 || staging.Load() != 0 {
		t.Errorf("production built %d times, staging %d; want 1 and 0", prod.Load(), staging.Load())
	}
	want := map[string]any{"owner": "team-web", "environments": map[string]any{
		"production": map[string]any{"featureEnabled": true, "rolloutRules": []any{map[string]any{"name": "beta", "exposition": int64(30)}}},
		"staging":    map[string]any{"featureEnabled": false}}}
	if got := Resolve(flag); !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %#v", got)
	}
}
