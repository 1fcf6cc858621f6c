package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// TestUnknownRoleWithholdsControllerDetails: in the webhook's answer, a
// class naming a role that does not exist, sent by anyone, learns that the role does not exist and
// that the controller lacks permissions, but not the controller role's
// ARN, its policies' names or what their statements cover. The same class
// with an existing role gets the details.
func TestUnknownRoleWithholdsControllerDetails(t *testing.T) {
	snap := loadSampleSnapshot(t)
	const limited = "arn:aws:iam::111122223333:role/LimitedControllerRole"
	controller, err := authz.ParseRoleARN(limited)
	if err != nil {
		t.Fatal(err)
	}
	c := rules.NewChecker(rules.Config{IAM: snap, Controller: controller, ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny})
	unknown := c.CheckEC2NodeClass(context.Background(), ec2Class("probe", "MadeUpRole-123", ""))
	if whole := unknown.DenialMessage(); !strings.Contains(whole, limited) {
		t.Errorf("the checker's own verdict (what check prints) lost the details: %s", whole)
	}
	withholdForUnknownIdentity(&unknown)
	codes := strings.Join(unknown.Codes(), ",")
	if !strings.Contains(codes, string(rules.RoleNotFound)) || !strings.Contains(codes, string(rules.LaunchDenied)) {
		t.Fatalf("unknown role: codes %s, want RoleNotFound and LaunchDenied", codes)
	}
	for _, f := range append(unknown.Denials, unknown.Warnings...) {
		if !permissionCodes[f.Code] {
			continue
		}
		for _, secret := range []string{limited, "LimitedControllerRole", "PassNodeRoles", "policy statements match"} {
			if strings.Contains(f.Message, secret) {
				t.Errorf("unknown role: [%s] %s tells %q", f.Code, f.Message, secret)
			}
		}
		if !strings.Contains(f.Message, "Fix spec.role first") {
			t.Errorf("unknown role: [%s] %s does not say what to fix first", f.Code, f.Message)
		}
	}
	known := c.CheckEC2NodeClass(context.Background(), ec2Class("probe", "KarpenterNodeRole-demo", ""))
	withholdForUnknownIdentity(&known)
	for _, f := range known.Denials {
		if f.Code == rules.LaunchDenied && !strings.Contains(f.Message, limited) {
			t.Errorf("existing role: [%s] %s, want the details (the controller role)", f.Code, f.Message)
		}
	}
}
