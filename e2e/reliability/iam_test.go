package reliability_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// switchableEndpoint serves the local IAM endpoint on a fixed address and
// can take it down (closed listener: connections are refused) and bring
// it back on the same address, as an IAM outage looks to the SDK.
type switchableEndpoint struct {
	t       *testing.T
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
}

func newSwitchableEndpoint(t *testing.T, h http.Handler) *switchableEndpoint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &switchableEndpoint{t: t, handler: h, addr: l.Addr().String()}
	e.serve(l)
	t.Cleanup(e.down)
	return e
}

func (e *switchableEndpoint) URL() string { return "http://" + e.addr }

func (e *switchableEndpoint) serve(l net.Listener) {
	srv := &http.Server{Handler: e.handler}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go srv.Serve(l)
}

// down closes the listener and every open connection.
func (e *switchableEndpoint) down() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

// up listens again on the same address.
func (e *switchableEndpoint) up() {
	e.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port was just released; retry briefly if the kernel still holds it
		if l, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("re-listening on %s: %v", e.addr, err)
	}
	e.serve(l)
}

// clock is a Cached clock the test moves forward to expire entries.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// liveRig is the webhook's handlers wired as serve wires them in the live
// mode (NewIAMClient → NewLive → NewCached with Timeout = --iam-timeout),
// pointed at a local IAM endpoint whose faults the test turns on. Two
// handler sets share the one cache: one with --on-iam-error=allow, one with
// deny.
type liveRig struct {
	iam        *iamserver.Server
	endpoint   *switchableEndpoint
	timeout    time.Duration
	ttl        time.Duration
	clock      *clock
	cache      *authz.Cached
	iamMetrics *authz.Metrics
	verdicts   *webhook.Metrics
	classes    *classMap
	allowURL   string // handlers with --on-iam-error=allow
	denyURL    string // handlers with --on-iam-error=deny
	hc         *http.Client
}

func newLiveRig(t *testing.T, timeout time.Duration) *liveRig {
	t.Helper()
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	r := &liveRig{
		iam:        iamserver.New(snap),
		timeout:    timeout,
		ttl:        time.Minute,
		clock:      &clock{},
		iamMetrics: authz.NewMetrics(),
		verdicts:   webhook.NewMetrics(),
		classes:    &classMap{ec2: map[string]*rules.EC2NodeClass{}},
		hc:         &http.Client{Timeout: 30 * time.Second},
	}
	r.endpoint = newSwitchableEndpoint(t, r.iam)
	isolateAWSEnv(t)
	client, err := authz.NewIAMClient(context.Background(), region, r.endpoint.URL(), timeout)
	if err != nil {
		t.Fatal(err)
	}
	live := authz.NewLive(client, authz.LiveOptions{Metrics: r.iamMetrics})
	r.cache = authz.NewCached(live, authz.CacheOptions{
		TTL: r.ttl, NegativeTTL: r.ttl / 2, Timeout: timeout, Now: r.clock.Now, Metrics: r.iamMetrics,
	})
	controller, err := authz.ParseRoleARN(controllerARN)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []rules.OnIAMError{rules.OnIAMErrorAllow, rules.OnIAMErrorDeny} {
		c := rules.NewChecker(rules.Config{
			IAM: r.cache, Controller: controller, ClusterName: clusterName, Region: region, OnIAMError: mode, Classes: r.classes,
			IAMTimeout: timeout, // as serve sets it
		})
		mux := http.NewServeMux()
		for path, wh := range webhook.Handlers(c, r.verdicts) {
			mux.Handle(path, wh)
		}
		ts := httptest.NewServer(mux)
		t.Cleanup(ts.Close)
		if mode == rules.OnIAMErrorAllow {
			r.allowURL = ts.URL
		} else {
			r.denyURL = ts.URL
		}
	}
	return r
}

// isolateAWSEnv gives the SDK's default chain static environment
// credentials and nothing else to find.
func isolateAWSEnv(t *testing.T) {
	iamserver.IsolateAWSEnv(t, "AKIAIOSFODNN7EXAMPLE", awsSecret)
}

// classMap is the cluster's node classes as NodePool admissions see them.
type classMap struct {
	mu  sync.Mutex
	ec2 map[string]*rules.EC2NodeClass
}

var _ rules.ClassGetter = (*classMap)(nil)

func (m *classMap) put(name, role, profile string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nc := &rules.EC2NodeClass{Spec: rules.EC2NodeClassSpec{Role: role, InstanceProfile: profile}}
	nc.Name = name
	m.ec2[name] = nc
}

func (m *classMap) GetEC2NodeClass(_ context.Context, name string) (*rules.EC2NodeClass, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nc, ok := m.ec2[name]
	if !ok {
		return nil, false, nil
	}
	return nc.DeepCopyObject().(*rules.EC2NodeClass), true, nil
}

func (m *classMap) GetNodeClass(context.Context, string) (*rules.NodeClass, bool, error) {
	return nil, false, nil
}

// counterValue reads one counter of a vector; 0 when the series does not
// exist yet.
func counterValue(t *testing.T, vec *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	c, err := vec.GetMetricWithLabelValues(labels...)
	if err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
