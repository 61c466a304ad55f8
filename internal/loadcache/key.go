package loadcache

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// BlobIDFS is an fs.FS that knows the Git blob id of its files without reading them, as
// a Git snapshot does (internal/gitsource). With one, a load of an unchanged repository
// reads no flag file at all.
type BlobIDFS interface {
	fs.FS
	// BlobID returns the Git blob id, in hex, of the regular file name (symbolic links
	// followed): the hash of its content.
	BlobID(name string) (string, error)
}

// BlobKey returns the cache key of file name of fsys from its Git blob id, when fsys is
// a BlobIDFS that knows it; false otherwise (then read the file and use DataKey).
func BlobKey(fsys fs.FS, name string) (string, bool) {
	b, ok := fsys.(BlobIDFS)
	if !ok {
		return "", false
	}
	id, err := b.BlobID(name)
	if err != nil || (len(id) != 40 && len(id) != 64) {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return "git-blob:" + id, true
}

// DataKey returns the cache key of a file's content: its SHA-256.
func DataKey(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// BinaryVersion identifies the running binary, so that a cache entry written by one
// flagsync is never read by another: the module version and checksum of an installed
// release, else the Git revision it was built from when the tree was clean (with the
// build's settings: tags, linker flags, target), else the Go
// build ID the linker wrote into the executable, else the executable's SHA-256; "" when
// none of them can be had (the cache is then off). It is computed once per process.
var BinaryVersion = sync.OnceValue(func() string {
	platform := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Sum != "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return "module " + bi.Main.Path + "@" + bi.Main.Version + " " + bi.Main.Sum + " " + platform
		}
		var rev, modified string
		var build strings.Builder // the build's settings (-tags, -ldflags, GOAMD64...) besides the revision
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			case "vcs.time":
			default:
				build.WriteString(" " + s.Key + "=" + s.Value)
			}
		}
		if rev != "" && modified == "false" {
			return "vcs " + rev + " " + platform + build.String()
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if id := goBuildID(exe); id != "" {
		return "buildid " + id + " " + platform
	}
	f, err := os.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return "sha256 " + hex.EncodeToString(h.Sum(nil)) + " " + platform
})

// goBuildID reads the Go build ID note of an ELF executable: a hash of what was linked,
// which changes whenever the binary does. "" when there is none.
func goBuildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		return ""
	}
	data, err := sec.Data()
	if err != nil || len(data) < 16 {
		return ""
	}
	// An ELF note: name size, description size, type (4), the name "Go\0\0", the ID.
	namesz := binary.LittleEndian.Uint32(data[0:4])
	descsz := binary.LittleEndian.Uint32(data[4:8])
	typ := binary.LittleEndian.Uint32(data[8:12])
	if namesz != 4 || typ != 4 || string(data[12:16]) != "Go\x00\x00" || uint32(len(data)-16) < descsz || descsz == 0 {
		return ""
	}
	return string(data[16 : 16+descsz])
}
