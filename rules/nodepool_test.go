package rules

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// deadlineView is a View that records the deadline of every question's
// context: the deadlines one admission's questions ran under.
type deadlineView struct {
	authz.View
	mu        sync.Mutex
	deadlines map[time.Time]int
	unbounded int
}

func (d *deadlineView) note(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		d.deadlines[dl]++
	} else {
		d.unbounded++
	}
}

func (d *deadlineView) Role(ctx context.Context, name string) (authz.Role, error) {
	d.note(ctx)
	return d.View.Role(ctx, name)
}

func (d *deadlineView) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	d.note(ctx)
	return d.View.InstanceProfile(ctx, name)
}

func (d *deadlineView) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	d.note(ctx)
	return d.View.Decide(ctx, q)
}

// TestNodePoolAdmissionHasOneDeadline: a NodePool admission asks its
// class's questions and its spot questions under one deadline, the
// --iam-timeout of the admission, not one each (a cold class used to
// leave the spot check a fresh --iam-timeout after its own ran out).
func TestNodePoolAdmissionHasOneDeadline(t *testing.T) {
	view := &deadlineView{View: loadSampleSnapshot(t), deadlines: map[time.Time]int{}}
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion,
		OnIAMError: OnIAMErrorDeny, Classes: testClasses(), IAMTimeout: time.Hour})
	np := nodePool("spot", refEC2("default"))
	np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "In", Values: []string{"spot"}}}
	for _, check := range []struct {
		name string
		run  func() Verdict
	}{
		{"create", func() Verdict { return c.CheckNodePool(context.Background(), np) }},
		{"requirements update", func() Verdict {
			return c.CheckNodePoolUpdate(context.Background(), nodePool("spot", refEC2("default")), np)
		}},
	} {
		view.deadlines, view.unbounded = map[time.Time]int{}, 0
		v := check.run()
		if !v.Allowed() {
			t.Fatalf("%s: %s", check.name, v.DenialMessage())
		}
		if len(view.deadlines) != 1 || view.unbounded != 0 {
			t.Errorf("%s: questions ran under %d deadlines (%v) and %d without one, want all under one", check.name, len(view.deadlines), view.deadlines, view.unbounded)
		}
		spot := 0
		for _, n := range view.deadlines {
			spot += n
		}
		if spot < 2 {
			t.Errorf("%s: %d questions asked, want the class's and the spot role's", check.name, spot)
		}
	}
}

// TestNodePoolRequirementsUpdateRefusesOnlyWhatTheyBreak: a NodePool
// naming a broken class is refused on create; an update of its
// requirements alone is not refused for what the requirements do not
// decide: the class's findings come back as a warning saying so.
func TestNodePoolRequirementsUpdateRefusesOnlyWhatTheyBreak(t *testing.T) {
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(Config{IAM: loadSampleSnapshot(t), Controller: ctl, ClusterName: testCluster, Region: testRegion,
		OnIAMError: OnIAMErrorDeny, Classes: testClasses()})
	old := nodePool("broken", refEC2("notrust"))
	np := nodePool("broken", refEC2("notrust"))
	np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"arm64"}}}
	if v := c.CheckNodePool(context.Background(), np); v.Allowed() {
		t.Fatalf("create: a NodePool naming a class without EC2 trust allowed: %v", v.WarningLines())
	}
	v := c.CheckNodePoolUpdate(context.Background(), old, np)
	if !v.Allowed() {
		t.Fatalf("requirements-only update refused: %s", v.DenialMessage())
	}
	found := false
	for _, f := range v.Warnings {
		if f.Code == NodeClassInvalid && strings.HasPrefix(f.Message, "("+requirementsOnly+") ") {
			found = true
		}
	}
	if !found {
		t.Errorf("no NodeClassInvalid warning saying the update is not refused for it: %v", v.WarningLines())
	}
	// A nodeClassRef change is a create.
	moved := nodePool("broken", refEC2("default"))
	if v := c.CheckNodePoolUpdate(context.Background(), moved, np); v.Allowed() {
		t.Errorf("nodeClassRef change to a broken class allowed: %v", v.WarningLines())
	}
}
