// Package archtest holds the tests that keep flagsync's package layout true: vendors
// plug into a vendor-neutral core, import the core only and never each other, the core
// never imports a vendor, and the flagsync binary links no test helpers.
package archtest
