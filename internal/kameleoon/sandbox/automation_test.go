package ksandbox

import (
	"encoding/json"
	"strings"
	"testing"
)

// automationFlag has, in production, a rule with a rollback condition, a rule with a
// release window and a progressive rule.
const automationFlag = `{"featureKey": "auto", "name": "Auto", "siteCode": "pzllysfw2f",
  "environmentConfigurations": [{"environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "off", "rolloutRules": [
    {"name": "guarded", "type": "TARGETED_DELIVERY", "variationKey": "on", "exposition": 50, "state": "ACTIVE",
     "rollbackConditions": [{"target": "RULE", "criteria": "CONVERSION_RATE", "comparisonOperator": "GREATER_THAN", "matchValue": 20, "goalId": 400899, "visitors": 2}]},
    {"name": "sale", "type": "TARGETED_DELIVERY", "variationKey": "on", "state": "ACTIVE",
     "release": {"releaseFrom": "2025-12-11T11:58:01", "releaseTo": "2025-12-13T11:58:01", "timeZone": "Europe/Paris"}},
    {"name": "gradual", "type": "PROGRESSIVE_DELIVERY", "variationKey": "on", "exposition": 50, "state": "ACTIVE"}]}]}`

// productionRule reads rule name of flag auto's production environment.
func productionRule(t *testing.T, c *client, name string) map[string]any {
	t.Helper()
	f := c.must(200, "GET", "/feature-flags/pzllysfw2f/auto?optionalFields=environmentConfigurations", "").json(t)
	for _, r := range envOf(t, f, "production")["rolloutRules"].([]any) {
		if r := r.(map[string]any); r["name"] == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return nil
}

// patchProduction sends the production rules as read, with the given changes to rule
// name, as flagsync does (ids carried, state written).
func patchProduction(t *testing.T, c *client, name string, change map[string]any) {
	t.Helper()
	f := c.must(200, "GET", "/feature-flags/pzllysfw2f/auto?optionalFields=environmentConfigurations", "").json(t)
	var rules []string
	for _, r := range envOf(t, f, "production")["rolloutRules"].([]any) {
		r := r.(map[string]any)
		w := map[string]any{"id": r["id"], "name": r["name"], "type": r["type"], "variationKey": r["variationKey"], "state": r["state"]}
		if w["state"] == nil {
			w["state"] = r["status"]
		}
		for _, k := range []string{"exposition", "release", "rollbackConditions"} {
			if r[k] != nil {
				w[k] = r[k]
			}
		}
		if r["name"] == name {
			for k, v := range change {
				w[k] = v
			}
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, string(b))
	}
	c.must(200, "PATCH", "/feature-flags/pzllysfw2f/auto/production", `{"rolloutRules": [`+strings.Join(rules, ",")+`]}`)
}

func TestFireRollback(t *testing.T) {
	tests := []struct {
		name              string
		opts              RollbackOptions
		wantState         any // the state the read shape shows (nil: none)
		reactivatedByPost bool
	}{
		{"status only changes, state shown", RollbackOptions{}, "ACTIVE", false},
		// A client that reads only status writes PAUSED back with its other change:
		// from then on PAUSED is written, and writing ACTIVE is a change.
		{"status only changes, state hidden", RollbackOptions{HideState: true}, nil, true},
		{"state changes too, shown", RollbackOptions{StateToo: true}, "PAUSED", true},
		{"state changes too, hidden", RollbackOptions{StateToo: true, HideState: true}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, _ := setup(t, Options{Sites: []string{site}})
			c.must(201, "POST", "/feature-flags", compact(t, automationFlag))
			if err := s.FireRollback(site, "auto", "production", "guarded", tt.opts); err != nil {
				t.Fatal(err)
			}
			r := productionRule(t, c, "guarded")
			if r["status"] != "PAUSED" || r["state"] != tt.wantState {
				t.Fatalf("after the rollback: status %v, state %v; want PAUSED, %v", r["status"], r["state"], tt.wantState)
			}

			// A patch that leaves the written state as it was (another field changes)
			// does not undo Kameleoon's pause.
			patchProduction(t, c, "guarded", map[string]any{"exposition": 40})
			if r := productionRule(t, c, "guarded"); r["status"] != "PAUSED" || r["exposition"] != 40.0 {
				t.Errorf("after a patch of another field: %v", r)
			}
			// Writing ACTIVE re-activates the rule where PAUSED was written, and changes
			// nothing where the rollback changed only status (state was ACTIVE already).
			patchProduction(t, c, "guarded", map[string]any{"state": "ACTIVE"})
			if got := productionRule(t, c, "guarded")["status"]; (got == "ACTIVE") != tt.reactivatedByPost {
				t.Errorf("after writing state ACTIVE: status %v", got)
			}
		})
	}
	s, c, _ := setup(t, Options{Sites: []string{site}})
	c.must(201, "POST", "/feature-flags", compact(t, automationFlag))
	if err := s.FireRollback(site, "auto", "production", "sale", RollbackOptions{}); err == nil || !strings.Contains(err.Error(), "no rollback conditions") {
		t.Errorf("a rule without rollback conditions: %v", err)
	}
	if err := s.FireRollback(site, "auto", "staging", "guarded", RollbackOptions{}); err == nil {
		t.Error("a rule of an environment the flag lacks: no error")
	}
}

func TestEndReleaseWindow(t *testing.T) {
	s, c, _ := setup(t, Options{Sites: []string{site}})
	c.must(201, "POST", "/feature-flags", compact(t, automationFlag))
	if err := s.EndReleaseWindow(site, "auto", "production", "sale", WindowOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := productionRule(t, c, "sale"); r["status"] != "PAUSED" || r["state"] != "ACTIVE" {
		t.Fatalf("after the window: %v, want status PAUSED, state ACTIVE (the tutorial's read shape)", r)
	}
	// The tutorial: writing state ACTIVE again leaves the rule PAUSED.
	patchProduction(t, c, "sale", nil)
	if r := productionRule(t, c, "sale"); r["status"] != "PAUSED" {
		t.Errorf("after writing the same state: %v", r)
	}
	// A new window is judged afresh (the sandbox has no clock for windows: it serves).
	patchProduction(t, c, "sale", map[string]any{"release": map[string]any{"releaseFrom": "2026-12-11T11:58:01", "releaseTo": "2026-12-13T11:58:01", "timeZone": "Europe/Paris"}})
	if r := productionRule(t, c, "sale"); r["status"] != "ACTIVE" {
		t.Errorf("after a new window: %v", r)
	}
	if err := s.EndReleaseWindow(site, "auto", "production", "guarded", WindowOptions{}); err == nil {
		t.Error("a rule without a window: no error")
	}
}

func TestRampProgressive(t *testing.T) {
	s, c, _ := setup(t, Options{Sites: []string{site}})
	c.must(201, "POST", "/feature-flags", compact(t, automationFlag))
	if r := productionRule(t, c, "gradual"); r["currentExposition"] != 50.0 {
		t.Fatalf("a progressive rule not ramping: currentExposition %v, want its exposition", r["currentExposition"])
	}
	if r := productionRule(t, c, "guarded"); r["currentExposition"] != nil {
		t.Errorf("a targeted rule shows currentExposition %v", r["currentExposition"])
	}
	if err := s.RampProgressive(site, "auto", "production", "gradual", 20, RampOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := productionRule(t, c, "gradual"); r["currentExposition"] != 20.0 || r["exposition"] != 50.0 {
		t.Fatalf("after the ramp: %v", r)
	}
	// The ramp goes on through a patch, and never above a lower target.
	patchProduction(t, c, "gradual", nil)
	if r := productionRule(t, c, "gradual"); r["currentExposition"] != 20.0 {
		t.Errorf("after a patch: %v", r)
	}
	patchProduction(t, c, "gradual", map[string]any{"exposition": 10})
	if r := productionRule(t, c, "gradual"); r["currentExposition"] != 10.0 || r["exposition"] != 10.0 {
		t.Errorf("after lowering the target: %v", r)
	}

	// The other reading: exposition itself moves, no currentExposition.
	if err := s.RampProgressive(site, "auto", "production", "gradual", 5, RampOptions{ExpositionMoves: true}); err != nil {
		t.Fatal(err)
	}
	if r := productionRule(t, c, "gradual"); r["currentExposition"] != nil || r["exposition"] != 5.0 {
		t.Errorf("after a ramp that moves exposition: %v", r)
	}
	patchProduction(t, c, "gradual", nil)
	if r := productionRule(t, c, "gradual"); r["currentExposition"] != nil {
		t.Errorf("after a patch, currentExposition %v", r["currentExposition"])
	}
	if err := s.RampProgressive(site, "auto", "production", "gradual", 80, RampOptions{}); err == nil {
		t.Error("a ramp above the target: no error")
	}
	if err := s.RampProgressive(site, "auto", "production", "guarded", 10, RampOptions{}); err == nil {
		t.Error("a ramp of a targeted rule: no error")
	}
}

// TestAutomationSurvivesTheStateFile: what the read shape shows (status, state,
// currentExposition) is kept across a restart.
func TestAutomationSurvivesTheStateFile(t *testing.T) {
	state := t.TempDir() + "/state.json"
	s, c, _ := setup(t, Options{Sites: []string{site}, StatePath: state})
	c.must(201, "POST", "/feature-flags", compact(t, automationFlag))
	if err := s.FireRollback(site, "auto", "production", "guarded", RollbackOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.RampProgressive(site, "auto", "production", "gradual", 20, RampOptions{}); err != nil {
		t.Fatal(err)
	}
	_, c2, _ := setup(t, Options{Sites: []string{site}, StatePath: state})
	if r := productionRule(t, c2, "guarded"); r["status"] != "PAUSED" || r["state"] != "ACTIVE" {
		t.Errorf("after a restart: %v", r)
	}
	if r := productionRule(t, c2, "gradual"); r["currentExposition"] != 20.0 {
		t.Errorf("after a restart: %v", r)
	}
}
