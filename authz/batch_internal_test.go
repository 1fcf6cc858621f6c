package authz

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// TestDecideAllReadsBothResultLayouts: IAM now answers several resources
// with one EvaluationResult per action, each resource's decision in
// ResourceSpecificResults; it used to answer one EvaluationResult per
// action and resource. A batch must take each question's answer from its
// own resource in either layout, never another resource's.
func TestDecideAllReadsBothResultLayouts(t *testing.T) {
	const (
		ctl      = "arn:aws:iam::111122223333:role/C"
		instance = "arn:aws:ec2:us-west-2:111122223333:instance/*"
		fleet    = "arn:aws:ec2:us-west-2:111122223333:fleet/*"
	)
	ctx := map[string][]string{"aws:RequestedRegion": {"us-west-2"}}
	qs := []Question{
		{Principal: ctl, Action: "ec2:RunInstances", Resource: instance, Context: ctx},
		{Principal: ctl, Action: "ec2:CreateFleet", Resource: fleet, Context: ctx},
	}
	allowed, denied := types.PolicyEvaluationDecisionTypeAllowed, types.PolicyEvaluationDecisionTypeImplicitDeny
	rs := func(resource string, d types.PolicyEvaluationDecisionType) types.ResourceSpecificResult {
		return types.ResourceSpecificResult{EvalResourceName: aws.String(resource), EvalResourceDecision: d}
	}
	perAction := []types.EvaluationResult{
		{EvalActionName: aws.String("ec2:RunInstances"), EvalResourceName: aws.String("*"), EvalDecision: denied,
			ResourceSpecificResults: []types.ResourceSpecificResult{rs(instance, allowed), rs(fleet, denied)}},
		{EvalActionName: aws.String("ec2:CreateFleet"), EvalResourceName: aws.String("*"), EvalDecision: denied,
			ResourceSpecificResults: []types.ResourceSpecificResult{rs(instance, denied), rs(fleet, allowed)}},
	}
	perPair := []types.EvaluationResult{
		{EvalActionName: aws.String("ec2:RunInstances"), EvalResourceName: aws.String(fleet), EvalDecision: denied},
		{EvalActionName: aws.String("ec2:RunInstances"), EvalResourceName: aws.String(instance), EvalDecision: allowed},
		{EvalActionName: aws.String("ec2:CreateFleet"), EvalResourceName: aws.String(instance), EvalDecision: denied},
		{EvalActionName: aws.String("ec2:CreateFleet"), EvalResourceName: aws.String(fleet), EvalDecision: allowed},
	}
	for name, results := range map[string][]types.EvaluationResult{"one result per action": perAction, "one result per action and resource": perPair} {
		f := &fakeIAM{pages: []*iam.SimulatePrincipalPolicyOutput{{EvaluationResults: results}}}
		ds, errs := NewLive(f, LiveOptions{}).DecideAll(context.Background(), qs)
		for i := range qs {
			if errs[i] != nil || !ds[i].Allowed {
				t.Errorf("%s: %s on %s = %+v (%v), want allowed", name, qs[i].Action, qs[i].Resource, ds[i], errs[i])
			}
		}
		if len(f.inputs) != 1 || len(f.inputs[0].ActionNames) != 2 || len(f.inputs[0].ResourceArns) != 2 || len(f.inputs[0].ContextEntries) != 1 {
			t.Errorf("%s: %d calls, first %+v: want one call naming both actions, both resources and the context", name, len(f.inputs), f.inputs)
		}
	}
}
