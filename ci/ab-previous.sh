#!/usr/bin/env bash
# Performance gate of .ci/run: the engine at HEAD against the engine of the previous
# commit, built here from git, interleaved on this machine (`loadgen bench --ab`), then
# `loadgen gate`. Fails only when a metric is `regressed` (exit 3) twice: a first
# `regressed` is confirmed by a second, independent A/B, so that one unlucky stretch of
# a noisy runner does not block a commit (a real regression shows both times);
# `inconclusive` passes. Then the deterministic gate on the same two binaries:
# `loadgen cost --ab` (instructions per request under cachegrind beyond 1 %, any rise of
# allocations or syscalls per request: exit 3 at once, no confirmation needed: the same
# build measures the same to within 0.03 %). Usage: ci/ab-previous.sh [PAIRS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=${1:-10}
secs=${2:-1}
out=target/ab-previous
mkdir -p "$out"

prev=$(git rev-parse --verify --quiet HEAD~1 || true)
if [[ -z "$prev" ]]; then
  echo "ab-previous: no previous commit in this clone (shallow?): skipped"
  exit 0
fi
src="$out/src"
rm -rf "$src"
git worktree prune
git worktree add --detach --force "$src" "$prev" >/dev/null
trap 'git worktree remove --force "$src" >/dev/null 2>&1 || true' EXIT

echo "ab-previous: building loadgen at $(git rev-parse --short "$prev") (baseline) and HEAD (candidate)"
CARGO_TARGET_DIR="$PWD/$out/target-prev" cargo build --release --locked -p loadgen \
  --manifest-path "$src/Cargo.toml" -q
cargo build --release --locked -p loadgen -q
cp "$out/target-prev/release/loadgen" "$out/loadgen-prev"
cp target/release/loadgen "$out/loadgen-head"

# One A/B of PAIRS pairs, then the gate; its exit code (3: regressed).
ab() {
  "$out/loadgen-head" bench \
    --ab "$out/loadgen-prev serve --addr {addr} --workers 1" \
         "$out/loadgen-head serve --addr {addr} --workers 1" \
    --name-a previous --name-b head \
    --workload plaintext --repeat "$pairs" -d "${secs}s" \
    --json-a "$out/previous.json" --json-b "$out/head.json" || return $?
  local rc=0
  "$out/loadgen-head" gate --baseline "$out/previous.json" --candidate "$out/head.json" \
    --markdown "$out/gate.md" || rc=$?
  return "$rc"
}

rc=0
ab || rc=$?
if [[ $rc -eq 3 ]]; then
  echo "ab-previous: regressed; confirming with a second, independent A/B"
  rc=0
  ab || rc=$?
  if [[ $rc -eq 3 ]]; then
    echo "ab-previous: regressed again: failing"
  fi
fi
if [[ $rc -ne 0 ]]; then
  exit "$rc"
fi

echo "ab-previous: cost --ab (instructions, allocations, syscalls per request; valgrind, strace)"
"$out/loadgen-head" cost --ab "$out/loadgen-prev" "$out/loadgen-head" \
  --workload keep-alive --workload pipelined-16 --workload new-connection \
  --json "$out/cost.json" --markdown "$out/cost.md"
