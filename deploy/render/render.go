// Package render runs the renderers of deploy/ (kustomize, helm, as
// hack/tools.sh installs them) and splits their multi-document YAML into
// objects. The deploy tests, the envtest dry-run of the rendered manifests
// and the envtest harness all read manifests this way; each keeps its own
// checks of what an object must carry and its own skip or fail policy when
// a tool is missing.
package render

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// MissingToolError says that a renderer is not where `make tools` installs
// it. Tests skip on it, or fail when NCG_REQUIRE_TOOLS asks them to.
type MissingToolError struct {
	Path string // where the tool was looked for
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("%s is not installed: run `make tools` (hack/tools.sh)", e.Path)
}

// Tool returns the path of a renderer (kustomize, helm) where hack/tools.sh
// installs it: $TOOLS_DIR/<name> when TOOLS_DIR is set, else
// <root>/bin/tools/<name>, so that tests use the versions
// hack/versions.env pins rather than whatever is on PATH. A missing tool is
// a *MissingToolError.
func Tool(root, name string) (string, error) {
	dir := os.Getenv("TOOLS_DIR")
	if dir == "" {
		dir = filepath.Join(root, "bin", "tools")
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return "", &MissingToolError{Path: path}
	}
	return path, nil
}

// Run runs the renderer name (found by Tool under root) with args in the
// folder dir and returns its stdout. A failure is an error naming the
// command line, with the renderer's stderr: that is where kustomize and
// helm say what is wrong with a manifest or a value.
func Run(root, dir, name string, args ...string) ([]byte, error) {
	path, err := Tool(root, name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// ReadSources reads every file under <root>/deploy that a render reads
// (base, components, overlays, charts). The renderers read them in a
// subprocess, which `go test`'s result cache does not see; files the test
// process itself opens (while tests run, not in TestMain) are part of the
// cache key, so a test that calls this reruns when a manifest is edited
// instead of replaying a stale pass.
func ReadSources(root string) error {
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
}

// Document is one non-empty document of multi-document YAML.
type Document struct {
	// N is the document's position among the non-empty documents, from 1.
	N int
	// JSON is the document as JSON, for strict decoding into an API type.
	JSON []byte
	// Object holds the same fields, for generic access and comparison.
	Object *unstructured.Unstructured
}

// DocumentError is a document that is not YAML or not an object.
type DocumentError struct {
	N   int // the document's position, counted as Document.N
	Err error
}

func (e *DocumentError) Error() string { return fmt.Sprintf("document %d: %v", e.N, e.Err) }

func (e *DocumentError) Unwrap() error { return e.Err }

// SplitObjects splits multi-document YAML (a renderer's output, a manifest
// file) into its objects. Documents holding nothing (comments only, `---`
// alone, null, {}) are skipped and not counted. It does not check what an
// object carries (apiVersion, kind, name): callers ask for what they need.
func SplitObjects(data []byte) ([]Document, error) {
	var docs []Document
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		n := len(docs) + 1
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, &DocumentError{N: n, Err: err}
		}
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, &DocumentError{N: n, Err: err}
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			return nil, &DocumentError{N: n, Err: fmt.Errorf("not an object: %w", err)}
		}
		if len(m) == 0 {
			continue
		}
		docs = append(docs, Document{N: n, JSON: j, Object: &unstructured.Unstructured{Object: m}})
	}
}
