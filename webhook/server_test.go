package webhook

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
