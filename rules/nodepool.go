package rules

import (
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// requirementsOnly prefixes what a requirements-only update does not
// refuse.
const requirementsOnly = "spec.template.spec.requirements update, not refused"

// poolClassRule reads the class a NodePool names, through the manager's
// cache: a kind nodeclass-guard does not judge is said so, and a class
// the cluster does not have (yet) too.
var poolClassRule = &Rule{
	Name:   "NodePool's class",
	Codes:  []Code{NodeClassRefUnsupported, NodeClassNotFound},
	Fields: []string{"spec.template.spec.nodeClassRef"},
	Gives:  []fact{factClass},
	Plan: func(c *Checker, o *subject, q *Questions) {
		ref := o.np.Spec.Template.Spec.NodeClassRef
		if ref == nil {
			return
		}
		switch ref.GroupKind() {
		case EC2NodeClassGK:
			q.query("class", Query{Kind: QueryEC2NodeClass, Name: ref.Name})
		case EKSNodeClassGK:
			q.query("class", Query{Kind: QueryNodeClass, Name: ref.Name})
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		ref := o.np.Spec.Template.Spec.NodeClassRef
		if ref == nil {
			return
		}
		ans, asked := a.one("class")
		o.pool = ans
		gk := ref.GroupKind()
		switch {
		case !asked:
			o.pool.Err = errNotJudged
			if f, ok := versionedGroup(gk); ok {
				v.add(f)
				return
			}
			v.add(warn(NodeClassRefUnsupported, nodeClassRefPath,
				"%s %s is not a kind nodeclass-guard validates (it checks karpenter.k8s.aws EC2NodeClass and eks.amazonaws.com NodeClass); its IAM settings were not checked",
				groupKindString(gk), quote(ref.Name)))
		case errors.Is(ans.Err, authz.ErrNotFound):
			v.add(warn(NodeClassNotFound, nodeClassRefPath,
				"%s %s does not exist (yet); Karpenter will not launch nodes for this NodePool until it does", kindName(gk), quote(ref.Name)))
		case ans.Err != nil:
			v.add(warn(NodeClassNotFound, nodeClassRefPath,
				"%s %s could not be read (%s); the NodePool was admitted without checking it", kindName(gk), quote(ref.Name), truncate(oneLine(ans.Err.Error()), 100)))
		}
	},
}

// errNotJudged marks the class of a kind nodeclass-guard does not judge.
var errNotJudged = errors.New("not a kind nodeclass-guard judges")

// kindName names the kind of a class for a message.
func kindName(gk schema.GroupKind) string {
	if gk == EKSNodeClassGK {
		return "NodeClass (eks.amazonaws.com)"
	}
	return "EC2NodeClass"
}

// poolRule judges a NodePool by its class: the class's own checks (run,
// under the NodePool's deadline, with the NodePool's name as the launch
// tag) make it NodeClassInvalid, its requirements must fit the class's
// images (refused even on a requirements-only update), and IAM's absence
// is reported as such, not as a broken class.
var poolRule = &Rule{
	Name:   "NodePool",
	Codes:  []Code{NodeClassInvalid, ImageArchitectureMismatch, IAMUnavailable, IAMStale},
	Fields: []string{"spec.template.spec.nodeClassRef", "spec.template.spec.requirements"},
	Needs:  []fact{factClass},
	Class: func(c *Checker, o *subject) *subject {
		switch {
		case o.pool.Err != nil:
			return nil
		case o.pool.EC2NodeClass != nil:
			return c.ec2Object(o.pool.EC2NodeClass, o.np, true, false, true, nil)
		case o.pool.NodeClass != nil:
			return c.autoModeObject(o.pool.NodeClass, true, false)
		}
		return nil
	},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if o.poolClass == nil {
			return
		}
		ref := o.np.Spec.Template.Spec.NodeClassRef
		classVerdict := o.classVerdict
		var broken []Finding
		for _, f := range classVerdict.Denials {
			if f.Code == IAMUnavailable {
				v.add(f)
				continue
			}
			broken = append(broken, f)
		}
		// Refused even on a requirements-only update.
		if cl := o.poolClass; cl.ec2 != nil && !cl.pastBounds && c.resolvesSelectors(cl.ec2.Spec) {
			if f, ok := judgePoolImages(o.np, cl.ec2.Name, cl.sides[sideNew].res); ok {
				v.add(f)
			}
		}
		if f, ok := classInvalid(kindName(ref.GroupKind()), ref.Name, broken); ok {
			if o.reqsOnly {
				var w Verdict
				w.add(f)
				w.demote(requirementsOnly)
				f = w.Warnings[0]
			}
			v.add(f)
		}
		for _, f := range classVerdict.Warnings {
			if f.Code == IAMUnavailable {
				v.add(f)
			}
		}
		// The class's stale answers are the NodePool's: said once, with
		// its own (staleRule).
		if s := o.poolClass.stale; s.Stale && (!o.stale.Stale || s.Age > o.stale.Age) {
			o.stale = s
		}
	},
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
