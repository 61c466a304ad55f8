package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
)

// dependentPlan: flag a's production patch (3) needs flag z's (2); z sorts after a in
// names but comes first in the plan. Flag c is independent.
func dependentPlan() plan.Plan {
	p := plan.Plan{Revision: "rev1", Changes: []plan.Change{
		change(1, plan.ActionUpdate, "z", "development"),
		change(2, plan.ActionUpdate, "z", "production"),
		change(3, plan.ActionUpdate, "a", "production"),
		change(4, plan.ActionUpdate, "c", "production"),
	}}
	p.Changes[2].After = []int{2}
	return p
}

// TestAfterOrdersFlagsApplied checks that a change is sent only after the changes it
// needs, even with flags applied concurrently and the needed flag slowed down.
func TestAfterOrdersFlagsApplied(t *testing.T) {
	for range 20 {
		f := newFake()
		var mu sync.Mutex
		var order []string
		f.hook = func(_ context.Context, req api.Request) error {
			if strings.Contains(req.Path, "/z/") {
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			order = append(order, req.Path)
			mu.Unlock()
			return nil
		}
		out := Plan(context.Background(), f, dependentPlan(), Options{Concurrency: 4})
		if out.Summary != (Summary{Applied: 4}) {
			t.Fatalf("summary %+v", out.Summary)
		}
		za, aa := -1, -1
		for i, p := range order {
			switch {
			case strings.HasSuffix(p, "/z/production"):
				za = i
			case strings.HasSuffix(p, "/a/production"):
				aa = i
			}
		}
		if za < 0 || aa < za {
			t.Fatalf("a's patch went out before z's: %v", order)
		}
	}
	// With one worker there is no deadlock either.
	if out := Plan(context.Background(), newFake(), dependentPlan(), Options{Concurrency: 1}); out.Summary.Applied != 4 {
		t.Errorf("one worker: %+v", out.Summary)
	}
}

// TestAfterSkipsWhatANeededChangeDidNotApply: a failed, or awaiting, needed change skips
// the change that needs it, and only that.
func TestAfterSkipsWhatANeededChangeDidNotApply(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want []string
	}{
		{&api.Error{Status: 400, Method: "PATCH", Path: "x"}, []string{"1:applied", "2:failed", "3:skipped(not sent: change 2 it needs was not applied (failed))", "4:applied"}},
		{&PendingApproval{Request: "cr-7", Filed: true}, []string{"1:applied", "2:awaiting-approval(awaiting approval: change request cr-7 filed)", "3:skipped(not sent: change 2 it needs is awaiting approval)", "4:applied"}},
	} {
		f := newFake()
		f.errs["PATCH "+dependentPlan().Changes[1].Request.Path] = tt.err
		out := Plan(context.Background(), f, dependentPlan(), Options{Concurrency: 2})
		if got := statuses(out); !equal(got, tt.want) {
			t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

// TestPendingApprovalIsItsOwnOutcome: a Doer's *PendingApproval is counted as awaiting
// approval, not as a failure, and the flag's other changes go on.
func TestPendingApprovalIsItsOwnOutcome(t *testing.T) {
	f := newFake()
	p := samplePlan()
	f.errs["PATCH "+p.Changes[2].Request.Path] = fmt.Errorf("patch: %w", &PendingApproval{Request: "cr-1", Filed: false, Detail: "Production requires approvals"})
	out := Plan(context.Background(), f, p, Options{})
	want := Summary{Applied: 4, AwaitingApproval: 1}
	if out.Summary != want || out.Results[2].Err != nil || !strings.Contains(out.Results[2].Note, "cr-1 already open; not filed again (Production requires approvals)") {
		t.Fatalf("summary %+v, result %+v", out.Summary, out.Results[2])
	}
	if got := out.Summary.String(); got != "4 applied, 0 failed, 0 skipped, 1 awaiting approval" {
		t.Errorf("summary line %q", got)
	}
	if got := (Summary{Applied: 1}).String(); got != "1 applied, 0 failed, 0 skipped" {
		t.Errorf("summary line without approvals %q", got)
	}
	var pa *PendingApproval
	if !errors.As(fmt.Errorf("x: %w", &PendingApproval{Request: "r"}), &pa) {
		t.Error("PendingApproval does not unwrap")
	}
}

// TestDoerSeesTheChangeItSends: the context passed to Do carries the change and the
// plan's revision.
func TestDoerSeesTheChangeItSends(t *testing.T) {
	f := newFake()
	var mu sync.Mutex
	seen := map[string]Sending{}
	f.hook = func(ctx context.Context, req api.Request) error {
		s, ok := SendingFrom(ctx)
		if !ok {
			return errors.New("no change in the context")
		}
		mu.Lock()
		seen[req.Path] = s
		mu.Unlock()
		return nil
	}
	p := samplePlan()
	p.Changes[3].Reason = "why"
	out := Plan(context.Background(), f, p, Options{})
	if out.Summary.Applied != 5 {
		t.Fatalf("%+v", out.Results)
	}
	if s := seen[p.Changes[3].Request.Path]; s.Revision != "rev1" || s.Change.Order != 4 || s.Change.Reason != "why" {
		t.Errorf("sending = %+v", s)
	}
	if _, ok := SendingFrom(context.Background()); ok {
		t.Error("a plain context carries a change")
	}
}
