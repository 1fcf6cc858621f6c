package nodeconfig

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FuzzUserData: whatever userData and family, UserData answers with
// findings, never a panic or a hang.
func FuzzUserData(f *testing.F) {
	for _, s := range []string{mimeAL2023, "#!/bin/bash\n/etc/eks/bootstrap.sh x\n", "[settings.kubernetes]\nmax-pods = 1\n",
		"apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec: {cluster: {name: x}}\n", "<powershell>\n", "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\n"} {
		f.Add(s, FamilyAL2023)
		f.Add(s, FamilyAL2)
		f.Add(s, FamilyBottlerocket)
		f.Add(s, FamilyWindows2022)
	}
	f.Fuzz(func(t *testing.T, data, family string) {
		for _, fd := range UserData(field.NewPath("spec", "userData"), data, family) {
			if fd.Message == "" || fd.Check == "" {
				t.Fatalf("empty finding %+v", fd)
			}
		}
	})
}

// FuzzKubelet: whatever JSON object spec.kubelet holds, Kubelet answers
// with findings, never a panic.
func FuzzKubelet(f *testing.F) {
	for _, s := range []string{`{"maxPod": 1}`, `{"maxPods": "vcpus / 0"}`, `{"evictionHard": "1"}`, `{"authentication": {"webhook": {"enabled": "x"}}}`,
		`{"kubeReserved": {"cpu": "max(vcpus, 1.5)"}}`, `{"featureGates": {"A": 1}}`} {
		f.Add(s, FamilyAL2)
		f.Add(s, FamilyAL2023)
	}
	f.Fuzz(func(t *testing.T, doc, family string) {
		var kc map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &kc) != nil {
			return
		}
		for _, fd := range Kubelet(field.NewPath("spec", "kubelet"), kc, family) {
			if fd.Message == "" || fd.Path == nil {
				t.Fatalf("empty finding %+v", fd)
			}
		}
	})
}
