package unleash_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest"
	"github.com/flagsync/flagsync/internal/unleash"
	unleashclient "github.com/flagsync/flagsync/internal/unleash/client"
	"github.com/flagsync/flagsync/internal/unleash/unleashtest"
)

// TestUnleashPassesTheContract runs the vendor-neutral contract against the real
// unleash-server. Each world is an empty default project: the contract's worlds share one
// dedicated server (a start runs Unleash's migrations), wiped before each, and writes are
// counted server-side by a proxy in front of it. Unleash's planner refuses no single
// change of its own (a segment or an environment Unleash lacks refuses the whole plan,
// which TestEndToEnd covers), so the harness has no Refuse.
func TestUnleashPassesTheContract(t *testing.T) {
	server := unleashtest.StartDedicated(t)
	reg := provider.NewRegistry()
	reg.Register(unleash.Provider())
	providertest.Run(t, reg, providertest.Harness{
		Name: "unleash",
		NewWorld: func(t *testing.T) *providertest.World {
			wipe(t, server, contractKeys(8))
			srv, calls := startProxy(t, server.BaseURL)
			var made atomic.Int64
			c, err := unleashclient.New(unleashclient.Config{BaseURL: srv.URL, Token: server.AdminToken,
				Budget: unleashclient.NewBudget(1000, 60000), Observer: func(api.CallInfo) { made.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			return &providertest.World{Vendor: unleash.Vendor(c), Writes: func() int { return len(writesOf(calls)) },
				Calls: made.Load, Budget: c.Budget(), Server: server}
		},
		Repo: func(n int) fstest.MapFS {
			fsys := fstest.MapFS{}
			p, f := providertest.File("flagsync.yaml", "vendor: unleash\nproject: default\nenvironments: [development, production]\n")
			fsys[p] = f
			for _, k := range contractKeys(n) {
				p, f := providertest.File(k+".yaml", contractFlag(k, 10))
				fsys[p] = f
			}
			return fsys
		},
		Keys: contractKeys,
		Edit: func(fsys fstest.MapFS) string {
			p, f := providertest.File("contract-1.yaml", contractFlag("contract-1", 60))
			fsys[p] = f
			return "contract-1"
		},
		Remove: func(fsys fstest.MapFS, keys ...string) {
			for _, k := range keys {
				delete(fsys, "flags/"+k+".yaml")
			}
		},
		Break: func(fsys fstest.MapFS) string {
			p, f := providertest.File("contract-2.yaml", contractFlag("contract-2", 140))
			fsys[p] = f
			return p
		},
		// The project's flag list, and one GET per flag with strategies (every one); no
		// strategy uses a segment, so the segment list is not read.
		SteadyCalls: func(n int) int64 { return int64(1 + n) },
	})
}

func contractKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("contract-%d", i)
	}
	return out
}

func contractFlag(name string, rollout int) string {
	return fmt.Sprintf(`name: %s
description: a flag of the contract
environments:
  production:
    enabled: true
    strategies:
      - name: flexibleRollout
        title: gradual
        parameters: {rollout: %d, stickiness: userId}
`, name, rollout)
}

// writesOf returns the calls a counter saw that were not reads.
func writesOf(c *counter) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return writes(c.calls)
}

// wipe empties the default project of s: every active flag is archived, then those and
// the names flagsync may have archived (names) are deleted for good, so that the next
// world finds neither active nor archived flags. It checks that every name is free.
func wipe(t *testing.T, s *unleashtest.Server, names []string) {
	t.Helper()
	var list struct{ Features []struct{ Name string } }
	s.Call(t, http.MethodGet, "/api/admin/projects/default/features", nil).Want(t, http.StatusOK).Decode(t, &list)
	var active []string
	for _, f := range list.Features {
		active = append(active, f.Name)
	}
	if len(active) > 0 {
		s.Call(t, http.MethodPost, "/api/admin/projects/default/archive", map[string]any{"features": active}).Want(t, http.StatusAccepted, http.StatusOK)
	}
	all := append(active, names...)
	s.Call(t, http.MethodPost, "/api/admin/projects/default/delete", map[string]any{"features": all}).Want(t, http.StatusOK)
	for _, name := range all {
		r := s.Call(t, http.MethodPost, "/api/admin/features/validate", map[string]any{"name": name})
		if r.Status != http.StatusOK {
			t.Fatalf("wipe: %s is still taken: %s", name, strings.TrimSpace(string(r.Body)))
		}
	}
}
