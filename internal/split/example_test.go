package split_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

// TestExampleRepository validates, plans and syncs examples/split into the Split
// sandbox twice, through the pipeline a command runs (flagsync.yaml's vendor: split
// makes the whole repository Split's, as `sync --sandbox` finds it): the first sync
// creates every flag, its dependency first, and converges; the second writes nothing.
func TestExampleRepository(t *testing.T) {
	fsys := os.DirFS(filepath.Join("..", ".."))
	const dir = "examples/split"
	survey, err := splitload.Survey(fsys, dir)
	if err != nil || !survey.Whole || survey.Kameleoon() || len(survey.SplitFiles) < 5 {
		t.Fatalf("survey: %+v %v; want a whole Split repository", survey, err)
	}
	desired, err := splitload.Load(fsys, dir)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	deps := 0
	for _, f := range desired.Flags {
		for _, d := range f.Environments {
			deps += len(d.Dependencies())
		}
	}
	if deps == 0 || len(desired.Flags) < 5 || len(desired.Settings.Environments) < 2 {
		t.Fatalf("the example should have several flags, environments and a dependency: %d flags, %d dependencies", len(desired.Flags), deps)
	}

	w := newE2E(t, splitsandbox.Options{}, nil)
	run := func(dryRun bool) *reconcile.Report {
		t.Helper()
		rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: rev15, FS: fsys, Dir: dir,
			Vendors: []reconcile.Vendor{split.Vendor(w.client)}, DryRun: dryRun, Calls: w.calls.Load})
		if err != nil {
			t.Fatalf("run (dry run %t): %v\n%s", dryRun, err, render(rep.Plan))
		}
		return rep
	}
	rep := run(true)
	if len(rep.Plan.Changes) == 0 || w.sb.Writes() != 0 || len(rep.Plan.Blocked) != 0 {
		t.Fatalf("plan: %d changes, %d writes, refused %v", len(rep.Plan.Changes), w.sb.Writes(), rep.Plan.Blocked)
	}
	var gate, dependent int
	for _, c := range rep.Plan.Changes {
		switch {
		case c.Key == "beta_gate" && c.Environment == "Production":
			gate = c.Order
		case c.Key == "new_checkout" && c.Environment == "Production":
			dependent = c.Order
		}
	}
	if gate == 0 || dependent < gate {
		t.Errorf("beta_gate's Production definition is change %d, new_checkout's %d", gate, dependent)
	}

	rep = run(false)
	if !rep.Converged || rep.Summary.Failed != 0 || rep.Summary.Applied != len(rep.Plan.Changes) {
		t.Fatalf("first sync: converged=%t summary=%+v\n%s", rep.Converged, rep.Summary, render(rep.Plan))
	}
	w.sb.ResetCalls()
	rep = run(false)
	if len(rep.Plan.Changes) != 0 || w.sb.Writes() != 0 || !rep.Converged || !strings.HasPrefix(rep.Plan.SummaryLine(), "No changes. Split matches") {
		t.Fatalf("second sync: %d changes, %d writes, converged %t: %s", len(rep.Plan.Changes), w.sb.Writes(), rep.Converged, rep.Plan.SummaryLine())
	}
}
