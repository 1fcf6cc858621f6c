package authz

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// applyFix returns set with the fix's Allow statements added to the
// documents they name and the Deny statements it names removed: what a
// user following the fix does.
func applyFix(t *testing.T, set PolicySet, fix Fix) PolicySet {
	t.Helper()
	out := PolicySet{Boundary: set.Boundary}
	for _, np := range set.Identity {
		out.Identity = append(out.Identity, np)
	}
	without := func(np NamedPolicy, sid string) NamedPolicy {
		p := *np.Policy
		p.Statements = nil
		for _, s := range np.Policy.Statements {
			if s.Label() != sid {
				p.Statements = append(p.Statements, s)
			}
		}
		return NamedPolicy{Name: np.Name, Policy: &p}
	}
	for _, c := range fix.Changes {
		switch {
		case c.Document.Statement != "" && c.Document.Type == string(DeniedByIdentity):
			for i, np := range out.Identity {
				if np.Name == c.Document.Policy {
					out.Identity[i] = without(np, c.Document.Statement)
				}
			}
		case c.Document.Statement != "" && c.Document.Type == string(DeniedByBoundary):
			b := without(*out.Boundary, c.Document.Statement)
			out.Boundary = &b
		case c.Policy == nil:
			t.Fatalf("change %+v: no Deny named, no statement", c)
		default:
			doc, err := json.Marshal(c.Policy)
			if err != nil {
				t.Fatal(err)
			}
			added := mustPolicy(t, string(doc))
			switch c.Document.Type {
			case string(DeniedByIdentity):
				out.Identity = append(out.Identity, NamedPolicy{Name: "fix", Policy: added})
			case string(DeniedByBoundary):
				if out.Boundary == nil || out.Boundary.Name != c.Document.Policy {
					t.Fatalf("change to boundary %q; the set's is %v", c.Document.Policy, out.Boundary)
				}
				merged := *out.Boundary.Policy
				merged.Statements = append(append([]Statement(nil), merged.Statements...), added.Statements...)
				out.Boundary = &NamedPolicy{Name: out.Boundary.Name, Policy: &merged}
			default:
				t.Fatalf("change to a %s cannot be applied here", c.Document.Type)
			}
		}
	}
	return out
}

func TestSuggestFixProved(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/Node"
	pass := q("iam:PassRole", role, "iam:PassedToService", "ec2.amazonaws.com")
	launch := []Question{
		q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestTag/karpenter.sh/nodepool", "pool", "aws:RequestTag/kubernetes.io/cluster/demo", "owned", "aws:TagKeys", "karpenter.sh/nodepool", "aws:TagKeys", "kubernetes.io/cluster/demo"),
		q("ec2:CreateFleet", "arn:aws:ec2:us-west-2:111122223333:fleet/*", "aws:RequestTag/karpenter.sh/nodepool", "pool", "aws:RequestTag/kubernetes.io/cluster/demo", "owned", "aws:TagKeys", "karpenter.sh/nodepool", "aws:TagKeys", "kubernetes.io/cluster/demo"),
	}
	denyAdmin := `{"Sid":"DenyNode","Effect":"Deny","Action":"iam:PassRole","Resource":"` + role + `"}`
	ec2Only := stmt(`{"Effect":"Allow","Action":"ec2:*","Resource":"*"}`)
	for _, tc := range []struct {
		name  string
		set   PolicySet
		qs    []Question
		types []string // the changes' document types, in order
	}{
		{name: "no statement allows", set: identity(t, stmt(`{"Effect":"Allow","Action":"s3:*","Resource":"*"}`)), qs: append([]Question{pass}, launch...),
			types: []string{"identity policy"}},
		{name: "the boundary does not allow", set: withBoundary(t, identity(t, stmt(allowAll)), ec2Only), qs: []Question{pass},
			types: []string{"permissions boundary"}},
		{name: "neither identity nor boundary allows", set: withBoundary(t, identity(t, stmt(`{"Effect":"Allow","Action":"s3:*","Resource":"*"}`)), ec2Only), qs: []Question{pass},
			types: []string{"permissions boundary", "identity policy"}},
		{name: "an explicit Deny, allowed without it", set: identity(t, stmt(allowAll), stmt(denyAdmin)), qs: []Question{pass},
			types: []string{"identity policy"}},
		{name: "an explicit Deny, and nothing allows", set: identity(t, stmt(denyAdmin)), qs: []Question{pass},
			types: []string{"identity policy", "identity policy"}},
		{name: "a Deny in the boundary", set: withBoundary(t, identity(t, stmt(allowAll)), stmt(allowAll+","+denyAdmin)), qs: []Question{pass},
			types: []string{"permissions boundary"}},
		{name: "mixed causes", set: withBoundary(t, identity(t, stmt(`{"Effect":"Allow","Action":"ec2:*","Resource":"*"}`)), ec2Only), qs: append([]Question{pass}, launch...),
			types: []string{"permissions boundary", "identity policy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ds []Denial
			for _, qq := range tc.qs {
				if d := Evaluate(tc.set, qq); !d.Allowed {
					ds = append(ds, Denial{Question: qq, Decision: d})
				}
			}
			if len(ds) == 0 {
				t.Fatal("nothing denied")
			}
			fix := SuggestFix(ds)
			var types []string
			for _, c := range fix.Changes {
				types = append(types, c.Document.Type)
			}
			if !reflect.DeepEqual(types, tc.types) || fix.Summary == "" {
				t.Errorf("changes %v, want %v: %+v", types, tc.types, fix)
			}
			fixed := applyFix(t, tc.set, fix)
			for _, qq := range tc.qs {
				if d := Evaluate(fixed, qq); !d.Allowed {
					t.Errorf("%s %s still denied (%s) after %s", qq.Action, qq.Resource, d.Reason(), fix.Summary)
				}
			}
			// The statements are no broader than asked: another role, or
			// a request without Karpenter's tags, is still denied when
			// nothing else allowed it.
			other := pass
			other.Resource = "arn:aws:iam::111122223333:role/Other"
			untagged := q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*")
			for _, qq := range []Question{other, untagged} {
				if Evaluate(tc.set, qq).Allowed {
					continue
				}
				if Evaluate(fixed, qq).Allowed {
					t.Errorf("the fix also allows %s %s %v", qq.Action, qq.Resource, qq.Context)
				}
			}
		})
	}
}

func TestStatements(t *testing.T) {
	qs := []Question{
		q("ec2:RunInstances", "arn:aws:ec2:r:1:instance/*", "aws:RequestTag/karpenter.sh/nodepool", "a", "aws:RequestedRegion", "r", "aws:TagKeys", "karpenter.sh/nodepool"),
		q("ec2:CreateFleet", "arn:aws:ec2:r:1:instance/*", "aws:RequestTag/karpenter.sh/nodepool", "a", "aws:RequestedRegion", "r"),
		q("iam:TagInstanceProfile", "arn:aws:iam::1:instance-profile/*", "aws:ResourceTag/Karpenter.K8s.Aws/EC2NodeClass", "x", "aws:ResourceTag/team", "a", "aws:ResourceTag/team", "b"),
	}
	got, err := json.Marshal(Statements(qs))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"Sid":"AllowRunInstancesCreateFleet","Effect":"Allow","Action":["ec2:RunInstances","ec2:CreateFleet"],"Resource":"arn:aws:ec2:r:1:instance/*",` +
		`"Condition":{"StringEquals":{"aws:RequestedRegion":"r"},"StringLike":{"aws:RequestTag/karpenter.sh/nodepool":"*"}}},` +
		`{"Sid":"AllowTagInstanceProfile","Effect":"Allow","Action":"iam:TagInstanceProfile","Resource":"arn:aws:iam::1:instance-profile/*",` +
		`"Condition":{"ForAllValues:StringEquals":{"aws:ResourceTag/team":["a","b"]},"StringLike":{"aws:ResourceTag/Karpenter.K8s.Aws/EC2NodeClass":"*"}}}]`
	if string(got) != want {
		t.Errorf("statements\n%s\nwant\n%s", got, want)
	}
}

func TestSuggestFixSCP(t *testing.T) {
	qq := q("ec2:RunInstances", "arn:aws:ec2:r:1:instance/*")
	explicit := SuggestFix([]Denial{{Question: qq, Decision: Decision{Explicit: true, DeniedBy: Denier{Source: DeniedBySCP}}}})
	if len(explicit.Changes) != 2 || explicit.Changes[0].Document != (DocumentRef{Type: "service control policy"}) || explicit.Changes[0].Policy != nil ||
		!strings.Contains(explicit.Summary, "Organizations administrator") {
		t.Errorf("explicit SCP deny: %+v", explicit)
	}
	implicit := SuggestFix([]Denial{{Question: qq, Decision: Decision{DeniedBy: Denier{Source: DeniedBySCP}}}})
	if len(implicit.Changes) != 1 || implicit.Changes[0].Document.Type != "service control policy" || implicit.Changes[0].Policy == nil {
		t.Errorf("implicit SCP deny: %+v", implicit)
	}
	if f := SuggestFix(nil); len(f.Changes) != 0 {
		t.Errorf("no denials: %+v", f)
	}
	var s Strings
	if err := json.Unmarshal([]byte(`"a"`), &s); err != nil || !reflect.DeepEqual(s, Strings{"a"}) {
		t.Errorf("Strings from a string: %v %v", s, err)
	}
	if err := json.Unmarshal([]byte(`["a","b"]`), &s); err != nil || !reflect.DeepEqual(s, Strings{"a", "b"}) {
		t.Errorf("Strings from a list: %v %v", s, err)
	}
}
