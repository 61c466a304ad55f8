package loadcache

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/logtest"
)

var testContext = Context{Vendor: "test", Schema: []byte(`{"type": "object"}`), Format: "f1"}

// value is what the tests keep under key: anyone can tell whether a value read back is
// the one written.
func value(key string) []byte { return []byte(strings.Repeat("value of "+key+";", 3)) }

// fill puts keys in a session of c and commits.
func fill(t *testing.T, c *Cache, keys ...string) Stats {
	t.Helper()
	s := c.Begin(testContext)
	for _, k := range keys {
		if _, ok := s.Get(k); !ok {
			s.Put(k, value(k))
		}
	}
	s.Commit()
	return s.Stats()
}

// check reads every key in a new session of a new Cache on dir: each is either missing
// or holds its own value. It returns how many were found.
func check(t *testing.T, dir string, keys ...string) int {
	t.Helper()
	s := Open(dir, Options{}).Begin(testContext)
	found := 0
	for _, k := range keys {
		v, ok := s.Get(k)
		if !ok {
			continue
		}
		found++
		if !bytes.Equal(v, value(k)) {
			t.Fatalf("key %s holds %q, not what was written", k, v)
		}
	}
	return found
}

func keys(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

func TestCacheKeepsEntries(t *testing.T) {
	dir := t.TempDir()
	c := Open(dir, Options{})
	ks := keys(100, "k")
	if st := fill(t, c, ks...); st.Misses != 100 || st.Written != 100 {
		t.Fatalf("first load: %+v", st)
	}
	if n := check(t, dir, ks...); n != 100 {
		t.Fatalf("found %d of 100 in a new process", n)
	}
	// The same Cache does not read its file again, and finds everything.
	if st := fill(t, c, ks...); st.Hits != 100 || st.Written != 0 || st.Segments != 1 {
		t.Errorf("second load: %+v", st)
	}
	// 1% changed: one new entry, one new file.
	if st := fill(t, c, append(ks[1:], "changed")...); st.Hits != 99 || st.Misses != 1 || st.Written != 1 {
		t.Errorf("changed load: %+v", st)
	}
	if !strings.HasPrefix(c.Dir(), dir) || filepath.Base(c.Dir()) != Folder {
		t.Errorf("Dir() = %s", c.Dir())
	}
}

func TestCacheContextSeparatesEntries(t *testing.T) {
	dir := t.TempDir()
	c := Open(dir, Options{})
	fill(t, c, "k")
	for name, ctx := range map[string]Context{
		"vendor":   {Vendor: "other", Schema: testContext.Schema, Format: testContext.Format},
		"schema":   {Vendor: testContext.Vendor, Schema: []byte(`{}`), Format: testContext.Format},
		"settings": {Vendor: testContext.Vendor, Schema: testContext.Schema, Settings: []byte("x"), Format: testContext.Format},
		"format":   {Vendor: testContext.Vendor, Schema: testContext.Schema, Format: "f2"},
	} {
		if _, ok := c.Begin(ctx).Get("k"); ok {
			t.Errorf("another %s reads the entry", name)
		}
	}
	// Another binary: what this one wrote is foreign to it.
	other := Open(dir, Options{})
	other.binary = "another build"
	if _, ok := other.Begin(testContext).Get("k"); ok {
		t.Error("another binary reads the entry")
	}
	if _, ok := Open(dir, Options{}).Begin(testContext).Get("k"); !ok {
		t.Error("the same binary does not")
	}
}

func TestNilCacheIsOff(t *testing.T) {
	var c *Cache
	s := c.Begin(testContext)
	s.Put("k", []byte("v"))
	s.Commit()
	if _, ok := s.Get("k"); ok || c.Dir() != "" || Open("", Options{}) != nil {
		t.Error("a nil cache kept something")
	}
}

// segmentFiles returns the namespace's files.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, Folder, "v1-*", "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDamagedFilesAreNeverTrusted damages the cache's file every way one byte or a cut
// can: a changed byte anywhere, each cut, and a file of another namespace moved in.
// Whatever is read back is exactly what was written, or missing; the next load
// rebuilds what was lost.
func TestDamagedFilesAreNeverTrusted(t *testing.T) {
	ks := keys(20, "k")
	setup := func(t *testing.T) (string, []byte, string) {
		dir := t.TempDir()
		fill(t, Open(dir, Options{}), ks...)
		files := segmentFiles(t, dir)
		if len(files) != 1 {
			t.Fatalf("%d files", len(files))
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return dir, data, files[0]
	}
	dir, data, file := setup(t)
	for i := range data {
		for _, x := range []byte{0x01, 0x80} {
			d := bytes.Clone(data)
			d[i] ^= x
			if err := os.WriteFile(file, d, 0o644); err != nil {
				t.Fatal(err)
			}
			check(t, dir, ks...)
		}
	}
	for n := range data {
		if err := os.WriteFile(file, data[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if found := check(t, dir, ks...); found == len(ks) {
			t.Fatalf("cut at %d of %d bytes: every entry still found", n, len(data))
		}
	}

	t.Run("rebuilt", func(t *testing.T) {
		dir, data, file := setup(t)
		d := bytes.Clone(data)
		d[len(d)/2] ^= 0xff
		if err := os.WriteFile(file, d, 0o644); err != nil {
			t.Fatal(err)
		}
		var log logtest.Buffer
		c := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
		st := fill(t, c, ks...)
		if st.Damaged != 1 || !st.Compacted || st.Misses == 0 || st.Written != len(ks) {
			t.Errorf("load over a damaged file: %+v", st)
		}
		if !strings.Contains(log.String(), "damaged") {
			t.Errorf("no warning: %s", log.String())
		}
		if n := check(t, dir, ks...); n != len(ks) {
			t.Errorf("after the rebuild %d of %d found", n, len(ks))
		}
		if files := segmentFiles(t, dir); len(files) != 1 {
			t.Errorf("damaged file kept: %v", files)
		}
	})

	t.Run("another namespace's file", func(t *testing.T) {
		dir, _, file := setup(t)
		other := Open(dir, Options{})
		ctx := testContext
		ctx.Settings = []byte("other settings")
		s := other.Begin(ctx)
		for _, k := range ks {
			s.Put(k, []byte("not this context's value"))
		}
		s.Commit()
		var foreign string
		for _, f := range segmentFiles(t, dir) {
			if filepath.Dir(f) != filepath.Dir(file) {
				foreign = f
			}
		}
		if err := os.Rename(foreign, file); err != nil {
			t.Fatal(err)
		}
		if n := check(t, dir, ks...); n != 0 {
			t.Errorf("%d entries read from another namespace's file", n)
		}
	})
}

// TestUnwritableFolder: a cache folder that cannot be created (under a regular file,
// which stops root too) leaves loads working, with one warning however many loads.
func TestUnwritableFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var log logtest.Buffer
	c := Open(filepath.Join(file, "cache"), Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	for range 3 {
		if st := fill(t, c, "a", "b"); st.Written != 0 || st.Hits != 0 {
			t.Errorf("stats %+v", st)
		}
	}
	if n := strings.Count(log.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, log.String())
	}
}

// TestReadOnlyFolder: a folder that can be read but not written (mode 0555; root is
// not stopped by it, so the test is skipped as root) is read, with one warning.
func TestReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only folders; TestUnwritableFolder covers the warning")
	}
	dir := t.TempDir()
	fill(t, Open(dir, Options{}), "a")
	ns := filepath.Dir(segmentFiles(t, dir)[0])
	if err := os.Chmod(ns, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ns, 0o755) })
	var log logtest.Buffer
	c := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	for range 3 {
		if st := fill(t, c, "a", "b"); st.Hits != 1 {
			t.Errorf("stats %+v", st)
		}
	}
	if n := strings.Count(log.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, log.String())
	}
}

func TestSizeBoundAndCompaction(t *testing.T) {
	dir := t.TempDir()
	const bound = 8 << 10
	c := Open(dir, Options{MaxBytes: bound})
	var last []string
	for round := range 30 {
		last = keys(20, fmt.Sprintf("r%02d-", round))
		st := fill(t, c, last...)
		if st.Written == 0 {
			t.Fatalf("round %d wrote nothing: %+v", round, st)
		}
		var size int64
		files := segmentFiles(t, dir)
		for _, f := range files {
			info, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			size += info.Size()
		}
		if len(files) > maxSegments || size > bound+int64(len(files))*200 {
			t.Fatalf("round %d: %d files, %d bytes, bound %d", round, len(files), size, bound)
		}
	}
	// The last load's entries are kept first.
	if n := check(t, dir, last...); n != len(last) {
		t.Errorf("%d of the last load's %d entries kept", n, len(last))
	}
}

func TestOldNamespacesAreTrimmed(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, Folder)
	old := time.Now().Add(-30 * 24 * time.Hour)
	mk := func(name string, mod time.Time) {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(root, name), mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	stale := "v1-" + strings.Repeat("a", 32)
	mk(stale, old)
	var recent []string
	for i := range 5 {
		name := fmt.Sprintf("v1-%032d", i)
		mk(name, time.Now().Add(-time.Duration(i)*time.Hour))
		recent = append(recent, name)
	}
	mk("keep-me", old)                     // not a namespace: never deleted
	mk(strings.Repeat("b", 40), old)       // a clone's name in a cache dir: never deleted
	mk("v0-"+strings.Repeat("c", 32), old) // another format's namespace, stale
	fill(t, Open(dir, Options{}), "k")
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(root, name)); return err == nil }
	for name, want := range map[string]bool{
		stale: false, recent[0]: true, recent[1]: true, recent[2]: true, recent[3]: false, recent[4]: false,
		"keep-me": true, strings.Repeat("b", 40): true, "v0-" + strings.Repeat("c", 32): false,
	} {
		if exists(name) != want {
			t.Errorf("%s exists: %v, want %v", name, !want, want)
		}
	}
}

func TestForgetDropsTheEntry(t *testing.T) {
	dir := t.TempDir()
	c := Open(dir, Options{})
	fill(t, c, "a", "b")
	s := c.Begin(testContext)
	if _, ok := s.Get("a"); !ok {
		t.Fatal("a missing")
	}
	s.Forget("a")
	s.Commit()
	if st := s.Stats(); !st.Compacted {
		t.Errorf("no rewrite after Forget: %+v", st)
	}
	if _, ok := Open(dir, Options{}).Begin(testContext).Get("a"); ok {
		t.Error("forgotten entry kept")
	}
}

// TestConcurrentWriters runs writers in two processes (this test binary run again) and
// in this one, on one folder, each committing many times so that their compactions
// overlap. Every entry any of them committed is found afterwards with its own value,
// and no temporary file is left behind.
func TestConcurrentWriters(t *testing.T) {
	if dir := os.Getenv("LOADCACHE_WRITER_DIR"); dir != "" {
		writer(t, dir, os.Getenv("LOADCACHE_WRITER_NAME"))
		return
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, name := range []string{"p1", "p2"} {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentWriters$", "-test.count=1")
			cmd.Env = append(os.Environ(), "LOADCACHE_WRITER_DIR="+dir, "LOADCACHE_WRITER_NAME="+name)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer %s: %v\n%s", name, err, out)
			}
		})
	}
	wg.Go(func() { writer(t, dir, "p0") })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var all []string
	for _, name := range []string{"p0", "p1", "p2"} {
		all = append(all, writerKeys(name)...)
	}
	if n := check(t, dir, all...); n != len(all) {
		t.Errorf("%d of %d entries found", n, len(all))
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, Folder, "*", ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

const writerRounds = 25

func writerKeys(name string) []string {
	var out []string
	for r := range writerRounds {
		out = append(out, name+"-"+strconv.Itoa(r), "shared-"+strconv.Itoa(r))
	}
	return out
}

func writer(t *testing.T, dir, name string) {
	c := Open(dir, Options{})
	ks := writerKeys(name)
	for r := range writerRounds {
		// Each round uses everything so far, so that compactions keep it all.
		fill(t, c, ks[:2*r+2]...)
	}
}

// TestCacheForgetsDeletedFiles: a long-running process keeps the files it read in
// memory; those another process deleted are forgotten at the next Begin.
func TestCacheForgetsDeletedFiles(t *testing.T) {
	dir := t.TempDir()
	c := Open(dir, Options{})
	fill(t, c, "a")
	if len(c.segments) != 0 {
		t.Fatalf("%d files remembered before any was read", len(c.segments))
	}
	fill(t, c, "a", "b") // reads the first file, writes a second
	if len(c.segments) != 1 {
		t.Fatalf("%d files remembered, want 1", len(c.segments))
	}
	for _, f := range segmentFiles(t, dir) {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if st := fill(t, c, "a"); st.Hits != 0 || len(c.segments) != 0 {
		t.Errorf("after the files were deleted: %+v, %d files remembered", st, len(c.segments))
	}
}

func TestBinaryVersion(t *testing.T) {
	v := BinaryVersion()
	// A test binary carries no VCS stamp: it is told by its Go build ID.
	if !strings.HasPrefix(v, "buildid ") && !strings.HasPrefix(v, "sha256 ") {
		t.Errorf("BinaryVersion() = %q", v)
	}
	if BinaryVersion() != v {
		t.Error("not stable")
	}
}
