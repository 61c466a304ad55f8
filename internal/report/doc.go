// Package report renders what a sync did, beside the plan renderers of package plan:
// the result of each change, the summary line a sync ends with, the JSON report, and
// the problems of invalid files in a plan's output format.
package report
