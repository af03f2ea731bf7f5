#!/usr/bin/env bash
# Tests the generated error modules for real: `mypy --strict` and pytest for Python, `tsc
# --strict` and node's own test runner for TypeScript, both against `rebuff serve` over
# loopback in all six profiles and against a scripted fault server.
#
# pytest and mypy are pinned in sdk/python/requirements.txt and installed into a virtual
# environment (REBUFF_SDK_VENV, default ${XDG_CACHE_HOME:-~/.cache}/rebuff-sdk-venv);
# TypeScript and node's types come from sdk/typescript/package-lock.json (`npm ci`, into
# sdk/typescript/node_modules). Python 3.10+ (with venv) and Node 18+ with npm are installed
# with apt-get when missing and possible; then, with CI set, their absence fails the run;
# elsewhere the tests of the missing one are skipped, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
VENV="${REBUFF_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/rebuff-sdk-venv}"

# shellcheck source=lib/install-packages.sh
. scripts/lib/install-packages.sh

have_python() {
    command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

have_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
        node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)'
}

have_python || install_packages python3 python3-venv || true
have_node || install_packages nodejs npm || true

missing() {
    if [ -n "${CI:-}" ]; then
        echo "sdk-test: FAILED: $1 is required in CI" >&2
        exit 1
    fi
    echo "sdk-test: WARNING: $1 is missing; skipping its tests (CI fails instead)" >&2
}

cargo build --quiet -p rebuff-cli
export REBUFF_BIN="$CARGO_TARGET_DIR/debug/rebuff"

if have_python; then
    want="$(sha256sum sdk/python/requirements.txt | cut -d' ' -f1)"
    if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$want" ]; then
        echo "sdk-test: installing sdk/python/requirements.txt into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -r sdk/python/requirements.txt
        echo "$want" >"$VENV/.requirements"
    fi
    (cd sdk/python && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests)
else
    missing "Python 3.10 or later (with venv)"
fi

if have_node; then
    (
        cd sdk/typescript
        want="$(sha256sum package-lock.json | cut -d' ' -f1)"
        if [ "$(cat node_modules/.rebuff-lock 2>/dev/null)" != "$want" ]; then
            npm ci --no-audit --no-fund --loglevel=error
            echo "$want" >node_modules/.rebuff-lock
        fi
        npx --no-install tsc -p tsconfig.json
        node --test build/test/*.test.js
    )
else
    missing "Node 18 or later with npm"
fi
