#!/usr/bin/env bash
# e2e-kind.sh runs nodeclass-guard end to end in a kind cluster: cert-manager
# issues its certificate, the real Karpenter CRDs (from the Go module cache)
# and the EKS NodeClass stand-in are installed, the image built from this
# tree is deployed with the iam-snapshot overlay and testdata/iam/sample-snapshot.json,
# and the examples are applied through the API server:
#
#   examples/good/*.yaml  must be admitted;
#   examples/bad/*.yaml   must get, file by file, the verdict that
#                         `nodeclass-guard check` gives offline on the same
#                         snapshot: denied with every denial code in kubectl's
#                         error, or admitted with every warning code shown;
#                         server-side dry runs too (sideEffects: None);
#   a label-only update   must not reach the webhook (matchConditions);
#   deletes               must go through.
#
# The webhooks run with failurePolicy Fail here, so that an unreachable
# webhook fails the test instead of admitting everything.
#
# Needs docker (with a running daemon), kind and kubectl; when one is missing
# it prints "e2e: skipped: <why>" and exits 0 (E2E_REQUIRED=1: exits 1). It
# also needs the network for the base images and for cert-manager's release
# manifest, unless CERT_MANAGER_MANIFEST names a local copy.
#
# Knobs (environment):
#   DOCKER, KIND, KUBECTL    commands to use (docker, kind, kubectl)
#   KIND_CLUSTER_NAME        cluster name (nodeclass-guard-e2e); recreated if it exists
#   KIND_NODE_IMAGE          kind node image (kind's default; Kubernetes 1.30 or later)
#   CERT_MANAGER_MANIFEST    cert-manager install manifest, file or URL
#                            (the release's cert-manager.yaml for CERT_MANAGER_VERSION)
#   E2E_IMAGE                image name for the build (nodeclass-guard:e2e)
#   E2E_KEEP_CLUSTER=1       leave the cluster running afterwards
#   E2E_REQUIRED=1           a missing prerequisite is a failure, not a skip
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# shellcheck disable=SC1091
source hack/versions.env

DOCKER="${DOCKER:-docker}"
KIND="${KIND:-kind}"
KUBECTL="${KUBECTL:-kubectl}"
cluster="${KIND_CLUSTER_NAME:-nodeclass-guard-e2e}"
image="${E2E_IMAGE:-nodeclass-guard:e2e}"
cert_manager_manifest="${CERT_MANAGER_MANIFEST:-https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml}"
ns=nodeclass-guard
snapshot="$root/testdata/iam/sample-snapshot.json"
# The identity the sample snapshot describes (testdata/iam/sample-snapshot.json).
controller_role="arn:aws:iam::111122223333:role/KarpenterControllerRole"
cluster_name=demo
region=us-west-2

log() { echo "e2e: $*" >&2; }

skip() {
  if [ "${E2E_REQUIRED:-}" = 1 ]; then
    echo "e2e: failed: $* (E2E_REQUIRED=1)" >&2
    exit 1
  fi
  echo "e2e: skipped: $*"
  exit 0
}

# ---- prerequisites: skip cleanly when the machine cannot run kind.
command -v "$DOCKER" >/dev/null 2>&1 || skip "no docker command ($DOCKER)"
"$DOCKER" info >/dev/null 2>&1 || skip "no Docker daemon ($DOCKER info failed)"
command -v "$KIND" >/dev/null 2>&1 || skip "no kind command ($KIND)"
command -v "$KUBECTL" >/dev/null 2>&1 || skip "no kubectl command ($KUBECTL)"
for f in "$snapshot" examples/good examples/bad; do
  [ -e "$f" ] || { echo "e2e: failed: $f is missing" >&2; exit 1; }
done

work="$root/bin/e2e"
rm -rf "$work"
mkdir -p "$work"
export KUBECONFIG="$work/kubeconfig"
k() { "$KUBECTL" "$@"; }

# dump prints what explains a failure: the webhook's pods, logs and events.
dump() {
  log "--- diagnostics"
  k -n "$ns" get pods,certificates,endpoints -o wide >&2 || true
  k -n "$ns" logs -l app.kubernetes.io/name=nodeclass-guard --all-containers --prefix --tail=200 >&2 || true
  k -n "$ns" get events --sort-by=.lastTimestamp >&2 || true
  k get validatingwebhookconfiguration nodeclass-guard -o yaml >&2 || true
}

fail() {
  echo "e2e: FAIL: $*" >&2
  dump
  exit 1
}

cleanup() {
  local code=$?
  if [ "${E2E_KEEP_CLUSTER:-}" = 1 ]; then
    log "keeping cluster $cluster (KUBECONFIG=$KUBECONFIG)"
  else
    "$KIND" delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  exit "$code"
}

# retry N CMD...: run CMD until it succeeds, N times at most, 5s apart.
retry() {
  local n="$1" i
  shift
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    sleep 5
  done
  return 1
}

# ---- the webhook's image and the offline oracle, from this tree.
log "building $image"
"$DOCKER" build -t "$image" . >&2 || fail "docker build"
log "building nodeclass-guard for the offline verdicts"
CGO_ENABLED=0 go build -o "$work/nodeclass-guard" ./cmd/nodeclass-guard || fail "go build"
check() {
  "$work/nodeclass-guard" check --iam-snapshot "$snapshot" --controller-role "$controller_role" \
    --cluster-name "$cluster_name" --region "$region" "$@"
}

# ---- the cluster.
if "$KIND" get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "deleting the existing cluster $cluster"
  "$KIND" delete cluster --name "$cluster" >&2
fi
trap cleanup EXIT
log "creating kind cluster $cluster"
"$KIND" create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --wait 120s \
  ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} >&2 || fail "kind create cluster"
"$KIND" load docker-image "$image" --name "$cluster" >&2 || fail "kind load docker-image"

log "installing cert-manager from $cert_manager_manifest"
k apply -f "$cert_manager_manifest" >/dev/null || fail "installing cert-manager"
k -n cert-manager wait --for=condition=Available deployment --all --timeout=300s >&2 ||
  fail "cert-manager did not become available"

log "installing the Karpenter CRDs v$KARPENTER_AWS_VERSION (hack/karpenter-crds.sh, from the Go module proxy)"
crds="$(hack/karpenter-crds.sh)" || fail "fetching the Karpenter CRDs"
for crd in "$crds"/v1/*.yaml; do
  k apply --server-side -f "$crd" >/dev/null || fail "applying CRD $crd"
done
# EKS Auto Mode's NodeClass is installed by EKS; kind gets the stand-in.
k apply --server-side -f e2e/crds/eks.amazonaws.com_nodeclasses.yaml >/dev/null || fail "applying the EKS NodeClass stand-in CRD"
k wait --for=condition=Established crd/ec2nodeclasses.karpenter.k8s.aws crd/nodepools.karpenter.sh \
  crd/nodeclasses.eks.amazonaws.com --timeout=60s >&2 || fail "CRDs not established"

# ---- nodeclass-guard: the snapshot overlay, this image, the snapshot's
# identity (the last occurrence of a flag wins), failurePolicy Fail.
log "deploying nodeclass-guard (deploy/overlays/snapshot)"
mkdir -p "$work/kustomize"
cat >"$work/kustomize/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../deploy/overlays/snapshot
images:
  - name: ghcr.io/nodeclass-guard/nodeclass-guard
    newName: ${image%:*}
    newTag: ${image##*:}
patches:
  - target: {group: apps, version: v1, kind: Deployment, name: nodeclass-guard}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--controller-role=$controller_role"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--cluster-name=$cluster_name"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--region=$region"}
  - target: {group: admissionregistration.k8s.io, version: v1, kind: ValidatingWebhookConfiguration, name: nodeclass-guard}
    patch: |-
      - {op: replace, path: /webhooks/0/failurePolicy, value: Fail}
      - {op: replace, path: /webhooks/1/failurePolicy, value: Fail}
      - {op: replace, path: /webhooks/2/failurePolicy, value: Fail}
EOF
tools="$(hack/tools.sh)"
"$tools/kustomize" build "$work/kustomize" >"$work/manifests.yaml" || fail "kustomize build"
k apply -f - >/dev/null <<EOF || fail "creating namespace $ns"
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
EOF
k -n "$ns" create configmap nodeclass-guard-iam-snapshot --from-file=snapshot.json="$snapshot" \
  --dry-run=client -o yaml | k apply -f - >/dev/null || fail "creating the snapshot ConfigMap"
# cert-manager's own webhook may take a moment to answer for Issuers.
retry 24 k apply -f "$work/manifests.yaml" >/dev/null || fail "applying the manifests"

k -n "$ns" wait --for=condition=Ready certificate/nodeclass-guard-serving --timeout=180s >&2 ||
  fail "the serving certificate was not issued"
k -n "$ns" rollout status deployment/nodeclass-guard --timeout=300s >&2 || fail "the deployment did not become ready"
ca_injected() {
  [ -n "$(k get validatingwebhookconfiguration nodeclass-guard -o jsonpath='{.webhooks[2].clientConfig.caBundle}')" ]
}
retry 24 ca_injected || fail "cert-manager did not inject the CA into the webhook configuration"

# ---- admission through the API server.
# webhook_requests sums the webhook requests the pods have served.
webhook_requests() {
  local pod total=0 n
  for pod in $(k -n "$ns" get pods -l app.kubernetes.io/name=nodeclass-guard -o name); do
    n="$(k get --raw "/api/v1/namespaces/$ns/pods/${pod#pod/}:8080/proxy/metrics" |
      awk '/^controller_runtime_webhook_requests_total[{ ]/ {s += $NF} END {printf "%d", s}')" || return 1
    total=$((total + n))
  done
  echo "$total"
}

# verdict FILE: check's verdict on FILE's objects, with examples/good as
# the rest of the cluster (NodePools resolve their classes against both):
# a first line "denied" or "admitted", then the codes check reports for
# FILE's objects, denial codes when denied, warning codes when admitted.
# It reads check's text report: a header per object ("DENY|ok|warn
# Kind/name (file#N)") followed by indented "denied ..." or "warning ..."
# lines, each carrying one [Code].
verdict() {
  # check exits 1 when it denies; the report is what counts here.
  { check examples/good "$1" 2>/dev/null || true; } | awk -v file="$1" '
    /^[^ ]/ {
      mine = index($NF, "(" file "#") == 1
      if (mine) { seen = 1; if ($1 == "DENY") denied = 1 }
      next
    }
    mine && match($0, /\[[A-Z][A-Za-z0-9]+\]/) {
      code = substr($0, RSTART, RLENGTH)
      if ($1 == "denied") d[code] = 1; else if ($1 == "warning") w[code] = 1
    }
    END {
      if (!seen) exit 1
      print (denied ? "denied" : "admitted")
      if (denied) for (c in d) print c; else for (c in w) print c
    }'
}

log "examples/good: must be admitted"
check examples/good >/dev/null || fail "check denies examples/good with the sample snapshot: the examples and the snapshot disagree"
# The first create may race the webhook's endpoints: retry it a few times.
retry 6 k apply -f examples/good/ >"$work/good.out" 2>&1 || { cat "$work/good.out" >&2; fail "examples/good was not admitted"; }

failures=0
for f in examples/bad/*.yaml; do
  report="$(verdict "$f")" || fail "cannot read check's verdict on $f"
  expect="$(head -n1 <<<"$report")"
  want="$(tail -n +2 <<<"$report" | sort)"
  for mode in server-dry-run apply; do
    args=(apply -f "$f")
    [ "$mode" = server-dry-run ] && args+=(--dry-run=server)
    if k "${args[@]}" >"$work/out" 2>&1; then got=admitted; else got=denied; fi
    problem=""
    if [ "$got" != "$expect" ]; then
      problem="$got, but check says $expect"
    elif [ "$got" = denied ] && ! grep -q 'denied the request' "$work/out"; then
      problem="refused, but not by the webhook"
    else
      for code in $want; do
        grep -qF "$code" "$work/out" || problem="${problem:+$problem; }$code missing from kubectl's output"
      done
    fi
    if [ -n "$problem" ]; then
      echo "e2e: $f ($mode): $problem:" >&2
      cat "$work/out" >&2
      failures=$((failures + 1))
    else
      log "$f ($mode): $got" $want
    fi
  done
done
[ "$failures" = 0 ] || fail "$failures example verdict(s) differ from check's"

log "a label-only update must not reach the webhook"
before="$(webhook_requests)" || fail "reading the webhook metrics"
k label ec2nodeclass --all e2e.nodeclass-guard.io/touched=yes --overwrite >/dev/null || fail "label update refused"
after="$(webhook_requests)" || fail "reading the webhook metrics"
[ "$before" = "$after" ] || fail "the label update reached the webhook ($before -> $after requests): matchConditions do not filter it"

log "deletes must go through"
k delete -f examples/good/ --wait=true --timeout=120s >/dev/null || fail "deleting examples/good"
for f in examples/bad/*.yaml; do
  k delete -f "$f" --ignore-not-found --wait=true --timeout=120s >/dev/null || fail "deleting $f"
done

log "passed"
