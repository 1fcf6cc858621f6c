package rules

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// permissionsRule warns, once, that the controller's permissions are not
// checked when its role is unknown.
var permissionsRule = &Rule{
	Name:      "controller role",
	Codes:     []Code{PermissionChecksSkipped},
	Demotable: true,
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if o.iam && !o.cl.eks && c.controllerARN == "" {
			v.add(warn(PermissionChecksSkipped, specPath,
				"the Karpenter controller's role is unknown, so iam:PassRole and launch permissions were not checked. Start nodeclass-guard with --controller-role"))
		}
	},
}

// passRoleRule: the controller may pass the node role to EC2.
var passRoleRule = &Rule{
	Name:      "pass role",
	Late:      true,
	Demotable: true,
	Codes:     []Code{PassRoleDenied},
	Fields:    []string{"spec.role", "spec.instanceProfile"},
	Needs:     []fact{factNodeRole},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.perms || !o.nodeRoleFound {
			return
		}
		arn := o.nodeRole.ARN
		if arn == "" && o.roleOK {
			arn = c.nodeRoleARN(o.ref)
		}
		q.permissions("pass", c.passRoleQuestions(arn, o.roleOK))
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if qs := a.questions("pass"); len(qs) > 0 {
			v.addAll(c.judgePassRole(&o.n, o.path, qs, a.all("pass")))
		}
	},
}

// passRoleQuestions asks whether the controller may pass the node role to
// EC2. For spec.role (byKarpenter: Karpenter creates the instance profile)
// that is every value of iam:PassedToService the partition needs (two in
// China); for a profile the user manages, EC2's own.
func (c *Checker) passRoleQuestions(roleARN string, byKarpenter bool) []authz.Question {
	services := []string{authz.EC2ServicePrincipal(c.partition)}
	if byKarpenter {
		services = authz.EC2PassRoleServices(c.partition)
	}
	qs := make([]authz.Question, len(services))
	for i, svc := range services {
		qs[i] = authz.Question{
			Principal: c.controllerARN,
			Action:    "iam:PassRole",
			Resource:  roleARN,
			Context:   map[string][]string{"iam:PassedToService": {svc}},
		}
	}
	return qs
}

// judgePassRole denies when any of the iam:PassRole questions is denied.
func (c *Checker) judgePassRole(n *notes, path *field.Path, qs []authz.Question, as []Answer) []Finding {
	dd := deniedOf(n, path, qs, as)
	if len(dd.questions) == 0 {
		return nil
	}
	denied, ans := dd.questions, dd.first()
	services := make([]string, len(qs))
	for i, q := range qs {
		services[i] = q.Context["iam:PassedToService"][0]
	}
	var to, allow string
	if len(services) == 1 {
		to = services[0]
		allow = "Allow iam:PassRole on that ARN with iam:PassedToService=" + to
	} else {
		// China: EC2 receives the role as ec2.amazonaws.com.cn, while
		// IAM's AddRoleToInstanceProfile checks ec2.amazonaws.com.
		var denials []string
		for _, q := range denied {
			denials = append(denials, q.Context["iam:PassedToService"][0])
		}
		to = strings.Join(denials, " and ")
		allow = fmt.Sprintf("Allow iam:PassRole on that ARN with iam:PassedToService in [%s]: Karpenter's AddRoleToInstanceProfile passes the role to %s, EC2 receives it as %s",
			strings.Join(services, ", "), services[len(services)-1], services[0])
	}
	return []Finding{permissionDenial(PassRoleDenied, path, dd,
		"role %s may not iam:PassRole %s to %s: %s. %s",
		c.controllerARN, denied[0].Resource, to, ans.Reason(), fix(ans, allow))}
}
