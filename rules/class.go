package rules

import (
	"context"
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

var (
	specPath            = field.NewPath("spec")
	rolePath            = specPath.Child("role")
	instanceProfilePath = specPath.Child("instanceProfile")
	nodeClassRefPath    = specPath.Child("template", "spec", "nodeClassRef")
)

// CheckEC2NodeClass validates a Karpenter EC2NodeClass: format, IAM state,
// the controller's permissions, and what its selector terms match.
func (c *Checker) CheckEC2NodeClass(ctx context.Context, nc *EC2NodeClass) Verdict {
	return c.cachedVerdict(ctx, EC2NodeClassKind, nc.Name, string(nc.UID), nc.Spec, func(ctx context.Context) Verdict {
		ctx, cancel := c.deadline(ctx)
		defer cancel()
		return c.checkEC2Class(ctx, nc, nil)
	})
}

// checkEC2Class resolves the class's selector terms, then runs the class
// rules (whose launch questions ask about the image, subnets and security
// groups resolved) and judges the selectors, under the caller's deadline
// (one per admission: the entry points set it). np, when
// set, is the NodePool being admitted: its name is the launch tag, and
// whether its requirements fit the images is its own finding
// (judgePoolImages); otherwise the class is judged against the NodePools
// using it.
func (c *Checker) checkEC2Class(ctx context.Context, nc *EC2NodeClass, np *NodePool) Verdict {
	v, _ := c.checkEC2ClassAs(ctx, nc, np, false)
	return v
}

// checkEC2ClassAs is checkEC2Class; warnOnly turns the class rules'
// denials into warnings (an update that changed spec.tags alone: an
// update that leaves spec.role and spec.instanceProfile as they were is
// never refused for them), the selector rules' left as they are. It also
// returns the selectors' resolution, nil when they were not resolved.
func (c *Checker) checkEC2ClassAs(ctx context.Context, nc *EC2NodeClass, np *NodePool, warnOnly bool) (Verdict, *Resolution) {
	if v, out := outOfBounds(c.boundsEC2NodeClass(nc, np)); out {
		return v, nil
	}
	cl := class{name: nc.Name, role: nc.Spec.Role, profile: nc.Spec.InstanceProfile, tags: nc.Spec.Tags, uid: string(nc.UID)}
	if np != nil {
		cl.nodePool = np.Name
	}
	// The lookups that do not wait for the selectors run beside them.
	defer c.askAhead(ctx, cl, nc.Spec)()
	cl.launch = c.launchOf(ctx, nc.Spec, np)
	var r *Resolution
	if c.resolvesSelectors(nc.Spec) {
		res := c.resolveSelectors(ctx, nc.Spec)
		r = &res
		cl.ec2 = c.launchResources(nc.Spec, res)
	}
	v := c.checkClass(ctx, cl)
	if warnOnly {
		v.demote("spec.tags update, not refused")
	}
	c.checkSelectors(ctx, &v, nc, np, r)
	if !warnOnly {
		c.checkNode(ctx, &v, nc)
	}
	return v, r
}

// deadline bounds ctx by the IAM deadline of one object, when set: the
// one deadline of an admission (or of one object in check or the audit),
// set by the entry points (CheckEC2NodeClass, CheckEC2NodeClassUpdate,
// CheckNodePool, CheckNodeClass) and by nothing under them.
func (c *Checker) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.IAMTimeout > 0 {
		return context.WithTimeout(ctx, c.cfg.IAMTimeout)
	}
	return ctx, func() {}
}

// hasSelectors reports whether spec has any selector term.
func hasSelectors(spec EC2NodeClassSpec) bool {
	return len(spec.SubnetSelectorTerms)+len(spec.SecurityGroupSelectorTerms)+len(spec.AMISelectorTerms)+len(spec.CapacityReservationSelectorTerms) > 0
}

// resolvesSelectors reports whether the selector terms of spec are
// resolved: there are terms, an IAM source (offline mode resolves
// nothing, as it asks nothing) and an EC2 source.
func (c *Checker) resolvesSelectors(spec EC2NodeClassSpec) bool {
	return c.cfg.IAM != nil && c.cfg.EC2 != nil && hasSelectors(spec)
}

// launchResources are the image, subnets and security groups of r for the
// launch questions, with their tags and keys; a list EC2 could not resolve
// in full is left out, and the launch requests on it are reported as not
// checked, with why.
func (c *Checker) launchResources(spec EC2NodeClassSpec, r Resolution) *karpenter.EC2Resources {
	out := &karpenter.EC2Resources{Unresolved: map[string]string{}}
	for _, l := range []struct {
		list  selectorList
		kind  string
		n     int
		fill  func()
		extra bool // the plan skipped some term of the list
	}{
		{listSubnets, "subnet", len(r.Subnets), func() { out.Subnets = c.launchSubnets(r.Subnets) }, false},
		{listGroups, "security-group", len(r.SecurityGroups), func() { out.SecurityGroups = c.launchGroups(r.SecurityGroups) }, false},
		{listImages, "image", len(r.Images), func() { out.Images = c.launchImages(r.Images) }, len(r.skipped) > 0},
	} {
		switch {
		case len(termsOf(spec, l.list)) == 0:
			out.Unresolved[l.kind] = "the class has no such selector terms"
		case !r.complete(l.list) || l.extra:
			out.Unresolved[l.kind] = "EC2 could not resolve the selector terms in full, see SelectorChecksSkipped"
		case l.n == 0:
			out.Unresolved[l.kind] = "the selector terms match nothing, see SelectorMatchesNothing"
		case l.n > MaxLaunchResources:
			out.Unresolved[l.kind] = tooManyToAsk(l.n)
		default:
			l.fill()
		}
	}
	return out
}

// knownTags are the tags EC2 gave for a resource: none is an empty map,
// known (karpenter reads nil as not known).
func knownTags(tags map[string]string) map[string]string {
	if tags == nil {
		return map[string]string{}
	}
	return tags
}

// vpcARN is the ARN of a VPC (ec2:Vpc's value), "" when not known.
func (c *Checker) vpcARN(owner, id string) string {
	if id == "" {
		return ""
	}
	return authz.EC2ARN(c.partition, c.cfg.Region, owner, "vpc/"+id)
}

func (c *Checker) launchSubnets(ss []authz.Subnet) []karpenter.Subnet {
	out := make([]karpenter.Subnet, len(ss))
	for i, s := range ss {
		out[i] = karpenter.Subnet{ARN: authz.SubnetARN(c.partition, c.cfg.Region, s.OwnerID, s.ID), ID: s.ID,
			VPC: c.vpcARN(s.OwnerID, s.VPCID), AvailabilityZone: s.AvailabilityZone,
			AvailabilityZoneID: s.AvailabilityZoneID, Tags: knownTags(s.Tags)}
	}
	return out
}

func (c *Checker) launchGroups(gs []authz.SecurityGroup) []karpenter.SecurityGroup {
	out := make([]karpenter.SecurityGroup, len(gs))
	for i, g := range gs {
		out[i] = karpenter.SecurityGroup{ARN: authz.SecurityGroupARN(c.partition, c.cfg.Region, g.OwnerID, g.ID), ID: g.ID,
			VPC: c.vpcARN(g.OwnerID, g.VPCID), Tags: knownTags(g.Tags)}
	}
	return out
}

func (c *Checker) launchImages(ims []authz.Image) []karpenter.Image {
	out := make([]karpenter.Image, len(ims))
	for i, im := range ims {
		// ec2:Owner is "amazon" or "aws-marketplace" for their images,
		// the owner's account ID otherwise.
		owner := im.OwnerID
		if im.OwnerAlias == "amazon" || im.OwnerAlias == "aws-marketplace" {
			owner = im.OwnerAlias
		}
		out[i] = karpenter.Image{ARN: authz.ImageARN(c.partition, c.cfg.Region, im.ID), ID: im.ID, Owner: owner, Public: im.Public,
			RootDeviceType: im.RootDeviceType, Tags: knownTags(im.Tags)}
	}
	return out
}

// checkSelectors judges the class's selector terms as r resolved them
// (resolving them when r is nil) and returns the resolution judged, nil
// when none. In offline mode (no IAM source) they are not resolved, as no
// IAM check is; with IAM but no EC2 source they are reported as skipped.
func (c *Checker) checkSelectors(ctx context.Context, v *Verdict, nc *EC2NodeClass, np *NodePool, r *Resolution) *Resolution {
	if c.cfg.IAM == nil || !hasSelectors(nc.Spec) {
		return nil
	}
	var n notes
	defer n.report(v, c.cfg.OnIAMError)
	if c.cfg.EC2 == nil {
		n.skipSelector("selectors", "no EC2 source: give --iam-snapshot the EC2 sections, or run with EC2 access")
		return nil
	}
	if r == nil {
		res := c.resolveSelectors(ctx, nc.Spec)
		r = &res
	}
	// The NodePools whose requirements the images must fit: for a NodePool
	// being checked, none here (its own finding, judgePoolImages).
	var pools []NodePool
	switch {
	case np != nil:
	case c.cfg.NodePools != nil:
		var err error
		if pools, err = c.cfg.NodePools.NodePoolsUsing(ctx, nc.Name); err != nil {
			markUncertain(ctx)
			n.skipSelector("image architectures", "listing NodePools: "+truncate(oneLine(err.Error()), 80))
		}
	}
	c.judgeSelectors(v, &n, nc.Spec, *r, pools)
	return r
}

// CheckNodeClass validates an EKS Auto Mode NodeClass: format and IAM
// state; EKS, not Karpenter's controller, launches its nodes.
func (c *Checker) CheckNodeClass(ctx context.Context, nc *NodeClass) Verdict {
	return c.cachedVerdict(ctx, NodeClassKind, nc.Name, string(nc.UID), nc.Spec, func(ctx context.Context) Verdict {
		ctx, cancel := c.deadline(ctx)
		defer cancel()
		return c.checkNodeClass(ctx, nc)
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
	if v, out := outOfBounds(c.boundsNodeClass(nc)); out {
		return v
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	var v Verdict
	if !maps.Equal(old.Spec.Tags, nc.Spec.Tags) || sameAutoModeTerms(old.Spec, nc.Spec) {
		v = c.checkClass(ctx, autoModeClass(nc))
		v.demote("spec.tags update, not refused")
	}
	c.checkAutoModeSelectors(ctx, &v, nc)
	return v
}

// checkNodeClass is CheckNodeClass under the caller's deadline; nothing
// is planned with a class past the input bounds.
func (c *Checker) checkNodeClass(ctx context.Context, nc *NodeClass) Verdict {
	if v, out := outOfBounds(c.boundsNodeClass(nc)); out {
		return v
	}
	v := c.checkClass(ctx, autoModeClass(nc))
	c.checkAutoModeSelectors(ctx, &v, nc)
	return v
}

// autoModeClass is what the class rules read of an EKS Auto Mode
// NodeClass.
func autoModeClass(nc *NodeClass) class {
	return class{name: nc.Name, role: nc.Spec.Role, profile: nc.Spec.InstanceProfile, eks: true, tags: nc.Spec.Tags}
}

// checkClass runs the format rules, then the IAM rules of spec.role or of
// spec.instanceProfile, under the caller's deadline.
func (c *Checker) checkClass(ctx context.Context, cl class) Verdict {
	var v Verdict
	v.addAll(CheckExclusive(specPath, cl.role, cl.profile))
	var (
		ref       RoleRef
		roleOK    bool
		profName  string
		profileOK bool
	)
	if cl.role != "" {
		var fs []Finding
		ref, fs, roleOK = CheckRoleFormat(rolePath, cl.role, c.Account())
		v.addAll(fs)
	}
	if cl.profile != "" {
		var fs []Finding
		profName, fs, profileOK = CheckInstanceProfileFormat(instanceProfilePath, cl.profile)
		v.addAll(fs)
		if cl.eks {
			v.addAll(CheckEKSInstanceProfilePrefix(instanceProfilePath, cl.profile))
		}
	}
	if c.cfg.IAM == nil || (cl.role != "" && cl.profile != "") || (!roleOK && !profileOK) {
		return v
	}
	asked := time.Now()
	o := &object{cl: cl, before: &v, ref: ref, roleOK: roleOK, profileName: profName, profileOK: profileOK,
		perms: !cl.eks && c.controllerARN != ""}
	classRunner.run(ctx, c, o, &v)
	o.n.report(&v, c.cfg.OnIAMError)
	v.IAMTime = time.Since(asked)
	return v
}
