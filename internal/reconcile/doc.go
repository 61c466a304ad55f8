// Package reconcile runs one sync end to end — load, live read, plan, guard, apply,
// confirm — the single pipeline behind plan, sync and the daemon.
package reconcile
