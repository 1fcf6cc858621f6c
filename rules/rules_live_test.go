package rules

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// liveView starts the local IAM endpoint over the sample snapshot and
// returns the view serve builds: the real SDK client → Live → Cached.
func liveView(t *testing.T, timeout time.Duration, opts authz.CacheOptions) (*authz.Cached, *iamserver.Server) {
	t.Helper()
	view, _, srv := liveViews(t, timeout, opts)
	return view, srv
}

// liveViews is liveView with the EKS view serve builds beside it, asking
// the same local endpoint's EKS API.
func liveViews(t *testing.T, timeout time.Duration, opts authz.CacheOptions) (*authz.Cached, *authz.CachedEKS, *iamserver.Server) {
	t.Helper()
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)

	srv := iamserver.New(loadSampleSnapshot(t))
	url, stop := srv.Start()
	t.Cleanup(stop)
	// Generous bounds: a loaded machine (-race, two cores) must not turn a
	// slow answer into IAMUnavailable and a false difference.
	client, err := authz.NewIAMClient(context.Background(), "us-east-1", url, timeout)
	if err != nil {
		t.Fatalf("NewIAMClient: %v", err)
	}
	eksClient, err := authz.NewEKSClient(context.Background(), testRegion, url, timeout)
	if err != nil {
		t.Fatalf("NewEKSClient: %v", err)
	}
	if opts.Timeout == 0 {
		opts.Timeout = timeout
	}
	return authz.NewCached(authz.NewLive(client, authz.LiveOptions{}), opts),
		authz.NewCachedEKS(authz.NewEKSLive(eksClient, authz.LiveOptions{}), opts), srv
}

// liveTimeout bounds one IAM call of the live tests, retries included.
const liveTimeout = 20 * time.Second

// TestRulesLive runs the rules table through the real AWS SDK against the
// local IAM endpoint: the codes must be those the snapshot gives.
func TestRulesLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local IAM endpoint")
	}
	view, eks, srv := liveViews(t, liveTimeout, authz.CacheOptions{})
	runRuleCases(t, view, eks)
	if srv.Calls(iamserver.EKSDescribeCluster) == 0 || srv.Calls(iamserver.EKSDescribeAccessEntry) == 0 || srv.Calls(iamserver.EKSListAssociatedAccessPolicies) == 0 {
		t.Errorf("the live EKS view did not reach the endpoint: %d DescribeCluster, %d DescribeAccessEntry, %d ListAssociatedAccessPolicies",
			srv.Calls(iamserver.EKSDescribeCluster), srv.Calls(iamserver.EKSDescribeAccessEntry), srv.Calls(iamserver.EKSListAssociatedAccessPolicies))
	}
	if srv.Calls("SimulatePrincipalPolicy") == 0 || srv.Calls("GetRole") == 0 || srv.Calls("GetInstanceProfile") == 0 {
		t.Errorf("the live view did not reach the endpoint: %d GetRole, %d GetInstanceProfile, %d SimulatePrincipalPolicy",
			srv.Calls("GetRole"), srv.Calls("GetInstanceProfile"), srv.Calls("SimulatePrincipalPolicy"))
	}
}

// TestRulesLiveIAMDown covers IAMUnavailable and IAMStale as they really
// happen: the endpoint fails, and the cache has nothing, or only answers
// past their TTL.
func TestRulesLiveIAMDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local IAM endpoint")
	}
	var (
		mu  sync.Mutex
		now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	// Failing calls wait out the SDK's backoff (up to a tenth of this);
	// answered ones must not time out on a loaded machine.
	view, eks, srv := liveViews(t, 5*time.Second, authz.CacheOptions{TTL: time.Minute, Now: clock})

	ctl, _ := authz.ParseRoleARN(ctlKarpenter)
	checker := func(on OnIAMError) *Checker {
		return NewChecker(Config{IAM: view, EKS: eks, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: on})
	}
	check := func(on OnIAMError, nc *EC2NodeClass) Verdict {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v := checker(on).CheckEC2NodeClass(ctx, nc)
		checkLineShapes(t, v)
		return v
	}
	expect := func(what string, v Verdict, deny, warn []Code) {
		t.Helper()
		if !slices.Equal(findingCodes(v.Denials), sortedCodes(deny)) || !slices.Equal(findingCodes(v.Warnings), sortedCodes(warn)) {
			t.Errorf("%s: denials %v, warnings %v; want %v, %v\n%s", what, findingCodes(v.Denials), findingCodes(v.Warnings), deny, warn, dump(v))
		}
	}

	srv.FailAlways(iamserver.ServiceFailure)
	good := ec2Class("default", "KarpenterNodeRole-demo", "")
	v := check(OnIAMErrorAllow, good)
	expect("nothing cached, allow", v, nil, codes(IAMUnavailable))
	// The SDK's error is long: a cut warning must keep what was decided.
	if w := v.WarningLines(); len(w) == 1 && !strings.HasPrefix(w[0], "[IAMUnavailable] spec.role: admitted without the IAM checks (--on-iam-error=allow): ") {
		t.Errorf("warning %q does not start with the decision", w[0])
	}
	expect("nothing cached, deny", check(OnIAMErrorDeny, good), codes(IAMUnavailable), nil)

	srv.ClearFailures()
	expect("IAM back", check(OnIAMErrorDeny, good), nil, nil)
	admin := ec2Class("admin", "AdminNodeRole", "")
	expect("IAM back, explicit deny", check(OnIAMErrorDeny, admin), codes(PassRoleDenied), nil)

	advance(10 * time.Minute)
	srv.FailAlways(iamserver.Throttling)
	expect("stale answers", check(OnIAMErrorDeny, good), nil, codes(IAMStale))
	expect("stale answers still deny", check(OnIAMErrorDeny, admin), codes(PassRoleDenied), codes(IAMStale))
	other := ec2Class("other", "OtherNodeRole", "")
	expect("uncached role while throttled", check(OnIAMErrorDeny, other), codes(IAMUnavailable), nil)
}
