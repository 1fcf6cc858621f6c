package envtest_test

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestEKSNodeClass covers EKS Auto Mode's NodeClass: format and IAM state
// checks apply, the Karpenter controller's permission checks do not (EKS,
// not the controller, launches its nodes: the cluster role's permissions
// and the node role's access entry are checked instead, join_test.go).
func TestEKSNodeClass(t *testing.T) {
	e := v1Env.Get(t)
	cases := []struct {
		name     string
		iam      map[string]any
		denials  []string
		warnings []string
		forbid   []string
	}{
		{name: "eks-good-role", iam: role("EKSAutoNodeRole-demo")},
		{name: "eks-role-arn", iam: role("arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"), denials: []string{"spec.role: RoleIsARN"}},
		{name: "eks-role-notrust", iam: role("EKSAutoNodeRole-notrust"), denials: []string{"spec.role: RoleTrustMissingEC2"}},
		{name: "eks-role-missing", iam: role("AmazonEKSAutoNodeRole"), denials: []string{"spec.role: RoleNotFound"}},
		{name: "eks-role-path", iam: role("team/KarpenterNodeRole-team"), warnings: []string{"[RoleHasPath] spec.role"},
			denials: []string{"spec.role: NodeAccessEntryWrongType", "spec.role: AutoModePassRoleDenied"}, forbid: []string{"PassRoleDenied"}},
		{name: "eks-profile-eks-prefix", iam: profile("eks-auto-demo"), forbid: []string{"InstanceProfileNamePrefix"}},
		{name: "eks-profile-other-prefix", iam: profile("AutoNodeProfile-demo"), warnings: []string{"[InstanceProfileNamePrefix] spec.instanceProfile"}},
		{name: "eks-profile-empty", iam: profile("EmptyProfile"), denials: []string{"spec.instanceProfile: InstanceProfileHasNoRole"}},
		{name: "eks-both", iam: map[string]any{"role": "KarpenterNodeRole-demo", "instanceProfile": "eks-auto-demo"}, denials: []string{"spec: RoleInstanceProfileExclusive"}},
		{name: "eks-neither", iam: nil, denials: []string{"spec: RoleInstanceProfileExclusive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := newClient(t, e)
			o := eksNodeClass(tc.name, tc.iam)
			dryWarnings, dryErr := create(ctx, c, o.DeepCopy(), client.DryRunAll)
			warnings, err := create(ctx, c, o)
			if err == nil {
				deleteAtEnd(t, c, o)
			}
			if len(tc.denials) > 0 {
				requireDenied(t, e, groupEKS, err, tc.denials...)
				if dryErr == nil || dryErr.Error() != err.Error() {
					t.Errorf("dry run answered differently:\n dry run: %v\n real:    %v", dryErr, err)
				}
			} else {
				requireAllowed(t, err, tc.name)
				requireAllowed(t, dryErr, tc.name+" (dry run)")
			}
			requireWarnings(t, warnings, tc.warnings, tc.forbid...)
			requireWarnings(t, dryWarnings, tc.warnings, tc.forbid...)
		})
	}
}
