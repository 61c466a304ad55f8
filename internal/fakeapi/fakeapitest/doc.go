// Package fakeapitest serves a vendor's sandbox on a loopback httptest server for
// tests; it is kept out of fakeapi so that the binary never links testing.
package fakeapitest
