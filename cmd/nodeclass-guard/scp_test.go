package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

const (
	scpFile = "testdata/scp/require-cost-center.json"
	scpARN  = "arn:aws:organizations::999988887777:policy/o-example/service_control_policy/p-costcenter"
)

// scpVerdicts is what the cost-center fixture must give: the class
// without CostCenter in spec.tags refused, the one with it admitted.
var scpVerdicts = []string{
	"testdata/scp/tagged.yaml#1:  | ",
	"testdata/scp/untagged.yaml#1: LaunchDenied | ",
}

// scpDenial checks the untagged class's LaunchDenied: the SCP named as
// the cause, the action and the request's tags named, the fix addressed
// to the SCP's owner and naming the tag to add; it returns the message.
func scpDenial(t *testing.T, name string, r report) string {
	t.Helper()
	for _, res := range r.Results {
		if res.Name != "untagged" {
			continue
		}
		if len(res.Denials) != 1 {
			t.Fatalf("%s: denials %+v", name, res.Denials)
		}
		msg := res.Denials[0].Message
		for _, want := range []string{
			"may not ec2:RunInstances on instance/*",
			"karpenter.k8s.aws/ec2nodeclass=untagged",
			"explicitly denied by a service control policy of your organization",
			"The service control policy tests the tag CostCenter, which the request does not carry: add it to spec.tags",
			"ask your AWS Organizations administrator, who owns the service control policies",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message lacks %q:\n%s", name, want, msg)
			}
		}
		return msg
	}
	t.Fatalf("%s: no result for the untagged class", name)
	return ""
}

// TestCheckSCP: the cost-center SCP refuses the class without the tag
// and admits the one with it, naming the SCP as the cause: offline with
// --scp, offline with the snapshot's Organization section (word for word
// the same), and live through the local endpoint's SCP layer with the
// real SDK clients (word for word the same but for the SCP's name and
// statement, which IAM does not tell).
func TestCheckSCP(t *testing.T) {
	run := func(name string, args []string, exit int) string {
		t.Helper()
		res := runCmd(t, "", checkArgs(append(args, "-o", "json"), "testdata/scp")...)
		if res.code != exit {
			t.Fatalf("%s: exit %d, want %d; stderr %s", name, res.code, exit, res.stderr)
		}
		r := parseReport(t, res.stdout)
		if got := codesBySource(r); !slices.Equal(got, scpVerdicts) {
			t.Errorf("%s: codes\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(scpVerdicts, "\n"))
		}
		return scpDenial(t, name, r)
	}
	named := ` (SCP "` + scpARN + `", statement "RequireCostCenter")`
	offline := run("--scp", append(iamArgs(ctlKarpenter), "--scp", scpFile), 1)
	if !strings.Contains(offline, named) {
		t.Errorf("--scp: the message does not name the SCP and statement:\n%s", offline)
	}

	// Without the SCP, both classes pass.
	res := runCmd(t, "", checkArgs(append(iamArgs(ctlKarpenter), "-o", "json"), "testdata/scp")...)
	if res.code != 0 {
		t.Errorf("no SCP: exit %d, want 0: %s", res.code, res.stdout)
	}

	// The snapshot's Organization section.
	np, err := authz.LoadSCPFile(scpFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(snapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var describe struct{ Policy struct{ Content string } }
	raw, _ := os.ReadFile(scpFile)
	if err := json.Unmarshal(raw, &describe); err != nil {
		t.Fatal(err)
	}
	doc["Organization"] = map[string]any{"ServiceControlPolicies": []any{map[string]any{"PolicyName": "RequireCostCenter", "Arn": scpARN, "Document": json.RawMessage(describe.Policy.Content)}}}
	out, _ := json.Marshal(doc)
	withOrg := filepath.Join(t.TempDir(), "org-snapshot.json")
	if err := os.WriteFile(withOrg, out, 0o600); err != nil {
		t.Fatal(err)
	}
	args := iamArgs(ctlKarpenter)
	args[1] = withOrg
	if section := run("Organization section", args, 1); section != offline {
		t.Errorf("Organization section:\n%s\n--scp:\n%s", section, offline)
	}

	// Live: the local endpoint in that organization.
	setDummyAWS(t)
	srv, url := startIAM(t)
	srv.SetOrganization(&authz.Organization{SCPs: []authz.NamedPolicy{np}})
	live := []string{"--iam-endpoint", url, "--eks-endpoint", url, "--ec2-endpoint", url, "--ssm-endpoint", url, "--kubernetes-version", "1.34",
		"--iam-timeout", "20s", "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2"}
	if msg := run("live", slices.Clone(live), 1); msg != strings.Replace(offline, named, "", 1) {
		t.Errorf("live:\n%s\noffline:\n%s", msg, offline)
	}
	if srv.Calls("SimulatePrincipalPolicy") < 2 {
		t.Errorf("the SCPs' verdict was not asked of the endpoint (%d SimulatePrincipalPolicy calls)", srv.Calls("SimulatePrincipalPolicy"))
	}

	// The SCP layer failing: could not check, for both classes, never a pass.
	srv.InjectSCPFailure(iamserver.Failure{Fault: iamserver.ServiceFailure, Always: true})
	res = runCmd(t, "", checkArgs(append(slices.Clone(live[:len(live)-6]), "--iam-timeout", "2s", "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"), "testdata/scp")...)
	if res.code != 1 {
		t.Errorf("SCP layer failing: exit %d, want 1; stderr %s", res.code, res.stderr)
	}
	want := []string{"testdata/scp/tagged.yaml#1: IAMUnavailable | ", "testdata/scp/untagged.yaml#1: IAMUnavailable | "}
	if got := codesBySource(parseReport(t, res.stdout)); !slices.Equal(got, want) {
		t.Errorf("SCP layer failing: codes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckSCPUnusable: an SCP file that cannot be used stops check with
// exit 2 and a message naming the file.
func TestCheckSCPUnusable(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad-scp.json")
	if err := os.WriteFile(bad, []byte(`{"Policy": {"PolicySummary": {"Name": "X"}, "Content": "{\"Statement\": 7}"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"absent", append(iamArgs(ctlKarpenter), "--scp", filepath.Join(dir, "absent.json")), "absent.json"},
		{"invalid", append(iamArgs(ctlKarpenter), "--scp", scpFile, "--scp", bad), `bad-scp.json: Policy.Content (SCP "X")`},
		{"offline", []string{"--offline", "--scp", scpFile}, "--offline and --scp exclude each other"},
	} {
		res := runCmd(t, "", checkArgs(tc.args, "testdata/scp")...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) || res.stdout != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 2 naming %q", tc.name, res.code, res.stderr, res.stdout, tc.want)
		}
	}
}
