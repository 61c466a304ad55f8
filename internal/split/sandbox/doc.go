// Package splitsandbox is an in-memory, Split-compatible (Harness FME) Admin API for
// feature flags and their definitions, for tests, the quick start and CI: it applies
// RFC 6902 patches exactly and validates definitions as Split does.
package splitsandbox
