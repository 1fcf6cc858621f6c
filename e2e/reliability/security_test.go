package reliability_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// TestTLSVersions: the webhook port (and the metrics port, served over
// HTTPS with --metrics-secure) refuses TLS 1.0 and 1.1 handshakes and
// completes TLS 1.2 and 1.3 ones.
func TestTLSVersions(t *testing.T) {
	e := serveEnv.Get(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.CA.CertPEM())
	ports := map[string]*tls.Config{
		"webhook": {RootCAs: roots, ServerName: "127.0.0.1"},
		// The metrics server's certificate is self-signed by controller-runtime.
		"metrics": {InsecureSkipVerify: true},
	}
	for name, base := range ports {
		host := mustHost(t, map[string]string{"webhook": e.WebhookURL, "metrics": e.MetricsURL}[name])
		for _, v := range []struct {
			version uint16
			name    string
			refused bool
		}{
			{tls.VersionTLS10, "TLS 1.0", true},
			{tls.VersionTLS11, "TLS 1.1", true},
			{tls.VersionTLS12, "TLS 1.2", false},
			{tls.VersionTLS13, "TLS 1.3", false},
		} {
			cfg := base.Clone()
			cfg.MinVersion, cfg.MaxVersion = v.version, v.version
			if v.version < tls.VersionTLS12 {
				// Offer what an old client offers: without these, Go's client
				// has no cipher suite for TLS 1.0/1.1 and fails on its own.
				cfg.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}
			}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", host, cfg)
			switch {
			case v.refused && err == nil:
				conn.Close()
				t.Errorf("%s port %s: a %s handshake succeeded", name, host, v.name)
			case v.refused && !strings.Contains(err.Error(), "protocol version"):
				t.Errorf("%s port %s: %s handshake failed, but not on the version: %v", name, host, v.name, err)
			case !v.refused && err != nil:
				t.Errorf("%s port %s: %s handshake: %v", name, host, v.name, err)
			case !v.refused:
				conn.Close()
			}
		}
	}
}

// TestNoPlaintextWebhook: nothing answers an admission without TLS, on the
// webhook port or on serve's other ports.
func TestNoPlaintextWebhook(t *testing.T) {
	e := serveEnv.Get(t)
	body := reviewBody(ec2NodeClass("plaintext", "KarpenterNodeRole-demo", ""))
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, base := range []string{
		"http://" + mustHost(t, e.WebhookURL),
		"http://" + mustHost(t, e.MetricsURL),
		e.HealthURL,
	} {
		for _, path := range []string{webhook.EC2NodeClassPath, webhook.NodePoolPath, webhook.NodeClassPath} {
			resp, err := hc.Post(base+path, "application/json", bytes.NewReader(body))
			if err != nil {
				continue // refused outright: fine
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || bytes.Contains(b, []byte("AdmissionReview")) {
				t.Errorf("POST %s%s over plain HTTP: HTTP %d %.200q", base, path, resp.StatusCode, b)
			}
		}
	}
}

// TestMetricsNeedAuthentication: with --metrics-secure, /metrics answers
// 401 without a token and 403 to an authenticated user the API server does
// not authorize, and serves the metrics to one it does (RBAC on the
// nonResourceURL /metrics), through TokenReview and SubjectAccessReview.
//
// serve's identity needs to create TokenReviews and SubjectAccessReviews
// for that; deploy/base does not grant it (metrics are plain HTTP there),
// so the test binds it the way a deployment enabling --metrics-secure must.
func TestMetricsNeedAuthentication(t *testing.T) {
	e := serveEnv.Get(t)
	ctx := testContext(t)
	metricsURL := "https://" + mustHost(t, e.MetricsURL) + "/metrics"
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}}
	get := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", metricsURL, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, string(b)
	}

	if code, body := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: HTTP %d %.200q, want 401", code, body)
	}
	if code, body := get("not-a-token"); code != http.StatusUnauthorized && code != http.StatusForbidden && code != http.StatusInternalServerError {
		t.Errorf("GET /metrics with a bogus token: HTTP %d %.200q, want it refused", code, body)
	} else if code == http.StatusOK {
		t.Errorf("GET /metrics with a bogus token: served")
	}

	const ns = "nodeclass-guard" // deploy/base's namespace and service account
	apply(t, e, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "nodeclass-guard-metrics-auth"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		},
	})
	apply(t, e, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "nodeclass-guard-metrics-auth"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "nodeclass-guard-metrics-auth"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "nodeclass-guard"}},
	})
	apply(t, e, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "nodeclass-guard-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	})
	apply(t, e, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "nodeclass-guard-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "nodeclass-guard-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "metrics-reader"}},
	})
	reader := serviceAccountToken(t, e, ns, "metrics-reader")
	outsider := serviceAccountToken(t, e, ns, "metrics-outsider")

	// RBAC takes effect within moments; the authorizer caches denials for
	// 30s, so the reader is asked first.
	var code int
	var body string
	waitFor(t, 90*time.Second, "the metrics reader to be served", func() bool {
		code, body = get(reader)
		return code == http.StatusOK
	})
	if !strings.Contains(body, "nodeclass_guard_iam_cache_total") && !strings.Contains(body, "controller_runtime_webhook_requests_total") {
		t.Errorf("GET /metrics as the reader: HTTP 200 without nodeclass-guard's metrics: %.300q", body)
	}
	if code, body := get(outsider); code != http.StatusForbidden {
		t.Errorf("GET /metrics as an authenticated user without RBAC: HTTP %d %.200q, want 403", code, body)
	}
}

// apply creates obj, or leaves it when it exists.
func apply(t *testing.T, e *framework.Env, obj client.Object) {
	t.Helper()
	if err := e.Client.Create(testContext(t), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// serviceAccountToken creates a service account and returns a token for it
// (TokenRequest).
func serviceAccountToken(t *testing.T, e *framework.Env, ns, name string) string {
	t.Helper()
	ctx := testContext(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	apply(t, e, sa)
	expiry := int64(3600)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}
	if err := e.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, name, err)
	}
	if tr.Status.Token == "" {
		t.Fatalf("TokenRequest for %s/%s: no token", ns, name)
	}
	return tr.Status.Token
}

// TestLogsHoldNoSecrets runs admissions of every kind of verdict, IAM
// failures included, through both serve modes at the most verbose log
// level, and checks that serve's output never holds the AWS credentials
// it was given or a policy document (trust policies in the live mode,
// every policy of the snapshot in the snapshot mode).
func TestLogsHoldNoSecrets(t *testing.T) {
	docs := snapshotPolicyFragments(t)
	for _, tc := range []struct {
		name string
		env  *framework.Shared
	}{
		{"live IAM", serveEnv},
		{"snapshot", snapshotEnv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env.Get(t)
			exerciseLogs(t, e)
			log := e.ServeLog()
			// The log must show what was exercised, or the test proves nothing.
			for _, want := range []string{"log-no-trust", "RoleTrustMissingEC2", "wrote response"} {
				if !strings.Contains(log, want) {
					t.Fatalf("serve's log does not mention %q: the admissions were not logged as expected", want)
				}
			}
			if e.IAM != nil && !strings.Contains(log, "IAMUnavailable") {
				t.Fatalf("serve's log does not mention IAMUnavailable: the IAM failures were not exercised")
			}
			for _, secret := range []string{awsSecret, url.QueryEscape(awsSecret), "AKIAIOSFODNN7EXAMPLE"} {
				if strings.Contains(log, secret) {
					t.Errorf("serve's log holds the AWS credential %q", secret)
				}
			}
			for _, marker := range []string{`"Statement"`, `\"Statement\"`, `%22Statement%22`, `"Effect":`, `\"Effect\":`} {
				if i := strings.Index(log, marker); i >= 0 {
					t.Errorf("serve's log holds a policy document (%s): ...%s...", marker, log[max(0, i-200):min(len(log), i+200)])
				}
			}
			for _, d := range docs {
				if strings.Contains(log, d) {
					t.Errorf("serve's log holds a policy document of the snapshot: %.200s", d)
				}
			}
		})
	}
}

// exerciseLogs sends allowed, denied, IAM-failing and malformed admissions
// through the API server and directly.
func exerciseLogs(t *testing.T, e *framework.Env) {
	t.Helper()
	ctx := testContext(t)
	objects := []*unstructured.Unstructured{
		clusterEC2NodeClass("log-good", map[string]any{"role": "KarpenterNodeRole-demo"}),
		clusterEC2NodeClass("log-no-trust", map[string]any{"role": "KarpenterNodeRole-notrust"}),
		clusterEC2NodeClass("log-team", map[string]any{"role": "KarpenterNodeRole-team"}),
		clusterEC2NodeClass("log-admin", map[string]any{"role": "AdminNodeRole"}),
		clusterEC2NodeClass("log-profile", map[string]any{"instanceProfile": "admin-profile"}),
		clusterEC2NodeClass("log-arn", map[string]any{"role": "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"}),
	}
	if e.IAM != nil {
		// The account in an organization: serve reads the controller
		// role's policies once per TTL and evaluates them itself, but asks
		// IAM what the SCPs say of each new class's requests, so that the
		// failing IAM below fails admissions (and not only cache refreshes).
		e.IAM.SetOrganization(&authz.Organization{})
		t.Cleanup(func() { e.IAM.SetOrganization(nil) })
		time.Sleep(serveCacheTTL + 500*time.Millisecond) // the policies are read again, in the organization
	}
	admitAll := func() {
		for _, obj := range objects {
			_ = e.Client.Create(ctx, obj.DeepCopy(), client.DryRunAll) // verdicts do not matter here
		}
	}
	admitAll()
	if e.IAM != nil {
		for _, fault := range []iamserver.Fault{iamserver.Throttling, iamserver.ServiceFailure, iamserver.MalformedXML} {
			e.IAM.FailAlways(fault)
			for i, obj := range objects {
				o := obj.DeepCopy()
				o.SetName(fmt.Sprintf("%s-%s-%d", o.GetName(), strings.ToLower(string(fault)), i))
				_ = e.Client.Create(ctx, o, client.DryRunAll)
			}
			e.IAM.ClearFailures()
		}
	}
	hc := webhookClient(false, e.CA.CertPEM())
	for _, body := range [][]byte{
		[]byte("{not json"),
		createReview(nodePoolV1, "wrong-path", nodePool("wrong-path", "log-good").json),
		createReview(ec2NodeClassV1, "bad-spec", rawObject(ec2NodeClassV1, "bad-spec", `{"role":["x"]}`)),
	} {
		if _, err := post(ctx, hc, e.WebhookURL+webhook.EC2NodeClassPath, body); err != nil {
			t.Fatalf("direct admission: %v", err)
		}
	}
}

func clusterEC2NodeClass(name string, iam map[string]any) *unstructured.Unstructured {
	spec := map[string]any{
		"amiSelectorTerms":           []any{map[string]any{"alias": "al2023@latest"}},
		"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
		"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
	}
	for k, v := range iam {
		spec[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "karpenter.k8s.aws/v1",
		"kind":       "EC2NodeClass",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
}

// snapshotPolicyFragments returns, for every policy document of the sample
// snapshot, its first statement in compact JSON: text that appears in a log
// only if a document was logged.
func snapshotPolicyFragments(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if st, ok := v["Statement"]; ok {
				if list, ok := st.([]any); ok && len(list) > 0 {
					st = list[0]
				}
				if b, err := json.Marshal(st); err == nil {
					out = append(out, string(b))
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	walk(all)
	if len(out) == 0 {
		t.Fatal("no policy documents found in the sample snapshot")
	}
	return out
}
