package rules

import (
	"context"
	"errors"
	"maps"
	"slices"
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

// class is what the class rules read of a node class.
type class struct {
	name    string
	role    string
	profile string
	// eks marks an EKS Auto Mode NodeClass: EKS, not Karpenter's
	// controller, launches its nodes, so no controller permission is
	// checked.
	eks bool
	// nodePool is the NodePool whose launches are checked (its name is a
	// launch tag); "" means the class's own name.
	nodePool string
	// tags are the class's spec.tags.
	tags map[string]string
	// uid is the class's metadata.uid ("" in a manifest that has none).
	uid string
	// ec2 are the image, subnet and security-group ARNs the class's
	// selectors resolve to; nil when they are not resolved.
	ec2 *karpenter.EC2Resources
	// launch is what the NodePool and the class say of the instances
	// and volumes Karpenter launches (launchkeys.go).
	launch karpenter.Launch
}

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
	var n notes
	join := c.clusterQueries()
	var (
		nodeRole authz.Role
		found    bool
		joinAns  []Answer
		path     = rolePath
	)
	if roleOK {
		nodeRole, found, joinAns = c.roleClass(ctx, &v, &n, ref, cl, join)
	} else {
		path = instanceProfilePath
		nodeRole, found, joinAns = c.profileClass(ctx, &v, &n, profName, cl, join)
	}
	if found {
		c.joinClass(ctx, &v, &n, cl, path, nodeRole, joinAns)
	}
	n.report(&v, c.cfg.OnIAMError)
	v.IAMTime = time.Since(asked)
	return v
}

// permissionsChecked reports whether the controller's permissions can be
// checked; when not, it adds the warning once.
func (c *Checker) permissionsChecked(v *Verdict, cl class) bool {
	if cl.eks {
		return false
	}
	if c.controllerARN == "" {
		v.add(warn(PermissionChecksSkipped, specPath,
			"the Karpenter controller's role is unknown, so iam:PassRole and launch permissions were not checked. Start nodeclass-guard with --controller-role"))
		return false
	}
	return true
}

// roleClass checks a class naming spec.role. Round one asks for the role
// and every permission at once, iam:PassRole for the ARN spec.role implies;
// round two asks iam:PassRole again only when IAM says the role's real
// path is another.
//
// join are the join rules' first-round queries, asked with round one;
// roleClass returns their answers, and the node role when IAM found it.
func (c *Checker) roleClass(ctx context.Context, v *Verdict, n *notes, ref RoleRef, cl class, join []Query) (authz.Role, bool, []Answer) {
	perms := c.permissionsChecked(v, cl)
	guess := c.nodeRoleARN(ref)
	var (
		pass, actions, launch []authz.Question
		prof                  karpenter.Profile
		lp                    launchPlan
	)
	if perms {
		pass = c.passRoleQuestions(guess, true)
		prof, actions = c.profileActionQuestions(cl)
		// The launch requests on the image, subnets and security groups
		// the selectors resolved to; those not resolved are reported as
		// not checked.
		lp = c.launchQuestions(cl)
		launch = lp.questions
		v.NotChecked = lp.notChecked
	}
	qs := make([]Query, 0, 1+len(pass)+len(actions)+len(launch)+len(join))
	qs = append(qs, roleQuery(ref.Name))
	qs = appendPermissions(qs, pass)
	qs = appendPermissions(qs, actions)
	qs = appendPermissions(qs, launch)
	qs = append(qs, join...)
	as := c.ask(ctx, qs)
	as, joinAns := as[:len(as)-len(join)], as[len(as)-len(join):]
	roleAns, rest := as[0], as[1:]
	passAns, rest := rest[:len(pass)], rest[len(pass):]
	actionAns, launchAns := rest[:len(actions)], rest[len(actions):]

	found := c.judgeRole(v, n, ref, roleAns)
	if found && perms {
		if real := roleAns.Role.ARN; real != "" && real != guess {
			pass = c.passRoleQuestions(real, true)
			passAns = c.ask(ctx, appendPermissions(nil, pass))
		}
		v.addAll(c.judgePassRole(n, rolePath, pass, passAns))
	}
	if perms {
		v.addAll(c.judgeProfileActions(n, cl, prof, actions, actionAns))
		v.addAll(c.judgeLaunch(n, cl, lp, launchAns))
		if extra := unknownNotChecked(lp, launchAns); len(extra) > 0 {
			v.NotChecked = append(slices.Clone(v.NotChecked), extra...)
		}
	}
	return roleAns.Role, found, joinAns
}

// profileClass checks a class naming spec.instanceProfile. Round one asks
// for the profile, iam:GetInstanceProfile on the ARN its name implies and
// the launch permissions; round two asks iam:PassRole on the role inside
// the profile (and iam:GetInstanceProfile again if the profile has a path).
//
// join and the results are as for roleClass; the node role is the role
// inside the profile.
func (c *Checker) profileClass(ctx context.Context, v *Verdict, n *notes, name string, cl class, join []Query) (authz.Role, bool, []Answer) {
	perms := c.permissionsChecked(v, cl)
	guess := authz.InstanceProfileARN(c.partition, c.Account(), "/", name)
	var read, launch []authz.Question
	var lp launchPlan
	if perms {
		read = []authz.Question{c.profileReadQuestion(guess)}
		lp = c.launchQuestions(cl)
		launch = lp.questions
		v.NotChecked = lp.notChecked
	}
	qs := make([]Query, 0, 1+len(read)+len(launch)+len(join))
	qs = append(qs, profileQuery(name))
	qs = appendPermissions(qs, read)
	qs = appendPermissions(qs, launch)
	qs = append(qs, join...)
	as := c.ask(ctx, qs)
	as, joinAns := as[:len(as)-len(join)], as[len(as)-len(join):]
	profAns, rest := as[0], as[1:]
	readAns, launchAns := rest[:len(read)], rest[len(read):]

	prof, ok := c.judgeProfile(v, n, name, profAns)
	if errors.Is(profAns.Err, authz.ErrNotFound) {
		read, readAns = nil, nil // a read permission on a profile that does not exist says nothing
	}
	var pass []authz.Question
	var passAns []Answer
	if ok && perms {
		var second []authz.Question
		if prof.ARN != "" && prof.ARN != guess {
			read = []authz.Question{c.profileReadQuestion(prof.ARN)}
			second = append(second, read...)
		}
		if len(prof.Roles) > 0 {
			pass = c.passRoleQuestions(prof.Roles[0].ARN, false)
			second = append(second, pass...)
		}
		if len(second) > 0 {
			got := c.ask(ctx, appendPermissions(nil, second))
			if len(second) > len(pass) {
				readAns, got = got[:1], got[1:]
			}
			passAns = got
		}
	}
	if perms {
		v.addAll(c.judgeProfileRead(n, read, readAns))
	}
	var nodeRole authz.Role
	hasRole := false
	if ok {
		if hasRole = c.judgeProfileRole(v, name, prof); hasRole {
			nodeRole = prof.Roles[0]
			if perms {
				v.addAll(c.judgePassRole(n, instanceProfilePath, pass, passAns))
			}
		}
	}
	if perms {
		v.addAll(c.judgeLaunch(n, cl, lp, launchAns))
		if extra := unknownNotChecked(lp, launchAns); len(extra) > 0 {
			v.NotChecked = append(slices.Clone(v.NotChecked), extra...)
		}
	}
	return nodeRole, hasRole, joinAns
}
