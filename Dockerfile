# syntax=docker/dockerfile:1
# nodeclass-guard image: a static Go binary on distroless, run as non-root.
#
#   docker build -t nodeclass-guard:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v0.1.0 -t ghcr.io/nodeclass-guard/nodeclass-guard:v0.1.0 .

# The builder runs on the build machine's platform and cross-compiles, so a
# multi-platform build needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
# What `nodeclass-guard version` prints and the startup log records.
ARG VERSION=dev
WORKDIR /src
# Module downloads are cached in their own layer: they change less often
# than the code.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/nodeclass-guard ./cmd/nodeclass-guard

# distroless/static: CA certificates and tzdata, no shell, no package
# manager. The nonroot variant's user is 65532, stated again below so that
# runAsNonRoot can verify it from the image.
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/nodeclass-guard /nodeclass-guard
USER 65532:65532
ENTRYPOINT ["/nodeclass-guard"]
