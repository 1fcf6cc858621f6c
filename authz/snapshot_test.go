package authz

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const (
	sampleSnapshot = "../testdata/iam/sample-snapshot.json"
	acct           = "111122223333"
	clusterName    = "demo"
	region         = "us-west-2"
)

func roleARN(pathAndName string) string { return "arn:aws:iam::" + acct + ":role/" + pathAndName }

var (
	controller = roleARN("KarpenterControllerRole")
	limited    = roleARN("LimitedControllerRole")
	bounded    = roleARN("BoundedControllerRole")
)

// The questions below are the ones nodeclass-guard's rules ask (see
// CONTRACT.md, "Permissions of the Karpenter controller").

func passRoleQuestion(principal, nodeRoleARN string) Question {
	return Question{Principal: principal, Action: "iam:PassRole", Resource: nodeRoleARN,
		Context: map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}}}
}

func instanceProfileQuestions(principal, nodeClass string) []Question {
	tags := map[string]string{
		"kubernetes.io/cluster/" + clusterName: "owned",
		"eks:eks-cluster-name":                 clusterName,
		"topology.kubernetes.io/region":        region,
		"karpenter.k8s.aws/ec2nodeclass":       nodeClass,
	}
	var out []Question
	for _, action := range []string{"iam:CreateInstanceProfile", "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile"} {
		ctx := map[string][]string{}
		var keys []string
		for k, v := range tags {
			ctx["aws:RequestTag/"+k] = []string{v}
			ctx["aws:ResourceTag/"+k] = []string{v}
			keys = append(keys, k)
		}
		ctx["aws:TagKeys"] = keys
		out = append(out, Question{Principal: principal, Action: action,
			Resource: "arn:aws:iam::" + acct + ":instance-profile/*", Context: ctx})
	}
	return out
}

func getInstanceProfileQuestion(principal, profile string) Question {
	return Question{Principal: principal, Action: "iam:GetInstanceProfile",
		Resource: "arn:aws:iam::" + acct + ":instance-profile/" + profile}
}

func launchQuestions(principal, nodePool, nodeClass string) []Question {
	var out []Question
	for _, ar := range [][2]string{{"ec2:RunInstances", "instance/*"}, {"ec2:CreateFleet", "fleet/*"}, {"ec2:CreateLaunchTemplate", "launch-template/*"}} {
		out = append(out, Question{Principal: principal, Action: ar[0],
			Resource: "arn:aws:ec2:" + region + ":" + acct + ":" + ar[1],
			Context: map[string][]string{
				"aws:RequestTag/kubernetes.io/cluster/" + clusterName: {"owned"},
				"aws:RequestTag/eks:eks-cluster-name":                 {clusterName},
				"aws:RequestTag/karpenter.sh/nodepool":                {nodePool},
				"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass":       {nodeClass},
				"aws:TagKeys": {"kubernetes.io/cluster/" + clusterName, "eks:eks-cluster-name",
					"karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"},
				"aws:RequestedRegion": {region},
			}})
	}
	return out
}

func loadSample(t *testing.T) *Snapshot {
	t.Helper()
	s, err := LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decide(t *testing.T, s *Snapshot, q Question) Decision {
	t.Helper()
	d, err := s.Decide(context.Background(), q)
	if err != nil {
		t.Fatalf("Decide(%s %s as %s): %v", q.Action, q.Resource, q.Principal, err)
	}
	return d
}

// TestSampleSnapshotScenario pins the shared scenario of
// testdata/iam/sample-snapshot.json that rule tests, the local IAM endpoint,
// envtest and `make demo` rely on.
func TestSampleSnapshotScenario(t *testing.T) {
	s := loadSample(t)
	ctx := context.Background()

	t.Run("roles", func(t *testing.T) {
		for _, tc := range []struct {
			name, path string
			trustsEC2  bool
		}{
			{"KarpenterControllerRole", "/", false},
			{"LimitedControllerRole", "/", false},
			{"BoundedControllerRole", "/", false},
			{"KarpenterNodeRole-demo", "/", true},
			{"KarpenterNodeRole-team", "/team/", true},
			{"KarpenterNodeRole-notrust", "/", false},
			{"AdminNodeRole", "/", true},
			{"OtherNodeRole", "/", true},
		} {
			r, err := s.Role(ctx, tc.name)
			if err != nil {
				t.Errorf("Role(%q): %v", tc.name, err)
				continue
			}
			if r.Name != tc.name || r.Path != tc.path || r.ARN != "arn:aws:iam::"+acct+":role"+tc.path+tc.name {
				t.Errorf("Role(%q) = %q %q %q", tc.name, r.Name, r.Path, r.ARN)
			}
			if got := TrustAllows(r.Trust, "ec2.amazonaws.com", "sts:AssumeRole"); got != tc.trustsEC2 {
				t.Errorf("role %q trusts EC2 = %v, want %v", tc.name, got, tc.trustsEC2)
			}
		}
		notrust, _ := s.Role(ctx, "KarpenterNodeRole-notrust")
		if !TrustAllows(notrust.Trust, "lambda.amazonaws.com", "sts:AssumeRole") {
			t.Error("KarpenterNodeRole-notrust should trust lambda.amazonaws.com")
		}
		_, err := s.Role(ctx, "NoSuchRole")
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Kind != "role" || nf.Name != "NoSuchRole" || !errors.Is(err, ErrNotFound) {
			t.Errorf("Role(NoSuchRole) error = %v", err)
		}
		// 8 roles, and 11 more for the node-join checks (EKS Auto Mode's
		// node and cluster roles, spot's service-linked role, node roles
		// without or with odd access entries or aws-auth mappings).
		if got := len(s.Roles()); got != 19 {
			t.Errorf("Roles() has %d roles, want 19", got)
		}
	})

	t.Run("instance profiles", func(t *testing.T) {
		for name, roles := range map[string][]string{
			"KarpenterNodeInstanceProfile-demo": {"KarpenterNodeRole-demo"},
			"team-profile":                      {"KarpenterNodeRole-team"},
			"eks-auto-demo":                     {"EKSAutoNodeRole-demo"},
			"AutoNodeProfile-demo":              {"EKSAutoNodeRole-demo"},
			"EmptyProfile":                      nil,
			"admin-profile":                     {"AdminNodeRole"},
		} {
			p, err := s.InstanceProfile(ctx, name)
			if err != nil {
				t.Errorf("InstanceProfile(%q): %v", name, err)
				continue
			}
			if p.Name != name || p.Path != "/" || p.ARN != "arn:aws:iam::"+acct+":instance-profile/"+name {
				t.Errorf("InstanceProfile(%q) = %q %q %q", name, p.Name, p.Path, p.ARN)
			}
			var got []string
			for _, r := range p.Roles {
				got = append(got, r.Name)
				if r.Trust == nil {
					t.Errorf("profile %q: role %q has no trust policy", name, r.Name)
				}
			}
			if !reflect.DeepEqual(got, roles) {
				t.Errorf("InstanceProfile(%q) roles = %q, want %q", name, got, roles)
			}
		}
		team, _ := s.InstanceProfile(ctx, "team-profile")
		if team.Roles[0].Path != "/team/" || team.Roles[0].ARN != roleARN("team/KarpenterNodeRole-team") {
			t.Errorf("team-profile role = %+v", team.Roles[0])
		}
		_, err := s.InstanceProfile(ctx, "NoSuchProfile")
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Kind != "instance profile" || nf.Name != "NoSuchProfile" {
			t.Errorf("InstanceProfile(NoSuchProfile) error = %v", err)
		}
		var names []string
		for _, p := range s.InstanceProfilesForRole("KarpenterNodeRole-demo") {
			names = append(names, p.Name)
		}
		if want := []string{"KarpenterNodeInstanceProfile-demo"}; !reflect.DeepEqual(names, want) {
			t.Errorf("InstanceProfilesForRole(KarpenterNodeRole-demo) = %q, want %q", names, want)
		}
		if got := s.InstanceProfilesForRole("OtherNodeRole"); len(got) != 0 {
			t.Errorf("OtherNodeRole is in profiles %v", got)
		}
	})

	t.Run("KarpenterControllerRole PassRole", func(t *testing.T) {
		for _, tc := range []struct {
			node       string
			allowed    bool
			explicit   bool
			deniedBy   Denier
			nearMisses []string
		}{
			{node: "KarpenterNodeRole-demo", allowed: true},
			{node: "KarpenterNodeRole-notrust", allowed: true},
			{node: "team/KarpenterNodeRole-team", nearMisses: []string{"role/KarpenterNodeRole-*"}},
			{node: "OtherNodeRole", nearMisses: []string{"role/KarpenterNodeRole-*"}},
			{node: "AdminNodeRole", explicit: true,
				deniedBy: Denier{Source: DeniedByIdentity, Policy: "Guardrails", Statement: "DenyPassAdminRoles"}},
		} {
			d := decide(t, s, passRoleQuestion(controller, roleARN(tc.node)))
			if d.Allowed != tc.allowed || d.Explicit != tc.explicit || d.DeniedBy != tc.deniedBy || !reflect.DeepEqual(d.NearMisses, tc.nearMisses) {
				t.Errorf("PassRole %s: %+v (%s)", tc.node, d, d.Reason())
			}
		}
	})

	t.Run("KarpenterControllerRole instance profiles and launches", func(t *testing.T) {
		qs := append(instanceProfileQuestions(controller, "default"), launchQuestions(controller, "default", "default")...)
		for _, p := range []string{"KarpenterNodeInstanceProfile-demo", "team-profile", "eks-auto-demo", "EmptyProfile", "admin-profile"} {
			qs = append(qs, getInstanceProfileQuestion(controller, p))
		}
		for _, q := range qs {
			if d := decide(t, s, q); !d.Allowed || len(d.Unsupported) > 0 {
				t.Errorf("%s %s: %s", q.Action, q.Resource, d.Reason())
			}
		}
		// The tags matter: a launch for another cluster is refused.
		q := launchQuestions(controller, "default", "default")[0]
		q.Context = map[string][]string{"aws:RequestTag/kubernetes.io/cluster/other": {"owned"}}
		if d := decide(t, s, q); d.Allowed {
			t.Errorf("untagged launch allowed")
		}
	})

	t.Run("only the default policy version counts", func(t *testing.T) {
		// v1 of KarpenterControllerPolicy passes any role without a
		// condition; v2, the default, only KarpenterNodeRole-*.
		d := decide(t, s, Question{Principal: controller, Action: "iam:PassRole", Resource: roleARN("OtherNodeRole")})
		if d.Allowed {
			t.Error("the non-default version was evaluated: PassRole of OtherNodeRole without context allowed")
		}
		set, ok := s.PolicySet(controller)
		if !ok || len(set.Identity) != 2 || set.Boundary != nil {
			t.Fatalf("PolicySet(controller) = %+v, %v", set, ok)
		}
		if set.Identity[0].Name != "Guardrails" || set.Identity[1].Name != "arn:aws:iam::"+acct+":policy/KarpenterControllerPolicy" {
			t.Errorf("policy names = %q, %q", set.Identity[0].Name, set.Identity[1].Name)
		}
		if !strings.Contains(set.Identity[1].Policy.Document(), "AllowInstanceProfileReadActions") {
			t.Error("managed policy is not the default version")
		}
	})

	t.Run("LimitedControllerRole", func(t *testing.T) {
		for _, node := range []string{"KarpenterNodeRole-demo", "team/KarpenterNodeRole-team", "AdminNodeRole"} {
			if d := decide(t, s, passRoleQuestion(limited, roleARN(node))); !d.Allowed {
				t.Errorf("PassRole %s: %s", node, d.Reason())
			}
		}
		qs := append(instanceProfileQuestions(limited, "default"), launchQuestions(limited, "default", "default")...)
		qs = append(qs, getInstanceProfileQuestion(limited, "KarpenterNodeInstanceProfile-demo"))
		for _, q := range qs {
			d := decide(t, s, q)
			if d.Allowed || d.Explicit || d.DeniedBy.Source != "" {
				t.Errorf("%s %s: %+v, want an implicit deny", q.Action, q.Resource, d)
			}
		}
	})

	t.Run("BoundedControllerRole", func(t *testing.T) {
		boundary := Denier{Source: DeniedByBoundary, Policy: "arn:aws:iam::" + acct + ":policy/EC2OnlyBoundary"}
		qs := append(instanceProfileQuestions(bounded, "default"),
			passRoleQuestion(bounded, roleARN("KarpenterNodeRole-demo")),
			getInstanceProfileQuestion(bounded, "KarpenterNodeInstanceProfile-demo"))
		for _, q := range qs {
			d := decide(t, s, q)
			if d.Allowed || d.Explicit || d.DeniedBy != boundary {
				t.Errorf("%s %s: %+v, want an implicit deny by the boundary", q.Action, q.Resource, d)
			}
		}
		for _, q := range launchQuestions(bounded, "default", "default") {
			if d := decide(t, s, q); !d.Allowed {
				t.Errorf("%s %s: %s", q.Action, q.Resource, d.Reason())
			}
		}
		set, ok := s.PolicySet(bounded)
		if !ok || set.Boundary == nil || set.Boundary.Name != boundary.Policy {
			t.Errorf("PolicySet(bounded) = %+v, %v", set, ok)
		}
	})

	t.Run("principals", func(t *testing.T) {
		assumed := "arn:aws:sts::" + acct + ":assumed-role/KarpenterControllerRole/karpenter-session"
		if d := decide(t, s, passRoleQuestion(assumed, roleARN("KarpenterNodeRole-demo"))); !d.Allowed {
			t.Errorf("assumed-role principal: %s", d.Reason())
		}
		if r, ok := s.RoleByARN(roleARN("team/KarpenterNodeRole-team")); !ok || r.Name != "KarpenterNodeRole-team" {
			t.Errorf("RoleByARN(team role) = %+v, %v", r, ok)
		}
		for _, p := range []string{
			roleARN("team/KarpenterControllerRole"), // wrong path
			"arn:aws:iam::444455556666:role/KarpenterControllerRole",
			"arn:aws:sts::444455556666:assumed-role/KarpenterControllerRole/s",
			roleARN("Nobody"),
			"not-an-arn",
		} {
			_, err := s.Decide(ctx, passRoleQuestion(p, roleARN("KarpenterNodeRole-demo")))
			var nf *NotFoundError
			if !errors.As(err, &nf) || nf.Kind != "role" || nf.Name != p {
				t.Errorf("Decide as %s: error %v, want a role NotFoundError naming the ARN", p, err)
			}
			if _, ok := s.RoleByARN(p); ok {
				t.Errorf("RoleByARN(%s) found a role", p)
			}
			if _, ok := s.PolicySet(p); ok {
				t.Errorf("PolicySet(%s) found a role", p)
			}
		}
	})
}

func TestSnapshotCaseInsensitiveFallback(t *testing.T) {
	s := loadSample(t)
	ctx := context.Background()
	r, err := s.Role(ctx, "karpenternoderole-DEMO")
	if err != nil || r.Name != "KarpenterNodeRole-demo" {
		t.Errorf("Role(karpenternoderole-DEMO) = %q, %v", r.Name, err)
	}
	p, err := s.InstanceProfile(ctx, "emptyprofile")
	if err != nil || p.Name != "EmptyProfile" {
		t.Errorf("InstanceProfile(emptyprofile) = %q, %v", p.Name, err)
	}
	if r, ok := s.RoleByARN(strings.ToLower(controller)); !ok || r.Name != "KarpenterControllerRole" {
		t.Errorf("RoleByARN(lower-case ARN) = %q, %v", r.Name, ok)
	}
	if got := s.InstanceProfilesForRole("adminnoderole"); len(got) != 1 || got[0].Name != "admin-profile" {
		t.Errorf("InstanceProfilesForRole(adminnoderole) = %v", got)
	}
}

func TestSnapshotProfilesAreCopies(t *testing.T) {
	s := loadSample(t)
	p, _ := s.InstanceProfile(context.Background(), "team-profile")
	p.Roles[0].Name = "changed"
	again, _ := s.InstanceProfile(context.Background(), "team-profile")
	if again.Roles[0].Name != "KarpenterNodeRole-team" {
		t.Error("a caller changed the snapshot through InstanceProfile().Roles")
	}
}

func TestSnapshotConcurrentUse(t *testing.T) {
	s := loadSample(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d, err := s.Decide(context.Background(), passRoleQuestion(controller, roleARN("KarpenterNodeRole-demo")))
				if err != nil || !d.Allowed {
					errs <- fmt.Errorf("decide: %v %+v", err, d)
					return
				}
				if _, err := s.InstanceProfile(context.Background(), "eks-auto-demo"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// load loads a snapshot from a string named "iam.json".
func load(doc string) (*Snapshot, error) {
	return LoadSnapshot(strings.NewReader(doc), "iam.json")
}

func TestLoadSnapshotMergesProfileSources(t *testing.T) {
	// `jq -s add details.json profiles.json`: the role knows profile A,
	// list-instance-profiles knows A (again), B (empty) and C, whose role
	// is absent from RoleDetailList.
	s, err := load(`{
		"RoleDetailList": [{"RoleName": "R", "Path": "/", "Arn": "arn:aws:iam::111122223333:role/R",
			"AssumeRolePolicyDocument": ` + trustEC2 + `,
			"InstanceProfileList": [{"InstanceProfileName": "A", "Path": "/", "Arn": "arn:aws:iam::111122223333:instance-profile/A",
				"Roles": [{"RoleName": "R", "Path": "/", "Arn": "arn:aws:iam::111122223333:role/R"}]}]}],
		"InstanceProfiles": [
			{"InstanceProfileName": "A", "Path": "/", "Arn": "arn:aws:iam::111122223333:instance-profile/A",
				"Roles": [{"RoleName": "R", "Path": "/", "Arn": "arn:aws:iam::111122223333:role/R"}]},
			{"InstanceProfileName": "B", "Path": "/x/", "Arn": "arn:aws:iam::111122223333:instance-profile/x/B", "Roles": []},
			{"InstanceProfileName": "C", "Arn": "arn:aws:iam::111122223333:instance-profile/C",
				"Roles": [{"RoleName": "Elsewhere", "Path": "/p/", "Arn": "arn:aws:iam::111122223333:role/p/Elsewhere",
					"AssumeRolePolicyDocument": "` + strings.ReplaceAll(urlEncode(trustEC2), `"`, `\"`) + `"}]}
		]}`)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var names []string
	for _, p := range s.InstanceProfiles() {
		names = append(names, p.Name)
	}
	if want := []string{"A", "B", "C"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("profiles = %q, want %q", names, want)
	}
	a, _ := s.InstanceProfile(ctx, "A")
	if len(a.Roles) != 1 || a.Roles[0].Trust == nil {
		t.Errorf("A roles = %+v (want R once, with its trust policy)", a.Roles)
	}
	b, _ := s.InstanceProfile(ctx, "B")
	if len(b.Roles) != 0 || b.Path != "/x/" {
		t.Errorf("B = %+v", b)
	}
	c, _ := s.InstanceProfile(ctx, "C")
	if len(c.Roles) != 1 || c.Path != "/" || c.Roles[0].Path != "/p/" || !TrustAllows(c.Roles[0].Trust, "ec2.amazonaws.com", "sts:AssumeRole") {
		t.Errorf("C = %+v", c)
	}
	// A role seen only inside a profile exists (Role answers), but its
	// permissions are unknown (Decide refuses to guess).
	if r, err := s.Role(ctx, "Elsewhere"); err != nil || r.ARN != "arn:aws:iam::111122223333:role/p/Elsewhere" {
		t.Errorf("Role(Elsewhere) = %+v, %v", r, err)
	}
	q := passRoleQuestion("arn:aws:iam::111122223333:role/p/Elsewhere", roleARN("R"))
	if _, err := s.Decide(ctx, q); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "only in an instance profile") {
		t.Errorf("Decide as a profile-only role: %v", err)
	}
	if _, ok := s.PolicySet(q.Principal); ok {
		t.Error("PolicySet of a profile-only role is complete")
	}
	if _, err := s.Role(ctx, "NotThere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Role(NotThere): %v", err)
	}
}

func urlEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestLoadSnapshotTopLevelArray(t *testing.T) {
	s, err := load(`[{"RoleDetailList": [{"RoleName": "R", "Arn": "arn:aws:iam::111122223333:role/R"}]},
		{"InstanceProfiles": [{"InstanceProfileName": "P", "Arn": "arn:aws:iam::111122223333:instance-profile/P", "Roles": [{"RoleName": "R"}]}]}]`)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Role(context.Background(), "R")
	if err != nil || r.Path != "/" || r.Trust != nil {
		t.Errorf("Role(R) = %+v, %v", r, err)
	}
	if ps := s.InstanceProfilesForRole("R"); len(ps) != 1 || ps[0].Name != "P" {
		t.Errorf("profiles of R = %+v", ps)
	}
}

func TestSnapshotMissingManagedPolicy(t *testing.T) {
	s, err := load(`{"RoleDetailList": [{"RoleName": "C", "Arn": "arn:aws:iam::111122223333:role/C",
		"AttachedManagedPolicies": [{"PolicyName": "Gone", "PolicyArn": "arn:aws:iam::111122223333:policy/Gone"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Role(context.Background(), "C"); err != nil {
		t.Errorf("Role(C): %v", err)
	}
	_, err = s.Decide(context.Background(), passRoleQuestion("arn:aws:iam::111122223333:role/C", roleARN("N")))
	if err == nil || errors.Is(err, ErrNotFound) || IsUnavailable(err) ||
		!strings.Contains(err.Error(), "arn:aws:iam::111122223333:policy/Gone") || !strings.Contains(err.Error(), "iam.json") {
		t.Errorf("Decide with a missing managed policy: %v", err)
	}
	if _, ok := s.PolicySet("arn:aws:iam::111122223333:role/C"); ok {
		t.Error("PolicySet is complete although a managed policy is missing")
	}
}

func TestLoadSnapshotErrors(t *testing.T) {
	role := func(fields string) string {
		return `{"RoleDetailList": [{"RoleName": "Ok", "Arn": "arn:aws:iam::111122223333:role/Ok"}, {"RoleName": "X", "Arn": "arn:aws:iam::111122223333:role/X", ` + fields + `}]}`
	}
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"empty", "", []string{"iam.json: empty file"}},
		{"yaml", "RoleDetailList: []", []string{"iam.json: not a JSON object"}},
		{"syntax error", "{\n  \"RoleDetailList\": [\n    {\"RoleName\": \"X\",,}\n  ]\n}", []string{"iam.json:3:23: invalid JSON"}},
		{"truncated", `{"RoleDetailList": [`, []string{"iam.json", "unexpected end"}},
		{"wrong type", "{\"RoleDetailList\": [\n {\"RoleName\": 5}]}", []string{"iam.json:2:", "RoleDetailList.RoleName", "got JSON number, want string"}},
		{"other output", `{"Roles": []}`, []string{"neither RoleDetailList nor InstanceProfiles"}},
		{"no role name", `{"RoleDetailList": [{"Arn": "x"}]}`, []string{"iam.json: RoleDetailList[0]: no RoleName"}},
		{"no role arn", `{"RoleDetailList": [{"RoleName": "X"}]}`, []string{`RoleDetailList[0] (role "X"): no Arn`}},
		{"duplicate role", `{"RoleDetailList": [{"RoleName": "X", "Arn": "a"}, {"RoleName": "X", "Arn": "a"}]}`, []string{`RoleDetailList[1] (role "X"): role listed twice`}},
		{"bad trust", role(`"AssumeRolePolicyDocument": {"Statement": [{"Effect": "Permit", "Action": "sts:AssumeRole"}]}`),
			[]string{`iam.json: RoleDetailList[1] (role "X"): AssumeRolePolicyDocument: Statement[0]: Effect "Permit" is neither Allow nor Deny`}},
		{"bad trust encoding", role(`"AssumeRolePolicyDocument": "%7B%ZZ"`), []string{`RoleDetailList[1] (role "X"): AssumeRolePolicyDocument: URL-encoded`}},
		{"bad inline", role(`"RolePolicyList": [{"PolicyName": "P", "PolicyDocument": {"Statement": {"Sid": "S", "Effect": "Allow", "Resource": "*"}}}]`),
			[]string{`RoleDetailList[1] (role "X"): RolePolicyList[0] (policy "P"): PolicyDocument: Statement (Sid "S"): has neither Action nor NotAction`}},
		{"attached without arn", role(`"AttachedManagedPolicies": [{"PolicyName": "P"}]`), []string{`AttachedManagedPolicies[0] (policy "P"): no PolicyArn`}},
		{"no default version", `{"RoleDetailList": [], "Policies": [{"PolicyName": "P", "Arn": "arn:aws:iam::111122223333:policy/P", "DefaultVersionId": "v3",
			"PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": false, "Document": {}}]}]}`,
			[]string{`Policies[0] (policy "P"): no default version in PolicyVersionList (DefaultVersionId "v3")`}},
		{"bad default version", `{"RoleDetailList": [], "Policies": [{"PolicyName": "P", "Arn": "arn:aws:iam::111122223333:policy/P", "DefaultVersionId": "v2",
			"PolicyVersionList": [{"VersionId": "v1", "Document": {"Statement": "broken but not default"}},
			                      {"VersionId": "v2", "IsDefaultVersion": true, "Document": {"Statement": [{"Effect": "Allow"}]}}]}]}`,
			[]string{`Policies[0] (policy "P"): PolicyVersionList[1] (version "v2"): Document: Statement[0]: has neither Action`}},
		{"profile without name", `{"InstanceProfiles": [{"Arn": "x"}]}`, []string{`InstanceProfiles[0] (instance profile ""): no InstanceProfileName`}},
		{"profile role bad trust", `{"InstanceProfiles": [{"InstanceProfileName": "P", "Arn": "x", "Roles": [{"RoleName": "R", "AssumeRolePolicyDocument": "nonsense"}]}]}`,
			[]string{`InstanceProfiles[0] (instance profile "P"): Roles[0] (role "R"): AssumeRolePolicyDocument: policy document is neither a JSON object`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.doc)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadSnapshotFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadSnapshotFile(missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadSnapshotFile(missing) = %v", err)
	}
	s := loadSample(t)
	if s.Source() != sampleSnapshot {
		t.Errorf("Source() = %q", s.Source())
	}
}
