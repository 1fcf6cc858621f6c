package deploydryrun

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// envRequireTools turns a missing kustomize or helm into a failure instead
// of a skip (`make test` sets it).
const envRequireTools = "NCG_REQUIRE_TOOLS"

// object is one document of a renderer's output.
type object struct {
	source string // the render, for example "kustomize build deploy/base"
	doc    int    // the document's position in the output, from 1
	u      *unstructured.Unstructured
}

// String names the object as a message should: kind, namespace/name and
// where it was rendered.
func (o object) String() string {
	name := o.u.GetName()
	if ns := o.u.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return fmt.Sprintf("%s %s (%s, document %d)", o.u.GetKind(), name, o.source, o.doc)
}

// parseObjects splits a renderer's multi-document YAML into objects.
// Documents holding nothing (comments, `---` alone) are skipped; a document
// without apiVersion, kind or metadata.name is an error naming it.
func parseObjects(source string, out []byte) ([]object, error) {
	var objs []object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, doc, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, doc, err)
		}
		if len(m) == 0 {
			doc--
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d has no apiVersion, kind or metadata.name", source, doc)
		}
		objs = append(objs, object{source: source, doc: doc, u: u})
	}
}

// requireTools reports whether NCG_REQUIRE_TOOLS asks that missing tools
// fail the tests rather than skip them.
func requireTools() bool {
	v := os.Getenv(envRequireTools)
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// repoRoot returns the repository root or fails the test.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// toolPath returns bin/tools/<name> (TOOLS_DIR/<name> when set, as for
// hack/tools.sh), installed by `make tools` at the version hack/versions.env
// pins. A missing tool skips the test, or fails it when NCG_REQUIRE_TOOLS=1.
func toolPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("TOOLS_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin", "tools")
	}
	path := filepath.Join(dir, name)
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		msg := fmt.Sprintf("%s is not installed: run `make tools` (hack/tools.sh)", path)
		if requireTools() {
			t.Fatal(msg)
		}
		t.Skipf("%s; %s=1 turns this skip into a failure", msg, envRequireTools)
	}
	return path
}

// readDeploy reads every file under deploy/ that a render reads, once per
// test binary. The renderers read them in a subprocess, which `go test`'s
// result cache does not see; files the test process opens are part of the
// cache key, so an edited manifest reruns these tests instead of replaying
// an old pass.
var readDeploy = sync.OnceValue(func() error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	for _, dir := range []string{"base", "components", "overlays", "charts"} {
		err := filepath.WalkDir(filepath.Join(root, "deploy", dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			_, err = os.ReadFile(path)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
})

// render runs a tool from bin/tools in the repository root and parses its
// output. The source named in messages is the command line.
func render(t *testing.T, tool string, args ...string) []object {
	t.Helper()
	if err := readDeploy(); err != nil {
		t.Fatal(err)
	}
	path := toolPath(t, tool)
	source := tool + " " + strings.Join(args, " ")
	cmd := exec.Command(path, args...)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", source, err, strings.TrimSpace(stderr.String()))
	}
	objs, err := parseObjects(source, stdout.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s rendered no objects", source)
	}
	return objs
}

// kustomizeBuild renders a kustomization folder (relative to the
// repository root, or absolute).
func kustomizeBuild(t *testing.T, dir string) []object {
	t.Helper()
	return render(t, "kustomize", "build", dir)
}

// helmTemplate renders the chart as release into namespace, with --set
// values.
func helmTemplate(t *testing.T, release, namespace string, set ...string) []object {
	t.Helper()
	args := []string{"template", release, "deploy/charts/nodeclass-guard", "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return render(t, "helm", args...)
}

// kinds counts the rendered objects by kind.
func kinds(objs []object) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.u.GetKind()]++
	}
	return out
}
