#!/usr/bin/env bash
# render.sh writes the manifests nodeclass-guard installs, as the pinned
# kustomize and helm render them, to bin/rendered/ (ignored by git):
#
#   base.yaml      kustomize build deploy/base
#   snapshot.yaml  kustomize build deploy/overlays/snapshot
#   chart.yaml     helm template nodeclass-guard deploy/charts/nodeclass-guard
#                  --namespace nodeclass-guard (default values)
#
# For reading; e2e/deploydryrun renders and dry-runs on its own. Installs the
# tools first (hack/tools.sh) when they are missing. Prints the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$(hack/tools.sh)"
out="${RENDER_DIR:-$PWD/bin/rendered}"
mkdir -p "$out"

# Write through a temporary file so that a failed render never leaves a
# truncated manifest behind.
render() {
  local name="$1"
  shift
  "$@" >"$out/$name.tmp"
  mv "$out/$name.tmp" "$out/$name"
}
render base.yaml "$tools/kustomize" build deploy/base
render snapshot.yaml "$tools/kustomize" build deploy/overlays/snapshot
render chart.yaml "$tools/helm" template nodeclass-guard deploy/charts/nodeclass-guard --namespace nodeclass-guard
echo "$out"
