package authz

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts IAM calls and cache results, so that an operator can see
// whether the webhook's latency comes from IAM, from throttling, or from
// neither. A nil *Metrics records nothing.
type Metrics struct {
	// Requests counts IAM API calls by API and outcome (ok, not_found,
	// throttled, error, timeout). A call is one SDK operation, retries
	// included.
	Requests *prometheus.CounterVec
	// Duration observes how long each IAM API call took, retries included.
	Duration *prometheus.HistogramVec
	// Cache counts lookups in the IAM answer cache: hit (a fresh entry),
	// miss (this lookup asked IAM), coalesced (it waited for an identical
	// lookup already asking IAM), and stale (IAM failed and an expired
	// entry was served instead; counted in addition to miss or coalesced).
	Cache *prometheus.CounterVec
	// BudgetSpent counts calls the IAM call budget let through, and
	// BudgetRefused questions it refused, by priority (priority: about an
	// object the cluster has or asked before; new: any other).
	BudgetSpent   *prometheus.CounterVec
	BudgetRefused *prometheus.CounterVec
	// Budget counts every budget's calls by service (IAM, EC2) and
	// result: spent (a call let through; a page for EC2), refused (the
	// question became "could not check"), refunded (a call that reached
	// no one gave its token back). BudgetWait observes how long a
	// question waited for a token, so no wait is invisible.
	Budget     *prometheus.CounterVec
	BudgetWait *prometheus.HistogramVec
	// ServiceDown is 1 while an optional service (EKS, EC2, SSM) is
	// remembered as unreachable after a connection failure or timeout;
	// ShortCircuited counts the questions answered at once meanwhile
	// (each a *ChecksSkipped, or a stale answer).
	ServiceDown    *prometheus.GaugeVec
	ShortCircuited *prometheus.CounterVec
}

// Outcome and cache-result label values.
const (
	OutcomeOK        = "ok"
	OutcomeNotFound  = "not_found"
	OutcomeThrottled = "throttled"
	OutcomeError     = "error"
	OutcomeTimeout   = "timeout"

	CacheHit       = "hit"
	CacheMiss      = "miss"
	CacheStale     = "stale"
	CacheCoalesced = "coalesced"
)

// NewMetrics creates the collectors; register them with MustRegister.
func NewMetrics() *Metrics {
	return &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_iam_requests_total",
			Help: "IAM API calls made by nodeclass-guard, by API and outcome (ok, not_found, throttled, error, timeout).",
		}, []string{"api", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nodeclass_guard_iam_request_duration_seconds",
			Help:    "Duration of IAM API calls made by nodeclass-guard, SDK retries included.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}, []string{"api"}),
		Cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_iam_cache_total",
			Help: "IAM answer cache lookups by result (hit, miss, coalesced; stale when an expired answer was served because IAM failed).",
		}, []string{"result"}),
		BudgetSpent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_iam_budget_spent_total",
			Help: "IAM questions let through to AWS by the IAM call budget (--iam-call-rate), by priority (priority, new).",
		}, []string{"priority"}),
		BudgetRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_iam_budget_refused_total",
			Help: "IAM questions refused because the IAM call budget (--iam-call-rate) was spent, by priority (priority, new); each became \"could not check\".",
		}, []string{"priority"}),
		Budget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_aws_budget_total",
			Help: "AWS call budgets (--iam-call-rate; EC2 and SSM have their own, charged per page) by service (IAM, EC2) and result (spent, refused, refunded: a call that reached no one gave its token back).",
		}, []string{"service", "result"}),
		BudgetWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nodeclass_guard_aws_budget_wait_seconds",
			Help:    "How long a question waited for a token of an AWS call budget, by service (IAM, EC2).",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2},
		}, []string{"service"}),
		ServiceDown: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodeclass_guard_aws_service_down",
			Help: "1 while an optional service (EKS, EC2, SSM) is remembered as unreachable after a connection failure or timeout; its checks are then reported skipped at once.",
		}, []string{"service"}),
		ShortCircuited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_aws_short_circuited_total",
			Help: "Questions to an optional service (EKS, EC2, SSM) answered at once as unavailable because the service was remembered as unreachable.",
		}, []string{"service"}),
	}
}

// MustRegister registers every collector with reg; it panics on a
// duplicate registration, like prometheus.MustRegister.
func (m *Metrics) MustRegister(reg prometheus.Registerer) {
	reg.MustRegister(m.Requests, m.Duration, m.Cache, m.BudgetSpent, m.BudgetRefused, m.Budget, m.BudgetWait, m.ServiceDown, m.ShortCircuited)
}

// observeCall records one IAM API call that started at start and ended
// with err.
func (m *Metrics) observeCall(api string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.Requests.WithLabelValues(api, callOutcome(err)).Inc()
	m.Duration.WithLabelValues(api).Observe(time.Since(start).Seconds())
}

// cacheResult counts one cache lookup result.
func (m *Metrics) cacheResult(result string) {
	if m == nil {
		return
	}
	m.Cache.WithLabelValues(result).Inc()
}

func (m *Metrics) budgetSpent(priority string) {
	if m != nil {
		m.BudgetSpent.WithLabelValues(priority).Inc()
	}
}

func (m *Metrics) budgetRefused(priority string) {
	if m != nil {
		m.BudgetRefused.WithLabelValues(priority).Inc()
	}
}

func (m *Metrics) budget(service, result string) {
	if m != nil {
		m.Budget.WithLabelValues(service, result).Inc()
	}
}

func (m *Metrics) budgetWait(service string, d time.Duration) {
	if m != nil {
		m.BudgetWait.WithLabelValues(service).Observe(d.Seconds())
	}
}

func (m *Metrics) shortCircuit(service string) {
	if m != nil {
		m.ShortCircuited.WithLabelValues(service).Inc()
	}
}

func (m *Metrics) serviceDown(service string, down bool) {
	if m == nil {
		return
	}
	v := 0.0
	if down {
		v = 1
	}
	m.ServiceDown.WithLabelValues(service).Set(v)
}

// callOutcome sorts an SDK error into an outcome label.
func callOutcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if code := apiErr.ErrorCode(); code == "NoSuchEntity" || code == "ResourceNotFoundException" {
			return OutcomeNotFound
		}
		if _, ok := retry.DefaultThrottleErrorCodes[apiErr.ErrorCode()]; ok {
			return OutcomeThrottled
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return OutcomeTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return OutcomeTimeout
	}
	return OutcomeError
}
