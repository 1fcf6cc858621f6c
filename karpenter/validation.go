package karpenter

import "strings"

// The reasons Karpenter's nodeclass validation (1.3 and later) sets on
// ValidationSucceeded=False when a dry-run is denied (v1.3.0 and later
// pkg/controllers/nodeclass/validation.go, ConditionReason*AuthFailed).
const (
	ReasonCreateFleetAuthCheckFailed          = "CreateFleetAuthCheckFailed"
	ReasonCreateLaunchTemplateAuthCheckFailed = "CreateLaunchTemplateAuthCheckFailed"
	ReasonRunInstancesAuthCheckFailed         = "RunInstancesAuthCheckFailed"
)

// validationOrder is the order in which version v's validation makes its
// calls: the first denied one is the condition's reason.
func validationOrder(v Version) []struct{ call, reason string } {
	fleet := struct{ call, reason string }{"CreateFleet", ReasonCreateFleetAuthCheckFailed}
	lt := struct{ call, reason string }{"CreateLaunchTemplate", ReasonCreateLaunchTemplateAuthCheckFailed}
	run := struct{ call, reason string }{"RunInstances", ReasonRunInstancesAuthCheckFailed}
	if v.atLeast(7) {
		return []struct{ call, reason string }{lt, fleet, run}
	}
	return []struct{ call, reason string }{fleet, lt, run}
}

// ValidationReason is the reason Karpenter v sets on the class's
// ValidationSucceeded=False condition when the requests denied are denied:
// the reason of the first validation call, in v's order, one of whose
// requests is denied (a CreateTags request belongs to the call it tags,
// through ec2:CreateAction). "" when v has no validation or none of denied
// is the validation's.
func ValidationReason(v Version, denied []Request) string {
	if !v.atLeast(3) {
		return ""
	}
	failed := map[string]bool{}
	for _, r := range denied {
		if r.Step == StepValidation {
			failed[strings.TrimSuffix(r.Call, " (dry-run)")] = true
		}
	}
	for _, c := range validationOrder(v) {
		if failed[c.call] {
			return c.reason
		}
	}
	return ""
}

// KubeletFreeForm reports whether Karpenter v's EC2NodeClass takes
// spec.kubelet as a free-form map that its controller validates, reporting
// a refused one as ValidationSucceeded=False (1.15 and later: v1.15.1
// pkg/apis/v1/kubeletconfiguration_validation.go and
// pkg/controllers/nodeclass/validation.go). Before 1.15 the CRD types
// spec.kubelet and the API server checks it at apply time.
func KubeletFreeForm(v Version) bool { return v.atLeast(15) }
