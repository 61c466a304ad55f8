package reconcile_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// TestPriceStepDefault: a service that states no price rule (the fake vendor) is priced
// by the neutral default — one call per change, the run's calls so far as its reads —
// which the price says; the plan OnPlan shows is priced; a dry run's price holds its
// reads only.
func TestPriceStepDefault(t *testing.T) {
	svc := fake.NewServer()
	var calls atomic.Int64
	v := fake.Vendor(fake.NewClient(svc, api.NewBudgetWindows(api.Window{Period: time.Hour, Limit: 100}), func(api.CallInfo) { calls.Add(1) }))
	fsys := fstest.MapFS{"flags/a.yaml": fakeFile("a"), "flags/b.yaml": fakeFile("b")}
	for _, dry := range []bool{true, false} {
		var shown *plan.Price
		before := calls.Load()
		rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{v},
			DryRun: dry, Calls: calls.Load, OnPlan: func(p plan.Plan) { shown = p.Price }})
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Plan.Price
		if p == nil || shown != p || len(p.Services) != 1 {
			t.Fatalf("dry run %t: price %+v, shown %+v", dry, p, shown)
		}
		sp := p.Services[0]
		if !strings.HasPrefix(sp.Rule, "default price") || sp.Writes != 2 || sp.Reads != 1 || sp.Window != nil {
			t.Errorf("dry run %t: %+v, want the default: 2 writes, 1 read (the list), no window", dry, sp)
		}
		want := 1 // the list
		if !dry {
			want += 2
		}
		if sp.Calls != want || p.Calls != want || int(calls.Load()-before) < want {
			t.Errorf("dry run %t: priced %d calls, want %d (the run made %d; the fake's confirming read is not priced)", dry, p.Calls, want, calls.Load()-before)
		}
	}
}

// TestPriceShownForARefusedPlan: a plan the guard refuses is still priced and shown.
func TestPriceShownForARefusedPlan(t *testing.T) {
	svc := fake.NewServer()
	v := fake.Vendor(fake.NewClient(svc, api.NewBudgetWindows(), nil))
	fsys := fstest.MapFS{"flags/a.yaml": fakeFile("a"), "flags/b.yaml": fakeFile("b")}
	var shown plan.Plan
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{v},
		MaxChanges: 1, OnPlan: func(p plan.Plan) { shown = p }})
	if err == nil || shown.Price == nil || rep.Plan.Price == nil || rep.Plan.Price.Services[0].Writes != 2 {
		t.Errorf("err %v, shown price %+v, report price %+v", err, shown.Price, rep.Plan.Price)
	}
	if svc.Writes() != 0 {
		t.Errorf("a refused plan wrote %d times", svc.Writes())
	}
}
