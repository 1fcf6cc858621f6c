package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Bounds of the webhook server, for ServerOptions' zero values.
const (
	// DefaultMaxBodyBytes is just above the largest AdmissionReview the API
	// server can send for an object it can store: etcd refuses objects over
	// 1.5 MiB, and an UPDATE carries the object and the old object.
	// controller-runtime's own limit (7 MiB) also admits the 3 MiB of a
	// request body the API server accepts before storage refuses it.
	DefaultMaxBodyBytes = 3<<20 + 256<<10
	// DefaultMaxBodyBytesInFlight bounds the request bodies being read or
	// decoded at once, as their Content-Length declares (the body limit
	// when none is declared): one body at the limit, about a thousand
	// ordinary ones (a few KiB each). Decoding holds a body three times
	// over for plain fields, and 10 to 20 times for maps of short strings
	// (a class's tags, its terms' tags: issue 22 measured 52 bodies of
	// 158 KiB taking serve from 162 to 183 MiB at 8 MiB in flight), so
	// this keeps what requests hold at once within what a 192Mi container
	// has left beside serve's own 90 MiB.
	DefaultMaxBodyBytesInFlight = 4 << 20
	// DefaultMaxInFlight bounds the admission requests being served at once.
	DefaultMaxInFlight = 64
	// DefaultMaxConnections bounds the open connections to the webhook port.
	DefaultMaxConnections = 256
	// DefaultReadTimeout bounds the reading of one request, headers and
	// body, and a TLS handshake. The API server sends a review at once.
	DefaultReadTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultSourceShare is the part of the connection and in-flight caps
	// one client address may hold: one misbehaving pod cannot fill them,
	// and the API server's own addresses keep their share.
	DefaultSourceShare = 4
	// bodyGrace and minBodyRate cut a body that arrives too slowly: a
	// body of n bytes must be read within bodyGrace + n/minBodyRate of
	// the end of its headers (a small review within about 2 seconds, well
	// before ReadTimeout), whatever ReadTimeout allows.
	bodyGrace   = 2 * time.Second
	minBodyRate = 256 << 10 // bytes per second
	// writeTimeout bounds a request from the end of its headers to the end
	// of its answer; the API server waits at most 30 seconds.
	writeTimeout = 35 * time.Second
)

// ServerOptions configure the webhook server. Zero fields take the
// defaults above.
type ServerOptions struct {
	Host    string
	Port    int
	CertDir string // holding tls.crt and tls.key, reloaded when they change
	// TLSOpts adjust the TLS configuration (minimum version, certificate
	// source). HTTP/2 stays off whatever they set: the API server speaks
	// HTTP/1.1 to webhooks, and HTTP/2 lets one connection carry unbounded
	// work (rapid reset).
	TLSOpts []func(*tls.Config)

	// MaxBodyBytes refuses larger requests with 413 before reading them
	// (by their Content-Length) or once that much was read.
	MaxBodyBytes int64
	// MaxBodyBytesInFlight and MaxInFlight bound the requests served at
	// once; beyond them a request is refused at once with 429 and never
	// read, which the API server handles with the webhook's failurePolicy.
	MaxBodyBytesInFlight int64
	MaxInFlight          int
	// MaxConnections bounds the open connections; a connection beyond it
	// is closed as soon as it is accepted.
	MaxConnections int
	// MaxConnectionsPerSource and MaxInFlightPerSource bound what one
	// client address may hold (default: a quarter of the global caps).
	MaxConnectionsPerSource int
	MaxInFlightPerSource    int
	// ReadTimeout bounds the TLS handshake and the reading of one request,
	// body included; IdleTimeout a keep-alive connection between requests.
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight on shutdown.
	ShutdownTimeout time.Duration

	// Metrics counts refused requests and connections; nil counts nothing.
	Metrics *Metrics
}

// Server is the admission webhook server: controller-runtime's
// webhook.Server contract (the manager starts it; Register; the readiness
// checker), with what a port reachable by anyone in the cluster needs and
// controller-runtime's server does not bound: the body's size and read
// time, requests in flight, open connections, HTTP/1.1 only, and only
// POSTed application/json AdmissionReviews of a known version reach the
// handlers.
type Server struct {
	opts ServerOptions
	mux  *http.ServeMux
	// registrar is controller-runtime's server used only to register
	// handlers on mux: it adds its webhook metrics
	// (controller_runtime_webhook_requests_total, _latency_seconds,
	// _requests_in_flight) and refuses a path registered twice. It never
	// starts.
	registrar crwebhook.Server

	inFlight      chan struct{}
	bytesInFlight atomic.Int64
	// perSource counts the requests in flight by client address.
	perSource *sourceCounts

	mu      sync.Mutex
	started bool
}

var _ crwebhook.Server = (*Server)(nil)

// NewServer returns a webhook server; the manager starts it.
func NewServer(opts ServerOptions) *Server {
	if opts.Port == 0 {
		opts.Port = 9443
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBodyBytesInFlight <= 0 {
		opts.MaxBodyBytesInFlight = DefaultMaxBodyBytesInFlight
	}
	if opts.MaxBodyBytesInFlight < opts.MaxBodyBytes {
		opts.MaxBodyBytesInFlight = opts.MaxBodyBytes
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxConnectionsPerSource <= 0 || opts.MaxConnectionsPerSource > opts.MaxConnections {
		opts.MaxConnectionsPerSource = max(1, opts.MaxConnections/DefaultSourceShare)
	}
	if opts.MaxInFlightPerSource <= 0 || opts.MaxInFlightPerSource > opts.MaxInFlight {
		opts.MaxInFlightPerSource = max(1, opts.MaxInFlight/DefaultSourceShare)
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = time.Minute
	}
	mux := http.NewServeMux()
	return &Server{opts: opts, mux: mux, registrar: crwebhook.NewServer(crwebhook.Options{WebhookMux: mux}),
		inFlight: make(chan struct{}, opts.MaxInFlight), perSource: newSourceCounts(opts.MaxInFlightPerSource)}
}

// NeedLeaderElection implements webhook.Server: every replica serves.
func (*Server) NeedLeaderElection() bool { return false }

// Register serves hook at path behind the request checks, counted in
// controller-runtime's webhook metrics (refusals included).
func (s *Server) Register(path string, hook http.Handler) {
	s.registrar.Register(path, s.guard(hook))
}

// WebhookMux implements webhook.Server.
func (s *Server) WebhookMux() *http.ServeMux { return s.mux }

// Start serves until ctx ends, then lets the requests in flight finish for
// up to ShutdownTimeout. Requests' contexts derive from ctx, as with
// controller-runtime's server.
func (s *Server) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("webhook-server")
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	for _, o := range s.opts.TLSOpts {
		o(cfg)
	}
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.GetCertificate == nil {
		w, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
		if err != nil {
			return err
		}
		cfg.GetCertificate = w.GetCertificate
		go func() {
			if err := w.Start(ctx); err != nil {
				log.Error(err, "certificate watcher")
			}
		}()
	}
	raw, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	if err != nil {
		return err
	}
	l := tls.NewListener(&limitListener{Listener: raw, max: int64(s.opts.MaxConnections), refused: s.opts.Metrics.refuser("connections"),
		sources: newSourceCounts(s.opts.MaxConnectionsPerSource), refusedSource: s.opts.Metrics.refuser("source_connections")}, cfg)
	srv := &http.Server{
		Handler:           s.mux,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: s.opts.ReadTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		// A non-nil empty map: no HTTP/2, even if ALPN were to offer it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Error(err, "shutting down the webhook server")
		}
	}()
	log.Info("serving webhooks", "address", raw.Addr().String(), "maxConnections", s.opts.MaxConnections,
		"maxInFlight", s.opts.MaxInFlight, "perSource", fmt.Sprintf("%d connections, %d in flight", s.opts.MaxConnectionsPerSource, s.opts.MaxInFlightPerSource), "maxBodyBytes", s.opts.MaxBodyBytes, "readTimeout", s.opts.ReadTimeout.String())
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}

// StartedChecker is healthy once the server completes a TLS handshake.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started {
			return errors.New("webhook server has not been started yet")
		}
		// An empty host dials this machine, as listening on it listens on all.
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
			net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a readiness dial
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}

// guard lets through to hook only what the API server sends: a POST of an
// application/json AdmissionReview of a known version, within the size
// and in-flight bounds. What it refuses never reaches the rules:
// oversized, wrongly typed and unknown-version reviews get an
// AdmissionReview answer with the HTTP code in its status (as
// controller-runtime answers); other methods get 405 and requests beyond
// the in-flight bounds 429, plain HTTP, which the API server treats as a
// failed call.
func (s *Server) guard(hook http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.opts.Metrics.refused("method")
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "only POST reaches an admission webhook", http.StatusMethodNotAllowed)
			return
		}
		if r.ContentLength > s.opts.MaxBodyBytes {
			s.opts.Metrics.refused("too_large")
			refuseReview(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large: %d bytes; limit is %d bytes", r.ContentLength, s.opts.MaxBodyBytes))
			return
		}
		declared := r.ContentLength
		if declared < 0 {
			declared = s.opts.MaxBodyBytes
		}
		source := sourceOf(r.RemoteAddr)
		if !s.perSource.take(source) {
			s.tooMany(w, "source_in_flight")
			return
		}
		defer s.perSource.put(source)
		select {
		case s.inFlight <- struct{}{}:
		default:
			s.tooMany(w, "in_flight")
			return
		}
		defer func() { <-s.inFlight }()
		// A small body that arrives too slowly is cut well before
		// ReadTimeout: it holds a slot while it trickles.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyGrace + time.Duration(float64(declared)/minBodyRate*float64(time.Second))))
		if s.bytesInFlight.Add(declared) > s.opts.MaxBodyBytesInFlight {
			s.bytesInFlight.Add(-declared)
			s.tooMany(w, "body_bytes_in_flight")
			return
		}
		defer s.bytesInFlight.Add(-declared)

		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			s.opts.Metrics.refused("content_type")
			refuseReview(w, http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", quote(r.Header.Get("Content-Type"))))
			return
		}
		// As controller-runtime's handler wants it, parameters aside.
		r.Header.Set("Content-Type", "application/json")
		body, err := readBody(r, declared, s.opts.MaxBodyBytes)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				s.opts.Metrics.refused("too_large")
				refuseReview(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", s.opts.MaxBodyBytes))
				return
			}
			// A client too slow for the read deadline, or gone.
			s.opts.Metrics.refused("read")
			refuseReview(w, http.StatusBadRequest, fmt.Errorf("reading the request: %v", err))
			return
		}
		if err := knownReview(body); err != nil {
			s.opts.Metrics.refused("version")
			refuseReview(w, http.StatusBadRequest, err)
			return
		}
		r.Body, r.ContentLength = http.NoBody, 0
		if len(body) > 0 {
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		hook.ServeHTTP(w, r)
	})
}

func (s *Server) tooMany(w http.ResponseWriter, reason string) {
	s.opts.Metrics.refused(reason)
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	http.Error(w, "too many admission requests in flight", http.StatusTooManyRequests)
}

// readBody reads at most limit bytes of r's body into one buffer of the
// declared size.
func readBody(r *http.Request, declared, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	buf.Grow(int(min(declared, limit)) + 1)
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, limit))
	return buf.Bytes(), err
}

// admissionReviewVersions are the AdmissionReview versions the handlers
// decode (controller-runtime decodes both into v1).
var admissionReviewVersions = map[string]bool{"admission.k8s.io/v1": true, "admission.k8s.io/v1beta1": true}

// knownReview checks that body is an AdmissionReview of a known version.
// An empty body is left to the handler, which says so.
func knownReview(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return fmt.Errorf("the request is not a JSON AdmissionReview: %v", err)
	}
	if head.Kind != "AdmissionReview" || !admissionReviewVersions[head.APIVersion] {
		return fmt.Errorf("the request is a %s %s, not an AdmissionReview of admission.k8s.io/v1 or v1beta1", shown(head.APIVersion), shown(head.Kind))
	}
	return nil
}

// refuseReview answers with an AdmissionReview carrying code and err, as
// controller-runtime answers a request it cannot decode.
func refuseReview(w http.ResponseWriter, code int32, err error) {
	resp := admission.Errored(code, err)
	review := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	review.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// limitListener closes connections beyond max as soon as they are
// accepted: the client sees its connection closed at once, instead of
// waiting in the kernel's backlog.
type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused func()
	// sources bounds the connections of one client address.
	sources       *sourceCounts
	refusedSource func()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		source := sourceOf(c.RemoteAddr().String())
		if !l.sources.take(source) {
			if l.refusedSource != nil {
				l.refusedSource()
			}
			reset(c)
			continue
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.sources.put(source)
			l.refused()
			reset(c)
			continue
		}
		return &countedConn{Conn: c, l: l, source: source}, nil
	}
}

// reset closes c at once, freeing the socket.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

type countedConn struct {
	net.Conn
	l      *limitListener
	source string
	once   sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.sources.put(c.source)
	})
	return c.Conn.Close()
}

// sourceOf is the client address of a remote address "host:port".
func sourceOf(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// sourceCounts counts what each client address holds, up to max each;
// a nil one bounds nothing.
type sourceCounts struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newSourceCounts(max int) *sourceCounts {
	return &sourceCounts{max: max, n: map[string]int{}}
}

// take counts one more for source, unless it holds max already.
func (s *sourceCounts) take(source string) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[source] >= s.max {
		return false
	}
	s.n[source]++
	return true
}

// put counts one less for source.
func (s *sourceCounts) put(source string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[source] <= 1 {
		delete(s.n, source)
		return
	}
	s.n[source]--
}
