package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// KMSView is the narrow interface the encrypted-volume rule asks KMS
// through: one key, with its key policy and grants.
//
// Errors follow View: a key KMS does not have is a *NotFoundError; KMS
// that could not be asked (throttling, timeouts, no permission to ask, a
// snapshot without the section) is an *UnavailableError with Service
// "KMS".
type KMSView interface {
	// Key describes the key id names: a key ID, a key ARN, an alias name
	// ("alias/ebs") or an alias ARN, as EC2 accepts them.
	Key(ctx context.Context, id string) (KMSKey, error)
}

// Key states (KMS's KeyState); only Enabled encrypts.
const KMSKeyEnabled = "Enabled"

// KMSKey is a KMS key as the encrypted-volume rule needs it.
type KMSKey struct {
	ARN     string
	Account string
	Region  string
	// State is KMS's KeyState: Enabled, Disabled, PendingDeletion,
	// PendingImport, Unavailable, ...
	State string
	// DeletionDate is set for a key pending deletion.
	DeletionDate *time.Time
	// Policy is the key's default key policy; nil when it could not be
	// read, and then PolicyUnknown says why.
	Policy        *Policy
	PolicyUnknown string
	// Grants are the key's grants; GrantsUnknown says why they could not
	// be listed ("" when they were).
	Grants        []KMSGrant
	GrantsUnknown string
	Served
}

// KMSGrant is one grant on a key.
type KMSGrant struct {
	ID         string
	Grantee    string
	Operations []string
}

// KeyUse is the answer to "may principal use the key for this action",
// as AWS evaluates a KMS request: the key policy must allow the principal,
// or allow its account (delegating to IAM) and IAM must allow; a grant to
// the principal also allows; an explicit Deny in either denies.
type KeyUse struct {
	Allowed bool
	// Via says what allows: "key policy", "key policy and IAM", "grant".
	Via string
	// Why says, for a denial, what is missing or what denies.
	Why string
	// Unsupported lists condition operators of the key policy the
	// evaluator does not know.
	Unsupported []string
}

// DecideKeyUse decides q (Principal, Action, Resource = the key's ARN,
// Context) for key: its key policy evaluated here, the principal's IAM
// policies by iam (the View's answer to the same question).
func DecideKeyUse(key KMSKey, q Question, iam Decision) KeyUse {
	principal, err := ParseRoleARN(q.Principal)
	account := ""
	if err == nil {
		account = principal.Account
	}
	var d Decision
	direct, delegated := false, false
	for i := range key.Policy.statements() {
		s := &key.Policy.Statements[i]
		who := s.keyPrincipal(q.Principal, account, key.Account)
		if who == "" || !s.matchesAction(q.Action) || !s.matchesResource(q.Resource) || !s.conditionsHold(q, &d) {
			continue
		}
		if s.Effect == Deny {
			return KeyUse{Why: fmt.Sprintf("the key policy's statement %q denies it", s.Label()), Unsupported: d.Unsupported}
		}
		if who == "principal" {
			direct = true
		} else {
			delegated = true
		}
	}
	if iam.Explicit {
		return KeyUse{Why: "IAM " + iam.Reason(), Unsupported: d.Unsupported}
	}
	sameAccount := account != "" && account == key.Account
	switch {
	case direct && (sameAccount || iam.Allowed):
		return KeyUse{Allowed: true, Via: "key policy", Unsupported: d.Unsupported}
	case delegated && iam.Allowed:
		return KeyUse{Allowed: true, Via: "key policy and IAM", Unsupported: d.Unsupported}
	}
	for _, g := range key.Grants {
		if g.Grantee == q.Principal && containsFold(g.Operations, strings.TrimPrefix(q.Action, "kms:")) {
			return KeyUse{Allowed: true, Via: "grant " + g.ID, Unsupported: d.Unsupported}
		}
	}
	use := KeyUse{Unsupported: d.Unsupported}
	switch {
	case direct:
		use.Why = "the key policy allows the role, but the key is in account " + key.Account + " and the role's IAM policies do not allow it too (" + iam.Reason() + ")"
	case delegated:
		use.Why = "the key policy delegates to IAM (it allows account " + account + "), but IAM does not allow it: " + iam.Reason()
	default:
		use.Why = "the key policy neither allows the role nor delegates to IAM (no statement allows arn:" + keyPartition(key.ARN) + ":iam::" + account + ":root)"
	}
	return use
}

func (p *Policy) statements() []Statement {
	if p == nil {
		return nil
	}
	return p.Statements
}

// keyPrincipal says whom a key policy statement's Principal names of the
// request's: "principal" for the role itself (or "*"), "account" for its
// account (the root principal: IAM decides), "" for neither.
func (s *Statement) keyPrincipal(principalARN, account, keyAccount string) string {
	names := func(p *Principals) string {
		if p.Any {
			return "principal"
		}
		out := ""
		for _, a := range p.AWS {
			switch {
			case strings.EqualFold(a, principalARN) || a == "*":
				return "principal"
			case account != "" && (a == account || strings.HasSuffix(a, ":iam::"+account+":root")):
				out = "account"
			}
		}
		return out
	}
	switch {
	case s.Principal != nil:
		return names(s.Principal)
	case s.NotPrincipal != nil:
		if names(s.NotPrincipal) == "" {
			return "principal"
		}
	}
	return ""
}

func keyPartition(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) == 3 && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}

// KMSKeyARNParts splits a key or alias ARN into region and account; ok is
// false for a key ID or alias name, which name a key in the caller's
// region and account.
func KMSKeyARNParts(id string) (region, account string, ok bool) {
	if !strings.HasPrefix(id, "arn:") {
		return "", "", false
	}
	parts := strings.SplitN(id, ":", 6)
	if len(parts) != 6 || parts[2] != "kms" {
		return "", "", false
	}
	return parts[3], parts[4], true
}

// KMSAPI is the part of the KMS client KMSLive uses.
type KMSAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	ListGrants(ctx context.Context, in *kms.ListGrantsInput, optFns ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// NewKMSClient builds a KMS client as NewEKSClient builds EKS's.
func NewKMSClient(ctx context.Context, region, endpoint string, timeout time.Duration) (*kms.Client, error) {
	cfg, err := loadAWSConfig(ctx, region, timeout)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.HTTPClient = &cappedClient{inner: o.HTTPClient, max: MaxIAMResponseBytes}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// KMSLive answers KMSView questions by asking KMS: DescribeKey, then
// GetKeyPolicy and ListGrants of the key found (3 calls per key, more for
// many pages of grants). It holds no cache; put a CachedKMS in front.
type KMSLive struct {
	client   KMSAPI
	metrics  *Metrics
	maxPages int
}

var _ KMSView = (*KMSLive)(nil)

// NewKMSLive returns a KMSLive asking KMS through client (MaxPages bounds
// ListGrants).
func NewKMSLive(client KMSAPI, opts LiveOptions) *KMSLive {
	if opts.MaxPages <= 0 {
		opts.MaxPages = 5
	}
	return &KMSLive{client: client, metrics: opts.Metrics, maxPages: opts.MaxPages}
}

// Key implements KMSView.
func (l *KMSLive) Key(ctx context.Context, id string) (KMSKey, error) {
	start := time.Now()
	out, err := l.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	l.metrics.observeCall("kms:DescribeKey", start, err)
	if err != nil {
		return KMSKey{}, classifyKMSError("DescribeKey", id, err)
	}
	if out.KeyMetadata == nil {
		return KMSKey{}, &UnavailableError{Service: "KMS", Op: "DescribeKey", Err: fmt.Errorf("response for %q holds no KeyMetadata", id)}
	}
	m := out.KeyMetadata
	key := KMSKey{ARN: aws.ToString(m.Arn), Account: aws.ToString(m.AWSAccountId), State: string(m.KeyState), DeletionDate: m.DeletionDate}
	key.Region, _, _ = KMSKeyARNParts(key.ARN)
	start = time.Now()
	pol, err := l.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: m.Arn, PolicyName: aws.String("default")})
	l.metrics.observeCall("kms:GetKeyPolicy", start, err)
	switch {
	case err != nil:
		key.PolicyUnknown = "GetKeyPolicy: " + (&UnavailableError{Service: "KMS", Op: "GetKeyPolicy", Err: err}).Summary()
	default:
		if key.Policy, err = ParsePolicy([]byte(aws.ToString(pol.Policy))); err != nil {
			key.Policy, key.PolicyUnknown = nil, "the key policy does not parse: "+err.Error()
		}
	}
	var marker *string
	for page := 0; ; page++ {
		if page == l.maxPages {
			key.GrantsUnknown = fmt.Sprintf("more than %d pages of grants", page)
			break
		}
		start := time.Now()
		gs, err := l.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: m.Arn, Marker: marker})
		l.metrics.observeCall("kms:ListGrants", start, err)
		if err != nil {
			key.GrantsUnknown = "ListGrants: " + (&UnavailableError{Service: "KMS", Op: "ListGrants", Err: err}).Summary()
			break
		}
		for _, g := range gs.Grants {
			kg := KMSGrant{ID: aws.ToString(g.GrantId), Grantee: aws.ToString(g.GranteePrincipal)}
			for _, op := range g.Operations {
				kg.Operations = append(kg.Operations, string(op))
			}
			key.Grants = append(key.Grants, kg)
		}
		if !gs.Truncated || aws.ToString(gs.NextMarker) == "" {
			break
		}
		marker = gs.NextMarker
	}
	return key, nil
}

// classifyKMSError maps a KMS error: NotFoundException is a
// *NotFoundError; everything else (AccessDeniedException included: the
// webhook may not ask, which says nothing about the key) an
// *UnavailableError.
func classifyKMSError(op, id string, err error) error {
	var nf *kmstypes.NotFoundException
	if errors.As(err, &nf) {
		return &NotFoundError{Kind: "KMS key", Name: id}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFoundException" {
		return &NotFoundError{Kind: "KMS key", Name: id}
	}
	return &UnavailableError{Service: "KMS", Op: op, Err: err}
}

// CachedKMS is a KMSView in front of another with the rules of Cached:
// TTL, shorter negative TTL, coalescing, per-call timeout and stale
// answers while KMS is unavailable; and, as EKS, EC2 and SSM, a breaker
// that remembers an unreachable KMS (a private cluster without a KMS VPC
// endpoint) and a share of the admission's deadline, so that KMS never
// starves the IAM checks.
type CachedKMS struct {
	answerCache
	inner   KMSView
	breaker *Breaker
}

var _ KMSView = (*CachedKMS)(nil)

// NewCachedKMS returns a cache in front of inner.
func NewCachedKMS(inner KMSView, opts CacheOptions) *CachedKMS {
	c := &CachedKMS{inner: inner}
	c.init(opts)
	c.service = "KMS"
	c.breaker = c.newBreaker("KMS")
	return c
}

// Key implements KMSView.
func (c *CachedKMS) Key(ctx context.Context, id string) (KMSKey, error) {
	v, served, err := c.lookupVia(ctx, c.breaker, "DescribeKey", "kms\x00"+id, func(ctx context.Context) (any, error) {
		return c.inner.Key(ctx, id)
	})
	if err != nil {
		return KMSKey{}, err
	}
	k := v.(KMSKey)
	k.Served = served
	return k, nil
}
