#!/usr/bin/env bash
# Side-by-side server benchmark (issue 3): the reference engine vs nginx-light vs the
# floor server (../shared/yardsticks/floor_server.c, the kernel's share), each pinned
# to CPU 1, loaded by wrk pinned to CPU 0: 64 connections, GET / -> 13 bytes,
# non-pipelined and pipeline depth 16. Rounds are interleaved (ours, nginx, floor, ours,
# ...). Server CPU comes from /proc/<pid>/stat. Prints a table and the ratios.
#
# Usage: ci/bench-server.sh [SECONDS_PER_POINT=10] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
# shellcheck source=ci/bench-common.sh
. ci/bench-common.sh
bench_setup "wrk nginx gcc taskset" "wrk nginx-light gcc util-linux"
tick=$(getconf CLK_TCK)

# CPU seconds of a process and its children (nginx serves from a worker process).
cpu_of() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$(awk -v t="$tick" -v acc="$total" '{print acc + ($14 + $15) / t}' "/proc/$p/stat" 2>/dev/null || echo "$total")
  done
  echo "$total"
}

start_server() {
  case $1 in
    ours)  taskset -c 1 "$loadgen" serve --addr 127.0.0.1:18081 --workers 1 >/dev/null 2>&1 & echo "$! 18081" ;;
    nginx) taskset -c 1 nginx -c "$PWD/ci/bench/nginx.conf" >/dev/null 2>&1 & echo "$! 18082" ;;
    floor) taskset -c 1 "$work/floor_server" 18083 >/dev/null 2>&1 & echo "$! 18083" ;;
  esac
}

# run SERVER MODE -> "reqs_per_s cpu_us_per_req"
point() {
  local server=$1 mode=$2 pid port out c0 c1 rps
  read -r pid port < <(start_server "$server")
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local script=()
  [ "$mode" = pipelined ] && script=(-s ci/bench/pipeline.lua)
  c0=$(cpu_of "$pid")
  out=$(DEPTH=16 taskset -c 0 wrk -t1 -c64 -d"${secs}s" "${script[@]}" "http://127.0.0.1:$port/")
  c1=$(cpu_of "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local total
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v r="$rps" -v c0="$c0" -v c1="$c1" -v n="$total" 'BEGIN { printf "%.0f %.3f\n", r, (c1 - c0) * 1e6 / n }'
}

printf "%-10s %-10s %5s %12s %14s\n" mode server round "req/s" "cpu us/req"
declare -A rps cpu
for mode in plain pipelined; do
  for r in $(seq "$rounds"); do
    for s in ours nginx floor; do
      read -r x y < <(point "$s" "$mode")
      printf "%-10s %-10s %5s %12s %14s\n" "$mode" "$s" "$r" "$x" "$y"
      rps[$mode,$s]+="$x "
      cpu[$mode,$s]+="$y "
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
for mode in plain pipelined; do
  for s in ours nginx floor; do
    mr=$(echo "${rps[$mode,$s]}" | median); mc=$(echo "${cpu[$mode,$s]}" | median)
    eval "M_${mode}_${s}_r=$mr; M_${mode}_${s}_c=$mc"
  done
  eval "awk -v our=\$M_${mode}_ours_r -v ng=\$M_${mode}_nginx_r -v fl=\$M_${mode}_floor_r -v oc=\$M_${mode}_ours_c -v nc=\$M_${mode}_nginx_c -v fc=\$M_${mode}_floor_c -v m=$mode 'BEGIN {
    printf \"%s (medians): ours %.0f req/s, nginx %.0f, floor %.0f; req/s ours/nginx = %.2f; CPU per request ours %.2f us, nginx %.2f, floor %.2f; ours/nginx = %.2f, ours/floor = %.2f\n\", m, our, ng, fl, our/ng, oc, nc, fc, oc/nc, oc/fc }'"
done
