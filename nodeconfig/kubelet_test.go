package nodeconfig

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func kubeletMap(t *testing.T, doc string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKubelet(t *testing.T) {
	for _, tc := range []struct {
		name, family, doc string
		want              []string // "Check path substring-of-message"; none: admitted
	}{
		{name: "valid AL2023 map", family: FamilyAL2023, doc: `{"maxPods": 110, "clusterDNS": ["10.100.0.10"], "evictionHard": {"memory.available": "5%", "nodefs.available": "10%"},
			"evictionSoft": {"memory.available": "500Mi"}, "evictionSoftGracePeriod": {"memory.available": "1m"}, "kubeReserved": {"cpu": "100m", "memory": "512Mi"},
			"imageGCHighThresholdPercent": 85, "imageGCLowThresholdPercent": 80, "cpuCFSQuota": true, "shutdownGracePeriod": "30s", "containerLogMaxSize": "50Mi",
			"authentication": {"webhook": {"enabled": true}}, "featureGates": {"InPlacePodVerticalScaling": true}}`},
		{name: "valid AL2 managed fields", family: FamilyAL2, doc: `{"maxPods": 58, "podsPerCore": 2, "systemReserved": {"cpu": "100m"}}`},
		{name: "valid expressions", family: FamilyAL2023, doc: `{"maxPods": "min(max_pods, 110)", "kubeReserved": {"cpu": "vcpus * 10 + 60", "memory": "255 + 11 * max_pods"}}`,
			want: []string{"KubeletExpressionsGated spec.kubelet.maxPods NodeClassCEL"}},
		{name: "typo", family: FamilyAL2023, doc: `{"maxPod": 110}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.maxPod Did you mean "maxPods"?`}},
		{name: "case", family: FamilyAL2023, doc: `{"MaxPods": 110}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.MaxPods Did you mean "maxPods"?`}},
		{name: "nested typo", family: FamilyAL2023, doc: `{"authentication": {"webhook": {"enabeld": true}}}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.authentication.webhook.enabeld Did you mean "enabled"?`}},
		{name: "string for map", family: FamilyAL2023, doc: `{"evictionHard": "100Mi"}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.evictionHard is a string ("100Mi")`}},
		{name: "string for int", family: FamilyAL2023, doc: `{"podsPerCore": "2"}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.podsPerCore an integer`}},
		{name: "nested wrong type", family: FamilyAL2023, doc: `{"authentication": {"webhook": {"enabled": "yes"}}}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.authentication.webhook.enabled true or false`}},
		{name: "bad duration", family: FamilyAL2023, doc: `{"shutdownGracePeriod": "30 seconds"}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.shutdownGracePeriod does not decode`}},
		{name: "owned field", family: FamilyAL2023, doc: `{"registerWithTaints": []}`,
			want: []string{"KubeletConfigInvalid spec.kubelet.registerWithTaints NodePool"}},
		{name: "signal", family: FamilyAL2023, doc: `{"evictionHard": {"memory.availabe": "5%"}}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.evictionHard[memory.availabe] Did you mean "memory.available"?`}},
		{name: "threshold", family: FamilyAL2023, doc: `{"evictionHard": {"memory.available": "150%"}}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.evictionHard[memory.available] percentage`}},
		{name: "soft without grace", family: FamilyAL2023, doc: `{"evictionSoft": {"memory.available": "1Gi"}}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.evictionSoft[memory.available] evictionSoftGracePeriod`}},
		{name: "gc inverted", family: FamilyAL2023, doc: `{"imageGCHighThresholdPercent": 50, "imageGCLowThresholdPercent": 60}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.imageGCHighThresholdPercent greater`}},
		{name: "reserved resource", family: FamilyAL2023, doc: `{"systemReserved": {"memroy": "1Gi"}}`,
			want: []string{`KubeletConfigInvalid spec.kubelet.systemReserved[memroy] Did you mean "memory"?`}},
		{name: "unsupported on AL2", family: FamilyAL2, doc: `{"shutdownGracePeriod": "30s", "maxPods": 20}`,
			want: []string{"KubeletConfigUnsupported spec.kubelet.shutdownGracePeriod AL2 AMI family"}},
		{name: "podsPerCore on Bottlerocket", family: FamilyBottlerocket, doc: `{"podsPerCore": 2}`,
			want: []string{"KubeletConfigUnsupported spec.kubelet.podsPerCore Bottlerocket"}},
		{name: "two DNS on Windows", family: FamilyWindows2022, doc: `{"clusterDNS": ["10.0.0.10", "10.0.0.11"]}`,
			want: []string{"KubeletConfigUnsupported spec.kubelet.clusterDNS single"}},
		{name: "custom exempt", family: FamilyCustom, doc: `{"shutdownGracePeriod": "30s"}`},
		{name: "expression does not compile", family: FamilyAL2023, doc: `{"maxPods": "vcpu * 2"}`,
			want: []string{"KubeletExpressionInvalid spec.kubelet.maxPods undeclared", "KubeletExpressionsGated"}},
		{name: "expression wrong type", family: FamilyAL2023, doc: `{"maxPods": "instance_type"}`,
			want: []string{"KubeletExpressionInvalid spec.kubelet.maxPods int or a double", "KubeletExpressionsGated"}},
		{name: "expression negative", family: FamilyAL2023, doc: `{"maxPods": "max_pods - 10"}`,
			want: []string{"KubeletExpressionEvaluationFailed spec.kubelet.maxPods t3.nano", "KubeletExpressionsGated"}},
		{name: "expression divides by zero", family: FamilyAL2023, doc: `{"kubeReserved": {"cpu": "100 / (vcpus - 2)"}}`,
			want: []string{"KubeletExpressionEvaluationFailed spec.kubelet.kubeReserved[cpu] division by zero", "KubeletExpressionsGated"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Kubelet(field.NewPath("spec", "kubelet"), kubeletMap(t, tc.doc), tc.family)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				parts := strings.SplitN(w, " ", 3)
				f := got[i]
				if string(f.Check) != parts[0] && !strings.HasPrefix(string(f.Check), parts[0]) {
					t.Errorf("finding %d: check %s, want %s (%s)", i, f.Check, parts[0], f.Message)
				}
				if len(parts) > 1 && f.Path.String() != parts[1] {
					t.Errorf("finding %d: path %s, want %s", i, f.Path, parts[1])
				}
				if len(parts) > 2 && !strings.Contains(f.Message, parts[2]) {
					t.Errorf("finding %d: message %q lacks %q", i, f.Message, parts[2])
				}
			}
		})
	}
}
