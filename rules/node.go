package rules

import (
	"k8s.io/apimachinery/pkg/api/equality"
)

// The rules on what the node itself is given: spec.kubelet (kubelet.go)
// and spec.userData (userdata.go), both pure, and the KMS keys of
// spec.blockDeviceMappings (kms.go).

// kubeletRule judges spec.kubelet.
var kubeletRule = &Rule{
	Name:   "kubelet",
	Fields: []string{"spec.kubelet", "spec.amiFamily", "spec.amiSelectorTerms"},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if o.node && o.ec2 != nil {
			c.checkKubelet(v, o.ec2.Spec)
		}
	},
}

// userDataRule judges spec.userData.
var userDataRule = &Rule{
	Name:   "userData",
	Fields: []string{"spec.userData", "spec.amiFamily", "spec.amiSelectorTerms"},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if o.node && o.ec2 != nil {
			c.checkUserData(v, o.ec2.Spec)
		}
	},
}

// sameNode reports whether an update leaves what the node is given as it
// was.
func sameNode(old, cur EC2NodeClassSpec) bool {
	return equality.Semantic.DeepEqual(old.Kubelet, cur.Kubelet) &&
		equality.Semantic.DeepEqual(old.UserData, cur.UserData) &&
		equality.Semantic.DeepEqual(old.BlockDeviceMappings, cur.BlockDeviceMappings)
}
