/*
 * test/test_reliability.c -- reliability (issue 6): nothing is lost when `detect` or `niah` is
 * killed mid-run (SIGKILL, SIGINT) and a rerun resumes to the same results as an uninterrupted
 * run; the same command gives identical files with -t 1, 2 and 3; rh_ctx_new refuses contexts
 * that cannot fit in memory or exceed the format's limits, and the CLI warns when --ctx exceeds
 * the model's trained context.
 *
 * The model is a small seeded random one (t_random_model: byte tokenizer with byte fallback, so
 * it encodes any haystack); its answers are noise, which is fine: these tests compare runs with
 * each other, not with a known answer.  So `detect` keeps no test: it ends with exit 1, "no test
 * was kept" and no score file, and its records are what is compared.
 */
#include <signal.h>
#include <dirent.h>

/* 5 lengths x 4 depths x 2 needles = 40 tests, each a few ms on the random model */
#define REL_GRID "--lengths 120:360:5 --depths 0:100:4 --buffer 16 --max-new " "6" " --template '{context} {question}'"
#define REL_N_TESTS 40

static char *rel_slurp(const char *path, size_t *n) {
    char *d = NULL;
    size_t len = 0;
    if (rhm_read_file(path, (size_t)1 << 28, &d, &len, NULL, 0)) return NULL;
    if (n) *n = len;
    return d;
}

static int rel_write(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(s, f);
    return fclose(f);
}

/* The model, haystack and needles, written once into the temporary directory. */
static int rel_files(const char **model, const char **hay, const char **needles) {
    static char mp[512], hp[512], np[512];
    static int done;
    if (!done) {
        static const char *const words[] = {"grass", "stone", "river", "cloud", "field", "paper", "light", "sound",
                                            "table", "water", "north", "glass"};
        rh_config c = t_config();
        rh_model *m;
        rhm_buf b = {0};
        uint64_t st = 11;
        const char *p;
        int s, w;
        c.vocab_size = 256; /* exactly the tokenizer's 256 byte tokens: any sampled id decodes */
        c.max_ctx = 1024;
        m = t_random_model(&c, RH_F32, 42);
        if (!m) return -1;
        p = t_write_model(m, "rel.rhw");
        rh_model_close(m);
        if (!p) return -1;
        snprintf(mp, sizeof mp, "%s", p);
        snprintf(hp, sizeof hp, "%s", t_tmp("rel_hay.txt"));
        snprintf(np, sizeof np, "%s", t_tmp("rel_needles.jsonl"));
        for (s = 0; s < 120; s++) {
            int n = 3 + (int)(rhm_rand(&st) % 5);
            for (w = 0; w < n; w++) {
                rhm_buf_puts(&b, words[rhm_rand(&st) % 12]);
                rhm_buf_puts(&b, w + 1 < n ? " " : ". ");
            }
        }
        if (b.oom || rel_write(hp, b.p)) return -1;
        rhm_buf_free(&b);
        if (rel_write(np, "{\"needle\": \"The code is alpha bravo.\", \"question\": \"What is the code?\", "
                          "\"answer\": \"alpha bravo\"}\n"
                          "{\"needle\": \"My word is delta.\", \"question\": \"What is my word?\", \"answer\": \"delta\"}\n"))
            return -1;
        done = 1;
    }
    *model = mp;
    *hay = hp;
    *needles = np;
    return 0;
}

/* The command line of a run: detect writes OUT.json (+ .tests.jsonl ...), niah OUT.jsonl ... */
static void rel_cmd(char *cmd, size_t cap, int detect, const char *out, int threads, int quiet) {
    const char *mp = "", *hp = "", *np = "";
    rel_files(&mp, &hp, &np);
    snprintf(cmd, cap, "%s %s %s --haystack %s --needles %s " REL_GRID " -t %d%s -o %s%s", t_bin,
             detect ? "detect" : "niah", mp, hp, np, threads, quiet ? " --quiet" : "", out, detect ? ".json" : "");
}

/* A fresh directory inside the temporary one; returns "DIR/base" for -o. */
static const char *rel_outdir(const char *dir) { /* dir: a short name */
    const char *d = t_tmp(dir);
    static char o[8][600];
    static int k;
    char *b = o[k++ & 7];
    mkdir(d, 0700);
    snprintf(b, 600, "%s/out", d);
    return b;
}

static const char *rel_recs_name(int detect) { return detect ? ".tests.jsonl" : ".jsonl"; }

/* Complete records in a records file (lines that end with '\n'). */
static int rel_count_records(const char *path) {
    char *d = rel_slurp(path, NULL), *p;
    int n = 0;
    if (!d) return 0;
    for (p = d; (p = strchr(p, '\n')) != NULL; p++) n++;
    free(d);
    return n;
}

/* The exit status a finished run has: 0, or for detect on the noise model 1 with "no test was
 * kept" (see the top). */
static int rel_finished(int detect, int rc, const char *out) {
    return detect ? rc == 1 && strstr(out, "no test was kept") != NULL : rc == 0;
}

/* Every file in dir is complete and parseable: the records file has its run record beside it and
 * every line parses as JSON; the score file reads; the CSV starts with its header row and ends in
 * a newline; the SVG ends with </svg>; a *.tmp (killed between write and rename) is never the
 * only copy of the records. */
static int rel_check_dir(const char *dir, int detect, char *why, size_t cap) {
    DIR *D = opendir(dir);
    struct dirent *e;
    int bad = 0, n_files = 0;
    why[0] = 0;
    if (!D) {
        snprintf(why, cap, "cannot open %s", dir);
        return 1;
    }
    while (!bad && (e = readdir(D)) != NULL) {
        char path[1200], *d;
        size_t n = 0, L = strlen(e->d_name);
        if (e->d_name[0] == '.') continue;
        n_files++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (L > 4 && !strcmp(e->d_name + L - 4, ".tmp")) {
            char fin[1200];
            snprintf(fin, sizeof fin, "%.*s", (int)(strlen(path) - 4), path);
            if (strstr(fin, rel_recs_name(detect)) && access(fin, F_OK) != 0) {
                snprintf(why, cap, "%s is the only copy of the records", path);
                bad = 1;
            }
            continue;
        }
        d = rel_slurp(path, &n);
        if (!d) {
            snprintf(why, cap, "cannot read %s", path);
            bad = 1;
            break;
        }
        if (L > 6 && !strcmp(e->d_name + L - 6, ".jsonl")) {
            char *p = d, *q;
            int line = 0;
            char run[1300];
            snprintf(run, sizeof run, "%.*s.run.json", (int)(strlen(path) - strlen(rel_recs_name(detect))), path);
            if ((n > 0 && d[n - 1] != '\n') || access(run, F_OK) != 0) {
                snprintf(why, cap, "%s: torn or without its run record", path);
                bad = 1;
            }
            for (; !bad && *p; p = q + 1, line++) {
                rhj v;
                char err[256];
                q = strchr(p, '\n');
                if (!q) break;
                if (rhj_parse(p, (size_t)(q - p), path, &v, err, sizeof err) != RH_OK) {
                    snprintf(why, cap, "%s line %d: %s", path, line + 1, err);
                    bad = 1;
                } else {
                    rhj_free(&v);
                }
            }
        } else if (L > 9 && !strcmp(e->d_name + L - 9, ".run.json")) {
            rhj v;
            char err[256];
            if (rhj_parse(d, n, path, &v, err, sizeof err) != RH_OK) {
                snprintf(why, cap, "%s", err);
                bad = 1;
            } else {
                rhj_free(&v);
            }
        } else if (L > 5 && !strcmp(e->d_name + L - 5, ".json")) {
            rh_scores s;
            char err[256];
            if (rh_scores_read(path, &s, err, sizeof err) != RH_OK) {
                snprintf(why, cap, "%s", err);
                bad = 1;
            } else {
                rh_scores_free(&s);
            }
        } else if (L > 4 && !strcmp(e->d_name + L - 4, ".csv")) {
            if (strncmp(d, "context_length,", 15) != 0 || d[n - 1] != '\n') {
                snprintf(why, cap, "%s: torn", path);
                bad = 1;
            }
        } else if (L > 4 && !strcmp(e->d_name + L - 4, ".svg")) {
            if (n < 7 || strcmp(d + n - 7, "</svg>\n") != 0) {
                snprintf(why, cap, "%s: torn", path);
                bad = 1;
            }
        }
        free(d);
    }
    closedir(D);
    if (!bad && n_files == 0) {
        snprintf(why, cap, "%s is empty", dir);
        bad = 1;
    }
    return bad;
}

/* The outputs of two runs agree byte for byte: the records and the CSV (niah); the records, and no
 * score file in either (detect on the noise model). */
static int rel_same_outputs(const char *a, const char *b, int detect, char *why, size_t cap) {
    /* why: at least 1600 bytes */
    const char *suf[2];
    int i, bad = 0;
    suf[0] = rel_recs_name(detect);
    suf[1] = ".csv";
    if (detect) {
        char pa[700], pb[700];
        snprintf(pa, sizeof pa, "%s.json", a);
        snprintf(pb, sizeof pb, "%s.json", b);
        if (access(pa, F_OK) == 0 || access(pb, F_OK) == 0) {
            snprintf(why, cap, "a score file was written though no test was kept: %.700s", access(pa, F_OK) == 0 ? pa : pb);
            return 1;
        }
    }
    for (i = 0; i < (detect ? 1 : 2) && !bad; i++) {
        char pa[700], pb[700], *x, *y;
        const char *xa, *ya;
        snprintf(pa, sizeof pa, "%s%s", a, suf[i]);
        snprintf(pb, sizeof pb, "%s%s", b, suf[i]);
        x = rel_slurp(pa, NULL);
        y = rel_slurp(pb, NULL);
        if (!x || !y) {
            snprintf(why, cap, "missing %s", !x ? pa : pb);
            bad = 1;
        } else {
            xa = x;
            ya = y;
            if (strcmp(xa, ya) != 0) {
                snprintf(why, cap, "%.700s and %.700s differ", pa, pb);
                bad = 1;
            }
        }
        free(x);
        free(y);
    }
    return bad;
}

/* Start a run in the background (its output discarded); the child pid, or -1. */
static pid_t rel_spawn(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        char full[4200];
        snprintf(full, sizeof full, "exec %s >/dev/null 2>&1", cmd);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void rel_sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* The uninterrupted reference run (-t 1), once per command. */
static const char *rel_reference(int detect) {
    static char ref[2][600];
    if (!ref[detect][0]) {
        char cmd[4096], out[8192];
        const char *o = rel_outdir(detect ? "rel_ref_detect" : "rel_ref_niah");
        int rc;
        rel_cmd(cmd, sizeof cmd, detect, o, 1, 1);
        rc = t_run(cmd, out, sizeof out);
        if (!rel_finished(detect, rc, out)) {
            fprintf(stderr, "  reference run exited %d:\n%s\n", rc, out);
            return NULL;
        }
        snprintf(ref[detect], sizeof ref[detect], "%s", o);
    }
    return ref[detect];
}

/* Kill a run with sig once at least min_done tests are recorded; check the files; rerun;
 * compare with the uninterrupted run. */
static int rel_kill_resume(int detect, int sig, int min_done) {
    char cmd[4096], out[16384], why[1600], recs[700], dir[64], want[64];
    const char *o, *ref, *pp;
    pid_t pid;
    int st = 0, k, n_done, rc, waited = 0;
    double t0;
    snprintf(dir, sizeof dir, "rel_kill_%s_%d", detect ? "detect" : "niah", sig);
    o = rel_outdir(dir);
    ref = rel_reference(detect);
    CHECK(ref != NULL);
    rel_cmd(cmd, sizeof cmd, detect, o, 2, 1);
    snprintf(recs, sizeof recs, "%s%s", o, rel_recs_name(detect));
    pid = rel_spawn(cmd);
    CHECK(pid > 0);
    t0 = rh_now();
    /* poll the records file every 2 ms until a test is in it */
    while (rel_count_records(recs) < min_done && rh_now() - t0 < 20) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            waited = 1;
            break;
        }
        rel_sleep_ms(2);
    }
    if (!waited) {
        kill(pid, sig);
        CHECK(waitpid(pid, &st, 0) == pid);
    }
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == sig,
           "the run was not killed by signal %d (status %d): it finished first or failed to start", sig, st);
    n_done = rel_count_records(recs);
    CHECKF(n_done >= min_done && n_done < REL_N_TESTS, "%d of %d tests recorded at the kill", n_done, REL_N_TESTS);
    CHECKF(rel_check_dir(t_tmp(dir), detect, why, sizeof why) == 0, "after signal %d: %s", sig, why);
    /* rerun (not quiet: it says how many tests were done) */
    rel_cmd(cmd, sizeof cmd, detect, o, 2, 0);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rel_finished(detect, rc, out), "rerun exited %d:\n%.2000s", rc, out);
    snprintf(want, sizeof want, "resuming: %d of %d tests already done", n_done, REL_N_TESTS);
    CHECKF(strstr(out, want) != NULL, "rerun did not say \"%s\":\n%.1000s", want, out);
    /* it ran only the rest: one progress line per test run */
    for (k = 0, pp = out; (pp = strstr(pp, "/40 (")) != NULL; pp++) k++;
    CHECKF(k == REL_N_TESTS - n_done, "rerun ran %d tests, want %d", k, REL_N_TESTS - n_done);
    CHECKF(rel_same_outputs(o, ref, detect, why, sizeof why) == 0, "resumed run vs uninterrupted: %s", why);
    return 0;
}

static int rel_kill_detect_sigkill(void) { return rel_kill_resume(1, SIGKILL, 5); }
static int rel_kill_detect_sigint(void) { return rel_kill_resume(1, SIGINT, 1); }
static int rel_kill_niah_sigkill(void) { return rel_kill_resume(0, SIGKILL, 1); }
static int rel_kill_niah_sigint(void) { return rel_kill_resume(0, SIGINT, 5); }

/* -t 1, 2, 3: identical score files and records (the run-record lines aside) */
static int rel_threads(void) {
    int detect, t;
    for (detect = 0; detect < 2; detect++) {
        const char *ref = rel_reference(detect);
        CHECK(ref != NULL);
        for (t = 2; t <= 3; t++) {
            char cmd[4096], out[8192], why[1600], dir[64];
            const char *o;
            int rc;
            snprintf(dir, sizeof dir, "rel_t%d_%s", t, detect ? "detect" : "niah");
            o = rel_outdir(dir);
            rel_cmd(cmd, sizeof cmd, detect, o, t, 1);
            rc = t_run(cmd, out, sizeof out);
            CHECKF(rel_finished(detect, rc, out), "-t %d exited %d:\n%s", t, rc, out);
            CHECKF(rel_same_outputs(o, ref, detect, why, sizeof why) == 0, "%s -t %d vs -t 1: %s",
                   detect ? "detect" : "niah", t, why);
        }
    }
    return 0;
}

/* ---- resource limits ---- */

/* A model whose KV cache is 128 KiB per token (16 layers x 8 KV heads x 128 x f32, K and V):
 * 2^24 tokens need 2 TiB, more than any machine this runs on, while the weights stay small. */
static rh_model *rel_wide_model(void) {
    rh_config c = t_config();
    c.dim = 32;
    c.hidden_dim = 32;
    c.n_layers = 16;
    c.n_heads = 8;
    c.n_kv_heads = 8;
    c.head_dim = 128;
    c.vocab_size = 256;
    c.max_ctx = 4096;
    return t_random_model(&c, RH_F16, 5);
}

static int rel_ctx_limits(void) {
    rh_model *m = rel_wide_model();
    rh_ctx_params p;
    rh_ctx *cx = NULL;
    char err[512];
    double t0;
    int rc;
    CHECK(m != NULL);
    rh_ctx_params_default(&p);
    p.n_threads = 1;
    /* fits: 256 tokens (32 MiB of cache) */
    p.n_ctx = 256;
    rc = rh_ctx_new(m, &p, &cx, err, sizeof err);
    CHECKF(rc == RH_OK, "%s", err);
    rh_ctx_free(cx);
    cx = NULL;
    /* does not fit: refused at once (nothing allocated, so no time spent), with what is needed
     * and what is available */
    p.n_ctx = RHW_MAX_CTX;
    t0 = rh_now();
    err[0] = 0;
    rc = rh_ctx_new(m, &p, &cx, err, sizeof err);
    CHECKF(rc == RH_ENOMEM && cx == NULL, "rc %d: %s", rc, err);
    CHECKF(strstr(err, "needs 2048.00 GiB for the KV cache of 16777216 tokens") && strstr(err, "GiB available") &&
               strstr(err, "weights"),
           "message: %s", err);
    CHECK(rh_now() - t0 < 0.5);
    /* the f16 cache halves it; still refused */
    p.kv_dtype = RH_F16;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_ENOMEM && strstr(err, "needs 1024.00 GiB"));
    /* beyond the format's limit: a range error */
    p.n_ctx = RHW_MAX_CTX + 1;
    CHECKF(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_ERANGE && strstr(err, "16777217"), "%s", err);
    p.n_ctx = INT_MAX;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_ERANGE);
    p.n_ctx = -1;
    CHECK(rh_ctx_new(m, &p, &cx, err, sizeof err) == RH_EINVAL);
    rh_model_close(m);
    return 0;
}

/* The CLI: a context that cannot fit is one clear line and exit 1; --ctx beyond the trained
 * context warns (one line) and runs; beyond the format's limit is a usage error (exit 2). */
static int rel_cli_ctx(void) {
    rh_model *m = rel_wide_model();
    const char *mp, *sp, *hp, *np;
    char cmd[2048], out[8192];
    int rc, lines = 0;
    const char *q;
    CHECK(m != NULL);
    mp = t_write_model(m, "rel_wide.rhw");
    rh_model_close(m);
    CHECK(mp != NULL);
    snprintf(cmd, sizeof cmd, "%s generate %s --ids '1 5 7' -n 2 -t 1 --ctx 16777216", t_bin, mp);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 1 && strstr(out, "GiB for the KV cache of 16777216 tokens") && strstr(out, "GiB available"),
           "exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s generate %s --ids '1 5 7' -n 2 -t 1 --ctx 16777217", t_bin, mp);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "--ctx"), "exit %d: %s", rc, out);
    CHECK(rel_files(&sp, &hp, &np) == 0); /* max_ctx 1024 */
    snprintf(cmd, sizeof cmd, "%s generate %s --ids '1 5 7' -n 2 -t 1 --ctx 1500 --ids-out", t_bin, sp);
    rc = t_run(cmd, out, sizeof out);
    for (q = out; (q = strstr(q, "warning")) != NULL; q++) lines++;
    CHECKF(rc == 0 && lines == 1 && strstr(out, "warning: --ctx 1500 exceeds the model's trained context of 1024 tokens"),
           "exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s generate %s --ids '1 5 7' -n 2 -t 1 --ctx 1024 --ids-out", t_bin, sp);
    rc = t_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && !strstr(out, "warning"), "exit %d: %s", rc, out);
    return 0;
}

static const rh_test_case reliability_tests[] = {{"reliability/kill_detect_sigkill", rel_kill_detect_sigkill},
                                                 {"reliability/kill_niah_sigint", rel_kill_niah_sigint},
                                                 {"reliability/kill_detect_sigint", rel_kill_detect_sigint},
                                                 {"reliability/kill_niah_sigkill", rel_kill_niah_sigkill},
                                                 {"reliability/threads", rel_threads},
                                                 {"reliability/ctx_limits", rel_ctx_limits},
                                                 {"reliability/cli_ctx", rel_cli_ctx},
                                                 {NULL, NULL}};
