package kload

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// TestDecodeValueMatchesEncodingJSON checks the direct decoder against the round trip
// through encoding/json it replaces, on every example flag and on values that exercise
// each kind of field.
func TestDecodeValueMatchesEncodingJSON(t *testing.T) {
	var values []map[string]any
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "examples", "flags", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := filepath.Glob(filepath.Join("..", "..", "..", "examples", "flags", "*.yaml"))
	for _, f := range append(files, top...) {
		if filepath.Base(f) == flagrepo.SettingsFile {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, diags := parseDocument(f, data, true, true)
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		values = append(values, doc.Value())
	}
	values = append(values, map[string]any{
		"featureKey":        "k",
		"attributionWindow": json.Number("1000"),
		"secondaryGoalIds":  []any{json.Number("1"), json.Number("2")},
		"environments": map[string]any{"production": map[string]any{
			"featureEnabled": true,
			"integrations":   map[string]any{"deliveryRules": []any{map[string]any{"a": json.Number("1.5"), "b": []any{nil, "x"}}}},
			"rolloutRules":   []any{map[string]any{"name": "r", "exposition": json.Number("59.5"), "release": map[string]any{"timeZone": "UTC"}}},
		}},
	})
	for i, v := range values {
		var got, want kmodel.Flag
		if err := diag.Decode(v, &got); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("value %d:\ngot  %+v\nwant %+v", i, got, want)
		}
	}
	var s kmodel.Settings
	if err := diag.Decode(map[string]any{"prune": "yes", "siteCode": "x"}, &s); err == nil || s.SiteCode != "x" {
		t.Errorf("wrong type: err %v, settings %+v; want an error and the other fields decoded", err, s)
	}
}
