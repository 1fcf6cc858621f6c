package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// costCenterSCP is the organization scenario's SCP: AWS's default allow,
// and no instance launched without a cost-center tag.
const costCenterSCP = `{"Version":"2012-10-17","Statement":[
  {"Sid":"FullAWSAccess","Effect":"Allow","Action":"*","Resource":"*"},
  {"Sid":"RequireCostCenter","Effect":"Deny","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*:*:instance/*",
   "Condition":{"Null":{"aws:RequestTag/cost-center":"true"}}}]}`

// orgResult is the organization scenario's figures.
type orgResult struct {
	classes, denials, denialsFound int
	iamCalls                       int
	callsByAction                  map[string]int
	burst                          bench.Latencies
}

func (r orgResult) figures() string {
	return fmt.Sprintf("org_iam_calls=%d org_iam_calls_per_class=%.2f org_p99_ms=%.1f org_scp_denials=%d/%d",
		r.iamCalls, float64(r.iamCalls)/float64(r.classes), bench.Ms(r.burst.P99), r.denialsFound, r.denials)
}

// orgScenario is the cold burst again, in an account in an organization
// whose SCP denies launching an instance without a cost-center tag: every
// other class lacks it, and must be denied (the SCP's denial found
// through SimulatePrincipalPolicy), the others allowed.
func (h *harness) orgScenario(ctx context.Context) (orgResult, error) {
	res := orgResult{callsByAction: map[string]int{}}
	pol, err := authz.ParsePolicy([]byte(costCenterSCP))
	if err != nil {
		return res, err
	}
	h.iam.SetOrganization(&authz.Organization{SCPs: []authz.NamedPolicy{{Name: "arn:aws:organizations::111122223333:policy/o-example/service_control_policy/p-costcenter", Policy: pol}}})
	defer h.iam.SetOrganization(nil)

	serve, proc, err := h.startServe(ctx, "serve-org", h.c.coldAdmissions, false)
	if err != nil {
		return res, err
	}
	cs := classes("org", h.c.coldClasses)
	byClass := make([]bench.Request, len(cs))
	for i := range cs {
		cs[i].NoCostCenter = i%2 == 1
		byClass[i] = bench.Request{Body: bench.ReviewBody(cs[i], fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), Allowed: !cs[i].NoCostCenter, Check: true}
		if cs[i].NoCostCenter {
			res.denials++
		}
	}
	reqs := make([]bench.Request, h.c.coldAdmissions)
	for i := range reqs {
		reqs[i] = byClass[i%len(byClass)]
	}
	// Connections open first, as in the cold scenario (format-only
	// denials, no IAM call).
	formatOnly := make([]bench.Request, h.c.coldAdmissions)
	for i := range formatOnly {
		c := bench.Class{Name: fmt.Sprintf("format-%06d", i), Role: nodeRole, InstanceProfile: "KarpenterNodeInstanceProfile-demo"}
		formatOnly[i] = bench.Request{Body: bench.ReviewBody(c, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), Allowed: false, Check: true}
	}
	if err := bench.Burst(ctx, serve, formatOnly).Failed(); err != nil {
		return res, fmt.Errorf("opening connections: %w", err)
	}
	h.iam.ResetCalls()
	h.iam.SetLatency(h.c.coldLatency)
	defer h.iam.SetLatency(0)
	h.logf("org: %d concurrent admissions over %d classes (%d without cost-center), SCP requiring the tag, fresh serve (pid %d), IAM latency %s",
		len(reqs), len(cs), res.denials, serve.PID, h.c.coldLatency)
	run := bench.Burst(ctx, serve, reqs)
	if err := run.Failed(); err != nil {
		h.logf("org: IAM calls %d (%s), %.2f per class", h.iam.TotalCalls(), byAction(callsOf(h)), float64(h.iam.TotalCalls())/float64(len(cs)))
		return res, fmt.Errorf("org burst (a wrong verdict means an SCP denial missed or invented): %w", err)
	}
	res.denialsFound = res.denials // every verdict was checked
	res.burst = bench.Summarize(run.Latencies)
	res.classes = len(cs)
	res.iamCalls = h.iam.TotalCalls()
	for _, a := range iamActions {
		if n := h.iam.Calls(a); n > 0 {
			res.callsByAction[a] = n
		}
	}
	h.logf("org: burst %s; IAM calls %d (%s), %.2f per class; SCP denials found %d of %d",
		res.burst, res.iamCalls, byAction(res.callsByAction), float64(res.iamCalls)/float64(res.classes), res.denialsFound, res.denials)
	serve.Client.CloseIdleConnections()
	return res, proc.Stop(10 * time.Second)
}

// callsOf returns the local IAM endpoint's calls by action.
func callsOf(h *harness) map[string]int {
	out := map[string]int{}
	for _, a := range iamActions {
		if n := h.iam.Calls(a); n > 0 {
			out[a] = n
		}
	}
	return out
}
