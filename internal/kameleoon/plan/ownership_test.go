package kplan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
)

// ruleBody returns the rules of an environment patch's body, by name.
func ruleBody(t *testing.T, c plan.Change) map[string]map[string]any {
	t.Helper()
	var b struct {
		RolloutRules []map[string]any `json:"rolloutRules"`
	}
	if err := json.Unmarshal(c.Request.Body, &b); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range b.RolloutRules {
		out[r["name"].(string)] = r
	}
	return out
}

// TestIgnoredFieldsAreNeverWritten: with every kind of field ignored and every one of
// them different in Kameleoon, the plan writes nothing and notes each difference; Git's
// own change elsewhere is still planned, and carries Kameleoon's values where it sends
// an ignored field.
func TestIgnoredFieldsAreNeverWritten(t *testing.T) {
	d := baseFlag()
	d.Variables = append(d.Variables, kmodel.Variable{Key: "size", Type: kmodel.TypeEnum, Value: "S", AllowedValues: []string{"S", "M"}})
	l := liveOf(d)
	l.Name, l.Description, l.Tags = "Renamed in the UI", "UI text", []string{kmodel.OwnershipTag, "ui"}
	l.AttributionWindow, l.PrimaryGoalID, l.SecondaryGoalIDs = 1000, 7, []int64{8}
	l.BucketingKey = &kmodel.BucketingKey{BucketingKeyType: "CUSTOM_DATA", CustomDataID: 3}
	l.Variables = slices.Clone(l.Variables)
	l.Variables[0].Value = "red"
	l.Variables[1].AllowedValues = []string{"S", "M", "L"}
	l.Variations = slices.Clone(l.Variations)
	l.Variations[1].Name = "On!"
	l.Variations[1].Variables = []kmodel.VariationVariable{{Key: "color", Value: "pink"}}
	e := l.Environments["production"]
	e.FeatureEnabled, e.Integrations = false, &kmodel.Integrations{DeliveryRules: []any{"x"}, ExperimentRules: []any{}}
	e.RolloutRules = slices.Clone(e.RolloutRules)
	r := &e.RolloutRules[0]
	r.SegmentID, r.Exposition, r.VariationKey = 1, ptr(1.0), "off"
	r.Release = &kmodel.Release{ReleaseFrom: "2026-01-01T00:00:00", TimeZone: "UTC"}
	r.RollbackConditions = slices.Clone(r.RollbackConditions)
	r.RollbackConditions[0].MatchValue = 99
	l.Environments["production"] = e

	d.Ignore = []string{
		"name", "description", "tags", "attributionWindow", "bucketingKey", "primaryGoalId", "secondaryGoalIds",
		"variables[key=color].value", "variables[*].allowedValues", "variations[key=on].name", "variations[*].variables",
		"environments.production.featureEnabled", "environments.*.integrations",
		"environments.production.rolloutRules[name=beta].segmentId", "environments.*.rolloutRules[*].exposition",
		"environments.*.rolloutRules[*].variationKey", "environments.*.rolloutRules[*].release",
		"environments.*.rolloutRules[*].rollbackConditions[0].matchValue",
	}
	p := mustCompute(t, desiredOf(d), []kmodel.Flag{l}, Options{})
	if len(p.Changes) != 0 {
		t.Fatalf("ignored fields are written:\n%s", describePlan(p))
	}
	if len(p.Notes) != 18 {
		t.Errorf("%d notes, want one per ignored difference (18):\n%s", len(p.Notes), describePlan(p))
	}
	for _, n := range p.Notes {
		if n.Kind != plan.NoteIgnored || n.Ignore == "" || n.Source != "the flag file" {
			t.Errorf("note %+v", n)
		}
	}

	// Git changes the rule's type-independent state: the patch sends it, and every
	// ignored field of the rule as Kameleoon has it.
	d.Environments["production"].RolloutRules[0].State = kmodel.StatePaused
	p = mustCompute(t, desiredOf(d), []kmodel.Flag{l}, Options{})
	if len(p.Changes) != 1 || p.Changes[0].Environment != "production" || len(p.Changes[0].Fields) != 1 {
		t.Fatalf("want one production patch changing the state:\n%s", describePlan(p))
	}
	beta := ruleBody(t, p.Changes[0])["beta"]
	if beta["state"] != "PAUSED" || beta["segmentId"] != 1.0 || beta["exposition"] != 1.0 || beta["variationKey"] != "off" ||
		beta["release"].(map[string]any)["releaseFrom"] != "2026-01-01T00:00:00" ||
		beta["rollbackConditions"].([]any)[0].(map[string]any)["matchValue"] != 99.0 {
		t.Errorf("the patch does not carry Kameleoon's values for the ignored fields: %s", p.Changes[0].Request.Body)
	}
}

// TestIgnoreCreateSendsGit: a flag, an environment or a rule Kameleoon does not have yet
// is sent with Git's values for ignored fields: there is no live value to keep.
func TestIgnoreCreateSendsGit(t *testing.T) {
	d := baseFlag()
	d.Ignore = []string{"tags", "environments.*.featureEnabled", "environments.*.rolloutRules[*].exposition"}
	p := mustCompute(t, desiredOf(d), nil, Options{})
	if len(p.Changes) != 1 || p.Changes[0].Action != plan.ActionCreate || len(p.Notes) != 0 {
		t.Fatalf("want one create and no notes:\n%s", describePlan(p))
	}
	if b := string(p.Changes[0].Request.Body); !strings.Contains(b, `"exposition":59`) || !strings.Contains(b, `"web"`) {
		t.Errorf("the create does not send Git's values: %s", b)
	}

	l := liveOf(baseFlag())
	delete(l.Environments, "production")
	p = mustCompute(t, desiredOf(d), []kmodel.Flag{l}, Options{})
	if len(p.Changes) != 1 || !strings.Contains(string(p.Changes[0].Request.Body), `"exposition":59`) {
		t.Errorf("an environment new to Kameleoon is not sent with Git's values:\n%s", describePlan(p))
	}
	if len(p.Notes) != 0 {
		t.Errorf("notes for an environment new to Kameleoon, whose values are sent: %+v", p.Notes)
	}
}

// TestIgnoredDefaultVariationKeepsTheVariation: an ignore rule keeps an environment's
// default variation from Kameleoon, and Git removes that variation: the removal would
// be refused by Kameleoon, so the variation is kept and the refusal says why; the plan
// is accepted by the sandbox and converges.
func TestIgnoredDefaultVariationKeepsTheVariation(t *testing.T) {
	c := newReviewSandbox(t)
	d := baseFlag()
	d.Variations = append(d.Variations, kmodel.Variation{Key: "legacy", Name: "Legacy"})
	d.Environments["production"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "legacy"}
	c.apply(mustCompute(t, desiredOf(d), nil, Options{}))
	live := c.get(d.SiteCode, d.FeatureKey)

	e := baseFlag()
	e.Environments["production"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off"}
	e.Ignore = []string{"environments.production.defaultVariationKey"}
	p := mustCompute(t, desiredOf(e), []kmodel.Flag{live}, Options{})
	if len(p.Blocked) != 1 || p.Blocked[0].Variation != "legacy" || !slices.Equal(p.Blocked[0].Environments, []string{"production"}) ||
		!strings.Contains(p.Blocked[0].Reason, "in fields an ignore rule leaves to Kameleoon") {
		t.Fatalf("blocked = %+v\n%s", p.Blocked, describePlan(p))
	}
	for _, ch := range p.Changes {
		if status, body := c.send(ch.Request); status >= 300 {
			t.Fatalf("change %d refused: %d %s\n%s", ch.Order, status, body, describePlan(p))
		}
	}
	if p2 := mustCompute(t, desiredOf(e), []kmodel.Flag{c.get(d.SiteCode, d.FeatureKey)}, Options{}); len(p2.Changes) != 0 {
		t.Errorf("not converged:\n%s", describePlan(p2))
	}
}

// TestIgnoredOverrideThatNoLongerFits: variation overrides are left to Kameleoon and Git
// changes the variable's type: Kameleoon's override no longer fits, and a patch that
// sent it would be refused, so it is left out; the sandbox accepts the plan.
func TestIgnoredOverrideThatNoLongerFits(t *testing.T) {
	c := newReviewSandbox(t)
	d := baseFlag()
	c.apply(mustCompute(t, desiredOf(d), nil, Options{}))
	live := c.get(d.SiteCode, d.FeatureKey)

	e := baseFlag()
	e.Variables = []kmodel.Variable{{Key: "color", Type: kmodel.TypeNumber, Value: "1"}}
	e.Variations[1].Variables = []kmodel.VariationVariable{{Key: "color", Value: "2"}}
	e.Ignore = []string{"variations[*].variables"}
	p := mustCompute(t, desiredOf(e), []kmodel.Flag{live}, Options{})
	for _, ch := range p.Changes {
		if status, body := c.send(ch.Request); status >= 300 {
			t.Fatalf("change %d refused: %d %s\nbody: %s\n%s", ch.Order, status, body, ch.Request.Body, describePlan(p))
		}
	}
	if p2 := mustCompute(t, desiredOf(e), []kmodel.Flag{c.get(d.SiteCode, d.FeatureKey)}, Options{}); len(p2.Changes) != 0 {
		t.Errorf("not converged:\n%s", describePlan(p2))
	}
}

// TestSettingsIgnoreAppliesToEveryFlag: flagsync.yaml's ignore list applies to every
// flag, and its notes name flagsync.yaml.
func TestSettingsIgnoreAppliesToEveryFlag(t *testing.T) {
	a, b := baseFlag(), baseFlag()
	b.FeatureKey = "search"
	la, lb := liveOf(a), liveOf(b)
	la.Description, lb.Description = "UI", "UI too"
	desired := desiredOf(a, b)
	desired.Settings.Ignore = []string{"description"}
	p := mustCompute(t, desired, []kmodel.Flag{la, lb}, Options{})
	if len(p.Changes) != 0 || len(p.Notes) != 2 || p.Notes[0].Key != "checkout" || p.Notes[1].Key != "search" ||
		p.Notes[0].Source != "flagsync.yaml" {
		t.Errorf("notes %+v\n%s", p.Notes, describePlan(p))
	}
	if got, want := p.SummaryLine(), "No changes. Kameleoon matches revision abc1234; 2 differences left alone (see the notes)."; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestAutomationDefaults: the state and exposition the planner plans for a rule
// Kameleoon's automation may have changed, for each reading of the read shape.
func TestAutomationDefaults(t *testing.T) {
	window := &kmodel.Release{ReleaseFrom: "2025-12-11T11:58:01", ReleaseTo: "2025-12-13T11:58:01", TimeZone: "Europe/Paris"}
	rollback := []kmodel.RollbackCondition{{Target: "RULE", Criteria: "UPLIFT", ComparisonOperator: "LESS_THAN", MatchValue: 1}}
	tests := []struct {
		name      string
		git, live kmodel.Rule // live: the rule as read (State "" when the read shape has no state)
		wantState string      // the state a patch sends; "" when no patch is planned
		wantNote  plan.NoteKind
	}{
		{"status PAUSED, state ACTIVE", kmodel.Rule{}, kmodel.Rule{State: "ACTIVE", Status: "PAUSED"}, "", plan.NotePaused},
		{"paused with rollback conditions (status only)", kmodel.Rule{RollbackConditions: rollback},
			kmodel.Rule{Status: "PAUSED", RollbackConditions: rollback}, "", plan.NotePaused},
		{"paused with rollback conditions (state written PAUSED)", kmodel.Rule{RollbackConditions: rollback},
			kmodel.Rule{State: "PAUSED", Status: "PAUSED", RollbackConditions: rollback}, "", plan.NotePaused},
		{"Git removes the rollback conditions: re-activated", kmodel.Rule{},
			kmodel.Rule{Status: "PAUSED", RollbackConditions: rollback}, "ACTIVE", ""},
		{"outside the window (status only)", kmodel.Rule{Release: window}, kmodel.Rule{Status: "PAUSED", Release: window}, "", plan.NotePaused},
		{"state written PAUSED with a window: paused by hand, re-activated", kmodel.Rule{Release: window},
			kmodel.Rule{State: "PAUSED", Status: "PAUSED", Release: window}, "ACTIVE", ""},
		{"paused by hand: re-activated", kmodel.Rule{}, kmodel.Rule{Status: "PAUSED"}, "ACTIVE", ""},
		{"Git pauses a rule Kameleoon paused", kmodel.Rule{State: "PAUSED"}, kmodel.Rule{State: "ACTIVE", Status: "PAUSED"}, "PAUSED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			git, live := tt.git, tt.live
			git.Name, git.Type, git.VariationKey, live.Name, live.Type, live.VariationKey = "r", kmodel.RuleTargetedDelivery, "on", "r", kmodel.RuleTargetedDelivery, "on"
			live.ID = 20557
			d, l := baseFlag(), liveOf(baseFlag())
			d.Environments["production"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{git}}
			l.Environments["production"] = kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "off", RolloutRules: []kmodel.Rule{live}}
			p := mustCompute(t, desiredOf(d), []kmodel.Flag{l}, Options{})
			switch {
			case tt.wantState == "" && len(p.Changes) != 0:
				t.Errorf("a patch is planned:\n%s", describePlan(p))
			case tt.wantState != "" && (len(p.Changes) != 1 || ruleBody(t, p.Changes[0])["r"]["state"] != tt.wantState):
				t.Errorf("want a patch sending state %s:\n%s", tt.wantState, describePlan(p))
			case tt.wantNote != "" && (len(p.Notes) != 1 || p.Notes[0].Kind != tt.wantNote):
				t.Errorf("notes %+v, want one %s", p.Notes, tt.wantNote)
			case tt.wantNote == "" && len(p.Notes) != 0:
				t.Errorf("notes %+v, want none", p.Notes)
			}

			// Patched for another reason (Git changes the segment), the rule keeps what
			// the automation left.
			d.Environments["production"].RolloutRules[0].SegmentID = 5
			p = mustCompute(t, desiredOf(d), []kmodel.Flag{l}, Options{})
			if len(p.Changes) != 1 {
				t.Fatalf("want one patch:\n%s", describePlan(p))
			}
			want := tt.wantState
			if want == "" {
				want = live.WrittenState()
				if tt.live.State == "" && tt.live.Release != nil && len(tt.live.RollbackConditions) == 0 {
					want = "ACTIVE" // outside the window, status only: written ACTIVE, as the tutorial shows
				}
			}
			if got := ruleBody(t, p.Changes[0])["r"]["state"]; got != want {
				t.Errorf("patched for another reason, the rule is sent %v, want %s", got, want)
			}
		})
	}
}
