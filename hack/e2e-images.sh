#!/usr/bin/env bash
# e2e-images.sh builds, on a machine where no image registry can be reached,
# every image the kind e2e needs (hack/e2e-kind.sh calls it; E2E_IMAGES=local):
#
#   the kind node image     a Debian bookworm root filesystem (debootstrap),
#                           kind's base-image files (from its Go module),
#                           kubelet, kubeadm and kubectl built from the pinned
#                           Kubernetes module, Debian's containerd 1.6, runc and
#                           CNI plugins, and the control-plane and addon images
#                           below preloaded into containerd;
#   control plane, addons   kube-apiserver, kube-controller-manager,
#                           kube-scheduler, kube-proxy, etcd, CoreDNS and pause,
#                           as $E2E_REGISTRY/<name>:<version> (the cluster's
#                           kubeadm imageRepository);
#   cert-manager            controller and cainjector (hack/tools/cert-manager);
#   iamendpoint             the local IAM endpoint (e2e/kind/iamendpoint).
#
# Binaries come from the tools modules under hack/tools/ (go.mod and go.sum
# committed, -mod=readonly) at the versions in hack/versions.env. Everything
# is cached under bin/e2e-cache/, keyed by those versions and by the hash of
# the inputs, so a second run builds nothing. It prints KEY=VALUE lines
# (NODE_IMAGE=..., CERT_MANAGER_CONTROLLER_IMAGE=...) for hack/e2e-kind.sh.
# `hack/e2e-images.sh kubectl` builds only kubectl and prints its path.
#
# Needs root (debootstrap), Docker, Debian's debootstrap and containerd
# packages (hack/e2e-kind.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# shellcheck disable=SC1091
source hack/versions.env

DOCKER="${DOCKER:-docker}"
registry="${E2E_REGISTRY:-e2e.local}"
cache="$root/bin/e2e-cache"
mkdir -p "$cache"

log() { echo "e2e-images: $*" >&2; }
# timed LABEL CMD...: runs CMD, logging what it does and how long it took.
timed() {
  local label="$1" start=$SECONDS
  shift
  log "$label ..."
  "$@"
  log "$label: done in $((SECONDS - start))s"
}
# hash FILE...: a short hash of the files' contents.
hash() { cat "$@" | sha256sum | cut -c1-12; }
have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

k8s_version="v$KUBERNETES_VERSION"
k8s_minor="${KUBERNETES_VERSION#*.}"
k8s_minor="${k8s_minor%%.*}"
k8s_bin="$cache/kubernetes-$k8s_version"
etcd_bin="$cache/etcd-v$ETCD_VERSION"
coredns_bin="$cache/coredns-$COREDNS_VERSION"
# Our own mains (cert-manager's controller and cainjector, pause, the IAM
# endpoint, runcwrap) are keyed by their sources too.
cm_key="$(hash hack/tools/cert-manager/go.sum hack/tools/cert-manager/*/main.go)"
cm_bin="$cache/cert-manager-$CERT_MANAGER_VERSION-$cm_key"
own_bin="$cache/own-$(hash go.sum $(git ls-files e2e/kind e2e/iamserver authz | grep '\.go$' | grep -v _test.go))"

# gobuild DIR OUT LDFLAGS PKG...: builds the packages of the tools module in
# DIR into the folder OUT (one binary per package, named after it), unless
# every one of them is there already.
gobuild() {
  local dir="$1" out="$2" ldflags="$3" pkg missing=0
  shift 3
  for pkg in "$@"; do [ -x "$out/${pkg##*/}" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  mkdir -p "$out.tmp"
  (cd "$dir" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" "$@")
  mkdir -p "$out"
  mv "$out.tmp"/* "$out/"
  rmdir "$out.tmp"
}

# ---- binaries
k8s_ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
if [ "${1:-}" = kubectl ]; then
  # Only kubectl, for the scripts that talk to any cluster.
  timed "kubectl $k8s_version (hack/tools/kubernetes)" \
    gobuild hack/tools/kubernetes "$k8s_bin" "$k8s_ldflags" k8s.io/kubernetes/cmd/kubectl
  echo "$k8s_bin/kubectl"
  exit 0
fi
k8s_cmds=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
timed "Kubernetes $k8s_version: ${k8s_cmds[*]} (hack/tools/kubernetes; 10 to 30 minutes on 2 cores when the build cache is cold)" \
  gobuild hack/tools/kubernetes "$k8s_bin" "$k8s_ldflags" "${k8s_cmds[@]/#/k8s.io/kubernetes/cmd/}"
# go build names the binary of go.etcd.io/etcd/server/v3 "server".
if [ ! -x "$etcd_bin/etcd" ]; then
  timed "etcd v$ETCD_VERSION (hack/tools/etcd)" \
    gobuild hack/tools/etcd "$etcd_bin" "-s -w" go.etcd.io/etcd/server/v3
  mv "$etcd_bin/server" "$etcd_bin/etcd"
fi
timed "CoreDNS $COREDNS_VERSION (hack/tools/coredns)" \
  gobuild hack/tools/coredns "$coredns_bin" "-s -w" github.com/coredns/coredns
timed "cert-manager $CERT_MANAGER_VERSION controller and cainjector (hack/tools/cert-manager)" \
  gobuild hack/tools/cert-manager "$cm_bin" "-s -w -X main.version=$CERT_MANAGER_VERSION" ./controller ./cainjector
timed "pause, iamendpoint, runcwrap (e2e/kind)" \
  gobuild . "$own_bin" "-s -w" ./e2e/kind/pause ./e2e/kind/iamendpoint ./e2e/kind/runcwrap

# ---- images of static binaries: FROM scratch.
# scratch_image IMAGE BINARY [ENTRYPOINT]: an image holding BINARY as
# /usr/local/bin/<name>, PATH set, run as root (as upstream's images are).
scratch_image() {
  local image="$1" binary="$2" name ctx
  name="$(basename "$binary")"
  have_image "$image" && return 0
  ctx="$(mktemp -d)"
  cp "$binary" "$ctx/$name"
  cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY $name /usr/local/bin/$name
ENV PATH=/usr/local/bin:/usr/bin:/bin
ENTRYPOINT ["/usr/local/bin/$name"]
EOF
  DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$image" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# ---- the Debian root filesystem: the node image's base, and kube-proxy's
# (which needs iptables).
packages=systemd,systemd-sysv,dbus,iproute2,iptables,nftables,conntrack,ethtool,kmod,socat,util-linux,mount,libseccomp2,bash,ca-certificates,procps,containerd,runc,containernetworking-plugins
rootfs_key="$(echo "bookworm $packages" | sha256sum | cut -c1-12)"
rootfs_tar="$cache/rootfs-bookworm-$rootfs_key.tar"
rootfs_image="$registry/debian-rootfs:bookworm-$rootfs_key"
make_rootfs() {
  local dir="$cache/rootfs.tmp"
  rm -rf "$dir"
  debootstrap --variant=minbase --include="$packages" bookworm "$dir" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; return 1; }
  rm -rf "$dir/var/cache/apt/archives"/*.deb "$dir/var/lib/apt/lists"/*
  tar -C "$dir" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$dir"
}
[ -f "$rootfs_tar" ] || timed "Debian bookworm root filesystem (debootstrap: $packages)" make_rootfs
have_image "$rootfs_image" || timed "importing $rootfs_image" \
  "$DOCKER" import "$rootfs_tar" "$rootfs_image" >/dev/null

# ---- control-plane and addon images
images=(
  "$registry/kube-apiserver:$k8s_version=$k8s_bin/kube-apiserver"
  "$registry/kube-controller-manager:$k8s_version=$k8s_bin/kube-controller-manager"
  "$registry/kube-scheduler:$k8s_version=$k8s_bin/kube-scheduler"
  "$registry/etcd:$ETCD_VERSION-0=$etcd_bin/etcd"
  "$registry/coredns:$COREDNS_VERSION=$coredns_bin/coredns"
  "$registry/pause:$PAUSE_VERSION=$own_bin/pause"
)
own_tag="$(basename "$own_bin")"
own_tag="${own_tag#own-}"
extra_images=(
  "$registry/cert-manager-controller:$CERT_MANAGER_VERSION-$cm_key=$cm_bin/controller"
  "$registry/cert-manager-cainjector:$CERT_MANAGER_VERSION-$cm_key=$cm_bin/cainjector"
  "$registry/iamendpoint:$own_tag=$own_bin/iamendpoint"
)
build_images() {
  local spec
  for spec in "${images[@]}" "${extra_images[@]}"; do
    scratch_image "${spec%%=*}" "${spec#*=}"
  done
  kube_proxy_image="$registry/kube-proxy:$k8s_version"
  if ! have_image "$kube_proxy_image"; then
    local ctx
    ctx="$(mktemp -d)"
    cp "$k8s_bin/kube-proxy" "$ctx/"
    printf 'FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\n' "$rootfs_image" >"$ctx/Dockerfile"
    DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$kube_proxy_image" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
}
kube_proxy_image="$registry/kube-proxy:$k8s_version"
timed "control-plane, addon, cert-manager and iamendpoint images" build_images

# ---- the node image
kind_dir="$(cd hack/tools/kind && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' sigs.k8s.io/kind)"
kind_version="$(cd hack/tools/kind && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' sigs.k8s.io/kind)"
node_key="$(cat hack/versions.env hack/e2e-images.sh "$k8s_bin/kubelet" | sha256sum | cut -c1-12)"
node_image="$registry/kind-node:$k8s_version-$node_key"

# preload STAGE: imports the control-plane and addon images into a
# containerd store under STAGE/var/lib/containerd (namespace k8s.io, not
# unpacked: the node's containerd unpacks them on first use), with a
# containerd of the host's run for this alone, on its own socket.
preload() {
  local stage="$1" run spec pid i
  run="$(mktemp -d)"
  mkdir -p "$stage/var/lib/containerd"
  printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$run/config.toml"
  containerd --config "$run/config.toml" --root "$stage/var/lib/containerd" --state "$run/state" \
    --address "$run/containerd.sock" >"$run/containerd.log" 2>&1 &
  pid=$!
  for ((i = 0; i < 50; i++)); do
    [ -S "$run/containerd.sock" ] && break
    sleep 0.2
  done
  for spec in "${images[@]}" "$kube_proxy_image="; do
    "$DOCKER" save "${spec%%=*}" |
      ctr --address "$run/containerd.sock" -n k8s.io images import --no-unpack --all-platforms - >/dev/null ||
      { kill "$pid"; cat "$run/containerd.log" >&2; return 1; }
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$run"
}

build_node() {
  local ctx
  ctx="$(mktemp -d -p "$cache")"
  # kind's base-image files, from its module at the pinned version.
  cp -r "$kind_dir/images/base/files" "$ctx/files"
  chmod -R u+w "$ctx/files"
  mkdir -p "$ctx/bin"
  cp "$k8s_bin/kubelet" "$k8s_bin/kubeadm" "$k8s_bin/kubectl" "$ctx/bin/"
  echo "$k8s_version" >"$ctx/version"
  # containerd 1.6 (Debian's): CRI with overlayfs and systemd cgroups like
  # kind's own configuration, the preloaded pause image as sandbox, and
  # restrict_oom_score_adj, since lowering oom_score_adj needs
  # CAP_SYS_RESOURCE, which a node lacks on hosts without it.
  cat >"$ctx/containerd.toml" <<EOF
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$registry/pause:$PAUSE_VERSION"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
EOF
  # Pod network: Debian's bridge plugin (the cluster has one node; kind's
  # default CNI, kindnetd, is disabled).
  cat >"$ctx/10-bridge.conflist" <<'EOF'
{
  "cniVersion": "0.4.0",
  "name": "e2e-bridge",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  timed "preloading the control-plane and addon images" preload "$ctx/preload"
  cat >"$ctx/Dockerfile" <<EOF
FROM $rootfs_image
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
COPY containerd.toml /etc/containerd/config.toml
COPY 10-bridge.conflist /etc/cni/net.d/10-bridge.conflist
COPY bin/ /usr/bin/
COPY version /kind/version
COPY preload/var/lib/containerd/ /var/lib/containerd/
RUN chmod 0755 /usr/local/bin/* /kind/bin/* \\
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \\
 && find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo ReadKMsg=no >>/etc/systemd/journald.conf \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
EOF
  DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$node_image" "$ctx" >/dev/null
  rm -rf "$ctx"
}
have_image "$node_image" || timed "node image $node_image (kind $kind_version base files)" build_node

echo "NODE_IMAGE=$node_image"
echo "KUBE_IMAGE_REPOSITORY=$registry"
echo "CERT_MANAGER_CONTROLLER_IMAGE=${extra_images[0]%%=*}"
echo "CERT_MANAGER_CAINJECTOR_IMAGE=${extra_images[1]%%=*}"
echo "IAM_ENDPOINT_IMAGE=${extra_images[2]%%=*}"
