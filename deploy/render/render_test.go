package render

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitObjects(t *testing.T) {
	in := "# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: ns}\ndata: {k: \"1\"}\n---\n---\nnull\n---\n{}\n---\n# Source: nothing.yaml\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n"
	docs, err := SplitObjects([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Object.GetKind()+" "+d.Object.GetName())
		if d.N != len(got) {
			t.Errorf("%s is document %d, want %d (empty documents are not counted)", got[len(got)-1], d.N, len(got))
		}
	}
	if want := "ConfigMap cm|Namespace ns"; strings.Join(got, "|") != want {
		t.Errorf("split into %q, want %q", strings.Join(got, "|"), want)
	}
	if want := `{"apiVersion":"v1","data":{"k":"1"},"kind":"ConfigMap","metadata":{"name":"cm","namespace":"ns"}}`; len(docs) > 0 && string(docs[0].JSON) != want {
		t.Errorf("JSON of the first document = %s, want %s", docs[0].JSON, want)
	}

	for in, want := range map[string]string{
		"apiVersion: v1\nkind: [\n":                  "document 1: ",
		"kind: A\n---\n# nothing\n---\n- 1\n":        "document 2: not an object",
		"kind: A\n---\nkind: B\n--- not a comment\n": "document 2: invalid Yaml document separator",
		"just a string\n":                            "document 1: not an object",
	} {
		_, err := SplitObjects([]byte(in))
		var de *DocumentError
		if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("SplitObjects(%q) = %v, want a *DocumentError starting %q", in, err, want)
		}
	}
}

func TestToolAndRun(t *testing.T) {
	root := t.TempDir()
	t.Setenv("TOOLS_DIR", "")
	_, err := Tool(root, "kustomize")
	var missing *MissingToolError
	if !errors.As(err, &missing) || missing.Path != filepath.Join(root, "bin", "tools", "kustomize") {
		t.Fatalf("Tool with no bin/tools: %v, want a *MissingToolError naming bin/tools/kustomize", err)
	}
	if !strings.Contains(err.Error(), "run `make tools`") {
		t.Errorf("missing tool error %q does not say how to install it", err)
	}

	// A stand-in renderer: prints its folder and arguments, fails on "bad".
	script := "#!/bin/sh\nif [ \"$1\" = bad ]; then echo 'no such value' >&2; exit 3; fi\npwd\necho \"$@\"\n"
	if err := os.MkdirAll(filepath.Join(root, "bin", "tools"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "tools", "helm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	out, err := Run(root, work, "helm", "template", "x")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], filepath.Base(work)) || lines[1] != "template x" {
		t.Errorf("Run printed %q, want the folder %s and the arguments", out, work)
	}
	_, err = Run(root, work, "helm", "bad", "value")
	if err == nil || err.Error() != "helm bad value: exit status 3: no such value" {
		t.Errorf("failing renderer: %v, want the command line, the exit status and its stderr", err)
	}

	// TOOLS_DIR, where hack/tools.sh installs when it is set, wins.
	t.Setenv("TOOLS_DIR", filepath.Join(root, "bin", "tools"))
	if path, err := Tool(t.TempDir(), "helm"); err != nil || path != filepath.Join(root, "bin", "tools", "helm") {
		t.Errorf("Tool with TOOLS_DIR = %q, %v; want the tool in TOOLS_DIR", path, err)
	}
}

func TestReadSources(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"base", "components/x", "overlays/snapshot", "charts/c/templates"} {
		if err := os.MkdirAll(filepath.Join(root, "deploy", dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "deploy", dir, "a.yaml"), []byte("kind: A\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := ReadSources(root); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "deploy", "charts")); err != nil {
		t.Fatal(err)
	}
	if err := ReadSources(root); err == nil || !strings.Contains(err.Error(), "charts") {
		t.Errorf("ReadSources without deploy/charts = %v, want an error naming it", err)
	}
}
