package envtest_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestV1beta1 runs against Karpenter 1.0.x's CRDs, which serve v1beta1
// next to v1: the webhook rules name both versions, and a v1beta1 object
// is validated like a v1 one (matchPolicy Equivalent would also route it if
// the rules named v1 only).
func TestV1beta1(t *testing.T) {
	e := v1beta1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)

	good := v1beta1EC2NodeClass("beta-good", role("KarpenterNodeRole-demo"))
	warnings, err := create(ctx, c, good)
	requireAllowed(t, err, "v1beta1 EC2NodeClass with a good role")
	deleteAtEnd(t, c, good)
	requireWarnings(t, warnings, nil)

	cases := []struct {
		name     string
		obj      *unstructured.Unstructured
		group    string
		denials  []string
		warnings []string
	}{
		{name: "role ARN", obj: v1beta1EC2NodeClass("beta-role-arn", role("arn:aws:iam::111122223333:role/KarpenterNodeRole-demo")),
			group: groupEC2NodeClass, denials: []string{"spec.role: RoleIsARN"}},
		{name: "role path not passable", obj: v1beta1EC2NodeClass("beta-role-path", role("team/KarpenterNodeRole-team")),
			group: groupEC2NodeClass, denials: []string{"spec.role: PassRoleDenied"}, warnings: []string{"[RoleHasPath] spec.role"}},
		{name: "empty instance profile", obj: v1beta1EC2NodeClass("beta-empty-profile", profile("EmptyProfile")),
			group: groupEC2NodeClass, denials: []string{"spec.instanceProfile: InstanceProfileHasNoRole"}},
		{name: "NodePool naming a missing class", obj: v1beta1NodePool("beta-missing-class", "beta-gpu"),
			group: groupNodePool, warnings: []string{"[NodeClassNotFound] spec.template.spec.nodeClassRef"}},
		{name: "NodePool naming a good class", obj: v1beta1NodePool("beta-pool", "beta-good"), group: groupNodePool},
		// v1 objects are served by the same CRDs and validated too.
		{name: "v1 role ARN", obj: ec2NodeClass("beta-v1-role-arn", role("arn:aws:iam::111122223333:role/KarpenterNodeRole-demo")),
			group: groupEC2NodeClass, denials: []string{"spec.role: RoleIsARN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dryWarnings, dryErr := create(ctx, c, tc.obj.DeepCopy(), client.DryRunAll)
			warnings, err := create(ctx, c, tc.obj)
			if err == nil {
				deleteAtEnd(t, c, tc.obj)
			}
			if len(tc.denials) > 0 {
				requireDenied(t, e, tc.group, err, tc.denials...)
				if dryErr == nil || dryErr.Error() != err.Error() {
					t.Errorf("dry run answered differently:\n dry run: %v\n real:    %v", dryErr, err)
				}
			} else {
				requireAllowed(t, err, tc.name)
				requireAllowed(t, dryErr, tc.name+" (dry run)")
			}
			requireWarnings(t, warnings, tc.warnings)
			requireWarnings(t, dryWarnings, tc.warnings)
			if len(tc.warnings) == 0 && len(warnings) > 0 {
				t.Errorf("unexpected warnings %q", warnings)
			}
		})
	}
}

// v1beta1EC2NodeClass is a valid karpenter.k8s.aws/v1beta1 EC2NodeClass:
// amiFamily was required then.
func v1beta1EC2NodeClass(name string, iam map[string]any) *unstructured.Unstructured {
	spec := map[string]any{
		"amiFamily":                  "AL2023",
		"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
		"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
	}
	for k, v := range iam {
		spec[k] = v
	}
	return obj("karpenter.k8s.aws/v1beta1", "EC2NodeClass", name, spec)
}

// v1beta1NodePool is a karpenter.sh/v1beta1 NodePool: its nodeClassRef
// carried apiVersion instead of group.
func v1beta1NodePool(name, class string) *unstructured.Unstructured {
	return obj("karpenter.sh/v1beta1", "NodePool", name, map[string]any{
		"template": map[string]any{"spec": map[string]any{
			"nodeClassRef": map[string]any{"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "name": class},
			"requirements": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}},
		}},
	})
}
