package ksandbox

import (
	"strings"
	"testing"
)

// TestTutorial replays the vendor tutorial "Manage feature flags and rollout rules" and
// compares each response with the tutorial's (testdata/tutorial_*_response.json), which
// differ from the vendor page only where the sandbox documents it: rules read back with
// `status` (the written state) and without `state`, and with `orderIndex`.
func TestTutorial(t *testing.T) {
	_, c, _ := setup(t, Options{Sites: []string{site}})

	steps := []struct {
		name, method, path string
		status             int
	}{
		{"create", "POST", "/feature-flags", 201},
		{"patch", "PATCH", "/feature-flags/pzllysfw2f/test_feature_flag_post", 200},
		{"rule", "PATCH", "/rules/20557", 200},
	}
	for _, st := range steps {
		r := c.must(st.status, st.method, st.path, readFile(t, "tutorial_"+st.name+"_request.json"))
		if d := jsonDiff(t, r.body, []byte(readFile(t, "tutorial_"+st.name+"_response.json"))); d != "" {
			t.Fatalf("step %s: response differs from the tutorial's: %s\n%s", st.name, d, r.body)
		}
		got := c.must(200, "GET", "/feature-flags/pzllysfw2f/test_feature_flag_post?optionalFields="+strings.Join(OptionalFields, ","), "")
		if d := jsonDiff(t, got.body, r.body); d != "" {
			t.Fatalf("step %s: GET differs from the write's response: %s", st.name, d)
		}
		if strings.Contains(string(got.body), `"state"`) {
			t.Errorf("step %s: read shape carries `state`: %s", st.name, got.body)
		}
	}

	// The rule keeps its id, experiment and condition id through the rule endpoint.
	f := c.must(200, "GET", "/feature-flags/pzllysfw2f/test_feature_flag_post?optionalFields=environmentConfigurations", "").json(t)
	rule := envOf(t, f, "development")["rolloutRules"].([]any)[0]
	for path, want := range map[string]any{"id": 20557.0, "experimentId": 354972.0, "rollbackConditions.0.id": 648.0, "rollbackConditions.0.matchValue": 25.0, "status": "ACTIVE"} {
		if got := get(rule, path); got != want {
			t.Errorf("rule %s = %v, want %v", path, got, want)
		}
	}
}
