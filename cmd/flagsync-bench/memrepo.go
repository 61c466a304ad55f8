package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"testing/fstest"
)

// memRepo is a generated repository held in memory the way a Git snapshot holds it:
// folders listed from an index (fstest.MapFS lists a folder by scanning every file,
// which for 10,000 files cost a load more than a Git tree's listing does) and, when
// withBlobIDs, each file's Git blob id known without reading the file.
type memRepo struct {
	fstest.MapFS
	dirs  map[string][]fs.DirEntry
	blobs map[string]string // nil: the FS knows no blob ids
}

var _ fs.ReadDirFS = (*memRepo)(nil)

func newMemRepo(files fstest.MapFS, withBlobIDs bool) *memRepo {
	r := &memRepo{MapFS: files, dirs: map[string][]fs.DirEntry{}}
	if withBlobIDs {
		r.blobs = make(map[string]string, len(files))
	}
	seen := map[string]bool{}
	for name, f := range files {
		for child, dir := name, path.Dir(name); ; child, dir = dir, path.Dir(dir) {
			if !seen[child] {
				seen[child] = true
				info, err := fs.Stat(files, child)
				if err == nil {
					r.dirs[dir] = append(r.dirs[dir], fs.FileInfoToDirEntry(info))
				}
			}
			if dir == "." {
				break
			}
		}
		if withBlobIDs {
			h := sha1.New()
			fmt.Fprintf(h, "blob %d\x00", len(f.Data))
			h.Write(f.Data)
			r.blobs[name] = hex.EncodeToString(h.Sum(nil))
		}
	}
	for _, entries := range r.dirs {
		slices.SortFunc(entries, func(a, b fs.DirEntry) int {
			switch {
			case a.Name() < b.Name():
				return -1
			case a.Name() > b.Name():
				return 1
			}
			return 0
		})
	}
	return r
}

// ReadDir lists a folder from the index.
func (r *memRepo) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, ok := r.dirs[name]
	if !ok {
		return r.MapFS.ReadDir(name)
	}
	return slices.Clone(entries), nil
}

// BlobID returns a file's Git blob id, when the repository knows them
// (loadcache.BlobIDFS).
func (r *memRepo) BlobID(name string) (string, error) {
	id, ok := r.blobs[name]
	if !ok {
		return "", &fs.PathError{Op: "blobid", Path: name, Err: fs.ErrNotExist}
	}
	return id, nil
}
