package kplan

import (
	"fmt"
	"math/rand"
	"sync/atomic"
	"testing"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
)

// FuzzPatchConverges fuzzes merge-patch construction: for any seed, a random valid flag
// is created with the planner's own request, edited at random, and the planned create,
// flag patches and environment merge patches are applied to the sandbox (a real RFC
// 7396 merge, arrays replaced whole). Reading the flag back must then plan to zero
// changes: every patch the planner builds says exactly what Git says, no more, no less.
//
//	go test ./internal/kameleoon/plan -run='^$' -fuzz=FuzzPatchConverges -fuzztime=60s
func FuzzPatchConverges(f *testing.F) {
	for _, seed := range []int64{1, 2, 3, 42, 20251217, -7} {
		f.Add(seed)
	}
	_, ts := ksandboxtest.NewTestServer(f, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	token := ""
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, seed int64) {
		c := &sandboxClient{t: t, base: ts.URL, http: ts.Client(), token: token}
		if c.token == "" {
			c.token = c.fetchToken()
			token = c.token
		}
		g := &flagGen{rng: rand.New(rand.NewSource(seed))}
		fl := g.flag(fmt.Sprintf("fuzz_%d", n.Add(1)))

		c.apply(mustCompute(t, desiredOf(fl), nil, Options{}))
		live := c.get(fl.SiteCode, fl.FeatureKey)
		edited := g.edit(fl, &live)
		p := mustCompute(t, desiredOf(edited), []kmodel.Flag{live}, Options{})
		c.apply(p)
		after := c.get(fl.SiteCode, fl.FeatureKey)
		if rest := mustCompute(t, desiredOf(edited), []kmodel.Flag{after}, Options{}); len(rest.Changes) > 0 {
			t.Fatalf("seed %d: after applying\n%s\nthe flag still plans:\n%s", seed, describePlan(p), describePlan(rest))
		}
	})
}
