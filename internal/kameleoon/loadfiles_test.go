package kameleoon_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/kameleoon"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// snapshotFS is a MapFS that knows its files' Git blob ids, as a Git snapshot does, and
// counts the flag files read.
type snapshotFS struct {
	fstest.MapFS
	reads atomic.Int64
}

func (s *snapshotFS) BlobID(name string) (string, error) {
	f, ok := s.MapFS[name]
	if !ok {
		return "", fs.ErrNotExist
	}
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(f.Data))
	h.Write(f.Data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s *snapshotFS) ReadFile(name string) ([]byte, error) {
	s.count(name)
	return s.MapFS.ReadFile(name)
}

func (s *snapshotFS) Open(name string) (fs.File, error) {
	s.count(name)
	return s.MapFS.Open(name)
}

func (s *snapshotFS) count(name string) {
	if strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, "flagsync.yaml") {
		s.reads.Add(1)
	}
}

// claimingFake is the fake service loading only the file it claims, as a service beside
// Kameleoon (the fallback) does.
type claimingFake struct{ reconcile.Vendor }

const fakeFile = "flags/fake.yaml"

// Claim takes the one file, without reading any.
func (claimingFake) Claim(reconcile.Source) ([]string, bool, error) {
	return []string{fakeFile}, false, nil
}

func (v claimingFake) Load(src reconcile.Source) (reconcile.Repo, error) {
	data, err := fs.ReadFile(src.FS, fakeFile)
	if err != nil {
		return nil, err
	}
	src.FS = fstest.MapFS{fakeFile: {Data: data}}
	return v.Vendor.Load(src)
}

// TestLoadThroughTheValidationCache: the load step gives Kameleoon's loader the cache,
// and Kameleoon's view of a snapshot (another service took one of its files) keeps the
// blob ids: a second load of the unchanged repository parses no file and reads none, and
// says so in the debug log.
func TestLoadThroughTheValidationCache(t *testing.T) {
	fsys := &snapshotFS{MapFS: fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("siteCode: pzllysfw2f\nenvironments: [production]\n")},
		fakeFile:              {Data: []byte("vendor: fake\nkey: f\nenabled: true\nvalue: v\n")},
	}}
	for i := range 3 {
		fsys.MapFS[fmt.Sprintf("flags/flag_%d.yaml", i)] = &fstest.MapFile{Data: fmt.Appendf(nil,
			"featureKey: flag_%d\nname: Flag %d\nvariations: [{key: \"off\"}, {key: \"on\"}]\nenvironments:\n  production: {defaultVariationKey: \"off\"}\n", i, i)}
	}
	cache := loadcache.Open(t.TempDir(), loadcache.Options{})
	vendors := []reconcile.Vendor{claimingFake{fake.Vendor(nil)}, kameleoon.Vendor(nil)}
	load := func() string {
		t.Helper()
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		l, err := reconcile.Load(vendors, reconcile.Source{FS: fsys, Dir: "flags", Logger: logger, Cache: cache})
		if err != nil || len(l.Parts) != 2 || len(l.Files()) != 4 {
			t.Fatalf("load: %v, %+v", err, l)
		}
		return logs.String()
	}
	if logs := load(); !strings.Contains(logs, `msg="Kameleoon flag files loaded" files=3 cached=0 parsed=3`) {
		t.Fatalf("first load:\n%s", logs)
	}
	fsys.reads.Store(0)
	if logs := load(); !strings.Contains(logs, `msg="Kameleoon flag files loaded" files=3 cached=3 parsed=0`) {
		t.Fatalf("second load:\n%s", logs)
	}
	// The fake service's loader reads its file; Kameleoon's read none.
	if n := fsys.reads.Load(); n != 1 {
		t.Errorf("%d flag files read by the second load, want 1 (the fake service's)", n)
	}
}
