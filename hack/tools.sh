#!/usr/bin/env bash
# tools.sh builds the command-line tools the deploy tests and scripts use
# (kustomize, helm; cyclonedx-gomod for make release) into bin/tools, from the
# tools modules hack/tools/kustomize, hack/tools/helm and
# hack/tools/cyclonedx-gomod (versions in hack/versions.env, go.mod and go.sum
# committed, built with -mod=readonly). A tool is rebuilt only when missing or
# built from another go.mod/go.sum. Prints the tools folder on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source hack/versions.env
# shellcheck source=hack/lib.sh
source hack/lib.sh

out="${TOOLS_DIR:-$PWD/bin/tools}"
mkdir -p "$out"

build_tool tools kustomize sigs.k8s.io/kustomize/kustomize/v5 "$out/kustomize"

# Helm takes its version, and the Kubernetes version `helm template` and
# `helm lint` assume, from ldflags; its own Makefile derives the latter from
# the client-go it builds with (v0.N means Kubernetes 1.N). Without them
# charts with a kubeVersion constraint fail against a default of 1.20.
minor="$(tool_go helm local list -m -f '{{.Version}}' k8s.io/client-go | sed -n 's/^v0\.\([0-9]*\)\..*/\1/p')"
[ -n "$minor" ] || { echo "tools: hack/tools/helm pins no k8s.io/client-go v0.N" >&2; exit 1; }
build_tool tools helm helm.sh/helm/v3/cmd/helm "$out/helm" -ldflags \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
   -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
   -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"

# The release's SBOM (hack/release.sh).
build_tool tools cyclonedx-gomod github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod "$out/cyclonedx-gomod"

echo "$out"
