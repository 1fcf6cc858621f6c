package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// countingView is a View that counts inner calls per key, can hold every
// call until release is closed, and answers from its fields.
type countingView struct {
	mu       sync.Mutex
	calls    map[string]int
	total    atomic.Int64
	release  chan struct{} // nil: answer at once
	started  chan struct{} // receives one value per call start, if non-nil
	err      error         // returned by every call when set
	missing  map[string]bool
	allowFor map[string]bool // Decide: allowed when the resource is listed
}

func newCountingView() *countingView {
	return &countingView{calls: map[string]int{}, missing: map[string]bool{}, allowFor: map[string]bool{}}
}

func (v *countingView) enter(ctx context.Context, key string) error {
	v.mu.Lock()
	v.calls[key]++
	release, started, err := v.release, v.started, v.err
	v.mu.Unlock()
	v.total.Add(1)
	if started != nil {
		started <- struct{}{}
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return &UnavailableError{Op: "fake", Err: ctx.Err()}
		}
	}
	return err
}

func (v *countingView) setErr(err error) {
	v.mu.Lock()
	v.err = err
	v.mu.Unlock()
}

func (v *countingView) count(key string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[key]
}

func (v *countingView) Role(ctx context.Context, name string) (Role, error) {
	if err := v.enter(ctx, "role/"+name); err != nil {
		return Role{}, err
	}
	if v.missing[name] {
		return Role{}, &NotFoundError{Kind: "role", Name: name}
	}
	return Role{Name: name, Path: "/", ARN: "arn:aws:iam::111122223333:role/" + name}, nil
}

func (v *countingView) InstanceProfile(ctx context.Context, name string) (InstanceProfile, error) {
	if err := v.enter(ctx, "profile/"+name); err != nil {
		return InstanceProfile{}, err
	}
	if v.missing[name] {
		return InstanceProfile{}, &NotFoundError{Kind: "instance profile", Name: name}
	}
	return InstanceProfile{Name: name, Path: "/"}, nil
}

func (v *countingView) Decide(ctx context.Context, q Question) (Decision, error) {
	if err := v.enter(ctx, "decide/"+q.Key()); err != nil {
		return Decision{}, err
	}
	return Decision{Allowed: v.allowFor[q.Resource]}, nil
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

var passRoleQ = Question{
	Principal: "arn:aws:iam::111122223333:role/KarpenterControllerRole",
	Action:    "iam:PassRole",
	Resource:  "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
	Context:   map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}},
}

func TestCachedCoalescesConcurrentIdenticalMisses(t *testing.T) {
	inner := newCountingView()
	inner.release = make(chan struct{})
	inner.started = make(chan struct{}, 10)
	inner.allowFor[passRoleQ.Resource] = true
	m := NewMetrics()
	c := NewCached(inner, CacheOptions{Metrics: m})

	const n = 100
	var wg sync.WaitGroup
	decisions := make([]Decision, n)
	roles := make([]Role, n)
	errs := make([]error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			decisions[i], errs[i] = c.Decide(context.Background(), passRoleQ)
		}()
		go func() {
			defer wg.Done()
			roles[i], errs[n+i] = c.Role(context.Background(), "KarpenterNodeRole-demo")
		}()
	}
	// Hold both inner calls until they have started, so that later
	// goroutines find them in flight (or, once released, the cached answer).
	<-inner.started
	<-inner.started
	close(inner.release)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		if !decisions[i].Allowed {
			t.Fatalf("decision %d = %+v, want allowed", i, decisions[i])
		}
		if roles[i].Name != "KarpenterNodeRole-demo" {
			t.Fatalf("role %d = %+v", i, roles[i])
		}
	}
	if got := inner.count("decide/" + passRoleQ.Key()); got != 1 {
		t.Errorf("inner Decide calls = %d, want 1", got)
	}
	if got := inner.count("role/KarpenterNodeRole-demo"); got != 1 {
		t.Errorf("inner Role calls = %d, want 1", got)
	}
	if got := counterValue(m.Cache.WithLabelValues(CacheMiss)); got != 2 {
		t.Errorf("cache misses = %v, want 2", got)
	}
	if got := counterValue(m.Cache.WithLabelValues(CacheCoalesced)) + counterValue(m.Cache.WithLabelValues(CacheHit)); got != 2*n-2 {
		t.Errorf("coalesced+hit = %v, want %d", got, 2*n-2)
	}
}

func TestCachedDistinctQuestionsCallOnceEach(t *testing.T) {
	inner := newCountingView()
	c := NewCached(inner, CacheOptions{})
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			q := passRoleQ
			q.Resource = fmt.Sprintf("arn:aws:iam::111122223333:role/Node%d", i)
			if _, err := c.Decide(ctx, q); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Role(ctx, fmt.Sprintf("Node%d", i)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.InstanceProfile(ctx, fmt.Sprintf("Node%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := inner.total.Load(); got != 30 {
		t.Errorf("inner calls = %d, want 30 (one per distinct question)", got)
	}
	// A role and a profile of the same name are different keys.
	if got := inner.count("profile/Node3"); got != 1 {
		t.Errorf("profile calls = %d, want 1", got)
	}
	// Context is part of a question's identity.
	q := passRoleQ
	q.Context = map[string][]string{"iam:PassedToService": {"eks.amazonaws.com"}}
	if _, err := c.Decide(ctx, q); err != nil {
		t.Fatal(err)
	}
	if got := inner.total.Load(); got != 31 {
		t.Errorf("inner calls after a different context = %d, want 31", got)
	}
}

func TestCachedTTLExpiryRefetches(t *testing.T) {
	inner := newCountingView()
	clock := newClock()
	m := NewMetrics()
	c := NewCached(inner, CacheOptions{TTL: time.Minute, Now: clock.Now, Metrics: m})
	ctx := context.Background()

	mustRole(t, c, "A")
	clock.Advance(59 * time.Second)
	r := mustRole(t, c, "A")
	if r.Stale {
		t.Errorf("fresh hit marked stale: %+v", r.Served)
	}
	if got := inner.count("role/A"); got != 1 {
		t.Fatalf("calls within TTL = %d, want 1", got)
	}
	clock.Advance(2 * time.Second)
	mustRole(t, c, "A")
	if got := inner.count("role/A"); got != 2 {
		t.Fatalf("calls after TTL = %d, want 2", got)
	}
	if _, err := c.Decide(ctx, passRoleQ); err != nil {
		t.Fatal(err)
	}
	if hits, misses := counterValue(m.Cache.WithLabelValues(CacheHit)), counterValue(m.Cache.WithLabelValues(CacheMiss)); hits != 1 || misses != 3 {
		t.Errorf("hits, misses = %v, %v; want 1, 3", hits, misses)
	}
}

func TestCachedNegativeTTLIsShorter(t *testing.T) {
	inner := newCountingView()
	inner.missing["Gone"] = true
	clock := newClock()
	c := NewCached(inner, CacheOptions{TTL: 5 * time.Minute, NegativeTTL: 30 * time.Second, Now: clock.Now})
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		_, err := c.Role(ctx, "Gone")
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Name != "Gone" {
			t.Fatalf("Role(Gone) error = %v, want NotFoundError", err)
		}
	}
	if got := inner.count("role/Gone"); got != 1 {
		t.Fatalf("not-found lookups within NegativeTTL = %d inner calls, want 1", got)
	}
	mustRole(t, c, "Here")
	clock.Advance(31 * time.Second)
	if _, err := c.Role(ctx, "Gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Role(Gone) = %v", err)
	}
	if got := inner.count("role/Gone"); got != 2 {
		t.Errorf("not-found after NegativeTTL: %d inner calls, want 2", got)
	}
	mustRole(t, c, "Here")
	if got := inner.count("role/Here"); got != 1 {
		t.Errorf("found role within TTL: %d inner calls, want 1", got)
	}
	// The role appears: the next lookup after NegativeTTL sees it.
	delete(inner.missing, "Gone")
	clock.Advance(31 * time.Second)
	if r := mustRole(t, c, "Gone"); r.Name != "Gone" {
		t.Errorf("Role(Gone) = %+v", r)
	}
}

func TestCachedServesStaleWhenInnerUnavailable(t *testing.T) {
	inner := newCountingView()
	inner.allowFor[passRoleQ.Resource] = true
	clock := newClock()
	m := NewMetrics()
	c := NewCached(inner, CacheOptions{TTL: time.Minute, StaleFor: time.Hour, Now: clock.Now, Metrics: m})
	ctx := context.Background()

	mustRole(t, c, "A")
	if _, err := c.Decide(ctx, passRoleQ); err != nil {
		t.Fatal(err)
	}
	inner.setErr(&UnavailableError{Op: "GetRole", Err: errors.New("Throttling: Rate exceeded")})
	clock.Advance(10 * time.Minute)

	r, err := c.Role(ctx, "A")
	if err != nil {
		t.Fatalf("Role with IAM down and a stale entry: %v", err)
	}
	if !r.Stale || r.Age != 10*time.Minute || r.Name != "A" {
		t.Errorf("stale role = %+v, want Stale with Age 10m", r)
	}
	d, err := c.Decide(ctx, passRoleQ)
	if err != nil || !d.Allowed || !d.Stale || d.Age != 10*time.Minute {
		t.Errorf("stale decision = %+v, %v; want allowed, Stale, Age 10m", d, err)
	}
	if got := counterValue(m.Cache.WithLabelValues(CacheStale)); got != 2 {
		t.Errorf("stale serves = %v, want 2", got)
	}
	// Each stale serve still tried IAM first.
	if got := inner.count("role/A"); got != 2 {
		t.Errorf("inner Role calls = %d, want 2", got)
	}

	// Past StaleFor the entry is no longer served.
	clock.Advance(time.Hour)
	if _, err := c.Role(ctx, "A"); !IsUnavailable(err) {
		t.Errorf("Role past StaleFor = %v, want UnavailableError", err)
	}

	// IAM recovers: a fresh answer, not stale.
	inner.setErr(nil)
	if r := mustRole(t, c, "A"); r.Stale {
		t.Errorf("answer after recovery marked stale: %+v", r)
	}
}

func TestCachedUnavailableWhenNothingCached(t *testing.T) {
	inner := newCountingView()
	inner.setErr(&UnavailableError{Op: "GetRole", Err: errors.New("ServiceFailure")})
	c := NewCached(inner, CacheOptions{})
	ctx := context.Background()

	for i := 0; i < 2; i++ {
		_, err := c.Role(ctx, "A")
		var u *UnavailableError
		if !errors.As(err, &u) || u.Op != "GetRole" {
			t.Fatalf("Role = %v, want the inner UnavailableError", err)
		}
	}
	if got := inner.count("role/A"); got != 2 {
		t.Errorf("inner calls = %d, want 2 (unavailable answers are not cached)", got)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after unavailable answers, want 0", c.Len())
	}
}

func TestCachedStaleNotFoundIsNotServed(t *testing.T) {
	inner := newCountingView()
	inner.missing["Gone"] = true
	clock := newClock()
	c := NewCached(inner, CacheOptions{Now: clock.Now})
	if _, err := c.Role(context.Background(), "Gone"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	inner.setErr(&UnavailableError{Op: "GetRole", Err: errors.New("down")})
	clock.Advance(time.Minute)
	if _, err := c.Role(context.Background(), "Gone"); !IsUnavailable(err) {
		t.Errorf("expired not-found with IAM down = %v, want UnavailableError", err)
	}
}

func TestCachedSizeBound(t *testing.T) {
	inner := newCountingView()
	c := NewCached(inner, CacheOptions{Size: 16})
	for i := 0; i < 160; i++ {
		mustRole(t, c, fmt.Sprintf("R%d", i))
		if c.Len() > 16 {
			t.Fatalf("Len = %d after %d keys, want <= 16", c.Len(), i+1)
		}
	}
	// The most recent key is still cached; the first was evicted.
	mustRole(t, c, "R159")
	mustRole(t, c, "R0")
	if inner.count("role/R159") != 1 || inner.count("role/R0") != 2 {
		t.Errorf("calls R159=%d R0=%d, want 1 and 2", inner.count("role/R159"), inner.count("role/R0"))
	}
	c.Purge()
	if c.Len() != 0 {
		t.Errorf("Len after Purge = %d", c.Len())
	}
}

func TestCachedCallerCancellationDoesNotPoisonSharedCall(t *testing.T) {
	inner := newCountingView()
	inner.release = make(chan struct{})
	inner.started = make(chan struct{}, 1)
	c := NewCached(inner, CacheOptions{Timeout: time.Minute})

	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.Role(first, "A")
		firstErr <- err
	}()
	<-inner.started

	second := make(chan Role, 1)
	secondErr := make(chan error, 1)
	go func() {
		r, err := c.Role(context.Background(), "A")
		second <- r
		secondErr <- err
	}()

	cancel()
	if err := <-firstErr; !IsUnavailable(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want UnavailableError wrapping context.Canceled", err)
	}
	close(inner.release)
	if err := <-secondErr; err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if r := <-second; r.Name != "A" {
		t.Errorf("second caller got %+v", r)
	}
	if got := inner.count("role/A"); got != 1 {
		t.Errorf("inner calls = %d, want 1", got)
	}
	// The shared call's answer was cached for everyone.
	mustRole(t, c, "A")
	if got := inner.count("role/A"); got != 1 {
		t.Errorf("inner calls after the cached answer = %d, want 1", got)
	}
}

func TestCachedTimeoutBoundsInnerCall(t *testing.T) {
	inner := newCountingView()
	inner.release = make(chan struct{}) // never released: the call hangs
	c := NewCached(inner, CacheOptions{Timeout: 50 * time.Millisecond})
	_, err := c.Role(context.Background(), "A")
	if !IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung inner call = %v, want UnavailableError wrapping DeadlineExceeded", err)
	}
}

func mustRole(t *testing.T, v View, name string) Role {
	t.Helper()
	r, err := v.Role(context.Background(), name)
	if err != nil {
		t.Fatalf("Role(%s): %v", name, err)
	}
	return r
}

// counterValue reads a counter (prometheus' testutil would pull in another
// module for the same one line).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestCachedNotFoundFloodKeepsFoundAnswers: names that do not exist, far
// more than both caches hold, evict only each other; the found answers,
// expired and then with IAM down, are still served (stale).
func TestCachedNotFoundFloodKeepsFoundAnswers(t *testing.T) {
	inner := newCountingView()
	clock := newClock()
	c := NewCached(inner, CacheOptions{Size: 16, NegativeSize: 8, Now: clock.Now})
	for i := range 10 {
		mustRole(t, c, fmt.Sprintf("Exists%d", i))
	}
	for i := range 1000 {
		name := fmt.Sprintf("Missing%d", i)
		inner.missing[name] = true
		if _, err := c.Role(context.Background(), name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v, want not found", name, err)
		}
	}
	if got := c.Len(); got != 10+8 {
		t.Errorf("Len = %d, want the 10 found answers and 8 not-found ones", got)
	}
	clock.Advance(time.Hour)
	inner.setErr(&UnavailableError{Op: "GetRole", Err: errors.New("down")})
	for i := range 10 {
		r, err := c.Role(context.Background(), fmt.Sprintf("Exists%d", i))
		if err != nil || !r.Stale {
			t.Errorf("Exists%d after the flood, IAM down: %+v, %v; want the stale answer", i, r, err)
		}
	}
}

// TestCachedFoundReplacesNotFound: a role created after a not-found answer
// is found once that answer expires, and only one answer is kept per key.
func TestCachedFoundReplacesNotFound(t *testing.T) {
	inner := newCountingView()
	inner.missing["Late"] = true
	clock := newClock()
	c := NewCached(inner, CacheOptions{Now: clock.Now})
	if _, err := c.Role(context.Background(), "Late"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	delete(inner.missing, "Late")
	clock.Advance(time.Minute)
	mustRole(t, c, "Late")
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
	mustRole(t, c, "Late")
	if got := inner.count("role/Late"); got != 2 {
		t.Errorf("inner calls = %d, want 2", got)
	}
}

// priorityView records whether each call came with WithPriority.
type priorityView struct {
	countingView
	prio map[string]bool
}

func (v *priorityView) Role(ctx context.Context, name string) (Role, error) {
	v.mu.Lock()
	v.prio[name] = isPriority(ctx)
	v.mu.Unlock()
	return v.countingView.Role(ctx, name)
}

// TestCachedRefreshIsPriority: a question answered before is asked again
// with priority; a new one, or one only answered "not found", is not.
func TestCachedRefreshIsPriority(t *testing.T) {
	inner := &priorityView{countingView: *newCountingView(), prio: map[string]bool{}}
	inner.missing["Missing"] = true
	clock := newClock()
	c := NewCached(inner, CacheOptions{Now: clock.Now})
	mustRole(t, c, "Known")
	_, _ = c.Role(context.Background(), "Missing")
	if inner.prio["Known"] || inner.prio["Missing"] {
		t.Errorf("first questions asked with priority: %v", inner.prio)
	}
	clock.Advance(time.Hour)
	mustRole(t, c, "Known")
	_, _ = c.Role(context.Background(), "Missing")
	if !inner.prio["Known"] {
		t.Errorf("refresh of a found answer asked without priority")
	}
	if inner.prio["Missing"] {
		t.Errorf("refresh of a not-found answer asked with priority")
	}
}

// TestCachedAlikeQuestionsShareAnAnswer: questions that differ only in a
// resource filed under the same Alike share one cache entry (one inner
// call, and an answer during an outage); IAM is asked about the first
// one's own resource; a question without Alike keeps its own.
func TestCachedAlikeQuestionsShareAnAnswer(t *testing.T) {
	inner := newCountingView()
	const (
		alike = "arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/00000000-0000-0000-0000-000000000000/demo_1"
		first = "arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/7f1f7c1e-0000-0000-0000-000000000001/demo_1"
		again = "arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/7f1f7c1e-0000-0000-0000-000000000002/demo_1"
	)
	inner.allowFor[first] = true
	c := NewCached(inner, CacheOptions{TTL: time.Minute, StaleFor: time.Hour})
	ctx := context.Background()
	q := Question{Principal: passRoleQ.Principal, Action: "iam:CreateInstanceProfile", Resource: first, Alike: alike}
	if d, err := c.Decide(ctx, q); err != nil || !d.Allowed {
		t.Fatalf("first: %+v, %v", d, err)
	}
	inner.setErr(&UnavailableError{Op: "SimulatePrincipalPolicy", Err: errors.New("ServiceFailure")})
	q2 := q
	q2.Resource = again
	for name, decide := range map[string]func() ([]Decision, []error){
		"Decide": func() ([]Decision, []error) {
			d, err := c.Decide(ctx, q2)
			return []Decision{d}, []error{err}
		},
		"DecideAll": func() ([]Decision, []error) { return c.DecideAll(ctx, []Question{q2, q2}) },
	} {
		ds, errs := decide()
		for i := range ds {
			if errs[i] != nil || !ds[i].Allowed {
				t.Errorf("%s: the same request for another UID during an outage: %+v, %v; want the shared answer", name, ds[i], errs[i])
			}
		}
	}
	if got := inner.total.Load(); got != 1 {
		t.Errorf("inner calls = %d, want 1 (the alike question was answered from the cache)", got)
	}
	own := q2
	own.Alike = ""
	if _, err := c.Decide(ctx, own); !IsUnavailable(err) {
		t.Errorf("a question without Alike used another's answer: %v", err)
	}
}

// TestCachedCallerPastDeadlineStartsNoCall: a caller whose deadline has
// already passed (an admission's later round) gets the stale answer, or
// IAMUnavailable, without a call to IAM: such a call would outlive it, and
// the next caller of the same key, IAM healthy again, would join it and
// fail with it.
func TestCachedCallerPastDeadlineStartsNoCall(t *testing.T) {
	inner := newCountingView()
	inner.allowFor[passRoleQ.Resource] = true
	clock := newClock()
	c := NewCached(inner, CacheOptions{TTL: time.Minute, StaleFor: time.Hour, Now: clock.Now})
	other := passRoleQ
	other.Resource = "arn:aws:iam::111122223333:role/OtherRole"
	if ds, errs := c.DecideAll(context.Background(), []Question{passRoleQ, other}); errs[0] != nil || errs[1] != nil || !ds[0].Allowed {
		t.Fatalf("healthy: %+v %v", ds, errs)
	}
	mustRole(t, c, "A")
	clock.Advance(10 * time.Minute)
	before := inner.total.Load()
	inner.mu.Lock()
	inner.started = make(chan struct{}, 16)
	inner.mu.Unlock()

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := c.Role(done, "A"); err != nil || !r.Stale {
		t.Errorf("Role past the deadline = %+v, %v; want the stale answer", r, err)
	}
	if _, err := c.Role(done, "Never"); !IsUnavailable(err) {
		t.Errorf("Role past the deadline, nothing cached = %v; want UnavailableError", err)
	}
	ds, errs := c.DecideAll(done, []Question{passRoleQ, other})
	if errs[0] != nil || errs[1] != nil || !ds[0].Stale || !ds[1].Stale {
		t.Errorf("DecideAll past the deadline = %+v, %v; want both stale", ds, errs)
	}
	// A call would start on a goroutine of its own: give it the time.
	select {
	case <-inner.started:
		t.Errorf("a caller past its deadline started a call to IAM")
	case <-time.After(200 * time.Millisecond):
	}
	if got := inner.total.Load() - before; got != 0 {
		t.Errorf("callers past their deadline made %d calls to IAM, want 0", got)
	}
	inner.mu.Lock()
	inner.started = nil
	inner.mu.Unlock()
	// A caller with time left refreshes.
	if r := mustRole(t, c, "A"); r.Stale {
		t.Errorf("a caller with time left got a stale answer: %+v", r)
	}
}
