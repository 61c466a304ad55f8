package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// TestSchemaFragment checks schema/fragments/policies.schema.json against the documented
// examples (valid) and the shape errors ParseYAML reports (invalid), so that editors and
// validate agree.
func TestSchemaFragment(t *testing.T) {
	const path = "../../schema/fragments/policies.schema.json"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("policies.schema.json", strings.NewReader(string(b))); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("policies.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var all []any
	for _, s := range docExamples(t) {
		m := map[string]any{"name": s.Name, "expr": s.Expr}
		for k, v := range map[string]string{"level": s.Level, "message": s.Message, "messageExpr": s.MessageExpr} {
			if v != "" {
				m[k] = v
			}
		}
		all = append(all, m)
	}
	if err := sch.Validate(all); err != nil {
		t.Errorf("the documented examples do not validate: %v", err)
	}
	for src, want := range map[string]bool{
		`[{name: a, expr: "true", message: m}]`:                      true,
		`[{name: a, expr: "true", messageExpr: '"m"', level: warn}]`: true,
		`[{name: a, expr: "true"}]`:                                  false,
		`[{name: a, message: m}]`:                                    false,
		`[{name: a, expr: "true", message: m, level: error}]`:        false,
		`[{name: a, expr: "true", message: m, colour: red}]`:         false,
		`{name: a}`: false,
	} {
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); (err == nil) != want {
			t.Errorf("%s: valid = %v, want %v (%v)", src, err == nil, want, err)
		}
	}
}
