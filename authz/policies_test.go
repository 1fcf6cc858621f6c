package authz_test

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// policyView is PolicyView as serve builds it, over the local endpoint.
func policyView(t *testing.T, opts ...iamserver.Option) (*iamserver.Server, *authz.PolicyView, *authz.Live) {
	t.Helper()
	srv, client, _ := endpoint(t, opts...)
	live := authz.NewLive(client, authz.LiveOptions{})
	return srv, authz.NewPolicyView(authz.NewCached(live, authz.CacheOptions{}), live, authz.CacheOptions{}), live
}

// TestPolicyViewAgreesWithLive: every scenario question, through the
// policies read once and evaluated here, gets Live's answer word for
// word (the simulator's own answer through the endpoint), for the plain,
// the limited and the bounded controller roles.
func TestPolicyViewAgreesWithLive(t *testing.T) {
	srv, view, live := policyView(t)
	ctx := context.Background()
	for _, tc := range scenario {
		t.Run(tc.name, func(t *testing.T) {
			want, err := live.Decide(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := view.Decide(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("PolicyView = %+v\nLive       = %+v", got, want)
			}
			if got.Reason() != want.Reason() {
				t.Errorf("reason %q, Live's %q", got.Reason(), want.Reason())
			}
		})
	}
	// Three principals, each read once: GetRole, two lists, the
	// organization probe, and the documents.
	srv.ResetCalls()
	for _, tc := range scenario {
		if _, err := view.Decide(ctx, tc.q); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.TotalCalls(); n != 0 {
		t.Errorf("second pass made %d IAM calls, want 0", n)
	}
}

// TestPolicyViewCallsDoNotGrowWithQuestions: a hundred questions about
// a hundred resources cost the read of the policies, once.
func TestPolicyViewCallsDoNotGrowWithQuestions(t *testing.T) {
	srv, view, _ := policyView(t)
	var qs []authz.Question
	for i := 0; i < 100; i++ {
		qs = append(qs, authz.Question{Principal: controllerARN, Action: "ec2:RunInstances",
			Resource: "arn:aws:ec2:us-west-2:111122223333:launch-template/lt-" + strings.Repeat("0", i%7) + string(rune('a'+i%26)),
			Context:  map[string][]string{"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": {"class-" + string(rune('a'+i%26))}}})
	}
	ds, errs := view.DecideAll(context.Background(), qs)
	for i := range ds {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if got := srv.Calls("SimulatePrincipalPolicy"); got != 1 {
		t.Errorf("SimulatePrincipalPolicy calls = %d, want 1 (the organization probe)", got)
	}
	if n := srv.TotalCalls(); n > 8 {
		t.Errorf("%d IAM calls for 100 questions, want the policies' read (at most 8)", n)
	}
}

// The SCP of the organization scenario: no instance without a CostCenter
// tag.
const costCenterSCP = `{"Version":"2012-10-17","Statement":[
 {"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"},
 {"Sid":"CostCenter","Effect":"Deny","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"Null":{"aws:RequestTag/CostCenter":"true"}}}]}`

func scp(t *testing.T, doc string) authz.NamedPolicy {
	t.Helper()
	p, err := authz.ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return authz.NamedPolicy{Name: "arn:aws:organizations::111122223333:policy/o-example/service_control_policy/p-costcenter", Policy: p}
}

// TestPolicyViewOrganization: in an organization, what the role's own
// policies allow is asked of the simulator, which sees the SCP; a key the
// SCP tests and the documents do not (aws:RequestTag/CostCenter) is
// learned from MissingContextValues, so the verdict is exact: denied
// without the tag, allowed with it, as Live says.
func TestPolicyViewOrganization(t *testing.T) {
	srv, view, live := policyView(t, iamserver.WithOrganization(scp(t, costCenterSCP)))
	ctx := context.Background()
	base := map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/demo": {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":       {"demo"},
		"aws:RequestTag/karpenter.sh/nodepool":      {"default"},
	}
	tagged := map[string][]string{"aws:RequestTag/CostCenter": {"42"}}
	for k, v := range base {
		tagged[k] = v
	}
	for _, tc := range []struct {
		name    string
		q       authz.Question
		allowed bool
	}{
		{"untagged instance", authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: base}, false},
		{"tagged instance", authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: tagged}, true},
		{"untagged again", authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: base}, false},
		{"other action", authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := live.Decide(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := view.Decide(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Allowed != tc.allowed || want.Allowed != tc.allowed {
				t.Fatalf("PolicyView allowed %v, Live %v, want %v (%s)", got.Allowed, want.Allowed, tc.allowed, got.Reason())
			}
			if !tc.allowed && (got.DeniedBy.Source != authz.DeniedBySCP || got.Reason() != want.Reason()) {
				t.Errorf("denial %q (%+v), Live's %q", got.Reason(), got.DeniedBy, want.Reason())
			}
		})
	}
	if keys := view.LearnedKeys(); !reflect.DeepEqual(keys, []string{"aws:requesttag/costcenter"}) {
		t.Errorf("learned keys %v", keys)
	}
	_ = srv
}

// TestPolicyViewUnreadable: an identity that may simulate but not read
// policies gets every answer from the simulator, as before.
func TestPolicyViewUnreadable(t *testing.T) {
	srv, view, live := policyView(t, iamserver.WithFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: "ListRolePolicies", Always: true}))
	ctx := context.Background()
	for _, tc := range scenario[:3] {
		want, _ := live.Decide(ctx, tc.q)
		got, err := view.Decide(ctx, tc.q)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, want)
		}
	}
	if srv.Calls("ListRolePolicies") != 1 {
		t.Errorf("ListRolePolicies calls %d, want 1 (the refusal is remembered)", srv.Calls("ListRolePolicies"))
	}
}

// TestPolicyViewUnavailable: IAM failing the read before any read
// succeeded is "could not check", never a verdict.
func TestPolicyViewUnavailable(t *testing.T) {
	_, view, _ := policyView(t, iamserver.WithFailure(iamserver.Failure{Fault: iamserver.ServiceFailure, Action: "ListAttachedRolePolicies", Always: true}))
	_, err := view.Decide(context.Background(), scenario[0].q)
	if !authz.IsUnavailable(err) {
		t.Errorf("err = %v, want unavailable", err)
	}
}

// TestPolicyViewProjectsPerRequest: the context sent for the SCPs keeps
// the keys of the role's statements about that action and resource (and
// those learned): requests on an image, which the controller policy
// allows without conditions, ask IAM once for every class; and an SCP
// testing a key that only the role's statements about other requests
// test (the class's name, tested by the instance-profile statements) is
// still exact, the key learned from MissingContextValues.
func TestPolicyViewProjectsPerRequest(t *testing.T) {
	byName := `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"*","Resource":"*"},
 {"Sid":"OnlyBlessed","Effect":"Deny","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringNotEquals":{"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass":"blessed"}}}]}`
	srv, view, live := policyView(t, iamserver.WithOrganization(scp(t, byName)))
	ctx := context.Background()
	image := func(class string) authz.Question {
		q := launchQuestion("instance/*", nil)
		q.Resource = "arn:aws:ec2:us-west-2::image/ami-0al2023x86134"
		q.Context = maps.Clone(q.Context)
		q.Context["aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"] = []string{class}
		return q
	}
	if _, err := view.Decide(ctx, image("a")); err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	for _, class := range []string{"b", "c", "d"} {
		if d, err := view.Decide(ctx, image(class)); err != nil || !d.Allowed {
			t.Fatalf("image for class %s: %+v, %v", class, d, err)
		}
	}
	if n := srv.Calls("SimulatePrincipalPolicy"); n != 0 {
		t.Errorf("the image request of three more classes made %d SimulatePrincipalPolicy calls, want 0 (one shape)", n)
	}
	for _, tc := range []struct {
		class   string
		allowed bool
	}{{"blessed", true}, {"other", false}, {"blessed", true}} {
		q := launchQuestion("instance/*", nil)
		q.Context = maps.Clone(q.Context)
		q.Context["aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"] = []string{tc.class}
		want, err := live.Decide(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := view.Decide(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Allowed != tc.allowed || want.Allowed != tc.allowed || got.Reason() != want.Reason() {
			t.Errorf("class %s: PolicyView %v (%s), Live %v (%s), want %v", tc.class, got.Allowed, got.Reason(), want.Allowed, want.Reason(), tc.allowed)
		}
	}
	if keys := view.LearnedKeys(); !slices.Contains(keys, "aws:requesttag/karpenter.k8s.aws/ec2nodeclass") {
		t.Errorf("learned keys %v", keys)
	}
}

// TestPolicyViewUnitesExactly: questions go to IAM together with the
// union of their contexts only where every one still sees its own
// context on the keys its evaluation can test: a launch without the
// cost-center tag is not asked with another request's tag, and every
// answer is Live's.
func TestPolicyViewUnitesExactly(t *testing.T) {
	both := `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"*","Resource":"*"},
 {"Sid":"CostCenter","Effect":"Deny","Action":["ec2:RunInstances","ec2:CreateFleet"],"Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"Null":{"aws:RequestTag/CostCenter":"true"}}}]}`
	srv, view, live := policyView(t, iamserver.WithOrganization(scp(t, both)))
	ctx := context.Background()
	untagged := launchQuestion("instance/*", nil)
	tagged := launchQuestion("instance/*", map[string][]string{"aws:RequestTag/CostCenter": {"42"}})
	tagged.Action = "ec2:CreateFleet"
	volume := launchQuestion("volume/*", map[string][]string{"aws:RequestTag/CostCenter": {"42"}})
	image := authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2::image/ami-0al2023x86134"}
	qs := []authz.Question{untagged, tagged, volume, image}
	if _, _, err := view.Policies(ctx, controllerARN); err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	got, errs := view.DecideAll(ctx, qs)
	calls := srv.Calls("SimulatePrincipalPolicy")
	for i, q := range qs {
		want, err := live.Decide(ctx, q)
		if err != nil || errs[i] != nil {
			t.Fatal(err, errs[i])
		}
		if got[i].Allowed != want.Allowed || got[i].Reason() != want.Reason() || !reflect.DeepEqual(got[i].MissingContext, want.MissingContext) {
			t.Errorf("%s on %s: %+v\nLive: %+v", q.Action, q.Resource, got[i], want)
		}
	}
	if got[0].Allowed || !got[1].Allowed {
		t.Errorf("untagged launch allowed %v, tagged %v; want denied, allowed", got[0].Allowed, got[1].Allowed)
	}
	// The probe, the untagged launch, and the tagged ones together (the
	// image's answer is the probe's).
	if calls != 3 {
		t.Errorf("%d SimulatePrincipalPolicy calls, want 3", calls)
	}
}

// TestPolicyViewSCPChanges: an SCP attached after the keys of a request
// were probed tests a key the probe did not report; IAM reporting it
// missing although the request carries it makes the probe run again, so
// that the answer stays exact.
func TestPolicyViewSCPChanges(t *testing.T) {
	srv, view, live := policyView(t, iamserver.WithOrganization())
	ctx := context.Background()
	tagged := func(pool string) authz.Question {
		q := launchQuestion("instance/*", map[string][]string{"aws:RequestTag/CostCenter": {"42"}})
		q.Context["aws:RequestTag/karpenter.sh/nodepool"] = []string{pool}
		return q
	}
	if d, err := view.Decide(ctx, tagged("first")); err != nil || !d.Allowed {
		t.Fatalf("FullAWSAccess: %+v, %v", d, err)
	}
	srv.SetOrganization(&authz.Organization{SCPs: []authz.NamedPolicy{scp(t, costCenterSCP)}})
	for _, q := range []authz.Question{tagged("second"), launchQuestion("instance/*", map[string][]string{"aws:RequestTag/karpenter.sh/nodepool": {"third"}})} {
		want, err := live.Decide(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := view.Decide(ctx, q)
		if err != nil || got.Allowed != want.Allowed || got.Reason() != want.Reason() {
			t.Errorf("after the SCP: %+v, %v; Live %+v", got, err, want)
		}
	}
}
