package rules

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// In EKS Auto Mode the principal that launches nodes is the cluster's IAM
// role, not a Karpenter controller: it passes the node role to EC2 and
// tags what it launches with the NodeClass's spec.tags, which EKS's
// managed policies do not allow by default.

// autoModeRule: EKS Auto Mode's cluster role may pass the node role to
// EC2 and launch with the class's spec.tags.
var autoModeRule = &Rule{
	Name:      "EKS Auto Mode launch",
	Late:      true,
	Demotable: true,
	Codes:     []Code{AutoModePassRoleDenied, AutoModeTagDenied},
	Fields:    []string{"spec.role", "spec.instanceProfile", "spec.tags"},
	Needs:     []fact{factNodeRole, factCluster},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.cl.eks || !o.nodeRoleFound {
			return
		}
		p, skip := c.joinable(o)
		if skip != "" {
			return
		}
		auto := c.autoModeQuestions(p.cluster, p.role, o.cl)
		q.keep(auto)
		q.permissions("pass", auto.pass)
		q.permissions("tags", auto.tags)
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if !o.cl.eks || !o.nodeRoleFound {
			return
		}
		p, skip := c.joinable(o)
		if skip != "" {
			return
		}
		auto, _ := a.kept().(autoModePlan)
		c.judgeAutoMode(v, &o.n, o.cl, o.path, p, auto, a.all("pass"), a.all("tags"))
	},
}

// autoModePlan holds the cluster role's questions for one class.
type autoModePlan struct {
	pass []authz.Question
	tags []authz.Question
}

// autoModeQuestions asks, when the cluster runs EKS Auto Mode and its role
// is known, whether that role may pass the node role to EC2 and launch
// with the class's tags.
func (c *Checker) autoModeQuestions(cluster authz.Cluster, role authz.RoleARN, cl class) autoModePlan {
	if !cluster.AutoMode || cluster.RoleARN == "" {
		return autoModePlan{}
	}
	p := autoModePlan{pass: []authz.Question{{
		Principal: cluster.RoleARN,
		Action:    "iam:PassRole",
		Resource:  role.String(),
		Context:   map[string][]string{"iam:PassedToService": {authz.EC2ServicePrincipal(c.partition)}},
	}}}
	if len(cl.tags) == 0 {
		return p
	}
	ctx := tagContext(c.autoModeTags(cl), true, false)
	ctx["aws:RequestedRegion"] = []string{c.cfg.Region}
	for _, a := range autoModeLaunchActions {
		p.tags = append(p.tags, authz.Question{Principal: cluster.RoleARN, Action: a.action,
			Resource: authz.EC2ARN(c.partition, c.cfg.Region, c.Account(), a.resource), Context: ctx})
	}
	return p
}

// autoModeLaunchActions are the EC2 calls EKS Auto Mode makes with the
// cluster role to launch a NodeClass's nodes, with the resource type each
// is checked on.
var autoModeLaunchActions = []struct{ action, resource string }{
	{"ec2:RunInstances", "instance/*"},
	{"ec2:CreateFleet", "fleet/*"},
	{"ec2:CreateLaunchTemplate", "launch-template/*"},
}

// autoModeTags are the class's spec.tags, sorted, with the cluster tag EKS
// adds.
func (c *Checker) autoModeTags(cl class) []tag {
	keys := make([]string, 0, len(cl.tags))
	for k := range cl.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := []tag{{"eks:eks-cluster-name", c.cfg.ClusterName}}
	for _, k := range keys {
		tags = append(tags, tag{k, cl.tags[k]})
	}
	return tags
}

// judgeAutoMode judges the cluster role's answers.
func (c *Checker) judgeAutoMode(v *Verdict, n *notes, cl class, path *field.Path, p joinPlan, auto autoModePlan, pass, tags []Answer) {
	if !p.cluster.AutoMode {
		n.skip("EKS Auto Mode launch", fmt.Sprintf("cluster %s does not have Auto Mode compute enabled", p.cluster.Name))
		return
	}
	if p.cluster.RoleARN == "" {
		n.skip("EKS Auto Mode launch", "DescribeCluster gave no cluster role")
		return
	}
	if dd := deniedOf(n, path, auto.pass, pass); len(dd.questions) > 0 {
		d := dd.first()
		v.add(permissionDenial(AutoModePassRoleDenied, path, dd,
			"EKS Auto Mode's cluster role %s may not iam:PassRole %s to %s: %s. %s",
			p.cluster.RoleARN, p.role, authz.EC2ServicePrincipal(c.partition), d.Reason(),
			fix(d, "Allow iam:PassRole on that ARN with iam:PassedToService="+authz.EC2ServicePrincipal(c.partition)+" in the cluster role's policies")))
	}
	if dd := deniedOf(n, specPath.Child("tags"), auto.tags, tags); len(dd.questions) > 0 {
		denied, d := dd.questions, dd.first()
		v.add(permissionDenial(AutoModeTagDenied, specPath.Child("tags"), dd,
			"EKS Auto Mode's cluster role %s may not %s with the class's tags (%s): %s. %s",
			p.cluster.RoleARN, actionsOf(denied), tagList(c.autoModeTags(cl)), d.Reason(),
			fix(d, "Allow these EC2 actions with these request tags in the cluster role's policies (EKS's managed policies allow no custom tags)")))
	}
}
