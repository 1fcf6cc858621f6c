package envtest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// The node-join codes through a real API server: EKS answers come from the
// local endpoint's EKS API (the sample's cluster "demo", API_AND_CONFIG_MAP,
// Auto Mode compute enabled, its access entries), and aws-auth is a real
// ConfigMap in kube-system, read by serve through its cache under
// deploy/base's RBAC (a Role for that one ConfigMap).

// configMapSnapshot writes the sample account with its cluster in
// CONFIG_MAP mode and without AWSServiceRoleForEC2Spot.
func configMapSnapshot(dir string) (string, error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, framework.SampleSnapshot))
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", err
	}
	doc["cluster"].(map[string]any)["accessConfig"] = map[string]any{"authenticationMode": "CONFIG_MAP"}
	var kept []any
	for _, r := range doc["RoleDetailList"].([]any) {
		if r.(map[string]any)["RoleName"] != "AWSServiceRoleForEC2Spot" {
			kept = append(kept, r)
		}
	}
	doc["RoleDetailList"] = kept
	out, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "configmap-cluster.json")
	return file, os.WriteFile(file, out, 0o600)
}

const nodeGroups = "\n  groups:\n    - system:bootstrappers\n    - system:nodes\n"

// setAWSAuth creates or replaces kube-system/aws-auth's mapRoles.
func setAWSAuth(t *testing.T, ctx context.Context, c client.Client, mapRoles string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "aws-auth", Namespace: "kube-system"}, Data: map[string]string{"mapRoles": mapRoles}}
	err := c.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		var old corev1.ConfigMap
		if err = c.Get(ctx, client.ObjectKeyFromObject(cm), &old); err == nil {
			old.Data = cm.Data
			err = c.Update(ctx, &old)
		}
	}
	if err != nil {
		t.Fatalf("writing kube-system/aws-auth: %v", err)
	}
}

// dryRunUntil dry-runs the creation of o until answer reports the verdict
// it waits for: serve sees a ConfigMap change when its watch delivers it.
func dryRunUntil(t *testing.T, ctx context.Context, c *framework.Client, o *unstructured.Unstructured, answer func([]string, error) bool) ([]string, error) {
	t.Helper()
	for {
		w, err := create(ctx, c, o.DeepCopy(), client.DryRunAll)
		if answer(w, err) || ctx.Err() != nil {
			return w, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mentions(code string) func([]string, error) bool {
	return func(w []string, err error) bool {
		return (err != nil && strings.Contains(err.Error(), "["+code+"]")) || strings.Contains(strings.Join(w, "\n"), "["+code+"]")
	}
}

func TestNodeJoin(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	const acct = "arn:aws:iam::111122223333:role/"
	setAWSAuth(t, ctx, c, "- rolearn: "+acct+"legacy/KarpenterNodeRole-legacy\n  username: system:node:{{EC2PrivateDNSName}}"+nodeGroups+
		"- rolearn: "+acct+"KarpenterNodeRole-nogroups\n  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n    - system:nodes\n")

	// Could not check is a warning naming the check, never a silent pass:
	// EKS fails every DescribeAccessEntry (first, before any answer for
	// this role is cached).
	t.Run("skipped", func(t *testing.T) {
		e.IAM.InjectFailure(iamserver.Failure{Fault: iamserver.ServiceFailure, Action: iamserver.EKSDescribeAccessEntry, Always: true})
		defer e.IAM.ClearFailures()
		w, err := create(ctx, c, ec2NodeClass("join-skipped", role("KarpenterNodeRole-noentry")), client.DryRunAll)
		requireAllowed(t, err, "join-skipped")
		requireWarnings(t, w, []string{"[NodeJoinChecksSkipped] spec"})
		// Why: EKS's error, or, when the SDK's retries of it outlast the
		// admission's deadline on a loaded machine, the deadline.
		if all := strings.Join(w, "\n"); !strings.Contains(all, "access entry (DescribeAccessEntry: ServerException") &&
			!strings.Contains(all, "access entry (DescribeAccessEntry: timed out") {
			t.Errorf("warning does not name the check and why: %q", w)
		}
	})

	cases := []struct {
		name     string
		obj      *unstructured.Unstructured
		group    string
		denials  []string
		warnings []string
	}{
		{name: "join-no-entry", obj: ec2NodeClass("join-no-entry", role("KarpenterNodeRole-noentry")), group: groupEC2NodeClass,
			denials: []string{"spec.role: NodeAccessEntryMissing"}},
		{name: "join-standard-entry", obj: ec2NodeClass("join-standard-entry", role("KarpenterNodeRole-standard")), group: groupEC2NodeClass,
			denials: []string{"spec.role: NodeAccessEntryWrongType"}},
		{name: "join-aws-auth-path", obj: ec2NodeClass("join-aws-auth-path", role("KarpenterNodeRole-legacy")), group: groupEC2NodeClass,
			denials: []string{"spec.role: AWSAuthRoleHasPath", "spec.role: PassRoleDenied"}},
		{name: "join-aws-auth-groups", obj: ec2NodeClass("join-aws-auth-groups", role("KarpenterNodeRole-nogroups")), group: groupEC2NodeClass,
			denials: []string{"spec.role: AWSAuthGroupsMissing"}},
		{name: "auto-no-policy", obj: eksNodeClass("auto-no-policy", role("EKSAutoNodeRole-nopolicy")), group: groupEKS,
			denials: []string{"spec.role: NodeAccessPolicyMissing"}},
		{name: "auto-path", obj: eksNodeClass("auto-path", role("EKSAutoNodeRole-path")), group: groupEKS,
			denials: []string{"spec.role: NodeAccessEntryMissing"}, warnings: []string{"[AutoModeRoleHasPath] spec.role"}},
		{name: "auto-karpenter-role", obj: eksNodeClass("auto-karpenter-role", role("KarpenterNodeRole-demo")), group: groupEKS,
			denials: []string{"spec.role: AutoModePassRoleDenied", "spec.role: NodeAccessEntryWrongType"}},
		{name: "auto-tags", obj: eksNodeClass("auto-tags", map[string]any{"role": "EKSAutoNodeRole-demo", "tags": map[string]any{"cost-center": "42"}}), group: groupEKS,
			denials: []string{"spec.tags: AutoModeTagDenied"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := dryRunUntil(t, ctx, c, tc.obj, func(_ []string, err error) bool { return err != nil })
			requireDenied(t, e, tc.group, err, tc.denials...)
			requireWarnings(t, w, tc.warnings)
		})
	}

	t.Run("good auto mode class with team tags", func(t *testing.T) {
		o := eksNodeClass("auto-team", map[string]any{"role": "EKSAutoNodeRole-demo", "tags": map[string]any{"team": "payments"}})
		w, err := create(ctx, c, o)
		requireAllowed(t, err, "auto-team")
		deleteAtEnd(t, c, o)
		requireWarnings(t, w, nil, "NodeJoinChecksSkipped", "AutoModeTagDenied")
	})
}

// TestNodeJoinConfigMap: a CONFIG_MAP cluster reads aws-auth only; mapping
// the role there, in the real ConfigMap, turns the denial into an
// admission. The same account has no spot service-linked role.
func TestNodeJoinConfigMap(t *testing.T) {
	e := configMapEnv.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	setAWSAuth(t, ctx, c, "- rolearn: arn:aws:iam::111122223333:role/OtherNodeRole\n  username: system:node:{{EC2PrivateDNSName}}"+nodeGroups)

	class := ec2NodeClass("configmap-demo", role("KarpenterNodeRole-demo"))
	_, err := dryRunUntil(t, ctx, c, class, func(_ []string, err error) bool { return err != nil })
	denial := requireDenied(t, e, groupEC2NodeClass, err, "spec.role: AWSAuthRoleMissing")
	if !strings.Contains(strings.Join(denial, "\n"), "{rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo, username: system:node:{{EC2PrivateDNSName}}, groups: [system:bootstrappers, system:nodes]}") {
		t.Errorf("the denial does not give the line to write: %q", denial)
	}

	// Mapped with both node groups under another username: the Node
	// authorizer would refuse the kubelet.
	setAWSAuth(t, ctx, c, "- rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo\n  username: system:node:{{SessionName}}"+nodeGroups)
	_, err = dryRunUntil(t, ctx, c, class, mentions("AWSAuthUsernameWrong"))
	denial = requireDenied(t, e, groupEC2NodeClass, err, "spec.role: AWSAuthUsernameWrong")
	if !strings.Contains(strings.Join(denial, "\n"), "to username system:node:{{SessionName}}, but the Node authorizer serves only users in system:nodes named system:node:<nodeName>") ||
		!strings.Contains(strings.Join(denial, "\n"), "Write its mapRoles entry as {rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo, username: system:node:{{EC2PrivateDNSName}}, groups: [system:bootstrappers, system:nodes]}") {
		t.Errorf("the denial does not name the username and give the line to write: %q", denial)
	}

	setAWSAuth(t, ctx, c, "- rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo\n  username: system:node:{{EC2PrivateDNSName}}"+nodeGroups)
	if _, err := dryRunUntil(t, ctx, c, class, func(_ []string, err error) bool { return err == nil }); err != nil {
		t.Fatalf("still denied after mapping the role in aws-auth: %v", err)
	}
	w, err := create(ctx, c, class)
	requireAllowed(t, err, "configmap-demo")
	deleteAtEnd(t, c, class)
	requireWarnings(t, w, nil, "NodeJoinChecksSkipped")

	t.Run("spot without the service-linked role", func(t *testing.T) {
		np := nodePool("spot", groupEC2NodeClass, "EC2NodeClass", "configmap-demo")
		np.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["requirements"] = []any{
			map[string]any{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []any{"spot", "on-demand"}}}
		w, err := dryRunUntil(t, ctx, c, np, mentions("SpotServiceLinkedRoleMissing"))
		requireAllowed(t, err, "spot")
		requireWarnings(t, w, []string{"[SpotServiceLinkedRoleMissing] spec.template.spec.requirements"})
	})
}
