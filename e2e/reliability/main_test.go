package reliability_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// serveEnv runs `nodeclass-guard serve` in the live mode with the local IAM
// endpoint, --metrics-secure, the most verbose logging and a short cache
// TTL, for the TLS, metrics, log, rotation and slow-IAM tests. snapshotEnv runs it on the snapshot
// file, for the log test (the snapshot holds every policy document). The
// shutdown test starts and stops its own.
var (
	serveEnv = &framework.Shared{Options: framework.Options{
		IAMTimeout: serveIAMTimeout,
		ServeArgs:  []string{"--metrics-secure", "--zap-log-level=10", "--iam-cache-ttl=" + serveCacheTTL.String()},
	}}
	snapshotEnv = &framework.Shared{Options: framework.Options{
		IAM:       framework.IAMSnapshotFile,
		ServeArgs: []string{"--zap-log-level=10"},
	}}
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunMain(m, serveEnv, snapshotEnv, attackEnv))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// webhookClient is an HTTPS client of serve's webhook port trusting the
// given CA certificates (PEM).
func webhookClient(keepAlive bool, caPEMs ...[]byte) *http.Client {
	roots := x509.NewCertPool()
	for _, pem := range caPEMs {
		roots.AppendCertsFromPEM(pem)
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: !keepAlive,
			ForceAttemptHTTP2: true,
		},
	}
}
