// Package deploy holds what installs nodeclass-guard in a cluster: the
// kustomize base (base/), its components (iam-snapshot,
// karpenter-in-kube-system, secure-metrics), the snapshot overlay, the Helm
// chart (charts/nodeclass-guard) and the webhook's own IAM policy
// (iam-policy.json). It has no Go API. Its tests render the manifests with
// the kustomize and helm pinned in hack/versions.env (installed by
// hack/tools.sh), check what they would install, check that the chart and
// the base install the same objects, and evaluate the webhook's
// matchConditions with the API server's own CEL compiler.
package deploy
