package rules

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
	return c.cachedVerdict(ctx, NodePoolKind, np.Name, string(np.UID), np.Spec, func(ctx context.Context) Verdict {
		return c.checkNodePool(ctx, np, false)
	})
}

// CheckNodePoolUpdate validates an update of a NodePool: as a create when
// its nodeClassRef changed; when only its requirements did, only what they
// break (an architecture the class has no image for,
// ImageArchitectureMismatch) is refused: the class's findings come back as
// warnings, and the spot check warns as ever.
func (c *Checker) CheckNodePoolUpdate(ctx context.Context, old, np *NodePool) Verdict {
	return c.checkNodePool(ctx, np, sameRef(old.Spec.Template.Spec.NodeClassRef, np.Spec.Template.Spec.NodeClassRef))
}

// requirementsOnly prefixes what a requirements-only update does not
// refuse.
const requirementsOnly = "spec.template.spec.requirements update, not refused"

// checkNodePool is CheckNodePool; reqsOnly marks an update that changed
// the requirements alone. One deadline bounds the class's questions and
// the spot check's together.
func (c *Checker) checkNodePool(ctx context.Context, np *NodePool, reqsOnly bool) Verdict {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
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
		// own are the NodePool's findings about its class: its
		// requirements against the class's images.
		own []Finding
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
			var r *Resolution
			classVerdict, r = c.checkEC2ClassAs(ctx, nc, np, false)
			if r != nil {
				if f, ok := judgePoolImages(np, nc.Name, *r); ok {
					own = append(own, f)
				}
			}
		}
	case EKSNodeClassGK:
		kindName = "NodeClass (eks.amazonaws.com)"
		var nc *NodeClass
		if c.cfg.Classes != nil {
			nc, found, err = c.cfg.Classes.GetNodeClass(ctx, ref.Name)
		}
		if found {
			classVerdict = c.checkNodeClass(ctx, nc)
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
		markUncertain(ctx)
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
	// Refused even on a requirements-only update.
	for _, f := range own {
		v.add(f)
	}
	if f, ok := classInvalid(kindName, ref.Name, broken); ok {
		if reqsOnly {
			var w Verdict
			w.add(f)
			w.demote(requirementsOnly)
			f = w.Warnings[0]
		}
		v.add(f)
	}
	for _, f := range classVerdict.Warnings {
		switch f.Code {
		case IAMUnavailable, IAMStale:
			v.add(f)
		}
	}
	c.checkSpot(ctx, &v, np, gk == EKSNodeClassGK)
	if reqsOnly {
		// IAM's absence does not refuse an update of the requirements.
		var still []Finding
		var demoted Verdict
		for _, f := range v.Denials {
			if f.Code == IAMUnavailable {
				demoted.add(f)
				continue
			}
			still = append(still, f)
		}
		demoted.demote(requirementsOnly)
		v.Denials = still
		v.Warnings = append(v.Warnings, demoted.Warnings...)
	}
	return v
}

// classInvalid is the NodeClassInvalid denial of a NodePool whose class
// has the findings broken; false when there are none.
func classInvalid(kindName, name string, broken []Finding) (Finding, bool) {
	if len(broken) == 0 {
		return Finding{}, false
	}
	lines := make([]string, len(broken))
	for i, f := range broken {
		// Each cause in full is in the finding's Causes; the line
		// keeps every cause's start within the message's bound.
		lines[i] = truncate(f.DenialLine(), 1700/len(broken))
	}
	f := deny(NodeClassInvalid, nodeClassRefPath,
		"%s %s fails its checks, so Karpenter could not launch nodes for this NodePool: %s. Fix the %s first",
		kindName, quote(name), strings.Join(lines, "; "), kindName)
	f.Causes = broken
	return f, true
}

// sameRef reports whether two nodeClassRefs name the same class the same
// way.
func sameRef(a, b *NodeClassReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
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
