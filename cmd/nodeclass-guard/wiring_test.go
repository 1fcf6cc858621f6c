package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
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

func loadHook(t *testing.T, id string) hook {
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
		if h.ID == id {
			return h
		}
	}
	t.Fatalf("no hook %s in %+v", id, hooks)
	return hook{}
}

// TestPreCommitHookEntry runs the hooks' entries exactly as pre-commit
// does (entry, then args, then the staged files), offline by default and
// with a snapshot through args: nodeclass-guard-check installs the release
// binary from a local file server standing in for the release host (its
// checksum checked), nodeclass-guard-check-source is this tree's command.
func TestPreCommitHookEntry(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	releases := releaseServer(t, buildBinary(t))
	cache := t.TempDir()
	for _, id := range []string{"nodeclass-guard-check", "nodeclass-guard-check-source"} {
		t.Run(id, func(t *testing.T) {
			h := loadHook(t, id)
			if !slices.Equal(h.Args, []string{"--offline"}) || !h.RequireSerial || !slices.Equal(h.TypesOr, []string{"yaml", "json"}) {
				t.Errorf("hook %+v: want args [--offline], require_serial, types_or [yaml json]", h)
			}
			var hookRun func(args []string, files ...string) result
			switch id {
			case "nodeclass-guard-check":
				if h.Language != "script" || h.Entry != "hack/pre-commit-check.sh" {
					t.Fatalf("hook %+v: want language script, entry hack/pre-commit-check.sh", h)
				}
				hookRun = func(args []string, files ...string) result {
					cmd := exec.Command(filepath.Join(repoRoot, h.Entry), append(slices.Clone(args), files...)...)
					cmd.Env = append(os.Environ(), "NCG_RELEASE_URL="+releases, "XDG_CACHE_HOME="+cache)
					var out, errOut bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &errOut
					err := cmd.Run()
					code := 0
					if ee, ok := err.(*exec.ExitError); ok {
						code = ee.ExitCode()
					} else if err != nil {
						t.Fatal(err)
					}
					return result{code: code, stdout: out.String(), stderr: errOut.String()}
				}
			default:
				entry := strings.Fields(h.Entry)
				if h.Language != "golang" || len(entry) < 2 || entry[0] != "nodeclass-guard" || entry[1] != "check" {
					t.Fatalf("hook %+v: want language golang, entry nodeclass-guard check", h)
				}
				hookRun = func(args []string, files ...string) result {
					argv := append(append(slices.Clone(entry[1:]), args...), files...)
					return runCmd(t, "", argv...)
				}
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
		})
	}
	// The release binary was installed once, checked, into the cache.
	if _, err := os.Stat(filepath.Join(cache, "nodeclass-guard", "v0.2.0", "nodeclass-guard")); err != nil {
		t.Errorf("the hook's binary is not in its cache: %v", err)
	}
}

// TestReleaseVersionsAgree: the version the pre-commit hook installs, the
// chart's version and appVersion, the image the base deploys and the
// newest CHANGELOG.md section are the same release.
func TestReleaseVersionsAgree(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	newest := regexp.MustCompile(`(?m)^## (v[0-9]+\.[0-9]+\.[0-9]+\S*)$`).FindStringSubmatch(read("CHANGELOG.md"))
	if newest == nil {
		t.Fatal("CHANGELOG.md has no ## vX.Y.Z section")
	}
	v := newest[1]
	for file, want := range map[string]string{
		"hack/pre-commit-check.sh":                 "\nversion=" + v + "\n",
		"deploy/charts/nodeclass-guard/Chart.yaml": "\nversion: " + strings.TrimPrefix(v, "v") + "\n",
		"deploy/base/deployment.yaml":              "ghcr.io/nodeclass-guard/nodeclass-guard:" + v + "\n",
		"README.md":                                "nodeclass-guard/nodeclass-guard@" + v + "\n",
		"action.yml":                               "nodeclass-guard/nodeclass-guard@" + v + "\n",
	} {
		if !strings.Contains(read(file), want) {
			t.Errorf("%s does not hold %q: the newest CHANGELOG.md release is %s", file, want, v)
		}
	}
	if !strings.Contains(read("deploy/charts/nodeclass-guard/Chart.yaml"), "\nappVersion: \""+v+"\"\n") {
		t.Errorf("Chart.yaml's appVersion is not %q", v)
	}
}

// TestPreCommitTryRepo runs the hook through pre-commit itself, from this
// repository (uncommitted changes included: try-repo copies them).
func TestPreCommitTryRepo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: pre-commit builds the module (about a minute); TestPreCommitHookEntry ran the hook's entry")
	}
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
		// The hook installs the release binary from a stand-in release host.
		"NCG_RELEASE_URL="+releaseServer(t, buildBinary(t)), "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
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

// action is the part of action.yml the test reads.
type action struct {
	Runs struct {
		Using string       `json:"using"`
		Steps []actionStep `json:"steps"`
	} `json:"runs"`
}

type actionStep struct {
	Name  string            `json:"name"`
	ID    string            `json:"id"`
	If    string            `json:"if"`
	Uses  string            `json:"uses"`
	Shell string            `json:"shell"`
	Env   map[string]string `json:"env"`
	Run   string            `json:"run"`
	With  map[string]string `json:"with"`
}

var expr = regexp.MustCompile(`\$\{\{\s*([a-z_.-]+)\s*\}\}`)

// runStep runs a step's script as the runner does (bash -eo pipefail),
// its env expanded from vars ("inputs.paths", "github.action_ref").
func runStep(t *testing.T, s actionStep, vars map[string]string, path, dir string) (int, string, map[string]string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "github_output")
	ghPath := filepath.Join(t.TempDir(), "github_path")
	actionPath, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + path, "HOME=" + t.TempDir(), "GITHUB_OUTPUT=" + out, "GITHUB_PATH=" + ghPath,
		"GITHUB_ACTION_PATH=" + actionPath, "RUNNER_TEMP=" + t.TempDir()}
	for k, v := range s.Env {
		env = append(env, k+"="+expr.ReplaceAllStringFunc(v, func(m string) string {
			name := expr.FindStringSubmatch(m)[1]
			val, ok := vars[name]
			if !ok {
				t.Fatalf("step %q: no value for %s", s.Name, name)
			}
			return val
		}))
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.Run)
	cmd.Env, cmd.Dir = env, dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	// What the step added to PATH, under a key no output can have.
	if p, err := os.ReadFile(ghPath); err == nil {
		outputs["$GITHUB_PATH"] = strings.TrimSpace(string(p))
	}
	data, _ := os.ReadFile(out)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			outputs[k] = v
		}
	}
	return code, buf.String(), outputs
}

// buildBinary builds nodeclass-guard (or uses NCG_BINARY) into a folder
// for PATH.
func buildBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if p := os.Getenv("NCG_BINARY"); p != "" {
		if err := os.Symlink(p, filepath.Join(dir, "nodeclass-guard")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "nodeclass-guard"), "./cmd/nodeclass-guard")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestAction exercises the composite action's steps: the install step
// installs exactly the pinned version (never latest), the check step
// writes a valid SARIF log and reports the exit code, the upload and
// failure steps are wired to them.
func TestAction(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "@latest") {
		t.Error("action.yml installs @latest")
	}
	var a action
	if err := yaml.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using %q, want composite", a.Runs.Using)
	}
	steps := map[string]actionStep{}
	for _, s := range a.Runs.Steps {
		if s.Run != "" {
			if s.Shell != "bash" {
				t.Errorf("step %q: shell %q, want bash", s.Name, s.Shell)
			}
			// Inputs reach scripts through env only: no expression is
			// pasted into a script, where a value could inject code.
			if strings.Contains(s.Run, "${{") {
				t.Errorf("step %q: an expression inside run", s.Name)
			}
		}
		steps[s.Name] = s
	}
	install, check, upload, fail := steps["Install nodeclass-guard"], steps["Check manifests"], steps["Upload SARIF"], steps["Fail when an object is denied"]
	if install.Run == "" || check.Run == "" || check.ID != "check" || fail.Run == "" {
		t.Fatalf("steps %v: want Install nodeclass-guard, Check manifests (id check), Upload SARIF, Fail when an object is denied", steps)
	}

	// Install: a release tag from a local file server standing in for the
	// release host (the binary of this tree, as make release names it, and
	// SHA256SUMS), a commit with a fake go that records its arguments.
	binDir := buildBinary(t)
	releases := releaseServer(t, binDir)
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "go-calls")
	fakeGo := "#!/bin/sh\nif [ \"$1\" = env ]; then echo /gopath; exit 0; fi\necho \"$*\" >> " + calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, tc := range []struct {
		version, ref string
		exit         int
		goCall       string // the fake go's arguments
		installed    bool   // the release binary, on GITHUB_PATH
		log          string
	}{
		{version: "v0.2.0", ref: "v9.9.9", installed: true},
		{version: "", ref: "v0.2.0", installed: true},
		{version: "", ref: "0123456789abcdef0123456789abcdef01234567", goCall: "install github.com/nodeclass-guard/nodeclass-guard/cmd/nodeclass-guard@0123456789abcdef0123456789abcdef01234567"},
		{version: "v0.2.1", ref: "v0.2.0", exit: 1, log: "SHA256SUMS says"},
		{version: "v0.3.0", ref: "v0.2.0", exit: 1, log: "could not download"},
		{version: "latest", ref: "v0.2.0", exit: 2},
		{version: "", ref: "", exit: 2},
		{version: "", ref: "main", exit: 2},
	} {
		os.Remove(calls)
		code, out, outputs := runStep(t, install, map[string]string{"inputs.version": tc.version, "github.action_ref": tc.ref, "inputs.release-url": releases}, path, t.TempDir())
		got, _ := os.ReadFile(calls)
		if code != tc.exit || strings.TrimSpace(string(got)) != tc.goCall || !strings.Contains(out, tc.log) {
			t.Errorf("install version %q, ref %q: exit %d, go called with %q; want exit %d, go called with %q, %q in the log\n%s", tc.version, tc.ref, code, got, tc.exit, tc.goCall, tc.log, out)
		}
		if tc.installed {
			dir := outputs["$GITHUB_PATH"]
			v, err := exec.Command(filepath.Join(dir, "nodeclass-guard"), "version").Output()
			if dir == "" || err != nil || !strings.HasPrefix(string(v), "nodeclass-guard ") {
				t.Errorf("install %q: GITHUB_PATH %q: nodeclass-guard version: %v %q\n%s", tc.version+tc.ref, dir, err, v, out)
			}
		}
	}

	// Check, with the real binary.
	path = binDir + string(os.PathListSeparator) + os.Getenv("PATH")
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name     string
		inputs   map[string]string
		exitCode string
		text     string
	}{
		{name: "snapshot", exitCode: "1", text: "testdata/bad/role-path.yaml:6:3: spec.role: [PassRoleDenied]", inputs: map[string]string{
			"inputs.paths": "testdata/bad/role-path.yaml\ntestdata/good", "inputs.iam-snapshot": abs(snapshotFile),
			"inputs.controller-role": ctlKarpenter, "inputs.cluster-name": "demo", "inputs.region": "us-west-2", "inputs.args": "--on-iam-error deny"}},
		{name: "offline", exitCode: "1", text: "testdata/offline/format.yaml:6:3: spec.role: [RoleIsARN]", inputs: map[string]string{
			"inputs.paths": "testdata/offline", "inputs.iam-snapshot": "", "inputs.controller-role": "", "inputs.cluster-name": "", "inputs.region": "", "inputs.args": ""}},
		{name: "good", exitCode: "0", text: "5 object(s): 5 allowed", inputs: map[string]string{
			"inputs.paths": "testdata/good", "inputs.iam-snapshot": "", "inputs.controller-role": "", "inputs.cluster-name": "", "inputs.region": "", "inputs.args": ""}},
		{name: "unusable", exitCode: "2", text: "no-such-file.yaml", inputs: map[string]string{
			"inputs.paths": "testdata/no-such-file.yaml", "inputs.iam-snapshot": "", "inputs.controller-role": "", "inputs.cluster-name": "", "inputs.region": "", "inputs.args": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sarifFile := filepath.Join(t.TempDir(), "out.sarif")
			tc.inputs["inputs.sarif-file"] = sarifFile
			code, out, outputs := runStep(t, check, tc.inputs, path, ".")
			if code != 0 || outputs["exit-code"] != tc.exitCode || !strings.Contains(out, tc.text) {
				t.Fatalf("check step: exit %d, outputs %v; want exit-code %s and %q in the log\n%s", code, outputs, tc.exitCode, tc.text, out)
			}
			data, err := os.ReadFile(sarifFile)
			if tc.exitCode == "2" {
				if err == nil {
					t.Errorf("unusable input wrote a SARIF file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log := validateSARIF(t, string(data))
			if (len(log.Runs[0].Results) > 0) != (tc.exitCode == "1") {
				t.Errorf("%d SARIF results for exit code %s", len(log.Runs[0].Results), tc.exitCode)
			}
			// The failure step fails the job with the check's code.
			code, _, _ = runStep(t, fail, map[string]string{"steps.check.outputs.exit-code": tc.exitCode}, path, ".")
			if want, _ := strconv.Atoi(tc.exitCode); code != want {
				t.Errorf("failure step: exit %d, want %s", code, tc.exitCode)
			}
		})
	}

	if !strings.HasPrefix(upload.Uses, "github/codeql-action/upload-sarif@v") || upload.With["sarif_file"] != "${{ inputs.sarif-file }}" ||
		!strings.Contains(upload.If, "always()") || !strings.Contains(upload.If, "inputs.upload-sarif == 'true'") {
		t.Errorf("upload step %+v: want github/codeql-action/upload-sarif at a version, the sarif-file input, always() unless disabled", upload)
	}
	if !strings.Contains(fail.If, "steps.check.outputs.exit-code != '0'") {
		t.Errorf("failure step if %q", fail.If)
	}
}

// releaseServer serves a release host over HTTP: v0.2.0 holds this tree's
// binary under the name make release gives this machine's platform and a
// SHA256SUMS that matches it; v0.2.1 a SHA256SUMS that does not. It returns
// the base URL (NCG_RELEASE_URL).
func releaseServer(t *testing.T, binDir string) string {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(binDir, "nodeclass-guard"))
	if err != nil {
		t.Fatal(err)
	}
	name := "nodeclass-guard_" + runtime.GOOS + "_" + runtime.GOARCH
	root := t.TempDir()
	sum := sha256.Sum256(bin)
	for version, sums := range map[string]string{
		"v0.2.0": hex.EncodeToString(sum[:]) + "  " + name + "\n",
		"v0.2.1": strings.Repeat("0", 64) + "  " + name + "\n",
	} {
		dir := filepath.Join(root, version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	return srv.URL
}
