package authz_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// FuzzEvaluate parses any document as an identity policy and another as a
// permissions boundary and evaluates any question against them. Checked:
// no panic; a parsed document re-parses from its own text to the same
// policy; Evaluate is deterministic; an allow is never explicit; a
// boundary only ever narrows (what it allows, the identity policy alone
// allows too), and an explicit deny in the identity policy survives it;
// TrustAllows does not panic either.
//
// Seeds: every policy, inline policy and trust policy of the sample
// snapshot, plus testdata/fuzz.
func FuzzEvaluate(f *testing.F) {
	docs := samplePolicyDocuments(f)
	for i, doc := range docs {
		boundary := docs[(i+1)%len(docs)]
		f.Add(doc, boundary, "iam:PassRole", demoNodeARN, "iam:PassedToService", "ec2.amazonaws.com")
		f.Add(doc, boundary, "ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestTag/karpenter.sh/nodepool", "default")
	}
	f.Fuzz(func(t *testing.T, doc, boundaryDoc []byte, action, resource, key, value string) {
		p, err := authz.ParsePolicy(doc)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("ParsePolicy: empty error")
			}
			return
		}
		again, err := authz.ParsePolicy([]byte(p.Document()))
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("policy does not re-parse from its own document %q: %v", p.Document(), err)
		}
		authz.TrustAllows(p, "ec2.amazonaws.com", "sts:AssumeRole")

		q := authz.Question{Principal: controllerARN, Action: action, Resource: resource}
		if key != "" {
			q.Context = map[string][]string{key: {value}}
		}
		set := authz.PolicySet{Identity: []authz.NamedPolicy{{Name: "fuzz", Policy: p}}}
		d := authz.Evaluate(set, q)
		if d2 := authz.Evaluate(set, q); !reflect.DeepEqual(d, d2) {
			t.Fatalf("Evaluate is not deterministic: %+v, then %+v", d, d2)
		}
		if d.Allowed && d.Explicit {
			t.Fatalf("allowed and explicitly denied: %+v", d)
		}

		b, err := authz.ParsePolicy(boundaryDoc)
		if err != nil {
			return
		}
		set.Boundary = &authz.NamedPolicy{Name: "boundary", Policy: b}
		bounded := authz.Evaluate(set, q)
		if bounded.Allowed && !d.Allowed {
			t.Fatalf("a boundary widened a denial: alone %+v, bounded %+v", d, bounded)
		}
		if d.Explicit && (bounded.Allowed || !bounded.Explicit) {
			t.Fatalf("a boundary undid an explicit deny: alone %+v, bounded %+v", d, bounded)
		}
	})
}

// FuzzWildcard checks IAM wildcard matching, through a one-statement
// policy, against a reference built on regexp: '*' is any run of
// characters, '?' exactly one, everything else literal and case-sensitive
// in resources. Inputs are ASCII, where '?' as one byte and as one
// character agree.
func FuzzWildcard(f *testing.F) {
	for _, s := range [][2]string{
		{"arn:aws:iam::*:role/*", demoNodeARN},
		{"arn:aws:iam::111122223333:role/KarpenterNodeRole-*", teamNodeARN},
		{"arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-west-2:111122223333:instance/*"},
		{"a*b*c", "abbbc"},
		{"a?c", "abc"},
		{"**", ""},
		{"*a*a*a*a*a*a*b", strings.Repeat("a", 40)},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, resourcePattern, resource string) {
		if !isPrintableASCII(resourcePattern) || !isPrintableASCII(resource) || strings.ContainsAny(resourcePattern, `"\`) {
			return
		}
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"` + resourcePattern + `"}]}`
		p, err := authz.ParsePolicy([]byte(doc))
		if err != nil {
			t.Fatalf("a one-statement policy with Resource %q: %v", resourcePattern, err)
		}
		got := authz.Evaluate(authz.PolicySet{Identity: []authz.NamedPolicy{{Name: "p", Policy: p}}},
			authz.Question{Principal: controllerARN, Action: "s3:GetObject", Resource: resource}).Allowed
		want := wildcardRegexp(resourcePattern).MatchString(resource)
		if got != want {
			t.Fatalf("Resource %q on %q: allowed = %v, regexp says %v", resourcePattern, resource, got, want)
		}
	})
}

func wildcardRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s)`)
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// samplePolicyDocuments returns every policy document in the sample
// snapshot as it is written there (JSON objects or URL-encoded strings).
func samplePolicyDocuments(f *testing.F) [][]byte {
	f.Helper()
	data, err := os.ReadFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		f.Fatal(err)
	}
	var all struct {
		RoleDetailList []struct {
			AssumeRolePolicyDocument json.RawMessage
			RolePolicyList           []struct{ PolicyDocument json.RawMessage }
		}
		Policies []struct {
			PolicyVersionList []struct{ Document json.RawMessage }
		}
	}
	if err := json.Unmarshal(data, &all); err != nil {
		f.Fatal(err)
	}
	var docs [][]byte
	add := func(raw json.RawMessage) {
		if len(raw) > 0 {
			docs = append(docs, raw)
		}
	}
	for _, r := range all.RoleDetailList {
		add(r.AssumeRolePolicyDocument)
		for _, p := range r.RolePolicyList {
			add(p.PolicyDocument)
		}
	}
	for _, p := range all.Policies {
		for _, v := range p.PolicyVersionList {
			add(v.Document)
		}
	}
	if len(docs) == 0 {
		f.Fatal("no policy documents in the sample snapshot")
	}
	return docs
}
