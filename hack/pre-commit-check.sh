#!/usr/bin/env bash
# pre-commit-check.sh ARGS...: the pre-commit hook nodeclass-guard-check
# (.pre-commit-hooks.yaml). Runs `nodeclass-guard check ARGS...` with the
# release binary of the version below, installed once (hack/install.sh: the
# release's SHA256SUMS checked) into the user's cache. The version is this
# commit's release: make release keeps them equal (CHANGELOG.md's newest
# section; cmd/nodeclass-guard's TestPreCommitHookVersion checks it).
set -euo pipefail
version=v0.2.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nodeclass-guard/$version"
if ! [ -x "$cache/nodeclass-guard" ]; then
  bash "$(dirname "$0")/install.sh" "$version" "$cache"
fi
exec "$cache/nodeclass-guard" check "$@"
