// Package splitclient is the client of Split's (Harness FME) Admin API for feature flags
// and their definitions, built on the core's api.Caller, and the only place that knows
// the API's wire shapes: paths, read shapes, create bodies, and the RFC 6902 JSON Patches
// flagsync sends.
package splitclient
