package rules

import (
	"testing"
)

// BenchmarkCheckNodeConfig is the cost the kubelet and userData rules add
// to a class (pure: no AWS question): a 1.15 kubelet map with an
// expression and an AL2023 MIME userData with a NodeConfig and a script.
func BenchmarkCheckNodeConfig(b *testing.B) {
	c := NewChecker(Config{})
	nc := nodeClass(`{"maxPods": "min(max_pods, 110)", "evictionHard": {"memory.available": "5%"}, "kubeReserved": {"cpu": "100m"},
		"shutdownGracePeriod": "30s", "imageGCHighThresholdPercent": 85, "imageGCLowThresholdPercent": 80}`, benchUserData)
	o := c.ec2Object(nc, nil, false, false, true, nil)
	b.ReportAllocs()
	for b.Loop() {
		var v Verdict
		kubeletRule.Judge(c, o, Answers{}, &v)
		userDataRule.Judge(c, o, Answers{}, &v)
	}
}

const benchUserData = `MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="BOUNDARY"

--BOUNDARY
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    flags:
      - --node-labels=team=a

--BOUNDARY
Content-Type: text/x-shellscript

#!/bin/bash
echo hello

--BOUNDARY--
`
