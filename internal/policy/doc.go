// Package policy checks an organisation's rules, written in the Common Expression Language
// (CEL), against every planned change of a flag before anything is applied.
package policy
