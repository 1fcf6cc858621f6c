package audit

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the audit's gauges. Only the replica holding the lease
// audits; the others keep their gauges at zero, so alert on max() over
// replicas (docs/deploy.md).
type Metrics struct {
	// Violations counts the objects failing a check, by kind and code.
	Violations *prometheus.GaugeVec
	// LastComplete is the Unix time at which the last pass over every
	// object ended.
	LastComplete prometheus.Gauge
	// PassSeconds is how long the last complete pass took.
	PassSeconds prometheus.Gauge
	// Objects is how many objects the last complete pass checked.
	Objects prometheus.Gauge

	mu   sync.Mutex
	last map[[2]string]bool
}

// NewMetrics creates the gauges.
func NewMetrics() *Metrics {
	return &Metrics{
		Violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodeclass_guard_audit_violations",
			Help: "Objects in the cluster that currently fail a nodeclass-guard check, by kind and reason code (audit leader only).",
		}, []string{"kind", "code"}),
		LastComplete: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodeclass_guard_audit_last_complete_timestamp_seconds",
			Help: "Unix time at which the last complete audit pass ended (0: none yet on this replica).",
		}),
		PassSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodeclass_guard_audit_pass_duration_seconds",
			Help: "Duration of the last complete audit pass, rate limit included.",
		}),
		Objects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodeclass_guard_audit_objects",
			Help: "Objects (EC2NodeClass, NodePool, EKS NodeClass) checked by the last complete audit pass.",
		}),
		last: map[[2]string]bool{},
	}
}

// MustRegister registers the gauges with reg.
func (m *Metrics) MustRegister(reg prometheus.Registerer) {
	reg.MustRegister(m.Violations, m.LastComplete, m.PassSeconds, m.Objects)
}

// setViolations sets the gauge to counts; a series whose violations are
// gone drops to 0 (kept, so that an alert on it resolves).
func (m *Metrics) setViolations(counts map[[2]string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for lv := range m.last {
		if _, ok := counts[lv]; !ok {
			m.Violations.WithLabelValues(lv[0], lv[1]).Set(0)
		}
	}
	m.last = map[[2]string]bool{}
	for lv, n := range counts {
		m.Violations.WithLabelValues(lv[0], lv[1]).Set(n)
		m.last[lv] = true
	}
}

func (m *Metrics) passDone(end time.Time, took time.Duration) {
	if m == nil {
		return
	}
	m.LastComplete.Set(float64(end.UnixNano()) / 1e9)
	m.PassSeconds.Set(took.Seconds())
}
