package apply

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
)

// wavePlan has four flags: a (1 change), b (2), c (1), d (2).
func wavePlan() plan.Plan {
	return plan.Plan{Revision: "r", Changes: []plan.Change{
		change(1, plan.ActionCreate, "a", ""),
		change(2, plan.ActionUpdate, "b", "development"),
		change(3, plan.ActionUpdate, "b", "production"),
		change(4, plan.ActionUpdate, "c", "production"),
		change(5, plan.ActionUpdate, "d", "development"),
		change(6, plan.ActionUpdate, "d", "production"),
	}}
}

func TestWaves(t *testing.T) {
	p := wavePlan()
	two := func(c plan.Change) int {
		if c.Action == plan.ActionCreate {
			return 2
		}
		return 1
	}
	for _, tt := range []struct {
		name        string
		calls       func(plan.Change) int
		room, limit int
		want        []int
	}{
		{"everything fits", nil, 100, 1000, []int{6}},
		{"three left, three an hour", nil, 3, 3, []int{3, 3}},
		{"a flag is never split", nil, 2, 3, []int{1, 3, 2}},
		{"nothing left: the first wave waits too", nil, 0, 4, []int{4, 2}},
		{"a flag larger than the limit goes alone", nil, 1, 1, []int{1, 2, 1, 2}},
		{"the vendor's rule", two, 3, 10, []int{2, 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Waves(p, tt.calls, tt.room, tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("Waves = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPlanSendsWavesInTurn: with three calls left in the budget's window of three, the
// plan goes out in two waves; the second starts only once the first is done and the
// window has room for it, and no flag has changes in both.
func TestPlanSendsWavesInTurn(t *testing.T) {
	b := api.NewBudgetWindows(api.Window{Limit: 3, Period: 100 * time.Millisecond})
	f := newFake()
	f.hook = func(ctx context.Context, _ api.Request) error { return b.Wait(ctx) } // each call is charged
	out := Plan(context.Background(), f, wavePlan(), Options{Concurrency: 4, Budget: b})
	if out.Summary != (Summary{Applied: 6}) {
		t.Fatalf("summary %+v: %v", out.Summary, statuses(out))
	}
	sent := f.requests()
	pos := func(path string) int { return slices.Index(sent, path) }
	first := []string{"POST /feature-flags", "PATCH " + flagPath("s1", "b") + "/development", "PATCH " + flagPath("s1", "b") + "/production"}
	second := []string{"PATCH " + flagPath("s1", "c") + "/production", "PATCH " + flagPath("s1", "d") + "/development", "PATCH " + flagPath("s1", "d") + "/production"}
	for _, a := range first {
		for _, z := range second {
			if pos(a) > pos(z) {
				t.Errorf("%s (wave 1) sent after %s (wave 2): %q", a, z, sent)
			}
		}
	}
	for _, r := range out.Results {
		if len(r.Response) == 0 {
			t.Errorf("change %d applied without its response", r.Change.Order)
		}
	}
}

// TestPlanCancelledBetweenWaves: a sync cancelled while it waits for the window skips
// the waves not started, whole flags only.
func TestPlanCancelledBetweenWaves(t *testing.T) {
	b := api.NewBudgetWindows(api.Window{Limit: 3, Period: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake()
	f.hook = func(ctx context.Context, _ api.Request) error {
		err := b.Wait(ctx)
		if _, free, _ := b.Room(); free == 0 {
			cancel() // the first wave spent the window: stop while the second waits
		}
		return err
	}
	out := Plan(ctx, f, wavePlan(), Options{Concurrency: 4, Budget: b, Hard: context.Background()})
	want := []string{"1:applied", "2:applied", "3:applied",
		"4:skipped(" + ReasonCancelled + ")", "5:skipped(" + ReasonCancelled + ")", "6:skipped(" + ReasonCancelled + ")"}
	if got := statuses(out); !equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
}

// TestPlanDryRunHasNoWaves: a dry run sends nothing, so it never waits for the budget.
func TestPlanDryRunHasNoWaves(t *testing.T) {
	b := api.NewBudgetWindows(api.Window{Limit: 1, Period: time.Hour})
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := Plan(ctx, newFake(), wavePlan(), Options{DryRun: true, Budget: b})
	if out.Summary != (Summary{Skipped: 6}) || ctx.Err() != nil {
		t.Errorf("summary %+v, ctx %v", out.Summary, ctx.Err())
	}
}
