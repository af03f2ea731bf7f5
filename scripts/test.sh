#!/usr/bin/env bash
# The project's test command: the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's own default (./target), so `cargo run` and the scripts share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Redis and PostgreSQL for the backend tests (started if they are not answering).
bash scripts/services.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
