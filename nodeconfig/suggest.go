package nodeconfig

import (
	"fmt"
	"strings"
)

// nearest returns the name of names closest to s (a different case, or a
// few edits away), "" when none is close enough to be a likely typo.
func nearest(s string, names []string) string {
	best, bestD := "", -1
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return n
		}
		d := distance(strings.ToLower(s), strings.ToLower(n))
		if bestD < 0 || d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	limit := max(2, len(s)/4)
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

// didYouMean is the message's hint: " Did you mean `maxPods`?", or "".
func didYouMean(s string, names []string) string {
	if n := nearest(s, names); n != "" {
		return fmt.Sprintf(" Did you mean %q?", n)
	}
	return ""
}

// distance is the Levenshtein distance between a and b (bytes).
func distance(a, b string) int {
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
