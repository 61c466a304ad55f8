package unleashtest

// These tests are the empirical map of Unleash's admin API (unleash-server 8.2.0, open source)
// that flagsync's Unleash vendor relies on: each assertion is a fact observed on the real
// server, and docs/unleash-api-notes.md explains them. When an upgrade of unleash-server
// changes one, a test here fails before the vendor misbehaves.

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The wire shapes, as far as the tests look into them.

type apiError struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Message string `json:"message"`
	Details []struct {
		Message string `json:"message"`
		Path    string `json:"path"`
	} `json:"details"`
}

type constraint struct {
	ContextName     string   `json:"contextName"`
	Operator        string   `json:"operator"`
	Values          []string `json:"values,omitempty"`
	Inverted        bool     `json:"inverted"`
	CaseInsensitive bool     `json:"caseInsensitive"`
}

type payload struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type variant struct {
	Name       string   `json:"name"`
	Weight     int      `json:"weight"`
	WeightType string   `json:"weightType"`
	Stickiness string   `json:"stickiness"`
	Payload    *payload `json:"payload,omitempty"`
}

type strategy struct {
	ID          string            `json:"id,omitempty"`
	Name        string            `json:"name"`
	Title       *string           `json:"title,omitempty"`
	Disabled    bool              `json:"disabled"`
	SortOrder   *int              `json:"sortOrder,omitempty"`
	Parameters  map[string]string `json:"parameters,omitempty"`
	Constraints []constraint      `json:"constraints,omitempty"`
	Segments    []int             `json:"segments,omitempty"`
	Variants    []variant         `json:"variants,omitempty"`
	FeatureName string            `json:"featureName,omitempty"` // export only
}

type featureEnv struct {
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	Enabled    bool       `json:"enabled"`
	Strategies []strategy `json:"strategies"`
}

type feature struct {
	Name           string       `json:"name"`
	Type           string       `json:"type"`
	Description    *string      `json:"description"`
	Project        string       `json:"project"`
	ImpressionData bool         `json:"impressionData"`
	Archived       bool         `json:"archived"`
	Environments   []featureEnv `json:"environments"`
}

type tag struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type exportResult struct {
	Features            []feature  `json:"features"`
	FeatureStrategies   []strategy `json:"featureStrategies"`
	FeatureEnvironments []struct {
		FeatureName string    `json:"featureName"`
		Environment string    `json:"environment"`
		Enabled     bool      `json:"enabled"`
		Variants    []variant `json:"variants"`
	} `json:"featureEnvironments"`
	FeatureTags []struct {
		FeatureName string `json:"featureName"`
		TagType     string `json:"tagType"`
		TagValue    string `json:"tagValue"`
	} `json:"featureTags"`
	Segments []map[string]any `json:"segments"`
}

const project = "/api/admin/projects/default"

func featurePath(name string) string { return project + "/features/" + name }

func strategiesPath(name, env string) string {
	return featurePath(name) + "/environments/" + env + "/strategies"
}

func ptr[T any](v T) *T { return &v }

// errorOf decodes an error body and checks the shape every JSON error of the admin API has:
// a name, a message and at least one detail with a message.
func errorOf(t *testing.T, r *Response) apiError {
	t.Helper()
	var e apiError
	r.Decode(t, &e)
	if e.Name == "" || e.Message == "" || len(e.Details) == 0 || e.Details[0].Message == "" {
		t.Fatalf("error body lacks name, message or details[0].message: %s", r)
	}
	return e
}

func getFeature(t *testing.T, s *Server, name string) feature {
	t.Helper()
	var f feature
	s.Call(t, http.MethodGet, featurePath(name), nil).Want(t, http.StatusOK).Decode(t, &f)
	return f
}

func envOf(t *testing.T, f feature, name string) featureEnv {
	t.Helper()
	for _, e := range f.Environments {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("feature %s has no environment %s: %+v", f.Name, name, f.Environments)
	return featureEnv{}
}

func createFeature(t *testing.T, s *Server, body map[string]any) {
	t.Helper()
	s.Call(t, http.MethodPost, project+"/features", body).Want(t, http.StatusCreated)
}

func addStrategy(t *testing.T, s *Server, feature, envName string, st strategy) strategy {
	t.Helper()
	var out strategy
	// Adding a strategy answers 200, not 201.
	s.Call(t, http.MethodPost, strategiesPath(feature, envName), st).Want(t, http.StatusOK).Decode(t, &out)
	if len(out.ID) != 26 {
		t.Fatalf("strategy id %q: want a 26-character ULID", out.ID)
	}
	return out
}

func exportEnv(t *testing.T, s *Server, body map[string]any) (exportResult, []map[string]any) {
	t.Helper()
	r := s.Call(t, http.MethodPost, "/api/admin/features-batch/export", body).Want(t, http.StatusOK)
	var out exportResult
	r.Decode(t, &out)
	var raw struct {
		FeatureStrategies []map[string]any `json:"featureStrategies"`
	}
	r.Decode(t, &raw)
	return out, raw.FeatureStrategies
}

// exportEvents counts the features-exported events in the event log.
func exportEvents(t *testing.T, s *Server) int {
	t.Helper()
	var ev struct{ Total int }
	s.Call(t, http.MethodGet, "/api/admin/search/events?type=IS:features-exported&limit=1", nil).Want(t, http.StatusOK).Decode(t, &ev)
	return ev.Total
}

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	sort.Strings(out)
	return out
}

// TestFreshServer asserts what an empty open-source server offers, on a server of its own
// (these tests change the project's environments and use up the search rate limit).
func TestFreshServer(t *testing.T) {
	s := StartDedicated(t)

	t.Run("environments: development and production, no API to add one", func(t *testing.T) {
		var got struct {
			Environments []struct {
				Name, Type string
				Enabled    bool
			} `json:"environments"`
		}
		s.Call(t, http.MethodGet, "/api/admin/environments", nil).Want(t, http.StatusOK).Decode(t, &got)
		want := "development/development/true production/production/true"
		var have []string
		for _, e := range got.Environments {
			have = append(have, fmt.Sprintf("%s/%s/%v", e.Name, e.Type, e.Enabled))
		}
		if strings.Join(have, " ") != want {
			t.Errorf("environments = %v, want %s", have, want)
		}
		// Creating environments and projects is Enterprise-only: the routes do not exist.
		for _, path := range []string{"/api/admin/environments", "/api/admin/projects"} {
			r := s.Call(t, http.MethodPost, path, map[string]string{"name": "staging", "type": "test", "id": "p2"}).Want(t, http.StatusNotFound)
			if e := errorOf(t, r); e.Name != "NotFoundError" || !strings.Contains(e.Message, "is not available") {
				t.Errorf("POST %s: %+v", path, e)
			}
		}
		var projects struct {
			Projects []struct{ ID string } `json:"projects"`
		}
		s.Call(t, http.MethodGet, "/api/admin/projects", nil).Want(t, http.StatusOK).Decode(t, &projects)
		if len(projects.Projects) != 1 || projects.Projects[0].ID != "default" {
			t.Errorf("projects = %+v, want only default", projects.Projects)
		}
	})

	t.Run("feature types, tag types, strategy types", func(t *testing.T) {
		var ft struct{ Types []struct{ ID string } }
		s.Call(t, http.MethodGet, "/api/admin/feature-types", nil).Want(t, http.StatusOK).Decode(t, &ft)
		got := names(ft.Types, func(x struct{ ID string }) string { return x.ID })
		if want := []string{"experiment", "kill-switch", "operational", "permission", "release", "sunset"}; !slices.Equal(got, want) {
			t.Errorf("feature types = %v, want %v", got, want)
		}
		var tt struct{ TagTypes []struct{ Name string } }
		s.Call(t, http.MethodGet, "/api/admin/tag-types", nil).Want(t, http.StatusOK).Decode(t, &tt)
		if len(tt.TagTypes) != 1 || tt.TagTypes[0].Name != "simple" {
			t.Errorf("tag types = %+v, want only simple", tt.TagTypes)
		}
		var st struct{ Strategies []struct{ Name string } }
		s.Call(t, http.MethodGet, "/api/admin/strategies", nil).Want(t, http.StatusOK).Decode(t, &st)
		got = names(st.Strategies, func(x struct{ Name string }) string { return x.Name })
		if want := []string{"applicationHostname", "default", "flexibleRollout", "remoteAddress"}; !slices.Equal(got, want) {
			t.Errorf("strategy types = %v, want %v", got, want)
		}
	})

	t.Run("an environment that is not enabled for the project", func(t *testing.T) {
		createFeature(t, s, map[string]any{"name": "envcheck"})
		s.Call(t, http.MethodDelete, project+"/environments/production", nil).Want(t, http.StatusOK)
		// The feature no longer shows the environment...
		if f := getFeature(t, s, "envcheck"); len(f.Environments) != 1 || f.Environments[0].Name != "development" {
			t.Errorf("environments after removing production from the project: %+v", f.Environments)
		}
		// ...toggling it is a 404...
		r := s.Call(t, http.MethodPost, featurePath("envcheck")+"/environments/production/on", nil).Want(t, http.StatusNotFound)
		if e := errorOf(t, r); !strings.Contains(e.Message, "Could not find environment production for feature: envcheck") {
			t.Errorf("toggle in a removed environment: %+v", e)
		}
		// ...but adding a strategy there succeeds, invisibly until the environment is back.
		hidden := addStrategy(t, s, "envcheck", "production", strategy{Name: "default"})
		s.Call(t, http.MethodPost, project+"/environments", map[string]string{"environment": "production"}).Want(t, http.StatusOK)
		if p := envOf(t, getFeature(t, s, "envcheck"), "production"); len(p.Strategies) != 1 || p.Strategies[0].ID != hidden.ID || p.Enabled {
			t.Errorf("production after re-adding it: %+v", p)
		}
		// An environment that does not exist at all: 400 with a misleading message.
		r = s.Call(t, http.MethodPost, strategiesPath("envcheck", "nosuch"), strategy{Name: "default"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); e.Name != "BadDataError" || !strings.Contains(e.Message, "You have not added the current environment to the project") {
			t.Errorf("strategy in a missing environment: %+v", e)
		}
		r = s.Call(t, http.MethodPost, featurePath("envcheck")+"/environments/nosuch/on", nil).Want(t, http.StatusNotFound)
		errorOf(t, r)
	})

	t.Run("only development and production: the open-source server hides any other", func(t *testing.T) {
		// Adding an environment that does not exist to the project is refused; there is no
		// API to create one, and the open-source server's stores and permission checks are
		// hard-coded to the default project and the environments default, development and
		// production (isOss in environment-store and rbac-middleware).
		r := s.Call(t, http.MethodPost, project+"/environments", map[string]string{"environment": "staging"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); e.Name != "BadDataError" || !strings.Contains(e.Message, "Environment staging does not exist") {
			t.Errorf("adding environment staging to the project: %+v", e)
		}
	})

	t.Run("search: paging, a limit over 100 falls back to 50", func(t *testing.T) {
		// 55 features in all (envcheck is one).
		for i := range 54 {
			createFeature(t, s, map[string]any{"name": "page-" + strconv.Itoa(i)})
		}
		type page struct {
			Features []feature `json:"features"`
			Total    int       `json:"total"`
		}
		var p page
		r := s.Call(t, http.MethodGet, "/api/admin/search/features?project=IS:default&limit=100&offset=0", nil).Want(t, http.StatusOK)
		r.Decode(t, &p)
		if p.Total != 55 || len(p.Features) != 55 {
			t.Errorf("limit=100: %d features, total %d; want 55, 55", len(p.Features), p.Total)
		}
		// Search lists no strategies: environments carry only summaries.
		var raw map[string]any
		r.Decode(t, &raw)
		env0 := raw["features"].([]any)[0].(map[string]any)["environments"].([]any)[0].(map[string]any)
		if _, ok := env0["strategies"]; ok {
			t.Errorf("search lists strategies: %v", env0)
		}
		for _, k := range []string{"hasStrategies", "hasEnabledStrategies", "variantCount", "enabled"} {
			if _, ok := env0[k]; !ok {
				t.Errorf("search environment summary lacks %s: %v", k, env0)
			}
		}
		s.Call(t, http.MethodGet, "/api/admin/search/features?project=IS:default&limit=101", nil).Want(t, http.StatusOK).Decode(t, &p)
		if len(p.Features) != 50 {
			t.Errorf("limit=101: %d features, want the default 50 (values over 100 are ignored)", len(p.Features))
		}
		s.Call(t, http.MethodGet, "/api/admin/search/features?project=IS:default&limit=50&offset=50", nil).Want(t, http.StatusOK).Decode(t, &p)
		if len(p.Features) != 5 || p.Total != 55 {
			t.Errorf("offset=50: %d features, total %d; want 5, 55", len(p.Features), p.Total)
		}
	})

	t.Run("rate limit: search is 15 requests a minute, then 429 with Retry-After", func(t *testing.T) {
		// Three searches above used three of the fifteen.
		remaining := -1
		for i := 0; i < 20; i++ {
			r := s.Call(t, http.MethodGet, "/api/admin/search/features?project=IS:default&limit=1", nil)
			if r.Header.Get("RateLimit-Policy") != "15;w=60" || r.Header.Get("RateLimit-Limit") != "15" {
				t.Fatalf("search rate-limit headers: %v", r.Header)
			}
			if r.Status == http.StatusTooManyRequests {
				if remaining != 0 {
					t.Errorf("429 came with %d requests remaining", remaining)
				}
				if r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Reset") == "" {
					t.Errorf("429 without Retry-After or RateLimit-Reset: %v", r.Header)
				}
				if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || string(r.Body) != "Too many requests, please try again later." {
					t.Errorf("429 body: %q (%s)", r.Body, r.Header.Get("Content-Type"))
				}
				if i != 12 {
					t.Errorf("429 on search %d of this subtest, want the 13th (12 left after three)", i+1)
				}
				break
			}
			r.Want(t, http.StatusOK)
			n, err := strconv.Atoi(r.Header.Get("RateLimit-Remaining"))
			if err != nil || (remaining >= 0 && n != remaining-1) {
				t.Fatalf("RateLimit-Remaining %q after %d", r.Header.Get("RateLimit-Remaining"), remaining)
			}
			remaining = n
		}
		// The admin API's other routes are not limited for admin API tokens: no headers.
		r := s.Call(t, http.MethodGet, project+"/features", nil).Want(t, http.StatusOK)
		if h := r.Header.Get("RateLimit-Limit"); h != "" {
			t.Errorf("project features list carries RateLimit-Limit %q", h)
		}
		r = s.Call(t, http.MethodPost, "/api/admin/features-batch/export", map[string]any{"environment": "development", "project": "default"}).Want(t, http.StatusOK)
		if h := r.Header.Get("RateLimit-Limit"); h != "" {
			t.Errorf("export carries RateLimit-Limit %q", h)
		}
	})
}

// TestBulkRead compares the three ways to read a project: the export, the feature itself, and
// the project's feature list.
func TestBulkRead(t *testing.T) {
	s := Start(t)
	name := s.UniqueName("bulk")
	seg := s.UniqueName("seg")
	tagValue := s.UniqueName("managed")
	var segment struct{ ID int }
	s.Call(t, http.MethodPost, "/api/admin/segments", map[string]any{
		"name": seg, "constraints": []constraint{{ContextName: "userId", Operator: "IN", Values: []string{"u1"}}},
	}).Want(t, http.StatusCreated).Decode(t, &segment)

	createFeature(t, s, map[string]any{"name": name, "type": "experiment", "description": "bulk read", "impressionData": true})
	s.Call(t, http.MethodPost, "/api/admin/features/"+name+"/tags", tag{"simple", tagValue}).Want(t, http.StatusCreated)
	rollout := addStrategy(t, s, name, "development", strategy{
		Name: "flexibleRollout", Title: ptr("beta"),
		Parameters:  map[string]string{"rollout": "25", "stickiness": "userId", "groupId": "g1"},
		Constraints: []constraint{{ContextName: "appName", Operator: "IN", Values: []string{"web"}}},
		Segments:    []int{segment.ID},
		Variants:    []variant{{Name: "blue", Weight: 1000, WeightType: "variable", Stickiness: "default", Payload: &payload{"string", "b"}}},
	})
	dflt := addStrategy(t, s, name, "development", strategy{Name: "default", Title: ptr("everyone")})
	// Put the second strategy first.
	s.Call(t, http.MethodPost, strategiesPath(name, "development")+"/set-sort-order", []map[string]any{
		{"id": dflt.ID, "sortOrder": 0}, {"id": rollout.ID, "sortOrder": 1},
	}).Want(t, http.StatusOK)
	s.Call(t, http.MethodPost, featurePath(name)+"/environments/development/on", nil).Want(t, http.StatusOK)
	prod := addStrategy(t, s, name, "production", strategy{Name: "default", Disabled: true})
	s.Call(t, http.MethodPut, featurePath(name)+"/variants-batch", map[string]any{
		"environments": []string{"development"},
		"variants":     []variant{{Name: "legacy", Weight: 1000, WeightType: "variable", Stickiness: "default"}},
	}).Want(t, http.StatusOK)
	archived := s.UniqueName("bulk-archived")
	createFeature(t, s, map[string]any{"name": archived})
	s.Call(t, http.MethodDelete, featurePath(archived), nil).Want(t, http.StatusAccepted)

	t.Run("export: one call per environment holds everything but strategy order", func(t *testing.T) {
		before := exportEvents(t, s)
		dev, rawStrategies := exportEnv(t, s, map[string]any{"environment": "development", "project": "default"})
		// A read with a side effect: every export is recorded in the event log, with the
		// whole exported payload as the event's data.
		if after := exportEvents(t, s); after != before+1 {
			t.Errorf("features-exported events: %d before the export, %d after; want one more", before, after)
		}
		var f *feature
		for i := range dev.Features {
			if dev.Features[i].Name == name {
				f = &dev.Features[i]
			}
			if dev.Features[i].Name == archived {
				t.Errorf("export lists archived feature %s", archived)
			}
		}
		if f == nil {
			t.Fatalf("export of project default lacks %s", name)
		}
		if f.Type != "experiment" || f.Description == nil || *f.Description != "bulk read" || !f.ImpressionData || f.Archived {
			t.Errorf("exported feature = %+v", *f)
		}
		var mine []strategy
		for i, st := range dev.FeatureStrategies {
			if st.FeatureName != name {
				continue
			}
			mine = append(mine, st)
			if _, ok := rawStrategies[i]["sortOrder"]; ok {
				t.Errorf("export strategy has sortOrder: %v", rawStrategies[i])
			}
		}
		// Export orders strategies by feature name only: here in creation order, although
		// sort order puts "default" first.
		if len(mine) != 2 || mine[0].ID != rollout.ID || mine[1].ID != dflt.ID {
			t.Fatalf("exported strategies of %s = %+v, want [%s %s]", name, mine, rollout.ID, dflt.ID)
		}
		st := mine[0]
		if st.Name != "flexibleRollout" || st.Title == nil || *st.Title != "beta" || st.Parameters["rollout"] != "25" ||
			st.Parameters["stickiness"] != "userId" || st.Parameters["groupId"] != "g1" ||
			len(st.Constraints) != 1 || st.Constraints[0].ContextName != "appName" ||
			!slices.Equal(st.Segments, []int{segment.ID}) || len(st.Variants) != 1 || st.Variants[0].Payload == nil {
			t.Errorf("exported strategy = %+v", st)
		}
		var enabled *bool
		for _, fe := range dev.FeatureEnvironments {
			if fe.FeatureName == name {
				enabled = ptr(fe.Enabled)
				if len(fe.Variants) != 1 || fe.Variants[0].Name != "legacy" {
					t.Errorf("exported environment variants = %+v", fe.Variants)
				}
			}
		}
		if enabled == nil || !*enabled {
			t.Errorf("exported development of %s: enabled %v, want true", name, enabled)
		}
		var tags []string
		for _, ft := range dev.FeatureTags {
			if ft.FeatureName == name {
				tags = append(tags, ft.TagType+":"+ft.TagValue)
			}
		}
		if !slices.Equal(tags, []string{"simple:" + tagValue}) {
			t.Errorf("exported tags = %v", tags)
		}
		// Segments come as id and name only (enough to map ids to names), constraints not.
		found := false
		for _, sg := range dev.Segments {
			if sg["name"] == seg {
				found = true
				if len(sg) != 2 || sg["id"] != float64(segment.ID) {
					t.Errorf("exported segment = %v, want only id and name", sg)
				}
			}
		}
		if !found {
			t.Errorf("export lacks segment %s: %v", seg, dev.Segments)
		}

		p, _ := exportEnv(t, s, map[string]any{"environment": "production", "features": []string{name}})
		if len(p.Features) != 1 || len(p.FeatureStrategies) != 1 || p.FeatureStrategies[0].ID != prod.ID || !p.FeatureStrategies[0].Disabled {
			t.Errorf("production export by feature name = %+v", p)
		}
		if len(p.FeatureEnvironments) != 1 || p.FeatureEnvironments[0].Enabled {
			t.Errorf("production environment export = %+v, want one, disabled", p.FeatureEnvironments)
		}
	})

	t.Run("feature: strategies in sort order with ids, but no tags and no environment variants", func(t *testing.T) {
		r := s.Call(t, http.MethodGet, featurePath(name), nil).Want(t, http.StatusOK)
		var f feature
		r.Decode(t, &f)
		dev := envOf(t, f, "development")
		if !dev.Enabled || len(dev.Strategies) != 2 || dev.Strategies[0].ID != dflt.ID || dev.Strategies[1].ID != rollout.ID ||
			*dev.Strategies[0].SortOrder != 0 || *dev.Strategies[1].SortOrder != 1 {
			t.Errorf("development = %+v", dev)
		}
		raw := r.Object(t)
		if _, ok := raw["tags"]; ok {
			t.Errorf("feature has tags: %v", raw["tags"])
		}
		for _, e := range raw["environments"].([]any) {
			if _, ok := e.(map[string]any)["variants"]; ok {
				t.Errorf("feature environment has variants: %v", e)
			}
		}
		var vs struct{ Variants []variant }
		s.Call(t, http.MethodGet, featurePath(name)+"/environments/development/variants", nil).Want(t, http.StatusOK).Decode(t, &vs)
		if len(vs.Variants) != 1 || vs.Variants[0].Name != "legacy" {
			t.Errorf("environment variants = %+v", vs.Variants)
		}
	})

	t.Run("project feature list: tags and environment summaries, no strategies", func(t *testing.T) {
		var list struct {
			Features []struct {
				Name         string           `json:"name"`
				Tags         []tag            `json:"tags"`
				Environments []map[string]any `json:"environments"`
			} `json:"features"`
		}
		s.Call(t, http.MethodGet, project+"/features", nil).Want(t, http.StatusOK).Decode(t, &list)
		for _, f := range list.Features {
			if f.Name == archived {
				t.Errorf("project list has archived %s", archived)
			}
			if f.Name != name {
				continue
			}
			if len(f.Tags) != 1 || f.Tags[0].Value != tagValue {
				t.Errorf("listed tags = %+v", f.Tags)
			}
			for _, e := range f.Environments {
				if _, ok := e["strategies"]; ok {
					t.Errorf("listed environment has strategies: %v", e)
				}
				if e["name"] == "development" && (e["variantCount"] != float64(1) || e["hasStrategies"] != true) {
					t.Errorf("listed development = %v", e)
				}
			}
			return
		}
		t.Errorf("project list lacks %s", name)
	})
}

// TestWrites asserts the write calls per kind of edit, and what each does besides.
func TestWrites(t *testing.T) {
	s := Start(t)
	name := s.UniqueName("writes")

	t.Run("create, then metadata by PATCH (JSON Patch) and PUT (full replace)", func(t *testing.T) {
		r := s.Call(t, http.MethodPost, project+"/features", map[string]any{
			"name": name, "type": "release", "description": "first", "impressionData": true,
		}).Want(t, http.StatusCreated)
		var f feature
		r.Decode(t, &f)
		if f.Name != name || f.Project != "default" || *f.Description != "first" || !f.ImpressionData {
			t.Errorf("created = %+v", f)
		}
		s.Call(t, http.MethodPatch, featurePath(name), []map[string]any{
			{"op": "replace", "path": "/description", "value": "patched"},
			{"op": "replace", "path": "/type", "value": "operational"},
			{"op": "replace", "path": "/name", "value": "renamed"}, // ignored
		}).Want(t, http.StatusOK)
		f = getFeature(t, s, name)
		if f.Name != name || *f.Description != "patched" || f.Type != "operational" || !f.ImpressionData {
			t.Errorf("after PATCH = %+v", f)
		}
		// PUT replaces: what it leaves out is reset (description null, impressionData false).
		s.Call(t, http.MethodPut, featurePath(name), map[string]any{"name": name, "type": "kill-switch"}).Want(t, http.StatusOK)
		f = getFeature(t, s, name)
		if f.Type != "kill-switch" || f.Description != nil || f.ImpressionData {
			t.Errorf("after PUT = %+v", f)
		}
		r = s.Call(t, http.MethodPut, featurePath(name), map[string]any{"name": "other", "type": "release"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); !strings.Contains(e.Message, "Cannot change name of feature flag") {
			t.Errorf("rename by PUT: %+v", e)
		}
		s.Call(t, http.MethodPut, featurePath(name), map[string]any{"name": name, "type": "release", "description": "d", "impressionData": true}).Want(t, http.StatusOK)
	})

	var first strategy
	t.Run("strategies: create, PUT and PATCH keep the id", func(t *testing.T) {
		var seg struct{ ID int }
		s.Call(t, http.MethodPost, "/api/admin/segments", map[string]any{"name": s.UniqueName("seg"), "constraints": []constraint{}}).
			Want(t, http.StatusCreated).Decode(t, &seg)
		first = addStrategy(t, s, name, "development", strategy{
			Name: "flexibleRollout", Title: ptr("t1"),
			Parameters:  map[string]string{"rollout": "30", "stickiness": "userId", "groupId": "g"},
			Constraints: []constraint{{ContextName: "userId", Operator: "IN", Values: []string{"1"}}},
			Segments:    []int{seg.ID},
		})
		if *first.SortOrder != 0 {
			t.Errorf("first strategy sortOrder = %d", *first.SortOrder)
		}
		// PUT with constraints, segments and title left out: constraints are cleared, segments
		// and title are kept, and flexibleRollout's missing parameters get their defaults
		// (groupId = the feature's name, stickiness = default).
		var put strategy
		s.Call(t, http.MethodPut, strategiesPath(name, "development")+"/"+first.ID, map[string]any{
			"name": "flexibleRollout", "parameters": map[string]string{"rollout": "40"},
		}).Want(t, http.StatusOK).Decode(t, &put)
		if put.ID != first.ID || len(put.Constraints) != 0 || !slices.Equal(put.Segments, []int{seg.ID}) ||
			put.Title == nil || *put.Title != "t1" ||
			put.Parameters["groupId"] != name || put.Parameters["stickiness"] != "default" || put.Parameters["rollout"] != "40" {
			t.Errorf("after PUT = %+v", put)
		}
		// Segments and title are cleared only when sent empty; the title stays "" (not null).
		s.Call(t, http.MethodPut, strategiesPath(name, "development")+"/"+first.ID, map[string]any{
			"name": "flexibleRollout", "parameters": map[string]string{"rollout": "40"}, "segments": []int{}, "title": "",
		}).Want(t, http.StatusOK).Decode(t, &put)
		if len(put.Segments) != 0 || put.Title == nil || *put.Title != "" {
			t.Errorf("after PUT with empty segments and title = %+v", put)
		}
		var patched strategy
		s.Call(t, http.MethodPatch, strategiesPath(name, "development")+"/"+first.ID, []map[string]any{
			{"op": "replace", "path": "/parameters/rollout", "value": "60"},
		}).Want(t, http.StatusOK).Decode(t, &patched)
		if patched.ID != first.ID || patched.Parameters["rollout"] != "60" {
			t.Errorf("after PATCH = %+v", patched)
		}
		// PUT may even change the strategy's type, keeping the id.
		var retyped strategy
		s.Call(t, http.MethodPut, strategiesPath(name, "development")+"/"+first.ID, strategy{Name: "default"}).Want(t, http.StatusOK).Decode(t, &retyped)
		if retyped.ID != first.ID || retyped.Name != "default" {
			t.Errorf("after PUT of another type = %+v", retyped)
		}
	})

	t.Run("strategies: what the server does and does not validate", func(t *testing.T) {
		// A rollout over 100 is stored as sent.
		over := addStrategy(t, s, name, "development", strategy{Name: "flexibleRollout", Parameters: map[string]string{"rollout": "140"}})
		if over.Parameters["rollout"] != "140" {
			t.Errorf("rollout 140 stored as %q", over.Parameters["rollout"])
		}
		s.Call(t, http.MethodDelete, strategiesPath(name, "development")+"/"+over.ID, nil).Want(t, http.StatusOK)
		r := s.Call(t, http.MethodPost, strategiesPath(name, "development"), strategy{Name: "userWithId"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); !strings.Contains(e.Message, "Could not find strategy type with name userWithId") {
			t.Errorf("unknown strategy type: %+v", e)
		}
		r = s.Call(t, http.MethodPost, strategiesPath(name, "development"), strategy{Name: "default", Segments: []int{999999}}).Want(t, http.StatusNotFound)
		if e := errorOf(t, r); !strings.Contains(e.Message, `No segment exists with ID "999999"`) {
			t.Errorf("unknown segment: %+v", e)
		}
	})

	t.Run("strategy variants: variable weights are recomputed to fill 1000", func(t *testing.T) {
		st := addStrategy(t, s, name, "development", strategy{
			Name: "flexibleRollout", Parameters: map[string]string{"rollout": "50"},
			Variants: []variant{
				{Name: "a", Weight: 200, WeightType: "fix", Stickiness: "default"},
				{Name: "b", Weight: 0, WeightType: "variable", Stickiness: "default"},
				{Name: "c", Weight: 1, WeightType: "variable", Stickiness: "default"},
			},
		})
		got := map[string]int{}
		for _, v := range st.Variants {
			got[v.Name] = v.Weight
		}
		if got["a"] != 200 || got["b"] != 400 || got["c"] != 400 {
			t.Errorf("variant weights = %v, want a:200 b:400 c:400", got)
		}
		s.Call(t, http.MethodDelete, strategiesPath(name, "development")+"/"+st.ID, nil).Want(t, http.StatusOK)
	})

	t.Run("environment on/off; on without strategies adds one; deleting the last disables", func(t *testing.T) {
		s.Call(t, http.MethodPost, featurePath(name)+"/environments/development/on", nil).Want(t, http.StatusOK)
		s.Call(t, http.MethodPost, featurePath(name)+"/environments/development/on", nil).Want(t, http.StatusOK) // idempotent
		dev := envOf(t, getFeature(t, s, name), "development")
		if !dev.Enabled || len(dev.Strategies) != 1 || dev.Strategies[0].ID != first.ID {
			t.Errorf("development after on = %+v, want enabled with only %s", dev, first.ID)
		}
		s.Call(t, http.MethodPost, featurePath(name)+"/environments/production/on", nil).Want(t, http.StatusOK)
		prod := envOf(t, getFeature(t, s, name), "production")
		if !prod.Enabled || len(prod.Strategies) != 1 {
			t.Fatalf("production after on = %+v, want one strategy added", prod)
		}
		if a := prod.Strategies[0]; a.Name != "flexibleRollout" || a.Parameters["rollout"] != "100" ||
			a.Parameters["stickiness"] != "default" || a.Parameters["groupId"] != name {
			t.Errorf("strategy added by on = %+v", a)
		}
		s.Call(t, http.MethodPost, featurePath(name)+"/environments/production/off", nil).Want(t, http.StatusOK)
		if prod := envOf(t, getFeature(t, s, name), "production"); prod.Enabled || len(prod.Strategies) != 1 {
			t.Errorf("production after off = %+v, want disabled, strategy kept", prod)
		}
		s.Call(t, http.MethodDelete, strategiesPath(name, "development")+"/"+first.ID, nil).Want(t, http.StatusOK)
		if dev := envOf(t, getFeature(t, s, name), "development"); dev.Enabled || len(dev.Strategies) != 0 {
			t.Errorf("development after deleting its last strategy = %+v, want disabled", dev)
		}
	})

	t.Run("environment variants are deprecated: 403 until variants-batch creates some", func(t *testing.T) {
		vs := []variant{{Name: "v1", Weight: 1000, WeightType: "variable", Stickiness: "default"}}
		r := s.Call(t, http.MethodPut, featurePath(name)+"/environments/development/variants", vs).Want(t, http.StatusForbidden)
		if e := errorOf(t, r); e.Name != "InvalidOperationError" || !strings.Contains(e.Message, "Environment variants deprecated") {
			t.Errorf("environment variants: %+v", e)
		}
		s.Call(t, http.MethodPut, featurePath(name)+"/variants-batch", map[string]any{
			"environments": []string{"development"}, "variants": vs,
		}).Want(t, http.StatusOK)
		// Now that the feature has legacy variants, the per-environment calls work too.
		two := append(vs, variant{Name: "v2", Weight: 0, WeightType: "variable", Stickiness: "default"})
		var got struct{ Variants []variant }
		s.Call(t, http.MethodPut, featurePath(name)+"/environments/production/variants", two).Want(t, http.StatusOK).Decode(t, &got)
		if len(got.Variants) != 2 || got.Variants[0].Weight+got.Variants[1].Weight != 1000 {
			t.Errorf("production variants = %+v", got.Variants)
		}
	})

	t.Run("tags: add is idempotent, bulk PUT, delete of an absent tag is 200", func(t *testing.T) {
		tags := "/api/admin/features/" + name + "/tags"
		s.Call(t, http.MethodPost, tags, tag{"simple", "flagsync"}).Want(t, http.StatusCreated)
		s.Call(t, http.MethodPost, tags, tag{"simple", "flagsync"}).Want(t, http.StatusCreated)
		r := s.Call(t, http.MethodPost, tags, tag{"simple", "x"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); e.Details[0].Path != "/body/value" {
			t.Errorf("one-character tag: %+v", e)
		}
		r = s.Call(t, http.MethodPost, tags, tag{"simple", strings.Repeat("x", 51)}).Want(t, http.StatusBadRequest)
		errorOf(t, r)
		r = s.Call(t, http.MethodPost, tags, tag{"nosuch", "flagsync"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); !strings.Contains(e.Message, "Tag type 'nosuch' does not exist") {
			t.Errorf("unknown tag type: %+v", e)
		}
		s.Call(t, http.MethodPut, tags, map[string]any{
			"addedTags": []tag{{"simple", "Team Web"}}, "removedTags": []tag{{"simple", "flagsync"}},
		}).Want(t, http.StatusOK)
		var got struct{ Tags []tag }
		s.Call(t, http.MethodGet, tags, nil).Want(t, http.StatusOK).Decode(t, &got)
		if len(got.Tags) != 1 || got.Tags[0] != (tag{"simple", "Team Web"}) {
			t.Errorf("tags after bulk PUT = %+v", got.Tags)
		}
		s.Call(t, http.MethodDelete, tags+"/simple/Team%20Web", nil).Want(t, http.StatusOK)
		s.Call(t, http.MethodDelete, tags+"/simple/Team%20Web", nil).Want(t, http.StatusOK)
		s.Call(t, http.MethodPost, "/api/admin/features/"+s.UniqueName("nosuch")+"/tags", tag{"simple", "flagsync"}).Want(t, http.StatusNotFound)
		// A tag type of one's own can be created.
		tt := s.UniqueName("flagsync")
		s.Call(t, http.MethodPost, "/api/admin/tag-types", map[string]string{"name": tt, "description": "managed by flagsync"}).Want(t, http.StatusCreated)
		s.Call(t, http.MethodPost, tags, tag{tt, "managed"}).Want(t, http.StatusCreated)
	})

	t.Run("segments: 409 on a taken name, 409 with an empty body when in use", func(t *testing.T) {
		segName := s.UniqueName("seg")
		var sg struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		}
		s.Call(t, http.MethodPost, "/api/admin/segments", map[string]any{
			"name": segName, "description": "d", "constraints": []constraint{{ContextName: "userId", Operator: "IN", Values: []string{"a"}}},
		}).Want(t, http.StatusCreated).Decode(t, &sg)
		r := s.Call(t, http.MethodPost, "/api/admin/segments", map[string]any{"name": segName, "constraints": []constraint{}}).Want(t, http.StatusConflict)
		if e := errorOf(t, r); e.Name != "NameExistsError" {
			t.Errorf("segment name taken: %+v", e)
		}
		r = s.Call(t, http.MethodPost, "/api/admin/segments", map[string]any{"name": s.UniqueName("seg")}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); e.Details[0].Path != "/body/constraints" {
			t.Errorf("segment without constraints: %+v", e)
		}
		s.Call(t, http.MethodPut, "/api/admin/segments/"+strconv.Itoa(sg.ID), map[string]any{"name": segName, "constraints": []constraint{}}).Want(t, http.StatusNoContent)
		var list struct {
			Segments []struct {
				ID          int          `json:"id"`
				Name        string       `json:"name"`
				Constraints []constraint `json:"constraints"`
			} `json:"segments"`
		}
		s.Call(t, http.MethodGet, "/api/admin/segments", nil).Want(t, http.StatusOK).Decode(t, &list)
		if !slices.ContainsFunc(list.Segments, func(x struct {
			ID          int          `json:"id"`
			Name        string       `json:"name"`
			Constraints []constraint `json:"constraints"`
		}) bool {
			return x.ID == sg.ID && x.Name == segName && len(x.Constraints) == 0
		}) {
			t.Errorf("segment list lacks the updated %d %s", sg.ID, segName)
		}
		st := addStrategy(t, s, name, "development", strategy{Name: "default", Segments: []int{sg.ID}})
		r = s.Call(t, http.MethodDelete, "/api/admin/segments/"+strconv.Itoa(sg.ID), nil).Want(t, http.StatusConflict)
		if len(r.Body) != 0 {
			t.Errorf("409 on deleting a segment in use has a body: %s", r.Body)
		}
		s.Call(t, http.MethodDelete, strategiesPath(name, "development")+"/"+st.ID, nil).Want(t, http.StatusOK)
		s.Call(t, http.MethodDelete, "/api/admin/segments/"+strconv.Itoa(sg.ID), nil).Want(t, http.StatusNoContent)
		s.Call(t, http.MethodDelete, "/api/admin/segments/"+strconv.Itoa(sg.ID), nil).Want(t, http.StatusNotFound)
	})

	t.Run("archive, revive, delete", func(t *testing.T) {
		st := addStrategy(t, s, name, "development", strategy{Name: "default"})
		s.Call(t, http.MethodPost, featurePath(name)+"/environments/development/on", nil).Want(t, http.StatusOK)
		s.Call(t, http.MethodDelete, featurePath(name), nil).Want(t, http.StatusAccepted)
		s.Call(t, http.MethodGet, featurePath(name), nil).Want(t, http.StatusNotFound)
		for _, path := range []string{project + "/features", "/api/admin/features/validate"} {
			r := s.Call(t, http.MethodPost, path, map[string]any{"name": name}).Want(t, http.StatusConflict)
			if e := errorOf(t, r); e.Name != "NameExistsError" || e.Message != "An archived flag with that name already exists" {
				t.Errorf("POST %s of an archived name: %+v", path, e)
			}
		}
		s.Call(t, http.MethodPost, "/api/admin/archive/revive/"+name, nil).Want(t, http.StatusOK)
		f := getFeature(t, s, name)
		dev := envOf(t, f, "development")
		// Revival keeps strategies (and their ids) but disables every environment.
		if dev.Enabled || len(dev.Strategies) != 1 || dev.Strategies[0].ID != st.ID {
			t.Errorf("development after revive = %+v", dev)
		}
		var tags struct{ Tags []tag }
		s.Call(t, http.MethodGet, "/api/admin/features/"+name+"/tags", nil).Want(t, http.StatusOK).Decode(t, &tags)
		if len(tags.Tags) == 0 {
			t.Errorf("tags lost on revive")
		}
		// DELETE /api/admin/archive/{name} of a feature that is not archived does nothing,
		// and says 200.
		s.Call(t, http.MethodDelete, "/api/admin/archive/"+name, nil).Want(t, http.StatusOK)
		getFeature(t, s, name)
		s.Call(t, http.MethodDelete, featurePath(name), nil).Want(t, http.StatusAccepted)
		s.Call(t, http.MethodDelete, "/api/admin/archive/"+name, nil).Want(t, http.StatusOK)
		s.Call(t, http.MethodDelete, "/api/admin/archive/"+name, nil).Want(t, http.StatusOK) // gone: still 200
		r := s.Call(t, http.MethodPost, "/api/admin/archive/revive/"+name, nil).Want(t, http.StatusNotFound)
		errorOf(t, r)
		// Deleted for good: the name is free again, as validate says without side effects.
		s.Call(t, http.MethodPost, "/api/admin/features/validate", map[string]any{"name": name}).Want(t, http.StatusOK)
		createFeature(t, s, map[string]any{"name": name})
	})

	t.Run("bulk archive, revive and delete by project", func(t *testing.T) {
		a, b := s.UniqueName("bulk-a"), s.UniqueName("bulk-b")
		createFeature(t, s, map[string]any{"name": a})
		createFeature(t, s, map[string]any{"name": b})
		s.Call(t, http.MethodPost, project+"/archive", map[string]any{"features": []string{a, b}}).Want(t, http.StatusAccepted)
		s.Call(t, http.MethodGet, featurePath(a), nil).Want(t, http.StatusNotFound)
		s.Call(t, http.MethodPost, project+"/revive", map[string]any{"features": []string{a}}).Want(t, http.StatusOK)
		getFeature(t, s, a)
		s.Call(t, http.MethodPost, project+"/delete", map[string]any{"features": []string{b}}).Want(t, http.StatusOK)
		createFeature(t, s, map[string]any{"name": b})
	})
}

// TestErrorShapes asserts the status codes and bodies of refusals.
func TestErrorShapes(t *testing.T) {
	s := Start(t)
	name := s.UniqueName("errors")
	createFeature(t, s, map[string]any{"name": name})

	t.Run("400 from schema validation names the JSON path", func(t *testing.T) {
		r := s.Call(t, http.MethodPost, project+"/features", map[string]any{"type": "release"}).Want(t, http.StatusBadRequest)
		e := errorOf(t, r)
		if e.Name != "BadDataError" || e.ID == "" || e.Details[0].Path != "/body/name" ||
			!strings.HasPrefix(e.Message, "Request validation failed") {
			t.Errorf("missing name: %+v", e)
		}
		r = s.Call(t, http.MethodPost, project+"/features", map[string]any{"name": s.UniqueName("t"), "type": "nope"}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); e.Details[0].Path != "type" || !strings.Contains(e.Details[0].Message, `"release"`) {
			t.Errorf("unknown type: %+v", e)
		}
	})

	t.Run("400 from the service's own checks has no path", func(t *testing.T) {
		r := s.Call(t, http.MethodPost, project+"/features", map[string]any{"name": "bad name!"}).Want(t, http.StatusBadRequest)
		e := errorOf(t, r)
		if e.Name != "BadDataError" || e.Details[0].Path != "" || !strings.Contains(e.Details[0].Message, "URL friendly") {
			t.Errorf("bad name: %+v", e)
		}
		r = s.Call(t, http.MethodPost, project+"/features", map[string]any{"name": strings.Repeat("x", 101)}).Want(t, http.StatusBadRequest)
		if e := errorOf(t, r); !strings.Contains(e.Details[0].Message, "less than or equal to 100 characters") {
			t.Errorf("long name: %+v", e)
		}
	})

	t.Run("400 for malformed JSON has another shape, with a stack trace", func(t *testing.T) {
		// With Accept: application/json (as Do sends); without it the same error is an HTML page.
		r := s.Call(t, http.MethodPost, project+"/features", `{"name":`).Want(t, http.StatusBadRequest)
		var body struct {
			Error struct {
				Message    string `json:"message"`
				Type       string `json:"type"`
				StatusCode int    `json:"statusCode"`
				Stack      string `json:"stack"`
			} `json:"error"`
		}
		r.Decode(t, &body)
		if body.Error.Type != "entity.parse.failed" || body.Error.StatusCode != 400 || body.Error.Message == "" ||
			!strings.HasPrefix(body.Error.Stack, "SyntaxError") {
			t.Errorf("malformed JSON: %s", r)
		}
	})

	t.Run("404 and 409", func(t *testing.T) {
		r := s.Call(t, http.MethodGet, featurePath(s.UniqueName("nosuch")), nil).Want(t, http.StatusNotFound)
		if e := errorOf(t, r); e.Name != "NotFoundError" {
			t.Errorf("missing feature: %+v", e)
		}
		r = s.Call(t, http.MethodPost, "/api/admin/projects/nosuch/features", map[string]any{"name": s.UniqueName("t")}).Want(t, http.StatusNotFound)
		if e := errorOf(t, r); e.Message != "Active project with id nosuch does not exist" {
			t.Errorf("missing project: %+v", e)
		}
		r = s.Call(t, http.MethodPost, project+"/features", map[string]any{"name": name}).Want(t, http.StatusConflict)
		if e := errorOf(t, r); e.Name != "NameExistsError" || e.Message != "A flag with that name already exists" {
			t.Errorf("name taken: %+v", e)
		}
	})

	t.Run("401 and 403", func(t *testing.T) {
		r := s.CallAs(t, "", http.MethodGet, "/api/admin/projects", nil).Want(t, http.StatusUnauthorized)
		if e := errorOf(t, r); e.Name != "AuthenticationRequired" {
			t.Errorf("no token: %+v", e)
		}
		r = s.CallAs(t, "*:*.not-a-token", http.MethodGet, "/api/admin/projects", nil).Want(t, http.StatusUnauthorized)
		if e := errorOf(t, r); e.Name != "UnauthorizedError" {
			t.Errorf("unknown token: %+v", e)
		}
		var client struct{ Secret string }
		s.Call(t, http.MethodPost, "/api/admin/api-tokens", map[string]any{
			"type": "client", "environment": "development", "projects": []string{"*"}, "tokenName": s.UniqueName("client"),
		}).Want(t, http.StatusCreated).Decode(t, &client)
		r = s.CallAs(t, client.Secret, http.MethodGet, "/api/admin/projects", nil).Want(t, http.StatusForbidden)
		// This one has a message only: no name, no details.
		var body map[string]any
		r.Decode(t, &body)
		if len(body) != 1 || !strings.Contains(fmt.Sprint(body["message"]), "expected a different token type") {
			t.Errorf("client token on the admin API: %s", r.Body)
		}
	})

	t.Run("unknown route", func(t *testing.T) {
		r := s.Call(t, http.MethodGet, "/api/admin/nosuch", nil).Want(t, http.StatusNotFound)
		if e := errorOf(t, r); !strings.Contains(e.Message, "is not available") {
			t.Errorf("unknown route: %+v", e)
		}
	})
}
