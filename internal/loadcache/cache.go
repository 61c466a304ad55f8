package loadcache

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Folder is the folder of the cache directory that Open keeps the validation cache in,
// beside the Git clones.
const Folder = "validation"

// DefaultMaxBytes bounds the entries kept for one Context when Options.MaxBytes is 0:
// about ten repositories of 10,000 flags.
const DefaultMaxBytes = 64 << 20

// Options tune a Cache.
type Options struct {
	// MaxBytes bounds what is kept for one Context (one vendor, schema, settings and
	// binary); the entries a load used are kept first. 0 means DefaultMaxBytes.
	MaxBytes int64
	// Logger receives the cache's warnings: one when the folder cannot be written (the
	// loads go on without the cache), and one per damaged file found (it is dropped).
	Logger *slog.Logger
}

// Cache is a validation cache in a folder. Its methods are safe for concurrent use, by
// goroutines and by processes sharing the folder: files are written whole under a
// temporary name and renamed into place, and never changed after; what cannot be read,
// does not check out or was written by another binary is ignored and rebuilt. A nil
// *Cache is off.
type Cache struct {
	dir      string
	maxBytes int64
	log      *slog.Logger
	binary   string // the binary's version, part of every namespace

	mu       sync.Mutex
	segments map[string]*segment // segments read before, by path; a segment never changes once written
	warned   bool                // the one warning about the folder was logged
	readOnly bool                // writing failed once: read only from then on
}

// Open returns the validation cache kept in cacheDir/validation. It reads and writes
// nothing there yet: a folder that cannot be read or written makes loads go on without
// the cache, with one warning. An empty cacheDir turns the cache off (nil), as does a
// binary whose version cannot be told (see BinaryVersion), with a warning.
func Open(cacheDir string, opts Options) *Cache {
	if cacheDir == "" {
		return nil
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	binary := BinaryVersion()
	if binary == "" {
		log.Warn("validation cache off: the running binary cannot be identified, so its entries could be read by another")
		return nil
	}
	return &Cache{dir: filepath.Join(cacheDir, Folder), maxBytes: cmp.Or(opts.MaxBytes, DefaultMaxBytes), log: log,
		segments: map[string]*segment{}, binary: binary}
}

// Dir returns the folder the cache is kept in ("" when off).
func (c *Cache) Dir() string {
	if c == nil {
		return ""
	}
	return c.dir
}

// Context is everything besides a file's content that decides what loading the file
// gives. Entries of another Context are never read. The binary's version is added by the
// cache: a new flagsync never reads what an older one wrote.
type Context struct {
	// Vendor names the loader, e.g. "kameleoon".
	Vendor string
	// Schema holds the schemas the files are checked against (their bytes, or a hash).
	Schema []byte
	// Settings holds the settings that change what one file gives on its own, nil when
	// none do (a loader that applies its settings after the cache, on every load).
	Settings []byte
	// Format names the entries' encoding, e.g. a Codec's Fingerprint.
	Format string
}

// namespace is the folder name of the entries of ctx for this binary.
func (c *Cache) namespace(ctx Context) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(formatVersion), []byte(c.binary), []byte(ctx.Vendor), ctx.Schema, ctx.Settings, []byte(ctx.Format)} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return formatVersion + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// namespaceName matches the folders namespace makes, of this format or another: the
// only folders the cache ever deletes.
var namespaceName = regexp.MustCompile(`^v[0-9]+-[0-9a-f]{32}$`)

// warnOnce logs the cache's one warning about a folder it cannot use; later problems
// are logged at debug level. With write set, the cache stops writing.
func (c *Cache) warnOnce(msg, dir string, err error, write bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readOnly = c.readOnly || write
	level := slog.LevelDebug
	if !c.warned {
		c.warned, level = true, slog.LevelWarn
	}
	c.log.Log(context.Background(), level, msg, "dir", dir, "error", err)
}

// Session is one load's use of the cache: Get and Put as the files are read, then one
// Commit. Get and Put are safe for concurrent use.
type Session struct {
	c    *Cache
	dir  string // the namespace's folder; "" when the cache is off
	segs []*segment

	index map[string][]byte // key → value, from the segments read

	mu      sync.Mutex
	used    map[string]bool   // keys Get found
	dropped map[string]bool   // keys whose entries did not decode (Forget)
	puts    map[string][]byte // entries Put
	stats   Stats
	damaged bool // a segment did not check out: rewrite what is left
}

// Stats say what a session did.
type Stats struct {
	Segments  int  // files read
	Entries   int  // entries found in them
	Hits      int  // Get calls answered
	Misses    int  // Get calls not answered
	Written   int  // entries written by Commit
	Damaged   int  // files found damaged, foreign or unreadable, and dropped
	Compacted bool // Commit rewrote the namespace into one file
}

// Begin starts a load under ctx: it reads the entries kept for ctx (the files another
// session of this Cache read before are not read again).
func (c *Cache) Begin(ctx Context) *Session {
	s := &Session{c: c, index: map[string][]byte{}, used: map[string]bool{}, dropped: map[string]bool{}, puts: map[string][]byte{}}
	if c == nil {
		return s
	}
	s.dir = filepath.Join(c.dir, c.namespace(ctx))
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.warnOnce("validation cache not read: loading goes on without it", s.dir, err, false)
		}
		return s
	}
	var segs []*segment
	listed := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), segmentSuffix) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		listed[path] = true
		seg := c.segment(path, ctx)
		if seg == nil {
			continue // gone since the listing: another process compacted
		}
		segs = append(segs, seg)
	}
	// Forget the files of this namespace another process has deleted.
	c.mu.Lock()
	for path := range c.segments {
		if filepath.Dir(path) == s.dir && !listed[path] {
			delete(c.segments, path)
		}
	}
	c.mu.Unlock()
	// Newest first: names start with the time they were written.
	slices.SortFunc(segs, func(a, b *segment) int { return strings.Compare(b.name, a.name) })
	n := 0
	for _, seg := range segs {
		n += len(seg.records)
	}
	s.index = make(map[string][]byte, n)
	for _, seg := range segs {
		s.stats.Segments++
		if seg.damaged {
			s.damaged = true
			s.stats.Damaged++
			c.mu.Lock()
			if !seg.warned {
				seg.warned = true
				c.log.Warn("validation cache file damaged: ignored, and rebuilt", "file", seg.path, "problem", seg.problem)
			}
			c.mu.Unlock()
		}
		for _, r := range seg.records {
			if _, dup := s.index[r.key]; !dup {
				s.index[r.key] = r.value
				s.stats.Entries++
			}
		}
	}
	s.segs = segs
	// The folder's time says when the namespace was last used, for trimming old ones.
	now := time.Now()
	_ = os.Chtimes(s.dir, now, now)
	return s
}

// segment returns the segment at path, read now or before; nil when it is gone.
func (c *Cache) segment(path string, ctx Context) *segment {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	seg, ok := c.segments[path]
	c.mu.Unlock()
	if ok && seg.size == st.Size() && seg.modTime.Equal(st.ModTime()) {
		return seg
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		seg = &segment{damaged: true, problem: err.Error()}
	} else {
		seg = readSegment(data, c.namespace(ctx))
	}
	seg.path, seg.name, seg.size, seg.modTime = path, filepath.Base(path), st.Size(), st.ModTime()
	c.mu.Lock()
	c.segments[path] = seg
	c.mu.Unlock()
	return seg
}

// Get returns the entry kept under key. The bytes must not be modified.
func (s *Session) Get(key string) ([]byte, bool) {
	v, ok := s.index[key]
	s.mu.Lock()
	if ok {
		s.used[key] = true
		s.stats.Hits++
	} else {
		s.stats.Misses++
	}
	s.mu.Unlock()
	return v, ok
}

// Forget reports that the entry Get returned under key could not be decoded: it is not
// kept any longer. (Its checksum held, so only a bug or a deliberate edit gets here.)
func (s *Session) Forget(key string) {
	s.mu.Lock()
	delete(s.used, key)
	s.dropped[key] = true
	s.damaged = true
	s.mu.Unlock()
}

// Put keeps value under key; Commit writes it. value must not be modified afterwards.
func (s *Session) Put(key string, value []byte) {
	if s.dir == "" {
		return
	}
	s.mu.Lock()
	s.puts[key] = value
	delete(s.dropped, key) // the new entry replaces the one that did not decode
	s.mu.Unlock()
}

// Stats returns what the session did so far.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// maxSegments is how many files a namespace may hold before a Commit merges them.
const maxSegments = 8

// Commit writes the entries Put since Begin as one new file. When the namespace holds
// too many files, too many bytes or a damaged file, it writes instead one file of the
// entries this load used and put, then the newest others up to the size bound, and
// deletes the files it read. It also deletes the namespaces of other binaries and
// settings not used for a week, and all but the three most recently used. Commit never
// fails a load: a folder it cannot write gets one warning, and the cache is read only
// from then on.
func (s *Session) Commit() {
	if s.dir == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := int64(0)
	for _, seg := range s.segs {
		size += seg.size
	}
	for k, v := range s.puts {
		size += int64(len(k) + len(v) + 16)
	}
	compact := s.damaged || len(s.segs)+1 > maxSegments || size > s.c.maxBytes
	if len(s.puts) == 0 && !compact {
		return
	}
	s.c.mu.Lock()
	readOnly := s.c.readOnly
	s.c.mu.Unlock()
	if readOnly {
		return
	}

	var w segmentWriter
	w.buf = make([]byte, 0, min(size, s.c.maxBytes)+256) // one allocation, not a doubling series
	w.start(filepath.Base(s.dir))
	written := map[string]bool{}
	add := func(k string, v []byte) {
		if !written[k] && !s.dropped[k] && (len(written) == 0 || int64(w.len()+len(k)+len(v)) <= s.c.maxBytes) {
			written[k] = true
			w.add(k, v)
		}
	}
	for _, k := range sortedKeys(s.puts) {
		add(k, s.puts[k])
	}
	if compact {
		for _, k := range sortedKeys(s.used) {
			add(k, s.index[k])
		}
		for _, seg := range s.segs {
			for _, r := range seg.records {
				add(r.key, r.value)
			}
		}
	}
	if err := s.write(w.bytes()); err != nil {
		s.c.warnOnce("validation cache not written: loading goes on without it", s.dir, err, true)
		return
	}
	s.stats.Written = len(written)
	if compact {
		s.stats.Compacted = true
		for _, seg := range s.segs {
			if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.c.log.Warn("validation cache file not removed", "file", seg.path, "error", err)
			}
			s.c.mu.Lock()
			delete(s.c.segments, seg.path)
			s.c.mu.Unlock()
		}
	}
	s.c.trim(filepath.Base(s.dir))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// write writes one segment whole under a temporary name and renames it into place.
func (s *Session) write(data []byte) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	name := fmt.Sprintf("%019d-%s%s", time.Now().UnixNano(), hex.EncodeToString(r[:]), segmentSuffix)
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := cmp.Or(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, name)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// staleAfter is how long a namespace may go unused before a Commit deletes it, and
// keepOthers how many other namespaces a Commit keeps at most.
const (
	staleAfter = 7 * 24 * time.Hour
	keepOthers = 3
)

// trim deletes the namespaces other than current that are stale or too many, and the
// temporary files a crashed writer left in current an hour ago or more.
func (c *Cache) trim(current string) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type ns struct {
		name string
		used time.Time
	}
	var others []ns
	for _, e := range entries {
		if !e.IsDir() || !namespaceName.MatchString(e.Name()) || e.Name() == current {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		others = append(others, ns{e.Name(), info.ModTime()})
	}
	slices.SortFunc(others, func(a, b ns) int { return b.used.Compare(a.used) })
	for i, o := range others {
		if i >= keepOthers || time.Since(o.used) > staleAfter {
			if err := os.RemoveAll(filepath.Join(c.dir, o.name)); err != nil {
				c.log.Warn("old validation cache not removed", "dir", filepath.Join(c.dir, o.name), "error", err)
			}
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(c.dir, current, ".tmp-*"))
	for _, t := range tmps {
		if info, err := os.Stat(t); err == nil && time.Since(info.ModTime()) > time.Hour {
			os.Remove(t)
		}
	}
}
