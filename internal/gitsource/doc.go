// Package gitsource fetches the flag repository — a local work tree or a remote cloned
// into a cache with go-git — and hands back a read-only snapshot of one revision.
package gitsource
