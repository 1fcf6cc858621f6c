package webhook

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// TestWithholdUnnamedIDs: the webhook's answer keeps the IDs the request
// named and withholds the others.
func TestWithholdUnnamedIDs(t *testing.T) {
	nc := ec2Class("x", "r", "")
	nc.Spec.SubnetSelectorTerms = []rules.SelectorTerm{{ID: "subnet-0a1demo"}, {Tags: map[string]string{"k": "*"}}}
	v := rules.Verdict{Warnings: []rules.Finding{{Code: rules.SelectorTermMatchesNothing, Field: field.NewPath("spec", "subnetSelectorTerms"), Message: "subnet term (tag k=*) matches no subnet; the class uses only the other terms' (subnet-0a1demo, subnet-0b2demo) in vpc-0abc, groups sg-0123 and image ami-0ffff"}}}
	withholdUnnamedIDs(&v, nc)
	got := v.Warnings[0].Message
	for _, kept := range []string{"subnet-0a1demo", "subnet-…", "vpc-…", "sg-…", "ami-…"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q lacks %q", got, kept)
		}
	}
	for _, gone := range []string{"subnet-0b2demo", "vpc-0abc", "sg-0123", "ami-0ffff"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q still names %q", got, gone)
		}
	}
}
