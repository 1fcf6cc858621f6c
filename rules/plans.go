package rules

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// planCache keeps the plans a Checker built, for the rules whose plans are
// worth keeping (the launch rule's: every admission of a class asks the
// same 35 or so launch requests). A rule's plan is a pure function, and a
// plan is kept under the whole input it was built from, serialised (the
// launch rule's karpenter.Input), so that it follows whatever the plan
// reads without a hand-written key.
type planCache struct {
	plans *lru.Cache[string, any]
}

// planCacheSize is how many plans a Checker keeps: about 64 KiB each for
// a launch plan with resolved selectors (the per-resource contexts' maps),
// 2 MiB for 32; a plan evicted is rebuilt in about 0.1 ms. Replays of one
// object are the verdict cache's (verdicts.go), and concurrent admissions
// of one object share one judgment, so a plan is reused only when an
// object is judged again; 64 plans put RSS at the cache bound at 98 MiB,
// 32 at 92 (docs/benchmarks.md, "Memory").
const planCacheSize = 32

func newPlanCache() *planCache {
	l, _ := lru.New[string, any](planCacheSize) // only a size <= 0 errs
	return &planCache{plans: l}
}

// plan returns the plan kept under key, or build's, kept when keep says
// it may be.
func (p *planCache) plan(key string, build func() any, keep func(any) bool) any {
	if v, ok := p.plans.Get(key); ok {
		return v
	}
	v := build()
	if keep(v) {
		p.plans.Add(key, v)
	}
	return v
}
