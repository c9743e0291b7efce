#!/usr/bin/env bash
# Mutation testing of what the last commit changed in the engine's clause-bearing files,
# judged by the conformance suite (the scenarios package's tests; .cargo/mutants.toml):
# `cargo mutants --in-diff` on `git diff HEAD~1`. A mutant that survives fails the job
# unless ci/mutants-survivors.tsv lists it (file and mutation, line numbers left out)
# with the reason it is equivalent or out of contract, or it sits on a `fault!` guard's
# line (code only a faults build runs). Bounded: at most MAX mutants
# (default 20; a commit that would generate more is sampled round-robin, said so), each
# test run capped by the config's timeout, the whole step by LIMIT seconds (default
# 1200), after which the mutants not reached are reported as not tested, not failed.
# Usage: ci/mutants-diff.sh [MAX] [LIMIT]; MUTANTS_BASE=REV compares with REV instead of
# HEAD~1 (e.g. origin/main for a pull request).
set -euo pipefail
cd "$(dirname "$0")/.."

max=${1:-20}
limit=${2:-1200}
out=target/mutants-diff
rm -rf "$out"
mkdir -p "$out"

base=${MUTANTS_BASE:-HEAD~1}
if ! git rev-parse --verify --quiet "$base" >/dev/null; then
  echo "mutants-diff: no $base in this clone (shallow?): skipped"
  exit 0
fi
git diff "$base" -- engine/src >"$out/diff"
if [[ ! -s "$out/diff" ]]; then
  echo "mutants-diff: nothing under engine/src changed since $base: nothing to mutate"
  exit 0
fi
if ! cargo mutants --version >/dev/null 2>&1; then
  echo "mutants-diff: cargo-mutants is not installed (cargo install cargo-mutants --locked)" >&2
  exit 2
fi

n=$(cargo mutants --in-diff "$out/diff" --list | wc -l)
shard=()
if ((n > max)); then
  k=$(((n + max - 1) / max))
  echo "mutants-diff: $n mutants in the diff; testing 1 in $k (round-robin shard 0/$k)"
  shard=(--sharding round-robin --shard "0/$k")
else
  echo "mutants-diff: $n mutants in the diff"
fi
if ((n == 0)); then
  exit 0
fi

set +e
timeout "$limit" cargo mutants --in-diff "$out/diff" "${shard[@]}" -o "$out" --no-shuffle
rc=$?
set -e
if ((rc == 124)); then
  echo "mutants-diff: stopped after ${limit}s; the mutants not reached are not tested"
elif ((rc == 4)); then
  echo "mutants-diff: the unmutated tree failed its tests (see $out/mutants.out/log/baseline.log)" >&2
  exit 1
fi

# Survivors not explained in ci/mutants-survivors.tsv fail the job.
missed="$out/mutants.out/missed.txt"
[[ -f "$missed" ]] || { echo "mutants-diff: no survivors"; exit 0; }
known=$(awk -F'\t' '!/^#/ && NF >= 3 && $3 != "killed" { print $1 ": " $2 }' ci/mutants-survivors.tsv)
bad=0
while IFS= read -r line; do
  # `engine/src/x.rs:12:5: replace ...` -> `engine/src/x.rs: replace ...`
  key=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' <<<"$line")
  file=${line%%:*}
  lineno=$(cut -d: -f2 <<<"$line")
  if grep -qxF "$key" <<<"$known"; then
    echo "mutants-diff: survivor, listed: $line"
  elif sed -n "${lineno}p" "$file" | grep -qF 'fault!('; then
    # A `fault!` guard is `false` in the build under test: fault code, not the engine's.
    echo "mutants-diff: survivor in a fault guard (only a faults build runs it): $line"
  else
    echo "mutants-diff: SURVIVOR not caught by any scenario: $line" >&2
    bad=1
  fi
done <"$missed"
if ((bad)); then
  echo "mutants-diff: sharpen a scenario to kill it, or list it in ci/mutants-survivors.tsv with the reason it is equivalent or out of contract" >&2
  exit 1
fi
echo "mutants-diff: every survivor is listed"
