// Package builtin registers the flag services flagsync ships with: the one place that
// names them, one line each. A new vendor adds its line here (see docs/vendors.md).
package builtin

import (
	"github.com/flagsync/flagsync/internal/kameleoon"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/split"
	"github.com/flagsync/flagsync/internal/unleash"
)

// Registry returns a registry of the built-in providers, in the order a repository's
// services are loaded, planned and shown in.
func Registry() *provider.Registry {
	r := provider.NewRegistry()
	r.Register(kameleoon.Provider())
	r.Register(split.Provider())
	r.Register(unleash.Provider())
	return r
}
