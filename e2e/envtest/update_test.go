package envtest_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestUpdateToBadRoleIsDenied changes an admitted class's role: to an ARN
// (denied), to a path the controller may not pass (denied, with the path
// warning), and to another good form (admitted). A denied update leaves
// the stored object as it was.
func TestUpdateToBadRoleIsDenied(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	o := ec2NodeClass("update-role", role("KarpenterNodeRole-demo"))
	_, err := create(ctx, c, o)
	requireAllowed(t, err, "create")
	deleteAtEnd(t, c, o)

	steps := []struct {
		role     string
		denials  []string
		warnings []string
	}{
		{role: "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", denials: []string{"spec.role: RoleIsARN"}},
		{role: "team/KarpenterNodeRole-team", denials: []string{"spec.role: PassRoleDenied"}, warnings: []string{"[RoleHasPath] spec.role"}},
		{role: "AdminNodeRole", denials: []string{"spec.role: PassRoleDenied"}},
		{role: "OtherNodeRole", denials: []string{"spec.role: PassRoleDenied"}},
		{role: "KarpenterNodeRole-missing", denials: []string{"spec.role: RoleNotFound"}},
	}
	for _, s := range steps {
		cur := get(ctx, t, c, o)
		if err := setNested(cur, s.role, "spec", "role"); err != nil {
			t.Fatal(err)
		}
		dryWarnings, dryErr := update(ctx, c, cur.DeepCopy(), client.DryRunAll)
		warnings, err := update(ctx, c, cur)
		requireDenied(t, e, groupEC2NodeClass, err, s.denials...)
		if dryErr == nil || dryErr.Error() != err.Error() {
			t.Errorf("role %s: dry run answered differently:\n dry run: %v\n real:    %v", s.role, dryErr, err)
		}
		requireWarnings(t, warnings, s.warnings)
		requireWarnings(t, dryWarnings, s.warnings)
		if got := nested(get(ctx, t, c, o), "spec", "role"); got != "KarpenterNodeRole-demo" {
			t.Fatalf("role %s: denied update changed the stored role to %q", s.role, got)
		}
	}

	// From a role to a good instance profile: admitted.
	cur := get(ctx, t, c, o)
	spec := cur.Object["spec"].(map[string]any)
	delete(spec, "role")
	spec["instanceProfile"] = "KarpenterNodeInstanceProfile-demo"
	warnings, err := update(ctx, c, cur)
	requireAllowed(t, err, "switch to instance profile KarpenterNodeInstanceProfile-demo")
	requireWarnings(t, warnings, nil)
}

// TestNodePoolRefUpdates follows a NodePool's nodeClassRef: to a class
// that does not exist yet (admitted with a warning), then to one that
// exists and is valid (admitted, no warning).
func TestNodePoolRefUpdates(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)

	np := nodePool("ref-updates", "karpenter.k8s.aws", "EC2NodeClass", "ref-updates-later")
	warnings, err := create(ctx, c, np)
	requireAllowed(t, err, "NodePool naming a class that does not exist yet")
	deleteAtEnd(t, c, np)
	requireWarnings(t, warnings, []string{"[NodeClassNotFound] spec.template.spec.nodeClassRef"})

	class := ec2NodeClass("ref-updates-later", role("KarpenterNodeRole-demo"))
	_, err = create(ctx, c, class)
	requireAllowed(t, err, "the class, applied next")
	deleteAtEnd(t, c, class)

	good := ec2NodeClass("ref-updates-good", profile("KarpenterNodeInstanceProfile-demo"))
	_, err = create(ctx, c, good)
	requireAllowed(t, err, "a second class")
	deleteAtEnd(t, c, good)

	cur := get(ctx, t, c, np)
	if err := setNested(cur, "ref-updates-good", "spec", "template", "spec", "nodeClassRef", "name"); err != nil {
		t.Fatal(err)
	}
	// serve finds the class through its informer cache, which sees the
	// create a moment after the API server answers it: wait (dry-run)
	// until the watch has delivered it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		w, err := update(ctx, c, cur.DeepCopy(), client.DryRunAll)
		if err != nil || !strings.Contains(strings.Join(w, "\n"), "NodeClassNotFound") {
			break
		}
	}
	warnings, err = update(ctx, c, cur)
	requireAllowed(t, err, "NodePool pointed at an existing valid class")
	requireWarnings(t, warnings, nil, "NodeClassNotFound")
}
