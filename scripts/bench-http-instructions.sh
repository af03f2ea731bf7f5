#!/usr/bin/env bash
# Instructions per request over real HTTP: bench_target's servers run under valgrind
# (callgrind), and wrk sends each route a few seconds of requests on loopback. Unlike
# bench-instructions.sh (in process, no socket), this counts what hyper, the connection
# handling of `rebuff serve` (header and idle timeouts) and the request body's channel cost
# too; unlike bench-server.sh, the count does not move with the machine's load. See
# BENCHMARKS.md.
#
#   bash scripts/bench-http-instructions.sh                  # every route below
#   bash scripts/bench-http-instructions.sh api floor        # some of them
#
# BENCH_HTTP_DURATION (6s) per route, at wrk -t1 -c8. Counts are of user space (the kernel's
# share of a system call is not counted) and are per answered request: callgrind's counters
# are zeroed before each route and dumped after it, and the total is divided by wrk's count.
# About 10 s per route plus a minute of start-up under valgrind, plus the build.
# BENCH_HTTP_PROFILES=DIR keeps each route's profile as DIR/<route>.callgrind, for
# callgrind_annotate. BENCH_HTTP_BIN=FILE runs that bench_target binary instead of building
# one (a copy of an earlier build, to compare two versions in one sitting).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
DURATION="${BENCH_HTTP_DURATION:-6s}"

# shellcheck source=lib/install-packages.sh
. scripts/lib/install-packages.sh
for tool in valgrind wrk; do
    command -v "$tool" >/dev/null 2>&1 || install_packages "$tool" ||
        { echo "$tool is missing and cannot be installed" >&2; exit 1; }
done

if [ -n "${BENCH_HTTP_BIN:-}" ]; then
    bin="$BENCH_HTTP_BIN"
else
    echo "== building the targets (release)" >&2
    cargo build --release --quiet -p rebuff-server --example bench_target
    bin="$CARGO_TARGET_DIR/release/examples/bench_target"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill -INT "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting bench_target under callgrind (about a minute)" >&2
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bin" >"$work/env" 2>"$work/valgrind.log" &
server_pid=$!
for _ in $(seq 1 300); do
    grep -q '^export BENCH_READY=1' "$work/env" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/valgrind.log" >&2; exit 1; }
    sleep 1
done
grep -q '^export BENCH_READY=1' "$work/env" || { echo "bench_target not ready after 300 s" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/env"

# shellcheck source=lib/wrk-lua.sh
. scripts/lib/wrk-lua.sh

# name|url|lua script
declare -A route=(
    [hello]="$BENCH_HELLO_URL/hello|$(lua hello GET '' '')"
    [floor]="$BENCH_FLOOR_URL/v1/projects|$(lua floor GET "$BENCH_API_KEY" '')"
    [floor_headers]="$BENCH_FLOOR_HEADERS_URL/v1/projects|$(lua floorh GET "$BENCH_API_KEY" '')"
    [api]="$BENCH_API_URL/v1/projects|$(lua api GET "$BENCH_API_KEY" '')"
    [api:401]="$BENCH_API_URL/v1/projects|$(lua api401 GET '' '')"
    [api:404]="$BENCH_API_URL/v1/projects/$BENCH_MISSING_ID|$(lua api404 GET "$BENCH_API_KEY" '')"
    [api:422]="$BENCH_API_URL/v1/projects|$(lua api422 POST "$BENCH_API_KEY" '{"name": ""}')"
    [api:429]="$BENCH_LIMITED_URL/v1/projects|$(lua api429 GET "$BENCH_LIMITED_KEY" '')"
    [layers]="$BENCH_LAYERS_URL/v1/projects|$(lua l200 GET "$BENCH_LAYERS_KEY" '')"
    [layers:401]="$BENCH_LAYERS_URL/v1/projects|$(lua l401 GET '' '')"
    [layers:404]="$BENCH_LAYERS_URL/v1/projects/$BENCH_MISSING_ID|$(lua l404 GET "$BENCH_LAYERS_KEY" '')"
    [layers:422]="$BENCH_LAYERS_URL/v1/projects|$(lua l422 POST "$BENCH_LAYERS_KEY" '{"name": ""}')"
    [layers:429]="$BENCH_LAYERS_LIMITED_URL/v1/projects|$(lua l429 GET "$BENCH_LAYERS_LIMITED_KEY" '')"
    [handmade]="$BENCH_HANDMADE_URL/v1/projects|$(lua h200 GET "$BENCH_HANDMADE_KEY" '')"
    [handmade:404]="$BENCH_HANDMADE_URL/v1/projects/$BENCH_MISSING_ID|$(lua h404 GET "$BENCH_HANDMADE_KEY" '')"
    [handmade:422]="$BENCH_HANDMADE_URL/v1/projects|$(lua h422 POST "$BENCH_HANDMADE_KEY" '{"name": ""}')"
)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(hello floor floor_headers api api:401 api:404 api:422 api:429 layers layers:401 layers:404 layers:422 layers:429
        handmade handmade:404 handmade:422)
fi

declare -A per
dumps=0
for t in "${targets[@]}"; do
    [ -n "${route[$t]:-}" ] || { echo "!! no route $t" >&2; exit 1; }
    IFS='|' read -r url script <<<"${route[$t]}"
    callgrind_control -z "$server_pid" >/dev/null 2>&1
    wrk -t1 -c8 -d"$DURATION" -s "$script" "$url" >"$work/wrk.txt"
    callgrind_control -d "$server_pid" >/dev/null 2>&1
    dumps=$((dumps + 1))
    requests="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.txt")"
    total="$(sed -n 's/^summary: *//p' "$work/cg.$server_pid.$dumps")"
    if [ -z "$requests" ] || [ "$requests" -eq 0 ] || [ -z "$total" ]; then
        echo "!! $t: no count" >&2
        cat "$work/wrk.txt" >&2
        exit 1
    fi
    per[$t]=$((total / requests))
    if [ -n "${BENCH_HTTP_PROFILES:-}" ]; then
        mkdir -p "$BENCH_HTTP_PROFILES"
        cp "$work/cg.$server_pid.$dumps" "$BENCH_HTTP_PROFILES/${t/:/-}.callgrind"
    fi
    echo "   $t: ${per[$t]} instructions per request ($requests requests)" >&2
done

# As in bench-instructions.sh: baseline / target, so that above 1 means faster.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
printf '\n| route | instructions per request | vs its baseline |\n|---|---|---|\n'
for t in "${targets[@]}"; do
    base=""
    case "$t" in
        api | floor_headers) base=floor ;;
        layers) base=handmade ;;
        api:*) base=api ;;
        layers:*) base=layers ;;
        handmade:*) base=handmade ;;
    esac
    shown=""
    if [ -n "$base" ] && [ -n "${per[$base]:-}" ]; then shown="$(ratio "${per[$base]}" "${per[$t]}") of $base"; fi
    printf '| %s | %s | %s |\n' "$t" "${per[$t]}" "$shown"
done
