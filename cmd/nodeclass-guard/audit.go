package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/nodeclass-guard/nodeclass-guard/audit"
	"github.com/nodeclass-guard/nodeclass-guard/check"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// auditFlags are serve's flags for the continuous audit and the leader
// election that gates it.
type auditFlags struct {
	interval       time.Duration
	qps            float64
	leaderElect    bool
	leaseName      string
	leaseNamespace string
}

func (f *auditFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&f.interval, "audit-interval", audit.DefaultInterval, "time between two audit passes over every EC2NodeClass, NodePool and EKS NodeClass in the cluster (objects whose checked fields change are re-checked at once); 0 disables the audit")
	fs.Float64Var(&f.qps, "audit-qps", audit.DefaultQPS, "objects the audit re-checks per second, at most (a cold class costs a few batched IAM calls; cached answers none)")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect one replica to run the audit, through a Lease; admission runs on every replica either way")
	fs.StringVar(&f.leaseName, "leader-election-id", "nodeclass-guard-audit", "name of the audit's Lease")
	fs.StringVar(&f.leaseNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the audit's Lease (default $POD_NAMESPACE, else the pod's own namespace in a cluster)")
}

func (f *auditFlags) validate() error {
	if f.interval < 0 {
		return fmt.Errorf("--audit-interval=%s: want 0 (off) or a positive duration", f.interval)
	}
	if f.qps <= 0 {
		return fmt.Errorf("--audit-qps=%g: want a positive rate", f.qps)
	}
	return nil
}

// addAuditor adds the audit to the manager (leader only), unless
// --audit-interval=0.
func addAuditor(mgr manager.Manager, checker *rules.Checker, f *auditFlags, inflight *inFlight, log logr.Logger) error {
	if f.interval == 0 {
		log.WithName("setup").Info("audit disabled (--audit-interval=0)")
		return nil
	}
	m := audit.NewMetrics()
	m.MustRegister(crmetrics.Registry)
	return mgr.Add(audit.New(audit.Options{
		Checker:  checker,
		Cache:    mgr.GetCache(),
		Recorder: mgr.GetEventRecorder("nodeclass-guard"),
		Interval: f.interval,
		QPS:      f.qps,
		Busy:     inflight.busy,
		Metrics:  m,
		Log:      log.WithName("audit"),
	}))
}

// inFlight counts the admissions being answered, so that the audit can
// give way to them.
type inFlight struct{ n atomic.Int64 }

func (f *inFlight) busy() bool { return f.n.Load() > 0 }

// wrap counts h's requests while they run, reading and decoding included.
func (f *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer f.n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// everyReplica runs a Runnable on every replica, leader or not.
type everyReplica struct{ manager.Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }

// runAudit is `nodeclass-guard audit`: check and report every class and
// NodePool of a live cluster, read-only, as `check` reports files.
// auditOptions are audit's flags.
type auditOptions struct {
	iamf       iamFlags
	output     string
	kubeconfig string
}

// register adds audit's flags to fs.
func (o *auditOptions) register(fs *pflag.FlagSet) {
	o.iamf.register(fs, "deny")
	fs.StringVarP(&o.output, "output", "o", "text", "report format: text or json")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config, current context; in-cluster when run in a pod)")
}

func runAudit(ctx context.Context, o *auditOptions, args []string, stdout, stderr io.Writer) int {
	iamf, output, kubeconfig := o.iamf, o.output, o.kubeconfig
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nodeclass-guard audit: "+format+"\n", a...)
		return exitUsage
	}
	if len(args) > 0 {
		return fail("unexpected arguments %q", args)
	}
	if output != "text" && output != "json" {
		return fail("-o %q: want text or json", output)
	}
	if err := iamf.validate(); err != nil {
		return fail("%v", err)
	}
	restConfig, err := loadRESTConfig(kubeconfig)
	if err != nil {
		return fail("%v", err)
	}
	scheme := runtime.NewScheme()
	if err := rules.AddToClientScheme(scheme); err != nil {
		return fail("%v", err)
	}
	cl, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return fail("connecting to the cluster: %v", err)
	}
	listCtx, cancel := context.WithTimeout(ctx, time.Minute)
	docs, skipped, err := check.ReadCluster(listCtx, cl)
	cancel()
	if err != nil {
		return fail("%v", err)
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "nodeclass-guard audit: note: the cluster does not serve %s\n", s)
	}
	view, eks, err := iamf.view(ctx, nil)
	if err != nil {
		return fail("%v", err)
	}
	cfg, err := iamf.config(ctx, view, eks, iamf.controllerRole, func(msg string) {
		fmt.Fprintf(stderr, "nodeclass-guard audit: warning: %s\n", msg)
	})
	if err != nil {
		return fail("%v", err)
	}
	// NodePools resolve their class against what was listed, then the
	// cluster (a class created since).
	inputs := check.NewInputClasses(docs, rules.ClusterClasses{Reader: cl})
	cfg.Classes, cfg.NodePools = inputs, inputs
	iamf.versionFromEKS(ctx, &cfg, func(msg string) {
		fmt.Fprintf(stderr, "nodeclass-guard audit: warning: %s\n", msg)
	})
	// The node-join checks read the cluster's kube-system/aws-auth.
	cfg.AWSAuth = rules.ClusterAWSAuth{Reader: cl}
	report := check.Run(ctx, rules.NewChecker(cfg), docs)
	if output == "json" {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nodeclass-guard audit: writing the report: %v\n", err)
		return exitFailure
	}
	if report.Denied() {
		return exitDenied
	}
	return exitOK
}
