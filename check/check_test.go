package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

func sources(docs []Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Source + " " + d.Kind + "/" + d.Name
	}
	return out
}

func TestDecodeMultiDocument(t *testing.T) {
	data := `# leading comment, not a document
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata:
  name: first
spec:
  role: KarpenterNodeRole-demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ignored
---
# an empty document
---
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata:
  name: pool
spec:
  template:
    spec:
      nodeClassRef:
        apiVersion: karpenter.k8s.aws/v1beta1
        kind: EC2NodeClass
        name: first
--- {"apiVersion": "eks.amazonaws.com/v1", "kind": "NodeClass", "metadata": {"name": "inline"}, "spec": {"role": "r"}}
--- # a comment after the marker
apiVersion: karpenter.k8s.aws/v1beta1
kind: EC2NodeClass
metadata:
  name: old
spec:
  instanceProfile: p
...
`
	docs, err := Decode("multi.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"multi.yaml#1 EC2NodeClass/first",
		"multi.yaml#4 NodePool/pool",
		"multi.yaml#5 NodeClass/inline",
		"multi.yaml#6 EC2NodeClass/old",
	}
	if got := sources(docs); !slices.Equal(got, want) {
		t.Fatalf("documents\n%q\nwant\n%q", got, want)
	}
	if docs[0].Line != 3 || docs[1].Line != 17 || docs[2].Line != 28 || docs[3].Line != 29 {
		t.Errorf("lines %d %d %d %d, want 3 17 28 29", docs[0].Line, docs[1].Line, docs[2].Line, docs[3].Line)
	}
	if docs[0].EC2NodeClass == nil || docs[0].EC2NodeClass.Spec.Role != "KarpenterNodeRole-demo" {
		t.Errorf("first: %+v", docs[0].EC2NodeClass)
	}
	ref := docs[1].NodePool.Spec.Template.Spec.NodeClassRef
	if ref == nil || ref.GroupKind() != rules.EC2NodeClassGK || ref.Name != "first" {
		t.Errorf("v1beta1 nodeClassRef %+v", ref)
	}
	if docs[2].NodeClass == nil || docs[2].NodeClass.Spec.Role != "r" {
		t.Errorf("document on the marker's line: %+v", docs[2])
	}
	if docs[3].APIVersion != "karpenter.k8s.aws/v1beta1" || docs[3].EC2NodeClass.Spec.InstanceProfile != "p" {
		t.Errorf("v1beta1 class: %+v", docs[3])
	}
}

func TestDecodeList(t *testing.T) {
	data := `apiVersion: v1
kind: List
items:
  - apiVersion: karpenter.k8s.aws/v1
    kind: EC2NodeClass
    metadata: {name: a}
    spec: {role: KarpenterNodeRole-demo}
  - apiVersion: v1
    kind: Secret
    metadata: {name: s}
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: {name: p}
    spec: {template: {spec: {nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: a}}}}
`
	docs, err := Decode("list.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"list.yaml#1/items/0 EC2NodeClass/a", "list.yaml#1/items/2 NodePool/p"}
	if got := sources(docs); !slices.Equal(got, want) {
		t.Errorf("documents %q, want %q", got, want)
	}

	_, err = Decode("list.yaml", []byte("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: karpenter.k8s.aws/v1\n    kind: EC2NodeClass\n    metadata: {name: a}\n    spec: {role: [1]}\n"))
	if err == nil || !strings.Contains(err.Error(), "items[0]") || !strings.Contains(err.Error(), "spec.role") {
		t.Errorf("bad list item: error %v, want one naming items[0] and spec.role", err)
	}
}

// TestDecodeIgnores covers documents that are not ours, whatever they hold.
func TestDecodeIgnores(t *testing.T) {
	for name, data := range map[string]string{
		"empty":                   "",
		"comments only":           "# nothing\n# here\n",
		"markers only":            "---\n---\n",
		"scalar":                  "just a string\n",
		"sequence":                "- a\n- b\n",
		"Helm values":             "kind: 3\napiVersion: [1, 2]\nmetadata:\n  - name: nope\n",
		"kind without apiVersion": "kind: EC2NodeClass\nspec: {role: x}\n",
		"other group, same kind":  "apiVersion: example.com/v1\nkind: EC2NodeClass\nmetadata: {name: x}\nspec: {role: 42}\n",
		"metadata of another type in a ConfigMap": "apiVersion: v1\nkind: ConfigMap\nmetadata: [x]\n",
		"odd apiVersion of another kind":          "apiVersion: a/b/c\nkind: Thing\n",
		"GitHub workflow":                         "name: ci\non: [push]\njobs: {}\n",
	} {
		t.Run(name, func(t *testing.T) {
			docs, err := Decode("f.yaml", []byte(data))
			if err != nil || len(docs) != 0 {
				t.Errorf("Decode = %q, %v; want nothing, no error", sources(docs), err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tabDoc3, err := os.ReadFile("testdata/split/tab-doc3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data string
		want []string
		line int
	}{
		{name: "tab in document 3", data: string(tabDoc3), want: []string{"tab-doc3.yaml:20:", "document 3", "invalid YAML"}, line: 20},
		{name: "unclosed flow", data: "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nspec: {role: x\n", want: []string{"document 1", "invalid YAML"}},
		{name: "role of the wrong type", data: "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: x\nspec:\n  role: 42\n",
			want: []string{"tab-doc3.yaml:4:", "document 2", `EC2NodeClass "x"`, "spec.role", "want string", "number"}, line: 4},
		{name: "nodeClassRef of the wrong type", data: "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: p}\nspec: {template: {spec: {nodeClassRef: default}}}\n",
			want: []string{"document 1", `NodePool "p"`, "spec.template.spec.nodeClassRef"}},
		{name: "name of the wrong type", data: "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata: {name: [x]}\nspec: {role: r}\n",
			want: []string{"document 1", "metadata.name"}},
		{name: "bad apiVersion of our kind", data: "apiVersion: karpenter.k8s.aws/v1/extra\nkind: EC2NodeClass\n",
			want: []string{"document 1", `apiVersion "karpenter.k8s.aws/v1/extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode("testdata/split/tab-doc3.yaml", []byte(tc.data))
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T), want an *InputError", err, err)
			}
			if ie.File != "testdata/split/tab-doc3.yaml" {
				t.Errorf("File = %q", ie.File)
			}
			if tc.line != 0 && ie.Line != tc.line {
				t.Errorf("Line = %d, want %d", ie.Line, tc.line)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeCRLF(t *testing.T) {
	data, err := os.ReadFile("testdata/split/crlf.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Decode("crlf.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := sources(docs); !slices.Equal(got, []string{"crlf.yaml#1 EC2NodeClass/crlf", "crlf.yaml#2 EC2NodeClass/crlf-2"}) {
		t.Errorf("documents %q", got)
	}
	if docs[0].EC2NodeClass.Spec.Role != "bad name" || docs[1].Line != 8 {
		t.Errorf("role %q, second document at line %d", docs[0].EC2NodeClass.Spec.Role, docs[1].Line)
	}
}

func TestReadPathsWalk(t *testing.T) {
	docs, err := ReadPaths([]string{"testdata/walk"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"testdata/walk/classes.yaml#1 EC2NodeClass/default",
		"testdata/walk/classes.yaml#3 EC2NodeClass/role-arn",
		"testdata/walk/nested/deeper/eks.JSON#1 NodeClass/auto",
		"testdata/walk/nested/nodepool.yml#1 NodePool/uses-role-arn",
	}
	if got := sources(docs); !slices.Equal(got, want) {
		t.Errorf("documents\n%q\nwant\n%q", got, want)
	}
}

func TestReadPathsStdinAndFiles(t *testing.T) {
	stdin := strings.NewReader("apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata: {name: piped}\nspec: {role: r}\n")
	docs, err := ReadPaths([]string{"testdata/walk/nested/nodepool.yml", "-"}, stdin)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"testdata/walk/nested/nodepool.yml#1 NodePool/uses-role-arn", "<stdin>#1 EC2NodeClass/piped"}
	if got := sources(docs); !slices.Equal(got, want) {
		t.Errorf("documents %q, want %q", got, want)
	}
}

func TestReadPathsErrors(t *testing.T) {
	dir := t.TempDir()
	dangling := filepath.Join(dir, "gone.yaml")
	if err := os.Symlink(filepath.Join(dir, "missing-target.yaml"), dangling); err != nil {
		t.Skipf("symlinks: %v", err)
	}
	for _, tc := range []struct {
		name  string
		paths []string
		file  string
	}{
		{name: "missing file", paths: []string{"testdata/walk/classes.yaml", "testdata/no-such.yaml"}, file: "testdata/no-such.yaml"},
		{name: "dangling link in a walked folder", paths: []string{dir}, file: dangling},
		{name: "dangling link named", paths: []string{dangling}, file: dangling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPaths(tc.paths, nil)
			var ie *InputError
			if !errors.As(err, &ie) || ie.File != tc.file {
				t.Fatalf("error %v, want an *InputError naming %s", err, tc.file)
			}
			if !strings.HasPrefix(err.Error(), tc.file+": ") {
				t.Errorf("error %q does not start with the file", err)
			}
		})
	}
}

func TestReadPathsStdinTooLarge(t *testing.T) {
	big := strings.NewReader(strings.Repeat("#", maxFileSize+1))
	_, err := ReadPaths([]string{"-"}, big)
	if err == nil || !strings.Contains(err.Error(), "<stdin>") || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("error %v, want <stdin> larger than the limit", err)
	}
}

func loadSnapshot(t *testing.T) *authz.Snapshot {
	t.Helper()
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func testChecker(t *testing.T, view authz.View) *rules.Checker {
	t.Helper()
	ctl, err := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	eks, _ := view.(authz.EKSView) // the sample snapshot's EKS sections
	return rules.NewChecker(rules.Config{IAM: view, EKS: eks, Controller: ctl, ClusterName: "demo", Region: "us-west-2",
		OnIAMError: rules.OnIAMErrorAllow})
}

func resultCodes(r Result) (deny, warn []string) {
	for _, it := range r.Denials {
		deny = append(deny, it.Code)
	}
	for _, it := range r.Warnings {
		warn = append(warn, it.Code)
	}
	return deny, warn
}

// TestRunResolvesAcrossFiles: a NodePool is checked against the class it
// names, found in another file of the same input.
func TestRunResolvesAcrossFiles(t *testing.T) {
	docs, err := ReadPaths([]string{"testdata/walk"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := testChecker(t, loadSnapshot(t))
	c = c.WithClasses(NewInputClasses(docs, nil))
	report := Run(context.Background(), c, docs)
	if len(report.Results) != len(docs) {
		t.Fatalf("%d results for %d documents", len(report.Results), len(docs))
	}
	want := map[string][2]string{
		"testdata/walk/classes.yaml#1":           {"", ""},
		"testdata/walk/classes.yaml#3":           {"RoleIsARN", ""},
		"testdata/walk/nested/deeper/eks.JSON#1": {"", "InstanceProfileNamePrefix"},
		"testdata/walk/nested/nodepool.yml#1":    {"NodeClassInvalid", ""},
	}
	for i, r := range report.Results {
		if r.Source != docs[i].Source {
			t.Errorf("result %d is for %s, want input order (%s)", i, r.Source, docs[i].Source)
		}
		deny, warn := resultCodes(r)
		if got := [2]string{strings.Join(deny, ","), strings.Join(warn, ",")}; got != want[r.Source] {
			t.Errorf("%s: codes %v, want %v", r.Source, got, want[r.Source])
		}
		if r.Allowed != (len(r.Denials) == 0) {
			t.Errorf("%s: allowed %v with %d denials", r.Source, r.Allowed, len(r.Denials))
		}
	}
	if !report.Denied() {
		t.Error("Denied() = false")
	}
}

// fakeCluster stands for the cluster behind --kubeconfig.
type fakeCluster struct{ asked []string }

func (f *fakeCluster) GetEC2NodeClass(_ context.Context, name string) (*rules.EC2NodeClass, bool, error) {
	f.asked = append(f.asked, name)
	if name == "in-cluster" {
		nc := &rules.EC2NodeClass{Spec: rules.EC2NodeClassSpec{Role: "KarpenterNodeRole-notrust"}}
		nc.Name = name
		return nc, true, nil
	}
	return nil, false, nil
}

func (f *fakeCluster) GetNodeClass(context.Context, string) (*rules.NodeClass, bool, error) {
	return nil, false, nil
}

func TestInputClassesPreferTheInput(t *testing.T) {
	docs, err := Decode("in.yaml", []byte("apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata: {name: local}\nspec: {role: r}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cluster := &fakeCluster{}
	ic := NewInputClasses(docs, cluster)
	if nc, ok, err := ic.GetEC2NodeClass(context.Background(), "local"); !ok || err != nil || nc.Spec.Role != "r" {
		t.Errorf("local class: %v %v %v", nc, ok, err)
	}
	if nc, ok, _ := ic.GetEC2NodeClass(context.Background(), "in-cluster"); !ok || nc.Spec.Role != "KarpenterNodeRole-notrust" {
		t.Errorf("cluster class: %v %v", nc, ok)
	}
	if _, ok, _ := ic.GetEC2NodeClass(context.Background(), "nowhere"); ok {
		t.Error("found a class that exists nowhere")
	}
	if !slices.Equal(cluster.asked, []string{"in-cluster", "nowhere"}) {
		t.Errorf("cluster asked for %q; the input's classes must not reach it", cluster.asked)
	}
	if _, ok, err := NewInputClasses(nil, nil).GetNodeClass(context.Background(), "x"); ok || err != nil {
		t.Errorf("no input, no cluster: %v %v", ok, err)
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := (Report{}).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(b.String()), ""); got != `{"results":[]}` {
		t.Errorf("empty report %s", got)
	}

	docs, err := ReadPaths([]string{"testdata/walk"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := testChecker(t, nil)
	c = c.WithClasses(NewInputClasses(docs, nil))
	b.Reset()
	if err := Run(context.Background(), c, docs).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, r := range raw.Results {
		for _, k := range []string{"source", "apiVersion", "kind", "name", "allowed", "denials", "warnings"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result %s has no %q", r["source"], k)
			}
		}
		for _, k := range []string{"denials", "warnings"} {
			if !bytes.HasPrefix(r[k], []byte("[")) {
				t.Errorf("result %s: %s is %s, want an array", r["source"], k, r[k])
			}
		}
		// The contract's 7 keys and the extensions: the file and the
		// object's first line; each item's line and column.
		if len(r) != 9 {
			t.Errorf("result %s has %d keys, want the contract's 7, file and line", r["source"], len(r))
		}
		var file string
		var line int
		if json.Unmarshal(r["file"], &file) != nil || json.Unmarshal(r["line"], &line) != nil || !strings.HasPrefix(string(r["source"]), `"`+file+"#") || line < 1 {
			t.Errorf("result %s: file %s, line %s", r["source"], r["file"], r["line"])
		}
		var its []map[string]json.RawMessage
		_ = json.Unmarshal(r["denials"], &its)
		var ws []map[string]json.RawMessage
		_ = json.Unmarshal(r["warnings"], &ws)
		for _, it := range append(its, ws...) {
			var l, c int
			if json.Unmarshal(it["line"], &l) != nil || json.Unmarshal(it["column"], &c) != nil || l < line || c < 1 {
				t.Errorf("result %s: item %s %s at line %s, column %s", r["source"], it["code"], it["field"], it["line"], it["column"])
			}
		}
	}
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	if err := (Report{}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "no EC2NodeClass, NodePool or EKS NodeClass found in the input\n" {
		t.Errorf("empty report %q", b.String())
	}
	r := Report{Results: []Result{
		{Source: "a.yaml#1", File: "a.yaml", Kind: "EC2NodeClass", Name: "a", Allowed: true},
		{Source: "a.yaml#2", File: "a.yaml", Kind: "EC2NodeClass", Name: "b", Allowed: true,
			Warnings: []Item{{Code: "RoleHasPath", Field: "spec.role", Message: "path", Line: 12, Column: 3}}},
		{Source: "b.yaml#1", File: "b.yaml", Kind: "NodePool", Name: "c", Allowed: false,
			Denials:  []Item{{Code: "NodeClassInvalid", Field: "spec.template.spec.nodeClassRef", Message: "broken", Line: 8, Column: 7}},
			Warnings: []Item{{Code: "IAMStale", Field: "spec", Message: "old", Line: 5, Column: 1}}},
		{Source: "c#1", Kind: "NodePool", Name: "d", Allowed: true,
			Warnings: []Item{{Code: "IAMStale", Field: "spec", Message: "no position known"}}},
	}}
	b.Reset()
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `ok    EC2NodeClass/a  (a.yaml#1)
warn  EC2NodeClass/b  (a.yaml#2)
      warning  a.yaml:12:3: [RoleHasPath] spec.role: path
DENY  NodePool/c  (b.yaml#1)
      denied   b.yaml:8:7: spec.template.spec.nodeClassRef: [NodeClassInvalid] broken
      warning  b.yaml:5:1: [IAMStale] spec: old
warn  NodePool/d  (c#1)
      warning  [IAMStale] spec: no position known

4 object(s): 1 allowed, 2 allowed with warnings, 1 denied
`
	if b.String() != want {
		t.Errorf("text report\n%s\nwant\n%s", b.String(), want)
	}
}

// TestDecodeJSONArray checks that a JSON array of manifests is read, each
// element with its own source, and that two definitions of a class are
// reported.
func TestDecodeJSONArray(t *testing.T) {
	data := `[{"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "a"}, "spec": {"role": "R"}},
  "not an object",
  {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "a"}, "spec": {"role": "S"}}]`
	docs, err := Decode("f.json", []byte(data))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(docs) != 2 || docs[0].Source != "f.json#1/0" || docs[1].Source != "f.json#1/2" || docs[1].EC2NodeClass.Spec.Role != "S" {
		t.Fatalf("Decode = %+v", docs)
	}
	dups := Duplicates(docs)
	if len(dups) != 1 || !strings.Contains(dups[0], `EC2NodeClass "a" is defined 2 times (f.json#1/0, f.json#1/2)`) {
		t.Errorf("Duplicates = %q", dups)
	}
}
