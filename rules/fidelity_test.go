package rules

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// These tests are built from the shapes of Karpenter's real controller
// policies (getting-started CloudFormation, the terraform-aws-eks karpenter
// module, their China renderings) where they exposed a false answer or a
// misleading message.

// account is a small account: a Karpenter controller role with one inline
// policy, and node roles trusting the partition's EC2.
type account struct {
	partition, region string
	// passedToService are the iam:PassedToService values of the
	// controller's AllowPassingInstanceRole statement.
	passedToService []string
	// withoutTagStatement drops the statement allowing
	// iam:TagInstanceProfile.
	withoutTagStatement bool
}

const fidelityAccount = "111122223333"

func (a account) arn(resource string) string {
	return "arn:" + a.partition + ":iam::" + fidelityAccount + ":" + resource
}

func (a account) controllerARN() string { return a.arn("role/KarpenterControllerRole") }

// controllerPolicy follows the statements of Karpenter's controller policy
// that the rules ask about, with its conditions.
func (a account) controllerPolicy() map[string]any {
	clusterTag := "aws:RequestTag/kubernetes.io/cluster/" + testCluster
	statements := []map[string]any{
		{"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
			"Action":   []string{"ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:CreateTags"},
			"Resource": "arn:" + a.partition + ":ec2:" + a.region + ":*:*"},
		{"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow",
			"Action": "iam:CreateInstanceProfile", "Resource": a.arn("instance-profile/*"),
			"Condition": map[string]any{
				"StringEquals": map[string]any{clusterTag: "owned", "aws:RequestTag/eks:eks-cluster-name": testCluster,
					"aws:RequestTag/topology.kubernetes.io/region": a.region},
				"StringLike": map[string]any{"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
		{"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow",
			"Action": "iam:TagInstanceProfile", "Resource": a.arn("instance-profile/*"),
			"Condition": map[string]any{
				"StringEquals": map[string]any{"aws:ResourceTag/kubernetes.io/cluster/" + testCluster: "owned", clusterTag: "owned",
					"aws:ResourceTag/topology.kubernetes.io/region": a.region, "aws:RequestTag/topology.kubernetes.io/region": a.region},
				"StringLike": map[string]any{"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*", "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
		{"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow",
			"Action": "iam:AddRoleToInstanceProfile", "Resource": a.arn("instance-profile/*"),
			"Condition": map[string]any{
				"StringEquals": map[string]any{"aws:ResourceTag/kubernetes.io/cluster/" + testCluster: "owned",
					"aws:ResourceTag/topology.kubernetes.io/region": a.region},
				"StringLike": map[string]any{"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
		{"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow",
			"Action": "iam:GetInstanceProfile", "Resource": a.arn("instance-profile/*")},
		{"Sid": "AllowPassingInstanceRole", "Effect": "Allow",
			"Action": "iam:PassRole", "Resource": a.arn("role/KarpenterNodeRole-*"),
			"Condition": map[string]any{"StringEquals": map[string]any{"iam:PassedToService": a.passedToService}}},
	}
	if a.withoutTagStatement {
		statements = append(statements[:2], statements[3:]...)
	}
	return map[string]any{"Version": "2012-10-17", "Statement": statements}
}

// snapshot is the account as `aws iam get-account-authorization-details`
// prints it.
func (a account) snapshot(t *testing.T) *authz.Snapshot {
	t.Helper()
	ec2 := authz.EC2ServicePrincipal(a.partition)
	trust := func(svc string) map[string]any {
		return map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{
			{"Effect": "Allow", "Principal": map[string]any{"Service": svc}, "Action": "sts:AssumeRole"}}}
	}
	nodeRole := map[string]any{"RoleName": "KarpenterNodeRole-demo", "Path": "/", "Arn": a.arn("role/KarpenterNodeRole-demo"),
		"AssumeRolePolicyDocument": trust(ec2), "RolePolicyList": []any{}, "AttachedManagedPolicies": []any{}, "InstanceProfileList": []any{}}
	profile := map[string]any{"InstanceProfileName": "KarpenterNodeInstanceProfile-demo", "Path": "/",
		"Arn": a.arn("instance-profile/KarpenterNodeInstanceProfile-demo"), "Roles": []any{nodeRole}}
	doc := map[string]any{
		"UserDetailList": []any{}, "GroupDetailList": []any{}, "Policies": []any{},
		"RoleDetailList": []any{
			map[string]any{"RoleName": "KarpenterControllerRole", "Path": "/", "Arn": a.controllerARN(),
				"AssumeRolePolicyDocument": trust("pods.eks.amazonaws.com"), "AttachedManagedPolicies": []any{}, "InstanceProfileList": []any{},
				"RolePolicyList": []any{map[string]any{"PolicyName": "KarpenterControllerPolicy", "PolicyDocument": a.controllerPolicy()}}},
			nodeRole,
		},
		"InstanceProfiles": []any{profile},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := authz.LoadSnapshot(strings.NewReader(string(raw)), "account")
	if err != nil {
		t.Fatalf("loading the account: %v", err)
	}
	return snap
}

// views returns the account's snapshot and the live view serve builds over
// the local IAM endpoint serving it.
func (a account) views(t *testing.T) map[string]authz.View {
	t.Helper()
	snap := a.snapshot(t)
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	srv := iamserver.New(snap)
	url, stop := srv.Start()
	t.Cleanup(stop)
	client, err := authz.NewIAMClient(context.Background(), a.region, url, liveTimeout)
	if err != nil {
		t.Fatal(err)
	}
	live := authz.NewCached(authz.NewLive(client, authz.LiveOptions{}), authz.CacheOptions{Timeout: liveTimeout})
	return map[string]authz.View{"snapshot": snap, "live": live}
}

func (a account) check(t *testing.T, view authz.View, obj *EC2NodeClass) Verdict {
	t.Helper()
	ctl, err := authz.ParseRoleARN(a.controllerARN())
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: a.region, OnIAMError: OnIAMErrorDeny})
	return c.CheckEC2NodeClass(context.Background(), obj)
}

func denialsOf(v Verdict, code Code) []Finding {
	var out []Finding
	for _, f := range v.Denials {
		if f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

// TestChinaPassRoleForSpecRole: in aws-cn, EC2 receives the node role with
// iam:PassedToService=ec2.amazonaws.com.cn, but IAM's
// AddRoleToInstanceProfile, when Karpenter creates the instance profile of
// a spec.role class, checks iam:PassRole with ec2.amazonaws.com. The
// terraform-aws-eks karpenter module's China rendering listed only the
// first value (ec2.${dns_suffix}); that passed the check and broke
// Karpenter. Both must be asked, and the fix must name both.
func TestChinaPassRoleForSpecRole(t *testing.T) {
	cnOnly := account{partition: "aws-cn", region: "cn-north-1", passedToService: []string{"ec2.amazonaws.com.cn"}}
	both := cnOnly
	both.passedToService = []string{"ec2.amazonaws.com.cn", "ec2.amazonaws.com"}

	for name, view := range cnOnly.views(t) {
		t.Run("only .cn, spec.role, "+name, func(t *testing.T) {
			v := cnOnly.check(t, view, ec2Class("default", "KarpenterNodeRole-demo", ""))
			pass := denialsOf(v, PassRoleDenied)
			if len(pass) != 1 || len(v.Denials) != 1 {
				t.Fatalf("want one PassRoleDenied, got:\n%s", dump(v))
			}
			f := pass[0]
			for _, want := range []string{
				"may not iam:PassRole arn:aws-cn:iam::111122223333:role/KarpenterNodeRole-demo to ec2.amazonaws.com:",
				"iam:PassedToService in [ec2.amazonaws.com.cn, ec2.amazonaws.com]",
			} {
				if !strings.Contains(f.Message, want) {
					t.Errorf("message lacks %q:\n%s", want, f.Message)
				}
			}
			if len(f.Requests) != 1 || f.Requests[0].Context["iam:PassedToService"][0] != "ec2.amazonaws.com" ||
				f.Requests[0].Principal != cnOnly.controllerARN() || f.DeniedBy != "" {
				t.Errorf("requests %+v, deniedBy %q: want the ec2.amazonaws.com question, implicitly denied", f.Requests, f.DeniedBy)
			}
			if name == "snapshot" {
				// The statement covers the role; its condition is what fails.
				if !strings.Contains(f.Message, "StringEquals iam:PassedToService ec2.amazonaws.com.cn does not hold") ||
					strings.Contains(f.Message, "match role/") {
					t.Errorf("the message must name the failed condition, not the resource that matched:\n%s", f.Message)
				}
			}
		})
		t.Run("only .cn, spec.instanceProfile, "+name, func(t *testing.T) {
			// A profile the user manages: EC2 alone receives the role.
			v := cnOnly.check(t, view, ec2Class("default", "", "KarpenterNodeInstanceProfile-demo"))
			if len(v.Denials) != 0 {
				t.Errorf("want no denial:\n%s", dump(v))
			}
		})
	}
	for name, view := range both.views(t) {
		t.Run("both values, "+name, func(t *testing.T) {
			if v := both.check(t, view, ec2Class("default", "KarpenterNodeRole-demo", "")); len(v.Denials) != 0 {
				t.Errorf("want no denial:\n%s", dump(v))
			}
		})
	}
}

// TestNearMissNamesTheFailedCondition: a PassRole statement that covers the
// node role but whose iam:PassedToService does not hold (here a policy
// written for China, read in the global partition) must not be reported as
// "policy statements match role/KarpenterNodeRole-* only": the resource
// matched.
func TestNearMissNamesTheFailedCondition(t *testing.T) {
	a := account{partition: "aws", region: testRegion, passedToService: []string{"ec2.amazonaws.com.cn"}}
	v := a.check(t, a.snapshot(t), ec2Class("default", "KarpenterNodeRole-demo", ""))
	pass := denialsOf(v, PassRoleDenied)
	if len(pass) != 1 {
		t.Fatalf("want one PassRoleDenied:\n%s", dump(v))
	}
	msg := pass[0].Message
	if !strings.Contains(msg, "a statement covers that resource, but its condition StringEquals iam:PassedToService ec2.amazonaws.com.cn does not hold") ||
		strings.Contains(msg, "only)") {
		t.Errorf("message:\n%s", msg)
	}
	if !strings.Contains(msg, "Allow iam:PassRole on that ARN with iam:PassedToService=ec2.amazonaws.com") {
		t.Errorf("message lacks the fix:\n%s", msg)
	}
}

// TestTagInstanceProfileMessage: a controller policy without the statement
// allowing iam:TagInstanceProfile. Karpenter never calls TagInstanceProfile
// for a new profile; IAM requires that permission for the tags of
// CreateInstanceProfile. The message must say so.
func TestTagInstanceProfileMessage(t *testing.T) {
	a := account{partition: "aws", region: testRegion, passedToService: []string{"ec2.amazonaws.com"}, withoutTagStatement: true}
	for name, view := range a.views(t) {
		t.Run(name, func(t *testing.T) {
			v := a.check(t, view, ec2Class("default", "KarpenterNodeRole-demo", ""))
			fs := denialsOf(v, InstanceProfileActionsDenied)
			if len(fs) != 1 || len(v.Denials) != 1 {
				t.Fatalf("want one InstanceProfileActionsDenied:\n%s", dump(v))
			}
			f := fs[0]
			if !strings.Contains(f.Message, "may not iam:TagInstanceProfile on arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/") ||
				!strings.Contains(f.Message, "IAM requires iam:TagInstanceProfile to create an instance profile with tags, as Karpenter does") {
				t.Errorf("message:\n%s", f.Message)
			}
			if len(f.Requests) != 1 || f.Requests[0].Action != "iam:TagInstanceProfile" ||
				f.Requests[0].Context["aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass"][0] != "default" {
				t.Errorf("requests = %+v", f.Requests)
			}
		})
	}
}

// TestRoleHasPathQuotesTheRealARN: spec.role gives a path that is not the
// role's; the warning must not repeat the typed path as if it were the ARN.
func TestRoleHasPathQuotesTheRealARN(t *testing.T) {
	c := NewChecker(Config{IAM: loadSampleSnapshot(t), Controller: mustRoleARN(t, ctlKarpenter), ClusterName: testCluster, Region: testRegion})
	v := c.CheckEC2NodeClass(context.Background(), ec2Class("x", "other/KarpenterNodeRole-team", ""))
	var warning string
	for _, f := range v.Warnings {
		if f.Code == RoleHasPath {
			warning = f.Message
		}
	}
	if !strings.Contains(warning, "arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team") || strings.Contains(warning, "other") {
		t.Errorf("RoleHasPath = %q; want the real ARN, not the typed path", warning)
	}
	// Offline, the typed path is all there is to quote.
	off := NewChecker(Config{ClusterName: testCluster, Region: testRegion})
	v = off.CheckEC2NodeClass(context.Background(), ec2Class("x", "other/KarpenterNodeRole-team", ""))
	if len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0].Message, "role/other/KarpenterNodeRole-team") {
		t.Errorf("offline warnings = %s", dump(v))
	}
}

// TestDeniedBy: what denied a permission is data for whoever writes the
// fix (explicit deny, the permissions boundary).
func TestDeniedBy(t *testing.T) {
	snap := loadSampleSnapshot(t)
	for _, tc := range []struct {
		ctl, role string
		want      string
	}{
		{ctlKarpenter, "AdminNodeRole", DeniedByExplicitDeny},
		{ctlBounded, "KarpenterNodeRole-demo", DeniedByBoundary},
		{ctlKarpenter, "OtherNodeRole", ""},
	} {
		c := NewChecker(Config{IAM: snap, Controller: mustRoleARN(t, tc.ctl), ClusterName: testCluster, Region: testRegion})
		v := c.CheckEC2NodeClass(context.Background(), ec2Class("x", tc.role, ""))
		pass := denialsOf(v, PassRoleDenied)
		if len(pass) != 1 || pass[0].DeniedBy != tc.want {
			t.Errorf("%s passing %s: want PassRoleDenied by %q:\n%s", tc.ctl, tc.role, tc.want, dump(v))
		}
	}
}

func mustRoleARN(t *testing.T, s string) authz.RoleARN {
	t.Helper()
	r, err := authz.ParseRoleARN(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
