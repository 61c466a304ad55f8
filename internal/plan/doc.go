// Package plan computes, orders and renders the changes that bring live Kameleoon flags
// in line with the flags in Git.
package plan
