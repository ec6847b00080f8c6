#!/usr/bin/env bash
# tests/tools/plot_test.sh - stress/plot draws a soak CSV (a real 20 s,
# 2-worker ljs-soak CSV, tests/tools/soak_sample.csv) as the memory image and
# the frame-time image. Exit 77 (CTest: skipped) without gnuplot.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v gnuplot >/dev/null 2>&1 || { echo "gnuplot not installed: skipped"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ljs-plot-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$src/tests/tools/soak_sample.csv" "$work/soak.csv"
"$src/stress/plot" "$work/soak.csv" "$work/soak.png" 2>&1 | tee "$work/log"
if grep -qi 'warning\|error' "$work/log"; then echo "FAIL: gnuplot complained" >&2; exit 1; fi
for f in soak.png soak-frames.png; do
    [[ -s $work/$f ]] || { echo "FAIL: no $f" >&2; exit 1; }
    [[ $(head -c 4 "$work/$f" | od -An -c | tr -d ' ') == 211PNG ]] || { echo "FAIL: $f is not a PNG" >&2; exit 1; }
done
echo "ok: memory and frame-time plots"
