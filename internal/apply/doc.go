// Package apply executes a plan against the API: each flag's changes in order, independent
// flags concurrently, with a result for every change.
package apply
