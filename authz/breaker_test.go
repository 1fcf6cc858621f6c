package authz_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

func gaugeValue(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.GetCounter().GetValue()
}

// TestBreakerDroppingEndpoints: with EC2, SSM and EKS endpoints that
// accept and never answer, the first question of each waits for its call
// to time out; after that, the service is remembered as unreachable and
// every question is answered at once, unavailable, without a connection
// (the calls are counted); the budget spent no token on them; the metrics
// say so.
func TestBreakerDroppingEndpoints(t *testing.T) {
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	drop, err := iamserver.NewDropping()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop.Close)
	url, conns := drop.URL(), drop
	ctx := context.Background()
	const callTimeout = 300 * time.Millisecond
	ec2c, err := authz.NewEC2Client(ctx, "us-west-2", url, callTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ssmc, err := authz.NewSSMClient(ctx, "us-west-2", url, callTimeout)
	if err != nil {
		t.Fatal(err)
	}
	eksc, err := authz.NewEKSClient(ctx, "us-west-2", url, callTimeout)
	if err != nil {
		t.Fatal(err)
	}
	m := authz.NewMetrics()
	var clock atomic.Int64 // the breakers' clock, moved by the test
	clock.Store(time.Now().UnixNano())
	opts := authz.CacheOptions{Timeout: callTimeout, Metrics: m, Breaker: authz.BreakerOptions{Min: time.Minute,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }}}
	ec2 := authz.NewCachedEC2(authz.NewBudgetedEC2(authz.NewEC2Live(ec2c, ssmc, authz.LiveOptions{Metrics: m}),
		authz.BudgetOptions{Rate: 1, Burst: 4, Metrics: m}), opts)
	eks := authz.NewCachedEKS(authz.NewEKSLive(eksc, authz.LiveOptions{Metrics: m}), opts)

	ask := func(i int) []error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, e1 := ec2.Describe(actx, authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "subnet-id", Values: []string{"subnet-" + string(rune('a'+i%26))}}}})
		_, e2 := ec2.Parameter(actx, "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id")
		_, e3 := eks.Cluster(actx, "demo")
		return []error{e1, e2, e3}
	}
	// The first round: each service's call runs to its timeout.
	for _, err := range ask(0) {
		if !authz.IsUnavailable(err) {
			t.Fatalf("first round: %v, want unavailable", err)
		}
	}
	// Wait for the calls to end (they outlive the admission's share).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && gaugeValue(m.ServiceDown.WithLabelValues("EC2"))+gaugeValue(m.ServiceDown.WithLabelValues("SSM"))+gaugeValue(m.ServiceDown.WithLabelValues("EKS")) < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	for _, svc := range []string{"EC2", "SSM", "EKS"} {
		if got := gaugeValue(m.ServiceDown.WithLabelValues(svc)); got != 1 {
			t.Fatalf("service_down{%s} = %v after a dropped call, want 1", svc, got)
		}
	}
	before := conns.Accepted()
	const warm = 200
	for i := 1; i <= warm; i++ {
		for _, err := range ask(i) {
			if !errors.Is(err, authz.ErrServiceDown) {
				t.Fatalf("warm round %d: %v, want ErrServiceDown", i, err)
			}
		}
	}
	if got := conns.Accepted() - before; got != 0 {
		t.Errorf("%d connections during %d warm rounds; want none: the breaker answers", got, warm)
	}
	for _, svc := range []string{"EC2", "SSM", "EKS"} {
		if got := gaugeValue(m.ShortCircuited.WithLabelValues(svc)); got != warm {
			t.Errorf("short_circuited{%s} = %v, want %d", svc, got, warm)
		}
	}
	// The interval ends: the next question of each service is answered at
	// once as well, and its call, the probe, goes on for the admissions
	// after it: one connection per service.
	clock.Add(int64(2 * time.Minute))
	before = conns.Accepted()
	for _, err := range ask(0) {
		if !errors.Is(err, authz.ErrServiceDown) {
			t.Fatalf("probe round: %v, want ErrServiceDown", err)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && conns.Accepted()-before < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	if got := conns.Accepted() - before; got != 3 {
		t.Errorf("%d connections for the probes, want 3 (EC2, SSM, EKS)", got)
	}
	// The calls that reached no one gave their tokens back: the first
	// Describe and GetParameter, then their probes.
	spent := func() float64 { return gaugeValue(m.Budget.WithLabelValues("EC2", "spent")) }
	refunded := func() float64 { return gaugeValue(m.Budget.WithLabelValues("EC2", "refunded")) }
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && refunded() < 4 {
		time.Sleep(20 * time.Millisecond)
	}
	if spent() != 4 || refunded() != 4 {
		t.Errorf("EC2 budget: spent %v, refunded %v; want 4 and 4 (a Describe and a GetParameter, twice, all dropped)", spent(), refunded())
	}
}

// BenchmarkWarmAdmissionDroppedServices measures a warm admission's
// questions to EC2, SSM and EKS while all three drop connections: the
// breaker answers them.
func BenchmarkWarmAdmissionDroppedServices(b *testing.B) {
	b.Setenv("AWS_ACCESS_KEY_ID", iamserver.TestAccessKeyID)
	b.Setenv("AWS_SECRET_ACCESS_KEY", iamserver.TestSecretAccessKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	url := "http://" + l.Addr().String()
	ctx := context.Background()
	ec2c, _ := authz.NewEC2Client(ctx, "us-west-2", url, 200*time.Millisecond)
	ssmc, _ := authz.NewSSMClient(ctx, "us-west-2", url, 200*time.Millisecond)
	opts := authz.CacheOptions{Timeout: 200 * time.Millisecond, Breaker: authz.BreakerOptions{Min: time.Hour}}
	ec2 := authz.NewCachedEC2(authz.NewEC2Live(ec2c, ssmc, authz.LiveOptions{}), opts)
	q := authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "tag:k", Values: []string{"v"}}}}
	_, _ = ec2.Describe(ctx, q)
	time.Sleep(300 * time.Millisecond)
	b.ResetTimer()
	for b.Loop() {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := ec2.Describe(actx, q); !errors.Is(err, authz.ErrServiceDown) {
			b.Fatal(err)
		}
		cancel()
	}
}
