#!/bin/sh
# The same sharded run as deploy/kubernetes/job.yaml, without Kubernetes: one shard
# per host over ssh, started together with --start-at, then merged here.
#
#   deploy/ssh-example.sh http://server:8080/ load1 load2 load3
#
# Needs loadgen on PATH on every load host (e.g. scp target/release/loadgen), ssh
# access without a password prompt, and the hosts' clocks in sync (NTP): the shards
# start measuring at the same wall-clock instant and `loadgen merge` refuses windows
# further apart than --tolerance. Change RATE, CONNS and DURATION below as needed.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 URL HOST [HOST...]  (one load shard per host)" >&2
    exit 2
fi
url=$1
shift
n=$#
RATE=${RATE:-30000}
CONNS=${CONNS:-96}
DURATION=${DURATION:-30s}
# Far enough ahead for every host to connect and warm up.
start_at=$(date -u -d "+${LEAD_SECONDS:-20} sec" +%Y-%m-%dT%H:%M:%SZ)
run_id=load-$(date -u +%Y%m%d-%H%M%S)
out=${OUT:-results-$run_id}
mkdir -p "$out"

i=0
for host in "$@"; do
    # The pod template's command line, with the index given as the Job would.
    ssh "$host" "JOB_COMPLETION_INDEX=$i loadgen run '$url' -c $CONNS --rate $RATE -d $DURATION --warmup 2s --shards $n --start-at $start_at --run-id $run_id -q -o /tmp/$run_id-shard-$i.json" &
    i=$((i + 1))
done
wait

i=0
files=""
for host in "$@"; do
    scp -q "$host:/tmp/$run_id-shard-$i.json" "$out/shard-$i.json"
    files="$files $out/shard-$i.json"
    i=$((i + 1))
done
# shellcheck disable=SC2086 # one argument per shard file
loadgen merge $files --tolerance 1s --out "$out/merged.json"
loadgen report "$out/merged.json" --out "$out/report"
echo "merged results: $out/merged.json, report: $out/report"
