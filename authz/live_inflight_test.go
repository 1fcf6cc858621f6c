package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// slowIAM answers SimulatePrincipalPolicy with an allow for every action
// and resource asked, after hold, counting the calls in flight.
type slowIAM struct {
	hold          time.Duration
	inFlight, max atomic.Int32
}

func (s *slowIAM) GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	return nil, errors.New("not used")
}

func (s *slowIAM) GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	return nil, errors.New("not used")
}

func (s *slowIAM) SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, _ ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.max.Load()
		if n <= m || s.max.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(s.hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := &iam.SimulatePrincipalPolicyOutput{}
	for _, a := range in.ActionNames {
		for _, r := range in.ResourceArns {
			out.EvaluationResults = append(out.EvaluationResults, types.EvaluationResult{
				EvalActionName: aws.String(a), EvalResourceName: aws.String(r), EvalDecision: types.PolicyEvaluationDecisionTypeAllowed})
		}
	}
	return out, nil
}

// inflightQuestions are n questions with n distinct contexts: n calls.
func inflightQuestions(n int) []Question {
	qs := make([]Question, n)
	for i := range qs {
		qs[i] = liveQ
		qs[i].Context = map[string][]string{"aws:RequestTag/n": {fmt.Sprint(i)}}
	}
	return qs
}

// TestLiveBoundsCallsInFlight: however many batches are asked at once,
// at most MaxInFlight IAM calls are in flight; the rest wait their turn
// and are answered.
func TestLiveBoundsCallsInFlight(t *testing.T) {
	client := &slowIAM{hold: 20 * time.Millisecond}
	l := NewLive(client, LiveOptions{MaxInFlight: 3})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ds, errs := l.DecideAll(context.Background(), inflightQuestions(5))
			for i := range ds {
				if errs[i] != nil || !ds[i].Allowed {
					t.Errorf("question %d: %+v, %v", i, ds[i], errs[i])
				}
			}
		})
	}
	wg.Wait()
	if got := client.max.Load(); got != 3 {
		t.Errorf("at most %d calls were in flight at once, want 3 (the bound, reached)", got)
	}
}

// TestLiveSlotWaitEndsWithTheCaller: a call waiting for a slot past its
// caller's deadline is "could not check", never a pass, and never holds a
// slot.
func TestLiveSlotWaitEndsWithTheCaller(t *testing.T) {
	client := &slowIAM{hold: time.Second}
	l := NewLive(client, LiveOptions{MaxInFlight: 1})
	busy, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = l.Decide(busy, liveQ) // holds the only slot
	}()
	for client.inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := l.Decide(ctx, inflightQuestions(1)[0])
	if !IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past the deadline: %v, want UnavailableError with the deadline", err)
	}
	stop()
	<-done
	if got := len(l.slots); got != 0 {
		t.Errorf("%d slots still taken after every call ended", got)
	}
}
