package rules

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// editStatements returns policies with each statement passed through
// edit (nil drops it).
func editStatements(t *testing.T, policies map[string]string, edit func(stmt map[string]any) map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, doc := range policies {
		var p map[string]any
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		stmts, _ := p["Statement"].([]any)
		var kept []any
		for _, s := range stmts {
			if e := edit(s.(map[string]any)); e != nil {
				kept = append(kept, e)
			}
		}
		p["Statement"] = kept
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

// launchKeysChecker checks classes with the getting-started policy of
// 1.15 edited as given, against the sample's EC2 sections.
func launchKeysChecker(t *testing.T, policies map[string]string) *Checker {
	t.Helper()
	kv, err := karpenter.Resolve("1.15", "test", "--karpenter-version")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN("arn:aws:iam::" + gsAccount + ":role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	return NewChecker(Config{IAM: gsSnapshot(t, policies), EC2: loadSampleSnapshot(t), KubernetesVersion: "1.34", Controller: ctl,
		ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny, Karpenter: kv})
}

func launchKeysClass(bdm []BlockDeviceMapping) *EC2NodeClass {
	nc := gsClass(nil)
	spec := goodSpec()
	spec.Role = nc.Spec.Role
	spec.BlockDeviceMappings = bdm
	nc.Spec = spec
	return nc
}

func launchDenied(v Verdict) *Finding {
	for i := range v.Denials {
		if v.Denials[i].Code == LaunchDenied {
			return &v.Denials[i]
		}
	}
	return nil
}

// TestCreatedAndExistingResources: a resource the call creates carries the
// request's tags, one that exists its own. A policy allowing the launch
// template only through the request-tag statement is refused (Karpenter
// would fail: the template it launches from exists, and carries no
// request tags); a policy allowing the image, subnets and security groups
// only while a request tag is null is admitted (Karpenter works: they
// carry no request tags).
func TestCreatedAndExistingResources(t *testing.T) {
	base := gettingStartedPolicies(t, gettingStarted["1.15"])
	noTemplateStatement := editStatements(t, base, func(s map[string]any) map[string]any {
		if s["Sid"] == "AllowScopedEC2LaunchTemplateAccessActions" {
			return nil
		}
		return s
	})
	existingWhileNoRequestTag := editStatements(t, base, func(s map[string]any) map[string]any {
		if s["Sid"] == "AllowScopedEC2InstanceAccessActions" {
			s = maps.Clone(s)
			s["Condition"] = map[string]any{"Null": map[string]any{"aws:RequestTag/kubernetes.io/cluster/" + testCluster: "true"}}
		}
		return s
	})

	t.Run("the launch template through the request-tag statement only", func(t *testing.T) {
		v := launchKeysChecker(t, noTemplateStatement).CheckEC2NodeClass(context.Background(), launchKeysClass(nil))
		f := launchDenied(v)
		if f == nil {
			t.Fatalf("no LaunchDenied; denials %v", codesOf(v.Denials))
		}
		if !strings.Contains(f.Message, "launch-template/"+karpenter.PlaceholderLaunchTemplateID) || strings.Contains(f.Message, "instance/*") {
			t.Errorf("want a denial of the launch template used alone: %s", f.Message)
		}
	})
	t.Run("image, subnets and security groups while a request tag is null", func(t *testing.T) {
		v := launchKeysChecker(t, existingWhileNoRequestTag).CheckEC2NodeClass(context.Background(), launchKeysClass(nil))
		if f := launchDenied(v); f != nil {
			t.Errorf("LaunchDenied: %s", f.Message)
		}
		if len(v.NotChecked) != 0 {
			t.Errorf("not checked: %+v", v.NotChecked)
		}
	})
}

// TestEncryptedVolumesGuardrail: Karpenter's getting-started policy plus
// the usual guardrail "deny RunInstances on volumes that are not
// encrypted" refuses a class whose blockDeviceMappings are unencrypted and
// admits it encrypted, or with Karpenter's default volumes (encrypted).
func TestEncryptedVolumesGuardrail(t *testing.T) {
	policies := gettingStartedPolicies(t, gettingStarted["1.15"])
	policies["DenyUnencryptedVolumes"] = `{"Version":"2012-10-17","Statement":[{"Sid":"DenyUnencryptedVolumes","Effect":"Deny",
		"Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*:*:volume/*","Condition":{"Bool":{"ec2:Encrypted":"false"}}}]}`
	c := launchKeysChecker(t, policies)
	size := resource.MustParse("100Gi")
	bdm := func(encrypted bool) []BlockDeviceMapping {
		dev, gp3 := "/dev/xvda", "gp3"
		return []BlockDeviceMapping{{DeviceName: &dev, RootVolume: true, EBS: &BlockDeviceEBS{Encrypted: &encrypted, VolumeType: &gp3, VolumeSize: &size}}}
	}
	v := c.CheckEC2NodeClass(context.Background(), launchKeysClass(bdm(false)))
	f := launchDenied(v)
	if f == nil {
		t.Fatalf("unencrypted: no LaunchDenied; denials %v", codesOf(v.Denials))
	}
	if !strings.Contains(f.Message, "may not ec2:RunInstances on volume/*") || !strings.Contains(f.Message, `"DenyUnencryptedVolumes"`) {
		t.Errorf("unencrypted: %s", f.Message)
	}
	for name, nc := range map[string]*EC2NodeClass{"encrypted": launchKeysClass(bdm(true)), "Karpenter's default volumes": launchKeysClass(nil)} {
		v := c.CheckEC2NodeClass(context.Background(), nc)
		if f := launchDenied(v); f != nil {
			t.Errorf("%s: LaunchDenied: %s", name, f.Message)
		}
	}
}

// TestInstanceTypeKey: a policy allowing RunInstances only for some
// instance types is asked once per type the NodePool allows; a NodePool
// that pins none leaves the key unknown, reported as not checked, never
// passed.
func TestInstanceTypeKey(t *testing.T) {
	policies := gettingStartedPolicies(t, gettingStarted["1.15"])
	policies["OnlyM5"] = `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyM5","Effect":"Deny",
		"Action":["ec2:RunInstances","ec2:CreateFleet"],"Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringNotLike":{"ec2:InstanceType":"m5.*"}}}]}`
	c := launchKeysChecker(t, policies)
	nc := launchKeysClass(nil)
	pool := func(types ...string) *NodePool {
		np := nodePool("p", refEC2(nc.Name))
		if types != nil {
			np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: instanceTypeKey, Operator: "In", Values: types}}
		}
		return np
	}
	check := func(np *NodePool) Verdict {
		return classRunner.judge(context.Background(), c, c.ec2Object(nc, np, true, false, true, nil))
	}
	if f := launchDenied(check(pool("m5.large", "m5.xlarge"))); f != nil {
		t.Errorf("m5 only: LaunchDenied: %s", f.Message)
	}
	if f := launchDenied(check(pool("m5.large", "c5.large"))); f == nil || !strings.Contains(f.Message, "instance/*") {
		t.Errorf("m5 and c5: want a LaunchDenied on instances, got %+v", f)
	}
	v := check(pool())
	found := false
	for _, n := range v.NotChecked {
		found = found || (n.Resource == "instance" && strings.Contains(n.Reason, "ec2:InstanceType"))
	}
	if !found {
		t.Errorf("no instance types pinned: not checked %+v, want ec2:InstanceType named", v.NotChecked)
	}
}

// TestImageARNWording: an image's ARN names no account, so the message
// names it whole instead of "in arn:aws:ec2:us-west-2:".
func TestImageARNWording(t *testing.T) {
	policies := gettingStartedPolicies(t, gettingStarted["1.15"])
	policies["NoImages"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*::image/*"}]}`
	v := launchKeysChecker(t, policies).CheckEC2NodeClass(context.Background(), launchKeysClass(nil))
	f := launchDenied(v)
	if f == nil {
		t.Fatalf("no LaunchDenied; denials %v", codesOf(v.Denials))
	}
	if !strings.Contains(f.Message, "may not ec2:RunInstances on arn:aws:ec2:us-west-2::image/ami-") || strings.Contains(f.Message, "in arn:aws:ec2:us-west-2:,") ||
		strings.Contains(f.Message, "in arn:aws:ec2:us-west-2: ") {
		t.Errorf("image wording: %s", f.Message)
	}
}

// TestEncryptedVolumesFixtureLive: testdata/guardrails/encrypted-volumes
// through the real SDK clients against the local endpoint (IAM read and
// simulated as serve does: a PolicyView over Live; EC2 and SSM to resolve
// the selectors): the same verdicts as the snapshot's.
func TestEncryptedVolumesFixtureLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local IAM endpoint")
	}
	const dir = "../testdata/guardrails/encrypted-volumes/"
	snap, err := authz.LoadSnapshotFile(dir + "snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	srv := iamserver.New(snap)
	url, stop := srv.Start()
	t.Cleanup(stop)
	ctx := context.Background()
	iamc, err := authz.NewIAMClient(ctx, "us-east-1", url, liveTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ec2c, err := authz.NewEC2Client(ctx, testRegion, url, liveTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ssmc, err := authz.NewSSMClient(ctx, testRegion, url, liveTimeout)
	if err != nil {
		t.Fatal(err)
	}
	opts := authz.CacheOptions{Timeout: liveTimeout}
	live := authz.NewLive(iamc, authz.LiveOptions{})
	ctl, _ := authz.ParseRoleARN(ctlKarpenter)
	ec2 := authz.NewCachedEC2(authz.NewEC2Live(ec2c, ssmc, authz.LiveOptions{}), opts)
	for _, tc := range []struct {
		view   string
		file   string
		denied bool
	}{
		{"policies read", "unencrypted.yaml", true}, {"policies read", "encrypted.yaml", false},
		{"simulator only", "unencrypted.yaml", true}, {"simulator only", "encrypted.yaml", false},
	} {
		var view authz.View = authz.NewPolicyView(authz.NewCached(live, opts), live, opts)
		if tc.view == "simulator only" {
			view = authz.NewCached(live, opts)
		}
		c := NewChecker(Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny,
			KubernetesVersion: "1.34", EC2: ec2})
		raw, err := os.ReadFile(dir + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var nc EC2NodeClass
		if err := yaml.Unmarshal(raw, &nc); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		v := c.CheckEC2NodeClass(ctx, &nc)
		f := launchDenied(v)
		if (f != nil) != tc.denied || (f != nil && !strings.Contains(f.Message, "ec2:RunInstances on volume/*")) {
			t.Errorf("%s, %s: LaunchDenied %+v, want denied=%v (denials %v)", tc.view, tc.file, f, tc.denied, codesOf(v.Denials))
		}
	}
	if srv.Calls(iamserver.EC2DescribeSubnets) == 0 || srv.Calls("GetRolePolicy") == 0 {
		t.Errorf("the live views did not reach the endpoint: %d DescribeSubnets, %d GetRolePolicy", srv.Calls(iamserver.EC2DescribeSubnets), srv.Calls("GetRolePolicy"))
	}
}

// TestLaunchOfRequirementsAndVolumes: what the NodePool's requirements and
// the class give the launch's keys.
func TestLaunchOfRequirementsAndVolumes(t *testing.T) {
	req := func(key, op string, values ...string) NodeSelectorRequirement {
		return NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	for _, tc := range []struct {
		reqs []NodeSelectorRequirement
		want string
	}{
		{nil, "on-demand"},
		{[]NodeSelectorRequirement{req(capacityTypeKey, "In", "spot")}, "spot"},
		{[]NodeSelectorRequirement{req(capacityTypeKey, "In", "spot", "on-demand")}, "on-demand,spot"},
		{[]NodeSelectorRequirement{req(capacityTypeKey, "NotIn", "spot", "reserved")}, "on-demand"},
		{[]NodeSelectorRequirement{req(capacityTypeKey, "Exists")}, ""},
	} {
		if got := strings.Join(marketTypes(tc.reqs), ","); got != tc.want {
			t.Errorf("market types of %+v = %q, want %q", tc.reqs, got, tc.want)
		}
	}
	types := allowedValues([]NodeSelectorRequirement{req(instanceTypeKey, "In", "m5.large", "c5.large"), req(instanceTypeKey, "NotIn", "c5.large")}, instanceTypeKey, nil)
	if strings.Join(types, ",") != "m5.large" {
		t.Errorf("instance types %v, want m5.large", types)
	}
	if allowedValues([]NodeSelectorRequirement{req("karpenter.k8s.aws/instance-family", "In", "m5")}, instanceTypeKey, nil) != nil {
		t.Error("instance types named without an instance-type requirement")
	}
	family := func(f string) EC2NodeClassSpec { return EC2NodeClassSpec{AMIFamily: &f} }
	for _, tc := range []struct {
		spec  EC2NodeClassSpec
		sizes string
	}{
		{family("AL2023"), "20"},
		{family("Bottlerocket"), "4,20"},
		{family("Windows2022"), "50"},
		{EC2NodeClassSpec{AMISelectorTerms: []SelectorTerm{{Alias: "al2@latest"}}}, "20"},
		{family("Custom"), ""},
	} {
		vols, why := launchVolumes(tc.spec)
		var sizes []string
		for _, v := range vols {
			sizes = append(sizes, strconv.FormatInt(v.SizeGiB, 10))
			if v.Encrypted == nil || !*v.Encrypted || v.Type != "gp3" {
				t.Errorf("%+v: default volume %+v, want encrypted gp3", tc.spec, v)
			}
		}
		if strings.Join(sizes, ",") != tc.sizes || (vols == nil) != (why != "") {
			t.Errorf("%+v: volumes %v (%q), want sizes %s", tc.spec, sizes, why, tc.sizes)
		}
	}
}
