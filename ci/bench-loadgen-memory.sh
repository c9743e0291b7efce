#!/usr/bin/env bash
# Issue 4, "memory stays flat": peak RSS of `loadgen run` for a short and a long run
# against the same server (loadgen serve, CPU 1; client on CPU 0, 64 connections).
#
# Usage: ci/bench-loadgen-memory.sh [SHORT_S=5] [LONG_S=60]
set -euo pipefail
cd "$(dirname "$0")/.."
short=${1:-5}
long=${2:-60}
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time: apt-get install time" >&2; exit 2; }
# LOADGEN=path uses a prebuilt binary instead of building one.
loadgen=${LOADGEN:-target/release/loadgen}
[ -n "${LOADGEN:-}" ] || cargo build --release -p loadgen --locked -q
taskset -c 1 "$loadgen" serve --addr 127.0.0.1:18086 --workers 1 >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18086) 2>/dev/null && break; sleep 0.05; done
peak() {
  /usr/bin/time -f "%M" taskset -c 0 "$loadgen" run http://127.0.0.1:18086/ -c 64 -t 1 -d "${1}s" -q \
    --hdr-log /tmp/loadgen-mem.hlog 2>&1 >/dev/null | tail -1
}
a=$(peak "$short")
b=$(peak "$long")
echo "peak RSS: ${short} s run ${a} KiB, ${long} s run ${b} KiB, difference $((b - a)) KiB (target < 5120)"
