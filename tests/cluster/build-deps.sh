#!/usr/bin/env bash
# Builds the upstream binaries orkestra's tests run against, at the versions pinned in lib.sh:
# etcd, kube-apiserver, kube-controller-manager (and kubectl when none is on PATH), the node
# (kube-scheduler, kubelet, containerd with its runc shim and ctr, the CNI plugins bridge,
# host-local and loopback, the pause binary), krew, the OCI registry (CNCF Distribution, with a
# tiny bcrypt htpasswd helper beside it), the ORAS CLI and FerretDB.
#
#   tests/cluster/build-deps.sh              # all of the above
#   tests/cluster/build-deps.sh krew         # only the named components
#   tests/cluster/build-deps.sh --list       # the components, one per line
#
# runc, iptables and busybox come from Debian's packages (installed with apt-get when missing).
#
# Binaries land in ${ORKESTRA_CACHE:-$HOME/.cache/orkestra}/bin/<component>-<version>/<component>.
# A component whose binary is already there is skipped without running Go at all, so a warm run
# takes milliseconds and needs neither Go nor the network. Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

all_components=(etcd kube-apiserver kube-controller-manager "${NODE_COMPONENTS[@]}" krew registry oras ferretdb)
if [ "${1:-}" = --list ]; then
	printf '%s\n' "${all_components[@]}"
	exit 0
fi
components=("$@")
if [ ${#components[@]} -eq 0 ]; then
	components=("${all_components[@]}")
	command -v kubectl >/dev/null 2>&1 || components+=(kubectl)
fi

missing=()
for c in "${components[@]}"; do
	bin="$(component_bin "$c")"
	if [ -x "$bin" ]; then
		log "$c: cached at $bin"
	else
		missing+=("$c")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

# pause needs gcc and glibc's static libraries; the node runs Debian's runc and iptables.
for c in "${missing[@]}"; do
	case " ${NODE_COMPONENTS[*]} " in *" $c "*)
		mkdir -p "$ORKESTRA_CACHE"
		ensure_node_packages "$ORKESTRA_CACHE/apt.log"
		break
		;;
	esac
done

# One build at a time per cache (two test runs starting cold would otherwise build twice);
# whoever waited re-checks what the other one built.
mkdir -p "$ORKESTRA_CACHE"
exec 8>"$ORKESTRA_CACHE/build.lock"
if ! flock -n 8; then
	log "another build-deps.sh is building into $ORKESTRA_CACHE; waiting for it"
	flock 8
	still=()
	for c in "${missing[@]}"; do [ -x "$(component_bin "$c")" ] || still+=("$c"); done
	[ ${#still[@]} -eq 0 ] && exit 0
	missing=("${still[@]}")
fi

# --- from here on Go is needed ---------------------------------------------------------------
cd / # go refuses to run from a deleted working directory; all paths below are absolute
command -v go >/dev/null 2>&1 ||
	die "go is not on PATH; it is needed to build ${missing[*]} (install Go >= 1.26, or put prebuilt binaries in $ORKESTRA_BIN/<component>-<version>/)"
log "building ${missing[*]} with $(go version)"
# Shared build and module caches outside the repository (Go's own defaults unless set).
GOCACHE="$(go env GOCACHE)"
GOMODCACHE="$(go env GOMODCACHE)"
export GOCACHE GOMODCACHE GOFLAGS="${GOFLAGS:--buildvcs=false}"
workroot="$ORKESTRA_CACHE/build"
mkdir -p "$workroot" "$ORKESTRA_BIN"

proxy_fail() {
	die "could not fetch $1 from the Go module proxy ($(go env GOPROXY)); is the proxy reachable and does it serve this version? See the go output above."
}

# Builds PACKAGE from wrapper module WORKDIR into the cache dir of COMPONENT (atomic: temp then rename).
go_build() {
	local workdir="$1" component="$2" package="$3" ldflags="$4"
	go_build_into "$workdir" "$component" "$ldflags" "" -o "$component" "$package"
}

# go_build_into WORKDIR COMPONENT LDFLAGS TAGS GO-BUILD-ARGS...: runs go build in WORKDIR with
# the output (-o NAME, or -o . for several packages) relative to a temporary directory that
# replaces the component's cache dir once the build succeeded. CGO_ENABLED comes from the caller.
go_build_into() {
	local workdir="$1" component="$2" ldflags="$3" tags="$4"
	shift 4
	local dest tmp start args=()
	dest="$(component_dir "$component")"
	tmp="$dest.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	start=$(date +%s)
	# -o paths are relative to the temporary directory.
	while [ $# -gt 0 ]; do
		if [ "$1" = -o ]; then
			args+=(-o "$tmp/$2")
			shift 2
		else
			args+=("$1")
			shift
		fi
	done
	log "$component: go build ${args[*]: -1} (this takes minutes on a cold cache)"
	(cd "$workdir" && go build -trimpath -ldflags="-s -w -buildid= $ldflags" ${tags:+-tags "$tags"} "${args[@]}") ||
		{
			rm -rf "$tmp"
			die "$component: go build failed (see the go output above)"
		}
	rm -rf "$dest"
	mv "$tmp" "$dest"
	log "$component: built in $(($(date +%s) - start))s -> $dest/"
}

# A wrapper module per upstream project: dependencies' replace directives are ignored by Go,
# so the upstream main packages build as dependencies of this tiny module.
new_wrapper() {
	local dir="$1"
	rm -rf "$dir"
	mkdir -p "$dir"
	printf 'module orkestra.test/build\n\ngo 1.26\n' >"$dir/go.mod"
}

build_etcd() {
	local dir="$workroot/etcd-$ETCD_VERSION"
	new_wrapper "$dir"
	log "etcd: fetching go.etcd.io/etcd/server/v3@$ETCD_VERSION"
	(cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION") || proxy_fail "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
	go_build "$dir" etcd go.etcd.io/etcd/server/v3 ""
}

kube_wrapper_ready=""
prepare_kube_wrapper() {
	[ -n "$kube_wrapper_ready" ] && return 0
	local dir="$workroot/kubernetes-$KUBE_VERSION" gomod staging_version
	log "kubernetes: fetching k8s.io/kubernetes@$KUBE_VERSION module metadata"
	gomod="$(cd /tmp && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')" || proxy_fail "k8s.io/kubernetes@$KUBE_VERSION"
	[ -f "$gomod" ] || proxy_fail "k8s.io/kubernetes@$KUBE_VERSION"
	# Staging modules are required at v0.0.0 and replaced by ./staging paths upstream; they are
	# published as k8s.io/<name> v0.<minor>.<patch>.
	staging_version="v0.${KUBE_VERSION#v1.}"
	new_wrapper "$dir"
	{
		printf '\nrequire k8s.io/kubernetes %s\n\n' "$KUBE_VERSION"
		awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$gomod" | sort -u |
			while read -r m; do printf 'replace %s => %s %s\n' "$m" "$m" "$staging_version"; done
	} >>"$dir/go.mod"
	local n
	n="$(grep -c '^replace ' "$dir/go.mod")"
	[ "$n" -gt 0 ] || die "found no staging modules in $gomod"
	log "kubernetes: wrapper module with $n staging replaces at $staging_version"
	(cd "$dir" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
		"k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
		"k8s.io/kubernetes/cmd/kube-scheduler@$KUBE_VERSION" \
		"k8s.io/kubernetes/cmd/kubelet@$KUBE_VERSION" \
		"k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION") || proxy_fail "k8s.io/kubernetes@$KUBE_VERSION dependencies"
	kube_wrapper_ready="$dir"
}

kube_ldflags() {
	local minor="${KUBE_VERSION#v1.}"
	minor="${minor%%.*}"
	local f="" pkg
	# Without these the binaries report v0.0.0-master, which breaks version checks in clients.
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	printf '%s' "$f"
}

build_kube() {
	local component="$1"
	prepare_kube_wrapper
	go_build "$kube_wrapper_ready" "$component" "k8s.io/kubernetes/cmd/$component" "$(kube_ldflags)"
}

build_krew() {
	local dir="$workroot/krew-$KREW_VERSION"
	new_wrapper "$dir"
	log "krew: fetching sigs.k8s.io/krew@$KREW_VERSION"
	(cd "$dir" && go get "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION") || proxy_fail "sigs.k8s.io/krew@$KREW_VERSION"
	go_build "$dir" krew sigs.k8s.io/krew/cmd/krew ""
}

# containerd 2.x with its runc shim and ctr: pure Go (no btrfs headers needed), no man pages.
build_containerd() {
	local dir="$workroot/containerd-$CONTAINERD_VERSION" m="github.com/containerd/containerd/v2"
	new_wrapper "$dir"
	log "containerd: fetching $m@$CONTAINERD_VERSION"
	(cd "$dir" && go get "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
		"$m/cmd/ctr@$CONTAINERD_VERSION") || proxy_fail "$m@$CONTAINERD_VERSION"
	# ctr first, containerd last: component_bin (containerd/containerd) marks a complete build.
	CGO_ENABLED=0 go_build_into "$dir" containerd \
		"-X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Revision=orkestra-test" \
		"urfave_cli_no_docs no_btrfs" -o . "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/containerd"
}

build_cni_plugins() {
	local dir="$workroot/cni-plugins-$CNI_PLUGINS_VERSION" m="github.com/containernetworking/plugins"
	new_wrapper "$dir"
	log "cni-plugins: fetching $m@$CNI_PLUGINS_VERSION"
	(cd "$dir" && go get "$m/plugins/main/bridge@$CNI_PLUGINS_VERSION" "$m/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
		"$m/plugins/ipam/host-local@$CNI_PLUGINS_VERSION") || proxy_fail "$m@$CNI_PLUGINS_VERSION"
	CGO_ENABLED=0 go_build_into "$dir" cni-plugins "" "" -o . \
		"$m/plugins/main/loopback" "$m/plugins/ipam/host-local" "$m/plugins/main/bridge"
}

# The sandbox ("pause") binary from the Kubernetes sources, static: no registry serves the
# pause image here, so images.sh builds it from this.
build_pause() {
	local src dest tmp
	command -v gcc >/dev/null || die "pause: gcc is needed (apt-get install gcc libc6-dev)"
	src="$(cd /tmp && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -f "$src/build/pause/linux/pause.c" ] || proxy_fail "k8s.io/kubernetes@$KUBE_VERSION (build/pause/linux/pause.c)"
	dest="$(component_dir pause)"
	tmp="$dest.tmp.$$"
	mkdir -p "$tmp"
	gcc -Os -static -Wall -Werror -DVERSION="$KUBE_VERSION-orkestra" -o "$tmp/pause" "$src/build/pause/linux/pause.c" ||
		{ rm -rf "$tmp"; die "pause: gcc -static failed (is libc6-dev installed?)"; }
	strip "$tmp/pause"
	rm -rf "$dest"
	mv "$tmp" "$dest"
	log "pause: built -> $dest/pause"
}

# The CNCF Distribution registry, and beside it `htpasswd USER` (password on stdin, prints the
# bcrypt line the registry's htpasswd auth reads): a few lines of Go on golang.org/x/crypto/bcrypt,
# which the registry itself requires, so up.sh needs neither apache2-utils nor Python packages.
build_registry() {
	local dir="$workroot/registry-$REGISTRY_VERSION" m="github.com/distribution/distribution/v3"
	new_wrapper "$dir"
	mkdir -p "$dir/htpasswd"
	cat >"$dir/htpasswd/main.go" <<'GO'
// Command htpasswd prints "USER:BCRYPT-HASH" for the password read from stdin (one line).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" || strings.Contains(os.Args[1], ":") {
		fmt.Fprintln(os.Stderr, "usage: htpasswd USER <PASSWORD")
		os.Exit(2)
	}
	password, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && password == "" {
		fmt.Fprintln(os.Stderr, "htpasswd: no password on stdin")
		os.Exit(1)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimRight(password, "\r\n")), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(os.Stderr, "htpasswd:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s\n", os.Args[1], hash)
}
GO
	log "registry: fetching $m@$REGISTRY_VERSION"
	# No version for bcrypt: the helper uses the golang.org/x/crypto the registry requires.
	(cd "$dir" && go get "$m/cmd/registry@$REGISTRY_VERSION") || proxy_fail "$m@$REGISTRY_VERSION"
	CGO_ENABLED=0 go_build_into "$dir" registry \
		"-X $m/version.version=$REGISTRY_VERSION -X $m/version.mainpkg=$m" "" \
		-o . orkestra.test/build/htpasswd "$m/cmd/registry"
}

build_oras() {
	local dir="$workroot/oras-$ORAS_VERSION" m="oras.land/oras"
	new_wrapper "$dir"
	log "oras: fetching $m@$ORAS_VERSION"
	(cd "$dir" && go get "$m/cmd/oras@$ORAS_VERSION") || proxy_fail "$m@$ORAS_VERSION"
	CGO_ENABLED=0 go_build "$dir" oras "$m/cmd/oras" "-X $m/internal/version.GitTreeState=clean"
}

# FerretDB v1 (the module has no /v2 suffix) needs no build tags: the PostgreSQL and SQLite
# backends are in by default (ferretdb_no_postgresql / ferretdb_no_sqlite would drop them). Its
# build/version package panics at start unless build/version/version.txt (embedded, not in the
# module zip) holds the version, so it builds from a writable copy of the module's source, as its
# own main module (with its own go.sum), with that file added.
build_ferretdb() {
	local dir="$workroot/ferretdb-$FERRETDB_VERSION" m="github.com/FerretDB/FerretDB" src
	log "ferretdb: fetching $m@$FERRETDB_VERSION"
	src="$(cd /tmp && go mod download -json "$m@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -f "$src/cmd/ferretdb/main.go" ] || proxy_fail "$m@$FERRETDB_VERSION"
	rm -rf "$dir"
	mkdir -p "$dir"
	cp -R "$src/." "$dir/"
	chmod -R u+w "$dir"
	printf '%s\n' "$FERRETDB_VERSION" >"$dir/build/version/version.txt"
	printf 'orkestra-test\n' >"$dir/build/version/package.txt"
	(cd "$dir" && go list -deps ./cmd/ferretdb >/dev/null) || proxy_fail "$m@$FERRETDB_VERSION dependencies"
	CGO_ENABLED=0 go_build "$dir" ferretdb ./cmd/ferretdb ""
}

total_start=$(date +%s)
for c in "${missing[@]}"; do
	case "$c" in
	etcd) build_etcd ;;
	kube-apiserver | kube-controller-manager | kubectl | kube-scheduler | kubelet) build_kube "$c" ;;
	krew) build_krew ;;
	containerd) build_containerd ;;
	cni-plugins) build_cni_plugins ;;
	pause) build_pause ;;
	registry) build_registry ;;
	oras) build_oras ;;
	ferretdb) build_ferretdb ;;
	esac
done
log "done in $(($(date +%s) - total_start))s"
