package authz

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrBudgetSpent is the error inside the *UnavailableError of a question
// refused because the IAM call budget was spent.
var ErrBudgetSpent = errors.New("IAM call budget spent")

// BudgetOptions tunes a Budgeted view.
type BudgetOptions struct {
	// Rate is the number of AWS calls per second the budget refills
	// (default 10): below IAM's own throttling, which is per account and
	// shared with everything else calling IAM (Karpenter included).
	Rate float64
	// Burst is how many calls the budget holds when full (default 100:
	// about nine new classes applied at once, at some eight calls each).
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
// takes a token at once only while more than Reserve are left; otherwise
// it waits for one as long as its context allows, but only while fewer
// than Reserve others wait. When no token can come in time, or too many
// wait, it fails at once with an *UnavailableError wrapping ErrBudgetSpent,
// which the rules report as "could not check" (--on-iam-error): within the
// admission's timeout, and with at most Reserve new questions queued.
type Budgeted struct {
	inner   View
	limiter *rate.Limiter
	reserve float64
	metrics *Metrics
	waiting atomic.Int64 // new questions waiting for a token
	// service is "IAM", or "EC2" for BudgetedEC2's budget.
	service string
	// refunds are tokens given back by calls that reached no one (a
	// refused or dropped connection, a timeout), taken before the
	// limiter's; at most the burst.
	refunds atomic.Int64
	burst   int64
}

var (
	_ View    = (*Budgeted)(nil)
	_ Batcher = (*Budgeted)(nil)
)

// NewBudgeted returns a budget in front of inner.
func NewBudgeted(inner View, opts BudgetOptions) *Budgeted {
	if opts.Rate <= 0 {
		opts.Rate = 10
	}
	if opts.Burst <= 0 {
		opts.Burst = 100
	}
	if opts.Reserve <= 0 || opts.Reserve >= opts.Burst {
		opts.Reserve = opts.Burst / 4
	}
	return &Budgeted{inner: inner, limiter: rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst), reserve: float64(opts.Reserve), metrics: opts.Metrics,
		service: "IAM", burst: int64(opts.Burst)}
}

// refund gives back the token of a call that reached no one: a service
// that cannot be reached costs the account nothing, and must not leave
// the next admissions waiting for tokens.
func (b *Budgeted) refund() {
	for {
		n := b.refunds.Load()
		if n >= b.burst {
			return
		}
		if b.refunds.CompareAndSwap(n, n+1) {
			b.metrics.budget(b.service, "refunded")
			return
		}
	}
}

// takeRefund takes a refunded token, if any.
func (b *Budgeted) takeRefund() bool {
	for {
		n := b.refunds.Load()
		if n <= 0 {
			return false
		}
		if b.refunds.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// spent and refused record one outcome of spend; IAM's keep their own
// counters by priority too.
func (b *Budgeted) spent(label string, start time.Time) {
	if b.service == "IAM" {
		b.metrics.budgetSpent(label)
	}
	b.metrics.budget(b.service, "spent")
	b.metrics.budgetWait(b.service, time.Since(start))
}

func (b *Budgeted) refused(label string, start time.Time) {
	if b.service == "IAM" {
		b.metrics.budgetRefused(label)
	}
	b.metrics.budget(b.service, "refused")
	b.metrics.budgetWait(b.service, time.Since(start))
}

type priorityKey struct{}

// WithPriority marks the questions asked with ctx as priority questions
// for a Budgeted view: about an object the cluster already has.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

// IsPriority reports whether ctx was marked by WithPriority.
func IsPriority(ctx context.Context) bool { return isPriority(ctx) }

func isPriority(ctx context.Context) bool {
	p, _ := ctx.Value(priorityKey{}).(bool)
	return p
}

// spend takes one call from the budget for a question to op, or says why
// it cannot.
func (b *Budgeted) spend(ctx context.Context, op string) error {
	start := time.Now()
	if b.takeRefund() {
		b.metrics.budget(b.service, "spent")
		return nil
	}
	prio := isPriority(ctx)
	label := "new"
	if prio {
		label = "priority"
	}
	if _, ok := ctx.Deadline(); !ok {
		// No deadline to bound a wait by: take a token or none.
		if b.limiter.Allow() {
			b.spent(label, start)
			return nil
		}
		b.refused(label, start)
		return &UnavailableError{Op: op, Err: ErrBudgetSpent}
	}
	now := time.Now()
	// AllowN after the check may race another caller below the reserve by
	// a token; the reserve is a preference, the bucket is the bound.
	if !prio && b.limiter.TokensAt(now) >= b.reserve+1 && b.limiter.AllowN(now, 1) {
		b.spent(label, start)
		return nil
	}
	if prio {
		// Waits only as long as ctx allows: rate.Limiter refuses at once a
		// wait that would outlast the deadline.
		if err := b.limiter.Wait(ctx); err != nil {
			b.refused(label, start)
			return &UnavailableError{Op: op, Err: ErrBudgetSpent}
		}
		b.spent(label, start)
		return nil
	}
	// A new question waits, within its deadline and with fewer than
	// Reserve others, until the bucket holds more than the reserve again.
	if b.waiting.Add(1) > int64(b.reserve) {
		b.waiting.Add(-1)
		b.refused(label, start)
		return &UnavailableError{Op: op, Err: ErrBudgetSpent}
	}
	defer b.waiting.Add(-1)
	deadline, _ := ctx.Deadline()
	for {
		missing := b.reserve + 1 - b.limiter.TokensAt(now)
		if missing <= 0 && b.limiter.AllowN(now, 1) {
			b.spent(label, start)
			return nil
		}
		wait := time.Duration(max(missing, 0.1) / float64(b.limiter.Limit()) * float64(time.Second))
		if now.Add(wait).After(deadline) {
			b.refused(label, start)
			return &UnavailableError{Op: op, Err: ErrBudgetSpent}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			b.refused(label, start)
			return &UnavailableError{Op: op, Err: ErrBudgetSpent}
		case now = <-t.C:
		}
	}
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

// DecideAll implements Batcher. A batch costs what it costs AWS: one token
// per group of questions sharing a BatchKey (one SimulatePrincipalPolicy
// call each when the inner view is Live), not one per question. A group
// refused by the budget gets the *UnavailableError for each question.
func (b *Budgeted) DecideAll(ctx context.Context, qs []Question) ([]Decision, []error) {
	ds, errs := make([]Decision, len(qs)), make([]error, len(qs))
	for _, idx := range batches(qs) {
		if err := b.spend(ctx, "SimulatePrincipalPolicy"); err != nil {
			for _, i := range idx {
				errs[i] = err
			}
			continue
		}
		sub := make([]Question, len(idx))
		for j, i := range idx {
			sub[j] = qs[i]
		}
		got, gotErrs := DecideAll(ctx, b.inner, sub)
		for j, i := range idx {
			ds[i], errs[i] = got[j], gotErrs[j]
		}
	}
	return ds, errs
}
