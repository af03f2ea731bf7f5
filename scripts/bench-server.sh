#!/usr/bin/env bash
# Loopback load benchmark, in one run: bare axum hello vs the full rebuff stack on a success
# route vs the same stack on error routes (401, 404, 422, 429). See BENCHMARKS.md.
#
#   bash scripts/bench-server.sh
#
# Settings (environment): BENCH_ROUNDS (3), BENCH_DURATION (5s), BENCH_WARMUP (1s),
# BENCH_THREADS (2), BENCH_CONNECTIONS (32): 12 targets x 3 rounds x 6 s, about 3.6 minutes.
# Only 127.0.0.1 is contacted; the server is stopped on exit.
# Exit status: 0 when every target answered the expected status throughout (whether the
# speed targets are met is reported, not enforced), 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
DURATION="${BENCH_DURATION:-5s}"
WARMUP="${BENCH_WARMUP:-1s}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
ROUNDS="${BENCH_ROUNDS:-3}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq wrk >&2
fi

echo "== building the targets (release)" >&2
cargo build --release --quiet -p rebuff-server --example bench_target

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$CARGO_TARGET_DIR/release/examples/bench_target" >"$work/env" 2>"$work/server.log" &
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

# One Lua file per request shape: method, headers, body.
lua() { # name method key body
    local f="$work/$1.lua"
    {
        echo "wrk.method = \"$2\""
        [ -n "$3" ] && echo "wrk.headers[\"Authorization\"] = \"Bearer $3\""
        if [ -n "$4" ]; then
            echo "wrk.headers[\"Content-Type\"] = \"application/json\""
            echo "wrk.body = '$4'"
        fi
    } >"$f"
    echo "$f"
}

# name | stack | expected status | url | lua script
targets=(
    "hello|hello|200|$BENCH_HELLO_URL/hello|$(lua hello GET '' '')"
    "floor GET /v1/projects|floor|200|$BENCH_FLOOR_URL/v1/projects|$(lua floor GET "$BENCH_API_KEY" '')"
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
)

echo "== $(nproc) cores shared by wrk and the server; $ROUNDS rounds of: each target for wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up)" >&2
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load average before: $load_start (other work on the machine skews every figure)" >&2
results="$work/results"
hz="$(getconf CLK_TCK)"
# utime + stime of the server process, in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name, field 2, has no spaces here).
server_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
: >"$results"
failed=0
# Rounds interleave the targets, so that a burst of other work on the machine lands on one
# round of several targets rather than on every round of one; the table takes the median.
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!targets[@]}"; do
        IFS='|' read -r name stack status url script <<<"${targets[$i]}"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$script" "$url" >/dev/null
        ticks_before="$(server_ticks)"
        out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url")"
        ticks="$(($(server_ticks) - ticks_before))"
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

# Per target, the round with the median requests/s; ratios to bare hello and (error rows) to
# the success route of the same stack, both from medians.
awk -F'|' '
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
            else if (status[i] == "200") success[stack[i]] = med[i]
        }
        printf "\n| %-23s | %6s | %8s | %15s | %8s | %7s | %7s | %9s | %-28s | %10s | %9s |\n", "route", "status", "req/s", "min-max", "p99", "/ hello", "/ floor", "/ success", "target", "server CPU", "of a core"
        printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "-------------------------", "--------", "----------", "-----------------", "----------", "---------", "---------", "-----------", "------------------------------", "------------", "-----------"
        for (i = 0; i < count; i++) {
            # Ratios are shown truncated, not rounded, so that a shown 0.95x always meets 0.95x.
            rh = med[i] / hello
            rs = ""; target = ""; rf = ""
            if (stack[i] == "api" && status[i] == "200" && floor > 0) rf = sprintf("%.2fx", int(med[i] / floor * 100) / 100)
            if (stack[i] == "floor") {
                target = "(info: the reads alone)"
            } else if (stack[i] != "hello" && status[i] == "200") {
                target = sprintf(">= 0.85x hello: %s", rh >= 0.85 ? "met" : "MISSED")
            } else if (stack[i] != "hello") {
                ratio = med[i] / success[stack[i]]
                rs = sprintf("%.2fx", int(ratio * 100) / 100)
                target = sprintf(">= 0.95x success: %s", ratio >= 0.95 ? "met" : "MISSED")
            }
            if (stack[i] == "layers") target = target " (info)"
            if (bad[i]) target = "WRONG STATUS"
            printf "| %-23s | %6s | %8.0f | %15s | %8s | %6.2fx | %7s | %9s | %-28s | %7s us | %9s |\n", name[i], status[i], med[i], sprintf("%.0f-%.0f", lo[i], hi[i]), mp99[i], int(rh * 100) / 100, rf, rs, target, mcpu[i], mpct[i]
        }
    }' "$results"
echo
echo "load average before: $load_start; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo "api = the reference API over SQLite (rebuff_server::app); floor = bare axum doing the api success route's two SQLite reads and nothing else; layers = the api's layer stack over in-memory stores and trivial handlers (no SQLite)."
echo "req/s, p99, server CPU: the round with the median req/s of $ROUNDS; min-max: req/s over the rounds."
echo "server CPU = the server process's CPU time (user + system) per request; of a core = its CPU time over the run's wall time."
exit "$failed"
