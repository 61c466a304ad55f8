//go:build !unix

package gitsource

import "context"

// lockFile is a no-op where flock is not available: processes must not share a cache
// folder there (one process is still safe, Source serialises its own fetches).
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
