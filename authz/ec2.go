package authz

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// EC2View is the narrow interface the selector rules ask EC2 and SSM
// through: one Describe call per selector term (as Karpenter resolves each
// term on its own), and SSM parameters for image aliases.
//
// Errors follow View: EC2 or SSM that could not be asked (throttling,
// timeouts, no permission to ask, a snapshot without the section) is an
// *UnavailableError with Service "EC2" or "SSM". A query that matches
// nothing is an empty EC2Resources, not an error; a missing SSM parameter
// is a *NotFoundError.
type EC2View interface {
	// Describe answers one Describe* call.
	Describe(ctx context.Context, q EC2Query) (EC2Resources, error)
	// Parameter returns the SSM parameter named name.
	Parameter(ctx context.Context, name string) (Parameter, error)
}

// EC2Resource names the EC2 API a query is put to.
type EC2Resource string

// EC2Resource values.
const (
	EC2Subnets              EC2Resource = "DescribeSubnets"
	EC2SecurityGroups       EC2Resource = "DescribeSecurityGroups"
	EC2Images               EC2Resource = "DescribeImages"
	EC2CapacityReservations EC2Resource = "DescribeCapacityReservations"
)

// Filter is one EC2 filter: Name is "tag:KEY", "tag-key", "subnet-id",
// "group-id", "group-name", "image-id", "name", "state", "owner-id",
// "instance-match-criteria"; values match with EC2's wildcards (* and ?).
type Filter struct {
	Name   string
	Values []string
}

// EC2Query is one Describe call: the filters a selector term becomes.
type EC2Query struct {
	Resource EC2Resource
	Filters  []Filter
	// Owners is DescribeImages' Owners (account IDs, "self", "amazon").
	Owners []string
	// IDs is DescribeCapacityReservations' CapacityReservationIds.
	IDs []string
}

// Key is the query's identity in the cache: filters in a canonical order.
func (q EC2Query) Key() string {
	fs := append([]Filter(nil), q.Filters...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	var b strings.Builder
	b.WriteString(string(q.Resource))
	for _, f := range fs {
		b.WriteString("\x00f\x00" + f.Name)
		for _, v := range f.Values {
			b.WriteString("\x01" + v)
		}
	}
	for _, o := range q.Owners {
		b.WriteString("\x00o\x00" + o)
	}
	for _, id := range q.IDs {
		b.WriteString("\x00i\x00" + id)
	}
	return b.String()
}

// String describes the query in one line, for messages.
func (q EC2Query) String() string {
	var parts []string
	for _, f := range q.Filters {
		parts = append(parts, f.Name+"="+strings.Join(f.Values, ","))
	}
	if len(q.Owners) > 0 {
		parts = append(parts, "owners="+strings.Join(q.Owners, ","))
	}
	if len(q.IDs) > 0 {
		parts = append(parts, "ids="+strings.Join(q.IDs, ","))
	}
	return string(q.Resource) + "(" + strings.Join(parts, " ") + ")"
}

// Subnet is an EC2 subnet as the selector rules need it.
type Subnet struct {
	ID, VPCID, AvailabilityZone, AvailabilityZoneID, OwnerID string
	Tags                                                     map[string]string
}

// SecurityGroup is an EC2 security group as the selector rules need it.
type SecurityGroup struct {
	ID, Name, VPCID, OwnerID string
	Tags                     map[string]string
}

// Image is an AMI as the selector rules need it.
type Image struct {
	ID, Name, OwnerID, OwnerAlias string
	// Architecture is EC2's (x86_64, arm64, i386, x86_64_mac, arm64_mac).
	Architecture string
	// Platform is "windows" for Windows images, "" otherwise.
	Platform string
	State    string
	// Public is set for an image anyone may launch (ec2:Public).
	Public bool
	// RootDeviceType is "ebs" or "instance-store" (ec2:RootDeviceType),
	// "" when not known.
	RootDeviceType string
	Tags           map[string]string
}

// CapacityReservation is an EC2 capacity reservation as the selector rules
// need it.
type CapacityReservation struct {
	ID, OwnerID, InstanceType, AvailabilityZone, State, InstanceMatchCriteria string
	// EndDate is zero for a reservation without an end.
	EndDate time.Time
	Tags    map[string]string
}

// EC2Resources is the answer to an EC2Query: the list of its Resource.
type EC2Resources struct {
	Subnets              []Subnet
	SecurityGroups       []SecurityGroup
	Images               []Image
	CapacityReservations []CapacityReservation
	// Truncated, when not 0, is the page cap the query reached: it
	// matches more than one admission reads, holds no resources, and is
	// "not checked".
	Truncated int
	Served
}

// Len is the number of resources found.
func (r EC2Resources) Len() int {
	return len(r.Subnets) + len(r.SecurityGroups) + len(r.Images) + len(r.CapacityReservations)
}

// Parameter is an SSM parameter.
type Parameter struct {
	Name, Value string
	Served
}

// EC2API is the part of the EC2 client EC2Live uses.
type EC2API interface {
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeCapacityReservations(ctx context.Context, in *ec2.DescribeCapacityReservationsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeCapacityReservationsOutput, error)
}

// SSMAPI is the part of the SSM client EC2Live uses.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var (
	_ EC2API = (*ec2.Client)(nil)
	_ SSMAPI = (*ssm.Client)(nil)
)

// MaxEC2ResponseBytes caps one EC2 or SSM response: a page of up to 1,000
// images is far larger than IAM's answers.
const MaxEC2ResponseBytes = 16 << 20

// NewEC2Client builds an EC2 client as NewIAMClient builds IAM's; endpoint,
// when set, replaces EC2's (a local test endpoint).
func NewEC2Client(ctx context.Context, region, endpoint string, timeout time.Duration) (*ec2.Client, error) {
	cfg, err := loadAWSConfig(ctx, region, timeout)
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.HTTPClient = &cappedClient{inner: o.HTTPClient, max: MaxEC2ResponseBytes}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// NewSSMClient builds an SSM client; endpoint as for NewEC2Client.
func NewSSMClient(ctx context.Context, region, endpoint string, timeout time.Duration) (*ssm.Client, error) {
	cfg, err := loadAWSConfig(ctx, region, timeout)
	if err != nil {
		return nil, err
	}
	return ssm.NewFromConfig(cfg, func(o *ssm.Options) {
		o.HTTPClient = &cappedClient{inner: o.HTTPClient, max: MaxIAMResponseBytes}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// EC2Live answers EC2View questions by asking EC2 and SSM. It holds no
// cache; put a CachedEC2 in front of it.
type EC2Live struct {
	ec2      EC2API
	ssm      SSMAPI
	metrics  *Metrics
	maxPages int
}

var _ EC2View = (*EC2Live)(nil)

// MaxEC2Pages is how many pages of one Describe call EC2Live reads by
// default (up to 5,000 images): a term matching more is answered
// Truncated, "not checked", and that answer is cached.
const MaxEC2Pages = 5

// NewEC2Live returns an EC2Live; opts as for NewLive (MaxPages bounds the
// pages of one Describe call, MaxEC2Pages by default).
func NewEC2Live(ec2c EC2API, ssmc SSMAPI, opts LiveOptions) *EC2Live {
	if opts.MaxPages <= 0 {
		opts.MaxPages = MaxEC2Pages
	}
	return &EC2Live{ec2: ec2c, ssm: ssmc, metrics: opts.Metrics, maxPages: opts.MaxPages}
}

func sdkFilters(fs []Filter) []ec2types.Filter {
	out := make([]ec2types.Filter, len(fs))
	for i, f := range fs {
		out[i] = ec2types.Filter{Name: aws.String(f.Name), Values: f.Values}
	}
	return out
}

func tagsOf(ts []ec2types.Tag) map[string]string {
	if len(ts) == 0 {
		return nil
	}
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// Describe implements EC2View, reading every page (up to MaxPages).
func (l *EC2Live) Describe(ctx context.Context, q EC2Query) (EC2Resources, error) {
	var out EC2Resources
	var token *string
	for page := 0; ; page++ {
		if page == l.maxPages {
			// An answer all the same, cached like any other: the term
			// is "not checked", and asking again would page again.
			return EC2Resources{Truncated: page}, nil
		}
		if page > 0 {
			if err := chargePage(ctx, string(q.Resource)); err != nil {
				return EC2Resources{}, spentFor("EC2", err)
			}
		}
		start := time.Now()
		next, err := l.page(ctx, q, token, &out)
		l.metrics.observeCall("ec2:"+string(q.Resource), start, err)
		if err != nil {
			if q.Resource == EC2CapacityReservations && isEC2NotFound(err) {
				// Asked by ID: EC2 answers an unknown ID with an error.
				return EC2Resources{}, nil
			}
			return EC2Resources{}, &UnavailableError{Service: "EC2", Op: string(q.Resource), Err: err}
		}
		if aws.ToString(next) == "" {
			return out, nil
		}
		token = next
	}
}

func (l *EC2Live) page(ctx context.Context, q EC2Query, token *string, out *EC2Resources) (*string, error) {
	switch q.Resource {
	case EC2Subnets:
		r, err := l.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: sdkFilters(q.Filters), NextToken: token, MaxResults: aws.Int32(500)})
		if err != nil {
			return nil, err
		}
		for _, s := range r.Subnets {
			out.Subnets = append(out.Subnets, Subnet{ID: aws.ToString(s.SubnetId), VPCID: aws.ToString(s.VpcId),
				AvailabilityZone: aws.ToString(s.AvailabilityZone), AvailabilityZoneID: aws.ToString(s.AvailabilityZoneId),
				OwnerID: aws.ToString(s.OwnerId), Tags: tagsOf(s.Tags)})
		}
		return r.NextToken, nil
	case EC2SecurityGroups:
		r, err := l.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: sdkFilters(q.Filters), NextToken: token, MaxResults: aws.Int32(1000)})
		if err != nil {
			return nil, err
		}
		for _, g := range r.SecurityGroups {
			out.SecurityGroups = append(out.SecurityGroups, SecurityGroup{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName),
				VPCID: aws.ToString(g.VpcId), OwnerID: aws.ToString(g.OwnerId), Tags: tagsOf(g.Tags)})
		}
		return r.NextToken, nil
	case EC2Images:
		in := &ec2.DescribeImagesInput{Filters: sdkFilters(q.Filters), Owners: q.Owners, NextToken: token,
			IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(1000)}
		r, err := l.ec2.DescribeImages(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, im := range r.Images {
			out.Images = append(out.Images, Image{ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name),
				OwnerID: aws.ToString(im.OwnerId), OwnerAlias: aws.ToString(im.ImageOwnerAlias),
				Architecture: string(im.Architecture), Platform: string(im.Platform), State: string(im.State), Public: aws.ToBool(im.Public), RootDeviceType: string(im.RootDeviceType), Tags: tagsOf(im.Tags)})
		}
		return r.NextToken, nil
	case EC2CapacityReservations:
		in := &ec2.DescribeCapacityReservationsInput{Filters: sdkFilters(q.Filters), CapacityReservationIds: q.IDs, NextToken: token}
		if len(q.IDs) == 0 {
			in.MaxResults = aws.Int32(1000)
		}
		r, err := l.ec2.DescribeCapacityReservations(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, c := range r.CapacityReservations {
			out.CapacityReservations = append(out.CapacityReservations, CapacityReservation{ID: aws.ToString(c.CapacityReservationId),
				OwnerID: aws.ToString(c.OwnerId), InstanceType: aws.ToString(c.InstanceType), AvailabilityZone: aws.ToString(c.AvailabilityZone),
				State: string(c.State), InstanceMatchCriteria: string(c.InstanceMatchCriteria), EndDate: aws.ToTime(c.EndDate), Tags: tagsOf(c.Tags)})
		}
		return r.NextToken, nil
	}
	return nil, fmt.Errorf("no EC2 API %q", q.Resource)
}

// isEC2NotFound reports an EC2 "...NotFound" error code.
func isEC2NotFound(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && strings.HasSuffix(apiErr.ErrorCode(), ".NotFound")
}

// Parameter implements EC2View with SSM's GetParameter.
func (l *EC2Live) Parameter(ctx context.Context, name string) (Parameter, error) {
	start := time.Now()
	out, err := l.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	l.metrics.observeCall("ssm:GetParameter", start, err)
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		var apiErr smithy.APIError
		if errors.As(err, &nf) || (errors.As(err, &apiErr) && apiErr.ErrorCode() == "ParameterNotFound") {
			return Parameter{}, &NotFoundError{Kind: "SSM parameter", Name: name}
		}
		return Parameter{}, &UnavailableError{Service: "SSM", Op: "GetParameter", Err: err}
	}
	if out.Parameter == nil {
		return Parameter{}, &UnavailableError{Service: "SSM", Op: "GetParameter", Err: fmt.Errorf("response for %s holds no Parameter", name)}
	}
	return Parameter{Name: aws.ToString(out.Parameter.Name), Value: aws.ToString(out.Parameter.Value)}, nil
}

// CachedEC2 is an EC2View in front of another with the rules of Cached:
// TTL, coalescing, per-call timeout and stale answers while EC2 or SSM is
// unavailable. A query that matches nothing is cached as a not-found
// answer (the negative LRU and TTL): the subnet someone is tagging right
// now should be seen soon.
type CachedEC2 struct {
	answerCache
	inner                  EC2View
	ec2Breaker, ssmBreaker *Breaker
}

var _ EC2View = (*CachedEC2)(nil)

// NewCachedEC2 returns a cache in front of inner.
func NewCachedEC2(inner EC2View, opts CacheOptions) *CachedEC2 {
	c := &CachedEC2{inner: inner}
	c.init(opts)
	c.service = "EC2"
	c.ec2Breaker, c.ssmBreaker = c.newBreaker("EC2"), c.newBreaker("SSM")
	return c
}

// errMatchedNothing stands for an empty answer inside the cache.
var errMatchedNothing = &NotFoundError{Kind: "EC2 match", Name: ""}

// Describe implements EC2View.
func (c *CachedEC2) Describe(ctx context.Context, q EC2Query) (EC2Resources, error) {
	v, served, err := c.lookupVia(ctx, c.ec2Breaker, string(q.Resource), "ec2\x00"+q.Key(), func(ctx context.Context) (any, error) {
		r, err := c.inner.Describe(ctx, q)
		if err == nil && r.Len() == 0 && r.Truncated == 0 {
			return nil, errMatchedNothing
		}
		return r, err
	})
	if errors.Is(err, ErrNotFound) {
		return EC2Resources{}, nil
	}
	if err != nil {
		return EC2Resources{}, err
	}
	r := v.(EC2Resources)
	r.Served = served
	return r, nil
}

// Parameter implements EC2View.
func (c *CachedEC2) Parameter(ctx context.Context, name string) (Parameter, error) {
	v, served, err := c.lookupVia(ctx, c.ssmBreaker, "GetParameter", "ssm\x00"+name, func(ctx context.Context) (any, error) {
		return c.inner.Parameter(ctx, name)
	})
	if err != nil {
		return Parameter{}, err
	}
	p := v.(Parameter)
	p.Served = served
	return p, nil
}

// BudgetedEC2 is an EC2View in front of another that calls AWS (EC2Live),
// with a call budget of its own, by Budgeted's rules: EC2 throttles its
// Describe calls per account, and Karpenter's own calls share that limit,
// so no caller of the webhook may spend it. Put it below the cache. A
// question refused by the budget is an *UnavailableError (EC2 or SSM)
// wrapping ErrBudgetSpent: "could not check".
type BudgetedEC2 struct {
	budget *Budgeted
	inner  EC2View
}

var _ EC2View = (*BudgetedEC2)(nil)

// NewBudgetedEC2 returns a budget in front of inner. It is charged per
// page: a Describe call that pages costs a token per page (EC2 throttles
// calls, and a page is one). A call that reached no one (refused,
// dropped, timed out) gives its token back. opts.Metrics counts spent,
// refused and refunded tokens and the waits under service "EC2".
func NewBudgetedEC2(inner EC2View, opts BudgetOptions) *BudgetedEC2 {
	b := NewBudgeted(nil, opts)
	b.service = "EC2"
	return &BudgetedEC2{budget: b, inner: inner}
}

type pageChargeKey struct{}

// chargePage takes one token, from the budget ctx carries, for a page
// after the first of a Describe call; nil when no budget is set.
func chargePage(ctx context.Context, op string) error {
	if b, ok := ctx.Value(pageChargeKey{}).(*Budgeted); ok {
		return b.spend(ctx, op)
	}
	return nil
}

func spentFor(service string, err error) error {
	var u *UnavailableError
	if errors.As(err, &u) {
		u.Service = service
	}
	return err
}

// Describe implements EC2View.
func (b *BudgetedEC2) Describe(ctx context.Context, q EC2Query) (EC2Resources, error) {
	if err := b.budget.spend(ctx, string(q.Resource)); err != nil {
		return EC2Resources{}, spentFor("EC2", err)
	}
	r, err := b.inner.Describe(context.WithValue(ctx, pageChargeKey{}, b.budget), q)
	if IsUnreachable(err) && !errors.Is(err, ErrBudgetSpent) {
		b.budget.refund()
	}
	return r, spentFor("EC2", err)
}

// Parameter implements EC2View.
func (b *BudgetedEC2) Parameter(ctx context.Context, name string) (Parameter, error) {
	if err := b.budget.spend(ctx, "GetParameter"); err != nil {
		return Parameter{}, spentFor("SSM", err)
	}
	p, err := b.inner.Parameter(ctx, name)
	if IsUnreachable(err) {
		b.budget.refund()
	}
	return p, err
}
