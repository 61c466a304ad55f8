package splitsandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

// choices reads fuzz bytes as a stream of small choices (zero when they run out).
type choices struct{ b []byte }

func (c *choices) next(n int) int {
	if len(c.b) == 0 || n <= 0 {
		return 0
	}
	v := int(c.b[0]) % n
	c.b = c.b[1:]
	return v
}

func (c *choices) subset(pool []string) []string {
	var out []string
	for _, s := range pool {
		if c.next(2) == 1 {
			out = append(out, s)
		}
	}
	if c.next(2) == 1 { // order matters for the patch, not for the model
		slices.Reverse(out)
	}
	return out
}

// definition builds a definition from fuzz bytes: treatments from a small pool of names
// (so that two definitions share some), keys and segments from small pools, rules from a
// few shapes. It need not be valid for Split: the patch property holds for any pair.
func definition(data []byte) splitmodel.Definition {
	c := &choices{b: data}
	pool := []string{"on", "off", "v1", "v2", "v3", "beta"}
	start := c.next(len(pool))
	n := 1 + c.next(4)
	var d splitmodel.Definition
	for i := range n {
		t := splitmodel.Treatment{Name: pool[(start+i*(1+c.next(2)))%len(pool)]}
		if slices.ContainsFunc(d.Treatments, func(x splitmodel.Treatment) bool { return x.Name == t.Name }) {
			continue
		}
		t.Keys = c.subset([]string{"1", "2", "3", "4", "5", "6"})
		t.Segments = c.subset([]string{"a", "b", "c"})
		t.Description = []string{"", "", "first", "second"}[c.next(4)]
		t.Configurations = []string{"", `{"a":1}`, `{"a": 1}`, `{"b":[true]}`}[c.next(4)]
		d.Treatments = append(d.Treatments, t)
	}
	names := d.TreatmentNames()
	pick := func() string { return names[c.next(len(names))] }
	d.DefaultTreatment = pick()
	if c.next(2) == 1 {
		d.BaselineTreatment = pick()
	}
	if c.next(2) == 1 {
		a := c.next(101)
		d.TrafficAllocation = &a
	}
	d.Killed = c.next(2) == 1
	matchers := [][]splitmodel.Matcher{
		{{Type: "IN_SEGMENT", String: "beta"}},
		{{Type: "IN_SEGMENT", String: "employees", Negate: true}},
		{{Type: "EQUAL_SET", Attribute: "plan", Strings: []string{"gold", "premium"}}},
		{{Type: "BOOLEAN", Attribute: "vip", Bool: new(bool)}, {Type: "IN_SEGMENT", String: "beta"}},
	}
	for range c.next(4) {
		r := splitmodel.Rule{Condition: splitmodel.Condition{Matchers: matchers[c.next(len(matchers))]}}
		size := c.next(101)
		r.Buckets = []splitmodel.Bucket{{Treatment: pick(), Size: size}}
		if size < 100 {
			r.Buckets = append(r.Buckets, splitmodel.Bucket{Treatment: pick(), Size: 100 - size})
		}
		d.Rules = append(d.Rules, r)
	}
	if c.next(2) == 1 {
		d.DefaultRule = []splitmodel.Bucket{{Treatment: pick(), Size: 50}, {Treatment: pick(), Size: 50}}
	}
	return d
}

// wire is d as the server holds it, server members included.
func wire(d splitmodel.Definition) []byte {
	return stored(&flagDoc{Name: "fuzzed", TrafficType: "user"}, "Production", d, 1, 1)
}

// sets returns d with keys and segments sorted and configurations canonical, for
// comparing what the planner compares as sets or as JSON.
func sets(d splitmodel.Definition) splitmodel.Definition {
	d = splitmodel.Normalise(d)
	d.Wire = nil
	ts := slices.Clone(d.Treatments)
	for i := range ts {
		ts[i].Keys = slices.Sorted(slices.Values(ts[i].Keys))
		ts[i].Segments = slices.Sorted(slices.Values(ts[i].Segments))
		if len(ts[i].Keys) == 0 {
			ts[i].Keys = nil
		}
		if len(ts[i].Segments) == 0 {
			ts[i].Segments = nil
		}
		if ts[i].Configurations != "" {
			var v any
			if json.Unmarshal([]byte(ts[i].Configurations), &v) == nil {
				b, _ := json.Marshal(v)
				ts[i].Configurations = string(b)
			}
		}
	}
	d.Treatments = ts
	return d
}

const fuzzWS = "ws-fuzz"

// FuzzJSONPatch checks the two halves of flagsync's JSON Patch work on arbitrary input.
// Construction: for two definitions built from src and dst, the patch the planner
// generates applies to src as the server holds it (every test operation passes), yields
// dst, and leaves nothing to patch. Application: an arbitrary patch sent to the sandbox
// never panics it, is answered 200, 400 or 409, and when refused changes nothing.
func FuzzJSONPatch(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5}, []byte{1, 2, 3, 4, 5, 6}, []byte(`[{"op":"replace","path":"/killed","value":true}]`))
	f.Add([]byte{2, 3, 1, 1, 0, 1, 1, 0, 3, 2, 1}, []byte{2, 3, 1, 0, 1, 1, 0, 1, 2, 3, 0}, []byte(`[{"op":"add","path":"/treatments/0/keys/-","value":"4"}]`))
	f.Add([]byte{5, 3, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 2, 2, 2, 3, 3, 1, 1, 1, 1, 50}, []byte{5, 2, 1, 0, 1, 3, 3, 1, 1, 1, 1, 1, 2, 3, 3, 25, 1}, []byte(`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"remove","path":"/treatments/0/keys/2"}]`))
	f.Add([]byte{}, []byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, []byte(`[{"op":"move","from":"/treatments/1","path":"/treatments/0"},{"op":"copy","from":"/defaultRule","path":"/rules/-"}]`))
	f.Add([]byte{1}, []byte{1}, []byte(`[{"op":"replace","path":"/rules/0/buckets/0/treatment","value":"first_version"},{"op":"replace","path":"/treatments/0/name","value":"first_version"},{"op":"replace","path":"/defaultRule/0/treatment","value":"first_version"}]`))
	f.Add([]byte{7, 7}, []byte{8, 8}, []byte(`[{"op":"add","path":"/a~1b~0c","value":{"x":[1,2,{"y":null}]}},{"op":"remove","path":"/a~1b~0c/x/2/y"}]`))
	f.Add([]byte{3}, []byte{4}, []byte(`{"not":"an array"}`))

	f.Fuzz(func(t *testing.T, src, dst, patch []byte) {
		// Construction.
		live, want := definition(src), definition(dst)
		w := wire(live)
		_, liveRead, err := splitclient.DecodeDefinition(w)
		if err != nil {
			t.Fatal(err)
		}
		p := splitplan.DefinitionPatch(liveRead, want)
		out, err := jsonpatch.Apply(w, p.JSON())
		if err != nil {
			t.Fatalf("generated patch does not apply: %v\npatch %s\nto %s", err, p.JSON(), w)
		}
		_, got, err := splitclient.DecodeDefinition(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sets(got), sets(want)) {
			t.Fatalf("patch %s\nturned %s\ninto %+v\nwant %+v", p.JSON(), w, sets(got), sets(want))
		}
		if again := splitplan.DefinitionPatch(got, want); len(again) > 0 {
			t.Fatalf("after %s a second patch remains: %s", p.JSON(), again.JSON())
		}

		// Application, through the sandbox's own handler.
		s, err := New(Options{RatePerSecond: -1, RatePerMinute: -1})
		if err != nil {
			t.Fatal(err)
		}
		valid := splitmodel.Definition{
			Treatments:       []splitmodel.Treatment{{Name: "on", Keys: []string{"1", "2", "3"}}, {Name: "off", Segments: []string{"employees"}}},
			DefaultTreatment: "off",
			Rules: []splitmodel.Rule{{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "IN_SEGMENT", String: "beta"}}},
				Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 80}, {Treatment: "off", Size: 20}}}},
			DefaultRule: []splitmodel.Bucket{{Treatment: "on", Size: 50}, {Treatment: "off", Size: 50}},
		}
		if err := s.Seed(splitmodel.Flag{Workspace: fuzzWS, Name: "fuzzed", TrafficType: "user", Environments: map[string]splitmodel.Definition{"Production": valid}}); err != nil {
			t.Fatal(err)
		}
		before := slices.Clone(s.flags[flagKey{fuzzWS, "fuzzed"}].Definitions["Production"])
		req := httptest.NewRequest(http.MethodPatch, splitclient.DefinitionPath(fuzzWS, "fuzzed", "Production"), bytes.NewReader(patch))
		req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
		req.Header.Set("Content-Type", "application/json-patch+json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		after := s.flags[flagKey{fuzzWS, "fuzzed"}].Definitions["Production"]
		switch rec.Code {
		case http.StatusOK:
			if _, err := readDefinition(after, after); err != nil {
				t.Fatalf("accepted patch %s left an invalid definition: %v", patch, err)
			}
		case http.StatusBadRequest, http.StatusConflict:
			if !bytes.Equal(before, after) {
				t.Fatalf("refused patch %s (%d) changed the definition", patch, rec.Code)
			}
		default:
			t.Fatalf("patch %s answered %d: %s", patch, rec.Code, rec.Body)
		}
	})
}
