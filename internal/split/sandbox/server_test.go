package splitsandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/fakeapi/fakeapitest"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

const ws = "ws-1"

type harness struct {
	t   *testing.T
	s   *Server
	url string
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.RatePerSecond == 0 {
		opts.RatePerSecond, opts.RatePerMinute = -1, -1
	}
	s, ts := fakeapitest.NewTestServer(t, "split sandbox", func() (*Server, error) { return New(opts) })
	return &harness{t: t, s: s, url: ts.URL}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(method, path, body string, header ...string) reply {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+splitclient.APIPrefix+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (h *harness) must(status int, r reply) reply {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

const onOff = `{"treatments":[{"name":"on"},{"name":"off"}],"defaultTreatment":"off","defaultRule":[{"treatment":"off","size":100}]}`

// setUp creates flag "paywall_beta" configured in Production with the vendor's
// rename example: rules 80/20 on a segment, default rule 50/50.
func (h *harness) setUp() {
	h.t.Helper()
	h.must(200, h.do("POST", "/splits/ws/"+ws+"/trafficTypes/user", `{"name":"paywall_beta","description":"d"}`))
	h.must(200, h.do("POST", "/splits/ws/"+ws+"/paywall_beta/environments/Production",
		`{"treatments":[{"name":"on","keys":["1","2","3"]},{"name":"off","segments":["employees"]}],"defaultTreatment":"off",
		  "rules":[{"condition":{"matchers":[{"type":"IN_SEGMENT","string":"beta"}]},"buckets":[{"treatment":"on","size":80},{"treatment":"off","size":20}]}],
		  "defaultRule":[{"treatment":"on","size":50},{"treatment":"off","size":50}]}`))
}

func (h *harness) definition() map[string]any {
	h.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(h.must(200, h.do("GET", "/splits/ws/"+ws+"/paywall_beta/environments/Production", "")).body), &m); err != nil {
		h.t.Fatal(err)
	}
	return m
}

func TestAuth(t *testing.T) {
	h := newHarness(t, Options{})
	req, _ := http.NewRequest("GET", h.url+splitclient.APIPrefix+"/splits/ws/"+ws, nil)
	for _, auth := range []string{"", "Bearer wrong", "Basic sandbox"} {
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
	}
	h.must(200, h.do("GET", "/splits/ws/"+ws, ""))
}

func TestNotFound(t *testing.T) {
	h := newHarness(t, Options{Workspaces: []string{ws}})
	h.setUp()
	for _, path := range []string{
		"/splits/ws/other",
		"/splits/ws/" + ws + "/missing",
		"/splits/ws/" + ws + "/paywall_beta/environments/Nowhere",
		"/splits/ws/" + ws + "/paywall_beta/environments/Staging",
		"/splits/ws/" + ws + "/environments/Nowhere",
		"/nothing/here",
	} {
		if r := h.do("GET", path, ""); r.status != 404 {
			t.Errorf("GET %s: status %d, want 404 (%s)", path, r.status, r.body)
		}
	}
	h.must(404, h.do("POST", "/splits/ws/"+ws+"/trafficTypes/robot", `{"name":"x"}`))
	h.must(409, h.do("POST", "/splits/ws/"+ws+"/trafficTypes/user", `{"name":"paywall_beta"}`))
	h.must(409, h.do("POST", "/splits/ws/"+ws+"/paywall_beta/environments/Production", onOff))
	// The environment's id works as well as its name.
	h.must(200, h.do("GET", "/splits/ws/"+ws+"/paywall_beta/environments/env-Production", ""))
}

func TestPaging(t *testing.T) {
	h := newHarness(t, Options{})
	for i := range 7 {
		name := "flag_" + string(rune('a'+i))
		h.must(200, h.do("POST", "/splits/ws/"+ws+"/trafficTypes/user", `{"name":"`+name+`"}`))
		h.must(200, h.do("POST", "/splits/ws/"+ws+"/"+name+"/environments/Staging", onOff))
	}
	var pg struct {
		Objects    []map[string]any `json:"objects"`
		Offset     int              `json:"offset"`
		Limit      int              `json:"limit"`
		TotalCount int              `json:"totalCount"`
	}
	r := h.must(200, h.do("GET", "/splits/ws/"+ws+"/environments/Staging?offset=5&limit=3", ""))
	if err := json.Unmarshal([]byte(r.body), &pg); err != nil {
		t.Fatal(err)
	}
	if len(pg.Objects) != 2 || pg.TotalCount != 7 || pg.Offset != 5 || pg.Limit != 3 || pg.Objects[0]["name"] != "flag_f" {
		t.Errorf("page = %+v", pg)
	}
	r = h.must(200, h.do("GET", "/splits/ws/"+ws+"?limit=500", ""))
	if err := json.Unmarshal([]byte(r.body), &pg); err != nil {
		t.Fatal(err)
	}
	if pg.Limit != maxLimit || len(pg.Objects) != 7 {
		t.Errorf("limit 500 gave limit %d and %d objects, want %d and 7", pg.Limit, len(pg.Objects), maxLimit)
	}
	h.must(400, h.do("GET", "/splits/ws/"+ws+"?offset=-1", ""))

	// The client reads every page with small pages.
	c, err := splitclient.New(splitclient.Config{BaseURL: h.url, APIKey: DefaultAPIKey, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.s.ResetCalls()
	flags, err := c.ReadFlags(t.Context(), ws, []string{"Staging"})
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 7 || len(flags[6].Environments) != 1 {
		t.Errorf("ReadFlags: %d flags", len(flags))
	}
	if n := len(h.s.Calls()); n != 8 {
		t.Errorf("ReadFlags made %d calls, want 8 (4 pages of flags, 4 of definitions)", n)
	}
}

func TestPatchAllOrNothing(t *testing.T) {
	h := newHarness(t, Options{})
	h.setUp()
	before := h.definition()
	path := "/splits/ws/" + ws + "/paywall_beta/environments/Production"
	tests := []struct {
		name   string
		patch  string
		status int
	}{
		{"failed test", `[{"op":"replace","path":"/killed","value":true},{"op":"test","path":"/treatments/0/name","value":"off"}]`, 409},
		{"missing member", `[{"op":"replace","path":"/killed","value":true},{"op":"remove","path":"/nothing"}]`, 400},
		{"index out of range", `[{"op":"replace","path":"/killed","value":true},{"op":"remove","path":"/treatments/0/keys/9"}]`, 400},
		{"not a patch", `{"op":"replace","path":"/killed","value":true}`, 400},
		{"bucket sizes", `[{"op":"replace","path":"/rules/0/buckets/0/size","value":70}]`, 400},
		{"unknown treatment in a rule", `[{"op":"replace","path":"/rules/0/buckets/0/treatment","value":"v2"}]`, 400},
		{"unknown default treatment", `[{"op":"replace","path":"/defaultTreatment","value":"maybe"}]`, 400},
		{"unknown baseline treatment", `[{"op":"add","path":"/baselineTreatment","value":"maybe"}]`, 400},
		{"renamed treatment still referenced", `[{"op":"replace","path":"/treatments/0/name","value":"first_version"}]`, 400},
		{"traffic allocation above 100", `[{"op":"replace","path":"/trafficAllocation","value":101}]`, 400},
		{"traffic allocation not whole", `[{"op":"replace","path":"/trafficAllocation","value":50.5}]`, 400},
		{"server-owned member", `[{"op":"replace","path":"/name","value":"other"}]`, 400},
		{"unknown member", `[{"op":"add","path":"/colour","value":"red"}]`, 400},
		{"key in two treatments", `[{"op":"add","path":"/treatments/1/keys","value":["1"]}]`, 400},
		{"matcher without its value", `[{"op":"remove","path":"/rules/0/condition/matchers/0/string"}]`, 400},
		{"wrong type", `[{"op":"replace","path":"/killed","value":"yes"}]`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("PATCH", path, tt.patch)
			if r.status != tt.status {
				t.Errorf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if after := h.definition(); !equalJSON(after, before) {
				t.Errorf("a refused patch changed the definition:\n%v\n%v", before, after)
			}
		})
	}
	// The vendor's rename example, in one patch, is accepted.
	h.must(200, h.do("PATCH", path, `[{ "op": "replace", "path": "/rules/0/buckets/0/treatment", "value": "first_version" }, { "op": "replace", "path": "/treatments/0/name", "value": "first_version" }, { "op": "replace", "path": "/defaultRule/0/treatment", "value": "first_version" }]`))
	if d := h.definition(); d["treatments"].([]any)[0].(map[string]any)["name"] != "first_version" {
		t.Errorf("rename not applied: %v", d)
	}
	h.must(415, h.do("PATCH", path, `[]`, "Content-Type", "text/plain"))
	h.must(200, h.do("PATCH", path, `[]`, "Content-Type", "application/json-patch+json"))
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestKillRestoreAndServerMembers(t *testing.T) {
	h := newHarness(t, Options{})
	h.setUp()
	base := "/splits/ws/" + ws + "/paywall_beta/environments/Production"
	h.must(200, h.do("PUT", base+"/kill", `{}`))
	d := h.definition()
	if d["killed"] != true {
		t.Errorf("killed = %v after kill", d["killed"])
	}
	cond := d["rules"].([]any)[0].(map[string]any)["condition"].(map[string]any)
	if cond["combiner"] != "AND" || d["environment"].(map[string]any)["name"] != "Production" || d["name"] != "paywall_beta" {
		t.Errorf("server members missing: %v", d)
	}
	h.must(200, h.do("PUT", base+"/restore", `{}`))
	if d := h.definition(); d["killed"] != false {
		t.Errorf("killed = %v after restore", d["killed"])
	}
	h.must(405, h.do("POST", base+"/kill", `{}`))
}

func TestFlagPatch(t *testing.T) {
	h := newHarness(t, Options{})
	h.setUp()
	path := "/splits/ws/" + ws + "/paywall_beta"
	h.must(200, h.do("PATCH", path, `[{"op":"replace","path":"/description","value":"new"},{"op":"replace","path":"/tags","value":[{"name":"a"}]}]`))
	r := h.must(200, h.do("GET", path, ""))
	f, err := splitclient.DecodeFlag([]byte(r.body), ws)
	if err != nil {
		t.Fatal(err)
	}
	if f.Description != "new" || len(f.Tags) != 1 || f.Tags[0] != "a" || f.TrafficType != "user" {
		t.Errorf("flag = %+v", f)
	}
	h.must(400, h.do("PATCH", path, `[{"op":"replace","path":"/name","value":"renamed"}]`))
	h.must(400, h.do("PATCH", path, `[{"op":"replace","path":"/tags","value":["a"]}]`))
}

func TestRateLimitHeaders(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t, Options{RatePerSecond: 2, RatePerMinute: 100, Now: func() time.Time { return now }})
	h.must(200, h.do("GET", "/splits/ws/"+ws, ""))
	r := h.must(200, h.do("GET", "/splits/ws/"+ws, ""))
	if r.header.Get("X-RateLimit-Remaining-Org") != "0" || r.header.Get("X-RateLimit-Remaining-IP") != "98" {
		t.Errorf("headers %v", r.header)
	}
	r = h.must(429, h.do("GET", "/splits/ws/"+ws, ""))
	if r.header.Get("X-RateLimit-Reset-Seconds-Org") != "1" || r.header.Get("X-RateLimit-Reset-Seconds-IP") != "60" {
		t.Errorf("429 headers %v", r.header)
	}
	now = now.Add(time.Second)
	h.must(200, h.do("GET", "/splits/ws/"+ws, ""))
}

// TestClientWaitsForTheReset checks that a 429 is retried once after the reset the
// headers give, and that the budget keeps the client under the limit by itself.
func TestClientWaitsForTheReset(t *testing.T) {
	h := newHarness(t, Options{})
	h.s.InjectFault(Fault{Status: 429, Header: http.Header{"X-RateLimit-Reset-Seconds-Org": {"0"}, "X-RateLimit-Reset-Seconds-IP": {"0"}}})
	c, err := splitclient.New(splitclient.Config{BaseURL: h.url, APIKey: DefaultAPIKey, BackoffBase: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListFlags(t.Context(), ws); err != nil {
		t.Fatalf("ListFlags after one 429 with a reset of 0 s: %v", err)
	}
	if n := len(h.s.Calls()); n != 2 {
		t.Errorf("%d calls, want 2 (a 429 then a 200)", n)
	}
}

func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	h := newHarness(t, Options{StatePath: path})
	h.setUp()
	s2, err := New(Options{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	if f := s2.flags[flagKey{ws, "paywall_beta"}]; f == nil || len(f.Definitions) != 1 {
		t.Fatalf("state not reloaded: %+v", f)
	}
}

func TestSeedAndWrites(t *testing.T) {
	h := newHarness(t, Options{})
	err := h.s.Seed(splitmodel.Flag{Workspace: ws, Name: "seeded", TrafficType: "user", Environments: map[string]splitmodel.Definition{
		"Staging": {Treatments: []splitmodel.Treatment{{Name: "on"}, {Name: "off"}}, DefaultTreatment: "off"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Seed(splitmodel.Flag{Workspace: ws, Name: "bad", TrafficType: "user", Environments: map[string]splitmodel.Definition{
		"Staging": {Treatments: []splitmodel.Treatment{{Name: "on"}}, DefaultTreatment: "off"},
	}}); err == nil {
		t.Error("seeding an invalid definition worked")
	}
	h.must(200, h.do("GET", "/splits/ws/"+ws+"/seeded/environments/Staging", ""))
	if h.s.Writes() != 0 {
		t.Errorf("Writes = %d after reads only", h.s.Writes())
	}
	h.must(200, h.do("PATCH", "/splits/ws/"+ws+"/seeded/environments/Staging", `[{"op":"replace","path":"/killed","value":true}]`))
	if h.s.Writes() != 1 {
		t.Errorf("Writes = %d, want 1", h.s.Writes())
	}
}
