#!/usr/bin/env bash
# Stops the processes that tests/cluster/up.sh DIR started (exactly those recorded in DIR/pids)
# and removes their data; for a node also its containers, mounts, cgroups, iptables chain,
# bridge and slot (node.sh's node_clean). Safe to run twice, and on a DIR whose start failed
# halfway.
#
#   tests/cluster/down.sh DIR
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=node.sh
. "$here/node.sh"

[ $# -eq 1 ] || die "usage: $0 DIR"
dir="$1"
[ -d "$dir" ] || exit 0
dir="$(cd "$dir" && pwd)"

# Only act on what up.sh made: a DIR with a pids folder (or nothing of ours at all).
if [ ! -d "$dir/pids" ] && [ ! -f "$dir/slot" ]; then
	log "$dir has no pids/ (not started by up.sh, or already down)"
	exit 0
fi

# A recorded PID is ours if it still leads the process group setsid gave it; a PID reused by
# an unrelated process after ours exited fails this test and is left alone.
ours() {
	local pid="$1" pgid
	pgid="$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" || return 1
	[ "$pgid" = "$pid" ]
}

stop() { # stop NAME SIGNAL
	local name="$1" sig="$2" f="$dir/pids/$1" pid deadline
	[ -f "$f" ] || return 0
	pid="$(cat "$f")"
	if [ "$pid" != "$$" ] && ours "$pid"; then
		kill "-$sig" -- "-$pid" 2>/dev/null || true
		deadline=$(($(date +%s) + 30))
		while alive "$pid"; do
			if [ "$(date +%s)" -ge "$deadline" ]; then
				log "$name (pid $pid) did not stop on SIG$sig; killing"
				kill -KILL -- "-$pid" 2>/dev/null || true
				break
			fi
			sleep 0.1
		done
	fi
	rm -f "$f"
}

# Reverse start order: the node first (its kubelet talks to the API server), then the
# controller manager and API server before etcd.
stop watchdog TERM
stop kube-scheduler TERM
stop kubelet TERM
stop containerd TERM
node_clean "$dir"
stop kube-controller-manager TERM
stop kube-apiserver TERM
stop etcd TERM
stop moto TERM
stop registry TERM
stop ferretdb TERM # before PostgreSQL, its backend
stop postgres INT # fast shutdown: does not wait for clients to disconnect
for f in "$dir"/pids/*; do
	[ -f "$f" ] && stop "$(basename "$f")" TERM
done

rm -rf "$dir/etcd" "$dir/postgres" "$dir/registry" "$dir/registry.yml" "$dir/registry.htpasswd" \
	"$dir/ferretdb" "$dir/pki" "$dir/logs" "$dir/pids" \
	"$dir/env" "$dir/env.tmp" "$dir/kubeconfig" "$dir/controller-manager.kubeconfig" "$dir/components" \
	"$dir/slot" "$dir/node-name" "$dir/audit.jsonl" "$dir/audit-policy.yaml" "$dir/moto-recording.jsonl"
rmdir "$dir" 2>/dev/null || true
log "down: $dir"
