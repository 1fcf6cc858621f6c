package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// TestEC2PagingCapped: an EC2 that pages DescribeImages without end (a
// {name: "*"} term in a large region). The budget is charged per page, the
// term is answered Truncated ("not checked") after MaxEC2Pages pages, and
// that answer is cached: the next admission costs no page.
func TestEC2PagingCapped(t *testing.T) {
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
	var pages atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := pages.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><imagesSet><item><imageId>ami-%017d</imageId><name>img</name><architecture>x86_64</architecture><imageState>available</imageState></item></imagesSet><nextToken>page-%d</nextToken></DescribeImagesResponse>`, n, n)
	}))
	t.Cleanup(ts.Close)
	ctx := context.Background()
	ec2c, err := authz.NewEC2Client(ctx, "us-west-2", ts.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := authz.NewMetrics()
	view := authz.NewCachedEC2(authz.NewBudgetedEC2(authz.NewEC2Live(ec2c, nil, authz.LiveOptions{Metrics: m}),
		authz.BudgetOptions{Rate: 100, Burst: 100, Metrics: m}), authz.CacheOptions{Metrics: m})
	q := authz.EC2Query{Resource: authz.EC2Images, Filters: []authz.Filter{{Name: "name", Values: []string{"*"}}}, Owners: []string{"self"}}
	for i := range 3 {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := view.Describe(actx, q)
		cancel()
		if err != nil {
			t.Fatalf("admission %d: %v", i, err)
		}
		if r.Truncated != authz.MaxEC2Pages || r.Len() != 0 {
			t.Fatalf("admission %d: Truncated %d with %d images, want %d and none held", i, r.Truncated, r.Len(), authz.MaxEC2Pages)
		}
	}
	if got := pages.Load(); got != authz.MaxEC2Pages {
		t.Errorf("%d pages asked for three admissions, want %d: the truncated answer is cached", got, authz.MaxEC2Pages)
	}
	if got := gaugeValue(m.Budget.WithLabelValues("EC2", "spent")); got != authz.MaxEC2Pages {
		t.Errorf("EC2 budget spent %v tokens, want one per page (%d)", got, authz.MaxEC2Pages)
	}
}
