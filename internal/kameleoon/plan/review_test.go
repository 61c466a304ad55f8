package kplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
)

// These tests come from an independent review of the plan semantics: edge cases of
// rule identity, live data the API could return, the prune guard's limits and
// changes the sandbox would refuse.

// send sends one request to the sandbox and returns its status and body, without
// failing the test on an error status.
func (c *sandboxClient) send(req api.Request) (int, []byte) {
	c.t.Helper()
	r, err := http.NewRequest(req.Method, c.base+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		c.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+c.token)
	r.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(r)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

func newReviewSandbox(t *testing.T) *sandboxClient {
	t.Helper()
	_, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	c := &sandboxClient{t: t, base: ts.URL, http: ts.Client()}
	c.token = c.fetchToken()
	return c
}

// TestDuplicateLiveRuleNames: should live data ever hold two rules of one name, the
// first keeps its id and the second goes; the patch sends the rule once.
func TestDuplicateLiveRuleNames(t *testing.T) {
	d := baseFlag()
	l := liveOf(d)
	env := l.Environments["production"]
	dup := env.RolloutRules[0]
	dup.ID = 99999
	env.RolloutRules = append(env.RolloutRules, dup)
	l.Environments["production"] = env

	p := mustCompute(t, desiredOf(d), []kmodel.Flag{l}, Options{})
	if len(p.Changes) != 1 || p.Changes[0].Environment != "production" {
		t.Fatalf("want one production patch, got:\n%s", describe(p))
	}
	var b struct {
		RolloutRules []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"rolloutRules"`
	}
	if err := json.Unmarshal(p.Changes[0].Request.Body, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.RolloutRules) != 1 || b.RolloutRules[0].ID != 20557 {
		t.Fatalf("rolloutRules sent = %+v, want the one rule with the first live id 20557", b.RolloutRules)
	}
	if !strings.Contains(p.Changes[0].Reason, "removed (id 99999)") {
		t.Errorf("reason %q does not say the duplicate goes", p.Changes[0].Reason)
	}
}

// TestRuleTypeChangeKeepsID: a rule is identified by its name whatever its type, so a
// type change is a change of the rule that keeps its id, and it converges.
func TestRuleTypeChangeKeepsIDThroughTheSandbox(t *testing.T) {
	c := newReviewSandbox(t)
	d := baseFlag()
	c.apply(mustCompute(t, desiredOf(d), nil, Options{}))
	live := c.get(d.SiteCode, d.FeatureKey)
	before, _ := ruleID(live, "production", "beta")

	e := baseFlag()
	prod := e.Environments["production"]
	r := prod.RolloutRules[0]
	r.Type = kmodel.RuleExperimentation
	r.VariationKey = ""
	r.ControlVariationKey = "off"
	r.TrafficAllocations = []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 50}, {VariationKey: "off", Exposition: 50}}
	prod.RolloutRules = []kmodel.Rule{r}
	e.Environments["production"] = prod
	p := mustCompute(t, desiredOf(e), []kmodel.Flag{live}, Options{})
	c.apply(p)
	after := c.get(d.SiteCode, d.FeatureKey)
	now, _ := ruleID(after, "production", "beta")
	if before == 0 || now != before {
		t.Errorf("rule id %d → %d, want it kept", before, now)
	}
	if p2 := mustCompute(t, desiredOf(e), []kmodel.Flag{after}, Options{}); len(p2.Changes) > 0 {
		t.Errorf("not converged:\n%s", describePlan(p2))
	}
}

// TestReadShapeNullsAreNotDrift: the read shape may send null or empty for every
// optional field; none of it is drift against a flag file that leaves them out.
func TestReadShapeNullsAreNotDrift(t *testing.T) {
	d := kmodel.Flag{
		SiteCode: "pzllysfw2f", FeatureKey: "checkout", Name: "Checkout",
		Variables: []kmodel.Variable{
			{Key: "mode", Type: kmodel.TypeEnum, Value: "a", AllowedValues: []string{"a", "b", "c"}},
			{Key: "conf", Type: kmodel.TypeJSON, Value: `{"a": 1, "b": [1, 2]}`},
			{Key: "n", Type: kmodel.TypeNumber, Value: "59"},
		},
		Variations:       []kmodel.Variation{{Key: "off"}, {Key: "on", Variables: []kmodel.VariationVariable{{Key: "n", Value: "60"}, {Key: "conf", Value: `{}`}}}},
		SecondaryGoalIDs: []int64{3, 1, 2},
		Environments: map[string]kmodel.Environment{
			"production": {FeatureEnabled: true, DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{
				{Name: "exp", Type: kmodel.RuleExperimentation, ControlVariationKey: "off", Exposition: ptr(59.0),
					TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 50}, {VariationKey: "off", Exposition: 50}}},
				{Name: "td", Type: kmodel.RuleTargetedDelivery, VariationKey: "on"},
			}},
		},
	}
	live := `[{"id": 1, "siteCode": "pzllysfw2f", "featureKey": "checkout", "name": "Checkout",
	  "description": null, "tags": null, "attributionWindow": 604800000.0, "bucketingKey": null,
	  "primaryGoalId": null, "secondaryGoalIds": [2, 3, 1], "archived": false,
	  "variables": [
	    {"key": "mode", "type": "ENUM", "value": "a", "allowedValues": ["c", "a", "b"]},
	    {"key": "conf", "type": "JSON", "value": "{\"b\":[1,2],\"a\":1.0}"},
	    {"key": "n", "type": "NUMBER", "value": "59.0"}],
	  "variations": [{"key": "off", "name": null, "variables": null},
	    {"key": "on", "name": "", "variables": [{"key": "conf", "value": "{ }"}, {"key": "n", "value": "60.00"}]}],
	  "environmentConfigurations": [
	    {"environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "off",
	     "integrations": null,
	     "rolloutRules": [
	      {"id": 7, "orderIndex": 1, "name": "td", "type": "TARGETED_DELIVERY", "status": "ACTIVE", "variationKey": "on",
	       "segmentId": null, "exposition": null, "trafficAllocations": [], "rollbackConditions": null, "release": null},
	      {"id": 6, "orderIndex": 0, "name": "exp", "type": "EXPERIMENTATION", "status": "ACTIVE", "controlVariationKey": "off",
	       "exposition": 59.0, "experimentId": 5, "trafficAllocationMethod": "MANUAL",
	       "trafficAllocations": [{"variationKey": "off", "variationId": 2, "exposition": 50.0}, {"variationKey": "on", "variationId": 3, "exposition": 50}],
	       "rollbackConditions": [], "release": {"releaseFrom": null, "releaseTo": null, "timeZone": null}}]}]}]`
	flags, err := kclient.DecodeFlags([]byte(live))
	if err != nil {
		t.Fatal(err)
	}
	if p := mustCompute(t, desiredOf(d), flags, Options{}); len(p.Changes) > 0 {
		t.Errorf("false drift:\n%s", describePlan(p))
	}
}

// TestPruneGuardAtTheLimits: the guard allows exactly its limits and refuses one more.
func TestPruneGuardAtTheLimits(t *testing.T) {
	owned := func(key string) kmodel.Flag {
		return kmodel.Flag{SiteCode: "pzllysfw2f", FeatureKey: key, Name: key, Tags: []string{kmodel.OwnershipTag}}
	}
	run := func(keep, gone int, opts Options) (int, error) {
		var want, live []kmodel.Flag
		for i := range keep {
			f := owned(fmt.Sprintf("kept_%03d", i))
			live = append(live, f)
			want = append(want, f)
		}
		for i := range gone {
			live = append(live, owned(fmt.Sprintf("gone_%03d", i)))
		}
		opts.Prune = true
		p, err := Compute(desiredOf(want...), live, opts)
		return p.Summary().Archive, err
	}
	tests := []struct {
		name        string
		keep, gone  int
		opts        Options
		wantArchive int // 0 with wantRefused
		wantRefused bool
	}{
		{"5 of 50: exactly 10% and exactly the count limit", 45, 5, Options{}, 5, false},
		{"6 of 60: 10% but over the count limit", 54, 6, Options{}, 0, true},
		{"6 of 60 with a count limit of 6", 54, 6, Options{MaxArchive: 6}, 6, false},
		{"1 of 1: a site may always lose one flag", 0, 1, Options{}, 1, false},
		{"1 of 3", 2, 1, Options{}, 1, false},
		{"2 of 19: 10% is 1.9, so 1", 17, 2, Options{}, 0, true},
		{"2 of 20", 18, 2, Options{}, 2, false},
		{"no count limit, still 10%", 90, 10, Options{MaxArchive: -1}, 10, false},
		{"no count limit, over 10%", 89, 11, Options{MaxArchive: -1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := run(tt.keep, tt.gone, tt.opts)
			var mae *plan.MassArchiveError
			if refused := errors.As(err, &mae); refused != tt.wantRefused || n != tt.wantArchive {
				t.Fatalf("archives %d, err %v; want %d archives, refused %t", n, err, tt.wantArchive, tt.wantRefused)
			}
		})
	}
}

// TestVariationStillUsedByUnmanagedEnvironment: Git removes a variation that an
// environment flagsync does not manage (not listed in the file) still serves. The
// removal patch would be refused by Kameleoon (the sandbox answers 400), failing every
// sync; the plan must not send it. It keeps the variation, refuses its removal visibly
// (Plan.Blocked), and still removes the rest (here the variable).
func TestVariationStillUsedByUnmanagedEnvironment(t *testing.T) {
	c := newReviewSandbox(t)
	d := baseFlag()
	d.Environments["development"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "on"}
	c.apply(mustCompute(t, desiredOf(d), nil, Options{}))
	live := c.get(d.SiteCode, d.FeatureKey)

	// Git stops managing development (still serving "on") and drops "on".
	e := baseFlag()
	e.Variations = e.Variations[:1]
	e.Variables = nil
	e.Environments["production"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off"}
	p := mustCompute(t, desiredOf(e), []kmodel.Flag{live}, Options{})
	if len(p.Blocked) != 1 {
		t.Fatalf("blocked = %+v, want one refused removal\nplan:\n%s", p.Blocked, describePlan(p))
	}
	b := p.Blocked[0]
	if b.Kind != plan.BlockedVariationInUse || b.Flag() != AddressOf(d.Ref(), "") || b.Variation != "on" || !slices.Equal(b.Environments, []string{"development"}) {
		t.Errorf("blocked = %+v, want variation \"on\" of %s, used by development", b, d.Ref())
	}
	if want := "list environment development in the file (and stop using the variation there), or change it in Kameleoon first"; !strings.Contains(b.Reason, want) {
		t.Errorf("reason %q does not say what to do (%q)", b.Reason, want)
	}
	if got, want := p.SummaryLine(), "; 1 change refused (Kameleoon will still differ from Git)."; !strings.HasSuffix(got, want) {
		t.Errorf("summary %q does not end with %q", got, want)
	}
	for _, ch := range p.Changes {
		if status, body := c.send(ch.Request); status >= 300 {
			t.Errorf("change %d (%s %s) refused by the sandbox: %d %s\nplan:\n%s", ch.Order, ch.Request.Method, ch.Request.Path, status, body, describePlan(p))
		}
	}
	after := c.get(d.SiteCode, d.FeatureKey)
	if got := after.Environments["development"].DefaultVariationKey; got != "on" {
		t.Errorf("unmanaged development now serves %q, want it left serving \"on\"", got)
	}
	keys := keysOf(after.Variations, func(v *kmodel.Variation) string { return v.Key })
	if !slices.Equal(keys, []string{"off", "on"}) {
		t.Errorf("live variations %v, want off and the kept on", keys)
	}
	if len(after.Variables) != 0 {
		t.Errorf("live variables %+v, want the removal of color applied", after.Variables)
	}

	// The next plan changes nothing and still refuses the removal: Git and Kameleoon
	// differ until development is managed or changed in Kameleoon.
	p2 := mustCompute(t, desiredOf(e), []kmodel.Flag{after}, Options{})
	if len(p2.Changes) != 0 || len(p2.Blocked) != 1 || p2.Blocked[0].Variation != "on" {
		t.Errorf("second plan: %d changes, blocked %+v; want no change and the same refusal\n%s", len(p2.Changes), p2.Blocked, describePlan(p2))
	}
	if got := p2.SummaryLine(); got != "Plan: 0 to create, 0 to update, 0 to archive; 1 change refused (Kameleoon will still differ from Git)." {
		t.Errorf("second plan's summary %q", got)
	}

	// Listing development in Git, serving "off", lets the variation go.
	e.Environments["development"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off"}
	p3 := mustCompute(t, desiredOf(e), []kmodel.Flag{after}, Options{})
	if len(p3.Blocked) != 0 {
		t.Errorf("with development managed, blocked = %+v", p3.Blocked)
	}
	c.apply(p3)
	final := c.get(d.SiteCode, d.FeatureKey)
	if keys := keysOf(final.Variations, func(v *kmodel.Variation) string { return v.Key }); !slices.Equal(keys, []string{"off"}) {
		t.Errorf("live variations %v after managing development, want only off", keys)
	}
	if p4 := mustCompute(t, desiredOf(e), []kmodel.Flag{final}, Options{}); len(p4.Changes)+len(p4.Blocked) > 0 {
		t.Errorf("not converged:\n%s", describePlan(p4))
	}
}

// TestVariationUsesInUnmanagedEnvironments: every way an environment uses a variation
// keeps it; an environment Git manages, or an unmanaged one that does not use it, does
// not.
func TestVariationUsesInUnmanagedEnvironments(t *testing.T) {
	rule := func(r kmodel.Rule) kmodel.Environment {
		r.Name = "r1"
		return kmodel.Environment{DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{r}}
	}
	tests := []struct {
		name      string
		unmanaged map[string]kmodel.Environment
		wantEnvs  []string // nil: "on" is removed
		wantUse   string
	}{
		{"default variation", map[string]kmodel.Environment{"development": {DefaultVariationKey: "on"}}, []string{"development"}, "development (defaultVariationKey)"},
		{"rule variationKey", map[string]kmodel.Environment{"staging": rule(kmodel.Rule{Type: kmodel.RuleTargetedDelivery, VariationKey: "on"})}, []string{"staging"}, `staging (rule "r1")`},
		{"rule controlVariationKey", map[string]kmodel.Environment{"staging": rule(kmodel.Rule{Type: kmodel.RuleExperimentation, ControlVariationKey: "on",
			TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "off", Exposition: 100}}})}, []string{"staging"}, `staging (rule "r1")`},
		{"traffic allocation", map[string]kmodel.Environment{"staging": rule(kmodel.Rule{Type: kmodel.RuleExperimentation, ControlVariationKey: "off",
			TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 50}}})}, []string{"staging"}, `staging (rule "r1")`},
		{"two environments", map[string]kmodel.Environment{"staging": {DefaultVariationKey: "on"}, "development": {DefaultVariationKey: "on"}},
			[]string{"development", "staging"}, "environments development (defaultVariationKey) and staging (defaultVariationKey)"},
		{"unmanaged environment not using it", map[string]kmodel.Environment{"development": {DefaultVariationKey: "off"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := liveOf(baseFlag())
			for k, env := range tt.unmanaged {
				l.Environments[k] = env
			}
			e := baseFlag()
			e.Variations = e.Variations[:1]
			e.Environments["production"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off"}
			p := mustCompute(t, desiredOf(e), []kmodel.Flag{l}, Options{})
			last := p.Changes[len(p.Changes)-1]
			var body struct {
				Variations []struct {
					Key       string `json:"key"`
					Variables []any  `json:"variables"`
				} `json:"variations"`
			}
			if err := json.Unmarshal(last.Request.Body, &body); err != nil {
				t.Fatal(err)
			}
			if tt.wantEnvs == nil {
				if len(p.Blocked) != 0 || len(body.Variations) != 1 {
					t.Fatalf("blocked %+v, last patch %s; want \"on\" removed", p.Blocked, last.Request.Body)
				}
				return
			}
			if len(p.Blocked) != 1 || !slices.Equal(p.Blocked[0].Environments, tt.wantEnvs) || !strings.Contains(p.Blocked[0].Reason, tt.wantUse) {
				t.Fatalf("blocked %+v; want environments %v, reason naming %q\n%s", p.Blocked, tt.wantEnvs, tt.wantUse, describePlan(p))
			}
			// Only the variation's override of the variable Git keeps changed; no removal
			// patch is needed, and the first patch is the production one.
			for _, ch := range p.Changes {
				if ch.Environment == "" && strings.Contains(ch.Reason, "removes") {
					t.Errorf("a removal patch is planned: %s", ch.Request.Body)
				}
			}
		})
	}
}

// TestVariableTypeChangeWithVariationRemoved: Git changes a variable's type and drops
// the only variation whose override no longer fits the new type. The first flag patch
// sends live ∪ Git variations, so the dropped variation (with its old override) is
// still there when the new type arrives.
func TestVariableTypeChangeWithVariationRemoved(t *testing.T) {
	for _, onOverrides := range []bool{true, false} {
		t.Run(fmt.Sprintf("variation on overrides the variable: %t", onOverrides), func(t *testing.T) {
			c := newReviewSandbox(t)
			d := baseFlag()
			if !onOverrides {
				d.Variations[1].Variables = nil
			}
			d.Variations = append(d.Variations, kmodel.Variation{Key: "legacy", Name: "Legacy", Variables: []kmodel.VariationVariable{{Key: "color", Value: "red"}}})
			c.apply(mustCompute(t, desiredOf(d), nil, Options{}))
			live := c.get(d.SiteCode, d.FeatureKey)

			e := baseFlag()
			e.Variables = []kmodel.Variable{{Key: "color", Type: kmodel.TypeNumber, Value: "1"}}
			e.Variations[1].Variables = []kmodel.VariationVariable{{Key: "color", Value: "2"}}
			if !onOverrides {
				e.Variations[1].Variables = nil
			}
			p := mustCompute(t, desiredOf(e), []kmodel.Flag{live}, Options{})
			for _, ch := range p.Changes {
				if status, body := c.send(ch.Request); status >= 300 {
					t.Fatalf("change %d (%s %s) refused: %d %s\nbody: %s\nplan:\n%s", ch.Order, ch.Request.Method, ch.Request.Path, status, body, ch.Request.Body, describePlan(p))
				}
			}
			if p2 := mustCompute(t, desiredOf(e), []kmodel.Flag{c.get(d.SiteCode, d.FeatureKey)}, Options{}); len(p2.Changes) > 0 {
				t.Errorf("not converged:\n%s", describePlan(p2))
			}
		})
	}
}

// TestKeptVariationLosesUnfitOverrides: Git removes variation "legacy", which an
// environment the flag file no longer lists still serves, so the planner keeps it; and
// Git changes a variable that "legacy" overrides so that the override no longer fits
// (a type change, or an ENUM value that is no longer allowed). Kameleoon checks every
// override against the variables a flag patch sends: the first flag patch must already
// leave the kept variation's unfit override out, or it is refused (400) on every sync
// and nothing else of the flag (name, variables, environments) is ever applied.
func TestKeptVariationLosesUnfitOverrides(t *testing.T) {
	tests := []struct {
		name     string
		override kmodel.VariationVariable // legacy's override, written while it still fits
		variable kmodel.Variable          // the variable as Git changes it
	}{
		{"type change", kmodel.VariationVariable{Key: "color", Value: "red"}, kmodel.Variable{Key: "color", Type: kmodel.TypeNumber, Value: "1"}},
		{"enum shrinks", kmodel.VariationVariable{Key: "size", Value: "XL"},
			kmodel.Variable{Key: "size", Type: kmodel.TypeEnum, Value: "S", AllowedValues: []string{"S", "M"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newReviewSandbox(t)
			d := baseFlag()
			d.Variables = append(d.Variables, kmodel.Variable{Key: "size", Type: kmodel.TypeEnum, Value: "S", AllowedValues: []string{"S", "M", "XL"}})
			d.Variations = append(d.Variations, kmodel.Variation{Key: "legacy", Name: "Legacy", Variables: []kmodel.VariationVariable{tt.override}})
			d.Environments["development"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "legacy"}
			c.apply(mustCompute(t, desiredOf(d), nil, Options{}))
			live := c.get(d.SiteCode, d.FeatureKey)

			// Git renames the flag, stops listing development (which still serves
			// "legacy"), removes "legacy" and changes the variable it overrides.
			e := baseFlag()
			e.Name = "Checkout v2"
			e.Variables = append(e.Variables, kmodel.Variable{Key: "size", Type: kmodel.TypeEnum, Value: "S", AllowedValues: []string{"S", "M", "XL"}})
			for i := range e.Variables {
				if e.Variables[i].Key == tt.variable.Key {
					e.Variables[i] = tt.variable
				}
			}
			if tt.variable.Key == "color" {
				e.Variations[1].Variables = []kmodel.VariationVariable{{Key: "color", Value: "2"}}
			}
			p := mustCompute(t, desiredOf(e), []kmodel.Flag{live}, Options{})
			if len(p.Blocked) != 1 || p.Blocked[0].Variation != "legacy" {
				t.Fatalf("blocked = %+v, want the removal of \"legacy\" refused\n%s", p.Blocked, describePlan(p))
			}
			for _, ch := range p.Changes {
				if status, body := c.send(ch.Request); status >= 300 {
					t.Fatalf("change %d (%s %s) refused: %d %s\nbody: %s\nplan:\n%s", ch.Order, ch.Request.Method, ch.Request.Path, status, body, ch.Request.Body, describePlan(p))
				}
			}
			after := c.get(d.SiteCode, d.FeatureKey)
			if after.Name != "Checkout v2" {
				t.Errorf("name %q: the rest of the flag was not applied", after.Name)
			}
			for _, v := range after.Variations {
				if v.Key == "legacy" && slices.ContainsFunc(v.Variables, func(o kmodel.VariationVariable) bool { return o.Key == tt.override.Key }) {
					t.Errorf("kept variation legacy still overrides %q: %+v", tt.override.Key, v.Variables)
				}
			}
			p2 := mustCompute(t, desiredOf(e), []kmodel.Flag{after}, Options{})
			if len(p2.Changes) != 0 || len(p2.Blocked) != 1 {
				t.Errorf("second plan: want no change and the same refusal\n%s", describePlan(p2))
			}
		})
	}
}
