package ksandbox

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// flagBody is a minimal valid create body, with extra members merged in at top level.
func flagBody(key string, extra string) string {
	b := fmt.Sprintf(`{"siteCode": %q, "featureKey": %q, "name": %q`, site, key, key)
	if extra != "" {
		b += ", " + extra
	}
	return b + "}"
}

func TestCreateRefusesInvalidFlags(t *testing.T) {
	rule := func(fields string) string {
		return `"environmentConfigurations": [{"environmentKey": "production", "rolloutRules": [{"type": "TARGETED_DELIVERY", "variationKey": "on"` + fields + `}]}]`
	}
	cases := []struct{ name, body, msg string }{
		{"featureKey missing", `{"siteCode": "pzllysfw2f", "name": "x"}`, "featureKey: required"},
		{"featureKey pattern", flagBody("Bad Key", ""), "does not match ^[a-z0-9_-]{1,255}$"},
		{"featureKey too long", flagBody(strings.Repeat("a", 256), ""), "does not match"},
		{"name missing", `{"siteCode": "pzllysfw2f", "featureKey": "x"}`, "name: required"},
		{"name too long", `{"siteCode": "pzllysfw2f", "featureKey": "x", "name": "` + strings.Repeat("n", 101) + `"}`, "name: must be 1 to 100 characters"},
		{"siteCode missing", `{"featureKey": "x", "name": "x"}`, "siteCode: required"},
		{"siteCode length", `{"siteCode": "short", "featureKey": "x", "name": "x"}`, "must be exactly 10 characters"},
		{"site not allowed", `{"siteCode": "aaaaaaaaaa", "featureKey": "x", "name": "x"}`, "not one of this account's sites"},
		{"description too long", flagBody("x", `"description": "`+strings.Repeat("d", 5001)+`"`), "description: must be at most 5000"},
		{"variable type", flagBody("x", `"variables": [{"key": "v", "type": "DATE", "value": "x"}]`), `variables[0].type: "DATE" is not one of`},
		{"variable value of its type", flagBody("x", `"variables": [{"key": "v", "type": "BOOLEAN", "value": "yes"}]`), "is not a BOOLEAN"},
		{"number value", flagBody("x", `"variables": [{"key": "v", "type": "NUMBER", "value": "1x"}]`), "is not a NUMBER"},
		{"enum without allowed values", flagBody("x", `"variables": [{"key": "v", "type": "ENUM", "value": "a"}]`), "allowedValues: required"},
		{"variable value must be a string", flagBody("x", `"variables": [{"key": "v", "type": "NUMBER", "value": 5}]`), "variables.value: must be a string"},
		{"no variations", flagBody("x", `"variations": []`), "at least one variation"},
		{"duplicate variation", flagBody("x", `"variations": [{"key": "on"}, {"key": "on"}]`), `variation "on" is defined twice`},
		{"unknown environment", flagBody("x", `"environmentConfigurations": [{"environmentKey": "qa"}]`), `unknown environment "qa"`},
		{"environment twice", flagBody("x", `"environmentConfigurations": [{"environmentKey": "staging"}, {"environmentKey": "staging"}]`), "listed twice"},
		{"environment without key", flagBody("x", `"environmentConfigurations": [{"featureEnabled": true}]`), "environmentKey: required"},
		{"default variation missing", flagBody("x", `"environmentConfigurations": [{"environmentKey": "staging", "defaultVariationKey": "blue"}]`), `variation "blue" does not exist`},
		{"rule type missing", flagBody("x", `"environmentConfigurations": [{"environmentKey": "production", "rolloutRules": [{"name": "r"}]}]`), "type: required"},
		{"rule type", flagBody("x", `"environmentConfigurations": [{"environmentKey": "production", "rolloutRules": [{"type": "CANARY"}]}]`), `type: "CANARY" is not one of TARGETED_DELIVERY, PROGRESSIVE_DELIVERY, EXPERIMENTATION`},
		{"rule exposition", flagBody("x", rule(`, "exposition": -1`)), "between 0 and 100"},
		{"rule variation", flagBody("x", rule(`, "controlVariationKey": "blue"`)), `controlVariationKey: variation "blue" does not exist`},
		{"rule state", flagBody("x", rule(`, "state": "ON"`)), `state: "ON" is not one of ACTIVE, PAUSED`},
		{"traffic allocation method", flagBody("x", rule(`, "trafficAllocationMethod": "RANDOM"`)), `"RANDOM" is not one of MANUAL, MULTI_ARMED_BANDIT, CONTEXTUAL_BANDIT`},
		{"traffic allocation variation", flagBody("x", rule(`, "trafficAllocations": [{"variationKey": "blue", "exposition": 10}]`)), `variation "blue" does not exist`},
		{"rollback criteria", flagBody("x", rule(`, "rollbackConditions": [{"target": "RULE", "criteria": "CLICKS", "comparisonOperator": "LESS_THAN", "matchValue": 1}]`)), `criteria: "CLICKS" is not one of`},
		{"rollback operator", flagBody("x", rule(`, "rollbackConditions": [{"target": "RULE", "criteria": "UPLIFT", "comparisonOperator": "EQUAL", "matchValue": 1}]`)), `comparisonOperator: "EQUAL" is not one of`},
		{"rollback target", flagBody("x", rule(`, "rollbackConditions": [{"target": "FLAG", "criteria": "UPLIFT", "comparisonOperator": "LESS_THAN", "matchValue": 1}]`)), `target: "FLAG" is not one of`},
		{"rollback matchValue", flagBody("x", rule(`, "rollbackConditions": [{"target": "RULE", "criteria": "UPLIFT", "comparisonOperator": "LESS_THAN"}]`)), "matchValue: required"},
		{"rule id on create", flagBody("x", rule(`, "id": 5`)), "rule 5 does not exist"},
		{"release dates", flagBody("x", rule(`, "release": {"releaseFrom": "tomorrow"}`)), "is not a date-time"},
		{"bucketing key", flagBody("x", `"bucketingKey": {"bucketingKeyType": "CUSTOM_DATA"}`), "customDataId: required"},
		{"integer field", flagBody("x", `"attributionWindow": 1.5`), "attributionWindow: must be an integer"},
		{"unknown field", flagBody("x", `"owner": "me"`), `unknown field "owner"`},
		{"empty body", ``, "body: empty"},
	}
	_, c, _ := setup(t, Options{Sites: []string{site, "bbbbbbbbbb"}, RatePer10s: -1})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.raw("POST", "/feature-flags", "application/json", tc.body, c.token)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			m := r.json(t)
			if msg, _ := m["message"].(string); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
			if m["status"] != 400.0 {
				t.Errorf("status member %v, want 400", m["status"])
			}
		})
	}
	if n := len(c.must(200, "GET", "/feature-flags", "").list(t)); n != 0 {
		t.Errorf("refused creates stored %d flags", n)
	}
}

func TestCreateDefaults(t *testing.T) {
	_, c, _ := setup(t, Options{})

	t.Run("given environments as sent, the others defaulted", func(t *testing.T) {
		f := c.must(201, "POST", "/feature-flags", flagBody("some_envs", `"isArchived": true, "variations": [{"key": "off"}, {"key": "on"}],
			"environmentConfigurations": [{"environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "on"}, {"environmentKey": "development"}]`)).json(t)
		want := map[string][2]any{"production": {true, "on"}, "staging": {false, "off"}, "development": {true, "on"}}
		var order []string
		for _, e := range f["environmentConfigurations"].([]any) {
			m := e.(map[string]any)
			key := m["environmentKey"].(string)
			order = append(order, key)
			if got := [2]any{m["featureEnabled"], m["defaultVariationKey"]}; got != want[key] {
				t.Errorf("%s: enabled/default = %v, want %v", key, got, want[key])
			}
			if !sameValue(m["integrations"], map[string]any{"deliveryRules": []any{}, "experimentRules": []any{}}) {
				t.Errorf("%s: integrations %s", key, short(m["integrations"]))
			}
		}
		if strings.Join(order, ",") != "production,staging,development" {
			t.Errorf("environment order %v", order)
		}
		if f["archived"] != true || f["attributionWindow"] != 604800000.0 || f["health"] != "HEALTHY" {
			t.Errorf("archived/attributionWindow/health = %v/%v/%v", f["archived"], f["attributionWindow"], f["health"])
		}
	})
	t.Run("no variations: off and on", func(t *testing.T) {
		f := c.must(201, "POST", "/feature-flags", flagBody("no_variations", "")).json(t)
		if got := get(f, "variations"); !sameValue(got, []any{
			map[string]any{"name": "Off", "key": "off", "variables": []any{}},
			map[string]any{"name": "On", "key": "on", "variables": []any{}},
		}) {
			t.Errorf("variations %s", short(got))
		}
	})
	t.Run("without on and off the first variation is served", func(t *testing.T) {
		f := c.must(201, "POST", "/feature-flags", flagBody("ab", `"variations": [{"key": "a"}, {"key": "b"}]`)).json(t)
		for _, key := range []string{"production", "staging", "development"} {
			if got := envOf(t, f, key)["defaultVariationKey"]; got != "a" {
				t.Errorf("%s serves %v, want a", key, got)
			}
		}
	})
	t.Run("custom project environments", func(t *testing.T) {
		_, c2, _ := setup(t, Options{Environments: []string{"dev", "prod"}})
		f := c2.must(201, "POST", "/feature-flags", flagBody("x", "")).json(t)
		if got := get(f, "environmentConfigurations.0.environmentKey"); got != "dev" {
			t.Errorf("first environment %v", got)
		}
		if n := len(f["environmentConfigurations"].([]any)); n != 2 {
			t.Errorf("%d environments, want 2", n)
		}
		c2.must(400, "POST", "/feature-flags", flagBody("y", `"environmentConfigurations": [{"environmentKey": "production"}]`))
	})
}

func TestConflictNotFoundAndRoutes(t *testing.T) {
	s, c, _ := setup(t, Options{})
	c.must(201, "POST", "/feature-flags", flagBody("dup", ""))
	before := flagJSON(t, s, "dup")
	r := c.must(409, "POST", "/feature-flags", flagBody("dup", `"description": "second"`))
	if msg := r.json(t)["message"]; msg != "feature flag pzllysfw2f/dup already exists" {
		t.Errorf("409 message %q", msg)
	}
	if after := flagJSON(t, s, "dup"); string(after) != string(before) {
		t.Errorf("409 changed the flag")
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/feature-flags/pzllysfw2f/nope", "", 404},
		{"GET", "/feature-flags/other_site/dup", "", 404},
		{"PATCH", "/feature-flags/pzllysfw2f/nope", `{"name": "x"}`, 404},
		{"PATCH", "/feature-flags/pzllysfw2f/nope/production", `{"featureEnabled": true}`, 404},
		{"PATCH", "/feature-flags/pzllysfw2f/dup/qa", `{"featureEnabled": true}`, 404},
		{"PATCH", "/feature-flags/rules/123", `{"exposition": 5}`, 404},
		{"PATCH", "/rules/123", `{"exposition": 5}`, 404},
		{"PATCH", "/rules/abc", `{"exposition": 5}`, 404},
		{"DELETE", "/feature-flags/pzllysfw2f/nope", "", 404},
		{"GET", "/goals", "", 404},
		{"GET", "/feature-flags/", "", 404},
		{"GET", "/feature-flags/a/b/c/d", "", 404},
		{"PUT", "/feature-flags/pzllysfw2f/dup", `{}`, 405},
		{"DELETE", "/feature-flags", "", 405},
		{"GET", "/feature-flags/search", "", 405},
		{"GET", "/feature-flags/pzllysfw2f/dup/production", "", 405},
		{"GET", "/rules/1", "", 405},
		{"GET", "/oauth/token", "", 405},
	} {
		r := c.do(tc.method, tc.path, tc.body)
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
		if msg, _ := r.json(t)["message"].(string); msg == "" {
			t.Errorf("%s %s: no message in %s", tc.method, tc.path, r.body)
		}
		if tc.status == 405 && r.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
}

func TestDelete(t *testing.T) {
	_, c, _ := setup(t, Options{})
	c.must(201, "POST", "/feature-flags", flagBody("gone", ""))
	r := c.must(204, "DELETE", "/feature-flags/pzllysfw2f/gone", "")
	if len(r.body) != 0 {
		t.Errorf("204 with a body: %s", r.body)
	}
	c.must(404, "GET", "/feature-flags/pzllysfw2f/gone", "")
	c.must(201, "POST", "/feature-flags", flagBody("gone", "")) // the key is free again
}

func TestOptionalFields(t *testing.T) {
	_, c, _ := setup(t, Options{})
	c.must(201, "POST", "/feature-flags", baseFlag)
	empty := map[string]any{"tags": []any{}, "description": "", "variables": []any{}, "variations": []any{},
		"secondaryGoalIds": []any{}, "environmentConfigurations": []any{}}

	for _, path := range []string{"/feature-flags", "/feature-flags/pzllysfw2f/base"} {
		for _, tc := range []struct {
			query  string
			filled []string
		}{
			{"", nil},
			{"?optionalFields=tags", []string{"tags"}},
			{"?optionalFields=tags,description&optionalFields=variations", []string{"tags", "description", "variations"}},
			{"?optionalFields=" + strings.Join(OptionalFields, ","), OptionalFields},
		} {
			r := c.must(200, "GET", path+tc.query, "")
			var f map[string]any
			if path == "/feature-flags" {
				f = r.list(t)[0]
			} else {
				f = r.json(t)
			}
			for name, emptyValue := range empty {
				isEmpty := sameValue(f[name], emptyValue)
				if want := !contains(tc.filled, name); isEmpty != want {
					t.Errorf("GET %s%s: %s = %s, empty %v, want empty %v", path, tc.query, name, short(f[name]), isEmpty, want)
				}
			}
			if f["name"] != "Base" || f["id"] == nil {
				t.Errorf("GET %s%s: required fields missing: %s", path, tc.query, short(f))
			}
		}
	}
	if r := c.do("GET", "/feature-flags?optionalFields=tags,colour", ""); r.status != 400 || !strings.Contains(string(r.body), `unknown field \"colour\"`) {
		t.Errorf("unknown optional field: %d %s", r.status, r.body)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPaging(t *testing.T) {
	s, c, _ := setup(t, Options{RatePer10s: -1, RatePerHour: -1})
	for i := range 250 {
		c.must(201, "POST", "/feature-flags", flagBody(fmt.Sprintf("flag_%03d", i), ""))
	}
	if err := s.SetFlagJSON("otherste01", []byte(`{"featureKey": "elsewhere", "name": "e"}`)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		query                         string
		perPage, pages, total, onLast int
	}{
		{"?siteCode=pzllysfw2f", 20, 13, 250, 10},
		{"?siteCode=pzllysfw2f&perPage=100", 100, 3, 250, 50},
		{"?siteCode=pzllysfw2f&perPage=1000", 100, 3, 250, 50}, // clamped
		{"?perPage=50", 50, 6, 251, 1},
		{"?siteCode=otherste01", 20, 1, 1, 1},
		{"?siteCode=nobody0000", 20, 0, 0, 0},
	} {
		seen := map[float64]bool{}
		last := 0.0
		for page := 1; page <= max(tc.pages, 1); page++ {
			r := c.must(200, "GET", fmt.Sprintf("/feature-flags%s&page=%d", tc.query, page), "")
			h := func(name string) string { return r.header.Get("X-Pagination-" + name) }
			if h("Page-Count") != fmt.Sprint(tc.pages) || h("Total-Count") != fmt.Sprint(tc.total) ||
				h("Per-Page") != fmt.Sprint(tc.perPage) || h("Current-Page") != fmt.Sprint(page) {
				t.Fatalf("%s page %d: headers %v", tc.query, page, r.header)
			}
			l := r.list(t)
			want := tc.perPage
			if page == tc.pages || tc.pages == 0 {
				want = tc.onLast
			}
			if len(l) != want {
				t.Fatalf("%s page %d: %d flags, want %d", tc.query, page, len(l), want)
			}
			for _, f := range l {
				id := f["id"].(float64)
				if seen[id] || id <= last {
					t.Fatalf("%s page %d: id %v out of order or repeated", tc.query, page, id)
				}
				seen[id], last = true, id
			}
		}
		if len(seen) != tc.total {
			t.Errorf("%s: %d flags over all pages, want %d", tc.query, len(seen), tc.total)
		}
		if l := c.must(200, "GET", fmt.Sprintf("/feature-flags%s&page=%d", tc.query, tc.pages+1), "").list(t); len(l) != 0 {
			t.Errorf("%s: page past the last holds %d flags", tc.query, len(l))
		}
	}
	for _, q := range []string{"page=0", "perPage=-1", "page=x"} {
		c.must(400, "GET", "/feature-flags?"+q, "")
	}
}

func TestSearch(t *testing.T) {
	s, c, _ := setup(t, Options{})
	for _, k := range []string{"alpha", "beta", "gamma"} {
		c.must(201, "POST", "/feature-flags", flagBody(k, `"tags": ["t-`+k+`"]`))
	}
	if err := s.SetFlagJSON("otherste01", []byte(`{"featureKey": "alpha", "name": "other alpha"}`)); err != nil {
		t.Fatal(err)
	}
	keys := func(r reply) string {
		var out []string
		for _, f := range r.list(t) {
			out = append(out, f["siteCode"].(string)[:1]+":"+f["featureKey"].(string))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ body, want string }{
		{``, "p:alpha,p:beta,p:gamma,o:alpha"},
		{`{}`, "p:alpha,p:beta,p:gamma,o:alpha"},
		{`{"filter": {"field": "featureKey", "operator": "EQUAL", "parameters": ["alpha"]}}`, "p:alpha,o:alpha"},
		{`{"filter": [{"field": "featureKey", "operator": "IN", "parameters": ["alpha", "gamma"]}, {"field": "siteCode", "operator": "EQUAL", "parameters": ["pzllysfw2f"]}]}`, "p:alpha,p:gamma"},
		{`{"filter": [{"field": "siteCode", "operator": "IN", "parameters": ["otherste01"]}]}`, "o:alpha"},
		{`{"filter": {"field": "name", "operator": "LIKE", "parameters": ["ALP"]}}`, "p:alpha,o:alpha"},
		{`{"filter": {"field": "featureKey", "operator": "LIKE", "parameters": ["%a"]}}`, "p:alpha,p:beta,p:gamma,o:alpha"},
		{`{"filter": {"field": "tags", "operator": "EQUAL", "parameters": ["t-beta"]}}`, "p:beta"},
		{`{"filter": {"field": "id", "operator": "EQUAL", "parameters": [13135]}}`, "p:beta"},
		{`{"filter": {"field": "featureKey", "operator": "NOT_IN", "parameters": ["alpha"]}}`, "p:beta,p:gamma"},
		{`{"sort": {"field": "featureKey", "direction": "DESC"}}`, "p:gamma,p:beta,p:alpha,o:alpha"},
		{`{"sort": [{"field": "siteCode"}, {"field": "id", "direction": "desc"}]}`, "o:alpha,p:gamma,p:beta,p:alpha"},
		{`{"perPage": 2, "page": 2}`, "p:gamma,o:alpha"},
	} {
		r := c.raw("POST", "/feature-flags/search", "application/json", tc.body, c.token)
		if r.status != 200 {
			t.Errorf("search %s: status %d: %s", tc.body, r.status, r.body)
			continue
		}
		if got := keys(r); got != tc.want {
			t.Errorf("search %s = %s, want %s", tc.body, got, tc.want)
		}
	}
	r := c.raw("POST", "/feature-flags/search?optionalFields=tags&siteCode=pzllysfw2f", "application/json", `{"perPage": 1}`, c.token)
	if got := r.list(t)[0]["tags"]; !sameValue(got, []any{"t-alpha"}) || r.header.Get("X-Pagination-Page-Count") != "3" {
		t.Errorf("search with optional fields: tags %s, page count %s", short(got), r.header.Get("X-Pagination-Page-Count"))
	}
	for _, bad := range []string{
		`{"filter": {"field": "colour", "operator": "EQUAL", "parameters": ["x"]}}`,
		`{"filter": {"field": "featureKey", "operator": "ABOUT", "parameters": ["x"]}}`,
		`{"filter": {"field": "featureKey", "operator": "EQUAL", "parameters": ["x", "y"]}}`,
		`{"filter": {"field": "featureKey", "operator": "IN", "parameters": []}}`,
		`{"filter": "alpha"}`,
		`{"sort": {"field": "colour"}}`,
		`{"page": 0}`,
		`{"where": {}}`,
	} {
		if r := c.raw("POST", "/feature-flags/search", "application/json", bad, c.token); r.status != http.StatusBadRequest {
			t.Errorf("search %s: status %d, want 400", bad, r.status)
		}
	}
}

func TestRequestEdges(t *testing.T) {
	_, c, _ := setup(t, Options{})
	if r := c.raw("GET", "/goals", "", "", ""); r.status != 401 {
		t.Errorf("unknown path without a token: %d, want 401 (authentication comes first)", r.status)
	}
	huge := flagBody("huge", `"description": "`+strings.Repeat("x", maxBody)+`"`)
	if r := c.do("POST", "/feature-flags", huge); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("body over %d bytes: %d", maxBody, r.status)
	}
	r := c.must(201, "POST", "/feature-flags", flagBody("located", ""))
	if loc := r.header.Get("Location"); loc != "/feature-flags/pzllysfw2f/located" {
		t.Errorf("Location %q", loc)
	}
}

// TestSearchByDateModified: the search the drift check sends — the site's flags,
// dateModified newest first, paged, with the total count — as the search reference
// documents it (body {filter, page, perPage, sort}); a patch, an environment patch and an
// archive each move the flag to the front.
func TestSearchByDateModified(t *testing.T) {
	s, c, clock := setup(t, Options{RatePer10s: -1, RatePerHour: -1})
	for i := range 5 {
		c.must(201, "POST", "/feature-flags", flagBody(fmt.Sprintf("flag_%d", i), ""))
		clock.Advance(time.Second)
	}
	if err := s.SetFlagJSON("otherste01", []byte(`{"featureKey": "elsewhere", "name": "e"}`)); err != nil {
		t.Fatal(err)
	}
	search := func(page int) (string, reply) {
		body := fmt.Sprintf(`{"filter": [{"field": "siteCode", "operator": "EQUAL", "parameters": ["pzllysfw2f"]}], "page": %d, "perPage": 2, "sort": [{"field": "dateModified", "direction": "DESC"}]}`, page)
		r := c.must(200, "POST", "/feature-flags/search", body)
		var keys []string
		for _, f := range r.list(t) {
			keys = append(keys, f["featureKey"].(string)+"@"+f["dateModified"].(string)[11:])
		}
		return strings.Join(keys, ","), r
	}
	for _, tc := range []struct {
		change string // a call made first, "" for none
		want   string // page 1, then page 2
	}{
		{"", "flag_4@10:42:18,flag_3@10:42:17|flag_2@10:42:16,flag_1@10:42:15"},
		{`PATCH /feature-flags/pzllysfw2f/flag_1 {"description": "moved"}`, "flag_1@10:42:21,flag_4@10:42:18|flag_3@10:42:17,flag_2@10:42:16"},
		{`PATCH /feature-flags/pzllysfw2f/flag_0/production {"featureEnabled": true}`, "flag_0@10:42:22,flag_1@10:42:21|flag_4@10:42:18,flag_3@10:42:17"},
		{`PATCH /feature-flags/pzllysfw2f/flag_2 {"isArchived": true}`, "flag_2@10:42:23,flag_0@10:42:22|flag_1@10:42:21,flag_4@10:42:18"},
	} {
		clock.Advance(time.Second)
		if tc.change != "" {
			method, rest, _ := strings.Cut(tc.change, " ")
			path, body, _ := strings.Cut(rest, " ")
			c.must(200, method, path, body)
		}
		p1, r := search(1)
		p2, _ := search(2)
		if got := p1 + "|" + p2; got != tc.want {
			t.Errorf("after %q: %s, want %s", tc.change, got, tc.want)
		}
		if h := r.header.Get("X-Pagination-Total-Count"); h != "5" {
			t.Errorf("after %q: X-Pagination-Total-Count %q, want 5 (the site's flags, archived included)", tc.change, h)
		}
	}
}
