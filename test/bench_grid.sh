#!/bin/sh
# test/bench_grid.sh -- `make bench-grid`: the tests per second of a NIAH grid with prefix reuse
# against every prompt prefilled whole, in one run, the two modes alternated (ABBA: the order
# flips each round, so a machine that slows or speeds up over the run favours neither); then the
# share of prompt tokens kept in the KV cache, measured and planned, and --dry-run's estimate of
# the time against the measured one.  The outputs of the two modes are compared too (records, CSV,
# SVG, run record; wall and start times and the command line aside).
#   BIN (./retrieval_heads)  MODEL (weights/demo.rhw)  GRID (--lengths 256:1024:3 --depths 0:100:5)
#   T (threads, 1)  ROUNDS (3)  OUT (a scratch folder, /tmp/rh_bench_grid)
BIN=${BIN:-./retrieval_heads}
MODEL=${MODEL:-weights/demo.rhw}
GRID=${GRID:---lengths 256:1024:3 --depths 0:100:5}
T=${T:-1}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/rh_bench_grid}
mkdir -p "$OUT" || exit 1
echo "bench-grid: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "niah $MODEL $GRID -t $T"
# shellcheck disable=SC2086
$BIN niah $MODEL $GRID -t $T --dry-run -o "$OUT/dry" > "$OUT/dry.txt" || { cat "$OUT/dry.txt"; exit 1; }
sed 's/^/  /' "$OUT/dry.txt"
est=$(sed -n 's/.*prefix reuse (\([0-9.]*\)% kept.*/\1/p' "$OUT/dry.txt" | head -n 1)
run() { # mode round -> "seconds tests prefilled whole"
    if [ "$1" = whole ]; then flag=--no-prefix-reuse; else flag=; fi
    # shellcheck disable=SC2086
    $BIN niah $MODEL $GRID -t $T --fresh $flag -o "$OUT/$1" > /dev/null 2> "$OUT/$1.log" || { tail -n 3 "$OUT/$1.log"; exit 1; }
    sed -n 's/.*prefilled \([0-9]*\) of \([0-9]*\) prompt tokens.*; \([0-9]*\) tests in \([0-9.]*\) s (prefill \([0-9.]*\) s.*/\4 \3 \1 \2 \5/p' "$OUT/$1.log"
}
r=1
: > "$OUT/rounds"
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 1 ]; then a=reuse; b=whole; else a=whole; b=reuse; fi
    ra=$(run $a) || exit 1
    rb=$(run $b) || exit 1
    if [ $a = reuse ]; then echo "$r $ra $rb" >> "$OUT/rounds"; else echo "$r $rb $ra" >> "$OUT/rounds"; fi
    r=$((r + 1))
done
# rounds: round, reuse (s tests prefilled whole prefill_s), whole (s tests prefilled whole prefill_s)
awk -v est="$est" '
{ n++; rs[n] = $2; ws[n] = $7; tests = $3; kept = 100 * (1 - $4 / $5); rp[n] = $6; wp[n] = $11
  printf "  round %d: with reuse %.2f s (%.2f tests/s, prefill %.2f s), whole %.2f s (%.2f tests/s, prefill %.2f s): %.2fx tests/s, %.2fx prefill time\n",
         $1, $2, $3 / $2, $6, $7, $8 / $7, $11, $7 / $2, $11 / $6 }
END { for (i = 1; i <= n; i++) { r[i] = ws[i] / rs[i] }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
      med = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
      printf "  tests/s with reuse / without: median %.2fx over %d alternated rounds (%.2fx .. %.2fx)\n", med, n, r[1], r[n]
      printf "  prompt tokens kept in the KV cache: %.1f%% measured, %.1f%% planned by --dry-run\n", kept, est }' "$OUT/rounds"
dry_s=$(sed -n 's/^ *time *\([0-9.]*\) s .* with prefix reuse.*/\1/p' "$OUT/dry.txt" | head -n 1)
awk -v d="$dry_s" 'BEGIN { s = 0 } { s += $2; n++ } END { if (d != "" && n) printf "  --dry-run estimated %s s with reuse; measured %.2f s (mean of %d): %+.0f%%\n", d, s / n, n, 100 * (d / (s / n) - 1) }' "$OUT/rounds"
# the two modes' outputs: the same bytes but for the clock and the command line
for f in jsonl csv svg run.json; do
    for m in reuse whole; do
        sed -E 's/&quot;/"/g; s/"started_utc": "[^"]*"/"started_utc": X/g; s/"wall_s": [0-9.]+/"wall_s": X/g; s/"command": \[[^]]*\]/"command": X/g' \
            "$OUT/$m.$f" > "$OUT/$m.$f.norm"
    done
    cmp -s "$OUT/reuse.$f.norm" "$OUT/whole.$f.norm" || { echo "  the outputs differ: $OUT/reuse.$f, $OUT/whole.$f"; exit 1; }
done
echo "  outputs with and without reuse: the same bytes (.jsonl, .csv, .svg, .run.json; clock and command line aside)"
