package kload

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
)

// FuzzLoad feeds arbitrary bytes to the loader as one flag file. Whatever the input,
// Load must not panic, must report problems only as diagnostics placed inside that
// file, and must return exactly one flag when it accepts the file. The corpus in
// testdata/fuzz/FuzzLoad holds every invalid fixture and each YAML trap.
func FuzzLoad(f *testing.F) {
	err := filepath.WalkDir(filepath.Join("..", "..", "..", "examples", "flags"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == flagrepo.SettingsFile {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			f.Add(data)
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"flags/flagsync.yaml": {Data: []byte(standardSettings)},
			"flags/f.yaml":        {Data: data},
		}
		d, err := Load(fsys, "flags")
		if err == nil {
			if len(d.Flags) != 1 {
				t.Fatalf("valid file gave %d flags", len(d.Flags))
			}
			fl := d.Flags[0]
			if fl.Source.File != "flags/f.yaml" || fl.Source.Line < 1 || len(fl.SiteCode) != 10 || fl.FeatureKey == "" {
				t.Fatalf("flag = %+v", fl)
			}
			return
		}
		var inv *diag.InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("Load error is not an *diag.InvalidError: %v", err)
		}
		if len(inv.Diagnostics) == 0 || inv.Files != 1 {
			t.Fatalf("diag.InvalidError = %+v", inv)
		}
		lines := yamlLines(data)
		for _, d := range inv.Diagnostics {
			if d.File != "flags/f.yaml" || d.Line < 1 || d.Column < 1 || d.Line > lines+1 || d.Message == "" {
				t.Fatalf("bad diagnostic %+v for %d lines", d, lines)
			}
			if !utf8.ValidString(d.Field) && utf8.ValidString(string(data)) {
				t.Fatalf("field path is not UTF-8: %q", d.Field)
			}
		}
	})
}

// yamlLines counts lines as YAML does: \r\n, \r, \n, NEL, LS and PS each end one.
func yamlLines(data []byte) int {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range text {
		switch r {
		case '\r', '\n', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}
