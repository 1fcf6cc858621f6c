package rules

// classRules are the rules of a node class's node identity, in the order
// their findings are reported: one line a rule. The runner computes their
// rounds from what they need and give (runner.go); the order here is only
// the report's.
var classRules = []*Rule{
	permissionsRule,
	roleRule,
	profileRule,
	profileReadRule,
	profileRoleRule,
	passRoleRule,
	profileActionsRule,
	launchRule,
	clusterRule,
	joinRule,
	autoModeRule,
}

// classRunner runs classRules.
var classRunner = newRunner(classRules)
