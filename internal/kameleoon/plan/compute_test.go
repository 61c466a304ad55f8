package kplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
)

func ptr[T any](v T) *T { return &v }

// baseFlag is a small flag with one environment and one rule, as written in Git.
func baseFlag() kmodel.Flag {
	return kmodel.Flag{
		SiteCode: "pzllysfw2f", FeatureKey: "checkout", Name: "Checkout", Tags: []string{"web"},
		Variables: []kmodel.Variable{{Key: "color", Type: kmodel.TypeString, Value: "blue"}},
		Variations: []kmodel.Variation{
			{Key: "off", Name: "Off"},
			{Key: "on", Name: "On", Variables: []kmodel.VariationVariable{{Key: "color", Value: "green"}}},
		},
		Environments: map[string]kmodel.Environment{
			"production": {FeatureEnabled: true, DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{
				{Name: "beta", Type: kmodel.RuleTargetedDelivery, SegmentID: 403694, Exposition: ptr(59.0), VariationKey: "on",
					RollbackConditions: []kmodel.RollbackCondition{{Target: "RULE", Criteria: "CONVERSION_RATE", ComparisonOperator: "GREATER_THAN", MatchValue: 20, GoalID: 400899, Visitors: 2}}},
			}},
		},
	}
}

// liveOf is f as Kameleoon would return it after flagsync created it: ids filled in,
// defaults explicit, the ownership tag present.
func liveOf(f kmodel.Flag) kmodel.Flag {
	l := f
	l.ID = 13134
	l.Tags = append([]string{kmodel.OwnershipTag}, f.Tags...)
	l.AttributionWindow = kmodel.DefaultAttributionWindow
	l.BucketingKey = &kmodel.BucketingKey{BucketingKeyType: "VISITOR_CODE"}
	l.Environments = map[string]kmodel.Environment{}
	id := int64(20557)
	for k, e := range f.Environments {
		e.Integrations = &kmodel.Integrations{DeliveryRules: []any{}, ExperimentRules: []any{}}
		rules := make([]kmodel.Rule, len(e.RolloutRules))
		for i, r := range e.RolloutRules {
			r.ID, r.ExperimentID = id, id+334415
			id++
			if r.State == "" {
				r.State = kmodel.StateActive
			}
			rcs := make([]kmodel.RollbackCondition, len(r.RollbackConditions))
			for j, c := range r.RollbackConditions {
				c.ID = int64(648 + j)
				c.Recipients = []string{}
				rcs[j] = c
			}
			r.RollbackConditions = rcs
			rules[i] = r
		}
		e.RolloutRules = rules
		l.Environments[k] = e
	}
	return l
}

func desiredOf(flags ...kmodel.Flag) *kmodel.Desired {
	return &kmodel.Desired{Revision: "abc1234", Flags: flags}
}

func mustCompute(t *testing.T, d *kmodel.Desired, live []kmodel.Flag, opts Options) plan.Plan {
	t.Helper()
	p, err := Compute(d, live, opts)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return p
}

// describe lists a plan's changes one per line, for failure messages.
func describe(p plan.Plan) string {
	var b strings.Builder
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%d %s %s %s %s\n", c.Order, c.Action, c.Request.Method, c.Request.Path, c.Request.Body)
	}
	return b.String()
}

func TestNoChangeAfterNormalisation(t *testing.T) {
	tests := []struct {
		name string
		edit func(live *kmodel.Flag)
	}{
		{"as created", func(*kmodel.Flag) {}},
		{"tags reordered", func(l *kmodel.Flag) { l.Tags = []string{"web", kmodel.OwnershipTag} }},
		{"no ownership tag", func(l *kmodel.Flag) { l.Tags = []string{"web"} }},
		{"attribution window absent", func(l *kmodel.Flag) { l.AttributionWindow = 0 }},
		{"bucketing key absent", func(l *kmodel.Flag) { l.BucketingKey = nil }},
		{"integrations absent", func(l *kmodel.Flag) {
			e := l.Environments["production"]
			e.Integrations = nil
			l.Environments["production"] = e
		}},
		{"rule state absent", func(l *kmodel.Flag) { l.Environments["production"].RolloutRules[0].State = "" }},
		{"recipients nil", func(l *kmodel.Flag) {
			l.Environments["production"].RolloutRules[0].RollbackConditions[0].Recipients = nil
		}},
		{"empty release", func(l *kmodel.Flag) { l.Environments["production"].RolloutRules[0].Release = &kmodel.Release{} }},
		{"MANUAL on a delivery rule", func(l *kmodel.Flag) {
			l.Environments["production"].RolloutRules[0].TrafficAllocationMethod = "MANUAL"
		}},
		{"environment only in Kameleoon", func(l *kmodel.Flag) {
			l.Environments["staging"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "on"}
		}},
		{"variation overrides reordered", func(l *kmodel.Flag) {
			l.Variables = append(l.Variables, kmodel.Variable{Key: "size", Type: kmodel.TypeNumber, Value: "1"})
			l.Variations[1].Variables = []kmodel.VariationVariable{{Key: "size", Value: "2"}, {Key: "color", Value: "green"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := baseFlag()
			if tt.name == "variation overrides reordered" {
				want.Variables = append(want.Variables, kmodel.Variable{Key: "size", Type: kmodel.TypeNumber, Value: "1.0"})
				want.Variations[1].Variables = []kmodel.VariationVariable{{Key: "color", Value: "green"}, {Key: "size", Value: "2"}}
			}
			live := liveOf(baseFlag())
			tt.edit(&live)
			p := mustCompute(t, desiredOf(want), []kmodel.Flag{live}, Options{})
			if len(p.Changes) != 0 {
				t.Errorf("want no change, got:\n%s", describe(p))
			}
		})
	}
}

func TestValueEqual(t *testing.T) {
	tests := []struct {
		typ, a, b string
		want      bool
	}{
		{kmodel.TypeJSON, `{"a": 1, "b": [1, 2]}`, `{"b":[1,2],"a":1}`, true},
		{kmodel.TypeJSON, `{"a": 1}`, `{"a": 2}`, false},
		{kmodel.TypeJSON, `{"a": 1`, `{"a": 1}`, false},
		{kmodel.TypeNumber, "59", "59.0", true},
		{kmodel.TypeNumber, "59", "59.5", false},
		{kmodel.TypeBoolean, "true", "TRUE", true},
		{kmodel.TypeBoolean, "true", "false", false},
		{kmodel.TypeString, "59", "59.0", false},
		{kmodel.TypeString, "a b", "a  b", false},
		{kmodel.TypeCSS, ".a{}", ".a{}", true},
	}
	for _, tt := range tests {
		if got := valueEqual(tt.typ, tt.a, tt.b); got != tt.want {
			t.Errorf("valueEqual(%s, %q, %q) = %t, want %t", tt.typ, tt.a, tt.b, got, tt.want)
		}
	}
}

// TestNumbersByValueThroughDecode reads 59.0 and 20.0 the way the API sends them and
// compares with 59 and 20 written in Git.
func TestNumbersByValueThroughDecode(t *testing.T) {
	live, err := kclient.DecodeFlag([]byte(`{"id": 1, "siteCode": "pzllysfw2f", "featureKey": "checkout", "name": "Checkout",
		"tags": ["web", "managed-by-flagsync"],
		"variables": [{"key": "color", "type": "STRING", "value": "blue"}],
		"variations": [{"key": "off", "name": "Off", "variables": []},
			{"key": "on", "name": "On", "variables": [{"key": "color", "type": "STRING", "value": "green"}]}],
		"attributionWindow": 604800000.0,
		"environmentConfigurations": [{"environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "off",
			"rolloutRules": [{"id": 20557, "name": "beta", "type": "TARGETED_DELIVERY", "status": "ACTIVE", "segmentId": 403694.0,
				"exposition": 59.0, "variationKey": "on", "orderIndex": 0,
				"rollbackConditions": [{"id": 648, "target": "RULE", "criteria": "CONVERSION_RATE", "comparisonOperator": "GREATER_THAN",
					"matchValue": 20.0, "goalId": 400899, "visitors": 2.0, "recipients": []}]}],
			"integrations": {"deliveryRules": [], "experimentRules": []}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompute(t, desiredOf(baseFlag()), []kmodel.Flag{live}, Options{})
	if len(p.Changes) != 0 {
		t.Fatalf("want no change, got:\n%s", describe(p))
	}
	// And 59.5 is a change.
	live.Environments["production"].RolloutRules[0].Exposition = ptr(59.5)
	p = mustCompute(t, desiredOf(baseFlag()), []kmodel.Flag{live}, Options{})
	if len(p.Changes) != 1 || p.Changes[0].Fields[0].Path != "environments.production.rolloutRules[name=beta].exposition" {
		t.Fatalf("want one exposition change, got:\n%s", describe(p))
	}
}

// body decodes a change's request body.
func body(t *testing.T, c plan.Change) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Request.Body, &m); err != nil {
		t.Fatalf("change %d body %s: %v", c.Order, c.Request.Body, err)
	}
	return m
}

func TestRuleIDsCarried(t *testing.T) {
	want := baseFlag()
	rules := want.Environments["production"].RolloutRules
	rules[0].Exposition = ptr(80.0)
	rules[0].RollbackConditions[0].MatchValue = 25
	rules = append([]kmodel.Rule{{Name: "staff", Type: kmodel.RuleTargetedDelivery, SegmentID: 1, VariationKey: "on"}}, rules...)
	env := want.Environments["production"]
	env.RolloutRules = rules
	want.Environments = map[string]kmodel.Environment{"production": env}

	p := mustCompute(t, desiredOf(want), []kmodel.Flag{liveOf(baseFlag())}, Options{})
	if len(p.Changes) != 1 {
		t.Fatalf("want one environment patch, got:\n%s", describe(p))
	}
	got := body(t, p.Changes[0])["rolloutRules"].([]any)
	if len(got) != 2 {
		t.Fatalf("want 2 rules, got %v", got)
	}
	staff, beta := got[0].(map[string]any), got[1].(map[string]any)
	if _, ok := staff["id"]; ok {
		t.Errorf("new rule carries an id: %v", staff)
	}
	if beta["id"] != 20557.0 {
		t.Errorf("persisting rule id = %v, want 20557", beta["id"])
	}
	rc := beta["rollbackConditions"].([]any)[0].(map[string]any)
	if rc["id"] != 648.0 || rc["matchValue"] != 25.0 {
		t.Errorf("rollback condition = %v, want id 648 and matchValue 25", rc)
	}
}

// TestFlagLevelOrder checks DESIGN's order within a flag: additions before the
// environments use them, removals after the environments stop using them.
func TestFlagLevelOrder(t *testing.T) {
	want := baseFlag()
	want.Variations = []kmodel.Variation{{Key: "off", Name: "Off"}, {Key: "v2", Name: "V2"}}
	env := want.Environments["production"]
	env.DefaultVariationKey = "v2"
	env.RolloutRules = nil
	want.Environments = map[string]kmodel.Environment{"production": env, "development": {DefaultVariationKey: "v2"}}
	live := liveOf(baseFlag())
	live.Environments["development"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "on"}

	p := mustCompute(t, desiredOf(want), []kmodel.Flag{live}, Options{})
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Request.Method+" "+c.Request.Path)
	}
	wantOrder := []string{
		"PATCH /feature-flags/pzllysfw2f/checkout",
		"PATCH /feature-flags/pzllysfw2f/checkout/development",
		"PATCH /feature-flags/pzllysfw2f/checkout/production",
		"PATCH /feature-flags/pzllysfw2f/checkout",
	}
	if strings.Join(got, "\n") != strings.Join(wantOrder, "\n") {
		t.Fatalf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantOrder, "\n"))
	}
	keys := func(c plan.Change) []string {
		var out []string
		for _, v := range body(t, c)["variations"].([]any) {
			out = append(out, v.(map[string]any)["key"].(string))
		}
		return out
	}
	if k := keys(p.Changes[0]); strings.Join(k, ",") != "off,v2,on" {
		t.Errorf("first flag patch variations = %v, want live ∪ Git (off,v2,on)", k)
	}
	if k := keys(p.Changes[3]); strings.Join(k, ",") != "off,v2" {
		t.Errorf("last flag patch variations = %v, want Git's (off,v2)", k)
	}
	for i, c := range p.Changes {
		if c.Order != i+1 {
			t.Errorf("change %d has Order %d", i, c.Order)
		}
	}
}

func TestPruneGuard(t *testing.T) {
	owned := func(key string) kmodel.Flag {
		return kmodel.Flag{ID: int64(len(key)), SiteCode: "pzllysfw2f", FeatureKey: key, Name: key, Tags: []string{kmodel.OwnershipTag}}
	}
	var live []kmodel.Flag
	var kept []kmodel.Flag
	for i := range 40 {
		f := owned(fmt.Sprintf("kept_%02d", i))
		live = append(live, f)
		kept = append(kept, kmodel.Flag{SiteCode: f.SiteCode, FeatureKey: f.FeatureKey, Name: f.Name, Variations: []kmodel.Variation{{Key: "off"}}})
	}
	// Git also drops four of them: 4 of 44 managed flags is under 10%; six is not.
	gone := func(n int) []kmodel.Flag {
		out := append([]kmodel.Flag(nil), live...)
		for i := range n {
			out = append(out, owned(fmt.Sprintf("gone_%d", i)))
		}
		return out
	}
	// kept flags need their live variations to match; give them the same.
	for i := range live {
		live[i].Variations = []kmodel.Variation{{Key: "off"}}
	}
	unowned := kmodel.Flag{SiteCode: "pzllysfw2f", FeatureKey: "theirs", Name: "theirs"}
	archived := owned("retired")
	archived.Archived = true

	tests := []struct {
		name        string
		live        []kmodel.Flag
		opts        Options
		wantArchive int
		wantBlocked int
	}{
		{"prune off", gone(4), Options{}, 0, 0},
		{"prune under the limits", gone(4), Options{Prune: true}, 4, 0},
		{"more than 10% of the site", gone(6), Options{Prune: true, MaxArchive: 10}, 0, 6},
		{"more than MaxArchive", gone(6), Options{Prune: true}, 0, 6},
		{"override", gone(6), Options{Prune: true, AllowMassArchive: true}, 6, 0},
		{"unowned and archived flags are never archived", append(gone(0), unowned, archived), Options{Prune: true}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compute(desiredOf(kept...), tt.live, tt.opts)
			var mae *plan.MassArchiveError
			if tt.wantBlocked > 0 {
				if !errors.As(err, &mae) || len(mae.Flags) != tt.wantBlocked {
					t.Fatalf("err = %v, want a MassArchiveError for %d flags", err, tt.wantBlocked)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			s := p.Summary()
			if s.Archive != tt.wantArchive || s.Blocked != tt.wantBlocked || s.Create+s.Update != 0 {
				t.Fatalf("summary %+v, want %d archives and %d blocked:\n%s", s, tt.wantArchive, tt.wantBlocked, describe(p))
			}
			for _, c := range p.Changes {
				if string(c.Request.Body) != `{"isArchived":true}` || !strings.HasPrefix(c.Key, "gone_") {
					t.Errorf("unexpected change %s %s %s", c.Request.Method, c.Request.Path, c.Request.Body)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	var want, live []kmodel.Flag
	for i := range 60 {
		d := baseFlag()
		d.FeatureKey = fmt.Sprintf("flag_%02d", i)
		d.SiteCode = []string{"pzllysfw2f", "abcdefghij"}[i%2]
		l := liveOf(d)
		switch i % 6 {
		case 0: // unchanged
		case 1:
			d.Name = "renamed"
			d.Variations = append(d.Variations, kmodel.Variation{Key: "x"})
		case 2:
			d.Environments["staging"] = kmodel.Environment{DefaultVariationKey: "off"}
			d.Environments["development"] = kmodel.Environment{DefaultVariationKey: "on"}
		case 3:
			l.FeatureKey += "_gone" // Git's flag is new, live's is unmanaged
		case 4:
			d.Archived = true
		case 5:
			d.Environments["production"].RolloutRules[0].Exposition = ptr(10.0)
		}
		want = append(want, d)
		live = append(live, l)
	}
	render := func(live []kmodel.Flag) []byte {
		p := mustCompute(t, desiredOf(want...), live, Options{Prune: true, AllowMassArchive: true})
		var buf bytes.Buffer
		if err := plan.RenderJSON(&buf, p); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := render(live)
	rng := rand.New(rand.NewSource(1))
	for range 5 {
		shuffled := append([]kmodel.Flag(nil), live...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := render(shuffled); !bytes.Equal(first, again) {
			t.Fatalf("plans differ with shuffled live flags:\n%s", lineDiff(string(first), string(again)))
		}
	}
}
