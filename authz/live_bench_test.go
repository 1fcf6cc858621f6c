package authz_test

import (
	"context"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// benchLive returns a Live view built as serve builds it (NewIAMClient,
// environment credentials) against the local IAM endpoint on the sample
// snapshot, in this process: a benchmark's time and allocations are both
// ends of an IAM call, the SDK's and the endpoint's.
func benchLive(b *testing.B) *authz.Live {
	b.Helper()
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		b.Fatal(err)
	}
	url, stop := iamserver.New(snap).Start()
	b.Cleanup(stop)
	iamserver.IsolateAWSEnv(b, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	client, err := authz.NewIAMClient(context.Background(), "us-west-2", url, 2*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return authz.NewLive(client, authz.LiveOptions{})
}

// BenchmarkLiveDecide is one SimulatePrincipalPolicy call for a launch
// question with Karpenter's tags: what a cold cache pays per question.
func BenchmarkLiveDecide(b *testing.B) {
	live := benchLive(b)
	q := authz.Question{
		Principal: controllerARN,
		Action:    "ec2:CreateFleet",
		Resource:  "arn:aws:ec2:us-west-2:111122223333:fleet/*",
		Context: map[string][]string{
			"aws:RequestTag/kubernetes.io/cluster/demo":     {"owned"},
			"aws:RequestTag/eks:eks-cluster-name":           {"demo"},
			"aws:RequestTag/karpenter.sh/nodepool":          {"default"},
			"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": {"default"},
			"aws:TagKeys":         {"kubernetes.io/cluster/demo", "eks:eks-cluster-name", "karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"},
			"aws:RequestedRegion": {"us-west-2"},
		},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := live.Decide(ctx, q)
		if err != nil || !d.Allowed {
			b.Fatalf("CreateFleet: allowed=%v err=%v", d.Allowed, err)
		}
	}
}

// BenchmarkLiveRole is one GetRole call.
func BenchmarkLiveRole(b *testing.B) {
	live := benchLive(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := live.Role(ctx, "KarpenterNodeRole-demo"); err != nil {
			b.Fatal(err)
		}
	}
}
