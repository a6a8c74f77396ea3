# shellcheck shell=bash
# The node half of scripts/kube-env (`up --node`): controller-manager, scheduler, containerd, runc
# and a kubelet on this machine, sourced by scripts/kube-env (which provides log, die,
# start_process, running, wait_until, stop_pid, build_component and $STATE_DIR).
#
# Isolation from the machine, so that `down` can leave nothing behind:
# - containerd and the kubelet run in a mount namespace of their own ("node-ns") whose mounts are
#   all shared, as on a systemd host (this machine's root is private, which Bidirectional and
#   HostToContainer volumes refuse). /run, /var/lib and /var/log are private directories of the
#   state dir there, so the node's files (kubelet, containerd, CNI, hostPath volumes such as
#   /var/lib/lxcfs-ts) never touch the machine's, and every mount the node makes (overlays,
#   secrets, network namespaces, FUSE) disappears with its processes.
# - Pods live in the cgroup /lxcfs-ts-node of every v1 hierarchy (the kubelet's --cgroup-root).
# - The pod network is one bridge with a host address (the node IP) and a host-local range:
#   no default route, no forwarding, no masquerade. There is no kube-proxy: pods reach the API
#   server at the `kubernetes` Service address, which the bridge also carries, through a small
#   forwarder to loopback (scripts/lib/tcp-forward.mjs); the API server reaches webhook pods at
#   their endpoints (--enable-aggregator-routing). No NAT, so nothing is connection-tracked.
# - An nftables table of our own (stateless rules) rejects traffic to 169.254.0.0/16 (cloud
#   metadata) and to the rest of the Service range, and drops every new connection from pods to
#   the host except to the API server's forwarder. The kubelet always runs with
#   AWS_EC2_METADATA_DISABLED=true.
# - The three sysctls the kubelet sets are recorded before it starts and restored by `down`.

NODE_NAME=lxcfs-ts-node
NODE_BRIDGE=lxcfsts-br0
NODE_IP=10.88.0.1
POD_SUBNET=10.88.0.0/24
SERVICE_RANGE=10.0.0.0/24
KUBERNETES_SERVICE_IP=10.0.0.1
NODE_CGROUP=lxcfs-ts-node
NFT_TABLE=lxcfs_ts_node
KUBELET_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
NODE_PACKAGES=(containerd runc containernetworking-plugins nftables iproute2 util-linux gcc libc6-dev)
NODE_IMAGES=(pause procps busybox app)

node_dir() { echo "$STATE_DIR/node"; }
containerd_socket() { echo "$(node_dir)/run/containerd/containerd.sock"; }
ctr_node() { ctr --address "$(containerd_socket)" --namespace k8s.io "$@"; }
node_ns_pid() { cat "$STATE_DIR/node-ns.pid"; }
in_node_ns() { nsenter --target "$(node_ns_pid)" --mount -- "$@"; }

# --- refusing to start next to another node ------------------------------------------------------

check_node_free() {
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 &&
    die "network link $NODE_BRIDGE exists: another kube-env node runs on this machine (one per machine)"
  nft list table inet "$NFT_TABLE" >/dev/null 2>&1 &&
    die "nftables table $NFT_TABLE exists: another kube-env node runs on this machine (one per machine)"
  local port
  for port in 10250 10248; do
    port_free "$port" || die "port $port (kubelet) is in use"
  done
  [ -d "/sys/fs/cgroup/memory/$NODE_CGROUP" ] &&
    die "cgroup $NODE_CGROUP exists: another kube-env node runs on this machine, or one was not torn down"
  return 0
}

# --- PKI and kubeconfigs --------------------------------------------------------------------------

# client_cert NAME SUBJECT: a client certificate signed by the cluster CA.
client_cert() {
  local pki="$STATE_DIR/pki" name=$1 subject=$2
  (
    cd "$pki"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
    printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=digitalSignature,keyEncipherment" >client.ext
    openssl x509 -req -sha256 -days 365 -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
      -extfile client.ext -out "$name.crt" 2>/dev/null
  )
}

# component_kubeconfig NAME: a kubeconfig authenticating with NAME's client certificate.
component_kubeconfig() {
  local name=$1 pki="$STATE_DIR/pki"
  cat >"$STATE_DIR/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-env
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $name
  user:
    client-certificate: $pki/$name.crt
    client-key: $pki/$name.key
contexts:
- name: kube-env
  context: {cluster: kube-env, user: $name}
current-context: kube-env
EOF
}

make_node_pki() {
  client_cert kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  client_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  client_cert controller-manager "/CN=system:kube-controller-manager"
  client_cert scheduler "/CN=system:kube-scheduler"
  local c
  for c in kubelet controller-manager scheduler; do component_kubeconfig "$c"; done
}

# Extra kube-apiserver flags when it serves a node.
apiserver_node_flags() {
  local pki="$STATE_DIR/pki"
  echo --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP --enable-aggregator-routing=true
}

# --- control plane --------------------------------------------------------------------------------

# Its FlexVolume directory defaults to /usr/libexec/kubernetes/..., which it creates on the
# machine (it runs outside the node's mount namespace): kept in the state directory instead.
start_controller_manager() {
  local bin=$1 pki="$STATE_DIR/pki" kc="$STATE_DIR/controller-manager.kubeconfig"
  start_process kube-controller-manager "$bin" --kubeconfig "$kc" --authentication-kubeconfig "$kc" \
    --authorization-kubeconfig "$kc" --bind-address 127.0.0.1 --port 0 --secure-port 10257 \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --controllers '*,-nodeipam' --allocate-node-cidrs=false --cert-dir "$STATE_DIR/certdir-cm" \
    --flex-volume-plugin-dir "$STATE_DIR/volume-plugins-cm"
}

start_scheduler() {
  local bin=$1 kc="$STATE_DIR/scheduler.kubeconfig"
  start_process kube-scheduler "$bin" --kubeconfig "$kc" --authentication-kubeconfig "$kc" \
    --authorization-kubeconfig "$kc" --bind-address 127.0.0.1 --port 0 --secure-port 10259 \
    --leader-elect=false --cert-dir "$STATE_DIR/certdir-scheduler"
}

# --- network --------------------------------------------------------------------------------------

start_network() {
  echo network >>"$STATE_DIR/components"
  ip link add "$NODE_BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip addr add "$KUBERNETES_SERVICE_IP/32" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  nft -f - <<EOF
table inet $NFT_TABLE {
  chain output {
    type filter hook output priority filter; policy accept;
    ip daddr 169.254.0.0/16 reject
    ip daddr $KUBERNETES_SERVICE_IP return
    ip daddr $SERVICE_RANGE reject
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip daddr 169.254.0.0/16 reject
    iifname "$NODE_BRIDGE" drop
    oifname "$NODE_BRIDGE" drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname != "$NODE_BRIDGE" return
    ip daddr $KUBERNETES_SERVICE_IP tcp dport 443 accept
    tcp flags & (syn | ack) == syn drop
    meta l4proto tcp accept
    icmp type { destination-unreachable, time-exceeded, parameter-problem } accept
    drop
  }
}
EOF
  mkdir -p "$STATE_DIR/cni"
  cat >"$STATE_DIR/cni/10-lxcfs-ts-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "lxcfs-ts-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "$SERVICE_RANGE", "gw": "$NODE_IP" }]
      }
    },
    { "type": "loopback" }
  ]
}
EOF
  start_process api-forward node "$REPO_DIR/scripts/lib/tcp-forward.mjs" "$KUBERNETES_SERVICE_IP:443" \
    "127.0.0.1:$APISERVER_PORT"
}

stop_network() {
  nft delete table inet "$NFT_TABLE" 2>/dev/null || true
  # Pods' veth ends leave with their network namespaces; wait for them before removing the bridge.
  local i
  for i in $(seq 1 50); do
    [ -z "$(ip -o link show master "$NODE_BRIDGE" 2>/dev/null)" ] && break
    sleep 0.1
  done
  ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 |
    while read -r link; do ip link del "$link" 2>/dev/null || true; done || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
}

# --- cgroups and sysctls --------------------------------------------------------------------------

# The cgroup v1 (and hybrid cgroup2) hierarchies of this machine.
cgroup_hierarchies() {
  awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo | sort -u
}

start_cgroups() {
  echo cgroups >>"$STATE_DIR/components"
  local h
  for h in $(cgroup_hierarchies); do
    [ -f "$h/cgroup.controllers" ] && continue # the hybrid cgroup2 mount: runc makes what it needs
    mkdir "$h/$NODE_CGROUP"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h/$NODE_CGROUP/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h/$NODE_CGROUP/cpuset.mems"
    fi
  done
}

# Kills every process in the node's cgroups (the pods' containers), until none is left.
kill_node_containers() {
  local pids i
  for i in $(seq 1 50); do
    # Cgroups come and go while containers die: find and cat may fail on some, never mind.
    pids=$(find /sys/fs/cgroup/ -path "*/$NODE_CGROUP/*" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  log "warning: processes remain in the node's cgroups: $pids"
}

# Removes the node's cgroups depth first.
stop_cgroups() {
  kill_node_containers
  local h
  for h in $(cgroup_hierarchies); do
    [ -d "$h/$NODE_CGROUP" ] || continue
    find "$h/$NODE_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$h/$NODE_CGROUP" ] && log "warning: could not remove cgroup $h/$NODE_CGROUP"
  done
  return 0
}

start_sysctls() {
  echo sysctls >>"$STATE_DIR/components"
  local s
  for s in "${KUBELET_SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$STATE_DIR/sysctls"
}

stop_sysctls() {
  [ -f "$STATE_DIR/sysctls" ] || return 0
  local line
  while read -r line; do sysctl -qw "$line" || log "warning: could not restore $line"; done <"$STATE_DIR/sysctls"
}

# --- the node's mount namespace, containerd and kubelet -------------------------------------------

start_node_ns() {
  local dir
  dir=$(node_dir)
  mkdir -p "$dir/run" "$dir/var-lib" "$dir/var-log"
  start_process node-ns unshare --mount --propagation shared sleep infinity
  local i
  for i in $(seq 1 50); do
    [ "$(readlink "/proc/$(node_ns_pid)/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break
    sleep 0.05
  done
  # Each bind becomes a peer group of its own: a bind of a directory of a shared mount would
  # otherwise join the root's group, and every mount below it would show up twice.
  in_node_ns sh -ec "
    for pair in run:/run var-lib:/var/lib var-log:/var/log; do
      mount --bind '$dir/'\${pair%%:*} \${pair#*:}
      mount --make-private \${pair#*:}
      mount --make-shared \${pair#*:}
    done"
}

stop_node_ns() {
  [ -f "$STATE_DIR/node-ns.pid" ] || return 0
  local holder ns p i
  holder=$(node_ns_pid)
  ns=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null) || return 0
  # Anything still in the node's mount namespace (containerd shims) goes with it.
  for i in $(seq 1 50); do
    local left=()
    for p in /proc/[0-9]*; do
      [ "${p#/proc/}" = "$holder" ] && continue
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && left+=("${p#/proc/}")
    done
    [ "${#left[@]}" -eq 0 ] && break
    kill -KILL "${left[@]}" 2>/dev/null || true
    sleep 0.1
  done
  stop_pid "$holder"
}

write_containerd_config() {
  local restrict=false
  # Without CAP_SYS_RESOURCE in the bounding set (some sandboxes), runc cannot lower a sandbox's
  # oom_score_adj below the runtime's own; containerd must then clamp it.
  local capbnd
  capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (((0x$capbnd >> 24) & 1)) || restrict=true
  cat >"$STATE_DIR/containerd.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.local/pause:3.2"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = $restrict
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni"
    max_conf_num = 1
EOF
}

start_containerd() {
  start_process containerd nsenter --target "$(node_ns_pid)" --mount -- \
    containerd --config "$STATE_DIR/containerd.toml"
  wait_until 30 containerd ctr --address "$(containerd_socket)" version
}

# Kills every container first (by their cgroups: quicker than asking containerd task by task),
# then containerd. The shims outlive it; they go with the node's mount namespace.
stop_containerd() {
  kill_node_containers
  stop_pid "$(cat "$STATE_DIR/containerd.pid")"
}

# Builds (cached) the images named and imports them into the node's containerd. One build at a
# time per cache (another checkout may be building into it).
import_images() {
  local archive="$STATE_DIR/images.tar"
  mkdir -p "$CACHE_DIR/images"
  flock "$CACHE_DIR/images/.lock" node "$REPO_DIR/scripts/oci-image.mjs" --out "$archive" \
    --cache "$CACHE_DIR/images" "$@" >&2
  ctr_node images import "$archive" >/dev/null
  rm -f "$archive"
}

write_kubelet_config() {
  cat >"$STATE_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE_DIR/pki/ca.crt}
authorization: {mode: Webhook}
makeIPTablesUtilChains: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 2s
serializeImagePulls: false
EOF
}

start_kubelet() {
  local bin=$1
  start_process kubelet env AWS_EC2_METADATA_DISABLED=true \
    nsenter --target "$(node_ns_pid)" --mount -- \
    "$bin" --config "$STATE_DIR/kubelet-config.yaml" --kubeconfig "$STATE_DIR/kubelet.kubeconfig" \
    --container-runtime remote --container-runtime-endpoint unix:///run/containerd/containerd.sock \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --pod-infra-container-image k8s.local/pause:3.2 \
    --volume-plugin-dir /var/lib/kubelet/volume-plugins
}

kubelet_healthy() { [ "$(curl -sf --max-time 2 http://127.0.0.1:10248/healthz)" = ok ]; }

node_ready() {
  [ "$(kubectl --kubeconfig "$STATE_DIR/kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# The node's processes: its mount namespace, containerd (and the images), the kubelet.
start_node_processes() {
  local kubelet=$1
  start_node_ns
  start_containerd
  # Images are built and imported while the kubelet starts (no pod needs them before it is up).
  local images=
  if [ "${2:-}" = --import-images ]; then
    import_images "${NODE_IMAGES[@]}" &
    images=$!
  fi
  start_kubelet "$kubelet"
  # After a restart the API may still show the node Ready from before: the kubelet's own health first.
  wait_until 120 kubelet kubelet_healthy
  wait_until 120 kubelet node_ready
  if [ -n "$images" ]; then
    local t0=$SECONDS
    wait "$images" || die "building or importing the images failed"
    log "images ready $((SECONDS - t0)) s after the node"
  fi
}

# Stops the node as a reboot would: every container, containerd, the kubelet and every mount.
# The API objects and the node's disk (/var/lib) stay; /run is emptied.
stop_node_processes() {
  local name
  for name in kubelet containerd node-ns; do
    grep -qx "$name" "$STATE_DIR/components" || continue
    log "stopping $name"
    stop_component "$name" || log "warning: stopping $name failed"
    sed -i "/^$name\$/d" "$STATE_DIR/components"
  done
  rm -rf "$(node_dir)/run"
  mkdir -p "$(node_dir)/run"
}

# Before anything starts: packages, binaries (built once per version), and no other node here.
NODE_BINS=()
prepare_node() {
  ensure_packages "${NODE_PACKAGES[@]}"
  local c
  for c in "${NODE_COMPONENTS[@]}"; do NODE_BINS+=("$(build_component "$c")"); done
  check_node_free
}

# Everything of the node after the API server (whose flags and certificates it provides).
start_node() {
  start_controller_manager "${NODE_BINS[0]}"
  start_scheduler "${NODE_BINS[1]}"
  start_network
  start_cgroups
  start_sysctls
  write_containerd_config
  write_kubelet_config
  start_node_processes "${NODE_BINS[2]}" --import-images
  echo node >"$STATE_DIR/mode"
}
