package policy

import "cel.dev/cel-go/common"

// Shape is the tree of field names a flag file may hold, used to check what policies read
// from flag and live at compile time.
type Shape struct{}

type shapeProblem struct {
	loc common.Location
	msg string
}

func checkShape(_ any, _ *Shape) []shapeProblem { return nil }
