// Package webhook receives Git hosting webhooks, verifies their signatures and turns an
// accepted push to the tracked branch into a sync trigger for the daemon.
package webhook
