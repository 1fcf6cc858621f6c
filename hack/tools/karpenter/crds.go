//go:build tools

// Package crds pins the Karpenter module whose pkg/apis/crds
// hack/karpenter-crds.sh copies; it is never built. The import keeps the
// requirement (and its go.sum lines) through go mod tidy in
// hack/tools/update.sh.
package crds

import _ "github.com/aws/karpenter-provider-aws/pkg/apis"
