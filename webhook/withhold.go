package webhook

import "github.com/nodeclass-guard/nodeclass-guard/rules"

// permissionCodes are the findings about the Karpenter controller's own
// permissions: their messages name the controller role's ARN and quote its
// policies (which policy and statement denied, which resources its
// statements do cover).
var permissionCodes = map[rules.Code]bool{
	rules.PassRoleDenied:               true,
	rules.InstanceProfileActionsDenied: true,
	rules.InstanceProfileReadDenied:    true,
	rules.LaunchDenied:                 true,
}

// withholdForUnknownIdentity shortens the permission findings of a verdict
// whose node role or instance profile does not exist, in the webhook's
// answers (`check`, run by the class's author, keeps them whole). Anyone
// who can reach the webhook port can send such a class, naming any role:
// without this,
// a name made up on the spot would be answered with the controller role's
// ARN and its policies' names and patterns. Whoever applies such a class
// must fix spec.role (or spec.instanceProfile) first anyway; the code
// stays, so they know a permission problem waits, and once the class names
// an identity that exists, the same findings give every detail.
func withholdForUnknownIdentity(v *rules.Verdict) {
	unknown := ""
	for _, f := range v.Denials {
		switch f.Code {
		case rules.RoleNotFound:
			unknown = "spec.role"
		case rules.InstanceProfileNotFound:
			unknown = "spec.instanceProfile"
		}
	}
	if unknown == "" {
		return
	}
	for _, fs := range [][]rules.Finding{v.Denials, v.Warnings} {
		for i := range fs {
			if permissionCodes[fs[i].Code] {
				fs[i].Message = "the Karpenter controller's role is missing permissions Karpenter needs for this class. Fix " + unknown +
					" first: once it names an existing " + map[string]string{"spec.role": "role", "spec.instanceProfile": "instance profile"}[unknown] +
					", this finding names the actions, the policy and the fix"
			}
		}
	}
}
