#!/bin/sh
# test/compilers_agree.sh A B [SCRATCH] -- two builds of one source (gcc and clang, say) give the
# same results: the logits of a prompt (unmasked and masked) byte for byte, and a small NIAH grid's
# and a detection grid's records and CSV (the records' key hashes the build, so it is left out).
# The file evaluates floating point as written (no fused multiply-adds the code does not ask
# for), so two compilers run the same operations on the same kernels.
A=$1 B=$2 OUT=${3:-/tmp/rh_compilers_agree}
[ -x "$A" ] && [ -x "$B" ] || { echo "usage: test/compilers_agree.sh BIN_A BIN_B [SCRATCH]" >&2; exit 2; }
mkdir -p "$OUT" || exit 1
M=weights/demo.rhw
IDS="1 450 37 1204 88 9 311 1900 72 640 5 1333 20 41 777 1024 3 999 150 60"
GRID="--lengths 256:640:2 --depths 0:100:3 --needle-range 0:3"
fail=0
for x in a b; do
    if [ $x = a ]; then bin=$A; else bin=$B; fi
    "$bin" logits $M --ids "$IDS" -t 2 -o "$OUT/$x.logits" 2> /dev/null &&
    "$bin" logits $M --ids "$IDS" -t 2 --mask-heads 2-3,4-1 --mask-prefill -o "$OUT/$x.masked" 2> /dev/null &&
    "$bin" niah $M $GRID -t 2 --fresh --quiet -o "$OUT/$x.niah" > /dev/null 2>&1 &&
    "$bin" detect $M $GRID -t 2 --fresh --quiet -o "$OUT/$x.det" > /dev/null 2>&1 ||
        { echo "compilers_agree: $bin failed (outputs in $OUT)"; exit 1; }
    for f in niah.jsonl det.tests.jsonl; do sed -E 's/"key": "[0-9a-f]+", //' "$OUT/$x.$f" > "$OUT/$x.$f.nokey"; done
done
for f in logits masked niah.csv niah.jsonl.nokey det det.tests.jsonl.nokey; do
    if cmp -s "$OUT/a.$f" "$OUT/b.$f"; then echo "  same bytes: $f"; else echo "  DIFFER: $OUT/a.$f $OUT/b.$f"; fail=1; fi
done
[ $fail = 0 ] && echo "compilers_agree: $A and $B: the same results"
exit $fail
