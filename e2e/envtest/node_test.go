package envtest_test

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// TestNodeCodes applies, through a real API server and Karpenter's real
// CRDs, the check fixture of each code about what the node is given
// (cmd/nodeclass-guard/testdata/codes: spec.kubelet, spec.userData, the
// KMS keys of encrypted volumes, asked of the local endpoint's KMS API by
// the real SDK client): the CRD stores each (spec.kubelet is free-form in
// 1.15), and the webhook answers with the code, a denial or a warning.
func TestNodeCodes(t *testing.T) {
	e := v1Env.Get(t)
	deny := []string{"KubeletConfigInvalid", "KubeletConfigUnsupported", "KubeletExpressionInvalid", "KubeletExpressionEvaluationFailed",
		"UserDataInvalid", "UserDataWrongFamily", "KMSKeyNotFound", "KMSKeyNotEnabled", "KMSKeyWrongRegion", "KMSKeyAccessDenied"}
	warn := []string{"KubeletExpressionsGated", "UserDataSetsKarpenterField", "UserDataFieldIgnored", "EBSDefaultKMSKey", "KMSChecksSkipped"}
	for _, code := range append(deny, warn...) {
		t.Run(code, func(t *testing.T) {
			ctx := testContext(t)
			c := newClient(t, e)
			docs, err := framework.ReadManifests(filepath.Join(e.Root, "cmd", "nodeclass-guard", "testdata", "codes", code+".yaml"))
			if err != nil || len(docs) != 1 {
				t.Fatalf("%s.yaml: %d documents, %v", code, len(docs), err)
			}
			warnings, err := create(ctx, c, docs[0].Object.DeepCopy(), client.DryRunAll)
			if strings.HasPrefix(code, "Kubelet") && code != "KubeletExpressionsGated" || strings.HasPrefix(code, "UserData") && !strings.Contains("UserDataSetsKarpenterField UserDataFieldIgnored", code) || strings.HasPrefix(code, "KMSKey") {
				requireDenied(t, e, groupEC2NodeClass, err, code)
				return
			}
			requireAllowed(t, err, code)
			found := false
			for _, w := range warnings {
				found = found || strings.HasPrefix(w, "["+code+"] ")
			}
			if !found {
				t.Errorf("warnings %q lack [%s]", warnings, code)
			}
		})
	}
}

// TestKubeletUpdate: an update that changes spec.kubelet alone is judged
// by the kubelet rules (the registration's matchConditions let it
// through only when they say so; here the webhook's own update filter).
func TestKubeletUpdate(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	docs := readExample(t, e, "good/ec2nodeclass.yaml")
	o := docs[0].Object.DeepCopy()
	o.SetName("kubelet-update")
	if _, err := create(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	deleteAtEnd(t, c, o)
	cur := get(ctx, t, c, o)
	if err := unstructured.SetNestedField(cur.Object, map[string]any{"maxPod": int64(110)}, "spec", "kubelet"); err != nil {
		t.Fatal(err)
	}
	_, err := update(ctx, c, cur)
	requireDenied(t, e, groupEC2NodeClass, err, "spec.kubelet.maxPod: KubeletConfigInvalid")
}
