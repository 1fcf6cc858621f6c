package authz_test

import (
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// TestSnapshotOrganization: the Organization section puts the account in
// an organization; its SCPs are evaluated as AWS does (allowed by each,
// denied by none; none means FullAWSAccess), and the keys their matching
// statements test that the request lacks are reported, Null included.
func TestSnapshotOrganization(t *testing.T) {
	doc := `{"RoleDetailList": [], "Organization": {"ServiceControlPolicies": [
	  {"PolicyName": "CostCenter", "Document": {"Version": "2012-10-17", "Statement": [
	    {"Effect": "Allow", "Action": "*", "Resource": "*"},
	    {"Sid": "Tag", "Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*", "Condition": {"Null": {"aws:RequestTag/CostCenter": "true"}}}]}}]}}`
	snap, err := authz.LoadSnapshot(strings.NewReader(doc), "org.json")
	if err != nil {
		t.Fatal(err)
	}
	org := snap.Organization()
	if org == nil || len(org.SCPs) != 1 {
		t.Fatalf("Organization = %+v", org)
	}
	d := authz.EvaluateSCPs(org, authz.Question{Action: "ec2:RunInstances", Resource: "*"})
	if d.Allowed || !d.Explicit || d.DeniedBy.Statement != "Tag" || len(d.Referenced) != 1 || d.Referenced[0] != "aws:RequestTag/CostCenter" {
		t.Errorf("untagged: %+v", d)
	}
	d = authz.EvaluateSCPs(org, authz.Question{Action: "ec2:RunInstances", Resource: "*", Context: map[string][]string{"aws:RequestTag/CostCenter": {"1"}}})
	if !d.Allowed || len(d.Referenced) != 0 {
		t.Errorf("tagged: %+v", d)
	}
	if d := authz.EvaluateSCPs(&authz.Organization{}, authz.Question{Action: "iam:PassRole", Resource: "*"}); !d.Allowed {
		t.Errorf("FullAWSAccess: %+v", d)
	}
	// An SCP that allows nothing for the action denies implicitly.
	onlyS3, _ := authz.ParsePolicy([]byte(`{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}`))
	if d := authz.EvaluateSCPs(&authz.Organization{SCPs: []authz.NamedPolicy{{Name: "S3Only", Policy: onlyS3}}}, authz.Question{Action: "iam:PassRole", Resource: "*"}); d.Allowed || d.Explicit || d.DeniedBy.Policy != "S3Only" {
		t.Errorf("implicit: %+v", d)
	}
	if _, err := authz.LoadSnapshot(strings.NewReader(`{"Organization": {"ServiceControlPolicies": [{"PolicyName": "x", "Document": {"Statement": "nope"}}]}}`), "bad.json"); err == nil || !strings.Contains(err.Error(), "ServiceControlPolicies[0]") {
		t.Errorf("bad SCP: %v", err)
	}
}
