package splitmodel

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ptr := func(v int) *int { return &v }
	base := func() Definition {
		return Definition{
			Treatments:       []Treatment{{Name: "on", Keys: []string{"1"}}, {Name: "off"}},
			DefaultTreatment: "off",
			Rules: []Rule{{Condition: Condition{Matchers: []Matcher{{Type: "IN_SEGMENT", String: "beta"}}},
				Buckets: []Bucket{{Treatment: "on", Size: 60}, {Treatment: "off", Size: 40}}}},
		}
	}
	tests := []struct {
		name string
		edit func(d *Definition)
		want []string
	}{
		{"valid", func(d *Definition) {}, nil},
		{"no treatments", func(d *Definition) { d.Treatments = nil; d.Rules = nil }, []string{"treatments: at least 2 treatments are required, got 0"}},
		{"one treatment", func(d *Definition) {
			d.Treatments = d.Treatments[1:]
			d.Rules = nil
		}, []string{"treatments: at least 2 treatments are required, got 1"}},
		{"21 treatments", func(d *Definition) {
			for i := range 19 {
				d.Treatments = append(d.Treatments, Treatment{Name: fmt.Sprintf("t%d", i)})
			}
		}, []string{"treatments: at most 20 treatments are allowed, got 21"}},
		{"limits of a treatment", func(d *Definition) {
			for i := range MaxKeysPerTreatment {
				d.Treatments[1].Keys = append(d.Treatments[1].Keys, fmt.Sprintf("k%d", i))
			}
			d.Treatments[0].Configurations = `{"text": "` + strings.Repeat("é", 510) + `"}` // 1032 bytes, 522 characters
		}, []string{
			"treatments[0].configurations: is 1032 bytes; a treatment's configuration may hold at most 1024 (1 KB)",
		}},
		{"over the limits of a treatment", func(d *Definition) {
			for i := range MaxKeysPerTreatment + 1 {
				d.Treatments[1].Keys = append(d.Treatments[1].Keys, fmt.Sprintf("k%d", i))
			}
			d.Treatments[0].Configurations = `{"text": "` + strings.Repeat("x", 1024-12) + `"}`
		}, []string{
			"treatments[1].keys: 501 keys; a treatment may target at most 500 keys individually (use a segment for more)",
		}},
		{"numeric treatment names", func(d *Definition) {
			d.Treatments[0].Name, d.Treatments[1].Name = "1", "2"
			d.DefaultTreatment = "2"
			d.Rules[0].Buckets = []Bucket{{Treatment: "1", Size: 100}}
		}, nil},
		{"dependencies", func(d *Definition) {
			d.Rules[0].Condition.Matchers = append(d.Rules[0].Condition.Matchers, Matcher{Type: "IN_SPLIT", Depends: &Depends{SplitName: "9x", Treatment: "on"}})
		}, []string{`rules[0].condition.matchers[1]: depends.splitName "9x" is not a flag name`}},
		{"unknown references", func(d *Definition) {
			d.DefaultTreatment, d.BaselineTreatment = "maybe", "perhaps"
			d.Rules[0].Buckets[1].Treatment = "of"
			d.DefaultRule = []Bucket{{Treatment: "x", Size: 100}}
		}, []string{
			`defaultTreatment: unknown treatment "maybe"; the treatments are on, off`,
			`baselineTreatment: unknown treatment "perhaps"; the treatments are on, off`,
			`rules[0].buckets[1].treatment: unknown treatment "of"; the treatments are on, off`,
			`defaultRule[0].treatment: unknown treatment "x"; the treatments are on, off`,
		}},
		{"problems of one rule, in order", func(d *Definition) {
			d.Rules[0].Condition.Matchers = []Matcher{{Type: "LIKE"}}
			d.Rules[0].Buckets[1].Treatment = "of"
			d.Rules[0].Buckets[0].Size = 101
		}, []string{
			`rules[0].condition.matchers[0]: unknown matcher type "LIKE"`,
			`rules[0].buckets[1].treatment: unknown treatment "of"; the treatments are on, off`,
			"rules[0].buckets[0].size: must be from 0 to 100, got 101",
			"rules[0].buckets: bucket sizes add up to 141; they must add up to 100",
		}},
		{"sizes", func(d *Definition) { d.Rules[0].Buckets[0].Size = 101; d.TrafficAllocation = ptr(-1) }, []string{
			"trafficAllocation: must be from 0 to 100, got -1",
			"rules[0].buckets[0].size: must be from 0 to 100, got 101",
			"rules[0].buckets: bucket sizes add up to 141; they must add up to 100",
		}},
		{"names", func(d *Definition) {
			d.Treatments = append(d.Treatments, Treatment{Name: "on"}, Treatment{Name: "control"}, Treatment{Name: "9lives"}, Treatment{Name: "_x"})
		}, []string{
			`treatments[2].name: duplicate treatment "on" (also treatments[0])`,
			`treatments[3].name: "control" is a reserved word and cannot name a treatment`,
			`treatments[5].name: "_x" is not a treatment name: start with a letter or a digit, then letters, digits, '_' or '-'`,
		}},
		{"targets and configurations", func(d *Definition) {
			d.Treatments[1].Keys = []string{"1"}
			d.Treatments[0].Configurations = "{not json"
		}, []string{
			"treatments[0].configurations: must be JSON text",
			`treatments[1].keys[0]: key "1" is already targeted by treatments[0]`,
		}},
		{"matchers", func(d *Definition) {
			d.Rules[0].Condition.Matchers = []Matcher{{Type: "EQUAL_NUMBER", String: "5"}, {Type: "LIKE"}, {Type: "BETWEEN_NUMBER", Attribute: "a", Between: &Between{From: 2, To: 1}}}
		}, []string{
			`rules[0].condition.matchers[0]: a EQUAL_NUMBER matcher needs "number"`,
			`rules[0].condition.matchers[0]: a EQUAL_NUMBER matcher takes "number", not "string"`,
			"rules[0].condition.matchers[0]: a EQUAL_NUMBER matcher needs an attribute",
			`rules[0].condition.matchers[1]: unknown matcher type "LIKE"`,
			"rules[0].condition.matchers[2]: between.from must not be greater than between.to",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base()
			tt.edit(&d)
			var got []string
			for _, p := range Validate(&d) {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDependencyHelpers(t *testing.T) {
	d := Definition{Rules: []Rule{
		{Condition: Condition{Matchers: []Matcher{{Type: "IN_SPLIT", Depends: &Depends{SplitName: "b", Treatment: "on"}}, {Type: "IN_SEGMENT", String: "s"}}}},
		{Condition: Condition{Matchers: []Matcher{{Type: "IN_SPLIT", Depends: &Depends{SplitName: "a", Treatment: "on"}}, {Type: "IN_SPLIT", Depends: &Depends{SplitName: "b", Treatment: "off"}}}}},
	}}
	if got := d.DependencyNames(); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("DependencyNames = %v", got)
	}
	if got := len(d.Dependencies()); got != 3 {
		t.Errorf("Dependencies = %d, want 3", got)
	}
	if c := FindCycle(map[string][]string{"a": {"b"}, "b": {"c"}, "c": nil}); c != nil {
		t.Errorf("acyclic graph: cycle %v", c)
	}
	if c := FindCycle(map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}); !slices.Equal(c, []string{"a", "b", "c", "a"}) {
		t.Errorf("cycle = %v", c)
	}
	order, ok := TopologicalOrder([]string{"a", "b", "c", "d"}, map[string][]string{"a": {"c"}, "b": {"d", "x"}})
	if !ok || !slices.Equal(order, []string{"c", "a", "d", "b"}) {
		t.Errorf("order = %v %t", order, ok)
	}
	order, ok = TopologicalOrder([]string{"a", "b", "c"}, map[string][]string{"a": {"b"}, "b": {"a"}})
	if ok || !slices.Equal(order, []string{"c", "a", "b"}) {
		t.Errorf("cyclic order = %v %t", order, ok)
	}
}
