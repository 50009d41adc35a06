/*
 * test/bench_attention.c -- prefill attention alone, timed: the last 512 tokens of an 8192-token
 * prompt attending to the whole cache, one layer of the TinyLlama-1.1B shape (32 query heads, 4
 * KV heads, head_dim 64), f16 KV cache filled with seeded random keys and values.  It runs the
 * engine's own attention task (att_task, compiled in with -DRH_NO_MAIN) 15 times with 1 and with
 * 2 threads and prints the median and best rate in GFLOPS (4 x visible keys x head_dim per query
 * head and token: Q K^T and P V), and a checksum of the output; it fails (exit status 1) when
 * the two thread counts give different checksums.  Then the same prefill (512 tokens) and a decode
 * step at position 8191 with the full cache and under a KV policy (sinks 4, window 64, one of the
 * four KV heads kept full): the median time per call of 15, 1 thread.  `make bench-attention`; no
 * arguments.  Measured figures: the comment at RH_BK and README.md's "Speed".
 */
#define RH_NO_MAIN
#include "../retrieval_heads.c"

static int ba_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t ba_state = 42;
static float ba_uniform(void) { /* [-0.5, 0.5) */
    ba_state = ba_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(ba_state >> 40) / 16777216.0f - 0.5f;
}

/* Median seconds of att_task over n tokens ending at position P - 1 (prefill when n > 1, else a
 * decode step), 1 thread, with the full cache or (policy) sinks 4 + window 64 for KV heads 1..3. */
static double ba_policy(const rh_model *m, int P, int n, int policy) {
    enum { REPS = 15 };
    const rh_config *cf = rh_model_config(m);
    rh_ctx_params p;
    rh_ctx *c = NULL;
    att_job A;
    unsigned char keep[32] = {0};
    char err[256];
    double t[REPS];
    size_t j, qn = (size_t)n * cf->n_heads * cf->head_dim, rows;
    int r;
    rh_ctx_params_default(&p);
    p.n_threads = 1;
    p.n_ctx = P;
    p.kv_dtype = RH_F16;
    if (policy) {
        keep[0] = 1; /* query head 0: KV head 0 full */
        p.kv_window = 64;
        p.kv_sinks = 4;
        p.kv_keep = keep;
    }
    if (rh_ctx_new(m, &p, &c, err, sizeof err) != RH_OK) { fprintf(stderr, "bench_attention: %s\n", err); return -1; }
    ba_state = 7;
    rows = (size_t)(c->kv_bytes / 2 / 2); /* f16 elements of one cache */
    for (j = 0; j < rows; j++) {
        ((uint16_t *)(void *)c->kcache)[j] = k_f32_to_f16(4.0f * ba_uniform());
        ((uint16_t *)(void *)c->vcache)[j] = k_f32_to_f16(ba_uniform());
    }
    for (j = 0; c->kst && j < (size_t)c->chunk * cf->n_kv_heads * cf->head_dim; j++) {
        ((uint16_t *)(void *)c->kst)[j] = k_f32_to_f16(4.0f * ba_uniform());
        ((uint16_t *)(void *)c->vst)[j] = k_f32_to_f16(ba_uniform());
    }
    for (j = 0; j < qn; j++) c->q[j] = 4.0f * ba_uniform();
    A.c = c; A.layer = 0; A.n = n; A.p0 = P - n; A.obs = 0; A.pk = n > 1; A.n_qb = (n + c->qb - 1) / c->qb;
    for (r = 0; r < REPS; r++) {
        double t0 = rh_now();
        pool_run(c->pool, att_task, &A, cf->n_kv_heads * A.n_qb);
        t[r] = rh_now() - t0;
    }
    rh_ctx_free(c);
    qsort(t, REPS, sizeof t[0], ba_cmp);
    return t[REPS / 2];
}

int main(void) {
    enum { P = 8192, N = 512, REPS = 15 };
    rh_config cfg;
    rh_model *m = NULL;
    char err[256];
    int th, i, r;
    double first_cs = 0.0;
    bench_shape("tinyllama-1.1b", &cfg);
    cfg.n_layers = 1; /* attention of layer 0 only; a small vocabulary: no logits are computed */
    cfg.vocab_size = 256;
    cfg.max_ctx = P;
    if (rh_model_random(&cfg, RH_F32, 1, &m, err, sizeof err) != RH_OK) { fprintf(stderr, "bench_attention: %s\n", err); return 1; }
    printf("attention of the last %d tokens of a prompt of %d, TinyLlama-1.1B shape (1 layer), f16 KV, kernels %s\n",
           N, P, RH_SIMD_NAME);
    for (th = 1; th <= 2; th++) {
        rh_ctx_params p;
        rh_ctx *c = NULL;
        att_job A;
        size_t j, kvn = (size_t)cfg.n_kv_heads * P * cfg.head_dim, qn = (size_t)N * cfg.n_heads * cfg.head_dim;
        double fl = 0.0, t[REPS], cs = 0.0;
        rh_ctx_params_default(&p);
        p.n_threads = th; p.n_ctx = P; p.kv_dtype = RH_F16;
        if (rh_ctx_new(m, &p, &c, err, sizeof err) != RH_OK) { fprintf(stderr, "bench_attention: %s\n", err); rh_model_close(m); return 1; }
        ba_state = 42;
        for (j = 0; j < kvn; j++) {
            ((uint16_t *)(void *)c->kcache)[j] = k_f32_to_f16(4.0f * ba_uniform());
            ((uint16_t *)(void *)c->vcache)[j] = k_f32_to_f16(ba_uniform());
        }
        for (j = 0; j < qn; j++) c->q[j] = 4.0f * ba_uniform();
        A.c = c; A.layer = 0; A.n = N; A.p0 = P - N; A.obs = 0; A.pk = 1; A.n_qb = (N + c->qb - 1) / c->qb;
        for (i = 0; i < N; i++) fl += 4.0 * (A.p0 + i + 1) * cfg.head_dim * cfg.n_heads;
        for (r = 0; r < REPS; r++) {
            double t0 = rh_now();
            pool_run(c->pool, att_task, &A, cfg.n_kv_heads * A.n_qb);
            t[r] = rh_now() - t0;
        }
        for (j = 0; j < qn; j++) cs += c->att[j] * (double)(j % 7 + 1);
        qsort(t, REPS, sizeof t[0], ba_cmp);
        printf("threads %d, %d query rows per task: median %.1f GFLOPS, best %.1f (of %d runs); checksum %.9g\n", th,
               c->qb * cfg.n_heads / cfg.n_kv_heads, fl / t[REPS / 2] * 1e-9, fl / t[0] * 1e-9, REPS, cs);
        rh_ctx_free(c);
        if (th == 1) first_cs = cs;
        else if (cs != first_cs) {
            fprintf(stderr, "bench_attention: checksum %.17g with %d threads, %.17g with 1\n", cs, th, first_cs);
            rh_model_close(m);
            return 1;
        }
    }
    {
        double pf = ba_policy(m, P, N, 0), pp = ba_policy(m, P, N, 1), df = ba_policy(m, P, 1, 0), dp = ba_policy(m, P, 1, 1);
        if (pf < 0 || pp < 0 || df < 0 || dp < 0) { rh_model_close(m); return 1; }
        printf("KV policy (sinks 4, window 64, 1 of 4 KV heads full), 1 thread, median of 15:\n"
               "  prefill of the last %d tokens: full cache %.2f ms, policy %.2f ms (%.1fx)\n"
               "  decode step at position %d:    full cache %.1f us, policy %.1f us (%.1fx)\n",
               N, pf * 1e3, pp * 1e3, pf / pp, P - 1, df * 1e6, dp * 1e6, df / dp);
    }
    rh_model_close(m);
    return 0;
}
