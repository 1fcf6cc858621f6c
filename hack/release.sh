#!/usr/bin/env bash
# release.sh VERSION: the release artefacts of VERSION, into bin/release/
# (make release VERSION=v0.2.0). Nothing is published: a maintainer uploads
# the folder to the GitHub release of the tag, and runs the image command.
#
#   nodeclass-guard_<os>_<arch>   the binary, for linux and darwin on amd64 and
#                                 arm64 (RELEASE_PLATFORMS narrows the list),
#                                 with the version, the commit and the
#                                 modelled Karpenter range stamped in
#   nodeclass-guard.cdx.json      the CycloneDX SBOM of the binaries' modules
#                                 (cyclonedx-gomod bin, hack/tools)
#   nodeclass-guard-X.Y.Z.tgz     the Helm chart, version X.Y.Z and appVersion
#                                 VERSION (helm package, hack/tools)
#   image-build.sh                the multi-arch image build (docker buildx)
#   RELEASE_NOTES.md              VERSION's section of CHANGELOG.md
#   SHA256SUMS                    the checksums of all of the above
#
# A VERSION without a CHANGELOG.md section is refused. The tools come from
# bin/tools (make tools builds them from hack/tools with -mod=readonly).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source hack/versions.env

version="${1:-}"
if ! [[ "$version" =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION=${version:-(none)}: want a release tag such as v0.2.0 (make release VERSION=v0.2.0)" >&2
  exit 2
fi
out="${RELEASE_DIR:-$PWD/bin/release}"
tools="${TOOLS_DIR:-$PWD/bin/tools}"
platforms="${RELEASE_PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"

# The release notes: CHANGELOG.md's "## vX.Y.Z" section, up to the next one.
notes="$(awk -v v="$version" '
  /^## / { if (found) exit; found = ($2 == v) ; next }
  found { print }
' CHANGELOG.md)"
if [ -z "$(tr -d '[:space:]' <<<"$notes")" ]; then
  echo "release: CHANGELOG.md has no \"## $version\" section (or it is empty): write the release notes first" >&2
  exit 2
fi

commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi

rm -rf "$out"
mkdir -p "$out"
printf '# nodeclass-guard %s\n%s\n' "$version" "$notes" >"$out/RELEASE_NOTES.md"

ldflags="-s -w -X main.version=$version -X main.commit=$commit"
for p in $platforms; do
  os="${p%/*}" arch="${p#*/}"
  echo "release: nodeclass-guard_${os}_${arch}" >&2
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOFLAGS=-mod=readonly \
    go build -trimpath -ldflags "$ldflags" -o "$out/nodeclass-guard_${os}_${arch}" ./cmd/nodeclass-guard
done

# The SBOM: the modules the first binary is built from, read from the Go
# build information it embeds (`go version -m`; the same for every platform:
# no dependency of ours is platform-specific), its version the release's.
cdx="$tools/cyclonedx-gomod"
[ -x "$cdx" ] || { echo "release: $cdx missing: run make tools" >&2; exit 1; }
first="$(set -- $platforms && echo "${1%/*}_${1#*/}")"
echo "release: nodeclass-guard.cdx.json" >&2
"$cdx" bin -json -noserial -version "$version" -output "$out/nodeclass-guard.cdx.json" "$out/nodeclass-guard_$first" 2>"$out/.sbom.log" ||
  { cat "$out/.sbom.log" >&2; exit 1; }
rm -f "$out/.sbom.log"

# The chart: its version is the release's without the v (Helm wants SemVer),
# its appVersion (the image tag it deploys by default) the release's.
helm="$tools/helm"
[ -x "$helm" ] || { echo "release: $helm missing: run make tools" >&2; exit 1; }
echo "release: nodeclass-guard-${version#v}.tgz" >&2
"$helm" package deploy/charts/nodeclass-guard --version "${version#v}" --app-version "$version" -d "$out" >/dev/null

# The image: written out, run by whoever holds the registry's credentials.
cat >"$out/image-build.sh" <<EOF
#!/usr/bin/env bash
# The multi-arch image of nodeclass-guard $version (commit $commit), from a
# checkout of that commit. IMAGE defaults to the project's registry.
set -euo pipefail
IMAGE="\${IMAGE:-ghcr.io/nodeclass-guard/nodeclass-guard}"
docker buildx build --platform linux/amd64,linux/arm64 \\
  --build-arg VERSION=$version --build-arg COMMIT=$commit \\
  --label org.opencontainers.image.version=$version \\
  --label org.opencontainers.image.revision=$commit \\
  -t "\$IMAGE:$version" --push .
EOF
chmod +x "$out/image-build.sh"

(cd "$out" && sha256sum -- * | grep -v ' SHA256SUMS$' >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
echo "release: $version ($commit) in $out" >&2
