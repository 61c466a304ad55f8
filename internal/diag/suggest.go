package diag

import (
	"fmt"
	"strings"
)

// suggest returns the candidate closest to s, or "" when none is close enough to be a
// likely typo: equal but for case, a prefix of at least three characters, one edit, or
// with the right first letter an edit distance of at most half the candidate's length
// (and less than s's length).
func suggest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestDist := "", -1
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if lc == ls {
			return c
		}
		d := editDistance(ls, lc)
		if len(ls) >= 3 && strings.HasPrefix(lc, ls) {
			d = min(d, 1)
		}
		// One edit is always a likely typo; more only when the first letter is right.
		if d > 1 && (ls == "" || lc == "" || ls[0] != lc[0] || d > len(lc)/2 || d >= len(ls)) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean returns `; did you mean "x"?` for the closest candidate, or "".
func didYouMean(s string, candidates []string) string {
	if c := suggest(s, candidates); c != "" && c != s {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, counted in bytes (names
// here are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long strings are not typos of field names; keep the cost bounded.
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Suggest returns the candidate closest to s when it is a likely typo of it (the rule of
// the diagnostics' "did you mean"), or "". The command line uses it for mistyped
// commands and flags.
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }
