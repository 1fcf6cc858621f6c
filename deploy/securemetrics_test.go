package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
)

// metricsPortSecure is the Service's metrics port name with --metrics-secure.
const metricsPortSecure = "https-metrics"

// renderWithComponents renders the base with deploy/components/<name> for
// each name, in that order, as an overlay listing them would.
func renderWithComponents(t *testing.T, names ...string) rendered {
	t.Helper()
	// Kustomize wants the paths of a kustomization relative to it.
	dir := t.TempDir()
	rel := func(path string) string {
		t.Helper()
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	source := "base"
	components := make([]string, len(names))
	for i, n := range names {
		components[i] = rel(filepath.Join("components", n))
		source += " + components/" + n
	}
	kustomization := "resources: [" + rel("base") + "]\ncomponents: [" + strings.Join(components, ", ") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	return mustRender(t, source, "kustomize", "build", dir)
}

// The RBAC --metrics-secure needs, and what a scraper needs.
var (
	metricsAuthRules = []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
	metricsReaderRules = []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
)

// checkSecureMetrics checks what --metrics-secure needs in an install named
// name in namespace ns: the flag, the review RBAC bound to serve's service
// account, the reader ClusterRole left unbound, the serving certificate
// mounted where the metrics server reads one, and the HTTPS Service port.
// It returns the metrics certificate's mount path.
func checkSecureMetrics(t *testing.T, r rendered, name, ns string) string {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: "+format, append([]any{r.source}, args...)...)
	}
	dep := decodeStrict[appsv1.Deployment](t, r.get(t, "Deployment", ns, name))
	c := dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--metrics-secure") {
		errorf("args %q lack --metrics-secure", c.Args)
	}

	auth := decodeStrict[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", "", name+"-metrics-auth"))
	if !reflect.DeepEqual(auth.Rules, metricsAuthRules) {
		errorf("ClusterRole %s rules %+v, want create on tokenreviews and subjectaccessreviews only", auth.Name, auth.Rules)
	}
	binding := decodeStrict[rbacv1.ClusterRoleBinding](t, r.get(t, "ClusterRoleBinding", "", name+"-metrics-auth"))
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: dep.Spec.Template.Spec.ServiceAccountName, Namespace: ns}}
	if binding.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: auth.Name}) || !reflect.DeepEqual(binding.Subjects, wantSubjects) {
		errorf("ClusterRoleBinding %s binds %+v to %+v, want ClusterRole %s to %+v", binding.Name, binding.RoleRef, binding.Subjects, auth.Name, wantSubjects)
	}
	reader := decodeStrict[rbacv1.ClusterRole](t, r.get(t, "ClusterRole", "", name+"-metrics-reader"))
	if !reflect.DeepEqual(reader.Rules, metricsReaderRules) {
		errorf("ClusterRole %s rules %+v, want get on /metrics only", reader.Name, reader.Rules)
	}
	// Who scrapes is the user's to say: nothing binds the reader role.
	for _, k := range r.keys() {
		var ref rbacv1.RoleRef
		switch k.Kind {
		case "ClusterRoleBinding":
			ref = decodeStrict[rbacv1.ClusterRoleBinding](t, r.objects[k]).RoleRef
		case "RoleBinding":
			ref = decodeStrict[rbacv1.RoleBinding](t, r.objects[k]).RoleRef
		default:
			continue
		}
		if ref.Kind == "ClusterRole" && ref.Name == reader.Name {
			errorf("%s binds %s", k, reader.Name)
		}
	}

	// The serving certificate, mounted a second time for the metrics server.
	serving := decodeStrict[cmv1.Certificate](t, r.get(t, "Certificate", ns, name+"-serving"))
	certDir, _ := argValue(c.Args, "cert-dir")
	var metricsCertDir string
	for _, m := range c.VolumeMounts {
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if m.Name == v.Name && v.Secret != nil && v.Secret.SecretName == serving.Spec.SecretName && m.MountPath != certDir {
				if !m.ReadOnly {
					errorf("the serving certificate is mounted writable at %s", m.MountPath)
				}
				metricsCertDir = m.MountPath
			}
		}
	}
	if metricsCertDir == "" {
		errorf("Secret %s is not mounted for the metrics server; it would serve a self-signed certificate", serving.Spec.SecretName)
	}

	svc := decodeStrict[corev1.Service](t, r.get(t, "Service", ns, name))
	found := false
	for _, p := range svc.Spec.Ports {
		switch p.Name {
		case "metrics":
			errorf("Service still has a port named metrics, as for plain HTTP")
		case metricsPortSecure:
			found = true
			if p.AppProtocol == nil || *p.AppProtocol != "https" {
				errorf("Service port %s has appProtocol %v, want https", p.Name, p.AppProtocol)
			}
		}
	}
	if !found {
		errorf("Service has no %s port: %+v", metricsPortSecure, svc.Spec.Ports)
	}
	return metricsCertDir
}

// TestSecureMetricsComponent checks the secure-metrics component: what
// --metrics-secure needs and nothing else changed, and the chart's
// metrics.secure rendering the same objects.
func TestSecureMetricsComponent(t *testing.T) {
	base, withComponent := renderBase(t), renderWithComponents(t, "secure-metrics")
	decodeAllStrict(t, withComponent)
	checkInstallation(t, withComponent, defaultName, defaultNamespace)
	checkSecureMetrics(t, withComponent, defaultName, defaultNamespace)

	wantKeys := append(baseKeys(),
		objectKey{"ClusterRole", "", defaultName + "-metrics-auth"},
		objectKey{"ClusterRoleBinding", "", defaultName + "-metrics-auth"},
		objectKey{"ClusterRole", "", defaultName + "-metrics-reader"})
	slices.SortFunc(wantKeys, func(a, b objectKey) int { return strings.Compare(a.String(), b.String()) })
	if got := withComponent.keys(); !slices.Equal(got, wantKeys) {
		t.Fatalf("%s renders\n  %v\nwant\n  %v", withComponent.source, got, wantKeys)
	}
	args := argsOf(t, withComponent, defaultName, defaultNamespace)
	if want := append(argsOf(t, base, defaultName, defaultNamespace), "--metrics-secure"); !slices.Equal(args, want) {
		t.Errorf("args\n  %q\nwant the base's and --metrics-secure\n  %q", args, want)
	}

	// Everything but the Deployment and the Service is the base's.
	only := func(r rendered, keep func(objectKey) bool) rendered {
		out := rendered{source: r.source, objects: map[objectKey]renderedObject{}}
		for k, o := range r.objects {
			if keep(k) {
				out.objects[k] = o
			}
		}
		return out
	}
	inBase := func(k objectKey) bool {
		_, ok := base.objects[k]
		return ok && k.Kind != "Deployment" && k.Kind != "Service"
	}
	assertSameObjects(t, only(base, inBase), only(withComponent, inBase))

	t.Run("chart with metrics.secure", func(t *testing.T) {
		assertSameObjects(t, withComponent, renderChart(t, "metrics.secure=true"), "Namespace")
	})
	t.Run("chart with metrics.secure and iamSnapshot", func(t *testing.T) {
		// The component after iam-snapshot, as flags and mounts come in the chart.
		both := renderWithComponents(t, "iam-snapshot", "secure-metrics")
		assertSameObjects(t, both, renderChart(t, "metrics.secure=true", "iamSnapshot.configMap=nodeclass-guard-iam-snapshot"), "Namespace")
	})
	t.Run("chart with metrics.secure, another release and service account", func(t *testing.T) {
		r := renderChartAs(t, "guard", "security", "metrics.secure=true", "serviceAccount.create=false", "serviceAccount.name=guard-sa")
		decodeAllStrict(t, r)
		checkSecureMetrics(t, r, "guard-nodeclass-guard", "security")
	})
	t.Run("chart defaults", func(t *testing.T) {
		r := renderChart(t)
		for _, k := range r.keys() {
			if strings.Contains(k.Name, "metrics") {
				t.Errorf("without metrics.secure the chart renders %s", k)
			}
		}
		if slices.Contains(argsOf(t, r, defaultName, defaultNamespace), "--metrics-secure") {
			t.Errorf("without metrics.secure the chart passes --metrics-secure")
		}
	})
}

// serviceMonitorEndpoint returns the one endpoint of the chart's
// ServiceMonitor.
func serviceMonitorEndpoint(t *testing.T, r rendered) map[string]any {
	t.Helper()
	sm := r.get(t, "ServiceMonitor", defaultNamespace, defaultName)
	spec, _ := sm.fields["spec"].(map[string]any)
	endpoints, _ := spec["endpoints"].([]any)
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, want one", endpoints)
	}
	ep, _ := endpoints[0].(map[string]any)
	return ep
}

// TestSecureMetricsServiceMonitor checks the chart's ServiceMonitor with
// metrics.secure: HTTPS to the renamed port, Prometheus's own token, and the
// metrics certificate verified against the serving certificate's CA under
// a name the certificate holds.
func TestSecureMetricsServiceMonitor(t *testing.T) {
	r := renderChart(t, "metrics.secure=true", "metrics.serviceMonitor.enabled=true")
	ep := serviceMonitorEndpoint(t, r)
	if ep["port"] != metricsPortSecure || ep["scheme"] != "https" || ep["path"] != "/metrics" {
		t.Errorf("endpoint port %v scheme %v path %v, want %s, https, /metrics", ep["port"], ep["scheme"], ep["path"], metricsPortSecure)
	}
	if got := ep["bearerTokenFile"]; got != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Errorf("endpoint bearerTokenFile %v, want Prometheus's service account token", got)
	}
	serving := decodeStrict[cmv1.Certificate](t, r.get(t, "Certificate", defaultNamespace, defaultName+"-serving"))
	wantTLS := map[string]any{
		"ca":         map[string]any{"secret": map[string]any{"name": serving.Spec.SecretName, "key": "ca.crt"}},
		"serverName": defaultName + "." + defaultNamespace + ".svc",
	}
	if got := ep["tlsConfig"]; !reflect.DeepEqual(got, wantTLS) {
		t.Errorf("endpoint tlsConfig %v, want %v", got, wantTLS)
	}
	if !slices.Contains(serving.Spec.DNSNames, wantTLS["serverName"].(string)) {
		t.Errorf("the serving certificate's dnsNames %v lack the ServiceMonitor's serverName %v", serving.Spec.DNSNames, wantTLS["serverName"])
	}

	t.Run("own tlsConfig", func(t *testing.T) {
		r := renderChart(t, "metrics.secure=true", "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true")
		if got, want := serviceMonitorEndpoint(t, r)["tlsConfig"], map[string]any{"insecureSkipVerify": true}; !reflect.DeepEqual(got, want) {
			t.Errorf("endpoint tlsConfig %v, want %v", got, want)
		}
	})
	t.Run("plain HTTP without metrics.secure", func(t *testing.T) {
		ep := serviceMonitorEndpoint(t, renderChart(t, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true"))
		for _, field := range []string{"scheme", "bearerTokenFile", "tlsConfig"} {
			if v, ok := ep[field]; ok {
				t.Errorf("endpoint sets %s: %v", field, v)
			}
		}
	})
}

// TestMetricsCertDirIsControllerRuntimes holds the component's mount of the
// serving certificate to where controller-runtime's metrics server, set up
// as serve sets it up with --metrics-secure (SecureServing, no certificate
// directory of its own), reads its certificate: <TMPDIR>/<the path after
// /tmp/>, TMPDIR being unset in the image. If the two part, metrics fall
// back to a self-signed certificate and every verified scrape fails.
func TestMetricsCertDirIsControllerRuntimes(t *testing.T) {
	mountPath := checkSecureMetrics(t, renderWithComponents(t, "secure-metrics"), defaultName, defaultNamespace)
	rest, ok := strings.CutPrefix(mountPath, "/tmp/")
	if !ok {
		t.Fatalf("the metrics certificate is mounted at %s, outside /tmp, the image's temporary directory", mountPath)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	serverName := defaultName + "." + defaultNamespace + ".svc"
	certPEM := writeCertificate(t, filepath.Join(tmp, rest), serverName)

	crlog.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	addr := freeAddress(t)
	srv, err := metricsserver.NewServer(metricsserver.Options{BindAddress: addr, SecureServing: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	var conn *tls.Conn
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12})
		var opErr *net.OpError
		if err == nil || !errors.As(err, &opErr) || opErr.Op != "dial" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TLS to the metrics server, trusting only the certificate in %s: %v (it serves another certificate)", filepath.Join("$TMPDIR", rest), err)
	}
	conn.Close()
}

// writeCertificate writes a self-signed certificate for dnsName, and its
// key, as tls.crt and tls.key into dir, and returns the certificate's PEM.
func writeCertificate(t *testing.T, dir, dnsName string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: dnsName},
		DNSNames:              []string{dnsName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"tls.crt": certPEM,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPEM
}

// freeAddress returns a loopback address with a port free a moment ago.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
