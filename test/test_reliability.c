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
#if !defined(_WIN32)
#include <sys/wait.h>
#endif

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
    t_mkdir(d);
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

/* ---- runs in the background: start, signal, wait.  A status is t_run's: the exit code, or
 * 128 + the signal that ended it. ---- */
#if defined(_WIN32)
/* Windows (under Wine): the run starts through t_run's POSIX sh, in the background; a host sh
 * writes its pid, execs the command (wine keeps the pid), and its parent writes the status when
 * it ends, into files in the temporary folder.  Signals are sent from the host with kill(1).
 * Windows has no SIGINT to send a program from outside (Ctrl-C is an event of its console), so
 * only the SIGKILL tests run here. */
#define REL_SIGKILL 9
typedef long long rel_pid;
static int rel_n_spawned;
static rel_pid rel_spawn(const char *cmd) {
    char sh[4600], pf[600], out[256];
    FILE *f;
    long pid = -1;
    int k = rel_n_spawned++, i;
    snprintf(pf, sizeof pf, "%s/bg%d.pid", t_tmpdir, k);
    snprintf(sh, sizeof sh,
             "( sh -c 'echo $$ > %s.tmp && mv %s.tmp %s && exec \"$0\" \"$@\"' sh %s >/dev/null 2>&1;"
             " echo $? > %s/bg%d.st.tmp && mv %s/bg%d.st.tmp %s/bg%d.st ) >/dev/null 2>&1 &",
             pf, pf, pf, cmd, t_tmpdir, k, t_tmpdir, k, t_tmpdir, k);
    if (t_run(sh, out, sizeof out) != 0) return -1;
    for (i = 0; i < 20000 && (f = fopen(pf, "rb")) == NULL; i++) t_sleep_ms(1);
    if (!f) return -1;
    if (fscanf(f, "%ld", &pid) != 1) pid = -1;
    fclose(f);
    return pid < 0 ? -1 : (rel_pid)k << 32 | pid; /* the file number and the host pid */
}
static void rel_signal(rel_pid p, int sig) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "kill -%d %ld", sig, (long)(p & 0xffffffffLL));
    t_run(cmd, NULL, 0);
}
/* 1 when the run has ended (*st its status), 0 while it runs (block: wait for the end). */
static int rel_wait(rel_pid p, int *st, int block) {
    char sf[600];
    FILE *f;
    snprintf(sf, sizeof sf, "%s/bg%d.st", t_tmpdir, (int)(p >> 32));
    while ((f = fopen(sf, "rb")) == NULL) {
        if (!block) return 0;
        t_sleep_ms(2);
    }
    if (fscanf(f, "%d", st) != 1) *st = -1;
    fclose(f);
    return 1;
}
#else
#define REL_SIGKILL SIGKILL
typedef pid_t rel_pid;
/* Start a run in the background (its output discarded); the child pid, or -1. */
static rel_pid rel_spawn(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        char full[4200];
        /* a runner started in the background by a shell without job control inherits SIGINT
         * ignored, and so would the run: the SIGINT tests need its default action */
        signal(SIGINT, SIG_DFL);
        snprintf(full, sizeof full, "exec %s >/dev/null 2>&1", cmd);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    return pid;
}
static void rel_signal(rel_pid p, int sig) { kill(p, sig); }
static int rel_wait(rel_pid p, int *st, int block) {
    int w;
    if (waitpid(p, &w, block ? 0 : WNOHANG) != p) return 0;
    *st = WIFEXITED(w) ? WEXITSTATUS(w) : WIFSIGNALED(w) ? 128 + WTERMSIG(w) : -1;
    return 1;
}
#endif

/* Kill a run with sig once at least min_done tests are recorded; check the files; rerun;
 * compare with the uninterrupted run. */
static int rel_kill_resume(int detect, int sig, int min_done) {
    char cmd[4096], out[16384], why[1600], recs[700], dir[64], want[64];
    const char *o, *ref, *pp;
    rel_pid pid;
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
        if (rel_wait(pid, &st, 0)) {
            waited = 1;
            break;
        }
        t_sleep_ms(2);
    }
    if (!waited) {
        rel_signal(pid, sig);
        CHECK(rel_wait(pid, &st, 1));
    }
    CHECKF(st == 128 + sig,
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

static int rel_kill_detect_sigkill(void) { return rel_kill_resume(1, REL_SIGKILL, 5); }
static int rel_kill_niah_sigkill(void) { return rel_kill_resume(0, REL_SIGKILL, 1); }
#if !defined(_WIN32)
static int rel_kill_detect_sigint(void) { return rel_kill_resume(1, SIGINT, 1); }
static int rel_kill_niah_sigint(void) { return rel_kill_resume(0, SIGINT, 5); }
#endif

/* What of an output file stays the same from run to run: all of it but, in an SVG, the lines
 * that describe the run (its run comment and <desc>).  malloc'd. */
static char *rel_body(const char *name, const char *x) {
    size_t L = strlen(name);
    rhm_buf b = {0};
    if (L > 4 && !strcmp(name + L - 4, ".svg")) {
        const char *p = x, *q;
        for (; *p; p = q) {
            q = strchr(p, '\n');
            q = q ? q + 1 : p + strlen(p);
            if (strncmp(p, "<!-- run: ", 10) && strncmp(p, "<desc>", 6)) rhm_buf_put(&b, p, (size_t)(q - p));
        }
    } else {
        rhm_buf_puts(&b, x);
    }
    rhm_buf_put(&b, "", 0);
    return b.p;
}

/* After a kill, every output of the run at o is whole and either the old version or the new:
 * each record line is the reference run's line for that test (the runs are deterministic, so
 * a torn or mixed line shows), and niah's CSV and SVG are absent or equal to the reference's
 * (written once, at the end of a run; detect on the noise model writes no score file). */
static int rel_old_or_new(const char *o, const char *ref, int detect, char *why, size_t cap) {
    static const char *const fin[2] = {".csv", ".svg"};
    char pa[700], pb[700], *x, *y;
    int i, bad = 0;
    snprintf(pa, sizeof pa, "%s%s", o, rel_recs_name(detect));
    snprintf(pb, sizeof pb, "%s%s", ref, rel_recs_name(detect));
    x = rel_slurp(pa, NULL);
    y = rel_slurp(pb, NULL);
    if (x && y) {
        const char *p = x, *q;
        rhm_buf ny = {0}; /* "\n" + the reference: every line of it between two newlines */
        rhm_buf_puts(&ny, "\n");
        rhm_buf_puts(&ny, y);
        while (!bad && !ny.oom && *p) {
            char line[8192];
            q = strchr(p, '\n');
            if (!q || q - p > (long)sizeof line - 3) {
                snprintf(why, cap, "%s: a torn or overlong line", pa);
                bad = 1;
                break;
            }
            line[0] = '\n';
            memcpy(line + 1, p, (size_t)(q - p) + 1);
            line[q - p + 2] = 0;
            if (!strstr(ny.p, line)) {
                snprintf(why, cap, "%s: a record that is no record of the reference run: %.200s", pa, line + 1);
                bad = 1;
            }
            p = q + 1;
        }
        rhm_buf_free(&ny);
    } else if (!y) {
        snprintf(why, cap, "missing %s", pb);
        bad = 1;
    }
    free(x);
    free(y);
    for (i = 0; i < (detect ? 0 : 2) && !bad; i++) {
        snprintf(pa, sizeof pa, "%s%s", o, fin[i]);
        snprintf(pb, sizeof pb, "%s%s", ref, fin[i]);
        x = rel_slurp(pa, NULL);
        y = rel_slurp(pb, NULL);
        if (x && y) {
            char *bx = rel_body(pa, x), *by = rel_body(pb, y);
            if (!bx || !by || strcmp(bx, by)) {
                snprintf(why, cap, "%s is neither absent nor the finished run's", pa);
                bad = 1;
            }
            free(bx);
            free(by);
        } else if (!y) {
            snprintf(why, cap, "missing %s", pb);
            bad = 1;
        }
        free(x);
        free(y);
    }
    return bad;
}

/* SIGKILL at many points (issue 24): REL_KILLS runs, each killed after a random delay spread
 * over the run's time (seeded: the same delays every time), check that every file on disk
 * is whole and the old or the new version after each kill, then finish and compare with the
 * uninterrupted run.  Twice: from an empty folder (each run resumes the last), then with
 * --fresh over the finished outputs (each run rewrites them from the start). */
#if defined(_WIN32)
#define REL_KILLS 5 /* a run under Wine takes 5-8 s here (0.5 s native) */
#else
#define REL_KILLS 12
#endif
static int rel_kill_many(int detect) {
    char cmd[4200], out[16384], why[1600], dir[64];
    const char *o, *ref;
    double t0, t_whole;
    uint64_t st = 2024 + (uint64_t)detect;
    char recs[700], recs_tmp[710];
    int phase, k, n_before = 0, n_mid = 0, n_after = 0, rc, had_recs = 0;
    snprintf(dir, sizeof dir, "rel_many_%s", detect ? "detect" : "niah");
    o = rel_outdir(dir);
    snprintf(recs, sizeof recs, "%s%s", o, rel_recs_name(detect));
    snprintf(recs_tmp, sizeof recs_tmp, "%s.tmp", recs);
    ref = rel_reference(detect);
    CHECK(ref != NULL);
    {
        /* the time of one whole run (the reference may be cached: time one more) */
        const char *o2 = rel_outdir(detect ? "rel_many_t_detect" : "rel_many_t_niah");
        rel_cmd(cmd, sizeof cmd, detect, o2, 2, 1);
        t0 = rh_now();
        rc = t_run(cmd, out, sizeof out);
        CHECKF(rel_finished(detect, rc, out), "exit %d: %.2000s", rc, out);
        t_whole = rh_now() - t0;
    }
    for (phase = 0; phase < 2; phase++) {
        for (k = 0; k < REL_KILLS; k++) {
            rel_pid pid;
            /* from an empty folder the runs add up (a delay up to 2/REL_KILLS of a run); with --fresh
             * each starts over (up to a whole run) */
            double span = phase == 0 ? 2.0 * t_whole / REL_KILLS : t_whole;
            int status = 0, ms = (int)(1000.0 * span * (double)(rhm_rand(&st) % 1000) / 1000.0), n_recs;
            rel_cmd(cmd, sizeof cmd, detect, o, 2, 1);
            if (phase == 1) strcat(cmd, " --fresh");
            pid = rel_spawn(cmd);
            CHECK(pid > 0);
            t_sleep_ms(ms);
            rel_signal(pid, REL_SIGKILL);
            CHECK(rel_wait(pid, &status, 1));
            n_recs = rel_count_records(recs);
            if (status < 128) n_after++;
            else if (n_recs == 0) n_before++;
            else n_mid++;
            CHECKF(status == 128 + REL_SIGKILL || status == (detect ? 1 : 0), "run %d: status %d", k, status);
            if (!had_recs && access(recs, F_OK) != 0) {
                /* killed before the first records file was in place: the old version is none
                 * (a lone .tmp is the new one, unfinished; the next run rewrites it) */
                remove(recs_tmp);
                continue;
            }
            had_recs = 1;
            CHECKF(rel_check_dir(t_tmp(dir), detect, why, sizeof why) == 0, "phase %d, kill %d after %d ms: %s", phase, k, ms, why);
            CHECKF(rel_old_or_new(o, ref, detect, why, sizeof why) == 0, "phase %d, kill %d after %d ms: %s", phase, k, ms, why);
        }
        rel_cmd(cmd, sizeof cmd, detect, o, 2, 1);
        rc = t_run(cmd, out, sizeof out);
        CHECKF(rel_finished(detect, rc, out), "the finishing run exited %d:\n%.2000s", rc, out);
        CHECKF(rel_same_outputs(o, ref, detect, why, sizeof why) == 0, "phase %d: after the kills vs uninterrupted: %s", phase, why);
    }
    printf("  %s: %d SIGKILLs over a %.2f s run: %d before the first record, %d midway, %d after the run ended; "
           "every file whole and old or new after each\n",
           detect ? "detect" : "niah", 2 * REL_KILLS, t_whole, n_before, n_mid, n_after);
    CHECKF(n_mid >= REL_KILLS / 3, "only %d kills landed midway", n_mid);
    return 0;
}
static int rel_kill_many_detect(void) { return rel_kill_many(1); }
static int rel_kill_many_niah(void) { return rel_kill_many(0); }

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

/* Replacing a file another handle holds open: POSIX renames over it; Windows refuses while the
 * handle is open, so rh_file_replace tries again (a script polling a run's records, as the kill
 * tests do, made detect fail to write them under Wine).  The reader closes after 150 ms. */
static void *rel_close_later(void *f) {
    t_sleep_ms(150);
    fclose((FILE *)f);
    return NULL;
}
static int rel_replace_open_file(void) {
    char path[600], tmp[620], *d;
    FILE *r;
    pthread_t th;
    int rc;
    snprintf(path, sizeof path, "%s", t_tmp("rel_replace.txt"));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(rel_write(path, "old") == 0 && rel_write(tmp, "new") == 0);
    r = fopen(path, "rb");
    CHECK(r != NULL);
    CHECK(pthread_create(&th, NULL, rel_close_later, r) == 0);
    rc = rh_file_replace(tmp, path);
    pthread_join(th, NULL);
    CHECKF(rc == 0, "replacing a file held open for 150 ms failed: %s", strerror(errno));
    d = rel_slurp(path, NULL);
    CHECKF(d && !strcmp(d, "new"), "after the replace the file holds '%s'", d ? d : "(nothing)");
    free(d);
    return 0;
}

static const rh_test_case reliability_tests[] = {{"reliability/kill_detect_sigkill", rel_kill_detect_sigkill},
#if !defined(_WIN32) /* no SIGINT on Windows: see rel_spawn */
                                                 {"reliability/kill_niah_sigint", rel_kill_niah_sigint},
                                                 {"reliability/kill_detect_sigint", rel_kill_detect_sigint},
#endif
                                                 {"reliability/kill_niah_sigkill", rel_kill_niah_sigkill},
                                                 {"reliability/kill_many_detect", rel_kill_many_detect},
                                                 {"reliability/kill_many_niah", rel_kill_many_niah},
                                                 {"reliability/threads", rel_threads},
                                                 {"reliability/ctx_limits", rel_ctx_limits},
                                                 {"reliability/cli_ctx", rel_cli_ctx},
                                                 {"reliability/replace_open_file", rel_replace_open_file},
                                                 {NULL, NULL}};
