package authz

import (
	"context"
	"strconv"
	"testing"
)

// Benchmarks of the cache in front of IAM, which every admission's
// questions go through. `make bench` runs them with -benchmem.

// benchLaunchQuestion is the heaviest question the rules ask: a launch
// permission with Karpenter's request tags for class.
func benchLaunchQuestion(class string) Question {
	return Question{
		Principal: "arn:aws:iam::111122223333:role/KarpenterControllerRole",
		Action:    "ec2:CreateFleet",
		Resource:  "arn:aws:ec2:us-west-2:111122223333:fleet/*",
		Context: map[string][]string{
			"aws:RequestTag/kubernetes.io/cluster/demo":     {"owned"},
			"aws:RequestTag/eks:eks-cluster-name":           {"demo"},
			"aws:RequestTag/karpenter.sh/nodepool":          {class},
			"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": {class},
			"aws:TagKeys":         {"kubernetes.io/cluster/demo", "eks:eks-cluster-name", "karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"},
			"aws:RequestedRegion": {"us-west-2"},
		},
	}
}

// benchAllowAll answers every question allowed, at no cost: the benchmarks
// measure the cache alone.
type benchAllowAll struct{}

func (benchAllowAll) Role(context.Context, string) (Role, error) {
	return Role{Name: "r", Path: "/"}, nil
}
func (benchAllowAll) InstanceProfile(context.Context, string) (InstanceProfile, error) {
	return InstanceProfile{Name: "p", Path: "/"}, nil
}
func (benchAllowAll) Decide(context.Context, Question) (Decision, error) {
	return Decision{Allowed: true}, nil
}

// BenchmarkCachedDecideHit is serve's steady state: the answer is cached.
func BenchmarkCachedDecideHit(b *testing.B) {
	c := NewCached(benchAllowAll{}, CacheOptions{Metrics: NewMetrics()})
	q := benchLaunchQuestion("default")
	ctx := context.Background()
	if _, err := c.Decide(ctx, q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decide(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedDecideMiss is a class never seen before with the cache at
// its bound: a miss, one inner call, an insertion and an eviction.
func BenchmarkCachedDecideMiss(b *testing.B) {
	c := NewCached(benchAllowAll{}, CacheOptions{Size: 4096, Metrics: NewMetrics()})
	ctx := context.Background()
	for i := range 4096 {
		if _, err := c.Decide(ctx, benchLaunchQuestion("fill-"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	qs := make([]Question, 1<<16)
	for i := range qs {
		qs[i] = benchLaunchQuestion("class-" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Decide(ctx, qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if c.Len() > 4096 {
		b.Fatalf("the cache holds %d answers, over its bound 4096", c.Len())
	}
}

// BenchmarkQuestionKey is the cache key, built on every lookup.
func BenchmarkQuestionKey(b *testing.B) {
	q := benchLaunchQuestion("default")
	b.ReportAllocs()
	for b.Loop() {
		_ = q.Key()
	}
}
