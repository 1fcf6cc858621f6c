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

// liveArgs point check and snapshot at the local IAM, EKS, EC2 and SSM
// endpoints; the Kubernetes version comes from EKS's DescribeCluster.
func liveArgs(url, ctl string) []string {
	return []string{"--iam-endpoint", url, "--eks-endpoint", url, "--ec2-endpoint", url, "--ssm-endpoint", url,
		"--iam-timeout", "20s", "--controller-role", ctl, "--cluster-name", "demo", "--region", "us-west-2"}
}

// verdicts is a report reduced to what a verdict is: per object, allowed,
// and each finding's code and field.
func verdicts(r report) []string {
	var out []string
	for _, res := range r.Results {
		line := res.Source + ": "
		if res.Allowed {
			line += "allowed"
		} else {
			line += "denied"
		}
		for _, it := range res.Denials {
			line += " deny:" + it.Code + "@" + it.Field
		}
		for _, it := range res.Warnings {
			line += " warn:" + it.Code + "@" + it.Field
		}
		out = append(out, line)
	}
	return out
}

// TestSnapshotAgreesWithLive: `snapshot` through the real SDK clients
// against the local IAM, EKS, EC2 and SSM endpoints, then `check` on what
// it wrote, gives the verdicts `check` gives live, for every controller
// role and testdata folder; and the report equals, byte for byte, the one
// from the full account snapshot the endpoints serve: the written snapshot
// holds everything check needs, and only a part of the account.
func TestSnapshotAgreesWithLive(t *testing.T) {
	setDummyAWS(t)
	srv, url := startIAM(t)
	full, err := os.Stat(snapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctl := range []string{ctlKarpenter, ctlLimited, ctlBounded} {
		for _, dir := range []string{"testdata/codes", "testdata/mixed", "testdata/bad", "testdata/good"} {
			name := filepath.Base(ctl) + " " + dir
			file := filepath.Join(t.TempDir(), "snapshot.json")
			srv.ResetCalls()
			snap := runCmd(t, "", append(append([]string{"snapshot"}, liveArgs(url, ctl)...), "--output-file", file, dir)...)
			if snap.code != 0 || snap.stdout != "" {
				t.Fatalf("%s: snapshot exit %d, stdout %q\n%s", name, snap.code, snap.stdout, snap.stderr)
			}
			for _, want := range []string{"reading IAM: ", "reading EKS: ", "wrote " + file, "read everything check needs"} {
				if !strings.Contains(snap.stderr, want) {
					t.Errorf("%s: stderr does not say %q:\n%s", name, want, snap.stderr)
				}
			}
			if n := srv.Calls("SimulatePrincipalPolicy"); n != 0 {
				t.Errorf("%s: snapshot made %d SimulatePrincipalPolicy calls; it reads the policies instead", name, n)
			}
			written, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if written.Size() >= full.Size() {
				t.Errorf("%s: the snapshot has %d bytes, the whole account %d", name, written.Size(), full.Size())
			}
			if dir == "testdata/codes" && (!strings.Contains(snap.stderr, "reading EC2: ") || !strings.Contains(snap.stderr, "reading SSM: ") || !strings.Contains(snap.stderr, "reading KMS: ")) {
				t.Errorf("%s: no progress line for EC2, SSM or KMS:\n%s", name, snap.stderr)
			}
			if _, err := authz.LoadSnapshotFile(file); err != nil {
				t.Fatalf("%s: the written snapshot does not load: %v", name, err)
			}

			live := runCmd(t, "", checkArgs(append(liveArgs(url, ctl), "-o", "json"), dir)...)
			offline := runCmd(t, "", checkArgs([]string{"--iam-snapshot", file, "--controller-role", ctl, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"}, dir)...)
			if offline.code != live.code {
				t.Errorf("%s: exit %d on the written snapshot, %d live; stderr %s%s", name, offline.code, live.code, offline.stderr, live.stderr)
			}
			if o, l := verdicts(parseReport(t, offline.stdout)), verdicts(parseReport(t, live.stdout)); !slices.Equal(o, l) {
				t.Errorf("%s: verdicts differ\nwritten snapshot:\n%s\nlive:\n%s", name, strings.Join(o, "\n"), strings.Join(l, "\n"))
			}
			whole := runCmd(t, "", checkArgs(append(iamArgs(ctl), "-o", "json"), dir)...)
			if whole.stdout != offline.stdout {
				t.Errorf("%s: the report on the written snapshot differs from the report on the whole account's\n--- written\n%s\n--- whole\n%s", name, offline.stdout, whole.stdout)
			}
		}
	}

	// Only what check needs: over the good folder, the controller's
	// policies, none of the other controllers'.
	file := filepath.Join(t.TempDir(), "good.json")
	if res := runCmd(t, "", append(append([]string{"snapshot"}, liveArgs(url, ctlKarpenter)...), "--output-file", file, "testdata/good")...); res.code != 0 {
		t.Fatalf("snapshot: exit %d\n%s", res.code, res.stderr)
	}
	var doc struct {
		RoleDetailList []struct {
			RoleName       string
			RolePolicyList []json.RawMessage
		}
	}
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, r := range doc.RoleDetailList {
		roles = append(roles, r.RoleName)
		if r.RoleName == "KarpenterControllerRole" && len(r.RolePolicyList) == 0 {
			t.Error("KarpenterControllerRole is written without its inline policies")
		}
	}
	if !slices.Contains(roles, "KarpenterControllerRole") || slices.Contains(roles, "LimitedControllerRole") || slices.Contains(roles, "BoundedControllerRole") {
		t.Errorf("roles written for testdata/good under KarpenterControllerRole: %v", roles)
	}
}

// TestSnapshotCannotRead: an answer the caller may not have (EC2 refuses
// DescribeImages) is named on stderr, is not fatal, and leaves its section
// out, so that check on the snapshot reports those checks skipped.
func TestSnapshotCannotRead(t *testing.T) {
	setDummyAWS(t)
	srv, url := startIAM(t)
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: "ec2:DescribeImages", Always: true})
	file := filepath.Join(t.TempDir(), "snapshot.json")
	res := runCmd(t, "", append(append([]string{"snapshot"}, liveArgs(url, ctlKarpenter)...), "--output-file", file, "testdata/codes/ImageArchitectureMismatch.yaml")...)
	if res.code != 0 {
		t.Fatalf("snapshot: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "could not read EC2 DescribeImages") || !strings.Contains(res.stderr, "no Images section") {
		t.Errorf("stderr does not name the refused call and its effect:\n%s", res.stderr)
	}
	data, _ := os.ReadFile(file)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["Images"]; ok {
		t.Errorf("the snapshot has an Images section after DescribeImages was refused")
	}
	chk := runCmd(t, "", checkArgs([]string{"--iam-snapshot", file, "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"}, "testdata/codes/ImageArchitectureMismatch.yaml")...)
	if got := codesBySource(parseReport(t, chk.stdout)); len(got) == 0 || !strings.Contains(got[0], "SelectorChecksSkipped") {
		t.Errorf("check on a snapshot without images: %q; want SelectorChecksSkipped", got)
	}
}

// TestSnapshotUnusable: snapshot refuses what it cannot use, exit 2.
func TestSnapshotUnusable(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no controller role", []string{"snapshot", "testdata/good"}, "--controller-role is required"},
		{"nothing to read", []string{"snapshot", "--controller-role", ctlKarpenter}, "no PATH given"},
		{"a snapshot as input", []string{"snapshot", "--controller-role", ctlKarpenter, "--iam-snapshot", snapshotFile, "testdata/good"}, "--iam-snapshot"},
		{"missing file", []string{"snapshot", "--controller-role", ctlKarpenter, "testdata/no-such-file.yaml"}, "no-such-file.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCmd(t, "", tc.args...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) || res.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", res.code, res.stdout, res.stderr, tc.want)
			}
		})
	}
}

// TestSnapshotAWSAuth: a snapshot's awsAuth section (what snapshot
// --kubeconfig writes of the cluster's kube-system/aws-auth) is the
// aws-auth check reads when the input has none; the input's wins.
func TestSnapshotAWSAuth(t *testing.T) {
	data, err := os.ReadFile(snapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(awsAuth any) string {
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		doc["cluster"].(map[string]any)["accessConfig"] = map[string]any{"authenticationMode": "CONFIG_MAP"}
		if awsAuth != nil {
			doc["awsAuth"] = awsAuth
		}
		out, _ := json.Marshal(doc)
		file := filepath.Join(t.TempDir(), "snapshot.json")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	codes := func(file string, paths ...string) []string {
		res := runCmd(t, "", checkArgs([]string{"--iam-snapshot", file, "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"}, paths...)...)
		return codesBySource(parseReport(t, res.stdout))
	}
	missing := "testdata/codes/AWSAuthRoleMissing.yaml"
	mapRoles := "- rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-nogroups\n  groups: [system:nodes]\n"
	for _, tc := range []struct {
		name    string
		awsAuth any
		paths   []string
		want    string
	}{
		{"no section, no input", nil, []string{missing}, "NodeJoinChecksSkipped"},
		{"the section", map[string]any{"data": map[string]string{"mapRoles": mapRoles}}, []string{missing}, "AWSAuthRoleMissing"},
		{"a cluster without aws-auth", map[string]any{"absent": true}, []string{missing}, "AWSAuthRoleMissing"},
		{"the input's wins", map[string]any{"data": map[string]string{"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo\n  groups: [system:bootstrappers, system:nodes]\n"}},
			[]string{missing, "testdata/codes/aws-auth.yaml"}, "AWSAuthRoleMissing"},
	} {
		got := codes(write(tc.awsAuth), tc.paths...)
		if len(got) == 0 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%s: %q, want %s", tc.name, got, tc.want)
		}
	}
}

// TestSnapshotPolicyUnreadable: a controller role whose policies cannot be
// read (IAM refuses ListAttachedRolePolicies) is named with the API, and
// check on that snapshot does not pass the permission checks it cannot
// evaluate.
func TestSnapshotPolicyUnreadable(t *testing.T) {
	setDummyAWS(t)
	srv, url := startIAM(t)
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: "ListAttachedRolePolicies", Always: true})
	file := filepath.Join(t.TempDir(), "snapshot.json")
	res := runCmd(t, "", append(append([]string{"snapshot"}, liveArgs(url, ctlKarpenter)...), "--output-file", file, "testdata/good/ec2nodeclass.yaml")...)
	if res.code != 0 || !strings.Contains(res.stderr, "could not read IAM ListAttachedRolePolicies (the policies of role KarpenterControllerRole): AccessDenied") {
		t.Fatalf("snapshot: exit %d\n%s", res.code, res.stderr)
	}
	chk := runCmd(t, "", checkArgs([]string{"--iam-snapshot", file, "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"}, "testdata/good/ec2nodeclass.yaml")...)
	if chk.code == 0 || !strings.Contains(chk.stdout, "IAMUnavailable") {
		t.Errorf("check passed permission checks the snapshot cannot answer, or did not say why:\n%s%s", chk.stdout, chk.stderr)
	}
}
