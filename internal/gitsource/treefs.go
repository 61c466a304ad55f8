package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeFS is a read-only fs.FS over a commit's tree, read straight from the object
// store: no checkout. Files are read whole into memory when opened (flag files are
// small). Symbolic links are followed when they stay inside the tree; submodules show
// as irregular files that cannot be read. Every entry has the commit's time.
//
// go-git's object storage is not safe for concurrent use, so one mutex guards it.
type treeFS struct {
	mu      *sync.Mutex // shared with the treeFS values sub returns, as is trees
	store   storer.EncodedObjectStorer
	root    *object.Tree
	modTime time.Time
	// corrupt is called when an object cannot be read, so the next Fetch re-clones.
	corrupt func(error)
	// trees caches decoded trees by hash. Without it every lookup decoded its folders
	// again, so reading the files of a 5,000-file folder was quadratic (1.7 s for 500
	// files); a cached *object.Tree also keeps the entry index FindEntry builds.
	trees map[plumbing.Hash]*object.Tree
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

func newTreeFS(store storer.EncodedObjectStorer, commit *object.Commit, corrupt func(error)) (*treeFS, error) {
	root, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of commit %s: %w", commit.Hash, err)
	}
	if corrupt == nil {
		corrupt = func(error) {}
	}
	return &treeFS{mu: new(sync.Mutex), store: store, root: root, modTime: commit.Committer.When, corrupt: corrupt,
		trees: map[plumbing.Hash]*object.Tree{root.Hash: root}}, nil
}

// maxLinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxLinks = 40

// node is one resolved entry of the tree.
type node struct {
	name string // base name, "." for the root
	mode filemode.FileMode
	hash plumbing.Hash
}

// lookup resolves name (a valid fs path) to a node, following symlinks in every
// element and, when follow is true, in the last one too.
func (t *treeFS) lookup(op, name string, follow bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	var walk func(dir *object.Tree, dirPath string, elems []string) (node, error)
	walk = func(dir *object.Tree, dirPath string, elems []string) (node, error) {
		if len(elems) == 0 {
			return node{name: path.Base(dirPath), mode: filemode.Dir, hash: dir.Hash}, nil
		}
		entry, err := dir.FindEntry(elems[0])
		if err != nil {
			return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		here := path.Join(dirPath, elems[0])
		last := len(elems) == 1
		switch {
		case entry.Mode == filemode.Symlink && (!last || follow):
			links++
			if links > maxLinks {
				return node{}, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target, err := t.blobBytes(entry.Hash)
			if err != nil {
				return node{}, &fs.PathError{Op: op, Path: name, Err: err}
			}
			resolved := path.Join(dirPath, string(target))
			if path.IsAbs(string(target)) || !fs.ValidPath(resolved) {
				return node{}, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("symbolic link %s points outside the repository", here)}
			}
			rest := append(strings.Split(resolved, "/"), elems[1:]...)
			if resolved == "." {
				rest = elems[1:]
			}
			return walk(t.root, ".", rest)
		case last:
			return node{name: elems[0], mode: entry.Mode, hash: entry.Hash}, nil
		case entry.Mode != filemode.Dir:
			return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		sub, err := t.tree(entry.Hash)
		if err != nil {
			return node{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		return walk(sub, here, elems[1:])
	}
	if name == "." {
		return walk(t.root, ".", nil)
	}
	return walk(t.root, ".", strings.Split(name, "/"))
}

// tree returns the decoded tree h; callers hold t.mu.
func (t *treeFS) tree(h plumbing.Hash) (*object.Tree, error) {
	if tr, ok := t.trees[h]; ok {
		return tr, nil
	}
	tr, err := object.GetTree(t.store, h)
	if err != nil {
		t.corrupt(err)
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	t.trees[h] = tr
	return tr, nil
}

func (t *treeFS) blobBytes(h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(t.store, h)
	if err == nil {
		var r io.ReadCloser
		if r, err = b.Reader(); err == nil {
			var data []byte
			data, err = io.ReadAll(r)
			r.Close()
			if err == nil {
				return data, nil
			}
		}
	}
	t.corrupt(err)
	return nil, fmt.Errorf("read blob %s: %w", h, err)
}

func (t *treeFS) info(n node) (*entryInfo, error) {
	fi := &entryInfo{name: n.name, mode: toFSMode(n.mode), modTime: t.modTime}
	if n.mode.IsFile() {
		size, err := t.store.EncodedObjectSize(n.hash)
		if err != nil {
			t.corrupt(err)
			return nil, fmt.Errorf("read blob %s: %w", n.hash, err)
		}
		fi.size = size
	}
	return fi, nil
}

// Open opens the named file or folder.
func (t *treeFS) Open(name string) (fs.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	fi, err := t.info(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	switch {
	case n.mode == filemode.Dir:
		entries, err := t.readDir(n.hash)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &openDir{info: fi, path: name, entries: entries}, nil
	case n.mode.IsFile():
		data, err := t.blobBytes(n.hash)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &openFile{info: fi, Reader: bytes.NewReader(data)}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("a submodule, which is not part of this repository's tree")}
}

// ReadFile returns the contents of the named file.
func (t *treeFS) ReadFile(name string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("readfile", name, true)
	if err != nil {
		return nil, err
	}
	if n.mode == filemode.Dir {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	if !n.mode.IsFile() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("a submodule, which is not part of this repository's tree")}
	}
	data, err := t.blobBytes(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return data, nil
}

// ReadDir returns the named folder's entries sorted by name.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if n.mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	entries, err := t.readDir(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries, nil
}

// BlobID returns the Git blob id (hex) of the named regular file, following symbolic
// links, without reading the file: the key under which the validation cache
// (internal/loadcache, BlobIDFS) keeps what loading the file gave.
func (t *treeFS) BlobID(name string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("blobid", name, true)
	if err != nil {
		return "", err
	}
	if !n.mode.IsFile() {
		return "", &fs.PathError{Op: "blobid", Path: name, Err: errors.New("not a regular file")}
	}
	return n.hash.String(), nil
}

// Stat describes the named file or folder, following symbolic links.
func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	fi, err := t.info(n)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

// readDir lists a tree's entries, not following symbolic links (like os.ReadDir).
func (t *treeFS) readDir(h plumbing.Hash) ([]fs.DirEntry, error) {
	tr, err := t.tree(h)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(tr.Entries))
	for _, e := range tr.Entries {
		fi, err := t.info(node{name: e.Name, mode: e.Mode, hash: e.Hash})
		if err != nil {
			return nil, err
		}
		out = append(out, fs.FileInfoToDirEntry(fi))
	}
	// Git orders a folder as if its name ended in "/"; fs wants plain name order.
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func toFSMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Executable:
		return 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o444
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0o444
}

type entryInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (e *entryInfo) Name() string       { return e.name }
func (e *entryInfo) Size() int64        { return e.size }
func (e *entryInfo) Mode() fs.FileMode  { return e.mode }
func (e *entryInfo) ModTime() time.Time { return e.modTime }
func (e *entryInfo) IsDir() bool        { return e.mode.IsDir() }
func (e *entryInfo) Sys() any           { return nil }

type openFile struct {
	info *entryInfo
	*bytes.Reader
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *openFile) Close() error               { return nil }

type openDir struct {
	info    *entryInfo
	path    string
	entries []fs.DirEntry
	offset  int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.offset:]
	if n <= 0 {
		d.offset = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.offset += n
	return rest[:n], nil
}

// sub returns the tree at dir (a valid fs path naming a folder) as its own treeFS.
// Symbolic links that leave dir are refused there.
func (t *treeFS) sub(dir string) (*treeFS, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("sub", dir, true)
	if err != nil {
		return nil, err
	}
	if n.mode != filemode.Dir {
		return nil, &fs.PathError{Op: "sub", Path: dir, Err: errors.New("not a directory")}
	}
	tr, err := t.tree(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "sub", Path: dir, Err: err}
	}
	return &treeFS{mu: t.mu, store: t.store, root: tr, modTime: t.modTime, corrupt: t.corrupt, trees: t.trees}, nil
}
