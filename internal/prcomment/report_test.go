package prcomment

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/codehost"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

func planJSON(t *testing.T, p plan.Plan) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := plan.RenderJSON(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func validateJSON(t *testing.T, valid bool, diags ...diag.Diagnostic) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"valid": valid, "files": 3, "diagnostics": append([]diag.Diagnostic{}, diags...)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	badVariation = diag.Diagnostic{File: "flags/dark_mode.yaml", Line: 28, Column: 26, Field: "environments.production.defaultVariationKey", Message: `unknown variation "nope"`}
	badSite      = diag.Diagnostic{File: "flags/checkout/new_flow.yaml", Line: 2, Column: 11, Field: "siteCode", Message: "must be 10 characters"}
)

func TestReportOfInvalidFiles(t *testing.T) {
	// plan --json-out's form for invalid files, as cmd/flagsync writes it.
	invalidPlan, _ := json.Marshal(map[string]any{"revision": "abc", "diagnostics": []diag.Diagnostic{badVariation, badSite}})
	for name, in := range map[string]Inputs{
		"validate report": {ValidateJSON: validateJSON(t, false, badVariation, badSite)},
		"plan json":       {PlanJSON: invalidPlan},
		"both, deduped":   {PlanJSON: invalidPlan, ValidateJSON: validateJSON(t, false, badSite, badVariation)},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := NewReport(in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Conclusion != Failure || r.Title != "The flag files are invalid: 2 problems in 2 files" {
				t.Fatalf("conclusion %q, title %q", r.Conclusion, r.Title)
			}
			if len(r.Annotations) != 2 {
				t.Fatalf("annotations %+v: want one per problem", r.Annotations)
			}
			// Sorted by file: checkout/ before dark_mode.
			a := r.Annotations[1]
			if a.File != "flags/dark_mode.yaml" || a.Line != 28 || a.Column != 26 || a.Level != codehost.AnnotationFailure ||
				a.Message != `environments.production.defaultVariationKey: unknown variation "nope"` {
				t.Fatalf("annotation %+v", a)
			}
			if !strings.Contains(r.Markdown, badVariation.String()) || !strings.Contains(r.Markdown, badSite.String()) {
				t.Fatalf("markdown lacks the problem list:\n%s", r.Markdown)
			}
		})
	}
}

func TestReportOfAPlan(t *testing.T) {
	p := plan.Plan{
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Changes: []plan.Change{
			{Order: 1, Action: plan.ActionCreate, Address: plan.Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "dark_mode"}},
			{Order: 2, Action: plan.ActionUpdate, Address: plan.Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "search_ranking", Environment: "production"}},
		},
		Unmanaged: []plan.Address{{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "old"}},
	}
	r, err := NewReport(Inputs{PlanJSON: planJSON(t, p), ValidateJSON: validateJSON(t, true)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Conclusion != Success || r.Title != p.SummaryLine() || len(r.Annotations) != 0 {
		t.Fatalf("report %+v: want success titled %q", r, p.SummaryLine())
	}

	p.Blocked = []plan.Blocked{
		{Address: plan.Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "search_ranking"}, Kind: plan.BlockedVariationInUse, Variation: "v2", Environments: []string{"qa"}, Reason: "variation v2 is still used by qa"},
		{Address: plan.Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "gone"}, Reason: "the mass-archive guard refused"},
	}
	locate := map[plan.Address]reconcile.FlagFile{{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "search_ranking"}: {File: "flags/search_ranking.yaml", Line: 3}}
	r, err = NewReport(Inputs{PlanJSON: planJSON(t, p), Locate: locate})
	if err != nil {
		t.Fatal(err)
	}
	if r.Conclusion != Neutral || r.Title != p.SummaryLine() || !strings.Contains(r.Title, "refused") {
		t.Fatalf("conclusion %q, title %q: want neutral and the summary line %q", r.Conclusion, r.Title, p.SummaryLine())
	}
	// The removed flag has no file: listed, not annotated.
	if len(r.Annotations) != 1 || r.Annotations[0] != (Annotation{File: "flags/search_ranking.yaml", Line: 3, Level: codehost.AnnotationWarning,
		Title: "flagsync: change refused", Message: "variation v2 is still used by qa"}) {
		t.Fatalf("annotations %+v", r.Annotations)
	}
	if !strings.Contains(r.Markdown, "`pzllysfw2f/gone`: the mass-archive guard refused") {
		t.Fatalf("markdown does not list the refused archive:\n%s", r.Markdown)
	}
}

func TestReportWithoutAPlan(t *testing.T) {
	r, err := NewReport(Inputs{ValidateJSON: validateJSON(t, true), JobURL: "https://ci.example/run/1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Conclusion != Failure || !strings.Contains(r.Title, "did not finish") || !strings.Contains(r.Markdown, "https://ci.example/run/1") {
		t.Fatalf("report %+v", r)
	}
	for _, bad := range []Inputs{{PlanJSON: []byte(`{"valid": true}`)}, {ValidateJSON: []byte(`{"summary": {}}`)}, {PlanJSON: []byte("<!-- flagsync-plan -->")}} {
		if _, err := NewReport(bad); err == nil {
			t.Errorf("inputs %q / %q: want an error", bad.PlanJSON, bad.ValidateJSON)
		}
	}
}

func TestLocateFlags(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/a.yaml": {Data: []byte("# a comment\nvendor: fake\nkey: dark_mode\nenabled: true\n")},
	}
	got, err := LocateFlags([]reconcile.Vendor{fake.Vendor(nil)}, fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	src, ok := got[fake.Address("dark_mode")]
	if !ok || src.File != "flags/a.yaml" || src.Line != 3 {
		t.Fatalf("located %+v: want dark_mode at flags/a.yaml:3", got)
	}
}
