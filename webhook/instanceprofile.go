package webhook

import (
	"errors"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

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

// karpenterTags are the tags Karpenter puts on the instance profile it
// creates for a class.
func (c *Checker) karpenterTags(className string) []tag {
	return []tag{
		{"kubernetes.io/cluster/" + c.cfg.ClusterName, "owned"},
		{"eks:eks-cluster-name", c.cfg.ClusterName},
		{"topology.kubernetes.io/region", c.cfg.Region},
		{"karpenter.k8s.aws/ec2nodeclass", className},
	}
}

// profileActions are what Karpenter does to manage the instance profile of
// a class that names spec.role, with the tags each request carries and
// the tags each finds on the profile.
var profileActions = []struct {
	action            string
	request, resource bool
}{
	{"iam:CreateInstanceProfile", true, false},
	{"iam:TagInstanceProfile", true, true},
	{"iam:AddRoleToInstanceProfile", false, true},
}

func (c *Checker) profileActionQuestions(className string) []authz.Question {
	tags := c.karpenterTags(className)
	resource := authz.IAMARN(c.partition, c.Account(), "instance-profile/*")
	qs := make([]authz.Question, len(profileActions))
	for i, a := range profileActions {
		qs[i] = authz.Question{Principal: c.controllerARN, Action: a.action, Resource: resource,
			Context: tagContext(tags, a.request, a.resource)}
	}
	return qs
}

func (c *Checker) judgeProfileActions(n *notes, className string, qs []authz.Question, as []Answer) []Finding {
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
	return []Finding{permissionDenial(InstanceProfileActionsDenied, rolePath, dd,
		"role %s may not %s on %s with Karpenter's tags (%s)%s: %s. %s",
		c.controllerARN, actionsOf(denied), denied[0].Resource, tagList(c.karpenterTags(className)), why, ans.Reason(),
		fix(ans, "Karpenter creates the instance profile for spec.role: allow these actions on instance-profile/* for these tags, or set spec.instanceProfile to a profile you manage"))}
}
