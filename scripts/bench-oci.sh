#!/usr/bin/env bash
# Push and pull of a typical Katalog (katalogs/application-stack: the Katalog, its CRD, an example
# CR) through a real registry (CNCF Distribution with htpasswd auth, on loopback), whole-process
# times of `kubectl orkestra push|pull` beside `oras push|pull` of the same files with the same
# media types, measured in the same run. Each push goes to a new repository (every blob is
# uploaded); each pull writes into a new folder. Prints median and p90 per tool and the ratio.
#
#   scripts/bench-oci.sh            20 rounds
#   scripts/bench-oci.sh 50         50 rounds
#
# Nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/.cargo/bin"
export ORKESTRA_CACHE="${ORKESTRA_CACHE:-$HOME/.cache/orkestra}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORKESTRA_CACHE/target}"
rounds="${1:-20}"
case "$rounds" in '' | *[!0-9]*) echo "usage: $0 [ROUNDS]" >&2; exit 2 ;; esac

tests/cluster/build-deps.sh registry oras >&2
echo "building kubectl-orkestra (release)" >&2
cargo build --release -q --locked -p kubectl-orkestra >&2
plugin="$CARGO_TARGET_DIR/release/kubectl-orkestra"

dir="$(mktemp -d "${TMPDIR:-/tmp}/orkestra-bench-oci.XXXXXX")"
trap 'tests/cluster/down.sh "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
tests/cluster/up.sh --only registry "$dir" >&2
# shellcheck disable=SC1091
. "$dir/env"
auth="$(printf '%s:%s' "$REGISTRY_USERNAME" "$REGISTRY_PASSWORD" | base64 -w0)"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY_HOST" "$auth" >"$dir/config.json"

src=katalogs/application-stack
# The config blob orkestra writes, so both tools push byte-identical artifacts' contents.
"$plugin" push "$src" "oci://$REGISTRY_HOST/bench/config:0" --plain-http --registry-config "$dir/config.json" >/dev/null
"$ORAS" manifest fetch-config --plain-http --registry-config "$dir/config.json" "$REGISTRY_HOST/bench/config:0" >"$dir/katalog-config.json"
cp "$src"/*.yaml "$dir/"

now() { date +%s%N; }
declare -a t_op t_or t_pull_op t_pull_or
for i in $(seq 1 "$rounds"); do
	s=$(now)
	"$plugin" push "$src" "oci://$REGISTRY_HOST/bench/orkestra-$i:1" --plain-http --registry-config "$dir/config.json" >/dev/null 2>&1
	t_op+=($((($(now) - s) / 1000)))
	s=$(now)
	(cd "$dir" && "$ORAS" push --plain-http --registry-config config.json "$REGISTRY_HOST/bench/oras-$i:1" \
		--config katalog-config.json:application/vnd.orkestra.katalog.config.v1+json \
		katalog.yaml:application/vnd.orkestra.katalog.v1+yaml crd.yaml:application/vnd.orkestra.katalog.crd.v1+yaml \
		cr-shop.yaml:application/vnd.orkestra.katalog.example.v1+yaml >/dev/null 2>&1)
	t_or+=($((($(now) - s) / 1000)))
	s=$(now)
	"$plugin" pull "oci://$REGISTRY_HOST/bench/orkestra-$i:1" -d "$dir/pull-orkestra-$i" --plain-http --registry-config "$dir/config.json" >/dev/null 2>&1
	t_pull_op+=($((($(now) - s) / 1000)))
	mkdir -p "$dir/pull-oras-$i"
	s=$(now)
	(cd "$dir/pull-oras-$i" && "$ORAS" pull --plain-http --registry-config ../config.json "$REGISTRY_HOST/bench/oras-$i:1" >/dev/null 2>&1)
	t_pull_or+=($((($(now) - s) / 1000)))
	printf '.' >&2
done
echo >&2
diff -r "$dir/pull-orkestra-1" "$dir/pull-oras-1" >/dev/null ||
	{ echo "the two pulls wrote different files" >&2; exit 1; }

# stats NAME VALUES…: median and p90 in ms (VALUES in µs).
stats() {
	printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {
		m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.9 + 0.999)];
		printf "%.1f %.1f\n", m / 1000, p / 1000 }'
}
read -r op_m op_p < <(stats "${t_op[@]}")
read -r or_m or_p < <(stats "${t_or[@]}")
read -r pop_m pop_p < <(stats "${t_pull_op[@]}")
read -r por_m por_p < <(stats "${t_pull_or[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
printf '\nKatalog artifact: %s (%s files, %s bytes), %s rounds, registry %s\n\n' \
	"$src" "$(ls "$src"/*.yaml | wc -l)" "$(cat "$src"/*.yaml | wc -c)" "$rounds" "$REGISTRY_HOST"
printf '| operation | kubectl orkestra median / p90 | oras median / p90 (baseline) | ratio (median) |\n'
printf '| --- | --- | --- | --- |\n'
printf '| push (new repository) | %s ms / %s ms | %s ms / %s ms | %s |\n' "$op_m" "$op_p" "$or_m" "$or_p" "$(ratio "$op_m" "$or_m")"
printf '| pull (new folder) | %s ms / %s ms | %s ms / %s ms | %s |\n' "$pop_m" "$pop_p" "$por_m" "$por_p" "$(ratio "$pop_m" "$por_m")"
