package kplan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
)

func TestMarkdownStaysUnderLimit(t *testing.T) {
	desired, live := benchInputs(400)
	desired.Settings.Ignore = []string{"environments.*.rolloutRules[*].exposition"} // 40 notes
	p := mustCompute(t, desired, live, Options{})
	if len(p.Notes) == 0 {
		t.Fatal("no notes to fold")
	}
	tests := []struct {
		limit int
		note  string // what the fold note must say; "" when nothing is folded
	}{
		{1_000_000, ""},
		{60_000, "field details are left out"},
		{10_000, "only the flags are listed"},
		{1_500, "only the flags are listed"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := plan.RenderMarkdown(&buf, p, plan.MarkdownOptions{MaxChars: tt.limit}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		switch {
		case len(out) > tt.limit:
			t.Errorf("limit %d: %d characters", tt.limit, len(out))
		case lines[0] != plan.MarkdownMarker:
			t.Errorf("limit %d: first line %q, want the marker", tt.limit, lines[0])
		case lines[len(lines)-1] != p.SummaryLine():
			t.Errorf("limit %d: last line %q, want the summary line", tt.limit, lines[len(lines)-1])
		case tt.note == "" && strings.Contains(out, "Folded"):
			t.Errorf("limit %d: folded although everything fits", tt.limit)
		case tt.note != "" && !strings.Contains(out, tt.note):
			t.Errorf("limit %d: no note saying %q", tt.limit, tt.note)
		}
	}
}

// TestJSONShape checks the documented shape: every key present, bodies embedded as JSON.
func TestJSONShape(t *testing.T) {
	want := baseFlag()
	want.FeatureKey = "fresh"
	p := mustCompute(t, desiredOf(want, baseFlag()), []kmodel.Flag{liveOf(baseFlag()), {SiteCode: "pzllysfw2f", FeatureKey: "other", Name: "x"}}, Options{})
	var buf bytes.Buffer
	if err := plan.RenderJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		FormatVersion int                 `json:"format_version"`
		Revision      *string             `json:"revision"`
		Summary       map[string]int      `json:"summary"`
		Changes       []map[string]any    `json:"changes"`
		Unmanaged     []map[string]string `json:"unmanaged"`
		Blocked       []any               `json:"blocked"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Revision == nil || *doc.Revision != "abc1234" || doc.Blocked == nil {
		t.Fatalf("revision or blocked missing:\n%s", buf.String())
	}
	if doc.FormatVersion != plan.JSONFormatVersion {
		t.Errorf("format_version %d, want %d", doc.FormatVersion, plan.JSONFormatVersion)
	}
	for _, k := range []string{"create", "update", "archive", "unmanaged", "blocked"} {
		if _, ok := doc.Summary[k]; !ok {
			t.Errorf("summary has no %q", k)
		}
	}
	if doc.Summary["create"] != 1 || len(doc.Changes) != 1 || len(doc.Unmanaged) != 1 || doc.Unmanaged[0]["key"] != "other" {
		t.Fatalf("unexpected plan:\n%s", buf.String())
	}
	c := doc.Changes[0]
	for _, k := range []string{"order", "action", "service", "scope", "key", "environment", "request", "fields", "reason"} {
		if _, ok := c[k]; !ok {
			t.Errorf("change has no %q", k)
		}
	}
	if _, ok := c["request"].(map[string]any)["body"].(map[string]any); !ok {
		t.Errorf("request body is not embedded JSON: %v", c["request"])
	}
}
