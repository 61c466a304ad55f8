package policy

import (
	"fmt"
	"testing"
	"time"
)

// benchInputs builds the changes of 10,000 flags × 3 environments: each flag shaped like
// examples/flags/checkout/new_checkout.yaml with an owner and an expiry date, its live
// state one ramp step behind, and one change per environment.
func benchInputs(tb testing.TB) []Input {
	tb.Helper()
	const flags = 10000
	envs := []string{"development", "staging", "production"}
	env := func(enabled bool, exposition int64, segment int64) map[string]any {
		return map[string]any{
			"featureEnabled":      enabled,
			"defaultVariationKey": "off",
			"rolloutRules": []any{
				map[string]any{"name": "beta testers", "type": "TARGETED_DELIVERY", "segmentId": segment,
					"exposition": exposition, "variationKey": "on", "state": "ACTIVE",
					"rollbackConditions": []any{map[string]any{"target": "RULE", "criteria": "CONVERSION_RATE",
						"comparisonOperator": "GREATER_THAN", "matchValue": int64(20), "goalId": int64(400899), "visitors": int64(2)}}},
				map[string]any{"name": "everyone", "type": "PROGRESSIVE_DELIVERY", "exposition": exposition / 2,
					"variationKey": "on", "state": "ACTIVE"},
			},
		}
	}
	doc := func(key string, exposition int64) map[string]any {
		return map[string]any{
			"featureKey": key, "name": "Flag " + key, "owner": "team-web", "expires": "2027-06-30",
			"tags": []any{"checkout"}, "attributionWindow": int64(604800000),
			"variables":  []any{map[string]any{"key": "button_color", "type": "STRING", "value": "blue"}},
			"variations": []any{map[string]any{"key": "off"}, map[string]any{"key": "on"}},
			"environments": map[string]any{
				"development": env(true, 100, 403690),
				"staging":     env(true, 100, 403690),
				"production":  env(true, exposition, 403694),
			},
		}
	}
	var ins []Input
	for i := 0; i < flags; i++ {
		key := fmt.Sprintf("flag_%05d", i)
		after := int64(10 + i%90)
		before := after - int64(i%40) // a step of 0 to 39 points: some refused
		flag, live := doc(key, after), doc(key, before)
		for _, e := range envs {
			ins = append(ins, Input{
				Change: Change{Service: "kameleoon", Action: "update", Scope: "pzllysfw2f", Key: key, Environment: e,
					Fields: []FieldChange{{Path: "environments." + e + ".rolloutRules[name=beta testers].exposition", Before: before, After: after}}},
				Flag: flag, Live: live, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			})
		}
	}
	return ins
}

func benchSet(tb testing.TB) *Set {
	ex := docExamples(tb)
	var specs []Spec
	for _, n := range []string{"production-exposure-step", "staging-before-production", "owner-and-expiry", "not-expired", "experiment-needs-primary-goal"} {
		specs = append(specs, ex[n])
	}
	set, probs := Compile(specs, WithShape(testShape(tb)))
	if len(probs) > 0 {
		tb.Fatal(probs)
	}
	return set
}

// BenchmarkEvaluate30000Changes evaluates the five documented policies for 10,000 flags × 3
// environments; one op is the whole plan (30,000 changes, 150,000 evaluations), reported
// as ms/plan.
func BenchmarkEvaluate30000Changes(b *testing.B) {
	set, ins := benchSet(b), benchInputs(b)
	results := make([]Result, 0, set.Len())
	refused := 0
	b.ResetTimer()
	for b.Loop() {
		refused = 0
		for i := range ins {
			results = set.AppendEvaluate(results[:0], &ins[i])
			for _, r := range results {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
				if !r.Allowed {
					refused++
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/plan")
	b.ReportMetric(float64(refused), "refusals/plan")
}

// TestBenchInputsRefuseSome keeps the benchmark honest: its plan has both allowed and
// refused changes, each for the reason intended.
func TestBenchInputsRefuseSome(t *testing.T) {
	set, ins := benchSet(t), benchInputs(t)
	counts := map[string]int{}
	for i := range ins {
		for _, r := range set.Evaluate(ins[i]) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if !r.Allowed {
				counts[r.Name]++
			}
		}
	}
	// Production steps are i%40 points: 14 of every 40 flags rise by more than 25.
	if counts["production-exposure-step"] != 10000/40*14 {
		t.Errorf("exposure refusals %d", counts["production-exposure-step"])
	}
	if counts["staging-before-production"] != 0 || counts["owner-and-expiry"] != 0 || len(counts) != 1 {
		t.Errorf("refusals %v", counts)
	}
}
