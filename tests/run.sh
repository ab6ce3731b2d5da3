#!/usr/bin/env bash
# orkestra's one test command (the README's; .ci/run runs exactly this).
#
# On a fresh machine it builds what it needs (the pinned Kubernetes binaries from the Go module
# proxy, moto into a venv, PostgreSQL from Debian's packages), caching everything outside the
# clone in ${ORKESTRA_CACHE:-~/.cache/orkestra}; then it starts one private control plane, moto and
# PostgreSQL for all test binaries, checks formatting and clippy, and runs every test against them.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "checking toolchains"
scripts/bootstrap.sh

step "building the test systems (cached: $ORKESTRA_CACHE/bin)"
tests/cluster/build-deps.sh

step "starting a private kube-apiserver, controller-manager, moto and PostgreSQL"
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
