package plan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
)

// TestRefusedChangesInEveryRendering: refused archives keep the mass-archive guard's
// wording and section; other refusals get their own, in the summary line of every
// rendering and in the text and Markdown sections, and the JSON keeps their kind.
func TestRefusedChangesInEveryRendering(t *testing.T) {
	archive := Blocked{Address: Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "promo_0"}, Reason: "removed from Git; archiving refused by the mass-archive guard (more than 5 flags)"}
	inUse := Blocked{Address: Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "checkout"}, Kind: BlockedVariationInUse, Variation: "on",
		Environments: []string{"development"}, Reason: "variation \"on\" is still used by environment development"}
	tests := []struct {
		name        string
		blocked     []Blocked
		wantSummary string
		sections    []string // text headings present
	}{
		{"mass archive", []Blocked{archive},
			"Plan: 0 to create, 0 to update, 0 to archive; 1 archive refused by the mass-archive guard.",
			[]string{"Refused by the mass-archive guard:"}},
		{"variation in use", []Blocked{inUse, inUse},
			"Plan: 0 to create, 0 to update, 0 to archive; 2 changes refused (Kameleoon will still differ from Git).",
			[]string{"Refused (Kameleoon will still differ from Git):"}},
		{"both", []Blocked{inUse, archive},
			"Plan: 0 to create, 0 to update, 0 to archive; 1 archive refused by the mass-archive guard; 1 change refused (Kameleoon will still differ from Git).",
			[]string{"Refused (Kameleoon will still differ from Git):", "Refused by the mass-archive guard:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Plan{Revision: "abc1234", Service: "Kameleoon", Changes: []Change{}, Unmanaged: []Address{}, Blocked: tt.blocked}
			if got := p.SummaryLine(); got != tt.wantSummary {
				t.Fatalf("summary %q, want %q", got, tt.wantSummary)
			}
			var txt, md, js bytes.Buffer
			if err := RenderText(&txt, p, TextOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.sections {
				if !strings.Contains(txt.String(), "\n"+h+"\n") {
					t.Errorf("text lacks the section %q:\n%s", h, txt.String())
				}
			}
			if n := strings.Count(txt.String(), "\n  ! "); n != len(tt.blocked) {
				t.Errorf("text lists %d refusals, want %d:\n%s", n, len(tt.blocked), txt.String())
			}
			if err := RenderMarkdown(&md, p, MarkdownOptions{}); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(md.String(), "> [!WARNING]"); n != len(tt.sections) {
				t.Errorf("markdown has %d warnings, want %d:\n%s", n, len(tt.sections), md.String())
			}
			if !strings.HasSuffix(md.String(), "\n"+mdEscape(tt.wantSummary)+"\n") {
				t.Errorf("markdown does not end with the summary line:\n%s", md.String())
			}
			if err := RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Blocked []Blocked `json:"blocked"`
			}
			if err := json.Unmarshal(js.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Blocked, tt.blocked) {
				t.Errorf("json blocked %+v, want %+v", got.Blocked, tt.blocked)
			}
		})
	}
}

func TestTextColour(t *testing.T) {
	// A plan as a vendor's planner makes it: one flag renamed.
	p := Plan{Revision: "abc1234", Service: "Kameleoon", Changes: []Change{{
		Order: 1, Action: ActionUpdate, Address: Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "checkout"},
		Request: api.Request{Method: "PATCH", Path: "/feature-flags/pzllysfw2f/checkout", Body: []byte(`{"name":"Renamed"}`)},
		Fields:  []FieldChange{{Path: "name", Before: "Checkout", After: "Renamed"}},
		Reason:  "Git changes name",
	}}, Unmanaged: []Address{}}
	for _, colour := range []bool{false, true} {
		var buf bytes.Buffer
		if err := RenderText(&buf, p, TextOptions{Color: colour}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), "\x1b["); got != colour {
			t.Errorf("Color %t: ANSI escapes present = %t:\n%s", colour, got, buf.String())
		}
		if !strings.HasSuffix(buf.String(), p.SummaryLine()+ansiResetIf(colour)+"\n") {
			t.Errorf("Color %t: does not end with the summary line:\n%q", colour, buf.String())
		}
	}
}

func ansiResetIf(colour bool) string {
	if colour {
		return ansiReset
	}
	return ""
}
