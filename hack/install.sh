#!/usr/bin/env bash
# install.sh VERSION DIR: installs the nodeclass-guard release binary of
# VERSION (a release tag, v0.2.0) for this OS and architecture as
# DIR/nodeclass-guard, after checking it against the release's SHA256SUMS.
# The GitHub action and the pre-commit hook install with it.
#
# NCG_RELEASE_URL is where the releases are (each VERSION a folder of the
# artefacts `make release` writes); default: the project's GitHub releases.
set -euo pipefail
version="${1:-}" dir="${2:-}"
if ! [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || [ -z "$dir" ]; then
  echo "install: usage: install.sh VERSION DIR (VERSION a release tag such as v0.2.0, got '${version}')" >&2
  exit 2
fi
base="${NCG_RELEASE_URL:-https://github.com/nodeclass-guard/nodeclass-guard/releases/download}"
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install: no nodeclass-guard release binary for $(uname -m); build it from the source of $version (README: In CI)" >&2; exit 1 ;;
esac
case "$os" in
  linux | darwin) ;;
  *) echo "install: no nodeclass-guard release binary for $os; build it from the source of $version (README: In CI)" >&2; exit 1 ;;
esac
name="nodeclass-guard_${os}_${arch}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fetch() { # URL FILE
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$2" "$1"
  else
    wget -q -O "$2" "$1"
  fi || { echo "install: could not download $1" >&2; exit 1; }
}
fetch "$base/$version/SHA256SUMS" "$tmp/SHA256SUMS"
fetch "$base/$version/$name" "$tmp/$name"
want="$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1 }' "$tmp/SHA256SUMS")"
if [ -z "$want" ]; then
  echo "install: $base/$version/SHA256SUMS has no checksum for $name" >&2
  exit 1
fi
if command -v sha256sum >/dev/null; then
  got="$(sha256sum "$tmp/$name" | cut -d' ' -f1)"
else
  got="$(shasum -a 256 "$tmp/$name" | cut -d' ' -f1)"
fi
if [ "$got" != "$want" ]; then
  echo "install: $name of $version: checksum $got, but SHA256SUMS says $want: not installed" >&2
  exit 1
fi
mkdir -p "$dir"
chmod 0755 "$tmp/$name"
mv "$tmp/$name" "$dir/nodeclass-guard"
echo "install: nodeclass-guard $version ($name, sha256 $got) in $dir" >&2
