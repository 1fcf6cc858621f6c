#!/usr/bin/env bash
# e2e-kind.sh runs nodeclass-guard end to end in a real kind cluster: the
# image built from this tree, installed with the Helm chart (then once more
# with the kustomize base), cert-manager issuing its serving certificate and
# injecting the CA, and the API server calling it through its Service.
#
# The suite, with the Helm chart (live IAM: the webhook asks the local IAM
# endpoint, e2e/kind/iamendpoint, running as a pod, through the AWS SDK):
#   - cert-manager issues the certificate and injects the CA;
#   - examples/good/*.yaml are admitted; examples/bad/*.yaml get, file by
#     file, the verdict `nodeclass-guard check` gives offline on the same
#     snapshot (denied with every denial code in kubectl's error, or admitted
#     with every warning code), server-side dry runs too;
#   - a label-only update does not reach the webhook (matchConditions);
#   - a webhook pod is evicted (the PodDisruptionBudget allows one) while
#     admissions run: the second replica answers every one of them;
#   - the serving certificate is renewed (what `cmctl renew` does: the
#     Issuing condition) while admissions run: zero failures, and every pod
#     serves the new certificate (openssl through a port-forward);
#   - deletes go through; `helm uninstall` leaves no webhook configuration.
# With the kustomize base (IAM snapshot overlay): certificate, CA, the
# examples' verdicts, and `kubectl delete -k` leaves no webhook configuration.
# The webhooks run with failurePolicy Fail, so that an unreachable webhook
# fails the test instead of admitting everything.
#
# Where the cluster's images come from (E2E_IMAGES):
#   local     everything is built here (hack/e2e-images.sh): no registry
#             needed. The default when this script starts dockerd itself.
#   upstream  kind's node image, cert-manager's release manifest and images
#             (needs internet). The default with an already running Docker.
# Docker: when no daemon answers and we are root, Debian's docker.io is
# installed (apt-get) and dockerd started on a private socket with its data
# under bin/e2e-cache/docker, and stopped on exit. Where the host's
# capability bounding set lacks CAP_SYS_RESOURCE (privileged containers fail
# with "unable to apply caps"), that dockerd's default runtime is runcwrap
# (e2e/kind/runcwrap), which drops it.
#
# Tools are built from the tools modules under hack/tools/ at the versions of
# hack/versions.env, and cached under bin/e2e-cache/.
#
# Knobs (environment):
#   E2E_IMAGES               local | upstream (see above)
#   KIND_CLUSTER_NAME        cluster name (nodeclass-guard-e2e); recreated if it exists
#   KIND_NODE_IMAGE          node image (upstream: kind's default)
#   CERT_MANAGER_MANIFEST    upstream: cert-manager install manifest, file or URL
#   E2E_KEEP_CLUSTER=1       leave the cluster (and the dockerd) running afterwards
#   E2E_REQUIRED=1           a missing prerequisite is a failure, not a skip
#   E2E_START_DOCKERD=0      never install or start Docker: skip without a daemon
#   E2E_TIMEOUT              whole run's limit in seconds (5400)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# shellcheck disable=SC1091
source hack/versions.env

cluster="${KIND_CLUSTER_NAME:-nodeclass-guard-e2e}"
ns=nodeclass-guard
iam_ns=ncg-iam
snapshot="$root/testdata/iam/sample-snapshot.json"
# The identity the sample snapshot describes (testdata/iam/sample-snapshot.json).
controller_role="arn:aws:iam::111122223333:role/KarpenterControllerRole"
cluster_name=demo
region=us-west-2
cache="$root/bin/e2e-cache"
work="$root/bin/e2e"
started=$SECONDS

log() { echo "e2e: [$((SECONDS - started))s] $*" >&2; }

skip() {
  if [ "${E2E_REQUIRED:-}" = 1 ]; then
    echo "e2e: failed: $* (E2E_REQUIRED=1)" >&2
    exit 1
  fi
  echo "e2e: skipped: $*"
  exit 0
}

# ---- Docker: a running daemon, or one this run may start (root), or skip.
DOCKER="${DOCKER:-docker}"
if command -v "$DOCKER" >/dev/null 2>&1 && "$DOCKER" info >/dev/null 2>&1; then
  docker_mode=running
elif [ "$(id -u)" = 0 ] && [ "${E2E_START_DOCKERD:-1}" = 1 ]; then
  docker_mode=start
elif [ "$(id -u)" != 0 ]; then
  skip "no Docker daemon ($DOCKER info failed), and not root to start one"
else
  skip "no Docker daemon ($DOCKER info failed), and E2E_START_DOCKERD=0"
fi

for f in "$snapshot" examples/good examples/bad; do
  [ -e "$f" ] || { echo "e2e: failed: $f is missing" >&2; exit 1; }
done
rm -rf "$work"
mkdir -p "$work" "$cache"
export KUBECONFIG="$work/kubeconfig"

# ---- cleanup: the cluster, the load generators, the dockerd we started.
dockerd_pid=""
cluster_created=0
load_pids=()
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  local p
  for p in "${load_pids[@]}" "${watchdog_pid:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  if [ "${E2E_KEEP_CLUSTER:-}" = 1 ]; then
    log "keeping cluster $cluster (KUBECONFIG=$KUBECONFIG${DOCKER_HOST:+, DOCKER_HOST=$DOCKER_HOST})"
  else
    if [ "$cluster_created" = 1 ]; then
      log "deleting cluster $cluster"
      timeout 180 "$KIND" delete cluster --name "$cluster" >/dev/null 2>&1 || log "warning: kind delete cluster failed"
    fi
    if [ -n "$dockerd_pid" ]; then
      log "stopping the dockerd this run started (pid $dockerd_pid)"
      kill "$dockerd_pid" 2>/dev/null || true
      for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$dockerd_pid" 2>/dev/null || true
    fi
  fi
  log "total $((SECONDS - started))s"
  exit "$code"
}
trap cleanup EXIT
# A command of the script's top level failing under set -e says where,
# instead of exiting silently.
trap 'echo "e2e: FAIL: line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
trap 'echo "e2e: FAIL: interrupted, or timed out (E2E_TIMEOUT=${E2E_TIMEOUT:-5400}s)" >&2; exit 130' INT TERM

# The whole run is bounded: past E2E_TIMEOUT the watchdog ends it (cleanup
# runs). Its output goes nowhere, so that it never holds our stdout open.
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "${E2E_TIMEOUT:-5400}" &
  sleeper=$!
  wait "$sleeper" && kill -TERM $$
) >/dev/null 2>&1 &
watchdog_pid=$!

# ---- Docker
has_cap_sys_resource() {
  local bnd
  bnd="$(awk '/^CapBnd:/ {print $2}' /proc/self/status)"
  (((0x$bnd >> 24) & 1))
}
start_dockerd() {
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's docker.io (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$work/apt.log" 2>&1 ||
      { tail -20 "$work/apt.log" >&2; skip "installing docker.io failed"; }
  fi
  local sock=/run/nodeclass-guard-e2e/docker.sock args=()
  mkdir -p /run/nodeclass-guard-e2e "$cache/docker"
  args=(--data-root "$cache/docker" --exec-root /run/nodeclass-guard-e2e/exec
    --pidfile /run/nodeclass-guard-e2e/dockerd.pid -H "unix://$sock")
  if ! has_cap_sys_resource; then
    log "this host's capability bounding set lacks CAP_SYS_RESOURCE: dockerd runs containers through runcwrap"
    mkdir -p "$cache/runcwrap"
    CGO_ENABLED=0 go build -trimpath -o "$cache/runcwrap/runcwrap" ./e2e/kind/runcwrap
    args+=(--add-runtime "runcwrap=$cache/runcwrap/runcwrap" --default-runtime runcwrap)
  fi
  log "starting dockerd (${args[*]})"
  dockerd "${args[@]}" >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$sock"
  # Debian's client matches its daemon and has BuildKit built in.
  [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 1
  done
  tail -20 "$work/dockerd.log" >&2
  echo "e2e: FAIL: dockerd did not start" >&2
  exit 1
}
if [ "$docker_mode" = running ]; then
  log "using the running Docker daemon"
  : "${E2E_IMAGES:=upstream}"
else
  start_dockerd
  : "${E2E_IMAGES:=local}"
fi
export DOCKER
case "$E2E_IMAGES" in local | upstream) ;; *) echo "e2e: E2E_IMAGES must be local or upstream" >&2; exit 2 ;; esac
log "images: $E2E_IMAGES"

# ---- tools, from the tools modules (cached under bin/e2e-cache)
tool_build() { # DIR OUT PKG
  [ -x "$2" ] && return 0
  log "building $(basename "$2") ($1)"
  (cd "$1" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$2.tmp" "$3") && mv "$2.tmp" "$2"
}
KIND="$cache/kind-$KIND_VERSION/kind"
tool_build hack/tools/kind "$KIND" sigs.k8s.io/kind
KUBECTL="$(hack/e2e-images.sh kubectl)"
tools="$(hack/tools.sh)"
HELM="$tools/helm"
KUSTOMIZE="$tools/kustomize"
export KIND

# k: kubectl with every request bounded.
k() { timeout 300 "$KUBECTL" --request-timeout=60s "$@"; }

# ---- images
image="nodeclass-guard:e2e"
log "building nodeclass-guard for the image and the offline verdicts"
mkdir -p "$work/image"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=e2e" -o "$work/nodeclass-guard" ./cmd/nodeclass-guard
if [ "$E2E_IMAGES" = local ]; then
  # The Dockerfile's distroless base and golang builder are not reachable
  # here: the binary built above, on scratch.
  mkdir -p bin/image
  cp "$work/nodeclass-guard" bin/image/nodeclass-guard
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --build-arg BINARY=prebuilt --build-arg BASE_IMAGE=scratch \
    -t "$image" . >/dev/null || { echo "e2e: FAIL: docker build" >&2; exit 1; }
  # What hack/e2e-images.sh runs on the host: debootstrap, containerd and ctr.
  missing=()
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v ctr >/dev/null 2>&1 || missing+=(containerd)
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "hack/e2e-images.sh needs ${missing[*]} (Debian packages)"
    log "installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$work/apt.log" 2>&1 ||
      { tail -20 "$work/apt.log" >&2; fail "installing ${missing[*]}"; }
  fi
  log "building the cluster's images (hack/e2e-images.sh)"
  eval "$(hack/e2e-images.sh)"
  node_image="$NODE_IMAGE"
  cm_images=("$CERT_MANAGER_CONTROLLER_IMAGE" "$CERT_MANAGER_CAINJECTOR_IMAGE")
  iam_image="$IAM_ENDPOINT_IMAGE"
else
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --build-arg VERSION=e2e -t "$image" . >/dev/null ||
    { echo "e2e: FAIL: docker build" >&2; exit 1; }
  node_image="${KIND_NODE_IMAGE:-}"
  cm_images=()
  # The IAM endpoint: a static binary on scratch works with any Docker.
  mkdir -p "$work/iamctx"
  CGO_ENABLED=0 go build -trimpath -o "$work/iamctx/iamendpoint" ./e2e/kind/iamendpoint
  printf 'FROM scratch\nCOPY iamendpoint /iamendpoint\nENTRYPOINT ["/iamendpoint"]\n' >"$work/iamctx/Dockerfile"
  iam_image="nodeclass-guard-e2e/iamendpoint:e2e"
  "$DOCKER" build -q -t "$iam_image" "$work/iamctx" >/dev/null
fi
log "images built"

# ---- diagnostics and failure
dump() {
  log "--- diagnostics"
  k get nodes -o wide >&2 || true
  k get pods -A -o wide >&2 || true
  k -n "$ns" get certificates,certificaterequests,endpoints,pdb -o wide >&2 || true
  k -n "$ns" logs -l app.kubernetes.io/name=nodeclass-guard --all-containers --prefix --tail=100 >&2 || true
  k -n cert-manager logs deploy/cert-manager --tail=50 >&2 || true
  k get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -40 >&2 || true
  k get validatingwebhookconfiguration -o name >&2 || true
}
fail() {
  echo "e2e: FAIL: $*" >&2
  dump
  exit 1
}
# retry N CMD...: runs CMD until it succeeds, N times at most, 5s apart.
retry() {
  local n="$1" i
  shift
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    sleep 5
  done
  return 1
}

# ---- the cluster
if timeout 60 "$KIND" get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "deleting the existing cluster $cluster"
  timeout 180 "$KIND" delete cluster --name "$cluster" >&2
fi
{
  echo "kind: Cluster"
  echo "apiVersion: kind.x-k8s.io/v1alpha4"
  if [ "$E2E_IMAGES" = local ]; then
    # The preloaded images' registry; the pod network is Debian's bridge
    # plugin, configured in the node image, instead of kindnetd.
    echo "networking: {disableDefaultCNI: true, podSubnet: 10.244.0.0/16}"
  fi
  echo "kubeadmConfigPatches:"
  if [ "$E2E_IMAGES" = local ]; then
    printf '  - |\n    kind: ClusterConfiguration\n    imageRepository: %s\n' "$KUBE_IMAGE_REPOSITORY"
  fi
  # Kubernetes 1.35+ refuses cgroup v1 unless told otherwise.
  if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    printf '  - |\n    kind: KubeletConfiguration\n    failCgroupV1: false\n'
  fi
  printf '  - |\n    kind: ClusterConfiguration\n    apiServer:\n      extraArgs:\n        - {name: profiling, value: "false"}\n'
} >"$work/kind.yaml"
log "creating kind cluster $cluster${node_image:+ from $node_image}"
cluster_created=1
timeout 600 "$KIND" create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --config "$work/kind.yaml" \
  --wait 300s ${node_image:+--image "$node_image"} >&2 || fail "kind create cluster"
for img in "$image" "$iam_image" "${cm_images[@]}"; do
  timeout 600 "$KIND" load docker-image "$img" --name "$cluster" >/dev/null 2>&1 || fail "kind load docker-image $img"
done
log "cluster ready; images loaded"

# ---- cert-manager
if [ "$E2E_IMAGES" = local ]; then
  crds="$(cd hack/tools/cert-manager && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)/deploy/crds"
  log "installing cert-manager $CERT_MANAGER_VERSION: CRDs from its module, controller and cainjector built here"
  for f in "$crds"/*.yaml; do
    k apply --server-side -f "$f" >/dev/null || fail "applying $f"
  done
  sed -e "s|CONTROLLER_IMAGE|${cm_images[0]}|" -e "s|CAINJECTOR_IMAGE|${cm_images[1]}|" \
    e2e/kind/cert-manager.yaml | k apply -f - >/dev/null || fail "installing cert-manager"
else
  manifest="${CERT_MANAGER_MANIFEST:-https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml}"
  log "installing cert-manager from $manifest"
  k apply -f "$manifest" >/dev/null || fail "installing cert-manager"
fi
k -n cert-manager wait --for=condition=Available deployment --all --timeout=300s >&2 ||
  fail "cert-manager did not become available"

log "installing the Karpenter CRDs v$KARPENTER_AWS_VERSION (hack/karpenter-crds.sh) and the EKS NodeClass stand-in"
karpenter_crds="$(hack/karpenter-crds.sh)" || fail "fetching the Karpenter CRDs"
for crd in "$karpenter_crds"/v1/*.yaml e2e/crds/eks.amazonaws.com_nodeclasses.yaml; do
  k apply --server-side -f "$crd" >/dev/null || fail "applying CRD $crd"
done
k wait --for=condition=Established crd/ec2nodeclasses.karpenter.k8s.aws crd/nodepools.karpenter.sh \
  crd/nodeclasses.eks.amazonaws.com --timeout=60s >&2 || fail "CRDs not established"

# Karpenter's namespace: the chart and the base give the webhook a Role there
# (reading Karpenter's service account), as a Karpenter install would have it.
k create namespace karpenter >/dev/null || fail "creating namespace karpenter"

# ---- the local IAM endpoint, as a pod
log "starting the IAM endpoint (e2e/kind/iamendpoint) in namespace $iam_ns"
k create namespace "$iam_ns" >/dev/null
k -n "$iam_ns" create configmap iam-snapshot --from-file=snapshot.json="$snapshot" >/dev/null
sed "s|IAM_IMAGE|$iam_image|" e2e/kind/iamendpoint.yaml | k -n "$iam_ns" apply -f - >/dev/null || fail "deploying the IAM endpoint"
k -n "$iam_ns" rollout status deployment/iamendpoint --timeout=180s >&2 || fail "the IAM endpoint did not start"
iam_url="http://iamendpoint.$iam_ns.svc:8080"
iam_calls() { k get --raw "/api/v1/namespaces/$iam_ns/services/iamendpoint:8080/proxy/calls"; }

# ---- helpers of the suite
check() {
  "$work/nodeclass-guard" check --iam-snapshot "$snapshot" --controller-role "$controller_role" \
    --cluster-name "$cluster_name" --region "$region" "$@"
}

# webhook_metric NAME: the sum of metric NAME over the webhook's pods.
webhook_metric() {
  local pod total=0 n
  for pod in $(k -n "$ns" get pods -l app.kubernetes.io/name=nodeclass-guard --field-selector=status.phase=Running -o name); do
    n="$(k get --raw "/api/v1/namespaces/$ns/pods/${pod#pod/}:8080/proxy/metrics" |
      awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $NF} END {printf "%d", s}')" || return 1
    total=$((total + n))
  done
  echo "$total"
}

# verdict FILE: check's verdict on FILE's objects, with examples/good as
# the rest of the cluster: a first line "denied" or "admitted", then the
# codes check reports (denial codes when denied, warning codes when admitted).
verdict() {
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

wait_installed() {
  k -n "$ns" wait --for=condition=Ready certificate --all --timeout=180s >&2 ||
    fail "cert-manager did not issue the certificates"
  k -n "$ns" rollout status deployment/nodeclass-guard --timeout=300s >&2 || fail "the deployment did not become ready"
  local i bundle=""
  for ((i = 0; i < 36; i++)); do
    bundle="$(k get validatingwebhookconfiguration nodeclass-guard -o jsonpath='{.webhooks[*].clientConfig.caBundle}')"
    [ -n "$bundle" ] && break
    sleep 5
  done
  [ -n "$bundle" ] || fail "cert-manager did not inject the CA into the webhook configuration"
  local ca
  ca="$(k -n "$ns" get secret nodeclass-guard-ca -o jsonpath='{.data.ca\.crt}')"
  [ "${bundle%% *}" = "$ca" ] || fail "the injected caBundle is not the CA of nodeclass-guard-ca"
  log "certificate issued by cert-manager, CA injected into the webhook configuration"
}

examples() {
  check examples/good >/dev/null || fail "check denies examples/good with the sample snapshot: the examples and the snapshot disagree"
  # The first create may race the webhook's endpoints: retry it a few times.
  retry 6 k apply -f examples/good/ >"$work/good.out" 2>&1 || { cat "$work/good.out" >&2; fail "examples/good was not admitted"; }
  log "examples/good: admitted"
  local failures=0 f report expect want mode args got problem code
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
}

delete_examples() {
  k delete -f examples/good/ --ignore-not-found --wait=true --timeout=120s >/dev/null || fail "deleting examples/good"
  local f
  for f in examples/bad/*.yaml; do
    k delete -f "$f" --ignore-not-found --wait=true --timeout=120s >/dev/null || fail "deleting $f"
  done
  log "deletes went through"
}

# Load: server-side dry-run creates of a good example and, alternately, a
# bad one, back to back, each answer recorded (ok / FAIL) in a file. An
# admission that is not answered by the webhook with the expected verdict
# counts as a failure.
load_good="examples/good/$(ls examples/good | head -n1)"
load_bad=""
for f in examples/bad/*.yaml; do
  if [ "$(verdict "$f" | head -n1)" = denied ]; then load_bad="$f"; break; fi
done
start_load() { # NAME
  local out="$work/load-$1"
  : >"$out"
  (
    while :; do
      if k apply --dry-run=server -f "$load_good" >/dev/null 2>"$out.err"; then echo ok; else echo "FAIL good: $(tr '\n' ' ' <"$out.err")"; fi
      if [ -n "$load_bad" ]; then
        if k apply --dry-run=server -f "$load_bad" >/dev/null 2>"$out.err"; then
          echo "FAIL bad admitted"
        elif grep -q 'denied the request' "$out.err"; then echo ok; else echo "FAIL bad: $(tr '\n' ' ' <"$out.err")"; fi
      fi
    done >>"$out"
  ) &
  load_pids+=($!)
  load_pid=$!
}
stop_load() { # NAME: stops the load, fails unless every admission was answered
  kill "$load_pid" 2>/dev/null || true
  wait "$load_pid" 2>/dev/null || true
  local out="$work/load-$1" total bad
  total="$(wc -l <"$out")"
  bad="$(grep -c FAIL "$out" || true)"
  [ "$total" -gt 0 ] || fail "$1: no admission was made under load"
  if [ "$bad" != 0 ]; then
    grep FAIL "$out" | head -5 >&2
    fail "$1: $bad of $total admissions failed"
  fi
  log "$1: $total admissions under load, 0 failed"
}

# ---- round 1: the Helm chart, live IAM through the local endpoint
log "installing nodeclass-guard with the Helm chart (live IAM and EKS: $iam_url)"
timeout 300 "$HELM" install nodeclass-guard deploy/charts/nodeclass-guard -n "$ns" --create-namespace \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
  --set controllerRoleARN="$controller_role" --set clusterName="$cluster_name" --set region="$region" \
  --set failurePolicy=Fail \
  --set-json "extraArgs=[\"--iam-endpoint=$iam_url\",\"--eks-endpoint=$iam_url\",\"--ec2-endpoint=$iam_url\",\"--ssm-endpoint=$iam_url\"]" \
  --set-json 'extraEnv=[{"name":"AWS_ACCESS_KEY_ID","value":"AKIAIOSFODNN7EXAMPLE"},{"name":"AWS_SECRET_ACCESS_KEY","value":"e2e-not-a-secret"},{"name":"AWS_EC2_METADATA_DISABLED","value":"true"}]' \
  --wait --timeout 300s >&2 || fail "helm install"
wait_installed
iam_before="$(iam_calls)" || fail "reading the IAM endpoint's call count"
examples
iam_after="$(iam_calls)" || fail "reading the IAM endpoint's call count"
[ "$iam_after" -gt "$iam_before" ] || fail "the webhook never asked the IAM endpoint ($iam_before -> $iam_after calls)"
log "the webhook asked the in-cluster IAM endpoint $((iam_after - iam_before)) times"

log "a label-only update must not reach the webhook"
before="$(webhook_metric controller_runtime_webhook_requests_total)" || fail "reading the webhook metrics"
k label ec2nodeclass --all e2e.nodeclass-guard.io/touched=yes --overwrite >/dev/null || fail "label update refused"
after="$(webhook_metric controller_runtime_webhook_requests_total)" || fail "reading the webhook metrics"
[ "$before" = "$after" ] || fail "the label update reached the webhook ($before -> $after requests): matchConditions do not filter it"

log "evicting a webhook pod under load (PodDisruptionBudget minAvailable 1, 2 replicas)"
allowed="$(k -n "$ns" get pdb nodeclass-guard -o jsonpath='{.status.disruptionsAllowed}')"
[ "$allowed" = 1 ] || fail "the PodDisruptionBudget allows $allowed disruptions, want 1"
start_load eviction
sleep 5
webhook_pods=($(k -n "$ns" get pods -l app.kubernetes.io/name=nodeclass-guard -o jsonpath='{.items[*].metadata.name}'))
[ "${#webhook_pods[@]}" = 2 ] || fail "want two webhook pods, found: ${webhook_pods[*]}"
victim="${webhook_pods[0]}"
other="${webhook_pods[1]}"
k create --raw "/api/v1/namespaces/$ns/pods/$victim/eviction" -f - >/dev/null <<EOF || fail "evicting $victim"
{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "$victim", "namespace": "$ns"}}
EOF
# The PodDisruptionBudget refuses a second eviction until the replacement is ready.
if k create --raw "/api/v1/namespaces/$ns/pods/$other/eviction" -f - >"$work/evict2.out" 2>&1 <<EOF; then
{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "$other", "namespace": "$ns"}}
EOF
  fail "the PodDisruptionBudget allowed evicting the second pod ($other) right after the first"
else
  grep -q 'disruption budget' "$work/evict2.out" || { cat "$work/evict2.out" >&2; fail "the second eviction failed, but not because of the budget"; }
  log "the PodDisruptionBudget refused a second eviction"
fi
k -n "$ns" wait --for=delete "pod/$victim" --timeout=120s >/dev/null || fail "$victim was not deleted"
k -n "$ns" rollout status deployment/nodeclass-guard --timeout=180s >&2 || fail "no replacement for $victim"
sleep 5
stop_load eviction

# served_serial POD: the serial of the certificate POD serves on 9443, read
# through a port-forward on the loopback.
served_serial() {
  local port=$((20000 + RANDOM % 10000)) pf serial
  "$KUBECTL" -n "$ns" port-forward "pod/$1" "$port:9443" >/dev/null 2>&1 &
  pf=$!
  serial=""
  for _ in $(seq 20); do
    serial="$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "nodeclass-guard.$ns.svc" </dev/null 2>/dev/null |
      openssl x509 -noout -serial 2>/dev/null)" && [ -n "$serial" ] && break
    sleep 0.5
  done
  kill "$pf" 2>/dev/null
  wait "$pf" 2>/dev/null
  echo "${serial#serial=}"
}
secret_serial() {
  k -n "$ns" get secret nodeclass-guard-tls -o jsonpath='{.data.tls\.crt}' | base64 -d | openssl x509 -noout -serial | sed 's/^serial=//'
}

log "renewing the serving certificate under load (the Issuing condition, as cmctl renew sets it)"
command -v openssl >/dev/null || fail "openssl is needed to read the served certificates"
old_serial="$(secret_serial)"
for pod in $(k -n "$ns" get pods -l app.kubernetes.io/name=nodeclass-guard -o name); do
  got="$(served_serial "${pod#pod/}")"
  [ "$got" = "$old_serial" ] || fail "${pod#pod/} serves certificate $got, not the Secret's $old_serial"
done
revision="$(k -n "$ns" get certificate nodeclass-guard-serving -o jsonpath='{.status.revision}')"
start_load renewal
sleep 5
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
k -n "$ns" patch certificate nodeclass-guard-serving --subresource=status --type=json -p \
  '[{"op": "add", "path": "/status/conditions/-", "value": {"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "message": "Certificate re-issuance manually triggered (e2e)", "lastTransitionTime": "'"$now"'"}}]' \
  >/dev/null || fail "setting the Issuing condition"
renewed=0
for ((i = 0; i < 36; i++)); do
  r="$(k -n "$ns" get certificate nodeclass-guard-serving -o jsonpath='{.status.revision}')"
  ready="$(k -n "$ns" get certificate nodeclass-guard-serving -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
  if [ "$r" -gt "$revision" ] && [ "$ready" = True ]; then renewed=1; break; fi
  sleep 5
done
[ "$renewed" = 1 ] || fail "the certificate was not renewed (revision $revision)"
new_serial="$(secret_serial)"
[ "$new_serial" != "$old_serial" ] || fail "the certificate's revision changed but the Secret did not"
log "certificate renewed (revision $revision -> $r, serial $old_serial -> $new_serial); waiting for every pod to serve it"
# The kubelet updates the Secret's volume within its sync period; the
# webhook reloads the files when they change.
for pod in $(k -n "$ns" get pods -l app.kubernetes.io/name=nodeclass-guard -o name); do
  pod="${pod#pod/}"
  for ((i = 0; i < 36; i++)); do
    got="$(served_serial "$pod")"
    [ "$got" = "$new_serial" ] && break
    sleep 5
  done
  [ "$got" = "$new_serial" ] || fail "$pod still serves $got, not the renewed $new_serial"
  log "$pod serves the renewed certificate"
done
sleep 5
stop_load renewal

delete_examples

log "uninstalling (helm uninstall)"
timeout 300 "$HELM" uninstall nodeclass-guard -n "$ns" --wait --timeout 180s >&2 || fail "helm uninstall"
left="$(k get validatingwebhookconfigurations,mutatingwebhookconfigurations -o name | grep nodeclass-guard || true)"
[ -z "$left" ] || fail "helm uninstall left webhook configurations behind: $left"
log "helm uninstall left no webhook configuration"
k delete namespace "$ns" --wait=true --timeout=180s >/dev/null || fail "deleting namespace $ns"

# ---- round 2: the kustomize base (IAM snapshot overlay), this image, the
# snapshot's identity (the last occurrence of a flag wins), failurePolicy Fail.
log "installing nodeclass-guard with kustomize (deploy/overlays/snapshot)"
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
"$KUSTOMIZE" build "$work/kustomize" >"$work/manifests.yaml" || fail "kustomize build"
k create namespace "$ns" >/dev/null || fail "creating namespace $ns"
k -n "$ns" create configmap nodeclass-guard-iam-snapshot --from-file=snapshot.json="$snapshot" >/dev/null ||
  fail "creating the snapshot ConfigMap"
retry 12 k apply -f "$work/manifests.yaml" >/dev/null || fail "applying the manifests"
wait_installed
examples
delete_examples
log "uninstalling (kubectl delete)"
k delete -f "$work/manifests.yaml" --ignore-not-found --wait=true --timeout=180s >/dev/null || fail "kubectl delete"
left="$(k get validatingwebhookconfigurations,mutatingwebhookconfigurations -o name | grep nodeclass-guard || true)"
[ -z "$left" ] || fail "kubectl delete left webhook configurations behind: $left"
log "kubectl delete left no webhook configuration"

log "passed"
