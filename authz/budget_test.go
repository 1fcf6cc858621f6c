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
