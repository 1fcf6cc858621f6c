package rules

import (
	"context"
	"strconv"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// Benchmarks of the rule path, the part of an admission nodeclass-guard
// adds over the cheapest webhook. `make bench` runs them with -benchmem;
// docs/benchmarks.md reads them next to the load harness's figures.

// benchClasses are the objects the benchmarks check: spec.role (the
// heaviest: eight IAM questions) and spec.instanceProfile (five), both
// admitted by the sample snapshot.
var benchClasses = []struct {
	name string
	spec EC2NodeClassSpec
}{
	{"role", EC2NodeClassSpec{Role: "KarpenterNodeRole-demo"}},
	{"instanceProfile", EC2NodeClassSpec{InstanceProfile: "KarpenterNodeInstanceProfile-demo"}},
}

// benchChecker is the Checker serve builds for the sample snapshot's
// cluster, over view.
func benchChecker(b *testing.B, view authz.View) *Checker {
	b.Helper()
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		b.Fatal(err)
	}
	return NewChecker(Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny})
}

// warmCache returns a Cached view over the sample snapshot holding every
// answer the benchmark classes need, as serve's cache holds them once warm.
func warmCache(b *testing.B) *authz.Cached {
	b.Helper()
	cached := authz.NewCached(loadSampleSnapshot(b), authz.CacheOptions{})
	c := benchChecker(b, cached)
	for _, bc := range benchClasses {
		nc := &EC2NodeClass{Spec: bc.spec}
		nc.Name = "default"
		if v := c.CheckEC2NodeClass(context.Background(), nc); !v.Allowed() {
			b.Fatalf("%s: denied while warming the cache: %s", bc.name, v.DenialMessage())
		}
	}
	return cached
}

// BenchmarkCheckEC2NodeClass measures the rules for one EC2NodeClass:
// against the Snapshot view (every question evaluated locally, as in
// `check --iam-snapshot`) and against a warm Cached view (every question a
// cache hit, serve's steady state).
func BenchmarkCheckEC2NodeClass(b *testing.B) {
	views := []struct {
		name string
		view func(*testing.B) authz.View
	}{
		{"snapshot", func(b *testing.B) authz.View { return loadSampleSnapshot(b) }},
		{"cached", func(b *testing.B) authz.View { return warmCache(b) }},
	}
	for _, v := range views {
		for _, bc := range benchClasses {
			b.Run(v.name+"/"+bc.name, func(b *testing.B) {
				c := benchChecker(b, v.view(b))
				nc := &EC2NodeClass{Spec: bc.spec}
				nc.Name = "default"
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if v := c.CheckEC2NodeClass(ctx, nc); !v.Allowed() {
						b.Fatalf("denied: %s", v.DenialMessage())
					}
				}
			})
		}
	}
}

// BenchmarkQuestionKey measures the cache key of a launch question, built
// on every cache lookup.
func BenchmarkQuestionKey(b *testing.B) {
	c := benchChecker(b, nil)
	q := authz.Question{Principal: c.ControllerARN(), Action: "ec2:CreateFleet",
		Resource: "arn:aws:ec2:us-west-2:111122223333:fleet/*",
		Context:  c.launchQuestions(class{name: "default"}).questions[0].Context}
	b.ReportAllocs()
	for b.Loop() {
		_ = q.Key()
	}
}

// BenchmarkCheckEC2NodeClassSelectors measures the selector rules' share of
// an admission: the example class (role, alias, subnet and security group
// tags) with warm IAM and EC2 caches, serve's steady state, against the
// same class without an EC2 view.
func BenchmarkCheckEC2NodeClassSelectors(b *testing.B) {
	snap := loadSampleSnapshot(b)
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		b.Fatal(err)
	}
	spec := EC2NodeClassSpec{
		Role:                       "KarpenterNodeRole-demo",
		AMISelectorTerms:           []SelectorTerm{{Alias: "al2023@latest"}},
		SubnetSelectorTerms:        []SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "demo"}}},
		SecurityGroupSelectorTerms: []SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "demo"}}},
	}
	for _, withEC2 := range []bool{false, true} {
		name := "iam-only"
		if withEC2 {
			name = "iam+ec2"
		}
		b.Run(name, func(b *testing.B) {
			cfg := Config{IAM: authz.NewCached(snap, authz.CacheOptions{}), Controller: ctl, ClusterName: testCluster, Region: testRegion,
				OnIAMError: OnIAMErrorDeny, KubernetesVersion: "1.34"}
			if withEC2 {
				cfg.EC2 = authz.NewCachedEC2(snap, authz.CacheOptions{})
			}
			c := NewChecker(cfg)
			nc := &EC2NodeClass{Spec: spec}
			if !withEC2 {
				nc.Spec = EC2NodeClassSpec{Role: spec.Role}
			}
			nc.Name = "default"
			ctx := context.Background()
			if v := c.CheckEC2NodeClass(ctx, nc); !v.Allowed() || len(v.Warnings) > 1 {
				b.Fatalf("warming: %v %v", v.Denials, v.Warnings)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.CheckEC2NodeClass(ctx, nc)
			}
		})
	}
}

// BenchmarkCheckNewEC2NodeClass measures the CPU of a class never seen
// before (a GitOps bootstrap's burst): the example class under a new name
// each time, its selectors' answers warm, its launch plan and permission
// questions new; the snapshot evaluates them locally, as the policy view
// does in serve.
func BenchmarkCheckNewEC2NodeClass(b *testing.B) {
	snap := loadSampleSnapshot(b)
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		b.Fatal(err)
	}
	c := NewChecker(Config{IAM: authz.NewCached(snap, authz.CacheOptions{}), EC2: authz.NewCachedEC2(snap, authz.CacheOptions{}),
		Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny, KubernetesVersion: "1.34"})
	spec := EC2NodeClassSpec{
		Role:                       "KarpenterNodeRole-demo",
		AMISelectorTerms:           []SelectorTerm{{Alias: "al2023@latest"}},
		SubnetSelectorTerms:        []SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "demo"}}},
		SecurityGroupSelectorTerms: []SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "demo"}}},
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		nc := &EC2NodeClass{Spec: spec}
		nc.Name = "new-" + strconv.Itoa(i)
		if v := c.CheckEC2NodeClass(ctx, nc); !v.Allowed() {
			b.Fatalf("denied: %v", v.Denials)
		}
	}
}
