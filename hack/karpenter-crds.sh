#!/usr/bin/env bash
# karpenter-crds.sh copies Karpenter's real CRDs (EC2NodeClass, NodePool, NodeClaim) out
# of the pinned karpenter-provider-aws Go modules into bin/crds (ignored by
# git), and prints that folder:
#
#   bin/crds/v1/       KARPENTER_AWS_VERSION: the current v1 API.
#   bin/crds/v1beta1/  KARPENTER_V1BETA1_AWS_VERSION (1.0.x): serves v1 and
#                      v1beta1; its conversion webhook is replaced by
#                      `strategy: None` (see the comment written into the files).
#
# The modules come from the Go module proxy as pinned by the committed tools
# modules hack/tools/karpenter and hack/tools/karpenter-v1beta1 (go.sum checks
# what is downloaded). 1.15.x needs Go 1.26.10: the exact toolchain
# KARPENTER_GO_TOOLCHAIN is fetched through the proxy for that module alone.
# A second run is instant.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source hack/versions.env
# shellcheck source=hack/lib.sh
source hack/lib.sh

out="${NCG_CRD_DIR:-$PWD/bin/crds}"
stamp="$out/.versions"
want="v1=$KARPENTER_AWS_VERSION v1beta1=$KARPENTER_V1BETA1_AWS_VERSION $(module_stamp karpenter "$KARPENTER_GO_TOOLCHAIN") $(module_stamp karpenter-v1beta1)"
files=(karpenter.k8s.aws_ec2nodeclasses.yaml karpenter.sh_nodepools.yaml karpenter.sh_nodeclaims.yaml)

complete() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || return 1
  for d in v1 v1beta1; do
    for f in "${files[@]}"; do [ -s "$out/$d/$f" ] || return 1; done
  done
}
if complete; then
  echo "$out"
  exit 0
fi

echo "karpenter-crds: karpenter-provider-aws v$KARPENTER_AWS_VERSION (v1)" >&2
src="$(module_dir karpenter-crds karpenter "$KARPENTER_GO_TOOLCHAIN" github.com/aws/karpenter-provider-aws)"
mkdir -p "$out/v1"
for f in "${files[@]}"; do
  install -m 0644 "$src/pkg/apis/crds/$f" "$out/v1/$f"
done

echo "karpenter-crds: karpenter-provider-aws v$KARPENTER_V1BETA1_AWS_VERSION (v1 + v1beta1)" >&2
src="$(module_dir karpenter-crds karpenter-v1beta1 local github.com/aws/karpenter-provider-aws)"
mkdir -p "$out/v1beta1"
for f in "${files[@]}"; do
  grep -q '^  conversion:$' "$src/pkg/apis/crds/$f" || {
    echo "karpenter-crds: $f in v$KARPENTER_V1BETA1_AWS_VERSION has no conversion stanza to replace" >&2
    exit 1
  }
  {
    echo "# Copied by hack/karpenter-crds.sh from github.com/aws/karpenter-provider-aws@v$KARPENTER_V1BETA1_AWS_VERSION"
    echo "# pkg/apis/crds/$f: Karpenter 1.0.x serves both v1 and v1beta1"
    echo "# (the module proxy does not serve v0.37.x). Its conversion webhook (the"
    echo "# karpenter Service in kube-system) cannot run in envtest, so"
    echo "# spec.conversion is replaced by 'strategy: None': the API server only"
    echo "# rewrites apiVersion between the two versions. Enough to admit v1beta1"
    echo "# objects through nodeclass-guard; not a faithful v1beta1<->v1 round trip."
    # Drop the "conversion:" block (every line indented deeper than it).
    awk '
      /^  conversion:$/ { print "  conversion:"; print "    strategy: None"; skip = 1; next }
      skip && /^   / { next }
      { skip = 0; print }
    ' "$src/pkg/apis/crds/$f"
  } >"$out/v1beta1/$f.tmp"
  mv "$out/v1beta1/$f.tmp" "$out/v1beta1/$f"
done

echo "$want" >"$stamp"
echo "$out"
