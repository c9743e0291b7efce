#!/bin/sh
# The plot gallery: `loadgen report` on synthetic results at 1, 2, 18 (what `loadgen
# bench` writes by default) and 40 runs, the PNGs copied to docs/gallery/ as
# RUNS-runs-PLOT.png. Deterministic: the same sources give the same pictures.
#
#   ci/gallery.sh            # from the repository root or anywhere
set -eu
cd "$(dirname "$0")/.."
cargo build -q -p loadgen
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p docs/gallery
rm -f docs/gallery/*-runs-*.png
for n in 1 2 18 40; do
    cargo run -q -p reports --example synthetic_results -- "$n" "$tmp/in-$n"
    # The two-run set also shows a scenario verdict matrix.
    extra=""
    if [ "$n" = 2 ]; then extra=reports/tests/fixtures/scenarios.json; fi
    # shellcheck disable=SC2086 # $extra is one path or nothing
    target/debug/loadgen report "$tmp/in-$n"/*.json $extra --out "$tmp/out-$n" >/dev/null
    for png in "$tmp/out-$n"/*.png; do
        cp "$png" "docs/gallery/$n-runs-$(basename "$png")"
    done
    cp "$tmp/out-$n/summary.md" "docs/gallery/$n-runs-summary.md"
done
ls -l docs/gallery
