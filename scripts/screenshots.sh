#!/usr/bin/env bash
# Screenshots of the error reference page (`rebuff docs --format html`) in headless Chromium at
# a phone width (390 px) and a desktop width (1280 px), light and dark, and a layout check at
# 360, 390 and 1280 px: no element may reach past the right edge of the viewport, and the page
# may not scroll sideways. Elements inside a box that clips or scrolls its own overflow are
# measured by that box. scripts/screenshots.py drives Chromium over its DevTools pipe.
#
#   bash scripts/screenshots.sh                 # every profile
#   bash scripts/screenshots.sh arize rebuff    # some
#
# Chromium comes from the distribution's packages (apt-get install chromium) when missing.
# Output in $SCREENSHOT_DIR (default $CARGO_TARGET_DIR/screenshots, else ./target/screenshots):
# <profile>-<width>[-dark]-{top,entry}.png and the page itself. Exit status 1 when the layout
# or filter check fails for any page and width.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
OUT="${SCREENSHOT_DIR:-$CARGO_TARGET_DIR/screenshots}"
PROFILES=("$@")
if [ ${#PROFILES[@]} -eq 0 ]; then
    PROFILES=(rebuff arize dataxid mlops incidents apikeys)
fi

say() { echo "screenshots: $*" >&2; }

chromium_bin() { command -v chromium || command -v chromium-browser || true; }

if [ -z "$(chromium_bin)" ]; then
    say "installing chromium with apt-get"
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    else
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    fi
fi
CHROMIUM="$(chromium_bin)"
[ -n "$CHROMIUM" ] || { say "ERROR: no chromium"; exit 1; }

cargo build --quiet -p rebuff-cli
BIN="$CARGO_TARGET_DIR/debug/rebuff"
mkdir -p "$OUT"
PROFILE_DIR="$(mktemp -d)"
trap 'rm -rf "$PROFILE_DIR"' EXIT

pages=()
for profile in "${PROFILES[@]}"; do
    "$BIN" docs "$profile" --format html --out "$OUT/$profile.html" >/dev/null
    pages+=("$OUT/$profile.html")
done
# The default profile as `rebuff serve` sends it, with its Content-Security-Policy header.
"$BIN" serve --addr 127.0.0.1:0 --db "$PROFILE_DIR/rebuff.db" >"$PROFILE_DIR/serve.out" 2>/dev/null &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$PROFILE_DIR"' EXIT
for _ in $(seq 100); do
    grep -q ' on http://' "$PROFILE_DIR/serve.out" && break
    sleep 0.1
done
BASE="$(grep -o ' on http://[^ ]*' "$PROFILE_DIR/serve.out" | head -n 1 | cut -c5-)"
[ -n "$BASE" ] || { say "ERROR: rebuff serve did not start"; exit 1; }
pages+=("$BASE/errors")
# A fresh browser profile of its own, beside the server's files.
mkdir -p "$PROFILE_DIR/browser"
python3 scripts/screenshots.py "$CHROMIUM" "$PROFILE_DIR/browser" "$OUT" "${pages[@]}"
say "pages and screenshots in $OUT"
