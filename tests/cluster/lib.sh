# shellcheck shell=bash
# Shared settings for the tests/cluster scripts: pinned versions and cache paths.
# Sourced, not run. Changing a version here changes the cache key, so the next
# build-deps.sh run builds the new version and leaves the old binaries alone.

ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
KREW_VERSION="${KREW_VERSION:-v0.4.5}"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"

ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
ORKESTRA_BIN="$ORKESTRA_CACHE/bin"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Directory holding the binary of COMPONENT at its pinned version.
component_dir() {
	local component="$1" version
	case "$component" in
	etcd) version="$ETCD_VERSION" ;;
	kube-apiserver | kube-controller-manager | kubectl) version="$KUBE_VERSION" ;;
	krew) version="$KREW_VERSION" ;;
	*) die "unknown component $component" ;;
	esac
	printf '%s/%s-%s\n' "$ORKESTRA_BIN" "$component" "$version"
}

component_bin() { printf '%s/%s\n' "$(component_dir "$1")" "$1"; }

# True while PID runs. A zombie counts as gone: stopped processes are reparented to PID 1,
# which may reap them only seconds later.
alive() {
	local state
	state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
	[ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
