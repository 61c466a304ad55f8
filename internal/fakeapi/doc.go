// Package fakeapi is the call log, fault injection and response writing that the vendor
// sandboxes (sandbox, splitsandbox) share in front of their own routing.
package fakeapi
