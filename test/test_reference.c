/*
 * test_reference.c -- the forward pass against a reference nobody on the team wrote.
 *
 * test/gen_reference.py (Debian python3 + torch) built tiny random Hugging Face checkpoints of
 * ten variants (Llama-2 MHA, Mistral GQA, Qwen2 qkv-bias + tied, Llama-3 rope scaling, linear
 * rope scaling, Mistral sliding window 12 on every layer, Qwen2 window 7 from layer 1, Phi-3
 * with fused projections and partial rotary, Phi-3 longrope with an original context of 32,
 * Mixtral with 8 experts and top-2), exported them with weights/export.py to
 * test/fixtures/NAME.rhw (f32, and bf16 or f16 for most) and saved PyTorch float64 reference
 * outputs: the logits of every position of a 48-token id sequence (<name>.logits.bin, float32
 * LE, 48 x vocab) and 64 greedy tokens after an 8-token prompt (reference_cases.h).  The weights are exactly representable in bf16 and f16, so
 * all exports of a variant share one reference.
 *
 * Tolerances (issue 2):
 *   f32 weights:      max over all positions and vocab of |logit - ref| <= 1e-4
 *   bf16/f16 weights: per position row, max|logit - ref| / max|ref| <= 1e-2
 *                     (RH_BF16DOT builds round prefill activations to bf16 for bf16 weights, as
 *                     PyTorch's bf16 matmul does: 0.56 % measured on the bf16 files, with
 *                     -DRH_BF16DOT_EMULATE and on an AVX512_BF16 Xeon, against 6e-7 without;
 *                     the limit holds)
 *   greedy:           the 64 tokens equal the reference's (every reference step has a top-2
 *                     margin >= 0.02, recorded in reference_cases.h, far above float noise)
 * The reference pass (rh_ctx_params.reference) is held to the same limits, logits and greedy.
 * Also: prefill in chunks of any size, and token-by-token decoding, give the logits of a single
 * prefill; any thread count gives the same bits; `retrieval_heads logits` writes the same
 * logits and `retrieval_heads generate --ids-out` prints the same greedy tokens;
 * test/test_export.py (export.py's bad-input tests) and test/test_train.py (train.py's bad
 * flags) pass when python3 is on PATH.
 *
 * Included by test/test_main.c; every name here is static and starts with reference_.
 */
#include "fixtures/ref_cases.h"

#define REFERENCE_DIR "test/fixtures/"
#define REFERENCE_F32_TOL 1e-4
#define REFERENCE_HALF_REL_TOL 1e-2

/* n little-endian float32 values, exactly, from path: malloc'd, or NULL (message printed). */
static float *reference_read_f32(const char *path, size_t n) {
    unsigned char *raw, extra;
    float *out;
    FILE *f = fopen(path, "rb");
    size_t i;
    if (!f) {
        printf("  %s: cannot open\n", path);
        return NULL;
    }
    raw = (unsigned char *)malloc(n * 4);
    out = (float *)malloc(n * sizeof(float));
    if (!raw || !out || fread(raw, 4, n, f) != n || fread(&extra, 1, 1, f) != 0) {
        printf("  %s: not %lu float32 values\n", path, (unsigned long)n);
        fclose(f);
        free(raw);
        free(out);
        return NULL;
    }
    fclose(f);
    for (i = 0; i < n; i++) { /* little-endian whatever the host */
        uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        memcpy(&out[i], &u, 4);
    }
    free(raw);
    return out;
}

/* Reference logits of a case: REFERENCE_N_IDS x vocab floats, malloc'd, or NULL. */
static float *reference_load_logits(const reference_case *rc) {
    char path[256];
    snprintf(path, sizeof path, REFERENCE_DIR "%s.logits.bin", rc->name);
    return reference_read_f32(path, (size_t)REFERENCE_N_IDS * (size_t)rc->vocab);
}

/* max |a - b| over n floats */
static double reference_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* max over rows of max|a - ref| / max|ref| (rows of `cols` floats) */
static double reference_max_row_rel_diff(const float *a, const float *ref, int rows, int cols) {
    double worst = 0;
    int r;
    for (r = 0; r < rows; r++) {
        double scale = 0, d;
        int j;
        for (j = 0; j < cols; j++)
            if (fabs(ref[(size_t)r * cols + j]) > scale) scale = fabs(ref[(size_t)r * cols + j]);
        d = reference_max_abs_diff(a + (size_t)r * cols, ref + (size_t)r * cols, (size_t)cols) / scale;
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

/* A model and a context of it: the fast pass, or with ref_pass the reference pass. */
static int reference_open(const char *file, int n_threads, int chunk, int ref_pass, rh_model **m, rh_ctx **c) {
    char path[256], err[512];
    rh_ctx_params p;
    snprintf(path, sizeof path, REFERENCE_DIR "%s", file);
    *m = NULL;
    *c = NULL;
    if (rh_model_open(path, m, err, sizeof err) != RH_OK) {
        printf("  %s\n", err);
        return -1;
    }
    rh_ctx_params_default(&p);
    p.n_threads = n_threads;
    p.prefill_chunk = chunk;
    p.reference = ref_pass;
    p.n_ctx = 128;
    if (rh_ctx_new(*m, &p, c, err, sizeof err) != RH_OK) {
        printf("  %s: %s\n", path, err);
        rh_model_close(*m);
        *m = NULL;
        return -1;
    }
    return 0;
}

static void reference_close(rh_model *m, rh_ctx *c) {
    rh_ctx_free(c);
    rh_model_close(m);
}

/* The case a fixture file belongs to, or NULL. */
static const reference_case *reference_case_of(const char *file) {
    int i, j;
    for (i = 0; i < REFERENCE_N_CASES; i++)
        for (j = 0; j < reference_cases[i].n_files; j++)
            if (!strcmp(reference_cases[i].files[j].file, file)) return &reference_cases[i];
    return NULL;
}

/* All-position logits (REFERENCE_N_IDS x vocab) of the case's id sequence from one file, in
 * one rh_eval; malloc'd, or NULL (message printed). */
static float *reference_eval_all(const char *file, int n_threads, int chunk, int ref_pass) {
    const reference_case *rc = reference_case_of(file);
    rh_model *m;
    rh_ctx *c;
    float *lg = NULL;
    if (!rc || reference_open(file, n_threads, chunk, ref_pass, &m, &c)) return NULL;
    if (rh_model_config(m)->vocab_size != rc->vocab) {
        printf("  %s: vocab_size %d, the reference has %d\n", file,
               rh_model_config(m)->vocab_size, rc->vocab);
    } else {
        lg = (float *)malloc((size_t)REFERENCE_N_IDS * rc->vocab * sizeof(float));
        if (lg && rh_eval(c, rc->ids, REFERENCE_N_IDS, lg, 1) != RH_OK) {
            printf("  %s: rh_eval: %s\n", file, rh_ctx_error(c));
            free(lg);
            lg = NULL;
        }
    }
    reference_close(m, c);
    return lg;
}

/* Every position's logits of every fixture file against the PyTorch reference: the fast pass,
 * then the reference pass (rh_ctx_params.reference) to the same limits. */
static int reference_test_logits(void) {
    int i, j, pass, fails = 0;
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < REFERENCE_N_CASES; i++) {
            const reference_case *rc = &reference_cases[i];
            float *ref = reference_load_logits(rc);
            if (!ref) return 1;
            for (j = 0; j < rc->n_files; j++) {
                const reference_file *rf = &rc->files[j];
                float *lg = reference_eval_all(rf->file, 0, 0, pass);
                double abs_d, rel_d;
                int ok;
                if (!lg) {
                    fails++;
                    continue;
                }
                abs_d = reference_max_abs_diff(lg, ref, (size_t)REFERENCE_N_IDS * rc->vocab);
                rel_d = reference_max_row_rel_diff(lg, ref, REFERENCE_N_IDS, rc->vocab);
                ok = rf->dtype == RH_F32 ? abs_d <= REFERENCE_F32_TOL : rel_d <= REFERENCE_HALF_REL_TOL;
                printf("  %-18s %s %s pass: max|diff| %.3g, max row-relative %.3g (limit %s)\n", rf->file,
                       ok ? "ok  " : "FAIL", pass ? "reference" : "fast     ", abs_d, rel_d,
                       rf->dtype == RH_F32 ? "abs 1e-4" : "rel 1e-2");
                if (!ok) fails++;
                free(lg);
            }
            free(ref);
        }
    }
    return fails;
}

/* Greedy decoding: the prompt in one rh_eval, then 64 single-token steps; the fast pass, then
 * the reference pass. */
static int reference_test_greedy(void) {
    int i, j, pass, fails = 0, n_files = 0;
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < REFERENCE_N_CASES; i++) {
            const reference_case *rc = &reference_cases[i];
            for (j = 0; j < rc->n_files; j++, n_files++) {
                rh_model *m;
                rh_ctx *c;
                float *lg = (float *)malloc((size_t)rc->vocab * sizeof(float));
                int step, first_bad = -1, tok, rcode;
                if (!lg || reference_open(rc->files[j].file, 0, 0, pass, &m, &c)) {
                    free(lg);
                    fails++;
                    continue;
                }
                rcode = rh_eval(c, rc->prompt, REFERENCE_N_PROMPT, lg, 0);
                for (step = 0; step < REFERENCE_N_GEN && rcode == RH_OK; step++) {
                    tok = rh_argmax(lg, rc->vocab);
                    if (tok != rc->gen[step] && first_bad < 0) first_bad = step;
                    tok = rc->gen[step]; /* continue on the reference's path */
                    rcode = rh_eval(c, &tok, 1, lg, 0);
                }
                if (rcode != RH_OK) printf("  %s: rh_eval: %s\n", rc->files[j].file, rh_ctx_error(c));
                if (rcode != RH_OK || first_bad >= 0) {
                    fails++;
                    if (first_bad >= 0)
                        printf("  %s, %s pass: greedy token %d differs from the reference\n",
                               rc->files[j].file, pass ? "reference" : "fast", first_bad);
                }
                reference_close(m, c);
                free(lg);
            }
        }
    }
    if (!fails) printf("  %d files x %d greedy tokens equal the reference, fast and reference passes\n", n_files / 2, REFERENCE_N_GEN);
    return fails;
}

/* Prefill chunk sizes, split evaluation, token-by-token decoding and thread counts must not
 * change the logits. */
static int reference_test_chunked(void) {
    static const int chunks[] = {1, 3, 16, 47, 48, 0};
    static const char *files[] = {"qwen2.rhw", "llama3.f16.rhw", "gqa.bf16.rhw", "qwen2swa.rhw",
                                  "mixtral.rhw", "mixtral.bf16.rhw"};
    int fi, fails = 0;
    for (fi = 0; fi < (int)(sizeof files / sizeof files[0]); fi++) {
        const reference_case *rc = reference_case_of(files[fi]);
        float *base, *lg;
        size_t n;
        int i, k;
        if (!rc) return 1;
        n = (size_t)REFERENCE_N_IDS * rc->vocab;
        base = reference_eval_all(files[fi], 1, 0, 0);
        if (!base) return 1;
        for (i = 0; i < (int)(sizeof chunks / sizeof chunks[0]); i++) {
            lg = reference_eval_all(files[fi], 2, chunks[i], 0);
            if (!lg || memcmp(lg, base, n * sizeof(float))) {
                printf("  %s: prefill_chunk %d (2 threads) differs from 1 thread: max|diff| %.3g\n",
                       files[fi], chunks[i], lg ? reference_max_abs_diff(lg, base, n) : -1.0);
                fails++;
            }
            free(lg);
        }
        for (k = 3; k <= 4; k++) { /* 3 and 4 threads */
            lg = reference_eval_all(files[fi], k, 5, 0);
            if (!lg || memcmp(lg, base, n * sizeof(float))) {
                printf("  %s: %d threads differ\n", files[fi], k);
                fails++;
            }
            free(lg);
        }
        { /* 20 + 28 tokens in two calls, then 48 one-token calls */
            rh_model *m;
            rh_ctx *c;
            double d1 = -1, d2 = -1, r2 = -1;
            int tbt_ok, bf16 = 0;
            for (i = 0; i < rc->n_files; i++)
                if (!strcmp(rc->files[i].file, files[fi])) bf16 = rc->files[i].dtype == RH_BF16;
            lg = (float *)malloc(n * sizeof(float));
            if (lg && !reference_open(files[fi], 2, 7, 0, &m, &c)) {
                if (rh_eval(c, rc->ids, 20, lg, 1) == RH_OK &&
                    rh_eval(c, rc->ids + 20, REFERENCE_N_IDS - 20, lg + (size_t)20 * rc->vocab, 1) ==
                        RH_OK && rh_ctx_n_past(c) == REFERENCE_N_IDS)
                    d1 = reference_max_abs_diff(lg, base, n);
                if (rh_ctx_rewind(c, 0) == RH_OK) {
                    for (i = 0; i < REFERENCE_N_IDS; i++)
                        if (rh_eval(c, rc->ids + i, 1, lg + (size_t)i * rc->vocab, 0) != RH_OK)
                            break;
                    if (i == REFERENCE_N_IDS) {
                        d2 = reference_max_abs_diff(lg, base, n);
                        r2 = reference_max_row_rel_diff(lg, base, REFERENCE_N_IDS, rc->vocab);
                    }
                }
                reference_close(m, c);
            }
            free(lg);
            /* A split prefill runs the same kernels: exact.  One-token calls run the decode
             * GEMV (lane sums + horizontal add) instead of the prefill GEMM (one FMA chain per
             * element), so they agree to rounding: the PyTorch check's tolerance. */
            tbt_ok = d2 >= 0 && d2 <= 1e-4;
#if defined(RH_BF16DOT)
            /* bf16 weights in an RH_BF16DOT build: prefill rounds each matmul's X to bf16 (the
             * bf16 dot-product GEMM), decode does not, so the two differ by that rounding, up to
             * 2^-8 per product: 0.039 here, 0.56 % of a row's largest |logit| (the same with
             * -DRH_BF16DOT_EMULATE and with VDPBF16PS on an Intel Xeon): held to the PyTorch
             * check's bf16 tolerance, row-relative 1e-2. */
            if (bf16) tbt_ok = r2 >= 0 && r2 <= REFERENCE_HALF_REL_TOL;
#else
            (void)bf16;
#endif
            if (d1 != 0 || !tbt_ok) {
                printf("  %s: split prefill max|diff| %.3g (must be 0), token-by-token %.3g, row-relative %.3g\n",
                       files[fi], d1, d2, r2);
                fails++;
            } else {
                printf("  %-18s chunks 1..48, 1-4 threads: identical bits; split prefill "
                       "%.3g, token-by-token %.3g (row-relative %.3g)\n", files[fi], d1, d2, r2);
            }
        }
        free(base);
    }
    return fails;
}

/* `retrieval_heads logits` (the CLI) writes the reference's logits. */
static int reference_test_cli_logits(void) {
    const reference_case *rc = &reference_cases[0];
    char cmd[2048], ids[512], msg[1024];
    const char *out = t_tmp("reference_cli_logits.bin");
    size_t n, pos = 0;
    float *ref, *got = NULL;
    int i, r;
    double d = -1;
    for (i = 0; i < REFERENCE_N_CASES; i++) /* llama3: rope scaling, tied embeddings */
        if (!strcmp(reference_cases[i].name, "llama3")) rc = &reference_cases[i];
    n = (size_t)REFERENCE_N_IDS * rc->vocab;
    for (i = 0; i < REFERENCE_N_IDS; i++)
        pos += (size_t)snprintf(ids + pos, sizeof ids - pos, "%s%d", i ? " " : "", rc->ids[i]);
    snprintf(cmd, sizeof cmd, "%s logits " REFERENCE_DIR "%s --ids \"%s\" --out %s -t 2", t_bin,
             rc->files[0].file, ids, out);
    r = t_run(cmd, msg, sizeof msg);
    ref = reference_load_logits(rc);
    if (r == 0) got = reference_read_f32(out, n);
    if (ref && got) d = reference_max_abs_diff(got, ref, n);
    free(ref);
    free(got);
    printf("  %s logits %s: exit %d, max|diff| %.3g (limit 1e-4)\n", t_bin, rc->files[0].file,
           r, d);
    if (r != 0) printf("  %s", msg);
    return !(d >= 0 && d <= REFERENCE_F32_TOL);
}

/* `retrieval_heads generate --ids-out --ignore-eos -n 64` prints the reference's greedy tokens
 * for every fixture file. */
static int reference_test_cli_generate(void) {
    int i, j, k, fails = 0, n_files = 0;
    const char *out = t_tmp("reference_cli_generate.txt");
    for (i = 0; i < REFERENCE_N_CASES; i++) {
        const reference_case *rc = &reference_cases[i];
        for (j = 0; j < rc->n_files; j++, n_files++) {
            char cmd[2048], msg[1024], text[4096], *p, *end;
            size_t pos = 0, len = 0;
            int r, got = 0, first_bad = -1;
            FILE *f;
            pos += (size_t)snprintf(cmd, sizeof cmd, "%s generate " REFERENCE_DIR "%s --ids \"",
                                    t_bin, rc->files[j].file);
            for (k = 0; k < REFERENCE_N_PROMPT; k++)
                pos += (size_t)snprintf(cmd + pos, sizeof cmd - pos, "%s%d", k ? " " : "",
                                        rc->prompt[k]);
            snprintf(cmd + pos, sizeof cmd - pos,
                     "\" -n %d --ids-out --ignore-eos -t 2 > %s", REFERENCE_N_GEN, out);
            r = t_run(cmd, msg, sizeof msg);
            f = fopen(out, "rb");
            if (f) {
                len = fread(text, 1, sizeof text - 1, f);
                fclose(f);
            }
            text[len] = 0;
            for (p = text; r == 0 && got < REFERENCE_N_GEN + 1; p = end) {
                long v = strtol(p, &end, 10);
                if (end == p) break;
                if (got < REFERENCE_N_GEN && v != rc->gen[got] && first_bad < 0) first_bad = got;
                got++;
            }
            if (r != 0 || got != REFERENCE_N_GEN || first_bad >= 0) {
                printf("  %s: exit %d, %d ids, first difference at %d\n  %s\n", rc->files[j].file,
                       r, got, first_bad, msg);
                fails++;
            }
        }
    }
    if (!fails)
        printf("  %d files: `generate -n %d` prints the reference's tokens\n", n_files,
               REFERENCE_N_GEN);
    return fails;
}

/* weights/export.py's bad-input tests (stdlib Python). */
static int reference_test_export_py(void) { return t_run_python("test/test_export.py"); }

/* weights/train.py's bad-flag tests (its flags are checked before numpy and torch load). */
static int reference_test_train_py(void) { return t_run_python("test/test_train.py"); }

/* longrope (phi3long.rhw, original context 32): a prefill of 30 ids, then one id at a time to 48.
 * The step that makes the sequence 33 tokens long crosses the original context: the engine
 * recomputes the 32 cached positions with the long factors (as HF's generate drops its cache
 * there), so from position 32 on every step's logits are the reference's, whose 48-token run uses
 * the long factors throughout (within 1e-4, fast and reference passes, 1 and 2 threads).  The
 * steps before the crossing use the short factors: they differ from that reference, and equal a
 * fresh prefill of their length.  Then a rewind to 20 and 12 ids (32 tokens: short again) give
 * the bits of a fresh 32-token prefill. */
static int reference_test_longrope_crossing(void) {
    const reference_case *rc = reference_case_of("phi3long.rhw");
    float *ref, *lg, *fresh;
    int pass, fails = 0;
    if (!rc) { printf("  phi3long.rhw: no reference case\n"); return 1; }
    ref = reference_load_logits(rc);
    lg = (float *)malloc((size_t)REFERENCE_N_IDS * rc->vocab * sizeof(float));
    fresh = (float *)malloc((size_t)REFERENCE_N_IDS * rc->vocab * sizeof(float));
    if (!ref || !lg || !fresh) { free(ref); free(lg); free(fresh); return 1; }
    for (pass = 0; pass < 3; pass++) {
        rh_model *m;
        rh_ctx *c, *c2;
        rh_ctx_params p;
        char err[512];
        double after = 0, before = INFINITY, d, dfresh = 0;
        int t, rcode;
        size_t V = (size_t)rc->vocab;
        if (reference_open("phi3long.rhw", pass == 2 ? 2 : 1, 0, pass == 1, &m, &c)) { fails++; continue; }
        rcode = rh_eval(c, rc->ids, 30, lg, 1);
        for (t = 30; t < REFERENCE_N_IDS && rcode == RH_OK; t++) rcode = rh_eval(c, rc->ids + t, 1, lg + t * V, 0);
        if (rcode != RH_OK) { printf("  rh_eval: %s\n", rh_ctx_error(c)); fails++; reference_close(m, c); continue; }
        for (t = 32; t < REFERENCE_N_IDS; t++) {
            d = reference_max_abs_diff(lg + t * V, ref + t * V, V);
            if (!(d <= after)) after = d;
        }
        for (t = 30; t < 32; t++) {
            d = reference_max_abs_diff(lg + t * V, ref + t * V, V);
            if (d < before) before = d;
        }
        /* the steps before the crossing: a fresh prefill of 31 and 32 tokens, the last row */
        rh_ctx_params_default(&p);
        p.n_threads = pass == 2 ? 2 : 1;
        p.reference = pass == 1;
        p.n_ctx = 128;
        for (t = 31; t <= 32 && rh_ctx_new(m, &p, &c2, err, sizeof err) == RH_OK; t++) {
            if (rh_eval(c2, rc->ids, t, fresh, 0) == RH_OK) {
                d = reference_max_abs_diff(fresh, lg + (size_t)(t - 1) * V, V);
                if (!(d <= dfresh)) dfresh = d;
            } else dfresh = INFINITY;
            rh_ctx_free(c2);
        }
        /* rewind to 20, then 12 ids: 32 tokens, short factors, the bits of the fresh prefill */
        if (rh_ctx_rewind(c, 20) != RH_OK || rh_eval(c, rc->ids + 20, 12, lg, 0) != RH_OK ||
            memcmp(lg, fresh, V * sizeof(float)) != 0) {
            printf("  %s pass: rewind to 20 + 12 ids: not the bits of a fresh 32-token prefill\n", pass == 1 ? "reference" : "fast");
            fails++;
        }
        printf("  %-9s pass, %d thread(s): positions 32..47 after crossing %.3g from the long reference (limit 1e-4); "
               "30..31 before it %.3g away (short factors), %.3g from a fresh prefill\n",
               pass == 1 ? "reference" : "fast", pass == 2 ? 2 : 1, after, before, dfresh);
        if (!(after <= REFERENCE_F32_TOL) || !(before > 0.01) || !(dfresh <= (pass == 1 ? 0.0 : 1e-5))) fails++;
        reference_close(m, c);
    }
    free(ref); free(lg); free(fresh);
    return fails;
}

/* Masking against PyTorch: layer 1, head 0 made uniform over what it sees (the paper's masking;
 * rh_set_mask RH_MASK_UNIFORM before the prefill), the 48 ids' logits against the reference's
 * <name>.masked.logits.bin, which gen_reference.py computes with that head's scores set to 0:
 * Llama-2 (the control), Mistral with a window of 12 (the mean over the window), Phi-3, Phi-3
 * longrope and Mixtral.  f32 files, fast (1 and 2 threads) and reference passes, within 1e-4. */
static int reference_test_masked(void) {
    static const char *files[] = {"llama2.rhw", "swa.rhw", "phi3.rhw", "phi3long.rhw", "mixtral.rhw"};
    int fi, pass, fails = 0;
    for (fi = 0; fi < (int)(sizeof files / sizeof files[0]); fi++) {
        const reference_case *rc = reference_case_of(files[fi]);
        char path[256];
        float *ref, *lg;
        if (!rc) return 1;
        snprintf(path, sizeof path, REFERENCE_DIR "%s.masked.logits.bin", rc->name);
        ref = reference_read_f32(path, (size_t)REFERENCE_N_IDS * rc->vocab);
        lg = (float *)malloc((size_t)REFERENCE_N_IDS * rc->vocab * sizeof(float));
        if (!ref || !lg) { free(ref); free(lg); return 1; }
        for (pass = 0; pass < 3; pass++) {
            rh_model *m;
            rh_ctx *c;
            static unsigned char mask[1024];
            double d = INFINITY;
            int nh;
            if (reference_open(files[fi], pass == 2 ? 2 : 1, 0, pass == 1, &m, &c)) { fails++; continue; }
            nh = rh_model_config(m)->n_heads;
            memset(mask, 0, sizeof mask);
            mask[1 * nh + 0] = 1;
            if (rh_set_mask(c, mask, RH_MASK_UNIFORM) == RH_OK && rh_eval(c, rc->ids, REFERENCE_N_IDS, lg, 1) == RH_OK)
                d = reference_max_abs_diff(lg, ref, (size_t)REFERENCE_N_IDS * rc->vocab);
            printf("  %-13s %-9s pass, %d thread(s), head 1-0 uniform: max|diff| %.3g (limit 1e-4)\n", files[fi],
                   pass == 1 ? "reference" : "fast", pass == 2 ? 2 : 1, d);
            if (!(d <= REFERENCE_F32_TOL)) fails++;
            reference_close(m, c);
        }
        free(ref);
        free(lg);
    }
    return fails;
}

/* The loader on longrope's factor lists: phi3long.rhw with rope.short_factor (then
 * rope.long_factor) one entry longer (shape and nbytes patched, so only the length is wrong) is
 * refused naming the tensor and its shape; the file as it is loads. */
static int reference_test_factor_lists(void) {
    static const char *names[2] = {"rope.short_factor", "rope.long_factor"};
    unsigned char *img;
    size_t n = 0, at;
    long sz;
    int k, fails = 0;
    char err[512];
    rh_model *m = NULL;
    FILE *f = fopen(REFERENCE_DIR "phi3long.rhw", "rb");
    if (!f) { printf("  phi3long.rhw: cannot open\n"); return 1; }
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    img = (unsigned char *)malloc((size_t)sz);
    if (img) n = fread(img, 1, (size_t)sz, f);
    fclose(f);
    if (!img || n != (size_t)sz) { free(img); return 1; }
    CHECKF(rh_model_open_memory(img, n, "phi3long.rhw", &m, err, sizeof err) == RH_OK, "%s", err);
    rh_model_close(m);
    for (k = 0; k < 2; k++) {
        unsigned char *t = (unsigned char *)malloc(n);
        size_t nl = strlen(names[k]);
        int found = 0, rc;
        memcpy(t, img, n);
        for (at = 256; at + 4 + nl + 8 + 24 <= n && !found; at++) {
            uint32_t l = (uint32_t)t[at] | (uint32_t)t[at + 1] << 8 | (uint32_t)t[at + 2] << 16 | (uint32_t)t[at + 3] << 24;
            if (l == nl && memcmp(t + at + 4, names[k], nl) == 0) {
                unsigned char *e = t + at + 4 + nl + 8; /* shape[0], then offset and nbytes (ndim 1) */
                uint64_t s0 = 0, nb;
                int b;
                for (b = 0; b < 8; b++) s0 |= (uint64_t)e[b] << (8 * b);
                s0 += 1;
                nb = s0 * 4;
                for (b = 0; b < 8; b++) { e[b] = (unsigned char)(s0 >> (8 * b)); e[16 + b] = (unsigned char)(nb >> (8 * b)); }
                found = 1;
            }
        }
        rc = rh_model_open_memory(t, n, "phi3long.rhw", &m, err, sizeof err);
        if (rc == RH_OK) rh_model_close(m);
        printf("  %s one entry longer: %s\n", names[k], rc == RH_OK ? "accepted" : err);
        if (!found || rc == RH_OK || !strstr(err, names[k]) || !strstr(err, "shape")) fails++;
        free(t);
    }
    free(img);
    return fails;
}

static const rh_test_case reference_tests[] = {
    {"reference/factor_lists", reference_test_factor_lists},
    {"reference/masked", reference_test_masked},
    {"reference/longrope_crossing", reference_test_longrope_crossing},
    {"reference/logits", reference_test_logits},
    {"reference/greedy", reference_test_greedy},
    {"reference/chunked", reference_test_chunked},
    {"reference/cli_logits", reference_test_cli_logits},
    {"reference/cli_generate", reference_test_cli_generate},
    {"reference/export_py", reference_test_export_py},
    {"reference/train_py", reference_test_train_py},
    {NULL, NULL}};
