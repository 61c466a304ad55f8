// Package unleashwire is Unleash's admin API as data: the paths, the JSON shapes of what
// flagsync reads and writes, their conversion to and from the flag model, and every write
// as an api.Request. It does no I/O, so the planner builds the exact requests a plan
// carries and the client sends them.
package unleashwire
