package ksandbox

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// baseFlag has two rules in production (ids 20557 and 20558, experiments 354972 and
// 354973) and one rollback condition (id 648) on the first.
const baseFlag = `{
  "siteCode": "pzllysfw2f", "featureKey": "base", "name": "Base", "description": "desc",
  "tags": ["a", "b"], "primaryGoalId": 2, "secondaryGoalIds": [3],
  "bucketingKey": {"bucketingKeyType": "CUSTOM_DATA", "customDataId": 4},
  "variables": [{"key": "color", "type": "STRING", "value": "blue"}],
  "variations": [
    {"key": "off", "name": "Off"},
    {"key": "on", "name": "On", "variables": [{"key": "color", "value": "green"}]},
    {"key": "b", "name": "B"}
  ],
  "environmentConfigurations": [{
    "environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "off",
    "rolloutRules": [
      {"name": "beta", "type": "TARGETED_DELIVERY", "segmentId": 1, "exposition": 50, "variationKey": "on", "state": "ACTIVE",
       "rollbackConditions": [{"target": "RULE", "criteria": "UPLIFT", "comparisonOperator": "GREATER_THAN", "matchValue": 5, "goalId": 7}]},
      {"name": "exp", "type": "EXPERIMENTATION", "controlVariationKey": "off",
       "trafficAllocations": [{"variationKey": "on", "exposition": 50}, {"variationKey": "b", "exposition": 50}]}
    ]
  }]
}`

func TestMergePatch(t *testing.T) {
	type check func(t *testing.T, before, after map[string]any)
	field := func(path string, want any) check {
		return func(t *testing.T, _, after map[string]any) {
			t.Helper()
			if got := get(after, path); !sameValue(got, want) {
				t.Errorf("%s = %s, want %s", path, short(got), short(want))
			}
		}
	}
	unchanged := func(paths ...string) check {
		return func(t *testing.T, before, after map[string]any) {
			t.Helper()
			for _, p := range paths {
				if b, a := get(before, p), get(after, p); !sameValue(a, b) {
					t.Errorf("%s changed from %s to %s", p, short(b), short(a))
				}
			}
		}
	}
	const prod = "environmentConfigurations.0" // production lists first
	const rule0, rule1 = prod + ".rolloutRules.0", prod + ".rolloutRules.1"
	const flagPath = "/feature-flags/pzllysfw2f/base"

	cases := []struct {
		name   string
		path   string // relative to the flag's path, or absolute when it starts with /
		body   string
		status int
		msg    string // part of the 400 message
		checks []check
	}{
		{name: "null removes a string (reset to empty)", body: `{"description": null}`, status: 200,
			checks: []check{field("description", ""), unchanged("name", "tags")}},
		{name: "null resets attributionWindow to the default", body: `{"attributionWindow": 1000}`, status: 200,
			checks: []check{field("attributionWindow", 1000.0)}},
		{name: "null attributionWindow", body: `{"attributionWindow": null}`, status: 200,
			checks: []check{field("attributionWindow", 604800000.0)}},
		{name: "null removes an object", body: `{"bucketingKey": null}`, status: 200,
			checks: []check{field("bucketingKey", nil)}},
		{name: "objects merge recursively", body: `{"bucketingKey": {"customDataId": 9}}`, status: 200,
			checks: []check{field("bucketingKey", map[string]any{"bucketingKeyType": "CUSTOM_DATA", "customDataId": 9.0})}},
		{name: "arrays are replaced whole", body: `{"tags": ["c"]}`, status: 200,
			checks: []check{field("tags", []any{"c"})}},
		{name: "environments merge by environmentKey", body: `{"environmentConfigurations": [{"environmentKey": "staging", "featureEnabled": true}]}`, status: 200,
			checks: []check{field("environmentConfigurations.1.featureEnabled", true), field("environmentConfigurations.1.defaultVariationKey", "off"),
				unchanged(prod, "environmentConfigurations.2")}},
		{name: "environment patch merges into its environment only", path: "/production", body: `{"featureEnabled": false}`, status: 200,
			checks: []check{field(prod+".featureEnabled", false), unchanged(prod+".rolloutRules", prod+".defaultVariationKey", "environmentConfigurations.1", "environmentConfigurations.2")}},
		{name: "environment patch carries flag-level fields", path: "/production", body: `{"name": "Renamed", "featureKey": "base", "isArchived": true}`, status: 200,
			checks: []check{field("name", "Renamed"), field("archived", true), unchanged(prod)}},
		{name: "null defaultVariationKey resets to the environment default", path: "/production", body: `{"defaultVariationKey": null}`, status: 200,
			checks: []check{field(prod+".defaultVariationKey", "off")}},
		{name: "null defaultVariationKey in development resets to on", path: "/development", body: `{"defaultVariationKey": null, "featureEnabled": null}`, status: 200,
			checks: []check{field("environmentConfigurations.2.defaultVariationKey", "on"), field("environmentConfigurations.2.featureEnabled", true)}},
		{name: "rules re-sent with their id keep id and experiment", path: "/production",
			body: `{"rolloutRules": [{"id": 20558, "name": "exp", "type": "EXPERIMENTATION", "trafficAllocations": [{"variationKey": "on", "exposition": 100}]},
			                          {"id": 20557, "name": "beta", "type": "TARGETED_DELIVERY", "exposition": 70, "variationKey": "on"}]}`, status: 200,
			checks: []check{field(rule0+".id", 20558.0), field(rule0+".experimentId", 354973.0), field(rule0+".orderIndex", 0.0),
				field(rule1+".id", 20557.0), field(rule1+".experimentId", 354972.0), field(rule1+".exposition", 70.0), field(rule1+".orderIndex", 1.0),
				field(rule1+".segmentId", nil), field(rule1+".rollbackConditions", []any{}), field(rule0+".controlVariationKey", nil)}},
		{name: "rules without an id are new", path: "/production",
			body: `{"rolloutRules": [{"name": "beta", "type": "TARGETED_DELIVERY", "exposition": 50, "variationKey": "on"}]}`, status: 200,
			checks: []check{field(rule0+".id", 20559.0), field(rule0+".experimentId", 354974.0), field(prod+".rolloutRules.1", nil)}},
		{name: "unknown rule id", path: "/production",
			body: `{"rolloutRules": [{"id": 99, "name": "beta", "type": "TARGETED_DELIVERY"}]}`, status: 400, msg: "rule 99 does not exist"},
		{name: "rule id of another environment", path: "/staging",
			body: `{"rolloutRules": [{"id": 20557, "name": "beta", "type": "TARGETED_DELIVERY"}]}`, status: 400, msg: `rule 20557 does not exist in environment "staging"`},
		{name: "rule id twice", path: "/production",
			body: `{"rolloutRules": [{"id": 20557, "type": "TARGETED_DELIVERY"}, {"id": 20557, "type": "TARGETED_DELIVERY"}]}`, status: 400, msg: "listed twice"},
		{name: "rollback condition kept by id, new without", path: "/production",
			body: `{"rolloutRules": [{"id": 20557, "type": "TARGETED_DELIVERY", "variationKey": "on", "rollbackConditions": [
			  {"id": 648, "target": "RULE", "criteria": "UPLIFT", "comparisonOperator": "LESS_THAN", "matchValue": 1},
			  {"target": "ENVIRONMENT", "criteria": "DOWNLIFT", "comparisonOperator": "GREATER_THAN", "matchValue": 2}]}]}`, status: 200,
			checks: []check{field(rule0+".rollbackConditions.0.id", 648.0), field(rule0+".rollbackConditions.0.comparisonOperator", "LESS_THAN"),
				field(rule0+".rollbackConditions.1.id", 649.0)}},
		{name: "unknown rollback condition id", path: "/production",
			body: `{"rolloutRules": [{"id": 20557, "type": "TARGETED_DELIVERY", "rollbackConditions": [
			  {"id": 7, "target": "RULE", "criteria": "UPLIFT", "comparisonOperator": "LESS_THAN", "matchValue": 1}]}]}`, status: 400, msg: "rollback condition 7 does not exist"},
		{name: "rule endpoint merges one rule", path: "/feature-flags/rules/20557", body: `{"exposition": 80, "segmentId": null}`, status: 200,
			checks: []check{field(rule0+".exposition", 80.0), field(rule0+".segmentId", nil), field(rule0+".id", 20557.0),
				unchanged(rule0+".rollbackConditions", rule0+".experimentId", rule1)}},
		{name: "rule endpoint writes state, reads status", path: "/rules/20558", body: `{"state": "PAUSED"}`, status: 200,
			checks: []check{field(rule1+".status", "PAUSED"), field(rule1+".state", nil)}},
		{name: "rule endpoint validates the whole flag", path: "/rules/20558", body: `{"controlVariationKey": "nope"}`, status: 400, msg: `variation "nope" does not exist`},
		{name: "rule endpoint refuses another id", path: "/rules/20558", body: `{"id": 20557}`, status: 400, msg: "does not match"},
		{name: "defaultVariationKey must exist", path: "/production", body: `{"defaultVariationKey": "nope"}`, status: 400, msg: `defaultVariationKey: variation "nope" does not exist`},
		{name: "a variation still used cannot be removed", body: `{"variations": [{"key": "off", "name": "Off"}, {"key": "on", "name": "On"}]}`, status: 400,
			msg: `trafficAllocations[1].variationKey: variation "b" does not exist`},
		{name: "variation variables must exist at flag level", body: `{"variables": []}`, status: 400, msg: `variable "color" is not defined`},
		{name: "variation variable type comes from the flag variable", body: `{"variations": [{"key": "off"}, {"key": "on", "variables": [{"key": "color", "value": "red"}]}, {"key": "b"}]}`, status: 200,
			checks: []check{field("variations.1.variables", []any{map[string]any{"key": "color", "type": "STRING", "value": "red"}}), field("variations.0.name", "")}},
		{name: "exposition out of range", path: "/rules/20557", body: `{"exposition": 101}`, status: 400, msg: "between 0 and 100"},
		{name: "traffic allocations above 100", path: "/rules/20558", body: `{"trafficAllocations": [{"variationKey": "on", "exposition": 60}, {"variationKey": "b", "exposition": 50}]}`, status: 400, msg: "more than 100"},
		{name: "enum checked", path: "/rules/20557", body: `{"state": "RUNNING"}`, status: 400, msg: `"RUNNING" is not one of ACTIVE, PAUSED`},
		{name: "unknown environment in a flag patch", body: `{"environmentConfigurations": [{"environmentKey": "qa"}]}`, status: 400, msg: `unknown environment "qa"`},
		{name: "environments cannot be removed", body: `{"environmentConfigurations": null}`, status: 400, msg: "environments cannot be removed"},
		{name: "environmentKey must match the path", path: "/production", body: `{"environmentKey": "staging"}`, status: 400, msg: "does not match"},
		{name: "featureKey cannot change", body: `{"featureKey": "other"}`, status: 400, msg: "featureKey: cannot be changed"},
		{name: "unknown field", body: `{"colour": "red"}`, status: 400, msg: `unknown field "colour"`},
		{name: "unknown nested field", path: "/production", body: `{"rolloutRules": [{"type": "TARGETED_DELIVERY", "exposure": 5}]}`, status: 400, msg: `unknown field "exposure"`},
		{name: "wrong type names the field", body: `{"name": 5}`, status: 400, msg: "name: must be a string"},
		{name: "body must be an object", body: `[]`, status: 400, msg: "must be a JSON object"},
		{name: "malformed JSON", body: `{"name": `, status: 400, msg: "body:"},
		{name: "read-only fields are ignored", body: `{"id": 1, "health": "STALE", "dateCreated": "2000-01-01T00:00:00", "archived": true, "createdById": 1}`, status: 200,
			checks: []check{unchanged("id", "health", "dateCreated", "archived", "createdById", "dateModified")}},
		{name: "read-only rule fields are ignored", path: "/rules/20557", body: `{"status": "PAUSED", "experimentId": 1, "orderIndex": 5}`, status: 200,
			checks: []check{field(rule0+".status", "ACTIVE"), unchanged(rule0+".experimentId", rule0+".orderIndex", "dateModified")}},
		{name: "archiving moves dateModified only", body: `{"isArchived": true}`, status: 200,
			checks: []check{field("archived", true), field("dateModified", "2025-12-17T11:42:14"), unchanged("dateContentModified", prod+".dateModified")}},
		{name: "a content change moves the content date and the environment's", path: "/production", body: `{"featureEnabled": false}`, status: 200,
			checks: []check{field("dateContentModified", "2025-12-17T11:42:14"), field(prod+".dateModified", "2025-12-17T11:42:14"),
				unchanged("environmentConfigurations.1.dateModified", "dateCreated")}},
		{name: "a no-op patch changes no date", body: `{"name": "Base"}`, status: 200,
			checks: []check{unchanged("dateModified", "dateContentModified")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, clock := setup(t, Options{RatePer10s: -1})
			c.must(201, "POST", "/feature-flags", baseFlag)
			clock.Advance(time.Hour)
			before := flagJSON(t, s, "base")
			path := tc.path
			if !strings.HasPrefix(path, "/feature-flags") && !strings.HasPrefix(path, "/rules") {
				path = flagPath + path
			}
			r := c.do("PATCH", path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			after := flagJSON(t, s, "base")
			if tc.status != 200 {
				if !strings.Contains(r.json(t)["message"].(string), tc.msg) {
					t.Errorf("message %q does not contain %q", r.json(t)["message"], tc.msg)
				}
				if !bytes.Equal(before, after) {
					t.Errorf("a refused patch changed the flag:\nbefore %s\nafter  %s", before, after)
				}
				return
			}
			if d := jsonDiff(t, r.body, after); d != "" {
				t.Errorf("response differs from the stored flag: %s", d)
			}
			var b, a map[string]any
			_ = json.Unmarshal(before, &b)
			_ = json.Unmarshal(after, &a)
			for _, ch := range tc.checks {
				ch(t, b, a)
			}
		})
	}
}

func sameValue(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestPatchContentTypes(t *testing.T) {
	_, c, _ := setup(t, Options{})
	c.must(201, "POST", "/feature-flags", baseFlag)
	for _, tc := range []struct {
		ct     string
		status int
	}{
		{"application/merge-patch+json", 200},
		{"application/json; charset=utf-8", 200},
		{"text/plain", 415},
		{"", 415},
	} {
		r := c.raw("PATCH", "/feature-flags/pzllysfw2f/base", tc.ct, `{"name": "X"}`, c.token)
		if r.status != tc.status {
			t.Errorf("Content-Type %q: status %d, want %d: %s", tc.ct, r.status, tc.status, r.body)
		}
	}
	if r := c.raw("POST", "/feature-flags", "application/merge-patch+json", baseFlag, c.token); r.status != 415 {
		t.Errorf("create with merge-patch content type: status %d, want 415", r.status)
	}
}
