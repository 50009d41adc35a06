#!/usr/bin/env bash
# test/device_bf16.sh OUTDIR -- the bf16 dot-product prefill (VDPBF16PS) on a machine that has
# AVX512_BF16 (Sapphire Rapids and later, Zen 4 and later).  Run from the repository root.
#   (a) make test, -march=native -DRH_BF16DOT_ON: the bf16-dot path on (kernels "avx512+bf16")
#   (b) make test, -march=native -DRH_BF16DOT_OFF: AVX-512 with the f32 packed GEMM for bf16
#   (c) bench, TinyLlama-1.1B shape, 512-token prefill, 2 threads pinned to CPUs 0,1:
#       bf16 weights with (a)'s and (b)'s binaries, f32 weights with (a)'s
# Logs go to OUTDIR (a.log, b.log, bench_*.log, summary.txt); builds to a temporary folder.
# Every step runs even when an earlier one failed.  About 5 minutes: each test run 1-2 min,
# each bench 20-40 s.  Exits 0 with a message where the CPU has no avx512_bf16.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out" || { echo "$0: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)

echo "== AVX-512 features of this CPU:"
grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tee "$out/cpu_avx512.txt"
if ! grep -q 'avx512_bf16' "$out/cpu_avx512.txt"; then
    echo "$0: this CPU has no avx512_bf16: nothing to test here (the bf16-dot path needs it)" | tee "$out/summary.txt"
    exit 0
fi
grep -m1 'model name' /proc/cpuinfo | tee -a "$out/cpu_avx512.txt"
echo "== compiler: $(${CC:-cc} --version | head -n 1)"
if echo | ${CC:-cc} -march=native -dM -E - 2>/dev/null | grep -q '__AVX512BF16__'; then
    echo "   -march=native defines __AVX512BF16__: build (a) has the bf16-dot path"
else
    echo "   WARNING: ${CC:-cc} -march=native does not define __AVX512BF16__ (compiler too old for this CPU?):"
    echo "   build (a) will be plain avx512, without the bf16-dot path"
fi

build=$(mktemp -d "${TMPDIR:-/tmp}/rh_device_bf16.XXXXXX") || exit 2
trap 'rm -rf "$build"' EXIT
mkdir -p "$build/a" "$build/b"
status=()

# (a), (b): the test suite; the "N passed, N failed" line is the result
step_test() { # name O-folder extra-make-args...
    local name=$1 dir=$2 t0 rc
    shift 2
    echo "== ($name) make test O=$dir $*"
    t0=$(date +%s)
    make test O="$dir" "$@" > "$out/$name.log" 2>&1
    rc=$?
    grep -E '^retrieval_heads tests|^FAIL|kernel \(|twin|passed, .* failed' "$out/$name.log"
    status+=("($name) make test: exit $rc, $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/$name.log" | tail -n 1), $(( $(date +%s) - t0 )) s")
}
step_test a "$build/a" CFLAGS='-O2 -march=native -DRH_BF16DOT_ON'
step_test b "$build/b" CFLAGS='-O2 -march=native -DRH_BF16DOT_OFF'

# (c) bench: the table row for 512 tokens (prefill t/s, GFLOPS, %peak, decode t/s, ...)
pin=()
if command -v taskset > /dev/null 2>&1; then pin=(taskset -c "0,1"); else echo "   (no taskset: bench runs unpinned)"; fi
step_bench() { # name binary dtype
    local name=$1 bin=$2 dt=$3 rc
    echo "== (c) $name: ${pin[*]+${pin[*]}} $bin bench --shape tinyllama-1.1b --dtype $dt -p 512 -n 16 -t 2 --kv f16"
    if [ ! -x "$bin" ]; then
        echo "   $bin was not built: skipped" | tee "$out/bench_$name.log"
        status+=("(c) bench $name: skipped, no binary")
        return
    fi
    ${pin[@]+"${pin[@]}"} "$bin" bench --shape tinyllama-1.1b --dtype "$dt" -p 512 -n 16 -t 2 --kv f16 > "$out/bench_$name.log" 2>&1
    rc=$?
    grep -E '^model |prefill t/s|^ +512 ' "$out/bench_$name.log"
    status+=("(c) bench $name: exit $rc: $(grep -E '^ +512 ' "$out/bench_$name.log" | awk '{printf "prefill %s t/s, %s GFLOPS, %s of peak, decode %s t/s", $3, $4, $5, $9}')")
}
step_bench bf16_dot "$build/a/retrieval_heads" bf16
step_bench bf16_nodot "$build/b/retrieval_heads" bf16
step_bench f32 "$build/a/retrieval_heads" f32

echo "== summary" | tee "$out/summary.txt"
printf '%s\n' "${status[@]}" | tee -a "$out/summary.txt"
exit 0
