#!/usr/bin/env bash
# The project's test command: the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Redis and PostgreSQL for the backend tests (started if they are not answering).
bash scripts/services.sh
# The example binaries, at the paths the tests that drive them start them from
# (`cargo test` compiles examples but does not always copy them to target/debug/examples).
cargo build --workspace --examples
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
# The generated Python and TypeScript modules, run against `rebuff serve`.
bash scripts/sdk-test.sh
