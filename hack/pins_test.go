// Package hack holds the scripts that build and fetch the project's external
// components; its test holds them to their pins: every version comes from
// hack/versions.env and a committed tools module (go.mod and go.sum under
// hack/tools/), and no script may resolve a version at run time.
package hack

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// readVersions parses hack/versions.env: KEY=VALUE lines, # comments, no
// quotes and no spaces (the Makefile includes it and bash sources it, and
// the two agree only on such lines).
func readVersions(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("versions.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=([A-Za-z0-9.,_/+-]+)$`)
	v := map[string]string{}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		text := s.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		m := line.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("hack/versions.env:%d: %q is not KEY=VALUE without quotes or spaces", n, text)
			continue
		}
		v[m[1]] = m[2]
	}
	return v
}

// toolsModule reads hack/tools/NAME/go.mod and go.sum.
type toolsModule struct {
	name string
	mod  *modfile.File
	sum  string
}

func readModule(t *testing.T, name string) toolsModule {
	t.Helper()
	dir := filepath.Join("tools", name)
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatalf("tools module %s: %v (create it with bash hack/tools/update.sh %s)", name, err, name)
	}
	mf, err := modfile.Parse(filepath.Join(dir, "go.mod"), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatalf("tools module %s has no committed go.sum: %v", name, err)
	}
	return toolsModule{name: name, mod: mf, sum: string(sum)}
}

func (m toolsModule) require(path string) string {
	for _, r := range m.mod.Require {
		if r.Mod.Path == path {
			return r.Mod.Version
		}
	}
	return ""
}

// wantRequire fails unless the module requires path at version and go.sum
// pins both the module's source and its go.mod.
func (m toolsModule) wantRequire(t *testing.T, path, version, key string) {
	t.Helper()
	got := m.require(path)
	if got != version {
		t.Errorf("hack/tools/%s requires %s %q but hack/versions.env pins %s (%s): run bash hack/tools/update.sh %s and commit",
			m.name, path, got, version, key, m.name)
		return
	}
	for _, line := range []string{path + " " + version + " h1:", path + " " + version + "/go.mod h1:"} {
		if !strings.Contains(m.sum, line) {
			t.Errorf("hack/tools/%s/go.sum has no %q line: the download would not be checked", m.name, line)
		}
	}
}

func (m toolsModule) tools() []string {
	var out []string
	for _, tl := range m.mod.Tool {
		out = append(out, tl.Path)
	}
	slices.Sort(out)
	return out
}

func TestToolsModulesMatchVersions(t *testing.T) {
	v := readVersions(t)
	need := func(key string) string {
		t.Helper()
		if v[key] == "" {
			t.Fatalf("hack/versions.env has no %s", key)
		}
		return v[key]
	}

	t.Run("kubernetes", func(t *testing.T) {
		kv := need("KUBERNETES_VERSION")
		m := readModule(t, "kubernetes")
		m.wantRequire(t, "k8s.io/kubernetes", "v"+kv, "KUBERNETES_VERSION")
		staging := "v0." + strings.SplitN(kv, ".", 2)[1]
		if len(m.mod.Replace) == 0 {
			t.Error("hack/tools/kubernetes replaces no staging repository: k8s.io/kubernetes cannot be built as a dependency without")
		}
		for _, r := range m.mod.Replace {
			if r.Old.Path != r.New.Path || r.New.Version != staging {
				t.Errorf("hack/tools/kubernetes: replace %s => %s %s, want => %s %s (the published staging module of Kubernetes %s)",
					r.Old.Path, r.New.Path, r.New.Version, r.Old.Path, staging, kv)
			}
		}
		var want []string
		for _, c := range strings.Split(need("KUBERNETES_TOOLS"), ",") {
			want = append(want, "k8s.io/kubernetes/cmd/"+c)
		}
		slices.Sort(want)
		if got := m.tools(); !slices.Equal(got, want) {
			t.Errorf("hack/tools/kubernetes tools %v, hack/versions.env KUBERNETES_TOOLS says %v", got, want)
		}
	})
	t.Run("etcd", func(t *testing.T) {
		readModule(t, "etcd").wantRequire(t, "go.etcd.io/etcd/server/v3", "v"+need("ETCD_VERSION"), "ETCD_VERSION")
	})
	t.Run("kustomize", func(t *testing.T) {
		readModule(t, "kustomize").wantRequire(t, "sigs.k8s.io/kustomize/kustomize/v5", need("KUSTOMIZE_VERSION"), "KUSTOMIZE_VERSION")
	})
	t.Run("helm", func(t *testing.T) {
		readModule(t, "helm").wantRequire(t, "helm.sh/helm/v3", need("HELM_VERSION"), "HELM_VERSION")
	})
	t.Run("karpenter", func(t *testing.T) {
		m := readModule(t, "karpenter")
		m.wantRequire(t, "github.com/aws/karpenter-provider-aws", "v"+need("KARPENTER_AWS_VERSION"), "KARPENTER_AWS_VERSION")
		tc := need("KARPENTER_GO_TOOLCHAIN")
		if !regexp.MustCompile(`^go1\.\d+\.\d+$`).MatchString(tc) {
			t.Fatalf("KARPENTER_GO_TOOLCHAIN=%s must name one exact toolchain (go1.N.P)", tc)
		}
		if semver.Compare("v"+strings.TrimPrefix(tc, "go"), "v"+m.mod.Go.Version) < 0 {
			t.Errorf("KARPENTER_GO_TOOLCHAIN=%s is older than the go %s that hack/tools/karpenter needs", tc, m.mod.Go.Version)
		}
	})
	t.Run("karpenter-v1beta1", func(t *testing.T) {
		readModule(t, "karpenter-v1beta1").wantRequire(t, "github.com/aws/karpenter-provider-aws", "v"+need("KARPENTER_V1BETA1_AWS_VERSION"), "KARPENTER_V1BETA1_AWS_VERSION")
	})
	t.Run("kind", func(t *testing.T) {
		readModule(t, "kind").wantRequire(t, "sigs.k8s.io/kind", need("KIND_VERSION"), "KIND_VERSION")
	})
	t.Run("coredns", func(t *testing.T) {
		readModule(t, "coredns").wantRequire(t, "github.com/coredns/coredns", need("COREDNS_VERSION"), "COREDNS_VERSION")
	})
	t.Run("cert-manager", func(t *testing.T) {
		readModule(t, "cert-manager").wantRequire(t, "github.com/cert-manager/cert-manager", need("CERT_MANAGER_VERSION"), "CERT_MANAGER_VERSION")
	})
	t.Run("cyclonedx-gomod", func(t *testing.T) {
		readModule(t, "cyclonedx-gomod").wantRequire(t, "github.com/CycloneDX/cyclonedx-gomod", need("CYCLONEDX_GOMOD_VERSION"), "CYCLONEDX_GOMOD_VERSION")
	})
}

// TestToolsModulesComplete asks the go command, as the build scripts do
// (-mod=readonly, the toolchain named), to load each tools module's whole
// module graph: it fails when go.mod or go.sum lacks anything a build would
// otherwise resolve on its own.
func TestToolsModulesComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: loads every tools module's module graph")
	}
	v := readVersions(t)
	entries, err := os.ReadDir("tools")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			toolchain := "local"
			if name == "karpenter" {
				toolchain = v["KARPENTER_GO_TOOLCHAIN"]
			}
			cmd := exec.Command("go", "list", "-m", "all")
			cmd.Dir = filepath.Join("tools", name)
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOTOOLCHAIN="+toolchain, "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("hack/tools/%s: go list -m all (-mod=readonly, GOTOOLCHAIN=%s): %v\n%s\nregenerate it: bash hack/tools/update.sh %s",
					name, toolchain, err, out, name)
			}
		})
	}
}

// TestScriptsResolveNothing scans the scripts that build, test or install
// for the ways a version can be chosen at run time. Only
// hack/tools/update.sh (run by hand, its result reviewed) may resolve.
func TestScriptsResolveNothing(t *testing.T) {
	files, err := filepath.Glob("*.sh")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../Makefile", "../.ci/run", "../Dockerfile")
	forbidden := []struct {
		re  *regexp.Regexp
		why string
	}{
		{regexp.MustCompile(`@latest\b`), "resolves whatever is newest today"},
		{regexp.MustCompile(`\bgo\s+mod\s+tidy\b`), "re-resolves the module graph"},
		{regexp.MustCompile(`\bgo\s+get\b`), "resolves versions; pin them in a tools module"},
		{regexp.MustCompile(`\bgo\s+install\s+\S*@`), "builds a version outside any committed go.sum"},
		{regexp.MustCompile(`-mod=mod\b`), "lets the go command rewrite go.mod and go.sum"},
		{regexp.MustCompile(`GOTOOLCHAIN=auto\b`), "lets the go command pick a toolchain; name it in versions.env"},
		{regexp.MustCompile(`\bgo\s+mod\s+download\b.*@`), "downloads a version outside any committed go.sum; pin it in a tools module (module_dir in hack/lib.sh)"},
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			code := strings.TrimSpace(line)
			if strings.HasPrefix(code, "#") {
				continue
			}
			for _, fb := range forbidden {
				if fb.re.MatchString(code) {
					t.Errorf("hack/%s:%d: %q %s", f, n+1, code, fb.why)
				}
			}
		}
	}
}

// TestLibRefusesUnpinned proves the mechanism the scripts rely on: the go
// command in a tools module whose go.sum lacks a line refuses to build
// instead of resolving it.
func TestLibRefusesUnpinned(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.invalid/tool\n\ngo 1.22\n\nrequire golang.org/x/mod v0.40.0\n")
	write("main.go", "package main\n\nimport _ \"golang.org/x/mod/semver\"\n\nfunc main() {}\n")
	cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing go.sum entry") {
		t.Fatalf("go build -mod=readonly without go.sum lines: err=%v, output:\n%s\nwant a refusal naming the missing go.sum entry", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
		t.Error("-mod=readonly wrote a go.sum")
	}
}

// TestDockerfileGoMatchesModule holds the image's builder to the exact Go
// the module declares: a floating golang:1.26 tag would build the release
// with whatever patch release the registry serves that day.
func TestDockerfileGoMatchesModule(t *testing.T) {
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil || mod.Go == nil {
		t.Fatalf("go.mod: no go line (%v)", err)
	}
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?golang:(\S+)\s+AS\s+build$`).FindSubmatch(docker)
	if m == nil {
		t.Fatal("Dockerfile: no `FROM golang:<version> AS build` line")
	}
	if got, want := string(m[1]), mod.Go.Version; got != want {
		t.Errorf("Dockerfile builds with golang:%s; go.mod says go %s: name the exact version", got, want)
	}
}
