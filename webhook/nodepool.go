package webhook

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CheckNodePool validates a NodePool's nodeClassRef: the class it names must
// be one this webhook knows, and, when it exists, must pass its own checks.
func (c *Checker) CheckNodePool(ctx context.Context, np *NodePool) Verdict {
	if v, out := outOfBounds(boundsNodePool(np)); out {
		return v
	}
	var v Verdict
	ref := np.Spec.Template.Spec.NodeClassRef
	if ref == nil {
		return v
	}
	gk := ref.GroupKind()
	var (
		kindName     string
		classVerdict Verdict
		found        bool
		err          error
	)
	switch gk {
	case EC2NodeClassGK:
		kindName = "EC2NodeClass"
		var nc *EC2NodeClass
		if c.cfg.Classes != nil {
			nc, found, err = c.cfg.Classes.GetEC2NodeClass(ctx, ref.Name)
		}
		if found {
			// Whether its questions come first in the IAM call budget is
			// the caller's to say (the admission adapter: a NodePool the
			// cluster has, by name and UID); a request's name is no proof.
			classVerdict = c.checkEC2Class(ctx, nc, np)
		}
	case EKSNodeClassGK:
		kindName = "NodeClass (eks.amazonaws.com)"
		var nc *NodeClass
		if c.cfg.Classes != nil {
			nc, found, err = c.cfg.Classes.GetNodeClass(ctx, ref.Name)
		}
		if found {
			classVerdict = c.CheckNodeClass(ctx, nc)
		}
	default:
		if f, ok := versionedGroup(gk); ok {
			v.add(f)
			return v
		}
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
	v.IAMTime = classVerdict.IAMTime
	// IAM's absence is reported as such, not as a broken class.
	var broken []Finding
	for _, f := range classVerdict.Denials {
		if f.Code == IAMUnavailable {
			v.add(f)
			continue
		}
		broken = append(broken, f)
	}
	if len(broken) > 0 {
		lines := make([]string, len(broken))
		for i, f := range broken {
			// Each cause in full is in the finding's Causes; the line
			// keeps every cause's start within the message's bound.
			lines[i] = truncate(f.DenialLine(), 1700/len(broken))
		}
		f := deny(NodeClassInvalid, nodeClassRefPath,
			"%s %s fails its checks, so Karpenter could not launch nodes for this NodePool: %s. Fix the %s first",
			kindName, quote(ref.Name), strings.Join(lines, "; "), kindName)
		f.Causes = broken
		v.add(f)
	}
	for _, f := range classVerdict.Warnings {
		switch f.Code {
		case IAMUnavailable, IAMStale:
			v.add(f)
		}
	}
	c.checkSpot(ctx, &v, np, gk == EKSNodeClassGK)
	return v
}

func groupKindString(gk interface{ String() string }) string {
	s := gk.String()
	if s == "" || s == "." {
		return "(empty group/kind)"
	}
	return shown(s)
}

// versionedGroup explains a nodeClassRef whose group carries a version
// (karpenter.k8s.aws/v1, as an upstream example once had): Karpenter's
// schema rejects it, and the class it means is plain to see.
func versionedGroup(gk schema.GroupKind) (Finding, bool) {
	group, version, ok := strings.Cut(gk.Group, "/")
	if !ok {
		return Finding{}, false
	}
	for _, known := range []schema.GroupKind{EC2NodeClassGK, EKSNodeClassGK} {
		if group == known.Group && gk.Kind == known.Kind {
			return warn(NodeClassRefUnsupported, nodeClassRefPath,
				"group %s carries the version %s; a nodeClassRef's group has no version, and Karpenter's schema rejects this one. Set group: %s",
				shown(gk.Group), shown(version), group), true
		}
	}
	return Finding{}, false
}
