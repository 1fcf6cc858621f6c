package rules

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// profileRule: the instance profile spec.instanceProfile names exists. It
// gives the profile.
var profileRule = &Rule{
	Name:      "instance profile",
	Demotable: true,
	Codes:     []Code{InstanceProfileNotFound},
	Fields:    []string{"spec.role", "spec.instanceProfile"},
	Gives:     []fact{factProfile, factNodeRole},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if o.iam && o.profileOK {
			q.query("profile", profileQuery(o.profileName))
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		ans, ok := a.one("profile")
		if !ok {
			return
		}
		o.profile = ans
		_, o.profileFound = c.judgeProfile(v, &o.n, o.profileName, ans)
		if o.profileFound && len(ans.Profile.Roles) > 0 {
			// The node role, for the rules that need it, in the round
			// after this one; profileRoleRule judges it.
			o.nodeRole, o.nodeRoleFound, o.path = ans.Profile.Roles[0], true, instanceProfilePath
		}
	},
}

// profileReadRule: the controller may read the instance profile, as
// Karpenter does for a class naming spec.instanceProfile: on its real ARN
// once IAM gave it, on the ARN its name implies when IAM could not be
// asked, not at all when it does not exist.
var profileReadRule = &Rule{
	Name:      "instance profile read",
	Late:      true,
	Demotable: true,
	Codes:     []Code{InstanceProfileReadDenied},
	Fields:    []string{"spec.instanceProfile"},
	Needs:     []fact{factProfile},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.perms || !o.profileOK || errors.Is(o.profile.Err, authz.ErrNotFound) {
			return
		}
		arn := authz.InstanceProfileARN(c.partition, c.Account(), "/", o.profileName)
		if o.profileFound && o.profile.Profile.ARN != "" {
			arn = o.profile.Profile.ARN
		}
		q.permissions("read", []authz.Question{c.profileReadQuestion(arn)})
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if qs := a.questions("read"); len(qs) > 0 {
			v.addAll(c.judgeProfileRead(&o.n, qs, a.all("read")))
		}
	},
}

// profileRoleRule: the instance profile holds a role, and the role trusts
// EC2.
var profileRoleRule = &Rule{
	Name:      "instance profile role",
	Demotable: true,
	Codes:     []Code{InstanceProfileHasNoRole, RoleTrustMissingEC2},
	Fields:    []string{"spec.instanceProfile"},
	Needs:     []fact{factProfile},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if o.profileFound {
			c.judgeProfileRole(v, o.profileName, o.profile.Profile)
		}
	},
}

// profileActionsRule: for a class naming spec.role, the controller may
// read, create with its tags, tag and fill the instance profile Karpenter
// makes for it.
var profileActionsRule = &Rule{
	Name:      "instance profile actions",
	Late:      true,
	Demotable: true,
	Codes:     []Code{InstanceProfileActionsDenied},
	Fields:    []string{"spec.role", "spec.tags"},
	Needs:     []fact{factLaunchKeys},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.perms || !o.roleOK {
			return
		}
		prof, qs := c.profileActionQuestions(o.cl)
		q.keep(prof)
		q.permissions("actions", qs)
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if prof, ok := a.kept().(karpenter.Profile); ok {
			v.addAll(c.judgeProfileActions(&o.n, o.cl, prof, a.questions("actions"), a.all("actions")))
		}
	},
}

// judgeProfile judges IAM's answer about the instance profile
// spec.instanceProfile names; ok reports that it exists.
func (c *Checker) judgeProfile(v *Verdict, n *notes, name string, a Answer) (prof authz.InstanceProfile, ok bool) {
	switch {
	case errors.Is(a.Err, authz.ErrNotFound):
		v.add(deny(InstanceProfileNotFound, instanceProfilePath,
			"no IAM instance profile named %s in account %s. Create it (aws iam create-instance-profile --instance-profile-name %s) and add the node role, or set spec.role and let Karpenter manage the profile",
			name, c.accountOr(""), name))
		return prof, false
	case a.Err != nil:
		n.unavailable(instanceProfilePath, "GetInstanceProfile", a.Err)
		return prof, false
	}
	n.served(a.Profile.Served)
	return a.Profile, true
}

// judgeProfileRole denies a profile without a role and judges the trust of
// the role inside; it reports whether there is a role to pass.
func (c *Checker) judgeProfileRole(v *Verdict, name string, prof authz.InstanceProfile) bool {
	if len(prof.Roles) == 0 {
		v.add(deny(InstanceProfileHasNoRole, instanceProfilePath,
			"instance profile %s holds no role, so nodes would get no credentials. Add the node role: aws iam add-role-to-instance-profile --instance-profile-name %s --role-name <node role>",
			name, name))
		return false
	}
	c.judgeTrust(v, instanceProfilePath, prof.Roles[0])
	return true
}

// profileReadQuestion asks whether the controller may read the profile, as
// Karpenter does for a class naming spec.instanceProfile.
func (c *Checker) profileReadQuestion(profileARN string) authz.Question {
	return authz.Question{Principal: c.controllerARN, Action: "iam:GetInstanceProfile", Resource: profileARN}
}

func (c *Checker) judgeProfileRead(n *notes, qs []authz.Question, as []Answer) []Finding {
	dd := deniedOf(n, instanceProfilePath, qs, as)
	if len(dd.questions) == 0 {
		return nil
	}
	denied, ans := dd.questions, dd.first()
	return []Finding{permissionDenial(InstanceProfileReadDenied, instanceProfilePath, dd,
		"role %s may not iam:GetInstanceProfile %s: %s. %s",
		c.controllerARN, denied[0].Resource, ans.Reason(),
		fix(ans, "Allow iam:GetInstanceProfile on that ARN"))}
}

// profileActionQuestions asks what Karpenter's nodeclass controller does
// for a class naming spec.role (karpenter.ProfileRequests): read, create
// with its tags, tag, and fill the instance profile, whose exact ARN the
// version's naming and path scheme give.
func (c *Checker) profileActionQuestions(cl class) (karpenter.Profile, []authz.Question) {
	prof, reqs := karpenter.ProfileRequests(c.cfg.Karpenter.Model, c.karpenterInput(cl))
	qs := make([]authz.Question, len(reqs))
	for i, r := range reqs {
		qs[i] = r.Question(c.controllerARN)
	}
	return prof, qs
}

func (c *Checker) judgeProfileActions(n *notes, cl class, prof karpenter.Profile, qs []authz.Question, as []Answer) []Finding {
	dd := deniedOf(n, rolePath, qs, as)
	if len(dd.questions) == 0 {
		return nil
	}
	denied, ans := dd.questions, dd.first()
	why := ""
	for _, q := range denied {
		if q.Action == "iam:TagInstanceProfile" {
			// Karpenter creates the profile with its tags in one
			// CreateInstanceProfile call; IAM requires iam:TagInstanceProfile
			// for the tags of that call.
			why = " (IAM requires iam:TagInstanceProfile to create an instance profile with tags, as Karpenter does)"
		}
	}
	var about []string
	if prof.NameRandom {
		about = append(about, "the name's hash is random")
	}
	if prof.UIDPlaceholder {
		about = append(about, "no metadata.uid yet: the path uses "+karpenter.PlaceholderUID)
	}
	named := ""
	if len(about) > 0 {
		named = " (" + strings.Join(about, "; ") + ")"
	}
	return []Finding{permissionDenial(InstanceProfileActionsDenied, rolePath, dd,
		"role %s may not %s on %s%s, the profile Karpenter %s creates for this class, with its tags (%s)%s: %s. %s",
		c.controllerARN, actionsOf(denied), denied[0].Resource, named, c.cfg.Karpenter.Model, tagList(sortedTags(karpenter.ProfileTags(c.karpenterInput(cl)))), why, ans.Reason(),
		fix(ans, "Allow these actions on that ARN for these tags, or set spec.instanceProfile to a profile you manage"))}
}

// sortedTags turns a tag map into tags sorted by key.
func sortedTags(m map[string]string) []tag {
	out := make([]tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, tag{k, m[k]})
	}
	return out
}
