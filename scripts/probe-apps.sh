#!/usr/bin/env bash
# Installs the small FastAPI and Express apps that `rebuff probe`'s tests probe
# (crates/rebuff-probe/tests/apps), into a directory of their own, never into the work tree:
# a Python virtual environment from the pinned requirements.txt, and node_modules by
# `npm ci` from the checked-in package-lock.json. It installs again only when those files
# change, so a second run costs nothing. Prints the directory.
#
#   bash scripts/probe-apps.sh [DIR]   # default: $CARGO_TARGET_DIR/probe-apps
#
# Needs python3 (with venv), node and npm; with CI set, as root, it installs them from the
# distribution's packages. The test that calls it fails when they are missing and CI is set,
# and says it skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
APPS=crates/rebuff-probe/tests/apps
DIR="${1:-${CARGO_TARGET_DIR:-$PWD/target}/probe-apps}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

missing() { ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null ||
    ! command -v node >/dev/null || ! command -v npm >/dev/null; }
# In CI, as root on a Debian-like system, the tools come from the distribution's packages.
if missing && [[ -n "${CI:-}" && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "probe-apps: installing python3-venv, nodejs and npm from the distribution" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv nodejs npm >&2
fi
if missing; then
    echo "probe-apps: python3 (with venv), node and npm are needed" >&2
    exit 1
fi

# Test binaries may call this at the same time: one installs, the others wait.
exec 9>"$DIR/.lock"
flock 9

stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

want="$(stamp "$APPS/fastapi/requirements.txt")"
if [[ "$(cat "$DIR/venv/.stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "probe-apps: installing the FastAPI app's requirements into $DIR/venv" >&2
    rm -rf "$DIR/venv"
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check -r "$APPS/fastapi/requirements.txt" >&2
    echo "$want" >"$DIR/venv/.stamp"
fi

want="$(stamp "$APPS/express/package.json" "$APPS/express/package-lock.json")"
if [[ "$(cat "$DIR/express/.stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "probe-apps: npm ci for the Express app into $DIR/express" >&2
    rm -rf "$DIR/express"
    mkdir -p "$DIR/express"
    cp "$APPS/express/package.json" "$APPS/express/package-lock.json" "$DIR/express/"
    (cd "$DIR/express" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
    echo "$want" >"$DIR/express/.stamp"
fi

echo "$DIR"
