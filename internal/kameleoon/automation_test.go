package kameleoon

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// automatedFlag has, in production, a rule with a rollback condition, a rule with a
// release window and a progressive rule.
const automatedFlag = `featureKey: auto
name: Auto
variations:
  - {key: "off", name: Off}
  - {key: "on", name: On}
environments:
  production:
    featureEnabled: true
    defaultVariationKey: "off"
    rolloutRules:
      - name: guarded
        type: TARGETED_DELIVERY
        segmentId: 403694
        exposition: 50
        variationKey: "on"
        rollbackConditions:
          - {target: RULE, criteria: CONVERSION_RATE, comparisonOperator: GREATER_THAN, matchValue: 20, goalId: 400899, visitors: 2}
      - name: sale
        type: TARGETED_DELIVERY
        segmentId: 403695
        variationKey: "on"
        release: {releaseFrom: "2025-12-11T11:58:01", releaseTo: "2025-12-13T11:58:01", timeZone: Europe/Paris}
      - name: gradual
        type: PROGRESSIVE_DELIVERY
        segmentId: 403696
        exposition: 50
        variationKey: "on"
`

func automatedRepo(settings, flagFile string) fstest.MapFS {
	return fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("siteCode: " + siteA + "\n" + settings)},
		"flags/auto.yaml":     {Data: []byte(flagFile)},
	}
}

// sandboxRule reads rule name of flag auto's production environment from the sandbox.
func sandboxRule(t *testing.T, sb *ksandbox.Server, name string) map[string]any {
	t.Helper()
	raw, ok := sb.FlagJSON(siteA, "auto")
	if !ok {
		t.Fatal("flag auto not in the sandbox")
	}
	var f struct {
		EnvironmentConfigurations []struct {
			EnvironmentKey string           `json:"environmentKey"`
			RolloutRules   []map[string]any `json:"rolloutRules"`
		} `json:"environmentConfigurations"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.EnvironmentConfigurations {
		for _, r := range e.RolloutRules {
			if e.EnvironmentKey == "production" && r["name"] == name {
				return r
			}
		}
	}
	t.Fatalf("no production rule %q", name)
	return nil
}

// TestKameleoonAutomationIsNotFought: after Kameleoon's automation changes a rule (in
// each reading of the vendor docs), a sync writes nothing and notes what it left alone;
// when Git then changes the same rule, one environment patch applies the change and
// keeps what the automation did; the sync after that writes nothing.
func TestKameleoonAutomationIsNotFought(t *testing.T) {
	tests := []struct {
		name     string
		rule     string // the rule the automation changes and Git then changes
		automate func(*ksandbox.Server) error
		note     plan.NoteKind
		still    func(r map[string]any) bool // what the automation did, still true after Git's change
	}{
		{"rollback fired, status only, state shown", "guarded", func(sb *ksandbox.Server) error {
			return sb.FireRollback(siteA, "auto", "production", "guarded", ksandbox.RollbackOptions{})
		}, plan.NotePaused, paused},
		{"rollback fired, status only, state hidden", "guarded", func(sb *ksandbox.Server) error {
			return sb.FireRollback(siteA, "auto", "production", "guarded", ksandbox.RollbackOptions{HideState: true})
		}, plan.NotePaused, paused},
		{"rollback fired, state written too, shown", "guarded", func(sb *ksandbox.Server) error {
			return sb.FireRollback(siteA, "auto", "production", "guarded", ksandbox.RollbackOptions{StateToo: true})
		}, plan.NotePaused, paused},
		{"rollback fired, state written too, hidden", "guarded", func(sb *ksandbox.Server) error {
			return sb.FireRollback(siteA, "auto", "production", "guarded", ksandbox.RollbackOptions{StateToo: true, HideState: true})
		}, plan.NotePaused, paused},
		{"release window ended, state shown", "sale", func(sb *ksandbox.Server) error {
			return sb.EndReleaseWindow(siteA, "auto", "production", "sale", ksandbox.WindowOptions{})
		}, plan.NotePaused, paused},
		{"release window ended, state hidden", "sale", func(sb *ksandbox.Server) error {
			return sb.EndReleaseWindow(siteA, "auto", "production", "sale", ksandbox.WindowOptions{HideState: true})
		}, plan.NotePaused, paused},
		{"progressive ramp, currentExposition", "gradual", func(sb *ksandbox.Server) error {
			return sb.RampProgressive(siteA, "auto", "production", "gradual", 20, ksandbox.RampOptions{})
		}, plan.NoteRamp, func(r map[string]any) bool { return r["currentExposition"] == 20.0 && r["exposition"] == 50.0 }},
		{"progressive ramp, exposition moves", "gradual", func(sb *ksandbox.Server) error {
			return sb.RampProgressive(siteA, "auto", "production", "gradual", 20, ksandbox.RampOptions{ExpositionMoves: true})
		}, plan.NoteRamp, func(r map[string]any) bool { return r["exposition"] == 20.0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
			c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			run := func(fsys fstest.MapFS) *reconcile.Report {
				t.Helper()
				rep, err := reconcile.Run(ctx, reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
				if err != nil {
					t.Fatal(err)
				}
				return rep
			}
			fsys := automatedRepo("", automatedFlag)
			if rep := run(fsys); !rep.Converged || sb.Writes() != 1 {
				t.Fatalf("first sync: converged %t, %d writes", rep.Converged, sb.Writes())
			}

			if err := tt.automate(sb); err != nil {
				t.Fatal(err)
			}
			sb.ResetCalls()
			rep := run(fsys)
			if sb.Writes() != 0 || len(rep.Plan.Changes) != 0 || !rep.Converged {
				t.Fatalf("after the automation: %d writes, converged %t\n%s", sb.Writes(), rep.Converged, planText(t, rep.Plan))
			}
			if !hasNote(rep.Plan, tt.note, tt.rule) {
				t.Errorf("no %s note for rule %q:\n%s", tt.note, tt.rule, planText(t, rep.Plan))
			}

			// Git changes the same rule: one patch, and the automation's doing stays.
			old := map[string]string{"guarded": "403694", "sale": "403695", "gradual": "403696"}[tt.rule]
			fsys = automatedRepo("", strings.Replace(automatedFlag, "segmentId: "+old, "segmentId: 403699", 1))
			sb.ResetCalls()
			rep = run(fsys)
			var writes []string
			for _, call := range sb.Calls() {
				if call.Method != "GET" && call.Method != "POST" || call.Method == "POST" && call.Path != "/oauth/token" {
					writes = append(writes, call.Method+" "+call.Path)
				}
			}
			if strings.Join(writes, ", ") != "PATCH "+kclient.EnvironmentPath(siteA, "auto", "production") || !rep.Converged {
				t.Fatalf("after Git's change: writes %v, converged %t\n%s", writes, rep.Converged, planText(t, rep.Plan))
			}
			r := sandboxRule(t, sb, tt.rule)
			if r["segmentId"] != 403699.0 || !tt.still(r) {
				t.Errorf("after Git's change, rule %s is %v: want segment 403699 and the automation's doing kept", tt.rule, r)
			}
			sb.ResetCalls()
			if rep = run(fsys); sb.Writes() != 0 || !rep.Converged {
				t.Errorf("the sync after: %d writes, converged %t\n%s", sb.Writes(), rep.Converged, planText(t, rep.Plan))
			}
		})
	}
}

func paused(r map[string]any) bool { return r["status"] == "PAUSED" }

func hasNote(p plan.Plan, kind plan.NoteKind, rule string) bool {
	for _, n := range p.Notes {
		if n.Kind == kind && strings.Contains(n.Path, "[name="+rule+"]") {
			return true
		}
	}
	return false
}

func planText(t *testing.T, p plan.Plan) string {
	t.Helper()
	var b strings.Builder
	if err := plan.RenderText(&b, p, plan.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestIgnoredFieldChangedInKameleoon: a field flagsync.yaml hands to Kameleoon is
// changed there (as in its UI); a sync writes nothing and notes it; when Git changes
// the rule, the patch keeps Kameleoon's value.
func TestIgnoredFieldChangedInKameleoon(t *testing.T) {
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	settings := "ignore:\n  - environments.*.rolloutRules[*].exposition\n"
	fsys := automatedRepo(settings, automatedFlag)
	if _, err := reconcile.Run(ctx, reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}}); err != nil {
		t.Fatal(err)
	}

	// Someone sets the guarded rule's exposition to 35 in Kameleoon.
	raw, _ := sb.FlagJSON(siteA, "auto")
	edited := strings.Replace(string(raw), `"exposition":50,"variationKey":"on"`, `"exposition":35,"variationKey":"on"`, 1)
	if edited == string(raw) {
		t.Fatalf("fixture: no exposition 50 to edit in %s", raw)
	}
	if err := sb.SetFlagJSON(siteA, []byte(edited)); err != nil {
		t.Fatal(err)
	}
	sb.ResetCalls()
	rep, err := reconcile.Run(ctx, reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
	if err != nil || sb.Writes() != 0 || !rep.Converged || !hasNote(rep.Plan, plan.NoteIgnored, "guarded") {
		t.Fatalf("after the edit in Kameleoon: err %v, %d writes, converged %t\n%s", err, sb.Writes(), rep.Converged, planText(t, rep.Plan))
	}

	fsys = automatedRepo(settings, strings.Replace(automatedFlag, "segmentId: 403694", "segmentId: 403699", 1))
	sb.ResetCalls()
	rep, err = reconcile.Run(ctx, reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
	if err != nil || sb.Writes() != 1 || !rep.Converged {
		t.Fatalf("after Git's change: err %v, %d writes, converged %t\n%s", err, sb.Writes(), rep.Converged, planText(t, rep.Plan))
	}
	if r := sandboxRule(t, sb, "guarded"); r["segmentId"] != 403699.0 || r["exposition"] != 35.0 {
		t.Errorf("guarded is %v: want Git's segment and Kameleoon's exposition 35", r)
	}
}
