package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// IAMAPI is the part of the IAM client Live uses, so that tests can hand
// it a real client pointed at a local endpoint (or any fake).
type IAMAPI interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, optFns ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
}

var _ IAMAPI = (*iam.Client)(nil)

// LiveOptions tunes a Live view.
type LiveOptions struct {
	// Metrics records every IAM call; nil records nothing.
	Metrics *Metrics
	// MaxPages bounds how many SimulatePrincipalPolicy pages one Decide
	// reads before giving up (default 20), so that a misbehaving endpoint
	// cannot keep a request busy forever.
	MaxPages int
	// MaxInFlight bounds the IAM calls in flight at once (default
	// DefaultIAMInFlight); more wait for a slot, within their context.
	MaxInFlight int
}

// DefaultIAMInFlight is how many IAM calls Live makes at once. A burst of
// new classes asks hundreds of batches together (about 15 each with
// Karpenter 1.3 and later); started all at once they share the CPU and the
// endpoint's answers until every attempt is slow, attempts time out and
// retries add to the load (bench: 1,000 admissions over 50 new classes,
// 750 calls, were partly refused IAMUnavailable). Queued, each call starts
// with its whole attempt timeout and the same calls end sooner. A wait for
// a slot counts against the caller's deadline, not the attempt's.
const DefaultIAMInFlight = 128

// Live answers View questions by asking the IAM API. It holds no cache;
// put a Cached in front of it.
type Live struct {
	client   IAMAPI
	metrics  *Metrics
	maxPages int
	// slots holds one token per IAM call in flight.
	slots chan struct{}

	// principals memoizes assumed-role ARN → role ARN resolutions: a role's
	// path does not change without the role being recreated.
	principals sync.Map
}

var _ View = (*Live)(nil)

// NewLive returns a Live view asking IAM through client.
func NewLive(client IAMAPI, opts LiveOptions) *Live {
	if opts.MaxPages <= 0 {
		opts.MaxPages = 20
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultIAMInFlight
	}
	return &Live{client: client, metrics: opts.Metrics, maxPages: opts.MaxPages, slots: make(chan struct{}, opts.MaxInFlight)}
}

// acquire takes a slot for one IAM call to op, or says why it cannot
// (ctx ended first); release gives it back.
func (l *Live) acquire(ctx context.Context, op string) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &UnavailableError{Op: op, Err: ctx.Err()}
	}
}

func (l *Live) release() { <-l.slots }

// Retry budget of NewIAMClient: one call makes at most iamMaxAttempts
// attempts, each bounded by the HTTP client timeout, with at most
// iamMaxAttempts-1 backoff sleeps of at most timeout/10 between them:
//
//	2 attempts × (timeout × 9/20) + 1 backoff × (timeout / 10) = timeout
//
// so one call, retries included, ends within timeout even when the caller's
// context has no deadline (Cached also bounds each call with its own).
// Two long attempts rather than three short ones: under a burst of new
// classes (a GitOps sync of dozens, each asking Karpenter's 15 or so
// batches) an endpoint answers slower, and an attempt cut at a third of
// the deadline is most often one about to succeed, whose retry only adds
// to the load (bench: 1,000 admissions over 50 new classes were refused
// IAMUnavailable with three attempts, and answered with two).
const iamMaxAttempts = 2

// NewIAMClient builds an IAM client from the SDK's default configuration
// chain (environment, shared config, IRSA web identity, EKS Pod Identity,
// IMDS), for region (IAM is global, but the region picks the partition:
// cn-north-1 reaches IAM in China). endpoint, when set, replaces the IAM
// endpoint (a local test endpoint). A timeout > 0 bounds one call with its
// retries (see the budget above); 0 keeps the SDK's defaults.
func NewIAMClient(ctx context.Context, region, endpoint string, timeout time.Duration) (*iam.Client, error) {
	cfg, err := loadAWSConfig(ctx, region, timeout)
	if err != nil {
		return nil, err
	}
	return iam.NewFromConfig(cfg, func(o *iam.Options) {
		// Wrapped here, once the configuration chain has finished with the
		// client (a custom CA bundle needs the SDK's own client type).
		o.HTTPClient = &cappedClient{inner: o.HTTPClient, max: MaxIAMResponseBytes}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// loadAWSConfig is the SDK configuration every client of nodeclass-guard
// shares: the default credential chain, region, and the retry budget above.
func loadAWSConfig(ctx context.Context, region string, timeout time.Duration) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	httpClient := awshttp.NewBuildableClient()
	if timeout > 0 {
		attempt := timeout * 9 / (10 * iamMaxAttempts)
		backoff := timeout / 10
		opts = append(opts,
			config.WithRetryer(func() aws.Retryer {
				return retry.AddWithMaxBackoffDelay(retry.AddWithMaxAttempts(retry.NewStandard(), iamMaxAttempts), backoff)
			}),
		)
		// The SDK keeps 10 idle connections per host: a burst of misses
		// asks more in parallel, and every call past the tenth would
		// open (and TLS-handshake) a connection of its own.
		httpClient = httpClient.WithTimeout(attempt).WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = DefaultIAMInFlight
		})
	}
	opts = append(opts, config.WithHTTPClient(httpClient))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// IAM's global endpoint lives in us-east-1; without a region the
		// SDK could neither sign nor resolve the endpoint.
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}

// MaxIAMResponseBytes bounds one IAM response body. IAM's answers to the
// calls Live makes are a few KiB (a trust policy is at most 2,048
// characters, a simulation of one action on one resource a few
// statements); an endpoint sending more, a misbehaving proxy for one,
// must not hold the webhook's memory.
const MaxIAMResponseBytes = 1 << 20

// ErrIAMResponseTooLarge is the error of a response over
// MaxIAMResponseBytes.
var ErrIAMResponseTooLarge = fmt.Errorf("IAM response larger than %d bytes", MaxIAMResponseBytes)

// cappedClient refuses responses whose body is, or turns out to be,
// larger than max.
type cappedClient struct {
	inner aws.HTTPClient
	max   int64
}

func (c *cappedClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.ContentLength > c.max {
		resp.Body.Close()
		return nil, ErrIAMResponseTooLarge
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: c.max}
	return resp, nil
}

// cappedBody fails a read past its limit instead of returning more.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, ErrIAMResponseTooLarge
		}
		return b.ReadCloser.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// Role implements View with GetRole.
//
// NoSuchEntity is a *NotFoundError. So are InvalidInput and ValidationError:
// IAM sends them for a name no role can have, which means that no such role
// exists; the rules report the malformed name itself with its own code.
// Everything else is an *UnavailableError.
func (l *Live) Role(ctx context.Context, name string) (Role, error) {
	if err := l.acquire(ctx, "GetRole"); err != nil {
		return Role{}, err
	}
	start := time.Now()
	out, err := l.client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	l.release()
	l.metrics.observeCall("GetRole", start, err)
	if err != nil {
		return Role{}, classifyLookupError("GetRole", "role", name, err)
	}
	if out.Role == nil {
		return Role{}, &UnavailableError{Op: "GetRole", Err: fmt.Errorf("response for role %q holds no Role element", name)}
	}
	return roleFromSDK(*out.Role)
}

// InstanceProfile implements View with GetInstanceProfile; errors as for Role.
func (l *Live) InstanceProfile(ctx context.Context, name string) (InstanceProfile, error) {
	if err := l.acquire(ctx, "GetInstanceProfile"); err != nil {
		return InstanceProfile{}, err
	}
	start := time.Now()
	out, err := l.client.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	l.release()
	l.metrics.observeCall("GetInstanceProfile", start, err)
	if err != nil {
		return InstanceProfile{}, classifyLookupError("GetInstanceProfile", "instance profile", name, err)
	}
	p := out.InstanceProfile
	if p == nil {
		return InstanceProfile{}, &UnavailableError{Op: "GetInstanceProfile", Err: fmt.Errorf("response for instance profile %q holds no InstanceProfile element", name)}
	}
	ip := InstanceProfile{Name: aws.ToString(p.InstanceProfileName), Path: aws.ToString(p.Path), ARN: aws.ToString(p.Arn)}
	for _, r := range p.Roles {
		role, err := roleFromSDK(r)
		if err != nil {
			return InstanceProfile{}, fmt.Errorf("instance profile %q: %w", name, err)
		}
		ip.Roles = append(ip.Roles, role)
	}
	return ip, nil
}

// roleFromSDK converts an SDK role, parsing its URL-encoded trust policy.
func roleFromSDK(r types.Role) (Role, error) {
	role := Role{Name: aws.ToString(r.RoleName), Path: aws.ToString(r.Path), ARN: aws.ToString(r.Arn)}
	if doc := aws.ToString(r.AssumeRolePolicyDocument); doc != "" {
		// IAM percent-encodes policy documents (RFC 3986); PathUnescape,
		// unlike QueryUnescape, leaves a literal '+' alone.
		if decoded, err := url.PathUnescape(doc); err == nil {
			doc = decoded
		}
		trust, err := ParsePolicy([]byte(doc))
		if err != nil {
			return Role{}, fmt.Errorf("role %q: trust policy from IAM: %w", role.Name, err)
		}
		role.Trust = trust
	}
	return role, nil
}

// ResolvePrincipal returns the IAM role ARN, path included, of arn: an STS
// assumed-role ARN (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION, which
// SimulatePrincipalPolicy does not accept and which hides the role's path)
// is resolved with GetRole; a role ARN is returned as it is. The answer for
// an assumed-role ARN is remembered for the life of l.
func (l *Live) ResolvePrincipal(ctx context.Context, arn string) (string, error) {
	if !IsAssumedRoleARN(arn) {
		if _, err := ParseRoleARN(arn); err != nil {
			return "", err
		}
		return arn, nil
	}
	if v, ok := l.principals.Load(arn); ok {
		return v.(string), nil
	}
	r, err := ParseRoleARN(arn)
	if err != nil {
		return "", err
	}
	role, err := l.Role(ctx, r.Name)
	if err != nil {
		return "", err
	}
	l.principals.Store(arn, role.ARN)
	return role.ARN, nil
}

// Decide implements View with SimulatePrincipalPolicy, so that everything
// IAM counts (identity policies, permissions boundary, Organizations SCPs)
// counts here too.
//
// Errors: a principal IAM does not know is a *NotFoundError (kind "role",
// name the ARN); a question IAM rejects as invalid (InvalidInput: a
// malformed ARN or action) is a plain error naming the question, since it
// is neither the user's mistake nor IAM's outage but a configuration one;
// everything else is an *UnavailableError.
func (l *Live) Decide(ctx context.Context, q Question) (Decision, error) {
	const op = "SimulatePrincipalPolicy"
	principal, err := l.ResolvePrincipal(ctx, q.Principal)
	if err != nil {
		if IsUnavailable(err) || errors.Is(err, ErrNotFound) {
			return Decision{}, err
		}
		return Decision{}, fmt.Errorf("principal %q: %w", q.Principal, err)
	}
	in := &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(principal),
		ActionNames:     []string{q.Action},
		ContextEntries:  contextEntries(q.Context),
	}
	if q.Resource != "" {
		in.ResourceArns = []string{q.Resource}
	}
	var results []types.EvaluationResult
	for page := 0; ; page++ {
		if page == l.maxPages {
			return Decision{}, &UnavailableError{Op: op, Err: fmt.Errorf("no result for %s after %d pages", q.Action, page)}
		}
		if err := l.acquire(ctx, op); err != nil {
			return Decision{}, err
		}
		start := time.Now()
		out, err := l.client.SimulatePrincipalPolicy(ctx, in)
		l.release()
		l.metrics.observeCall(op, start, err)
		if err != nil {
			return Decision{}, classifyDecideError(q, principal, err)
		}
		results = append(results, out.EvaluationResults...)
		if d, ok := decisionFor(results, q); ok {
			return d, nil
		}
		if !out.IsTruncated || aws.ToString(out.Marker) == "" || aws.ToString(out.Marker) == aws.ToString(in.Marker) {
			return Decision{}, &UnavailableError{Op: op, Err: fmt.Errorf("response holds no evaluation result for action %s", q.Action)}
		}
		in.Marker = out.Marker
	}
}

// contextEntries turns question context into IAM context entries, in key
// order so that requests are reproducible.
func contextEntries(ctx map[string][]string) []types.ContextEntry {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := make([]types.ContextEntry, 0, len(keys))
	for _, k := range keys {
		typ := types.ContextKeyTypeEnumString
		if IsListKey(k, ctx[k]) {
			typ = types.ContextKeyTypeEnumStringList
		}
		entries = append(entries, types.ContextEntry{ContextKeyName: aws.String(k), ContextKeyType: typ, ContextKeyValues: ctx[k]})
	}
	return entries
}

// decisionFor finds q's answer among the evaluation results: the
// resource-specific result for q.Resource when IAM gave one (IAM now puts
// per-resource decisions there and a template in EvalResourceName), else a
// top-level result naming q.Resource, else the action's top-level result.
func decisionFor(results []types.EvaluationResult, q Question) (Decision, bool) {
	var top *types.EvaluationResult
	for i := range results {
		res := &results[i]
		if !strings.EqualFold(aws.ToString(res.EvalActionName), q.Action) {
			continue
		}
		for _, rs := range res.ResourceSpecificResults {
			if aws.ToString(rs.EvalResourceName) == q.Resource {
				boundary := rs.PermissionsBoundaryDecisionDetail
				if boundary == nil {
					boundary = res.PermissionsBoundaryDecisionDetail
				}
				return settled(decisionFromSimulation(rs.EvalResourceDecision, rs.MatchedStatements, rs.MissingContextValues, boundary, res.OrganizationsDecisionDetail), q), true
			}
		}
		if top == nil || aws.ToString(res.EvalResourceName) == q.Resource {
			top = res
		}
	}
	if top == nil {
		return Decision{}, false
	}
	return settled(decisionFromSimulation(top.EvalDecision, top.MatchedStatements, top.MissingContextValues, top.PermissionsBoundaryDecisionDetail, top.OrganizationsDecisionDetail), q), true
}

// settled is d as an answer to q: on a denial by an SCP, the request tags
// IAM reports missing that q does not carry are named (before knownAbsent
// drops the keys q knows to be absent); then knownAbsent.
func settled(d Decision, q Question) Decision {
	if d.DeniedBy.Source == DeniedBySCP {
		d.MissingRequestTags = missingRequestTags(d.MissingContext, q)
	}
	return knownAbsent(d, q)
}

// missingRequestTags returns the X of each aws:RequestTag/X among keys
// that q's context does not carry, once each.
func missingRequestTags(keys []string, q Question) []string {
	const prefix = "aws:requesttag/"
	var out []string
	for _, k := range keys {
		if len(k) <= len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) || len(lookupContext(q.Context, k)) > 0 {
			continue
		}
		if tag := k[len(prefix):]; !containsFold(out, tag) {
			out = append(out, tag)
		}
	}
	return out
}

// knownAbsent drops from d.MissingContext the keys q knows to be absent:
// IAM evaluated them as absent (it has no value for them) and reports them
// missing, but the question states them in full (Question.Complete), as
// the snapshot evaluator does.
func knownAbsent(d Decision, q Question) Decision {
	if len(q.Complete) == 0 || len(d.MissingContext) == 0 {
		return d
	}
	kept := d.MissingContext[:0:0]
	for _, k := range d.MissingContext {
		if !q.KnowsAbsent(k) {
			kept = append(kept, k)
		}
	}
	d.MissingContext = kept
	return d
}

// decisionFromSimulation maps one simulation result to a Decision.
//
// Which layer denied: IAM says whether the permissions boundary and the
// SCPs allowed the action, but matched statements do not say which policy
// is the boundary. A boundary that does not allow the action denies it by
// itself, so it is named, unless the matched deny comes from an inline role
// policy (SourcePolicyType "role"; a boundary is always a managed policy).
// SCPs come next; an explicit deny otherwise comes from an identity policy.
func decisionFromSimulation(decision types.PolicyEvaluationDecisionType, matched []types.Statement, missing []string,
	boundary *types.PermissionsBoundaryDecisionDetail, orgs *types.OrganizationsDecisionDetail) Decision {
	d := Decision{MissingContext: append([]string(nil), missing...)}
	switch decision {
	case types.PolicyEvaluationDecisionTypeAllowed:
		d.Allowed = true
		return d
	case types.PolicyEvaluationDecisionTypeExplicitDeny:
		d.Explicit = true
	}
	var stmt *types.Statement
	if len(matched) > 0 {
		stmt = &matched[0]
	}
	inlineDeny := d.Explicit && stmt != nil && stmt.SourcePolicyType == types.PolicySourceTypeRole
	switch {
	case boundary != nil && !boundary.AllowedByPermissionsBoundary && !inlineDeny:
		d.DeniedBy.Source = DeniedByBoundary
	case orgs != nil && !orgs.AllowedByOrganizations && !inlineDeny:
		d.DeniedBy.Source = DeniedBySCP
		stmt = nil // SCP statements are never in MatchedStatements
	case d.Explicit:
		d.DeniedBy.Source = DeniedByIdentity
	default:
		stmt = nil // an implicit deny matches no statement
	}
	if d.Explicit && stmt != nil {
		d.DeniedBy.Policy = aws.ToString(stmt.SourcePolicyId)
		if stmt.StartPosition != nil {
			d.DeniedBy.Statement = fmt.Sprintf("line %d", stmt.StartPosition.Line)
		}
	}
	return d
}

// classifyLookupError maps a GetRole/GetInstanceProfile error.
func classifyLookupError(op, kind, name string, err error) error {
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return &NotFoundError{Kind: kind, Name: name}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchEntity", "InvalidInput", "ValidationError":
			return &NotFoundError{Kind: kind, Name: name}
		}
	}
	return &UnavailableError{Op: op, Err: err}
}

// classifyDecideError maps a SimulatePrincipalPolicy error.
func classifyDecideError(q Question, principal string, err error) error {
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return &NotFoundError{Kind: "role", Name: principal}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchEntity":
			return &NotFoundError{Kind: "role", Name: principal}
		case "InvalidInput", "ValidationError":
			return fmt.Errorf("IAM rejected the question whether %s may %s on %s: %s", principal, q.Action, q.Resource, apiErr.ErrorMessage())
		}
	}
	return &UnavailableError{Op: "SimulatePrincipalPolicy", Err: err}
}
