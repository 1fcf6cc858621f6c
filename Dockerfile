# nodeclass-guard image: a static Go binary on distroless, run as non-root.
#
#   docker build -t nodeclass-guard:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v0.2.0 -t ghcr.io/nodeclass-guard/nodeclass-guard:v0.2.0 .
#
# Needs BuildKit (cache mounts; only the stages the image uses are built).
# No `# syntax=` line: BuildKit's built-in Dockerfile frontend is enough, and
# fetching one needs a registry.
#
# Where no registry is reachable (hack/e2e-kind.sh, E2E_IMAGES=local), two
# build arguments replace what would be pulled:
#   BASE_IMAGE=scratch   the runtime base instead of distroless (the binary is
#                        static; the user is numeric, so no /etc/passwd needed)
#   BINARY=prebuilt      take bin/image/nodeclass-guard, built on the host with
#                        the flags below, instead of compiling in golang:1.26.8
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
#     -o bin/image/nodeclass-guard ./cmd/nodeclass-guard
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot
ARG BINARY=build

# The builder is the exact Go of go.mod's go line (hack/pins_test.go holds
# them equal); it runs on the build machine's platform and cross-compiles, so a
# multi-platform build needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
ARG TARGETOS
ARG TARGETARCH
# What `nodeclass-guard version` prints and the startup log records.
ARG VERSION=dev
ARG COMMIT=
WORKDIR /src
# Module downloads are cached in their own layer: they change less often
# than the code.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" -o /out/nodeclass-guard ./cmd/nodeclass-guard

# BINARY=prebuilt: the binary from the build context.
FROM scratch AS prebuilt
COPY bin/image/nodeclass-guard /out/nodeclass-guard

FROM ${BINARY} AS binary

# distroless/static: CA certificates and tzdata, no shell, no package
# manager. The nonroot variant's user is 65532, stated again below so that
# runAsNonRoot can verify it from the image.
FROM ${BASE_IMAGE}
COPY --from=binary /out/nodeclass-guard /nodeclass-guard
USER 65532:65532
ENTRYPOINT ["/nodeclass-guard"]
