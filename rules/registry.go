package rules

// The registries: the rules of each kind, one line a rule, in the order
// their findings are reported. The runner computes their rounds from what
// they need and give (runner.go); the order here is only the report's.

// classRules are the rules of a node class: an EC2NodeClass, or an EKS
// Auto Mode NodeClass (the rules that do not apply to one ask and find
// nothing).
var classRules = []*Rule{
	// The node identity: spec.role or spec.instanceProfile (demoted
	// together on a tags-only update).
	formatRule,
	permissionsRule,
	roleRule,
	profileRule,
	profileReadRule,
	profileRoleRule,
	passRoleRule,
	profileActionsRule,
	launchKeysRule,
	launchRule,
	clusterRule,
	joinRule,
	autoModeRule,
	identityNotesRule,
	// The selector terms.
	termsRule,
	imagesRule,
	poolsRule,
	selectorsRule,
	selectorNotesRule,
	// What the node is given.
	kubeletRule,
	userDataRule,
	kmsKeysRule,
	kmsRule,
	// The update guard: the old selectors against the class's NodeClaims.
	oldTermsRule,
	oldImagesRule,
	claimsRule,
	updateRule,
	// Stale answers, once for the object.
	staleRule,
}

// poolRules are the rules of a NodePool: the class it names (whose own
// rules run under the NodePool's deadline), and spot.
var poolRules = []*Rule{
	poolClassRule,
	poolRule,
	reservedRule,
	clusterRule,
	spotRule,
	staleRule,
}

var (
	classRunner = newRunner(classRules, nil)
	poolRunner  = newRunner(poolRules, classRunner)
)
