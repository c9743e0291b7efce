#!/usr/bin/env bash
# perf.memory: RSS of the reference engine per idle keep-alive connection. Starts
# `loadgen serve` (1 worker), opens N connections from a separate process, each makes
# one request and then idles; reports (RSS with N idle connections - RSS before) / N.
#
# Usage: ci/bench-memory.sh [N=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
# LOADGEN=path uses a prebuilt binary instead of building one.
loadgen=${LOADGEN:-target/release/loadgen}
[ -n "${LOADGEN:-}" ] || cargo build --release -p loadgen --locked -q
ulimit -n $((n + 1024)) 2>/dev/null || true
"$loadgen" serve --addr 127.0.0.1:18085 --workers 1 >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18085) 2>/dev/null && break; sleep 0.05; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
python3 - "$n" "$pid" <<'PY'
import os, resource, socket, sys, time
n, pid = int(sys.argv[1]), sys.argv[2]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
req = b"GET / HTTP/1.1\r\nHost: m\r\n\r\n"
# Warm up: the engine's per-worker buffers exist before we measure.
warm = [socket.create_connection(("127.0.0.1", 18085)) for _ in range(16)]
for s in warm:
    s.sendall(req); s.recv(4096)
time.sleep(0.2)
before = rss()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", 18085))
    s.sendall(req)
    socks.append(s)
for s in socks:
    data = b""
    while not data.endswith(b"Hello, World!"):
        data += s.recv(4096)
time.sleep(0.5)
after = rss()
print(f"{n} idle keep-alive connections: server RSS {before} KiB -> {after} KiB, "
      f"{(after - before) * 1024 / n:.0f} bytes per connection (target <= 4096)")
PY
