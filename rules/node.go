package rules

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
)

// checkNode runs the rules on what the node itself is given: spec.kubelet
// (kubelet.go), spec.userData (userdata.go), both pure, and the KMS keys
// of spec.blockDeviceMappings (kms.go). The one call site of the three in
// the class checks.
func (c *Checker) checkNode(ctx context.Context, v *Verdict, nc *EC2NodeClass) {
	c.checkKubelet(v, nc.Spec)
	c.checkUserData(v, nc.Spec)
	c.checkKMS(ctx, v, nc.Spec)
}

// sameNode reports whether an update leaves what the node is given as it
// was.
func sameNode(old, cur EC2NodeClassSpec) bool {
	return equality.Semantic.DeepEqual(old.Kubelet, cur.Kubelet) &&
		equality.Semantic.DeepEqual(old.UserData, cur.UserData) &&
		equality.Semantic.DeepEqual(old.BlockDeviceMappings, cur.BlockDeviceMappings)
}
