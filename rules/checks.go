package rules

import (
	"context"
	"maps"
)

// The entry point. Check reads the object (and an update's old object)
// into what its rules read, says which of them run (the identity rules,
// the node rules, the update guard) and hands it, with its registry, to
// the verdict cache (verdicts.go), which hands it to the runner
// (runner.go): transport -> entry -> cache -> runner -> asker -> views,
// one way. Nothing under the runner sets a deadline or asks AWS.

// Review is one object to judge: one of its kinds, and, for an update,
// the object of that kind it replaces.
type Review struct {
	EC2NodeClass, OldEC2NodeClass *EC2NodeClass
	NodeClass, OldNodeClass       *NodeClass
	NodePool, OldNodePool         *NodePool
}

// Check judges the object of r; an empty Review has nothing to judge.
func (c *Checker) Check(ctx context.Context, r Review) Verdict {
	// A replay gets its verdict before anything is read of it.
	key, keyed := "", false
	if c.verdicts != nil {
		if key, keyed = r.key(); keyed {
			if v, hit := c.verdicts.cached(key); hit {
				return v
			}
		}
	}
	o, rn, cached := c.review(r)
	switch {
	case o == nil:
		return Verdict{}
	case cached && keyed:
		return rn.judgeShared(ctx, c, key, o)
	}
	v := rn.judge(ctx, c, o)
	if o.reqsOnly {
		// IAM's absence does not refuse an update of a NodePool's
		// requirements.
		v.demoteCode(IAMUnavailable, requirementsOnly)
	}
	return v
}

// CheckEC2NodeClass validates a Karpenter EC2NodeClass: format, IAM state,
// the controller's permissions, what its selector terms match, and what
// the node is given.
func (c *Checker) CheckEC2NodeClass(ctx context.Context, nc *EC2NodeClass) Verdict {
	return c.Check(ctx, Review{EC2NodeClass: nc})
}

// CheckEC2NodeClassUpdate validates an update of an EC2NodeClass: the
// class's own checks when spec.role or spec.instanceProfile changed, as
// warnings when only spec.tags did (they are in Karpenter's requests), and
// only the selector checks otherwise (an edit of the selectors or the tags
// never starts refusing a role the class already had); what the node is
// given when it changed; then, when a selector list changed, the old and
// the new resolutions compared against the class's NodeClaims (the update
// guard, update.go).
func (c *Checker) CheckEC2NodeClassUpdate(ctx context.Context, old, nc *EC2NodeClass) Verdict {
	return c.Check(ctx, Review{EC2NodeClass: nc, OldEC2NodeClass: old})
}

// CheckNodeClass validates an EKS Auto Mode NodeClass: format and IAM
// state, and what its selector terms match; EKS, not Karpenter's
// controller, launches its nodes.
func (c *Checker) CheckNodeClass(ctx context.Context, nc *NodeClass) Verdict {
	return c.Check(ctx, Review{NodeClass: nc})
}

// CheckNodeClassUpdate validates an update of an EKS Auto Mode NodeClass:
// as a create when spec.role or spec.instanceProfile changed; when they
// did not, what new spec.tags break comes back as warnings (the contract
// never refuses an update that leaves the node identity alone), and the
// selector terms are judged as on a create, as an EC2NodeClass's are.
func (c *Checker) CheckNodeClassUpdate(ctx context.Context, old, nc *NodeClass) Verdict {
	return c.Check(ctx, Review{NodeClass: nc, OldNodeClass: old})
}

// CheckNodePool validates a NodePool's nodeClassRef: the class it names must
// be one this webhook knows, and, when it exists, must pass its own checks.
func (c *Checker) CheckNodePool(ctx context.Context, np *NodePool) Verdict {
	return c.Check(ctx, Review{NodePool: np})
}

// CheckNodePoolUpdate validates an update of a NodePool: as a create when
// its nodeClassRef changed; when only its requirements did, only what they
// break (an architecture the class has no image for,
// ImageArchitectureMismatch) is refused: the class's findings come back as
// warnings, and the spot check warns as ever.
func (c *Checker) CheckNodePoolUpdate(ctx context.Context, old, np *NodePool) Verdict {
	return c.Check(ctx, Review{NodePool: np, OldNodePool: old})
}

// key is the verdict cache's key of r's object when its verdict may be
// kept (a create's, or an EKS Auto Mode NodeClass update judged as one):
// its kind, name, UID and spec (the rules' types hold the fields the rules
// read, and nothing else).
func (r Review) key() (string, bool) {
	switch {
	case r.EC2NodeClass != nil:
		if nc := r.EC2NodeClass; r.OldEC2NodeClass == nil {
			return verdictKey(EC2NodeClassKind, nc.Name, string(nc.UID), nc.Spec)
		}
	case r.NodeClass != nil:
		nc, old := r.NodeClass, r.OldNodeClass
		if old == nil || old.Spec.Role != nc.Spec.Role || old.Spec.InstanceProfile != nc.Spec.InstanceProfile {
			return verdictKey(NodeClassKind, nc.Name, string(nc.UID), nc.Spec)
		}
	case r.NodePool != nil:
		if np := r.NodePool; r.OldNodePool == nil {
			return verdictKey(NodePoolKind, np.Name, string(np.UID), np.Spec)
		}
	}
	return "", false
}

// review is the object of r's rules and their registry, nil when r has
// none; cached says whether its verdict may be kept (a create's).
func (c *Checker) review(r Review) (o *subject, rn *runner, cached bool) {
	switch {
	case r.EC2NodeClass != nil && r.OldEC2NodeClass == nil:
		return c.ec2Object(r.EC2NodeClass, nil, true, false, true, nil), classRunner, true
	case r.EC2NodeClass != nil:
		nc, old := r.EC2NodeClass, r.OldEC2NodeClass
		if c.oldOutOfBounds(old) {
			// Nothing is planned with an old object past the bounds (a
			// class from before them, or a forged review); the update
			// that fixes it must not be refused for it.
			return c.ec2Object(nc, nil, true, true, false, nil), classRunner, false
		}
		identityChanged := old.Spec.Role != nc.Spec.Role || old.Spec.InstanceProfile != nc.Spec.InstanceProfile
		tagsChanged := !maps.Equal(old.Spec.Tags, nc.Spec.Tags)
		node := identityChanged || !sameNode(old.Spec, nc.Spec)
		return c.ec2Object(nc, nil, identityChanged || tagsChanged, !identityChanged, node, old), classRunner, false
	case r.NodeClass != nil:
		nc, old := r.NodeClass, r.OldNodeClass
		if old == nil || old.Spec.Role != nc.Spec.Role || old.Spec.InstanceProfile != nc.Spec.InstanceProfile {
			return c.autoModeObject(nc, true, false), classRunner, true
		}
		identity := !maps.Equal(old.Spec.Tags, nc.Spec.Tags) || sameAutoModeTerms(old.Spec, nc.Spec)
		return c.autoModeObject(nc, identity, true), classRunner, false
	case r.NodePool != nil:
		np := r.NodePool
		o := &subject{np: np, spot: c.cfg.IAM != nil && allowsSpot(np.Spec.Template.Spec.Requirements)}
		if ref := np.Spec.Template.Spec.NodeClassRef; ref != nil && ref.GroupKind() == EKSNodeClassGK {
			o.spotAuto = o.spot
		}
		if r.OldNodePool == nil {
			return o, poolRunner, true
		}
		o.reqsOnly = sameRef(r.OldNodePool.Spec.Template.Spec.NodeClassRef, r.NodePool.Spec.Template.Spec.NodeClassRef)
		return o, poolRunner, false
	}
	return nil, nil, false
}
