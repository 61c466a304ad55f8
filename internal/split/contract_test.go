package split_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest"
	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

// TestSplitPassesTheContract runs the vendor-neutral contract against the Split sandbox.
// Split's planner refuses nothing of its own: its refusals are the mass-archive guard's,
// which the contract covers.
func TestSplitPassesTheContract(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register(split.Provider())
	providertest.Run(t, reg, providertest.Harness{
		Name: "split",
		NewWorld: func(t *testing.T) *providertest.World {
			sb, _, url := startSandbox(t)
			var calls atomic.Int64
			c, err := splitclient.New(splitclient.Config{BaseURL: url, APIKey: splitsandbox.DefaultAPIKey,
				Budget: splitclient.NewBudget(1000, 100000), Observer: func(api.CallInfo) { calls.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			return &providertest.World{Vendor: split.Vendor(c), Writes: sb.Writes, Calls: calls.Load, Budget: c.Budget(), Server: sb}
		},
		Repo: func(n int) fstest.MapFS {
			fsys := fstest.MapFS{}
			p, f := providertest.File("flagsync.yaml", "vendor: split\nworkspace: "+ws+"\ntrafficType: user\nenvironments: [Production]\n")
			fsys[p] = f
			for _, k := range splitKeys(n) {
				p, f := providertest.File(k+".yaml", splitFlag(k, "off"))
				fsys[p] = f
			}
			return fsys
		},
		Keys: splitKeys,
		Edit: func(fsys fstest.MapFS) string {
			p, f := providertest.File("flag_1.yaml", splitFlag("flag_1", "on"))
			fsys[p] = f
			return "flag_1"
		},
		Remove: func(fsys fstest.MapFS, keys ...string) {
			for _, k := range keys {
				delete(fsys, "flags/"+k+".yaml")
			}
		},
		Break: func(fsys fstest.MapFS) string {
			p, f := providertest.File("flag_2.yaml", splitFlag("flag_2", "maybe"))
			fsys[p] = f
			return p
		},
		// One list of the workspace's flags and one of its Production definitions.
		SteadyCalls: func(int) int64 { return 2 },
	})
}

func splitKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("flag_%d", i)
	}
	return out
}

func splitFlag(name, treatment string) string {
	return fmt.Sprintf(`name: %s
environments:
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: %q
`, name, treatment)
}
