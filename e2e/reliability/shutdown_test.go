package reliability_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// TestGracefulShutdownUnderLoad sends SIGTERM to serve while admissions
// are in flight (IAM answers slowly, so they are) and checks what the
// issue asks of a shutdown:
//
//   - every in-flight admission gets its real verdict: the same as with no
//     shutdown, not an IAMUnavailable caused by the shutdown itself;
//   - new connections are refused while those finish;
//   - idle keep-alive connections are closed while those finish;
//   - the process exits by itself (no SIGKILL) and the port is closed.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	const (
		inFlight   = 8
		iamLatency = 2 * time.Second
	)
	ctx := testContext(t)
	e, err := framework.Start(ctx, framework.Options{
		// Slow IAM, yet answering within --iam-timeout: one SDK attempt may
		// take --iam-timeout*8/30 (see authz.NewIAMClient), so 5x the latency.
		IAMTimeout: 5 * iamLatency,
		// Each new class costs about 14 calls (Karpenter's instance-profile
		// and launch requests, one per context): 8 at once exceed the
		// default budget's share for new questions, and this test is about
		// the shutdown, not the budget (attacks_test.go is).
		ServeArgs: []string{"--iam-call-burst=1000"},
		// The account in an organization (AWS's default SCP) from serve's
		// first read of the controller role's policies (which it keeps for
		// --iam-cache-ttl): the policies are evaluated in serve, but what
		// the SCPs say is asked of IAM for each new class, so that every
		// admission below has IAM calls in flight at the SIGTERM.
		IAMOptions: []iamserver.Option{iamserver.WithOrganization()},
		Logf:       t.Logf,
	})
	var missing *framework.MissingAssetsError
	switch {
	case errors.As(err, &missing) && !framework.Required():
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			e.Stop()
		}
	})
	host := mustHost(t, e.WebhookURL)

	// An idle keep-alive connection: one request answered, then nothing.
	idle := idleConnection(t, host, e.CA.CertPEM())

	e.IAM.SetLatency(iamLatency)
	e.IAM.ResetCalls()
	type result struct {
		name string
		a    answer
		err  error
	}
	results := make(chan result, inFlight)
	for i := range inFlight {
		// Half from a client offering HTTP/2 (serve answers in HTTP/1.1:
		// it never negotiates HTTP/2), half from one offering HTTP/1.1
		// only; each class is new, so each admission asks IAM.
		hc := webhookClient(true, e.CA.CertPEM())
		if i%2 == 1 {
			hc.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			hc.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		obj := ec2NodeClass(fmt.Sprintf("in-flight-%d", i), "KarpenterNodeRole-demo", "")
		go func() {
			a, err := post(ctx, hc, e.WebhookURL+obj.kind.path, reviewBody(obj))
			results <- result{obj.name, a, err}
		}()
	}
	// Every admission in serve's hands (controller-runtime's in-flight
	// gauge) while IAM, which each asks what the SCPs say of its requests,
	// holds its calls: the concurrent admissions' questions may share
	// calls, so the calls are no count of the admissions.
	inFlightSeries := `controller_runtime_webhook_requests_in_flight{webhook="` + webhook.EC2NodeClassPath + `"}`
	waitFor(t, 30*time.Second, "every admission in flight, waiting on IAM", func() bool {
		return metricValue(t, e, inFlightSeries) >= inFlight && e.IAM.Calls("SimulatePrincipalPolicy") >= 1
	})

	t.Log("SIGTERM")
	stopErr := make(chan error, 1)
	go func() { stopErr <- e.Stop() }()
	stopped = true

	// While the admissions are in flight (IAM holds them for iamLatency),
	// the listener closes and so does the idle connection.
	refused := make(chan time.Time, 1)
	go func() {
		for {
			c, err := net.DialTimeout("tcp", host, time.Second)
			if err != nil {
				refused <- time.Now()
				return
			}
			c.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	idleClosed := make(chan time.Time, 1)
	go func() {
		idle.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := idle.Read(make([]byte, 1))
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			idleClosed <- time.Now()
		}
		close(idleClosed)
	}()

	var firstAnswer time.Time
	for range inFlight {
		r := <-results
		if firstAnswer.IsZero() {
			firstAnswer = time.Now()
		}
		switch {
		case r.err != nil:
			t.Errorf("%s: in flight at SIGTERM, got no answer: %v", r.name, r.err)
		case r.a.response == nil:
			t.Errorf("%s: in flight at SIGTERM: %s", r.name, r.a)
		case !r.a.allowed() || r.a.codes()[string(rules.IAMUnavailable)] || r.a.codes()[string(rules.IAMStale)]:
			t.Errorf("%s: in flight at SIGTERM, got %s; want the verdict IAM gives (allowed, without IAMUnavailable/IAMStale)", r.name, r.a)
		}
	}

	select {
	case at := <-refused:
		if at.After(firstAnswer) {
			t.Errorf("new connections were still accepted until the in-flight admissions were answered")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("new connections still accepted 30s after SIGTERM")
	}
	if at, ok := <-idleClosed; !ok {
		t.Errorf("the idle keep-alive connection was not closed")
	} else if at.After(firstAnswer) {
		t.Errorf("the idle keep-alive connection stayed open until the in-flight admissions were answered")
	}

	if err := <-stopErr; err != nil {
		t.Errorf("stopping: %v", err)
	}
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Errorf("the webhook port %s still accepts connections after serve exited", host)
	}
	if t.Failed() {
		t.Logf("serve's log:\n%s", tail(e.ServeLog(), 40))
	}
}

// idleConnection opens an HTTP/1.1 keep-alive connection to the webhook,
// completes one admission over it and returns it idle.
func idleConnection(t *testing.T, host string, caPEM []byte) *tls.Conn {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := reviewBody(ec2NodeClass("keep-alive", "KarpenterNodeRole-demo", ""))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		webhook.EC2NodeClassPath, host, len(body), body)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("admission over a keep-alive connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("admission over a keep-alive connection: HTTP %d, close=%v", resp.StatusCode, resp.Close)
	}
	conn.SetReadDeadline(time.Time{})
	return conn
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func mustHost(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
