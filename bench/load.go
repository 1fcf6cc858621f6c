package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Target is a webhook under load: where to send AdmissionReviews and how
// to account for the process answering them.
type Target struct {
	// Name labels the target in reports ("nodeclass-guard", "trivial").
	Name string
	// URL is the webhook's full URL, path included.
	URL string
	// PID is the answering process, for CPU time and RSS.
	PID int
	// MetricsURL is the process's /metrics, for allocation counts.
	MetricsURL string
	// PprofURL is the process's CPU profile endpoint, when it serves one.
	PprofURL string
	// Client calls the webhook (see NewClient).
	Client *http.Client
}

// NewClient returns an HTTP client calling webhooks as the API server
// does: TLS verified against ca, HTTP/1.1 with keep-alive, and an idle
// pool large enough that conns concurrent requests never open a new
// connection once warm.
func NewClient(ca []byte, conns int) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the webhook CA is not a PEM certificate")
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Request is one AdmissionReview and the verdict expected for it.
type Request struct {
	Body []byte
	// Allowed is the expected answer; the trivial handler always allows,
	// so a Target's requests are checked only when Check is set.
	Allowed bool
	Check   bool
}

var (
	allowedTrue  = []byte(`"allowed":true`)
	allowedFalse = []byte(`"allowed":false`)
)

// Do sends one request and returns its latency measured from start (the
// moment it was due: for open-loop load, the scheduled send time). An
// answer other than 200 with the expected verdict is an error.
func (t *Target) Do(ctx context.Context, r Request, start time.Time) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := t.Client.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: reading the answer: %w", t.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s answered %s: %.300s", t.Name, resp.Status, body)
	}
	if r.Check {
		want := allowedTrue
		if !r.Allowed {
			want = allowedFalse
		}
		if !bytes.Contains(body, want) {
			return lat, &VerdictError{Target: t.Name, Want: string(want), Answer: string(body)}
		}
	}
	return lat, nil
}

// VerdictError is an answer with the wrong verdict: the request was
// answered (its latency counts), but not as the scenario expects.
type VerdictError struct {
	Target, Want, Answer string
}

func (e *VerdictError) Error() string {
	return fmt.Sprintf("%s: expected %s in the answer, got %.500s", e.Target, e.Want, e.Answer)
}

// Run is the outcome of driving one target for a while.
type Run struct {
	// Latencies of the answered requests, wrong verdicts included.
	Latencies []time.Duration
	// Errors counts requests not answered (transport errors, status codes
	// other than 200) and WrongVerdicts those answered with the verdict
	// not expected; FirstErr and FirstWrong are the first of each.
	Errors, WrongVerdicts int
	FirstErr, FirstWrong  error
	Elapsed               time.Duration
}

// Merge appends o to r.
func (r *Run) Merge(o Run) {
	r.Latencies = append(r.Latencies, o.Latencies...)
	r.Errors += o.Errors
	r.WrongVerdicts += o.WrongVerdicts
	if r.FirstErr == nil {
		r.FirstErr = o.FirstErr
	}
	if r.FirstWrong == nil {
		r.FirstWrong = o.FirstWrong
	}
	r.Elapsed += o.Elapsed
}

// record adds one request's outcome to r.
func (r *Run) record(lat time.Duration, err error) {
	var wrong *VerdictError
	switch {
	case err == nil:
		r.Latencies = append(r.Latencies, lat)
	case errors.As(err, &wrong):
		r.Latencies = append(r.Latencies, lat)
		r.WrongVerdicts++
		if r.FirstWrong == nil {
			r.FirstWrong = err
		}
	default:
		r.Errors++
		if r.FirstErr == nil {
			r.FirstErr = err
		}
	}
}

// Failed returns an error describing failed requests and wrong verdicts,
// nil when there were none.
func (r Run) Failed() error {
	var errs []error
	if r.Errors > 0 {
		errs = append(errs, fmt.Errorf("%d requests failed; first: %w", r.Errors, r.FirstErr))
	}
	if r.WrongVerdicts > 0 {
		errs = append(errs, fmt.Errorf("%d answers with the wrong verdict; first: %w", r.WrongVerdicts, r.FirstWrong))
	}
	return errors.Join(errs...)
}

// Throughput is requests answered per second of elapsed time.
func (r Run) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// ClosedLoop drives t with conc workers, each sending its next request as
// soon as the previous one is answered, for d. Worker w walks reqs from
// offset w, so that concurrent requests name different classes.
func ClosedLoop(ctx context.Context, t *Target, reqs []Request, conc int, d time.Duration) Run {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		run      Run
		deadline = time.Now().Add(d)
	)
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := Run{Latencies: make([]time.Duration, 0, 4096)}
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				local.record(t.Do(ctx, reqs[i%len(reqs)], time.Now()))
			}
			mu.Lock()
			run.Merge(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	run.Elapsed = time.Since(start)
	return run
}

// OpenLoop sends requests to t at a fixed rate for d, whether or not
// earlier ones were answered, and measures each latency from its scheduled
// send time, so that a stall shows in every request it delays
// (no coordinated omission). At most maxInFlight requests are outstanding;
// beyond that, sends wait, and the wait counts in their latency.
func OpenLoop(ctx context.Context, t *Target, reqs []Request, rate float64, d time.Duration, maxInFlight int) Run {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	lats := make([]time.Duration, n)
	errs := make([]error, n)
	sent := make([]bool, n)
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxInFlight)
	)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		sent[i] = true
		go func() {
			defer func() { <-sem; wg.Done() }()
			lats[i], errs[i] = t.Do(ctx, reqs[i%len(reqs)], due)
		}()
	}
	wg.Wait()
	run := Run{Elapsed: time.Since(start)}
	for i := range lats {
		if sent[i] {
			run.record(lats[i], errs[i])
		}
	}
	return run
}

// Burst sends every request at once, each from its own goroutine released
// together, and measures each from the release.
func Burst(ctx context.Context, t *Target, reqs []Request) Run {
	var (
		wg      sync.WaitGroup
		release = make(chan struct{})
		lats    = make([]time.Duration, len(reqs))
		errs    = make([]error, len(reqs))
		ready   sync.WaitGroup
		start   time.Time
	)
	for i := range reqs {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-release
			lats[i], errs[i] = t.Do(ctx, reqs[i], start)
		}()
	}
	ready.Wait()
	start = time.Now()
	close(release)
	wg.Wait()
	run := Run{Elapsed: time.Since(start)}
	for i := range reqs {
		run.record(lats[i], errs[i])
	}
	return run
}

// Sequence sends the requests next(0) to next(n-1), each once, from conc
// workers, each sending its next as soon as its previous one is answered.
func Sequence(ctx context.Context, t *Target, n, conc int, next func(i int) Request) Run {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		idx  atomic.Int64
		run  Run
		idx0 = time.Now()
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local Run
			for ctx.Err() == nil {
				i := int(idx.Add(1)) - 1
				if i >= n {
					break
				}
				local.record(t.Do(ctx, next(i), time.Now()))
			}
			mu.Lock()
			run.Merge(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	run.Elapsed = time.Since(idx0)
	return run
}
