#!/bin/sh
# test/bench_moe.sh -- `make bench-moe`: what routing costs.  The mixtral-mini shape (8 experts,
# 2 a token) against mixtral-mini-dense (one MLP as wide as the two experts a token uses: the
# same matmul work a token), `bench` on each in alternated rounds (ABBA: the order flips each
# round); then the median prefill and decode tok/s of each and the ratios.
#   BIN (./retrieval_heads)  DTYPE (bf16)  P (prompt tokens, 512)  N (decode steps, 32)
#   T (threads, 2)  ROUNDS (3)  OUT (a scratch folder, /tmp/rh_bench_moe)
BIN=${BIN:-./retrieval_heads}
DTYPE=${DTYPE:-bf16}
P=${P:-512}
N=${N:-32}
T=${T:-2}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/rh_bench_moe}
mkdir -p "$OUT" || exit 1
echo "bench-moe: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "bench --shape mixtral-mini | mixtral-mini-dense --dtype $DTYPE -p $P -n $N -t $T --kv f16"
run() { # shape -> "prefill_tps decode_tps"
    $BIN bench --shape "$1" --dtype "$DTYPE" -p "$P" -n "$N" -t "$T" --kv f16 > "$OUT/$1.txt" 2>&1 ||
        { tail -n 3 "$OUT/$1.txt"; exit 1; }
    awk -v p="$P" '$1 == p && NF >= 11 { print $3, $9 }' "$OUT/$1.txt"
}
r=1
: > "$OUT/rounds"
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 1 ]; then a=mixtral-mini; b=mixtral-mini-dense; else a=mixtral-mini-dense; b=mixtral-mini; fi
    ra=$(run $a) || exit 1
    rb=$(run $b) || exit 1
    if [ $a = mixtral-mini ]; then echo "$r $ra $rb" >> "$OUT/rounds"; else echo "$r $rb $ra" >> "$OUT/rounds"; fi
    r=$((r + 1))
done
sed -n 's/^model mixtral-mini, /  mixture: /p' "$OUT/mixtral-mini.txt"
# rounds: round, mixture (prefill decode), dense (prefill decode)
awk '
function med(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ n++; mp[n] = $2; md[n] = $3; dp[n] = $4; dd[n] = $5; rp[n] = $2 / $4; rd[n] = $3 / $5
  printf "  round %d: mixture prefill %.1f decode %.2f tok/s, dense prefill %.1f decode %.2f tok/s\n", $1, $2, $3, $4, $5 }
END {
    if (!n) { print "bench-moe: no rounds"; exit 1 }
    printf "median of %d rounds: mixture prefill %.1f tok/s, decode %.2f tok/s; dense prefill %.1f, decode %.2f\n", n, med(mp, n), med(md, n), med(dp, n), med(dd, n)
    printf "mixture / dense, the median of the rounds'"'"' ratios: prefill %.2fx, decode %.2fx\n", med(rp, n), med(rd, n)
}' "$OUT/rounds"
