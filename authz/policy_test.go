package authz

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func mustPolicy(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatalf("ParsePolicy(%s): %v", doc, err)
	}
	return p
}

const trustEC2 = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func TestParsePolicyAcceptsEverySpelling(t *testing.T) {
	encoded := url.PathEscape(trustEC2)
	quotedJSON, _ := json.Marshal(trustEC2)
	quotedEncoded, _ := json.Marshal(encoded)
	for name, doc := range map[string]string{
		"object":                   trustEC2,
		"object with whitespace":   "\n  " + trustEC2 + "\n",
		"URL-encoded":              encoded,
		"JSON string of JSON":      string(quotedJSON),
		"JSON string, URL-encoded": string(quotedEncoded),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Statements) != 1 || p.Statements[0].Effect != Allow {
				t.Fatalf("statements = %+v", p.Statements)
			}
			if got := p.Statements[0].Principal.Service; !reflect.DeepEqual(got, []string{"ec2.amazonaws.com"}) {
				t.Errorf("Principal.Service = %q", got)
			}
			if p.Document() != trustEC2 {
				t.Errorf("Document() = %s, want the decoded JSON", p.Document())
			}
		})
	}
}

func TestParsePolicyURLEncodingKeepsPlus(t *testing.T) {
	// RFC 3986 encoding (what IAM returns) leaves '+' a literal plus.
	doc := `%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22iam%3APassRole%22%2C%22Resource%22%3A%22arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fa+b%22%7D%7D`
	p := mustPolicy(t, doc)
	if got := p.Statements[0].Resource[0]; got != "arn:aws:iam::111122223333:role/a+b" {
		t.Errorf("Resource = %q", got)
	}
}

func TestParsePolicyStatementShapes(t *testing.T) {
	p := mustPolicy(t, `{
		"Version": "2012-10-17",
		"Id": "doc",
		"Statement": {
			"Sid": "One",
			"Effect": "Deny",
			"NotAction": ["s3:*", "IAM:Get*"],
			"NotResource": "arn:aws:s3:::b/*",
			"Condition": {
				"Bool": {"aws:SecureTransport": false},
				"NumericLessThan": {"s3:max-keys": [10, "20"]},
				"StringEquals": {"aws:PrincipalTag/team": "a"}
			}
		}
	}`)
	if p.Version != "2012-10-17" || p.ID != "doc" {
		t.Errorf("Version/ID = %q/%q", p.Version, p.ID)
	}
	s := p.Statements[0]
	if s.Sid != "One" || s.Effect != Deny || s.Principal != nil {
		t.Errorf("statement = %+v", s)
	}
	if !reflect.DeepEqual(s.NotAction, []string{"s3:*", "IAM:Get*"}) || s.Action != nil {
		t.Errorf("NotAction = %q, Action = %q", s.NotAction, s.Action)
	}
	if !reflect.DeepEqual(s.NotResource, []string{"arn:aws:s3:::b/*"}) {
		t.Errorf("NotResource = %q", s.NotResource)
	}
	want := map[string]map[string][]string{
		"Bool":            {"aws:SecureTransport": {"false"}},
		"NumericLessThan": {"s3:max-keys": {"10", "20"}},
		"StringEquals":    {"aws:PrincipalTag/team": {"a"}},
	}
	if !reflect.DeepEqual(s.Condition, want) {
		t.Errorf("Condition = %v, want %v", s.Condition, want)
	}
	if s.Label() != "One" {
		t.Errorf("Label = %q", s.Label())
	}
}

func TestParsePolicyPrincipals(t *testing.T) {
	p := mustPolicy(t, `{"Statement":[
		{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
		{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","*"]},"Action":"sts:AssumeRole"},
		{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","eks.amazonaws.com"],"Federated":"arn:aws:iam::111122223333:oidc-provider/x"},"Action":"sts:AssumeRole"},
		{"Effect":"Deny","NotPrincipal":{"CanonicalUser":"abc"},"Action":"sts:AssumeRole"}
	]}`)
	st := p.Statements
	if !st[0].Principal.Any {
		t.Error(`"*" principal: Any not set`)
	}
	if !st[1].Principal.Any || len(st[1].Principal.AWS) != 2 {
		t.Errorf(`{"AWS": [..., "*"]}: %+v`, st[1].Principal)
	}
	if st[2].Principal.Any || len(st[2].Principal.Service) != 2 || len(st[2].Principal.Federated) != 1 {
		t.Errorf("services: %+v", st[2].Principal)
	}
	if st[3].NotPrincipal == nil || st[3].NotPrincipal.CanonicalUser[0] != "abc" {
		t.Errorf("NotPrincipal: %+v", st[3].NotPrincipal)
	}
	if st[3].Label() != "#3" {
		t.Errorf("Label of a statement without Sid = %q, want #3", st[3].Label())
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"empty", ``, []string{"empty"}},
		{"not JSON", `Version: 1`, []string{"neither a JSON object nor URL-encoded"}},
		{"syntax", `{"Statement": [}`, []string{"policy document"}},
		{"no statement", `{"Version":"2012-10-17"}`, []string{"no Statement"}},
		{"statement is string", `{"Statement":"x"}`, []string{"Statement is a string"}},
		{"bad effect names index and sid", `{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"},{"Sid":"Oops","Effect":"allow","Action":"a:b","Resource":"*"}]}`,
			[]string{"Statement[1]", `Sid "Oops"`, `Effect "allow" is neither Allow nor Deny`}},
		{"bad effect single statement", `{"Statement":{"Effect":"Permit","Action":"a:b"}}`, []string{"Statement: ", `"Permit"`}},
		{"no action", `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`, []string{"Statement[0]", "neither Action nor NotAction"}},
		{"empty action", `{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}`, []string{"Statement[0]", "empty Action"}},
		{"both actions", `{"Statement":[{"Effect":"Allow","Action":"a:b","NotAction":"c:d","Resource":"*"}]}`, []string{"both Action and NotAction"}},
		{"both resources", `{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","NotResource":"x"}]}`, []string{"both Resource and NotResource"}},
		{"resource number", `{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":5}]}`, []string{"Resource: is a number"}},
		{"string principal", `{"Statement":[{"Effect":"Allow","Principal":"ec2.amazonaws.com","Action":"sts:AssumeRole"}]}`, []string{"Principal", `"ec2.amazonaws.com"`}},
		{"principal type", `{"Statement":[{"Effect":"Allow","Principal":{"Services":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, []string{`unknown principal type "Services"`}},
		{"condition object value", `{"Statement":[{"Sid":"C","Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":{"x":1}}}}]}`, []string{`Sid "C"`, "Condition: StringEquals: k", "an object"}},
		{"bool value", `{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}]}`, []string{"Bool: aws:SecureTransport", `"yes" is not true or false`}},
		{"numeric value", `{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}]}`, []string{"not a number"}},
		{"bad url encoding", `%7B%ZZ`, []string{"URL-encoded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	var v struct {
		A *Policy
		B *Policy
	}
	encoded, _ := json.Marshal(url.PathEscape(trustEC2))
	in := `{"A": ` + trustEC2 + `, "B": ` + string(encoded) + `}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	if v.A.Document() != trustEC2 || v.B.Document() != trustEC2 {
		t.Fatalf("A=%s B=%s", v.A.Document(), v.B.Document())
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"A":` + trustEC2 + `,"B":` + trustEC2 + `}`; string(out) != want {
		t.Errorf("Marshal = %s\nwant %s", out, want)
	}
	if err := json.Unmarshal([]byte(`{"A": {"Statement": 1}}`), &v); err == nil {
		t.Error("a bad document decoded without error")
	}
}

func TestWildcardPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		fold, want bool
	}{
		{"*", "", false, true},
		{"*", "anything/at:all", false, true},
		{"**", "x", false, true},
		{"abc", "abc", false, true},
		{"abc", "abC", false, false},
		{"abc", "abcd", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"role/KarpenterNodeRole-*", "role/KarpenterNodeRole-demo", false, true},
		{"role/KarpenterNodeRole-*", "role/team/KarpenterNodeRole-team", false, false},
		{"role/*", "role/team/KarpenterNodeRole-team", false, true},
		{"a*b*c", "aXbYc", false, true},
		{"a*b*c", "abc", false, true},
		{"a*b*c", "acb", false, false},
		{"a*bc*bc", "abcbc", false, true},
		{"a*bc*bc", "abc", false, false},
		{"*-?", "x-y", false, true},
		{"*-?", "x-", false, false},
		{"ab*ba", "aba", false, false},
		{"iam:pass*", "IAM:PassRole", true, true},
		{"ec2:runinstances", "ec2:RunInstances", true, true},
		{"ec2:run?nstances", "EC2:RUNINSTANCES", true, true},
	} {
		p := compilePattern(tc.pattern, tc.fold)
		if got := p.match(tc.s); got != tc.want {
			t.Errorf("pattern %q (fold %v) on %q = %v, want %v", tc.pattern, tc.fold, tc.s, got, tc.want)
		}
	}
}
