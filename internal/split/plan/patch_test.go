package splitplan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

func ptr[T any](v T) *T { return &v }

// serverForm is d as a Split server might hold it: the write shape plus members the
// server adds (name, environment, a condition's combiner, dates).
func serverForm(t *testing.T, d splitmodel.Definition) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(splitclient.EncodeDefinition(d), &m); err != nil {
		t.Fatal(err)
	}
	m["name"] = "paywall_beta"
	m["environment"] = map[string]any{"id": "env-1", "name": "Production"}
	m["creationTime"] = 1700000000000
	m["killed"] = d.Killed
	if rules, ok := m["rules"].([]any); ok {
		for _, r := range rules {
			r.(map[string]any)["condition"].(map[string]any)["combiner"] = "AND"
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTrip applies DefinitionPatch(live, want) to live's server form and checks that the
// result reads back as want and that a second patch is empty.
func roundTrip(t *testing.T, live, want splitmodel.Definition) jsonpatch.Patch {
	t.Helper()
	wire := serverForm(t, live)
	_, live, err := splitclient.DecodeDefinition(wire)
	if err != nil {
		t.Fatal(err)
	}
	p := DefinitionPatch(live, want)
	out, err := jsonpatch.Apply(wire, p.JSON())
	if err != nil {
		t.Fatalf("apply %s: %v", p.JSON(), err)
	}
	_, got, err := splitclient.DecodeDefinition(out)
	if err != nil {
		t.Fatal(err)
	}
	if again := DefinitionPatch(got, want); len(again) != 0 {
		t.Errorf("after %s, a second patch is not empty: %s", p.JSON(), again.JSON())
	}
	got.Wire = nil
	if w := splitmodel.Normalise(want); !reflect.DeepEqual(normaliseSets(got), normaliseSets(w)) {
		t.Errorf("after %s:\n got %+v\nwant %+v", p.JSON(), got, w)
	}
	return p
}

// normaliseSets sorts keys and segments, which are compared as sets.
func normaliseSets(d splitmodel.Definition) splitmodel.Definition {
	d.Wire = nil
	out := d
	out.Treatments = nil
	for _, tr := range d.Treatments {
		if c := toJSONBytes([]byte(tr.Configurations)); c != nil {
			tr.Configurations = string(encodeJSON(c))
		}
		tr.Keys = sortedCopy(tr.Keys)
		tr.Segments = sortedCopy(tr.Segments)
		out.Treatments = append(out.Treatments, tr)
	}
	return out
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func base() splitmodel.Definition {
	return splitmodel.Definition{
		Treatments:       []splitmodel.Treatment{{Name: "on"}, {Name: "off"}},
		DefaultTreatment: "off",
		Rules: []splitmodel.Rule{{
			Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "IN_SEGMENT", String: "beta"}}},
			Buckets:   []splitmodel.Bucket{{Treatment: "on", Size: 80}, {Treatment: "off", Size: 20}},
		}},
		DefaultRule: []splitmodel.Bucket{{Treatment: "on", Size: 50}, {Treatment: "off", Size: 50}},
	}
}

func TestDefinitionPatchShapes(t *testing.T) {
	tests := []struct {
		name string
		edit func(live, want *splitmodel.Definition)
		want string
	}{
		{"no change", func(l, w *splitmodel.Definition) {}, `[]`},
		{"kill", func(l, w *splitmodel.Definition) { w.Killed = true },
			`[{"op":"replace","path":"/killed","value":true}]`},
		{"limit exposure", func(l, w *splitmodel.Definition) { w.TrafficAllocation = ptr(50) },
			`[{"op":"replace","path":"/trafficAllocation","value":50}]`},
		{"baseline added", func(l, w *splitmodel.Definition) { w.BaselineTreatment = "off" },
			`[{"op":"add","path":"/baselineTreatment","value":"off"}]`},
		{"keys to a treatment without keys", func(l, w *splitmodel.Definition) { w.Treatments[0].Keys = []string{"3"} },
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"add","path":"/treatments/0/keys","value":["3"]}]`},
		{"replace a key", func(l, w *splitmodel.Definition) {
			l.Treatments[0].Keys = []string{"3", "4"}
			w.Treatments[0].Keys = []string{"7", "4"}
		}, `[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"test","path":"/treatments/0/keys/0","value":"3"},{"op":"replace","path":"/treatments/0/keys/0","value":"7"}]`},
		{"remove two keys from the highest index down", func(l, w *splitmodel.Definition) {
			l.Treatments[1].Keys = []string{"a", "b", "c", "d"}
			w.Treatments[1].Keys = []string{"a", "c"}
		}, `[{"op":"test","path":"/treatments/1/name","value":"off"},{"op":"test","path":"/treatments/1/keys/3","value":"d"},{"op":"remove","path":"/treatments/1/keys/3"},{"op":"test","path":"/treatments/1/keys/1","value":"b"},{"op":"remove","path":"/treatments/1/keys/1"}]`},
		{"key order alone is no change", func(l, w *splitmodel.Definition) {
			l.Treatments[0].Keys = []string{"a", "b"}
			w.Treatments[0].Keys = []string{"b", "a"}
		}, `[]`},
		{"remove a rule", func(l, w *splitmodel.Definition) { w.Rules = nil },
			`[{"op":"test","path":"/rules/0","value":{"buckets":[{"size":80,"treatment":"on"},{"size":20,"treatment":"off"}],"condition":{"combiner":"AND","matchers":[{"string":"beta","type":"IN_SEGMENT"}]}}},{"op":"remove","path":"/rules/0"}]`},
		{"treatments reordered", func(l, w *splitmodel.Definition) { w.Treatments[0], w.Treatments[1] = w.Treatments[1], w.Treatments[0] },
			`[{"op":"test","path":"/treatments/1/name","value":"off"},{"op":"move","path":"/treatments/0","from":"/treatments/1"}]`},
		{"a treatment removed and one added", func(l, w *splitmodel.Definition) {
			l.Treatments = append(l.Treatments, splitmodel.Treatment{Name: "v2"})
			w.Treatments = []splitmodel.Treatment{{Name: "on"}, {Name: "off"}, {Name: "v3", Description: "third"}, {Name: "v4"}}
		}, `[{"op":"test","path":"/treatments/2/name","value":"v2"},{"op":"replace","path":"/treatments/2/name","value":"v3"},{"op":"add","path":"/treatments/2/description","value":"third"},{"op":"add","path":"/treatments/-","value":{"name":"v4"}}]`},
		{"a rule's bucket sizes", func(l, w *splitmodel.Definition) {
			w.Rules = []splitmodel.Rule{{Condition: l.Rules[0].Condition, Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 60}, {Treatment: "off", Size: 40}}}}
		}, `[{"op":"test","path":"/rules/0/buckets/0/size","value":80},{"op":"replace","path":"/rules/0/buckets/0/size","value":60},{"op":"test","path":"/rules/0/buckets/1/size","value":20},{"op":"replace","path":"/rules/0/buckets/1/size","value":40}]`},
		{"configurations compared as JSON", func(l, w *splitmodel.Definition) {
			l.Treatments[0].Configurations = `{"a": 1, "b": [true]}`
			w.Treatments[0].Configurations = `{"b":[true],"a":1}`
		}, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, want := base(), base()
			want.Treatments = append([]splitmodel.Treatment(nil), want.Treatments...)
			tt.edit(&live, &want)
			p := roundTrip(t, live, want)
			if got := string(p.JSON()); got != tt.want {
				t.Errorf("patch =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// encodeJSON encodes v without HTML escaping and without a trailing newline, as request
// bodies are.
func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
