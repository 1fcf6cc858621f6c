package check

import (
	"context"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// TestEncryptedVolumesFixture: Karpenter's getting-started controller
// policy plus "deny RunInstances on volumes while ec2:Encrypted is false"
// (testdata/guardrails/encrypted-volumes) refuses the class whose
// blockDeviceMappings are unencrypted and admits it encrypted.
func TestEncryptedVolumesFixture(t *testing.T) {
	const dir = "../testdata/guardrails/encrypted-volumes"
	snap, err := authz.LoadSnapshotFile(dir + "/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	c := rules.NewChecker(rules.Config{IAM: snap, EKS: snap, EC2: snap, KubernetesVersion: "1.34", Controller: ctl,
		ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny})
	docs, err := ReadPaths([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	report := Run(context.Background(), c, docs)
	seen := 0
	for _, r := range report.Results {
		deny, warn := resultCodes(r)
		switch {
		case strings.HasSuffix(r.Source, "/unencrypted.yaml#1"):
			seen++
			if strings.Join(deny, ",") != "LaunchDenied" || !strings.Contains(r.Denials[0].Message, "ec2:RunInstances on volume/*") ||
				!strings.Contains(r.Denials[0].Message, `"DenyUnencryptedVolumes"`) {
				t.Errorf("unencrypted: denials %v, warnings %v: %+v", deny, warn, r.Denials)
			}
		case strings.HasSuffix(r.Source, "/encrypted.yaml#1"):
			seen++
			// Encrypted with the account's default key: the KMS rule's
			// warning, nothing about the launch.
			if len(deny) != 0 || strings.Join(warn, ",") != "EBSDefaultKMSKey" || len(r.NotChecked) != 0 {
				t.Errorf("encrypted: denials %v, warnings %v, not checked %+v", deny, warn, r.NotChecked)
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d of the fixture's classes checked, want 2: %+v", seen, report.Results)
	}
}
