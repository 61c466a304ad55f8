// Package gittest starts real Git servers on 127.0.0.1 and builds fixture repositories
// with the real git binary, for tests of anything that clones or fetches.
package gittest
