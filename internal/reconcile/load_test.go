package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

func fakeFile(key string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("vendor: fake\nkey: " + key + "\nenabled: true\nvalue: v\n")}
}

// countingVendor counts the loads of the vendor it wraps.
type countingVendor struct {
	reconcile.Vendor
	loads atomic.Int64
}

func (v *countingVendor) Load(src reconcile.Source) (reconcile.Repo, error) {
	v.loads.Add(1)
	return v.Vendor.Load(src)
}

// TestUnclaimedFilesWithoutAFallback: with no vendor taking the files no vendor claims,
// each such file is a problem of the repository.
func TestUnclaimedFilesWithoutAFallback(t *testing.T) {
	fsys := fstest.MapFS{"flags/a.yaml": fakeFile("a"), "flags/b.yaml": {Data: []byte("key: b\n")}}
	_, err := reconcile.Load([]reconcile.Vendor{fake.Vendor(nil)}, reconcile.Source{FS: fsys, Dir: "flags"})
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) || len(invalid.Diagnostics) != 1 || invalid.Diagnostics[0].File != "flags/b.yaml" ||
		!strings.Contains(invalid.Diagnostics[0].Message, "no flag service claims this file") {
		t.Fatalf("err = %v, want flags/b.yaml unclaimed", err)
	}
}

// TestSettingsClaimTheWholeRepository: flagsync.yaml's vendor: gives every flag file to
// that vendor, whether or not the file names one.
func TestSettingsClaimTheWholeRepository(t *testing.T) {
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte("vendor: fake\n")}, "flags/a.yaml": fakeFile("a"),
		"flags/b.yaml": {Data: []byte("key: b\n")}}
	l, err := reconcile.Load([]reconcile.Vendor{fake.Vendor(nil)}, reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil || len(l.Parts) != 1 || len(l.Files()) != 2 {
		t.Fatalf("load: err=%v, %d flags", err, len(l.Files()))
	}
}

// TestTheConnectStepReusesTheLoad: a repository loaded by a vendor without a client is
// read and written through the connected vendor without loading it again.
func TestTheConnectStepReusesTheLoad(t *testing.T) {
	svc := fake.NewServer()
	files := &countingVendor{Vendor: fake.Vendor(nil)}
	connected := fake.Vendor(fake.NewClient(svc, api.NewBudgetWindows(api.Window{Period: time.Hour, Limit: 100}), nil))
	var seen int
	rep, err := reconcile.Run(context.Background(), reconcile.Input{
		Revision: "r", FS: fstest.MapFS{"flags/a.yaml": fakeFile("a"), "flags/b.yaml": fakeFile("b")}, Dir: "flags",
		Vendors: []reconcile.Vendor{files},
		Connect: func(_ context.Context, l *reconcile.Loaded) ([]reconcile.Vendor, error) {
			seen = len(l.Files())
			return []reconcile.Vendor{connected}, nil
		},
	})
	if err != nil || !rep.Converged || svc.Writes() != 2 || seen != 2 {
		t.Fatalf("run: err=%v converged=%t writes=%d, the connect step saw %d flags", err, rep.Converged, svc.Writes(), seen)
	}
	if n := files.loads.Load(); n != 1 {
		t.Errorf("the repository was loaded %d times, want once", n)
	}
}

// TestAFailedConnectionStopsTheRun: the connect step's error ends the run before any
// read.
func TestAFailedConnectionStopsTheRun(t *testing.T) {
	want := errors.New("no credentials")
	rep, err := reconcile.Run(context.Background(), reconcile.Input{
		FS: fstest.MapFS{"flags/a.yaml": fakeFile("a")}, Dir: "flags", Vendors: []reconcile.Vendor{fake.Vendor(nil)},
		Connect: func(context.Context, *reconcile.Loaded) ([]reconcile.Vendor, error) { return nil, want },
	})
	if !errors.Is(err, want) || rep == nil || len(rep.Plan.Changes) != 0 {
		t.Fatalf("err = %v, report %+v", err, rep)
	}
}
