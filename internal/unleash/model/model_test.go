package unleashmodel_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	"github.com/flagsync/flagsync/schema"
)

func TestFixWeightsIsUnleashs(t *testing.T) {
	// Unleash's fixVariantWeights: a fix 200, three variable → 267, 267, 266 in the order
	// sent (the remainder goes to the first variable ones).
	vs := []unleashmodel.Variant{
		{Name: "c", WeightType: "variable"}, {Name: "a", WeightType: "fix", Weight: 200},
		{Name: "b", WeightType: "variable"}, {Name: "d", WeightType: "variable"},
	}
	var got []string
	for _, v := range unleashmodel.FixWeights(vs) {
		got = append(got, fmt.Sprintf("%s:%d", v.Name, v.Weight))
	}
	if want := []string{"c:267", "a:200", "b:267", "d:266"}; !slices.Equal(got, want) {
		t.Errorf("FixWeights = %v, want %v", got, want)
	}
	// Compared, variants are sorted by name with variable weights left out.
	got = nil
	for _, v := range unleashmodel.NormaliseVariants(vs) {
		got = append(got, fmt.Sprintf("%s:%d:%s:%s", v.Name, v.Weight, v.WeightType, v.Stickiness))
	}
	if want := []string{"a:200:fix:default", "b:0:variable:default", "c:0:variable:default", "d:0:variable:default"}; !slices.Equal(got, want) {
		t.Errorf("NormaliseVariants = %v, want %v", got, want)
	}
}

func TestNormaliseStrategyFillsUnleashDefaults(t *testing.T) {
	s := unleashmodel.NormaliseStrategy(unleashmodel.Strategy{Name: "flexibleRollout", Parameters: map[string]string{"rollout": "5"},
		Segments: []string{"b", "a", "b"}}, "checkout")
	if s.Parameters["groupId"] != "checkout" || s.Parameters["stickiness"] != "default" || s.Parameters["rollout"] != "5" ||
		!slices.Equal(s.Segments, []string{"a", "b"}) {
		t.Errorf("normalised = %+v", s)
	}
	if d := unleashmodel.NormaliseStrategy(unleashmodel.Strategy{Name: "default", Parameters: map[string]string{}}, "x"); d.Parameters != nil {
		t.Errorf("empty parameters = %#v, want nil", d.Parameters)
	}
}

func TestMatchStrategies(t *testing.T) {
	s := func(title, name string) unleashmodel.Strategy { return unleashmodel.Strategy{Title: title, Name: name} }
	for _, tc := range []struct {
		name          string
		desired, live []unleashmodel.Strategy
		want          []int
	}{
		{"titled, moved", []unleashmodel.Strategy{s("b", "default"), s("a", "default")}, []unleashmodel.Strategy{s("a", "default"), s("b", "default")}, []int{1, 0}},
		{"titled, new and gone", []unleashmodel.Strategy{s("c", "default")}, []unleashmodel.Strategy{s("a", "default")}, []int{-1}},
		{"untitled removed in the middle", []unleashmodel.Strategy{s("", "x"), s("", "z")}, []unleashmodel.Strategy{s("", "x"), s("", "y"), s("", "z")}, []int{0, 2}},
		{"untitled inserted", []unleashmodel.Strategy{s("", "x"), s("", "n"), s("", "z")}, []unleashmodel.Strategy{s("", "x"), s("", "z")}, []int{0, -1, 1}},
		{"untitled edited in place", []unleashmodel.Strategy{s("", "x"), s("", "y2")}, []unleashmodel.Strategy{s("", "x"), s("", "y")}, []int{0, 1}},
		{"first title replaces", []unleashmodel.Strategy{s("t", "x")}, []unleashmodel.Strategy{s("", "x")}, []int{-1}},
		{"duplicate live titles: the first", []unleashmodel.Strategy{s("a", "x")}, []unleashmodel.Strategy{s("a", "y"), s("a", "x")}, []int{0}},
	} {
		if got := unleashmodel.MatchStrategies(tc.desired, tc.live); !slices.Equal(got, tc.want) {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIgnorePaths(t *testing.T) {
	for _, tc := range []struct {
		path    string
		matches []string
		misses  []string
	}{
		{"description", []string{"description"}, []string{"type"}},
		{"environments.*.enabled", []string{"environments.production.enabled"}, []string{"environments.production.strategies"}},
		{"environments.production.strategies", []string{"environments.production.strategies"}, []string{"environments.development.strategies"}},
		{"environments.*.strategies[title=beta].parameters", []string{"environments.production.strategies[title=beta].parameters.rollout"},
			[]string{"environments.production.strategies[title=gamma].parameters.rollout", "environments.production.strategies[0].parameters"}},
		{"environments.*.strategies[1].constraints", []string{"environments.x.strategies[1].constraints"}, []string{"environments.x.strategies[0].constraints"}},
		{`environments.*.strategies[title="a [b]"].variants`, []string{`environments.x.strategies[title="a [b]"].variants`}, nil},
		{"environments.*.strategies[*].segments", []string{"environments.x.strategies[title=t].segments", "environments.x.strategies[3].segments"}, []string{"environments.x.strategies"}},
	} {
		p, err := unleashmodel.ParseIgnorePath(tc.path)
		if err != nil {
			t.Errorf("ParseIgnorePath(%q): %v", tc.path, err)
			continue
		}
		for _, f := range tc.matches {
			if !p.Matches(f) {
				t.Errorf("%q does not match %q", tc.path, f)
			}
		}
		for _, f := range tc.misses {
			if p.Matches(f) {
				t.Errorf("%q matches %q", tc.path, f)
			}
		}
	}
}

func TestValidateNumbersAndVersions(t *testing.T) {
	for v, ok := range map[string]bool{"1.2.3": true, "2.0.0-beta.1": true, "1.0.0+build.5": true, "1.2": false, "01.2.3": false, "v1.2.3": false} {
		if unleashmodel.StrictSemver(v) != ok {
			t.Errorf("StrictSemver(%q) = %t", v, !ok)
		}
	}
	ps := unleashmodel.ValidateStrategy(&unleashmodel.Strategy{Name: "flexibleRollout", Parameters: map[string]string{"rollout": "100"}})
	if len(ps) != 0 {
		t.Errorf("rollout 100: %v", ps)
	}
	ps = unleashmodel.ValidateStrategy(&unleashmodel.Strategy{Name: "flexibleRollout", Parameters: map[string]string{"rollout": "-1"}})
	if len(ps) != 1 {
		t.Errorf("rollout -1: %v", ps)
	}
}

// TestSchemaEnumsAreTheModels: the flag schema's lists of feature types, strategy types
// and constraint operators (which the loader's diagnostics and their "did you mean" hints
// come from) are the model's, which the semantic checks use.
func TestSchemaEnumsAreTheModels(t *testing.T) {
	var root struct {
		Properties struct {
			Type         struct{ Enum []string }
			Environments struct {
				AdditionalProperties struct {
					Properties struct {
						Strategies struct {
							Items struct {
								Properties struct {
									Name        struct{ Enum []string }
									Constraints struct {
										Items struct {
											Properties struct {
												Operator struct{ Enum []string }
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(schema.UnleashFlag(), &root); err != nil {
		t.Fatal(err)
	}
	strategy := root.Properties.Environments.AdditionalProperties.Properties.Strategies.Items.Properties
	for _, tc := range []struct {
		what         string
		schema, want []string
	}{
		{"feature types", root.Properties.Type.Enum, unleashmodel.FeatureTypes},
		{"strategy types", strategy.Name.Enum, slices.Collect(maps.Keys(unleashmodel.StrategyTypes))},
		{"operators", strategy.Constraints.Items.Properties.Operator.Enum, slices.Collect(maps.Keys(unleashmodel.Operators))},
	} {
		got, want := slices.Sorted(slices.Values(tc.schema)), slices.Sorted(slices.Values(tc.want))
		if len(got) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: the schema has %v, the model %v", tc.what, got, want)
		}
	}
}
