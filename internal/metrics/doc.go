// Package metrics defines flagsync's Prometheus metrics on a registry of its own.
package metrics
