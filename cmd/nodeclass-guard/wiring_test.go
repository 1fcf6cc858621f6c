package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const repoRoot = "../.."

// hook is an entry of .pre-commit-hooks.yaml.
type hook struct {
	ID            string   `json:"id"`
	Entry         string   `json:"entry"`
	Args          []string `json:"args"`
	Language      string   `json:"language"`
	TypesOr       []string `json:"types_or"`
	RequireSerial bool     `json:"require_serial"`
}

func loadHook(t *testing.T) hook {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var hooks []hook
	if err := yaml.UnmarshalStrict(data, &hooks); err != nil {
		// Fields the test does not read (name, description) are fine.
		if err := yaml.Unmarshal(data, &hooks); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hooks {
		if h.ID == "nodeclass-guard-check" {
			return h
		}
	}
	t.Fatalf("no hook nodeclass-guard-check in %+v", hooks)
	return hook{}
}

// TestPreCommitHookEntry runs the hook's entry exactly as pre-commit does
// (entry, then args, then the staged files), offline by default and with a
// snapshot through args.
func TestPreCommitHookEntry(t *testing.T) {
	h := loadHook(t)
	if h.Language != "golang" || !slices.Equal(h.Args, []string{"--offline"}) || !h.RequireSerial || !slices.Equal(h.TypesOr, []string{"yaml", "json"}) {
		t.Errorf("hook %+v: want language golang, args [--offline], require_serial, types_or [yaml json]", h)
	}
	entry := strings.Fields(h.Entry)
	if len(entry) < 2 || entry[0] != "nodeclass-guard" || entry[1] != "check" {
		t.Fatalf("entry %q: want nodeclass-guard check", h.Entry)
	}
	hookRun := func(args []string, files ...string) result {
		argv := append(append(slices.Clone(entry[1:]), args...), files...)
		return runCmd(t, "", argv...)
	}
	// Offline: the format denial, at its line, fails the commit.
	res := hookRun(h.Args, "testdata/offline/format.yaml", "testdata/good/ec2nodeclass.yaml")
	if res.code != 1 || !strings.Contains(res.stdout, "testdata/offline/format.yaml:6:3: spec.role: [RoleIsARN]") {
		t.Errorf("offline hook: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// Offline on good files (and a file that is not a manifest): passes.
	if res := hookRun(h.Args, "testdata/good/ec2nodeclass.yaml", "testdata/good/kustomization.yaml"); res.code != 0 {
		t.Errorf("offline hook on good files: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// A snapshot through args: the IAM checks run.
	res = hookRun(iamArgs(ctlKarpenter), "testdata/bad/role-path.yaml")
	if res.code != 1 || !strings.Contains(res.stdout, "[PassRoleDenied]") {
		t.Errorf("hook with a snapshot: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestPreCommitTryRepo runs the hook through pre-commit itself, from this
// repository (uncommitted changes included: try-repo copies them).
func TestPreCommitTryRepo(t *testing.T) {
	preCommit, err := exec.LookPath("pre-commit")
	if err != nil {
		t.Skip("pre-commit is not installed (Debian: apt-get install -y pre-commit); TestPreCommitHookEntry ran the hook's entry instead")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, f := range []string{"testdata/offline/format.yaml", "testdata/good/ec2nodeclass.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(work, "manifests", filepath.Base(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	gocache, _ := exec.Command("go", "env", "GOCACHE").Output()
	gomodcache, _ := exec.Command("go", "env", "GOMODCACHE").Output()
	env := append(os.Environ(),
		"PRE_COMMIT_HOME="+filepath.Join(home, "pre-commit"),
		// pre-commit builds the hook with `go install ./...` in a GOPATH
		// of its own; share this machine's caches so nothing is fetched.
		"GOCACHE="+strings.TrimSpace(string(gocache)),
		"GOMODCACHE="+strings.TrimSpace(string(gomodcache)),
		"GOFLAGS=-mod=mod -buildvcs=false",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
	)
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	tryRepo := func(files ...string) (int, string) {
		cmd := exec.Command(preCommit, append([]string{"try-repo", root, "nodeclass-guard-check", "--verbose", "--files"}, files...)...)
		cmd.Dir, cmd.Env = work, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}
	code, out := tryRepo("manifests/format.yaml", "manifests/ec2nodeclass.yaml")
	if code != 1 || !regexp.MustCompile(`manifests/format.yaml:6:3: spec.role: \[RoleIsARN\]`).MatchString(out) {
		t.Errorf("pre-commit try-repo on a bad file: exit %d\n%s", code, out)
	}
	if code, out := tryRepo("manifests/ec2nodeclass.yaml"); code != 0 {
		t.Errorf("pre-commit try-repo on a good file: exit %d\n%s", code, out)
	}
}
