package rules

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// TestLaunchAsksTheResolvedResources: with an EC2 source, the launch
// questions ask about the image, subnets and security groups the class's
// selectors resolve to (RunInstances and CreateFleet authorize them), so a
// controller policy denying one of them is caught, and nothing is left
// "not checked"; without one, they are reported as not checked, never
// passed.
func TestLaunchAsksTheResolvedResources(t *testing.T) {
	sample := loadSampleSnapshot(t) // its EC2 sections: subnets subnet-0a1demo, -0b2demo, -0c3demo
	base := gettingStartedPolicies(t, gettingStarted["1.15"])
	denySubnet := maps.Clone(base)
	denySubnet["NoSubnetB"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny",
		"Action":["ec2:RunInstances","ec2:CreateFleet"],"Resource":"arn:aws:ec2:*:*:subnet/subnet-0b2demo"}]}`
	denyImage := maps.Clone(base)
	denyImage["OnlyOurImages"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny",
		"Action":["ec2:RunInstances","ec2:CreateFleet"],"NotResource":["arn:aws:ec2:*::image/ami-0ours*","arn:aws:ec2:*:*:subnet/*",
		"arn:aws:ec2:*:*:security-group/*","arn:aws:ec2:*:*:launch-template/*","arn:aws:ec2:*:*:fleet/*","arn:aws:ec2:*:*:instance/*",
		"arn:aws:ec2:*:*:volume/*","arn:aws:ec2:*:*:network-interface/*"]}]}`

	kv, err := karpenter.Resolve("1.15", "test", "--karpenter-version")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN("arn:aws:iam::" + gsAccount + ":role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, policies map[string]string, ec2 authz.EC2View, subnets []SelectorTerm) Verdict {
		t.Helper()
		c := NewChecker(Config{IAM: gsSnapshot(t, policies), EC2: ec2, KubernetesVersion: "1.34", Controller: ctl,
			ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny, Karpenter: kv})
		nc := gsClass(nil)
		spec := goodSpec()
		spec.Role = nc.Spec.Role
		spec.SubnetSelectorTerms = subnets
		nc.Spec = spec
		return c.CheckEC2NodeClass(context.Background(), nc)
	}
	launchDenial := func(v Verdict) *Finding {
		for i := range v.Denials {
			if v.Denials[i].Code == LaunchDenied {
				return &v.Denials[i]
			}
		}
		return nil
	}

	t.Run("the getting-started policy allows every resolved resource", func(t *testing.T) {
		v := check(t, base, sample, []SelectorTerm{demoTerm})
		if len(v.Denials) != 0 || len(v.NotChecked) != 0 {
			t.Errorf("denials %v, not checked %+v; want none", codesOf(v.Denials), v.NotChecked)
		}
	})
	t.Run("a Deny on one resolved subnet is a launch denial naming it", func(t *testing.T) {
		v := check(t, denySubnet, sample, []SelectorTerm{demoTerm})
		f := launchDenial(v)
		if f == nil {
			t.Fatalf("no LaunchDenied; denials %v", codesOf(v.Denials))
		}
		if !strings.Contains(f.Message, "subnet/subnet-0b2demo") || strings.Contains(f.Message, "subnet/subnet-0a1demo") {
			t.Errorf("message does not name exactly the denied subnet: %s", f.Message)
		}
	})
	t.Run("the same Deny does not touch a class selecting other subnets", func(t *testing.T) {
		v := check(t, denySubnet, sample, []SelectorTerm{{ID: "subnet-0a1demo"}})
		if f := launchDenial(v); f != nil {
			t.Errorf("LaunchDenied for a class not using subnet-0b2demo: %s", f.Message)
		}
	})
	t.Run("an image allow-list the resolved images are not on", func(t *testing.T) {
		v := check(t, denyImage, sample, []SelectorTerm{demoTerm})
		f := launchDenial(v)
		if f == nil || !strings.Contains(f.Message, "image/ami-") {
			t.Fatalf("want a LaunchDenied naming the images; denials %v", codesOf(v.Denials))
		}
	})
	t.Run("without an EC2 source the resources are not checked, never passed", func(t *testing.T) {
		v := check(t, denySubnet, nil, []SelectorTerm{demoTerm})
		if f := launchDenial(v); f != nil {
			t.Errorf("LaunchDenied without an EC2 source: %s", f.Message)
		}
		kinds := map[string]bool{}
		for _, n := range v.NotChecked {
			kinds[n.Resource] = true
		}
		for _, k := range []string{"image", "subnet", "security-group"} {
			if !kinds[k] {
				t.Errorf("%s not reported as not checked: %+v", k, v.NotChecked)
			}
		}
	})
}

// TestUpgradeToValidation: what an upgrade to a Karpenter with the class
// validation (1.3) breaks, named as Karpenter names it on the class.
//   - A tagging statement written for Karpenter's launches alone (no
//     ec2:CreateAction=RunInstances) works with 1.2, whose instant
//     CreateFleet tags as CreateFleet, and fails 1.3's RunInstances
//     dry-run: RunInstancesAuthCheckFailed.
//   - A Deny of launches whose karpenter.sh/nodepool is empty fails 1.3's
//     first dry-run, CreateFleet (CreateFleetAuthCheckFailed), and 1.7's
//     first call, CreateLaunchTemplate (CreateLaunchTemplateAuthCheckFailed).
//   - No RunInstances at all fails every version's launches (an instant
//     CreateFleet is authorized as RunInstances too), so 1.2 is denied
//     as well, without a validation reason.
func TestUpgradeToValidation(t *testing.T) {
	base := gettingStartedPolicies(t, gettingStarted["1.2"])
	with := func(name, doc string) map[string]string {
		p := maps.Clone(base)
		p[name] = doc
		return p
	}
	noRunTagging := with("NoRunInstancesTagging", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:CreateTags","Resource":"*",
		"Condition":{"StringEquals":{"ec2:CreateAction":"RunInstances"}}}]}`)
	noEmptyPool := with("NoEmptyNodePool", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["ec2:CreateFleet","ec2:RunInstances","ec2:CreateLaunchTemplate"],"Resource":"*",
		"Condition":{"StringEquals":{"aws:RequestTag/karpenter.sh/nodepool":""}}}]}`)
	noRun := with("NoRunInstances", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:RunInstances","Resource":"*"}]}`)
	const none = "-"
	for _, tc := range []struct {
		name, version string
		policies      map[string]string
		reason        string // "" means allowed; none: denied without a validation reason
	}{
		{"1.2 launches without tagging as RunInstances", "1.2", noRunTagging, ""},
		{"1.3's RunInstances dry-run tags as RunInstances", "1.3", noRunTagging, "ValidationSucceeded=False (RunInstancesAuthCheckFailed)"},
		{"1.15 as well", "1.15", noRunTagging, "ValidationSucceeded=False (RunInstancesAuthCheckFailed)"},
		{"1.2 has no validation", "1.2", noEmptyPool, ""},
		{"1.3 dry-runs CreateFleet first", "1.3", noEmptyPool, "ValidationSucceeded=False (CreateFleetAuthCheckFailed)"},
		{"1.7 creates the launch template first", "1.7", noEmptyPool, "ValidationSucceeded=False (CreateLaunchTemplateAuthCheckFailed)"},
		{"no RunInstances fails 1.2's launches", "1.2", noRun, none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := gsCheck(t, gsSnapshot(t, tc.policies), tc.version, gsClass(nil))
			if tc.reason == "" {
				noPermissionFindings(t, v)
				return
			}
			if len(v.Denials) != 1 || v.Denials[0].Code != LaunchDenied {
				t.Fatalf("denials %v, want one LaunchDenied", codesOf(v.Denials))
			}
			msg := v.Denials[0].Message
			if tc.reason == none {
				if strings.Contains(msg, "ValidationSucceeded") {
					t.Errorf("Karpenter %s has no validation, yet: %s", tc.version, msg)
				}
				return
			}
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("message lacks %q: %s", tc.reason, msg)
			}
		})
	}
}

// TestTagsUpdateWarns: an update that changes only spec.tags is checked
// with the new tags (Karpenter sends them), but what they break is a
// warning: such an update is never refused.
func TestTagsUpdateWarns(t *testing.T) {
	base := gettingStartedPolicies(t, gettingStarted["1.15"])
	onlyKarpenterKeys := maps.Clone(base)
	onlyKarpenterKeys["TagGuard"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["ec2:CreateFleet","ec2:RunInstances","ec2:CreateLaunchTemplate"],"Resource":"*",
		"Condition":{"ForAnyValue:StringNotLike":{"aws:TagKeys":["kubernetes.io/cluster/*","eks:eks-cluster-name","karpenter.sh/nodepool","karpenter.k8s.aws/ec2nodeclass"]}}}]}`
	kv, err := karpenter.Resolve("1.15", "test", "--karpenter-version")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN("arn:aws:iam::" + gsAccount + ":role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(Config{IAM: gsSnapshot(t, onlyKarpenterKeys), Controller: ctl, ClusterName: testCluster, Region: testRegion,
		OnIAMError: OnIAMErrorDeny, Karpenter: kv})
	old := gsClass(nil)
	tagged := gsClass(map[string]string{"team": "payments"})

	v := c.CheckEC2NodeClassUpdate(context.Background(), old, tagged)
	if len(v.Denials) != 0 {
		t.Errorf("a spec.tags update was refused: %v", codesOf(v.Denials))
	}
	var found bool
	for _, w := range v.Warnings {
		if w.Code == LaunchDenied && strings.HasPrefix(w.Message, "(spec.tags update, not refused)") && strings.Contains(w.Message, "team=payments") {
			found = true
		}
	}
	if !found {
		t.Errorf("no LaunchDenied warning naming the new tag: %v", codesOf(v.Warnings))
	}
	// The same class created with those tags is refused.
	if v := c.CheckEC2NodeClass(context.Background(), tagged); len(v.Denials) != 1 || v.Denials[0].Code != LaunchDenied {
		t.Errorf("CREATE with the tags: denials %v, want LaunchDenied", codesOf(v.Denials))
	}
	// And a role change with them is refused too.
	moved := gsClass(map[string]string{"team": "payments"})
	old.Spec.Role = "KarpenterNodeRole-old"
	if v := c.CheckEC2NodeClassUpdate(context.Background(), old, moved); len(v.Denials) != 1 || v.Denials[0].Code != LaunchDenied {
		t.Errorf("role change with the tags: denials %v, want LaunchDenied", codesOf(v.Denials))
	}
}
