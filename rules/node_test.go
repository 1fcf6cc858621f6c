package rules

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// nodeClass is a class naming a role, of family al2023@latest, with the
// given kubelet (JSON) and userData.
func nodeClass(kubelet, userData string) *EC2NodeClass {
	nc := ec2Class("node", "KarpenterNodeRole-demo", "")
	nc.Spec.AMISelectorTerms = []SelectorTerm{{Alias: "al2023@latest"}}
	if kubelet != "" {
		if err := json.Unmarshal([]byte(kubelet), &nc.Spec.Kubelet); err != nil {
			panic(err)
		}
	}
	if userData != "" {
		nc.Spec.UserData = &userData
	}
	return nc
}

func nodeCodes(fs []Finding) []Code {
	var out []Code
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// TestNodeRules: the kubelet and userData rules run in the class checks,
// offline too (they ask nothing), for Karpenter 1.15 and later only.
func TestNodeRules(t *testing.T) {
	ctx := context.Background()
	offline := NewChecker(Config{})
	v := offline.CheckEC2NodeClass(ctx, nodeClass(`{"maxPod": 110}`, ""))
	if len(v.Denials) != 1 || v.Denials[0].Code != KubeletConfigInvalid || v.Denials[0].Field.String() != "spec.kubelet.maxPod" ||
		!strings.Contains(v.Denials[0].Message, `Did you mean "maxPods"?`) {
		t.Fatalf("maxPod: %+v", v.Denials)
	}
	v = offline.CheckEC2NodeClass(ctx, nodeClass(`{"maxPods": 110, "evictionHard": {"memory.available": "5%"}, "shutdownGracePeriod": "30s"}`, ""))
	if !v.Allowed() || len(v.Warnings) != 0 {
		t.Fatalf("valid map: %+v", v)
	}
	al2 := nodeClass(`{"shutdownGracePeriod": "30s"}`, "")
	family := "AL2"
	al2.Spec.AMIFamily = &family
	if v := offline.CheckEC2NodeClass(ctx, al2); !slices.Equal(nodeCodes(v.Denials), []Code{KubeletConfigUnsupported}) {
		t.Fatalf("AL2: %+v", v.Denials)
	}
	r, err := karpenter.Resolve("1.14", "flag", "--karpenter-version")
	if err != nil {
		t.Fatal(err)
	}
	old := NewChecker(Config{Karpenter: r})
	if v := old.CheckEC2NodeClass(ctx, nodeClass(`{"maxPod": 110}`, "")); !v.Allowed() {
		t.Fatalf("1.14 types spec.kubelet in its CRD: %+v", v.Denials)
	}
	v = offline.CheckEC2NodeClass(ctx, nodeClass("", "#!/bin/bash\n/etc/eks/bootstrap.sh demo\n"))
	if !slices.Equal(nodeCodes(v.Denials), []Code{UserDataWrongFamily}) {
		t.Fatalf("bootstrap.sh on AL2023: %+v", v.Denials)
	}
}

// TestNodeRulesUpdate: an update of spec.kubelet alone is judged by the
// node rules; an update of spec.tags alone never refuses a kubelet the
// class already had.
func TestNodeRulesUpdate(t *testing.T) {
	ctx := context.Background()
	c := NewChecker(Config{})
	good, bad := nodeClass(`{"maxPods": 110}`, ""), nodeClass(`{"maxPod": 110}`, "")
	if v := c.CheckEC2NodeClassUpdate(ctx, good, bad); !slices.Equal(nodeCodes(v.Denials), []Code{KubeletConfigInvalid}) {
		t.Fatalf("kubelet update: %+v", v.Denials)
	}
	tagged := nodeClass(`{"maxPod": 110}`, "")
	tagged.Spec.Tags = map[string]string{"team": "a"}
	if v := c.CheckEC2NodeClassUpdate(ctx, bad, tagged); !v.Allowed() {
		t.Fatalf("tags update: %+v", v.Denials)
	}
}
