package webhook

import (
	"context"
	"fmt"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// CheckNodePool validates a NodePool's nodeClassRef: the class it names must
// be one this webhook knows, and, when it exists, must pass its own checks.
func (c *Checker) CheckNodePool(ctx context.Context, np *NodePool) Verdict {
	var v Verdict
	ref := np.Spec.Template.Spec.NodeClassRef
	if ref == nil {
		return v
	}
	gk := ref.GroupKind()
	var (
		kindName string
		class    Verdict
		found    bool
		err      error
	)
	switch gk {
	case EC2NodeClassGK:
		kindName = "EC2NodeClass"
		var nc *EC2NodeClass
		if c.Classes != nil {
			nc, found, err = c.Classes.GetEC2NodeClass(ctx, ref.Name)
		}
		if found {
			// A class the cluster has: its questions come first in the IAM
			// call budget.
			class = c.checkClass(authz.WithPriority(ctx), nc.Name, nc.Spec.Role, nc.Spec.InstanceProfile, false, np.Name)
		}
	case EKSNodeClassGK:
		kindName = "NodeClass (eks.amazonaws.com)"
		var nc *NodeClass
		if c.Classes != nil {
			nc, found, err = c.Classes.GetNodeClass(ctx, ref.Name)
		}
		if found {
			class = c.CheckNodeClass(authz.WithPriority(ctx), nc)
		}
	default:
		v.add(warn(NodeClassRefUnsupported, nodeClassRefPath,
			"%s %s is not a kind nodeclass-guard validates (it checks karpenter.k8s.aws EC2NodeClass and eks.amazonaws.com NodeClass); its IAM settings were not checked",
			groupKindString(gk), quote(ref.Name)))
		return v
	}
	if err != nil {
		v.add(warn(NodeClassNotFound, nodeClassRefPath,
			"%s %s could not be read (%s); the NodePool was admitted without checking it", kindName, quote(ref.Name), truncate(oneLine(err.Error()), 100)))
		return v
	}
	if !found {
		v.add(warn(NodeClassNotFound, nodeClassRefPath,
			"%s %s does not exist (yet); Karpenter will not launch nodes for this NodePool until it does", kindName, quote(ref.Name)))
		return v
	}
	v.IAMTime = class.IAMTime
	// IAM's absence is reported as such, not as a broken class.
	var broken []string
	for _, f := range class.Denials {
		if f.Code == IAMUnavailable {
			v.add(f)
			continue
		}
		broken = append(broken, fmt.Sprintf("%s: [%s] %s", f.Field, f.Code, oneLine(f.Message)))
	}
	if len(broken) > 0 {
		v.add(deny(NodeClassInvalid, nodeClassRefPath,
			"%s %s fails its checks, so Karpenter could not launch nodes for this NodePool: %s. Fix the %s first",
			kindName, quote(ref.Name), strings.Join(broken, "; "), kindName))
	}
	for _, f := range class.Warnings {
		switch f.Code {
		case IAMUnavailable, IAMStale:
			v.add(f)
		}
	}
	return v
}

func groupKindString(gk interface{ String() string }) string {
	s := gk.String()
	if s == "" || s == "." {
		return "(empty group/kind)"
	}
	return shown(s)
}
