package authz_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// liveEC2 is the EC2 view serve builds: the real SDK EC2 and SSM clients
// asking the local endpoint over the sample snapshot.
func liveEC2(t *testing.T, opts authz.CacheOptions) (*authz.CachedEC2, *iamserver.Server) {
	t.Helper()
	url, srv := sampleEndpoint(t)
	ctx := context.Background()
	ec2c, err := authz.NewEC2Client(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ssmc, err := authz.NewSSMClient(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewCachedEC2(authz.NewEC2Live(ec2c, ssmc, authz.LiveOptions{}), opts), srv
}

func ids(r authz.EC2Resources) []string {
	var out []string
	for _, x := range r.Subnets {
		out = append(out, x.ID)
	}
	for _, x := range r.SecurityGroups {
		out = append(out, x.ID)
	}
	for _, x := range r.Images {
		out = append(out, x.ID)
	}
	for _, x := range r.CapacityReservations {
		out = append(out, x.ID)
	}
	sort.Strings(out)
	return out
}

var ec2Cases = []struct {
	name string
	q    authz.EC2Query
	want string
}{
	{"subnets by tag", authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "tag:karpenter.sh/discovery", Values: []string{"demo"}}}},
		"subnet-0a1demo subnet-0b2demo subnet-0c3demo"},
	{"subnets by tag key (value *)", authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "tag-key", Values: []string{"karpenter.sh/discovery"}}}},
		"subnet-0a1demo subnet-0b2demo subnet-0c3demo subnet-0d4other"},
	{"subnets by tag wildcard", authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "tag:Name", Values: []string{"demo-private-?"}}}},
		"subnet-0a1demo subnet-0b2demo subnet-0c3demo"},
	{"subnets: tag typo matches nothing", authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "tag:karpenter.sh/discovery", Values: []string{"dmeo"}}}},
		""},
	{"subnets: two filters AND", authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "tag:karpenter.sh/discovery", Values: []string{"demo"}}, {Name: "tag:Name", Values: []string{"demo-private-b"}}}},
		"subnet-0b2demo"},
	{"subnet by id", authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "subnet-id", Values: []string{"subnet-0d4other"}}}},
		"subnet-0d4other"},
	{"security group by name", authz.EC2Query{Resource: authz.EC2SecurityGroups, Filters: []authz.Filter{{Name: "group-name", Values: []string{"demo-nodes"}}}},
		"sg-0demonodes"},
	{"security group by id", authz.EC2Query{Resource: authz.EC2SecurityGroups, Filters: []authz.Filter{{Name: "group-id", Values: []string{"sg-0othernodes"}}}},
		"sg-0othernodes"},
	{"images by name, owners self and amazon", authz.EC2Query{Resource: authz.EC2Images, Owners: []string{"self", "amazon"}, Filters: []authz.Filter{{Name: "name", Values: []string{"team-golden-*"}}, {Name: "state", Values: []string{"available"}}}},
		"ami-0teamarm"},
	{"images by name, owner amazon only", authz.EC2Query{Resource: authz.EC2Images, Owners: []string{"amazon"}, Filters: []authz.Filter{{Name: "name", Values: []string{"team-golden-*"}}}},
		""},
	{"images by id", authz.EC2Query{Resource: authz.EC2Images, Filters: []authz.Filter{{Name: "image-id", Values: []string{"ami-0al2023x86134", "ami-0al2023arm134"}}}},
		"ami-0al2023arm134 ami-0al2023x86134"},
	{"reservation by id", authz.EC2Query{Resource: authz.EC2CapacityReservations, IDs: []string{"cr-0demo1"}, Filters: []authz.Filter{{Name: "state", Values: []string{"active"}}}},
		"cr-0demo1"},
	{"reservation by unknown id", authz.EC2Query{Resource: authz.EC2CapacityReservations, IDs: []string{"cr-0nope"}},
		""},
	{"reservations by tag", authz.EC2Query{Resource: authz.EC2CapacityReservations, Filters: []authz.Filter{{Name: "tag:karpenter.sh/discovery", Values: []string{"demo"}}, {Name: "instance-match-criteria", Values: []string{"targeted"}}}},
		"cr-0demo1"},
}

// TestEC2SnapshotAndLiveAgree: each Describe call, answered by the
// snapshot's filter matching, is answered the same through the real SDK
// clients, the EC2 Query API and the local endpoint.
func TestEC2SnapshotAndLiveAgree(t *testing.T) {
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	live, _ := liveEC2(t, authz.CacheOptions{})
	ctx := context.Background()
	for _, tc := range ec2Cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := snap.Describe(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ids(s), " "); got != tc.want {
				t.Errorf("snapshot: %s matched %q, want %q", tc.q, got, tc.want)
			}
			l, err := live.Describe(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ids(l), " "); got != tc.want {
				t.Errorf("live: %s matched %q, want %q", tc.q, got, tc.want)
			}
		})
	}
	// The fields the rules read survive the XML.
	l, err := live.Describe(ctx, ec2Cases[5].q)
	if err != nil || len(l.Subnets) != 1 || l.Subnets[0].VPCID != "vpc-0other" || l.Subnets[0].AvailabilityZone != "us-west-2a" || l.Subnets[0].OwnerID != "111122223333" {
		t.Errorf("live subnet = %+v, %v", l.Subnets, err)
	}
	im, err := live.Describe(ctx, ec2Cases[8].q)
	if err != nil || len(im.Images) != 1 || im.Images[0].Architecture != "arm64" || im.Images[0].Tags["team"] != "platform" {
		t.Errorf("live image = %+v, %v", im.Images, err)
	}
	p, err := live.Parameter(ctx, "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id")
	if err != nil || p.Value != "ami-0al2023arm134" {
		t.Errorf("Parameter = %+v, %v", p, err)
	}
	if _, err := live.Parameter(ctx, "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/nvidia/recommended/image_id"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("missing parameter: %v, want not found", err)
	}
}

// TestEC2UnavailableIsNotAnEmptyMatch: an EC2 that cannot be asked is an
// UnavailableError naming EC2 (or SSM), never an empty answer; a cached
// answer is served stale; an empty match is re-asked after the negative
// TTL.
func TestEC2UnavailableIsNotAnEmptyMatch(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	live, srv := liveEC2(t, authz.CacheOptions{Now: clock, TTL: time.Minute, NegativeTTL: 10 * time.Second, Timeout: 3 * time.Second})
	ctx := context.Background()
	q := ec2Cases[0].q
	if _, err := live.Describe(ctx, q); err != nil {
		t.Fatal(err)
	}
	empty := ec2Cases[3].q
	if r, err := live.Describe(ctx, empty); err != nil || r.Len() != 0 {
		t.Fatalf("empty match: %+v, %v", r, err)
	}
	if _, err := live.Describe(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(iamserver.EC2DescribeSubnets); n != 2 {
		t.Errorf("DescribeSubnets calls = %d, want 2 (the empty match cached too)", n)
	}
	now = now.Add(11 * time.Second)
	if _, err := live.Describe(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(iamserver.EC2DescribeSubnets); n != 3 {
		t.Errorf("DescribeSubnets calls = %d, want 3 (the empty match asked again after the negative TTL)", n)
	}

	srv.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.EC2All, Always: true})
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.SSMAll, Always: true})
	now = now.Add(2 * time.Minute)
	r, err := live.Describe(ctx, q)
	if err != nil || !r.Stale || len(r.Subnets) != 3 {
		t.Errorf("expired answer while EC2 denies: %+v, %v; want the stale answer", r, err)
	}
	_, err = live.Describe(ctx, ec2Cases[6].q)
	var u *authz.UnavailableError
	if !errors.As(err, &u) || u.Service != "EC2" || !strings.Contains(u.Summary(), "UnauthorizedOperation") {
		t.Errorf("never-asked query while EC2 denies: %v; want EC2 unavailable", err)
	}
	_, err = live.Parameter(ctx, "/aws/service/bottlerocket/aws-k8s-1.36/x86_64/latest/image_id")
	if !errors.As(err, &u) || u.Service != "SSM" {
		t.Errorf("parameter while SSM denies: %v; want SSM unavailable", err)
	}
}

// TestEC2SnapshotWithoutSections: a snapshot without the EC2 sections
// answers "could not ask", naming the section, never an empty match.
func TestEC2SnapshotWithoutSections(t *testing.T) {
	snap, err := authz.LoadSnapshot(strings.NewReader(`{"RoleDetailList": [], "Subnets": []}`), "s.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r, err := snap.Describe(ctx, authz.EC2Query{Resource: authz.EC2Subnets}); err != nil || r.Len() != 0 {
		t.Errorf("empty Subnets section: %+v, %v; want an empty match", r, err)
	}
	_, err = snap.Describe(ctx, authz.EC2Query{Resource: authz.EC2SecurityGroups})
	if !authz.IsUnavailable(err) || !strings.Contains(err.Error(), `"SecurityGroups"`) {
		t.Errorf("no SecurityGroups section: %v", err)
	}
	if _, err := snap.Parameter(ctx, "/x"); !authz.IsUnavailable(err) || !strings.Contains(err.Error(), "SSM") {
		t.Errorf("no Parameters section: %v", err)
	}
	_, err = authz.LoadSnapshot(strings.NewReader(`{"Images": [{"ImageId": "ami-1"}]}`), "s.json")
	if err == nil || !strings.Contains(err.Error(), "s.json: Images[0]: no ImageId or Architecture") {
		t.Errorf("image without architecture: %v", err)
	}
}

// TestBudgetedEC2: EC2 calls past the budget are "could not check" for
// EC2, never a call; a question already answered is served by the cache.
func TestBudgetedEC2(t *testing.T) {
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingEC2{EC2View: snap}
	b := authz.NewBudgetedEC2(counting, authz.BudgetOptions{Rate: 0.001, Burst: 4, Reserve: 1})
	ctx := context.Background() // no deadline: a token now or none
	var spent, refused int
	for i := 0; i < 10; i++ {
		_, err := b.Describe(ctx, ec2Cases[i%len(ec2Cases)].q)
		var u *authz.UnavailableError
		switch {
		case err == nil:
			spent++
		case errors.As(err, &u) && u.Service == "EC2" && errors.Is(err, authz.ErrBudgetSpent):
			refused++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if spent != 4 || refused != 6 || counting.n != 4 {
		t.Errorf("spent %d, refused %d, EC2 asked %d times; want 4, 6, 4", spent, refused, counting.n)
	}
	if _, err := b.Parameter(ctx, "/x"); !errors.Is(err, authz.ErrBudgetSpent) {
		t.Errorf("Parameter past the budget: %v", err)
	}
}

type countingEC2 struct {
	authz.EC2View
	n int
}

func (c *countingEC2) Describe(ctx context.Context, q authz.EC2Query) (authz.EC2Resources, error) {
	c.n++
	return c.EC2View.Describe(ctx, q)
}
