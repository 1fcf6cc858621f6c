package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

func TestSummarizeNearestRank(t *testing.T) {
	var sample []time.Duration
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		sample = append(sample, time.Duration(i)*time.Millisecond)
	}
	l := Summarize(sample)
	want := map[string][2]time.Duration{
		"p50":   {l.P50, 500 * time.Millisecond},
		"p99":   {l.P99, 990 * time.Millisecond},
		"p99.9": {l.P999, 999 * time.Millisecond},
		"max":   {l.Max, 1000 * time.Millisecond},
	}
	for name, got := range want {
		if got[0] != got[1] {
			t.Errorf("%s = %s, want %s", name, got[0], got[1])
		}
	}
	if l.N != 1000 || l.Mean != 500500*time.Microsecond {
		t.Errorf("N=%d Mean=%s, want 1000 and 500.5ms", l.N, l.Mean)
	}
	if sample[0] != 1000*time.Millisecond {
		t.Error("Summarize reordered its argument")
	}
	if got := Summarize(nil); got.P99 != 0 || got.N != 0 {
		t.Errorf("empty sample: %+v", got)
	}
	if got := Summarize([]time.Duration{7}).P999; got != 7 {
		t.Errorf("one value: p99.9 = %s", got)
	}
}

func TestParseMetricsAndSum(t *testing.T) {
	text := `# HELP go_memstats_mallocs_total Total number of heap objects allocated.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 1.234567e+06
process_cpu_seconds_total 12.5
nodeclass_guard_iam_requests_total{api="GetRole",outcome="ok"} 3
nodeclass_guard_iam_requests_total{api="SimulatePrincipalPolicy",outcome="ok"} 301
nodeclass_guard_iam_requests_total{api="SimulatePrincipalPolicy",outcome="timeout"} 2
nodeclass_guard_iam_requests_total_other 99
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m[MetricMallocs] != 1234567 || m[MetricCPU] != 12.5 {
		t.Errorf("unlabelled values: %v", m)
	}
	if got := Sum(m, "nodeclass_guard_iam_requests_total"); got != 306 {
		t.Errorf("Sum of the family = %v, want 306 (a longer family name must not count)", got)
	}
	if got := Sum(m, "nodeclass_guard_iam_requests_total", `outcome="ok"`); got != 304 {
		t.Errorf("Sum of outcome ok = %v, want 304", got)
	}
	if _, err := ParseMetrics(strings.NewReader("broken_metric notanumber\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a bad value: error %v, want one naming line 1", err)
	}
}

func TestProcfsOfThisProcess(t *testing.T) {
	// Burn a little CPU so that the reading is not zero at 10ms resolution.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Errorf("CPUTime = %s, want > 0", cpu)
	}
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS < 1<<20 || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS {
		t.Errorf("%s: want at least 1 MiB, anon and file parts that add up to at most the whole", m)
	}
	if _, err := CPUTime(-1); err == nil {
		t.Error("CPUTime of pid -1: no error")
	}
}

func TestReviewBodyIsWhatControllerRuntimeDecodes(t *testing.T) {
	c := Class{Name: "bench-000001", Role: "KarpenterNodeRole-demo"}
	body := ReviewBody(c, "uid-1")
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	req := review.Request
	if req == nil || req.UID != "uid-1" || req.Name != c.Name || req.Kind.Kind != "EC2NodeClass" || req.Operation != admissionv1.Create {
		t.Fatalf("request: %+v", req)
	}
	var obj rules.EC2NodeClass
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Name != c.Name || obj.Spec.Role != c.Role || obj.Spec.InstanceProfile != "" {
		t.Errorf("object: %+v", obj)
	}

	// The template substitution names the class everywhere ReviewBody does.
	named := ReviewBodies(Class{Role: c.Role})(c.Name)
	var again admissionv1.AdmissionReview
	if err := json.Unmarshal(named, &again); err != nil {
		t.Fatal(err)
	}
	if again.Request.Name != c.Name || !bytes.Contains(again.Request.Object.Raw, []byte(`"name":"`+c.Name+`"`)) {
		t.Errorf("ReviewBodies: request %q, object %s", again.Request.Name, again.Request.Object.Raw)
	}
}

// TestAdmissionThroughServeHandlers sends ReviewBody to the handlers serve
// registers: the harness's requests are admitted, as the scenarios expect.
func TestAdmissionThroughServeHandlers(t *testing.T) {
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	ctl, _ := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
	c := rules.NewChecker(rules.Config{IAM: snap, Controller: ctl, ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny})
	srv := httptest.NewServer(webhook.Handlers(c, nil)[webhook.EC2NodeClassPath])
	defer srv.Close()
	target := &Target{Name: "serve", URL: srv.URL, Client: srv.Client()}
	for _, tc := range []struct {
		class   Class
		allowed bool
	}{
		{Class{Name: "a", Role: "KarpenterNodeRole-demo"}, true},
		{Class{Name: "b", InstanceProfile: "KarpenterNodeInstanceProfile-demo"}, true},
		{Class{Name: "c", Role: "KarpenterNodeRole-demo", InstanceProfile: "KarpenterNodeInstanceProfile-demo"}, false},
	} {
		r := Request{Body: ReviewBody(tc.class, "uid"), Allowed: tc.allowed, Check: true}
		if _, err := target.Do(context.Background(), r, time.Now()); err != nil {
			t.Errorf("%+v: %v", tc.class, err)
		}
		r.Allowed = !tc.allowed
		if _, err := target.Do(context.Background(), r, time.Now()); err == nil {
			t.Errorf("%+v: the opposite verdict was accepted", tc.class)
		}
	}
}

func TestTrivialHandler(t *testing.T) {
	h := TrivialHandler{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(ReviewBody(Class{Name: "a", Role: "r"}, "uid-7"))))
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if rec.Code != http.StatusOK || out.Response == nil || !out.Response.Allowed || out.Response.UID != "uid-7" || out.Kind != "AdmissionReview" {
		t.Errorf("answer %d: %s", rec.Code, rec.Body)
	}
	for name, body := range map[string]string{"not JSON": "{", "no request": `{"kind":"AdmissionReview"}`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body)))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: answered %d, want 400", name, rec.Code)
		}
	}
}

// TestDistinctQuestions pins what the cold scenario compares IAM calls
// with: a spec.role class asks GetRole and PassRole for its role (shared by
// every class naming it) and three instance-profile and three launch
// questions tagged with its own name.
func TestDistinctQuestions(t *testing.T) {
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	ctl, _ := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
	c := rules.Config{IAM: snap, Controller: ctl, ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny}
	var classes []Class
	for _, n := range []string{"a", "b", "c"} {
		classes = append(classes, Class{Name: n, Role: "KarpenterNodeRole-demo"})
	}
	got := DistinctQuestions(context.Background(), c, append(classes, classes...)) // repeats ask nothing new
	// PassRole (shared); per class Karpenter 1.15's 4 instance-profile
	// and 29 distinct launch and validation requests (33, less the
	// validation's CreateFleet dry-run authorized as the RunInstances its
	// own RunInstances dry-run asks again; CreateFleet is not asked on
	// network interfaces, as the Service Authorization Reference lists).
	if got["GetRole"] != 1 || got["SimulatePrincipalPolicy"] != 1+33*3 || len(got) != 2 {
		t.Errorf("role classes: %v, want GetRole 1 and SimulatePrincipalPolicy 100", got)
	}
	if c.IAM != authz.View(snap) {
		t.Error("DistinctQuestions changed the caller's Checker")
	}
	got = DistinctQuestions(context.Background(), c, []Class{{Name: "a", InstanceProfile: "KarpenterNodeInstanceProfile-demo"}, {Name: "b", InstanceProfile: "KarpenterNodeInstanceProfile-demo"}})
	// GetInstanceProfile; GetInstanceProfile permission and PassRole
	// (shared); 29 distinct launch and validation requests per class.
	if got["GetInstanceProfile"] != 1 || got["SimulatePrincipalPolicy"] != 2+29*2 {
		t.Errorf("instance-profile classes: %v, want GetInstanceProfile 1 and SimulatePrincipalPolicy 60", got)
	}

	// IAM calls: the role's GetRole and PassRole (shared), and per class
	// the four instance-profile requests (four contexts) and the launch
	// and validation requests (25 contexts, 25 calls: EC2 authorizes each
	// resource type with its own keys, karpenter/sar.go; see
	// webhook/concurrency_test.go for the list).
	if got := DistinctCalls(context.Background(), c, append(classes, classes...)); got != 2+29*3 {
		t.Errorf("role classes: %d calls, want 89", got)
	}
	// GetInstanceProfile, its read permission and PassRole (shared); 25
	// launch calls per class.
	if got := DistinctCalls(context.Background(), c, []Class{{Name: "a", InstanceProfile: "KarpenterNodeInstanceProfile-demo"}, {Name: "b", InstanceProfile: "KarpenterNodeInstanceProfile-demo"}}); got != 3+25*2 {
		t.Errorf("instance-profile classes: %d calls, want 53", got)
	}
}

// TestNoopHandler: the no-op validator admits the harness's requests,
// through controller-runtime's decoding, as the warm scenario checks.
func TestNoopHandler(t *testing.T) {
	srv := httptest.NewServer(NoopHandler())
	defer srv.Close()
	target := &Target{Name: "noop", URL: srv.URL, Client: srv.Client()}
	for _, c := range []Class{{Name: "a", Role: "KarpenterNodeRole-demo"}, {Name: "c", Role: "x", InstanceProfile: "y"}} {
		if _, err := target.Do(context.Background(), Request{Body: ReviewBody(c, "uid"), Allowed: true, Check: true}, time.Now()); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
