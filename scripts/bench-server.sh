#!/usr/bin/env bash
# Loopback load benchmark, in one run: bare axum hello vs the full rebuff stack on a success
# route vs the same stack on error routes (401, 404, 422, 429). See BENCHMARKS.md.
#
#   bash scripts/bench-server.sh
#
# Settings (environment): BENCH_ROUNDS (3), BENCH_DURATION (5s), BENCH_WARMUP (1s),
# BENCH_THREADS (1), BENCH_CONNECTIONS (32), BENCH_PIN (1: wrk on core 0, the servers on
# core 1, when there are at least 2 cores), BENCH_FASTAPI (1: also FastAPI + uvicorn's bare
# 404, installed into a virtual environment under the target directory):
# 19 targets x 3 rounds x 6 s, about 6 minutes plus the build.
# Only 127.0.0.1 is contacted; the servers are stopped on exit.
# Exit status: 0 when every target answered the expected status throughout (whether the
# speed targets are met is reported, not enforced), 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
DURATION="${BENCH_DURATION:-5s}"
WARMUP="${BENCH_WARMUP:-1s}"
THREADS="${BENCH_THREADS:-1}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
ROUNDS="${BENCH_ROUNDS:-3}"
PIN="${BENCH_PIN:-1}"
FASTAPI="${BENCH_FASTAPI:-1}"
# wrk on one core, every server on the other, so that neither steals the other's cycles.
client_cpu=() server_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    client_cpu=(taskset -c 0) server_cpu=(taskset -c 1)
fi

# shellcheck source=lib/install-packages.sh
. scripts/lib/install-packages.sh
command -v wrk >/dev/null 2>&1 || install_packages wrk || { echo "wrk is missing and cannot be installed" >&2; exit 1; }

echo "== building the targets (release)" >&2
cargo build --release --quiet -p rebuff-server --example bench_target

work="$(mktemp -d)"
server_pid=""
fastapi_pid=""
cleanup() {
    for pid in $server_pid $fastapi_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${server_cpu[@]}" "$CARGO_TARGET_DIR/release/examples/bench_target" >"$work/env" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
    grep -q '^export BENCH_READY=1' "$work/env" 2>/dev/null && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "bench_target exited before it was ready:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
grep -q '^export BENCH_READY=1' "$work/env" || { echo "bench_target not ready after 30 s" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/env"

# FastAPI + uvicorn (one worker), a bare app whose every route is its default 404: what the
# layers' 404 is compared with. Installed into a virtual environment of its own; the row is
# left out, with a message, if that cannot be done.
fastapi_url=""
if [ "$FASTAPI" = 1 ]; then
    venv="$CARGO_TARGET_DIR/bench-fastapi-venv"
    if [ ! -x "$venv/bin/uvicorn" ]; then
        echo "== installing FastAPI and uvicorn into $venv" >&2
        { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'fastapi==0.115.*' 'uvicorn==0.32.*'; } >&2 \
            || echo "!! FastAPI could not be installed; its row is skipped" >&2
    fi
    if [ -x "$venv/bin/uvicorn" ]; then
        port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        "${server_cpu[@]}" "$venv/bin/uvicorn" --app-dir scripts/bench fastapi_bare:app --host 127.0.0.1 \
            --port "$port" --workers 1 --log-level warning --no-access-log >"$work/fastapi.log" 2>&1 &
        fastapi_pid=$!
        for _ in $(seq 1 100); do
            curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
            sleep 0.1
        done
        if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
            fastapi_url="http://127.0.0.1:$port"
        else
            echo "!! FastAPI did not start; its row is skipped:" >&2
            cat "$work/fastapi.log" >&2
        fi
    fi
fi

# shellcheck source=lib/wrk-lua.sh
. scripts/lib/wrk-lua.sh

# name | stack | expected status | url | lua script
targets=(
    "hello|hello|200|$BENCH_HELLO_URL/hello|$(lua hello GET '' '')"
    "floor GET /v1/projects|floor|200|$BENCH_FLOOR_URL/v1/projects|$(lua floor GET "$BENCH_API_KEY" '')"
    "floor+headers GET|floor_headers|200|$BENCH_FLOOR_HEADERS_URL/v1/projects|$(lua floorh GET "$BENCH_API_KEY" '')"
    "api GET /v1/projects|api|200|$BENCH_API_URL/v1/projects|$(lua api200 GET "$BENCH_API_KEY" '')"
    "api 401 no key|api|401|$BENCH_API_URL/v1/projects|$(lua api401 GET '' '')"
    "api 404 missing id|api|404|$BENCH_API_URL/v1/projects/$BENCH_MISSING_ID|$(lua api404 GET "$BENCH_API_KEY" '')"
    "api 422 empty name|api|422|$BENCH_API_URL/v1/projects|$(lua api422 POST "$BENCH_API_KEY" '{"name": ""}')"
    "api 429 over limit|api|429|$BENCH_LIMITED_URL/v1/projects|$(lua api429 GET "$BENCH_LIMITED_KEY" '')"
    "layers GET /v1/projects|layers|200|$BENCH_LAYERS_URL/v1/projects|$(lua l200 GET "$BENCH_LAYERS_KEY" '')"
    "layers 401 no key|layers|401|$BENCH_LAYERS_URL/v1/projects|$(lua l401 GET '' '')"
    "layers 404 missing id|layers|404|$BENCH_LAYERS_URL/v1/projects/$BENCH_MISSING_ID|$(lua l404 GET "$BENCH_LAYERS_KEY" '')"
    "layers 422 empty name|layers|422|$BENCH_LAYERS_URL/v1/projects|$(lua l422 POST "$BENCH_LAYERS_KEY" '{"name": ""}')"
    "layers 429 over limit|layers|429|$BENCH_LAYERS_LIMITED_URL/v1/projects|$(lua l429 GET "$BENCH_LAYERS_LIMITED_KEY" '')"
    "handmade GET /v1/projects|handmade|200|$BENCH_HANDMADE_URL/v1/projects|$(lua h200 GET "$BENCH_HANDMADE_KEY" '')"
    "handmade 401 no key|handmade|401|$BENCH_HANDMADE_URL/v1/projects|$(lua h401 GET '' '')"
    "handmade 404 missing id|handmade|404|$BENCH_HANDMADE_URL/v1/projects/$BENCH_MISSING_ID|$(lua h404 GET "$BENCH_HANDMADE_KEY" '')"
    "handmade 422 empty name|handmade|422|$BENCH_HANDMADE_URL/v1/projects|$(lua h422 POST "$BENCH_HANDMADE_KEY" '{"name": ""}')"
    "handmade 429 over limit|handmade|429|$BENCH_HANDMADE_LIMITED_URL/v1/projects|$(lua h429 GET "$BENCH_HANDMADE_LIMITED_KEY" '')"
)
if [ -n "$fastapi_url" ]; then
    targets+=("fastapi 404 bare|fastapi|404|$fastapi_url/v1/projects/$BENCH_MISSING_ID|$(lua f404 GET '' '')")
fi

if [ ${#client_cpu[@]} -gt 0 ]; then pinning="wrk pinned to core 0, the servers to core 1"; else pinning="nothing pinned"; fi
echo "== $(nproc) cores, $pinning; $ROUNDS rounds of: each target for wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up)" >&2
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load average before: $load_start (other work on the machine skews every figure)" >&2
results="$work/results"
hz="$(getconf CLK_TCK)"
# utime + stime of the server process, in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name, field 2, has no spaces here).
server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
: >"$results"
failed=0
# Rounds interleave the targets, so that a burst of other work on the machine lands on one
# round of several targets rather than on every round of one; the table takes the median.
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!targets[@]}"; do
        IFS='|' read -r name stack status url script <<<"${targets[$i]}"
        pid="$server_pid"
        [ "$stack" = fastapi ] && pid="$fastapi_pid"
        "${client_cpu[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$script" "$url" >/dev/null
        ticks_before="$(server_ticks "$pid")"
        out="$("${client_cpu[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url")"
        ticks="$(($(server_ticks "$pid") - ticks_before))"
        rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
        total="$(awk '/requests in/ {print $1}' <<<"$out")"
        secs="$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' <<<"$out")"
        non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")"
        non2xx="${non2xx:-0}"
        p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
        # The server's CPU time (user + system) per request, and its share of one core.
        cpu_us="$(awk -v t="$ticks" -v hz="$hz" -v n="$total" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')"
        cpu_pct="$(awk -v t="$ticks" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f%%", t / hz / s * 100}')"
        errors="$(grep -E '^ *Socket errors:' <<<"$out" || true)"
        # Every response of a 2xx target must be 2xx; every response of an error target must not.
        ok=yes
        if [ "${status:0:1}" = 2 ]; then [ "$non2xx" = 0 ] || ok=no; else [ "$non2xx" = "$total" ] || ok=no; fi
        [ -z "$errors" ] || ok=no
        if [ "$ok" = no ]; then
            failed=1
            echo "!! $name: expected every response to be $status; wrk said:" >&2
            echo "$out" >&2
        fi
        printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$i" "$name" "$stack" "$status" "$rps" "$p99" "$ok" "$cpu_us" "$cpu_pct" >>"$results"
        printf '   round %s  %-24s %10s req/s  %5s us CPU/request\n' "$round" "$name" "$rps" "$cpu_us" >&2
    done
done

# Per target, the round with the median requests/s; ratios to bare hello, to the stack's own
# baseline (api: floor; layers: handmade; layers 404: also FastAPI's 404) and, for error rows,
# to the success route of the same stack, all from medians.
awk -F'|' '
    function trunc(x) { return int(x * 100) / 100 }
    function verdict(ok) { return ok ? "met" : "MISSED" }
    { i = $1; n[i]++; name[i] = $2; stack[i] = $3; status[i] = $4
      r[i, n[i]] = $5; p99[i, n[i]] = $6; cpu[i, n[i]] = $8; pct[i, n[i]] = $9
      if ($7 != "yes") bad[i] = 1
      if ($1 + 1 > count) count = $1 + 1 }
    END {
        for (i = 0; i < count; i++) {
            # Order the rounds by requests/s (insertion sort; a handful of rounds).
            for (a = 1; a <= n[i]; a++) order[a] = a
            for (a = 2; a <= n[i]; a++)
                for (b = a; b > 1 && r[i, order[b]] + 0 < r[i, order[b - 1]] + 0; b--) {
                    t = order[b]; order[b] = order[b - 1]; order[b - 1] = t
                }
            m = order[int((n[i] + 1) / 2)]
            med[i] = r[i, m]; mp99[i] = p99[i, m]; mcpu[i] = cpu[i, m]; mpct[i] = pct[i, m]
            lo[i] = r[i, order[1]]; hi[i] = r[i, order[n[i]]]
            if (stack[i] == "hello") hello = med[i]
            else if (stack[i] == "floor") floor = med[i]
            else if (stack[i] == "floor_headers") floor_headers = med[i]
            else if (stack[i] == "fastapi") fastapi = med[i]
            else if (status[i] == "200") success[stack[i]] = med[i]
        }
        printf "\n| %-25s | %6s | %8s | %15s | %8s | %7s | %10s | %9s | %-44s | %10s | %9s |\n", "route", "status", "req/s", "min-max", "p99", "/ hello", "/ baseline", "/ success", "target", "server CPU", "of a core"
        printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "---------------------------", "--------", "----------", "-----------------", "----------", "---------", "------------", "-----------", "----------------------------------------------", "------------", "-----------"
        for (i = 0; i < count; i++) {
            # Ratios are shown truncated, not rounded, so that a shown 0.95x always meets 0.95x.
            rs = ""; rb = ""; target = ""
            if (stack[i] == "hello") target = "(baseline)"
            else if (stack[i] == "floor") target = "(baseline of api: bare axum + the reads)"
            else if (stack[i] == "floor_headers" && floor > 0) {
                rb = sprintf("%.2fx", trunc(med[i] / floor))
                target = "(info: the floor + the contract headers)"
            }
            else if (stack[i] == "fastapi") {
                target = "(baseline of layers 404)"
                # What bare axum reaches against it: the most any axum stack can reach.
                if (med[i] > 0) target = sprintf("(baseline of layers 404; hello is %.1fx it)", int(hello / med[i] * 10) / 10)
            }
            else if (stack[i] == "handmade" && status[i] == "200") target = "(baseline of layers: by hand)"
            else if (stack[i] == "api" && status[i] == "200" && floor > 0) {
                rb = sprintf("%.2fx", trunc(med[i] / floor))
                target = sprintf(">= 0.85x floor: %s", verdict(med[i] / floor >= 0.85))
                if (floor_headers > 0) target = target sprintf("; %.2fx floor+headers", trunc(med[i] / floor_headers))
            } else if (stack[i] == "layers" && status[i] == "200" && success["handmade"] > 0) {
                rb = sprintf("%.2fx", trunc(med[i] / success["handmade"]))
                target = sprintf(">= 1.2x handmade: %s", verdict(med[i] / success["handmade"] >= 1.2))
            }
            if (status[i] != "200" && stack[i] != "fastapi" && success[stack[i]] > 0) {
                ratio = med[i] / success[stack[i]]
                rs = sprintf("%.2fx", trunc(ratio))
                if (stack[i] == "handmade") target = "(info)"
                else target = sprintf(">= 0.95x success: %s", verdict(ratio >= 0.95))
            }
            if (stack[i] == "layers" && status[i] == "404" && fastapi > 0) {
                rb = sprintf("%.1fx", int(med[i] / fastapi * 10) / 10)
                target = target sprintf("; >= 30x fastapi: %s", verdict(med[i] / fastapi >= 30))
            }
            if (bad[i]) target = "WRONG STATUS"
            printf "| %-25s | %6s | %8.0f | %15s | %8s | %6.2fx | %10s | %9s | %-44s | %7s us | %9s |\n", name[i], status[i], med[i], sprintf("%.0f-%.0f", lo[i], hi[i]), mp99[i], trunc(med[i] / hello), rb, rs, target, mcpu[i], mpct[i]
        }
    }' "$results"
echo
echo "load average before: $load_start; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo "api = the reference API over SQLite (rebuff_server::app); floor = bare axum doing the api success route's SQLite read (the page; keys in a map, as the api caches them) and nothing else; floor+headers = the floor also writing the headers the contract puts on every response (request id, the five rate-limit fields, nosniff), no limit decided; layers = the api's layer stack over in-memory stores and trivial handlers (no SQLite); handmade = the same routes with the stack an axum user assembles by hand (tower-http, tower_governor, from_fn key lookup, json! problems); fastapi = FastAPI + uvicorn, one worker, its default 404."
echo "req/s, p99, server CPU: the round with the median req/s of $ROUNDS; min-max: req/s over the rounds."
echo "server CPU = the server process's CPU time (user + system) per request; of a core = its CPU time over the run's wall time."
exit "$failed"
