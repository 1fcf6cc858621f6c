package authz_test

import (
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// FuzzParseRoleARN checks ARN parsing against any string: no panic; an
// accepted ARN prints back as itself; an accepted role ARN has a name, a
// 12-digit account and a slash-delimited path, and prints as an IAM role
// ARN that parses to the same role.
//
// Seeds: the role ARNs of the sample snapshot, plus testdata/fuzz.
func FuzzParseRoleARN(f *testing.F) {
	for _, r := range fuzzSnapshot(f).Roles() {
		f.Add(r.ARN)
	}
	for _, s := range []string{
		controllerARN, teamNodeARN,
		"arn:aws:sts::111122223333:assumed-role/KarpenterControllerRole/1700000000000000000",
		"arn:aws-cn:iam::111122223333:role/cn-node",
		"arn:aws:iam::111122223333:instance-profile/KarpenterNodeInstanceProfile-demo",
		"arn:aws:iam:us-east-1:111122223333:role/Regional",
		"arn:aws:iam::11112222333:role/Short",
		"arn:aws:iam::111122223333:role/",
		"arn:aws:iam::111122223333:role//",
		"arn::::::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := authz.ParseARN(s)
		if err == nil && a.String() != s {
			t.Fatalf("ParseARN(%q).String() = %q", s, a.String())
		}
		r, err := authz.ParseRoleARN(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseRoleARN(%q): empty error", s)
			}
			return
		}
		if r.Name == "" || !isDigits(r.Account, 12) || !strings.HasPrefix(r.Path, "/") || !strings.HasSuffix(r.Path, "/") || strings.Contains(r.Name, "/") {
			t.Fatalf("ParseRoleARN(%q) = %+v", s, r)
		}
		again, err := authz.ParseRoleARN(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRoleARN(%q) = %+v prints as %q, which parses to %+v, %v", s, r, r.String(), again, err)
		}
		if authz.IsAssumedRoleARN(s) == (r.String() == s) {
			t.Fatalf("%q: IsAssumedRoleARN = %v, but String() = %q", s, authz.IsAssumedRoleARN(s), r.String())
		}
	})
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

// fuzzSnapshot loads the sample snapshot for seeding.
func fuzzSnapshot(f *testing.F) *authz.Snapshot {
	f.Helper()
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		f.Fatal(err)
	}
	return snap
}
