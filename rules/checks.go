package rules

import (
	"context"
	"maps"
)

// The entry points: one per kind and operation. Each sets the object's one
// deadline, says which of the object's rules run (the identity rules, the
// node rules, the update guard), and hands the object to the runner with
// the registry of its kind (registry.go). Nothing under them sets a
// deadline or asks AWS but the runner.

// CheckEC2NodeClass validates a Karpenter EC2NodeClass: format, IAM state,
// the controller's permissions, what its selector terms match, and what
// the node is given.
func (c *Checker) CheckEC2NodeClass(ctx context.Context, nc *EC2NodeClass) Verdict {
	return c.cachedVerdict(ctx, EC2NodeClassKind, nc.Name, string(nc.UID), nc.Spec, func(ctx context.Context) Verdict {
		ctx, cancel := c.deadline(ctx)
		defer cancel()
		v, _ := c.judgeEC2Class(ctx, c.ec2Object(nc, nil, true, false, true, nil))
		return v
	})
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
	if v, out := outOfBounds(c.boundsEC2NodeClass(nc, nil)); out {
		return v
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if c.oldOutOfBounds(old) {
		// Nothing is planned with an old object past the bounds (a class
		// from before them, or a forged review); the update that fixes it
		// must not be refused for it.
		v, _ := c.judgeEC2Class(ctx, c.ec2Object(nc, nil, true, true, false, nil))
		return v
	}
	identityChanged := old.Spec.Role != nc.Spec.Role || old.Spec.InstanceProfile != nc.Spec.InstanceProfile
	tagsChanged := !maps.Equal(old.Spec.Tags, nc.Spec.Tags)
	node := identityChanged || !sameNode(old.Spec, nc.Spec)
	v, _ := c.judgeEC2Class(ctx, c.ec2Object(nc, nil, identityChanged || tagsChanged, !identityChanged, node, old))
	return v
}

// CheckNodeClass validates an EKS Auto Mode NodeClass: format and IAM
// state, and what its selector terms match; EKS, not Karpenter's
// controller, launches its nodes.
func (c *Checker) CheckNodeClass(ctx context.Context, nc *NodeClass) Verdict {
	return c.cachedVerdict(ctx, NodeClassKind, nc.Name, string(nc.UID), nc.Spec, func(ctx context.Context) Verdict {
		ctx, cancel := c.deadline(ctx)
		defer cancel()
		return c.judgeNodeClass(ctx, c.autoModeObject(nc, true, false))
	})
}

// CheckNodeClassUpdate validates an update of an EKS Auto Mode NodeClass:
// as a create when spec.role or spec.instanceProfile changed; when they
// did not, what new spec.tags break comes back as warnings (the contract
// never refuses an update that leaves the node identity alone), and the
// selector terms are judged as on a create, as an EC2NodeClass's are.
func (c *Checker) CheckNodeClassUpdate(ctx context.Context, old, nc *NodeClass) Verdict {
	if old.Spec.Role != nc.Spec.Role || old.Spec.InstanceProfile != nc.Spec.InstanceProfile {
		return c.CheckNodeClass(ctx, nc)
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	identity := !maps.Equal(old.Spec.Tags, nc.Spec.Tags) || sameAutoModeTerms(old.Spec, nc.Spec)
	return c.judgeNodeClass(ctx, c.autoModeObject(nc, identity, true))
}

// CheckNodePool validates a NodePool's nodeClassRef: the class it names must
// be one this webhook knows, and, when it exists, must pass its own checks.
func (c *Checker) CheckNodePool(ctx context.Context, np *NodePool) Verdict {
	if v, out := outOfBounds(boundsNodePool(np)); out {
		return v
	}
	return c.cachedVerdict(ctx, NodePoolKind, np.Name, string(np.UID), np.Spec, func(ctx context.Context) Verdict {
		ctx, cancel := c.deadline(ctx)
		defer cancel()
		return c.checkNodePool(ctx, np, false)
	})
}

// CheckNodePoolUpdate validates an update of a NodePool: as a create when
// its nodeClassRef changed; when only its requirements did, only what they
// break (an architecture the class has no image for,
// ImageArchitectureMismatch) is refused: the class's findings come back as
// warnings, and the spot check warns as ever.
func (c *Checker) CheckNodePoolUpdate(ctx context.Context, old, np *NodePool) Verdict {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	return c.checkNodePool(ctx, np, sameRef(old.Spec.Template.Spec.NodeClassRef, np.Spec.Template.Spec.NodeClassRef))
}

// judgeEC2Class runs the EC2NodeClass rules on o under the caller's
// deadline; nothing is planned with a class past the input bounds. It also
// returns what the selectors resolved to, nil when they were not resolved.
func (c *Checker) judgeEC2Class(ctx context.Context, o *object) (Verdict, *Resolution) {
	if v, out := outOfBounds(c.boundsEC2NodeClass(o.ec2, o.np)); out {
		return v, nil
	}
	var v Verdict
	classRunner.run(ctx, c, o, &v)
	if !c.resolvesSelectors(o.ec2.Spec) {
		return v, nil
	}
	return v, &o.sides[sideNew].res
}

// judgeNodeClass runs the EKS Auto Mode NodeClass rules on o under the
// caller's deadline; nothing is planned with a class past the input
// bounds.
func (c *Checker) judgeNodeClass(ctx context.Context, o *object) Verdict {
	if v, out := outOfBounds(c.boundsNodeClass(o.eks)); out {
		return v
	}
	var v Verdict
	classRunner.run(ctx, c, o, &v)
	return v
}

// ec2Object is the object of an EC2NodeClass's rules: np, when set, is the
// NodePool it is judged for (its name is the launch tag); identity runs
// the node identity rules, demoted when demote; node the rules of what the
// node is given; old, when set, is an update's old class, for the update
// guard.
func (c *Checker) ec2Object(nc *EC2NodeClass, np *NodePool, identity, demote, node bool, old *EC2NodeClass) *object {
	o := &object{ec2: nc, np: np, old: old, identity: identity, demote: demote, node: node,
		cl: class{name: nc.Name, role: nc.Spec.Role, profile: nc.Spec.InstanceProfile, tags: nc.Spec.Tags, uid: string(nc.UID)}}
	if np != nil {
		o.cl.nodePool = np.Name
	}
	o.sides[sideNew].terms = ec2Terms(nc.Spec)
	if old != nil {
		o.changed = changedLists(old.Spec, nc.Spec)
		o.sides[sideOld].terms = ec2Terms(old.Spec)
	}
	guard := len(o.changed) > 0 && c.cfg.IAM != nil && c.cfg.EC2 != nil
	o.sides[sideNew].asked = c.resolvesSelectors(nc.Spec) || guard
	o.sides[sideOld].asked = guard
	c.readIdentity(o)
	return o
}

// autoModeObject is the object of an EKS Auto Mode NodeClass's rules.
func (c *Checker) autoModeObject(nc *NodeClass, identity, demote bool) *object {
	o := &object{eks: nc, identity: identity, demote: demote, cl: autoModeClass(nc)}
	o.sides[sideNew].terms = autoModeTerms(nc.Spec)
	o.sides[sideNew].asked = c.cfg.IAM != nil && c.cfg.EC2 != nil && o.sides[sideNew].terms.some() && autoModeBoundsSkip(o.sides[sideNew].terms) == ""
	c.readIdentity(o)
	return o
}

// readIdentity reads spec.role and spec.instanceProfile as the format
// rules do, for the identity rules' plans.
func (c *Checker) readIdentity(o *object) {
	if !o.identity {
		return
	}
	cl := o.cl
	if cl.role != "" {
		o.ref, _, o.roleOK = CheckRoleFormat(rolePath, cl.role, c.Account())
	}
	if cl.profile != "" {
		o.profileName, _, o.profileOK = CheckInstanceProfileFormat(instanceProfilePath, cl.profile)
	}
	o.iam = c.cfg.IAM != nil && (cl.role == "" || cl.profile == "") && (o.roleOK || o.profileOK)
	o.perms = o.iam && !cl.eks && c.controllerARN != ""
}

// autoModeClass is what the class rules read of an EKS Auto Mode
// NodeClass.
func autoModeClass(nc *NodeClass) class {
	return class{name: nc.Name, role: nc.Spec.Role, profile: nc.Spec.InstanceProfile, eks: true, tags: nc.Spec.Tags}
}
