package envtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// karpenterFinalizer is the finalizer Karpenter puts on its node classes.
const karpenterFinalizer = "karpenter.k8s.aws/termination"

// TestClassesThatWouldNowBeDenied is the day-two story: node classes
// created before nodeclass-guard was installed, whose node role has since
// been deleted from IAM. A new write of their role is denied, and so is a
// NodePool naming one (NodeClassInvalid); but Karpenter and people must
// still be able to label them, write their status, change other fields and,
// above all, remove the finalizer so that they can be deleted.
//
// It runs twice: with deploy/base's webhook configuration, whose
// matchConditions keep those requests away from the webhook (checked on
// controller-runtime's request counter), and with the matchConditions
// removed, so that the binary's own answers are tested (a configuration
// without them, an older API server).
func TestClassesThatWouldNowBeDenied(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)

	// Objects from before the webhook: unregister it, create, re-register.
	legacy := map[string]*unstructured.Unstructured{}
	for _, variant := range []string{"shipped", "no-match-conditions"} {
		o := ec2NodeClass("legacy-"+variant, role("KarpenterNodeRole-deleted"))
		o.SetFinalizers([]string{karpenterFinalizer})
		legacy[variant+"/ec2"] = o
		n := eksNodeClass("legacy-"+variant, role("EKSNodeRole-deleted"))
		n.SetFinalizers([]string{"eks.amazonaws.com/termination"})
		legacy[variant+"/eks"] = n
	}
	if err := e.UnregisterWebhook(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reregister(t, e) })
	for _, o := range legacy {
		if _, err := create(ctx, c, o); err != nil {
			t.Fatalf("creating %s without the webhook: %v", o.GetName(), err)
		}
		deleteAtEnd(t, c, o)
	}

	variants := []struct {
		name  string
		edits []func(*admissionregistrationv1.ValidatingWebhookConfiguration)
	}{
		{name: "shipped"},
		{name: "no-match-conditions", edits: []func(*admissionregistrationv1.ValidatingWebhookConfiguration){dropMatchConditions}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if err := e.RegisterWebhook(ctx, v.edits...); err != nil {
				t.Fatal(err)
			}
			for _, kind := range []string{"ec2", "eks"} {
				o := legacy[v.name+"/"+kind]
				group := groupEC2NodeClass
				if kind == "eks" {
					group = groupEKS
				}
				t.Run(kind, func(t *testing.T) {
					dayTwo(ctx, t, e, c, o, group, len(v.edits) > 0)
				})
			}
		})
	}
}

// dayTwo runs the story on one pre-existing class. reaches says whether
// updates that leave the role alone reach the webhook (no matchConditions)
// or are settled by the API server.
func dayTwo(ctx context.Context, t *testing.T, e *framework.Env, c *framework.Client, o *unstructured.Unstructured, group string, reaches bool) {
	path := webhookPath(t, e, group)
	// expectCalls checks the webhook's request count moved as it should.
	expectCalls := func(t *testing.T, before float64, want bool) {
		t.Helper()
		after := webhookRequests(t, e, path)
		if got := after > before; got != want {
			t.Errorf("webhook %s called: %v (requests %v -> %v), want %v", path, got, before, after, want)
		}
	}
	t.Run("role write still denied", func(t *testing.T) {
		cur := get(ctx, t, c, o)
		if err := setNested(cur, "KarpenterNodeRole-deleted-too", "spec", "role"); err != nil {
			t.Fatal(err)
		}
		_, err := update(ctx, c, cur)
		requireDenied(t, e, group, err, "spec.role: RoleNotFound")
	})

	t.Run("label update admitted", func(t *testing.T) {
		cur := get(ctx, t, c, o)
		labels := cur.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels["team"] = "platform"
		cur.SetLabels(labels)
		before := webhookRequests(t, e, path)
		warnings, err := update(ctx, c, cur)
		requireAllowed(t, err, "label update")
		requireWarnings(t, warnings, nil)
		expectCalls(t, before, reaches)
	})

	t.Run("status update admitted", func(t *testing.T) {
		cur := get(ctx, t, c, o)
		status := map[string]any{"conditions": []any{map[string]any{
			"type": "Ready", "status": "False", "reason": "RoleNotFound",
			"message": "node role not found", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}}
		if group == groupEC2NodeClass {
			status["instanceProfile"] = "legacy-profile"
		}
		cur.Object["status"] = status
		before := webhookRequests(t, e, path)
		c.TakeWarnings()
		err := c.Status().Update(ctx, cur)
		requireAllowed(t, err, "status update")
		requireWarnings(t, c.TakeWarnings(), nil)
		// The rules name the resource, not its status subresource.
		expectCalls(t, before, false)
	})

	t.Run("other spec field update admitted", func(t *testing.T) {
		cur := get(ctx, t, c, o)
		// spec.tags are in Karpenter's (and EKS Auto Mode's) requests, so
		// they are checked (below), an EC2NodeClass's kubelet, userData
		// and blockDeviceMappings are what the node is given (node.go), and
		// both classes' selector terms are resolved (below); an
		// EC2NodeClass's detailedMonitoring and an EKS NodeClass's
		// networkPolicy are not read.
		field, set := "spec.networkPolicy", func() error {
			return unstructured.SetNestedField(cur.Object, "DefaultDeny", "spec", "networkPolicy")
		}
		if group == groupEC2NodeClass {
			field, set = "spec.detailedMonitoring", func() error { return unstructured.SetNestedField(cur.Object, true, "spec", "detailedMonitoring") }
		}
		if err := set(); err != nil {
			t.Fatal(err)
		}
		before := webhookRequests(t, e, path)
		_, err := update(ctx, c, cur)
		requireAllowed(t, err, field+" update")
		expectCalls(t, before, reaches)
	})

	if group == groupEKS {
		// An EKS NodeClass's selector terms are judged as an EC2NodeClass's:
		// an update changing them alone reaches the webhook and is judged
		// by the selector rules, never refused for the role it already had.
		t.Run("selector terms update judged by the selector rules", func(t *testing.T) {
			cur := get(ctx, t, c, o)
			if err := unstructured.SetNestedSlice(cur.Object, []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "day-two"}}}, "spec", "subnetSelectorTerms"); err != nil {
				t.Fatal(err)
			}
			before := webhookRequests(t, e, path)
			_, err := update(ctx, c, cur)
			requireDenied(t, e, group, err, "spec.subnetSelectorTerms: SelectorMatchesNothing")
			expectCalls(t, before, true)
			if err := unstructured.SetNestedSlice(cur.Object, []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}}, "spec", "subnetSelectorTerms"); err != nil {
				t.Fatal(err)
			}
			warnings, err := update(ctx, c, cur)
			requireAllowed(t, err, "spec.subnetSelectorTerms update")
			requireWarnings(t, warnings, nil, "RoleNotFound")
		})
	}

	{
		t.Run("spec.tags update admitted with what it breaks as a warning", func(t *testing.T) {
			cur := get(ctx, t, c, o)
			if err := unstructured.SetNestedStringMap(cur.Object, map[string]string{"cost-center": "42"}, "spec", "tags"); err != nil {
				t.Fatal(err)
			}
			before := webhookRequests(t, e, path)
			warnings, err := update(ctx, c, cur)
			requireAllowed(t, err, "spec.tags update")
			requireWarnings(t, warnings, []string{"[RoleNotFound] spec.role"})
			if !strings.Contains(strings.Join(warnings, "\n"), "[RoleNotFound] spec.role: (spec.tags update, not refused)") {
				t.Errorf("the warning does not say the update is not refused for it: %q", warnings)
			}
			expectCalls(t, before, true)
		})
	}

	if group == groupEC2NodeClass {
		t.Run("NodePool naming it denied", func(t *testing.T) {
			np := nodePool(o.GetName()+"-pool", groupEC2NodeClass, "EC2NodeClass", o.GetName())
			_, err := create(ctx, c, np)
			if err == nil {
				deleteAtEnd(t, c, np)
			}
			lines := requireDenied(t, e, groupNodePool, err, "spec.template.spec.nodeClassRef: NodeClassInvalid")
			if !framework.HasCode(lines[0], "RoleNotFound") {
				t.Errorf("NodeClassInvalid should carry the class's code RoleNotFound: %q", lines)
			}
		})
	}

	t.Run("finalizer removal and deletion admitted", func(t *testing.T) {
		cur := get(ctx, t, c, o)
		if err := c.Delete(ctx, cur); err != nil {
			t.Fatalf("delete: %v", err)
		}
		cur = get(ctx, t, c, o)
		if cur.GetDeletionTimestamp() == nil {
			t.Fatal("the finalizer should hold the object with a deletionTimestamp")
		}
		cur.SetFinalizers(nil)
		before := webhookRequests(t, e, path)
		_, err := update(ctx, c, cur)
		requireAllowed(t, err, "finalizer removal")
		expectCalls(t, before, reaches)
		if exists(ctx, t, c, o) {
			t.Error("still present after its finalizer was removed")
		}
	})
}

func dropMatchConditions(vwc *admissionregistrationv1.ValidatingWebhookConfiguration) {
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].MatchConditions = nil
	}
}

// reregister restores the shipped webhook configuration after a test that
// changed it, so that later tests see it.
func reregister(t *testing.T, e *framework.Env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.RegisterWebhook(ctx); err != nil {
		t.Errorf("restoring the webhook configuration: %v", err)
	}
}
