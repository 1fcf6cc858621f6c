package deploy

import (
	"context"
	"os"
	"strings"
	"testing"

	celtypes "github.com/google/cel-go/common/types"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	admissioncel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// These tests run the base's matchConditions through the API server's own
// CEL compiler and evaluator (k8s.io/apiserver, as kube-apiserver calls
// them for a webhook), on the requests the contract names. They matter more
// than their size: with failurePolicy Ignore, a condition that errors makes
// the API server skip the webhook silently, so every case also asserts that
// no condition errors. The chart's conditions are held equal to these by
// TestChartMatchesBase.

func loadBaseWebhooks(t *testing.T) map[string]admissionregistrationv1.ValidatingWebhook {
	t.Helper()
	data, err := os.ReadFile("base/validatingwebhookconfiguration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &vwc); err != nil {
		t.Fatalf("base/validatingwebhookconfiguration.yaml: %v", err)
	}
	byPath := map[string]admissionregistrationv1.ValidatingWebhook{}
	for _, h := range vwc.Webhooks {
		if h.ClientConfig.Service == nil || h.ClientConfig.Service.Path == nil {
			t.Fatalf("webhook %s has no service path", h.Name)
		}
		byPath[*h.ClientConfig.Service.Path] = h
	}
	return byPath
}

// compileConditions compiles a webhook's matchConditions as the API server
// does: strictly when the configuration is written (NewExpressions), and
// for evaluation as stored (StoredExpressions).
func compileConditions(t *testing.T, h admissionregistrationv1.ValidatingWebhook) admissioncel.ConditionEvaluator {
	t.Helper()
	accessors := make([]admissioncel.ExpressionAccessor, len(h.MatchConditions))
	for i, c := range h.MatchConditions {
		accessors[i] = &matchconditions.MatchCondition{Name: c.Name, Expression: c.Expression}
	}
	compiler := admissioncel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	decls := admissioncel.OptionalVariableDeclarations{HasAuthorizer: true}
	for _, mode := range []environment.Type{environment.NewExpressions, environment.StoredExpressions} {
		if errs := compiler.CompileCondition(accessors, decls, mode).CompilationErrors(); len(errs) > 0 {
			t.Fatalf("webhook %s: matchConditions do not compile (%s): %v", h.Name, mode, errs)
		}
	}
	return compiler.CompileCondition(accessors, decls, environment.StoredExpressions)
}

// matchCase is one admission request and whether the webhook must see it.
type matchCase struct {
	name      string
	op        admission.Operation
	object    map[string]any
	oldObject map[string]any // nil on CREATE
	want      bool
}

// evaluate runs the conditions on one request. It fails the test when a
// condition errors, and returns whether the API server would call the
// webhook (every condition true).
func evaluate(t *testing.T, h admissionregistrationv1.ValidatingWebhook, eval admissioncel.ConditionEvaluator, gvk schema.GroupVersionKind, resource string, c matchCase) bool {
	t.Helper()
	obj := &unstructured.Unstructured{Object: c.object}
	obj.SetGroupVersionKind(gvk)
	var old *unstructured.Unstructured
	if c.oldObject != nil {
		old = &unstructured.Unstructured{Object: c.oldObject}
		old.SetGroupVersionKind(gvk)
	}
	gvr := gvk.GroupVersion().WithResource(resource)
	var attr admission.Attributes
	if old == nil {
		attr = admission.NewAttributesRecord(obj, nil, gvk, "", obj.GetName(), gvr, "", c.op, &metav1.CreateOptions{}, false, &user.DefaultInfo{Name: "gitops"})
	} else {
		attr = admission.NewAttributesRecord(obj, old, gvk, "", obj.GetName(), gvr, "", c.op, &metav1.UpdateOptions{}, false, &user.DefaultInfo{Name: "gitops"})
	}
	versioned, err := admission.NewVersionedAttributes(attr, gvk, nil)
	if err != nil {
		t.Fatal(err)
	}
	request := admissioncel.CreateAdmissionRequest(attr, metav1.GroupVersionResource(gvr), metav1.GroupVersionKind(gvk))
	results, _, err := eval.ForInput(context.Background(), versioned, request, admissioncel.OptionalVariableBindings{}, nil, celconfig.RuntimeCELCostBudgetMatchConditions)
	if err != nil {
		t.Fatalf("%s: evaluating the matchConditions: %v", c.name, err)
	}
	matches := true
	for i, r := range results {
		name := h.MatchConditions[i].Name
		if r.Error != nil {
			t.Errorf("%s: matchCondition %s errors (with failurePolicy Ignore the webhook would be skipped): %v", c.name, name, r.Error)
			matches = false
			continue
		}
		switch r.EvalResult {
		case celtypes.True:
		case celtypes.False:
			matches = false
		default:
			t.Errorf("%s: matchCondition %s returned %v, not a bool", c.name, name, r.EvalResult)
		}
	}
	return matches
}

func runMatchCases(t *testing.T, path string, gvk schema.GroupVersionKind, resource string, cases []matchCase) {
	t.Helper()
	h, ok := loadBaseWebhooks(t)[path]
	if !ok {
		t.Fatalf("no webhook on %s", path)
	}
	eval := compileConditions(t, h)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := evaluate(t, h, eval, gvk, resource, c); got != c.want {
				t.Errorf("webhook %s called = %v, want %v", h.Name, got, c.want)
			}
		})
	}
}

// obj builds an object with metadata and the given top-level fields.
func obj(name string, fields map[string]any) map[string]any {
	o := map[string]any{"metadata": map[string]any{"name": name, "generation": int64(1)}}
	for k, v := range fields {
		o[k] = v
	}
	return o
}

// deleting marks an object as being deleted, as when a finalizer is removed.
func deleting(o map[string]any) map[string]any {
	meta := o["metadata"].(map[string]any)
	meta["deletionTimestamp"] = "2026-01-02T03:04:05Z"
	meta["finalizers"] = []any{}
	return o
}

func withLabels(o map[string]any) map[string]any {
	o["metadata"].(map[string]any)["labels"] = map[string]any{"team": "platform"}
	return o
}

// classMatchCases are the node classes' cases; ec2 adds what only an
// EC2NodeClass's condition sends (amiFamily and the AMI and capacity
// reservation terms, for the selector rules and the update guard), and
// drops what only an EKS NodeClass's sends (its pods' selector terms).
// spec.tags and the subnet and security group terms are sent for both:
// Karpenter's requests and EKS Auto Mode's carry the tags, and both
// classes' selector terms are judged.
func classMatchCases(ec2 bool) []matchCase {
	spec := func(fields map[string]any) map[string]any {
		s := map[string]any{"amiSelectorTerms": []any{map[string]any{"alias": "al2023@latest"}}}
		for k, v := range fields {
			s[k] = v
		}
		return map[string]any{"spec": s}
	}
	role := func(r string) map[string]any { return spec(map[string]any{"role": r}) }
	return []matchCase{
		{"create", admission.Create, obj("default", role("KarpenterNodeRole")), nil, true},
		{"create without spec", admission.Create, obj("default", nil), nil, true},
		{"role changed", admission.Update, obj("default", role("NewRole")), obj("default", role("KarpenterNodeRole")), true},
		{"role to instanceProfile", admission.Update,
			obj("default", spec(map[string]any{"instanceProfile": "KarpenterNodeProfile"})), obj("default", role("KarpenterNodeRole")), true},
		{"instanceProfile changed", admission.Update,
			obj("default", spec(map[string]any{"instanceProfile": "B"})), obj("default", spec(map[string]any{"instanceProfile": "A"})), true},
		{"role added to a spec without one", admission.Update, obj("default", role("KarpenterNodeRole")), obj("default", spec(nil)), true},
		{"role set to empty", admission.Update, obj("default", role("")), obj("default", role("KarpenterNodeRole")), true},
		{"spec added", admission.Update, obj("default", role("KarpenterNodeRole")), obj("default", nil), true},
		{"amiFamily changed", admission.Update,
			obj("default", spec(map[string]any{"role": "KarpenterNodeRole", "amiFamily": "Bottlerocket"})), obj("default", role("KarpenterNodeRole")), ec2},
		{"subnet term changed", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "subnetSelectorTerms": []any{map[string]any{"tags": map[string]any{"k": "dmeo"}}}})),
			obj("default", spec(map[string]any{"role": "R", "subnetSelectorTerms": []any{map[string]any{"tags": map[string]any{"k": "demo"}}}})), true},
		{"security group terms added", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "securityGroupSelectorTerms": []any{map[string]any{"id": "sg-1"}}})), obj("default", role("R")), true},
		// An EKS Auto Mode NodeClass's pod lists; an EC2NodeClass has none.
		{"pod subnet term changed", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "podSubnetSelectorTerms": []any{map[string]any{"tags": map[string]any{"k": "pods"}}}})),
			obj("default", spec(map[string]any{"role": "R", "podSubnetSelectorTerms": []any{map[string]any{"tags": map[string]any{"k": "pod"}}}})), !ec2},
		{"pod security group terms added", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "podSecurityGroupSelectorTerms": []any{map[string]any{"id": "sg-1"}}})), obj("default", role("R")), !ec2},
		{"ami term changed", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "amiSelectorTerms": []any{map[string]any{"alias": "al2023@v20250101"}}})), obj("default", role("R")), ec2},
		{"capacity reservation terms removed", admission.Update,
			obj("default", role("R")), obj("default", spec(map[string]any{"role": "R", "capacityReservationSelectorTerms": []any{map[string]any{"id": "cr-1"}}})), ec2},
		{"tags changed", admission.Update,
			obj("default", spec(map[string]any{"role": "KarpenterNodeRole", "tags": map[string]any{"team": "a"}})), obj("default", role("KarpenterNodeRole")), true},
		{"kubelet changed", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "kubelet": map[string]any{"maxPod": int64(110)}})), obj("default", role("R")), ec2},
		{"userData changed", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "userData": "echo hi"})), obj("default", role("R")), ec2},
		{"blockDeviceMappings changed", admission.Update,
			obj("default", spec(map[string]any{"role": "R", "blockDeviceMappings": []any{map[string]any{"ebs": map[string]any{"kmsKeyID": "alias/x"}}}})), obj("default", role("R")), ec2},
		{"other spec field changed", admission.Update,
			obj("default", spec(map[string]any{"role": "KarpenterNodeRole", "detailedMonitoring": true})), obj("default", role("KarpenterNodeRole")), false},
		{"labels changed", admission.Update, withLabels(obj("default", role("KarpenterNodeRole"))), obj("default", role("KarpenterNodeRole")), false},
		{"status changed", admission.Update,
			obj("default", map[string]any{"spec": role("R")["spec"], "status": map[string]any{"instanceProfile": "default_123"}}), obj("default", role("R")), false},
		{"no spec before or after", admission.Update, withLabels(obj("default", nil)), obj("default", nil), false},
		{"finalizer removed while deleting", admission.Update, deleting(obj("default", role("R"))), obj("default", role("R")), false},
		{"role changed while deleting", admission.Update, deleting(obj("default", role("New"))), obj("default", role("R")), false},
	}
}

func TestEC2NodeClassMatchConditions(t *testing.T) {
	for _, version := range []string{"v1", "v1beta1"} {
		t.Run(version, func(t *testing.T) {
			runMatchCases(t, pathEC2NodeClass, schema.GroupVersionKind{Group: "karpenter.k8s.aws", Version: version, Kind: "EC2NodeClass"}, "ec2nodeclasses", classMatchCases(true))
		})
	}
}

func TestEKSNodeClassMatchConditions(t *testing.T) {
	runMatchCases(t, pathEKSNodeClass, schema.GroupVersionKind{Group: "eks.amazonaws.com", Version: "v1", Kind: "NodeClass"}, "nodeclasses", classMatchCases(false))
}

func TestNodePoolMatchConditions(t *testing.T) {
	pool := func(ref map[string]any, extra map[string]any) map[string]any {
		podSpec := map[string]any{"requirements": []any{}}
		if ref != nil {
			podSpec["nodeClassRef"] = ref
		}
		for k, v := range extra {
			podSpec[k] = v
		}
		return map[string]any{"spec": map[string]any{
			"template": map[string]any{"spec": podSpec},
			"limits":   map[string]any{"cpu": "1000"},
		}}
	}
	v1Ref := func(name string) map[string]any {
		return map[string]any{"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name}
	}
	v1beta1Ref := func(name string) map[string]any {
		return map[string]any{"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "name": name}
	}
	withLimits := func(o map[string]any) map[string]any {
		o["spec"].(map[string]any)["limits"] = map[string]any{"cpu": "2000"}
		return o
	}
	cases := func(ref func(string) map[string]any) []matchCase {
		return []matchCase{
			{"create", admission.Create, obj("general", pool(ref("default"), nil)), nil, true},
			{"create without spec", admission.Create, obj("general", nil), nil, true},
			{"class name changed", admission.Update, obj("general", pool(ref("gpu"), nil)), obj("general", pool(ref("default"), nil)), true},
			{"class group changed", admission.Update,
				obj("general", pool(map[string]any{"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}, nil)), obj("general", pool(ref("default"), nil)), true},
			{"nodeClassRef added", admission.Update, obj("general", pool(ref("default"), nil)), obj("general", pool(nil, nil)), true},
			{"template added", admission.Update, obj("general", pool(ref("default"), nil)), obj("general", map[string]any{"spec": map[string]any{}}), true},
			{"requirements changed", admission.Update,
				obj("general", pool(ref("default"), map[string]any{"requirements": []any{map[string]any{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []any{"spot"}}}})),
				obj("general", pool(ref("default"), nil)), true},
			{"limits changed", admission.Update, withLimits(obj("general", pool(ref("default"), nil))), obj("general", pool(ref("default"), nil)), false},
			{"labels changed", admission.Update, withLabels(obj("general", pool(ref("default"), nil))), obj("general", pool(ref("default"), nil)), false},
			{"no template before or after", admission.Update, withLabels(obj("general", map[string]any{"spec": map[string]any{}})), obj("general", map[string]any{"spec": map[string]any{}}), false},
			{"finalizer removed while deleting", admission.Update, deleting(obj("general", pool(ref("default"), nil))), obj("general", pool(ref("default"), nil)), false},
			{"class changed while deleting", admission.Update, deleting(obj("general", pool(ref("gpu"), nil))), obj("general", pool(ref("default"), nil)), false},
		}
	}
	t.Run("v1", func(t *testing.T) {
		runMatchCases(t, pathNodePool, schema.GroupVersionKind{Group: "karpenter.sh", Version: "v1", Kind: "NodePool"}, "nodepools", cases(v1Ref))
	})
	t.Run("v1beta1", func(t *testing.T) {
		runMatchCases(t, pathNodePool, schema.GroupVersionKind{Group: "karpenter.sh", Version: "v1beta1", Kind: "NodePool"}, "nodepools", cases(v1beta1Ref))
	})
}

// TestMatchConditionsFollowRules: each webhook's "create or changed"
// condition is the one rules.ChangedCondition derives from rules.Reads,
// the fields the rules declare they read (the chart's are held equal to
// the base's by TestChartMatchesBase).
func TestMatchConditionsFollowRules(t *testing.T) {
	hooks := loadBaseWebhooks(t)
	for path, kind := range map[string]string{pathEC2NodeClass: rules.EC2NodeClassKind, pathNodePool: rules.NodePoolKind, pathEKSNodeClass: rules.NodeClassKind} {
		h, ok := hooks[path]
		if !ok {
			t.Fatalf("no webhook for %s", path)
		}
		want := rules.ChangedCondition(kind)
		found := false
		for _, c := range h.MatchConditions {
			if !strings.HasPrefix(c.Name, "create-or-") {
				continue
			}
			found = true
			if got := strings.Join(strings.Fields(c.Expression), " "); got != want {
				t.Errorf("%s: matchCondition %s is\n  %s\nwant (from rules.Reads)\n  %s", path, c.Name, got, want)
			}
		}
		if !found {
			t.Errorf("%s: no create-or-... matchCondition", path)
		}
	}
}
