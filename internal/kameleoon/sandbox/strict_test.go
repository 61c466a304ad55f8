package ksandbox

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseVariants(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Variant
	}{
		{"", nil},
		{"none", nil},
		{"all", Variants},
		{"zoned-dates, env-patch-required", []Variant{EnvPatchRequired, ZonedDates}},
		{"order-index,order-index,all", Variants},
	} {
		got, err := ParseVariants(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseVariants(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	_, err := ParseVariants("order-index,orderindex")
	if err == nil || !strings.Contains(err.Error(), `"orderindex"`) || !strings.Contains(err.Error(), "env-patch-required") {
		t.Errorf("unknown variant: err = %v, want one naming it and the known ones", err)
	}
	if _, err := New(Options{Strict: []Variant{"nope"}}); err == nil {
		t.Error("New accepted an unknown variant")
	}
	for _, v := range Variants {
		if v.Description() == "unknown variant" {
			t.Errorf("%s has no description", v)
		}
	}
	s, err := New(Options{Strict: []Variant{ZonedDates, OrderIndex}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Strict(); !reflect.DeepEqual(got, []Variant{OrderIndex, ZonedDates}) {
		t.Errorf("Strict() = %v", got)
	}
}

// twoRules is a flag whose production environment has rules "a" then "b".
const twoRules = `{"siteCode": "pzllysfw2f", "featureKey": "two", "name": "Two",
  "environmentConfigurations": [{"environmentKey": "production", "rolloutRules": [
    {"name": "a", "type": "TARGETED_DELIVERY", "variationKey": "on"},
    {"name": "b", "type": "TARGETED_DELIVERY", "variationKey": "off"}]}]}`

// ruleNames lists the names and orderIndex of production's rules, as read back.
func ruleNames(t *testing.T, c *client) []string {
	t.Helper()
	f := c.must(200, "GET", "/feature-flags/pzllysfw2f/two?optionalFields=environmentConfigurations", "").json(t)
	var out []string
	for _, r := range envOf(t, f, "production")["rolloutRules"].([]any) {
		m := r.(map[string]any)
		out = append(out, m["name"].(string)+"@"+string(mustJSON(t, m["orderIndex"])))
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ruleIDs reads production's rule ids by name.
func ruleIDs(t *testing.T, c *client) map[string]float64 {
	t.Helper()
	f := c.must(200, "GET", "/feature-flags/pzllysfw2f/two?optionalFields=environmentConfigurations", "").json(t)
	ids := map[string]float64{}
	for _, r := range envOf(t, f, "production")["rolloutRules"].([]any) {
		m := r.(map[string]any)
		ids[m["name"].(string)] = m["id"].(float64)
	}
	return ids
}

func TestStrictEnvPatchRequired(t *testing.T) {
	const path = "/feature-flags/pzllysfw2f/two/production"
	full := `{"featureKey": "two", "name": "Two", "integrations": {"deliveryRules": [], "experimentRules": []}, "rolloutRules": [], "featureEnabled": false}`

	_, lenient, _ := setup(t, Options{})
	lenient.must(201, "POST", "/feature-flags", twoRules)
	lenient.must(200, "PATCH", path, `{"featureEnabled": false}`)

	_, c, _ := setup(t, Options{Strict: []Variant{EnvPatchRequired}})
	c.must(201, "POST", "/feature-flags", twoRules)
	r := c.must(400, "PATCH", path, `{"featureEnabled": false}`)
	msg, _ := r.json(t)["message"].(string)
	if !strings.HasPrefix(msg, "featureKey, name, integrations, rolloutRules: required") {
		t.Errorf("message = %q, want the four missing fields named", msg)
	}
	r = c.must(400, "PATCH", path, `{"featureKey": "two", "name": "Two", "integrations": null, "rolloutRules": []}`)
	if msg, _ := r.json(t)["message"].(string); !strings.HasPrefix(msg, "integrations: required") {
		t.Errorf("null integrations: message = %q", msg)
	}
	got := c.must(200, "PATCH", path, full).json(t)
	if env := envOf(t, got, "production"); env["featureEnabled"] != false || len(env["rolloutRules"].([]any)) != 0 {
		t.Errorf("full patch not applied: %v", env)
	}
	// The flag-level patch is not an environment patch: nothing is required there.
	c.must(200, "PATCH", "/feature-flags/pzllysfw2f/two", `{"description": "d"}`)
}

func TestStrictOrderIndex(t *testing.T) {
	const path = "/feature-flags/pzllysfw2f/two/production"
	reorder := func(t *testing.T, c *client, withIndex bool) {
		t.Helper()
		ids := ruleIDs(t, c)
		idx := func(i int) string {
			if !withIndex {
				return ""
			}
			return `, "orderIndex": ` + itoa(i)
		}
		body := `{"rolloutRules": [
		  {"id": ` + itoa(int(ids["b"])) + `, "name": "b", "type": "TARGETED_DELIVERY", "variationKey": "off"` + idx(0) + `},
		  {"id": ` + itoa(int(ids["a"])) + `, "name": "a", "type": "TARGETED_DELIVERY", "variationKey": "on"` + idx(1) + `}]}`
		c.must(200, "PATCH", path, body)
	}

	t.Run("default: the array position is the order", func(t *testing.T) {
		_, c, _ := setup(t, Options{})
		c.must(201, "POST", "/feature-flags", twoRules)
		reorder(t, c, false)
		if got := strings.Join(ruleNames(t, c), ","); got != "b@0,a@1" {
			t.Errorf("after a reorder without orderIndex: %s, want b@0,a@1", got)
		}
	})
	t.Run("order-index: a reorder without orderIndex does not converge", func(t *testing.T) {
		_, c, _ := setup(t, Options{Strict: []Variant{OrderIndex}})
		c.must(201, "POST", "/feature-flags", twoRules)
		if got := strings.Join(ruleNames(t, c), ","); got != "a@0,b@1" {
			t.Fatalf("created: %s, want a@0,b@1", got)
		}
		reorder(t, c, false)
		if got := strings.Join(ruleNames(t, c), ","); got != "a@0,b@1" {
			t.Errorf("after a reorder without orderIndex: %s, want the old order a@0,b@1", got)
		}
		reorder(t, c, true)
		if got := strings.Join(ruleNames(t, c), ","); got != "b@0,a@1" {
			t.Errorf("after a reorder with orderIndex: %s, want b@0,a@1", got)
		}
		// A patch that does not send the rules keeps them and their indices.
		c.must(200, "PATCH", path, `{"featureEnabled": true}`)
		if got := strings.Join(ruleNames(t, c), ","); got != "b@0,a@1" {
			t.Errorf("after a patch without rules: %s, want b@0,a@1", got)
		}
		// Indices need not be contiguous; the order follows them.
		ids := ruleIDs(t, c)
		c.must(200, "PATCH", path, `{"rolloutRules": [
		  {"id": `+itoa(int(ids["b"]))+`, "name": "b", "type": "TARGETED_DELIVERY", "variationKey": "off", "orderIndex": 9},
		  {"id": `+itoa(int(ids["a"]))+`, "name": "a", "type": "TARGETED_DELIVERY", "variationKey": "on", "orderIndex": 4}]}`)
		if got := strings.Join(ruleNames(t, c), ","); got != "a@4,b@9" {
			t.Errorf("after sparse indices: %s, want a@4,b@9", got)
		}
	})
}

// richFlag is a flag with tags, a description, a variable and a secondary goal.
const richFlag = `{"siteCode": "pzllysfw2f", "featureKey": "rich", "name": "Rich", "description": "d",
  "tags": ["t"], "secondaryGoalIds": [5], "variables": [{"key": "v", "type": "STRING", "value": "x"}]}`

func TestStrictOptionalFields(t *testing.T) {
	all := "optionalFields=" + strings.Join(OptionalFields, ",")
	documented := "optionalFields=tags,description"

	t.Run("default", func(t *testing.T) {
		_, c, _ := setup(t, Options{})
		c.must(201, "POST", "/feature-flags", richFlag)
		l := c.must(200, "GET", "/feature-flags?"+all, "").list(t)
		if len(l) != 1 || len(l[0]["variations"].([]any)) != 2 || len(l[0]["environmentConfigurations"].([]any)) != 3 {
			t.Errorf("list with every optional field: %v", l)
		}
		c.must(400, "GET", "/feature-flags?optionalFields=tags,bogus", "")
	})

	t.Run("optional-fields-refused", func(t *testing.T) {
		_, c, _ := setup(t, Options{Strict: []Variant{OptionalFieldsRefused}})
		c.must(201, "POST", "/feature-flags", richFlag)
		for _, p := range []string{"/feature-flags?" + all, "/feature-flags/pzllysfw2f/rich?" + all} {
			r := c.must(400, "GET", p, "")
			if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, `"variables"`) || !strings.Contains(msg, "tags,description") {
				t.Errorf("GET %s: message %q, want the refused name and the accepted ones", p, msg)
			}
		}
		c.must(400, "POST", "/feature-flags/search?"+all, "")
		l := c.must(200, "GET", "/feature-flags?"+documented, "").list(t)
		if len(l) != 1 {
			t.Fatalf("list: %v", l)
		}
		for _, k := range []string{"variables", "variations", "secondaryGoalIds", "environmentConfigurations"} {
			if v, ok := l[0][k].([]any); !ok || len(v) != 0 {
				t.Errorf("listed %s = %v, want []", k, l[0][k])
			}
		}
		if l[0]["description"] != "d" || len(l[0]["tags"].([]any)) != 1 {
			t.Errorf("documented fields missing from the list: %v", l[0])
		}
		assertWholeFlag(t, c.must(200, "GET", "/feature-flags/pzllysfw2f/rich?"+documented, "").json(t))
		assertWholeFlag(t, c.must(200, "GET", "/feature-flags/pzllysfw2f/rich", "").json(t))
	})

	t.Run("optional-fields-ignored", func(t *testing.T) {
		_, c, _ := setup(t, Options{Strict: []Variant{OptionalFieldsIgnored}})
		c.must(201, "POST", "/feature-flags", richFlag)
		for _, p := range []string{"/feature-flags?" + all, "/feature-flags?optionalFields=tags,bogus"} {
			l := c.must(200, "GET", p, "").list(t)
			if len(l) != 1 {
				t.Fatalf("list: %v", l)
			}
			for _, k := range []string{"variables", "variations", "secondaryGoalIds", "environmentConfigurations"} {
				if v, ok := l[0][k]; ok {
					t.Errorf("GET %s: %s = %v, want it left out", p, k, v)
				}
			}
			if len(l[0]["tags"].([]any)) != 1 {
				t.Errorf("GET %s: tags %v, want them", p, l[0]["tags"])
			}
		}
		s := c.must(200, "POST", "/feature-flags/search?"+all, "").list(t)
		if _, ok := s[0]["environmentConfigurations"]; ok || len(s) != 1 {
			t.Errorf("search: %v, want environmentConfigurations left out", s)
		}
		assertWholeFlag(t, c.must(200, "GET", "/feature-flags/pzllysfw2f/rich?"+all, "").json(t))
	})
}

func assertWholeFlag(t *testing.T, f map[string]any) {
	t.Helper()
	if len(f["variations"].([]any)) != 2 || len(f["environmentConfigurations"].([]any)) != 3 ||
		len(f["variables"].([]any)) != 1 || len(f["secondaryGoalIds"].([]any)) != 1 || f["description"] != "d" || len(f["tags"].([]any)) != 1 {
		t.Errorf("single-flag GET is not the whole flag: %v", f)
	}
}

func TestStrictZonedDates(t *testing.T) {
	body := func(from, to, zone string) string {
		return `{"siteCode": "pzllysfw2f", "featureKey": "win", "name": "Win",
		  "environmentConfigurations": [{"environmentKey": "production", "rolloutRules": [
		    {"name": "r", "type": "TARGETED_DELIVERY", "variationKey": "on",
		     "release": {"releaseFrom": "` + from + `", "releaseTo": "` + to + `", "timeZone": "` + zone + `"}}]}]}`
	}
	release := func(t *testing.T, f map[string]any) string {
		t.Helper()
		r := get(envOf(t, f, "production"), "rolloutRules.0.release").(map[string]any)
		return r["releaseFrom"].(string) + " " + r["releaseTo"].(string) + " " + r["timeZone"].(string)
	}

	_, lenient, _ := setup(t, Options{})
	got := lenient.must(201, "POST", "/feature-flags", body("2025-12-11T11:58:01", "2025-12-13T11:58:01", "Europe/Paris")).json(t)
	if r := release(t, got); r != "2025-12-11T11:58:01 2025-12-13T11:58:01 Europe/Paris" {
		t.Errorf("default: release read back as %s, want it as written", r)
	}

	_, c, _ := setup(t, Options{Strict: []Variant{ZonedDates}})
	got = c.must(201, "POST", "/feature-flags", body("2025-12-11T11:58:01", "2026-07-13T11:58:01+02:00", "Europe/Paris")).json(t)
	if r := release(t, got); r != "2025-12-11T10:58:01Z 2026-07-13T09:58:01Z Europe/Paris" {
		t.Errorf("zoned-dates: release read back as %s, want UTC instants", r)
	}
	listed := c.must(200, "GET", "/feature-flags/pzllysfw2f/win?optionalFields=environmentConfigurations", "").json(t)
	if r := release(t, listed); r != "2025-12-11T10:58:01Z 2026-07-13T09:58:01Z Europe/Paris" {
		t.Errorf("zoned-dates: get reads %s", r)
	}
	// Re-sending what was read back changes nothing.
	c.must(200, "PATCH", "/feature-flags/pzllysfw2f/win/production", `{"featureEnabled": true}`)
	again := c.must(200, "GET", "/feature-flags/pzllysfw2f/win?optionalFields=environmentConfigurations", "").json(t)
	if r := release(t, again); r != "2025-12-11T10:58:01Z 2026-07-13T09:58:01Z Europe/Paris" {
		t.Errorf("zoned-dates: after another patch %s", r)
	}
	r := c.must(400, "POST", "/feature-flags", strings.Replace(body("2025-12-11T11:58:01", "", "Mars/Olympus"), "win", "mars", 1))
	if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, `unknown time zone "Mars/Olympus"`) {
		t.Errorf("unknown zone: message %q", msg)
	}
}
