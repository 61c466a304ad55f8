// Package unleashplan computes the plan that brings Unleash in line with Git: a pure
// function of the desired flags and the live state, whose changes are the exact admin API
// requests, one per call, in the order they must be sent.
package unleashplan
