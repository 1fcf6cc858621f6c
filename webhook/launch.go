package webhook

import (
	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// launchActions are the EC2 calls Karpenter dry-runs and makes to launch
// nodes, with the resource type each is checked on.
var launchActions = []struct{ action, resource string }{
	{"ec2:RunInstances", "instance/*"},
	{"ec2:CreateFleet", "fleet/*"},
	{"ec2:CreateLaunchTemplate", "launch-template/*"},
}

// launchTags are the tags Karpenter's launch requests carry.
func (c *Checker) launchTags(cl class) []tag {
	nodePool := cl.nodePool
	if nodePool == "" {
		nodePool = cl.name
	}
	return []tag{
		{"kubernetes.io/cluster/" + c.cfg.ClusterName, "owned"},
		{"eks:eks-cluster-name", c.cfg.ClusterName},
		{"karpenter.sh/nodepool", nodePool},
		{"karpenter.k8s.aws/ec2nodeclass", cl.name},
	}
}

// launchQuestions share one context, so IAM answers them in one call.
func (c *Checker) launchQuestions(cl class) []authz.Question {
	ctx := tagContext(c.launchTags(cl), true, false)
	ctx["aws:RequestedRegion"] = []string{c.cfg.Region}
	qs := make([]authz.Question, len(launchActions))
	for i, a := range launchActions {
		qs[i] = authz.Question{Principal: c.controllerARN, Action: a.action,
			Resource: authz.EC2ARN(c.partition, c.cfg.Region, c.Account(), a.resource), Context: ctx}
	}
	return qs
}

func (c *Checker) judgeLaunch(n *notes, cl class, qs []authz.Question, as []Answer) []Finding {
	dd := deniedOf(n, specPath, qs, as)
	if len(dd.questions) == 0 {
		return nil
	}
	denied, ans := dd.questions, dd.first()
	return []Finding{permissionDenial(LaunchDenied, specPath, dd,
		"role %s may not %s on %s with Karpenter's tags (%s): %s. %s",
		c.controllerARN, actionsOf(denied), resourcesOf(denied), tagList(c.launchTags(cl)), ans.Reason(),
		fix(ans, "Allow these EC2 actions in the region for requests carrying these tags, as Karpenter's controller policy does"))}
}
