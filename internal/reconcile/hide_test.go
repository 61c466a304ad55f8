package reconcile

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/loadcache"
)

// blobMapFS is a MapFS that knows blob ids, as a Git snapshot does.
type blobMapFS struct{ fstest.MapFS }

func (b blobMapFS) BlobID(name string) (string, error) {
	if _, ok := b.MapFS[name]; !ok {
		return "", fs.ErrNotExist
	}
	sum := sha1.Sum(b.MapFS[name].Data)
	return hex.EncodeToString(sum[:]), nil
}

// TestHiddenFSForwardsBlobIDs: a service's view of a snapshot keeps the snapshot's blob
// ids for its own files (so that the validation cache reads no file), and hides those of
// the files other services took.
func TestHiddenFSForwardsBlobIDs(t *testing.T) {
	files := fstest.MapFS{"flags/a.yaml": {Data: []byte("a")}, "flags/b.yaml": {Data: []byte("b")}}
	src := hide(Source{FS: blobMapFS{files}, Dir: "flags"}, map[string]bool{"flags/b.yaml": true})
	want, _ := blobMapFS{files}.BlobID("flags/a.yaml")
	if key, ok := loadcache.BlobKey(src.FS, "flags/a.yaml"); !ok || key != "git-blob:"+want {
		t.Errorf("a visible file's key: %q, %t; want its blob id", key, ok)
	}
	if _, ok := loadcache.BlobKey(src.FS, "flags/b.yaml"); ok {
		t.Error("a hidden file has a blob id")
	}
	if _, err := src.FS.(loadcache.BlobIDFS).BlobID("./flags/b.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("hidden file: %v, want not exist", err)
	}
	// Without blob ids underneath, there are none: the loader reads and hashes.
	plain := hide(Source{FS: files, Dir: "flags"}, map[string]bool{"flags/b.yaml": true})
	if _, ok := loadcache.BlobKey(plain.FS, "flags/a.yaml"); ok {
		t.Error("a blob id made up for an FS without them")
	}
}
