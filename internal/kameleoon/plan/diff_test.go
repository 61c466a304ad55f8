package kplan

import (
	"fmt"
	"strings"
)

// lineDiff is a readable line diff of want and got: lines only in want start with "-",
// lines only in got with "+", and runs of equal lines are folded to a count.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// Longest common subsequence, by dynamic programming from the ends.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	same := 0
	flush := func() {
		if same > 0 {
			fmt.Fprintf(&out, "  (%d equal lines)\n", same)
			same = 0
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			same++
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			flush()
			fmt.Fprintf(&out, "+ %s\n", b[j])
			j++
		default:
			flush()
			fmt.Fprintf(&out, "- %s\n", a[i])
			i++
		}
	}
	flush()
	return out.String()
}
