package envtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// The audit env's bounds: a revoked permission must be seen within one
// interval plus one TTL.
const (
	auditInterval = 2 * time.Second
	auditTTL      = 2 * time.Second
	// auditSlack covers a pass's own time, the Event's way through the API
	// server and this poll, on a loaded 2-core machine.
	auditSlack = 20 * time.Second
)

// revokedSnapshot is the sample snapshot with an inline policy added to
// the controller role that denies iam:PassRole on role.
func revokedSnapshot(t *testing.T, e *framework.Env, role string) *authz.Snapshot {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.Root, framework.SampleSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range doc["RoleDetailList"].([]any) {
		r := r.(map[string]any)
		if r["RoleName"] != "KarpenterControllerRole" {
			continue
		}
		found = true
		list, _ := r["RolePolicyList"].([]any)
		r["RolePolicyList"] = append(list, map[string]any{
			"PolicyName": "AuditRevokesPassRole",
			"PolicyDocument": map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect": "Deny", "Action": "iam:PassRole",
					"Resource": "arn:aws:iam::111122223333:role/" + role,
				}},
			},
		})
	}
	if !found {
		t.Fatal("the sample snapshot has no KarpenterControllerRole")
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := authz.LoadSnapshot(bytes.NewReader(out), "sample snapshot with iam:PassRole on "+role+" revoked")
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func sampleSnapshot(t *testing.T, e *framework.Env) *authz.Snapshot {
	t.Helper()
	snap, err := authz.LoadSnapshotFile(filepath.Join(e.Root, framework.SampleSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// waitEvent polls the Events of the cluster-scoped object name (recorded
// in namespace default) until one of type typ and reason appears, and
// returns it.
func waitEvent(ctx context.Context, t *testing.T, c client.Client, name, typ, reason string, within time.Duration) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var list corev1.EventList
		if err := c.List(ctx, &list, client.InNamespace("default")); err != nil {
			t.Fatal(err)
		}
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name == name && ev.Type == typ && ev.Reason == reason {
				return ev
			}
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, ev := range list.Items {
				if ev.InvolvedObject.Name == name {
					seen = append(seen, ev.Type+"/"+ev.Reason+": "+ev.Message)
				}
			}
			t.Fatalf("no %s Event %s on %s within %s; its Events: %q", typ, reason, name, within, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countEvents counts the object's Events of a reason, repeats included.
func countEvents(ctx context.Context, t *testing.T, c client.Client, name, reason string) int {
	t.Helper()
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == name && ev.Reason == reason {
			// A repeat of the same Event is folded into the first as a
			// series (events.k8s.io) or a count (core/v1): count those too.
			repeats := max(int(ev.Count), 1)
			if ev.Series != nil {
				repeats = max(repeats, int(ev.Series.Count))
			}
			n += repeats
		}
	}
	return n
}

// gauge reads one sample of a metric from a /metrics endpoint; ok=false
// when it is absent.
func gauge(t *testing.T, metricsURL, name string, labels string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

const violationsPassRole = `{code="PassRoleDenied",kind="EC2NodeClass"}`

// waitGauge polls the violations gauge until cond holds.
func waitGauge(t *testing.T, metricsURL string, cond func(float64) bool, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, _ := gauge(t, metricsURL, "nodeclass_guard_audit_violations", violationsPassRole)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodeclass_guard_audit_violations%s = %g after %s", violationsPassRole, v, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAuditRevokeRestore admits a class while the controller may pass its
// role, then revokes iam:PassRole in the local IAM endpoint: within one
// audit interval plus one cache TTL the class gets a Warning Event
// [PassRoleDenied] with the admission's text, the violations gauge rises,
// and `nodeclass-guard audit` against the cluster prints the class and
// exits 1. Restoring the permission clears the gauge with a Normal Event.
func TestAuditRevokeRestore(t *testing.T) {
	e := auditEnv.Get(t)
	if e.IAM == nil {
		t.Skip("needs the local IAM endpoint")
	}
	ctx := testContext(t)
	c := newClient(t, e)
	const nodeRole = "KarpenterNodeRole-demo"
	original := sampleSnapshot(t, e)
	t.Cleanup(func() { e.IAM.SetSnapshot(original) })

	name := fmt.Sprintf("audit-revoke-%d", time.Now().UnixNano()%1e9)
	class := ec2NodeClass(name, role(nodeRole))
	_, err := create(ctx, c, class)
	requireAllowed(t, err, "the class while iam:PassRole is allowed")
	deleteAtEnd(t, c, class)

	// Seen by a pass as passing: no finding yet.
	time.Sleep(auditInterval + time.Second)
	if n := countEvents(ctx, t, c, name, "PassRoleDenied"); n != 0 {
		t.Fatalf("%d PassRoleDenied Events before the revocation", n)
	}

	revoked := time.Now()
	e.IAM.SetSnapshot(revokedSnapshot(t, e, nodeRole))
	bound := auditInterval + auditTTL + auditSlack
	ev := waitEvent(ctx, t, c, name, corev1.EventTypeWarning, "PassRoleDenied", bound)
	took := time.Since(revoked)
	t.Logf("Warning Event %s %.1fs after the revocation (interval %s + TTL %s): %s", ev.Reason, took.Seconds(), auditInterval, auditTTL, ev.Message)
	if ev.ReportingController != "nodeclass-guard" {
		t.Errorf("Event reported by %q, want nodeclass-guard (docs/deploy.md filters on it)", ev.ReportingController)
	}
	if !strings.HasPrefix(ev.Message, "spec.role: [PassRoleDenied] ") || !strings.Contains(ev.Message, "iam:PassRole") {
		t.Errorf("Event message %q is not the admission's `spec.role: [PassRoleDenied] ...` line", ev.Message)
	}
	waitGauge(t, e.MetricsURL, func(v float64) bool { return v >= 1 }, bound)

	// The admission says the same now.
	_, err = create(ctx, c, ec2NodeClass(name+"-again", role(nodeRole)), client.DryRunAll)
	lines := requireDenied(t, e, groupEC2NodeClass, err, "spec.role: PassRoleDenied")
	same := false
	for _, l := range lines {
		same = same || l == ev.Message
	}
	if !same {
		t.Errorf("the Event's message is not the admission's line:\n  Event     %q\n  admission %q", ev.Message, lines)
	}

	// Not re-emitted on every pass.
	time.Sleep(2 * auditInterval)
	if n := countEvents(ctx, t, c, name, "PassRoleDenied"); n != 1 {
		t.Errorf("%d PassRoleDenied Events after several passes; want 1 (emitted on change only)", n)
	}

	t.Run("nodeclass-guard audit", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		args := append([]string{"audit", "--kubeconfig", e.Kubeconfig, "-o", "json"}, e.IAMArgs()...)
		// The CLI's own cache is empty: it asks IAM now.
		cmd := e.Command(cctx, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("nodeclass-guard audit: %v, want exit 1; stderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
		}
		var report struct {
			Results []struct {
				Source, Kind, Name string
				Allowed            bool
				Denials            []struct{ Code, Field, Message string }
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("audit -o json: %v\n%s", err, stdout.String())
		}
		found := false
		for _, r := range report.Results {
			if r.Kind == "EC2NodeClass" && r.Name == name {
				found = true
				if r.Allowed || len(r.Denials) == 0 || r.Denials[0].Code != "PassRoleDenied" {
					t.Errorf("%s: allowed=%v denials=%+v, want PassRoleDenied", name, r.Allowed, r.Denials)
				}
				if r.Source != "cluster:EC2NodeClass/"+name {
					t.Errorf("source %q", r.Source)
				}
			}
		}
		if !found {
			t.Errorf("the report does not list %s:\n%s", name, stdout.String())
		}

		// Text, as check prints it.
		cmd = e.Command(cctx, append([]string{"audit", "--kubeconfig", e.Kubeconfig}, e.IAMArgs()...)...)
		out, _ := cmd.Output()
		if !strings.Contains(string(out), "DENY  EC2NodeClass/"+name+"  (cluster:EC2NodeClass/"+name+")") ||
			!strings.Contains(string(out), "[PassRoleDenied]") {
			t.Errorf("text report lacks the denied class:\n%s", out)
		}
	})

	restored := time.Now()
	e.IAM.SetSnapshot(original)
	ev = waitEvent(ctx, t, c, name, corev1.EventTypeNormal, "NodeClassGuardPassed", bound)
	t.Logf("Normal Event %s %.1fs after the restore: %s", ev.Reason, time.Since(restored).Seconds(), ev.Message)
	if !strings.Contains(ev.Message, "PassRoleDenied") {
		t.Errorf("Normal Event %q does not say what was resolved", ev.Message)
	}
	waitGauge(t, e.MetricsURL, func(v float64) bool { return v == 0 }, bound)
	if v, ok := gauge(t, e.MetricsURL, "nodeclass_guard_audit_last_complete_timestamp_seconds", ""); !ok || v < float64(revoked.Unix()) {
		t.Errorf("nodeclass_guard_audit_last_complete_timestamp_seconds = %g (present %v), want a pass after the revocation", v, ok)
	}
}

// TestAuditOneLeader starts a second replica beside the first: both
// admit, only the Lease holder audits, and when the holder stops the other
// takes over. It stops the Env's own serve: keep it the last test of
// auditEnv.
func TestAuditOneLeader(t *testing.T) {
	e := auditEnv.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)

	second, err := e.StartReplica(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := second.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("second replica's output:\n%s", second.Log())
		}
	})
	// Let the second replica run through several audit intervals.
	time.Sleep(3 * auditInterval)

	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: "nodeclass-guard", Name: "nodeclass-guard-audit"}, &lease); err != nil {
		t.Fatalf("the audit's Lease: %v", err)
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	firstAudits := strings.Contains(e.ServeLog(), `"audit started"`)
	secondAudits := strings.Contains(second.Log(), `"audit started"`)
	t.Logf("lease holder %q; first replica audits: %v, second: %v", holder, firstAudits, secondAudits)
	if holder == "" {
		t.Error("the Lease has no holder")
	}
	if firstAudits == secondAudits {
		t.Fatalf("first replica audits: %v, second: %v; want exactly one", firstAudits, secondAudits)
	}
	leaderMetrics, otherMetrics := e.MetricsURL, second.MetricsURL
	if secondAudits {
		leaderMetrics, otherMetrics = second.MetricsURL, e.MetricsURL
	}
	if v, _ := gauge(t, leaderMetrics, "nodeclass_guard_audit_last_complete_timestamp_seconds", ""); v == 0 {
		t.Error("the leader has completed no audit pass")
	}
	if v, _ := gauge(t, otherMetrics, "nodeclass_guard_audit_last_complete_timestamp_seconds", ""); v != 0 {
		t.Errorf("the replica without the Lease completed an audit pass at %g", v)
	}

	// The second replica admits too (below); first, when the leader goes,
	// the other takes the Lease over and audits.
	defer func() {
		if !firstAudits || t.Failed() {
			return
		}
		if err := e.StopServe(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second) // the Lease is released on a clean stop; 15s lease otherwise
		for !strings.Contains(second.Log(), `"audit started"`) {
			if time.Now().After(deadline) {
				t.Fatalf("the second replica did not take the audit over within 30s of the leader stopping")
			}
			time.Sleep(200 * time.Millisecond)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			if v, _ := gauge(t, second.MetricsURL, "nodeclass_guard_audit_last_complete_timestamp_seconds", ""); v > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the new leader completed no audit pass within 30s")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	class := ec2NodeClass("audit-second-replica", role("KarpenterNodeRole-demo"))
	req := admissionReviewFor(t, class)
	resp, err := postReview(second.WebhookURL+"/validate-karpenter-k8s-aws-ec2nodeclass", e, req)
	if err != nil {
		t.Fatalf("the second replica does not admit: %v", err)
	}
	if !resp {
		t.Error("the second replica denied a good class")
	}
}

// admissionReviewFor is the AdmissionReview the API server would send for
// creating obj.
func admissionReviewFor(t *testing.T, obj client.Object) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       "audit-second-replica",
			"kind":      map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind},
			"resource":  map[string]any{"group": gvk.Group, "version": gvk.Version, "resource": strings.ToLower(gvk.Kind) + "es"},
			"name":      obj.GetName(),
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "admin"},
			"object":    json.RawMessage(raw),
		},
	}
	out, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postReview sends an AdmissionReview straight to a replica's webhook,
// trusting the Env's CA, and returns whether it was allowed.
func postReview(url string, e *framework.Env, review []byte) (bool, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CA.CertPEM())
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Post(url, "application/json", bytes.NewReader(review))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			Allowed bool `json:"allowed"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	return out.Response.Allowed, nil
}
