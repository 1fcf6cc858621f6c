package rules

import (
	"strings"
	"testing"
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
