// Package jsonpatch applies RFC 6902 JSON Patch documents to JSON documents exactly, with
// RFC 6901 JSON Pointers, and encodes the operations flagsync plans.
package jsonpatch
