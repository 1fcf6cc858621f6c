package rules

import (
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// formatRule: spec.role and spec.instanceProfile are well formed, and not
// both set. No AWS question.
var formatRule = &Rule{
	Name: "format",
	Codes: []Code{RoleInvalidName, RoleIsARN, RoleARNMalformed, RoleCrossAccount, RoleHasPath,
		RoleInstanceProfileExclusive, InstanceProfileInvalidName, InstanceProfileIsARN, InstanceProfileNamePrefix},
	Fields:    []string{"spec.role", "spec.instanceProfile"},
	Demotable: true,
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if !o.identity {
			return
		}
		cl := o.cl
		v.addAll(CheckExclusive(specPath, cl.role, cl.profile))
		if cl.role != "" {
			_, fs, _ := CheckRoleFormat(rolePath, cl.role, c.Account())
			v.addAll(fs)
		}
		if cl.profile != "" {
			_, fs, _ := CheckInstanceProfileFormat(instanceProfilePath, cl.profile)
			v.addAll(fs)
			if cl.eks {
				v.addAll(CheckEKSInstanceProfilePrefix(instanceProfilePath, cl.profile))
			}
		}
	},
	// Once IAM gave the role's real path, RoleHasPath quotes its ARN.
	Finish: func(c *Checker, o *subject, v *Verdict) {
		if o.realRoleARN != "" {
			v.rewordRoleHasPath(o.ref.Name, o.realRoleARN)
		}
	},
}

// identityNotesRule reports, once, what the identity rules' answers said
// about AWS itself: unavailable, stale, context a policy tests.
var identityNotesRule = &Rule{
	Name: "identity notes",
	Codes: []Code{IAMUnavailable, IAMStale, NodeJoinChecksSkipped, PermissionContextMissing,
		PolicySetOperatorMissing, PolicyConditionUnsupported},
	Demotable: true,
	Finish: func(c *Checker, o *subject, v *Verdict) {
		o.n.report(v, c.cfg.OnIAMError, &o.stale)
	},
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

// staleRule says, once for the whole object, that answers past their TTL
// were used (AWS could not be reached), with the oldest one's age.
var staleRule = &Rule{
	Name:  "stale answers",
	Codes: []Code{IAMStale},
	Finish: func(c *Checker, o *subject, v *Verdict) {
		if o.stale.Stale {
			v.add(warn(IAMStale, specPath, "IAM could not be reached; the verdict uses cached IAM answers up to %s old", o.stale.Age.Round(time.Second)))
		}
	},
}
