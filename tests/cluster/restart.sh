#!/usr/bin/env bash
# Restarts one component that tests/cluster/up.sh DIR started, with the same command line, and
# waits until it is ready again (for fault tests: "restart kube-apiserver mid-run").
#
#   tests/cluster/restart.sh DIR COMPONENT      COMPONENT: kube-apiserver, etcd, moto, ...
#
# The command line is read from /proc/PID/cmdline of the recorded process, so this script does
# not repeat up.sh's flags. Output goes on to DIR/logs/COMPONENT.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

[ $# -eq 2 ] || die "usage: $0 DIR COMPONENT"
dir="$(cd "$1" && pwd)"
name="$2"
f="$dir/pids/$name"
[ -f "$f" ] || die "$dir/pids/$name not found: was $name started by up.sh $dir?"
pid="$(cat "$f")"
alive "$pid" || die "$name (pid $pid) is not running"
[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] || die "pid $pid does not lead its process group; not ours"

mapfile -d '' cmd <"/proc/$pid/cmdline"
# The same environment too (moto's recording switch lives there).
mapfile -d '' environment <"/proc/$pid/environ"
kill -TERM -- "-$pid" 2>/dev/null || true
deadline=$(($(date +%s) + 30))
while alive "$pid"; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		kill -KILL -- "-$pid" 2>/dev/null || true
		break
	fi
	sleep 0.1
done
log "$name stopped; starting it again"

setsid env -i "${environment[@]}" "${cmd[@]}" </dev/null >>"$dir/logs/$name.log" 2>&1 &
echo $! >"$f"

deadline=$(($(date +%s) + ${UP_TIMEOUT:-120}))
ready() {
	case "$name" in
	kube-apiserver) "$(. "$dir/env"; echo "${KUBECTL:-kubectl}")" --kubeconfig "$dir/kubeconfig" get --raw /readyz ;;
	moto) curl -sf "$(. "$dir/env"; echo "$AWS_ENDPOINT_URL")/moto-api/" ;;
	*) alive "$(cat "$f")" ;;
	esac
}
until ready >/dev/null 2>&1; do
	alive "$(cat "$f")" || die "$name exited after restart; see $dir/logs/$name.log"
	[ "$(date +%s)" -lt "$deadline" ] || die "$name not ready ${UP_TIMEOUT:-120}s after restart"
	sleep 0.2
done
log "$name restarted (pid $(cat "$f"))"
