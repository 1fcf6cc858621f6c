package rules

import (
	"encoding/json"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// planCache keeps the plans a Checker built, at the edge of the rules: a
// rule's plan is a pure function, and the cache is keyed by the whole input
// the plan was built from (the karpenter.Input, serialised), so it follows
// whatever karpenter.LaunchRequests reads without a hand-written key.
type planCache struct {
	launches *lru.Cache[string, launchPlan]
}

// planCacheSize is how many launch plans a Checker keeps: about 64 KiB
// each with resolved selectors (the per-resource contexts' maps), 2 MiB
// for 32; a plan evicted is rebuilt in about 0.1 ms. Replays of one object
// are the verdict cache's (verdicts.go), and concurrent admissions of one
// object share one judgment, so a plan is reused only when an object is
// judged again; 64 plans put RSS at the cache bound at 98 MiB, 32 at 92
// (docs/benchmarks.md, "Memory").
const planCacheSize = 32

func newPlanCache() *planCache {
	l, _ := lru.New[string, launchPlan](planCacheSize) // only a size <= 0 errs
	return &planCache{launches: l}
}

// launch returns the launch plan of in, building it with build when it is
// not kept.
func (p *planCache) launch(in karpenter.Input, build func() launchPlan) launchPlan {
	b, err := json.Marshal(in)
	if err != nil { // an Input is strings, string lists and maps: never
		return build()
	}
	key := string(b)
	if lp, ok := p.launches.Get(key); ok {
		return lp
	}
	lp := build()
	if cacheablePlan(key, lp) {
		p.launches.Add(key, lp)
	}
	return lp
}
