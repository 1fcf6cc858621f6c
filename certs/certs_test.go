package certs_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/certs"
)

func mustCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA("nodeclass-guard test CA", time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func parseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(p)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", p)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("trailing data after the certificate: %q", rest)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

func TestNewCAIsASelfSignedCA(t *testing.T) {
	ca := mustCA(t)
	c := parseCert(t, ca.CertPEM())
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Fatalf("CA certificate: IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate lacks the cert-sign key usage: %v", c.KeyUsage)
	}
	if c.Subject.CommonName != "nodeclass-guard test CA" {
		t.Errorf("CA common name = %q", c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < 59*time.Minute || got > 61*time.Minute {
		t.Errorf("CA validity = %s, want about 1h", got)
	}
}

func TestNewCARejectsBadInput(t *testing.T) {
	if _, err := certs.NewCA("", time.Hour); err == nil {
		t.Error("NewCA with no common name: want an error")
	}
	if _, err := certs.NewCA("x", 0); err == nil {
		t.Error("NewCA with zero validity: want an error")
	}
}

func TestIssueChainsToCAWithSANsAndMatchingKey(t *testing.T) {
	ca := mustCA(t)
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	dns := []string{"localhost", "nodeclass-guard.kube-system.svc"}
	certPEM, keyPEM, err := ca.Issue(dns, ips, 30*time.Minute)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	leaf := parseCert(t, certPEM)

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CA PEM not accepted by a cert pool")
	}
	for _, name := range []string{"localhost", "nodeclass-guard.kube-system.svc", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %q: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "evil.example.com"}); err == nil {
		t.Error("certificate verified for a name it does not carry")
	}
	if leaf.IsCA {
		t.Error("serving certificate is a CA")
	}
	if got, want := leaf.DNSNames, dns; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("DNS SANs = %v, want %v", got, want)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(ips[0]) || !leaf.IPAddresses[1].Equal(ips[1]) {
		t.Errorf("IP SANs = %v, want %v", leaf.IPAddresses, ips)
	}
	if leaf.NotAfter.After(ca.Certificate().NotAfter) {
		t.Errorf("serving certificate outlives its CA: %s > %s", leaf.NotAfter, ca.Certificate().NotAfter)
	}

	// The key matches the certificate: tls.X509KeyPair checks exactly that.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key do not form a pair: %v", err)
	}
	_, otherKey, err := ca.Issue([]string{"localhost"}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, otherKey); err == nil {
		t.Error("certificate paired with another certificate's key")
	}
}

func TestIssueNeverOutlivesCA(t *testing.T) {
	ca, err := certs.NewCA("short CA", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.Issue([]string{"localhost"}, nil, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parseCert(t, certPEM); leaf.NotAfter.After(ca.Certificate().NotAfter) {
		t.Errorf("serving certificate outlives its CA: %s > %s", leaf.NotAfter, ca.Certificate().NotAfter)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	ca := mustCA(t)
	if _, _, err := ca.Issue(nil, nil, time.Hour); err == nil {
		t.Error("Issue with no names: want an error")
	}
	if _, _, err := ca.Issue([]string{"localhost"}, nil, -time.Second); err == nil {
		t.Error("Issue with negative validity: want an error")
	}
}

func TestWriteServingPair(t *testing.T) {
	ca := mustCA(t)
	certPEM, keyPEM, err := ca.Issue([]string{"localhost"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "nested", "certs")
	if err := certs.WriteServingPair(dir, certPEM, keyPEM); err != nil {
		t.Fatalf("WriteServingPair: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CertFile), filepath.Join(dir, certs.KeyFile)); err != nil {
		t.Fatalf("written pair does not load: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, certs.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("key file mode %v is readable by others", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only tls.crt and tls.key (no temporary files left)", names)
	}
	if err := certs.WriteServingPair(dir, nil, keyPEM); err == nil {
		t.Error("WriteServingPair with an empty certificate: want an error")
	}
}

// TestWriteServingPairIsAtomic rewrites the pair over and over while readers
// load it: a reader must only ever see a whole certificate, never a
// truncated one.
func TestWriteServingPairIsAtomic(t *testing.T) {
	ca := mustCA(t)
	dir := t.TempDir()
	certA, keyA, err := ca.Issue([]string{"a.example"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certB, keyB, err := ca.Issue([]string{"b.example"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteServingPair(dir, certA, keyA); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var torn atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b, err := os.ReadFile(filepath.Join(dir, certs.CertFile))
				if err != nil {
					torn.Add(1)
					continue
				}
				if !bytes.Equal(b, certA) && !bytes.Equal(b, certB) {
					torn.Add(1)
				}
			}
		}()
	}
	for i := range 200 {
		c, k := certA, keyA
		if i%2 == 1 {
			c, k = certB, keyB
		}
		if err := certs.WriteServingPair(dir, c, k); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := torn.Load(); n != 0 {
		t.Fatalf("readers saw %d partial or missing certificate files", n)
	}
}
