package split_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
)

const checkout = `name: new_checkout
description: Redesigned checkout
tags: [checkout]
environments:
  Staging:
    treatments:
      - {name: "on", configurations: '{"color": "green"}'}
      - name: "off"
    defaultTreatment: "on"
  Production:
    treatments:
      - name: "on"
        keys: [qa-1, qa-2]
      - name: "off"
    defaultTreatment: "off"
    trafficAllocation: 40
    rules:
      - condition:
          matchers:
            - {type: IN_SEGMENT, string: employees}
        buckets:
          - {treatment: "on", size: 100}
    defaultRule:
      - {treatment: "on", size: 10}
      - {treatment: "off", size: 90}
`

const darkMode = `name: dark_mode
environments:
  Production:
    treatments: [{name: dark}, {name: light}]
    defaultTreatment: light
`

func syncRepo() fstest.MapFS {
	return fstest.MapFS{
		"flags/flagsync.yaml":      {Data: []byte(settings)},
		"flags/new_checkout.yaml":  {Data: []byte(checkout)},
		"flags/ui/dark_mode.yaml":  {Data: []byte(darkMode)},
		"flags/README.md":          {Data: []byte("not a flag")},
		"flags/.github/ci.yaml":    {Data: []byte("ignored: true")},
		"other/not-the-flags.yaml": {Data: []byte("ignored: true")},
	}
}

func TestSyncEndToEnd(t *testing.T) {
	w := newWorld(t)
	fsys := syncRepo()

	// First sync: two flags and three definitions created, confirmed with one read.
	rep, err := w.run(t, fsys, false)
	if err != nil {
		t.Fatal(err)
	}
	if w.sb.Writes() != 5 || rep.Summary.Applied != 5 || !rep.Verified || !rep.Converged {
		t.Fatalf("first sync: writes=%d summary=%+v verified=%t converged=%t", w.sb.Writes(), rep.Summary, rep.Verified, rep.Converged)
	}
	var order []string
	for _, c := range rep.Plan.Changes {
		order = append(order, c.Request.Method+" "+c.Key+" "+c.Environment)
	}
	want := "POST dark_mode |POST dark_mode Production|POST new_checkout |POST new_checkout Staging|POST new_checkout Production"
	if got := strings.Join(order, "|"); got != want {
		t.Errorf("order = %s\nwant %s", got, want)
	}
	if rep.Plan.Service != splitplan.Service || !strings.Contains(rep.Plan.SummaryLine(), "5 to create") {
		t.Errorf("plan service %q, summary %q", rep.Plan.Service, rep.Plan.SummaryLine())
	}

	// Second sync: no write, and the reads are one list of flags and one per environment.
	w.sb.ResetCalls()
	calls := w.calls.Load()
	rep, err = w.run(t, fsys, false)
	if err != nil || len(rep.Plan.Changes) != 0 || w.sb.Writes() != 0 || !rep.Converged {
		t.Fatalf("second sync: err=%v changes=%d writes=%d", err, len(rep.Plan.Changes), w.sb.Writes())
	}
	if n := w.calls.Load() - calls; n != 3 {
		t.Errorf("second sync made %d calls, want 3 (flags, Staging, Production)", n)
	}
	if !strings.HasPrefix(rep.Plan.SummaryLine(), "No changes. Split matches revision 4f1c2a9") {
		t.Errorf("summary = %q", rep.Plan.SummaryLine())
	}

	// One edit: exactly one PATCH.
	edited := strings.Replace(checkout, "trafficAllocation: 40", "trafficAllocation: 60", 1)
	fsys["flags/new_checkout.yaml"] = &fstest.MapFile{Data: []byte(edited)}
	w.sb.ResetCalls()
	rep, err = w.run(t, fsys, false)
	if err != nil || w.sb.Writes() != 1 || !rep.Converged {
		t.Fatalf("edit: err=%v writes=%d converged=%t", err, w.sb.Writes(), rep.Converged)
	}
	if body := string(rep.Plan.Changes[0].Request.Body); body != `[{"op":"replace","path":"/trafficAllocation","value":60}]` {
		t.Errorf("edit patch = %s", body)
	}

	// A dry run of another edit sends nothing.
	fsys["flags/new_checkout.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(edited, "description: Redesigned checkout", "description: New", 1))}
	w.sb.ResetCalls()
	rep, err = w.run(t, fsys, true)
	if err != nil || len(rep.Plan.Changes) != 1 || w.sb.Writes() != 0 {
		t.Fatalf("dry run: err=%v changes=%d writes=%d\n%s", err, len(rep.Plan.Changes), w.sb.Writes(), render(rep.Plan))
	}
	if c := rep.Plan.Changes[0]; c.Environment != "" || string(c.Request.Body) != `[{"op":"replace","path":"/description","value":"New"}]` {
		t.Errorf("flag patch = %s %s", c.Request.Path, c.Request.Body)
	}

	// An invalid file: every problem reported, nothing called at all.
	fsys["flags/ui/dark_mode.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(darkMode, "defaultTreatment: light", "defaultTreatment: lite", 1))}
	w.sb.ResetCalls()
	rep, err = w.run(t, fsys, false)
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) || len(w.sb.Calls()) != 0 {
		t.Fatalf("invalid file: err=%v calls=%d", err, len(w.sb.Calls()))
	}
	if got := invalid.Diagnostics[0].String(); got != `flags/ui/dark_mode.yaml:5:23: environments.Production.defaultTreatment: unknown treatment "lite"; the treatments are dark, light` {
		t.Errorf("diagnostic = %s", got)
	}
	if len(rep.Diagnostics) != 1 {
		t.Errorf("report has %d diagnostics", len(rep.Diagnostics))
	}
}

func TestPartialRunReadsOnlyTheNamedFlag(t *testing.T) {
	w := newWorld(t)
	fsys := syncRepo()
	if _, err := w.run(t, fsys, false); err != nil {
		t.Fatal(err)
	}
	fsys["flags/ui/dark_mode.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(darkMode, "defaultTreatment: light", "defaultTreatment: dark", 1))}
	fsys["flags/new_checkout.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(checkout, "trafficAllocation: 40", "trafficAllocation: 60", 1))}
	w.sb.ResetCalls()
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r", FS: fsys, Dir: "flags",
		Vendors: []reconcile.Vendor{split.Vendor(w.client)}, Only: []plan.Address{{Service: "Split", Scope: ws, Key: "dark_mode"}}})
	if err != nil || !rep.Converged || rep.Summary.Applied != 1 {
		t.Fatalf("partial: err=%v converged=%t summary=%+v", err, rep.Converged, rep.Summary)
	}
	var got []string
	for _, c := range w.sb.Calls() {
		got = append(got, c.Method+" "+strings.TrimPrefix(c.Path, "/internal/api/v2/splits/ws/"+ws))
	}
	want := "GET /dark_mode|GET /dark_mode/environments/Production|PATCH /dark_mode/environments/Production|GET /dark_mode|GET /dark_mode/environments/Production"
	if strings.Join(got, "|") != want {
		t.Errorf("calls:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

func TestPruneKillsNeverDeletes(t *testing.T) {
	w := newWorld(t)
	fsys := syncRepo()
	if _, err := w.run(t, fsys, false); err != nil {
		t.Fatal(err)
	}
	// A flag created outside flagsync is unmanaged and never touched.
	if err := w.sb.Seed(splitmodel.Flag{Workspace: ws, Name: "handmade", TrafficType: "user", Environments: map[string]splitmodel.Definition{
		"Production": {Treatments: []splitmodel.Treatment{{Name: "on"}, {Name: "off"}}, DefaultTreatment: "off"}}}); err != nil {
		t.Fatal(err)
	}
	delete(fsys, "flags/ui/dark_mode.yaml")
	rep, err := w.run(t, fsys, true)
	if err != nil || len(rep.Plan.Changes) != 0 || len(rep.Plan.Unmanaged) != 2 {
		t.Fatalf("without prune: err=%v changes=%d unmanaged=%v", err, len(rep.Plan.Changes), rep.Plan.Unmanaged)
	}
	fsys["flags/flagsync.yaml"] = &fstest.MapFile{Data: []byte(settings + "prune: true\n")}
	w.sb.ResetCalls()
	rep, err = w.run(t, fsys, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan.Changes) != 1 || rep.Plan.Changes[0].Action != plan.ActionArchive || rep.Plan.Changes[0].Key != "dark_mode" ||
		string(rep.Plan.Changes[0].Request.Body) != `[{"op":"replace","path":"/killed","value":true}]` {
		t.Fatalf("prune plan:\n%s", render(rep.Plan))
	}
	for _, c := range w.sb.Calls() {
		if c.Method == http.MethodDelete {
			t.Errorf("prune sent %s %s", c.Method, c.Path)
		}
	}
	// Killed everywhere and gone from Git, the managed flag is retired: no change, not listed.
	rep, err = w.run(t, fsys, true)
	if err != nil || len(rep.Plan.Changes) != 0 || len(rep.Plan.Unmanaged) != 1 || rep.Plan.Unmanaged[0].Key != "handmade" {
		t.Errorf("after prune: err=%v changes=%d unmanaged=%v", err, len(rep.Plan.Changes), rep.Plan.Unmanaged)
	}
}

func TestGuards(t *testing.T) {
	w := newWorld(t)
	fsys := syncRepo()
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r", FS: fsys, Dir: "flags",
		Vendors: []reconcile.Vendor{split.Vendor(w.client)}, MaxChanges: 4})
	var tooMany *reconcile.TooManyChangesError
	if !errors.As(err, &tooMany) || w.sb.Writes() != 0 || len(rep.Plan.Changes) != 5 {
		t.Fatalf("max-changes: err=%v writes=%d", err, w.sb.Writes())
	}
	if _, err := w.run(t, fsys, false); err != nil {
		t.Fatal(err)
	}
	fsys["flags/ui/dark_mode.yaml"] = &fstest.MapFile{Data: []byte(darkMode + "trafficType: account\n")}
	w.sb.ResetCalls()
	_, err = w.run(t, fsys, false)
	var tt *splitplan.TrafficTypeError
	if !errors.As(err, &tt) || w.sb.Writes() != 0 {
		t.Fatalf("traffic type change: err=%v writes=%d", err, w.sb.Writes())
	}
}
