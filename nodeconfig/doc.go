// Package nodeconfig judges what an EC2NodeClass gives the node itself:
// spec.kubelet, decoded as the Karpenter release modelled decodes it, and
// spec.userData, parsed as the class's AMI family reads it. It is pure: no
// I/O, no clock, no AWS; the webhook turns its findings into reason codes.
//
// Karpenter's own validation (karpenter-provider-aws
// pkg/apis/v1/kubeletconfiguration_validation.go and
// pkg/controllers/nodeclass/validation.go) is not imported: the module
// declares go 1.26.10, newer than this project's toolchain, and its
// pkg/apis/v1 pulls sigs.k8s.io/karpenter, the AWS SDK's EC2 types,
// operatorpkg and samber/lo into the webhook binary for four pure
// functions. What it validates is written here from v1.15.1's source, and
// decoded against the same upstream types it decodes against
// (k8s.io/kubelet v0.37.0, nodeadm's api/v1alpha1 at Karpenter's pin,
// go-toml/v2 v2.4.3), pinned in go.mod at Karpenter's versions.
package nodeconfig

import "k8s.io/apimachinery/pkg/util/validation/field"

// Check names what a Finding is about; the webhook uses it as the reason
// code.
type Check string

// The checks, named as the reason codes they become.
const (
	// KubeletConfigInvalid: an unknown field, a wrong type or a value the
	// kubelet refuses (Karpenter's InvalidKubeletConfiguration).
	KubeletConfigInvalid Check = "KubeletConfigInvalid"
	// KubeletConfigUnsupported: a field the AMI family would drop
	// (Karpenter's UnsupportedKubeletConfiguration).
	KubeletConfigUnsupported Check = "KubeletConfigUnsupported"
	// KubeletExpressionInvalid: a CEL expression that does not compile
	// (Karpenter's KubeletExpressionInvalid).
	KubeletExpressionInvalid Check = "KubeletExpressionInvalid"
	// KubeletExpressionEvaluationFailed: an expression that fails, or is
	// negative or out of range, on a real instance type (Karpenter's
	// KubeletExpressionEvaluationFailed).
	KubeletExpressionEvaluationFailed Check = "KubeletExpressionEvaluationFailed"
	// KubeletExpressionsGated (warn): expressions need Karpenter's
	// NodeClassCEL feature gate, off by default (KubeletExpressionsDisabled).
	KubeletExpressionsGated Check = "KubeletExpressionsGated"

	// UserDataInvalid: userData the AMI family cannot read.
	UserDataInvalid Check = "UserDataInvalid"
	// UserDataWrongFamily: a part written for another AMI family.
	UserDataWrongFamily Check = "UserDataWrongFamily"
	// UserDataSetsKarpenterField (warn): userData sets what Karpenter sets
	// (cluster name, API endpoint, CA).
	UserDataSetsKarpenterField Check = "UserDataSetsKarpenterField"
	// UserDataFieldIgnored (warn): a NodeConfig field nodeadm does not
	// know and ignores.
	UserDataFieldIgnored Check = "UserDataFieldIgnored"
)

// Finding is one thing wrong with what the node is given.
type Finding struct {
	Check Check
	Path  *field.Path
	// Message says what is wrong and how to fix it, on one line.
	Message string
	// Warn marks a finding that does not refuse the class.
	Warn bool
}

func finding(c Check, p *field.Path, msg string) Finding {
	return Finding{Check: c, Path: p, Message: msg}
}

// AMI families, as spec.amiFamily and aliases name them.
const (
	FamilyAL2          = "AL2"
	FamilyAL2023       = "AL2023"
	FamilyBottlerocket = "Bottlerocket"
	FamilyWindows2019  = "Windows2019"
	FamilyWindows2022  = "Windows2022"
	FamilyWindows2025  = "Windows2025"
	FamilyCustom       = "Custom"
)

func isWindows(family string) bool {
	return family == FamilyWindows2019 || family == FamilyWindows2022 || family == FamilyWindows2025
}
