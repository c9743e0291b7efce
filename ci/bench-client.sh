#!/usr/bin/env bash
# Side-by-side client benchmark (issue 4): client CPU seconds per completed request of
# loadgen (recording every latency) vs wrk (and h2load when installed), all against the
# same trivial server (../shared/yardsticks/floor_server.c) pinned to CPU 1, clients
# pinned to CPU 0, 64 connections, non-pipelined and pipeline depth 16, interleaved
# rounds. Client CPU is user + system time of the client process (bash `time`).
#
# Usage: ci/bench-client.sh [SECONDS_PER_POINT=10] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
# shellcheck source=ci/bench-common.sh
. ci/bench-common.sh
bench_setup "wrk gcc taskset" "wrk gcc util-linux"
taskset -c 1 "$work/floor_server" 18084 >/dev/null 2>&1 &
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18084) 2>/dev/null && break; sleep 0.05; done
url=http://127.0.0.1:18084/
clients=(loadgen wrk)
command -v h2load >/dev/null && clients+=(h2load)

# point CLIENT DEPTH -> "requests cpu_seconds"
point() {
  local client=$1 depth=$2 out
  local TIMEFORMAT='%3U %3S'
  case $client in
    loadgen) { time taskset -c 0 "$loadgen" run "$url" -c 64 -t 1 -p "$depth" -d "${secs}s" -q > "$work/out" ; } 2> "$work/time"
             awk '/^requests/ {print $2}' "$work/out" > "$work/n" ;;
    wrk)     local s=(); [ "$depth" -gt 1 ] && s=(-s ci/bench/pipeline.lua)
             { time DEPTH=$depth taskset -c 0 wrk -t1 -c64 -d"${secs}s" "${s[@]}" "$url" > "$work/out" ; } 2> "$work/time"
             awk '/requests in/ {print $1}' "$work/out" > "$work/n" ;;
    h2load)  { time taskset -c 0 h2load --h1 -t1 -c64 -m "$depth" -D "$secs" "$url" > "$work/out" ; } 2> "$work/time"
             awk '/^requests:/ {print $8}' "$work/out" > "$work/n" ;;
  esac
  echo "$(cat "$work/n") $(awk '{print $1 + $2}' "$work/time")"
}

printf "%-6s %-8s %5s %12s %10s %12s\n" depth client round requests "cpu s" "cpu us/req"
declare -A per
for depth in 1 16; do
  for r in $(seq "$rounds"); do
    for c in "${clients[@]}"; do
      read -r n cpu < <(point "$c" "$depth")
      us=$(awk -v n="$n" -v c="$cpu" 'BEGIN { printf "%.3f", c * 1e6 / n }')
      printf "%-6s %-8s %5s %12s %10s %12s\n" "$depth" "$c" "$r" "$n" "$cpu" "$us"
      per[$depth,$c]+="$us "
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
for depth in 1 16; do
  l=$(echo "${per[$depth,loadgen]}" | median); w=$(echo "${per[$depth,wrk]}" | median)
  line="depth $depth (medians, client CPU us per request): loadgen $l, wrk $w"
  if [[ -n "${per[$depth,h2load]:-}" ]]; then line+=", h2load $(echo "${per[$depth,h2load]}" | median)"; fi
  echo "$line; loadgen/wrk = $(awk -v l="$l" -v w="$w" 'BEGIN { printf "%.2f", l / w }')"
done
