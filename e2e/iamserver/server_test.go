package iamserver_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

const (
	controllerARN = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	demoNodeARN   = "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"
	adminNodeARN  = "arn:aws:iam::111122223333:role/AdminNodeRole"
	ns            = "https://iam.amazonaws.com/doc/2010-05-08/"
)

func sample(t *testing.T) *authz.Snapshot {
	t.Helper()
	snap, err := authz.LoadSnapshotFile("../../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func start(t *testing.T, opts ...iamserver.Option) (*iamserver.Server, string) {
	t.Helper()
	srv := iamserver.New(sample(t), opts...)
	u, stop := srv.Start()
	t.Cleanup(stop)
	return srv, u
}

// sdkClient is the real IAM client pointed at u, retrying with tiny
// backoffs.
func sdkClient(u string) *iam.Client {
	return iam.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.AddWithMaxBackoffDelay(retry.NewStandard(), 5*time.Millisecond)
		},
	}, func(o *iam.Options) { o.BaseEndpoint = aws.String(u) })
}

// raw sends one Query request without the SDK.
func raw(t *testing.T, method, u string, form url.Values, auth bool) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, u+"/?"+form.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, u+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

type errorDoc struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

func parseError(t *testing.T, body string) errorDoc {
	t.Helper()
	var e errorDoc
	if err := xml.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not IAM's ErrorResponse: %v\n%s", err, body)
	}
	if e.XMLName.Space != ns || e.RequestID == "" {
		t.Errorf("ErrorResponse namespace %q, RequestId %q", e.XMLName.Space, e.RequestID)
	}
	return e
}

func TestRequiresAuthorization(t *testing.T) {
	srv, u := start(t)
	status, body := raw(t, http.MethodPost, u, url.Values{"Action": {"GetRole"}, "Version": {"2010-05-08"}, "RoleName": {"AdminNodeRole"}}, false)
	if status != http.StatusForbidden {
		t.Errorf("status = %d, want 403", status)
	}
	if e := parseError(t, body); e.Error.Code != "MissingAuthenticationToken" || e.Error.Type != "Sender" {
		t.Errorf("error = %+v", e.Error)
	}
	if srv.TotalCalls() != 0 {
		t.Errorf("an unauthenticated request was counted as a call")
	}
}

func TestGetRoleOverGETAndPOST(t *testing.T) {
	_, u := start(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		status, body := raw(t, method, u, url.Values{"Action": {"GetRole"}, "Version": {"2010-05-08"}, "RoleName": {"KarpenterNodeRole-team"}}, true)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", method, status, body)
		}
		var doc struct {
			XMLName xml.Name `xml:"GetRoleResponse"`
			Role    struct {
				RoleName, RoleId, Arn, Path, CreateDate, AssumeRolePolicyDocument string
			} `xml:"GetRoleResult>Role"`
			RequestID string `xml:"ResponseMetadata>RequestId"`
		}
		if err := xml.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		r := doc.Role
		if doc.XMLName.Space != ns || r.RoleName != "KarpenterNodeRole-team" || r.Path != "/team/" ||
			r.Arn != "arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team" || !strings.HasPrefix(r.RoleId, "AROA") ||
			r.CreateDate == "" || doc.RequestID == "" {
			t.Errorf("%s: GetRole answer %+v", method, doc)
		}
		if strings.ContainsAny(r.AssumeRolePolicyDocument, "{\" ") {
			t.Errorf("trust document is not URL-encoded: %s", r.AssumeRolePolicyDocument)
		}
		decoded, err := url.PathUnescape(r.AssumeRolePolicyDocument)
		if err != nil {
			t.Fatal(err)
		}
		trust, err := authz.ParsePolicy([]byte(decoded))
		if err != nil || !authz.TrustAllows(trust, "ec2.amazonaws.com", "sts:AssumeRole") {
			t.Errorf("decoded trust %q: %v", decoded, err)
		}
	}
}

func TestErrorsAsIAMSendsThem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		form   url.Values
		fault  iamserver.Fault
		status int
		typ    string
		code   string
		msg    string
	}{
		{"unknown action", url.Values{"Action": {"DeleteRole"}, "RoleName": {"X"}}, "", 400, "Sender", "InvalidAction", "DeleteRole"},
		{"no such role", url.Values{"Action": {"GetRole"}, "RoleName": {"Nope"}}, "", 404, "Sender", "NoSuchEntity", "The role with name Nope cannot be found."},
		{"no such profile", url.Values{"Action": {"GetInstanceProfile"}, "InstanceProfileName": {"Nope"}}, "", 404, "Sender", "NoSuchEntity", "Instance Profile Nope cannot be found."},
		{"invalid role name", url.Values{"Action": {"GetRole"}, "RoleName": {"bad name!"}}, "", 400, "Sender", "ValidationError", "regular expression pattern"},
		{"missing role name", url.Values{"Action": {"GetRole"}}, "", 400, "Sender", "ValidationError", "must not be null"},
		{"throttled", url.Values{"Action": {"GetRole"}, "RoleName": {"AdminNodeRole"}}, iamserver.Throttling, 400, "Sender", "Throttling", "Rate exceeded"},
		{"service failure", url.Values{"Action": {"GetRole"}, "RoleName": {"AdminNodeRole"}}, iamserver.ServiceFailure, 500, "Receiver", "ServiceFailure", "unknown error"},
		{"assumed-role principal", url.Values{"Action": {"SimulatePrincipalPolicy"}, "PolicySourceArn": {"arn:aws:sts::111122223333:assumed-role/KarpenterControllerRole/s"}, "ActionNames.member.1": {"iam:PassRole"}}, "", 400, "Sender", "InvalidInput", "Invalid ARN"},
		{"unknown principal", url.Values{"Action": {"SimulatePrincipalPolicy"}, "PolicySourceArn": {"arn:aws:iam::111122223333:role/Nobody"}, "ActionNames.member.1": {"iam:PassRole"}}, "", 404, "Sender", "NoSuchEntity", "Nobody"},
		{"no actions", url.Values{"Action": {"SimulatePrincipalPolicy"}, "PolicySourceArn": {controllerARN}}, "", 400, "Sender", "ValidationError", "actionNames"},
		{"bad marker", url.Values{"Action": {"SimulatePrincipalPolicy"}, "PolicySourceArn": {controllerARN}, "ActionNames.member.1": {"iam:PassRole"}, "Marker": {"zzz"}}, "", 400, "Sender", "InvalidInput", "Marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, u := start(t)
			if tc.fault != "" {
				srv.FailNext(tc.fault, 1)
			}
			tc.form.Set("Version", "2010-05-08")
			status, body := raw(t, http.MethodPost, u, tc.form, true)
			if status != tc.status {
				t.Errorf("status = %d, want %d", status, tc.status)
			}
			e := parseError(t, body)
			if e.Error.Type != tc.typ || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("error = %+v, want %s %s containing %q", e.Error, tc.typ, tc.code, tc.msg)
			}
		})
	}
}

func TestFailureKnobs(t *testing.T) {
	srv, u := start(t, iamserver.WithSeed(7))
	client := sdkClient(u)
	ctx := context.Background()
	getRole := func() error {
		_, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")}, func(o *iam.Options) {
			o.Retryer = aws.NopRetryer{}
		})
		return err
	}
	code := func(err error) string {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			return apiErr.ErrorCode()
		}
		if err != nil {
			return "other"
		}
		return ""
	}

	// Next N.
	srv.FailNext(iamserver.ServiceFailure, 2)
	got := []string{code(getRole()), code(getRole()), code(getRole())}
	if strings.Join(got, ",") != "ServiceFailure,ServiceFailure," {
		t.Errorf("FailNext(2) outcomes = %q", got)
	}

	// Scoped to one action.
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.Throttling, Action: "SimulatePrincipalPolicy", Always: true})
	if err := getRole(); err != nil {
		t.Errorf("GetRole failed under a SimulatePrincipalPolicy-only failure: %v", err)
	}
	_, err := client.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(controllerARN), ActionNames: []string{"iam:PassRole"}},
		func(o *iam.Options) { o.Retryer = aws.NopRetryer{} })
	if code(err) != "Throttling" {
		t.Errorf("SimulatePrincipalPolicy = %v, want Throttling", err)
	}
	srv.ClearFailures()

	// A fraction.
	srv.FailFraction(iamserver.Throttling, 0.5)
	failed := 0
	for i := 0; i < 100; i++ {
		if code(getRole()) == "Throttling" {
			failed++
		}
	}
	if failed == 0 || failed == 100 {
		t.Errorf("FailFraction(0.5) failed %d of 100 calls", failed)
	}
	srv.ClearFailures()

	// Malformed XML reaches the SDK as a deserialization error.
	srv.FailNext(iamserver.MalformedXML, 1)
	err = getRole()
	var de *smithy.DeserializationError
	if !errors.As(err, &de) {
		t.Errorf("malformed answer = %v, want a DeserializationError", err)
	}

	// Counts.
	if got := srv.Calls("GetRole"); got != 105 {
		t.Errorf("Calls(GetRole) = %d, want 105", got)
	}
	if got := srv.TotalCalls(); got != 106 {
		t.Errorf("TotalCalls = %d, want 106", got)
	}
	srv.ResetCalls()
	if srv.TotalCalls() != 0 || srv.Calls("GetRole") != 0 {
		t.Errorf("counts after ResetCalls: %d, %d", srv.TotalCalls(), srv.Calls("GetRole"))
	}
}

func TestHangEndsWithTheClient(t *testing.T) {
	srv, u := start(t)
	srv.FailAlways(iamserver.Hang)
	client := sdkClient(u)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung GetRole = %v, want the caller's deadline", err)
	}
	srv.ClearFailures()
	if _, err := client.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")}); err != nil {
		t.Errorf("GetRole after the hang cleared: %v", err)
	}
}

func TestLatency(t *testing.T) {
	srv, u := start(t)
	srv.SetActionLatency("GetRole", time.Hour)
	client := sdkClient(u)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetRole with an hour of latency = %v, want the caller's deadline", err)
	}
	// Other actions are not delayed.
	if _, err := client.GetInstanceProfile(context.Background(), &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("EmptyProfile")}); err != nil {
		t.Error(err)
	}
	srv.SetActionLatency("GetRole", 0)
	if _, err := client.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")}); err != nil {
		t.Error(err)
	}
}

func TestSetSnapshot(t *testing.T) {
	srv, u := start(t)
	client := sdkClient(u)
	ctx := context.Background()
	solo, err := authz.LoadSnapshot(strings.NewReader(`{"RoleDetailList": [{"RoleName": "Solo", "Path": "/", "Arn": "arn:aws:iam::111122223333:role/Solo",
		"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
		"RolePolicyList": [], "AttachedManagedPolicies": []}], "Policies": []}`), "solo.json")
	if err != nil {
		t.Fatal(err)
	}
	srv.SetSnapshot(solo)
	out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Solo")})
	if err != nil || aws.ToString(out.Role.Arn) != "arn:aws:iam::111122223333:role/Solo" {
		t.Errorf("GetRole(Solo) after SetSnapshot = %v", err)
	}
	_, err = client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")})
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("GetRole(AdminNodeRole) after SetSnapshot = %v, want NoSuchEntityException", err)
	}
}

func TestPaginationThroughTheSDK(t *testing.T) {
	srv, u := start(t)
	client := sdkClient(u)
	ctx := context.Background()

	var names []string
	p := iam.NewListInstanceProfilesForRolePaginator(client, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("EKSAutoNodeRole-demo"), MaxItems: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ip := range out.InstanceProfiles {
			names = append(names, aws.ToString(ip.InstanceProfileName))
			if len(ip.Roles) != 1 || aws.ToString(ip.Roles[0].Arn) != "arn:aws:iam::111122223333:role/EKSAutoNodeRole-demo" {
				t.Errorf("profile %s roles = %+v", aws.ToString(ip.InstanceProfileName), ip.Roles)
			}
		}
	}
	if strings.Join(names, ",") != "AutoNodeProfile-demo,eks-auto-demo" || srv.Calls("ListInstanceProfilesForRole") != 2 {
		t.Errorf("profiles of EKSAutoNodeRole-demo = %v in %d calls", names, srv.Calls("ListInstanceProfilesForRole"))
	}
	if _, err := client.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("Nope")}); err == nil {
		t.Error("ListInstanceProfilesForRole of a missing role succeeded")
	}

	actions := []string{"iam:PassRole", "iam:GetInstanceProfile", "ec2:RunInstances"}
	sp := iam.NewSimulatePrincipalPolicyPaginator(client, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(controllerARN),
		ActionNames:     actions,
		ResourceArns:    []string{demoNodeARN, adminNodeARN},
		ContextEntries: []types.ContextEntry{{ContextKeyName: aws.String("iam:PassedToService"), ContextKeyType: types.ContextKeyTypeEnumString,
			ContextKeyValues: []string{"ec2.amazonaws.com"}}},
		MaxItems: aws.Int32(1),
	})
	var results []types.EvaluationResult
	for sp.HasMorePages() {
		out, err := sp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, out.EvaluationResults...)
	}
	if len(results) != 3 || srv.Calls("SimulatePrincipalPolicy") != 3 {
		t.Fatalf("%d results in %d calls, want 3 in 3", len(results), srv.Calls("SimulatePrincipalPolicy"))
	}
	pass := results[0]
	if aws.ToString(pass.EvalActionName) != "iam:PassRole" || pass.EvalDecision != types.PolicyEvaluationDecisionTypeExplicitDeny || len(pass.ResourceSpecificResults) != 2 {
		t.Fatalf("PassRole result = %+v", pass)
	}
	byResource := map[string]types.ResourceSpecificResult{}
	for _, rs := range pass.ResourceSpecificResults {
		byResource[aws.ToString(rs.EvalResourceName)] = rs
	}
	if byResource[demoNodeARN].EvalResourceDecision != types.PolicyEvaluationDecisionTypeAllowed ||
		byResource[adminNodeARN].EvalResourceDecision != types.PolicyEvaluationDecisionTypeExplicitDeny {
		t.Errorf("per-resource PassRole decisions = %+v", byResource)
	}
	deny := byResource[adminNodeARN].MatchedStatements
	if len(deny) != 1 || aws.ToString(deny[0].SourcePolicyId) != "Guardrails" || deny[0].SourcePolicyType != types.PolicySourceTypeRole || deny[0].StartPosition == nil {
		t.Errorf("deny statements = %+v", deny)
	}
}

// TestMatchedStatementPositions checks that StartPosition and EndPosition
// frame the statement that decided, in the policy document as stored.
func TestMatchedStatementPositions(t *testing.T) {
	_, u := start(t)
	client := sdkClient(u)
	out, err := client.SimulatePrincipalPolicy(context.Background(), &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(controllerARN),
		ActionNames:     []string{"iam:PassRole"},
		ResourceArns:    []string{demoNodeARN},
		ContextEntries: []types.ContextEntry{{ContextKeyName: aws.String("iam:PassedToService"), ContextKeyType: types.ContextKeyTypeEnumString,
			ContextKeyValues: []string{"ec2.amazonaws.com"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rs := out.EvaluationResults[0].ResourceSpecificResults[0]
	if rs.EvalResourceDecision != types.PolicyEvaluationDecisionTypeAllowed || len(rs.MatchedStatements) != 1 {
		t.Fatalf("result = %+v", rs)
	}
	st := rs.MatchedStatements[0]
	if aws.ToString(st.SourcePolicyId) != "KarpenterControllerPolicy" || st.SourcePolicyType != types.PolicySourceTypeUserManaged {
		t.Errorf("statement source = %s %s", aws.ToString(st.SourcePolicyId), st.SourcePolicyType)
	}
	set, ok := sample(t).PolicySet(controllerARN)
	if !ok {
		t.Fatal("no policy set for the controller")
	}
	var doc string
	for _, np := range set.Identity {
		if strings.HasSuffix(np.Name, "/KarpenterControllerPolicy") {
			doc = np.Policy.Document()
		}
	}
	lines := strings.Split(doc, "\n")
	if st.StartPosition == nil || st.EndPosition == nil || int(st.EndPosition.Line) > len(lines) || st.StartPosition.Line > st.EndPosition.Line {
		t.Fatalf("positions %+v %+v outside a %d-line document", st.StartPosition, st.EndPosition, len(lines))
	}
	first := lines[st.StartPosition.Line-1]
	if first[st.StartPosition.Column-1] != '{' {
		t.Errorf("StartPosition %d:%d is not a statement's '{': %q", st.StartPosition.Line, st.StartPosition.Column, first)
	}
	last := lines[st.EndPosition.Line-1]
	if last[st.EndPosition.Column-1] != '}' {
		t.Errorf("EndPosition %d:%d is not a statement's '}': %q", st.EndPosition.Line, st.EndPosition.Column, last)
	}
	framed := strings.Join(lines[st.StartPosition.Line-1:st.EndPosition.Line], "\n")
	if !strings.Contains(framed, `"AllowPassingInstanceRole"`) || strings.Count(framed, `"Sid"`) != 1 {
		t.Errorf("positions frame the wrong statement:\n%s", framed)
	}
}

func TestStopEndsHeldRequestsAndRestarts(t *testing.T) {
	srv := iamserver.New(sample(t))
	srv.FailAlways(iamserver.Hang)
	u, stop := srv.Start()
	client := sdkClient(u)
	done := make(chan error, 1)
	go func() {
		_, err := client.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")},
			func(o *iam.Options) { o.Retryer = aws.NopRetryer{} })
		done <- err
	}()
	for srv.Calls("GetRole") == 0 {
		time.Sleep(time.Millisecond)
	}
	stop() // must not wait for the hung request
	if err := <-done; err == nil {
		t.Error("a request hung until stop succeeded")
	}

	srv.ClearFailures()
	srv.SetLatency(time.Millisecond)
	u, stop = srv.Start()
	defer stop()
	out, err := sdkClient(u).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("AdminNodeRole")})
	if err != nil || out.Role == nil || aws.ToString(out.Role.Arn) != adminNodeARN {
		t.Errorf("GetRole after a restart = %+v, %v", out, err)
	}
}
