package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	fl "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	"github.com/flagsync/flagsync/internal/plan"
)

// setupPlan measures plan.Compute against live state read from the sandbox: a state that
// matches the files, and one where about 1% of the flags differ in one environment.
func setupPlan(fset *flag.FlagSet) measure {
	ns := sizes{1000, 10000}
	fset.Var(&ns, "n", "comma-separated numbers of flags")
	runs := fset.Int("runs", 5, "plans measured per case (after one warm-up)")
	pct := fset.Float64("change", 1, "percentage of flags that differ in the changed live state")
	quick := fset.Bool("quick", false, "CI variant: -n 1000 -runs 3")
	return func(ctx context.Context, progress io.Writer) (*section, error) {
		if err := applyQuick(fset, *quick, map[string]string{"n": "1000", "runs": "3"}); err != nil {
			return nil, err
		}
		if *runs < 1 || *pct <= 0 || *pct > 100 {
			return nil, usageError("want -runs >= 1, 0 < -change <= 100")
		}
		return measurePlan(ctx, ns, *runs, *pct, progress)
	}
}

func measurePlan(ctx context.Context, ns []int, runs int, pct float64, progress io.Writer) (*section, error) {
	sec := &section{
		title: "Plan",
		intro: []string{fmt.Sprintf("plan.Compute of the loaded flags against the live flags as flagsync reads them "+
			"(created in the sandbox by flagsync's own create requests, then listed and decoded by the API client). "+
			"\"matching\": the files are what was created; \"%g%% changed\": about %g%% of the flags have another "+
			"production exposition in the files, one environment patch each. One warm-up, then %d measured runs per case.", pct, pct, runs)},
	}
	t := &table{header: []string{"flags", "live state", "changes", "median", "fastest", "allocated per plan", "objects per plan", "peak heap", "heap before (inputs)"}}
	for _, n := range ns {
		fmt.Fprintf(progress, "plan: %d flags: seeding the sandbox and reading it back\n", n)
		live, err := liveState(ctx, n)
		if err != nil {
			return nil, err
		}
		edits := editEvery(n, pct)
		cases := []struct {
			name  string
			edits map[int]bool
			want  int
		}{
			{"matching", nil, 0},
			{fmt.Sprintf("%g%% changed", pct), edits, len(edits)},
		}
		for _, c := range cases {
			desired, err := kload.Load(genRepo(n, c.edits), ".")
			if err != nil {
				return nil, fmt.Errorf("load %d generated files: %w", n, err)
			}
			opts := kplan.OptionsFor(desired.Settings)
			var p plan.Plan
			compute := func() error {
				var err error
				p, err = kplan.Compute(desired, live, opts)
				return err
			}
			if err := compute(); err != nil {
				return nil, fmt.Errorf("plan %d flags: %w", n, err)
			}
			fmt.Fprintf(progress, "plan: %d flags, %s\n", n, c.name)
			f, err := measureCPU(runs, compute)
			if err != nil {
				return nil, fmt.Errorf("plan %d flags: %w", n, err)
			}
			sec.check(len(p.Changes) == c.want, "%d flags, %s live state: %d changes, want %d", n, c.name, len(p.Changes), c.want)
			t.add(count(n), c.name, len(p.Changes), ms(f.median), ms(f.min), mib(f.allocBytes), count(f.allocs), mib(f.peakHeap), mib(f.inputHeap))
			sec.headline(fmt.Sprintf("plan %s flags against a %s live state", count(n), c.name),
				fmt.Sprintf("%s (median), %d changes", human(f.median), len(p.Changes)))
		}
	}
	sec.tables = []*table{t}
	sec.notes = []string{"Times are wall-clock times of one plan.Compute (pure: no I/O). Memory columns as for loading; " +
		"heap before holds the desired and the live flags."}
	return sec, nil
}

// liveState returns the live flags of n generated flags as flagsync reads them: created
// in a sandbox by the plan against an empty account, then listed.
func liveState(ctx context.Context, n int) ([]fl.Flag, error) {
	e, err := newEnv(1)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.seed(ctx, genRepo(n, nil)); err != nil {
		return nil, err
	}
	c, err := e.seedClient()
	if err != nil {
		return nil, err
	}
	live, err := c.ListFlags(ctx, benchSite)
	if err != nil {
		return nil, fmt.Errorf("read the seeded flags: %w", err)
	}
	if len(live) != n {
		return nil, fmt.Errorf("read the seeded flags: %d flags, want %d", len(live), n)
	}
	return live, nil
}
