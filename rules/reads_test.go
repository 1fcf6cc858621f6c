package rules

import (
	"os"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// jsonLeaves are the JSON paths of the fields of t, a struct, each
// prefixed by prefix; a field whose path is in stop is not descended.
func jsonLeaves(t reflect.Type, prefix string, stop map[string]bool, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !stop[p] {
			jsonLeaves(ft, p+".", stop, out)
			continue
		}
		*out = append(*out, p)
	}
}

// TestRulesReadOnlyDeclaredFields: every spec field of the typed objects
// the rules read (the types hold only what the rules read: decoding drops
// the rest) is declared in Reads. A rule that starts reading a new field
// adds it to the type, and this test fails until Reads names it, and with
// it the update filter, the audit, deploy/'s matchConditions and the
// README's table.
func TestRulesReadOnlyDeclaredFields(t *testing.T) {
	for kind, obj := range map[string]any{EC2NodeClassKind: EC2NodeClass{}, NodePoolKind: NodePool{}, NodeClassKind: NodeClass{}} {
		declared := map[string]bool{}
		for _, p := range Reads[kind] {
			declared[p] = true
		}
		var leaves []string
		spec, _ := reflect.TypeOf(obj).FieldByName("Spec")
		jsonLeaves(spec.Type, "spec.", declared, &leaves)
		for _, p := range leaves {
			if !declared[p] {
				t.Errorf("%s: the rules' type has %s, which Reads does not declare", kind, p)
			}
			delete(declared, p)
		}
		for p := range declared {
			t.Errorf("%s: Reads declares %s, which the rules' type does not have", kind, p)
		}
	}
}

// TestUnchangedFollowsReads: an update changing one declared field is a
// change; one changing metadata or status only is not.
func TestUnchangedFollowsReads(t *testing.T) {
	arm := []NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"arm64"}}}
	family := "AL2023"
	for _, c := range []struct {
		kind     string
		old, cur runtime.Object
		same     bool
	}{
		{NodePoolKind, nodePool("a", refEC2("c")), nodePool("a", refEC2("c")), true},
		{NodePoolKind, nodePool("a", refEC2("c")), nodePool("a", refEC2("d")), false},
		{NodePoolKind, nodePool("a", refEC2("c")), func() runtime.Object {
			np := nodePool("a", refEC2("c"))
			np.Spec.Template.Spec.Requirements = arm
			return np
		}(), false},
		{NodePoolKind, nodePool("a", refEC2("c")), func() runtime.Object {
			np := nodePool("a", refEC2("c"))
			np.Labels = map[string]string{"x": "y"}
			np.ResourceVersion = "2"
			return np
		}(), true},
		{EC2NodeClassKind, ec2Class("c", "R", ""), ec2Class("c", "S", ""), false},
		{EC2NodeClassKind, ec2Class("c", "R", ""), func() runtime.Object {
			nc := ec2Class("c", "R", "")
			nc.Spec.AMIFamily = &family
			return nc
		}(), false},
		{EC2NodeClassKind, ec2Class("c", "R", ""), func() runtime.Object {
			nc := ec2Class("c", "R", "")
			nc.Finalizers = []string{"karpenter.k8s.aws/termination"}
			nc.DeletionTimestamp = &metav1.Time{}
			return nc
		}(), true},
		{NodeClassKind, eksClass("c", "R", ""), func() runtime.Object {
			nc := eksClass("c", "R", "")
			nc.Spec.Tags = map[string]string{"team": "a"}
			return nc
		}(), false},
	} {
		if got := Unchanged(c.kind, c.old, c.cur); got != c.same {
			t.Errorf("%s: Unchanged = %v, want %v (changed: %v)", c.kind, got, c.same, ChangedPaths(c.kind, c.old, c.cur))
		}
	}
}

// readsTableLabels name each kind in the README's table.
var readsTableLabels = map[string]string{
	EC2NodeClassKind: "EC2NodeClass",
	NodePoolKind:     "NodePool",
	NodeClassKind:    "NodeClass (eks.amazonaws.com)",
}

// TestReadsTableInREADME: the README's table of the fields the rules read
// is Reads, row for row.
func TestReadsTableInREADME(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, kind := range ReadKinds {
		paths := make([]string, len(Reads[kind]))
		for i, p := range Reads[kind] {
			paths[i] = "`" + p + "`"
		}
		row := "| " + readsTableLabels[kind] + " | " + strings.Join(paths, ", ") + " |"
		if !strings.Contains(readme, "\n"+row+"\n") {
			t.Errorf("README.md lacks the row\n%s", row)
		}
	}
}
