package check

import (
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// at returns the line and column (code points, 1-based) where the n-th
// (1-based) occurrence of marker starts in text: the expected positions
// are read off the source itself, not written by hand.
func at(t *testing.T, text, marker string, n int) (int, int) {
	t.Helper()
	off := -1
	for i := 0; i < n; i++ {
		next := strings.Index(text[off+1:], marker)
		if next < 0 {
			t.Fatalf("marker %q occurrence %d not in the input", marker, n)
		}
		off += 1 + next
	}
	before := text[:off]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	return line, col
}

var (
	pRole    = field.NewPath("spec", "role")
	pProfile = field.NewPath("spec", "instanceProfile")
	pRef     = field.NewPath("spec", "template", "spec", "nodeClassRef")
	pSpec    = field.NewPath("spec")
)

func TestPositions(t *testing.T) {
	type want struct {
		doc    int // index among the decoded documents
		path   *field.Path
		marker string
		n      int // occurrence of marker
	}
	for _, tc := range []struct {
		name  string
		file  string
		input string
		wants []want
	}{
		{
			name: "multi-document YAML", file: "classes.yaml",
			input: "# header\n---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: a\nspec:\n  role: A\n" +
				"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  role: arn:aws:iam::1:role/x\n" +
				"---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: b\nspec:\n    subnetSelectorTerms: []\n    instanceProfile: P\n" +
				"---\napiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: pool\nspec:\n  template:\n    spec:\n      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: b}\n",
			wants: []want{
				{0, pRole, "role: A", 1},
				{0, pSpec, "spec:", 1},
				{1, pProfile, "instanceProfile", 1},
				{1, pRole, "spec:", 2}, // missing spec.role: its parent
				{2, pRef, "nodeClassRef", 1},
				{0, nil, "apiVersion", 1},
			},
		},
		{
			name: "CRLF and an inline document after the marker", file: "crlf.yaml",
			input: "apiVersion: karpenter.k8s.aws/v1\r\nkind: EC2NodeClass\r\nmetadata:\r\n  name: a\r\nspec:\r\n  role: A\r\n" +
				"--- {\"apiVersion\": \"karpenter.k8s.aws/v1\", \"kind\": \"EC2NodeClass\", \"metadata\": {\"name\": \"b\"}, \"spec\": {\"role\": \"B\"}}\r\n",
			wants: []want{
				{0, pRole, "role: A", 1},
				{1, pRole, `"role"`, 1},
				{1, nil, "{", 1},
			},
		},
		{
			name: "JSON object, tab-indented, non-ASCII before the field", file: "class.json",
			input: "{\n\t\"apiVersion\": \"karpenter.k8s.aws/v1\", \"kind\": \"EC2NodeClass\",\n\t\"metadata\": {\"name\": \"ä\", \"annotations\": {\"ü\": \"ö\"}},\n\t\"spec\": {\"tags\": {\"é\": \"x\"}, \"role\": \"A\"}\n}\n",
			wants: []want{
				{0, pRole, `"role"`, 1},
				{0, pSpec, `"spec"`, 1},
			},
		},
		{
			name: "List in YAML", file: "list.yaml",
			input: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n" +
				"- apiVersion: karpenter.k8s.aws/v1\n  kind: EC2NodeClass\n  metadata:\n    name: a\n  spec:\n    role: A\n" +
				"- apiVersion: karpenter.sh/v1\n  kind: NodePool\n  metadata:\n    name: p\n  spec:\n    template:\n      spec:\n        nodeClassRef:\n          name: a\n",
			wants: []want{
				{0, pRole, "role: A", 1},
				{1, pRef, "nodeClassRef", 1},
				{1, nil, "apiVersion: karpenter.sh", 1},
			},
		},
		{
			name: "List in JSON", file: "list.json",
			input: `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "a"}, "spec": {"role": "A"}},
  {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "b"}, "spec": {"role": "B"}}
]}
`,
			wants: []want{
				{0, pRole, `"role"`, 1},
				{1, pRole, `"role"`, 2},
				{1, nil, `{"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "b"}`, 1},
			},
		},
		{
			name: "JSON array of manifests, one of them a List", file: "array.json",
			input: `[
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"role": "x"}},
  {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "a"}, "spec": {"role": "A"}},
  {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "b"},
    "spec": {"instanceProfile": "P"}}]}
]
`,
			wants: []want{
				{0, pRole, `"role"`, 2},
				{1, pProfile, `"instanceProfile"`, 1},
			},
		},
		{
			name: "anchors, aliases and merge keys", file: "anchors.yaml",
			input: "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: a\nspec:\n  <<: &base\n    role: Shared\n  amiFamily: AL2023\n" +
				"---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: b\nspec:\n  role: First\n  role: Last\n",
			wants: []want{
				{0, pRole, "role: Shared", 1},
				{1, pRole, "role: Last", 1}, // the decoder keeps the last duplicate
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Decode(tc.file, []byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wants {
				if w.doc >= len(docs) {
					t.Fatalf("%d documents, want at least %d", len(docs), w.doc+1)
				}
				line, col := at(t, tc.input, w.marker, w.n)
				got := docs[w.doc].Position(w.path)
				if got != (Position{File: tc.file, Line: line, Column: col}) {
					t.Errorf("document %d (%s), %v: got %s, want %s:%d:%d (%q)", w.doc, docs[w.doc].Source, w.path, got, tc.file, line, col, w.marker)
				}
			}
		})
	}
}

// TestPositionUnparsable: a document the position parser cannot read but
// the decoder can still reports its first line.
func TestPositionFallback(t *testing.T) {
	d := Document{loc: located{file: "f.yaml", line: 7}}
	if got := d.Position(pRole); got != (Position{File: "f.yaml", Line: 7}) || got.String() != "f.yaml:7" {
		t.Errorf("got %+v %q", got, got.String())
	}
	if got := (Position{File: "f"}).String(); got != "f" {
		t.Errorf("no line: %q", got)
	}
}

func TestPathElements(t *testing.T) {
	for path, want := range map[*field.Path]string{
		pRef:                                      "spec|template|spec|nodeClassRef",
		field.NewPath("spec", "tags").Key("a.b"):  "spec|tags|a.b",
		field.NewPath("spec", "items").Index(2):   "spec|items|2",
		field.NewPath("spec").Index(0).Child("x"): "spec|0|x",
		nil: "",
	} {
		if got := strings.Join(pathElements(path), "|"); got != want {
			t.Errorf("%v: %q, want %q", path, got, want)
		}
	}
}
