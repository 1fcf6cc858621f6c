package authz

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// ErrBudgetSpent is the error inside the *UnavailableError of a question
// refused because the IAM call budget was spent.
var ErrBudgetSpent = errors.New("IAM call budget spent")

// BudgetOptions tunes a Budgeted view.
type BudgetOptions struct {
	// Rate is the number of AWS calls per second the budget refills
	// (default 5): well below IAM's own throttling, which is per account
	// and shared with everything else calling IAM (Karpenter included).
	Rate float64
	// Burst is how many calls the budget holds when full (default 40: a
	// few new classes at once).
	Burst int
	// Reserve is the part of Burst only priority questions may use
	// (default Burst/4): questions about objects the cluster already has,
	// or asked and answered before.
	Reserve int
	// Metrics counts calls spent and questions refused; nil counts nothing.
	Metrics *Metrics
}

// Budgeted is a View in front of another that calls AWS (Live), bounding
// how fast questions reach AWS with a token bucket, so that no caller,
// however many requests it sends, can make this webhook throttle the
// account's IAM. Put it below the cache: answers the cache holds cost
// nothing.
//
// A priority question (WithPriority: about an object the cluster already
// has, or asked before; Cached marks the latter) may use the whole bucket
// and waits for a token as long as its context allows. Any other question
// gets a token only while more than Reserve are left, and never waits:
// when the budget is spent it fails at once with an *UnavailableError
// wrapping ErrBudgetSpent, which the rules report as "could not check"
// (--on-iam-error), within the admission's timeout and with nothing
// queued.
type Budgeted struct {
	inner   View
	limiter *rate.Limiter
	reserve float64
	metrics *Metrics
}

var _ View = (*Budgeted)(nil)

// NewBudgeted returns a budget in front of inner.
func NewBudgeted(inner View, opts BudgetOptions) *Budgeted {
	if opts.Rate <= 0 {
		opts.Rate = 5
	}
	if opts.Burst <= 0 {
		opts.Burst = 40
	}
	if opts.Reserve <= 0 || opts.Reserve >= opts.Burst {
		opts.Reserve = opts.Burst / 4
	}
	return &Budgeted{inner: inner, limiter: rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst), reserve: float64(opts.Reserve), metrics: opts.Metrics}
}

type priorityKey struct{}

// WithPriority marks the questions asked with ctx as priority questions
// for a Budgeted view: about an object the cluster already has.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

func isPriority(ctx context.Context) bool {
	p, _ := ctx.Value(priorityKey{}).(bool)
	return p
}

// spend takes one call from the budget for a question to op, or says why
// it cannot.
func (b *Budgeted) spend(ctx context.Context, op string) error {
	prio := isPriority(ctx)
	label := "new"
	if prio {
		label = "priority"
	}
	if prio {
		// Waits only as long as ctx allows: rate.Limiter refuses at once a
		// wait that would outlast the deadline.
		if err := b.limiter.Wait(ctx); err != nil {
			b.metrics.budgetRefused(label)
			return &UnavailableError{Op: op, Err: fmt.Errorf("%w (waiting for a call: %v)", ErrBudgetSpent, err)}
		}
		b.metrics.budgetSpent(label)
		return nil
	}
	now := time.Now()
	// Allow after the check may race another caller below the reserve by
	// a token; the reserve is a preference, the bucket is the bound.
	if b.limiter.TokensAt(now) < b.reserve+1 || !b.limiter.AllowN(now, 1) {
		b.metrics.budgetRefused(label)
		return &UnavailableError{Op: op, Err: ErrBudgetSpent}
	}
	b.metrics.budgetSpent(label)
	return nil
}

// Role implements View.
func (b *Budgeted) Role(ctx context.Context, name string) (Role, error) {
	if err := b.spend(ctx, "GetRole"); err != nil {
		return Role{}, err
	}
	return b.inner.Role(ctx, name)
}

// InstanceProfile implements View.
func (b *Budgeted) InstanceProfile(ctx context.Context, name string) (InstanceProfile, error) {
	if err := b.spend(ctx, "GetInstanceProfile"); err != nil {
		return InstanceProfile{}, err
	}
	return b.inner.InstanceProfile(ctx, name)
}

// Decide implements View.
func (b *Budgeted) Decide(ctx context.Context, q Question) (Decision, error) {
	if err := b.spend(ctx, "SimulatePrincipalPolicy"); err != nil {
		return Decision{}, err
	}
	return b.inner.Decide(ctx, q)
}
