package authz_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// TestSnapshotOrganization: the Organization section puts the account in
// an organization; its SCPs are evaluated as AWS does (allowed by each,
// denied by none; none means FullAWSAccess), and the keys their matching
// statements test that the request lacks are reported, Null included.
func TestSnapshotOrganization(t *testing.T) {
	doc := `{"RoleDetailList": [], "Organization": {"ServiceControlPolicies": [
	  {"PolicyName": "CostCenter", "Document": {"Version": "2012-10-17", "Statement": [
	    {"Effect": "Allow", "Action": "*", "Resource": "*"},
	    {"Sid": "Tag", "Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*", "Condition": {"Null": {"aws:RequestTag/CostCenter": "true"}}}]}}]}}`
	snap, err := authz.LoadSnapshot(strings.NewReader(doc), "org.json")
	if err != nil {
		t.Fatal(err)
	}
	org := snap.Organization()
	if org == nil || len(org.SCPs) != 1 {
		t.Fatalf("Organization = %+v", org)
	}
	d := authz.EvaluateSCPs(org, authz.Question{Action: "ec2:RunInstances", Resource: "*"})
	if d.Allowed || !d.Explicit || d.DeniedBy.Statement != "Tag" || len(d.Referenced) != 1 || d.Referenced[0] != "aws:RequestTag/CostCenter" {
		t.Errorf("untagged: %+v", d)
	}
	d = authz.EvaluateSCPs(org, authz.Question{Action: "ec2:RunInstances", Resource: "*", Context: map[string][]string{"aws:RequestTag/CostCenter": {"1"}}})
	if !d.Allowed || len(d.Referenced) != 0 {
		t.Errorf("tagged: %+v", d)
	}
	if d := authz.EvaluateSCPs(&authz.Organization{}, authz.Question{Action: "iam:PassRole", Resource: "*"}); !d.Allowed {
		t.Errorf("FullAWSAccess: %+v", d)
	}
	// An SCP that allows nothing for the action denies implicitly.
	onlyS3, _ := authz.ParsePolicy([]byte(`{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}`))
	if d := authz.EvaluateSCPs(&authz.Organization{SCPs: []authz.NamedPolicy{{Name: "S3Only", Policy: onlyS3}}}, authz.Question{Action: "iam:PassRole", Resource: "*"}); d.Allowed || d.Explicit || d.DeniedBy.Policy != "S3Only" {
		t.Errorf("implicit: %+v", d)
	}
	if _, err := authz.LoadSnapshot(strings.NewReader(`{"Organization": {"ServiceControlPolicies": [{"PolicyName": "x", "Document": {"Statement": "nope"}}]}}`), "bad.json"); err == nil || !strings.Contains(err.Error(), "ServiceControlPolicies[0]") {
		t.Errorf("bad SCP: %v", err)
	}
}

// describePolicy is the cost-center SCP as `aws organizations
// describe-policy` prints it: the document is a JSON string.
const describePolicy = `{"Policy": {"PolicySummary": {"Id": "p-costcenter", "Arn": "arn:aws:organizations::111122223333:policy/o-example/service_control_policy/p-costcenter",
  "Name": "RequireCostCenter", "Description": "", "Type": "SERVICE_CONTROL_POLICY", "AwsManaged": false},
  "Content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"FullAWSAccess\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},{\"Sid\":\"RequireCostCenter\",\"Effect\":\"Deny\",\"Action\":\"ec2:RunInstances\",\"Resource\":\"arn:aws:ec2:*:*:instance/*\",\"Condition\":{\"Null\":{\"aws:RequestTag/CostCenter\":\"true\"}}}]}"}}`

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadSCPFile: describe-policy's output and a bare document are read;
// what cannot be used is an error naming the file and what is wrong.
func TestLoadSCPFile(t *testing.T) {
	np, err := authz.LoadSCPFile(writeFile(t, "scp.json", describePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(np.Name, "/p-costcenter") || len(np.Policy.Statements) != 2 {
		t.Errorf("describe-policy: %+v", np)
	}
	bare := writeFile(t, "bare.json", costCenterSCP)
	if np, err := authz.LoadSCPFile(bare); err != nil || np.Name != bare || len(np.Policy.Statements) != 2 {
		t.Errorf("bare document: %+v, %v", np, err)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"empty.json", "  \n", "empty file"},
		{"syntax.json", "{\"Policy\": {\n  \"Content\": }", "syntax.json:2:"},
		{"nocontent.json", `{"Policy": {"PolicySummary": {"Name": "X"}}}`, "Policy.Content is missing"},
		{"badcontent.json", `{"Policy": {"PolicySummary": {"Name": "X"}, "Content": "{\"Statement\": \"nope\"}"}}`, `Policy.Content (SCP "X")`},
		{"tagpolicy.json", `{"Policy": {"PolicySummary": {"Name": "X", "Type": "TAG_POLICY"}, "Content": "{}"}}`, "want SERVICE_CONTROL_POLICY"},
		{"other.json", `{"Statement": 3}`, "not an SCP"},
	} {
		path := writeFile(t, tc.name, tc.text)
		_, err := authz.LoadSCPFile(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %v, want one naming the file and %q", tc.name, err, tc.want)
		}
	}
	if _, err := authz.LoadSCPFile(filepath.Join(t.TempDir(), "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("absent file: %v", err)
	}
}

// TestOrganizationView: a snapshot with the cost-center SCP applied
// denies an instance launched without the tag, naming the SCP, its
// statement and the tag; allows it with the tag; and leaves the
// resources the SCP does not cover (the image) and other actions alone.
func TestOrganizationView(t *testing.T) {
	np, err := authz.LoadSCPFile(writeFile(t, "scp.json", describePolicy))
	if err != nil {
		t.Fatal(err)
	}
	org := &authz.Organization{SCPs: []authz.NamedPolicy{np}}
	view := authz.WithOrganization(loadSample(t), org)
	ctx := context.Background()
	untagged := launchQuestion("instance/*", nil)
	d, err := view.Decide(ctx, untagged)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || !d.Explicit || d.DeniedBy.Source != authz.DeniedBySCP || d.DeniedBy.Statement != "RequireCostCenter" ||
		!reflect.DeepEqual(d.MissingRequestTags, []string{"CostCenter"}) || !d.AllowedButForDeny {
		t.Fatalf("untagged instance: %+v", d)
	}
	if want := `explicitly denied by a service control policy of your organization (SCP "` + np.Name + `", statement "RequireCostCenter")`; d.Reason() != want {
		t.Errorf("reason %q\nwant   %q", d.Reason(), want)
	}
	for _, q := range []authz.Question{
		launchQuestion("instance/*", map[string][]string{"aws:RequestTag/CostCenter": {"42"}}),
		launchQuestion("volume/*", nil),
		{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2::image/ami-0123456789abcdef0"},
		{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2},
	} {
		ds, errs := authz.DecideAll(ctx, view, []authz.Question{q})
		if errs[0] != nil || !ds[0].Allowed {
			t.Errorf("%s on %s: %+v, %v; want allowed", q.Action, q.Resource, ds[0], errs[0])
		}
	}
	// What the identity policies deny stays theirs.
	if d, _ := view.Decide(ctx, authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: adminNodeARN, Context: toEC2}); d.DeniedBy.Source != authz.DeniedByIdentity {
		t.Errorf("identity deny: %+v", d)
	}
	if authz.WithOrganization(loadSample(t), nil) == view {
		t.Error("no organization must leave the view as it is")
	}
	if !org.Shapes("ec2:RunInstances") || org.Shapes("iam:GetRole") || (&authz.Organization{}).Shapes("ec2:RunInstances") {
		t.Error("Shapes: RunInstances is shaped by the SCP, iam:GetRole and FullAWSAccess shape nothing")
	}
}

// launchQuestion is Karpenter's RunInstances on an EC2 resource of the
// sample account, with a launch's request tags plus extra.
func launchQuestion(resource string, extra map[string][]string) authz.Question {
	ctx := map[string][]string{
		"aws:RequestTag/kubernetes.io/cluster/demo":     {"owned"},
		"aws:RequestTag/eks:eks-cluster-name":           {"demo"},
		"aws:RequestTag/karpenter.sh/nodepool":          {"default"},
		"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": {"default"},
	}
	keys := []string{"kubernetes.io/cluster/demo", "eks:eks-cluster-name", "karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"}
	for k, v := range extra {
		ctx[k] = v
		keys = append(keys, strings.TrimPrefix(k, "aws:RequestTag/"))
	}
	ctx["aws:TagKeys"] = keys
	return authz.Question{Principal: controllerARN, Action: "ec2:RunInstances", Resource: "arn:aws:ec2:us-west-2:111122223333:" + resource,
		Context: ctx, Complete: []string{"aws:RequestTag/", "aws:TagKeys"}}
}

// TestSCPDenialLiveAgreesOffline: through the real SDK client and the
// local endpoint's SCP layer, Live and PolicyView name an SCP denial as
// the offline layer does (which alone also knows the SCP's name), with
// the missing tag.
func TestSCPDenialLiveAgreesOffline(t *testing.T) {
	np := scp(t, costCenterSCP)
	_, view, live := policyView(t, iamserver.WithOrganization(np))
	offline := authz.WithOrganization(loadSample(t), &authz.Organization{SCPs: []authz.NamedPolicy{np}})
	ctx := context.Background()
	q := launchQuestion("instance/*", nil)
	want, err := offline.Decide(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	wantReason := strings.Replace(want.Reason(), ` (SCP "`+np.Name+`", statement "CostCenter")`, "", 1)
	for name, v := range map[string]authz.View{"Live": live, "PolicyView": view} {
		got, err := v.Decide(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Allowed || got.DeniedBy.Source != authz.DeniedBySCP || got.Reason() != wantReason ||
			!reflect.DeepEqual(got.MissingRequestTags, want.MissingRequestTags) || !reflect.DeepEqual(got.MissingContext, want.MissingContext) {
			t.Errorf("%s: %+v (%q)\nwant %+v (%q)", name, got, got.Reason(), want, wantReason)
		}
	}
}

// TestSCPLayerFaults: the local endpoint's SCP layer failing or too slow
// makes the SCPs' verdict "could not check" (an unavailable error), never
// an allow; questions no SCP shapes are answered meanwhile.
func TestSCPLayerFaults(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opt  iamserver.Option
	}{
		{"throttled", iamserver.WithSCPFailure(iamserver.Failure{Fault: iamserver.Throttling, Always: true})},
		{"failing for RunInstances", iamserver.WithSCPFailure(iamserver.Failure{Fault: iamserver.ServiceFailure, Action: "ec2:RunInstances", Always: true})},
		{"slow", iamserver.WithSCPLatency(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, view, _ := policyView(t, iamserver.WithOrganization(scp(t, costCenterSCP)), tc.opt)
			for _, q := range []authz.Question{launchQuestion("instance/*", nil), launchQuestion("instance/*", map[string][]string{"aws:RequestTag/CostCenter": {"42"}})} {
				qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				d, err := view.Decide(qctx, q)
				cancel()
				if !authz.IsUnavailable(err) {
					t.Errorf("%v: %+v, %v; want unavailable", q.Context["aws:RequestTag/CostCenter"], d, err)
				}
			}
			if d, err := view.Decide(ctx, authz.Question{Principal: controllerARN, Action: "iam:PassRole", Resource: demoNodeARN, Context: toEC2}); err != nil || !d.Allowed {
				t.Errorf("PassRole (no SCP shapes it): %+v, %v", d, err)
			}
			srv.ClearSCPFaults()
			if d, err := view.Decide(ctx, launchQuestion("instance/*", nil)); err != nil || d.Allowed {
				t.Errorf("after the faults: %+v, %v; want the SCP's denial", d, err)
			}
		})
	}
}

// TestSCPDenyList: an SCP of Deny statements only is applied as AWS
// applies it, beside FullAWSAccess: it denies what it denies, nothing
// else.
func TestSCPDenyList(t *testing.T) {
	p, err := authz.ParsePolicy([]byte(`{"Statement": [{"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "arn:aws:ec2:*:*:instance/*", "Condition": {"Null": {"aws:RequestTag/CostCenter": "true"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	org := &authz.Organization{SCPs: []authz.NamedPolicy{{Name: "deny-list.json", Policy: p}}}
	if d := authz.EvaluateSCPs(org, launchQuestion("instance/*", nil)); d.Allowed || !d.Explicit {
		t.Errorf("untagged: %+v", d)
	}
	if d := authz.EvaluateSCPs(org, launchQuestion("instance/*", map[string][]string{"aws:RequestTag/CostCenter": {"1"}})); !d.Allowed {
		t.Errorf("tagged: %+v", d)
	}
	if d := authz.EvaluateSCPs(org, authz.Question{Action: "iam:PassRole", Resource: demoNodeARN}); !d.Allowed {
		t.Errorf("other action: %+v", d)
	}
	if org.Shapes("iam:PassRole") || !org.Shapes("ec2:RunInstances") {
		t.Error("Shapes: the deny list shapes RunInstances only")
	}
}

// TestSCPFixNamesTag: the fix of an SCP denial whose SCP tests a request
// tag the request lacks names the tag, and adds no identity statement
// (the role's own policies allow the request).
func TestSCPFixNamesTag(t *testing.T) {
	org := &authz.Organization{SCPs: []authz.NamedPolicy{scp(t, costCenterSCP)}}
	q := launchQuestion("instance/*", nil)
	d, err := authz.WithOrganization(loadSample(t), org).Decide(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	fix := authz.SuggestFix([]authz.Denial{{Question: q, Decision: d}})
	if len(fix.Changes) != 1 || fix.Changes[0].Document.Type != "service control policy" || !strings.HasSuffix(fix.Summary, "(ask your AWS Organizations administrator); or make the requests carry the tag(s) it tests: CostCenter") {
		t.Errorf("fix %+v", fix)
	}
}
