package rules

import (
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
	"github.com/nodeclass-guard/nodeclass-guard/nodeconfig"
)

// The kubelet codes (extensions of the contract): spec.kubelet judged as
// the Karpenter version modelled validates it (nodeconfig.Kubelet), each
// one of Karpenter's ValidationSucceeded=False reasons.
const (
	// KubeletConfigInvalid: an unknown field (with the nearest valid
	// name), a wrong type, or a value the kubelet refuses
	// (InvalidKubeletConfiguration).
	KubeletConfigInvalid = Code(nodeconfig.KubeletConfigInvalid)
	// KubeletConfigUnsupported: a field the AMI family would drop
	// (UnsupportedKubeletConfiguration).
	KubeletConfigUnsupported = Code(nodeconfig.KubeletConfigUnsupported)
	// KubeletExpressionInvalid: a CEL expression that does not compile.
	KubeletExpressionInvalid = Code(nodeconfig.KubeletExpressionInvalid)
	// KubeletExpressionEvaluationFailed: an expression that fails, or is
	// negative, on a real instance type.
	KubeletExpressionEvaluationFailed = Code(nodeconfig.KubeletExpressionEvaluationFailed)
	// KubeletExpressionsGated (warn): expressions need Karpenter's
	// NodeClassCEL feature gate.
	KubeletExpressionsGated = Code(nodeconfig.KubeletExpressionsGated)
)

var kubeletPath = specPath.Child("kubelet")

// checkKubelet judges spec.kubelet for Karpenter 1.15 and later, which
// take it as a free-form map; earlier versions type it in the CRD and the
// API server checks it. Pure: no AWS question.
func (c *Checker) checkKubelet(v *Verdict, spec EC2NodeClassSpec) {
	if len(spec.Kubelet) == 0 || !karpenter.KubeletFreeForm(c.cfg.Karpenter.Model) {
		return
	}
	addNodeConfig(v, nodeconfig.Kubelet(kubeletPath, spec.Kubelet, effectiveFamily(spec)))
}

// addNodeConfig adds nodeconfig's findings, their check as the code.
func addNodeConfig(v *Verdict, fs []nodeconfig.Finding) {
	for _, f := range fs {
		v.add(Finding{Code: Code(f.Check), Field: f.Path, Message: f.Message, Deny: !f.Warn})
	}
}
