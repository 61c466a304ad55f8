package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// noSource and noClient stand in where a test never syncs.
type noSource struct{}

func (noSource) Fetch(context.Context) (*gitsource.Snapshot, error) {
	return nil, errors.New("no source")
}

func (noSource) ChangedFiles(context.Context, string, string) ([]string, error) {
	return nil, gitsource.ErrHistoryUnavailable
}

type noClient struct{}

func (noClient) ListFlags(context.Context, string) ([]kmodel.Flag, error) {
	return nil, errors.New("no client")
}

func (noClient) GetFlag(context.Context, string, string) (kmodel.Flag, error) {
	return kmodel.Flag{}, errors.New("no client")
}

func (noClient) Do(context.Context, api.Request) (json.RawMessage, error) {
	return nil, errors.New("no client")
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}

// TestNarrow maps changed files to flags on the old revision's index.
func TestNarrow(t *testing.T) {
	base := testRepo()
	base["flags/sub/gamma.yml"] = flagYAML("gamma", "Gamma", false)
	load := func(fsys fs.FS) (*reconcile.Loaded, error) {
		return reconcile.Load([]reconcile.Vendor{kameleoon.Vendor(noClient{})}, reconcile.Source{FS: fsys, Dir: "flags"})
	}
	loaded, err := load(mapFS(base))
	if err != nil {
		t.Fatal(err)
	}
	ix := newFileIndex("r1", loaded.Files())
	ref := func(k string) string { return testSite + "/" + k }

	tests := []struct {
		name    string
		edit    map[string]string // "" deletes
		changed []string
		only    []string // want these flags (nil: none)
		full    string   // want a full sync, the reason containing this
		invalid bool
	}{
		{name: "one flag file", edit: map[string]string{"flags/alpha.yaml": flagYAML("alpha", "Alpha", true)},
			changed: []string{"flags/alpha.yaml"}, only: []string{ref("alpha")}},
		{name: "nested .yml file and an unrelated file", edit: map[string]string{"flags/sub/gamma.yml": flagYAML("gamma", "G", true), "README.md": "new"},
			changed: []string{"README.md", "flags/sub/gamma.yml"}, only: []string{ref("gamma")}},
		{name: "new flag file", edit: map[string]string{"flags/delta.yaml": flagYAML("delta", "Delta", true)},
			changed: []string{"flags/delta.yaml"}, only: []string{ref("delta")}},
		{name: "files the loader does not read", edit: map[string]string{"flags/.github/x.yaml": "x: 1", "flags/notes.txt": "hi", "other/a.yaml": "x"},
			changed: []string{"flags/.github/x.yaml", "flags/notes.txt", "other/a.yaml"}},
		{name: "settings", edit: map[string]string{"flags/flagsync.yaml": settingsYAML + "prune: true\n"},
			changed: []string{"flags/flagsync.yaml"}, full: "settings file"},
		{name: "misplaced settings", edit: map[string]string{"flags/sub/flagsync.yml": settingsYAML},
			changed: []string{"flags/sub/flagsync.yml"}, full: "settings file"},
		{name: "deleted flag file", edit: map[string]string{"flags/beta.yaml": ""},
			changed: []string{"flags/beta.yaml"}, full: "deleted"},
		{name: "feature key changed", edit: map[string]string{"flags/beta.yaml": flagYAML("beta2", "Beta", false)},
			changed: []string{"flags/beta.yaml"}, full: "now defines"},
		{name: "duplicate of an unchanged file", edit: map[string]string{"flags/copy.yaml": flagYAML("alpha", "Alpha", false)},
			changed: []string{"flags/copy.yaml"}, full: "defined in"},
		{name: "invalid changed file", edit: map[string]string{"flags/alpha.yaml": "featureKey: Alpha!\n"},
			changed: []string{"flags/alpha.yaml"}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			for k, v := range tt.edit {
				if v == "" {
					delete(files, k)
				} else {
					files[k] = v
				}
			}
			n, err := ix.narrow(mapFS(files), "flags", "r2", tt.changed, load)
			var inv *diag.InvalidError
			if tt.invalid {
				if !errors.As(err, &inv) || inv.Diagnostics[0].File != "flags/alpha.yaml" {
					t.Fatalf("err = %v, want the invalid file's diagnostics", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.full != "" {
				if !strings.Contains(n.full, tt.full) {
					t.Fatalf("full = %q, want a reason containing %q", n.full, tt.full)
				}
				return
			}
			if n.full != "" {
				t.Fatalf("full sync asked: %s", n.full)
			}
			var got []string
			for _, r := range n.only {
				got = append(got, r.String())
			}
			if !slices.Equal(got, tt.only) {
				t.Errorf("only = %q, want %q", got, tt.only)
			}
			// The narrowed files load to exactly those flags.
			var sub []reconcile.FlagFile
			if n.loaded != nil {
				sub = n.loaded.Files()
			}
			if len(sub) != len(tt.only) {
				t.Errorf("narrowed files load %d flags, want %d", len(sub), len(tt.only))
			}
			if n.next.rev != "r2" || len(n.next.files) < len(ix.files) {
				t.Errorf("next index rev=%s files=%d", n.next.rev, len(n.next.files))
			}
			if len(ix.files) != 3 {
				t.Errorf("narrow changed the old index: %d files", len(ix.files))
			}
		})
	}
}
