// Command ncg-bench is `make bench`'s load harness: it starts a control
// plane (envtest), the local IAM endpoint, the real `nodeclass-guard serve`
// and a trivial webhook, then runs the warm, cold-cache and memory
// scenarios and prints one line of figures last. docs/benchmarks.md
// describes the method and how to read the output.
//
//	ncg-bench --binary bin/nodeclass-guard [flags]
//	ncg-bench trivial --cert-dir DIR --addr HOST:PORT --metrics-addr HOST:PORT
//	ncg-bench noop --cert-dir DIR --addr HOST:PORT --metrics-addr HOST:PORT
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

func main() {
	// The harness's controller-runtime client (creating the audit's
	// classes) logs nothing worth reading here.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && (os.Args[1] == "trivial" || os.Args[1] == "noop") {
		os.Exit(runTrivial(ctx, os.Args[1], os.Args[2:]))
	}
	// The harness's own memory is not measured: fewer collections leave
	// more of the two cores to the processes under test.
	debug.SetGCPercent(400)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// runTrivial is the process of a baseline webhook, started by the
// harness: the trivial webhook, or controller-runtime's no-op validator.
func runTrivial(ctx context.Context, name string, args []string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var o bench.TrivialOptions
	fs.StringVar(&o.CertDir, "cert-dir", "", "folder holding tls.crt and tls.key")
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:9443", "HTTPS address")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "127.0.0.1:8080", "address of /metrics and /readyz")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	serve := bench.RunTrivial
	if name == "noop" {
		serve = bench.RunNoop
	}
	if err := serve(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// config is the harness's flags.
type config struct {
	binary      string
	root        string
	assets      string
	crds        string
	snapshot    string
	rounds      int
	roundTime   time.Duration
	conc        []int
	openRate    float64
	openTime    time.Duration
	warmClasses int

	coldClasses    int
	coldAdmissions int
	coldLatency    time.Duration

	auditClasses int
	auditQPS     float64
	auditConc    int

	memoryClasses     int
	memoryConcurrency int
	cacheSize         int

	scenarios    map[string]bool
	serveEnv     []string
	cpuProfile   string
	serveProfile string
	heapProfile  string
	keep         bool
	started      int64 // Unix time `make bench` started, for its total time
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	var conc, scenarios string
	fs := flag.NewFlagSet("ncg-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.binary, "binary", "bin/nodeclass-guard", "the nodeclass-guard binary under test")
	fs.StringVar(&c.root, "root", ".", "the repository root")
	fs.StringVar(&c.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder holding kube-apiserver and etcd (default bin/k8s/<KUBERNETES_VERSION>)")
	fs.StringVar(&c.crds, "crds", "", "folder holding Karpenter's v1 CRDs (default bin/crds/v1)")
	fs.StringVar(&c.snapshot, "iam-snapshot", "testdata/iam/sample-snapshot.json", "the snapshot the local IAM endpoint serves")
	fs.IntVar(&c.rounds, "rounds", 3, "alternating rounds per load level (each target runs once per round)")
	fs.DurationVar(&c.roundTime, "round-time", time.Second, "how long each target is driven per round")
	fs.StringVar(&conc, "concurrency", "1,16,64", "closed-loop concurrency levels")
	fs.Float64Var(&c.openRate, "open-rate", 1000, "open-loop requests per second (0: half the slower target's closed-loop throughput at concurrency 16, rounded down to 100)")
	fs.DurationVar(&c.openTime, "open-time", time.Second, "how long each target is driven open-loop per round")
	fs.IntVar(&c.warmClasses, "warm-classes", 50, "distinct EC2NodeClasses in the warm scenario")
	fs.IntVar(&c.coldClasses, "cold-classes", 50, "distinct EC2NodeClasses in the cold-cache burst")
	fs.IntVar(&c.coldAdmissions, "cold-admissions", 1000, "concurrent admissions in the cold-cache burst")
	fs.DurationVar(&c.coldLatency, "cold-iam-latency", 50*time.Millisecond, "latency the local IAM endpoint adds in the cold scenario")
	fs.IntVar(&c.auditClasses, "audit-classes", 1000, "EC2NodeClasses in the cluster during the audit scenario")
	fs.Float64Var(&c.auditQPS, "audit-qps", 100, "serve's --audit-qps in the audit scenario (50 times the default, so that the pass is short and dense)")
	fs.IntVar(&c.auditConc, "audit-concurrency", 16, "closed-loop admissions in flight during and after the audit pass")
	fs.IntVar(&c.memoryClasses, "memory-classes", 100000, "distinct EC2NodeClasses passed through in the memory scenario")
	fs.IntVar(&c.memoryConcurrency, "memory-concurrency", 32, "admissions the memory scenario keeps in flight (and connections it opens)")
	fs.IntVar(&c.cacheSize, "iam-cache-size", 4096, "serve's --iam-cache-size (its default)")
	fs.Func("serve-env", "KEY=VALUE added to serve's environment (repeatable), e.g. GOMEMLIMIT=40MiB to measure a deployment setting", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		c.serveEnv = append(c.serveEnv, v)
		return nil
	})
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (load generator and IAM endpoint) to this file")
	fs.StringVar(&c.serveProfile, "serve-profile", "", "write a CPU profile of serve during the warm reference level (closed loop, concurrency 16) to this file; needs serve's --pprof-bind-address")
	fs.StringVar(&c.heapProfile, "serve-heap-profile", "", "write serve's heap profile at each point of the memory scenario to this file (.1, .2, ... for the later points); needs serve's --pprof-bind-address")
	fs.StringVar(&scenarios, "scenarios", "warm,cold,memory,coldsingle,bootstrap,audit", "the scenarios to run (always in this order; org, the cold burst in an organization with an SCP, on demand: it does not pass yet)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work folder (logs, certificates) after the run")
	fs.Int64Var(&c.started, "started", 0, "Unix time at which `make bench` started (hack/bench.sh sets it), to report its total time")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "ncg-bench: --concurrency=%q: want positive integers separated by commas\n", conc)
			return 2
		}
		c.conc = append(c.conc, n)
	}
	c.scenarios = map[string]bool{}
	for _, s := range strings.Split(scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "warm", "cold", "org", "memory", "coldsingle", "bootstrap", "audit":
			c.scenarios[s] = true
		default:
			fmt.Fprintf(stderr, "ncg-bench: --scenarios: unknown scenario %q (want warm, cold, org, memory, coldsingle, bootstrap, audit)\n", s)
			return 2
		}
	}
	if err := c.resolve(); err != nil {
		fmt.Fprintln(stderr, "ncg-bench:", err)
		return 2
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "ncg-bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "ncg-bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	h, err := newHarness(ctx, c, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "ncg-bench:", err)
		return 1
	}
	line, err := h.runAll(ctx)
	if stopErr := h.close(); stopErr != nil {
		fmt.Fprintln(stderr, "ncg-bench: stopping:", stopErr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ncg-bench:", err)
		return 1
	}
	if c.started > 0 {
		fmt.Fprintf(stdout, "make bench took %ds (Go benchmarks and builds included; budget 180s on 2 cores)\n", time.Now().Unix()-c.started)
	}
	fmt.Fprintln(stdout, line)
	return 0
}

// run reports whether scenario is selected.
func (c *config) run(scenario string) bool { return c.scenarios[scenario] }

// resolve makes paths absolute and fills the defaults that depend on the
// repository.
func (c *config) resolve() error {
	root, err := filepath.Abs(c.root)
	if err != nil {
		return err
	}
	c.root = root
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	if c.assets == "" {
		v, err := kubernetesVersion(root)
		if err != nil {
			return err
		}
		c.assets = filepath.Join(root, "bin", "k8s", v)
	}
	if c.crds == "" {
		c.crds = filepath.Join(root, "bin", "crds", "v1")
	}
	c.binary, c.assets, c.crds, c.snapshot = abs(c.binary), abs(c.assets), abs(c.crds), abs(c.snapshot)
	if _, err := os.Stat(c.binary); err != nil {
		return fmt.Errorf("--binary: %w (run `make build`)", err)
	}
	if c.rounds <= 0 || c.roundTime <= 0 || c.openTime <= 0 {
		return fmt.Errorf("--rounds, --round-time and --open-time must be positive")
	}
	if c.coldClasses <= 0 || c.coldAdmissions < c.coldClasses || c.warmClasses <= 0 || c.memoryClasses <= 0 || c.memoryConcurrency <= 0 {
		return fmt.Errorf("class and admission counts must be positive, with --cold-admissions >= --cold-classes")
	}
	return nil
}

// kubernetesVersion reads KUBERNETES_VERSION from hack/versions.env.
func kubernetesVersion(root string) (string, error) {
	path := filepath.Join(root, "hack", "versions.env")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "KUBERNETES_VERSION="); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s has no KUBERNETES_VERSION", path)
}
