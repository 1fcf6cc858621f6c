package main

import (
	"context"
	"crypto/tls"
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/spf13/pflag"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// karpenterRoleAnnotation is where IRSA records a service account's role.
const karpenterRoleAnnotation = "eks.amazonaws.com/role-arn"

// serveOptions are serve's flags.
type serveOptions struct {
	iamf            iamFlags
	certDir         string
	host            string
	port            int
	metricsAddr     string
	metricsSecure   bool
	metricsCertDir  string
	probeAddr       string
	pprofAddr       string
	kubeconfig      string
	karpenterSA     string
	karpenterDeploy string
	shutdownTimeout time.Duration
	verdictTTL      time.Duration
	limits          webhook.ServerOptions
	memoryLimitMiB  int64
	auditf          auditFlags
	zapOpts         zap.Options
}

// register adds serve's flags to fs.
func (o *serveOptions) register(fs *pflag.FlagSet) {
	o.iamf.register(fs, "allow")
	o.iamf.registerBudget(fs)
	fs.StringVar(&o.certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "folder holding tls.crt and tls.key; reloaded when they change")
	fs.StringVar(&o.host, "host", "", "address the webhook server listens on (all by default)")
	fs.IntVar(&o.port, "port", 9443, "webhook HTTPS port")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "metrics address, or 0 to disable")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", false, "serve metrics over HTTPS, authenticated and authorized through the Kubernetes API (TokenReview, SubjectAccessReview)")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", filepath.Join(os.TempDir(), "k8s-metrics-server", "serving-certs"), "with --metrics-secure: folder holding tls.crt and tls.key for the metrics port (a self-signed certificate is made when it holds none)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "address of net/http/pprof, for profiling (off when empty; never expose it)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file, when running outside a cluster")
	fs.StringVar(&o.karpenterDeploy, "karpenter-deployment", "", "NAMESPACE/NAME of Karpenter's Deployment, whose controller image tag gives the Karpenter version when --karpenter-version is not set; default: the namespace and name of --karpenter-service-account")
	fs.StringVar(&o.karpenterSA, "karpenter-service-account", "karpenter/karpenter", "NAMESPACE/NAME of Karpenter's service account, read for its "+karpenterRoleAnnotation+" annotation when --controller-role is not set")
	fs.DurationVar(&o.shutdownTimeout, "graceful-shutdown-timeout", 25*time.Second, "how long in-flight admissions may take to finish on SIGTERM")
	fs.DurationVar(&o.verdictTTL, "verdict-cache-ttl", 30*time.Second, "how long the verdict of an object is served again to the same object (a GitOps replay, a server-side dry-run) while no answer or watched object it was judged from changed, at most --iam-cache-ttl and --iam-cache-negative-ttl; 0 disables")
	fs.IntVar(&o.limits.MaxConnections, "max-connections", webhook.DefaultMaxConnections, "open connections to the webhook port; more are closed as soon as they are accepted")
	fs.IntVar(&o.limits.MaxInFlight, "max-requests-in-flight", webhook.DefaultMaxInFlight, "admission requests served at once; more are refused with HTTP 429 (the API server then applies failurePolicy)")
	fs.IntVar(&o.limits.MaxConnectionsPerSource, "max-connections-per-source", 0, "open connections from one client address; more are closed as soon as they are accepted (0: a quarter of --max-connections)")
	fs.IntVar(&o.limits.MaxInFlightPerSource, "max-requests-in-flight-per-source", 0, "admission requests served at once for one client address; more are refused with HTTP 429 (0: a quarter of --max-requests-in-flight)")
	fs.Int64Var(&o.limits.MaxBodyBytes, "max-request-bytes", webhook.DefaultMaxBodyBytes, "largest admission request body; larger ones are refused with 413 unread")
	fs.Int64Var(&o.limits.MaxBodyBytesInFlight, "max-request-bytes-in-flight", webhook.DefaultMaxBodyBytesInFlight, "request bodies (by Content-Length) read or decoded at once; more are refused with HTTP 429")
	fs.DurationVar(&o.limits.ReadTimeout, "request-read-timeout", webhook.DefaultReadTimeout, "bound on a TLS handshake and on reading one request, headers and body")
	fs.Int64Var(&o.memoryLimitMiB, "memory-limit-mib", 0, "the container's memory limit in MiB (deploy/ passes limits.memory); the Go runtime's soft memory limit (GOMEMLIMIT) is set to "+strconv.Itoa(memoryLimitPercent)+"% of it unless GOMEMLIMIT is set; 0 leaves it alone")
	o.auditf.register(fs)
	// controller-runtime's zap flags (--zap-log-level, ...) are Go flags.
	gofs := goflag.NewFlagSet("zap", goflag.ContinueOnError)
	o.zapOpts.BindFlags(gofs)
	fs.AddGoFlagSet(gofs)
}

func runServe(ctx context.Context, o *serveOptions, args []string, stderr io.Writer) int {
	iamf, certDir, host, port, metricsAddr, metricsSecure, metricsCertDir, probeAddr, pprofAddr := o.iamf, o.certDir, o.host, o.port, o.metricsAddr, o.metricsSecure, o.metricsCertDir, o.probeAddr, o.pprofAddr
	kubeconfig, karpenterSA, karpenterDeploy, shutdownTimeout, limits, memoryLimitMiB, auditf, zapOpts := o.kubeconfig, o.karpenterSA, o.karpenterDeploy, o.shutdownTimeout, o.limits, o.memoryLimitMiB, o.auditf, o.zapOpts
	verdictTTL := o.verdictTTL
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nodeclass-guard serve: "+format+"\n", a...)
		return exitUsage
	}
	if len(args) > 0 {
		return fail("unexpected arguments %q", args)
	}
	if err := iamf.validate(); err != nil {
		return fail("%v", err)
	}
	if err := auditf.validate(); err != nil {
		return fail("%v", err)
	}
	saNamespace, saName, ok := strings.Cut(karpenterSA, "/")
	if !ok || saNamespace == "" || saName == "" {
		return fail("--karpenter-service-account=%q: want NAMESPACE/NAME", karpenterSA)
	}
	if karpenterDeploy == "" {
		karpenterDeploy = karpenterSA
	}
	deployNamespace, deployName, ok := strings.Cut(karpenterDeploy, "/")
	if !ok || deployNamespace == "" || deployName == "" {
		return fail("--karpenter-deployment=%q: want NAMESPACE/NAME", karpenterDeploy)
	}

	if limits.MaxConnections <= 0 || limits.MaxInFlight <= 0 || limits.MaxBodyBytes <= 0 || limits.MaxBodyBytesInFlight <= 0 || limits.ReadTimeout <= 0 {
		return fail("--max-connections, --max-requests-in-flight, --max-request-bytes, --max-request-bytes-in-flight and --request-read-timeout must be positive")
	}

	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	setup := log.WithName("setup")
	if soft, ok := setMemoryLimit(memoryLimitMiB); ok {
		setup.Info("Go soft memory limit set from --memory-limit-mib", "limitMiB", memoryLimitMiB, "softLimitBytes", soft)
	}

	restConfig, err := loadRESTConfig(kubeconfig)
	if err != nil {
		return fail("%v", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fail("%v", err)
	}
	if err := rules.AddToClientScheme(scheme); err != nil {
		return fail("%v", err)
	}

	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: metricsSecure, CertDir: metricsCertDir}
	if metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	tlsMin := func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }
	// HTTP/1.1 only on the metrics port too: HTTP/2 lets one connection
	// carry unbounded work (rapid reset), and scrapers speak HTTP/1.1.
	http1 := func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }
	metricsOpts.TLSOpts = []func(*tls.Config){tlsMin, http1}
	verdicts := webhook.NewMetrics()
	verdicts.MustRegister(crmetrics.Registry)
	limits.Host, limits.Port, limits.CertDir = host, port, certDir
	limits.TLSOpts = []func(*tls.Config){tlsMin}
	limits.ShutdownTimeout = shutdownTimeout
	limits.Metrics = verdicts
	srv := webhook.NewServer(limits)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		WebhookServer:           srv,
		GracefulShutdownTimeout: &shutdownTimeout,
		Logger:                  log,
		// The only ConfigMap the webhook reads is kube-system/aws-auth, and
		// its RBAC (a Role with resourceNames) allows no other: the cache
		// lists and watches that one object.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {
				Namespaces: map[string]cache.Config{rules.AWSAuthNamespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", rules.AWSAuthName),
			},
		}},
		// Leader election gates the audit only; admission, metrics and
		// probes run on every replica.
		LeaderElection:                auditf.leaderElect,
		LeaderElectionID:              auditf.leaseName,
		LeaderElectionNamespace:       auditf.leaseNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fail("creating the manager: %v", err)
	}

	iamMetrics := authz.NewMetrics()
	iamMetrics.MustRegister(crmetrics.Registry)

	view, eks, err := iamf.view(ctx, iamMetrics)
	if err != nil {
		return fail("%v", err)
	}
	controllerRole := iamf.controllerRole
	if controllerRole == "" {
		controllerRole = karpenterRoleFromServiceAccount(ctx, mgr.GetAPIReader(), saNamespace, saName, func(msg string) {
			setup.Info(msg)
		})
	}
	cfg, err := iamf.config(ctx, view, eks, controllerRole, func(msg string) { setup.Info(msg) })
	if err != nil {
		return fail("%v", err)
	}
	if iamf.karpenterVersion == "" {
		cfg.Karpenter = karpenterVersionFromDeployment(ctx, mgr.GetAPIReader(), deployNamespace, deployName, func(msg string) {
			setup.Info(msg)
		})
	}
	// Verdicts are kept while nothing they were judged from changes: the
	// views' answers (iamf.changes) and the watched objects (informers).
	cfg.Changes = iamf.changes
	if cfg.Changes == nil {
		cfg.Changes = &authz.Changes{}
	}
	if verdictTTL < 0 {
		return fail("--verdict-cache-ttl=%s: want 0 or more", verdictTTL)
	}
	// A verdict is kept no longer than the answers it was judged from.
	cfg.VerdictTTL = min(verdictTTL, iamf.cacheTTL, iamf.negativeTTL)
	setup.Info("permission checks ask Karpenter's requests as modelled", "karpenter", cfg.Karpenter.String(),
		"version", cfg.Karpenter.Model.String(), "source", cfg.Karpenter.Source)
	cfg.Classes = rules.ClusterClasses{Reader: mgr.GetClient()}
	// NodePools (image architectures) and NodeClaims (the update guard)
	// through the manager's cache too.
	cfg.NodePools = rules.ClusterClasses{Reader: mgr.GetClient()}
	cfg.NodeClaims = rules.ClusterClasses{Reader: mgr.GetClient()}
	if cfg.KubernetesVersion == "" {
		v, err := apiServerVersion(mgr.GetConfig())
		if err != nil {
			setup.Info("could not read the API server's version; AMI aliases are reported as not checked (set --kubernetes-version)", "error", err.Error())
		}
		cfg.KubernetesVersion = v
	}
	setup.Info("kubernetes version for AMI aliases", "version", cfg.KubernetesVersion)
	// aws-auth is read through the manager's cache, which watches that one
	// ConfigMap (cache options above; RBAC allows no other).
	cfg.AWSAuth = rules.ClusterAWSAuth{Reader: mgr.GetClient()}
	checker := rules.NewChecker(cfg)
	if checker.ControllerARN() == "" {
		setup.Info("the Karpenter controller's role is unknown: iam:PassRole and launch permission checks are skipped and every admission carries a PermissionChecksSkipped warning; set --controller-role")
	}

	// The manager starts its webhook server only once GetWebhookServer has
	// been called: register through it, not through srv directly.
	hooks := mgr.GetWebhookServer()
	inflight := &inFlight{}
	for path, wh := range webhook.Handlers(checker, verdicts) {
		wh.WithContextFunc = finishOnShutdown(ctx, shutdownTimeout)
		hooks.Register(path, inflight.wrap(wh))
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fail("%v", err)
	}
	if err := mgr.AddReadyzCheck("webhook", hooks.StartedChecker()); err != nil {
		return fail("%v", err)
	}
	// Ready once the informers the rules read have synced: the first
	// admissions would otherwise wait for the sync, inside their deadline.
	var synced atomic.Bool
	if err := mgr.AddReadyzCheck("informers", func(*http.Request) error {
		if !synced.Load() {
			return errors.New("the informers of node classes, NodePools, NodeClaims and aws-auth have not synced yet")
		}
		return nil
	}); err != nil {
		return fail("%v", err)
	}
	if err := mgr.Add(everyReplica{warmInformers(mgr, &synced, cfg.Changes)}); err != nil {
		return fail("%v", err)
	}
	if pv, ok := cfg.IAM.(*authz.PolicyView); ok && checker.ControllerARN() != "" {
		// The controller's policies are read at start and kept fresh, so
		// that no admission waits for their read.
		arn := checker.ControllerARN()
		if err := mgr.Add(everyReplica{manager.RunnableFunc(func(ctx context.Context) error {
			pv.Keep(ctx, arn)
			return nil
		})}); err != nil {
			return fail("%v", err)
		}
	}
	if err := addAuditor(mgr, checker, &auditf, inflight, log); err != nil {
		return fail("%v", err)
	}
	setup.Info("starting", "version", version, "controllerRole", checker.ControllerARN(), "cluster", iamf.clusterName,
		"region", iamf.region, "iam", iamSource(&iamf), "eksEndpoint", iamf.eksEndpoint, "onIAMError", iamf.onIAMError, "port", port,
		"auditInterval", auditf.interval.String(), "auditQPS", auditf.qps, "leaderElect", auditf.leaderElect)
	if err := mgr.Start(ctx); err != nil {
		setup.Error(err, "manager stopped")
		return exitFailure
	}
	setup.Info("stopped")
	return exitOK
}

// finishOnShutdown lets the admissions in flight at SIGTERM finish with
// their real verdict. controller-runtime's webhook server derives each
// request's context from its own, and cancels that when it starts shutting
// down, before it waits for the requests in flight: without this, an
// admission waiting on IAM would end at once as IAMUnavailable (a denial
// with --on-iam-error=deny). The request's context still ends as before
// when the client goes away or the handler returns, and, once shutdown has
// begun, at the latest grace later.
func finishOnShutdown(shutdown context.Context, grace time.Duration) func(context.Context, *http.Request) context.Context {
	return func(ctx context.Context, _ *http.Request) context.Context {
		detached, cancel := context.WithCancel(context.WithoutCancel(ctx))
		context.AfterFunc(ctx, func() {
			if shutdown.Err() == nil {
				cancel()
				return
			}
			time.AfterFunc(grace, cancel)
		})
		return detached
	}
}

func iamSource(f *iamFlags) string {
	switch {
	case f.snapshot != "":
		return "snapshot " + f.snapshot
	case f.endpoint != "":
		return "IAM API at " + f.endpoint
	}
	return "IAM API"
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %v", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes configuration (in-cluster, KUBECONFIG or --kubeconfig): %v", err)
	}
	return cfg, nil
}

// karpenterRoleFromServiceAccount reads the IRSA annotation of Karpenter's
// service account; "" when it cannot.
func karpenterRoleFromServiceAccount(ctx context.Context, r client.Reader, ns, name string, note func(string)) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var sa corev1.ServiceAccount
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sa); err != nil {
		note(fmt.Sprintf("--controller-role is not set and service account %s/%s could not be read (%v)", ns, name, err))
		return ""
	}
	arn := sa.Annotations[karpenterRoleAnnotation]
	if arn == "" {
		note(fmt.Sprintf("--controller-role is not set and service account %s/%s has no %s annotation (EKS Pod Identity?)", ns, name, karpenterRoleAnnotation))
		return ""
	}
	note(fmt.Sprintf("controller role %s read from service account %s/%s", arn, ns, name))
	return arn
}

// karpenterVersionFromDeployment reads the Karpenter version from the
// image tag of the controller container of Karpenter's Deployment
// (public.ecr.aws/karpenter/controller:1.3.2@sha256:...); when it cannot,
// it says why and returns the newest modelled version.
func karpenterVersionFromDeployment(ctx context.Context, r client.Reader, ns, name string, note func(string)) karpenter.Resolved {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fallback := func(why string) karpenter.Resolved {
		d := karpenter.Default("default: the newest modelled version, since " + why)
		note(fmt.Sprintf("--karpenter-version is not set and %s; using %s", why, d.Model))
		return d
	}
	var dep appsv1.Deployment
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &dep); err != nil {
		return fallback(fmt.Sprintf("Deployment %s/%s could not be read (%v)", ns, name, err))
	}
	image, tag := karpenterImageTag(dep.Spec.Template.Spec.Containers)
	if tag == "" {
		return fallback(fmt.Sprintf("Deployment %s/%s has no Karpenter controller image with a version tag (image %q)", ns, name, image))
	}
	source := fmt.Sprintf("the image tag of Deployment %s/%s (%s)", ns, name, image)
	v, err := karpenter.Resolve(tag, source, "image tag of Deployment "+ns+"/"+name)
	if err != nil {
		return fallback(err.Error())
	}
	return v
}

// karpenterImageTag finds Karpenter's controller container (named
// controller, else the first whose image names karpenter) and returns its
// image and tag ("" when it has none: a digest only).
func karpenterImageTag(cs []corev1.Container) (image, tag string) {
	pick := -1
	for i, c := range cs {
		if c.Name == "controller" {
			pick = i
			break
		}
		if pick < 0 && strings.Contains(c.Image, "karpenter") {
			pick = i
		}
	}
	if pick < 0 {
		return "", ""
	}
	image = cs[pick].Image
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		tag = ref[i+1:]
	}
	return image, tag
}

// warmInformers starts the informers NodePool admissions read, so that the
// first NodePool admission does not wait for a cache sync. A missing CRD
// (no EKS Auto Mode) is fine.
// informerSyncWait bounds how long readiness waits for the informers.
const informerSyncWait = 30 * time.Second

func warmInformers(mgr manager.Manager, synced *atomic.Bool, changes *authz.Changes) manager.RunnableFunc {
	return func(ctx context.Context) error {
		log := mgr.GetLogger().WithName("informers")
		// An informer that cannot sync (RBAC, an API server that does not
		// answer) must not keep the webhook unready: the rules report
		// what they could not read.
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(informerSyncWait):
				if !synced.Swap(true) {
					log.Info("informers not synced; ready anyway, admissions read what they can", "waited", informerSyncWait.String())
				}
			}
		}()
		for _, obj := range []client.Object{&rules.EC2NodeClass{}, &rules.NodeClass{}, &rules.NodePool{}, &rules.NodeClaim{}, &corev1.ConfigMap{}} {
			inf, err := mgr.GetCache().GetInformer(ctx, obj)
			if err == nil {
				// Verdicts read these objects (a class's NodePools, a
				// NodePool's class, aws-auth): a change ends the kept ones.
				// NodeClaims are read by updates only, which are never kept.
				if _, claims := obj.(*rules.NodeClaim); !claims {
					_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
						AddFunc:    func(any) { changes.Add() },
						UpdateFunc: func(any, any) { changes.Add() },
						DeleteFunc: func(any) { changes.Add() },
					})
				}
			}
			if err != nil {
				var noMatch *meta.NoKindMatchError
				if meta.IsNoMatchError(err) || errors.As(err, &noMatch) || apierrors.IsNotFound(err) {
					log.Info("kind not served by this cluster; references to it are reported as not found", "kind", fmt.Sprintf("%T", obj))
					continue
				}
				log.Error(err, "starting informer", "kind", fmt.Sprintf("%T", obj))
			}
		}
		// GetInformer returns once its informer has synced.
		synced.Store(true)
		<-ctx.Done()
		return nil
	}
}

// clusterClasses resolves NodePool references for `check --kubeconfig`.
type clusterClasses = rules.ClusterClasses

func newClusterClasses(kubeconfig string) (*clusterClasses, error) {
	cfg, err := loadRESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := rules.AddToClientScheme(scheme); err != nil {
		return nil, err
	}
	if err := corev1.AddToScheme(scheme); err != nil { // aws-auth
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &clusterClasses{Reader: c}, nil
}

// memoryLimitPercent is the share of the container's memory limit given to
// the Go runtime as its soft limit: the rest is for what the runtime does
// not count (the binary's mapped text, thread stacks outside the heap) and
// for the collector to catch up before the kernel's OOM killer would.
const memoryLimitPercent = 80

// setMemoryLimit sets the Go runtime's soft memory limit to
// memoryLimitPercent of limitMiB, unless GOMEMLIMIT already set one or
// limitMiB is 0. It returns the limit set.
func setMemoryLimit(limitMiB int64) (int64, bool) {
	if limitMiB <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	soft := limitMiB << 20 * memoryLimitPercent / 100
	debug.SetMemoryLimit(soft)
	return soft, true
}

// apiServerVersion returns the API server's Kubernetes version as
// MAJOR.MINOR ("1.36"; a provider's "36+" minor loses its "+").
func apiServerVersion(cfg *rest.Config) (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return "", err
	}
	minor := strings.TrimRight(info.Minor, "+")
	if info.Major == "" || minor == "" {
		return "", fmt.Errorf("version %q.%q", info.Major, info.Minor)
	}
	return info.Major + "." + minor, nil
}
