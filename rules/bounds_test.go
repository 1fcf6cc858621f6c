package rules

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// countingView counts the IAM questions that reach it.
type countingView struct {
	authz.View
	n int
}

func (c *countingView) Role(ctx context.Context, name string) (authz.Role, error) {
	c.n++
	return c.View.Role(ctx, name)
}

func (c *countingView) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	c.n++
	return c.View.InstanceProfile(ctx, name)
}

func (c *countingView) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	c.n++
	return c.View.Decide(ctx, q)
}

func manyTags(n, keyLen, valueLen int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		k := fmt.Sprintf("k%07d", i)
		if keyLen > len(k) {
			k += strings.Repeat("k", keyLen-len(k))
		}
		m[k] = strings.Repeat("v", valueLen)
	}
	return m
}

func terms(n, tags int) []SelectorTerm {
	out := make([]SelectorTerm, n)
	for i := range out {
		out[i].Tags = manyTags(tags, 8, 4)
	}
	return out
}

// TestBounds: an object past a bound is refused with its code before any
// question is asked; one at the bound is judged as usual.
func TestBounds(t *testing.T) {
	snap := loadSampleSnapshot(t)
	const role = "KarpenterNodeRole-demo"
	withTags := func(tags map[string]string) *EC2NodeClass {
		nc := ec2Class("default", role, "")
		nc.Spec.Tags = tags
		return nc
	}
	withTerms := func(f func(*EC2NodeClassSpec)) *EC2NodeClass {
		nc := ec2Class("default", role, "")
		f(&nc.Spec)
		return nc
	}
	poolWith := func(n int) *NodePool {
		np := nodePool("p", refEC2("default"))
		for i := range n {
			np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements,
				NodeSelectorRequirement{Key: fmt.Sprintf("k%d", i), Operator: "In", Values: []string{"a"}})
		}
		return np
	}
	for _, tc := range []struct {
		name string
		obj  any
		want Code   // "" means within bounds
		msg  string // in the denial
	}{
		{"10,000 tags", withTags(manyTags(10000, 12, 8)), TagsExceedLimit, "at most 50 tags on a resource"},
		{"45 tags, 51 on an instance", withTags(manyTags(45, 12, 8)), TagsExceedLimit, "Keep spec.tags to 44 tags or fewer"},
		{"44 tags of the longest keys and values", withTags(manyTags(44, 128, 256)), "", ""},
		{"44 tags and Name", withTags(func() map[string]string { m := manyTags(44, 12, 8); m["Name"] = "n"; return m }()), "", ""},
		{"a key of 129 characters", withTags(manyTags(1, 129, 1)), TagsExceedLimit, "at most 128"},
		{"a value of 257 characters", withTags(manyTags(1, 12, 257)), TagsExceedLimit, "at most 256"},
		{"31 subnet terms", withTerms(func(s *EC2NodeClassSpec) { s.SubnetSelectorTerms = terms(31, 1) }), SpecExceedsLimit, "at most 30"},
		{"30 subnet terms of 20 tags", withTerms(func(s *EC2NodeClassSpec) { s.SubnetSelectorTerms = terms(30, 20) }), "", ""},
		{"21 tags in an AMI term", withTerms(func(s *EC2NodeClassSpec) { s.AMISelectorTerms = terms(1, 21) }), SpecExceedsLimit, "at most 20"},
		{"a term name of 3 KiB", withTerms(func(s *EC2NodeClassSpec) {
			s.SecurityGroupSelectorTerms = []SelectorTerm{{Name: strings.Repeat("n", 3072)}}
		}), SpecExceedsLimit, "3072 bytes"},
		{"51 block device mappings", withTerms(func(s *EC2NodeClassSpec) { s.BlockDeviceMappings = volumes(51, "alias/k") }), SpecExceedsLimit, "at most 50 (maxItems)"},
		{"50 block device mappings", withTerms(func(s *EC2NodeClassSpec) { s.BlockDeviceMappings = volumes(50, "") }), "", ""},
		{"a KMS key ID of 3 KiB", withTerms(func(s *EC2NodeClassSpec) { s.BlockDeviceMappings = volumes(1, "alias/"+strings.Repeat("k", 3072)) }), SpecExceedsLimit, "at most 2048"},
		{"101 requirements", poolWith(101), SpecExceedsLimit, "at most 100"},
		{"100 requirements", poolWith(100), "", ""},
		{"EKS NodeClass with 50 tags", &NodeClass{Spec: NodeClassSpec{Role: "EKSAutoNodeRole-demo", Tags: manyTags(50, 12, 8)}}, TagsExceedLimit, "Keep spec.tags to 49"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			view := &countingView{View: snap}
			c := NewChecker(Config{IAM: view, Controller: testCtl(t), ClusterName: testCluster, Region: testRegion, Classes: testClasses()})
			var v Verdict
			switch o := tc.obj.(type) {
			case *EC2NodeClass:
				v = c.CheckEC2NodeClass(context.Background(), o)
			case *NodePool:
				v = c.CheckNodePool(context.Background(), o)
			case *NodeClass:
				v = c.CheckNodeClass(context.Background(), o)
			}
			has := false
			for _, f := range v.Denials {
				if f.Code == TagsExceedLimit || f.Code == SpecExceedsLimit {
					has = true
					if f.Code != tc.want {
						t.Errorf("denied with %s, want %q: %s", f.Code, tc.want, f.DenialLine())
					}
					if !strings.Contains(f.Message, tc.msg) {
						t.Errorf("message %q lacks %q", f.Message, tc.msg)
					}
					if len(f.DenialLine()) > 600 {
						t.Errorf("denial of %d bytes", len(f.DenialLine()))
					}
				}
			}
			switch {
			case tc.want != "" && !has:
				t.Fatalf("not refused: %v", v.Codes())
			case tc.want != "" && (len(v.Denials) != 1 || view.n != 0):
				t.Errorf("refused with %v after %d IAM questions; want the one denial, nothing asked", v.Codes(), view.n)
			case tc.want == "" && has:
				t.Errorf("within bounds, refused: %v", v.Codes())
			}
		})
	}
}

// TestBoundsUpdate: an update's new object is bounded; an old object past
// the bounds (a class from before them) is not planned with, and does not
// block the update that fixes it.
func TestBoundsUpdate(t *testing.T) {
	view := &countingView{View: loadSampleSnapshot(t)}
	c := NewChecker(Config{IAM: view, Controller: testCtl(t), ClusterName: testCluster, Region: testRegion})
	good := ec2Class("default", "KarpenterNodeRole-demo", "")
	bad := ec2Class("default", "KarpenterNodeRole-demo", "")
	bad.Spec.Tags = manyTags(1000, 12, 8)
	v := c.CheckEC2NodeClassUpdate(context.Background(), good, bad)
	if len(v.Denials) != 1 || v.Denials[0].Code != TagsExceedLimit || !strings.Contains(v.Denials[0].Message, "spec.tags has 1000 tags") || view.n != 0 {
		t.Errorf("new tags past the bound: %v after %d questions, want one TagsExceedLimit, nothing asked", v.Denials, view.n)
	}
	v = c.CheckEC2NodeClassUpdate(context.Background(), bad, good)
	if !v.Allowed() {
		t.Errorf("an update removing the tags: %v, want it allowed", v.Denials)
	}
}

// TestLargestClassAllocation: the largest class the bounds let through
// (44 tags of the longest keys and values, 30 terms of 20 tags in each
// list) is judged with a bounded allocation, and its launch plan is not
// kept when it is past the cache's per-plan bound.
func TestLargestClassAllocation(t *testing.T) {
	c := NewChecker(Config{IAM: loadSampleSnapshot(t), Controller: testCtl(t), ClusterName: testCluster, Region: testRegion})
	nc := ec2Class("largest", "KarpenterNodeRole-demo", "")
	nc.Spec.Tags = manyTags(44, 128, 256)
	if fs := c.boundsEC2NodeClass(nc, nil); len(fs) != 0 {
		t.Fatalf("the largest class is out of bounds: %v", fs)
	}
	allocs := testing.AllocsPerRun(3, func() { c.CheckEC2NodeClass(context.Background(), nc) })
	var ms1, ms2 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	c.CheckEC2NodeClass(context.Background(), nc)
	runtime.ReadMemStats(&ms2)
	bytes := ms2.TotalAlloc - ms1.TotalAlloc
	t.Logf("largest class: %d bytes, %.0f allocations per admission; %d plans cached", bytes, allocs, c.plans.plans.Len())
	if bytes > 64<<20 {
		t.Errorf("one admission of the largest class allocated %d MiB", bytes>>20)
	}
}

func testCtl(t testing.TB) authz.RoleARN {
	t.Helper()
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

// volumes are n encrypted block device mappings; key, when set, is each
// one's KMS key ID with its index appended (distinct keys).
func volumes(n int, key string) []BlockDeviceMapping {
	out := make([]BlockDeviceMapping, n)
	for i := range out {
		enc := true
		out[i].EBS = &BlockDeviceEBS{Encrypted: &enc}
		if key != "" {
			k := fmt.Sprintf("%s%d", key, i)
			out[i].EBS.KMSKeyID = &k
		}
	}
	return out
}
