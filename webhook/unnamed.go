package webhook

import (
	"regexp"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// ec2IDPattern matches the IDs of the EC2 resources a selector answer can
// name: subnets, security groups, images, VPCs, capacity reservations.
var ec2IDPattern = regexp.MustCompile(`\b(subnet|sg|ami|vpc|cr)-[0-9a-z]+\b`)

// withholdUnnamedIDs replaces, in the webhook's answers, every EC2
// resource ID the request did not name itself with its kind and "…":
// anyone who can reach the webhook port can send a wildcard selector
// term, and the answer must not list the account's subnets, security
// groups and images to them. The findings keep their codes and their
// reasons; `check`, run by the class's author with their own AWS access,
// prints the IDs.
func withholdUnnamedIDs(v *rules.Verdict, objs ...client.Object) {
	named := map[string]bool{}
	for _, o := range objs {
		if nc, ok := o.(*rules.EC2NodeClass); ok && nc != nil {
			for _, terms := range [][]rules.SelectorTerm{nc.Spec.SubnetSelectorTerms, nc.Spec.SecurityGroupSelectorTerms,
				nc.Spec.AMISelectorTerms, nc.Spec.CapacityReservationSelectorTerms} {
				for _, t := range terms {
					if t.ID != "" {
						named[t.ID] = true
					}
				}
			}
		}
	}
	mask := func(s string) string {
		return ec2IDPattern.ReplaceAllStringFunc(s, func(id string) string {
			if named[id] {
				return id
			}
			return ec2IDPattern.FindStringSubmatch(id)[1] + "-…"
		})
	}
	for _, fs := range [][]rules.Finding{v.Denials, v.Warnings} {
		for i := range fs {
			fs[i].Message = mask(fs[i].Message)
		}
	}
}
