package rules

import "github.com/nodeclass-guard/nodeclass-guard/nodeconfig"

// The userData codes (extensions of the contract): spec.userData parsed as
// the class's AMI family reads it (nodeconfig.UserData), each message
// showing the offending line.
const (
	// UserDataInvalid: userData the AMI family cannot read (MIME that does
	// not parse, a NodeConfig nodeadm refuses, TOML that does not parse,
	// an AL2 script without #!, <powershell> tags on Windows).
	UserDataInvalid = Code(nodeconfig.UserDataInvalid)
	// UserDataWrongFamily: a part written for another AMI family (an AL2
	// bootstrap.sh call on AL2023).
	UserDataWrongFamily = Code(nodeconfig.UserDataWrongFamily)
	// UserDataSetsKarpenterField (warn): userData sets what Karpenter sets
	// (cluster name, API endpoint, CA, the bootstrap call).
	UserDataSetsKarpenterField = Code(nodeconfig.UserDataSetsKarpenterField)
	// UserDataFieldIgnored (warn): a NodeConfig field nodeadm does not
	// know and ignores, with the nearest valid name.
	UserDataFieldIgnored = Code(nodeconfig.UserDataFieldIgnored)
)

var userDataPath = specPath.Child("userData")

// checkUserData judges spec.userData for the class's AMI family. Pure: no
// AWS question.
func (c *Checker) checkUserData(v *Verdict, spec EC2NodeClassSpec) {
	if spec.UserData == nil {
		return
	}
	addNodeConfig(v, nodeconfig.UserData(userDataPath, *spec.UserData, effectiveFamily(spec)))
}
