package rules

import (
	"context"
	"testing"
)

// TestReservedCapacityUnselected: a NodePool allowing only reserved
// capacity is warned when its class selects no reservation, and only
// then.
func TestReservedCapacityUnselected(t *testing.T) {
	withTerms := ec2Class("with-terms", "KarpenterNodeRole-demo", "")
	withTerms.Spec.CapacityReservationSelectorTerms = []SelectorTerm{{ID: "cr-0demo"}}
	classes := testClasses()
	classes.ec2["with-terms"] = withTerms
	c := NewChecker(Config{Classes: classes})
	pool := func(class string, reqs ...NodeSelectorRequirement) *NodePool {
		np := nodePool("p", refEC2(class))
		np.Spec.Template.Spec.Requirements = reqs
		return np
	}
	capacity := func(op string, values ...string) NodeSelectorRequirement {
		return NodeSelectorRequirement{Key: capacityTypeKey, Operator: op, Values: values}
	}
	for _, tc := range []struct {
		name string
		np   *NodePool
		want bool
	}{
		{"reserved only, no terms", pool("default", capacity("In", "reserved")), true},
		{"everything but reserved excluded", pool("default", capacity("NotIn", "spot", "on-demand")), true},
		{"reserved or on-demand", pool("default", capacity("In", "reserved", "on-demand")), false},
		{"no capacity-type requirement (on-demand)", pool("default"), false},
		{"reserved only, the class selects reservations", pool("with-terms", capacity("In", "reserved")), false},
		{"an EKS Auto Mode class", pool("eks-default", capacity("In", "reserved")), false},
	} {
		if tc.name == "an EKS Auto Mode class" {
			tc.np.Spec.Template.Spec.NodeClassRef = refEKS("eks-default")
		}
		v := c.CheckNodePool(context.Background(), tc.np)
		got := false
		for _, f := range v.Warnings {
			got = got || (f.Code == ReservedCapacityUnselected && f.Field.String() == "spec.template.spec.requirements")
		}
		if got != tc.want {
			t.Errorf("%s: ReservedCapacityUnselected %v, want %v (warnings %v)", tc.name, got, tc.want, v.WarningLines())
		}
	}
}
