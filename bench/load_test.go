package bench

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// trivialTarget serves TrivialHandler over TLS (HTTP/1.1, as the harness
// calls webhooks) and counts the requests it answers.
func trivialTarget(t *testing.T) (*Target, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.ProtoMajor != 1 {
			http.Error(w, "want HTTP/1.1, got "+r.Proto, http.StatusBadRequest)
			return
		}
		TrivialHandler{}.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true // offered, as controller-runtime's server does; the client must not take it
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	client, err := NewClient(ca, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	return &Target{Name: "trivial", URL: srv.URL, Client: client}, &n
}

func allowedRequests(n int) []Request {
	out := make([]Request, n)
	for i := range out {
		out[i] = Request{Body: ReviewBody(Class{Name: "c", Role: "r"}, "uid"), Allowed: true, Check: true}
	}
	return out
}

func TestNewClientRejectsBadCA(t *testing.T) {
	if _, err := NewClient([]byte("not a certificate"), 1); err == nil {
		t.Error("NewClient accepted a CA that is not PEM")
	}
}

func TestDrivers(t *testing.T) {
	target, served := trivialTarget(t)
	ctx := context.Background()
	reqs := allowedRequests(3)

	run := ClosedLoop(ctx, target, reqs, 4, 100*time.Millisecond)
	if err := run.Failed(); err != nil || len(run.Latencies) == 0 || int64(len(run.Latencies)) != served.Load() {
		t.Fatalf("ClosedLoop: %d latencies, %d served, err %v", len(run.Latencies), served.Load(), err)
	}

	served.Store(0)
	run = OpenLoop(ctx, target, reqs, 200, 100*time.Millisecond, 8)
	if err := run.Failed(); err != nil || len(run.Latencies) != 20 || served.Load() != 20 {
		t.Fatalf("OpenLoop at 200/s for 100ms: %d latencies, %d served, want 20 each; err %v", len(run.Latencies), served.Load(), err)
	}

	served.Store(0)
	run = Burst(ctx, target, allowedRequests(16))
	if err := run.Failed(); err != nil || len(run.Latencies) != 16 || served.Load() != 16 {
		t.Fatalf("Burst of 16: %d latencies, %d served; err %v", len(run.Latencies), served.Load(), err)
	}

	served.Store(0)
	var seen [50]atomic.Bool
	run = Sequence(ctx, target, 50, 4, func(i int) Request {
		if seen[i].Swap(true) {
			t.Errorf("Sequence asked for request %d twice", i)
		}
		return reqs[0]
	})
	if err := run.Failed(); err != nil || len(run.Latencies) != 50 || served.Load() != 50 {
		t.Fatalf("Sequence of 50: %d latencies, %d served; err %v", len(run.Latencies), served.Load(), err)
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Errorf("Sequence never asked for request %d", i)
		}
	}
	if run.Throughput() <= 0 {
		t.Errorf("Throughput = %v", run.Throughput())
	}
}

// TestWrongVerdictsAndFailures: a wrong verdict is answered (its latency
// counts) but reported apart from requests that were not answered.
func TestWrongVerdictsAndFailures(t *testing.T) {
	target, _ := trivialTarget(t)
	ctx := context.Background()
	denyExpected := Request{Body: ReviewBody(Class{Name: "c", Role: "r"}, "uid"), Allowed: false, Check: true}
	run := Burst(ctx, target, []Request{denyExpected, denyExpected, {Body: []byte("{"), Check: true}})
	if run.WrongVerdicts != 2 || run.Errors != 1 || len(run.Latencies) != 2 {
		t.Fatalf("wrong verdicts %d, errors %d, latencies %d; want 2, 1, 2", run.WrongVerdicts, run.Errors, len(run.Latencies))
	}
	var wrong *VerdictError
	if !errors.As(run.FirstWrong, &wrong) || wrong.Want != `"allowed":false` {
		t.Errorf("FirstWrong = %v", run.FirstWrong)
	}
	if err := run.Failed(); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "wrong verdict") {
		t.Errorf("Failed() = %v, want both the 400 and the wrong verdicts", err)
	}
}
