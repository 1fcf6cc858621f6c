# nodeclass-guard: every entry point a developer or CI needs.
# Versions of external components are pinned in hack/versions.env.
include hack/versions.env

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
ENVTEST_ASSETS := $(BIN)/k8s/$(KUBERNETES_VERSION)
CRD_DIR := $(BIN)/crds
FUZZTIME ?= 30s

export KUBEBUILDER_ASSETS ?= $(ENVTEST_ASSETS)
export NCG_CRD_DIR ?= $(CRD_DIR)

.PHONY: all build test unit envtest envtest-assets crds tools demo bench fuzz e2e vet fmt docker-build render release clean

all: build

## build: the nodeclass-guard binary into bin/
build:
	$(GO) build -trimpath -o $(BIN)/nodeclass-guard ./cmd/nodeclass-guard

## envtest-assets: kube-apiserver and etcd built from the Go module proxy (cached in bin/k8s)
envtest-assets:
	@bash hack/envtest-assets.sh >/dev/null

## crds: Karpenter's CRDs copied from the pinned Karpenter Go modules into bin/crds
crds:
	@bash hack/karpenter-crds.sh >/dev/null

## tools: kustomize, helm and cyclonedx-gomod, built from the Go module proxy into bin/tools
tools:
	@bash hack/tools.sh >/dev/null

## vet: go vet and a gofmt check
vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

## unit: the tiers that need nothing but Go (rules, evaluator, local IAM endpoint)
unit:
	$(GO) test ./...

## envtest: only the tier on a real kube-apiserver (e2e/)
envtest: envtest-assets crds tools
	NCG_REQUIRE_ENVTEST=1 NCG_REQUIRE_TOOLS=1 $(GO) test -count=1 ./e2e/...

## test: every tier that runs here: unit, local IAM endpoint, envtest, rendered deploy/ dry-run
test: envtest-assets crds tools vet
	NCG_REQUIRE_ENVTEST=1 NCG_REQUIRE_TOOLS=1 $(GO) test -count=1 ./...

## demo: a local control plane, the webhook against the sample IAM snapshot, good and bad manifests
demo: envtest-assets crds
	@$(GO) run ./e2e/demo

## bench: the load harness and Go benchmarks (see docs/benchmarks.md)
bench:
	@bash hack/bench.sh

## fuzz: every fuzz target for FUZZTIME each
fuzz:
	@FUZZTIME=$(FUZZTIME) bash hack/fuzz.sh

## e2e: a real kind cluster end to end (hack/e2e-kind.sh): as root it starts dockerd itself, and
## without a registry builds every image here (hack/e2e-images.sh, cached in bin/e2e-cache)
e2e:
	@bash hack/e2e-kind.sh

## render: the rendered base, snapshot overlay and chart into bin/rendered
render: tools
	@bash hack/render.sh >/dev/null

## release: the release artefacts of VERSION (a CHANGELOG.md section) into bin/release:
## binaries (linux, darwin; amd64, arm64), SHA256SUMS, SBOM, chart, image build command
release: tools
	@bash hack/release.sh "$(VERSION)"

## docker-build: the container image
docker-build:
	docker build --build-arg VERSION=$${VERSION:-dev} --build-arg COMMIT=$$(git rev-parse HEAD 2>/dev/null) -t $${IMG:-nodeclass-guard:dev} .

clean:
	rm -rf $(BIN)/nodeclass-guard $(BIN)/rendered $(BIN)/release
