// Package iamserver is a local IAM endpoint speaking IAM's Query protocol
// (form-encoded requests, XML answers in the 2010-05-08 namespace), backed
// by an authz.Snapshot. Tests and demos point the real AWS SDK at it
// (BaseEndpoint) to exercise authz.Live end to end: found and missing
// roles, SimulatePrincipalPolicy answered by the snapshot's evaluator,
// and the failures IAM really produces (throttling, 5xx, hangs, garbage)
// injected on demand.
//
// Actions: GetRole, GetInstanceProfile, ListInstanceProfilesForRole,
// SimulatePrincipalPolicy, and the reads of a role's policies
// (ListRolePolicies, GetRolePolicy, ListAttachedRolePolicies, GetPolicy,
// GetPolicyVersion; every managed policy at version v1). When the account
// is in an organization (the snapshot's Organization section, or
// WithOrganization), SimulatePrincipalPolicy also evaluates its SCPs
// (authz.EvaluateSCPs) and says so in OrganizationsDecisionDetail; the
// SCP layer has fault knobs of its own (scp.go: WithSCPFailure,
// WithSCPLatency). SigV4 signatures are not verified, but a request
// without an Authorization header is refused as IAM refuses it.
package iamserver

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// Fault is a failure the server can inject instead of answering.
type Fault string

// Fault values.
const (
	// Throttling answers 400 Throttling "Rate exceeded", as IAM does when
	// an account's request rate is exceeded; the SDK retries it.
	Throttling Fault = "Throttling"
	// ServiceFailure answers 500 ServiceFailure; the SDK retries it.
	ServiceFailure Fault = "ServiceFailure"
	// Hang answers nothing until the client gives up (or the server stops).
	Hang Fault = "Hang"
	// MalformedXML answers 200 with a truncated XML document.
	MalformedXML Fault = "MalformedXML"
	// AccessDenied answers 403 as a service does to a caller its policy
	// does not allow (IAM's AccessDenied, EKS's AccessDeniedException).
	AccessDenied Fault = "AccessDenied"
)

// Failure says which calls fail and how. Exactly one of Next, Fraction
// and Always should be set.
type Failure struct {
	Fault Fault
	// Action limits the failure to one action; "" means every IAM action.
	// EKS actions fail only when named ("eks:DescribeCluster") or by
	// "eks:*".
	Action string
	// Next fails the next Next matching calls, then the failure is spent.
	Next int
	// Fraction fails each matching call with this probability (0..1).
	Fraction float64
	// Always fails every matching call until ClearFailures.
	Always bool
}

// Server is the IAM endpoint; it implements http.Handler. Its knobs may be
// turned while it serves.
type Server struct {
	mu            sync.Mutex
	snap          *authz.Snapshot
	latency       time.Duration
	actionLatency map[string]time.Duration
	eksLatency    time.Duration
	ec2Latency    time.Duration
	ssmLatency    time.Duration
	failures      []*Failure
	// org overrides the snapshot's Organization section when orgSet.
	org      *authz.Organization
	orgSet   bool
	rng      *rand.Rand
	calls    map[string]int
	total    int
	requests uint64

	// scpFailures and scpLatency are the SCP layer's own knobs (scp.go).
	scpFailures []*Failure
	scpLatency  time.Duration

	// stopping is closed by the stop function of Start; held requests
	// watch it.
	stopping chan struct{}
}

var _ http.Handler = (*Server)(nil)

// Option configures a Server at construction.
type Option func(*Server)

// WithLatency delays every answer by d.
func WithLatency(d time.Duration) Option { return func(s *Server) { s.latency = d } }

// WithActionLatency delays answers to one action by d (instead of the
// general latency).
func WithActionLatency(action string, d time.Duration) Option {
	return func(s *Server) { s.actionLatency[action] = d }
}

// WithFailure injects a failure from the start.
func WithFailure(f Failure) Option { return func(s *Server) { s.failures = append(s.failures, &f) } }

// WithSeed seeds the generator behind Failure.Fraction, for reproducible
// runs.
func WithSeed(seed uint64) Option {
	return func(s *Server) { s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithOrganization puts the account in an organization whose SCPs are
// scps (none: FullAWSAccess), whatever the snapshot says.
func WithOrganization(scps ...authz.NamedPolicy) Option {
	return func(s *Server) { s.org, s.orgSet = &authz.Organization{SCPs: scps}, true }
}

// SetOrganization is WithOrganization while serving; nil takes the
// account out of any organization, including the snapshot's.
func (s *Server) SetOrganization(org *authz.Organization) {
	s.mu.Lock()
	s.org, s.orgSet = org, true
	s.mu.Unlock()
}

// organization is the organization SimulatePrincipalPolicy evaluates, nil
// for none.
func (s *Server) organization(snap *authz.Snapshot) *authz.Organization {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgSet {
		return s.org
	}
	if snap == nil {
		return nil
	}
	return snap.Organization()
}

// New returns a server answering from snap.
func New(snap *authz.Snapshot, opts ...Option) *Server {
	s := &Server{
		snap:          snap,
		actionLatency: map[string]time.Duration{},
		rng:           rand.New(rand.NewPCG(1, 2)),
		calls:         map[string]int{},
		stopping:      make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SetSnapshot replaces the data the server answers from.
func (s *Server) SetSnapshot(snap *authz.Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
}

// SetLatency sets the delay of every answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetActionLatency sets the delay of one action's answers; 0 falls back to
// the general latency.
func (s *Server) SetActionLatency(action string, d time.Duration) {
	s.mu.Lock()
	if d == 0 {
		delete(s.actionLatency, action)
	} else {
		s.actionLatency[action] = d
	}
	s.mu.Unlock()
}

// InjectFailure adds a failure; failures are tried in the order added and
// the first that fires wins.
func (s *Server) InjectFailure(f Failure) {
	s.mu.Lock()
	s.failures = append(s.failures, &f)
	s.mu.Unlock()
}

// FailNext fails the next n calls (of any action) with fault.
func (s *Server) FailNext(fault Fault, n int) { s.InjectFailure(Failure{Fault: fault, Next: n}) }

// FailAlways fails every call with fault until ClearFailures.
func (s *Server) FailAlways(fault Fault) { s.InjectFailure(Failure{Fault: fault, Always: true}) }

// FailFraction fails each call with probability p.
func (s *Server) FailFraction(fault Fault, p float64) {
	s.InjectFailure(Failure{Fault: fault, Fraction: p})
}

// ClearFailures removes every injected failure.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	s.failures = nil
	s.mu.Unlock()
}

// Calls returns how many requests for action were received (failed ones
// included, so SDK retries show) since the last ResetCalls.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// TotalCalls returns how many authenticated requests were received.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetCalls zeroes the call counts.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.total = 0
	s.mu.Unlock()
}

// Start serves s on a local httptest server and returns its URL (use it as
// the SDK's BaseEndpoint) and a function stopping it. Stopping ends the
// requests held by Hang or by latency, so that it never waits on them; a
// stopped Server may be started again.
func (s *Server) Start() (url string, stop func()) {
	s.mu.Lock()
	select {
	case <-s.stopping:
		s.stopping = make(chan struct{})
	default:
	}
	stopping := s.stopping
	s.mu.Unlock()
	ts := httptest.NewServer(s)
	var once sync.Once
	return ts.URL, func() {
		once.Do(func() { close(stopping) })
		ts.CloseClientConnections()
		ts.Close()
	}
}

// call is one request being answered.
type call struct {
	s         *Server
	w         http.ResponseWriter
	r         *http.Request
	requestID string
	snap      *authz.Snapshot
	stopping  <-chan struct{}
}

// ServeHTTP implements IAM's Query protocol, and EKS's REST-JSON API
// under /clusters/ (eks.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	c := &call{s: s, w: w, r: r, requestID: requestID(s.requests), snap: s.snap, stopping: s.stopping}
	s.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/clusters/") {
		c.serveEKS()
		return
	}
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.") {
		c.serveSSM()
		return
	}
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "TrentService.") {
		c.serveKMS()
		return
	}

	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		c.fail(http.StatusMethodNotAllowed, "Sender", "InvalidAction", fmt.Sprintf("The HTTP method %s is not supported; IAM's Query API takes POST (or GET).", r.Method))
		return
	}
	if r.Header.Get("Authorization") == "" && r.URL.Query().Get("X-Amz-Signature") == "" {
		c.fail(http.StatusForbidden, "Sender", "MissingAuthenticationToken", "Request is missing Authentication Token")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(http.StatusBadRequest, "Sender", "MalformedQueryString", "The request body could not be parsed as a form: "+err.Error())
		return
	}
	action := r.Form.Get("Action")
	if action == "" {
		c.fail(http.StatusBadRequest, "Sender", "MissingAction", "The request must contain the parameter Action.")
		return
	}
	if r.Form.Get("Version") == ec2Version {
		c.serveEC2(action)
		return
	}
	if v := r.Form.Get("Version"); v != "" && v != "2010-05-08" {
		c.fail(http.StatusBadRequest, "Sender", "InvalidParameterValue", fmt.Sprintf("Version %q is not supported; IAM's API version is 2010-05-08.", v))
		return
	}

	if c.injected(action, faultReplies{
		throttling: func() { c.fail(http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded") },
		serviceFailure: func() {
			c.fail(http.StatusInternalServerError, "Receiver", "ServiceFailure", "Request processing has failed because of an unknown error, exception or failure.")
		},
		accessDenied: func() {
			c.fail(http.StatusForbidden, "Sender", "AccessDenied", "User is not authorized to perform: iam:"+action)
		},
		malformed: func() {
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<%sResponse xmlns="%s"><%sResult><Role><RoleName>trunc`, action, xmlns, action)
		},
	}) {
		return
	}

	if c.snap == nil {
		c.fail(http.StatusInternalServerError, "Receiver", "ServiceFailure", "The local IAM endpoint has no snapshot loaded.")
		return
	}
	switch action {
	case "GetRole":
		c.getRole()
	case "GetInstanceProfile":
		c.getInstanceProfile()
	case "ListInstanceProfilesForRole":
		c.listInstanceProfilesForRole()
	case "SimulatePrincipalPolicy":
		c.simulatePrincipalPolicy()
	case "ListRolePolicies":
		c.listRolePolicies()
	case "GetRolePolicy":
		c.getRolePolicy()
	case "ListAttachedRolePolicies":
		c.listAttachedRolePolicies()
	case "GetPolicy":
		c.getPolicy()
	case "GetPolicyVersion":
		c.getPolicyVersion()
	default:
		c.fail(http.StatusBadRequest, "Sender", "InvalidAction", fmt.Sprintf("Could not find operation %s for version 2010-05-08", action))
	}
}

// begin counts the call and decides its fault (or "") and delay. EKS,
// EC2 and SSM actions ("eks:DescribeCluster", "ec2:DescribeSubnets",
// "ssm:GetParameter") are counted apart from IAM's (TotalCalls counts
// IAM's only), take their service's latency, and fail only by a Failure
// that names them or their service's "eks:*", "ec2:*", "ssm:*".
func (s *Server) begin(action string) (Fault, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[action]++
	prefix := ""
	delay := s.latency
	switch {
	case strings.HasPrefix(action, eksPrefix):
		prefix, delay = eksPrefix, s.eksLatency
	case strings.HasPrefix(action, ec2Prefix):
		prefix, delay = ec2Prefix, s.ec2Latency
	case strings.HasPrefix(action, ssmPrefix):
		prefix, delay = ssmPrefix, s.ssmLatency
	case strings.HasPrefix(action, kmsPrefix):
		prefix, delay = kmsPrefix, s.ssmLatency
	default:
		s.total++
	}
	other := prefix != ""
	if d, ok := s.actionLatency[action]; ok {
		delay = d
	}
	for i, f := range s.failures {
		if other && f.Action != action && f.Action != prefix+"*" {
			continue
		}
		if !other && f.Action != "" && f.Action != action {
			continue
		}
		switch {
		case f.Always:
			return f.Fault, delay
		case f.Next > 0:
			f.Next--
			if f.Next == 0 {
				s.failures = append(s.failures[:i:i], s.failures[i+1:]...)
			}
			return f.Fault, delay
		case f.Fraction > 0 && s.rng.Float64() < f.Fraction:
			return f.Fault, delay
		}
	}
	return "", delay
}

// wait sleeps for d unless the request ends or the server stops first; it
// reports whether to go on answering.
func (c *call) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.r.Context().Done():
		return false
	case <-c.stopping:
		return false
	}
}

// reply writes a successful XML answer.
func (c *call) reply(v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		c.fail(http.StatusInternalServerError, "Receiver", "ServiceFailure", "encoding the answer: "+err.Error())
		return
	}
	c.w.Header().Set("Content-Type", "text/xml")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(append([]byte(xml.Header), body...))
}

// fail writes an error answer in IAM's ErrorResponse shape.
func (c *call) fail(status int, typ, code, message string) {
	var e errorResponse
	e.Error.Type, e.Error.Code, e.Error.Message = typ, code, message
	e.RequestID = c.requestID
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(e); err != nil {
		http.Error(c.w, err.Error(), http.StatusInternalServerError)
		return
	}
	c.w.Header().Set("Content-Type", "text/xml")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(status)
	c.w.Write(buf.Bytes())
}

// requestID formats a request counter as a UUID-shaped request ID.
func requestID(n uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", uint32(n>>32), n&0xffffffffffff)
}

// faultReplies are how one API (IAM, EKS, EC2, SSM) answers each fault a
// test injects.
type faultReplies struct {
	throttling, serviceFailure, accessDenied, malformed func()
}

// injected delays the answer to action by its configured latency and
// answers the fault injected for it, if any, as replies say; it reports
// whether it answered. A Hang, or a latency the server's stop cuts short,
// drops the connection without an answer: returning would send an empty
// 200, which the SDK reads as success.
func (c *call) injected(action string, replies faultReplies) bool {
	fault, delay := c.s.begin(action)
	if !c.wait(delay) {
		panic(http.ErrAbortHandler)
	}
	switch fault {
	case Throttling:
		replies.throttling()
	case ServiceFailure:
		replies.serviceFailure()
	case AccessDenied:
		replies.accessDenied()
	case MalformedXML:
		replies.malformed()
	case Hang:
		select {
		case <-c.r.Context().Done():
		case <-c.stopping:
		}
		panic(http.ErrAbortHandler)
	default:
		return false
	}
	return true
}
