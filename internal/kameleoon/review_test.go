package kameleoon

import (
	"context"
	"slices"
	"strings"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// These tests come from an independent review of the sync guards.

// TestRunPartialNeverPrunes: a partial run archives nothing, even with prune on in
// flagsync.yaml and on the command line, and even when a named flag is owned by
// flagsync and gone from Git.
func TestRunPartialNeverPrunes(t *testing.T) {
	fsys := repo()
	fsys["flags/flagsync.yaml"].Data = []byte("siteCode: " + siteA + "\nenvironments: [development, production]\nprune: true\n")
	live := liveOf(t, fsys)
	live[0].Name += " (edited in the UI)"
	gone := kmodel.Flag{ID: 9, SiteCode: siteA, FeatureKey: "gone", Name: "Gone", Tags: []string{kmodel.OwnershipTag}}
	live = append(live, gone)
	c := &fakeClient{live: live}
	only := []plan.Address{kplan.AddressOf(live[0].Ref(), ""), kplan.AddressOf(gone.Ref(), "")}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, Only: only, Prune: true, AllowMassArchive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range c.writes() {
		if strings.Contains(w, "/gone") {
			t.Errorf("a partial run wrote to a flag gone from Git: %s", w)
		}
	}
	if got, want := c.writes(), []string{"PATCH " + kclient.FlagPath(siteA, live[0].FeatureKey)}; !slices.Equal(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
	if s := rep.Plan.Summary(); s.Archive != 0 || s.Blocked != 0 {
		t.Errorf("summary %+v, want no archive", s)
	}

	// The same repository in a full run does archive it: the test above can fail.
	c = &fakeClient{live: live}
	if _, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, AllowMassArchive: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.writes(), "PATCH "+kclient.FlagPath(siteA, "gone")) {
		t.Errorf("full run with prune: true did not archive the owned flag: %q", c.writes())
	}
}

// TestRunMaxChangesAtTheLimit: a plan of exactly --max-changes changes is applied.
func TestRunMaxChangesAtTheLimit(t *testing.T) {
	c := &fakeClient{} // nothing exists: three creates
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: repo(), Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, MaxChanges: 3, NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan.Changes) != 3 || rep.Summary.Applied != 3 || len(c.writes()) != 3 {
		t.Errorf("plan %d changes, %d applied, writes %q; want all 3 applied", len(rep.Plan.Changes), rep.Summary.Applied, c.writes())
	}
}
