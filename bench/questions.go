package bench

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// recordingView answers from another View and remembers every distinct
// question asked, keyed as the cache keys them: a role name, a profile
// name, or a permission question's Key.
type recordingView struct {
	inner authz.View
	mu    sync.Mutex
	seen  map[string]bool
}

var _ authz.View = (*recordingView)(nil)

func (r *recordingView) note(key string) {
	r.mu.Lock()
	r.seen[key] = true
	r.mu.Unlock()
}

func (r *recordingView) Role(ctx context.Context, name string) (authz.Role, error) {
	r.note("GetRole\x00" + name)
	return r.inner.Role(ctx, name)
}

func (r *recordingView) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	r.note("GetInstanceProfile\x00" + name)
	return r.inner.InstanceProfile(ctx, name)
}

func (r *recordingView) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	r.note("SimulatePrincipalPolicy\x00" + q.Key())
	return r.inner.Decide(ctx, q)
}

// DistinctQuestions runs the rules (a Checker of cfg, whose IAM view is replaced by
// a recording wrapper around it) over classes and returns how many distinct
// IAM questions they ask, by API: what a cold cache must ask IAM, once each.
// Deriving the count from the rules themselves, rather than from a formula,
// keeps it right when the rules change.
func DistinctQuestions(ctx context.Context, cfg rules.Config, classes []Class) map[string]int {
	rec := &recordingView{inner: cfg.IAM, seen: map[string]bool{}}
	cfg.IAM = rec
	checker := rules.NewChecker(cfg)
	for _, c := range classes {
		checker.CheckEC2NodeClass(ctx, ClassObject(c))
	}
	out := map[string]int{}
	for k := range rec.seen {
		for i := 0; i < len(k); i++ {
			if k[i] == 0 {
				out[k[:i]]++
				break
			}
		}
	}
	return out
}

// batchingView is a recordingView that also answers batches, as the live
// view does, and remembers each distinct batch: the set of question keys
// sharing a BatchKey, which the live view asks in one call.
type batchingView struct {
	*recordingView
}

var _ authz.Batcher = batchingView{}

func (b batchingView) DecideAll(ctx context.Context, qs []authz.Question) ([]authz.Decision, []error) {
	groups := map[string][]string{}
	var order []string
	for _, q := range qs {
		k := q.BatchKey()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], q.Key())
	}
	for _, k := range order {
		keys := groups[k]
		slices.Sort(keys)
		b.note("batch\x00" + strings.Join(keys, "\x02"))
	}
	ds, errs := make([]authz.Decision, len(qs)), make([]error, len(qs))
	for i, q := range qs {
		ds[i], errs[i] = b.recordingView.Decide(ctx, q)
	}
	return ds, errs
}

// DistinctCalls runs the rules as DistinctQuestions does and returns how
// many IAM calls a cold cache must make for them: one per distinct lookup
// and one per distinct batch of permission questions (same principal and
// context), as the live view asks them.
func DistinctCalls(ctx context.Context, cfg rules.Config, classes []Class) int {
	rec := &recordingView{inner: cfg.IAM, seen: map[string]bool{}}
	cfg.IAM = batchingView{rec}
	checker := rules.NewChecker(cfg)
	for _, c := range classes {
		checker.CheckEC2NodeClass(ctx, ClassObject(c))
	}
	n := 0
	for k := range rec.seen {
		if !strings.HasPrefix(k, "SimulatePrincipalPolicy\x00") {
			n++
		}
	}
	return n
}

// ClassObject is the EC2NodeClass ReviewBody sends for c (its selector
// terms, tags and UID included): the same object serve is asked about, so
// that the questions counted are the ones serve asks.
func ClassObject(c Class) *rules.EC2NodeClass {
	var review struct {
		Request struct {
			Object rules.EC2NodeClass `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal(ReviewBody(c, "count"), &review); err != nil {
		panic(err) // ReviewBody marshals only maps, slices and scalars
	}
	return &review.Request.Object
}
