#!/usr/bin/env bash
# The project's test command (README): unit tests, doctests and every conformance
# scenario against the reference engine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked -- --test-threads 2
