#!/usr/bin/env bash
# orkestra's main job, end to end on one machine, as users run it: a private Kubernetes cluster
# with a real node and moto (tests/cluster), the agent installed IN the cluster with
# `kubectl orkestra install` (its image built here without a daemon and loaded into the node),
# the application-stack Katalog applied with `kubectl orkestra apply`, one ApplicationStack CR,
# and what it produced: the agent Pod, a Deployment with its Pods available, a Service, an S3
# bucket with ownership tags, `kubectl orkestra status`. Then the CR is deleted: the bucket and
# the Pods go.
#
#   scripts/demo.sh            run it and clean up
#   scripts/demo.sh --keep     leave the cluster and agent running to explore (prints how to stop)
#
# The first run on a fresh machine builds etcd, Kubernetes, containerd and the CNI plugins from
# the Go module proxy and the workspace with cargo: about 35 minutes on 2 cores. Later runs
# reuse ~/.cache/orkestra and take about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
started=$(date +%s)
step() { printf '\n\033[1m==> [%ss] %s\033[0m\n' "$(($(date +%s) - started))" "$*" >&2; }

if [ ! -d "$ORKESTRA_CACHE/bin" ]; then
	step "first run on this machine: building everything from source takes about 35 minutes on 2 cores (later runs: about a minute)"
fi
step "checking toolchains and building the test systems (cached after the first run; progress below)"
scripts/bootstrap.sh
tests/cluster/build-deps.sh

step "building kubectl-orkestra and the orkestra-agent release binary, and the agent's image"
cargo build --locked -p kubectl-orkestra
cargo build --locked --release -p orkestra-agent
tests/cluster/images.sh build --agent "$CARGO_TARGET_DIR/release/orkestra-agent"
export PATH="$CARGO_TARGET_DIR/debug:$PATH" # kubectl finds the plugin on PATH

dir="$ORKESTRA_CACHE/demo"
cleanup() { tests/cluster/down.sh "$dir" >/dev/null 2>&1 || true; }
if ! $keep; then trap cleanup EXIT; fi

step "starting a private cluster (kube-apiserver, controller-manager, scheduler, a node) and moto in $dir"
tests/cluster/down.sh "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
tests/cluster/up.sh --only kube,node,moto "$dir"
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
K="${KUBECTL:-kubectl}"
# boto3 comes with moto, in the venv up.sh installed it into.
moto_python="$ORKESTRA_CACHE/moto-$(. tests/cluster/lib.sh; echo "$MOTO_VERSION")/bin/python"
"$K" get nodes -o wide

step "kubectl orkestra install: the agent as a Deployment in orkestra-system, reaching moto at $AWS_ENDPOINT_URL_IN_CLUSTER"
# moto takes any credentials; a real install names a Secret holding real ones the same way.
"$K" create namespace orkestra-system --dry-run=client -o yaml | "$K" apply -f - >/dev/null
"$K" -n orkestra-system create secret generic aws-credentials \
	--from-literal=AWS_ACCESS_KEY_ID=testing --from-literal=AWS_SECRET_ACCESS_KEY=testing \
	--dry-run=client -o yaml | "$K" apply -f - >/dev/null
kubectl orkestra install --image "$ORKESTRA_AGENT_IMAGE" --aws-endpoint-url "$AWS_ENDPOINT_URL_IN_CLUSTER" \
	--aws-region us-east-1 --aws-credentials-secret aws-credentials --wait
"$K" -n orkestra-system get pods -o wide

step "kubectl orkestra lint + apply katalogs/application-stack"
kubectl orkestra lint katalogs/application-stack
kubectl orkestra apply -f katalogs/application-stack/katalog.yaml --wait --timeout 120s

step "creating an ApplicationStack CR (katalogs/application-stack/cr-shop.yaml): Ready once its Deployment is available"
"$K" create namespace prod >/dev/null 2>&1 || true
"$K" apply -f katalogs/application-stack/cr-shop.yaml
"$K" -n prod wait --for=condition=Ready applicationstack/shop --timeout=180s

step "the result"
"$K" get applicationstacks -A
"$K" -n prod get deployments,pods,services -o wide
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
Agent logs:                   kubectl -n orkestra-system logs deploy/orkestra-agent
Stop it:                      tests/cluster/down.sh $dir
TXT
	exit 0
fi

step "deleting the CR: the agent's finalizer deletes the bucket, garbage collection the Deployment and its Pods"
"$K" -n prod delete applicationstack shop --wait=true --timeout=120s
"$K" -n prod wait --for=delete pod -l app.kubernetes.io/instance=shop --timeout=120s 2>/dev/null || true
echo "  pods left in prod: $("$K" -n prod get pods -o name | wc -l)" >&2
"$moto_python" - <<'PY'
import boto3, os
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
print("  buckets left in moto:", names or "none")
PY
step "done"
