package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/nodeconfig"
)

// nodeChecksCost measures, in this process, what the rules on what the
// node is given (spec.kubelet and spec.userData, pure) add to one class:
// microseconds per class with a 1.15 kubelet map holding an expression
// and an AL2023 MIME userData. The KMS rule's cost is in calls, not CPU:
// at most 3 KMS calls (DescribeKey, GetKeyPolicy, ListGrants) per distinct
// key and 5 IAM questions per key, cached like every other answer; the
// classes of the warm and cold scenarios name no key, so their figures
// are unchanged by it.
func nodeChecksCost() string {
	var kc map[string]json.RawMessage
	_ = json.Unmarshal([]byte(`{"maxPods": "min(max_pods, 110)", "evictionHard": {"memory.available": "5%"}, "kubeReserved": {"cpu": "100m"},
		"shutdownGracePeriod": "30s", "imageGCHighThresholdPercent": 85, "imageGCLowThresholdPercent": 80}`), &kc)
	userData := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: application/node.eks.aws\n\n" +
		"apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags:\n      - --node-labels=team=a\n\n" +
		"--B\nContent-Type: text/x-shellscript\n\n#!/bin/bash\necho hello\n\n--B--\n"
	kubelet, ud := field.NewPath("spec", "kubelet"), field.NewPath("spec", "userData")
	r := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			nodeconfig.Kubelet(kubelet, kc, nodeconfig.FamilyAL2023)
			nodeconfig.UserData(ud, userData, nodeconfig.FamilyAL2023)
		}
	})
	if r.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(r.NsPerOp())/1000)
}
