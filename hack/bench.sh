#!/usr/bin/env bash
# bench.sh is `make bench`: the Go benchmarks of the rule path, the cache
# and the evaluator, then the load harness (bench/cmd/ncg-bench), which
# starts a control plane (envtest), the local IAM endpoint, the real
# `nodeclass-guard serve` and a trivial webhook, and prints one line of
# figures last. docs/benchmarks.md explains the method and the figures.
#
# Environment:
#   NCG_BINARY   a nodeclass-guard binary to measure instead of building one
#   BENCH_FLAGS  extra ncg-bench flags, e.g. "--rounds 5 --memory-classes 20000"
#   BENCHTIME    go test -benchtime of the Go benchmarks (default 300ms)
set -euo pipefail
cd "$(dirname "$0")/.."
start="$(date +%s)"

assets="$(bash hack/envtest-assets.sh)"
crds="$(bash hack/karpenter-crds.sh)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
binary="${NCG_BINARY:-}"
if [ -z "$binary" ]; then
  binary="$work/nodeclass-guard"
  # Built as the image builds it (Dockerfile): the RSS measured is the shipped one.
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary" ./cmd/nodeclass-guard
fi
go build -trimpath -o "$work/ncg-bench" ./bench/cmd/ncg-bench

# Compiled before the clock of any measurement starts; -benchtime keeps the
# whole run inside its 3-minute budget (every benchmark still runs
# hundreds to hundreds of thousands of iterations).
echo "== Go benchmarks (go test -bench . -benchmem ./authz ./rules ./webhook ./bench) =="
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-300ms}" ./authz ./rules ./webhook ./bench
echo
echo "== load harness ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')) =="
# shellcheck disable=SC2086
exec "$work/ncg-bench" --root . --binary "$binary" --assets "$assets" --crds "$crds/v1" --started "$start" ${BENCH_FLAGS:-}
