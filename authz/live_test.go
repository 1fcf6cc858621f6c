package authz_test

// These tests run authz.Live through the real AWS SDK against the local IAM
// endpoint (e2e/iamserver) serving the sample snapshot, so that the Query
// protocol, the SDK's retries and error types, and Live's mapping are all
// exercised as in production.

import (
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

const (
	controllerARN = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	limitedARN    = "arn:aws:iam::111122223333:role/LimitedControllerRole"
	boundedARN    = "arn:aws:iam::111122223333:role/BoundedControllerRole"
	demoNodeARN   = "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"
	teamNodeARN   = "arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team"
	adminNodeARN  = "arn:aws:iam::111122223333:role/AdminNodeRole"
	otherNodeARN  = "arn:aws:iam::111122223333:role/OtherNodeRole"
)

var toEC2 = map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}}

func loadSample(t *testing.T) *authz.Snapshot {
	t.Helper()
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// endpoint starts the local IAM endpoint on the sample snapshot and returns
// it with an SDK client pointed at it. The client retries as the SDK's
// standard retryer does (3 attempts), with backoff capped at 5ms so that
// tests of retried failures stay quick.
func endpoint(t *testing.T, opts ...iamserver.Option) (*iamserver.Server, *iam.Client, *authz.Snapshot) {
	t.Helper()
	snap := loadSample(t)
	srv := iamserver.New(snap, opts...)
	url, stop := srv.Start()
	t.Cleanup(stop)
	client := iam.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.AddWithMaxBackoffDelay(retry.NewStandard(), 5*time.Millisecond)
		},
	}, func(o *iam.Options) { o.BaseEndpoint = aws.String(url) })
	return srv, client, snap
}

func TestLiveRole(t *testing.T) {
	srv, client, _ := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	ctx := context.Background()

	r, err := live.Role(ctx, "KarpenterNodeRole-team")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "KarpenterNodeRole-team" || r.Path != "/team/" || r.ARN != teamNodeARN {
		t.Errorf("Role = %+v", r)
	}
	if r.Trust == nil || !authz.TrustAllows(r.Trust, "ec2.amazonaws.com", "sts:AssumeRole") {
		t.Errorf("trust of KarpenterNodeRole-team should let ec2.amazonaws.com assume it: %+v", r.Trust)
	}
	nt, err := live.Role(ctx, "KarpenterNodeRole-notrust")
	if err != nil {
		t.Fatal(err)
	}
	if nt.Trust == nil || authz.TrustAllows(nt.Trust, "ec2.amazonaws.com", "sts:AssumeRole") {
		t.Errorf("trust of KarpenterNodeRole-notrust should not allow EC2: %+v", nt.Trust)
	}

	for _, name := range []string{"NoSuchRole", "not a valid name!"} {
		_, err = live.Role(ctx, name)
		var nf *authz.NotFoundError
		if !errors.As(err, &nf) || nf.Kind != "role" || nf.Name != name {
			t.Errorf("Role(%q) error = %v, want NotFoundError for the role", name, err)
		}
		if authz.IsUnavailable(err) {
			t.Errorf("Role(%q): not-found must not be unavailable", name)
		}
	}
	if got := srv.Calls("GetRole"); got != 4 {
		t.Errorf("GetRole calls = %d, want 4 (no retries of NoSuchEntity)", got)
	}
}

func TestLiveInstanceProfile(t *testing.T) {
	_, client, _ := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	ctx := context.Background()

	p, err := live.InstanceProfile(ctx, "KarpenterNodeInstanceProfile-demo")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "KarpenterNodeInstanceProfile-demo" || !strings.HasPrefix(p.ARN, "arn:aws:iam::111122223333:instance-profile/") || len(p.Roles) != 1 {
		t.Fatalf("profile = %+v", p)
	}
	if r := p.Roles[0]; r.ARN != demoNodeARN || r.Trust == nil || !authz.TrustAllows(r.Trust, "ec2.amazonaws.com", "sts:AssumeRole") {
		t.Errorf("profile role = %+v", r)
	}
	empty, err := live.InstanceProfile(ctx, "EmptyProfile")
	if err != nil || len(empty.Roles) != 0 {
		t.Errorf("EmptyProfile = %+v, %v; want no roles", empty, err)
	}
	_, err = live.InstanceProfile(ctx, "NoSuchProfile")
	var nf *authz.NotFoundError
	if !errors.As(err, &nf) || nf.Kind != "instance profile" {
		t.Errorf("missing profile error = %v", err)
	}
}

func TestLiveUnavailable(t *testing.T) {
	for _, tc := range []struct {
		fault   iamserver.Fault
		code    string // API error code the SDK surfaces, "" for none
		calls   int    // requests the SDK makes, retries included
		outcome string
	}{
		{iamserver.Throttling, "Throttling", 3, authz.OutcomeThrottled},
		{iamserver.ServiceFailure, "ServiceFailure", 3, authz.OutcomeError},
		{iamserver.MalformedXML, "", 1, authz.OutcomeError},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			srv, client, _ := endpoint(t)
			m := authz.NewMetrics()
			live := authz.NewLive(client, authz.LiveOptions{Metrics: m})
			srv.FailAlways(tc.fault)

			_, err := live.Role(context.Background(), "KarpenterNodeRole-demo")
			var u *authz.UnavailableError
			if !errors.As(err, &u) || u.Op != "GetRole" {
				t.Fatalf("error = %v, want UnavailableError for GetRole", err)
			}
			if errors.Is(err, authz.ErrNotFound) {
				t.Error("an unavailable IAM must not read as not-found")
			}
			var apiErr smithy.APIError
			if tc.code != "" && (!errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code) {
				t.Errorf("error %v does not carry API code %s", err, tc.code)
			}
			if got := srv.Calls("GetRole"); got != tc.calls {
				t.Errorf("GetRole requests = %d, want %d", got, tc.calls)
			}
			if got := counter(t, m.Requests.WithLabelValues("GetRole", tc.outcome)); got != 1 {
				t.Errorf("requests_total{GetRole,%s} = %v, want 1", tc.outcome, got)
			}

			// The same failures through Decide and InstanceProfile.
			_, err = live.Decide(context.Background(), authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2})
			if !errors.As(err, &u) || u.Op != "SimulatePrincipalPolicy" {
				t.Errorf("Decide error = %v, want UnavailableError for SimulatePrincipalPolicy", err)
			}
			if _, err = live.InstanceProfile(context.Background(), "EmptyProfile"); !authz.IsUnavailable(err) {
				t.Errorf("InstanceProfile error = %v, want UnavailableError", err)
			}
		})
	}
}

func TestLiveRecoversFromTransientThrottling(t *testing.T) {
	srv, client, _ := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	srv.FailNext(iamserver.Throttling, 2)
	r, err := live.Role(context.Background(), "KarpenterNodeRole-demo")
	if err != nil || r.ARN != demoNodeARN {
		t.Fatalf("Role after two throttles = %+v, %v; the SDK's third attempt should succeed", r, err)
	}
	if got := srv.Calls("GetRole"); got != 3 {
		t.Errorf("GetRole requests = %d, want 3", got)
	}
}

func TestLiveTimeouts(t *testing.T) {
	t.Run("NewIAMClient budget", func(t *testing.T) {
		srv := iamserver.New(loadSample(t), iamserver.WithFailure(iamserver.Failure{Fault: iamserver.Hang, Always: true}))
		url, stop := srv.Start()
		defer stop()
		isolateAWSEnv(t)
		const timeout = 300 * time.Millisecond
		client, err := authz.NewIAMClient(context.Background(), "us-east-1", url, timeout)
		if err != nil {
			t.Fatal(err)
		}
		m := authz.NewMetrics()
		live := authz.NewLive(client, authz.LiveOptions{Metrics: m})
		start := time.Now()
		_, err = live.Role(context.Background(), "KarpenterNodeRole-demo")
		elapsed := time.Since(start)
		if !authz.IsUnavailable(err) || !isTimeout(err) {
			t.Fatalf("error = %v, want an UnavailableError caused by a timeout", err)
		}
		// A bound, not a speed test: without the budget a hung IAM would
		// hold the call until the test binary's own timeout.
		if elapsed > 10*timeout {
			t.Errorf("call took %v, far past its %v budget", elapsed, timeout)
		}
		if got := srv.Calls("GetRole"); got < 1 || got > 3 {
			t.Errorf("GetRole requests = %d, want 1..3 attempts", got)
		}
		if got := counter(t, m.Requests.WithLabelValues("GetRole", authz.OutcomeTimeout)); got != 1 {
			t.Errorf("requests_total{GetRole,timeout} = %v, want 1", got)
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		srv, client, _ := endpoint(t)
		srv.FailAlways(iamserver.Hang)
		live := authz.NewLive(client, authz.LiveOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := live.Decide(ctx, authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2})
		if !authz.IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want UnavailableError wrapping context.DeadlineExceeded", err)
		}
	})
	t.Run("latency within budget", func(t *testing.T) {
		srv, client, _ := endpoint(t, iamserver.WithActionLatency("GetRole", 20*time.Millisecond))
		live := authz.NewLive(client, authz.LiveOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := live.Role(ctx, "KarpenterNodeRole-demo"); err != nil {
			t.Fatalf("slow but answering IAM: %v", err)
		}
		if srv.Calls("GetRole") != 1 {
			t.Errorf("GetRole requests = %d, want 1", srv.Calls("GetRole"))
		}
	})
}

func TestNewIAMClientUsesEnvironmentCredentials(t *testing.T) {
	url, stop := iamserver.New(loadSample(t)).Start()
	defer stop()
	isolateAWSEnv(t)
	client, err := authz.NewIAMClient(context.Background(), "", url, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if client.Options().Region != "us-east-1" {
		t.Errorf("region = %q, want the us-east-1 default", client.Options().Region)
	}
	r, err := authz.NewLive(client, authz.LiveOptions{}).Role(context.Background(), "AdminNodeRole")
	if err != nil || r.ARN != adminNodeARN {
		t.Fatalf("Role through NewIAMClient = %+v, %v", r, err)
	}
}

// isolateAWSEnv gives the SDK's default chain static environment
// credentials and nothing else to find.
func isolateAWSEnv(t *testing.T) {
	iamserver.IsolateAWSEnv(t, "AKIDEXAMPLE", "secret")
}

// scenario are the permission questions of the sample snapshot, with IAM's
// expected answers.
var scenario = []struct {
	name     string
	q        authz.Question
	allowed  bool
	explicit bool
	source   authz.DenySource
}{
	{"PassRole demo node role", authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2}, true, false, ""},
	{"PassRole team node role (path not covered)", authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: teamNodeARN, Context: toEC2}, false, false, ""},
	{"PassRole admin role (Guardrails deny)", authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: adminNodeARN, Context: toEC2}, false, true, authz.DeniedByIdentity},
	{"PassRole other role (no allow)", authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: otherNodeARN, Context: toEC2}, false, false, ""},
	{"PassRole demo to another service", authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: map[string][]string{"iam:PassedToService": {"lambda.amazonaws.com"}}}, false, false, ""},
	{"bounded controller PassRole", authz.Question{Principal: boundedARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2}, false, false, authz.DeniedByBoundary},
	{"limited controller PassRole admin", authz.Question{Principal: limitedARN, Action: "iam:PassRole", Resource: adminNodeARN, Context: toEC2}, true, false, ""},
	{"GetInstanceProfile", authz.Question{Principal: controllerARN, Action: "iam:GetInstanceProfile", Resource: "arn:aws:iam::111122223333:instance-profile/KarpenterNodeInstanceProfile-demo"}, true, false, ""},
	{"limited controller GetInstanceProfile", authz.Question{Principal: limitedARN, Action: "iam:GetInstanceProfile", Resource: "arn:aws:iam::111122223333:instance-profile/KarpenterNodeInstanceProfile-demo"}, false, false, ""},
	{"CreateInstanceProfile with Karpenter's tags", authz.Question{Principal: controllerARN, Action: "iam:CreateInstanceProfile", Resource: "arn:aws:iam::111122223333:instance-profile/*", Context: map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/demo":     {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":           {"demo"},
		"aws:RequestTag/topology.kubernetes.io/region":  {"us-west-2"},
		"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": {"default"},
		"aws:TagKeys": {"kubernetes.io/cluster/demo", "eks:eks-cluster-name", "topology.kubernetes.io/region", "karpenter.k8s.aws/ec2nodeclass"},
	}}, true, false, ""},
	{"CreateInstanceProfile for another cluster", authz.Question{Principal: controllerARN, Action: "iam:CreateInstanceProfile", Resource: "arn:aws:iam::111122223333:instance-profile/*", Context: map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/prod":     {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":           {"prod"},
		"aws:RequestTag/topology.kubernetes.io/region":  {"us-west-2"},
		"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": {"default"},
	}}, false, false, ""},
	{"RunInstances with tags", authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/demo": {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":       {"demo"},
		"aws:RequestTag/karpenter.sh/nodepool":      {"default"},
	}}, true, false, ""},
	{"RunInstances in another region", authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:eu-west-1:111122223333:instance/*", Context: map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/demo": {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":       {"demo"},
		"aws:RequestTag/karpenter.sh/nodepool":      {"default"},
	}}, false, false, ""},
	{"bounded controller RunInstances", authz.Question{Principal: boundedARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/demo": {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":       {"demo"},
		"aws:RequestTag/karpenter.sh/nodepool":      {"default"},
	}}, true, false, ""},
}

func TestLiveDecideScenario(t *testing.T) {
	_, client, _ := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	for _, tc := range scenario {
		t.Run(tc.name, func(t *testing.T) {
			d, err := live.Decide(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.allowed || d.Explicit != tc.explicit || d.DeniedBy.Source != tc.source {
				t.Errorf("Decide = allowed %v explicit %v source %q; want %v %v %q (%s)",
					d.Allowed, d.Explicit, d.DeniedBy.Source, tc.allowed, tc.explicit, tc.source, d.Reason())
			}
		})
	}
}

func TestLiveDecideDetails(t *testing.T) {
	_, client, _ := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	ctx := context.Background()

	d, err := live.Decide(ctx, authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: adminNodeARN, Context: toEC2})
	if err != nil {
		t.Fatal(err)
	}
	if d.DeniedBy.Policy != "Guardrails" || !strings.HasPrefix(d.DeniedBy.Statement, "line ") {
		t.Errorf("DeniedBy = %+v, want the Guardrails inline policy at a line", d.DeniedBy)
	}
	if r := d.Reason(); !strings.Contains(r, "explicitly denied by identity policy \"Guardrails\"") {
		t.Errorf("Reason = %q", r)
	}

	// A condition key the question does not supply is reported missing.
	d, err = live.Decide(ctx, authz.Question{Principal: limitedARN, Action: "iam:PassRole", Resource: adminNodeARN})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || !slices.Contains(d.MissingContext, "iam:PassedToService") {
		t.Errorf("Decide without context = %+v, want denied with iam:PassedToService missing", d)
	}

	// Unknown principals.
	_, err = live.Decide(ctx, authz.Question{Principal: "arn:aws:iam::111122223333:role/Nobody", Action: "iam:PassRole", Resource: demoNodeARN})
	if !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("unknown principal: %v, want NotFoundError", err)
	}
	_, err = live.Decide(ctx, authz.Question{Principal: "not-an-arn", Action: "iam:PassRole", Resource: demoNodeARN})
	if err == nil || errors.Is(err, authz.ErrNotFound) || authz.IsUnavailable(err) {
		t.Errorf("malformed principal: %v, want a plain error", err)
	}
}

func TestLiveResolvePrincipal(t *testing.T) {
	srv, client, _ := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	ctx := context.Background()

	assumed := "arn:aws:sts::111122223333:assumed-role/KarpenterNodeRole-team/i-0123456789abcdef0"
	for i := 0; i < 2; i++ {
		got, err := live.ResolvePrincipal(ctx, assumed)
		if err != nil || got != teamNodeARN {
			t.Fatalf("ResolvePrincipal = %q, %v; want %q", got, err, teamNodeARN)
		}
	}
	if got := srv.Calls("GetRole"); got != 1 {
		t.Errorf("GetRole calls for two resolutions = %d, want 1 (remembered)", got)
	}
	if got, err := live.ResolvePrincipal(ctx, controllerARN); err != nil || got != controllerARN {
		t.Errorf("role ARN resolves to %q, %v; want itself", got, err)
	}
	if _, err := live.ResolvePrincipal(ctx, "arn:aws:sts::111122223333:assumed-role/Nobody/s"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("unknown assumed role: %v", err)
	}

	// SimulatePrincipalPolicy refuses assumed-role ARNs; Decide resolves
	// them first.
	q := authz.Question{Principal: "arn:aws:sts::111122223333:assumed-role/KarpenterControllerRole/karpenter", Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2}
	d, err := live.Decide(ctx, q)
	if err != nil || !d.Allowed {
		t.Errorf("Decide with an assumed-role principal = %+v, %v; want allowed", d, err)
	}
}

// TestLiveAgreesWithSnapshot asks every scenario question both through the
// endpoint (Live, SimulatePrincipalPolicy over the Query protocol) and of
// the snapshot directly: the two views must give the same verdicts.
func TestLiveAgreesWithSnapshot(t *testing.T) {
	_, client, snap := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	ctx := context.Background()
	for _, tc := range scenario {
		t.Run(tc.name, func(t *testing.T) {
			want, err := snap.Decide(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := live.Decide(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Allowed != want.Allowed || got.Explicit != want.Explicit {
				t.Errorf("live allowed=%v explicit=%v, snapshot allowed=%v explicit=%v", got.Allowed, got.Explicit, want.Allowed, want.Explicit)
			}
			if got.DeniedBy.Source != want.DeniedBy.Source {
				t.Errorf("live denied by %q, snapshot by %q", got.DeniedBy.Source, want.DeniedBy.Source)
			}
			if !reflect.DeepEqual(sorted(got.MissingContext), sorted(want.MissingContext)) {
				t.Errorf("missing context: live %v, snapshot %v", got.MissingContext, want.MissingContext)
			}
		})
	}
}

func TestLiveBehindCache(t *testing.T) {
	srv, client, _ := endpoint(t)
	m := authz.NewMetrics()
	reg := prometheus.NewRegistry()
	m.MustRegister(reg)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cached := authz.NewCached(authz.NewLive(client, authz.LiveOptions{Metrics: m}), authz.CacheOptions{
		TTL: time.Minute, Metrics: m, Now: func() time.Time { return clock },
	})
	ctx := context.Background()
	q := scenario[0].q
	for i := 0; i < 5; i++ {
		if d, err := cached.Decide(ctx, q); err != nil || !d.Allowed || d.Stale {
			t.Fatalf("Decide = %+v, %v", d, err)
		}
	}
	if got := srv.Calls("SimulatePrincipalPolicy"); got != 1 {
		t.Errorf("SimulatePrincipalPolicy calls = %d, want 1", got)
	}
	// IAM goes down after the TTL: the stale answer is served.
	srv.FailAlways(iamserver.ServiceFailure)
	clock = clock.Add(2 * time.Minute)
	d, err := cached.Decide(ctx, q)
	if err != nil || !d.Allowed || !d.Stale || d.Age != 2*time.Minute {
		t.Errorf("Decide with IAM down = %+v, %v; want the stale allowed answer, 2m old", d, err)
	}
	if _, err := cached.Role(ctx, "KarpenterNodeRole-demo"); !authz.IsUnavailable(err) {
		t.Errorf("uncached Role with IAM down = %v, want UnavailableError", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	for _, want := range []string{"nodeclass_guard_iam_requests_total", "nodeclass_guard_iam_request_duration_seconds", "nodeclass_guard_iam_cache_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("registry lacks %s (has %v)", want, names)
		}
	}
}

func sorted(s []string) []string {
	s = append([]string{}, s...)
	slices.Sort(s)
	return s
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
