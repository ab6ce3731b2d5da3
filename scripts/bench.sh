#!/usr/bin/env bash
# orkestra's benchmarks in one command: builds the agent, the plugin and the harness (release),
# starts a private kube-apiserver + moto (tests/cluster), and prints a table of figures beside a
# floor measured in the same run; writes bench.json and bench.md into the results directory.
#
#   scripts/bench.sh                          100 and 1,000 CRs, memory, reaction, plugin, peer
#   scripts/bench.sh --huge                   also 10,000 CRs
#   scripts/bench.sh --sizes 100 --only convergence,memory
#   scripts/bench.sh --help                   all options
#
# Results: $BENCH_RESULTS, else $ORKESTRA_CACHE/bench-results (default ~/.cache/orkestra/bench-results).
# Everything listens on loopback only. Nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
export BENCH_RESULTS="${BENCH_RESULTS:-$ORKESTRA_CACHE/bench-results}"

tests/cluster/build-deps.sh >&2
cargo build --release -q -p orkestra-agent -p kubectl-orkestra -p orkestra-bench >&2
bin="$CARGO_TARGET_DIR/release"
exec "$bin/orkestra-bench" --agent-bin "$bin/orkestra-agent" --plugin-bin "$bin/kubectl-orkestra" "$@"
