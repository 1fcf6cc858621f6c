#!/usr/bin/env bash
# Runs every fuzz target of the packages below for FUZZTIME each (default
# 30s), one after another: `go test -fuzz` takes one target per run.
#
# A failure leaves the crashing input in PKG/testdata/fuzz/FuzzXxx/, where
# `go test ./...` replays it from then on: fix the code, keep the file (it
# is the regression test), and commit both.
#
#   FUZZTIME=5m hack/fuzz.sh            # longer runs
#   FUZZ_PACKAGES=./authz hack/fuzz.sh  # one package
#   FUZZ_PARALLEL=1 hack/fuzz.sh        # workers (-parallel); default: GOMAXPROCS
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"
GO="${GO:-go}"
read -r -a packages <<<"${FUZZ_PACKAGES:-./rules ./webhook ./authz ./check ./nodeconfig}"
parallel=()
if [[ -n "${FUZZ_PARALLEL:-}" ]]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

failed=()
ran=0
for pkg in "${packages[@]}"; do
	# go test -list prints the matching names, then "ok <pkg> <time>".
	mapfile -t targets < <("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	if [[ ${#targets[@]} -eq 0 ]]; then
		echo "fuzz: no fuzz targets in $pkg" >&2
		exit 1
	fi
	for target in "${targets[@]}"; do
		echo "fuzz: $pkg $target for $FUZZTIME"
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "${parallel[@]}" "$pkg"; then
			failed+=("$pkg $target")
		fi
		ran=$((ran + 1))
	done
done

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "fuzz: ${#failed[@]} of $ran target(s) failed; the crashing inputs are under testdata/fuzz/ of their packages:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: $ran target(s) ran clean for $FUZZTIME each"
