package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// fakeIAM answers SimulatePrincipalPolicy with canned pages and GetRole
// with a canned role, recording the inputs. It covers answers the local
// endpoint never gives (SCPs, IAM's newer result layout).
type fakeIAM struct {
	pages  []*iam.SimulatePrincipalPolicyOutput
	err    error
	role   *types.Role
	inputs []*iam.SimulatePrincipalPolicyInput
}

func (f *fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &iam.GetRoleOutput{Role: f.role}, nil
}

func (f *fakeIAM) GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	return nil, errors.New("not used")
}

func (f *fakeIAM) SimulatePrincipalPolicy(_ context.Context, in *iam.SimulatePrincipalPolicyInput, _ ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error) {
	cp := *in
	f.inputs = append(f.inputs, &cp)
	if f.err != nil {
		return nil, f.err
	}
	if len(f.inputs) > len(f.pages) {
		return nil, fmt.Errorf("unexpected call %d", len(f.inputs))
	}
	return f.pages[len(f.inputs)-1], nil
}

var liveQ = Question{
	Principal: "arn:aws:iam::111122223333:role/KarpenterControllerRole",
	Action:    "iam:PassRole",
	Resource:  "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo",
	Context:   map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}},
}

func simPage(results ...types.EvaluationResult) *iam.SimulatePrincipalPolicyOutput {
	return &iam.SimulatePrincipalPolicyOutput{EvaluationResults: results}
}

func simStmt(id string, typ types.PolicySourceType, line int32) types.Statement {
	return types.Statement{SourcePolicyId: aws.String(id), SourcePolicyType: typ, StartPosition: &types.Position{Line: line, Column: 5}}
}

func TestDecisionMapping(t *testing.T) {
	denyBoundary := &types.PermissionsBoundaryDecisionDetail{AllowedByPermissionsBoundary: false}
	allowBoundary := &types.PermissionsBoundaryDecisionDetail{AllowedByPermissionsBoundary: true}
	noOrgs := &types.OrganizationsDecisionDetail{AllowedByOrganizations: false}
	template := "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"
	for _, tc := range []struct {
		name   string
		result types.EvaluationResult
		want   Decision
	}{
		{"allowed", types.EvaluationResult{EvalDecision: "allowed", MatchedStatements: []types.Statement{simStmt("P", "role", 2)}},
			Decision{Allowed: true}},
		{"implicit, nothing matched", types.EvaluationResult{EvalDecision: "implicitDeny", MissingContextValues: []string{"iam:PassedToService"}},
			Decision{MissingContext: []string{"iam:PassedToService"}}},
		{"explicit identity deny", types.EvaluationResult{EvalDecision: "explicitDeny", MatchedStatements: []types.Statement{simStmt("Guardrails", "role", 3)}, PermissionsBoundaryDecisionDetail: allowBoundary},
			Decision{Explicit: true, DeniedBy: Denier{Source: DeniedByIdentity, Policy: "Guardrails", Statement: "line 3"}}},
		{"inline deny while the boundary also refuses", types.EvaluationResult{EvalDecision: "explicitDeny", MatchedStatements: []types.Statement{simStmt("Guardrails", "role", 7)}, PermissionsBoundaryDecisionDetail: denyBoundary},
			Decision{Explicit: true, DeniedBy: Denier{Source: DeniedByIdentity, Policy: "Guardrails", Statement: "line 7"}}},
		{"managed deny with the boundary refusing", types.EvaluationResult{EvalDecision: "explicitDeny", MatchedStatements: []types.Statement{simStmt("EC2OnlyBoundary", "user-managed", 4)}, PermissionsBoundaryDecisionDetail: denyBoundary},
			Decision{Explicit: true, DeniedBy: Denier{Source: DeniedByBoundary, Policy: "EC2OnlyBoundary", Statement: "line 4"}}},
		{"boundary does not allow", types.EvaluationResult{EvalDecision: "implicitDeny", PermissionsBoundaryDecisionDetail: denyBoundary},
			Decision{DeniedBy: Denier{Source: DeniedByBoundary}}},
		{"SCP implicit", types.EvaluationResult{EvalDecision: "implicitDeny", OrganizationsDecisionDetail: noOrgs},
			Decision{DeniedBy: Denier{Source: DeniedBySCP}}},
		{"SCP explicit", types.EvaluationResult{EvalDecision: "explicitDeny", OrganizationsDecisionDetail: noOrgs},
			Decision{Explicit: true, DeniedBy: Denier{Source: DeniedBySCP}}},
		{"resource-specific result preferred", types.EvaluationResult{EvalDecision: "explicitDeny", EvalResourceName: aws.String(template),
			ResourceSpecificResults: []types.ResourceSpecificResult{
				{EvalResourceName: aws.String("arn:aws:iam::111122223333:role/AdminNodeRole"), EvalResourceDecision: "explicitDeny"},
				{EvalResourceName: aws.String(liveQ.Resource), EvalResourceDecision: "allowed"},
			}},
			Decision{Allowed: true}},
		{"resource-specific boundary detail", types.EvaluationResult{EvalDecision: "implicitDeny", EvalResourceName: aws.String(template), PermissionsBoundaryDecisionDetail: allowBoundary,
			ResourceSpecificResults: []types.ResourceSpecificResult{
				{EvalResourceName: aws.String(liveQ.Resource), EvalResourceDecision: "implicitDeny", PermissionsBoundaryDecisionDetail: denyBoundary, MissingContextValues: []string{"k"}},
			}},
			Decision{DeniedBy: Denier{Source: DeniedByBoundary}, MissingContext: []string{"k"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.result.EvalActionName = aws.String("iam:PassRole")
			live := NewLive(&fakeIAM{pages: []*iam.SimulatePrincipalPolicyOutput{simPage(tc.result)}}, LiveOptions{})
			got, err := live.Decide(context.Background(), liveQ)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decision = %+v\nwant       %+v", got, tc.want)
			}
		})
	}
}

func TestDecideRequest(t *testing.T) {
	f := &fakeIAM{pages: []*iam.SimulatePrincipalPolicyOutput{simPage(types.EvaluationResult{EvalActionName: aws.String("ec2:RunInstances"), EvalDecision: "allowed"})}}
	q := Question{Principal: liveQ.Principal, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*", Context: map[string][]string{
		"aws:TagKeys":                          {"karpenter.sh/nodepool"},
		"aws:RequestTag/karpenter.sh/nodepool": {"default"},
		"ec2:CreateAction":                     {"RunInstances", "CreateFleet"},
	}}
	if _, err := NewLive(f, LiveOptions{}).Decide(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	in := f.inputs[0]
	if aws.ToString(in.PolicySourceArn) != q.Principal || !reflect.DeepEqual(in.ActionNames, []string{q.Action}) || !reflect.DeepEqual(in.ResourceArns, []string{q.Resource}) {
		t.Errorf("input = %+v", in)
	}
	type entry struct {
		key    string
		typ    types.ContextKeyTypeEnum
		values []string
	}
	var got []entry
	for _, e := range in.ContextEntries {
		got = append(got, entry{aws.ToString(e.ContextKeyName), e.ContextKeyType, e.ContextKeyValues})
	}
	want := []entry{
		{"aws:RequestTag/karpenter.sh/nodepool", "string", []string{"default"}},
		{"aws:TagKeys", "stringList", []string{"karpenter.sh/nodepool"}},
		{"ec2:CreateAction", "stringList", []string{"RunInstances", "CreateFleet"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("context entries = %+v\nwant %+v", got, want)
	}
}

// TestDecideKnownAbsent: keys IAM reports missing that the question knows
// to be absent (Question.Complete) are not reported missing, as in the
// snapshot evaluator; other keys are.
func TestDecideKnownAbsent(t *testing.T) {
	f := &fakeIAM{pages: []*iam.SimulatePrincipalPolicyOutput{simPage(types.EvaluationResult{
		EvalActionName: aws.String("ec2:RunInstances"), EvalDecision: "implicitDeny",
		MissingContextValues: []string{"aws:RequestTag/kubernetes.io/cluster/other", "aws:SourceIp", "ec2:Region"},
	})}}
	q := Question{Principal: liveQ.Principal, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:instance/*",
		Context: map[string][]string{
			"aws:RequestTag/karpenter.sh/nodepool": {""},
			"aws:TagKeys":                          {"karpenter.sh/nodepool"},
		},
		Complete: []string{"aws:RequestTag/", "aws:TagKeys", "ec2:Region"}}
	d, err := NewLive(f, LiveOptions{}).Decide(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.MissingContext, []string{"aws:SourceIp"}) {
		t.Errorf("MissingContext = %v, want only aws:SourceIp", d.MissingContext)
	}
	// The entries carry the same keys as the question, the empty tag value
	// included, aws:TagKeys as a list.
	var keys []string
	for _, e := range f.inputs[0].ContextEntries {
		keys = append(keys, aws.ToString(e.ContextKeyName)+"="+string(e.ContextKeyType)+":"+strings.Join(e.ContextKeyValues, ","))
	}
	if want := []string{"aws:RequestTag/karpenter.sh/nodepool=string:", "aws:TagKeys=stringList:karpenter.sh/nodepool"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("context entries %v, want %v", keys, want)
	}
}

func TestDecidePagination(t *testing.T) {
	other := types.EvaluationResult{EvalActionName: aws.String("iam:GetRole"), EvalDecision: "allowed"}
	ours := types.EvaluationResult{EvalActionName: aws.String("IAM:PassRole"), EvalDecision: "explicitDeny"}

	f := &fakeIAM{pages: []*iam.SimulatePrincipalPolicyOutput{
		{EvaluationResults: []types.EvaluationResult{other}, IsTruncated: true, Marker: aws.String("m1")},
		{EvaluationResults: []types.EvaluationResult{ours}},
	}}
	d, err := NewLive(f, LiveOptions{}).Decide(context.Background(), liveQ)
	if err != nil || !d.Explicit {
		t.Fatalf("Decide over two pages = %+v, %v", d, err)
	}
	if len(f.inputs) != 2 || f.inputs[0].Marker != nil || aws.ToString(f.inputs[1].Marker) != "m1" {
		t.Errorf("markers sent: %d calls", len(f.inputs))
	}

	for name, pages := range map[string][]*iam.SimulatePrincipalPolicyOutput{
		"no result":        {{EvaluationResults: []types.EvaluationResult{other}}},
		"marker stuck":     {{EvaluationResults: []types.EvaluationResult{other}, IsTruncated: true, Marker: aws.String("m")}, {EvaluationResults: []types.EvaluationResult{other}, IsTruncated: true, Marker: aws.String("m")}},
		"truncated, empty": {{IsTruncated: true}},
	} {
		f := &fakeIAM{pages: pages}
		_, err := NewLive(f, LiveOptions{}).Decide(context.Background(), liveQ)
		if !IsUnavailable(err) {
			t.Errorf("%s: %v, want UnavailableError", name, err)
		}
	}

	endless := &fakeIAM{}
	for i := 0; i < 5; i++ {
		endless.pages = append(endless.pages, &iam.SimulatePrincipalPolicyOutput{EvaluationResults: []types.EvaluationResult{other}, IsTruncated: true, Marker: aws.String(fmt.Sprint(i))})
	}
	if _, err := NewLive(endless, LiveOptions{MaxPages: 3}).Decide(context.Background(), liveQ); !IsUnavailable(err) || len(endless.inputs) != 3 {
		t.Errorf("endless pages: %v after %d calls, want UnavailableError after 3", err, len(endless.inputs))
	}
}

func TestLiveErrorClassification(t *testing.T) {
	ctx := context.Background()
	invalid := &smithy.GenericAPIError{Code: "InvalidInput", Message: "Invalid ARN"}
	_, err := NewLive(&fakeIAM{err: invalid}, LiveOptions{}).Decide(ctx, liveQ)
	if err == nil || IsUnavailable(err) || errors.Is(err, ErrNotFound) {
		t.Errorf("InvalidInput from SimulatePrincipalPolicy = %v, want a plain error", err)
	}
	_, err = NewLive(&fakeIAM{err: &types.NoSuchEntityException{Message: aws.String("gone")}}, LiveOptions{}).Decide(ctx, liveQ)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Name != liveQ.Principal {
		t.Errorf("NoSuchEntity from SimulatePrincipalPolicy = %v, want NotFoundError naming the principal", err)
	}
	_, err = NewLive(&fakeIAM{err: &smithy.GenericAPIError{Code: "AccessDenied"}}, LiveOptions{}).Role(ctx, "X")
	if !IsUnavailable(err) {
		t.Errorf("AccessDenied from GetRole = %v, want UnavailableError (the webhook's own permissions)", err)
	}
	_, err = NewLive(&fakeIAM{role: &types.Role{RoleName: aws.String("X"), Path: aws.String("/"), Arn: aws.String("arn:aws:iam::111122223333:role/X"),
		AssumeRolePolicyDocument: aws.String("%7Bnot%20json")}}, LiveOptions{}).Role(ctx, "X")
	if err == nil || IsUnavailable(err) || errors.Is(err, ErrNotFound) {
		t.Errorf("unparsable trust policy = %v, want a plain error", err)
	}
	r, err := NewLive(&fakeIAM{role: &types.Role{RoleName: aws.String("X"), Path: aws.String("/"), Arn: aws.String("arn:aws:iam::111122223333:role/X")}}, LiveOptions{}).Role(ctx, "X")
	if err != nil || r.Trust != nil {
		t.Errorf("role without a trust document = %+v, %v; want Trust nil", r, err)
	}
}

func TestCallOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{&smithy.OperationError{Err: &types.NoSuchEntityException{}}, OutcomeNotFound},
		{&smithy.OperationError{Err: &smithy.GenericAPIError{Code: "Throttling"}}, OutcomeThrottled},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), OutcomeTimeout},
		{&smithy.GenericAPIError{Code: "ServiceFailure"}, OutcomeError},
		{errors.New("no credentials"), OutcomeError},
	} {
		if got := callOutcome(tc.err); got != tc.want {
			t.Errorf("callOutcome(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestCappedClient: a response declaring, or turning out to carry, more
// than the cap fails instead of being read whole.
func TestCappedClient(t *testing.T) {
	body := func(n int) *http.Response {
		return &http.Response{StatusCode: 200, ContentLength: -1, Body: io.NopCloser(strings.NewReader(strings.Repeat("x", n)))}
	}
	for _, tc := range []struct {
		name    string
		resp    *http.Response
		wantErr bool
	}{
		{"small", body(100), false},
		{"exactly the cap", body(1000), false},
		{"streamed past the cap", body(1001), true},
		{"declared past the cap", &http.Response{StatusCode: 200, ContentLength: 5000, Body: io.NopCloser(strings.NewReader(""))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cappedClient{inner: doerFunc(func(*http.Request) (*http.Response, error) { return tc.resp, nil }), max: 1000}
			resp, err := c.Do(&http.Request{})
			if err == nil {
				_, err = io.ReadAll(resp.Body)
			}
			if gotErr := errors.Is(err, ErrIAMResponseTooLarge); gotErr != tc.wantErr {
				t.Errorf("err = %v, want too large: %v", err, tc.wantErr)
			}
		})
	}
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
