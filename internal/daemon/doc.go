// Package daemon runs flagsync as a long-lived service: one loop runs the syncs that cron
// ticks, Git webhooks, signals and drift checks ask for, and an HTTP server reports its
// health, metrics and status and takes the break-glass suspend switch.
package daemon
