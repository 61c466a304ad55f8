package plan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
)

// TestAwaitingApprovalInEveryRendering: changes waiting for approval are counted apart
// from refusals, named in the summary line, and listed in the text, Markdown and JSON
// renderings; a change that needs others shows which.
func TestAwaitingApprovalInEveryRendering(t *testing.T) {
	waiting := Blocked{Address: Address{Service: "Split", Scope: "ws-1", Key: "checkout", Environment: "Production"}, Kind: BlockedAwaitingApproval,
		ChangeRequest: "cr-4", Reason: "change request cr-4 awaits approval (UPDATE); not filed again while it is open"}
	missing := Blocked{Address: Address{Service: "Split", Scope: "ws-1", Key: "orphan"}, Kind: BlockedMissingDependency, Reason: "names flag nowhere, which does not exist"}
	p := Plan{Revision: "abc1234", Service: "Split", Unmanaged: []Address{}, Blocked: []Blocked{waiting, missing}, Changes: []Change{
		{Order: 1, Action: ActionUpdate, Address: Address{Service: "Split", Scope: "ws-1", Key: "gate", Environment: "Production"}, Request: api.Request{Method: "PATCH", Path: "/g"}, Reason: "r1"},
		{Order: 2, Action: ActionUpdate, Address: Address{Service: "Split", Scope: "ws-1", Key: "dep", Environment: "Production"}, Request: api.Request{Method: "PATCH", Path: "/d"}, Reason: "r2", After: []int{1}},
	}}
	s := p.Summary()
	if s.Blocked != 1 || s.AwaitingApproval != 1 {
		t.Fatalf("summary %+v", s)
	}
	wantLine := "Plan: 0 to create, 2 to update, 0 to archive; 1 change refused (Split will still differ from Git); 1 change awaiting approval in Split."
	if got := p.SummaryLine(); got != wantLine {
		t.Fatalf("summary line %q", got)
	}
	var txt, md, js bytes.Buffer
	if err := RenderText(&txt, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nAwaiting approval in Split (not written or filed again while the request is open):\n  ? ws-1/checkout (Production): change request cr-4",
		"PATCH /d (after 1)", "Refused (Split will still differ from Git):\n  ! ws-1/orphan: names flag nowhere"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if strings.Contains(txt.String(), "! ws-1/checkout") {
		t.Errorf("text lists the waiting change as refused:\n%s", txt.String())
	}
	if err := RenderMarkdown(&md, p, MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"> Awaiting approval in Split; flagsync does not write or file these again while the request is open:\n> - `ws-1/checkout (Production)`: change request cr-4", "`PATCH /d` (after 1)<br>"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Summary map[string]int `json:"summary"`
		Changes []struct {
			After []int `json:"after"`
		} `json:"changes"`
		Blocked []Blocked `json:"blocked"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Summary["awaitingApproval"] != 1 || out.Summary["blocked"] != 1 || len(out.Blocked) != 2 || out.Blocked[0].ChangeRequest != "cr-4" ||
		out.Blocked[0].Kind != BlockedAwaitingApproval || out.Changes[0].After != nil || len(out.Changes[1].After) != 1 {
		t.Errorf("json:\n%s", js.String())
	}
	// A plan whose only content waits for approval is not "No changes".
	only := Plan{Service: "Split", Blocked: []Blocked{waiting}}
	if got := only.SummaryLine(); got != "Plan: 0 to create, 0 to update, 0 to archive; 1 change awaiting approval in Split." {
		t.Errorf("only waiting: %q", got)
	}
}
