package unleash_test

import (
	"net/http"
	"testing"

	"github.com/flagsync/flagsync/internal/unleash/unleashtest"
)

// TestServerFactsThePlannerReliesOn asserts, on the real server, the behaviours of Unleash
// 8.2 that shape the planner beyond docs/unleash-api-notes.md. When an upgrade changes one,
// this fails before a plan goes wrong. Its flags are deleted at the end, so the project
// TestEndToEnd syncs is left as it was.
func TestServerFactsThePlannerReliesOn(t *testing.T) {
	s := unleashtest.Start(t)
	const project = "/api/admin/projects/default"
	name := s.UniqueName("facts")
	feature := project + "/features/" + name
	strategies := feature + "/environments/development/strategies"
	t.Cleanup(func() {
		s.Call(t, http.MethodDelete, feature, nil)
		s.Call(t, http.MethodDelete, "/api/admin/archive/"+name, nil)
	})

	// A flag cannot be created with a tag value Unleash has never seen (500); the tag
	// endpoint creates it. So flagsync creates, then tags.
	r := s.Call(t, http.MethodPost, project+"/features", map[string]any{"name": name,
		"tags": []map[string]string{{"type": "simple", "value": s.UniqueName("never-seen")}}})
	if r.Status != http.StatusInternalServerError {
		t.Errorf("create with an unseen tag: %s; flagsync could send tags with the create", r)
	}
	s.Call(t, http.MethodPost, project+"/features", map[string]any{"name": name}).Want(t, http.StatusCreated)

	type strategy struct {
		ID        string `json:"id"`
		SortOrder int    `json:"sortOrder"`
		Disabled  bool   `json:"disabled"`
		Name      string `json:"name"`
	}
	var a, b strategy
	s.Call(t, http.MethodPost, strategies, map[string]any{"name": "default", "title": "a", "sortOrder": 7}).Want(t, http.StatusOK).Decode(t, &a)
	if a.SortOrder != 7 {
		t.Errorf("POST with sortOrder 7 stored %d", a.SortOrder)
	}
	// A PUT ignores sortOrder: reordering needs set-sort-order.
	s.Call(t, http.MethodPut, strategies+"/"+a.ID, map[string]any{"name": "default", "title": "a", "sortOrder": 1}).Want(t, http.StatusOK).Decode(t, &a)
	if a.SortOrder != 7 {
		t.Errorf("PUT with sortOrder 1 changed it to %d; flagsync could send it there", a.SortOrder)
	}

	env := func() (bool, []strategy) {
		var f struct {
			Environments []struct {
				Name       string
				Enabled    bool
				Strategies []strategy
			}
		}
		s.Call(t, http.MethodGet, feature, nil).Want(t, http.StatusOK).Decode(t, &f)
		for _, e := range f.Environments {
			if e.Name == "development" {
				return e.Enabled, e.Strategies
			}
		}
		t.Fatal("no development")
		return false, nil
	}
	s.Call(t, http.MethodPost, feature+"/environments/development/on", nil).Want(t, http.StatusOK)
	// A PUT that leaves only disabled strategies turns the environment off.
	s.Call(t, http.MethodPut, strategies+"/"+a.ID, map[string]any{"name": "default", "title": "a", "disabled": true}).Want(t, http.StatusOK)
	if on, _ := env(); on {
		t.Error("the environment stayed on with only disabled strategies")
	}
	// Turning on an environment whose strategies are all disabled adds a strategy.
	s.Call(t, http.MethodPost, feature+"/environments/development/on", nil).Want(t, http.StatusOK)
	on, ss := env()
	if !on || len(ss) != 2 || ss[1].Name != "flexibleRollout" || ss[1].Disabled {
		t.Errorf("on with only disabled strategies: enabled %t, strategies %+v; want a flexibleRollout added", on, ss)
	}
	// Deleting the last strategy that is not disabled turns it off too.
	s.Call(t, http.MethodPost, strategies, map[string]any{"name": "default", "title": "b"}).Want(t, http.StatusOK).Decode(t, &b)
	s.Call(t, http.MethodDelete, strategies+"/"+ss[1].ID, nil).Want(t, http.StatusOK)
	if on, _ := env(); !on {
		t.Error("deleting a strategy while another is enabled turned the environment off")
	}
	s.Call(t, http.MethodDelete, strategies+"/"+b.ID, nil).Want(t, http.StatusOK)
	if on, _ := env(); on {
		t.Error("the environment stayed on after its last enabled strategy was deleted")
	}
}
