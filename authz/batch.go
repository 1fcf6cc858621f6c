package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// Batcher is a View that answers several permission questions at once.
// SimulatePrincipalPolicy takes several actions and several resources under
// one context, so questions sharing a BatchKey cost IAM one call.
type Batcher interface {
	// DecideAll answers qs; the answer and error of qs[i] are at index i.
	DecideAll(ctx context.Context, qs []Question) ([]Decision, []error)
}

var (
	_ Batcher = (*Live)(nil)
	_ Batcher = (*Cached)(nil)
)

// DecideAll answers qs through v: with v's own DecideAll when v is a
// Batcher, else one question at a time (a snapshot answers from memory).
// Callers group questions by BatchKey; a Batcher groups them again, so a
// mixed list is answered right, only in more calls.
func DecideAll(ctx context.Context, v View, qs []Question) ([]Decision, []error) {
	if b, ok := v.(Batcher); ok {
		return b.DecideAll(ctx, qs)
	}
	ds, errs := make([]Decision, len(qs)), make([]error, len(qs))
	for i, q := range qs {
		ds[i], errs[i] = v.Decide(ctx, q)
	}
	return ds, errs
}

// batches returns the indexes of qs grouped by BatchKey, in order of first
// appearance.
func batches(qs []Question) [][]int {
	if len(qs) == 1 {
		return [][]int{{0}}
	}
	at := map[string]int{}
	var out [][]int
	for i, q := range qs {
		k := q.BatchKey()
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, nil)
		}
		out[j] = append(out[j], i)
	}
	return out
}

// DecideAll implements Batcher: one SimulatePrincipalPolicy call (and its
// pages) per group of questions with the same BatchKey, naming every action
// and every resource of the group; each question's answer is IAM's result
// for its action and resource. Errors are Decide's, shared by the group.
func (l *Live) DecideAll(ctx context.Context, qs []Question) ([]Decision, []error) {
	ds, errs := make([]Decision, len(qs)), make([]error, len(qs))
	groups := batches(qs)
	if len(groups) == 1 {
		l.decideBatch(ctx, qs, groups[0], ds, errs)
		return ds, errs
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.decideBatch(ctx, qs, g, ds, errs)
		}()
	}
	wg.Wait()
	return ds, errs
}

// decideBatch answers qs[idx...], which share a BatchKey, in one call.
func (l *Live) decideBatch(ctx context.Context, qs []Question, idx []int, ds []Decision, errs []error) {
	if len(idx) == 1 {
		i := idx[0]
		ds[i], errs[i] = l.Decide(ctx, qs[i])
		return
	}
	const op = "SimulatePrincipalPolicy"
	fail := func(err error) {
		for _, i := range idx {
			errs[i] = err
		}
	}
	first := qs[idx[0]]
	principal, err := l.ResolvePrincipal(ctx, first.Principal)
	if err != nil {
		if !IsUnavailable(err) && !errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("principal %q: %w", first.Principal, err)
		}
		fail(err)
		return
	}
	var actions, resources []string
	for _, i := range idx {
		if !contains(actions, qs[i].Action) {
			actions = append(actions, qs[i].Action)
		}
		if qs[i].Resource != "" && !contains(resources, qs[i].Resource) {
			resources = append(resources, qs[i].Resource)
		}
	}
	in := &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(principal),
		ActionNames:     actions,
		ResourceArns:    resources,
		ContextEntries:  contextEntries(first.Context),
	}
	var results []types.EvaluationResult
	pending := len(idx)
	for page := 0; ; page++ {
		if page == l.maxPages {
			fail(&UnavailableError{Op: op, Err: fmt.Errorf("no result for %s after %d pages", strings.Join(actions, ", "), page)})
			return
		}
		if err := l.acquire(ctx, op); err != nil {
			fail(err)
			return
		}
		start := time.Now()
		out, err := l.client.SimulatePrincipalPolicy(ctx, in)
		l.release()
		l.metrics.observeCall(op, start, err)
		if err != nil {
			q := first
			q.Action = strings.Join(actions, ", ")
			q.Resource = strings.Join(resources, ", ")
			fail(classifyDecideError(q, principal, err))
			return
		}
		results = append(results, out.EvaluationResults...)
		pending = 0
		for _, i := range idx {
			if d, ok := batchDecisionFor(results, qs[i], len(resources) > 1); ok {
				ds[i], errs[i] = d, nil
			} else {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if !out.IsTruncated || aws.ToString(out.Marker) == "" || aws.ToString(out.Marker) == aws.ToString(in.Marker) {
			for _, i := range idx {
				if _, ok := batchDecisionFor(results, qs[i], len(resources) > 1); !ok {
					errs[i] = &UnavailableError{Op: op, Err: fmt.Errorf("response holds no evaluation result for action %s on %s", qs[i].Action, qs[i].Resource)}
				}
			}
			return
		}
		in.Marker = out.Marker
	}
}

// batchDecisionFor is decisionFor for a call that named several resources:
// there, an action's result that does not name q.Resource is another
// resource's, never q's.
func batchDecisionFor(results []types.EvaluationResult, q Question, severalResources bool) (Decision, bool) {
	if !severalResources {
		return decisionFor(results, q)
	}
	for i := range results {
		res := &results[i]
		if !strings.EqualFold(aws.ToString(res.EvalActionName), q.Action) {
			continue
		}
		for _, rs := range res.ResourceSpecificResults {
			if aws.ToString(rs.EvalResourceName) == q.Resource {
				return decisionFor(results[i:i+1], q)
			}
		}
		if aws.ToString(res.EvalResourceName) == q.Resource {
			return decisionFor(results[i:i+1], q)
		}
	}
	return Decision{}, false
}

// DecideAll implements Batcher. Each question keeps its own cache entry, so
// hits are answered as Decide answers them. The misses are grouped by
// BatchKey, and each group goes to the inner view in one DecideAll (one IAM
// call when it is Live); concurrent callers missing the same group share
// that call. When IAM is unavailable, each question falls back to its own
// stale answer.
func (c *Cached) DecideAll(ctx context.Context, qs []Question) ([]Decision, []error) {
	ds, errs := make([]Decision, len(qs)), make([]error, len(qs))
	var misses []cacheMiss
	now := c.opts.Now()
	c.batchMu.RLock()
	for i, q := range qs {
		key := "decide\x00" + q.CacheKey()
		e, ok := c.get(key, now)
		if ok && now.Before(e.expires) {
			c.opts.Metrics.cacheResult(CacheHit)
			ds[i], _ = e.value.(Decision)
			errs[i] = e.err
			continue
		}
		if misses == nil {
			misses = make([]cacheMiss, 0, len(qs)-i)
		}
		misses = append(misses, cacheMiss{i: i, key: key, old: e})
	}
	c.batchMu.RUnlock()
	switch len(misses) {
	case 0:
		return ds, errs
	case 1:
		i := misses[0].i
		ds[i], errs[i] = c.Decide(ctx, qs[i])
		return ds, errs
	}
	groups := groupMisses(qs, misses)
	if len(groups) == 1 {
		c.decideMisses(ctx, qs, misses, ds, errs)
		return ds, errs
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() { c.decideMisses(ctx, qs, g, ds, errs) })
	}
	wg.Wait()
	return ds, errs
}

// cacheMiss is a question DecideAll found no fresh answer for: its index,
// its cache key, and its expired entry, if any.
type cacheMiss struct {
	i   int
	key string
	old *cacheEntry
}

// groupMisses groups misses by their question's BatchKey.
func groupMisses(qs []Question, misses []cacheMiss) [][]cacheMiss {
	sub := make([]Question, len(misses))
	for j, m := range misses {
		sub[j] = qs[m.i]
	}
	groups := batches(sub)
	out := make([][]cacheMiss, len(groups))
	for g, idx := range groups {
		out[g] = make([]cacheMiss, len(idx))
		for k, j := range idx {
			out[g][k] = misses[j]
		}
	}
	return out
}

// decideMisses answers one group of misses with one shared inner call.
func (c *Cached) decideMisses(ctx context.Context, qs []Question, misses []cacheMiss, ds []Decision, errs []error) {
	if len(misses) == 1 {
		i := misses[0].i
		ds[i], errs[i] = c.Decide(ctx, qs[i])
		return
	}
	var b strings.Builder
	b.WriteString("batch")
	for _, m := range misses {
		b.WriteByte('\x02')
		b.WriteString(m.key)
	}
	if err := ctx.Err(); err != nil {
		// The caller's deadline has passed: no call is started that no
		// one would wait for (lookupVia's rule); stale answers serve.
		c.staleAnswers(misses, unavailableAnswers(len(misses), &UnavailableError{Op: "SimulatePrincipalPolicy", Err: err}), ds, errs)
		return
	}
	var leader atomic.Bool
	ch := c.group.DoChan(b.String(), func() (any, error) {
		// A batch of the same questions that ended between our Gets and
		// DoChan has just stored fresh answers: use them rather than ask.
		if got, ok := c.peekAll(misses); ok {
			return got, nil
		}
		leader.Store(true)
		sub := make([]Question, len(misses))
		for j, m := range misses {
			sub[j] = qs[m.i]
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		if refreshesOnly(misses) {
			// Every question was answered before: a budget below serves
			// the refresh first, as lookup does for one question.
			callCtx = WithPriority(callCtx)
		}
		got, gotErrs := DecideAll(callCtx, c.inner, sub)
		fetched := c.opts.Now()
		c.batchMu.Lock()
		defer c.batchMu.Unlock()
		for j, m := range misses {
			switch err := gotErrs[j]; {
			case err == nil:
				c.store(m.key, &cacheEntry{value: got[j], fetched: fetched, expires: fetched.Add(c.opts.TTL)})
			case errors.Is(err, ErrNotFound):
				c.store(m.key, &cacheEntry{err: err, fetched: fetched, expires: fetched.Add(c.opts.NegativeTTL)})
			}
		}
		return answers{got, gotErrs}, nil
	})

	var got answers
	select {
	case res := <-ch:
		got = res.Val.(answers)
	case <-ctx.Done():
		got = unavailableAnswers(len(misses), &UnavailableError{Op: "SimulatePrincipalPolicy", Err: ctx.Err()})
	}
	result := CacheCoalesced
	if leader.Load() {
		result = CacheMiss
	}
	for range misses {
		c.opts.Metrics.cacheResult(result)
	}
	c.staleAnswers(misses, got, ds, errs)
}

// unavailableAnswers are n answers of err.
func unavailableAnswers(n int, err error) answers {
	got := answers{make([]Decision, n), make([]error, n)}
	for j := range got.errs {
		got.errs[j] = err
	}
	return got
}

// staleAnswers puts got, the answers to misses, in ds and errs, each
// unavailable one replaced by its stale answer where the cache holds one
// young enough.
func (c *Cached) staleAnswers(misses []cacheMiss, got answers, ds []Decision, errs []error) {
	for j, m := range misses {
		d, err := got.ds[j], got.errs[j]
		if err != nil && IsUnavailable(err) && m.old != nil && m.old.err == nil {
			if now := c.opts.Now(); now.Before(m.old.expires.Add(c.opts.StaleFor)) {
				c.opts.Metrics.cacheResult(CacheStale)
				d, err = m.old.value.(Decision), nil
				d.Served = Served{Stale: true, Age: now.Sub(m.old.fetched)}
			}
		}
		ds[m.i], errs[m.i] = d, err
	}
}

// answers are a batch's decisions and errors, index for index.
type answers struct {
	ds   []Decision
	errs []error
}

// peekAll returns the fresh cached answers of misses, ok=false unless
// every one is cached and fresh.
func (c *Cached) peekAll(misses []cacheMiss) (answers, bool) {
	now := c.opts.Now()
	got := answers{make([]Decision, len(misses)), make([]error, len(misses))}
	for j, m := range misses {
		e, ok := c.peek(m.key)
		if !ok || !now.Before(e.expires) {
			return answers{}, false
		}
		got.ds[j], _ = e.value.(Decision)
		got.errs[j] = e.err
	}
	return got, true
}

// refreshesOnly reports whether every miss had a found answer before.
func refreshesOnly(misses []cacheMiss) bool {
	for _, m := range misses {
		if m.old == nil || m.old.err != nil {
			return false
		}
	}
	return true
}
