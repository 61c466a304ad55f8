// Package provider is the registry of the flag services flagsync syncs: each vendor's
// folder provides one Provider (its name, its flag files, its connection flags and
// client, its sandbox, and optionally export and doctor), and the commands and the
// daemon reach every service through the registry, never by its name.
package provider
