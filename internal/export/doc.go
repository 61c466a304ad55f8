// Package export is what every vendor's export shares: the files of an export, writing
// them without clobbering, YAML written by hand in a fixed order with strings quoted so
// that every reader reads them back as written, schema references for editors, and the
// result of verifying that the files plan to nothing.
package export
