#!/usr/bin/env bash
# Instructions per request of each stack and route, counted by valgrind (callgrind) in
# bench_target's in-process mode: no socket, one task. Unlike time, the count does not move
# with whatever else the machine is doing, so two builds (or two stacks) can be compared on a
# busy machine. See BENCHMARKS.md.
#
#   bash scripts/bench-instructions.sh                # every target below
#   bash scripts/bench-instructions.sh layers api:422 # some of them
#
# Each target runs twice, with BENCH_INSTR_FEW (10,000) and BENCH_INSTR_MANY (30,000)
# requests; the difference divided by the difference in requests leaves out start-up.
# About 20 s per target on this project's 2-core machine, plus the build.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
FEW="${BENCH_INSTR_FEW:-10000}"
MANY="${BENCH_INSTR_MANY:-30000}"

# shellcheck source=lib/install-packages.sh
. scripts/lib/install-packages.sh
command -v valgrind >/dev/null 2>&1 || install_packages valgrind ||
    { echo "valgrind is missing and cannot be installed" >&2; exit 1; }

echo "== building the targets (release)" >&2
cargo build --release --quiet -p rebuff-server --example bench_target
bin="$CARGO_TARGET_DIR/release/examples/bench_target"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(hello floor api api:404 api:422 layers layers:404 layers:422 handmade handmade:404 handmade:422)
fi

# Total instructions of one in-process run of $1 with $2 requests.
count() {
    BENCH_IN_PROCESS="$1" BENCH_REQUESTS="$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$bin" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

declare -A per
for t in "${targets[@]}"; do
    few="$(count "$t" "$FEW")"
    many="$(count "$t" "$MANY")"
    if [ -z "$few" ] || [ -z "$many" ]; then
        echo "!! $t: no count (does BENCH_IN_PROCESS=$t run? try it without valgrind)" >&2
        exit 1
    fi
    per[$t]=$(((many - few) / (MANY - FEW)))
    echo "   $t: ${per[$t]} instructions per request" >&2
done

# A stack is as fast as its baseline when it needs as few instructions: the ratio printed is
# baseline / target, so that above 1 means faster, as the loopback table's ratios do.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
printf '\n| target | instructions per request | vs its baseline |\n|---|---|---|\n'
for t in "${targets[@]}"; do
    base=""
    case "$t" in
        api) base=floor ;;
        layers) base=handmade ;;
        *:*) base="${t%%:*}" ;;
    esac
    cmp=""
    if [ -n "$base" ] && [ -n "${per[$base]:-}" ]; then
        cmp="$(ratio "${per[$base]}" "${per[$t]}") of $base"
    fi
    printf '| %s | %s | %s |\n' "$t" "${per[$t]}" "$cmp"
done
echo
echo "Counted by valgrind, which runs SHA-256 in software (no SHA extensions): the key hash that"
echo "floor, api, layers and handmade each do once per request weighs more here than natively."
