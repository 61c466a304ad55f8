package unleashwire_test

import (
	"encoding/json"
	"testing"

	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

func TestStrategyFromWire(t *testing.T) {
	var f unleashwire.Feature
	err := json.Unmarshal([]byte(`{"name":"x","environments":[{"name":"production","enabled":true,"strategies":[
		{"id":"02","name":"default","title":null,"sortOrder":1,"parameters":{},"constraints":[],"segments":[],"variants":[]},
		{"id":"01","name":"flexibleRollout","title":"t","sortOrder":1,"parameters":{"rollout":25,"stickiness":"default"},
		 "constraints":[{"values":[],"value":"5","operator":"NUM_GT","contextName":"n"}],"segments":[7],"variants":[]},
		{"id":"00","name":"default","title":"","sortOrder":0,"parameters":null,"constraints":[],"segments":[],"variants":[]}]}]}`), &f)
	if err != nil {
		t.Fatal(err)
	}
	m := unleashmodel.Flag{Name: "x"}
	if err := unleashwire.SetStrategies(&m, f, map[int]string{7: "beta"}); err != nil {
		t.Fatal(err)
	}
	ss := m.Environments["production"].Strategies
	// Sort order, then id for a tie; a number parameter read as its text; segments named.
	if len(ss) != 3 || ss[0].ID != "00" || ss[1].ID != "01" || ss[2].ID != "02" ||
		ss[1].Parameters["rollout"] != "25" || ss[1].Segments[0] != "beta" || ss[1].Constraints[0].Value != "5" || ss[1].Title != "t" {
		t.Errorf("strategies = %+v", ss)
	}
	if err := unleashwire.SetStrategies(&m, f, nil); err == nil {
		t.Error("a segment id without a name was accepted")
	}
}

func TestRequestsAreExact(t *testing.T) {
	s := unleashmodel.Strategy{Name: "default", Segments: []string{"b", "a"},
		Variants: []unleashmodel.Variant{{Name: "y"}, {Name: "x"}, {Name: "z", WeightType: "fix", Weight: 1}}}
	r := unleashwire.AddStrategyRequest("default", "flag", "production", &s, map[string]int{"a": 2, "b": 1}, 3)
	want := `{"name":"default","title":"","disabled":false,"sortOrder":3,"parameters":{},"constraints":[],"segments":[1,2],` +
		`"variants":[{"name":"y","weight":500,"weightType":"variable","stickiness":"default"},{"name":"x","weight":499,"weightType":"variable","stickiness":"default"},` +
		`{"name":"z","weight":1,"weightType":"fix","stickiness":"default"}]}`
	if r.Method != "POST" || r.Path != "/api/admin/projects/default/features/flag/environments/production/strategies" || string(r.Body) != want {
		t.Errorf("request = %s %s %s", r.Method, r.Path, r.Body)
	}
	tags := unleashwire.TagsRequest("flag", []string{"simple:a b"}, nil)
	if string(tags.Body) != `{"addedTags":[{"type":"simple","value":"a b"}],"removedTags":[]}` {
		t.Errorf("tags = %s", tags.Body)
	}
}
