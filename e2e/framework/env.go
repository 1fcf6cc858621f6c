// Package framework is nodeclass-guard's envtest harness: a real
// kube-apiserver and etcd (controller-runtime's envtest) with Karpenter's
// real CRDs, the nodeclass-guard binary running `serve` as a black box
// against a local IAM endpoint or a snapshot file, and the webhook
// registered through the ValidatingWebhookConfiguration that deploy/base
// ships, rewritten only to point at this machine.
//
// Tests use it through Shared (one Env per test binary, started by the first
// test that needs it); `make demo` uses Start and Stop directly.
package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/certs"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// CRDSet selects which Karpenter CRDs the API server serves.
type CRDSet string

// CRD sets, folders under NCG_CRD_DIR (hack/karpenter-crds.sh).
const (
	// CRDsV1 is the current Karpenter release: EC2NodeClass and NodePool v1.
	CRDsV1 CRDSet = "v1"
	// CRDsV1beta1 is Karpenter 1.0.x: v1 and v1beta1 both served (no
	// conversion webhook: strategy None).
	CRDsV1beta1 CRDSet = "v1beta1"
)

// IAMSource selects where `serve` gets its IAM answers.
type IAMSource int

const (
	// IAMLocalEndpoint runs the local IAM Query-protocol endpoint
	// (e2e/iamserver) in this process, serving Options.Snapshot, and starts
	// serve with --iam-endpoint: the live code path through the real AWS SDK.
	IAMLocalEndpoint IAMSource = iota
	// IAMSnapshotFile starts serve with --iam-snapshot Options.Snapshot.
	IAMSnapshotFile
)

// Defaults of the shared scenario (testdata/iam/sample-snapshot.json).
const (
	DefaultControllerRole = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	DefaultClusterName    = "demo"
	DefaultRegion         = "us-west-2"
	SampleSnapshot        = "testdata/iam/sample-snapshot.json" // relative to the repository root
)

// Options configure Start. The zero value is the shared scenario: v1 CRDs,
// the local IAM endpoint serving the sample snapshot, --on-iam-error=deny.
type Options struct {
	CRDs CRDSet
	IAM  IAMSource
	// IAMOptions configure the local IAM endpoint (IAMLocalEndpoint) from
	// its start, before serve's first call.
	IAMOptions []iamserver.Option
	// Snapshot is the IAM snapshot file; relative paths are taken from the
	// repository root. Default: SampleSnapshot.
	Snapshot       string
	ControllerRole string
	ClusterName    string
	Region         string
	OnIAMError     string        // allow or deny; default deny
	IAMTimeout     time.Duration // default 2s
	// ServeArgs are appended to serve's command line.
	ServeArgs []string
	// ServeOutput, when set, also receives serve's output (always kept for
	// ServeLog and error messages).
	ServeOutput io.Writer
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
	// SkipWebhook starts everything but leaves the webhook unregistered;
	// call RegisterWebhook when the objects that must predate it exist.
	SkipWebhook bool
	// Timeout bounds serve's readiness and the webhook taking effect.
	// Default 60s.
	Timeout time.Duration
}

func (o *Options) defaults(root string) {
	if o.CRDs == "" {
		o.CRDs = CRDsV1
	}
	if o.Snapshot == "" {
		o.Snapshot = SampleSnapshot
	}
	if !filepath.IsAbs(o.Snapshot) {
		o.Snapshot = filepath.Join(root, o.Snapshot)
	}
	if o.ControllerRole == "" {
		o.ControllerRole = DefaultControllerRole
	}
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.OnIAMError == "" {
		o.OnIAMError = "deny"
	}
	if o.IAMTimeout == 0 {
		o.IAMTimeout = 2 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Env is a running control plane with nodeclass-guard registered.
type Env struct {
	// Root is the repository root.
	Root    string
	Options Options
	// Config is the API server's admin (system:masters) configuration.
	Config *rest.Config
	// Client is an admin client whose warnings are recorded.
	Client *Client
	// CA signed the webhook's serving certificate; its PEM is the caBundle.
	CA *certs.CA
	// IAM is the local IAM endpoint (IAMLocalEndpoint only) and IAMURL its
	// address.
	IAM    *iamserver.Server
	IAMURL string
	// WebhookURL is https://127.0.0.1:<port>; MetricsURL and HealthURL are
	// serve's other listeners.
	WebhookURL, MetricsURL, HealthURL string
	// CertDir holds serve's tls.crt and tls.key.
	CertDir string

	testEnv       *envtest.Environment
	serve         *serveProcess
	stopIAM       func()
	tmp           string
	binary        bool
	webhookConfig *admissionregistrationv1.ValidatingWebhookConfiguration
	probe         *Client

	// Kubeconfig is the path of a kubeconfig for serve's identity (the
	// ServiceAccount of deploy/base with deploy/base's RBAC).
	Kubeconfig string
	// serveBin, serveEnv and serveTail start more replicas (StartReplica)
	// and commands (Command) as serve was started.
	serveBin  string
	serveEnv  []string
	serveTail []string

	stopOnce sync.Once
	stopErr  error
}

// Start brings up the control plane, the CRDs, serve and (unless
// SkipWebhook) the webhook registration, and returns once the webhook
// answers through the API server. Missing envtest binaries or CRDs are a
// *MissingAssetsError. On error, whatever was started is stopped.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	opts.defaults(root)
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}
	crds, err := crdFiles(root, opts.CRDs)
	if err != nil {
		return nil, err
	}
	deploy, err := deployManifests(root)
	if err != nil {
		return nil, fmt.Errorf("reading deploy/base: %w", err)
	}
	shipped, source, err := webhookConfigFrom(deploy)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(opts.Snapshot); err != nil {
		return nil, fmt.Errorf("IAM snapshot: %w", err)
	}

	e := &Env{Root: root, Options: opts}
	defer func() {
		if err != nil {
			if stopErr := e.Stop(); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("while cleaning up: %w", stopErr))
			}
		}
	}()
	if e.tmp, err = os.MkdirTemp("", "nodeclass-guard-envtest-"); err != nil {
		return nil, err
	}

	bin, err := acquireBinary(ctx, root, opts.Logf)
	if err != nil {
		return nil, err
	}
	e.binary = true

	opts.Logf("starting kube-apiserver and etcd from %s, CRDs %s", assets, opts.CRDs)
	e.testEnv = &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              crds,
			ErrorIfPathMissing: true,
		},
	}
	if e.Config, err = e.testEnv.Start(); err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	if e.Client, err = newClient(e.Config); err != nil {
		return nil, err
	}
	if e.probe, err = newClient(e.Config); err != nil {
		return nil, err
	}

	kubeconfig, err := e.webhookIdentity(ctx, deploy)
	if err != nil {
		return nil, err
	}

	if e.CA, err = certs.NewCA("nodeclass-guard envtest CA", 24*time.Hour); err != nil {
		return nil, err
	}
	crt, key, err := e.CA.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	e.CertDir = filepath.Join(e.tmp, "certs")
	if err := certs.WriteServingPair(e.CertDir, crt, key); err != nil {
		return nil, err
	}

	env := ChildEnv()
	var iamArgs []string
	switch opts.IAM {
	case IAMLocalEndpoint:
		snap, err := authz.LoadSnapshotFile(opts.Snapshot)
		if err != nil {
			return nil, err
		}
		e.IAM = iamserver.New(snap, opts.IAMOptions...)
		e.IAMURL, e.stopIAM = e.IAM.Start()
		opts.Logf("local IAM endpoint at %s serving %s", e.IAMURL, rel(root, opts.Snapshot))
		// The same endpoint speaks EKS's API for the node-join checks.
		iamArgs = []string{"--iam-endpoint", e.IAMURL, "--eks-endpoint", e.IAMURL, "--ec2-endpoint", e.IAMURL, "--ssm-endpoint", e.IAMURL}
		// Dummy credentials: the endpoint does not check signatures, but the
		// SDK signs every request. No shared config, no instance metadata.
		env = ChildEnv(
			"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
			"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"AWS_CONFIG_FILE="+os.DevNull,
			"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
			"AWS_EC2_METADATA_DISABLED=true",
			// KMS has no endpoint flag: the SDK's own per-service
			// setting points it at the same local endpoint.
			"AWS_ENDPOINT_URL_KMS="+e.IAMURL,
		)
	case IAMSnapshotFile:
		iamArgs = []string{"--iam-snapshot", opts.Snapshot}
	default:
		return nil, fmt.Errorf("unknown IAM source %d", opts.IAM)
	}

	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	webhookPort, metricsAddr, healthAddr := ports[0], "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
	e.WebhookURL = "https://127.0.0.1:" + strconv.Itoa(webhookPort)
	e.MetricsURL, e.HealthURL = "http://"+metricsAddr, "http://"+healthAddr
	e.Kubeconfig, e.serveBin, e.serveEnv = kubeconfig, bin, env
	e.serveTail = []string{
		"--controller-role", opts.ControllerRole,
		"--cluster-name", opts.ClusterName,
		"--region", opts.Region,
		"--on-iam-error", opts.OnIAMError,
		"--iam-timeout", opts.IAMTimeout.String(),
	}
	e.serveTail = append(e.serveTail, iamArgs...)
	args := e.serveArgs(webhookPort, metricsAddr, healthAddr)
	opts.Logf("starting nodeclass-guard serve on %s", e.WebhookURL)
	if e.serve, err = startServe(bin, args, env, opts.ServeOutput); err != nil {
		return nil, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := e.serve.waitReady(readyCtx, healthAddr); err != nil {
		return nil, err
	}

	if e.webhookConfig, err = LocalWebhookConfig(shipped, "127.0.0.1:"+strconv.Itoa(webhookPort), e.CA.CertPEM()); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if !opts.SkipWebhook {
		if err := e.RegisterWebhook(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// serveArgs is serve's command line on the given listeners.
func (e *Env) serveArgs(webhookPort int, metricsAddr, healthAddr string) []string {
	args := []string{"serve",
		"--cert-dir", e.CertDir,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(webhookPort),
		"--metrics-bind-address", metricsAddr,
		"--health-probe-bind-address", healthAddr,
		"--kubeconfig", e.Kubeconfig,
	}
	args = append(args, e.serveTail...)
	return append(args, e.Options.ServeArgs...)
}

// webhookIdentity gives serve the identity deploy/ gives it in a cluster:
// the ServiceAccount of deploy/base, bound by deploy/base's RBAC (applied
// here as shipped), so that a missing permission fails here as it would in
// a cluster. It returns the path of a kubeconfig for that identity.
func (e *Env) webhookIdentity(ctx context.Context, deploy []Document) (string, error) {
	var saName, saNamespace string
	for _, d := range deploy {
		switch d.Object.GetKind() {
		case "ServiceAccount":
			saName, saNamespace = d.Object.GetName(), d.Object.GetNamespace()
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			obj := d.Object.DeepCopy()
			if ns := obj.GetNamespace(); ns != "" {
				// The namespace of Karpenter's service account, for one,
				// exists in a cluster with Karpenter but not here.
				nsObj := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
				}}
				if err := e.Client.Create(ctx, nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
					return "", fmt.Errorf("creating namespace %s for %s: %w", ns, d.Source, err)
				}
			}
			if err := e.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				return "", fmt.Errorf("applying %s (%s %s): %w", d.Source, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	if saName == "" || saNamespace == "" {
		return "", errors.New("deploy/base has no ServiceAccount with a namespace: cannot give serve its identity")
	}
	user, err := e.testEnv.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + saNamespace + ":" + saName,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
	}, &rest.Config{QPS: 100, Burst: 200})
	if err != nil {
		return "", fmt.Errorf("provisioning serve's user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.tmp, "kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// NewClient returns an admin client with its own warning recorder.
func (e *Env) NewClient() (*Client, error) { return newClient(e.Config) }

// WebhookName returns the name of the registered webhook for an API group
// ("karpenter.k8s.aws", "karpenter.sh" or "eks.amazonaws.com"), as the API
// server quotes it in denials.
func (e *Env) WebhookName(group string) string {
	for _, wh := range e.webhookConfig.Webhooks {
		for _, r := range wh.Rules {
			for _, g := range r.APIGroups {
				if g == group {
					return wh.Name
				}
			}
		}
	}
	return ""
}

// WebhookConfiguration returns a copy of the configuration Start registers.
func (e *Env) WebhookConfiguration() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return e.webhookConfig.DeepCopy()
}

// ServePID returns the process id of the running serve, 0 when none.
func (e *Env) ServePID() int {
	if e.serve == nil || e.serve.cmd.Process == nil {
		return 0
	}
	return e.serve.cmd.Process.Pid
}

// ServeLog returns everything serve has printed so far.
func (e *Env) ServeLog() string {
	if e.serve == nil {
		return ""
	}
	return e.serve.log.String()
}

// Stop stops serve (SIGTERM, then SIGKILL after 10s), the IAM endpoint and
// the control plane, and removes the temporary files. Safe to call twice.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		if e.serve != nil {
			if err := e.serve.stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		if e.stopIAM != nil {
			e.stopIAM()
		}
		if e.testEnv != nil {
			if err := e.testEnv.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping envtest: %w", err))
			}
		}
		if e.binary {
			releaseBinary()
		}
		if e.tmp != "" {
			if err := os.RemoveAll(e.tmp); err != nil {
				errs = append(errs, err)
			}
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
