# lib.sh: shared by the scripts that build or fetch external components
# (source it; it defines functions only). Every component comes from a tools
# module under hack/tools/<name>/ whose go.mod and go.sum are committed: the
# go command runs there with -mod=readonly and GOTOOLCHAIN named, so it can
# neither pick another version nor another toolchain on its own. A version
# change is `bash hack/tools/update.sh` plus a reviewed commit.

# shellcheck disable=SC2034
NCG_TOOLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/tools" && pwd)"

# tool_go MODULE TOOLCHAIN ARGS...: the go command inside a tools module,
# never resolving anything the module's go.sum does not pin.
tool_go() {
  local mod="$1" tc="$2"
  shift 2
  (cd "$NCG_TOOLS_ROOT/$mod" && GOTOOLCHAIN="$tc" GOFLAGS=-mod=readonly GOWORK=off go "$@")
}

# module_stamp MODULE: a fingerprint of what a build from MODULE depends on
# (its go.mod and go.sum, and the go version building it). A cached binary
# whose stamp differs is rebuilt.
module_stamp() {
  local v
  v="$(cd "$NCG_TOOLS_ROOT/$1" && GOTOOLCHAIN="${2:-local}" go env GOVERSION)"
  (cd "$NCG_TOOLS_ROOT/$1" && cat go.mod go.sum && echo "$v ${*:3}") | sha256sum | cut -c1-16
}

# fresh OUT STAMP: true when OUT exists and was built from STAMP.
fresh() {
  [ -x "$1" ] && [ "$(cat "$1.stamp" 2>/dev/null)" = "$2" ]
}

# build_tool LABEL MODULE PACKAGE OUT [go build flags...]
#
# Builds PACKAGE from hack/tools/MODULE into OUT (atomically) and records
# the module's stamp beside it. A first build of kube-apiserver compiles
# about two thousand packages for several minutes, so it reports progress on
# stderr every 15 seconds: packages compiled of the total, and elapsed time.
build_tool() {
  local label="$1" mod="$2" pkg="$3" out="$4"
  shift 4
  local stamp total log start pid last done_n rc
  stamp="$(module_stamp "$mod" local "$pkg" "$*")"
  if fresh "$out" "$stamp"; then
    return 0
  fi
  start=$SECONDS
  log="$(mktemp)"
  total="$(tool_go "$mod" local list -deps "$pkg" 2>/dev/null | wc -l)"
  echo "$label: building $pkg from hack/tools/$mod ($total packages; cached ones are reused)" >&2
  mkdir -p "$(dirname "$out")"
  CGO_ENABLED=0 tool_go "$mod" local build -v -trimpath "$@" -o "$out.tmp" "$pkg" 2>"$log" &
  pid=$!
  last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - last)) -ge 15 ]; then
      last=$SECONDS
      done_n="$(grep -cv '^go: ' "$log" || true)"
      echo "$label: still building $(basename "$out"): $done_n of $total packages compiled, $((SECONDS - start))s elapsed" >&2
    fi
  done
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "$label: building $pkg failed (exit $rc); the go command said:" >&2
    grep -v '^[a-zA-Z0-9._/-]*$' "$log" | tail -40 >&2 || true
    rm -f "$log" "$out.tmp"
    return "$rc"
  fi
  rm -f "$log"
  mv "$out.tmp" "$out"
  echo "$stamp" >"$out.stamp"
  echo "$label: built $(basename "$out") in $((SECONDS - start))s" >&2
}

# module_dir LABEL MODULE TOOLCHAIN MODULE-PATH: downloads MODULE-PATH at the
# version hack/tools/MODULE pins (checked against its go.sum) and prints its
# directory in the module cache.
module_dir() {
  local label="$1" mod="$2" tc="$3" path="$4" dir
  dir="$(tool_go "$mod" "$tc" mod download -json "$path" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "$label: could not download $path as pinned by hack/tools/$mod (go mod download -json $path)" >&2
    return 1
  fi
  echo "$dir"
}

# k8s_version_ldflags VERSION: what Kubernetes' own build stamps into its
# binaries (unset, they report v0.0.0-master and a kubelet or kubeadm refuses
# to work with them).
k8s_version_ldflags() {
  local v="$1" minor f="" p
  minor="$(echo "$v" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f="$f -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "${f# }"
}
