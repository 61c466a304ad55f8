// Package split is Split's (Harness FME) side of the sync pipeline: the reconcile.Vendor
// that loads Split flag files, reads live flags and definitions with list calls, plans
// JSON Patches and sends them through the Admin API client.
package split
