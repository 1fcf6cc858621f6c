package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// TestPolicyViewCalls runs the rules for 50 new role classes at once, as
// serve's wiring asks IAM (PolicyView over Cached over Live, through the
// SDK to the local endpoint), without and with an organization whose SCP
// denies launching without a cost-center tag; it logs the IAM calls and
// checks the verdicts are those of asking SimulatePrincipalPolicy
// everything (Cached over Live, the previous wiring).
func TestPolicyViewCalls(t *testing.T) {
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	scp, err := authz.ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"*","Resource":"*"},
  {"Effect":"Deny","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"Null":{"aws:RequestTag/cost-center":"true"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, org := range []*authz.Organization{nil, {SCPs: []authz.NamedPolicy{{Name: "p-costcenter", Policy: scp}}}} {
		t.Run(fmt.Sprintf("organization=%v", org != nil), func(t *testing.T) {
			srv := iamserver.New(snap)
			srv.SetOrganization(org)
			url, stop := srv.Start()
			defer stop()
			client := iam.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")},
				func(o *iam.Options) { o.BaseEndpoint = aws.String(url) })
			check := func(v authz.View) []rules.Verdict {
				ctrl, _ := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
				k8s := snap.KubernetesVersion()
				cfg := rules.Config{IAM: v, EC2: snap, KubernetesVersion: k8s, Controller: ctrl, ClusterName: "demo", Region: "us-west-2",
					OnIAMError: rules.OnIAMErrorDeny, IAMTimeout: time.Minute}
				checker := rules.NewChecker(cfg)
				out := make([]rules.Verdict, 50)
				var wg sync.WaitGroup
				for i := range out {
					c := Class{Name: fmt.Sprintf("calls-%06d", i), Role: "KarpenterNodeRole-demo", NoCostCenter: i%2 == 1}
					wg.Go(func() { out[i] = checker.CheckEC2NodeClass(context.Background(), ClassObject(c)) })
				}
				wg.Wait()
				return out
			}
			live := authz.NewLive(client, authz.LiveOptions{})
			srv.ResetCalls()
			got := check(authz.NewPolicyView(authz.NewCached(live, authz.CacheOptions{Timeout: time.Minute}), live, authz.CacheOptions{Timeout: time.Minute}))
			calls := srv.TotalCalls()
			byAction := map[string]int{}
			for _, a := range []string{"GetRole", "GetInstanceProfile", "SimulatePrincipalPolicy", "ListRolePolicies", "GetRolePolicy", "ListAttachedRolePolicies", "GetPolicy", "GetPolicyVersion"} {
				byAction[a] = srv.Calls(a)
			}
			srv.ResetCalls()
			want := check(authz.NewCached(authz.NewLive(client, authz.LiveOptions{}), authz.CacheOptions{Timeout: time.Minute}))
			old := srv.TotalCalls()
			t.Logf("50 classes: %d IAM calls (%.2f per class) %v; simulating everything: %d", calls, float64(calls)/50, byAction, old)
			denied := 0
			for i := range got {
				if fmt.Sprint(got[i].Denials, got[i].Warnings, got[i].NotChecked) != fmt.Sprint(want[i].Denials, want[i].Warnings, want[i].NotChecked) {
					t.Errorf("class %d: verdict\n%v\nwant\n%v", i, got[i], want[i])
				}
				if !got[i].Allowed() {
					denied++
				}
			}
			t.Logf("denied %d of 50", denied)
			if wantDenied := map[bool]int{false: 0, true: 25}[org != nil]; denied != wantDenied {
				t.Errorf("denied %d classes, want %d (the SCP's denials)", denied, wantDenied)
			}
			if org == nil && calls > 100 {
				t.Errorf("%d IAM calls for 50 classes, want at most 100", calls)
			}
		})
	}
}
