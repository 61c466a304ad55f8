// Package reconcile runs one sync end to end as ordered steps — load (the one dispatch
// of a repository's files to its services), connect, read, plan, guard, apply, confirm —
// the single pipeline behind validate, plan, sync and the daemon.
package reconcile
