package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

func loadSampleSnapshot(t testing.TB) *authz.Snapshot {
	t.Helper()
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatalf("loading the sample snapshot: %v", err)
	}
	return snap
}

// TestRulesSnapshot runs the rules table against the snapshot view.
func TestRulesSnapshot(t *testing.T) {
	snap := loadSampleSnapshot(t)
	runRuleCases(t, snap, snap)
}

// TestRuleCasesCoverEveryCode makes the table prove each code both ways:
// some case produces it, and some case of the same kind of object does not.
func TestRuleCasesCoverEveryCode(t *testing.T) {
	type kindCode struct {
		kind string
		code Code
	}
	produced := map[kindCode]bool{}
	avoided := map[kindCode]bool{}
	any := map[Code]bool{}
	for _, tc := range ruleCases() {
		kind := fmt.Sprintf("%T", tc.obj)
		got := map[Code]bool{}
		for _, c := range append(slices.Clone(tc.deny), tc.warn...) {
			got[c] = true
		}
		for _, c := range append(slices.Clone(contractCodes), extensionCodes...) {
			if got[c] {
				produced[kindCode{kind, c}] = true
				any[c] = true
			} else {
				avoided[kindCode{kind, c}] = true
			}
		}
	}
	for _, c := range append(slices.Clone(contractCodes), extensionCodes...) {
		if !any[c] {
			t.Errorf("no case produces %s", c)
			continue
		}
		for kc := range produced {
			if kc.code == c && !avoided[kc] {
				t.Errorf("no %s case avoids %s", kc.kind, c)
			}
		}
	}
}

// TestRuleCasesDenyAndWarnKinds checks the table against the contract's
// kind column: a code listed as deny never appears as a warning and back.
func TestRuleCasesDenyAndWarnKinds(t *testing.T) {
	warnOnly := map[Code]bool{RoleHasPath: true, InstanceProfileNamePrefix: true, NodeClassRefUnsupported: true,
		NodeClassNotFound: true, IAMStale: true, PermissionChecksSkipped: true, PermissionContextMissing: true,
		PolicyConditionUnsupported: true, PolicySetOperatorMissing: true, NodeJoinChecksSkipped: true, AutoModeRoleHasPath: true, SpotServiceLinkedRoleMissing: true}
	for _, tc := range ruleCases() {
		for _, c := range tc.deny {
			if warnOnly[c] {
				t.Errorf("%s: %s is a warning in the contract, listed as a denial", tc.name, c)
			}
		}
		for _, c := range tc.warn {
			if !warnOnly[c] && c != IAMUnavailable {
				t.Errorf("%s: %s is a denial in the contract, listed as a warning", tc.name, c)
			}
		}
	}
}

// hostile role values: every one must get an answer, never a panic, with
// messages that stay short, one line and valid UTF-8.
var hostileRoles = []struct {
	name    string
	role    string
	account string
	want    []Code
	ok      bool
	ref     RoleRef
}{
	{name: "10,000 characters", role: strings.Repeat("a", 10000), account: testAccount, want: codes(RoleInvalidName)},
	{name: "10,000 characters after a path", role: "team/" + strings.Repeat("a", 10000), account: testAccount, want: codes(RoleInvalidName)},
	{name: "path of 10,000 characters", role: strings.Repeat("p", 10000) + "/Name", account: testAccount, want: codes(RoleInvalidName)},
	{name: "non-UTF-8 bytes", role: "Karpenter\xff\xfeRole", account: testAccount, want: codes(RoleInvalidName)},
	{name: "non-UTF-8 path", role: "te\xffam/KarpenterNodeRole", account: testAccount, want: codes(RoleInvalidName)},
	{name: "NUL byte", role: "Karpenter\x00Role", account: testAccount, want: codes(RoleInvalidName)},
	{name: "newline", role: "KarpenterNodeRole\nspec.role: [RoleIsARN] forged", account: testAccount, want: codes(RoleInvalidName)},
	{name: "arn: alone", role: "arn:", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "arn with five parts", role: "arn:aws:iam::111122223333", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "short account", role: "arn:aws:iam::12345:role/x", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "unknown partition", role: "arn:aws-mars:iam::111122223333:role/x", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "region in an IAM ARN", role: "arn:aws:iam:us-west-2:111122223333:role/x", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "role/ without a name", role: "arn:aws:iam::111122223333:role/", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "STS assumed-role ARN", role: "arn:aws:sts::111122223333:assumed-role/x/y", account: testAccount, want: codes(RoleARNMalformed)},
	{name: "valid ARN, no account known", role: "arn:aws:iam::444455556666:role/team/x", want: codes(RoleIsARN), ok: true,
		ref: RoleRef{Name: "x", Path: "/team/", Account: "444455556666", Partition: "aws"}},
	{name: "valid ARN, same account", role: "arn:aws:iam::111122223333:role/x", account: testAccount, want: codes(RoleIsARN), ok: true,
		ref: RoleRef{Name: "x", Path: "/", Account: testAccount, Partition: "aws"}},
	{name: "valid ARN, China", role: "arn:aws-cn:iam::111122223333:role/x", account: testAccount, want: codes(RoleIsARN), ok: true,
		ref: RoleRef{Name: "x", Path: "/", Account: testAccount, Partition: "aws-cn"}},
	{name: "valid ARN, other account", role: "arn:aws:iam::444455556666:role/x", account: testAccount, want: codes(RoleIsARN, RoleCrossAccount)},
	{name: "double slash inside the path", role: "a//b/c", account: testAccount, want: codes(RoleInvalidName)},
	{name: "double slash before the name", role: "a//b", account: testAccount, want: codes(RoleInvalidName)},
	{name: "double leading slash", role: "//b", account: testAccount, want: codes(RoleInvalidName)},
	{name: "leading slash only", role: "/KarpenterNodeRole", account: testAccount, want: codes(RoleHasPath), ok: true,
		ref: RoleRef{Name: "KarpenterNodeRole", Path: "/"}},
	{name: "leading and inner slashes", role: "/team/KarpenterNodeRole", account: testAccount, want: codes(RoleHasPath), ok: true,
		ref: RoleRef{Name: "KarpenterNodeRole", Path: "/team/"}},
	{name: "nested path", role: "a/b/c/KarpenterNodeRole", account: testAccount, want: codes(RoleHasPath), ok: true,
		ref: RoleRef{Name: "KarpenterNodeRole", Path: "/a/b/c/"}},
	{name: "trailing slash", role: "KarpenterNodeRole/", account: testAccount, want: codes(RoleInvalidName)},
	{name: "a slash alone", role: "/", account: testAccount, want: codes(RoleInvalidName)},
	{name: "unicode letters", role: "KarpenterNödeRôle", account: testAccount, want: codes(RoleInvalidName)},
	{name: "fullwidth letters", role: "ＫａｒｐｅｎｔｅｒNodeRole", account: testAccount, want: codes(RoleInvalidName)},
	{name: "unicode in the path", role: "équipe/KarpenterNodeRole", account: testAccount, want: codes(RoleInvalidName)},
	{name: "emoji", role: "🚀", account: testAccount, want: codes(RoleInvalidName)},
	{name: "every allowed punctuation", role: "a_b+c=d,e.f@g-h", account: testAccount, ok: true,
		ref: RoleRef{Name: "a_b+c=d,e.f@g-h"}},
	{name: "64 characters", role: strings.Repeat("x", 64), account: testAccount, ok: true, ref: RoleRef{Name: strings.Repeat("x", 64)}},
	{name: "65 characters", role: strings.Repeat("x", 65), account: testAccount, want: codes(RoleInvalidName)},
}

func TestCheckRoleFormatHostile(t *testing.T) {
	path := field.NewPath("spec", "role")
	for _, tc := range hostileRoles {
		t.Run(tc.name, func(t *testing.T) {
			ref, findings, ok := CheckRoleFormat(path, tc.role, tc.account)
			got := findingCodes(findings)
			if !slices.Equal(sortedCodes(got), sortedCodes(tc.want)) {
				t.Errorf("codes %v, want %v: %v", got, tc.want, findings)
			}
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && ref != tc.ref {
				t.Errorf("ref = %+v, want %+v", ref, tc.ref)
			}
			for _, f := range findings {
				checkHostileFinding(t, f)
			}
		})
	}
}

var hostileProfiles = []struct {
	name    string
	profile string
	want    []Code
	ok      string // the name to look up, "" when not ok
	msg     string
}{
	{name: "10,000 characters", profile: strings.Repeat("p", 10000), want: codes(InstanceProfileInvalidName), msg: "(10000 characters)"},
	{name: "non-UTF-8 bytes", profile: "prof\xffile", want: codes(InstanceProfileInvalidName), msg: `"prof\xffile"`},
	{name: "arn: alone", profile: "arn:", want: codes(InstanceProfileIsARN), msg: "not a valid instance-profile ARN"},
	{name: "short account", profile: "arn:aws:iam::12345:instance-profile/x", want: codes(InstanceProfileIsARN), msg: "Set spec.instanceProfile: x"},
	{name: "role ARN", profile: "arn:aws:iam::111122223333:role/x", want: codes(InstanceProfileIsARN), msg: "not a valid instance-profile ARN"},
	{name: "no name", profile: "arn:aws:iam::111122223333:instance-profile/", want: codes(InstanceProfileIsARN), msg: "not a valid instance-profile ARN"},
	{name: "pathed ARN", profile: "arn:aws:iam::111122223333:instance-profile/team/prof", want: codes(InstanceProfileIsARN), msg: "Set spec.instanceProfile: prof"},
	{name: "10,000-character ARN", profile: "arn:aws:iam::111122223333:instance-profile/" + strings.Repeat("p", 10000), want: codes(InstanceProfileIsARN), msg: "characters)"},
	{name: "path", profile: "team/prof", want: codes(InstanceProfileInvalidName)},
	{name: "leading slash", profile: "/prof", want: codes(InstanceProfileInvalidName)},
	{name: "trailing slash", profile: "prof/", want: codes(InstanceProfileInvalidName)},
	{name: "a//b", profile: "a//b", want: codes(InstanceProfileInvalidName)},
	{name: "unicode", profile: "prôfile", want: codes(InstanceProfileInvalidName)},
	{name: "newline", profile: "prof\nile", want: codes(InstanceProfileInvalidName)},
	{name: "empty", profile: "", want: codes(InstanceProfileInvalidName)},
	{name: "128 characters", profile: strings.Repeat("p", 128), ok: strings.Repeat("p", 128)},
	{name: "129 characters", profile: strings.Repeat("p", 129), want: codes(InstanceProfileInvalidName)},
	{name: "allowed punctuation", profile: "a_b+c=d,e.f@g-h", ok: "a_b+c=d,e.f@g-h"},
}

func TestCheckInstanceProfileFormatHostile(t *testing.T) {
	path := field.NewPath("spec", "instanceProfile")
	for _, tc := range hostileProfiles {
		t.Run(tc.name, func(t *testing.T) {
			name, findings, ok := CheckInstanceProfileFormat(path, tc.profile)
			if got := findingCodes(findings); !slices.Equal(sortedCodes(got), sortedCodes(tc.want)) {
				t.Errorf("codes %v, want %v: %v", got, tc.want, findings)
			}
			if ok != (tc.ok != "") || name != tc.ok {
				t.Errorf("name, ok = %q, %v; want %q", name, ok, tc.ok)
			}
			for _, f := range findings {
				checkHostileFinding(t, f)
				if tc.msg != "" && !strings.Contains(f.Message, tc.msg) {
					t.Errorf("message %q does not contain %q", f.Message, tc.msg)
				}
			}
		})
	}
}

// checkHostileFinding asserts that a finding about a hostile value is
// bounded, on one line, valid UTF-8 and never repeats a forged code.
func checkHostileFinding(t *testing.T, f Finding) {
	t.Helper()
	checkMessage(t, f)
	if len(f.Message) > 600 {
		t.Errorf("[%s] message is %d bytes long: the value is not shortened", f.Code, len(f.Message))
	}
	if line := f.DenialLine(); strings.Count(line, "[") > strings.Count(f.Message, "[")+1 {
		t.Errorf("unexpected line %q", line)
	}
	if w := f.WarningLine(); len(w) >= 256 || !utf8.ValidString(w) {
		t.Errorf("warning line %q: %d bytes", w, len(w))
	}
}

// TestHostileValuesThroughTheChecker runs every hostile value through the
// whole rule set, with IAM and offline, as spec.role and
// spec.instanceProfile of both kinds: no panic, and every line keeps its
// shape.
func TestHostileValuesThroughTheChecker(t *testing.T) {
	snap := loadSampleSnapshot(t)
	var values []string
	for _, r := range hostileRoles {
		values = append(values, r.role)
	}
	for _, p := range hostileProfiles {
		values = append(values, p.profile)
	}
	// LimitedControllerRole is denied most actions: its messages name the
	// class and the NodePool.
	ctl, _ := authz.ParseRoleARN(ctlLimited)
	for _, view := range []authz.View{snap, nil} {
		c := NewChecker(Config{IAM: view, Controller: ctl, ClusterName: testCluster, Region: testRegion,
			OnIAMError: OnIAMErrorDeny})
		for _, v := range values {
			hostileClasses := mapClasses{
				ec2: map[string]*EC2NodeClass{v: ec2Class(v, "KarpenterNodeRole-demo", "")},
				eks: map[string]*NodeClass{v: eksClass(v, "", v)},
			}
			c := c.WithClasses(hostileClasses)
			for _, verdict := range []Verdict{
				c.CheckEC2NodeClass(context.Background(), ec2Class("x", v, "")),
				c.CheckEC2NodeClass(context.Background(), ec2Class("x", "", v)),
				c.CheckEC2NodeClass(context.Background(), ec2Class(v, "KarpenterNodeRole-demo", "")),
				c.CheckEC2NodeClass(context.Background(), ec2Class(v, "", "KarpenterNodeInstanceProfile-demo")),
				c.CheckNodeClass(context.Background(), eksClass("x", v, "")),
				c.CheckNodeClass(context.Background(), eksClass("x", "", v)),
				c.CheckNodePool(context.Background(), nodePool(v, &NodeClassReference{Group: v, Kind: v, Name: v})),
				c.CheckNodePool(context.Background(), nodePool(v, refEC2(v))),
				c.CheckNodePool(context.Background(), nodePool(v, refEKS(v))),
				c.CheckNodePool(context.Background(), nodePool(v, refEC2("missing-"+v))),
			} {
				checkLineShapes(t, verdict)
				for _, f := range append(verdict.Denials, verdict.Warnings...) {
					if len(f.Message) > 2000 {
						t.Errorf("%q: [%s] message is %d bytes long", truncate(v, 40), f.Code, len(f.Message))
					}
				}
			}
		}
	}
}

// TestWarningsFitUncut: warnings about ordinary values keep their advice
// whole within the API server's 256-character limit: a cut one ends in the
// middle of the fix.
func TestWarningsFitUncut(t *testing.T) {
	ctl, _ := authz.ParseRoleARN(ctlKarpenter)
	c := NewChecker(Config{Controller: ctl, ClusterName: testCluster, Region: testRegion})
	for _, v := range []Verdict{
		c.CheckEC2NodeClass(context.Background(), ec2Class("x", "platform-team/KarpenterNodeRole-platform-prod", "")),
		c.CheckEC2NodeClass(context.Background(), ec2Class("x", "/org/platform/"+strings.Repeat("n", 40), "")),
		c.CheckNodeClass(context.Background(), eksClass("x", "", "KarpenterNodeInstanceProfile-platform-prod")),
	} {
		for _, f := range v.Warnings {
			if full := fmt.Sprintf("[%s] %s: %s", f.Code, f.Field, f.Message); len(full) > maxWarningLen {
				t.Errorf("warning of %d bytes is cut: %q", len(full), f.WarningLine())
			}
		}
	}
}

func TestFindingLines(t *testing.T) {
	f := deny(RoleIsARN, field.NewPath("spec", "role"), "line one\nline two\r\nthree")
	if got, want := f.DenialLine(), "spec.role: [RoleIsARN] line one line two  three"; got != want {
		t.Errorf("DenialLine() = %q, want %q", got, want)
	}
	w := warn(RoleHasPath, field.NewPath("spec", "role"), "%s", strings.Repeat("é", 300))
	line := w.WarningLine()
	if len(line) > 255 || !utf8.ValidString(line) || !strings.HasSuffix(line, "...") || !strings.HasPrefix(line, "[RoleHasPath] spec.role: é") {
		t.Errorf("WarningLine() = %q (%d bytes): want at most 255 bytes of valid UTF-8 ending in ...", line, len(line))
	}
	v := Verdict{Denials: []Finding{f, deny(RoleNotFound, field.NewPath("spec", "role"), "x")}, Warnings: []Finding{w}}
	if got := v.Codes(); !slices.Equal(got, []string{"RoleIsARN", "RoleNotFound", "RoleHasPath"}) {
		t.Errorf("Codes() = %v", got)
	}
	if v.Allowed() || strings.Count(v.DenialMessage(), "\n") != 1 {
		t.Errorf("Allowed() = %v, DenialMessage() = %q", v.Allowed(), v.DenialMessage())
	}
}

func TestParseOnIAMError(t *testing.T) {
	for _, s := range []string{"allow", "deny"} {
		if got, err := ParseOnIAMError(s); err != nil || string(got) != s {
			t.Errorf("ParseOnIAMError(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Allow", "fail", "ignore"} {
		if _, err := ParseOnIAMError(s); err == nil || !strings.Contains(err.Error(), "want allow or deny") {
			t.Errorf("ParseOnIAMError(%q) error = %v", s, err)
		}
	}
}

// TestAssumedRoleARNNamesTheRole checks that an STS assumed-role ARN in
// spec.role (what `aws sts get-caller-identity` prints on a node) is
// denied with the role's name as the fix.
func TestAssumedRoleARNNamesTheRole(t *testing.T) {
	_, findings, ok := CheckRoleFormat(field.NewPath("spec", "role"),
		"arn:aws:sts::111122223333:assumed-role/KarpenterNodeRole-demo/i-0abc", testAccount)
	if ok || len(findings) != 1 || findings[0].Code != RoleARNMalformed {
		t.Fatalf("got ok=%v %v, want one RoleARNMalformed", ok, findings)
	}
	if want := "Set spec.role: KarpenterNodeRole-demo"; !strings.HasSuffix(findings[0].Message, want) {
		t.Errorf("message %q does not end with %q", findings[0].Message, want)
	}
}
