package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/bench"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// The attacks below are those of issue 11, made by a client that reaches
// the webhook port with no credentials, against the real serve binary as
// deploy/ runs it: a 128Mi container (--memory-limit-mib=128) and the
// default bounds, except a shorter --request-read-timeout so that the
// slow-client tests end sooner. Each test reports what the attack cost
// serve (peak RSS, CPU, IAM calls) and checks the bound.
const (
	containerLimit     = 128 << 20 // deploy/'s memory limit
	attackReadTimeout  = 3 * time.Second
	attackCallRate     = 10 // serve's defaults
	attackCallBurst    = 100
	attackMaxConns     = webhook.DefaultMaxConnections
	attackBodyNearCap  = webhook.DefaultMaxBodyBytes - 4<<10
	controllerRuntimes = 7339008 // controller-runtime's body limit, what the attacker declared
)

var attackEnv = &framework.Shared{Options: framework.Options{
	ServeArgs: []string{
		"--memory-limit-mib=128",
		"--request-read-timeout=" + attackReadTimeout.String(),
		"--iam-call-rate=" + strconv.Itoa(attackCallRate),
		"--iam-call-burst=" + strconv.Itoa(attackCallBurst),
	},
}}

// usage follows what an attack costs serve: RSS sampled every 20 ms (its
// peak), CPU time and IAM calls between start and stop.
type usage struct {
	pid      int
	iam      *iamserver.Server
	cpu0     time.Duration
	calls0   int
	start    time.Time
	done     chan struct{}
	finished chan struct{}
	peak     atomic.Int64
	peakAnon atomic.Int64
	base     int64
}

func watch(t *testing.T, e *framework.Env) *usage {
	t.Helper()
	pid := e.ServePID()
	if pid == 0 {
		t.Fatal("no serve process")
	}
	u := &usage{pid: pid, iam: e.IAM, start: time.Now(), done: make(chan struct{}), finished: make(chan struct{})}
	runtime.GC()
	m, err := bench.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	u.base = m.RSS
	u.peak.Store(m.RSS)
	u.peakAnon.Store(m.Anon)
	u.cpu0, _ = bench.CPUTime(pid)
	if e.IAM != nil {
		u.calls0 = e.IAM.TotalCalls()
	}
	go func() {
		defer close(u.finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-u.done:
				return
			case <-tick.C:
				if m, err := bench.ReadMemory(pid); err == nil {
					if m.RSS > u.peak.Load() {
						u.peak.Store(m.RSS)
					}
					if m.Anon > u.peakAnon.Load() {
						u.peakAnon.Store(m.Anon)
					}
				}
			}
		}
	}()
	return u
}

// cost is what an attack cost serve.
type cost struct {
	baseRSS, peakRSS int64
	peakAnon         int64
	cpu              time.Duration
	iamCalls         int
	elapsed          time.Duration
}

func (c cost) String() string {
	return fmt.Sprintf("RSS %.1f -> peak %.1f MiB (anonymous at most %.1f), CPU %v, IAM calls %d, in %v",
		float64(c.baseRSS)/(1<<20), float64(c.peakRSS)/(1<<20), float64(c.peakAnon)/(1<<20), c.cpu.Round(10*time.Millisecond), c.iamCalls, c.elapsed.Round(10*time.Millisecond))
}

func (u *usage) stop() cost {
	close(u.done)
	<-u.finished
	c := cost{baseRSS: u.base, peakRSS: u.peak.Load(), peakAnon: u.peakAnon.Load(), elapsed: time.Since(u.start)}
	if cpu, err := bench.CPUTime(u.pid); err == nil {
		c.cpu = cpu - u.cpu0
	}
	if u.iam != nil {
		c.iamCalls = u.iam.TotalCalls() - u.calls0
	}
	return c
}

// codeWorkingSet is how much of the binary's mapped pages serve uses
// while it admits (docs/benchmarks.md, Memory: 9.7 to 13.0 MiB measured
// by clearing the pages' referenced bits under load), rounded up.
const codeWorkingSet = 16 << 20

// checkRSS fails when the attack took serve's memory over the container's
// limit (an OOM kill in a pod, and then every admission unchecked). What
// the kernel cannot reclaim is the anonymous memory (heap, stacks) and the
// binary's pages in use; the rest of the file-backed RSS is clean pages of
// the binary, which the kernel drops under the limit before it kills.
func checkRSS(t *testing.T, c cost) {
	t.Helper()
	t.Logf("cost: %s", c)
	if c.peakAnon+codeWorkingSet >= containerLimit {
		t.Errorf("serve's anonymous memory peaked at %.1f MiB: with the %d MiB of its binary in use, over the container's %d MiB limit: the pod would be OOM-killed",
			float64(c.peakAnon)/(1<<20), codeWorkingSet>>20, containerLimit>>20)
	}
}

// tlsConfig trusts serve's CA.
func tlsConfig(e *framework.Env) *tls.Config {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.CA.CertPEM())
	return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// stillServes checks that serve answers an ordinary admission.
func stillServes(t *testing.T, e *framework.Env) {
	t.Helper()
	hc := webhookClient(false, e.CA.CertPEM())
	obj := ec2NodeClass(fmt.Sprintf("after-attack-%d", time.Now().UnixNano()), "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "")
	var a answer
	waitFor(t, 30*time.Second, "serve to answer an ordinary admission after the attack", func() bool {
		var err error
		a, err = post(context.Background(), hc, e.WebhookURL+obj.kind.path, reviewBody(obj))
		return err == nil && a.response != nil
	})
	if a.allowed() || !a.codes()[string(rules.RoleIsARN)] {
		t.Errorf("ordinary admission after the attack: %s, want the usual [RoleIsARN] denial", a)
	}
}

// paddedReview is an EC2NodeClass creation of about size bytes.
func paddedReview(name string, size int) []byte {
	base := createReview(ec2NodeClassV1, name, rawObject(ec2NodeClassV1, name, `{"role":"KarpenterNodeRole-demo","pad":""}`))
	return createReview(ec2NodeClassV1, name, rawObject(ec2NodeClassV1, name,
		`{"role":"KarpenterNodeRole-demo","pad":"`+strings.Repeat("p", max(0, size-len(base)))+`"}`))
}

// rawRequest writes an HTTP/1.1 POST with the given Content-Length on a
// new TLS connection, then body through send, and returns the answer's
// status (0 when the connection ended without one) and when it came.
func rawRequest(ctx context.Context, e *framework.Env, contentLength int, send func(w io.Writer) error) (status int, err error) {
	d := &tls.Dialer{Config: tlsConfig(e), NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	conn, err := d.DialContext(ctx, "tcp", mustHostNoT(e.WebhookURL))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", webhook.EC2NodeClassPath, contentLength)
	if _, err := io.WriteString(conn, head); err != nil {
		return 0, err
	}
	sendErr := make(chan error, 1)
	go func() { sendErr <- send(conn) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

func mustHostNoT(rawURL string) string { return strings.TrimPrefix(rawURL, "https://") }

// TestAttackLargeBodies: 50 connections send the 7 MiB controller-runtime
// would read, then 50 send bodies just under serve's limit, all at once and
// holding their connections. serve answers the first 413 unread, reads
// only as many of the second as its in-flight bounds allow (429 for the
// rest), and its RSS stays under the container's limit; afterwards it
// serves as usual.
func TestAttackLargeBodies(t *testing.T) {
	e := attackEnv.Get(t)
	ctx := testContext(t)
	if !strings.Contains(e.ServeLog(), "softLimitBytes") {
		t.Errorf("serve did not log setting the Go soft memory limit from --memory-limit-mib")
	}
	for _, tc := range []struct {
		name          string
		contentLength int
		body          []byte
	}{
		{"declared 7 MiB", controllerRuntimes, bytes.Repeat([]byte("p"), controllerRuntimes)},
		{"just under the limit", attackBodyNearCap, paddedReview("near-limit", attackBodyNearCap)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := watch(t, e)
			var wg sync.WaitGroup
			statuses := make([]int, 50)
			errs := make([]error, 50)
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses[i], errs[i] = rawRequest(ctx, e, len(tc.body), func(w io.Writer) error {
						_, err := w.Write(tc.body)
						return err
					})
				}()
			}
			wg.Wait()
			c := u.stop()
			checkRSS(t, c)
			count := map[int]int{}
			for i, s := range statuses {
				count[s]++
				if s == 0 && !isReset(errs[i]) && !errors.Is(errs[i], io.EOF) {
					t.Logf("connection %d: %v", i, errs[i])
				}
			}
			t.Logf("answers by HTTP status (0: connection closed): %v", count)
			if count[0] == 50 {
				t.Errorf("no request was answered")
			}
			if tc.contentLength > webhook.DefaultMaxBodyBytes && count[http.StatusOK] != 50-count[0] {
				// 413 travels inside an AdmissionReview, with HTTP 200.
				t.Errorf("bodies over the limit: answers %v, want every answer an AdmissionReview (413 inside)", count)
			}
			stillServes(t, e)
		})
	}
}

// TestAttackSlowBodies: 50 connections send a body at 2 bytes a second.
// serve gives each --request-read-timeout for the whole request and then
// ends it, instead of holding it open without bound.
func TestAttackSlowBodies(t *testing.T) {
	e := attackEnv.Get(t)
	ctx := testContext(t)
	u := watch(t, e)
	var wg sync.WaitGroup
	var longest atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, _ = rawRequest(ctx, e, 1000, func(w io.Writer) error {
				for range 1000 {
					if _, err := w.Write([]byte{'{'}); err != nil {
						return err
					}
					time.Sleep(500 * time.Millisecond)
				}
				return nil
			})
			if d := time.Since(start); int64(d) > longest.Load() {
				longest.Store(int64(d))
			}
		}()
	}
	wg.Wait()
	c := u.stop()
	checkRSS(t, c)
	bound := attackReadTimeout + 2*time.Second
	t.Logf("the longest slow request was ended after %v (--request-read-timeout %v)", time.Duration(longest.Load()).Round(10*time.Millisecond), attackReadTimeout)
	if time.Duration(longest.Load()) > bound {
		t.Errorf("a slow request stayed open %v, past --request-read-timeout (%v) + 2s", time.Duration(longest.Load()), attackReadTimeout)
	}
	stillServes(t, e)
}

// TestAttackIdleConnections: 1,000 TLS connections opened and left idle.
// serve keeps at most --max-connections of them (closing the rest as soon
// as they are accepted), closes the ones it kept once
// --request-read-timeout passes without a request, and its RSS stays
// under the container's limit.
func TestAttackIdleConnections(t *testing.T) {
	e := attackEnv.Get(t)
	const n = 1000
	u := watch(t, e)
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 50)
	)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := &tls.Dialer{Config: tlsConfig(e), NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", mustHostNoT(e.WebhookURL))
			if err != nil {
				return // refused: closed at accept
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	// A kept connection is closed by serve after the read timeout; one
	// closed at accept may still have completed its handshake from the
	// client's view: count what is open a moment later.
	time.Sleep(200 * time.Millisecond)
	stillOpen := func() int {
		var wg sync.WaitGroup
		var open atomic.Int64
		for _, c := range held {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						open.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return int(open.Load())
	}
	kept := stillOpen()
	c := u.stop()
	checkRSS(t, c)
	t.Logf("%d connections attempted, %d completed a handshake, %d still open", n, len(held), kept)
	if kept > attackMaxConns {
		t.Errorf("%d idle connections open, over --max-connections (%d)", kept, attackMaxConns)
	}
	waitFor(t, attackReadTimeout+3*time.Second, "serve to close the idle connections", func() bool { return stillOpen() == 0 })
	stillServes(t, e)
}

// TestNoHTTP2: the webhook port and the metrics port (HTTPS with
// --metrics-secure) negotiate HTTP/1.1 with a client offering h2 first:
// no HTTP/2, and so no rapid-reset stream flood, on any of serve's ports.
func TestNoHTTP2(t *testing.T) {
	for name, env := range map[string]*framework.Shared{"attack env": attackEnv, "secure metrics env": serveEnv} {
		e := env.Get(t)
		ports := map[string]*tls.Config{"webhook " + name: tlsConfig(e)}
		if env == serveEnv {
			ports["metrics "+name] = &tls.Config{InsecureSkipVerify: true}
		}
		for port, cfg := range ports {
			host := mustHostNoT(e.WebhookURL)
			if strings.HasPrefix(port, "metrics") {
				host = mustHost(t, e.MetricsURL)
			}
			cfg = cfg.Clone()
			cfg.NextProtos = []string{"h2", "http/1.1"}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", host, cfg)
			if err != nil {
				t.Errorf("%s port: %v", port, err)
				continue
			}
			if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
				t.Errorf("%s port negotiated %q, want http/1.1", port, p)
			}
			conn.Close()
		}
	}
}

// TestAttackCacheFloodAndIAMBudget: a class is admitted, then 4,200
// admissions name roles that do not exist (each a new class name, so every
// question is new), then IAM goes down. The flood makes no more IAM calls
// than the budget allows (--iam-call-rate, --iam-call-burst), each of its
// admissions is answered within --iam-timeout, and the class admitted
// before keeps its verdict through the outage: nothing the flood cached
// evicted its answers.
func TestAttackCacheFloodAndIAMBudget(t *testing.T) {
	e := attackEnv.Get(t)
	hc := webhookClient(true, e.CA.CertPEM())
	run := time.Now().UnixNano()
	good := ec2NodeClass(fmt.Sprintf("flood-good-%d", run), "KarpenterNodeRole-demo", "")
	healthy := admit(t, hc, e.WebhookURL, good)
	if !healthy.allowed() || healthy.codes()[string(rules.IAMUnavailable)] {
		t.Fatalf("the good class, IAM healthy: %s", healthy)
	}

	u := watch(t, e)
	const flood, workers = 4200, 16
	var (
		next          atomic.Int64
		slowest       atomic.Int64
		refused       atomic.Int64
		notFound      atomic.Int64
		after300      atomic.Int64
		at300         atomic.Int64
		wg            sync.WaitGroup
		failOnce      sync.Once
		floodFail     string
		budgetRefused atomic.Int64
		otherOnce     sync.Once
		otherMsg      string
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			whc := webhookClient(true, e.CA.CertPEM())
			for {
				i := next.Add(1)
				if i > flood {
					return
				}
				obj := ec2NodeClass(fmt.Sprintf("flood-%d-%d", run, i), fmt.Sprintf("NoSuchRole-%d-%d", run, i), "")
				a, err := post(context.Background(), whc, e.WebhookURL+obj.kind.path, reviewBody(obj))
				if err != nil || a.response == nil {
					failOnce.Do(func() { floodFail = fmt.Sprintf("flood admission %d: %v %s", i, err, a) })
					return
				}
				if int64(a.elapsed) > slowest.Load() {
					slowest.Store(int64(a.elapsed))
				}
				switch {
				case a.codes()[string(rules.IAMUnavailable)]:
					refused.Add(1)
					if strings.Contains(a.message(), authz.ErrBudgetSpent.Error()) {
						budgetRefused.Add(1)
					} else {
						// The admission's deadline ended while its call
						// waited (for the budget, or IAM): "could not
						// check", not a refusal by the budget.
						otherOnce.Do(func() { otherMsg = a.message() })
					}
				case a.codes()[string(rules.RoleNotFound)]:
					notFound.Add(1)
				}
				if i == 300 {
					after300.Store(int64(e.IAM.TotalCalls() - u.calls0))
					at300.Store(int64(time.Since(u.start)))
				}
			}
		}()
	}
	wg.Wait()
	c := u.stop()
	t.Logf("flood of %d: %d RoleNotFound, %d IAMUnavailable; slowest answer %v; %d IAM calls after 300 admissions (%v)",
		flood, notFound.Load(), refused.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), after300.Load(), time.Duration(at300.Load()).Round(time.Millisecond))
	checkRSS(t, c)
	if floodFail != "" {
		t.Fatal(floodFail)
	}
	// The bucket starts at most full and refills at the rate; the good
	// class's admission took a few of its calls. One call of slack for a
	// page or a principal resolution.
	allowed := func(d time.Duration) int { return attackCallBurst + int(attackCallRate*d.Seconds()) + 1 }
	if got, max := int(after300.Load()), allowed(time.Duration(at300.Load())); got > max {
		t.Errorf("300 junk admissions made %d IAM calls, over the budget's %d", got, max)
	}
	if c.iamCalls > allowed(c.elapsed) {
		t.Errorf("%d junk admissions made %d IAM calls in %v, over the budget's %d", flood, c.iamCalls, c.elapsed, allowed(c.elapsed))
	}
	if budgetRefused.Load() == 0 {
		t.Errorf("no flood admission was refused by the budget: the test did not spend it")
	}
	if bound := 2*time.Second + 500*time.Millisecond; time.Duration(slowest.Load()) > bound {
		t.Errorf("slowest flood answer %v, past --iam-timeout + 500ms: questions queued without bound", time.Duration(slowest.Load()))
	}
	// Each admission the budget refused (its message says so) is one
	// refusal at least; an admission whose deadline ended first while its
	// call waited is IAMUnavailable too, but the budget did not refuse it.
	// The read of the controller role's policies is spent under priority.
	newRefused := metricValue(t, e, `nodeclass_guard_iam_budget_refused_total{priority="new"}`)
	prioRefused := metricValue(t, e, `nodeclass_guard_iam_budget_refused_total{priority="priority"}`)
	t.Logf("budget refusals: %v new, %v priority; %d admissions refused by the budget, %d IAMUnavailable otherwise (e.g. %q); IAM calls: GetRole %d, policy reads %d, SimulatePrincipalPolicy %d",
		newRefused, prioRefused, budgetRefused.Load(), refused.Load()-budgetRefused.Load(), otherMsg, e.IAM.Calls("GetRole"), e.IAM.Calls("GetRolePolicy"), e.IAM.Calls("SimulatePrincipalPolicy"))
	if got := newRefused + prioRefused; got < float64(budgetRefused.Load()) {
		t.Errorf("nodeclass_guard_iam_budget_refused_total = %v new + %v priority, want at least the %d admissions the budget refused", newRefused, prioRefused, budgetRefused.Load())
	}

	e.IAM.FailAlways(iamserver.ServiceFailure)
	t.Cleanup(e.IAM.ClearFailures)
	a := admit(t, hc, e.WebhookURL, good)
	if a.allowed() != healthy.allowed() || a.codes()[string(rules.IAMUnavailable)] {
		t.Errorf("the good class after the flood, IAM down: %s\nwant its verdict before the flood: %s", a, healthy)
	}
}

// metricValue reads one series from serve's plain-HTTP /metrics.
func metricValue(t *testing.T, e *framework.Env, series string) float64 {
	t.Helper()
	resp, err := http.Get(e.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestAttackHugeIAMResponse: an IAM endpoint answering 50 MB costs the
// client (built as serve builds it) a failed call, not 50 MB.
func TestAttackHugeIAMResponse(t *testing.T) {
	const huge = 50 << 20
	srv := newSwitchableEndpoint(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		// No Content-Length: the client finds out by reading.
		io.WriteString(w, `<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetRoleResult><Role><RoleName>`)
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range huge >> 20 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `</RoleName></Role></GetRoleResult></GetRoleResponse>`)
	}))
	isolateAWSEnv(t)
	client, err := authz.NewIAMClient(context.Background(), region, srv.URL(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	live := authz.NewLive(client, authz.LiveOptions{})
	runtime.GC()
	before := totalAlloc()
	_, err = live.Role(context.Background(), "Huge")
	allocated := totalAlloc() - before
	t.Logf("a %d MiB IAM answer: %v; %d MiB allocated", huge>>20, err, allocated>>20)
	if !authz.IsUnavailable(err) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("GetRole answered with %d MiB: %v, want an unavailable error saying the response is too large", huge>>20, err)
	}
	// Three attempts, each reading at most MaxIAMResponseBytes.
	if bound := uint64(16 << 20); allocated > bound {
		t.Errorf("reading a %d MiB IAM answer allocated %d MiB, over %d MiB", huge>>20, allocated>>20, bound>>20)
	}
}

// TestAttackEnumeration: a direct POST naming a role made up on the spot
// learns that no such role exists, and that the controller's permissions
// fall short, but not the controller role's ARN, its policies' names or
// what their statements cover. (Whether a role exists is the webhook's
// answer to give; the NetworkPolicy of deploy/ keeps other callers out.)
func TestAttackEnumeration(t *testing.T) {
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	const limited = "arn:aws:iam::111122223333:role/LimitedControllerRole" // denied launches: details to withhold
	controller, err := authz.ParseRoleARN(limited)
	if err != nil {
		t.Fatal(err)
	}
	c := rules.NewChecker(rules.Config{IAM: snap, Controller: controller,
		ClusterName: clusterName, Region: region, OnIAMError: rules.OnIAMErrorDeny})
	srv := webhook.NewServer(webhook.ServerOptions{})
	for path, wh := range webhook.Handlers(c, webhook.NewMetrics()) {
		srv.Register(path, wh)
	}
	ts := httptestServer(t, srv.WebhookMux())
	hc := &http.Client{Timeout: 10 * time.Second}
	a := admit(t, hc, ts, ec2NodeClass("probe", "MadeUpRole-4711", ""))
	if !a.codes()[string(rules.RoleNotFound)] || !a.codes()[string(rules.LaunchDenied)] {
		t.Fatalf("made-up role: %s, want [RoleNotFound] and [LaunchDenied]", a)
	}
	text := a.message() + strings.Join(a.response.Warnings, "\n")
	for _, secret := range []string{limited, "LimitedControllerRole", "PassNodeRoles", "policy statements match"} {
		if strings.Contains(text, secret) {
			t.Errorf("the answer to a made-up role tells %q: %s", secret, a)
		}
	}
	// The person applying a class with a real role gets every detail.
	a = admit(t, hc, ts, ec2NodeClass("real", "KarpenterNodeRole-demo", ""))
	if !strings.Contains(a.message(), limited) {
		t.Errorf("an existing role: %s, want the denials' details", a)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
