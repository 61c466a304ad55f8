package kclient

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// The testdata/tutorial-* files are the request and response bodies of Kameleoon's
// tutorial "Manage feature flags and rollout rules", copied verbatim.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asJSON decodes JSON into generic values so that bodies compare by meaning.
func asJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

func TestDecodeTutorialResponses(t *testing.T) {
	tutorialRule := func(matchValue float64) kmodel.Rule {
		return kmodel.Rule{
			ID: 20557, ExperimentID: 354972, Name: "test rollout rule", Type: kmodel.RuleTargetedDelivery,
			// The response says "status": "PAUSED" and "state": "ACTIVE" (the release window
			// is over): both are kept, apart.
			State:              kmodel.StateActive,
			Status:             kmodel.StatePaused,
			SegmentID:          403694,
			Exposition:         ptr(59.0),
			VariationKey:       "on",
			TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 59}},
			Release:            &kmodel.Release{ReleaseFrom: "2025-12-11T11:58:01", ReleaseTo: "2025-12-13T11:58:01", TimeZone: "Europe/Paris"},
			RollbackConditions: []kmodel.RollbackCondition{{
				ID: 648, Target: "RULE", Criteria: "CONVERSION_RATE", ComparisonOperator: "GREATER_THAN",
				MatchValue: matchValue, GoalID: 400899, Visitors: 2, Recipients: []string{},
			}},
		}
	}
	tests := []struct {
		file    string
		devRule []kmodel.Rule
	}{
		{"tutorial-1-create-response.json", nil},
		{"tutorial-2-patch-response.json", []kmodel.Rule{tutorialRule(20)}},
		{"tutorial-3-rule-response.json", []kmodel.Rule{tutorialRule(25)}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := DecodeFlag(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			noIntegrations := &kmodel.Integrations{DeliveryRules: []any{}, ExperimentRules: []any{}}
			want := kmodel.Flag{
				ID: 13134, SiteCode: "pzllysfw2f", FeatureKey: "test_feature_flag_post", Name: "test_feature_flag_post",
				Tags:              []string{},
				AttributionWindow: 604800000,
				Variables:         []kmodel.Variable{{Key: "test_variable", Type: kmodel.TypeString, Value: "test"}},
				Variations: []kmodel.Variation{
					{Key: "on", Name: "On", Variables: []kmodel.VariationVariable{{Key: "test_variable", Value: "test"}}},
					{Key: "off", Name: "Off", Variables: []kmodel.VariationVariable{{Key: "test_variable", Value: "test"}}},
				},
				Environments: map[string]kmodel.Environment{
					"production":  {FeatureEnabled: false, DefaultVariationKey: "off", Integrations: noIntegrations, DateModified: "2025-12-17T10:42:14"},
					"staging":     {FeatureEnabled: false, DefaultVariationKey: "off", Integrations: noIntegrations, DateModified: "2025-12-17T10:42:14"},
					"development": {FeatureEnabled: true, DefaultVariationKey: "on", Integrations: noIntegrations, RolloutRules: tt.devRule, DateModified: "2025-12-17T10:42:14"},
				},
				// Read-only, kept for flagsync report, never planned.
				DateCreated: "2025-12-17T10:42:14", Health: "HEALTHY",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded flag:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestDecodeRuleState: `state` (written, Git's) and `status` (read-only, Kameleoon's)
// are kept apart; WrittenState falls back on status when the read shape has no state.
func TestDecodeRuleState(t *testing.T) {
	tests := []struct {
		name, rule                 string
		state, status, writtenWant string
	}{
		{"status only (documented read shape)", `{"status":"PAUSED"}`, "", kmodel.StatePaused, kmodel.StatePaused},
		{"state only", `{"state":"ACTIVE"}`, kmodel.StateActive, "", kmodel.StateActive},
		{"both differ (the tutorial after its window ended)", `{"status":"PAUSED","state":"ACTIVE"}`, kmodel.StateActive, kmodel.StatePaused, kmodel.StateActive},
		{"neither", `{}`, "", "", kmodel.StateActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeOneRule(t, tt.rule)
			if r.State != tt.state || r.Status != tt.status || r.WrittenState() != tt.writtenWant {
				t.Errorf("state %q, status %q, written %q; want %q, %q, %q", r.State, r.Status, r.WrittenState(), tt.state, tt.status, tt.writtenWant)
			}
		})
	}
}

func TestDecodeCurrentExposition(t *testing.T) {
	r := decodeOneRule(t, `{"type":"PROGRESSIVE_DELIVERY","exposition":50,"currentExposition":12.5}`)
	if r.Exposition == nil || *r.Exposition != 50 || r.CurrentExposition == nil || *r.CurrentExposition != 12.5 {
		t.Errorf("exposition %v, currentExposition %v; want 50 (the target) and 12.5 (the ramp)", r.Exposition, r.CurrentExposition)
	}
	if r := decodeOneRule(t, `{"type":"PROGRESSIVE_DELIVERY","exposition":50}`); r.CurrentExposition != nil {
		t.Errorf("currentExposition %v without one in the read shape", *r.CurrentExposition)
	}
}

// decodeOneRule decodes a flag whose development environment holds the given rules and
// returns the first.
func decodeOneRule(t *testing.T, rules ...string) kmodel.Rule {
	t.Helper()
	return decodeRules(t, rules...)[0]
}

func decodeRules(t *testing.T, rules ...string) []kmodel.Rule {
	t.Helper()
	body := `{"siteCode":"s","featureKey":"k","environmentConfigurations":[{"environmentKey":"development","rolloutRules":[` + strings.Join(rules, ",") + `]}]}`
	f, err := DecodeFlag([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return f.Environments["development"].RolloutRules
}

func TestDecodeNumbers(t *testing.T) {
	tests := []struct {
		name string
		rule string
		want kmodel.Rule
	}{
		{"integers written as floats", `{"id":20557.0,"experimentId":354972.0,"exposition":59.0,"segmentId":403694.0,
			"trafficAllocations":[{"variationKey":"on","exposition":59.0}],
			"rollbackConditions":[{"id":648.0,"matchValue":20.0,"goalId":400899.0,"visitors":2.0}]}`,
			kmodel.Rule{ID: 20557, ExperimentID: 354972, Exposition: ptr(59.0), SegmentID: 403694,
				TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 59}},
				RollbackConditions: []kmodel.RollbackCondition{{ID: 648, MatchValue: 20, GoalID: 400899, Visitors: 2}}}},
		{"fractions kept where the model has floats", `{"exposition":12.5,"rollbackConditions":[{"matchValue":50.00005}]}`,
			kmodel.Rule{Exposition: ptr(12.5), RollbackConditions: []kmodel.RollbackCondition{{MatchValue: 50.00005}}}},
		{"numbers as strings of digits", `{"id":"20557","segmentId":"403694"}`, kmodel.Rule{ID: 20557, SegmentID: 403694}},
		{"nulls", `{"id":null,"segmentId":null,"exposition":null}`, kmodel.Rule{}},
		{"exposition 0 is not absent", `{"exposition":0}`, kmodel.Rule{Exposition: ptr(0.0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeOneRule(t, tt.rule)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	if _, err := DecodeFlag([]byte(`{"id":"not a number"}`)); err == nil {
		t.Error("a non-numeric id decoded without error")
	}
}

func TestDecodeRuleOrder(t *testing.T) {
	names := func(rules []kmodel.Rule) []string {
		var out []string
		for _, r := range rules {
			out = append(out, r.Name)
		}
		return out
	}
	tests := []struct {
		name  string
		rules []string
		want  []string
	}{
		{"sorted by orderIndex", []string{`{"name":"c","orderIndex":2}`, `{"name":"a","orderIndex":0}`, `{"name":"b","orderIndex":1.0}`}, []string{"a", "b", "c"}},
		{"array order when one lacks orderIndex", []string{`{"name":"c","orderIndex":2}`, `{"name":"a"}`, `{"name":"b","orderIndex":1}`}, []string{"c", "a", "b"}},
		{"array order without orderIndex", []string{`{"name":"z"}`, `{"name":"y"}`}, []string{"z", "y"}},
		{"stable for equal orderIndex", []string{`{"name":"x","orderIndex":1}`, `{"name":"w","orderIndex":1}`, `{"name":"v","orderIndex":0}`}, []string{"v", "x", "w"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(decodeRules(t, tt.rules...)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rule order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeFlagFields(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(f kmodel.Flag) bool
	}{
		{"archived", `{"archived":true}`, func(f kmodel.Flag) bool { return f.Archived }},
		{"isArchived (write name) read too", `{"isArchived":true}`, func(f kmodel.Flag) bool { return f.Archived }},
		{"archived wins over isArchived", `{"archived":false,"isArchived":true}`, func(f kmodel.Flag) bool { return !f.Archived }},
		{"multiArmedBandit read as the allocation method", `{"environmentConfigurations":[{"environmentKey":"e","rolloutRules":[{"multiArmedBandit":true}]}]}`,
			func(f kmodel.Flag) bool {
				return f.Environments["e"].RolloutRules[0].TrafficAllocationMethod == "MULTI_ARMED_BANDIT"
			}},
		{"explicit allocation method wins", `{"environmentConfigurations":[{"environmentKey":"e","rolloutRules":[{"multiArmedBandit":true,"trafficAllocationMethod":"MANUAL"}]}]}`,
			func(f kmodel.Flag) bool {
				return f.Environments["e"].RolloutRules[0].TrafficAllocationMethod == "MANUAL"
			}},
		{"bucketing key and goals", `{"bucketingKey":{"bucketingKeyType":"CUSTOM_DATA","customDataId":7.0},"primaryGoalId":5,"secondaryGoalIds":[1,2.0]}`,
			func(f kmodel.Flag) bool {
				return reflect.DeepEqual(f.BucketingKey, &kmodel.BucketingKey{BucketingKeyType: "CUSTOM_DATA", CustomDataID: 7}) &&
					f.PrimaryGoalID == 5 && reflect.DeepEqual(f.SecondaryGoalIDs, []int64{1, 2})
			}},
		{"no environments gives a nil map", `{"environmentConfigurations":[]}`, func(f kmodel.Flag) bool { return f.Environments == nil }},
		{"server-owned fields ignored, but the report's kept as read", `{"health":"STALE","teamId":3,"dateCreated":"2025-12-17T10:42:14","createdById":1}`,
			func(f kmodel.Flag) bool {
				return reflect.DeepEqual(f, kmodel.Flag{DateCreated: "2025-12-17T10:42:14", Health: "STALE"})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeFlag([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f) {
				t.Errorf("decoded %+v", f)
			}
		})
	}
}

func TestDecodeFlags(t *testing.T) {
	one := readTestdata(t, "tutorial-1-create-response.json")
	list := append(append([]byte("["), one...), []byte(`,{"id":2,"siteCode":"pzllysfw2f","featureKey":"second"}]`)...)
	flags, err := DecodeFlags(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 2 || flags[0].ID != 13134 || flags[1].FeatureKey != "second" || len(flags[0].Environments) != 3 {
		t.Errorf("DecodeFlags = %+v", flags)
	}
	if _, err := DecodeFlags([]byte(`{"not":"an array"}`)); err == nil {
		t.Error("an object decoded as a flag list")
	}
}

// tutorialModel is the tutorial's flag after step 2, as the model holds it.
func tutorialModel(t *testing.T) kmodel.Flag {
	t.Helper()
	f, err := DecodeFlag(readTestdata(t, "tutorial-2-patch-response.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPatchEnvironmentRequestTutorialRule(t *testing.T) {
	f := tutorialModel(t)
	req := PatchEnvironmentRequest(f.SiteCode, f.FeatureKey, f.Name, "development", f.Environments["development"], EnvironmentPatchFields)
	if req.Method != "PATCH" || req.Path != "/feature-flags/pzllysfw2f/test_feature_flag_post/development" {
		t.Fatalf("request line = %s %s", req.Method, req.Path)
	}

	// The rule sent back must be the rule the tutorial wrote in step 2, plus the ids the
	// server assigned (so the rule and its experiment persist), in the write shape.
	var tutorial struct {
		EnvironmentConfigurations []map[string]any `json:"environmentConfigurations"`
	}
	if err := json.Unmarshal(readTestdata(t, "tutorial-2-patch-request.json"), &tutorial); err != nil {
		t.Fatal(err)
	}
	wantEnv := tutorial.EnvironmentConfigurations[0]
	wantRule := wantEnv["rolloutRules"].([]any)[0].(map[string]any)
	// Fields the model does not keep: an empty list the API echoes, and a server timestamp.
	delete(wantRule, "variations")
	delete(wantRule, "reallocationTimestamp")
	wantRule["id"] = 20557.0
	wantRule["orderIndex"] = 0.0
	wantRule["rollbackConditions"].([]any)[0].(map[string]any)["id"] = 648.0

	got := asJSON(t, req.Body).(map[string]any)
	gotRule := got["rolloutRules"].([]any)[0]
	if !reflect.DeepEqual(gotRule, any(wantRule)) {
		t.Errorf("rule body:\n got %v\nwant %v", gotRule, wantRule)
	}
	for _, k := range []string{"featureEnabled", "defaultVariationKey", "integrations"} {
		if !reflect.DeepEqual(got[k], wantEnv[k]) {
			t.Errorf("%s = %v, want %v", k, got[k], wantEnv[k])
		}
	}
	if _, ok := got["environmentKey"]; ok {
		t.Error("environment patch body carries environmentKey; the path names the environment")
	}
	// The members the newer reference page marks required, with the values the page
	// describes: the flag's key and name (the tutorial's flag is named after its key).
	if got["featureKey"] != "test_feature_flag_post" || got["name"] != "test_feature_flag_post" {
		t.Errorf("featureKey %v, name %v; want the flag's", got["featureKey"], got["name"])
	}
	for _, k := range EnvironmentPatchRequired {
		if _, ok := got[k]; !ok {
			t.Errorf("body lacks required member %s: %s", k, req.Body)
		}
	}
	for _, bad := range []string{`"status"`, `"experimentId"`, `"archived"`} {
		if strings.Contains(string(req.Body), bad) {
			t.Errorf("write body holds read-only field %s: %s", bad, req.Body)
		}
	}
}

func TestPatchEnvironmentRequestFields(t *testing.T) {
	env := kmodel.Environment{
		FeatureEnabled: false,
		RolloutRules: []kmodel.Rule{
			{ID: 7, Name: "kept", Type: kmodel.RuleTargetedDelivery, State: kmodel.StatePaused, Exposition: ptr(0.0)},
			{Name: "new", Type: kmodel.RuleProgressiveDelivery, RollbackConditions: []kmodel.RollbackCondition{{Target: "RULE", Criteria: "UPLIFT", ComparisonOperator: "LESS_THAN", MatchValue: 1}}},
		},
	}
	const envRules = `"rolloutRules":[{"id":7,"name":"kept","type":"TARGETED_DELIVERY","orderIndex":0,"state":"PAUSED","exposition":0},
			{"name":"new","type":"PROGRESSIVE_DELIVERY","orderIndex":1,"rollbackConditions":[{"target":"RULE","criteria":"UPLIFT","comparisonOperator":"LESS_THAN","matchValue":1,"recipients":[]}]}]`
	const noIntegrations = `"integrations":{"deliveryRules":[],"experimentRules":[]}`
	tests := []struct {
		name   string
		env    kmodel.Environment
		fields []string
		want   string
	}{
		{"required members and the named fields", env, []string{"featureEnabled"}, `{"featureKey":"key","name":"Key flag","featureEnabled":false,` + envRules + `,` + noIntegrations + `}`},
		{"rules sent whole, ids carried, orderIndex the position, state not status", env, []string{"rolloutRules"}, `{"featureKey":"key","name":"Key flag",` + envRules + `,` + noIntegrations + `}`},
		{"no rules is an empty array, not absent", kmodel.Environment{}, nil, `{"featureKey":"key","name":"Key flag","rolloutRules":[],` + noIntegrations + `}`},
		{"integrations: both arrays when one is set", kmodel.Environment{Integrations: &kmodel.Integrations{DeliveryRules: []any{map[string]any{"x": 1.0}}}}, []string{"integrations"},
			`{"featureKey":"key","name":"Key flag","rolloutRules":[],"integrations":{"deliveryRules":[{"x":1}],"experimentRules":[]}}`},
		{"default variation", kmodel.Environment{DefaultVariationKey: "on"}, []string{"defaultVariationKey"},
			`{"featureKey":"key","name":"Key flag","defaultVariationKey":"on","rolloutRules":[],` + noIntegrations + `}`},
		{"every field", kmodel.Environment{FeatureEnabled: true, DefaultVariationKey: "on"}, EnvironmentPatchFields,
			`{"featureKey":"key","name":"Key flag","featureEnabled":true,"defaultVariationKey":"on","rolloutRules":[],` + noIntegrations + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := PatchEnvironmentRequest("site", "key", "Key flag", "prod", tt.env, tt.fields)
			if got, want := asJSON(t, req.Body), asJSON(t, []byte(tt.want)); !reflect.DeepEqual(got, want) {
				t.Errorf("body = %s\nwant %s", req.Body, tt.want)
			}
		})
	}

	req := PatchEnvironmentRequest("a b", "k/x", "K", "pr od", kmodel.Environment{}, nil)
	if req.Path != "/feature-flags/a%20b/k%2Fx/pr%20od" {
		t.Errorf("path = %s: path segments must be escaped", req.Path)
	}
	if got := asJSON(t, req.Body).(map[string]any)["featureKey"]; got != "k/x" {
		t.Errorf("featureKey = %v: the body carries the key itself, unescaped", got)
	}
	assertPanics(t, func() { PatchEnvironmentRequest("s", "k", "K", "e", kmodel.Environment{}, []string{"status"}) })
}

func assertPanics(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("no panic for an unknown field")
		}
	}()
	f()
}

func TestCreateFlagRequest(t *testing.T) {
	t.Run("tutorial flag without environments", func(t *testing.T) {
		f := kmodel.Flag{
			SiteCode: "pzllysfw2f", FeatureKey: "test_feature_flag_post", Name: "test_feature_flag_post",
			AttributionWindow: 604800000,
			Variables:         []kmodel.Variable{{Key: "test_variable", Type: kmodel.TypeString, Value: "test"}},
			Variations: []kmodel.Variation{
				{Key: "on", Name: "On", Variables: []kmodel.VariationVariable{{Key: "test_variable", Value: "test"}}},
				{Key: "off", Name: "Off", Variables: []kmodel.VariationVariable{{Key: "test_variable", Value: "test"}}},
			},
		}
		req := CreateFlagRequest(&f, nil)
		if req.Method != "POST" || req.Path != "/feature-flags" {
			t.Fatalf("request line = %s %s", req.Method, req.Path)
		}
		want := `{"siteCode":"pzllysfw2f","featureKey":"test_feature_flag_post","name":"test_feature_flag_post","description":"","tags":[],
			"secondaryGoalIds":[],"attributionWindow":604800000,
			"variables":[{"key":"test_variable","type":"STRING","value":"test"}],
			"variations":[{"key":"on","name":"On","variables":[{"key":"test_variable","value":"test"}]},
			              {"key":"off","name":"Off","variables":[{"key":"test_variable","value":"test"}]}]}`
		if got := asJSON(t, req.Body); !reflect.DeepEqual(got, asJSON(t, []byte(want))) {
			t.Errorf("body = %s\nwant %s", req.Body, want)
		}
	})

	t.Run("environments in the configured order, then the rest", func(t *testing.T) {
		f := kmodel.Flag{SiteCode: "s", FeatureKey: "k", Name: "n", Archived: true, Environments: map[string]kmodel.Environment{
			"zeta": {},
			"production": {FeatureEnabled: true, RolloutRules: []kmodel.Rule{
				{ID: 3, Name: "r", Type: kmodel.RuleTargetedDelivery, State: kmodel.StateActive},
				{Name: "s", Type: kmodel.RuleTargetedDelivery},
			}},
			"alpha":       {},
			"development": {DefaultVariationKey: "on"},
		}}
		req := CreateFlagRequest(&f, []string{"development", "staging", "production"})
		var body struct {
			EnvironmentConfigurations []map[string]any `json:"environmentConfigurations"`
		}
		if err := json.Unmarshal(req.Body, &body); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range body.EnvironmentConfigurations {
			keys = append(keys, e["environmentKey"].(string))
			if !reflect.DeepEqual(e["integrations"], map[string]any{"deliveryRules": []any{}, "experimentRules": []any{}}) {
				t.Errorf("%s: integrations = %v, want both arrays", e["environmentKey"], e["integrations"])
			}
			if _, ok := e["rolloutRules"].([]any); !ok {
				t.Errorf("%s: rolloutRules = %v, want an array", e["environmentKey"], e["rolloutRules"])
			}
		}
		if want := []string{"development", "production", "alpha", "zeta"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("environment order = %v, want %v", keys, want)
		}
		rules := body.EnvironmentConfigurations[1]["rolloutRules"].([]any)
		rule := rules[0].(map[string]any)
		if rule["state"] != "ACTIVE" || rule["id"] != 3.0 || rule["status"] != nil || rule["orderIndex"] != 0.0 {
			t.Errorf("rule = %v, want state ACTIVE, id 3, orderIndex 0, no status", rule)
		}
		if second := rules[1].(map[string]any); second["orderIndex"] != 1.0 {
			t.Errorf("second rule = %v, want orderIndex 1", second)
		}
		for _, absent := range []string{`"isArchived"`, `"archived"`, `null`} {
			if strings.Contains(string(req.Body), absent) {
				t.Errorf("create body holds %s: %s", absent, req.Body)
			}
		}
	})
}

func TestUpdateFlagRequest(t *testing.T) {
	empty := kmodel.Flag{SiteCode: "s", FeatureKey: "k"}
	full := kmodel.Flag{SiteCode: "s", FeatureKey: "k", Name: "N", Description: "d", Tags: []string{"t"},
		AttributionWindow: 1000, PrimaryGoalID: 5, SecondaryGoalIDs: []int64{6},
		BucketingKey: &kmodel.BucketingKey{BucketingKeyType: "VISITOR_CODE"}, Archived: true,
		Variables:  []kmodel.Variable{{Key: "v", Type: kmodel.TypeBoolean, Value: "true"}},
		Variations: []kmodel.Variation{{Key: "on"}}}
	tests := []struct {
		name   string
		f      kmodel.Flag
		fields []string
		want   string
	}{
		{"absent values are explicit nulls and empties", empty, FlagPatchFields,
			`{"name":"","description":"","tags":[],"attributionWindow":null,"bucketingKey":null,"primaryGoalId":null,
			  "secondaryGoalIds":[],"variables":[],"variations":[],"isArchived":false}`},
		{"set values", full, FlagPatchFields,
			`{"name":"N","description":"d","tags":["t"],"attributionWindow":1000,"bucketingKey":{"bucketingKeyType":"VISITOR_CODE","customDataId":null},
			  "primaryGoalId":5,"secondaryGoalIds":[6],"variables":[{"key":"v","type":"BOOLEAN","value":"true"}],
			  "variations":[{"key":"on","name":"","variables":[]}],"isArchived":true}`},
		{"archived is written isArchived", full, []string{"archived"}, `{"isArchived":true}`},
		{"only the named fields", full, []string{"description", "tags"}, `{"description":"d","tags":["t"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := UpdateFlagRequest(&tt.f, tt.fields)
			if req.Method != "PATCH" || req.Path != "/feature-flags/s/k" {
				t.Errorf("request line = %s %s", req.Method, req.Path)
			}
			if got, want := asJSON(t, req.Body), asJSON(t, []byte(tt.want)); !reflect.DeepEqual(got, want) {
				t.Errorf("body = %s\nwant %s", req.Body, tt.want)
			}
		})
	}
	assertPanics(t, func() { UpdateFlagRequest(&full, []string{"health"}) })
}

func TestArchiveFlagRequest(t *testing.T) {
	for _, archived := range []bool{true, false} {
		req := ArchiveFlagRequest("s", "k", archived)
		want := map[string]any{"isArchived": archived}
		if req.Method != "PATCH" || req.Path != "/feature-flags/s/k" || !reflect.DeepEqual(asJSON(t, req.Body), any(want)) {
			t.Errorf("ArchiveFlagRequest(%v) = %s %s %s", archived, req.Method, req.Path, req.Body)
		}
	}
}

func TestRequestJSONRoundTrip(t *testing.T) {
	// A plan stores the request as JSON; what is read back must be what was planned.
	req := PatchEnvironmentRequest("s", "k", "K", "e", kmodel.Environment{DefaultVariationKey: "<on&off>"}, []string{"defaultVariationKey"})
	if strings.Contains(string(req.Body), `\u003c`) {
		t.Errorf("body escapes HTML: %s", req.Body)
	}
	roundTrip := func(b []byte) api.Request {
		t.Helper()
		var back api.Request
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		return back
	}

	// An encoder without HTML escaping keeps the body byte for byte.
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		t.Fatal(err)
	}
	if back := roundTrip([]byte(buf.String())); back.Method != req.Method || back.Path != req.Path || string(back.Body) != string(req.Body) {
		t.Errorf("round trip changed the request: %s -> %s", req.Body, back.Body)
	}

	// json.Marshal escapes <, > and & inside the raw body: the bytes change, the meaning does not.
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if back := roundTrip(b); !reflect.DeepEqual(asJSON(t, back.Body), asJSON(t, req.Body)) {
		t.Errorf("round trip changed the body's meaning: %s -> %s", req.Body, back.Body)
	}
}
