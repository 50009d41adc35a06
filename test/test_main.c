/*
 * test/test_main.c -- the one test runner.  `make test` builds it and runs it from the
 * repository root; it prints one line per test and ends with `N passed, N failed` (exit status
 * nonzero when any failed).
 *
 * HOW TO ADD A TEST FILE (no __has_include in C99, so the scheme is explicit):
 *   1. Write test/test_NAME.c.  It is #included below, after ../retrieval_heads.c (compiled with
 *      -DRH_NO_MAIN), so it sees every static function of the implementation.  Give every
 *      function and table a NAME_ prefix (all files share one translation unit).
 *   2. Each test is `static int NAME_something(void)` returning 0 on success; use CHECK /
 *      CHECKF (they print file:line and return 1).  End the file with a table
 *          static const rh_test_case NAME_tests[] = {{"NAME/something", NAME_something}, ...,
 *                                                   {NULL, NULL}};
 *   3. The Makefile passes -DRH_TEST_NAME (upper case) for every test/test_NAME.c that exists,
 *      so a file that is not written yet never breaks the build.  Add NAME below in the two
 *      lists (the #include list and the suites[] table) -- that is the only edit needed here.
 *
 * Helpers for every test file: t_bin (path of the CLI binary, for CLI tests), t_tmp(name)
 * (a path inside a private temporary directory, removed at exit), t_run(cmd, out, cap) (runs a
 * shell command, captures stdout+stderr, returns the exit status; on Windows through a POSIX
 * sh, see there), t_sleep_ms(ms), t_mkdir(path), t_run_python(script) (a
 * stdlib-Python test script, when python3 exists), t_random_model(...) (a
 * small seeded random model), t_write_model(...) (that model written as a .rhw file).
 *
 * Usage: test_runner [--bin PATH_TO_CLI] [SUBSTRING ...]  (only tests whose name contains one
 * of the substrings run).
 */
#include "../retrieval_heads.c"

#if defined(_WIN32)
#include <direct.h>
#else
#include <sys/wait.h>
#endif

typedef struct {
    const char *name;
    int (*fn)(void);
} rh_test_case;

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            return 1; \
        } \
    } while (0)
#define CHECKF(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            return 1; \
        } \
    } while (0)

static const char *t_bin = "./retrieval_heads";
static char t_tmpdir[256];

/* A path inside the run's private temporary directory (static buffer ring of 8). */
static const char *t_tmp(const char *name) {
    static char buf[8][512];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 512, "%s/%s", t_tmpdir, name);
    return b;
}

/* Capture at most cap-1 bytes of f in out (the rest is read and dropped). */
static void t_capture(FILE *f, char *out, size_t cap) {
    size_t n = 0, r;
    char sink[512];
    if (out && cap) {
        while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, f)) > 0) n += r;
        out[n] = 0;
    }
    while (fread(sink, 1, sizeof sink, f) > 0) {
    }
}

#if defined(_WIN32)
static void t_sleep_ms(int ms) { Sleep((DWORD)ms); }
static int t_mkdir(const char *path) { return _mkdir(path); }

/* Windows (tested under Wine): the tests' commands are POSIX shell lines (quotes, redirections,
 * &&, the CLI as --bin gives it: "/usr/bin/wine .../retrieval_heads.exe"), so they run through
 * a POSIX sh, $RH_TEST_SH or else Wine's view of the host's /bin/sh (Z:\bin\sh).  Wine starts a
 * host program without a process handle to wait on or pipes to read, so the script writes the
 * output and then the exit status to files in the temporary folder, and the runner waits for
 * the status file (renamed into place when complete).  Paths are the host's: Wine resolves a
 * path that starts with '/' on drive Z:, the host's root. */
static int t_run(const char *cmd, char *out, size_t cap) {
    static int k;
    char script[600], outf[600], rcf[600], line[1400];
    const char *sh = getenv("RH_TEST_SH");
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    FILE *f;
    int rc = -1;
    snprintf(script, sizeof script, "%s/run%d.sh", t_tmpdir, k);
    snprintf(outf, sizeof outf, "%s/run%d.out", t_tmpdir, k);
    snprintf(rcf, sizeof rcf, "%s/run%d.rc", t_tmpdir, k++);
    f = fopen(script, "wb");
    if (!f) return -1;
    fprintf(f, "{ %s 2>&1\n} > '%s'\necho $? > '%s.tmp' && mv '%s.tmp' '%s'\n", cmd, outf, rcf, rcf, rcf);
    if (fclose(f) != 0) return -1;
    snprintf(line, sizeof line, "\"%s\" \"%s\"", sh && *sh ? sh : "Z:\\bin\\sh", script);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    memset(&pi, 0, sizeof pi);
    if (!CreateProcessA(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) return -1;
    if (pi.hProcess) { /* a Windows sh (MSYS2, Cygwin): a real process */
        WaitForSingleObject(pi.hProcess, INFINITE);
        CloseHandle(pi.hProcess);
        CloseHandle(pi.hThread);
    }
    while ((f = fopen(rcf, "rb")) == NULL) t_sleep_ms(1);
    if (fscanf(f, "%d", &rc) != 1) rc = -1;
    fclose(f);
    f = fopen(outf, "rb");
    if (out && cap) out[0] = 0;
    if (f) {
        t_capture(f, out, cap);
        fclose(f);
    }
    remove(script);
    remove(outf);
    remove(rcf);
    return rc;
}
#else
static void t_sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}
static int t_mkdir(const char *path) { return mkdir(path, 0700); }

/* Run a shell command; stdout+stderr (at most cap-1 bytes) in out; returns the exit status
 * (or 128+signal, or -1 when it could not run). */
static int t_run(const char *cmd, char *out, size_t cap) {
    char full[4096];
    FILE *p;
    int st;
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    p = popen(full, "r");
    if (!p) return -1;
    t_capture(p, out, cap);
    st = pclose(p);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}
#endif

/* A stdlib-Python test script (the exporter's, the tokenizer-section builder's), run from the
 * repository root when a python3 is on PATH (.ci/run installs one, so CI always runs it); its
 * output is shown; nonzero when it fails. */
static int t_run_python(const char *script) {
    static char out[16384];
    char cmd[512];
    int r;
    if (t_run("command -v python3", out, sizeof out) != 0) {
        printf("  python3 not found: %s skipped\n", script);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "python3 %s", script);
    r = t_run(cmd, out, sizeof out);
    printf("%s", out);
    return r != 0;
}

/* A small config: the variants are selected by the caller after this. */
static rh_config t_config(void) {
    rh_config c;
    memset(&c, 0, sizeof c);
    c.dim = 64;
    c.hidden_dim = 96;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.vocab_size = 300;
    c.max_ctx = 256;
    c.rope_theta = 10000.0f;
    c.rope_scaling = RH_ROPE_NONE;
    c.rope_factor = 1.0f;
    c.norm_eps = 1e-5f;
    c.bos_id = 1;
    c.n_eos = 1;
    c.eos_ids[0] = 2;
    return c;
}

static rh_model *t_random_model(const rh_config *c, rh_dtype dt, uint64_t seed) {
    rh_model *m = NULL;
    char err[512];
    if (rh_model_random(c, dt, seed, &m, err, sizeof err) != RH_OK) {
        fprintf(stderr, "  t_random_model: %s\n", err);
        return NULL;
    }
    return m;
}

/* Write the image of a model (e.g. from rh_model_random) to a file in the temp dir. */
static const char *t_write_model(const rh_model *m, const char *name) {
    const char *path = t_tmp(name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    if (fwrite(m->base, 1, m->size, f) != m->size) { fclose(f); return NULL; }
    if (fclose(f) != 0) return NULL;
    return path;
}

/* ---- the test files (see the top of this file) ---- */
#ifdef RH_TEST_ENGINE
#include "test_engine.c"
#endif
#ifdef RH_TEST_TOKENIZER
#include "test_tokenizer.c"
#endif
#ifdef RH_TEST_REFERENCE
#include "test_reference.c"
#endif
#if defined(RH_TEST_METHOD)
#include "test_method.c"
#endif
#ifdef RH_TEST_RELIABILITY
#include "test_reliability.c"
#endif
#if defined(RH_TEST_CLI) && defined(RH_TEST_METHOD)
#include "test_cli.c" /* after test_method.c: it uses the known-answer model */
#endif
#if defined(RH_TEST_FORWARD) && defined(RH_TEST_ENGINE) /* it uses test_engine.c's variants */
#include "test_forward.c"
#endif
#ifdef RH_TEST_RHWSPEC
#include "test_rhwspec.c"
#endif
#if defined(RH_TEST_EVAL) && defined(RH_TEST_METHOD)
#include "test_eval.c" /* after test_method.c: it uses the known-answer model */
#endif
#ifdef RH_TEST_KVCACHE
#include "test_kvcache.c"
#endif

static const rh_test_case *const suites[] = {
#ifdef RH_TEST_ENGINE
    engine_tests,
#endif
#ifdef RH_TEST_TOKENIZER
    tokenizer_tests,
#endif
#ifdef RH_TEST_REFERENCE
    reference_tests,
#endif
#if defined(RH_TEST_METHOD)
    method_tests,
#endif
#ifdef RH_TEST_RELIABILITY
    reliability_tests,
#endif
#if defined(RH_TEST_CLI) && defined(RH_TEST_METHOD)
    cli_tests,
#endif
#if defined(RH_TEST_FORWARD) && defined(RH_TEST_ENGINE)
    forward_tests,
#endif
#ifdef RH_TEST_RHWSPEC
    rhwspec_tests,
#endif
#if defined(RH_TEST_EVAL) && defined(RH_TEST_METHOD)
    eval_tests,
#endif
#ifdef RH_TEST_KVCACHE
    kvcache_tests,
#endif
    NULL};

static void t_rmtree(const char *dir) {
    char cmd[600];
    if (!dir[0] || strncmp(dir, "/tmp/", 5) != 0) return;
#if defined(_WIN32) /* t_run keeps its files in dir until it has read them: empty it, then remove it */
    snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 -maxdepth 1 ! -name 'run*' -exec rm -rf {} +", dir);
    if (t_run(cmd, NULL, 0) != 0 || _rmdir(dir) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
#else
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
#endif
}

int main(int argc, char **argv) {
    int i, s, passed = 0, failed = 0, n_filters = 0;
    const char *filters[64];
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bin") == 0 && i + 1 < argc) t_bin = argv[++i];
        else if (n_filters < 64) filters[n_filters++] = argv[i];
    }
#if defined(_WIN32) /* no mkdtemp: the process id names it (the host's /tmp, see t_run) */
    snprintf(t_tmpdir, sizeof t_tmpdir, "/tmp/rh_test.w%lu", (unsigned long)GetCurrentProcessId());
    if (t_mkdir(t_tmpdir) != 0) {
#else
    snprintf(t_tmpdir, sizeof t_tmpdir, "/tmp/rh_test.XXXXXX");
    if (!mkdtemp(t_tmpdir)) {
#endif
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    printf("retrieval_heads tests (kernels: %s)\n", RH_SIMD_NAME);
    for (s = 0; suites[s]; s++) {
        const rh_test_case *t;
        for (t = suites[s]; t->name; t++) {
            int want = n_filters == 0, r;
            double t0;
            for (i = 0; i < n_filters; i++)
                if (strstr(t->name, filters[i])) want = 1;
            if (!want) continue;
            fflush(stdout);
            t0 = rh_now();
            r = t->fn();
            printf("%s %s (%.2fs)\n", r == 0 ? "ok  " : "FAIL", t->name, rh_now() - t0);
            fflush(stdout);
            if (r == 0) passed++;
            else failed++;
        }
    }
    t_rmtree(t_tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
