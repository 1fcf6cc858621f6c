package rules

import (
	"context"
	"fmt"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// OnIAMError says what to answer when IAM cannot be reached and no cached
// answer exists.
type OnIAMError string

// OnIAMError values.
const (
	OnIAMErrorAllow OnIAMError = "allow"
	OnIAMErrorDeny  OnIAMError = "deny"
)

// ParseOnIAMError parses the --on-iam-error flag.
func ParseOnIAMError(s string) (OnIAMError, error) {
	switch OnIAMError(s) {
	case OnIAMErrorAllow, OnIAMErrorDeny:
		return OnIAMError(s), nil
	}
	return "", fmt.Errorf("--on-iam-error=%q: want allow or deny", s)
}

// ClassGetter finds the node class a NodePool references. ok=false means the
// class does not exist (yet).
type ClassGetter interface {
	GetEC2NodeClass(ctx context.Context, name string) (obj *EC2NodeClass, ok bool, err error)
	GetNodeClass(ctx context.Context, name string) (obj *NodeClass, ok bool, err error)
}

// Config is everything a Checker knows about the cluster and IAM. `serve`
// and `check` build it from the same flags.
type Config struct {
	// IAM answers the IAM questions; nil means offline: format checks only.
	IAM authz.View
	// Controller is the Karpenter controller's role, its real path
	// included; zero means unknown: permission checks are skipped with a
	// warning. Its partition and account are the cluster's.
	Controller authz.RoleARN
	// ClusterName and Region are the values Karpenter tags what it creates
	// with; Region also gives the partition when Controller is unknown.
	ClusterName string
	Region      string
	OnIAMError  OnIAMError
	// IAMTimeout bounds all the IAM questions of one admission (or one
	// object in `check`) together, every round included; 0 leaves only
	// each call's own bound. When it runs out, what is not answered yet is
	// taken from the cache (stale if need be) or reported as
	// IAMUnavailable; the calls themselves go on and fill the cache.
	IAMTimeout time.Duration
	// Classes resolves NodePool references; nil means none can be found.
	Classes ClassGetter
	// EKS answers the node-join questions (the cluster, access entries);
	// nil means none can be asked: with IAM set, the join checks are
	// reported as skipped. Its answers share the IAM deadline.
	EKS authz.EKSView
	// AWSAuth reads the aws-auth ConfigMap; nil means it cannot be read,
	// and a cluster that uses it gets the aws-auth check reported as
	// skipped.
	AWSAuth AWSAuthSource
	// Karpenter is the Karpenter version whose requests the permission
	// checks ask (karpenter.Resolve of --karpenter-version, or in serve
	// the image tag of Karpenter's Deployment); zero means the newest
	// modelled version.
	Karpenter karpenter.Resolved
	// EC2 resolves an EC2NodeClass's selector terms (EC2 and SSM); nil
	// means they are not resolved, and a class with terms gets
	// SelectorChecksSkipped. Its answers share the IAM deadline.
	EC2 authz.EC2View
	// KMS describes the KMS keys of encrypted volumes (with their key
	// policies and grants); nil means they are not checked, and a class
	// naming a key gets KMSChecksSkipped. Its answers share the IAM
	// deadline.
	KMS authz.KMSView
	// KubernetesVersion is the cluster's ("1.34"), for AMI aliases: the
	// API server's in serve, --kubernetes-version or the snapshot's
	// cluster section in check.
	KubernetesVersion string
	// NodePools lists the NodePools using a class (their architecture
	// requirements); nil means none are known.
	NodePools NodePoolLister
	// NodeClaims lists the NodeClaims of a class, for the update guard;
	// nil means none are known.
	NodeClaims NodeClaimLister
	// Now is the clock (capacity reservations' end dates); nil is
	// time.Now.
	Now func() time.Time
	// VerdictTTL is how long a verdict is served again to the same object
	// while Changes does not move (verdicts.go); 0 keeps none (`check`).
	VerdictTTL time.Duration
	// Changes counts the changes of what verdicts are judged from: the
	// views' answers (authz.CacheOptions.Changes) and, in serve, the
	// objects the informers watch. nil: no change is ever seen, so
	// VerdictTTL alone bounds a kept verdict.
	Changes *authz.Changes
}

// NodePoolLister lists the NodePools whose nodeClassRef names an
// EC2NodeClass.
type NodePoolLister interface {
	NodePoolsUsing(ctx context.Context, class string) ([]NodePool, error)
}

// NodeClaimLister lists the NodeClaims whose nodeClassRef names an
// EC2NodeClass.
type NodeClaimLister interface {
	NodeClaimsUsing(ctx context.Context, class string) ([]NodeClaim, error)
}

// now is the configured clock.
func (c *Checker) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Now()
}

// Checker runs the rules. The same Checker serves the webhook and `check`;
// it is safe for concurrent use.
type Checker struct {
	cfg Config
	// controllerARN is cfg.Controller as an ARN, "" when unknown.
	controllerARN string
	partition     string
	// plans keeps the plans built: every admission of a class asks the
	// same 35 or so launch requests.
	plans *planCache
	// verdicts keeps the verdicts of objects judged a moment ago; nil when
	// Config.VerdictTTL is 0.
	verdicts *verdictCache
}

// NewChecker returns a Checker configured by cfg.
func NewChecker(cfg Config) *Checker {
	if cfg.Karpenter.Model == (karpenter.Version{}) {
		cfg.Karpenter = karpenter.Default("")
	}
	c := &Checker{cfg: cfg, partition: cfg.Controller.Partition}
	if cfg.Controller.Name != "" {
		c.controllerARN = cfg.Controller.String()
	}
	if c.partition == "" {
		c.partition = authz.PartitionOfRegion(cfg.Region)
	}
	c.plans = newPlanCache()
	c.verdicts = newVerdictCache(cfg.VerdictTTL, cfg.Changes, c.now)
	return c
}

// Config returns the Checker's configuration.
func (c *Checker) Config() Config { return c.cfg }

// Karpenter returns the Karpenter version the checks ask as.
func (c *Checker) Karpenter() karpenter.Resolved { return c.cfg.Karpenter }

// Account returns the cluster's account, "" when unknown.
func (c *Checker) Account() string { return c.cfg.Controller.Account }

// ControllerARN returns the controller role's ARN, "" when unknown.
func (c *Checker) ControllerARN() string { return c.controllerARN }

// accountOr returns a, else the cluster's account, for a message.
func (c *Checker) accountOr(a string) string {
	if a != "" {
		return a
	}
	if c.Account() != "" {
		return c.Account()
	}
	return "(unknown)"
}

// WithClasses returns a Checker like c that resolves NodePool references
// through g: `check` knows its classes only once it has read its input.
func (c *Checker) WithClasses(g ClassGetter) *Checker {
	cfg := c.cfg
	cfg.Classes = g
	return NewChecker(cfg)
}

// karpenterInput is what the request model needs to know of cl and the
// cluster.
func (c *Checker) karpenterInput(cl class) karpenter.Input {
	return karpenter.Input{Partition: c.partition, Region: c.cfg.Region, Account: c.Account(), Cluster: c.cfg.ClusterName,
		Class: cl.name, UID: cl.uid, Tags: cl.tags, NodePool: cl.nodePool, Launch: cl.launch}
}

// VerdictHits returns how many verdicts were served from the cache.
func (c *Checker) VerdictHits() uint64 {
	if c.verdicts == nil {
		return 0
	}
	return c.verdicts.hits.Load()
}
