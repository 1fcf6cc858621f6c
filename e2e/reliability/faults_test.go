package reliability_test

import (
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// faultIAMTimeout is --iam-timeout in the fault tests: short, so that the
// tests are quick, yet long enough for a loaded CI machine to answer a
// local endpoint within it.
const faultIAMTimeout = 750 * time.Millisecond

// answerBound is how long an admission may take while IAM misbehaves:
// --iam-timeout plus 100 ms. It bounds a hang; it is not a speed target.
const answerBound = faultIAMTimeout + 100*time.Millisecond

// iamFault is one way IAM fails, as the webhook's live view meets it.
type iamFault struct {
	name string
	// outcome is the nodeclass_guard_iam_requests_total outcome the failed
	// calls are counted under.
	outcome string
	start   func(r *liveRig)
	end     func(r *liveRig)
}

var iamFaults = []iamFault{
	{
		name: "IAM down (listener closed)", outcome: authz.OutcomeError,
		start: func(r *liveRig) { r.endpoint.down() },
		end:   func(r *liveRig) { r.endpoint.up() },
	},
	{
		name: "IAM slower than --iam-timeout", outcome: authz.OutcomeTimeout,
		start: func(r *liveRig) { r.iam.SetLatency(3 * r.timeout) },
		end:   func(r *liveRig) { r.iam.SetLatency(0) },
	},
	{
		name: "IAM throttling", outcome: authz.OutcomeThrottled,
		start: func(r *liveRig) { r.iam.FailAlways(iamserver.Throttling) },
		end:   func(r *liveRig) { r.iam.ClearFailures() },
	},
	{
		name: "IAM 5xx", outcome: authz.OutcomeError,
		start: func(r *liveRig) { r.iam.FailAlways(iamserver.ServiceFailure) },
		end:   func(r *liveRig) { r.iam.ClearFailures() },
	},
	{
		name: "IAM malformed XML", outcome: authz.OutcomeError,
		start: func(r *liveRig) { r.iam.FailAlways(iamserver.MalformedXML) },
		end:   func(r *liveRig) { r.iam.ClearFailures() },
	},
}

// TestIAMFaults breaks IAM in each way it breaks and checks what the
// webhook answers meanwhile and afterwards:
//
//   - every admission is answered within --iam-timeout + 100 ms;
//   - an object whose IAM answers are cached (expired) gets the verdict
//     those answers give, with an [IAMStale] warning, whatever
//     --on-iam-error says: a broken class stays denied, a good one
//     admitted;
//   - an object with no cached answer follows --on-iam-error: allowed with
//     an [IAMUnavailable] warning, or denied with [IAMUnavailable];
//   - the IAM call, cache and verdict metrics count all of it;
//   - once IAM answers again, the next admission gets a fresh verdict,
//     with nobody restarting anything.
func TestIAMFaults(t *testing.T) {
	for _, fault := range iamFaults {
		t.Run(fault.name, func(t *testing.T) {
			r := newLiveRig(t, faultIAMTimeout)
			testFault(t, r, fault)
		})
	}
}

func testFault(t *testing.T, r *liveRig, fault iamFault) {
	// Objects whose IAM answers get cached while IAM is healthy.
	r.classes.put("good", "KarpenterNodeRole-demo", "")
	r.classes.put("by-profile", "", "KarpenterNodeInstanceProfile-demo")
	// The first ones ask IAM in two rounds (the second question depends on
	// the first answer); they go first, while the SDK's retry quota is
	// full and a failing call takes all of its --iam-timeout budget.
	cached := []object{
		ec2NodeClass("team", "KarpenterNodeRole-team", ""), // PassRole asked on the path guess, then on the real ARN
		ec2NodeClass("by-profile", "", "KarpenterNodeInstanceProfile-demo"),
		nodePool("pool-by-profile", "by-profile"),
		ec2NodeClass("good", "KarpenterNodeRole-demo", ""),
		ec2NodeClass("no-trust", "KarpenterNodeRole-notrust", ""), // RoleTrustMissingEC2
		ec2NodeClass("empty-profile", "", "EmptyProfile"),         // InstanceProfileHasNoRole
		nodePool("pool", "good"),
		eksNodeClass("auto", "KarpenterNodeRole-demo"),
	}
	// Objects IAM was never asked about.
	uncached := []object{
		ec2NodeClass("fresh", "OtherNodeRole", ""),
		ec2NodeClass("fresh-profile", "", "admin-profile"),
		eksNodeClass("fresh-auto", "AdminNodeRole"),
	}
	// A role that does not exist: its not-found answer is cached for the
	// negative TTL only, and an expired not-found is never served stale.
	missing := ec2NodeClass("ghost", "GhostRole", "")

	healthy := map[string]answer{}
	for _, obj := range append(slices.Clone(cached), missing) {
		a := admit(t, r.hc, r.denyURL, obj)
		if a.codes()[string(rules.IAMUnavailable)] || a.codes()[string(rules.IAMStale)] {
			t.Fatalf("healthy IAM: %s %s: %s", obj.kind.gvk.Kind, obj.name, a)
		}
		healthy[obj.name] = a
	}
	if healthy["good"].allowed() != true || healthy["no-trust"].allowed() || healthy["empty-profile"].allowed() || !healthy["ghost"].codes()[string(rules.RoleNotFound)] {
		t.Fatalf("the sample scenario changed: good %s; no-trust %s; empty-profile %s; ghost %s",
			healthy["good"], healthy["no-trust"], healthy["empty-profile"], healthy["ghost"])
	}

	// Every cached answer expires; stale ones stay servable for a day.
	r.clock.Advance(2 * r.ttl)
	before := snapshotMetrics(t, r, fault.outcome)
	fault.start(r)

	t.Run("cached answers served stale", func(t *testing.T) {
		for _, obj := range cached {
			for _, base := range []string{r.allowURL, r.denyURL} {
				a := admit(t, r.hc, base, obj)
				checkBound(t, obj, a)
				want := maps.Clone(healthy[obj.name].codes())
				want[string(rules.IAMStale)] = true
				if a.allowed() != healthy[obj.name].allowed() || !maps.Equal(a.codes(), want) {
					t.Errorf("%s %s with IAM failing:\n got %s\nwant the healthy verdict plus [IAMStale]: %s",
						obj.kind.gvk.Kind, obj.name, a, healthy[obj.name])
				}
			}
		}
	})

	t.Run("no cached answer follows --on-iam-error", func(t *testing.T) {
		for _, obj := range append(slices.Clone(uncached), missing) {
			a := admit(t, r.hc, r.allowURL, obj)
			checkBound(t, obj, a)
			if !a.allowed() || !a.codes()[string(rules.IAMUnavailable)] {
				t.Errorf("--on-iam-error=allow: %s %s: got %s, want allowed with an [IAMUnavailable] warning", obj.kind.gvk.Kind, obj.name, a)
			}
			a = admit(t, r.hc, r.denyURL, obj)
			checkBound(t, obj, a)
			if a.allowed() || a.code() != http.StatusForbidden || !a.codes()[string(rules.IAMUnavailable)] {
				t.Errorf("--on-iam-error=deny: %s %s: got %s, want a 403 denial with [IAMUnavailable]", obj.kind.gvk.Kind, obj.name, a)
			}
		}
	})

	t.Run("metrics count it", func(t *testing.T) {
		after := snapshotMetrics(t, r, fault.outcome)
		if after.failedCalls <= before.failedCalls {
			t.Errorf("nodeclass_guard_iam_requests_total{outcome=%q} stayed at %v", fault.outcome, after.failedCalls)
		}
		if after.stale <= before.stale {
			t.Errorf("nodeclass_guard_iam_cache_total{result=stale} stayed at %v", after.stale)
		}
		if after.staleVerdicts <= before.staleVerdicts {
			t.Errorf("nodeclass_guard_verdicts_total{code=IAMStale} stayed at %v", after.staleVerdicts)
		}
		if after.unavailableAllowed <= before.unavailableAllowed || after.unavailableDenied <= before.unavailableDenied {
			t.Errorf("nodeclass_guard_verdicts_total{code=IAMUnavailable}: allowed %v → %v, denied %v → %v; want both counted",
				before.unavailableAllowed, after.unavailableAllowed, before.unavailableDenied, after.unavailableDenied)
		}
	})

	fault.end(r)

	t.Run("recovers by itself", func(t *testing.T) {
		for _, obj := range append(append(slices.Clone(cached), uncached...), missing) {
			a := admit(t, r.hc, r.denyURL, obj)
			if a.codes()[string(rules.IAMStale)] || a.codes()[string(rules.IAMUnavailable)] {
				t.Errorf("IAM healthy again: %s %s: %s", obj.kind.gvk.Kind, obj.name, a)
				continue
			}
			if h, ok := healthy[obj.name]; ok && (a.allowed() != h.allowed() || !maps.Equal(a.codes(), h.codes())) {
				t.Errorf("IAM healthy again: %s %s:\n got %s\nwant %s", obj.kind.gvk.Kind, obj.name, a, h)
			}
		}
	})
}

// checkBound fails the test when an admission took longer than
// --iam-timeout + 100 ms.
func checkBound(t *testing.T, obj object, a answer) {
	t.Helper()
	if a.elapsed > answerBound {
		t.Errorf("%s %s answered in %v, past --iam-timeout (%v) + 100ms", obj.kind.gvk.Kind, obj.name, a.elapsed.Round(time.Millisecond), faultIAMTimeout)
	}
}

// faultMetrics are the series a fault must move.
type faultMetrics struct {
	failedCalls, stale, staleVerdicts, unavailableAllowed, unavailableDenied float64
}

func snapshotMetrics(t *testing.T, r *liveRig, outcome string) faultMetrics {
	t.Helper()
	var m faultMetrics
	for _, api := range []string{"GetRole", "GetInstanceProfile", "SimulatePrincipalPolicy"} {
		m.failedCalls += counterValue(t, r.iamMetrics.Requests, api, outcome)
	}
	m.stale = counterValue(t, r.iamMetrics.Cache, authz.CacheStale)
	for _, kind := range []string{rules.EC2NodeClassKind, rules.NodePoolKind, rules.NodeClassKind} {
		for _, verdict := range []string{"allowed", "denied"} {
			m.staleVerdicts += counterValue(t, r.verdicts.Verdicts, kind, verdict, string(rules.IAMStale))
		}
		m.unavailableAllowed += counterValue(t, r.verdicts.Verdicts, kind, "allowed", string(rules.IAMUnavailable))
		m.unavailableDenied += counterValue(t, r.verdicts.Verdicts, kind, "denied", string(rules.IAMUnavailable))
	}
	return m
}
