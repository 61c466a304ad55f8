package loadcache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
	"unsafe"
)

// A segment is one file of a namespace: a header, then records, each checksummed.
//
//	magic "flagsync validation cache\n", the namespace's name (uvarint length, bytes)
//	records: key (uvarint length, bytes), value (uvarint length, bytes),
//	         CRC-32C of the record's bytes so far (4 bytes, little endian)
//
// A file whose header is not this namespace's is ignored whole; reading stops at the
// first record that is cut short or fails its checksum, keeping the records before it.
// The checksums find damage (a disk, a crash, a copy gone wrong); they are no defence
// against someone who may write the cache folder and recomputes them (docs/cache.md).

const (
	formatVersion = "v1"
	segmentSuffix = ".seg"
	magic         = "flagsync validation cache\n"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	path, name string
	size       int64
	modTime    time.Time
	records    []record
	damaged    bool   // not all of the file could be used
	problem    string // what was wrong, for the warning
	warned     bool   // the warning was logged (under Cache.mu)
}

type record struct {
	key   string
	value []byte // a slice of the file's bytes
}

// readSegment parses a segment of namespace ns.
func readSegment(data []byte, ns string) *segment {
	seg := &segment{}
	rest, ok := bytes.CutPrefix(data, []byte(magic))
	if !ok {
		seg.damaged, seg.problem = true, "not a validation cache file"
		return seg
	}
	name, rest, ok := field(rest)
	if !ok || string(name) != ns {
		seg.damaged, seg.problem = true, fmt.Sprintf("written for another namespace (%.40q)", name)
		return seg
	}
	for len(rest) > 0 {
		start := rest
		key, after, ok := field(rest)
		var value []byte
		if ok {
			value, after, ok = field(after)
		}
		if !ok || len(after) < 4 {
			seg.damaged, seg.problem = true, fmt.Sprintf("cut short after %d entries", len(seg.records))
			return seg
		}
		body := start[:len(start)-len(after)]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(after) {
			seg.damaged, seg.problem = true, fmt.Sprintf("entry %d fails its checksum", len(seg.records)+1)
			return seg
		}
		// The file's bytes are never changed once read: the key can be a view of them.
		seg.records = append(seg.records, record{key: unsafe.String(unsafe.SliceData(key), len(key)), value: value})
		rest = after[4:]
	}
	return seg
}

// field reads a uvarint length and that many bytes.
func field(b []byte) (value, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// segmentWriter builds a segment in memory.
type segmentWriter struct{ buf []byte }

func (w *segmentWriter) start(ns string) {
	w.buf = append(w.buf[:0], magic...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(ns)))
	w.buf = append(w.buf, ns...)
}

func (w *segmentWriter) add(key string, value []byte) {
	start := len(w.buf)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(key)))
	w.buf = append(w.buf, key...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(value)))
	w.buf = append(w.buf, value...)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf[start:], castagnoli))
}

func (w *segmentWriter) len() int      { return len(w.buf) }
func (w *segmentWriter) bytes() []byte { return w.buf }
