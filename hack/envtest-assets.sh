#!/usr/bin/env bash
# envtest-assets.sh builds the kube-apiserver and etcd binaries envtest needs
# into bin/k8s/<version> (ignored by git), and prints that folder.
#
# Both come from committed tools modules, built with -mod=readonly:
#   hack/tools/kubernetes  k8s.io/kubernetes v$KUBERNETES_VERSION, every staging
#                          repository replaced by its published v0.<minor>.<patch>
#   hack/tools/etcd        go.etcd.io/etcd/server/v3 v$ETCD_VERSION
# so nothing is resolved at build time. A second run finds the binaries (each
# stamped with the go.mod/go.sum it was built from) and returns at once.
#
# Where setup-envtest can download (a machine with internet), you may use it
# instead: export KUBEBUILDER_ASSETS="$(setup-envtest use -p path 1.36.x)".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source hack/versions.env
# shellcheck source=hack/lib.sh
source hack/lib.sh

out="${ENVTEST_ASSETS_DIR:-$PWD/bin/k8s/$KUBERNETES_VERSION}"
mkdir -p "$out"
build_tool envtest-assets etcd go.etcd.io/etcd/server/v3 "$out/etcd"
# About 7 minutes on 2 cores the first time: compiling kube-apiserver dominates.
build_tool envtest-assets kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$out/kube-apiserver" \
  -ldflags "$(k8s_version_ldflags "$KUBERNETES_VERSION")"
echo "$out"
