// Package diag turns problems in a flag repository into diagnostics, file:line:col:
// field: message, for every vendor: YAML parsed with the node positions kept and its
// traps reported, JSON Schema errors mapped back to the node they are about, semantic
// problems placed on their node, and "did you mean" suggestions.
package diag
