package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/bench"
	"github.com/nodeclass-guard/nodeclass-guard/certs"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// The sample snapshot's scenario (testdata/iam/sample-snapshot.json).
const (
	controllerRole = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	clusterName    = "demo"
	region         = "us-west-2"
	nodeRole       = "KarpenterNodeRole-demo"
)

// harness holds what every scenario shares: the work folder, the serving
// certificate, the control plane and the local IAM endpoint.
type harness struct {
	c       config
	out     io.Writer
	start   time.Time
	dir     string
	certDir string
	caPEM   []byte
	cp      *bench.ControlPlane
	snap    *authz.Snapshot
	iam     *iamserver.Server
	iamURL  string
	stopIAM func()
	procs   []*bench.Process

	// trivial is the baseline webhook, shared by the warm and cold scenarios.
	trivial     *bench.Target
	trivialProc *bench.Process
	// noop is controller-runtime's no-op typed validator: the floor of the
	// warm scenario's CPU per admission.
	noop     *bench.Target
	noopProc *bench.Process
}

func newHarness(ctx context.Context, c config, out io.Writer) (_ *harness, err error) {
	h := &harness{c: c, out: out, start: time.Now()}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.dir, err = os.MkdirTemp("", "nodeclass-guard-bench-"); err != nil {
		return nil, err
	}
	ca, err := certs.NewCA("nodeclass-guard bench CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	crt, key, err := ca.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	h.caPEM = ca.CertPEM()
	h.certDir = filepath.Join(h.dir, "certs")
	if err := certs.WriteServingPair(h.certDir, crt, key); err != nil {
		return nil, err
	}
	if h.snap, err = authz.LoadSnapshotFile(c.snapshot); err != nil {
		return nil, err
	}
	h.iam = iamserver.New(h.snap)
	h.iamURL, h.stopIAM = h.iam.Start()

	h.logf("starting kube-apiserver and etcd from %s", c.assets)
	crds := []string{
		filepath.Join(c.crds, "karpenter.k8s.aws_ec2nodeclasses.yaml"),
		filepath.Join(c.crds, "karpenter.sh_nodepools.yaml"),
		filepath.Join(c.root, "e2e", "crds", "eks.amazonaws.com_nodeclasses.yaml"),
	}
	if h.cp, err = bench.StartControlPlane(c.assets, crds, h.dir); err != nil {
		return nil, err
	}
	return h, nil
}

// logf prints a progress line with the time since the start.
func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.out, "[%5.1fs] %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

// close stops every process, the IAM endpoint and the control plane.
func (h *harness) close() error {
	var errs []error
	for _, p := range h.procs {
		if err := p.Stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if h.stopIAM != nil {
		h.stopIAM()
	}
	if h.cp != nil {
		if err := h.cp.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if h.dir != "" {
		if h.c.keep {
			fmt.Fprintf(h.out, "work folder kept: %s\n", h.dir)
		} else {
			os.RemoveAll(h.dir)
		}
	}
	return errors.Join(errs...)
}

// startServe starts `nodeclass-guard serve` against the control plane and
// the local IAM endpoint, with the flags a deployment uses, and returns a
// Target for its EC2NodeClass webhook once it is ready.
//
// With pprof set (--serve-profile), serve is started with
// --pprof-bind-address and the returned Target's PprofURL is set. The
// audit is off (--audit-interval=0) unless extra turns it on: the
// admission scenarios measure admission alone.
func (h *harness) startServe(ctx context.Context, name string, conns int, pprof bool, extra ...string) (*bench.Target, *bench.Process, error) {
	ports, err := framework.FreePorts(4)
	if err != nil {
		return nil, nil, err
	}
	metrics, health := "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
	args := []string{"serve",
		"--cert-dir", h.certDir,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(ports[0]),
		"--metrics-bind-address", metrics,
		"--health-probe-bind-address", health,
		"--kubeconfig", h.cp.Kubeconfig,
		"--controller-role", controllerRole,
		"--cluster-name", clusterName,
		"--region", region,
		"--iam-endpoint", h.iamURL,
		"--eks-endpoint", h.iamURL, // the node-join checks ask the same local endpoint's EKS API
		"--ec2-endpoint", h.iamURL,
		"--ssm-endpoint", h.iamURL,
		"--iam-cache-size", strconv.Itoa(h.c.cacheSize),
		"--on-iam-error", "deny",
		// The benchmark measures serve's own cost of asking IAM, with
		// thousands of new classes a second: the IAM call budget, which
		// exists to refuse just that, is set out of the way.
		"--iam-call-rate", budgetRate(extra),
		"--iam-call-burst", budgetBurst(extra),
		// Likewise the connection and in-flight caps (256 and 64 by
		// default), which refuse a caller opening more at once: the cold
		// burst opens one connection per admission, as an API server
		// under that load would, and measures what serve does with them.
		"--max-connections", strconv.Itoa(max(2*conns, 1024)),
		"--max-requests-in-flight", strconv.Itoa(max(2*conns, 1024)),
		// Every request comes from this one address.
		"--max-connections-per-source", strconv.Itoa(max(2*conns, 1024)),
		"--max-requests-in-flight-per-source", strconv.Itoa(max(2*conns, 1024)),
		"--audit-interval=0",
	}
	for _, e := range extra {
		if e != withDefaultBudget {
			args = append(args, e)
		}
	}
	// Dummy credentials: the endpoint does not check signatures, but the
	// SDK signs every request. No shared config, no instance metadata.
	env := framework.ChildEnv(
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	env = append(env, h.c.serveEnv...)
	if pprof {
		args = append(args, "--pprof-bind-address", "127.0.0.1:"+strconv.Itoa(ports[3]))
	}
	p, err := bench.StartProcess(name, h.c.binary, args, env, filepath.Join(h.dir, name+".log"))
	if err != nil {
		return nil, nil, err
	}
	h.procs = append(h.procs, p)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.WaitReady(rctx, "http://"+health+"/readyz"); err != nil {
		return nil, nil, err
	}
	client, err := bench.NewClient(h.caPEM, conns)
	if err != nil {
		return nil, nil, err
	}
	t := &bench.Target{
		Name:       name,
		URL:        "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/validate-karpenter-k8s-aws-ec2nodeclass",
		PID:        p.PID,
		MetricsURL: "http://" + metrics + "/metrics",
		Client:     client,
	}
	if pprof {
		t.PprofURL = "http://127.0.0.1:" + strconv.Itoa(ports[3]) + "/debug/pprof/profile"
	}
	return t, p, nil
}

// startTrivial starts the trivial webhook as its own process (this binary,
// `trivial` subcommand), so that its CPU time and allocations are counted
// apart from the load generator's, as serve's are.
func (h *harness) startTrivial(ctx context.Context, conns int) (*bench.Target, *bench.Process, error) {
	return h.startBaseline(ctx, "trivial", conns)
}

// startBaseline starts a baseline webhook (this binary's `trivial` or
// `noop` subcommand) as its own process.
func (h *harness) startBaseline(ctx context.Context, name string, conns int) (*bench.Target, *bench.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	ports, err := framework.FreePorts(2)
	if err != nil {
		return nil, nil, err
	}
	addr, metrics := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	p, err := bench.StartProcess(name, self,
		[]string{name, "--cert-dir", h.certDir, "--addr", addr, "--metrics-addr", metrics},
		framework.ChildEnv(), filepath.Join(h.dir, name+".log"))
	if err != nil {
		return nil, nil, err
	}
	h.procs = append(h.procs, p)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.WaitReady(rctx, "http://"+metrics+"/readyz"); err != nil {
		return nil, nil, err
	}
	client, err := bench.NewClient(h.caPEM, conns)
	if err != nil {
		return nil, nil, err
	}
	return &bench.Target{
		Name:       name,
		URL:        "https://" + addr + "/validate-karpenter-k8s-aws-ec2nodeclass",
		PID:        p.PID,
		MetricsURL: "http://" + metrics + "/metrics",
		Client:     client,
	}, p, nil
}

// classes returns n role-based classes named prefix-NNNNNN: nodeRole
// exists, trusts EC2 and may be passed, so every one is allowed.
func classes(prefix string, n int) []bench.Class {
	out := make([]bench.Class, n)
	for i := range out {
		out[i] = bench.Class{Name: fmt.Sprintf("%s-%06d", prefix, i), Role: nodeRole}
	}
	return out
}

// requests builds one checked, allowed request per class.
func requests(cs []bench.Class) []bench.Request {
	out := make([]bench.Request, len(cs))
	for i, c := range cs {
		out[i] = bench.Request{Body: bench.ReviewBody(c, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), Allowed: true, Check: true}
	}
	return out
}

// budgetRate and budgetBurst are the IAM call budget of startServe:
// none to speak of, unless the scenario asks for serve's defaults
// (withDefaultBudget in extra).
func budgetRate(extra []string) string {
	if slices.Contains(extra, withDefaultBudget) {
		return "10"
	}
	return "1000000"
}

func budgetBurst(extra []string) string {
	if slices.Contains(extra, withDefaultBudget) {
		return "100"
	}
	return "1000000"
}

// withDefaultBudget, among startServe's extra arguments, gives serve its
// default IAM call budget (--iam-call-rate 10, --iam-call-burst 100); it
// is not passed on.
const withDefaultBudget = "<default budget>"

// runAll runs the selected scenarios in order and returns the figures
// line; a scenario not run shows as "-".
func (h *harness) runAll(ctx context.Context) (string, error) {
	var (
		warm *warmResult
		cold *coldResult
		mem  *memResult
		org  *orgResult
		err  error
	)
	if h.c.run("warm") || h.c.run("cold") || h.c.run("org") {
		if h.trivial, h.trivialProc, err = h.startTrivial(ctx, poolSize); err != nil {
			return "", err
		}
	}
	if h.c.run("warm") {
		if h.noop, h.noopProc, err = h.startBaseline(ctx, "noop", poolSize); err != nil {
			return "", err
		}
	}
	if h.c.run("warm") {
		r, err := h.warmScenario(ctx)
		if err != nil {
			return "", fmt.Errorf("warm scenario: %w", err)
		}
		warm = &r
	}
	if h.c.run("cold") {
		r, err := h.coldScenario(ctx)
		if err != nil {
			return "", fmt.Errorf("cold scenario: %w", err)
		}
		cold = &r
	}
	if h.c.run("org") {
		r, err := h.orgScenario(ctx)
		if err != nil {
			return "", fmt.Errorf("org scenario: %w", err)
		}
		org = &r
	}
	for _, p := range []*bench.Process{h.trivialProc, h.noopProc} {
		if p == nil {
			continue
		}
		if err := p.Stop(10 * time.Second); err != nil {
			return "", err
		}
	}
	if h.c.run("memory") {
		r, err := h.memoryScenario(ctx)
		if err != nil {
			return "", fmt.Errorf("memory scenario: %w", err)
		}
		mem = &r
	}
	var single coldSingleResult
	if h.c.run("coldsingle") {
		if single, err = h.coldSingleScenario(ctx); err != nil {
			return "", fmt.Errorf("cold single scenario: %w", err)
		}
	}
	var boot *bootstrapResult
	if h.c.run("bootstrap") {
		r, err := h.bootstrapScenario(ctx)
		if err != nil {
			return "", fmt.Errorf("bootstrap scenario: %w", err)
		}
		boot = &r
	}
	h.summary(warm, cold, mem)
	line := figures(warm, cold, mem) + single.figures() + boot.figures()
	if org != nil {
		line += " " + org.figures()
	}
	// Last: it leaves its classes in the control plane.
	if h.c.run("audit") {
		r, err := h.auditScenario(ctx)
		if err != nil {
			return "", fmt.Errorf("audit scenario: %w", err)
		}
		line = r.figures() + "\n" + line
	}
	return line, nil
}

// figures formats the last line of `make bench`.
func figures(warm *warmResult, cold *coldResult, mem *memResult) string {
	p50, p99, tput, allocs, floor := "-", "-", "-", "-", "-"
	if warm != nil {
		ref := warm.levels[warm.refIndex]
		p50 = fmt.Sprintf("%.2f", ratio(ref.serve.lat.P50, ref.trivial.lat.P50))
		p99 = fmt.Sprintf("%.2f", ratio(ref.serve.lat.P99, ref.trivial.lat.P99))
		tput = fmt.Sprintf("%.2f", ref.serve.throughput/ref.trivial.throughput)
		allocs = fmt.Sprintf("%.0f", ref.serve.allocsPerReq)
		floor = fmt.Sprintf("%.2f", ratio(ref.serve.cpuPerReq, ref.noop.cpuPerReq))
	}
	coldP99, calls, distinct, perClass := "-", "-", "-", "-"
	if cold != nil {
		coldP99 = fmt.Sprintf("%.1f", bench.Ms(cold.cold.P99))
		calls, distinct = fmt.Sprint(cold.iamCalls), fmt.Sprint(cold.distinct)
		perClass = fmt.Sprintf("%.2f", float64(cold.iamCalls)/float64(cold.classes))
	}
	rss := "-"
	if mem != nil {
		rss = fmt.Sprintf("%.1f", mem.maxRSSMiB())
	}
	return fmt.Sprintf("bench: p50_ratio=%s p99_ratio=%s throughput_ratio=%s allocs_per_req=%s floor_cpu_ratio=%s cold_p99_ms=%s iam_calls=%s iam_calls_per_class=%s distinct_questions=%s rss_mb=%s node_checks_us=%s",
		p50, p99, tput, allocs, floor, coldP99, calls, perClass, distinct, rss, nodeChecksCost())
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
