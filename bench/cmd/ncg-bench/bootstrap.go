package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// The bootstrap scenario: a GitOps tool bootstrapping a cluster applies
// bootstrapClasses new EC2NodeClasses, bootstrapConc at a time, to a fresh
// serve with its default IAM call budget, while every AWS endpoint answers
// after bootstrapLatency. Each class must get its real verdict (admitted),
// none "could not check" for want of budget or time.
const (
	bootstrapClasses = 50
	bootstrapConc    = 16
	bootstrapLatency = 50 * time.Millisecond
)

type bootstrapResult struct {
	lat      bench.Latencies
	wrong    int // verdicts other than the real one (IAMUnavailable: the budget or the deadline)
	iamCalls int
}

func (r *bootstrapResult) figures() string {
	if r == nil {
		return " burst_p99_ms=- burst_unavailable=- burst_iam_calls=-"
	}
	return fmt.Sprintf(" burst_p99_ms=%.1f burst_unavailable=%d burst_iam_calls=%d", bench.Ms(r.lat.P99), r.wrong, r.iamCalls)
}

func (h *harness) bootstrapScenario(ctx context.Context) (bootstrapResult, error) {
	var res bootstrapResult
	serve, proc, err := h.startServe(ctx, "serve-bootstrap", bootstrapConc, false, withDefaultBudget)
	if err != nil {
		return res, err
	}
	defer proc.Stop(10 * time.Second)
	// Connections open first, with admissions the format rules refuse
	// before any question, as a running API server has them open.
	open := make([]bench.Request, bootstrapConc)
	for i := range open {
		c := bench.Class{Name: fmt.Sprintf("bootstrap-open-%d", i), Role: nodeRole, InstanceProfile: "KarpenterNodeInstanceProfile-demo", NoSelectors: true}
		open[i] = bench.Request{Body: bench.ReviewBody(c, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), Allowed: false, Check: true}
	}
	if err := bench.Burst(ctx, serve, open).Failed(); err != nil {
		return res, fmt.Errorf("opening connections: %w", err)
	}
	reqs := requests(classes("bootstrap", bootstrapClasses))
	h.iam.ResetCalls()
	h.setEndpointLatency(bootstrapLatency)
	run := bench.Sequence(ctx, serve, len(reqs), bootstrapConc, func(i int) bench.Request { return reqs[i] })
	h.setEndpointLatency(0)
	res.iamCalls = h.iam.TotalCalls()
	if run.Errors > 0 {
		return res, fmt.Errorf("bootstrap: %d requests failed; first: %w", run.Errors, run.FirstErr)
	}
	res.wrong = run.WrongVerdicts
	res.lat = bench.Summarize(run.Latencies)
	h.logf("bootstrap: %d new classes at c=%d, default IAM budget, endpoints at %s: %s; %d not their real verdict (first: %v); %d IAM calls",
		len(reqs), bootstrapConc, bootstrapLatency, res.lat, res.wrong, run.FirstWrong, res.iamCalls)
	return res, nil
}
