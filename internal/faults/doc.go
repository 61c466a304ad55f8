// Package faults is flagsync's fault-injection and security suite: tests that break the
// API, Git, the disk and the process mid-sync and check that every sync still ends with
// no duplicate flag, no lost change and a clear error, and that no secret ever shows.
package faults
