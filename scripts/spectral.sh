#!/usr/bin/env bash
# Spectral with OWASP's API Security ruleset on every profile's /openapi.json, as `rebuff
# serve` publishes it. Fails on any error; warnings are printed and counted.
#
# Spectral and the ruleset are pinned in tools/spectral/package.json (and its lock file) and
# installed there with `npm ci` on first use. The rules, and the few that are switched off or
# narrowed with the reason for each, are in tools/spectral/.spectral.yaml and
# docs/HARDENING.md.
#   SPECTRAL_PROFILES="rebuff arize" bash scripts/spectral.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

TOOLS=tools/spectral
PROFILES="${SPECTRAL_PROFILES:-rebuff arize dataxid mlops incidents apikeys}"
SPECTRAL="$TOOLS/node_modules/.bin/spectral"
# npm ci again whenever the lock file changed since the last install.
if [[ ! -x "$SPECTRAL" || "$TOOLS/package-lock.json" -nt "$TOOLS/node_modules/.package-lock.json" ]]; then
    echo "Installing Spectral into $TOOLS/node_modules"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

cargo build --quiet -p rebuff-cli
BIN="$CARGO_TARGET_DIR/debug/rebuff"

# The documents go beside the ruleset: its per-path overrides match files relative to it.
WORK="$(mktemp -d "$TOOLS/run.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

status=0
summary=()
for profile in $PROFILES; do
    "$BIN" serve --addr 127.0.0.1:0 --db "$WORK/rebuff.db" --profile "$profile" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        grep -q "reference API (.*) on http://" "$WORK/server.log" && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$WORK/server.log" >&2
            echo "rebuff serve exited before listening" >&2
            exit 1
        fi
        sleep 0.1
    done
    base="$(grep -m1 -o 'on http://[0-9.:]*' "$WORK/server.log" | cut -c4- || true)"
    if [[ -z "$base" ]]; then
        cat "$WORK/server.log" >&2
        echo "could not read the address from rebuff serve's output" >&2
        exit 1
    fi
    doc="$WORK/openapi-$profile.json"
    curl --silent --show-error --fail "$base/openapi.json" -o "$doc"
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    rm -f "$WORK"/rebuff.db*

    echo "=== profile $profile"
    set +e
    "$SPECTRAL" lint --ruleset "$TOOLS/.spectral.yaml" --fail-severity error --display-only-failures "$doc"
    run_status=$?
    "$SPECTRAL" lint --ruleset "$TOOLS/.spectral.yaml" --format json --output "$WORK/report.json" "$doc" >/dev/null 2>&1
    set -e
    counts="$(node -e '
        const r = require(process.argv[1]);
        const n = (s) => r.filter((d) => d.severity === s).length;
        console.log(`${n(0)} errors, ${n(1)} warnings`);
    ' "$(realpath "$WORK/report.json")")"
    [[ "$run_status" != 0 ]] && status=1
    summary+=("$profile: $counts (exit $run_status)")
done

echo
echo "Spectral (spectral:oas + OWASP API Security 2023) on /openapi.json:"
printf '  %s\n' "${summary[@]}"
exit "$status"
