/*
 * retrieval_heads.c -- a freestanding single-file C99 reference implementation of
 * "Retrieval Head Mechanistically Explains Long-Context Factuality" (Wu et al., 2024).
 * The public API and the .rhw weight format are specified in retrieval_heads.h.
 * MIT licensed (see LICENSE).
 *
 * Read top to bottom:
 *   1. platform: SIMD kernels (each beside its scalar twin), thread pool, timers
 *   2. the .rhw file: mmap, validate every size and offset, never trust a field
 *   3. tokenizer (rh_tokenizer.inc)
 *   4. transformer: RMSNorm, RoPE, grouped-query attention with observe/mask hooks, SwiGLU
 *   5. generation: KV cache, chunked prefill, the public context API
 *   6-8. the method (rh_method.inc): NIAH, retrieval scores, experiments
 *   9. command line (main), left out when RH_NO_MAIN is defined (vendoring, tests)
 *
 * Build: cc -std=c99 -O2 -march=native retrieval_heads.c -lm -lpthread
 * -DRH_SIMD_SCALAR forces the scalar kernels whatever the target.
 */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "retrieval_heads.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* =============================================================================================
 * 1. PLATFORM: SIMD kernels, thread pool, timers
 *
 * Every kernel has one SIMD body (written against the tiny vector layer below, so the AVX-512,
 * AVX2 and NEON builds share it) and a scalar twin used by `make SIMD=scalar` and by the tests.
 * Reduction order is part of each kernel's contract, so an output element has the same bits
 * whichever tile or thread computed it:
 *   - dot products (decode GEMV, attention in decode): RH_VL lanes accumulate over k = 0, RH_VL,
 *     2 RH_VL, ... (one FMA per lane per step), a fixed tree sums the lanes, then the k % RH_VL
 *     tail is added in order; the 3x4 / 1x4 tiles, the 1x1 edge and the f16/bf16 paths all do so;
 *   - the packed GEMM (prefill, attention in prefill): one FMA chain per element over k = 0, 1,
 *     2, ... from zero, in full tiles and edge tiles alike.
 * Only the caller's choice (prefill or decode) picks between the two, never the thread count.
 * ============================================================================================= */

#if defined(RH_SIMD_SCALAR)
#define RH_SIMD_NAME "scalar"
#elif defined(__AVX512F__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RH_AVX512 1
#if defined(__AVX512BF16__)
#define RH_SIMD_NAME "avx512+bf16"
#else
#define RH_SIMD_NAME "avx512"
#endif
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RH_AVX2 1
#define RH_SIMD_NAME "avx2+fma+f16c"
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define RH_NEON 1
#define RH_SIMD_NAME "neon"
#else
#define RH_SIMD_NAME "scalar"
#endif

#if defined(RH_AVX512) || defined(RH_AVX2) || defined(RH_NEON)
#define RH_VEC 1
#endif

/* scalar twins are unused in SIMD builds except by the tests */
#if defined(__GNUC__)
#define RH_UNUSED __attribute__((unused))
#else
#define RH_UNUSED
#endif

/* ---- the vector layer: RH_VL floats per register ---- */
#if defined(RH_AVX512)
#define RH_VL 16
typedef __m512 rh_v;
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(acc, a, b) _mm512_fmadd_ps((a), (b), (acc))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_SUB(a, b) _mm512_sub_ps((a), (b))
#define V_MUL(a, b) _mm512_mul_ps((a), (b))
#define V_MAX(a, b) _mm512_max_ps((a), (b))
#define V_LOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define V_LOAD_BF16(p) \
    _mm512_castsi512_ps(_mm512_slli_epi32( \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
static float v_hsum(rh_v v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static float v_hmax(rh_v v) { return _mm512_reduce_max_ps(v); }
/* exp pieces: 2^n for an integer-valued float vector n in [-126, 127] */
static rh_v v_pow2n(rh_v n) {
    __m512i i = _mm512_cvtps_epi32(n);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(i, _mm512_set1_epi32(127)), 23));
}
#define V_ROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#elif defined(RH_AVX2)
#define RH_VL 8
typedef __m256 rh_v;
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(acc, a, b) _mm256_fmadd_ps((a), (b), (acc))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_SUB(a, b) _mm256_sub_ps((a), (b))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define V_LOAD_BF16(p) \
    _mm256_castsi256_ps(_mm256_slli_epi32( \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
static float v_hsum(rh_v v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static float v_hmax(rh_v v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static rh_v v_pow2n(rh_v n) {
    __m256i i = _mm256_cvtps_epi32(n);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(i, _mm256_set1_epi32(127)), 23));
}
#define V_ROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#elif defined(RH_NEON)
#define RH_VL 4
typedef float32x4_t rh_v;
#define V_ZERO() vdupq_n_f32(0.0f)
#define V_LOAD(p) vld1q_f32(p)
#define V_STORE(p, v) vst1q_f32((p), (v))
#define V_SET1(x) vdupq_n_f32(x)
#define V_FMA(acc, a, b) vfmaq_f32((acc), (a), (b))
#define V_ADD(a, b) vaddq_f32((a), (b))
#define V_SUB(a, b) vsubq_f32((a), (b))
#define V_MUL(a, b) vmulq_f32((a), (b))
#define V_MAX(a, b) vmaxq_f32((a), (b))
#define V_LOAD_F16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(p))))
#define V_LOAD_BF16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(p)), 16))
static float v_hsum(rh_v v) {
    float32x2_t a = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(a, a), 0);
}
static float v_hmax(rh_v v) { return vmaxvq_f32(v); }
static rh_v v_pow2n(rh_v n) {
    int32x4_t i = vcvtnq_s32_f32(n);
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(i, vdupq_n_s32(127)), 23));
}
#define V_ROUND(x) vrndnq_f32(x)
#endif

/* ---- scalar conversions (exact for widening; round-to-nearest-even for narrowing) ---- */

static float k_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, bits;
    float f;
    if (e == 0) {
        /* zero or subnormal: m * 2^-24, exact in f32 */
        f = (float)m * 5.9604644775390625e-8f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (m << 13);
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t k_f32_to_f16(float f) {
    uint32_t x, sign, ax;
    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u;
    ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {
        /* below the smallest normal half (2^-14): subnormal half, round to nearest even */
        /* value = mant * 2^(e-150); the half subnormal unit is 2^-24, so the half mantissa is
         * mant * 2^(e-126), e in [102, 112] -> a right shift of 14..24 */
        uint32_t e = ax >> 23, shift, mant, r, half, rem;
        if (ax < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to zero */
        shift = 126 - e;
        mant = (ax & 0x7fffffu) | 0x800000u;
        half = 1u << (shift - 1);
        r = mant >> shift;
        rem = mant & ((1u << shift) - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    {
        uint32_t e = (ax >> 23) - 112, m = ax & 0x7fffffu, r = (e << 10) | (m >> 13);
        uint32_t rem = m & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++; /* may carry into the exponent */
        return (uint16_t)(sign | r);
    }
}

static float k_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t k_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static size_t dtype_size(rh_dtype t) { return t == RH_F32 ? 4 : 2; }
static const char *dtype_name(rh_dtype t) {
    return t == RH_F32 ? "f32" : t == RH_F16 ? "f16" : t == RH_BF16 ? "bf16" : "?";
}

/* dst[0..n) = src (dtype t) as f32.  Exact. */
RH_UNUSED static void k_cvt_scalar(rh_dtype t, const void *src, float *dst, int n) {
    int i;
    const uint16_t *h = (const uint16_t *)src;
    if (t == RH_F32) { memcpy(dst, src, (size_t)n * 4); return; }
    if (t == RH_F16) for (i = 0; i < n; i++) dst[i] = k_f16_to_f32(h[i]);
    else for (i = 0; i < n; i++) dst[i] = k_bf16_to_f32(h[i]);
}
static void k_cvt(rh_dtype t, const void *src, float *dst, int n) {
#if defined(RH_VEC)
    int i = 0;
    const uint16_t *h = (const uint16_t *)src;
    if (t == RH_F16) {
        for (; i + RH_VL <= n; i += RH_VL) V_STORE(dst + i, V_LOAD_F16(h + i));
        for (; i < n; i++) dst[i] = k_f16_to_f32(h[i]);
        return;
    }
    if (t == RH_BF16) {
        for (; i + RH_VL <= n; i += RH_VL) V_STORE(dst + i, V_LOAD_BF16(h + i));
        for (; i < n; i++) dst[i] = k_bf16_to_f32(h[i]);
        return;
    }
#endif
    k_cvt_scalar(t, src, dst, n);
}

/* dst (dtype t) = src rounded to nearest even (the KV cache store). */
static void k_store_row(rh_dtype t, const float *src, void *dst, int n) {
    int i;
    uint16_t *h = (uint16_t *)dst;
    if (t == RH_F32) { memcpy(dst, src, (size_t)n * 4); return; }
#if defined(RH_AVX2) || defined(RH_AVX512)
    if (t == RH_F16) {
        for (i = 0; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(void *)(h + i),
                             _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; i++) h[i] = k_f32_to_f16(src[i]);
        return;
    }
#endif
    if (t == RH_F16) for (i = 0; i < n; i++) h[i] = k_f32_to_f16(src[i]);
    else for (i = 0; i < n; i++) h[i] = k_f32_to_bf16(src[i]);
}

/* ---- dot products: sum_k a[k] * b[k] ---- */

RH_UNUSED static float k_dot_scalar(const float *a, const float *b, int n) {
    float s = 0.0f;
    int i;
    for (i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
RH_UNUSED static float k_dot(const float *a, const float *b, int n) {
#if defined(RH_VEC)
    rh_v acc = V_ZERO();
    int i = 0;
    float s;
    for (; i + RH_VL <= n; i += RH_VL) acc = V_FMA(acc, V_LOAD(a + i), V_LOAD(b + i));
    s = v_hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
#else
    return k_dot_scalar(a, b, n);
#endif
}

/* w (dtype t) . x (f32): the decode path, converting in registers.  Same order as k_dot. */
RH_UNUSED static float k_dot_w_scalar(rh_dtype t, const void *w, const float *x, int n) {
    const uint16_t *h = (const uint16_t *)w;
    float s = 0.0f;
    int i;
    if (t == RH_F32) return k_dot_scalar((const float *)w, x, n);
    if (t == RH_F16) for (i = 0; i < n; i++) s += k_f16_to_f32(h[i]) * x[i];
    else for (i = 0; i < n; i++) s += k_bf16_to_f32(h[i]) * x[i];
    return s;
}
static float k_dot_w(rh_dtype t, const void *w, const float *x, int n) {
#if defined(RH_VEC)
    const uint16_t *h = (const uint16_t *)w;
    rh_v acc = V_ZERO();
    int i = 0;
    float s;
    if (t == RH_F32) return k_dot((const float *)w, x, n);
    if (t == RH_F16) {
        for (; i + RH_VL <= n; i += RH_VL) acc = V_FMA(acc, V_LOAD(x + i), V_LOAD_F16(h + i));
        s = v_hsum(acc);
        for (; i < n; i++) s += x[i] * k_f16_to_f32(h[i]);
    } else {
        for (; i + RH_VL <= n; i += RH_VL) acc = V_FMA(acc, V_LOAD(x + i), V_LOAD_BF16(h + i));
        s = v_hsum(acc);
        for (; i < n; i++) s += x[i] * k_bf16_to_f32(h[i]);
    }
    return s;
#else
    return k_dot_w_scalar(t, w, x, n);
#endif
}

/* Four weight rows (ld elements apart) against one x: y[r] = k_dot_w(t, w + r*ld, x, n), bit for
 * bit, with each x vector loaded once for the four rows (decode GEMV, f16/bf16 weights). */
static void k_dot_w4(rh_dtype t, const void *w, size_t ld, const float *x, int n, float *y) {
#if defined(RH_VEC)
    const uint16_t *h0 = (const uint16_t *)w, *h1 = h0 + ld, *h2 = h1 + ld, *h3 = h2 + ld;
    rh_v a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
    int i = 0, r;
    if (t == RH_F16) {
        for (; i + RH_VL <= n; i += RH_VL) {
            rh_v xv = V_LOAD(x + i);
            a0 = V_FMA(a0, xv, V_LOAD_F16(h0 + i)); a1 = V_FMA(a1, xv, V_LOAD_F16(h1 + i));
            a2 = V_FMA(a2, xv, V_LOAD_F16(h2 + i)); a3 = V_FMA(a3, xv, V_LOAD_F16(h3 + i));
        }
    } else {
        for (; i + RH_VL <= n; i += RH_VL) {
            rh_v xv = V_LOAD(x + i);
            a0 = V_FMA(a0, xv, V_LOAD_BF16(h0 + i)); a1 = V_FMA(a1, xv, V_LOAD_BF16(h1 + i));
            a2 = V_FMA(a2, xv, V_LOAD_BF16(h2 + i)); a3 = V_FMA(a3, xv, V_LOAD_BF16(h3 + i));
        }
    }
    y[0] = v_hsum(a0); y[1] = v_hsum(a1); y[2] = v_hsum(a2); y[3] = v_hsum(a3);
    for (r = 0; r < 4; r++) {
        const uint16_t *h = (const uint16_t *)w + r * ld;
        int j;
        for (j = i; j < n; j++) y[r] += x[j] * (t == RH_F16 ? k_f16_to_f32(h[j]) : k_bf16_to_f32(h[j]));
    }
#else
    int r;
    for (r = 0; r < 4; r++) y[r] = k_dot_w(t, (const uint16_t *)w + r * ld, x, n);
#endif
}

/* ---- y += a * x,  y *= a ---- */

RH_UNUSED static void k_axpy_scalar(float a, const float *x, float *y, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}
RH_UNUSED static void k_axpy(float a, const float *x, float *y, int n) {
#if defined(RH_VEC)
    rh_v va = V_SET1(a);
    int i = 0;
    for (; i + RH_VL <= n; i += RH_VL) V_STORE(y + i, V_FMA(V_LOAD(y + i), va, V_LOAD(x + i)));
    for (; i < n; i++) y[i] += a * x[i];
#else
    k_axpy_scalar(a, x, y, n);
#endif
}
static void k_scale(float *y, float a, int n) {
    int i = 0;
#if defined(RH_VEC)
    rh_v va = V_SET1(a);
    for (; i + RH_VL <= n; i += RH_VL) V_STORE(y + i, V_MUL(V_LOAD(y + i), va));
#endif
    for (; i < n; i++) y[i] *= a;
}

/* ---- GEMM tile, "NT" layout (both operands k-contiguous, as Hugging Face stores out x in):
 * Y[i * ldy + j] = sum_k X[i * ldx + k] * W[j * ldw + k],  i < m, j < n.
 * X: (m, k) activations; W: (n, k) weight rows; Y: (m, n). ---- */

RH_UNUSED static void k_gemm_nt_scalar(const float *X, int ldx, const float *W, int ldw, float *Y, int ldy,
                             int m, int n, int k) {
    int i, j;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) Y[(size_t)i * ldy + j] = k_dot_scalar(X + (size_t)i * ldx, W + (size_t)j * ldw, k);
}

#if defined(RH_VEC)
/* 3 x 4 register tile: 12 accumulators, each the k_dot lane order. */
static void k_tile_3x4(const float *X, int ldx, const float *W, int ldw, float *Y, int ldy, int k) {
    const float *x0 = X, *x1 = X + ldx, *x2 = X + 2 * (size_t)ldx;
    const float *w0 = W, *w1 = W + ldw, *w2 = W + 2 * (size_t)ldw, *w3 = W + 3 * (size_t)ldw;
    rh_v a00 = V_ZERO(), a01 = V_ZERO(), a02 = V_ZERO(), a03 = V_ZERO();
    rh_v a10 = V_ZERO(), a11 = V_ZERO(), a12 = V_ZERO(), a13 = V_ZERO();
    rh_v a20 = V_ZERO(), a21 = V_ZERO(), a22 = V_ZERO(), a23 = V_ZERO();
    int p = 0, q;
    float s[12];
    for (; p + RH_VL <= k; p += RH_VL) {
        rh_v b0 = V_LOAD(w0 + p), b1 = V_LOAD(w1 + p), b2 = V_LOAD(w2 + p), b3 = V_LOAD(w3 + p);
        rh_v x = V_LOAD(x0 + p);
        a00 = V_FMA(a00, x, b0); a01 = V_FMA(a01, x, b1); a02 = V_FMA(a02, x, b2); a03 = V_FMA(a03, x, b3);
        x = V_LOAD(x1 + p);
        a10 = V_FMA(a10, x, b0); a11 = V_FMA(a11, x, b1); a12 = V_FMA(a12, x, b2); a13 = V_FMA(a13, x, b3);
        x = V_LOAD(x2 + p);
        a20 = V_FMA(a20, x, b0); a21 = V_FMA(a21, x, b1); a22 = V_FMA(a22, x, b2); a23 = V_FMA(a23, x, b3);
    }
    s[0] = v_hsum(a00); s[1] = v_hsum(a01); s[2] = v_hsum(a02); s[3] = v_hsum(a03);
    s[4] = v_hsum(a10); s[5] = v_hsum(a11); s[6] = v_hsum(a12); s[7] = v_hsum(a13);
    s[8] = v_hsum(a20); s[9] = v_hsum(a21); s[10] = v_hsum(a22); s[11] = v_hsum(a23);
    for (q = p; q < k; q++) {
        s[0] += x0[q] * w0[q]; s[1] += x0[q] * w1[q]; s[2] += x0[q] * w2[q]; s[3] += x0[q] * w3[q];
        s[4] += x1[q] * w0[q]; s[5] += x1[q] * w1[q]; s[6] += x1[q] * w2[q]; s[7] += x1[q] * w3[q];
        s[8] += x2[q] * w0[q]; s[9] += x2[q] * w1[q]; s[10] += x2[q] * w2[q]; s[11] += x2[q] * w3[q];
    }
    Y[0] = s[0]; Y[1] = s[1]; Y[2] = s[2]; Y[3] = s[3];
    Y += ldy; Y[0] = s[4]; Y[1] = s[5]; Y[2] = s[6]; Y[3] = s[7];
    Y += ldy; Y[0] = s[8]; Y[1] = s[9]; Y[2] = s[10]; Y[3] = s[11];
}
/* 1 x 4 tile (decode rows, tile edges). */
static void k_tile_1x4(const float *x0, const float *W, int ldw, float *Y, int k) {
    const float *w0 = W, *w1 = W + ldw, *w2 = W + 2 * (size_t)ldw, *w3 = W + 3 * (size_t)ldw;
    rh_v a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
    int p = 0, q;
    float s0, s1, s2, s3;
    for (; p + RH_VL <= k; p += RH_VL) {
        rh_v x = V_LOAD(x0 + p);
        a0 = V_FMA(a0, x, V_LOAD(w0 + p)); a1 = V_FMA(a1, x, V_LOAD(w1 + p));
        a2 = V_FMA(a2, x, V_LOAD(w2 + p)); a3 = V_FMA(a3, x, V_LOAD(w3 + p));
    }
    s0 = v_hsum(a0); s1 = v_hsum(a1); s2 = v_hsum(a2); s3 = v_hsum(a3);
    for (q = p; q < k; q++) { s0 += x0[q] * w0[q]; s1 += x0[q] * w1[q]; s2 += x0[q] * w2[q]; s3 += x0[q] * w3[q]; }
    Y[0] = s0; Y[1] = s1; Y[2] = s2; Y[3] = s3;
}
#endif

static void k_gemm_nt(const float *X, int ldx, const float *W, int ldw, float *Y, int ldy, int m,
                      int n, int k) {
#if defined(RH_VEC)
    int i = 0, j;
    for (; i + 3 <= m; i += 3) {
        const float *xi = X + (size_t)i * ldx;
        float *yi = Y + (size_t)i * ldy;
        for (j = 0; j + 4 <= n; j += 4) k_tile_3x4(xi, ldx, W + (size_t)j * ldw, ldw, yi + j, ldy, k);
        for (; j < n; j++) {
            yi[j] = k_dot(xi, W + (size_t)j * ldw, k);
            yi[ldy + j] = k_dot(xi + ldx, W + (size_t)j * ldw, k);
            yi[2 * (size_t)ldy + j] = k_dot(xi + 2 * (size_t)ldx, W + (size_t)j * ldw, k);
        }
    }
    for (; i < m; i++) {
        const float *xi = X + (size_t)i * ldx;
        float *yi = Y + (size_t)i * ldy;
        for (j = 0; j + 4 <= n; j += 4) k_tile_1x4(xi, W + (size_t)j * ldw, ldw, yi + j, k);
        for (; j < n; j++) yi[j] = k_dot(xi, W + (size_t)j * ldw, k);
    }
#else
    k_gemm_nt_scalar(X, ldx, W, ldw, Y, ldy, m, n, k);
#endif
}

/* ---- packed GEMM for prefill: Y (m, nr) = X (m, k) W^T for one panel of nr <= RH_NR weight
 * rows.  Both operands are packed so the micro-kernel reads two sequential streams:
 *   W panel P (k, RH_NR):        P[p * RH_NR + j] = W[j][p], zero-padded to RH_NR rows;
 *   X tiles Xp (m/RH_MR, k, RH_MR): Xp[(t * k + p) * RH_MR + r] = X[t * RH_MR + r][p], zero-padded.
 * An RH_MR x RH_NR register tile of outer products: per p, RH_MR broadcasts of x and 2 vector
 * loads of P feed 2 * RH_MR FMAs.  Each element is one FMA chain over p = 0, 1, 2, ... from 0,
 * whichever tile it falls in, so row and column edges cost nothing in exactness. ---- */
#define RH_MR 6
#if defined(RH_VEC)
#define RH_NR (2 * RH_VL)
#else
#define RH_NR 16
#endif

static void k_pack_scalar(const float *W, int ldw, int nr, int k, float *P) {
    int p, j;
    for (p = 0; p < k; p++)
        for (j = 0; j < RH_NR; j++) P[(size_t)p * RH_NR + j] = j < nr ? W[(size_t)j * ldw + p] : 0.0f;
}

#if defined(RH_AVX2)
/* r[0..8) rows -> r[c] = column c */
static void tr8x8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

/* Pack weight rows W[0..nr) (dtype dt, ldw elements apart) into the f32 panel P (k, RH_NR),
 * converting f16/bf16 on the way (exact). */
static void k_pack_w(rh_dtype dt, const void *W, size_t ldw, int nr, int k, float *P) {
    int p, j;
#if defined(RH_AVX2)
    if (nr == RH_NR) {
        int h, c, r;
        for (p = 0; p + 8 <= k; p += 8)
            for (h = 0; h < 2; h++) {
                __m256 v[8];
                for (r = 0; r < 8; r++) {
                    size_t at = (size_t)(h * 8 + r) * ldw + (size_t)p;
                    v[r] = dt == RH_F32 ? _mm256_loadu_ps((const float *)W + at)
                         : dt == RH_F16 ? V_LOAD_F16((const uint16_t *)W + at) : V_LOAD_BF16((const uint16_t *)W + at);
                }
                tr8x8(v);
                for (c = 0; c < 8; c++) _mm256_storeu_ps(P + (size_t)(p + c) * RH_NR + h * 8, v[c]);
            }
        for (; p < k; p++)
            for (r = 0; r < RH_NR; r++) k_cvt_scalar(dt, (const unsigned char *)W + ((size_t)r * ldw + (size_t)p) * dtype_size(dt), P + (size_t)p * RH_NR + r, 1);
        return;
    }
#endif
    if (dt == RH_F32) {
        k_pack_scalar((const float *)W, (int)ldw, nr, k, P);
        return;
    }
    for (p = 0; p < k; p++)
        for (j = 0; j < RH_NR; j++) {
            const uint16_t *h = (const uint16_t *)W + (size_t)j * ldw + (size_t)p;
            P[(size_t)p * RH_NR + j] = j >= nr ? 0.0f : dt == RH_F16 ? k_f16_to_f32(*h) : k_bf16_to_f32(*h);
        }
}

static void k_pack(const float *W, int ldw, int nr, int k, float *P) { k_pack_w(RH_F32, W, (size_t)ldw, nr, k, P); }

/* Pack rows X[t*RH_MR ..] (m rows in all, ld ldx) of tile t into Xp tile t (k, RH_MR). */
static void k_pack_x_tile(const float *X, int ldx, int m, int k, int t, float *Xp) {
    int r, p, r0 = t * RH_MR, nr = m - r0 < RH_MR ? m - r0 : RH_MR;
    float *d = Xp + (size_t)t * k * RH_MR;
    for (r = 0; r < RH_MR; r++) {
        if (r < nr) {
            const float *x = X + (size_t)(r0 + r) * ldx;
            for (p = 0; p < k; p++) d[(size_t)p * RH_MR + r] = x[p];
        } else {
            for (p = 0; p < k; p++) d[(size_t)p * RH_MR + r] = 0.0f;
        }
    }
}

RH_UNUSED static void k_gemm_packed_scalar(const float *Xp, const float *P, int k, float *Y, int ldy, int m, int nr) {
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < nr; j++) {
            const float *xt = Xp + (size_t)(i / RH_MR) * k * RH_MR + i % RH_MR;
            float s = 0.0f;
            for (p = 0; p < k; p++) s += xt[(size_t)p * RH_MR] * P[(size_t)p * RH_NR + j];
            Y[(size_t)i * ldy + j] = s;
        }
}

#if defined(RH_VEC)
/* Y (mr, nr) = (acc ? Y : 0) + tile Xp (k, RH_MR) x panel P (k rows, ldp apart, RH_NR used) */
static void k_tile_packed(const float *Xp, const float *P, int ldp, int k, float *Y, int ldy, int mr, int nr, int acc) {
    rh_v c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    float t[RH_MR * RH_NR];
    int p, i;
    if (!acc) {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = V_ZERO();
    } else {
        memset(t, 0, sizeof t);
        for (i = 0; i < mr; i++) memcpy(t + i * RH_NR, Y + (size_t)i * ldy, sizeof(float) * (size_t)nr);
        c00 = V_LOAD(t); c01 = V_LOAD(t + RH_VL); c10 = V_LOAD(t + RH_NR); c11 = V_LOAD(t + RH_NR + RH_VL);
        c20 = V_LOAD(t + 2 * RH_NR); c21 = V_LOAD(t + 2 * RH_NR + RH_VL); c30 = V_LOAD(t + 3 * RH_NR);
        c31 = V_LOAD(t + 3 * RH_NR + RH_VL); c40 = V_LOAD(t + 4 * RH_NR); c41 = V_LOAD(t + 4 * RH_NR + RH_VL);
        c50 = V_LOAD(t + 5 * RH_NR); c51 = V_LOAD(t + 5 * RH_NR + RH_VL);
    }
    for (p = 0; p < k; p++) {
        const float *x = Xp + (size_t)p * RH_MR;
        rh_v b0 = V_LOAD(P + (size_t)p * ldp), b1 = V_LOAD(P + (size_t)p * ldp + RH_VL), a;
        a = V_SET1(x[0]); c00 = V_FMA(c00, a, b0); c01 = V_FMA(c01, a, b1);
        a = V_SET1(x[1]); c10 = V_FMA(c10, a, b0); c11 = V_FMA(c11, a, b1);
        a = V_SET1(x[2]); c20 = V_FMA(c20, a, b0); c21 = V_FMA(c21, a, b1);
        a = V_SET1(x[3]); c30 = V_FMA(c30, a, b0); c31 = V_FMA(c31, a, b1);
        a = V_SET1(x[4]); c40 = V_FMA(c40, a, b0); c41 = V_FMA(c41, a, b1);
        a = V_SET1(x[5]); c50 = V_FMA(c50, a, b0); c51 = V_FMA(c51, a, b1);
    }
    if (mr == RH_MR && nr == RH_NR) {
        V_STORE(Y, c00); V_STORE(Y + RH_VL, c01); Y += ldy;
        V_STORE(Y, c10); V_STORE(Y + RH_VL, c11); Y += ldy;
        V_STORE(Y, c20); V_STORE(Y + RH_VL, c21); Y += ldy;
        V_STORE(Y, c30); V_STORE(Y + RH_VL, c31); Y += ldy;
        V_STORE(Y, c40); V_STORE(Y + RH_VL, c41); Y += ldy;
        V_STORE(Y, c50); V_STORE(Y + RH_VL, c51);
    } else {
        V_STORE(t, c00); V_STORE(t + RH_VL, c01); V_STORE(t + RH_NR, c10); V_STORE(t + RH_NR + RH_VL, c11);
        V_STORE(t + 2 * RH_NR, c20); V_STORE(t + 2 * RH_NR + RH_VL, c21); V_STORE(t + 3 * RH_NR, c30);
        V_STORE(t + 3 * RH_NR + RH_VL, c31); V_STORE(t + 4 * RH_NR, c40); V_STORE(t + 4 * RH_NR + RH_VL, c41);
        V_STORE(t + 5 * RH_NR, c50); V_STORE(t + 5 * RH_NR + RH_VL, c51);
        for (i = 0; i < mr; i++) memcpy(Y + (size_t)i * ldy, t + i * RH_NR, sizeof(float) * (size_t)nr);
    }
}
#endif

/* Y (m, nr) = (acc ? Y : 0) + X P for packed tiles Xp and a panel P of rows ldp apart (RH_NR for
 * k_pack panels; a row-major (k, ldp) matrix works as is when nr == RH_NR, e.g. V in attention). */
static void k_gemm_packed_acc(const float *Xp, const float *P, int ldp, int k, float *Y, int ldy, int m, int nr, int acc) {
#if defined(RH_VEC)
    int t;
    for (t = 0; t * RH_MR < m; t++)
        k_tile_packed(Xp + (size_t)t * k * RH_MR, P, ldp, k, Y + (size_t)t * RH_MR * ldy, ldy,
                      m - t * RH_MR < RH_MR ? m - t * RH_MR : RH_MR, nr, acc);
#else
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < nr; j++) {
            const float *xt = Xp + (size_t)(i / RH_MR) * k * RH_MR + i % RH_MR;
            float s = acc ? Y[(size_t)i * ldy + j] : 0.0f;
            for (p = 0; p < k; p++) s += xt[(size_t)p * RH_MR] * P[(size_t)p * ldp + j];
            Y[(size_t)i * ldy + j] = s;
        }
#endif
}

static void k_gemm_packed(const float *Xp, const float *P, int k, float *Y, int ldy, int m, int nr) {
    k_gemm_packed_acc(Xp, P, RH_NR, k, Y, ldy, m, nr, 0);
}

/* ---- exp and softmax pieces ---- */

#if defined(RH_VEC)
/* exp(x) for x <= 0 (softmax after max subtraction), |rel err| < 2e-7; x < -87 gives 0.
 * Cody-Waite range reduction x = n ln2 + r, then a degree-6 polynomial for e^r. */
static rh_v v_exp_neg(rh_v x) {
    rh_v n, r, p;
    x = V_MAX(x, V_SET1(-87.0f));
    n = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    r = V_FMA(x, n, V_SET1(-0.693359375f));
    r = V_FMA(r, n, V_SET1(2.12194440e-4f));
    p = V_SET1(1.9875691500e-4f);
    p = V_FMA(V_SET1(1.3981999507e-3f), p, r);
    p = V_FMA(V_SET1(8.3334519073e-3f), p, r);
    p = V_FMA(V_SET1(4.1665795894e-2f), p, r);
    p = V_FMA(V_SET1(1.6666665459e-1f), p, r);
    p = V_FMA(V_SET1(5.0000001201e-1f), p, r);
    p = V_FMA(r, p, V_MUL(r, r));
    p = V_ADD(p, V_SET1(1.0f));
    return V_MUL(p, v_pow2n(n));
}
#endif

/* y[i] = exp(x[i] - mx); returns the sum of y (lane order like k_dot). x[i] <= mx. */
RH_UNUSED static float k_exp_sum_scalar(const float *x, float mx, float *y, int n) {
    float s = 0.0f;
    int i;
    for (i = 0; i < n; i++) { y[i] = expf(x[i] - mx); s += y[i]; }
    return s;
}
static float k_exp_sum(const float *x, float mx, float *y, int n) {
#if defined(RH_VEC)
    rh_v acc = V_ZERO(), m = V_SET1(mx);
    int i = 0;
    float s;
    for (; i + RH_VL <= n; i += RH_VL) {
        rh_v e = v_exp_neg(V_SUB(V_LOAD(x + i), m));
        V_STORE(y + i, e);
        acc = V_ADD(acc, e);
    }
    s = v_hsum(acc);
    for (; i < n; i++) { y[i] = expf(x[i] - mx); s += y[i]; }
    return s;
#else
    return k_exp_sum_scalar(x, mx, y, n);
#endif
}

RH_UNUSED static float k_max_scalar(const float *x, int n) {
    float m = -INFINITY;
    int i;
    for (i = 0; i < n; i++) if (x[i] > m) m = x[i];
    return m;
}
static float k_max(const float *x, int n) {
#if defined(RH_VEC)
    int i = 0;
    float m;
    if (n >= RH_VL) {
        rh_v acc = V_LOAD(x);
        for (i = RH_VL; i + RH_VL <= n; i += RH_VL) acc = V_MAX(acc, V_LOAD(x + i));
        m = v_hmax(acc);
    } else {
        m = -INFINITY;
    }
    for (; i < n; i++) if (x[i] > m) m = x[i];
    return m;
#else
    return k_max_scalar(x, n);
#endif
}

int rh_argmax(const float *x, int n) {
    int i, best = 0;
    if (!x || n <= 0) return -1;
    for (i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

/* ---- timers: wall clock, and the CPU time of the whole process (all threads) ---- */
RH_UNUSED static double rh_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
RH_UNUSED static double rh_cpu_time(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

/* ---- thread pool: created once per context; the caller is thread 0.  A job of n_tasks is
 * split statically: thread t runs tasks [t*n/T, (t+1)*n/T).  Tasks write disjoint outputs, so
 * which thread ran a task never changes a bit of the result. ---- */

typedef void (*rh_task_fn)(void *arg, int task, int thread);

typedef struct {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_go, cv_done;
    unsigned long gen;     /* job generation: workers wait for it to change */
    int remaining;         /* workers still running the current job */
    int quit;
    rh_task_fn fn;
    void *arg;
    int n_tasks;
} rh_pool;

typedef struct {
    rh_pool *pool;
    int id;
} rh_worker_arg;

static void pool_run_share(rh_pool *p, int t) {
    int a = (int)((long long)t * p->n_tasks / p->n), b = (int)((long long)(t + 1) * p->n_tasks / p->n);
    int i;
    for (i = a; i < b; i++) p->fn(p->arg, i, t);
}

static void *pool_worker(void *v) {
    rh_worker_arg *wa = (rh_worker_arg *)v;
    rh_pool *p = wa->pool;
    int id = wa->id;
    unsigned long seen = 0;
    free(wa);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->cv_go, &p->mu);
        if (p->quit) { pthread_mutex_unlock(&p->mu); return NULL; }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_run_share(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->remaining == 0) pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void pool_free(rh_pool *p) {
    int i;
    if (!p) return;
    if (p->th) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv_go);
        pthread_mutex_unlock(&p->mu);
        for (i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
        free(p->th);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_go);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

static rh_pool *pool_new(int n) {
    rh_pool *p = (rh_pool *)calloc(1, sizeof *p);
    int i;
    if (!p) return NULL;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_go, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->th = (pthread_t *)calloc((size_t)n, sizeof *p->th);
    if (!p->th) { pool_free(p); return NULL; }
    for (i = 1; i < n; i++) {
        rh_worker_arg *wa = (rh_worker_arg *)malloc(sizeof *wa);
        if (!wa) break;
        wa->pool = p;
        wa->id = i;
        if (pthread_create(&p->th[i], NULL, pool_worker, wa) != 0) { free(wa); break; }
        p->n = i + 1;
    }
    if (p->n != n) { pool_free(p); return NULL; }
    return p;
}

static void pool_run(rh_pool *p, rh_task_fn fn, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    if (p->n == 1) { pool_run_share(p, 0); return; }
    pthread_mutex_lock(&p->mu);
    p->remaining = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->cv_go);
    pthread_mutex_unlock(&p->mu);
    pool_run_share(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->remaining > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- small helpers ---- */

static void set_err(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (!err || cap == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const unsigned char *p) { return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32; }
static float rd_f32(const unsigned char *p) {
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void wr_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static void wr_u64(unsigned char *p, uint64_t v) { wr_u32(p, (uint32_t)v); wr_u32(p + 4, (uint32_t)(v >> 32)); }
static void wr_f32(unsigned char *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    wr_u32(p, u);
}
RH_UNUSED static int host_is_le(void) {
    uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* =============================================================================================
 * 2. THE .rhw FILE
 *
 * The file is mapped read-only and every field is checked before anything else touches it:
 * header fields against sane limits, sections against the file and each other, each tensor's
 * name, dtype, shape, size and offset against the config, the data region and the other
 * tensors.  Products are computed in 64 bits with overflow checks.  After rh_model_open
 * succeeds, the forward pass may trust every pointer it is given.
 * ============================================================================================= */

#define RHW_HEADER 256
#define RHW_ALIGN 64
#define RHW_MAX_DIM (1 << 16)
#define RHW_MAX_HIDDEN (1 << 20)
#define RHW_MAX_LAYERS 1024
#define RHW_MAX_HEADS 1024
#define RHW_MAX_HEAD_DIM 1024
#define RHW_MAX_VOCAB (1 << 24)
#define RHW_MAX_CTX (1 << 24)
#define RHW_FLAG_QKV_BIAS 1u
#define RHW_FLAG_TIED 2u
#define RHW_FLAG_ADD_BOS 4u

typedef struct rh_tokenizer rh_tokenizer; /* defined by the tokenizer part (section 3) */

/* A weight matrix as stored: rows x cols, row-major, cols contiguous. */
typedef struct {
    const void *p;
    rh_dtype dt;
    int rows, cols;
} rh_wt;

typedef struct {
    const float *attn_norm, *ffn_norm; /* (dim) */
    const float *bq, *bk, *bv;         /* (rows of q/k/v) or NULL */
    rh_wt wq, wk, wv, wo, wg, wu, wd;
} rh_layer;

struct rh_model {
    rh_config cfg;
    char *path;                /* the file's path, or the name given to open_memory */
    const unsigned char *base; /* the whole file image */
    size_t size;
    int mapped;                /* 1: munmap base; 0: free base */
    rh_dtype dtype;            /* dtype of the projections */
    rh_wt embed, lm_head;      /* lm_head == embed when tied */
    const float *final_norm;   /* (dim) */
    rh_layer *layers;          /* (n_layers) */
    float *f32_small;          /* f32 copies of norms and biases */
    float *inv_freq;           /* (head_dim / 2) RoPE inverse frequencies, scaling applied */
    const unsigned char *meta; /* metadata section (after n_entries), validated */
    size_t meta_size;
    uint32_t n_meta;
    int n_tensors;
    rh_tokenizer *tok;
};

static const rh_tokenizer *model_tokenizer(const rh_model *m) { return m->tok; }

/* Tensor slots: 3 global tensors, then 12 per layer. */
enum { SLOT_EMBED, SLOT_NORM, SLOT_HEAD, SLOT_GLOBALS };
enum {
    LT_ATTN_NORM, LT_Q, LT_K, LT_V, LT_QB, LT_KB, LT_VB, LT_O, LT_FFN_NORM, LT_GATE, LT_UP,
    LT_DOWN, LT_COUNT
};
static const char *const layer_suffix[LT_COUNT] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.bias",
    "self_attn.v_proj.bias", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};

/* Map a tensor name to its slot, or -1. */
static int tensor_slot(const char *name, int n_layers) {
    static const char pre[] = "model.layers.";
    const char *p;
    long layer = 0;
    int i;
    if (strcmp(name, "model.embed_tokens.weight") == 0) return SLOT_EMBED;
    if (strcmp(name, "model.norm.weight") == 0) return SLOT_NORM;
    if (strcmp(name, "lm_head.weight") == 0) return SLOT_HEAD;
    if (strncmp(name, pre, sizeof pre - 1) != 0) return -1;
    p = name + sizeof pre - 1;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    while (*p >= '0' && *p <= '9') {
        layer = layer * 10 + (*p++ - '0');
        if (layer >= n_layers) return -1;
    }
    if (*p++ != '.') return -1;
    for (i = 0; i < LT_COUNT; i++)
        if (strcmp(p, layer_suffix[i]) == 0) return SLOT_GLOBALS + (int)layer * LT_COUNT + i;
    return -1;
}

/* Expected shape of a slot: returns ndim (1 or 2); 0 when the slot must be absent. */
static int slot_shape(const rh_config *c, int slot, uint64_t shape[2]) {
    uint64_t q = (uint64_t)c->n_heads * c->head_dim, kv = (uint64_t)c->n_kv_heads * c->head_dim;
    if (slot == SLOT_EMBED) { shape[0] = c->vocab_size; shape[1] = c->dim; return 2; }
    if (slot == SLOT_NORM) { shape[0] = c->dim; return 1; }
    if (slot == SLOT_HEAD) {
        if (c->tied_embeddings) return 0;
        shape[0] = c->vocab_size; shape[1] = c->dim; return 2;
    }
    switch ((slot - SLOT_GLOBALS) % LT_COUNT) {
    case LT_ATTN_NORM: case LT_FFN_NORM: shape[0] = c->dim; return 1;
    case LT_Q: shape[0] = q; shape[1] = c->dim; return 2;
    case LT_K: case LT_V: shape[0] = kv; shape[1] = c->dim; return 2;
    case LT_QB: if (!c->qkv_bias) return 0; shape[0] = q; return 1;
    case LT_KB: case LT_VB: if (!c->qkv_bias) return 0; shape[0] = kv; return 1;
    case LT_O: shape[0] = c->dim; shape[1] = q; return 2;
    case LT_GATE: case LT_UP: shape[0] = c->hidden_dim; shape[1] = c->dim; return 2;
    default: shape[0] = c->dim; shape[1] = c->hidden_dim; return 2; /* LT_DOWN */
    }
}

static void slot_name(int slot, char *buf, size_t cap) {
    if (slot == SLOT_EMBED) snprintf(buf, cap, "model.embed_tokens.weight");
    else if (slot == SLOT_NORM) snprintf(buf, cap, "model.norm.weight");
    else if (slot == SLOT_HEAD) snprintf(buf, cap, "lm_head.weight");
    else snprintf(buf, cap, "model.layers.%d.%s", (slot - SLOT_GLOBALS) / LT_COUNT,
                  layer_suffix[(slot - SLOT_GLOBALS) % LT_COUNT]);
}

/* Check the config (from a header or a caller) against the format's limits. */
static int config_check(const rh_config *c, const char *fname, char *err, size_t cap) {
#define CFG_BAD(...) do { char m_[256]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        set_err(err, cap, "%s: %s", fname, m_); return RH_EFORMAT; } while (0)
    int i;
    if (c->dim < 1 || c->dim > RHW_MAX_DIM) CFG_BAD("dim %d out of range 1..%d", c->dim, RHW_MAX_DIM);
    if (c->hidden_dim < 1 || c->hidden_dim > RHW_MAX_HIDDEN)
        CFG_BAD("hidden_dim %d out of range 1..%d", c->hidden_dim, RHW_MAX_HIDDEN);
    if (c->n_layers < 1 || c->n_layers > RHW_MAX_LAYERS)
        CFG_BAD("n_layers %d out of range 1..%d", c->n_layers, RHW_MAX_LAYERS);
    if (c->n_heads < 1 || c->n_heads > RHW_MAX_HEADS)
        CFG_BAD("n_heads %d out of range 1..%d", c->n_heads, RHW_MAX_HEADS);
    if (c->n_kv_heads < 1 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        CFG_BAD("n_kv_heads %d must divide n_heads %d", c->n_kv_heads, c->n_heads);
    if (c->head_dim < 2 || c->head_dim > RHW_MAX_HEAD_DIM || c->head_dim % 2 != 0)
        CFG_BAD("head_dim %d must be even and in 2..%d", c->head_dim, RHW_MAX_HEAD_DIM);
    if ((long long)c->n_heads * c->head_dim > RHW_MAX_HIDDEN)
        CFG_BAD("n_heads * head_dim %lld too large", (long long)c->n_heads * c->head_dim);
    if (c->vocab_size < 1 || c->vocab_size > RHW_MAX_VOCAB)
        CFG_BAD("vocab_size %d out of range 1..%d", c->vocab_size, RHW_MAX_VOCAB);
    if (c->max_ctx < 1 || c->max_ctx > RHW_MAX_CTX)
        CFG_BAD("max_ctx %d out of range 1..%d", c->max_ctx, RHW_MAX_CTX);
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta)) CFG_BAD("rope_theta must be > 0");
    if ((int)c->rope_scaling < 0 || (int)c->rope_scaling > 2)
        CFG_BAD("unknown rope_scaling %d", (int)c->rope_scaling);
    if (c->rope_scaling != RH_ROPE_NONE && (!(c->rope_factor > 0.0f) || !isfinite(c->rope_factor)))
        CFG_BAD("rope_factor must be > 0");
    if (c->rope_scaling == RH_ROPE_LLAMA3) {
        if (!(c->rope_low_freq_factor > 0.0f) || !isfinite(c->rope_high_freq_factor) ||
            !(c->rope_high_freq_factor > c->rope_low_freq_factor))
            CFG_BAD("llama3 rope needs 0 < low_freq_factor < high_freq_factor");
        if (c->rope_original_max_ctx < 1) CFG_BAD("llama3 rope needs rope_original_max_ctx >= 1");
    }
    if (!(c->norm_eps > 0.0f) || !(c->norm_eps < 1.0f)) CFG_BAD("norm_eps must be in (0, 1)");
    if (c->bos_id < -1 || c->bos_id >= c->vocab_size)
        CFG_BAD("bos_id %d out of range -1..%d", c->bos_id, c->vocab_size - 1);
    if (c->n_eos < 0 || c->n_eos > RH_MAX_EOS) CFG_BAD("n_eos %d out of range 0..%d", c->n_eos, RH_MAX_EOS);
    for (i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < 0 || c->eos_ids[i] >= c->vocab_size)
            CFG_BAD("eos_ids[%d] = %d out of range 0..%d", i, c->eos_ids[i], c->vocab_size - 1);
    return RH_OK;
#undef CFG_BAD
}

/* RoPE inverse frequencies as Hugging Face computes them (ROPE_INIT_FUNCTIONS):
 * inv_freq[i] = theta^(-2i/d); linear: / factor; llama3: by wavelength (see below). */
static void rope_inv_freq(const rh_config *c, float *out) {
    int half = c->head_dim / 2, i;
    for (i = 0; i < half; i++) {
        float inv = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim));
        if (c->rope_scaling == RH_ROPE_LINEAR) {
            inv = inv / c->rope_factor;
        } else if (c->rope_scaling == RH_ROPE_LLAMA3) {
            /* _compute_llama3_parameters: keep high frequencies, divide low ones by the factor,
             * interpolate between by the smooth factor */
            double orig = (double)c->rope_original_max_ctx;
            double low_wl = orig / c->rope_low_freq_factor, high_wl = orig / c->rope_high_freq_factor;
            double wl = 2.0 * 3.14159265358979323846 / (double)inv;
            if (wl < high_wl) {
                /* unchanged */
            } else if (wl > low_wl) {
                inv = inv / c->rope_factor;
            } else {
                double smooth = (orig / wl - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                inv = (float)((1.0 - smooth) * (double)inv / c->rope_factor + smooth * (double)inv);
            }
        }
        out[i] = inv;
    }
}

typedef struct {
    uint64_t off, end;
    int idx;
} rhw_span;

static int span_cmp(const void *a, const void *b) {
    const rhw_span *x = (const rhw_span *)a, *y = (const rhw_span *)b;
    return x->off < y->off ? -1 : x->off > y->off ? 1 : 0;
}

static int meta_key_ok(const unsigned char *k, uint32_t n) {
    uint32_t i;
    if (n < 1 || n > 64) return 0;
    for (i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '.'))
            return 0;
    return 1;
}

static int tok_load(rh_tokenizer **out, const unsigned char *sec, size_t n, int vocab_size,
                    const char *fname, char *err, size_t errcap);
static void tok_free(rh_tokenizer *t);

void rh_model_close(rh_model *m) {
    if (!m) return;
    if (m->tok) tok_free(m->tok);
    if (m->base) {
        if (m->mapped) munmap((void *)(uintptr_t)m->base, m->size);
        else free((void *)(uintptr_t)m->base);
    }
    free(m->layers);
    free(m->f32_small);
    free(m->inv_freq);
    free(m->path);
    free(m);
}

/* Validate the image m->base[0..m->size) and fill in the model.  Errors name m->path. */
static int model_load(rh_model *m, char *err, size_t cap) {
    const unsigned char *b = m->base;
    const char *fn = m->path;
    uint64_t fsize = m->size;
    rh_config *c = &m->cfg;
    uint32_t flags, n_tensors, i;
    uint64_t sec_off[4], sec_size[4], data_off, data_size, pos, dir_end, n_small = 0;
    static const char *const sec_name[4] = {"metadata section", "tokenizer section",
                                            "tensor directory", "data region"};
    int *slot_of = NULL, *tensor_of_slot = NULL, n_slots, rc = RH_EFORMAT, s, j;
    rhw_span *spans = NULL;
    float *small;
#define BAD(...) do { char m_[1024]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        set_err(err, cap, "%s: %s", fn, m_); rc = RH_EFORMAT; goto fail; } while (0)

    if (fsize < RHW_HEADER) BAD("truncated: %llu bytes, smaller than the 256-byte header", (unsigned long long)fsize);
    if (memcmp(b, "RHWF", 4) != 0) BAD("bad magic (not a .rhw file)");
    if (rd_u32(b + 4) != RH_FORMAT_VERSION) BAD("unsupported format version %u (expected %d)", rd_u32(b + 4), RH_FORMAT_VERSION);
    if (rd_u32(b + 8) != RHW_HEADER) BAD("header_bytes %u, expected 256", rd_u32(b + 8));
    if (rd_u32(b + 12) != 0 || rd_u32(b + 172) != 0) BAD("reserved header field is not zero");
    for (i = 200; i < RHW_HEADER; i++) if (b[i]) BAD("reserved header byte %u is not zero", i);
    if (rd_u64(b + 192) != fsize)
        BAD("file_size field says %llu bytes but the file has %llu (truncated or padded)",
            (unsigned long long)rd_u64(b + 192), (unsigned long long)fsize);
    {
        /* every u32 dimension must fit an int before it is converted */
        static const int dim_off[8] = {16, 20, 24, 28, 32, 36, 40, 44};
        static const char *const dim_name[8] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                                "n_kv_heads", "head_dim", "vocab_size", "max_ctx"};
        for (i = 0; i < 8; i++)
            if (rd_u32(b + dim_off[i]) > (uint32_t)INT_MAX) BAD("%s %u is absurd", dim_name[i], rd_u32(b + dim_off[i]));
        if (rd_u32(b + 52) > 2) BAD("unknown rope_scaling %u", rd_u32(b + 52));
        if (rd_u32(b + 68) > (uint32_t)INT_MAX) BAD("rope_original_max_ctx %u is absurd", rd_u32(b + 68));
        if (rd_u32(b + 84) > RH_MAX_EOS) BAD("n_eos %u out of range 0..%d", rd_u32(b + 84), RH_MAX_EOS);
    }
    memset(c, 0, sizeof *c);
    c->dim = (int)rd_u32(b + 16);
    c->hidden_dim = (int)rd_u32(b + 20);
    c->n_layers = (int)rd_u32(b + 24);
    c->n_heads = (int)rd_u32(b + 28);
    c->n_kv_heads = (int)rd_u32(b + 32);
    c->head_dim = (int)rd_u32(b + 36);
    c->vocab_size = (int)rd_u32(b + 40);
    c->max_ctx = (int)rd_u32(b + 44);
    c->rope_theta = rd_f32(b + 48);
    c->rope_scaling = (rh_rope_scaling)rd_u32(b + 52);
    c->rope_factor = rd_f32(b + 56);
    c->rope_low_freq_factor = rd_f32(b + 60);
    c->rope_high_freq_factor = rd_f32(b + 64);
    c->rope_original_max_ctx = (int)rd_u32(b + 68);
    c->norm_eps = rd_f32(b + 72);
    flags = rd_u32(b + 76);
    if (flags & ~7u) BAD("unknown flag bits 0x%x", flags & ~7u);
    c->qkv_bias = (flags & RHW_FLAG_QKV_BIAS) != 0;
    c->tied_embeddings = (flags & RHW_FLAG_TIED) != 0;
    c->add_bos = (flags & RHW_FLAG_ADD_BOS) != 0;
    c->bos_id = (int32_t)rd_u32(b + 80);
    c->n_eos = (int)rd_u32(b + 84);
    for (i = 0; i < RH_MAX_EOS; i++) c->eos_ids[i] = i < (uint32_t)c->n_eos ? (int32_t)rd_u32(b + 88 + 4 * i) : 0;
    if ((rc = config_check(c, fn, err, cap)) != RH_OK) goto fail;
    rc = RH_EFORMAT;

    /* sections: inside [256, file_size), pairwise disjoint */
    if (rd_u64(b + 176) % RHW_ALIGN != 0) BAD("data_offset %llu is not a multiple of 64", (unsigned long long)rd_u64(b + 176));
    for (i = 0; i < 4; i++) {
        static const int off_at[4] = {120, 136, 152, 176};
        sec_off[i] = rd_u64(b + off_at[i]);
        sec_size[i] = rd_u64(b + off_at[i] + 8);
        if (sec_size[i] == 0 && i != 0) BAD("%s is empty", sec_name[i]);
        if (sec_size[i] == 0) continue;
        if (sec_off[i] < RHW_HEADER || sec_off[i] > fsize || sec_size[i] > fsize - sec_off[i])
            BAD("%s [%llu, +%llu) lies outside the file (%llu bytes)", sec_name[i],
                (unsigned long long)sec_off[i], (unsigned long long)sec_size[i], (unsigned long long)fsize);
    }
    for (i = 0; i < 4; i++)
        for (j = (int)i + 1; j < 4; j++)
            if (sec_size[i] && sec_size[j] && sec_off[i] < sec_off[j] + sec_size[j] && sec_off[j] < sec_off[i] + sec_size[i])
                BAD("%s overlaps the %s", sec_name[i], sec_name[j]);
    data_off = sec_off[3];
    data_size = sec_size[3];

    /* metadata */
    m->meta = NULL; m->meta_size = 0; m->n_meta = 0;
    if (sec_size[0]) {
        const unsigned char *p = b + sec_off[0];
        uint64_t n = sec_size[0], at = 4, e;
        uint32_t cnt;
        if (n < 4) BAD("metadata section truncated");
        cnt = rd_u32(p);
        if (cnt > n / 8) BAD("metadata n_entries %u cannot fit in %llu bytes", cnt, (unsigned long long)n);
        for (e = 0; e < cnt; e++) {
            uint32_t kl, vl;
            uint64_t e2, at2, key_at;
            if (n - at < 4) BAD("metadata entry %llu truncated", (unsigned long long)e);
            kl = rd_u32(p + at); at += 4;
            if (kl > n - at) BAD("metadata entry %llu: key runs past the section", (unsigned long long)e);
            if (!meta_key_ok(p + at, kl)) BAD("metadata entry %llu: key must be 1..64 bytes of [a-z0-9_.]", (unsigned long long)e);
            key_at = at;
            at += kl;
            if (n - at < 4) BAD("metadata entry %llu truncated", (unsigned long long)e);
            vl = rd_u32(p + at); at += 4;
            if (vl > n - at) BAD("metadata entry %llu: value runs past the section", (unsigned long long)e);
            at += vl;
            /* duplicate keys: compare with the earlier entries */
            for (e2 = 0, at2 = 4; e2 < e; e2++) {
                uint32_t kl2 = rd_u32(p + at2);
                if (kl2 == kl && memcmp(p + at2 + 4, p + key_at, kl) == 0)
                    BAD("metadata key '%.*s' appears twice", (int)kl, (const char *)(p + key_at));
                at2 += 4 + kl2;
                at2 += 4 + rd_u32(p + at2);
            }
        }
        if (at != n) BAD("metadata section has %llu trailing bytes", (unsigned long long)(n - at));
        m->meta = p + 4; m->meta_size = (size_t)(n - 4); m->n_meta = cnt;
    }

    /* tensor directory */
    n_tensors = rd_u32(b + 168);
    if (n_tensors == 0) BAD("no tensors");
    if (n_tensors > sec_size[2] / 33) BAD("n_tensors %u cannot fit in a %llu-byte directory", n_tensors, (unsigned long long)sec_size[2]);
    n_slots = SLOT_GLOBALS + c->n_layers * LT_COUNT;
    slot_of = (int *)malloc(sizeof(int) * n_tensors);
    tensor_of_slot = (int *)malloc(sizeof(int) * (size_t)n_slots);
    spans = (rhw_span *)malloc(sizeof(rhw_span) * n_tensors);
    m->layers = (rh_layer *)calloc((size_t)c->n_layers, sizeof(rh_layer));
    if (!slot_of || !tensor_of_slot || !spans || !m->layers) { set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail; }
    for (s = 0; s < n_slots; s++) tensor_of_slot[s] = -1;
    pos = sec_off[2];
    dir_end = sec_off[2] + sec_size[2];
    for (i = 0; i < n_tensors; i++) {
        char name[256];
        uint32_t nl, dt, nd, d;
        uint64_t shape[4], count = 1, off, nbytes, want[2];
        int want_nd;
        if (dir_end - pos < 4) BAD("tensor directory truncated at entry %u", i);
        nl = rd_u32(b + pos); pos += 4;
        if (nl < 1 || nl > 255) BAD("tensor %u: name length %u out of range 1..255", i, nl);
        if (dir_end - pos < nl + 8) BAD("tensor directory truncated at entry %u", i);
        for (d = 0; d < nl; d++) {
            unsigned char ch = b[pos + d];
            if (ch < 0x21 || ch > 0x7e) BAD("tensor %u: name has a non-printable byte 0x%02x", i, ch);
            name[d] = (char)ch;
        }
        name[nl] = 0;
        pos += nl;
        dt = rd_u32(b + pos); nd = rd_u32(b + pos + 4); pos += 8;
        if (dt > 2) BAD("tensor '%s': unknown dtype %u", name, dt);
        if (nd < 1 || nd > 4) BAD("tensor '%s': ndim %u out of range 1..4", name, nd);
        if (dir_end - pos < 8ull * nd + 16) BAD("tensor directory truncated at '%s'", name);
        for (d = 0; d < nd; d++) {
            shape[d] = rd_u64(b + pos); pos += 8;
            if (shape[d] == 0 || shape[d] > ((uint64_t)1 << 40)) BAD("tensor '%s': dimension %u is %llu (absurd)", name, d, (unsigned long long)shape[d]);
            if (count > (((uint64_t)1 << 62) / shape[d])) BAD("tensor '%s': element count overflows", name);
            count *= shape[d];
        }
        off = rd_u64(b + pos); nbytes = rd_u64(b + pos + 8); pos += 16;
        if (nbytes != count * dtype_size((rh_dtype)dt))
            BAD("tensor '%s': nbytes %llu != %llu elements x %u bytes (%s)", name, (unsigned long long)nbytes,
                (unsigned long long)count, (unsigned)dtype_size((rh_dtype)dt), dtype_name((rh_dtype)dt));
        if (off % RHW_ALIGN != 0) BAD("tensor '%s': offset %llu is not a multiple of 64", name, (unsigned long long)off);
        if (off < data_off || off > data_off + data_size || nbytes > data_off + data_size - off)
            BAD("tensor '%s': [%llu, +%llu) lies outside the data region [%llu, +%llu)", name, (unsigned long long)off,
                (unsigned long long)nbytes, (unsigned long long)data_off, (unsigned long long)data_size);
        s = tensor_slot(name, c->n_layers);
        if (s < 0) BAD("unknown tensor '%s'", name);
        if (tensor_of_slot[s] >= 0) BAD("tensor '%s' appears twice", name);
        want_nd = slot_shape(c, s, want);
        if (want_nd == 0)
            BAD("unexpected tensor '%s' (%s)", name, s == SLOT_HEAD ? "the tied_embeddings flag is set" : "the qkv_bias flag is not set");
        if ((int)nd != want_nd || shape[0] != want[0] || (nd == 2 && shape[1] != want[1])) {
            char got[96], exp[64];
            int gl = 0;
            for (d = 0; d < nd; d++) gl += snprintf(got + gl, sizeof got - (size_t)gl, "%s%llu", d ? ", " : "", (unsigned long long)shape[d]);
            if (want_nd == 2) snprintf(exp, sizeof exp, "%llu, %llu", (unsigned long long)want[0], (unsigned long long)want[1]);
            else snprintf(exp, sizeof exp, "%llu", (unsigned long long)want[0]);
            BAD("tensor '%s' has shape [%s], expected [%s] from the config", name, got, exp);
        }
        if (want_nd == 1) n_small += want[0];
        tensor_of_slot[s] = (int)i;
        slot_of[i] = s;
        spans[i].off = off; spans[i].end = off + nbytes; spans[i].idx = (int)i;
        {
            rh_wt w;
            w.p = b + off; w.dt = (rh_dtype)dt;
            w.rows = (int)shape[0]; w.cols = nd == 2 ? (int)shape[1] : 1;
            if (s == SLOT_EMBED) m->embed = w;
            else if (s == SLOT_HEAD) m->lm_head = w;
            else if (s >= SLOT_GLOBALS) {
                rh_layer *L = &m->layers[(s - SLOT_GLOBALS) / LT_COUNT];
                switch ((s - SLOT_GLOBALS) % LT_COUNT) {
                case LT_Q: L->wq = w; break;
                case LT_K: L->wk = w; break;
                case LT_V: L->wv = w; break;
                case LT_O: L->wo = w; break;
                case LT_GATE: L->wg = w; break;
                case LT_UP: L->wu = w; break;
                case LT_DOWN: L->wd = w; break;
                default: break;
                }
            }
        }
    }
    if (pos != dir_end) BAD("tensor directory has %llu trailing bytes", (unsigned long long)(dir_end - pos));
    for (s = 0; s < n_slots; s++) {
        uint64_t want[2];
        if (tensor_of_slot[s] < 0 && slot_shape(c, s, want) != 0) {
            char nm[128];
            slot_name(s, nm, sizeof nm);
            BAD("missing tensor '%s'", nm);
        }
    }
    qsort(spans, n_tensors, sizeof *spans, span_cmp);
    for (i = 1; i < n_tensors; i++)
        if (spans[i].off < spans[i - 1].end) {
            char a[128], bb[128];
            slot_name(slot_of[spans[i - 1].idx], a, sizeof a);
            slot_name(slot_of[spans[i].idx], bb, sizeof bb);
            BAD("tensors '%s' and '%s' overlap", a, bb);
        }
    m->n_tensors = (int)n_tensors;

    /* f32 copies of the vectors (norms, biases), so the forward pass reads them as floats */
    small = m->f32_small = (float *)malloc(sizeof(float) * (size_t)(n_small ? n_small : 1));
    if (!small) { set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail; }
    for (s = 0; s < n_slots; s++) {
        int t = tensor_of_slot[s];
        const unsigned char *e;
        uint64_t want[2], nd;
        rh_dtype dt;
        if (t < 0 || slot_shape(c, s, want) != 1) continue;
        /* re-read the entry's dtype and offset (already validated) */
        for (e = b + sec_off[2], nd = 0; nd < (uint64_t)t; nd++) {
            uint32_t nl = rd_u32(e), ndim = rd_u32(e + 8 + nl);
            e += 4 + nl + 8 + 8ull * ndim + 16;
        }
        {
            uint32_t nl = rd_u32(e), ndim = rd_u32(e + 8 + nl);
            dt = (rh_dtype)rd_u32(e + 4 + nl);
            k_cvt_scalar(dt, b + rd_u64(e + 4 + nl + 8 + 8ull * ndim), small, (int)want[0]);
        }
        if (s == SLOT_NORM) m->final_norm = small;
        else {
            rh_layer *L = &m->layers[(s - SLOT_GLOBALS) / LT_COUNT];
            switch ((s - SLOT_GLOBALS) % LT_COUNT) {
            case LT_ATTN_NORM: L->attn_norm = small; break;
            case LT_FFN_NORM: L->ffn_norm = small; break;
            case LT_QB: L->bq = small; break;
            case LT_KB: L->bk = small; break;
            default: L->bv = small; break;
            }
        }
        small += want[0];
    }
    if (c->tied_embeddings) m->lm_head = m->embed;
    m->dtype = m->layers[0].wq.dt;

    m->inv_freq = (float *)malloc(sizeof(float) * (size_t)(c->head_dim / 2));
    if (!m->inv_freq) { set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail; }
    rope_inv_freq(c, m->inv_freq);

    rc = tok_load(&m->tok, b + sec_off[1], (size_t)sec_size[1], c->vocab_size, fn, err, cap);
    if (rc != RH_OK) { if (rc > 0) rc = RH_EFORMAT; goto fail; }
    free(slot_of); free(tensor_of_slot); free(spans);
    return RH_OK;
fail:
    free(slot_of); free(tensor_of_slot); free(spans);
    return rc;
#undef BAD
}

static rh_model *model_alloc(const char *name) {
    rh_model *m = (rh_model *)calloc(1, sizeof *m);
    if (!m) return NULL;
    m->path = (char *)malloc(strlen(name) + 1);
    if (!m->path) { free(m); return NULL; }
    strcpy(m->path, name);
    return m;
}

int rh_model_open(const char *path, rh_model **out, char *err, size_t errcap) {
    rh_model *m;
    struct stat st;
    int fd, rc;
    void *p;
    if (!out) { set_err(err, errcap, "rh_model_open: out is NULL"); return RH_EINVAL; }
    *out = NULL;
    if (!path) { set_err(err, errcap, "rh_model_open: path is NULL"); return RH_EINVAL; }
    fd = open(path, O_RDONLY);
    if (fd < 0) { set_err(err, errcap, "%s: cannot open: %s", path, strerror(errno)); return RH_EIO; }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errcap, "%s: not a regular file", path);
        close(fd);
        return RH_EIO;
    }
    if ((uint64_t)st.st_size < RHW_HEADER) {
        set_err(err, errcap, "%s: truncated: %lld bytes, smaller than the 256-byte header", path, (long long)st.st_size);
        close(fd);
        return RH_EFORMAT;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) { set_err(err, errcap, "%s: too large to map", path); close(fd); return RH_EIO; }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) { set_err(err, errcap, "%s: cannot map: %s", path, strerror(errno)); return RH_EIO; }
    m = model_alloc(path);
    if (!m) { munmap(p, (size_t)st.st_size); set_err(err, errcap, "%s: out of memory", path); return RH_ENOMEM; }
    m->base = (const unsigned char *)p;
    m->size = (size_t)st.st_size;
    m->mapped = 1;
    rc = model_load(m, err, errcap);
    if (rc != RH_OK) { rh_model_close(m); return rc; }
    *out = m;
    return RH_OK;
}

/* Takes ownership of buf (64-byte aligned, from posix_memalign). */
static int model_from_buffer(void *buf, size_t size, const char *name, rh_model **out, char *err, size_t errcap) {
    rh_model *m = model_alloc(name ? name : "(memory)");
    int rc;
    if (!m) { free(buf); set_err(err, errcap, "%s: out of memory", name ? name : "(memory)"); return RH_ENOMEM; }
    m->base = (const unsigned char *)buf;
    m->size = size;
    m->mapped = 0;
    rc = model_load(m, err, errcap);
    if (rc != RH_OK) { rh_model_close(m); return rc; }
    *out = m;
    return RH_OK;
}

int rh_model_open_memory(const void *data, size_t size, const char *name, rh_model **out, char *err, size_t errcap) {
    void *buf = NULL;
    if (!out) { set_err(err, errcap, "rh_model_open_memory: out is NULL"); return RH_EINVAL; }
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && size) { set_err(err, errcap, "%s: data is NULL", name); return RH_EINVAL; }
    if (posix_memalign(&buf, RHW_ALIGN, size ? size : 1) != 0) { set_err(err, errcap, "%s: out of memory", name); return RH_ENOMEM; }
    if (size) memcpy(buf, data, size);
    return model_from_buffer(buf, size, name, out, err, errcap);
}

const rh_config *rh_model_config(const rh_model *m) { return m ? &m->cfg : NULL; }
const char *rh_model_path(const rh_model *m) { return m ? m->path : NULL; }
rh_dtype rh_model_dtype(const rh_model *m) { return m ? m->dtype : RH_F32; }

const char *rh_model_meta(const rh_model *m, const char *key, size_t *len) {
    const unsigned char *p;
    size_t kl;
    uint32_t i;
    if (len) *len = 0;
    if (!m || !key || !m->meta) return NULL;
    kl = strlen(key);
    p = m->meta;
    for (i = 0; i < m->n_meta; i++) {
        uint32_t l = rd_u32(p), vl = rd_u32(p + 4 + l);
        if (l == kl && memcmp(p + 4, key, kl) == 0) {
            if (len) *len = vl;
            return (const char *)(p + 8 + l);
        }
        p += 8 + (size_t)l + vl;
    }
    return NULL;
}

void rh_model_checksum(const rh_model *m, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    if (!out) return;
    if (m)
        for (i = 0; i < m->size; i++) { h ^= m->base[i]; h *= 0x100000001b3ull; }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---- writing .rhw images (rh_rhw_write, rh_model_random) ---- */

/* The layout of an image: header + meta + tok + dir (the "prefix", padded to data_offset),
 * then each tensor at a 64-byte-aligned offset. */
typedef struct {
    unsigned char *prefix; /* data_offset bytes */
    uint64_t data_offset, file_size;
    uint64_t *offsets;     /* per tensor */
    uint64_t *nbytes;
} rhw_plan;

static void plan_free(rhw_plan *pl) { free(pl->prefix); free(pl->offsets); free(pl->nbytes); }

static int plan_make(rhw_plan *pl, const rh_config *cfg, const char *const *meta, const void *tok, size_t tok_size,
                     const rh_tensor_in *t, int n, const char *fn, char *err, size_t cap) {
    uint64_t meta_size = 0, dir_size = 0, at, end;
    int i, k, n_meta = 0;
    unsigned char *h;
    uint32_t flags;
    memset(pl, 0, sizeof *pl);
    if (!cfg) { set_err(err, cap, "%s: config is NULL", fn); return RH_EINVAL; }
    if (config_check(cfg, fn, err, cap) != RH_OK) return RH_EINVAL;
    if (!tok || tok_size == 0) { set_err(err, cap, "%s: tokenizer section is empty", fn); return RH_EINVAL; }
    if (n <= 0 || !t) { set_err(err, cap, "%s: no tensors", fn); return RH_EINVAL; }
    if (meta) {
        for (i = 0; meta[i]; i += 2) {
            if (!meta[i + 1]) { set_err(err, cap, "%s: metadata key '%s' has no value", fn, meta[i]); return RH_EINVAL; }
            if (!meta_key_ok((const unsigned char *)meta[i], (uint32_t)strlen(meta[i]))) {
                set_err(err, cap, "%s: metadata key '%s' must be 1..64 bytes of [a-z0-9_.]", fn, meta[i]);
                return RH_EINVAL;
            }
            meta_size += 8 + strlen(meta[i]) + strlen(meta[i + 1]);
            n_meta++;
        }
        meta_size += 4;
    }
    pl->offsets = (uint64_t *)calloc((size_t)n, sizeof(uint64_t));
    pl->nbytes = (uint64_t *)calloc((size_t)n, sizeof(uint64_t));
    if (!pl->offsets || !pl->nbytes) { plan_free(pl); set_err(err, cap, "%s: out of memory", fn); return RH_ENOMEM; }
    for (i = 0; i < n; i++) {
        uint64_t count = 1;
        size_t nl = t[i].name ? strlen(t[i].name) : 0;
        if (nl < 1 || nl > 255) { plan_free(pl); set_err(err, cap, "%s: tensor %d: bad name", fn, i); return RH_EINVAL; }
        if ((int)t[i].dtype < 0 || (int)t[i].dtype > 2 || t[i].ndim < 1 || t[i].ndim > 4) {
            plan_free(pl); set_err(err, cap, "%s: tensor '%s': bad dtype or ndim", fn, t[i].name); return RH_EINVAL;
        }
        for (k = 0; k < t[i].ndim; k++) {
            if (t[i].shape[k] < 1 || t[i].shape[k] > ((int64_t)1 << 40) || count > (((uint64_t)1 << 62) / (uint64_t)t[i].shape[k])) {
                plan_free(pl); set_err(err, cap, "%s: tensor '%s': bad shape", fn, t[i].name); return RH_EINVAL;
            }
            count *= (uint64_t)t[i].shape[k];
        }
        pl->nbytes[i] = count * dtype_size(t[i].dtype);
        dir_size += 4 + nl + 8 + 8ull * (uint64_t)t[i].ndim + 16;
    }
    at = RHW_HEADER + meta_size + tok_size + dir_size;
    pl->data_offset = (at + RHW_ALIGN - 1) / RHW_ALIGN * RHW_ALIGN;
    end = pl->data_offset;
    for (i = 0; i < n; i++) {
        pl->offsets[i] = end;
        end = (end + pl->nbytes[i] + RHW_ALIGN - 1) / RHW_ALIGN * RHW_ALIGN;
    }
    pl->file_size = end;
    pl->prefix = (unsigned char *)calloc(1, (size_t)pl->data_offset);
    if (!pl->prefix) { plan_free(pl); set_err(err, cap, "%s: out of memory", fn); return RH_ENOMEM; }
    h = pl->prefix;
    memcpy(h, "RHWF", 4);
    wr_u32(h + 4, RH_FORMAT_VERSION);
    wr_u32(h + 8, RHW_HEADER);
    wr_u32(h + 16, (uint32_t)cfg->dim); wr_u32(h + 20, (uint32_t)cfg->hidden_dim);
    wr_u32(h + 24, (uint32_t)cfg->n_layers); wr_u32(h + 28, (uint32_t)cfg->n_heads);
    wr_u32(h + 32, (uint32_t)cfg->n_kv_heads); wr_u32(h + 36, (uint32_t)cfg->head_dim);
    wr_u32(h + 40, (uint32_t)cfg->vocab_size); wr_u32(h + 44, (uint32_t)cfg->max_ctx);
    wr_f32(h + 48, cfg->rope_theta); wr_u32(h + 52, (uint32_t)cfg->rope_scaling);
    wr_f32(h + 56, cfg->rope_scaling == RH_ROPE_NONE ? 1.0f : cfg->rope_factor);
    wr_f32(h + 60, cfg->rope_low_freq_factor); wr_f32(h + 64, cfg->rope_high_freq_factor);
    wr_u32(h + 68, (uint32_t)cfg->rope_original_max_ctx); wr_f32(h + 72, cfg->norm_eps);
    flags = (cfg->qkv_bias ? RHW_FLAG_QKV_BIAS : 0) | (cfg->tied_embeddings ? RHW_FLAG_TIED : 0) | (cfg->add_bos ? RHW_FLAG_ADD_BOS : 0);
    wr_u32(h + 76, flags);
    wr_u32(h + 80, (uint32_t)cfg->bos_id); wr_u32(h + 84, (uint32_t)cfg->n_eos);
    for (i = 0; i < cfg->n_eos; i++) wr_u32(h + 88 + 4 * i, (uint32_t)cfg->eos_ids[i]);
    wr_u64(h + 120, meta_size ? RHW_HEADER : 0); wr_u64(h + 128, meta_size);
    wr_u64(h + 136, RHW_HEADER + meta_size); wr_u64(h + 144, tok_size);
    wr_u64(h + 152, RHW_HEADER + meta_size + tok_size); wr_u64(h + 160, dir_size);
    wr_u32(h + 168, (uint32_t)n);
    wr_u64(h + 176, pl->data_offset); wr_u64(h + 184, pl->file_size - pl->data_offset);
    wr_u64(h + 192, pl->file_size);
    at = RHW_HEADER;
    if (meta) {
        wr_u32(h + at, (uint32_t)n_meta); at += 4;
        for (i = 0; meta[i]; i += 2) {
            size_t kl = strlen(meta[i]), vl = strlen(meta[i + 1]);
            wr_u32(h + at, (uint32_t)kl); memcpy(h + at + 4, meta[i], kl); at += 4 + kl;
            wr_u32(h + at, (uint32_t)vl); memcpy(h + at + 4, meta[i + 1], vl); at += 4 + vl;
        }
    }
    memcpy(h + at, tok, tok_size); at += tok_size;
    for (i = 0; i < n; i++) {
        size_t nl = strlen(t[i].name);
        wr_u32(h + at, (uint32_t)nl); memcpy(h + at + 4, t[i].name, nl); at += 4 + nl;
        wr_u32(h + at, (uint32_t)t[i].dtype); wr_u32(h + at + 4, (uint32_t)t[i].ndim); at += 8;
        for (k = 0; k < t[i].ndim; k++) { wr_u64(h + at, (uint64_t)t[i].shape[k]); at += 8; }
        wr_u64(h + at, pl->offsets[i]); wr_u64(h + at + 8, pl->nbytes[i]); at += 16;
    }
    return RH_OK;
}

int rh_rhw_write(const char *path, const rh_config *cfg, const char *const *meta, const void *tok, size_t tok_size,
                 const rh_tensor_in *tensors, int n_tensors, char *err, size_t errcap) {
    rhw_plan pl;
    char *tmp;
    FILE *f;
    int i, rc, ok = 1;
    static const unsigned char zeros[RHW_ALIGN];
    rh_model *chk = NULL;
    uint64_t at;
    if (!path) { set_err(err, errcap, "rh_rhw_write: path is NULL"); return RH_EINVAL; }
    rc = plan_make(&pl, cfg, meta, tok, tok_size, tensors, n_tensors, path, err, errcap);
    if (rc != RH_OK) return rc;
    for (i = 0; i < n_tensors; i++)
        if (!tensors[i].data) { plan_free(&pl); set_err(err, errcap, "%s: tensor '%s' has no data", path, tensors[i].name); return RH_EINVAL; }
    tmp = (char *)malloc(strlen(path) + 5);
    if (!tmp) { plan_free(&pl); set_err(err, errcap, "%s: out of memory", path); return RH_ENOMEM; }
    sprintf(tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) { set_err(err, errcap, "%s: cannot create: %s", tmp, strerror(errno)); plan_free(&pl); free(tmp); return RH_EIO; }
    ok = fwrite(pl.prefix, 1, (size_t)pl.data_offset, f) == (size_t)pl.data_offset;
    at = pl.data_offset;
    for (i = 0; ok && i < n_tensors; i++) {
        uint64_t next = i + 1 < n_tensors ? pl.offsets[i + 1] : pl.file_size;
        ok = fwrite(tensors[i].data, 1, (size_t)pl.nbytes[i], f) == (size_t)pl.nbytes[i];
        at += pl.nbytes[i];
        if (ok && next > at) ok = fwrite(zeros, 1, (size_t)(next - at), f) == (size_t)(next - at);
        at = next;
    }
    if (fclose(f) != 0) ok = 0;
    plan_free(&pl);
    if (!ok) { set_err(err, errcap, "%s: write failed: %s", tmp, strerror(errno)); remove(tmp); free(tmp); return RH_EIO; }
    /* the loader is the one definition of a valid file: check what we wrote with it */
    rc = rh_model_open(tmp, &chk, err, errcap);
    if (rc != RH_OK) {
        remove(tmp);
        free(tmp);
        return rc == RH_EFORMAT ? RH_EINVAL : rc;
    }
    rh_model_close(chk);
    if (rename(tmp, path) != 0) {
        set_err(err, errcap, "%s: cannot rename %s: %s", path, tmp, strerror(errno));
        remove(tmp);
        free(tmp);
        return RH_EIO;
    }
    free(tmp);
    return RH_OK;
}

/* splitmix64: seeded, portable random numbers for rh_model_random */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
RH_UNUSED static float rng_uniform(uint64_t *s) { return (float)((double)(rng_next(s) >> 40) * (2.0 / 16777216.0) - 1.0); }

/* The tokenizer section of a random model: SentencePiece-kind, 256 byte tokens <0x00>..<0xFF>,
 * byte fallback, no merges.  (size 7*4 + 256 * (4 + 6 + 4 + 2)) */
static unsigned char *random_tok_section(size_t *size) {
    size_t n = 28 + 256 * 16, at = 28;
    unsigned char *p = (unsigned char *)calloc(1, n);
    int i;
    if (!p) return NULL;
    wr_u32(p, 1);            /* kind: SentencePiece-style */
    wr_u32(p + 4, 4);        /* flags: byte_fallback */
    wr_u32(p + 8, 0);        /* pretokenizer */
    wr_u32(p + 12, 0xffffffffu); /* unk_id -1 */
    wr_u32(p + 16, 256);     /* n_tokens */
    wr_u32(p + 20, 0);       /* n_merges */
    wr_u32(p + 24, 0);       /* pattern_len */
    for (i = 0; i < 256; i++) {
        char piece[8];
        snprintf(piece, sizeof piece, "<0x%02X>", i);
        wr_u32(p + at, 6); memcpy(p + at + 4, piece, 6); at += 10;
        wr_f32(p + at, 0.0f); at += 4;
        p[at++] = 6; /* byte */
        p[at++] = 0;
    }
    *size = n;
    return p;
}

int rh_model_random(const rh_config *cfg, rh_dtype dtype, uint64_t seed, rh_model **out, char *err, size_t errcap) {
    rh_tensor_in *t = NULL;
    char (*names)[96] = NULL;
    int n = 0, slot, n_slots, i, rc;
    unsigned char *tok = NULL, *img = NULL;
    size_t tok_size = 0;
    rhw_plan pl;
    uint64_t rng = seed ^ 0x5eed5eed5eedull;
    void *buf = NULL;
    const char *fn = "(random model)";
    if (!out) { set_err(err, errcap, "rh_model_random: out is NULL"); return RH_EINVAL; }
    *out = NULL;
    if (!cfg) { set_err(err, errcap, "rh_model_random: config is NULL"); return RH_EINVAL; }
    if ((int)dtype < 0 || (int)dtype > 2) { set_err(err, errcap, "rh_model_random: bad dtype %d", (int)dtype); return RH_EINVAL; }
    if (config_check(cfg, fn, err, errcap) != RH_OK) return RH_EINVAL;
    if (cfg->vocab_size < 256) { set_err(err, errcap, "%s: vocab_size %d < 256 byte tokens", fn, cfg->vocab_size); return RH_EINVAL; }
    n_slots = SLOT_GLOBALS + cfg->n_layers * LT_COUNT;
    t = (rh_tensor_in *)calloc((size_t)n_slots, sizeof *t);
    names = (char (*)[96])calloc((size_t)n_slots, sizeof *names);
    tok = random_tok_section(&tok_size);
    if (!t || !names || !tok) { rc = RH_ENOMEM; set_err(err, errcap, "%s: out of memory", fn); goto done; }
    for (slot = 0; slot < n_slots; slot++) {
        uint64_t shape[2];
        int nd = slot_shape(cfg, slot, shape);
        if (!nd) continue;
        slot_name(slot, names[n], sizeof names[n]);
        t[n].name = names[n];
        t[n].dtype = nd == 1 ? RH_F32 : dtype;
        t[n].ndim = nd;
        t[n].shape[0] = (int64_t)shape[0];
        t[n].shape[1] = nd == 2 ? (int64_t)shape[1] : 0;
        n++;
    }
    rc = plan_make(&pl, cfg, NULL, tok, tok_size, t, n, fn, err, errcap);
    if (rc != RH_OK) goto done;
    if ((uint64_t)pl.file_size > (uint64_t)SIZE_MAX || posix_memalign(&buf, RHW_ALIGN, (size_t)pl.file_size) != 0) {
        plan_free(&pl); rc = RH_ENOMEM; set_err(err, errcap, "%s: out of memory (%llu bytes)", fn, (unsigned long long)pl.file_size); goto done;
    }
    img = (unsigned char *)buf;
    memcpy(img, pl.prefix, (size_t)pl.data_offset);
    memset(img + pl.data_offset, 0, (size_t)(pl.file_size - pl.data_offset));
    for (i = 0; i < n; i++) {
        uint64_t cnt = pl.nbytes[i] / dtype_size(t[i].dtype), e;
        unsigned char *d = img + pl.offsets[i];
        int sl = tensor_slot(t[i].name, cfg->n_layers), lt = sl >= SLOT_GLOBALS ? (sl - SLOT_GLOBALS) % LT_COUNT : -1;
        /* norms = 1 (as initialised by HF), biases small, matrices ~ U(-1,1)/sqrt(fan_in) */
        float scale = t[i].ndim == 2 ? (sl == SLOT_EMBED ? 1.0f : (float)(1.0 / sqrt((double)t[i].shape[1]))) : 0.1f;
        int is_norm = sl == SLOT_NORM || lt == LT_ATTN_NORM || lt == LT_FFN_NORM;
        /* four 16-bit uniforms per 64-bit draw, rounded to the dtype 1024 at a time (k_store_row
         * rounds exactly as the scalar converters do): the 7B shape takes seconds, not minutes */
        if (is_norm) scale = 0.1f;
        scale *= 1.0f / 32768.0f;
        for (e = 0; e < cnt; e += 1024) {
            float tmp[1024];
            int q, nq = cnt - e < 1024 ? (int)(cnt - e) : 1024;
            for (q = 0; q < nq; q += 4) {
                uint64_t r = rng_next(&rng);
                int b;
                for (b = 0; b < 4; b++)
                    tmp[q + b] = (float)(int16_t)(uint16_t)(r >> (16 * b)) * scale + (is_norm ? 1.0f : 0.0f);
            }
            k_store_row(t[i].dtype, tmp, d + e * dtype_size(t[i].dtype), nq);
        }
    }
    {
        size_t fsz = (size_t)pl.file_size;
        plan_free(&pl);
        rc = model_from_buffer(buf, fsz, fn, out, err, errcap);
    }
done:
    free(t); free(names); free(tok);
    return rc;
}

/* =============================================================================================
 * 3. TOKENIZER (rh_tokenizer.inc, owned by the tokenizer part).  It defines
 *    struct rh_tokenizer (the typedef is above), tok_load, tok_free and the public rh_tokenize,
 *    rh_detokenize, rh_token_bytes, rh_n_tokens, rh_decoder_* functions.
 *    -DRH_TOKENIZER_STUB builds a byte-identity stand-in for engine work without it.
 * ============================================================================================= */
#if defined(RH_TOKENIZER_STUB)
struct rh_tokenizer {
    int n_tokens;
};
static int tok_load(rh_tokenizer **out, const unsigned char *sec, size_t n, int vocab_size, const char *fname,
                    char *err, size_t errcap) {
    rh_tokenizer *t;
    if (n < 28) { set_err(err, errcap, "%s: tokenizer section truncated", fname); return RH_EFORMAT; }
    if (rd_u32(sec + 16) > (uint32_t)vocab_size) { set_err(err, errcap, "%s: tokenizer n_tokens > vocab_size", fname); return RH_EFORMAT; }
    t = (rh_tokenizer *)malloc(sizeof *t);
    if (!t) return RH_ENOMEM;
    t->n_tokens = (int)rd_u32(sec + 16);
    *out = t;
    return RH_OK;
}
static void tok_free(rh_tokenizer *t) { free(t); }
int rh_n_tokens(const rh_model *m) { return model_tokenizer(m)->n_tokens; }
int rh_tokenize(const rh_model *m, const char *text, size_t len, int add_bos, int **ids, int *n_ids, char *err,
                size_t errcap) {
    int *o = (int *)malloc(sizeof(int) * (len + 1)), k = 0;
    size_t i;
    if (!o) { set_err(err, errcap, "out of memory"); return RH_ENOMEM; }
    if (add_bos < 0) add_bos = m->cfg.add_bos;
    if (add_bos && m->cfg.bos_id >= 0) o[k++] = m->cfg.bos_id;
    for (i = 0; i < len; i++) o[k++] = (unsigned char)text[i];
    *ids = o;
    *n_ids = k;
    return RH_OK;
}
int rh_token_bytes(const rh_model *m, int id, char *buf, size_t cap) {
    if (id < 0 || id >= m->cfg.vocab_size) return RH_ERANGE;
    if (id >= 256) return 0;
    if (cap) buf[0] = (char)id;
    return 1;
}
int rh_detokenize(const rh_model *m, const int *ids, int n_ids, int flags, char **text, size_t *len, char *err,
                  size_t errcap) {
    char *o = (char *)malloc((size_t)n_ids + 1);
    size_t k = 0;
    int i;
    (void)flags;
    if (!o) { set_err(err, errcap, "out of memory"); return RH_ENOMEM; }
    for (i = 0; i < n_ids; i++) {
        int r = rh_token_bytes(m, ids[i], o + k, 1);
        if (r < 0) { free(o); set_err(err, errcap, "token id %d out of range", ids[i]); return RH_ERANGE; }
        k += (size_t)r;
    }
    o[k] = 0;
    *text = o;
    if (len) *len = k;
    return RH_OK;
}
void rh_decoder_init(rh_decoder *d, const rh_model *m, int flags) { memset(d, 0, sizeof *d); d->m = m; d->flags = flags; }
int rh_decoder_push(rh_decoder *d, int id, char *out, size_t cap) { d->n_seen++; return rh_token_bytes(d->m, id, out, cap); }
int rh_decoder_flush(rh_decoder *d, char *out, size_t cap) { (void)d; (void)out; (void)cap; return 0; }
#else
#include "rh_tokenizer.inc"
#endif

/* =============================================================================================
 * 4. TRANSFORMER
 *
 * The math of Hugging Face's LlamaForCausalLM (also Mistral, Qwen2), in f32 whatever the
 * weight dtype:
 *   x = embed[id]
 *   per layer:  h = x + o_proj(attn(rope(q_proj(rms(x))), rope(k_proj(rms(x))), v_proj(rms(x))))
 *               x = h + down(silu(gate(rms(h))) * up(rms(h)))
 *   logits = lm_head(rms(x))
 * Activations are row-major (tokens, features).  The KV cache is (layer, kv_head, position,
 * head_dim) so one head's keys are contiguous.
 * ============================================================================================= */

#define RH_BK 64         /* keys per attention block */
#define RH_QROWS 64      /* target query rows (heads x tokens) per attention task */
#define RH_CHUNK 512     /* default prefill chunk */

typedef struct {
    float *wpack;           /* (kmax, RH_NR) the packed panel */
    float *q, *o, *s;       /* (R, head_dim), (R, head_dim), (R, RH_BK) */
    float *kf, *vf;         /* (RH_BK, head_dim) converted K/V block */
    float *qp, *kp, *pp;    /* packed: Q tiles (R + RH_MR, head_dim), K panel (RH_NR, head_dim),
                               P tiles (R + RH_MR, RH_BK) */
    float *mx, *sum, *best; /* (R) running max, softmax denominator, best raw score */
    int *bestpos;           /* (R) */
} rh_scratch;

struct rh_ctx {
    const rh_model *m;
    int n_threads, n_ctx, n_past, chunk, qb; /* qb: query tokens per attention task */
    rh_dtype kv_dtype;
    rh_pool *pool;
    unsigned char *kcache, *vcache;         /* (n_layers, n_kv_heads, n_ctx, head_dim) */
    float *x, *xb, *xb2, *q, *k, *v, *att;  /* (chunk, dim | q_dim | kv_dim) */
    float *hb, *hb2;                        /* (chunk, hidden_dim) */
    float *xpack;                           /* (chunk rounded up to RH_MR, kmax) packed X */
    float *rope;                            /* (chunk, head_dim/2, 2) cos, sin */
    rh_scratch *scr;                        /* (n_threads) */
    int observing;
    rh_observe obs;
    unsigned char *mask;                    /* (n_layers * n_heads) or NULL */
    rh_mask_mode mask_mode;
    char err[256];
};

/* ---- matmul: Y_i (m, rows_i) = X (m, k) W_i^T for up to 3 weights sharing X, one dispatch.
 * A task is one panel of RH_NB weight rows.  Prefill (packed = 1) packs the panel k-major (f16 /
 * bf16 converted first) and runs the packed GEMM; decode (packed = 0, m = 1) streams the rows
 * through dot products, converting in registers.  Which path runs depends only on the caller,
 * never on the thread count. ---- */
#define RH_NB RH_NR
typedef struct {
    rh_ctx *c;
    const float *X;
    int m, k, nw, packed;
    const rh_wt *w[3];
    float *Y[3];
    int first_block[4];
} mm_job;

static void mm_task(void *arg, int task, int thread) {
    mm_job *J = (mm_job *)arg;
    int wi = 0, j0, nj, i, j;
    const rh_wt *w;
    float *Y;
    const unsigned char *wp;
    while (task >= J->first_block[wi + 1]) wi++;
    w = J->w[wi];
    Y = J->Y[wi];
    j0 = (task - J->first_block[wi]) * RH_NB;
    nj = w->rows - j0 < RH_NB ? w->rows - j0 : RH_NB;
    wp = (const unsigned char *)w->p + (size_t)j0 * (size_t)J->k * dtype_size(w->dt);
    if (J->packed) {
        rh_scratch *S = &J->c->scr[thread];
        k_pack_w(w->dt, wp, (size_t)J->k, nj, J->k, S->wpack);
        k_gemm_packed(J->c->xpack, S->wpack, J->k, Y + j0, w->rows, J->m, nj);
    } else if (w->dt == RH_F32) {
        k_gemm_nt(J->X, J->k, (const float *)(const void *)wp, J->k, Y + j0, w->rows, J->m, nj, J->k);
    } else {
        for (i = 0; i < J->m; i++) {
            float *y = Y + (size_t)i * w->rows + j0;
            const float *x = J->X + (size_t)i * J->k;
            for (j = 0; j + 4 <= nj; j += 4) k_dot_w4(w->dt, wp + (size_t)j * J->k * 2, (size_t)J->k, x, J->k, y + j);
            for (; j < nj; j++) y[j] = k_dot_w(w->dt, wp + (size_t)j * J->k * 2, x, J->k);
        }
    }
}

static void pack_x_task(void *arg, int task, int thread) {
    mm_job *J = (mm_job *)arg;
    (void)thread;
    k_pack_x_tile(J->X, J->k, J->m, J->k, task, J->c->xpack);
}

static void matmul(rh_ctx *c, int packed, const float *X, int m, int k, int nw, const rh_wt *w0, float *y0,
                   const rh_wt *w1, float *y1, const rh_wt *w2, float *y2) {
    mm_job J;
    int i;
    J.c = c; J.X = X; J.m = m; J.k = k; J.nw = nw; J.packed = packed;
    J.w[0] = w0; J.w[1] = w1; J.w[2] = w2;
    J.Y[0] = y0; J.Y[1] = y1; J.Y[2] = y2;
    J.first_block[0] = 0;
    for (i = 0; i < 3; i++)
        J.first_block[i + 1] = J.first_block[i] + (i < nw ? (J.w[i]->rows + RH_NB - 1) / RH_NB : 0);
    if (packed) pool_run(c->pool, pack_x_task, &J, (m + RH_MR - 1) / RH_MR);
    pool_run(c->pool, mm_task, &J, J.first_block[3]);
}

/* ---- elementwise pieces ---- */

/* out = x * rsqrt(mean(x^2) + eps) * w, as LlamaRMSNorm in f32 (sum of squares in double) */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    float r;
    int i;
    for (i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    r = 1.0f / sqrtf((float)(ss / n) + eps);
    for (i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

/* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u */
RH_UNUSED static void k_silu_mul_scalar(float *g, const float *u, int n) {
    int i;
    for (i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
static void k_silu_mul(float *g, const float *u, int n) {
#if defined(RH_VEC)
    int i = 0;
    for (; i + RH_VL <= n; i += RH_VL) {
        rh_v x = V_LOAD(g + i), t = V_SUB(V_ZERO(), x), e;
        /* exp(-x) for -x in [-87, 88]: v_exp_neg extended by splitting off 2^k for positive args */
        t = V_MAX(t, V_SET1(-87.0f));
        {
            rh_v n2 = V_ROUND(V_MUL(t, V_SET1(1.44269504088896341f)));
            rh_v r = V_FMA(t, n2, V_SET1(-0.693359375f)), p;
            rh_v lim = V_SET1(127.0f);
            n2 = V_SUB(V_ZERO(), V_MAX(V_SUB(V_ZERO(), n2), V_SUB(V_ZERO(), lim))); /* min(n2, 127) */
            r = V_FMA(r, n2, V_SET1(2.12194440e-4f));
            p = V_SET1(1.9875691500e-4f);
            p = V_FMA(V_SET1(1.3981999507e-3f), p, r);
            p = V_FMA(V_SET1(8.3334519073e-3f), p, r);
            p = V_FMA(V_SET1(4.1665795894e-2f), p, r);
            p = V_FMA(V_SET1(1.6666665459e-1f), p, r);
            p = V_FMA(V_SET1(5.0000001201e-1f), p, r);
            p = V_FMA(r, p, V_MUL(r, r));
            p = V_ADD(p, V_SET1(1.0f));
            e = V_MUL(p, v_pow2n(n2));
        }
#if defined(RH_AVX512)
        x = _mm512_div_ps(x, V_ADD(V_SET1(1.0f), e));
#elif defined(RH_AVX2)
        x = _mm256_div_ps(x, V_ADD(V_SET1(1.0f), e));
#else
        x = vdivq_f32(x, V_ADD(V_SET1(1.0f), e));
#endif
        V_STORE(g + i, V_MUL(x, V_LOAD(u + i)));
    }
    k_silu_mul_scalar(g + i, u + i, n - i);
#else
    k_silu_mul_scalar(g, u, n);
#endif
}

/* o (d) += sum_j p[j] * V[j] (V: (nk, d)), keeping o in registers; j in order (axpy order) */
RH_UNUSED static void k_pv_scalar(const float *p, const float *V, int nk, int d, float *o) {
    int j;
    for (j = 0; j < nk; j++) k_axpy_scalar(p[j], V + (size_t)j * d, o, d);
}
static void k_pv(const float *p, const float *V, int nk, int d, float *o) {
#if defined(RH_VEC)
    int c0 = 0, j;
    for (; c0 + 4 * RH_VL <= d; c0 += 4 * RH_VL) {
        rh_v a0 = V_LOAD(o + c0), a1 = V_LOAD(o + c0 + RH_VL), a2 = V_LOAD(o + c0 + 2 * RH_VL), a3 = V_LOAD(o + c0 + 3 * RH_VL);
        for (j = 0; j < nk; j++) {
            const float *v = V + (size_t)j * d + c0;
            rh_v pj = V_SET1(p[j]);
            a0 = V_FMA(a0, pj, V_LOAD(v)); a1 = V_FMA(a1, pj, V_LOAD(v + RH_VL));
            a2 = V_FMA(a2, pj, V_LOAD(v + 2 * RH_VL)); a3 = V_FMA(a3, pj, V_LOAD(v + 3 * RH_VL));
        }
        V_STORE(o + c0, a0); V_STORE(o + c0 + RH_VL, a1); V_STORE(o + c0 + 2 * RH_VL, a2); V_STORE(o + c0 + 3 * RH_VL, a3);
    }
    if (c0 < d)
        for (j = 0; j < nk; j++) k_axpy(p[j], V + (size_t)j * d + c0, o + c0, d - c0);
#else
    k_pv_scalar(p, V, nk, d, o);
#endif
}

/* ---- RoPE, rotate-half: dimension i pairs with i + d/2; cos/sin per (token, i) ---- */
static void rope_tables(const rh_ctx *c, int p0, int n) {
    const rh_model *m = c->m;
    int half = m->cfg.head_dim / 2, t, i;
    for (t = 0; t < n; t++) {
        float *cs = c->rope + (size_t)t * half * 2;
        for (i = 0; i < half; i++) {
            /* as HF: the angle is an f32 product of the f32 position and inv_freq */
            float ang = (float)(p0 + t) * m->inv_freq[i];
            cs[2 * i] = (float)cos((double)ang);
            cs[2 * i + 1] = (float)sin((double)ang);
        }
    }
}
static void rope_apply(float *x, int n_heads, int hd, const float *cs) {
    int h, i, half = hd / 2;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (i = 0; i < half; i++) {
            float a = v[i], b = v[i + half], co = cs[2 * i], si = cs[2 * i + 1];
            v[i] = a * co - b * si;
            v[i + half] = b * co + a * si;
        }
    }
}

/* ---- attention ----
 * One task = one kv head x a block of query tokens; its rows are (token, query head of the
 * group).  Keys are visited in blocks of RH_BK at fixed absolute positions, scores computed as a
 * small GEMM, then online softmax (running max and denominator, output rescaled), so the n x n
 * matrix never exists.  Observe records top-1 from the same scores; mask modes change them. */
typedef struct {
    rh_ctx *c;
    int layer, n, p0, n_qb, obs, pk; /* pk: prefill, packed GEMMs (decode: dot products) */
} att_job;

static void att_task(void *arg, int task, int thread) {
    att_job *J = (att_job *)arg;
    rh_ctx *c = J->c;
    const rh_config *cf = &c->m->cfg;
    rh_scratch *S = &c->scr[thread];
    int nh = cf->n_heads, nkv = cf->n_kv_heads, hd = cf->head_dim, g = nh / nkv;
    int hk = task / J->n_qb, u = task % J->n_qb;
    /* pair cheap (early) and dear (late) query blocks so contiguous task ranges balance */
    int qb = (u % 2 == 0) ? u / 2 : J->n_qb - 1 - u / 2;
    int t0 = qb * c->qb, t1 = t0 + c->qb < J->n ? t0 + c->qb : J->n, R = (t1 - t0) * g, r, kb, j;
    int last_pos = J->p0 + t1 - 1;
    size_t kvsz = dtype_size(c->kv_dtype);
    size_t head_off = ((size_t)J->layer * nkv + hk) * (size_t)c->n_ctx * hd;
    const unsigned char *kbase = c->kcache + head_off * kvsz, *vbase = c->vcache + head_off * kvsz;
    const unsigned char *mask = c->mask ? c->mask + (size_t)J->layer * nh : NULL;
    float scale = 1.0f / sqrtf((float)hd);
    int all_neginf = 1;

    for (r = 0; r < R; r++) {
        int ti = t0 + r / g, h = hk * g + r % g;
        memcpy(S->q + (size_t)r * hd, c->q + ((size_t)ti * nh + h) * hd, sizeof(float) * hd);
        memset(S->o + (size_t)r * hd, 0, sizeof(float) * hd);
        S->mx[r] = -INFINITY;
        S->sum[r] = 0.0f;
        S->best[r] = -INFINITY;
        S->bestpos[r] = 0;
        if (!(mask && mask[h] && c->mask_mode == RH_MASK_NEG_INF)) all_neginf = 0;
    }
    if (J->pk)
        for (r = 0; r * RH_MR < R; r++) k_pack_x_tile(S->q, hd, R, hd, r, S->qp);
    for (kb = 0; kb <= last_pos && !all_neginf; kb += RH_BK) {
        int nk = last_pos + 1 - kb < RH_BK ? last_pos + 1 - kb : RH_BK;
        const float *K, *V;
        if (c->kv_dtype == RH_F32) {
            K = (const float *)(const void *)(kbase + (size_t)kb * hd * 4);
            V = (const float *)(const void *)(vbase + (size_t)kb * hd * 4);
        } else {
            k_cvt(c->kv_dtype, kbase + (size_t)kb * hd * kvsz, S->kf, nk * hd);
            k_cvt(c->kv_dtype, vbase + (size_t)kb * hd * kvsz, S->vf, nk * hd);
            K = S->kf;
            V = S->vf;
        }
        /* scores (R, nk) = Q K^T */
        if (J->pk) {
            int pn;
            for (pn = 0; pn < nk; pn += RH_NR) {
                int nr = nk - pn < RH_NR ? nk - pn : RH_NR;
                k_pack(K + (size_t)pn * hd, hd, nr, hd, S->kp);
                k_gemm_packed(S->qp, S->kp, hd, S->s + pn, RH_BK, R, nr);
            }
        } else {
            k_gemm_nt(S->q, hd, K, hd, S->s, RH_BK, R, nk, hd);
        }
        for (r = 0; r < R; r++) {
            int ti = t0 + r / g, h = hk * g + r % g, pos = J->p0 + ti;
            int vis = pos + 1 - kb < nk ? pos + 1 - kb : nk, mode = mask && mask[h] ? (int)c->mask_mode : -1;
            float *s = S->s + (size_t)r * RH_BK, bm, mnew, corr, sum;
            int observed = J->obs && ti == J->n - 1;
            if (vis <= 0 || mode == RH_MASK_NEG_INF) {
                if (J->pk) memset(s, 0, sizeof(float) * (size_t)nk); /* no weight in the P V product */
                continue;
            }
            if (J->pk && vis < nk) memset(s + vis, 0, sizeof(float) * (size_t)(nk - vis));
            if (mode == RH_MASK_UNIFORM) for (j = 0; j < vis; j++) s[j] = 0.0f;
            else k_scale(s, scale, vis);
            if (observed) {
                for (j = 0; j < vis; j++)
                    if (s[j] > S->best[r]) { S->best[r] = s[j]; S->bestpos[r] = kb + j; }
                if (c->obs.rows)
                    memcpy(c->obs.rows + (size_t)(J->layer * nh + h) * c->obs.row_stride + kb, s, sizeof(float) * vis);
            }
            bm = k_max(s, vis);
            mnew = bm > S->mx[r] ? bm : S->mx[r];
            if (mnew > S->mx[r] && S->sum[r] > 0.0f) {
                corr = expf(S->mx[r] - mnew);
                S->sum[r] *= corr;
                k_scale(S->o + (size_t)r * hd, corr, hd);
            }
            S->mx[r] = mnew;
            sum = k_exp_sum(s, mnew, s, vis);
            S->sum[r] += sum;
            if (!J->pk) k_pv(s, V, vis, hd, S->o + (size_t)r * hd);
        }
        if (J->pk) {
            /* O (R, hd) += P (R, nk) V (nk, hd): V's rows are already k-major panels */
            int tt, d0 = 0;
            for (tt = 0; tt * RH_MR < R; tt++) k_pack_x_tile(S->s, RH_BK, R, nk, tt, S->pp);
            for (; d0 + RH_NR <= hd; d0 += RH_NR) k_gemm_packed_acc(S->pp, V + d0, hd, nk, S->o + d0, hd, R, RH_NR, 1);
            if (d0 < hd)
                for (r = 0; r < R; r++)
                    for (j = 0; j < nk; j++)
                        k_axpy(S->s[(size_t)r * RH_BK + j], V + (size_t)j * hd + d0, S->o + (size_t)r * hd + d0, hd - d0);
        }
    }
    for (r = 0; r < R; r++) {
        int ti = t0 + r / g, h = hk * g + r % g, pos = J->p0 + ti, mode = mask && mask[h] ? (int)c->mask_mode : -1;
        float *out = c->att + ((size_t)ti * nh + h) * hd;
        int observed = J->obs && ti == J->n - 1, hi = J->layer * nh + h;
        if (mode == RH_MASK_NEG_INF) {
            /* only the token itself is visible: the output is its value vector */
            k_cvt(c->kv_dtype, vbase + (size_t)pos * hd * kvsz, out, hd);
            if (observed) {
                c->obs.top1[hi] = pos;
                if (c->obs.top1_weight) c->obs.top1_weight[hi] = 1.0f;
                if (c->obs.rows) {
                    float *row = c->obs.rows + (size_t)hi * c->obs.row_stride;
                    for (j = 0; j <= pos; j++) row[j] = j == pos ? 1.0f : 0.0f;
                }
            }
            continue;
        }
        if (mode == RH_MASK_ZERO) memset(out, 0, sizeof(float) * hd);
        else {
            float inv = 1.0f / S->sum[r];
            const float *o = S->o + (size_t)r * hd;
            for (j = 0; j < hd; j++) out[j] = o[j] * inv;
        }
        if (observed) {
            /* the max raw score is the running max, so its weight is exp(0) / sum */
            c->obs.top1[hi] = S->bestpos[r];
            if (c->obs.top1_weight) c->obs.top1_weight[hi] = 1.0f / S->sum[r];
            if (c->obs.rows) {
                float *row = c->obs.rows + (size_t)hi * c->obs.row_stride, inv = 1.0f / S->sum[r];
                for (j = 0; j <= pos; j++) row[j] = expf(row[j] - S->mx[r]) * inv;
            }
        }
    }
}

/* ---- one chunk of n tokens at positions p0.. through all layers ----
 * lm: 0 no logits, 1 logits of the last token into out, 2 logits of every token (n, vocab). */
static void forward_chunk(rh_ctx *c, const int *ids, int n, int p0, float *out, int lm, int obs, int pk) {
    const rh_model *m = c->m;
    const rh_config *cf = &m->cfg;
    int dim = cf->dim, nh = cf->n_heads, nkv = cf->n_kv_heads, hd = cf->head_dim, hid = cf->hidden_dim;
    int qd = nh * hd, kvd = nkv * hd, half = hd / 2, l, t, h, i;
    size_t kvsz = dtype_size(c->kv_dtype);
    att_job A;

    /* x (n, dim) = embedding rows */
    for (t = 0; t < n; t++)
        k_cvt(m->embed.dt, (const unsigned char *)m->embed.p + (size_t)ids[t] * dim * dtype_size(m->embed.dt),
              c->x + (size_t)t * dim, dim);
    rope_tables(c, p0, n);

    for (l = 0; l < cf->n_layers; l++) {
        const rh_layer *L = &m->layers[l];
        /* attention block: q (n, qd), k, v (n, kvd) */
        for (t = 0; t < n; t++) rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->attn_norm, dim, cf->norm_eps);
        matmul(c, pk, c->xb, n, dim, 3, &L->wq, c->q, &L->wk, c->k, &L->wv, c->v);
        for (t = 0; t < n; t++) {
            float *q = c->q + (size_t)t * qd, *k = c->k + (size_t)t * kvd, *v = c->v + (size_t)t * kvd;
            if (L->bq) {
                for (i = 0; i < qd; i++) q[i] += L->bq[i];
                for (i = 0; i < kvd; i++) { k[i] += L->bk[i]; v[i] += L->bv[i]; }
            }
            rope_apply(q, nh, hd, c->rope + (size_t)t * half * 2);
            rope_apply(k, nkv, hd, c->rope + (size_t)t * half * 2);
            for (h = 0; h < nkv; h++) {
                size_t at = (((size_t)l * nkv + h) * (size_t)c->n_ctx + (size_t)(p0 + t)) * hd * kvsz;
                k_store_row(c->kv_dtype, k + (size_t)h * hd, c->kcache + at, hd);
                k_store_row(c->kv_dtype, v + (size_t)h * hd, c->vcache + at, hd);
            }
        }
        A.c = c; A.layer = l; A.n = n; A.p0 = p0; A.obs = obs; A.pk = pk;
        A.n_qb = (n + c->qb - 1) / c->qb;
        pool_run(c->pool, att_task, &A, nkv * A.n_qb);
        matmul(c, pk, c->att, n, qd, 1, &L->wo, c->xb2, NULL, NULL, NULL, NULL);
        for (i = 0; i < n * dim; i++) c->x[i] += c->xb2[i];

        /* MLP block: hb, hb2 (n, hid) */
        for (t = 0; t < n; t++) rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm, dim, cf->norm_eps);
        matmul(c, pk, c->xb, n, dim, 2, &L->wg, c->hb, &L->wu, c->hb2, NULL, NULL);
        k_silu_mul(c->hb, c->hb2, n * hid);
        matmul(c, pk, c->hb, n, hid, 1, &L->wd, c->xb2, NULL, NULL, NULL, NULL);
        for (i = 0; i < n * dim; i++) c->x[i] += c->xb2[i];
    }
    if (lm == 1) {
        rmsnorm(c->xb, c->x + (size_t)(n - 1) * dim, m->final_norm, dim, cf->norm_eps);
        matmul(c, pk, c->xb, 1, dim, 1, &m->lm_head, out, NULL, NULL, NULL, NULL);
    } else if (lm == 2) {
        for (t = 0; t < n; t++) rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, m->final_norm, dim, cf->norm_eps);
        matmul(c, pk, c->xb, n, dim, 1, &m->lm_head, out, NULL, NULL, NULL, NULL);
    }
}

/* =============================================================================================
 * 5. GENERATION: contexts, the KV cache, chunked prefill
 * ============================================================================================= */

void rh_ctx_params_default(rh_ctx_params *p) {
    if (!p) return;
    p->n_threads = 0;
    p->n_ctx = 0;
    p->kv_dtype = RH_F32;
    p->prefill_chunk = 0;
}

void rh_ctx_free(rh_ctx *c) {
    int i;
    if (!c) return;
    if (c->pool) pool_free(c->pool);
    if (c->scr) {
        for (i = 0; i < c->n_threads; i++) {
            rh_scratch *s = &c->scr[i];
            free(s->wpack); free(s->q); free(s->o); free(s->s); free(s->kf); free(s->vf); free(s->qp); free(s->kp); free(s->pp);
            free(s->mx); free(s->sum); free(s->best); free(s->bestpos);
        }
        free(c->scr);
    }
    free(c->kcache); free(c->vcache);
    free(c->x); free(c->xb); free(c->xb2); free(c->q); free(c->k); free(c->v); free(c->att);
    free(c->hb); free(c->hb2); free(c->rope); free(c->mask); free(c->xpack);
    free(c);
}

static void *xmalloc_floats(size_t n, int *ok) {
    void *p = malloc(n ? n * sizeof(float) : 1);
    if (!p) *ok = 0;
    return p;
}

int rh_ctx_new(const rh_model *m, const rh_ctx_params *p, rh_ctx **out, char *err, size_t errcap) {
    rh_ctx_params d;
    rh_ctx *c;
    const rh_config *cf;
    int ok = 1, i, g, R, kmax;
    size_t kv_elems, C;
    if (!out) { set_err(err, errcap, "rh_ctx_new: out is NULL"); return RH_EINVAL; }
    *out = NULL;
    if (!m) { set_err(err, errcap, "rh_ctx_new: model is NULL"); return RH_EINVAL; }
    cf = &m->cfg;
    if (!p) { rh_ctx_params_default(&d); p = &d; }
    if (p->n_threads < 0 || p->n_threads > 1024) { set_err(err, errcap, "n_threads %d out of range 0..1024", p->n_threads); return RH_EINVAL; }
    if (p->n_ctx < 0 || p->n_ctx > RHW_MAX_CTX) { set_err(err, errcap, "n_ctx %d out of range 0..%d", p->n_ctx, RHW_MAX_CTX); return RH_EINVAL; }
    if ((int)p->kv_dtype < 0 || (int)p->kv_dtype > 2) { set_err(err, errcap, "kv_dtype %d is not f32, f16 or bf16", (int)p->kv_dtype); return RH_EINVAL; }
    if (p->prefill_chunk < 0 || p->prefill_chunk > 65536) { set_err(err, errcap, "prefill_chunk %d out of range 0..65536", p->prefill_chunk); return RH_EINVAL; }
    c = (rh_ctx *)calloc(1, sizeof *c);
    if (!c) { set_err(err, errcap, "out of memory"); return RH_ENOMEM; }
    c->m = m;
    c->n_threads = p->n_threads;
    if (c->n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->n_threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    c->n_ctx = p->n_ctx ? p->n_ctx : cf->max_ctx;
    c->kv_dtype = p->kv_dtype;
    c->chunk = p->prefill_chunk ? p->prefill_chunk : RH_CHUNK;
    if (c->chunk > c->n_ctx) c->chunk = c->n_ctx;
    g = cf->n_heads / cf->n_kv_heads;
    c->qb = RH_QROWS / g < 1 ? 1 : RH_QROWS / g;
    R = c->qb * g;
    kmax = cf->dim;
    if (cf->hidden_dim > kmax) kmax = cf->hidden_dim;
    if (cf->n_heads * cf->head_dim > kmax) kmax = cf->n_heads * cf->head_dim;

    kv_elems = (size_t)cf->n_layers * cf->n_kv_heads * (size_t)c->n_ctx * cf->head_dim;
    if (kv_elems > ((size_t)1 << 40)) {
        set_err(err, errcap, "KV cache of %d tokens is too large", c->n_ctx);
        rh_ctx_free(c);
        return RH_ENOMEM;
    }
    c->kcache = (unsigned char *)malloc(kv_elems * dtype_size(c->kv_dtype));
    c->vcache = (unsigned char *)malloc(kv_elems * dtype_size(c->kv_dtype));
    if (!c->kcache || !c->vcache) ok = 0;
    C = (size_t)c->chunk;
    c->x = (float *)xmalloc_floats(C * cf->dim, &ok);
    c->xb = (float *)xmalloc_floats(C * cf->dim, &ok);
    c->xb2 = (float *)xmalloc_floats(C * cf->dim, &ok);
    c->q = (float *)xmalloc_floats(C * cf->n_heads * cf->head_dim, &ok);
    c->att = (float *)xmalloc_floats(C * cf->n_heads * cf->head_dim, &ok);
    c->k = (float *)xmalloc_floats(C * cf->n_kv_heads * cf->head_dim, &ok);
    c->v = (float *)xmalloc_floats(C * cf->n_kv_heads * cf->head_dim, &ok);
    c->hb = (float *)xmalloc_floats(C * cf->hidden_dim, &ok);
    c->hb2 = (float *)xmalloc_floats(C * cf->hidden_dim, &ok);
    c->rope = (float *)xmalloc_floats(C * cf->head_dim, &ok);
    c->xpack = (float *)xmalloc_floats((C + RH_MR) * (size_t)kmax, &ok);
    c->scr = (rh_scratch *)calloc((size_t)c->n_threads, sizeof(rh_scratch));
    if (!c->scr) ok = 0;
    for (i = 0; ok && i < c->n_threads; i++) {
        rh_scratch *s = &c->scr[i];
        s->wpack = (float *)xmalloc_floats((size_t)RH_NR * kmax, &ok);
        s->q = (float *)xmalloc_floats((size_t)R * cf->head_dim, &ok);
        s->o = (float *)xmalloc_floats((size_t)R * cf->head_dim, &ok);
        s->s = (float *)xmalloc_floats((size_t)R * RH_BK, &ok);
        s->kf = (float *)xmalloc_floats((size_t)RH_BK * cf->head_dim, &ok);
        s->qp = (float *)xmalloc_floats((size_t)(R + RH_MR) * cf->head_dim, &ok);
        s->kp = (float *)xmalloc_floats((size_t)RH_NR * cf->head_dim, &ok);
        s->pp = (float *)xmalloc_floats((size_t)(R + RH_MR) * RH_BK, &ok);
        s->vf = (float *)xmalloc_floats((size_t)RH_BK * cf->head_dim, &ok);
        s->mx = (float *)xmalloc_floats((size_t)R, &ok);
        s->sum = (float *)xmalloc_floats((size_t)R, &ok);
        s->best = (float *)xmalloc_floats((size_t)R, &ok);
        s->bestpos = (int *)malloc(sizeof(int) * (size_t)R);
        if (!s->bestpos) ok = 0;
    }
    if (!ok) {
        set_err(err, errcap, "out of memory allocating a context of %d tokens", c->n_ctx);
        rh_ctx_free(c);
        return RH_ENOMEM;
    }
    c->pool = pool_new(c->n_threads);
    if (!c->pool) {
        set_err(err, errcap, "cannot start %d threads", c->n_threads);
        rh_ctx_free(c);
        return RH_ENOMEM;
    }
    *out = c;
    return RH_OK;
}

const char *rh_ctx_error(const rh_ctx *c) { return c ? c->err : "context is NULL"; }
const rh_model *rh_ctx_model(const rh_ctx *c) { return c ? c->m : NULL; }
int rh_ctx_n_past(const rh_ctx *c) { return c ? c->n_past : 0; }
int rh_ctx_n_ctx(const rh_ctx *c) { return c ? c->n_ctx : 0; }

int rh_ctx_rewind(rh_ctx *c, int n_past) {
    if (!c) return RH_EINVAL;
    if (n_past < 0 || n_past > c->n_past) {
        set_err(c->err, sizeof c->err, "rh_ctx_rewind: n_past %d out of range 0..%d", n_past, c->n_past);
        return RH_ERANGE;
    }
    c->n_past = n_past;
    return RH_OK;
}

int rh_set_observe(rh_ctx *c, const rh_observe *obs) {
    if (!c) return RH_EINVAL;
    if (!obs) { c->observing = 0; memset(&c->obs, 0, sizeof c->obs); return RH_OK; }
    if (!obs->top1) { set_err(c->err, sizeof c->err, "rh_set_observe: top1 is NULL"); return RH_EINVAL; }
    if (obs->rows && obs->row_stride < 1) { set_err(c->err, sizeof c->err, "rh_set_observe: row_stride %d < 1", obs->row_stride); return RH_EINVAL; }
    c->obs = *obs;
    c->observing = 1;
    return RH_OK;
}

int rh_set_mask(rh_ctx *c, const unsigned char *heads, rh_mask_mode mode) {
    size_t n;
    if (!c) return RH_EINVAL;
    if ((int)mode < 0 || (int)mode > 2) { set_err(c->err, sizeof c->err, "rh_set_mask: unknown mode %d", (int)mode); return RH_EINVAL; }
    if (!heads) { free(c->mask); c->mask = NULL; c->mask_mode = mode; return RH_OK; }
    n = (size_t)c->m->cfg.n_layers * c->m->cfg.n_heads;
    if (!c->mask) {
        c->mask = (unsigned char *)malloc(n);
        if (!c->mask) { set_err(c->err, sizeof c->err, "rh_set_mask: out of memory"); return RH_ENOMEM; }
    }
    memcpy(c->mask, heads, n);
    c->mask_mode = mode;
    return RH_OK;
}

int rh_eval(rh_ctx *c, const int *ids, int n, float *logits, int logits_all) {
    const rh_config *cf;
    int i, done;
    if (!c) return RH_EINVAL;
    cf = &c->m->cfg;
    if (!ids || n < 1) { set_err(c->err, sizeof c->err, "rh_eval: no tokens"); return RH_EINVAL; }
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= cf->vocab_size) {
            set_err(c->err, sizeof c->err, "rh_eval: token id %d at index %d out of range 0..%d", ids[i], i, cf->vocab_size - 1);
            return RH_EINVAL;
        }
    if (n > c->n_ctx - c->n_past) {
        set_err(c->err, sizeof c->err, "rh_eval: %d tokens after %d cached exceed the context of %d", n, c->n_past, c->n_ctx);
        return RH_ERANGE;
    }
    if (c->observing && c->obs.rows && c->obs.row_stride < c->n_past + n) {
        set_err(c->err, sizeof c->err, "rh_eval: observe row_stride %d < %d visible positions", c->obs.row_stride, c->n_past + n);
        return RH_ERANGE;
    }
    for (done = 0; done < n; done += c->chunk) {
        int nc = n - done < c->chunk ? n - done : c->chunk, last = done + nc == n;
        int lm = !logits ? 0 : logits_all ? 2 : last ? 1 : 0;
        float *out = logits_all && logits ? logits + (size_t)done * cf->vocab_size : logits;
        forward_chunk(c, ids + done, nc, c->n_past, out, lm, last && c->observing, n > 1);
        c->n_past += nc;
    }
    return RH_OK;
}

/* =============================================================================================
 * 6-8. THE METHOD (rh_method.inc): NIAH, retrieval scores, experiments.  Compiled in with
 * -DRH_HAVE_METHOD (make METHOD=1); it provides cmd_detect, cmd_niah, cmd_report, cmd_compare.
 * ============================================================================================= */
#if defined(RH_HAVE_METHOD)
#include "rh_method.inc"
#endif

/* =============================================================================================
 * 9. COMMAND LINE
 *
 * Exit codes: 0 success; 1 a runtime or file error; 2 a bad command line (one line
 * "retrieval_heads: <command>: <flag>: <problem>").
 * ============================================================================================= */
#ifndef RH_NO_MAIN

#define RH_DEFAULT_MODEL "weights/demo.rhw"

/* one line "retrieval_heads: cmd: what" on stderr; returns the exit code */
static int cli_fail(int code, const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "retrieval_heads: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static int cli_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v;
    if (!s || !*s) return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* Parse "1 2 3" or "1,2,3" into *ids (malloc'd).  Returns the count, or -1 (message in why). */
static int cli_ids(const char *s, int **ids, char *why, size_t cap) {
    int n = 0, capn = 16;
    int *v = (int *)malloc(sizeof(int) * (size_t)capn);
    if (!v) { snprintf(why, cap, "out of memory"); return -1; }
    for (;;) {
        char *end;
        long x;
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n' || *s == '\r') s++;
        if (!*s) break;
        errno = 0;
        x = strtol(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT_MAX ||
            (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n' && *end != '\r')) {
            int l = 0;
            while (s[l] && s[l] != ' ' && s[l] != ',' && l < 40) l++;
            snprintf(why, cap, "'%.*s' is not a token id (a non-negative integer)", l, s);
            free(v);
            return -1;
        }
        if (n == capn) {
            int *w = (int *)realloc(v, sizeof(int) * (size_t)(capn *= 2));
            if (!w) { free(v); snprintf(why, cap, "out of memory"); return -1; }
            v = w;
        }
        v[n++] = (int)x;
        s = end;
    }
    if (n == 0) { free(v); snprintf(why, cap, "no token ids given"); return -1; }
    *ids = v;
    return n;
}

/* Options shared by the commands that run the model. */
typedef struct {
    const char *cmd;
    const char *pos[4];
    int n_pos;
    int threads, n_ctx;
    rh_dtype kv;
    int help;
} cli_common;

/* Try to consume a common flag at argv[*i].  Returns 1 consumed, 0 not a common flag, -2 bad. */
static int cli_common_flag(cli_common *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    long v;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { o->help = 1; return 1; }
    if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
        if (*i + 1 >= argc) { cli_fail(2, o->cmd, "%s: missing value", a); return -2; }
        if (!cli_int(argv[++*i], 1, 1024, &v)) { cli_fail(2, o->cmd, "%s: '%s' is not a thread count in 1..1024", a, argv[*i]); return -2; }
        o->threads = (int)v;
        return 1;
    }
    if (strcmp(a, "--ctx") == 0) {
        if (*i + 1 >= argc) { cli_fail(2, o->cmd, "%s: missing value", a); return -2; }
        if (!cli_int(argv[++*i], 1, RHW_MAX_CTX, &v)) { cli_fail(2, o->cmd, "%s: '%s' is not a context size in 1..%d", a, argv[*i], RHW_MAX_CTX); return -2; }
        o->n_ctx = (int)v;
        return 1;
    }
    if (strcmp(a, "--kv") == 0) {
        const char *s;
        if (*i + 1 >= argc) { cli_fail(2, o->cmd, "%s: missing value", a); return -2; }
        s = argv[++*i];
        if (strcmp(s, "f32") == 0) o->kv = RH_F32;
        else if (strcmp(s, "f16") == 0) o->kv = RH_F16;
        else if (strcmp(s, "bf16") == 0) o->kv = RH_BF16;
        else { cli_fail(2, o->cmd, "%s: '%s' is not f32, f16 or bf16", a, s); return -2; }
        return 1;
    }
    return 0;
}

/* The value of a flag that takes one; NULL (message printed) when it is missing. */
static const char *cli_value(const cli_common *o, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) { cli_fail(2, o->cmd, "%s: missing value", argv[*i]); return NULL; }
    return argv[++*i];
}

static int cli_positional(cli_common *o, const char *a) {
    if (o->n_pos >= 4) return cli_fail(2, o->cmd, "%s: too many arguments", a);
    o->pos[o->n_pos++] = a;
    return 0;
}

static int cli_unknown(const cli_common *o, const char *a) {
    return cli_fail(2, o->cmd, "%s: unknown option (see %s --help)", a, o->cmd);
}

static int cli_open(const cli_common *o, const char *path, rh_model **m) {
    char err[512];
    if (!path) {
        if (access(RH_DEFAULT_MODEL, F_OK) != 0)
            return cli_fail(1, o->cmd, "no MODEL given and the default %s does not exist (`make demo` builds it)", RH_DEFAULT_MODEL);
        path = RH_DEFAULT_MODEL;
    }
    if (rh_model_open(path, m, err, sizeof err) != RH_OK) return cli_fail(1, o->cmd, "%s", err);
    return 0;
}

static int cli_ctx(const cli_common *o, const rh_model *m, int need, rh_ctx **c) {
    rh_ctx_params p;
    char err[512];
    rh_ctx_params_default(&p);
    p.n_threads = o->threads;
    p.kv_dtype = o->kv;
    p.n_ctx = o->n_ctx ? o->n_ctx : need;
    if (p.n_ctx < need) return cli_fail(2, o->cmd, "--ctx: %d is smaller than the %d tokens needed", p.n_ctx, need);
    if (p.n_ctx > RHW_MAX_CTX) return cli_fail(1, o->cmd, "%d tokens exceed the limit of %d", p.n_ctx, RHW_MAX_CTX);
    (void)m;
    if (rh_ctx_new(m, &p, c, err, sizeof err) != RH_OK) return cli_fail(1, o->cmd, "%s", err);
    return 0;
}

static void cli_common_init(cli_common *o, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->kv = RH_F32;
}

static const char *const cli_common_help =
    "  -t, --threads N   worker threads (default: all online CPUs); results do not depend on it\n"
    "  --kv f32|f16|bf16 KV cache precision (default f32)\n"
    "  --ctx N           KV cache capacity in tokens (default: what the command needs)\n"
    "  -h, --help        this help\n"
    "MODEL is a .rhw file; omitted, " RH_DEFAULT_MODEL " (built by `make demo`).\n";

/* ---- info ---- */
static int cmd_info(int argc, char **argv) {
    cli_common o;
    rh_model *m;
    const rh_config *c;
    int i, r;
    char sum[17];
    int want_sum = -1;
    cli_common_init(&o, "info");
    for (i = 1; i < argc; i++) {
        if ((r = cli_common_flag(&o, argc, argv, &i)) < 0) return 2;
        if (r) continue;
        if (strcmp(argv[i], "--checksum") == 0) { want_sum = 1; continue; }
        if (argv[i][0] == '-' && argv[i][1]) return cli_unknown(&o, argv[i]);
        if (o.n_pos >= 1) return cli_fail(2, "info", "%s: unexpected argument (info takes one MODEL)", argv[i]);
        cli_positional(&o, argv[i]);
    }
    if (o.help) {
        printf("usage: retrieval_heads info [MODEL] [--checksum]\nPrint the model's config, metadata, tensor count and\n"
               "FNV-1a checksum (files over 1 GiB: only with --checksum, it reads every byte).\n%s", cli_common_help);
        return 0;
    }
    if ((r = cli_open(&o, o.n_pos ? o.pos[0] : NULL, &m)) != 0) return r;
    c = rh_model_config(m);
    if (want_sum < 0) want_sum = m->size < ((size_t)1 << 30);
    if (want_sum) rh_model_checksum(m, sum);
    else strcpy(sum, "(--checksum)");
    printf("file            %s\n", rh_model_path(m));
    printf("file_size       %llu\n", (unsigned long long)m->size);
    printf("fnv1a64         %s\n", sum);
    printf("dtype           %s\n", dtype_name(rh_model_dtype(m)));
    printf("tensors         %d\n", m->n_tensors);
    printf("dim             %d\nhidden_dim      %d\nn_layers        %d\nn_heads         %d\n", c->dim, c->hidden_dim, c->n_layers, c->n_heads);
    printf("n_kv_heads      %d\nhead_dim        %d\nvocab_size      %d\nmax_ctx         %d\n", c->n_kv_heads, c->head_dim, c->vocab_size, c->max_ctx);
    printf("rope_theta      %g\n", (double)c->rope_theta);
    if (c->rope_scaling == RH_ROPE_LINEAR) printf("rope_scaling    linear factor %g\n", (double)c->rope_factor);
    else if (c->rope_scaling == RH_ROPE_LLAMA3)
        printf("rope_scaling    llama3 factor %g low_freq_factor %g high_freq_factor %g original_max_ctx %d\n", (double)c->rope_factor,
               (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor, c->rope_original_max_ctx);
    else printf("rope_scaling    none\n");
    printf("norm_eps        %g\nqkv_bias        %d\ntied_embeddings %d\nadd_bos         %d\nbos_id          %d\neos_ids        ",
           (double)c->norm_eps, c->qkv_bias, c->tied_embeddings, c->add_bos, c->bos_id);
    for (i = 0; i < c->n_eos; i++) printf(" %d", c->eos_ids[i]);
    printf("\ntokens          %d\n", rh_n_tokens(m));
    {
        const unsigned char *p = m->meta;
        uint32_t k;
        for (k = 0; p && k < m->n_meta; k++) {
            uint32_t kl = rd_u32(p), vl = rd_u32(p + 4 + kl);
            const char *v = (const char *)(p + 8 + kl);
            uint32_t j, show = vl > 160 ? 160 : vl;
            printf("meta.%.*s%*s", (int)kl, (const char *)(p + 4), kl < 11 ? (int)(11 - kl) : 1, "");
            for (j = 0; j < show; j++) {
                unsigned char ch = (unsigned char)v[j];
                if (ch == '\n') fputs("\\n", stdout);
                else if (ch < 0x20) printf("\\x%02x", ch);
                else putchar(ch);
            }
            if (show < vl) printf("... (%u bytes)", vl);
            putchar('\n');
            p += 8 + (size_t)kl + vl;
        }
    }
    printf("kernels         %s\n", RH_SIMD_NAME);
    rh_model_close(m);
    return 0;
}

/* ---- generate ---- */
static int cmd_generate(int argc, char **argv) {
    cli_common o;
    const char *prompt = NULL, *ids_s = NULL;
    int ids_out = 0, ignore_eos = 0, i, r, n_prompt = 0, *ids = NULL, n_gen = 0, rc = 0;
    long n = 64;
    rh_model *m = NULL;
    rh_ctx *c = NULL;
    float *logits = NULL;
    char why[256];
    double t0, t1, t2;
    cli_common_init(&o, "generate");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = cli_common_flag(&o, argc, argv, &i)) < 0) return 2;
        if (r) continue;
        if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) { if (!(prompt = cli_value(&o, argc, argv, &i))) return 2; }
        else if (strcmp(a, "--ids") == 0) { if (!(ids_s = cli_value(&o, argc, argv, &i))) return 2; }
        else if (strcmp(a, "-n") == 0) {
            const char *v = cli_value(&o, argc, argv, &i);
            if (!v) return 2;
            if (!cli_int(v, 0, RHW_MAX_CTX, &n)) return cli_fail(2, "generate", "-n: '%s' is not a token count in 0..%d", v, RHW_MAX_CTX);
        } else if (strcmp(a, "--ids-out") == 0) ids_out = 1;
        else if (strcmp(a, "--ignore-eos") == 0) ignore_eos = 1;
        else if (a[0] == '-' && a[1]) return cli_unknown(&o, a);
        else if (o.n_pos >= 1) return cli_fail(2, "generate", "%s: unexpected argument (quote the prompt after -p)", a);
        else cli_positional(&o, a);
    }
    if (o.help) {
        printf("usage: retrieval_heads generate [MODEL] (-p TEXT | --ids \"1 2 3\") [-n N] [--ids-out] [--ignore-eos]\n"
               "Greedy decoding: prints the continuation as text (or its ids with --ids-out) on stdout,\n"
               "speeds on stderr.  Stops after N tokens (default 64) or at an end-of-sequence token.\n"
               "  -p, --prompt TEXT  the prompt, tokenized (BOS as the model's add_bos flag says)\n"
               "  --ids \"1 2 3\"      the prompt as token ids\n%s", cli_common_help);
        return 0;
    }
    if (!prompt == !ids_s) return cli_fail(2, "generate", "give exactly one of -p TEXT and --ids \"1 2 3\"");
    if (ids_s && (n_prompt = cli_ids(ids_s, &ids, why, sizeof why)) < 0) return cli_fail(2, "generate", "--ids: %s", why);
    if ((r = cli_open(&o, o.n_pos ? o.pos[0] : NULL, &m)) != 0) { free(ids); return r; }
    if (prompt) {
        char err[512];
        if (rh_tokenize(m, prompt, strlen(prompt), -1, &ids, &n_prompt, err, sizeof err) != RH_OK) {
            rc = cli_fail(1, "generate", "%s", err);
            goto done;
        }
        if (n_prompt == 0) { rc = cli_fail(2, "generate", "-p: the prompt has no tokens"); goto done; }
    }
    for (i = 0; i < n_prompt; i++)
        if (ids[i] >= m->cfg.vocab_size) { rc = cli_fail(2, "generate", "--ids: id %d out of range 0..%d", ids[i], m->cfg.vocab_size - 1); goto done; }
    if ((long)n_prompt + n > RHW_MAX_CTX) { rc = cli_fail(2, "generate", "-n: %ld tokens after a %d-token prompt exceed %d", n, n_prompt, RHW_MAX_CTX); goto done; }
    if ((rc = cli_ctx(&o, m, n_prompt + (int)n, &c)) != 0) goto done;
    logits = (float *)malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    if (!logits) { rc = cli_fail(1, "generate", "out of memory"); goto done; }
    {
        rh_decoder dec;
        char buf[1024];
        int tok, k;
        rh_decoder_init(&dec, m, RH_DETOK_SKIP_SPECIAL);
        t0 = rh_now();
        if (rh_eval(c, ids, n_prompt, logits, 0) != RH_OK) { rc = cli_fail(1, "generate", "%s", rh_ctx_error(c)); goto done; }
        t1 = rh_now();
        for (n_gen = 0; n_gen < n; ) {
            tok = rh_argmax(logits, m->cfg.vocab_size);
            n_gen++;
            if (ids_out) printf("%s%d", n_gen > 1 ? " " : "", tok);
            else if ((k = rh_decoder_push(&dec, tok, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)k, stdout);
            fflush(stdout);
            if (!ignore_eos) {
                int e, is_eos = 0;
                for (e = 0; e < m->cfg.n_eos; e++) if (tok == m->cfg.eos_ids[e]) is_eos = 1;
                if (is_eos) break;
            }
            if (n_gen == n) break;
            if (rh_eval(c, &tok, 1, logits, 0) != RH_OK) { rc = cli_fail(1, "generate", "%s", rh_ctx_error(c)); goto done; }
        }
        if (!ids_out && (k = rh_decoder_flush(&dec, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)k, stdout);
        putchar('\n');
        t2 = rh_now();
        fprintf(stderr, "prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.2f tok/s); %d threads, kernels %s\n",
                n_prompt, t1 - t0, n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen, t2 - t1,
                n_gen > 1 ? (n_gen - 1) / (t2 - t1 > 0 ? t2 - t1 : 1e-9) : 0.0, c->n_threads, RH_SIMD_NAME);
    }
done:
    free(logits);
    free(ids);
    rh_ctx_free(c);
    rh_model_close(m);
    return rc;
}

/* Write n floats as little-endian f32 to path (temp file, then renamed). */
static int write_f32_file(const char *path, const float *x, size_t n, char *err, size_t cap) {
    char *tmp = (char *)malloc(strlen(path) + 16);
    FILE *f;
    size_t i;
    int ok;
    if (!tmp) { set_err(err, cap, "out of memory"); return RH_ENOMEM; }
    sprintf(tmp, "%s.tmp%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) { set_err(err, cap, "%s: cannot create: %s", tmp, strerror(errno)); free(tmp); return RH_EIO; }
    if (host_is_le()) ok = fwrite(x, sizeof(float), n, f) == n;
    else {
        ok = 1;
        for (i = 0; ok && i < n; i++) {
            unsigned char b[4];
            wr_f32(b, x[i]);
            ok = fwrite(b, 1, 4, f) == 4;
        }
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        set_err(err, cap, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return RH_EIO;
    }
    free(tmp);
    return RH_OK;
}

/* ---- logits ---- */
static int cmd_logits(int argc, char **argv) {
    cli_common o;
    const char *ids_s = NULL, *out = NULL;
    int i, r, n = 0, *ids = NULL, rc = 0;
    rh_model *m = NULL;
    rh_ctx *c = NULL;
    float *lg = NULL;
    char why[256];
    cli_common_init(&o, "logits");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = cli_common_flag(&o, argc, argv, &i)) < 0) return 2;
        if (r) continue;
        if (strcmp(a, "--ids") == 0) { if (!(ids_s = cli_value(&o, argc, argv, &i))) return 2; }
        else if (strcmp(a, "--out") == 0 || strcmp(a, "-o") == 0) { if (!(out = cli_value(&o, argc, argv, &i))) return 2; }
        else if (a[0] == '-' && a[1]) return cli_unknown(&o, a);
        else if (o.n_pos >= 1) return cli_fail(2, "logits", "%s: unexpected argument", a);
        else cli_positional(&o, a);
    }
    if (o.help) {
        printf("usage: retrieval_heads logits [MODEL] --ids \"1 2 3\" --out FILE\n"
               "Write the logits of every position: n_tokens x vocab_size float32, little-endian,\n"
               "row i for token i (written to a temporary file, then renamed).\n%s", cli_common_help);
        return 0;
    }
    if (!ids_s) return cli_fail(2, "logits", "--ids: missing (the token ids to run)");
    if (!out || !*out) return cli_fail(2, "logits", "--out: missing (the output file)");
    if ((n = cli_ids(ids_s, &ids, why, sizeof why)) < 0) return cli_fail(2, "logits", "--ids: %s", why);
    if ((r = cli_open(&o, o.n_pos ? o.pos[0] : NULL, &m)) != 0) { free(ids); return r; }
    for (i = 0; i < n; i++)
        if (ids[i] >= m->cfg.vocab_size) { rc = cli_fail(2, "logits", "--ids: id %d out of range 0..%d", ids[i], m->cfg.vocab_size - 1); goto done; }
    if ((rc = cli_ctx(&o, m, n, &c)) != 0) goto done;
    lg = (float *)malloc(sizeof(float) * (size_t)n * (size_t)m->cfg.vocab_size);
    if (!lg) { rc = cli_fail(1, "logits", "out of memory for %d x %d logits", n, m->cfg.vocab_size); goto done; }
    if (rh_eval(c, ids, n, lg, 1) != RH_OK) { rc = cli_fail(1, "logits", "%s", rh_ctx_error(c)); goto done; }
    {
        char err[512];
        if (write_f32_file(out, lg, (size_t)n * m->cfg.vocab_size, err, sizeof err) != RH_OK) rc = cli_fail(1, "logits", "%s", err);
    }
done:
    free(lg);
    free(ids);
    rh_ctx_free(c);
    rh_model_close(m);
    return rc;
}

/* Read all of stdin. */
static char *read_stdin(size_t *len) {
    size_t cap = 4096, n = 0, r;
    char *b = (char *)malloc(cap + 1);
    if (!b) return NULL;
    while ((r = fread(b + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = (char *)realloc(b, (cap *= 2) + 1);
            if (!nb) { free(b); return NULL; }
            b = nb;
        }
    }
    b[n] = 0;
    *len = n;
    return b;
}

static int cli_is_model_path(const char *s) {
    struct stat st;
    size_t l = strlen(s);
    if (l >= 4 && strcmp(s + l - 4, ".rhw") == 0) return 1;
    return stat(s, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- tokenize ---- */
static int cmd_tokenize(int argc, char **argv) {
    cli_common o;
    int bos = 0, decode = 0, i, r, rc = 0;
    const char *model = NULL, *text = NULL;
    char *in = NULL;
    size_t len;
    rh_model *m = NULL;
    cli_common_init(&o, "tokenize");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = cli_common_flag(&o, argc, argv, &i)) < 0) return 2;
        if (r) continue;
        if (strcmp(a, "--bos") == 0) bos = 1;
        else if (strcmp(a, "--decode") == 0) decode = 1;
        else if (a[0] == '-' && a[1]) return cli_unknown(&o, a);
        else if (o.n_pos >= 2) return cli_fail(2, "tokenize", "%s: unexpected argument (quote the text)", a);
        else cli_positional(&o, a);
    }
    if (o.help) {
        printf("usage: retrieval_heads tokenize [MODEL] [TEXT | -] [--bos] [--decode]\n"
               "Print the token ids of TEXT (or of stdin, for - or no TEXT) space-separated on one line;\n"
               "no BOS unless --bos.  With --decode, read ids instead and print the bytes they stand for.\n"
               "With one argument, it is MODEL if it ends in .rhw or names a file, else TEXT.\n%s", cli_common_help);
        return 0;
    }
    if (o.n_pos == 2) { model = o.pos[0]; text = o.pos[1]; }
    else if (o.n_pos == 1) {
        if (cli_is_model_path(o.pos[0])) model = o.pos[0];
        else text = o.pos[0];
    }
    if (!text || strcmp(text, "-") == 0) {
        in = read_stdin(&len);
        if (!in) return cli_fail(1, "tokenize", "cannot read stdin");
    } else {
        len = strlen(text);
    }
    if ((r = cli_open(&o, model, &m)) != 0) { free(in); return r; }
    if (decode) {
        int *ids = NULL, n;
        char why[256], err[512], *s = NULL;
        size_t sl;
        if ((n = cli_ids(in ? in : text, &ids, why, sizeof why)) < 0) { rc = cli_fail(2, "tokenize", "--decode: %s", why); goto done; }
        for (i = 0; i < n; i++)
            if (ids[i] >= m->cfg.vocab_size) { free(ids); rc = cli_fail(2, "tokenize", "--decode: id %d out of range 0..%d", ids[i], m->cfg.vocab_size - 1); goto done; }
        if (rh_detokenize(m, ids, n, 0, &s, &sl, err, sizeof err) != RH_OK) { free(ids); rc = cli_fail(1, "tokenize", "%s", err); goto done; }
        fwrite(s, 1, sl, stdout);
        free(s);
        free(ids);
    } else {
        int *ids = NULL, n;
        char err[512];
        if (rh_tokenize(m, in ? in : text, len, bos, &ids, &n, err, sizeof err) != RH_OK) { rc = cli_fail(1, "tokenize", "%s", err); goto done; }
        for (i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
        free(ids);
    }
done:
    free(in);
    rh_model_close(m);
    return rc;
}

/* ---- bench (issue 5): prefill and decode speed on random weights of a named shape ---- */
static int bench_shape(const char *name, rh_config *c) {
    memset(c, 0, sizeof *c);
    c->rope_theta = 10000.0f;
    c->rope_factor = 1.0f;
    c->norm_eps = 1e-5f;
    c->bos_id = 1;
    c->n_eos = 1;
    c->eos_ids[0] = 2;
    if (strcmp(name, "tiny") == 0) {
        c->dim = 256; c->hidden_dim = 768; c->n_layers = 4; c->n_heads = 8; c->n_kv_heads = 4; c->head_dim = 32;
        c->vocab_size = 1024; c->max_ctx = 2048;
    } else if (strcmp(name, "tinyllama-1.1b") == 0) {
        c->dim = 2048; c->hidden_dim = 5632; c->n_layers = 22; c->n_heads = 32; c->n_kv_heads = 4; c->head_dim = 64;
        c->vocab_size = 32000; c->max_ctx = 2048;
    } else if (strcmp(name, "llama-2-7b") == 0) {
        c->dim = 4096; c->hidden_dim = 11008; c->n_layers = 32; c->n_heads = 32; c->n_kv_heads = 32; c->head_dim = 128;
        c->vocab_size = 32000; c->max_ctx = 4096;
    } else {
        return 0;
    }
    return 1;
}

/* Multiply-adds x2 of the weight matmuls per token (logits only for the last). */
static double bench_matmul_flops(const rh_config *c) {
    double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double per_layer = (double)c->dim * (q + 2 * kv) + q * c->dim + 3.0 * c->dim * c->hidden_dim;
    return 2.0 * per_layer * c->n_layers;
}

/* The packed micro-kernel on data that stays in L1, one thread, for ~0.3 s: the practical
 * matmul peak of one core that the prefill figures are compared with. */
static double bench_peak_gflops(void) {
    enum { K = 256 };
    static float xp[K * RH_MR], p[K * RH_NR], y[RH_MR * RH_NR];
    volatile float sink = 0.0f;
    double t0 = rh_now(), t;
    long reps = 0;
    int i;
    for (i = 0; i < K * RH_MR; i++) xp[i] = 1e-3f * (float)(i % 7);
    for (i = 0; i < K * RH_NR; i++) p[i] = 1e-3f * (float)(i % 5);
    do {
        for (i = 0; i < 1000; i++) {
            k_gemm_packed(xp, p, K, y, RH_NR, RH_MR, RH_NR);
            sink += y[i % (RH_MR * RH_NR)];
        }
        reps += 1000;
        t = rh_now() - t0;
    } while (t < 0.3);
    (void)sink;
    return 2.0 * RH_MR * RH_NR * K * (double)reps / t * 1e-9;
}

/* Read bandwidth of the context's threads over 256 MiB of non-zero data (zero pages can be
 * shared by the host and read from cache), best of 3: the decode speed limit. */
typedef struct {
    const float *buf;
    size_t n;
    float sums[256];
} bw_job;
static void bw_task(void *arg, int task, int thread) {
    bw_job *J = (bw_job *)arg;
    size_t per = J->n / 256, i;
    const float *p = J->buf + (size_t)task * per;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    (void)thread;
    for (i = 0; i + 4 <= per; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
    J->sums[task] = s0 + s1 + s2 + s3;
}
static double bench_bandwidth(rh_ctx *c) {
    bw_job J;
    size_t i;
    double best = 0;
    int r;
    J.n = (size_t)64 << 20;
    J.buf = (const float *)malloc(J.n * sizeof(float));
    if (!J.buf) return 0;
    for (i = 0; i < J.n; i++) ((float *)(uintptr_t)J.buf)[i] = (float)(i & 1023);
    for (r = 0; r < 3; r++) {
        double t0 = rh_now(), t;
        pool_run(c->pool, bw_task, &J, 256);
        t = rh_now() - t0;
        if (J.n * sizeof(float) / t > best) best = J.n * sizeof(float) / t;
    }
    free((void *)(uintptr_t)J.buf);
    return best * 1e-9;
}

static int cmd_bench(int argc, char **argv) {
    cli_common o;
    const char *shape = NULL, *plist = "512", *dt_s = NULL;
    long n_dec = 32, plens[16];
    int n_p = 0, i, r, rc = 0;
    rh_dtype dt = RH_F32;
    rh_config cfg;
    rh_model *m = NULL;
    char err[512];
    double peak, wbytes;
    cli_common_init(&o, "bench");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = cli_common_flag(&o, argc, argv, &i)) < 0) return 2;
        if (r) continue;
        if (strcmp(a, "--shape") == 0) { if (!(shape = cli_value(&o, argc, argv, &i))) return 2; }
        else if (strcmp(a, "--dtype") == 0) { if (!(dt_s = cli_value(&o, argc, argv, &i))) return 2; }
        else if (strcmp(a, "-p") == 0) { if (!(plist = cli_value(&o, argc, argv, &i))) return 2; }
        else if (strcmp(a, "-n") == 0) {
            const char *v = cli_value(&o, argc, argv, &i);
            if (!v) return 2;
            if (!cli_int(v, 1, 100000, &n_dec)) return cli_fail(2, "bench", "-n: '%s' is not a token count in 1..100000", v);
        } else if (a[0] == '-' && a[1]) return cli_unknown(&o, a);
        else if (o.n_pos >= 1) return cli_fail(2, "bench", "%s: unexpected argument", a);
        else cli_positional(&o, a);
    }
    if (o.help) {
        printf("usage: retrieval_heads bench [MODEL | --shape tiny|tinyllama-1.1b|llama-2-7b] [--dtype f32|f16|bf16]\n"
               "                            [-p 512,2048] [-n 32]\n"
               "Prefill each prompt length of -p (random tokens), then decode -n tokens greedily, with and\n"
               "without the observe hook.  A --shape model has seeded random weights (default tinyllama-1.1b);\n"
               "--dtype applies to it.  Prints tokens/s, the GFLOPS of the weight matmuls per wall second, as a\n"
               "share of the micro-kernel's in-cache peak times the threads, and per CPU second of all threads\n"
               "(the kernels' efficiency even on a busy machine), and the weight bytes per second of decode.\n%s", cli_common_help);
        return 0;
    }
    if (shape && o.n_pos) return cli_fail(2, "bench", "--shape: give a MODEL or a --shape, not both");
    if (shape && !bench_shape(shape, &cfg)) return cli_fail(2, "bench", "--shape: '%s' is not tiny, tinyllama-1.1b or llama-2-7b", shape);
    if (dt_s) {
        if (strcmp(dt_s, "f32") == 0) dt = RH_F32;
        else if (strcmp(dt_s, "f16") == 0) dt = RH_F16;
        else if (strcmp(dt_s, "bf16") == 0) dt = RH_BF16;
        else return cli_fail(2, "bench", "--dtype: '%s' is not f32, f16 or bf16", dt_s);
        if (o.n_pos) return cli_fail(2, "bench", "--dtype: applies to --shape models only (a file keeps its dtype)");
    }
    {
        const char *s = plist;
        while (*s) {
            char *end;
            long v;
            errno = 0;
            v = strtol(s, &end, 10);
            if (end == s || errno || v < 1 || v > RHW_MAX_CTX || (*end && *end != ',') || n_p == 16)
                return cli_fail(2, "bench", "-p: '%s' is not a comma-separated list of prompt lengths (1..%d, at most 16)", plist, RHW_MAX_CTX);
            plens[n_p++] = v;
            s = *end ? end + 1 : end;
        }
        if (n_p == 0) return cli_fail(2, "bench", "-p: no prompt lengths");
    }
    if (o.n_pos) {
        if ((r = cli_open(&o, o.pos[0], &m)) != 0) return r;
        cfg = m->cfg;
    } else {
        double t0 = rh_now();
        if (!shape) bench_shape(shape = "tinyllama-1.1b", &cfg);
        for (i = 0; i < n_p; i++) if (plens[i] + n_dec > cfg.max_ctx) cfg.max_ctx = (int)(plens[i] + n_dec);
        if (rh_model_random(&cfg, dt, 1, &m, err, sizeof err) != RH_OK) return cli_fail(1, "bench", "%s", err);
        fprintf(stderr, "random %s weights (%s) made in %.1f s\n", shape, dtype_name(dt), rh_now() - t0);
    }
    peak = bench_peak_gflops();
    {
        rh_ctx *bc = NULL;
        rh_ctx_params bp;
        rh_ctx_params_default(&bp);
        bp.n_threads = o.threads;
        bp.n_ctx = 1;
        if (rh_ctx_new(m, &bp, &bc, err, sizeof err) == RH_OK) {
            printf("read bandwidth %.1f GB/s with %d threads\n", bench_bandwidth(bc), bc->n_threads);
            rh_ctx_free(bc);
        }
    }
    /* bytes of weights a decode step reads: every matrix but the embedding (one row of it),
     * which is read whole when it doubles as the output head */
    wbytes = (double)m->size - (m->cfg.tied_embeddings ? 0.0 : (double)m->embed.rows * m->embed.cols * dtype_size(m->embed.dt));
    printf("model %s, %s weights, kv %s, kernels %s; micro-kernel peak %.1f GFLOPS per thread (in L1)\n",
           o.n_pos ? rh_model_path(m) : shape, dtype_name(rh_model_dtype(m)), dtype_name(o.kv), RH_SIMD_NAME, peak);
    printf("%8s %8s %12s %8s %7s %9s %10s %12s %9s %12s %9s\n", "prompt", "threads", "prefill t/s", "GFLOPS", "%peak", "GF/cpu-s",
           "decode n", "decode t/s", "GB/s", "+observe t/s", "overhead");
    for (i = 0; i < n_p; i++) {
        rh_ctx *c = NULL;
        int P = (int)plens[i], k, *ids = (int *)malloc(sizeof(int) * (size_t)P), tok;
        float *lg = (float *)malloc(sizeof(float) * (size_t)cfg.vocab_size);
        int32_t *top1 = (int32_t *)malloc(sizeof(int32_t) * (size_t)cfg.n_layers * cfg.n_heads);
        double t0, tp, td, tdo, fl, cpu;
        uint64_t s = 42;
        rh_observe ob;
        if (!ids || !lg || !top1) { free(ids); free(lg); free(top1); rc = cli_fail(1, "bench", "out of memory"); break; }
        for (k = 0; k < P; k++) ids[k] = (int)(rng_next(&s) % (uint64_t)(cfg.vocab_size < 256 ? cfg.vocab_size : 256));
        if ((rc = cli_ctx(&o, m, P + (int)n_dec, &c)) != 0) { free(ids); free(lg); free(top1); break; }
        t0 = rh_now();
        cpu = rh_cpu_time();
        rh_eval(c, ids, P, lg, 0);
        tp = rh_now() - t0;
        cpu = rh_cpu_time() - cpu;
        /* decode: greedy from the prompt, then the same steps again with observe on */
        t0 = rh_now();
        for (k = 0; k < n_dec; k++) { tok = rh_argmax(lg, cfg.vocab_size); rh_eval(c, &tok, 1, lg, 0); }
        td = rh_now() - t0;
        rh_ctx_rewind(c, P);
        memset(&ob, 0, sizeof ob);
        ob.top1 = top1;
        rh_set_observe(c, &ob);
        t0 = rh_now();
        for (k = 0; k < n_dec; k++) { tok = (int)(rng_next(&s) % 256); rh_eval(c, &tok, 1, lg, 0); }
        tdo = rh_now() - t0;
        fl = bench_matmul_flops(&cfg) * P;
        printf("%8d %8d %12.1f %8.1f %6.1f%% %9.1f %10ld %12.2f %9.1f %12.2f %8.1f%%\n", P, c->n_threads, P / tp, fl / tp * 1e-9,
               100.0 * fl / tp * 1e-9 / (peak * c->n_threads), cpu > 0 ? fl / cpu * 1e-9 : 0.0, n_dec, n_dec / td,
               wbytes * n_dec / td * 1e-9, n_dec / tdo, 100.0 * (tdo - td) / td);
        fflush(stdout);
        rh_ctx_free(c);
        free(ids); free(lg); free(top1);
    }
    rh_model_close(m);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: retrieval_heads <command> [options]   (retrieval_heads %s, kernels %s)\n"
            "Retrieval heads (Wu et al., 2024) on Llama-family models, in one C file.\n"
            "commands:\n"
            "  info      [MODEL]                                  config, metadata, checksum\n"
            "  generate  [MODEL] (-p TEXT | --ids \"1 2 3\") [-n N]  greedy decoding\n"
            "  logits    [MODEL] --ids \"1 2 3\" --out FILE         float32 logits of every position\n"
            "  tokenize  [MODEL] [TEXT | -] [--bos] [--decode]    token ids (or bytes)\n"
            "  bench     [MODEL | --shape NAME] [--dtype D] [-p 512,2048] [-n 32]   speed\n"
#if defined(RH_HAVE_METHOD)
            "  detect    retrieval scores of every head (needle-in-a-haystack)\n"
            "  niah      needle-in-a-haystack grids, with heads masked\n"
            "  report    reports from run records\n"
            "  compare   compare head scores\n"
#endif
            "`retrieval_heads <command> --help` for a command's options.  MODEL defaults to " RH_DEFAULT_MODEL ".\n",
            RH_VERSION, RH_SIMD_NAME);
}

int main(int argc, char **argv) {
    const char *cmd;
    if (argc < 2) { usage(stderr); return 2; }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) { usage(stdout); return 0; }
    if (strcmp(cmd, "--version") == 0) { printf("retrieval_heads %s\n", RH_VERSION); return 0; }
    if (strcmp(cmd, "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0) return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "logits") == 0) return cmd_logits(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0) return cmd_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
#if defined(RH_HAVE_METHOD)
    if (strcmp(cmd, "detect") == 0) return cmd_detect(argc - 1, argv + 1);
    if (strcmp(cmd, "niah") == 0) return cmd_niah(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "compare") == 0) return cmd_compare(argc - 1, argv + 1);
#endif
    return cli_fail(2, cmd, "unknown command (see retrieval_heads --help)");
}
#endif /* RH_NO_MAIN */
