package unleash_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/flagsync/flagsync/internal/export"
	unleashexport "github.com/flagsync/flagsync/internal/unleash/export"
	unleashload "github.com/flagsync/flagsync/internal/unleash/load"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
)

// exportRoundTrip exports the project w synced (with what was changed in Unleash's UI
// besides), writes the files, loads them from disk as a sync would and plans them against
// a fresh read: nothing to change. A second export gives the same bytes.
func exportRoundTrip(t *testing.T, w *world) {
	ctx := context.Background()
	w.calls.reset()
	live, err := unleashexport.Read(ctx, w.client, []string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export read: %d calls", len(w.calls.reset()))
	e, err := unleashexport.Build(live, export.Options{Schema: "https://flagsync.example/schema"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Flags != 5 || len(e.Files) != 6 {
		t.Errorf("exported %d flags in %d files, want 5 in 6", e.Flags, len(e.Files))
	}
	check, err := unleashexport.Verify(e, live)
	if err != nil || !check.OK() {
		t.Fatalf("verify: err=%v diagnostics=%v plan:\n%s", err, check.Diagnostics, render(check.Plan))
	}
	dir := t.TempDir()
	if _, err := export.Write(dir, e.Files, false); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Write(dir, e.Files, false); err == nil {
		t.Error("a second Write without overwrite succeeded")
	}
	desired, err := unleashload.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := unleashexport.Read(ctx, w.client, []string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := unleashplan.Compute(desired, fresh, unleashplan.OptionsFor(desired))
	if err != nil || len(p.Changes) != 0 || len(p.Unmanaged) != 0 {
		t.Errorf("round trip: err=%v\n%s", err, render(p))
	}
	again, err := unleashexport.Build(fresh, export.Options{Schema: "https://flagsync.example/schema"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.Files {
		if e.Files[i].Path != again.Files[i].Path || !bytes.Equal(e.Files[i].Data, again.Files[i].Data) {
			t.Errorf("a second export differs at %s", e.Files[i].Path)
		}
	}
	for _, f := range e.Files {
		if f.Path == "dark-mode.yaml" || f.Path == "made-in-the-ui.yaml" {
			t.Logf("%s:\n%s", f.Path, f.Data)
		}
	}
}
