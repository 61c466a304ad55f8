// Package ksandbox is a local, in-memory server that behaves like Kameleoon's Automation API
// for feature flags, for tests, the quick start and users' own CI.
package ksandbox
