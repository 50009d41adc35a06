/*
 * test/test_kvcache.c -- the KV cache policy (rh_ctx_params.kv_window): KV heads kept full, the
 * rest windowed (attention sinks + a ring of the last W positions).  Included by test_main.c
 * after test_engine.c.
 *
 * What is proved: where sinks + window cover the sequence the logits are the full cache's bit
 * for bit (fast pass and reference pass, prefill and decode, observed); with windows that drop
 * positions the bits do not depend on the thread count or the prefill chunk, the fast pass
 * agrees with the reference pass to float rounding, and a one-layer model's windowed head equals
 * (to rounding) the full cache run on the window's tokens alone (RoPE is relative: an
 * independent check of what a window sees); a windowed head stores S + W slots, counted before
 * and after allocation; rewinds below what a window still holds are refused; bad parameters;
 * a Llama-2-7B shape at 32K tokens whose f16 cache does not fit beside its weights fits with
 * the policy.
 */

static rh_config kvc_config(int heads, int kv_heads, int layers, int max_ctx) {
    rh_config c = t_config();
    c.n_heads = heads;
    c.n_kv_heads = kv_heads;
    c.n_layers = layers;
    c.head_dim = 16;
    c.max_ctx = max_ctx;
    return c;
}

static void kvc_ids(int *ids, int n, int vocab, int seed) {
    int i;
    for (i = 0; i < n; i++) ids[i] = (i * 37 + seed * 11 + (i * i) % 13) % vocab;
}

/* logits (n, vocab) of ids: a prefill of `pre` tokens in one call (logits of every token), then
 * the rest one token at a time; the last step observed into top1 / rows when given. */
static float *kvc_run(const rh_model *m, const rh_ctx_params *p, const int *ids, int n, int pre, int32_t *top1,
                      float *rows) {
    rh_ctx *c = NULL;
    char err[256];
    int V = m->cfg.vocab_size, i, rc = RH_OK;
    float *lg = (float *)calloc((size_t)n * V, sizeof(float));
    if (!lg) return NULL;
    if (rh_ctx_new(m, p, &c, err, sizeof err) != RH_OK) {
        fprintf(stderr, "  rh_ctx_new: %s\n", err);
        free(lg);
        return NULL;
    }
    if (pre > 0) rc = rh_eval(c, ids, pre, lg, 1);
    for (i = pre; rc == RH_OK && i < n; i++) {
        if (i == n - 1 && top1) {
            rh_observe ob;
            memset(&ob, 0, sizeof ob);
            ob.top1 = top1;
            ob.rows = rows;
            ob.row_stride = n;
            rc = rh_set_observe(c, &ob);
            if (rc) break;
        }
        rc = rh_eval(c, ids + i, 1, lg + (size_t)i * V, 0);
    }
    if (rc != RH_OK) {
        fprintf(stderr, "  rh_eval: %s\n", rh_ctx_error(c));
        free(lg);
        lg = NULL;
    }
    rh_ctx_free(c);
    return lg;
}

static double kvc_maxdiff(const float *a, const float *b, size_t n, double *scale) {
    double d = 0, s = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs((double)a[i]) > s) s = fabs((double)a[i]);
    }
    if (scale) *scale = s;
    return d;
}

/* Sinks + window cover the sequence (but not the context: the windowed code runs): the full
 * cache's bits, fast and reference, prefill and decode, and what the observe hook reports. */
static int kvcache_covered(void) {
    static const int shapes[2][2] = {{4, 4}, {8, 2}};
    int si, ref, ids[40], n = 40;
    for (si = 0; si < 2; si++) {
        rh_config cf = kvc_config(shapes[si][0], shapes[si][1], 2, 128);
        rh_model *m = t_random_model(&cf, RH_F32, 31 + si);
        int nlh = cf.n_layers * cf.n_heads;
        unsigned char keep[64];
        CHECK(m != NULL);
        kvc_ids(ids, n, cf.vocab_size, si);
        memset(keep, 0, sizeof keep);
        keep[1] = 1; /* layer 0, head 1: its KV head full, every other windowed */
        for (ref = 0; ref < 2; ref++) {
            rh_ctx_params p, q;
            int32_t t_full[64], t_win[64];
            float *rows_full = (float *)calloc((size_t)nlh * n, sizeof(float));
            float *rows_win = (float *)calloc((size_t)nlh * n, sizeof(float));
            float *a, *b;
            rh_ctx *c = NULL;
            char err[256];
            CHECK(rows_full && rows_win);
            rh_ctx_params_default(&p);
            p.n_threads = 2;
            p.n_ctx = 96;
            p.prefill_chunk = 7;
            p.reference = ref;
            q = p;
            q.kv_window = 36;
            q.kv_sinks = 4; /* 40 positions: exactly covered */
            q.kv_keep = keep;
            CHECK(rh_ctx_new(m, &q, &c, err, sizeof err) == RH_OK);
            CHECK(c->n_windowed == cf.n_layers * cf.n_kv_heads - 1 && rh_ctx_kv_full_heads(c) == 1);
            rh_ctx_free(c);
            a = kvc_run(m, &p, ids, n, 25, t_full, rows_full);
            b = kvc_run(m, &q, ids, n, 25, t_win, rows_win);
            CHECK(a && b);
            CHECKF(memcmp(a, b, sizeof(float) * (size_t)n * cf.vocab_size) == 0,
                   "%d/%d heads, %s: windowed heads covering the sequence give other logits", cf.n_heads, cf.n_kv_heads,
                   ref ? "reference" : "fast");
            CHECK(memcmp(t_full, t_win, sizeof(int32_t) * (size_t)nlh) == 0);
            CHECK(memcmp(rows_full, rows_win, sizeof(float) * (size_t)nlh * n) == 0);
            free(a);
            free(b);
            /* a prefill alone, in chunks that wrap nothing */
            a = kvc_run(m, &p, ids, n, n, NULL, NULL);
            b = kvc_run(m, &q, ids, n, n, NULL, NULL);
            CHECK(a && b && memcmp(a, b, sizeof(float) * (size_t)n * cf.vocab_size) == 0);
            free(a);
            free(b);
            free(rows_full);
            free(rows_win);
        }
        rh_model_close(m);
    }
    printf("  windows covering 40 tokens (context 96): the full cache's logits, top-1 and rows, fast and reference\n");
    return 0;
}

/* Windows that drop positions: the same bits for any thread count and prefill chunk; the fast
 * pass within float rounding of the reference pass; not the full cache's logits (the window
 * acts); the observe hook reports positions of the sequence, weight 0 where a head sees nothing. */
static int kvcache_window(void) {
    static const int shapes[2][2] = {{4, 4}, {8, 2}};
    int si, n = 300, ids[300];
    for (si = 0; si < 2; si++) {
        rh_config cf = kvc_config(shapes[si][0], shapes[si][1], 2, 512);
        rh_model *m = t_random_model(&cf, RH_F32, 41 + si);
        int nlh = cf.n_layers * cf.n_heads, V = cf.vocab_size, k, h;
        size_t N = (size_t)n * V;
        unsigned char keep[64];
        int32_t top1[64], top1r[64];
        float *rows = (float *)calloc((size_t)nlh * n, sizeof(float)), *rowsr = (float *)calloc((size_t)nlh * n, sizeof(float));
        float *base, *x, *full;
        double d, sc;
        rh_ctx_params p;
        CHECK(m != NULL && rows && rowsr);
        kvc_ids(ids, n, V, 7 + si);
        memset(keep, 0, sizeof keep);
        keep[cf.n_heads + 0] = 1; /* layer 1, head 0 */
        rh_ctx_params_default(&p);
        p.n_ctx = 320;
        p.kv_window = 16;
        p.kv_sinks = 2;
        p.kv_keep = keep;
        p.n_threads = 1;
        base = kvc_run(m, &p, ids, n, 280, top1, rows);
        CHECK(base != NULL);
        for (k = 0; k < 3; k++) {
            rh_ctx_params q = p;
            if (k == 0) q.n_threads = 4;
            if (k == 1) { q.n_threads = 3; q.prefill_chunk = 13; }
            if (k == 2) q.prefill_chunk = 300;
            x = kvc_run(m, &q, ids, n, 280, NULL, NULL);
            CHECK(x != NULL);
            CHECKF(memcmp(x, base, sizeof(float) * N) == 0, "variant %d (threads 4 / 3 chunk 13 / chunk 300): other bits", k);
            free(x);
        }
        /* the reference pass */
        p.reference = 1;
        x = kvc_run(m, &p, ids, n, 280, top1r, rowsr);
        p.reference = 0;
        CHECK(x != NULL);
        d = kvc_maxdiff(base, x, N, &sc);
        CHECKF(d <= 2e-5 * (sc > 1 ? sc : 1), "fast vs reference under the policy: max |diff| %g (max |logit| %g)", d, sc);
        free(x);
        /* the full cache differs */
        p.kv_window = 0;
        p.kv_sinks = 0;
        p.kv_keep = NULL;
        full = kvc_run(m, &p, ids, n, 280, NULL, NULL);
        CHECK(full != NULL);
        d = kvc_maxdiff(base + (size_t)100 * V, full + (size_t)100 * V, (size_t)(n - 100) * V, &sc);
        CHECKF(d > 1e-3 * sc, "the windows changed nothing (max |diff| %g)", d);
        /* but positions the windows cover (< S + W) are the full cache's */
        CHECK(memcmp(base, full, sizeof(float) * 18 * V) == 0);
        free(full);
        /* observed: a windowed head's row is 0 outside its sinks and window, its top-1 inside */
        for (h = 0; h < nlh; h++) {
            int l = h / cf.n_heads, kvh = (h % cf.n_heads) / (cf.n_heads / cf.n_kv_heads), j;
            int windowed = !(l == 1 && kvh == 0);
            double sum = 0;
            for (j = 0; j < n; j++) sum += rows[(size_t)h * n + j];
            CHECKF(fabs(sum - 1.0) < 1e-4, "head %d: row sums to %g", h, sum);
            if (!windowed) continue;
            CHECK(top1[h] < 2 || top1[h] >= n - 16);
            for (j = 2; j < n - 16; j++) CHECK(rows[(size_t)h * n + j] == 0.0f && rowsr[(size_t)h * n + j] == 0.0f);
        }
        free(rows);
        free(rowsr);
        free(base);
        rh_model_close(m);
    }
    printf("  sinks 2 + window 16 over 300 tokens: the same bits for 1/3/4 threads and chunks 13/300, within 2e-5 of the reference\n");
    return 0;
}

/* A KV policy on a sliding-window model (Mistral's window in layers 1.. of 2): a windowed KV
 * head of such a layer sees its sinks and ring only inside the layer's window; the fast pass
 * gives the same bits for any threads and chunks and agrees with the reference; a policy whose
 * sinks and window cover the sequence is the sliding-window model's bits; observed rows are 0
 * before the layer's window, sinks included. */
static int kvcache_sliding(void) {
    rh_config cf = kvc_config(8, 2, 2, 512);
    int n = 300, ids[300], nlh, V, k, h, j;
    rh_model *m;
    unsigned char keep[64];
    int32_t top1[64];
    float *rows, *base, *x, *plain;
    double d, sc;
    rh_ctx_params p;
    cf.sliding_window = 40;
    cf.window_first_layer = 1;
    m = t_random_model(&cf, RH_F32, 77);
    CHECK(m != NULL && rh_model_config(m)->sliding_window == 40);
    nlh = cf.n_layers * cf.n_heads;
    V = cf.vocab_size;
    rows = (float *)calloc((size_t)nlh * n, sizeof(float));
    CHECK(rows != NULL);
    kvc_ids(ids, n, V, 19);
    memset(keep, 0, sizeof keep);
    keep[cf.n_heads + 1] = 1; /* layer 1, head 1: KV head 0 of layer 1 full */
    rh_ctx_params_default(&p);
    p.n_ctx = 320;
    p.kv_window = 16;
    p.kv_sinks = 3;
    p.kv_keep = keep;
    p.n_threads = 1;
    base = kvc_run(m, &p, ids, n, 280, top1, rows);
    CHECK(base != NULL);
    for (k = 0; k < 2; k++) {
        rh_ctx_params q = p;
        if (k == 0) q.n_threads = 4;
        else { q.n_threads = 3; q.prefill_chunk = 13; }
        x = kvc_run(m, &q, ids, n, 280, NULL, NULL);
        CHECK(x != NULL);
        CHECKF(memcmp(x, base, sizeof(float) * (size_t)n * V) == 0, "variant %d: other bits", k);
        free(x);
    }
    p.reference = 1;
    x = kvc_run(m, &p, ids, n, 280, NULL, NULL);
    p.reference = 0;
    CHECK(x != NULL);
    d = kvc_maxdiff(base, x, (size_t)n * V, &sc);
    CHECKF(d <= 2e-5 * (sc > 1 ? sc : 1), "fast vs reference: max |diff| %g (max |logit| %g)", d, sc);
    free(x);
    /* observed rows of layer 1 (windowed layer): 0 before pos - 39, the sinks too */
    for (h = cf.n_heads; h < nlh; h++) {
        double sum = 0;
        for (j = 0; j < n; j++) sum += rows[(size_t)h * n + j];
        CHECKF(fabs(sum - 1.0) < 1e-4, "head %d: row sums to %g", h, sum);
        for (j = 0; j < n - 40; j++) CHECKF(rows[(size_t)h * n + j] == 0.0f, "head %d sees position %d", h, j);
        CHECK(top1[h] >= n - 40);
    }
    /* a policy covering the sequence: the plain sliding-window model's bits, fast and reference */
    for (k = 0; k < 2; k++) {
        p.reference = k;
        p.kv_window = 0;
        p.kv_sinks = 0;
        p.kv_keep = NULL;
        plain = kvc_run(m, &p, ids, n, 280, NULL, NULL);
        p.kv_window = 400;
        p.kv_sinks = 3;
        p.kv_keep = keep;
        x = kvc_run(m, &p, ids, n, 280, NULL, NULL);
        CHECK(plain != NULL && x != NULL);
        CHECKF(memcmp(x, plain, sizeof(float) * (size_t)n * V) == 0, "%s: a covering policy changed the bits",
               k ? "reference" : "fast");
        free(x);
        free(plain);
    }
    free(rows);
    free(base);
    rh_model_close(m);
    printf("  sliding window 40 (layer 1) under sinks 3 + window 16: the same bits for 1/3/4 threads and chunk 13,"
           " within 2e-5 of the reference; a covering policy gives the window's bits\n");
    return 0;
}

/* Independent of the engine's own reference: one layer, no sinks, window W.  The layer's keys
 * and values of a token depend on the token alone (and RoPE is relative), so a windowed head at
 * position i sees what a full cache run on tokens i-W+1 .. i alone sees: the logits agree to
 * float rounding (the rotations' angles differ). */
static int kvcache_shift(void) {
    rh_config cf = kvc_config(4, 2, 1, 256);
    rh_model *m;
    rh_ctx_params p, q;
    int ids[120], n = 120, W = 16, i, V;
    float *win, *alone;
    double worst = 0, sc_all = 0;
    cf.rope_theta = 10000.0f;
    m = t_random_model(&cf, RH_F32, 77);
    CHECK(m != NULL);
    V = cf.vocab_size;
    kvc_ids(ids, n, V, 3);
    rh_ctx_params_default(&p);
    p.n_ctx = 128;
    p.n_threads = 1;
    q = p;
    q.kv_window = W; /* no sinks, no head kept: every head windowed */
    win = kvc_run(m, &q, ids, n, 60, NULL, NULL);
    CHECK(win != NULL);
    for (i = W; i < n; i += 13) {
        double d, sc;
        alone = kvc_run(m, &p, ids + i - W + 1, W, i < 60 ? W : 0, NULL, NULL);
        CHECK(alone != NULL);
        d = kvc_maxdiff(alone + (size_t)(W - 1) * V, win + (size_t)i * V, (size_t)V, &sc);
        if (d > worst) worst = d;
        if (sc > sc_all) sc_all = sc;
        free(alone);
    }
    CHECKF(worst < 1e-4 * (sc_all > 1 ? sc_all : 1), "windowed head vs the window's tokens alone: max |diff| %g (max |logit| %g)",
           worst, sc_all);
    free(win);
    rh_model_close(m);
    printf("  one layer, window 16: position i's logits = the full cache on tokens i-15..i alone (max |diff| %.2g)\n", worst);
    return 0;
}

/* A windowed head stores S + W slots: the counts before allocation (rh_ctx_sizes_of) and the
 * context's allocation agree; GQA: a KV head is full when any of its query heads is kept. */
static int kvcache_bytes(void) {
    rh_config cf = kvc_config(8, 2, 2, 256);
    rh_model *m = t_random_model(&cf, RH_F16, 5);
    rh_ctx_params p;
    rh_ctx_sizes z, zf;
    rh_ctx *c = NULL;
    unsigned char keep[16];
    char err[256];
    double hdb = 16.0 * 2; /* head_dim x sizeof(f16) */
    CHECK(m != NULL);
    memset(keep, 0, sizeof keep);
    keep[8 + 5] = 1; /* layer 1, query head 5: KV head 1 (heads 4..7) */
    rh_ctx_params_default(&p);
    p.n_ctx = 200;
    p.kv_dtype = RH_F16;
    p.n_threads = 2;
    CHECK(rh_ctx_sizes_of(m, &p, &zf, err, sizeof err) == RH_OK);
    CHECK(zf.kv_bytes == 2.0 * 4 * 200 * hdb && zf.kv_full_bytes == zf.kv_bytes && zf.kv_heads_full == 4);
    p.kv_window = 16;
    p.kv_sinks = 4;
    p.kv_keep = keep;
    CHECK(rh_ctx_sizes_of(m, &p, &z, err, sizeof err) == RH_OK);
    CHECKF(z.kv_bytes == 2.0 * (3 * 20 + 200) * hdb, "kv_bytes %.0f", z.kv_bytes);
    CHECK(z.kv_full_bytes == zf.kv_bytes && z.kv_heads == 4 && z.kv_heads_full == 1);
    CHECK(z.scratch_bytes > zf.scratch_bytes); /* the staged chunk and the gather blocks */
    CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_OK);
    CHECK(c->kv_slots[0] == 20 && c->kv_slots[1] == 20 && c->kv_slots[2] == 20 && c->kv_slots[3] == 200);
    CHECK(c->kv_off[3] == 60 && rh_ctx_kv_bytes(c) == z.kv_bytes && rh_ctx_kv_full_heads(c) == 1);
    rh_ctx_free(c);
    /* no query head kept: every KV head windowed */
    p.kv_keep = NULL;
    CHECK(rh_ctx_sizes_of(m, &p, &z, err, sizeof err) == RH_OK && z.kv_bytes == 2.0 * 4 * 20 * hdb && z.kv_heads_full == 0);
    /* sinks + window reaching the context: nothing to drop, every head stores n_ctx */
    p.kv_window = 196;
    CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_OK && c->n_windowed == 0 && rh_ctx_kv_bytes(c) == zf.kv_bytes);
    rh_ctx_free(c);
    rh_model_close(m);
    return 0;
}

/* Rewinds: anywhere while the windows hold everything; once they have dropped positions, only
 * to the last position (its token's window is still there), and the logits are the same. */
static int kvcache_rewind(void) {
    rh_config cf = kvc_config(4, 2, 2, 128);
    rh_model *m = t_random_model(&cf, RH_F32, 9);
    rh_ctx_params p;
    rh_ctx *c = NULL;
    char err[256];
    int ids[40], V, ref;
    float *a, *b;
    CHECK(m != NULL);
    V = cf.vocab_size;
    kvc_ids(ids, 40, V, 1);
    a = (float *)malloc(sizeof(float) * (size_t)V);
    b = (float *)malloc(sizeof(float) * (size_t)V);
    CHECK(a && b);
    for (ref = 0; ref < 2; ref++) {
        rh_ctx_params_default(&p);
        p.n_ctx = 64;
        p.kv_window = 8;
        p.kv_sinks = 2;
        p.reference = ref;
        CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_OK);
        CHECK(rh_eval(c, ids, 6, NULL, 0) == RH_OK && rh_ctx_rewind_floor(c) == 0);
        CHECK(rh_ctx_rewind(c, 2) == RH_OK && rh_eval(c, ids + 2, 28, NULL, 0) == RH_OK);
        CHECK(rh_ctx_n_past(c) == 30 && rh_ctx_rewind_floor(c) == 29);
        CHECK(rh_ctx_rewind(c, 20) == RH_ERANGE && strstr(rh_ctx_error(c), "below 29"));
        CHECK(rh_eval(c, ids + 30, 1, a, 0) == RH_OK && rh_ctx_rewind_floor(c) == 30);
        CHECK(rh_ctx_rewind(c, 30) == RH_OK && rh_eval(c, ids + 30, 1, b, 0) == RH_OK);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)V) == 0);
        CHECK(rh_ctx_rewind(c, 30) == RH_OK && rh_ctx_rewind(c, 29) == RH_ERANGE);
        CHECK(rh_ctx_rewind(c, 0) == RH_OK && rh_ctx_rewind_floor(c) == 0);
        { /* the rule a plan applies without a context is the context's, step by step */
            int k;
            for (k = 0; k < 14; k++) {
                CHECK(rh_eval(c, ids + k, 1, NULL, 0) == RH_OK);
                CHECKF(rh_ctx_rewind_floor(c) == rh_kv_rewind_floor(k + 1, 2, 8), "after %d tokens: floor %d, the rule %d",
                       k + 1, rh_ctx_rewind_floor(c), rh_kv_rewind_floor(k + 1, 2, 8));
            }
            CHECK(rh_kv_rewind_floor(10, 2, 8) == 0 && rh_kv_rewind_floor(11, 2, 8) == 10 && rh_kv_rewind_floor(0, 0, 1) == 0);
            CHECK(rh_ctx_rewind(c, 0) == RH_OK);
        }
        CHECK(rh_eval(c, ids, 31, b, 0) == RH_OK);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)V) == 0 || !ref); /* fast: prefill vs decode bits */
        rh_ctx_free(c);
        c = NULL;
    }
    free(a);
    free(b);
    rh_model_close(m);
    return 0;
}

static int kvcache_params(void) {
    rh_config cf = kvc_config(4, 2, 2, 128);
    rh_model *m = t_random_model(&cf, RH_F32, 9);
    rh_ctx_params p;
    rh_ctx *c = NULL;
    rh_ctx_sizes z;
    unsigned char keep[8] = {0};
    char err[256];
    CHECK(m != NULL);
    rh_ctx_params_default(&p);
    CHECK(p.kv_window == 0 && p.kv_sinks == 0 && p.kv_keep == NULL);
    p.kv_window = -1;
    CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_EINVAL && strstr(err, "kv_window -1"));
    CHECK(rh_ctx_sizes_of(m, &p, &z, err, sizeof err) == RH_EINVAL);
    p.kv_window = 4;
    p.kv_sinks = -2;
    CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_EINVAL && strstr(err, "kv_sinks -2"));
    p.kv_window = 0;
    p.kv_sinks = 3;
    CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_EINVAL && strstr(err, "without kv_window"));
    p.kv_sinks = 0;
    p.kv_keep = keep;
    CHECK(rh_ctx_new(m, &p, &c, err, sizeof err) == RH_EINVAL && strstr(err, "kv_keep without kv_window"));
    CHECK(c == NULL);
    rh_model_close(m);
    return 0;
}

/* Llama-2-7B's shape (32 layers, 32 heads, no grouping, head_dim 128, f16 weights of 13.5 GB) at
 * 32K tokens on a 24 GiB machine: the full f16 cache (16 GiB) does not fit beside the weights;
 * with 32 KV heads kept full and the rest windowed (S 4, W 64) it does.  The check's figures,
 * on the shape alone (no weights). */
static int kvcache_llama2_7b(void) {
    rh_model fake;
    rh_ctx_params p;
    rh_ctx_sizes z;
    unsigned char keep[32 * 32];
    char err[512];
    const double gib = 1024.0 * 1024.0 * 1024.0;
    int i;
    memset(&fake, 0, sizeof fake);
    fake.cfg = t_config();
    fake.cfg.dim = 4096;
    fake.cfg.hidden_dim = 11008;
    fake.cfg.n_layers = 32;
    fake.cfg.n_heads = 32;
    fake.cfg.n_kv_heads = 32;
    fake.cfg.head_dim = 128;
    fake.cfg.vocab_size = 32000;
    fake.cfg.max_ctx = 4096;
    fake.size = (size_t)13476839424ull; /* 6.74e9 parameters in f16 */
    rh_ctx_params_default(&p);
    p.n_ctx = 32768;
    p.kv_dtype = RH_F16;
    p.n_threads = 4;
    CHECK(rh_ctx_sizes_of(&fake, &p, &z, err, sizeof err) == RH_OK);
    CHECK(z.kv_bytes == 16.0 * gib && z.kv_heads == 1024 && z.kv_heads_full == 1024);
    z.available_bytes = 24.0 * gib;
    CHECK(ctx_memory_verdict(&z, err, sizeof err) == RH_ENOMEM);
    CHECKF(strstr(err, "needs 16.00 GiB for the KV cache of 32768 tokens") && strstr(err, "24.00 GiB available"), "%s", err);
    memset(keep, 0, sizeof keep);
    for (i = 0; i < 32; i++) keep[(i % 32) * 32 + (i * 7) % 32] = 1; /* one head per layer */
    p.kv_window = 64;
    p.kv_sinks = 4;
    p.kv_keep = keep;
    CHECK(rh_ctx_sizes_of(&fake, &p, &z, err, sizeof err) == RH_OK);
    CHECKF(z.kv_bytes == 2.0 * 2 * 128 * (32.0 * 32768 + 992.0 * 68), "kv_bytes %.0f", z.kv_bytes);
    CHECK(z.kv_heads_full == 32 && z.kv_full_bytes == 16.0 * gib);
    z.available_bytes = 24.0 * gib;
    CHECKF(ctx_memory_verdict(&z, err, sizeof err) == RH_OK, "%s", err);
    printf("  Llama-2-7B shape, 32K tokens, f16: KV %.2f GiB full (refused on 24 GiB), %.3f GiB with 32 of 1024 KV heads "
           "full (accepted)\n",
           16.0, z.kv_bytes / gib);
    return 0;
}


/* Against an independent reference: test/gen_kvcache_reference.py's float64 PyTorch forward pass
 * with each head's sinks-and-window mask, on the fixture models gqa.rhw and llama2.rhw (S 2, W 8,
 * KV head 1 of layer 0 kept full; 40 ids (7 i + 3) % vocab): the fast pass (a prefill of 24, 16
 * decode steps; 1 and 3 threads) and the reference pass within 2e-5 of max |logit|. */
static int kvcache_torch(void) {
    static const char *const names[2] = {"gqa", "llama2"};
    int fi, i, T = 40;
    for (fi = 0; fi < 2; fi++) {
        char path[256], err[512];
        rh_model *m = NULL;
        float *want, *got;
        int V, k, ids[40];
        unsigned char keep[512];
        rh_ctx_params p;
        snprintf(path, sizeof path, "test/fixtures/%s.rhw", names[fi]);
        CHECKF(rh_model_open(path, &m, err, sizeof err) == RH_OK, "%s", err);
        V = m->cfg.vocab_size;
        snprintf(path, sizeof path, "test/fixtures/kvcache_%s.logits.bin", names[fi]);
        want = reference_read_f32(path, (size_t)T * V); /* little-endian on any host */
        CHECKF(want != NULL, "%s: not %d x %d float32 values", path, T, V);
        for (i = 0; i < T; i++) ids[i] = (7 * i + 3) % V;
        memset(keep, 0, sizeof keep);
        keep[1 * (m->cfg.n_heads / m->cfg.n_kv_heads)] = 1; /* layer 0, a query head of KV head 1 */
        rh_ctx_params_default(&p);
        p.n_ctx = 64;
        p.kv_window = 8;
        p.kv_sinks = 2;
        p.kv_keep = keep;
        for (k = 0; k < 3; k++) {
            double d, sc;
            rh_ctx_params q = p;
            q.n_threads = k == 1 ? 3 : 1;
            q.reference = k == 2;
            got = kvc_run(m, &q, ids, T, 24, NULL, NULL);
            CHECK(got != NULL);
            d = kvc_maxdiff(got, want, (size_t)T * V, &sc);
            CHECKF(d <= 2e-5 * sc, "%s, %s: max |diff| %g against PyTorch (max |logit| %g)", names[fi],
                   k == 2 ? "reference" : "fast", d, sc);
            if (k == 0) printf("  %-7s fast pass vs PyTorch, sinks 2 + window 8: max |diff| %.2g (max |logit| %.1f)\n", names[fi], d, sc);
            free(got);
        }
        /* the window matters: the full cache is far from it */
        p.kv_window = p.kv_sinks = 0;
        p.kv_keep = NULL;
        got = kvc_run(m, &p, ids, T, 24, NULL, NULL);
        CHECK(got != NULL && kvc_maxdiff(got, want, (size_t)T * V, NULL) > 1e-2);
        free(got);
        free(want);
        rh_model_close(m);
    }
    return 0;
}

#if defined(RH_TEST_METHOD) && defined(RH_TEST_CLI) /* the known-answer model and files (test_method.c), cli_t_task */
/* Through the binary: each bad combination is one line naming the flag, exit 2. */
static int kvcache_cli_bad(void) {
    const char *mp, *hp, *np;
    char sp[600], sp2[600], cmd[4096], out[8192];
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"--kv-keep-top 99 --scores SP", "--kv-keep-top: K = 99 is more than the"},
        {"--kv-keep-random 99 --scores SP", "--kv-keep-random: K = 99 is more than the"},
        {"--kv-keep-top 1", "--kv-keep-top needs --scores FILE"},
        {"--kv-keep-top 1 --kv-keep-heads 0-0 --scores SP", "--kv-keep-top, --kv-keep-random and --kv-keep-heads exclude one another"},
        {"--kv-keep-heads 9-0", "--kv-keep-heads"},
        {"--kv-keep-top 1 --scores SP2", "outside the model"},
        {"--kv-window 0", "--kv-window"},
        {"--kv-window -3", "--kv-window"},
        {"--kv-sinks -1 --kv-window 8", "--kv-sinks"},
        {"--kv-sinks 2", "--kv-sinks needs a KV policy"},
        {"--kv-keep-top 0 --scores SP", "--kv-keep-top"},
        {"--scores SP", "--scores is used only with"},
        {"--kv-window 8 --seed 3", "--seed is used only with"},
    };
    static const char *const cmds[] = {"generate", "logits", "niah", "eval", "info", "detect"};
    int i, j, rc, n = 0;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    snprintf(sp, sizeof sp, "%s", t_tmp("kvc_scores.json"));
    snprintf(sp2, sizeof sp2, "%s", t_tmp("kvc_scores_other.json"));
    CHECK(method_write(sp, "{\"0-0\": [0.5], \"0-1\": [0]}") == 0);
    CHECK(method_write(sp2, "{\"0-0\": [0.5], \"7-9\": [0.2]}") == 0);
    for (j = 0; j < 6; j++)
        for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
            char args[1400], base[2048];
            const char *a = bad[i].args, *q;
            size_t k = 0;
            while (*a && k < sizeof args - 610) { /* SP / SP2: the score files */
                if (!strncmp(a, "SP2", 3)) { k += (size_t)snprintf(args + k, sizeof args - k, "%s", sp2); a += 3; }
                else if (!strncmp(a, "SP", 2)) { k += (size_t)snprintf(args + k, sizeof args - k, "%s", sp); a += 2; }
                else args[k++] = *a++;
            }
            args[k] = 0;
            if (j == 5 && strstr(args, "--seed") && !strstr(args, "random")) continue; /* detect: no mask flags */
            if (j == 0) snprintf(base, sizeof base, "%s generate %s --ids '1 2 3' -n 2", t_bin, mp);
            else if (j == 1) snprintf(base, sizeof base, "%s logits %s --ids '1 2 3' --out %s", t_bin, mp, t_tmp("kvc_l.bin"));
            else if (j == 2 || j == 5)
                snprintf(base, sizeof base, "%s %s %s --haystack %s --needles %s --lengths 300 --depths 50 --buffer 20 "
                                            "--template '{context} {question}' --fresh -o %s",
                         t_bin, cmds[j], mp, hp, np, t_tmp(j == 2 ? "kvc_n" : "kvc_d.json"));
            else if (j == 3) snprintf(base, sizeof base, "%s eval %s --task %s --max-new 2 -o %s", t_bin, mp, cli_t_task(), t_tmp("kvc_e"));
            else snprintf(base, sizeof base, "%s info %s", t_bin, mp);
            snprintf(cmd, sizeof cmd, "%s %s", base, args);
            rc = t_run(cmd, out, sizeof out);
            q = strchr(out, '\n');
            CHECKF(rc == 2, "`%s`: exit %d, want 2\n%s", cmd, rc, out);
            CHECKF(strstr(out, bad[i].want) != NULL, "`%s`: the message lacks \"%s\": %s", cmd, bad[i].want, out);
            CHECKF(!strncmp(out, "retrieval_heads: ", 17) && q && q[1] == 0, "`%s`: not one line: %s", cmd, out);
            n++;
        }
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s --kv-sweep 8 --kv-window 8 --kv-keep-top 1 --scores %s",
             t_bin, mp, hp, np, sp);
    CHECK(t_run(cmd, out, sizeof out) == 2 && strstr(out, "--kv-sweep: needs --kv-keep-top"));
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s --kv-sweep 8,x --kv-keep-top 1 --scores %s", t_bin, mp,
             hp, np, sp);
    CHECK(t_run(cmd, out, sizeof out) == 2 && strstr(out, "--kv-sweep"));
    printf("  %d bad KV policy flags over generate, logits, niah, eval, info, detect: exit 2, one line naming the flag\n", n);
    return 0;
}

/* Through the binary: logits and generate under a policy whose windows cover the prompt are the
 * full cache's bytes, and differ where they do not; niah records the policy and the KV bytes in
 * its run record, and its records are the same with prefix reuse as without (reuse falls back to
 * a whole prefill where a window has dropped what it needs); detect and eval take the policy. */
static int kvcache_cli_runs(void) {
    const char *mp, *hp, *np;
    char cmd[4096], out[8192], ids[2048];
    char *a, *b, *run;
    size_t na = 0, nb = 0;
    int i, k = 0;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    for (i = 0; i < 120; i++) k += snprintf(ids + k, sizeof ids - (size_t)k, "%s%d", i ? " " : "", 3 + (i * 7) % 40);
    snprintf(cmd, sizeof cmd, "%s logits %s --ids '%s' --out %s --ctx 200", t_bin, mp, ids, t_tmp("kvc_full.bin"));
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s logits %s --ids '%s' --out %s --ctx 200 --kv-window 120 --kv-keep-heads 0-0", t_bin, mp, ids,
             t_tmp("kvc_cov.bin"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "KV cache") && strstr(out, "sinks 4, window 120, full: heads-1: 0-0"),
           "%s", out);
    snprintf(cmd, sizeof cmd, "%s logits %s --ids '%s' --out %s --ctx 200 --kv-window 8 --kv-sinks 1", t_bin, mp, ids,
             t_tmp("kvc_win.bin"));
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    a = method_slurp(t_tmp("kvc_full.bin"), &na);
    b = method_slurp(t_tmp("kvc_cov.bin"), &nb);
    CHECK(a && b && na == nb && na > 0 && memcmp(a, b, na) == 0);
    free(b);
    b = method_slurp(t_tmp("kvc_win.bin"), &nb);
    CHECK(b && na == nb && memcmp(a, b, na) != 0);
    free(a);
    free(b);
    /* niah: the policy in the run record; reuse and no reuse give the same records */
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " --kv-window 250 -o %s", t_bin, mp, hp, np,
             t_tmp("kvc_r"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "kv cache: sinks 4, window 250, full: none; 0 of "), "%s", out);
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s " KA_GRID " --kv-window 250 --no-prefix-reuse -t 1 -o %s",
             t_bin, mp, hp, np, t_tmp("kvc_nr"));
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    a = method_slurp(t_tmp("kvc_r.jsonl"), NULL);
    b = method_slurp(t_tmp("kvc_nr.jsonl"), NULL);
    CHECK(a && b);
    CHECKF(!strcmp(a, b), "prefix reuse changed the records under a KV policy");
    free(a);
    free(b);
    run = method_slurp(t_tmp("kvc_r.run.json"), NULL);
    CHECK(run != NULL);
    CHECKF(strstr(run, "\"kv_policy\": {\"window\": 250, \"sinks\": 4, \"label\": \"sinks 4, window 250, full: none\", "
                       "\"kv_heads_full\": 0, \"kv_heads\": ") && strstr(run, "\"kv_cache_bytes\": ") &&
               strstr(run, "\"kv_policy\": \"sinks 4, window 250, full: none\""),
           "%s", run);
    free(run);
    /* detect and eval under a policy */
    snprintf(cmd, sizeof cmd, "%s detect %s --haystack %s --needles %s " KA_GRID " --kv-window 16 --kv-keep-heads 0-0 -o %s",
             t_bin, mp, hp, np, t_tmp("kvc_d.json"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "kv cache: sinks 4, window 16"), "%s", out);
    run = method_slurp(t_tmp("kvc_d.run.json"), NULL);
    CHECK(run && strstr(run, "\"kv_heads_full\": 1"));
    free(run);
    snprintf(cmd, sizeof cmd, "%s eval %s --task %s --max-new 2 --kv-window 16 --fresh -o %s", t_bin, mp, cli_t_task(),
             t_tmp("kvc_e"));
    CHECKF(t_run(cmd, out, sizeof out) == 0 && strstr(out, "kv cache: sinks 4, window 16"), "%s", out);
    run = method_slurp(t_tmp("kvc_e.run.json"), NULL);
    CHECK(run && strstr(run, "\"kv_policy\": {\"window\": 16") && strstr(run, "\"kv_cache_bytes\": "));
    free(run);
    return 0;
}

/* niah --kv-sweep: one full run and three policies per window; the CSV and the SVG. */
static int kvcache_cli_sweep(void) {
    const char *mp, *hp, *np;
    char cmd[4096], out[16384], sp[600];
    char *csv, *svg;
    int lines = 0;
    const char *q;
    CHECK(ka_files(&mp, &hp, &np) == 0);
    snprintf(sp, sizeof sp, "%s", t_tmp("kvc_sw_scores.json"));
    CHECK(method_write(sp, "{\"0-0\": [0.9], \"0-1\": [0], \"1-0\": [0.01], \"1-1\": [0.02]}") == 0);
    snprintf(cmd, sizeof cmd, "%s niah %s --haystack %s --needles %s --lengths 300 --depths 0:100:2 --buffer 20 "
                              "--template '{context} {question}' --quiet -t 2 --kv-sweep 16,64 --kv-keep-top 1 --scores %s -o %s",
             t_bin, mp, hp, np, sp, t_tmp("kvc_sw"));
    CHECKF(t_run(cmd, out, sizeof out) == 0, "%s", out);
    for (q = out; (q = strstr(q, "kv-sweep: ")) != NULL; q++) lines++;
    CHECKF(lines == 7 && strstr(out, "wrote "), "%s", out);
    csv = method_slurp(t_tmp("kvc_sw.kv.csv"), NULL);
    svg = method_slurp(t_tmp("kvc_sw.kv.svg"), NULL);
    CHECK(csv && svg);
    CHECK(!strncmp(csv, "policy,window,sinks,kept,", 25) && strstr(csv, "\r\ntop,16,4,") && strstr(csv, "\r\nrandom,64,4,") &&
          strstr(csv, "\r\nwindowed,64,4,") && strstr(csv, "\r\nfull,0,0,full,"));
    CHECK(strstr(svg, "viewBox") && strstr(svg, "top-1 retrieval heads full") && strstr(svg, "every head windowed"));
    CHECK(access(t_tmp("kvc_sw.kv-top-w16.run.json"), F_OK) == 0 && access(t_tmp("kvc_sw.kv-full.jsonl"), F_OK) == 0);
    free(csv);
    free(svg);
    return 0;
}
#endif

static const rh_test_case kvcache_tests[] = {
    {"kvcache/covered", kvcache_covered},
    {"kvcache/window", kvcache_window},
    {"kvcache/sliding", kvcache_sliding},
    {"kvcache/shift", kvcache_shift},
    {"kvcache/bytes", kvcache_bytes},
    {"kvcache/rewind", kvcache_rewind},
    {"kvcache/params", kvcache_params},
    {"kvcache/llama2_7b", kvcache_llama2_7b},
    {"kvcache/torch", kvcache_torch},
#if defined(RH_TEST_METHOD) && defined(RH_TEST_CLI)
    {"kvcache/cli_bad", kvcache_cli_bad},
    {"kvcache/cli_runs", kvcache_cli_runs},
    {"kvcache/cli_sweep", kvcache_cli_sweep},
#endif
    {NULL, NULL},
};
