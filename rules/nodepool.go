package rules

import (
	"context"
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// requirementsOnly prefixes what a requirements-only update does not
// refuse.
const requirementsOnly = "spec.template.spec.requirements update, not refused"

// poolClassRule reads the class a NodePool names, through the manager's
// cache.
var poolClassRule = &Rule{
	Name:  "NodePool's class",
	Reads: []string{"spec.template.spec.nodeClassRef"},
	Gives: []fact{factClass},
	Plan: func(c *Checker, o *object, q *Questions) {
		ref := o.np.Spec.Template.Spec.NodeClassRef
		kind := QueryEC2NodeClass
		if ref.GroupKind() == EKSNodeClassGK {
			kind = QueryNodeClass
		}
		q.add("class", Query{Kind: kind, Name: ref.Name})
	},
	Judge: func(c *Checker, o *object, a Answers, _ *Verdict) {
		o.pool, _ = a.one("class")
	},
}

// checkNodePool is CheckNodePool under the caller's one deadline, which
// bounds the class's questions and the spot check's together; reqsOnly
// marks an update that changed the requirements alone.
func (c *Checker) checkNodePool(ctx context.Context, np *NodePool, reqsOnly bool) Verdict {
	var v Verdict
	ref := np.Spec.Template.Spec.NodeClassRef
	if ref == nil {
		return v
	}
	gk := ref.GroupKind()
	var kindName string
	switch gk {
	case EC2NodeClassGK:
		kindName = "EC2NodeClass"
	case EKSNodeClassGK:
		kindName = "NodeClass (eks.amazonaws.com)"
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
	pool := &object{np: np}
	poolClassRunner.run(ctx, c, pool, &v)
	switch err := pool.pool.Err; {
	case errors.Is(err, authz.ErrNotFound):
		v.add(warn(NodeClassNotFound, nodeClassRefPath,
			"%s %s does not exist (yet); Karpenter will not launch nodes for this NodePool until it does", kindName, quote(ref.Name)))
		return v
	case err != nil:
		v.add(warn(NodeClassNotFound, nodeClassRefPath,
			"%s %s could not be read (%s); the NodePool was admitted without checking it", kindName, quote(ref.Name), truncate(oneLine(err.Error()), 100)))
		return v
	}
	var (
		classVerdict Verdict
		// own are the NodePool's findings about its class: its
		// requirements against the class's images.
		own []Finding
	)
	if nc := pool.pool.EC2NodeClass; nc != nil {
		// Whether its questions come first in the IAM call budget is the
		// caller's to say (the admission adapter: a NodePool the cluster
		// has, by name and UID); a request's name is no proof.
		var r *Resolution
		classVerdict, r = c.judgeEC2Class(ctx, c.ec2Object(nc, np, true, false, true, nil))
		if r != nil {
			if f, ok := judgePoolImages(np, nc.Name, *r); ok {
				own = append(own, f)
			}
		}
	} else {
		classVerdict = c.judgeNodeClass(ctx, c.autoModeObject(pool.pool.NodeClass, true, false))
	}
	v.IAMTime += classVerdict.IAMTime
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
	spot := &object{np: np, spot: c.cfg.IAM != nil && allowsSpot(np.Spec.Template.Spec.Requirements)}
	spot.spotAuto = spot.spot && gk == EKSNodeClassGK
	spotRunner.run(ctx, c, spot, &v)
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
