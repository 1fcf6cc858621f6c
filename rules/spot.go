package rules

import (
	"errors"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// A NodePool that allows spot capacity makes EC2 launch spot instances,
// which needs the account's AWSServiceRoleForEC2Spot service-linked role:
// EC2 creates it on the first spot launch if the launching role may
// iam:CreateServiceLinkedRole for spot.amazonaws.com, and otherwise fails
// with AuthFailure.ServiceLinkedRoleCreationNotPermitted. On-demand
// launches still work, so this is a warning.

// allowsSpot reports whether a NodePool's requirements allow spot capacity.
// Without a capacity-type requirement Karpenter launches on-demand only.
func allowsSpot(reqs []NodeSelectorRequirement) bool {
	seen := false
	for _, r := range reqs {
		if r.Key != capacityTypeKey {
			continue
		}
		seen = true
		has := containsString(r.Values, "spot")
		switch r.Operator {
		case "In":
			if !has {
				return false
			}
		case "NotIn":
			if has {
				return false
			}
		case "Exists":
		default: // DoesNotExist, Gt, Lt: no spot
			return false
		}
	}
	return seen
}

// spotRule warns when the NodePool allows spot, the spot service-linked
// role does not exist, and the launching role (the controller, or the
// cluster role for an EKS Auto Mode class) may not create it.
var spotRule = &Rule{
	Name:   "spot service-linked role",
	Codes:  []Code{SpotServiceLinkedRoleMissing, NodeJoinChecksSkipped},
	Fields: []string{"spec.template.spec.requirements", "spec.template.spec.nodeClassRef"},
	Needs:  []fact{factCluster, factClass},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.spot || o.poolClass == nil {
			return
		}
		q.query("slr", roleQuery(authz.SpotServiceLinkedRoleName))
		if principal := c.spotPrincipal(o); principal != "" {
			q.permissions("create", []authz.Question{{
				Principal: principal,
				Action:    "iam:CreateServiceLinkedRole",
				Resource:  authz.SpotServiceLinkedRoleARN(c.partition, c.Account()),
				Context:   map[string][]string{"iam:AWSServiceName": {authz.SpotServicePrincipal}},
			}})
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if o.spot && o.poolClass != nil {
			c.judgeSpot(v, o, c.spotPrincipal(o), a)
		}
	},
}

// spotPrincipal is the role that launches a NodePool's nodes: the
// controller's, or an EKS Auto Mode cluster's role ("" when unknown).
func (c *Checker) spotPrincipal(o *subject) string {
	if !o.spotAuto {
		return c.controllerARN
	}
	if o.clusterAsked && o.cluster.Err == nil {
		return o.cluster.Cluster.RoleARN
	}
	return ""
}

func (c *Checker) judgeSpot(v *Verdict, o *subject, principal string, a Answers) {
	var n notes
	defer n.report(v, c.cfg.OnIAMError, &o.stale)
	slr, _ := a.one("slr")
	switch {
	case slr.Err == nil:
		n.served(slr.Role.Served)
		return
	case !errors.Is(slr.Err, authz.ErrNotFound):
		n.skip("spot service-linked role", "GetRole "+authz.SpotServiceLinkedRoleName+": "+errSummary(slr.Err))
		return
	}
	if principal == "" {
		n.skip("spot service-linked role", "the launching role is unknown, so whether it may create "+authz.SpotServiceLinkedRoleName+" was not checked")
		return
	}
	create := a.all("create")
	if err := create[0].Err; err != nil {
		// A warning-only check: IAM's absence skips it, whatever
		// --on-iam-error says.
		n.skip("spot service-linked role", "SimulatePrincipalPolicy: "+errSummary(err))
		return
	}
	if len(deniedOf(&n, requirementsPath, a.questions("create"), create).questions) > 0 {
		v.add(spotWarning(requirementsPath, principal))
	}
}

// spotWarning names the fix first: a warning is cut at 256 characters.
func spotWarning(path *field.Path, principal string) Finding {
	return warn(SpotServiceLinkedRoleMissing, path,
		"no %s and role %s may not create it: spot launches fail. Run: aws iam create-service-linked-role --aws-service-name %s",
		authz.SpotServiceLinkedRoleName, roleName(principal), authz.SpotServicePrincipal)
}

// roleName is the name in a role ARN, for a message that must stay short.
func roleName(arn string) string {
	if r, err := authz.ParseRoleARN(arn); err == nil {
		return r.Name
	}
	return arn
}
