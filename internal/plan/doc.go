// Package plan is the vendor-neutral plan: changes addressed by service, scope, key and
// environment, each with the exact request it sends, their order, the mass-archive
// guard, and the text, Markdown and JSON renderers. Each vendor's planner computes one.
package plan
