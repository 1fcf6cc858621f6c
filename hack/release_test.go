package hack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// release runs hack/release.sh VERSION into a temporary folder, for this
// machine's platform only (RELEASE_PLATFORMS), with the tools of
// bin/tools.
func release(t *testing.T, version string) (dir string, code int, log string) {
	t.Helper()
	dir = t.TempDir()
	tools, err := filepath.Abs("../bin/tools")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "release.sh", version)
	cmd.Env = append(os.Environ(), "RELEASE_DIR="+dir, "TOOLS_DIR="+tools, "RELEASE_PLATFORMS="+runtime.GOOS+"/"+runtime.GOARCH)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return dir, code, out.String()
}

// TestReleaseRefuses: a VERSION that is no release tag, or has no
// CHANGELOG.md section, makes no release.
func TestReleaseRefuses(t *testing.T) {
	for version, want := range map[string]string{
		"":        "want a release tag",
		"0.2.0":   "want a release tag",
		"v9.9.9":  `CHANGELOG.md has no "## v9.9.9" section`,
		"v0.2.0x": "want a release tag",
	} {
		dir, code, log := release(t, version)
		if code != 2 || !strings.Contains(log, want) {
			t.Errorf("release %q: exit %d, want 2 and %q\n%s", version, code, want, log)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("release %q wrote %d file(s)", version, len(entries))
		}
	}
}

// TestRelease runs the release of the newest CHANGELOG.md version for this
// machine's platform (make release builds all four the same way) and
// checks every artefact: the binary's stamped version, commit and
// Karpenter range, SHA256SUMS, the SBOM, the chart's version and
// appVersion, the image build command and the release notes. It needs
// helm and cyclonedx-gomod in bin/tools (make tools).
func TestRelease(t *testing.T) {
	for _, tool := range []string{"helm", "cyclonedx-gomod"} {
		if _, err := os.Stat(filepath.Join("../bin/tools", tool)); err != nil {
			if os.Getenv("NCG_REQUIRE_TOOLS") != "" {
				t.Fatalf("bin/tools/%s: %v (make tools)", tool, err)
			}
			t.Skipf("bin/tools/%s missing (make tools builds it; NCG_REQUIRE_TOOLS=1 makes this a failure)", tool)
		}
	}
	const version = "v0.2.0"
	dir, code, log := release(t, version)
	if code != 0 {
		t.Fatalf("release.sh %s: exit %d\n%s", version, code, log)
	}
	bin := "nodeclass-guard_" + runtime.GOOS + "_" + runtime.GOARCH
	chart := "nodeclass-guard-0.2.0.tgz"
	want := []string{bin, "nodeclass-guard.cdx.json", chart, "image-build.sh", "RELEASE_NOTES.md", "SHA256SUMS"}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(sorted(want), " ") {
		t.Fatalf("release files %v, want %v", got, sorted(want))
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	// SHA256SUMS covers every other file, with the right sums.
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(read("SHA256SUMS"))), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		sums[name] = sum
	}
	for _, name := range want[:len(want)-1] {
		s := sha256.Sum256(read(name))
		if sums[name] != hex.EncodeToString(s[:]) {
			t.Errorf("SHA256SUMS: %s has %q, the file %x", name, sums[name], s)
		}
	}

	// The binary: version, commit, Karpenter range.
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, bin), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] != "nodeclass-guard "+version || !strings.HasPrefix(lines[1], "commit "+strings.TrimSpace(string(head))) || lines[2] != "karpenter 1.0–1.15" {
		t.Errorf("%s version:\n%s\nwant nodeclass-guard %s, commit %s, karpenter 1.0–1.15", bin, out, version, head)
	}

	// The SBOM: CycloneDX, of this module, with its dependencies.
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct {
				Name string `json:"name"`
			} `json:"component"`
		} `json:"metadata"`
		Components []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"components"`
	}
	if err := json.Unmarshal(read("nodeclass-guard.cdx.json"), &bom); err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{}
	for _, c := range bom.Components {
		deps[c.Name] = c.Version
	}
	if bom.BOMFormat != "CycloneDX" || !strings.Contains(bom.Metadata.Component.Name, "nodeclass-guard") || deps["github.com/spf13/cobra"] != "v1.10.2" || deps["github.com/aws/aws-sdk-go-v2/service/iam"] == "" {
		t.Errorf("SBOM: format %q, component %q, cobra %q, %d components", bom.BOMFormat, bom.Metadata.Component.Name, deps["github.com/spf13/cobra"], len(bom.Components))
	}

	// The chart: version and appVersion of the release.
	zr, err := gzip.NewReader(bytes.NewReader(read(chart)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatal("the chart has no nodeclass-guard/Chart.yaml")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "nodeclass-guard/Chart.yaml" {
			data, _ := io.ReadAll(tr)
			if err := yaml.Unmarshal(data, &meta); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if meta.Version != "0.2.0" || meta.AppVersion != version {
		t.Errorf("chart version %q, appVersion %q; want 0.2.0 and %s", meta.Version, meta.AppVersion, version)
	}

	// The image command and the notes.
	img := string(read("image-build.sh"))
	for _, w := range []string{"docker buildx build --platform linux/amd64,linux/arm64", "--build-arg VERSION=" + version, "--build-arg COMMIT=" + strings.TrimSpace(string(head)), ":" + version + `" --push .`} {
		if !strings.Contains(img, w) {
			t.Errorf("image-build.sh has no %q:\n%s", w, img)
		}
	}
	if notes := string(read("RELEASE_NOTES.md")); !strings.HasPrefix(notes, "# nodeclass-guard "+version+"\n") || !strings.Contains(notes, "nodeclass-guard snapshot") {
		t.Errorf("RELEASE_NOTES.md is not CHANGELOG.md's %s section:\n%s", version, notes)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
