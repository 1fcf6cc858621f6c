package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// TestRoleARNMalformedReasonKeepsTheInputWhole: a quote, or a quote and a
// space, inside spec.role does not cut the reason inside the input.
func TestRoleARNMalformedReasonKeepsTheInputWhole(t *testing.T) {
	for _, role := range []string{
		`arn:aws:iam::111122223333:user/" x`,
		`arn:aws:iam::111122223333:user/"`,
		`arn:aws:iam::12345:role/" x`,
	} {
		_, fs, ok := CheckRoleFormat(rolePath, role, "")
		if ok || len(fs) != 1 || fs[0].Code != RoleARNMalformed {
			t.Fatalf("%q: %+v, want one RoleARNMalformed", role, fs)
		}
		msg := fs[0].Message
		// The message quotes the input once, then says what is wrong.
		want := quote(role) + " starts with arn: but is not a valid IAM role ARN ("
		if !strings.HasPrefix(msg, want) {
			t.Errorf("%q: message %q, want it to start %q", role, msg, want)
		}
		if inner := msg[len(want):]; strings.HasPrefix(inner, "x\"") || strings.Contains(inner, `\"`) {
			t.Errorf("%q: the reason repeats a piece of the input: %q", role, inner)
		}
	}
}

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
	c := NewChecker(Config{IAM: snap, Controller: controller, ClusterName: "demo", Region: "us-west-2", OnIAMError: OnIAMErrorDeny})
	unknown := c.CheckEC2NodeClass(context.Background(), ec2Class("probe", "MadeUpRole-123", ""))
	if whole := unknown.DenialMessage(); !strings.Contains(whole, limited) {
		t.Errorf("the checker's own verdict (what check prints) lost the details: %s", whole)
	}
	withholdForUnknownIdentity(&unknown)
	codes := strings.Join(unknown.Codes(), ",")
	if !strings.Contains(codes, string(RoleNotFound)) || !strings.Contains(codes, string(LaunchDenied)) {
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
		if f.Code == LaunchDenied && !strings.Contains(f.Message, limited) {
			t.Errorf("existing role: [%s] %s, want the details (the controller role)", f.Code, f.Message)
		}
	}
}
