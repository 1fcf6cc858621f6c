package rules_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// maxFormatLine bounds a denial line of the format rules: user values are
// shown shortened, so the line does not grow with the input.
const maxFormatLine = 2048

// FuzzRoleFormat checks the spec.role and spec.instanceProfile format
// rules against any string: they never panic; a value they accept for a
// lookup names a valid IAM name; a value they cannot use is denied with a
// reason; every line stays on one line, in valid UTF-8, of bounded length.
//
// Seeds: the roles and profiles of examples/, plus testdata/fuzz.
func FuzzRoleFormat(f *testing.F) {
	for _, doc := range fuzzExampleDocuments(f) {
		var obj struct {
			Spec struct{ Role, InstanceProfile string }
		}
		if json.Unmarshal(doc, &obj) == nil {
			if obj.Spec.Role != "" {
				f.Add(obj.Spec.Role, "111122223333")
			}
			if obj.Spec.InstanceProfile != "" {
				f.Add(obj.Spec.InstanceProfile, "")
			}
		}
	}
	f.Add("arn:aws:iam::111122223333:role/team/KarpenterNodeRole", "111122223333")
	f.Add("arn:aws:iam::444455556666:role/Other", "111122223333")
	f.Add("arn:aws:sts::111122223333:assumed-role/Name/session", "")
	f.Add("arn:aws:iam::111122223333:instance-profile/Profile", "")
	f.Add("/team//Name", "")

	rolePath := field.NewPath("spec", "role")
	profilePath := field.NewPath("spec", "instanceProfile")
	f.Fuzz(func(t *testing.T, value, account string) {
		// The cluster's account comes from --controller-role, which is
		// parsed as a role ARN: 12 digits, or unknown.
		if !isDigits(account, 12) {
			account = ""
		}
		ref, findings, ok := rules.CheckRoleFormat(rolePath, value, account)
		checkFindings(t, findings)
		denied := hasDenial(findings)
		switch {
		case !ok && !denied:
			t.Fatalf("CheckRoleFormat(%q): not usable, yet no denial: %+v", value, findings)
		case ok && !validName(ref.Name, 64):
			t.Fatalf("CheckRoleFormat(%q): usable with the invalid name %q", value, ref.Name)
		case ok && strings.HasPrefix(value, "arn:"):
			if !hasCode(findings, rules.RoleIsARN) {
				t.Fatalf("CheckRoleFormat(%q): an ARN accepted without [RoleIsARN]: %+v", value, findings)
			}
			if account != "" && ref.Account != account {
				t.Fatalf("CheckRoleFormat(%q, %q): usable in account %q", value, account, ref.Account)
			}
		case ok && denied:
			t.Fatalf("CheckRoleFormat(%q): a name both usable and denied: %+v", value, findings)
		}
		if ok && ref.Path != "" && (!strings.HasPrefix(ref.Path, "/") || !strings.HasSuffix(ref.Path, "/")) {
			t.Fatalf("CheckRoleFormat(%q): path %q lacks its slashes", value, ref.Path)
		}

		name, findings, ok := rules.CheckInstanceProfileFormat(profilePath, value)
		checkFindings(t, findings)
		switch {
		case ok && (name != value || !validName(name, 128) || hasDenial(findings)):
			t.Fatalf("CheckInstanceProfileFormat(%q) = %q, usable, findings %+v", value, name, findings)
		case !ok && !hasDenial(findings):
			t.Fatalf("CheckInstanceProfileFormat(%q): not usable, yet no denial", value)
		}
	})
}

func checkFindings(t *testing.T, findings []rules.Finding) {
	t.Helper()
	for _, f := range findings {
		line := f.DenialLine()
		if strings.ContainsAny(line, "\r\n") || !utf8.ValidString(line) || len(line) > maxFormatLine {
			t.Fatalf("denial line of %d bytes (valid UTF-8: %v): %.300q", len(line), utf8.ValidString(line), line)
		}
		if w := f.WarningLine(); len(w) >= 256 || strings.ContainsAny(w, "\r\n") || !utf8.ValidString(w) {
			t.Fatalf("warning line %q", w)
		}
	}
}

func hasDenial(fs []rules.Finding) bool {
	for _, f := range fs {
		if f.Deny {
			return true
		}
	}
	return false
}

func hasCode(fs []rules.Finding, c rules.Code) bool {
	for _, f := range fs {
		if f.Code == c {
			return true
		}
	}
	return false
}

// validName is IAM's rule [\w+=,.@-]{1,max}, written independently of
// the webhook's.
func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-") == ""
}

func isDigits(s string, n int) bool {
	return len(s) == n && strings.Trim(s, "0123456789") == ""
}

// fuzzExampleDocuments returns every YAML document under examples/ as
// JSON, the seeds of the admission and format targets.
func fuzzExampleDocuments(f *testing.F) [][]byte {
	f.Helper()
	var docs [][]byte
	err := filepath.WalkDir(filepath.Join("..", "examples"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, part := range strings.Split(string(data), "\n---") {
			js, err := yaml.YAMLToJSON([]byte(part))
			if err != nil {
				return err
			}
			if len(js) > 0 && js[0] == '{' {
				docs = append(docs, js)
			}
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	if len(docs) == 0 {
		f.Fatal("no seed documents under ../examples")
	}
	return docs
}
