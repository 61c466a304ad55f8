// Package loadcache is what makes a vendor's loader fast: a validation cache that keeps
// what loading each flag file gave (the decoded flag and its diagnostics) keyed by the
// file's content and by everything else that decides the result, so that an unchanged
// file is never parsed again; a codec for those entries; and the garbage collector's
// setting during a load.
//
// A loader uses it in four steps:
//
//	s := cache.Begin(loadcache.Context{Vendor: "kameleoon", Schema: schemaBytes, Format: codec.Fingerprint()})
//	key, ok := loadcache.BlobKey(fsys, name) // a Git snapshot knows its blob ids: no read
//	if !ok { data = read(name); key = loadcache.DataKey(data) }
//	if v, ok := s.Get(key); ok && codec.Decode(v, &entry) == nil { ... } else { parse; s.Put(key, codec.Encode(&entry)) }
//	s.Commit() // writes the new entries, once, at the end of the load
//
// Entries hold what a file gives on its own; checks across files (duplicate keys) and
// checks that depend on settings the Context does not name run on every load. A nil
// *Cache is a cache that is off: Begin returns a session that never hits.
package loadcache
