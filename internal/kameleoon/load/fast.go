package kload

// analyseFast is the fast path (see fast.go's decoder); a placeholder that always hands
// over to the schema path until the decoder is written.
func analyseFast(data []byte) (fileEntry, bool) { return fileEntry{}, false }
