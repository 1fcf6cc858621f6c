package authz

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The budget tests use a refill rate so slow (one call per 1,000 s) that
// the bucket holds exactly what the test put in: no timing.
const frozenRate = 0.001

func TestBudgetRefusesNewQuestionsBeyondTheShareOutsideTheReserve(t *testing.T) {
	inner := newCountingView()
	m := NewMetrics()
	b := NewBudgeted(inner, BudgetOptions{Rate: frozenRate, Burst: 4, Reserve: 1, Metrics: m})
	ctx := context.Background()
	for i := range 3 {
		if _, err := b.Role(ctx, "R"); err != nil {
			t.Fatalf("call %d within the budget: %v", i+1, err)
		}
	}
	// Past the share outside the reserve, a new question waits for a
	// token only within its deadline: the next one is 1,000 s away.
	dl, cancelDL := context.WithTimeout(ctx, time.Minute)
	defer cancelDL()
	_, err := b.Role(dl, "R")
	if !IsUnavailable(err) || !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("new question past the budget: %v, want an UnavailableError wrapping ErrBudgetSpent", err)
	}
	if inner.total.Load() != 3 {
		t.Errorf("inner calls = %d, want 3", inner.total.Load())
	}
	// The reserve is the priority questions'.
	if _, err := b.Decide(WithPriority(ctx), passRoleQ); err != nil {
		t.Errorf("priority question with the reserve left: %v", err)
	}
	// Spent: a priority question waits only as long as its context allows,
	// and here the next token is 1,000 s away.
	dctx, cancel := context.WithTimeout(WithPriority(ctx), time.Minute)
	defer cancel()
	if _, err := b.InstanceProfile(dctx, "P"); !errors.Is(err, ErrBudgetSpent) {
		t.Errorf("priority question, budget spent: %v, want ErrBudgetSpent at once", err)
	}
	if got := inner.total.Load(); got != 4 {
		t.Errorf("inner calls = %d, want 4", got)
	}
	if got := counterValue(m.BudgetSpent.WithLabelValues("new")); got != 3 {
		t.Errorf("spent{new} = %v, want 3", got)
	}
	if got := counterValue(m.BudgetSpent.WithLabelValues("priority")); got != 1 {
		t.Errorf("spent{priority} = %v, want 1", got)
	}
	if got := counterValue(m.BudgetRefused.WithLabelValues("new")); got != 1 {
		t.Errorf("refused{new} = %v, want 1", got)
	}
	if got := counterValue(m.BudgetRefused.WithLabelValues("priority")); got != 1 {
		t.Errorf("refused{priority} = %v, want 1", got)
	}
}

// TestBudgetRefusalIsNotCached: behind the cache, a refused question is
// "could not check", never cached, and a cached answer costs no budget.
func TestBudgetRefusalIsNotCached(t *testing.T) {
	inner := newCountingView()
	b := NewBudgeted(inner, BudgetOptions{Rate: frozenRate, Burst: 2, Reserve: 1})
	c := NewCached(b, CacheOptions{})
	mustRole(t, c, "A")
	for range 10 {
		mustRole(t, c, "A")
	}
	if _, err := c.Role(context.Background(), "B"); !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("B past the budget: %v", err)
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1: a refusal is not an answer", c.Len())
	}
	var u *UnavailableError
	_, err := c.Role(context.Background(), "B")
	if !errors.As(err, &u) || u.Summary() != "IAM call budget spent" {
		t.Errorf("refusal summary: %v", err)
	}
}

// batchCounter is a Batcher that counts its DecideAll calls and allows
// everything.
type batchCounter struct {
	countingView
	batches [][]Question
}

func (b *batchCounter) DecideAll(_ context.Context, qs []Question) ([]Decision, []error) {
	b.batches = append(b.batches, qs)
	ds := make([]Decision, len(qs))
	for i := range ds {
		ds[i].Allowed = true
	}
	return ds, make([]error, len(qs))
}

// A batch costs the budget one token per AWS call it makes (one per
// BatchKey group), not one per question, and reaches the view below as a
// batch: the budget must not undo batching.
func TestBudgetBatchCostsOneTokenPerCall(t *testing.T) {
	inner := &batchCounter{countingView: *newCountingView()}
	b := NewBudgeted(inner, BudgetOptions{Rate: frozenRate, Burst: 2, Reserve: 1})
	launch := func(action, resource string) Question {
		return Question{Principal: passRoleQ.Principal, Action: action, Resource: resource,
			Context: map[string][]string{"aws:RequestTag/karpenter.sh/nodepool": {"default"}}}
	}
	qs := []Question{
		launch("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*"),
		launch("ec2:CreateFleet", "arn:aws:ec2:us-west-2:111122223333:fleet/*"),
		launch("ec2:CreateLaunchTemplate", "arn:aws:ec2:us-west-2:111122223333:launch-template/*"),
	}
	ds, errs := b.DecideAll(context.Background(), qs)
	for i := range qs {
		if errs[i] != nil || !ds[i].Allowed {
			t.Fatalf("question %d: %+v, %v", i, ds[i], errs[i])
		}
	}
	if len(inner.batches) != 1 || len(inner.batches[0]) != 3 {
		t.Fatalf("inner batches %v, want one batch of the 3 questions", inner.batches)
	}
	// One token spent of two, the other is the reserve: a new question now
	// waits for the reserve to refill, 1,000 s away, and is refused.
	dl, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, errs := b.DecideAll(dl, qs); !errors.Is(errs[0], ErrBudgetSpent) || !errors.Is(errs[2], ErrBudgetSpent) {
		t.Errorf("second batch past the share outside the reserve: %v, want every question refused with ErrBudgetSpent", errs)
	}
	// Two groups (different contexts) are two calls: two tokens.
	b2 := NewBudgeted(&batchCounter{countingView: *newCountingView()}, BudgetOptions{Rate: frozenRate, Burst: 2, Reserve: 1})
	other := passRoleQ
	_, errs = b2.DecideAll(WithPriority(context.Background()), []Question{qs[0], other})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("two groups within a burst of 2 (priority): %v", errs)
	}
	if got := b2.limiter.Tokens(); got >= 1 {
		t.Errorf("tokens left after two groups = %.2f, want < 1 (one token per call)", got)
	}
}
