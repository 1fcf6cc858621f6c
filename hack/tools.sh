#!/usr/bin/env bash
# tools.sh installs the command-line tools the deploy tests and scripts use
# (kustomize, helm) into bin/tools, built from the Go module proxy at the
# versions pinned in hack/versions.env. They are tools, not dependencies of
# the module: `go install pkg@version` keeps them out of go.mod.
#
# A tool is rebuilt only when missing or pinned to another version (the
# version it was built at is kept in bin/tools/.<tool>.version).
# Prints the tools folder on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source hack/versions.env

out="${TOOLS_DIR:-$PWD/bin/tools}"
mkdir -p "$out"
export GOBIN="$out"
export CGO_ENABLED=0
# These tools resolve their own dependencies, not this module's.
export GOFLAGS=-mod=mod

# install NAME VERSION PACKAGE [go install flags...]
install() {
  local name="$1" version="$2" pkg="$3"
  shift 3
  local stamp="$out/.$name.version"
  if [ -x "$out/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "tools: building $name $version from the module proxy" >&2
  # Outside the module, so that go.mod and go.sum stay untouched.
  (cd "$(mktemp -d)" && go install "$@" "$pkg@$version")
  echo "$version" >"$stamp"
}

install kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5

# Helm takes its version, and the Kubernetes version `helm template` and
# `helm lint` assume, from ldflags; its own Makefile derives the latter from
# the client-go it builds with (v0.N means Kubernetes 1.N). Without them
# charts with a kubeVersion constraint fail against a default of 1.20.
helm_ldflags() {
  local gomod minor
  gomod="$(cd "$(mktemp -d)" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  minor="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")"
  echo "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1" \
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
}
if [ ! -x "$out/helm" ] || [ "$(cat "$out/.helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm -ldflags "$(helm_ldflags)"
fi

echo "$out"
