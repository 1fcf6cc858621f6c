package rules

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// outageChecker is serve's Checker with a reachable IAM (the snapshot)
// and EKS, EC2 and SSM behind endpoints that drop every connection.
func outageChecker(t testing.TB, timeout time.Duration) (*Checker, *iamserver.Dropping) {
	t.Helper()
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	drop, err := iamserver.NewDropping()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop.Close)
	url, conns := drop.URL(), drop
	ctx := context.Background()
	ec2c, err := authz.NewEC2Client(ctx, testRegion, url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	ssmc, err := authz.NewSSMClient(ctx, testRegion, url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	eksc, err := authz.NewEKSClient(ctx, testRegion, url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	opts := authz.CacheOptions{Timeout: timeout}
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	ctl, _ := authz.ParseRoleARN(ctlKarpenter)
	return NewChecker(Config{IAM: inTime{snap}, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny,
		IAMTimeout: timeout, KubernetesVersion: "1.34",
		EKS: authz.NewCachedEKS(authz.NewEKSLive(eksc, authz.LiveOptions{}), opts),
		EC2: authz.NewCachedEC2(authz.NewEC2Live(ec2c, ssmc, authz.LiveOptions{}), opts)}), conns
}

func outageClass() *EC2NodeClass {
	nc := ec2Class("outage", "KarpenterNodeRole-demo", "")
	nc.Spec.SubnetSelectorTerms = []SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": testCluster}}}
	nc.Spec.SecurityGroupSelectorTerms = []SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": testCluster}}}
	nc.Spec.AMISelectorTerms = []SelectorTerm{{Alias: "al2023@latest"}}
	return nc
}

// TestOptionalServicesDropped: with IAM reachable and EKS, EC2 and SSM
// dropping connections, the first admission still gets its IAM checks
// (never IAMUnavailable: each optional service has its own share of the
// deadline) and reports the skipped checks; once the calls timed out, the
// next admissions make no connection at all (the breakers answer) and
// say the same.
func TestOptionalServicesDropped(t *testing.T) {
	const timeout = 2 * time.Second
	c, conns := outageChecker(t, timeout)
	first := c.CheckEC2NodeClass(context.Background(), outageClass())
	codes := first.Codes()
	if slices.Contains(codes, string(IAMUnavailable)) {
		t.Fatalf("first admission: %v; IAM was reachable, the optional services' outage must not starve it", codes)
	}
	for _, want := range []Code{SelectorChecksSkipped, NodeJoinChecksSkipped} {
		if !slices.Contains(codes, string(want)) {
			t.Errorf("first admission: %v, want %s", codes, want)
		}
	}
	// The calls outlive the admission's share; wait until they time out.
	time.Sleep(timeout + 500*time.Millisecond)
	before := conns.Accepted()
	for range 20 {
		v := c.CheckEC2NodeClass(context.Background(), outageClass())
		if got := v.Codes(); !slices.Equal(got, codes) {
			t.Fatalf("warm admission: %v, want the first's %v", got, codes)
		}
	}
	if got := conns.Accepted() - before; got != 0 {
		t.Errorf("%d connections to the dropping endpoints during 20 warm admissions, want none", got)
	}
}

// BenchmarkWarmAdmissionOptionalServicesDropped is a warm admission of a
// class with selectors while EKS, EC2 and SSM drop connections; it
// reports the p99 latency.
func BenchmarkWarmAdmissionOptionalServicesDropped(b *testing.B) {
	c, _ := outageChecker(b, 500*time.Millisecond)
	nc := outageClass()
	c.CheckEC2NodeClass(context.Background(), nc)
	time.Sleep(time.Second)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		c.CheckEC2NodeClass(context.Background(), nc)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// inTime answers as a live IAM does: not after the admission's deadline.
type inTime struct{ authz.View }

func (v inTime) Role(ctx context.Context, name string) (authz.Role, error) {
	if err := ctx.Err(); err != nil {
		return authz.Role{}, &authz.UnavailableError{Op: "GetRole", Err: err}
	}
	return v.View.Role(ctx, name)
}

func (v inTime) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	if err := ctx.Err(); err != nil {
		return authz.InstanceProfile{}, &authz.UnavailableError{Op: "GetInstanceProfile", Err: err}
	}
	return v.View.InstanceProfile(ctx, name)
}

func (v inTime) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	if err := ctx.Err(); err != nil {
		return authz.Decision{}, &authz.UnavailableError{Op: "SimulatePrincipalPolicy", Err: err}
	}
	return v.View.Decide(ctx, q)
}
