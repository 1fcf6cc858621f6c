package nodeclassguard

import (
	"slices"
	"testing"
)

// TestReasonCodes: the embedded README's table parses into every code the
// contract fixes and the extensions, each with a kind and a text.
func TestReasonCodes(t *testing.T) {
	codes := ReasonCodes()
	var names []string
	for _, c := range codes {
		names = append(names, c.Code)
		if c.When == "" || (c.Kind != "deny" && c.Kind != "warn" && c.Kind != "warn/deny") {
			t.Errorf("row %+v: want a kind (deny, warn, warn/deny) and a text", c)
		}
	}
	for _, want := range []string{
		"RoleInvalidName", "RoleIsARN", "RoleARNMalformed", "RoleCrossAccount", "RoleHasPath",
		"RoleInstanceProfileExclusive", "InstanceProfileInvalidName", "InstanceProfileIsARN", "InstanceProfileNamePrefix",
		"RoleNotFound", "RolePathMismatch", "RoleTrustMissingEC2", "InstanceProfileNotFound", "InstanceProfileHasNoRole",
		"PassRoleDenied", "InstanceProfileActionsDenied", "InstanceProfileReadDenied", "LaunchDenied",
		"NodeClassRefUnsupported", "NodeClassNotFound", "NodeClassInvalid", "IAMUnavailable",
		"IAMStale", "PermissionChecksSkipped", "PermissionContextMissing", "PolicyConditionUnsupported",
		"SelectorTermMatchesNothing", "SelectorMatchesNothing", "CapacityReservationTermMatchesNothing",
		"SubnetSecurityGroupVPCMismatch", "ImageArchitectureMismatch", "ImageFamilyMismatch",
		"SelectorChecksSkipped", "SelectorUpdateStrandsNodes", "SelectorUpdateChanges",
		"TagsExceedLimit", "SpecExceedsLimit", "AWSAuthUsernameWrong",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("the README's table has no %s (has %v)", want, names)
		}
	}
	got := parseCodeTable("# x\n| `A` | deny | not here |\n## Reason codes\n\n| code | kind | when |\n| --- | --- | --- |\n| `B` | warn | a \\| b, `c` |\r\n## Next\n| `C` | deny | nor here |\n")
	if len(got) != 1 || got[0] != (ReasonCode{Code: "B", Kind: "warn", When: "a \\| b, `c`"}) {
		t.Errorf("parseCodeTable: %+v", got)
	}
}
