package webhook

import (
	"regexp"
	"strings"

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
	held := false
	for _, fs := range [][]rules.Finding{v.Denials, v.Warnings} {
		for _, f := range fs {
			held = held || mayHoldID(f.Message)
		}
	}
	if !held {
		return // most answers: no message names an EC2 resource
	}
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
			if mayHoldID(fs[i].Message) {
				fs[i].Message = mask(fs[i].Message)
			}
		}
	}
}

// mayHoldID reports whether s holds one of ec2IDPattern's prefixes: a
// message without one has nothing to mask, and the pattern is not run.
func mayHoldID(s string) bool {
	for _, p := range idPrefixes {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// idPrefixes are ec2IDPattern's kinds with their dash.
var idPrefixes = []string{"subnet-", "sg-", "ami-", "vpc-", "cr-"}
