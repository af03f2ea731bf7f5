#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the parsers and renderers that take
# outside input: each target runs for a bounded time, then executions and crashes are printed
# per target. Not part of CI; see docs/HARDENING.md.
#
#   bash scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh parse catalog
#   FUZZ_SANITIZER=none bash scripts/fuzz.sh   # faster, without AddressSanitizer
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them, so no nightly toolchain is needed. The corpus grows across runs under
# ${XDG_CACHE_HOME:-~/.cache}/rebuff-fuzz, seeded from fuzz/seeds/<target>; a crashing input
# is saved there under artifacts/<target>/ and its path printed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
CARGO_FUZZ_VERSION=0.13.2
STATE="${REBUFF_FUZZ_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rebuff-fuzz}"
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
FUZZ_TARGET_DIR="$CARGO_TARGET_DIR/fuzz"
export RUSTC_BOOTSTRAP=1

ALL=(parse catalog request_id idempotency_key ratelimit_headers)
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL[@]}")
fi

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "Installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

opts=(--fuzz-dir fuzz --sanitizer "$SANITIZER" --target-dir "$FUZZ_TARGET_DIR")
cargo fuzz build "${opts[@]}"

status=0
report=()
for t in "${TARGETS[@]}"; do
    corpus="$STATE/corpus/$t"
    artifacts="$STATE/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    mark="$STATE/.started-$t"
    touch "$mark"
    seeds=()
    [[ -d "fuzz/seeds/$t" ]] && seeds=("fuzz/seeds/$t")
    log="$STATE/$t.log"
    echo "=== $t: $SECONDS_EACH s"
    set +e
    cargo fuzz run "${opts[@]}" "$t" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$artifacts/" \
        -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1
    rc=$?
    set -e
    execs="$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | tail -n1 | grep -Eo '[0-9]+$' || echo "?")"
    cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n1 | grep -Eo '[0-9]+$' || echo "?")"
    crashes="$(find "$artifacts" -type f -newer "$mark" | wc -l)"
    if [[ "$rc" != 0 || "$crashes" != 0 ]]; then
        status=1
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 5 || true
        find "$artifacts" -type f -newer "$mark" -printf '  input: %p\n' | head -n 3 || true
        tail -n 3 "$log"
    fi
    report+=("$(printf '%-18s executions %10s  coverage %5s  crashes %s  (exit %s, log %s)' \
        "$t" "$execs" "$cov" "$crashes" "$rc" "$log")")
done

echo
echo "cargo-fuzz (libFuzzer, sanitizer: $SANITIZER), $SECONDS_EACH s per target:"
printf '  %s\n' "${report[@]}"
exit "$status"
