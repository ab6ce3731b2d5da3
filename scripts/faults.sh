#!/usr/bin/env bash
# orkestra's fault suite in one command: builds the agent, the plugin and the harness (release),
# starts a private kube-apiserver + moto (tests/cluster) and runs each scenario with a deadline:
# kill -9 during convergence, kube-apiserver restart, a fault-injecting proxy in front of moto,
# leader failover, hostile input, secret canary. The last line is "N passed, N failed".
#
#   scripts/faults.sh                         every scenario
#   scripts/faults.sh --only kill9,proxy      some of them (kill9, apiserver, proxy, leader, hostile, canary)
#   scripts/faults.sh --help                  all options
#
# Results: $BENCH_RESULTS/faults.{json,md} (default ~/.cache/orkestra/bench-results).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
export BENCH_RESULTS="${BENCH_RESULTS:-$ORKESTRA_CACHE/bench-results}"

tests/cluster/build-deps.sh >&2
cargo build --release -q -p orkestra-agent -p kubectl-orkestra -p orkestra-bench >&2
bin="$CARGO_TARGET_DIR/release"
exec "$bin/orkestra-faults" --agent-bin "$bin/orkestra-agent" --plugin-bin "$bin/kubectl-orkestra" "$@"
