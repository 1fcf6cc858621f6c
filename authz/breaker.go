package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The optional services (EKS, EC2, SSM) answer checks that add to the IAM
// checks; none of them may cost an admission its IAM checks, nor make
// every admission wait while it is away. Two bounds at the view edge,
// beside the cache, keep them in their place:
//
//   - a Breaker per service remembers a connection failure or a timeout
//     for a short, backed-off interval, during which its questions are
//     answered at once as unavailable (the rules' *ChecksSkipped), from
//     stale cached answers where there are some;
//   - an admission waits for an optional service at most ServiceShare of
//     its remaining deadline per round, so what is left goes to IAM.

// ErrServiceDown is inside the *UnavailableError of a question a Breaker
// answered without asking: the service failed to answer a moment ago.
var ErrServiceDown = errors.New("not reachable a moment ago; not asked again yet")

// ServiceShare is the part of an admission's remaining deadline one round
// of questions to an optional service (EKS, EC2, SSM) may take: the call
// goes on and fills the cache, but the admission stops waiting for it.
const ServiceShare = 0.3

// BreakerOptions tunes a Breaker.
type BreakerOptions struct {
	// Min is the first interval a service is remembered as unreachable
	// (default 2s); each failure in a row doubles it, up to Max (default
	// 1m). An answer resets it.
	Min, Max time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics records the state and the questions answered at once.
	Metrics *Metrics
}

// Breaker remembers that a service could not be reached. While open it
// answers at once; when the interval ends one question (the probe) goes
// through, and the others keep being answered at once until it returns.
type Breaker struct {
	service string
	opts    BreakerOptions

	mu        sync.Mutex
	openUntil time.Time
	interval  time.Duration
	probing   bool
}

// NewBreaker returns a closed breaker for service ("EKS", "EC2", "SSM").
func NewBreaker(service string, opts BreakerOptions) *Breaker {
	if opts.Min <= 0 {
		opts.Min = 2 * time.Second
	}
	if opts.Max < opts.Min {
		opts.Max = max(opts.Min, time.Minute)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Breaker{service: service, opts: opts}
}

// allow says whether a call may go to the service now; when not, the
// error to answer with. A caller allowed while the breaker is half open
// is the probe and must report its outcome with done.
func (b *Breaker) allow(op string) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return nil
	}
	if b.probing || b.opts.Now().Before(b.openUntil) {
		b.opts.Metrics.shortCircuit(b.service)
		return &UnavailableError{Service: b.service, Op: op, Err: fmt.Errorf("%w (for %s more)", ErrServiceDown, max(b.openUntil.Sub(b.opts.Now()), 0).Round(time.Millisecond))}
	}
	b.probing = true
	return nil
}

// refuses answers at once, without taking the probe, while the breaker
// is open and no probe is due; nil otherwise.
func (b *Breaker) refuses(op string) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() || (!b.probing && !b.opts.Now().Before(b.openUntil)) {
		return nil
	}
	b.opts.Metrics.shortCircuit(b.service)
	return &UnavailableError{Service: b.service, Op: op, Err: fmt.Errorf("%w (for %s more)", ErrServiceDown, max(b.openUntil.Sub(b.opts.Now()), 0).Round(time.Millisecond))}
}

// done records the outcome of a call allowed by allow.
func (b *Breaker) done(err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	switch {
	case err == nil || !IsUnreachable(err):
		if errors.Is(err, ErrBudgetSpent) {
			return // not asked: says nothing of the service
		}
		if !b.openUntil.IsZero() {
			b.opts.Metrics.serviceDown(b.service, false)
		}
		b.openUntil, b.interval = time.Time{}, 0
	default:
		if b.interval == 0 {
			b.interval = b.opts.Min
		} else {
			b.interval = min(2*b.interval, b.opts.Max)
		}
		b.openUntil = b.opts.Now().Add(b.interval)
		b.opts.Metrics.serviceDown(b.service, true)
	}
}

// Open reports whether the service is being remembered as unreachable.
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero()
}

// IsUnreachable reports whether err says the service did not answer at
// all: a connection refused, reset or dropped, a timeout. An error the
// service answered with (throttling, access denied, a 5xx) is not one.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// serviceWait bounds how long a caller waits for one round of questions
// to an optional service: ServiceShare of what is left of ctx's deadline.
func serviceWait(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	left := time.Until(deadline)
	if left <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, time.Duration(float64(left)*ServiceShare))
}
