package deploydryrun

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	deployrender "github.com/nodeclass-guard/nodeclass-guard/deploy/render"
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
	docs, err := deployrender.SplitObjects(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var objs []object
	for _, d := range docs {
		u := d.Object
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d has no apiVersion, kind or metadata.name", source, d.N)
		}
		objs = append(objs, object{source: source, doc: d.N, u: u})
	}
	return objs, nil
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

// readDeploy reads every file under deploy/ that a render reads, once per
// test binary, so that `go test`'s result cache sees them
// (deployrender.ReadSources).
var readDeploy = sync.OnceValue(func() error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	return deployrender.ReadSources(root)
})

// render runs a tool from bin/tools (TOOLS_DIR when set, as for
// hack/tools.sh; installed by `make tools` at the version hack/versions.env
// pins) in the repository root and parses its output. The source named in
// messages is the command line. A missing tool skips the test, or fails it
// when NCG_REQUIRE_TOOLS=1.
func render(t *testing.T, tool string, args ...string) []object {
	t.Helper()
	if err := readDeploy(); err != nil {
		t.Fatal(err)
	}
	root := repoRoot(t)
	source := tool + " " + strings.Join(args, " ")
	out, err := deployrender.Run(root, root, tool, args...)
	var missing *deployrender.MissingToolError
	switch {
	case errors.As(err, &missing) && requireTools():
		t.Fatal(err)
	case errors.As(err, &missing):
		t.Skipf("%s; %s=1 turns this skip into a failure", err, envRequireTools)
	case err != nil:
		t.Fatal(err)
	}
	objs, err := parseObjects(source, out)
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
