// Package api is the vendor-neutral kit every vendor's API client is built on: a
// request as data, the typed *Error with secrets redacted, the client-side rate Budget,
// and the Caller, whose retry loop takes hooks for credentials (renewed on a 401),
// rate-limit waits, Retry-After, jittered backoff and which requests may be resent.
package api
