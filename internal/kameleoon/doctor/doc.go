// Package kdoctor is a live contract probe of a Kameleoon account: with one scratch flag
// and a bounded number of API calls, it checks the behaviours flagsync relies on and
// detects the readings of what Kameleoon's docs leave open, row by row.
package kdoctor
