// Package kplan computes the plan that brings live Kameleoon flags in line with the flags
// in Git: normalisation of both sides, ownership and ignore rules, Kameleoon's automation
// left alone, and the changes in their order, as a vendor-neutral plan.Plan.
package kplan
