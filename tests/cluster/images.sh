#!/usr/bin/env bash
# Builds the images the test node runs, without a container daemon, and loads them into a node.
#
#   tests/cluster/images.sh build [--agent BIN]   # pause, web, shell (and the agent from BIN)
#   tests/cluster/images.sh load DIR              # import every built image into DIR's containerd
#
# No registry is reachable here, so nothing can be pulled: each image is an OCI archive made by
# oci_image.py from files on this machine, reproducibly (the same inputs give the same digest).
#   pause  the sandbox binary built from the Kubernetes sources (build-deps.sh pause), static
#   web    Debian's busybox-static httpd serving / and /healthz on $PORT (default 8080), uid 65532
#   shell  Debian's busybox-static: /bin/sh and the usual tools, for Jobs and debugging
#   agent  the release orkestra-agent, exactly the shared libraries `ldd` lists, CA certificates,
#          /etc/passwd with nonroot (65532) and that user; the layout of deploy/Dockerfile
# Archives land in $ORKESTRA_CACHE/images/NAME.tar with NAME.digest beside them; `build`
# prints "REF DIGEST" per image.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() { die "usage: $0 build [--agent BIN] | load DIR"; }
[ $# -ge 1 ] || usage

# image NAME REF oci_image.py-ARGS...: builds NAME.tar atomically and records its digest.
image() {
	local name="$1" ref="$2" d
	shift 2
	mkdir -p "$ORKESTRA_IMAGES"
	d="$(python3 "$here/oci_image.py" --ref "$ref" --out "$ORKESTRA_IMAGES/$name.tar" "$@")" ||
		die "$name: building the image failed"
	printf '%s\n' "$ref" >"$ORKESTRA_IMAGES/$name.ref"
	printf '%s\n' "$d" >"$ORKESTRA_IMAGES/$name.digest"
	printf '%s %s\n' "$ref" "$d"
}

busybox_args() { # the busybox binary and a /bin symlink per applet
	local bb applet
	bb="$(command -v busybox)" || die "busybox is needed for the web and shell images (apt-get install busybox-static)"
	ldd "$bb" >/dev/null 2>&1 && die "$bb is dynamically linked; the images need busybox-static"
	printf -- '--file\n%s:/bin/busybox:0755\n' "$bb"
	for applet in $("$bb" --list | sort); do
		[ "$applet" = busybox ] && continue
		printf -- '--symlink\n/bin/%s:busybox\n' "$applet"
	done
}

build() {
	local agent_bin=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--agent) [ $# -ge 2 ] || usage; agent_bin="$2"; shift 2 ;;
		*) usage ;;
		esac
	done
	"$here/build-deps.sh" pause >&2
	mkdir -p "$ORKESTRA_CACHE"
	ensure_node_packages "$ORKESTRA_CACHE/apt.log"
	local etc
	etc="$(mktemp -d)"
	# shellcheck disable=SC2064
	trap "rm -rf '$etc'" RETURN
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$etc/passwd"
	printf 'root:x:0:\nnonroot:x:65532:\n' >"$etc/group"
	printf '<!doctype html><title>orkestra-web</title><p>orkestra-web\n' >"$etc/index.html"
	printf 'ok\n' >"$etc/healthz"
	chmod 0644 "$etc"/*

	image pause "$PAUSE_IMAGE" --file "$(component_bin pause):/pause:0755" \
		--entrypoint '["/pause"]' --user 65535:65535

	local bb=()
	mapfile -t bb < <(busybox_args)
	local common=(--file "$etc/passwd:/etc/passwd:0644" --file "$etc/group:/etc/group:0644" --dir /tmp:1777)
	image shell "$SHELL_IMAGE" "${bb[@]}" "${common[@]}" --cmd '["/bin/sh"]'
	image web "$WEB_IMAGE" "${bb[@]}" "${common[@]}" \
		--file "$etc/index.html:/www/index.html:0644" --file "$etc/healthz:/www/healthz:0644" \
		--entrypoint '["/bin/sh","-c","exec httpd -f -p \"${PORT:-8080}\" -h /www"]' \
		--user 65532:65532 --port 8080

	[ -n "$agent_bin" ] || return 0
	[ -x "$agent_bin" ] || die "agent: $agent_bin is not an executable"
	local libs=() lib real
	# Exactly the libraries the binary links (glibc's loader included), at the paths ldd names.
	while read -r lib; do
		real="$(readlink -f "$lib")"
		libs+=(--file "$real:$lib:0755")
	done < <(ldd "$agent_bin" | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(/ { print $1 }' | sort -u)
	local ca=/etc/ssl/certs/ca-certificates.crt
	[ -f "$ca" ] || die "agent: $ca missing (apt-get install ca-certificates)"
	image agent "$(agent_image)" --file "$agent_bin:/orkestra-agent:0755" "${libs[@]}" \
		--file "$ca:/etc/ssl/certs/ca-certificates.crt:0644" "${common[@]}" \
		--entrypoint '["/orkestra-agent"]' --user 65532:65532 --port 8080
}

load() {
	[ $# -eq 1 ] || usage
	local dir sock ctr name n=0
	dir="$(cd "$1" && pwd)"
	sock="$(sed -n 's/^CONTAINERD_ADDRESS=//p' "$dir/env" 2>/dev/null || true)"
	[ -n "$sock" ] || sock="$dir/node/containerd.sock"
	[ -S "$sock" ] || die "no containerd socket at $sock (is the node of $dir up?)"
	ctr="$(component_dir containerd)/ctr"
	for name in pause web shell agent; do
		[ -f "$ORKESTRA_IMAGES/$name.tar" ] || continue
		"$ctr" -a "$sock" -n k8s.io images import --platform linux/amd64 \
			"$ORKESTRA_IMAGES/$name.tar" 2> >(grep -v "DEPRECATION: The support for cgroup v1" >&2) >/dev/null ||
			die "importing $ORKESTRA_IMAGES/$name.tar into $sock failed"
		n=$((n + 1))
	done
	# An agent image built after up.sh ran becomes usable by tests too.
	if [ -f "$ORKESTRA_IMAGES/agent.ref" ] && [ -f "$dir/env" ] && ! grep -q '^ORKESTRA_AGENT_IMAGE=' "$dir/env"; then
		printf 'ORKESTRA_AGENT_IMAGE=%s\n' "$(cat "$ORKESTRA_IMAGES/agent.ref")" >>"$dir/env"
	fi
	log "loaded $n image(s) into $sock"
}

cmd="$1"
shift
case "$cmd" in
build) build "$@" ;;
load) load "$@" ;;
*) usage ;;
esac
