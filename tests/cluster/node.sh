# shellcheck shell=bash
# A real node for the private control plane: containerd (+ Debian's runc), the CNI bridge,
# a kubelet that registers with the API server, kube-scheduler, and the DNAT rules that stand in
# for kube-proxy where Pods need it (the `kubernetes` Service, moto and PostgreSQL on loopback).
# Sourced by up.sh (node_start) and down.sh (node_clean); every name that lives outside DIR
# carries the set's slot number N, so two sets on one machine never share a bridge, subnet,
# iptables chain, cgroup, node name or Service range:
#
#   node name  orkestra-node-N             bridge   orkbrN (10.244.N.0/24, gateway .1)
#   cgroups    /sys/fs/cgroup/*/orkestra-N  iptables nat chain ORKESTRA-N
#   Services   10.(100+N).0.0/24 (the `kubernetes` Service is its .1)
#
# There is no kube-proxy and no cluster DNS: ClusterIPs other than the `kubernetes` Service
# are not routed. Pods reach the API server at $KUBERNETES_SERVICE_HOST:443, moto at
# AWS_ENDPOINT_URL_IN_CLUSTER and PostgreSQL at DATABASE_URL_IN_CLUSTER (both via the gateway).

SLOTS_DIR="${ORKESTRA_SLOTS_DIR:-/run/orkestra-test/slots}"

# slot_claim DIR: prints a free slot number 0..99 and records DIR as its owner. A slot whose
# owner directory is gone or no longer names it is stale and reused.
slot_claim() {
	local dir="$1" n owner
	mkdir -p "$SLOTS_DIR"
	for n in $(seq 0 99); do
		if owner="$(cat "$SLOTS_DIR/$n" 2>/dev/null)"; then
			[ "$owner" = "$dir" ] && { echo "$n"; return 0; }
			[ -d "$owner" ] && [ "$(cat "$owner/slot" 2>/dev/null)" = "$n" ] && continue
			rm -f "$SLOTS_DIR/$n"
		fi
		if (set -o noclobber; printf '%s\n' "$dir" >"$SLOTS_DIR/$n") 2>/dev/null; then
			echo "$n"
			return 0
		fi
	done
	die "no free slot in $SLOTS_DIR (100 test sets running?)"
}

slot_release() { # slot_release DIR N
	[ "$(cat "$SLOTS_DIR/$2" 2>/dev/null)" = "$1" ] && rm -f "$SLOTS_DIR/$2"
	return 0
}

# Each cgroup v1 hierarchy (or the v2 root) under which the node's cgroup root is made.
cgroup_hierarchies() {
	local d
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		echo /sys/fs/cgroup
		return
	fi
	for d in /sys/fs/cgroup/*; do
		[ -d "$d" ] && [ ! -L "$d" ] && [ -f "$d/cgroup.procs" ] && echo "$d"
	done
}

node_start() {
	[ "$(id -u)" = 0 ] || die "the node (kubelet, containerd) needs root; use --only kube,moto,postgres without it"
	ensure_node_packages "$dir/logs/node-install.log"
	"$here/build-deps.sh" "${NODE_COMPONENTS[@]}"
	local n="$slot" node="orkestra-node-$slot" bridge="orkbr$slot" subnet="10.244.$slot" chain="ORKESTRA-$slot"
	local nd="$dir/node" cbin cni_bin sock kubelet_port healthz_port sched_port
	cbin="$(component_dir containerd)"
	cni_bin="$(component_dir cni-plugins)"
	sock="$nd/containerd.sock"
	mkdir -p "$nd"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs,volume-plugins,runc}
	read -r kubelet_port healthz_port sched_port <<<"$(free_ports 3)"
	printf '%s\n' "$node" >"$dir/node-name"

	# Images: pause, web and shell are rebuilt when missing (seconds); the agent only by images.sh.
	if [ ! -f "$ORKESTRA_IMAGES/pause.tar" ] || [ ! -f "$ORKESTRA_IMAGES/web.tar" ] || [ ! -f "$ORKESTRA_IMAGES/shell.tar" ]; then
		current=images
		"$here/images.sh" build >>"$dir/logs/images.log" 2>&1 || die "building the node's images failed (see $dir/logs/images.log)"
	fi

	current=node-network
	# route_localnet lets DNAT to 127.0.0.1 work for packets from the bridge and from this host.
	[ -f "$dir/route_localnet.before" ] || sysctl -n net.ipv4.conf.all.route_localnet >"$dir/route_localnet.before"
	sysctl -qw net.ipv4.conf.all.route_localnet=1
	iptables -w -t nat -N "$chain" 2>/dev/null || iptables -w -t nat -F "$chain"
	iptables -w -t nat -A "$chain" -d "$service_ip" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$apiserver_port"
	if [ -n "${moto_port:-}" ]; then
		iptables -w -t nat -A "$chain" -i "$bridge" -d "$subnet.1" -p tcp --dport "$moto_port" -j DNAT --to-destination "127.0.0.1:$moto_port"
		env_lines+=("AWS_ENDPOINT_URL_IN_CLUSTER=http://$subnet.1:$moto_port")
	fi
	if [ -n "${postgres_port:-}" ]; then
		iptables -w -t nat -A "$chain" -i "$bridge" -d "$subnet.1" -p tcp --dport "$postgres_port" -j DNAT --to-destination "127.0.0.1:$postgres_port"
		env_lines+=("DATABASE_URL_IN_CLUSTER=postgres://postgres:orkestra@$subnet.1:$postgres_port/postgres")
	fi
	iptables -w -t nat -C PREROUTING -j "$chain" 2>/dev/null || iptables -w -t nat -I PREROUTING -j "$chain"
	iptables -w -t nat -C OUTPUT -j "$chain" 2>/dev/null || iptables -w -t nat -I OUTPUT -j "$chain"
	cat >"$nd/cni/net.d/10-orkestra.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "orkestra-$n", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$nd/cni/ipam",
            "ranges": [[{"subnet": "$subnet.0/24", "gateway": "$subnet.1"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON

	local h
	for h in $(cgroup_hierarchies); do mkdir -p "$h/orkestra-$n"; done

	cat >"$nd/containerd.toml" <<TOML
version = 4
root = "$nd/containerd/root"
state = "$nd/containerd/state"
[plugins.'io.containerd.server.v1.grpc']
  address = "$sock"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$sock.ttrpc"
[plugins.'io.containerd.server.v1.debug']
  address = ""
[plugins.'io.containerd.server.v1.metrics']
  address = ""
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.internal.v1.opt']
  path = "$nd/containerd/opt"
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pod network namespaces are mounted under DIR, where down.sh unmounts them.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$cni_bin"]
    conf_dir = "$nd/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$(command -v runc)"
      Root = "$nd/runc"
      SystemdCgroup = false
TOML
	# The shim is found on PATH.
	start containerd env PATH="$cbin:$PATH" "$cbin/containerd" --config "$nd/containerd.toml"
	wait_until "containerd on $sock" "$cbin/ctr" -a "$sock" version
	env_lines+=("CONTAINERD_ADDRESS=$sock")

	current=images
	"$here/images.sh" load "$dir" >>"$dir/logs/images.log" 2>&1 || die "loading images into containerd failed (see $dir/logs/images.log)"
	env_lines+=("ORKESTRA_WEB_IMAGE=$WEB_IMAGE" "ORKESTRA_SHELL_IMAGE=$SHELL_IMAGE")
	[ -f "$ORKESTRA_IMAGES/agent.tar" ] && env_lines+=("ORKESTRA_AGENT_IMAGE=$(cat "$ORKESTRA_IMAGES/agent.ref")")

	# The kubelet's identity: system:node:NAME in system:nodes, so Node authorization applies.
	make_cert kubelet "/O=system:nodes/CN=system:node:$node" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
	write_kubeconfig "$nd/kubelet.kubeconfig" kubelet
	cat >"$nd/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /orkestra-$n
containerRuntimeEndpoint: unix://$sock
address: 0.0.0.0
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $nd/pod-logs
volumePluginDir: $nd/volume-plugins
failSwapOn: false
makeIPTablesUtilChains: false
serializeImagePulls: false
syncFrequency: 10s
shutdownGracePeriod: 0s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 1Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
maxPods: 110
YAML
	start kubelet "$(component_bin kubelet)" --config "$nd/kubelet.yaml" \
		--kubeconfig "$nd/kubelet.kubeconfig" --hostname-override "$node" \
		--root-dir "$nd/kubelet" --cert-dir "$nd/kubelet-pki" --v=1
	wait_until "node $node Ready" node_ready "$node"

	current=kube-scheduler
	start kube-scheduler "$(component_bin kube-scheduler)" --kubeconfig "$dir/kubeconfig" \
		--authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false
	wait_until "kube-scheduler on https://127.0.0.1:$sched_port" curl -skf "https://127.0.0.1:$sched_port/healthz"
	# The node-lifecycle controller lifts node.kubernetes.io/not-ready once the node is Ready.
	wait_until "node $node schedulable (no not-ready taint)" node_untainted "$node"
	env_lines+=("ORKESTRA_NODE=$node")
}

node_ready() {
	[ "$("$kubectl_bin" --kubeconfig "$dir/kubeconfig" get node "$1" \
		-o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

node_untainted() {
	local taints
	taints="$("$kubectl_bin" --kubeconfig "$dir/kubeconfig" get node "$1" -o 'jsonpath={.spec.taints[*].key}')" || return 1
	[[ "$taints" != *node.kubernetes.io/not-ready* ]]
}

# node_clean DIR: everything node_start made, whether or not its processes still run.
# Called by down.sh after it has stopped the recorded processes.
node_clean() {
	local d="$1" n nd sock h pid cg
	n="$(cat "$d/slot" 2>/dev/null)" || return 0
	nd="$d/node"
	sock="$nd/containerd.sock"
	# Containers: every process in the node's cgroups, then the shims of this containerd.
	for _ in 1 2 3 4 5; do
		local left=0
		for h in $(cgroup_hierarchies); do
			[ -d "$h/orkestra-$n" ] || continue
			while read -r pid; do
				[ -n "$pid" ] || continue
				kill -KILL "$pid" 2>/dev/null || true
				left=1
			done < <(find "$h/orkestra-$n" -name cgroup.procs -exec cat {} + 2>/dev/null)
		done
		for pid in $(grep -lsF -- "$sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
			tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q '^[^ ]*containerd-shim' || continue
			kill -KILL "$pid" 2>/dev/null || true
			left=1
		done
		[ "$left" = 0 ] && break
		sleep 0.2
	done
	# Mounts under DIR (the kubelet's root bind-mounts itself; volumes, rootfs, netns), deepest first.
	awk -v d="$d/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	for h in $(cgroup_hierarchies); do
		[ -d "$h/orkestra-$n" ] || continue
		find "$h/orkestra-$n" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	local chain="ORKESTRA-$n"
	while iptables -w -t nat -D PREROUTING -j "$chain" 2>/dev/null; do :; done
	while iptables -w -t nat -D OUTPUT -j "$chain" 2>/dev/null; do :; done
	iptables -w -t nat -F "$chain" 2>/dev/null || true
	iptables -w -t nat -X "$chain" 2>/dev/null || true
	ip link delete "orkbr$n" 2>/dev/null || true
	find /var/log/containers /var/log/pods -maxdepth 1 -lname "$d/*" -delete 2>/dev/null || true
	rm -f /var/lib/cni/results/"orkestra-$n"-* 2>/dev/null || true
	rm -rf /var/lib/cni/networks/"orkestra-$n" 2>/dev/null || true
	# route_localnet back to what it was once no other set holds a slot.
	if [ -f "$d/route_localnet.before" ] && [ -z "$(ls -A "$SLOTS_DIR" 2>/dev/null | grep -vx "$n")" ]; then
		sysctl -qw "net.ipv4.conf.all.route_localnet=$(cat "$d/route_localnet.before")" || true
	fi
	rm -rf "$nd"
	rm -f "$d/route_localnet.before" "$d/node-name"
	slot_release "$d" "$n"
	rm -f "$d/slot"
}
