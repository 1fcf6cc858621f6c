package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// coldSingleLatencies are the endpoint latencies of the cold single
// scenario, in the figures line as cold_single_ms_50 and cold_single_ms_200.
var coldSingleLatencies = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond}

// coldSingleResult is the latency of one cold admission at each of
// coldSingleLatencies.
type coldSingleResult map[time.Duration]time.Duration

// coldSingleScenario sends one EC2NodeClass admission (selectors, role,
// instance profile, launch and join questions) to a fresh serve, every
// cache cold, while the local IAM, EC2, SSM and EKS endpoints answer after
// each latency: the admission's latency over the endpoint latency is the
// number of sequential AWS round trips it makes.
func (h *harness) coldSingleScenario(ctx context.Context) (coldSingleResult, error) {
	res := coldSingleResult{}
	for _, lat := range coldSingleLatencies {
		serve, proc, err := h.startServe(ctx, fmt.Sprintf("serve-cold-single-%d", lat.Milliseconds()), 1, false)
		if err != nil {
			return res, err
		}
		// Open the connection with an admission the format rules deny
		// before any question (both spec.role and spec.instanceProfile),
		// and without selector terms, so that it leaves every cache cold.
		open := bench.Class{Name: "cold-single-open", Role: nodeRole, InstanceProfile: "KarpenterNodeInstanceProfile-demo", NoSelectors: true}
		if _, err := serve.Do(ctx, bench.Request{Body: bench.ReviewBody(open, "00000000-0000-4000-8000-000000000000"), Allowed: false, Check: true}, time.Now()); err != nil {
			return res, fmt.Errorf("cold single: opening the connection: %w", err)
		}
		h.setEndpointLatency(lat)
		one := requests(classes(fmt.Sprintf("cold-single-%d", lat.Milliseconds()), 1))[0]
		took, err := serve.Do(ctx, one, time.Now())
		h.setEndpointLatency(0)
		if stopErr := proc.Stop(10 * time.Second); err == nil {
			err = stopErr
		}
		if err != nil {
			return res, fmt.Errorf("cold single at %s: %w", lat, err)
		}
		res[lat] = took
		h.logf("cold single: endpoint latency %s: one cold admission %.1f ms (%.1f round trips)", lat, bench.Ms(took), float64(took)/float64(lat))
	}
	return res, nil
}

// setEndpointLatency sets the latency of every local AWS endpoint.
func (h *harness) setEndpointLatency(d time.Duration) {
	h.iam.SetLatency(d)
	h.iam.SetEC2Latency(d)
	h.iam.SetSSMLatency(d)
	h.iam.SetEKSLatency(d)
}

// figures are the scenario's fields of the figures line, "-" when not run.
func (r coldSingleResult) figures() string {
	out := ""
	for _, lat := range coldSingleLatencies {
		v := "-"
		if d, ok := r[lat]; ok {
			v = fmt.Sprintf("%.1f", bench.Ms(d))
		}
		out += fmt.Sprintf(" cold_single_ms_%d=%s", lat.Milliseconds(), v)
	}
	return out
}
