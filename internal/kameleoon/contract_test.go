package kameleoon_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest"
)

const contractSite = "contract01"

// TestKameleoonPassesTheContract runs the vendor-neutral contract against the sandbox.
func TestKameleoonPassesTheContract(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register(kameleoon.Provider())
	providertest.Run(t, reg, providertest.Harness{
		Name: kameleoon.Name,
		NewWorld: func(t *testing.T) *providertest.World {
			sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Environments: []string{"development", "production"}})
			var calls atomic.Int64
			c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
				Budget: kclient.NewBudget(100000, 1000000), Observer: func(api.CallInfo) { calls.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			// Token requests are not charged to the budget (kclient.TokenCountsNo).
			return &providertest.World{Vendor: kameleoon.Vendor(c), Writes: sb.Writes, Calls: calls.Load, Budget: c.Budget(), Server: sb,
				Uncharged: func() int64 { return c.Counts().Token }}
		},
		Repo: func(n int) fstest.MapFS {
			fsys := fstest.MapFS{}
			p, f := providertest.File("flagsync.yaml", "siteCode: "+contractSite+"\nenvironments: [development, production]\n")
			fsys[p] = f
			for _, k := range contractKeys(n) {
				p, f := providertest.File(k+".yaml", contractFlag(k, false))
				fsys[p] = f
			}
			return fsys
		},
		Keys: contractKeys,
		Edit: func(fsys fstest.MapFS) string {
			p, f := providertest.File("flag_1.yaml", contractFlag("flag_1", true))
			fsys[p] = f
			return "flag_1"
		},
		Remove: func(fsys fstest.MapFS, keys ...string) {
			for _, k := range keys {
				delete(fsys, "flags/"+k+".yaml")
			}
		},
		Break: func(fsys fstest.MapFS) string {
			p, f := providertest.File("flag_2.yaml", "featureKey: Flag-2!\nname: Two\nvariations: [{key: \"off\"}]\n")
			fsys[p] = f
			return p
		},
		// flag_0 no longer lists development, which serves "on", and removes "on": the
		// removal is refused, the rename applied.
		Refuse: func(t *testing.T, _ *providertest.World, fsys fstest.MapFS) {
			p, f := providertest.File("flag_0.yaml", `featureKey: flag_0
name: Renamed
variations:
  - {key: "off", name: Off}
environments:
  production:
    featureEnabled: false
    defaultVariationKey: "off"
`)
			fsys[p] = f
		},
		// One call (the token is cached): the vendor of the world lives across its syncs,
		// so the second reads what changed since the first with one search.
		SteadyCalls: func(int) int64 { return 1 },
	})
}

func contractKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("flag_%d", i)
	}
	return out
}

func contractFlag(key string, prodOn bool) string {
	return fmt.Sprintf(`featureKey: %s
name: Flag %s
variations:
  - {key: "off", name: Off}
  - {key: "on", name: On}
environments:
  development:
    featureEnabled: true
    defaultVariationKey: "on"
  production:
    featureEnabled: %t
    defaultVariationKey: "off"
`, key, key, prodOn)
}
