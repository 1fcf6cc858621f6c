package reliability_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/certs"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// TestCertificateRotationUnderLoad replaces serve's tls.crt and tls.key on
// disk with a pair from another CA while clients keep sending admissions
// (some over kept-alive connections, some with a handshake per request),
// then puts a pair from the original CA back. The clients trust both CAs,
// as a caBundle does during a CA rollover. Checked: not one request fails,
// and after each replacement new connections are served the new
// certificate (they verify against the new CA alone, and not the old one).
func TestCertificateRotationUnderLoad(t *testing.T) {
	e := serveEnv.Get(t)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()

	newCA, err := certs.NewCA("nodeclass-guard rotation CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oldCA := e.CA

	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	obj := ec2NodeClass("rotation", "KarpenterNodeRole-demo", "")
	var wg sync.WaitGroup
	for i := range 4 {
		hc := webhookClient(i%2 == 0, oldCA.CertPEM(), newCA.CertPEM())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				a, err := post(ctx, hc, e.WebhookURL+obj.kind.path, reviewBody(obj))
				if ctx.Err() != nil {
					return
				}
				if err == nil && a.response != nil && a.allowed() {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				failMu.Lock()
				if len(failures) < 10 {
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						failures = append(failures, a.String())
					}
				}
				failMu.Unlock()
			}
		}()
	}
	// Let the load run, then rotate twice under it.
	waitFor(t, 30*time.Second, "the load to get going", func() bool { return ok.Load() >= 20 })
	rotate(t, e, newCA, oldCA, "the rotation CA")
	before := ok.Load()
	waitFor(t, 30*time.Second, "admissions after the first rotation", func() bool { return ok.Load() >= before+20 })
	rotate(t, e, oldCA, newCA, "the original CA")
	before = ok.Load()
	waitFor(t, 30*time.Second, "admissions after the second rotation", func() bool { return ok.Load() >= before+20 })
	cancel()
	wg.Wait()

	t.Logf("%d admissions answered across two rotations, %d failed", ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d admissions failed during certificate rotation; first ones:\n%v", failed.Load(), failures)
	}
}

// rotate writes a serving pair from ca into serve's certificate folder and
// waits until new connections are served it.
func rotate(t *testing.T, e *framework.Env, ca, previous *certs.CA, what string) {
	t.Helper()
	crt, key, err := ca.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteServingPair(e.CertDir, crt, key); err != nil {
		t.Fatal(err)
	}
	host := mustHost(t, e.WebhookURL)
	// controller-runtime's certwatcher reacts to the file events, and polls
	// every 10s besides.
	waitFor(t, 45*time.Second, "new connections to get the certificate from "+what, func() bool {
		return handshake(host, ca) == nil
	})
	if err := handshake(host, previous); err == nil {
		t.Errorf("after rotating to %s, a new connection still verifies against the previous CA", what)
	}
}

// handshake dials host trusting only ca.
func handshake(host string, ca *certs.CA) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", host,
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	defer conn.Close()
	if len(conn.ConnectionState().PeerCertificates) == 0 {
		return fmt.Errorf("no peer certificate")
	}
	return nil
}
