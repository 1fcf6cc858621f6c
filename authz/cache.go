package authz

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// CacheOptions tunes a Cached view. Zero fields take the defaults.
type CacheOptions struct {
	// Size is the maximum number of cached found answers (roles, profiles,
	// decisions; default 4096); the least recently used is evicted first.
	Size int
	// NegativeSize is the maximum number of cached not-found answers
	// (default 1024), kept apart from the found ones: a flood of names
	// that do not exist, which costs a caller nothing, evicts only other
	// not-found answers, never the answers for roles that exist, which
	// keep verdicts stable through an IAM outage.
	NegativeSize int
	// TTL is how long an answer is served without asking again (default 5m).
	TTL time.Duration
	// NegativeTTL is how long a not-found answer is served (default 30s):
	// shorter, because the role being missing is often a race with the
	// GitOps change that creates it.
	NegativeTTL time.Duration
	// Timeout bounds each call to the inner view (default 2s), whatever the
	// callers' contexts say.
	Timeout time.Duration
	// StaleFor is how long past its TTL an answer may still be served, marked
	// stale, while the inner view is unavailable (default 24h).
	StaleFor time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Metrics counts hits, misses, coalesced and stale lookups; nil counts
	// nothing.
	Metrics *Metrics
	// Changes, when set, counts the changes of the answers held: an
	// answer asked again that differs from the one held, and a purge.
	// Every view's cache shares one, and the verdict cache of the rules
	// reads it (rules.Config.Changes).
	Changes *Changes
	// Breaker tunes the breakers of the optional services' caches
	// (CachedEKS, CachedEC2); its Now and Metrics default to the cache's.
	Breaker BreakerOptions
}

// Cached is a View in front of another (usually Live) that keeps IAM off
// the admission path: answers are cached for a TTL, not-found answers for a
// shorter one, concurrent identical lookups share one inner call, and when
// IAM is unavailable an expired answer is served, marked stale, rather than
// no answer at all. Unavailable answers are never cached.
//
// A question with a found answer in the cache, even an expired one, is
// asked again with WithPriority: a Budgeted view below serves it first.
//
// A stale answer is served only for found roles, profiles and decisions:
// a stale not-found cannot carry the Stale mark (it is an error), and the
// role may well have been created since, so an expired not-found gives way
// to the *UnavailableError.
type Cached struct {
	answerCache
	inner View
}

// answerCache is the cache every AWS view shares: the LRU of answers, the
// coalescing of identical lookups, the TTLs and the stale fallback. Cached
// (IAM) and CachedEKS embed it, so that a second service's answers follow
// exactly the rules of the first.
type answerCache struct {
	opts     CacheOptions
	entries  *lru.Cache[string, *cacheEntry] // found answers
	negative *lru.Cache[string, *cacheEntry] // not-found answers
	group    singleflight.Group
	// batchMu makes a batch's answers appear at once: DecideAll reads a
	// caller's questions under its read lock and a batch stores its
	// answers under its write lock, so that a concurrent caller sees all
	// of a batch answered or none, and never asks the rest again as a
	// batch of its own.
	batchMu sync.RWMutex
	// service names the service in the UnavailableError of a caller whose
	// own context ends first; "" is IAM.
	service string
}

var _ View = (*Cached)(nil)

// cacheEntry is one cached answer: a value, or a *NotFoundError.
type cacheEntry struct {
	value   any
	err     error
	fetched time.Time
	expires time.Time
}

// NewCached returns a cache in front of inner.
func NewCached(inner View, opts CacheOptions) *Cached {
	c := &Cached{inner: inner}
	c.init(opts)
	return c
}

// init applies opts' defaults and makes the LRU.
func (c *answerCache) init(opts CacheOptions) {
	if opts.Size <= 0 {
		opts.Size = 4096
	}
	if opts.NegativeSize <= 0 {
		opts.NegativeSize = 1024
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.StaleFor <= 0 {
		opts.StaleFor = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	entries, err := lru.New[string, *cacheEntry](opts.Size)
	if err != nil {
		panic(err) // only for a size <= 0, excluded above
	}
	negative, err := lru.New[string, *cacheEntry](opts.NegativeSize)
	if err != nil {
		panic(err)
	}
	if opts.Breaker.Now == nil {
		opts.Breaker.Now = opts.Now
	}
	if opts.Breaker.Metrics == nil {
		opts.Breaker.Metrics = opts.Metrics
	}
	c.opts, c.entries, c.negative = opts, entries, negative
}

// newBreaker returns a breaker for service with the cache's options.
func (c *answerCache) newBreaker(service string) *Breaker {
	return NewBreaker(service, c.opts.Breaker)
}

// Len returns the number of cached answers, expired ones included.
func (c *answerCache) Len() int { return c.entries.Len() + c.negative.Len() }

// Purge forgets every cached answer.
func (c *answerCache) Purge() {
	c.entries.Purge()
	c.negative.Purge()
	c.opts.Changes.add()
}

// get returns key's entry, found or not-found, fresh if either is.
func (c *answerCache) get(key string, now time.Time) (*cacheEntry, bool) {
	found, okFound := c.entries.Get(key)
	if okFound && now.Before(found.expires) {
		return found, true
	}
	if neg, ok := c.negative.Get(key); ok && (now.Before(neg.expires) || !okFound) {
		return neg, true
	}
	return found, okFound
}

// peek is get without touching recency.
func (c *answerCache) peek(key string) (*cacheEntry, bool) {
	if e, ok := c.entries.Peek(key); ok && c.opts.Now().Before(e.expires) {
		return e, true
	}
	if e, ok := c.negative.Peek(key); ok && c.opts.Now().Before(e.expires) {
		return e, true
	}
	return nil, false
}

// store keeps a found answer or a not-found one, each in its own cache,
// and forgets the other kind for key.
func (c *answerCache) store(key string, e *cacheEntry) {
	if c.opts.Changes != nil {
		old, ok := c.entries.Peek(key)
		if !ok {
			old, ok = c.negative.Peek(key)
		}
		if ok && !sameAnswer(old, e) {
			c.opts.Changes.add()
		}
	}
	if e.err != nil {
		c.negative.Add(key, e)
		c.entries.Remove(key)
		return
	}
	c.entries.Add(key, e)
	c.negative.Remove(key)
}

// Changes counts the changes of cached answers (CacheOptions.Changes).
// The zero value is ready; a nil *Changes counts nothing and reads 0.
type Changes struct{ n atomic.Uint64 }

// Count returns the number of changes so far.
func (c *Changes) Count() uint64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// Add records a change of something verdicts depend on outside the views
// (serve's informers: a node class, NodePool or aws-auth changed).
func (c *Changes) Add() { c.add() }

func (c *Changes) add() {
	if c != nil {
		c.n.Add(1)
	}
}

// sameAnswer reports whether a and b hold the same answer: equal values,
// or errors that read the same.
func sameAnswer(a, b *cacheEntry) bool {
	if (a.err == nil) != (b.err == nil) {
		return false
	}
	if a.err != nil {
		return a.err.Error() == b.err.Error()
	}
	return reflect.DeepEqual(a.value, b.value)
}

// Role implements View.
func (c *Cached) Role(ctx context.Context, name string) (Role, error) {
	v, served, err := c.lookup(ctx, "GetRole", "role\x00"+name, func(ctx context.Context) (any, error) {
		return c.inner.Role(ctx, name)
	})
	if err != nil {
		return Role{}, err
	}
	r := v.(Role)
	r.Served = served
	return r, nil
}

// InstanceProfile implements View.
func (c *Cached) InstanceProfile(ctx context.Context, name string) (InstanceProfile, error) {
	v, served, err := c.lookup(ctx, "GetInstanceProfile", "profile\x00"+name, func(ctx context.Context) (any, error) {
		return c.inner.InstanceProfile(ctx, name)
	})
	if err != nil {
		return InstanceProfile{}, err
	}
	p := v.(InstanceProfile)
	p.Served = served
	return p, nil
}

// Decide implements View.
func (c *Cached) Decide(ctx context.Context, q Question) (Decision, error) {
	v, served, err := c.lookup(ctx, "SimulatePrincipalPolicy", "decide\x00"+q.CacheKey(), func(ctx context.Context) (any, error) {
		return c.inner.Decide(ctx, q)
	})
	if err != nil {
		return Decision{}, err
	}
	d := v.(Decision)
	d.Served = served
	return d, nil
}

// lookup answers key from the cache, or through one shared call of fetch.
// op names the IAM API in the UnavailableError of a caller whose own
// context ends first.
func (c *answerCache) lookup(ctx context.Context, op, key string, fetch func(context.Context) (any, error)) (any, Served, error) {
	return c.lookupVia(ctx, nil, op, key, fetch)
}

// lookupVia is lookup for an optional service behind br (EKS, EC2, SSM):
// while br remembers the service as unreachable the question is answered
// at once (stale if the cache has an answer), and the caller waits for
// the service at most ServiceShare of its remaining deadline.
func (c *answerCache) lookupVia(ctx context.Context, br *Breaker, op, key string, fetch func(context.Context) (any, error)) (any, Served, error) {
	now := c.opts.Now()
	old, ok := c.get(key, now)
	if ok && now.Before(old.expires) {
		c.opts.Metrics.cacheResult(CacheHit)
		return old.value, Served{}, old.err
	}
	if err := ctx.Err(); err != nil {
		// The caller's deadline has passed (an admission's later round,
		// its time spent on the first): no call is started that no one
		// would wait for, and that would still hold the key when the next
		// admission asks it.
		return c.staleOr(ok, old, &UnavailableError{Service: c.service, Op: op, Err: err})
	}
	probe := false // the service is remembered down and a probe is due
	if br != nil {
		if err := br.refuses(op); err != nil {
			return c.staleOr(ok, old, err)
		}
		probe = br.Open()
		var cancel context.CancelFunc
		ctx, cancel = serviceWait(ctx)
		defer cancel()
	}

	var leader atomic.Bool
	ch := c.group.DoChan(key, func() (any, error) {
		// A call for key that ended between our Get and DoChan has just
		// stored a fresh answer: use it rather than ask again.
		if e, ok := c.peek(key); ok {
			return e.value, e.err
		}
		if err := br.allow(op); err != nil {
			return nil, err
		}
		leader.Store(true)
		// The call outlives any one caller: a cancelled first caller must
		// not fail everyone waiting on the same key.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		if ok && old.err == nil {
			// Answered before: served first by a budget below. Not for a
			// not-found answer, which cost its asker nothing to cause.
			callCtx = WithPriority(callCtx)
		}
		v, err := fetch(callCtx)
		br.done(err)
		fetched := c.opts.Now()
		switch {
		case err == nil:
			c.store(key, &cacheEntry{value: v, fetched: fetched, expires: fetched.Add(c.opts.TTL)})
		case errors.Is(err, ErrNotFound):
			c.store(key, &cacheEntry{err: err, fetched: fetched, expires: fetched.Add(c.opts.NegativeTTL)})
		}
		return v, err
	})

	var v any
	var err error
	wait := ctx.Done()
	if probe {
		// The probe runs for the next admissions; this one does not
		// wait for a service that failed a moment ago.
		c.opts.Metrics.shortCircuit(br.service)
		closed := make(chan struct{})
		close(closed)
		wait = closed
	}
	select {
	case res := <-ch:
		v, err = res.Val, res.Err
	case <-wait:
		err = &UnavailableError{Service: c.service, Op: op, Err: ctx.Err()}
		if probe {
			err = &UnavailableError{Service: br.service, Op: op, Err: ErrServiceDown}
		}
	}
	if leader.Load() {
		c.opts.Metrics.cacheResult(CacheMiss)
	} else {
		c.opts.Metrics.cacheResult(CacheCoalesced)
	}
	if err == nil || !IsUnavailable(err) {
		return v, Served{}, err
	}
	return c.staleOr(ok, old, err)
}

// staleOr serves old, marked stale, for a question the service could not
// answer (err), when old is a found answer young enough; else err.
func (c *answerCache) staleOr(ok bool, old *cacheEntry, err error) (any, Served, error) {
	if ok && old.err == nil {
		now := c.opts.Now()
		if now.Before(old.expires.Add(c.opts.StaleFor)) {
			c.opts.Metrics.cacheResult(CacheStale)
			return old.value, Served{Stale: true, Age: now.Sub(old.fetched)}, nil
		}
	}
	return nil, Served{}, err
}
