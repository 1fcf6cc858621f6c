package envtest_test

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// TestIAMOutage makes the local IAM endpoint fail every call (500
// ServiceFailure, which the SDK retries) while serve runs with
// --on-iam-error=deny: a question answered before the outage is answered
// again from the cache (admitted as before), a new one is denied with
// IAMUnavailable, and once IAM is back the same request gets IAM's real
// answer (the outage was not cached as a verdict).
func TestIAMOutage(t *testing.T) {
	e := v1Env.Get(t)
	if e.IAM == nil {
		t.Skip("needs the local IAM endpoint")
	}
	ctx := testContext(t)
	c := newClient(t, e)
	t.Cleanup(e.IAM.ClearFailures)

	known := ec2NodeClass("iam-outage-known", role("KarpenterNodeRole-demo"))
	warnings, err := create(ctx, c, known.DeepCopy(), client.DryRunAll)
	requireAllowed(t, err, "before the outage")
	requireWarnings(t, warnings, nil)

	e.IAM.FailAlways(iamserver.ServiceFailure)
	e.IAM.ResetCalls()

	warnings, err = create(ctx, c, known.DeepCopy(), client.DryRunAll)
	requireAllowed(t, err, "the same request during the outage (cached answers)")
	requireWarnings(t, warnings, nil, "IAMUnavailable")

	// A role name no earlier run (go test -count=N shares serve) asked about.
	fresh := ec2NodeClass("iam-outage-fresh", role(fmt.Sprintf("KarpenterNodeRole-never-asked-%d", time.Now().UnixNano())))
	_, err = create(ctx, c, fresh.DeepCopy(), client.DryRunAll)
	requireDenied(t, e, groupEC2NodeClass, err, "IAMUnavailable")
	if e.IAM.TotalCalls() == 0 {
		t.Error("the IAM endpoint saw no call during the outage: the denial did not come from asking IAM")
	}

	e.IAM.ClearFailures()
	_, err = create(ctx, c, fresh.DeepCopy(), client.DryRunAll)
	requireDenied(t, e, groupEC2NodeClass, err, "spec.role: RoleNotFound")
}
