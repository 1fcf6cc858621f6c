package webhook

import (
	"context"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// priorityView counts the questions asked with and without priority.
type priorityView struct {
	authz.View
	prio, plain atomic.Int64
}

func (p *priorityView) note(ctx context.Context) {
	if authz.IsPriority(ctx) {
		p.prio.Add(1)
	} else {
		p.plain.Add(1)
	}
}

func (p *priorityView) Role(ctx context.Context, name string) (authz.Role, error) {
	p.note(ctx)
	return p.View.Role(ctx, name)
}

func (p *priorityView) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	p.note(ctx)
	return p.View.InstanceProfile(ctx, name)
}

func (p *priorityView) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	p.note(ctx)
	return p.View.Decide(ctx, q)
}

// knownClasses is testClasses that also knows NodePools, by name and UID.
type knownClasses struct {
	mapClasses
	pools map[string]types.UID
}

func (k knownClasses) Has(_ context.Context, obj client.Object) bool {
	switch o := obj.(type) {
	case *rules.NodePool:
		uid, ok := k.pools[o.Name]
		return ok && o.UID != "" && uid == o.UID
	case *rules.EC2NodeClass:
		nc, ok := k.ec2[o.Name]
		return ok && o.UID != "" && nc.UID == o.UID
	}
	return false
}

// TestPriorityOnlyForObjectsTheClusterHas: the IAM priority lane is the
// adapter's to give, to an object the cluster has by name and UID; a
// NodePool naming an existing class, or a forged name, is a new question.
func TestPriorityOnlyForObjectsTheClusterHas(t *testing.T) {
	view := &priorityView{View: loadSampleSnapshot(t)}
	classes := knownClasses{mapClasses: testClasses(), pools: map[string]types.UID{"existing": "uid-1"}}
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		t.Fatal(err)
	}
	c := rules.NewChecker(rules.Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion, Classes: classes})
	a := &adapter{checker: c, metrics: NewMetrics()}
	pools := &validator[*rules.NodePool]{adapter: a, kind: rules.NodePoolKind, check: c.CheckNodePool, checkUpdate: c.CheckNodePoolUpdate}
	for _, tc := range []struct {
		name     string
		pool     string
		uid      types.UID
		priority bool
	}{
		{"new NodePool naming an existing class", "anon", "", false},
		{"existing NodePool's name with another UID", "existing", "forged", false},
		{"existing NodePool's name without a UID", "existing", "", false},
		{"the existing NodePool", "existing", "uid-1", true},
	} {
		view.prio.Store(0)
		view.plain.Store(0)
		np := pool(tc.pool, "default")
		np.UID = tc.uid
		old := pool(tc.pool, "other")
		old.UID = tc.uid
		if _, err := pools.ValidateUpdate(context.Background(), old, np); err != nil && view.prio.Load()+view.plain.Load() == 0 {
			t.Fatalf("%s: %v", tc.name, err)
		}
		prio, plain := view.prio.Load(), view.plain.Load()
		if prio+plain == 0 {
			t.Fatalf("%s: no IAM question asked", tc.name)
		}
		if tc.priority && plain != 0 || !tc.priority && prio != 0 {
			t.Errorf("%s: %d questions with priority, %d without; want priority %v", tc.name, prio, plain, tc.priority)
		}
	}
}

// pool is a v1 NodePool named name whose nodeClassRef names the
// EC2NodeClass class.
func pool(name, class string) *rules.NodePool {
	np := &rules.NodePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: "karpenter.sh/v1", Kind: rules.NodePoolKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
	np.Spec.Template.Spec.NodeClassRef = &rules.NodeClassReference{Group: rules.KarpenterAWSGroup, Kind: rules.EC2NodeClassKind, Name: class}
	return np
}
