// Package unleash is Unleash's side of the sync pipeline: the reconcile.Vendor that claims
// and loads Unleash flag files, reads the live projects through the admin API client,
// plans with unleashplan and sends the planned requests, and the provider that registers
// it (Provider: connection to a real Unleash server, export; Unleash has no sandbox).
package unleash
