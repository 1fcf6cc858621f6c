package rules

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// autoModeSelectorClass is an EKS Auto Mode NodeClass whose role passes,
// with the given selector terms.
func autoModeSelectorClass(spec NodeClassSpec) *NodeClass {
	nc := eksClass("auto-sel", "EKSAutoNodeRole-demo", "")
	spec.Role = nc.Spec.Role
	nc.Spec = spec
	return nc
}

// TestAutoModeSelectorRules: an EKS Auto Mode NodeClass's selector terms
// are resolved and judged as an EC2NodeClass's: the same codes, on the same
// fields, with the same messages; its pods' lists as the node's.
func TestAutoModeSelectorRules(t *testing.T) {
	typo := tagTerm("karpenter.sh/discovery", "dmeo")
	cases := []struct {
		name     string
		spec     NodeClassSpec
		mod      func(*Config)
		denials  []string
		warnings []string
		contains string
		// ec2, when set, is the EC2NodeClass spec whose findings must be
		// the same, message for message.
		ec2 *EC2NodeClassSpec
	}{
		{name: "no selector terms: EKS's defaults, nothing asked", spec: NodeClassSpec{}},
		{name: "everything matches", spec: NodeClassSpec{
			SubnetSelectorTerms: []SelectorTerm{demoTerm}, SecurityGroupSelectorTerms: []SelectorTerm{demoTerm},
			PodSubnetSelectorTerms: []SelectorTerm{demoTerm}, PodSecurityGroupSelectorTerms: []SelectorTerm{{Name: "demo-nodes"}}}},
		{name: "a subnet term with a typo beside one that matches",
			spec:     NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm, typo}, SecurityGroupSelectorTerms: []SelectorTerm{demoTerm}},
			warnings: []string{"SelectorTermMatchesNothing@spec.subnetSelectorTerms[1]"}, contains: "tag karpenter.sh/discovery=dmeo",
			ec2: &EC2NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm, typo}, SecurityGroupSelectorTerms: []SelectorTerm{demoTerm}}},
		{name: "the only subnet term has a typo",
			spec:    NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{typo}},
			denials: []string{"SelectorMatchesNothing@spec.subnetSelectorTerms"},
			ec2:     &EC2NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{typo}}},
		{name: "a security group that does not exist",
			spec:    NodeClassSpec{SecurityGroupSelectorTerms: []SelectorTerm{{ID: "sg-0doesnotexist"}}},
			denials: []string{"SelectorMatchesNothing@spec.securityGroupSelectorTerms"},
			ec2:     &EC2NodeClassSpec{SecurityGroupSelectorTerms: []SelectorTerm{{ID: "sg-0doesnotexist"}}}},
		{name: "security groups and subnets in different VPCs",
			spec:    NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm}, SecurityGroupSelectorTerms: []SelectorTerm{{Name: "other-nodes"}}},
			denials: []string{"SubnetSecurityGroupVPCMismatch@spec.subnetSelectorTerms"},
			ec2:     &EC2NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm}, SecurityGroupSelectorTerms: []SelectorTerm{{Name: "other-nodes"}}}},
		{name: "subnets partly outside the security groups' VPC",
			spec:     NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{tagTerm("Name", "*")}, SecurityGroupSelectorTerms: []SelectorTerm{demoTerm}},
			warnings: []string{"SubnetSecurityGroupVPCMismatch@spec.subnetSelectorTerms"}, contains: "Narrow subnetSelectorTerms to",
			ec2: &EC2NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{tagTerm("Name", "*")}, SecurityGroupSelectorTerms: []SelectorTerm{demoTerm}}},
		{name: "the pods' subnet terms match nothing",
			spec:     NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm}, PodSubnetSelectorTerms: []SelectorTerm{typo}},
			denials:  []string{"SelectorMatchesNothing@spec.podSubnetSelectorTerms"},
			contains: "no subnet matches any of the 1 podSubnetSelectorTerms (tag karpenter.sh/discovery=dmeo)"},
		{name: "a pod security group term with a typo beside one that matches",
			spec:     NodeClassSpec{PodSubnetSelectorTerms: []SelectorTerm{demoTerm}, PodSecurityGroupSelectorTerms: []SelectorTerm{demoTerm, {ID: "sg-0gone"}}},
			warnings: []string{"SelectorTermMatchesNothing@spec.podSecurityGroupSelectorTerms[1]"}, contains: "security group term (id sg-0gone) matches no security group"},
		{name: "pod subnets and pod security groups in different VPCs",
			spec:     NodeClassSpec{PodSubnetSelectorTerms: []SelectorTerm{demoTerm}, PodSecurityGroupSelectorTerms: []SelectorTerm{{Name: "other-nodes"}}},
			denials:  []string{"SubnetSecurityGroupVPCMismatch@spec.podSubnetSelectorTerms"},
			contains: "no selected subnet is in vpc-0other"},
		{name: "the pods' subnets are judged apart from the node's",
			spec: NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm}, SecurityGroupSelectorTerms: []SelectorTerm{demoTerm},
				PodSubnetSelectorTerms: []SelectorTerm{{ID: "subnet-0d4other"}}, PodSecurityGroupSelectorTerms: []SelectorTerm{{Name: "other-nodes"}}}},
		{name: "no EC2 source",
			mod:      func(c *Config) { c.EC2 = nil },
			spec:     NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{typo}},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "no EC2 source"},
		{name: "EC2 unavailable is could-not-check, never a pass nor a denial",
			mod:      func(c *Config) { c.EC2 = unavailableEC2{} },
			spec:     NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{typo}},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "DescribeSubnets: UnauthorizedOperation"},
		{name: "offline: format checks only",
			mod:  func(c *Config) { c.IAM = nil },
			spec: NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{typo}}},
		{name: "more terms than one check resolves: skipped, not asked",
			spec:     NodeClassSpec{PodSubnetSelectorTerms: make([]SelectorTerm, MaxSelectorTerms+1)},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "pod subnet selectors (spec.podSubnetSelectorTerms is past what one check resolves (30 terms"},
		{name: "a tag value longer than any EC2 tag: skipped, not asked",
			spec:     NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm, tagTerm("k", strings.Repeat("v", 300))}},
			warnings: []string{"SelectorChecksSkipped@spec"}, contains: "spec.subnetSelectorTerms[1].tags[k] is past what one check resolves"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := selectorChecker(t, tc.mod)
			v := c.CheckNodeClass(context.Background(), autoModeSelectorClass(tc.spec))
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
			if tc.ec2 != nil {
				want := c.CheckEC2NodeClass(context.Background(), selectorClass(*tc.ec2))
				if got, want := append([]string{v.DenialMessage()}, v.WarningLines()...), append([]string{want.DenialMessage()}, want.WarningLines()...); !reflect.DeepEqual(got, want) {
					t.Errorf("not the EC2NodeClass's findings:\n got %q\nwant %q", got, want)
				}
			}
		})
	}
}

// TestAutoModeSelectorUpdate: an update changing only an EKS Auto Mode
// NodeClass's selector terms is refused for what they break; the role's
// checks are not run again, and a tags change beside them is judged as
// warnings, as before.
func TestAutoModeSelectorUpdate(t *testing.T) {
	c := selectorChecker(t, nil)
	ctx := context.Background()
	old := autoModeSelectorClass(NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{demoTerm}})
	typo := autoModeSelectorClass(NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo")}})
	v := c.CheckNodeClassUpdate(ctx, old, typo)
	if got, want := codesOf(v.Denials), []string{"SelectorMatchesNothing@spec.subnetSelectorTerms"}; !reflect.DeepEqual(got, want) || len(v.Warnings) != 0 {
		t.Errorf("selector typo update: denials %v warnings %v, want %v", got, v.WarningLines(), want)
	}
	// A tags change the cluster role may not launch with, and a typo: the
	// tags warn (not refused), the typo is refused.
	tagged := autoModeSelectorClass(NodeClassSpec{SubnetSelectorTerms: []SelectorTerm{tagTerm("karpenter.sh/discovery", "dmeo")}, Tags: map[string]string{"cost-center": "42"}})
	v = c.CheckNodeClassUpdate(ctx, old, tagged)
	if got, want := codesOf(v.Denials), []string{"SelectorMatchesNothing@spec.subnetSelectorTerms"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tags and typo update: denials %v, want %v", got, want)
	}
	if got, want := codesOf(v.Warnings), []string{"AutoModeTagDenied@spec.tags"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tags and typo update: warnings %v, want %v", got, want)
	}
	// A NodePool naming a NodeClass whose selectors match nothing.
	classes := testClasses()
	classes.eks["auto-typo"] = typo
	c = selectorChecker(t, func(cfg *Config) { cfg.Classes = classes })
	v = c.CheckNodePool(ctx, nodePool("np", refEKS("auto-typo")))
	if got, want := codesOf(v.Denials), []string{"NodeClassInvalid@spec.template.spec.nodeClassRef"}; !reflect.DeepEqual(got, want) ||
		!strings.Contains(v.Denials[0].Message, "[SelectorMatchesNothing]") {
		t.Errorf("NodePool on a NodeClass whose subnets match nothing: %s", v.DenialMessage())
	}
}
