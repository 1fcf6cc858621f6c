package reliability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// The attacks of issue 22, against the real serve binary as deploy/ runs
// it (attackEnv): inputs past what AWS and the CRDs accept, one source
// filling the slots, and optional services that drop connections.

// clientFrom is a webhook client whose connections leave from the
// loopback address ip (127.0.0.x): serve counts per client address.
func clientFrom(e *framework.Env, ip string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: tlsConfig(e), MaxIdleConnsPerHost: 64,
	}}
}

func tagsJSON(n int) map[string]string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprintf("team.example.com/tag-%05d", i)] = "value"
	}
	return tags
}

// flood sends body 64 times at once, from four client addresses (16 each,
// a source's share of the slots), and returns the answers by code.
func flood(t *testing.T, e *framework.Env, path string, body []byte) (map[string]int, cost) {
	t.Helper()
	u := watch(t, e)
	var (
		mu  sync.Mutex
		got = map[string]int{}
		wg  sync.WaitGroup
	)
	var clients []*http.Client
	for src := range 4 {
		hc := clientFrom(e, fmt.Sprintf("127.0.0.%d", src+1))
		clients = append(clients, hc)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := post(context.Background(), hc, e.WebhookURL+path, body)
				key := ""
				switch {
				case err != nil:
					key = "error: " + err.Error()
				case a.response == nil:
					key = fmt.Sprintf("HTTP %d", a.status)
				default:
					var cs []string
					for c := range a.codes() {
						cs = append(cs, c)
					}
					slices.Sort(cs)
					key = fmt.Sprintf("%d %s", a.code(), strings.Join(cs, ","))
				}
				mu.Lock()
				got[key]++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	c := u.stop()
	checkRSS(t, c)
	for _, hc := range clients {
		hc.CloseIdleConnections()
	}
	return got, c
}

// TestAttackHugeTags: an EC2NodeClass with 10,000 tags (about 300 KB),
// which the CRD lets through and a user allowed only to dry-run may send,
// 64 at once: each is refused with [TagsExceedLimit] before any question
// is planned, and serve stays within its container.
func TestAttackHugeTags(t *testing.T) {
	e := attackEnv.Get(t)
	spec, _ := json.Marshal(map[string]any{"role": "KarpenterNodeRole-demo", "tags": tagsJSON(10000)})
	body := createReview(ec2NodeClassV1, "huge-tags", rawObject(ec2NodeClassV1, "huge-tags", string(spec)))
	got, c := flood(t, e, webhook.EC2NodeClassPath, body)
	t.Logf("64 admissions of a %d KiB class with 10,000 tags: %v; %s", len(body)>>10, got, c)
	// The bytes in flight (8 MiB) hold about 22 such bodies at once; the
	// others are refused 429 unread, as the failure model says.
	if got["403 TagsExceedLimit"] == 0 || got["403 TagsExceedLimit"]+got["HTTP 429"] != 64 {
		t.Errorf("answers %v, want denials with [TagsExceedLimit] alone, the rest 429", got)
	}
	if c.iamCalls != 0 {
		t.Errorf("%d IAM calls for classes refused by their bounds, want none", c.iamCalls)
	}
	stillServes(t, e)
}

// TestAttackTermsBeyondTheCRD: selector lists of 200 terms of 20 tags, as a
// caller that skips the API server may send, 64 at once: refused with
// [SpecExceedsLimit], nothing asked, serve within its container.
func TestAttackTermsBeyondTheCRD(t *testing.T) {
	e := attackEnv.Get(t)
	terms := make([]map[string]any, 200)
	for i := range terms {
		tags := map[string]string{}
		for j := range 20 {
			tags[fmt.Sprintf("k%d-%d", i, j)] = "*"
		}
		terms[i] = map[string]any{"tags": tags}
	}
	spec, _ := json.Marshal(map[string]any{"role": "KarpenterNodeRole-demo", "subnetSelectorTerms": terms,
		"securityGroupSelectorTerms": terms, "amiSelectorTerms": terms})
	body := createReview(ec2NodeClassV1, "many-terms", rawObject(ec2NodeClassV1, "many-terms", string(spec)))
	got, c := flood(t, e, webhook.EC2NodeClassPath, body)
	t.Logf("64 admissions of a %d KiB class with 3 x 200 terms: %v; %s", len(body)>>10, got, c)
	if got["403 SpecExceedsLimit"] == 0 || got["403 SpecExceedsLimit"]+got["HTTP 429"] != 64 {
		t.Errorf("answers %v, want denials with [SpecExceedsLimit] alone, the rest 429", got)
	}
	if c.iamCalls != 0 {
		t.Errorf("%d IAM calls, want none", c.iamCalls)
	}
	// 101 requirements in a NodePool.
	reqs := make([]map[string]any, 101)
	for i := range reqs {
		reqs[i] = map[string]any{"key": fmt.Sprintf("example.com/k%d", i), "operator": "Exists"}
	}
	np, _ := json.Marshal(map[string]any{"template": map[string]any{"spec": map[string]any{"requirements": reqs,
		"nodeClassRef": map[string]string{"group": rules.KarpenterAWSGroup, "kind": rules.EC2NodeClassKind, "name": "default"}}}})
	a := admit(t, webhookClient(false, e.CA.CertPEM()), e.WebhookURL, object{kind: nodePoolV1, name: "many-reqs", json: rawObject(nodePoolV1, "many-reqs", string(np))})
	if a.allowed() || !a.codes()[string(rules.SpecExceedsLimit)] {
		t.Errorf("a NodePool with 101 requirements: %s, want [SpecExceedsLimit]", a)
	}
}

// TestAttackOneSourceFillsTheSlots: 64 connections from one address send
// small bodies a byte at a time. They hold at most the address's share of
// the request slots, and are cut within seconds; meanwhile a class sent
// from another address (the API server's) gets its verdict.
func TestAttackOneSourceFillsTheSlots(t *testing.T) {
	e := attackEnv.Get(t)
	ctx := testContext(t)
	u := watch(t, e)
	var wg sync.WaitGroup
	var refused, cut atomic.Int64
	stop := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := rawRequest(ctx, e, 1000, func(w io.Writer) error {
				for range 1000 {
					if _, err := w.Write([]byte{'{'}); err != nil {
						return err
					}
					select {
					case <-stop:
						return nil
					case <-time.After(500 * time.Millisecond):
					}
				}
				return nil
			})
			// 429, or closed at accept (the address's connections):
			// refused; any other answer held a slot until it was cut.
			if status == http.StatusTooManyRequests || status == 0 {
				refused.Add(1)
			} else {
				cut.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the slow bodies hold their slots
	hc := clientFrom(e, "127.0.0.2")
	a, err := post(ctx, hc, e.WebhookURL+webhook.EC2NodeClassPath, reviewBody(ec2NodeClass("from-the-apiserver", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "")))
	close(stop)
	wg.Wait()
	c := u.stop()
	checkRSS(t, c)
	t.Logf("64 slow bodies from one address: %d refused 429 at once, %d cut; %s", refused.Load(), cut.Load(), c)
	if err != nil || a.response == nil || !a.codes()[string(rules.RoleIsARN)] {
		t.Errorf("a class from another address during the attack: %v %s, want its verdict ([RoleIsARN])", err, a)
	}
	if share := int64(webhook.DefaultMaxInFlight / webhook.DefaultSourceShare); cut.Load() > share {
		t.Errorf("%d of 64 slow bodies from one address held a request slot, over its share (%d)", cut.Load(), share)
	}
}

// TestServeOptionalServicesDropped: serve with IAM reachable and EKS, EC2
// and SSM endpoints that accept connections and never answer (a private
// cluster without those VPC endpoints). The first admission of a class
// with selectors keeps its IAM checks (no [IAMUnavailable]) and reports
// the skipped checks; once the calls time out, the services are
// remembered as unreachable: the next admissions make no connection and
// answer at once with the same warnings. The p99 of the warm admissions
// is logged (docs/benchmarks.md).
func TestServeOptionalServicesDropped(t *testing.T) {
	ctx := testContext(t)
	drop, err := iamserver.NewDropping()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop.Close)
	url, conns := drop.URL(), drop
	e, err := framework.Start(ctx, framework.Options{
		IAMTimeout: 2 * time.Second,
		ServeArgs:  []string{"--eks-endpoint", url, "--ec2-endpoint", url, "--ssm-endpoint", url, "--kubernetes-version", "1.34"},
		Logf:       t.Logf,
	})
	var missing *framework.MissingAssetsError
	switch {
	case errors.As(err, &missing) && !framework.Required():
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	hc := webhookClient(true, e.CA.CertPEM())
	class := func(i int) object {
		return mustObject(ec2NodeClassV1, fmt.Sprintf("dropped-%d", i), map[string]any{
			"role":                       "KarpenterNodeRole-demo",
			"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]string{"karpenter.sh/discovery": "demo"}}},
			"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]string{"karpenter.sh/discovery": "demo"}}},
			"amiSelectorTerms":           []any{map[string]any{"alias": "al2023@latest"}},
		})
	}
	first := admit(t, hc, e.WebhookURL, class(0))
	if first.codes()[string(rules.IAMUnavailable)] || !first.codes()[string(rules.SelectorChecksSkipped)] || !first.codes()[string(rules.NodeJoinChecksSkipped)] {
		t.Fatalf("first admission: %s; want the IAM verdict with [SelectorChecksSkipped] and [NodeJoinChecksSkipped], never [IAMUnavailable]", first)
	}
	t.Logf("first admission answered in %v", first.elapsed)
	time.Sleep(3 * time.Second) // the dropped calls time out (their own bound, --iam-timeout)
	before := conns.Accepted()
	var lat []time.Duration
	for i := range 100 {
		a := admit(t, hc, e.WebhookURL, class(0))
		if a.codes()[string(rules.IAMUnavailable)] || !a.codes()[string(rules.SelectorChecksSkipped)] {
			t.Fatalf("warm admission %d: %s", i, a)
		}
		lat = append(lat, a.elapsed)
	}
	slices.Sort(lat)
	t.Logf("100 warm admissions with EKS, EC2 and SSM dropped: p50 %v, p99 %v, max %v; %d connections", lat[50], lat[98], lat[99], conns.Accepted()-before)
	// At most one probe per service (EKS, EC2, SSM) when its interval
	// ends, made for the next admissions: none waits for it.
	if got := conns.Accepted() - before; got > 3 {
		t.Errorf("%d connections to the dropping endpoints during the warm admissions, want at most a probe per service: the services are remembered as unreachable", got)
	}

}
