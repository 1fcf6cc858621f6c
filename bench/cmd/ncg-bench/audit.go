package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// auditResult is the audit scenario's figures: admission latency while
// serve's audit passes over every class of the cluster, and after.
type auditResult struct {
	classes        int
	qps            float64
	pass           time.Duration // serve's own measure of the pass
	during, idle   bench.Latencies
	duringTput     float64
	idleTput       float64
	iamCalls       int // IAM calls from serve's start to the end of the pass
	secondCalls    int // IAM calls of the second pass, nothing changed, every answer expired
	secondPass     time.Duration
	callsUnderLoad int // of which while admissions were measured
	distinctCalls  int // calls a cold cache needs for the classes' questions
	concurrency    int
	windowsDuring  int
	windowsCompare int
}

func (r auditResult) figures() string {
	return fmt.Sprintf("bench-audit: classes=%d audit_qps=%.0f pass_s=%.1f audit_iam_calls=%d audit_second_iam_calls=%d distinct_calls=%d calls_under_load=%d during_p50_ms=%.2f idle_p50_ms=%.2f during_p99_ms=%.2f idle_p99_ms=%.2f p99_ratio=%.2f throughput_ratio=%.2f",
		r.classes, r.qps, r.pass.Seconds(), r.iamCalls, r.secondCalls, r.distinctCalls, r.callsUnderLoad,
		bench.Ms(r.during.P50), bench.Ms(r.idle.P50), bench.Ms(r.during.P99), bench.Ms(r.idle.P99),
		ratio(r.during.P99, r.idle.P99), r.duringTput/r.idleTput)
}

// auditInterval and auditCacheTTL are the audit scenario's serve's
// --audit-interval and --iam-cache-ttl: the second pass finds every answer
// of the first expired.
const (
	auditInterval = 25 * time.Second
	auditCacheTTL = 20 * time.Second
)

// auditWindows is the most one-second windows of admissions driven while
// the pass runs (and after it, for comparison).
const auditWindows = 10

// auditScenario puts auditClasses EC2NodeClasses in the control plane,
// starts a serve whose audit passes over them at once (--audit-qps
// auditQPS), and drives admissions closed-loop at auditConc in one-second
// windows while the pass runs (at most auditWindows), then for as many
// windows after it: the
// latency an admission sees during an audit, against the same serve idle.
// The admitted classes are among the audited ones, so every IAM call of
// the run is one of the pass's distinct questions: calls beyond
// distinct_calls would be questions asked twice.
func (h *harness) auditScenario(ctx context.Context) (auditResult, error) {
	res := auditResult{classes: h.c.auditClasses, qps: h.c.auditQPS, concurrency: h.c.auditConc}
	all := classes("audit", h.c.auditClasses)
	if err := h.createClasses(ctx, all); err != nil {
		return res, err
	}
	cfg, err := h.checker(ctx)
	if err != nil {
		return res, err
	}
	res.distinctCalls = bench.DistinctCalls(ctx, cfg, all) + 1 // + resolving the controller role at start
	admitted := all[:min(len(all), h.c.warmClasses)]
	reqs := requests(admitted)

	h.iam.ResetCalls()
	// A second pass starts auditInterval after the first ends, when
	// every answer of the first has expired (auditCacheTTL): what a pass
	// with nothing changed costs, as with serve's defaults (5m each).
	serve, proc, err := h.startServe(ctx, "serve-audit", poolSize,
		false, "--audit-interval="+auditInterval.String(), "--iam-cache-ttl="+auditCacheTTL.String(), fmt.Sprintf("--audit-qps=%g", h.c.auditQPS))
	if err != nil {
		return res, err
	}
	defer proc.Stop(10 * time.Second)
	h.logf("audit: serve (pid %d) ready; %d classes in the cluster, audit at %g objects/s; admissions of %d of them at concurrency %d",
		serve.PID, len(all), h.c.auditQPS, len(admitted), h.c.auditConc)

	// The admitted classes' answers cached and the connections open, as
	// on a replica that has been serving: what is measured next is the
	// audit's effect, not a cold start.
	for _, r := range reqs {
		if _, err := serve.Do(ctx, r, time.Now()); err != nil {
			return res, err
		}
	}
	if err := bench.ClosedLoop(ctx, serve, reqs, h.c.auditConc, 500*time.Millisecond).Failed(); err != nil {
		return res, err
	}

	var lastComplete float64
	passDone := func() (bool, time.Duration, error) {
		m, err := bench.Scrape(ctx, serve.MetricsURL)
		if err != nil {
			return false, 0, err
		}
		t := bench.Sum(m, "nodeclass_guard_audit_last_complete_timestamp_seconds")
		done := t > lastComplete
		if done {
			lastComplete = t
		}
		return done, time.Duration(bench.Sum(m, "nodeclass_guard_audit_pass_duration_seconds") * float64(time.Second)), nil
	}
	var during, idle bench.Run
	callsBefore := h.iam.TotalCalls()
	for res.windowsDuring < auditWindows {
		done, took, err := passDone()
		if err != nil {
			return res, err
		}
		if done {
			res.pass = took
			break
		}
		run := bench.ClosedLoop(ctx, serve, reqs, h.c.auditConc, time.Second)
		if err := run.Failed(); err != nil {
			return res, err
		}
		during.Merge(run)
		res.windowsDuring++
	}
	res.callsUnderLoad = h.iam.TotalCalls() - callsBefore
	// The audit gives way to admissions: under this sustained load it
	// slows down. Without load it finishes at its rate.
	for res.pass == 0 {
		done, took, err := passDone()
		if err != nil {
			return res, err
		}
		if done {
			res.pass = took
			break
		}
		if time.Since(h.start) > 20*time.Minute {
			return res, fmt.Errorf("the audit pass did not end")
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.iamCalls = h.iam.TotalCalls()
	res.windowsCompare = max(res.windowsDuring, 3)
	for range res.windowsCompare {
		run := bench.ClosedLoop(ctx, serve, reqs, h.c.auditConc, time.Second)
		if err := run.Failed(); err != nil {
			return res, err
		}
		idle.Merge(run)
	}
	// The second pass: no admissions, nothing changed.
	firstEnd := h.iam.TotalCalls()
	for {
		done, took, err := passDone()
		if err != nil {
			return res, err
		}
		if done {
			res.secondPass = took
			break
		}
		if time.Since(h.start) > 25*time.Minute {
			return res, fmt.Errorf("the second audit pass did not end")
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.secondCalls = h.iam.TotalCalls() - firstEnd
	h.logf("audit: second pass, nothing changed, every answer expired: %.1fs, %d IAM calls", res.secondPass.Seconds(), res.secondCalls)
	res.during, res.idle = bench.Summarize(during.Latencies), bench.Summarize(idle.Latencies)
	res.duringTput, res.idleTput = during.Throughput(), idle.Throughput()
	h.logf("audit: pass of %d classes took %.1fs (serve's gauge); IAM calls from start to its end %d, distinct calls the classes need %d", len(all), res.pass.Seconds(), res.iamCalls, res.distinctCalls)
	h.logf("audit: during the pass %s %7.0f req/s (%d windows)", res.during, res.duringTput, res.windowsDuring)
	h.logf("audit: after the pass  %s %7.0f req/s (%d windows)", res.idle, res.idleTput, res.windowsCompare)
	serve.Client.CloseIdleConnections()
	return res, nil
}

// createClasses creates the classes in the control plane, eight at a time.
func (h *harness) createClasses(ctx context.Context, cs []bench.Class) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", h.cp.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	start := time.Now()
	work := make(chan bench.Class)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cl := range work {
				obj := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "karpenter.k8s.aws/v1",
					"kind":       "EC2NodeClass",
					"metadata":   map[string]any{"name": cl.Name},
					"spec": map[string]any{
						"role":                       cl.Role,
						"amiSelectorTerms":           []any{map[string]any{"alias": "al2023@latest"}},
						"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
						"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
					},
				}}
				if err := c.Create(ctx, obj); err != nil {
					select {
					case errs <- fmt.Errorf("creating EC2NodeClass %s: %w", cl.Name, err):
					default:
					}
				}
			}
		}()
	}
	for _, cl := range cs {
		work <- cl
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	h.logf("audit: created %d EC2NodeClasses in %.1fs", len(cs), time.Since(start).Seconds())
	return nil
}
