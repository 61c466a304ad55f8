package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/flagsync/flagsync/schema"
)

func TestSplitSchemasAreTheFilesAndCompile(t *testing.T) {
	for name, embedded := range map[string][]byte{schema.SplitFlagName: schema.SplitFlag(), schema.SplitSettingsName: schema.SplitSettings()} {
		onDisk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(onDisk, embedded) {
			t.Errorf("embedded %s differs from the file", name)
		}
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		if err := c.AddResource("mem://"+name, bytes.NewReader(embedded)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Compile("mem://" + name); err != nil {
			t.Errorf("compile %s: %v", name, err)
		}
		// Every value has help for editors.
		var root any
		if err := json.Unmarshal(embedded, &root); err != nil {
			t.Fatal(err)
		}
		var walk func(v any, at string)
		walk = func(v any, at string) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			if _, isRef := m["$ref"]; !isRef {
				if d, _ := m["description"].(string); strings.TrimSpace(d) == "" {
					t.Errorf("%s: no description at %s", name, at)
				}
			}
			for _, k := range []string{"properties", "$defs"} {
				if sub, ok := m[k].(map[string]any); ok {
					for n, p := range sub {
						walk(p, at+"/"+k+"/"+n)
					}
				}
			}
			for _, k := range []string{"items", "additionalProperties", "propertyNames"} {
				walk(m[k], at+"/"+k)
			}
		}
		walk(root, "#")
	}
}
