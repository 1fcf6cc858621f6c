package envtest_test

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestGoodExamplesAreAdmitted applies examples/good in order, as
// `kubectl apply -f examples/good` would: every object is created and no
// warning comes back (the NodePools find their classes).
func TestGoodExamplesAreAdmitted(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	for _, file := range []string{"ec2nodeclass.yaml", "ec2nodeclass-instance-profile.yaml", "eks-auto-mode.yaml", "nodepool.yaml"} {
		for _, d := range readExample(t, e, "good/"+file) {
			o := d.Object
			warnings, err := create(ctx, c, o.DeepCopy(), client.DryRunAll)
			requireAllowed(t, err, d.Source+" (dry run)")
			requireWarnings(t, warnings, nil)
			if len(warnings) > 0 {
				t.Errorf("%s: dry run: unexpected warnings %q", d.Source, warnings)
			}
			warnings, err = create(ctx, c, o)
			requireAllowed(t, err, d.Source)
			deleteAtEnd(t, c, o)
			if len(warnings) > 0 {
				t.Errorf("%s: unexpected warnings %q", d.Source, warnings)
			}
			if !exists(ctx, t, c, o) {
				t.Errorf("%s: admitted but not stored", d.Source)
			}
		}
	}
}

// TestBadExamples applies each examples/bad story and checks the API
// server's answer: the denial's codes (a 403 from the webhook, which also
// proves the manifest passed the real CRD schema first), the warnings, and
// that a server-side dry run gets exactly the same answer.
func TestBadExamples(t *testing.T) {
	e := v1Env.Get(t)
	cases := []struct {
		file     string
		group    string
		denials  []string // "field: Code"; none means admitted
		warnings []string // "[Code] field"
	}{
		{file: "role-arn.yaml", group: groupEC2NodeClass, denials: []string{"spec.role: RoleIsARN"}},
		{file: "role-path-passrole.yaml", group: groupEC2NodeClass,
			denials: []string{"spec.role: PassRoleDenied"}, warnings: []string{"[RoleHasPath] spec.role"}},
		{file: "empty-instance-profile.yaml", group: groupEC2NodeClass, denials: []string{"spec.instanceProfile: InstanceProfileHasNoRole"}},
		{file: "role-trust-missing-ec2.yaml", group: groupEC2NodeClass, denials: []string{"spec.role: RoleTrustMissingEC2"}},
		{file: "nodepool-missing-class.yaml", group: groupNodePool, warnings: []string{"[NodeClassNotFound] spec.template.spec.nodeClassRef"}},
		{file: "subnet-term-typo.yaml", group: groupEC2NodeClass, warnings: []string{"[SelectorTermMatchesNothing] spec.subnetSelectorTerms[1]"}},
		{file: "kubelet-typo.yaml", group: groupEC2NodeClass, denials: []string{"spec.kubelet.maxPod: KubeletConfigInvalid"}},
		{file: "auto-mode-role-path.yaml", group: groupEKS,
			denials: []string{"spec.role: NodeAccessEntryMissing"}, warnings: []string{"[AutoModeRoleHasPath] spec.role"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			ctx := testContext(t)
			c := newClient(t, e)
			docs := readExample(t, e, "bad/"+tc.file)
			if len(docs) != 1 {
				t.Fatalf("examples/bad/%s: want one object per story, got %d", tc.file, len(docs))
			}
			o := docs[0].Object

			dryWarnings, dryErr := create(ctx, c, o.DeepCopy(), client.DryRunAll)
			warnings, err := create(ctx, c, o.DeepCopy())
			if err == nil {
				deleteAtEnd(t, c, o)
			}

			if len(tc.denials) == 0 {
				requireAllowed(t, err, tc.file)
				requireAllowed(t, dryErr, tc.file+" (dry run)")
				if !exists(ctx, t, c, o) {
					t.Errorf("admitted but not stored")
				}
			} else {
				requireDenied(t, e, tc.group, err, tc.denials...)
				if dryErr == nil || dryErr.Error() != err.Error() {
					t.Errorf("dry run answered differently:\n dry run: %v\n real:    %v", dryErr, err)
				}
				if exists(ctx, t, c, o) {
					t.Errorf("denied but stored")
				}
			}
			requireWarnings(t, warnings, tc.warnings)
			if strings := join(dryWarnings); strings != join(warnings) {
				t.Errorf("dry run warned differently:\n dry run: %q\n real:    %q", dryWarnings, warnings)
			}
		})
	}
}

func join(s []string) string {
	out := ""
	for _, x := range s {
		out += x + "\n"
	}
	return out
}
