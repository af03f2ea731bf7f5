#!/usr/bin/env bash
# Writes the generated Python and TypeScript error modules of every built-in profile into
# sdk/python/ and sdk/typescript/src/. Run it after changing a catalog or a generator; a test
# (crates/rebuff-cli/tests/sdk.rs) fails while the checked-in modules are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet -p rebuff-cli
BIN="$CARGO_TARGET_DIR/debug/rebuff"
for profile in rebuff arize dataxid mlops incidents apikeys; do
    "$BIN" docs "$profile" --format python --out "sdk/python/$profile.py"
    "$BIN" docs "$profile" --format typescript --out "sdk/typescript/src/$profile.ts"
done
