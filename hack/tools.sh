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
# Helm reads its version from ldflags; without them it reports only major.minor.
install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

echo "$out"
