package promote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// TestSchemaFragment checks schema/fragments/promote.schema.json against the settings of
// every golden case (valid) and settings ParseSettings refuses (invalid).
func TestSchemaFragment(t *testing.T) {
	b, err := os.ReadFile("../../schema/fragments/promote.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("promote.schema.json", strings.NewReader(string(b))); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("promote.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/*/settings.yaml")
	checked := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(src, &v); err != nil {
			t.Fatal(err)
		}
		if p, ok := v["promote"]; ok {
			checked++
			if err := sch.Validate(jsonKeys(p)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no case has promote settings")
	}
	for _, src := range []string{`{segmnts: {}}`, `{keep: [1]}`, `{segments: {staging: [1]}}`, `{keep: ""}`} {
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		if sch.Validate(jsonKeys(v)) == nil {
			t.Errorf("%s validates", src)
		}
	}
}

// jsonKeys turns the integer map keys yaml.v3 decodes (403694: 403700) into strings, as
// JSON and editors read them.
func jsonKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonKeys(e)
		}
		return t
	case map[any]any:
		m := map[string]any{}
		for k, e := range t {
			m[strings.TrimSpace(yamlText(k))] = jsonKeys(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonKeys(e)
		}
	}
	return v
}

func yamlText(k any) string {
	b, _ := yaml.Marshal(k)
	return string(b)
}
