/*
 * test/test_engine.c -- engine tests: SIMD kernels against their scalar twins, the .rhw loader
 * against damaged files, thread-count determinism, the observe and mask hooks on their own, and
 * the CLI's flag checking.  (The fast forward pass against the reference pass: test_forward.c;
 * both against PyTorch: test_reference.c.)
 */

/* ---- helpers ---- */

static uint64_t engine_rng = 12345;
static float engine_uniform(void) { return rng_uniform(&engine_rng); }

static int engine_close(double a, double b, double abs_tol, double rel_tol) {
    double d = fabs(a - b);
    return d <= abs_tol || d <= rel_tol * fabs(b);
}

/* ---- kernels: SIMD vs scalar ---- */

static int engine_kernels_dot(void) {
    float a[1031], b[1031];
    uint16_t h[1031], bh[1031];
    int n, i;
    for (i = 0; i < 1031; i++) {
        a[i] = engine_uniform();
        b[i] = engine_uniform();
        h[i] = k_f32_to_f16(b[i]);
        bh[i] = k_f32_to_bf16(b[i]);
    }
    for (n = 0; n <= 1031; n += (n < 70 ? 1 : 37)) {
        double ref = 0, refh = 0, refb = 0;
        for (i = 0; i < n; i++) {
            ref += (double)a[i] * b[i];
            refh += (double)a[i] * k_f16_to_f32(h[i]);
            refb += (double)a[i] * k_bf16_to_f32(bh[i]);
        }
        CHECKF(engine_close(k_dot(a, b, n), ref, 1e-5, 1e-5), "k_dot n=%d: %g vs %g", n, k_dot(a, b, n), ref);
        CHECKF(engine_close(k_dot_scalar(a, b, n), ref, 1e-5, 1e-5), "k_dot_scalar n=%d", n);
        CHECKF(engine_close(k_dot_w(RH_F16, h, a, n), refh, 1e-5, 1e-5), "k_dot_w f16 n=%d", n);
        CHECKF(engine_close(k_dot_w(RH_BF16, bh, a, n), refb, 1e-5, 1e-5), "k_dot_w bf16 n=%d", n);
        CHECKF(engine_close(k_dot_w_scalar(RH_F16, h, a, n), refh, 1e-5, 1e-5), "k_dot_w_scalar f16 n=%d", n);
        CHECKF(engine_close(k_dot_w_scalar(RH_BF16, bh, a, n), refb, 1e-5, 1e-5), "k_dot_w_scalar bf16 n=%d", n);
        /* the in-register f16/bf16 paths have the GEMV order of the f32 path on converted rows */
        {
            float conv[1031];
            k_cvt(RH_F16, h, conv, n);
            CHECKF(k_dot_w(RH_F16, h, a, n) == k_dot_w(RH_F32, conv, a, n), "f16 GEMV differs from f32 on converted rows, n=%d", n);
            k_cvt(RH_BF16, bh, conv, n);
            CHECKF(k_dot_w(RH_BF16, bh, a, n) == k_dot_w(RH_F32, conv, a, n), "bf16 GEMV differs from f32 on converted rows, n=%d", n);
            CHECKF(engine_close(k_dot_w(RH_F32, b, a, n), ref, 1e-5, 1e-5), "k_dot_w f32 n=%d", n);
        }
    }
    return 0;
}

static int engine_kernels_gemm(void) {
    /* n past 2 RH_VL and k of whole vector blocks with and without a tail (24: head_dim 24) */
    static const int ks[] = {1, 8, 16, 20, 24, 39, 58, 64, 77};
    static float X[13 * 77], W[41 * 77], Y[13 * 41], Ys[13 * 41];
    int m, n, k, i, j, q;
    for (i = 0; i < 13 * 77; i++) X[i] = engine_uniform();
    for (i = 0; i < 41 * 77; i++) W[i] = engine_uniform();
    for (m = 1; m <= 13; m += 3)
        for (n = 1; n <= 41; n += n < 11 ? 2 : 5)
            for (q = 0; q < (int)(sizeof ks / sizeof ks[0]); q++) {
                k = ks[q];
                k_gemm_nt(X, 77, W, 77, Y, 41, m, n, k);
                k_gemm_nt_scalar(X, 77, W, 77, Ys, 41, m, n, k);
                for (i = 0; i < m; i++)
                    for (j = 0; j < n; j++) {
                        /* bit-identical to k_dot whichever tile computed the element */
                        CHECKF(Y[i * 41 + j] == k_dot(X + i * 77, W + j * 77, k), "gemm tile vs k_dot m=%d n=%d k=%d (%d,%d)", m, n, k, i, j);
                        CHECKF(engine_close(Y[i * 41 + j], Ys[i * 41 + j], 1e-5, 1e-5), "gemm vs scalar m=%d n=%d k=%d", m, n, k);
                    }
            }
    return 0;
}

/* The packed prefill GEMM: against the scalar twin, and every element the same bits whatever
 * tile (row group, panel width) computed it. */
static int engine_kernels_packed(void) {
    static float X[13 * 77], W[RH_NR * 77], P[RH_NR * 77], Xp[18 * 77], Xp1[RH_MR * 77], Y[13 * RH_NR], Ys[13 * RH_NR], Y1[RH_NR];
    int m, nr, k, i, j, t;
    for (i = 0; i < 13 * 77; i++) X[i] = engine_uniform();
    for (i = 0; i < RH_NR * 77; i++) W[i] = engine_uniform();
    for (m = 1; m <= 13; m += 4)
        for (nr = 1; nr <= RH_NR; nr += nr + 5 <= RH_NR || nr == RH_NR ? 5 : RH_NR - nr) /* ..., RH_NR */
            for (k = 1; k <= 77; k += 19) {
                k_pack_w(RH_F32, W, 77, nr, k, P);
                for (t = 0; t * RH_MR < m; t++) k_pack_x_tile(X, 77, m, k, t, Xp);
                k_gemm_packed(Xp, P, k, Y, RH_NR, m, nr);
                k_gemm_packed_scalar(Xp, P, k, Ys, RH_NR, m, nr);
                for (i = 0; i < m; i++) {
                    k_pack_x_tile(X + (size_t)i * 77, 77, 1, k, 0, Xp1);
                    k_gemm_packed(Xp1, P, k, Y1, RH_NR, 1, nr);
                    for (j = 0; j < nr; j++) {
                        double ref = 0;
                        int p;
                        for (p = 0; p < k; p++) ref += (double)X[i * 77 + p] * W[j * 77 + p];
                        CHECKF(engine_close(Y[i * RH_NR + j], ref, 1e-5, 1e-5), "packed m=%d nr=%d k=%d (%d,%d): %g vs %g", m, nr, k, i, j, Y[i * RH_NR + j], ref);
                        CHECKF(engine_close(Ys[i * RH_NR + j], ref, 1e-5, 1e-5), "packed scalar m=%d nr=%d k=%d", m, nr, k);
                        CHECKF(Y1[j] == Y[i * RH_NR + j], "row %d alone differs from its tile (m=%d nr=%d k=%d)", i, m, nr, k);
                    }
                }
                /* the row-major variant (attention) gives the packed GEMM's bits, fresh and accumulating */
                {
                    static float Yr[13 * RH_NR];
                    int a;
                    for (a = 0; a < 2; a++) {
                        for (i = 0; i < 13 * RH_NR; i++) Yr[i] = a ? Y[i] : 0.0f;
                        k_gemm_rows_acc(X, 77, P, RH_NR, k, Yr, RH_NR, m, nr, a);
                        if (a) k_gemm_packed_acc(Xp, P, RH_NR, k, Y, RH_NR, m, nr, 1);
                        for (i = 0; i < m; i++)
                            for (j = 0; j < nr; j++)
                                CHECKF(Yr[i * RH_NR + j] == Y[i * RH_NR + j], "rows gemm acc=%d m=%d nr=%d k=%d (%d,%d)", a, m, nr, k, i, j);
                    }
                }
                /* the fast pack equals the scalar pack; f16/bf16 packs equal converting first */
                {
                    static float P2[RH_NR * 77], Wc[RH_NR * 77];
                    static uint16_t Wh[RH_NR * 77];
                    int d;
                    k_pack_scalar(W, 77, nr, k, P2);
                    CHECK(memcmp(P, P2, sizeof(float) * (size_t)k * RH_NR) == 0);
                    for (d = 1; d <= 2; d++) {
                        for (i = 0; i < RH_NR * 77; i++) Wh[i] = d == 1 ? k_f32_to_f16(W[i]) : k_f32_to_bf16(W[i]);
                        k_cvt_scalar((rh_dtype)d, Wh, Wc, RH_NR * 77);
                        k_pack_w((rh_dtype)d, Wh, 77, nr, k, P);
                        k_pack_scalar(Wc, 77, nr, k, P2);
                        CHECKF(memcmp(P, P2, sizeof(float) * (size_t)k * RH_NR) == 0, "pack %s nr=%d k=%d", dtype_name((rh_dtype)d), nr, k);
                    }
                    k_pack_w(RH_F32, W, 77, nr, k, P);
                }
            }
    return 0;
}

/* ---- the bf16 dot-product GEMM (VDPBF16PS; the engine's prefill of bf16 weights in RH_BF16DOT
 * builds).  The scalar twin against exact sums, against the f32 GEMM, and the kernel (SIMD where
 * built) against the twin. ---- */

/* gamma_n = n u / (1 - n u), u = 2^-24: recursive f32 summation of n exactly known terms is off
 * by at most gamma_(n-1) sum |terms| (Higham, Accuracy and Stability of Numerical Algorithms,
 * 2nd ed., (4.4)); the twin adds each exact bf16 x bf16 product with one rounding (an FMA). */
static double engine_gamma(int n) {
    double u = ldexp(1.0, -24);
    return n * u / (1.0 - n * u);
}

/* Pair tiles of X (m rows, ld ldx, k) and the pair panel of bf16 rows Wh (nr rows, ld ldw). */
static void engine_bf16_pack(const float *X, int ldx, const uint16_t *Wh, int ldw, int m, int nr, int k, uint32_t *Xp,
                             uint32_t *P) {
    int t;
    for (t = 0; t * RH_MR < m; t++) k_pack_x_tile_bf16pair(X, ldx, m, k, t, Xp);
    k_pack_w_bf16pair(Wh, (size_t)ldw, nr, k, P);
}

/* The bf16 pair panel, word by word against its definition: full panels (nr = RH_NR, which the
 * other bf16 tests' nr steps skip on AVX-512) and partial ones, even and odd k, short and long. */
static int engine_bf16pair_pack(void) {
    enum { K = 77 };
    static const int ks[] = {1, 2, 3, 15, 16, 17, 18, 33, 76, 77};
    static uint16_t Wh[RH_NR * K];
    static uint32_t P[RH_NR * ((K + 1) / 2)];
    int i, ki, nr, q, j;
    for (i = 0; i < RH_NR * K; i++) Wh[i] = (uint16_t)(i * 2654435761u >> 16);
    for (nr = RH_NR; nr >= RH_NR - 1; nr--)
        for (ki = 0; ki < (int)(sizeof ks / sizeof ks[0]); ki++) {
            int k = ks[ki], kq = (k + 1) / 2;
            memset(P, 0xab, sizeof P);
            k_pack_w_bf16pair(Wh, K, nr, k, P);
            for (q = 0; q < kq; q++)
                for (j = 0; j < RH_NR; j++) {
                    uint32_t lo = j < nr ? Wh[j * K + 2 * q] : 0, hi = j < nr && 2 * q + 1 < k ? Wh[j * K + 2 * q + 1] : 0;
                    CHECKF(P[q * RH_NR + j] == (lo | hi << 16), "bf16 pair panel nr=%d k=%d (q %d, row %d)", nr, k, q, j);
                }
        }
    return 0;
}

/* The twin against a double sum of the same bf16-rounded operands, within gamma_k sum|products|;
 * its pair order (high halves first, as the SDM) and DAZ on two constructed cases. */
static int engine_bf16dot_twin(void) {
    enum { K = 301 };
    static const int ks[] = {1, 2, 3, 4, 5, 17, 76, 77, K};
    static float X[13 * K], Y[13 * RH_NR];
    static uint16_t Wh[RH_NR * K];
    static uint32_t Xp[18 * ((K + 1) / 2)], P[RH_NR * ((K + 1) / 2)];
    int m, nr, ki, i, j, p, n = 0;
    double worst = 0;
    for (i = 0; i < 13 * K; i++) X[i] = engine_uniform();
    for (i = 0; i < RH_NR * K; i++) Wh[i] = k_f32_to_bf16(engine_uniform());
    for (m = 1; m <= 13; m += 3)
        for (nr = 1; nr <= RH_NR; nr += 5)
            for (ki = 0; ki < (int)(sizeof ks / sizeof ks[0]); ki++) {
                int k = ks[ki];
                engine_bf16_pack(X, K, Wh, K, m, nr, k, Xp, P);
                k_gemm_bf16dot_scalar(Xp, P, k, Y, RH_NR, m, nr);
                for (i = 0; i < m; i++)
                    for (j = 0; j < nr; j++) {
                        double ref = 0, mag = 0, e;
                        for (p = 0; p < k; p++) {
                            double t = (double)k_bf16_to_f32(k_f32_to_bf16(X[i * K + p])) * k_bf16_to_f32(Wh[j * K + p]);
                            ref += t;
                            mag += fabs(t);
                        }
                        e = fabs(Y[i * RH_NR + j] - ref);
                        CHECKF(e <= engine_gamma(k) * mag, "bf16dot twin m=%d nr=%d k=%d (%d,%d): %.9g vs %.9g (bound %.3g)", m, nr,
                               k, i, j, Y[i * RH_NR + j], ref, engine_gamma(k) * mag);
                        if (mag > 0 && e / mag > worst) worst = e / mag;
                        n++;
                    }
            }
    printf("  twin vs exact sums of the rounded operands: %d elements, max |err| / sum|products| %.2g "
           "(bound gamma_k, %.2g at k = %d)\n", n, worst, engine_gamma(K), K);
    {
        /* order: products (0, 1, 2^-24, 2^-23) at k = 0..3.  High halves first: ((1 + 0) + 2^-23)
         * + 2^-24 = 1 + 1.5 2^-23, a tie, to even: 1 + 2^-22.  In k order it would be 1 + 2^-23. */
        static const float xo[4] = {0.0f, 1.0f, 0x1p-12f, 0x1p-12f}, wo[4] = {0.0f, 1.0f, 0x1p-12f, 0x1p-11f};
        /* DAZ: x = 2^-130 is a bf16 denormal, read as zero: 0 (2^-30 without DAZ), then + 2^-2 */
        static const float xd[4] = {0x1p-130f, 0.0f, 0.25f, 0.0f}, wd[4] = {0x1p100f, 0.0f, 1.0f, 0.0f};
        uint16_t h[2 * 4];
        float yt[2], ys[2];
        for (p = 0; p < 4; p++) { h[p] = k_f32_to_bf16(wo[p]); h[4 + p] = k_f32_to_bf16(wd[p]); }
        CHECK(h[4] != 0 && k_f32_to_bf16(xd[0]) == 0x0008); /* exact, and a denormal */
        engine_bf16_pack(xo, 4, h, 4, 1, 1, 4, Xp, P);
        k_gemm_bf16dot_scalar(Xp, P, 4, yt, 1, 1, 1);
        k_gemm_bf16dot(Xp, P, 4, ys, 1, 1, 1);
        engine_bf16_pack(xd, 4, h + 4, 4, 1, 1, 4, Xp, P);
        k_gemm_bf16dot_scalar(Xp, P, 4, yt + 1, 1, 1, 1);
        k_gemm_bf16dot(Xp, P, 4, ys + 1, 1, 1, 1);
        CHECKF(yt[0] == 1.0f + 0x1p-22f, "twin pair order: %.9g, want 1 + 2^-22", yt[0]);
        CHECKF(yt[1] == 0.25f, "twin DAZ: %.9g, want 0.25", yt[1]);
        /* informational: what this build's kernel (the instruction, where built) does */
        printf("  kernel (%s): pair order %s, denormal input %s\n", RH_SIMD_NAME,
               ys[0] == 1.0f + 0x1p-22f ? "high first (SDM)" : ys[0] == 1.0f + 0x1p-23f ? "k order" : "other",
               ys[1] == 0.25f ? "read as zero (DAZ)" : "kept");
    }
    return 0;
}

/* The twin on bf16-rounded X against the f32 packed GEMM on the unrounded X (the same bf16
 * weights, converted exactly): off by the rounding of X, |x - bf16(x)| <= 2^-8 |x| (8 significand
 * bits, nearest even), plus both sums' f32 rounding: |diff| <= (2^-8 + gamma_k (2 + 2^-8)) S,
 * S = sum |x w|.  And off by more than zero: the rounding happens. */
static int engine_bf16dot_vs_f32(void) {
    enum { K = 301 };
    static const int ks[] = {1, 2, 7, 64, 77, K};
    static float X[13 * K], W[RH_NR * K], P32[RH_NR * K], Xp32[18 * K], Y[13 * RH_NR], Y32[13 * RH_NR];
    static uint16_t Wh[RH_NR * K];
    static uint32_t Xp[18 * ((K + 1) / 2)], P[RH_NR * ((K + 1) / 2)];
    int ki, i, j, p, t, m = 13, nr = RH_NR;
    double worst = 0, sum_rel = 0, maxd = 0;
    long n = 0;
    for (i = 0; i < 13 * K; i++) X[i] = engine_uniform();
    for (i = 0; i < RH_NR * K; i++) { Wh[i] = k_f32_to_bf16(engine_uniform()); W[i] = k_bf16_to_f32(Wh[i]); }
    for (ki = 0; ki < (int)(sizeof ks / sizeof ks[0]); ki++) {
        int k = ks[ki];
        double bound_rel = ldexp(1.0, -8) + engine_gamma(k) * (2.0 + ldexp(1.0, -8));
        engine_bf16_pack(X, K, Wh, K, m, nr, k, Xp, P);
        k_gemm_bf16dot_scalar(Xp, P, k, Y, RH_NR, m, nr);
        for (t = 0; t * RH_MR < m; t++) k_pack_x_tile(X, K, m, k, t, Xp32);
        k_pack_w(RH_F32, W, K, nr, k, P32);
        k_gemm_packed(Xp32, P32, k, Y32, RH_NR, m, nr);
        for (i = 0; i < m; i++)
            for (j = 0; j < nr; j++) {
                double S = 0, d = fabs((double)Y[i * RH_NR + j] - Y32[i * RH_NR + j]);
                for (p = 0; p < k; p++) S += fabs((double)X[i * K + p] * W[j * K + p]);
                CHECKF(d <= bound_rel * S, "bf16dot vs f32 k=%d (%d,%d): %.9g vs %.9g, |diff| %.3g > %.3g", k, i, j,
                       Y[i * RH_NR + j], Y32[i * RH_NR + j], d, bound_rel * S);
                if (d > maxd) maxd = d;
                if (S > 0) {
                    sum_rel += d / S;
                    if (d / S > worst) worst = d / S;
                }
                n++;
            }
    }
    CHECKF(maxd > 0, "bf16dot equals the f32 GEMM on unrounded X everywhere: X was not rounded");
    printf("  twin (bf16 X) vs f32 GEMM (f32 X): |diff| / sum|x w| mean %.2g, max %.2g (bound 2^-8 + 2.004 gamma_k, "
           "%.2g at k = 1)\n", sum_rel / (double)n, worst, ldexp(1.0, -8) + engine_gamma(1) * (2.0 + ldexp(1.0, -8)));
    return 0;
}

/* k_gemm_bf16dot (the VDPBF16PS tile in RH_BF16DOT_SIMD builds, else the twin itself) against the
 * twin: every m = 1..13 and nr = 1..RH_NR, odd and even k, k = 1; within max(1e-5, 2 gamma_k) of
 * sum|products| (any f32 summation order of the exact products is within gamma_k of the exact
 * sum, so two are within 2 gamma_k: 1e-5 holds up to k = 83).  Also: a row alone gives its tile's
 * bits, and nothing outside (m, nr) is written. */
static int engine_bf16dot_kernel(void) {
    enum { K = 301, LDY = RH_NR + 3 };
    static const int ks[] = {1, 2, 3, 8, 33, 77, K};
    static float X[13 * K], Y[14 * LDY], Ys[13 * LDY], Y1[LDY];
    static uint16_t Wh[RH_NR * K];
    static uint32_t Xp[18 * ((K + 1) / 2)], Xp1[RH_MR * ((K + 1) / 2)], P[RH_NR * ((K + 1) / 2)];
    int m, nr, ki, i, j, p;
    long n = 0, same = 0;
    double worst = 0;
    for (i = 0; i < 13 * K; i++) X[i] = engine_uniform();
    for (i = 0; i < RH_NR * K; i++) Wh[i] = k_f32_to_bf16(engine_uniform());
    for (m = 1; m <= 13; m++)
        for (nr = 1; nr <= RH_NR; nr++)
            for (ki = 0; ki < (int)(sizeof ks / sizeof ks[0]); ki++) {
                int k = ks[ki];
                double tol = engine_gamma(k) * 2 > 1e-5 ? engine_gamma(k) * 2 : 1e-5;
                if (k == K && (m % 4 != 1 || nr % 7 != 1)) continue; /* the long k on a few shapes */
                engine_bf16_pack(X, K, Wh, K, m, nr, k, Xp, P);
                for (i = 0; i < 14 * LDY; i++) Y[i] = -7.0f;
                k_gemm_bf16dot(Xp, P, k, Y, LDY, m, nr);
                k_gemm_bf16dot_scalar(Xp, P, k, Ys, LDY, m, nr);
                for (i = 0; i < 14; i++)
                    for (j = 0; j < LDY; j++)
                        if (i >= m || j >= nr) CHECKF(Y[i * LDY + j] == -7.0f, "bf16dot m=%d nr=%d k=%d wrote (%d,%d)", m, nr, k, i, j);
                for (i = 0; i < m; i++) {
                    engine_bf16_pack(X + (size_t)i * K, K, Wh, K, 1, nr, k, Xp1, P);
                    k_gemm_bf16dot(Xp1, P, k, Y1, LDY, 1, nr);
                    for (j = 0; j < nr; j++) {
                        double mag = 0, d = fabs((double)Y[i * LDY + j] - Ys[i * LDY + j]);
                        for (p = 0; p < k; p++)
                            mag += fabs((double)k_bf16_to_f32(k_f32_to_bf16(X[i * K + p])) * k_bf16_to_f32(Wh[j * K + p]));
                        CHECKF(d <= tol * mag, "bf16dot kernel vs twin m=%d nr=%d k=%d (%d,%d): %.9g vs %.9g", m, nr, k, i, j,
                               Y[i * LDY + j], Ys[i * LDY + j]);
                        CHECKF(Y1[j] == Y[i * LDY + j], "bf16dot row %d alone differs from its tile (m=%d nr=%d k=%d)", i, m, nr, k);
                        if (mag > 0 && d / mag > worst) worst = d / mag;
                        same += Y[i * LDY + j] == Ys[i * LDY + j];
                        n++;
                    }
                }
            }
#if !defined(RH_BF16DOT_SIMD)
    CHECKF(same == n, "k_gemm_bf16dot is the twin in this build, yet %ld of %ld differ", n - same, n);
#endif
    printf("  kernel (%s) vs twin: %ld elements, %ld bit-identical, max |diff| / sum|products| %.2g\n", RH_SIMD_NAME, n, same,
           worst);
    return 0;
}

/* matmul (the engine's dispatch): weights of mixed dtypes sharing X, each output the bits of its
 * path (bf16 weights: the dot-product GEMM in RH_BF16DOT builds; others: the f32 packed GEMM),
 * for 1, 2 and 3 threads. */
static int engine_bf16dot_matmul(void) {
    enum { M = 13, K = 77 };
    static const rh_dtype sets[3][3] = {{RH_BF16, RH_F32, RH_BF16}, {RH_F16, RH_BF16, RH_F16}, {RH_BF16, RH_BF16, RH_BF16}};
    static const int rows[3] = {70, 33, 45};
    static float X[M * K], Wf[3][70 * K], Y[3][M * 70], Yw[M * 70], P32[RH_NR * K], Xp32[18 * K];
    static uint16_t Wh[3][70 * K];
#if defined(RH_BF16DOT)
    static uint32_t Xp[18 * ((K + 1) / 2)], P[RH_NR * ((K + 1) / 2)];
#endif
    rh_config cf = t_config();
    rh_model *m = t_random_model(&cf, RH_F32, 2);
    int s, th, wi, i, t, j0;
    CHECK(m != NULL);
    CHECK(K <= cf.hidden_dim && M <= cf.max_ctx); /* within the context's scratch (kmax, chunk) */
    for (i = 0; i < M * K; i++) X[i] = engine_uniform();
    for (s = 0; s < 3; s++) {
        rh_wt w[3];
        for (wi = 0; wi < 3; wi++) {
            rh_dtype dt = sets[s][wi];
            w[wi].dt = dt;
            w[wi].rows = rows[wi];
            w[wi].cols = K;
            for (i = 0; i < rows[wi] * K; i++) {
                float v = engine_uniform();
                Wh[wi][i] = dt == RH_F16 ? k_f32_to_f16(v) : k_f32_to_bf16(v);
                Wf[wi][i] = dt == RH_F32 ? v : dt == RH_F16 ? k_f16_to_f32(Wh[wi][i]) : k_bf16_to_f32(Wh[wi][i]);
            }
            w[wi].p = dt == RH_F32 ? (const void *)Wf[wi] : (const void *)Wh[wi];
        }
        for (th = 1; th <= 3; th++) {
            rh_ctx_params cp;
            rh_ctx *c = NULL;
            char err[256];
            rh_ctx_params_default(&cp);
            cp.n_threads = th;
            cp.n_ctx = 32;
            CHECKF(rh_ctx_new(m, &cp, &c, err, sizeof err) == RH_OK, "%s", err);
            matmul(c, 1, X, M, K, 3, &w[0], Y[0], &w[1], Y[1], &w[2], Y[2]);
            rh_ctx_free(c);
            for (wi = 0; wi < 3; wi++) {
                for (j0 = 0; j0 < rows[wi]; j0 += RH_NR) {
                    int nj = rows[wi] - j0 < RH_NR ? rows[wi] - j0 : RH_NR;
#if defined(RH_BF16DOT)
                    if (sets[s][wi] == RH_BF16) {
                        engine_bf16_pack(X, K, Wh[wi] + (size_t)j0 * K, K, M, nj, K, Xp, P);
                        k_gemm_bf16dot(Xp, P, K, Yw + j0, rows[wi], M, nj);
                        continue;
                    }
#endif
                    for (t = 0; t * RH_MR < M; t++) k_pack_x_tile(X, K, M, K, t, Xp32);
                    k_pack_w(RH_F32, Wf[wi] + (size_t)j0 * K, K, nj, K, P32);
                    k_gemm_packed(Xp32, P32, K, Yw + j0, rows[wi], M, nj);
                }
                CHECKF(memcmp(Yw, Y[wi], sizeof(float) * (size_t)M * rows[wi]) == 0,
                       "matmul weight %d (%s, set %d), %d threads: not the bits of its kernel", wi, dtype_name(sets[s][wi]), s, th);
            }
        }
    }
    rh_model_close(m);
    return 0;
}

static int engine_kernels_misc(void) {
    float x[203], y[203], ys[203], o[40], os[40], V[7 * 40], p[7];
    int n, i;
    for (i = 0; i < 203; i++) x[i] = -20.0f * (engine_uniform() + 1.0f); /* <= 0 */
    for (n = 0; n <= 203; n += 29) {
        float s = k_exp_sum(x, 1.0f, 0.0f, y, n), ss = k_exp_sum_scalar(x, 1.0f, 0.0f, ys, n);
        CHECKF(engine_close(s, ss, 1e-6, 1e-6), "k_exp_sum n=%d %g vs %g", n, s, ss);
        for (i = 0; i < n; i++) CHECKF(engine_close(y[i], ys[i], 1e-30, 3e-7), "exp(%g): %g vs %g", x[i], y[i], ys[i]);
        CHECKF(k_max(x, n) == k_max_scalar(x, n), "k_max n=%d", n);
    }
    {
        /* attention folds its scale into the exp pass: the same bits as scaling first, and the
         * scaled max is the max of the scaled scores */
        float raw[203], sc[203], a = 0.0883883476f; /* 1/sqrt(128), not a power of two */
        for (i = 0; i < 203; i++) { raw[i] = 40.0f * (engine_uniform() - 0.5f); sc[i] = raw[i] * a; }
        for (n = 1; n <= 203; n += 29) {
            /* smx is stored: C99 lets a float product be kept wider (s390x GCC evaluates float
             * arithmetic in double, FLT_EVAL_METHOD 1), an assignment rounds it to float */
            float mx = k_max(sc, n), s1, s2, smx = k_max(raw, n) * a;
            CHECKF(smx == mx, "k_max n=%d: scaled max %g vs max of scaled %g", n, smx, mx);
            s1 = k_exp_sum(raw, a, mx, y, n);
            s2 = k_exp_sum(sc, 1.0f, mx, ys, n);
            CHECKF(s1 == s2 && memcmp(y, ys, sizeof(float) * (size_t)n) == 0, "k_exp_sum n=%d: folded scale %g vs scaled first %g", n, s1, s2);
            s1 = k_exp_sum_scalar(raw, a, mx, y, n);
            s2 = k_exp_sum_scalar(sc, 1.0f, mx, ys, n);
            CHECKF(s1 == s2 && memcmp(y, ys, sizeof(float) * (size_t)n) == 0, "k_exp_sum_scalar n=%d: folded scale", n);
        }
    }
    for (i = 0; i < 203; i++) { x[i] = 30.0f * engine_uniform(); y[i] = ys[i] = x[i]; }
    y[0] = ys[0] = -100.0f; y[1] = ys[1] = 95.0f; y[2] = ys[2] = 0.0f;
    {
        float u[203];
        for (i = 0; i < 203; i++) u[i] = engine_uniform();
        k_silu_mul(y, u, 203);
        k_silu_mul_scalar(ys, u, 203);
        for (i = 0; i < 203; i++) CHECKF(engine_close(y[i], ys[i], 1e-6, 1e-6), "silu %d: %g vs %g", i, y[i], ys[i]);
    }
    for (n = 1; n <= 40; n += 13) {
        for (i = 0; i < 7 * n; i++) V[i] = engine_uniform();
        for (i = 0; i < 7; i++) p[i] = engine_uniform();
        for (i = 0; i < n; i++) o[i] = os[i] = engine_uniform();
        k_pv(p, NULL, V, 7, n, o, NULL);
        k_pv_scalar(p, V, 7, n, os);
        for (i = 0; i < n; i++) CHECKF(engine_close(o[i], os[i], 1e-6, 1e-6), "k_pv d=%d", n);
    }
    /* k_pv's order is k_axpy's row by row, bit for bit, whatever the width's split into whole
     * blocks and a tail (head dims 24, 80, 96, ...); each V exactly nk d floats long, so a tail
     * vector read past the block's end shows under ASan */
    {
        int d, nk;
        for (d = 1; d <= 136; d += (d < 40 ? 1 : 8))
            for (nk = 1; nk <= 7; nk += 3) { /* p holds 7 */
                float *Vx = (float *)malloc(sizeof(float) * (size_t)(nk * d)), *oa = (float *)malloc(sizeof(float) * (size_t)d),
                      *ob = (float *)malloc(sizeof(float) * (size_t)d), *oc = (float *)malloc(sizeof(float) * (size_t)d),
                      *od = (float *)malloc(sizeof(float) * (size_t)d), q2[7];
                CHECK(Vx && oa && ob && oc && od);
                for (i = 0; i < nk * d; i++) Vx[i] = engine_uniform() - 0.5f;
                for (i = 0; i < nk; i++) p[i] = engine_uniform();
                for (i = 0; i < d; i++) oa[i] = ob[i] = engine_uniform();
                k_pv(p, NULL, Vx, nk, d, oa, NULL);
                for (i = 0; i < nk; i++) k_axpy(p[i], Vx + (size_t)i * d, ob, d);
                CHECKF(memcmp(oa, ob, sizeof(float) * (size_t)d) == 0, "k_pv d=%d nk=%d: not k_axpy's bits", d, nk);
                /* two rows side by side: each row's bits as alone */
                for (i = 0; i < d; i++) { oa[i] = ob[i] = engine_uniform(); oc[i] = od[i] = engine_uniform(); }
                for (i = 0; i < nk; i++) q2[i] = engine_uniform();
                k_pv(p, q2, Vx, nk, d, oa, oc);
                for (i = 0; i < nk; i++) {
                    k_axpy(p[i], Vx + (size_t)i * d, ob, d);
                    k_axpy(q2[i], Vx + (size_t)i * d, od, d);
                }
                CHECKF(!memcmp(oa, ob, sizeof(float) * (size_t)d) && !memcmp(oc, od, sizeof(float) * (size_t)d),
                       "k_pv, two rows, d=%d nk=%d: not k_axpy's bits", d, nk);
                free(Vx);
                free(oa);
                free(ob);
                free(oc);
                free(od);
            }
    }
    return 0;
}

static int engine_conversions(void) {
    uint32_t u;
    int i;
    /* f16 -> f32 -> f16 is the identity on every non-NaN half */
    for (u = 0; u < 65536; u++) {
        float f = k_f16_to_f32((uint16_t)u);
        if (isnan(f)) { CHECK(isnan(k_f16_to_f32(k_f32_to_f16(f)))); continue; }
        CHECKF(k_f32_to_f16(f) == u, "f16 round trip 0x%04x -> %g -> 0x%04x", (unsigned)u, f, k_f32_to_f16(f));
        CHECKF(k_f32_to_bf16(k_bf16_to_f32((uint16_t)u)) == u || isnan(k_bf16_to_f32((uint16_t)u)), "bf16 round trip 0x%04x", (unsigned)u);
    }
    /* rounding: ties to even, overflow to inf, subnormals */
    CHECK(k_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(k_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(k_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(k_f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3c00);           /* tie -> even */
    CHECK(k_f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3c02);           /* tie -> even (up) */
    CHECK(k_f32_to_f16(5.9604644775390625e-8f) == 0x0001);          /* smallest subnormal */
    CHECK(k_f32_to_f16(2.98023223876953125e-8f) == 0x0000);         /* half of it: tie -> 0 */
    CHECK(k_f32_to_f16(-3.0e-8f) == 0x8001);
    CHECK(k_f32_to_bf16(1.0f + 1.0f / 256.0f) == 0x3f80);           /* tie -> even */
    CHECK(k_f32_to_bf16(1.0f + 3.0f / 256.0f) == 0x3f82);
#if defined(RH_AVX2) || defined(RH_AVX512)
    /* the scalar f32 -> f16 agrees with the F16C instruction on random bit patterns */
    for (i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)rng_next(&engine_rng);
        float f, g[8];
        uint16_t hw[8];
        memcpy(&f, &bits, 4);
        if (isnan(f)) continue;
        g[0] = f;
        _mm_storeu_si128((__m128i *)(void *)hw, _mm256_cvtps_ph(_mm256_set1_ps(f), _MM_FROUND_TO_NEAREST_INT));
        CHECKF(hw[0] == k_f32_to_f16(f), "f32->f16 of %g (0x%08x): 0x%04x vs F16C 0x%04x", f, (unsigned)bits, k_f32_to_f16(f), hw[0]);
        (void)g;
    }
#else
    (void)i;
#endif
    return 0;
}

/* Run the engine on ids (prefill in chunks of `chunk`, then the last `n_decode` one at a time),
 * returning logits of every token (n, vocab). */
static int engine_run(const rh_model *m, const int *ids, int n, int n_decode, int chunk, int threads, rh_dtype kv,
                      const unsigned char *mask, int mode, float *logits) {
    rh_ctx_params p;
    rh_ctx *c = NULL;
    char err[256];
    int i, rc, pre = n - n_decode;
    rh_ctx_params_default(&p);
    p.n_threads = threads;
    p.prefill_chunk = chunk;
    p.kv_dtype = kv;
    p.n_ctx = n + 3;
    if (rh_ctx_new(m, &p, &c, err, sizeof err) != RH_OK) { fprintf(stderr, "  %s\n", err); return 1; }
    if (mask && rh_set_mask(c, mask, (rh_mask_mode)mode) != RH_OK) { rh_ctx_free(c); return 1; }
    rc = pre > 0 ? rh_eval(c, ids, pre, logits, 1) : RH_OK;
    for (i = pre; rc == RH_OK && i < n; i++) rc = rh_eval(c, ids + i, 1, logits + (size_t)i * m->cfg.vocab_size, 0);
    if (rc != RH_OK) fprintf(stderr, "  rh_eval: %s\n", rh_ctx_error(c));
    rh_ctx_free(c);
    return rc != RH_OK;
}

typedef struct {
    const char *name;
    int heads, kv_heads, head_dim, qkv_bias, tied;
    rh_rope_scaling rope;
} engine_variant;

static const engine_variant engine_variants[] = {
    {"mha", 4, 4, 16, 0, 0, RH_ROPE_NONE},
    {"gqa", 8, 2, 8, 0, 0, RH_ROPE_NONE},
    {"qwen2 bias+tied", 4, 2, 16, 1, 1, RH_ROPE_NONE},
    {"llama3 rope", 4, 1, 32, 0, 0, RH_ROPE_LLAMA3},
    {"linear rope", 2, 2, 24, 0, 1, RH_ROPE_LINEAR},
};

static rh_config engine_variant_config(const engine_variant *v) {
    rh_config c = t_config();
    c.n_heads = v->heads;
    c.n_kv_heads = v->kv_heads;
    c.head_dim = v->head_dim;
    c.qkv_bias = v->qkv_bias;
    c.tied_embeddings = v->tied;
    c.rope_scaling = v->rope;
    if (v->rope == RH_ROPE_LINEAR) c.rope_factor = 4.0f;
    if (v->rope == RH_ROPE_LLAMA3) {
        c.rope_theta = 500000.0f;
        c.rope_factor = 8.0f;
        c.rope_low_freq_factor = 1.0f;
        c.rope_high_freq_factor = 4.0f;
        c.rope_original_max_ctx = 64; /* small so all three llama3 bands occur with head_dim 32 */
    }
    return c;
}

/* llama3 scaling: the three wavelength bands of HF's _compute_llama3_parameters */
static int engine_rope_llama3(void) {
    rh_config c = engine_variant_config(&engine_variants[3]);
    float inv[16];
    int i, n_keep = 0, n_div = 0, n_mid = 0;
    rope_inv_freq(&c, NULL, inv);
    for (i = 0; i < 16; i++) {
        double base = 1.0 / pow(500000.0, 2.0 * i / 32.0), wl = 2 * 3.14159265358979323846 / base;
        double lw = 64.0 / 1.0, hw = 64.0 / 4.0, want;
        if (wl < hw) { want = base; n_keep++; }
        else if (wl > lw) { want = base / 8.0; n_div++; }
        else {
            double sm = (64.0 / wl - 1.0) / (4.0 - 1.0);
            want = (1 - sm) * base / 8.0 + sm * base;
            n_mid++;
        }
        CHECKF(engine_close(inv[i], want, 0, 1e-6), "inv_freq[%d] %g vs %g", i, inv[i], want);
    }
    CHECK(n_keep > 0 && n_div > 0 && n_mid > 0);
    return 0;
}

/* Bit-identical logits for 1, 2 and 3 threads, for prefill and decode, and any chunk size. */
static int engine_threads_deterministic(void) {
    enum { N = 70 };
    rh_config c = engine_variant_config(&engine_variants[1]);
    rh_model *m;
    static float a[N * 300], b[N * 300];
    int ids[N], i, t, dt;
    for (i = 0; i < N; i++) ids[i] = (i * 53 + 7) % 300;
    for (dt = 0; dt < 3; dt++) {
        m = t_random_model(&c, (rh_dtype)dt, 7);
        CHECK(m != NULL);
        CHECK(engine_run(m, ids, N, 4, 32, 1, RH_F32, NULL, 0, a) == 0);
        for (t = 2; t <= 3; t++) {
            CHECK(engine_run(m, ids, N, 4, 32, t, RH_F32, NULL, 0, b) == 0);
            CHECKF(memcmp(a, b, sizeof a) == 0, "%s: logits differ between 1 and %d threads", dtype_name((rh_dtype)dt), t);
        }
        /* key blocks sit at fixed positions, so the chunking does not change a bit either */
        CHECK(engine_run(m, ids, N, 4, 7, 2, RH_F32, NULL, 0, b) == 0);
        CHECKF(memcmp(a, b, sizeof a) == 0, "%s: logits differ between chunk 32 and 7", dtype_name((rh_dtype)dt));
        rh_model_close(m);
    }
    return 0;
}

/* The same bits for any prefill chunk when hidden_dim is not a multiple of the vector width
 * (58: of none of 4, 8, 16): an element's place in a chunk's (tokens, hidden) block must not
 * decide between a kernel's vector body and its scalar tail.  (The reference fixtures' 56 and 72
 * did, on AVX-512 only, in the SwiGLU.) */
static int engine_chunks_odd_hidden(void) {
    enum { N = 29 };
    rh_config c = engine_variant_config(&engine_variants[1]);
    rh_model *m;
    static float a[N * 300], b[N * 300];
    int ids[N], i, chunk;
    c.hidden_dim = 58;
    m = t_random_model(&c, RH_F32, 8);
    CHECK(m != NULL);
    for (i = 0; i < N; i++) ids[i] = (i * 41 + 3) % 300;
    CHECK(engine_run(m, ids, N, 2, 27, 1, RH_F32, NULL, 0, a) == 0);
    for (chunk = 1; chunk <= 4; chunk++) {
        CHECK(engine_run(m, ids, N, 2, chunk, 2, RH_F32, NULL, 0, b) == 0);
        CHECKF(memcmp(a, b, sizeof a) == 0, "hidden_dim 58: logits differ between chunk 27 and %d", chunk);
    }
    rh_model_close(m);
    return 0;
}

/* KV cache in f16/bf16: close to f32 */
static int engine_kv_dtypes(void) {
    enum { N = 40 };
    rh_config c = engine_variant_config(&engine_variants[1]);
    rh_model *m = t_random_model(&c, RH_F32, 3);
    static float a[N * 300], b[N * 300];
    int ids[N], i, kv;
    CHECK(m != NULL);
    for (i = 0; i < N; i++) ids[i] = (i * 31 + 5) % 300;
    CHECK(engine_run(m, ids, N, 3, 16, 2, RH_F32, NULL, 0, a) == 0);
    for (kv = 1; kv <= 2; kv++) {
        double maxd = 0;
        CHECK(engine_run(m, ids, N, 3, 16, 2, (rh_dtype)kv, NULL, 0, b) == 0);
        for (i = 0; i < N * 300; i++) if (fabs(a[i] - b[i]) > maxd) maxd = fabs(a[i] - b[i]);
        CHECKF(maxd < (kv == 1 ? 5e-3 : 3e-2), "kv %s: max abs diff %g", dtype_name((rh_dtype)kv), maxd);
        printf("  KV cache %-4s: max|logit diff| vs an f32 cache %.2g\n", dtype_name((rh_dtype)kv), maxd);
    }
    rh_model_close(m);
    return 0;
}

/* Masks, in prefill and decode: each mode moves the logits, and the masked head's output is what
 * the mode says (uniform: the mean of the values; neg-inf: the token's own value; zero: zero).
 * Against the reference pass in every mode: test_forward.c. */
static int engine_masks(void) {
    enum { N = 30 };
    rh_config c = engine_variant_config(&engine_variants[1]);
    rh_model *m = t_random_model(&c, RH_F32, 11);
    unsigned char mask[2 * 8];
    static float got[N * 300], plain[N * 300];
    int ids[N], i, mode;
    CHECK(m != NULL);
    for (i = 0; i < N; i++) ids[i] = (i * 29 + 3) % 300;
    memset(mask, 0, sizeof mask);
    mask[1] = mask[6] = mask[8 + 3] = mask[8 + 4] = 1;
    CHECK(engine_run(m, ids, N, 0, 300, 1, RH_F32, NULL, 0, plain) == 0);
    for (mode = 0; mode < 3; mode++) {
        double moved = 0;
        CHECK(engine_run(m, ids, N, 4, 8, 2, RH_F32, mask, mode, got) == 0);
        for (i = 0; i < N * 300; i++)
            if (fabs(got[i] - plain[i]) > moved) moved = fabs(got[i] - plain[i]);
        CHECKF(moved > 1e-3, "mask mode %d changes nothing", mode);
        printf("  mask %-7s 4 heads, prefill + decode: moves logits by up to %.2g\n",
               mode == 0 ? "uniform" : mode == 1 ? "neg-inf" : "zero", moved);
    }
    /* uniform: the head's output (last layer, last token) is the mean of its value vectors */
    {
        rh_ctx *cx = NULL;
        rh_ctx_params p;
        char err[256];
        int h, d, j, hd = c.head_dim, g = c.n_heads / c.n_kv_heads, l = c.n_layers - 1;
        rh_ctx_params_default(&p);
        p.n_threads = 2;
        p.n_ctx = 64;
        CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_OK);
        memset(mask, 0, sizeof mask);
        mask[l * c.n_heads + 5] = 1;
        CHECK(rh_eval(cx, ids, N - 1, NULL, 0) == RH_OK);
        CHECK(rh_set_mask(cx, mask, RH_MASK_UNIFORM) == RH_OK);
        CHECK(rh_eval(cx, ids + N - 1, 1, NULL, 0) == RH_OK);
        h = 5;
        for (d = 0; d < hd; d++) {
            double mean = 0;
            const float *vc = (const float *)(const void *)cx->vcache;
            for (j = 0; j < N; j++) mean += vc[(((size_t)l * c.n_kv_heads + h / g) * cx->n_ctx + j) * hd + d];
            mean /= N;
            CHECKF(engine_close(cx->att[h * hd + d], mean, 1e-6, 1e-5), "uniform head output %g vs mean of values %g", cx->att[h * hd + d], mean);
        }
        /* neg-inf: the head's output is the token's own value */
        CHECK(rh_set_mask(cx, mask, RH_MASK_NEG_INF) == RH_OK);
        CHECK(rh_eval(cx, ids, 1, NULL, 0) == RH_OK);
        {
            const float *vc = (const float *)(const void *)cx->vcache;
            for (d = 0; d < hd; d++)
                CHECK(cx->att[h * hd + d] == vc[(((size_t)l * c.n_kv_heads + h / g) * cx->n_ctx + N) * hd + d]);
        }
        CHECK(rh_set_mask(cx, mask, RH_MASK_ZERO) == RH_OK);
        CHECK(rh_eval(cx, ids, 1, NULL, 0) == RH_OK);
        for (d = 0; d < hd; d++) CHECK(cx->att[h * hd + d] == 0.0f);
        CHECK(rh_set_mask(cx, NULL, RH_MASK_UNIFORM) == RH_OK);
        rh_ctx_free(cx);
    }
    rh_model_close(m);
    return 0;
}

/* Observe: top-1, its weight and the rows agree with one another (the first maximum of the row,
 * its entry, a row summing to 1), after a prefill and decode steps; masked heads report what the
 * header says.  Against the reference pass: test_forward.c. */
static int engine_observe(void) {
    enum { N = 150 };
    rh_config c = engine_variant_config(&engine_variants[1]);
    rh_model *m = t_random_model(&c, RH_F32, 21);
    int nht = c.n_layers * c.n_heads, ids[N], i, j, step, mode;
    int32_t top1[16];
    float w1[16];
    static float rows[16 * N];
    rh_observe ob;
    rh_ctx *cx = NULL;
    rh_ctx_params p;
    char err[256];
    unsigned char mask[16];
    CHECK(m != NULL);
    for (i = 0; i < N; i++) ids[i] = (i * 41 + 9) % 300;
    rh_ctx_params_default(&p);
    p.n_threads = 2;
    p.n_ctx = N;
    p.prefill_chunk = 50;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_OK);
    ob.top1 = top1;
    ob.top1_weight = w1;
    ob.rows = rows;
    ob.row_stride = N;
    CHECK(rh_set_observe(cx, &ob) == RH_OK);
    /* prefill (observed: its last token), then decode steps */
    for (step = 0; step < 3; step++) {
        int n = step == 0 ? N - 2 : step == 1 ? N - 1 : N;
        CHECK(rh_eval(cx, step == 0 ? ids : ids + n - 1, step == 0 ? n : 1, NULL, 0) == RH_OK);
        for (i = 0; i < nht; i++) {
            int best = 0;
            double sum = 0;
            const float *r = rows + (size_t)i * N;
            for (j = 0; j < n; j++) {
                if (r[j] > r[best]) best = j;
                sum += r[j];
            }
            CHECKF(top1[i] == best, "step %d head %d: top1 %d, first maximum of its row %d", step, i, top1[i], best);
            CHECKF(w1[i] == r[best], "step %d head %d: top1 weight %g, its row's %g", step, i, w1[i], r[best]);
            CHECKF(engine_close(sum, 1.0, 1e-5, 0), "step %d head %d: the row sums to %.9g", step, i, sum);
        }
    }
    /* masked heads: uniform -> position 0 with weight 1/n; neg-inf -> the token itself */
    memset(mask, 0, sizeof mask);
    mask[2] = mask[9] = 1;
    for (mode = 0; mode < 2; mode++) {
        CHECK(rh_ctx_rewind(cx, N - 1) == RH_OK);
        CHECK(rh_set_mask(cx, mask, (rh_mask_mode)mode) == RH_OK);
        CHECK(rh_eval(cx, ids + N - 1, 1, NULL, 0) == RH_OK);
        CHECK(top1[2] == (mode == 0 ? 0 : N - 1) && top1[9] == top1[2]);
        CHECK(engine_close(w1[2], mode == 0 ? 1.0 / N : 1.0, 1e-7, 1e-5));
        CHECK(engine_close(rows[2 * N + 5], mode == 0 ? 1.0 / N : 0.0, 1e-7, 1e-5));
    }
    /* a too-short row stride is refused before anything runs */
    ob.row_stride = 10;
    CHECK(rh_set_observe(cx, &ob) == RH_OK);
    CHECK(rh_ctx_rewind(cx, 20) == RH_OK);
    CHECK(rh_eval(cx, ids, 1, NULL, 0) == RH_ERANGE);
    CHECK(strstr(rh_ctx_error(cx), "row_stride") != NULL);
    CHECK(rh_set_observe(cx, NULL) == RH_OK);
    rh_ctx_free(cx);
    rh_model_close(m);
    return 0;
}

/* API argument checks */
static int engine_api_errors(void) {
    rh_config c = t_config();
    rh_model *m = t_random_model(&c, RH_F32, 1);
    rh_ctx *cx = NULL;
    rh_ctx_params p;
    char err[256];
    int ids[3] = {1, 2, 3}, bad[2] = {1, 300};
    CHECK(m != NULL);
    rh_ctx_params_default(&p);
    p.n_threads = -1;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_EINVAL && strstr(err, "n_threads"));
    p.n_threads = 1;
    p.kv_dtype = (rh_dtype)7;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_EINVAL && strstr(err, "kv_dtype"));
    p.kv_dtype = RH_F32;
    p.n_ctx = 4;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_OK);
    CHECK(rh_eval(cx, bad, 2, NULL, 0) == RH_EINVAL && strstr(rh_ctx_error(cx), "300"));
    CHECK(rh_eval(cx, ids, 3, NULL, 0) == RH_OK);
    CHECK(rh_eval(cx, ids, 2, NULL, 0) == RH_ERANGE && strstr(rh_ctx_error(cx), "exceed"));
    CHECK(rh_ctx_n_past(cx) == 3);
    CHECK(rh_ctx_rewind(cx, 4) == RH_ERANGE);
    CHECK(rh_set_mask(cx, NULL, (rh_mask_mode)9) == RH_EINVAL);
    rh_ctx_free(cx);
    c.n_kv_heads = 3;
    {
        rh_model *m2 = NULL;
        CHECK(rh_model_random(&c, RH_F32, 1, &m2, err, sizeof err) != RH_OK && strstr(err, "n_kv_heads") && !m2);
    }
    rh_model_close(m);
    CHECK(rh_argmax(NULL, 3) == -1);
    {
        float x[4] = {1, 3, 3, 2};
        CHECK(rh_argmax(x, 4) == 1);
    }
    return 0;
}

/* ---- the loader against damaged files ---- */

/* Position of directory entry i of an image, and its offset field. */
static size_t engine_dir_entry(const unsigned char *img, int i) {
    size_t at = (size_t)rd_u64(img + 152);
    int k;
    for (k = 0; k < i; k++) {
        uint32_t nl = rd_u32(img + at), nd = rd_u32(img + at + 8 + nl);
        at += 4 + nl + 8 + 8 * (size_t)nd + 16;
    }
    return at;
}
static size_t engine_entry_offset_field(const unsigned char *img, size_t e) {
    uint32_t nl = rd_u32(img + e), nd = rd_u32(img + e + 8 + nl);
    return e + 4 + nl + 8 + 8 * (size_t)nd;
}

/* Directory entry of the tensor called name (the image must hold it). */
static size_t engine_dir_find(const unsigned char *img, const char *name) {
    int i, n = (int)rd_u32(img + 168);
    for (i = 0; i < n; i++) {
        size_t e = engine_dir_entry(img, i);
        if (rd_u32(img + e) == strlen(name) && memcmp(img + e + 4, name, strlen(name)) == 0) return e;
    }
    return 0;
}

/* Expect the loader to reject img with a message naming the file and containing what. */
static int engine_expect_bad(const unsigned char *img, size_t n, const char *what, const char *label) {
    rh_model *m = NULL;
    char err[512];
    int rc = rh_model_open_memory(img, n, "bad.rhw", &m, err, sizeof err);
    if (rc == RH_OK) { rh_model_close(m); fprintf(stderr, "  %s: accepted\n", label); return 1; }
    if (strncmp(err, "bad.rhw: ", 9) != 0 || (what && !strstr(err, what))) {
        fprintf(stderr, "  %s: message \"%s\" (wanted \"%s\")\n", label, err, what ? what : "");
        return 1;
    }
    return 0;
}

static int engine_loader_bad_files(void) {
    rh_config c = t_config();
    rh_model *m = t_random_model(&c, RH_F16, 5), *ok = NULL;
    unsigned char *img;
    size_t n, cut, e0, e1;
    char err[512];
    int fails = 0;
    CHECK(m != NULL);
    n = m->size;
    img = (unsigned char *)malloc(n);
    CHECK(img != NULL);
    memcpy(img, m->base, n);
    CHECK(rh_model_open_memory(img, n, "good.rhw", &ok, err, sizeof err) == RH_OK);
    rh_model_close(ok);
    /* truncated at every byte of the header and sections, then in steps through the data */
    for (cut = 0; cut < n; cut += cut < (size_t)rd_u64(img + 176) + 64 ? 1 : 97)
        fails += engine_expect_bad(img, cut, cut < 256 ? "truncated" : "file_size", "truncated");
    /* a file_size field that matches the truncation: sections or tensors then fall outside */
    for (cut = 256; cut < n; cut += 61) {
        unsigned char *t = (unsigned char *)malloc(cut);
        memcpy(t, img, cut);
        wr_u64(t + 192, cut);
        fails += engine_expect_bad(t, cut, NULL, "truncated+patched");
        free(t);
    }
#define MUTATE(stmt, what, label) do { unsigned char *t = (unsigned char *)malloc(n); memcpy(t, img, n); stmt; \
        fails += engine_expect_bad(t, n, what, label); free(t); } while (0)
    MUTATE(t[0] = 'X', "bad magic", "magic");
    MUTATE(wr_u32(t + 4, 4), "version 4", "version");
    MUTATE(wr_u32(t + 200, 4), "reserved header byte 200", "window in version 1");
    MUTATE((wr_u32(t + 4, 2), wr_u32(t + 204, 1)), "window_first_layer", "first window layer without a window");
    MUTATE((wr_u32(t + 4, 2), wr_u32(t + 200, (1u << 24) + 1)), "sliding_window", "window too long");
    MUTATE((wr_u32(t + 4, 2), wr_u32(t + 200, 8), wr_u32(t + 204, 99)), "window_first_layer", "first window layer past the layers");
    MUTATE(wr_u32(t + 8, 128), "header_bytes", "header_bytes");
    MUTATE(t[230] = 1, "reserved", "reserved");
    MUTATE(wr_u32(t + 16, 0xffffffffu), "dim", "absurd dim");
    MUTATE(wr_u32(t + 16, 0), "dim 0", "zero dim");
    MUTATE(wr_u32(t + 24, 5000), "n_layers", "absurd layers");
    MUTATE(wr_u32(t + 40, 1u << 30), "vocab_size", "absurd vocab");
    MUTATE(wr_u32(t + 32, 3), "n_kv_heads", "kv heads");
    MUTATE(wr_u32(t + 36, 15), "head_dim", "odd head_dim");
    MUTATE(wr_u32(t + 52, 7), "rope_scaling", "rope scaling");
    MUTATE(wr_f32(t + 72, -1.0f), "norm_eps", "eps");
    MUTATE(wr_f32(t + 48, NAN), "rope_theta", "theta");
    MUTATE(wr_u32(t + 76, 64), "flag", "flags");
    MUTATE(wr_u32(t + 80, 999), "bos_id", "bos");
    MUTATE(wr_u32(t + 84, 9), "n_eos", "n_eos");
    MUTATE(wr_u32(t + 88, 0x7fffffffu), "eos_ids", "eos id");
    MUTATE(wr_u32(t + 24, 1), "unknown tensor 'model.layers.1.", "fewer layers than tensors");
    MUTATE(wr_u32(t + 24, 3), "missing tensor 'model.layers.2.", "more layers than tensors");
    MUTATE(wr_u32(t + 76, 2), "unexpected tensor 'lm_head.weight'", "tied but lm_head present");
    MUTATE(wr_u32(t + 76, 1), "missing tensor 'model.layers.0.self_attn.q_proj.bias'", "bias flag without biases");
    MUTATE(wr_u32(t + 20, 97), "expected [97, 64]", "hidden_dim vs shapes");
    MUTATE(wr_u64(t + 136, n - 10), "outside the file", "tok offset past end");
    MUTATE(wr_u64(t + 152, (uint64_t)-8), "outside the file", "dir offset overflow");
    MUTATE(wr_u64(t + 144, (uint64_t)1 << 63), "outside the file", "huge tok size");
    MUTATE(wr_u64(t + 136, rd_u64(t + 152)), "overlaps", "tok overlaps dir");
    MUTATE(wr_u64(t + 176, rd_u64(t + 176) + 8), "multiple of 64", "data offset alignment");
    MUTATE(wr_u32(t + 168, rd_u32(t + 168) + 1), "truncated", "n_tensors too many");
    MUTATE(wr_u32(t + 168, rd_u32(t + 168) - 1), "trailing", "n_tensors too few");
    MUTATE(wr_u32(t + 168, 0xffffffffu), "n_tensors", "n_tensors absurd");
    MUTATE(wr_u64(t + 128, 7), "metadata", "meta garbage");
    e0 = engine_dir_entry(img, 0);
    e1 = engine_dir_entry(img, 1);
    MUTATE(wr_u64(t + engine_entry_offset_field(t, e1), rd_u64(t + engine_entry_offset_field(t, e0))), "overlap", "overlapping tensors");
    MUTATE(wr_u64(t + engine_entry_offset_field(t, e1), rd_u64(t + engine_entry_offset_field(t, e0)) + 4), "multiple of 64", "unaligned tensor");
    MUTATE(wr_u64(t + engine_entry_offset_field(t, e1), n), "outside the data region", "tensor past the end");
    MUTATE(wr_u64(t + engine_entry_offset_field(t, e1), (uint64_t)-64), "outside the data region", "tensor offset overflow");
    MUTATE(wr_u64(t + engine_entry_offset_field(t, e0) + 8, 12), "nbytes", "nbytes mismatch");
    MUTATE(wr_u32(t + e0 + 4 + rd_u32(t + e0), 0), "nbytes", "dtype vs nbytes");
    MUTATE(wr_u32(t + e0 + 4 + rd_u32(t + e0), 9), "unknown dtype", "unknown dtype");
    MUTATE(wr_u32(t + e0 + 8 + rd_u32(t + e0), 0), "ndim", "ndim 0");
    MUTATE(wr_u64(t + e0 + 12 + rd_u32(t + e0), 0), "dimension 0 is 0", "zero shape");
    MUTATE(wr_u64(t + e0 + 12 + rd_u32(t + e0), (uint64_t)1 << 39), "nbytes", "huge shape");
    MUTATE(wr_u32(t + e0, 0), "name length", "empty name");
    MUTATE(wr_u32(t + e0, 100000), "name length", "long name");
    MUTATE(t[e0 + 4] = 'X', "unknown tensor 'Xodel", "unknown name");
    MUTATE(t[e0 + 4] = 1, "non-printable", "binary name");
    MUTATE(memcpy(t + e1 + 4, t + e0 + 4, rd_u32(t + e0)), NULL, "renamed tensor");
    /* a shape that disagrees with the config, with a consistent nbytes */
    {
        unsigned char *t = (unsigned char *)malloc(n);
        size_t e;
        memcpy(t, img, n);
        e = engine_dir_find(t, "model.norm.weight");
        CHECK(e != 0);
        wr_u64(t + e + 4 + 17 + 8, 32);
        wr_u64(t + engine_entry_offset_field(t, e) + 8, 32 * 4);
        fails += engine_expect_bad(t, n, "tensor 'model.norm.weight' has shape [32], expected [64]", "shape mismatch");
        free(t);
    }
#undef MUTATE
    free(img);
    rh_model_close(m);
    CHECKF(fails == 0, "%d bad files not rejected as expected", fails);
    /* reading from disk: missing file, directory, tiny file */
    CHECK(rh_model_open(t_tmp("does-not-exist.rhw"), &m, err, sizeof err) == RH_EIO && strstr(err, "does-not-exist.rhw: cannot open"));
    CHECK(rh_model_open(t_tmpdir, &m, err, sizeof err) == RH_EIO && strstr(err, "not a regular file"));
    {
        FILE *f = fopen(t_tmp("tiny.rhw"), "wb");
        CHECK(f != NULL);
        fputs("RHWF", f);
        fclose(f);
        CHECK(rh_model_open(t_tmp("tiny.rhw"), &m, err, sizeof err) == RH_EFORMAT && strstr(err, "tiny.rhw: truncated"));
    }
    return 0;
}

/* Random damage to the header, metadata, tokenizer section and directory: every image is either
 * accepted or refused with a message naming the file; never a crash or an out-of-bounds read
 * (run under `make asan` to see the latter). */
/* A mixture of experts' header fields and tensors, damaged: each refused, naming the problem. */
static int engine_moe_bad_files(void) {
    rh_model *m = NULL;
    char err[512];
    unsigned char *img;
    size_t n, er, ee;
    int fails = 0;
    CHECKF(rh_model_open("test/fixtures/mixtral.rhw", &m, err, sizeof err) == RH_OK, "%s", err);
    CHECK(m->cfg.n_experts == 8 && m->cfg.n_experts_used == 2 && rd_u32((const unsigned char *)m->base + 4) == 3);
    n = m->size;
    img = (unsigned char *)malloc(n);
    CHECK(img != NULL);
    memcpy(img, m->base, n);
    rh_model_close(m);
    er = engine_dir_find(img, "model.layers.1.block_sparse_moe.gate.weight");
    ee = engine_dir_find(img, "model.layers.0.block_sparse_moe.experts.3.w2.weight");
    CHECK(er && ee);
#define MUTATE(stmt, what, label) do { unsigned char *t = (unsigned char *)malloc(n); memcpy(t, img, n); stmt; \
        fails += engine_expect_bad(t, n, what, label); free(t); } while (0)
    MUTATE(wr_u32(t + 216, 257), "n_experts 257 out of range 0..256", "too many experts");
    MUTATE(wr_u32(t + 216, 0xFFFFFFFFu), "n_experts 4294967295 out of range", "n_experts -1");
    MUTATE(wr_u32(t + 220, 9), "n_experts_used 9 (experts per token) must be in 1..n_experts 8", "top-k above the experts");
    MUTATE(wr_u32(t + 220, 0), "n_experts_used 0 (experts per token) must be in 1..n_experts 8", "top-k 0");
    MUTATE(wr_u32(t + 216, 0), "n_experts_used 2 must be 0 without n_experts", "top-k without experts");
    MUTATE((wr_u32(t + 216, 0), wr_u32(t + 220, 0)), "unknown tensor 'model.layers.0.block_sparse_moe.gate.weight'", "a dense header over experts");
    MUTATE(wr_u32(t + 216, 7), "tensor 'model.layers.0.block_sparse_moe.gate.weight' has shape [8, 32], expected [7, 32]", "fewer experts than tensors");
    MUTATE(wr_u32(t + 216, 9), "tensor 'model.layers.0.block_sparse_moe.gate.weight' has shape [8, 32], expected [9, 32]", "more experts than tensors");
    MUTATE(wr_u32(t + 4, 2), "reserved", "expert fields in version 2");
    /* the router with 7 rows (nbytes to match), an expert's down projection transposed */
    MUTATE((wr_u64(t + er + 4 + rd_u32(t + er) + 8, 7), wr_u64(t + engine_entry_offset_field(t, er) + 8, 7 * 32 * 4)),
           "tensor 'model.layers.1.block_sparse_moe.gate.weight' has shape [7, 32], expected [8, 32]", "router rows");
    MUTATE((wr_u64(t + ee + 4 + rd_u32(t + ee) + 8, 40), wr_u64(t + ee + 4 + rd_u32(t + ee) + 16, 32)),
           "tensor 'model.layers.0.block_sparse_moe.experts.3.w2.weight' has shape [40, 32], expected [32, 40]", "expert transposed");
#undef MUTATE
    free(img);
    CHECKF(fails == 0, "%d bad mixture files not rejected as expected", fails);
    return 0;
}

static int engine_loader_fuzz(void) {
    rh_config c = t_config();
    rh_model *m = t_random_model(&c, RH_BF16, 6), *x = NULL;
    unsigned char *img;
    size_t n, meta_end;
    char err[512];
    int it, accepted = 0, refused = 0;
    uint64_t s = 99;
    CHECK(m != NULL);
    n = m->size;
    meta_end = (size_t)rd_u64(m->base + 176); /* the data region starts here */
    img = (unsigned char *)malloc(n);
    CHECK(img != NULL);
    for (it = 0; it < 3000; it++) {
        int k, nflip = 1 + (int)(rng_next(&s) % 4);
        memcpy(img, m->base, n);
        for (k = 0; k < nflip; k++) {
            size_t at = (size_t)(rng_next(&s) % meta_end);
            uint64_t r = rng_next(&s);
            if (r % 3 == 0) img[at] ^= (unsigned char)(1u << (r >> 8) % 8);
            else if (r % 3 == 1) img[at] = (unsigned char)(r >> 16);
            else if (at + 4 <= meta_end) wr_u32(img + at, (uint32_t)(r >> 32) % 4 == 0 ? 0xffffffffu : (uint32_t)(r >> 40));
        }
        err[0] = 0;
        if (rh_model_open_memory(img, n, "fuzz.rhw", &x, err, sizeof err) == RH_OK) {
            rh_ctx *cx = NULL;
            rh_ctx_params p;
            int ids[3] = {0, 1, 2};
            accepted++;
            /* an accepted model must also run */
            rh_ctx_params_default(&p);
            p.n_threads = 1;
            p.n_ctx = 8;
            CHECK(rh_ctx_new(x, &p, &cx, err, sizeof err) == RH_OK);
            CHECK(rh_eval(cx, ids, 3, NULL, 0) == RH_OK);
            rh_ctx_free(cx);
            rh_model_close(x);
        } else {
            refused++;
            CHECKF(strncmp(err, "fuzz.rhw: ", 10) == 0 && strlen(err) > 12, "iteration %d: message \"%s\"", it, err);
        }
    }
    printf("  3000 damaged images: %d refused, %d accepted (damage in ignored bytes)\n", refused, accepted);
    free(img);
    rh_model_close(m);
    return 0;
}

/* The tensors of a loaded model as rh_rhw_write takes them (data in host byte order), in slot
 * order; names: at least 64 x 96 bytes.  The count, or -1 when one is missing. */
static int engine_tensors_of(const rh_model *m, rh_tensor_in *t, char (*names)[96]) {
    const rh_config *c = &m->cfg;
    int n = 0, slot, i;
    for (slot = 0; slot < SLOT_GLOBALS + c->n_layers * layer_slots(c) && n < 64; slot++) {
        uint64_t shape[2];
        int nd = slot_shape(c, slot, shape), found = 0;
        size_t e;
        if (!nd) continue;
        slot_name(c, slot, names[n], 96);
        for (i = 0; i < m->n_tensors; i++) {
            e = engine_dir_entry(m->base, i);
            if (rd_u32(m->base + e) == strlen(names[n]) && memcmp(m->base + e + 4, names[n], strlen(names[n])) == 0) {
                size_t of = engine_entry_offset_field(m->base, e);
                t[n].data = rhw_tensor_host(m, rd_u64(m->base + of));
                t[n].dtype = (rh_dtype)rd_u32(m->base + e + 4 + strlen(names[n]));
                found = 1;
            }
        }
        if (!found) return -1;
        t[n].name = names[n];
        t[n].ndim = nd;
        t[n].shape[0] = (int64_t)shape[0];
        t[n].shape[1] = (int64_t)shape[1];
        n++;
    }
    return n;
}

/* rh_rhw_write: round trip, and refusal of inconsistent tensor sets (missing, extra, shape). */
static int engine_rhw_write(void) {
    rh_config c = t_config();
    rh_model *m = t_random_model(&c, RH_BF16, 9), *back = NULL;
    rh_tensor_in t[64];
    char (*names)[96] = (char (*)[96])calloc(64, 96);
    char err[512], sum1[17], sum2[17];
    const char *meta[] = {"name", "test model", "source", "random", NULL};
    int n;
    size_t tl;
    const char *path = t_tmp("w.rhw");
    CHECK(m != NULL && names != NULL);
    n = engine_tensors_of(m, t, names);
    CHECK(n > 0);
    tl = (size_t)rd_u64(m->base + 144);
    CHECK(rh_rhw_write(path, &c, NULL, m->base + rd_u64(m->base + 136), tl, t, n, err, sizeof err) == RH_OK);
    CHECK(rh_model_open(path, &back, err, sizeof err) == RH_OK);
    rh_model_checksum(m, sum1);
    rh_model_checksum(back, sum2);
    CHECKF(strcmp(sum1, sum2) == 0, "the written file differs from the in-memory image (%s vs %s)", sum1, sum2);
    CHECK(rh_model_meta(back, "name", NULL) == NULL);
    rh_model_close(back);
    CHECK(rh_rhw_write(path, &c, meta, m->base + rd_u64(m->base + 136), tl, t, n, err, sizeof err) == RH_OK);
    CHECK(rh_model_open(path, &back, err, sizeof err) == RH_OK);
    {
        size_t len;
        const char *v = rh_model_meta(back, "name", &len);
        CHECK(v && len == 10 && memcmp(v, "test model", 10) == 0);
        v = rh_model_meta(back, "source", &len);
        CHECK(v && len == 6);
        CHECK(rh_model_meta(back, "nope", &len) == NULL && len == 0);
    }
    rh_model_close(back);
    /* missing tensor: the writer refuses and leaves no file behind */
    CHECK(rh_rhw_write(t_tmp("w2.rhw"), &c, NULL, m->base + rd_u64(m->base + 136), tl, t, n - 1, err, sizeof err) != RH_OK);
    CHECKF(strstr(err, "missing tensor") != NULL, "message: %s", err);
    CHECK(access(t_tmp("w2.rhw"), F_OK) != 0 && access(t_tmp("w2.rhw.tmp"), F_OK) != 0);
    /* unknown, duplicate */
    {
        const char *keep = t[3].name;
        t[3].name = "model.layers.0.self_attn.x_proj.weight";
        CHECK(rh_rhw_write(t_tmp("w2.rhw"), &c, NULL, m->base + rd_u64(m->base + 136), tl, t, n, err, sizeof err) != RH_OK);
        CHECKF(strstr(err, "unknown tensor 'model.layers.0.self_attn.x_proj.weight'") != NULL, "message: %s", err);
        t[3].name = t[2].name;
        CHECK(rh_rhw_write(t_tmp("w2.rhw"), &c, NULL, m->base + rd_u64(m->base + 136), tl, t, n, err, sizeof err) != RH_OK);
        CHECKF(strstr(err, "appears twice") != NULL, "message: %s", err);
        t[3].name = keep;
    }
    /* shape disagreeing with the config */
    t[0].shape[1] = 32;
    CHECK(rh_rhw_write(t_tmp("w2.rhw"), &c, NULL, m->base + rd_u64(m->base + 136), tl, t, n, err, sizeof err) != RH_OK);
    CHECKF(strstr(err, "expected [300, 64]") != NULL, "message: %s", err);
    t[0].shape[1] = 64;
    /* bad metadata key */
    {
        const char *badmeta[] = {"Name", "x", NULL};
        CHECK(rh_rhw_write(t_tmp("w2.rhw"), &c, badmeta, m->base + rd_u64(m->base + 136), tl, t, n, err, sizeof err) == RH_EINVAL);
        CHECK(strstr(err, "metadata key 'Name'") != NULL);
    }
    free(names);
    rh_model_close(m);
    return 0;
}

/* Byte order across hosts (issue 24).  Each host writes, with rh_model_random and rh_rhw_write,
 * a model of each dtype to DIR/<le|be>.<dtype>.rhw and the logits it computes from that file to
 * DIR/<le|be>.<dtype>.logits (u32 LE: 1 when the build prefills bf16 through the bf16 dot
 * product, then f32 LE); where the other byte order's files are already in DIR it checks that
 * its file and the other host's are the same bytes, that the other host's file loads here and
 * gives bit for bit the logits of its own file, and that the other host's logits agree with these
 * to 1e-4 (the hosts round differently: s390x GCC evaluates float arithmetic in double), 1e-2
 * for bf16 where either build rounds the activations to bf16 (RH_BF16DOT).  DIR is $RH_CROSS_DIR (make test-s390x runs s390x, then x86-64, then s390x again: both
 * directions), else a private folder (the round trip on this host alone). */
#if defined(RH_BF16DOT)
static const uint32_t engine_bf16dot = 1;
#else
static const uint32_t engine_bf16dot = 0;
#endif
static int engine_cross_host_rhw(void) {
    static const int ids[] = {1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100};
    const int n_ids = (int)(sizeof ids / sizeof ids[0]);
    const char *dir = getenv("RH_CROSS_DIR"), *me = host_is_le() ? "le" : "be", *other = host_is_le() ? "be" : "le";
    rh_config c = t_config();
    char (*names)[96] = (char (*)[96])calloc(64, 96);
    float *mine = NULL, *theirs = NULL, *back = NULL;
    size_t nl = (size_t)n_ids * (size_t)c.vocab_size;
    int d;
    if (!dir || !*dir) {
        dir = t_tmp("cross");
        t_mkdir(dir);
    }
    mine = (float *)malloc(nl * sizeof(float));
    theirs = (float *)malloc(nl * sizeof(float));
    back = (float *)malloc(nl * sizeof(float));
    CHECK(names && mine && theirs && back);
    c.qkv_bias = 1; /* every kind of tensor: matrices, norms, biases */
    for (d = 0; d < 3; d++) {
        rh_model *m = t_random_model(&c, (rh_dtype)d, 77), *f = NULL, *o = NULL;
        rh_tensor_in t[64];
        char path[600], lpath[600], opath[600], olpath[600], err[512], s1[17], s2[17];
        int n;
        size_t i;
        char *oraw = NULL;
        size_t on = 0;
        double worst = 0, tol = 1e-4;
        CHECK(m != NULL);
        snprintf(path, sizeof path, "%s/%s.%s.rhw", dir, me, dtype_name((rh_dtype)d));
        snprintf(lpath, sizeof lpath, "%s/%s.%s.logits", dir, me, dtype_name((rh_dtype)d));
        snprintf(opath, sizeof opath, "%s/%s.%s.rhw", dir, other, dtype_name((rh_dtype)d));
        snprintf(olpath, sizeof olpath, "%s/%s.%s.logits", dir, other, dtype_name((rh_dtype)d));
        n = engine_tensors_of(m, t, names);
        CHECK(n > 0);
        CHECKF(rh_rhw_write(path, &c, NULL, m->base + rd_u64(m->base + 136), (size_t)rd_u64(m->base + 144), t, n, err,
                            sizeof err) == RH_OK, "%s", err);
        rh_model_close(m);
        CHECKF(rh_model_open(path, &f, err, sizeof err) == RH_OK, "%s", err);
        CHECK(engine_run(f, ids, n_ids, 0, 256, 1, RH_F32, NULL, 0, mine) == 0);
        {
            unsigned char *b = (unsigned char *)malloc(nl * 4 + 4);
            CHECK(b != NULL);
            wr_u32(b, engine_bf16dot);
            for (i = 0; i < nl; i++) wr_f32(b + 4 + 4 * i, mine[i]);
            CHECK(rhm_write_atomic(lpath, (const char *)b, nl * 4 + 4, err, sizeof err) == RH_OK);
            free(b);
        }
        if (access(opath, F_OK) == 0) {
            CHECKF(rh_model_open(opath, &o, err, sizeof err) == RH_OK, "the %s host's file: %s", other, err);
            rh_model_checksum(f, s1);
            rh_model_checksum(o, s2);
            CHECKF(!strcmp(s1, s2), "%s: the %s host wrote other bytes (%s vs %s)", dtype_name((rh_dtype)d), other, s2, s1);
            CHECK(engine_run(o, ids, n_ids, 0, 256, 1, RH_F32, NULL, 0, back) == 0);
            CHECKF(memcmp(back, mine, nl * sizeof(float)) == 0, "%s: the %s host's file gives other logits here",
                   dtype_name((rh_dtype)d), other);
            CHECK(rhm_read_file(olpath, nl * 4 + 4, &oraw, &on, err, sizeof err) == RH_OK && on == nl * 4 + 4);
            if (d == RH_BF16 && (engine_bf16dot || rd_u32((const unsigned char *)oraw))) tol = 1e-2;
            for (i = 0; i < nl; i++) {
                double e;
                theirs[i] = rd_f32((const unsigned char *)oraw + 4 + 4 * i);
                e = fabs((double)theirs[i] - (double)mine[i]);
                if (e > worst) worst = e;
            }
            free(oraw);
            printf("  %s: the %s host's file loads here, same bytes, same logits; its logits within %.1e of these (limit %.0e)\n",
                   dtype_name((rh_dtype)d), other, worst, tol);
            CHECKF(worst <= tol, "%s: logits of the two hosts differ by %g", dtype_name((rh_dtype)d), worst);
            rh_model_close(o);
        }
        rh_model_close(f);
    }
    free(names);
    free(mine);
    free(theirs);
    free(back);
    return 0;
}

/* Paths and replaced files through the OS layer: the folder part of a path ('/' everywhere; on
 * Windows also '\\' and a drive prefix), a model opened by a path in the host's own form (on
 * Windows a drive letter and backslashes, from GetFullPathNameA), a file replaced twice. */
static int engine_paths(void) {
    char path[1024], err[512], *d = NULL;
    size_t n = 0;
    rh_model *m = NULL;
    CHECK(rh_path_dir_len("a/b") == 2 && rh_path_dir_len("b") == 0 && rh_path_dir_len("/x/y/z.json") == 5);
#if defined(_WIN32)
    CHECK(rh_path_dir_len("C:\\out\\scores.json") == 7 && rh_path_dir_len("C:scores.json") == 2 &&
          rh_path_dir_len("out\\a/b") == 6);
    CHECK(GetFullPathNameA("test/fixtures/llama2.rhw", sizeof path, path, NULL) > 0);
    CHECKF(path[1] == ':' && strchr(path, '\\') && !strchr(path, '/'), "%s", path);
#else
    snprintf(path, sizeof path, "test/fixtures/llama2.rhw");
#endif
    CHECKF(rh_model_open(path, &m, err, sizeof err) == RH_OK, "%s", err);
    rh_model_close(m);
#if defined(_WIN32)
    CHECK(GetFullPathNameA(t_tmp("paths.txt"), sizeof path, path, NULL) > 0);
#else
    snprintf(path, sizeof path, "%s", t_tmp("paths.txt"));
#endif
    CHECKF(rhm_write_atomic(path, "old\n", 4, err, sizeof err) == RH_OK, "%s", err);
    CHECKF(rhm_write_atomic(path, "new\n", 4, err, sizeof err) == RH_OK, "replacing %s: %s", path, err);
    CHECK(rhm_read_file(path, 100, &d, &n, err, sizeof err) == RH_OK && n == 4 && !memcmp(d, "new\n", 4));
    free(d);
    strcat(path, ".tmp");
    CHECK(access(path, F_OK) != 0);
    return 0;
}

/* ---- the CLI: bad flags give exit 2 and one line naming the command and flag ---- */
static int engine_cli_flags(void) {
    rh_config c = t_config();
    rh_model *m = t_random_model(&c, RH_F32, 4);
    const char *model;
    char cmd[2048], out[8192];
    int i, rc;
    struct {
        const char *args, *want;
        int code;
    } cases[] = {
        {"generate %s --ids '1 2' -n x", "retrieval_heads: generate: -n: ", 2},
        {"generate %s --ids '1 2' -n -3", "retrieval_heads: generate: -n: ", 2},
        {"generate %s --ids '1 x' -n 3", "retrieval_heads: generate: --ids: ", 2},
        {"generate %s --ids '1 99999' -n 3", "retrieval_heads: generate: --ids: ", 2},
        {"generate %s -n 3", "retrieval_heads: generate: ", 2},
        {"generate %s --ids '1 2' -n 3 -t -1", "retrieval_heads: generate: -t: ", 2},
        {"generate %s --ids '1 2' -n 3 -t 99999", "retrieval_heads: generate: -t: ", 2},
        {"generate %s --ids '1 2' -n 3 --kv f64", "retrieval_heads: generate: --kv: ", 2},
        {"generate %s --ids '1 2' -n 3 --bogus", "retrieval_heads: generate: --bogus: ", 2},
        {"generate %s --ids '1 2' -n", "retrieval_heads: generate: -n: ", 2},
        {"logits %s --ids '1 2'", "retrieval_heads: logits: --out: ", 2},
        {"logits %s --ids '' --out /tmp/x", "retrieval_heads: logits: --ids: ", 2},
        {"tokenize %s --frob", "retrieval_heads: tokenize: --frob: ", 2},
        {"info %s extra", "retrieval_heads: info: ", 2},
        {"bench --shape huge", "retrieval_heads: bench: --shape: ", 2},
        {"bench --shape tiny --dtype f8", "retrieval_heads: bench: --dtype: ", 2},
        {"bench --shape tiny -p 0", "retrieval_heads: bench: -p: ", 2},
        {"bench --shape tiny -p 12,x", "retrieval_heads: bench: -p: ", 2},
        {"frobnicate", "retrieval_heads: frobnicate: unknown command", 2},
        {"info %s.missing", "retrieval_heads: info: ", 2},
    };
    CHECK(m != NULL);
    model = t_write_model(m, "cli.rhw");
    CHECK(model != NULL);
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char args[1024];
        snprintf(args, sizeof args, cases[i].args, model);
        snprintf(cmd, sizeof cmd, "%s %s", t_bin, args);
        rc = t_run(cmd, out, sizeof out);
        CHECKF(rc == cases[i].code, "`%s`: exit %d, expected %d; output: %s", args, rc, cases[i].code, out);
        CHECKF(strncmp(out, cases[i].want, strlen(cases[i].want)) == 0, "`%s`: output \"%s\", expected to start \"%s\"", args, out, cases[i].want);
        CHECKF(strchr(out, '\n') == out + strlen(out) - 1, "`%s`: not one line: %s", args, out);
    }
    /* no MODEL: the default is found beside the program from any directory; a copy of the
     * program with no weights/ beside it gives a clear error, exit 2 */
    if (!strchr(t_bin, ' ')) {
        char cwd[1024], cmd2[3072], bin[1100];
        if (t_bin[0] == '/') snprintf(bin, sizeof bin, "%s", t_bin);
        else if (getcwd(cwd, sizeof cwd)) snprintf(bin, sizeof bin, "%s/%s", cwd, t_bin);
        else bin[0] = 0;
        if (bin[0]) {
            char beside[1200];
            size_t dl = rh_path_dir_len(bin);
            snprintf(beside, sizeof beside, "%.*sweights/demo.rhw", (int)dl, bin);
            snprintf(cmd2, sizeof cmd2, "cd %s && %s info", t_tmpdir, bin);
            rc = t_run(cmd2, out, sizeof out);
            if (dl && access(beside, F_OK) == 0) /* a build in the checkout */
                CHECKF(rc == 0 && strstr(out, "weights/demo.rhw"), "default model from another directory: exit %d: %s", rc, out);
            else /* a build elsewhere (make O=DIR) */
                CHECKF(rc == 2 && strstr(out, "no MODEL given"), "no default model beside %s: exit %d: %s", bin, rc, out);
            snprintf(cmd2, sizeof cmd2, "mkdir -p %s/lonely && cp %s %s/lonely/rh && cd %s && ./lonely/rh info", t_tmpdir, bin,
                     t_tmpdir, t_tmpdir);
            rc = t_run(cmd2, out, sizeof out);
            CHECKF(rc == 2 && strstr(out, "no MODEL given") && strstr(out, "weights/demo.rhw"), "no default model: exit %d: %s",
                   rc, out);
            /* eval finds it as the others do (its task file given by its full path) */
            if (getcwd(cwd, sizeof cwd)) {
                snprintf(cmd2, sizeof cmd2, "cd %s && %s eval --task %s/weights/tasks/passage_qa.jsonl --dry-run -o ev_default", t_tmpdir,
                         bin, cwd);
                rc = t_run(cmd2, out, sizeof out);
                if (dl && access(beside, F_OK) == 0)
                    CHECKF(rc == 0 && strstr(out, "weights/demo.rhw"), "eval: default model from another directory: exit %d: %s", rc, out);
                else
                    CHECKF(rc == 2 && strstr(out, "no MODEL given"), "eval: no default model beside %s: exit %d: %s", bin, rc, out);
                snprintf(cmd2, sizeof cmd2, "cd %s && ./lonely/rh eval --task %s/weights/tasks/passage_qa.jsonl --dry-run", t_tmpdir, cwd);
                rc = t_run(cmd2, out, sizeof out);
                CHECKF(rc == 2 && strstr(out, "eval: no MODEL given"), "eval: no default model: exit %d: %s", rc, out);
            }
        }
    }
    /* --help everywhere, exit 0 */
    {
        static const char *const cmds[] = {"", "info", "generate", "logits", "tokenize", "bench"};
        for (i = 0; i < (int)(sizeof cmds / sizeof cmds[0]); i++) {
            snprintf(cmd, sizeof cmd, "%s %s --help", t_bin, cmds[i]);
            rc = t_run(cmd, out, sizeof out);
            CHECKF(rc == 0 && strstr(out, "usage") != NULL, "`%s --help`: exit %d: %s", cmds[i], rc, out);
        }
    }
    rh_model_close(m);
    return 0;
}

/* The CLI end to end: logits file equals the library's logits; generate --ids-out is greedy. */
static int engine_cli_run(void) {
    rh_config c = t_config();
    rh_model *m = t_random_model(&c, RH_F32, 4);
    const char *model;
    char cmd[2048], out[8192];
    int ids[5] = {5, 17, 200, 3, 99}, i, rc;
    static float want[5 * 300], got[5 * 300];
    FILE *f;
    CHECK(m != NULL);
    model = t_write_model(m, "cli2.rhw");
    CHECK(model != NULL);
    snprintf(cmd, sizeof cmd, "%s logits %s --ids '5 17 200 3 99' --out %s -t 2", t_bin, model, t_tmp("l.bin"));
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0, "logits: exit %d: %s", rc, out);
    f = fopen(t_tmp("l.bin"), "rb");
    CHECK(f != NULL);
    {
        static unsigned char raw[5 * 300 * 4];
        int q;
        CHECK(fread(raw, 4, 5 * 300, f) == 5 * 300);
        for (q = 0; q < 5 * 300; q++) got[q] = rd_f32(raw + 4 * q); /* little-endian on any host */
    }
    CHECK(fgetc(f) == EOF);
    fclose(f);
    CHECK(engine_run(m, ids, 5, 0, 256, 1, RH_F32, NULL, 0, want) == 0);
    CHECK(memcmp(want, got, sizeof want) == 0);
    /* greedy: each generated id is the argmax after the previous */
    snprintf(cmd, sizeof cmd, "%s generate %s --ids '5 17 200' -n 4 --ids-out -t 1 2>/dev/null", t_bin, model);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0, "generate: exit %d: %s", rc, out);
    {
        int seq[8] = {5, 17, 200}, n = 3, tok;
        char *p = out;
        for (i = 0; i < 4; i++) {
            float lg[8 * 300];
            CHECK(engine_run(m, seq, n, 0, 256, 1, RH_F32, NULL, 0, lg) == 0);
            tok = rh_argmax(lg + (size_t)(n - 1) * 300, 300);
            CHECKF(strtol(p, &p, 10) == tok, "generated token %d differs from the argmax %d (output %s)", i, tok, out);
            seq[n++] = tok;
        }
    }
    snprintf(cmd, sizeof cmd, "%s info %s", t_bin, model);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "n_layers") != NULL, "info: %d %s", rc, out);
    /* bench: one row per prompt length; the first row's "vs 1st" is 100 %, the second's is its
     * prefill rate over the first's */
    snprintf(cmd, sizeof cmd, "%s bench --shape tiny -p 16,48 -n 2 -t 1 2>/dev/null", t_bin);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "vs 1st") != NULL, "bench: exit %d: %s", rc, out);
    {
        const char *l1 = strstr(out, "\n      16 "), *l2 = strstr(out, "\n      48 ");
        double r1[7], r2[7];
        CHECKF(l1 && l2, "bench: rows for 16 and 48 tokens missing: %s", out);
        CHECKF(sscanf(l1, " %lf %lf %lf %lf %lf%% %lf %lf%%", &r1[0], &r1[1], &r1[2], &r1[3], &r1[4], &r1[5], &r1[6]) == 7 &&
               sscanf(l2, " %lf %lf %lf %lf %lf%% %lf %lf%%", &r2[0], &r2[1], &r2[2], &r2[3], &r2[4], &r2[5], &r2[6]) == 7,
               "bench: rows not parsed: %s", out);
        CHECKF(r1[6] == 100.0, "bench: first row vs 1st %.1f %%", r1[6]);
        /* the rates are printed to 0.1 tok/s and the share to 0.1 %: the share must lie in the range
         * the printed rates allow (at the few tok/s of an emulated run, rounding alone moves the
         * ratio of the printed rates by up to a point) */
        CHECKF(r1[2] > 0.05 && r2[6] + 0.05 >= 100.0 * (r2[2] - 0.05) / (r1[2] + 0.05) - 1e-9 &&
               r2[6] - 0.05 <= 100.0 * (r2[2] + 0.05) / (r1[2] - 0.05) + 1e-9,
               "bench: vs 1st %.1f %%, rates %.1f / %.1f", r2[6], r2[2], r1[2]);
    }
    rh_model_close(m);
    return 0;
}

static const rh_test_case engine_tests[] = {
    {"engine/kernels_dot", engine_kernels_dot},
    {"engine/kernels_gemm", engine_kernels_gemm},
    {"engine/kernels_packed", engine_kernels_packed},
    {"engine/bf16pair_pack", engine_bf16pair_pack},
    {"engine/bf16dot_twin", engine_bf16dot_twin},
    {"engine/bf16dot_vs_f32", engine_bf16dot_vs_f32},
    {"engine/bf16dot_kernel", engine_bf16dot_kernel},
    {"engine/bf16dot_matmul", engine_bf16dot_matmul},
    {"engine/kernels_misc", engine_kernels_misc},
    {"engine/conversions", engine_conversions},
    {"engine/rope_llama3", engine_rope_llama3},
    {"engine/threads_deterministic", engine_threads_deterministic},
    {"engine/chunks_odd_hidden", engine_chunks_odd_hidden},
    {"engine/kv_dtypes", engine_kv_dtypes},
    {"engine/masks", engine_masks},
    {"engine/observe", engine_observe},
    {"engine/api_errors", engine_api_errors},
    {"engine/loader_bad_files", engine_loader_bad_files},
    {"engine/moe_bad_files", engine_moe_bad_files},
    {"engine/loader_fuzz", engine_loader_fuzz},
    {"engine/rhw_write", engine_rhw_write},
    {"engine/cross_host_rhw", engine_cross_host_rhw},
    {"engine/paths", engine_paths},
    {"engine/cli_flags", engine_cli_flags},
    {"engine/cli_run", engine_cli_run},
    {NULL, NULL}};
