package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// permissionCodes are the denials that carry a suggested fix.
var permissionCodes = []string{"PassRoleDenied", "InstanceProfileActionsDenied", "InstanceProfileReadDenied", "LaunchDenied"}

// TestCheckFixesProved proves every suggested fix the fixtures produce:
// applied to the snapshot (the Allow statements added to the document the
// fix names, or the Deny statement it names removed), the same class
// passes when check runs again. Each fix alone clears its code; all the
// fixes of an object together clear the object.
func TestCheckFixesProved(t *testing.T) {
	proved := map[string]bool{}
	for _, ctl := range []string{ctlKarpenter, ctlLimited, ctlBounded} {
		for _, dir := range []string{"testdata/codes", "testdata/bad", "testdata/mixed"} {
			res := runCmd(t, "", checkArgs(append(iamArgs(ctl), "-o", "json"), dir)...)
			for _, r := range parseReport(t, res.stdout).Results {
				file := strings.SplitN(r.Source, "#", 2)[0]
				var all []*authz.Fix
				fixedCodes := map[string]bool{}
				unfixed := 0
				for _, d := range r.Denials {
					if !slices.Contains(permissionCodes, d.Code) {
						if d.Fix != nil {
							t.Errorf("%s: %s carries a fix", r.Source, d.Code)
						}
						unfixed++
						continue
					}
					if d.Fix == nil || len(d.Fix.Changes) == 0 || d.Fix.Summary == "" {
						t.Errorf("%s under %s: %s has no fix", r.Source, filepath.Base(ctl), d.Code)
						continue
					}
					name := filepath.Base(ctl) + " " + r.Source + " " + d.Code
					t.Run(name, func(t *testing.T) {
						after := recheck(t, ctl, file, r.Source, d.Fix)
						if slices.Contains(after, d.Code) {
							t.Errorf("with the fix applied, still %v\nfix: %s", after, d.Fix.Summary)
						}
					})
					all = append(all, d.Fix)
					fixedCodes[d.Code] = true
					proved[d.Code+" by "+d.Fix.Changes[0].Document.Type] = true
				}
				if len(all) > 1 && unfixed == 0 {
					t.Run(filepath.Base(ctl)+" "+r.Source+" all fixes", func(t *testing.T) {
						if after := recheck(t, ctl, file, r.Source, all...); len(after) != 0 {
							t.Errorf("with every fix applied, still denied %v", after)
						}
					})
				}
			}
		}
	}
	// The fixtures cover each kind of cause.
	for _, want := range []string{
		"PassRoleDenied by identity policy", "InstanceProfileActionsDenied by identity policy",
		"InstanceProfileReadDenied by identity policy", "LaunchDenied by identity policy",
		"InstanceProfileActionsDenied by permissions boundary",
	} {
		if !proved[want] {
			t.Errorf("no fixture proves %q (proved: %v)", want, proved)
		}
	}
}

// TestCheckFixNamesTheDeny: when an explicit Deny is the cause, the fix
// names that statement first, with no Allow (which could not work: adding
// one alone changes nothing), and the Allow needed once it is narrowed.
func TestCheckFixNamesTheDeny(t *testing.T) {
	res := runCmd(t, "", checkArgs(append(iamArgs(ctlKarpenter), "-o", "json"), "testdata/codes/PassRoleDenied.yaml")...)
	r := parseReport(t, res.stdout)
	if len(r.Results) != 1 || len(r.Results[0].Denials) != 1 || r.Results[0].Denials[0].Fix == nil {
		t.Fatalf("want one PassRoleDenied with a fix: %s", res.stdout)
	}
	fix := r.Results[0].Denials[0].Fix
	want := authz.DocumentRef{Type: "identity policy", Role: ctlKarpenter, Policy: "Guardrails", Statement: "DenyPassAdminRoles"}
	if len(fix.Changes) != 2 || fix.Changes[0].Document != want || fix.Changes[0].Policy != nil || !strings.Contains(fix.Changes[0].Summary, "no Allow can override it") {
		t.Fatalf("fix %+v: want first a change naming %+v with no statement", fix, want)
	}
	// Without the Deny, no statement would allow AdminNodeRole either
	// (the policy allows role/KarpenterNodeRole-* only): an Allow follows.
	allow := fix.Changes[1]
	if allow.Document != (authz.DocumentRef{Type: "identity policy", Role: ctlKarpenter}) || allow.Policy == nil {
		t.Errorf("second change %+v: want an Allow in an identity policy", allow)
	}
	src, file := r.Results[0].Source, "testdata/codes/PassRoleDenied.yaml"
	// The Allow alone changes nothing: the Deny wins.
	if after := recheck(t, ctlKarpenter, file, src, &authz.Fix{Changes: []authz.Change{allow}}); !slices.Contains(after, "PassRoleDenied") {
		t.Errorf("an Allow overrode the explicit Deny: %v", after)
	}
	// Narrowing the Deny alone is not enough here either.
	if after := recheck(t, ctlKarpenter, file, src, &authz.Fix{Changes: fix.Changes[:1]}); !slices.Contains(after, "PassRoleDenied") {
		t.Errorf("removing the Deny alone allowed it: %v", after)
	}
	// Both: allowed (TestCheckFixesProved proves it too).
	if after := recheck(t, ctlKarpenter, file, src, fix); len(after) != 0 {
		t.Errorf("with the fix: %v", after)
	}
}

// recheck applies fixes to a copy of the sample snapshot and runs check on
// file again, returning the denial codes of the result from source.
func recheck(t *testing.T, ctl, file, source string, fixes ...*authz.Fix) []string {
	t.Helper()
	snap := loadJSON(t, snapshotFile)
	for _, f := range fixes {
		for _, c := range f.Changes {
			applyChange(t, snap, ctl, c)
		}
	}
	path := filepath.Join(t.TempDir(), "fixed-snapshot.json")
	data, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := iamArgs(ctl)
	args[1] = path
	res := runCmd(t, "", checkArgs(append(args, "-o", "json"), file)...)
	if res.code == 2 {
		t.Fatalf("check with the fixed snapshot: %s", res.stderr)
	}
	for _, r := range parseReport(t, res.stdout).Results {
		if r.Source == source {
			var codes []string
			for _, d := range r.Denials {
				codes = append(codes, d.Code)
			}
			return codes
		}
	}
	t.Fatalf("no result %s in %s", source, res.stdout)
	return nil
}

func loadJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// applyChange edits the snapshot as a user following the fix would edit
// IAM: an identity-policy Allow becomes a new inline policy of the role, a
// boundary Allow joins the boundary's default version, and a named Deny
// statement is removed from its policy.
func applyChange(t *testing.T, snap map[string]any, ctl string, c authz.Change) {
	t.Helper()
	role := findRole(t, snap, ctl)
	doc := c.Document
	if doc.Role != ctl {
		t.Fatalf("change %+v is not about the controller role %s", doc, ctl)
	}
	switch {
	case doc.Statement != "":
		if c.Policy != nil {
			t.Fatalf("change %+v names a Deny and adds statements", doc)
		}
		policy := findPolicyDocument(t, snap, role, doc)
		stmts := policy["Statement"].([]any)
		kept := slices.DeleteFunc(slices.Clone(stmts), func(s any) bool { return s.(map[string]any)["Sid"] == doc.Statement })
		if len(kept) == len(stmts) {
			t.Fatalf("policy %s has no statement %s", doc.Policy, doc.Statement)
		}
		policy["Statement"] = kept
	case c.Policy == nil:
		t.Fatalf("change %+v names no Deny and adds no statement", doc)
	case doc.Type == "identity policy":
		inline, _ := role["RolePolicyList"].([]any)
		role["RolePolicyList"] = append(inline, map[string]any{"PolicyName": "nodeclass-guard-fix", "PolicyDocument": toAny(t, c.Policy)})
	case doc.Type == "permissions boundary":
		pb, _ := role["PermissionsBoundary"].(map[string]any)
		if pb == nil || pb["PermissionsBoundaryArn"] != doc.Policy {
			t.Fatalf("change names boundary %s; the role's is %v", doc.Policy, pb)
		}
		policy := findPolicyDocument(t, snap, role, doc)
		stmts := policy["Statement"].([]any)
		for _, s := range toAny(t, c.Policy).(map[string]any)["Statement"].([]any) {
			stmts = append(stmts, s)
		}
		policy["Statement"] = stmts
	default:
		t.Fatalf("change to a %s cannot be applied to a snapshot", doc.Type)
	}
}

func findRole(t *testing.T, snap map[string]any, arn string) map[string]any {
	t.Helper()
	for _, r := range snap["RoleDetailList"].([]any) {
		if r := r.(map[string]any); r["Arn"] == arn {
			return r
		}
	}
	t.Fatalf("no role %s in the snapshot", arn)
	return nil
}

// findPolicyDocument returns the decoded document of an inline policy of
// role (by name) or of a managed policy's default version (by ARN),
// storing it back decoded so that edits to it land in the snapshot.
func findPolicyDocument(t *testing.T, snap, role map[string]any, doc authz.DocumentRef) map[string]any {
	t.Helper()
	decode := func(holder map[string]any, key string) map[string]any {
		switch v := holder[key].(type) {
		case map[string]any:
			return v
		case string:
			text, err := url.QueryUnescape(v)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(text), &m); err != nil {
				t.Fatal(err)
			}
			holder[key] = m
			return m
		}
		t.Fatalf("policy document %T", holder[key])
		return nil
	}
	if inline, ok := role["RolePolicyList"].([]any); ok {
		for _, p := range inline {
			if p := p.(map[string]any); p["PolicyName"] == doc.Policy {
				return decode(p, "PolicyDocument")
			}
		}
	}
	for _, p := range snap["Policies"].([]any) {
		p := p.(map[string]any)
		if p["Arn"] != doc.Policy {
			continue
		}
		for _, v := range p["PolicyVersionList"].([]any) {
			if v := v.(map[string]any); v["IsDefaultVersion"] == true {
				return decode(v, "Document")
			}
		}
	}
	t.Fatalf("no policy %s", doc.Policy)
	return nil
}

func toAny(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
