#!/usr/bin/env bash
# orkestra's main job, end to end on one machine: a private Kubernetes control plane and moto
# (tests/cluster), the agent running against them, the application-stack Katalog installed with
# `kubectl orkestra apply`, one ApplicationStack CR, and what it produced: a Deployment, a Service,
# an S3 bucket with ownership tags, the CR's status. Then the CR is deleted and the bucket goes.
#
#   scripts/demo.sh            run it and clean up
#   scripts/demo.sh --keep     leave the cluster and agent running to explore (prints how to stop)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "checking toolchains and building the test systems (cached after the first run)"
scripts/bootstrap.sh
tests/cluster/build-deps.sh

step "building kubectl-orkestra and orkestra-agent"
cargo build -q -p kubectl-orkestra -p orkestra-agent
export PATH="$CARGO_TARGET_DIR/debug:$PATH"   # kubectl finds the plugin on PATH

dir="$ORKESTRA_CACHE/demo"
agent_log="$ORKESTRA_CACHE/demo-agent.log"
agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
    tests/cluster/down.sh "$dir" >/dev/null 2>&1 || true
}
if ! $keep; then trap cleanup EXIT; fi

step "starting a private kube-apiserver, controller-manager and moto in $dir"
tests/cluster/down.sh "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
tests/cluster/up.sh --only kube,moto "$dir"
set -a; . "$dir/env"; set +a
K="${KUBECTL:-kubectl}"
# boto3 comes with moto, in the venv up.sh installed it into.
moto_python="$ORKESTRA_CACHE/moto-$(. tests/cluster/lib.sh; echo "$MOTO_VERSION")/bin/python"

step "installing the Katalog CRD and starting the agent (logs: $agent_log)"
"$K" apply -f deploy/crds/katalog.yaml >/dev/null
"$K" wait --for=condition=Established crd/katalogs.orkestra.orkspace.io --timeout=60s >/dev/null
ORKESTRA_LOG_FORMAT=text RUST_LOG="${RUST_LOG:-info}" orkestra-agent \
    --leader-election off --metrics-addr 127.0.0.1:0 >"$agent_log" 2>&1 &
agent_pid=$!

step "kubectl orkestra lint + apply katalogs/application-stack"
kubectl orkestra lint katalogs/application-stack
kubectl orkestra apply -f katalogs/application-stack/katalog.yaml --wait --timeout 120s

step "creating an ApplicationStack CR (katalogs/application-stack/cr-shop.yaml)"
"$K" create namespace prod >/dev/null 2>&1 || true
"$K" apply -f katalogs/application-stack/cr-shop.yaml
"$K" -n prod wait --for=condition=Ready applicationstack/shop --timeout=120s

step "the result"
"$K" get applicationstacks -A
"$K" -n prod get deployments,services -l app.kubernetes.io/instance=shop
kubectl orkestra status -A
echo "S3 buckets in moto, with their tags:" >&2
"$moto_python" - <<'PY'
import boto3, os
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for b in s3.list_buckets()["Buckets"]:
    tags = s3.get_bucket_tagging(Bucket=b["Name"]).get("TagSet", [])
    print(f"  {b['Name']}: " + ", ".join(f"{t['Key']}={t['Value']}" for t in tags))
PY

if $keep; then
    cat >&2 <<TXT

Left running. In this shell:  set -a; . $dir/env; set +a; export PATH="$CARGO_TARGET_DIR/debug:\$PATH"
Stop it:                      kill $agent_pid; tests/cluster/down.sh $dir
TXT
    exit 0
fi

step "deleting the CR: the finalizer deletes the bucket, garbage collection the children"
"$K" -n prod delete applicationstack shop --wait=true --timeout=120s
"$moto_python" - <<'PY'
import boto3, os
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
print("  buckets left in moto:", names or "none")
PY
step "done"
