package envtest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/certs"
)

// TestServingCertificateReload rotates serve's certificate on disk, as
// cert-manager does when it renews the Secret: serve picks the new one up
// without a restart, and the API server keeps reaching the webhook. It
// also checks the TLS floor (1.2).
func TestServingCertificateReload(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)

	u, err := url.Parse(e.WebhookURL)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.CA.CertPEM())
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host,
			&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS handshake with the webhook: %v", err)
		}
		defer conn.Close()
		if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("TLS version %x, want at least 1.2", v)
		}
		return conn.ConnectionState().PeerCertificates[0]
	}
	before := served()

	// The contract's TLS floor: a client offering at most TLS 1.1 is refused.
	if conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host,
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("serve accepted a TLS 1.1 handshake; the contract's minimum is TLS 1.2")
	}

	crt, key, err := e.CA.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crt)
	want, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if want.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("the new certificate has the old serial number")
	}
	if err := certs.WriteServingPair(e.CertDir, crt, key); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		got := served()
		if got.SerialNumber.Cmp(want.SerialNumber) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve still presents serial %s 30s after the rotation, want %s", got.SerialNumber, want.SerialNumber)
		}
		time.Sleep(200 * time.Millisecond)
	}

	o := ec2NodeClass("after-rotation", role("arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"))
	_, err = create(ctx, c, o, client.DryRunAll)
	requireDenied(t, e, groupEC2NodeClass, err, "spec.role: RoleIsARN")
}
