package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/check"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// FuzzDecode feeds any bytes to `check` as one input file: decoding either
// fails with an *InputError naming the file (exit code 2, never a panic),
// or yields documents each holding exactly one object of the kind it
// claims; checking those against the sample snapshot yields a report whose
// verdicts agree with their denials, in JSON that parses and in text.
//
// Seeds: every manifest under examples/ and check/testdata/, the sample
// IAM snapshot, plus testdata/fuzz.
func FuzzDecode(f *testing.F) {
	for _, root := range []string{filepath.Join("..", "examples"), "testdata"} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err == nil {
				f.Add(data)
			}
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	snapJSON, err := os.ReadFile(filepath.Join("..", "testdata", "iam", "sample-snapshot.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snapJSON)
	snap, err := authz.LoadSnapshotFile(filepath.Join("..", "testdata", "iam", "sample-snapshot.json"))
	if err != nil {
		f.Fatal(err)
	}
	const ctl = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	controller, err := authz.ParseRoleARN(ctl)
	if err != nil {
		f.Fatal(err)
	}

	const file = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := check.Decode(file, data)
		if err != nil {
			var ie *check.InputError
			if !errors.As(err, &ie) || ie.File != file || !strings.HasPrefix(err.Error(), file) {
				t.Fatalf("Decode error %T %q does not name the file as an *InputError", err, err)
			}
			// go-yaml may report the line after the last one, where it
			// looked for what was missing ("could not find expected ':'").
			if lines := bytes.Count(data, []byte("\n")) + 1; ie.Line < 0 || ie.Line > lines+1 {
				t.Fatalf("Decode error at line %d of a %d-line input: %v", ie.Line, lines, err)
			}
			return
		}
		for _, d := range docs {
			set := 0
			kind := ""
			if d.EC2NodeClass != nil {
				set, kind = set+1, rules.EC2NodeClassKind
			}
			if d.NodePool != nil {
				set, kind = set+1, rules.NodePoolKind
			}
			if d.NodeClass != nil {
				set, kind = set+1, rules.NodeClassKind
			}
			if set != 1 || d.Kind != kind || !strings.HasPrefix(d.Source, file+"#") || d.Line < 1 {
				t.Fatalf("document %+v: want exactly one object of its kind, a source in %s and a line", d, file)
			}
		}

		c := rules.NewChecker(rules.Config{IAM: snap, Controller: controller, ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny})
		c = c.WithClasses(check.NewInputClasses(docs, nil))
		report := check.Run(context.Background(), c, docs)
		if len(report.Results) != len(docs) {
			t.Fatalf("%d documents, %d results", len(docs), len(report.Results))
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, r := range report.Results {
			if r.Allowed != (len(r.Denials) == 0) {
				t.Fatalf("result %+v: allowed must mean no denials", r)
			}
			// Every finding points inside the input.
			for _, it := range append(append([]check.Item(nil), r.Denials...), r.Warnings...) {
				if it.Line < r.Line || it.Line > lines || it.Column < 1 {
					t.Fatalf("result %s (line %d): %s %s at %d:%d of a %d-line input", r.Source, r.Line, it.Code, it.Field, it.Line, it.Column, lines)
				}
			}
		}
		if err := report.WriteSARIF(&bytes.Buffer{}, check.Tool{Name: "nodeclass-guard"}); err != nil {
			t.Fatal(err)
		}
		var js bytes.Buffer
		if err := report.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var back check.Report
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(docs) {
			t.Fatalf("JSON report does not parse back (%v): %.300s", err, js.Bytes())
		}
		if err := report.WriteText(&bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	})
}
