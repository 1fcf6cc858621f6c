package webhook

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// The rules' test scenario (rules/rulecases_test.go), for the admission
// tests: the sample snapshot's cluster and the classes NodePools name.

const (
	sampleSnapshot = "../testdata/iam/sample-snapshot.json"
	testCluster    = "demo"
	testRegion     = "us-west-2"
	ctlKarpenter   = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	ctlLimited     = "arn:aws:iam::111122223333:role/LimitedControllerRole"
)

func loadSampleSnapshot(t testing.TB) *authz.Snapshot {
	t.Helper()
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatalf("loading the sample snapshot: %v", err)
	}
	return snap
}

func ec2Class(name, role, profile string) *rules.EC2NodeClass {
	return &rules.EC2NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "karpenter.k8s.aws/v1", Kind: rules.EC2NodeClassKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       rules.EC2NodeClassSpec{Role: role, InstanceProfile: profile},
	}
}

func eksClass(name, role, profile string) *rules.NodeClass {
	return &rules.NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "eks.amazonaws.com/v1", Kind: rules.NodeClassKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       rules.NodeClassSpec{Role: role, InstanceProfile: profile},
	}
}

// mapClasses is a ClassGetter over fixed classes; err, when set, is
// returned for every lookup.
type mapClasses struct {
	ec2 map[string]*rules.EC2NodeClass
	eks map[string]*rules.NodeClass
	err error
}

func (m mapClasses) GetEC2NodeClass(_ context.Context, name string) (*rules.EC2NodeClass, bool, error) {
	if m.err != nil {
		return nil, false, m.err
	}
	nc, ok := m.ec2[name]
	return nc, ok, nil
}

func (m mapClasses) GetNodeClass(_ context.Context, name string) (*rules.NodeClass, bool, error) {
	if m.err != nil {
		return nil, false, m.err
	}
	nc, ok := m.eks[name]
	return nc, ok, nil
}

// testClasses are the classes NodePool cases reference.
func testClasses() mapClasses {
	return mapClasses{
		ec2: map[string]*rules.EC2NodeClass{
			"default":  ec2Class("default", "KarpenterNodeRole-demo", ""),
			"role-arn": ec2Class("role-arn", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ""),
			"notrust":  ec2Class("notrust", "KarpenterNodeRole-notrust", ""),
			"admin":    ec2Class("admin", "AdminNodeRole", ""),
			"pathed":   ec2Class("pathed", "team/KarpenterNodeRole-team", ""),
		},
		eks: map[string]*rules.NodeClass{
			"eks-default": eksClass("eks-default", "EKSAutoNodeRole-demo", ""),
			"eks-bad":     eksClass("eks-bad", "bad name", ""),
		},
	}
}

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

// benchClasses are the objects the benchmarks check: spec.role (the
// heaviest: eight IAM questions) and spec.instanceProfile (five), both
// admitted by the sample snapshot.
var benchClasses = []struct {
	name string
	spec rules.EC2NodeClassSpec
}{
	{"role", rules.EC2NodeClassSpec{Role: "KarpenterNodeRole-demo"}},
	{"instanceProfile", rules.EC2NodeClassSpec{InstanceProfile: "KarpenterNodeInstanceProfile-demo"}},
}

// benchChecker is the Checker serve builds for the sample snapshot's
// cluster, over view.
func benchChecker(b *testing.B, view authz.View) *rules.Checker {
	b.Helper()
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		b.Fatal(err)
	}
	// serve's verdict cache: a replayed object is served its verdict.
	return rules.NewChecker(rules.Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: rules.OnIAMErrorDeny,
		VerdictTTL: 30 * time.Second})
}

// warmCache returns a Cached view over the sample snapshot holding every
// answer the benchmark classes need, as serve's cache holds them once warm.
func warmCache(b *testing.B) *authz.Cached {
	b.Helper()
	cached := authz.NewCached(loadSampleSnapshot(b), authz.CacheOptions{})
	c := benchChecker(b, cached)
	for _, bc := range benchClasses {
		nc := &rules.EC2NodeClass{Spec: bc.spec}
		nc.Name = "default"
		if v := c.CheckEC2NodeClass(context.Background(), nc); !v.Allowed() {
			b.Fatalf("%s: denied while warming the cache: %s", bc.name, v.DenialMessage())
		}
	}
	return cached
}
