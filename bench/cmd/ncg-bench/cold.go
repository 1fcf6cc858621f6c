package main

import (
	"context"
	"fmt"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/bench"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// coldProbes is how many cold admissions are sent one at a time.
const coldProbes = 20

// iamActions are the IAM APIs the local endpoint counts.
var iamActions = []string{"GetRole", "GetInstanceProfile", "ListInstanceProfilesForRole", "SimulatePrincipalPolicy",
	"ListRolePolicies", "GetRolePolicy", "ListAttachedRolePolicies", "GetPolicy", "GetPolicyVersion"}

type coldResult struct {
	// cold is the burst against a fresh serve; warm the same burst right
	// after (cache warm); trivial the same burst against the trivial webhook;
	// single is cold admissions one at a time.
	cold, warm, trivial, single bench.Latencies
	singleCalls                 int
	classes                     int // distinct classes of the burst
	iamCalls                    int
	// calls is the IAM calls the rules' questions need with a cold cache:
	// one per distinct lookup and per distinct batch of permission
	// questions sharing principal and context.
	calls            int
	callsByAction    map[string]int
	distinct         int
	distinctByAction map[string]int
	perClass         int // distinct questions one more class adds
	warmCalls        int // IAM calls during the warm burst (want 0)
	// serve's own view of the cold burst: SDK operations by outcome
	// (retries inside one operation are one) and cache lookups by result.
	opsByOutcome map[string]int
	cacheResults map[string]int
	// CPU time the bursts took, serve's and the harness's (load generator
	// and IAM endpoint): 2 cores give at most twice the wall time.
	coldCPU, warmCPU cpuUse
}

// checker is the configuration serve builds from its flags, over the snapshot
// the local endpoint serves: the controller role resolved to its real ARN.
func (h *harness) checker(ctx context.Context) (rules.Config, error) {
	parsed, err := authz.ParseRoleARN(controllerRole)
	if err != nil {
		return rules.Config{}, err
	}
	role, err := h.snap.Role(ctx, parsed.Name)
	if err != nil {
		return rules.Config{}, fmt.Errorf("controller role: %w", err)
	}
	if r, err := authz.ParseRoleARN(role.ARN); err == nil {
		parsed = r
	}
	// As serve: the snapshot's EC2 sections answer the selectors, with
	// the control plane's Kubernetes version for the AMI alias.
	k8s, err := h.kubernetesVersion()
	if err != nil {
		return rules.Config{}, err
	}
	return rules.Config{IAM: h.snap, EC2: h.snap, KubernetesVersion: k8s, Controller: parsed, ClusterName: clusterName, Region: region, OnIAMError: rules.OnIAMErrorDeny}, nil
}

// kubernetesVersion is the control plane's MAJOR.MINOR, as serve reads it.
func (h *harness) kubernetesVersion() (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", h.cp.Kubeconfig)
	if err != nil {
		return "", err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", fmt.Errorf("the control plane's version: %w", err)
	}
	return v.Major + "." + strings.TrimSuffix(v.Minor, "+"), nil
}

// coldScenario sends a burst of concurrent admissions over a few distinct
// classes to a fresh serve whose IAM answers take coldLatency: every IAM
// question must be asked exactly once (the cache coalesces identical
// questions in flight), and an admission's questions run in parallel, so
// its latency is about one IAM round trip.
func (h *harness) coldScenario(ctx context.Context) (coldResult, error) {
	res := coldResult{callsByAction: map[string]int{}}
	serve, proc, err := h.startServe(ctx, "serve-cold", h.c.coldAdmissions, h.c.serveProfile != "")
	if err != nil {
		return res, err
	}

	// Open every connection first, as a running API server has them open,
	// with admissions the format rules deny before any IAM question (both
	// spec.role and spec.instanceProfile set).
	formatOnly := make([]bench.Request, h.c.coldAdmissions)
	for i := range formatOnly {
		c := bench.Class{Name: fmt.Sprintf("format-%06d", i), Role: nodeRole, InstanceProfile: "KarpenterNodeInstanceProfile-demo"}
		formatOnly[i] = bench.Request{Body: bench.ReviewBody(c, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), Allowed: false, Check: true}
	}
	before := h.iam.TotalCalls()
	if err := bench.Burst(ctx, serve, formatOnly).Failed(); err != nil {
		return res, fmt.Errorf("opening connections: %w", err)
	}
	if got := h.iam.TotalCalls(); got != before {
		return res, fmt.Errorf("format-only admissions made %d IAM calls; they must make none", got-before)
	}

	cs := classes("cold", h.c.coldClasses)
	byClass := requests(cs)
	reqs := make([]bench.Request, h.c.coldAdmissions)
	for i := range reqs {
		reqs[i] = byClass[i%len(byClass)]
	}
	h.iam.ResetCalls()
	h.iam.SetLatency(h.c.coldLatency)
	defer h.iam.SetLatency(0)
	h.logf("cold: %d concurrent admissions over %d classes, fresh serve (pid %d), IAM latency %s", len(reqs), len(cs), serve.PID, h.c.coldLatency)
	var run bench.Run
	burst := func() bench.Run { return bench.Burst(ctx, serve, reqs) }
	if serve.PprofURL != "" {
		burst = func() bench.Run {
			return h.profiled(ctx, serve, h.c.serveProfile+".cold", time.Second, func() bench.Run { return bench.Burst(ctx, serve, reqs) })
		}
	}
	if res.coldCPU, err = measureCPU(serve.PID, func() { run = burst() }); err != nil {
		return res, err
	}
	if err := run.Failed(); err != nil {
		return res, fmt.Errorf("cold burst: %w", err)
	}
	res.cold = bench.Summarize(run.Latencies)
	res.iamCalls = h.iam.TotalCalls()
	m, err := bench.Scrape(ctx, serve.MetricsURL)
	if err != nil {
		return res, err
	}
	res.opsByOutcome, res.cacheResults = map[string]int{}, map[string]int{}
	for _, o := range []string{"ok", "not_found", "throttled", "error", "timeout"} {
		if n := int(bench.Sum(m, "nodeclass_guard_iam_requests_total", `outcome="`+o+`"`)); n > 0 {
			res.opsByOutcome[o] = n
		}
	}
	for _, r := range []string{"hit", "miss", "coalesced", "stale"} {
		if n := int(bench.Sum(m, "nodeclass_guard_iam_cache_total", `result="`+r+`"`)); n > 0 {
			res.cacheResults[r] = n
		}
	}
	for _, a := range iamActions {
		if n := h.iam.Calls(a); n > 0 {
			res.callsByAction[a] = n
		}
	}

	chk, err := h.checker(ctx)
	if err != nil {
		return res, err
	}
	res.classes = len(cs)
	res.calls = bench.DistinctCalls(ctx, chk, cs)
	res.distinctByAction = bench.DistinctQuestions(ctx, chk, cs)
	for _, n := range res.distinctByAction {
		res.distinct += n
	}
	one := total(bench.DistinctQuestions(ctx, chk, cs[:1]))
	two := total(bench.DistinctQuestions(ctx, chk, cs[:2]))
	res.perClass = two - one

	h.iam.ResetCalls()
	if res.warmCPU, err = measureCPU(serve.PID, func() { run = bench.Burst(ctx, serve, reqs) }); err != nil {
		return res, err
	}
	if err := run.Failed(); err != nil {
		return res, fmt.Errorf("warm burst: %w", err)
	}
	res.warm = bench.Summarize(run.Latencies)
	res.warmCalls = h.iam.TotalCalls()

	// One cold admission at a time, each naming a class not seen before
	// (its own %d questions, its role's already cached): on an idle
	// machine, what an admission's questions cost when IAM takes
	// coldLatency to answer each. Parallel questions make it one round trip.
	probes := requests(classes("cold-probe", coldProbes))
	h.iam.ResetCalls()
	var probe bench.Run
	for _, r := range probes {
		lat, err := serve.Do(ctx, r, time.Now())
		if err != nil {
			return res, fmt.Errorf("cold probe: %w", err)
		}
		probe.Latencies = append(probe.Latencies, lat)
	}
	res.single = bench.Summarize(probe.Latencies)
	res.singleCalls = h.iam.TotalCalls()

	// The same burst against the trivial webhook, its pool as large.
	trivial := *h.trivial
	if trivial.Client, err = bench.NewClient(h.caPEM, h.c.coldAdmissions); err != nil {
		return res, err
	}
	defer trivial.Client.CloseIdleConnections()
	unchecked := make([]bench.Request, len(formatOnly))
	for i, r := range formatOnly {
		unchecked[i] = bench.Request{Body: r.Body} // the trivial webhook allows everything
	}
	if err := bench.Burst(ctx, &trivial, unchecked).Failed(); err != nil {
		return res, fmt.Errorf("trivial: opening connections: %w", err)
	}
	run = bench.Burst(ctx, &trivial, reqs)
	if err := run.Failed(); err != nil {
		return res, fmt.Errorf("trivial burst: %w", err)
	}
	res.trivial = bench.Summarize(run.Latencies)

	h.logf("cold: fresh cache     %s; %s", res.cold, res.coldCPU)
	h.logf("cold: same, warm      %s; %s", res.warm, res.warmCPU)
	h.logf("cold: trivial webhook %s", res.trivial)
	h.logf("cold: one at a time   %s; %d IAM calls for %d new classes", res.single, res.singleCalls, coldProbes)
	h.logf("cold: IAM calls %d (%s), %d expected; distinct questions %d (%s; %d per class); IAM calls of the warm burst %d",
		res.iamCalls, byAction(res.callsByAction), res.calls, res.distinct, byAction(res.distinctByAction), res.perClass, res.warmCalls)
	h.logf("cold: serve's count since start: IAM operations %s; cache lookups %s", byAction(res.opsByOutcome), byAction(res.cacheResults))
	serve.Client.CloseIdleConnections()
	return res, proc.Stop(10 * time.Second)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func byAction(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// cpuUse is the CPU time a piece of load took.
type cpuUse struct {
	wall, serve, harness time.Duration
}

func (c cpuUse) String() string {
	return fmt.Sprintf("%s wall, CPU serve %s + harness %s", c.wall.Round(time.Millisecond), c.serve, c.harness)
}

// measureCPU runs f and returns the wall time and the CPU time serve (pid)
// and this process used meanwhile.
func measureCPU(pid int, f func()) (cpuUse, error) {
	s0, err := bench.CPUTime(pid)
	if err != nil {
		return cpuUse{}, err
	}
	h0, err := bench.CPUTime(os.Getpid())
	if err != nil {
		return cpuUse{}, err
	}
	start := time.Now()
	f()
	wall := time.Since(start)
	s1, err := bench.CPUTime(pid)
	if err != nil {
		return cpuUse{}, err
	}
	h1, err := bench.CPUTime(os.Getpid())
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{wall: wall, serve: s1 - s0, harness: h1 - h0}, nil
}
