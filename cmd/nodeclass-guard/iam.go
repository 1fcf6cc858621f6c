package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// iamFlags are the flags `serve` and `check` share to reach IAM and to
// describe the cluster.
type iamFlags struct {
	controllerRole string
	clusterName    string
	region         string
	snapshot       string
	endpoint       string
	eksEndpoint    string
	ec2Endpoint    string
	ssmEndpoint    string
	// kubernetesVersion is the cluster's ("1.34"), for AMI aliases.
	kubernetesVersion string
	// ec2 and snap are set by view: the EC2 view, and the snapshot
	// when one is used.
	ec2  authz.EC2View
	snap *authz.Snapshot
	// kms is set by view: the KMS view of encrypted volumes' keys, nil
	// when a snapshot has no KMSKeys section. Live, it asks the region's
	// KMS (AWS_ENDPOINT_URL_KMS, the SDK's own setting, points it at a
	// local endpoint).
	kms          authz.KMSView
	timeout      time.Duration
	onIAMError   string
	cacheSize    int
	negativeSize int
	cacheTTL     time.Duration
	negativeTTL  time.Duration
	// changes counts the changes of the live views' answers (nil with a
	// snapshot, whose answers never change).
	changes *authz.Changes
	// callRate and callBurst are the IAM call budget; 0 (check) means none.
	callRate  float64
	callBurst int
	// karpenterVersion is --karpenter-version, "" for the command's
	// default (the newest modelled version; in serve, first the image tag
	// of Karpenter's Deployment).
	karpenterVersion string
	// scpFiles are --scp (check): SCPs applied to the permission
	// questions, with a snapshot's Organization section.
	scpFiles []string
}

// registerSCP adds --scp (check).
func (f *iamFlags) registerSCP(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.scpFiles, "scp", nil, "a `FILE` holding a service control policy that applies to the account, as aws organizations describe-policy prints it (or a bare policy document); repeatable. The account then counts as in an organization: a request must be allowed by every SCP and denied by none (an SCP of Deny statements only stands beside FullAWSAccess), together with the snapshot's Organization section; with the live API, on top of the SCPs IAM applies")
}

// organization returns base (a snapshot's Organization section, nil when
// it has none) with the SCPs of --scp added; nil when there are neither.
func (f *iamFlags) organization(base *authz.Organization) (*authz.Organization, error) {
	if len(f.scpFiles) == 0 {
		return base, nil
	}
	org := &authz.Organization{}
	if base != nil {
		org.SCPs = append(org.SCPs, base.SCPs...)
	}
	for _, file := range f.scpFiles {
		np, err := authz.LoadSCPFile(file)
		if err != nil {
			return nil, fmt.Errorf("--scp: %w", err)
		}
		org.SCPs = append(org.SCPs, np)
	}
	return org, nil
}

// register adds the flags; onIAMError is the command's default: serve
// admits (with a warning) when IAM cannot be asked, so that the webhook is
// never why a cluster cannot change, while check denies, so that a CI job
// without IAM access fails instead of passing unchecked manifests.
func (f *iamFlags) register(fs *pflag.FlagSet, onIAMError string) {
	fs.StringVar(&f.controllerRole, "controller-role", "", "ARN of the Karpenter controller's IAM role, whose permissions are checked (an STS assumed-role ARN is resolved to the role)")
	fs.StringVar(&f.clusterName, "cluster-name", "", "the EKS cluster's name, as Karpenter's tags and policies use it")
	fs.StringVar(&f.region, "region", "", "the cluster's AWS region")
	fs.StringVar(&f.snapshot, "iam-snapshot", "", "evaluate IAM checks against this snapshot (aws iam get-account-authorization-details output, optionally merged with list-instance-profiles) instead of the IAM API")
	fs.StringVar(&f.endpoint, "iam-endpoint", "", "IAM API endpoint URL to use instead of AWS's (a local test endpoint)")
	fs.StringVar(&f.eksEndpoint, "eks-endpoint", "", "EKS API endpoint URL to use instead of the region's (a local test endpoint); EKS answers the node-join checks")
	fs.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "EC2 API endpoint URL to use instead of the region's (a local test endpoint); EC2 resolves the selector terms")
	fs.StringVar(&f.ssmEndpoint, "ssm-endpoint", "", "SSM API endpoint URL to use instead of the region's (a local test endpoint); SSM resolves AMI aliases")
	fs.StringVar(&f.kubernetesVersion, "kubernetes-version", "", "the cluster's Kubernetes version (1.34), for AMI aliases; default: the API server's in serve, the snapshot's cluster section in check")
	fs.DurationVar(&f.timeout, "iam-timeout", 2*time.Second, "bound on all the IAM questions of one admission together (each call's retries included); keep it well inside the webhook's timeoutSeconds")
	fs.StringVar(&f.onIAMError, "on-iam-error", onIAMError, "when IAM cannot be reached and no cached answer exists: allow (with an IAMUnavailable warning) or deny (IAMUnavailable denial)")
	fs.IntVar(&f.cacheSize, "iam-cache-size", 4096, "maximum number of cached IAM answers")
	fs.DurationVar(&f.cacheTTL, "iam-cache-ttl", 5*time.Minute, "how long an IAM answer is reused")
	fs.DurationVar(&f.negativeTTL, "iam-cache-negative-ttl", 30*time.Second, "how long a not-found IAM answer is reused")
	fs.IntVar(&f.negativeSize, "iam-cache-negative-size", 1024, "maximum number of cached not-found IAM answers, kept apart from the found ones so that names that do not exist cannot evict them")
	fs.StringVar(&f.karpenterVersion, "karpenter-version", "", fmt.Sprintf("the Karpenter version whose requests the permission checks ask (%s to %s modelled; a release between them is judged as the nearest lower modelled one); default: the newest modelled", karpenter.Oldest, karpenter.Newest))
}

// karpenter resolves --karpenter-version; fallback is the version to use
// when the flag is not set (zero: the newest modelled).
func (f *iamFlags) karpenter(fallback karpenter.Resolved) (karpenter.Resolved, error) {
	if f.karpenterVersion == "" {
		if fallback.Model != (karpenter.Version{}) {
			return fallback, nil
		}
		return karpenter.Default(""), nil
	}
	return karpenter.Resolve(f.karpenterVersion, "--karpenter-version", "--karpenter-version")
}

// registerBudget adds the IAM call budget's flags (serve only: a CI job is
// no hostile caller, and a budget would only slow it down).
func (f *iamFlags) registerBudget(fs *pflag.FlagSet) {
	fs.Float64Var(&f.callRate, "iam-call-rate", 10, "IAM calls per second the webhook may make (a token bucket; IAM throttles per account); questions about objects the cluster has, or asked before, are served first; a new question that cannot get a call within --iam-timeout is answered \"could not check\" (--on-iam-error)")
	fs.IntVar(&f.callBurst, "iam-call-burst", 100, "IAM calls the budget holds when full; a quarter is kept for questions about objects the cluster has or asked before")
}

// view builds the IAM and EKS views, and the EC2 view (f.ec2): a
// snapshot (whose EKS and EC2 sections, when absent, make those checks
// report themselves skipped), or the live APIs, each behind a cache with
// the same options.
func (f *iamFlags) view(ctx context.Context, metrics *authz.Metrics) (authz.View, authz.EKSView, error) {
	if f.snapshot != "" {
		snap, err := authz.LoadSnapshotFile(f.snapshot)
		if err != nil {
			return nil, nil, fmt.Errorf("--iam-snapshot: %w", err)
		}
		f.snap, f.ec2 = snap, snap
		if snap.HasKMS() {
			f.kms = snap
		}
		// What only IAM's own evaluation applied live: the SCPs, when the
		// snapshot's Organization section or --scp gives them.
		org, err := f.organization(snap.Organization())
		if err != nil {
			return nil, nil, err
		}
		return authz.WithOrganization(snap, org), snap, nil
	}
	// --scp read before any AWS client is built: a bad file is the
	// user's to fix, whatever IAM says.
	org, err := f.organization(nil)
	if err != nil {
		return nil, nil, err
	}
	client, err := authz.NewIAMClient(ctx, f.region, f.endpoint, f.timeout)
	if err != nil {
		return nil, nil, err
	}
	f.changes = &authz.Changes{}
	opts := authz.CacheOptions{Size: f.cacheSize, NegativeSize: f.negativeSize, TTL: f.cacheTTL, NegativeTTL: f.negativeTTL, Timeout: f.timeout, Metrics: metrics, Changes: f.changes}
	liveIAM := authz.NewLive(authz.NewIAMMethods(client), authz.LiveOptions{Metrics: metrics})
	var live authz.View = liveIAM
	var reader authz.PolicyReader = liveIAM
	if f.callRate > 0 {
		budgeted := authz.NewBudgeted(live, authz.BudgetOptions{Rate: f.callRate, Burst: f.callBurst, Metrics: metrics})
		live, reader = budgeted, budgeted
	}
	eksClient, err := authz.NewEKSClient(ctx, f.region, f.eksEndpoint, f.timeout)
	if err != nil {
		return nil, nil, err
	}
	eks := authz.NewCachedEKS(authz.NewEKSLive(authz.NewEKSMethods(eksClient), authz.LiveOptions{Metrics: metrics}), opts)
	ec2Client, err := authz.NewEC2Client(ctx, f.region, f.ec2Endpoint, f.timeout)
	if err != nil {
		return nil, nil, err
	}
	ssmClient, err := authz.NewSSMClient(ctx, f.region, f.ssmEndpoint, f.timeout)
	if err != nil {
		return nil, nil, err
	}
	var ec2Live authz.EC2View = authz.NewEC2Live(authz.NewEC2Methods(ec2Client), authz.NewSSMMethods(ssmClient), authz.LiveOptions{Metrics: metrics})
	if f.callRate > 0 {
		// EC2's Describe calls have a budget of their own, of the same
		// size: Karpenter shares the account's EC2 limits.
		ec2Live = authz.NewBudgetedEC2(ec2Live, authz.BudgetOptions{Rate: f.callRate, Burst: f.callBurst, Metrics: metrics})
	}
	f.ec2 = authz.NewCachedEC2(ec2Live, opts)
	kmsClient, err := authz.NewKMSClient(ctx, f.region, "", f.timeout)
	if err != nil {
		return nil, nil, err
	}
	// At most 3 KMS calls per distinct key (DescribeKey, GetKeyPolicy,
	// ListGrants), cached like every other answer.
	f.kms = authz.NewCachedKMS(authz.NewKMSLive(authz.NewKMSMethods(kmsClient), authz.LiveOptions{Metrics: metrics}), opts)
	// Permission questions are evaluated here against the controller
	// role's policies, read once per TTL; SimulatePrincipalPolicy answers
	// what only AWS sees (SCPs) and what the policies cannot tell.
	return authz.WithOrganization(authz.NewPolicyView(authz.NewCached(live, opts), reader, opts), org), eks, nil
}

var kubernetesVersionRE = regexp.MustCompile(`^1\.[0-9]{1,3}$`)

// validate checks the flags that need no IAM.
func (f *iamFlags) validate() error {
	if _, err := rules.ParseOnIAMError(f.onIAMError); err != nil {
		return err
	}
	if _, err := f.karpenter(karpenter.Resolved{}); err != nil {
		return err
	}
	if f.controllerRole != "" {
		if _, err := authz.ParseRoleARN(f.controllerRole); err != nil {
			return fmt.Errorf("--controller-role: %v", err)
		}
	}
	if v := f.kubernetesVersion; v != "" && !kubernetesVersionRE.MatchString(v) {
		return fmt.Errorf("--kubernetes-version=%q: want MAJOR.MINOR, such as 1.34", v)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--iam-timeout=%s: want a positive duration", f.timeout)
	}
	if f.cacheSize <= 0 {
		return fmt.Errorf("--iam-cache-size=%d: want a positive number", f.cacheSize)
	}
	if f.negativeSize <= 0 {
		return fmt.Errorf("--iam-cache-negative-size=%d: want a positive number", f.negativeSize)
	}
	if f.callRate < 0 || f.callBurst < 0 {
		return fmt.Errorf("--iam-call-rate=%v, --iam-call-burst=%d: want positive numbers", f.callRate, f.callBurst)
	}
	return nil
}

// config builds the rules' configuration, every IAM bound from
// --iam-timeout: one admission's questions (or one object's in `check`),
// all rounds together, get that bound, and so does resolving the
// controller role. The controller role is resolved through IAM to its real
// ARN (path included); an assumed-role ARN becomes the role's ARN. warn
// receives what the user should know.
func (f *iamFlags) config(ctx context.Context, view authz.View, eks authz.EKSView, controllerRole string, warn func(string)) (rules.Config, error) {
	onErr, err := rules.ParseOnIAMError(f.onIAMError)
	if err != nil {
		return rules.Config{}, err
	}
	kv, err := f.karpenter(karpenter.Resolved{})
	if err != nil {
		return rules.Config{}, err
	}
	cfg := rules.Config{IAM: view, EKS: eks, ClusterName: f.clusterName, Region: f.region, OnIAMError: onErr, IAMTimeout: f.timeout,
		KubernetesVersion: f.kubernetesVersion, Karpenter: kv}
	if view != nil {
		cfg.EC2 = f.ec2
		cfg.KMS = f.kms
	}
	if cfg.KubernetesVersion == "" && f.snap != nil {
		cfg.KubernetesVersion = f.snap.KubernetesVersion()
	}
	if controllerRole == "" {
		return cfg, nil
	}
	parsed, err := authz.ParseRoleARN(controllerRole)
	if err != nil {
		return rules.Config{}, fmt.Errorf("controller role: %v", err)
	}
	cfg.Controller = parsed
	if view == nil {
		return cfg, nil
	}
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	role, err := view.Role(rctx, parsed.Name)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return rules.Config{}, fmt.Errorf("controller role %s: IAM has no role named %s in account %s", controllerRole, parsed.Name, parsed.Account)
	case err != nil:
		why := err.Error()
		var u *authz.UnavailableError
		if errors.As(err, &u) {
			why = u.Summary()
		}
		warn(fmt.Sprintf("could not resolve controller role %s through IAM (%s); using it as given", controllerRole, why))
	default:
		if role.ARN != "" && role.ARN != parsed.String() {
			if !authz.IsAssumedRoleARN(controllerRole) {
				warn(fmt.Sprintf("controller role %s has the real ARN %s (path %s); using that", controllerRole, role.ARN, role.Path))
			}
			if r, err := authz.ParseRoleARN(role.ARN); err == nil {
				cfg.Controller = r
			}
		}
	}
	if f.clusterName == "" || f.region == "" {
		warn("--cluster-name and --region are not both set; permission checks use Karpenter's tags with empty values and may deny what Karpenter is allowed")
	}
	return cfg, nil
}

// versionFromEKS fills cfg.KubernetesVersion, when no flag or snapshot gave
// it, from EKS's DescribeCluster of --cluster-name (check and audit; serve
// asks its API server). Failing that, aliases are reported as not checked.
func (f *iamFlags) versionFromEKS(ctx context.Context, cfg *rules.Config, warn func(string)) {
	if cfg.KubernetesVersion != "" || cfg.EKS == nil || cfg.ClusterName == "" || cfg.EC2 == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cl, err := cfg.EKS.Cluster(cctx, cfg.ClusterName)
	if err != nil || cl.Version == "" {
		warn(fmt.Sprintf("the cluster's Kubernetes version is unknown (EKS DescribeCluster %s: %v); AMI aliases are reported as not checked: set --kubernetes-version", cfg.ClusterName, err))
		return
	}
	cfg.KubernetesVersion = cl.Version
}
