// Package check runs nodeclass-guard's rules over manifests on disk, for CI
// and GitOps pipelines: it reads files, decodes the Karpenter and EKS
// documents among them, resolves NodePool references against the same
// input, and reports verdicts as text or JSON.
package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// Document is one decoded object of the input.
type Document struct {
	// Source is "path#N": the file and the document's 1-based index in it.
	Source     string
	Line       int // first line of the document in its file
	APIVersion string
	Kind       string
	Name       string
	// Exactly one of these is set.
	EC2NodeClass *rules.EC2NodeClass
	NodePool     *rules.NodePool
	NodeClass    *rules.NodeClass
	// AWSAuth is the kube-system/aws-auth ConfigMap, which the node-join
	// checks read; it is input to the checks, not an object checked.
	AWSAuth *rules.AWSAuth
	// Current is the cluster's copy of the EC2NodeClass (check
	// --kubeconfig, AgainstCluster): applying the document is an UPDATE of
	// it, judged as the webhook would judge that update (the update guard
	// included). nil means a CREATE.
	Current *rules.EC2NodeClass

	loc located
}

// File is the file the document was read from ("<stdin>" for standard
// input).
func (d Document) File() string { return d.loc.file }

// Position returns where the field at path is written in the document's
// file: the key of its deepest element present (spec when spec.role is
// missing), or the object's first line and column.
func (d Document) Position(path *field.Path) Position {
	return d.loc.Position(path)
}

// InputError is a file that could not be read or parsed: exit code 2.
type InputError struct {
	File string
	Line int // 0 when unknown
	Err  error
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// maxFileSize bounds one input file; manifests are small, and a runaway
// input must not exhaust memory.
const maxFileSize = 32 << 20

// ReadPaths reads every PATH (file, directory walked for .yaml/.yml/.json,
// or "-" for stdin) and returns the documents nodeclass-guard validates, in
// input order. Other documents are skipped.
func ReadPaths(paths []string, stdin io.Reader) ([]Document, error) {
	var docs []Document
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(io.LimitReader(stdin, maxFileSize+1))
			if err != nil {
				return nil, &InputError{File: "<stdin>", Err: err}
			}
			if len(data) > maxFileSize {
				return nil, &InputError{File: "<stdin>", Err: fmt.Errorf("larger than %d MiB", maxFileSize>>20)}
			}
			d, err := Decode("<stdin>", data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
			continue
		}
		files, err := listFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := readFile(f)
			if err != nil {
				return nil, err
			}
			d, err := Decode(f, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	return docs, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &InputError{File: path, Err: unwrapPathError(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &InputError{File: path, Err: unwrapPathError(err)}
	}
	if len(data) > maxFileSize {
		return nil, &InputError{File: path, Err: fmt.Errorf("larger than %d MiB", maxFileSize>>20)}
	}
	return data, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// listFiles expands a path into the files to read, sorted for a stable report.
func listFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, &InputError{File: p, Err: unwrapPathError(err)}
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return &InputError{File: path, Err: unwrapPathError(err)}
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// Decode splits a file into YAML documents (JSON is YAML) and decodes the
// ones nodeclass-guard validates. A syntax error or a field of the wrong
// type is an *InputError naming the file, the document and the line.
func Decode(file string, data []byte) ([]Document, error) {
	var out []Document
	for i, chunk := range splitDocuments(data) {
		source := file + "#" + strconv.Itoa(i+1)
		js, err := yaml.YAMLToJSON(chunk.data)
		if err != nil {
			line := chunk.line
			msg := err.Error()
			if m := lineRE.FindStringSubmatch(msg); m != nil {
				n, _ := strconv.Atoi(m[1])
				line = chunk.line + n - 1
				msg = strings.Replace(msg, m[0], "line "+strconv.Itoa(line), 1)
			}
			return nil, &InputError{File: file, Line: line, Err: fmt.Errorf("document %d: invalid YAML: %s", i+1, strings.TrimPrefix(msg, "error converting YAML to JSON: "))}
		}
		js = bytes.TrimSpace(js)
		if len(js) == 0 || bytes.Equal(js, []byte("null")) {
			continue
		}
		loc := located{file: file, node: parseNode(chunk.data), offset: chunk.line - 1, line: chunk.line}
		docs, err := decodeObject(source, loc, js)
		if err != nil {
			return nil, &InputError{File: file, Line: chunk.line, Err: fmt.Errorf("document %d: %w", i+1, err)}
		}
		out = append(out, docs...)
	}
	return out, nil
}

// typeHeader is what identifies a document. Its fields are raw so that a
// document that is not a Kubernetes object (a Helm values file, a CI
// workflow: `kind: 3`, `metadata: [a, b]`) is ignored, not an error.
type typeHeader struct {
	APIVersion json.RawMessage `json:"apiVersion"`
	Kind       json.RawMessage `json:"kind"`
}

// str returns a raw JSON value as a string, ok=false when it is not one.
func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// decodeObject decodes one JSON document; a v1 List is expanded.
func decodeObject(source string, loc located, js []byte) ([]Document, error) {
	if js[0] == '[' {
		// A JSON array of manifests (as some generators write them).
		var items []json.RawMessage
		if err := json.Unmarshal(js, &items); err != nil {
			return nil, nil // a YAML sequence of scalars is not a manifest list
		}
		var out []Document
		for i, item := range items {
			item = bytes.TrimSpace(item)
			if len(item) == 0 || item[0] != '{' {
				continue
			}
			docs, err := decodeObject(fmt.Sprintf("%s/%d", source, i), loc.item("", i), item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	if js[0] != '{' {
		return nil, nil // a scalar is not a Kubernetes object
	}
	var raw typeHeader
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	apiVersion, ok1 := str(raw.APIVersion)
	kind, ok2 := str(raw.Kind)
	if !ok1 || !ok2 {
		return nil, nil // not a Kubernetes object
	}
	switch kind {
	case "List", rules.EC2NodeClassKind, rules.NodePoolKind, rules.NodeClassKind, "ConfigMap":
	default:
		return nil, nil
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %v", apiVersion, err)
	}
	if kind == "ConfigMap" {
		return decodeAWSAuth(source, loc, apiVersion, js)
	}
	if kind == "List" && gv.Group == "" {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &list); err != nil {
			return nil, fmt.Errorf("List items: %v", err)
		}
		var out []Document
		for i, item := range list.Items {
			docs, err := decodeObject(fmt.Sprintf("%s/items/%d", source, i), loc.item("items", i), item)
			if err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	d := Document{Source: source, Line: loc.line, APIVersion: apiVersion, Kind: kind, loc: loc}
	var (
		into any
		meta *metav1.ObjectMeta
	)
	switch (schema.GroupKind{Group: gv.Group, Kind: kind}) {
	case rules.EC2NodeClassGK:
		d.EC2NodeClass = &rules.EC2NodeClass{}
		into, meta = d.EC2NodeClass, &d.EC2NodeClass.ObjectMeta
	case rules.NodePoolGK:
		d.NodePool = &rules.NodePool{}
		into, meta = d.NodePool, &d.NodePool.ObjectMeta
	case rules.EKSNodeClassGK:
		d.NodeClass = &rules.NodeClass{}
		into, meta = d.NodeClass, &d.NodeClass.ObjectMeta
	default:
		return nil, nil
	}
	if err := json.Unmarshal(js, into); err != nil {
		var named struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(js, &named)
		return nil, fmt.Errorf("%s %q: %s", kind, named.Metadata.Name, describeJSONError(err))
	}
	d.Name = meta.Name
	return []Document{d}, nil
}

// decodeAWSAuth keeps a ConfigMap only if it is kube-system/aws-auth (a
// manifest may leave the namespace out).
func decodeAWSAuth(source string, loc located, apiVersion string, js []byte) ([]Document, error) {
	var cm struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if apiVersion != "v1" {
		return nil, nil
	}
	if err := json.Unmarshal(js, &cm); err != nil {
		return nil, nil // not a ConfigMap this tool reads
	}
	if cm.Metadata.Name != rules.AWSAuthName || (cm.Metadata.Namespace != "" && cm.Metadata.Namespace != rules.AWSAuthNamespace) {
		return nil, nil
	}
	auth, err := rules.ParseAWSAuth(cm.Data)
	if err != nil {
		return nil, err
	}
	return []Document{{Source: source, Line: loc.line, APIVersion: apiVersion, Kind: "ConfigMap", Name: cm.Metadata.Name, AWSAuth: &auth, loc: loc}}, nil
}

// HasAWSAuth reports whether the input holds kube-system/aws-auth.
func HasAWSAuth(docs []Document) bool {
	for _, d := range docs {
		if d.AWSAuth != nil {
			return true
		}
	}
	return false
}

// InputAWSAuth is the aws-auth ConfigMap of the input (the last one, if it
// holds several), for the node-join checks; without one, a cluster that
// reads aws-auth gets that check reported as skipped.
func InputAWSAuth(docs []Document) rules.AWSAuthSource {
	for i := len(docs) - 1; i >= 0; i-- {
		if docs[i].AWSAuth != nil {
			return rules.StaticAWSAuth{Auth: *docs[i].AWSAuth}
		}
	}
	return rules.StaticAWSAuth{Err: errors.New("the input holds no kube-system/aws-auth ConfigMap")}
}

// describeJSONError names the field a type error is about.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: want %s, got a JSON %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

type chunk struct {
	data []byte
	line int // 1-based line of the document's first line
}

// splitDocuments splits multi-document YAML on "---" separator lines,
// remembering where each document starts.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	// emit adds the chunk ending at end, except a blank or comment-only
	// head before the first marker ("# license\n---\n..."), which is not
	// a document: the first object is document 1, as for kubectl.
	emit := func(end int) {
		if len(out) == 0 && start == 0 && blank(data[:end]) {
			return
		}
		out = append(out, chunk{data: data[start:end], line: startLine})
	}
	for pos := 0; pos <= len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		var text []byte
		next := len(data) + 1
		if end >= 0 {
			text = data[pos : pos+end]
			next = pos + end + 1
		} else {
			text = data[pos:]
		}
		t := bytes.TrimRight(text, " \t\r")
		switch {
		case bytes.Equal(t, []byte("---")):
			emit(pos)
			start = min(next, len(data))
			startLine = line + 1
		case bytes.HasPrefix(t, []byte("--- ")), bytes.HasPrefix(t, []byte("---\t")):
			// "--- {...}" or "--- !tag": the document starts on the
			// marker's line, which the YAML parser reads as it is.
			emit(pos)
			start = pos
			startLine = line
		}
		pos = next
		line++
	}
	out = append(out, chunk{data: data[start:], line: startLine})
	return out
}

// blank reports whether data holds only blank and comment lines.
func blank(data []byte) bool {
	for _, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}
