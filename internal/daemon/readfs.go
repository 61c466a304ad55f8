package daemon

import (
	"io/fs"
	"sync"
	"testing/fstest"
)

// recordingFS passes reads through to a snapshot and keeps a copy of every file read,
// so that what one load read can be loaded again (by the sync pipeline) without reading
// the repository a second time: a Git tree is slow to read file by file, and the copy
// is the same revision's bytes.
type recordingFS struct {
	base fs.FS

	mu    sync.Mutex
	files fstest.MapFS
}

func newRecordingFS(base fs.FS) *recordingFS {
	return &recordingFS{base: base, files: fstest.MapFS{}}
}

// read returns the files read so far, as a file system of their own.
func (r *recordingFS) read() fstest.MapFS {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files
}

// ReadFile reads name from the snapshot and keeps a copy.
func (r *recordingFS) ReadFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(r.base, name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.files[name] = &fstest.MapFile{Data: b}
	r.mu.Unlock()
	return b, nil
}

// Open opens a folder of the snapshot, or a copy of a file (kept).
func (r *recordingFS) Open(name string) (fs.File, error) {
	st, err := fs.Stat(r.base, name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return r.base.Open(name)
	}
	b, err := r.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return fstest.MapFS{name: &fstest.MapFile{Data: b, Mode: st.Mode(), ModTime: st.ModTime()}}.Open(name)
}

// ReadDir lists a folder of the snapshot.
func (r *recordingFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(r.base, name) }

// Stat describes a file or folder of the snapshot.
func (r *recordingFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(r.base, name) }
