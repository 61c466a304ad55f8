package kload

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/loadcache"
)

// loadBoth loads fsys with the cache and without, checks that both give the same result,
// and returns it with the cached load's stats.
func loadBoth(t *testing.T, c *loadcache.Cache, fsys fs.FS, dir string) (any, Stats) {
	t.Helper()
	var st Stats
	got, err := LoadWith(fsys, dir, Options{Cache: c, Stats: &st})
	want, wantErr := Load(fsys, dir)
	var g, w any = got, want
	if err != nil || wantErr != nil {
		g, w = fmt.Sprint(err), fmt.Sprint(wantErr)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("with the cache:\n%v\nwithout:\n%v", g, w)
	}
	return g, st
}

func TestCacheWarmAndChangedLoads(t *testing.T) {
	c := loadcache.Open(t.TempDir(), loadcache.Options{})
	fsys := benchRepo(300)
	if _, st := loadBoth(t, c, fsys, "flags"); st.Cached != 0 || st.Fast != 300 || st.Cache.Written != 300 {
		t.Fatalf("cold: %+v", st)
	}
	if _, st := loadBoth(t, c, fsys, "flags"); st.Cached != 300 || st.Fast+st.Schema != 0 {
		t.Fatalf("warm: %+v", st)
	}
	// 1% changed: 3 files parsed, the rest from the cache; a new process too.
	for _, i := range []int{0, 100, 200} {
		name := fmt.Sprintf("flags/team_%02d/flag_%05d.yaml", i%100, i)
		fsys[name] = &fstest.MapFile{Data: []byte(strings.Replace(string(fsys[name].Data), "exposition: 50", "exposition: 51", 1))}
	}
	if _, st := loadBoth(t, c, fsys, "flags"); st.Cached != 297 || st.Fast != 3 {
		t.Fatalf("1%% changed: %+v", st)
	}
	other := loadcache.Open(filepath.Dir(c.Dir()), loadcache.Options{})
	if _, st := loadBoth(t, other, fsys, "flags"); st.Cached != 300 {
		t.Fatalf("new process: %+v", st)
	}
}

// TestCacheKeepsNoPathOrSetting: entries are the files' content alone, so a renamed
// file, a copy, a changed flagsync.yaml and invalid files give what a load without the
// cache gives.
func TestCacheKeepsNoPathOrSetting(t *testing.T) {
	c := loadcache.Open(t.TempDir(), loadcache.Options{})
	flag := "featureKey: a\nname: A\nvariations: [{key: on}]\nenvironments:\n  prod: {defaultVariationKey: on}\n"
	bad := "featureKey: b\nname: 5\nvariations: [{key: on}]\n"
	fsys := fstest.MapFS{
		"flagsync.yaml": {Data: []byte("siteCode: pzllysfw2f\n")},
		"a.yaml":        {Data: []byte(flag)},
		"b.yaml":        {Data: []byte(bad)},
	}
	loadBoth(t, c, fsys, ".")
	if _, st := loadBoth(t, c, fsys, "."); st.Cached != 2 {
		t.Fatalf("warm: %+v", st)
	}
	// Renamed, and copied: the same entries, placed in the new files.
	delete(fsys, "a.yaml")
	fsys["x/renamed.yaml"] = &fstest.MapFile{Data: []byte(flag)}
	fsys["x/copy.yaml"] = &fstest.MapFile{Data: []byte(flag)}
	got, st := loadBoth(t, c, fsys, ".")
	if st.Cached != 3 || !strings.Contains(fmt.Sprint(got), "x/copy.yaml") || !strings.Contains(fmt.Sprint(got), "is also defined in x/renamed.yaml") {
		t.Fatalf("renamed and copied: %+v\n%v", st, got)
	}
	// flagsync.yaml's environments and default siteCode apply on every load.
	delete(fsys, "x/copy.yaml")
	delete(fsys, "b.yaml")
	fsys["flagsync.yaml"] = &fstest.MapFile{Data: []byte("environments: [production]\n")}
	got, st = loadBoth(t, c, fsys, ".")
	if st.Cached != 1 || !strings.Contains(fmt.Sprint(got), `unknown environment "prod"`) || !strings.Contains(fmt.Sprint(got), `missing required field "siteCode"`) {
		t.Fatalf("settings changed: %+v\n%v", st, got)
	}
}

// TestDamagedCacheLoadsTheSame damages the cache's file in many places: every load
// still gives what a load without the cache gives.
func TestDamagedCacheLoadsTheSame(t *testing.T) {
	dir := t.TempDir()
	fsys := benchRepo(20)
	loadBoth(t, loadcache.Open(dir, loadcache.Options{}), fsys, "flags")
	files, _ := filepath.Glob(filepath.Join(dir, loadcache.Folder, "*", "*.seg"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += len(data) / 97 {
		d := append([]byte{}, data...)
		d[i] ^= 0x5a
		if err := os.WriteFile(files[0], d, 0o644); err != nil {
			t.Fatal(err)
		}
		loadBoth(t, loadcache.Open(dir, loadcache.Options{}), fsys, "flags")
	}
}

// blobFS is a MapFS that knows its files' Git blob ids, as a Git snapshot does, and
// counts the flag files read.
type blobFS struct {
	fstest.MapFS
	reads atomic.Int64
	lie   map[string]string // blob ids to give instead of the real ones
}

func (b *blobFS) BlobID(name string) (string, error) {
	if id, ok := b.lie[name]; ok {
		return id, nil
	}
	f, ok := b.MapFS[name]
	if !ok {
		return "", fs.ErrNotExist
	}
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(f.Data))
	h.Write(f.Data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *blobFS) ReadFile(name string) ([]byte, error) {
	if strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, "flagsync.yaml") {
		b.reads.Add(1)
	}
	return b.MapFS.ReadFile(name)
}

func (b *blobFS) Open(name string) (fs.File, error) { return b.MapFS.Open(name) }

func TestCacheByBlobIDReadsNoFile(t *testing.T) {
	c := loadcache.Open(t.TempDir(), loadcache.Options{})
	fsys := &blobFS{MapFS: benchRepo(50)}
	loadBoth(t, c, fsys, "flags")
	fsys.reads.Store(0)
	if _, st := loadBoth(t, c, fsys, "flags"); st.Cached != 50 {
		t.Fatalf("warm: %+v", st)
	}
	// loadBoth's load without the cache reads each file once; the cached load none.
	if n := fsys.reads.Load(); n != 50 {
		t.Errorf("%d flag files read, want 50 (the uncached load's)", n)
	}
}

// TestUndecodableEntryIsReparsed: an entry whose checksum holds but which does not
// decode (only a bug or a deliberate edit makes one) is dropped, and the file parsed.
func TestUndecodableEntryIsReparsed(t *testing.T) {
	c := loadcache.Open(t.TempDir(), loadcache.Options{})
	fsys := &blobFS{MapFS: benchRepo(5)}
	const name = "flags/team_03/flag_00003.yaml"
	id, _ := fsys.BlobID(name)
	codec, err := entryCodec()
	if err != nil {
		t.Fatal(err)
	}
	s := c.Begin(cacheContext(codec))
	s.Put("git-blob:"+id, []byte("garbage"))
	s.Put(loadcache.DataKey(fsys.MapFS[name].Data), []byte("garbage"))
	s.Commit()
	if _, st := loadBoth(t, c, fsys, "flags"); st.Cached != 0 || st.Fast != 5 {
		t.Fatalf("stats %+v", st)
	}
	if _, st := loadBoth(t, c, fsys, "flags"); st.Cached != 5 {
		t.Fatalf("after the rebuild: %+v", st)
	}
}

func TestInvalidRepositoryFromTheCache(t *testing.T) {
	c := loadcache.Open(t.TempDir(), loadcache.Options{})
	for _, name := range []string{"rollback_condition.yaml", "yaml_anchor_alias.yaml", "ignore_paths.yaml", "unknown_environment.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "invalid", name))
		if err != nil {
			t.Fatal(err)
		}
		fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(standardSettings)}, "flags/" + name: {Data: data}}
		loadBoth(t, c, fsys, "flags")
		var st Stats
		_, err = LoadWith(fsys, "flags", Options{Cache: c, Stats: &st})
		var inv *diag.InvalidError
		if !errors.As(err, &inv) || st.Cached != 1 {
			t.Errorf("%s: %v, %+v", name, err, st)
		}
	}
}
