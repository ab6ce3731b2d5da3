# shellcheck shell=bash
# Shared settings for the tests/cluster scripts: pinned versions and cache paths.
# Sourced, not run. Changing a version here changes the cache key, so the next
# build-deps.sh run builds the new version and leaves the old binaries alone.

ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
# v0.4.5 is refused by the Go module proxy reachable here; v0.4.3 is served.
KREW_VERSION="${KREW_VERSION:-v0.4.3}"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
# The OCI registry (CNCF Distribution), its independent client (ORAS) and the MongoDB wire
# protocol server (FerretDB v1: module path without a /v2 suffix).
REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
ORAS_VERSION="${ORAS_VERSION:-v1.3.6}"
FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.2}"

# The registry's OpenTelemetry SDK exports traces to localhost:4318 unless told otherwise, and logs
# every failed export. Exported here so what up.sh starts and restart.sh restarts inherits it.
export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-none}"

ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
ORKESTRA_BIN="$ORKESTRA_CACHE/bin"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Directory holding the binary of COMPONENT at its pinned version.
component_dir() {
	local component="$1" version
	case "$component" in
	etcd) version="$ETCD_VERSION" ;;
	kube-apiserver | kube-controller-manager | kubectl | kube-scheduler | kubelet | pause) version="$KUBE_VERSION" ;;
	krew) version="$KREW_VERSION" ;;
	containerd) version="$CONTAINERD_VERSION" ;;
	cni-plugins) version="$CNI_PLUGINS_VERSION" ;;
	registry) version="$REGISTRY_VERSION" ;;
	oras) version="$ORAS_VERSION" ;;
	ferretdb) version="$FERRETDB_VERSION" ;;
	*) die "unknown component $component" ;;
	esac
	printf '%s/%s-%s\n' "$ORKESTRA_BIN" "$component" "$version"
}

# The file whose presence means COMPONENT is built (the last one its build writes).
component_bin() {
	case "$1" in
	cni-plugins) printf '%s/bridge\n' "$(component_dir "$1")" ;;
	*) printf '%s/%s\n' "$(component_dir "$1")" "$1" ;;
	esac
}

# Images the node runs, built by images.sh without a daemon (no registry is reachable here)
# and loaded into the node's containerd; Pods use them with imagePullPolicy IfNotPresent.
ORKESTRA_IMAGES="$ORKESTRA_CACHE/images"
PAUSE_IMAGE="localhost/orkestra/pause:$KUBE_VERSION"
WEB_IMAGE="ghcr.io/orkspace/orkestra-web:0.1.0"
SHELL_IMAGE="ghcr.io/orkspace/orkestra-shell:0.1.0"
# The agent's tag is the workspace version (deploy/deployment.yaml names the same).
agent_image() {
	local root version
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
	version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
	printf 'ghcr.io/orkspace/orkestra-agent:%s\n' "$version"
}

# The components of a node: what up.sh needs to run Pods.
NODE_COMPONENTS=(kube-scheduler kubelet containerd cni-plugins pause)

# ensure_node_packages LOG: Debian packages the node and its images need, installed with
# apt-get when missing (root only; a clear error otherwise).
ensure_node_packages() {
	local logfile="$1" want=() p
	command -v runc >/dev/null || want+=(runc)
	command -v iptables >/dev/null || want+=(iptables)
	command -v busybox >/dev/null || want+=(busybox-static)
	[ -f /etc/ssl/certs/ca-certificates.crt ] || want+=(ca-certificates)
	command -v gcc >/dev/null || want+=(gcc)
	[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || want+=(libc6-dev)
	[ ${#want[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "the node needs ${want[*]} (apt-get install ${want[*]}) and root"
	log "node: installing Debian's ${want[*]}"
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}"; } \
		>>"$logfile" 2>&1 || die "apt-get install ${want[*]} failed (see $logfile)"
	for p in runc iptables busybox; do command -v "$p" >/dev/null || die "$p still missing after apt-get install"; done
}

# True while PID runs. A zombie counts as gone: stopped processes are reparented to PID 1,
# which may reap them only seconds later.
alive() {
	local state
	state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
	[ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
