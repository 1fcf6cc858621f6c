package reliability_test

import (
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

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
// once IAM is fast again.
func TestServeIAMSlow(t *testing.T) {
	e := serveEnv.Get(t)
	hc := webhookClient(true, e.CA.CertPEM())
	bound := serveIAMTimeout + 100*time.Millisecond
	cached := ec2NodeClass("serve-by-profile", "", "KarpenterNodeInstanceProfile-demo")
	// A class name (and so launch questions) no earlier run asked about:
	// go test -count=N shares serve and its cache between runs.
	fresh := ec2NodeClass(fmt.Sprintf("serve-never-asked-%d", time.Now().UnixNano()), "", "admin-profile")

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
	for _, obj := range []object{cached, fresh} {
		a := admit(t, hc, e.WebhookURL, obj)
		if a.codes()[string(rules.IAMStale)] || a.codes()[string(rules.IAMUnavailable)] {
			t.Errorf("IAM fast again: %s %s: %s", obj.kind.gvk.Kind, obj.name, a)
		}
	}
}
