package rules

// ReservedCapacityUnselected (warn): a NodePool allows only reserved
// capacity (karpenter.sh/capacity-type: reserved, Karpenter 1.3 and
// later), and its EC2NodeClass selects no capacity reservation: Karpenter
// offers reserved capacity only in the reservations a class selects, so
// it could launch no node for the NodePool.
const ReservedCapacityUnselected Code = "ReservedCapacityUnselected"

// reservedRule: a NodePool that allows only reserved capacity names a
// class selecting reservations. It asks nothing: the NodePool's
// requirements and its class, already read.
var reservedRule = &Rule{
	Name:   "reserved capacity",
	Codes:  []Code{ReservedCapacityUnselected},
	Fields: []string{"spec.template.spec.requirements", "spec.template.spec.nodeClassRef"},
	Needs:  []fact{factClass},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		nc := o.pool.EC2NodeClass
		if nc == nil || len(nc.Spec.CapacityReservationSelectorTerms) > 0 {
			return
		}
		reqs := o.np.Spec.Template.Spec.Requirements
		if types := allowedValues(reqs, capacityTypeKey, []string{"on-demand", "reserved", "spot"}); len(types) != 1 || types[0] != "reserved" {
			return
		}
		v.add(warn(ReservedCapacityUnselected, requirementsPath,
			"the NodePool allows only reserved capacity, and EC2NodeClass %s selects no capacity reservation: Karpenter launches reserved capacity only in the reservations a class selects, so it could launch no node. Add spec.capacityReservationSelectorTerms to the class, or allow on-demand",
			shown(nc.Name)))
	},
}
