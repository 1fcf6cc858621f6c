package authz

import "strings"

// pattern is an IAM wildcard pattern compiled once at parse time so that
// matching allocates nothing: '*' matches any run of characters (slashes
// and colons included) and '?' matches exactly one byte. Policy ARNs and
// actions are ASCII, so byte-wise '?' is what IAM does for them.
type pattern struct {
	raw string
	// parts are the pieces between the '*'s: one piece when the pattern
	// has no '*', an empty first or last piece when it starts or ends
	// with one.
	parts []string
	// any is set for the pattern "*" (or "**"...), which matches everything.
	any bool
	// fold makes matching ASCII case-insensitive; parts are then lower case.
	fold bool
}

// compilePattern compiles raw. With fold, matching ignores ASCII case (IAM
// actions); without it, matching is exact (resources, condition values).
func compilePattern(raw string, fold bool) pattern {
	p := pattern{raw: raw, fold: fold}
	src := raw
	if fold {
		src = strings.ToLower(raw)
	}
	p.parts = strings.Split(src, "*")
	if strings.Trim(src, "*") == "" && len(p.parts) > 1 {
		p.any = true
	}
	return p
}

// match reports whether s matches the pattern.
func (p *pattern) match(s string) bool {
	if p.any {
		return true
	}
	parts := p.parts
	if len(parts) == 1 {
		return len(s) == len(parts[0]) && p.segmentAt(s, 0, parts[0])
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) {
		return false
	}
	if !p.segmentAt(s, 0, first) || !p.segmentAt(s, len(s)-len(last), last) {
		return false
	}
	// Each middle piece is placed at its leftmost possible position: with
	// only '*' as the variable-length wildcard, greedy leftmost placement
	// finds a match whenever one exists.
	pos, end := len(first), len(s)-len(last)
	for _, mid := range parts[1 : len(parts)-1] {
		if mid == "" {
			continue
		}
		i := p.index(s[:end], pos, mid)
		if i < 0 {
			return false
		}
		pos = i + len(mid)
	}
	return true
}

// index returns the first position >= from where seg matches s, or -1.
func (p *pattern) index(s string, from int, seg string) int {
	for i := from; i+len(seg) <= len(s); i++ {
		if p.segmentAt(s, i, seg) {
			return i
		}
	}
	return -1
}

// segmentAt reports whether seg ('?' allowed, no '*') matches s at offset i.
func (p *pattern) segmentAt(s string, i int, seg string) bool {
	if i+len(seg) > len(s) {
		return false
	}
	for j := 0; j < len(seg); j++ {
		c, w := s[i+j], seg[j]
		if w == '?' {
			continue
		}
		if p.fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w {
			return false
		}
	}
	return true
}

// matchAny reports whether s matches any of the patterns.
func matchAny(ps []pattern, s string) bool {
	for i := range ps {
		if ps[i].match(s) {
			return true
		}
	}
	return false
}
