package authz

import (
	"testing"
	"time"
)

// TestPolicyViewRefsBounded: the probed references stay within maxRefs
// however many requests are probed, the expired going first.
func TestPolicyViewRefsBounded(t *testing.T) {
	v := NewPolicyView(nil, nil, CacheOptions{})
	now := time.Now()
	for i := range 3 * maxRefs {
		v.boundRefs(now)
		expires := now.Add(time.Minute)
		if i == 0 {
			expires = now.Add(-time.Second)
		}
		v.refs[refKey(Question{Principal: "p", Action: "a", Resource: string(rune('a'+i%26)) + time.Duration(i).String()})] = refEntry{expires: expires}
		if len(v.refs) > maxRefs {
			t.Fatalf("%d entries after %d probes, want at most %d", len(v.refs), i+1, maxRefs)
		}
	}
}
