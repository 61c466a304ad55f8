// Package splitclient is the client of Split's (Harness FME) Admin API for feature flags
// and their definitions, built on the core's api.Caller, and the only place that knows
// the API's wire shapes: paths, read shapes, create bodies, and the write shapes the
// planner's JSON Patches carry.
package splitclient
