#!/usr/bin/env bash
# Build the kubectl-orkestra release archive for linux/amd64 and fill its sha256 into the krew
# manifest.
#
#   scripts/release.sh [--out DIR] [--write-manifest]
#
# Writes DIR/kubectl-orkestra-vVERSION-linux-amd64.tar.gz (kubectl-orkestra and LICENSE, flat,
# reproducible: sorted, mtime 0, root-owned, gzip without a name or time) and
# DIR/krew-manifest.yaml (krew-manifest.yaml with version, uri and sha256 filled in).
# --write-manifest also rewrites the repository's krew-manifest.yaml.
#
# Environment:
#   ORKESTRA_RELEASE_BIN  use this already built binary instead of `cargo build --release`
#   CARGO_TARGET_DIR      as for cargo (default: /root/.cache/orkestra/target when it exists)
#   RELEASE_BASE_URL      where the archive is published (default: the GitHub release URL)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/dist"
write_manifest=0
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out="$2"; shift 2 ;;
	--write-manifest) write_manifest=1; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

log() { echo "[release.sh] $*" >&2; }
die() { echo "[release.sh] error: $*" >&2; exit 1; }

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
[ -n "$version" ] || die "no [workspace.package] version in Cargo.toml"
tag="v$version"
base_url="${RELEASE_BASE_URL:-https://github.com/orkspace/orkestra/releases/download/$tag}"
archive_name="kubectl-orkestra-$tag-linux-amd64.tar.gz"
[ -f "$root/LICENSE" ] || die "LICENSE missing at the repository root"

if [ -n "${ORKESTRA_RELEASE_BIN:-}" ]; then
	bin="$ORKESTRA_RELEASE_BIN"
	[ -x "$bin" ] || die "ORKESTRA_RELEASE_BIN=$bin is not an executable"
else
	[ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] || die "build on linux/amd64 (or set ORKESTRA_RELEASE_BIN)"
	if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /root/.cache/orkestra/target ]; then
		export CARGO_TARGET_DIR=/root/.cache/orkestra/target
	fi
	log "cargo build --release -p kubectl-orkestra"
	(cd "$root" && cargo build --release --locked -p kubectl-orkestra) || (cd "$root" && cargo build --release -p kubectl-orkestra)
	bin="${CARGO_TARGET_DIR:-$root/target}/release/kubectl-orkestra"
fi
file "$bin" 2>/dev/null | grep -q 'x86-64' || log "warning: $bin does not look like an x86-64 ELF binary"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$bin" "$stage/kubectl-orkestra"
install -m 0644 "$root/LICENSE" "$stage/LICENSE"
mkdir -p "$out"
tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner -C "$stage" -cf - kubectl-orkestra LICENSE |
	gzip -n -9 >"$out/$archive_name"
sha="$(sha256sum "$out/$archive_name" | cut -d' ' -f1)"

sed -e "s|^  version: .*|  version: $tag|" \
	-e "s|^      uri: .*|      uri: $base_url/$archive_name|" \
	-e "s|^      sha256: .*|      sha256: \"$sha\"|" \
	"$root/krew-manifest.yaml" >"$out/krew-manifest.yaml"
grep -q "sha256: \"$sha\"" "$out/krew-manifest.yaml" || die "could not fill sha256 into $out/krew-manifest.yaml"
if [ "$write_manifest" = 1 ]; then
	cp "$out/krew-manifest.yaml" "$root/krew-manifest.yaml"
	log "updated $root/krew-manifest.yaml"
fi
log "archive:  $out/$archive_name"
log "sha256:   $sha"
log "manifest: $out/krew-manifest.yaml"
echo "$out/$archive_name"
