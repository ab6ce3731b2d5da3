#!/usr/bin/env bash
# Starts orkestra's private test systems on free loopback ports, with all state in DIR:
#   etcd + kube-apiserver (own CA, RBAC, service-account keys) + kube-controller-manager,
#   a node (kube-scheduler, containerd + runc, CNI bridge, kubelet; see node.sh) that runs Pods,
#   a moto server (AWS APIs), PostgreSQL, an OCI registry (CNCF Distribution, htpasswd auth,
#   plain HTTP; the ORAS CLI as its client) and FerretDB (MongoDB wire protocol, SCRAM users, over
#   the set's PostgreSQL, or over SQLite in DIR when the set has no postgres).
#
#   tests/cluster/up.sh [--only kube,node,moto,postgres,registry,ferretdb] DIR
#
# The node needs root and "kube"; without root use --only kube,moto,postgres,registry,ferretdb.
#
# Writes DIR/kubeconfig and DIR/env (NAME=value lines), records PIDs in DIR/pids/, and returns
# with the processes running. `tests/cluster/down.sh DIR` stops them and removes the data.
# Running it again on a DIR that is up is a no-op; a failed start cleans up after itself and
# prints the failing component's log tail.
#
# ORKESTRA_OWNER_PID=PID  also start a watchdog that runs down.sh DIR once PID has exited.
# UP_TIMEOUT=SECONDS      how long to wait for each component to become ready (default 120).
# SERVICE_CIDR=CIDR       kube-apiserver's Service IP range (default 10.0.0.0/24: 254 Services;
#                         benchmarks with thousands of Services use a /16).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() { die "usage: $0 [--only kube,node,moto,postgres,registry,ferretdb] DIR"; }
only="kube,node,moto,postgres,registry,ferretdb"
dir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--only) [ $# -ge 2 ] || usage; only="$2"; shift 2 ;;
	--only=*) only="${1#--only=}"; shift ;;
	-h | --help) sed -n '2,22p' "$0" >&2; exit 0 ;;
	-*) usage ;;
	*) [ -z "$dir" ] || usage; dir="$1"; shift ;;
	esac
done
[ -n "$dir" ] || usage
want() { [[ ",$only," == *",$1,"* ]]; }
for c in ${only//,/ }; do
	case "$c" in
	kube | node | moto | postgres | registry | ferretdb) ;;
	*) die "--only: unknown component '$c' (kube, node, moto, postgres, registry, ferretdb)" ;;
	esac
done
want node && ! want kube && die "--only: node needs kube"
# shellcheck source=node.sh
. "$here/node.sh"
timeout_s="${UP_TIMEOUT:-120}"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# --- already up? ---------------------------------------------------------------------------
if [ -d "$dir/pids" ]; then
	all_alive=1
	[ -f "$dir/env" ] && [ "$(cat "$dir/components" 2>/dev/null)" = "$only" ] || all_alive=0
	for f in "$dir"/pids/*; do
		[ -f "$f" ] || continue
		[ "$(basename "$f")" = watchdog ] && continue
		alive "$(cat "$f")" || all_alive=0
	done
	if [ "$all_alive" = 1 ]; then
		log "already up in $dir"
		exit 0
	fi
	log "$dir holds a partly started environment or other components; stopping it first"
	"$here/down.sh" "$dir"
	mkdir -p "$dir"
fi
if [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -d "$dir/pids" ]; then
	die "$dir is not empty and was not made by up.sh; use an empty or new directory"
fi

mkdir -p "$dir/pids" "$dir/logs"
echo "$only" >"$dir/components"
# A set with a node claims a slot: its Service range, subnet, bridge and chain are numbered by it.
if want node; then
	slot="$(slot_claim "$dir")"
	printf '%s\n' "$slot" >"$dir/slot"
	SERVICE_CIDR="${SERVICE_CIDR:-10.$((100 + slot)).0.0/24}"
else
	SERVICE_CIDR="${SERVICE_CIDR:-10.0.0.0/24}"
fi
# The `kubernetes` Service takes the range's first address.
service_ip="$(python3 -c 'import ipaddress, sys; print(next(ipaddress.ip_network(sys.argv[1]).hosts()))' "$SERVICE_CIDR")"
started=$(date +%s)
current=""

on_exit() {
	local rc=$?
	[ $rc -eq 0 ] && return
	log "start failed${current:+ while starting $current} (exit $rc)"
	if [ -n "$current" ] && [ -f "$dir/logs/$current.log" ]; then
		log "last lines of $dir/logs/$current.log:"
		tail -n 40 "$dir/logs/$current.log" >&2 || true
	fi
	"$here/down.sh" "$dir" >&2 || true
	exit $rc
}
trap on_exit EXIT

# Free loopback ports: bind port 0 for all at once (so they differ), then release.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# start NAME CMD...: runs CMD detached with its own session, output in logs/NAME.log.
# stdin/stdout/stderr are files so a caller reading up.sh's output is not held open by it.
start() {
	local name="$1"
	shift
	current="$name"
	setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
	echo $! >"$dir/pids/$name"
}

# wait_until WHAT CMD...: polls CMD until it succeeds, fails after $timeout_s or when the
# current component's process has exited.
wait_until() {
	local what="$1" deadline=$(($(date +%s) + timeout_s))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ -n "$current" ] && ! alive "$(cat "$dir/pids/$current")"; then
			die "$current exited while waiting for $what"
		fi
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${timeout_s}s waiting for $what"
		sleep 0.2
	done
	log "$what: ready after $(($(date +%s) - started))s"
}

env_lines=()

# --- Kubernetes control plane --------------------------------------------------------------
pki="$dir/pki"
b64() { base64 -w0 <"$1"; }

make_cert() { # make_cert NAME SUBJECT EXT  (signed by the test CA)
	local name="$1" subj="$2" ext="$3"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subj" 2>/dev/null
	printf '%s\n' "$ext" >"$pki/$name.ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 30 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
}

write_kubeconfig() { # write_kubeconfig FILE USER-CERT-NAME
	cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: orkestra-test
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$pki/$2.crt")
    client-key-data: $(b64 "$pki/$2.key")
contexts:
- name: orkestra-test
  context:
    cluster: orkestra-test
    user: $2
current-context: orkestra-test
KC
	chmod 600 "$1"
}

start_kube() {
	command -v openssl >/dev/null || die "openssl is needed to make the test cluster's certificates"
	local deps=(etcd kube-apiserver kube-controller-manager)
	# Without a kubectl on PATH, build the pinned one (for the readiness checks and for users).
	command -v kubectl >/dev/null || deps+=(kubectl)
	"$here/build-deps.sh" "${deps[@]}"
	kubectl_bin="$(command -v kubectl || component_bin kubectl)"

	read -r etcd_port etcd_peer_port apiserver_port kcm_port <<<"$(free_ports 4)"

	current=pki
	mkdir -p "$pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=orkestra-test-ca" 2>/dev/null
	make_cert apiserver "/CN=kube-apiserver" \
		"subjectAltName=IP:127.0.0.1,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
	make_cert admin "/O=system:masters/CN=orkestra-admin" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
	# The controller manager gets system:masters so its controllers (garbage collector above all)
	# may act on every resource without per-controller service accounts.
	make_cert controller-manager "/O=system:masters/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
	# How the API server authenticates to kubelets (logs, exec, port-forward).
	make_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
	openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
	chmod 600 "$pki"/*.key

	start etcd "$(component_bin etcd)" --name orkestra-test --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-cluster "orkestra-test=http://127.0.0.1:$etcd_peer_port" \
		--unsafe-no-fsync --log-level warn
	wait_until "etcd on 127.0.0.1:$etcd_port" curl -sf "http://127.0.0.1:$etcd_port/health"

	# An audit log of every mutating request (who, what, dry-run or not), so a test tells its
	# own requests apart from the controllers' instead of waiting for the cluster to go quiet.
	# Reads, leases and events are left out to keep it small.
	cat >"$dir/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    verbs: ["get", "list", "watch"]
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: ["leases"]
      - group: ""
        resources: ["events"]
      - group: events.k8s.io
        resources: ["events"]
  - level: Metadata
POLICY
	start kube-apiserver "$(component_bin kube-apiserver)" \
		--audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.jsonl" \
		--audit-log-format json --audit-log-mode blocking \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
		--cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
		--client-ca-file "$pki/ca.crt" \
		--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
		--service-account-issuer "https://127.0.0.1:$apiserver_port" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--authorization-mode Node,RBAC --allow-privileged=true \
		--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$pki/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types InternalIP,Hostname
	write_kubeconfig "$dir/kubeconfig" admin
	wait_until "kube-apiserver on https://127.0.0.1:$apiserver_port" \
		"$kubectl_bin" --kubeconfig "$dir/kubeconfig" get --raw /readyz

	write_kubeconfig "$dir/controller-manager.kubeconfig" controller-manager
	start kube-controller-manager "$(component_bin kube-controller-manager)" \
		--kubeconfig "$dir/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
		--authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$kcm_port" --cert-dir "$dir/pki/controller-manager-serving" \
		--leader-elect=false --node-monitor-period 1s \
		--kube-api-qps "${KCM_API_QPS:-200}" --kube-api-burst "${KCM_API_BURST:-400}" \
		--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
		--controllers "$KCM_CONTROLLERS"
	wait_until "kube-controller-manager on https://127.0.0.1:$kcm_port" \
		curl -skf "https://127.0.0.1:$kcm_port/healthz"
	# The service-account controller making the default namespace's account shows that the
	# controllers run against the API server, not just that the process serves /healthz.
	wait_until "kube-controller-manager controllers (default/default service account)" \
		"$kubectl_bin" --kubeconfig "$dir/kubeconfig" -n default get serviceaccount default
	env_lines+=("KUBECONFIG=$dir/kubeconfig" "KUBECTL=$kubectl_bin" "APISERVER_AUDIT_LOG=$dir/audit.jsonl")
}

# kube-controller-manager's client rate (its default, 20/s with bursts of 30, is a production
# guard for a shared API server): on this private one the default made 1,000 Deployments take
# 200 s to turn Available, so every benchmark floor measured the controller manager's limit and
# not orkestra's. KCM_API_QPS / KCM_API_BURST put it back.
# Controllers that make the API behave like a cluster's. "namespace" finalizes deleted namespaces,
# "garbage-collector" follows ownerReferences, "node-lifecycle" lifts the node's not-ready taint,
# "pod-garbage-collector" removes Pods of a node that is gone.
KCM_CONTROLLERS="${KCM_CONTROLLERS:-node-lifecycle-controller,pod-garbage-collector-controller,namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,deployment-controller,replicaset-controller,statefulset-controller,job-controller,cronjob-controller,endpointslice-controller,ttl-after-finished-controller,resourcequota-controller,clusterrole-aggregation-controller}"

# --- moto ----------------------------------------------------------------------------------
moto_venv="$ORKESTRA_CACHE/moto-$MOTO_VERSION"
ensure_moto() {
	[ -f "$moto_venv/.complete" ] && return 0
	current=moto-install
	mkdir -p "$ORKESTRA_CACHE"
	# Two up.sh runs at once must not build the same venv together.
	exec 9>"$ORKESTRA_CACHE/moto.lock"
	flock 9
	if [ ! -f "$moto_venv/.complete" ]; then
		log "moto: installing moto[server]==$MOTO_VERSION into $moto_venv"
		rm -rf "$moto_venv"
		{ python3 -m venv "$moto_venv" &&
			"$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"; } \
			>>"$dir/logs/moto-install.log" 2>&1 || {
			rm -rf "$moto_venv"
			die "installing moto[server]==$MOTO_VERSION failed: is PyPI reachable, and python3-venv installed?"
		}
		touch "$moto_venv/.complete"
	fi
	exec 9>&-
}

start_moto() {
	command -v python3 >/dev/null || die "python3 is needed for moto"
	ensure_moto
	local port
	port="$(free_ports 1)"
	moto_port="$port"
	# moto records every request it serves (one JSON line each) so that tests count the calls
	# that reached it, not only what the client believes it sent.
	: >"$dir/moto-recording.jsonl"
	MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH="$dir/moto-recording.jsonl" \
		start moto "$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$port"
	wait_until "moto on http://127.0.0.1:$port" curl -sf "http://127.0.0.1:$port/moto-api/"
	env_lines+=("AWS_ENDPOINT_URL=http://127.0.0.1:$port" "AWS_ACCESS_KEY_ID=testing"
		"AWS_SECRET_ACCESS_KEY=testing" "AWS_REGION=us-east-1" "AWS_DEFAULT_REGION=us-east-1"
		"MOTO_RECORDING=$dir/moto-recording.jsonl")
}

# --- PostgreSQL ----------------------------------------------------------------------------
# shellcheck disable=SC2012 # the paths are /usr/lib/postgresql/<number>/bin
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
start_postgres() {
	local bindir
	bindir="$(pg_bindir)"
	if [ -z "$bindir" ] || [ ! -x "$bindir/postgres" ]; then
		current=postgres-install
		[ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and installing it needs root: apt-get install postgresql"
		log "postgres: installing Debian's postgresql package"
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; } \
			>>"$dir/logs/postgres-install.log" 2>&1 || die "apt-get install postgresql failed"
		bindir="$(pg_bindir)"
	fi
	local port pgdir="$dir/postgres" password=orkestra
	port="$(free_ports 1)"
	mkdir -p "$pgdir"
	# PostgreSQL refuses to run as root: run it as the postgres user, which must reach DIR.
	local as=()
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
		chown postgres: "$pgdir"
		chmod o+x "$dir"
		as=(setpriv --reuid=postgres --regid="$(id -g postgres)" --init-groups --)
		"${as[@]}" test -w "$pgdir" ||
			die "user postgres cannot write $pgdir (a parent directory of $dir is not searchable by others)"
	fi
	current=postgres
	printf '%s\n' "$password" >"$pgdir/pwfile"
	[ "$(id -u)" = 0 ] && chown postgres: "$pgdir/pwfile"
	"${as[@]}" "$bindir/initdb" -D "$pgdir/data" -U postgres --pwfile "$pgdir/pwfile" \
		--auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-sync \
		>>"$dir/logs/postgres.log" 2>&1 || die "initdb failed"
	rm -f "$pgdir/pwfile"
	# Pods on the test node reach PostgreSQL from the 10.244.0.0/16 bridges (DNAT, see node.sh).
	printf 'host all all 10.244.0.0/16 scram-sha-256\n' >>"$pgdir/data/pg_hba.conf"
	start postgres "${as[@]}" "$bindir/postgres" -D "$pgdir/data" -p "$port" \
		-c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off \
		-c synchronous_commit=off -c full_page_writes=off
	wait_until "postgres on 127.0.0.1:$port" "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"
	postgres_port="$port"
	env_lines+=("DATABASE_URL=postgres://postgres:$password@127.0.0.1:$port/postgres")
}

# --- OCI registry ----------------------------------------------------------------------------
# A random hex secret (no dependency beyond coreutils).
random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
# http_status CODE URL: true when GET URL answers CODE.
http_status() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$2")" = "$1" ]; }

start_registry() {
	"$here/build-deps.sh" registry oras
	local port password user=orkestra storage="$dir/registry" bindir
	bindir="$(component_dir registry)"
	port="$(free_ports 1)"
	password="$(random_hex)"
	current=registry
	mkdir -p "$storage"
	# The bcrypt line comes from the htpasswd helper build-deps.sh builds beside the registry.
	printf '%s\n' "$password" | "$bindir/htpasswd" "$user" >"$dir/registry.htpasswd" ||
		die "making the registry's htpasswd file failed"
	chmod 600 "$dir/registry.htpasswd"
	cat >"$dir/registry.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: $(random_hex)
auth:
  htpasswd:
    realm: orkestra-test
    path: $dir/registry.htpasswd
YML
	# OTEL_TRACES_EXPORTER=none comes from lib.sh: no traces sent to localhost:4318.
	start registry "$bindir/registry" serve "$dir/registry.yml"
	wait_until "registry on http://127.0.0.1:$port (401 without credentials)" \
		http_status 401 "http://127.0.0.1:$port/v2/"
	env_lines+=("REGISTRY_HOST=127.0.0.1:$port" "REGISTRY_USERNAME=$user" "REGISTRY_PASSWORD=$password"
		"REGISTRY_STORAGE=$storage" "ORAS=$(component_bin oras)")
}

# --- FerretDB ------------------------------------------------------------------------------
# FerretDB 1.x's users (createUser, usersInfo, updateUser, dropUser, SCRAM-SHA-1/256) exist only
# with --test-enable-new-auth; --setup-* creates the first user (in admin) at start. Over the
# set's PostgreSQL (a database "ferretdb" of its own) when the set has one, else over SQLite.
start_ferretdb() {
	"$here/build-deps.sh" ferretdb
	local port password user=orkestra fdir="$dir/ferretdb" bin backend=()
	bin="$(component_bin ferretdb)"
	port="$(free_ports 1)"
	password="$(random_hex)"
	current=ferretdb
	mkdir -p "$fdir"
	if want postgres; then
		PGPASSWORD=orkestra "$(pg_bindir)/createdb" -h 127.0.0.1 -p "$postgres_port" -U postgres ferretdb \
			>>"$dir/logs/ferretdb.log" 2>&1 || die "createdb ferretdb failed"
		backend=(--handler=postgresql
			"--postgresql-url=postgres://postgres:orkestra@127.0.0.1:$postgres_port/ferretdb")
	else
		mkdir -p "$fdir/sqlite"
		backend=(--handler=sqlite "--sqlite-url=file:$fdir/sqlite/")
	fi
	# The (random, loopback-only) password is on the command line so restart.sh can reuse it.
	local auth=(--test-enable-new-auth --setup-database=admin "--setup-username=$user"
		"--setup-password=$password")
	start ferretdb "$bin" "${backend[@]}" "${auth[@]}" "--listen-addr=127.0.0.1:$port" \
		"--state-dir=$fdir" --debug-addr=- --telemetry=disable --log-level=info
	# `ferretdb ping` connects with the Go driver, authenticates with SCRAM as that user and pings.
	wait_until "ferretdb on mongodb://127.0.0.1:$port (authenticated ping)" \
		"$bin" ping "${auth[@]}" "--listen-addr=127.0.0.1:$port" --setup-timeout=5s --log-level=error
	env_lines+=("MONGODB_URL=mongodb://$user:$password@127.0.0.1:$port/")
}

want kube && start_kube
want moto && start_moto
want postgres && start_postgres
want registry && start_registry
want ferretdb && start_ferretdb
# Last: its DNAT rules need the moto and PostgreSQL ports.
want node && node_start
current=""

printf '%s\n' "${env_lines[@]}" >"$dir/env.tmp"
mv "$dir/env.tmp" "$dir/env"

if [ -n "${ORKESTRA_OWNER_PID:-}" ]; then
	# tail --pid returns once the owner has exited; then down.sh replaces the watchdog.
	# shellcheck disable=SC2016 # $1.. expand in the inner bash
	setsid bash -c 'tail --pid="$1" -f /dev/null; exec "$2" "$3"' orkestra-watchdog \
		"$ORKESTRA_OWNER_PID" "$here/down.sh" "$dir" </dev/null >>"$dir/logs/watchdog.log" 2>&1 &
	echo $! >"$dir/pids/watchdog"
fi
log "up in $(($(date +%s) - started))s: $dir/env"
