package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/smithy-go"
)

// EKSView is the narrow interface the node-join rules ask EKS through: the
// cluster (its authentication mode, its role, Auto Mode) and the access
// entry of a principal with its associated access policies.
//
// Errors follow View: a missing cluster or access entry is a
// *NotFoundError; EKS that could not be asked (throttling, timeouts, no
// permission to ask, a snapshot without the section) is an
// *UnavailableError with Service "EKS".
type EKSView interface {
	// Cluster describes the cluster named name.
	Cluster(ctx context.Context, name string) (Cluster, error)
	// AccessEntry returns the access entry of principalARN, matched
	// exactly as EKS matches it (path included), with the ARNs of its
	// associated access policies.
	AccessEntry(ctx context.Context, cluster, principalARN string) (AccessEntry, error)
}

// Authentication modes of an EKS cluster (accessConfig.authenticationMode).
const (
	AuthModeAPI             = "API"
	AuthModeAPIAndConfigMap = "API_AND_CONFIG_MAP"
	AuthModeConfigMap       = "CONFIG_MAP"
)

// Access entry types a node role's entry may have.
const (
	AccessEntryEC2Linux   = "EC2_LINUX"
	AccessEntryEC2Windows = "EC2_WINDOWS"
	// AccessEntryEC2 is EKS Auto Mode's node type.
	AccessEntryEC2 = "EC2"
)

// Cluster is an EKS cluster as the node-join rules need it.
type Cluster struct {
	Name string
	ARN  string
	// RoleARN is the cluster's IAM role: in EKS Auto Mode, the principal
	// that launches nodes.
	RoleARN string
	// Version is the cluster's Kubernetes version ("1.33").
	Version string
	// AuthenticationMode is one of the AuthMode constants; a cluster
	// described without accessConfig is CONFIG_MAP.
	AuthenticationMode string
	// AutoMode is set when EKS Auto Mode's compute is enabled.
	AutoMode bool
	Served
}

// UsesAccessEntries reports whether the cluster authenticates with access
// entries.
func (c Cluster) UsesAccessEntries() bool {
	return c.AuthenticationMode == AuthModeAPI || c.AuthenticationMode == AuthModeAPIAndConfigMap
}

// UsesConfigMap reports whether the cluster reads the aws-auth ConfigMap.
func (c Cluster) UsesConfigMap() bool {
	return c.AuthenticationMode != AuthModeAPI
}

// AccessEntry is an EKS access entry as the node-join rules need it.
type AccessEntry struct {
	PrincipalARN string
	Type         string
	Username     string
	Groups       []string
	// Policies are the ARNs of the associated access policies.
	Policies []string
	Served
}

// HasPolicy reports whether the access policy named name (the last part of
// its ARN, such as AmazonEKSAutoNodePolicy) is associated.
func (e AccessEntry) HasPolicy(name string) bool {
	for _, p := range e.Policies {
		if p == name || strings.HasSuffix(p, "/"+name) {
			return true
		}
	}
	return false
}

// EKSAPI is the part of the EKS client EKSLive uses.
type EKSAPI interface {
	DescribeCluster(ctx context.Context, in *eks.DescribeClusterInput, optFns ...func(*eks.Options)) (*eks.DescribeClusterOutput, error)
	DescribeAccessEntry(ctx context.Context, in *eks.DescribeAccessEntryInput, optFns ...func(*eks.Options)) (*eks.DescribeAccessEntryOutput, error)
	ListAssociatedAccessPolicies(ctx context.Context, in *eks.ListAssociatedAccessPoliciesInput, optFns ...func(*eks.Options)) (*eks.ListAssociatedAccessPoliciesOutput, error)
}

var _ EKSAPI = (*eks.Client)(nil)

// NewEKSClient builds an EKS client as NewIAMClient builds IAM's: the same
// credential chain and retry budget; region is the cluster's; endpoint,
// when set, replaces EKS's (a local test endpoint).
func NewEKSClient(ctx context.Context, region, endpoint string, timeout time.Duration) (*eks.Client, error) {
	cfg, err := loadAWSConfig(ctx, region, timeout)
	if err != nil {
		return nil, err
	}
	return eks.NewFromConfig(cfg, func(o *eks.Options) {
		// EKS answers are as small as IAM's: the same cap.
		o.HTTPClient = &cappedClient{inner: o.HTTPClient, max: MaxIAMResponseBytes}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// EKSLive answers EKSView questions by asking the EKS API. It holds no
// cache; put a CachedEKS in front of it.
type EKSLive struct {
	client   EKSAPI
	metrics  *Metrics
	maxPages int
}

var _ EKSView = (*EKSLive)(nil)

// NewEKSLive returns an EKSLive asking EKS through client; opts as for
// NewLive (MaxPages bounds ListAssociatedAccessPolicies).
func NewEKSLive(client EKSAPI, opts LiveOptions) *EKSLive {
	if opts.MaxPages <= 0 {
		opts.MaxPages = 20
	}
	return &EKSLive{client: client, metrics: opts.Metrics, maxPages: opts.MaxPages}
}

// Cluster implements EKSView with DescribeCluster.
func (l *EKSLive) Cluster(ctx context.Context, name string) (Cluster, error) {
	start := time.Now()
	out, err := l.client.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	l.metrics.observeCall("eks:DescribeCluster", start, err)
	if err != nil {
		return Cluster{}, classifyEKSError("DescribeCluster", "EKS cluster", name, err)
	}
	if out.Cluster == nil {
		return Cluster{}, &UnavailableError{Service: "EKS", Op: "DescribeCluster", Err: fmt.Errorf("response for cluster %q holds no cluster element", name)}
	}
	return clusterFromSDK(out.Cluster), nil
}

func clusterFromSDK(c *ekstypes.Cluster) Cluster {
	out := Cluster{Name: aws.ToString(c.Name), ARN: aws.ToString(c.Arn), RoleARN: aws.ToString(c.RoleArn), Version: aws.ToString(c.Version), AuthenticationMode: AuthModeConfigMap}
	if c.AccessConfig != nil && c.AccessConfig.AuthenticationMode != "" {
		out.AuthenticationMode = string(c.AccessConfig.AuthenticationMode)
	}
	if c.ComputeConfig != nil {
		out.AutoMode = aws.ToBool(c.ComputeConfig.Enabled)
	}
	return out
}

// AccessEntry implements EKSView with DescribeAccessEntry and
// ListAssociatedAccessPolicies. The first page of the policies is asked
// beside the entry, so that a found entry costs one round trip, not two
// (its answer is dropped when the entry is not found).
func (l *EKSLive) AccessEntry(ctx context.Context, cluster, principalARN string) (AccessEntry, error) {
	type page struct {
		out *eks.ListAssociatedAccessPoliciesOutput
		err error
	}
	firstPage := make(chan page, 1)
	go func() {
		out, err := l.listAssociated(ctx, cluster, principalARN, nil)
		firstPage <- page{out, err}
	}()
	start := time.Now()
	out, err := l.client.DescribeAccessEntry(ctx, &eks.DescribeAccessEntryInput{ClusterName: aws.String(cluster), PrincipalArn: aws.String(principalARN)})
	l.metrics.observeCall("eks:DescribeAccessEntry", start, err)
	first := <-firstPage
	if err != nil {
		return AccessEntry{}, classifyEKSError("DescribeAccessEntry", "access entry", principalARN, err)
	}
	if out.AccessEntry == nil {
		return AccessEntry{}, &UnavailableError{Service: "EKS", Op: "DescribeAccessEntry", Err: fmt.Errorf("response for %s holds no accessEntry element", principalARN)}
	}
	e := out.AccessEntry
	entry := AccessEntry{PrincipalARN: aws.ToString(e.PrincipalArn), Type: aws.ToString(e.Type), Username: aws.ToString(e.Username), Groups: e.KubernetesGroups}
	pols, err := first.out, first.err
	for page := 1; ; page++ {
		if err != nil {
			// The entry exists; its policies unknown is "could not check".
			var u *UnavailableError
			if err := classifyEKSError("ListAssociatedAccessPolicies", "access entry", principalARN, err); errors.As(err, &u) {
				return AccessEntry{}, u
			}
			return AccessEntry{}, &UnavailableError{Service: "EKS", Op: "ListAssociatedAccessPolicies", Err: err}
		}
		for _, p := range pols.AssociatedAccessPolicies {
			entry.Policies = append(entry.Policies, aws.ToString(p.PolicyArn))
		}
		if aws.ToString(pols.NextToken) == "" {
			return entry, nil
		}
		if page == l.maxPages {
			return AccessEntry{}, &UnavailableError{Service: "EKS", Op: "ListAssociatedAccessPolicies", Err: fmt.Errorf("more than %d pages of associated access policies", page)}
		}
		pols, err = l.listAssociated(ctx, cluster, principalARN, pols.NextToken)
	}
}

// listAssociated asks for one page of the access entry's policies.
func (l *EKSLive) listAssociated(ctx context.Context, cluster, principalARN string, token *string) (*eks.ListAssociatedAccessPoliciesOutput, error) {
	start := time.Now()
	out, err := l.client.ListAssociatedAccessPolicies(ctx, &eks.ListAssociatedAccessPoliciesInput{
		ClusterName: aws.String(cluster), PrincipalArn: aws.String(principalARN), NextToken: token})
	l.metrics.observeCall("eks:ListAssociatedAccessPolicies", start, err)
	return out, err
}

// classifyEKSError maps an EKS error: ResourceNotFoundException is a
// *NotFoundError, everything else (AccessDeniedException included: the
// webhook may not ask, which says nothing about the node) an
// *UnavailableError.
func classifyEKSError(op, kind, name string, err error) error {
	var nf *ekstypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return &NotFoundError{Kind: kind, Name: name}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ResourceNotFoundException" {
		return &NotFoundError{Kind: kind, Name: name}
	}
	return &UnavailableError{Service: "EKS", Op: op, Err: err}
}

// CachedEKS is an EKSView in front of another with the rules of Cached:
// TTL, shorter negative TTL, coalescing, per-call timeout and stale
// answers while EKS is unavailable.
type CachedEKS struct {
	answerCache
	inner   EKSView
	breaker *Breaker
}

var _ EKSView = (*CachedEKS)(nil)

// NewCachedEKS returns a cache in front of inner.
func NewCachedEKS(inner EKSView, opts CacheOptions) *CachedEKS {
	c := &CachedEKS{inner: inner}
	c.init(opts)
	c.service = "EKS"
	c.breaker = c.newBreaker("EKS")
	return c
}

// Cluster implements EKSView.
func (c *CachedEKS) Cluster(ctx context.Context, name string) (Cluster, error) {
	v, served, err := c.lookupVia(ctx, c.breaker, "DescribeCluster", "cluster\x00"+name, func(ctx context.Context) (any, error) {
		return c.inner.Cluster(ctx, name)
	})
	if err != nil {
		return Cluster{}, err
	}
	cl := v.(Cluster)
	cl.Served = served
	return cl, nil
}

// AccessEntry implements EKSView.
func (c *CachedEKS) AccessEntry(ctx context.Context, cluster, principalARN string) (AccessEntry, error) {
	v, served, err := c.lookupVia(ctx, c.breaker, "DescribeAccessEntry", "entry\x00"+cluster+"\x00"+principalARN, func(ctx context.Context) (any, error) {
		return c.inner.AccessEntry(ctx, cluster, principalARN)
	})
	if err != nil {
		return AccessEntry{}, err
	}
	e := v.(AccessEntry)
	e.Served = served
	return e, nil
}
