// Package unleashtest runs the real, open-source Unleash server (the unleash-server npm
// package pinned in tools/unleash-server) on 127.0.0.1 for tests, on a throwaway PostgreSQL
// cluster of the test process's own.
//
// A package that tests against it has
//
//	func TestMain(m *testing.M) { os.Exit(unleashtest.Run(m)) }
//
// and calls Start(t) in each test for the binary's shared server (started once, since a start
// runs Unleash's migrations), or StartDedicated(t) for a server of the test's own. Setup runs
// `npm ci` in tools/unleash-server when node_modules lacks the pinned version (under a file
// lock, since go test runs packages in parallel), creates the cluster with initdb, and starts
// the server with an admin token of its own. What cannot be had (Node.js, npm, the package,
// PostgreSQL) skips the test with a message saying what to install, or fails it when
// FLAGSYNC_REQUIRE_UNLEASH=1, as in CI.
package unleashtest
