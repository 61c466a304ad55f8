package kameleoon

import (
	"fmt"
	"testing"
	"time"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/policy"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/schema"
)

// benchPolicyRun is the Kameleoon side of a run over 10,000 flags shaped like
// examples/flags/checkout/new_checkout.yaml (an owner and an expiry date, three
// environments with two rules each), each environment of the live flag one ramp step
// behind: the plan has one environment patch per flag and environment, 30,000 changes.
func benchPolicyRun(tb testing.TB) *run {
	tb.Helper()
	const flags = 10000
	x := func(v float64) *float64 { return &v }
	env := func(exposition float64, segment int64) kmodel.Environment {
		return kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{
			{Name: "beta testers", Type: kmodel.RuleTargetedDelivery, SegmentID: segment, Exposition: x(exposition), VariationKey: "on", State: kmodel.StateActive,
				RollbackConditions: []kmodel.RollbackCondition{{Target: "RULE", Criteria: "CONVERSION_RATE", ComparisonOperator: "GREATER_THAN", MatchValue: 20, GoalID: 400899, Visitors: 2}}},
			{Name: "everyone", Type: kmodel.RuleTargetedDelivery, Exposition: x(exposition / 2), VariationKey: "on", State: kmodel.StateActive},
		}}
	}
	flag := func(key string, exposition float64) kmodel.Flag {
		return kmodel.Flag{SiteCode: "pzllysfw2f", FeatureKey: key, Name: "Flag " + key, Owner: "team-web", Expires: "2027-06-30",
			Tags: []string{"checkout", kmodel.OwnershipTag}, AttributionWindow: kmodel.DefaultAttributionWindow,
			Variables:  []kmodel.Variable{{Key: "button_color", Type: kmodel.TypeString, Value: "blue"}},
			Variations: []kmodel.Variation{{Key: "off"}, {Key: "on"}},
			Environments: map[string]kmodel.Environment{
				"development": env(exposition, 403690), "staging": env(exposition, 403690), "production": env(exposition, 403694)}}
	}
	r := &run{desired: &kmodel.Desired{Settings: kmodel.Settings{SiteCode: "pzllysfw2f", Environments: []string{"development", "staging", "production"}}}}
	for i := 0; i < flags; i++ {
		key := fmt.Sprintf("flag_%05d", i)
		after := float64(10 + i%90)
		before := after - float64(1+i%39) // a step of 1 to 39 points: some refused
		d, l := flag(key, after), flag(key, before)
		l.ID = int64(i + 1)
		for k, e := range l.Environments {
			for j := range e.RolloutRules {
				e.RolloutRules[j].ID = int64(i*10 + j + 1)
				e.RolloutRules[j].Status = kmodel.StateActive
			}
			l.Environments[k] = e
		}
		d.Source = kmodel.Source{File: "flags/" + key + ".yaml", Line: 1}
		r.desired.Flags = append(r.desired.Flags, d)
		r.live = append(r.live, l)
	}
	return r
}

// benchPolicySet compiles the five policies of docs/policies.md against the Kameleoon
// flag schema.
func benchPolicySet(tb testing.TB) *policy.Set {
	tb.Helper()
	shape, err := policy.ShapeFromJSONSchema(schema.Flag())
	if err != nil {
		tb.Fatal(err)
	}
	src := documentedPoliciesYAML(tb)
	specs, probs := policy.ParseYAML("docs/policies.md", src, mustNode(tb, src))
	if len(probs) > 0 {
		tb.Fatal(probs)
	}
	set, probs := policy.Compile(specs, policy.WithShape(shape))
	if len(probs) > 0 || set.Len() != 5 {
		tb.Fatalf("%d policies, problems %v", set.Len(), probs)
	}
	return set
}

// BenchmarkPolicyStep30000Changes is the pipeline's policy step on a plan of 10,000 flags ×
// 3 environments (30,000 changes) with the five documented policies: the flag and live
// documents built from the model (flagDoc) and every policy evaluated on every change,
// as reconcile's policy step does it. One op is the whole step, reported as ms/plan.
func BenchmarkPolicyStep30000Changes(b *testing.B) {
	r, set := benchPolicyRun(b), benchPolicySet(b)
	p, err := r.Plan(reconcile.PlanOptions{})
	if err != nil || len(p.Changes) != 30000 {
		b.Fatalf("plan: %v, %d changes", err, len(p.Changes))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out plan.Plan
	b.ResetTimer()
	for b.Loop() {
		out = reconcile.EvaluatePolicies(p, set, r, now)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/plan")
	b.ReportMetric(float64(len(out.PolicyRefused())), "refusals/plan")
}

// TestPolicyStepBenchInputs keeps the benchmark honest: 30,000 changes, the exposure
// policy refusing the production steps over 25 points and nothing else.
func TestPolicyStepBenchInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 flags")
	}
	r, set := benchPolicyRun(t), benchPolicySet(t)
	p, err := r.Plan(reconcile.PlanOptions{})
	if err != nil || len(p.Changes) != 30000 {
		t.Fatalf("plan: %v, %d changes", err, len(p.Changes))
	}
	out := reconcile.EvaluatePolicies(p, set, r, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	// Steps are 1 + i%39 points: 14 of every 39 flags rise by more than 25 in production.
	want := 0
	for i := 0; i < 10000; i++ {
		if 1+i%39 > 25 {
			want++
		}
	}
	refused := out.PolicyRefused()
	if len(refused) != want || len(out.Changes)+len(refused) != 30000 || len(out.Warnings) != 0 {
		t.Fatalf("%d refused (want %d), %d kept, %d warnings", len(refused), want, len(out.Changes), len(out.Warnings))
	}
	for _, b := range refused {
		if b.Policy != "production-exposure-step" || b.Environment != "production" {
			t.Fatalf("refused %+v", b)
		}
	}
}
