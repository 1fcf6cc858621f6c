#!/usr/bin/env bash
# envtest-assets.sh builds the kube-apiserver and etcd binaries envtest needs
# from the Go module proxy, into bin/k8s/<version> (ignored by git), and
# prints that folder. A second run reuses what is there.
#
# Where setup-envtest can download (a machine with internet), you may use it
# instead: export KUBEBUILDER_ASSETS="$(setup-envtest use -p path 1.36.x)".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source hack/versions.env

out="${ENVTEST_ASSETS_DIR:-$PWD/bin/k8s/$KUBERNETES_VERSION}"
mkdir -p "$out"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

if [ ! -x "$out/etcd" ]; then
  echo "envtest-assets: building etcd v$ETCD_VERSION from the module proxy" >&2
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init envtest-etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1
  go build -trimpath -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$out/etcd.tmp" "$out/etcd"
  cd - >/dev/null
fi

if [ ! -x "$out/kube-apiserver" ]; then
  echo "envtest-assets: building kube-apiserver v$KUBERNETES_VERSION from the module proxy (about 4 minutes on 2 cores)" >&2
  mkdir -p "$work/kas" && cd "$work/kas"
  minor="${KUBERNETES_VERSION#*.}"
  staging_version="v0.$minor"
  # Every k8s.io staging repository that k8s.io/kubernetes replaces with a
  # local path must be replaced with its published module instead.
  modfile="$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module envtest-kube-apiserver"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" |
      awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
  go mod tidy >/dev/null 2>&1 || true
  echo 'package main' >tools.go
  go build -trimpath -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
  cd - >/dev/null
fi
echo "$out"
