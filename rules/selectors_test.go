package rules

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// selectorChecker is the Checker of the selector rule tests: the sample
// snapshot answers IAM and EC2, Kubernetes 1.34.
func selectorChecker(t *testing.T, mod func(*Config)) *Checker {
	t.Helper()
	snap := loadSampleSnapshot(t)
	cfg := Config{IAM: snap, EKS: snap, EC2: snap, KubernetesVersion: "1.34", Controller: mustRoleARN(t, ctlKarpenter),
		ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny, Classes: testClasses()}
	if mod != nil {
		mod(&cfg)
	}
	return NewChecker(cfg)
}

func tagTerm(k, v string) SelectorTerm { return SelectorTerm{Tags: map[string]string{k: v}} }

var demoTerm = tagTerm("karpenter.sh/discovery", "demo")

// selectorClass is a class whose role passes, with the given selectors.
func selectorClass(spec EC2NodeClassSpec) *EC2NodeClass {
	nc := ec2Class("sel", "KarpenterNodeRole-demo", "")
	spec.Role = nc.Spec.Role
	nc.Spec = spec
	return nc
}

func goodSpec() EC2NodeClassSpec {
	return EC2NodeClassSpec{
		SubnetSelectorTerms:        []SelectorTerm{demoTerm},
		SecurityGroupSelectorTerms: []SelectorTerm{demoTerm},
		AMISelectorTerms:           []SelectorTerm{{Alias: "al2023@latest"}},
	}
}

func codesOf(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Code)+"@"+f.Field.String())
	}
	return out
}

func TestSelectorRules(t *testing.T) {
	arm := NodePool{}
	arm.Name = "arm-only"
	arm.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"arm64"}}}
	amd := NodePool{}
	amd.Name = "amd-only"
	amd.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: "NotIn", Values: []string{"arm64"}}}
	amd2 := NodePool{}
	amd2.Name = "amd-too"
	amd2.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}}}

	cases := []struct {
		name     string
		spec     func(*EC2NodeClassSpec)
		pools    []NodePool
		mod      func(*Config)
		denials  []string
		warnings []string
		contains string
	}{
		{name: "everything matches", spec: func(*EC2NodeClassSpec) {}},
		{name: "one subnet term with a typo, another matches",
			spec: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = append(s.SubnetSelectorTerms, tagTerm("karpenter.sh/discovery", "dmeo"))
			},
			warnings: []string{"SelectorTermMatchesNothing@spec.subnetSelectorTerms[1]"},
			contains: "tag karpenter.sh/discovery=dmeo"},
		{name: "every subnet term matches nothing",
			spec: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo"), {ID: "subnet-0gone"}}
			},
			denials: []string{"SelectorMatchesNothing@spec.subnetSelectorTerms"}},
		{name: "security group that does not exist, by id",
			spec:    func(s *EC2NodeClassSpec) { s.SecurityGroupSelectorTerms = []SelectorTerm{{ID: "sg-0doesnotexist"}} },
			denials: []string{"SelectorMatchesNothing@spec.securityGroupSelectorTerms"}},
		{name: "security group by name; its tags are ignored as Karpenter does",
			spec: func(s *EC2NodeClassSpec) {
				s.SecurityGroupSelectorTerms = []SelectorTerm{{Name: "demo-nodes", Tags: map[string]string{"no": "such"}}}
			}},
		{name: "tag value * means any value",
			spec: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{tagTerm("Name", "*")}
			},
			// subnet-0d4other (vpc-0other) is selected too.
			warnings: []string{"SubnetSecurityGroupVPCMismatch@spec.subnetSelectorTerms"}},
		{name: "security groups and subnets in different VPCs",
			spec:    func(s *EC2NodeClassSpec) { s.SecurityGroupSelectorTerms = []SelectorTerm{{Name: "other-nodes"}} },
			denials: []string{"SubnetSecurityGroupVPCMismatch@spec.subnetSelectorTerms"}},
		{name: "security groups spanning two VPCs",
			spec: func(s *EC2NodeClassSpec) {
				s.SecurityGroupSelectorTerms = []SelectorTerm{demoTerm, {Name: "other-nodes"}}
			},
			denials: []string{"SubnetSecurityGroupVPCMismatch@spec.securityGroupSelectorTerms"}},
		{name: "an image by name, owners self and amazon by default",
			spec: func(s *EC2NodeClassSpec) {
				f := familyCustom
				s.AMIFamily = &f
				s.AMISelectorTerms = []SelectorTerm{{Name: "team-golden-*"}}
			}},
		// The class is refused for its images' architectures only when no
		// NodePool using it could launch one; an amd64-only NodePool beside
		// one allowing arm64 is that NodePool's finding, not the class's.
		{name: "arm64-only images, one NodePool wants amd64 and another allows arm64",
			spec: func(s *EC2NodeClassSpec) {
				f := familyAL2023
				s.AMIFamily = &f
				s.AMISelectorTerms = []SelectorTerm{{Tags: map[string]string{"team": "platform"}}}
			},
			pools: []NodePool{amd, arm}},
		{name: "arm64-only images, the only NodePool wants amd64",
			spec: func(s *EC2NodeClassSpec) {
				f := familyAL2023
				s.AMIFamily = &f
				s.AMISelectorTerms = []SelectorTerm{{Tags: map[string]string{"team": "platform"}}}
			},
			pools:   []NodePool{amd},
			denials: []string{"ImageArchitectureMismatch@spec.amiSelectorTerms"}, contains: `NodePool "amd-only" allows no such kubernetes.io/arch`},
		{name: "arm64-only images, every NodePool wants amd64",
			spec: func(s *EC2NodeClassSpec) {
				f := familyAL2023
				s.AMIFamily = &f
				s.AMISelectorTerms = []SelectorTerm{{Tags: map[string]string{"team": "platform"}}}
			},
			pools:   []NodePool{amd, amd2},
			denials: []string{"ImageArchitectureMismatch@spec.amiSelectorTerms"}, contains: `none of the 2 NodePools using the class allows such a kubernetes.io/arch (NodePools "amd-only", "amd-too")`},
		{name: "arm64-only images, no NodePool uses the class yet",
			spec: func(s *EC2NodeClassSpec) {
				f := familyAL2023
				s.AMIFamily = &f
				s.AMISelectorTerms = []SelectorTerm{{Tags: map[string]string{"team": "platform"}}}
			}},
		{name: "alias images fit both architectures", spec: func(*EC2NodeClassSpec) {}, pools: []NodePool{arm, amd}},
		{name: "Bottlerocket image under amiFamily AL2023",
			spec: func(s *EC2NodeClassSpec) {
				f := familyAL2023
				s.AMIFamily = &f
				s.AMISelectorTerms = []SelectorTerm{{ID: "ami-0bottlerocket136"}}
			},
			warnings: []string{"ImageFamilyMismatch@spec.amiFamily"}},
		{name: "alias version that does not exist",
			spec:    func(s *EC2NodeClassSpec) { s.AMISelectorTerms = []SelectorTerm{{Alias: "al2023@v19990101"}} },
			denials: []string{"SelectorMatchesNothing@spec.amiSelectorTerms"}},
		{name: "AL2 alias on Kubernetes 1.34: Karpenter refuses it",
			spec:     func(s *EC2NodeClassSpec) { s.AMISelectorTerms = []SelectorTerm{{Alias: "al2@latest"}} },
			denials:  []string{"SelectorMatchesNothing@spec.amiSelectorTerms"},
			contains: "AL2 aliases are not supported on Kubernetes 1.33 and later"},
		{name: "alias without a Kubernetes version is skipped, not passed",
			mod:      func(c *Config) { c.KubernetesVersion = "" },
			spec:     func(*EC2NodeClassSpec) {},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "needs the cluster's Kubernetes version"},
		{name: "capacity reservation terms",
			spec: func(s *EC2NodeClassSpec) {
				s.CapacityReservationSelectorTerms = []SelectorTerm{{ID: "cr-0demo1"}, {ID: "cr-0gone"}, demoTerm}
			},
			warnings: []string{"CapacityReservationTermMatchesNothing@spec.capacityReservationSelectorTerms[1]"}},
		{name: "no EC2 source",
			mod:      func(c *Config) { c.EC2 = nil },
			spec:     func(*EC2NodeClassSpec) {},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "no EC2 source"},
		{name: "EC2 unavailable is could-not-check, never a pass nor a denial",
			mod: func(c *Config) { c.EC2 = unavailableEC2{} },
			spec: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo")}
			},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "DescribeSubnets: UnauthorizedOperation"},
		{name: "offline: format checks only",
			mod:  func(c *Config) { c.IAM = nil },
			spec: func(s *EC2NodeClassSpec) { s.SubnetSelectorTerms = []SelectorTerm{tagTerm("x", "y")} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pools := tc.pools
			c := selectorChecker(t, func(cfg *Config) {
				cfg.NodePools = poolList(pools)
				if tc.mod != nil {
					tc.mod(cfg)
				}
			})
			spec := goodSpec()
			tc.spec(&spec)
			v := c.CheckEC2NodeClass(context.Background(), selectorClass(spec))
			if got := codesOf(v.Denials); !reflect.DeepEqual(got, tc.denials) {
				t.Errorf("denials %v, want %v\n%v", got, tc.denials, v.Denials)
			}
			if got := codesOf(v.Warnings); !reflect.DeepEqual(got, tc.warnings) {
				t.Errorf("warnings %v, want %v\n%v", got, tc.warnings, v.Warnings)
			}
			if tc.contains != "" {
				all := ""
				for _, f := range append(v.Denials, v.Warnings...) {
					all += f.Message + "\n"
				}
				if !strings.Contains(all, tc.contains) {
					t.Errorf("findings do not say %q:\n%s", tc.contains, all)
				}
			}
		})
	}
}

// TestImageArchitectureOnTheNodePool: an arm64-only class with an
// amd64-only NodePool and another allowing arm64 is admitted; the
// amd64-only NodePool is refused, on its requirements, also when only they
// change, and the one allowing arm64 is admitted.
func TestImageArchitectureOnTheNodePool(t *testing.T) {
	spec := goodSpec()
	f := familyAL2023
	spec.AMIFamily = &f
	spec.AMISelectorTerms = []SelectorTerm{{Tags: map[string]string{"team": "platform"}}}
	nc := selectorClass(spec)
	nc.Name = "arm-images"
	pool := func(name, op string, values ...string) *NodePool {
		np := nodePool(name, refEC2("arm-images"))
		np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: op, Values: values}}
		return np
	}
	amd, arm := pool("amd-only", "In", "amd64"), pool("arm", "In", "arm64", "amd64")
	classes := testClasses()
	classes.ec2["arm-images"] = nc
	c := selectorChecker(t, func(cfg *Config) {
		cfg.Classes = classes
		cfg.NodePools = poolList{*amd, *arm}
	})
	ctx := context.Background()
	if v := c.CheckEC2NodeClass(ctx, nc); !v.Allowed() || len(v.Warnings) != 0 {
		t.Errorf("class: %s %v, want admitted without findings", v.DenialMessage(), v.WarningLines())
	}
	if v := c.CheckNodePool(ctx, arm); !v.Allowed() || len(v.Warnings) != 0 {
		t.Errorf("NodePool allowing arm64: %s %v, want admitted without findings", v.DenialMessage(), v.WarningLines())
	}
	want := []string{"ImageArchitectureMismatch@spec.template.spec.requirements"}
	v := c.CheckNodePool(ctx, amd)
	if got := codesOf(v.Denials); !reflect.DeepEqual(got, want) || len(v.Warnings) != 0 {
		t.Fatalf("amd64-only NodePool: denials %v warnings %v, want %v", got, v.WarningLines(), want)
	}
	for _, s := range []string{`EC2NodeClass "arm-images" selects images of arm64 only (ami-`, "Allow arm64 in its kubernetes.io/arch requirement"} {
		if !strings.Contains(v.Denials[0].Message, s) {
			t.Errorf("message %q does not say %q", v.Denials[0].Message, s)
		}
	}
	// An update of the requirements alone to amd64 is refused for it.
	v = c.CheckNodePoolUpdate(ctx, arm, pool("arm", "In", "amd64"))
	if got := codesOf(v.Denials); !reflect.DeepEqual(got, want) {
		t.Errorf("requirements update to amd64: denials %v, want %v", got, want)
	}
}

type poolList []NodePool

func (p poolList) NodePoolsUsing(context.Context, string) ([]NodePool, error) { return p, nil }

type claimList []NodeClaim

func (c claimList) NodeClaimsUsing(context.Context, string) ([]NodeClaim, error) { return c, nil }

type unavailableEC2 struct{}

func (unavailableEC2) Describe(_ context.Context, q authz.EC2Query) (authz.EC2Resources, error) {
	return authz.EC2Resources{}, &authz.UnavailableError{Service: "EC2", Op: string(q.Resource), Err: apiErr("UnauthorizedOperation")}
}

func (unavailableEC2) Parameter(context.Context, string) (authz.Parameter, error) {
	return authz.Parameter{}, &authz.UnavailableError{Service: "SSM", Op: "GetParameter", Err: apiErr("AccessDeniedException")}
}

type apiErr string

func (e apiErr) Error() string        { return string(e) }
func (e apiErr) ErrorCode() string    { return string(e) }
func (e apiErr) ErrorMessage() string { return "" }

func claimIn(zone string) NodeClaim {
	var n NodeClaim
	n.Name = "claim-" + zone
	n.Labels = map[string]string{ZoneLabel: zone}
	n.Spec.NodeClassRef = &NodeClassReference{Group: KarpenterAWSGroup, Kind: EC2NodeClassKind, Name: "sel"}
	return n
}

func TestUpdateGuard(t *testing.T) {
	running := claimList{claimIn("us-west-2a"), claimIn("us-west-2b")}
	cases := []struct {
		name     string
		claims   claimList
		change   func(*EC2NodeClassSpec)
		denials  []string
		warnings []string
		contains string
	}{
		{name: "subnet tag typo while nodes run: stranded",
			claims: running,
			change: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo")}
			},
			denials:  []string{"SelectorMatchesNothing@spec.subnetSelectorTerms", "SelectorUpdateStrandsNodes@spec.subnetSelectorTerms"},
			contains: "spec.subnetSelectorTerms[0] changed from (tag karpenter.sh/discovery=demo) to (tag karpenter.sh/discovery=dmeo)"},
		{name: "dropping the only subnet of a zone where nodes run",
			claims: running,
			change: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{{ID: "subnet-0a1demo"}, {ID: "subnet-0c3demo"}}
			},
			denials:  []string{"SelectorUpdateStrandsNodes@spec.subnetSelectorTerms"},
			contains: "us-west-2b (1 NodeClaims; subnets subnet-0b2demo dropped)"},
		{name: "dropping a zone where no node runs: a warning with the difference",
			claims: running,
			change: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{{ID: "subnet-0a1demo"}, {ID: "subnet-0b2demo"}}
			},
			warnings: []string{"SelectorUpdateChanges@spec"},
			contains: "zones -us-west-2c; subnets -subnet-0c3demo"},
		{name: "security groups removed while nodes run",
			claims:   running,
			change:   func(s *EC2NodeClassSpec) { s.SecurityGroupSelectorTerms = []SelectorTerm{{ID: "sg-0gone"}} },
			denials:  []string{"SelectorMatchesNothing@spec.securityGroupSelectorTerms", "SelectorUpdateStrandsNodes@spec.securityGroupSelectorTerms"},
			contains: "2 NodeClaims use the class"},
		{name: "no NodeClaims: matching nothing is the class's own denial only",
			change: func(s *EC2NodeClassSpec) {
				s.SubnetSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo")}
			},
			denials:  []string{"SelectorMatchesNothing@spec.subnetSelectorTerms"},
			warnings: []string{"SelectorUpdateChanges@spec"}, contains: "(0 NodeClaims use it): zones -us-west-2a, us-west-2b, us-west-2c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := tc.claims
			c := selectorChecker(t, func(cfg *Config) { cfg.NodeClaims = claims })
			old := selectorClass(goodSpec())
			spec := goodSpec()
			tc.change(&spec)
			v := c.CheckEC2NodeClassUpdate(context.Background(), old, selectorClass(spec))
			if got := codesOf(v.Denials); !reflect.DeepEqual(got, tc.denials) {
				t.Errorf("denials %v, want %v\n%v", got, tc.denials, v.Denials)
			}
			if got := codesOf(v.Warnings); !reflect.DeepEqual(got, tc.warnings) {
				t.Errorf("warnings %v, want %v\n%v", got, tc.warnings, v.Warnings)
			}
			all := ""
			for _, f := range append(v.Denials, v.Warnings...) {
				all += f.Message + "\n"
			}
			if !strings.Contains(all, tc.contains) {
				t.Errorf("findings do not say %q:\n%s", tc.contains, all)
			}
		})
	}
}

// TestUpdateGuardEC2Unavailable: with EC2 unavailable the guard judges
// nothing (no refusal, no difference), and says the checks were skipped.
func TestUpdateGuardEC2Unavailable(t *testing.T) {
	c := selectorChecker(t, func(cfg *Config) {
		cfg.NodeClaims = claimList{claimIn("us-west-2a")}
		cfg.EC2 = unavailableEC2{}
	})
	spec := goodSpec()
	spec.SubnetSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo")}
	v := c.CheckEC2NodeClassUpdate(context.Background(), selectorClass(goodSpec()), selectorClass(spec))
	if len(v.Denials) != 0 || !reflect.DeepEqual(codesOf(v.Warnings), []string{"SelectorChecksSkipped@spec"}) {
		t.Errorf("denials %v, warnings %v; want only SelectorChecksSkipped", codesOf(v.Denials), codesOf(v.Warnings))
	}
}

// TestSelectorPlanFollowsKarpenter pins the Describe calls of each term
// kind to karpenter-provider-aws 1.15.1's.
func TestSelectorPlanFollowsKarpenter(t *testing.T) {
	f := func(name string, vals ...string) authz.Filter { return authz.Filter{Name: name, Values: vals} }
	spec := EC2NodeClassSpec{
		SubnetSelectorTerms:              []SelectorTerm{{ID: "subnet-1", Tags: map[string]string{"ignored": "x"}}, {Tags: map[string]string{"a": "*", "b": "c"}}},
		SecurityGroupSelectorTerms:       []SelectorTerm{{Name: "n", Tags: map[string]string{"ignored": "x"}}},
		AMISelectorTerms:                 []SelectorTerm{{Name: "my-*"}, {Owner: "123456789012", Tags: map[string]string{"t": "v"}}, {ID: "ami-1"}},
		CapacityReservationSelectorTerms: []SelectorTerm{{ID: "cr-1"}, {OwnerID: "123456789012", Tags: map[string]string{"k": "v"}, InstanceMatchCriteria: "targeted"}},
	}
	p := planSelectors(spec, "1.34")
	var got []authz.EC2Query
	for _, q := range p.queries {
		got = append(got, q.EC2)
	}
	want := []authz.EC2Query{
		{Resource: authz.EC2Subnets, Filters: []authz.Filter{f("subnet-id", "subnet-1")}},
		{Resource: authz.EC2Subnets, Filters: []authz.Filter{f("tag-key", "a"), f("tag:b", "c")}},
		{Resource: authz.EC2SecurityGroups, Filters: []authz.Filter{f("group-name", "n")}},
		{Resource: authz.EC2Images, Owners: []string{"self", "amazon"}, Filters: []authz.Filter{f("name", "my-*"), availableImage}},
		{Resource: authz.EC2Images, Owners: []string{"123456789012"}, Filters: []authz.Filter{f("tag:t", "v"), availableImage}},
		{Resource: authz.EC2Images, Filters: []authz.Filter{f("image-id", "ami-1"), availableImage}},
		{Resource: authz.EC2CapacityReservations, IDs: []string{"cr-1"}, Filters: []authz.Filter{f("state", "active")}},
		{Resource: authz.EC2CapacityReservations, Filters: []authz.Filter{f("state", "active"), f("owner-id", "123456789012"), f("tag:k", "v"), f("instance-match-criteria", "targeted")}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n got %+v\nwant %+v", got, want)
	}
	al := planSelectors(EC2NodeClassSpec{AMISelectorTerms: []SelectorTerm{{Alias: "bottlerocket@v1.50.0"}}}, "1.34")
	var names []string
	for _, q := range al.queries {
		names = append(names, q.Name)
	}
	wantNames := []string{
		"/aws/service/bottlerocket/aws-k8s-1.34/x86_64/1.50.0/image_id", "/aws/service/bottlerocket/aws-k8s-1.34/arm64/1.50.0/image_id",
		"/aws/service/bottlerocket/aws-k8s-1.34-nvidia/x86_64/1.50.0/image_id", "/aws/service/bottlerocket/aws-k8s-1.34-nvidia/arm64/1.50.0/image_id",
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("bottlerocket alias parameters %v, want %v", names, wantNames)
	}
}

// TestResolvedARNs: what the launch questions receive.
func TestResolvedARNs(t *testing.T) {
	c := selectorChecker(t, nil)
	spec := goodSpec()
	spec.SubnetSelectorTerms = []SelectorTerm{{ID: "subnet-0a1demo"}}
	nc := &EC2NodeClass{Spec: spec}
	nc.Name = "resolved"
	o := c.ec2Object(nc, nil, false, false, false, nil)
	classRunner.judge(context.Background(), c, o)
	got := o.sides[sideNew].res.ARNs("aws", "us-west-2")
	want := ResolvedARNs{
		Images:         []string{"arn:aws:ec2:us-west-2::image/ami-0al2023x86134", "arn:aws:ec2:us-west-2::image/ami-0al2023arm134"},
		Subnets:        []string{"arn:aws:ec2:us-west-2:111122223333:subnet/subnet-0a1demo"},
		SecurityGroups: []string{"arn:aws:ec2:us-west-2:111122223333:security-group/sg-0demonodes"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ARNs = %+v, want %+v", got, want)
	}
}

// TestCapacityReservationEnded: a reservation past its end date is dropped
// as Karpenter drops it.
func TestCapacityReservationEnded(t *testing.T) {
	c := selectorChecker(t, func(cfg *Config) {
		cfg.EC2 = endedReservation{cfg.EC2}
		cfg.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	})
	spec := goodSpec()
	spec.CapacityReservationSelectorTerms = []SelectorTerm{{ID: "cr-0demo1"}}
	v := c.CheckEC2NodeClass(context.Background(), selectorClass(spec))
	if got := codesOf(v.Warnings); !reflect.DeepEqual(got, []string{"CapacityReservationTermMatchesNothing@spec.capacityReservationSelectorTerms[0]"}) {
		t.Errorf("warnings %v", got)
	}
}

type endedReservation struct{ authz.EC2View }

func (e endedReservation) Describe(ctx context.Context, q authz.EC2Query) (authz.EC2Resources, error) {
	r, err := e.EC2View.Describe(ctx, q)
	for i := range r.CapacityReservations {
		r.CapacityReservations[i].EndDate = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return r, err
}

// TestSelectorStaleAnswers: an expired EC2 answer served while EC2 is down
// is used, and the verdict says so ([IAMStale], as for IAM and EKS).
func TestSelectorStaleAnswers(t *testing.T) {
	c := selectorChecker(t, func(cfg *Config) { cfg.EC2 = staleEC2{cfg.EC2} })
	spec := goodSpec()
	spec.SubnetSelectorTerms = append(spec.SubnetSelectorTerms, tagTerm("karpenter.sh/discovery", "dmeo"))
	v := c.CheckEC2NodeClass(context.Background(), selectorClass(spec))
	if got := codesOf(v.Warnings); !reflect.DeepEqual(got, []string{"SelectorTermMatchesNothing@spec.subnetSelectorTerms[1]", "IAMStale@spec"}) {
		t.Errorf("warnings %v", got)
	}
}

type staleEC2 struct{ authz.EC2View }

func (s staleEC2) Describe(ctx context.Context, q authz.EC2Query) (authz.EC2Resources, error) {
	r, err := s.EC2View.Describe(ctx, q)
	r.Served = authz.Served{Stale: true, Age: 3 * time.Minute}
	return r, err
}

// TestStaleSaidOnce: answers past their TTL from IAM and from EC2 in one
// admission make one [IAMStale] warning, with the oldest answer's age.
func TestStaleSaidOnce(t *testing.T) {
	c := selectorChecker(t, func(cfg *Config) {
		cfg.EC2 = staleEC2{cfg.EC2}
		cfg.IAM = staleIAM{cfg.IAM}
	})
	v := c.CheckEC2NodeClass(context.Background(), selectorClass(goodSpec()))
	var stale []string
	for _, f := range v.Warnings {
		if f.Code == IAMStale {
			stale = append(stale, f.Message)
		}
	}
	if len(stale) != 1 || !strings.Contains(stale[0], "up to 7m0s old") {
		t.Errorf("IAMStale warnings %q, want one, up to 7m0s old (the older answer's age)", stale)
	}
}

// staleIAM serves the roles as answers 7 minutes past their TTL.
type staleIAM struct{ authz.View }

func (s staleIAM) Role(ctx context.Context, name string) (authz.Role, error) {
	r, err := s.View.Role(ctx, name)
	r.Served = authz.Served{Stale: true, Age: 7 * time.Minute}
	return r, err
}
