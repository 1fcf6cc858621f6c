package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The judges are pure functions of the answers: these tests hand them
// answers directly, with no view at all.

func judgeChecker(t *testing.T) *Checker {
	t.Helper()
	return NewChecker(Config{Controller: mustRoleARN(t, ctlKarpenter), ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny})
}

func TestJudgeRoleOnAnswers(t *testing.T) {
	c := judgeChecker(t)
	ref := RoleRef{Name: "R", Path: "/a/"}
	for _, tc := range []struct {
		name  string
		a     Answer
		found bool
		deny  []Code
		unav  int
	}{
		{"missing", Answer{Err: &authz.NotFoundError{Kind: "role", Name: "R"}}, false, codes(RoleNotFound), 0},
		{"unavailable", Answer{Err: &authz.UnavailableError{Op: "GetRole", Err: errors.New("boom")}}, false, nil, 1},
		{"other path, no trust", Answer{Role: authz.Role{Name: "R", Path: "/b/", ARN: "arn:aws:iam::111122223333:role/b/R"}}, true,
			codes(RolePathMismatch, RoleTrustMissingEC2), 0},
	} {
		var v Verdict
		var n notes
		if got := c.judgeRole(&v, &n, ref, tc.a); got != tc.found {
			t.Errorf("%s: found = %v", tc.name, got)
		}
		if got := findingCodes(v.Denials); !slices.Equal(got, tc.deny) || len(n.unavail) != tc.unav {
			t.Errorf("%s: denials %v, %d unavailable; want %v, %d", tc.name, got, len(n.unavail), tc.deny, tc.unav)
		}
	}
}

func TestJudgePermissionsOnAnswers(t *testing.T) {
	c := judgeChecker(t)
	p := c.launchQuestions(class{name: "x"})
	as := make([]Answer, len(p.questions))
	for i := range as {
		as[i] = Answer{Decision: authz.Decision{Allowed: true}}
	}
	fleet := slices.IndexFunc(p.questions, func(q authz.Question) bool { return q.Action == "ec2:CreateFleet" })
	as[fleet] = Answer{Decision: authz.Decision{DeniedBy: authz.Denier{Source: authz.DeniedByBoundary}}}
	as[len(as)-1] = Answer{Decision: authz.Decision{Allowed: true, Served: authz.Served{Stale: true, Age: 3 * time.Minute}}}
	var n notes
	fs := c.judgeLaunch(&n, class{name: "x"}, p, as)
	if len(fs) != 1 || fs[0].Code != LaunchDenied || fs[0].DeniedBy != DeniedByBoundary ||
		len(fs[0].Requests) != 1 || fs[0].Requests[0].Action != "ec2:CreateFleet" || !strings.Contains(fs[0].Message, "in the permissions boundary as well") ||
		!strings.Contains(fs[0].Message, "may not ec2:CreateFleet on fleet/* in arn:aws:ec2:us-west-2:111122223333, which Karpenter 1.15 asks when it launches a node") {
		t.Fatalf("findings %+v", fs)
	}
	// Unavailable and stale answers are noted once, for the whole object.
	as[0] = Answer{Err: &authz.UnavailableError{Op: "SimulatePrincipalPolicy", Err: errors.New("throttled")}}
	n = notes{}
	c.judgeLaunch(&n, class{name: "x"}, p, as)
	prof, pq := c.profileActionQuestions(class{name: "x"})
	c.judgeProfileActions(&n, class{name: "x"}, prof, pq[:1], as[:1])
	var v Verdict
	o := &subject{}
	n.report(&v, OnIAMErrorDeny, &o.stale)
	staleRule.Finish(c, o, &v)
	if got := v.Codes(); !slices.Equal(got, []string{string(IAMUnavailable), string(IAMStale)}) {
		t.Errorf("codes %v, want one IAMUnavailable and one IAMStale", got)
	}
}
