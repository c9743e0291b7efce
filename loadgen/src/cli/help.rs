//! Long help texts of the commands whose files have no room for them.

/// `loadgen run --help`'s examples and notes.
pub const RUN: &str = "Examples:
  loadgen run http://127.0.0.1:8080/ -c 64 -d 10s
  loadgen run http://127.0.0.1:8080/ -c 64 --pipeline 16 --json out.json
  loadgen run http://127.0.0.1:8080/ -c 16 --rate 20000 --arrivals poisson -d 30s
  loadgen run http://127.0.0.1:8080/echo --method POST --body hello --expect-body hello
  loadgen run http://127.0.0.1:8080/ -c 8 --requests-per-conn 1 --requests 10000
  loadgen run http://127.0.0.1:8080/ -c 16 -d 30s --check 'p99<10ms' --check 'errors<0.1%'
  loadgen run http://10.0.0.5:8080/ -c 96 --rate 30000 -d 30s --shard 0/3 \\
              --start-at 2026-12-04T02:00:00Z -o shard-0.json     (one of 3 hosts)
  JOB_COMPLETION_INDEX=1 loadgen run URL -c 96 --rate 30000 --shards 3 --start-at +20s \\
              --run-id load-7 -o shard-1.json                     (as in an Indexed Job)

Latency is recorded for every request: corrected (from its due time, the default) and
uncorrected (from its send). Failed requests are counted by class with their own
histogram. When the window ends, requests in flight get up to --timeout to finish;
the rest fail as `timeout` (in the open model so do requests due in the window but
never sent). --check EXPR (repeatable) sets a threshold: p99<10ms, p99.9<=1s (us, ms,
s), errors<0.1%, errors<5, rps>1000; each is printed with its measured value and
stored in --json. Ctrl-C or SIGTERM stops the run early: the summary is printed and
--json written, marked interrupted (a second Ctrl-C exits at once).
--shard I/N runs share I (from 0) of a load split over N processes or hosts: -c and
--rate are the whole run's, divided exactly (remainders to the first shards), and the
open-model schedules are offset so that the shards interleave. --start-at makes every
shard measure the same wall-clock window (connecting and warming up before it); the
shards share a run id (--run-id, or derived from an absolute --start-at and the command
line), and `loadgen merge` adds them exactly, refusing a missing, duplicated or foreign
shard (docs/shards.md).
Exit codes: 0 done, 1 a --check failed or no request succeeded, 2 usage or setup
error, 130 interrupted (Ctrl-C, SIGTERM).";
