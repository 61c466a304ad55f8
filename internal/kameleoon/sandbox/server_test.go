package ksandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOAuth(t *testing.T) {
	s, c, clock := setup(t, Options{ClientID: "my-client", ClientSecret: "canary-secret-7f3a"})
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const formCT = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"bad secret", formCT, form("grant_type", "client_credentials", "client_id", "my-client", "client_secret", "wrong"), 401, "invalid_client"},
		{"bad id", formCT, form("grant_type", "client_credentials", "client_id", "sandbox", "client_secret", "canary-secret-7f3a"), 401, "invalid_client"},
		{"no credentials", formCT, form("grant_type", "client_credentials"), 401, "invalid_client"},
		{"wrong grant", formCT, form("grant_type", "password", "client_id", "my-client", "client_secret", "canary-secret-7f3a"), 400, "unsupported_grant_type"},
		{"no grant", formCT, form("client_id", "my-client", "client_secret", "canary-secret-7f3a"), 400, "invalid_request"},
		{"JSON body", "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
	} {
		r := c.raw("POST", "/oauth/token", tc.ct, tc.body, "")
		m := r.json(t)
		if r.status != tc.status || m["error"] != tc.code || m["error_description"] == "" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}

	clock.Advance(time.Hour)
	r := c.raw("POST", "/oauth/token", formCT, form("grant_type", "client_credentials", "client_id", "my-client", "client_secret", "canary-secret-7f3a"), "")
	m := r.json(t)
	if r.status != 200 || m["token_type"] != "Bearer" || m["expires_in"] != 7200.0 || len(m["access_token"].(string)) < 32 {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	tok := m["access_token"].(string)
	if tok == c.token {
		t.Error("two token calls gave the same token")
	}
	basic, _ := http.NewRequest("POST", c.base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	basic.Header.Set("Content-Type", formCT)
	basic.SetBasicAuth("my-client", "canary-secret-7f3a")
	if resp, err := c.hc.Do(basic); err != nil || resp.StatusCode != 200 {
		t.Errorf("basic auth token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	for _, tc := range []struct{ name, token string }{{"no token", ""}, {"unknown token", "abc"}} {
		r := c.raw("GET", "/feature-flags", "", "", tc.token)
		if r.status != 401 || r.json(t)["message"] == "" || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s %v", tc.name, r.status, r.body, r.header)
		}
	}
	c.must(200, "GET", "/feature-flags", "")
	clock.Advance(time.Hour - time.Second) // c.token was issued two hours less a second ago
	c.must(200, "GET", "/feature-flags", "")
	clock.Advance(time.Second)
	if r := c.do("GET", "/feature-flags", ""); r.status != 401 {
		t.Errorf("expired token: %d", r.status)
	}
	if r := c.raw("GET", "/feature-flags", "", "", tok); r.status != 200 {
		t.Errorf("newer token: %d", r.status)
	}
	s.RevokeTokens()
	if r := c.raw("GET", "/feature-flags", "", "", tok); r.status != 401 {
		t.Errorf("revoked token: %d", r.status)
	}

	// Neither the secret nor a token reaches the call log.
	for _, call := range s.Calls() {
		for _, leak := range []string{"canary-secret-7f3a", tok, c.token} {
			if strings.Contains(string(call.Body), leak) || strings.Contains(call.Query, leak) {
				t.Errorf("call log %s %s holds a secret: %s", call.Method, call.Path, call.Body)
			}
		}
	}
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		msg  string
	}{
		{"id without secret", Options{ClientID: "x"}, "set both"},
		{"secret without id", Options{ClientSecret: "x"}, "set both"},
		{"bad site", Options{Sites: []string{"short"}}, "exactly 10"},
		{"duplicate environment", Options{Environments: []string{"a", "a"}}, "unique"},
		{"environment with a slash", Options{Environments: []string{"a/b"}}, "without"},
		{"short token life", Options{TokenTTL: time.Millisecond}, "at least one second"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.msg)
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Run("50 per 10 seconds", func(t *testing.T) {
		_, c, clock := setup(t, Options{})
		for i := 1; i <= 50; i++ {
			c.must(200, "GET", "/feature-flags", "")
			clock.Advance(100 * time.Millisecond) // all 50 within 5 s
		}
		r := c.do("GET", "/feature-flags", "")
		if r.status != 429 || r.json(t)["message"] != "Too many requests" || r.header.Get("Retry-After") != "" {
			t.Fatalf("call 51: %d %s %v", r.status, r.body, r.header)
		}
		c.getToken("sandbox", "sandbox") // token calls are not limited and do not count
		clock.Advance(5*time.Second - 100*time.Millisecond)
		if r := c.do("GET", "/feature-flags", ""); r.status != 429 {
			t.Fatalf("call at 9.9 s: %d", r.status)
		}
		clock.Advance(100 * time.Millisecond) // the first call leaves the window
		c.must(200, "GET", "/feature-flags", "")
		if r := c.do("GET", "/feature-flags", ""); r.status != 429 {
			t.Fatalf("the window slides one call at a time: %d", r.status)
		}
	})
	t.Run("1000 per hour", func(t *testing.T) {
		_, c, clock := setup(t, Options{})
		for batch := range 20 {
			for range 50 {
				c.must(200, "GET", "/feature-flags", "")
			}
			if batch < 19 {
				clock.Advance(10 * time.Second)
			}
		}
		clock.Advance(10 * time.Second) // the 10 s window is clear, the hour is not
		if r := c.do("GET", "/feature-flags", ""); r.status != 429 {
			t.Fatalf("call 1001: %d", r.status)
		}
		clock.Advance(time.Hour - 200*time.Second) // the first batch leaves the hour
		c.must(200, "GET", "/feature-flags", "")
	})
	t.Run("configurable", func(t *testing.T) {
		_, c, _ := setup(t, Options{RatePer10s: 2, RatePerHour: -1})
		c.must(200, "GET", "/feature-flags", "")
		c.must(200, "GET", "/feature-flags", "")
		c.must(429, "GET", "/feature-flags", "")
		_, u, _ := setup(t, Options{RatePer10s: -1, RatePerHour: -1})
		for range 120 {
			u.must(200, "GET", "/feature-flags", "")
		}
	})
}

func TestFaults(t *testing.T) {
	s, c, _ := setup(t, Options{})
	c.must(201, "POST", "/feature-flags", flagBody("f", ""))
	path := "/feature-flags/pzllysfw2f/f"
	name := func() string {
		var m map[string]any
		_ = json.Unmarshal(flagJSON(t, s, "f"), &m)
		return m["name"].(string)
	}

	t.Run("status with Retry-After for the next two matching calls", func(t *testing.T) {
		s.ResetCalls()
		s.InjectFault(Fault{Method: "PATCH", PathPrefix: "/feature-flags/", Status: 503, RetryAfter: "7", Count: 2})
		c.must(200, "GET", path, "") // does not match
		for i := range 2 {
			r := c.do("PATCH", path, `{"name": "one"}`)
			if r.status != 503 || r.header.Get("Retry-After") != "7" || r.json(t)["message"] != "Service Unavailable" {
				t.Fatalf("faulted call %d: %d %v %s", i, r.status, r.header, r.body)
			}
		}
		if name() != "f" {
			t.Fatal("a faulted call was applied")
		}
		c.must(200, "PATCH", path, `{"name": "one"}`)
		var statuses []int
		for _, call := range s.Calls() {
			statuses = append(statuses, call.Status)
		}
		if fmt.Sprint(statuses) != "[200 503 503 200]" || s.Writes() != 3 {
			t.Errorf("call log statuses %v, writes %d", statuses, s.Writes())
		}
	})
	t.Run("custom body", func(t *testing.T) {
		s.InjectFault(Fault{Status: 423, Body: `{"message":"locked"}`})
		if r := c.do("GET", path, ""); r.status != 423 || string(r.body) != `{"message":"locked"}` {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		s.InjectFault(Fault{Method: "PATCH", Drop: true})
		if _, err := c.try("PATCH", path, "application/json", `{"name": "two"}`, c.token); err == nil {
			t.Fatal("a dropped call answered")
		}
		if name() != "one" {
			t.Error("a dropped call was applied")
		}
		if last := s.Calls()[len(s.Calls())-1]; last.Status != 0 || last.Method != "PATCH" || string(last.Body) != `{"name": "two"}` {
			t.Errorf("dropped call logged as %+v", last)
		}
	})
	t.Run("lost response: applied, then dropped", func(t *testing.T) {
		s.InjectFault(Fault{Method: "PATCH", Drop: true, AfterHandle: true})
		if _, err := c.try("PATCH", path, "application/json", `{"name": "three"}`, c.token); err == nil {
			t.Fatal("a dropped call answered")
		}
		if name() != "three" {
			t.Error("an AfterHandle call was not applied")
		}
	})
	t.Run("applied, then an error status", func(t *testing.T) {
		s.InjectFault(Fault{Method: "PATCH", Status: 502, AfterHandle: true})
		if r := c.do("PATCH", path, `{"name": "four"}`); r.status != 502 {
			t.Errorf("status %d", r.status)
		}
		if name() != "four" {
			t.Error("an AfterHandle call was not applied")
		}
	})
	t.Run("latency: a client that gives up is not served", func(t *testing.T) {
		s.InjectFault(Fault{Method: "PATCH", Latency: 10 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "PATCH", c.base+path, strings.NewReader(`{"name": "five"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
		if resp, err := c.hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("answered despite the latency")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v", err)
		}
		deadline := time.Now().Add(5 * time.Second) // the handler notices the client left
		for len(s.Calls()) == 0 || s.Calls()[len(s.Calls())-1].Body == nil || string(s.Calls()[len(s.Calls())-1].Body) != `{"name": "five"}` {
			if time.Now().After(deadline) {
				t.Fatal("the abandoned call was never logged")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if name() != "four" {
			t.Error("an abandoned call was applied")
		}
	})
	t.Run("short latency then handled", func(t *testing.T) {
		s.InjectFault(Fault{Latency: time.Millisecond})
		c.must(200, "PATCH", path, `{"name": "six"}`)
		if name() != "six" {
			t.Error("not applied")
		}
	})
}

func TestWritesCount(t *testing.T) {
	s, c, _ := setup(t, Options{})
	c.must(201, "POST", "/feature-flags", baseFlag)
	c.must(200, "GET", "/feature-flags", "")
	c.raw("POST", "/feature-flags/search", "application/json", `{}`, c.token)
	c.getToken("sandbox", "sandbox")
	c.must(200, "PATCH", "/feature-flags/pzllysfw2f/base/production", `{"featureEnabled": false}`)
	c.must(200, "PATCH", "/rules/20557", `{"exposition": 1}`)
	c.must(400, "PATCH", "/feature-flags/pzllysfw2f/base", `{"name": ""}`)
	c.must(204, "DELETE", "/feature-flags/pzllysfw2f/base", "")
	if got := s.Writes(); got != 5 {
		t.Errorf("Writes() = %d, want 5", got)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 || s.Writes() != 0 {
		t.Error("ResetCalls left calls")
	}
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	s1, c1, _ := setup(t, Options{StatePath: state})
	c1.must(201, "POST", "/feature-flags", baseFlag)
	c1.must(200, "PATCH", "/feature-flags/pzllysfw2f/base/development", `{"rolloutRules": [{"name": "new", "type": "PROGRESSIVE_DELIVERY", "exposition": 10, "variationKey": "on", "reallocationTimestamp": 1700000000000}]}`)
	c1.must(201, "POST", "/feature-flags", flagBody("second", `"isArchived": true`))
	c1.must(201, "POST", "/feature-flags", flagBody("third", `"environmentConfigurations": [{"environmentKey": "staging", "rolloutRules": [{"type": "TARGETED_DELIVERY"}]}]`))
	c1.must(204, "DELETE", "/feature-flags/pzllysfw2f/third", "")
	c1.must(400, "POST", "/feature-flags", flagBody("Bad", "")) // refused: the file is not touched

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	s2, c2, _ := setup(t, Options{StatePath: state})
	for _, key := range []string{"base", "second"} {
		if a, b := flagJSON(t, s1, key), flagJSON(t, s2, key); string(a) != string(b) {
			t.Errorf("%s after reload differs:\n%s\n%s", key, a, b)
		}
	}
	if _, ok := s2.FlagJSON(site, "third"); ok {
		t.Error("a deleted flag came back")
	}
	f := c2.must(201, "POST", "/feature-flags", flagBody("fourth", `"environmentConfigurations": [{"environmentKey": "staging", "rolloutRules": [{"type": "TARGETED_DELIVERY"}]}]`)).json(t)
	if f["id"] != 13137.0 || get(envOf(t, f, "staging"), "rolloutRules.0.id") != 20561.0 {
		t.Errorf("ids after reload: flag %v, rule %v (must not reuse ids)", f["id"], get(envOf(t, f, "staging"), "rolloutRules.0.id"))
	}
	c2.must(200, "PATCH", "/rules/20559", `{"exposition": 20}`) // a reloaded rule is found by id

	for _, tc := range []struct{ name, content, msg string }{
		{"corrupt", `{"version": 1, "flags": [`, "load sandbox state"},
		{"wrong version", `{"version": 2, "flags": []}`, "version 2"},
		{"unknown member", `{"version": 1, "flagz": []}`, `unknown field "flagz"`},
		{"invalid flag", `{"version": 1, "flags": [{"siteCode": "pzllysfw2f", "featureKey": "x", "name": "x", "variations": []}]}`, "at least one variation"},
		{"unknown environment", `{"version": 1, "environments": ["production"], "flags": [{"siteCode": "pzllysfw2f", "featureKey": "x", "name": "x", "environmentConfigurations": [{"environmentKey": "qa"}]}]}`, `unknown environment "qa"`},
		{"bad environment", `{"version": 1, "environments": ["a/b"], "flags": []}`, `environment "a/b"`},
		{"duplicate", `{"version": 1, "flags": [{"siteCode": "pzllysfw2f", "featureKey": "x", "name": "x"}, {"siteCode": "pzllysfw2f", "featureKey": "x", "name": "x"}]}`, "listed twice"},
	} {
		p := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Options{StatePath: p}); err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", tc.name, err, tc.msg)
		}
	}
	// A project keeps the environments of its state file, after the configured ones.
	s3, err := New(Options{StatePath: state, Environments: []string{"qa", "production"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s3.Environments(), ","); got != "qa,production,staging,development" {
		t.Errorf("environments after reload with others configured: %s", got)
	}
	var reloaded map[string]any
	_ = json.Unmarshal(flagJSON(t, s3, "base"), &reloaded)
	if e := envOf(t, reloaded, "qa"); e["featureEnabled"] != false || e["defaultVariationKey"] != "off" {
		t.Errorf("a new project environment on a stored flag: %s", short(e))
	}
	if _, err := New(Options{StatePath: filepath.Join(dir, "missing.json")}); err != nil {
		t.Errorf("a missing state file: %v", err)
	}
}

func TestStateFileWriteFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	s, c, _ := setup(t, Options{StatePath: filepath.Join(sub, "state.json")})
	c.must(201, "POST", "/feature-flags", flagBody("kept", ""))
	// Replace the state directory with a plain file: no temporary file can be created
	// there, whatever the user's rights.
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before := flagJSON(t, s, "kept")
	for _, call := range []struct{ method, path, body string }{
		{"PATCH", "/feature-flags/pzllysfw2f/kept", `{"name": "changed"}`},
		{"POST", "/feature-flags", flagBody("lost", "")},
		{"DELETE", "/feature-flags/pzllysfw2f/kept", ""},
	} {
		r := c.must(500, call.method, call.path, call.body)
		if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "save sandbox state") {
			t.Errorf("%s %s: message %q", call.method, call.path, msg)
		}
	}
	if string(flagJSON(t, s, "kept")) != string(before) {
		t.Error("a write that could not be saved changed the flag")
	}
	if _, ok := s.FlagJSON(site, "lost"); ok {
		t.Error("a create that could not be saved was stored")
	}
	c.must(200, "PATCH", "/feature-flags/pzllysfw2f/kept", `{"name": "kept"}`) // a no-op patch writes nothing
}

func TestSetFlagJSON(t *testing.T) {
	s, c, _ := setup(t, Options{})
	seed := `{"id": 5, "featureKey": "seeded", "name": "Seeded", "archived": true, "dateCreated": "2024-01-01T00:00:00",
	  "variations": [{"key": "off", "name": "Off", "variables": []}, {"key": "on", "name": "On", "variables": []}],
	  "environmentConfigurations": [{"environmentKey": "production", "featureEnabled": true, "defaultVariationKey": "on",
	    "rolloutRules": [{"id": 77, "experimentId": 88, "name": "r", "type": "TARGETED_DELIVERY", "status": "PAUSED", "variationKey": "on",
	      "rollbackConditions": [{"id": 9, "target": "RULE", "criteria": "UPLIFT", "comparisonOperator": "LESS_THAN", "matchValue": 1}]}]}]}`
	if err := s.SetFlagJSON(site, []byte(seed)); err != nil {
		t.Fatal(err)
	}
	f := c.must(200, "GET", "/feature-flags/pzllysfw2f/seeded?optionalFields=environmentConfigurations", "").json(t)
	rule := envOf(t, f, "production")["rolloutRules"].([]any)[0]
	for path, want := range map[string]any{"id": 5.0, "archived": true, "dateCreated": "2024-01-01T00:00:00", "dateModified": "2025-12-17T10:42:14"} {
		if got := get(f, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	for path, want := range map[string]any{"id": 77.0, "experimentId": 88.0, "status": "PAUSED", "rollbackConditions.0.id": 9.0} {
		if got := get(rule, path); got != want {
			t.Errorf("rule %s = %v, want %v", path, got, want)
		}
	}
	if len(f["environmentConfigurations"].([]any)) != 3 {
		t.Error("missing environments were not filled in")
	}
	c.must(200, "PATCH", "/rules/77", `{"state": "ACTIVE"}`)

	// Exported JSON seeds back unchanged.
	exported := flagJSON(t, s, "seeded")
	if err := s.SetFlagJSON(site, exported); err != nil {
		t.Fatal(err)
	}
	if again := flagJSON(t, s, "seeded"); string(again) != string(exported) {
		t.Errorf("re-seeding the export changed it:\n%s\n%s", exported, again)
	}
	for _, tc := range []struct{ name, site, body, msg string }{
		{"site mismatch", "otherste01", `{"siteCode": "pzllysfw2f", "featureKey": "x", "name": "x"}`, "does not match"},
		{"rule id in use", site, `{"featureKey": "x", "name": "x", "environmentConfigurations": [{"environmentKey": "staging", "rolloutRules": [{"id": 77, "type": "TARGETED_DELIVERY"}]}]}`, "rule id 77 is used"},
		{"flag id in use", site, `{"id": 5, "featureKey": "y", "name": "y"}`, "flag id 5 is used"},
		{"invalid", site, `{"featureKey": "Bad", "name": "x"}`, "does not match"},
		{"not JSON", site, `{`, "seed flag"},
	} {
		if err := s.SetFlagJSON(tc.site, []byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.msg)
		}
	}
	if _, ok := s.FlagJSON(site, "nope"); ok {
		t.Error("FlagJSON of an unknown flag")
	}
}

func TestConcurrentClients(t *testing.T) {
	s, c, _ := setup(t, Options{RatePer10s: -1, RatePerHour: -1, StatePath: filepath.Join(t.TempDir(), "state.json")})
	c.must(201, "POST", "/feature-flags", baseFlag)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				key := fmt.Sprintf("w%d_%d", w, i)
				calls := []struct {
					method, path, body string
					status             int
				}{
					{"POST", "/feature-flags", flagBody(key, `"environmentConfigurations": [{"environmentKey": "staging", "rolloutRules": [{"type": "TARGETED_DELIVERY"}]}]`), 201},
					{"PATCH", "/feature-flags/pzllysfw2f/" + key + "/production", `{"rolloutRules": [{"type": "EXPERIMENTATION"}]}`, 200},
					{"PATCH", "/feature-flags/pzllysfw2f/base", fmt.Sprintf(`{"tags": [%q]}`, key), 200},
					{"GET", "/feature-flags?perPage=100&optionalFields=environmentConfigurations", "", 200},
				}
				for _, call := range calls {
					r, err := c.try(call.method, call.path, "application/json", call.body, c.token)
					if err != nil || r.status != call.status {
						errs <- fmt.Sprintf("%s %s: %v %d %s", call.method, call.path, err, r.status, r.body)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	l := c.must(200, "GET", "/feature-flags?perPage=100&optionalFields=environmentConfigurations", "").list(t)
	if len(l) != 41 {
		t.Fatalf("%d flags, want 41", len(l))
	}
	ids := map[float64]bool{}
	for _, f := range l {
		for _, e := range f["environmentConfigurations"].([]any) {
			for _, r := range e.(map[string]any)["rolloutRules"].([]any) {
				id := r.(map[string]any)["id"].(float64)
				if ids[id] {
					t.Errorf("rule id %v handed out twice", id)
				}
				ids[id] = true
			}
		}
	}
	if len(ids) != 2+8*5*2 {
		t.Errorf("%d rules, want %d", len(ids), 2+8*5*2)
	}
	// The state file matches memory after the burst.
	s2, err := New(Options{StatePath: s.statePath})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := flagJSON(t, s, "base"), flagJSON(t, s2, "base"); string(a) != string(b) {
		t.Error("state file lags memory")
	}
}
