package envtest_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The NodePool hole, closed: the rules read a NodePool's requirements (the
// architectures the class's images must fit, whether spot is launched), so
// an UPDATE that changes only them reaches the webhook (matchConditions
// from rules.Reads) and is judged against them.

// setRequirements replaces a NodePool's spec.template.spec.requirements.
func setRequirements(t *testing.T, np *unstructured.Unstructured, reqs ...map[string]any) {
	t.Helper()
	list := make([]any, len(reqs))
	for i, r := range reqs {
		list[i] = r
	}
	if err := unstructured.SetNestedSlice(np.Object, list, "spec", "template", "spec", "requirements"); err != nil {
		t.Fatal(err)
	}
}

func requirement(key string, values ...string) map[string]any {
	vs := make([]any, len(values))
	for i, v := range values {
		vs[i] = v
	}
	return map[string]any{"key": key, "operator": "In", "values": vs}
}

// TestNodePoolRequirementsUpdate: switching a NodePool whose class has
// arm64 images only to amd64 is refused; back to arm64 is admitted.
func TestNodePoolRequirementsUpdate(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)

	class := selectorClass("npu-arm", map[string]any{"amiFamily": "AL2023", "amiSelectorTerms": []any{tags("team", "platform")}})
	if _, err := create(ctx, c, class); err != nil {
		t.Fatal(err)
	}
	deleteAtEnd(t, c, class)
	np := nodePool("npu-arm-pool", groupEC2NodeClass, "EC2NodeClass", "npu-arm")
	setRequirements(t, np, requirement("kubernetes.io/arch", "arm64"))
	// serve sees the class when its watch delivers it.
	if _, err := dryRunUntil(t, ctx, c, np, func(_ []string, err error) bool { return err == nil }); err != nil {
		t.Fatalf("an arm64 NodePool on an arm64 class: %v", err)
	}
	if _, err := create(ctx, c, np); err != nil {
		t.Fatal(err)
	}
	deleteAtEnd(t, c, np)

	t.Run("requirements to an architecture the class has no image for are refused", func(t *testing.T) {
		cur := get(ctx, t, c, np)
		setRequirements(t, cur, requirement("kubernetes.io/arch", "amd64"))
		_, err := update(ctx, c, cur)
		lines := requireDenied(t, e, groupNodePool, err, "spec.template.spec.requirements: ImageArchitectureMismatch")
		if all := strings.Join(lines, "\n"); !strings.Contains(all, `EC2NodeClass "npu-arm" selects images of arm64 only`) || strings.Contains(all, "NodeClassInvalid") {
			t.Errorf("the NodePool's own finding should name the class's architectures, and the class is not invalid: %q", lines)
		}
	})
	t.Run("requirements the class's images fit are admitted", func(t *testing.T) {
		cur := get(ctx, t, c, np)
		setRequirements(t, cur, requirement("kubernetes.io/arch", "arm64"), requirement("karpenter.sh/capacity-type", "on-demand"))
		_, err := update(ctx, c, cur, client.DryRunAll)
		requireAllowed(t, err, "arm64 on-demand requirements")
	})
}

// TestNodePoolSpotUpdate: in the account without the spot service-linked
// role, an update switching a NodePool to spot, and nothing else, warns.
func TestNodePoolSpotUpdate(t *testing.T) {
	e := configMapEnv.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	setAWSAuth(t, ctx, c, "- rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo\n  username: system:node:{{EC2PrivateDNSName}}"+nodeGroups)

	class := ec2NodeClass("npu-spot", role("KarpenterNodeRole-demo"))
	if _, err := dryRunUntil(t, ctx, c, class, func(_ []string, err error) bool { return err == nil }); err != nil {
		t.Fatalf("class: %v", err)
	}
	if _, err := create(ctx, c, class); err != nil {
		t.Fatal(err)
	}
	deleteAtEnd(t, c, class)
	np := nodePool("npu-spot-pool", groupEC2NodeClass, "EC2NodeClass", "npu-spot")
	w, err := dryRunUntil(t, ctx, c, np, func(_ []string, err error) bool { return err == nil })
	requireAllowed(t, err, "on-demand NodePool")
	requireWarnings(t, w, nil, "SpotServiceLinkedRoleMissing")
	if _, err := create(ctx, c, np); err != nil {
		t.Fatal(err)
	}
	deleteAtEnd(t, c, np)

	cur := get(ctx, t, c, np)
	setRequirements(t, cur, requirement("kubernetes.io/arch", "amd64"), requirement("karpenter.sh/capacity-type", "spot", "on-demand"))
	w, err = update(ctx, c, cur)
	requireAllowed(t, err, "spot requirements")
	requireWarnings(t, w, []string{"[SpotServiceLinkedRoleMissing] spec.template.spec.requirements"})
}
