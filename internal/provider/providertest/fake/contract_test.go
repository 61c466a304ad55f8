package fake_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
)

// TestFakeVendorPassesTheContract: a vendor registered with one line passes the
// vendor-neutral contract, as Kameleoon and Split do.
func TestFakeVendorPassesTheContract(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register(fake.Provider(fake.NewServer())) // the one registration line
	providertest.Run(t, reg, Harness())
}

// Harness is the fake service's side of the contract.
func Harness() providertest.Harness {
	return providertest.Harness{
		Name: fake.Name,
		NewWorld: func(t *testing.T) *providertest.World {
			svc := fake.NewServer()
			var calls atomic.Int64
			budget := api.NewBudgetWindows(api.Window{Period: time.Hour, Limit: 100000})
			c := fake.NewClient(svc, budget, func(api.CallInfo) { calls.Add(1) })
			return &providertest.World{Vendor: fake.Vendor(c), Writes: svc.Writes, Calls: calls.Load, Budget: budget, Server: svc}
		},
		Repo: func(n int) fstest.MapFS {
			fsys := fstest.MapFS{}
			for _, k := range keys(n) {
				p, f := providertest.File(k+".yaml", "vendor: fake\nkey: "+k+"\nenabled: true\nvalue: blue\n")
				fsys[p] = f
			}
			return fsys
		},
		Keys: keys,
		Edit: func(fsys fstest.MapFS) string {
			p, f := providertest.File("flag_1.yaml", "vendor: fake\nkey: flag_1\nenabled: false\nvalue: green\n")
			fsys[p] = f
			return "flag_1"
		},
		Remove: func(fsys fstest.MapFS, keys ...string) {
			for _, k := range keys {
				delete(fsys, "flags/"+k+".yaml")
			}
		},
		Break: func(fsys fstest.MapFS) string {
			p, f := providertest.File("flag_2.yaml", "vendor: fake\nkey: Flag-2\nenabled: maybe\n")
			fsys[p] = f
			return p
		},
		Refuse: func(t *testing.T, w *providertest.World, fsys fstest.MapFS) {
			// flag_0 is locked in the service and changed in Git (refused); flag_3 is
			// changed too (applied).
			w.Server.(*fake.Server).Lock("flag_0")
			for _, k := range []string{"flag_0", "flag_3"} {
				p, f := providertest.File(k+".yaml", "vendor: fake\nkey: "+k+"\nenabled: true\nvalue: red\n")
				fsys[p] = f
			}
		},
		SteadyCalls: func(int) int64 { return 1 },
	}
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("flag_%d", i)
	}
	return out
}
