#!/usr/bin/env bash
# Checks (and where it can, installs) what orkestra's scripts need on a fresh machine:
# Rust at the version rust-toolchain.toml pins, Go for the Kubernetes test binaries, Python 3 for
# moto, openssl for the test cluster's certificates. Everything else the scripts install themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    if have apt-get && [ "$(id -u)" = 0 ]; then
        echo "installing $* with apt-get" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        return 1
    fi
}

have openssl || apt_install openssl || missing+=("openssl")
have python3 || apt_install python3 python3-venv || missing+=("python3 (with venv)")
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv || true
if ! have cargo; then
    missing+=("Rust (cargo): install rustup (https://rustup.rs), then rerun; rust-toolchain.toml selects the version")
elif have rustup; then
    # rustup reads rust-toolchain.toml; this installs the pinned toolchain when it is absent.
    rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install "$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)" --profile minimal -c rustfmt,clippy
fi
have go || [ -x /usr/local/go/bin/go ] || missing+=("Go >= 1.24 (the Kubernetes test binaries are built from the Go module proxy)")

if [ ${#missing[@]} -gt 0 ]; then
    echo "error: missing tools:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "toolchains: $(cargo --version), $(go version 2>/dev/null || /usr/local/go/bin/go version), $(python3 --version)" >&2
