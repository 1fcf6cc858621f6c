package authz_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// sampleEndpoint starts the local endpoint over the sample snapshot, with
// the SDK's environment isolated, for the test's duration.
func sampleEndpoint(t *testing.T) (string, *iamserver.Server) {
	t.Helper()
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := iamserver.New(snap)
	url, stop := srv.Start()
	t.Cleanup(stop)
	return url, srv
}

// liveEKS is the EKS view serve builds, the real SDK client asking the
// local endpoint's EKS API over the sample snapshot.
func liveEKS(t *testing.T, opts authz.CacheOptions) (*authz.CachedEKS, *iamserver.Server) {
	t.Helper()
	url, srv := sampleEndpoint(t)
	client, err := authz.NewEKSClient(context.Background(), "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewCachedEKS(authz.NewEKSLive(client, authz.LiveOptions{}), opts), srv
}

// TestEKSLiveAgreesWithSnapshot: every answer the snapshot's EKS sections
// give, the live view gives through the SDK and the endpoint.
func TestEKSLiveAgreesWithSnapshot(t *testing.T) {
	live, srv := liveEKS(t, authz.CacheOptions{})
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, err := snap.Cluster(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := live.Cluster(ctx, "demo")
	if err != nil || got.Name != "demo" || got.RoleARN != want.RoleARN || got.AuthenticationMode != authz.AuthModeAPIAndConfigMap || !got.AutoMode {
		t.Errorf("Cluster(demo) = %+v, %v; want %+v", got, err, want)
	}
	if _, err := live.Cluster(ctx, "other"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("Cluster(other): %v, want not found", err)
	}
	for _, arn := range []string{
		"arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team", // the exact ARN, path included
		"arn:aws:iam::111122223333:role/EKSAutoNodeRole-demo",
		"arn:aws:iam::111122223333:role/EKSAutoNodeRole-nopolicy",
		"arn:aws:iam::111122223333:role/KarpenterNodeRole-standard",
	} {
		w, _ := snap.AccessEntry(ctx, "demo", arn)
		g, err := live.AccessEntry(ctx, "demo", arn)
		if err != nil || g.PrincipalARN != w.PrincipalARN || g.Type != w.Type || strings.Join(g.Policies, ",") != strings.Join(w.Policies, ",") {
			t.Errorf("AccessEntry(%s) = %+v, %v; want %+v", arn, g, err, w)
		}
	}
	// EKS matches the exact ARN: the team role without its path has none.
	if _, err := live.AccessEntry(ctx, "demo", "arn:aws:iam::111122223333:role/KarpenterNodeRole-team"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("AccessEntry of the ARN without the path: %v, want not found", err)
	}
	auto, _ := live.AccessEntry(ctx, "demo", "arn:aws:iam::111122223333:role/EKSAutoNodeRole-demo")
	if !auto.HasPolicy("AmazonEKSAutoNodePolicy") {
		t.Errorf("Auto Mode entry policies %v", auto.Policies)
	}
	// Five ListAssociatedAccessPolicies: one per entry asked, the not-found
	// one included (its first page is asked beside DescribeAccessEntry).
	if srv.Calls(iamserver.EKSDescribeCluster) != 2 || srv.Calls(iamserver.EKSListAssociatedAccessPolicies) != 5 || srv.TotalCalls() != 0 {
		t.Errorf("calls: %d DescribeCluster, %d ListAssociatedAccessPolicies, %d IAM", srv.Calls(iamserver.EKSDescribeCluster),
			srv.Calls(iamserver.EKSListAssociatedAccessPolicies), srv.TotalCalls())
	}
}

// TestCachedEKS: the EKS view keeps the IAM cache's rules: hits, shorter
// negative answers, unavailable answers never cached, stale answers served
// while EKS fails, and "could not ask" as an *UnavailableError naming EKS.
func TestCachedEKS(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	view, srv := liveEKS(t, authz.CacheOptions{TTL: time.Minute, NegativeTTL: 10 * time.Second, Now: clock})
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if _, err := view.Cluster(ctx, "demo"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Calls(iamserver.EKSDescribeCluster); n != 1 {
		t.Errorf("three lookups made %d calls, want 1", n)
	}
	missing := "arn:aws:iam::111122223333:role/KarpenterNodeRole-noentry"
	view.AccessEntry(ctx, "demo", missing)
	view.AccessEntry(ctx, "demo", missing)
	advance(11 * time.Second)
	view.AccessEntry(ctx, "demo", missing)
	if n := srv.Calls(iamserver.EKSDescribeAccessEntry); n != 2 {
		t.Errorf("not-found answers: %d calls, want 2 (one cached, one after the negative TTL)", n)
	}

	srv.InjectFailure(iamserver.Failure{Fault: iamserver.ServiceFailure, Action: iamserver.EKSAll, Always: true})
	advance(2 * time.Minute)
	c, err := view.Cluster(ctx, "demo")
	if err != nil || !c.Stale || c.Name != "demo" {
		t.Errorf("EKS down, expired answer: %+v, %v; want it served stale", c, err)
	}
	_, err = view.AccessEntry(ctx, "demo", "arn:aws:iam::111122223333:role/OtherNodeRole")
	var u *authz.UnavailableError
	if !errors.As(err, &u) || u.Service != "EKS" || !strings.HasPrefix(u.Error(), "EKS DescribeAccessEntry unavailable") || u.Summary() != "ServerException: An internal error occurred." {
		t.Errorf("EKS down, nothing cached: %v", err)
	}
	srv.ClearFailures()
	if _, err := view.AccessEntry(ctx, "demo", "arn:aws:iam::111122223333:role/OtherNodeRole"); err != nil {
		t.Errorf("EKS back: %v (an unavailable answer must not be cached)", err)
	}

	// A webhook without EKS permissions could not check: unavailable,
	// never "no such entry".
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.EKSDescribeAccessEntry, Always: true})
	_, err = view.AccessEntry(ctx, "demo", "arn:aws:iam::111122223333:role/AdminNodeRole")
	if !errors.As(err, &u) || errors.Is(err, authz.ErrNotFound) || !strings.HasPrefix(u.Summary(), "AccessDeniedException") {
		t.Errorf("AccessDeniedException: %v, want an *UnavailableError", err)
	}
}

// TestSnapshotEKSSections: the sections are optional; absent, the
// questions they answer are unavailable (so the checks say they were
// skipped), never answered as "no entry".
func TestSnapshotEKSSections(t *testing.T) {
	ctx := context.Background()
	bare, err := authz.LoadSnapshot(strings.NewReader(`{"RoleDetailList": []}`), "bare.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Cluster(ctx, "demo"); !authz.IsUnavailable(err) || !strings.Contains(err.Error(), `no "cluster" section`) {
		t.Errorf("no cluster section: %v", err)
	}
	if _, err := bare.AccessEntry(ctx, "demo", "arn:aws:iam::111122223333:role/X"); !authz.IsUnavailable(err) {
		t.Errorf("no AccessEntries section: %v", err)
	}
	merged, err := authz.LoadSnapshot(strings.NewReader(`[{"RoleDetailList": []},
		{"cluster": {"name": "prod", "roleArn": "arn:aws:iam::111122223333:role/ClusterRole"}},
		{"AccessEntries": [{"accessEntry": {"principalArn": "arn:aws:iam::111122223333:role/N", "type": "EC2_LINUX"}}]}]`), "merged.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := merged.Cluster(ctx, "prod")
	if err != nil || c.AuthenticationMode != authz.AuthModeConfigMap || c.AutoMode {
		t.Errorf("a cluster without accessConfig: %+v, %v; want CONFIG_MAP", c, err)
	}
	if e, err := merged.AccessEntry(ctx, "prod", "arn:aws:iam::111122223333:role/N"); err != nil || e.Type != authz.AccessEntryEC2Linux {
		t.Errorf("entry: %+v, %v", e, err)
	}
	if _, err := merged.AccessEntry(ctx, "prod", "arn:aws:iam::111122223333:role/M"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("missing entry: %v", err)
	}
	if _, err := authz.LoadSnapshot(strings.NewReader(`{"AccessEntries": [{"accessEntry": {}}]}`), "bad.json"); err == nil || !strings.Contains(err.Error(), "AccessEntries[0]: no accessEntry.principalArn") {
		t.Errorf("an entry without principal: %v", err)
	}
}
