package schema_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/flagsync/flagsync/schema"
)

// TestSettingsHoldTheFragments: every settings schema's policies and promote are the
// fragments in schema/fragments (which the policy and promote packages test), so that
// editors and flagsync agree whatever the vendor.
func TestSettingsHoldTheFragments(t *testing.T) {
	for _, name := range []string{"policies", "promote"} {
		b, err := os.ReadFile("fragments/" + name + ".schema.json")
		if err != nil {
			t.Fatal(err)
		}
		var frag map[string]any
		if err := json.Unmarshal(b, &frag); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"$schema", "title", "description"} {
			delete(frag, k)
		}
		for file, data := range map[string][]byte{schema.SettingsName: schema.Settings(), schema.SplitSettingsName: schema.SplitSettings(),
			schema.UnleashSettingsName: schema.UnleashSettings()} {
			var s struct {
				Properties map[string]map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatal(err)
			}
			got := s.Properties[name]
			if got["description"] == nil {
				t.Errorf("%s: properties.%s has no description", file, name)
			}
			delete(got, "description")
			if !reflect.DeepEqual(got, frag) {
				t.Errorf("%s: properties.%s differs from fragments/%s.schema.json", file, name, name)
			}
		}
	}
}
