package reliability_test

import (
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// serveIAMTimeout and serveCacheTTL are serveEnv's --iam-timeout and
// --iam-cache-ttl (see main_test.go).
const (
	serveIAMTimeout = 2 * time.Second
	serveCacheTTL   = 2 * time.Second
)

// TestServeIAMSlow is TestIAMFaults' slow-IAM case against the real binary,
// so that serve's own wiring (--iam-timeout bounding each admission, the
// cache in front of the live view) is what is tested: an instance-profile
// class, whose check asks IAM in two rounds, is answered from its expired
// cache entries within --iam-timeout + 100 ms with [IAMStale]; a class IAM
// was never asked about is denied with [IAMUnavailable] (serveEnv runs
// with --on-iam-error=deny) within the same bound; both get fresh verdicts
// once IAM is fast again. The account is in an organization throughout:
// serve evaluates the controller role's policies itself (read once per
// TTL, so a stale read answers any class), and what IAM alone knows is
// what the SCPs say of each class's requests, which a never-asked class
// has nothing cached of.
func TestServeIAMSlow(t *testing.T) {
	e := serveEnv.Get(t)
	hc := webhookClient(true, e.CA.CertPEM())
	bound := serveIAMTimeout + 100*time.Millisecond
	cached := ec2NodeClass("serve-by-profile", "", "KarpenterNodeInstanceProfile-demo")
	// A class name (and so launch questions) no earlier run asked about:
	// go test -count=N shares serve and its cache between runs.
	fresh := ec2NodeClass(fmt.Sprintf("serve-never-asked-%d", time.Now().UnixNano()), "", "admin-profile")

	e.IAM.SetOrganization(&authz.Organization{})
	t.Cleanup(func() { e.IAM.SetOrganization(nil) })
	time.Sleep(serveCacheTTL + 500*time.Millisecond) // the policies are read again, in the organization

	healthy := admit(t, hc, e.WebhookURL, cached)
	if !healthy.allowed() || healthy.codes()[string(rules.IAMStale)] || healthy.codes()[string(rules.IAMUnavailable)] {
		t.Fatalf("healthy IAM: %s", healthy)
	}
	time.Sleep(serveCacheTTL + 500*time.Millisecond) // every answer expires

	e.IAM.SetLatency(10 * serveIAMTimeout)
	t.Cleanup(func() { e.IAM.SetLatency(0) })

	a := admit(t, hc, e.WebhookURL, cached)
	want := maps.Clone(healthy.codes())
	want[string(rules.IAMStale)] = true
	if a.allowed() != healthy.allowed() || !maps.Equal(a.codes(), want) {
		t.Errorf("slow IAM, expired cache: got %s\nwant the healthy verdict plus [IAMStale]: %s", a, healthy)
	}
	if a.elapsed > bound {
		t.Errorf("slow IAM, expired cache: answered in %v, past --iam-timeout (%v) + 100ms", a.elapsed, serveIAMTimeout)
	}

	a = admit(t, hc, e.WebhookURL, fresh)
	if a.allowed() || a.code() != http.StatusForbidden || !a.codes()[string(rules.IAMUnavailable)] {
		t.Errorf("slow IAM, nothing cached: got %s, want a 403 with [IAMUnavailable]", a)
	}
	if a.elapsed > bound {
		t.Errorf("slow IAM, nothing cached: answered in %v, past --iam-timeout (%v) + 100ms", a.elapsed, serveIAMTimeout)
	}

	e.IAM.SetLatency(0)
	// A read of the policies IAM was slow to answer may still be in flight
	// (and shared by the next admissions): fresh verdicts come once the
	// calls made while IAM was slow have ended, each within --iam-timeout.
	for _, obj := range []object{cached, fresh} {
		var a answer
		deadline := time.Now().Add(serveIAMTimeout + time.Second)
		for {
			a = admit(t, hc, e.WebhookURL, obj)
			if !a.codes()[string(rules.IAMStale)] && !a.codes()[string(rules.IAMUnavailable)] || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if a.codes()[string(rules.IAMStale)] || a.codes()[string(rules.IAMUnavailable)] {
			t.Errorf("IAM fast again: %s %s: %s", obj.kind.gvk.Kind, obj.name, a)
		}
	}
}
