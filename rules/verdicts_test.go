package rules

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// failingRoles answers every GetRole as IAM unreachable.
type failingRoles struct{ *countingView }

func (f failingRoles) Role(ctx context.Context, name string) (authz.Role, error) {
	f.n++
	return authz.Role{}, &authz.UnavailableError{Op: "GetRole", Err: errors.New("connection refused")}
}

// TestVerdictCache: a replayed object gets its verdict again without a
// question; a change counted, another spec, the TTL's end, or a verdict
// judged from an answer IAM could not give, each has it judged again.
func TestVerdictCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	changes := &authz.Changes{}
	view := &countingView{View: loadSampleSnapshot(t)}
	c := NewChecker(Config{IAM: view, Controller: testCtl(t), ClusterName: testCluster, Region: testRegion,
		VerdictTTL: 30 * time.Second, Changes: changes, Now: func() time.Time { return now }})

	good := ec2Class("replayed", "KarpenterNodeRole-demo", "")
	first := c.CheckEC2NodeClass(ctx, good)
	asked := view.n
	if asked == 0 {
		t.Fatal("the first admission asked nothing")
	}
	again := c.CheckEC2NodeClass(ctx, good)
	if view.n != asked || c.VerdictHits() != 1 {
		t.Fatalf("the replay asked %d questions (hits %d), want 0 and a kept verdict", view.n-asked, c.VerdictHits())
	}
	if again.Allowed() != first.Allowed() || len(again.Warnings) != len(first.Warnings) || again.IAMTime != 0 {
		t.Errorf("kept verdict %+v differs from the first %+v", again, first)
	}
	// A caller rewriting a message does not touch the kept verdict.
	if len(again.Warnings) > 0 {
		again.Warnings[0].Message = "rewritten"
		if v := c.CheckEC2NodeClass(ctx, good); v.Warnings[0].Message == "rewritten" {
			t.Error("a caller's rewrite reached the kept verdict")
		}
	}

	// Another spec is another object.
	bad := ec2Class("replayed", "NoSuchRole", "")
	if v := c.CheckEC2NodeClass(ctx, bad); v.Allowed() {
		t.Fatalf("a missing role was admitted: %+v", v)
	}
	// A change of an answer or a watched object: judged again.
	asked = view.n
	changes.Add()
	c.CheckEC2NodeClass(ctx, good)
	if view.n == asked {
		t.Error("after a change the verdict was served again without asking")
	}
	// The TTL's end: judged again.
	asked = view.n
	now = now.Add(31 * time.Second)
	c.CheckEC2NodeClass(ctx, good)
	if view.n == asked {
		t.Error("past VerdictTTL the verdict was served again without asking")
	}

	// "Could not check" is never kept.
	down := &countingView{View: loadSampleSnapshot(t)}
	c = NewChecker(Config{IAM: failingRoles{down}, Controller: testCtl(t), ClusterName: testCluster, Region: testRegion,
		VerdictTTL: 30 * time.Second, Changes: changes, Now: func() time.Time { return now }})
	for range 2 {
		c.CheckEC2NodeClass(ctx, good)
	}
	if c.VerdictHits() != 0 {
		t.Errorf("a verdict judged while IAM was unreachable was served again (%d hits)", c.VerdictHits())
	}

	// No TTL, no cache (check).
	c = NewChecker(Config{IAM: view, Controller: testCtl(t), ClusterName: testCluster, Region: testRegion})
	asked = view.n
	c.CheckEC2NodeClass(ctx, good)
	c.CheckEC2NodeClass(ctx, good)
	if c.VerdictHits() != 0 || view.n == asked {
		t.Error("a Checker without VerdictTTL kept a verdict")
	}
}

// TestChangesCountChangedAnswers: the caches move Changes when an answer
// asked again differs from the one held, not when it is the same.
func TestChangesCountChangedAnswers(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	changes := &authz.Changes{}
	inner := &roleStore{roles: map[string]authz.Role{"r": {Name: "r", ARN: "arn:aws:iam::111122223333:role/r"}}}
	cached := authz.NewCached(inner, authz.CacheOptions{TTL: time.Minute, Changes: changes, Now: func() time.Time { return now }})
	if _, err := cached.Role(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if changes.Count() != 0 {
		t.Fatalf("a first answer counted as a change")
	}
	now = now.Add(2 * time.Minute)
	cached.Role(ctx, "r")
	if changes.Count() != 0 {
		t.Fatalf("the same answer asked again counted as a change")
	}
	inner.roles["r"] = authz.Role{Name: "r", ARN: "arn:aws:iam::111122223333:role/team/r"}
	now = now.Add(2 * time.Minute)
	cached.Role(ctx, "r")
	if changes.Count() != 1 {
		t.Fatalf("a changed answer counted %d changes, want 1", changes.Count())
	}
	delete(inner.roles, "r")
	now = now.Add(2 * time.Minute)
	cached.Role(ctx, "r")
	if changes.Count() != 2 {
		t.Fatalf("a role gone counted %d changes, want 2", changes.Count())
	}
}

// roleStore is a View of a map of roles; every other question is not found.
type roleStore struct {
	authz.View
	roles map[string]authz.Role
}

func (s *roleStore) Role(_ context.Context, name string) (authz.Role, error) {
	r, ok := s.roles[name]
	if !ok {
		return authz.Role{}, &authz.NotFoundError{Kind: "role", Name: name}
	}
	return r, nil
}
