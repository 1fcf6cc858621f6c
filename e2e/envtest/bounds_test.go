package envtest_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// TestHugeTagsDryRun: a server-side dry-run of an EC2NodeClass with 10,000
// tags, which Karpenter's CRD accepts (spec.tags has no maxProperties) and
// a user allowed only to dry-run may send, is refused through the API
// server with [TagsExceedLimit], before serve plans a question; serve's
// RSS is logged (issue 22: it went from 74 to 477 MiB).
func TestHugeTagsDryRun(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	o := ec2NodeClass("huge-tags", role("KarpenterNodeRole-demo"))
	tags := make(map[string]any, 10000)
	for i := range 10000 {
		tags[fmt.Sprintf("team.example.com/tag-%05d", i)] = "value"
	}
	o.Object["spec"].(map[string]any)["tags"] = tags
	pid := e.ServePID()
	var before bench.Memory
	if pid != 0 {
		runtime.GC()
		before, _ = bench.ReadMemory(pid)
	}
	var peak atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if m, err := bench.ReadMemory(pid); pid != 0 && err == nil && m.RSS > peak.Load() {
				peak.Store(m.RSS)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	for range 5 {
		_, err := create(ctx, c, o.DeepCopy(), client.DryRunAll)
		requireDenied(t, e, "karpenter.k8s.aws", err, "spec.tags: TagsExceedLimit")
	}
	close(done)
	<-sampled
	if pid != 0 {
		t.Logf("serve's RSS %.1f MiB before, peak %.1f MiB during five 10,000-tag dry-runs", float64(before.RSS)/(1<<20), float64(peak.Load())/(1<<20))
		if peak.Load() > 128<<20 {
			t.Errorf("serve's RSS reached %.1f MiB, over deploy/'s 128Mi limit", float64(peak.Load())/(1<<20))
		}
	}
}
