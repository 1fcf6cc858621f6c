package authz_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// batchQuestions are questions of the controller role: PassRole of three
// node roles and two launch-style actions, all under one context, and one
// PassRole under another context.
func batchQuestions() (same []authz.Question, other authz.Question) {
	for _, r := range []string{demoNodeARN, adminNodeARN, teamNodeARN} {
		same = append(same, authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: r, Context: toEC2})
	}
	same = append(same,
		authz.Question{Principal: controllerARN, Action: "iam:GetInstanceProfile", Resource: "arn:aws:iam::111122223333:instance-profile/x", Context: toEC2},
		authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: toEC2})
	other = authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN,
		Context: map[string][]string{"iam:PassedToService": {"eks.amazonaws.com"}}}
	return same, other
}

// TestLiveDecideAllBatches: questions sharing principal and context go to
// IAM as one SimulatePrincipalPolicy call naming every action and resource,
// and each answer is the one a call of its own gets; a question whose
// context differs is never merged.
func TestLiveDecideAllBatches(t *testing.T) {
	srv, client, snap := endpoint(t)
	live := authz.NewLive(client, authz.LiveOptions{})
	ctx := context.Background()
	same, other := batchQuestions()
	qs := append(append([]authz.Question(nil), same...), other)

	ds, errs := live.DecideAll(ctx, qs)
	if got := srv.Calls("SimulatePrincipalPolicy"); got != 2 {
		t.Errorf("%d SimulatePrincipalPolicy calls for %d questions under 2 contexts, want 2", got, len(qs))
	}
	for i, q := range qs {
		if errs[i] != nil {
			t.Fatalf("%s on %s: %v", q.Action, q.Resource, errs[i])
		}
		alone, err := live.Decide(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ds[i], alone) {
			t.Errorf("%s on %s: batched %+v, alone %+v", q.Action, q.Resource, ds[i], alone)
		}
		if want := authz.Evaluate(mustSet(t, snap, controllerARN), q); ds[i].Allowed != want.Allowed || ds[i].Explicit != want.Explicit {
			t.Errorf("%s on %s: batched allowed=%v explicit=%v, the evaluator says %v/%v", q.Action, q.Resource, ds[i].Allowed, ds[i].Explicit, want.Allowed, want.Explicit)
		}
	}
	if !ds[0].Allowed || ds[1].Allowed || !ds[1].Explicit {
		t.Errorf("PassRole of demo %+v and admin %+v: want allowed and explicitly denied", ds[0], ds[1])
	}
}

// TestCachedDecideAll: the cache keeps one answer per question, so a batch
// fills what single questions hit, a second batch asks nothing, concurrent
// identical batches share one call, and an unavailable IAM falls back to
// each question's stale answer.
func TestCachedDecideAll(t *testing.T) {
	srv, client, _ := endpoint(t)
	var (
		mu    sync.Mutex
		clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	cached := authz.NewCached(authz.NewLive(client, authz.LiveOptions{}), authz.CacheOptions{Now: now})
	ctx := context.Background()
	same, _ := batchQuestions()

	first, errs := cached.DecideAll(ctx, same)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Calls("SimulatePrincipalPolicy"); got != 1 {
		t.Fatalf("%d calls for one batch, want 1", got)
	}
	again, _ := cached.DecideAll(ctx, same)
	for i, q := range same {
		one, err := cached.Decide(ctx, q)
		if err != nil || !reflect.DeepEqual(one, first[i]) || !reflect.DeepEqual(again[i], first[i]) {
			t.Errorf("question %d: batch %+v, again %+v, single %+v (%v)", i, first[i], again[i], one, err)
		}
	}
	if got := srv.Calls("SimulatePrincipalPolicy"); got != 1 {
		t.Errorf("%d calls after hits, want 1", got)
	}

	// Concurrent callers missing the same questions share one call.
	cached.Purge()
	srv.ResetCalls()
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			cached.DecideAll(ctx, same)
		}()
	}
	for range 8 {
		<-done
	}
	if got := srv.Calls("SimulatePrincipalPolicy"); got != 1 {
		t.Errorf("%d calls for 8 concurrent identical batches, want 1", got)
	}

	// Past the TTL with IAM down: each question gets its own stale answer.
	mu.Lock()
	clock = clock.Add(10 * time.Minute)
	mu.Unlock()
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.Throttling, Action: "SimulatePrincipalPolicy", Always: true})
	stale, errs := cached.DecideAll(ctx, same)
	for i := range same {
		if errs[i] != nil || !stale[i].Stale || stale[i].Allowed != first[i].Allowed {
			t.Errorf("question %d: %+v (%v), want the stale answer", i, stale[i], errs[i])
		}
	}
	// Nothing cached: unavailable, not a verdict.
	fresh := authz.NewCached(authz.NewLive(client, authz.LiveOptions{}), authz.CacheOptions{})
	_, errs = fresh.DecideAll(ctx, same)
	for i, err := range errs {
		var u *authz.UnavailableError
		if !errors.As(err, &u) {
			t.Errorf("question %d: %v, want *UnavailableError", i, err)
		}
	}
}

func mustSet(t *testing.T, s *authz.Snapshot, arn string) authz.PolicySet {
	t.Helper()
	set, ok := s.PolicySet(arn)
	if !ok {
		t.Fatalf("no policies for %s", arn)
	}
	return set
}
