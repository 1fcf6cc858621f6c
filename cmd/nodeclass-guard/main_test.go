package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// positionRE matches the "file:line:col: " a text report line starts with.
var positionRE = regexp.MustCompile(`^testdata/[^:]+:[1-9][0-9]*:[1-9][0-9]*: `)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

const (
	snapshotFile = "../../testdata/iam/sample-snapshot.json"
	ctlKarpenter = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	ctlLimited   = "arn:aws:iam::111122223333:role/LimitedControllerRole"
	ctlBounded   = "arn:aws:iam::111122223333:role/BoundedControllerRole"
)

// iamArgs are the flags of the shared scenario.
func iamArgs(ctl string) []string {
	return []string{"--iam-snapshot", snapshotFile, "--controller-role", ctl, "--cluster-name", "demo", "--region", "us-west-2"}
}

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func checkArgs(extra []string, paths ...string) []string {
	return append(append([]string{"check"}, extra...), paths...)
}

// report mirrors the contract's JSON report, strictly.
type report struct {
	// Karpenter: the Karpenter version whose requests were asked (an
	// extension).
	Karpenter *struct {
		Version string `json:"version"`
		Given   string `json:"given"`
		Source  string `json:"source"`
		Note    string `json:"note"`
	} `json:"karpenter"`
	Results []struct {
		Source     string `json:"source"`
		File       string `json:"file"`
		Line       int    `json:"line"`
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Allowed    bool   `json:"allowed"`
		Denials    []item `json:"denials"`
		Warnings   []item `json:"warnings"`
		// NotChecked: requests not asked yet (an extension).
		NotChecked []struct {
			Steps    []string `json:"steps"`
			Action   string   `json:"action"`
			Resource string   `json:"resource"`
			Reason   string   `json:"reason"`
		} `json:"notChecked"`
	} `json:"results"`
}

type item struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	// Fix is set on the controller-permission denials (fix_test.go).
	Fix *authz.Fix `json:"fix"`
	// Causes: a NodeClassInvalid denial's class denials (an extension the
	// contract names).
	Causes []item `json:"causes,omitempty"`
}

func parseReport(t *testing.T, out string) report {
	t.Helper()
	var r report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not the contract's JSON report: %v\n%s", err, out)
	}
	if r.Results == nil {
		t.Fatalf("results is not an array: %s", out)
	}
	for _, res := range r.Results {
		if res.Denials == nil || res.Warnings == nil {
			t.Errorf("%s: denials and warnings must be arrays, even empty", res.Source)
		}
		if res.Allowed != (len(res.Denials) == 0) {
			t.Errorf("%s: allowed %v with %d denials", res.Source, res.Allowed, len(res.Denials))
		}
		for _, it := range append(slices.Clone(res.Denials), res.Warnings...) {
			if it.Code == "" || it.Field == "" || it.Message == "" || strings.ContainsAny(it.Message, "\r\n") {
				t.Errorf("%s: item %+v: want a code, a field and a one-line message", res.Source, it)
			}
			if it.Line < res.Line || it.Column < 1 {
				t.Errorf("%s (line %d): item %s %s at line %d, column %d", res.Source, res.Line, it.Code, it.Field, it.Line, it.Column)
			}
			if (it.Code == "NodeClassInvalid") != (len(it.Causes) > 0) {
				t.Errorf("%s: item %s has %d causes; NodeClassInvalid, and only it, carries its class's denials", res.Source, it.Code, len(it.Causes))
			}
			for _, c := range it.Causes {
				if c.Code == "" || c.Field == "" || c.Message == "" || !strings.Contains(it.Message, "["+c.Code+"]") {
					t.Errorf("%s: cause %+v: want a code, a field and a message, quoted by the denial", res.Source, c)
				}
			}
		}
	}
	return r
}

// codesBySource returns "source: DENY codes | WARN codes" lines.
func codesBySource(r report) []string {
	var out []string
	for _, res := range r.Results {
		var d, w []string
		for _, it := range res.Denials {
			d = append(d, it.Code)
		}
		for _, it := range res.Warnings {
			w = append(w, it.Code)
		}
		out = append(out, res.Source+": "+strings.Join(d, ",")+" | "+strings.Join(w, ","))
	}
	return out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/nodeclass-guard -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestCheckGolden runs check over the testdata folders and compares the
// JSON (and one text) report with the golden files.
func TestCheckGolden(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		paths    []string
		exit     int
		golden   string
		wantByID []string // "source: denials | warnings"
	}{
		{name: "good", args: iamArgs(ctlKarpenter), paths: []string{"testdata/good"}, exit: 0, golden: "good.json",
			wantByID: []string{
				"testdata/good/ec2nodeclass.yaml#1:  | ",
				"testdata/good/eks-auto-mode.yaml#1:  | ",
				"testdata/good/eks-auto-mode.yaml#2:  | ",
				"testdata/good/instance-profile.yaml#1:  | ",
				"testdata/good/nodepool.yaml#1:  | ",
			}},
		{name: "bad", args: iamArgs(ctlKarpenter), paths: []string{"testdata/bad"}, exit: 1, golden: "bad.json",
			wantByID: []string{
				"testdata/bad/role-arn.yaml#1: RoleIsARN | ",
				"testdata/bad/role-path.yaml#1: PassRoleDenied | RoleHasPath",
				"testdata/bad/trust-and-profile.yaml#1: RoleTrustMissingEC2 | ",
				"testdata/bad/trust-and-profile.yaml#2: InstanceProfileHasNoRole | ",
			}},
		{name: "mixed", args: iamArgs(ctlKarpenter), paths: []string{"testdata/mixed"}, exit: 1, golden: "mixed.json",
			wantByID: []string{
				"testdata/mixed/classes.yaml#1:  | ",
				"testdata/mixed/classes.yaml#3: PassRoleDenied | ",
				"testdata/mixed/list.json#1/items/0:  | ",
				"testdata/mixed/list.json#1/items/1:  | ",
				"testdata/mixed/pools/nodepools.yaml#1:  | ",
				"testdata/mixed/pools/nodepools.yaml#2: NodeClassInvalid | ",
				"testdata/mixed/pools/nodepools.yaml#3:  | NodeClassNotFound",
			}},
		{name: "missing class alone exits 0", args: iamArgs(ctlKarpenter), paths: []string{"testdata/mixed/pools/nodepools.yaml"}, exit: 0,
			wantByID: []string{
				"testdata/mixed/pools/nodepools.yaml#1:  | NodeClassNotFound",
				"testdata/mixed/pools/nodepools.yaml#2:  | NodeClassNotFound",
				"testdata/mixed/pools/nodepools.yaml#3:  | NodeClassNotFound",
			}},
		{name: "offline", args: []string{"--offline"}, paths: []string{"testdata/offline"}, exit: 1, golden: "offline.json",
			wantByID: []string{
				"testdata/offline/format.yaml#1: RoleIsARN | ",
				"testdata/offline/format.yaml#2:  | RoleHasPath",
				"testdata/offline/format.yaml#3: InstanceProfileIsARN | ",
				"testdata/offline/format.yaml#4: RoleInstanceProfileExclusive | ",
				"testdata/offline/format.yaml#5:  | InstanceProfileNamePrefix",
				"testdata/offline/format.yaml#6:  | ",
			}},
		{name: "offline with a controller role finds cross-account roles", args: []string{"--offline", "--controller-role", ctlKarpenter},
			paths: []string{"testdata/codes/RoleCrossAccount.yaml"}, exit: 1,
			wantByID: []string{"testdata/codes/RoleCrossAccount.yaml#1: RoleIsARN,RoleCrossAccount | "}},
		// The class is refused for its images' architectures only when no
		// NodePool could use it; here one can, so only the other is refused.
		{name: "an arm64 class, an amd64-only NodePool and one allowing arm64", args: iamArgs(ctlKarpenter), paths: []string{"testdata/arch"}, exit: 1,
			wantByID: []string{
				"testdata/arch/shared-class.yaml#1:  | ",
				"testdata/arch/shared-class.yaml#2: ImageArchitectureMismatch | ",
				"testdata/arch/shared-class.yaml#3:  | ",
			}},
		// EKS Auto Mode NodeClasses' selector terms, judged as an
		// EC2NodeClass's.
		{name: "Auto Mode NodeClass selectors", args: iamArgs(ctlKarpenter), paths: []string{"testdata/automode"}, exit: 1,
			wantByID: []string{
				"testdata/automode/selectors.yaml#1:  | SelectorTermMatchesNothing",
				"testdata/automode/selectors.yaml#2: SelectorMatchesNothing | ",
				"testdata/automode/selectors.yaml#3:  | ",
			}},
		{name: "several paths, a file twice", args: iamArgs(ctlKarpenter), paths: []string{"testdata/bad/role-arn.yaml", "testdata/good/nodepool.yaml", "testdata/bad/role-arn.yaml"}, exit: 1,
			wantByID: []string{
				"testdata/bad/role-arn.yaml#1: RoleIsARN | ",
				"testdata/good/nodepool.yaml#1:  | NodeClassNotFound",
				"testdata/bad/role-arn.yaml#1: RoleIsARN | ",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCmd(t, "", checkArgs(append(slices.Clone(tc.args), "-o", "json"), tc.paths...)...)
			if res.code != tc.exit {
				t.Errorf("exit %d, want %d; stderr:\n%s", res.code, tc.exit, res.stderr)
			}
			r := parseReport(t, res.stdout)
			if got := codesBySource(r); !slices.Equal(got, tc.wantByID) {
				t.Errorf("codes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.wantByID, "\n"))
			}
			if tc.golden != "" {
				golden(t, tc.golden, res.stdout)
			}
		})
	}
}

// TestCheckTextReport pins the text report's shape.
func TestCheckTextReport(t *testing.T) {
	res := runCmd(t, "", checkArgs(iamArgs(ctlKarpenter), "testdata/mixed", "testdata/bad/role-path.yaml")...)
	if res.code != 1 {
		t.Errorf("exit %d, want 1; stderr: %s", res.code, res.stderr)
	}
	golden(t, "mixed.txt", res.stdout)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "8 object(s): 4 allowed, 1 allowed with warnings, 3 denied" {
		t.Errorf("summary line %q", last)
	}
	for _, l := range lines {
		switch {
		case l == "", strings.HasPrefix(l, "8 object(s)"):
		case l == "permission checks asked Karpenter 1.15's requests (default: the newest modelled version)":
		case strings.HasPrefix(l, "      not checked: "):
			if !strings.Contains(l, "on the class's image, subnet, security-group") {
				t.Errorf("not-checked line %q: want the actions and the resources not asked", l)
			}
		case strings.HasPrefix(l, "ok    "), strings.HasPrefix(l, "warn  "), strings.HasPrefix(l, "DENY  "):
			if !strings.HasSuffix(l, ")") || !strings.Contains(l, "  (testdata/") {
				t.Errorf("object line %q: want `<verdict>  <Kind>/<name>  (<source>)`", l)
			}
		case strings.HasPrefix(l, "      denied   "):
			if !positionRE.MatchString(l[15:]) || !strings.Contains(l, ": [") {
				t.Errorf("denial line %q: want `<file>:<line>:<col>: <field>: [<Code>] <message>`", l)
			}
		case strings.HasPrefix(l, "      warning  "):
			if !positionRE.MatchString(l[15:]) || !strings.Contains(l, ": [") {
				t.Errorf("warning line %q: want `<file>:<line>:<col>: [<Code>] <field>: <message>`", l)
			}
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	if res.stderr != "" {
		t.Errorf("stderr %q, want nothing", res.stderr)
	}
}

func TestCheckStdin(t *testing.T) {
	data, err := os.ReadFile("testdata/bad/trust-and-profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := runCmd(t, string(data), checkArgs(append(iamArgs(ctlKarpenter), "-o", "json"), "-", "testdata/good/ec2nodeclass.yaml")...)
	if res.code != 1 {
		t.Errorf("exit %d, want 1; stderr: %s", res.code, res.stderr)
	}
	want := []string{
		"<stdin>#1: RoleTrustMissingEC2 | ",
		"<stdin>#2: InstanceProfileHasNoRole | ",
		"testdata/good/ec2nodeclass.yaml#1:  | ",
	}
	if got := codesBySource(parseReport(t, res.stdout)); !slices.Equal(got, want) {
		t.Errorf("codes %q, want %q", got, want)
	}

	res = runCmd(t, "kind: Nothing\n", checkArgs([]string{"--offline"}, "-")...)
	if res.code != 0 || res.stdout != "no EC2NodeClass, NodePool or EKS NodeClass found in the input\n" {
		t.Errorf("nothing on stdin: exit %d, stdout %q", res.code, res.stdout)
	}
}

// TestCheckUnusableInput covers exit 2: a message on stderr naming the
// file (and the line, where known), nothing on stdout.
func TestCheckUnusableInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{name: "missing file", args: checkArgs([]string{"--offline"}, "testdata/good", "testdata/no-such-file.yaml"),
			want: []string{"testdata/no-such-file.yaml: ", "no such file"}},
		{name: "a folder's dangling link", args: checkArgs([]string{"--offline"}, "DANGLING"), want: []string{"gone.yaml: "}},
		{name: "tab-indented document 3", args: checkArgs([]string{"--offline"}, "testdata/invalid/tab-doc3.yaml"),
			want: []string{"testdata/invalid/tab-doc3.yaml:20: document 3: invalid YAML"}},
		{name: "invalid YAML on stdin", args: checkArgs([]string{"--offline"}, "-"), stdin: "a: b\n---\nc: [d\n",
			want: []string{"<stdin>:3: document 2: invalid YAML"}},
		{name: "field of the wrong type", args: checkArgs([]string{"--offline"}, "testdata/invalid/wrong-type.yaml"),
			want: []string{"testdata/invalid/wrong-type.yaml:8: document 2", `EC2NodeClass "typed"`, "spec.role", "want string"}},
		{name: "unknown -o", args: checkArgs([]string{"--offline", "-o", "yaml"}, "testdata/good"), want: []string{`-o "yaml": want text, json or sarif`}},
		{name: "no PATH", args: checkArgs([]string{"--offline"}), want: []string{"no PATH given"}},
		{name: "offline and a snapshot", args: checkArgs(append(iamArgs(ctlKarpenter), "--offline"), "testdata/good"), want: []string{"--offline and --iam-snapshot exclude each other"}},
		{name: "malformed controller role", args: checkArgs([]string{"--offline", "--controller-role", "KarpenterControllerRole"}, "testdata/good"),
			want: []string{"--controller-role", "not an ARN"}},
		{name: "controller role not in the snapshot", args: checkArgs(iamArgs("arn:aws:iam::111122223333:role/NoSuchController"), "testdata/good"),
			want: []string{"controller role", "NoSuchController"}},
		{name: "missing snapshot", args: checkArgs([]string{"--iam-snapshot", "testdata/no-such-snapshot.json"}, "testdata/good"),
			want: []string{"--iam-snapshot", "testdata/no-such-snapshot.json"}},
		{name: "snapshot that is not one", args: checkArgs([]string{"--iam-snapshot", "testdata/good/nodepool.yaml"}, "testdata/good"),
			want: []string{"--iam-snapshot", "testdata/good/nodepool.yaml"}},
		{name: "bad --on-iam-error", args: checkArgs([]string{"--offline", "--on-iam-error", "maybe"}, "testdata/good"), want: []string{"--on-iam-error"}},
		{name: "unknown flag", args: checkArgs([]string{"--no-such-flag"}, "testdata/good"), want: []string{"no-such-flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := slices.Clone(tc.args)
			if i := slices.Index(args, "DANGLING"); i >= 0 {
				dir := t.TempDir()
				if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "gone.yaml")); err != nil {
					t.Skip(err)
				}
				args[i] = dir
			}
			res := runCmd(t, tc.stdin, args...)
			if res.code != 2 {
				t.Errorf("exit %d, want 2", res.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q does not contain %q", res.stderr, w)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	if res := runCmd(t, ""); res.code != 2 || !strings.Contains(res.stderr, "Usage:") {
		t.Errorf("no command: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := runCmd(t, "", "frobnicate"); res.code != 2 || !strings.Contains(res.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := runCmd(t, "", "version"); res.code != 0 || !strings.HasPrefix(res.stdout, "nodeclass-guard ") {
		t.Errorf("version: exit %d, stdout %q", res.code, res.stdout)
	}
	if res := runCmd(t, "", "help"); res.code != 0 || !strings.Contains(res.stdout, "nodeclass-guard check") {
		t.Errorf("help: exit %d, stdout %q", res.code, res.stdout)
	}
	// Help goes to stdout, as kubectl's does.
	if res := runCmd(t, "", "check", "-h"); res.code != 0 || !strings.Contains(res.stdout, "Exit codes") {
		t.Errorf("check -h: exit %d, stdout %q", res.code, res.stdout)
	}
}

// TestCheckExamples runs the command the README shows over examples/.
func TestCheckExamples(t *testing.T) {
	res := runCmd(t, "", checkArgs(append(iamArgs(ctlKarpenter), "-o", "json"), "../../examples/")...)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", res.code, res.stderr)
	}
	r := parseReport(t, res.stdout)
	byFile := map[string][]string{}
	for _, res := range r.Results {
		file := filepath.Base(strings.SplitN(res.Source, "#", 2)[0])
		for _, it := range res.Denials {
			byFile[file] = append(byFile[file], it.Code)
		}
		for _, it := range res.Warnings {
			byFile[file] = append(byFile[file], it.Code)
		}
	}
	want := map[string][]string{
		"empty-instance-profile.yaml": {"InstanceProfileHasNoRole"},
		"nodepool-missing-class.yaml": {"NodeClassNotFound"},
		"role-arn.yaml":               {"RoleIsARN", "PassRoleDenied"},
		"role-path-passrole.yaml":     {"PassRoleDenied", "RoleHasPath"},
		"role-trust-missing-ec2.yaml": {"RoleTrustMissingEC2"},
		"auto-mode-role-path.yaml":    {"NodeAccessEntryMissing", "AutoModeRoleHasPath"},
		"subnet-term-typo.yaml":       {"SelectorTermMatchesNothing"},
		"kubelet-typo.yaml":           {"KubeletConfigInvalid"},
	}
	for file, codes := range want {
		if !slices.Equal(byFile[file], codes) {
			t.Errorf("%s: codes %v, want %v", file, byFile[file], codes)
		}
	}
	for file, codes := range byFile {
		if _, ok := want[file]; !ok && len(codes) > 0 {
			t.Errorf("good example %s has codes %v", file, codes)
		}
	}
}

// setDummyAWS gives the SDK's default chain fixed credentials and nothing
// of the machine's.
func setDummyAWS(t *testing.T) {
	iamserver.IsolateAWSEnv(t, iamserver.TestAccessKeyID, iamserver.TestSecretAccessKey)
}

// startIAM serves the sample snapshot as a local IAM endpoint.
func startIAM(t *testing.T) (*iamserver.Server, string) {
	t.Helper()
	snap, err := authz.LoadSnapshotFile(snapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := iamserver.New(snap)
	url, stop := srv.Start()
	t.Cleanup(stop)
	// KMS has no endpoint flag: the SDK's own per-service setting.
	t.Setenv("AWS_ENDPOINT_URL_KMS", url)
	return srv, url
}

// TestCheckEveryCode: every code of the contract is producible by check,
// from testdata/codes (one document per code), under the controller roles
// and IAM states the codes need.
func TestCheckEveryCode(t *testing.T) {
	contract := []string{
		"RoleInvalidName", "RoleIsARN", "RoleARNMalformed", "RoleCrossAccount", "RoleHasPath",
		"RoleInstanceProfileExclusive", "InstanceProfileInvalidName", "InstanceProfileIsARN", "InstanceProfileNamePrefix",
		"RoleNotFound", "RolePathMismatch", "RoleTrustMissingEC2", "InstanceProfileNotFound", "InstanceProfileHasNoRole",
		"PassRoleDenied", "InstanceProfileActionsDenied", "InstanceProfileReadDenied", "LaunchDenied",
		"NodeClassRefUnsupported", "NodeClassNotFound", "NodeClassInvalid",
		"IAMUnavailable",
		// The node-join extension.
		"NodeAccessEntryMissing", "NodeAccessEntryWrongType", "NodeAccessPolicyMissing", "AWSAuthRoleMissing",
		"AWSAuthRoleHasPath", "AWSAuthGroupsMissing", "AWSAuthUsernameWrong", "NodeJoinChecksSkipped", "AutoModeRoleHasPath",
		"AutoModePassRoleDenied", "AutoModeTagDenied", "SpotServiceLinkedRoleMissing", "ReservedCapacityUnselected",
		// The selector extension. The update codes need an UPDATE, which
		// check makes only against a cluster (--kubeconfig): their fixture
		// is check/testdata/update (check's TestRunAgainstCluster, with a
		// cluster stand-in) and the envtest case runs this binary's check
		// --kubeconfig against a real API server (TestUpdateGuard).
		"SelectorTermMatchesNothing", "SelectorMatchesNothing", "CapacityReservationTermMatchesNothing",
		"SubnetSecurityGroupVPCMismatch", "ImageArchitectureMismatch", "ImageFamilyMismatch", "SelectorChecksSkipped",
		// What the node is given: kubelet, userData, encrypted volumes.
		"KubeletConfigInvalid", "KubeletConfigUnsupported", "KubeletExpressionInvalid", "KubeletExpressionEvaluationFailed",
		"KubeletExpressionsGated", "UserDataInvalid", "UserDataWrongFamily", "UserDataSetsKarpenterField", "UserDataFieldIgnored",
		"KMSKeyNotFound", "KMSKeyNotEnabled", "KMSKeyWrongRegion", "KMSKeyAccessDenied", "EBSDefaultKMSKey", "KMSChecksSkipped",
	}
	union := map[string]bool{}
	collect := func(name string, res result, wantExit int) report {
		t.Helper()
		if res.code != wantExit {
			t.Errorf("%s: exit %d, want %d; stderr: %s", name, res.code, wantExit, res.stderr)
		}
		r := parseReport(t, res.stdout)
		for _, x := range r.Results {
			for _, it := range append(slices.Clone(x.Denials), x.Warnings...) {
				union[it.Code] = true
			}
		}
		return r
	}

	// Each file's name is the code it exists for: under the default
	// controller role, it produces that code (or, for the permission and
	// availability codes, nothing at all).
	r := collect("KarpenterControllerRole", runCmd(t, "", checkArgs(append(iamArgs(ctlKarpenter), "-o", "json"), "testdata/codes")...), 1)
	needOther := map[string]bool{"InstanceProfileActionsDenied": true, "InstanceProfileReadDenied": true, "LaunchDenied": true, "IAMUnavailable": true,
		"AWSAuthRoleMissing": true, "NodeJoinChecksSkipped": true, "SpotServiceLinkedRoleMissing": true,
		"SelectorChecksSkipped": true}
	// A file's documents together (a class and the NodePool using it).
	byFile := map[string][]string{}
	var files []string
	for _, x := range r.Results {
		file := strings.SplitN(x.Source, "#", 2)[0]
		if _, ok := byFile[file]; !ok {
			files = append(files, file)
			byFile[file] = []string{}
		}
		for _, it := range append(slices.Clone(x.Denials), x.Warnings...) {
			byFile[file] = append(byFile[file], it.Code)
		}
	}
	for _, file := range files {
		code, got := strings.TrimSuffix(filepath.Base(file), ".yaml"), byFile[file]
		if needOther[code] {
			if len(got) != 0 {
				t.Errorf("%s: codes %v under KarpenterControllerRole, want none", file, got)
			}
		} else if !slices.Contains(got, code) {
			t.Errorf("%s: codes %v, want %s among them", file, got, code)
		}
	}

	collect("LimitedControllerRole", runCmd(t, "", checkArgs(append(iamArgs(ctlLimited), "-o", "json"),
		"testdata/codes/InstanceProfileActionsDenied.yaml", "testdata/codes/InstanceProfileReadDenied.yaml", "testdata/codes/LaunchDenied.yaml")...), 1)
	collect("BoundedControllerRole", runCmd(t, "", checkArgs(append(iamArgs(ctlBounded), "-o", "json"),
		"testdata/codes/InstanceProfileActionsDenied.yaml")...), 1)

	// The node-join codes that need another account or cluster state: the
	// sample snapshot, edited.
	withSnapshot := func(name string, edit func(map[string]any)) []string {
		data, err := os.ReadFile(snapshotFile)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc)
		out, _ := json.Marshal(doc)
		file := filepath.Join(t.TempDir(), name+".json")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		args := iamArgs(ctlKarpenter)
		args[1] = file
		return append(args, "-o", "json")
	}
	configMap := withSnapshot("configmap", func(d map[string]any) {
		d["cluster"].(map[string]any)["accessConfig"] = map[string]any{"authenticationMode": "CONFIG_MAP"}
	})
	r = collect("CONFIG_MAP cluster", runCmd(t, "", checkArgs(configMap, "testdata/codes/AWSAuthRoleMissing.yaml", "testdata/codes/aws-auth.yaml")...), 1)
	if got := codesBySource(r); !slices.Equal(got, []string{"testdata/codes/AWSAuthRoleMissing.yaml#1: AWSAuthRoleMissing | "}) {
		t.Errorf("CONFIG_MAP cluster: %q", got)
	}
	noEKS := withSnapshot("no-eks", func(d map[string]any) { delete(d, "cluster"); delete(d, "AccessEntries") })
	r = collect("no EKS sections", runCmd(t, "", checkArgs(noEKS, "testdata/codes/NodeJoinChecksSkipped.yaml")...), 0)
	if got := codesBySource(r); !slices.Equal(got, []string{"testdata/codes/NodeJoinChecksSkipped.yaml#1:  | NodeJoinChecksSkipped"}) {
		t.Errorf("no EKS sections: %q", got)
	}
	noEC2 := withSnapshot("no-ec2", func(d map[string]any) {
		for _, k := range []string{"Subnets", "SecurityGroups", "Images", "CapacityReservations", "Parameters"} {
			delete(d, k)
		}
	})
	r = collect("no EC2 sections", runCmd(t, "", checkArgs(noEC2, "testdata/codes/SelectorChecksSkipped.yaml")...), 0)
	if got := codesBySource(r); !slices.Equal(got, []string{"testdata/codes/SelectorChecksSkipped.yaml#1:  | SelectorChecksSkipped"}) {
		t.Errorf("no EC2 sections: %q", got)
	}
	noSpotRole := withSnapshot("no-spot-role", func(d map[string]any) {
		var kept []any
		for _, r := range d["RoleDetailList"].([]any) {
			if r.(map[string]any)["RoleName"] != "AWSServiceRoleForEC2Spot" {
				kept = append(kept, r)
			}
		}
		d["RoleDetailList"] = kept
	})
	r = collect("no spot service-linked role", runCmd(t, "", checkArgs(noSpotRole, "testdata/codes/SpotServiceLinkedRoleMissing.yaml")...), 0)
	if got := codesBySource(r); !slices.Equal(got, []string{"testdata/codes/SpotServiceLinkedRoleMissing.yaml#1:  | ", "testdata/codes/SpotServiceLinkedRoleMissing.yaml#2:  | SpotServiceLinkedRoleMissing"}) {
		t.Errorf("no spot service-linked role: %q", got)
	}

	// IAM down: the live API through a local endpoint that fails every call.
	setDummyAWS(t)
	srv, url := startIAM(t)
	srv.FailAlways(iamserver.ServiceFailure)
	live := []string{"--iam-endpoint", url, "--eks-endpoint", url, "--ec2-endpoint", url, "--ssm-endpoint", url, "--kubernetes-version", "1.34", "--iam-timeout", "500ms", "--controller-role", ctlKarpenter, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"}
	res := runCmd(t, "", checkArgs(append(live, "--on-iam-error", "allow"), "testdata/codes/IAMUnavailable.yaml")...)
	r = collect("IAM down, allow", res, 0)
	if !strings.Contains(res.stderr, "could not resolve controller role") {
		t.Errorf("stderr %q does not say the controller role could not be resolved", res.stderr)
	}
	if got := codesBySource(r); !slices.Equal(got, []string{"testdata/codes/IAMUnavailable.yaml#1:  | IAMUnavailable"}) {
		t.Errorf("IAM down, allow: %q", got)
	}
	// check's default is deny: a CI job that cannot reach IAM fails.
	res = runCmd(t, "", checkArgs(live, "testdata/codes/IAMUnavailable.yaml")...)
	r = collect("IAM down, default (deny)", res, 1)
	if got := codesBySource(r); !slices.Equal(got, []string{"testdata/codes/IAMUnavailable.yaml#1: IAMUnavailable | "}) {
		t.Errorf("IAM down, deny: %q", got)
	}

	var got []string
	for c := range union {
		got = append(got, c)
	}
	sort.Strings(got)
	want := slices.Clone(contract)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("codes produced by check\n%v\nwant the contract's\n%v", got, want)
	}
}

// TestCheckLiveAgreesWithSnapshot runs check over the same folders with the
// snapshot and with the live IAM API (the local endpoint): the codes agree.
func TestCheckLiveAgreesWithSnapshot(t *testing.T) {
	setDummyAWS(t)
	srv, url := startIAM(t)
	for _, ctl := range []string{ctlKarpenter, ctlLimited, ctlBounded} {
		for _, dir := range []string{"testdata/codes", "testdata/mixed", "testdata/bad", "testdata/good"} {
			snap := runCmd(t, "", checkArgs(append(iamArgs(ctl), "-o", "json"), dir)...)
			live := runCmd(t, "", checkArgs([]string{"--iam-endpoint", url, "--eks-endpoint", url, "--ec2-endpoint", url, "--ssm-endpoint", url, "--kubernetes-version", "1.34", "--iam-timeout", "20s", "--controller-role", ctl, "--cluster-name", "demo", "--region", "us-west-2", "-o", "json"}, dir)...)
			if snap.code != live.code {
				t.Errorf("%s, %s: exit %d with the snapshot, %d live; stderr %s", filepath.Base(ctl), dir, snap.code, live.code, live.stderr)
			}
			s, l := codesBySource(parseReport(t, snap.stdout)), codesBySource(parseReport(t, live.stdout))
			if !slices.Equal(s, l) {
				t.Errorf("%s, %s: codes differ\nsnapshot:\n%s\nlive:\n%s", filepath.Base(ctl), dir, strings.Join(s, "\n"), strings.Join(l, "\n"))
			}
		}
	}
	if srv.Calls("SimulatePrincipalPolicy") == 0 {
		t.Error("the live runs never reached the endpoint")
	}
}

// TestAuditUnusableFlags: `audit` and serve's audit flags refuse what they
// cannot use with exit 2 before touching a cluster.
func TestAuditUnusableFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown -o", []string{"audit", "-o", "yaml"}, `-o "yaml": want text or json`},
		{"arguments", []string{"audit", "some.yaml"}, "unexpected arguments"},
		{"unreadable kubeconfig", []string{"audit", "--kubeconfig", "testdata/no-such-kubeconfig"}, "--kubeconfig testdata/no-such-kubeconfig"},
		{"negative interval", []string{"serve", "--audit-interval=-1s"}, "--audit-interval"},
		{"zero qps", []string{"serve", "--audit-qps=0"}, "--audit-qps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCmd(t, "", tc.args...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", res.code, res.stderr, tc.want)
			}
		})
	}
	if res := runCmd(t, "", "audit", "-h"); res.code != 0 || !strings.Contains(res.stdout, "Exit codes") {
		t.Errorf("audit -h: exit %d, stdout %q", res.code, res.stdout)
	}
}
