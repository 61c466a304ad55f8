package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/provider/providertest"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// TestGuardStopsWrites: Input.Guard is asked before each change is sent; once it
// refuses, no further write reaches the service and the refused changes fail with the
// guard's answer.
func TestGuardStopsWrites(t *testing.T) {
	svc := fake.NewServer()
	c := fake.NewClient(svc, api.NewBudgetWindows(api.Window{Period: time.Hour, Limit: 1000}), nil)
	fsys := fstest.MapFS{}
	for i := range 3 {
		p, f := providertest.File(fmt.Sprintf("flag_%d.yaml", i), fmt.Sprintf("vendor: fake\nkey: flag_%d\nenabled: true\nvalue: blue\n", i))
		fsys[p] = f
	}
	lost := errors.New("lease lost")
	var asked atomic.Int32
	rep, err := reconcile.Run(context.Background(), reconcile.Input{
		Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{fake.Vendor(c)}, Concurrency: 1,
		Guard: func(context.Context) error {
			if asked.Add(1) > 1 {
				return lost
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Writes() != 1 || rep.Summary.Applied != 1 || rep.Summary.Failed != 2 {
		t.Fatalf("writes %d, summary %+v: want the first change applied and the other two stopped", svc.Writes(), rep.Summary)
	}
	for _, r := range rep.Results {
		var g *api.GuardError
		if r.Status == apply.Failed && (!errors.Is(r.Err, lost) || !errors.As(r.Err, &g)) {
			t.Errorf("failed change: %v, want the guard's answer in an *api.GuardError", r.Err)
		}
	}
}

// TestAwaitingApprovalIsNotRefused: changes awaiting approval are kept apart from the
// planner's refusals, worded as such, and a run whose only difference is one awaiting
// approval did all it could.
func TestAwaitingApprovalIsNotRefused(t *testing.T) {
	flag := plan.Address{Service: "Split", Scope: "ws", Key: "checkout"}
	other := plan.Address{Service: "Split", Scope: "ws", Key: "banner"}
	waiting := plan.Blocked{Address: flag, Kind: plan.BlockedAwaitingApproval, ChangeRequest: "cr-1"}
	refused := plan.Blocked{Address: other, Kind: plan.BlockedMissingDependency, Reason: "needs gate"}
	change := func(a plan.Address) plan.Change {
		a.Environment = "Production"
		return plan.Change{Address: a, Action: plan.ActionUpdate}
	}

	for _, tc := range []struct {
		name      string
		rep       reconcile.Report
		why       string
		onlyAwait bool
	}{
		{"filed now", reconcile.Report{Verified: true, Remaining: []plan.Change{change(flag)},
			Results: []apply.Result{{Change: change(flag), Status: apply.AwaitingApproval}}, Summary: apply.Summary{AwaitingApproval: 1}},
			"1 change awaiting approval in Split", true},
		{"already open", reconcile.Report{Verified: true, Remaining: []plan.Change{change(flag)}, AwaitingApproval: []plan.Blocked{waiting},
			Results: []apply.Result{{Change: change(flag), Status: apply.AwaitingApproval}}, Summary: apply.Summary{AwaitingApproval: 1}},
			"1 change awaiting approval in Split", true},
		{"with a refusal", reconcile.Report{Verified: true, AwaitingApproval: []plan.Blocked{waiting}, Refused: []plan.Blocked{refused}},
			"1 change refused by the planner; 1 change awaiting approval in Split", false},
		{"with a difference left", reconcile.Report{Verified: true, Remaining: []plan.Change{change(flag), change(other)}, AwaitingApproval: []plan.Blocked{waiting}},
			"1 difference remains after applying; 1 change awaiting approval in Split", false},
		{"with a failure", reconcile.Report{Verified: true, AwaitingApproval: []plan.Blocked{waiting}, Summary: apply.Summary{Failed: 1}},
			"1 change awaiting approval in Split", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rep.NotConverged(); got != tc.why {
				t.Errorf("NotConverged() = %q, want %q", got, tc.why)
			}
			if strings.Contains(tc.rep.NotConverged(), "refused") != (len(tc.rep.Refused) > 0) {
				t.Errorf("a change awaiting approval is called refused: %q", tc.rep.NotConverged())
			}
			if got := tc.rep.OnlyAwaitingApproval(); got != tc.onlyAwait {
				t.Errorf("OnlyAwaitingApproval() = %t, want %t", got, tc.onlyAwait)
			}
		})
	}
}
