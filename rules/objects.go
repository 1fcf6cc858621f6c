package rules

// ec2Object is the object of an EC2NodeClass's rules: np, when set, is the
// NodePool it is judged for (its name is the launch tag); identity runs
// the node identity rules, demoted when demote; node the rules of what the
// node is given; old, when set, is an update's old class, for the update
// guard.
func (c *Checker) ec2Object(nc *EC2NodeClass, np *NodePool, identity, demote, node bool, old *EC2NodeClass) *subject {
	o := &subject{ec2: nc, np: np, old: old, identity: identity, demote: demote, node: node,
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
func (c *Checker) autoModeObject(nc *NodeClass, identity, demote bool) *subject {
	o := &subject{eks: nc, identity: identity, demote: demote, cl: autoModeClass(nc)}
	o.sides[sideNew].terms = autoModeTerms(nc.Spec)
	o.sides[sideNew].asked = c.cfg.IAM != nil && c.cfg.EC2 != nil && o.sides[sideNew].terms.some() && autoModeBoundsSkip(o.sides[sideNew].terms) == ""
	c.readIdentity(o)
	return o
}

// readIdentity reads spec.role and spec.instanceProfile as the format
// rules do, for the identity rules' plans.
func (c *Checker) readIdentity(o *subject) {
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
