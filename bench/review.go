// Package bench is nodeclass-guard's load harness: AdmissionReview bodies
// shaped like the API server's, a trivial webhook to compare against,
// closed-loop, open-loop and burst load over HTTP/1.1 keep-alive TLS,
// latency and resource accounting of the processes under test, and the
// control plane and `serve` processes the scenarios need. `make bench`
// runs it through bench/cmd/ncg-bench; docs/benchmarks.md reads the figures.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Class is an EC2NodeClass to admit: its name and identity fields.
type Class struct {
	Name            string
	Role            string
	InstanceProfile string
	// NoCostCenter leaves the cost-center tag out of spec.tags (the
	// organization scenario's SCP denies launching without it).
	NoCostCenter bool
	// NoSelectors leaves the selector terms out: an admission that warms
	// no selector answer (the cold single scenario's first).
	NoSelectors bool
}

// ReviewBody returns the AdmissionReview the API server sends to
// validate the CREATE of c as a Karpenter v1 EC2NodeClass: a full object
// (selector terms, tags, block devices, managed fields, a GitOps tool's
// annotations) so that decoding costs what it costs in a cluster. uid
// identifies the request.
func ReviewBody(c Class, uid string) []byte {
	tags := map[string]any{"team": "platform", "cost-center": "1234"}
	if c.NoCostCenter {
		delete(tags, "cost-center")
	}
	spec := map[string]any{
		"amiFamily":                  "AL2023",
		"amiSelectorTerms":           []any{map[string]any{"alias": "al2023@latest"}},
		"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
		"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "demo"}}},
		"tags":                       tags,
		"metadataOptions": map[string]any{
			"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
			"httpPutResponseHopLimit": 1, "httpTokens": "required",
		},
		"blockDeviceMappings": []any{map[string]any{
			"deviceName": "/dev/xvda",
			"ebs": map[string]any{
				"volumeSize": "100Gi", "volumeType": "gp3", "iops": 3000, "throughput": 125,
				"encrypted": true, "deleteOnTermination": true,
			},
		}},
		"kubelet": map[string]any{"maxPods": 110, "systemReserved": map[string]any{"cpu": "100m", "memory": "100Mi"}},
	}
	if c.NoSelectors {
		delete(spec, "amiSelectorTerms")
		delete(spec, "subnetSelectorTerms")
		delete(spec, "securityGroupSelectorTerms")
	}
	if c.Role != "" {
		spec["role"] = c.Role
	}
	if c.InstanceProfile != "" {
		spec["instanceProfile"] = c.InstanceProfile
	}
	created := time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC).Format(time.RFC3339)
	object := map[string]any{
		"apiVersion": "karpenter.k8s.aws/v1",
		"kind":       "EC2NodeClass",
		"metadata": map[string]any{
			"name":              c.Name,
			"uid":               "6f1c2a4e-0000-4000-8000-" + fmt.Sprintf("%012x", hash(c.Name)),
			"generation":        1,
			"creationTimestamp": created,
			"labels":            map[string]any{"app.kubernetes.io/instance": "karpenter-classes"},
			"annotations": map[string]any{
				"argocd.argoproj.io/tracking-id": "karpenter-classes:karpenter.k8s.aws/EC2NodeClass:/" + c.Name,
			},
			"managedFields": []any{map[string]any{
				"manager": "argocd-controller", "operation": "Apply", "apiVersion": "karpenter.k8s.aws/v1",
				"time": created, "fieldsType": "FieldsV1",
				"fieldsV1": map[string]any{"f:spec": map[string]any{
					"f:amiFamily": map[string]any{}, "f:amiSelectorTerms": map[string]any{}, "f:role": map[string]any{},
					"f:subnetSelectorTerms": map[string]any{}, "f:securityGroupSelectorTerms": map[string]any{},
				}},
			}},
		},
		"spec": spec,
	}
	gvk := map[string]any{"group": "karpenter.k8s.aws", "version": "v1", "kind": "EC2NodeClass"}
	gvr := map[string]any{"group": "karpenter.k8s.aws", "version": "v1", "resource": "ec2nodeclasses"}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":             uid,
			"kind":            gvk,
			"resource":        gvr,
			"requestKind":     gvk,
			"requestResource": gvr,
			"name":            c.Name,
			"operation":       "CREATE",
			"userInfo": map[string]any{
				"username": "system:serviceaccount:argocd:argocd-application-controller",
				"uid":      "0c7f5d9e-1111-4000-8000-000000000001",
				"groups":   []any{"system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"},
			},
			"object":    object,
			"oldObject": nil,
			"dryRun":    false,
			"options":   map[string]any{"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "argocd-controller"},
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		panic(err) // only maps, slices and scalars above
	}
	return b
}

// hash is FNV-1a, for stable per-name UIDs.
func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h & 0xffffffffffff
}

// ReviewBodies returns a function building the ReviewBody of classes that
// differ from proto only by name, by substitution into one encoded
// template: cheap enough to name a new class on every request.
func ReviewBodies(proto Class) func(name string) []byte {
	const placeholder = "ncg-bench-placeholder-name"
	p := proto
	p.Name = placeholder
	tmpl := ReviewBody(p, "00000000-0000-4000-8000-000000000000")
	return func(name string) []byte {
		return bytes.ReplaceAll(tmpl, []byte(placeholder), []byte(name))
	}
}
