package rules

import (
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Reads declares, for each kind, the object fields the rules read, as
// paths from the object's root. It is the one source of "which fields the
// rules read": the admission's update filter and the audit's change
// detection (Unchanged), the registration's matchConditions
// (ChangedCondition, held against deploy/ by its tests), and the README's
// table (held against it by TestReadsTableInREADME). A rule that reads a
// field not listed here fails TestRulesReadOnlyDeclaredFields.
//
// metadata.name and metadata.uid are read too (launch tags, the NodePools
// and NodeClaims of a class) but never change on an update, so they are
// not listed.
var Reads = map[string][]string{
	EC2NodeClassKind: {
		"spec.role", "spec.instanceProfile", "spec.tags", "spec.amiFamily",
		"spec.subnetSelectorTerms", "spec.securityGroupSelectorTerms",
		"spec.amiSelectorTerms", "spec.capacityReservationSelectorTerms",
		// What the node is given (node.go): kubelet, userData, the
		// volumes' KMS keys.
		"spec.kubelet", "spec.userData", "spec.blockDeviceMappings",
	},
	// The class a NodePool names, and its requirements: the architectures
	// the class's images must fit and whether spot is launched.
	NodePoolKind: {"spec.template.spec.nodeClassRef", "spec.template.spec.requirements"},
	// The Auto Mode tag check reads spec.tags; a tags-only update is
	// judged with warnings only (CheckNodeClassUpdate). The selector
	// rules read the node's and the pods' selector terms.
	NodeClassKind: {"spec.role", "spec.instanceProfile", "spec.tags",
		"spec.subnetSelectorTerms", "spec.securityGroupSelectorTerms",
		"spec.podSubnetSelectorTerms", "spec.podSecurityGroupSelectorTerms"},
}

// ReadKinds are the kinds of Reads, in the order the README lists them.
var ReadKinds = []string{EC2NodeClassKind, NodePoolKind, NodeClassKind}

// Unchanged reports whether an update of an object of kind leaves every
// field the rules read (Reads) as it was. An object that cannot be read
// counts as changed: it is checked.
func Unchanged(kind string, old, cur runtime.Object) bool {
	paths, ok := Reads[kind]
	if !ok {
		return false
	}
	o, err := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	if err != nil {
		return false
	}
	n, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cur)
	if err != nil {
		return false
	}
	for _, p := range paths {
		if !reflect.DeepEqual(fieldAt(o, p), fieldAt(n, p)) {
			return false
		}
	}
	return true
}

// ChangedPaths are the declared fields of kind whose values differ
// between old and cur, in Reads' order; nil when none (or the objects
// cannot be read: then every declared path).
func ChangedPaths(kind string, old, cur runtime.Object) []string {
	o, err1 := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	n, err2 := runtime.DefaultUnstructuredConverter.ToUnstructured(cur)
	if err1 != nil || err2 != nil {
		return Reads[kind]
	}
	var out []string
	for _, p := range Reads[kind] {
		if !reflect.DeepEqual(fieldAt(o, p), fieldAt(n, p)) {
			out = append(out, p)
		}
	}
	return out
}

// fieldAt is the value at a dotted path of an unstructured object, nil
// when absent.
func fieldAt(obj map[string]any, path string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, strings.Split(path, ".")...)
	return v
}

// ChangedCondition is the CEL matchCondition expression under which the API
// server sends an admission of kind: a CREATE, or an UPDATE changing a
// field the rules read.
func ChangedCondition(kind string) string {
	parts := []string{"request.operation == 'CREATE'"}
	for _, p := range Reads[kind] {
		sel := ".?" + strings.ReplaceAll(p, ".", ".?")
		parts = append(parts, "object"+sel+" != oldObject"+sel)
	}
	return strings.Join(parts, " || ")
}
