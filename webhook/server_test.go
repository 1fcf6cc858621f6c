package webhook

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestLimitListenerClosesConnectionsBeyondTheCap: with the cap reached, a
// new connection is closed as soon as it is accepted; once one closes,
// the next is served.
func TestLimitListenerClosesConnectionsBeyondTheCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	l := &limitListener{Listener: raw, max: 2, refused: m.refuser("connections")}
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()
	first, second := <-accepted, <-accepted
	// Closed at accept: the client sees a reset, at connect or at its
	// first read.
	if over, err := net.Dial("tcp", raw.Addr().String()); err == nil {
		if _, err := over.Read(make([]byte, 1)); err == nil {
			t.Fatal("the connection over the cap was not closed")
		}
		over.Close()
	}
	refusedConnections := func() float64 {
		var metric dto.Metric
		if err := m.Refused.WithLabelValues("connections").Write(&metric); err != nil {
			t.Fatal(err)
		}
		return metric.GetCounter().GetValue()
	}
	if got := refusedConnections(); got != 1 {
		t.Errorf("refused{connections} = %v, want 1", got)
	}
	first.Close()
	third := dial()
	defer third.Close()
	c := <-accepted
	defer c.Close()
	second.Close()
	if len(accepted) != 0 {
		t.Errorf("more connections accepted than dialled")
	}
}

// TestGuard: what reaches the handler and what is refused, and how.
func TestGuard(t *testing.T) {
	reached := 0
	s := NewServer(ServerOptions{MaxBodyBytes: 1000, MaxBodyBytesInFlight: 1000})
	s.Register("/hook", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	ts := httptest.NewServer(s.WebhookMux())
	defer ts.Close()
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`
	for _, tc := range []struct {
		name, method, contentType, body string
		wantStatus                      int
		wantInBody                      string
		reaches                         bool
	}{
		{"a review", "POST", "application/json", review, 200, review, true},
		{"v1beta1", "POST", "application/json", strings.Replace(review, "/v1", "/v1beta1", 1), 200, "v1beta1", true},
		{"GET", "GET", "application/json", review, 405, "only POST", false},
		{"YAML", "POST", "application/yaml", review, 200, `"code":400`, false},
		{"unknown version", "POST", "application/json", strings.Replace(review, "/v1", "/v2", 1), 200, `"code":400`, false},
		{"too large", "POST", "application/json", `{"pad":"` + strings.Repeat("p", 2000) + `"}`, 200, `"code":413`, false},
		{"not JSON", "POST", "application/json", "{", 200, `"code":400`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached
			req, _ := http.NewRequest(tc.method, ts.URL+"/hook", bytes.NewReader([]byte(tc.body)))
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantInBody) || (reached > before) != tc.reaches {
				t.Errorf("HTTP %d %.200q (reached the handler: %v), want %d with %q (reaches: %v)", resp.StatusCode, b, reached > before, tc.wantStatus, tc.wantInBody, tc.reaches)
			}
		})
	}
	// The in-flight bound: with its one slot taken, a request is refused
	// with 429 unread.
	s = NewServer(ServerOptions{MaxInFlight: 1})
	s.inFlight <- struct{}{}
	rec := httptest.NewRecorder()
	s.guard(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("POST", "/hook", strings.NewReader(review)))
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("in-flight bound reached: HTTP %d, want 429", rec.Code)
	}
}

// TestLimitListenerPerSource: one client address holds at most its share
// of the connections; another address still gets in.
func TestLimitListenerPerSource(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	l := &limitListener{Listener: raw, max: 10, refused: m.refuser("connections"),
		sources: newSourceCounts(2), refusedSource: m.refuser("source_connections")}
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dialFrom := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return d.Dial("tcp", raw.Addr().String())
	}
	for range 2 {
		c, err := dialFrom("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		defer (<-accepted).Close()
	}
	if over, err := dialFrom("127.0.0.1"); err == nil {
		over.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := over.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("a third connection from one address was not closed: %v", err)
		}
		over.Close()
	}
	other, err := dialFrom("127.0.0.2")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	defer other.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("another address was not served")
	}
	var metric dto.Metric
	if err := m.Refused.WithLabelValues("source_connections").Write(&metric); err != nil || metric.GetCounter().GetValue() != 1 {
		t.Errorf("refused{source_connections} = %v (%v), want 1", metric.GetCounter().GetValue(), err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestGuardPerSourceInFlight: one address cannot take every request slot.
func TestGuardPerSourceInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	s := NewServer(ServerOptions{MaxInFlight: 8, MaxInFlightPerSource: 2})
	s.Register("/hook", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`
	serve := func(addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(review))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, req)
		return rec
	}
	done := make(chan *httptest.ResponseRecorder, 4)
	for range 2 {
		go func() { done <- serve("10.0.0.1:1000") }()
		<-entered
	}
	if rec := serve("10.0.0.1:1001"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a third request from one address: %d, want 429", rec.Code)
	}
	go func() { done <- serve("10.0.0.2:1000") }()
	select {
	case <-entered:
	case rec := <-done:
		t.Fatalf("another address was refused: %d", rec.Code)
	}
	close(release)
	for range 3 {
		<-done
	}
}
