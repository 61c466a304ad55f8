package plan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
)

// TestPoliciesInEveryRendering: the changes policies refused and their warnings are in
// the summary line, in their own text and Markdown sections (with the flag's file:line),
// and in the JSON plan.
func TestPoliciesInEveryRendering(t *testing.T) {
	a := Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "checkout", Environment: "production"}
	p := Plan{Revision: "abc1234", Service: "Kameleoon", Unmanaged: []Address{},
		Changes: []Change{{Order: 2, Action: ActionUpdate, Address: Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "banner", Environment: "staging"},
			Request: api.Request{Method: "PATCH", Path: "/feature-flags/pzllysfw2f/banner/staging"}, Reason: "r"}},
		Blocked: []Blocked{{Address: a, Kind: BlockedPolicy, Policy: "exposure", Action: ActionUpdate, Order: 1,
			File: "flags/checkout.yaml", Line: 3, Reason: "exposure: rises by at most 25 points"}},
		Warnings: []Warning{{Address: Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "banner", Environment: "staging"},
			Order: 2, Action: ActionUpdate, Policy: "owner", Message: "name an owner", File: "flags/banner.yaml", Line: 1}},
	}
	wantSummary := "Plan: 0 to create, 1 to update, 0 to archive; 1 change refused by policies; 1 policy warning."
	if got := p.SummaryLine(); got != wantSummary {
		t.Fatalf("summary %q", got)
	}
	var txt, md, js bytes.Buffer
	if err := RenderText(&txt, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nRefused by policies (never applied; Kameleoon will still differ from Git):\n  ! pzllysfw2f/checkout (production): 1. update: exposure: rises by at most 25 points (flags/checkout.yaml:3)\n",
		"\nPolicy warnings (the changes are applied):\n  * pzllysfw2f/banner (staging): 2. update: owner: name an owner (flags/banner.yaml:1)\n",
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if strings.Contains(txt.String(), "Refused (Kameleoon") {
		t.Errorf("a policy refusal is listed with the planner's:\n%s", txt.String())
	}
	if err := RenderMarkdown(&md, p, MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"> [!CAUTION]\n> Changes flagsync.yaml's policies refuse; they are never applied, and Kameleoon will still differ from Git:\n> - `pzllysfw2f/checkout (production)` 1. update: exposure: rises by at most 25 points (<code>flags/checkout.yaml:3</code>)\n",
		"> [!WARNING]\n> Policy warnings (the changes are applied):\n> - `pzllysfw2f/banner (staging)` 2. update: **owner**: name an owner (<code>flags/banner.yaml:1</code>)\n",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary  Summary          `json:"summary"`
		Blocked  []Blocked        `json:"blocked"`
		Warnings []map[string]any `json:"warnings"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.Policy != 1 || doc.Summary.Warnings != 1 || doc.Summary.Blocked != 1 || len(doc.Blocked) != 1 || !reflect.DeepEqual(doc.Blocked[0], p.Blocked[0]) {
		t.Errorf("json summary %+v, blocked %+v", doc.Summary, doc.Blocked)
	}
	if len(doc.Warnings) != 1 || doc.Warnings[0]["environment"] != "staging" || doc.Warnings[0]["policy"] != "owner" || doc.Warnings[0]["line"] != 1.0 {
		t.Errorf("json warnings %+v", doc.Warnings)
	}

	// Without warnings, the JSON plan has no warnings key: plans without policies are as before.
	js.Reset()
	p.Warnings = nil
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), `"warnings"`) {
		t.Errorf("warnings key without warnings:\n%s", js.String())
	}
}
