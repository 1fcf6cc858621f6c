package authz_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// TestUnavailableSummary checks that what IAM said survives the SDK's
// wrapping in the one-line summary the rules print.
func TestUnavailableSummary(t *testing.T) {
	cases := []struct {
		fault iamserver.Fault
		want  string
	}{
		{iamserver.Throttling, "Throttling: Rate exceeded"},
		{iamserver.ServiceFailure, "ServiceFailure"},
	}
	for _, tc := range cases {
		t.Run(string(tc.fault), func(t *testing.T) {
			srv, client, _ := endpoint(t)
			srv.FailAlways(tc.fault)
			_, err := authz.NewLive(client, authz.LiveOptions{}).Role(context.Background(), "KarpenterNodeRole-demo")
			var u *authz.UnavailableError
			if !errors.As(err, &u) {
				t.Fatalf("Role: got %v, want an *UnavailableError", err)
			}
			got := u.Summary()
			if len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Errorf("Summary() = %q, want it to start with %q (full error: %v)", got, tc.want, err)
			}
		})
	}
	if got := (&authz.UnavailableError{Op: "GetRole", Err: context.DeadlineExceeded}).Summary(); got != "timed out" {
		t.Errorf("deadline: Summary() = %q, want \"timed out\"", got)
	}
}
