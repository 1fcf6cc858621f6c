package webhook

import (
	"bytes"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"net/http/httptest"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// TestConcurrentAdmissionsAskIAMOncePerQuestion sends 100 admissions of one
// class at once through the webhook, with IAM behind the cache and the real
// SDK: each distinct IAM question must reach the endpoint exactly once, the
// permission questions sharing principal and context in one call.
func TestConcurrentAdmissionsAskIAMOncePerQuestion(t *testing.T) {
	cases := []struct {
		name     string
		spec     string
		deny     bool
		want     map[string]int // IAM calls by action
		wantCode rules.Code
	}{
		{
			// GetRole; PassRole on the role's ARN; 4 instance-profile
			// requests (4 contexts, 4 calls); Karpenter 1.15's launch and
			// validation requests in 25 contexts, as EC2 authorizes each
			// resource type with its own keys (karpenter/sar.go): per
			// step, the request tags alone (the new launch template, the
			// fleet), the instance's and the volume's for CreateFleet and
			// for RunInstances, the network interface's, the used launch
			// template's own tags, and CreateTags on the launch template,
			// fleet, instance and volume (11, the validation's with its
			// tags), plus the validation's RunInstances tagging of the
			// instance, volume and network interface (3): 25 calls.
			name: "spec.role", spec: ec2Spec("KarpenterNodeRole-demo", ""),
			want: map[string]int{"GetRole": 1, "SimulatePrincipalPolicy": 30},
		},
		{
			// GetInstanceProfile; iam:GetInstanceProfile on its ARN;
			// the launch requests in 25 calls; PassRole on the role inside.
			name: "spec.instanceProfile", spec: ec2Spec("", "KarpenterNodeInstanceProfile-demo"),
			want: map[string]int{"GetInstanceProfile": 1, "SimulatePrincipalPolicy": 27},
		},
		{
			// A denied class costs the same: the denial is cached too.
			name: "denied", spec: ec2Spec("OtherNodeRole", ""), deny: true, wantCode: rules.PassRoleDenied,
			want: map[string]int{"GetRole": 1, "SimulatePrincipalPolicy": 30},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			view, iam := liveView(t, liveTimeout, authz.CacheOptions{})
			ctl, _ := authz.ParseRoleARN(ctlKarpenter)
			c := rules.NewChecker(rules.Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: rules.OnIAMErrorDeny})
			srv := httptest.NewServer(Handlers(c, NewMetrics())[EC2NodeClassPath])
			t.Cleanup(srv.Close)

			const n = 100
			bodies := make([][]byte, n)
			for i := range bodies {
				bodies[i] = ec2Req(admissionv1.Create, ec2NodeClassJSON("v1", "shared", tc.spec), "").body()
			}
			fixture := &admissionFixture{url: srv.URL}
			answers := make([]reviewResponse, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, answers[i] = fixture.post(t, "", "application/json", bytes.NewReader(bodies[i]))
				}()
			}
			close(start)
			wg.Wait()

			for i, a := range answers {
				if a.Response.Allowed == tc.deny {
					t.Fatalf("admission %d: allowed=%v, want %v: %+v", i, a.Response.Allowed, !tc.deny, a.Response.Result)
				}
				if tc.deny && !bytes.Contains([]byte(a.Response.Result.Message), []byte("["+tc.wantCode+"]")) {
					t.Fatalf("admission %d: message %q lacks [%s]", i, a.Response.Result.Message, tc.wantCode)
				}
			}
			total := 0
			for action, want := range tc.want {
				if got := iam.Calls(action); got != want {
					t.Errorf("%s: %d IAM calls for %d concurrent admissions, want %d (one per batch of questions sharing principal and context)", action, got, n, want)
				}
				total += want
			}
			if got := iam.TotalCalls(); got != total {
				t.Errorf("%d IAM calls in all, want %d", got, total)
			}
		})
	}
}
