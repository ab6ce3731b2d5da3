#!/usr/bin/env bash
# orkestra's one test command (the README's; .ci/run runs exactly this).
#
# On a fresh machine it builds what it needs (the pinned Kubernetes, containerd and CNI binaries
# and krew from the Go module proxy, runc and busybox from Debian, moto into a venv, PostgreSQL
# from Debian's packages, the Distribution registry, ORAS and FerretDB from the Go module proxy),
# caching everything outside the clone in ${ORKESTRA_CACHE:-~/.cache/orkestra}; then it builds
# the agent's image, starts one private control plane with a real node, moto, PostgreSQL, an OCI
# registry and FerretDB for all test binaries, checks formatting
# and clippy, and runs every test against them.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

started=$(date +%s)
step() { printf '\n==> [%ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }

if [ ! -d "$ORKESTRA_CACHE/bin" ] || [ ! -d "$CARGO_TARGET_DIR" ]; then
	step "first run on this machine: building the test systems from source and the workspace takes about 40 minutes on 2 cores; later runs take about 15"
fi

step "checking toolchains"
scripts/bootstrap.sh

step "building the test systems: etcd, Kubernetes, containerd, CNI plugins, pause, krew, the Distribution registry, ORAS, FerretDB (cached: $ORKESTRA_CACHE/bin)"
tests/cluster/build-deps.sh

step "building the agent's release binary and its image (the node runs it as a Pod)"
cargo build --release --locked -p orkestra-agent
tests/cluster/images.sh build --agent "$CARGO_TARGET_DIR/release/orkestra-agent"

step "starting a private kube-apiserver, controller-manager, scheduler, a node, moto, PostgreSQL, an OCI registry and FerretDB"
env_dir="$(mktemp -d "${TMPDIR:-/tmp}/orkestra-test.XXXXXX")"
trap 'tests/cluster/down.sh "$env_dir" >/dev/null 2>&1 || true; rm -rf "$env_dir"' EXIT
tests/cluster/up.sh "$env_dir"
export ORKESTRA_TEST_ENV="$env_dir"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (every crate, against the systems above)"
cargo test --workspace --locked --no-fail-fast
step "done"
