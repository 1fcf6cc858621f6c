package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// gettingStarted maps each modelled Karpenter version to the
// getting-started template of that version committed in
// testdata/karpenter (each file's header names its source tag and path,
// and the versions whose template has the same content).
var gettingStarted = map[string]string{
	"1.0": "cloudformation-v1.0.yaml", "1.1": "cloudformation-v1.0.yaml", "1.2": "cloudformation-v1.0.yaml",
	"1.3": "cloudformation-v1.3.yaml", "1.4": "cloudformation-v1.3.yaml", "1.5": "cloudformation-v1.3.yaml", "1.6": "cloudformation-v1.3.yaml",
	"1.7": "cloudformation-v1.7.yaml", "1.8": "cloudformation-v1.7.yaml",
	"1.9":  "cloudformation-v1.9.yaml",
	"1.10": "cloudformation-v1.10.yaml",
	"1.11": "cloudformation-v1.11.yaml",
	"1.12": "cloudformation-v1.12.yaml", "1.13": "cloudformation-v1.12.yaml", "1.14": "cloudformation-v1.12.yaml", "1.15": "cloudformation-v1.12.yaml",
}

const (
	gsAccount = "111122223333"
	gsUID     = "7f1f7c1e-3b7a-4c59-9d0e-2a4f0b6f5c11"
)

// gettingStartedPolicies reads the controller's managed policies of a
// getting-started template, with CloudFormation's substitutions for the
// demo cluster.
func gettingStartedPolicies(t *testing.T, file string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "karpenter", file))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	resources := mapValue(doc.Content[0], "Resources")
	if resources == nil {
		t.Fatalf("%s: no Resources", file)
	}
	subst := strings.NewReplacer(
		"${AWS::Partition}", "aws", "${AWS::Region}", testRegion, "${AWS::AccountId}", gsAccount,
		"${AWS::URLSuffix}", "amazonaws.com", "${ClusterName}", testCluster,
		"${KarpenterNodeRole.Arn}", "arn:aws:iam::"+gsAccount+":role/KarpenterNodeRole-"+testCluster,
		"${KarpenterInterruptionQueue.Arn}", "arn:aws:sqs:"+testRegion+":"+gsAccount+":"+testCluster,
	)
	out := map[string]string{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		name, res := resources.Content[i].Value, resources.Content[i+1]
		if typ := mapValue(res, "Type"); typ == nil || typ.Value != "AWS::IAM::ManagedPolicy" {
			continue
		}
		props := mapValue(res, "Properties")
		pd := mapValue(props, "PolicyDocument")
		if pd == nil || pd.Kind != yaml.ScalarNode {
			t.Fatalf("%s: %s has no PolicyDocument string", file, name)
		}
		doc := subst.Replace(pd.Value)
		if strings.Contains(doc, "${") {
			t.Fatalf("%s: %s keeps an unsubstituted variable", file, name)
		}
		out[name] = doc
	}
	if len(out) == 0 {
		t.Fatalf("%s: no controller policy", file)
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// gsSnapshot is an account with the demo cluster's node role and a
// controller role holding policies (name to JSON document).
func gsSnapshot(t *testing.T, policies map[string]string) *authz.Snapshot {
	t.Helper()
	arn := func(r string) string { return "arn:aws:iam::" + gsAccount + ":" + r }
	trust := func(svc string) map[string]any {
		return map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{
			{"Effect": "Allow", "Principal": map[string]any{"Service": svc}, "Action": "sts:AssumeRole"}}}
	}
	var inline []any
	for name, doc := range policies {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		inline = append(inline, map[string]any{"PolicyName": name, "PolicyDocument": v})
	}
	nodeRole := map[string]any{"RoleName": "KarpenterNodeRole-" + testCluster, "Path": "/", "Arn": arn("role/KarpenterNodeRole-" + testCluster),
		"AssumeRolePolicyDocument": trust("ec2.amazonaws.com"), "RolePolicyList": []any{}, "AttachedManagedPolicies": []any{}, "InstanceProfileList": []any{}}
	doc := map[string]any{
		"UserDetailList": []any{}, "GroupDetailList": []any{}, "Policies": []any{},
		"RoleDetailList": []any{
			map[string]any{"RoleName": "KarpenterControllerRole", "Path": "/", "Arn": arn("role/KarpenterControllerRole"),
				"AssumeRolePolicyDocument": trust("pods.eks.amazonaws.com"), "AttachedManagedPolicies": []any{}, "InstanceProfileList": []any{},
				"RolePolicyList": inline},
			nodeRole,
		},
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

// gsViews are the snapshot and the live view over the local IAM endpoint
// serving it (whose evaluator is the snapshot's).
func gsViews(t *testing.T, snap *authz.Snapshot) map[string]authz.View {
	t.Helper()
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	srv := iamserver.New(snap)
	url, stop := srv.Start()
	t.Cleanup(stop)
	client, err := authz.NewIAMClient(context.Background(), testRegion, url, liveTimeout)
	if err != nil {
		t.Fatal(err)
	}
	live := authz.NewCached(authz.NewLive(client, authz.LiveOptions{}), authz.CacheOptions{Timeout: liveTimeout})
	return map[string]authz.View{"snapshot": snap, "live": live}
}

func gsCheck(t *testing.T, view authz.View, version string, nc *EC2NodeClass) Verdict {
	t.Helper()
	kv, err := karpenter.Resolve(version, "test", "--karpenter-version")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN("arn:aws:iam::" + gsAccount + ":role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny, Karpenter: kv})
	return c.CheckEC2NodeClass(context.Background(), nc)
}

// gsClass is the getting-started guide's EC2NodeClass (role
// KarpenterNodeRole-<cluster>), as admission sees it: with a UID.
func gsClass(tags map[string]string) *EC2NodeClass {
	nc := ec2Class("default", "KarpenterNodeRole-"+testCluster, "")
	nc.UID = types.UID(gsUID)
	nc.Spec.Tags = tags
	return nc
}

// noPermissionFindings fails on any finding about the controller's
// permissions, and on a key reported unknown.
func noPermissionFindings(t *testing.T, v Verdict) {
	t.Helper()
	for _, f := range append(append([]Finding(nil), v.Denials...), v.Warnings...) {
		switch f.Code {
		case NodeJoinChecksSkipped: // the account has no EKS section
		default:
			t.Errorf("[%s] %s: %s", f.Code, f.Field, f.Message)
		}
	}
}

// TestGettingStartedPolicyPerVersion: for each modelled Karpenter version,
// the getting-started controller policy of that version admits its own
// example class, with and without spec.tags, as Karpenter asks it; and so
// does the same policy with the instance-profile statements scoped to the
// names and path that version creates.
func TestGettingStartedPolicyPerVersion(t *testing.T) {
	for _, v := range karpenter.Modelled() {
		file, ok := gettingStarted[v.String()]
		if !ok {
			t.Fatalf("no getting-started template for Karpenter %s", v)
		}
		policies := gettingStartedPolicies(t, file)
		scoped := map[string]string{}
		scope := "instance-profile/" + testCluster + "_*"
		if v.Minor >= 13 {
			scope = "instance-profile/karpenter/" + testRegion + "/" + testCluster + "/*"
		}
		for name, doc := range policies {
			scoped[name] = strings.ReplaceAll(doc, ":instance-profile/*", ":"+scope)
		}
		for variant, pols := range map[string]map[string]string{"getting-started": policies, "scoped to " + scope: scoped} {
			for name, view := range gsViews(t, gsSnapshot(t, pols)) {
				t.Run(fmt.Sprintf("%s/%s/%s", v, variant, name), func(t *testing.T) {
					noPermissionFindings(t, gsCheck(t, view, v.String(), gsClass(nil)))
					noPermissionFindings(t, gsCheck(t, view, v.String(), gsClass(map[string]string{"team": "payments"})))
				})
			}
		}
	}
}

// TestInstanceProfilePathPerVersion: a policy scoped to the 1.13 path
// scheme (instance-profile/karpenter/*) admits 1.13 and later and denies
// what 1.12 asks (its profiles have no path), and the reverse for a
// policy scoped to <cluster>_* at the root.
func TestInstanceProfilePathPerVersion(t *testing.T) {
	policies := gettingStartedPolicies(t, gettingStarted["1.15"])
	for _, tc := range []struct {
		scope      string
		denyBefore bool // 1.12 denied
		denyAfter  bool // 1.13 denied
	}{
		{"instance-profile/karpenter/*", true, false},
		{"instance-profile/" + testCluster + "_*", false, true},
		{"instance-profile/*/*", true, false},
		// Once matched the literal instance-profile/* asked before.
		{"instance-profile/?", true, true},
	} {
		scoped := map[string]string{}
		for name, doc := range policies {
			scoped[name] = strings.ReplaceAll(doc, ":instance-profile/*", ":"+tc.scope)
		}
		snap := gsSnapshot(t, scoped)
		for version, deny := range map[string]bool{"1.12": tc.denyBefore, "1.13": tc.denyAfter} {
			v := gsCheck(t, snap, version, gsClass(nil))
			got := len(denialsOf(v, InstanceProfileActionsDenied)) == 1
			if got != deny {
				t.Errorf("%s, Karpenter %s: InstanceProfileActionsDenied %v, want %v:\n%s", tc.scope, version, got, deny, dump(v))
			}
		}
	}
}

// TestTagRestrictedPolicies: policies that limit tags are judged as
// Karpenter's requests would be, spec.tags included.
func TestTagRestrictedPolicies(t *testing.T) {
	base := gettingStartedPolicies(t, gettingStarted["1.15"])
	restrict := func(cond string) map[string]string {
		// A Deny of any launch or instance-profile request whose
		// condition holds, next to the getting-started policy.
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		out["TagGuard"] = `{"Version":"2012-10-17","Statement":[{"Sid":"TagGuard","Effect":"Deny",
			"Action":["ec2:RunInstances","ec2:CreateFleet","ec2:CreateLaunchTemplate","iam:CreateInstanceProfile","iam:TagInstanceProfile"],
			"Resource":"*","Condition":` + cond + `}]}`
		return out
	}
	karpenterKeys := `["kubernetes.io/cluster/*","eks:eks-cluster-name","karpenter.sh/nodepool","karpenter.k8s.aws/ec2nodeclass","topology.kubernetes.io/region"]`
	// Only Karpenter's keys may be requested: a Deny unless every key is
	// one of them.
	onlyKarpenterKeys := restrict(`{"ForAnyValue:StringNotLike":{"aws:TagKeys":` + karpenterKeys + `}}`)
	// The same intent as an Allow-list written with ForAllValues.
	allowOnly := map[string]string{}
	for k, v := range base {
		allowOnly[k] = strings.ReplaceAll(strings.ReplaceAll(v,
			`"aws:RequestTag/eks:eks-cluster-name": "`+testCluster+`"`,
			`"aws:RequestTag/eks:eks-cluster-name": "`+testCluster+`"
                },
                "ForAllValues:StringLike": {
                  "aws:TagKeys": `+karpenterKeys),
			"\n", "\n")
	}
	plain := restrict(`{"StringEquals":{"aws:TagKeys":"team"}}`)
	otherCluster := map[string]string{}
	for k, v := range base {
		otherCluster[k] = strings.ReplaceAll(v, `"aws:RequestTag/eks:eks-cluster-name": "`+testCluster+`"`,
			`"aws:RequestTag/eks:eks-cluster-name": "`+testCluster+`",
                  "aws:RequestTag/kubernetes.io/cluster/other": "owned"`)
	}
	tagged := map[string]string{"team": "payments"}
	for _, tc := range []struct {
		name     string
		policies map[string]string
		tags     map[string]string
		deny     []Code
		msg      string // in the first denial, snapshot view only
	}{
		{name: "deny of other tag keys, class without spec.tags", policies: onlyKarpenterKeys},
		{name: "deny of other tag keys, class with spec.tags", policies: onlyKarpenterKeys, tags: tagged,
			deny: codes(InstanceProfileActionsDenied, LaunchDenied), msg: "team=payments"},
		{name: "ForAllValues allow-list of Karpenter's keys, class without spec.tags", policies: allowOnly},
		{name: "ForAllValues allow-list of Karpenter's keys, class with spec.tags", policies: allowOnly, tags: tagged,
			deny: codes(InstanceProfileActionsDenied, LaunchDenied), msg: "ForAllValues:StringLike aws:TagKeys"},
		{name: "plain StringEquals on aws:TagKeys never matches: its Deny does not apply", policies: plain, tags: tagged},
		{name: "condition on another cluster's tag is false, not unknown", policies: otherCluster,
			deny: codes(InstanceProfileActionsDenied, LaunchDenied), msg: "aws:RequestTag/kubernetes.io/cluster/other"},
	} {
		for name, view := range gsViews(t, gsSnapshot(t, tc.policies)) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				v := gsCheck(t, view, "1.15", gsClass(tc.tags))
				var got []Code
				for _, f := range v.Denials {
					got = append(got, f.Code)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.deny) {
					t.Fatalf("denials %v, want %v:\n%s", got, tc.deny, dump(v))
				}
				for _, f := range v.Warnings {
					if f.Code == PermissionContextMissing {
						t.Errorf("a key the model knows was reported unknown: %s", f.Message)
					}
				}
				if name == "snapshot" && tc.msg != "" && !strings.Contains(v.Denials[len(v.Denials)-1].Message, tc.msg) {
					t.Errorf("message lacks %q:\n%s", tc.msg, v.Denials[len(v.Denials)-1].Message)
				}
			})
		}
	}
}

// TestPlainOperatorOnTagKeysIsNamed: an Allow that tests aws:TagKeys with a
// plain StringEquals never matches; the denial says to use a set operator.
func TestPlainOperatorOnTagKeysIsNamed(t *testing.T) {
	base := gettingStartedPolicies(t, gettingStarted["1.15"])
	pols := map[string]string{}
	for k, v := range base {
		pols[k] = strings.ReplaceAll(v, `"aws:RequestTag/eks:eks-cluster-name": "`+testCluster+`"`,
			`"aws:RequestTag/eks:eks-cluster-name": "`+testCluster+`",
                  "aws:TagKeys": "eks:eks-cluster-name"`)
	}
	v := gsCheck(t, gsSnapshot(t, pols), "1.15", gsClass(nil))
	fs := denialsOf(v, LaunchDenied)
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "StringEquals aws:TagKeys tests a multivalued key without ForAnyValue: or ForAllValues:") {
		t.Fatalf("want a LaunchDenied naming the set operator:\n%s", dump(v))
	}
}

// TestDenyNotResourceOnThePath: a Deny of instance-profile actions outside
// instance-profile/karpenter/* (NotResource) stops Karpenter 1.12, whose
// profiles have no path, and lets 1.13 through.
func TestDenyNotResourceOnThePath(t *testing.T) {
	pols := gettingStartedPolicies(t, gettingStarted["1.15"])
	pols["OnlyKarpenterPath"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:*InstanceProfile",
		"NotResource":"arn:aws:iam::` + gsAccount + `:instance-profile/karpenter/*"}]}`
	for name, view := range gsViews(t, gsSnapshot(t, pols)) {
		for version, deny := range map[string]bool{"1.12": true, "1.13": false} {
			v := gsCheck(t, view, version, gsClass(nil))
			fs := denialsOf(v, InstanceProfileActionsDenied)
			if (len(fs) == 1) != deny || (deny && fs[0].DeniedBy != DeniedByExplicitDeny) {
				t.Errorf("%s, Karpenter %s: %v, want denied %v (explicitly):\n%s", name, version, v.Codes(), deny, dump(v))
			}
		}
	}
}
