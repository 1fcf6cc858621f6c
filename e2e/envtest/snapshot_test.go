package envtest_test

import (
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestSnapshotModeAgreesWithIAMEndpoint applies every example, in the
// order `kubectl apply -f examples/good -f examples/bad` would, to two
// clusters whose webhooks see the same IAM account: one reading the snapshot file
// (--iam-snapshot, the local evaluator) and one asking IAM's API (the local
// endpoint, SimulatePrincipalPolicy through the AWS SDK). Both must reach
// the same verdict with the same codes on the same fields; only the
// wording of a reason may differ.
func TestSnapshotModeAgreesWithIAMEndpoint(t *testing.T) {
	live := v1Env.Get(t)
	snap := snapshotEnv.Get(t)
	ctx := testContext(t)
	liveClient, snapClient := newClient(t, live), newClient(t, snap)

	// Glob sorts: examples/bad/* before examples/good/*; good first, as the
	// demo and a user apply them.
	good, err := filepath.Glob(filepath.Join(live.Root, "examples", "good", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := filepath.Glob(filepath.Join(live.Root, "examples", "bad", "*.yaml"))
	files := append(good, bad...)
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(live.Root, "examples"), f)
		for _, d := range readExample(t, live, rel) {
			o := d.Object
			lw, lerr := create(ctx, liveClient, o.DeepCopy())
			sw, serr := create(ctx, snapClient, o.DeepCopy())
			if lerr == nil {
				deleteAtEnd(t, liveClient, o)
			}
			if serr == nil {
				deleteAtEnd(t, snapClient, o)
			}
			if (lerr == nil) != (serr == nil) {
				t.Errorf("%s: verdicts differ:\n endpoint: %v\n snapshot: %v", d.Source, lerr, serr)
				continue
			}
			if lerr != nil {
				l, s := codes(lerr.Error()), codes(serr.Error())
				if len(l) == 0 {
					t.Errorf("%s: a denial without codes: %v", d.Source, lerr)
				}
				if !reflect.DeepEqual(l, s) {
					t.Errorf("%s: denial codes differ:\n endpoint: %q\n snapshot: %q", d.Source, l, s)
				}
			}
			if l, s := codes(strings.Join(lw, "\n")), codes(strings.Join(sw, "\n")); !reflect.DeepEqual(l, s) {
				t.Errorf("%s: warning codes differ:\n endpoint: %q\n snapshot: %q", d.Source, lw, sw)
			}
		}
	}
}

// codeRef finds "field: [Code]" (denials) and "[Code] field" (warnings).
var codeRef = regexp.MustCompile(`(spec[A-Za-z.]*): \[([A-Za-z0-9]+)\]|\[([A-Za-z0-9]+)\] (spec[A-Za-z.]*):`)

// codes lists the field/code pairs in text, sorted.
func codes(text string) []string {
	var out []string
	for _, m := range codeRef.FindAllStringSubmatch(text, -1) {
		if m[1] != "" {
			out = append(out, m[1]+" "+m[2])
		} else {
			out = append(out, m[4]+" "+m[3])
		}
	}
	sort.Strings(out)
	return out
}
