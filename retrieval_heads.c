/*
 * retrieval_heads.c -- a freestanding single-file C99 reference implementation of
 * "Retrieval Head Mechanistically Explains Long-Context Factuality" (Wu et al., 2024).
 * The public API and the .rhw weight format are specified in retrieval_heads.h.
 * MIT licensed (see LICENSE).
 *
 * =============================================================================================
 * READING GUIDE
 * =============================================================================================
 * The file follows the paper: the method first, then the model it runs on, then what the model
 * needs underneath.  Each section opens with what it does and what it may call.
 *
 *   1. THE METHOD        needles in a haystack, the retrieval score, masking experiments and
 *                        reports.  Calls only the public API (retrieval_heads.h) and the small
 *                        utilities declared below (buffers, JSON, files).
 *   2. THE MODEL         the transformer (Llama family) with its observe and mask hooks: a plain
 *                        reference forward pass, the fast one, the KV cache, the context API.
 *   3. THE TOKENIZER     BPE over merges, SentencePiece-style and byte-level.
 *   4. THE .rhw FILE     map, validate every size and offset, write.
 *   5. THE PLATFORM      SIMD kernels beside their scalar twins, the thread pool, the OS layer
 *                        (POSIX or Windows: clocks, mapped files, durable replacement), and
 *                        the utilities (buffers, JSON, files).
 *   6. GENERATED TABLES  Unicode classes and NFC data (tools/gen_unicode.py), behind accessors.
 *   7. THE COMMAND LINE  main(); left out when RH_NO_MAIN is defined (vendoring, tests).
 *
 * The five-minute path through the method (search for the names):
 *   rhm_build_test       one NIAH prompt: the haystack cut to a length in tokens, the needle
 *                        at a depth (moved back to a sentence end), the question after it
 *   rh_find_span         where the answer lies inside the needle, in token ids
 *   rh_retrieval_step    the retrieval score: a head copies when its top-1 attention is on the
 *                        answer-span token it has just generated
 *   rhm_generate         one test through the hooks: prefill, then greedy decode with the
 *                        observe hook on (detect) or heads masked (niah)
 *   reference_attention  where the hooks act inside attention, in plain loops: top-1, the
 *                        three mask modes (att_task is its tiled twin, the one that runs)
 *   rh_experiment_run    the experiment: set up, plan the tests, run each, write the outputs
 *   cli_options          the command line's one table of flags
 * Where the code departs from the original scripts (nightdessert/Retrieval_Head), a comment
 * says so with the tag ORIGINAL: and why (grep for it).
 *
 * Build: cc -std=c99 -O2 -march=native retrieval_heads.c -lm -lpthread
 * (Windows: x86_64-w64-mingw32-gcc-posix, the same flags, -static; see README, Platforms.)
 * -march=native picks the kernels (AVX-512, AVX2+FMA+F16C or NEON; without it the scalar
 * ones); -DRH_SIMD_SCALAR forces the scalar kernels whatever the target; -DRH_BF16DOT_ON and
 * -DRH_BF16DOT_OFF choose the bf16 prefill path (see RH_BF16DOT below).
 */
/* Floating point is evaluated as written: a * b + c is a multiply and an add, never fused
 * behind the code's back, so a kernel and its twin (and two builds of one source) give the same
 * bits.  gcc in ISO C mode (-std=c99) already contracts nothing; clang fuses inside an expression
 * unless told not to (the standard pragma); gcc in GNU mode (-std=gnu99) fuses unless told not
 * to (its own pragma: it has no STDC FP_CONTRACT). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "retrieval_heads.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(_WIN32) /* the OS layer of section 5 */
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <io.h>
#include <malloc.h>
#include <windows.h>
#undef O_TEXT /* <fcntl.h>'s text mode (we use _O_BINARY only); section 7 names an option kind so */
#else
#include <sys/mman.h>
#include <sys/resource.h>
#endif

/* ---- build configuration: the kernels this build has (section 5 implements them) ----
 * RH_VL: floats per vector register; RH_MR x RH_NR: the register tile of the prefill GEMM. */
#if defined(RH_SIMD_SCALAR)
#define RH_SIMD_BASE "scalar"
#elif defined(__AVX512F__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RH_AVX512 1
#define RH_VL 16
#define RH_SIMD_BASE "avx512"
#if defined(__AVX512BF16__) && !defined(RH_BF16DOT_OFF) && (defined(RH_BF16DOT_ON) || !defined(__AVX512FP16__))
#define RH_BF16DOT_SIMD 1
#endif
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RH_AVX2 1
#define RH_VL 8
#define RH_SIMD_BASE "avx2+fma+f16c"
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define RH_NEON 1
#define RH_VL 4
#define RH_SIMD_BASE "neon"
#else
#define RH_SIMD_BASE "scalar"
#endif

/* RH_BF16DOT: prefill of bf16 weights runs the bf16 dot-product GEMM (k_gemm_bf16dot) instead of
 * the f32 packed GEMM; elsewhere bf16 weights are converted to f32 panels.  On by default where
 * the compiler targets AVX512_BF16 without AVX512_FP16, which is AMD's Zen 4 and Zen 5 (and
 * Intel's Cooper Lake, untried); -DRH_BF16DOT_ON adds the AVX512_FP16 CPUs (Intel Sapphire
 * Rapids and later), -DRH_BF16DOT_OFF turns it off.  -DRH_BF16DOT_EMULATE turns the path on in
 * any other build with the scalar twin as its kernel (slow: for testing the engine's side of it,
 * packing, scratch and tolerances, on machines without the instruction).  The rule follows the
 * measurements in README.md (Speed): on Zen 5 the bf16 tile runs at 1.7x the f32 tile, on the
 * Sapphire Rapids class Xeon we tried VDPBF16PS issued at half the FMA rate and the path was
 * slower than f32 panels. */
#if defined(RH_BF16DOT_SIMD)
#define RH_BF16DOT 1
#define RH_SIMD_NAME RH_SIMD_BASE "+bf16"
#elif defined(RH_BF16DOT_EMULATE)
#define RH_BF16DOT 1
#define RH_SIMD_NAME RH_SIMD_BASE "+bf16dot-emulated"
#else
#define RH_SIMD_NAME RH_SIMD_BASE
#endif

#if defined(RH_AVX512) || defined(RH_AVX2) || defined(RH_NEON)
#define RH_VEC 1
#endif

#define RH_MR 6
#if defined(RH_VEC)
#define RH_NR (2 * RH_VL)
#else
#define RH_NR 16
#endif

/* scalar twins are unused in SIMD builds except by the tests */
#if defined(__GNUC__)
#define RH_UNUSED __attribute__((unused))
#define RH_INLINE inline __attribute__((always_inline))
#else
#define RH_UNUSED
#define RH_INLINE inline
#endif

/* ---- the utilities every section may use (defined in section 5) ---- */

/* A growable byte buffer; every append checks its allocation and a failure sticks (oom). */
typedef struct {
    char *p;
    size_t n, cap;
    int oom; /* sticky: an allocation failed; the content is then truncated */
} rhm_buf;
static void rhm_buf_free(rhm_buf *b);
static void rhm_buf_put(rhm_buf *b, const char *s, size_t n);
static void rhm_buf_puts(rhm_buf *b, const char *s);
static void rhm_buf_printf(rhm_buf *b, const char *fmt, ...);
static void rhm_buf_json_str(rhm_buf *b, const char *s, size_t n); /* a JSON string literal */
static void rhm_buf_double(rhm_buf *b, double x);                  /* as Python's repr() */
static void rhm_fmt_double(char *out, size_t cap, double x);

/* A parsed JSON value (RFC 8259): rhj_parse reads exactly one, rhj_get looks up a key. */
enum { RHJ_NULL, RHJ_FALSE, RHJ_TRUE, RHJ_NUM, RHJ_STR, RHJ_ARR, RHJ_OBJ };
typedef struct rhj {
    int type;
    double num;
    char *str;         /* RHJ_STR: decoded UTF-8, NUL-terminated (may contain NUL: use len) */
    size_t len;        /* RHJ_STR: byte length */
    int n;             /* RHJ_ARR / RHJ_OBJ: number of items */
    struct rhj *items; /* n values */
    char **keys;       /* RHJ_OBJ: n decoded keys (NUL-terminated) */
    size_t *keylens;
} rhj;
static int rhj_parse(const char *s, size_t n, const char *name, rhj *out, char *err, size_t errcap);
static const rhj *rhj_get(const rhj *o, const char *key);
static void rhj_free(rhj *v);

/* Messages, files, clocks. */
static void set_err(char *err, size_t cap, const char *fmt, ...);
static int rhm_read_file(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                         size_t errcap);
static int rhm_write_atomic(const char *path, const char *data, size_t len, char *err,
                            size_t errcap);
static double rh_now(void);      /* wall clock, seconds */
static double rh_cpu_time(void); /* CPU time of the whole process (all threads), seconds */
/* The OS (section 5: POSIX, or Windows where _WIN32). */
static int rh_n_cpus(void);                      /* online CPUs, 1..256 */
static double rh_memory_limit(void);             /* physical memory (or a lower RLIMIT_AS), bytes; 0 unknown */
static int rh_utc(time_t t, struct tm *out);     /* gmtime_r: 1 on success */
static void *rh_aligned_alloc(size_t align, size_t n); /* free with rh_aligned_free */
static void rh_aligned_free(void *p);
static size_t rh_path_dir_len(const char *path); /* "a/b" -> 2: the folder part, separator included */
static int rh_map_file(const char *path, const unsigned char **p, size_t *n, char *err, size_t errcap);
static void rh_unmap_file(const unsigned char *p, size_t n);
static int rh_file_sync(FILE *f);                /* fflush + fsync: 0 when f's data is on disk */
static int rh_file_replace(const char *tmp, const char *path); /* rename over path, durably: 0 or -1 */
static void rh_stdio_binary(void);               /* for main: stdout/stderr write "\n" as is (Windows) */
/* Little-endian fields of the .rhw format, read and written byte by byte (any host). */
static uint32_t rd_u32(const unsigned char *p);
static uint64_t rd_u64(const unsigned char *p);
static float rd_f32(const unsigned char *p);
static void wr_u32(unsigned char *p, uint32_t v);
static void wr_u64(unsigned char *p, uint64_t v);
static void wr_f32(unsigned char *p, float f);
static int host_is_le(void);
static const char *dtype_name(rh_dtype t);

/* =============================================================================================
 * 1. THE METHOD (Wu et al., 2024)
 *
 *   1.1 needle in a haystack: the haystack, needle placement, prompts, the answer span
 *   1.2 the retrieval score, ROUGE-1 (rouge_score with NLTK's Porter stemmer), score files
 *   1.3 experiments and reports: detect, niah (with masks), report, compare; JSON, CSV, SVG
 *
 * What it may call: the public API of retrieval_heads.h (rh_tokenize, rh_eval, the observe and
 * mask hooks, ...) and the utilities declared at the top of the file; never the model's or the
 * kernels' internals.  Everything here is deterministic: no clock or random source enters a
 * result (the wall time and start time are recorded, never used).
 * ============================================================================================= */
/* ============================================================================================
 * 1.1 Needle in a haystack: the haystack, needle placement, prompts, the answer span
 * ============================================================================================ */

typedef struct {
    char *needle, *question, *answer;
} rhm_needle;

static void rhm_needles_free(rhm_needle *nd, int n) {
    int i;
    for (i = 0; i < n; i++) {
        free(nd[i].needle);
        free(nd[i].question);
        free(nd[i].answer);
    }
    free(nd);
}

/* Needles JSONL: one object per non-blank line with non-empty strings "needle", "question" and
 * "answer" ("real_needle" in the original's files; other keys ignored). */
static int rhm_needles_parse(const char *text, size_t len, const char *name, rhm_needle **out,
                             int *n_out, char *err, size_t errcap) {
    size_t pos = 0;
    int n = 0, cap = 0, line = 0;
    rhm_needle *nd = NULL;
    static const char *const keys[3] = {"needle", "question", "answer"};
    *out = NULL;
    *n_out = 0;
    while (pos < len) {
        const char *ls = text + pos;
        const char *nl = (const char *)memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos, k;
        rhj v;
        int rc, f;
        pos += ll + (nl ? 1 : 0);
        line++;
        for (k = 0; k < ll && (ls[k] == ' ' || ls[k] == '\t' || ls[k] == '\r'); k++) {
        }
        if (k == ll) continue;
        rc = rhj_parse(ls, ll, name, &v, err, errcap);
        if (rc) {
            size_t el = err ? strlen(err) : 0;
            if (err && el + 16 < errcap) snprintf(err + el, errcap - el, " (line %d)", line);
            rhm_needles_free(nd, n);
            return rc;
        }
        if (v.type != RHJ_OBJ) {
            set_err(err, errcap, "%s:%d: expected a JSON object with needle, question, answer", name, line);
            rhj_free(&v);
            rhm_needles_free(nd, n);
            return RH_EFORMAT;
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            rhm_needle *q = nc > 1000000 ? NULL : (rhm_needle *)realloc(nd, (size_t)nc * sizeof *q);
            if (!q) {
                set_err(err, errcap, "%s: too many needles", name);
                rhj_free(&v);
                rhm_needles_free(nd, n);
                return RH_ENOMEM;
            }
            nd = q;
            cap = nc;
        }
        memset(&nd[n], 0, sizeof nd[n]);
        for (f = 0; f < 3; f++) {
            const rhj *s = rhj_get(&v, keys[f]);
            /* the original's files name the answer "real_needle" */
            if (f == 2 && !s) s = rhj_get(&v, "real_needle");
            char **dst = f == 0 ? &nd[n].needle : f == 1 ? &nd[n].question : &nd[n].answer;
            if (!s || s->type != RHJ_STR || s->len == 0 || memchr(s->str, 0, s->len)) {
                set_err(err, errcap, "%s:%d: \"%s\" must be a non-empty string%s", name, line, keys[f],
                        f == 2 ? " (or \"real_needle\", as the original's files have it)" : "");
                rhj_free(&v);
                rhm_needles_free(nd, n + 1);
                return RH_EFORMAT;
            }
            *dst = s->str; /* take ownership */
            ((rhj *)s)->str = NULL;
        }
        n++;
        rhj_free(&v);
    }
    if (n == 0) {
        set_err(err, errcap, "%s: no needles (expected JSON lines with needle, question, answer)", name);
        free(nd);
        return RH_EFORMAT;
    }
    *out = nd;
    *n_out = n;
    return RH_OK;
}

static int rhm_strcmp_pp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.txt files of a folder (not starting with '.'), as "path/name", in byte order of the
 * names; *names malloc'd (free each and the array). */
static int rhm_txt_files(const char *path, char ***names_out, int *n_out, char *err, size_t errcap) {
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    int n = 0, cap = 0, i, rc = RH_OK;
    *names_out = NULL;
    *n_out = 0;
    d = opendir(path);
    if (!d) {
        set_err(err, errcap, "%s: cannot open the folder: %s", path, strerror(errno));
        return RH_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        size_t k = strlen(e->d_name);
        if (k < 5 || e->d_name[0] == '.' || strcmp(e->d_name + k - 4, ".txt")) continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            char **q = nc > 1000000 ? NULL : (char **)realloc(names, (size_t)nc * sizeof *q);
            if (!q) {
                rc = RH_ENOMEM;
                break;
            }
            names = q;
            cap = nc;
        }
        names[n] = (char *)malloc(strlen(path) + k + 2);
        if (!names[n]) {
            rc = RH_ENOMEM;
            break;
        }
        sprintf(names[n], "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    if (rc) {
        set_err(err, errcap, "%s: out of memory", path);
        for (i = 0; i < n; i++) free(names[i]);
        free(names);
        return rc;
    }
    if (n) qsort(names, (size_t)n, sizeof *names, rhm_strcmp_pp);
    *names_out = names;
    *n_out = n;
    return RH_OK;
}

/* The haystack text: a file, or the *.txt files of a folder read in name order (byte order of
 * the names), concatenated as they are. */
static int rhm_haystack_load(const char *path, char **text, size_t *len, char *err,
                             size_t errcap) {
    struct stat st;
    char **names = NULL;
    int n = 0, i, rc = RH_OK;
    rhm_buf b = {0};
    *text = NULL;
    *len = 0;
    if (stat(path, &st) != 0) {
        set_err(err, errcap, "%s: haystack not found: %s", path, strerror(errno));
        return RH_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = rhm_read_file(path, (size_t)1 << 30, text, len, err, errcap);
        if (!rc && *len == 0) {
            set_err(err, errcap, "%s: the haystack file is empty", path);
            free(*text);
            *text = NULL;
            return RH_EFORMAT;
        }
        return rc;
    }
    if ((rc = rhm_txt_files(path, &names, &n, err, errcap)) != RH_OK) return rc;
    if (n == 0) {
        set_err(err, errcap, "%s: no *.txt files in the haystack folder", path);
        rc = RH_EIO;
    }
    for (i = 0; i < n && !rc; i++) {
        char *t;
        size_t tl;
        rc = rhm_read_file(names[i], (size_t)1 << 30, &t, &tl, err, errcap);
        if (rc) break;
        rhm_buf_put(&b, t, tl);
        free(t);
    }
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!rc && b.oom) {
        set_err(err, errcap, "%s: out of memory", path);
        rc = RH_ENOMEM;
    }
    if (!rc && b.n == 0) {
        set_err(err, errcap, "%s: the haystack is empty", path);
        rc = RH_EFORMAT;
    }
    if (rc) {
        rhm_buf_free(&b);
        return rc;
    }
    *text = b.p;
    *len = b.n;
    return RH_OK;
}

/* Token ids of the haystack, repeated as needed, at least `need` of them.  Only a prefix of the
 * (repeated) text long enough is tokenized, cut at a whitespace byte so no word or UTF-8
 * character is split; the cut doubles until it yields enough tokens. */
static int rhm_haystack_tokens(const rh_model *m, const char *text, size_t len, int need,
                               int **ids, int *n, char *err, size_t errcap) {
    size_t want = (size_t)need * 6 + 64;
    for (;;) {
        rhm_buf b = {0};
        size_t cut;
        int rc, whole;
        while (b.n < want && !b.oom) rhm_buf_put(&b, text, len < want - b.n ? len : want - b.n);
        if (b.oom) {
            rhm_buf_free(&b);
            set_err(err, errcap, "haystack: out of memory");
            return RH_ENOMEM;
        }
        cut = b.n;
        whole = 0;
        while (cut > 0 && !isspace((unsigned char)b.p[cut - 1])) cut--;
        if (cut == 0) {
            cut = b.n; /* no whitespace at all: take it all */
            whole = 1;
        }
        rc = rh_tokenize(m, b.p, cut, 0, ids, n, err, errcap);
        rhm_buf_free(&b);
        if (rc) return rc;
        if (*n >= need) return RH_OK;
        free(*ids);
        *ids = NULL;
        if (want > ((size_t)1 << 31) || (whole && want > (size_t)need * 64 + len)) {
            set_err(err, errcap, "haystack: cannot make %d tokens of it", need);
            return RH_ERANGE;
        }
        want *= 2;
    }
}

/* 1 when the tokenizer puts a space before the first word (SentencePiece's dummy prefix, the
 * byte-level add_prefix_space): then a fragment tokenized alone already has its in-context
 * form "▁word" / "Ġword"; otherwise the in-context form is that of " " + fragment. */
static int rhm_has_space_prefix(const rh_model *m) {
    int *ids = NULL, n = 0, r = 0;
    char b[64];
    if (rh_tokenize(m, "a", 1, 0, &ids, &n, NULL, 0) == RH_OK && n > 0) {
        int k = rh_token_bytes(m, ids[0], b, sizeof b);
        r = k > 0 && b[0] == ' ';
    }
    free(ids);
    return r;
}

/* Tokens of a fragment as it appears after a space in running text. */
static int rhm_tokenize_incontext(const rh_model *m, int space_prefix, const char *s, int **ids,
                                  int *n, char *err, size_t errcap) {
    rhm_buf b = {0};
    int rc;
    if (space_prefix) return rh_tokenize(m, s, strlen(s), 0, ids, n, err, errcap);
    rhm_buf_put(&b, " ", 1);
    rhm_buf_puts(&b, s);
    if (b.oom) {
        rhm_buf_free(&b);
        return RH_ENOMEM;
    }
    rc = rh_tokenize(m, b.p, b.n, 0, ids, n, err, errcap);
    rhm_buf_free(&b);
    return rc;
}

/* A sentence ends after context token ids[k - 1]: its bytes' last non-whitespace byte is one of
 * . ! ?  ORIGINAL: it looks for the period token ids of each model family; found here from
 * the decoded bytes of the token, so it works for any tokenizer. */
static int rhm_sentence_end_before(const rh_model *m, const int *ids, int k) {
    char b[256];
    int n;
    if (k <= 0) return 1;
    n = rh_token_bytes(m, ids[k - 1], b, sizeof b);
    if (n <= 0) return 0;
    if (n > (int)sizeof b) n = (int)sizeof b;
    while (n > 0 && isspace((unsigned char)b[n - 1])) n--;
    return n > 0 && (b[n - 1] == '.' || b[n - 1] == '!' || b[n - 1] == '?');
}

/* Where the needle goes in a context of n_ctx tokens at depth percent (0..100): Python's
 * int(n_ctx * (depth / 100)), then back to the previous sentence end (or 0); 100 = the end. */
/* --compat original: it moves the needle back to after a period token ("." or " ." alone: the
 * ids it lists per model family, [29889, 869] for Llama-2), not to any sentence end. */
static int rhm_period_before(const rh_model *m, const int *ids, int k) {
    char b[16];
    int n;
    if (k <= 0) return 1;
    n = rh_token_bytes(m, ids[k - 1], b, sizeof b);
    return (n == 1 && b[0] == '.') || (n == 2 && b[0] == ' ' && b[1] == '.');
}

static int rhm_insertion_point(const rh_model *m, const int *ctx, int n_ctx, double depth, int compat) {
    int ip;
    if (depth >= 100) return n_ctx;
    ip = (int)((double)n_ctx * (depth / 100.0));
    if (ip > n_ctx) ip = n_ctx;
    if (ip < 0) ip = 0;
    while (ip > 0 && !(compat ? rhm_period_before(m, ctx, ip) : rhm_sentence_end_before(m, ctx, ip))) ip--;
    return ip;
}

/* The prompt template: "{context}" and "{question}" each at most once ({question} required);
 * without {context} the context is put first.  Default: the original's. */
#define RHM_DEFAULT_TEMPLATE "{context}Based on the content of the book, Question: {question}\nAnswer:"

typedef struct {
    const rh_model *m;
    int space_prefix;
    int buffer;            /* tokens left for question and answer (--buffer, default 200) */
    const char *tmpl;      /* template with {context} and {question} */
    int span_exact;        /* --span exact */
    int span_whole_prompt; /* --span-search prompt: the original's search over the whole prompt */
    int compat;            /* --compat original: the original's prompt construction (rhm_build_test) */
    const int *hay;        /* haystack tokens */
    int n_hay;
} rhm_niah;

typedef struct {
    int length;          /* target length in tokens */
    double depth;        /* percent */
    int needle;          /* index into the needles */
    int *ids;            /* prompt token ids (BOS as the model says) */
    int n_ids;
    int n_ctx_tokens;    /* context tokens: haystack cut + needle == length - buffer */
    int insert_at;       /* insertion point in the cut haystack (tokens) */
    int needle_lo, needle_hi; /* the needle's token range in the prompt (from byte offsets) */
    int span_start, span_end; /* the answer span in the prompt, -1 when not located */
    int span_variant;    /* 0 in-context form of the answer, 1 the answer tokenized alone */
    char *context;       /* the context text */
} rhm_test;

static void rhm_test_free(rhm_test *t) {
    free(t->ids);
    free(t->context);
    memset(t, 0, sizeof *t);
}

/* Expand the template into b; *ctx_off gets the byte offset of the context in the prompt. */
static void rhm_expand(rhm_buf *b, const char *tmpl, const char *context, size_t clen,
                       const char *question, size_t *ctx_off) {
    const char *p = tmpl;
    int had_ctx = strstr(tmpl, "{context}") != NULL;
    if (!had_ctx) {
        *ctx_off = b->n;
        rhm_buf_put(b, context, clen);
    }
    while (*p) {
        if (!strncmp(p, "{context}", 9)) {
            *ctx_off = b->n;
            rhm_buf_put(b, context, clen);
            p += 9;
        } else if (!strncmp(p, "{question}", 10)) {
            rhm_buf_puts(b, question);
            p += 10;
        } else {
            rhm_buf_put(b, p, 1);
            p++;
        }
    }
}

/* Build one test: cut the haystack to length - buffer tokens including the needle, insert the
 * needle at the depth (moved back to a sentence end), decode to text, wrap in the template,
 * tokenize, and locate the needle and the answer span in the prompt ids.
 * needle_ids: the needle's in-context tokens; ans[2]/n_ans[2]: the answer's in-context tokens
 * and the answer tokenized alone (the original's find_needle_idx input). */
static int rhm_build_test(const rhm_niah *N, const rhm_needle *nd, const int *needle_ids,
                          int n_needle, int *const ans[2], const int n_ans[2], int length,
                          double depth, rhm_test *t, char *err, size_t errcap) {
    const rh_model *m = N->m;
    int room = length - N->buffer, n_cut, ip, rc, k, v;
    int *ctx = NULL;
    char *pre = NULL, *nee = NULL;
    size_t n0 = 0, n1 = 0, clen = 0, ctx_off = 0;
    rhm_buf prompt = {0};
    long *off = NULL;
    rh_decoder dec;
    const int flags = RH_DETOK_STRIP_LEADING | RH_DETOK_SKIP_SPECIAL;

    memset(t, 0, sizeof *t);
    t->length = length;
    t->depth = depth;
    t->span_start = t->span_end = -1;
    t->needle_lo = t->needle_hi = -1;
    if (room - n_needle < 1) {
        set_err(err, errcap, "length %d: too short for the buffer (%d) and the needle (%d tokens)",
                length, N->buffer, n_needle);
        return RH_EINVAL;
    }
    n_cut = room - n_needle;
    if (n_cut > N->n_hay) n_cut = N->n_hay;
    ip = rhm_insertion_point(m, N->hay, n_cut, depth, N->compat);
    ctx = (int *)malloc((size_t)(n_cut + n_needle) * sizeof *ctx);
    if (!ctx) return RH_ENOMEM;
    memcpy(ctx, N->hay, (size_t)ip * sizeof *ctx);
    memcpy(ctx + ip, needle_ids, (size_t)n_needle * sizeof *ctx);
    memcpy(ctx + ip + n_needle, N->hay + ip, (size_t)(n_cut - ip) * sizeof *ctx);
    t->n_ctx_tokens = n_cut + n_needle;
    t->insert_at = ip;
    /* the context text, and the needle's byte range in it: decoded lengths before the needle
     * and through it (decoded from the same first token, so the leading-space handling of the
     * first token is the same in all three) */
    rc = rh_detokenize(m, ctx, ip, flags, &pre, &n0, err, errcap);
    if (!rc) rc = rh_detokenize(m, ctx, ip + n_needle, flags, &nee, &n1, err, errcap);
    if (!rc) rc = rh_detokenize(m, ctx, t->n_ctx_tokens, flags, &t->context, &clen, err, errcap);
    free(ctx);
    ctx = NULL;
    if (rc) goto done;
    rhm_expand(&prompt, N->tmpl, t->context, clen, nd->question, &ctx_off);
    if (prompt.oom) {
        rc = RH_ENOMEM;
        goto done;
    }
    rc = rh_tokenize(m, prompt.p, prompt.n, -1, &t->ids, &t->n_ids, err, errcap);
    if (rc) goto done;
    if (t->n_ids < 1) {
        set_err(err, errcap, "length %d: the prompt has no tokens", length);
        rc = RH_EINVAL;
        goto done;
    }
    /* byte offset of each prompt token in the decoded prompt (the streaming decoder with the
     * flags used above, so a dummy prefix and special tokens count as they did there) */
    off = (long *)malloc((size_t)(t->n_ids + 1) * sizeof *off);
    if (!off) {
        rc = RH_ENOMEM;
        goto done;
    }
    {
        char tb[4096];
        long pos = 0;
        rh_decoder_init(&dec, m, flags);
        for (k = 0; k < t->n_ids; k++) {
            int w;
            off[k] = pos;
            w = rh_decoder_push(&dec, t->ids[k], tb, sizeof tb);
            if (w > 0) pos += w;
        }
        off[t->n_ids] = pos;
    }
    n0 += ctx_off;
    n1 += ctx_off;
    for (k = 0; k < t->n_ids && off[k + 1] <= (long)n0; k++) {
    }
    t->needle_lo = k;
    for (; k < t->n_ids && off[k] < (long)n1; k++) {
    }
    t->needle_hi = k;
    if (N->compat && rh_model_config(m)->add_bos && rh_model_config(m)->bos_id >= 0) {
        /* --compat original: its needle and its context are each tokenized with BOS and decoded
         * back to text with "<s>" kept, so the prompt it runs has a BOS directly before the
         * needle as well as at the start */
        int *q = (int *)realloc(t->ids, (size_t)(t->n_ids + 1) * sizeof *q);
        if (!q) {
            rc = RH_ENOMEM;
            goto done;
        }
        t->ids = q;
        memmove(t->ids + t->needle_lo + 1, t->ids + t->needle_lo, (size_t)(t->n_ids - t->needle_lo) * sizeof *q);
        t->ids[t->needle_lo] = rh_model_config(m)->bos_id;
        t->n_ids++;
        t->needle_lo++;
        t->needle_hi++;
    }
    /* the answer span: first in the needle's tokens (a margin of 2 for merges at its edges),
     * in-context form first.  ORIGINAL: it searched the whole prompt from its start, where the
     * answer's words can also stand in the haystack (--span-search prompt restores that), and
     * only the answer tokenized alone (which differs from its in-context form for byte-level
     * tokenizers) */
    for (v = 0; v < 2 && t->span_start < 0; v++) {
        int s;
        if (N->compat && v == 0) continue; /* the original tries the answer tokenized alone only */
        if (!N->compat && v == 1 && n_ans[1] == n_ans[0] && !memcmp(ans[0], ans[1], (size_t)n_ans[0] * sizeof(int)))
            break;
        if (N->span_whole_prompt)
            s = rh_find_span(t->ids, t->n_ids, 0, t->n_ids, ans[v], n_ans[v], N->span_exact);
        else
            s = rh_find_span(t->ids, t->n_ids, t->needle_lo - 2, t->needle_hi + 2, ans[v], n_ans[v],
                             N->span_exact);
        if (s >= 0) {
            t->span_start = s;
            t->span_end = s + n_ans[v];
            t->span_variant = v;
        }
    }
done:
    free(off);
    free(pre);
    free(nee);
    free(ctx);
    rhm_buf_free(&prompt);
    if (rc) rhm_test_free(t);
    return rc;
}

/* ============================================================================================
 * 1.2 The retrieval score, ROUGE-1 recall, score files, head ranking
 * ============================================================================================ */

/* ---- NLTK's PorterStemmer, mode NLTK_EXTENSIONS (its default; the one rouge_score uses) ----
 * A faithful port of nltk/stem/porter.py (NLTK 3.x): the same steps, the same rule order and
 * "first matching suffix decides" semantics of _apply_rule_list, and NLTK's extensions (the
 * irregular-forms pool, words of <= 2 letters unchanged, 'ies'/'ied' on 4-letter words, the
 * y -> i condition of step 1c, 'alli' first in step 2, 'fulli' and 'logi', the 2-letter *o).
 * Works on bytes: ASCII letters as NLTK does; any other byte is a consonant, as a non-vowel
 * character is in NLTK (ROUGE only ever passes [a-z0-9]). */

/* word[i] is a consonant: not a vowel, and 'y' only when not preceded by a consonant
 * (iteratively: a run of y's alternates from the letter before it). */
static int rhm_cons(const char *w, int i) {
    int j = i, c;
    if (strchr("aeiou", w[i]) && w[i]) return 0;
    if (w[i] != 'y') return 1;
    while (j > 0 && w[j] == 'y') j--;
    if (w[j] == 'y') c = 1; /* j == 0: a leading y is a consonant */
    else c = (w[j] && strchr("aeiou", w[j])) ? 0 : 1;
    for (j = j + 1; j <= i; j++) c = !c;
    return c;
}

/* m of w[0..n): the number of vowel->consonant transitions ("vc" in the cv string). */
static int rhm_measure(const char *w, int n) {
    int i, m = 0, prev_v = 0;
    for (i = 0; i < n; i++) {
        int c = rhm_cons(w, i);
        if (c && prev_v) m++;
        prev_v = !c;
    }
    return m;
}

static int rhm_has_vowel(const char *w, int n) {
    int i;
    for (i = 0; i < n; i++)
        if (!rhm_cons(w, i)) return 1;
    return 0;
}

static int rhm_ends_double(const char *w, int n) {
    return n >= 2 && w[n - 1] == w[n - 2] && rhm_cons(w, n - 1);
}

static int rhm_ends_cvc(const char *w, int n) {
    return (n >= 3 && rhm_cons(w, n - 3) && !rhm_cons(w, n - 2) && rhm_cons(w, n - 1) &&
            w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y') ||
           (n == 2 && !rhm_cons(w, 0) && rhm_cons(w, 1));
}

static int rhm_ends(const char *w, int n, const char *suf) {
    int k = (int)strlen(suf);
    return n >= k && !memcmp(w + n - k, suf, (size_t)k);
}

/* w[0..*n) := w[0..*n-len(suf)) + rep (the buffer has room: callers replace a suffix by one at
 * most 1 byte longer only after removing >= 2 bytes) */
static void rhm_replace(char *w, int *n, const char *suf, const char *rep) {
    int k = (int)strlen(suf), r = (int)strlen(rep);
    memcpy(w + *n - k, rep, (size_t)r);
    *n = *n - k + r;
    w[*n] = 0;
}

enum { RHM_C_NONE, RHM_C_M0, RHM_C_M1, RHM_C_ION, RHM_C_LOGI };
typedef struct {
    const char *suf, *rep;
    int cond;
} rhm_rule;

/* _apply_rule_list: the first rule whose suffix matches decides; if its condition fails the
 * word is returned unchanged (no later rule is tried).  Conditions look at the stem (the word
 * without the suffix). */
static void rhm_rules(char *w, int *n, const rhm_rule *r, int nr) {
    int i;
    for (i = 0; i < nr; i++) {
        if (rhm_ends(w, *n, r[i].suf)) {
            int sl = *n - (int)strlen(r[i].suf), ok;
            switch (r[i].cond) {
            case RHM_C_M0: ok = rhm_measure(w, sl) > 0; break;
            case RHM_C_M1: ok = rhm_measure(w, sl) > 1; break;
            case RHM_C_ION: ok = rhm_measure(w, sl) > 1 && sl > 0 && (w[sl - 1] == 's' || w[sl - 1] == 't'); break;
            case RHM_C_LOGI: ok = rhm_measure(w, *n - 3) > 0; break; /* word[:-3]: keeps the l */
            default: ok = 1;
            }
            if (ok) rhm_replace(w, n, r[i].suf, r[i].rep);
            return;
        }
    }
}

static void rhm_step1a(char *w, int *n) {
    static const rhm_rule r[] = {{"sses", "ss", RHM_C_NONE}, {"ies", "i", RHM_C_NONE},
                                 {"ss", "ss", RHM_C_NONE}, {"s", "", RHM_C_NONE}};
    if (*n == 4 && rhm_ends(w, *n, "ies")) {
        rhm_replace(w, n, "ies", "ie");
        return;
    }
    rhm_rules(w, n, r, 4);
}

static void rhm_step1b(char *w, int *n) {
    int sl;
    if (rhm_ends(w, *n, "ied")) {
        rhm_replace(w, n, "ied", *n == 4 ? "ie" : "i");
        return;
    }
    if (rhm_ends(w, *n, "eed")) {
        if (rhm_measure(w, *n - 3) > 0) rhm_replace(w, n, "eed", "ee");
        return;
    }
    if (rhm_ends(w, *n, "ed") && rhm_has_vowel(w, *n - 2)) sl = *n - 2;
    else if (rhm_ends(w, *n, "ing") && rhm_has_vowel(w, *n - 3)) sl = *n - 3;
    else return;
    *n = sl; /* the intermediate stem */
    w[*n] = 0;
    if (rhm_ends(w, *n, "at")) rhm_replace(w, n, "at", "ate");
    else if (rhm_ends(w, *n, "bl")) rhm_replace(w, n, "bl", "ble");
    else if (rhm_ends(w, *n, "iz")) rhm_replace(w, n, "iz", "ize");
    else if (rhm_ends_double(w, *n)) {
        char last = w[*n - 1];
        if (last != 'l' && last != 's' && last != 'z') {
            (*n)--; /* stem + last letter == drop one of the pair */
            w[*n] = 0;
        }
    } else if (rhm_measure(w, *n) == 1 && rhm_ends_cvc(w, *n)) {
        w[(*n)++] = 'e';
        w[*n] = 0;
    }
}

static void rhm_step1c(char *w, int *n) {
    /* (*c and not c) Y -> I: the stem before y is longer than 1 and ends in a consonant */
    if (rhm_ends(w, *n, "y") && *n - 1 > 1 && rhm_cons(w, *n - 2)) w[*n - 1] = 'i';
}

static void rhm_step2(char *w, int *n) {
    static const rhm_rule r[] = {
        {"ational", "ate", RHM_C_M0}, {"tional", "tion", RHM_C_M0}, {"enci", "ence", RHM_C_M0},
        {"anci", "ance", RHM_C_M0},   {"izer", "ize", RHM_C_M0},    {"bli", "ble", RHM_C_M0},
        {"alli", "al", RHM_C_M0},     {"entli", "ent", RHM_C_M0},   {"eli", "e", RHM_C_M0},
        {"ousli", "ous", RHM_C_M0},   {"ization", "ize", RHM_C_M0}, {"ation", "ate", RHM_C_M0},
        {"ator", "ate", RHM_C_M0},    {"alism", "al", RHM_C_M0},    {"iveness", "ive", RHM_C_M0},
        {"fulness", "ful", RHM_C_M0}, {"ousness", "ous", RHM_C_M0}, {"aliti", "al", RHM_C_M0},
        {"iviti", "ive", RHM_C_M0},   {"biliti", "ble", RHM_C_M0},  {"fulli", "ful", RHM_C_M0},
        {"logi", "log", RHM_C_LOGI}};
    /* NLTK: 'alli' -> 'al' first (if m > 0), then step 2 again on the result */
    while (rhm_ends(w, *n, "alli") && rhm_measure(w, *n - 4) > 0) rhm_replace(w, n, "alli", "al");
    rhm_rules(w, n, r, (int)(sizeof r / sizeof r[0]));
}

static void rhm_step3(char *w, int *n) {
    static const rhm_rule r[] = {{"icate", "ic", RHM_C_M0}, {"ative", "", RHM_C_M0},
                                 {"alize", "al", RHM_C_M0}, {"iciti", "ic", RHM_C_M0},
                                 {"ical", "ic", RHM_C_M0},  {"ful", "", RHM_C_M0},
                                 {"ness", "", RHM_C_M0}};
    rhm_rules(w, n, r, 7);
}

static void rhm_step4(char *w, int *n) {
    static const rhm_rule r[] = {
        {"al", "", RHM_C_M1},   {"ance", "", RHM_C_M1}, {"ence", "", RHM_C_M1},
        {"er", "", RHM_C_M1},   {"ic", "", RHM_C_M1},   {"able", "", RHM_C_M1},
        {"ible", "", RHM_C_M1}, {"ant", "", RHM_C_M1},  {"ement", "", RHM_C_M1},
        {"ment", "", RHM_C_M1}, {"ent", "", RHM_C_M1},  {"ion", "", RHM_C_ION},
        {"ou", "", RHM_C_M1},   {"ism", "", RHM_C_M1},  {"ate", "", RHM_C_M1},
        {"iti", "", RHM_C_M1},  {"ous", "", RHM_C_M1},  {"ive", "", RHM_C_M1},
        {"ize", "", RHM_C_M1}};
    rhm_rules(w, n, r, (int)(sizeof r / sizeof r[0]));
}

static void rhm_step5(char *w, int *n) {
    if (rhm_ends(w, *n, "e")) {
        int m = rhm_measure(w, *n - 1);
        if (m > 1 || (m == 1 && !rhm_ends_cvc(w, *n - 1))) w[--(*n)] = 0;
    }
    /* 5b: (m > 1 and *d and *L) -> single letter; NLTK measures word[:-1] */
    if (rhm_ends(w, *n, "ll") && rhm_measure(w, *n - 1) > 1) w[--(*n)] = 0;
}

size_t rh_porter_stem(const char *word, size_t len, char *out) {
    static const char *const pool[][2] = {
        {"sky", "sky"},         {"skies", "sky"},       {"dying", "die"},
        {"lying", "lie"},       {"tying", "tie"},       {"news", "news"},
        {"innings", "inning"},  {"inning", "inning"},   {"outings", "outing"},
        {"outing", "outing"},   {"cannings", "canning"}, {"canning", "canning"},
        {"howe", "howe"},       {"proceed", "proceed"}, {"exceed", "exceed"},
        {"succeed", "succeed"}};
    size_t i;
    int n;
    /* the pool is looked up with the word as given (NLTK: `word in self.pool`), and answers
     * the lower-cased form */
    for (i = 0; i < sizeof pool / sizeof pool[0]; i++) {
        if (strlen(pool[i][0]) == len && !memcmp(pool[i][0], word, len)) {
            size_t k = strlen(pool[i][1]);
            memcpy(out, pool[i][1], k + 1);
            return k;
        }
    }
    for (i = 0; i < len; i++) out[i] = (char)tolower((unsigned char)word[i]);
    out[len] = 0;
    if (len <= 2 || len > INT_MAX / 2) return len;
    /* a NUL byte inside would end strchr-based tests early: treat such words as opaque */
    if (memchr(word, 0, len)) return len;
    n = (int)len;
    rhm_step1a(out, &n);
    rhm_step1b(out, &n);
    rhm_step1c(out, &n);
    rhm_step2(out, &n);
    rhm_step3(out, &n);
    rhm_step4(out, &n);
    rhm_step5(out, &n);
    out[n] = 0;
    return (size_t)n;
}

/* ---- ROUGE-1 recall as rouge_score computes it (use_stemmer=True) ----
 * tokenize: text.lower() (Unicode: of the non-ASCII characters only U+0130 and U+212A lower to
 * ASCII letters, 'i' + U+0307 and 'k'); every run of characters outside [a-z0-9] -> one space;
 * split; Porter-stem tokens longer than 3 characters.  recall = sum over the reference's
 * unigrams of min(count in reference, count in prediction) / max(reference count, 1). */

typedef struct {
    char **tok;
    int n, cap;
} rhm_toks;

static void rhm_toks_free(rhm_toks *t) {
    int i;
    for (i = 0; i < t->n; i++) free(t->tok[i]);
    free(t->tok);
    t->tok = NULL;
    t->n = t->cap = 0;
}

static int rhm_toks_push(rhm_toks *t, const char *s, size_t k) {
    char *c;
    if (t->n == t->cap) {
        int nc = t->cap ? t->cap * 2 : 16;
        char **nt;
        if (nc > INT_MAX / 2) return -1;
        nt = (char **)realloc(t->tok, (size_t)nc * sizeof *nt);
        if (!nt) return -1;
        t->tok = nt;
        t->cap = nc;
    }
    c = (char *)malloc(k + 3);
    if (!c) return -1;
    if (k > 3) {
        k = rh_porter_stem(s, k, c);
    } else {
        memcpy(c, s, k);
        c[k] = 0;
    }
    t->tok[t->n++] = c;
    return 0;
}

static int rhm_rouge_tokenize(const char *s, size_t n, rhm_toks *t) {
    rhm_buf cur = {0};
    size_t i = 0;
    int rc = 0;
    while (i < n && !rc) {
        unsigned char c = (unsigned char)s[i];
        char lc = 0;
        size_t adv = 1;
        if (c >= 'A' && c <= 'Z') lc = (char)(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) lc = (char)c;
        else if (c == 0xc4 && i + 1 < n && (unsigned char)s[i + 1] == 0xb0) {
            /* U+0130 lowers to "i\u0307": an 'i' that ends the token (U+0307 separates) */
            rhm_buf_put(&cur, "i", 1);
            rc = rhm_toks_push(t, cur.p, cur.n);
            cur.n = 0;
            i += 2;
            continue;
        } else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x84 &&
                   (unsigned char)s[i + 2] == 0xaa) {
            lc = 'k'; /* U+212A KELVIN SIGN */
            adv = 3;
        } else if (c >= 0x80) {
            /* skip the whole character (a separator); invalid bytes one at a time */
            int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1, k;
            for (k = 1; k < len; k++)
                if (i + (size_t)k >= n || ((unsigned char)s[i + k] & 0xc0) != 0x80) break;
            adv = (size_t)k;
        }
        if (lc) {
            rhm_buf_put(&cur, &lc, 1);
        } else if (cur.n) {
            rc = rhm_toks_push(t, cur.p, cur.n);
            cur.n = 0;
        }
        i += adv;
    }
    if (!rc && cur.n) rc = rhm_toks_push(t, cur.p, cur.n);
    if (cur.oom) rc = -1;
    rhm_buf_free(&cur);
    return rc;
}

double rh_rouge1_recall(const char *reference, size_t rlen, const char *prediction,
                        size_t plen) {
    rhm_toks r = {0}, p = {0};
    int i = 0, j = 0;
    long matched = 0;
    double rec;
    if (rhm_rouge_tokenize(reference, rlen, &r) || rhm_rouge_tokenize(prediction, plen, &p)) {
        rhm_toks_free(&r);
        rhm_toks_free(&p);
        return -1.0;
    }
    if (r.n) qsort(r.tok, (size_t)r.n, sizeof *r.tok, rhm_strcmp_pp);
    if (p.n) qsort(p.tok, (size_t)p.n, sizeof *p.tok, rhm_strcmp_pp);
    /* merge the two sorted multisets: each common token counts min(count_r, count_p) */
    while (i < r.n && j < p.n) {
        int c = strcmp(r.tok[i], p.tok[j]);
        if (c == 0) {
            matched++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    rec = (double)matched / (double)(r.n > 1 ? r.n : 1);
    rhm_toks_free(&r);
    rhm_toks_free(&p);
    return rec;
}

/* The original keeps a test when rouge1.recall * 100 > 50 (the same double arithmetic). */
static int rhm_retrieved(double recall) { return recall * 100 > 50; }

/* ---- the retrieval score of one decode step ----
 * top1[i]: the attended position of head i (layer * n_heads + head) for the step that produced
 * `generated`; seq: the whole visible sequence (prompt, then tokens generated so far);
 * span [s, e): the answer inside the needle.  A head copies when its top-1 position lies in the
 * span and the token there is the token just generated: it earns 1/|span|.  Repeats earn again
 * (the original; a test can then exceed 1).  With set_mode (the paper's definition
 * |g_h ∩ k| / |k|) each span position earns at most once per head and test: hit has
 * n_heads_total * (e - s) flags, zeroed at the start of a test.  Returns how many heads
 * earned at this step. */
int rh_retrieval_step(const int32_t *top1, int n_heads_total, const int *seq, int n_seq,
                      int span_start, int span_end, int generated, int set_mode,
                      unsigned char *hit, double *score) {
    int i, k = 0, len = span_end - span_start;
    if (len <= 0 || span_start < 0 || span_end > n_seq) return 0;
    for (i = 0; i < n_heads_total; i++) {
        int j = top1[i];
        if (j < span_start || j >= span_end || seq[j] != generated) continue;
        if (set_mode) {
            if (hit[(size_t)i * (size_t)len + (size_t)(j - span_start)]) continue;
            hit[(size_t)i * (size_t)len + (size_t)(j - span_start)] = 1;
        }
        score[i] += 1.0 / (double)len;
        k++;
    }
    return k;
}

/* ---- answer-span location by token ids ----
 * The first window [i, i + n_ans) inside [from, to) whose token SET overlaps the answer's
 * token set by more than 90 % (|set(window) ∩ set(answer)| / |set(answer)| > 0.9, the
 * original's test), or with exact, whose tokens equal the answer's.  Returns i or -1. */
int rh_find_span(const int *ids, int n_ids, int from, int to, const int *ans, int n_ans,
                 int exact) {
    int i, j, k, n_set = 0;
    int *set;
    if (n_ans <= 0 || !ids || !ans) return -1;
    if (from < 0) from = 0;
    if (to > n_ids) to = n_ids;
    if (to - from < n_ans) return -1;
    if (exact) {
        for (i = from; i + n_ans <= to; i++)
            if (!memcmp(ids + i, ans, (size_t)n_ans * sizeof *ans)) return i;
        return -1;
    }
    /* the answer's distinct ids (n_ans is small: quadratic is fine) */
    set = (int *)malloc((size_t)n_ans * sizeof *set);
    if (!set) return -1;
    for (j = 0; j < n_ans; j++) {
        for (k = 0; k < n_set && set[k] != ans[j]; k++) {
        }
        if (k == n_set) set[n_set++] = ans[j];
    }
    for (i = from; i + n_ans <= to; i++) {
        int inter = 0;
        for (k = 0; k < n_set; k++) {
            for (j = 0; j < n_ans && ids[i + j] != set[k]; j++) {
            }
            if (j < n_ans) inter++;
        }
        if ((double)inter / (double)n_set > 0.9) {
            free(set);
            return i;
        }
    }
    free(set);
    return -1;
}

/* ---- score files: the published form {"layer-head": [score per kept test, ...], ...} ---- */

/* Parse "L-H" (decimal, no sign, no leading zeros beyond "0", each < 100000). */
static int rhm_parse_head_key(const char *k, size_t n, int *layer, int *head) {
    size_t i = 0;
    long v[2];
    int part;
    for (part = 0; part < 2; part++) {
        size_t st = i;
        v[part] = 0;
        while (i < n && k[i] >= '0' && k[i] <= '9') {
            v[part] = v[part] * 10 + (k[i] - '0');
            if (v[part] >= 100000) return -1;
            i++;
        }
        if (i == st || (i - st > 1 && k[st] == '0')) return -1;
        if (part == 0) {
            if (i >= n || k[i] != '-') return -1;
            i++;
        }
    }
    if (i != n) return -1;
    *layer = (int)v[0];
    *head = (int)v[1];
    return 0;
}

void rh_scores_free(rh_scores *s) {
    int i;
    if (!s) return;
    if (s->scores)
        for (i = 0; i < s->n_layers * s->n_heads; i++) free(s->scores[i]);
    free(s->scores);
    free(s->n_tests);
    free(s->present);
    memset(s, 0, sizeof *s);
}

/* An empty score table of the given shape (every head present with no tests). */
int rh_scores_init(rh_scores *s, int n_layers, int n_heads) {
    size_t n;
    memset(s, 0, sizeof *s);
    if (n_layers <= 0 || n_heads <= 0 || n_layers > 100000 || n_heads > 100000 ||
        (long long)n_layers * n_heads > (1 << 22))
        return RH_EINVAL;
    n = (size_t)n_layers * (size_t)n_heads;
    s->n_layers = n_layers;
    s->n_heads = n_heads;
    s->n_tests = (int *)calloc(n, sizeof *s->n_tests);
    s->scores = (double **)calloc(n, sizeof *s->scores);
    s->present = (unsigned char *)malloc(n);
    if (!s->n_tests || !s->scores || !s->present) {
        rh_scores_free(s);
        return RH_ENOMEM;
    }
    memset(s->present, 1, n);
    return RH_OK;
}

/* Append one score to head i. */
int rh_scores_push(rh_scores *s, int i, double v) {
    double *q;
    if (i < 0 || i >= s->n_layers * s->n_heads) return RH_EINVAL;
    if (s->n_tests[i] >= (1 << 24)) return RH_ERANGE;
    q = (double *)realloc(s->scores[i], (size_t)(s->n_tests[i] + 1) * sizeof *q);
    if (!q) return RH_ENOMEM;
    s->scores[i] = q;
    q[s->n_tests[i]++] = v;
    s->present[i] = 1;
    return RH_OK;
}

int rh_scores_parse(const char *text, size_t len, const char *name, rh_scores *out, char *err,
                    size_t errcap) {
    rhj root;
    int rc, i, j, max_l = -1, max_h = -1;
    memset(out, 0, sizeof *out);
    rc = rhj_parse(text, len, name, &root, err, errcap);
    if (rc) return rc;
    if (root.type == RHJ_ARR) {
        /* QRHead's form [["layer-head", score], ...]: each head one score.  Rewritten as the
         * object form, so one reader checks both. */
        rhm_buf o = {0};
        rhm_buf_put(&o, "{", 1);
        for (i = 0; i < root.n; i++) {
            const rhj *e = &root.items[i];
            if (e->type != RHJ_ARR || e->n != 2 || e->items[0].type != RHJ_STR || e->items[1].type != RHJ_NUM) {
                set_err(err, errcap, "%s: item %d of the list is not [\"layer-head\", score] (QRHead's form)", name, i);
                rhj_free(&root);
                rhm_buf_free(&o);
                return RH_EFORMAT;
            }
            rhm_buf_printf(&o, "%s", i ? ", " : "");
            rhm_buf_json_str(&o, e->items[0].str, e->items[0].len);
            rhm_buf_puts(&o, ": [");
            rhm_buf_double(&o, e->items[1].num);
            rhm_buf_puts(&o, "]");
        }
        rhm_buf_put(&o, "}", 1);
        rhj_free(&root);
        if (o.oom) {
            rhm_buf_free(&o);
            return RH_ENOMEM;
        }
        rc = rh_scores_parse(o.p, o.n, name, out, err, errcap);
        rhm_buf_free(&o);
        return rc;
    }
    if (root.type != RHJ_OBJ) {
        set_err(err, errcap, "%s: not a score file: expected a JSON object {\"layer-head\": [scores]} (or QRHead's list "
                "[[\"layer-head\", score], ...])", name);
        rhj_free(&root);
        return RH_EFORMAT;
    }
    if (root.n == 0) {
        set_err(err, errcap, "%s: the score file has no heads", name);
        rhj_free(&root);
        return RH_EFORMAT;
    }
    for (i = 0; i < root.n; i++) {
        int l, h;
        if (rhm_parse_head_key(root.keys[i], root.keylens[i], &l, &h)) {
            set_err(err, errcap, "%s: key \"%.40s\" is not of the form \"layer-head\"", name, root.keys[i]);
            rhj_free(&root);
            return RH_EFORMAT;
        }
        if (root.items[i].type != RHJ_ARR) {
            set_err(err, errcap, "%s: the value of \"%s\" is not a list of scores", name, root.keys[i]);
            rhj_free(&root);
            return RH_EFORMAT;
        }
        for (j = 0; j < root.items[i].n; j++) {
            if (root.items[i].items[j].type != RHJ_NUM) {
                set_err(err, errcap, "%s: \"%s\"[%d] is not a number", name, root.keys[i], j);
                rhj_free(&root);
                return RH_EFORMAT;
            }
        }
        if (l > max_l) max_l = l;
        if (h > max_h) max_h = h;
    }
    rc = rh_scores_init(out, max_l + 1, max_h + 1);
    if (rc) {
        set_err(err, errcap, "%s: %d layers x %d heads is too large", name, max_l + 1, max_h + 1);
        rhj_free(&root);
        return rc == RH_ENOMEM ? rc : RH_EFORMAT;
    }
    memset(out->present, 0, (size_t)out->n_layers * (size_t)out->n_heads);
    for (i = 0; i < root.n; i++) {
        int l, h, idx;
        rhm_parse_head_key(root.keys[i], root.keylens[i], &l, &h);
        idx = l * out->n_heads + h;
        if (out->present[idx]) {
            set_err(err, errcap, "%s: head \"%s\" appears twice", name, root.keys[i]);
            rhj_free(&root);
            rh_scores_free(out);
            return RH_EFORMAT;
        }
        out->present[idx] = 1;
        if (root.items[i].n) {
            out->scores[idx] = (double *)malloc((size_t)root.items[i].n * sizeof(double));
            if (!out->scores[idx]) {
                set_err(err, errcap, "%s: out of memory", name);
                rhj_free(&root);
                rh_scores_free(out);
                return RH_ENOMEM;
            }
            for (j = 0; j < root.items[i].n; j++) out->scores[idx][j] = root.items[i].items[j].num;
        }
        out->n_tests[idx] = root.items[i].n;
    }
    rhj_free(&root);
    return RH_OK;
}

int rh_scores_read(const char *path, rh_scores *out, char *err, size_t errcap) {
    char *data;
    size_t len;
    int rc;
    memset(out, 0, sizeof *out);
    rc = rhm_read_file(path, (size_t)1 << 30, &data, &len, err, errcap);
    if (rc) return rc;
    rc = rh_scores_parse(data, len, path, out, err, errcap);
    free(data);
    return rc;
}

/* The published one-line form, as Python's json.dump writes it: keys in layer-major order,
 * ", " and ": " separators, floats as repr(), zero as the int 0.  No trailing newline
 * (json.dump writes none). */
static void rhm_scores_format(const rh_scores *s, rhm_buf *b) {
    int l, h, j, first = 1;
    rhm_buf_put(b, "{", 1);
    for (l = 0; l < s->n_layers; l++)
        for (h = 0; h < s->n_heads; h++) {
            int i = l * s->n_heads + h;
            if (!s->present[i]) continue;
            rhm_buf_printf(b, "%s\"%d-%d\": [", first ? "" : ", ", l, h);
            first = 0;
            for (j = 0; j < s->n_tests[i]; j++) {
                if (j) rhm_buf_puts(b, ", ");
                /* the original's per-test score starts as the int 0 and becomes a float only
                 * when a step adds to it, so json.dump wrote a never-scoring test as "0" */
                if (s->scores[i][j] == 0) rhm_buf_put(b, "0", 1);
                else rhm_buf_double(b, s->scores[i][j]);
            }
            rhm_buf_put(b, "]", 1);
        }
    rhm_buf_put(b, "}", 1);
}

int rh_scores_write(const char *path, const rh_scores *s, char *err, size_t errcap) {
    rhm_buf b = {0};
    int rc;
    rhm_scores_format(s, &b);
    if (b.oom) {
        rhm_buf_free(&b);
        set_err(err, errcap, "%s: out of memory", path);
        return RH_ENOMEM;
    }
    rc = rhm_write_atomic(path, b.p, b.n, err, errcap);
    rhm_buf_free(&b);
    return rc;
}

double rh_scores_mean(const rh_scores *s, int i) {
    double sum = 0;
    int j;
    if (i < 0 || i >= s->n_layers * s->n_heads || s->n_tests[i] == 0) return 0;
    /* numpy's mean: pairwise summation differs from sequential only in the last bits */
    for (j = 0; j < s->n_tests[i]; j++) sum += s->scores[i][j];
    return sum / s->n_tests[i];
}

/* Heads present in s, ranked by mean score, highest first; ties keep layer-major order (Python's
 * sorted is stable, and the original ranks with it).  *order gets malloc'd indices. */
typedef struct {
    double mean;
    int idx;
} rhm_rank;

static int rhm_rank_cmp(const void *a, const void *b) {
    const rhm_rank *x = (const rhm_rank *)a, *y = (const rhm_rank *)b;
    if (x->mean > y->mean) return -1;
    if (x->mean < y->mean) return 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int rhm_rank_heads(const rh_scores *s, rhm_rank **out, int *n_out) {
    int i, n = 0, tot = s->n_layers * s->n_heads;
    rhm_rank *r = (rhm_rank *)malloc((size_t)(tot > 0 ? tot : 1) * sizeof *r);
    if (!r) return RH_ENOMEM;
    for (i = 0; i < tot; i++) {
        if (!s->present[i]) continue;
        r[n].mean = rh_scores_mean(s, i);
        r[n].idx = i;
        n++;
    }
    qsort(r, (size_t)n, sizeof *r, rhm_rank_cmp);
    *out = r;
    *n_out = n;
    return RH_OK;
}

int rh_scores_write_qrhead(const char *path, const rh_scores *s, char *err, size_t errcap) {
    rhm_buf b = {0};
    rhm_rank *r = NULL;
    int n = 0, i, rc;
    if (rhm_rank_heads(s, &r, &n)) return RH_ENOMEM;
    /* as QRHead's json.dump(list of (head, score), indent=4): highest first */
    rhm_buf_puts(&b, "[");
    for (i = 0; i < n; i++) {
        char t[48];
        rhm_fmt_double(t, sizeof t, r[i].mean);
        rhm_buf_printf(&b, "%s\n    [\n        \"%d-%d\",\n        %s\n    ]", i ? "," : "", r[i].idx / s->n_heads,
                       r[i].idx % s->n_heads, t);
    }
    rhm_buf_puts(&b, n ? "\n]" : "]");
    free(r);
    if (b.oom) {
        rhm_buf_free(&b);
        set_err(err, errcap, "%s: out of memory", path);
        return RH_ENOMEM;
    }
    rc = rhm_write_atomic(path, b.p, b.n, err, errcap);
    rhm_buf_free(&b);
    return rc;
}

/* ============================================================================================
 * 1.3 Experiments and reports: detect, niah (with masks), report, compare
 * ============================================================================================
 * Exit codes of the commands: 0 success; 1 a failure while running (a model evaluation or a
 * write failed); 2 bad usage or bad input found before the first test (a flag, its value, a
 * missing or malformed file, an output that cannot be written). */

#define RHM_EXIT_RUN 1
#define RHM_EXIT_USAGE 2

static uint64_t rhm_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}
#define RHM_FNV0 14695981039346656037ULL

/* splitmix64: the seeded generator for --mask-random */
static uint64_t rhm_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- number, list and grid parsing (every value checked; messages name the flag) ---- */

static int rhm_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    long v;
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int rhm_parse_dbl(const char *s, double lo, double hi, double *out) {
    char *end;
    double v;
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* numpy.linspace(lo, hi, n) element i (start + i * step, the last one exactly hi) */
static double rhm_linspace(double lo, double hi, int n, int i) {
    double step;
    if (n <= 1) return lo;
    if (i == n - 1) return hi;
    step = (hi - lo) / (double)(n - 1);
    return (double)i * step + lo;
}

/* numpy.round(x, decimals): rint(x * 10^d) / 10^d (half to even) */
static double rhm_npround(double x, int decimals) {
    double f = pow(10.0, decimals);
    return decimals ? rint(x * f) / f : rint(x);
}

/* "MIN:MAX:N" (numpy.linspace, rounded to integers as the original) or "a,b,c" or "a".
 * sigmoid (depths only): the original's logistic spacing, 100 / (1 + e^(-0.1 (x - 50))) rounded
 * to 3 decimals, 0 and 100 kept.  Values must lie in [lo, hi]; at most 10000 of them. */
static int rhm_parse_grid(const char *flag, const char *spec, double lo, double hi, int integer,
                          int sigmoid, double **out, int *n_out, char *msg, size_t cap) {
    double *v = NULL;
    int n = 0, i;
    const char *c1 = strchr(spec, ':');
    *out = NULL;
    *n_out = 0;
    if (c1) {
        char a[64], b[64];
        const char *c2 = strchr(c1 + 1, ':');
        double mn, mx;
        long cnt;
        if (!c2 || strchr(c2 + 1, ':') || (size_t)(c1 - spec) >= sizeof a ||
            (size_t)(c2 - c1 - 1) >= sizeof b) {
            set_err(msg, cap, "%s: expected MIN:MAX:N, got \"%s\"", flag, spec);
            return -1;
        }
        memcpy(a, spec, (size_t)(c1 - spec));
        a[c1 - spec] = 0;
        memcpy(b, c1 + 1, (size_t)(c2 - c1 - 1));
        b[c2 - c1 - 1] = 0;
        if (rhm_parse_dbl(a, lo, hi, &mn) || rhm_parse_dbl(b, lo, hi, &mx)) {
            set_err(msg, cap, "%s: MIN and MAX must be numbers in [%g, %g], got \"%s\"", flag, lo, hi, spec);
            return -1;
        }
        if (mn > mx) {
            set_err(msg, cap, "%s: MIN %g is larger than MAX %g", flag, mn, mx);
            return -1;
        }
        if (rhm_parse_long(c2 + 1, 1, 10000, &cnt)) {
            set_err(msg, cap, "%s: N must be an integer in [1, 10000], got \"%s\"", flag, c2 + 1);
            return -1;
        }
        v = (double *)malloc((size_t)cnt * sizeof *v);
        if (!v) return -1;
        for (i = 0; i < (int)cnt; i++) {
            double x = rhm_linspace(mn, mx, (int)cnt, i);
            if (sigmoid) x = x == 0 ? 0 : x == 100 ? 100 : rhm_npround(100.0 / (1.0 + exp(-0.1 * (x - 50.0))), 3);
            else x = rhm_npround(x, 0);
            v[n++] = x;
        }
    } else {
        const char *p = spec;
        v = (double *)malloc(10000 * sizeof *v);
        if (!v) return -1;
        for (;;) {
            char t[64];
            const char *q = strchr(p, ',');
            size_t k = q ? (size_t)(q - p) : strlen(p);
            double x;
            if (k >= sizeof t || n >= 10000) {
                set_err(msg, cap, "%s: bad list \"%s\"", flag, spec);
                free(v);
                return -1;
            }
            memcpy(t, p, k);
            t[k] = 0;
            if (rhm_parse_dbl(t, lo, hi, &x) || (integer && x != floor(x))) {
                set_err(msg, cap, "%s: \"%s\" is not %s in [%g, %g]", flag, t,
                        integer ? "an integer" : "a number", lo, hi);
                free(v);
                return -1;
            }
            v[n++] = x;
            if (!q) break;
            p = q + 1;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* "12-3,7-1" -> flags[layer * n_heads + head] = 1; every head inside the model, no repeats. */
static int rhm_parse_heads(const char *flag, const char *spec, int n_layers, int n_heads,
                           unsigned char *flags, char *msg, size_t cap) {
    const char *p = spec;
    if (!*spec) {
        set_err(msg, cap, "%s: empty list", flag);
        return -1;
    }
    for (;;) {
        const char *q = strchr(p, ',');
        size_t k = q ? (size_t)(q - p) : strlen(p);
        int l, h;
        if (rhm_parse_head_key(p, k, &l, &h)) {
            set_err(msg, cap, "%s: \"%.*s\" is not LAYER-HEAD", flag, (int)(k < 40 ? k : 40), p);
            return -1;
        }
        if (l >= n_layers || h >= n_heads) {
            set_err(msg, cap, "%s: head %d-%d is outside the model (%d layers x %d heads)", flag, l, h,
                    n_layers, n_heads);
            return -1;
        }
        if (flags[l * n_heads + h]) {
            set_err(msg, cap, "%s: head %d-%d is listed twice", flag, l, h);
            return -1;
        }
        flags[l * n_heads + h] = 1;
        if (!q) break;
        p = q + 1;
    }
    return 0;
}

static int rhm_count(const char *s, const char *sub) {
    int n = 0;
    size_t k = strlen(sub);
    while ((s = strstr(s, sub)) != NULL) {
        n++;
        s += k;
    }
    return n;
}

/* --chat: the model's chat template, recognized by its markers.  ORIGINAL: it applies the
 * tokenizer's Jinja template; a Jinja interpreter is out of scope here, so the three families are
 * recognized: ChatML (Qwen; with the default system message when the template has one), Llama-2 /
 * Mistral [INST], Llama-3 headers.  The user turn is the original's:
 * "<book>{context}</book>\nBased on the content of the book, Question: {question}\nAnswer:". */
static char *rhm_chat_template(const rh_model *m, char *msg, size_t cap) {
    size_t n = 0;
    const char *t = rh_model_meta(m, "chat_template", &n);
    rhm_buf b = {0}, src = {0};
    const char *user = "<book>{context}</book>\nBased on the content of the book, Question: {question}\nAnswer:";
    if (!t || !n) {
        set_err(msg, cap, "--chat: the model has no chat_template; use --template");
        return NULL;
    }
    rhm_buf_put(&src, t, n);
    if (!src.p) return NULL;
    if (strstr(src.p, "<|im_start|>")) {
        /* the default system message: a literal "<|im_start|>system\n...<|im_end|>" in the
         * template (its \n written as a Jinja escape or as a real newline), not one built from
         * a message ({{ ... }}) */
        const char *p = src.p;
        while ((p = strstr(p, "<|im_start|>system")) != NULL) {
            const char *q = p + 18, *e;
            if (q[0] == '\\' && q[1] == 'n') q += 2;
            else if (q[0] == '\n') q += 1;
            else {
                p = q;
                continue;
            }
            e = strstr(q, "<|im_end|>");
            if (e && !memchr(q, '{', (size_t)(e - q)) && !memchr(q, '\'', (size_t)(e - q)) && e > q) {
                rhm_buf_puts(&b, "<|im_start|>system\n");
                rhm_buf_put(&b, q, (size_t)(e - q));
                rhm_buf_puts(&b, "<|im_end|>\n");
                break;
            }
            p = q;
        }
        rhm_buf_puts(&b, "<|im_start|>user\n");
        rhm_buf_puts(&b, user);
        rhm_buf_puts(&b, "<|im_end|>\n<|im_start|>assistant\n");
    } else if (strstr(src.p, "<|start_header_id|>")) {
        rhm_buf_puts(&b, "<|start_header_id|>user<|end_header_id|>\n\n");
        rhm_buf_puts(&b, user);
        rhm_buf_puts(&b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    } else if (strstr(src.p, "[INST]")) {
        rhm_buf_puts(&b, "[INST] ");
        rhm_buf_puts(&b, user);
        rhm_buf_puts(&b, " [/INST]");
    } else {
        set_err(msg, cap, "--chat: the model's chat template is none of ChatML, Llama-3, [INST]; use --template");
    }
    rhm_buf_free(&src);
    if (!b.p || b.oom) {
        rhm_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* ---- per-test records: the resume state and the per-test output (JSON lines) ---- */

typedef struct {
    char key[17]; /* config + test fingerprint, 16 hex digits */
    char *line;   /* the JSON line as written */
    rhj v;        /* parsed */
    int own;      /* came from (or goes to) this run's own records file */
} rhm_rec;

typedef struct {
    rhm_rec *r;
    int n, cap;
} rhm_recs;

static void rhm_recs_free(rhm_recs *R) {
    int i;
    for (i = 0; i < R->n; i++) {
        free(R->r[i].line);
        rhj_free(&R->r[i].v);
    }
    free(R->r);
    memset(R, 0, sizeof *R);
}

static rhm_rec *rhm_recs_find(const rhm_recs *R, const char *key) {
    int i;
    for (i = 0; i < R->n; i++)
        if (!strcmp(R->r[i].key, key)) return &R->r[i];
    return NULL;
}

/* Add a record line (copied); a line that is not a JSON object with a 16-hex "key" (a header
 * line, or the torn last line of a killed run) is skipped; a known key keeps its first line. */
static int rhm_recs_add(rhm_recs *R, const char *line, size_t len, int own) {
    rhj v;
    const rhj *k;
    rhm_rec *e;
    if (rhj_parse(line, len, "record", &v, NULL, 0)) return 0;
    k = rhj_get(&v, "key");
    if (!k || k->type != RHJ_STR || k->len != 16 || rhm_recs_find(R, k->str)) {
        rhj_free(&v);
        return 0;
    }
    if (R->n == R->cap) {
        int nc = R->cap ? R->cap * 2 : 64;
        rhm_rec *q = (rhm_rec *)realloc(R->r, (size_t)nc * sizeof *q);
        if (!q) {
            rhj_free(&v);
            return RH_ENOMEM;
        }
        R->r = q;
        R->cap = nc;
    }
    e = &R->r[R->n];
    memcpy(e->key, k->str, 17);
    e->line = (char *)malloc(len + 1);
    if (!e->line) {
        rhj_free(&v);
        return RH_ENOMEM;
    }
    memcpy(e->line, line, len);
    e->line[len] = 0;
    e->v = v;
    e->own = own;
    R->n++;
    return 1;
}

static int rhm_recs_load(rhm_recs *R, const char *path, int own) {
    /* own: the record came from this run's own records file */
    char *data;
    size_t len, pos = 0;
    if (rhm_read_file(path, (size_t)1 << 31, &data, &len, NULL, 0)) return 0; /* absent: fine */
    while (pos < len) {
        const char *ls = data + pos;
        const char *nl = (const char *)memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos;
        if (rhm_recs_add(R, ls, ll, own) < 0) {
            free(data);
            return RH_ENOMEM;
        }
        pos += ll + (nl ? 1 : 0);
    }
    free(data);
    return 0;
}

/* The records files of every shard of this output: BASE.shard-*<suffix> beside BASE, in name
 * order (*names malloc'd, each name too). */
static int rhm_shard_files(const char *base, const char *suffix, char ***names_out, int *n_out) {
    rhm_buf dir = {0}, pre = {0};
    size_t dl = rh_path_dir_len(base);
    char **names = NULL;
    int n = 0, cap = 0, rc = RH_OK;
    DIR *d;
    struct dirent *e;
    *names_out = NULL;
    *n_out = 0;
    if (dl) rhm_buf_put(&dir, base, dl);
    rhm_buf_puts(&pre, base + dl);
    rhm_buf_puts(&pre, ".shard-");
    if (dir.oom || pre.oom) rc = RH_ENOMEM;
    d = rc ? NULL : opendir(dir.p ? dir.p : ".");
    while (d && (e = readdir(d)) != NULL) {
        size_t k = strlen(e->d_name), sl = strlen(suffix);
        if (k <= pre.n + sl || strncmp(e->d_name, pre.p, pre.n) || strcmp(e->d_name + k - sl, suffix)) continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 8;
            char **q = (char **)realloc(names, (size_t)nc * sizeof *q);
            if (!q) { rc = RH_ENOMEM; break; }
            names = q;
            cap = nc;
        }
        names[n] = (char *)malloc(dir.n + k + 1);
        if (!names[n]) { rc = RH_ENOMEM; break; }
        if (dir.n) memcpy(names[n], dir.p, dir.n);
        memcpy(names[n] + dir.n, e->d_name, k + 1);
        n++;
    }
    if (d) closedir(d);
    rhm_buf_free(&dir);
    rhm_buf_free(&pre);
    if (n) qsort(names, (size_t)n, sizeof *names, rhm_strcmp_pp);
    if (rc) {
        while (n > 0) free(names[--n]);
        free(names);
        return rc;
    }
    *names_out = names;
    *n_out = n;
    return RH_OK;
}

/* ---- SVG figures: every one has a viewBox and is sized to what it holds ----
 * Text widths are estimated at RHM_EM_W of the font size per character (an upper bound for the
 * average glyph of a sans-serif face; test/svg_check.sh measures the real widths in Chromium),
 * and the canvas is laid out from them: titles wrap, tick labels thin out or turn, the colour
 * bar keeps its end labels inside. */

#define RHM_EM_W 0.62

static double rhm_text_w(const char *s, double fs) {
    double n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) n++; /* characters, not bytes */
    return n * fs * RHM_EM_W;
}

static void rhm_xml(rhm_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '<') rhm_buf_puts(b, "&lt;");
        else if (*s == '>') rhm_buf_puts(b, "&gt;");
        else if (*s == '&') rhm_buf_puts(b, "&amp;");
        else if (*s == '"') rhm_buf_puts(b, "&quot;");
        else rhm_buf_put(b, s, 1);
    }
}

static void rhm_color(int palette, double t, char *out, size_t cap) {
    /* palette 0: the familiar NIAH map red -> yellow -> green (#F0496E, #EBB839, #0CD79F);
     * palette 1: white -> dark blue for head scores */
    static const int niah[3][3] = {{0xF0, 0x49, 0x6E}, {0xEB, 0xB8, 0x39}, {0x0C, 0xD7, 0x9F}};
    int r, g, b;
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    if (palette == 0) {
        int s = t < 0.5 ? 0 : 1;
        double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
        r = (int)lrint(niah[s][0] + (niah[s + 1][0] - niah[s][0]) * u);
        g = (int)lrint(niah[s][1] + (niah[s + 1][1] - niah[s][1]) * u);
        b = (int)lrint(niah[s][2] + (niah[s + 1][2] - niah[s][2]) * u);
    } else {
        r = (int)lrint(255 + (0x08 - 255) * t);
        g = (int)lrint(255 + (0x30 - 255) * t);
        b = (int)lrint(255 + (0x6B - 255) * t);
    }
    snprintf(out, cap, "#%02x%02x%02x", r, g, b);
}

/* Bytes of the UTF-8 character at s (1 at a stray byte). */
static size_t rhm_char_len(const char *s) {
    size_t k = 1;
    while (s[k] && ((unsigned char)s[k] & 0xc0) == 0x80) k++;
    return k;
}

/* The lines of text wrapped to at most maxw wide (at font size fs), at most max_lines of them (the
 * last ending in "..." when the text is cut); lines[i] point into buf. */
static int rhm_wrap(const char *text, double fs, double maxw, char *buf, size_t cap, char **lines, int max_lines) {
    size_t per = maxw / (fs * RHM_EM_W) > 8 ? (size_t)(maxw / (fs * RHM_EM_W)) : 8, n = 0;
    const char *p = text;
    int k = 0;
    while (k < max_lines) {
        size_t i = 0, chars = 0, last_space = 0, take;
        int cut;
        while (*p == ' ') p++;
        if (!*p) break;
        while (p[i] && chars < per) {
            if (p[i] == ' ') last_space = i;
            i += rhm_char_len(p + i);
            chars++;
        }
        take = !p[i] || p[i] == ' ' || !last_space ? i : last_space;
        cut = k == max_lines - 1 && p[take];
        if (cut) { /* the last line: as much as fits before "..." */
            for (i = 0, chars = 0; i < take && chars + 3 < per; chars++) i += rhm_char_len(p + i);
            take = i;
        }
        if (n + take + 4 > cap) break;
        lines[k++] = buf + n;
        memcpy(buf + n, p, take);
        n += take;
        if (cut) {
            memcpy(buf + n, "...", 3);
            n += 3;
        }
        buf[n++] = 0;
        p += take;
        if (cut) break;
    }
    return k;
}

static void rhm_svg_open(rhm_buf *b, double W, double H, const char *run_json) {
    rhm_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                      "font-family=\"sans-serif\" font-size=\"11\">\n", W, H, W, H);
    if (run_json) {
        rhm_buf_puts(b, "<desc>");
        rhm_xml(b, run_json);
        rhm_buf_puts(b, "</desc>\n");
    }
    rhm_buf_printf(b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
}

/* A wrapped title centred at x from baseline y down; returns the height it took. */
static double rhm_svg_title(rhm_buf *b, const char *title, double x, double y, double maxw) {
    char buf[2048], *lines[6];
    int n = rhm_wrap(title, 14, maxw, buf, sizeof buf, lines, 6), i;
    for (i = 0; i < n; i++) {
        rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" text-anchor=\"middle\">", x, y + 14 + i * 18.0);
        rhm_xml(b, lines[i]);
        rhm_buf_puts(b, "</text>\n");
    }
    return n * 18.0 + 8;
}

/* The height a title takes at width maxw (as rhm_svg_title draws it). */
static double rhm_title_h(const char *title, double maxw) {
    char buf[2048], *lines[6];
    return rhm_wrap(title, 14, maxw, buf, sizeof buf, lines, 6) * 18.0 + 8;
}

/* A heatmap: val has ny rows x nx columns, NAN = no data (grey); colours from vmin to vmax.
 * mark > 0: cells above it are outlined (and the legend says so); show_values: the value in
 * each cell when it fits. */
static void rhm_svg_heatmap(rhm_buf *b, const char *title, const char *xlabel, const char *ylabel, int nx, int ny,
                            char **xt, char **yt, const double *val, double vmin, double vmax, int palette,
                            int show_values, double mark, const char *run_json) {
    const double fs = 11;
    double cw = nx > 40 ? 14 : nx > 16 ? 22 : 48, ch = ny > 40 ? 12 : ny > 16 ? 18 : 28;
    double xtw = 0, ytw = 0, gw = nx * cw, gh = ny * ch, left, top, bar_h, bar_x, right, bottom, W, H, th, lab_w;
    int x, y, stepx, stepy, rot;
    char col[16], lo[32], hi[32], legend[96];
    for (x = 0; x < nx; x++) if (rhm_text_w(xt[x], fs) > xtw) xtw = rhm_text_w(xt[x], fs);
    for (y = 0; y < ny; y++) if (rhm_text_w(yt[y], fs) > ytw) ytw = rhm_text_w(yt[y], fs);
    /* x ticks: horizontal when they fit a cell (or a few cells), else turned to vertical */
    rot = xtw + 4 > 3 * cw;
    stepx = rot ? (int)ceil((fs + 2) / cw) : (int)ceil((xtw + 6) / cw);
    stepy = (int)ceil((fs + 2) / ch);
    if (stepx < 1) stepx = 1;
    if (stepy < 1) stepy = 1;
    snprintf(hi, sizeof hi, "%g", vmax);
    snprintf(lo, sizeof lo, "%g", vmin);
    lab_w = rhm_text_w(hi, fs) > rhm_text_w(lo, fs) ? rhm_text_w(hi, fs) : rhm_text_w(lo, fs);
    left = 10 + fs + 8 + ytw + 6;               /* y label (turned), tick labels */
    bar_h = gh < 100 ? 100 : gh > 240 ? 240 : gh;
    right = 18 + 14 + 6 + lab_w + 10;           /* colour bar and its end labels */
    bottom = (rot ? xtw : fs) + 8 + fs + 12;    /* tick labels, x label */
    legend[0] = 0;
    if (mark > 0) snprintf(legend, sizeof legend, "outlined: mean score > %g", mark);
    if (legend[0]) bottom += fs + 8;
    W = left + gw + right;
    if (W < 400) W = 400;
    if (legend[0] && W < left + rhm_text_w(legend, fs) + 10) W = left + rhm_text_w(legend, fs) + 10;
    if (W < rhm_text_w(xlabel, fs) + 20) W = rhm_text_w(xlabel, fs) + 20;
    th = rhm_title_h(title, W - 20);
    top = 6 + th;
    H = top + (gh > bar_h ? gh : bar_h) + bottom;
    if (H < top + rhm_text_w(ylabel, fs) + 20) H = top + rhm_text_w(ylabel, fs) + 20;
    rhm_svg_open(b, W, H, run_json);
    rhm_svg_title(b, title, W / 2, 6, W - 20);
    for (y = 0; y < ny; y++)
        for (x = 0; x < nx; x++) {
            double v = val[(size_t)y * (size_t)nx + (size_t)x];
            if (isnan(v)) snprintf(col, sizeof col, "#dddddd");
            else rhm_color(palette, vmax > vmin ? (v - vmin) / (vmax - vmin) : 0, col, sizeof col);
            rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#b0b0b0\" "
                              "stroke-width=\"0.5\">", left + x * cw, top + y * ch, cw, ch, col);
            if (!isnan(v)) rhm_buf_printf(b, "<title>%s %s, %s %s: %.4g</title>", xlabel, xt[x], ylabel, yt[y], v);
            rhm_buf_puts(b, "</rect>\n");
            if (mark > 0 && !isnan(v) && v > mark)
                rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#d62728\" "
                                  "stroke-width=\"1.5\"/>\n", left + x * cw + 1, top + y * ch + 1, cw - 2, ch - 2);
            if (show_values && !isnan(v) && cw >= 40 && ch >= fs + 4)
                rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.0f</text>\n",
                               left + x * cw + cw / 2, top + y * ch + ch / 2 + 4, v);
        }
    for (x = 0; x < nx; x += stepx) {
        double cx = left + x * cw + cw / 2, ty = top + gh + 4;
        if (rot)
            rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
                           cx + 4, ty, cx + 4, ty, xt[x]);
        else rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", cx, ty + fs, xt[x]);
    }
    for (y = 0; y < ny; y += stepy)
        rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left - 6, top + y * ch + ch / 2 + 4,
                       yt[y]);
    rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + gw / 2,
                   top + gh + (rot ? xtw : fs) + 8 + fs + 4);
    rhm_xml(b, xlabel);
    rhm_buf_printf(b, "</text>\n<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-90 %.1f %.1f)\" text-anchor=\"middle\">",
                   10 + fs, top + gh / 2, 10 + fs, top + gh / 2);
    rhm_xml(b, ylabel);
    rhm_buf_puts(b, "</text>\n");
    if (legend[0]) {
        rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", left, H - 8);
        rhm_xml(b, legend);
        rhm_buf_puts(b, "</text>\n");
    }
    /* colour bar: vmax at the top, vmin at the bottom, both labels inside the canvas */
    bar_x = left + gw + 18;
    for (y = 0; y < 20; y++) {
        rhm_color(palette, 1.0 - y / 19.0, col, sizeof col);
        rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.2f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n", bar_x, top + y * bar_h / 20,
                       bar_h / 20 + 0.5, col);
    }
    rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" fill=\"none\" stroke=\"#b0b0b0\" stroke-width=\"0.5\"/>\n",
                   bar_x, top, bar_h);
    rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", bar_x + 20, top + fs - 1, hi);
    rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", bar_x + 20, top + bar_h, lo);
    rhm_buf_puts(b, "</svg>\n");
}

/* Axes of a chart: a box from (x0, y0) to (x1, y1) in pixels, ticks at nice steps of the data
 * range [lo, hi] on each axis. */
static double rhm_nice_step(double range, int want) {
    double raw = range / (want > 0 ? want : 1), p = pow(10, floor(log10(raw > 0 ? raw : 1))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void rhm_svg_axes(rhm_buf *b, double x0, double y0, double x1, double y1, double xlo, double xhi, double ylo,
                         double yhi, const char *xlabel, const char *ylabel) {
    double s, v;
    rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#808080\"/>\n", x0, y0,
                   x1 - x0, y1 - y0);
    s = rhm_nice_step(xhi - xlo, 5);
    for (v = ceil(xlo / s) * s; v <= xhi + 1e-9 * s; v += s) {
        double px = x0 + (v - xlo) / (xhi - xlo) * (x1 - x0);
        rhm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#808080\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px, y1, px, y1 + 4, px, y1 + 16, v);
    }
    s = rhm_nice_step(yhi - ylo, 5);
    for (v = ceil(ylo / s) * s; v <= yhi + 1e-9 * s; v += s) {
        double py = y1 - (v - ylo) / (yhi - ylo) * (y1 - y0);
        rhm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#808080\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", x0 - 4, py, x0, py, x0 - 6, py + 4, v);
    }
    rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (x0 + x1) / 2, y1 + 34);
    rhm_xml(b, xlabel);
    rhm_buf_printf(b, "</text>\n<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">",
                   (y0 + y1) / 2, (y0 + y1) / 2);
    rhm_xml(b, ylabel);
    rhm_buf_puts(b, "</text>\n");
}

/* report: the histogram of the heads' mean scores, bins of 0.05 (the first holds exactly 0),
 * the count above each bar, the 0.1 line that makes a retrieval head. */
static void rhm_svg_histogram(rhm_buf *b, const char *title, const double *mean, int n, const char *run_json) {
    int nb, i, *cnt, maxc = 1;
    double top_v = 1.0, W = 560, H, x0 = 56, x1 = W - 20, y0, y1, bw, th;
    for (i = 0; i < n; i++)
        if (mean[i] > top_v) top_v = mean[i];
    nb = 1 + (int)ceil(top_v / 0.05 - 1e-9);
    cnt = (int *)calloc((size_t)nb, sizeof *cnt);
    if (!cnt) return;
    for (i = 0; i < n; i++) {
        int k = mean[i] <= 0 ? 0 : 1 + (int)ceil(mean[i] / 0.05 - 1e-9) - 1;
        if (k >= nb) k = nb - 1;
        if (++cnt[k] > maxc) maxc = cnt[k];
    }
    th = rhm_title_h(title, W - 20);
    y0 = 6 + th + 14;
    y1 = y0 + 240;
    H = y1 + 44;
    rhm_svg_open(b, W, H, run_json);
    rhm_svg_title(b, title, W / 2, 6, W - 20);
    bw = (x1 - x0) / nb;
    for (i = 0; i < nb; i++) {
        double h = (double)cnt[i] / maxc * (y1 - y0), x = x0 + i * bw;
        if (!cnt[i]) continue;
        rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %d heads</title></rect>\n",
                       x + 0.5, y1 - h, bw - 1, h, i && (i - 1) * 0.05 >= 0.1 - 1e-12 ? "#08306b" : "#9ecae1",
                       i == 0 ? "mean 0" : "mean in the bin", cnt[i]);
        rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\">%d</text>\n", x + bw / 2, y1 - h - 3,
                       bw >= 18 ? 10 : 8, cnt[i]);
    }
    {
        double px = x0 + (1 + 0.1 / 0.05) * bw;
        rhm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d62728\">0.1</text>\n", px, y0, px, y1, px + 3, y0 + 11);
    }
    rhm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#808080\"/>\n", x0, y0,
                   x1 - x0, y1 - y0);
    for (i = 1; i <= 4; i++) {
        double v = top_v * i / 4, px = x0 + (1 + v / 0.05) * bw;
        rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px, y1 + 16, v);
    }
    rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">=0</text>\n", x0 + bw / 2, y1 + 16);
    rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">mean retrieval score (bins of 0.05; the first: exactly 0)</text>\n",
                   (x0 + x1) / 2, y1 + 34);
    rhm_buf_printf(b, "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">heads</text>\n",
                   (y0 + y1) / 2, (y0 + y1) / 2);
    rhm_buf_puts(b, "</svg>\n");
    free(cnt);
}

/* compare: each head's mean in A against B, the diagonal, the top retrieval heads (mean > 0.1 in A or
 * B, at most n_label) named. */
static void rhm_svg_scatter(rhm_buf *b, const char *title, const char *xlabel, const char *ylabel, const double *a,
                            const double *bv, char **names, int n, int n_label, const char *run_json) {
    double mx = 0, W = 520, H, x0 = 56, x1 = W - 24, y0, y1, th;
    int i, k;
    unsigned char *lab = (unsigned char *)calloc((size_t)(n > 0 ? n : 1), 1);
    if (!lab) return;
    for (i = 0; i < n; i++) {
        if (a[i] > mx) mx = a[i];
        if (bv[i] > mx) mx = bv[i];
    }
    if (mx <= 0) mx = 1;
    mx *= 1.05;
    for (k = 0; k < n_label && k < n; k++) { /* the k-th highest max(a, b) not yet labelled */
        int best = -1;
        for (i = 0; i < n; i++)
            if (!lab[i] && (best < 0 || (a[i] > bv[i] ? a[i] : bv[i]) > (a[best] > bv[best] ? a[best] : bv[best]))) best = i;
        if (best < 0 || (a[best] <= 0.1 && bv[best] <= 0.1)) break; /* only retrieval heads are named */
        lab[best] = 1;
    }
    th = rhm_title_h(title, W - 20);
    y0 = 6 + th + 6;
    y1 = y0 + (x1 - x0);
    H = y1 + 44;
    rhm_svg_open(b, W, H, run_json);
    rhm_svg_title(b, title, W / 2, 6, W - 20);
    rhm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c0c0c0\" stroke-dasharray=\"4 3\"/>\n", x0, y1,
                   x1, y0);
    rhm_svg_axes(b, x0, y0, x1, y1, 0, mx, 0, mx, xlabel, ylabel);
    for (i = 0; i < n; i++) {
        double px = x0 + a[i] / mx * (x1 - x0), py = y1 - bv[i] / mx * (y1 - y0);
        rhm_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>%s: %.4g, %.4g</title></circle>\n", px, py,
                       lab[i] ? "#d62728" : "#3182bd", names[i], a[i], bv[i]);
        if (lab[i]) {
            /* the label right of the point, or left of it near the right edge */
            int left_side = px + 6 + rhm_text_w(names[i], 10) > x1;
            rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\"%s>%s</text>\n", left_side ? px - 5 : px + 5,
                           py - 4 < y0 + 10 ? py + 12 : py - 4, left_side ? " text-anchor=\"end\"" : "", names[i]);
        }
    }
    rhm_buf_puts(b, "</svg>\n");
    free(lab);
}

/* niah --kv-sweep: a line per series (n_s series of n_p points each: x[s * n_p + i], y[...]; NAN:
 * no point), its name in the legend at the right; level (if not NAN): a dashed horizontal line
 * named level_name. */
static void rhm_svg_lines(rhm_buf *b, const char *title, const char *xlabel, const char *ylabel, int n_s,
                          const char *const *names, const double *x, const double *y, int n_p, double level,
                          const char *level_name, const char *run_json) {
    static const char *const col[4] = {"#d62728", "#1f77b4", "#7f7f7f", "#2ca02c"};
    double W = 600, H, x0 = 56, x1, y0, y1, th, xhi = 0, lw = 0, yhi = 100;
    int s, i, k;
    for (s = 0; s < n_s; s++)
        if (rhm_text_w(names[s], 11) > lw) lw = rhm_text_w(names[s], 11);
    if (level_name && rhm_text_w(level_name, 11) > lw) lw = rhm_text_w(level_name, 11);
    x1 = W - 24 - lw - 24;
    for (k = 0; k < n_s * n_p; k++)
        if (!isnan(x[k]) && x[k] > xhi) xhi = x[k];
    xhi = xhi > 0 ? xhi * 1.1 : 1;
    th = rhm_title_h(title, W - 20);
    y0 = 6 + th + 6;
    y1 = y0 + 300;
    H = y1 + 44;
    rhm_svg_open(b, W, H, run_json);
    rhm_svg_title(b, title, W / 2, 6, W - 20);
    rhm_svg_axes(b, x0, y0, x1, y1, 0, xhi, 0, yhi, xlabel, ylabel);
    if (!isnan(level)) {
        double py = y1 - level / yhi * (y1 - y0);
        rhm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\" stroke-dasharray=\"5 3\"/>\n",
                       x0, py, x1, py);
    }
    for (s = 0; s < n_s; s++) {
        int started = 0;
        rhm_buf_puts(b, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"");
        rhm_buf_puts(b, col[s % 4]);
        rhm_buf_puts(b, "\" points=\"");
        for (i = 0; i < n_p; i++) {
            k = s * n_p + i;
            if (isnan(x[k]) || isnan(y[k])) continue;
            rhm_buf_printf(b, "%s%.1f,%.1f", started ? " " : "", x0 + x[k] / xhi * (x1 - x0), y1 - y[k] / yhi * (y1 - y0));
            started = 1;
        }
        rhm_buf_puts(b, "\"/>\n");
        for (i = 0; i < n_p; i++) {
            k = s * n_p + i;
            if (isnan(x[k]) || isnan(y[k])) continue;
            rhm_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", x0 + x[k] / xhi * (x1 - x0),
                           y1 - y[k] / yhi * (y1 - y0), col[s % 4]);
            rhm_xml(b, names[s]);
            rhm_buf_printf(b, ": %.4g, %.4g</title></circle>\n", x[k], y[k]);
        }
    }
    /* the legend */
    for (s = 0; s <= n_s; s++) {
        double ly = y0 + 14 + s * 18.0;
        const char *nm = s < n_s ? names[s] : level_name;
        if (s == n_s && (isnan(level) || !level_name)) break;
        rhm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\"%s/>", x1 + 12,
                       ly - 4, x1 + 30, ly - 4, s < n_s ? col[s % 4] : "#000000", s < n_s ? "" : " stroke-dasharray=\"5 3\"");
        rhm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x1 + 34, ly);
        rhm_xml(b, nm);
        rhm_buf_puts(b, "</text>\n");
    }
    rhm_buf_puts(b, "</svg>\n");
}

/* ---- CSV (RFC 4180 quoting) ---- */
static void rhm_csv_field(rhm_buf *b, const char *s, size_t n) {
    size_t i;
    int q = 0;
    for (i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') q = 1;
    if (!q) {
        rhm_buf_put(b, s, n);
        return;
    }
    rhm_buf_put(b, "\"", 1);
    for (i = 0; i < n; i++) {
        if (s[i] == '"') rhm_buf_put(b, "\"", 1);
        rhm_buf_put(b, s + i, 1);
    }
    rhm_buf_put(b, "\"", 1);
}

/* ---- choosing heads (masks): a list, the top K of a score file, or K random non-retrieval
 * heads of it ---- */

int rh_head_pick_resolve(const rh_head_pick *pick, const char *flag, int n_layers, int n_heads,
                         unsigned char *flags, char **label, char *err, size_t errcap) {
    static const char *const kind_name[4] = {"none", "heads", "top", "random"};
    int n_lh = n_layers * n_heads, i, k, n_sel = 0, rc = RH_OK;
    rhm_buf lb = {0};
    char fname[64];
    if (label) *label = NULL;
    if (flags) memset(flags, 0, (size_t)n_lh);
    if (!pick || pick->kind == RH_PICK_NONE) {
        if (label) {
            rhm_buf_puts(&lb, "none");
            if (lb.oom) return RH_ENOMEM;
            *label = lb.p;
        }
        return RH_OK;
    }
    if ((int)pick->kind < 0 || (int)pick->kind > RH_PICK_RANDOM) {
        set_err(err, errcap, "%s: unknown kind of head choice %d", flag, (int)pick->kind);
        return RH_EINVAL;
    }
    if (!flags) {
        set_err(err, errcap, "%s: no flags to set", flag);
        return RH_EINVAL;
    }
    snprintf(fname, sizeof fname, "%s-%s", flag, kind_name[pick->kind]);
    if (pick->kind == RH_PICK_HEADS) {
        if (!pick->heads || rhm_parse_heads(fname, pick->heads, n_layers, n_heads, flags, err, errcap))
            return RH_EINVAL;
    } else {
        rh_scores s;
        rhm_rank *r = NULL;
        int n_r = 0;
        if (pick->k < 1) {
            set_err(err, errcap, "%s: K = %d, expected at least 1", fname, pick->k);
            return RH_EINVAL;
        }
        if (!pick->scores) {
            set_err(err, errcap, "%s needs --scores FILE", fname);
            return RH_EINVAL;
        }
        if (rh_scores_read(pick->scores, &s, err, errcap)) {
            char t[512];
            snprintf(t, sizeof t, "--scores: %s", err ? err : "");
            set_err(err, errcap, "%s", t);
            return RH_EINVAL;
        }
        for (i = 0; i < s.n_layers * s.n_heads; i++)
            if (s.present[i] && (i / s.n_heads >= n_layers || i % s.n_heads >= n_heads)) {
                set_err(err, errcap, "--scores: %s has head %d-%d, outside the model (%d layers x %d heads)",
                        pick->scores, i / s.n_heads, i % s.n_heads, n_layers, n_heads);
                rh_scores_free(&s);
                return RH_EINVAL;
            }
        if (rhm_rank_heads(&s, &r, &n_r)) {
            rh_scores_free(&s);
            return RH_ENOMEM;
        }
        if (pick->kind == RH_PICK_TOP) {
            if (n_r == 0 || r[0].mean <= 0) {
                set_err(err, errcap, "%s: every head of %s has mean score 0: there is no retrieval head to mask", fname,
                        pick->scores);
                rc = RH_EINVAL;
            } else if (pick->k > n_r) {
                set_err(err, errcap, "%s: K = %d is more than the %d heads in %s", fname, pick->k, n_r, pick->scores);
                rc = RH_EINVAL;
            }
            for (k = 0; !rc && k < pick->k; k++) {
                int idx = r[k].idx;
                flags[idx / s.n_heads * n_heads + idx % s.n_heads] = 1;
            }
        } else {
            /* ORIGINAL: its sampler drew anew, unseeded, for every test and could draw retrieval
             * heads; here K heads among those with mean < 0.1, drawn once per run, seeded */
            int *elig = (int *)malloc((size_t)(n_r > 0 ? n_r : 1) * sizeof *elig), ne = 0;
            uint64_t st = pick->seed;
            if (!elig) rc = RH_ENOMEM;
            for (i = 0; !rc && i < s.n_layers * s.n_heads; i++)
                if (s.present[i] && rh_scores_mean(&s, i) < 0.1) elig[ne++] = i;
            if (!rc && pick->k > ne) {
                set_err(err, errcap, "%s: K = %d is more than the %d heads with mean score < 0.1 in %s", fname,
                        pick->k, ne, pick->scores);
                rc = RH_EINVAL;
            }
            for (k = 0; !rc && k < pick->k; k++) {
                int j = k + (int)(rhm_rand(&st) % (uint64_t)(ne - k)), tmp = elig[k], idx;
                elig[k] = elig[j];
                elig[j] = tmp;
                idx = elig[k];
                flags[idx / s.n_heads * n_heads + idx % s.n_heads] = 1;
            }
            free(elig);
        }
        free(r);
        rh_scores_free(&s);
        if (rc) return rc;
    }
    if (label) {
        for (i = 0; i < n_lh; i++) n_sel += flags[i];
        rhm_buf_printf(&lb, "%s-%d:", kind_name[pick->kind], n_sel);
        for (i = 0; i < n_lh; i++)
            if (flags[i]) rhm_buf_printf(&lb, " %d-%d", i / n_heads, i % n_heads);
        if (lb.oom) {
            rhm_buf_free(&lb);
            return RH_ENOMEM;
        }
        *label = lb.p;
    }
    return RH_OK;
}

/* ---- the KV policy of a run (rh_ctx_params.kv_window): the kept heads, its label, its record ---- */

/* With ctx->kv_window > 0: pick's heads as n_layers * n_heads flags (*keep, NULL when pick
 * names none) and the label "sinks S, window W, full: top-3: 2-0 ..." (else "full"). */
static int rhm_kv_setup(const rh_head_pick *pick, const rh_ctx_params *ctx, int n_layers, int n_heads,
                        unsigned char **keep, char **label, char *msg, size_t cap) {
    char *hl = NULL;
    rhm_buf b = {0};
    int rc;
    *keep = NULL;
    *label = NULL;
    if (ctx->kv_window <= 0) {
        if (pick && pick->kind != RH_PICK_NONE) {
            set_err(msg, cap, "--kv-keep: heads to keep full without a window (kv_window 0)");
            return RH_EINVAL;
        }
        rhm_buf_puts(&b, "full");
    } else {
        if (pick && pick->kind != RH_PICK_NONE && !(*keep = (unsigned char *)calloc((size_t)n_layers * n_heads, 1)))
            return RH_ENOMEM;
        rc = rh_head_pick_resolve(*keep ? pick : NULL, "--kv-keep", n_layers, n_heads, *keep, &hl, msg, cap);
        if (rc) {
            free(*keep);
            *keep = NULL;
            return rc;
        }
        rhm_buf_printf(&b, "sinks %d, window %d, full: %s", ctx->kv_sinks, ctx->kv_window, hl);
        free(hl);
    }
    if (b.oom) {
        free(*keep);
        *keep = NULL;
        rhm_buf_free(&b);
        return RH_ENOMEM;
    }
    *label = b.p;
    return RH_OK;
}

/* "kv_policy": {...} or null, "kv_cache_bytes": ..., "kv_cache_full_bytes": ... (z: the run's
 * context as rh_ctx_sizes_of counts it; NULL: not known, null). */
static void rhm_kv_json(rhm_buf *b, const rh_ctx_params *ctx, const char *label, const rh_ctx_sizes *z) {
    if (ctx->kv_window > 0) {
        rhm_buf_printf(b, ", \"kv_policy\": {\"window\": %d, \"sinks\": %d, \"label\": ", ctx->kv_window, ctx->kv_sinks);
        rhm_buf_json_str(b, label, strlen(label));
        if (z) rhm_buf_printf(b, ", \"kv_heads_full\": %d, \"kv_heads\": %d}", z->kv_heads_full, z->kv_heads);
        else rhm_buf_puts(b, "}");
    } else {
        rhm_buf_puts(b, ", \"kv_policy\": null");
    }
    if (z && z->n_ctx > 0)
        rhm_buf_printf(b, ", \"kv_cache_bytes\": %.0f, \"kv_cache_full_bytes\": %.0f", z->kv_bytes, z->kv_full_bytes);
    else rhm_buf_puts(b, ", \"kv_cache_bytes\": null, \"kv_cache_full_bytes\": null");
}

/* ---- the experiment: its state, set up from an rh_experiment ----
 * rh_experiment_run (below) reads as the method does: set up (load and check every input),
 * plan (the tests of this shard, the finished ones of earlier runs), run each test through the
 * hooks (rhm_generate), write the outputs. */

const char *const rh_span_rule_names[] = {"overlap", "exact", NULL};
const char *const rh_span_search_names[] = {"needle", "prompt", NULL};
const char *const rh_depth_spacing_names[] = {"linear", "sigmoid", NULL};

typedef struct {
    char *text; /* the haystack as read */
    size_t len;
    int *ids;   /* its tokens, repeated as needed, enough for the longest test */
    int n;
} rhm_hay;

typedef struct {
    rh_experiment X; /* what was asked (strings are the caller's) */
    int is_detect;
    rh_model *m;
    const rh_config *cfg;
    int n_lh; /* n_layers * n_heads */
    char checksum[17];
    int *lengths;
    double *depths;
    int n_len, n_dep;
    rhm_needle *nd;
    int n_nd, needle_first; /* the needles used: [needle_first, needle_first + n_nd) of the file */
    char *tmpl;
    rhm_hay *hays; /* one haystack, or one per needle (a folder of part1/, part2/, ...) */
    int n_hays;
    uint64_t hays_hash;
    int space_prefix;
    int **needle_ids, *n_needle_ids, **ans0, *n_ans0, **ans1, *n_ans1;
    unsigned char *mask; /* niah: n_lh flags, or NULL */
    char *mask_label;    /* "none", "top-5: 1-2 0-3 ...", ... */
    unsigned char *kv_keep; /* the KV policy's kept heads (n_lh flags), or NULL */
    char *kv_label;      /* "full", "sinks 4, window 64, full: top-3: ..." */
    rh_ctx_sizes kv_sz;  /* the run's context as counted (n_ctx 0: not planned) */
    uint64_t cfg_hash;
    rhm_buf base, rec_path, svg_path, run_path, csv_path, score_path;
    rhm_buf unsharded_base, unsharded_rec, unsharded_run; /* the output without --shard */
    uint64_t needles_hash; /* of the needles used */
    rhm_buf score_keys;    /* detect: "key", "key", ... of the tests in the score file's lists */
    uint64_t score_fnv;    /* FNV-1a of the score file as written */
    rh_scores old;
    int have_old;
    double t0;
    char started[32];
    int n_tests, n_mine, n_done_before, n_run;
    int threads; /* the worker threads used (0 resolved to the online CPUs) */
} rhm_exp;

static void rhm_exp_free(rhm_exp *E) {
    int i;
    free(E->lengths);
    free(E->depths);
    if (E->needle_ids)
        for (i = 0; i < E->n_nd; i++) {
            free(E->needle_ids[i]);
            free(E->ans0[i]);
            free(E->ans1[i]);
        }
    free(E->needle_ids);
    free(E->n_needle_ids);
    free(E->ans0);
    free(E->n_ans0);
    free(E->ans1);
    free(E->n_ans1);
    rhm_needles_free(E->nd, E->n_nd);
    free(E->tmpl);
    for (i = 0; E->hays && i < E->n_hays; i++) {
        free(E->hays[i].text);
        free(E->hays[i].ids);
    }
    free(E->hays);
    free(E->mask);
    free(E->mask_label);
    free(E->kv_keep);
    free(E->kv_label);
    rhm_buf_free(&E->base);
    rhm_buf_free(&E->rec_path);
    rhm_buf_free(&E->svg_path);
    rhm_buf_free(&E->run_path);
    rhm_buf_free(&E->csv_path);
    rhm_buf_free(&E->unsharded_rec);
    rhm_buf_free(&E->unsharded_base);
    rhm_buf_free(&E->unsharded_run);
    rhm_buf_free(&E->score_keys);
    rhm_buf_free(&E->score_path);
    if (E->have_old) rh_scores_free(&E->old);
    if (E->m && E->m != E->X.model_handle) rh_model_close(E->m);
    memset(E, 0, sizeof *E);
}

static void rhm_note(const rhm_exp *E, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    if (!E->X.note) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    E->X.note(E->X.user, line);
}

/* The configuration of a run: the build, the model and every input and option that changes a
 * result, each as a JSON string.  A run resumes an earlier one only when all of it agrees
 * (rhm_config_differs); threads, paths and the shard do not change results and are not in it. */
static void rhm_config_json(const rhm_exp *E, rhm_buf *b) {
    const rh_experiment *X = &E->X;
    int i;
    char t[64];
    rhm_buf_puts(b, "{\"build\": ");
    rhm_buf_json_str(b, rh_build(), strlen(rh_build()));
    rhm_buf_printf(b, ", \"model_checksum\": \"fnv1a64:%s\", \"experiment\": \"%s\", \"context_lengths\": \"", E->checksum,
                   E->is_detect ? "detect" : "niah");
    for (i = 0; i < E->n_len; i++) rhm_buf_printf(b, "%s%d", i ? "," : "", E->lengths[i]);
    rhm_buf_puts(b, "\", \"depth_percents\": \"");
    for (i = 0; i < E->n_dep; i++) {
        rhm_fmt_double(t, sizeof t, E->depths[i]);
        rhm_buf_printf(b, "%s%s", i ? "," : "", t);
    }
    rhm_buf_printf(b, "\", \"needles\": \"%d..%d of %016llx\", \"haystack\": \"%016llx\", \"buffer\": \"%d\", \"template\": ",
                   E->needle_first, E->needle_first + E->n_nd - 1, (unsigned long long)E->needles_hash,
                   (unsigned long long)E->hays_hash, X->buffer);
    rhm_buf_json_str(b, E->tmpl, strlen(E->tmpl));
    rhm_buf_printf(b, ", \"span\": \"%s\", \"span_search\": \"%s\", \"max_new\": \"%d\"", rh_span_rule_names[X->span],
                   rh_span_search_names[X->span_search], X->max_new);
    if (E->is_detect) {
        rhm_buf_printf(b, ", \"score\": \"%s\"", X->score_set ? "set" : "repeats");
    } else {
        rhm_buf_puts(b, ", \"mask\": ");
        rhm_buf_json_str(b, E->mask_label, strlen(E->mask_label));
        rhm_buf_printf(b, ", \"mask_mode\": \"%s\", \"mask_steps\": \"%s\"", rh_mask_mode_names[X->mask_mode],
                       X->mask_prefill ? "prefill and decode" : "decode only");
    }
    rhm_buf_printf(b, ", \"kv_cache\": \"%s\", \"forward\": \"%s\", \"compat\": \"%s\"", rh_dtype_names[X->ctx.kv_dtype],
                   X->ctx.reference ? "reference" : "fast", X->compat_original ? "original" : "none");
    /* the KV policy changes results: in the configuration only when there is one (earlier
     * records stay valid) */
    if (X->ctx.kv_window > 0) {
        rhm_buf_puts(b, ", \"kv_policy\": ");
        rhm_buf_json_str(b, E->kv_label, strlen(E->kv_label));
    }
    rhm_buf_puts(b, "}");
}

/* The run record (BASE.run.json): what made an output (program, command line, model, the
 * configuration and its fingerprint, seed, threads, shard, start and wall time, test counts). */
static void rhm_run_json(const rhm_exp *E, rhm_buf *b, int finished) {
    const rh_experiment *X = &E->X;
    int i;
    rhm_buf_puts(b, "{\"program\": \"retrieval_heads\", \"version\": \"" RH_VERSION "\", \"command\": [\"retrieval_heads\"");
    for (i = 0; X->argv && i < X->argc; i++) {
        rhm_buf_puts(b, ", ");
        rhm_buf_json_str(b, X->argv[i], strlen(X->argv[i]));
    }
    rhm_buf_puts(b, "], \"model\": ");
    rhm_buf_json_str(b, X->model, strlen(X->model));
    rhm_buf_printf(b, ", \"layers\": %d, \"heads\": %d, \"needles_file\": ", E->cfg->n_layers, E->cfg->n_heads);
    rhm_buf_json_str(b, X->needles, strlen(X->needles));
    rhm_buf_puts(b, ", \"haystack_path\": ");
    rhm_buf_json_str(b, X->haystack, strlen(X->haystack));
    rhm_buf_printf(b, ", \"depth_spacing\": \"%s\", \"config\": ", rh_depth_spacing_names[X->depth_spacing]);
    rhm_config_json(E, b);
    rhm_buf_printf(b, ", \"fingerprint\": \"%016llx\"", (unsigned long long)E->cfg_hash);
    rhm_kv_json(b, &X->ctx, E->kv_label, E->kv_sz.n_ctx ? &E->kv_sz : NULL);
    if (!E->is_detect && X->mask.kind == RH_PICK_RANDOM)
        rhm_buf_printf(b, ", \"seed\": %llu", (unsigned long long)X->mask.seed);
    else rhm_buf_puts(b, ", \"seed\": null");
    rhm_buf_printf(b, ", \"threads\": %d, \"shard\": \"%d/%d\", \"started_utc\": \"%s\", \"wall_s\": %.3f",
                   E->threads, X->shard_i + 1, X->shard_n, E->started, rh_now() - E->t0);
    rhm_buf_printf(b, ", \"tests\": {\"grid\": %d, \"this_shard\": %d, \"resumed\": %d, \"run\": %d}, \"finished\": %s",
                   E->n_tests, E->n_mine, E->n_done_before, E->n_run, finished ? "true" : "false");
    if (E->is_detect && E->score_keys.n) {
        rhm_buf_printf(b, ", \"score_file_fnv\": \"%016llx\", \"score_tests\": [", (unsigned long long)E->score_fnv);
        rhm_buf_put(b, E->score_keys.p, E->score_keys.n);
        rhm_buf_puts(b, "]");
    }
    rhm_buf_puts(b, "}");
}

/* Whether the run record at path was made by another configuration: RH_OK when it agrees (or
 * does not exist: *absent = 1), RH_EINVAL with what differs in msg ("kernels ... -> ..."). */
static int rhm_config_differs(const rhm_exp *E, const char *path, int *absent, char *msg, size_t cap) {
    char *data = NULL;
    size_t len;
    rhj old, now;
    const rhj *oc;
    rhm_buf b = {0}, diff = {0};
    int i, rc = RH_OK, nd = 0;
    *absent = 0;
    if (rhm_read_file(path, (size_t)1 << 30, &data, &len, NULL, 0) != RH_OK) {
        *absent = 1;
        return RH_OK;
    }
    rhm_config_json(E, &b);
    if (b.oom || rhj_parse(b.p, b.n, "config", &now, NULL, 0)) {
        free(data);
        rhm_buf_free(&b);
        return RH_ENOMEM;
    }
    if (rhj_parse(data, len, path, &old, NULL, 0) || !(oc = rhj_get(&old, "config")) || oc->type != RHJ_OBJ) {
        set_err(msg, cap, "%s: not a run record of this version (no \"config\"); --fresh starts over, or give -o another name",
                path);
        if (!rhj_parse(data, len, path, &old, NULL, 0)) rhj_free(&old);
        rc = RH_EINVAL;
    } else {
        for (i = 0; i < now.n && nd < 3; i++) {
            const rhj *o = rhj_get(oc, now.keys[i]);
            const rhj *v = &now.items[i];
            if (o && o->type == RHJ_STR && o->len == v->len && !memcmp(o->str, v->str, v->len)) continue;
            rhm_buf_printf(&diff, "%s%s %.60s -> %.60s", nd ? "; " : "", now.keys[i], o && o->type == RHJ_STR ? o->str : "(none)",
                           v->str);
            nd++;
        }
        for (i = 0; i < oc->n && nd < 3; i++)
            if (!rhj_get(&now, oc->keys[i])) {
                rhm_buf_printf(&diff, "%s%s (not in this version)", nd ? "; " : "", oc->keys[i]);
                nd++;
            }
        if (nd) {
            set_err(msg, cap, "%s was made by another configuration (%s); --fresh starts over, or give -o another name", path,
                    diff.p ? diff.p : "?");
            rc = RH_EINVAL;
        }
        rhj_free(&old);
    }
    rhj_free(&now);
    rhm_buf_free(&b);
    rhm_buf_free(&diff);
    free(data);
    return rc;
}

/* Test t of the grid: needle-major, then length, then depth. */
static void rhm_test_coords(const rhm_exp *E, int t, int *li, int *di, int *ni) {
    *di = t % E->n_dep;
    *li = (t / E->n_dep) % E->n_len;
    *ni = t / (E->n_dep * E->n_len);
}
static int rhm_mine(const rhm_exp *E, int t) { return t % E->X.shard_n == E->X.shard_i; }

/* The record key of test t: the configuration's fingerprint and the test's own inputs. */
static void rhm_test_key(const rhm_exp *E, int t, char out[17]) {
    int li, di, ni;
    uint64_t h = E->cfg_hash;
    int32_t L;
    rhm_test_coords(E, t, &li, &di, &ni);
    L = (int32_t)E->lengths[li];
    h = rhm_fnv(h, &L, sizeof L);
    h = rhm_fnv(h, &E->depths[di], sizeof(double));
    h = rhm_fnv(h, E->nd[ni].needle, strlen(E->nd[ni].needle) + 1);
    h = rhm_fnv(h, E->nd[ni].question, strlen(E->nd[ni].question) + 1);
    h = rhm_fnv(h, E->nd[ni].answer, strlen(E->nd[ni].answer) + 1);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* What the caller asked, checked before anything is read (a C caller fills the struct by hand,
 * so every field is checked here, not only by the command line). */
static int rhm_check_request(const rh_experiment *X, char *msg, size_t cap) {
    int i;
    if (!X->model || !X->haystack || !X->needles || !X->out || !*X->out) {
        set_err(msg, cap, "model, haystack, needles and out must be given");
        return RH_EINVAL;
    }
    if ((int)X->kind < 0 || (int)X->kind > RH_NIAH) { set_err(msg, cap, "unknown experiment kind %d", (int)X->kind); return RH_EINVAL; }
    if ((unsigned)X->span > RH_SPAN_EXACT || (unsigned)X->span_search > RH_SPAN_IN_PROMPT ||
        (unsigned)X->depth_spacing > RH_DEPTHS_SIGMOID || (unsigned)X->mask_mode > RH_MASK_ZERO ||
        (unsigned)X->ctx.kv_dtype > RH_BF16) {
        set_err(msg, cap, "an enumeration field (span, span_search, depth_spacing, mask_mode, kv_dtype) is out of range");
        return RH_EINVAL;
    }
    if (X->buffer < 0 || X->max_new < 1 || X->n_needles < 0 || X->needle_first < 0 || X->needle_end < 0 ||
        (X->needle_end && X->needle_end <= X->needle_first) || X->n_lengths < 0 || X->n_depths < 0) {
        set_err(msg, cap, "buffer, max_new, n_needles, needle_first/needle_end or a grid size is out of range");
        return RH_EINVAL;
    }
    if (X->shard_n < 1 || X->shard_i < 0 || X->shard_i >= X->shard_n) {
        set_err(msg, cap, "--shard: expected shard_i in [0, shard_n), got %d of %d", X->shard_i, X->shard_n);
        return RH_EINVAL;
    }
    for (i = 0; X->lengths && i < X->n_lengths; i++)
        if (X->lengths[i] < 1) { set_err(msg, cap, "--lengths: %d is not a length in tokens", X->lengths[i]); return RH_EINVAL; }
    for (i = 0; X->depths && i < X->n_depths; i++)
        if (!(X->depths[i] >= 0 && X->depths[i] <= 100)) { set_err(msg, cap, "--depths: %g is not in [0, 100]", X->depths[i]); return RH_EINVAL; }
    if (X->kind == RH_DETECT && (X->mask.kind != RH_PICK_NONE || X->mask_prefill)) {
        set_err(msg, cap, "detect runs unmasked: masks are for niah");
        return RH_EINVAL;
    }
    if (X->append && X->shard_n > 1) {
        set_err(msg, cap, "--append cannot be combined with --shard (merge the shards first, then append)");
        return RH_EINVAL;
    }
    if (X->n_needles && X->needle_end) {
        set_err(msg, cap, "--n-needles and --needle-range exclude one another");
        return RH_EINVAL;
    }
    if (X->chat && X->template_text) {
        set_err(msg, cap, "--chat and --template exclude one another");
        return RH_EINVAL;
    }
    return RH_OK;
}

/* The grid: the caller's, or the defaults of the command line (lengths 4 from a quarter of the
 * trained context to all of it, as MAX/4:MAX:4; depths 0:100:5, spaced as depth_spacing says). */
static int rhm_setup_grid(rhm_exp *E, const rh_experiment *X, char *msg, size_t cap) {
    double *v = NULL;
    int i, n = 0;
    if (X->lengths) {
        E->n_len = X->n_lengths;
        E->lengths = (int *)malloc((size_t)(E->n_len > 0 ? E->n_len : 1) * sizeof *E->lengths);
        if (!E->lengths) return RH_ENOMEM;
        for (i = 0; i < E->n_len; i++) E->lengths[i] = X->lengths[i];
    } else {
        char spec[64];
        int mx = E->cfg->max_ctx;
        /* --compat original: its 20 lengths over the range (it takes the range from -s/-e) */
        snprintf(spec, sizeof spec, "%d:%d:%d", mx / 4 > 1 ? mx / 4 : 1, mx, X->compat_original ? 20 : 4);
        if (rhm_parse_grid("--lengths", spec, 1, 100000000, 1, 0, &v, &n, msg, cap)) return RH_EINVAL;
        E->lengths = (int *)malloc((size_t)n * sizeof *E->lengths);
        if (!E->lengths) { free(v); return RH_ENOMEM; }
        for (i = 0; i < n; i++) E->lengths[i] = (int)v[i];
        E->n_len = n;
        free(v);
    }
    if (X->depths) {
        E->n_dep = X->n_depths;
        E->depths = (double *)malloc((size_t)(E->n_dep > 0 ? E->n_dep : 1) * sizeof *E->depths);
        if (!E->depths) return RH_ENOMEM;
        for (i = 0; i < E->n_dep; i++) E->depths[i] = X->depths[i];
    } else if (rhm_parse_grid("--depths", X->compat_original ? "0:100:10" : "0:100:5", 0, 100, 0,
                              X->depth_spacing == RH_DEPTHS_SIGMOID, &E->depths,
                              &E->n_dep, msg, cap)) {
        return RH_EINVAL;
    }
    if (E->n_len < 1 || E->n_dep < 1) {
        set_err(msg, cap, "%s: the grid is empty", E->n_len < 1 ? "--lengths" : "--depths");
        return RH_EINVAL;
    }
    return RH_OK;
}

/* The needles file, cut to the needles asked for. */
static int rhm_setup_needles(rhm_exp *E, const rh_experiment *X, char *msg, size_t cap) {
    char *txt;
    size_t len;
    int i, rc, first = X->needle_first, end = X->n_needles ? X->n_needles : X->needle_end;
    rc = rhm_read_file(X->needles, (size_t)1 << 28, &txt, &len, msg, cap);
    if (rc) return rc;
    rc = rhm_needles_parse(txt, len, X->needles, &E->nd, &E->n_nd, msg, cap);
    free(txt);
    if (rc) return rc;
    if (X->n_needles > E->n_nd) {
        set_err(msg, cap, "--n-needles: %d is more than the %d needles in %s", X->n_needles, E->n_nd, X->needles);
        return RH_EINVAL;
    }
    if (X->needle_end > E->n_nd || first >= E->n_nd) {
        set_err(msg, cap, "--needle-range: %d:%d goes past the %d needles in %s", X->needle_first,
                X->needle_end ? X->needle_end : E->n_nd, E->n_nd, X->needles);
        return RH_EINVAL;
    }
    if (X->n_needles) first = 0;
    if (!end && first) end = E->n_nd;
    if (end) {
        /* keep needles [first, end): free the others, move the kept ones to the front */
        for (i = 0; i < E->n_nd; i++)
            if (i < first || i >= end) {
                free(E->nd[i].needle);
                free(E->nd[i].question);
                free(E->nd[i].answer);
            }
        memmove(E->nd, E->nd + first, (size_t)(end - first) * sizeof *E->nd);
        E->n_nd = end - first;
        E->needle_first = first;
    }
    E->needles_hash = RHM_FNV0;
    for (i = 0; i < E->n_nd; i++) {
        E->needles_hash = rhm_fnv(E->needles_hash, E->nd[i].needle, strlen(E->nd[i].needle) + 1);
        E->needles_hash = rhm_fnv(E->needles_hash, E->nd[i].question, strlen(E->nd[i].question) + 1);
        E->needles_hash = rhm_fnv(E->needles_hash, E->nd[i].answer, strlen(E->nd[i].answer) + 1);
    }
    return RH_OK;
}

/* The haystack: one text for every needle, or, for a folder of part1/, part2/, ... folders (the
 * original's haystack_for_detect layout), part i + 1 for needle i of the needles file. */
static int rhm_haystacks(rhm_exp *E, const char *path, char *msg, size_t cap) {
    char part[4200];
    struct stat st;
    int i, rc, parts = 0;
    snprintf(part, sizeof part, "%s/part1", path);
    if (stat(part, &st) == 0 && S_ISDIR(st.st_mode)) parts = 1;
    E->n_hays = parts ? E->n_nd : 1;
    E->hays = (rhm_hay *)calloc((size_t)E->n_hays, sizeof *E->hays);
    if (!E->hays) return RH_ENOMEM;
    E->hays_hash = RHM_FNV0;
    for (i = 0; i < E->n_hays; i++) {
        const char *from = path;
        if (parts) {
            snprintf(part, sizeof part, "%s/part%d", path, E->needle_first + i + 1);
            if (stat(part, &st) != 0 || !S_ISDIR(st.st_mode)) {
                set_err(msg, cap, "--haystack: %s holds part1/..., one haystack per needle, but no part%d/ for needle %d",
                        path, E->needle_first + i + 1, E->needle_first + i);
                return RH_EINVAL;
            }
            from = part;
        }
        rc = rhm_haystack_load(from, &E->hays[i].text, &E->hays[i].len, msg, cap);
        if (rc) return rc;
        E->hays_hash = rhm_fnv(E->hays_hash, E->hays[i].text, E->hays[i].len + 1);
    }
    return RH_OK;
}

/* The template, the haystack, and the tokens every test shares: the needles' and the answers'
 * in-context forms, the answers alone, and enough haystack tokens for the longest test. */
static int rhm_setup_tokens(rhm_exp *E, const rh_experiment *X, char *msg, size_t cap) {
    int i, rc, maxlen = 0, minlen = INT_MAX, max_needle = 0;
    /* template */
    if (X->chat) {
        E->tmpl = rhm_chat_template(E->m, msg, cap);
        if (!E->tmpl) return RH_EINVAL;
    } else {
        const char *t = X->template_text ? X->template_text : RHM_DEFAULT_TEMPLATE;
        E->tmpl = (char *)malloc(strlen(t) + 1);
        if (!E->tmpl) return RH_ENOMEM;
        memcpy(E->tmpl, t, strlen(t) + 1);
    }
    if (rhm_count(E->tmpl, "{question}") != 1 || rhm_count(E->tmpl, "{context}") > 1) {
        set_err(msg, cap, "--template: needs {question} exactly once and {context} at most once");
        return RH_EINVAL;
    }
    /* haystack */
    rc = rhm_haystacks(E, X->haystack, msg, cap);
    if (rc) return rc;
    /* needle and answer tokens */
    E->space_prefix = rhm_has_space_prefix(E->m);
    E->needle_ids = (int **)calloc((size_t)E->n_nd, sizeof(int *));
    E->ans0 = (int **)calloc((size_t)E->n_nd, sizeof(int *));
    E->ans1 = (int **)calloc((size_t)E->n_nd, sizeof(int *));
    E->n_needle_ids = (int *)calloc((size_t)E->n_nd, sizeof(int));
    E->n_ans0 = (int *)calloc((size_t)E->n_nd, sizeof(int));
    E->n_ans1 = (int *)calloc((size_t)E->n_nd, sizeof(int));
    if (!E->needle_ids || !E->ans0 || !E->ans1 || !E->n_needle_ids || !E->n_ans0 || !E->n_ans1) {
        set_err(msg, cap, "out of memory");
        return RH_ENOMEM;
    }
    for (i = 0; i < E->n_nd; i++) {
        rc = rhm_tokenize_incontext(E->m, E->space_prefix, E->nd[i].needle, &E->needle_ids[i],
                                    &E->n_needle_ids[i], msg, cap);
        if (!rc) rc = rhm_tokenize_incontext(E->m, E->space_prefix, E->nd[i].answer, &E->ans0[i], &E->n_ans0[i], msg, cap);
        if (!rc) rc = rh_tokenize(E->m, E->nd[i].answer, strlen(E->nd[i].answer), 0, &E->ans1[i], &E->n_ans1[i], msg, cap);
        if (rc) return rc;
        if (E->n_needle_ids[i] > max_needle) max_needle = E->n_needle_ids[i];
    }
    for (i = 0; i < E->n_len; i++) {
        if (E->lengths[i] > maxlen) maxlen = E->lengths[i];
        if (E->lengths[i] < minlen) minlen = E->lengths[i];
    }
    if (maxlen > E->cfg->max_ctx)
        rhm_note(E, "warning: --lengths up to %d exceed the model's trained context of %d tokens", maxlen,
                 E->cfg->max_ctx);
    if ((long)minlen - X->buffer - max_needle < 1) {
        set_err(msg, cap, "--lengths: length %d leaves no room for haystack after --buffer %d and a needle of %d tokens",
                minlen, X->buffer, max_needle);
        return RH_EINVAL;
    }
    if (X->ctx.n_ctx && X->ctx.n_ctx < maxlen + X->max_new + 1) {
        set_err(msg, cap, "--ctx: %d is smaller than the %d tokens the longest test needs (length %d + --max-new %d + 1)",
                X->ctx.n_ctx, maxlen + X->max_new + 1, maxlen, X->max_new);
        return RH_EINVAL;
    }
    for (i = 0; i < E->n_hays; i++) {
        rc = rhm_haystack_tokens(E->m, E->hays[i].text, E->hays[i].len, maxlen - X->buffer, &E->hays[i].ids, &E->hays[i].n,
                                 msg, cap);
        if (rc) return rc;
    }
    return RH_OK;
}

/* --append: the tests the existing score file already holds, by key, as its run record lists
 * them (when that record was written with this very file: its FNV-1a matches), so that a test
 * is never added twice. */
static void rhm_old_score_keys(rhm_exp *E) {
    char *data = NULL, *sc = NULL;
    size_t len, sl;
    rhj v;
    const rhj *keys, *fnv;
    int i;
    char want[17];
    if (rhm_read_file(E->unsharded_run.p, (size_t)1 << 30, &data, &len, NULL, 0)) return;
    if (rhm_read_file(E->score_path.p, (size_t)1 << 30, &sc, &sl, NULL, 0)) { free(data); return; }
    snprintf(want, sizeof want, "%016llx", (unsigned long long)rhm_fnv(RHM_FNV0, sc, sl));
    free(sc);
    if (!rhj_parse(data, len, "run", &v, NULL, 0)) {
        keys = rhj_get(&v, "score_tests");
        fnv = rhj_get(&v, "score_file_fnv");
        if (keys && keys->type == RHJ_ARR && fnv && fnv->type == RHJ_STR && !strcmp(fnv->str, want))
            for (i = 0; i < keys->n; i++)
                if (keys->items[i].type == RHJ_STR && keys->items[i].len == 16)
                    rhm_buf_printf(&E->score_keys, "%s\"%s\"", E->score_keys.n ? ", " : "", keys->items[i].str);
        rhj_free(&v);
    }
    free(data);
}

/* The output files: BASE (detect: the score file without .json) + suffixes; a shard writes
 * BASE.shard-i-of-n.* (i from 1) and a later run without --shard merges them.  Checked now that they can be
 * written (not after an hour of tests); with --append the existing score file is read. */
static int rhm_setup_outputs(rhm_exp *E, const rh_experiment *X, char *msg, size_t cap) {
    static const char *const strip[] = {".run.json", ".tests.jsonl", ".jsonl", ".csv", ".svg", ".json"};
    const char *rs = E->is_detect ? ".tests.jsonl" : ".jsonl";
    size_t ol = strlen(X->out), k;
    struct stat st;
    rhm_buf t = {0};
    FILE *f;
    int rc;
    /* BASE: -o names it; a folder (or a path ending in /) gets the default name inside it; a
     * name ending in one of the outputs' suffixes stands for its BASE */
    int as_given = E->is_detect; /* detect: -o names the score file itself unless cut to a BASE below */
    rhm_buf_puts(&E->base, X->out);
    if (X->out[ol - 1] == '/' || (stat(X->out, &st) == 0 && S_ISDIR(st.st_mode))) {
        if (X->out[ol - 1] != '/') rhm_buf_puts(&E->base, "/");
        rhm_buf_puts(&E->base, E->is_detect ? "retrieval_scores" : "niah");
        as_given = 0;
    } else {
        for (k = 0; k < sizeof strip / sizeof strip[0]; k++) {
            size_t sl = strlen(strip[k]);
            if (ol > sl && !strcmp(X->out + ol - sl, strip[k]) && X->out[ol - sl - 1] != '/') {
                E->base.n = ol - sl;
                E->base.p[E->base.n] = 0;
                as_given = 0;
                break;
            }
        }
    }
    rhm_buf_puts(&E->unsharded_base, E->base.p);
    rhm_buf_printf(&E->unsharded_rec, "%s%s", E->base.p, rs);
    rhm_buf_printf(&E->unsharded_run, "%s.run.json", E->base.p);
    if (X->shard_n > 1) rhm_buf_printf(&E->base, ".shard-%d-of-%d", X->shard_i + 1, X->shard_n);
    rhm_buf_printf(&E->rec_path, "%s%s", E->base.p, rs);
    rhm_buf_printf(&E->svg_path, "%s.svg", E->base.p);
    rhm_buf_printf(&E->run_path, "%s.run.json", E->base.p);
    rhm_buf_printf(&E->csv_path, "%s.csv", E->base.p);
    if (as_given && X->shard_n == 1) rhm_buf_puts(&E->score_path, X->out);
    else rhm_buf_printf(&E->score_path, "%s.json", E->base.p);
    rhm_buf_printf(&t, "%s.tmp", E->run_path.p);
    if (E->base.oom || E->rec_path.oom || E->svg_path.oom || E->run_path.oom || E->csv_path.oom ||
        E->unsharded_rec.oom || E->unsharded_base.oom || E->unsharded_run.oom || E->score_path.oom || t.oom) {
        rhm_buf_free(&t);
        return RH_ENOMEM;
    }
    f = fopen(t.p, "wb");
    if (!f) {
        set_err(msg, cap, "--out: cannot write %s: %s", t.p, strerror(errno));
        rhm_buf_free(&t);
        return RH_EIO;
    }
    fclose(f);
    remove(t.p);
    rhm_buf_free(&t);
    if (E->is_detect && X->append && X->shard_n == 1 && (f = fopen(E->score_path.p, "rb")) != NULL) {
        fclose(f);
        if ((rc = rh_scores_read(E->score_path.p, &E->old, msg, cap)) != RH_OK) return rc;
        if (E->old.n_layers > E->cfg->n_layers || E->old.n_heads > E->cfg->n_heads) {
            set_err(msg, cap, "--append: %s has heads outside the model (%d layers x %d heads)", E->score_path.p,
                    E->cfg->n_layers, E->cfg->n_heads);
            return RH_EFORMAT;
        }
        E->have_old = 1;
        rhm_old_score_keys(E);
    }
    return RH_OK;
}

/* The configuration fingerprint: a finished test is reused only when all of this agrees. */
static uint64_t rhm_fingerprint(const rhm_exp *E, const rh_experiment *X) {
    uint64_t h = RHM_FNV0;
    char t[256];
    h = rhm_fnv(h, "rh-method-1", 12);
    h = rhm_fnv(h, E->is_detect ? "detect" : "niah", E->is_detect ? 7 : 5);
    h = rhm_fnv(h, E->checksum, 16);
    h = rhm_fnv(h, &E->hays_hash, sizeof E->hays_hash);
    h = rhm_fnv(h, E->tmpl, strlen(E->tmpl) + 1);
    snprintf(t, sizeof t, "%d|%d|%d|%d|%d|%d|%d", X->buffer, (int)X->span, (int)X->span_search, X->max_new,
             X->score_set, (int)X->mask_mode, X->mask_prefill);
    h = rhm_fnv(h, t, strlen(t));
    h = rhm_fnv(h, E->mask_label, strlen(E->mask_label));
    snprintf(t, sizeof t, "kv=%s compat=%d ref=%d", rh_dtype_names[X->ctx.kv_dtype], X->compat_original, X->ctx.reference);
    h = rhm_fnv(h, t, strlen(t));
    if (X->ctx.kv_window > 0) h = rhm_fnv(h, E->kv_label, strlen(E->kv_label));
    h = rhm_fnv(h, rh_build(), strlen(rh_build()));
    return h;
}

/* Set up: open the model, expand the grid, read the needles, the template and the haystack,
 * tokenize what every test shares, resolve the mask, name the outputs and check they can be
 * written, fingerprint the configuration. */
static int rhm_exp_setup(rhm_exp *E, const rh_experiment *X, char *msg, size_t cap) {
    int i, rc;
    time_t now = time(NULL);
    struct tm tmv;
    memset(E, 0, sizeof *E);
    E->X = *X;
    E->is_detect = X->kind == RH_DETECT;
    E->t0 = rh_now();
    if ((rc = rhm_check_request(X, msg, cap)) != RH_OK) return rc;
    E->threads = X->ctx.n_threads;
    if (E->threads == 0) E->threads = rh_n_cpus();
    if (rh_utc(now, &tmv)) strftime(E->started, sizeof E->started, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    if (X->model_handle) E->m = (rh_model *)(uintptr_t)X->model_handle; /* the caller's: not closed */
    else if ((rc = rh_model_open(X->model, &E->m, msg, cap)) != RH_OK) return rc;
    E->cfg = rh_model_config(E->m);
    E->n_lh = E->cfg->n_layers * E->cfg->n_heads;
    rh_model_checksum(E->m, E->checksum);
    if ((rc = rhm_setup_grid(E, X, msg, cap)) != RH_OK) return rc;
    if ((rc = rhm_setup_needles(E, X, msg, cap)) != RH_OK) return rc;
    if ((rc = rhm_setup_tokens(E, X, msg, cap)) != RH_OK) return rc;
    /* the mask: the heads, and its label in every output ("none" without one) */
    if (!E->is_detect && X->mask.kind != RH_PICK_NONE && !(E->mask = (unsigned char *)calloc((size_t)E->n_lh, 1)))
        return RH_ENOMEM;
    rc = rh_head_pick_resolve(E->mask ? &X->mask : NULL, "--mask", E->cfg->n_layers, E->cfg->n_heads, E->mask,
                              &E->mask_label, msg, cap);
    if (rc) return rc;
    /* the KV policy: the kept heads into the context parameters every test's context gets */
    rc = rhm_kv_setup(&X->kv_keep, &X->ctx, E->cfg->n_layers, E->cfg->n_heads, &E->kv_keep, &E->kv_label, msg, cap);
    if (rc) return rc;
    E->X.ctx.kv_keep = E->kv_keep;
    if ((rc = rhm_setup_outputs(E, X, msg, cap)) != RH_OK) return rc;
    E->cfg_hash = rhm_fingerprint(E, X);
    E->n_tests = E->n_nd * E->n_len * E->n_dep;
    E->n_mine = 0;
    for (i = 0; i < E->n_tests; i++) E->n_mine += rhm_mine(E, i);
    return RH_OK;
}

/* Write the records file: one line per finished test of this run, in grid order, nothing else
 * (the provenance is in BASE.run.json). */
static int rhm_write_records(const rhm_exp *E, rhm_recs *R, char *msg, size_t cap) {
    rhm_buf b = {0};
    int t, rc;
    for (t = 0; t < E->n_tests; t++) {
        char key[17];
        rhm_rec *r;
        if (!rhm_mine(E, t)) continue;
        rhm_test_key(E, t, key);
        if (!(r = rhm_recs_find(R, key))) continue;
        rhm_buf_puts(&b, r->line);
        rhm_buf_put(&b, "\n", 1);
    }
    if (!b.p) rhm_buf_put(&b, "", 0);
    if (b.oom) {
        rhm_buf_free(&b);
        return RH_ENOMEM;
    }
    rc = rhm_write_atomic(E->rec_path.p, b.p, b.n, msg, cap);
    rhm_buf_free(&b);
    return rc;
}

/* ---- what a run costs (the public cost model; see retrieval_heads.h) ----
 * Counted from the model's shape alone; the three rates come from a timed measurement
 * (rh_cost_measure, for --dry-run) or from the run's own tests (the progress line's ETA). */

/* Matrix parameters a token goes through in prefill (the output head left out: a prefill
 * computes no logits), and the attention FLOPs per visible position per token. */
static void rhm_cost_shape(const rh_config *c, double *w_params, double *att_per_pos, double *kv_row_elems) {
    double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    /* a mixture of experts: the router and the n_experts_used experts a token goes through */
    double mlp = 3.0 * c->dim * c->hidden_dim * (c->n_experts ? c->n_experts_used : 1) + (double)c->dim * c->n_experts;
    *w_params = ((double)c->dim * (q + 2 * kv) + q * c->dim + mlp) * c->n_layers;
    *att_per_pos = 4.0 * q * c->n_layers;  /* QK^T and PV: 2 FLOPs each per head dimension */
    *kv_row_elems = 2.0 * kv * c->n_layers; /* K and V of one position, all layers */
}

void rh_cost_add(const rh_model *m, const rh_cost_rates *r, int start, int end, int n_decode, rh_cost *acc) {
    const rh_config *c;
    double w, att, kvrow, n, calls, flops, k, bytes, wbytes;
    int chunk;
    if (!m || !r || !acc || start < 0 || end < start || n_decode < 0) return;
    c = rh_model_config(m);
    rhm_cost_shape(c, &w, &att, &kvrow);
    chunk = r->chunk > 0 ? r->chunk : 1;
    n = (double)end - start;
    calls = n > 0 ? ceil(n / chunk) : 0;
    /* token i sees positions 0..i: sum over [start, end) of (i + 1) */
    flops = 2.0 * w * n + att * (((double)end * (end + 1) - (double)start * (start + 1)) / 2.0);
    /* decode step j (0-based) runs at position end + j and reads the KV of end + j + 1
     * positions, and every matrix once, the output head included */
    k = n_decode;
    wbytes = (w + (double)c->vocab_size * c->dim) * (rh_model_dtype(m) == RH_F32 ? 4.0 : 2.0);
    bytes = k * wbytes + kvrow * (r->kv_dtype == RH_F32 ? 4.0 : 2.0) * (k * end + k * (k + 1) / 2.0);
    acc->prefill_tokens += n;
    acc->prefill_calls += calls;
    acc->prefill_flops += flops;
    acc->decode_tokens += k;
    acc->decode_bytes += bytes;
    acc->seconds += calls * r->prefill_chunk_s + flops * r->prefill_flop_s + bytes * r->decode_byte_s;
}

static int rhm_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double rhm_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, rhm_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The measurement: a short prefill (16 tokens) and a longer one (128 tokens to a chunk), each at
 * position 0, then decode steps after the longer one; repeated while the budget lasts, the
 * median of each kept.  Two prefill lengths give the per-call cost apart from the per-FLOP
 * one (a call packs every weight panel whatever its length).  --dry-run gives it RHM_MEASURE_S:
 * a small model repeats it several times in a second, a 7B model does it once in about 20 s. */
#define RHM_MEASURE_S 10.0
int rh_cost_measure(const rh_model *m, const rh_ctx_params *p, double budget_s, rh_cost_rates *out, char *err,
                    size_t errcap) {
    enum { REPS = 7, N1 = 16 };
    rh_ctx_params q;
    rh_ctx_sizes z;
    rh_ctx *c = NULL;
    const rh_config *cf;
    double t1[REPS], t2[REPS], td[REPS], t_start, t, v1, v2, vd;
    int *ids = NULL, rc, i, n_rep = 0, P = 0, D = 0, n_max, vocab;
    float *logits = NULL;
    uint64_t st = 0x9e3779b97f4a7c15ull;
    rh_cost c1, c2, cd;
    if (!m || !out) {
        set_err(err, errcap, "rh_cost_measure: %s is NULL", m ? "out" : "model");
        return RH_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (p) q = *p;
    else rh_ctx_params_default(&q);
    cf = rh_model_config(m);
    q.n_ctx = 0;
    if ((rc = rh_ctx_sizes_of(m, &q, &z, err, errcap)) != RH_OK) return rc;
    out->chunk = z.chunk;
    out->kv_dtype = q.kv_dtype;
    out->n_threads = z.n_threads;
    if (!(budget_s > 0)) return RH_OK;
    t_start = rh_now();
    n_max = z.chunk > 8 * N1 ? z.chunk : 8 * N1;
    q.n_ctx = n_max + 2 * N1 + 1;
    q.prefill_chunk = z.chunk;
    if ((rc = rh_ctx_new(m, &q, &c, err, errcap)) != RH_OK) return rc;
    ids = (int *)malloc((size_t)q.n_ctx * sizeof *ids);
    logits = (float *)malloc((size_t)cf->vocab_size * sizeof *logits);
    if (!ids || !logits) {
        rc = RH_ENOMEM;
        set_err(err, errcap, "out of memory");
        goto done;
    }
    vocab = cf->vocab_size < 256 ? cf->vocab_size : 256;
    for (i = 0; i < q.n_ctx; i++) ids[i] = (int)(rhm_rand(&st) % (uint64_t)vocab);
    /* warm up: first touches of the weights and the scratch */
    if ((rc = rh_eval(c, ids, 8, NULL, 0)) != RH_OK) goto fail;
    for (n_rep = 0; n_rep < REPS;) {
        rh_ctx_rewind(c, 0);
        t = rh_now();
        if ((rc = rh_eval(c, ids, N1, NULL, 0)) != RH_OK) goto fail;
        t1[n_rep] = rh_now() - t;
        rh_ctx_rewind(c, 0);
        if (!P) {
            /* the longer prefill: its FLOPs take about a third of the budget, by the slope
             * between 16 and 32 tokens (a call's fixed cost, packing every weight panel, can
             * be most of a short prefill: seconds for a 7B model), at least 128 tokens (a short
             * difference drowns in the noise of a busy machine) and at most a chunk */
            double slope;
            t = rh_now();
            if ((rc = rh_eval(c, ids, 2 * N1, NULL, 0)) != RH_OK) goto fail;
            slope = (rh_now() - t - t1[0]) / N1;
            rh_ctx_rewind(c, 0);
            if (!(slope > 0)) slope = t1[0] / N1;
            P = budget_s / 3 / slope < n_max ? (int)(budget_s / 3 / slope) : n_max;
            if (P < 8 * N1) P = 8 * N1 < n_max ? 8 * N1 : n_max;
        }
        t = rh_now();
        if ((rc = rh_eval(c, ids, P, NULL, 0)) != RH_OK) goto fail;
        t2[n_rep] = rh_now() - t;
        t = rh_now();
        if ((rc = rh_eval(c, ids + P, 1, logits, 0)) != RH_OK) goto fail;
        if (!D) {
            /* as many decode steps as fit in a sixth of the budget, 2 to 16 */
            double step = rh_now() - t;
            D = step > 0 && budget_s / 6 / step < 16 ? (int)(budget_s / 6 / step) : 16;
            if (D < 2) D = 2;
        }
        for (i = 1; i < D; i++)
            if ((rc = rh_eval(c, ids + P + i, 1, logits, 0)) != RH_OK) goto fail;
        td[n_rep] = rh_now() - t;
        n_rep++;
        if (rh_now() - t_start >= budget_s) break;
    }
    v1 = rhm_median(t1, n_rep);
    v2 = rhm_median(t2, n_rep);
    vd = rhm_median(td, n_rep);
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    memset(&cd, 0, sizeof cd);
    rh_cost_add(m, out, 0, N1, 0, &c1);
    rh_cost_add(m, out, 0, P, 0, &c2);
    rh_cost_add(m, out, P, P, D, &cd);
    /* t = calls x chunk_s + flops x flop_s through the two points (one call each); a negative
     * per-call cost (noise) falls back to FLOPs alone */
    out->prefill_flop_s = (v2 - v1) / (c2.prefill_flops - c1.prefill_flops);
    out->prefill_chunk_s = v1 - c1.prefill_flops * out->prefill_flop_s;
    if (!(out->prefill_flop_s > 0) || out->prefill_chunk_s < 0) {
        out->prefill_chunk_s = 0;
        out->prefill_flop_s = v2 / c2.prefill_flops;
    }
    out->decode_byte_s = vd / cd.decode_bytes;
    out->prefill_tokens = P;
    out->measure_s = rh_now() - t_start;
    rc = RH_OK;
    goto done;
fail:
    set_err(err, errcap, "%s", rh_ctx_error(c));
done:
    free(ids);
    free(logits);
    rh_ctx_free(c);
    return rc;
}

/* ---- plan: which tests, in which order, at what cost ----
 * Which: the tests of this shard that earlier runs did not finish (this output's records and
 * every shard's).  The order: the KV cache holds one prompt's prefix at a time, and a test
 * keeps what its prompt shares with the prompt before it from position 0 (rhm_generate), so the
 * tests run in the lexicographic order of their prompts' token ids: a depth-first walk of the
 * trie of all prompts, in which every distinct prefix is prefilled exactly once -- the least
 * any order can prefill.  For a grid that is: the shared haystack up to an insertion point is
 * computed once for every test whose needle comes later, whatever its length or needle; tests
 * of one needle at one insertion point (depth 0 at every length) also share the needle and the
 * haystack after it.  Every output is written in grid order (by key), whatever the order run. */
typedef struct {
    int t;          /* the test's index in the grid */
    int n_pre;      /* prompt tokens prefilled: all but the last (decode starts from it) */
    int keep;       /* of them, kept from the test before in this order (0 without reuse) */
    int n_dec;      /* decode steps expected: the needle's tokens + a newline, at most max_new */
    int need;       /* KV positions the test needs: prompt + max_new + 1 */
    const int *ids; /* its first n_pre prompt ids (in the plan's arena, while planning) */
    rh_cost cost;   /* tokens, FLOPs and bytes as planned (the ETA's) */
} rhm_item;

typedef struct {
    rhm_item *it;
    int n;          /* tests to run, in run order */
    double build_s; /* the time building their prompts took */
    int max_need;   /* the most KV positions a test needs */
    int longest;    /* tokens of the longest prompt */
    int *arena;     /* every item's ids (freed once the order is made) */
    size_t arena_n;
} rhm_schedule;

static void rhm_plan_free(rhm_schedule *P) {
    free(P->it);
    free(P->arena);
    memset(P, 0, sizeof *P);
}

/* Prompt tokens a prefill of ids[0 .. n_pre) may keep of held[0 .. n_held) in the cache: the
 * common prefix, less what leaves fewer than 2 tokens to prefill (a 1-token rh_eval is a decode
 * step, computed by other kernels: not the bits a prefill gives). */
static int rhm_keep(const int *held, int n_held, const int *ids, int n_pre) {
    int k = 0, lim = n_held < n_pre ? n_held : n_pre;
    if (n_pre < 2) return 0;
    while (k < lim && held[k] == ids[k]) k++;
    if (n_pre - k < 2) k = n_pre - 2;
    return k;
}

static int rhm_item_cmp(const void *a, const void *b) {
    const rhm_item *x = (const rhm_item *)a, *y = (const rhm_item *)b;
    int i, n = x->n_pre < y->n_pre ? x->n_pre : y->n_pre;
    for (i = 0; i < n; i++)
        if (x->ids[i] != y->ids[i]) return x->ids[i] < y->ids[i] ? -1 : 1;
    if (x->n_pre != y->n_pre) return x->n_pre < y->n_pre ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

static int rhm_build_grid_test(const rhm_exp *E, int t, rhm_test *T, char *msg, size_t cap);

/* Build every test to run (its prompt ids into the arena), order them, and count what each
 * keeps from the one before. */
static int rhm_plan_order(const rhm_exp *E, const rhm_recs *R, rhm_schedule *P, int todo, char *msg, size_t cap) {
    size_t cap_ids = 0;
    int t, k, rc;
    double t0 = rh_now();
    if (todo == 0) return RH_OK;
    P->it = (rhm_item *)calloc((size_t)todo, sizeof *P->it);
    if (!P->it) return RH_ENOMEM;
    for (t = 0; t < E->n_tests; t++) {
        char key[17];
        rhm_test T;
        rhm_item *it;
        int li, di, ni, nd;
        if (!rhm_mine(E, t)) continue;
        rhm_test_key(E, t, key);
        if (rhm_recs_find(R, key)) continue;
        if ((rc = rhm_build_grid_test(E, t, &T, msg, cap)) != RH_OK) return rc;
        it = &P->it[P->n++];
        it->t = t;
        it->n_pre = T.n_ids - 1;
        it->need = T.n_ids + E->X.max_new + 1;
        rhm_test_coords(E, t, &li, &di, &ni);
        nd = E->n_needle_ids[ni] + 1;
        it->n_dec = nd < E->X.max_new ? nd : E->X.max_new;
        if (it->need > P->max_need) P->max_need = it->need;
        if (T.n_ids > P->longest) P->longest = T.n_ids;
        if (P->arena_n + (size_t)it->n_pre > cap_ids) {
            size_t nc = cap_ids ? cap_ids * 2 : 1 << 16;
            int *q;
            while (nc < P->arena_n + (size_t)it->n_pre) nc *= 2;
            if (!(q = (int *)realloc(P->arena, nc * sizeof *q))) {
                rhm_test_free(&T);
                return RH_ENOMEM;
            }
            P->arena = q;
            cap_ids = nc;
        }
        memcpy(P->arena + P->arena_n, T.ids, (size_t)it->n_pre * sizeof *P->arena);
        it->ids = NULL;
        it->keep = (int)P->arena_n; /* the offset, until the arena stops moving */
        P->arena_n += (size_t)it->n_pre;
        rhm_test_free(&T);
    }
    P->build_s = rh_now() - t0;
    for (k = 0; k < P->n; k++) P->it[k].ids = P->arena + P->it[k].keep;
    switch (E->X.order) {
    case 1: /* grid order, as built */
        break;
    case 2: /* grid order reversed */
        for (k = 0; k < P->n / 2; k++) {
            rhm_item x = P->it[k];
            P->it[k] = P->it[P->n - 1 - k];
            P->it[P->n - 1 - k] = x;
        }
        break;
    case 3: { /* shuffled, seeded: rewinds to arbitrary points */
        uint64_t st = 12345;
        for (k = P->n - 1; k > 0; k--) {
            int j = (int)(rhm_rand(&st) % (uint64_t)(k + 1));
            rhm_item x = P->it[k];
            P->it[k] = P->it[j];
            P->it[j] = x;
        }
        break;
    }
    default:
        qsort(P->it, (size_t)P->n, sizeof *P->it, rhm_item_cmp);
    }
    for (k = 0; k < P->n; k++) {
        P->it[k].keep = E->X.no_prefix_reuse || k == 0 ? 0
                        : rhm_keep(P->it[k - 1].ids, P->it[k - 1].n_pre, P->it[k].ids, P->it[k].n_pre);
        /* a KV policy's windows hold a prefix to rewind to only while the test before's tokens
         * (its prefill and at least one decode step) leave the rewind floor at 0: else the test
         * prefills whole */
        if (k > 0 && E->X.ctx.kv_window > 0 && rh_kv_rewind_floor(P->it[k - 1].n_pre + 1, E->X.ctx.kv_sinks, E->X.ctx.kv_window))
            P->it[k].keep = 0;
    }
    return RH_OK;
}

/* The plan's cost: with reuse (the keeps) and whole, the expected decode and its bound. */
static void rhm_plan_cost(const rhm_exp *E, const rhm_schedule *P, const rh_cost_rates *r, rh_experiment_cost *c) {
    int k;
    rh_cost mx;
    memset(&mx, 0, sizeof mx);
    c->n_tests = P->n;
    c->longest_prompt = P->longest;
    c->rates = *r;
    for (k = 0; k < P->n; k++) {
        const rhm_item *it = &P->it[k];
        rh_cost_add(E->m, r, it->keep, it->n_pre, it->n_dec, &c->reuse);
        rh_cost_add(E->m, r, 0, it->n_pre, it->n_dec, &c->whole);
        rh_cost_add(E->m, r, it->keep, it->n_pre, E->X.max_new, &mx);
    }
    /* the run builds each prompt again, at the plan's pace, when the rates say time at all */
    if (r->prefill_flop_s > 0) {
        c->build_s = P->build_s;
        c->reuse.seconds += P->build_s;
        c->whole.seconds += P->build_s;
        mx.seconds += P->build_s;
    }
    c->decode_tokens_max = mx.decode_tokens;
    c->seconds_max = mx.seconds;
}

static int rhm_write_run(const rhm_exp *E, int finished, char *msg, size_t cap) {
    rhm_buf b = {0};
    int rc;
    rhm_run_json(E, &b, finished);
    rhm_buf_put(&b, "\n", 1);
    rc = b.oom ? RH_ENOMEM : rhm_write_atomic(E->run_path.p, b.p, b.n, msg, cap);
    rhm_buf_free(&b);
    return rc;
}

/* Records of an earlier run at rec (made as run says) join R when that run's configuration is
 * this one's.  A records file without its run record is refused (its configuration is unknown);
 * skip_mismatch: another configuration is passed over instead of refused (--append). */
static int rhm_resume_from(const rhm_exp *E, rhm_recs *R, const char *rec, const char *run, int skip_mismatch,
                           char *msg, size_t cap) {
    int absent, rc;
    FILE *f;
    rc = rhm_config_differs(E, run, &absent, msg, cap);
    if (rc == RH_EINVAL && skip_mismatch) return RH_OK;
    if (rc) return rc;
    if (absent) {
        if ((f = fopen(rec, "rb")) == NULL) return RH_OK;
        fclose(f);
        set_err(msg, cap, "%s exists without %s, so what made it is unknown; --fresh starts over, or give -o another name", rec,
                run);
        return RH_EINVAL;
    }
    return rhm_recs_load(R, rec, 1) ? RH_ENOMEM : RH_OK;
}

/* ---- plan: the finished tests of earlier runs with this configuration: this output's own, the
 * unsharded run's (for a shard), every shard's (for the merge) ---- */
static int rhm_plan(rhm_exp *E, rhm_recs *R, rhm_schedule *P, char *msg, size_t cap) {
    const char *suffix = E->is_detect ? ".tests.jsonl" : ".jsonl";
    int t, rc = RH_OK, i, todo = 0;
    memset(P, 0, sizeof *P);
    if (!E->X.fresh) {
        rc = rhm_resume_from(E, R, E->rec_path.p, E->run_path.p, E->X.append, msg, cap);
        if (!rc && E->X.shard_n > 1) rc = rhm_resume_from(E, R, E->unsharded_rec.p, E->unsharded_run.p, 0, msg, cap);
        if (!rc) {
            char **names = NULL;
            int n = 0;
            rc = rhm_shard_files(E->unsharded_base.p, suffix, &names, &n);
            for (i = 0; i < n; i++) {
                rhm_buf run = {0};
                if (!rc && strcmp(names[i], E->rec_path.p)) {
                    rhm_buf_put(&run, names[i], strlen(names[i]) - strlen(suffix));
                    rhm_buf_puts(&run, ".run.json");
                    rc = run.oom ? RH_ENOMEM : rhm_resume_from(E, R, names[i], run.p, 0, msg, cap);
                }
                rhm_buf_free(&run);
                free(names[i]);
            }
            free(names);
        }
        if (rc) return rc;
    }
    for (t = 0; t < E->n_tests; t++) {
        char key[17];
        if (!rhm_mine(E, t)) continue;
        rhm_test_key(E, t, key);
        if (rhm_recs_find(R, key)) E->n_done_before++;
        else todo++;
    }
    if (E->n_done_before) rhm_note(E, "resuming: %d of %d tests already done", E->n_done_before, E->n_mine);
    rc = rhm_plan_order(E, R, P, todo, msg, cap);
    /* the run record first, before any test: a killed run's records are never without one (a dry
     * run writes nothing) */
    if (!rc && !E->X.dry_run) rc = rhm_write_run(E, 0, msg, cap);
    return rc;
}

/* ---- run: one test through the hooks ----
 * The KV cache keeps what the test before prefilled from position 0 (rhm_prefix), and a test
 * keeps the longest prefix its prompt shares with it (rhm_keep), rewinds the cache to there and
 * prefills only the rest.  Exact: the keys and values of position i depend on tokens 0..i alone,
 * and the engine computes each position of a prefill the same whatever the chunk it falls in
 * (its split-prefill test); what it holds was computed under the same prefill mask (a mask that
 * acts in prefill, --mask-prefill, changes every later position's keys and values, so the cache
 * remembers whether one did). */
typedef struct {
    int *ids;       /* the prompt ids whose keys and values are in the cache, from position 0 */
    int n, cap;
    int masked;     /* they were computed with the heads masked (--mask-prefill) */
    rh_mask_mode mode;
} rhm_prefix;

/* Per-run buffers of the test loop. */
typedef struct {
    rh_ctx *c;
    int n_ctx;         /* the context to allocate (0: as each test needs) */
    rhm_prefix pre;
    float *logits;     /* (vocab_size) */
    int32_t *top1;     /* (n_lh) observed top-1 positions */
    double *head;      /* (n_lh) this test's retrieval score per head */
    unsigned char *hit; /* set mode: (n_lh, span length) */
    int *out;          /* (max_new) generated ids */
    /* the last test: prompt tokens kept in the cache, prefilled, decode steps, and the time its
     * prefill and its decode took (for the ETA; no result depends on them) */
    int kept, prefilled, n_out;
    double t_prefill, t_decode;
} rhm_session;

static void rhm_session_free(rhm_session *S) {
    if (S->c) rh_ctx_free(S->c);
    free(S->pre.ids);
    free(S->logits);
    free(S->top1);
    free(S->head);
    free(S->hit);
    free(S->out);
    memset(S, 0, sizeof *S);
}

/* One test: prefill all but the last prompt token, then greedy decode from the last one (as the
 * original: its prefill is input_ids[:, :-1]), at most max_new tokens, stopping after a token
 * whose bytes hold a newline or an EOS token.  With observe, add each step's retrieval scores.
 * The mask is set for the decode steps only unless mask_prefill. */
static int rhm_generate(rhm_session *S, const rhm_exp *E, const rhm_test *t, int observe, int *n_out, char *msg,
                        size_t cap) {
    const rh_experiment *X = &E->X;
    rhm_prefix *pre = &S->pre;
    int need = t->n_ids + X->max_new + 1, step, inp, rc = 0, start = 0, n_pre = t->n_ids - 1;
    int masked = E->mask && X->mask_prefill;
    const rh_config *cfg = E->cfg;
    rh_ctx *c = S->c;
    double t0;
    *n_out = 0;
    if (X->ctx.n_ctx && X->ctx.n_ctx < need) {
        set_err(msg, cap, "--ctx: %d is smaller than the %d tokens this test needs", X->ctx.n_ctx, need);
        return RH_ERANGE;
    }
    if (!c || rh_ctx_n_ctx(c) < need) {
        rh_ctx_params p = X->ctx;
        if (c) rh_ctx_free(c);
        S->c = NULL;
        pre->n = 0;
        if (!p.n_ctx) p.n_ctx = S->n_ctx >= need ? S->n_ctx : need + need / 8;
        rc = rh_ctx_new(E->m, &p, &S->c, msg, cap);
        if (rc) return rc;
        c = S->c;
    }
    if (X->no_prefix_reuse || pre->masked != masked || (masked && pre->mode != X->mask_mode)) pre->n = 0;
    start = rhm_keep(pre->ids, pre->n, t->ids, n_pre);
    /* a cache that cannot rewind to there (a KV policy that dropped positions) starts over */
    if (rh_ctx_rewind(c, start) != RH_OK) {
        start = 0;
        rc = rh_ctx_rewind(c, 0);
        if (rc) {
            set_err(msg, cap, "%s", rh_ctx_error(c));
            return rc;
        }
    }
    pre->n = 0;
    S->kept = start;
    S->prefilled = n_pre > start ? n_pre - start : 0;
    rh_set_observe(c, NULL);
    rh_set_mask(c, masked ? E->mask : NULL, X->mask_mode);
    t0 = rh_now();
    if (n_pre > start) rc = rh_eval(c, t->ids + start, n_pre - start, NULL, 0);
    S->t_prefill = rh_now() - t0;
    if (!rc && n_pre > 0) {
        if (pre->cap < n_pre) {
            int *q = (int *)realloc(pre->ids, (size_t)n_pre * sizeof *q);
            if (q) {
                pre->ids = q;
                pre->cap = n_pre;
            }
        }
        if (pre->cap >= n_pre) {
            memcpy(pre->ids, t->ids, (size_t)n_pre * sizeof *pre->ids);
            pre->n = n_pre;
            pre->masked = masked;
            pre->mode = X->mask_mode;
        }
    }
    if (!rc && E->mask) rc = rh_set_mask(c, E->mask, X->mask_mode);
    if (!rc && observe) {
        rh_observe ob;
        memset(&ob, 0, sizeof ob);
        ob.top1 = S->top1;
        rc = rh_set_observe(c, &ob);
    }
    if (observe && t->span_start >= 0)
        memset(S->hit, 0, (size_t)E->n_lh * (size_t)(t->span_end - t->span_start));
    inp = t->ids[t->n_ids - 1];
    t0 = rh_now();
    for (step = 0; !rc && step < X->max_new; step++) {
        int next, k, nb, stop = 0;
        char tb[512];
        rc = rh_eval(c, &inp, 1, S->logits, 0);
        if (rc) break;
        next = rh_argmax(S->logits, cfg->vocab_size);
        S->out[(*n_out)++] = next;
        if (observe && t->span_start >= 0)
            rh_retrieval_step(S->top1, E->n_lh, t->ids, t->n_ids, t->span_start, t->span_end, next, X->score_set,
                              S->hit, S->head);
        if (X->compat_original) {
            /* its test: the piece "<0x0A>" or id 144, never EOS (so a byte-level vocabulary, whose
             * newline is another piece, always decodes max_new tokens) */
            nb = rh_token_piece(E->m, next, tb, sizeof tb);
            stop = next == 144 || (nb == 6 && !memcmp(tb, "<0x0A>", 6));
        } else {
            /* ORIGINAL: it stops at a newline only and never checks EOS; here EOS stops too, and a
             * newline is any token whose bytes hold one */
            for (k = 0; k < cfg->n_eos; k++)
                if (next == cfg->eos_ids[k]) stop = 1;
            nb = rh_token_bytes(E->m, next, tb, sizeof tb);
            if (nb > (int)sizeof tb) nb = (int)sizeof tb;
            if (nb > 0 && memchr(tb, '\n', (size_t)nb)) stop = 1;
        }
        if (stop) break;
        inp = next;
    }
    S->t_decode = rh_now() - t0;
    S->n_out = *n_out;
    if (rc) set_err(msg, cap, "%s", rh_ctx_error(c));
    rh_set_observe(c, NULL);
    rh_set_mask(c, NULL, X->mask_mode);
    return rc;
}

/* Length of the valid UTF-8 sequence at s[i] (1..4), or 0 if none; *bad_len: the bytes of the
 * maximal invalid subpart to replace with one U+FFFD (as Python's errors="replace"). */
static int rhm_utf8_at(const unsigned char *s, size_t n, size_t i, int *bad_len) {
    unsigned c = s[i];
    int len, k;
    unsigned lo = 0x80, hi = 0xbf;
    *bad_len = 1;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else return 0;
    for (k = 1; k < len; k++) {
        unsigned d;
        if (i + (size_t)k >= n) break;
        d = s[i + k];
        if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xbf)) break;
    }
    if (k == len) return len;
    *bad_len = k;
    return 0;
}

/* s[0..len) with every maximal invalid UTF-8 subpart replaced by U+FFFD, as Python's
 * decode(errors="replace"); malloc'd, NUL-terminated (*out_len: its length, may be NULL), or NULL
 * when out of memory. */
static char *rhm_utf8_clean(const char *s, size_t len, size_t *out_len) {
    size_t i = 0;
    rhm_buf b = {0};
    while (i < len) {
        int bad, k = rhm_utf8_at((const unsigned char *)s, len, i, &bad);
        if (k) {
            rhm_buf_put(&b, s + i, (size_t)k);
            i += (size_t)k;
        } else {
            rhm_buf_puts(&b, "\xef\xbf\xbd");
            i += (size_t)bad;
        }
    }
    if (!b.p) rhm_buf_put(&b, "", 0);
    if (b.oom || !b.p) {
        rhm_buf_free(&b);
        return NULL;
    }
    if (out_len) *out_len = b.n;
    return b.p;
}

/* The response as the original gets it: decode(skip_special_tokens=True).strip(), bytes that are
 * not UTF-8 (a byte token the model emitted alone) becoming U+FFFD as Python's decode makes them. */
static char *rhm_response(const rh_model *m, const int *ids, int n) {
    char *s = NULL, *raw = NULL;
    size_t len = 0, a = 0;
    int *v = (int *)malloc((size_t)(n > 0 ? n : 1) * sizeof *v), nv = 0, k, rc;
    /* ids past the tokenizer (padding rows of the embedding, which a model can emit; random
     * weights of a --shape) stand for no bytes */
    if (!v) return NULL;
    for (k = 0; k < n; k++)
        if (ids[k] >= 0 && ids[k] < rh_n_tokens(m)) v[nv++] = ids[k];
    rc = rh_detokenize(m, v, nv, RH_DETOK_STRIP_LEADING | RH_DETOK_SKIP_SPECIAL, &raw, &len, NULL, 0);
    free(v);
    if (rc) return NULL;
    s = rhm_utf8_clean(raw, len, &len);
    free(raw);
    if (!s) return NULL;
    while (a < len && isspace((unsigned char)s[a])) a++;
    while (len > a && isspace((unsigned char)s[len - 1])) len--;
    memmove(s, s + a, len - a);
    s[len - a] = 0;
    return s;
}

/* Test t of the grid, built: its prompt, the needle and the answer span in it. */
static int rhm_build_grid_test(const rhm_exp *E, int t, rhm_test *T, char *msg, size_t cap) {
    int li, di, ni, *ans[2], n_ans[2];
    rhm_niah N;
    memset(&N, 0, sizeof N);
    N.m = E->m;
    N.space_prefix = E->space_prefix;
    N.buffer = E->X.buffer;
    N.tmpl = E->tmpl;
    N.span_exact = E->X.span == RH_SPAN_EXACT;
    N.span_whole_prompt = E->X.span_search == RH_SPAN_IN_PROMPT || E->X.compat_original;
    N.compat = E->X.compat_original;
    rhm_test_coords(E, t, &li, &di, &ni);
    N.hay = E->hays[E->n_hays > 1 ? ni : 0].ids;
    N.n_hay = E->hays[E->n_hays > 1 ? ni : 0].n;
    ans[0] = E->ans0[ni];
    ans[1] = E->ans1[ni];
    n_ans[0] = E->n_ans0[ni];
    n_ans[1] = E->n_ans1[ni];
    return rhm_build_test(&N, &E->nd[ni], E->needle_ids[ni], E->n_needle_ids[ni], ans, n_ans, E->lengths[li],
                          E->depths[di], T, msg, cap);
}

/* Test t, built, run and scored: its record line in *line, its response and recall for the
 * progress report. */
static int rhm_run_test(rhm_exp *E, rhm_session *S, int t, rhm_buf *line, char **resp_out, double *recall_out,
                        char *msg, size_t cap) {
    const int detect = E->is_detect;
    char key[17];
    int li, di, ni, n_out = 0, i, rc;
    rhm_test T;
    char *resp;
    double recall;
    rhm_test_key(E, t, key);
    rhm_test_coords(E, t, &li, &di, &ni);
    rc = rhm_build_grid_test(E, t, &T, msg, cap);
    if (rc) return rc;
    /* ORIGINAL: a test whose span is not found scored zeros for every head; here it is reported
     * and left out of the score file */
    if (detect && T.span_start < 0)
        rhm_note(E, "length %d depth %g needle %d: the answer span was not found in the prompt; the test is reported and not scored",
                 E->lengths[li], E->depths[di], ni);
    for (i = 0; i < E->n_lh; i++) S->head[i] = 0;
    if (detect && T.span_start >= 0) {
        unsigned char *nh = (unsigned char *)realloc(S->hit, (size_t)E->n_lh * (size_t)(T.span_end - T.span_start));
        if (!nh) {
            rhm_test_free(&T);
            set_err(msg, cap, "out of memory");
            return RH_ENOMEM;
        }
        S->hit = nh;
    }
    rc = rhm_generate(S, E, &T, detect, &n_out, msg, cap);
    if (rc) {
        rhm_test_free(&T);
        return rc;
    }
    resp = rhm_response(E->m, S->out, n_out);
    if (!resp) {
        rhm_test_free(&T);
        set_err(msg, cap, "cannot decode the response");
        return RH_ENOMEM;
    }
    recall = rh_rouge1_recall(E->nd[ni].answer, strlen(E->nd[ni].answer), resp, strlen(resp));
    /* the record line */
    rhm_buf_printf(line, "{\"key\": \"%s\", \"test\": %d, \"context_length\": %d, \"depth_percent\": ", key, t, E->lengths[li]);
    rhm_buf_double(line, E->depths[di]);
    rhm_buf_printf(line, ", \"needle_index\": %d, \"needle\": ", ni);
    rhm_buf_json_str(line, E->nd[ni].needle, strlen(E->nd[ni].needle));
    rhm_buf_puts(line, ", \"question\": ");
    rhm_buf_json_str(line, E->nd[ni].question, strlen(E->nd[ni].question));
    rhm_buf_puts(line, ", \"answer\": ");
    rhm_buf_json_str(line, E->nd[ni].answer, strlen(E->nd[ni].answer));
    rhm_buf_printf(line, ", \"prompt_tokens\": %d, \"context_tokens\": %d, \"insert_at\": %d, \"needle_tokens\": [%d, %d], \"span\": ",
                   T.n_ids, T.n_ctx_tokens, T.insert_at, T.needle_lo, T.needle_hi);
    if (T.span_start >= 0)
        rhm_buf_printf(line, "[%d, %d], \"span_form\": \"%s\"", T.span_start, T.span_end, T.span_variant ? "alone" : "in-context");
    else rhm_buf_puts(line, "null");
    rhm_buf_puts(line, ", \"model_response\": ");
    rhm_buf_json_str(line, resp, strlen(resp));
    rhm_buf_printf(line, ", \"generated_tokens\": %d, \"rouge1_recall\": ", n_out);
    rhm_buf_double(line, recall);
    rhm_buf_puts(line, ", \"score\": ");
    rhm_buf_double(line, recall * 100);
    if (detect) {
        int first = 1;
        rhm_buf_printf(line, ", \"kept\": %s, \"head_scores\": {", T.span_start >= 0 && rhm_retrieved(recall) ? "true" : "false");
        for (i = 0; i < E->n_lh; i++)
            if (S->head[i] != 0) {
                rhm_buf_printf(line, "%s\"%d-%d\": ", first ? "" : ", ", i / E->cfg->n_heads, i % E->cfg->n_heads);
                rhm_buf_double(line, S->head[i]);
                first = 0;
            }
        rhm_buf_puts(line, "}");
    } else {
        /* eval (1.4): the label of the response: retrieved, partial, degenerate, from the haystack
         * or hallucinated */
        const char *ans = E->nd[ni].answer;
        int lab = rh_response_label(resp, strlen(resp), &ans, 1, T.context, strlen(T.context), E->nd[ni].needle,
                                    strlen(E->nd[ni].needle));
        if (lab < 0) {
            rhm_test_free(&T);
            free(resp);
            set_err(msg, cap, "out of memory");
            return RH_ENOMEM;
        }
        rhm_buf_puts(line, ", \"mask\": ");
        rhm_buf_json_str(line, E->mask_label, strlen(E->mask_label));
        rhm_buf_printf(line, ", \"label\": \"%s\"", rh_label_names[lab]);
    }
    rhm_buf_puts(line, "}");
    rhm_test_free(&T);
    *resp_out = resp;
    *recall_out = recall;
    return line->oom ? RH_ENOMEM : RH_OK;
}

/* ---- write: the outputs of a finished (or merged) run ---- */

/* detect: the score file (kept tests, grid order), its sidecar, the SVG. */
static int rhm_detect_outputs(rhm_exp *E, rhm_recs *R, rh_experiment_result *res, char *msg, size_t cap) {
    rh_scores s;
    int t, i, kept = 0, lost = 0, no_span = 0, rc;
    double *dense = (double *)malloc((size_t)E->n_lh * sizeof *dense);
    rhm_buf b = {0};
    if (!dense || rh_scores_init(&s, E->cfg->n_layers, E->cfg->n_heads)) {
        free(dense);
        return RH_ENOMEM;
    }
    if (E->have_old) /* --append: the existing lists first, then this run's tests */
        for (i = 0; i < E->old.n_layers * E->old.n_heads; i++) {
            int l = i / E->old.n_heads, h = i % E->old.n_heads, j;
            for (j = 0; j < E->old.n_tests[i]; j++) rh_scores_push(&s, l * E->cfg->n_heads + h, E->old.scores[i][j]);
        }
    for (t = 0; t < E->n_tests; t++) {
        char key[17];
        const rhm_rec *rec;
        const rhj *k, *hs;
        if (!rhm_mine(E, t)) continue;
        rhm_test_key(E, t, key);
        rec = rhm_recs_find(R, key);
        if (!rec) continue;
        k = rhj_get(&rec->v, "kept");
        if (rhj_get(&rec->v, "span") && rhj_get(&rec->v, "span")->type == RHJ_NULL) no_span++;
        if (!k || k->type != RHJ_TRUE) {
            lost++;
            continue;
        }
        kept++;
        {
            /* --append: a test the score file holds already is not added again */
            char q[20];
            snprintf(q, sizeof q, "\"%s\"", key);
            if (E->have_old && E->score_keys.p && strstr(E->score_keys.p, q)) continue;
            rhm_buf_printf(&E->score_keys, "%s%s", E->score_keys.n ? ", " : "", q);
        }
        for (i = 0; i < E->n_lh; i++) dense[i] = 0;
        hs = rhj_get(&rec->v, "head_scores");
        if (hs && hs->type == RHJ_OBJ)
            for (i = 0; i < hs->n; i++) {
                int l, h;
                if (!rhm_parse_head_key(hs->keys[i], hs->keylens[i], &l, &h) && l < E->cfg->n_layers &&
                    h < E->cfg->n_heads && hs->items[i].type == RHJ_NUM)
                    dense[l * E->cfg->n_heads + h] = hs->items[i].num;
            }
        for (i = 0; i < E->n_lh; i++)
            if (rh_scores_push(&s, i, dense[i])) {
                free(dense);
                rh_scores_free(&s);
                return RH_ENOMEM;
            }
    }
    free(dense);
    res->n_kept = kept;
    res->n_not_kept = lost;
    res->n_no_span = no_span;
    if (s.n_tests[0] == 0) {
        /* nothing to score: no file that would read as "every head scores nothing" */
        set_err(msg, cap, "no test was kept (%d tests; a test is kept when its answer is retrieved, ROUGE-1 recall > 50 %%, and its "
                "answer span is located: %d had no span); no score file written, the records are in %s",
                kept + lost, no_span, E->rec_path.p);
        rh_scores_free(&s);
        return RH_ERANGE;
    }
    rhm_scores_format(&s, &b);
    rc = b.oom ? RH_ENOMEM : rhm_write_atomic(E->score_path.p, b.p, b.n, msg, cap);
    E->score_fnv = rhm_fnv(RHM_FNV0, b.p, b.n);
    if (!rc) {
        char **xt = (char **)calloc((size_t)E->cfg->n_heads, sizeof(char *));
        char **yt = (char **)calloc((size_t)E->cfg->n_layers, sizeof(char *));
        double *val = (double *)malloc((size_t)E->n_lh * sizeof(double)), vmax = 0;
        rhm_buf title = {0}, run = {0}, svg = {0};
        int n_ret = 0, ok = xt && yt && val;
        for (i = 0; ok && i < E->cfg->n_heads; i++) {
            xt[i] = (char *)malloc(12);
            if (xt[i]) snprintf(xt[i], 12, "%d", i);
            else ok = 0;
        }
        for (i = 0; ok && i < E->cfg->n_layers; i++) {
            yt[i] = (char *)malloc(12);
            if (yt[i]) snprintf(yt[i], 12, "%d", i);
            else ok = 0;
        }
        if (ok) {
            for (i = 0; i < E->n_lh; i++) {
                val[i] = kept || E->have_old ? rh_scores_mean(&s, i) : NAN;
                if (!isnan(val[i]) && val[i] > vmax) vmax = val[i];
                if (!isnan(val[i]) && val[i] > 0.1) n_ret++;
            }
            rhm_buf_printf(&title, "Retrieval scores, %s: %d of %d heads > 0.1 (%d tests)", E->X.model, n_ret, E->n_lh,
                           s.n_tests[0]);
            rhm_run_json(E, &run, 1);
            rhm_svg_heatmap(&svg, title.p, "head", "layer", E->cfg->n_heads, E->cfg->n_layers, xt, yt, val, 0,
                            vmax > 1 ? vmax : 1, 1, 0, 0.1, run.p);
            if (!svg.oom) rc = rhm_write_atomic(E->svg_path.p, svg.p, svg.n, msg, cap);
        }
        if (xt)
            for (i = 0; i < E->cfg->n_heads; i++) free(xt[i]);
        if (yt)
            for (i = 0; i < E->cfg->n_layers; i++) free(yt[i]);
        free(xt);
        free(yt);
        free(val);
        rhm_buf_free(&title);
        rhm_buf_free(&run);
        rhm_buf_free(&svg);
    }
    rhm_buf_free(&b);
    if (rc) {
        rh_scores_free(&s);
        return rc;
    }
    res->appended = E->have_old;
    res->scores = s;
    return RH_OK;
}

/* niah: CSV, SVG (depth x length, mean over needles), run record. */
static int rhm_niah_outputs(rhm_exp *E, rhm_recs *R, rh_experiment_result *res, char *msg, size_t cap) {
    rhm_buf csv = {0}, run = {0}, svg = {0}, title = {0};
    double *sum = (double *)calloc((size_t)(E->n_len * E->n_dep), sizeof(double)), total = 0, *val;
    int *cnt = (int *)calloc((size_t)(E->n_len * E->n_dep), sizeof(int)), t, n = 0, rc = 0, li, di, ni;
    char **xt = (char **)calloc((size_t)E->n_len, sizeof(char *)), **yt = (char **)calloc((size_t)E->n_dep, sizeof(char *));
    val = (double *)malloc((size_t)(E->n_len * E->n_dep) * sizeof(double));
    if (!sum || !cnt || !xt || !yt || !val) {
        rc = RH_ENOMEM;
        goto out;
    }
    rhm_run_json(E, &run, 1);
    rhm_buf_puts(&csv, "context_length,depth_percent,needle,model_response,score,mask\n");
    for (t = 0; t < E->n_tests; t++) {
        char key[17], num[48];
        const rhm_rec *rec;
        const rhj *sc, *rs;
        if (!rhm_mine(E, t)) continue;
        rhm_test_key(E, t, key);
        rec = rhm_recs_find(R, key);
        if (!rec) continue;
        sc = rhj_get(&rec->v, "score");
        rs = rhj_get(&rec->v, "model_response");
        if (!sc || sc->type != RHJ_NUM || !rs || rs->type != RHJ_STR) continue;
        { /* the label counts (1.4) */
            const rhj *lb = rhj_get(&rec->v, "label");
            int k;
            for (k = 0; lb && lb->type == RHJ_STR && k < RH_N_LABELS; k++) res->n_labels[k] += !strcmp(lb->str, rh_label_names[k]);
        }
        rhm_test_coords(E, t, &li, &di, &ni);
        sum[di * E->n_len + li] += sc->num;
        cnt[di * E->n_len + li]++;
        total += sc->num;
        n++;
        rhm_buf_printf(&csv, "%d,%g,", E->lengths[li], E->depths[di]);
        rhm_csv_field(&csv, E->nd[ni].needle, strlen(E->nd[ni].needle));
        rhm_buf_put(&csv, ",", 1);
        rhm_csv_field(&csv, rs->str, rs->len);
        rhm_fmt_double(num, sizeof num, sc->num);
        rhm_buf_printf(&csv, ",%s,", num);
        rhm_csv_field(&csv, E->mask_label, strlen(E->mask_label));
        rhm_buf_put(&csv, "\n", 1);
    }
    if (csv.oom) {
        rc = RH_ENOMEM;
        goto out;
    }
    rc = rhm_write_atomic(E->csv_path.p, csv.p, csv.n, msg, cap);
    for (li = 0; li < E->n_len && !rc; li++) {
        xt[li] = (char *)malloc(24);
        if (!xt[li]) rc = RH_ENOMEM;
        else snprintf(xt[li], 24, "%d", E->lengths[li]);
    }
    for (di = 0; di < E->n_dep && !rc; di++) {
        yt[di] = (char *)malloc(24);
        if (!yt[di]) rc = RH_ENOMEM;
        else snprintf(yt[di], 24, "%g", E->depths[di]);
    }
    if (rc) goto out;
    for (t = 0; t < E->n_len * E->n_dep; t++) val[t] = cnt[t] ? sum[t] / cnt[t] : NAN;
    rhm_buf_printf(&title, "NIAH, %s, mask %s: mean score %.1f over %d tests", E->X.model, E->mask_label,
                   n ? total / n : 0.0, n);
    rhm_svg_heatmap(&svg, title.p, "context length (tokens)", "depth (%)", E->n_len, E->n_dep, xt, yt, val, 0, 100, 0, 1,
                    0, run.p);
    if (svg.oom) rc = RH_ENOMEM;
    if (!rc) rc = rhm_write_atomic(E->svg_path.p, svg.p, svg.n, msg, cap);
    if (rc) goto out;
    res->cell_mean = val;
    res->cell_n = cnt;
    val = NULL;
    cnt = NULL;
    res->mean = n ? total / n : 0.0;
    res->n_scored = n;
out:
    if (xt)
        for (li = 0; li < E->n_len; li++) free(xt[li]);
    if (yt)
        for (di = 0; di < E->n_dep; di++) free(yt[di]);
    free(xt);
    free(yt);
    free(val);
    free(sum);
    free(cnt);
    rhm_buf_free(&csv);
    rhm_buf_free(&run);
    rhm_buf_free(&svg);
    rhm_buf_free(&title);
    return rc;
}

static char *rhm_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* The grid, the mask and the paths into the result (what the command line prints). */
static int rhm_result_fill(const rhm_exp *E, rh_experiment_result *res) {
    int i, k = 0;
    res->n_tests = E->n_mine;
    res->n_resumed = E->n_done_before;
    res->n_run = E->n_run;
    res->n_lengths = E->n_len;
    res->n_depths = E->n_dep;
    res->lengths = (int *)malloc((size_t)E->n_len * sizeof *res->lengths);
    res->depths = (double *)malloc((size_t)E->n_dep * sizeof *res->depths);
    res->mask_label = rhm_strdup(E->mask_label);
    res->kv_label = rhm_strdup(E->kv_label);
    if (!res->lengths || !res->depths || !res->mask_label || !res->kv_label) return RH_ENOMEM;
    memcpy(res->lengths, E->lengths, (size_t)E->n_len * sizeof *res->lengths);
    memcpy(res->depths, E->depths, (size_t)E->n_dep * sizeof *res->depths);
    {
        const char *p[4];
        if (E->is_detect) {
            p[0] = E->score_path.p; p[1] = E->run_path.p; p[2] = E->svg_path.p; p[3] = E->rec_path.p;
        } else {
            p[0] = E->rec_path.p; p[1] = E->csv_path.p; p[2] = E->svg_path.p; p[3] = E->run_path.p;
        }
        for (i = 0; i < 4; i++)
            if (!(res->paths[k++] = rhm_strdup(p[i]))) return RH_ENOMEM;
    }
    return RH_OK;
}

void rh_experiment_result_free(rh_experiment_result *r) {
    int i;
    if (!r) return;
    rh_scores_free(&r->scores);
    free(r->lengths);
    free(r->depths);
    free(r->cell_mean);
    free(r->cell_n);
    free(r->kv_label);
    free(r->mask_label);
    for (i = 0; i < 5; i++) free(r->paths[i]);
    memset(r, 0, sizeof *r);
}

void rh_experiment_default(rh_experiment *x, rh_experiment_kind kind) {
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->model = "weights/demo.rhw";
    x->haystack = "weights/haystack";
    x->needles = "weights/needles.jsonl";
    x->buffer = 200;
    x->max_new = 50;
    x->mask.seed = 1;
    x->mask_mode = RH_MASK_UNIFORM;
    rh_ctx_params_default(&x->ctx);
    x->shard_n = 1;
    x->out = kind == RH_DETECT ? "retrieval_scores.json" : "niah";
}

/* The ETA's rates, fitted to the tests run so far (their prefill and decode times against their
 * costs under unit rates): prefill by least squares on calls and FLOPs (both >= 0), decode by
 * bytes.  The same model as --dry-run's, measured on the run itself. */
typedef struct {
    double cc, cf, ff, ct, ft, tp; /* sums of calls^2, calls x flops, flops^2, calls x t, flops x t, t */
    double bytes, td;
} rhm_eta;

static void rhm_eta_add(rhm_eta *e, const rh_cost *c, double t_prefill, double t_decode) {
    e->cc += c->prefill_calls * c->prefill_calls;
    e->cf += c->prefill_calls * c->prefill_flops;
    e->ff += c->prefill_flops * c->prefill_flops;
    e->ct += c->prefill_calls * t_prefill;
    e->ft += c->prefill_flops * t_prefill;
    e->tp += t_prefill;
    e->bytes += c->decode_bytes;
    e->td += t_decode;
}

static void rhm_eta_rates(const rhm_eta *e, rh_cost_rates *r) {
    double det = e->cc * e->ff - e->cf * e->cf;
    r->prefill_chunk_s = r->prefill_flop_s = r->decode_byte_s = 0;
    if (det > 1e-12 * e->cc * e->ff && det > 0) {
        r->prefill_chunk_s = (e->ct * e->ff - e->ft * e->cf) / det;
        r->prefill_flop_s = (e->ft * e->cc - e->ct * e->cf) / det;
    }
    if (r->prefill_chunk_s < 0 || !(r->prefill_flop_s > 0)) {
        r->prefill_chunk_s = 0;
        r->prefill_flop_s = e->ff > 0 ? e->ft / e->ff : 0;
    }
    r->decode_byte_s = e->bytes > 0 ? e->td / e->bytes : 0;
}

int rh_experiment_run(const rh_experiment *x, rh_experiment_result *res_out, char *msg, size_t cap) {
    rhm_exp E;
    rhm_recs R = {0};
    rhm_session S;
    rhm_schedule P;
    rhm_eta eta;
    rh_cost_rates unit;
    rh_cost rest;
    rh_experiment_result res_local, *res = res_out ? res_out : &res_local;
    int rc, k;
    double t_run0;
    memset(res, 0, sizeof *res);
    memset(&S, 0, sizeof S);
    memset(&P, 0, sizeof P);
    memset(&eta, 0, sizeof eta);
    if (!x) {
        set_err(msg, cap, "rh_experiment_run: no experiment");
        return RH_EINVAL;
    }
    /* set up */
    rc = rhm_exp_setup(&E, x, msg, cap);
    /* plan: the tests to run, their order, what they cost */
    if (!rc) rc = rhm_plan(&E, &R, &P, msg, cap);
    if (!rc) rc = rh_cost_measure(E.m, &E.X.ctx, 0, &unit, msg, cap);
    if (!rc) {
        rh_experiment_cost *c = &res->cost;
        rh_ctx_params cp = E.X.ctx;
        rh_cost_rates r = unit;
        if (x->dry_run) rc = rh_cost_measure(E.m, &E.X.ctx, RHM_MEASURE_S, &r, msg, cap);
        if (!rc) rhm_plan_cost(&E, &P, &r, c);
        cp.n_ctx = x->ctx.n_ctx ? x->ctx.n_ctx : P.max_need;
        if (!rc && P.n) rc = rh_ctx_sizes_of(E.m, &cp, &c->ctx, msg, cap);
        if (!rc && P.n) E.kv_sz = c->ctx;
        c->plan_bytes = (double)P.arena_n * sizeof(int) + (double)P.n * sizeof(rhm_item);
        c->peak_bytes = c->ctx.weight_bytes + (c->ctx.kv_bytes + c->ctx.scratch_bytes > c->plan_bytes
                                                   ? c->ctx.kv_bytes + c->ctx.scratch_bytes
                                                   : c->plan_bytes);
        S.n_ctx = P.max_need;
    }
    /* the prompts' ids were for ordering and costing: each test builds its own again */
    free(P.arena);
    P.arena = NULL;
    for (k = 0; k < P.n; k++) P.it[k].ids = NULL;
    if (!rc && x->dry_run) {
        rc = rhm_result_fill(&E, res);
        goto done;
    }
    if (!rc) {
        S.logits = (float *)malloc((size_t)E.cfg->vocab_size * sizeof *S.logits);
        S.top1 = (int32_t *)malloc((size_t)E.n_lh * sizeof *S.top1);
        S.head = (double *)malloc((size_t)E.n_lh * sizeof *S.head);
        S.out = (int *)malloc((size_t)x->max_new * sizeof *S.out);
        if (!S.logits || !S.top1 || !S.head || !S.out) rc = RH_ENOMEM;
    }
    if (rc) goto done;
    /* run every test of this shard not finished before, in the planned order; the records file
     * is rewritten after each (in grid order), so a killed run loses at most the test it was in */
    res->running = 1;
    memset(&rest, 0, sizeof rest);
    for (k = 0; k < P.n; k++) {
        memset(&P.it[k].cost, 0, sizeof P.it[k].cost);
        rh_cost_add(E.m, &unit, P.it[k].keep, P.it[k].n_pre, P.it[k].n_dec, &P.it[k].cost);
        rest.prefill_calls += P.it[k].cost.prefill_calls;
        rest.prefill_flops += P.it[k].cost.prefill_flops;
        rest.decode_bytes += P.it[k].cost.decode_bytes;
    }
    t_run0 = rh_now();
    for (k = 0; k < P.n; k++) {
        char *resp = NULL;
        double recall = 0;
        rhm_buf line = {0};
        const rhm_item *it = &P.it[k];
        int t = it->t;
        rh_cost done;
        rc = rhm_run_test(&E, &S, t, &line, &resp, &recall, msg, cap);
        if (!rc && rhm_recs_add(&R, line.p, line.n, 1) < 0) rc = RH_ENOMEM;
        rhm_buf_free(&line);
        if (!rc) {
            E.n_run++;
            memset(&done, 0, sizeof done);
            rh_cost_add(E.m, &unit, S.kept, S.kept + S.prefilled, S.n_out, &done);
            rh_cost_add(E.m, &unit, S.kept, S.kept + S.prefilled, S.n_out, &res->done);
            rhm_eta_add(&eta, &done, S.t_prefill, S.t_decode);
            rc = rhm_write_records(&E, &R, msg, cap);
        }
        /* what is left, as planned (the expected decode) */
        rest.prefill_calls -= it->cost.prefill_calls;
        rest.prefill_flops -= it->cost.prefill_flops;
        rest.decode_bytes -= it->cost.decode_bytes;
        if (!rc && x->progress) {
            rh_progress p;
            rh_cost_rates r = unit;
            int li, di, ni;
            double el = rh_now() - t_run0, other = el - eta.tp - eta.td;
            rhm_eta_rates(&eta, &r);
            rhm_test_coords(&E, t, &li, &di, &ni);
            p.done = E.n_done_before + E.n_run;
            p.total = E.n_mine;
            p.resumed = E.n_done_before;
            p.elapsed_s = el;
            /* the model's time for the tests left, and the time between prefill and decode
             * (building prompts, scoring, writing records) at this run's rate per test */
            p.eta_s = rest.prefill_calls * r.prefill_chunk_s + rest.prefill_flops * r.prefill_flop_s +
                      rest.decode_bytes * r.decode_byte_s + (other > 0 ? other / E.n_run * (P.n - k - 1) : 0);
            p.length = E.lengths[li];
            p.depth = E.depths[di];
            p.needle = ni;
            p.score = recall * 100;
            p.response = resp;
            x->progress(x->user, &p);
        }
        free(resp);
        if (rc) goto done;
    }
    res->done.seconds = rh_now() - t_run0;
    res->prefill_s = eta.tp;
    res->decode_s = eta.td;
    /* write: the records once more (a merge of shards that ran nothing lands here), the outputs,
     * then the run record, marked finished */
    rc = rhm_write_records(&E, &R, msg, cap);
    if (!rc) rc = E.is_detect ? rhm_detect_outputs(&E, &R, res, msg, cap) : rhm_niah_outputs(&E, &R, res, msg, cap);
    if (!rc) rc = rhm_write_run(&E, 1, msg, cap);
    if (!rc) rc = rhm_result_fill(&E, res);
    if (!rc) res->running = 0;
done:
    if (rc == RH_ENOMEM && (!msg || !msg[0])) set_err(msg, cap, "out of memory");
    rhm_plan_free(&P);
    rhm_session_free(&S);
    rhm_recs_free(&R);
    rhm_exp_free(&E);
    if (rc || !res_out) {
        int running = res->running;
        rh_experiment_result_free(res);
        res->running = running;
    }
    return rc;
}

/* ---- report and compare: the paper's properties from any score file ---- */


/* Average ranks (1-based; ties share their mean rank, as scipy.stats.rankdata). */
static void rhm_avg_ranks(const double *x, int n, double *rank) {
    rhm_rank *r = (rhm_rank *)malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    int i, j;
    if (!r) return;
    for (i = 0; i < n; i++) {
        r[i].mean = x[i];
        r[i].idx = i;
    }
    qsort(r, (size_t)n, sizeof *r, rhm_rank_cmp); /* descending; ranks are symmetric in sign */
    for (i = 0; i < n; i = j) {
        for (j = i; j < n && r[j].mean == r[i].mean; j++) {
        }
        {
            double avg = (i + 1 + j) / 2.0; /* mean of ranks i+1 .. j */
            int k;
            for (k = i; k < j; k++) rank[r[k].idx] = avg;
        }
    }
    free(r);
}

/* Spearman's rho: the Pearson correlation of the average ranks; NAN when a side is constant. */
static double rhm_spearman(const double *a, const double *b, int n) {
    double *ra = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof *ra);
    double *rb = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof *rb);
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0, rho = NAN;
    int i;
    if (ra && rb && n > 1) {
        rhm_avg_ranks(a, n, ra);
        rhm_avg_ranks(b, n, rb);
        for (i = 0; i < n; i++) {
            ma += ra[i];
            mb += rb[i];
        }
        ma /= n;
        mb /= n;
        for (i = 0; i < n; i++) {
            sab += (ra[i] - ma) * (rb[i] - mb);
            saa += (ra[i] - ma) * (ra[i] - ma);
            sbb += (rb[i] - mb) * (rb[i] - mb);
        }
        if (saa > 0 && sbb > 0) rho = sab / sqrt(saa * sbb);
    }
    free(ra);
    free(rb);
    return rho;
}


/* ============================================================================================
 * 1.4 Tasks under masks: eval (generation, multiple choice, perplexity), labels of a response
 * ============================================================================================
 * The paper's second half: masking the retrieval heads wrecks what needs the context (chain of
 * thought, extractive QA) and barely touches answers from the model's own knowledge, and masked
 * models hallucinate rather than refuse.  rh_eval_task_run reads as rh_experiment_run: set up
 * (items, shots, prompts, the mask), plan (the finished items of earlier runs), run each item
 * through the mask hook, write the outputs.  The metrics are lm-evaluation-harness's and
 * SQuAD's; each says where it comes from.  Static names here start with rhe_. */

/* ---- the labels of a response (rh_label; the rules are in the header) ---- */

const char *const rh_label_names[] = {"retrieved", "partial", "degenerate", "haystack", "hallucinated", NULL};

/* The words of s as ROUGE-1 sees them (rhm_rouge_tokenize), each hashed (64-bit FNV-1a of the
 * stem) for the comparisons below. */
static int rhe_words(const char *s, size_t n, uint64_t **w, int *nw) {
    rhm_toks t = {0};
    int i;
    *w = NULL;
    *nw = 0;
    if (rhm_rouge_tokenize(s, n, &t) ||
        !(*w = (uint64_t *)malloc((size_t)(t.n > 0 ? t.n : 1) * sizeof **w))) {
        rhm_toks_free(&t);
        return RH_ENOMEM;
    }
    for (i = 0; i < t.n; i++) (*w)[i] = rhm_fnv(RHM_FNV0, t.tok[i], strlen(t.tok[i]));
    *nw = t.n;
    rhm_toks_free(&t);
    return RH_OK;
}

/* The words end in a loop: a cycle of p <= 4 words repeated at least 3 times, covering at least
 * half of the words. */
static int rhe_loops(const uint64_t *w, int n) {
    int p, i, run;
    for (p = 1; p <= 4 && 3 * p <= n; p++) {
        for (run = p, i = n - 1 - p; i >= 0 && w[i] == w[i + p]; i--) run++;
        if (run >= 3 * p && 2 * run >= n) return 1;
    }
    return 0;
}

/* k = min(3, nr) consecutive words of r occur in c, not overlapping c[skip_a, skip_b). */
static int rhe_copied(const uint64_t *r, int nr, const uint64_t *c, int nc, int skip_a, int skip_b) {
    int k = nr < 3 ? nr : 3, i, j, l;
    for (i = 0; k > 0 && i + k <= nr; i++)
        for (j = 0; j + k <= nc; j++) {
            if (j < skip_b && j + k > skip_a) continue;
            for (l = 0; l < k && r[i + l] == c[j + l]; l++) {
            }
            if (l == k) return 1;
        }
    return 0;
}

int rh_response_label(const char *response, size_t rlen, const char *const *answers, int n_answers,
                      const char *context, size_t clen, const char *needle, size_t nlen) {
    double best = 0;
    uint64_t *r = NULL, *c = NULL, *nd = NULL;
    int i, nr = 0, nc = 0, nn = 0, skip = -1, label;
    for (i = 0; i < n_answers; i++) {
        double x = rh_rouge1_recall(answers[i], strlen(answers[i]), response, rlen);
        if (x < 0) return RH_ENOMEM;
        if (x > best) best = x;
    }
    if (rhm_retrieved(best)) return RH_LABEL_RETRIEVED;
    if (best > 0) return RH_LABEL_PARTIAL;
    if (rhe_words(response, rlen, &r, &nr)) return RH_ENOMEM;
    if (nr == 0 || rhe_loops(r, nr)) {
        free(r);
        return RH_LABEL_DEGENERATE;
    }
    if (rhe_words(context ? context : "", context ? clen : 0, &c, &nc) ||
        rhe_words(needle ? needle : "", needle ? nlen : 0, &nd, &nn)) {
        free(r);
        free(c);
        free(nd);
        return RH_ENOMEM;
    }
    /* the needle's words in the context: its first occurrence */
    for (i = 0; nn > 0 && skip < 0 && i + nn <= nc; i++)
        if (!memcmp(c + i, nd, (size_t)nn * sizeof *nd)) skip = i;
    label = rhe_copied(r, nr, c, nc, skip, skip < 0 ? -1 : skip + nn) ? RH_LABEL_HAYSTACK : RH_LABEL_HALLUCINATED;
    free(r);
    free(c);
    free(nd);
    return label;
}

/* ---- SQuAD v1.1 (its official evaluate-v1.1.py): normalize_answer, exact match, token F1 ----
 * normalize_answer(s) = white_space_fix(remove_articles(remove_punc(lower(s)))):
 *   lower            str.lower(); here the letters of ASCII, Latin-1, Latin Extended-A and
 *                    Cyrillic (rhe_lower_cp), other characters unchanged
 *   remove_punc      drop every character of string.punctuation (the 32 ASCII signs below)
 *   remove_articles  re.sub(r'\b(a|an|the)\b', ' ', text): a maximal run of word characters that
 *                    is a, an or the becomes a space; word characters [A-Za-z0-9_] and, as Python's
 *                    \w for the letters of other scripts, every byte >= 0x80
 *   white_space_fix  ' '.join(text.split()): str.split's ASCII whitespace (\t \n \v \f \r, space
 *                    and \x1c-\x1f); other Unicode spaces stay inside words here
 * f1_score: common = Counter(prediction tokens) & Counter(ground-truth tokens); 0 when nothing
 * is common, else precision = common / |prediction|, recall = common / |truth|,
 * 2 precision recall / (precision + recall).  Several answers: the best of each
 * (metric_max_over_ground_truths). */

static const char rhe_punct[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
static int rhe_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }
static int rhe_wordc(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

/* str.lower() of a code point for the letters of Latin-1, Latin Extended-A and Cyrillic (Greek
 * is left as it is: Python lowers a final sigma by its context); others unchanged. */
static unsigned rhe_lower_cp(unsigned c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7) || (c >= 0x410 && c <= 0x42f)) return c + 32;
    if (c >= 0x400 && c <= 0x40f) return c + 80;
    if ((c >= 0x100 && c <= 0x137 && c % 2 == 0 && c != 0x130) || (c >= 0x139 && c <= 0x148 && c % 2 == 1) ||
        (c >= 0x14a && c <= 0x177 && c % 2 == 0) || (c >= 0x179 && c <= 0x17e && c % 2 == 1))
        return c + 1;
    return c == 0x178 ? 0xff : c;
}

/* normalize_answer(s) into out (NUL-terminated, tokens separated by one space). */
static void rhe_squad_norm(const char *s, size_t n, rhm_buf *out) {
    rhm_buf t = {0};
    size_t i, j;
    int first = 1;
    for (i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        int bad, k = rhm_utf8_at((const unsigned char *)s, n, i, &bad);
        unsigned cp = k == 1 ? u[0] : k == 2 ? (u[0] & 0x1fu) << 6 | (u[1] & 0x3fu) : 0;
        char e[2];
        if (k == 2 && cp < 0x800 && rhe_lower_cp(cp) != cp) { /* a 2-byte letter, lowered (still 2 bytes) */
            cp = rhe_lower_cp(cp);
            e[0] = (char)(0xc0 | cp >> 6);
            e[1] = (char)(0x80 | (cp & 0x3f));
            rhm_buf_put(&t, e, 2);
        } else if (k == 1) {
            if (!(u[0] && strchr(rhe_punct, (char)u[0]))) {
                e[0] = (char)rhe_lower_cp(u[0]);
                rhm_buf_put(&t, e, 1);
            }
        } else {
            rhm_buf_put(&t, s + i, (size_t)(k ? k : bad));
        }
        i += (size_t)(k ? k : bad);
    }
    for (i = 0; i < t.n; i = j) { /* articles -> one space */
        for (j = i; j < t.n && rhe_wordc((unsigned char)t.p[j]); j++) {
        }
        if (j == i) {
            j = i + 1;
            continue;
        }
        if ((j - i == 1 && t.p[i] == 'a') || (j - i == 2 && !memcmp(t.p + i, "an", 2)) ||
            (j - i == 3 && !memcmp(t.p + i, "the", 3))) {
            memset(t.p + i, ' ', j - i);
        }
    }
    out->n = 0;
    rhm_buf_put(out, "", 0);
    for (i = 0; i < t.n; i = j) { /* split, join with one space */
        while (i < t.n && rhe_space((unsigned char)t.p[i])) i++;
        for (j = i; j < t.n && !rhe_space((unsigned char)t.p[j]); j++) {
        }
        if (j > i) {
            if (!first) rhm_buf_put(out, " ", 1);
            rhm_buf_put(out, t.p + i, j - i);
            first = 0;
        }
    }
    if (t.oom) out->oom = 1;
    rhm_buf_free(&t);
}

/* The tokens of a normalised string (split in place at its spaces): count, in *tok (malloc'd). */
static int rhe_split(char *s, char ***tok) {
    int n = 0, k = 0;
    char *p;
    for (p = s; *p; p++) n += p == s || p[-1] == ' ';
    *tok = (char **)malloc((size_t)(n > 0 ? n : 1) * sizeof **tok);
    if (!*tok) return -1;
    for (p = s; *p; p++) {
        if (p == s || p[-1] == 0) (*tok)[k++] = p;
        if (*p == ' ') *p = 0;
    }
    return k;
}

/* SQuAD exact match and F1 of a prediction against one answer; -1 when out of memory. */
static int rhe_squad(const char *pred, size_t pn, const char *gold, size_t gn, double *f1) {
    rhm_buf a = {0}, b = {0};
    char **ta = NULL, **tb = NULL;
    int na, nb, i = 0, j = 0, common = 0, em;
    rhe_squad_norm(pred, pn, &a);
    rhe_squad_norm(gold, gn, &b);
    if (a.oom || b.oom || !a.p || !b.p) {
        rhm_buf_free(&a);
        rhm_buf_free(&b);
        return -1;
    }
    em = !strcmp(a.p, b.p);
    na = rhe_split(a.p, &ta);
    nb = rhe_split(b.p, &tb);
    if (na < 0 || nb < 0) {
        free(ta);
        free(tb);
        rhm_buf_free(&a);
        rhm_buf_free(&b);
        return -1;
    }
    qsort(ta, (size_t)na, sizeof *ta, rhm_strcmp_pp);
    qsort(tb, (size_t)nb, sizeof *tb, rhm_strcmp_pp);
    while (i < na && j < nb) { /* the two sorted multisets: min of the counts */
        int c = strcmp(ta[i], tb[j]);
        if (c == 0) {
            common++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    if (common == 0) {
        *f1 = 0;
    } else {
        double p = 1.0 * common / na, r = 1.0 * common / nb;
        *f1 = (2 * p * r) / (p + r);
    }
    free(ta);
    free(tb);
    rhm_buf_free(&a);
    rhm_buf_free(&b);
    return em;
}

/* ---- GSM8K's answer filters and exact match, as lm-evaluation-harness has them ----
 * lm_eval/tasks/gsm8k/gsm8k.yaml (version 3.0) and lm_eval/filters/extraction.py (RegexFilter):
 *   strict-match      re.findall(r"#### (\-?[0-9\.\,]+)", response): the first match, .strip()
 *   flexible-extract  re.findall(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", response): the last match
 *                     (group_select -1), its non-empty group, .strip()
 *   no match          "[invalid]" (RegexFilter's fallback)
 * then exact_match (lm_eval/api/metrics.py, ported from Hugging Face evaluate) with
 * regexes_to_ignore ",", "\$", "(?s).*#### ", "\.$" (re.sub on the prediction and on the
 * reference, in that order) and ignore_case; the reference is the whole answer (doc_to_target
 * "{{answer}}"), so its number is what follows the last "#### ".  The scanners below are those
 * regexes by hand, leftmost-first with Python's backtracking; the matches hold no whitespace, so
 * .strip() changes nothing. */

static int rhe_numc(char c) { return (c >= '0' && c <= '9') || c == '.' || c == ','; }
static int rhe_flexc(char c) { return rhe_numc(c) || c == '$'; }
static int rhe_digit(char c) { return c >= '0' && c <= '9'; }
static size_t rhe_run(const char *s, size_t n, size_t i, int (*cls)(char)) {
    size_t j = i;
    while (j < n && cls(s[j])) j++;
    return j - i;
}

/* strict-match: [*a, *b) of the first match's group; 0 when there is none. */
static int rhe_strict(const char *s, size_t n, size_t *a, size_t *b) {
    size_t i;
    for (i = 0; i + 5 <= n; i++) {
        size_t g = i + 5, r;
        if (memcmp(s + i, "#### ", 5)) continue;
        /* \-? greedy, then [0-9.,]+; without a number after the '-' it backtracks to no '-',
         * where [0-9.,]+ cannot start at '-' */
        if (g < n && s[g] == '-' && rhe_run(s, n, g + 1, rhe_numc) > 0) r = 1 + rhe_run(s, n, g + 1, rhe_numc);
        else r = rhe_run(s, n, g, rhe_numc);
        if (r == 0) continue;
        *a = g;
        *b = g + r;
        return 1;
    }
    return 0;
}

/* The flexible regex's match at i: its end, or 0 when none starts there. */
static size_t rhe_flex_at(const char *s, size_t n, size_t i) {
    size_t r;
    if (s[i] == '-') { /* (-?[$0-9.,]{2,}) with the '-', then (-?[0-9]+) with it */
        if ((r = rhe_run(s, n, i + 1, rhe_flexc)) >= 2) return i + 1 + r;
        if ((r = rhe_run(s, n, i + 1, rhe_digit)) >= 1) return i + 1 + r;
        return 0; /* without the '-' neither class can start at '-' */
    }
    if ((r = rhe_run(s, n, i, rhe_flexc)) >= 2) return i + r;
    if ((r = rhe_run(s, n, i, rhe_digit)) >= 1) return i + r;
    return 0;
}

/* flexible-extract: [*a, *b) of the last match; 0 when there is none. */
static int rhe_flexible(const char *s, size_t n, size_t *a, size_t *b) {
    size_t i = 0, e;
    int found = 0;
    while (i < n) {
        if ((e = rhe_flex_at(s, n, i)) > i) {
            *a = i;
            *b = e;
            found = 1;
            i = e;
        } else {
            i++;
        }
    }
    return found;
}

/* exact_match's normalisation: drop ',' and '$', everything through the last "#### ", a final
 * '.' (Python's $ also matches before a final newline), then lower case (ASCII). */
static void rhe_em_norm(const char *s, size_t n, rhm_buf *out) {
    size_t i, k = 0;
    out->n = 0;
    rhm_buf_put(out, "", 0);
    for (i = 0; i < n; i++)
        if (s[i] != ',' && s[i] != '$') rhm_buf_put(out, s + i, 1);
    if (out->oom || !out->p) return;
    for (i = 0; i + 5 <= out->n; i++)
        if (!memcmp(out->p + i, "#### ", 5)) k = i + 5;
    memmove(out->p, out->p + k, out->n - k + 1);
    out->n -= k;
    if (out->n >= 1 && out->p[out->n - 1] == '.') out->p[--out->n] = 0;
    else if (out->n >= 2 && out->p[out->n - 1] == '\n' && out->p[out->n - 2] == '.') {
        out->p[out->n - 2] = '\n';
        out->p[--out->n] = 0;
    }
    for (i = 0; i < out->n; i++)
        if (out->p[i] >= 'A' && out->p[i] <= 'Z') out->p[i] = (char)(out->p[i] - 'A' + 'a');
}

/* exact_match of an extracted answer against any reference: 1, 0, or -1 (out of memory). */
static int rhe_em(const char *pred, const char *const *refs, int n_refs) {
    rhm_buf a = {0}, b = {0};
    int i, ok = 0;
    rhe_em_norm(pred, strlen(pred), &a);
    for (i = 0; i < n_refs && !ok && !a.oom; i++) {
        rhe_em_norm(refs[i], strlen(refs[i]), &b);
        if (b.oom) break;
        ok = !strcmp(a.p, b.p);
    }
    i = a.oom || b.oom ? -1 : ok;
    rhm_buf_free(&a);
    rhm_buf_free(&b);
    return i;
}

/* ---- task items: a task file (JSON lines), GSM8K's JSON lines, or text files ---- */

const char *const rh_task_kind_names[] = {"generate", "choice", "perplexity", NULL};
const char *const rh_metric_names[] = {"exact", "number", "rouge1", "f1", NULL};
const char *const rh_task_format_names[] = {"items", "gsm8k", NULL};

typedef struct {
    char *id;
    rh_task_kind kind;
    rh_metric metric;      /* generate */
    char *prompt;          /* generate, choice: as in the file */
    char **answers;        /* generate */
    int n_answers;
    char **choices;        /* choice */
    int n_choices, gold;
    char *text;            /* perplexity */
    size_t text_len;
    int line;              /* in its file (1-based); 0 for a text file */
} rhe_item;

static void rhe_strs_free(char **v, int n) {
    int i;
    for (i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static void rhe_item_clear(rhe_item *it) {
    free(it->id);
    free(it->prompt);
    rhe_strs_free(it->answers, it->n_answers);
    rhe_strs_free(it->choices, it->n_choices);
    free(it->text);
    memset(it, 0, sizeof *it);
}

static void rhe_items_free(rhe_item *it, int n) {
    int i;
    for (i = 0; it && i < n; i++) rhe_item_clear(&it[i]);
    free(it);
}

/* The offset of the first byte of s[0..n) that is not part of valid UTF-8, or -1. */
static long rhe_utf8_bad(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int bad, k = rhm_utf8_at((const unsigned char *)s, n, i, &bad);
        if (!k) return (long)i;
        i += (size_t)k;
    }
    return -1;
}

/* Take the string v (non-empty, no NUL) into *dst.  (Its line is valid UTF-8 and the JSON reader
 * decodes escapes to UTF-8, a lone surrogate to U+FFFD, so the string is valid UTF-8.) */
static int rhe_take_str(rhj *v, char **dst, const char *what, const char *name, int line, char *err, size_t cap) {
    if (v->type != RHJ_STR || v->len == 0) {
        set_err(err, cap, "%s:%d: %s must be a non-empty string", name, line, what);
        return RH_EFORMAT;
    }
    if (memchr(v->str, 0, v->len)) {
        set_err(err, cap, "%s:%d: %s holds a NUL character (\\u0000)", name, line, what);
        return RH_EFORMAT;
    }
    *dst = v->str;
    v->str = NULL;
    return RH_OK;
}

/* A field that must be there. */
static rhj *rhe_need(const rhj *o, const char *key, const char *name, int line, char *err, size_t cap) {
    rhj *v = (rhj *)(uintptr_t)rhj_get(o, key);
    if (!v) set_err(err, cap, "%s:%d: missing \"%s\"", name, line, key);
    return v;
}

/* A string or a non-empty list of strings into *v / *n. */
static int rhe_take_strs(rhj *v, char ***out, int *n_out, const char *what, const char *name, int line, char *err,
                         size_t cap) {
    int i, k = v->type == RHJ_ARR ? v->n : 1, rc = RH_OK;
    char q[80];
    if (v->type != RHJ_STR && (v->type != RHJ_ARR || v->n == 0)) {
        set_err(err, cap, "%s:%d: \"%s\" must be a string or a non-empty list of strings", name, line, what);
        return RH_EFORMAT;
    }
    *out = (char **)calloc((size_t)k, sizeof **out);
    if (!*out) return RH_ENOMEM;
    *n_out = k;
    for (i = 0; i < k && !rc; i++) {
        snprintf(q, sizeof q, v->type == RHJ_ARR ? "\"%s\"[%d]" : "\"%s\"", what, i);
        rc = rhe_take_str(v->type == RHJ_ARR ? &v->items[i] : v, &(*out)[i], q, name, line, err, cap);
    }
    return rc;
}

/* One item from its parsed line (format items or gsm8k); index: its place among the items. */
static int rhe_item_parse(rhj *v, rh_task_format format, int index, const char *name, int line, rhe_item *it,
                          char *err, size_t cap) {
    rhj *f, *g;
    int k, rc;
    memset(it, 0, sizeof *it);
    it->line = line;
    it->gold = -1;
    if (v->type != RHJ_OBJ) {
        set_err(err, cap, "%s:%d: expected a JSON object (an item)", name, line);
        return RH_EFORMAT;
    }
    if (format == RH_FORMAT_GSM8K) {
        /* lm-evaluation-harness gsm8k: doc_to_text "Question: {{question}}\nAnswer:", doc_to_target
         * "{{answer}}" (the worked solution with its "#### N" line) */
        char *q = NULL;
        rhm_buf b = {0};
        if (!(f = rhe_need(v, "question", name, line, err, cap)) || (rc = rhe_take_str(f, &q, "\"question\"", name, line, err, cap)))
            return RH_EFORMAT;
        rhm_buf_printf(&b, "Question: %s\nAnswer:", q);
        free(q);
        if (b.oom) return RH_ENOMEM;
        it->prompt = b.p;
        if (!(f = rhe_need(v, "answer", name, line, err, cap))) return RH_EFORMAT;
        it->answers = (char **)calloc(1, sizeof(char *));
        if (!it->answers) return RH_ENOMEM;
        it->n_answers = 1;
        if ((rc = rhe_take_str(f, &it->answers[0], "\"answer\"", name, line, err, cap))) return rc;
        it->kind = RH_TASK_GENERATE;
        it->metric = RH_METRIC_NUMBER;
        it->id = (char *)malloc(32);
        if (!it->id) return RH_ENOMEM;
        snprintf(it->id, 32, "gsm8k-%d", index);
        if ((f = (rhj *)(uintptr_t)rhj_get(v, "id")) != NULL) {
            free(it->id);
            it->id = NULL;
            return rhe_take_str(f, &it->id, "\"id\"", name, line, err, cap);
        }
        return RH_OK;
    }
    if (!(f = rhe_need(v, "id", name, line, err, cap))) return RH_EFORMAT;
    if (f->type == RHJ_NUM && f->num == floor(f->num) && fabs(f->num) < 1e15) {
        it->id = (char *)malloc(24);
        if (!it->id) return RH_ENOMEM;
        snprintf(it->id, 24, "%.0f", f->num);
    } else if ((rc = rhe_take_str(f, &it->id, "\"id\" (a string or an integer)", name, line, err, cap))) {
        return rc;
    }
    if (!(f = rhe_need(v, "kind", name, line, err, cap))) return RH_EFORMAT;
    if (f->type != RHJ_STR || (k = rh_enum_parse(rh_task_kind_names, f->str)) < 0) {
        set_err(err, cap, "%s:%d: unknown kind %s%.40s%s (expected generate, choice or perplexity)", name, line,
                f->type == RHJ_STR ? "\"" : "", f->type == RHJ_STR ? f->str : "(not a string)", f->type == RHJ_STR ? "\"" : "");
        return RH_EFORMAT;
    }
    it->kind = (rh_task_kind)k;
    if (it->kind == RH_TASK_PERPLEXITY) {
        if (!(f = rhe_need(v, "text", name, line, err, cap))) return RH_EFORMAT;
        if ((rc = rhe_take_str(f, &it->text, "\"text\"", name, line, err, cap))) return rc;
        it->text_len = strlen(it->text);
        return RH_OK;
    }
    if (!(f = rhe_need(v, "prompt", name, line, err, cap))) return RH_EFORMAT;
    if ((rc = rhe_take_str(f, &it->prompt, "\"prompt\"", name, line, err, cap))) return rc;
    if (it->kind == RH_TASK_GENERATE) {
        if (!(f = rhe_need(v, "answer", name, line, err, cap))) return RH_EFORMAT;
        if ((rc = rhe_take_strs(f, &it->answers, &it->n_answers, "answer", name, line, err, cap))) return rc;
        if (!(f = rhe_need(v, "metric", name, line, err, cap))) return RH_EFORMAT;
        if (f->type != RHJ_STR || (k = rh_enum_parse(rh_metric_names, f->str)) < 0) {
            set_err(err, cap, "%s:%d: \"metric\" must be exact, number, rouge1 or f1", name, line);
            return RH_EFORMAT;
        }
        it->metric = (rh_metric)k;
        return RH_OK;
    }
    if (!(f = rhe_need(v, "choices", name, line, err, cap))) return RH_EFORMAT;
    if (f->type != RHJ_ARR || f->n < 2) {
        set_err(err, cap, "%s:%d: \"choices\" must be a list of at least 2 strings", name, line);
        return RH_EFORMAT;
    }
    if ((rc = rhe_take_strs(f, &it->choices, &it->n_choices, "choices", name, line, err, cap))) return rc;
    if (!(g = rhe_need(v, "gold", name, line, err, cap))) return RH_EFORMAT;
    if (g->type != RHJ_NUM || g->num != floor(g->num) || g->num < 0 || g->num >= it->n_choices) {
        set_err(err, cap, "%s:%d: \"gold\" must be the 0-based index of the right choice, 0..%d", name, line,
                it->n_choices - 1);
        return RH_EFORMAT;
    }
    it->gold = (int)g->num;
    return RH_OK;
}

/* The items of a task file: one JSON object a non-blank line, valid UTF-8, unique ids. */
static int rhe_items_parse(const char *text, size_t len, const char *name, rh_task_format format, rhe_item **out,
                           int *n_out, char *err, size_t cap) {
    size_t pos = 0;
    int n = 0, cp = 0, line = 0, rc = RH_OK, i;
    rhe_item *it = NULL;
    *out = NULL;
    *n_out = 0;
    while (pos < len && !rc) {
        const char *ls = text + pos;
        const char *nl = (const char *)memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos, k;
        long bad;
        rhj v;
        pos += ll + (nl ? 1 : 0);
        line++;
        for (k = 0; k < ll && (ls[k] == ' ' || ls[k] == '\t' || ls[k] == '\r'); k++) {
        }
        if (k == ll) continue;
        if ((bad = rhe_utf8_bad(ls, ll)) >= 0) {
            set_err(err, cap, "%s:%d: not valid UTF-8 (byte %ld of the line)", name, line, bad + 1);
            rc = RH_EFORMAT;
            break;
        }
        if ((rc = rhj_parse(ls, ll, name, &v, err, cap)) != RH_OK) {
            size_t el = err ? strlen(err) : 0;
            if (err && el + 16 < cap) snprintf(err + el, cap - el, " (line %d)", line);
            break;
        }
        if (n == cp) {
            int nc = cp ? cp * 2 : 64;
            rhe_item *q = nc > 10000000 ? NULL : (rhe_item *)realloc(it, (size_t)nc * sizeof *q);
            if (!q) {
                set_err(err, cap, "%s: too many items", name);
                rhj_free(&v);
                rc = RH_ENOMEM;
                break;
            }
            it = q;
            cp = nc;
        }
        rc = rhe_item_parse(&v, format, n, name, line, &it[n], err, cap);
        n++;
        rhj_free(&v);
    }
    if (!rc && n == 0) {
        set_err(err, cap, "%s: no items (JSON lines%s)", name,
                format == RH_FORMAT_GSM8K ? " with question, answer" : " with id, kind and the kind's fields");
        rc = RH_EFORMAT;
    }
    for (i = 1; !rc && n < 20000 && i < n; i++) { /* unique ids (quadratic: hashed below) */
        int j;
        for (j = 0; j < i && strcmp(it[i].id, it[j].id); j++) {
        }
        if (j < i) {
            set_err(err, cap, "%s:%d: id \"%.60s\" is also the id of line %d", name, it[i].line, it[i].id, it[j].line);
            rc = RH_EFORMAT;
        }
    }
    if (!rc && n >= 20000) { /* many items: sort the ids */
        char **ids = (char **)malloc((size_t)n * sizeof *ids);
        if (!ids) rc = RH_ENOMEM;
        for (i = 0; !rc && i < n; i++) ids[i] = it[i].id;
        if (!rc) qsort(ids, (size_t)n, sizeof *ids, rhm_strcmp_pp);
        for (i = 1; !rc && i < n; i++)
            if (!strcmp(ids[i], ids[i - 1])) {
                set_err(err, cap, "%s: id \"%.60s\" appears twice", name, ids[i]);
                rc = RH_EFORMAT;
            }
        free(ids);
    }
    if (rc) {
        rhe_items_free(it, n);
        return rc;
    }
    *out = it;
    *n_out = n;
    return RH_OK;
}

/* Perplexity items from a text file, or from each *.txt of a folder (name order); id: the
 * file's name. */
static int rhe_text_items(const char *path, rhe_item **out, int *n_out, char *err, size_t cap) {
    struct stat st;
    char **names = NULL;
    int n = 0, i, rc = RH_OK;
    rhe_item *it;
    *out = NULL;
    *n_out = 0;
    if (stat(path, &st) != 0) {
        set_err(err, cap, "--perplexity: %s: %s", path, strerror(errno));
        return RH_EIO;
    }
    if (S_ISDIR(st.st_mode)) {
        if ((rc = rhm_txt_files(path, &names, &n, err, cap)) != RH_OK) return rc;
        if (n == 0) {
            set_err(err, cap, "--perplexity: %s: no *.txt files in the folder", path);
            return RH_EIO;
        }
    } else {
        if (!(names = (char **)malloc(sizeof *names)) || !(names[0] = rhm_strdup(path))) {
            free(names);
            return RH_ENOMEM;
        }
        n = 1;
    }
    it = (rhe_item *)calloc((size_t)n, sizeof *it);
    if (!it) rc = RH_ENOMEM;
    for (i = 0; !rc && i < n; i++) {
        it[i].kind = RH_TASK_PERPLEXITY;
        it[i].gold = -1;
        if (!(it[i].id = rhm_strdup(names[i] + rh_path_dir_len(names[i])))) rc = RH_ENOMEM;
        if (!rc) rc = rhm_read_file(names[i], (size_t)1 << 30, &it[i].text, &it[i].text_len, err, cap);
        if (!rc && it[i].text_len == 0) {
            set_err(err, cap, "--perplexity: %s is empty", names[i]);
            rc = RH_EFORMAT;
        }
    }
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) {
        rhe_items_free(it, n);
        return rc;
    }
    *out = it;
    *n_out = n;
    return RH_OK;
}

/* A task file read and parsed; flag names the option in messages. */
static int rhe_task_file(const char *flag, const char *path, rh_task_format format, rhe_item **it, int *n, char *err,
                         size_t cap) {
    char *txt;
    size_t len;
    int rc = rhm_read_file(path, (size_t)1 << 30, &txt, &len, err, cap);
    if (rc) {
        char t[600];
        snprintf(t, sizeof t, "%s: %s", flag, err ? err : "");
        set_err(err, cap, "%s", t);
        return rc == RH_ENOMEM ? rc : RH_EIO;
    }
    rc = rhe_items_parse(txt, len, path, format, it, n, err, cap);
    free(txt);
    return rc;
}

/* ---- the run's state, set up from an rh_eval_task ---- */

enum { RHE_BY_EOS = 0, RHE_BY_STOP = 1, RHE_BY_MAX = 2 };
static const char *const rhe_stopped_names[] = {"eos", "stop", "max-new", NULL};
#define RHE_MAX_STOPS 32
#define RHE_MAX_TOKENS (1 << 24) /* a context's limit (the format's; rh_ctx_new refuses more) */

typedef struct {
    rh_eval_task X;        /* what was asked (strings are the caller's) */
    rh_model *m;           /* NULL with rescore */
    const rh_config *cfg;
    char checksum[17];
    rhe_item *it;          /* the items, task file first, then text files */
    int n_it;
    char **prompt;         /* per item: the prompt with the shots (generate, choice), or NULL */
    char (*key)[17];       /* per item: the record key */
    rhe_item *pool;        /* --fewshot's items */
    int n_pool, *draw, n_draw; /* the shots drawn: K, and one more to stand in for an item that is one of them */
    const char *stops[RHE_MAX_STOPS];
    int n_stops;
    int window, stride;
    unsigned char *mask;   /* n_layers * n_heads flags, or NULL */
    char *mask_label;
    unsigned char *kv_keep; /* the KV policy's kept heads, or NULL */
    char *kv_label;
    rh_ctx_sizes kv_sz;    /* the run's context as counted (n_ctx 0: none allocated) */
    rhm_buf base, rec_path, unsharded_rec, csv_path, run_path;
    double t0;
    char started[32];
    int threads, n_mine, n_done_before, n_run, n_notes;
} rhe_exp;

static void rhe_exp_free(rhe_exp *E) {
    int i;
    for (i = 0; E->prompt && i < E->n_it; i++) free(E->prompt[i]);
    free(E->prompt);
    free(E->key);
    rhe_items_free(E->it, E->n_it);
    rhe_items_free(E->pool, E->n_pool);
    free(E->draw);
    free(E->mask);
    free(E->mask_label);
    free(E->kv_keep);
    free(E->kv_label);
    rhm_buf_free(&E->base);
    rhm_buf_free(&E->rec_path);
    rhm_buf_free(&E->unsharded_rec);
    rhm_buf_free(&E->csv_path);
    rhm_buf_free(&E->run_path);
    if (E->m) rh_model_close(E->m);
    memset(E, 0, sizeof *E);
}

static void rhe_note(rhe_exp *E, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    if (!E->X.note) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    E->X.note(E->X.user, line);
}

/* How the mask acts, in words (every output that records a mask says it the same way). */
static const char *rhe_mask_steps(int masked, int prefill) {
    return !masked ? "unmasked" : prefill ? "prefill and decode" : "decode steps only";
}

static int rhe_is_mine(const rhe_exp *E, int t) { return t % E->X.shard_n == E->X.shard_i; }

/* Checked before anything is read (a C caller fills the struct by hand). */
static int rhe_check_request(const rh_eval_task *X, char *msg, size_t cap) {
    int i;
    if (!X->out || !*X->out) {
        set_err(msg, cap, "--out: no output BASE");
        return RH_EINVAL;
    }
    if ((X->task != NULL) + (X->perplexity != NULL) + (X->rescore != NULL) == 0) {
        set_err(msg, cap, "give --task FILE, --perplexity FILE|DIR or --rescore RESULTS.jsonl");
        return RH_EINVAL;
    }
    if (X->rescore && (X->task || X->perplexity)) {
        set_err(msg, cap, "--rescore recomputes a finished run: it takes no --task or --perplexity");
        return RH_EINVAL;
    }
    if (!X->rescore && !X->model) {
        set_err(msg, cap, "no model");
        return RH_EINVAL;
    }
    if ((unsigned)X->format > RH_FORMAT_GSM8K || (unsigned)X->mask_mode > RH_MASK_ZERO || (unsigned)X->ctx.kv_dtype > RH_BF16) {
        set_err(msg, cap, "an enumeration field (format, mask_mode, kv_dtype) is out of range");
        return RH_EINVAL;
    }
    if (X->max_new < 1 || X->max_new > RHE_MAX_TOKENS) {
        set_err(msg, cap, "--max-new: %d is not in [1, %d]", X->max_new, RHE_MAX_TOKENS);
        return RH_EINVAL;
    }
    if (X->n_stop < 0 || X->n_stop > RHE_MAX_STOPS - 2 || (X->n_stop && !X->stop)) {
        set_err(msg, cap, "--stop: at most %d stop strings", RHE_MAX_STOPS - 2);
        return RH_EINVAL;
    }
    for (i = 0; i < X->n_stop; i++)
        if (!X->stop[i] || !X->stop[i][0]) {
            set_err(msg, cap, "--stop: an empty stop string");
            return RH_EINVAL;
        }
    if (X->fewshot && X->shots < 1) {
        set_err(msg, cap, "--fewshot needs --shots K (K >= 1)");
        return RH_EINVAL;
    }
    if (X->shots && !X->fewshot) {
        set_err(msg, cap, "--shots needs --fewshot FILE (the items to draw the shots from)");
        return RH_EINVAL;
    }
    if (X->shots < 0 || X->window < 0 || X->stride < 0 || X->window > RHE_MAX_TOKENS) {
        set_err(msg, cap, "--shots, --window or --stride is negative or too large");
        return RH_EINVAL;
    }
    if (X->window == 1) {
        set_err(msg, cap, "--window: 1 token leaves nothing to predict (at least 2)");
        return RH_EINVAL;
    }
    if (X->stride && X->window && X->stride >= X->window) {
        set_err(msg, cap, "--stride: %d must be smaller than --window %d (each window scores its last STRIDE tokens with at least WINDOW - STRIDE before them)",
                X->stride, X->window);
        return RH_EINVAL;
    }
    if (X->shard_n < 1 || X->shard_i < 0 || X->shard_i >= X->shard_n) {
        set_err(msg, cap, "--shard: expected shard_i in [0, shard_n), got %d of %d", X->shard_i, X->shard_n);
        return RH_EINVAL;
    }
    if (X->rescore && X->dry_run) {
        set_err(msg, cap, "--dry-run: --rescore runs no model; there is nothing to cost");
        return RH_EINVAL;
    }
    if (X->rescore && (X->mask.kind != RH_PICK_NONE || X->fewshot || X->shard_n > 1)) {
        set_err(msg, cap, "--rescore recomputes the metrics of saved responses: masks, --fewshot and --shard do not apply");
        return RH_EINVAL;
    }
    return RH_OK;
}

/* The shots: K items of --fewshot drawn once (seeded partial Fisher-Yates, splitmix64), and one
 * more where the file has it, to stand in for an item that is itself one of the K (as
 * lm-evaluation-harness draws one more and drops the item itself). */
static int rhe_setup_shots(rhe_exp *E, char *msg, size_t cap) {
    const rh_eval_task *X = &E->X;
    int *ix, i, k;
    uint64_t st = X->seed;
    if (!X->fewshot) return RH_OK;
    if (rhe_task_file("--fewshot", X->fewshot, X->format, &E->pool, &E->n_pool, msg, cap)) return RH_EINVAL;
    for (i = 0; i < E->n_pool; i++)
        if (E->pool[i].kind == RH_TASK_PERPLEXITY) {
            set_err(msg, cap, "--fewshot: %s:%d is a perplexity item; shots are generate or choice items", X->fewshot,
                    E->pool[i].line);
            return RH_EINVAL;
        }
    if (X->shots > E->n_pool) {
        set_err(msg, cap, "--shots: %d is more than the %d items of %s", X->shots, E->n_pool, X->fewshot);
        return RH_EINVAL;
    }
    E->n_draw = X->shots < E->n_pool ? X->shots + 1 : X->shots;
    ix = (int *)malloc((size_t)E->n_pool * sizeof *ix);
    E->draw = (int *)malloc((size_t)E->n_draw * sizeof *E->draw);
    if (!ix || !E->draw) {
        free(ix);
        return RH_ENOMEM;
    }
    for (i = 0; i < E->n_pool; i++) ix[i] = i;
    for (k = 0; k < E->n_draw; k++) {
        int j = k + (int)(rhm_rand(&st) % (uint64_t)(E->n_pool - k)), t = ix[k];
        ix[k] = ix[j];
        ix[j] = t;
        E->draw[k] = ix[k];
    }
    free(ix);
    return RH_OK;
}

/* A shot as lm-evaluation-harness writes one: doc_to_text + target_delimiter " " + doc_to_target
 * (generate: the first answer; choice: the gold choice). */
static void rhe_put_shot(rhm_buf *b, const rhe_item *s) {
    rhm_buf_puts(b, s->prompt);
    rhm_buf_put(b, " ", 1);
    rhm_buf_puts(b, s->kind == RH_TASK_GENERATE ? s->answers[0] : s->choices[s->gold]);
}

/* Item t's prompt: the shots, each followed by the fewshot_delimiter "\n\n", then its own. */
static char *rhe_full_prompt(const rhe_exp *E, const rhe_item *it) {
    rhm_buf b = {0};
    int k, used = 0;
    for (k = 0; k < E->n_draw && used < E->X.shots; k++) {
        const rhe_item *s = &E->pool[E->draw[k]];
        if (!strcmp(s->prompt, it->prompt)) continue; /* the item itself */
        rhe_put_shot(&b, s);
        rhm_buf_puts(&b, "\n\n");
        used++;
    }
    rhm_buf_puts(&b, it->prompt);
    if (b.oom) {
        rhm_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* The fingerprint of what decides an item's result besides the item: the model, the mask, the
 * KV cache, and per kind the decoding (generate) or the windows (perplexity). */
static uint64_t rhe_config_hash(const rhe_exp *E, rh_task_kind kind) {
    const rh_eval_task *X = &E->X;
    uint64_t h = RHM_FNV0;
    char t[160];
    int i;
    h = rhm_fnv(h, "rh-eval-1", 10);
    h = rhm_fnv(h, E->checksum, 16);
    h = rhm_fnv(h, E->mask_label, strlen(E->mask_label) + 1);
    snprintf(t, sizeof t, "%d|%d|%s|%d", (int)X->mask_mode, X->mask_prefill, rh_dtype_names[X->ctx.kv_dtype], (int)kind);
    h = rhm_fnv(h, t, strlen(t) + 1);
    if (X->ctx.kv_window > 0) h = rhm_fnv(h, E->kv_label, strlen(E->kv_label) + 1);
    if (kind == RH_TASK_GENERATE) {
        snprintf(t, sizeof t, "max_new=%d", X->max_new);
        h = rhm_fnv(h, t, strlen(t) + 1);
        for (i = 0; i < E->n_stops; i++) h = rhm_fnv(h, E->stops[i], strlen(E->stops[i]) + 1);
    } else if (kind == RH_TASK_PERPLEXITY) {
        snprintf(t, sizeof t, "window=%d stride=%d", E->window, E->stride);
        h = rhm_fnv(h, t, strlen(t) + 1);
    }
    return h;
}

/* Item t's record key: its configuration and everything of the item that enters the result. */
static void rhe_item_key(const rhe_exp *E, int t, char out[17]) {
    const rhe_item *it = &E->it[t];
    uint64_t h = rhe_config_hash(E, it->kind);
    int i;
    h = rhm_fnv(h, it->id, strlen(it->id) + 1);
    if (it->kind == RH_TASK_PERPLEXITY) {
        h = rhm_fnv(h, it->text, it->text_len);
    } else {
        h = rhm_fnv(h, E->prompt[t], strlen(E->prompt[t]) + 1);
        for (i = 0; i < it->n_answers; i++) h = rhm_fnv(h, it->answers[i], strlen(it->answers[i]) + 1);
        for (i = 0; i < it->n_choices; i++) h = rhm_fnv(h, it->choices[i], strlen(it->choices[i]) + 1);
        h = rhm_fnv(h, &it->gold, sizeof it->gold);
        h = rhm_fnv(h, rh_metric_names[it->metric], strlen(rh_metric_names[it->metric]) + 1);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The output files: BASE.jsonl (a shard: BASE.shard-i-of-n.jsonl), BASE.csv, BASE.run.json;
 * checked now that they can be written. */
static int rhe_setup_outputs(rhe_exp *E, char *msg, size_t cap) {
    rhm_buf t = {0};
    FILE *f;
    rhm_buf_puts(&E->base, E->X.out);
    rhm_buf_printf(&E->unsharded_rec, "%s.jsonl", E->X.out);
    if (E->X.shard_n > 1) rhm_buf_printf(&E->base, ".shard-%d-of-%d", E->X.shard_i + 1, E->X.shard_n);
    rhm_buf_printf(&E->rec_path, "%s.jsonl", E->base.p);
    rhm_buf_printf(&E->csv_path, "%s.csv", E->base.p);
    rhm_buf_printf(&E->run_path, "%s.run.json", E->base.p);
    rhm_buf_printf(&t, "%s.tmp", E->run_path.p);
    if (E->base.oom || E->unsharded_rec.oom || E->rec_path.oom || E->csv_path.oom || E->run_path.oom || t.oom) {
        rhm_buf_free(&t);
        return RH_ENOMEM;
    }
    f = fopen(t.p, "wb");
    if (!f) {
        set_err(msg, cap, "--out: cannot write %s: %s", t.p, strerror(errno));
        rhm_buf_free(&t);
        return RH_EIO;
    }
    fclose(f);
    remove(t.p);
    rhm_buf_free(&t);
    return RH_OK;
}

/* Set up: the model, the items (task file, text files), the shots and every prompt, the stop
 * strings, the windows, the mask, the outputs, every item's key. */
static int rhe_exp_setup(rhe_exp *E, const rh_eval_task *X, char *msg, size_t cap) {
    time_t now = time(NULL);
    struct tm tmv;
    rhe_item *tx = NULL;
    int n_tx = 0, i, rc;
    memset(E, 0, sizeof *E);
    E->X = *X;
    E->t0 = rh_now();
    if ((rc = rhe_check_request(X, msg, cap)) != RH_OK) return rc;
    E->threads = X->ctx.n_threads;
    if (E->threads == 0) E->threads = rh_n_cpus();
    if (rh_utc(now, &tmv)) strftime(E->started, sizeof E->started, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    if ((rc = rhe_setup_outputs(E, msg, cap)) != RH_OK) return rc;
    if (X->rescore) return RH_OK; /* the rest comes from the records */
    if ((rc = rh_model_open(X->model, &E->m, msg, cap)) != RH_OK) return rc;
    E->cfg = rh_model_config(E->m);
    rh_model_checksum(E->m, E->checksum);
    /* the items */
    if (X->task && rhe_task_file("--task", X->task, X->format, &E->it, &E->n_it, msg, cap)) return RH_EINVAL;
    if (X->perplexity) {
        if ((rc = rhe_text_items(X->perplexity, &tx, &n_tx, msg, cap)) != RH_OK) return rc == RH_ENOMEM ? rc : RH_EINVAL;
        if (E->n_it + n_tx > 10000000) {
            rhe_items_free(tx, n_tx);
            return RH_ENOMEM;
        }
        {
            rhe_item *q = (rhe_item *)realloc(E->it, (size_t)(E->n_it + n_tx) * sizeof *q);
            if (!q) {
                rhe_items_free(tx, n_tx);
                return RH_ENOMEM;
            }
            E->it = q;
            memcpy(E->it + E->n_it, tx, (size_t)n_tx * sizeof *tx);
            E->n_it += n_tx;
            free(tx);
        }
    }
    /* stop strings: the format's, then the caller's */
    if (X->format == RH_FORMAT_GSM8K) {
        E->stops[E->n_stops++] = "\n\nQuestion:";
        E->stops[E->n_stops++] = "\n\n";
    }
    for (i = 0; i < X->n_stop; i++) E->stops[E->n_stops++] = X->stop[i];
    /* windows */
    E->window = X->window ? X->window : E->cfg->max_ctx;
    if (E->window < 2) E->window = 2;
    E->stride = X->stride ? X->stride : E->window / 2;
    if (E->stride >= E->window) {
        set_err(msg, cap, "--stride: %d must be smaller than the window of %d tokens", E->stride, E->window);
        return RH_EINVAL;
    }
    if (E->stride < 1) E->stride = 1;
    if (E->window > E->cfg->max_ctx)
        rhe_note(E, "warning: --window %d exceeds the model's trained context of %d tokens", E->window, E->cfg->max_ctx);
    /* the mask */
    if (X->mask.kind != RH_PICK_NONE &&
        !(E->mask = (unsigned char *)calloc((size_t)E->cfg->n_layers * (size_t)E->cfg->n_heads, 1)))
        return RH_ENOMEM;
    rc = rh_head_pick_resolve(E->mask ? &X->mask : NULL, "--mask", E->cfg->n_layers, E->cfg->n_heads, E->mask,
                              &E->mask_label, msg, cap);
    if (rc) return rc;
    /* the KV policy */
    rc = rhm_kv_setup(&X->kv_keep, &X->ctx, E->cfg->n_layers, E->cfg->n_heads, &E->kv_keep, &E->kv_label, msg, cap);
    if (rc) return rc;
    E->X.ctx.kv_keep = E->kv_keep;
    /* shots and prompts, keys */
    if ((rc = rhe_setup_shots(E, msg, cap)) != RH_OK) return rc;
    E->prompt = (char **)calloc((size_t)E->n_it, sizeof *E->prompt);
    E->key = (char(*)[17])calloc((size_t)E->n_it, sizeof *E->key);
    if (!E->prompt || !E->key) return RH_ENOMEM;
    for (i = 0; i < E->n_it; i++) {
        if (E->it[i].kind != RH_TASK_PERPLEXITY && !(E->prompt[i] = rhe_full_prompt(E, &E->it[i]))) return RH_ENOMEM;
        rhe_item_key(E, i, E->key[i]);
        E->n_mine += rhe_is_mine(E, i);
    }
    return RH_OK;
}

/* ---- tokens of an item ----
 * generate: the prompt (BOS as the model says); choice: lm-evaluation-harness's _encode_pair for
 * each continuation " " + choice: trailing whitespace of the context moves to the continuation,
 * whole = tok(context + continuation), the context's tokens tok(context), the continuation's
 * whole[len(context tokens):] (the model reads context tokens + continuation tokens);
 * perplexity: the text (BOS as the model says; the first token is never scored). */
typedef struct {
    int *ids, n;        /* generate: the prompt; choice: the context; perplexity: the text */
    int **cont, *n_cont; /* choice: each choice's continuation */
    int n_choices;
} rhe_toks;

static void rhe_toks_free(rhe_toks *T) {
    int k;
    free(T->ids);
    for (k = 0; T->cont && k < T->n_choices; k++) free(T->cont[k]);
    free(T->cont);
    free(T->n_cont);
    memset(T, 0, sizeof *T);
}

static int rhe_tokens(const rhe_exp *E, int t, rhe_toks *T, char *msg, size_t cap) {
    const rhe_item *it = &E->it[t];
    const char *p = E->prompt[t];
    size_t pl, sp = 0;
    int k, rc;
    memset(T, 0, sizeof *T);
    if (it->kind == RH_TASK_PERPLEXITY) return rh_tokenize(E->m, it->text, it->text_len, -1, &T->ids, &T->n, msg, cap);
    pl = strlen(p);
    if (it->kind == RH_TASK_GENERATE) return rh_tokenize(E->m, p, pl, -1, &T->ids, &T->n, msg, cap);
    while (sp < pl && isspace((unsigned char)p[pl - 1 - sp])) sp++;
    if ((rc = rh_tokenize(E->m, p, pl - sp, -1, &T->ids, &T->n, msg, cap)) != RH_OK) return rc;
    T->n_choices = it->n_choices;
    T->cont = (int **)calloc((size_t)it->n_choices, sizeof *T->cont);
    T->n_cont = (int *)calloc((size_t)it->n_choices, sizeof *T->n_cont);
    if (!T->cont || !T->n_cont) return RH_ENOMEM;
    for (k = 0; k < it->n_choices; k++) {
        rhm_buf b = {0};
        int *whole = NULL, nw = 0;
        rhm_buf_put(&b, p, pl);
        rhm_buf_put(&b, " ", 1);
        rhm_buf_puts(&b, it->choices[k]);
        if (b.oom) return RH_ENOMEM;
        rc = rh_tokenize(E->m, b.p, b.n, -1, &whole, &nw, msg, cap);
        rhm_buf_free(&b);
        if (rc) return rc;
        if (nw <= T->n) {
            free(whole);
            set_err(msg, cap, "%s: item \"%.60s\": choice %d has no tokens after the prompt", E->X.task, it->id, k);
            return RH_EINVAL;
        }
        T->n_cont[k] = nw - T->n;
        T->cont[k] = (int *)malloc((size_t)T->n_cont[k] * sizeof(int));
        if (!T->cont[k]) {
            free(whole);
            return RH_ENOMEM;
        }
        memcpy(T->cont[k], whole + T->n, (size_t)T->n_cont[k] * sizeof(int));
        free(whole);
    }
    return RH_OK;
}

/* The tokens item t occupies in the KV cache at most. */
static int rhe_ctx_need(const rhe_exp *E, int t, const rhe_toks *T) {
    int k, mx = 0;
    if (E->it[t].kind == RH_TASK_GENERATE) return T->n + E->X.max_new + 1;
    if (E->it[t].kind == RH_TASK_PERPLEXITY) return T->n < E->window ? T->n : E->window;
    for (k = 0; k < T->n_choices; k++)
        if (T->n_cont[k] > mx) mx = T->n_cont[k];
    return T->n + (mx > 1 ? mx : 2);
}

/* ---- run: an item through the mask hook ----
 * The mask acts, as niah's, on the positions whose predictions are generated or scored: a
 * generate item's last prompt token and decode steps, a choice item's last context token and
 * continuation, a perplexity window's scored tokens (from the one before the first).  The
 * context before them runs unmasked unless mask_prefill.  Context already in the cache from an
 * earlier item is kept (a few-shot run prefills its shots once). */
#define RHE_ROWS 64 /* logits rows per call when every row is scored */

typedef struct {
    rh_ctx *c;
    int *pre, n_pre, cap_pre; /* ids in the cache from position 0, run with the context's mask */
    float *rows;              /* (RHE_ROWS, vocab) */
    const unsigned char *mask;
    rh_mask_mode mode;
    int mask_prefill, vocab;
    /* a dry run (rhe_dry_run): no context; the engine calls add their cost to *dry instead */
    rh_cost *dry;
    const rh_model *m;
    rh_cost_rates rates;
    int pos, whole; /* the positions the cache would hold; 1: keep nothing between prefills */
    int hi, sinks, window; /* the highest pos since the cache was emptied; window > 0: a KV policy
                              windows heads (sinks, window: its), so rewinds follow rh_kv_rewind_floor */
} rhe_session;

/* The session's engine calls: the context's, or in a dry run their cost under the rates (a call
 * of one token is a decode step; rows scored in a prefill add the output head's FLOPs). */
static int rhe_eval(rhe_session *S, const int *ids, int n, float *logits, int all) {
    const rh_config *cf;
    double head;
    if (!S->dry) return rh_eval(S->c, ids, n, logits, all);
    if (n == 1) rh_cost_add(S->m, &S->rates, S->pos, S->pos, 1, S->dry);
    else if (n > 1) {
        cf = rh_model_config(S->m);
        rh_cost_add(S->m, &S->rates, S->pos, S->pos + n, 0, S->dry);
        head = 2.0 * cf->vocab_size * cf->dim * (all ? n : logits ? 1 : 0);
        S->dry->prefill_flops += head;
        S->dry->seconds += head * S->rates.prefill_flop_s;
    }
    S->pos += n;
    if (S->pos > S->hi) S->hi = S->pos;
    return RH_OK;
}
static int rhe_rewind(rhe_session *S, int n) {
    if (!S->dry) return rh_ctx_rewind(S->c, n);
    if (S->window && n > 0 && n < rh_kv_rewind_floor(S->hi, S->sinks, S->window)) return RH_ERANGE;
    if (n == 0) S->hi = 0;
    S->pos = n;
    return RH_OK;
}
static int rhe_set_mask(rhe_session *S, const unsigned char *mask) {
    return S->dry ? RH_OK : rh_set_mask(S->c, mask, S->mode);
}

/* Have ids[0..n) in the cache, run with the context's mask.  Every call runs 0 or >= 2 tokens, so
 * every position takes the prefill path and gets the bits of one prefill of them all (the
 * engine's chunk invariance); only n == 1 alone takes the decode path. */
static int rhe_prefill(rhe_session *S, const int *ids, int n) {
    int start = 0, lim = S->n_pre < n ? S->n_pre : n, rc;
    while (!S->whole && start < lim && S->pre[start] == ids[start]) start++;
    if (n - start == 1 && n >= 2) start = n - 2;
    /* a KV policy's windows may no longer hold what a rewind to there needs: prefill whole */
    if (rhe_rewind(S, start) != RH_OK) {
        start = 0;
        if ((rc = rhe_rewind(S, 0)) != RH_OK) return rc;
    }
    S->n_pre = start;
    if ((rc = rhe_set_mask(S, S->mask_prefill ? S->mask : NULL)) != RH_OK) return rc;
    if (n > start && (rc = rhe_eval(S, ids + start, n - start, NULL, 0)) != RH_OK) return rc;
    if (S->cap_pre < n) {
        int *q = (int *)realloc(S->pre, (size_t)n * sizeof *q);
        if (!q) return RH_ENOMEM; /* the cache is right; only the reuse is lost */
        S->pre = q;
        S->cap_pre = n;
    }
    if (n > start) memcpy(S->pre + start, ids + start, (size_t)(n - start) * sizeof *ids);
    S->n_pre = n;
    return RH_OK;
}

/* log softmax(x)[k] in double, summed in index order. */
static double rhe_logprob(const float *x, int n, int k) {
    double mx = x[0], s = 0;
    int i;
    for (i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    for (i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return (double)x[k] - mx - log(s);
}

/* lp[j] = log p(ids[j] | ids[0..j)) for j in [from, n), 1 <= from < n: ids[0..from-1) prefilled
 * (rhe_prefill), then ids[from-1..n) run with the mask and every row's logits. */
static int rhe_logprobs(rhe_session *S, const int *ids, int n, int from, double *lp) {
    int c_end = from - 1, done, r, rc;
    /* a context of one token would take the decode path: run it with the rows when the mask is
     * the same on both sides */
    if (c_end == 1 && (!S->mask || S->mask_prefill)) c_end = 0;
    if ((rc = rhe_prefill(S, ids, c_end)) != RH_OK) return rc;
    if ((rc = rhe_set_mask(S, S->mask)) != RH_OK) return rc;
    for (done = c_end; done < n;) {
        int k = n - done;
        if (k > RHE_ROWS) k = n - done - RHE_ROWS == 1 ? RHE_ROWS - 1 : RHE_ROWS; /* no call of 1 token */
        if ((rc = rhe_eval(S, ids + done, k, S->rows, 1)) != RH_OK) return rc;
        for (r = 0; r < k; r++) {
            int j = done + r + 1; /* row r predicts ids[j] */
            if (j >= from && j < n)
                lp[j] = S->dry ? 0 : rhe_logprob(S->rows + (size_t)r * (size_t)S->vocab, S->vocab, ids[j]);
        }
        done += k;
    }
    return RH_OK;
}

/* What running an item gave (and what a record keeps of it). */
typedef struct {
    char *response;      /* generate: UTF-8 (invalid bytes as U+FFFD), without the stop string */
    int n_generated;     /* generate: tokens decoded (an EOS included) */
    int stopped;         /* RHE_BY_* */
    char *stop;          /* the stop string met, or NULL */
    double *logliks;     /* choice: per choice */
    int *n_cont;         /* choice: tokens of each continuation */
    int n_choices;
    long tokens, copy_tokens; /* perplexity: tokens scored, of them copyable */
    double nll, copy_nll;
    int window, stride;
} rhe_out;

static void rhe_out_free(rhe_out *o) {
    free(o->response);
    free(o->stop);
    free(o->logliks);
    free(o->n_cont);
    memset(o, 0, sizeof *o);
}

/* The first occurrence of a stop string in b that starts at or after from - (its length - 1):
 * its offset, and *which; -1 when none. */
static long rhe_find_stop(const rhe_exp *E, const rhm_buf *b, size_t from, int *which) {
    long best = -1;
    int s;
    for (s = 0; s < E->n_stops; s++) {
        size_t L = strlen(E->stops[s]), i = from + 1 > L ? from + 1 - L : 0;
        for (; i + L <= b->n && (best < 0 || (long)i < best); i++)
            if (!memcmp(b->p + i, E->stops[s], L)) {
                best = (long)i;
                *which = s;
                break;
            }
    }
    return best;
}

/* generate: prefill all but the last prompt token, then greedy decoding from it with the mask,
 * to EOS (not decoded), a stop string (cut at its start: lm-evaluation-harness's until) or
 * max_new tokens. */
static int rhe_generate(rhe_session *S, const rhe_exp *E, const rhe_toks *T, rhe_out *o) {
    rhm_buf b = {0};
    rh_decoder dec;
    char tb[4096];
    int step, inp, rc, which = -1, k;
    long cut = -1;
    float *logits = S->rows;
    o->stopped = RHE_BY_MAX;
    if ((rc = rhe_prefill(S, T->ids, T->n - 1)) != RH_OK) return rc;
    if ((rc = rhe_set_mask(S, S->mask)) != RH_OK) return rc;
    inp = T->ids[T->n - 1];
    if (S->dry) { /* the bound: max_new steps */
        for (step = 0; step < E->X.max_new; step++) rhe_eval(S, &inp, 1, NULL, 0);
        o->n_generated = E->X.max_new;
        return RH_OK;
    }
    rh_decoder_init(&dec, E->m, RH_DETOK_SKIP_SPECIAL);
    rhm_buf_put(&b, "", 0);
    for (step = 0; step < E->X.max_new && cut < 0; step++) {
        int next, e, is_eos = 0;
        size_t old = b.n;
        if ((rc = rh_eval(S->c, &inp, 1, logits, 0)) != RH_OK) break;
        next = rh_argmax(logits, S->vocab);
        o->n_generated++;
        for (e = 0; e < E->cfg->n_eos; e++) is_eos |= next == E->cfg->eos_ids[e];
        if (is_eos) {
            o->stopped = RHE_BY_EOS;
            break;
        }
        if ((k = rh_decoder_push(&dec, next, tb, sizeof tb)) < 0) {
            rc = k;
            break;
        }
        rhm_buf_put(&b, tb, (size_t)k);
        if ((cut = rhe_find_stop(E, &b, old, &which)) >= 0) o->stopped = RHE_BY_STOP;
        inp = next;
    }
    if (!rc && cut < 0) { /* bytes held back for an unfinished character */
        size_t old = b.n;
        if ((k = rh_decoder_flush(&dec, tb, sizeof tb)) > 0) rhm_buf_put(&b, tb, (size_t)k);
        if ((cut = rhe_find_stop(E, &b, old, &which)) >= 0) o->stopped = RHE_BY_STOP;
    }
    if (!rc && b.oom) rc = RH_ENOMEM;
    if (!rc && !(o->response = rhm_utf8_clean(b.p, cut >= 0 ? (size_t)cut : b.n, NULL))) rc = RH_ENOMEM;
    if (!rc && cut >= 0 && !(o->stop = rhm_strdup(E->stops[which]))) rc = RH_ENOMEM;
    rhm_buf_free(&b);
    return rc;
}

/* choice: the summed log-probability of each continuation after the shared context. */
static int rhe_choice(rhe_session *S, const rhe_toks *T, rhe_out *o) {
    int k, j, rc = RH_OK, mx = 0;
    int *seq;
    double *lp;
    for (k = 0; k < T->n_choices; k++)
        if (T->n_cont[k] > mx) mx = T->n_cont[k];
    seq = (int *)malloc((size_t)(T->n + mx) * sizeof *seq);
    lp = (double *)malloc((size_t)(T->n + mx) * sizeof *lp);
    o->logliks = (double *)calloc((size_t)T->n_choices, sizeof *o->logliks);
    o->n_cont = (int *)malloc((size_t)T->n_choices * sizeof *o->n_cont);
    if (!seq || !lp || !o->logliks || !o->n_cont) rc = RH_ENOMEM;
    o->n_choices = T->n_choices;
    if (!rc) memcpy(seq, T->ids, (size_t)T->n * sizeof *seq);
    for (k = 0; !rc && k < T->n_choices; k++) {
        memcpy(seq + T->n, T->cont[k], (size_t)T->n_cont[k] * sizeof *seq);
        rc = rhe_logprobs(S, seq, T->n + T->n_cont[k], T->n, lp);
        for (j = 0; !rc && j < T->n_cont[k]; j++) o->logliks[k] += lp[T->n + j];
        o->n_cont[k] = T->n_cont[k];
    }
    free(seq);
    free(lp);
    return rc;
}

/* perplexity: the sliding windows of Hugging Face's perplexity guide (and lm-evaluation-harness's
 * rolling loglikelihood with overlap): windows [b, min(b + window, N)) for b = 0, stride, 2
 * stride, ... until one reaches the end; each scores the tokens after the previous window's end
 * (the first window: all but the first token), so every token is scored once with at least
 * window - stride tokens of context.  A scored token is copyable when the trigram it ends occurs
 * earlier in its window (it continues an earlier occurrence of its preceding bigram). */
static int rhe_perplexity(rhe_session *S, const rhe_exp *E, const rhe_toks *T, rhe_out *o) {
    const int *x = T->ids;
    int N = T->n, b, e, t, j, prev_end = 0, rc = RH_OK;
    double *lp = (double *)malloc((size_t)E->window * sizeof *lp);
    if (!lp) return RH_ENOMEM;
    o->window = E->window;
    o->stride = E->stride;
    for (b = 0; !rc; b += E->stride) {
        int t0;
        e = b + E->window < N ? b + E->window : N;
        t0 = prev_end > b + 1 ? prev_end : b + 1;
        if (e > t0) rc = rhe_logprobs(S, x + b, e - b, t0 - b, lp);
        for (t = t0; !rc && t < e; t++) {
            int copy = 0;
            for (j = b + 2; t - 2 >= b && j < t && !copy; j++)
                copy = x[j] == x[t] && x[j - 1] == x[t - 1] && x[j - 2] == x[t - 2];
            o->tokens++;
            o->nll -= lp[t - b];
            if (copy) {
                o->copy_tokens++;
                o->copy_nll -= lp[t - b];
            }
        }
        prev_end = e;
        if (e == N) break;
    }
    free(lp);
    return rc;
}

/* ---- score: an item's metrics from what running it gave (also what --rescore recomputes) ---- */

typedef struct {
    char *extracted;   /* generate: what the metric compared (number: the filter's output; exact,
                          f1: the normalised response; rouge1: the response) */
    int correct;
    double score;      /* 0..100 */
    char *strict, *flexible; /* number: the two filters' outputs */
    int strict_ok, flexible_ok;
    int pred, pred_norm, pred_bytes; /* choice: the argmax of the sums, per character, per byte */
    int label;         /* generate: an rh_label; otherwise -1 */
} rhe_scored;

static void rhe_scored_free(rhe_scored *s) {
    free(s->extracted);
    free(s->strict);
    free(s->flexible);
    memset(s, 0, sizeof *s);
}

static char *rhe_dup_n(const char *s, size_t n) {
    char *d = (char *)malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* np.argmax of ll[k] / len[k] (len NULL: of ll): the first largest. */
static int rhe_argmax_d(const double *ll, const double *len, int n) {
    int k, best = 0;
    for (k = 1; k < n; k++)
        if ((len ? ll[k] / len[k] : ll[k]) > (len ? ll[best] / len[best] : ll[best])) best = k;
    return best;
}

static int rhe_score(const rhe_item *it, const char *prompt, const rhe_out *o, rhe_scored *sc) {
    const char *resp = o->response ? o->response : "";
    size_t rl = strlen(resp);
    int k, rc = RH_OK;
    memset(sc, 0, sizeof *sc);
    sc->label = -1;
    if (it->kind == RH_TASK_CHOICE) {
        double *nc = (double *)malloc((size_t)it->n_choices * sizeof *nc), *nb = (double *)malloc((size_t)it->n_choices * sizeof *nb);
        if (!nc || !nb) {
            free(nc);
            free(nb);
            return RH_ENOMEM;
        }
        for (k = 0; k < it->n_choices; k++) { /* lm-evaluation-harness: len(choice), len(choice.encode("utf-8")) */
            const char *p;
            nb[k] = (double)strlen(it->choices[k]);
            for (nc[k] = 0, p = it->choices[k]; *p; p++) nc[k] += ((unsigned char)*p & 0xc0) != 0x80;
        }
        sc->pred = rhe_argmax_d(o->logliks, NULL, it->n_choices);
        sc->pred_norm = rhe_argmax_d(o->logliks, nc, it->n_choices);
        sc->pred_bytes = rhe_argmax_d(o->logliks, nb, it->n_choices);
        sc->correct = sc->pred == it->gold;
        sc->score = 100.0 * sc->correct;
        free(nc);
        free(nb);
        return RH_OK;
    }
    if (it->kind == RH_TASK_PERPLEXITY) return RH_OK;
    if (it->metric == RH_METRIC_NUMBER) {
        size_t a, b;
        int have_strict = rhe_strict(resp, rl, &a, &b);
        const char *const *refs = (const char *const *)it->answers;
        char **gold;
        sc->strict = have_strict ? rhe_dup_n(resp + a, b - a) : rhm_strdup("[invalid]");
        sc->flexible = rhe_flexible(resp, rl, &a, &b) ? rhe_dup_n(resp + a, b - a) : rhm_strdup("[invalid]");
        if (!sc->strict || !sc->flexible) return RH_ENOMEM;
        sc->strict_ok = rhe_em(sc->strict, refs, it->n_answers);
        sc->flexible_ok = rhe_em(sc->flexible, refs, it->n_answers);
        if (sc->strict_ok < 0 || sc->flexible_ok < 0) return RH_ENOMEM;
        sc->extracted = rhm_strdup(have_strict ? sc->strict : sc->flexible);
        sc->correct = have_strict ? sc->strict_ok : sc->flexible_ok;
        sc->score = 100.0 * sc->correct;
        /* the label looks for the gold number(s), not the worked solution */
        gold = (char **)calloc((size_t)it->n_answers, sizeof *gold);
        for (k = 0; gold && k < it->n_answers; k++) {
            rhm_buf g = {0};
            rhe_em_norm(it->answers[k], strlen(it->answers[k]), &g);
            gold[k] = g.p;
            if (!g.p) rc = RH_ENOMEM;
        }
        if (!gold || rc) {
            rhe_strs_free(gold, it->n_answers);
            return RH_ENOMEM;
        }
        sc->label = rh_response_label(resp, rl, (const char *const *)gold, it->n_answers, prompt, prompt ? strlen(prompt) : 0,
                                      NULL, 0);
        rhe_strs_free(gold, it->n_answers);
    } else {
        double best = 0, x;
        rhm_buf nb = {0};
        for (k = 0; k < it->n_answers; k++) {
            if (it->metric == RH_METRIC_ROUGE1) {
                if ((x = rh_rouge1_recall(it->answers[k], strlen(it->answers[k]), resp, rl)) < 0) return RH_ENOMEM;
            } else {
                int em = rhe_squad(resp, rl, it->answers[k], strlen(it->answers[k]), &x);
                if (em < 0) return RH_ENOMEM;
                sc->correct |= em;
                if (it->metric == RH_METRIC_EXACT) x = em;
            }
            if (x > best) best = x;
        }
        if (it->metric == RH_METRIC_ROUGE1) {
            sc->correct = rhm_retrieved(best);
            sc->extracted = rhm_strdup(resp);
        } else {
            rhe_squad_norm(resp, rl, &nb);
            sc->extracted = nb.oom ? NULL : nb.p;
        }
        sc->score = 100.0 * best;
        if (!sc->extracted) return RH_ENOMEM;
        sc->label = rh_response_label(resp, rl, (const char *const *)it->answers, it->n_answers, prompt,
                                      prompt ? strlen(prompt) : 0, NULL, 0);
    }
    return sc->label < 0 ? RH_ENOMEM : RH_OK;
}

/* ---- records: one JSON line per item (the resume state and the per-item output) ---- */

static void rhe_json_strs(rhm_buf *b, char *const *v, int n) {
    int i;
    rhm_buf_put(b, "[", 1);
    for (i = 0; i < n; i++) {
        if (i) rhm_buf_puts(b, ", ");
        rhm_buf_json_str(b, v[i], strlen(v[i]));
    }
    rhm_buf_put(b, "]", 1);
}

static void rhe_record(rhm_buf *b, const char *key, int index, const rhe_item *it, const char *prompt, const rhe_out *o,
                       const rhe_scored *sc, const char *mask) {
    int k;
    rhm_buf_printf(b, "{\"key\": \"%s\", \"index\": %d, \"id\": ", key, index);
    rhm_buf_json_str(b, it->id, strlen(it->id));
    rhm_buf_printf(b, ", \"kind\": \"%s\"", rh_task_kind_names[it->kind]);
    if (it->kind == RH_TASK_PERPLEXITY) {
        rhm_buf_printf(b, ", \"text_bytes\": %lu, \"window\": %d, \"stride\": %d, \"tokens\": %ld, \"nll\": ",
                       (unsigned long)it->text_len, o->window, o->stride, o->tokens);
        rhm_buf_double(b, o->nll);
        rhm_buf_puts(b, ", \"nll_per_token\": ");
        rhm_buf_double(b, o->tokens ? o->nll / (double)o->tokens : NAN);
        rhm_buf_puts(b, ", \"perplexity\": ");
        rhm_buf_double(b, o->tokens ? exp(o->nll / (double)o->tokens) : NAN);
        rhm_buf_printf(b, ", \"copyable\": {\"tokens\": %ld, \"nll\": ", o->copy_tokens);
        rhm_buf_double(b, o->copy_nll);
        rhm_buf_puts(b, "}, \"response\": null, \"extracted\": null, \"correct\": null, \"score\": null, \"label\": null");
    } else {
        if (it->kind == RH_TASK_GENERATE) rhm_buf_printf(b, ", \"metric\": \"%s\"", rh_metric_names[it->metric]);
        rhm_buf_puts(b, ", \"prompt\": ");
        rhm_buf_json_str(b, prompt, strlen(prompt));
        if (it->kind == RH_TASK_GENERATE) {
            rhm_buf_puts(b, ", \"answer\": ");
            rhe_json_strs(b, it->answers, it->n_answers);
            rhm_buf_puts(b, ", \"response\": ");
            rhm_buf_json_str(b, o->response, strlen(o->response));
            rhm_buf_printf(b, ", \"generated_tokens\": %d, \"stopped_by\": \"%s\", \"stop\": ", o->n_generated,
                           rhe_stopped_names[o->stopped]);
            if (o->stop) rhm_buf_json_str(b, o->stop, strlen(o->stop));
            else rhm_buf_puts(b, "null");
            rhm_buf_puts(b, ", \"extracted\": ");
            rhm_buf_json_str(b, sc->extracted, strlen(sc->extracted));
            if (it->metric == RH_METRIC_NUMBER) {
                rhm_buf_puts(b, ", \"strict\": {\"extracted\": ");
                rhm_buf_json_str(b, sc->strict, strlen(sc->strict));
                rhm_buf_printf(b, ", \"correct\": %s}, \"flexible\": {\"extracted\": ", sc->strict_ok ? "true" : "false");
                rhm_buf_json_str(b, sc->flexible, strlen(sc->flexible));
                rhm_buf_printf(b, ", \"correct\": %s}", sc->flexible_ok ? "true" : "false");
            }
        } else {
            rhm_buf_puts(b, ", \"choices\": ");
            rhe_json_strs(b, it->choices, it->n_choices);
            rhm_buf_printf(b, ", \"gold\": %d, \"choice_tokens\": [", it->gold);
            for (k = 0; k < o->n_choices; k++) rhm_buf_printf(b, "%s%d", k ? ", " : "", o->n_cont[k]);
            rhm_buf_puts(b, "], \"logliks\": [");
            for (k = 0; k < o->n_choices; k++) {
                if (k) rhm_buf_puts(b, ", ");
                rhm_buf_double(b, o->logliks[k]);
            }
            rhm_buf_puts(b, "], \"response\": ");
            rhm_buf_json_str(b, it->choices[sc->pred], strlen(it->choices[sc->pred]));
            rhm_buf_printf(b, ", \"extracted\": %d, \"pred_norm\": %d, \"pred_bytes\": %d, \"acc_norm\": %s, \"acc_bytes\": %s",
                           sc->pred, sc->pred_norm, sc->pred_bytes, sc->pred_norm == it->gold ? "true" : "false",
                           sc->pred_bytes == it->gold ? "true" : "false");
        }
        rhm_buf_printf(b, ", \"correct\": %s, \"score\": ", sc->correct ? "true" : "false");
        rhm_buf_double(b, sc->score);
        if (sc->label >= 0) rhm_buf_printf(b, ", \"label\": \"%s\"", rh_label_names[sc->label]);
        else rhm_buf_puts(b, ", \"label\": null");
    }
    rhm_buf_puts(b, ", \"mask\": ");
    rhm_buf_json_str(b, mask, strlen(mask));
    rhm_buf_put(b, "}", 1);
}

/* A record read back (--rescore): the item and what running it gave.  *mask and *key point
 * into v. */
static int rhe_from_record(rhj *v, const char *name, int line, rhe_item *it, char **prompt, rhe_out *o,
                           const char **mask, const char **key, char *err, size_t cap) {
    rhj *f;
    int k, rc;
    memset(it, 0, sizeof *it);
    memset(o, 0, sizeof *o);
    *prompt = NULL;
    it->line = line;
    it->gold = -1;
    if (v->type != RHJ_OBJ) {
        set_err(err, cap, "%s:%d: expected a JSON object (a record of eval)", name, line);
        return RH_EFORMAT;
    }
    f = (rhj *)(uintptr_t)rhj_get(v, "key");
    *key = f && f->type == RHJ_STR && f->len == 16 ? f->str : NULL;
    f = (rhj *)(uintptr_t)rhj_get(v, "mask");
    *mask = f && f->type == RHJ_STR ? f->str : "none";
    if (!(f = rhe_need(v, "id", name, line, err, cap)) || (rc = rhe_take_str(f, &it->id, "\"id\"", name, line, err, cap)))
        return RH_EFORMAT;
    if (!(f = rhe_need(v, "kind", name, line, err, cap))) return RH_EFORMAT;
    if (f->type != RHJ_STR || (k = rh_enum_parse(rh_task_kind_names, f->str)) < 0) {
        set_err(err, cap, "%s:%d: unknown kind (expected generate, choice or perplexity)", name, line);
        return RH_EFORMAT;
    }
    it->kind = (rh_task_kind)k;
    if (it->kind == RH_TASK_PERPLEXITY) {
        static const char *const nums[4] = {"tokens", "nll", "window", "stride"};
        const rhj *cp = rhj_get(v, "copyable"), *ct = cp ? rhj_get(cp, "tokens") : NULL, *cn = cp ? rhj_get(cp, "nll") : NULL;
        double x[4];
        for (k = 0; k < 4; k++) {
            if (!(f = rhe_need(v, nums[k], name, line, err, cap))) return RH_EFORMAT;
            if (f->type != RHJ_NUM) {
                set_err(err, cap, "%s:%d: \"%s\" must be a number", name, line, nums[k]);
                return RH_EFORMAT;
            }
            x[k] = f->num;
        }
        o->tokens = (long)x[0];
        o->nll = x[1];
        o->window = (int)x[2];
        o->stride = (int)x[3];
        o->copy_tokens = ct && ct->type == RHJ_NUM ? (long)ct->num : 0;
        o->copy_nll = cn && cn->type == RHJ_NUM ? cn->num : 0;
        f = (rhj *)(uintptr_t)rhj_get(v, "text_bytes");
        it->text_len = f && f->type == RHJ_NUM ? (size_t)f->num : 0;
        return RH_OK;
    }
    if (!(f = rhe_need(v, "prompt", name, line, err, cap)) || rhe_take_str(f, prompt, "\"prompt\"", name, line, err, cap))
        return RH_EFORMAT;
    if (!(it->prompt = rhm_strdup(*prompt))) return RH_ENOMEM;
    if (it->kind == RH_TASK_GENERATE) {
        if (!(f = rhe_need(v, "metric", name, line, err, cap))) return RH_EFORMAT;
        if (f->type != RHJ_STR || (k = rh_enum_parse(rh_metric_names, f->str)) < 0) {
            set_err(err, cap, "%s:%d: \"metric\" must be exact, number, rouge1 or f1", name, line);
            return RH_EFORMAT;
        }
        it->metric = (rh_metric)k;
        if (!(f = rhe_need(v, "answer", name, line, err, cap))) return RH_EFORMAT;
        if ((rc = rhe_take_strs(f, &it->answers, &it->n_answers, "answer", name, line, err, cap))) return rc;
        if (!(f = rhe_need(v, "response", name, line, err, cap))) return RH_EFORMAT;
        if (f->type != RHJ_STR || memchr(f->str, 0, f->len)) {
            set_err(err, cap, "%s:%d: \"response\" must be a string", name, line);
            return RH_EFORMAT;
        }
        if (!(o->response = rhm_utf8_clean(f->str, f->len, NULL))) return RH_ENOMEM;
        f = (rhj *)(uintptr_t)rhj_get(v, "generated_tokens");
        o->n_generated = f && f->type == RHJ_NUM ? (int)f->num : 0;
        f = (rhj *)(uintptr_t)rhj_get(v, "stopped_by");
        k = f && f->type == RHJ_STR ? rh_enum_parse(rhe_stopped_names, f->str) : -1;
        o->stopped = k >= 0 ? k : RHE_BY_STOP;
        f = (rhj *)(uintptr_t)rhj_get(v, "stop");
        if (f && f->type == RHJ_STR && !(o->stop = rhm_strdup(f->str))) return RH_ENOMEM;
        return RH_OK;
    }
    if (!(f = rhe_need(v, "choices", name, line, err, cap))) return RH_EFORMAT;
    if (f->type != RHJ_ARR || f->n < 2 || rhe_take_strs(f, &it->choices, &it->n_choices, "choices", name, line, err, cap)) {
        if (f->type != RHJ_ARR || f->n < 2) set_err(err, cap, "%s:%d: \"choices\" must be a list of at least 2 strings", name, line);
        return RH_EFORMAT;
    }
    f = (rhj *)(uintptr_t)rhj_get(v, "gold");
    if (!f || f->type != RHJ_NUM || f->num != floor(f->num) || f->num < 0 || f->num >= it->n_choices) {
        set_err(err, cap, "%s:%d: \"gold\" must be the 0-based index of the right choice, 0..%d", name, line, it->n_choices - 1);
        return RH_EFORMAT;
    }
    it->gold = (int)f->num;
    f = (rhj *)(uintptr_t)rhj_get(v, "logliks");
    if (!f || f->type != RHJ_ARR || f->n != it->n_choices) {
        set_err(err, cap, "%s:%d: \"logliks\" must be a list of one number per choice", name, line);
        return RH_EFORMAT;
    }
    o->n_choices = it->n_choices;
    o->logliks = (double *)malloc((size_t)it->n_choices * sizeof *o->logliks);
    o->n_cont = (int *)calloc((size_t)it->n_choices, sizeof *o->n_cont);
    if (!o->logliks || !o->n_cont) return RH_ENOMEM;
    for (k = 0; k < it->n_choices; k++) {
        const rhj *ct = rhj_get(v, "choice_tokens");
        if (f->items[k].type != RHJ_NUM) {
            set_err(err, cap, "%s:%d: \"logliks\"[%d] is not a number", name, line, k);
            return RH_EFORMAT;
        }
        o->logliks[k] = f->items[k].num;
        if (ct && ct->type == RHJ_ARR && ct->n == it->n_choices && ct->items[k].type == RHJ_NUM) o->n_cont[k] = (int)ct->items[k].num;
    }
    return RH_OK;
}

/* ---- write: the figures, the CSV and the run record, from the records of the items ---- */

static int rhe_bool(const rhj *o, const char *key) {
    const rhj *f = o ? rhj_get(o, key) : NULL;
    return f && f->type == RHJ_TRUE;
}
static double rhe_num(const rhj *o, const char *key) {
    const rhj *f = o ? rhj_get(o, key) : NULL;
    return f && f->type == RHJ_NUM ? f->num : 0;
}
static const char *rhe_strf(const rhj *o, const char *key) {
    const rhj *f = o ? rhj_get(o, key) : NULL;
    return f && f->type == RHJ_STR ? f->str : NULL;
}

/* The figures of the records (in res; mask_label set by the caller). */
static void rhe_summarize(rhm_rec *const *recs, int n, rh_eval_result *res) {
    int i, k;
    double score = 0;
    for (i = 0; i < n; i++) {
        const rhj *v = &recs[i]->v;
        const char *kind = rhe_strf(v, "kind"), *lab = rhe_strf(v, "label"), *by = rhe_strf(v, "stopped_by");
        if (!kind) continue;
        if (!strcmp(kind, "perplexity")) {
            res->n_perplexity++;
            res->n_tokens += (long)rhe_num(v, "tokens");
            res->nll += rhe_num(v, "nll");
            res->n_copy_tokens += (long)rhe_num(rhj_get(v, "copyable"), "tokens");
            res->copy_nll += rhe_num(rhj_get(v, "copyable"), "nll");
            continue;
        }
        if (!strcmp(kind, "generate")) {
            const char *metric = rhe_strf(v, "metric");
            res->n_generate++;
            if (metric && !strcmp(metric, "number")) {
                res->n_number++;
                res->n_strict += rhe_bool(rhj_get(v, "strict"), "correct");
                res->n_flexible += rhe_bool(rhj_get(v, "flexible"), "correct");
            }
            for (k = 0; lab && k < RH_N_LABELS; k++) res->n_labels[k] += !strcmp(lab, rh_label_names[k]);
            res->n_stop_unmet += by && !strcmp(by, rhe_stopped_names[RHE_BY_MAX]);
        } else {
            res->n_choice++;
            res->n_acc += rhe_bool(v, "correct");
            res->n_acc_norm += rhe_bool(v, "acc_norm");
            res->n_acc_bytes += rhe_bool(v, "acc_bytes");
        }
        res->n_correct += rhe_bool(v, "correct");
        score += rhe_num(v, "score");
    }
    k = res->n_generate + res->n_choice;
    res->accuracy = k ? 100.0 * res->n_correct / k : NAN;
    res->mean_score = k ? score / k : NAN;
    res->perplexity = res->n_tokens ? exp(res->nll / (double)res->n_tokens) : NAN;
}

/* The run record: what made the outputs, and what they measured. */
static void rhe_run_json(const rhe_exp *E, const rh_eval_result *r, rhm_buf *b) {
    const rh_eval_task *X = &E->X;
    int i;
    long other = r->n_tokens - r->n_copy_tokens;
    rhm_buf_puts(b, "{\"program\": \"retrieval_heads\", \"version\": \"" RH_VERSION "\", \"command\": [\"retrieval_heads\"");
    for (i = 0; X->argv && i < X->argc; i++) {
        rhm_buf_puts(b, ", ");
        rhm_buf_json_str(b, X->argv[i], strlen(X->argv[i]));
    }
    rhm_buf_puts(b, "]");
    if (X->rescore) {
        rhm_buf_puts(b, ", \"rescored\": ");
        rhm_buf_json_str(b, X->rescore, strlen(X->rescore));
    } else {
        rhm_buf_puts(b, ", \"model\": ");
        rhm_buf_json_str(b, X->model, strlen(X->model));
        rhm_buf_printf(b, ", \"model_checksum\": \"fnv1a64:%s\", \"task\": ", E->checksum);
        if (X->task) rhm_buf_json_str(b, X->task, strlen(X->task));
        else rhm_buf_puts(b, "null");
        rhm_buf_puts(b, ", \"perplexity\": ");
        if (X->perplexity) rhm_buf_json_str(b, X->perplexity, strlen(X->perplexity));
        else rhm_buf_puts(b, "null");
        rhm_buf_printf(b, ", \"format\": \"%s\", \"fewshot\": ", rh_task_format_names[X->format]);
        if (X->fewshot) rhm_buf_json_str(b, X->fewshot, strlen(X->fewshot));
        else rhm_buf_puts(b, "null");
        rhm_buf_printf(b, ", \"shots\": %d, \"shots_seed\": %llu, \"max_new\": %d, \"stop\": [", X->shots,
                       (unsigned long long)X->seed, X->max_new);
        for (i = 0; i < E->n_stops; i++) {
            if (i) rhm_buf_puts(b, ", ");
            rhm_buf_json_str(b, E->stops[i], strlen(E->stops[i]));
        }
        rhm_buf_printf(b, "], \"window\": %d, \"stride\": %d, \"mask_mode\": \"%s\", \"mask_steps\": \"%s\", \"mask_seed\": ",
                       E->window, E->stride, rh_mask_mode_names[X->mask_mode],
                       rhe_mask_steps(X->mask.kind != RH_PICK_NONE, X->mask_prefill));
        if (X->mask.kind == RH_PICK_RANDOM) rhm_buf_printf(b, "%llu", (unsigned long long)X->mask.seed);
        else rhm_buf_puts(b, "null");
        rhm_buf_printf(b, ", \"kv_cache\": \"%s\", \"threads\": %d", rh_dtype_names[X->ctx.kv_dtype], E->threads);
        rhm_kv_json(b, &X->ctx, E->kv_label, E->kv_sz.n_ctx ? &E->kv_sz : NULL);
    }
    rhm_buf_puts(b, ", \"mask\": ");
    rhm_buf_json_str(b, r->mask_label ? r->mask_label : "none", strlen(r->mask_label ? r->mask_label : "none"));
    rhm_buf_printf(b, ", \"shard\": \"%d/%d\", \"started_utc\": \"%s\", \"wall_s\": %.3f", X->shard_i + 1, X->shard_n, E->started,
                   rh_now() - E->t0);
    rhm_buf_printf(b, ", \"items\": {\"this_shard\": %d, \"resumed\": %d, \"run\": %d, \"generate\": %d, \"choice\": %d, \"perplexity\": %d}",
                   r->n_items, r->n_resumed, r->n_run, r->n_generate, r->n_choice, r->n_perplexity);
    rhm_buf_printf(b, ", \"results\": {\"correct\": %d, \"accuracy\": ", r->n_correct);
    rhm_buf_double(b, r->accuracy);
    rhm_buf_puts(b, ", \"mean_score\": ");
    rhm_buf_double(b, r->mean_score);
    rhm_buf_printf(b, ", \"number\": {\"items\": %d, \"strict_match\": %d, \"flexible_extract\": %d}", r->n_number, r->n_strict,
                   r->n_flexible);
    rhm_buf_printf(b, ", \"choice\": {\"items\": %d, \"acc\": %d, \"acc_norm\": %d, \"acc_bytes\": %d}", r->n_choice, r->n_acc,
                   r->n_acc_norm, r->n_acc_bytes);
    rhm_buf_printf(b, ", \"stop_unmet\": %d, \"labels\": {", r->n_stop_unmet);
    for (i = 0; i < RH_N_LABELS; i++) rhm_buf_printf(b, "%s\"%s\": %d", i ? ", " : "", rh_label_names[i], r->n_labels[i]);
    rhm_buf_printf(b, "}, \"perplexity\": {\"tokens\": %ld, \"nll\": ", r->n_tokens);
    rhm_buf_double(b, r->nll);
    rhm_buf_puts(b, ", \"perplexity\": ");
    rhm_buf_double(b, r->perplexity);
    rhm_buf_printf(b, ", \"copyable\": {\"tokens\": %ld, \"perplexity\": ", r->n_copy_tokens);
    rhm_buf_double(b, r->n_copy_tokens ? exp(r->copy_nll / (double)r->n_copy_tokens) : NAN);
    rhm_buf_printf(b, "}, \"other\": {\"tokens\": %ld, \"perplexity\": ", other);
    rhm_buf_double(b, other ? exp((r->nll - r->copy_nll) / (double)other) : NAN);
    rhm_buf_puts(b, "}}}, \"finished\": true}\n");
}

/* A CSV field of a record: a string as it is, a number as repr (a count or an index as an
 * integer), true/false, null as nothing. */
static void rhe_csv_val(rhm_buf *b, const rhj *f, int integer) {
    char num[48];
    if (!f || f->type == RHJ_NULL) return;
    if (f->type == RHJ_STR) rhm_csv_field(b, f->str, f->len);
    else if (f->type == RHJ_NUM) {
        if (integer) snprintf(num, sizeof num, "%.0f", f->num);
        else rhm_fmt_double(num, sizeof num, f->num);
        rhm_buf_puts(b, num);
    } else if (f->type == RHJ_TRUE || f->type == RHJ_FALSE) rhm_buf_puts(b, f->type == RHJ_TRUE ? "true" : "false");
}

/* BASE.jsonl (the records in item order), BASE.csv (its header row first), BASE.run.json; the
 * figures into res. */
static int rhe_write_outputs(const rhe_exp *E, rhm_rec *const *recs, int n, rh_eval_result *res, char *msg, size_t cap) {
    static const char *const cols[] = {"id", "kind", "metric", "response", "extracted", "correct", "score", "label",
                                       "tokens", "nll", "mask"};
    rhm_buf jl = {0}, csv = {0}, run = {0};
    int i, c, rc;
    rhe_summarize(recs, n, res);
    rhm_buf_put(&jl, "", 0);
    for (i = 0; i < n; i++) {
        rhm_buf_puts(&jl, recs[i]->line);
        rhm_buf_put(&jl, "\n", 1);
    }
    for (c = 0; c < 11; c++) rhm_buf_printf(&csv, "%s%s", c ? "," : "", cols[c]);
    rhm_buf_put(&csv, "\n", 1);
    for (i = 0; i < n; i++) {
        for (c = 0; c < 11; c++) {
            if (c) rhm_buf_put(&csv, ",", 1);
            rhe_csv_val(&csv, rhj_get(&recs[i]->v, cols[c]), c == 4 || c == 8); /* extracted (a choice), tokens */
        }
        rhm_buf_put(&csv, "\n", 1);
    }
    rhe_run_json(E, res, &run);
    if (jl.oom || csv.oom || run.oom) rc = RH_ENOMEM;
    else rc = rhm_write_atomic(E->rec_path.p, jl.p, jl.n, msg, cap);
    if (!rc) rc = rhm_write_atomic(E->csv_path.p, csv.p, csv.n, msg, cap);
    if (!rc) rc = rhm_write_atomic(E->run_path.p, run.p, run.n, msg, cap);
    rhm_buf_free(&jl);
    rhm_buf_free(&csv);
    rhm_buf_free(&run);
    if (!rc && (!(res->paths[0] = rhm_strdup(E->rec_path.p)) || !(res->paths[1] = rhm_strdup(E->csv_path.p)) ||
                !(res->paths[2] = rhm_strdup(E->run_path.p))))
        rc = RH_ENOMEM;
    return rc;
}

/* ---- --rescore: the metrics of saved responses, recomputed ---- */
static int rhe_rescore(rhe_exp *E, rhm_recs *R, rh_eval_result *res, char *msg, size_t cap) {
    const char *name = E->X.rescore;
    char *data;
    size_t len, pos = 0;
    int line = 0, index = 0, rc, n = 0, i, mixed = 0;
    rhm_rec **list = NULL;
    if ((rc = rhm_read_file(name, (size_t)1 << 31, &data, &len, msg, cap)) != RH_OK) {
        char t[600];
        snprintf(t, sizeof t, "--rescore: %s", msg ? msg : "");
        set_err(msg, cap, "%s", t);
        return rc == RH_ENOMEM ? rc : RH_EIO;
    }
    while (pos < len && !rc) {
        const char *ls = data + pos, *nl = (const char *)memchr(ls, '\n', len - pos), *mask, *key;
        size_t ll = nl ? (size_t)(nl - ls) : len - pos, k;
        rhe_item it;
        rhe_out o;
        rhe_scored sc;
        char *prompt = NULL, kb[17];
        rhj v;
        rhm_buf b = {0};
        pos += ll + (nl ? 1 : 0);
        line++;
        for (k = 0; k < ll && (ls[k] == ' ' || ls[k] == '\t' || ls[k] == '\r'); k++) {
        }
        if (k == ll) continue;
        if ((rc = rhj_parse(ls, ll, name, &v, msg, cap)) != RH_OK) {
            size_t el = msg ? strlen(msg) : 0;
            if (msg && el + 16 < cap) snprintf(msg + el, cap - el, " (line %d)", line);
            break;
        }
        rc = rhe_from_record(&v, name, line, &it, &prompt, &o, &mask, &key, msg, cap);
        if (!rc) rc = rhe_score(&it, prompt, &o, &sc);
        if (!rc) {
            if (!key) { /* a hand-made file: the key of the line */
                snprintf(kb, sizeof kb, "%016llx", (unsigned long long)rhm_fnv(RHM_FNV0, ls, ll));
                key = kb;
            }
            if (n == 0 && !res->mask_label) res->mask_label = rhm_strdup(mask);
            else if (res->mask_label && strcmp(res->mask_label, mask)) mixed = 1;
            rhe_record(&b, key, index++, &it, prompt ? prompt : "", &o, &sc, mask);
            if (b.oom) rc = RH_ENOMEM;
            else if ((i = rhm_recs_add(R, b.p, b.n, 1)) < 0) rc = RH_ENOMEM;
            else if (i == 0) {
                set_err(msg, cap, "%s:%d: key %s appears twice", name, line, key);
                rc = RH_EFORMAT;
            }
            rhe_scored_free(&sc);
            n++;
        }
        rhm_buf_free(&b);
        rhe_out_free(&o);
        free(prompt);
        rhe_item_clear(&it);
        rhj_free(&v);
    }
    free(data);
    if (!rc && n == 0) {
        set_err(msg, cap, "--rescore: %s has no records", name);
        rc = RH_EFORMAT;
    }
    if (!rc && mixed) {
        free(res->mask_label);
        res->mask_label = rhm_strdup("mixed");
    }
    if (!rc && !(list = (rhm_rec **)malloc((size_t)R->n * sizeof *list))) rc = RH_ENOMEM;
    for (i = 0; !rc && i < R->n; i++) list[i] = &R->r[i];
    res->n_items = res->n_resumed = n;
    if (!rc) rc = rhe_write_outputs(E, list, n, res, msg, cap);
    free(list);
    return rc;
}

/* ---- the run ---- */

void rh_eval_task_default(rh_eval_task *t) {
    memset(t, 0, sizeof *t);
    t->model = "weights/demo.rhw";
    t->max_new = 256;
    t->seed = 1;
    t->mask.seed = 1;
    t->mask_mode = RH_MASK_UNIFORM;
    rh_ctx_params_default(&t->ctx);
    t->shard_n = 1;
    t->out = "eval";
}

void rh_eval_result_free(rh_eval_result *r) {
    int i;
    if (!r) return;
    free(r->kv_label);
    free(r->mask_label);
    for (i = 0; i < 3; i++) free(r->paths[i]);
    memset(r, 0, sizeof *r);
}

/* --dry-run: the items to run (T[t].ids kept for them) through their own control flow in a
 * session without a context, twice (with the cache's reuse, and whole), under this machine's
 * rates; the context the run would allocate counted, not allocated. */
static int rhe_dry_run(rhe_exp *E, const rhm_recs *R, const rhe_toks *T, int need, rh_eval_result *res, char *msg,
                       size_t cap) {
    rh_eval_cost *c = &res->cost;
    rh_ctx_params p = E->X.ctx;
    int pass, t, rc;
    if (!p.n_ctx) p.n_ctx = need;
    rc = rh_ctx_sizes_of(E->m, &p, &c->ctx, msg, cap);
    c->peak_bytes = c->ctx.kv_bytes + c->ctx.scratch_bytes + c->ctx.weight_bytes;
    if (!rc) rc = rh_cost_measure(E->m, &E->X.ctx, RHM_MEASURE_S, &c->rates, msg, cap);
    for (pass = 0; !rc && pass < 2; pass++) {
        rhe_session S;
        memset(&S, 0, sizeof S);
        S.dry = pass ? &c->whole : &c->reuse;
        S.whole = pass;
        S.m = E->m;
        S.rates = c->rates;
        S.vocab = E->cfg->vocab_size;
        S.mask = E->mask;
        S.mode = E->X.mask_mode;
        S.mask_prefill = E->X.mask_prefill;
        if (p.kv_window > 0 && c->ctx.kv_heads_full < c->ctx.kv_heads) {
            S.sinks = p.kv_sinks;
            S.window = p.kv_window;
        }
        for (t = 0; !rc && t < E->n_it; t++) {
            rhe_out o;
            const rh_task_kind k = E->it[t].kind;
            if (!rhe_is_mine(E, t) || rhm_recs_find(R, E->key[t])) continue;
            memset(&o, 0, sizeof o);
            rc = k == RH_TASK_GENERATE ? rhe_generate(&S, E, &T[t], &o)
                 : k == RH_TASK_CHOICE ? rhe_choice(&S, &T[t], &o)
                                       : rhe_perplexity(&S, E, &T[t], &o);
            rhe_out_free(&o);
            if (pass) continue;
            c->n_items++;
            c->n_generate += k == RH_TASK_GENERATE;
            c->n_choice += k == RH_TASK_CHOICE;
            c->n_perplexity += k == RH_TASK_PERPLEXITY;
            if (rhe_ctx_need(E, t, &T[t]) > c->longest) c->longest = rhe_ctx_need(E, t, &T[t]);
        }
        free(S.pre);
    }
    if (rc == RH_ENOMEM) set_err(msg, cap, "out of memory");
    res->n_items = E->n_mine;
    res->n_resumed = E->n_done_before;
    if (!rc && !(res->mask_label = rhm_strdup(E->mask_label))) rc = RH_ENOMEM;
    return rc;
}

/* Item t run and scored: its record line into line. */
static int rhe_run_item(rhe_exp *E, rhe_session *S, int t, const rhe_toks *T, rhm_buf *line, double *score,
                        char **resp, char *msg, size_t cap) {
    const rhe_item *it = &E->it[t];
    rhe_out o;
    rhe_scored sc;
    int rc;
    memset(&o, 0, sizeof o);
    memset(&sc, 0, sizeof sc);
    if (it->kind == RH_TASK_GENERATE) rc = rhe_generate(S, E, T, &o);
    else if (it->kind == RH_TASK_CHOICE) rc = rhe_choice(S, T, &o);
    else rc = rhe_perplexity(S, E, T, &o);
    if (rc) {
        const char *ce = rh_ctx_error(S->c);
        set_err(msg, cap, "item \"%.60s\": %s", it->id, rc == RH_ENOMEM ? "out of memory" : ce);
    }
    if (!rc && (rc = rhe_score(it, E->prompt[t], &o, &sc)) != RH_OK) set_err(msg, cap, "out of memory");
    if (!rc) {
        rhe_record(line, E->key[t], t, it, E->prompt[t] ? E->prompt[t] : "", &o, &sc, E->mask_label);
        if (line->oom) rc = RH_ENOMEM;
        *score = it->kind == RH_TASK_PERPLEXITY ? (o.tokens ? o.nll / (double)o.tokens : 0) : sc.score;
        if (it->kind == RH_TASK_GENERATE && E->n_stops && o.stopped == RHE_BY_MAX && E->n_notes++ < 3)
            rhe_note(E, "item \"%.60s\": no stop string met; ran to --max-new %d%s", it->id, E->X.max_new,
                     E->n_notes == 3 ? " (further such items are counted in the summary)" : "");
        *resp = rhm_strdup(o.response ? o.response : "");
    }
    rhe_out_free(&o);
    rhe_scored_free(&sc);
    return rc;
}

int rh_eval_task_run(const rh_eval_task *x, rh_eval_result *res_out, char *msg, size_t cap) {
    rhe_exp E;
    rhm_recs R = {0};
    rhe_session S;
    rhe_toks *T = NULL;
    rh_eval_result res_local, *res = res_out ? res_out : &res_local;
    rhm_rec **list = NULL;
    FILE *journal = NULL;
    int rc, t, todo = 0, need = 2, n_list = 0, warned = 0;
    double t_run0;
    memset(res, 0, sizeof *res);
    memset(&S, 0, sizeof S);
    if (msg && cap) msg[0] = 0;
    if (!x) {
        set_err(msg, cap, "rh_eval_task_run: no task");
        return RH_EINVAL;
    }
    /* set up */
    rc = rhe_exp_setup(&E, x, msg, cap);
    if (!rc && x->rescore) {
        rc = rhe_rescore(&E, &R, res, msg, cap);
        goto done;
    }
    /* plan: the finished items of earlier runs (this output's records and every shard's) */
    if (!rc && !x->fresh) {
        if (rhm_recs_load(&R, E.rec_path.p, 1) ||
            (strcmp(E.rec_path.p, E.unsharded_rec.p) && rhm_recs_load(&R, E.unsharded_rec.p, 0)))
            rc = RH_ENOMEM;
        if (!rc) { /* every shard's records */
            char **names = NULL;
            int n = 0, i;
            rc = rhm_shard_files(x->out, ".jsonl", &names, &n);
            for (i = 0; i < n; i++) {
                if (!rc && strcmp(names[i], E.rec_path.p) && rhm_recs_load(&R, names[i], 0)) rc = RH_ENOMEM;
                free(names[i]);
            }
            free(names);
        }
    }
    /* the records of an output name describe one run's items (as niah's): a record of this file
     * that no item of this run has is another configuration's */
    for (t = 0; !rc && t < R.n; t++) {
        int i;
        if (!R.r[t].own) continue;
        for (i = 0; i < E.n_it && strcmp(E.key[i], R.r[t].key); i++) {
        }
        if (i == E.n_it) {
            const char *id = rhe_strf(&R.r[t].v, "id");
            set_err(msg, cap, "%s holds item \"%.60s\" of another run (another model, mask, task file, shots or setting): "
                              "--fresh starts over, or give -o another name", E.rec_path.p, id ? id : "?");
            rc = RH_EINVAL;
        }
    }
    if (!rc && !(T = (rhe_toks *)calloc((size_t)E.n_it, sizeof *T))) rc = RH_ENOMEM;
    for (t = 0; !rc && t < E.n_it; t++) {
        int done;
        if (!rhe_is_mine(&E, t)) continue;
        done = rhm_recs_find(&R, E.key[t]) != NULL;
        E.n_done_before += done;
        todo += !done;
        /* the tokens of every item of the shard, now: each size is checked before the first item
         * runs (a resumed run too); those of the items to run are kept */
        if ((rc = rhe_tokens(&E, t, &T[t], msg, cap)) != RH_OK) break;
        if (T[t].n < (E.it[t].kind == RH_TASK_PERPLEXITY ? 2 : 1)) {
            set_err(msg, cap, "item \"%.60s\": its %s has %d tokens, nothing to predict from", E.it[t].id,
                    E.it[t].kind == RH_TASK_PERPLEXITY ? "text" : "prompt", T[t].n);
            rc = RH_EINVAL;
            break;
        }
        if (rhe_ctx_need(&E, t, &T[t]) > need) need = rhe_ctx_need(&E, t, &T[t]);
        if (E.it[t].kind != RH_TASK_PERPLEXITY && rhe_ctx_need(&E, t, &T[t]) > E.cfg->max_ctx && !warned++)
            rhe_note(&E, "warning: item \"%.60s\" needs %d tokens, more than the model's trained context of %d", E.it[t].id,
                     rhe_ctx_need(&E, t, &T[t]), E.cfg->max_ctx);
        if (done) rhe_toks_free(&T[t]);
    }
    if (!rc && x->ctx.n_ctx && x->ctx.n_ctx < need) {
        set_err(msg, cap, "--ctx: %d is smaller than the %d tokens the largest item needs", x->ctx.n_ctx, need);
        rc = RH_EINVAL;
    }
    if (!rc && need > RHE_MAX_TOKENS) {
        set_err(msg, cap, "an item needs %d tokens, more than the limit of %d", need, RHE_MAX_TOKENS);
        rc = RH_EINVAL;
    }
    if (!rc && x->dry_run) {
        rc = rhe_dry_run(&E, &R, T, need, res, msg, cap);
        goto done;
    }
    if (!rc && E.n_done_before) rhe_note(&E, "resuming: %d of %d items already done", E.n_done_before, E.n_mine);
    if (!rc && todo) {
        rh_ctx_params p = E.X.ctx;
        if (!p.n_ctx) p.n_ctx = need;
        rc = rh_ctx_sizes_of(E.m, &p, &E.kv_sz, msg, cap);
        S.vocab = E.cfg->vocab_size;
        S.mask = E.mask;
        S.mode = x->mask_mode;
        S.mask_prefill = x->mask_prefill;
        if (!rc) rc = rh_ctx_new(E.m, &p, &S.c, msg, cap);
        if (!rc && !(S.rows = (float *)malloc((size_t)RHE_ROWS * (size_t)S.vocab * sizeof *S.rows))) rc = RH_ENOMEM;
    }
    /* the records so far, rewritten whole (a torn last line of a killed run goes), then
     * appended to after each item: a killed run loses at most the item it was in */
    if (!rc) {
        rhm_buf b = {0};
        int i;
        rhm_buf_put(&b, "", 0);
        for (i = 0; i < R.n; i++)
            if (R.r[i].own) {
                rhm_buf_puts(&b, R.r[i].line);
                rhm_buf_put(&b, "\n", 1);
            }
        rc = b.oom ? RH_ENOMEM : rhm_write_atomic(E.rec_path.p, b.p, b.n, msg, cap);
        rhm_buf_free(&b);
        if (!rc && !(journal = fopen(E.rec_path.p, "ab"))) {
            set_err(msg, cap, "%s: cannot write: %s", E.rec_path.p, strerror(errno));
            rc = RH_EIO;
        }
    }
    if (rc) goto done;
    /* run every item of this shard not finished before */
    res->running = 1;
    t_run0 = rh_now();
    for (t = 0; t < E.n_it; t++) {
        rhm_buf line = {0};
        double score = 0;
        char *resp = NULL;
        if (!rhe_is_mine(&E, t) || rhm_recs_find(&R, E.key[t])) continue;
        rc = rhe_run_item(&E, &S, t, &T[t], &line, &score, &resp, msg, cap);
        rhe_toks_free(&T[t]);
        if (!rc && rhm_recs_add(&R, line.p, line.n, 1) < 0) rc = RH_ENOMEM;
        if (!rc && (fwrite(line.p, 1, line.n, journal) != line.n || fputc('\n', journal) == EOF ||
                    rh_file_sync(journal) != 0)) {
            set_err(msg, cap, "%s: cannot write: %s", E.rec_path.p, strerror(errno));
            rc = RH_EIO;
        }
        rhm_buf_free(&line);
        if (!rc) E.n_run++;
        if (!rc && x->progress) {
            rh_eval_progress p;
            double el = rh_now() - t_run0;
            p.done = E.n_done_before + E.n_run;
            p.total = E.n_mine;
            p.resumed = E.n_done_before;
            p.elapsed_s = el;
            p.eta_s = el / E.n_run * (todo - E.n_run);
            p.id = E.it[t].id;
            p.kind = E.it[t].kind;
            p.score = score;
            p.response = resp ? resp : "";
            x->progress(x->user, &p);
        }
        free(resp);
        if (rc) goto done;
    }
    fclose(journal);
    journal = NULL;
    /* write: the records in item order, the CSV, the run record */
    if (!(list = (rhm_rec **)malloc((size_t)(E.n_mine > 0 ? E.n_mine : 1) * sizeof *list))) rc = RH_ENOMEM;
    for (t = 0; !rc && t < E.n_it; t++) {
        rhm_rec *r;
        if (rhe_is_mine(&E, t) && (r = rhm_recs_find(&R, E.key[t])) != NULL) list[n_list++] = r;
    }
    res->n_items = E.n_mine;
    res->n_resumed = E.n_done_before;
    res->n_run = E.n_run;
    if (!rc && !(res->mask_label = rhm_strdup(E.mask_label))) rc = RH_ENOMEM;
    if (!rc && !(res->kv_label = rhm_strdup(E.kv_label))) rc = RH_ENOMEM;
    res->kv_bytes = E.kv_sz.kv_bytes;
    res->kv_full_bytes = E.kv_sz.kv_full_bytes;
    if (!rc) rc = rhe_write_outputs(&E, list, n_list, res, msg, cap);
    if (!rc) res->running = 0;
done:
    if (journal) fclose(journal);
    if (rc == RH_ENOMEM && (!msg || !msg[0])) set_err(msg, cap, "out of memory");
    for (t = 0; T && t < E.n_it; t++) rhe_toks_free(&T[t]);
    free(T);
    free(list);
    if (S.c) rh_ctx_free(S.c);
    free(S.pre);
    free(S.rows);
    rhm_recs_free(&R);
    rhe_exp_free(&E);
    if (rc || !res_out) {
        int running = res->running;
        rh_eval_result_free(res);
        res->running = running;
    }
    return rc;
}


/* =============================================================================================
 * 2. THE MODEL
 *
 * The math of Hugging Face's LlamaForCausalLM (also Mistral, Qwen2, Phi-3), in f32 whatever the
 * weight dtype:
 *   x = embed[id]
 *   per layer:  h = x + o_proj(attn(rope(q_proj(rms(x))), rope(k_proj(rms(x))), v_proj(rms(x))))
 *               x = h + down(silu(gate(rms(h))) * up(rms(h)))
 *   logits = lm_head(rms(x))
 * attn is causal; with a sliding window (Mistral v0.1, Qwen2's use_sliding_window) token i of a
 * windowed layer sees keys i - W < j <= i only (att_lo).
 * Activations are row-major (tokens, features).  The KV cache is (layer, kv_head, position,
 * head_dim) so one head's keys are contiguous.  Two passes compute it: reference_forward, plain
 * loops a token at a time (read it first), and the fast one (forward_chunk: packed GEMMs, tiled
 * online-softmax attention on the thread pool); rh_ctx_params.reference picks one per context.
 *
 * What it may call: the weights as section 4 maps them (struct rh_model below), the kernels
 * and the thread pool of section 5 (declared below), the utilities at the top of the file.
 * ============================================================================================= */

/* ---- the model in memory, as the .rhw loader (section 4) fills it ---- */

#define RHW_MAX_CTX (1 << 24) /* the format's limit on max_ctx, and so on a context */
#define RHW_MAX_EXPERTS 256  /* the format's limit on n_experts (a mixture's routing tables) */

typedef struct rh_tokenizer rh_tokenizer; /* section 3 */

/* A weight matrix as stored: rows x cols, row-major, cols contiguous. */
typedef struct {
    const void *p;
    rh_dtype dt;
    int rows, cols;
} rh_wt;

typedef struct {
    const float *attn_norm, *ffn_norm; /* (dim) */
    const float *bq, *bk, *bv;         /* (rows of q/k/v) or NULL */
    rh_wt wq, wk, wv, wo, wg, wu, wd;  /* wg, wu, wd: a dense MLP's (absent in a mixture) */
    rh_wt wr;                          /* a mixture of experts: the router (n_experts, dim) */
    rh_wt *we;                         /* and (n_experts, 3): expert e's gate, up and down at
                                          we[3 e], we[3 e + 1], we[3 e + 2]; else NULL */
} rh_layer;

struct rh_model {
    rh_config cfg;
    char *path;                /* the file's path, or the name given to open_memory */
    const unsigned char *base; /* the whole file image (little-endian, as on disk) */
    size_t size;
    unsigned char *host_data;  /* big-endian hosts: the data region, byte-swapped once at load; else NULL */
    uint64_t data_off;         /* where the data region starts in base */
    int mapped;                /* 1: rh_unmap_file base; 0: rh_aligned_free base */
    rh_dtype dtype;            /* dtype of the projections */
    rh_wt embed, lm_head;      /* lm_head == embed when tied */
    const float *final_norm;   /* (dim) */
    rh_layer *layers;          /* (n_layers) */
    rh_wt *experts;            /* (n_layers, n_experts, 3): what the layers' we point into */
    float *f32_small;          /* f32 copies of norms and biases */
    float *inv_freq;           /* (R) RoPE inverse frequencies, scaling applied (longrope: the
                                  short factors), R = rotated pairs (rope_pairs) */
    float *inv_freq_long;      /* (R) longrope: with the long factors; else NULL */
    const float *rope_short, *rope_long; /* (R) longrope's factor lists (f32 copies) or NULL */
    const unsigned char *meta; /* metadata section (after n_entries), validated */
    size_t meta_size;
    uint32_t n_meta;
    int n_tensors;
    rh_tokenizer *tok;
};
static const rh_tokenizer *model_tokenizer(const rh_model *m) { return m->tok; }

/* ---- the kernels and the thread pool it runs on (section 5; each kernel's reduction order is
 * part of its contract, see there) ---- */

static size_t dtype_size(rh_dtype t);
/* conversions: dst[0..n) = src (dtype t) as f32, exact; a row stored in dtype t (nearest even) */
static void k_cvt(rh_dtype t, const void *src, float *dst, int n);
static void k_store_row(rh_dtype t, const float *src, void *dst, int n);
/* one element: f16 / bf16 to f32 (exact), f32 to bf16 (nearest even) */
static float k_f16_to_f32(uint16_t h);
static float k_bf16_to_f32(uint16_t h);
static uint16_t k_f32_to_bf16(float f);
/* decode: w (dtype t) . x, one weight row; scores (m, n) = X W^T for f32 rows */
static float k_dot_w(rh_dtype t, const void *w, const float *x, int n);
static void k_gemm_nt(const float *X, int ldx, const float *W, int ldw, float *Y, int ldy, int m,
                      int n, int k);
/* prefill: pack weight panels (k, RH_NR) and X tiles (k, RH_MR), then the register-tile GEMM */
static void k_pack_w(rh_dtype dt, const void *W, size_t ldw, int nr, int k, float *P);
static void k_pack_x_tile(const float *X, int ldx, int m, int k, int t, float *Xp);
static void k_gemm_packed(const float *Xp, const float *P, int k, float *Y, int ldy, int m, int nr);
static void k_gemm_rows_acc(const float *X, int ldx, const float *P, int ldp, int k, float *Y, int ldy,
                            int m, int nr, int acc);
/* the bf16 dot-product GEMM of RH_BF16DOT builds (X and W as bf16 pairs) */
RH_UNUSED static void k_pack_w_bf16pair(const uint16_t *W, size_t ldw, int nr, int k, uint32_t *P);
RH_UNUSED static void k_pack_x_tile_bf16pair(const float *X, int ldx, int m, int k, int t, uint32_t *Xp);
RH_UNUSED static void k_gemm_bf16dot(const uint32_t *Xp, const uint32_t *P, int k, float *Y, int ldy, int m,
                                     int nr);
/* elementwise and softmax pieces */
RH_UNUSED static void k_axpy(float a, const float *x, float *y, int n);
static void k_scale(float *y, float a, int n);
static float k_max(const float *x, int n);
static float k_exp_sum(const float *x, float a, float mx, float *y, int n);
static void k_pv(const float *p, const float *q, const float *V, int nk, int d, float *o, float *u);
static void k_silu_mul(float *g, const float *u, int n);
/* the pool: tasks 0..n_tasks-1 of fn claimed by its threads; the caller is thread 0 */
typedef struct rh_pool rh_pool;
typedef void (*rh_task_fn)(void *arg, int task, int thread);
static rh_pool *pool_new(int n);
static void pool_free(rh_pool *p);
static void pool_run(rh_pool *p, rh_task_fn fn, void *arg, int n_tasks);

/* Keys per attention block, and query rows (heads x tokens) per attention task.  Larger key
 * blocks pay the online-softmax bookkeeping and the O-tile load/store of P V once per block while
 * the scores block (RH_QROWS x RH_BK floats, 192 KB) stays in L2; more query rows per task share
 * the packing of each K block and the conversion of each V block.  The values are the fastest of
 * those measured (`make bench-attention`; README, Speed).  Neither changes a result with the
 * thread count, only who computes it; the block size does move the last bits (the running max is
 * rescaled at other points). */
#define RH_BK 256
#define RH_QROWS 192     /* target query rows (heads x tokens) per attention task: 32 full 6-row tiles */
#define RH_CHUNK 512     /* default prefill chunk */

typedef struct {
    float *wpack;           /* (kmax, RH_NR) the packed panel (f32, or bf16 pairs: half the size) */
    float *q, *o, *s;       /* (R, head_dim), (R, head_dim), (R, RH_BK) */
    float *kf;              /* (RH_BK, head_dim) converted K block (decode) */
    float *vf;              /* the converted V block: (RH_BK, head_dim) in decode; in prefill
                             * ceil(head_dim / RH_NR) panels of (RH_BK, RH_NR), see k_pack_v */
    float *kp;              /* (head_dim, RH_NR) packed K panel */
    unsigned char *kg, *vg; /* (RH_BK, head_dim) in the cache dtype: a windowed head's K and V
                             * rows of one key block gathered in position order (NULL without
                             * windowed heads) */
    float *mx, *sum, *best; /* (R) running max, softmax denominator, best raw score */
    int *bestpos;           /* (R) */
} rh_scratch;

struct rh_ctx {
    const rh_model *m;
    int n_threads, n_ctx, n_past, chunk, qb; /* qb: query tokens per attention task */
    int reference;                          /* 1: rh_eval runs reference_forward (chunk 1,
                                               1 thread, no pool, scr, xpack) */
    rh_dtype kv_dtype;
    rh_pool *pool;
    unsigned char *kcache, *vcache;         /* per (layer, kv head) kv_slots rows of head_dim at
                                               row kv_off; without a policy (n_layers, n_kv_heads,
                                               n_ctx, head_dim) */
    /* the KV policy (rh_ctx_params.kv_window): a windowed KV head stores position p in slot p
     * when p < kv_sinks, else kv_sinks + (p - kv_sinks) % kv_window; it is windowed only where
     * kv_sinks + kv_window < n_ctx (else it keeps every position anyway) */
    int kv_window, kv_sinks, n_windowed;
    int kv_hi;                              /* the highest n_past since the cache was emptied */
    int *kv_slots;                          /* (n_layers * n_kv_heads) n_ctx, or S + W: windowed */
    size_t *kv_off;                         /* (n_layers * n_kv_heads) first row in k/vcache */
    unsigned char *kst, *vst;               /* (chunk, n_kv_heads, head_dim) in the cache dtype: a
                                               chunk's rows of windowed heads while its attention
                                               runs (a ring would drop rows earlier tokens of the
                                               chunk still see); NULL without windowed heads */
    double kv_bytes;
    float *x, *xb, *xb2, *q, *k, *v, *att;  /* (chunk, dim | q_dim | kv_dim) */
    float *hb, *hb2;                        /* (chunk, hidden_dim) */
    /* a mixture of experts (n_experts): the rows routed to one expert and the sum of the
     * experts' outputs (chunk, dim), router logits (chunk, n_experts), each token's chosen
     * experts (increasing) and their weights (chunk, n_experts_used), the routed rows' (token,
     * choice) indices (chunk); NULL in a dense model */
    float *moe_x, *moe_y, *moe_r, *moe_w;
    int *moe_sel, *moe_tok;
    float *xpack;                           /* (chunk rounded up to RH_MR, kmax) packed X */
    uint32_t *xpack16;                      /* (chunk rounded up to RH_MR, ceil(kmax / 2)) bf16-pair
                                               packed X; RH_BF16DOT builds only, else NULL */
    float *rope;                            /* (chunk, head_dim/2, 2) cos, sin */
    rh_scratch *scr;                        /* (n_threads) */
    double *ref_p;                          /* (n_ctx) reference_attention's scores, weights */
    int *ids;                               /* (n_ctx) longrope: the cached positions' tokens, to
                                               recompute them when the factor list changes */
    int rope_long;                          /* longrope: the cache was computed with the long list */
    int observing;
    rh_observe obs;
    unsigned char *mask;                    /* (n_layers * n_heads) or NULL */
    rh_mask_mode mask_mode;
    char err[256];
};

/* ---- elementwise pieces (both passes) ---- */

/* out = x * rsqrt(mean(x^2) + eps) * w, as LlamaRMSNorm in f32 (sum of squares in double) */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    float r;
    int i;
    for (i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    r = 1.0f / sqrtf((float)(ss / n) + eps);
    for (i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

/* ---- RoPE, rotate-half: dimension i pairs with i + d/2; cos/sin per (token, i) ---- */
/* The rotated pairs R of a head: rope_dim / 2 (partial rotary, Phi-3's partial_rotary_factor),
 * else head_dim / 2. */
static int rope_pairs(const rh_config *cf) { return (cf->rope_dim ? cf->rope_dim : cf->head_dim) / 2; }

static void rope_tables(const rh_ctx *c, int p0, int n) {
    const rh_model *m = c->m;
    int half = m->cfg.head_dim / 2, R = rope_pairs(&m->cfg), t, i;
    /* longrope: the list the context uses now (rh_eval picks it), and cos, sin times the
     * attention factor in f32 as HF's Phi3RotaryEmbedding */
    const float *inv = c->rope_long && m->inv_freq_long ? m->inv_freq_long : m->inv_freq;
    int scaled = m->cfg.rope_scaling == RH_ROPE_LONGROPE;
    float af = m->cfg.rope_attn_factor;
    for (t = 0; t < n; t++) {
        float *cs = c->rope + (size_t)t * half * 2;
        for (i = 0; i < R; i++) {
            /* as HF: the angle is an f32 product of the f32 position and inv_freq */
            float ang = (float)(p0 + t) * inv[i];
            cs[2 * i] = (float)cos((double)ang);
            cs[2 * i + 1] = (float)sin((double)ang);
            if (scaled) { cs[2 * i] *= af; cs[2 * i + 1] *= af; }
        }
    }
}
/* x (n_heads, hd): dimension i < half pairs with i + half, half = R (the rotated pairs); the
 * dimensions from 2R on pass through */
static void rope_apply(float *x, int n_heads, int hd, int half, const float *cs) {
    int h, i;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (i = 0; i < half; i++) {
            float a = v[i], b = v[i + half], co = cs[2 * i], si = cs[2 * i + 1];
            v[i] = a * co - b * si;
            v[i + half] = b * co + a * si;
        }
    }
}

/* ---- sliding-window attention ----
 * The first position the token at pos sees in layer l: pos - W + 1 (clamped at 0) in a windowed
 * layer, so it attends to i - W < j <= i as Hugging Face's sliding_window_overlay (kv_idx >
 * q_idx - sliding_window) on the causal mask; 0 elsewhere.  Both passes and both hooks act on
 * positions lo..pos only: the softmax, top-1, the uniform mask's mean (of the visible values). */
static int att_lo(const rh_config *cf, int l, int pos) {
    if (!cf->sliding_window || l < cf->window_first_layer || pos < cf->sliding_window) return 0;
    return pos - cf->sliding_window + 1;
}

/* ---- the KV policy (rh_ctx_params.kv_window): where a position's row lives, what a head sees ----
 * lh = layer * n_kv_heads + kv head.  A windowed head keeps the sinks 0 .. S-1 and the last W
 * positions; a query at pos sees [0, min(S, pos + 1)) and [max(S, pos + 1 - W), pos], always in
 * increasing position order, so that where the two ranges meet (S + W covers pos) it computes
 * exactly what a full head does. */
static int kv_windowed(const rh_ctx *c, int lh) { return c->kv_slots[lh] < c->n_ctx; }
static size_t kv_row(const rh_ctx *c, int lh, int pos) {
    int S = c->kv_sinks;
    if (!kv_windowed(c, lh) || pos < S) return c->kv_off[lh] + (size_t)pos;
    return c->kv_off[lh] + (size_t)(S + (pos - S) % c->kv_window);
}
static int kv_visible(const rh_ctx *c, int lh, int pos, int j) {
    return j >= att_lo(&c->m->cfg, lh / c->m->cfg.n_kv_heads, pos) &&
           (!kv_windowed(c, lh) || j < c->kv_sinks || j > pos - c->kv_window);
}
/* The positions of [lo, hi) a query at pos sees through head lh: n (0..2) ranges [a[i], b[i]),
 * increasing, ranges that touch merged into one (a full head: [lo, min(hi, pos + 1))); in a
 * sliding-window layer nothing before its window (att_lo), sinks included. */
static int kv_ranges(const rh_ctx *c, int lh, int pos, int lo, int hi, int *a, int *b) {
    int n = 0, S = c->kv_sinks, a1, b1, e = hi < pos + 1 ? hi : pos + 1, w0 = att_lo(&c->m->cfg, lh / c->m->cfg.n_kv_heads, pos);
    if (lo < w0) lo = w0;
    if (!kv_windowed(c, lh)) {
        if (e <= lo) return 0;
        a[0] = lo;
        b[0] = e;
        return 1;
    }
    if ((S < e ? S : e) > lo) { a[0] = lo; b[0] = S < e ? S : e; n = 1; }
    a1 = pos + 1 - c->kv_window > S ? pos + 1 - c->kv_window : S;
    if (a1 < lo) a1 = lo;
    b1 = e;
    if (b1 > a1) {
        if (n && a1 <= b[0]) b[0] = b1;
        else { a[n] = a1; b[n] = b1; n++; }
    }
    return n;
}

/* ---- the reference forward pass: the model as a reader should first meet it ----
 * In the style of llama2.c's forward(): one token at a time, plain loops, one comment per step,
 * and the observe and mask hooks as plain lines beside the softmax.  It is the twin of the fast
 * pass below (matmul, att_task, forward_chunk), as every SIMD kernel has a scalar twin: the same
 * function on the same context (the KV cache in the context's dtype and layout, written through
 * the same rounding, the same hook contract, the same rewind), selected by
 * rh_ctx_params.reference; the tests hold the fast pass to it.  Read this first.
 *
 * Precision: values are f32 wherever the fast pass keeps them in f32 (activations between
 * steps, scores, the KV cache), so the two round at the same points; every sum (dot products,
 * the softmax denominator, the weighted sum of values) runs in double, so each step here is
 * close to one correctly rounded f32 result, and fast-minus-reference measures the fast pass's
 * f32 accumulation alone (a few 1e-6 on the test fixtures).  Sums in f32 here too would add a
 * second error of that size, in another order, to every comparison. */

/* Element i of a row of dtype dt (weights, the KV cache), converted to f32 (exact). */
static float ref_get(rh_dtype dt, const void *row, size_t i) {
    if (dt == RH_F32) return ((const float *)row)[i];
    return dt == RH_F16 ? k_f16_to_f32(((const uint16_t *)row)[i]) : k_bf16_to_f32(((const uint16_t *)row)[i]);
}

/* y (w->rows) = W x for W (rows, cols) as stored.  bf16x: x rounded to bf16 where W is bf16, as
 * a prefill of RH_BF16DOT builds does (see reference_forward). */
static void ref_matvec(const rh_wt *w, const float *x, float *y, int bf16x) {
    size_t row_bytes = (size_t)w->cols * dtype_size(w->dt);
    int r, j;
    for (r = 0; r < w->rows; r++) {
        const unsigned char *row = (const unsigned char *)w->p + (size_t)r * row_bytes;
        double s = 0.0;
        for (j = 0; j < w->cols; j++) {
            float xj = bf16x && w->dt == RH_BF16 ? k_bf16_to_f32(k_f32_to_bf16(x[j])) : x[j];
            s += (double)ref_get(w->dt, row, (size_t)j) * xj;
        }
        y[r] = (float)s;
    }
}

/* Attention of the token at pos, every head of layer l: c->att (n_heads, head_dim) from
 * c->q (n_heads, head_dim) and the cached keys and values of positions 0..pos (the token's own
 * already stored).  observe: the token is the last of its rh_eval call, so the hook records. */
static void reference_attention(rh_ctx *c, int l, int pos, int observe) {
    const rh_config *cf = &c->m->cfg;
    int nh = cf->n_heads, nkv = cf->n_kv_heads, hd = cf->head_dim, h, j, i;
    size_t es = dtype_size(c->kv_dtype);
    float scale = 1.0f / sqrtf((float)hd);
    double *p = c->ref_p; /* (pos + 1) scores, then weights */
    int lo = att_lo(cf, l, pos); /* the window: positions lo..pos are visible */
    for (h = 0; h < nh; h++) {
        int hi = l * nh + h, best = pos; /* hi: the hooks' index of this head */
        int mode = c->mask && c->mask[hi] ? (int)c->mask_mode : -1;
        /* GQA: query head h reads key/value head h / (n_heads / n_kv_heads); a windowed one (KV
         * policy) sees only some positions (kv_visible), each in its slot (kv_row) */
        int lh = l * nkv + h / (nh / nkv);
        const float *q = c->q + (size_t)h * hd;
        float *out = c->att + (size_t)h * hd;
        double mx, sum = 0.0;
        /* scores: q . k_j / sqrt(head_dim), rounded to f32 as the fast pass keeps them; -inf
         * (weight 0) where the head does not see position j (a KV policy's windowed head) */
        for (j = lo; j <= pos; j++) {
            const unsigned char *k = c->kcache + kv_row(c, lh, j) * hd * es;
            double d = 0.0;
            if (!kv_visible(c, lh, pos, j)) { p[j] = -INFINITY; continue; }
            for (i = 0; i < hd; i++) d += (double)q[i] * ref_get(c->kv_dtype, k, (size_t)i);
            p[j] = (float)d * scale;
        }
        /* the mask hook (rh_set_mask): uniform sets every score to 0 (the paper's masking), neg-inf
         * every score but the token's own to -inf; zero acts on the output below */
        if (mode == RH_MASK_UNIFORM) for (j = lo; j <= pos; j++) if (kv_visible(c, lh, pos, j)) p[j] = 0.0;
        if (mode == RH_MASK_NEG_INF) for (j = lo; j < pos; j++) p[j] = -INFINITY;
        /* softmax; the first position of the max is the top-1 (ties -> the smallest position) */
        mx = -INFINITY;
        for (j = lo; j <= pos; j++)
            if (p[j] > mx) { mx = p[j]; best = j; }
        for (j = lo; j <= pos; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
        for (j = lo; j <= pos; j++) p[j] /= sum;
        /* the observe hook (rh_set_observe): top-1, its weight, the whole row, as applied (0 before
         * the window) */
        if (observe) {
            c->obs.top1[hi] = best;
            if (c->obs.top1_weight) c->obs.top1_weight[hi] = (float)p[best];
            if (c->obs.rows)
                for (j = 0; j <= pos; j++) c->obs.rows[(size_t)hi * c->obs.row_stride + j] = j < lo ? 0.0f : (float)p[j];
        }
        /* out (head_dim) = sum_j p_j v_j; the zero mask zeroes it (its attention, as observed, stays) */
        for (i = 0; i < hd; i++) {
            double o = 0.0;
            if (mode != RH_MASK_ZERO)
                for (j = lo; j <= pos; j++)
                    if (kv_visible(c, lh, pos, j)) o += p[j] * ref_get(c->kv_dtype, c->vcache + kv_row(c, lh, j) * hd * es, (size_t)i);
            out[i] = (float)o;
        }
    }
}


/* ---- a mixture of experts' routing (both passes): as HF's MixtralSparseMoeBlock ----
 * r: one token's router logits (E).  p = softmax(r) in f32 (the sum in double, as every
 * reduction here that is not a kernel's); the K largest p, of equal p the lower expert index
 * (torch.topk leaves ties unspecified); their weights p / (their sum, added largest first, as
 * topk returns them).  Out: sel (K) the chosen experts in increasing index, the order both
 * passes add their outputs in (HF's index_add_ over experts in increasing index), w (K) their
 * weights. */
static void moe_route(const float *r, int E, int K, int *sel, float *w) {
    float mx = r[0], p[RHW_MAX_EXPERTS];
    double sum = 0.0, tsum = 0.0;
    unsigned char taken[RHW_MAX_EXPERTS];
    int e, j, i;
    for (e = 1; e < E; e++) if (r[e] > mx) mx = r[e];
    for (e = 0; e < E; e++) { p[e] = expf(r[e] - mx); sum += p[e]; taken[e] = 0; }
    for (e = 0; e < E; e++) p[e] = (float)(p[e] / sum);
    for (j = 0; j < K; j++) { /* the j-th largest */
        int best = -1;
        for (e = 0; e < E; e++)
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = 1;
        tsum += p[best];
    }
    for (e = 0, i = 0; e < E; e++)
        if (taken[e]) { sel[i] = e; w[i] = (float)(p[e] / tsum); i++; }
}
/* c->xb2 (dim) = down(silu(gate xb) * up xb) for the normalised row c->xb: one SwiGLU MLP, a
 * dense layer's or one expert's (silu in double, as everywhere in this pass). */
static void reference_mlp(rh_ctx *c, const rh_wt *gate, const rh_wt *up, const rh_wt *down, int bf16x) {
    int i, hid = c->m->cfg.hidden_dim;
    ref_matvec(gate, c->xb, c->hb, bf16x);
    ref_matvec(up, c->xb, c->hb2, bf16x);
    for (i = 0; i < hid; i++) {
        double g = c->hb[i];
        c->hb[i] = (float)(g / (1.0 + exp(-g)) * c->hb2[i]);
    }
    ref_matvec(down, c->hb, c->xb2, bf16x);
}

/* The token id at position pos through the model: its key and value rows appended to the cache,
 * logits (vocab_size) written when logits is not NULL; observe as in reference_attention.
 * bf16x: the token is part of a prefill (an rh_eval of more than one token) in an RH_BF16DOT
 * build, whose fast pass multiplies bf16 weights by activations rounded to bf16 (the bf16
 * dot-product GEMM, as PyTorch's bf16 matmul does); decode steps do not round. */
static void reference_forward(rh_ctx *c, int id, int pos, float *logits, int observe, int bf16x) {
    const rh_model *m = c->m;
    const rh_config *cf = &m->cfg;
    int dim = cf->dim, nh = cf->n_heads, nkv = cf->n_kv_heads, hd = cf->head_dim;
    int qd = nh * hd, kvd = nkv * hd, l, h, i;
    size_t es = dtype_size(c->kv_dtype);
    /* one row of the context's buffers: x, xb, xb2 (dim); q, att (n_heads, head_dim);
     * k, v (n_kv_heads, head_dim); hb, hb2 (hidden_dim, reference_mlp's) */
    float *x = c->x, *xb = c->xb, *xb2 = c->xb2, *q = c->q, *k = c->k, *v = c->v;

    /* x = the token's embedding row */
    for (i = 0; i < dim; i++)
        x[i] = ref_get(m->embed.dt, (const unsigned char *)m->embed.p + (size_t)id * dim * dtype_size(m->embed.dt), (size_t)i);
    for (l = 0; l < cf->n_layers; l++) {
        const rh_layer *L = &m->layers[l];
        /* attention block: q, k, v projections of rmsnorm(x) */
        rmsnorm(xb, x, L->attn_norm, dim, cf->norm_eps);
        ref_matvec(&L->wq, xb, q, bf16x);
        ref_matvec(&L->wk, xb, k, bf16x);
        ref_matvec(&L->wv, xb, v, bf16x);
        if (L->bq) { /* Qwen2: biases on q, k and v */
            for (i = 0; i < qd; i++) q[i] += L->bq[i];
            for (i = 0; i < kvd; i++) { k[i] += L->bk[i]; v[i] += L->bv[i]; }
        }
        /* RoPE on every head of q and k: rotate-half (dimension i with i + head_dim/2), angle
         * pos * inv_freq[i] (linear or llama3 scaling is in the model's inv_freq) */
        rope_tables(c, pos, 1);
        rope_apply(q, nh, hd, rope_pairs(cf), c->rope);
        rope_apply(k, nkv, hd, rope_pairs(cf), c->rope);
        /* k, v into the cache at (l, kv head, pos) (a windowed head's slot for pos: the position
         * it drops is one this token no longer sees), rounded to its dtype as the fast pass does */
        for (h = 0; h < nkv; h++) {
            size_t at = kv_row(c, l * nkv + h, pos) * hd * es;
            k_store_row(c->kv_dtype, k + (size_t)h * hd, c->kcache + at, hd);
            k_store_row(c->kv_dtype, v + (size_t)h * hd, c->vcache + at, hd);
        }
        /* att = every head's attention over positions 0..pos (the hooks act there) */
        reference_attention(c, l, pos, observe);
        /* x += o_proj(att) */
        ref_matvec(&L->wo, c->att, xb2, bf16x);
        for (i = 0; i < dim; i++) x[i] += xb2[i];
        /* MLP block: x += down(silu(gate(rmsnorm(x))) * up(rmsnorm(x))); in a mixture of
         * experts, x += the chosen experts' MLPs, each times its routing weight */
        rmsnorm(xb, x, L->ffn_norm, dim, cf->norm_eps);
        if (L->we) {
            int j, e, K = cf->n_experts_used;
            float *acc = c->moe_y;
            ref_matvec(&L->wr, xb, c->moe_r, bf16x);
            moe_route(c->moe_r, cf->n_experts, K, c->moe_sel, c->moe_w);
            for (i = 0; i < dim; i++) acc[i] = 0.0f;
            for (j = 0; j < K; j++) { /* in increasing expert order, as the fast pass adds them */
                e = c->moe_sel[j];
                reference_mlp(c, &L->we[3 * e], &L->we[3 * e + 1], &L->we[3 * e + 2], bf16x);
                for (i = 0; i < dim; i++) acc[i] += c->moe_w[j] * xb2[i];
            }
            for (i = 0; i < dim; i++) x[i] += acc[i];
            continue;
        }
        reference_mlp(c, &L->wg, &L->wu, &L->wd, bf16x);
        for (i = 0; i < dim; i++) x[i] += xb2[i];
    }
    /* logits = lm_head(rmsnorm(x)); lm_head is the embedding matrix when tied */
    if (logits) {
        rmsnorm(xb, x, m->final_norm, dim, cf->norm_eps);
        ref_matvec(&m->lm_head, xb, logits, bf16x);
    }
}

/* ---- the fast forward pass: the same math, blocked for speed (read the reference first) ---- */

/* ---- matmul: Y_i (m, rows_i) = X (m, k) W_i^T for up to 3 weights sharing X, one dispatch.
 * A task is one panel of RH_NB weight rows.  Prefill (packed = 1) packs the panel k-major (f16 /
 * bf16 converted first) and runs the packed GEMM; decode (packed = 0, m = 1) streams the rows
 * through dot products, converting in registers.  In RH_BF16DOT builds prefill packs bf16
 * weights as bf16 pairs instead and runs the bf16 dot-product GEMM on X rounded to bf16 (packed
 * once per matmul, beside the f32 X when some weight is not bf16).  Which path runs depends only
 * on the caller and the weight's dtype, never on the thread count.  k is not blocked
 * GotoBLAS-style: on the CPUs we measured the X stream from L3 keeps up and the extra
 * accumulator passes cost more than they save (README, Speed). ---- */
#define RH_NB RH_NR
typedef struct {
    rh_ctx *c;
    const float *X;
    int m, k, nw, packed;
    int xf32, xbf16; /* prefill: pack X as f32 tiles (c->xpack), as bf16-pair tiles (c->xpack16) */
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
#if defined(RH_BF16DOT)
        if (w->dt == RH_BF16) {
            uint32_t *P = (uint32_t *)(void *)S->wpack;
            k_pack_w_bf16pair((const uint16_t *)(const void *)wp, (size_t)J->k, nj, J->k, P);
            k_gemm_bf16dot(J->c->xpack16, P, J->k, Y + j0, w->rows, J->m, nj);
            return;
        }
#endif
        k_pack_w(w->dt, wp, (size_t)J->k, nj, J->k, S->wpack);
        k_gemm_packed(J->c->xpack, S->wpack, J->k, Y + j0, w->rows, J->m, nj);
    } else {
        size_t rb = (size_t)J->k * dtype_size(w->dt); /* bytes per weight row */
        for (i = 0; i < J->m; i++) {
            float *y = Y + (size_t)i * w->rows + j0;
            const float *x = J->X + (size_t)i * J->k;
            for (j = 0; j < nj; j++) y[j] = k_dot_w(w->dt, wp + (size_t)j * rb, x, J->k);
        }
    }
}

static void pack_x_task(void *arg, int task, int thread) {
    mm_job *J = (mm_job *)arg;
    (void)thread;
    if (J->xf32) k_pack_x_tile(J->X, J->k, J->m, J->k, task, J->c->xpack);
#if defined(RH_BF16DOT)
    if (J->xbf16) k_pack_x_tile_bf16pair(J->X, J->k, J->m, J->k, task, J->c->xpack16);
#endif
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
    J.xf32 = 1;
    J.xbf16 = 0;
#if defined(RH_BF16DOT)
    J.xf32 = 0;
    for (i = 0; i < nw; i++) {
        if (J.w[i]->dt == RH_BF16) J.xbf16 = 1;
        else J.xf32 = 1;
    }
#endif
    if (packed) pool_run(c->pool, pack_x_task, &J, (m + RH_MR - 1) / RH_MR);
    pool_run(c->pool, mm_task, &J, J.first_block[3]);
}

/* V block (nk rows of hd, dtype dt, from the cache) into ceil(hd / RH_NR) panels, panel q at
 * Vp + q nk RH_NR: Vp[(q nk + j) RH_NR + c] = V[j][q RH_NR + c], zero past hd.  In row-major V a
 * panel's rows lie hd floats apart, 256 bytes for hd 64, so the 256 rows of a block fall into a
 * quarter of L1's sets and the panel cannot stay in L1 across the query tiles; packed, one
 * panel is 16 KB in a row.  Exact (a copy, f16/bf16 widened). */
static void k_pack_v(rh_dtype dt, const unsigned char *V, int nk, int hd, float *Vp) {
    size_t es = dtype_size(dt);
    int j, d0;
    for (j = 0; j < nk; j++)
        for (d0 = 0; d0 < hd; d0 += RH_NR) {
            float *d = Vp + ((size_t)(d0 / RH_NR) * nk + j) * RH_NR;
            int w = hd - d0 < RH_NR ? hd - d0 : RH_NR;
            k_cvt(dt, V + ((size_t)j * hd + d0) * es, d, w);
            if (w < RH_NR) memset(d + w, 0, sizeof(float) * (size_t)(RH_NR - w));
        }
}

/* ---- attention ----
 * The plain version of this is reference_attention (above): read that first; this is the same
 * attention, hooks included, tiled.  One task = one kv head x a block of query tokens; its rows
 * are (token, query head of the group).  Keys are visited in blocks of RH_BK at fixed absolute
 * positions, scores computed as a small GEMM, then online softmax (running max and denominator,
 * output rescaled), so the n x n matrix never exists.  Observe records top-1 from the same scores; mask modes change them.
 * ORIGINAL: its masking reached the attention only on the eager path of some architectures (it
 * was inert for Qwen2, Mixtral and Phi-3); here every model runs this one attention. */
typedef struct {
    rh_ctx *c;
    int layer, n, p0, n_qb, obs, pk; /* pk: prefill, packed GEMMs (decode: dot products) */
} att_job;

/* Decode's O += P V for row r0 of the scratch, and row r1 beside it (r1 >= 0) when it sees the
 * same nr key ranges [ra, rb) of the block V (k_pv: each row's bits as alone). */
static void att_pv(rh_scratch *S, const float *V, int hd, int r0, int r1, int nr, const int *ra, const int *rb) {
    int x;
    for (x = 0; x < nr; x++)
        k_pv(S->s + (size_t)r0 * RH_BK + ra[x], r1 >= 0 ? S->s + (size_t)r1 * RH_BK + ra[x] : NULL, V + (size_t)ra[x] * hd,
             rb[x] - ra[x], hd, S->o + (size_t)r0 * hd, r1 >= 0 ? S->o + (size_t)r1 * hd : NULL);
}

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
    int last_pos = J->p0 + t1 - 1, lh = J->layer * nkv + hk, win = kv_windowed(c, lh), first_pos = J->p0 + t0;
    int lo0 = att_lo(cf, J->layer, first_pos); /* a sliding-window layer: no row sees a key before lo0 */
    size_t kvsz = dtype_size(c->kv_dtype), rowb = (size_t)hd * kvsz;
    size_t head_off = c->kv_off[lh] * hd;
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
    for (kb = lo0 / RH_BK * RH_BK; kb <= last_pos && !all_neginf; kb += RH_BK) {
        int pend = -1, pnr = 0, pra[2], prb[2]; /* decode: a row whose P V waits for a partner */
        /* the keys of this block any row sees: [k0, k0 + nk) (a full head: from the block start) */
        int be = last_pos + 1 - kb < RH_BK ? last_pos + 1 - kb : RH_BK, k0 = kb, nk = be;
        const unsigned char *Kc = kbase + (size_t)kb * rowb, *Vc = vbase + (size_t)kb * rowb;
        const float *K = NULL, *V; /* K (f32 rows): decode only; prefill packs K from Kc */
        if (win) {
            /* the rows' sinks and windows meet this block in [0, S) and [lo, last_pos]; gather
             * those rows in position order, from the ring (before this chunk) or the chunk's
             * staged rows; rows of the gap between no row sees are zeros */
            int S0 = c->kv_sinks, lo = first_pos + 1 - c->kv_window > S0 ? first_pos + 1 - c->kv_window : S0, q;
            int b1 = kb + be < S0 ? kb + be : S0, a2 = lo > kb ? lo : kb; /* [kb, b1): sinks, [a2, kb + be): windows */
            if (b1 <= kb && a2 >= kb + be) continue;
            k0 = b1 > kb ? kb : a2;
            nk = (a2 < kb + be ? kb + be : b1) - k0;
            for (q = k0; q < k0 + nk; q++) {
                unsigned char *kd = S->kg + (size_t)(q - k0) * rowb, *vd = S->vg + (size_t)(q - k0) * rowb;
                if (q >= J->p0) {
                    memcpy(kd, c->kst + ((size_t)(q - J->p0) * nkv + hk) * rowb, rowb);
                    memcpy(vd, c->vst + ((size_t)(q - J->p0) * nkv + hk) * rowb, rowb);
                } else if (q < c->kv_sinks || q >= lo) {
                    memcpy(kd, kbase + (kv_row(c, lh, q) - c->kv_off[lh]) * rowb, rowb);
                    memcpy(vd, vbase + (kv_row(c, lh, q) - c->kv_off[lh]) * rowb, rowb);
                } else {
                    memset(kd, 0, rowb);
                    memset(vd, 0, rowb);
                }
            }
            Kc = S->kg;
            Vc = S->vg;
        }
        if (J->pk) { /* V as panels for the P V product (any cache dtype); K is packed below */
            k_pack_v(c->kv_dtype, Vc, nk, hd, S->vf);
            V = S->vf;
        } else if (c->kv_dtype == RH_F32) {
            K = (const float *)(const void *)Kc;
            V = (const float *)(const void *)Vc;
        } else {
            k_cvt(c->kv_dtype, Kc, S->kf, nk * hd);
            K = S->kf;
            k_cvt(c->kv_dtype, Vc, S->vf, nk * hd);
            V = S->vf;
        }
        /* scores (R, nk) = Q K^T */
        if (J->pk) {
            int pn;
            for (pn = 0; pn < nk; pn += RH_NR) {
                int nr = nk - pn < RH_NR ? nk - pn : RH_NR;
                k_pack_w(c->kv_dtype, Kc + (size_t)pn * hd * kvsz, (size_t)hd, nr, hd, S->kp);
                k_gemm_rows_acc(S->q, hd, S->kp, RH_NR, hd, S->s + pn, RH_BK, R, nr, 0);
            }
        } else {
            k_gemm_nt(S->q, hd, K, hd, S->s, RH_BK, R, nk, hd);
        }
        for (r = 0; r < R; r++) {
            int ti = t0 + r / g, h = hk * g + r % g, pos = J->p0 + ti, mode = mask && mask[h] ? (int)c->mask_mode : -1;
            float *s = S->s + (size_t)r * RH_BK, bm, mnew, corr, sum;
            int observed = J->obs && ti == J->n - 1, fold, ra[2], rb[2], nr, x;
            /* what this row sees of the block: nr ranges [ra, rb) of s (one, [0, vis), where it
             * sees every key up to itself) */
            nr = mode == RH_MASK_NEG_INF ? 0 : kv_ranges(c, lh, pos, k0, k0 + nk, ra, rb);
            for (x = 0; x < nr; x++) { ra[x] -= k0; rb[x] -= k0; }
            if (nr == 0) {
                if (J->pk) memset(s, 0, sizeof(float) * (size_t)nk); /* no weight in the P V product */
                continue;
            }
            if (J->pk) { /* zeros where the row sees nothing */
                if (ra[0] > 0) memset(s, 0, sizeof(float) * (size_t)ra[0]);
                if (nr == 2) memset(s + rb[0], 0, sizeof(float) * (size_t)(ra[1] - rb[0]));
                if (rb[nr - 1] < nk) memset(s + rb[nr - 1], 0, sizeof(float) * (size_t)(nk - rb[nr - 1]));
            }
            /* the scale 1/sqrt(d) goes into the exp pass (k_exp_sum), not a pass of its own, except
             * for observed rows, whose scaled scores are kept; the max of the scaled scores is the
             * scaled max, as rounding a product by a positive constant keeps the order */
            fold = mode != RH_MASK_UNIFORM && !observed;
            bm = -INFINITY;
            for (x = 0; x < nr; x++) {
                float bx;
                if (mode == RH_MASK_UNIFORM) for (j = ra[x]; j < rb[x]; j++) s[j] = 0.0f;
                else if (!fold) k_scale(s + ra[x], scale, rb[x] - ra[x]);
                bx = k_max(s + ra[x], rb[x] - ra[x]);
                if (bx > bm) bm = bx;
            }
            if (fold) bm *= scale;
            if (observed) {
                /* top-1: the first position of the block max when it beats the earlier blocks'
                 * (the softmax needs the max anyway; only the winning block is scanned twice) */
                if (bm > S->best[r]) {
                    int at = ra[0];
                    for (x = 0; x < nr; x++) {
                        for (j = ra[x]; j < rb[x] && s[j] != bm; j++) {}
                        if (j < rb[x]) { at = j; break; }
                    }
                    S->best[r] = bm;
                    S->bestpos[r] = k0 + at;
                }
                if (c->obs.rows)
                    for (x = 0; x < nr; x++)
                        memcpy(c->obs.rows + (size_t)(J->layer * nh + h) * c->obs.row_stride + k0 + ra[x], s + ra[x],
                               sizeof(float) * (size_t)(rb[x] - ra[x]));
            }
            mnew = bm > S->mx[r] ? bm : S->mx[r];
            if (mnew > S->mx[r] && S->sum[r] > 0.0f) {
                corr = expf(S->mx[r] - mnew);
                S->sum[r] *= corr;
                k_scale(S->o + (size_t)r * hd, corr, hd);
            }
            S->mx[r] = mnew;
            for (x = 0; x < nr; x++) {
                sum = k_exp_sum(s + ra[x], fold ? scale : 1.0f, mnew, s + ra[x], rb[x] - ra[x]);
                S->sum[r] += sum;
            }
            if (J->pk) continue;
            /* decode: o += P V, two rows at a time where they see the same keys (a row waits for
             * the next in pend; its P and o are its own, so waiting changes no bit) */
            if (pend >= 0 && (pnr != nr || memcmp(pra, ra, sizeof(int) * (size_t)nr) || memcmp(prb, rb, sizeof(int) * (size_t)nr))) {
                att_pv(S, V, hd, pend, -1, pnr, pra, prb);
                pend = -1;
            }
            if (pend < 0) {
                pend = r;
                pnr = nr;
                for (x = 0; x < nr; x++) { pra[x] = ra[x]; prb[x] = rb[x]; }
                continue;
            }
            att_pv(S, V, hd, pend, r, nr, ra, rb);
            pend = -1;
        }
        if (pend >= 0) att_pv(S, V, hd, pend, -1, pnr, pra, prb);
        if (J->pk) {
            /* O (R, hd) += P (R, nk) V (nk, hd), one packed V panel of RH_NR columns at a time */
            int d0;
            for (d0 = 0; d0 < hd; d0 += RH_NR)
                k_gemm_rows_acc(S->s, RH_BK, V + (size_t)(d0 / RH_NR) * nk * RH_NR, RH_NR, nk, S->o + d0, hd, R,
                                hd - d0 < RH_NR ? hd - d0 : RH_NR, 1);
        }
    }
    for (r = 0; r < R; r++) {
        int ti = t0 + r / g, h = hk * g + r % g, pos = J->p0 + ti, mode = mask && mask[h] ? (int)c->mask_mode : -1;
        float *out = c->att + ((size_t)ti * nh + h) * hd;
        int observed = J->obs && ti == J->n - 1, hi = J->layer * nh + h;
        if (mode == RH_MASK_NEG_INF) {
            /* only the token itself is visible: the output is its value vector (a windowed
             * head's is still in the chunk's staged rows) */
            k_cvt(c->kv_dtype, win ? c->vst + ((size_t)ti * nkv + hk) * rowb : vbase + (size_t)pos * rowb, out, hd);
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
                for (j = 0; j <= pos; j++) row[j] = kv_visible(c, lh, pos, j) ? expf(row[j] - S->mx[r]) * inv : 0.0f;
            }
        }
    }
}

/* c->xb2 (n, dim) = down(silu(gate X) * up X) for n rows of X (dim): one SwiGLU MLP on the rows,
 * a dense layer's or one expert's.  Row by row: which columns fall in the kernel's vector body
 * and which in its scalar tail (the two differ in the last bits) must not depend on n. */
static void swiglu_rows(rh_ctx *c, int pk, const float *X, int n, const rh_wt *gate, const rh_wt *up, const rh_wt *down) {
    int dim = c->m->cfg.dim, hid = c->m->cfg.hidden_dim, t;
    matmul(c, pk, X, n, dim, 2, gate, c->hb, up, c->hb2, NULL, NULL);
    for (t = 0; t < n; t++) k_silu_mul(c->hb + (size_t)t * hid, c->hb2 + (size_t)t * hid, hid);
    matmul(c, pk, c->hb, n, hid, 1, down, c->xb2, NULL, NULL, NULL, NULL);
}

/* ---- a mixture of experts' MLP on the chunk's n normalised rows xb: x += for each token the
 * weighted sum of its chosen experts' outputs.  The tokens routed to an expert are gathered and
 * run through its weights as one GEMM (prefill: each expert's weights are packed once per
 * chunk) or, in decode, as dot products of the chosen experts' rows only; an expert no token
 * chose is not read.  A token's output does not depend on which tokens share its expert: each
 * output element is one chain over k whatever the rows beside it (section 5), and a token adds
 * its experts' outputs in increasing expert order, as reference_forward does. ---- */
static void moe_mlp(rh_ctx *c, const rh_layer *L, int n, int pk) {
    const rh_config *cf = &c->m->cfg;
    int dim = cf->dim, E = cf->n_experts, K = cf->n_experts_used, t, j, e, i, d;
    matmul(c, pk, c->xb, n, dim, 1, &L->wr, c->moe_r, NULL, NULL, NULL, NULL);
    for (t = 0; t < n; t++) moe_route(c->moe_r + (size_t)t * E, E, K, c->moe_sel + (size_t)t * K, c->moe_w + (size_t)t * K);
    memset(c->moe_y, 0, sizeof(float) * (size_t)n * dim);
    for (e = 0; e < E; e++) {
        int ne = 0;
        for (t = 0; t < n; t++)
            for (j = 0; j < K; j++)
                if (c->moe_sel[(size_t)t * K + j] == e) {
                    c->moe_tok[ne] = t * K + j;
                    memcpy(c->moe_x + (size_t)ne * dim, c->xb + (size_t)t * dim, sizeof(float) * (size_t)dim);
                    ne++;
                }
        if (!ne) continue;
        swiglu_rows(c, pk, c->moe_x, ne, &L->we[3 * e], &L->we[3 * e + 1], &L->we[3 * e + 2]);
        for (i = 0; i < ne; i++) {
            float w = c->moe_w[c->moe_tok[i]], *y = c->moe_y + (size_t)(c->moe_tok[i] / K) * dim;
            const float *o = c->xb2 + (size_t)i * dim;
            for (d = 0; d < dim; d++) y[d] += w * o[d];
        }
    }
    for (i = 0; i < n * dim; i++) c->x[i] += c->moe_y[i];
}

/* ---- one chunk of n tokens at positions p0.. through all layers ----
 * lm: 0 no logits, 1 logits of the last token into out, 2 logits of every token (n, vocab). */
static void forward_chunk(rh_ctx *c, const int *ids, int n, int p0, float *out, int lm, int obs, int pk) {
    const rh_model *m = c->m;
    const rh_config *cf = &m->cfg;
    int dim = cf->dim, nh = cf->n_heads, nkv = cf->n_kv_heads, hd = cf->head_dim;
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
            rope_apply(q, nh, hd, rope_pairs(cf), c->rope + (size_t)t * half * 2);
            rope_apply(k, nkv, hd, rope_pairs(cf), c->rope + (size_t)t * half * 2);
            for (h = 0; h < nkv; h++) {
                int lh = l * nkv + h;
                unsigned char *kd, *vd;
                if (kv_windowed(c, lh)) { /* staged until the chunk's attention is done */
                    kd = c->kst + ((size_t)t * nkv + h) * hd * kvsz;
                    vd = c->vst + ((size_t)t * nkv + h) * hd * kvsz;
                } else {
                    kd = c->kcache + (c->kv_off[lh] + (size_t)(p0 + t)) * hd * kvsz;
                    vd = c->vcache + (c->kv_off[lh] + (size_t)(p0 + t)) * hd * kvsz;
                }
                k_store_row(c->kv_dtype, k + (size_t)h * hd, kd, hd);
                k_store_row(c->kv_dtype, v + (size_t)h * hd, vd, hd);
            }
        }
        A.c = c; A.layer = l; A.n = n; A.p0 = p0; A.obs = obs; A.pk = pk;
        A.n_qb = (n + c->qb - 1) / c->qb;
        pool_run(c->pool, att_task, &A, nkv * A.n_qb);
        /* the windowed heads keep the chunk's sinks and last kv_window rows */
        for (h = 0; c->n_windowed && h < nkv; h++) {
            int lh = l * nkv + h;
            if (!kv_windowed(c, lh)) continue;
            for (t = 0; t < n; t++)
                if (p0 + t < c->kv_sinks || p0 + t >= p0 + n - c->kv_window) {
                    size_t src = ((size_t)t * nkv + h) * hd * kvsz, dst = kv_row(c, lh, p0 + t) * hd * kvsz;
                    memcpy(c->kcache + dst, c->kst + src, (size_t)hd * kvsz);
                    memcpy(c->vcache + dst, c->vst + src, (size_t)hd * kvsz);
                }
        }
        matmul(c, pk, c->att, n, qd, 1, &L->wo, c->xb2, NULL, NULL, NULL, NULL);
        for (i = 0; i < n * dim; i++) c->x[i] += c->xb2[i];

        /* MLP block: hb, hb2 (n, hid) */
        for (t = 0; t < n; t++) rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm, dim, cf->norm_eps);
        if (L->we) {
            moe_mlp(c, L, n, pk);
            continue;
        }
        swiglu_rows(c, pk, c->xb, n, &L->wg, &L->wu, &L->wd);
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

/* ---- contexts: the KV cache, chunked prefill, the hooks (the public context API) ---- */

const char *const rh_dtype_names[] = {"f32", "f16", "bf16", NULL};
const char *const rh_mask_mode_names[] = {"uniform", "neg-inf", "zero", NULL};

void rh_ctx_params_default(rh_ctx_params *p) {
    if (!p) return;
    p->n_threads = 0;
    p->n_ctx = 0;
    p->kv_dtype = RH_F32;
    p->prefill_chunk = 0;
    p->reference = 0;
    p->kv_window = 0;
    p->kv_sinks = 0;
    p->kv_keep = NULL;
}

/* The KV policy of p on m for a context of n_ctx tokens: checked; per (layer, kv head) its
 * slots (n_ctx, or S + W for a windowed head: one whose query heads kv_keep does not flag,
 * where S + W < n_ctx) into slots (may be NULL), the heads kept full and the rows in all. */
static int kv_policy_plan(const rh_model *m, const rh_ctx_params *p, int n_ctx, int *slots, int *n_full, double *rows,
                          char *err, size_t errcap) {
    const rh_config *cf = &m->cfg;
    int nkv = cf->n_kv_heads, g = cf->n_heads / cf->n_kv_heads, lh, h;
    if (p->kv_window < 0) { set_err(err, errcap, "kv_window %d is negative", p->kv_window); return RH_EINVAL; }
    if (p->kv_sinks < 0) { set_err(err, errcap, "kv_sinks %d is negative", p->kv_sinks); return RH_EINVAL; }
    if (p->kv_window == 0 && (p->kv_sinks || p->kv_keep)) {
        set_err(err, errcap, "kv_%s without kv_window", p->kv_sinks ? "sinks" : "keep");
        return RH_EINVAL;
    }
    if (p->kv_window > RHW_MAX_CTX || p->kv_sinks > RHW_MAX_CTX) {
        set_err(err, errcap, "kv_window %d, kv_sinks %d: more than %d", p->kv_window, p->kv_sinks, RHW_MAX_CTX);
        return RH_ERANGE;
    }
    *n_full = 0;
    *rows = 0;
    for (lh = 0; lh < cf->n_layers * nkv; lh++) {
        int keep = p->kv_window == 0, n;
        for (h = 0; !keep && p->kv_keep && h < g; h++)
            if (p->kv_keep[(lh / nkv) * cf->n_heads + (lh % nkv) * g + h]) keep = 1;
        *n_full += keep;
        n = keep || p->kv_sinks + p->kv_window >= n_ctx ? n_ctx : p->kv_sinks + p->kv_window;
        if (slots) slots[lh] = n;
        *rows += n;
    }
    return RH_OK;
}

void rh_ctx_free(rh_ctx *c) {
    int i;
    if (!c) return;
    if (c->pool) pool_free(c->pool);
    if (c->scr) {
        for (i = 0; i < c->n_threads; i++) {
            rh_scratch *s = &c->scr[i];
            free(s->wpack); free(s->q); free(s->o); free(s->s); free(s->kf); free(s->vf); free(s->kp);
            free(s->mx); free(s->sum); free(s->best); free(s->bestpos); free(s->kg); free(s->vg);
        }
        free(c->scr);
    }
    free(c->kcache); free(c->vcache); free(c->kv_slots); free(c->kv_off); free(c->kst); free(c->vst);
    free(c->x); free(c->xb); free(c->xb2); free(c->q); free(c->k); free(c->v); free(c->att);
    free(c->hb); free(c->hb2); free(c->rope);
    free(c->moe_x); free(c->moe_y); free(c->moe_r); free(c->moe_w); free(c->moe_sel); free(c->moe_tok); free(c->mask); free(c->xpack); free(c->xpack16);
    free(c->ref_p);
    free(c->ids);
    free(c);
}

static void *xmalloc_floats(size_t n, int *ok) {
    void *p = malloc(n ? n * sizeof(float) : 1);
    if (!p) *ok = 0;
    return p;
}

/* What a context of p->n_ctx tokens needs, counted before anything is allocated (doubles: no
 * overflow in the count itself):
 *   KV cache  2 (K and V) x n_layers x n_kv_heads x n_ctx x head_dim x sizeof(kv_dtype)
 *   scratch   chunk x (3 dim + 2 n_heads head_dim + 2 n_kv_heads head_dim + 2 hidden + head_dim)
 *             + (chunk + MR) x kmax floats (+ (chunk + MR) x ceil(kmax / 2) words of bf16 pairs in
 *             RH_BF16DOT builds), and per thread the packing and attention tiles; the reference
 *             pass, chunk 1 of the first term and n_ctx doubles (its score row), no more; a
 *             mixture of experts, chunk x (2 dim + n_experts + 2 n_experts_used + 1) more
 *   weights   the model image (mmapped, so it is counted but not allocated here); in a mixture
 *             every expert counts, though a decode step reads n_experts_used of them: a prompt
 *             routes its tokens across the experts and the pages it read stay resident
 * rh_ctx_sizes_of returns the count (and the chunk, threads and n_ctx the context would have);
 * ctx_check_memory refuses what does not fit: RH_ERANGE when one allocation would overflow
 * size_t; RH_ENOMEM, with what is needed and what is available, when the sum exceeds the
 * physical memory (or RLIMIT_AS). */
int rh_ctx_sizes_of(const rh_model *m, const rh_ctx_params *p, rh_ctx_sizes *out, char *err, size_t errcap) {
    const rh_config *cf;
    rh_ctx_params d;
    double n_ctx, C, kv, scratch, per_thread, kmax, R, nt, rows;
    int g, rc, n_full, windowed;
    if (!m || !out) {
        set_err(err, errcap, "rh_ctx_sizes_of: %s is NULL", m ? "out" : "model");
        return RH_EINVAL;
    }
    if (!p) {
        rh_ctx_params_default(&d);
        p = &d;
    }
    if ((int)p->kv_dtype < 0 || (int)p->kv_dtype > 2) {
        set_err(err, errcap, "kv_dtype %d is not f32, f16 or bf16", (int)p->kv_dtype);
        return RH_EINVAL;
    }
    cf = &m->cfg;
    memset(out, 0, sizeof *out);
    n_ctx = p->n_ctx ? p->n_ctx : cf->max_ctx;
    C = p->prefill_chunk ? p->prefill_chunk : RH_CHUNK;
    kmax = cf->dim;
    nt = p->n_threads;
    g = cf->n_heads / cf->n_kv_heads;
    if (C > n_ctx) C = n_ctx;
    if (p->reference) C = 1;
    if (nt <= 0) nt = rh_n_cpus();
    if (cf->hidden_dim > kmax) kmax = cf->hidden_dim;
    if ((double)cf->n_heads * cf->head_dim > kmax) kmax = (double)cf->n_heads * cf->head_dim;
    R = (double)(RH_QROWS / g < 1 ? 1 : RH_QROWS / g) * g;
    if (n_ctx > RHW_MAX_CTX) n_ctx = RHW_MAX_CTX; /* rh_ctx_new refuses it; the count stays finite */
    rc = kv_policy_plan(m, p, (int)n_ctx, NULL, &n_full, &rows, err, errcap);
    if (rc != RH_OK) return rc;
    /* one of the two caches (K or V): the largest single allocation */
    kv = rows * cf->head_dim * (double)dtype_size(p->kv_dtype);
    out->kv_full_bytes = 2.0 * cf->n_layers * cf->n_kv_heads * n_ctx * cf->head_dim * (double)dtype_size(p->kv_dtype);
    out->kv_heads = cf->n_layers * cf->n_kv_heads;
    out->kv_heads_full = n_full;
    windowed = rows < (double)cf->n_layers * cf->n_kv_heads * n_ctx;
    if (kv >= (double)SIZE_MAX / 2) {
        set_err(err, errcap, "n_ctx %.0f: a KV cache of %.0f bytes overflows this platform's size_t", n_ctx, kv);
        return RH_ERANGE;
    }
    kv *= 2;
    scratch = 4.0 * C * (3.0 * cf->dim + 2.0 * cf->n_heads * cf->head_dim + 2.0 * cf->n_kv_heads * cf->head_dim +
                         2.0 * cf->hidden_dim + cf->head_dim);
    if (cf->rope_scaling == RH_ROPE_LONGROPE) scratch += 4.0 * n_ctx; /* the cached tokens (rh_ctx.ids) */
    if (cf->n_experts) scratch += 4.0 * C * (2.0 * cf->dim + cf->n_experts + 2.0 * cf->n_experts_used + 1.0);
    if (p->reference) {
        scratch += 8.0 * n_ctx;
    } else {
        scratch += 4.0 * (C + RH_MR) * kmax;
#if defined(RH_BF16DOT)
        scratch += 4.0 * (C + RH_MR) * ceil(kmax / 2);
#endif
        per_thread = 4.0 * ((double)RH_NR * kmax + 2 * R * cf->head_dim + R * RH_BK +
                            RH_BK * (cf->head_dim + (double)((cf->head_dim + RH_NR - 1) / RH_NR * RH_NR)) +
                            (double)RH_NR * cf->head_dim + 4 * R);
        /* windowed heads: the chunk's staged rows, and per thread a gathered K and V block */
        if (windowed) {
            scratch += 2.0 * C * cf->n_kv_heads * cf->head_dim * (double)dtype_size(p->kv_dtype);
            per_thread += 2.0 * RH_BK * cf->head_dim * (double)dtype_size(p->kv_dtype);
        }
        scratch += nt * per_thread;
    }
    out->n_ctx = (int)n_ctx;
    out->chunk = (int)C;
    out->n_threads = (int)nt;
    out->kv_bytes = kv;
    out->scratch_bytes = scratch;
    out->weight_bytes = (double)m->size;
    out->available_bytes = rh_memory_limit();
    return RH_OK;
}

/* The verdict on counted sizes: RH_ENOMEM, with the figures, when they exceed what is available. */
static int ctx_memory_verdict(const rh_ctx_sizes *z, char *err, size_t errcap) {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (z->available_bytes > 0 && z->kv_bytes + z->scratch_bytes + z->weight_bytes > z->available_bytes) {
        char pol[96] = "";
        if (z->kv_heads_full < z->kv_heads)
            snprintf(pol, sizeof pol, " (%d of %d KV heads full, the rest windowed)", z->kv_heads_full, z->kv_heads);
        set_err(err, errcap,
                "n_ctx %d: needs %.2f GiB for the KV cache of %d tokens%s (+ %.2f GiB scratch, %.2f GiB weights mmapped), "
                "%.2f GiB available",
                z->n_ctx, z->kv_bytes / gib, z->n_ctx, pol, z->scratch_bytes / gib, z->weight_bytes / gib,
                z->available_bytes / gib);
        return RH_ENOMEM;
    }
    return RH_OK;
}

static int ctx_check_memory(const rh_model *m, const rh_ctx_params *p, char *err, size_t errcap) {
    rh_ctx_sizes z;
    int rc = rh_ctx_sizes_of(m, p, &z, err, errcap);
    if (rc != RH_OK) return rc;
    return ctx_memory_verdict(&z, err, errcap);
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
    if (p->n_ctx < 0) { set_err(err, errcap, "n_ctx %d is negative", p->n_ctx); return RH_EINVAL; }
    /* beyond the format's limit (max_ctx of a .rhw is at most 2^24): a size error, not a typo */
    if (p->n_ctx > RHW_MAX_CTX) { set_err(err, errcap, "n_ctx %d exceeds the limit of %d tokens", p->n_ctx, RHW_MAX_CTX); return RH_ERANGE; }
    if ((int)p->kv_dtype < 0 || (int)p->kv_dtype > 2) { set_err(err, errcap, "kv_dtype %d is not f32, f16 or bf16", (int)p->kv_dtype); return RH_EINVAL; }
    if (p->prefill_chunk < 0 || p->prefill_chunk > 65536) { set_err(err, errcap, "prefill_chunk %d out of range 0..65536", p->prefill_chunk); return RH_EINVAL; }
    if (p->reference != 0 && p->reference != 1) { set_err(err, errcap, "reference %d is not 0 or 1", p->reference); return RH_EINVAL; }
    {
        /* Before allocating anything: refuse a context that cannot fit (see ctx_check_memory). */
        int rc = ctx_check_memory(m, p, err, errcap);
        if (rc != RH_OK) return rc;
    }
    c = (rh_ctx *)calloc(1, sizeof *c);
    if (!c) { set_err(err, errcap, "out of memory"); return RH_ENOMEM; }
    c->m = m;
    c->reference = p->reference;
    c->n_threads = p->reference ? 1 : p->n_threads;
    if (c->n_threads == 0) c->n_threads = rh_n_cpus();
    c->n_ctx = p->n_ctx ? p->n_ctx : cf->max_ctx;
    c->kv_dtype = p->kv_dtype;
    c->chunk = p->reference ? 1 : p->prefill_chunk ? p->prefill_chunk : RH_CHUNK;
    if (c->chunk > c->n_ctx) c->chunk = c->n_ctx;
    g = cf->n_heads / cf->n_kv_heads;
    c->qb = RH_QROWS / g < 1 ? 1 : RH_QROWS / g;
    R = c->qb * g;
    kmax = cf->dim;
    if (cf->hidden_dim > kmax) kmax = cf->hidden_dim;
    if (cf->n_heads * cf->head_dim > kmax) kmax = cf->n_heads * cf->head_dim;

    /* the KV cache: per (layer, kv head) its slots (the policy's), one allocation for K, one for V */
    c->kv_slots = (int *)malloc(sizeof(int) * (size_t)cf->n_layers * cf->n_kv_heads);
    c->kv_off = (size_t *)malloc(sizeof(size_t) * (size_t)cf->n_layers * cf->n_kv_heads);
    if (!c->kv_slots || !c->kv_off) {
        set_err(err, errcap, "out of memory allocating a context of %d tokens", c->n_ctx);
        rh_ctx_free(c);
        return RH_ENOMEM;
    }
    {
        double rows;
        int n_full, lh;
        if ((i = kv_policy_plan(m, p, c->n_ctx, c->kv_slots, &n_full, &rows, err, errcap)) != RH_OK) {
            rh_ctx_free(c);
            return i;
        }
        c->kv_window = p->kv_window;
        c->kv_sinks = p->kv_sinks;
        for (kv_elems = 0, lh = 0; lh < cf->n_layers * cf->n_kv_heads; lh++) {
            c->kv_off[lh] = kv_elems;
            kv_elems += (size_t)c->kv_slots[lh];
            c->n_windowed += c->kv_slots[lh] < c->n_ctx;
        }
    }
    kv_elems *= (size_t)cf->head_dim;
    if (kv_elems > ((size_t)1 << 40)) {
        set_err(err, errcap, "KV cache of %d tokens is too large", c->n_ctx);
        rh_ctx_free(c);
        return RH_ENOMEM;
    }
    c->kv_bytes = 2.0 * (double)kv_elems * (double)dtype_size(c->kv_dtype);
    c->kcache = (unsigned char *)malloc(kv_elems * dtype_size(c->kv_dtype));
    c->vcache = (unsigned char *)malloc(kv_elems * dtype_size(c->kv_dtype));
    if (!c->kcache || !c->vcache) ok = 0;
    C = (size_t)c->chunk;
    if (c->n_windowed && !c->reference) {
        c->kst = (unsigned char *)malloc(C * cf->n_kv_heads * cf->head_dim * dtype_size(c->kv_dtype));
        c->vst = (unsigned char *)malloc(C * cf->n_kv_heads * cf->head_dim * dtype_size(c->kv_dtype));
        if (!c->kst || !c->vst) ok = 0;
    }
    c->x = (float *)xmalloc_floats(C * cf->dim, &ok);
    c->xb = (float *)xmalloc_floats(C * cf->dim, &ok);
    c->xb2 = (float *)xmalloc_floats(C * cf->dim, &ok);
    c->q = (float *)xmalloc_floats(C * cf->n_heads * cf->head_dim, &ok);
    c->att = (float *)xmalloc_floats(C * cf->n_heads * cf->head_dim, &ok);
    c->k = (float *)xmalloc_floats(C * cf->n_kv_heads * cf->head_dim, &ok);
    c->v = (float *)xmalloc_floats(C * cf->n_kv_heads * cf->head_dim, &ok);
    c->hb = (float *)xmalloc_floats(C * cf->hidden_dim, &ok);
    c->hb2 = (float *)xmalloc_floats(C * cf->hidden_dim, &ok);
    if (cf->n_experts) {
        c->moe_x = (float *)xmalloc_floats(C * cf->dim, &ok);
        c->moe_y = (float *)xmalloc_floats(C * cf->dim, &ok);
        c->moe_r = (float *)xmalloc_floats(C * cf->n_experts, &ok);
        c->moe_w = (float *)xmalloc_floats(C * cf->n_experts_used, &ok);
        c->moe_sel = (int *)malloc(sizeof(int) * C * (size_t)cf->n_experts_used);
        c->moe_tok = (int *)malloc(sizeof(int) * C);
        if (!c->moe_sel || !c->moe_tok) ok = 0;
    }
    c->rope = (float *)xmalloc_floats(C * cf->head_dim, &ok);
    if (cf->rope_scaling == RH_ROPE_LONGROPE) {
        c->ids = (int *)malloc(sizeof(int) * (size_t)c->n_ctx);
        if (!c->ids) ok = 0;
    }
    if (c->reference) {
        /* the plain pass uses one row of the buffers above and its score row: no packed X, no
         * attention tiles, no threads */
        c->ref_p = (double *)malloc(sizeof(double) * (size_t)c->n_ctx);
        if (!c->ref_p) ok = 0;
    } else {
        c->xpack = (float *)xmalloc_floats((C + RH_MR) * (size_t)kmax, &ok);
#if defined(RH_BF16DOT)
        /* ceil(m / RH_MR) tiles of ceil(k / 2) x RH_MR words, m <= chunk, k <= kmax; a bf16-pair
         * panel (ceil(k / 2) x RH_NR words) fits in wpack's k x RH_NR floats */
        c->xpack16 = (uint32_t *)xmalloc_floats((C + RH_MR) * (size_t)((kmax + 1) / 2), &ok);
#endif
        c->scr = (rh_scratch *)calloc((size_t)c->n_threads, sizeof(rh_scratch));
        if (!c->scr) ok = 0;
        for (i = 0; ok && i < c->n_threads; i++) {
            rh_scratch *s = &c->scr[i];
            s->wpack = (float *)xmalloc_floats((size_t)RH_NR * kmax, &ok);
            s->q = (float *)xmalloc_floats((size_t)R * cf->head_dim, &ok);
            s->o = (float *)xmalloc_floats((size_t)R * cf->head_dim, &ok);
            s->s = (float *)xmalloc_floats((size_t)R * RH_BK, &ok);
            s->kf = (float *)xmalloc_floats((size_t)RH_BK * cf->head_dim, &ok);
            s->kp = (float *)xmalloc_floats((size_t)RH_NR * cf->head_dim, &ok);
            s->vf = (float *)xmalloc_floats((size_t)RH_BK * ((cf->head_dim + RH_NR - 1) / RH_NR * RH_NR), &ok);
            s->mx = (float *)xmalloc_floats((size_t)R, &ok);
            s->sum = (float *)xmalloc_floats((size_t)R, &ok);
            s->best = (float *)xmalloc_floats((size_t)R, &ok);
            s->bestpos = (int *)malloc(sizeof(int) * (size_t)R);
            if (!s->bestpos) ok = 0;
            if (c->n_windowed) {
                s->kg = (unsigned char *)malloc((size_t)RH_BK * cf->head_dim * dtype_size(c->kv_dtype));
                s->vg = (unsigned char *)malloc((size_t)RH_BK * cf->head_dim * dtype_size(c->kv_dtype));
                if (!s->kg || !s->vg) ok = 0;
            }
        }
    }
    if (!ok) {
        set_err(err, errcap, "out of memory allocating a context of %d tokens", c->n_ctx);
        rh_ctx_free(c);
        return RH_ENOMEM;
    }
    if (!c->reference) c->pool = pool_new(c->n_threads);
    if (!c->reference && !c->pool) {
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

int rh_kv_rewind_floor(int hi, int kv_sinks, int kv_window) {
    /* a windowed head holds the sinks and positions hi - W .. hi - 1 (the slot of hi - 1 is
     * rewritten by a rewind to it, and the W - 1 before it are all its token sees) */
    return hi <= kv_sinks + kv_window ? 0 : hi - 1;
}
int rh_ctx_rewind_floor(const rh_ctx *c) {
    return c && c->n_windowed ? rh_kv_rewind_floor(c->kv_hi, c->kv_sinks, c->kv_window) : 0;
}

int rh_ctx_rewind(rh_ctx *c, int n_past) {
    int floor;
    if (!c) return RH_EINVAL;
    if (n_past < 0 || n_past > c->n_past) {
        set_err(c->err, sizeof c->err, "rh_ctx_rewind: n_past %d out of range 0..%d", n_past, c->n_past);
        return RH_ERANGE;
    }
    floor = rh_ctx_rewind_floor(c);
    if (n_past > 0 && n_past < floor) {
        set_err(c->err, sizeof c->err,
                "rh_ctx_rewind: n_past %d is below %d: the windowed KV heads (sinks %d, window %d) no longer hold "
                "the positions it needs",
                n_past, floor, c->kv_sinks, c->kv_window);
        return RH_ERANGE;
    }
    c->n_past = n_past;
    if (n_past == 0) c->kv_hi = 0;
    return RH_OK;
}

double rh_ctx_kv_bytes(const rh_ctx *c) { return c ? c->kv_bytes : 0.0; }
int rh_ctx_kv_full_heads(const rh_ctx *c) {
    int lh, n = 0;
    if (!c) return 0;
    for (lh = 0; lh < c->m->cfg.n_layers * c->m->cfg.n_kv_heads; lh++) n += !kv_windowed(c, lh);
    return n;
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

static int eval_tokens(rh_ctx *c, const int *ids, int n, float *logits, int logits_all);
int rh_eval(rh_ctx *c, const int *ids, int n, float *logits, int logits_all) {
    const rh_config *cf;
    int i;
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
    if (cf->rope_scaling == RH_ROPE_LONGROPE) {
        /* longrope: the factor list of a sequence of n_past + n tokens (HF's longrope_frequency_update:
         * long past original_max_position_embeddings).  The cache holds what one prefill of the
         * sequence would: when the list changes (a generation crosses the original context, HF's
         * prepare_inputs_for_generation then drops its cache and runs the whole sequence again),
         * the cached positions are recomputed with the new list first, without observing; the
         * mask in effect applies to them as to any rh_eval. */
        int want_long = c->n_past + n > cf->rope_original_max_ctx, past = c->n_past, obs = c->observing;
        memcpy(c->ids + c->n_past, ids, sizeof(int) * (size_t)n);
        if (want_long != c->rope_long) {
            c->rope_long = want_long;
            if (past > 0) {
                int rc;
                c->n_past = 0;
                c->observing = 0;
                rc = eval_tokens(c, c->ids, past, NULL, 0);
                c->observing = obs;
                if (rc != RH_OK) return rc;
            }
        }
    }
    return eval_tokens(c, ids, n, logits, logits_all);
}

/* rh_eval after its checks: n tokens at positions n_past.. through the selected pass. */
static int eval_tokens(rh_ctx *c, const int *ids, int n, float *logits, int logits_all) {
    const rh_config *cf = &c->m->cfg;
    int i, done;
    if (c->reference) {
        /* one token at a time; a call of n > 1 tokens is a prefill (bf16x, see reference_forward) */
        int bf16x = 0;
#if defined(RH_BF16DOT)
        bf16x = n > 1;
#endif
        for (i = 0; i < n; i++) {
            float *out = !logits ? NULL : logits_all ? logits + (size_t)i * cf->vocab_size : i == n - 1 ? logits : NULL;
            reference_forward(c, ids[i], c->n_past, out, i == n - 1 && c->observing, bf16x);
            c->n_past++;
            if (c->n_past > c->kv_hi) c->kv_hi = c->n_past;
        }
        return RH_OK;
    }
    for (done = 0; done < n; done += c->chunk) {
        int nc = n - done < c->chunk ? n - done : c->chunk, last = done + nc == n;
        int lm = !logits ? 0 : logits_all ? 2 : last ? 1 : 0;
        float *out = logits_all && logits ? logits + (size_t)done * cf->vocab_size : logits;
        forward_chunk(c, ids + done, nc, c->n_past, out, lm, last && c->observing, n > 1);
        c->n_past += nc;
        if (c->n_past > c->kv_hi) c->kv_hi = c->n_past;
    }
    return RH_OK;
}

/* =============================================================================================
 * 3. THE TOKENIZER: BPE over merges, SentencePiece-style (kind 1) and byte-level (kind 2)
 *
 * It defines struct rh_tokenizer (the typedef is in section 2), tok_load and tok_free (for the
 * loader, section 4) and the public rh_tokenize, rh_detokenize, rh_token_bytes, rh_n_tokens and
 * rh_decoder_* functions.  What it may call: the Unicode tables (section 6) and the utilities
 * at the top of the file.
 *
 * Gives the ids of the reference libraries: sentencepiece for tokenizer.model files, Hugging
 * Face tokenizers 0.22 for tokenizer.json files (test/test_tokenizer.c; test/tok/README).
 *
 * The section is parsed and checked once (tok_load) into arrays that encode and decode use:
 * a piece -> id hash, a (left, right) -> (rank, result) hash, the bytes every id decodes to,
 * the added tokens (by first byte, longest first).
 *
 * Encoding pipelines, chosen by the section's flags (bits 7-10 are additions to the spec, see
 * TOK_F_HF below):
 *   SentencePiece (kind 1, no TOK_F_HF), as its normalizer and bpe_model do: strip leading
 *     spaces, collapse runs, ' ' -> U+2581, one dummy prefix, strip trailing U+2581 (literal
 *     ones too); invalid UTF-8 bytes -> U+FFFD; then split out user_defined pieces; then BPE:
 *     merge the adjacent pair whose concatenation is the best-scoring normal/user/unused piece
 *     (n_merges == 0) or has the lowest merge rank; ties -> leftmost; unused pieces are split
 *     back into what made them; what is not a piece becomes <0xNN> bytes (byte_fallback) or
 *     one unk per run.
 *   Hugging Face (TOK_F_HF), as TokenizerImpl::encode does: split added tokens out of the raw
 *     text (lstrip/rstrip take the whitespace beside them; those with normalized=true are
 *     matched after the normalizer); each segment is normalized (NFC), gets its prefix (per
 *     segment: Prepend normalizer, Metaspace prepend_scheme always/first, ByteLevel
 *     add_prefix_space), is pre-split (Metaspace split at U+2581, or the GPT-2 / Llama-3 /
 *     Qwen2 regex, written by hand below) and each piece is BPE'd by merge rank
 *     (ignore_merges: a piece that is a token is kept whole; byte_fallback/unk per char first).
 * BPE keeps the symbols of a word in a linked list and the candidate pairs in a binary heap,
 * so a word of n symbols costs O(n log n), never O(n^2); long texts keep a word cache.
 * Unicode data (tools/gen_unicode.py): letter/number classes as HF's Oniguruma has them
 * (Unicode 16.0), NFC as HF's normalizer has it (Unicode 9.0), White_Space for \s.
 * Invalid UTF-8 in the HF pipelines (undefined there: Rust and JS strings cannot hold it): each
 * bad byte is a one-byte symbol; kind 1 gives its <0xNN> token, kind 2 treats it as punctuation
 * and maps the byte; so decode(encode(x)) == x for any bytes.
 * Decoding gives exact bytes: byte tokens are their byte (HF's ByteFallback decoder would put
 * U+FFFD for invalid sequences), U+2581 is ' ', control/added tokens are their text (dropped
 * with RH_DETOK_SKIP_SPECIAL).
 */

/* Flags of the tokenizer section (see retrieval_heads.h). */
#define TOK_F_DUMMY_PREFIX 0x1u
#define TOK_F_REMOVE_WS 0x2u
#define TOK_F_BYTE_FALLBACK 0x4u
#define TOK_F_SPLIT_DIGITS 0x8u /* SentencePiece applies it in training only; encode ignores it */
#define TOK_F_NFC 0x10u
#define TOK_F_IGNORE_MERGES 0x20u
#define TOK_F_METASPACE_SPLIT 0x40u
/* Additions (reserved bits of version 1, written by weights/rhw_tok.py):
 * bit 7  HF pipeline: added tokens are split from the raw text first and the dummy prefix is
 *        given to every text segment between them (HF Prepend normalizer, Metaspace, ByteLevel
 *        add_prefix_space); without it the SentencePiece pipeline above.
 * bit 8  no prefix for a segment that already starts with a space (HF Metaspace, ByteLevel).
 * bit 9  prefix only for the segment at byte 0 of the text (Metaspace prepend_scheme "first").
 * bit 10 fuse_unk: consecutive unknown symbols give one unk id (SentencePiece always; HF BPE
 *        fuse_unk). */
#define TOK_F_HF 0x80u
#define TOK_F_PREFIX_UNLESS_SPACE 0x100u
#define TOK_F_PREFIX_FIRST 0x200u
#define TOK_F_FUSE_UNK 0x400u
#define TOK_F_ALL 0x7FFu

/* Token types and per-token flags of the section. */
enum { TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3, TOK_T_USER = 4, TOK_T_UNUSED = 5,
       TOK_T_BYTE = 6 };
#define TOK_TF_ADDED 0x1u
#define TOK_TF_LSTRIP 0x2u
#define TOK_TF_RSTRIP 0x4u
#define TOK_TF_SINGLE_WORD 0x8u
#define TOK_TF_NORMALIZED 0x10u
#define TOK_TF_SPECIAL 0x20u

/* Pre-split regexes of kind 2. */
enum { TOK_PRE_GPT2 = 1, TOK_PRE_LLAMA3 = 2, TOK_PRE_QWEN2 = 3 };

#define TOK_MAX_TOKENS (1 << 24)
#define TOK_MAX_PIECE 65536u

/* One slot of the merge hash: the whole entry in 16 bytes, so a lookup touches one line. */
typedef struct {
    int32_t left, right, rank, result;
} tok_mslot;

struct rh_tokenizer {
    int kind, pretok, unk_id, n_tokens, n_merges;
    unsigned flags;
    char *pool;            /* every piece, then every decoded form */
    uint32_t *poff, *plen; /* piece of id: pool + poff[id], plen[id] bytes */
    uint32_t *doff, *dlen; /* bytes id decodes to */
    float *score;
    unsigned char *type, *tfl;
    int32_t *vhash;        /* piece -> id + 1 (0 = empty), open addressing */
    uint32_t vmask;
    tok_mslot *mhash;      /* (left, right) -> rank, result; open addressing, left -1 = empty */
    uint32_t mmask;
    int byte_id[256];      /* kind 1: id of <0xNN> (-1 absent); kind 2: id of the byte's char */
    int *added;            /* ids of added tokens by first byte, longest piece first */
    int n_added;
    int added_at[257];     /* added[added_at[b] .. added_at[b+1]) start with byte b */
    uint32_t max_piece;    /* longest piece in bytes */
    int ws_split;          /* kind 1: no piece has U+2581 after another char (see tok_encode_words) */
};

static uint32_t tok_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t tok_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static uint32_t tok_hash2(uint32_t a, uint32_t b)
{
    uint64_t x = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) ^ (uint32_t)x;
}

/* id of the piece s[0..n) or -1 */
static int tok_lookup(const rh_tokenizer *t, const char *s, size_t n)
{
    uint32_t h = tok_hash(s, n) & t->vmask;
    for (;;) {
        int32_t v = t->vhash[h];
        if (!v) return -1;
        if (t->plen[v - 1] == n && memcmp(t->pool + t->poff[v - 1], s, n) == 0) return v - 1;
        h = (h + 1) & t->vmask;
    }
}

/* the merge of the pair (a, b), or NULL */
static const tok_mslot *tok_merge_find(const rh_tokenizer *t, int a, int b)
{
    uint32_t h;
    if (!t->mhash) return NULL;
    h = tok_hash2((uint32_t)a, (uint32_t)b) & t->mmask;
    for (;;) {
        const tok_mslot *e = &t->mhash[h];
        if (e->left < 0) return NULL;
        if (e->left == a && e->right == b) return e;
        h = (h + 1) & t->mmask;
    }
}

/* ---- UTF-8 and Unicode classes ---- */

/* The Unicode data (section 6, generated): letter/number class, canonical combining class,
 * "may change under NFC", full canonical decomposition, primary composition. */
static int uni_class(uint32_t cp);                               /* 1 letter, 2 number, else 0 */
static int uni_ccc(uint32_t cp);                                 /* 0 for none */
static int uni_nfc_maybe(uint32_t cp);                           /* 1: may change under NFC */
static int uni_decomp(uint32_t cp, const uint32_t **seq);        /* length, 0 for none */
static uint32_t uni_compose(uint32_t a, uint32_t b);             /* 0 for none */

/* Decode one UTF-8 character at s[i] (i < n).  Returns the code point and sets *len; an
 * invalid or truncated sequence (overlong, surrogate, > U+10FFFF) gives -1 with *len = 1. */
static int32_t tok_utf8(const unsigned char *s, size_t n, size_t i, int *len)
{
    unsigned c = s[i];
    uint32_t cp;
    int k, j;
    if (c < 0x80) { *len = 1; return (int32_t)c; }
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else { *len = 1; return -1; }
    if (n - i < (size_t)k + 1) { *len = 1; return -1; }
    for (j = 1; j <= k; j++) {
        unsigned d = s[i + (size_t)j];
        if ((d & 0xC0) != 0x80) { *len = 1; return -1; }
        cp = cp << 6 | (d & 0x3F);
    }
    if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (k == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *len = 1;
        return -1;
    }
    *len = k + 1;
    return (int32_t)cp;
}

static int tok_put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int tok_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    int len;
    while (i < n) {
        if (tok_utf8(s, n, i, &len) < 0) return 0;
        i += (size_t)len;
    }
    return 1;
}


enum { TOK_C_OTHER = 0, TOK_C_L = 1, TOK_C_N = 2, TOK_C_WS = 3 };

/* \s of the pre-split regexes: the White_Space property (what Oniguruma's \s matches in UTF-8
 * mode and Rust's char::is_whitespace tests). */
static int tok_is_ws(int32_t cp)
{
    if (cp < 0x80) return cp == ' ' || (cp >= 9 && cp <= 13);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Class of a code point for the regexes: \p{L}, \p{N}, \s or anything else (invalid bytes,
 * cp < 0, count as anything else). */
static int tok_class(int32_t cp)
{
    int r;
    if (cp < 0) return TOK_C_OTHER;
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return TOK_C_L;
        if (cp >= '0' && cp <= '9') return TOK_C_N;
        return tok_is_ws(cp) ? TOK_C_WS : TOK_C_OTHER;
    }
    if (tok_is_ws(cp)) return TOK_C_WS;
    r = uni_class((uint32_t)cp);
    return r == 1 ? TOK_C_L : r == 2 ? TOK_C_N : TOK_C_OTHER;
}

/* ---- NFC (canonical decomposition, canonical ordering, canonical composition) ---- */

#define TOK_HANGUL_S 0xAC00u
#define TOK_HANGUL_L 0x1100u
#define TOK_HANGUL_V 0x1161u
#define TOK_HANGUL_T 0x11A7u
#define TOK_HANGUL_NV 21u
#define TOK_HANGUL_NT 28u
#define TOK_HANGUL_NS 11172u
#define TOK_RAWBYTE 0x200000u /* an invalid input byte b is carried as TOK_RAWBYTE + b */

static int tok_ccc(uint32_t cp)
{
    if (cp < 0x300 || cp >= TOK_RAWBYTE) return 0;
    return uni_ccc(cp);
}

static uint32_t tok_compose(uint32_t a, uint32_t b)
{
    if (a >= TOK_HANGUL_L && a < TOK_HANGUL_L + 19 && b >= TOK_HANGUL_V &&
        b < TOK_HANGUL_V + TOK_HANGUL_NV)
        return TOK_HANGUL_S + ((a - TOK_HANGUL_L) * TOK_HANGUL_NV + (b - TOK_HANGUL_V)) *
                                  TOK_HANGUL_NT;
    if (a >= TOK_HANGUL_S && a < TOK_HANGUL_S + TOK_HANGUL_NS &&
        (a - TOK_HANGUL_S) % TOK_HANGUL_NT == 0 && b > TOK_HANGUL_T &&
        b < TOK_HANGUL_T + TOK_HANGUL_NT)
        return a + (b - TOK_HANGUL_T);
    return uni_compose(a, b);
}


/* Could this text change under NFC?  No when it holds none of the code points of the
 * quick-check table (so ASCII and most text skip the work). */
static int tok_nfc_needed(const unsigned char *s, size_t n)
{
    size_t i = 0;
    int len;
    while (i < n) {
        int32_t cp;
        if (s[i] < 0xCC) { i++; continue; } /* below U+0300 (and continuation bytes) */
        cp = tok_utf8(s, n, i, &len);
        i += (size_t)len;
        if (cp >= 0x300 &&
            uni_nfc_maybe((uint32_t)cp))
            return 1;
    }
    return 0;
}

/* Growable buffers of the encoder's workspace. */
static int tok_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 64;
    void *q;
    if (need <= *cap) return 0;
    while (c < need) {
        if (c > ((size_t)-1) / 4 / elem) return -1;
        c *= 2;
    }
    q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* NFC of s[0..n) into *out (malloc'd growable, *cap), length in *olen.  Invalid bytes pass
 * through unchanged as starters that compose with nothing. */
static int tok_nfc(const unsigned char *s, size_t n, char **out, size_t *cap, size_t *olen,
                   uint32_t **cps, size_t *cps_cap)
{
    size_t i = 0, m = 0, k, w;
    int len;
    uint32_t *d;
    /* decompose: at most 4 code points per input byte is generous (max expansion is 4 code
     * points for 2+ bytes) */
    if (tok_grow((void **)cps, cps_cap, n * 2 + 8, sizeof(uint32_t))) return -1;
    d = *cps;
    while (i < n) {
        int32_t cp = tok_utf8(s, n, i, &len);
        uint32_t c = cp < 0 ? TOK_RAWBYTE + s[i] : (uint32_t)cp;
        const uint32_t *seq = NULL;
        int r;
        i += (size_t)len;
        if (m + 4 > *cps_cap) {
            if (tok_grow((void **)cps, cps_cap, m + 8, sizeof(uint32_t))) return -1;
            d = *cps;
        }
        if (c >= TOK_HANGUL_S && c < TOK_HANGUL_S + TOK_HANGUL_NS) {
            uint32_t si = c - TOK_HANGUL_S;
            d[m++] = TOK_HANGUL_L + si / (TOK_HANGUL_NV * TOK_HANGUL_NT);
            d[m++] = TOK_HANGUL_V + (si % (TOK_HANGUL_NV * TOK_HANGUL_NT)) / TOK_HANGUL_NT;
            if (si % TOK_HANGUL_NT) d[m++] = TOK_HANGUL_T + si % TOK_HANGUL_NT;
            continue;
        }
        r = c >= 0xC0 && c < TOK_RAWBYTE ? uni_decomp(c, &seq) : 0;
        if (r > 0) {
            int j;
            for (j = 0; j < r; j++) d[m++] = seq[j];
        } else {
            d[m++] = c;
        }
    }
    /* canonical ordering: stable insertion sort of each run of non-starters by ccc */
    for (k = 1; k < m; k++) {
        int ck = tok_ccc(d[k]);
        size_t j = k;
        uint32_t v = d[k];
        if (!ck) continue;
        while (j > 0) {
            int cj = tok_ccc(d[j - 1]);
            if (cj <= ck) break;
            d[j] = d[j - 1];
            j--;
        }
        d[j] = v;
    }
    /* canonical composition */
    if (m) {
        size_t starter = 0;
        int last = tok_ccc(d[0]) ? 256 : 0;
        w = 1;
        for (k = 1; k < m; k++) {
            uint32_t c = d[k];
            int cc = tok_ccc(c);
            uint32_t comp = d[starter] < TOK_RAWBYTE && c < TOK_RAWBYTE ? tok_compose(d[starter], c) : 0;
            if (comp && (last < cc || last == 0)) {
                d[starter] = comp;
                continue;
            }
            if (cc == 0) starter = w;
            last = cc;
            d[w++] = c;
        }
        m = w;
    }
    if (tok_grow((void **)out, cap, m * 4 + 1, 1)) return -1;
    for (k = 0, w = 0; k < m; k++) {
        if (d[k] >= TOK_RAWBYTE) (*out)[w++] = (char)(d[k] - TOK_RAWBYTE);
        else w += (size_t)tok_put_utf8(*out + w, d[k]);
    }
    *olen = w;
    return 0;
}

/* ---- loading and validating the section ---- */

/* GPT-2's byte-to-unicode alphabet: printable Latin-1 bytes stand for themselves, the other 68
 * bytes are numbered in order from U+0100. */
static uint32_t tok_byte_char(unsigned b)
{
    unsigned i, k = 0;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    for (i = 0; i < b; i++)
        if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) k++;
    return 256 + k;
}

/* Inverse of tok_byte_char: the byte, or -1 for a code point outside the alphabet. */
static int tok_char_byte(int32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 256 && cp < 256 + 68) {
        unsigned i, k = 0;
        for (i = 0; i < 256; i++)
            if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) {
                if (k == (unsigned)(cp - 256)) return (int)i;
                k++;
            }
    }
    return -1;
}

static int tok_err(char *err, size_t errcap, const char *fname, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (!err || !errcap) return RH_EFORMAT;
    k = snprintf(err, errcap, "%s: tokenizer section: ", fname ? fname : "(memory)");
    if (k < 0 || (size_t)k >= errcap) return RH_EFORMAT;
    va_start(ap, fmt);
    vsnprintf(err + k, errcap - (size_t)k, fmt, ap);
    va_end(ap);
    return RH_EFORMAT;
}

static void tok_free(rh_tokenizer *t)
{
    if (!t) return;
    free(t->pool);
    free(t->poff);
    free(t->plen);
    free(t->doff);
    free(t->dlen);
    free(t->score);
    free(t->type);
    free(t->tfl);
    free(t->vhash);
    free(t->mhash);
    free(t->added);
    free(t);
}

/* Parse <0xHH> (upper-case hex, as SentencePiece writes byte pieces); -1 if not that form. */
static int tok_parse_byte_piece(const char *p, size_t n)
{
    int v = 0, i;
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    for (i = 3; i < 5; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static uint32_t tok_pow2_above(uint64_t n)
{
    uint32_t c = 16;
    while ((uint64_t)c < n * 2) c <<= 1;
    return c;
}

static int tok_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int tok_load(rh_tokenizer **out, const unsigned char *sec, size_t n, int vocab_size,
                    const char *fname, char *err, size_t errcap)
{
    rh_tokenizer *t;
    uint32_t kind, flags, pretok, n_tokens, n_merges, pattern_len, i;
    int32_t unk;
    size_t pos, total = 0, dpos;
    int rc = RH_ENOMEM;
    *out = NULL;
    if (!sec || n < 28) return tok_err(err, errcap, fname, "truncated: %lu bytes, the header needs 28", (unsigned long)n);
    kind = tok_rd32(sec);
    flags = tok_rd32(sec + 4);
    pretok = tok_rd32(sec + 8);
    unk = (int32_t)tok_rd32(sec + 12);
    n_tokens = tok_rd32(sec + 16);
    n_merges = tok_rd32(sec + 20);
    pattern_len = tok_rd32(sec + 24);
    if (kind != 1 && kind != 2) return tok_err(err, errcap, fname, "unknown kind %lu (1 SentencePiece BPE, 2 byte-level BPE)", (unsigned long)kind);
    if (flags & ~TOK_F_ALL) return tok_err(err, errcap, fname, "unknown flag bits 0x%lX", (unsigned long)(flags & ~TOK_F_ALL));
    if (kind == 1 && pretok != 0) return tok_err(err, errcap, fname, "pretokenizer %lu given for kind 1 (must be 0)", (unsigned long)pretok);
    if (kind == 2 && (pretok < 1 || pretok > 3)) return tok_err(err, errcap, fname, "unknown pretokenizer %lu (1 GPT-2, 2 Llama-3, 3 Qwen2)", (unsigned long)pretok);
    if (kind == 2 && (flags & (TOK_F_REMOVE_WS | TOK_F_BYTE_FALLBACK | TOK_F_SPLIT_DIGITS | TOK_F_METASPACE_SPLIT)))
        return tok_err(err, errcap, fname, "flags 0x%lX are for kind 1 only", (unsigned long)flags);
    if (kind == 2 && !(flags & TOK_F_HF) && (flags & TOK_F_DUMMY_PREFIX))
        return tok_err(err, errcap, fname, "kind 2 add_prefix_space needs flag bit 7 (per segment)");
    if (!(flags & TOK_F_HF) && (flags & (TOK_F_PREFIX_UNLESS_SPACE | TOK_F_PREFIX_FIRST)))
        return tok_err(err, errcap, fname, "prefix flags bits 8/9 need bit 7 (Hugging Face pipeline)");
    if ((flags & TOK_F_HF) && (flags & TOK_F_REMOVE_WS))
        return tok_err(err, errcap, fname, "remove_extra_whitespaces is a SentencePiece rule (not with bit 7)");
    if (n_tokens < 1 || n_tokens > TOK_MAX_TOKENS) return tok_err(err, errcap, fname, "n_tokens %lu out of range 1..%d", (unsigned long)n_tokens, TOK_MAX_TOKENS);
    if (vocab_size > 0 && n_tokens > (uint32_t)vocab_size) return tok_err(err, errcap, fname, "n_tokens %lu exceeds vocab_size %d", (unsigned long)n_tokens, vocab_size);
    if (unk < -1 || unk >= (int32_t)n_tokens) return tok_err(err, errcap, fname, "unk_id %ld out of range", (long)unk);
    if (pattern_len > n - 28) return tok_err(err, errcap, fname, "pattern length %lu runs past the end (%lu bytes)", (unsigned long)pattern_len, (unsigned long)n);
    pos = 28 + (size_t)pattern_len;
    /* every token record takes at least 11 bytes: refuse before allocating for them */
    if ((uint64_t)n_tokens * 11 > (uint64_t)(n - pos))
        return tok_err(err, errcap, fname, "%lu tokens cannot fit in the %lu bytes left", (unsigned long)n_tokens, (unsigned long)(n - pos));

    t = (rh_tokenizer *)calloc(1, sizeof *t);
    if (!t) goto oom;
    t->kind = (int)kind;
    t->flags = flags;
    t->pretok = (int)pretok;
    t->unk_id = (int)unk;
    t->n_tokens = (int)n_tokens;
    t->n_merges = (int)n_merges;
    t->poff = (uint32_t *)malloc(n_tokens * sizeof(uint32_t));
    t->plen = (uint32_t *)malloc(n_tokens * sizeof(uint32_t));
    t->doff = (uint32_t *)malloc(n_tokens * sizeof(uint32_t));
    t->dlen = (uint32_t *)malloc(n_tokens * sizeof(uint32_t));
    t->score = (float *)malloc(n_tokens * sizeof(float));
    t->type = (unsigned char *)malloc(n_tokens);
    t->tfl = (unsigned char *)malloc(n_tokens);
    if (!t->poff || !t->plen || !t->doff || !t->dlen || !t->score || !t->type || !t->tfl) goto oom;
    /* pass 1: walk the token records and check them; size the pool */
    for (i = 0; i < n_tokens; i++) {
        uint32_t len;
        union { uint32_t u; float f; } sc;
        unsigned char ty, fl;
        if (n - pos < 4) { rc = tok_err(err, errcap, fname, "truncated in token %lu of %lu", (unsigned long)i, (unsigned long)n_tokens); goto fail; }
        len = tok_rd32(sec + pos);
        pos += 4;
        if (len < 1 || len > TOK_MAX_PIECE) { rc = tok_err(err, errcap, fname, "token %lu: piece length %lu out of range 1..%u", (unsigned long)i, (unsigned long)len, TOK_MAX_PIECE); goto fail; }
        if (n - pos < (size_t)len + 6) { rc = tok_err(err, errcap, fname, "token %lu: piece of %lu bytes runs past the end", (unsigned long)i, (unsigned long)len); goto fail; }
        if (!tok_utf8_valid(sec + pos, len)) { rc = tok_err(err, errcap, fname, "token %lu: piece is not valid UTF-8", (unsigned long)i); goto fail; }
        t->poff[i] = (uint32_t)total; /* offset in the pool, filled below */
        t->plen[i] = len;
        total += len;
        if (total > 0x7FFFFFFFu / 2) { rc = tok_err(err, errcap, fname, "pieces too large in total"); goto fail; }
        if (len > t->max_piece) t->max_piece = len;
        pos += len;
        sc.u = tok_rd32(sec + pos);
        ty = sec[pos + 4];
        fl = sec[pos + 5];
        pos += 6;
        if (!(sc.f == sc.f) || sc.f > 3.0e38f || sc.f < -3.0e38f) { rc = tok_err(err, errcap, fname, "token %lu: score is not finite", (unsigned long)i); goto fail; }
        if (ty < 1 || ty > 6) { rc = tok_err(err, errcap, fname, "token %lu: unknown type %u", (unsigned long)i, (unsigned)ty); goto fail; }
        if (fl & ~0x3Fu) { rc = tok_err(err, errcap, fname, "token %lu: unknown flag bits 0x%X", (unsigned long)i, (unsigned)fl); goto fail; }
        if (fl & TOK_TF_SINGLE_WORD) { rc = tok_err(err, errcap, fname, "token %lu: single_word added tokens are not supported", (unsigned long)i); goto fail; }
        if (kind == 2 && ty == TOK_T_BYTE) { rc = tok_err(err, errcap, fname, "token %lu: byte type in a byte-level vocabulary", (unsigned long)i); goto fail; }
        t->score[i] = sc.f;
        t->type[i] = ty;
        t->tfl[i] = fl;
    }
    if ((uint64_t)(n - pos) != (uint64_t)n_merges * 12) {
        rc = tok_err(err, errcap, fname, "%lu merges need %lu bytes after the tokens, %lu remain", (unsigned long)n_merges, (unsigned long)n_merges * 12ul, (unsigned long)(n - pos));
        goto fail;
    }
    /* Each merge is a distinct split of its result's piece, so valid merges are fewer than the
     * piece bytes; refuse more before sizing the hash table for them (for 2^31 merges or more
     * tok_pow2_above would never return).  No valid file is refused by this. */
    if ((uint64_t)n_merges > (uint64_t)total) {
        rc = tok_err(err, errcap, fname, "%lu merges cannot all be distinct splits of %lu piece bytes", (unsigned long)n_merges, (unsigned long)total);
        goto fail;
    }
    /* pass 2: copy the pieces into the pool, hash them, derive decoded forms; the records are
     * walked again from the start (a section may exceed 4 GiB: no 32-bit positions kept) */
    t->pool = (char *)malloc(total * 2 + 1);
    t->vmask = tok_pow2_above(n_tokens) - 1;
    t->vhash = (int32_t *)calloc((size_t)t->vmask + 1, sizeof(int32_t));
    if (!t->pool || !t->vhash) goto oom;
    for (i = 0; i < 256; i++) t->byte_id[i] = -1;
    dpos = total;
    pos = 28 + (size_t)pattern_len;
    for (i = 0; i < n_tokens; i++) {
        char *p = t->pool + t->poff[i];
        uint32_t len = t->plen[i], h, j;
        size_t d0 = dpos;
        memcpy(p, sec + pos + 4, len);
        pos += 4 + (size_t)len + 6;
        h = tok_hash(p, len) & t->vmask;
        while (t->vhash[h]) {
            int o = t->vhash[h] - 1;
            if (t->plen[o] == len && memcmp(t->pool + t->poff[o], p, len) == 0) {
                rc = tok_err(err, errcap, fname, "tokens %d and %lu have the same piece", o, (unsigned long)i);
                goto fail;
            }
            h = (h + 1) & t->vmask;
        }
        t->vhash[h] = (int32_t)i + 1;
        if (kind == 1) {
            if (t->type[i] == TOK_T_BYTE) {
                int b = tok_parse_byte_piece(p, len);
                if (b < 0) { rc = tok_err(err, errcap, fname, "token %lu: byte piece is not <0xHH>", (unsigned long)i); goto fail; }
                if (t->byte_id[b] >= 0) { rc = tok_err(err, errcap, fname, "byte 0x%02X has two tokens", (unsigned)b); goto fail; }
                t->byte_id[b] = (int)i;
                t->pool[dpos++] = (char)b;
            } else {
                /* U+2581 (E2 96 81) decodes to a space */
                for (j = 0; j < len; j++) {
                    if (j + 2 < len && (unsigned char)p[j] == 0xE2 && (unsigned char)p[j + 1] == 0x96 && (unsigned char)p[j + 2] == 0x81) {
                        t->pool[dpos++] = ' ';
                        j += 2;
                    } else {
                        t->pool[dpos++] = p[j];
                    }
                }
            }
        } else {
            /* byte-level: every char of the alphabet is one byte; a piece with any other char
             * decodes to itself (as HF's ByteLevel decoder does) */
            int ok = 1, l;
            size_t k = 0;
            while (k < len) {
                int32_t cp = tok_utf8((const unsigned char *)p, len, k, &l);
                int b = tok_char_byte(cp);
                if (b < 0) { ok = 0; break; }
                t->pool[dpos++] = (char)b;
                k += (size_t)l;
            }
            if (!ok) {
                dpos = d0;
                memcpy(t->pool + dpos, p, len);
                dpos += len;
            }
        }
        t->doff[i] = (uint32_t)d0;
        t->dlen[i] = (uint32_t)(dpos - d0);
    }
    /* kind 1: can a piece hold U+2581 after a char other than U+2581?  If none can, no merge
     * ever joins "x" and a following "▁", and words can be BPE'd one by one (tok_encode_words) */
    t->ws_split = kind == 1;
    for (i = 0; i < n_tokens && t->ws_split; i++) {
        const unsigned char *p = (const unsigned char *)t->pool + t->poff[i];
        uint32_t j, len = t->plen[i];
        if (t->type[i] != TOK_T_NORMAL && t->type[i] != TOK_T_USER && t->type[i] != TOK_T_UNUSED) continue;
        for (j = 1; j + 2 < len; j++)
            if (p[j] == 0xE2 && p[j + 1] == 0x96 && p[j + 2] == 0x81 &&
                !(j >= 3 && p[j - 3] == 0xE2 && p[j - 2] == 0x96 && p[j - 1] == 0x81)) {
                t->ws_split = 0;
                break;
            }
    }
    if (kind == 2) {
        for (i = 0; i < 256; i++) {
            char c[4];
            int l = tok_put_utf8(c, tok_byte_char(i));
            t->byte_id[i] = tok_lookup(t, c, (size_t)l);
            if (t->byte_id[i] < 0) { rc = tok_err(err, errcap, fname, "byte-level vocabulary lacks the piece of byte 0x%02X", (unsigned)i); goto fail; }
        }
    } else if (flags & TOK_F_BYTE_FALLBACK) {
        for (i = 0; i < 256; i++)
            if (t->byte_id[i] < 0) { rc = tok_err(err, errcap, fname, "byte_fallback set but byte piece <0x%02X> is missing", (unsigned)i); goto fail; }
    }
    /* merges: rank = index; piece(result) must be piece(left) + piece(right) */
    if (n_merges) {
        t->mmask = tok_pow2_above(n_merges) - 1;
        t->mhash = (tok_mslot *)malloc(((size_t)t->mmask + 1) * sizeof(tok_mslot));
        if (!t->mhash) goto oom;
        for (i = 0; i <= t->mmask; i++) t->mhash[i].left = -1;
        for (i = 0; i < n_merges; i++) {
            uint32_t a = tok_rd32(sec + pos), b = tok_rd32(sec + pos + 4), r = tok_rd32(sec + pos + 8), h;
            pos += 12;
            if (a >= n_tokens || b >= n_tokens || r >= n_tokens) { rc = tok_err(err, errcap, fname, "merge %lu: token id out of range (%lu %lu -> %lu, %lu tokens)", (unsigned long)i, (unsigned long)a, (unsigned long)b, (unsigned long)r, (unsigned long)n_tokens); goto fail; }
            if (t->plen[r] != t->plen[a] + t->plen[b] || memcmp(t->pool + t->poff[r], t->pool + t->poff[a], t->plen[a]) != 0 ||
                memcmp(t->pool + t->poff[r] + t->plen[a], t->pool + t->poff[b], t->plen[b]) != 0) {
                rc = tok_err(err, errcap, fname, "merge %lu: piece %lu is not piece %lu + piece %lu", (unsigned long)i, (unsigned long)r, (unsigned long)a, (unsigned long)b);
                goto fail;
            }
            h = tok_hash2(a, b) & t->mmask;
            while (t->mhash[h].left >= 0) {
                if (t->mhash[h].left == (int32_t)a && t->mhash[h].right == (int32_t)b) { rc = tok_err(err, errcap, fname, "merges %ld and %lu are the same pair", (long)t->mhash[h].rank, (unsigned long)i); goto fail; }
                h = (h + 1) & t->mmask;
            }
            t->mhash[h].left = (int32_t)a;
            t->mhash[h].right = (int32_t)b;
            t->mhash[h].rank = (int32_t)i;
            t->mhash[h].result = (int32_t)r;
        }
    }
    /* added tokens grouped by first byte, longest first within a group, so the first match
     * at a position is the longest */
    for (i = 0; i < n_tokens; i++) t->n_added += (t->tfl[i] & TOK_TF_ADDED) != 0;
    if (t->n_added) {
        uint64_t *key = (uint64_t *)malloc((size_t)t->n_added * sizeof(uint64_t));
        int k = 0, b;
        t->added = (int *)malloc((size_t)t->n_added * sizeof(int));
        if (!t->added || !key) { free(key); goto oom; }
        for (i = 0; i < n_tokens; i++)
            if (t->tfl[i] & TOK_TF_ADDED) /* first byte asc, length desc, id asc */
                key[k++] = (uint64_t)(unsigned char)t->pool[t->poff[i]] << 56 |
                           (uint64_t)(TOK_MAX_PIECE - t->plen[i]) << 32 | i;
        qsort(key, (size_t)k, sizeof *key, tok_cmp_u64);
        for (b = 0; b <= 256; b++) t->added_at[b] = 0;
        for (b = 0; b < k; b++) {
            t->added[b] = (int)(uint32_t)key[b];
            t->added_at[(key[b] >> 56) + 1]++;
        }
        for (b = 0; b < 256; b++) t->added_at[b + 1] += t->added_at[b];
        free(key);
    }
    *out = t;
    return RH_OK;
oom:
    rc = RH_ENOMEM;
    if (err && errcap) snprintf(err, errcap, "%s: tokenizer section: out of memory", fname ? fname : "(memory)");
fail:
    tok_free(t);
    return rc;
}

/* ---- encoding ---- */

/* A symbol of a word being merged: bytes [start, start + len) of the word, its token id
 * (-1 not yet known / not a piece), linked to its neighbours.  len == 0: merged away. */
typedef struct {
    uint32_t start, len;
    int32_t id, prev, next;
} tok_sym;

/* A candidate merge of symbol `left` with its right neighbour: lower key first (merge rank,
 * or minus the score of the merged piece), then the leftmost. llen/rlen detect stale entries. */
typedef struct {
    double key;
    int32_t left, right, result;
    uint32_t llen, rlen;
} tok_cand;

typedef struct {
    int *ids;
    size_t n_ids, ids_cap;
    tok_sym *sym;
    size_t sym_cap;
    tok_cand *heap;
    size_t n_heap, heap_cap;
    char *buf;    /* normalized text */
    size_t buf_cap;
    char *nfc;    /* NFC output */
    size_t nfc_cap;
    uint32_t *cps; /* NFC scratch */
    size_t cps_cap;
    char *word;   /* byte-level word in the alphabet (ignore_merges lookups) */
    size_t word_cap;
    int32_t *rev; /* SentencePiece unused pieces: id, left length pairs of this encode */
    size_t n_rev, rev_cap;
    int last_unk; /* the previous emitted id was a fused unk */
    struct tok_cache_entry *cache; /* words already BPE'd in this call (long texts only) */
} tok_ws;

/* Word cache: in running text most words repeat, and a word's BPE depends on its bytes alone
 * (words whose ids hold unk are not cached: unk fusion depends on what came before). */
#define TOK_CACHE_SIZE 4096
#define TOK_CACHE_WORD 24
#define TOK_CACHE_IDS 8
struct tok_cache_entry {
    unsigned char len, n_ids;
    char word[TOK_CACHE_WORD];
    int32_t ids[TOK_CACHE_IDS];
};

static void tok_ws_free(tok_ws *w)
{
    free(w->ids);
    free(w->sym);
    free(w->heap);
    free(w->buf);
    free(w->nfc);
    free(w->cps);
    free(w->word);
    free(w->rev);
    free(w->cache);
}

static int tok_emit(const rh_tokenizer *t, tok_ws *w, int id)
{
    if (id < 0) return 0;
    if (id == t->unk_id && (t->flags & (TOK_F_FUSE_UNK | TOK_F_HF)) == TOK_F_FUSE_UNK) {
        /* SentencePiece fuses a run of unknown pieces into one; HF fuses unknown chars
         * inside a word, before the merges (tok_bpe) */
        if (w->last_unk) return 0;
        w->last_unk = 1;
    } else {
        w->last_unk = 0;
    }
    if (w->n_ids == w->ids_cap && tok_grow((void **)&w->ids, &w->ids_cap, w->n_ids + 1, sizeof(int)))
        return -1;
    w->ids[w->n_ids++] = id;
    return 0;
}

static int tok_cand_less(const tok_cand *a, const tok_cand *b)
{
    if (a->key != b->key) return a->key < b->key;
    return a->left < b->left;
}

static int tok_heap_push(tok_ws *w, const tok_cand *c)
{
    size_t i;
    if (w->n_heap == w->heap_cap &&
        tok_grow((void **)&w->heap, &w->heap_cap, w->n_heap + 1, sizeof(tok_cand)))
        return -1;
    i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok_cand_less(c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = *c;
    return 0;
}

static void tok_heap_pop(tok_ws *w, tok_cand *top)
{
    tok_cand last;
    size_t i = 0, n;
    *top = w->heap[0];
    n = --w->n_heap;
    if (!n) return;
    last = w->heap[n];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && tok_cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!tok_cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    w->heap[i] = last;
}

/* Queue the merge of symbol a with its right neighbour, if the pair merges. by_score: the
 * SentencePiece rule (the pair whose concatenation is a normal/user/unused piece, best score
 * first); else merge rank over token ids. */
static int tok_try_pair(const rh_tokenizer *t, tok_ws *w, const char *word, int32_t a, int by_score)
{
    tok_cand c;
    const tok_sym *sa, *sb;
    if (a < 0) return 0;
    sa = &w->sym[a];
    if (sa->next < 0) return 0;
    sb = &w->sym[sa->next];
    if (by_score) {
        int id;
        if (sa->len + sb->len > t->max_piece) return 0;
        id = tok_lookup(t, word + sa->start, sa->len + sb->len);
        if (id < 0 || (t->type[id] != TOK_T_NORMAL && t->type[id] != TOK_T_USER &&
                       t->type[id] != TOK_T_UNUSED))
            return 0;
        c.key = -(double)t->score[id];
        c.result = id;
    } else {
        const tok_mslot *mi;
        if (sa->id < 0 || sb->id < 0) return 0;
        mi = tok_merge_find(t, sa->id, sb->id);
        if (!mi) return 0;
        c.key = (double)mi->rank;
        c.result = mi->result;
    }
    c.left = a;
    c.right = sa->next;
    c.llen = sa->len;
    c.rlen = sb->len;
    return tok_heap_push(w, &c);
}

/* Emit the ids of a final SentencePiece symbol s[0..n): its piece, else (an unused piece made
 * by a merge) its two halves again, else bytes or unk. */
static int tok_emit_sp_symbol(const rh_tokenizer *t, tok_ws *w, const char *s, uint32_t n, int depth)
{
    int id = tok_lookup(t, s, n);
    if (id >= 0 && t->type[id] == TOK_T_UNUSED && depth < 64) {
        size_t r;
        for (r = w->n_rev; r-- > 0;)
            if (w->rev[2 * r] == id) {
                uint32_t l = (uint32_t)w->rev[2 * r + 1];
                if (tok_emit_sp_symbol(t, w, s, l, depth + 1)) return -1;
                return tok_emit_sp_symbol(t, w, s + l, n - l, depth + 1);
            }
    }
    if (id >= 0) return tok_emit(t, w, id);
    if (t->flags & TOK_F_BYTE_FALLBACK) {
        uint32_t k;
        for (k = 0; k < n; k++)
            if (tok_emit(t, w, t->byte_id[(unsigned char)s[k]])) return -1;
        return 0;
    }
    return tok_emit(t, w, t->unk_id);
}

/* BPE of one word (kind 1: a span of normalized text; kind 2: a pre-split piece). */
static int tok_bpe(const rh_tokenizer *t, tok_ws *w, const char *word, size_t n)
{
    int by_score = t->kind == 1 && t->n_merges == 0;
    size_t i = 0, ns = 0;
    int32_t k;
    tok_cand c;
    if (!n) return 0;
    if (t->kind == 2 && n == 1) return tok_emit(t, w, t->byte_id[(unsigned char)word[0]]);
    if (t->kind == 2 && (t->flags & TOK_F_IGNORE_MERGES)) {
        /* HF ignore_merges: a word that is itself a token is emitted whole */
        size_t m = 0;
        int id;
        if (tok_grow((void **)&w->word, &w->word_cap, n * 2, 1)) return -1;
        for (i = 0; i < n; i++) m += (size_t)tok_put_utf8(w->word + m, tok_byte_char((unsigned char)word[i]));
        id = m <= t->max_piece ? tok_lookup(t, w->word, m) : -1;
        if (id >= 0) return tok_emit(t, w, id);
        i = 0;
    }
    if (tok_grow((void **)&w->sym, &w->sym_cap, n, sizeof(tok_sym))) return -1;
    /* initial symbols */
    while (i < n) {
        int len = 1;
        tok_sym *s = &w->sym[ns];
        if (t->kind == 2) {
            s->id = t->byte_id[(unsigned char)word[i]];
        } else {
            tok_utf8((const unsigned char *)word, n, i, &len);
            if (by_score) {
                s->id = -1;
            } else {
                s->id = tok_lookup(t, word + i, (size_t)len);
                if (s->id < 0) {
                    /* HF BPE: a char not in the vocabulary becomes its <0xNN> byte symbols, or
                     * unk (fused with a preceding unk under fuse_unk) */
                    if (t->flags & TOK_F_BYTE_FALLBACK) {
                        int b;
                        for (b = 0; b < len; b++) {
                            s = &w->sym[ns];
                            s->start = (uint32_t)i + (uint32_t)b;
                            s->len = 1;
                            s->id = t->byte_id[(unsigned char)word[i + (size_t)b]];
                            s->prev = (int32_t)ns - 1;
                            s->next = (int32_t)ns + 1;
                            ns++;
                        }
                        i += (size_t)len;
                        continue;
                    }
                    s->id = t->unk_id;
                    if (t->unk_id >= 0 && (t->flags & TOK_F_FUSE_UNK) && ns > 0 &&
                        w->sym[ns - 1].id == t->unk_id) {
                        w->sym[ns - 1].len += (uint32_t)len;
                        i += (size_t)len;
                        continue;
                    }
                }
            }
        }
        s->start = (uint32_t)i;
        s->len = (uint32_t)len;
        s->prev = (int32_t)ns - 1;
        s->next = (int32_t)ns + 1;
        ns++;
        i += (size_t)len;
    }
    w->sym[ns - 1].next = -1;
    w->n_heap = 0;
    w->n_rev = 0;
    for (k = 0; k + 1 < (int32_t)ns; k++)
        if (tok_try_pair(t, w, word, k, by_score)) return -1;
    while (w->n_heap) {
        tok_sym *a, *b;
        tok_heap_pop(w, &c);
        a = &w->sym[c.left];
        if (a->len != c.llen || a->next != c.right) continue;
        b = &w->sym[c.right];
        if (b->len != c.rlen) continue;
        if (by_score && t->type[c.result] == TOK_T_UNUSED) {
            /* remember how it was made: SentencePiece splits unused pieces again */
            if (w->n_rev == w->rev_cap / 2 &&
                tok_grow((void **)&w->rev, &w->rev_cap, 2 * w->n_rev + 2, sizeof(int32_t)))
                return -1;
            w->rev[2 * w->n_rev] = c.result;
            w->rev[2 * w->n_rev + 1] = (int32_t)a->len;
            w->n_rev++;
        }
        a->len += b->len;
        a->id = c.result;
        a->next = b->next;
        if (b->next >= 0) w->sym[b->next].prev = c.left;
        b->len = 0;
        if (tok_try_pair(t, w, word, a->prev, by_score)) return -1;
        if (tok_try_pair(t, w, word, c.left, by_score)) return -1;
    }
    for (k = 0; k >= 0; k = w->sym[k].next) {
        const tok_sym *s = &w->sym[k];
        if (by_score) {
            if (tok_emit_sp_symbol(t, w, word + s->start, s->len, 0)) return -1;
        } else if (tok_emit(t, w, s->id)) {
            return -1;
        }
    }
    return 0;
}

static int tok_bpe_cached(const rh_tokenizer *t, tok_ws *w, const char *word, size_t n)
{
    struct tok_cache_entry *e;
    size_t first = w->n_ids, k;
    if (!w->cache || n > TOK_CACHE_WORD || n == 0) return tok_bpe(t, w, word, n);
    e = &w->cache[tok_hash(word, n) & (TOK_CACHE_SIZE - 1)];
    if (e->len == n && memcmp(e->word, word, n) == 0) {
        for (k = 0; k < e->n_ids; k++)
            if (tok_emit(t, w, e->ids[k])) return -1;
        return 0;
    }
    if (tok_bpe(t, w, word, n)) return -1;
    if (w->n_ids - first <= TOK_CACHE_IDS) {
        for (k = first; k < w->n_ids; k++)
            if (w->ids[k] == t->unk_id) return 0;
        e->len = (unsigned char)n;
        e->n_ids = (unsigned char)(w->n_ids - first);
        memcpy(e->word, word, n);
        for (k = first; k < w->n_ids; k++) e->ids[k - first] = w->ids[k];
    }
    return 0;
}

/* ---- pre-splitting (kind 2): the GPT-2, Llama-3 and Qwen2 regexes, by hand ----
 * GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen2:  the same with \p{N} in place of \p{N}{1,3}.
 * Alternatives are tried in order at each position (leftmost-first, as Oniguruma does); every
 * character is matched by one of them, so the pieces tile the text. */

typedef struct {
    const unsigned char *s;
    size_t n;
} tok_text;

/* class of the char at i (TOK_C_*) and its length; i == n gives -1 */
static int tok_cls_at(const tok_text *x, size_t i, int *len)
{
    if (i >= x->n) { *len = 0; return -1; }
    if (x->s[i] < 0x80) {
        *len = 1;
        return tok_class(x->s[i]);
    }
    return tok_class(tok_utf8(x->s, x->n, i, len));
}

/* end of the run of chars of class c starting at i */
static size_t tok_run(const tok_text *x, size_t i, int c)
{
    int len;
    while (i < x->n && tok_cls_at(x, i, &len) == c) i += (size_t)len;
    return i;
}

/* 's 't 're 've 'm 'll 'd after the apostrophe at i; icase: (?i:...) (Oniguruma folds U+017F
 * LATIN SMALL LETTER LONG S to s).  Returns the match length or 0. */
static size_t tok_contraction(const tok_text *x, size_t i, int icase)
{
    const unsigned char *s = x->s + i;
    size_t r = x->n - i;
    unsigned a, b;
    if (r < 2 || s[0] != '\'') return 0;
    a = s[1];
    if (icase && a < 0x80) a |= 0x20;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (icase && r >= 3 && s[1] == 0xC5 && s[2] == 0xBF) return 3; /* 'ſ */
    if (r < 3) return 0;
    b = s[2];
    if (icase && b < 0x80) b |= 0x20;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S) then \s+ for the whitespace run at i: all of it at the end of the text, else all
 * but its last char when that leaves something, else the single char. */
static size_t tok_ws_tail(const tok_text *x, size_t i)
{
    size_t j = i, last = i;
    int len;
    while (j < x->n && tok_cls_at(x, j, &len) == TOK_C_WS) {
        last = j;
        j += (size_t)len;
    }
    if (j == x->n || last == i) return j - i;
    return last - i;
}

static size_t tok_match_gpt2(const tok_text *x, size_t i)
{
    int l0, l1, c0, c1;
    size_t m = tok_contraction(x, i, 0);
    if (m) return m;
    c0 = tok_cls_at(x, i, &l0);
    if (x->s[i] == ' ') {
        c1 = tok_cls_at(x, i + 1, &l1);
        if (c1 == TOK_C_L || c1 == TOK_C_N || c1 == TOK_C_OTHER) return tok_run(x, i + 1, c1) - i;
    }
    if (c0 != TOK_C_WS) return tok_run(x, i, c0) - i;
    return tok_ws_tail(x, i);
}

static size_t tok_match_llama3(const tok_text *x, size_t i, int max_digits)
{
    int l0, l1, c0, c1, k;
    unsigned char b0 = x->s[i];
    size_t m = tok_contraction(x, i, 1), j;
    if (m) return m;
    c0 = tok_cls_at(x, i, &l0);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c0 == TOK_C_L) return tok_run(x, i, TOK_C_L) - i;
    if (c0 != TOK_C_N && b0 != '\r' && b0 != '\n') {
        c1 = tok_cls_at(x, i + (size_t)l0, &l1);
        if (c1 == TOK_C_L) return tok_run(x, i + (size_t)l0, TOK_C_L) - i;
    }
    /* \p{N}{1,3} or \p{N} */
    if (c0 == TOK_C_N) {
        j = i;
        for (k = 0; k < max_digits && tok_cls_at(x, j, &l1) == TOK_C_N; k++) j += (size_t)l1;
        return j - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = i;
    if (b0 == ' ' && tok_cls_at(x, i + 1, &l1) == TOK_C_OTHER) j = i + 1;
    if (j > i || c0 == TOK_C_OTHER) {
        j = tok_run(x, j, TOK_C_OTHER);
        while (j < x->n && (x->s[j] == '\r' || x->s[j] == '\n')) j++;
        return j - i;
    }
    /* \s*[\r\n]+ : through the last \r or \n of the whitespace run */
    {
        size_t last_nl = 0, e = i;
        int have = 0;
        while (e < x->n && tok_cls_at(x, e, &l1) == TOK_C_WS) {
            if (x->s[e] == '\r' || x->s[e] == '\n') { last_nl = e; have = 1; }
            e += (size_t)l1;
        }
        if (have) return last_nl + 1 - i;
    }
    return tok_ws_tail(x, i);
}

/* ---- the pipelines ---- */

/* Byte-level: prefix, pre-split, BPE each piece. */
static int tok_encode_bytelevel(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n)
{
    tok_text x;
    size_t i = 0;
    if (!n) return 0;
    if ((t->flags & TOK_F_DUMMY_PREFIX) && s[0] != ' ') {
        /* ByteLevel add_prefix_space: a space before every segment not starting with one */
        if (tok_grow((void **)&w->buf, &w->buf_cap, n + 1, 1)) return -1;
        w->buf[0] = ' ';
        memcpy(w->buf + 1, s, n);
        s = w->buf;
        n++;
    }
    x.s = (const unsigned char *)s;
    x.n = n;
    while (i < n) {
        size_t m = t->pretok == TOK_PRE_GPT2 ? tok_match_gpt2(&x, i)
                                              : tok_match_llama3(&x, i, t->pretok == TOK_PRE_LLAMA3 ? 3 : 1);
        if (!m) m = 1; /* cannot happen: every char matches an alternative */
        if (tok_bpe_cached(t, w, s + i, m)) return -1;
        i += m;
    }
    return 0;
}

/* SentencePiece-style words.  HF Metaspace split=true: a word starts at every U+2581.
 * Otherwise (SentencePiece, HF legacy Prepend+Replace) the BPE runs over the whole text; when
 * no piece holds U+2581 after another char (ws_split), no merge can cross the start of a run of
 * U+2581 that follows another char, so cutting there gives the same ids, much faster. */
static int tok_encode_words(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n)
{
    size_t i, start = 0;
    int every = (t->flags & TOK_F_METASPACE_SPLIT) != 0;
    if (!every && !t->ws_split) return tok_bpe(t, w, s, n);
    for (i = 1; i + 2 < n; i++)
        if ((unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
            (unsigned char)s[i + 2] == 0x81) {
            if (every || !(i >= 3 && (unsigned char)s[i - 3] == 0xE2 &&
                           (unsigned char)s[i - 2] == 0x96 && (unsigned char)s[i - 1] == 0x81)) {
                if (tok_bpe_cached(t, w, s + start, i - start)) return -1;
                start = i;
            }
            i += 2;
        }
    return tok_bpe_cached(t, w, s + start, n - start);
}

/* Find the added token matching at s[i] (longest first), considering only those with
 * (flags & TOK_TF_NORMALIZED) == want_norm.  Returns its id or -1; *len its length. */
static int tok_added_at(const rh_tokenizer *t, const char *s, size_t n, size_t i, unsigned want_norm,
                        size_t *len)
{
    int k;
    unsigned char b = (unsigned char)s[i];
    for (k = t->added_at[b]; k < t->added_at[b + 1]; k++) {
        int id = t->added[k];
        size_t l = t->plen[id];
        if ((t->tfl[id] & TOK_TF_NORMALIZED) != want_norm) continue;
        if (l <= n - i && memcmp(s + i, t->pool + t->poff[id], l) == 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

/* Unicode White_Space char ending just before e / starting at b (lstrip / rstrip) */
static size_t tok_ws_before(const char *s, size_t lo, size_t e)
{
    while (e > lo) {
        size_t b = e - 1;
        int len;
        int32_t cp;
        while (b > lo && ((unsigned char)s[b] & 0xC0) == 0x80 && e - b < 4) b--;
        cp = tok_utf8((const unsigned char *)s, e, b, &len);
        if (b + (size_t)len != e || !tok_is_ws(cp)) break;
        e = b;
    }
    return e;
}

static size_t tok_ws_after(const char *s, size_t n, size_t b)
{
    int len;
    while (b < n) {
        int32_t cp = tok_utf8((const unsigned char *)s, n, b, &len);
        if (!tok_is_ws(cp)) break;
        b += (size_t)len;
    }
    return b;
}

static int tok_segment_hf(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n, int at_start);

/* Split s[0..n) at added tokens of the given normalized-ness; text between them goes to
 * fn (the rest of the pipeline), the tokens to the output.  at_start: s begins the text. */
static int tok_split_added(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n,
                           unsigned want_norm, int at_start,
                           int (*fn)(const rh_tokenizer *, tok_ws *, const char *, size_t, int))
{
    size_t i = 0, seg = 0;
    while (i < n) {
        size_t len = 0, ms = i, me;
        int id = t->n_added ? tok_added_at(t, s, n, i, want_norm, &len) : -1;
        if (id < 0) { i++; continue; }
        me = i + len;
        if (t->tfl[id] & TOK_TF_LSTRIP) ms = tok_ws_before(s, seg, ms);
        if (t->tfl[id] & TOK_TF_RSTRIP) me = tok_ws_after(s, n, me);
        if (ms > seg && fn(t, w, s + seg, ms - seg, at_start && seg == 0)) return -1;
        if (tok_emit(t, w, id)) return -1;
        i = seg = me;
    }
    if (n > seg && fn(t, w, s + seg, n - seg, at_start && seg == 0)) return -1;
    return 0;
}

/* HF: one segment after normalization and the normalized added tokens. */
static int tok_piece_hf(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n, int at_start)
{
    size_t i, o = 0;
    int prefix;
    if (!n) return 0;
    if (t->kind == 2) return tok_encode_bytelevel(t, w, s, n);
    /* Metaspace / Prepend+Replace: spaces to U+2581 and the prefix */
    /* Metaspace tests the text after ' ' -> U+2581: a literal U+2581 counts as a space too */
    prefix = (t->flags & TOK_F_DUMMY_PREFIX) && (!(t->flags & TOK_F_PREFIX_FIRST) || at_start) &&
             (!(t->flags & TOK_F_PREFIX_UNLESS_SPACE) ||
              (s[0] != ' ' && !(n >= 3 && memcmp(s, "\xE2\x96\x81", 3) == 0)));
    if (tok_grow((void **)&w->buf, &w->buf_cap, n * 3 + 3, 1)) return -1;
    if (prefix) { memcpy(w->buf, "\xE2\x96\x81", 3); o = 3; }
    for (i = 0; i < n; i++) {
        if (s[i] == ' ') { memcpy(w->buf + o, "\xE2\x96\x81", 3); o += 3; }
        else w->buf[o++] = s[i];
    }
    return tok_encode_words(t, w, w->buf, o);
}

static int tok_segment_hf(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n, int at_start)
{
    if ((t->flags & TOK_F_NFC) && tok_nfc_needed((const unsigned char *)s, n)) {
        size_t m;
        if (tok_nfc((const unsigned char *)s, n, &w->nfc, &w->nfc_cap, &m, &w->cps, &w->cps_cap)) return -1;
        s = w->nfc; /* the rest of the pipeline never touches w->nfc */
        n = m;
    }
    return tok_split_added(t, w, s, n, TOK_TF_NORMALIZED, at_start, tok_piece_hf);
}

static int tok_bpe_seg(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n, int at_start)
{
    (void)at_start;
    return tok_encode_words(t, w, s, n);
}

/* SentencePiece: normalize the whole text, then user_defined pieces, then BPE. */
static int tok_encode_sp(const rh_tokenizer *t, tok_ws *w, const char *s, size_t n)
{
    size_t i = 0, o = 0, end = n;
    char *b;
    if ((t->flags & TOK_F_NFC) && tok_nfc_needed((const unsigned char *)s, n)) {
        size_t m;
        if (tok_nfc((const unsigned char *)s, n, &w->nfc, &w->nfc_cap, &m, &w->cps, &w->cps_cap)) return -1;
        s = w->nfc;
        n = end = m;
    }
    if (t->flags & TOK_F_REMOVE_WS) {
        while (i < n && s[i] == ' ') i++;
        while (end > i && s[end - 1] == ' ') end--;
    }
    if (i == end) return 0;
    if (tok_grow((void **)&w->buf, &w->buf_cap, (end - i) * 3 + 3, 1)) return -1;
    b = w->buf;
    if (t->flags & TOK_F_DUMMY_PREFIX) { memcpy(b, "\xE2\x96\x81", 3); o = 3; }
    while (i < end) {
        int len = 1;
        if (s[i] == ' ') {
            if (!(t->flags & TOK_F_REMOVE_WS) || s[i - 1] != ' ') {
                memcpy(b + o, "\xE2\x96\x81", 3);
                o += 3;
            }
        } else if ((unsigned char)s[i] < 0x80) {
            b[o++] = s[i];
        } else if (tok_utf8((const unsigned char *)s, end, i, &len) < 0) {
            /* as SentencePiece's normalizer: each invalid byte becomes U+FFFD */
            memcpy(b + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(b + o, s + i, (size_t)len);
            o += (size_t)len;
        }
        i += (size_t)len;
    }
    /* SentencePiece strips trailing U+2581 after escaping, so a literal U+2581 at the end of
     * the text goes too (and the dummy prefix of a text that was only spaces) */
    if (t->flags & TOK_F_REMOVE_WS)
        while (o >= 3 && (unsigned char)b[o - 3] == 0xE2 && (unsigned char)b[o - 2] == 0x96 &&
               (unsigned char)b[o - 1] == 0x81)
            o -= 3;
    /* tok_encode_words does not use w->buf, so b stays valid */
    return tok_split_added(t, w, b, o, 0, 1, tok_bpe_seg);
}

static int tok_encode(const rh_tokenizer *t, tok_ws *w, const char *text, size_t len)
{
    if (t->kind == 1 && !(t->flags & TOK_F_HF)) return tok_encode_sp(t, w, text, len);
    return tok_split_added(t, w, text, len, 0, 1, tok_segment_hf);
}

int rh_tokenize(const rh_model *m, const char *text, size_t len, int add_bos, int **ids,
                int *n_ids, char *err, size_t errcap)
{
    const rh_tokenizer *t;
    const rh_config *cfg;
    tok_ws w;
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (!m || !ids || !n_ids || (!text && len)) {
        if (err && errcap) snprintf(err, errcap, "rh_tokenize: NULL argument");
        return RH_EINVAL;
    }
    if (len > (size_t)INT_MAX / 4) { /* at most 3 ids per byte (U+FFFD as bytes), plus BOS */
        if (err && errcap) snprintf(err, errcap, "rh_tokenize: text of %lu bytes is too long", (unsigned long)len);
        return RH_ERANGE;
    }
    t = model_tokenizer(m);
    cfg = rh_model_config(m);
    memset(&w, 0, sizeof w);
    if (len >= 4096) /* worth it for long texts; without it the same ids, slower */
        w.cache = (struct tok_cache_entry *)calloc(TOK_CACHE_SIZE, sizeof *w.cache);
    if (add_bos < 0) add_bos = cfg->add_bos;
    if (add_bos && cfg->bos_id >= 0 && tok_emit(t, &w, cfg->bos_id)) goto oom;
    if (len && tok_encode(t, &w, text, len)) goto oom;
    if (w.n_ids > (size_t)INT_MAX) goto oom;
    *n_ids = (int)w.n_ids;
    *ids = w.ids;
    if (!w.ids) *ids = (int *)malloc(sizeof(int)); /* a valid pointer even for no ids */
    w.ids = NULL;
    tok_ws_free(&w);
    if (!*ids) goto oom2;
    return RH_OK;
oom:
    tok_ws_free(&w);
oom2:
    if (err && errcap) snprintf(err, errcap, "rh_tokenize: out of memory");
    return RH_ENOMEM;
}

/* ---- decoding ---- */

#define TOK_DEC_STARTED 0x40000000 /* rh_decoder: a token has been emitted (internal flag) */

int rh_n_tokens(const rh_model *m)
{
    return m ? model_tokenizer(m)->n_tokens : RH_EINVAL;
}

int rh_token_bytes(const rh_model *m, int id, char *buf, size_t cap)
{
    const rh_tokenizer *t;
    size_t l;
    if (!m) return RH_EINVAL;
    t = model_tokenizer(m);
    if (id < 0 || id >= t->n_tokens) return RH_ERANGE;
    l = t->dlen[id];
    if (buf) memcpy(buf, t->pool + t->doff[id], l < cap ? l : cap);
    return (int)l;
}

int rh_token_piece(const rh_model *m, int id, char *buf, size_t cap)
{
    const rh_tokenizer *t;
    size_t l;
    if (!m) return RH_EINVAL;
    t = model_tokenizer(m);
    if (id < 0 || id >= t->n_tokens) return RH_ERANGE;
    l = t->plen[id];
    if (buf) memcpy(buf, t->pool + t->poff[id], l < cap ? l : cap);
    return (int)l;
}

/* Is id dropped under RH_DETOK_SKIP_SPECIAL?  Control pieces (SentencePiece) and tokens marked
 * special (HF added tokens with special: true). */
static int tok_is_special(const rh_tokenizer *t, int id)
{
    return t->type[id] == TOK_T_CONTROL || (t->tfl[id] & TOK_TF_SPECIAL);
}

int rh_detokenize(const rh_model *m, const int *ids, int n_ids, int flags, char **text,
                  size_t *len, char *err, size_t errcap)
{
    const rh_tokenizer *t;
    size_t total = 0, o = 0;
    int i, first = 1;
    char *out;
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!m || !text || (!ids && n_ids) || n_ids < 0) {
        if (err && errcap) snprintf(err, errcap, "rh_detokenize: bad argument");
        return RH_EINVAL;
    }
    t = model_tokenizer(m);
    for (i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_tokens) {
            if (err && errcap) snprintf(err, errcap, "rh_detokenize: token id %d at index %d out of range 0..%d", ids[i], i, t->n_tokens - 1);
            return RH_ERANGE;
        }
        total += t->dlen[ids[i]];
    }
    out = (char *)malloc(total + 1);
    if (!out) {
        if (err && errcap) snprintf(err, errcap, "rh_detokenize: out of memory");
        return RH_ENOMEM;
    }
    for (i = 0; i < n_ids; i++) {
        const char *p;
        size_t l;
        if ((flags & RH_DETOK_SKIP_SPECIAL) && tok_is_special(t, ids[i])) continue;
        p = t->pool + t->doff[ids[i]];
        l = t->dlen[ids[i]];
        if (first && (flags & RH_DETOK_STRIP_LEADING) && (t->flags & TOK_F_DUMMY_PREFIX) && l && p[0] == ' ') {
            p++;
            l--;
        }
        first = 0;
        memcpy(out + o, p, l);
        o += l;
    }
    out[o] = 0;
    *text = out;
    if (len) *len = o;
    return RH_OK;
}

void rh_decoder_init(rh_decoder *d, const rh_model *m, int flags)
{
    memset(d, 0, sizeof *d);
    d->m = m;
    d->flags = flags & (RH_DETOK_STRIP_LEADING | RH_DETOK_SKIP_SPECIAL);
}

/* Length of the incomplete UTF-8 character at the end of s[0..n) that is still a valid prefix
 * of some character (to be held back), or 0. */
static size_t tok_utf8_tail(const unsigned char *s, size_t n)
{
    size_t k;
    for (k = 1; k <= 3 && k <= n; k++) {
        unsigned c = s[n - k];
        size_t need;
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back */
        if (c >= 0xC2 && c <= 0xDF) need = 2;
        else if (c >= 0xE0 && c <= 0xEF) need = 3;
        else if (c >= 0xF0 && c <= 0xF4) need = 4;
        else return 0;
        if (k >= need) return 0; /* complete (or over-long: emitted as is) */
        if (k >= 2) {
            unsigned d = s[n - k + 1];
            if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
                (c == 0xF4 && d > 0x8F))
                return 0;
        }
        return k;
    }
    return 0;
}

int rh_decoder_push(rh_decoder *d, int id, char *out, size_t cap)
{
    const rh_tokenizer *t;
    const char *p;
    size_t l, n, hold;
    if (!d || !d->m || (!out && cap)) return RH_EINVAL;
    t = model_tokenizer(d->m);
    if (id < 0 || id >= t->n_tokens) return RH_ERANGE;
    d->n_seen++;
    if ((d->flags & RH_DETOK_SKIP_SPECIAL) && tok_is_special(t, id)) return 0;
    p = t->pool + t->doff[id];
    l = t->dlen[id];
    if (!(d->flags & TOK_DEC_STARTED) && (d->flags & RH_DETOK_STRIP_LEADING) &&
        (t->flags & TOK_F_DUMMY_PREFIX) && l && p[0] == ' ') {
        p++;
        l--;
    }
    d->flags |= TOK_DEC_STARTED;
    if ((size_t)d->n_pend + l > cap) return RH_ERANGE;
    memcpy(out, d->pend, (size_t)d->n_pend);
    memcpy(out + d->n_pend, p, l);
    n = (size_t)d->n_pend + l;
    hold = tok_utf8_tail((const unsigned char *)out, n);
    memcpy(d->pend, out + n - hold, hold);
    d->n_pend = (int)hold;
    return (int)(n - hold);
}

int rh_decoder_flush(rh_decoder *d, char *out, size_t cap)
{
    int k;
    if (!d || (!out && cap)) return RH_EINVAL;
    k = d->n_pend;
    if ((size_t)k > cap) return RH_ERANGE;
    memcpy(out, d->pend, (size_t)k);
    d->n_pend = 0;
    return k;
}

/* =============================================================================================
 * 4. THE .rhw FILE
 *
 * The file is mapped read-only and every field is checked before anything else touches it:
 * header fields against sane limits, sections against the file and each other, each tensor's
 * name, dtype, shape, size and offset against the config, the data region and the other
 * tensors.  Products are computed in 64 bits with overflow checks.  After rh_model_open
 * succeeds, the forward pass may trust every pointer it is given.
 *
 * What it may call: the tokenizer's loader (section 3), the conversions of section 5, the
 * utilities at the top of the file.  It fills struct rh_model (section 2).
 * ============================================================================================= */

RH_UNUSED static void k_cvt_scalar(rh_dtype t, const void *src, float *dst, int n); /* section 5 */

#define RHW_HEADER 256
#define RHW_ALIGN 64
#define RHW_MAX_DIM (1 << 16)
#define RHW_MAX_HIDDEN (1 << 20)
#define RHW_MAX_LAYERS 1024
#define RHW_MAX_HEADS 1024
#define RHW_MAX_HEAD_DIM 1024
#define RHW_MAX_VOCAB (1 << 24)
#define RHW_FLAG_QKV_BIAS 1u
#define RHW_FLAG_TIED 2u
#define RHW_FLAG_ADD_BOS 4u



/* Tensor slots: the global tensors, then per layer its LT_COUNT dense slots and, in a mixture
 * of experts, the router (LT_ROUTER) and three per expert e (LT_EXPERT + 3 e + part, part 0 the
 * gate w1, 1 the up w3, 2 the down w2); layer_slots of them in all. */
enum { SLOT_EMBED, SLOT_NORM, SLOT_HEAD, SLOT_ROPE_SHORT, SLOT_ROPE_LONG, SLOT_GLOBALS };
enum {
    LT_ATTN_NORM, LT_Q, LT_K, LT_V, LT_QB, LT_KB, LT_VB, LT_O, LT_FFN_NORM, LT_GATE, LT_UP,
    LT_DOWN, LT_COUNT, LT_ROUTER = LT_COUNT, LT_EXPERT
};
static const char *const layer_suffix[LT_COUNT] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.bias",
    "self_attn.v_proj.bias", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};
static const char moe_router[] = "block_sparse_moe.gate.weight", moe_experts[] = "block_sparse_moe.experts.";
static const char *const expert_suffix[3] = {"w1.weight", "w3.weight", "w2.weight"}; /* gate, up, down */

static int layer_slots(const rh_config *c) { return LT_COUNT + (c->n_experts ? 1 + 3 * c->n_experts : 0); }
static int slot_layer(const rh_config *c, int s) { return (s - SLOT_GLOBALS) / layer_slots(c); }
static int slot_kind(const rh_config *c, int s) { return (s - SLOT_GLOBALS) % layer_slots(c); }

/* A decimal number below lim without leading zeros at *p (advanced past it), or -1. */
static long name_index(const char **p, long lim) {
    long v = 0;
    const char *q = *p;
    if (*q < '0' || *q > '9' || (q[0] == '0' && q[1] >= '0' && q[1] <= '9')) return -1;
    while (*q >= '0' && *q <= '9') {
        v = v * 10 + (*q++ - '0');
        if (v >= lim) return -1;
    }
    *p = q;
    return v;
}

/* Map a tensor name to its slot, or -1. */
static int tensor_slot(const char *name, const rh_config *c) {
    static const char pre[] = "model.layers.";
    const char *p;
    long layer, e;
    int i;
    if (strcmp(name, "model.embed_tokens.weight") == 0) return SLOT_EMBED;
    if (strcmp(name, "model.norm.weight") == 0) return SLOT_NORM;
    if (strcmp(name, "lm_head.weight") == 0) return SLOT_HEAD;
    if (strcmp(name, "rope.short_factor") == 0) return SLOT_ROPE_SHORT;
    if (strcmp(name, "rope.long_factor") == 0) return SLOT_ROPE_LONG;
    if (strncmp(name, pre, sizeof pre - 1) != 0) return -1;
    p = name + sizeof pre - 1;
    if ((layer = name_index(&p, c->n_layers)) < 0 || *p++ != '.') return -1;
    for (i = 0; i < LT_COUNT; i++)
        if (strcmp(p, layer_suffix[i]) == 0) return SLOT_GLOBALS + (int)layer * layer_slots(c) + i;
    if (!c->n_experts) return -1;
    if (strcmp(p, moe_router) == 0) return SLOT_GLOBALS + (int)layer * layer_slots(c) + LT_ROUTER;
    if (strncmp(p, moe_experts, sizeof moe_experts - 1) != 0) return -1;
    p += sizeof moe_experts - 1;
    if ((e = name_index(&p, c->n_experts)) < 0 || *p++ != '.') return -1;
    for (i = 0; i < 3; i++)
        if (strcmp(p, expert_suffix[i]) == 0) return SLOT_GLOBALS + (int)layer * layer_slots(c) + LT_EXPERT + 3 * (int)e + i;
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
    if (slot == SLOT_ROPE_SHORT || slot == SLOT_ROPE_LONG) {
        if (c->rope_scaling != RH_ROPE_LONGROPE) return 0;
        shape[0] = (uint64_t)rope_pairs(c); return 1;
    }
    if (slot_kind(c, slot) == LT_ROUTER) { shape[0] = (uint64_t)c->n_experts; shape[1] = c->dim; return 2; }
    if (slot_kind(c, slot) >= LT_EXPERT) {
        int part = (slot_kind(c, slot) - LT_EXPERT) % 3;
        shape[0] = part == 2 ? (uint64_t)c->dim : (uint64_t)c->hidden_dim;
        shape[1] = part == 2 ? (uint64_t)c->hidden_dim : (uint64_t)c->dim;
        return 2;
    }
    switch (slot_kind(c, slot)) {
    case LT_ATTN_NORM: case LT_FFN_NORM: shape[0] = c->dim; return 1;
    case LT_Q: shape[0] = q; shape[1] = c->dim; return 2;
    case LT_K: case LT_V: shape[0] = kv; shape[1] = c->dim; return 2;
    case LT_QB: if (!c->qkv_bias) return 0; shape[0] = q; return 1;
    case LT_KB: case LT_VB: if (!c->qkv_bias) return 0; shape[0] = kv; return 1;
    case LT_O: shape[0] = c->dim; shape[1] = q; return 2;
    case LT_GATE: case LT_UP: if (c->n_experts) return 0; shape[0] = c->hidden_dim; shape[1] = c->dim; return 2;
    default: if (c->n_experts) return 0; shape[0] = c->dim; shape[1] = c->hidden_dim; return 2; /* LT_DOWN */
    }
}

static void slot_name(const rh_config *c, int slot, char *buf, size_t cap) {
    if (slot == SLOT_EMBED) snprintf(buf, cap, "model.embed_tokens.weight");
    else if (slot == SLOT_NORM) snprintf(buf, cap, "model.norm.weight");
    else if (slot == SLOT_HEAD) snprintf(buf, cap, "lm_head.weight");
    else if (slot == SLOT_ROPE_SHORT) snprintf(buf, cap, "rope.short_factor");
    else if (slot == SLOT_ROPE_LONG) snprintf(buf, cap, "rope.long_factor");
    else if (slot_kind(c, slot) < LT_COUNT)
        snprintf(buf, cap, "model.layers.%d.%s", slot_layer(c, slot), layer_suffix[slot_kind(c, slot)]);
    else if (slot_kind(c, slot) == LT_ROUTER) snprintf(buf, cap, "model.layers.%d.%s", slot_layer(c, slot), moe_router);
    else
        snprintf(buf, cap, "model.layers.%d.%s%d.%s", slot_layer(c, slot), moe_experts, (slot_kind(c, slot) - LT_EXPERT) / 3,
                 expert_suffix[(slot_kind(c, slot) - LT_EXPERT) % 3]);
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
    if ((int)c->rope_scaling < 0 || (int)c->rope_scaling > 3)
        CFG_BAD("unknown rope_scaling %d", (int)c->rope_scaling);
    if (c->rope_dim != 0 && (c->rope_dim < 2 || c->rope_dim > c->head_dim || c->rope_dim % 2 != 0))
        CFG_BAD("rope_dim %d must be 0 (all of head_dim) or even and in 2..head_dim %d", c->rope_dim, c->head_dim);
    if (c->rope_scaling == RH_ROPE_LONGROPE) {
        if (c->rope_original_max_ctx < 1) CFG_BAD("longrope needs rope_original_max_ctx >= 1");
        if (!(c->rope_attn_factor > 0.0f) || !isfinite(c->rope_attn_factor))
            CFG_BAD("longrope needs a finite rope_attn_factor > 0");
    }
    if (c->rope_scaling != RH_ROPE_NONE && c->rope_scaling != RH_ROPE_LONGROPE &&
        (!(c->rope_factor > 0.0f) || !isfinite(c->rope_factor)))
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
    if (c->sliding_window < 0 || c->sliding_window > RHW_MAX_CTX)
        CFG_BAD("sliding_window %d out of range 0..%d (0: no window)", c->sliding_window, RHW_MAX_CTX);
    if (c->sliding_window ? c->window_first_layer < 0 || c->window_first_layer >= c->n_layers : c->window_first_layer != 0)
        CFG_BAD("window_first_layer %d must be %s", c->window_first_layer,
                c->sliding_window ? "a layer (below n_layers)" : "0 without a sliding_window");
    if (c->n_experts < 0 || c->n_experts > RHW_MAX_EXPERTS)
        CFG_BAD("n_experts %d out of range 0..%d (0: a dense MLP)", c->n_experts, RHW_MAX_EXPERTS);
    if (c->n_experts && (c->n_experts_used < 1 || c->n_experts_used > c->n_experts))
        CFG_BAD("n_experts_used %d (experts per token) must be in 1..n_experts %d", c->n_experts_used, c->n_experts);
    if (!c->n_experts && c->n_experts_used != 0)
        CFG_BAD("n_experts_used %d must be 0 without n_experts", c->n_experts_used);
    return RH_OK;
#undef CFG_BAD
}

/* RoPE inverse frequencies as Hugging Face computes them (ROPE_INIT_FUNCTIONS), i < R:
 * inv_freq[i] = theta^(-2i/2R); linear: / factor; llama3: by wavelength (see below); longrope:
 * 1 / (ext[i] theta^(2i/2R)), ext the factor list given. */
static void rope_inv_freq(const rh_config *c, const float *ext, float *out) {
    int half = rope_pairs(c), i;
    for (i = 0; i < half; i++) {
        float inv = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)(2 * half)));
        if (c->rope_scaling == RH_ROPE_LONGROPE) {
            inv = (float)(1.0 / ((double)ext[i] * pow((double)c->rope_theta, (double)(2 * i) / (double)(2 * half))));
        } else if (c->rope_scaling == RH_ROPE_LINEAR) {
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

/* A metadata key, for finding duplicates by sorting (a pairwise scan is quadratic in the entries,
 * and a file can hold millions of them). */
typedef struct {
    const unsigned char *k;
    uint32_t n;
} rhw_key;

static int key_cmp(const void *a, const void *b) {
    const rhw_key *x = (const rhw_key *)a, *y = (const rhw_key *)b;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return memcmp(x->k, y->k, x->n);
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

/* ---- byte order: the file is little-endian; a big-endian host reads every header field and
 * tokenizer table through rd_u32 / rd_f32 (byte by byte), and gets the tensors as a copy of the
 * data region swapped once at load (m->host_data), never mapped in place.  Writers write
 * little-endian whatever the host. ---- */

/* Reverse the bytes of each w-byte element of p[0..n) (w = 2 or 4; n a multiple of w). */
static void rhw_swap(unsigned char *p, size_t n, size_t w) {
    size_t i;
    unsigned char t;
    for (i = 0; i + w <= n; i += w) {
        if (w == 4) { t = p[i]; p[i] = p[i + 3]; p[i + 3] = t; t = p[i + 1]; p[i + 1] = p[i + 2]; p[i + 2] = t; }
        else { t = p[i]; p[i] = p[i + 1]; p[i + 1] = t; }
    }
}

/* The tensor at file offset off (validated), in host byte order. */
static const unsigned char *rhw_tensor_host(const rh_model *m, uint64_t off) {
    return m->host_data ? m->host_data + (size_t)(off - m->data_off) : m->base + off;
}

void rh_model_close(rh_model *m) {
    if (!m) return;
    if (m->tok) tok_free(m->tok);
    if (m->base) {
        if (m->mapped) rh_unmap_file(m->base, m->size);
        else rh_aligned_free((void *)(uintptr_t)m->base);
    }
    rh_aligned_free(m->host_data);
    free(m->layers);
    free(m->experts);
    free(m->f32_small);
    free(m->inv_freq);
    free(m->inv_freq_long);
    free(m->path);
    free(m);
}

/* Validate the image m->base[0..m->size) and fill in the model.  Errors name m->path. */
static int model_load(rh_model *m, char *err, size_t cap) {
    const unsigned char *b = m->base;
    const char *fn = m->path;
    uint64_t fsize = m->size;
    rh_config *c = &m->cfg;
    uint32_t flags, n_tensors, i, version;
    uint64_t sec_off[4], sec_size[4], data_off, data_size, pos, dir_end, n_small = 0;
    static const char *const sec_name[4] = {"metadata section", "tokenizer section",
                                            "tensor directory", "data region"};
    int *slot_of = NULL, *tensor_of_slot = NULL, n_slots, rc = RH_EFORMAT, s, j;
    rhw_span *spans = NULL;
    rhw_key *keys = NULL;
    float *small;
#define BAD(...) do { char m_[1024]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        set_err(err, cap, "%s: %s", fn, m_); rc = RH_EFORMAT; goto fail; } while (0)

    if (fsize < RHW_HEADER) BAD("truncated: %llu bytes, smaller than the 256-byte header", (unsigned long long)fsize);
    if (memcmp(b, "RHWF", 4) != 0) BAD("bad magic (not a .rhw file)");
    version = rd_u32(b + 4);
    if (version < 1 || version > RH_FORMAT_VERSION) BAD("unsupported format version %u (expected 1..%d)", version, RH_FORMAT_VERSION);
    if (rd_u32(b + 8) != RHW_HEADER) BAD("header_bytes %u, expected 256", rd_u32(b + 8));
    if (rd_u32(b + 12) != 0 || rd_u32(b + 172) != 0) BAD("reserved header field is not zero");
    /* version 2's fields at 200..215 are reserved (zero) in version 1, version 3's at 216..223
     * in versions 1 and 2 */
    for (i = version >= 3 ? 224 : version >= 2 ? 216 : 200; i < RHW_HEADER; i++) if (b[i]) BAD("reserved header byte %u is not zero (version %u)", i, version);
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
        if (rd_u32(b + 52) > (version >= 2 ? 3u : 2u)) BAD("unknown rope_scaling %u (version %u)", rd_u32(b + 52), version);
        if (rd_u32(b + 208) > (uint32_t)INT_MAX) BAD("rope_dim %u is absurd", rd_u32(b + 208));
        if (rd_u32(b + 68) > (uint32_t)INT_MAX) BAD("rope_original_max_ctx %u is absurd", rd_u32(b + 68));
        if (rd_u32(b + 84) > RH_MAX_EOS) BAD("n_eos %u out of range 0..%d", rd_u32(b + 84), RH_MAX_EOS);
        if (rd_u32(b + 200) > (uint32_t)RHW_MAX_CTX) BAD("sliding_window %u out of range 0..%d", rd_u32(b + 200), RHW_MAX_CTX);
        if (rd_u32(b + 204) > (uint32_t)INT_MAX) BAD("window_first_layer %u is absurd", rd_u32(b + 204));
        if (rd_u32(b + 216) > RHW_MAX_EXPERTS) BAD("n_experts %u out of range 0..%d", rd_u32(b + 216), RHW_MAX_EXPERTS);
        if (rd_u32(b + 220) > RHW_MAX_EXPERTS) BAD("n_experts_used %u out of range 0..%d", rd_u32(b + 220), RHW_MAX_EXPERTS);
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
    c->sliding_window = (int)rd_u32(b + 200);
    c->window_first_layer = (int)rd_u32(b + 204);
    c->rope_dim = (int)rd_u32(b + 208);
    c->rope_attn_factor = rd_f32(b + 212);
    c->n_experts = (int)rd_u32(b + 216);
    c->n_experts_used = (int)rd_u32(b + 220);
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
    m->data_off = data_off;
    if (!host_is_le()) {
        if (data_size > (uint64_t)SIZE_MAX || !(m->host_data = (unsigned char *)rh_aligned_alloc(RHW_ALIGN, (size_t)data_size))) {
            set_err(err, cap, "%s: out of memory (a byte-swapped copy of %llu bytes of tensors)", fn, (unsigned long long)data_size);
            rc = RH_ENOMEM;
            goto fail;
        }
        memcpy(m->host_data, b + data_off, (size_t)data_size); /* swapped tensor by tensor below */
    }

    /* metadata */
    m->meta = NULL; m->meta_size = 0; m->n_meta = 0;
    if (sec_size[0]) {
        const unsigned char *p = b + sec_off[0];
        uint64_t n = sec_size[0], at = 4, e;
        uint32_t cnt;
        if (n < 4) BAD("metadata section truncated");
        cnt = rd_u32(p);
        if (cnt > n / 8) BAD("metadata n_entries %u cannot fit in %llu bytes", cnt, (unsigned long long)n);
        keys = (rhw_key *)malloc(sizeof *keys * (cnt ? cnt : 1));
        if (!keys) { set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail; }
        for (e = 0; e < cnt; e++) {
            uint32_t kl, vl;
            if (n - at < 4) BAD("metadata entry %llu truncated", (unsigned long long)e);
            kl = rd_u32(p + at); at += 4;
            if (kl > n - at) BAD("metadata entry %llu: key runs past the section", (unsigned long long)e);
            if (!meta_key_ok(p + at, kl)) BAD("metadata entry %llu: key must be 1..64 bytes of [a-z0-9_.]", (unsigned long long)e);
            keys[e].k = p + at;
            keys[e].n = kl;
            at += kl;
            if (n - at < 4) BAD("metadata entry %llu truncated", (unsigned long long)e);
            vl = rd_u32(p + at); at += 4;
            if (vl > n - at) BAD("metadata entry %llu: value runs past the section", (unsigned long long)e);
            at += vl;
        }
        if (at != n) BAD("metadata section has %llu trailing bytes", (unsigned long long)(n - at));
        qsort(keys, cnt, sizeof *keys, key_cmp);
        for (e = 1; e < cnt; e++)
            if (key_cmp(&keys[e - 1], &keys[e]) == 0)
                BAD("metadata key '%.*s' appears twice", (int)keys[e].n, (const char *)keys[e].k);
        free(keys);
        keys = NULL;
        m->meta = p + 4; m->meta_size = (size_t)(n - 4); m->n_meta = cnt;
    }

    /* tensor directory */
    n_tensors = rd_u32(b + 168);
    if (n_tensors == 0) BAD("no tensors");
    if (n_tensors > sec_size[2] / 33) BAD("n_tensors %u cannot fit in a %llu-byte directory", n_tensors, (unsigned long long)sec_size[2]);
    n_slots = SLOT_GLOBALS + c->n_layers * layer_slots(c);
    if (c->n_experts) {
        m->experts = (rh_wt *)calloc((size_t)c->n_layers * (size_t)c->n_experts * 3, sizeof(rh_wt));
        if (!m->experts) { set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail; }
    }
    slot_of = (int *)malloc(sizeof(int) * n_tensors);
    tensor_of_slot = (int *)malloc(sizeof(int) * (size_t)n_slots);
    spans = (rhw_span *)malloc(sizeof(rhw_span) * n_tensors);
    m->layers = (rh_layer *)calloc((size_t)c->n_layers, sizeof(rh_layer));
    if (!slot_of || !tensor_of_slot || !spans || !m->layers) { set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail; }
    for (s = 0; s < n_slots; s++) tensor_of_slot[s] = -1;
    for (i = 0; m->experts && i < (uint32_t)c->n_layers; i++) m->layers[i].we = m->experts + (size_t)i * (size_t)c->n_experts * 3;
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
        s = tensor_slot(name, c);
        if (s < 0) BAD("unknown tensor '%s'", name);
        if (tensor_of_slot[s] >= 0) BAD("tensor '%s' appears twice", name);
        want_nd = slot_shape(c, s, want);
        if (want_nd == 0)
            BAD("unexpected tensor '%s' (%s)", name, s == SLOT_HEAD ? "the tied_embeddings flag is set" :
                s == SLOT_ROPE_SHORT || s == SLOT_ROPE_LONG ? "rope_scaling is not longrope" :
                slot_kind(c, s) >= LT_GATE && slot_kind(c, s) <= LT_DOWN ? "n_experts is set: the MLP is a mixture of experts" :
                "the qkv_bias flag is not set");
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
        if (m->host_data) rhw_swap(m->host_data + (size_t)(off - data_off), (size_t)nbytes, dtype_size((rh_dtype)dt));
        {
            rh_wt w;
            w.p = rhw_tensor_host(m, off); w.dt = (rh_dtype)dt;
            w.rows = (int)shape[0]; w.cols = nd == 2 ? (int)shape[1] : 1;
            if (s == SLOT_EMBED) m->embed = w;
            else if (s == SLOT_HEAD) m->lm_head = w;
            else if (s >= SLOT_GLOBALS) {
                rh_layer *L = &m->layers[slot_layer(c, s)];
                int kind = slot_kind(c, s);
                if (kind >= LT_EXPERT) L->we[kind - LT_EXPERT] = w;
                switch (kind) {
                case LT_ROUTER: L->wr = w; break;
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
            slot_name(c, s, nm, sizeof nm);
            BAD("missing tensor '%s'", nm);
        }
    }
    qsort(spans, n_tensors, sizeof *spans, span_cmp);
    for (i = 1; i < n_tensors; i++)
        if (spans[i].off < spans[i - 1].end) {
            char a[128], bb[128];
            slot_name(c, slot_of[spans[i - 1].idx], a, sizeof a);
            slot_name(c, slot_of[spans[i].idx], bb, sizeof bb);
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
            k_cvt_scalar(dt, rhw_tensor_host(m, rd_u64(e + 4 + nl + 8 + 8ull * ndim)), small, (int)want[0]);
        }
        if (s == SLOT_NORM) m->final_norm = small;
        else if (s == SLOT_ROPE_SHORT) m->rope_short = small;
        else if (s == SLOT_ROPE_LONG) m->rope_long = small;
        else {
            rh_layer *L = &m->layers[slot_layer(c, s)];
            switch (slot_kind(c, s)) {
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

    m->inv_freq = (float *)malloc(sizeof(float) * (size_t)rope_pairs(c));
    if (c->rope_scaling == RH_ROPE_LONGROPE) m->inv_freq_long = (float *)malloc(sizeof(float) * (size_t)rope_pairs(c));
    if (!m->inv_freq || (c->rope_scaling == RH_ROPE_LONGROPE && !m->inv_freq_long)) {
        set_err(err, cap, "%s: out of memory", fn); rc = RH_ENOMEM; goto fail;
    }
    rope_inv_freq(c, m->rope_short, m->inv_freq);
    if (m->inv_freq_long) rope_inv_freq(c, m->rope_long, m->inv_freq_long);

    rc = tok_load(&m->tok, b + sec_off[1], (size_t)sec_size[1], c->vocab_size, fn, err, cap);
    if (rc != RH_OK) { if (rc > 0) rc = RH_EFORMAT; goto fail; }
    free(slot_of); free(tensor_of_slot); free(spans);
    return RH_OK;
fail:
    free(slot_of); free(tensor_of_slot); free(spans); free(keys);
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
    const unsigned char *p;
    size_t n;
    int rc;
    if (!out) { set_err(err, errcap, "rh_model_open: out is NULL"); return RH_EINVAL; }
    *out = NULL;
    if (!path) { set_err(err, errcap, "rh_model_open: path is NULL"); return RH_EINVAL; }
    if ((rc = rh_map_file(path, &p, &n, err, errcap)) != RH_OK) return rc;
    m = model_alloc(path);
    if (!m) { rh_unmap_file(p, n); set_err(err, errcap, "%s: out of memory", path); return RH_ENOMEM; }
    m->base = p;
    m->size = n;
    m->mapped = 1;
    rc = model_load(m, err, errcap);
    if (rc != RH_OK) { rh_model_close(m); return rc; }
    *out = m;
    return RH_OK;
}

/* Takes ownership of buf (64-byte aligned, from rh_aligned_alloc). */
static int model_from_buffer(void *buf, size_t size, const char *name, rh_model **out, char *err, size_t errcap) {
    rh_model *m = model_alloc(name ? name : "(memory)");
    int rc;
    if (!m) { rh_aligned_free(buf); set_err(err, errcap, "%s: out of memory", name ? name : "(memory)"); return RH_ENOMEM; }
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
    if (!(buf = rh_aligned_alloc(RHW_ALIGN, size))) { set_err(err, errcap, "%s: out of memory", name); return RH_ENOMEM; }
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
    /* the lowest version that holds the config: 1 unless a version 2 or 3 field is set */
    wr_u32(h + 4, cfg->n_experts ? 3u : cfg->sliding_window || cfg->window_first_layer || cfg->rope_dim || cfg->rope_scaling == RH_ROPE_LONGROPE ? 2u : 1u);
    wr_u32(h + 8, RHW_HEADER);
    wr_u32(h + 16, (uint32_t)cfg->dim); wr_u32(h + 20, (uint32_t)cfg->hidden_dim);
    wr_u32(h + 24, (uint32_t)cfg->n_layers); wr_u32(h + 28, (uint32_t)cfg->n_heads);
    wr_u32(h + 32, (uint32_t)cfg->n_kv_heads); wr_u32(h + 36, (uint32_t)cfg->head_dim);
    wr_u32(h + 40, (uint32_t)cfg->vocab_size); wr_u32(h + 44, (uint32_t)cfg->max_ctx);
    wr_f32(h + 48, cfg->rope_theta); wr_u32(h + 52, (uint32_t)cfg->rope_scaling);
    wr_f32(h + 56, cfg->rope_scaling == RH_ROPE_NONE || cfg->rope_scaling == RH_ROPE_LONGROPE ? 1.0f : cfg->rope_factor);
    wr_f32(h + 60, cfg->rope_low_freq_factor); wr_f32(h + 64, cfg->rope_high_freq_factor);
    wr_u32(h + 68, (uint32_t)cfg->rope_original_max_ctx); wr_f32(h + 72, cfg->norm_eps);
    flags = (cfg->qkv_bias ? RHW_FLAG_QKV_BIAS : 0) | (cfg->tied_embeddings ? RHW_FLAG_TIED : 0) | (cfg->add_bos ? RHW_FLAG_ADD_BOS : 0);
    wr_u32(h + 76, flags);
    wr_u32(h + 80, (uint32_t)cfg->bos_id); wr_u32(h + 84, (uint32_t)cfg->n_eos);
    for (i = 0; i < cfg->n_eos; i++) wr_u32(h + 88 + 4 * i, (uint32_t)cfg->eos_ids[i]);
    wr_u32(h + 200, (uint32_t)cfg->sliding_window); wr_u32(h + 204, (uint32_t)cfg->window_first_layer);
    wr_u32(h + 208, (uint32_t)cfg->rope_dim);
    wr_f32(h + 212, cfg->rope_scaling == RH_ROPE_LONGROPE ? cfg->rope_attn_factor : 0.0f);
    wr_u32(h + 216, (uint32_t)cfg->n_experts); wr_u32(h + 220, (uint32_t)cfg->n_experts_used);
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
        if (host_is_le()) {
            ok = fwrite(tensors[i].data, 1, (size_t)pl.nbytes[i], f) == (size_t)pl.nbytes[i];
        } else { /* host order -> little-endian, 64 KiB at a time */
            unsigned char chunk[65536];
            size_t done = 0, w = dtype_size(tensors[i].dtype);
            while (ok && done < pl.nbytes[i]) {
                size_t k = pl.nbytes[i] - done < sizeof chunk ? (size_t)(pl.nbytes[i] - done) : sizeof chunk;
                memcpy(chunk, (const unsigned char *)tensors[i].data + done, k);
                rhw_swap(chunk, k, w);
                ok = fwrite(chunk, 1, k, f) == k;
                done += k;
            }
        }
        at += pl.nbytes[i];
        if (ok && next > at) ok = fwrite(zeros, 1, (size_t)(next - at), f) == (size_t)(next - at);
        at = next;
    }
    if (ok && rh_file_sync(f) != 0) ok = 0;
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
    if (rh_file_replace(tmp, path) != 0) {
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
    n_slots = SLOT_GLOBALS + cfg->n_layers * layer_slots(cfg);
    t = (rh_tensor_in *)calloc((size_t)n_slots, sizeof *t);
    names = (char (*)[96])calloc((size_t)n_slots, sizeof *names);
    tok = random_tok_section(&tok_size);
    if (!t || !names || !tok) { rc = RH_ENOMEM; set_err(err, errcap, "%s: out of memory", fn); goto done; }
    for (slot = 0; slot < n_slots; slot++) {
        uint64_t shape[2];
        int nd = slot_shape(cfg, slot, shape);
        if (!nd) continue;
        slot_name(cfg, slot, names[n], sizeof names[n]);
        t[n].name = names[n];
        t[n].dtype = nd == 1 ? RH_F32 : dtype;
        t[n].ndim = nd;
        t[n].shape[0] = (int64_t)shape[0];
        t[n].shape[1] = nd == 2 ? (int64_t)shape[1] : 0;
        n++;
    }
    rc = plan_make(&pl, cfg, NULL, tok, tok_size, t, n, fn, err, errcap);
    if (rc != RH_OK) goto done;
    if ((uint64_t)pl.file_size > (uint64_t)SIZE_MAX || !(buf = rh_aligned_alloc(RHW_ALIGN, (size_t)pl.file_size))) {
        plan_free(&pl); rc = RH_ENOMEM; set_err(err, errcap, "%s: out of memory (%llu bytes)", fn, (unsigned long long)pl.file_size); goto done;
    }
    img = (unsigned char *)buf;
    memcpy(img, pl.prefix, (size_t)pl.data_offset);
    memset(img + pl.data_offset, 0, (size_t)(pl.file_size - pl.data_offset));
    for (i = 0; i < n; i++) {
        uint64_t cnt = pl.nbytes[i] / dtype_size(t[i].dtype), e;
        unsigned char *d = img + pl.offsets[i];
        int sl = tensor_slot(t[i].name, cfg), lt = sl >= SLOT_GLOBALS ? slot_kind(cfg, sl) : -1;
        /* norms = 1 (as initialised by HF), biases small, matrices ~ U(-1,1)/sqrt(fan_in) */
        float scale = t[i].ndim == 2 ? (sl == SLOT_EMBED ? 1.0f : (float)(1.0 / sqrt((double)t[i].shape[1]))) : 0.1f;
        int is_norm = sl == SLOT_NORM || lt == LT_ATTN_NORM || lt == LT_FFN_NORM || sl == SLOT_ROPE_SHORT || sl == SLOT_ROPE_LONG;
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
                for (b = 0; b < 4; b++) {
                    /* two roundings, each to float, on every host: a host that evaluates float
                     * arithmetic in double (s390x GCC) would otherwise round the sum once */
                    float v = (float)(int16_t)(uint16_t)(r >> (16 * b)) * scale;
                    tmp[q + b] = v + (is_norm ? 1.0f : 0.0f);
                }
            }
            k_store_row(t[i].dtype, tmp, d + e * dtype_size(t[i].dtype), nq);
        }
        if (!host_is_le()) rhw_swap(d, (size_t)pl.nbytes[i], dtype_size(t[i].dtype)); /* the image is the file */
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
 * 5. THE PLATFORM: SIMD kernels, thread pool, the OS layer (clocks, files: POSIX or Windows);
 *    the utilities (buffers, JSON, files)
 *
 * Every kernel has one SIMD body (written against the tiny vector layer below, so the AVX-512,
 * AVX2 and NEON builds share it) and a scalar twin used by `make SIMD=scalar` and by the tests.
 * Reduction order is part of each kernel's contract, so an output element has the same bits
 * whichever tile or thread computed it:
 *   - dot products in attention in decode: RH_VL lanes accumulate over k = 0, RH_VL, 2 RH_VL, ...
 *     (one FMA per lane per step), a fixed tree sums the lanes, then the k % RH_VL tail is added
 *     in order; the 3x4 / 1x4 tiles and the 1x1 edge all do so;
 *   - the decode GEMV (k_dot_w, weights of any dtype): the same with four accumulators that take
 *     the RH_VL blocks of k round robin, summed as (a0 + a1) + (a2 + a3) before the lane tree;
 *   - the packed GEMM (prefill, attention in prefill): one FMA chain per element over k = 0, 1,
 *     2, ... from zero, in full tiles and edge tiles alike;
 *   - the bf16 dot-product GEMM (prefill of bf16 weights, in RH_BF16DOT builds only: by default
 *     AVX512_BF16 targets without AVX512_FP16, see below): X is rounded to bf16 (nearest even)
 *     when it is packed, then each element is one chain over the k pairs q = 0, 1, 2, ... from
 *     zero that adds x[2q+1] w[2q+1], then x[2q] w[2q] (VDPBF16PS as Intel's SDM gives it:
 *     products exact, each addition rounded to nearest even, denormal inputs read as zero,
 *     denormal sums flushed), in full tiles and edge tiles alike.  It differs from the f32 path
 *     by the rounding of X (up to 2^-8 relative per product, what PyTorch's bf16 matmul does
 *     too) and by the pair order; for that it does two multiply-adds per lane per instruction
 *     and reads half the bytes of X and of the panel.  AMD's implementation need not round
 *     inside a pair as Intel's does, so the tests hold the SIMD kernel to its scalar twin
 *     within a tolerance, not bit for bit.
 * Only the caller's choice (prefill or decode) and, in RH_BF16DOT builds, the weight's dtype
 * pick between these, never the thread count or the tile an element falls in.
 *
 * What it may call: the C library, POSIX threads and the intrinsics of the build's target;
 * nothing above.  The utilities at its end (buffers, the JSON reader, files written atomically)
 * are declared at the top of the file for every section.
 * ============================================================================================= */
/* A prefetch hint for the cache line at address a (a uintptr_t: it may lie past an array's end,
 * and a prefetch never faults). */
#if defined(RH_AVX512) || defined(RH_AVX2)
#define V_PREFETCH(a) _mm_prefetch((const char *)(a), _MM_HINT_T0)
#elif defined(__GNUC__) || defined(__clang__)
#define V_PREFETCH(a) __builtin_prefetch((const void *)(a))
#else
#define V_PREFETCH(a) ((void)(a))
#endif
#ifndef RH_PF_BYTES
#define RH_PF_BYTES 4096
#endif

/* ---- the vector layer: RH_VL floats per register ---- */
#if defined(RH_AVX512)
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
#define V_DIV(a, b) _mm512_div_ps((a), (b))
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
#define V_DIV(a, b) _mm256_div_ps((a), (b))
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
#define V_DIV(a, b) vdivq_f32((a), (b))
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
static const char *dtype_name(rh_dtype t) { return (unsigned)t <= RH_BF16 ? rh_dtype_names[t] : "?"; }

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

/* w (dtype t) . x (f32): the decode GEMV, one weight row at a time, converting f16/bf16 in
 * registers.  Its order (the "GEMV order"): four RH_VL-lane accumulators take the whole k blocks
 * of RH_VL round robin (block b into accumulator b % 4), one FMA per lane per block; then
 * (a0 + a1) + (a2 + a3) is summed by v_hsum's tree and the k % RH_VL tail is added in order.
 * One row streams at a time with four independent FMA chains, which read 16-bit rows closer to
 * the memory's bandwidth than several rows interleaved; 16-bit rows are prefetched RH_PF_BYTES
 * ahead, f32 rows not (it measured faster for the first and slower for the second; README,
 * Speed). */
RH_UNUSED static float k_dot_w_scalar(rh_dtype t, const void *w, const float *x, int n) {
    const uint16_t *h = (const uint16_t *)w;
    float s = 0.0f;
    int i;
    if (t == RH_F32) return k_dot_scalar((const float *)w, x, n);
    if (t == RH_F16) for (i = 0; i < n; i++) s += k_f16_to_f32(h[i]) * x[i];
    else for (i = 0; i < n; i++) s += k_bf16_to_f32(h[i]) * x[i];
    return s;
}
#if defined(RH_VEC)
/* the GEMV order for one row, w's elements loaded through LD (an f32, f16 or bf16 load) */
#define K_DOT_W_BODY(LD, TAIL, W, ESZ)                                                                            \
    do {                                                                                                          \
        rh_v a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();                                          \
        int i = 0, q;                                                                                             \
        for (; i + 4 * RH_VL <= n; i += 4 * RH_VL) {                                                              \
            for (q = 0; (ESZ) == 2 && q < 4 * RH_VL * (ESZ); q += 64)                                             \
                V_PREFETCH((uintptr_t)(W) + (size_t)i * (ESZ) + RH_PF_BYTES + q);                                 \
            a0 = V_FMA(a0, V_LOAD(x + i), LD(i)); a1 = V_FMA(a1, V_LOAD(x + i + RH_VL), LD(i + RH_VL));            \
            a2 = V_FMA(a2, V_LOAD(x + i + 2 * RH_VL), LD(i + 2 * RH_VL));                                        \
            a3 = V_FMA(a3, V_LOAD(x + i + 3 * RH_VL), LD(i + 3 * RH_VL));                                        \
        }                                                                                                         \
        if (i + RH_VL <= n) { a0 = V_FMA(a0, V_LOAD(x + i), LD(i)); i += RH_VL; }                                 \
        if (i + RH_VL <= n) { a1 = V_FMA(a1, V_LOAD(x + i), LD(i)); i += RH_VL; }                                 \
        if (i + RH_VL <= n) { a2 = V_FMA(a2, V_LOAD(x + i), LD(i)); i += RH_VL; }                                 \
        s = v_hsum(V_ADD(V_ADD(a0, a1), V_ADD(a2, a3)));                                                          \
        for (; i < n; i++) s += x[i] * (TAIL);                                                                   \
    } while (0)
#define K_LD_F32(i) V_LOAD(f + (i))
#define K_LD_F16(i) V_LOAD_F16(h + (i))
#define K_LD_BF16(i) V_LOAD_BF16(h + (i))
#endif
static float k_dot_w(rh_dtype t, const void *w, const float *x, int n) {
#if defined(RH_VEC)
    const uint16_t *h = (const uint16_t *)w;
    const float *f = (const float *)w;
    float s;
    if (t == RH_F32) K_DOT_W_BODY(K_LD_F32, f[i], f, 4);
    else if (t == RH_F16) K_DOT_W_BODY(K_LD_F16, k_f16_to_f32(h[i]), h, 2);
    else K_DOT_W_BODY(K_LD_BF16, k_bf16_to_f32(h[i]), h, 2);
    return s;
#else
    return k_dot_w_scalar(t, w, x, n);
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

static void k_pack_scalar(const float *W, int ldw, int nr, int k, float *P) {
    int p, j;
    for (p = 0; p < k; p++)
        for (j = 0; j < RH_NR; j++) P[(size_t)p * RH_NR + j] = j < nr ? W[(size_t)j * ldw + p] : 0.0f;
}

#if defined(RH_AVX2) || defined(RH_AVX512)
/* 8 elements of a weight row (dtype dt) at element offset at, as f32 (exact) */
static RH_INLINE __m256 k_load8(rh_dtype dt, const void *W, size_t at) {
    __m128i h;
    if (dt == RH_F32) return _mm256_loadu_ps((const float *)W + at);
    h = _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)W + at));
    if (dt == RH_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
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
#if defined(RH_AVX2) || defined(RH_AVX512)
    if (nr == RH_NR) { /* 8 x 8 blocks through registers (the AVX-512 build too: RH_NR / 8 = 4 of them) */
        int h, c, r;
        for (p = 0; p + 8 <= k; p += 8)
            for (h = 0; h < RH_NR / 8; h++) {
                __m256 v[8];
                for (r = 0; r < 8; r++) v[r] = k_load8(dt, W, (size_t)(h * 8 + r) * ldw + (size_t)p);
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
/* Store a register tile (row r in c[2r], c[2r + 1]) into Y (mr <= RH_MR rows ldy apart, nr <=
 * RH_NR columns): straight when whole, through a buffer when partial.  k_tile and
 * k_tile_bf16dot end with it. */
static RH_INLINE void k_tile_store(float *Y, int ldy, int mr, int nr, const rh_v *c) {
    float t[RH_MR * RH_NR];
    int r;
    if (mr == RH_MR && nr == RH_NR) {
        for (r = 0; r < RH_MR; r++, Y += ldy) { V_STORE(Y, c[2 * r]); V_STORE(Y + RH_VL, c[2 * r + 1]); }
        return;
    }
    for (r = 0; r < RH_MR; r++) { V_STORE(t + r * RH_NR, c[2 * r]); V_STORE(t + r * RH_NR + RH_VL, c[2 * r + 1]); }
    for (r = 0; r < mr; r++) memcpy(Y + (size_t)r * ldy, t + r * RH_NR, sizeof(float) * (size_t)nr);
}
#endif

#if defined(RH_VEC)
/* Y (mr, nr) = (acc ? Y : 0) + X (mr, k) x panel P (k rows, ldp apart, RH_NR used), where
 * X[r][p] = X[p * cs + r * rs]: a packed tile Xp (k, RH_MR) is cs = RH_MR, rs = 1; mr rows of a
 * row-major matrix (already in cache, e.g. attention's Q and P blocks) are cs = 1, rs = ld. */
static RH_INLINE void k_tile(const float *X, size_t rs, size_t cs, const float *P, int ldp, int k, float *Y, int ldy,
                             int mr, int nr, int acc) {
    rh_v c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    float t[RH_MR * RH_NR];
    /* rows past mr read row mr - 1 (in bounds whatever the layout); they are never stored */
    const float *x0 = X, *x1 = X + (mr > 1 ? 1 : mr - 1) * rs, *x2 = X + (mr > 2 ? 2 : mr - 1) * rs,
                *x3 = X + (mr > 3 ? 3 : mr - 1) * rs, *x4 = X + (mr > 4 ? 4 : mr - 1) * rs,
                *x5 = X + (mr > 5 ? 5 : mr - 1) * rs;
    int p, i;
    if (!acc) {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = V_ZERO();
    } else if (mr == RH_MR && nr == RH_NR) {
        const float *y = Y;
        c00 = V_LOAD(y); c01 = V_LOAD(y + RH_VL); y += ldy; c10 = V_LOAD(y); c11 = V_LOAD(y + RH_VL); y += ldy;
        c20 = V_LOAD(y); c21 = V_LOAD(y + RH_VL); y += ldy; c30 = V_LOAD(y); c31 = V_LOAD(y + RH_VL); y += ldy;
        c40 = V_LOAD(y); c41 = V_LOAD(y + RH_VL); y += ldy; c50 = V_LOAD(y); c51 = V_LOAD(y + RH_VL);
    } else {
        memset(t, 0, sizeof t);
        for (i = 0; i < mr; i++) memcpy(t + i * RH_NR, Y + (size_t)i * ldy, sizeof(float) * (size_t)nr);
        c00 = V_LOAD(t); c01 = V_LOAD(t + RH_VL); c10 = V_LOAD(t + RH_NR); c11 = V_LOAD(t + RH_NR + RH_VL);
        c20 = V_LOAD(t + 2 * RH_NR); c21 = V_LOAD(t + 2 * RH_NR + RH_VL); c30 = V_LOAD(t + 3 * RH_NR);
        c31 = V_LOAD(t + 3 * RH_NR + RH_VL); c40 = V_LOAD(t + 4 * RH_NR); c41 = V_LOAD(t + 4 * RH_NR + RH_VL);
        c50 = V_LOAD(t + 5 * RH_NR); c51 = V_LOAD(t + 5 * RH_NR + RH_VL);
    }
    for (p = 0; p < k; p++) {
        size_t o = (size_t)p * cs;
        rh_v b0 = V_LOAD(P + (size_t)p * ldp), b1 = V_LOAD(P + (size_t)p * ldp + RH_VL), a;
        a = V_SET1(x0[o]); c00 = V_FMA(c00, a, b0); c01 = V_FMA(c01, a, b1);
        a = V_SET1(x1[o]); c10 = V_FMA(c10, a, b0); c11 = V_FMA(c11, a, b1);
        a = V_SET1(x2[o]); c20 = V_FMA(c20, a, b0); c21 = V_FMA(c21, a, b1);
        a = V_SET1(x3[o]); c30 = V_FMA(c30, a, b0); c31 = V_FMA(c31, a, b1);
        a = V_SET1(x4[o]); c40 = V_FMA(c40, a, b0); c41 = V_FMA(c41, a, b1);
        a = V_SET1(x5[o]); c50 = V_FMA(c50, a, b0); c51 = V_FMA(c51, a, b1);
    }
    {
        const rh_v c[2 * RH_MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
        k_tile_store(Y, ldy, mr, nr, c);
    }
}
#endif

/* Y (m, nr) = (acc ? Y : 0) + X P for a panel P of k rows ldp apart and X (m, k) read as
 * X[i][p] = X[(i / RH_MR) * ts + (i % RH_MR) * rs + p * cs], the layout k_tile takes, tile by tile.
 * Inlined into the two layouts below, so each gets its strides as constants where they are. */
static RH_INLINE void k_gemm_strided(const float *X, size_t ts, size_t rs, size_t cs, const float *P, int ldp, int k,
                                     float *Y, int ldy, int m, int nr, int acc) {
#if defined(RH_VEC)
    int t;
    for (t = 0; t * RH_MR < m; t++)
        k_tile(X + (size_t)t * ts, rs, cs, P, ldp, k, Y + (size_t)t * RH_MR * ldy, ldy,
               m - t * RH_MR < RH_MR ? m - t * RH_MR : RH_MR, nr, acc);
#else
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < nr; j++) {
            const float *x = X + (size_t)(i / RH_MR) * ts + (size_t)(i % RH_MR) * rs;
            float s = acc ? Y[(size_t)i * ldy + j] : 0.0f;
            for (p = 0; p < k; p++) s += x[(size_t)p * cs] * P[(size_t)p * ldp + j];
            Y[(size_t)i * ldy + j] = s;
        }
#endif
}

/* Packed tiles Xp (k_pack_x_tile) and a panel P of rows ldp apart (RH_NR for k_pack panels; a
 * row-major (k, ldp) matrix works as is when nr == RH_NR, e.g. V in attention). */
static void k_gemm_packed_acc(const float *Xp, const float *P, int ldp, int k, float *Y, int ldy, int m, int nr, int acc) {
    k_gemm_strided(Xp, (size_t)k * RH_MR, 1, RH_MR, P, ldp, k, Y, ldy, m, nr, acc);
}

/* X row-major (m, k), rows ldx apart: the packed GEMM's tile and FMA order without packing X, for
 * operands that already sit in L1 (attention's Q and probability blocks). */
static void k_gemm_rows_acc(const float *X, int ldx, const float *P, int ldp, int k, float *Y, int ldy, int m, int nr,
                            int acc) {
    k_gemm_strided(X, (size_t)RH_MR * ldx, (size_t)ldx, 1, P, ldp, k, Y, ldy, m, nr, acc);
}

static void k_gemm_packed(const float *Xp, const float *P, int k, float *Y, int ldy, int m, int nr) {
    k_gemm_packed_acc(Xp, P, RH_NR, k, Y, ldy, m, nr, 0);
}

/* ---- bf16 dot-product GEMM for prefill of bf16 weights (RH_BF16DOT builds; the scalar twin and
 * the packing are compiled everywhere for the tests).  Operands in bf16 pairs, one 32-bit word per
 * pair of k, element 2q in the low half and 2q + 1 in the high half (VDPBF16PS's lane layout):
 *   W panel P (kq, RH_NR) words, kq = ceil(k / 2):  P[q * RH_NR + j] = (W[j][2q], W[j][2q+1]);
 *   X tiles Xp (m/RH_MR, kq, RH_MR) words:  Xp[(t * kq + q) * RH_MR + r] = (X[i][2q], X[i][2q+1]),
 *                                         i = t * RH_MR + r, X rounded to bf16 (nearest even);
 * rows past m, columns past nr and the element past an odd k are bf16 zeros.  Half the bytes of
 * the f32 operands, so the f32 scratch (S->wpack) holds a panel; X gets its own (c->xpack16)
 * because one matmul may have f32 or f16 weights beside bf16 ones. ---- */

static uint32_t k_bf16_pair(uint16_t lo, uint16_t hi) { return (uint32_t)lo | (uint32_t)hi << 16; }

/* Pack bf16 weight rows W[0..nr) (ldw elements apart) into the pair panel P (ceil(k/2), RH_NR). */
RH_UNUSED static void k_pack_w_bf16pair(const uint16_t *W, size_t ldw, int nr, int k, uint32_t *P) {
    int q, j, kq = (k + 1) / 2, kf = k / 2; /* kf full pairs, then a half pair when k is odd */
    for (j = 0; j < RH_NR; j++) {
        const uint16_t *w = W + (size_t)j * ldw;
        if (j >= nr) {
            for (q = 0; q < kq; q++) P[(size_t)q * RH_NR + j] = 0;
            continue;
        }
        for (q = 0; q < kf; q++) P[(size_t)q * RH_NR + j] = k_bf16_pair(w[2 * q], w[2 * q + 1]);
        if (kf < kq) P[(size_t)kf * RH_NR + j] = k_bf16_pair(w[2 * kf], 0);
    }
}

/* Pack rows X[t*RH_MR ..] (m rows in all, ld ldx, f32) of tile t into the pair tiles Xp, each
 * (ceil(k/2), RH_MR) words, rounding to bf16 (nearest even, NaN stays NaN). */
RH_UNUSED static void k_pack_x_tile_bf16pair(const float *X, int ldx, int m, int k, int t, uint32_t *Xp) {
    int r, q, kq = (k + 1) / 2, kf = k / 2, r0 = t * RH_MR, nr = m - r0 < RH_MR ? m - r0 : RH_MR;
    uint32_t *d = Xp + (size_t)t * kq * RH_MR;
    for (r = 0; r < RH_MR; r++) {
        if (r < nr) {
            const float *x = X + (size_t)(r0 + r) * ldx;
            for (q = 0; q < kf; q++) d[(size_t)q * RH_MR + r] = k_bf16_pair(k_f32_to_bf16(x[2 * q]), k_f32_to_bf16(x[2 * q + 1]));
            if (kf < kq) d[(size_t)kf * RH_MR + r] = k_bf16_pair(k_f32_to_bf16(x[2 * kf]), 0);
        } else {
            for (q = 0; q < kq; q++) d[(size_t)q * RH_MR + r] = 0;
        }
    }
}

/* One VDPBF16PS step of one lane, as the SDM's pseudo-code gives it: acc + x w for bf16 x, w read
 * with denormals as zero (DAZ), the product exact (8 x 8 significand bits fit in f32's 24), one
 * rounding to nearest even (an FMA), a denormal result flushed to zero (FTZ).  MXCSR plays no
 * part.  (That is Intel's order and rounding; AMD's CPUs may differ in the internal rounding of a
 * pair, so the tests compare the SIMD kernel with this twin within a tolerance.) */
static float k_bf16dot_step(float acc, uint16_t x, uint16_t w) {
    float s;
    if ((x & 0x7f80u) == 0) x &= 0x8000u;
    if ((w & 0x7f80u) == 0) w &= 0x8000u;
    s = fmaf(k_bf16_to_f32(x), k_bf16_to_f32(w), acc);
    return s != 0.0f && fabsf(s) < FLT_MIN ? copysignf(0.0f, s) : s;
}

/* Y (m, nr) = Xp (m, k) x P: the scalar twin of k_gemm_bf16dot.  Per element, from zero, per pair
 * q: the high halves (k index 2q + 1) first, then the low halves (2q). */
RH_UNUSED static void k_gemm_bf16dot_scalar(const uint32_t *Xp, const uint32_t *P, int k, float *Y, int ldy, int m,
                                            int nr) {
    int i, j, q, kq = (k + 1) / 2;
    for (i = 0; i < m; i++)
        for (j = 0; j < nr; j++) {
            const uint32_t *xt = Xp + (size_t)(i / RH_MR) * kq * RH_MR + i % RH_MR;
            float s = 0.0f;
            for (q = 0; q < kq; q++) {
                uint32_t x = xt[(size_t)q * RH_MR], w = P[(size_t)q * RH_NR + j];
                s = k_bf16dot_step(s, (uint16_t)(x >> 16), (uint16_t)(w >> 16));
                s = k_bf16dot_step(s, (uint16_t)(x & 0xffffu), (uint16_t)(w & 0xffffu));
            }
            Y[(size_t)i * ldy + j] = s;
        }
}

#if defined(RH_BF16DOT_SIMD)
/* Y (mr, nr) = one pair tile X (kq, RH_MR) x pair panel P (kq, RH_NR), from zero: per pair, 2
 * loads of P (16 words = 32 bf16 each) and per row a 32-bit broadcast of its x pair feed 2
 * VDPBF16PS, 12 accumulators.  Rows past mr are the tile's zero padding, never stored. */
static void k_tile_bf16dot(const uint32_t *X, const uint32_t *P, int kq, float *Y, int ldy, int mr, int nr) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    int q;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm512_setzero_ps();
    for (q = 0; q < kq; q++) {
        const uint32_t *x = X + (size_t)q * RH_MR, *p = P + (size_t)q * RH_NR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)p);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(p + 16));
        __m512bh a;
        a = (__m512bh)_mm512_set1_epi32((int)x[0]); c00 = _mm512_dpbf16_ps(c00, a, b0); c01 = _mm512_dpbf16_ps(c01, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x[1]); c10 = _mm512_dpbf16_ps(c10, a, b0); c11 = _mm512_dpbf16_ps(c11, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x[2]); c20 = _mm512_dpbf16_ps(c20, a, b0); c21 = _mm512_dpbf16_ps(c21, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x[3]); c30 = _mm512_dpbf16_ps(c30, a, b0); c31 = _mm512_dpbf16_ps(c31, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x[4]); c40 = _mm512_dpbf16_ps(c40, a, b0); c41 = _mm512_dpbf16_ps(c41, a, b1);
        a = (__m512bh)_mm512_set1_epi32((int)x[5]); c50 = _mm512_dpbf16_ps(c50, a, b0); c51 = _mm512_dpbf16_ps(c51, a, b1);
    }
    {
        const rh_v c[2 * RH_MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
        k_tile_store(Y, ldy, mr, nr, c);
    }
}
#endif

/* Y (m, nr) = Xp (pair tiles of m rows, k) x P (pair panel of nr <= RH_NR rows), from zero. */
RH_UNUSED static void k_gemm_bf16dot(const uint32_t *Xp, const uint32_t *P, int k, float *Y, int ldy, int m, int nr) {
#if defined(RH_BF16DOT_SIMD)
    int t, kq = (k + 1) / 2;
    for (t = 0; t * RH_MR < m; t++)
        k_tile_bf16dot(Xp + (size_t)t * kq * RH_MR, P, kq, Y + (size_t)t * RH_MR * ldy, ldy,
                       m - t * RH_MR < RH_MR ? m - t * RH_MR : RH_MR, nr);
#else
    k_gemm_bf16dot_scalar(Xp, P, k, Y, ldy, m, nr);
#endif
}

/* ---- exp and softmax pieces ---- */

#if defined(RH_VEC)
/* 2^nc e^r with r = x - n ln2, n = round(x / ln2): Cody-Waite range reduction (ln2 in two parts,
 * the first taken n times, the second nc times), then a degree-6 polynomial for e^r.  nc is n,
 * or n clamped where 2^n would overflow (k_silu_mul). */
static rh_v v_exp_reduced(rh_v x, rh_v n, rh_v nc) {
    rh_v r, p;
    r = V_FMA(x, n, V_SET1(-0.693359375f));
    r = V_FMA(r, nc, V_SET1(2.12194440e-4f));
    p = V_SET1(1.9875691500e-4f);
    p = V_FMA(V_SET1(1.3981999507e-3f), p, r);
    p = V_FMA(V_SET1(8.3334519073e-3f), p, r);
    p = V_FMA(V_SET1(4.1665795894e-2f), p, r);
    p = V_FMA(V_SET1(1.6666665459e-1f), p, r);
    p = V_FMA(V_SET1(5.0000001201e-1f), p, r);
    p = V_FMA(r, p, V_MUL(r, r));
    p = V_ADD(p, V_SET1(1.0f));
    return V_MUL(p, v_pow2n(nc));
}
/* exp(x) for x <= 0 (softmax after max subtraction), |rel err| < 2e-7; x < -87 gives 0. */
static rh_v v_exp_neg(rh_v x) {
    rh_v n;
    x = V_MAX(x, V_SET1(-87.0f));
    n = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    return v_exp_reduced(x, n, n);
}
#endif

/* y[i] = exp(x[i] a - mx), the product rounded to float first, so that it equals scaling x in a
 * pass of its own (attention folds its 1/sqrt(d) in here; a = 1 leaves x as it is); returns the
 * sum of y (lane order like k_dot).  x[i] a <= mx. */
RH_UNUSED static float k_exp_sum_scalar(const float *x, float a, float mx, float *y, int n) {
    float s = 0.0f;
    int i;
    for (i = 0; i < n; i++) {
        float v = x[i] * a; /* a statement of its own: never contracted into an FMA */
        y[i] = expf(v - mx);
        s += y[i];
    }
    return s;
}
static float k_exp_sum(const float *x, float a, float mx, float *y, int n) {
#if defined(RH_VEC)
    rh_v acc = V_ZERO(), m = V_SET1(mx), va = V_SET1(a);
    int i = 0;
    float s;
    for (; i + RH_VL <= n; i += RH_VL) {
        rh_v e = v_exp_neg(V_SUB(V_MUL(V_LOAD(x + i), va), m));
        V_STORE(y + i, e);
        acc = V_ADD(acc, e);
    }
    s = v_hsum(acc);
    for (; i < n; i++) {
        float v = x[i] * a;
        y[i] = expf(v - mx);
        s += y[i];
    }
    return s;
#else
    return k_exp_sum_scalar(x, a, mx, y, n);
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

/* ---- the SiLU gate of the MLP, and attention's probability-weighted sum of V in decode ---- */

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
        /* exp(-x) for -x >= -87: v_exp_neg's reduction, with 2^n capped at 2^127 for large -x */
        t = V_MAX(t, V_SET1(-87.0f));
        {
            rh_v n2 = V_ROUND(V_MUL(t, V_SET1(1.44269504088896341f)));
            rh_v nc = V_SUB(V_ZERO(), V_MAX(V_SUB(V_ZERO(), n2), V_SET1(-127.0f))); /* min(n2, 127) */
            e = v_exp_reduced(t, n2, nc);
        }
        x = V_DIV(x, V_ADD(V_SET1(1.0f), e));
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
/* o (d) += p V for one row (q, u NULL), or for two rows that share V also u += q V, each row's
 * operations the same as alone (k_axpy's, row by row); side by side, the two rows' chains hide
 * each other's latency (decode's query heads of one KV head see the same keys) */
static void k_pv(const float *p, const float *q, const float *V, int nk, int d, float *o, float *u) {
#if defined(RH_VEC)
    int c0 = 0, j;
    for (; c0 + 4 * RH_VL <= d; c0 += 4 * RH_VL) {
        rh_v a0 = V_LOAD(o + c0), a1 = V_LOAD(o + c0 + RH_VL), a2 = V_LOAD(o + c0 + 2 * RH_VL), a3 = V_LOAD(o + c0 + 3 * RH_VL);
        rh_v e0 = V_ZERO(), e1 = V_ZERO(), e2 = V_ZERO(), e3 = V_ZERO();
        if (u) { e0 = V_LOAD(u + c0); e1 = V_LOAD(u + c0 + RH_VL); e2 = V_LOAD(u + c0 + 2 * RH_VL); e3 = V_LOAD(u + c0 + 3 * RH_VL); }
        for (j = 0; j < nk; j++) {
            const float *v = V + (size_t)j * d + c0;
            rh_v pj = V_SET1(p[j]), v0 = V_LOAD(v), v1 = V_LOAD(v + RH_VL), v2 = V_LOAD(v + 2 * RH_VL), v3 = V_LOAD(v + 3 * RH_VL);
            a0 = V_FMA(a0, pj, v0); a1 = V_FMA(a1, pj, v1); a2 = V_FMA(a2, pj, v2); a3 = V_FMA(a3, pj, v3);
            if (u) {
                rh_v qj = V_SET1(q[j]);
                e0 = V_FMA(e0, qj, v0); e1 = V_FMA(e1, qj, v1); e2 = V_FMA(e2, qj, v2); e3 = V_FMA(e3, qj, v3);
            }
        }
        V_STORE(o + c0, a0); V_STORE(o + c0 + RH_VL, a1); V_STORE(o + c0 + 2 * RH_VL, a2); V_STORE(o + c0 + 3 * RH_VL, a3);
        if (u) { V_STORE(u + c0, e0); V_STORE(u + c0 + RH_VL, e1); V_STORE(u + c0 + 2 * RH_VL, e2); V_STORE(u + c0 + 3 * RH_VL, e3); }
    }
    if (c0 < d) {
        /* the last d - c0 < 4 RH_VL columns, with k_axpy's operations (an FMA per lane of the whole
         * blocks, a multiply then an add per column of the tail) but o held in registers (named
         * ones: an array indexed by the block number would live in memory, and each row would
         * wait on a store and a load): the tail is loaded as a whole vector, its lanes past d read
         * the next row's columns and are never stored; the rows from jv on, whose vector would
         * pass the block's end, go column by column */
        rh_v b0 = V_ZERO(), b1 = V_ZERO(), b2 = V_ZERO(), bt = V_ZERO(), f0 = V_ZERO(), f1 = V_ZERO(), f2 = V_ZERO(),
             ft = V_ZERO();
        float tb[RH_VL], tu[RH_VL];
        int nb = (d - c0) / RH_VL, t0 = c0 + nb * RH_VL, tail = d - t0, i, jv = nk;
        if (nb > 0) { b0 = V_LOAD(o + c0); if (u) f0 = V_LOAD(u + c0); }
        if (nb > 1) { b1 = V_LOAD(o + c0 + RH_VL); if (u) f1 = V_LOAD(u + c0 + RH_VL); }
        if (nb > 2) { b2 = V_LOAD(o + c0 + 2 * RH_VL); if (u) f2 = V_LOAD(u + c0 + 2 * RH_VL); }
        if (tail) {
            long room = (long)nk * d - t0 - RH_VL; /* row j's vector fits when j d <= room */
            jv = room < 0 ? 0 : (int)(room / d) + 1 < nk ? (int)(room / d) + 1 : nk;
            memset(tb, 0, sizeof tb);
            memcpy(tb, o + t0, sizeof(float) * (size_t)tail);
            bt = V_LOAD(tb);
            memset(tu, 0, sizeof tu);
            if (u) memcpy(tu, u + t0, sizeof(float) * (size_t)tail);
            ft = V_LOAD(tu);
        }
        for (j = 0; j < nk; j++) {
            const float *v = V + (size_t)j * d;
            rh_v pj = V_SET1(p[j]), qj = u ? V_SET1(q[j]) : V_ZERO();
            if (nb > 0) { rh_v w = V_LOAD(v + c0); b0 = V_FMA(b0, pj, w); if (u) f0 = V_FMA(f0, qj, w); }
            if (nb > 1) { rh_v w = V_LOAD(v + c0 + RH_VL); b1 = V_FMA(b1, pj, w); if (u) f1 = V_FMA(f1, qj, w); }
            if (nb > 2) { rh_v w = V_LOAD(v + c0 + 2 * RH_VL); b2 = V_FMA(b2, pj, w); if (u) f2 = V_FMA(f2, qj, w); }
            if (!tail) continue;
            if (j < jv) {
                rh_v w = V_LOAD(v + t0);
                bt = V_ADD(bt, V_MUL(pj, w));
                if (u) ft = V_ADD(ft, V_MUL(qj, w));
            } else {
                V_STORE(tb, bt);
                for (i = 0; i < tail; i++) tb[i] += p[j] * v[t0 + i];
                bt = V_LOAD(tb);
                if (u) {
                    V_STORE(tu, ft);
                    for (i = 0; i < tail; i++) tu[i] += q[j] * v[t0 + i];
                    ft = V_LOAD(tu);
                }
            }
        }
        if (nb > 0) { V_STORE(o + c0, b0); if (u) V_STORE(u + c0, f0); }
        if (nb > 1) { V_STORE(o + c0 + RH_VL, b1); if (u) V_STORE(u + c0 + RH_VL, f1); }
        if (nb > 2) { V_STORE(o + c0 + 2 * RH_VL, b2); if (u) V_STORE(u + c0 + 2 * RH_VL, f2); }
        if (tail) {
            V_STORE(tb, bt);
            memcpy(o + t0, tb, sizeof(float) * (size_t)tail);
            if (u) {
                V_STORE(tu, ft);
                memcpy(u + t0, tu, sizeof(float) * (size_t)tail);
            }
        }
    }
#else
    k_pv_scalar(p, V, nk, d, o);
    if (u) k_pv_scalar(q, V, nk, d, u);
#endif
}

/* ---- what this build is ---- */
#if defined(RH_SOURCE_HASH)
#define RH_BUILD_SOURCE "source " RH_SOURCE_HASH
#else
#define RH_BUILD_SOURCE "built " __DATE__ " " __TIME__
#endif
#if defined(__clang__)
#define RH_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define RH_COMPILER "gcc " __VERSION__
#else
#define RH_COMPILER "a C99 compiler"
#endif
#if defined(__FAST_MATH__)
#define RH_BUILD_MATH ", -ffast-math"
#else
#define RH_BUILD_MATH ""
#endif
const char *rh_kernels(void) { return RH_SIMD_NAME; }
const char *rh_build(void) {
    return "retrieval_heads " RH_VERSION ", kernels " RH_SIMD_NAME RH_BUILD_MATH ", " RH_COMPILER ", " RH_BUILD_SOURCE;
}

/* ---- the operating system: clocks, CPUs, memory, mapped files, files replaced durably, paths.
 * POSIX (Linux, the BSDs, macOS), or Windows where _WIN32 is defined (built and tested with
 * MinGW-w64 and its winpthreads, under Wine; MSVC untried: it lacks <dirent.h>), chosen at
 * compile time.  Everything else in the file reaches the OS only through these, stdio,
 * <dirent.h>, stat(), access() and isatty() (which MinGW has), pthreads, and the command line's
 * Linux-only look at /proc/self/exe. ---- */
#if defined(_WIN32)
RH_UNUSED static double rh_now(void) {
    LARGE_INTEGER freq, t;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart / (double)freq.QuadPart;
}
RH_UNUSED static double rh_cpu_time(void) {
    FILETIME c, e, k, u; /* 100 ns units */
    if (!GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u)) return 0.0;
    return 1e-7 * ((double)(((uint64_t)k.dwHighDateTime << 32) | k.dwLowDateTime) +
                   (double)(((uint64_t)u.dwHighDateTime << 32) | u.dwLowDateTime));
}
static int rh_n_cpus(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwNumberOfProcessors < 1 ? 1 : si.dwNumberOfProcessors > 256 ? 256 : (int)si.dwNumberOfProcessors;
}
static double rh_memory_limit(void) {
    MEMORYSTATUSEX ms;
    ms.dwLength = sizeof ms;
    return GlobalMemoryStatusEx(&ms) ? (double)ms.ullTotalPhys : 0.0;
}
static int rh_utc(time_t t, struct tm *out) { return gmtime_s(out, &t) == 0; }
static void *rh_aligned_alloc(size_t align, size_t n) { return _aligned_malloc(n ? n : 1, align); }
static void rh_aligned_free(void *p) { _aligned_free(p); }
#else
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
static int rh_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}
/* Physical memory in bytes, lowered to RLIMIT_AS when that is finite; 0 when unknown.
 * (_SC_PHYS_PAGES is not POSIX but Linux, the BSDs and macOS have it: guarded.) */
static double rh_memory_limit(void) {
    double avail = 0;
    struct rlimit rl;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0) avail = (double)pages * (double)psz;
#endif
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (avail == 0 || (double)rl.rlim_cur < avail))
        avail = (double)rl.rlim_cur;
    return avail;
}
static int rh_utc(time_t t, struct tm *out) { return gmtime_r(&t, out) != NULL; }
static void *rh_aligned_alloc(size_t align, size_t n) {
    void *p = NULL;
    return posix_memalign(&p, align, n ? n : 1) == 0 ? p : NULL;
}
static void rh_aligned_free(void *p) { free(p); }
#endif

/* Length of the folder part of path, its last separator included ("a/b" -> 2, "b" -> 0).  On
 * Windows '\\' separates too, and a drive prefix ("C:b") is a folder part. */
static size_t rh_path_dir_len(const char *path) {
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] != '/'
#if defined(_WIN32)
           && path[n - 1] != '\\' && !(n == 2 && path[1] == ':')
#endif
    )
        n--;
    return n;
}

/* Map the whole regular file at path read-only: *p, *n.  RH_EIO / RH_EFORMAT (shorter than a
 * .rhw header) with a message naming the file. */
static int rh_map_file(const char *path, const unsigned char **p, size_t *n, char *err, size_t errcap) {
#if defined(_WIN32)
    HANDLE f, map;
    LARGE_INTEGER sz;
    void *v;
    DWORD attr = GetFileAttributesA(path);
    *p = NULL;
    *n = 0;
    if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY)) {
        set_err(err, errcap, "%s: not a regular file", path);
        return RH_EIO;
    }
    /* FILE_SHARE_DELETE: the file may be replaced (renamed over) while it is mapped, as on POSIX */
    f = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        set_err(err, errcap, "%s: cannot open: %s", path,
                e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? strerror(ENOENT) : e == ERROR_ACCESS_DENIED ? strerror(EACCES) : "Windows error");
        return RH_EIO;
    }
    if (!GetFileSizeEx(f, &sz) || GetFileType(f) != FILE_TYPE_DISK) {
        set_err(err, errcap, "%s: not a regular file", path);
        CloseHandle(f);
        return RH_EIO;
    }
    if ((uint64_t)sz.QuadPart < RHW_HEADER) {
        set_err(err, errcap, "%s: truncated: %lld bytes, smaller than the 256-byte header", path, (long long)sz.QuadPart);
        CloseHandle(f);
        return RH_EFORMAT;
    }
    if ((uint64_t)sz.QuadPart > (uint64_t)SIZE_MAX) { set_err(err, errcap, "%s: too large to map", path); CloseHandle(f); return RH_EIO; }
    map = CreateFileMappingA(f, NULL, PAGE_READONLY, 0, 0, NULL);
    CloseHandle(f);
    v = map ? MapViewOfFile(map, FILE_MAP_READ, 0, 0, 0) : NULL;
    if (map) CloseHandle(map); /* the view keeps the mapping */
    if (!v) { set_err(err, errcap, "%s: cannot map (Windows error %lu)", path, (unsigned long)GetLastError()); return RH_EIO; }
    *p = (const unsigned char *)v;
    *n = (size_t)sz.QuadPart;
    return RH_OK;
#else
    struct stat st;
    int fd;
    void *v;
    *p = NULL;
    *n = 0;
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
    v = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (v == MAP_FAILED) { set_err(err, errcap, "%s: cannot map: %s", path, strerror(errno)); return RH_EIO; }
    *p = (const unsigned char *)v;
    *n = (size_t)st.st_size;
    return RH_OK;
#endif
}

/* The command line's text goes out with "\n" line ends on every OS (its outputs are compared
 * byte for byte across platforms); Windows' C runtime would write "\r\n" in text mode. */
RH_UNUSED static void rh_stdio_binary(void) {
#if defined(_WIN32)
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
#endif
}

static void rh_unmap_file(const unsigned char *p, size_t n) {
#if defined(_WIN32)
    (void)n;
    UnmapViewOfFile((const void *)p);
#else
    munmap((void *)(uintptr_t)p, n);
#endif
}

/* Flush f's data to the disk (not only to the OS); 0 on success.  f stays open. */
static int rh_file_sync(FILE *f) {
    if (fflush(f) != 0) return -1;
#if defined(_WIN32)
    return FlushFileBuffers((HANDLE)_get_osfhandle(_fileno(f))) ? 0 : -1;
#else
    return fsync(fileno(f));
#endif
}

/* Replace path by tmp (a complete file already flushed to disk), then make the rename itself
 * durable: on POSIX by syncing the folder (a crash right after rename() may otherwise leave
 * the old name's entry on disk); on Windows MOVEFILE_WRITE_THROUGH returns only once the move
 * is on disk.  Windows refuses to replace a file another process holds open (a viewer, a
 * script polling a run's records), where POSIX renames over it: the move is tried again for
 * about 2 s before it counts as failed.  0 on success, else -1 with errno set. */
static int rh_file_replace(const char *tmp, const char *path) {
#if defined(_WIN32)
    int tries;
    for (tries = 0;; tries++) {
        DWORD e;
        int busy;
        if (MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
        e = GetLastError();
        busy = e == ERROR_ACCESS_DENIED || e == ERROR_SHARING_VIOLATION || e == ERROR_LOCK_VIOLATION;
        if (!busy || tries == 200) {
            errno = busy ? EACCES : EIO;
            return -1;
        }
        Sleep(tries < 10 ? 1 : 10);
    }
#else
    size_t dl = rh_path_dir_len(path);
    char dir[4096];
    int fd, rc = 0;
    if (rename(tmp, path) != 0) return -1;
    if (dl >= sizeof dir) return 0; /* an absurdly long folder: renamed, not synced */
    if (dl) memcpy(dir, path, dl);
    else dir[dl++] = '.';
    dir[dl] = 0;
    fd = open(dir, O_RDONLY);
    if (fd < 0) return 0; /* a folder we may write into but not read: nothing more we can do */
    /* some file systems cannot sync a folder (EINVAL, ENOTSUP): the rename stands */
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EBADF) rc = -1;
    close(fd);
    return rc;
#endif
}

/* ---- thread pool: created once per context; the caller is thread 0.  Threads claim tasks
 * one at a time from a shared counter, so a thread slowed by a busy core does fewer tasks
 * instead of making the others wait.  A waiting thread spins for at most RH_SPIN_S, then sleeps on
 * a condition variable: decode dispatches a job every 0.1-0.5 ms, about as long as a sleeping
 * worker can take to wake, while spinning without end starves a second process on the machine.
 * Tasks write disjoint outputs and use only their thread's scratch, so which thread ran a task
 * never changes a bit of the result. ---- */

#define RH_SPIN_S 50e-6

/* Shared pool fields a spinning thread reads without the mutex go through these; without GNU
 * atomics there is no spinning and every access is under the mutex. */
#if defined(__GNUC__) || defined(__clang__)
#define RH_SPINS 1
#define RH_ATOMIC_LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define RH_ATOMIC_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define RH_ATOMIC_DEC(x) __atomic_sub_fetch(&(x), 1, __ATOMIC_RELEASE)
#if defined(__x86_64__) || defined(__i386__)
#define RH_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define RH_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define RH_CPU_RELAX() ((void)0)
#endif
#else
#define RH_ATOMIC_STORE(x, v) ((x) = (v))
#define RH_ATOMIC_DEC(x) (--(x))
#endif


struct rh_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_go, cv_done;
    unsigned long gen;     /* job generation: workers wait for it to change */
    int remaining;         /* workers still running the current job */
    int next;              /* next unclaimed task of the current job */
    int quit;
    rh_task_fn fn;
    void *arg;
    int n_tasks;
};

typedef struct {
    rh_pool *pool;
    int id;
} rh_worker_arg;

static int pool_claim(rh_pool *p) {
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
#else
    int i;
    pthread_mutex_lock(&p->mu);
    i = p->next++;
    pthread_mutex_unlock(&p->mu);
    return i;
#endif
}

/* Spin until *gen != old or quit (a worker waiting for a job; gen given) or until *remaining
 * == 0 (the caller waiting for the workers; gen NULL), for at most RH_SPIN_S; the caller then
 * takes the mutex and sleeps if it must.  Without GNU atomics there is no spinning. */
static void pool_spin(const rh_pool *p, const unsigned long *gen, unsigned long old, const int *remaining) {
#if defined(RH_SPINS)
    double t0 = rh_now();
    int i;
    for (;;) {
        for (i = 0; i < 64; i++) {
            if (gen ? RH_ATOMIC_LOAD(*gen) != old || RH_ATOMIC_LOAD(p->quit) : RH_ATOMIC_LOAD(*remaining) == 0) return;
            RH_CPU_RELAX();
        }
        if (rh_now() - t0 > RH_SPIN_S) return;
    }
#else
    (void)p; (void)gen; (void)old; (void)remaining;
#endif
}

static void pool_run_share(rh_pool *p, int t) {
    int i;
    while ((i = pool_claim(p)) < p->n_tasks) p->fn(p->arg, i, t);
}

static void *pool_worker(void *v) {
    rh_worker_arg *wa = (rh_worker_arg *)v;
    rh_pool *p = wa->pool;
    int id = wa->id, last;
    unsigned long seen = 0;
    free(wa);
    for (;;) {
        pool_spin(p, &p->gen, seen, NULL);
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->cv_go, &p->mu);
        if (p->quit) { pthread_mutex_unlock(&p->mu); return NULL; }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_run_share(p, id);
        pthread_mutex_lock(&p->mu);
        last = RH_ATOMIC_DEC(p->remaining) == 0;
        pthread_mutex_unlock(&p->mu);
        if (last) pthread_cond_signal(&p->cv_done);
    }
}

static void pool_free(rh_pool *p) {
    int i;
    if (!p) return;
    if (p->th) {
        pthread_mutex_lock(&p->mu);
        RH_ATOMIC_STORE(p->quit, 1);
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
    if (p->n == 1) {
        int i;
        for (i = 0; i < n_tasks; i++) fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    p->next = 0;
    p->remaining = p->n - 1;
    RH_ATOMIC_STORE(p->gen, p->gen + 1); /* spinning workers read it unlocked */
    pthread_cond_broadcast(&p->cv_go);
    pthread_mutex_unlock(&p->mu);
    pool_run_share(p, 0);
    pool_spin(p, NULL, 0, &p->remaining);
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

int rh_enum_parse(const char *const *names, const char *s) {
    int i;
    if (!names || !s) return -1;
    for (i = 0; names[i]; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
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
static int host_is_le(void) {
    uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}



/* ============================================================================================
 * Shared helpers: growable byte buffer, files written atomically, Python-style float repr
 * ============================================================================================ */


static void rhm_buf_free(rhm_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static int rhm_buf_reserve(rhm_buf *b, size_t extra) {
    size_t need, cap;
    char *q;
    if (b->oom) return -1;
    if (extra > (size_t)-1 / 2 - b->n) {
        b->oom = 1;
        return -1;
    }
    need = b->n + extra + 1;
    if (need <= b->cap) return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    q = (char *)realloc(b->p, cap);
    if (!q) {
        b->oom = 1;
        return -1;
    }
    b->p = q;
    b->cap = cap;
    return 0;
}

static void rhm_buf_put(rhm_buf *b, const char *s, size_t n) {
    if (rhm_buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void rhm_buf_puts(rhm_buf *b, const char *s) { rhm_buf_put(b, s, strlen(s)); }

static void rhm_buf_printf(rhm_buf *b, const char *fmt, ...) {
    va_list ap;
    int k;
    char small[256];
    va_start(ap, fmt);
    k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof small) {
        rhm_buf_put(b, small, (size_t)k);
        return;
    }
    if (rhm_buf_reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* JSON string literal (RFC 8259): quotes, backslash and control bytes escaped; other bytes as
 * they are (UTF-8 passes through; invalid UTF-8 is escaped as \u00XX of the byte so the output
 * stays valid JSON). */
static void rhm_buf_json_str(rhm_buf *b, const char *s, size_t n) {
    size_t i;
    rhm_buf_put(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2];
            e[0] = '\\';
            e[1] = (char)c;
            rhm_buf_put(b, e, 2);
        } else if (c == '\n') {
            rhm_buf_puts(b, "\\n");
        } else if (c == '\t') {
            rhm_buf_puts(b, "\\t");
        } else if (c == '\r') {
            rhm_buf_puts(b, "\\r");
        } else if (c < 0x20 || c == 0x7f) {
            rhm_buf_printf(b, "\\u%04x", c);
        } else if (c < 0x80) {
            rhm_buf_put(b, (const char *)&s[i], 1);
        } else {
            /* copy a whole valid UTF-8 sequence, else escape the byte */
            int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            int k, ok = len > 0 && i + (size_t)len <= n;
            for (k = 1; ok && k < len; k++)
                if (((unsigned char)s[i + k] & 0xc0) != 0x80) ok = 0;
            if (ok && len == 3) {
                unsigned c1 = (unsigned char)s[i + 1];
                if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) ok = 0;
            }
            if (ok && len == 4) {
                unsigned c1 = (unsigned char)s[i + 1];
                if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) ok = 0;
            }
            if (ok) {
                rhm_buf_put(b, s + i, (size_t)len);
                i += (size_t)len - 1;
            } else {
                rhm_buf_printf(b, "\\u%04x", c);
            }
        }
    }
    rhm_buf_put(b, "\"", 1);
}

/* A double as Python's repr() writes it (json.dump uses repr): the shortest digit string that
 * reads back to the same double, fixed notation when the decimal exponent is in [-4, 16),
 * else d.ddde[+-]XX; a whole number in fixed notation gets ".0".  Non-finite values are written
 * as null (they never occur in scores).  The published score files were written this way, so
 * ours compare byte for byte. */
static void rhm_fmt_double(char *out, size_t cap, double x) {
    char tmp[40], digits[24];
    int prec, nd = 0, exp10 = 0, i;
    const char *p;
    if (!isfinite(x)) {
        snprintf(out, cap, "null");
        return;
    }
    if (x == 0) {
        snprintf(out, cap, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp: [-]d.ddde[+-]XX -> digits and decimal exponent */
    p = tmp;
    if (*p == '-') p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 20) digits[nd++] = *p;
    if (*p == 'e') exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--; /* %.0e..%.16e may leave zeros: drop them */
    digits[nd] = 0;
    {
        /* decpt: the value is 0.DIGITS x 10^decpt */
        int decpt = exp10 + 1;
        rhm_buf b = {0};
        if (x < 0) rhm_buf_put(&b, "-", 1);
        if (decpt > -4 && decpt <= 16) {
            if (decpt <= 0) {
                rhm_buf_puts(&b, "0.");
                for (i = 0; i < -decpt; i++) rhm_buf_put(&b, "0", 1);
                rhm_buf_puts(&b, digits);
            } else if (decpt >= nd) {
                rhm_buf_puts(&b, digits);
                for (i = nd; i < decpt; i++) rhm_buf_put(&b, "0", 1);
                rhm_buf_puts(&b, ".0");
            } else {
                rhm_buf_put(&b, digits, (size_t)decpt);
                rhm_buf_put(&b, ".", 1);
                rhm_buf_puts(&b, digits + decpt);
            }
        } else {
            rhm_buf_put(&b, digits, 1);
            if (nd > 1) {
                rhm_buf_put(&b, ".", 1);
                rhm_buf_puts(&b, digits + 1);
            }
            rhm_buf_printf(&b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        }
        snprintf(out, cap, "%s", b.p ? b.p : "null");
        rhm_buf_free(&b);
    }
}

static void rhm_buf_double(rhm_buf *b, double x) {
    char t[48];
    rhm_fmt_double(t, sizeof t, x);
    rhm_buf_puts(b, t);
}

/* Whole file into memory (NUL-terminated), at most max_bytes. */
static int rhm_read_file(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                         size_t errcap) {
    FILE *f;
    rhm_buf b = {0};
    char chunk[65536];
    size_t k;
    *data = NULL;
    *len = 0;
    f = fopen(path, "rb");
    if (!f) {
        set_err(err, errcap, "%s: cannot open: %s", path, strerror(errno));
        return RH_EIO;
    }
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.n + k > max_bytes) {
            fclose(f);
            rhm_buf_free(&b);
            set_err(err, errcap, "%s: larger than %zu bytes", path, max_bytes);
            return RH_ERANGE;
        }
        rhm_buf_put(&b, chunk, k);
    }
    if (ferror(f)) {
        fclose(f);
        rhm_buf_free(&b);
        set_err(err, errcap, "%s: read error", path);
        return RH_EIO;
    }
    fclose(f);
    if (b.oom) {
        rhm_buf_free(&b);
        set_err(err, errcap, "%s: out of memory", path);
        return RH_ENOMEM;
    }
    if (!b.p) rhm_buf_put(&b, "", 0);
    if (!b.p) {
        set_err(err, errcap, "%s: out of memory", path);
        return RH_ENOMEM;
    }
    *data = b.p;
    *len = b.n;
    return RH_OK;
}

/* Write to "<path>.tmp", flush it to disk, rename it over path, sync the folder: a reader, a
 * run killed midway or a machine that loses power sees the old file or the new one, never a
 * part (test/test_reliability.c kills runs at many points to check it). */
static int rhm_write_atomic(const char *path, const char *data, size_t len, char *err,
                            size_t errcap) {
    rhm_buf tp = {0};
    FILE *f;
    int ok;
    rhm_buf_printf(&tp, "%s.tmp", path);
    if (tp.oom) {
        set_err(err, errcap, "%s: out of memory", path);
        return RH_ENOMEM;
    }
    f = fopen(tp.p, "wb");
    if (!f) {
        set_err(err, errcap, "%s: cannot write: %s", tp.p, strerror(errno));
        rhm_buf_free(&tp);
        return RH_EIO;
    }
    ok = fwrite(data, 1, len, f) == len;
    ok = rh_file_sync(f) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rh_file_replace(tp.p, path) != 0) {
        set_err(err, errcap, "%s: cannot write: %s", path, strerror(errno));
        remove(tp.p);
        rhm_buf_free(&tp);
        return RH_EIO;
    }
    rhm_buf_free(&tp);
    return RH_OK;
}

/* ============================================================================================
 * A small JSON reader (RFC 8259) with bounds checks on every byte, a depth limit and no
 * recursion on untrusted nesting beyond RHJ_MAX_DEPTH.  Used for score files, needles JSONL and
 * our own per-test records.
 * ============================================================================================ */

#define RHJ_MAX_DEPTH 64


typedef struct {
    const char *s;
    size_t n, i;
    const char *name;
    char *err;
    size_t errcap;
} rhj_parser;

static void rhj_free(rhj *v) {
    int i;
    if (!v) return;
    free(v->str);
    if (v->items)
        for (i = 0; i < v->n; i++) rhj_free(&v->items[i]);
    free(v->items);
    if (v->keys)
        for (i = 0; i < v->n; i++) free(v->keys[i]);
    free(v->keys);
    free(v->keylens);
    memset(v, 0, sizeof *v);
}

static int rhj_fail(rhj_parser *p, const char *what) {
    set_err(p->err, p->errcap, "%s: invalid JSON at byte %zu: %s", p->name, p->i, what);
    return RH_EFORMAT;
}

static void rhj_ws(rhj_parser *p) {
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int rhj_hex4(rhj_parser *p, unsigned *out) {
    unsigned v = 0;
    int k;
    if (p->n - p->i < 4) return -1;
    for (k = 0; k < 4; k++) {
        char c = p->s[p->i + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    p->i += 4;
    *out = v;
    return 0;
}

static void rhj_put_utf8(rhm_buf *b, unsigned cp) {
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        rhm_buf_put(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        rhm_buf_put(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        rhm_buf_put(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        rhm_buf_put(b, u, 4);
    }
}

/* p->i at the opening quote. */
static int rhj_string(rhj_parser *p, char **out, size_t *outlen) {
    rhm_buf b = {0};
    p->i++;
    for (;;) {
        unsigned char c;
        if (p->i >= p->n) {
            rhm_buf_free(&b);
            return rhj_fail(p, "unterminated string");
        }
        c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) {
            rhm_buf_free(&b);
            return rhj_fail(p, "control character in string");
        }
        if (c != '\\') {
            rhm_buf_put(&b, (const char *)&p->s[p->i], 1);
            p->i++;
            continue;
        }
        p->i++;
        if (p->i >= p->n) {
            rhm_buf_free(&b);
            return rhj_fail(p, "unterminated escape");
        }
        c = (unsigned char)p->s[p->i++];
        switch (c) {
        case '"': rhm_buf_put(&b, "\"", 1); break;
        case '\\': rhm_buf_put(&b, "\\", 1); break;
        case '/': rhm_buf_put(&b, "/", 1); break;
        case 'b': rhm_buf_put(&b, "\b", 1); break;
        case 'f': rhm_buf_put(&b, "\f", 1); break;
        case 'n': rhm_buf_put(&b, "\n", 1); break;
        case 'r': rhm_buf_put(&b, "\r", 1); break;
        case 't': rhm_buf_put(&b, "\t", 1); break;
        case 'u': {
            unsigned cp, lo;
            if (rhj_hex4(p, &cp)) {
                rhm_buf_free(&b);
                return rhj_fail(p, "bad \\u escape");
            }
            if (cp >= 0xd800 && cp < 0xdc00) {
                /* a high surrogate needs its low half; alone it becomes U+FFFD (as lenient
                 * decoders do: Python would keep a lone surrogate, unrepresentable in UTF-8) */
                if (p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                    size_t save = p->i;
                    p->i += 2;
                    if (!rhj_hex4(p, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else {
                        p->i = save;
                        cp = 0xfffd;
                    }
                } else {
                    cp = 0xfffd;
                }
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                cp = 0xfffd;
            }
            rhj_put_utf8(&b, cp);
            break;
        }
        default:
            rhm_buf_free(&b);
            return rhj_fail(p, "bad escape");
        }
    }
    if (!b.p) rhm_buf_put(&b, "", 0);
    if (b.oom || !b.p) {
        rhm_buf_free(&b);
        return rhj_fail(p, "out of memory");
    }
    *out = b.p;
    *outlen = b.n;
    return RH_OK;
}

static int rhj_number(rhj_parser *p, double *out) {
    size_t st = p->i, k;
    char tmp[64];
    char *end;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n) return rhj_fail(p, "bad number");
    if (p->s[p->i] == '0') {
        p->i++;
    } else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    } else {
        return rhj_fail(p, "bad number");
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return rhj_fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return rhj_fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    k = p->i - st;
    if (k >= sizeof tmp) return rhj_fail(p, "number too long");
    memcpy(tmp, p->s + st, k);
    tmp[k] = 0;
    *out = strtod(tmp, &end);
    if (end != tmp + k) return rhj_fail(p, "bad number");
    if (!isfinite(*out)) return rhj_fail(p, "number out of range");
    return RH_OK;
}

static int rhj_value(rhj_parser *p, rhj *v, int depth) {
    int rc;
    memset(v, 0, sizeof *v);
    if (depth > RHJ_MAX_DEPTH) return rhj_fail(p, "nested too deeply");
    rhj_ws(p);
    if (p->i >= p->n) return rhj_fail(p, "unexpected end");
    switch (p->s[p->i]) {
    case '"':
        v->type = RHJ_STR;
        return rhj_string(p, &v->str, &v->len);
    case 't':
        if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "true", 4)) {
            p->i += 4;
            v->type = RHJ_TRUE;
            return RH_OK;
        }
        return rhj_fail(p, "bad literal");
    case 'f':
        if (p->n - p->i >= 5 && !memcmp(p->s + p->i, "false", 5)) {
            p->i += 5;
            v->type = RHJ_FALSE;
            return RH_OK;
        }
        return rhj_fail(p, "bad literal");
    case 'n':
        if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "null", 4)) {
            p->i += 4;
            v->type = RHJ_NULL;
            return RH_OK;
        }
        return rhj_fail(p, "bad literal");
    case '[':
    case '{': {
        int obj = p->s[p->i] == '{';
        int cap = 0;
        char close = obj ? '}' : ']';
        v->type = obj ? RHJ_OBJ : RHJ_ARR;
        p->i++;
        rhj_ws(p);
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return RH_OK;
        }
        for (;;) {
            if (v->n == cap) {
                int nc = cap ? cap * 2 : 8;
                rhj *ni;
                if (nc > (1 << 26)) return rhj_fail(p, "too many items");
                ni = (rhj *)realloc(v->items, (size_t)nc * sizeof *ni);
                if (!ni) return rhj_fail(p, "out of memory");
                v->items = ni;
                if (obj) {
                    char **nk = (char **)realloc(v->keys, (size_t)nc * sizeof *nk);
                    size_t *nl;
                    if (!nk) return rhj_fail(p, "out of memory");
                    v->keys = nk;
                    nl = (size_t *)realloc(v->keylens, (size_t)nc * sizeof *nl);
                    if (!nl) return rhj_fail(p, "out of memory");
                    v->keylens = nl;
                }
                cap = nc;
            }
            rhj_ws(p);
            if (obj) {
                if (p->i >= p->n || p->s[p->i] != '"') return rhj_fail(p, "expected a key");
                v->keys[v->n] = NULL;
                rc = rhj_string(p, &v->keys[v->n], &v->keylens[v->n]);
                if (rc) return rc;
                rhj_ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') {
                    free(v->keys[v->n]);
                    return rhj_fail(p, "expected ':'");
                }
                p->i++;
            }
            rc = rhj_value(p, &v->items[v->n], depth + 1);
            if (rc) {
                if (obj) free(v->keys[v->n]);
                rhj_free(&v->items[v->n]);
                return rc;
            }
            v->n++;
            rhj_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == close) {
                p->i++;
                return RH_OK;
            }
            return rhj_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    default:
        if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9')) {
            v->type = RHJ_NUM;
            return rhj_number(p, &v->num);
        }
        return rhj_fail(p, "unexpected character");
    }
}

/* Parse exactly one JSON value from s[0..n) (surrounding whitespace allowed). */
static int rhj_parse(const char *s, size_t n, const char *name, rhj *out, char *err,
                     size_t errcap) {
    rhj_parser p;
    int rc;
    p.s = s;
    p.n = n;
    p.i = 0;
    p.name = name;
    p.err = err;
    p.errcap = errcap;
    rc = rhj_value(&p, out, 0);
    if (rc) {
        rhj_free(out);
        return rc;
    }
    rhj_ws(&p);
    if (p.i != n) {
        rhj_free(out);
        return rhj_fail(&p, "trailing data after the value");
    }
    return RH_OK;
}

static const rhj *rhj_get(const rhj *o, const char *key) {
    int i;
    if (!o || o->type != RHJ_OBJ) return NULL;
    for (i = 0; i < o->n; i++)
        if (strlen(key) == o->keylens[i] && !memcmp(o->keys[i], key, o->keylens[i]))
            return &o->items[i];
    return NULL;
}


/* =============================================================================================
 * 6. GENERATED TABLES: the Unicode data of the tokenizer, behind the accessors it calls
 *
 * Regenerate with `python3 tools/gen_unicode.py` (it rewrites the region between the BEGIN and
 * END markers).  Rows are sorted by code point and searched by bisection.
 * ============================================================================================= */

/* BEGIN GENERATED UNICODE TABLES (tools/gen_unicode.py from Python unicodedata 14.0.0; classes as Oniguruma's Unicode 16.0, NFC as Unicode 9.0: what HF tokenizers uses) */
#define TOK_UNICODE_VERSION "14.0.0"
static const uint32_t tok_uni_cls[821][3] = {
{0x30,0x39,2},{0x41,0x5A,1},{0x61,0x7A,1},{0xAA,0xAA,1},{0xB2,0xB3,2},{0xB5,0xB5,1},
{0xB9,0xB9,2},{0xBA,0xBA,1},{0xBC,0xBE,2},{0xC0,0xD6,1},{0xD8,0xF6,1},{0xF8,0x2C1,1},
{0x2C6,0x2D1,1},{0x2E0,0x2E4,1},{0x2EC,0x2EC,1},{0x2EE,0x2EE,1},{0x370,0x374,1},{0x376,0x377,1},
{0x37A,0x37D,1},{0x37F,0x37F,1},{0x386,0x386,1},{0x388,0x38A,1},{0x38C,0x38C,1},{0x38E,0x3A1,1},
{0x3A3,0x3F5,1},{0x3F7,0x481,1},{0x48A,0x52F,1},{0x531,0x556,1},{0x559,0x559,1},{0x560,0x588,1},
{0x5D0,0x5EA,1},{0x5EF,0x5F2,1},{0x620,0x64A,1},{0x660,0x669,2},{0x66E,0x66F,1},{0x671,0x6D3,1},
{0x6D5,0x6D5,1},{0x6E5,0x6E6,1},{0x6EE,0x6EF,1},{0x6F0,0x6F9,2},{0x6FA,0x6FC,1},{0x6FF,0x6FF,1},
{0x710,0x710,1},{0x712,0x72F,1},{0x74D,0x7A5,1},{0x7B1,0x7B1,1},{0x7C0,0x7C9,2},{0x7CA,0x7EA,1},
{0x7F4,0x7F5,1},{0x7FA,0x7FA,1},{0x800,0x815,1},{0x81A,0x81A,1},{0x824,0x824,1},{0x828,0x828,1},
{0x840,0x858,1},{0x860,0x86A,1},{0x870,0x887,1},{0x889,0x88E,1},{0x8A0,0x8C9,1},{0x904,0x939,1},
{0x93D,0x93D,1},{0x950,0x950,1},{0x958,0x961,1},{0x966,0x96F,2},{0x971,0x980,1},{0x985,0x98C,1},
{0x98F,0x990,1},{0x993,0x9A8,1},{0x9AA,0x9B0,1},{0x9B2,0x9B2,1},{0x9B6,0x9B9,1},{0x9BD,0x9BD,1},
{0x9CE,0x9CE,1},{0x9DC,0x9DD,1},{0x9DF,0x9E1,1},{0x9E6,0x9EF,2},{0x9F0,0x9F1,1},{0x9F4,0x9F9,2},
{0x9FC,0x9FC,1},{0xA05,0xA0A,1},{0xA0F,0xA10,1},{0xA13,0xA28,1},{0xA2A,0xA30,1},{0xA32,0xA33,1},
{0xA35,0xA36,1},{0xA38,0xA39,1},{0xA59,0xA5C,1},{0xA5E,0xA5E,1},{0xA66,0xA6F,2},{0xA72,0xA74,1},
{0xA85,0xA8D,1},{0xA8F,0xA91,1},{0xA93,0xAA8,1},{0xAAA,0xAB0,1},{0xAB2,0xAB3,1},{0xAB5,0xAB9,1},
{0xABD,0xABD,1},{0xAD0,0xAD0,1},{0xAE0,0xAE1,1},{0xAE6,0xAEF,2},{0xAF9,0xAF9,1},{0xB05,0xB0C,1},
{0xB0F,0xB10,1},{0xB13,0xB28,1},{0xB2A,0xB30,1},{0xB32,0xB33,1},{0xB35,0xB39,1},{0xB3D,0xB3D,1},
{0xB5C,0xB5D,1},{0xB5F,0xB61,1},{0xB66,0xB6F,2},{0xB71,0xB71,1},{0xB72,0xB77,2},{0xB83,0xB83,1},
{0xB85,0xB8A,1},{0xB8E,0xB90,1},{0xB92,0xB95,1},{0xB99,0xB9A,1},{0xB9C,0xB9C,1},{0xB9E,0xB9F,1},
{0xBA3,0xBA4,1},{0xBA8,0xBAA,1},{0xBAE,0xBB9,1},{0xBD0,0xBD0,1},{0xBE6,0xBF2,2},{0xC05,0xC0C,1},
{0xC0E,0xC10,1},{0xC12,0xC28,1},{0xC2A,0xC39,1},{0xC3D,0xC3D,1},{0xC58,0xC5A,1},{0xC5D,0xC5D,1},
{0xC60,0xC61,1},{0xC66,0xC6F,2},{0xC78,0xC7E,2},{0xC80,0xC80,1},{0xC85,0xC8C,1},{0xC8E,0xC90,1},
{0xC92,0xCA8,1},{0xCAA,0xCB3,1},{0xCB5,0xCB9,1},{0xCBD,0xCBD,1},{0xCDD,0xCDE,1},{0xCE0,0xCE1,1},
{0xCE6,0xCEF,2},{0xCF1,0xCF2,1},{0xD04,0xD0C,1},{0xD0E,0xD10,1},{0xD12,0xD3A,1},{0xD3D,0xD3D,1},
{0xD4E,0xD4E,1},{0xD54,0xD56,1},{0xD58,0xD5E,2},{0xD5F,0xD61,1},{0xD66,0xD78,2},{0xD7A,0xD7F,1},
{0xD85,0xD96,1},{0xD9A,0xDB1,1},{0xDB3,0xDBB,1},{0xDBD,0xDBD,1},{0xDC0,0xDC6,1},{0xDE6,0xDEF,2},
{0xE01,0xE30,1},{0xE32,0xE33,1},{0xE40,0xE46,1},{0xE50,0xE59,2},{0xE81,0xE82,1},{0xE84,0xE84,1},
{0xE86,0xE8A,1},{0xE8C,0xEA3,1},{0xEA5,0xEA5,1},{0xEA7,0xEB0,1},{0xEB2,0xEB3,1},{0xEBD,0xEBD,1},
{0xEC0,0xEC4,1},{0xEC6,0xEC6,1},{0xED0,0xED9,2},{0xEDC,0xEDF,1},{0xF00,0xF00,1},{0xF20,0xF33,2},
{0xF40,0xF47,1},{0xF49,0xF6C,1},{0xF88,0xF8C,1},{0x1000,0x102A,1},{0x103F,0x103F,1},
{0x1040,0x1049,2},{0x1050,0x1055,1},{0x105A,0x105D,1},{0x1061,0x1061,1},{0x1065,0x1066,1},
{0x106E,0x1070,1},{0x1075,0x1081,1},{0x108E,0x108E,1},{0x1090,0x1099,2},{0x10A0,0x10C5,1},
{0x10C7,0x10C7,1},{0x10CD,0x10CD,1},{0x10D0,0x10FA,1},{0x10FC,0x1248,1},{0x124A,0x124D,1},
{0x1250,0x1256,1},{0x1258,0x1258,1},{0x125A,0x125D,1},{0x1260,0x1288,1},{0x128A,0x128D,1},
{0x1290,0x12B0,1},{0x12B2,0x12B5,1},{0x12B8,0x12BE,1},{0x12C0,0x12C0,1},{0x12C2,0x12C5,1},
{0x12C8,0x12D6,1},{0x12D8,0x1310,1},{0x1312,0x1315,1},{0x1318,0x135A,1},{0x1369,0x137C,2},
{0x1380,0x138F,1},{0x13A0,0x13F5,1},{0x13F8,0x13FD,1},{0x1401,0x166C,1},{0x166F,0x167F,1},
{0x1681,0x169A,1},{0x16A0,0x16EA,1},{0x16EE,0x16F0,2},{0x16F1,0x16F8,1},{0x1700,0x1711,1},
{0x171F,0x1731,1},{0x1740,0x1751,1},{0x1760,0x176C,1},{0x176E,0x1770,1},{0x1780,0x17B3,1},
{0x17D7,0x17D7,1},{0x17DC,0x17DC,1},{0x17E0,0x17E9,2},{0x17F0,0x17F9,2},{0x1810,0x1819,2},
{0x1820,0x1878,1},{0x1880,0x1884,1},{0x1887,0x18A8,1},{0x18AA,0x18AA,1},{0x18B0,0x18F5,1},
{0x1900,0x191E,1},{0x1946,0x194F,2},{0x1950,0x196D,1},{0x1970,0x1974,1},{0x1980,0x19AB,1},
{0x19B0,0x19C9,1},{0x19D0,0x19DA,2},{0x1A00,0x1A16,1},{0x1A20,0x1A54,1},{0x1A80,0x1A89,2},
{0x1A90,0x1A99,2},{0x1AA7,0x1AA7,1},{0x1B05,0x1B33,1},{0x1B45,0x1B4C,1},{0x1B50,0x1B59,2},
{0x1B83,0x1BA0,1},{0x1BAE,0x1BAF,1},{0x1BB0,0x1BB9,2},{0x1BBA,0x1BE5,1},{0x1C00,0x1C23,1},
{0x1C40,0x1C49,2},{0x1C4D,0x1C4F,1},{0x1C50,0x1C59,2},{0x1C5A,0x1C7D,1},{0x1C80,0x1C8A,1},
{0x1C90,0x1CBA,1},{0x1CBD,0x1CBF,1},{0x1CE9,0x1CEC,1},{0x1CEE,0x1CF3,1},{0x1CF5,0x1CF6,1},
{0x1CFA,0x1CFA,1},{0x1D00,0x1DBF,1},{0x1E00,0x1F15,1},{0x1F18,0x1F1D,1},{0x1F20,0x1F45,1},
{0x1F48,0x1F4D,1},{0x1F50,0x1F57,1},{0x1F59,0x1F59,1},{0x1F5B,0x1F5B,1},{0x1F5D,0x1F5D,1},
{0x1F5F,0x1F7D,1},{0x1F80,0x1FB4,1},{0x1FB6,0x1FBC,1},{0x1FBE,0x1FBE,1},{0x1FC2,0x1FC4,1},
{0x1FC6,0x1FCC,1},{0x1FD0,0x1FD3,1},{0x1FD6,0x1FDB,1},{0x1FE0,0x1FEC,1},{0x1FF2,0x1FF4,1},
{0x1FF6,0x1FFC,1},{0x2070,0x2070,2},{0x2071,0x2071,1},{0x2074,0x2079,2},{0x207F,0x207F,1},
{0x2080,0x2089,2},{0x2090,0x209C,1},{0x2102,0x2102,1},{0x2107,0x2107,1},{0x210A,0x2113,1},
{0x2115,0x2115,1},{0x2119,0x211D,1},{0x2124,0x2124,1},{0x2126,0x2126,1},{0x2128,0x2128,1},
{0x212A,0x212D,1},{0x212F,0x2139,1},{0x213C,0x213F,1},{0x2145,0x2149,1},{0x214E,0x214E,1},
{0x2150,0x2182,2},{0x2183,0x2184,1},{0x2185,0x2189,2},{0x2460,0x249B,2},{0x24EA,0x24FF,2},
{0x2776,0x2793,2},{0x2C00,0x2CE4,1},{0x2CEB,0x2CEE,1},{0x2CF2,0x2CF3,1},{0x2CFD,0x2CFD,2},
{0x2D00,0x2D25,1},{0x2D27,0x2D27,1},{0x2D2D,0x2D2D,1},{0x2D30,0x2D67,1},{0x2D6F,0x2D6F,1},
{0x2D80,0x2D96,1},{0x2DA0,0x2DA6,1},{0x2DA8,0x2DAE,1},{0x2DB0,0x2DB6,1},{0x2DB8,0x2DBE,1},
{0x2DC0,0x2DC6,1},{0x2DC8,0x2DCE,1},{0x2DD0,0x2DD6,1},{0x2DD8,0x2DDE,1},{0x2E2F,0x2E2F,1},
{0x3005,0x3006,1},{0x3007,0x3007,2},{0x3021,0x3029,2},{0x3031,0x3035,1},{0x3038,0x303A,2},
{0x303B,0x303C,1},{0x3041,0x3096,1},{0x309D,0x309F,1},{0x30A1,0x30FA,1},{0x30FC,0x30FF,1},
{0x3105,0x312F,1},{0x3131,0x318E,1},{0x3192,0x3195,2},{0x31A0,0x31BF,1},{0x31F0,0x31FF,1},
{0x3220,0x3229,2},{0x3248,0x324F,2},{0x3251,0x325F,2},{0x3280,0x3289,2},{0x32B1,0x32BF,2},
{0x3400,0x4DBF,1},{0x4E00,0xA48C,1},{0xA4D0,0xA4FD,1},{0xA500,0xA60C,1},{0xA610,0xA61F,1},
{0xA620,0xA629,2},{0xA62A,0xA62B,1},{0xA640,0xA66E,1},{0xA67F,0xA69D,1},{0xA6A0,0xA6E5,1},
{0xA6E6,0xA6EF,2},{0xA717,0xA71F,1},{0xA722,0xA788,1},{0xA78B,0xA7CD,1},{0xA7D0,0xA7D1,1},
{0xA7D3,0xA7D3,1},{0xA7D5,0xA7DC,1},{0xA7F2,0xA801,1},{0xA803,0xA805,1},{0xA807,0xA80A,1},
{0xA80C,0xA822,1},{0xA830,0xA835,2},{0xA840,0xA873,1},{0xA882,0xA8B3,1},{0xA8D0,0xA8D9,2},
{0xA8F2,0xA8F7,1},{0xA8FB,0xA8FB,1},{0xA8FD,0xA8FE,1},{0xA900,0xA909,2},{0xA90A,0xA925,1},
{0xA930,0xA946,1},{0xA960,0xA97C,1},{0xA984,0xA9B2,1},{0xA9CF,0xA9CF,1},{0xA9D0,0xA9D9,2},
{0xA9E0,0xA9E4,1},{0xA9E6,0xA9EF,1},{0xA9F0,0xA9F9,2},{0xA9FA,0xA9FE,1},{0xAA00,0xAA28,1},
{0xAA40,0xAA42,1},{0xAA44,0xAA4B,1},{0xAA50,0xAA59,2},{0xAA60,0xAA76,1},{0xAA7A,0xAA7A,1},
{0xAA7E,0xAAAF,1},{0xAAB1,0xAAB1,1},{0xAAB5,0xAAB6,1},{0xAAB9,0xAABD,1},{0xAAC0,0xAAC0,1},
{0xAAC2,0xAAC2,1},{0xAADB,0xAADD,1},{0xAAE0,0xAAEA,1},{0xAAF2,0xAAF4,1},{0xAB01,0xAB06,1},
{0xAB09,0xAB0E,1},{0xAB11,0xAB16,1},{0xAB20,0xAB26,1},{0xAB28,0xAB2E,1},{0xAB30,0xAB5A,1},
{0xAB5C,0xAB69,1},{0xAB70,0xABE2,1},{0xABF0,0xABF9,2},{0xAC00,0xD7A3,1},{0xD7B0,0xD7C6,1},
{0xD7CB,0xD7FB,1},{0xF900,0xFA6D,1},{0xFA70,0xFAD9,1},{0xFB00,0xFB06,1},{0xFB13,0xFB17,1},
{0xFB1D,0xFB1D,1},{0xFB1F,0xFB28,1},{0xFB2A,0xFB36,1},{0xFB38,0xFB3C,1},{0xFB3E,0xFB3E,1},
{0xFB40,0xFB41,1},{0xFB43,0xFB44,1},{0xFB46,0xFBB1,1},{0xFBD3,0xFD3D,1},{0xFD50,0xFD8F,1},
{0xFD92,0xFDC7,1},{0xFDF0,0xFDFB,1},{0xFE70,0xFE74,1},{0xFE76,0xFEFC,1},{0xFF10,0xFF19,2},
{0xFF21,0xFF3A,1},{0xFF41,0xFF5A,1},{0xFF66,0xFFBE,1},{0xFFC2,0xFFC7,1},{0xFFCA,0xFFCF,1},
{0xFFD2,0xFFD7,1},{0xFFDA,0xFFDC,1},{0x10000,0x1000B,1},{0x1000D,0x10026,1},{0x10028,0x1003A,1},
{0x1003C,0x1003D,1},{0x1003F,0x1004D,1},{0x10050,0x1005D,1},{0x10080,0x100FA,1},
{0x10107,0x10133,2},{0x10140,0x10178,2},{0x1018A,0x1018B,2},{0x10280,0x1029C,1},
{0x102A0,0x102D0,1},{0x102E1,0x102FB,2},{0x10300,0x1031F,1},{0x10320,0x10323,2},
{0x1032D,0x10340,1},{0x10341,0x10341,2},{0x10342,0x10349,1},{0x1034A,0x1034A,2},
{0x10350,0x10375,1},{0x10380,0x1039D,1},{0x103A0,0x103C3,1},{0x103C8,0x103CF,1},
{0x103D1,0x103D5,2},{0x10400,0x1049D,1},{0x104A0,0x104A9,2},{0x104B0,0x104D3,1},
{0x104D8,0x104FB,1},{0x10500,0x10527,1},{0x10530,0x10563,1},{0x10570,0x1057A,1},
{0x1057C,0x1058A,1},{0x1058C,0x10592,1},{0x10594,0x10595,1},{0x10597,0x105A1,1},
{0x105A3,0x105B1,1},{0x105B3,0x105B9,1},{0x105BB,0x105BC,1},{0x105C0,0x105F3,1},
{0x10600,0x10736,1},{0x10740,0x10755,1},{0x10760,0x10767,1},{0x10780,0x10785,1},
{0x10787,0x107B0,1},{0x107B2,0x107BA,1},{0x10800,0x10805,1},{0x10808,0x10808,1},
{0x1080A,0x10835,1},{0x10837,0x10838,1},{0x1083C,0x1083C,1},{0x1083F,0x10855,1},
{0x10858,0x1085F,2},{0x10860,0x10876,1},{0x10879,0x1087F,2},{0x10880,0x1089E,1},
{0x108A7,0x108AF,2},{0x108E0,0x108F2,1},{0x108F4,0x108F5,1},{0x108FB,0x108FF,2},
{0x10900,0x10915,1},{0x10916,0x1091B,2},{0x10920,0x10939,1},{0x10980,0x109B7,1},
{0x109BC,0x109BD,2},{0x109BE,0x109BF,1},{0x109C0,0x109CF,2},{0x109D2,0x109FF,2},
{0x10A00,0x10A00,1},{0x10A10,0x10A13,1},{0x10A15,0x10A17,1},{0x10A19,0x10A35,1},
{0x10A40,0x10A48,2},{0x10A60,0x10A7C,1},{0x10A7D,0x10A7E,2},{0x10A80,0x10A9C,1},
{0x10A9D,0x10A9F,2},{0x10AC0,0x10AC7,1},{0x10AC9,0x10AE4,1},{0x10AEB,0x10AEF,2},
{0x10B00,0x10B35,1},{0x10B40,0x10B55,1},{0x10B58,0x10B5F,2},{0x10B60,0x10B72,1},
{0x10B78,0x10B7F,2},{0x10B80,0x10B91,1},{0x10BA9,0x10BAF,2},{0x10C00,0x10C48,1},
{0x10C80,0x10CB2,1},{0x10CC0,0x10CF2,1},{0x10CFA,0x10CFF,2},{0x10D00,0x10D23,1},
{0x10D30,0x10D39,2},{0x10D40,0x10D49,2},{0x10D4A,0x10D65,1},{0x10D6F,0x10D85,1},
{0x10E60,0x10E7E,2},{0x10E80,0x10EA9,1},{0x10EB0,0x10EB1,1},{0x10EC2,0x10EC4,1},
{0x10F00,0x10F1C,1},{0x10F1D,0x10F26,2},{0x10F27,0x10F27,1},{0x10F30,0x10F45,1},
{0x10F51,0x10F54,2},{0x10F70,0x10F81,1},{0x10FB0,0x10FC4,1},{0x10FC5,0x10FCB,2},
{0x10FE0,0x10FF6,1},{0x11003,0x11037,1},{0x11052,0x1106F,2},{0x11071,0x11072,1},
{0x11075,0x11075,1},{0x11083,0x110AF,1},{0x110D0,0x110E8,1},{0x110F0,0x110F9,2},
{0x11103,0x11126,1},{0x11136,0x1113F,2},{0x11144,0x11144,1},{0x11147,0x11147,1},
{0x11150,0x11172,1},{0x11176,0x11176,1},{0x11183,0x111B2,1},{0x111C1,0x111C4,1},
{0x111D0,0x111D9,2},{0x111DA,0x111DA,1},{0x111DC,0x111DC,1},{0x111E1,0x111F4,2},
{0x11200,0x11211,1},{0x11213,0x1122B,1},{0x1123F,0x11240,1},{0x11280,0x11286,1},
{0x11288,0x11288,1},{0x1128A,0x1128D,1},{0x1128F,0x1129D,1},{0x1129F,0x112A8,1},
{0x112B0,0x112DE,1},{0x112F0,0x112F9,2},{0x11305,0x1130C,1},{0x1130F,0x11310,1},
{0x11313,0x11328,1},{0x1132A,0x11330,1},{0x11332,0x11333,1},{0x11335,0x11339,1},
{0x1133D,0x1133D,1},{0x11350,0x11350,1},{0x1135D,0x11361,1},{0x11380,0x11389,1},
{0x1138B,0x1138B,1},{0x1138E,0x1138E,1},{0x11390,0x113B5,1},{0x113B7,0x113B7,1},
{0x113D1,0x113D1,1},{0x113D3,0x113D3,1},{0x11400,0x11434,1},{0x11447,0x1144A,1},
{0x11450,0x11459,2},{0x1145F,0x11461,1},{0x11480,0x114AF,1},{0x114C4,0x114C5,1},
{0x114C7,0x114C7,1},{0x114D0,0x114D9,2},{0x11580,0x115AE,1},{0x115D8,0x115DB,1},
{0x11600,0x1162F,1},{0x11644,0x11644,1},{0x11650,0x11659,2},{0x11680,0x116AA,1},
{0x116B8,0x116B8,1},{0x116C0,0x116C9,2},{0x116D0,0x116E3,2},{0x11700,0x1171A,1},
{0x11730,0x1173B,2},{0x11740,0x11746,1},{0x11800,0x1182B,1},{0x118A0,0x118DF,1},
{0x118E0,0x118F2,2},{0x118FF,0x11906,1},{0x11909,0x11909,1},{0x1190C,0x11913,1},
{0x11915,0x11916,1},{0x11918,0x1192F,1},{0x1193F,0x1193F,1},{0x11941,0x11941,1},
{0x11950,0x11959,2},{0x119A0,0x119A7,1},{0x119AA,0x119D0,1},{0x119E1,0x119E1,1},
{0x119E3,0x119E3,1},{0x11A00,0x11A00,1},{0x11A0B,0x11A32,1},{0x11A3A,0x11A3A,1},
{0x11A50,0x11A50,1},{0x11A5C,0x11A89,1},{0x11A9D,0x11A9D,1},{0x11AB0,0x11AF8,1},
{0x11BC0,0x11BE0,1},{0x11BF0,0x11BF9,2},{0x11C00,0x11C08,1},{0x11C0A,0x11C2E,1},
{0x11C40,0x11C40,1},{0x11C50,0x11C6C,2},{0x11C72,0x11C8F,1},{0x11D00,0x11D06,1},
{0x11D08,0x11D09,1},{0x11D0B,0x11D30,1},{0x11D46,0x11D46,1},{0x11D50,0x11D59,2},
{0x11D60,0x11D65,1},{0x11D67,0x11D68,1},{0x11D6A,0x11D89,1},{0x11D98,0x11D98,1},
{0x11DA0,0x11DA9,2},{0x11EE0,0x11EF2,1},{0x11F02,0x11F02,1},{0x11F04,0x11F10,1},
{0x11F12,0x11F33,1},{0x11F50,0x11F59,2},{0x11FB0,0x11FB0,1},{0x11FC0,0x11FD4,2},
{0x12000,0x12399,1},{0x12400,0x1246E,2},{0x12480,0x12543,1},{0x12F90,0x12FF0,1},
{0x13000,0x1342F,1},{0x13441,0x13446,1},{0x13460,0x143FA,1},{0x14400,0x14646,1},
{0x16100,0x1611D,1},{0x16130,0x16139,2},{0x16800,0x16A38,1},{0x16A40,0x16A5E,1},
{0x16A60,0x16A69,2},{0x16A70,0x16ABE,1},{0x16AC0,0x16AC9,2},{0x16AD0,0x16AED,1},
{0x16B00,0x16B2F,1},{0x16B40,0x16B43,1},{0x16B50,0x16B59,2},{0x16B5B,0x16B61,2},
{0x16B63,0x16B77,1},{0x16B7D,0x16B8F,1},{0x16D40,0x16D6C,1},{0x16D70,0x16D79,2},
{0x16E40,0x16E7F,1},{0x16E80,0x16E96,2},{0x16F00,0x16F4A,1},{0x16F50,0x16F50,1},
{0x16F93,0x16F9F,1},{0x16FE0,0x16FE1,1},{0x16FE3,0x16FE3,1},{0x17000,0x187F7,1},
{0x18800,0x18CD5,1},{0x18CFF,0x18D08,1},{0x1AFF0,0x1AFF3,1},{0x1AFF5,0x1AFFB,1},
{0x1AFFD,0x1AFFE,1},{0x1B000,0x1B122,1},{0x1B132,0x1B132,1},{0x1B150,0x1B152,1},
{0x1B155,0x1B155,1},{0x1B164,0x1B167,1},{0x1B170,0x1B2FB,1},{0x1BC00,0x1BC6A,1},
{0x1BC70,0x1BC7C,1},{0x1BC80,0x1BC88,1},{0x1BC90,0x1BC99,1},{0x1CCF0,0x1CCF9,2},
{0x1D2C0,0x1D2D3,2},{0x1D2E0,0x1D2F3,2},{0x1D360,0x1D378,2},{0x1D400,0x1D454,1},
{0x1D456,0x1D49C,1},{0x1D49E,0x1D49F,1},{0x1D4A2,0x1D4A2,1},{0x1D4A5,0x1D4A6,1},
{0x1D4A9,0x1D4AC,1},{0x1D4AE,0x1D4B9,1},{0x1D4BB,0x1D4BB,1},{0x1D4BD,0x1D4C3,1},
{0x1D4C5,0x1D505,1},{0x1D507,0x1D50A,1},{0x1D50D,0x1D514,1},{0x1D516,0x1D51C,1},
{0x1D51E,0x1D539,1},{0x1D53B,0x1D53E,1},{0x1D540,0x1D544,1},{0x1D546,0x1D546,1},
{0x1D54A,0x1D550,1},{0x1D552,0x1D6A5,1},{0x1D6A8,0x1D6C0,1},{0x1D6C2,0x1D6DA,1},
{0x1D6DC,0x1D6FA,1},{0x1D6FC,0x1D714,1},{0x1D716,0x1D734,1},{0x1D736,0x1D74E,1},
{0x1D750,0x1D76E,1},{0x1D770,0x1D788,1},{0x1D78A,0x1D7A8,1},{0x1D7AA,0x1D7C2,1},
{0x1D7C4,0x1D7CB,1},{0x1D7CE,0x1D7FF,2},{0x1DF00,0x1DF1E,1},{0x1DF25,0x1DF2A,1},
{0x1E030,0x1E06D,1},{0x1E100,0x1E12C,1},{0x1E137,0x1E13D,1},{0x1E140,0x1E149,2},
{0x1E14E,0x1E14E,1},{0x1E290,0x1E2AD,1},{0x1E2C0,0x1E2EB,1},{0x1E2F0,0x1E2F9,2},
{0x1E4D0,0x1E4EB,1},{0x1E4F0,0x1E4F9,2},{0x1E5D0,0x1E5ED,1},{0x1E5F0,0x1E5F0,1},
{0x1E5F1,0x1E5FA,2},{0x1E7E0,0x1E7E6,1},{0x1E7E8,0x1E7EB,1},{0x1E7ED,0x1E7EE,1},
{0x1E7F0,0x1E7FE,1},{0x1E800,0x1E8C4,1},{0x1E8C7,0x1E8CF,2},{0x1E900,0x1E943,1},
{0x1E94B,0x1E94B,1},{0x1E950,0x1E959,2},{0x1EC71,0x1ECAB,2},{0x1ECAD,0x1ECAF,2},
{0x1ECB1,0x1ECB4,2},{0x1ED01,0x1ED2D,2},{0x1ED2F,0x1ED3D,2},{0x1EE00,0x1EE03,1},
{0x1EE05,0x1EE1F,1},{0x1EE21,0x1EE22,1},{0x1EE24,0x1EE24,1},{0x1EE27,0x1EE27,1},
{0x1EE29,0x1EE32,1},{0x1EE34,0x1EE37,1},{0x1EE39,0x1EE39,1},{0x1EE3B,0x1EE3B,1},
{0x1EE42,0x1EE42,1},{0x1EE47,0x1EE47,1},{0x1EE49,0x1EE49,1},{0x1EE4B,0x1EE4B,1},
{0x1EE4D,0x1EE4F,1},{0x1EE51,0x1EE52,1},{0x1EE54,0x1EE54,1},{0x1EE57,0x1EE57,1},
{0x1EE59,0x1EE59,1},{0x1EE5B,0x1EE5B,1},{0x1EE5D,0x1EE5D,1},{0x1EE5F,0x1EE5F,1},
{0x1EE61,0x1EE62,1},{0x1EE64,0x1EE64,1},{0x1EE67,0x1EE6A,1},{0x1EE6C,0x1EE72,1},
{0x1EE74,0x1EE77,1},{0x1EE79,0x1EE7C,1},{0x1EE7E,0x1EE7E,1},{0x1EE80,0x1EE89,1},
{0x1EE8B,0x1EE9B,1},{0x1EEA1,0x1EEA3,1},{0x1EEA5,0x1EEA9,1},{0x1EEAB,0x1EEBB,1},
{0x1F100,0x1F10C,2},{0x1FBF0,0x1FBF9,2},{0x20000,0x2A6DF,1},{0x2A700,0x2B739,1},
{0x2B740,0x2B81D,1},{0x2B820,0x2CEA1,1},{0x2CEB0,0x2EBE0,1},{0x2EBF0,0x2EE5D,1},
{0x2F800,0x2FA1D,1},{0x30000,0x3134A,1},{0x31350,0x323AF,1},
};
static const uint32_t tok_uni_ccc[333][3] = {
{0x300,0x314,230},{0x315,0x315,232},{0x316,0x319,220},{0x31A,0x31A,232},{0x31B,0x31B,216},
{0x31C,0x320,220},{0x321,0x322,202},{0x323,0x326,220},{0x327,0x328,202},{0x329,0x333,220},
{0x334,0x338,1},{0x339,0x33C,220},{0x33D,0x344,230},{0x345,0x345,240},{0x346,0x346,230},
{0x347,0x349,220},{0x34A,0x34C,230},{0x34D,0x34E,220},{0x350,0x352,230},{0x353,0x356,220},
{0x357,0x357,230},{0x358,0x358,232},{0x359,0x35A,220},{0x35B,0x35B,230},{0x35C,0x35C,233},
{0x35D,0x35E,234},{0x35F,0x35F,233},{0x360,0x361,234},{0x362,0x362,233},{0x363,0x36F,230},
{0x483,0x487,230},{0x591,0x591,220},{0x592,0x595,230},{0x596,0x596,220},{0x597,0x599,230},
{0x59A,0x59A,222},{0x59B,0x59B,220},{0x59C,0x5A1,230},{0x5A2,0x5A7,220},{0x5A8,0x5A9,230},
{0x5AA,0x5AA,220},{0x5AB,0x5AC,230},{0x5AD,0x5AD,222},{0x5AE,0x5AE,228},{0x5AF,0x5AF,230},
{0x5B0,0x5B0,10},{0x5B1,0x5B1,11},{0x5B2,0x5B2,12},{0x5B3,0x5B3,13},{0x5B4,0x5B4,14},
{0x5B5,0x5B5,15},{0x5B6,0x5B6,16},{0x5B7,0x5B7,17},{0x5B8,0x5B8,18},{0x5B9,0x5BA,19},
{0x5BB,0x5BB,20},{0x5BC,0x5BC,21},{0x5BD,0x5BD,22},{0x5BF,0x5BF,23},{0x5C1,0x5C1,24},
{0x5C2,0x5C2,25},{0x5C4,0x5C4,230},{0x5C5,0x5C5,220},{0x5C7,0x5C7,18},{0x610,0x617,230},
{0x618,0x618,30},{0x619,0x619,31},{0x61A,0x61A,32},{0x64B,0x64B,27},{0x64C,0x64C,28},
{0x64D,0x64D,29},{0x64E,0x64E,30},{0x64F,0x64F,31},{0x650,0x650,32},{0x651,0x651,33},
{0x652,0x652,34},{0x653,0x654,230},{0x655,0x656,220},{0x657,0x65B,230},{0x65C,0x65C,220},
{0x65D,0x65E,230},{0x65F,0x65F,220},{0x670,0x670,35},{0x6D6,0x6DC,230},{0x6DF,0x6E2,230},
{0x6E3,0x6E3,220},{0x6E4,0x6E4,230},{0x6E7,0x6E8,230},{0x6EA,0x6EA,220},{0x6EB,0x6EC,230},
{0x6ED,0x6ED,220},{0x711,0x711,36},{0x730,0x730,230},{0x731,0x731,220},{0x732,0x733,230},
{0x734,0x734,220},{0x735,0x736,230},{0x737,0x739,220},{0x73A,0x73A,230},{0x73B,0x73C,220},
{0x73D,0x73D,230},{0x73E,0x73E,220},{0x73F,0x741,230},{0x742,0x742,220},{0x743,0x743,230},
{0x744,0x744,220},{0x745,0x745,230},{0x746,0x746,220},{0x747,0x747,230},{0x748,0x748,220},
{0x749,0x74A,230},{0x7EB,0x7F1,230},{0x7F2,0x7F2,220},{0x7F3,0x7F3,230},{0x816,0x819,230},
{0x81B,0x823,230},{0x825,0x827,230},{0x829,0x82D,230},{0x859,0x85B,220},{0x8D4,0x8E1,230},
{0x8E3,0x8E3,220},{0x8E4,0x8E5,230},{0x8E6,0x8E6,220},{0x8E7,0x8E8,230},{0x8E9,0x8E9,220},
{0x8EA,0x8EC,230},{0x8ED,0x8EF,220},{0x8F0,0x8F0,27},{0x8F1,0x8F1,28},{0x8F2,0x8F2,29},
{0x8F3,0x8F5,230},{0x8F6,0x8F6,220},{0x8F7,0x8F8,230},{0x8F9,0x8FA,220},{0x8FB,0x8FF,230},
{0x93C,0x93C,7},{0x94D,0x94D,9},{0x951,0x951,230},{0x952,0x952,220},{0x953,0x954,230},
{0x9BC,0x9BC,7},{0x9CD,0x9CD,9},{0xA3C,0xA3C,7},{0xA4D,0xA4D,9},{0xABC,0xABC,7},{0xACD,0xACD,9},
{0xB3C,0xB3C,7},{0xB4D,0xB4D,9},{0xBCD,0xBCD,9},{0xC4D,0xC4D,9},{0xC55,0xC55,84},
{0xC56,0xC56,91},{0xCBC,0xCBC,7},{0xCCD,0xCCD,9},{0xD4D,0xD4D,9},{0xDCA,0xDCA,9},
{0xE38,0xE39,103},{0xE3A,0xE3A,9},{0xE48,0xE4B,107},{0xEB8,0xEB9,118},{0xEC8,0xECB,122},
{0xF18,0xF19,220},{0xF35,0xF35,220},{0xF37,0xF37,220},{0xF39,0xF39,216},{0xF71,0xF71,129},
{0xF72,0xF72,130},{0xF74,0xF74,132},{0xF7A,0xF7D,130},{0xF80,0xF80,130},{0xF82,0xF83,230},
{0xF84,0xF84,9},{0xF86,0xF87,230},{0xFC6,0xFC6,220},{0x1037,0x1037,7},{0x1039,0x103A,9},
{0x108D,0x108D,220},{0x135D,0x135F,230},{0x1714,0x1714,9},{0x1734,0x1734,9},{0x17D2,0x17D2,9},
{0x17DD,0x17DD,230},{0x18A9,0x18A9,228},{0x1939,0x1939,222},{0x193A,0x193A,230},
{0x193B,0x193B,220},{0x1A17,0x1A17,230},{0x1A18,0x1A18,220},{0x1A60,0x1A60,9},
{0x1A75,0x1A7C,230},{0x1A7F,0x1A7F,220},{0x1AB0,0x1AB4,230},{0x1AB5,0x1ABA,220},
{0x1ABB,0x1ABC,230},{0x1ABD,0x1ABD,220},{0x1B34,0x1B34,7},{0x1B44,0x1B44,9},{0x1B6B,0x1B6B,230},
{0x1B6C,0x1B6C,220},{0x1B6D,0x1B73,230},{0x1BAA,0x1BAB,9},{0x1BE6,0x1BE6,7},{0x1BF2,0x1BF3,9},
{0x1C37,0x1C37,7},{0x1CD0,0x1CD2,230},{0x1CD4,0x1CD4,1},{0x1CD5,0x1CD9,220},{0x1CDA,0x1CDB,230},
{0x1CDC,0x1CDF,220},{0x1CE0,0x1CE0,230},{0x1CE2,0x1CE8,1},{0x1CED,0x1CED,220},
{0x1CF4,0x1CF4,230},{0x1CF8,0x1CF9,230},{0x1DC0,0x1DC1,230},{0x1DC2,0x1DC2,220},
{0x1DC3,0x1DC9,230},{0x1DCA,0x1DCA,220},{0x1DCB,0x1DCC,230},{0x1DCD,0x1DCD,234},
{0x1DCE,0x1DCE,214},{0x1DCF,0x1DCF,220},{0x1DD0,0x1DD0,202},{0x1DD1,0x1DF5,230},
{0x1DFB,0x1DFB,230},{0x1DFC,0x1DFC,233},{0x1DFD,0x1DFD,220},{0x1DFE,0x1DFE,230},
{0x1DFF,0x1DFF,220},{0x20D0,0x20D1,230},{0x20D2,0x20D3,1},{0x20D4,0x20D7,230},{0x20D8,0x20DA,1},
{0x20DB,0x20DC,230},{0x20E1,0x20E1,230},{0x20E5,0x20E6,1},{0x20E7,0x20E7,230},
{0x20E8,0x20E8,220},{0x20E9,0x20E9,230},{0x20EA,0x20EB,1},{0x20EC,0x20EF,220},
{0x20F0,0x20F0,230},{0x2CEF,0x2CF1,230},{0x2D7F,0x2D7F,9},{0x2DE0,0x2DFF,230},
{0x302A,0x302A,218},{0x302B,0x302B,228},{0x302C,0x302C,232},{0x302D,0x302D,222},
{0x302E,0x302F,224},{0x3099,0x309A,8},{0xA66F,0xA66F,230},{0xA674,0xA67D,230},
{0xA69E,0xA69F,230},{0xA6F0,0xA6F1,230},{0xA806,0xA806,9},{0xA8C4,0xA8C4,9},{0xA8E0,0xA8F1,230},
{0xA92B,0xA92D,220},{0xA953,0xA953,9},{0xA9B3,0xA9B3,7},{0xA9C0,0xA9C0,9},{0xAAB0,0xAAB0,230},
{0xAAB2,0xAAB3,230},{0xAAB4,0xAAB4,220},{0xAAB7,0xAAB8,230},{0xAABE,0xAABF,230},
{0xAAC1,0xAAC1,230},{0xAAF6,0xAAF6,9},{0xABED,0xABED,9},{0xFB1E,0xFB1E,26},{0xFE20,0xFE26,230},
{0xFE27,0xFE2D,220},{0xFE2E,0xFE2F,230},{0x101FD,0x101FD,220},{0x102E0,0x102E0,220},
{0x10376,0x1037A,230},{0x10A0D,0x10A0D,220},{0x10A0F,0x10A0F,230},{0x10A38,0x10A38,230},
{0x10A39,0x10A39,1},{0x10A3A,0x10A3A,220},{0x10A3F,0x10A3F,9},{0x10AE5,0x10AE5,230},
{0x10AE6,0x10AE6,220},{0x11046,0x11046,9},{0x1107F,0x1107F,9},{0x110B9,0x110B9,9},
{0x110BA,0x110BA,7},{0x11100,0x11102,230},{0x11133,0x11134,9},{0x11173,0x11173,7},
{0x111C0,0x111C0,9},{0x111CA,0x111CA,7},{0x11235,0x11235,9},{0x11236,0x11236,7},
{0x112E9,0x112E9,7},{0x112EA,0x112EA,9},{0x1133C,0x1133C,7},{0x1134D,0x1134D,9},
{0x11366,0x1136C,230},{0x11370,0x11374,230},{0x11442,0x11442,9},{0x11446,0x11446,7},
{0x114C2,0x114C2,9},{0x114C3,0x114C3,7},{0x115BF,0x115BF,9},{0x115C0,0x115C0,7},
{0x1163F,0x1163F,9},{0x116B6,0x116B6,9},{0x116B7,0x116B7,7},{0x1172B,0x1172B,9},
{0x11C3F,0x11C3F,9},{0x16AF0,0x16AF4,1},{0x16B30,0x16B36,230},{0x1BC9E,0x1BC9E,1},
{0x1D165,0x1D166,216},{0x1D167,0x1D169,1},{0x1D16D,0x1D16D,226},{0x1D16E,0x1D172,216},
{0x1D17B,0x1D182,220},{0x1D185,0x1D189,230},{0x1D18A,0x1D18B,220},{0x1D1AA,0x1D1AD,230},
{0x1D242,0x1D244,230},{0x1E000,0x1E006,230},{0x1E008,0x1E018,230},{0x1E01B,0x1E021,230},
{0x1E023,0x1E024,230},{0x1E026,0x1E02A,230},{0x1E8D0,0x1E8D6,220},{0x1E944,0x1E949,230},
{0x1E94A,0x1E94A,7},
};
static const uint32_t tok_uni_nfcqc[246][2] = {
{0x300,0x34E},{0x350,0x36F},{0x374,0x374},{0x37E,0x37E},{0x387,0x387},{0x483,0x487},
{0x591,0x5BD},{0x5BF,0x5BF},{0x5C1,0x5C2},{0x5C4,0x5C5},{0x5C7,0x5C7},{0x610,0x61A},
{0x64B,0x65F},{0x670,0x670},{0x6D6,0x6DC},{0x6DF,0x6E4},{0x6E7,0x6E8},{0x6EA,0x6ED},
{0x711,0x711},{0x730,0x74A},{0x7EB,0x7F3},{0x816,0x819},{0x81B,0x823},{0x825,0x827},
{0x829,0x82D},{0x859,0x85B},{0x8D4,0x8E1},{0x8E3,0x8FF},{0x93C,0x93C},{0x94D,0x94D},
{0x951,0x954},{0x958,0x95F},{0x9BC,0x9BC},{0x9BE,0x9BE},{0x9CD,0x9CD},{0x9D7,0x9D7},
{0x9DC,0x9DD},{0x9DF,0x9DF},{0xA33,0xA33},{0xA36,0xA36},{0xA3C,0xA3C},{0xA4D,0xA4D},
{0xA59,0xA5B},{0xA5E,0xA5E},{0xABC,0xABC},{0xACD,0xACD},{0xB3C,0xB3C},{0xB3E,0xB3E},
{0xB4D,0xB4D},{0xB56,0xB57},{0xB5C,0xB5D},{0xBBE,0xBBE},{0xBCD,0xBCD},{0xBD7,0xBD7},
{0xC4D,0xC4D},{0xC55,0xC56},{0xCBC,0xCBC},{0xCC2,0xCC2},{0xCCD,0xCCD},{0xCD5,0xCD6},
{0xD3E,0xD3E},{0xD4D,0xD4D},{0xD57,0xD57},{0xDCA,0xDCA},{0xDCF,0xDCF},{0xDDF,0xDDF},
{0xE38,0xE3A},{0xE48,0xE4B},{0xEB8,0xEB9},{0xEC8,0xECB},{0xF18,0xF19},{0xF35,0xF35},
{0xF37,0xF37},{0xF39,0xF39},{0xF43,0xF43},{0xF4D,0xF4D},{0xF52,0xF52},{0xF57,0xF57},
{0xF5C,0xF5C},{0xF69,0xF69},{0xF71,0xF76},{0xF78,0xF78},{0xF7A,0xF7D},{0xF80,0xF84},
{0xF86,0xF87},{0xF93,0xF93},{0xF9D,0xF9D},{0xFA2,0xFA2},{0xFA7,0xFA7},{0xFAC,0xFAC},
{0xFB9,0xFB9},{0xFC6,0xFC6},{0x102E,0x102E},{0x1037,0x1037},{0x1039,0x103A},{0x108D,0x108D},
{0x1100,0x11FF},{0x135D,0x135F},{0x1714,0x1714},{0x1734,0x1734},{0x17D2,0x17D2},{0x17DD,0x17DD},
{0x18A9,0x18A9},{0x1939,0x193B},{0x1A17,0x1A18},{0x1A60,0x1A60},{0x1A75,0x1A7C},{0x1A7F,0x1A7F},
{0x1AB0,0x1ABD},{0x1B34,0x1B35},{0x1B44,0x1B44},{0x1B6B,0x1B73},{0x1BAA,0x1BAB},{0x1BE6,0x1BE6},
{0x1BF2,0x1BF3},{0x1C37,0x1C37},{0x1CD0,0x1CD2},{0x1CD4,0x1CE0},{0x1CE2,0x1CE8},{0x1CED,0x1CED},
{0x1CF4,0x1CF4},{0x1CF8,0x1CF9},{0x1DC0,0x1DF5},{0x1DFB,0x1DFF},{0x1F71,0x1F71},{0x1F73,0x1F73},
{0x1F75,0x1F75},{0x1F77,0x1F77},{0x1F79,0x1F79},{0x1F7B,0x1F7B},{0x1F7D,0x1F7D},{0x1FBB,0x1FBB},
{0x1FBE,0x1FBE},{0x1FC9,0x1FC9},{0x1FCB,0x1FCB},{0x1FD3,0x1FD3},{0x1FDB,0x1FDB},{0x1FE3,0x1FE3},
{0x1FEB,0x1FEB},{0x1FEE,0x1FEF},{0x1FF9,0x1FF9},{0x1FFB,0x1FFB},{0x1FFD,0x1FFD},{0x2000,0x2001},
{0x20D0,0x20DC},{0x20E1,0x20E1},{0x20E5,0x20F0},{0x2126,0x2126},{0x212A,0x212B},{0x2329,0x232A},
{0x2ADC,0x2ADC},{0x2CEF,0x2CF1},{0x2D7F,0x2D7F},{0x2DE0,0x2DFF},{0x302A,0x302F},{0x3099,0x309A},
{0xA66F,0xA66F},{0xA674,0xA67D},{0xA69E,0xA69F},{0xA6F0,0xA6F1},{0xA806,0xA806},{0xA8C4,0xA8C4},
{0xA8E0,0xA8F1},{0xA92B,0xA92D},{0xA953,0xA953},{0xA9B3,0xA9B3},{0xA9C0,0xA9C0},{0xAAB0,0xAAB0},
{0xAAB2,0xAAB4},{0xAAB7,0xAAB8},{0xAABE,0xAABF},{0xAAC1,0xAAC1},{0xAAF6,0xAAF6},{0xABED,0xABED},
{0xF900,0xFA0D},{0xFA10,0xFA10},{0xFA12,0xFA12},{0xFA15,0xFA1E},{0xFA20,0xFA20},{0xFA22,0xFA22},
{0xFA25,0xFA26},{0xFA2A,0xFA6D},{0xFA70,0xFAD9},{0xFB1D,0xFB1F},{0xFB2A,0xFB36},{0xFB38,0xFB3C},
{0xFB3E,0xFB3E},{0xFB40,0xFB41},{0xFB43,0xFB44},{0xFB46,0xFB4E},{0xFE20,0xFE2F},
{0x101FD,0x101FD},{0x102E0,0x102E0},{0x10376,0x1037A},{0x10A0D,0x10A0D},{0x10A0F,0x10A0F},
{0x10A38,0x10A3A},{0x10A3F,0x10A3F},{0x10AE5,0x10AE6},{0x11046,0x11046},{0x1107F,0x1107F},
{0x110B9,0x110BA},{0x11100,0x11102},{0x11127,0x11127},{0x11133,0x11134},{0x11173,0x11173},
{0x111C0,0x111C0},{0x111CA,0x111CA},{0x11235,0x11236},{0x112E9,0x112EA},{0x1133C,0x1133C},
{0x1133E,0x1133E},{0x1134D,0x1134D},{0x11357,0x11357},{0x11366,0x1136C},{0x11370,0x11374},
{0x11442,0x11442},{0x11446,0x11446},{0x114B0,0x114B0},{0x114BA,0x114BA},{0x114BD,0x114BD},
{0x114C2,0x114C3},{0x115AF,0x115AF},{0x115BF,0x115C0},{0x1163F,0x1163F},{0x116B6,0x116B7},
{0x1172B,0x1172B},{0x11C3F,0x11C3F},{0x16AF0,0x16AF4},{0x16B30,0x16B36},{0x1BC9E,0x1BC9E},
{0x1D15E,0x1D169},{0x1D16D,0x1D172},{0x1D17B,0x1D182},{0x1D185,0x1D18B},{0x1D1AA,0x1D1AD},
{0x1D1BB,0x1D1C0},{0x1D242,0x1D244},{0x1E000,0x1E006},{0x1E008,0x1E018},{0x1E01B,0x1E021},
{0x1E023,0x1E024},{0x1E026,0x1E02A},{0x1E8D0,0x1E8D6},{0x1E944,0x1E94A},{0x2F800,0x2FA1D},
};
static const uint32_t tok_uni_dpool[3404] = {
0x41,0x300,0x41,0x301,0x41,0x302,0x41,0x303,0x41,0x308,0x41,0x30A,0x43,0x327,0x45,0x300,0x45,
0x301,0x45,0x302,0x45,0x308,0x49,0x300,0x49,0x301,0x49,0x302,0x49,0x308,0x4E,0x303,0x4F,0x300,
0x4F,0x301,0x4F,0x302,0x4F,0x303,0x4F,0x308,0x55,0x300,0x55,0x301,0x55,0x302,0x55,0x308,0x59,
0x301,0x61,0x300,0x61,0x301,0x61,0x302,0x61,0x303,0x61,0x308,0x61,0x30A,0x63,0x327,0x65,0x300,
0x65,0x301,0x65,0x302,0x65,0x308,0x69,0x300,0x69,0x301,0x69,0x302,0x69,0x308,0x6E,0x303,0x6F,
0x300,0x6F,0x301,0x6F,0x302,0x6F,0x303,0x6F,0x308,0x75,0x300,0x75,0x301,0x75,0x302,0x75,0x308,
0x79,0x301,0x79,0x308,0x41,0x304,0x61,0x304,0x41,0x306,0x61,0x306,0x41,0x328,0x61,0x328,0x43,
0x301,0x63,0x301,0x43,0x302,0x63,0x302,0x43,0x307,0x63,0x307,0x43,0x30C,0x63,0x30C,0x44,0x30C,
0x64,0x30C,0x45,0x304,0x65,0x304,0x45,0x306,0x65,0x306,0x45,0x307,0x65,0x307,0x45,0x328,0x65,
0x328,0x45,0x30C,0x65,0x30C,0x47,0x302,0x67,0x302,0x47,0x306,0x67,0x306,0x47,0x307,0x67,0x307,
0x47,0x327,0x67,0x327,0x48,0x302,0x68,0x302,0x49,0x303,0x69,0x303,0x49,0x304,0x69,0x304,0x49,
0x306,0x69,0x306,0x49,0x328,0x69,0x328,0x49,0x307,0x4A,0x302,0x6A,0x302,0x4B,0x327,0x6B,0x327,
0x4C,0x301,0x6C,0x301,0x4C,0x327,0x6C,0x327,0x4C,0x30C,0x6C,0x30C,0x4E,0x301,0x6E,0x301,0x4E,
0x327,0x6E,0x327,0x4E,0x30C,0x6E,0x30C,0x4F,0x304,0x6F,0x304,0x4F,0x306,0x6F,0x306,0x4F,0x30B,
0x6F,0x30B,0x52,0x301,0x72,0x301,0x52,0x327,0x72,0x327,0x52,0x30C,0x72,0x30C,0x53,0x301,0x73,
0x301,0x53,0x302,0x73,0x302,0x53,0x327,0x73,0x327,0x53,0x30C,0x73,0x30C,0x54,0x327,0x74,0x327,
0x54,0x30C,0x74,0x30C,0x55,0x303,0x75,0x303,0x55,0x304,0x75,0x304,0x55,0x306,0x75,0x306,0x55,
0x30A,0x75,0x30A,0x55,0x30B,0x75,0x30B,0x55,0x328,0x75,0x328,0x57,0x302,0x77,0x302,0x59,0x302,
0x79,0x302,0x59,0x308,0x5A,0x301,0x7A,0x301,0x5A,0x307,0x7A,0x307,0x5A,0x30C,0x7A,0x30C,0x4F,
0x31B,0x6F,0x31B,0x55,0x31B,0x75,0x31B,0x41,0x30C,0x61,0x30C,0x49,0x30C,0x69,0x30C,0x4F,0x30C,
0x6F,0x30C,0x55,0x30C,0x75,0x30C,0x55,0x308,0x304,0x75,0x308,0x304,0x55,0x308,0x301,0x75,0x308,
0x301,0x55,0x308,0x30C,0x75,0x308,0x30C,0x55,0x308,0x300,0x75,0x308,0x300,0x41,0x308,0x304,0x61,
0x308,0x304,0x41,0x307,0x304,0x61,0x307,0x304,0xC6,0x304,0xE6,0x304,0x47,0x30C,0x67,0x30C,0x4B,
0x30C,0x6B,0x30C,0x4F,0x328,0x6F,0x328,0x4F,0x328,0x304,0x6F,0x328,0x304,0x1B7,0x30C,0x292,
0x30C,0x6A,0x30C,0x47,0x301,0x67,0x301,0x4E,0x300,0x6E,0x300,0x41,0x30A,0x301,0x61,0x30A,0x301,
0xC6,0x301,0xE6,0x301,0xD8,0x301,0xF8,0x301,0x41,0x30F,0x61,0x30F,0x41,0x311,0x61,0x311,0x45,
0x30F,0x65,0x30F,0x45,0x311,0x65,0x311,0x49,0x30F,0x69,0x30F,0x49,0x311,0x69,0x311,0x4F,0x30F,
0x6F,0x30F,0x4F,0x311,0x6F,0x311,0x52,0x30F,0x72,0x30F,0x52,0x311,0x72,0x311,0x55,0x30F,0x75,
0x30F,0x55,0x311,0x75,0x311,0x53,0x326,0x73,0x326,0x54,0x326,0x74,0x326,0x48,0x30C,0x68,0x30C,
0x41,0x307,0x61,0x307,0x45,0x327,0x65,0x327,0x4F,0x308,0x304,0x6F,0x308,0x304,0x4F,0x303,0x304,
0x6F,0x303,0x304,0x4F,0x307,0x6F,0x307,0x4F,0x307,0x304,0x6F,0x307,0x304,0x59,0x304,0x79,0x304,
0x300,0x301,0x313,0x308,0x301,0x2B9,0x3B,0xA8,0x301,0x391,0x301,0xB7,0x395,0x301,0x397,0x301,
0x399,0x301,0x39F,0x301,0x3A5,0x301,0x3A9,0x301,0x3B9,0x308,0x301,0x399,0x308,0x3A5,0x308,0x3B1,
0x301,0x3B5,0x301,0x3B7,0x301,0x3B9,0x301,0x3C5,0x308,0x301,0x3B9,0x308,0x3C5,0x308,0x3BF,0x301,
0x3C5,0x301,0x3C9,0x301,0x3D2,0x301,0x3D2,0x308,0x415,0x300,0x415,0x308,0x413,0x301,0x406,0x308,
0x41A,0x301,0x418,0x300,0x423,0x306,0x418,0x306,0x438,0x306,0x435,0x300,0x435,0x308,0x433,0x301,
0x456,0x308,0x43A,0x301,0x438,0x300,0x443,0x306,0x474,0x30F,0x475,0x30F,0x416,0x306,0x436,0x306,
0x410,0x306,0x430,0x306,0x410,0x308,0x430,0x308,0x415,0x306,0x435,0x306,0x4D8,0x308,0x4D9,0x308,
0x416,0x308,0x436,0x308,0x417,0x308,0x437,0x308,0x418,0x304,0x438,0x304,0x418,0x308,0x438,0x308,
0x41E,0x308,0x43E,0x308,0x4E8,0x308,0x4E9,0x308,0x42D,0x308,0x44D,0x308,0x423,0x304,0x443,0x304,
0x423,0x308,0x443,0x308,0x423,0x30B,0x443,0x30B,0x427,0x308,0x447,0x308,0x42B,0x308,0x44B,0x308,
0x627,0x653,0x627,0x654,0x648,0x654,0x627,0x655,0x64A,0x654,0x6D5,0x654,0x6C1,0x654,0x6D2,0x654,
0x928,0x93C,0x930,0x93C,0x933,0x93C,0x915,0x93C,0x916,0x93C,0x917,0x93C,0x91C,0x93C,0x921,0x93C,
0x922,0x93C,0x92B,0x93C,0x92F,0x93C,0x9C7,0x9BE,0x9C7,0x9D7,0x9A1,0x9BC,0x9A2,0x9BC,0x9AF,0x9BC,
0xA32,0xA3C,0xA38,0xA3C,0xA16,0xA3C,0xA17,0xA3C,0xA1C,0xA3C,0xA2B,0xA3C,0xB47,0xB56,0xB47,0xB3E,
0xB47,0xB57,0xB21,0xB3C,0xB22,0xB3C,0xB92,0xBD7,0xBC6,0xBBE,0xBC7,0xBBE,0xBC6,0xBD7,0xC46,0xC56,
0xCBF,0xCD5,0xCC6,0xCD5,0xCC6,0xCD6,0xCC6,0xCC2,0xCC6,0xCC2,0xCD5,0xD46,0xD3E,0xD47,0xD3E,0xD46,
0xD57,0xDD9,0xDCA,0xDD9,0xDCF,0xDD9,0xDCF,0xDCA,0xDD9,0xDDF,0xF42,0xFB7,0xF4C,0xFB7,0xF51,0xFB7,
0xF56,0xFB7,0xF5B,0xFB7,0xF40,0xFB5,0xF71,0xF72,0xF71,0xF74,0xFB2,0xF80,0xFB3,0xF80,0xF71,0xF80,
0xF92,0xFB7,0xF9C,0xFB7,0xFA1,0xFB7,0xFA6,0xFB7,0xFAB,0xFB7,0xF90,0xFB5,0x1025,0x102E,0x1B05,
0x1B35,0x1B07,0x1B35,0x1B09,0x1B35,0x1B0B,0x1B35,0x1B0D,0x1B35,0x1B11,0x1B35,0x1B3A,0x1B35,
0x1B3C,0x1B35,0x1B3E,0x1B35,0x1B3F,0x1B35,0x1B42,0x1B35,0x41,0x325,0x61,0x325,0x42,0x307,0x62,
0x307,0x42,0x323,0x62,0x323,0x42,0x331,0x62,0x331,0x43,0x327,0x301,0x63,0x327,0x301,0x44,0x307,
0x64,0x307,0x44,0x323,0x64,0x323,0x44,0x331,0x64,0x331,0x44,0x327,0x64,0x327,0x44,0x32D,0x64,
0x32D,0x45,0x304,0x300,0x65,0x304,0x300,0x45,0x304,0x301,0x65,0x304,0x301,0x45,0x32D,0x65,0x32D,
0x45,0x330,0x65,0x330,0x45,0x327,0x306,0x65,0x327,0x306,0x46,0x307,0x66,0x307,0x47,0x304,0x67,
0x304,0x48,0x307,0x68,0x307,0x48,0x323,0x68,0x323,0x48,0x308,0x68,0x308,0x48,0x327,0x68,0x327,
0x48,0x32E,0x68,0x32E,0x49,0x330,0x69,0x330,0x49,0x308,0x301,0x69,0x308,0x301,0x4B,0x301,0x6B,
0x301,0x4B,0x323,0x6B,0x323,0x4B,0x331,0x6B,0x331,0x4C,0x323,0x6C,0x323,0x4C,0x323,0x304,0x6C,
0x323,0x304,0x4C,0x331,0x6C,0x331,0x4C,0x32D,0x6C,0x32D,0x4D,0x301,0x6D,0x301,0x4D,0x307,0x6D,
0x307,0x4D,0x323,0x6D,0x323,0x4E,0x307,0x6E,0x307,0x4E,0x323,0x6E,0x323,0x4E,0x331,0x6E,0x331,
0x4E,0x32D,0x6E,0x32D,0x4F,0x303,0x301,0x6F,0x303,0x301,0x4F,0x303,0x308,0x6F,0x303,0x308,0x4F,
0x304,0x300,0x6F,0x304,0x300,0x4F,0x304,0x301,0x6F,0x304,0x301,0x50,0x301,0x70,0x301,0x50,0x307,
0x70,0x307,0x52,0x307,0x72,0x307,0x52,0x323,0x72,0x323,0x52,0x323,0x304,0x72,0x323,0x304,0x52,
0x331,0x72,0x331,0x53,0x307,0x73,0x307,0x53,0x323,0x73,0x323,0x53,0x301,0x307,0x73,0x301,0x307,
0x53,0x30C,0x307,0x73,0x30C,0x307,0x53,0x323,0x307,0x73,0x323,0x307,0x54,0x307,0x74,0x307,0x54,
0x323,0x74,0x323,0x54,0x331,0x74,0x331,0x54,0x32D,0x74,0x32D,0x55,0x324,0x75,0x324,0x55,0x330,
0x75,0x330,0x55,0x32D,0x75,0x32D,0x55,0x303,0x301,0x75,0x303,0x301,0x55,0x304,0x308,0x75,0x304,
0x308,0x56,0x303,0x76,0x303,0x56,0x323,0x76,0x323,0x57,0x300,0x77,0x300,0x57,0x301,0x77,0x301,
0x57,0x308,0x77,0x308,0x57,0x307,0x77,0x307,0x57,0x323,0x77,0x323,0x58,0x307,0x78,0x307,0x58,
0x308,0x78,0x308,0x59,0x307,0x79,0x307,0x5A,0x302,0x7A,0x302,0x5A,0x323,0x7A,0x323,0x5A,0x331,
0x7A,0x331,0x68,0x331,0x74,0x308,0x77,0x30A,0x79,0x30A,0x17F,0x307,0x41,0x323,0x61,0x323,0x41,
0x309,0x61,0x309,0x41,0x302,0x301,0x61,0x302,0x301,0x41,0x302,0x300,0x61,0x302,0x300,0x41,0x302,
0x309,0x61,0x302,0x309,0x41,0x302,0x303,0x61,0x302,0x303,0x41,0x323,0x302,0x61,0x323,0x302,0x41,
0x306,0x301,0x61,0x306,0x301,0x41,0x306,0x300,0x61,0x306,0x300,0x41,0x306,0x309,0x61,0x306,
0x309,0x41,0x306,0x303,0x61,0x306,0x303,0x41,0x323,0x306,0x61,0x323,0x306,0x45,0x323,0x65,0x323,
0x45,0x309,0x65,0x309,0x45,0x303,0x65,0x303,0x45,0x302,0x301,0x65,0x302,0x301,0x45,0x302,0x300,
0x65,0x302,0x300,0x45,0x302,0x309,0x65,0x302,0x309,0x45,0x302,0x303,0x65,0x302,0x303,0x45,0x323,
0x302,0x65,0x323,0x302,0x49,0x309,0x69,0x309,0x49,0x323,0x69,0x323,0x4F,0x323,0x6F,0x323,0x4F,
0x309,0x6F,0x309,0x4F,0x302,0x301,0x6F,0x302,0x301,0x4F,0x302,0x300,0x6F,0x302,0x300,0x4F,0x302,
0x309,0x6F,0x302,0x309,0x4F,0x302,0x303,0x6F,0x302,0x303,0x4F,0x323,0x302,0x6F,0x323,0x302,0x4F,
0x31B,0x301,0x6F,0x31B,0x301,0x4F,0x31B,0x300,0x6F,0x31B,0x300,0x4F,0x31B,0x309,0x6F,0x31B,
0x309,0x4F,0x31B,0x303,0x6F,0x31B,0x303,0x4F,0x31B,0x323,0x6F,0x31B,0x323,0x55,0x323,0x75,0x323,
0x55,0x309,0x75,0x309,0x55,0x31B,0x301,0x75,0x31B,0x301,0x55,0x31B,0x300,0x75,0x31B,0x300,0x55,
0x31B,0x309,0x75,0x31B,0x309,0x55,0x31B,0x303,0x75,0x31B,0x303,0x55,0x31B,0x323,0x75,0x31B,
0x323,0x59,0x300,0x79,0x300,0x59,0x323,0x79,0x323,0x59,0x309,0x79,0x309,0x59,0x303,0x79,0x303,
0x3B1,0x313,0x3B1,0x314,0x3B1,0x313,0x300,0x3B1,0x314,0x300,0x3B1,0x313,0x301,0x3B1,0x314,0x301,
0x3B1,0x313,0x342,0x3B1,0x314,0x342,0x391,0x313,0x391,0x314,0x391,0x313,0x300,0x391,0x314,0x300,
0x391,0x313,0x301,0x391,0x314,0x301,0x391,0x313,0x342,0x391,0x314,0x342,0x3B5,0x313,0x3B5,0x314,
0x3B5,0x313,0x300,0x3B5,0x314,0x300,0x3B5,0x313,0x301,0x3B5,0x314,0x301,0x395,0x313,0x395,0x314,
0x395,0x313,0x300,0x395,0x314,0x300,0x395,0x313,0x301,0x395,0x314,0x301,0x3B7,0x313,0x3B7,0x314,
0x3B7,0x313,0x300,0x3B7,0x314,0x300,0x3B7,0x313,0x301,0x3B7,0x314,0x301,0x3B7,0x313,0x342,0x3B7,
0x314,0x342,0x397,0x313,0x397,0x314,0x397,0x313,0x300,0x397,0x314,0x300,0x397,0x313,0x301,0x397,
0x314,0x301,0x397,0x313,0x342,0x397,0x314,0x342,0x3B9,0x313,0x3B9,0x314,0x3B9,0x313,0x300,0x3B9,
0x314,0x300,0x3B9,0x313,0x301,0x3B9,0x314,0x301,0x3B9,0x313,0x342,0x3B9,0x314,0x342,0x399,0x313,
0x399,0x314,0x399,0x313,0x300,0x399,0x314,0x300,0x399,0x313,0x301,0x399,0x314,0x301,0x399,0x313,
0x342,0x399,0x314,0x342,0x3BF,0x313,0x3BF,0x314,0x3BF,0x313,0x300,0x3BF,0x314,0x300,0x3BF,0x313,
0x301,0x3BF,0x314,0x301,0x39F,0x313,0x39F,0x314,0x39F,0x313,0x300,0x39F,0x314,0x300,0x39F,0x313,
0x301,0x39F,0x314,0x301,0x3C5,0x313,0x3C5,0x314,0x3C5,0x313,0x300,0x3C5,0x314,0x300,0x3C5,0x313,
0x301,0x3C5,0x314,0x301,0x3C5,0x313,0x342,0x3C5,0x314,0x342,0x3A5,0x314,0x3A5,0x314,0x300,0x3A5,
0x314,0x301,0x3A5,0x314,0x342,0x3C9,0x313,0x3C9,0x314,0x3C9,0x313,0x300,0x3C9,0x314,0x300,0x3C9,
0x313,0x301,0x3C9,0x314,0x301,0x3C9,0x313,0x342,0x3C9,0x314,0x342,0x3A9,0x313,0x3A9,0x314,0x3A9,
0x313,0x300,0x3A9,0x314,0x300,0x3A9,0x313,0x301,0x3A9,0x314,0x301,0x3A9,0x313,0x342,0x3A9,0x314,
0x342,0x3B1,0x300,0x3B1,0x301,0x3B5,0x300,0x3B5,0x301,0x3B7,0x300,0x3B7,0x301,0x3B9,0x300,0x3B9,
0x301,0x3BF,0x300,0x3BF,0x301,0x3C5,0x300,0x3C5,0x301,0x3C9,0x300,0x3C9,0x301,0x3B1,0x313,0x345,
0x3B1,0x314,0x345,0x3B1,0x313,0x300,0x345,0x3B1,0x314,0x300,0x345,0x3B1,0x313,0x301,0x345,0x3B1,
0x314,0x301,0x345,0x3B1,0x313,0x342,0x345,0x3B1,0x314,0x342,0x345,0x391,0x313,0x345,0x391,0x314,
0x345,0x391,0x313,0x300,0x345,0x391,0x314,0x300,0x345,0x391,0x313,0x301,0x345,0x391,0x314,0x301,
0x345,0x391,0x313,0x342,0x345,0x391,0x314,0x342,0x345,0x3B7,0x313,0x345,0x3B7,0x314,0x345,0x3B7,
0x313,0x300,0x345,0x3B7,0x314,0x300,0x345,0x3B7,0x313,0x301,0x345,0x3B7,0x314,0x301,0x345,0x3B7,
0x313,0x342,0x345,0x3B7,0x314,0x342,0x345,0x397,0x313,0x345,0x397,0x314,0x345,0x397,0x313,0x300,
0x345,0x397,0x314,0x300,0x345,0x397,0x313,0x301,0x345,0x397,0x314,0x301,0x345,0x397,0x313,0x342,
0x345,0x397,0x314,0x342,0x345,0x3C9,0x313,0x345,0x3C9,0x314,0x345,0x3C9,0x313,0x300,0x345,0x3C9,
0x314,0x300,0x345,0x3C9,0x313,0x301,0x345,0x3C9,0x314,0x301,0x345,0x3C9,0x313,0x342,0x345,0x3C9,
0x314,0x342,0x345,0x3A9,0x313,0x345,0x3A9,0x314,0x345,0x3A9,0x313,0x300,0x345,0x3A9,0x314,0x300,
0x345,0x3A9,0x313,0x301,0x345,0x3A9,0x314,0x301,0x345,0x3A9,0x313,0x342,0x345,0x3A9,0x314,0x342,
0x345,0x3B1,0x306,0x3B1,0x304,0x3B1,0x300,0x345,0x3B1,0x345,0x3B1,0x301,0x345,0x3B1,0x342,0x3B1,
0x342,0x345,0x391,0x306,0x391,0x304,0x391,0x300,0x391,0x301,0x391,0x345,0x3B9,0xA8,0x342,0x3B7,
0x300,0x345,0x3B7,0x345,0x3B7,0x301,0x345,0x3B7,0x342,0x3B7,0x342,0x345,0x395,0x300,0x395,0x301,
0x397,0x300,0x397,0x301,0x397,0x345,0x1FBF,0x300,0x1FBF,0x301,0x1FBF,0x342,0x3B9,0x306,0x3B9,
0x304,0x3B9,0x308,0x300,0x3B9,0x308,0x301,0x3B9,0x342,0x3B9,0x308,0x342,0x399,0x306,0x399,0x304,
0x399,0x300,0x399,0x301,0x1FFE,0x300,0x1FFE,0x301,0x1FFE,0x342,0x3C5,0x306,0x3C5,0x304,0x3C5,
0x308,0x300,0x3C5,0x308,0x301,0x3C1,0x313,0x3C1,0x314,0x3C5,0x342,0x3C5,0x308,0x342,0x3A5,0x306,
0x3A5,0x304,0x3A5,0x300,0x3A5,0x301,0x3A1,0x314,0xA8,0x300,0xA8,0x301,0x60,0x3C9,0x300,0x345,
0x3C9,0x345,0x3C9,0x301,0x345,0x3C9,0x342,0x3C9,0x342,0x345,0x39F,0x300,0x39F,0x301,0x3A9,0x300,
0x3A9,0x301,0x3A9,0x345,0xB4,0x2002,0x2003,0x3A9,0x4B,0x41,0x30A,0x2190,0x338,0x2192,0x338,
0x2194,0x338,0x21D0,0x338,0x21D4,0x338,0x21D2,0x338,0x2203,0x338,0x2208,0x338,0x220B,0x338,
0x2223,0x338,0x2225,0x338,0x223C,0x338,0x2243,0x338,0x2245,0x338,0x2248,0x338,0x3D,0x338,0x2261,
0x338,0x224D,0x338,0x3C,0x338,0x3E,0x338,0x2264,0x338,0x2265,0x338,0x2272,0x338,0x2273,0x338,
0x2276,0x338,0x2277,0x338,0x227A,0x338,0x227B,0x338,0x2282,0x338,0x2283,0x338,0x2286,0x338,
0x2287,0x338,0x22A2,0x338,0x22A8,0x338,0x22A9,0x338,0x22AB,0x338,0x227C,0x338,0x227D,0x338,
0x2291,0x338,0x2292,0x338,0x22B2,0x338,0x22B3,0x338,0x22B4,0x338,0x22B5,0x338,0x3008,0x3009,
0x2ADD,0x338,0x304B,0x3099,0x304D,0x3099,0x304F,0x3099,0x3051,0x3099,0x3053,0x3099,0x3055,
0x3099,0x3057,0x3099,0x3059,0x3099,0x305B,0x3099,0x305D,0x3099,0x305F,0x3099,0x3061,0x3099,
0x3064,0x3099,0x3066,0x3099,0x3068,0x3099,0x306F,0x3099,0x306F,0x309A,0x3072,0x3099,0x3072,
0x309A,0x3075,0x3099,0x3075,0x309A,0x3078,0x3099,0x3078,0x309A,0x307B,0x3099,0x307B,0x309A,
0x3046,0x3099,0x309D,0x3099,0x30AB,0x3099,0x30AD,0x3099,0x30AF,0x3099,0x30B1,0x3099,0x30B3,
0x3099,0x30B5,0x3099,0x30B7,0x3099,0x30B9,0x3099,0x30BB,0x3099,0x30BD,0x3099,0x30BF,0x3099,
0x30C1,0x3099,0x30C4,0x3099,0x30C6,0x3099,0x30C8,0x3099,0x30CF,0x3099,0x30CF,0x309A,0x30D2,
0x3099,0x30D2,0x309A,0x30D5,0x3099,0x30D5,0x309A,0x30D8,0x3099,0x30D8,0x309A,0x30DB,0x3099,
0x30DB,0x309A,0x30A6,0x3099,0x30EF,0x3099,0x30F0,0x3099,0x30F1,0x3099,0x30F2,0x3099,0x30FD,
0x3099,0x8C48,0x66F4,0x8ECA,0x8CC8,0x6ED1,0x4E32,0x53E5,0x9F9C,0x9F9C,0x5951,0x91D1,0x5587,
0x5948,0x61F6,0x7669,0x7F85,0x863F,0x87BA,0x88F8,0x908F,0x6A02,0x6D1B,0x70D9,0x73DE,0x843D,
0x916A,0x99F1,0x4E82,0x5375,0x6B04,0x721B,0x862D,0x9E1E,0x5D50,0x6FEB,0x85CD,0x8964,0x62C9,
0x81D8,0x881F,0x5ECA,0x6717,0x6D6A,0x72FC,0x90CE,0x4F86,0x51B7,0x52DE,0x64C4,0x6AD3,0x7210,
0x76E7,0x8001,0x8606,0x865C,0x8DEF,0x9732,0x9B6F,0x9DFA,0x788C,0x797F,0x7DA0,0x83C9,0x9304,
0x9E7F,0x8AD6,0x58DF,0x5F04,0x7C60,0x807E,0x7262,0x78CA,0x8CC2,0x96F7,0x58D8,0x5C62,0x6A13,
0x6DDA,0x6F0F,0x7D2F,0x7E37,0x964B,0x52D2,0x808B,0x51DC,0x51CC,0x7A1C,0x7DBE,0x83F1,0x9675,
0x8B80,0x62CF,0x6A02,0x8AFE,0x4E39,0x5BE7,0x6012,0x7387,0x7570,0x5317,0x78FB,0x4FBF,0x5FA9,
0x4E0D,0x6CCC,0x6578,0x7D22,0x53C3,0x585E,0x7701,0x8449,0x8AAA,0x6BBA,0x8FB0,0x6C88,0x62FE,
0x82E5,0x63A0,0x7565,0x4EAE,0x5169,0x51C9,0x6881,0x7CE7,0x826F,0x8AD2,0x91CF,0x52F5,0x5442,
0x5973,0x5EEC,0x65C5,0x6FFE,0x792A,0x95AD,0x9A6A,0x9E97,0x9ECE,0x529B,0x66C6,0x6B77,0x8F62,
0x5E74,0x6190,0x6200,0x649A,0x6F23,0x7149,0x7489,0x79CA,0x7DF4,0x806F,0x8F26,0x84EE,0x9023,
0x934A,0x5217,0x52A3,0x54BD,0x70C8,0x88C2,0x8AAA,0x5EC9,0x5FF5,0x637B,0x6BAE,0x7C3E,0x7375,
0x4EE4,0x56F9,0x5BE7,0x5DBA,0x601C,0x73B2,0x7469,0x7F9A,0x8046,0x9234,0x96F6,0x9748,0x9818,
0x4F8B,0x79AE,0x91B4,0x96B8,0x60E1,0x4E86,0x50DA,0x5BEE,0x5C3F,0x6599,0x6A02,0x71CE,0x7642,
0x84FC,0x907C,0x9F8D,0x6688,0x962E,0x5289,0x677B,0x67F3,0x6D41,0x6E9C,0x7409,0x7559,0x786B,
0x7D10,0x985E,0x516D,0x622E,0x9678,0x502B,0x5D19,0x6DEA,0x8F2A,0x5F8B,0x6144,0x6817,0x7387,
0x9686,0x5229,0x540F,0x5C65,0x6613,0x674E,0x68A8,0x6CE5,0x7406,0x75E2,0x7F79,0x88CF,0x88E1,
0x91CC,0x96E2,0x533F,0x6EBA,0x541D,0x71D0,0x7498,0x85FA,0x96A3,0x9C57,0x9E9F,0x6797,0x6DCB,
0x81E8,0x7ACB,0x7B20,0x7C92,0x72C0,0x7099,0x8B58,0x4EC0,0x8336,0x523A,0x5207,0x5EA6,0x62D3,
0x7CD6,0x5B85,0x6D1E,0x66B4,0x8F3B,0x884C,0x964D,0x898B,0x5ED3,0x5140,0x55C0,0x585A,0x6674,
0x51DE,0x732A,0x76CA,0x793C,0x795E,0x7965,0x798F,0x9756,0x7CBE,0x7FBD,0x8612,0x8AF8,0x9038,
0x90FD,0x98EF,0x98FC,0x9928,0x9DB4,0x90DE,0x96B7,0x4FAE,0x50E7,0x514D,0x52C9,0x52E4,0x5351,
0x559D,0x5606,0x5668,0x5840,0x58A8,0x5C64,0x5C6E,0x6094,0x6168,0x618E,0x61F2,0x654F,0x65E2,
0x6691,0x6885,0x6D77,0x6E1A,0x6F22,0x716E,0x722B,0x7422,0x7891,0x793E,0x7949,0x7948,0x7950,
0x7956,0x795D,0x798D,0x798E,0x7A40,0x7A81,0x7BC0,0x7DF4,0x7E09,0x7E41,0x7F72,0x8005,0x81ED,
0x8279,0x8279,0x8457,0x8910,0x8996,0x8B01,0x8B39,0x8CD3,0x8D08,0x8FB6,0x9038,0x96E3,0x97FF,
0x983B,0x6075,0x242EE,0x8218,0x4E26,0x51B5,0x5168,0x4F80,0x5145,0x5180,0x52C7,0x52FA,0x559D,
0x5555,0x5599,0x55E2,0x585A,0x58B3,0x5944,0x5954,0x5A62,0x5B28,0x5ED2,0x5ED9,0x5F69,0x5FAD,
0x60D8,0x614E,0x6108,0x618E,0x6160,0x61F2,0x6234,0x63C4,0x641C,0x6452,0x6556,0x6674,0x6717,
0x671B,0x6756,0x6B79,0x6BBA,0x6D41,0x6EDB,0x6ECB,0x6F22,0x701E,0x716E,0x77A7,0x7235,0x72AF,
0x732A,0x7471,0x7506,0x753B,0x761D,0x761F,0x76CA,0x76DB,0x76F4,0x774A,0x7740,0x78CC,0x7AB1,
0x7BC0,0x7C7B,0x7D5B,0x7DF4,0x7F3E,0x8005,0x8352,0x83EF,0x8779,0x8941,0x8986,0x8996,0x8ABF,
0x8AF8,0x8ACB,0x8B01,0x8AFE,0x8AED,0x8B39,0x8B8A,0x8D08,0x8F38,0x9072,0x9199,0x9276,0x967C,
0x96E3,0x9756,0x97DB,0x97FF,0x980B,0x983B,0x9B12,0x9F9C,0x2284A,0x22844,0x233D5,0x3B9D,0x4018,
0x4039,0x25249,0x25CD0,0x27ED3,0x9F43,0x9F8E,0x5D9,0x5B4,0x5F2,0x5B7,0x5E9,0x5C1,0x5E9,0x5C2,
0x5E9,0x5BC,0x5C1,0x5E9,0x5BC,0x5C2,0x5D0,0x5B7,0x5D0,0x5B8,0x5D0,0x5BC,0x5D1,0x5BC,0x5D2,0x5BC,
0x5D3,0x5BC,0x5D4,0x5BC,0x5D5,0x5BC,0x5D6,0x5BC,0x5D8,0x5BC,0x5D9,0x5BC,0x5DA,0x5BC,0x5DB,0x5BC,
0x5DC,0x5BC,0x5DE,0x5BC,0x5E0,0x5BC,0x5E1,0x5BC,0x5E3,0x5BC,0x5E4,0x5BC,0x5E6,0x5BC,0x5E7,0x5BC,
0x5E8,0x5BC,0x5E9,0x5BC,0x5EA,0x5BC,0x5D5,0x5B9,0x5D1,0x5BF,0x5DB,0x5BF,0x5E4,0x5BF,0x11099,
0x110BA,0x1109B,0x110BA,0x110A5,0x110BA,0x11131,0x11127,0x11132,0x11127,0x11347,0x1133E,0x11347,
0x11357,0x114B9,0x114BA,0x114B9,0x114B0,0x114B9,0x114BD,0x115B8,0x115AF,0x115B9,0x115AF,0x1D157,
0x1D165,0x1D158,0x1D165,0x1D158,0x1D165,0x1D16E,0x1D158,0x1D165,0x1D16F,0x1D158,0x1D165,0x1D170,
0x1D158,0x1D165,0x1D171,0x1D158,0x1D165,0x1D172,0x1D1B9,0x1D165,0x1D1BA,0x1D165,0x1D1B9,0x1D165,
0x1D16E,0x1D1BA,0x1D165,0x1D16E,0x1D1B9,0x1D165,0x1D16F,0x1D1BA,0x1D165,0x1D16F,0x4E3D,0x4E38,
0x4E41,0x20122,0x4F60,0x4FAE,0x4FBB,0x5002,0x507A,0x5099,0x50E7,0x50CF,0x349E,0x2063A,0x514D,
0x5154,0x5164,0x5177,0x2051C,0x34B9,0x5167,0x518D,0x2054B,0x5197,0x51A4,0x4ECC,0x51AC,0x51B5,
0x291DF,0x51F5,0x5203,0x34DF,0x523B,0x5246,0x5272,0x5277,0x3515,0x52C7,0x52C9,0x52E4,0x52FA,
0x5305,0x5306,0x5317,0x5349,0x5351,0x535A,0x5373,0x537D,0x537F,0x537F,0x537F,0x20A2C,0x7070,
0x53CA,0x53DF,0x20B63,0x53EB,0x53F1,0x5406,0x549E,0x5438,0x5448,0x5468,0x54A2,0x54F6,0x5510,
0x5553,0x5563,0x5584,0x5584,0x5599,0x55AB,0x55B3,0x55C2,0x5716,0x5606,0x5717,0x5651,0x5674,
0x5207,0x58EE,0x57CE,0x57F4,0x580D,0x578B,0x5832,0x5831,0x58AC,0x214E4,0x58F2,0x58F7,0x5906,
0x591A,0x5922,0x5962,0x216A8,0x216EA,0x59EC,0x5A1B,0x5A27,0x59D8,0x5A66,0x36EE,0x36FC,0x5B08,
0x5B3E,0x5B3E,0x219C8,0x5BC3,0x5BD8,0x5BE7,0x5BF3,0x21B18,0x5BFF,0x5C06,0x5F53,0x5C22,0x3781,
0x5C60,0x5C6E,0x5CC0,0x5C8D,0x21DE4,0x5D43,0x21DE6,0x5D6E,0x5D6B,0x5D7C,0x5DE1,0x5DE2,0x382F,
0x5DFD,0x5E28,0x5E3D,0x5E69,0x3862,0x22183,0x387C,0x5EB0,0x5EB3,0x5EB6,0x5ECA,0x2A392,0x5EFE,
0x22331,0x22331,0x8201,0x5F22,0x5F22,0x38C7,0x232B8,0x261DA,0x5F62,0x5F6B,0x38E3,0x5F9A,0x5FCD,
0x5FD7,0x5FF9,0x6081,0x393A,0x391C,0x6094,0x226D4,0x60C7,0x6148,0x614C,0x614E,0x614C,0x617A,
0x618E,0x61B2,0x61A4,0x61AF,0x61DE,0x61F2,0x61F6,0x6210,0x621B,0x625D,0x62B1,0x62D4,0x6350,
0x22B0C,0x633D,0x62FC,0x6368,0x6383,0x63E4,0x22BF1,0x6422,0x63C5,0x63A9,0x3A2E,0x6469,0x647E,
0x649D,0x6477,0x3A6C,0x654F,0x656C,0x2300A,0x65E3,0x66F8,0x6649,0x3B19,0x6691,0x3B08,0x3AE4,
0x5192,0x5195,0x6700,0x669C,0x80AD,0x43D9,0x6717,0x671B,0x6721,0x675E,0x6753,0x233C3,0x3B49,
0x67FA,0x6785,0x6852,0x6885,0x2346D,0x688E,0x681F,0x6914,0x3B9D,0x6942,0x69A3,0x69EA,0x6AA8,
0x236A3,0x6ADB,0x3C18,0x6B21,0x238A7,0x6B54,0x3C4E,0x6B72,0x6B9F,0x6BBA,0x6BBB,0x23A8D,0x21D0B,
0x23AFA,0x6C4E,0x23CBC,0x6CBF,0x6CCD,0x6C67,0x6D16,0x6D3E,0x6D77,0x6D41,0x6D69,0x6D78,0x6D85,
0x23D1E,0x6D34,0x6E2F,0x6E6E,0x3D33,0x6ECB,0x6EC7,0x23ED1,0x6DF9,0x6F6E,0x23F5E,0x23F8E,0x6FC6,
0x7039,0x701E,0x701B,0x3D96,0x704A,0x707D,0x7077,0x70AD,0x20525,0x7145,0x24263,0x719C,0x243AB,
0x7228,0x7235,0x7250,0x24608,0x7280,0x7295,0x24735,0x24814,0x737A,0x738B,0x3EAC,0x73A5,0x3EB8,
0x3EB8,0x7447,0x745C,0x7471,0x7485,0x74CA,0x3F1B,0x7524,0x24C36,0x753E,0x24C92,0x7570,0x2219F,
0x7610,0x24FA1,0x24FB8,0x25044,0x3FFC,0x4008,0x76F4,0x250F3,0x250F2,0x25119,0x25133,0x771E,
0x771F,0x771F,0x774A,0x4039,0x778B,0x4046,0x4096,0x2541D,0x784E,0x788C,0x78CC,0x40E3,0x25626,
0x7956,0x2569A,0x256C5,0x798F,0x79EB,0x412F,0x7A40,0x7A4A,0x7A4F,0x2597C,0x25AA7,0x25AA7,0x7AEE,
0x4202,0x25BAB,0x7BC6,0x7BC9,0x4227,0x25C80,0x7CD2,0x42A0,0x7CE8,0x7CE3,0x7D00,0x25F86,0x7D63,
0x4301,0x7DC7,0x7E02,0x7E45,0x4334,0x26228,0x26247,0x4359,0x262D9,0x7F7A,0x2633E,0x7F95,0x7FFA,
0x8005,0x264DA,0x26523,0x8060,0x265A8,0x8070,0x2335F,0x43D5,0x80B2,0x8103,0x440B,0x813E,0x5AB5,
0x267A7,0x267B5,0x23393,0x2339C,0x8201,0x8204,0x8F9E,0x446B,0x8291,0x828B,0x829D,0x52B3,0x82B1,
0x82B3,0x82BD,0x82E6,0x26B3C,0x82E5,0x831D,0x8363,0x83AD,0x8323,0x83BD,0x83E7,0x8457,0x8353,
0x83CA,0x83CC,0x83DC,0x26C36,0x26D6B,0x26CD5,0x452B,0x84F1,0x84F3,0x8516,0x273CA,0x8564,0x26F2C,
0x455D,0x4561,0x26FB1,0x270D2,0x456B,0x8650,0x865C,0x8667,0x8669,0x86A9,0x8688,0x870E,0x86E2,
0x8779,0x8728,0x876B,0x8786,0x45D7,0x87E1,0x8801,0x45F9,0x8860,0x8863,0x27667,0x88D7,0x88DE,
0x4635,0x88FA,0x34BB,0x278AE,0x27966,0x46BE,0x46C7,0x8AA0,0x8AED,0x8B8A,0x8C55,0x27CA8,0x8CAB,
0x8CC1,0x8D1B,0x8D77,0x27F2F,0x20804,0x8DCB,0x8DBC,0x8DF0,0x208DE,0x8ED4,0x8F38,0x285D2,0x285ED,
0x9094,0x90F1,0x9111,0x2872E,0x911B,0x9238,0x92D7,0x92D8,0x927C,0x93F9,0x9415,0x28BFA,0x958B,
0x4995,0x95B7,0x28D77,0x49E6,0x96C3,0x5DB2,0x9723,0x29145,0x2921A,0x4A6E,0x4A76,0x97E0,0x2940A,
0x4AB2,0x29496,0x980B,0x980B,0x9829,0x295B6,0x98E2,0x4B33,0x9929,0x99A7,0x99C2,0x99FE,0x4BCE,
0x29B30,0x9B12,0x9C40,0x9CFD,0x4CCE,0x4CED,0x9D67,0x2A0CE,0x4CF8,0x2A105,0x2A20E,0x2A291,0x9EBB,
0x4D56,0x9EF9,0x9EFE,0x9F05,0x9F0F,0x9F16,0x9F3B,0x2A600,
};
static const uint32_t tok_uni_decomp[2060][3] = {
{0xC0,0x0,2},{0xC1,0x2,2},{0xC2,0x4,2},{0xC3,0x6,2},{0xC4,0x8,2},{0xC5,0xA,2},{0xC7,0xC,2},
{0xC8,0xE,2},{0xC9,0x10,2},{0xCA,0x12,2},{0xCB,0x14,2},{0xCC,0x16,2},{0xCD,0x18,2},
{0xCE,0x1A,2},{0xCF,0x1C,2},{0xD1,0x1E,2},{0xD2,0x20,2},{0xD3,0x22,2},{0xD4,0x24,2},
{0xD5,0x26,2},{0xD6,0x28,2},{0xD9,0x2A,2},{0xDA,0x2C,2},{0xDB,0x2E,2},{0xDC,0x30,2},
{0xDD,0x32,2},{0xE0,0x34,2},{0xE1,0x36,2},{0xE2,0x38,2},{0xE3,0x3A,2},{0xE4,0x3C,2},
{0xE5,0x3E,2},{0xE7,0x40,2},{0xE8,0x42,2},{0xE9,0x44,2},{0xEA,0x46,2},{0xEB,0x48,2},
{0xEC,0x4A,2},{0xED,0x4C,2},{0xEE,0x4E,2},{0xEF,0x50,2},{0xF1,0x52,2},{0xF2,0x54,2},
{0xF3,0x56,2},{0xF4,0x58,2},{0xF5,0x5A,2},{0xF6,0x5C,2},{0xF9,0x5E,2},{0xFA,0x60,2},
{0xFB,0x62,2},{0xFC,0x64,2},{0xFD,0x66,2},{0xFF,0x68,2},{0x100,0x6A,2},{0x101,0x6C,2},
{0x102,0x6E,2},{0x103,0x70,2},{0x104,0x72,2},{0x105,0x74,2},{0x106,0x76,2},{0x107,0x78,2},
{0x108,0x7A,2},{0x109,0x7C,2},{0x10A,0x7E,2},{0x10B,0x80,2},{0x10C,0x82,2},{0x10D,0x84,2},
{0x10E,0x86,2},{0x10F,0x88,2},{0x112,0x8A,2},{0x113,0x8C,2},{0x114,0x8E,2},{0x115,0x90,2},
{0x116,0x92,2},{0x117,0x94,2},{0x118,0x96,2},{0x119,0x98,2},{0x11A,0x9A,2},{0x11B,0x9C,2},
{0x11C,0x9E,2},{0x11D,0xA0,2},{0x11E,0xA2,2},{0x11F,0xA4,2},{0x120,0xA6,2},{0x121,0xA8,2},
{0x122,0xAA,2},{0x123,0xAC,2},{0x124,0xAE,2},{0x125,0xB0,2},{0x128,0xB2,2},{0x129,0xB4,2},
{0x12A,0xB6,2},{0x12B,0xB8,2},{0x12C,0xBA,2},{0x12D,0xBC,2},{0x12E,0xBE,2},{0x12F,0xC0,2},
{0x130,0xC2,2},{0x134,0xC4,2},{0x135,0xC6,2},{0x136,0xC8,2},{0x137,0xCA,2},{0x139,0xCC,2},
{0x13A,0xCE,2},{0x13B,0xD0,2},{0x13C,0xD2,2},{0x13D,0xD4,2},{0x13E,0xD6,2},{0x143,0xD8,2},
{0x144,0xDA,2},{0x145,0xDC,2},{0x146,0xDE,2},{0x147,0xE0,2},{0x148,0xE2,2},{0x14C,0xE4,2},
{0x14D,0xE6,2},{0x14E,0xE8,2},{0x14F,0xEA,2},{0x150,0xEC,2},{0x151,0xEE,2},{0x154,0xF0,2},
{0x155,0xF2,2},{0x156,0xF4,2},{0x157,0xF6,2},{0x158,0xF8,2},{0x159,0xFA,2},{0x15A,0xFC,2},
{0x15B,0xFE,2},{0x15C,0x100,2},{0x15D,0x102,2},{0x15E,0x104,2},{0x15F,0x106,2},{0x160,0x108,2},
{0x161,0x10A,2},{0x162,0x10C,2},{0x163,0x10E,2},{0x164,0x110,2},{0x165,0x112,2},{0x168,0x114,2},
{0x169,0x116,2},{0x16A,0x118,2},{0x16B,0x11A,2},{0x16C,0x11C,2},{0x16D,0x11E,2},{0x16E,0x120,2},
{0x16F,0x122,2},{0x170,0x124,2},{0x171,0x126,2},{0x172,0x128,2},{0x173,0x12A,2},{0x174,0x12C,2},
{0x175,0x12E,2},{0x176,0x130,2},{0x177,0x132,2},{0x178,0x134,2},{0x179,0x136,2},{0x17A,0x138,2},
{0x17B,0x13A,2},{0x17C,0x13C,2},{0x17D,0x13E,2},{0x17E,0x140,2},{0x1A0,0x142,2},{0x1A1,0x144,2},
{0x1AF,0x146,2},{0x1B0,0x148,2},{0x1CD,0x14A,2},{0x1CE,0x14C,2},{0x1CF,0x14E,2},{0x1D0,0x150,2},
{0x1D1,0x152,2},{0x1D2,0x154,2},{0x1D3,0x156,2},{0x1D4,0x158,2},{0x1D5,0x15A,3},{0x1D6,0x15D,3},
{0x1D7,0x160,3},{0x1D8,0x163,3},{0x1D9,0x166,3},{0x1DA,0x169,3},{0x1DB,0x16C,3},{0x1DC,0x16F,3},
{0x1DE,0x172,3},{0x1DF,0x175,3},{0x1E0,0x178,3},{0x1E1,0x17B,3},{0x1E2,0x17E,2},{0x1E3,0x180,2},
{0x1E6,0x182,2},{0x1E7,0x184,2},{0x1E8,0x186,2},{0x1E9,0x188,2},{0x1EA,0x18A,2},{0x1EB,0x18C,2},
{0x1EC,0x18E,3},{0x1ED,0x191,3},{0x1EE,0x194,2},{0x1EF,0x196,2},{0x1F0,0x198,2},{0x1F4,0x19A,2},
{0x1F5,0x19C,2},{0x1F8,0x19E,2},{0x1F9,0x1A0,2},{0x1FA,0x1A2,3},{0x1FB,0x1A5,3},{0x1FC,0x1A8,2},
{0x1FD,0x1AA,2},{0x1FE,0x1AC,2},{0x1FF,0x1AE,2},{0x200,0x1B0,2},{0x201,0x1B2,2},{0x202,0x1B4,2},
{0x203,0x1B6,2},{0x204,0x1B8,2},{0x205,0x1BA,2},{0x206,0x1BC,2},{0x207,0x1BE,2},{0x208,0x1C0,2},
{0x209,0x1C2,2},{0x20A,0x1C4,2},{0x20B,0x1C6,2},{0x20C,0x1C8,2},{0x20D,0x1CA,2},{0x20E,0x1CC,2},
{0x20F,0x1CE,2},{0x210,0x1D0,2},{0x211,0x1D2,2},{0x212,0x1D4,2},{0x213,0x1D6,2},{0x214,0x1D8,2},
{0x215,0x1DA,2},{0x216,0x1DC,2},{0x217,0x1DE,2},{0x218,0x1E0,2},{0x219,0x1E2,2},{0x21A,0x1E4,2},
{0x21B,0x1E6,2},{0x21E,0x1E8,2},{0x21F,0x1EA,2},{0x226,0x1EC,2},{0x227,0x1EE,2},{0x228,0x1F0,2},
{0x229,0x1F2,2},{0x22A,0x1F4,3},{0x22B,0x1F7,3},{0x22C,0x1FA,3},{0x22D,0x1FD,3},{0x22E,0x200,2},
{0x22F,0x202,2},{0x230,0x204,3},{0x231,0x207,3},{0x232,0x20A,2},{0x233,0x20C,2},{0x340,0x20E,1},
{0x341,0x20F,1},{0x343,0x210,1},{0x344,0x211,2},{0x374,0x213,1},{0x37E,0x214,1},{0x385,0x215,2},
{0x386,0x217,2},{0x387,0x219,1},{0x388,0x21A,2},{0x389,0x21C,2},{0x38A,0x21E,2},{0x38C,0x220,2},
{0x38E,0x222,2},{0x38F,0x224,2},{0x390,0x226,3},{0x3AA,0x229,2},{0x3AB,0x22B,2},{0x3AC,0x22D,2},
{0x3AD,0x22F,2},{0x3AE,0x231,2},{0x3AF,0x233,2},{0x3B0,0x235,3},{0x3CA,0x238,2},{0x3CB,0x23A,2},
{0x3CC,0x23C,2},{0x3CD,0x23E,2},{0x3CE,0x240,2},{0x3D3,0x242,2},{0x3D4,0x244,2},{0x400,0x246,2},
{0x401,0x248,2},{0x403,0x24A,2},{0x407,0x24C,2},{0x40C,0x24E,2},{0x40D,0x250,2},{0x40E,0x252,2},
{0x419,0x254,2},{0x439,0x256,2},{0x450,0x258,2},{0x451,0x25A,2},{0x453,0x25C,2},{0x457,0x25E,2},
{0x45C,0x260,2},{0x45D,0x262,2},{0x45E,0x264,2},{0x476,0x266,2},{0x477,0x268,2},{0x4C1,0x26A,2},
{0x4C2,0x26C,2},{0x4D0,0x26E,2},{0x4D1,0x270,2},{0x4D2,0x272,2},{0x4D3,0x274,2},{0x4D6,0x276,2},
{0x4D7,0x278,2},{0x4DA,0x27A,2},{0x4DB,0x27C,2},{0x4DC,0x27E,2},{0x4DD,0x280,2},{0x4DE,0x282,2},
{0x4DF,0x284,2},{0x4E2,0x286,2},{0x4E3,0x288,2},{0x4E4,0x28A,2},{0x4E5,0x28C,2},{0x4E6,0x28E,2},
{0x4E7,0x290,2},{0x4EA,0x292,2},{0x4EB,0x294,2},{0x4EC,0x296,2},{0x4ED,0x298,2},{0x4EE,0x29A,2},
{0x4EF,0x29C,2},{0x4F0,0x29E,2},{0x4F1,0x2A0,2},{0x4F2,0x2A2,2},{0x4F3,0x2A4,2},{0x4F4,0x2A6,2},
{0x4F5,0x2A8,2},{0x4F8,0x2AA,2},{0x4F9,0x2AC,2},{0x622,0x2AE,2},{0x623,0x2B0,2},{0x624,0x2B2,2},
{0x625,0x2B4,2},{0x626,0x2B6,2},{0x6C0,0x2B8,2},{0x6C2,0x2BA,2},{0x6D3,0x2BC,2},{0x929,0x2BE,2},
{0x931,0x2C0,2},{0x934,0x2C2,2},{0x958,0x2C4,2},{0x959,0x2C6,2},{0x95A,0x2C8,2},{0x95B,0x2CA,2},
{0x95C,0x2CC,2},{0x95D,0x2CE,2},{0x95E,0x2D0,2},{0x95F,0x2D2,2},{0x9CB,0x2D4,2},{0x9CC,0x2D6,2},
{0x9DC,0x2D8,2},{0x9DD,0x2DA,2},{0x9DF,0x2DC,2},{0xA33,0x2DE,2},{0xA36,0x2E0,2},{0xA59,0x2E2,2},
{0xA5A,0x2E4,2},{0xA5B,0x2E6,2},{0xA5E,0x2E8,2},{0xB48,0x2EA,2},{0xB4B,0x2EC,2},{0xB4C,0x2EE,2},
{0xB5C,0x2F0,2},{0xB5D,0x2F2,2},{0xB94,0x2F4,2},{0xBCA,0x2F6,2},{0xBCB,0x2F8,2},{0xBCC,0x2FA,2},
{0xC48,0x2FC,2},{0xCC0,0x2FE,2},{0xCC7,0x300,2},{0xCC8,0x302,2},{0xCCA,0x304,2},{0xCCB,0x306,3},
{0xD4A,0x309,2},{0xD4B,0x30B,2},{0xD4C,0x30D,2},{0xDDA,0x30F,2},{0xDDC,0x311,2},{0xDDD,0x313,3},
{0xDDE,0x316,2},{0xF43,0x318,2},{0xF4D,0x31A,2},{0xF52,0x31C,2},{0xF57,0x31E,2},{0xF5C,0x320,2},
{0xF69,0x322,2},{0xF73,0x324,2},{0xF75,0x326,2},{0xF76,0x328,2},{0xF78,0x32A,2},{0xF81,0x32C,2},
{0xF93,0x32E,2},{0xF9D,0x330,2},{0xFA2,0x332,2},{0xFA7,0x334,2},{0xFAC,0x336,2},{0xFB9,0x338,2},
{0x1026,0x33A,2},{0x1B06,0x33C,2},{0x1B08,0x33E,2},{0x1B0A,0x340,2},{0x1B0C,0x342,2},
{0x1B0E,0x344,2},{0x1B12,0x346,2},{0x1B3B,0x348,2},{0x1B3D,0x34A,2},{0x1B40,0x34C,2},
{0x1B41,0x34E,2},{0x1B43,0x350,2},{0x1E00,0x352,2},{0x1E01,0x354,2},{0x1E02,0x356,2},
{0x1E03,0x358,2},{0x1E04,0x35A,2},{0x1E05,0x35C,2},{0x1E06,0x35E,2},{0x1E07,0x360,2},
{0x1E08,0x362,3},{0x1E09,0x365,3},{0x1E0A,0x368,2},{0x1E0B,0x36A,2},{0x1E0C,0x36C,2},
{0x1E0D,0x36E,2},{0x1E0E,0x370,2},{0x1E0F,0x372,2},{0x1E10,0x374,2},{0x1E11,0x376,2},
{0x1E12,0x378,2},{0x1E13,0x37A,2},{0x1E14,0x37C,3},{0x1E15,0x37F,3},{0x1E16,0x382,3},
{0x1E17,0x385,3},{0x1E18,0x388,2},{0x1E19,0x38A,2},{0x1E1A,0x38C,2},{0x1E1B,0x38E,2},
{0x1E1C,0x390,3},{0x1E1D,0x393,3},{0x1E1E,0x396,2},{0x1E1F,0x398,2},{0x1E20,0x39A,2},
{0x1E21,0x39C,2},{0x1E22,0x39E,2},{0x1E23,0x3A0,2},{0x1E24,0x3A2,2},{0x1E25,0x3A4,2},
{0x1E26,0x3A6,2},{0x1E27,0x3A8,2},{0x1E28,0x3AA,2},{0x1E29,0x3AC,2},{0x1E2A,0x3AE,2},
{0x1E2B,0x3B0,2},{0x1E2C,0x3B2,2},{0x1E2D,0x3B4,2},{0x1E2E,0x3B6,3},{0x1E2F,0x3B9,3},
{0x1E30,0x3BC,2},{0x1E31,0x3BE,2},{0x1E32,0x3C0,2},{0x1E33,0x3C2,2},{0x1E34,0x3C4,2},
{0x1E35,0x3C6,2},{0x1E36,0x3C8,2},{0x1E37,0x3CA,2},{0x1E38,0x3CC,3},{0x1E39,0x3CF,3},
{0x1E3A,0x3D2,2},{0x1E3B,0x3D4,2},{0x1E3C,0x3D6,2},{0x1E3D,0x3D8,2},{0x1E3E,0x3DA,2},
{0x1E3F,0x3DC,2},{0x1E40,0x3DE,2},{0x1E41,0x3E0,2},{0x1E42,0x3E2,2},{0x1E43,0x3E4,2},
{0x1E44,0x3E6,2},{0x1E45,0x3E8,2},{0x1E46,0x3EA,2},{0x1E47,0x3EC,2},{0x1E48,0x3EE,2},
{0x1E49,0x3F0,2},{0x1E4A,0x3F2,2},{0x1E4B,0x3F4,2},{0x1E4C,0x3F6,3},{0x1E4D,0x3F9,3},
{0x1E4E,0x3FC,3},{0x1E4F,0x3FF,3},{0x1E50,0x402,3},{0x1E51,0x405,3},{0x1E52,0x408,3},
{0x1E53,0x40B,3},{0x1E54,0x40E,2},{0x1E55,0x410,2},{0x1E56,0x412,2},{0x1E57,0x414,2},
{0x1E58,0x416,2},{0x1E59,0x418,2},{0x1E5A,0x41A,2},{0x1E5B,0x41C,2},{0x1E5C,0x41E,3},
{0x1E5D,0x421,3},{0x1E5E,0x424,2},{0x1E5F,0x426,2},{0x1E60,0x428,2},{0x1E61,0x42A,2},
{0x1E62,0x42C,2},{0x1E63,0x42E,2},{0x1E64,0x430,3},{0x1E65,0x433,3},{0x1E66,0x436,3},
{0x1E67,0x439,3},{0x1E68,0x43C,3},{0x1E69,0x43F,3},{0x1E6A,0x442,2},{0x1E6B,0x444,2},
{0x1E6C,0x446,2},{0x1E6D,0x448,2},{0x1E6E,0x44A,2},{0x1E6F,0x44C,2},{0x1E70,0x44E,2},
{0x1E71,0x450,2},{0x1E72,0x452,2},{0x1E73,0x454,2},{0x1E74,0x456,2},{0x1E75,0x458,2},
{0x1E76,0x45A,2},{0x1E77,0x45C,2},{0x1E78,0x45E,3},{0x1E79,0x461,3},{0x1E7A,0x464,3},
{0x1E7B,0x467,3},{0x1E7C,0x46A,2},{0x1E7D,0x46C,2},{0x1E7E,0x46E,2},{0x1E7F,0x470,2},
{0x1E80,0x472,2},{0x1E81,0x474,2},{0x1E82,0x476,2},{0x1E83,0x478,2},{0x1E84,0x47A,2},
{0x1E85,0x47C,2},{0x1E86,0x47E,2},{0x1E87,0x480,2},{0x1E88,0x482,2},{0x1E89,0x484,2},
{0x1E8A,0x486,2},{0x1E8B,0x488,2},{0x1E8C,0x48A,2},{0x1E8D,0x48C,2},{0x1E8E,0x48E,2},
{0x1E8F,0x490,2},{0x1E90,0x492,2},{0x1E91,0x494,2},{0x1E92,0x496,2},{0x1E93,0x498,2},
{0x1E94,0x49A,2},{0x1E95,0x49C,2},{0x1E96,0x49E,2},{0x1E97,0x4A0,2},{0x1E98,0x4A2,2},
{0x1E99,0x4A4,2},{0x1E9B,0x4A6,2},{0x1EA0,0x4A8,2},{0x1EA1,0x4AA,2},{0x1EA2,0x4AC,2},
{0x1EA3,0x4AE,2},{0x1EA4,0x4B0,3},{0x1EA5,0x4B3,3},{0x1EA6,0x4B6,3},{0x1EA7,0x4B9,3},
{0x1EA8,0x4BC,3},{0x1EA9,0x4BF,3},{0x1EAA,0x4C2,3},{0x1EAB,0x4C5,3},{0x1EAC,0x4C8,3},
{0x1EAD,0x4CB,3},{0x1EAE,0x4CE,3},{0x1EAF,0x4D1,3},{0x1EB0,0x4D4,3},{0x1EB1,0x4D7,3},
{0x1EB2,0x4DA,3},{0x1EB3,0x4DD,3},{0x1EB4,0x4E0,3},{0x1EB5,0x4E3,3},{0x1EB6,0x4E6,3},
{0x1EB7,0x4E9,3},{0x1EB8,0x4EC,2},{0x1EB9,0x4EE,2},{0x1EBA,0x4F0,2},{0x1EBB,0x4F2,2},
{0x1EBC,0x4F4,2},{0x1EBD,0x4F6,2},{0x1EBE,0x4F8,3},{0x1EBF,0x4FB,3},{0x1EC0,0x4FE,3},
{0x1EC1,0x501,3},{0x1EC2,0x504,3},{0x1EC3,0x507,3},{0x1EC4,0x50A,3},{0x1EC5,0x50D,3},
{0x1EC6,0x510,3},{0x1EC7,0x513,3},{0x1EC8,0x516,2},{0x1EC9,0x518,2},{0x1ECA,0x51A,2},
{0x1ECB,0x51C,2},{0x1ECC,0x51E,2},{0x1ECD,0x520,2},{0x1ECE,0x522,2},{0x1ECF,0x524,2},
{0x1ED0,0x526,3},{0x1ED1,0x529,3},{0x1ED2,0x52C,3},{0x1ED3,0x52F,3},{0x1ED4,0x532,3},
{0x1ED5,0x535,3},{0x1ED6,0x538,3},{0x1ED7,0x53B,3},{0x1ED8,0x53E,3},{0x1ED9,0x541,3},
{0x1EDA,0x544,3},{0x1EDB,0x547,3},{0x1EDC,0x54A,3},{0x1EDD,0x54D,3},{0x1EDE,0x550,3},
{0x1EDF,0x553,3},{0x1EE0,0x556,3},{0x1EE1,0x559,3},{0x1EE2,0x55C,3},{0x1EE3,0x55F,3},
{0x1EE4,0x562,2},{0x1EE5,0x564,2},{0x1EE6,0x566,2},{0x1EE7,0x568,2},{0x1EE8,0x56A,3},
{0x1EE9,0x56D,3},{0x1EEA,0x570,3},{0x1EEB,0x573,3},{0x1EEC,0x576,3},{0x1EED,0x579,3},
{0x1EEE,0x57C,3},{0x1EEF,0x57F,3},{0x1EF0,0x582,3},{0x1EF1,0x585,3},{0x1EF2,0x588,2},
{0x1EF3,0x58A,2},{0x1EF4,0x58C,2},{0x1EF5,0x58E,2},{0x1EF6,0x590,2},{0x1EF7,0x592,2},
{0x1EF8,0x594,2},{0x1EF9,0x596,2},{0x1F00,0x598,2},{0x1F01,0x59A,2},{0x1F02,0x59C,3},
{0x1F03,0x59F,3},{0x1F04,0x5A2,3},{0x1F05,0x5A5,3},{0x1F06,0x5A8,3},{0x1F07,0x5AB,3},
{0x1F08,0x5AE,2},{0x1F09,0x5B0,2},{0x1F0A,0x5B2,3},{0x1F0B,0x5B5,3},{0x1F0C,0x5B8,3},
{0x1F0D,0x5BB,3},{0x1F0E,0x5BE,3},{0x1F0F,0x5C1,3},{0x1F10,0x5C4,2},{0x1F11,0x5C6,2},
{0x1F12,0x5C8,3},{0x1F13,0x5CB,3},{0x1F14,0x5CE,3},{0x1F15,0x5D1,3},{0x1F18,0x5D4,2},
{0x1F19,0x5D6,2},{0x1F1A,0x5D8,3},{0x1F1B,0x5DB,3},{0x1F1C,0x5DE,3},{0x1F1D,0x5E1,3},
{0x1F20,0x5E4,2},{0x1F21,0x5E6,2},{0x1F22,0x5E8,3},{0x1F23,0x5EB,3},{0x1F24,0x5EE,3},
{0x1F25,0x5F1,3},{0x1F26,0x5F4,3},{0x1F27,0x5F7,3},{0x1F28,0x5FA,2},{0x1F29,0x5FC,2},
{0x1F2A,0x5FE,3},{0x1F2B,0x601,3},{0x1F2C,0x604,3},{0x1F2D,0x607,3},{0x1F2E,0x60A,3},
{0x1F2F,0x60D,3},{0x1F30,0x610,2},{0x1F31,0x612,2},{0x1F32,0x614,3},{0x1F33,0x617,3},
{0x1F34,0x61A,3},{0x1F35,0x61D,3},{0x1F36,0x620,3},{0x1F37,0x623,3},{0x1F38,0x626,2},
{0x1F39,0x628,2},{0x1F3A,0x62A,3},{0x1F3B,0x62D,3},{0x1F3C,0x630,3},{0x1F3D,0x633,3},
{0x1F3E,0x636,3},{0x1F3F,0x639,3},{0x1F40,0x63C,2},{0x1F41,0x63E,2},{0x1F42,0x640,3},
{0x1F43,0x643,3},{0x1F44,0x646,3},{0x1F45,0x649,3},{0x1F48,0x64C,2},{0x1F49,0x64E,2},
{0x1F4A,0x650,3},{0x1F4B,0x653,3},{0x1F4C,0x656,3},{0x1F4D,0x659,3},{0x1F50,0x65C,2},
{0x1F51,0x65E,2},{0x1F52,0x660,3},{0x1F53,0x663,3},{0x1F54,0x666,3},{0x1F55,0x669,3},
{0x1F56,0x66C,3},{0x1F57,0x66F,3},{0x1F59,0x672,2},{0x1F5B,0x674,3},{0x1F5D,0x677,3},
{0x1F5F,0x67A,3},{0x1F60,0x67D,2},{0x1F61,0x67F,2},{0x1F62,0x681,3},{0x1F63,0x684,3},
{0x1F64,0x687,3},{0x1F65,0x68A,3},{0x1F66,0x68D,3},{0x1F67,0x690,3},{0x1F68,0x693,2},
{0x1F69,0x695,2},{0x1F6A,0x697,3},{0x1F6B,0x69A,3},{0x1F6C,0x69D,3},{0x1F6D,0x6A0,3},
{0x1F6E,0x6A3,3},{0x1F6F,0x6A6,3},{0x1F70,0x6A9,2},{0x1F71,0x6AB,2},{0x1F72,0x6AD,2},
{0x1F73,0x6AF,2},{0x1F74,0x6B1,2},{0x1F75,0x6B3,2},{0x1F76,0x6B5,2},{0x1F77,0x6B7,2},
{0x1F78,0x6B9,2},{0x1F79,0x6BB,2},{0x1F7A,0x6BD,2},{0x1F7B,0x6BF,2},{0x1F7C,0x6C1,2},
{0x1F7D,0x6C3,2},{0x1F80,0x6C5,3},{0x1F81,0x6C8,3},{0x1F82,0x6CB,4},{0x1F83,0x6CF,4},
{0x1F84,0x6D3,4},{0x1F85,0x6D7,4},{0x1F86,0x6DB,4},{0x1F87,0x6DF,4},{0x1F88,0x6E3,3},
{0x1F89,0x6E6,3},{0x1F8A,0x6E9,4},{0x1F8B,0x6ED,4},{0x1F8C,0x6F1,4},{0x1F8D,0x6F5,4},
{0x1F8E,0x6F9,4},{0x1F8F,0x6FD,4},{0x1F90,0x701,3},{0x1F91,0x704,3},{0x1F92,0x707,4},
{0x1F93,0x70B,4},{0x1F94,0x70F,4},{0x1F95,0x713,4},{0x1F96,0x717,4},{0x1F97,0x71B,4},
{0x1F98,0x71F,3},{0x1F99,0x722,3},{0x1F9A,0x725,4},{0x1F9B,0x729,4},{0x1F9C,0x72D,4},
{0x1F9D,0x731,4},{0x1F9E,0x735,4},{0x1F9F,0x739,4},{0x1FA0,0x73D,3},{0x1FA1,0x740,3},
{0x1FA2,0x743,4},{0x1FA3,0x747,4},{0x1FA4,0x74B,4},{0x1FA5,0x74F,4},{0x1FA6,0x753,4},
{0x1FA7,0x757,4},{0x1FA8,0x75B,3},{0x1FA9,0x75E,3},{0x1FAA,0x761,4},{0x1FAB,0x765,4},
{0x1FAC,0x769,4},{0x1FAD,0x76D,4},{0x1FAE,0x771,4},{0x1FAF,0x775,4},{0x1FB0,0x779,2},
{0x1FB1,0x77B,2},{0x1FB2,0x77D,3},{0x1FB3,0x780,2},{0x1FB4,0x782,3},{0x1FB6,0x785,2},
{0x1FB7,0x787,3},{0x1FB8,0x78A,2},{0x1FB9,0x78C,2},{0x1FBA,0x78E,2},{0x1FBB,0x790,2},
{0x1FBC,0x792,2},{0x1FBE,0x794,1},{0x1FC1,0x795,2},{0x1FC2,0x797,3},{0x1FC3,0x79A,2},
{0x1FC4,0x79C,3},{0x1FC6,0x79F,2},{0x1FC7,0x7A1,3},{0x1FC8,0x7A4,2},{0x1FC9,0x7A6,2},
{0x1FCA,0x7A8,2},{0x1FCB,0x7AA,2},{0x1FCC,0x7AC,2},{0x1FCD,0x7AE,2},{0x1FCE,0x7B0,2},
{0x1FCF,0x7B2,2},{0x1FD0,0x7B4,2},{0x1FD1,0x7B6,2},{0x1FD2,0x7B8,3},{0x1FD3,0x7BB,3},
{0x1FD6,0x7BE,2},{0x1FD7,0x7C0,3},{0x1FD8,0x7C3,2},{0x1FD9,0x7C5,2},{0x1FDA,0x7C7,2},
{0x1FDB,0x7C9,2},{0x1FDD,0x7CB,2},{0x1FDE,0x7CD,2},{0x1FDF,0x7CF,2},{0x1FE0,0x7D1,2},
{0x1FE1,0x7D3,2},{0x1FE2,0x7D5,3},{0x1FE3,0x7D8,3},{0x1FE4,0x7DB,2},{0x1FE5,0x7DD,2},
{0x1FE6,0x7DF,2},{0x1FE7,0x7E1,3},{0x1FE8,0x7E4,2},{0x1FE9,0x7E6,2},{0x1FEA,0x7E8,2},
{0x1FEB,0x7EA,2},{0x1FEC,0x7EC,2},{0x1FED,0x7EE,2},{0x1FEE,0x7F0,2},{0x1FEF,0x7F2,1},
{0x1FF2,0x7F3,3},{0x1FF3,0x7F6,2},{0x1FF4,0x7F8,3},{0x1FF6,0x7FB,2},{0x1FF7,0x7FD,3},
{0x1FF8,0x800,2},{0x1FF9,0x802,2},{0x1FFA,0x804,2},{0x1FFB,0x806,2},{0x1FFC,0x808,2},
{0x1FFD,0x80A,1},{0x2000,0x80B,1},{0x2001,0x80C,1},{0x2126,0x80D,1},{0x212A,0x80E,1},
{0x212B,0x80F,2},{0x219A,0x811,2},{0x219B,0x813,2},{0x21AE,0x815,2},{0x21CD,0x817,2},
{0x21CE,0x819,2},{0x21CF,0x81B,2},{0x2204,0x81D,2},{0x2209,0x81F,2},{0x220C,0x821,2},
{0x2224,0x823,2},{0x2226,0x825,2},{0x2241,0x827,2},{0x2244,0x829,2},{0x2247,0x82B,2},
{0x2249,0x82D,2},{0x2260,0x82F,2},{0x2262,0x831,2},{0x226D,0x833,2},{0x226E,0x835,2},
{0x226F,0x837,2},{0x2270,0x839,2},{0x2271,0x83B,2},{0x2274,0x83D,2},{0x2275,0x83F,2},
{0x2278,0x841,2},{0x2279,0x843,2},{0x2280,0x845,2},{0x2281,0x847,2},{0x2284,0x849,2},
{0x2285,0x84B,2},{0x2288,0x84D,2},{0x2289,0x84F,2},{0x22AC,0x851,2},{0x22AD,0x853,2},
{0x22AE,0x855,2},{0x22AF,0x857,2},{0x22E0,0x859,2},{0x22E1,0x85B,2},{0x22E2,0x85D,2},
{0x22E3,0x85F,2},{0x22EA,0x861,2},{0x22EB,0x863,2},{0x22EC,0x865,2},{0x22ED,0x867,2},
{0x2329,0x869,1},{0x232A,0x86A,1},{0x2ADC,0x86B,2},{0x304C,0x86D,2},{0x304E,0x86F,2},
{0x3050,0x871,2},{0x3052,0x873,2},{0x3054,0x875,2},{0x3056,0x877,2},{0x3058,0x879,2},
{0x305A,0x87B,2},{0x305C,0x87D,2},{0x305E,0x87F,2},{0x3060,0x881,2},{0x3062,0x883,2},
{0x3065,0x885,2},{0x3067,0x887,2},{0x3069,0x889,2},{0x3070,0x88B,2},{0x3071,0x88D,2},
{0x3073,0x88F,2},{0x3074,0x891,2},{0x3076,0x893,2},{0x3077,0x895,2},{0x3079,0x897,2},
{0x307A,0x899,2},{0x307C,0x89B,2},{0x307D,0x89D,2},{0x3094,0x89F,2},{0x309E,0x8A1,2},
{0x30AC,0x8A3,2},{0x30AE,0x8A5,2},{0x30B0,0x8A7,2},{0x30B2,0x8A9,2},{0x30B4,0x8AB,2},
{0x30B6,0x8AD,2},{0x30B8,0x8AF,2},{0x30BA,0x8B1,2},{0x30BC,0x8B3,2},{0x30BE,0x8B5,2},
{0x30C0,0x8B7,2},{0x30C2,0x8B9,2},{0x30C5,0x8BB,2},{0x30C7,0x8BD,2},{0x30C9,0x8BF,2},
{0x30D0,0x8C1,2},{0x30D1,0x8C3,2},{0x30D3,0x8C5,2},{0x30D4,0x8C7,2},{0x30D6,0x8C9,2},
{0x30D7,0x8CB,2},{0x30D9,0x8CD,2},{0x30DA,0x8CF,2},{0x30DC,0x8D1,2},{0x30DD,0x8D3,2},
{0x30F4,0x8D5,2},{0x30F7,0x8D7,2},{0x30F8,0x8D9,2},{0x30F9,0x8DB,2},{0x30FA,0x8DD,2},
{0x30FE,0x8DF,2},{0xF900,0x8E1,1},{0xF901,0x8E2,1},{0xF902,0x8E3,1},{0xF903,0x8E4,1},
{0xF904,0x8E5,1},{0xF905,0x8E6,1},{0xF906,0x8E7,1},{0xF907,0x8E8,1},{0xF908,0x8E9,1},
{0xF909,0x8EA,1},{0xF90A,0x8EB,1},{0xF90B,0x8EC,1},{0xF90C,0x8ED,1},{0xF90D,0x8EE,1},
{0xF90E,0x8EF,1},{0xF90F,0x8F0,1},{0xF910,0x8F1,1},{0xF911,0x8F2,1},{0xF912,0x8F3,1},
{0xF913,0x8F4,1},{0xF914,0x8F5,1},{0xF915,0x8F6,1},{0xF916,0x8F7,1},{0xF917,0x8F8,1},
{0xF918,0x8F9,1},{0xF919,0x8FA,1},{0xF91A,0x8FB,1},{0xF91B,0x8FC,1},{0xF91C,0x8FD,1},
{0xF91D,0x8FE,1},{0xF91E,0x8FF,1},{0xF91F,0x900,1},{0xF920,0x901,1},{0xF921,0x902,1},
{0xF922,0x903,1},{0xF923,0x904,1},{0xF924,0x905,1},{0xF925,0x906,1},{0xF926,0x907,1},
{0xF927,0x908,1},{0xF928,0x909,1},{0xF929,0x90A,1},{0xF92A,0x90B,1},{0xF92B,0x90C,1},
{0xF92C,0x90D,1},{0xF92D,0x90E,1},{0xF92E,0x90F,1},{0xF92F,0x910,1},{0xF930,0x911,1},
{0xF931,0x912,1},{0xF932,0x913,1},{0xF933,0x914,1},{0xF934,0x915,1},{0xF935,0x916,1},
{0xF936,0x917,1},{0xF937,0x918,1},{0xF938,0x919,1},{0xF939,0x91A,1},{0xF93A,0x91B,1},
{0xF93B,0x91C,1},{0xF93C,0x91D,1},{0xF93D,0x91E,1},{0xF93E,0x91F,1},{0xF93F,0x920,1},
{0xF940,0x921,1},{0xF941,0x922,1},{0xF942,0x923,1},{0xF943,0x924,1},{0xF944,0x925,1},
{0xF945,0x926,1},{0xF946,0x927,1},{0xF947,0x928,1},{0xF948,0x929,1},{0xF949,0x92A,1},
{0xF94A,0x92B,1},{0xF94B,0x92C,1},{0xF94C,0x92D,1},{0xF94D,0x92E,1},{0xF94E,0x92F,1},
{0xF94F,0x930,1},{0xF950,0x931,1},{0xF951,0x932,1},{0xF952,0x933,1},{0xF953,0x934,1},
{0xF954,0x935,1},{0xF955,0x936,1},{0xF956,0x937,1},{0xF957,0x938,1},{0xF958,0x939,1},
{0xF959,0x93A,1},{0xF95A,0x93B,1},{0xF95B,0x93C,1},{0xF95C,0x93D,1},{0xF95D,0x93E,1},
{0xF95E,0x93F,1},{0xF95F,0x940,1},{0xF960,0x941,1},{0xF961,0x942,1},{0xF962,0x943,1},
{0xF963,0x944,1},{0xF964,0x945,1},{0xF965,0x946,1},{0xF966,0x947,1},{0xF967,0x948,1},
{0xF968,0x949,1},{0xF969,0x94A,1},{0xF96A,0x94B,1},{0xF96B,0x94C,1},{0xF96C,0x94D,1},
{0xF96D,0x94E,1},{0xF96E,0x94F,1},{0xF96F,0x950,1},{0xF970,0x951,1},{0xF971,0x952,1},
{0xF972,0x953,1},{0xF973,0x954,1},{0xF974,0x955,1},{0xF975,0x956,1},{0xF976,0x957,1},
{0xF977,0x958,1},{0xF978,0x959,1},{0xF979,0x95A,1},{0xF97A,0x95B,1},{0xF97B,0x95C,1},
{0xF97C,0x95D,1},{0xF97D,0x95E,1},{0xF97E,0x95F,1},{0xF97F,0x960,1},{0xF980,0x961,1},
{0xF981,0x962,1},{0xF982,0x963,1},{0xF983,0x964,1},{0xF984,0x965,1},{0xF985,0x966,1},
{0xF986,0x967,1},{0xF987,0x968,1},{0xF988,0x969,1},{0xF989,0x96A,1},{0xF98A,0x96B,1},
{0xF98B,0x96C,1},{0xF98C,0x96D,1},{0xF98D,0x96E,1},{0xF98E,0x96F,1},{0xF98F,0x970,1},
{0xF990,0x971,1},{0xF991,0x972,1},{0xF992,0x973,1},{0xF993,0x974,1},{0xF994,0x975,1},
{0xF995,0x976,1},{0xF996,0x977,1},{0xF997,0x978,1},{0xF998,0x979,1},{0xF999,0x97A,1},
{0xF99A,0x97B,1},{0xF99B,0x97C,1},{0xF99C,0x97D,1},{0xF99D,0x97E,1},{0xF99E,0x97F,1},
{0xF99F,0x980,1},{0xF9A0,0x981,1},{0xF9A1,0x982,1},{0xF9A2,0x983,1},{0xF9A3,0x984,1},
{0xF9A4,0x985,1},{0xF9A5,0x986,1},{0xF9A6,0x987,1},{0xF9A7,0x988,1},{0xF9A8,0x989,1},
{0xF9A9,0x98A,1},{0xF9AA,0x98B,1},{0xF9AB,0x98C,1},{0xF9AC,0x98D,1},{0xF9AD,0x98E,1},
{0xF9AE,0x98F,1},{0xF9AF,0x990,1},{0xF9B0,0x991,1},{0xF9B1,0x992,1},{0xF9B2,0x993,1},
{0xF9B3,0x994,1},{0xF9B4,0x995,1},{0xF9B5,0x996,1},{0xF9B6,0x997,1},{0xF9B7,0x998,1},
{0xF9B8,0x999,1},{0xF9B9,0x99A,1},{0xF9BA,0x99B,1},{0xF9BB,0x99C,1},{0xF9BC,0x99D,1},
{0xF9BD,0x99E,1},{0xF9BE,0x99F,1},{0xF9BF,0x9A0,1},{0xF9C0,0x9A1,1},{0xF9C1,0x9A2,1},
{0xF9C2,0x9A3,1},{0xF9C3,0x9A4,1},{0xF9C4,0x9A5,1},{0xF9C5,0x9A6,1},{0xF9C6,0x9A7,1},
{0xF9C7,0x9A8,1},{0xF9C8,0x9A9,1},{0xF9C9,0x9AA,1},{0xF9CA,0x9AB,1},{0xF9CB,0x9AC,1},
{0xF9CC,0x9AD,1},{0xF9CD,0x9AE,1},{0xF9CE,0x9AF,1},{0xF9CF,0x9B0,1},{0xF9D0,0x9B1,1},
{0xF9D1,0x9B2,1},{0xF9D2,0x9B3,1},{0xF9D3,0x9B4,1},{0xF9D4,0x9B5,1},{0xF9D5,0x9B6,1},
{0xF9D6,0x9B7,1},{0xF9D7,0x9B8,1},{0xF9D8,0x9B9,1},{0xF9D9,0x9BA,1},{0xF9DA,0x9BB,1},
{0xF9DB,0x9BC,1},{0xF9DC,0x9BD,1},{0xF9DD,0x9BE,1},{0xF9DE,0x9BF,1},{0xF9DF,0x9C0,1},
{0xF9E0,0x9C1,1},{0xF9E1,0x9C2,1},{0xF9E2,0x9C3,1},{0xF9E3,0x9C4,1},{0xF9E4,0x9C5,1},
{0xF9E5,0x9C6,1},{0xF9E6,0x9C7,1},{0xF9E7,0x9C8,1},{0xF9E8,0x9C9,1},{0xF9E9,0x9CA,1},
{0xF9EA,0x9CB,1},{0xF9EB,0x9CC,1},{0xF9EC,0x9CD,1},{0xF9ED,0x9CE,1},{0xF9EE,0x9CF,1},
{0xF9EF,0x9D0,1},{0xF9F0,0x9D1,1},{0xF9F1,0x9D2,1},{0xF9F2,0x9D3,1},{0xF9F3,0x9D4,1},
{0xF9F4,0x9D5,1},{0xF9F5,0x9D6,1},{0xF9F6,0x9D7,1},{0xF9F7,0x9D8,1},{0xF9F8,0x9D9,1},
{0xF9F9,0x9DA,1},{0xF9FA,0x9DB,1},{0xF9FB,0x9DC,1},{0xF9FC,0x9DD,1},{0xF9FD,0x9DE,1},
{0xF9FE,0x9DF,1},{0xF9FF,0x9E0,1},{0xFA00,0x9E1,1},{0xFA01,0x9E2,1},{0xFA02,0x9E3,1},
{0xFA03,0x9E4,1},{0xFA04,0x9E5,1},{0xFA05,0x9E6,1},{0xFA06,0x9E7,1},{0xFA07,0x9E8,1},
{0xFA08,0x9E9,1},{0xFA09,0x9EA,1},{0xFA0A,0x9EB,1},{0xFA0B,0x9EC,1},{0xFA0C,0x9ED,1},
{0xFA0D,0x9EE,1},{0xFA10,0x9EF,1},{0xFA12,0x9F0,1},{0xFA15,0x9F1,1},{0xFA16,0x9F2,1},
{0xFA17,0x9F3,1},{0xFA18,0x9F4,1},{0xFA19,0x9F5,1},{0xFA1A,0x9F6,1},{0xFA1B,0x9F7,1},
{0xFA1C,0x9F8,1},{0xFA1D,0x9F9,1},{0xFA1E,0x9FA,1},{0xFA20,0x9FB,1},{0xFA22,0x9FC,1},
{0xFA25,0x9FD,1},{0xFA26,0x9FE,1},{0xFA2A,0x9FF,1},{0xFA2B,0xA00,1},{0xFA2C,0xA01,1},
{0xFA2D,0xA02,1},{0xFA2E,0xA03,1},{0xFA2F,0xA04,1},{0xFA30,0xA05,1},{0xFA31,0xA06,1},
{0xFA32,0xA07,1},{0xFA33,0xA08,1},{0xFA34,0xA09,1},{0xFA35,0xA0A,1},{0xFA36,0xA0B,1},
{0xFA37,0xA0C,1},{0xFA38,0xA0D,1},{0xFA39,0xA0E,1},{0xFA3A,0xA0F,1},{0xFA3B,0xA10,1},
{0xFA3C,0xA11,1},{0xFA3D,0xA12,1},{0xFA3E,0xA13,1},{0xFA3F,0xA14,1},{0xFA40,0xA15,1},
{0xFA41,0xA16,1},{0xFA42,0xA17,1},{0xFA43,0xA18,1},{0xFA44,0xA19,1},{0xFA45,0xA1A,1},
{0xFA46,0xA1B,1},{0xFA47,0xA1C,1},{0xFA48,0xA1D,1},{0xFA49,0xA1E,1},{0xFA4A,0xA1F,1},
{0xFA4B,0xA20,1},{0xFA4C,0xA21,1},{0xFA4D,0xA22,1},{0xFA4E,0xA23,1},{0xFA4F,0xA24,1},
{0xFA50,0xA25,1},{0xFA51,0xA26,1},{0xFA52,0xA27,1},{0xFA53,0xA28,1},{0xFA54,0xA29,1},
{0xFA55,0xA2A,1},{0xFA56,0xA2B,1},{0xFA57,0xA2C,1},{0xFA58,0xA2D,1},{0xFA59,0xA2E,1},
{0xFA5A,0xA2F,1},{0xFA5B,0xA30,1},{0xFA5C,0xA31,1},{0xFA5D,0xA32,1},{0xFA5E,0xA33,1},
{0xFA5F,0xA34,1},{0xFA60,0xA35,1},{0xFA61,0xA36,1},{0xFA62,0xA37,1},{0xFA63,0xA38,1},
{0xFA64,0xA39,1},{0xFA65,0xA3A,1},{0xFA66,0xA3B,1},{0xFA67,0xA3C,1},{0xFA68,0xA3D,1},
{0xFA69,0xA3E,1},{0xFA6A,0xA3F,1},{0xFA6B,0xA40,1},{0xFA6C,0xA41,1},{0xFA6D,0xA42,1},
{0xFA70,0xA43,1},{0xFA71,0xA44,1},{0xFA72,0xA45,1},{0xFA73,0xA46,1},{0xFA74,0xA47,1},
{0xFA75,0xA48,1},{0xFA76,0xA49,1},{0xFA77,0xA4A,1},{0xFA78,0xA4B,1},{0xFA79,0xA4C,1},
{0xFA7A,0xA4D,1},{0xFA7B,0xA4E,1},{0xFA7C,0xA4F,1},{0xFA7D,0xA50,1},{0xFA7E,0xA51,1},
{0xFA7F,0xA52,1},{0xFA80,0xA53,1},{0xFA81,0xA54,1},{0xFA82,0xA55,1},{0xFA83,0xA56,1},
{0xFA84,0xA57,1},{0xFA85,0xA58,1},{0xFA86,0xA59,1},{0xFA87,0xA5A,1},{0xFA88,0xA5B,1},
{0xFA89,0xA5C,1},{0xFA8A,0xA5D,1},{0xFA8B,0xA5E,1},{0xFA8C,0xA5F,1},{0xFA8D,0xA60,1},
{0xFA8E,0xA61,1},{0xFA8F,0xA62,1},{0xFA90,0xA63,1},{0xFA91,0xA64,1},{0xFA92,0xA65,1},
{0xFA93,0xA66,1},{0xFA94,0xA67,1},{0xFA95,0xA68,1},{0xFA96,0xA69,1},{0xFA97,0xA6A,1},
{0xFA98,0xA6B,1},{0xFA99,0xA6C,1},{0xFA9A,0xA6D,1},{0xFA9B,0xA6E,1},{0xFA9C,0xA6F,1},
{0xFA9D,0xA70,1},{0xFA9E,0xA71,1},{0xFA9F,0xA72,1},{0xFAA0,0xA73,1},{0xFAA1,0xA74,1},
{0xFAA2,0xA75,1},{0xFAA3,0xA76,1},{0xFAA4,0xA77,1},{0xFAA5,0xA78,1},{0xFAA6,0xA79,1},
{0xFAA7,0xA7A,1},{0xFAA8,0xA7B,1},{0xFAA9,0xA7C,1},{0xFAAA,0xA7D,1},{0xFAAB,0xA7E,1},
{0xFAAC,0xA7F,1},{0xFAAD,0xA80,1},{0xFAAE,0xA81,1},{0xFAAF,0xA82,1},{0xFAB0,0xA83,1},
{0xFAB1,0xA84,1},{0xFAB2,0xA85,1},{0xFAB3,0xA86,1},{0xFAB4,0xA87,1},{0xFAB5,0xA88,1},
{0xFAB6,0xA89,1},{0xFAB7,0xA8A,1},{0xFAB8,0xA8B,1},{0xFAB9,0xA8C,1},{0xFABA,0xA8D,1},
{0xFABB,0xA8E,1},{0xFABC,0xA8F,1},{0xFABD,0xA90,1},{0xFABE,0xA91,1},{0xFABF,0xA92,1},
{0xFAC0,0xA93,1},{0xFAC1,0xA94,1},{0xFAC2,0xA95,1},{0xFAC3,0xA96,1},{0xFAC4,0xA97,1},
{0xFAC5,0xA98,1},{0xFAC6,0xA99,1},{0xFAC7,0xA9A,1},{0xFAC8,0xA9B,1},{0xFAC9,0xA9C,1},
{0xFACA,0xA9D,1},{0xFACB,0xA9E,1},{0xFACC,0xA9F,1},{0xFACD,0xAA0,1},{0xFACE,0xAA1,1},
{0xFACF,0xAA2,1},{0xFAD0,0xAA3,1},{0xFAD1,0xAA4,1},{0xFAD2,0xAA5,1},{0xFAD3,0xAA6,1},
{0xFAD4,0xAA7,1},{0xFAD5,0xAA8,1},{0xFAD6,0xAA9,1},{0xFAD7,0xAAA,1},{0xFAD8,0xAAB,1},
{0xFAD9,0xAAC,1},{0xFB1D,0xAAD,2},{0xFB1F,0xAAF,2},{0xFB2A,0xAB1,2},{0xFB2B,0xAB3,2},
{0xFB2C,0xAB5,3},{0xFB2D,0xAB8,3},{0xFB2E,0xABB,2},{0xFB2F,0xABD,2},{0xFB30,0xABF,2},
{0xFB31,0xAC1,2},{0xFB32,0xAC3,2},{0xFB33,0xAC5,2},{0xFB34,0xAC7,2},{0xFB35,0xAC9,2},
{0xFB36,0xACB,2},{0xFB38,0xACD,2},{0xFB39,0xACF,2},{0xFB3A,0xAD1,2},{0xFB3B,0xAD3,2},
{0xFB3C,0xAD5,2},{0xFB3E,0xAD7,2},{0xFB40,0xAD9,2},{0xFB41,0xADB,2},{0xFB43,0xADD,2},
{0xFB44,0xADF,2},{0xFB46,0xAE1,2},{0xFB47,0xAE3,2},{0xFB48,0xAE5,2},{0xFB49,0xAE7,2},
{0xFB4A,0xAE9,2},{0xFB4B,0xAEB,2},{0xFB4C,0xAED,2},{0xFB4D,0xAEF,2},{0xFB4E,0xAF1,2},
{0x1109A,0xAF3,2},{0x1109C,0xAF5,2},{0x110AB,0xAF7,2},{0x1112E,0xAF9,2},{0x1112F,0xAFB,2},
{0x1134B,0xAFD,2},{0x1134C,0xAFF,2},{0x114BB,0xB01,2},{0x114BC,0xB03,2},{0x114BE,0xB05,2},
{0x115BA,0xB07,2},{0x115BB,0xB09,2},{0x1D15E,0xB0B,2},{0x1D15F,0xB0D,2},{0x1D160,0xB0F,3},
{0x1D161,0xB12,3},{0x1D162,0xB15,3},{0x1D163,0xB18,3},{0x1D164,0xB1B,3},{0x1D1BB,0xB1E,2},
{0x1D1BC,0xB20,2},{0x1D1BD,0xB22,3},{0x1D1BE,0xB25,3},{0x1D1BF,0xB28,3},{0x1D1C0,0xB2B,3},
{0x2F800,0xB2E,1},{0x2F801,0xB2F,1},{0x2F802,0xB30,1},{0x2F803,0xB31,1},{0x2F804,0xB32,1},
{0x2F805,0xB33,1},{0x2F806,0xB34,1},{0x2F807,0xB35,1},{0x2F808,0xB36,1},{0x2F809,0xB37,1},
{0x2F80A,0xB38,1},{0x2F80B,0xB39,1},{0x2F80C,0xB3A,1},{0x2F80D,0xB3B,1},{0x2F80E,0xB3C,1},
{0x2F80F,0xB3D,1},{0x2F810,0xB3E,1},{0x2F811,0xB3F,1},{0x2F812,0xB40,1},{0x2F813,0xB41,1},
{0x2F814,0xB42,1},{0x2F815,0xB43,1},{0x2F816,0xB44,1},{0x2F817,0xB45,1},{0x2F818,0xB46,1},
{0x2F819,0xB47,1},{0x2F81A,0xB48,1},{0x2F81B,0xB49,1},{0x2F81C,0xB4A,1},{0x2F81D,0xB4B,1},
{0x2F81E,0xB4C,1},{0x2F81F,0xB4D,1},{0x2F820,0xB4E,1},{0x2F821,0xB4F,1},{0x2F822,0xB50,1},
{0x2F823,0xB51,1},{0x2F824,0xB52,1},{0x2F825,0xB53,1},{0x2F826,0xB54,1},{0x2F827,0xB55,1},
{0x2F828,0xB56,1},{0x2F829,0xB57,1},{0x2F82A,0xB58,1},{0x2F82B,0xB59,1},{0x2F82C,0xB5A,1},
{0x2F82D,0xB5B,1},{0x2F82E,0xB5C,1},{0x2F82F,0xB5D,1},{0x2F830,0xB5E,1},{0x2F831,0xB5F,1},
{0x2F832,0xB60,1},{0x2F833,0xB61,1},{0x2F834,0xB62,1},{0x2F835,0xB63,1},{0x2F836,0xB64,1},
{0x2F837,0xB65,1},{0x2F838,0xB66,1},{0x2F839,0xB67,1},{0x2F83A,0xB68,1},{0x2F83B,0xB69,1},
{0x2F83C,0xB6A,1},{0x2F83D,0xB6B,1},{0x2F83E,0xB6C,1},{0x2F83F,0xB6D,1},{0x2F840,0xB6E,1},
{0x2F841,0xB6F,1},{0x2F842,0xB70,1},{0x2F843,0xB71,1},{0x2F844,0xB72,1},{0x2F845,0xB73,1},
{0x2F846,0xB74,1},{0x2F847,0xB75,1},{0x2F848,0xB76,1},{0x2F849,0xB77,1},{0x2F84A,0xB78,1},
{0x2F84B,0xB79,1},{0x2F84C,0xB7A,1},{0x2F84D,0xB7B,1},{0x2F84E,0xB7C,1},{0x2F84F,0xB7D,1},
{0x2F850,0xB7E,1},{0x2F851,0xB7F,1},{0x2F852,0xB80,1},{0x2F853,0xB81,1},{0x2F854,0xB82,1},
{0x2F855,0xB83,1},{0x2F856,0xB84,1},{0x2F857,0xB85,1},{0x2F858,0xB86,1},{0x2F859,0xB87,1},
{0x2F85A,0xB88,1},{0x2F85B,0xB89,1},{0x2F85C,0xB8A,1},{0x2F85D,0xB8B,1},{0x2F85E,0xB8C,1},
{0x2F85F,0xB8D,1},{0x2F860,0xB8E,1},{0x2F861,0xB8F,1},{0x2F862,0xB90,1},{0x2F863,0xB91,1},
{0x2F864,0xB92,1},{0x2F865,0xB93,1},{0x2F866,0xB94,1},{0x2F867,0xB95,1},{0x2F868,0xB96,1},
{0x2F869,0xB97,1},{0x2F86A,0xB98,1},{0x2F86B,0xB99,1},{0x2F86C,0xB9A,1},{0x2F86D,0xB9B,1},
{0x2F86E,0xB9C,1},{0x2F86F,0xB9D,1},{0x2F870,0xB9E,1},{0x2F871,0xB9F,1},{0x2F872,0xBA0,1},
{0x2F873,0xBA1,1},{0x2F874,0xBA2,1},{0x2F875,0xBA3,1},{0x2F876,0xBA4,1},{0x2F877,0xBA5,1},
{0x2F878,0xBA6,1},{0x2F879,0xBA7,1},{0x2F87A,0xBA8,1},{0x2F87B,0xBA9,1},{0x2F87C,0xBAA,1},
{0x2F87D,0xBAB,1},{0x2F87E,0xBAC,1},{0x2F87F,0xBAD,1},{0x2F880,0xBAE,1},{0x2F881,0xBAF,1},
{0x2F882,0xBB0,1},{0x2F883,0xBB1,1},{0x2F884,0xBB2,1},{0x2F885,0xBB3,1},{0x2F886,0xBB4,1},
{0x2F887,0xBB5,1},{0x2F888,0xBB6,1},{0x2F889,0xBB7,1},{0x2F88A,0xBB8,1},{0x2F88B,0xBB9,1},
{0x2F88C,0xBBA,1},{0x2F88D,0xBBB,1},{0x2F88E,0xBBC,1},{0x2F88F,0xBBD,1},{0x2F890,0xBBE,1},
{0x2F891,0xBBF,1},{0x2F892,0xBC0,1},{0x2F893,0xBC1,1},{0x2F894,0xBC2,1},{0x2F895,0xBC3,1},
{0x2F896,0xBC4,1},{0x2F897,0xBC5,1},{0x2F898,0xBC6,1},{0x2F899,0xBC7,1},{0x2F89A,0xBC8,1},
{0x2F89B,0xBC9,1},{0x2F89C,0xBCA,1},{0x2F89D,0xBCB,1},{0x2F89E,0xBCC,1},{0x2F89F,0xBCD,1},
{0x2F8A0,0xBCE,1},{0x2F8A1,0xBCF,1},{0x2F8A2,0xBD0,1},{0x2F8A3,0xBD1,1},{0x2F8A4,0xBD2,1},
{0x2F8A5,0xBD3,1},{0x2F8A6,0xBD4,1},{0x2F8A7,0xBD5,1},{0x2F8A8,0xBD6,1},{0x2F8A9,0xBD7,1},
{0x2F8AA,0xBD8,1},{0x2F8AB,0xBD9,1},{0x2F8AC,0xBDA,1},{0x2F8AD,0xBDB,1},{0x2F8AE,0xBDC,1},
{0x2F8AF,0xBDD,1},{0x2F8B0,0xBDE,1},{0x2F8B1,0xBDF,1},{0x2F8B2,0xBE0,1},{0x2F8B3,0xBE1,1},
{0x2F8B4,0xBE2,1},{0x2F8B5,0xBE3,1},{0x2F8B6,0xBE4,1},{0x2F8B7,0xBE5,1},{0x2F8B8,0xBE6,1},
{0x2F8B9,0xBE7,1},{0x2F8BA,0xBE8,1},{0x2F8BB,0xBE9,1},{0x2F8BC,0xBEA,1},{0x2F8BD,0xBEB,1},
{0x2F8BE,0xBEC,1},{0x2F8BF,0xBED,1},{0x2F8C0,0xBEE,1},{0x2F8C1,0xBEF,1},{0x2F8C2,0xBF0,1},
{0x2F8C3,0xBF1,1},{0x2F8C4,0xBF2,1},{0x2F8C5,0xBF3,1},{0x2F8C6,0xBF4,1},{0x2F8C7,0xBF5,1},
{0x2F8C8,0xBF6,1},{0x2F8C9,0xBF7,1},{0x2F8CA,0xBF8,1},{0x2F8CB,0xBF9,1},{0x2F8CC,0xBFA,1},
{0x2F8CD,0xBFB,1},{0x2F8CE,0xBFC,1},{0x2F8CF,0xBFD,1},{0x2F8D0,0xBFE,1},{0x2F8D1,0xBFF,1},
{0x2F8D2,0xC00,1},{0x2F8D3,0xC01,1},{0x2F8D4,0xC02,1},{0x2F8D5,0xC03,1},{0x2F8D6,0xC04,1},
{0x2F8D7,0xC05,1},{0x2F8D8,0xC06,1},{0x2F8D9,0xC07,1},{0x2F8DA,0xC08,1},{0x2F8DB,0xC09,1},
{0x2F8DC,0xC0A,1},{0x2F8DD,0xC0B,1},{0x2F8DE,0xC0C,1},{0x2F8DF,0xC0D,1},{0x2F8E0,0xC0E,1},
{0x2F8E1,0xC0F,1},{0x2F8E2,0xC10,1},{0x2F8E3,0xC11,1},{0x2F8E4,0xC12,1},{0x2F8E5,0xC13,1},
{0x2F8E6,0xC14,1},{0x2F8E7,0xC15,1},{0x2F8E8,0xC16,1},{0x2F8E9,0xC17,1},{0x2F8EA,0xC18,1},
{0x2F8EB,0xC19,1},{0x2F8EC,0xC1A,1},{0x2F8ED,0xC1B,1},{0x2F8EE,0xC1C,1},{0x2F8EF,0xC1D,1},
{0x2F8F0,0xC1E,1},{0x2F8F1,0xC1F,1},{0x2F8F2,0xC20,1},{0x2F8F3,0xC21,1},{0x2F8F4,0xC22,1},
{0x2F8F5,0xC23,1},{0x2F8F6,0xC24,1},{0x2F8F7,0xC25,1},{0x2F8F8,0xC26,1},{0x2F8F9,0xC27,1},
{0x2F8FA,0xC28,1},{0x2F8FB,0xC29,1},{0x2F8FC,0xC2A,1},{0x2F8FD,0xC2B,1},{0x2F8FE,0xC2C,1},
{0x2F8FF,0xC2D,1},{0x2F900,0xC2E,1},{0x2F901,0xC2F,1},{0x2F902,0xC30,1},{0x2F903,0xC31,1},
{0x2F904,0xC32,1},{0x2F905,0xC33,1},{0x2F906,0xC34,1},{0x2F907,0xC35,1},{0x2F908,0xC36,1},
{0x2F909,0xC37,1},{0x2F90A,0xC38,1},{0x2F90B,0xC39,1},{0x2F90C,0xC3A,1},{0x2F90D,0xC3B,1},
{0x2F90E,0xC3C,1},{0x2F90F,0xC3D,1},{0x2F910,0xC3E,1},{0x2F911,0xC3F,1},{0x2F912,0xC40,1},
{0x2F913,0xC41,1},{0x2F914,0xC42,1},{0x2F915,0xC43,1},{0x2F916,0xC44,1},{0x2F917,0xC45,1},
{0x2F918,0xC46,1},{0x2F919,0xC47,1},{0x2F91A,0xC48,1},{0x2F91B,0xC49,1},{0x2F91C,0xC4A,1},
{0x2F91D,0xC4B,1},{0x2F91E,0xC4C,1},{0x2F91F,0xC4D,1},{0x2F920,0xC4E,1},{0x2F921,0xC4F,1},
{0x2F922,0xC50,1},{0x2F923,0xC51,1},{0x2F924,0xC52,1},{0x2F925,0xC53,1},{0x2F926,0xC54,1},
{0x2F927,0xC55,1},{0x2F928,0xC56,1},{0x2F929,0xC57,1},{0x2F92A,0xC58,1},{0x2F92B,0xC59,1},
{0x2F92C,0xC5A,1},{0x2F92D,0xC5B,1},{0x2F92E,0xC5C,1},{0x2F92F,0xC5D,1},{0x2F930,0xC5E,1},
{0x2F931,0xC5F,1},{0x2F932,0xC60,1},{0x2F933,0xC61,1},{0x2F934,0xC62,1},{0x2F935,0xC63,1},
{0x2F936,0xC64,1},{0x2F937,0xC65,1},{0x2F938,0xC66,1},{0x2F939,0xC67,1},{0x2F93A,0xC68,1},
{0x2F93B,0xC69,1},{0x2F93C,0xC6A,1},{0x2F93D,0xC6B,1},{0x2F93E,0xC6C,1},{0x2F93F,0xC6D,1},
{0x2F940,0xC6E,1},{0x2F941,0xC6F,1},{0x2F942,0xC70,1},{0x2F943,0xC71,1},{0x2F944,0xC72,1},
{0x2F945,0xC73,1},{0x2F946,0xC74,1},{0x2F947,0xC75,1},{0x2F948,0xC76,1},{0x2F949,0xC77,1},
{0x2F94A,0xC78,1},{0x2F94B,0xC79,1},{0x2F94C,0xC7A,1},{0x2F94D,0xC7B,1},{0x2F94E,0xC7C,1},
{0x2F94F,0xC7D,1},{0x2F950,0xC7E,1},{0x2F951,0xC7F,1},{0x2F952,0xC80,1},{0x2F953,0xC81,1},
{0x2F954,0xC82,1},{0x2F955,0xC83,1},{0x2F956,0xC84,1},{0x2F957,0xC85,1},{0x2F958,0xC86,1},
{0x2F959,0xC87,1},{0x2F95A,0xC88,1},{0x2F95B,0xC89,1},{0x2F95C,0xC8A,1},{0x2F95D,0xC8B,1},
{0x2F95E,0xC8C,1},{0x2F95F,0xC8D,1},{0x2F960,0xC8E,1},{0x2F961,0xC8F,1},{0x2F962,0xC90,1},
{0x2F963,0xC91,1},{0x2F964,0xC92,1},{0x2F965,0xC93,1},{0x2F966,0xC94,1},{0x2F967,0xC95,1},
{0x2F968,0xC96,1},{0x2F969,0xC97,1},{0x2F96A,0xC98,1},{0x2F96B,0xC99,1},{0x2F96C,0xC9A,1},
{0x2F96D,0xC9B,1},{0x2F96E,0xC9C,1},{0x2F96F,0xC9D,1},{0x2F970,0xC9E,1},{0x2F971,0xC9F,1},
{0x2F972,0xCA0,1},{0x2F973,0xCA1,1},{0x2F974,0xCA2,1},{0x2F975,0xCA3,1},{0x2F976,0xCA4,1},
{0x2F977,0xCA5,1},{0x2F978,0xCA6,1},{0x2F979,0xCA7,1},{0x2F97A,0xCA8,1},{0x2F97B,0xCA9,1},
{0x2F97C,0xCAA,1},{0x2F97D,0xCAB,1},{0x2F97E,0xCAC,1},{0x2F97F,0xCAD,1},{0x2F980,0xCAE,1},
{0x2F981,0xCAF,1},{0x2F982,0xCB0,1},{0x2F983,0xCB1,1},{0x2F984,0xCB2,1},{0x2F985,0xCB3,1},
{0x2F986,0xCB4,1},{0x2F987,0xCB5,1},{0x2F988,0xCB6,1},{0x2F989,0xCB7,1},{0x2F98A,0xCB8,1},
{0x2F98B,0xCB9,1},{0x2F98C,0xCBA,1},{0x2F98D,0xCBB,1},{0x2F98E,0xCBC,1},{0x2F98F,0xCBD,1},
{0x2F990,0xCBE,1},{0x2F991,0xCBF,1},{0x2F992,0xCC0,1},{0x2F993,0xCC1,1},{0x2F994,0xCC2,1},
{0x2F995,0xCC3,1},{0x2F996,0xCC4,1},{0x2F997,0xCC5,1},{0x2F998,0xCC6,1},{0x2F999,0xCC7,1},
{0x2F99A,0xCC8,1},{0x2F99B,0xCC9,1},{0x2F99C,0xCCA,1},{0x2F99D,0xCCB,1},{0x2F99E,0xCCC,1},
{0x2F99F,0xCCD,1},{0x2F9A0,0xCCE,1},{0x2F9A1,0xCCF,1},{0x2F9A2,0xCD0,1},{0x2F9A3,0xCD1,1},
{0x2F9A4,0xCD2,1},{0x2F9A5,0xCD3,1},{0x2F9A6,0xCD4,1},{0x2F9A7,0xCD5,1},{0x2F9A8,0xCD6,1},
{0x2F9A9,0xCD7,1},{0x2F9AA,0xCD8,1},{0x2F9AB,0xCD9,1},{0x2F9AC,0xCDA,1},{0x2F9AD,0xCDB,1},
{0x2F9AE,0xCDC,1},{0x2F9AF,0xCDD,1},{0x2F9B0,0xCDE,1},{0x2F9B1,0xCDF,1},{0x2F9B2,0xCE0,1},
{0x2F9B3,0xCE1,1},{0x2F9B4,0xCE2,1},{0x2F9B5,0xCE3,1},{0x2F9B6,0xCE4,1},{0x2F9B7,0xCE5,1},
{0x2F9B8,0xCE6,1},{0x2F9B9,0xCE7,1},{0x2F9BA,0xCE8,1},{0x2F9BB,0xCE9,1},{0x2F9BC,0xCEA,1},
{0x2F9BD,0xCEB,1},{0x2F9BE,0xCEC,1},{0x2F9BF,0xCED,1},{0x2F9C0,0xCEE,1},{0x2F9C1,0xCEF,1},
{0x2F9C2,0xCF0,1},{0x2F9C3,0xCF1,1},{0x2F9C4,0xCF2,1},{0x2F9C5,0xCF3,1},{0x2F9C6,0xCF4,1},
{0x2F9C7,0xCF5,1},{0x2F9C8,0xCF6,1},{0x2F9C9,0xCF7,1},{0x2F9CA,0xCF8,1},{0x2F9CB,0xCF9,1},
{0x2F9CC,0xCFA,1},{0x2F9CD,0xCFB,1},{0x2F9CE,0xCFC,1},{0x2F9CF,0xCFD,1},{0x2F9D0,0xCFE,1},
{0x2F9D1,0xCFF,1},{0x2F9D2,0xD00,1},{0x2F9D3,0xD01,1},{0x2F9D4,0xD02,1},{0x2F9D5,0xD03,1},
{0x2F9D6,0xD04,1},{0x2F9D7,0xD05,1},{0x2F9D8,0xD06,1},{0x2F9D9,0xD07,1},{0x2F9DA,0xD08,1},
{0x2F9DB,0xD09,1},{0x2F9DC,0xD0A,1},{0x2F9DD,0xD0B,1},{0x2F9DE,0xD0C,1},{0x2F9DF,0xD0D,1},
{0x2F9E0,0xD0E,1},{0x2F9E1,0xD0F,1},{0x2F9E2,0xD10,1},{0x2F9E3,0xD11,1},{0x2F9E4,0xD12,1},
{0x2F9E5,0xD13,1},{0x2F9E6,0xD14,1},{0x2F9E7,0xD15,1},{0x2F9E8,0xD16,1},{0x2F9E9,0xD17,1},
{0x2F9EA,0xD18,1},{0x2F9EB,0xD19,1},{0x2F9EC,0xD1A,1},{0x2F9ED,0xD1B,1},{0x2F9EE,0xD1C,1},
{0x2F9EF,0xD1D,1},{0x2F9F0,0xD1E,1},{0x2F9F1,0xD1F,1},{0x2F9F2,0xD20,1},{0x2F9F3,0xD21,1},
{0x2F9F4,0xD22,1},{0x2F9F5,0xD23,1},{0x2F9F6,0xD24,1},{0x2F9F7,0xD25,1},{0x2F9F8,0xD26,1},
{0x2F9F9,0xD27,1},{0x2F9FA,0xD28,1},{0x2F9FB,0xD29,1},{0x2F9FC,0xD2A,1},{0x2F9FD,0xD2B,1},
{0x2F9FE,0xD2C,1},{0x2F9FF,0xD2D,1},{0x2FA00,0xD2E,1},{0x2FA01,0xD2F,1},{0x2FA02,0xD30,1},
{0x2FA03,0xD31,1},{0x2FA04,0xD32,1},{0x2FA05,0xD33,1},{0x2FA06,0xD34,1},{0x2FA07,0xD35,1},
{0x2FA08,0xD36,1},{0x2FA09,0xD37,1},{0x2FA0A,0xD38,1},{0x2FA0B,0xD39,1},{0x2FA0C,0xD3A,1},
{0x2FA0D,0xD3B,1},{0x2FA0E,0xD3C,1},{0x2FA0F,0xD3D,1},{0x2FA10,0xD3E,1},{0x2FA11,0xD3F,1},
{0x2FA12,0xD40,1},{0x2FA13,0xD41,1},{0x2FA14,0xD42,1},{0x2FA15,0xD43,1},{0x2FA16,0xD44,1},
{0x2FA17,0xD45,1},{0x2FA18,0xD46,1},{0x2FA19,0xD47,1},{0x2FA1A,0xD48,1},{0x2FA1B,0xD49,1},
{0x2FA1C,0xD4A,1},{0x2FA1D,0xD4B,1},
};
static const uint32_t tok_uni_comp[940][3] = {
{0x3C,0x338,8814},{0x3D,0x338,8800},{0x3E,0x338,8815},{0x41,0x300,192},{0x41,0x301,193},
{0x41,0x302,194},{0x41,0x303,195},{0x41,0x304,256},{0x41,0x306,258},{0x41,0x307,550},
{0x41,0x308,196},{0x41,0x309,7842},{0x41,0x30A,197},{0x41,0x30C,461},{0x41,0x30F,512},
{0x41,0x311,514},{0x41,0x323,7840},{0x41,0x325,7680},{0x41,0x328,260},{0x42,0x307,7682},
{0x42,0x323,7684},{0x42,0x331,7686},{0x43,0x301,262},{0x43,0x302,264},{0x43,0x307,266},
{0x43,0x30C,268},{0x43,0x327,199},{0x44,0x307,7690},{0x44,0x30C,270},{0x44,0x323,7692},
{0x44,0x327,7696},{0x44,0x32D,7698},{0x44,0x331,7694},{0x45,0x300,200},{0x45,0x301,201},
{0x45,0x302,202},{0x45,0x303,7868},{0x45,0x304,274},{0x45,0x306,276},{0x45,0x307,278},
{0x45,0x308,203},{0x45,0x309,7866},{0x45,0x30C,282},{0x45,0x30F,516},{0x45,0x311,518},
{0x45,0x323,7864},{0x45,0x327,552},{0x45,0x328,280},{0x45,0x32D,7704},{0x45,0x330,7706},
{0x46,0x307,7710},{0x47,0x301,500},{0x47,0x302,284},{0x47,0x304,7712},{0x47,0x306,286},
{0x47,0x307,288},{0x47,0x30C,486},{0x47,0x327,290},{0x48,0x302,292},{0x48,0x307,7714},
{0x48,0x308,7718},{0x48,0x30C,542},{0x48,0x323,7716},{0x48,0x327,7720},{0x48,0x32E,7722},
{0x49,0x300,204},{0x49,0x301,205},{0x49,0x302,206},{0x49,0x303,296},{0x49,0x304,298},
{0x49,0x306,300},{0x49,0x307,304},{0x49,0x308,207},{0x49,0x309,7880},{0x49,0x30C,463},
{0x49,0x30F,520},{0x49,0x311,522},{0x49,0x323,7882},{0x49,0x328,302},{0x49,0x330,7724},
{0x4A,0x302,308},{0x4B,0x301,7728},{0x4B,0x30C,488},{0x4B,0x323,7730},{0x4B,0x327,310},
{0x4B,0x331,7732},{0x4C,0x301,313},{0x4C,0x30C,317},{0x4C,0x323,7734},{0x4C,0x327,315},
{0x4C,0x32D,7740},{0x4C,0x331,7738},{0x4D,0x301,7742},{0x4D,0x307,7744},{0x4D,0x323,7746},
{0x4E,0x300,504},{0x4E,0x301,323},{0x4E,0x303,209},{0x4E,0x307,7748},{0x4E,0x30C,327},
{0x4E,0x323,7750},{0x4E,0x327,325},{0x4E,0x32D,7754},{0x4E,0x331,7752},{0x4F,0x300,210},
{0x4F,0x301,211},{0x4F,0x302,212},{0x4F,0x303,213},{0x4F,0x304,332},{0x4F,0x306,334},
{0x4F,0x307,558},{0x4F,0x308,214},{0x4F,0x309,7886},{0x4F,0x30B,336},{0x4F,0x30C,465},
{0x4F,0x30F,524},{0x4F,0x311,526},{0x4F,0x31B,416},{0x4F,0x323,7884},{0x4F,0x328,490},
{0x50,0x301,7764},{0x50,0x307,7766},{0x52,0x301,340},{0x52,0x307,7768},{0x52,0x30C,344},
{0x52,0x30F,528},{0x52,0x311,530},{0x52,0x323,7770},{0x52,0x327,342},{0x52,0x331,7774},
{0x53,0x301,346},{0x53,0x302,348},{0x53,0x307,7776},{0x53,0x30C,352},{0x53,0x323,7778},
{0x53,0x326,536},{0x53,0x327,350},{0x54,0x307,7786},{0x54,0x30C,356},{0x54,0x323,7788},
{0x54,0x326,538},{0x54,0x327,354},{0x54,0x32D,7792},{0x54,0x331,7790},{0x55,0x300,217},
{0x55,0x301,218},{0x55,0x302,219},{0x55,0x303,360},{0x55,0x304,362},{0x55,0x306,364},
{0x55,0x308,220},{0x55,0x309,7910},{0x55,0x30A,366},{0x55,0x30B,368},{0x55,0x30C,467},
{0x55,0x30F,532},{0x55,0x311,534},{0x55,0x31B,431},{0x55,0x323,7908},{0x55,0x324,7794},
{0x55,0x328,370},{0x55,0x32D,7798},{0x55,0x330,7796},{0x56,0x303,7804},{0x56,0x323,7806},
{0x57,0x300,7808},{0x57,0x301,7810},{0x57,0x302,372},{0x57,0x307,7814},{0x57,0x308,7812},
{0x57,0x323,7816},{0x58,0x307,7818},{0x58,0x308,7820},{0x59,0x300,7922},{0x59,0x301,221},
{0x59,0x302,374},{0x59,0x303,7928},{0x59,0x304,562},{0x59,0x307,7822},{0x59,0x308,376},
{0x59,0x309,7926},{0x59,0x323,7924},{0x5A,0x301,377},{0x5A,0x302,7824},{0x5A,0x307,379},
{0x5A,0x30C,381},{0x5A,0x323,7826},{0x5A,0x331,7828},{0x61,0x300,224},{0x61,0x301,225},
{0x61,0x302,226},{0x61,0x303,227},{0x61,0x304,257},{0x61,0x306,259},{0x61,0x307,551},
{0x61,0x308,228},{0x61,0x309,7843},{0x61,0x30A,229},{0x61,0x30C,462},{0x61,0x30F,513},
{0x61,0x311,515},{0x61,0x323,7841},{0x61,0x325,7681},{0x61,0x328,261},{0x62,0x307,7683},
{0x62,0x323,7685},{0x62,0x331,7687},{0x63,0x301,263},{0x63,0x302,265},{0x63,0x307,267},
{0x63,0x30C,269},{0x63,0x327,231},{0x64,0x307,7691},{0x64,0x30C,271},{0x64,0x323,7693},
{0x64,0x327,7697},{0x64,0x32D,7699},{0x64,0x331,7695},{0x65,0x300,232},{0x65,0x301,233},
{0x65,0x302,234},{0x65,0x303,7869},{0x65,0x304,275},{0x65,0x306,277},{0x65,0x307,279},
{0x65,0x308,235},{0x65,0x309,7867},{0x65,0x30C,283},{0x65,0x30F,517},{0x65,0x311,519},
{0x65,0x323,7865},{0x65,0x327,553},{0x65,0x328,281},{0x65,0x32D,7705},{0x65,0x330,7707},
{0x66,0x307,7711},{0x67,0x301,501},{0x67,0x302,285},{0x67,0x304,7713},{0x67,0x306,287},
{0x67,0x307,289},{0x67,0x30C,487},{0x67,0x327,291},{0x68,0x302,293},{0x68,0x307,7715},
{0x68,0x308,7719},{0x68,0x30C,543},{0x68,0x323,7717},{0x68,0x327,7721},{0x68,0x32E,7723},
{0x68,0x331,7830},{0x69,0x300,236},{0x69,0x301,237},{0x69,0x302,238},{0x69,0x303,297},
{0x69,0x304,299},{0x69,0x306,301},{0x69,0x308,239},{0x69,0x309,7881},{0x69,0x30C,464},
{0x69,0x30F,521},{0x69,0x311,523},{0x69,0x323,7883},{0x69,0x328,303},{0x69,0x330,7725},
{0x6A,0x302,309},{0x6A,0x30C,496},{0x6B,0x301,7729},{0x6B,0x30C,489},{0x6B,0x323,7731},
{0x6B,0x327,311},{0x6B,0x331,7733},{0x6C,0x301,314},{0x6C,0x30C,318},{0x6C,0x323,7735},
{0x6C,0x327,316},{0x6C,0x32D,7741},{0x6C,0x331,7739},{0x6D,0x301,7743},{0x6D,0x307,7745},
{0x6D,0x323,7747},{0x6E,0x300,505},{0x6E,0x301,324},{0x6E,0x303,241},{0x6E,0x307,7749},
{0x6E,0x30C,328},{0x6E,0x323,7751},{0x6E,0x327,326},{0x6E,0x32D,7755},{0x6E,0x331,7753},
{0x6F,0x300,242},{0x6F,0x301,243},{0x6F,0x302,244},{0x6F,0x303,245},{0x6F,0x304,333},
{0x6F,0x306,335},{0x6F,0x307,559},{0x6F,0x308,246},{0x6F,0x309,7887},{0x6F,0x30B,337},
{0x6F,0x30C,466},{0x6F,0x30F,525},{0x6F,0x311,527},{0x6F,0x31B,417},{0x6F,0x323,7885},
{0x6F,0x328,491},{0x70,0x301,7765},{0x70,0x307,7767},{0x72,0x301,341},{0x72,0x307,7769},
{0x72,0x30C,345},{0x72,0x30F,529},{0x72,0x311,531},{0x72,0x323,7771},{0x72,0x327,343},
{0x72,0x331,7775},{0x73,0x301,347},{0x73,0x302,349},{0x73,0x307,7777},{0x73,0x30C,353},
{0x73,0x323,7779},{0x73,0x326,537},{0x73,0x327,351},{0x74,0x307,7787},{0x74,0x308,7831},
{0x74,0x30C,357},{0x74,0x323,7789},{0x74,0x326,539},{0x74,0x327,355},{0x74,0x32D,7793},
{0x74,0x331,7791},{0x75,0x300,249},{0x75,0x301,250},{0x75,0x302,251},{0x75,0x303,361},
{0x75,0x304,363},{0x75,0x306,365},{0x75,0x308,252},{0x75,0x309,7911},{0x75,0x30A,367},
{0x75,0x30B,369},{0x75,0x30C,468},{0x75,0x30F,533},{0x75,0x311,535},{0x75,0x31B,432},
{0x75,0x323,7909},{0x75,0x324,7795},{0x75,0x328,371},{0x75,0x32D,7799},{0x75,0x330,7797},
{0x76,0x303,7805},{0x76,0x323,7807},{0x77,0x300,7809},{0x77,0x301,7811},{0x77,0x302,373},
{0x77,0x307,7815},{0x77,0x308,7813},{0x77,0x30A,7832},{0x77,0x323,7817},{0x78,0x307,7819},
{0x78,0x308,7821},{0x79,0x300,7923},{0x79,0x301,253},{0x79,0x302,375},{0x79,0x303,7929},
{0x79,0x304,563},{0x79,0x307,7823},{0x79,0x308,255},{0x79,0x309,7927},{0x79,0x30A,7833},
{0x79,0x323,7925},{0x7A,0x301,378},{0x7A,0x302,7825},{0x7A,0x307,380},{0x7A,0x30C,382},
{0x7A,0x323,7827},{0x7A,0x331,7829},{0xA8,0x300,8173},{0xA8,0x301,901},{0xA8,0x342,8129},
{0xC2,0x300,7846},{0xC2,0x301,7844},{0xC2,0x303,7850},{0xC2,0x309,7848},{0xC4,0x304,478},
{0xC5,0x301,506},{0xC6,0x301,508},{0xC6,0x304,482},{0xC7,0x301,7688},{0xCA,0x300,7872},
{0xCA,0x301,7870},{0xCA,0x303,7876},{0xCA,0x309,7874},{0xCF,0x301,7726},{0xD4,0x300,7890},
{0xD4,0x301,7888},{0xD4,0x303,7894},{0xD4,0x309,7892},{0xD5,0x301,7756},{0xD5,0x304,556},
{0xD5,0x308,7758},{0xD6,0x304,554},{0xD8,0x301,510},{0xDC,0x300,475},{0xDC,0x301,471},
{0xDC,0x304,469},{0xDC,0x30C,473},{0xE2,0x300,7847},{0xE2,0x301,7845},{0xE2,0x303,7851},
{0xE2,0x309,7849},{0xE4,0x304,479},{0xE5,0x301,507},{0xE6,0x301,509},{0xE6,0x304,483},
{0xE7,0x301,7689},{0xEA,0x300,7873},{0xEA,0x301,7871},{0xEA,0x303,7877},{0xEA,0x309,7875},
{0xEF,0x301,7727},{0xF4,0x300,7891},{0xF4,0x301,7889},{0xF4,0x303,7895},{0xF4,0x309,7893},
{0xF5,0x301,7757},{0xF5,0x304,557},{0xF5,0x308,7759},{0xF6,0x304,555},{0xF8,0x301,511},
{0xFC,0x300,476},{0xFC,0x301,472},{0xFC,0x304,470},{0xFC,0x30C,474},{0x102,0x300,7856},
{0x102,0x301,7854},{0x102,0x303,7860},{0x102,0x309,7858},{0x103,0x300,7857},{0x103,0x301,7855},
{0x103,0x303,7861},{0x103,0x309,7859},{0x112,0x300,7700},{0x112,0x301,7702},{0x113,0x300,7701},
{0x113,0x301,7703},{0x14C,0x300,7760},{0x14C,0x301,7762},{0x14D,0x300,7761},{0x14D,0x301,7763},
{0x15A,0x307,7780},{0x15B,0x307,7781},{0x160,0x307,7782},{0x161,0x307,7783},{0x168,0x301,7800},
{0x169,0x301,7801},{0x16A,0x308,7802},{0x16B,0x308,7803},{0x17F,0x307,7835},{0x1A0,0x300,7900},
{0x1A0,0x301,7898},{0x1A0,0x303,7904},{0x1A0,0x309,7902},{0x1A0,0x323,7906},{0x1A1,0x300,7901},
{0x1A1,0x301,7899},{0x1A1,0x303,7905},{0x1A1,0x309,7903},{0x1A1,0x323,7907},{0x1AF,0x300,7914},
{0x1AF,0x301,7912},{0x1AF,0x303,7918},{0x1AF,0x309,7916},{0x1AF,0x323,7920},{0x1B0,0x300,7915},
{0x1B0,0x301,7913},{0x1B0,0x303,7919},{0x1B0,0x309,7917},{0x1B0,0x323,7921},{0x1B7,0x30C,494},
{0x1EA,0x304,492},{0x1EB,0x304,493},{0x226,0x304,480},{0x227,0x304,481},{0x228,0x306,7708},
{0x229,0x306,7709},{0x22E,0x304,560},{0x22F,0x304,561},{0x292,0x30C,495},{0x391,0x300,8122},
{0x391,0x301,902},{0x391,0x304,8121},{0x391,0x306,8120},{0x391,0x313,7944},{0x391,0x314,7945},
{0x391,0x345,8124},{0x395,0x300,8136},{0x395,0x301,904},{0x395,0x313,7960},{0x395,0x314,7961},
{0x397,0x300,8138},{0x397,0x301,905},{0x397,0x313,7976},{0x397,0x314,7977},{0x397,0x345,8140},
{0x399,0x300,8154},{0x399,0x301,906},{0x399,0x304,8153},{0x399,0x306,8152},{0x399,0x308,938},
{0x399,0x313,7992},{0x399,0x314,7993},{0x39F,0x300,8184},{0x39F,0x301,908},{0x39F,0x313,8008},
{0x39F,0x314,8009},{0x3A1,0x314,8172},{0x3A5,0x300,8170},{0x3A5,0x301,910},{0x3A5,0x304,8169},
{0x3A5,0x306,8168},{0x3A5,0x308,939},{0x3A5,0x314,8025},{0x3A9,0x300,8186},{0x3A9,0x301,911},
{0x3A9,0x313,8040},{0x3A9,0x314,8041},{0x3A9,0x345,8188},{0x3AC,0x345,8116},{0x3AE,0x345,8132},
{0x3B1,0x300,8048},{0x3B1,0x301,940},{0x3B1,0x304,8113},{0x3B1,0x306,8112},{0x3B1,0x313,7936},
{0x3B1,0x314,7937},{0x3B1,0x342,8118},{0x3B1,0x345,8115},{0x3B5,0x300,8050},{0x3B5,0x301,941},
{0x3B5,0x313,7952},{0x3B5,0x314,7953},{0x3B7,0x300,8052},{0x3B7,0x301,942},{0x3B7,0x313,7968},
{0x3B7,0x314,7969},{0x3B7,0x342,8134},{0x3B7,0x345,8131},{0x3B9,0x300,8054},{0x3B9,0x301,943},
{0x3B9,0x304,8145},{0x3B9,0x306,8144},{0x3B9,0x308,970},{0x3B9,0x313,7984},{0x3B9,0x314,7985},
{0x3B9,0x342,8150},{0x3BF,0x300,8056},{0x3BF,0x301,972},{0x3BF,0x313,8000},{0x3BF,0x314,8001},
{0x3C1,0x313,8164},{0x3C1,0x314,8165},{0x3C5,0x300,8058},{0x3C5,0x301,973},{0x3C5,0x304,8161},
{0x3C5,0x306,8160},{0x3C5,0x308,971},{0x3C5,0x313,8016},{0x3C5,0x314,8017},{0x3C5,0x342,8166},
{0x3C9,0x300,8060},{0x3C9,0x301,974},{0x3C9,0x313,8032},{0x3C9,0x314,8033},{0x3C9,0x342,8182},
{0x3C9,0x345,8179},{0x3CA,0x300,8146},{0x3CA,0x301,912},{0x3CA,0x342,8151},{0x3CB,0x300,8162},
{0x3CB,0x301,944},{0x3CB,0x342,8167},{0x3CE,0x345,8180},{0x3D2,0x301,979},{0x3D2,0x308,980},
{0x406,0x308,1031},{0x410,0x306,1232},{0x410,0x308,1234},{0x413,0x301,1027},{0x415,0x300,1024},
{0x415,0x306,1238},{0x415,0x308,1025},{0x416,0x306,1217},{0x416,0x308,1244},{0x417,0x308,1246},
{0x418,0x300,1037},{0x418,0x304,1250},{0x418,0x306,1049},{0x418,0x308,1252},{0x41A,0x301,1036},
{0x41E,0x308,1254},{0x423,0x304,1262},{0x423,0x306,1038},{0x423,0x308,1264},{0x423,0x30B,1266},
{0x427,0x308,1268},{0x42B,0x308,1272},{0x42D,0x308,1260},{0x430,0x306,1233},{0x430,0x308,1235},
{0x433,0x301,1107},{0x435,0x300,1104},{0x435,0x306,1239},{0x435,0x308,1105},{0x436,0x306,1218},
{0x436,0x308,1245},{0x437,0x308,1247},{0x438,0x300,1117},{0x438,0x304,1251},{0x438,0x306,1081},
{0x438,0x308,1253},{0x43A,0x301,1116},{0x43E,0x308,1255},{0x443,0x304,1263},{0x443,0x306,1118},
{0x443,0x308,1265},{0x443,0x30B,1267},{0x447,0x308,1269},{0x44B,0x308,1273},{0x44D,0x308,1261},
{0x456,0x308,1111},{0x474,0x30F,1142},{0x475,0x30F,1143},{0x4D8,0x308,1242},{0x4D9,0x308,1243},
{0x4E8,0x308,1258},{0x4E9,0x308,1259},{0x627,0x653,1570},{0x627,0x654,1571},{0x627,0x655,1573},
{0x648,0x654,1572},{0x64A,0x654,1574},{0x6C1,0x654,1730},{0x6D2,0x654,1747},{0x6D5,0x654,1728},
{0x928,0x93C,2345},{0x930,0x93C,2353},{0x933,0x93C,2356},{0x9C7,0x9BE,2507},{0x9C7,0x9D7,2508},
{0xB47,0xB3E,2891},{0xB47,0xB56,2888},{0xB47,0xB57,2892},{0xB92,0xBD7,2964},{0xBC6,0xBBE,3018},
{0xBC6,0xBD7,3020},{0xBC7,0xBBE,3019},{0xC46,0xC56,3144},{0xCBF,0xCD5,3264},{0xCC6,0xCC2,3274},
{0xCC6,0xCD5,3271},{0xCC6,0xCD6,3272},{0xCCA,0xCD5,3275},{0xD46,0xD3E,3402},{0xD46,0xD57,3404},
{0xD47,0xD3E,3403},{0xDD9,0xDCA,3546},{0xDD9,0xDCF,3548},{0xDD9,0xDDF,3550},{0xDDC,0xDCA,3549},
{0x1025,0x102E,4134},{0x1B05,0x1B35,6918},{0x1B07,0x1B35,6920},{0x1B09,0x1B35,6922},
{0x1B0B,0x1B35,6924},{0x1B0D,0x1B35,6926},{0x1B11,0x1B35,6930},{0x1B3A,0x1B35,6971},
{0x1B3C,0x1B35,6973},{0x1B3E,0x1B35,6976},{0x1B3F,0x1B35,6977},{0x1B42,0x1B35,6979},
{0x1E36,0x304,7736},{0x1E37,0x304,7737},{0x1E5A,0x304,7772},{0x1E5B,0x304,7773},
{0x1E62,0x307,7784},{0x1E63,0x307,7785},{0x1EA0,0x302,7852},{0x1EA0,0x306,7862},
{0x1EA1,0x302,7853},{0x1EA1,0x306,7863},{0x1EB8,0x302,7878},{0x1EB9,0x302,7879},
{0x1ECC,0x302,7896},{0x1ECD,0x302,7897},{0x1F00,0x300,7938},{0x1F00,0x301,7940},
{0x1F00,0x342,7942},{0x1F00,0x345,8064},{0x1F01,0x300,7939},{0x1F01,0x301,7941},
{0x1F01,0x342,7943},{0x1F01,0x345,8065},{0x1F02,0x345,8066},{0x1F03,0x345,8067},
{0x1F04,0x345,8068},{0x1F05,0x345,8069},{0x1F06,0x345,8070},{0x1F07,0x345,8071},
{0x1F08,0x300,7946},{0x1F08,0x301,7948},{0x1F08,0x342,7950},{0x1F08,0x345,8072},
{0x1F09,0x300,7947},{0x1F09,0x301,7949},{0x1F09,0x342,7951},{0x1F09,0x345,8073},
{0x1F0A,0x345,8074},{0x1F0B,0x345,8075},{0x1F0C,0x345,8076},{0x1F0D,0x345,8077},
{0x1F0E,0x345,8078},{0x1F0F,0x345,8079},{0x1F10,0x300,7954},{0x1F10,0x301,7956},
{0x1F11,0x300,7955},{0x1F11,0x301,7957},{0x1F18,0x300,7962},{0x1F18,0x301,7964},
{0x1F19,0x300,7963},{0x1F19,0x301,7965},{0x1F20,0x300,7970},{0x1F20,0x301,7972},
{0x1F20,0x342,7974},{0x1F20,0x345,8080},{0x1F21,0x300,7971},{0x1F21,0x301,7973},
{0x1F21,0x342,7975},{0x1F21,0x345,8081},{0x1F22,0x345,8082},{0x1F23,0x345,8083},
{0x1F24,0x345,8084},{0x1F25,0x345,8085},{0x1F26,0x345,8086},{0x1F27,0x345,8087},
{0x1F28,0x300,7978},{0x1F28,0x301,7980},{0x1F28,0x342,7982},{0x1F28,0x345,8088},
{0x1F29,0x300,7979},{0x1F29,0x301,7981},{0x1F29,0x342,7983},{0x1F29,0x345,8089},
{0x1F2A,0x345,8090},{0x1F2B,0x345,8091},{0x1F2C,0x345,8092},{0x1F2D,0x345,8093},
{0x1F2E,0x345,8094},{0x1F2F,0x345,8095},{0x1F30,0x300,7986},{0x1F30,0x301,7988},
{0x1F30,0x342,7990},{0x1F31,0x300,7987},{0x1F31,0x301,7989},{0x1F31,0x342,7991},
{0x1F38,0x300,7994},{0x1F38,0x301,7996},{0x1F38,0x342,7998},{0x1F39,0x300,7995},
{0x1F39,0x301,7997},{0x1F39,0x342,7999},{0x1F40,0x300,8002},{0x1F40,0x301,8004},
{0x1F41,0x300,8003},{0x1F41,0x301,8005},{0x1F48,0x300,8010},{0x1F48,0x301,8012},
{0x1F49,0x300,8011},{0x1F49,0x301,8013},{0x1F50,0x300,8018},{0x1F50,0x301,8020},
{0x1F50,0x342,8022},{0x1F51,0x300,8019},{0x1F51,0x301,8021},{0x1F51,0x342,8023},
{0x1F59,0x300,8027},{0x1F59,0x301,8029},{0x1F59,0x342,8031},{0x1F60,0x300,8034},
{0x1F60,0x301,8036},{0x1F60,0x342,8038},{0x1F60,0x345,8096},{0x1F61,0x300,8035},
{0x1F61,0x301,8037},{0x1F61,0x342,8039},{0x1F61,0x345,8097},{0x1F62,0x345,8098},
{0x1F63,0x345,8099},{0x1F64,0x345,8100},{0x1F65,0x345,8101},{0x1F66,0x345,8102},
{0x1F67,0x345,8103},{0x1F68,0x300,8042},{0x1F68,0x301,8044},{0x1F68,0x342,8046},
{0x1F68,0x345,8104},{0x1F69,0x300,8043},{0x1F69,0x301,8045},{0x1F69,0x342,8047},
{0x1F69,0x345,8105},{0x1F6A,0x345,8106},{0x1F6B,0x345,8107},{0x1F6C,0x345,8108},
{0x1F6D,0x345,8109},{0x1F6E,0x345,8110},{0x1F6F,0x345,8111},{0x1F70,0x345,8114},
{0x1F74,0x345,8130},{0x1F7C,0x345,8178},{0x1FB6,0x345,8119},{0x1FBF,0x300,8141},
{0x1FBF,0x301,8142},{0x1FBF,0x342,8143},{0x1FC6,0x345,8135},{0x1FF6,0x345,8183},
{0x1FFE,0x300,8157},{0x1FFE,0x301,8158},{0x1FFE,0x342,8159},{0x2190,0x338,8602},
{0x2192,0x338,8603},{0x2194,0x338,8622},{0x21D0,0x338,8653},{0x21D2,0x338,8655},
{0x21D4,0x338,8654},{0x2203,0x338,8708},{0x2208,0x338,8713},{0x220B,0x338,8716},
{0x2223,0x338,8740},{0x2225,0x338,8742},{0x223C,0x338,8769},{0x2243,0x338,8772},
{0x2245,0x338,8775},{0x2248,0x338,8777},{0x224D,0x338,8813},{0x2261,0x338,8802},
{0x2264,0x338,8816},{0x2265,0x338,8817},{0x2272,0x338,8820},{0x2273,0x338,8821},
{0x2276,0x338,8824},{0x2277,0x338,8825},{0x227A,0x338,8832},{0x227B,0x338,8833},
{0x227C,0x338,8928},{0x227D,0x338,8929},{0x2282,0x338,8836},{0x2283,0x338,8837},
{0x2286,0x338,8840},{0x2287,0x338,8841},{0x2291,0x338,8930},{0x2292,0x338,8931},
{0x22A2,0x338,8876},{0x22A8,0x338,8877},{0x22A9,0x338,8878},{0x22AB,0x338,8879},
{0x22B2,0x338,8938},{0x22B3,0x338,8939},{0x22B4,0x338,8940},{0x22B5,0x338,8941},
{0x3046,0x3099,12436},{0x304B,0x3099,12364},{0x304D,0x3099,12366},{0x304F,0x3099,12368},
{0x3051,0x3099,12370},{0x3053,0x3099,12372},{0x3055,0x3099,12374},{0x3057,0x3099,12376},
{0x3059,0x3099,12378},{0x305B,0x3099,12380},{0x305D,0x3099,12382},{0x305F,0x3099,12384},
{0x3061,0x3099,12386},{0x3064,0x3099,12389},{0x3066,0x3099,12391},{0x3068,0x3099,12393},
{0x306F,0x3099,12400},{0x306F,0x309A,12401},{0x3072,0x3099,12403},{0x3072,0x309A,12404},
{0x3075,0x3099,12406},{0x3075,0x309A,12407},{0x3078,0x3099,12409},{0x3078,0x309A,12410},
{0x307B,0x3099,12412},{0x307B,0x309A,12413},{0x309D,0x3099,12446},{0x30A6,0x3099,12532},
{0x30AB,0x3099,12460},{0x30AD,0x3099,12462},{0x30AF,0x3099,12464},{0x30B1,0x3099,12466},
{0x30B3,0x3099,12468},{0x30B5,0x3099,12470},{0x30B7,0x3099,12472},{0x30B9,0x3099,12474},
{0x30BB,0x3099,12476},{0x30BD,0x3099,12478},{0x30BF,0x3099,12480},{0x30C1,0x3099,12482},
{0x30C4,0x3099,12485},{0x30C6,0x3099,12487},{0x30C8,0x3099,12489},{0x30CF,0x3099,12496},
{0x30CF,0x309A,12497},{0x30D2,0x3099,12499},{0x30D2,0x309A,12500},{0x30D5,0x3099,12502},
{0x30D5,0x309A,12503},{0x30D8,0x3099,12505},{0x30D8,0x309A,12506},{0x30DB,0x3099,12508},
{0x30DB,0x309A,12509},{0x30EF,0x3099,12535},{0x30F0,0x3099,12536},{0x30F1,0x3099,12537},
{0x30F2,0x3099,12538},{0x30FD,0x3099,12542},{0x11099,0x110BA,69786},{0x1109B,0x110BA,69788},
{0x110A5,0x110BA,69803},{0x11131,0x11127,69934},{0x11132,0x11127,69935},{0x11347,0x1133E,70475},
{0x11347,0x11357,70476},{0x114B9,0x114B0,70844},{0x114B9,0x114BA,70843},{0x114B9,0x114BD,70846},
{0x115B8,0x115AF,71098},{0x115B9,0x115AF,71099},
};
/* END GENERATED UNICODE TABLES */

/* Range tables: binary search over rows {first, last, ...} sorted by first. */
static int uni_range_find(const uint32_t *rows, size_t n_rows, size_t stride, uint32_t cp)
{
    size_t lo = 0, hi = n_rows;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = rows + mid * stride;
        if (cp < r[0]) hi = mid;
        else if (cp > r[1]) lo = mid + 1;
        else return (int)mid;
    }
    return -1;
}

static int uni_class(uint32_t cp)
{
    int r = uni_range_find(&tok_uni_cls[0][0], sizeof tok_uni_cls / sizeof tok_uni_cls[0], 3, cp);
    return r < 0 ? 0 : (int)tok_uni_cls[r][2];
}

static int uni_ccc(uint32_t cp)
{
    int r = uni_range_find(&tok_uni_ccc[0][0], sizeof tok_uni_ccc / sizeof tok_uni_ccc[0], 3, cp);
    return r < 0 ? 0 : (int)tok_uni_ccc[r][2];
}

static int uni_nfc_maybe(uint32_t cp)
{
    return uni_range_find(&tok_uni_nfcqc[0][0], sizeof tok_uni_nfcqc / sizeof tok_uni_nfcqc[0], 2, cp) >= 0;
}

static int uni_decomp(uint32_t cp, const uint32_t **seq)
{
    size_t lo = 0, hi = sizeof tok_uni_decomp / sizeof tok_uni_decomp[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tok_uni_decomp[mid][0]) hi = mid;
        else if (cp > tok_uni_decomp[mid][0]) lo = mid + 1;
        else {
            *seq = tok_uni_dpool + tok_uni_decomp[mid][1];
            return (int)tok_uni_decomp[mid][2];
        }
    }
    return 0;
}

static uint32_t uni_compose(uint32_t a, uint32_t b)
{
    size_t lo = 0, hi = sizeof tok_uni_comp / sizeof tok_uni_comp[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *r = tok_uni_comp[mid];
        if (a < r[0] || (a == r[0] && b < r[1])) hi = mid;
        else if (a == r[0] && b == r[1]) return r[2];
        else lo = mid + 1;
    }
    return 0;
}

/* =============================================================================================
 * 7. THE COMMAND LINE
 *
 * One option table (cli_options) drives parsing, checking and --help of every command: a row
 * names the flag, its argument, its range or choices, its default, which commands take it,
 * its help and the field it sets.  A new flag is one row (and the code that uses it).  The
 * experiments (detect, niah) are a thin layer over rh_experiment_run.
 *
 * Exit codes: 0 success; 1 a failure while running (a file that cannot be read or written
 * mid-run, out of memory); 2 bad usage or bad input found before any work.  A failure prints
 * one line "retrieval_heads: <command>: <flag or file>: <problem>" on stderr.
 *
 * What it may call: anything above.  main() itself is left out when RH_NO_MAIN is defined.
 * ============================================================================================= */

/* the shapes of `bench --shape` and `niah/detect --shape` (bench_shape) */
#define BENCH_SHAPES "tiny, tinyllama-1.1b, llama-2-7b, mixtral-mini or mixtral-mini-dense"

#define RH_DEFAULT_MODEL "weights/demo.rhw"

/* The commands, as bits of a row's `cmds`. */
enum {
    C_INFO = 1 << 0, C_GENERATE = 1 << 1, C_LOGITS = 1 << 2, C_TOKENIZE = 1 << 3, C_BENCH = 1 << 4,
    C_DETECT = 1 << 5, C_NIAH = 1 << 6, C_REPORT = 1 << 7, C_COMPARE = 1 << 8, C_EVAL = 1 << 9
};
#define C_GRID (C_DETECT | C_NIAH)                                /* the experiments */
#define C_RUNS (C_GENERATE | C_LOGITS | C_BENCH | C_GRID | C_EVAL) /* the commands that run the model */
#define C_MASKED (C_NIAH | C_GENERATE | C_LOGITS | C_EVAL)        /* the commands that mask heads */
#define C_KVPOL (C_MASKED | C_DETECT | C_INFO)                     /* the commands that take a KV policy */

/* Every value any command's options can set; each row writes one field (or two). */
typedef struct {
    int threads, n_ctx, kv, reference;             /* the model runners */
    int help;
    /* info, tokenize, generate, logits, bench */
    int checksum, bos, decode, ids_out, ignore_eos;
    const char *prompt, *ids, *out, *shape, *plist, *svg;
    int n, dtype, have_n, have_dtype;
    /* detect, niah */
    const char *haystack, *needles, *lengths, *depths, *template_arg, *scores, *mask_heads;
    int n_needles, needle_first, needle_end, spacing, buffer, chat, span, span_search, max_new;
    int shard_i, shard_n, fresh, no_prefix_reuse, dry_run, quiet, append, score_set, top, compat, kv_heads, format;
    int mask_top, mask_random, mask_mode, mask_prefill, have_mask_mode, have_haystack, have_needles;
    uint64_t seed;
    int seed_given;
    /* the KV policy (every command of C_KVPOL) */
    int kv_keep_top, kv_keep_random, kv_window, kv_sinks, have_kv_window, have_kv_sinks;
    const char *kv_keep_heads, *kv_sweep;
    const unsigned char *kv_keep_flags; /* the kept heads, resolved on the model (not a flag) */
    /* eval */
    const char *task, *perplexity, *rescore, *fewshot;
    int task_format, shots, window, stride, have_max_new;
    struct {
        const char *v[16];
        int n;
    } stop;
    /* positional arguments */
    const char *pos[4];
    int n_pos;
} cli_args;

typedef enum { O_SWITCH, O_INT, O_TEXT, O_ENUM, O_CUSTOM, O_MULTI } cli_kind; /* O_MULTI: text, repeatable */

typedef struct cli_option cli_option;
/* A custom value parser: 0, or -1 with what is wrong in why. */
typedef int (*cli_parse_fn)(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap);

struct cli_option {
    const char *name, *alias; /* "--threads", "-t" (alias may be NULL) */
    const char *arg;          /* the argument in --help ("N"); NULL for a switch */
    cli_kind kind;
    long lo, hi;              /* O_INT: the accepted range */
    const char *const *names; /* O_ENUM: the choices (value = index) */
    cli_parse_fn parse;       /* O_CUSTOM */
    size_t off;               /* the field it sets (offsetof cli_args) */
    size_t seen;              /* a field set to 1 when the flag is given (0: none) */
    unsigned cmds;            /* the commands that take it */
    const char *def;          /* the default, for --help (NULL: none) */
    const char *help;
    const char *bad;          /* a value refused after parsing (by a check or a file), for the tests */
};

static const char *const cli_compat_names[] = {"none", "original", NULL};
static const char *const cli_format_names[] = {"published", "qrhead", NULL};
static int cli_parse_shard(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap);
static int cli_parse_needle_range(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap);
static int cli_parse_seed(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap);

#define A_(f) offsetof(cli_args, f)
static const cli_option cli_options[] = {
    /* name, alias, arg, kind, lo, hi, names, parse, field, seen, commands, default, help, bad */
    {"--threads", "-t", "N", O_INT, 0, 1024, NULL, NULL, A_(threads), 0, C_RUNS, "0",
     "worker threads, 0 = all online CPUs; results do not depend on it", NULL},
    {"--kv", NULL, "f32|f16|bf16", O_ENUM, 0, 0, rh_dtype_names, NULL, A_(kv), 0, C_RUNS, "f32",
     "KV cache precision", NULL},
    {"--ctx", NULL, "N", O_INT, 1, RHW_MAX_CTX, NULL, NULL, A_(n_ctx), 0, C_RUNS, NULL,
     "KV cache capacity in tokens (default: what the command needs)", "2"},
    {"--reference", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(reference), 0, C_RUNS, NULL,
     "the plain reference forward pass (one thread, slow; for checking)", NULL},
    {"--checksum", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(checksum), 0, C_INFO, NULL,
     "compute the checksum of files over 1 GiB too (it reads every byte)", NULL},
    {"--bos", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(bos), 0, C_TOKENIZE, NULL, "prepend BOS", NULL},
    {"--decode", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(decode), 0, C_TOKENIZE, NULL,
     "read token ids and print the bytes they stand for", NULL},
    {"--prompt", "-p", "TEXT", O_TEXT, 0, 0, NULL, NULL, A_(prompt), 0, C_GENERATE, NULL,
     "the prompt, tokenized (BOS as the model's add_bos flag says)", NULL},
    {"--ids", NULL, "\"1 2 3\"", O_TEXT, 0, 0, NULL, NULL, A_(ids), 0, C_GENERATE | C_LOGITS, NULL,
     "the prompt as token ids", "1 x"},
    {"-n", NULL, "N", O_INT, 0, RHW_MAX_CTX, NULL, NULL, A_(n), A_(have_n), C_GENERATE, "64",
     "tokens to generate at most", NULL},
    {"--ids-out", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(ids_out), 0, C_GENERATE, NULL,
     "print the generated ids instead of text", NULL},
    {"--ignore-eos", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(ignore_eos), 0, C_GENERATE, NULL,
     "do not stop at an end-of-sequence token", NULL},
    {"--shape", NULL, "NAME", O_TEXT, 0, 0, NULL, NULL, A_(shape), 0, C_BENCH, "tinyllama-1.1b",
     "a random-weight model of this shape (" BENCH_SHAPES ")", "huge"},
    {"--dtype", NULL, "f32|f16|bf16", O_ENUM, 0, 0, rh_dtype_names, NULL, A_(dtype), A_(have_dtype), C_BENCH | C_GRID,
     "f32", "the --shape model's weight dtype", NULL},
    {"-p", NULL, "512,2048", O_TEXT, 0, 0, NULL, NULL, A_(plist), 0, C_BENCH, "512",
     "prompt lengths to prefill", "12,x"},
    {"-n", NULL, "N", O_INT, 1, 100000, NULL, NULL, A_(n), A_(have_n), C_BENCH, "32", "tokens to decode", NULL},
    {"--haystack", NULL, "PATH", O_TEXT, 0, 0, NULL, NULL, A_(haystack), A_(have_haystack), C_GRID,
     "haystack/ beside the model, else weights/haystack",
     "a text file, or a folder of *.txt read in name order (or of part1/, part2/, ...: one per needle)",
     "/nonexistent_dir"},
    {"--needles", NULL, "FILE", O_TEXT, 0, 0, NULL, NULL, A_(needles), A_(have_needles), C_GRID,
     "needles.jsonl beside the model, else weights/needles.jsonl",
     "JSON lines: needle, question, answer (or real_needle, as the original's file)", "/nonexistent.jsonl"},
    {"--n-needles", NULL, "N", O_INT, 1, 1000000, NULL, NULL, A_(n_needles), 0, C_GRID, NULL,
     "use the first N needles only", "1000000"},
    {"--needle-range", NULL, "A:B", O_CUSTOM, 0, 0, NULL, cli_parse_needle_range, 0, 0, C_GRID, NULL,
     "use needles A..B-1 (0-based) only", "0:999999"},
    {"--lengths", NULL, "MIN:MAX:N", O_TEXT, 0, 0, NULL, NULL, A_(lengths), 0, C_GRID, "MAX_CTX/4:MAX_CTX:4",
     "context lengths in tokens (numpy.linspace, rounded; or a,b,c)", "5"},
    {"--depths", NULL, "MIN:MAX:N", O_TEXT, 0, 0, NULL, NULL, A_(depths), 0, C_GRID, "0:100:5; --compat original 0:100:10",
     "needle depths in percent (or a,b,c)", "0:101:3"},
    {"--depth-spacing", NULL, "linear|sigmoid", O_ENUM, 0, 0, rh_depth_spacing_names, NULL, A_(spacing), 0, C_GRID,
     "linear", "sigmoid: the original's logistic spacing of MIN:MAX:N", NULL},
    {"--buffer", NULL, "N", O_INT, 0, 10000000, NULL, NULL, A_(buffer), 0, C_GRID, "200",
     "tokens left for question and answer", "10000000"},
    {"--template", NULL, "STR", O_TEXT, 0, 0, NULL, NULL, A_(template_arg), 0, C_GRID, NULL,
     "prompt with {context} and {question} (\\n escapes)", "no placeholder"},
    {"--chat", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(chat), 0, C_GRID, NULL,
     "the model's chat template (ChatML, Llama-3, [INST])", NULL},
    {"--span", NULL, "overlap|exact", O_ENUM, 0, 0, rh_span_rule_names, NULL, A_(span), 0, C_GRID, "overlap",
     "answer-span rule (overlap: token sets overlap > 90%, the original's)", NULL},
    {"--span-search", NULL, "needle|prompt", O_ENUM, 0, 0, rh_span_search_names, NULL, A_(span_search), 0, C_GRID,
     "needle", "where to look for the span (prompt: the original's)", NULL},
    {"--max-new", NULL, "N", O_INT, 1, 100000, NULL, NULL, A_(max_new), 0, C_GRID, "50",
     "tokens to decode at most", NULL},
    {"--task", NULL, "FILE", O_TEXT, 0, 0, NULL, NULL, A_(task), 0, C_EVAL, NULL,
     "JSON lines, one item each: id, kind (generate, choice, perplexity) and its fields", "/nonexistent.jsonl"},
    {"--perplexity", NULL, "FILE|DIR", O_TEXT, 0, 0, NULL, NULL, A_(perplexity), 0, C_EVAL, NULL,
     "perplexity items: a text file, or each *.txt of a folder", "/nonexistent_dir"},
    {"--rescore", NULL, "RESULTS.jsonl", O_TEXT, 0, 0, NULL, NULL, A_(rescore), 0, C_EVAL, NULL,
     "recompute the metrics of an eval's saved responses (no model run)", "/nonexistent.jsonl"},
    {"--format", NULL, "items|gsm8k", O_ENUM, 0, 0, rh_task_format_names, NULL, A_(task_format), 0, C_EVAL, "items",
     "gsm8k: GSM8K's JSON lines (question, answer): prompt \"Question: {question}\\nAnswer:\", stops \\n\\nQuestion: "
     "and \\n\\n, metric number", NULL},
    {"--fewshot", NULL, "FILE", O_TEXT, 0, 0, NULL, NULL, A_(fewshot), 0, C_EVAL, NULL,
     "items to draw the shots from (the same shots for every item)", "/nonexistent.jsonl"},
    {"--shots", NULL, "K", O_INT, 1, 100000, NULL, NULL, A_(shots), 0, C_EVAL, NULL,
     "shots drawn from --fewshot (seeded by --seed), prepended to every generate and choice item", "5"},
    {"--max-new", NULL, "N", O_INT, 1, 100000, NULL, NULL, A_(max_new), A_(have_max_new), C_EVAL, "256",
     "generate items: tokens to decode at most", NULL},
    {"--stop", NULL, "STR", O_MULTI, 0, 0, NULL, NULL, A_(stop), 0, C_EVAL, NULL,
     "generate items end at STR, not part of the response (\\n escapes; up to 16)", NULL},
    {"--window", NULL, "N", O_INT, 2, RHW_MAX_CTX, NULL, NULL, A_(window), 0, C_EVAL, "MAX_CTX",
     "perplexity: tokens per window", NULL},
    {"--stride", NULL, "S", O_INT, 1, RHW_MAX_CTX, NULL, NULL, A_(stride), 0, C_EVAL, "N/2",
     "perplexity: new tokens per window, each scored after >= N - S tokens", "16000000"},
    {"--shard", NULL, "i/n", O_CUSTOM, 0, 0, NULL, cli_parse_shard, 0, 0, C_GRID | C_EVAL, NULL,
     "shard i of n (1 <= i <= n): every n-th test from the i-th; a run without --shard merges the shards",
     "3/2"},
    {"--fresh", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(fresh), 0, C_GRID | C_EVAL, NULL,
     "ignore finished tests of earlier runs (default: resume)", NULL},
    {"--compat", NULL, "original", O_ENUM, 0, 0, cli_compat_names, NULL, A_(compat), 0, C_GRID, NULL,
     "original: the original code's prompt and decoding (BOS before the needle, the needle after a period token, the "
     "span searched over the whole prompt, stop at <0x0A> or id 144 only, never EOS; 20 lengths, depths 0:100:10)",
     NULL},
    {"--no-prefix-reuse", "--no-prefix-cache", NULL, O_SWITCH, 0, 0, NULL, NULL, A_(no_prefix_reuse), 0, C_GRID, NULL,
     "prefill every prompt whole (default: keep the prefix it shares with the test before in the KV cache; the"
     " results are the same)", NULL},
    {"--dry-run", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(dry_run), 0, C_GRID | C_EVAL, NULL,
     "print what the run costs (tests or items, tokens, memory, time on this machine from a quick measurement)"
     " and exit; runs nothing, writes nothing", NULL},
    {"--shape", NULL, "NAME", O_TEXT, 0, 0, NULL, NULL, A_(shape), 0, C_GRID, NULL,
     "run on random weights of this shape instead of MODEL (" BENCH_SHAPES "; byte tokens), to"
     " cost or time a grid", "huge"},
    {"--quiet", "-q", NULL, O_SWITCH, 0, 0, NULL, NULL, A_(quiet), 0, C_GRID | C_EVAL, NULL, "no progress line on stderr",
     NULL},
    {"--out", "-o", "FILE", O_TEXT, 0, 0, NULL, NULL, A_(out), 0, C_LOGITS, NULL, "the output file", NULL},
    {"--out", "-o", "FILE", O_TEXT, 0, 0, NULL, NULL, A_(out), 0, C_DETECT, "retrieval_scores.json",
     "the score file; beside it FILE.run.json, FILE.svg, FILE.tests.jsonl (FILE without .json)", "/nonexistent_dir/x"},
    {"--out", "-o", "BASE", O_TEXT, 0, 0, NULL, NULL, A_(out), 0, C_NIAH, "niah",
     "BASE.jsonl, BASE.csv, BASE.svg, BASE.run.json", "/nonexistent_dir/x"},
    {"--out", "-o", "BASE", O_TEXT, 0, 0, NULL, NULL, A_(out), 0, C_EVAL, "eval", "BASE.jsonl, BASE.csv, BASE.run.json",
     "/nonexistent_dir/x"},
    {"--append", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(append), 0, C_DETECT, NULL,
     "add to the lists of an existing score file", NULL},
    {"--score-set", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(score_set), 0, C_DETECT, NULL,
     "the paper's set definition (each span token once)", NULL},
    {"--top", NULL, "N", O_INT, 1, 1000000, NULL, NULL, A_(top), 0, C_DETECT | C_REPORT | C_COMPARE, "20",
     "rows of the ranked table (compare: the top-N overlap)", NULL},
    {"--mask-top", NULL, "K", O_INT, 1, 10000000, NULL, NULL, A_(mask_top), 0, C_MASKED, NULL,
     "mask the K best heads of --scores FILE", "3"},
    {"--mask-random", NULL, "K", O_INT, 1, 10000000, NULL, NULL, A_(mask_random), 0, C_MASKED, NULL,
     "mask K random heads of mean score < 0.1 in --scores FILE (seeded by --seed)", "3"},
    {"--mask-heads", NULL, "L-H,L-H", O_TEXT, 0, 0, NULL, NULL, A_(mask_heads), 0, C_MASKED, NULL,
     "mask these heads", "1-1,1-1"},
    {"--scores", NULL, "FILE", O_TEXT, 0, 0, NULL, NULL, A_(scores), 0, C_MASKED | C_KVPOL, NULL,
     "the score file of --mask-top, --mask-random, --kv-keep-top and --kv-keep-random", "x.json"},
    {"--seed", NULL, "S", O_CUSTOM, 0, 0, NULL, cli_parse_seed, 0, 0, C_KVPOL & ~C_EVAL, "1",
     "the seed of --mask-random and --kv-keep-random", NULL},
    {"--seed", NULL, "S", O_CUSTOM, 0, 0, NULL, cli_parse_seed, 0, 0, C_EVAL, "1",
     "the seed of the --fewshot draw, of --mask-random and of --kv-keep-random", NULL},
    {"--mask-mode", NULL, "uniform|neg-inf|zero", O_ENUM, 0, 0, rh_mask_mode_names, NULL, A_(mask_mode),
     A_(have_mask_mode), C_MASKED, "uniform", "how a masked head attends (uniform: the paper's)", NULL},
    {"--mask-prefill", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(mask_prefill), 0, C_NIAH | C_GENERATE, NULL,
     "mask the prefill too (default: decode steps only, as the original)", NULL},
    {"--mask-prefill", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(mask_prefill), 0, C_EVAL, NULL,
     "mask the context too (default: only the positions that generate or predict a scored token)", NULL},
    {"--mask-prefill", NULL, NULL, O_SWITCH, 0, 0, NULL, NULL, A_(mask_prefill), 0, C_LOGITS, NULL,
     "logits has no decode steps: the mask applies to every position, with or without this flag", NULL},
    {"--kv-keep-top", NULL, "K", O_INT, 1, 10000000, NULL, NULL, A_(kv_keep_top), 0, C_KVPOL, NULL,
     "KV cache policy: keep every position for the KV heads of the K best heads of --scores FILE (a KV head is kept"
     " when any of its query heads is), window the others (--kv-window, --kv-sinks)", "3"},
    {"--kv-keep-random", NULL, "K", O_INT, 1, 10000000, NULL, NULL, A_(kv_keep_random), 0, C_KVPOL, NULL,
     "the control: keep the KV heads of K random heads of mean score < 0.1 in --scores FILE (drawn as --mask-random"
     " draws, seeded by --seed), window the others", "3"},
    {"--kv-keep-heads", NULL, "L-H,L-H", O_TEXT, 0, 0, NULL, NULL, A_(kv_keep_heads), 0, C_KVPOL | C_BENCH, NULL,
     "keep the KV heads of these (query) heads, window the others", "1-1,1-1"},
    {"--kv-window", NULL, "W", O_INT, 1, RHW_MAX_CTX, NULL, NULL, A_(kv_window), A_(have_kv_window), C_KVPOL | C_BENCH, "64",
     "a windowed KV head stores its sinks and its last W positions (alone, without --kv-keep-*: every KV head"
     " windowed)", NULL},
    {"--kv-sinks", NULL, "S", O_INT, 0, RHW_MAX_CTX, NULL, NULL, A_(kv_sinks), A_(have_kv_sinks), C_KVPOL | C_BENCH, "4",
     "a windowed KV head stores positions 0..S-1 (attention sinks) too", NULL},
    {"--kv-sweep", NULL, "W1,W2,...", O_TEXT, 0, 0, NULL, NULL, A_(kv_sweep), 0, C_NIAH, NULL,
     "run the grid at each window W for three policies (--kv-keep-top K's heads full; K random heads full; every"
     " head windowed) and the full cache; draw the mean score against KV memory (BASE.kv.svg, BASE.kv.csv)", "64,x"},
    {"--kv-heads", NULL, "N", O_INT, 1, 1000000, NULL, NULL, A_(kv_heads), 0, C_REPORT, NULL,
     "also rank the KV heads of a grouped-query model with N KV heads per layer: the maximum and the sum of the mean "
     "scores of the query heads each serves (HF's repeat_kv grouping)", "7"},
    {"--format", NULL, "published|qrhead", O_ENUM, 0, 0, cli_format_names, NULL, A_(format), 0, C_REPORT, NULL,
     "with --out: write the score file in this form (qrhead: [[\"layer-head\", mean], ...], highest first)", NULL},
    {"--out", "-o", "FILE", O_TEXT, 0, 0, NULL, NULL, A_(out), 0, C_REPORT, NULL,
     "write the score file to FILE, in --format (default published)", "/nonexistent_dir/x.json"},
    {"--svg", NULL, "FILE", O_TEXT, 0, 0, NULL, NULL, A_(svg), 0, C_REPORT | C_COMPARE, NULL,
     "also draw the figure: the histogram of the heads' mean scores (report), A against B per head (compare)",
     "/nonexistent_dir/x.svg"},
    {"--help", "-h", NULL, O_SWITCH, 0, 0, NULL, NULL, A_(help), 0, ~0u, NULL, "this help", NULL},
};
#undef A_
#define CLI_N_OPTIONS ((int)(sizeof cli_options / sizeof cli_options[0]))

/* The commands: name, bit, the usage line after the name, what it does, positionals. */
typedef struct {
    const char *name;
    unsigned bit;
    int (*run)(const char *cmd, cli_args *a, int argc, char **argv);
    const char *usage, *summary, *about;
    int max_pos;
} cli_command;

static int cmd_info(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_generate(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_logits(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_tokenize(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_bench(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_experiment(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_eval(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_report(const char *cmd, cli_args *a, int argc, char **argv);
static int cmd_compare(const char *cmd, cli_args *a, int argc, char **argv);

static const cli_command cli_commands[] = {
    {"info", C_INFO, cmd_info, "[MODEL] [--checksum]",     "config, metadata, checksum",
     "Print the model's config, metadata, tensor count and FNV-1a checksum (files over 1 GiB: only with\n"
     "--checksum, it reads every byte).", 1},
    {"generate", C_GENERATE, cmd_generate, "[MODEL] (-p TEXT | --ids \"1 2 3\") [-n N] [--ids-out] [--ignore-eos] [mask options]",     "greedy decoding (heads masked or not)",
     "Greedy decoding: prints the continuation as text (or its ids with --ids-out) on stdout, speeds and\n"
     "the mask on stderr.  Stops after N tokens or at an end-of-sequence token.  Masked heads act at the\n"
     "last prompt token and the decode steps (the prompt before it runs unmasked unless --mask-prefill).", 1},
    {"logits", C_LOGITS, cmd_logits, "[MODEL] --ids \"1 2 3\" --out FILE [mask options]",     "float32 logits of every position",
     "Write the logits of every position: n_tokens x vocab_size float32, little-endian, row i for token i\n"
     "(written to a temporary file, then renamed); on stderr one line with the file and the mask.  A mask\n"
     "applies to every position (one prefill, no decode steps).", 1},
    {"tokenize", C_TOKENIZE, cmd_tokenize, "[MODEL] [TEXT | -] [--bos] [--decode]",     "token ids (or bytes)",
     "Print the token ids of TEXT (or of stdin, for - or no TEXT) space-separated on one line; no BOS\n"
     "unless --bos.  With --decode, read ids instead and print the bytes they stand for.  With one\n"
     "argument, it is MODEL if it ends in .rhw or names a file, else TEXT.", 2},
    {"bench", C_BENCH, cmd_bench, "[MODEL | --shape NAME] [--dtype D] [-p 512,2048] [-n 32]",     "prefill and decode speed",
     "Prefill each prompt length of -p (random tokens), then decode -n tokens greedily, with and without\n"
     "the observe hook.  A --shape model has seeded random weights (default tinyllama-1.1b); --dtype\n"
     "applies to it.  Prints tokens/s, the GFLOPS of the weight matmuls per wall second, as a share of\n"
     "the micro-kernel's in-cache peak times the threads, and per CPU second of all threads (the\n"
     "kernels' efficiency even on a busy machine), the prefill rate as a share of the first prompt\n"
     "length's (vs 1st: how well long prompts hold up), and the weight bytes per second of decode.", 1},
    {"detect", C_DETECT, cmd_experiment, "[MODEL] [options]",     "retrieval scores of every head (needle-in-a-haystack)",
     "The retrieval score of every head (needle-in-a-haystack tests, greedy decoding with the observe\n"
     "hook): writes the score file {\"layer-head\": [score per kept test, ...]}, its .run.json, an SVG\n"
     "heatmap and the per-test records, and prints the ranked heads.", 1},
    {"niah", C_NIAH, cmd_experiment, "[MODEL] [options]",     "needle-in-a-haystack grids, with heads masked",
     "The needle-in-a-haystack grid, with heads masked or not: ROUGE-1 recall x 100 of every test as\n"
     "JSON lines, CSV and an SVG heatmap; ends with \"mean score: NN.N over N tests\".", 1},
    {"eval", C_EVAL, cmd_eval, "[MODEL] (--task FILE | --perplexity FILE|DIR | --rescore RESULTS.jsonl) [options]",     "tasks under masks: generation, multiple choice, perplexity",
     "Tasks with heads masked or not, scored as lm-evaluation-harness does: --task JSON lines, an item a\n"
     "line with an id and a kind: generate (prompt, answer, metric exact|number|rouge1|f1; greedy to a\n"
     "--stop string, EOS or --max-new), choice (prompt, choices, gold: acc, acc_norm, acc_bytes of the\n"
     "summed log-probabilities), perplexity (text: sliding --window / --stride).  Writes BASE.jsonl (an\n"
     "item a line: id, response, extracted, correct, score, label; logliks; tokens, nll), BASE.csv and\n"
     "BASE.run.json; ends with \"accuracy: NN.N over N items\" (or \"perplexity: X over N tokens\").", 1},
    {"report", C_REPORT, cmd_report, "SCORES.json [--top N] [--kv-heads N] [--svg FILE] [--out FILE [--format F]]",     "properties of a score file: sparsity, activation",
     "The paper's properties of a score file (ours or a published one): share of heads above 0.1,\n"
     "histogram, top heads, always-active vs dynamically activated heads.", 1},
    {"compare", C_COMPARE, cmd_compare, "A.json B.json [--top N] [--svg FILE]",     "compare two score files: top-N overlap, rank correlation",
     "The top-N overlap and Spearman rank correlation of two score files.", 2},
};
#define CLI_N_COMMANDS ((int)(sizeof cli_commands / sizeof cli_commands[0]))

static const cli_command *cli_find_command(const char *name) {
    int i;
    for (i = 0; i < CLI_N_COMMANDS; i++)
        if (!strcmp(cli_commands[i].name, name)) return &cli_commands[i];
    return NULL;
}

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
    if (!s || !*s || isspace((unsigned char)*s)) return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int cli_parse_shard(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap) {
    long si, sn;
    char t[64];
    const char *sl = strchr(val, '/');
    (void)o;
    if (!sl || (size_t)(sl - val) >= sizeof t) {
        snprintf(why, cap, "expected i/n, got \"%.40s\"", val);
        return -1;
    }
    memcpy(t, val, (size_t)(sl - val));
    t[sl - val] = 0;
    if (!cli_int(sl + 1, 1, 100000, &sn) || !cli_int(t, 1, sn, &si)) {
        snprintf(why, cap, "expected i/n with 1 <= i <= n <= 100000, got \"%.40s\"", val);
        return -1;
    }
    a->shard_i = (int)si - 1;
    a->shard_n = (int)sn;
    return 0;
}

static int cli_parse_needle_range(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap) {
    char t[32];
    const char *c1 = strchr(val, ':');
    long x, y;
    (void)o;
    if (!c1 || (size_t)(c1 - val) >= sizeof t) {
        snprintf(why, cap, "expected FIRST:END (0-based, END excluded), got \"%.40s\"", val);
        return -1;
    }
    memcpy(t, val, (size_t)(c1 - val));
    t[c1 - val] = 0;
    if (!cli_int(t, 0, 999999, &x) || !cli_int(c1 + 1, x + 1, 1000000, &y)) {
        snprintf(why, cap, "expected FIRST:END with 0 <= FIRST < END, got \"%.40s\"", val);
        return -1;
    }
    a->needle_first = (int)x;
    a->needle_end = (int)y;
    return 0;
}

static int cli_parse_seed(const cli_option *o, const char *val, cli_args *a, char *why, size_t cap) {
    char *end;
    unsigned long long sv;
    (void)o;
    errno = 0;
    sv = strtoull(val, &end, 10);
    if (!*val || *val == '-' || isspace((unsigned char)*val) || *end || errno) {
        snprintf(why, cap, "expected an unsigned integer, got \"%.40s\"", val);
        return -1;
    }
    a->seed = (uint64_t)sv;
    a->seed_given = 1;
    return 0;
}

static void cli_args_init(cli_args *a) {
    memset(a, 0, sizeof *a);
    a->kv = RH_F32;
    a->n = -1;
    a->plist = "512";
    a->haystack = "weights/haystack";
    a->needles = "weights/needles.jsonl";
    a->buffer = 200;
    a->max_new = 50;
    a->shard_n = 1;
    a->top = 20;
    a->seed = 1;
    a->mask_mode = RH_MASK_UNIFORM;
}

/* The row of flag `name` for command bit `cmd`, or NULL; *other: a row of another command. */
static const cli_option *cli_find_option(const char *name, unsigned cmd, const cli_option **other) {
    int i;
    *other = NULL;
    for (i = 0; i < CLI_N_OPTIONS; i++) {
        const cli_option *o = &cli_options[i];
        if (strcmp(name, o->name) && !(o->alias && !strcmp(name, o->alias))) continue;
        if (o->cmds & cmd) return o;
        if (!*other) *other = o;
    }
    return NULL;
}

/* Parse argv[1..] of command c into a (defaults first).  Returns 0, or -1 with one line in msg
 * ("<flag>: <problem>"). */
static int cli_parse_raw(const cli_command *c, int argc, char **argv, cli_args *a, char *msg, size_t cap);
static int cli_parse(const cli_command *c, int argc, char **argv, cli_args *a, char *msg, size_t cap) {
    char *p;
    if (cli_parse_raw(c, argc, argv, a, msg, cap) == 0) return 0;
    for (p = msg; *p; p++) /* an argument quoted in the message keeps it one line */
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return -1;
}
static int cli_parse_raw(const cli_command *c, int argc, char **argv, cli_args *a, char *msg, size_t cap) {
    int i;
    cli_args_init(a);
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        char name[64], why[256];
        const cli_option *o, *other;
        long v;
        int k;
        if (arg[0] != '-' || !arg[1]) {
            if (a->n_pos >= c->max_pos) {
                snprintf(msg, cap, "%.60s: unexpected argument (%s takes %s)", arg, c->name, c->usage);
                return -1;
            }
            a->pos[a->n_pos++] = arg;
            continue;
        }
        eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
        if (eq) {
            size_t n = (size_t)(eq - arg) < sizeof name ? (size_t)(eq - arg) : sizeof name - 1;
            memcpy(name, arg, n);
            name[n] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        o = cli_find_option(name, c->bit, &other);
        if (!o) {
            if (other) {
                char users[256];
                int j, n = 0;
                users[0] = 0;
                for (j = 0; j < CLI_N_COMMANDS; j++)
                    if (other->cmds & cli_commands[j].bit)
                        n += snprintf(users + n, sizeof users - (size_t)n, "%s%s", n ? ", " : "", cli_commands[j].name);
                snprintf(msg, cap, "%.60s: not an option of %s (it is one of %s; see retrieval_heads %s --help)", name,
                         c->name, users, c->name);
            } else {
                snprintf(msg, cap, "%.60s: unknown option (see retrieval_heads %s --help)", name, c->name);
            }
            return -1;
        }
        if (o->kind == O_SWITCH) {
            if (val) {
                snprintf(msg, cap, "%s takes no value", name);
                return -1;
            }
            *(int *)(void *)((char *)a + o->off) = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(msg, cap, "%s: missing value", name);
                return -1;
            }
            val = argv[++i];
        }
        switch (o->kind) {
        case O_INT:
            if (!cli_int(val, o->lo, o->hi, &v)) {
                snprintf(msg, cap, "%s: expected an integer in [%ld, %ld], got \"%.40s\"", name, o->lo, o->hi, val);
                return -1;
            }
            *(int *)(void *)((char *)a + o->off) = (int)v;
            break;
        case O_TEXT:
            if (!*val) {
                snprintf(msg, cap, "%s: empty value", name);
                return -1;
            }
            *(const char **)(void *)((char *)a + o->off) = val;
            break;
        case O_ENUM:
            k = rh_enum_parse(o->names, val);
            if (k < 0) {
                snprintf(msg, cap, "%s: expected %s, got \"%.40s\"", name, o->arg, val);
                return -1;
            }
            *(int *)(void *)((char *)a + o->off) = k;
            break;
        case O_CUSTOM:
            if (o->parse(o, val, a, why, sizeof why)) {
                snprintf(msg, cap, "%s: %s", name, why);
                return -1;
            }
            break;
        case O_MULTI: {
            /* the field: { const char *v[16]; int n; } as cli_args.stop */
            const char **v = (const char **)(void *)((char *)a + o->off);
            int *nv = (int *)(void *)((char *)a + o->off + 16 * sizeof(const char *));
            if (!*val) {
                snprintf(msg, cap, "%s: empty value", name);
                return -1;
            }
            if (*nv >= 16) {
                snprintf(msg, cap, "%s: given more than 16 times", name);
                return -1;
            }
            v[(*nv)++] = val;
            break;
        }
        default:
            break;
        }
        if (o->seen) *(int *)(void *)((char *)a + o->seen) = 1;
    }
    return 0;
}

/* --help of a command, from its row in cli_commands and its rows in cli_options. */
static void cli_help(FILE *f, const cli_command *c) {
    int i;
    fprintf(f, "usage: retrieval_heads %s %s\n%s\n", c->name, c->usage, c->about);
    if (c->bit & C_RUNS) fprintf(f, "MODEL is a .rhw file; omitted, %s.\n", RH_DEFAULT_MODEL);
    fprintf(f, "options:\n");
    for (i = 0; i < CLI_N_OPTIONS; i++) {
        const cli_option *o = &cli_options[i];
        char left[80];
        if (!(o->cmds & c->bit)) continue;
        if (o->alias && o->alias[1] == '-') /* a long alias (an older name) after the name */
            snprintf(left, sizeof left, "%s%s%s, %s", o->name, o->arg ? " " : "", o->arg ? o->arg : "", o->alias);
        else
            snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        {
            /* the help wrapped at 100 columns, the default last */
            char text[512];
            const char *p = text;
            int col = 0;
            snprintf(text, sizeof text, "%s%s%s%s", o->help, o->def ? " [" : "", o->def ? o->def : "", o->def ? "]" : "");
            fprintf(f, "  %-22s", left);
            if (strlen(left) > 22) fprintf(f, "\n%24s", "");
            while (*p) {
                int w = 0;
                while (p[w] && p[w] != ' ') w++;
                if (col && col + 1 + w > 76) {
                    fprintf(f, "\n%24s", "");
                    col = 0;
                }
                fprintf(f, "%s%.*s", col ? " " : " ", w, p);
                col += w + 1;
                p += w;
                while (*p == ' ') p++;
            }
            fputc('\n', f);
        }
    }
}

/* ---- what the commands share: opening the model, a context ---- */

static const char *cli_find_default(const char *model, const char *name, const char *rel, char *buf, size_t cap,
                                    char *tried, size_t tcap);

/* The model a command runs: MODEL (path), else RH_DEFAULT_MODEL found beside the program or
 * here (into buf), else NULL with the places looked at in tried. */
static const char *cli_model_path(const char *path, char *buf, size_t cap, char *tried, size_t tcap) {
    return path ? path : cli_find_default(NULL, NULL, RH_DEFAULT_MODEL, buf, cap, tried, tcap);
}
static int cli_no_model(const char *cmd, const char *tried) {
    return cli_fail(2, cmd, "no MODEL given and the default %s does not exist (looked for %s; give MODEL)", RH_DEFAULT_MODEL,
                    tried);
}

static int cli_open(const char *cmd, const char *path, rh_model **m) {
    char err[512];
    char found[4200], tried[8600];
    if (!(path = cli_model_path(path, found, sizeof found, tried, sizeof tried))) return cli_no_model(cmd, tried);
    /* a model that cannot be read or is malformed is bad input, found before any work: 2 */
    if (rh_model_open(path, m, err, sizeof err) != RH_OK) return cli_fail(2, cmd, "%s", err);
    return 0;
}

/* The directory of this program (from /proc/self/exe where there is one), or "" */
static const char *cli_program_dir(void) {
    static char dir[4096];
    static int done;
    if (!done) {
        done = 1;
        dir[0] = 0;
#if defined(__linux__)
        {
            ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
            char *sl;
            dir[n > 0 ? n : 0] = 0;
            sl = strrchr(dir, '/');
            if (sl) *sl = 0;
            else dir[0] = 0;
        }
#endif
    }
    return dir;
}

/* A default file that is found: the first of the candidates that exists, else NULL, with the
 * places tried in `tried`.  Candidates: `name` beside the model (when model is given), then
 * `rel` in the current directory, then `rel` beside this program. */
static const char *cli_find_default(const char *model, const char *name, const char *rel, char *buf, size_t cap,
                                    char *tried, size_t tcap) {
    const char *pd = cli_program_dir();
    size_t dl = model ? rh_path_dir_len(model) : 0;
    int k;
    tried[0] = 0;
    for (k = 0; k < 3; k++) {
        if (k == 0 && !model) continue;
        if (k == 0) snprintf(buf, cap, "%.*s%s", (int)dl, model, name);
        else if (k == 1) snprintf(buf, cap, "%s", rel);
        else if (*pd) snprintf(buf, cap, "%s/%s", pd, rel);
        else continue;
        if (access(buf, F_OK) == 0) return buf;
        snprintf(tried + strlen(tried), tcap - strlen(tried), "%s%s", tried[0] ? ", " : "", buf);
    }
    return NULL;
}

/* The context parameters of the flags every model-running command takes. */
static void cli_ctx_params(const cli_args *a, rh_ctx_params *p) {
    rh_ctx_params_default(p);
    p->n_threads = a->threads;
    p->kv_dtype = (rh_dtype)a->kv;
    p->n_ctx = a->n_ctx;
    p->reference = a->reference;
    if (a->kv_keep_top || a->kv_keep_random || a->kv_keep_heads || a->have_kv_window || a->have_kv_sinks) {
        p->kv_window = a->have_kv_window ? a->kv_window : 64;
        p->kv_sinks = a->have_kv_sinks ? a->kv_sinks : 4;
        p->kv_keep = a->kv_keep_flags;
    }
}

static int cli_kv_flags(const cli_args *a, rh_head_pick *pick, char *msg, size_t cap);
static int cli_kv_resolve(const char *cmd, cli_args *a, const rh_model *m, unsigned char **keep, char **label);

static int cli_ctx(const char *cmd, const cli_args *a, const rh_model *m, int need, rh_ctx **c) {
    rh_ctx_params p;
    char err[512];
    cli_ctx_params(a, &p);
    if (!p.n_ctx) p.n_ctx = need;
    if (p.n_ctx < need) return cli_fail(2, cmd, "--ctx: %d is smaller than the %d tokens needed", p.n_ctx, need);
    if (p.n_ctx > RHW_MAX_CTX) return cli_fail(1, cmd, "%d tokens exceed the limit of %d", p.n_ctx, RHW_MAX_CTX);
    /* allowed (RoPE extends), but positions past the trained context are untrained */
    if (a->n_ctx > rh_model_config(m)->max_ctx)
        fprintf(stderr, "retrieval_heads: %s: warning: --ctx %d exceeds the model's trained context of %d tokens\n", cmd,
                a->n_ctx, rh_model_config(m)->max_ctx);
    if (rh_ctx_new(m, &p, c, err, sizeof err) != RH_OK) return cli_fail(1, cmd, "%s", err);
    return 0;
}

/* The configs of the named shapes that `bench --shape` builds random models of (test/bench_attention.c
 * times attention on the same TinyLlama shape). */
RH_UNUSED static int bench_shape(const char *name, rh_config *c) {
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
    } else if (strcmp(name, "mixtral-mini") == 0 || strcmp(name, "mixtral-mini-dense") == 0) {
        /* Mixtral-8x7B's proportions (8 experts, 2 a token, hidden 3.5 dim, 4 query heads a KV
         * head of 128) at a quarter of its width and layers; -dense: one MLP as wide as the two
         * experts a token uses, the same matmul work a token */
        c->dim = 1024; c->hidden_dim = 3584; c->n_layers = 8; c->n_heads = 8; c->n_kv_heads = 2; c->head_dim = 128;
        c->vocab_size = 32000; c->max_ctx = 4096; c->rope_theta = 1e6f;
        if (name[12]) c->hidden_dim *= 2;
        else { c->n_experts = 8; c->n_experts_used = 2; }
    } else {
        return 0;
    }
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

/* Write n floats as little-endian f32 to path (rhm_write_atomic: temp file, synced, renamed). */
static int write_f32_file(const char *path, const float *x, size_t n, char *err, size_t cap) {
    unsigned char *b = n <= SIZE_MAX / 4 ? (unsigned char *)malloc(n ? 4 * n : 1) : NULL;
    size_t i;
    int rc;
    if (!b) { set_err(err, cap, "out of memory"); return RH_ENOMEM; }
    for (i = 0; i < n; i++) wr_f32(b + 4 * i, x[i]);
    rc = rhm_write_atomic(path, (const char *)b, 4 * n, err, cap);
    free(b);
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

/* ---- info ---- */
static int cmd_info(const char *cmd, cli_args *a, int argc, char **argv) {
    rh_model *m;
    const rh_config *c;
    int i, r;
    char sum[17], kv_line[1024];
    int want_sum;
    (void)argc;
    (void)argv;
    if (a->scores && !a->kv_keep_top && !a->kv_keep_random)
        return cli_fail(2, cmd, "--scores is used only with --kv-keep-top or --kv-keep-random");
    if (a->seed_given && !a->kv_keep_random) return cli_fail(2, cmd, "--seed is used only with --kv-keep-random");
    if ((r = cli_open(cmd, a->n_pos ? a->pos[0] : NULL, &m)) != 0) return r;
    c = rh_model_config(m);
    kv_line[0] = 0;
    if (a->kv_keep_top || a->kv_keep_random || a->kv_keep_heads || a->have_kv_window || a->have_kv_sinks) {
        /* the KV cache of a max_ctx context under the policy (f32), checked before anything prints */
        unsigned char *keep = NULL;
        char *label = NULL, err[512];
        rh_ctx_params p;
        rh_ctx_sizes z;
        if ((r = cli_kv_resolve(cmd, a, m, &keep, &label)) != 0) {
            rh_model_close(m);
            return r;
        }
        cli_ctx_params(a, &p);
        if (rh_ctx_sizes_of(m, &p, &z, err, sizeof err) == RH_OK)
            snprintf(kv_line, sizeof kv_line,
                     "kv_cache        %.0f bytes at max_ctx, f32 (%s; %d of %d KV heads full; full cache %.0f bytes, %.1f%%)\n",
                     z.kv_bytes, label, z.kv_heads_full, z.kv_heads, z.kv_full_bytes, 100.0 * z.kv_bytes / z.kv_full_bytes);
        free(keep);
        free(label);
    }
    want_sum = a->checksum || m->size < ((size_t)1 << 30);
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
    else if (c->rope_scaling == RH_ROPE_LONGROPE)
        printf("rope_scaling    longrope attention_factor %g original_max_ctx %d\n", (double)c->rope_attn_factor, c->rope_original_max_ctx);
    else printf("rope_scaling    none\n");
    if (c->rope_dim) printf("rope_dim        %d of %d\n", c->rope_dim, c->head_dim);
    if (c->sliding_window) printf("sliding_window  %d from layer %d\n", c->sliding_window, c->window_first_layer);
    if (c->n_experts) printf("n_experts       %d (%d a token)\n", c->n_experts, c->n_experts_used);
    printf("norm_eps        %g\nqkv_bias        %d\ntied_embeddings %d\nadd_bos         %d\nbos_id          %d\neos_ids        ",
           (double)c->norm_eps, c->qkv_bias, c->tied_embeddings, c->add_bos, c->bos_id);
    for (i = 0; i < c->n_eos; i++) printf(" %d", c->eos_ids[i]);
    printf("\ntokens          %d\n", rh_n_tokens(m));
    if (kv_line[0]) printf("%s", kv_line);
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
    printf("build           %s\n", rh_build());
    rh_model_close(m);
    return 0;
}

/* ---- masks of generate and logits: the flags' heads resolved on the model ---- */
static int cli_mask_flags(const cli_args *a, rh_head_pick *pick, char *msg, size_t cap);

/* *flags: n_layers * n_heads bytes (NULL without a mask), *label: "none", "top-3: ..."; an exit
 * code (2: the flags name no heads of this model). */
static int cli_mask(const char *cmd, const rh_head_pick *pick, const rh_model *m, unsigned char **flags, char **label) {
    const rh_config *c = rh_model_config(m);
    char err[512];
    *flags = NULL;
    *label = NULL;
    if (pick->kind != RH_PICK_NONE && !(*flags = (unsigned char *)calloc((size_t)c->n_layers * (size_t)c->n_heads, 1)))
        return cli_fail(1, cmd, "out of memory");
    if (rh_head_pick_resolve(*flags ? pick : NULL, "--mask", c->n_layers, c->n_heads, *flags, label, err, sizeof err)) {
        free(*flags);
        *flags = NULL;
        return cli_fail(2, cmd, "%s", err);
    }
    return 0;
}

/* ---- generate ---- */
static int cmd_generate(const char *cmd, cli_args *a, int argc, char **argv) {
    int i, r, n_prompt = 0, *ids = NULL, n_gen = 0, rc = 0;
    long n = a->have_n ? a->n : 64;
    rh_model *m = NULL;
    rh_ctx *c = NULL;
    float *logits = NULL;
    char why[256], *mask_label = NULL, *kv_label = NULL;
    unsigned char *mask = NULL, *kv_keep = NULL;
    rh_head_pick pick, kvp;
    double t0, t1, t2;
    (void)argc;
    (void)argv;
    if (!a->prompt == !a->ids) return cli_fail(2, cmd, "give exactly one of -p TEXT and --ids \"1 2 3\"");
    if (cli_mask_flags(a, &pick, why, sizeof why)) return cli_fail(2, cmd, "%s", why);
    if (cli_kv_flags(a, &kvp, why, sizeof why)) return cli_fail(2, cmd, "%s", why);
    if (a->ids && (n_prompt = cli_ids(a->ids, &ids, why, sizeof why)) < 0) return cli_fail(2, cmd, "--ids: %s", why);
    if ((r = cli_open(cmd, a->n_pos ? a->pos[0] : NULL, &m)) != 0) { free(ids); return r; }
    if ((rc = cli_mask(cmd, &pick, m, &mask, &mask_label)) != 0) goto done;
    if ((rc = cli_kv_resolve(cmd, a, m, &kv_keep, &kv_label)) != 0) goto done;
    if (a->prompt) {
        char err[512];
        if (rh_tokenize(m, a->prompt, strlen(a->prompt), -1, &ids, &n_prompt, err, sizeof err) != RH_OK) {
            rc = cli_fail(1, cmd, "%s", err);
            goto done;
        }
        if (n_prompt == 0) { rc = cli_fail(2, cmd, "-p: the prompt has no tokens"); goto done; }
    }
    for (i = 0; i < n_prompt; i++)
        if (ids[i] >= m->cfg.vocab_size) { rc = cli_fail(2, cmd, "--ids: id %d out of range 0..%d", ids[i], m->cfg.vocab_size - 1); goto done; }
    if ((long)n_prompt + n > RHW_MAX_CTX) { rc = cli_fail(2, cmd, "-n: %ld tokens after a %d-token prompt exceed %d", n, n_prompt, RHW_MAX_CTX); goto done; }
    if ((rc = cli_ctx(cmd, a, m, n_prompt + (int)n, &c)) != 0) goto done;
    logits = (float *)malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    if (!logits) { rc = cli_fail(1, cmd, "out of memory"); goto done; }
    {
        rh_decoder dec;
        char buf[1024];
        int tok, k;
        rh_decoder_init(&dec, m, RH_DETOK_SKIP_SPECIAL);
        t0 = rh_now();
        /* a mask acts as niah's: from the last prompt token on, or on the whole prompt with
         * --mask-prefill */
        if (mask && !a->mask_prefill && n_prompt > 1 && rh_eval(c, ids, n_prompt - 1, NULL, 0) != RH_OK) { rc = cli_fail(1, cmd, "%s", rh_ctx_error(c)); goto done; }
        rh_set_mask(c, mask, (rh_mask_mode)a->mask_mode);
        if (rh_eval(c, ids + rh_ctx_n_past(c), n_prompt - rh_ctx_n_past(c), logits, 0) != RH_OK) { rc = cli_fail(1, cmd, "%s", rh_ctx_error(c)); goto done; }
        t1 = rh_now();
        for (n_gen = 0; n_gen < n; ) {
            tok = rh_argmax(logits, m->cfg.vocab_size);
            n_gen++;
            if (a->ids_out) printf("%s%d", n_gen > 1 ? " " : "", tok);
            else if ((k = rh_decoder_push(&dec, tok, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)k, stdout);
            fflush(stdout);
            if (!a->ignore_eos) {
                int e, is_eos = 0;
                for (e = 0; e < m->cfg.n_eos; e++) if (tok == m->cfg.eos_ids[e]) is_eos = 1;
                if (is_eos) break;
            }
            if (n_gen == n) break;
            if (rh_eval(c, &tok, 1, logits, 0) != RH_OK) { rc = cli_fail(1, cmd, "%s", rh_ctx_error(c)); goto done; }
        }
        if (!a->ids_out && (k = rh_decoder_flush(&dec, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)k, stdout);
        putchar('\n');
        t2 = rh_now();
        if (c->kv_window > 0)
            fprintf(stderr, "KV cache %.0f bytes (%s)\n", rh_ctx_kv_bytes(c), kv_label);
        fprintf(stderr, "prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.2f tok/s); %d threads, kernels %s; mask %s (%s, %s)\n",
                n_prompt, t1 - t0, n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen, t2 - t1,
                n_gen > 1 ? (n_gen - 1) / (t2 - t1 > 0 ? t2 - t1 : 1e-9) : 0.0, c->n_threads, RH_SIMD_NAME, mask_label,
                rh_mask_mode_names[a->mask_mode], rhe_mask_steps(mask != NULL, a->mask_prefill));
    }
done:
    free(mask);
    free(mask_label);
    free(kv_keep);
    free(kv_label);
    free(logits);
    free(ids);
    rh_ctx_free(c);
    rh_model_close(m);
    return rc;
}

/* ---- logits ---- */
static int cmd_logits(const char *cmd, cli_args *a, int argc, char **argv) {
    int i, r, n = 0, *ids = NULL, rc = 0;
    rh_model *m = NULL;
    rh_ctx *c = NULL;
    float *lg = NULL;
    char why[256], *mask_label = NULL, *kv_label = NULL;
    unsigned char *mask = NULL, *kv_keep = NULL;
    rh_head_pick pick, kvp;
    (void)argc;
    (void)argv;
    if (!a->ids) return cli_fail(2, cmd, "--ids: missing (the token ids to run)");
    if (!a->out) return cli_fail(2, cmd, "--out: missing (the output file)");
    if (cli_mask_flags(a, &pick, why, sizeof why)) return cli_fail(2, cmd, "%s", why);
    if (cli_kv_flags(a, &kvp, why, sizeof why)) return cli_fail(2, cmd, "%s", why);
    if ((n = cli_ids(a->ids, &ids, why, sizeof why)) < 0) return cli_fail(2, cmd, "--ids: %s", why);
    if ((r = cli_open(cmd, a->n_pos ? a->pos[0] : NULL, &m)) != 0) { free(ids); return r; }
    if ((rc = cli_mask(cmd, &pick, m, &mask, &mask_label)) != 0) goto done;
    if ((rc = cli_kv_resolve(cmd, a, m, &kv_keep, &kv_label)) != 0) goto done;
    for (i = 0; i < n; i++)
        if (ids[i] >= m->cfg.vocab_size) { rc = cli_fail(2, cmd, "--ids: id %d out of range 0..%d", ids[i], m->cfg.vocab_size - 1); goto done; }
    if ((rc = cli_ctx(cmd, a, m, n, &c)) != 0) goto done;
    lg = (float *)malloc(sizeof(float) * (size_t)n * (size_t)m->cfg.vocab_size);
    if (!lg) { rc = cli_fail(1, cmd, "out of memory for %d x %d logits", n, m->cfg.vocab_size); goto done; }
    rh_set_mask(c, mask, (rh_mask_mode)a->mask_mode); /* every position: logits has no decode steps */
    if (rh_eval(c, ids, n, lg, 1) != RH_OK) { rc = cli_fail(1, cmd, "%s", rh_ctx_error(c)); goto done; }
    {
        char err[512];
        if (write_f32_file(a->out, lg, (size_t)n * m->cfg.vocab_size, err, sizeof err) != RH_OK) rc = cli_fail(1, cmd, "%s", err);
        else {
            if (c->kv_window > 0) fprintf(stderr, "logits: KV cache %.0f bytes (%s)\n", rh_ctx_kv_bytes(c), kv_label);
            fprintf(stderr, "logits: wrote %s: %d x %d float32; mask %s (%s, %s)\n", a->out, n, m->cfg.vocab_size, mask_label,
                    rh_mask_mode_names[a->mask_mode], mask ? "every position" : "unmasked");
        }
    }
done:
    free(mask);
    free(mask_label);
    free(kv_keep);
    free(kv_label);
    free(lg);
    free(ids);
    rh_ctx_free(c);
    rh_model_close(m);
    return rc;
}

/* ---- tokenize ---- */
static int cmd_tokenize(const char *cmd, cli_args *a, int argc, char **argv) {
    int i, r, rc = 0;
    const char *model = NULL, *text = NULL;
    char *in = NULL;
    size_t len;
    rh_model *m = NULL;
    (void)argc;
    (void)argv;
    if (a->n_pos == 2) { model = a->pos[0]; text = a->pos[1]; }
    else if (a->n_pos == 1) {
        if (cli_is_model_path(a->pos[0])) model = a->pos[0];
        else text = a->pos[0];
    }
    if (!text || strcmp(text, "-") == 0) {
        in = read_stdin(&len);
        if (!in) return cli_fail(1, cmd, "cannot read stdin");
    } else {
        len = strlen(text);
    }
    if ((r = cli_open(cmd, model, &m)) != 0) { free(in); return r; }
    if (a->decode) {
        int *ids = NULL, n;
        char why[256], err[512], *s = NULL;
        size_t sl;
        if ((n = cli_ids(in ? in : text, &ids, why, sizeof why)) < 0) { rc = cli_fail(2, cmd, "--decode: %s", why); goto done; }
        for (i = 0; i < n; i++)
            if (ids[i] >= m->cfg.vocab_size) {
                rc = cli_fail(2, cmd, "--decode: id %d out of range 0..%d", ids[i], m->cfg.vocab_size - 1);
                free(ids); /* after the message, which reads ids[i] */
                goto done;
            }
        /* as sentencepiece and HF decode: the dummy-prefix space of the first token is dropped, so
         * `tokenize TEXT | tokenize --decode -` gives TEXT back */
        if (rh_detokenize(m, ids, n, RH_DETOK_STRIP_LEADING, &s, &sl, err, sizeof err) != RH_OK) { free(ids); rc = cli_fail(1, cmd, "%s", err); goto done; }
        fwrite(s, 1, sl, stdout);
        free(s);
        free(ids);
    } else {
        int *ids = NULL, n;
        char err[512];
        if (rh_tokenize(m, in ? in : text, len, a->bos, &ids, &n, err, sizeof err) != RH_OK) { rc = cli_fail(1, cmd, "%s", err); goto done; }
        for (i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
        free(ids);
    }
done:
    free(in);
    rh_model_close(m);
    return rc;
}

/* Multiply-adds x2 of the weight matmuls per token (logits only for the last). */
static double bench_matmul_flops(const rh_config *c) {
    double w, att, kvrow;
    rhm_cost_shape(c, &w, &att, &kvrow); /* the matrix parameters a token goes through */
    return 2.0 * w;
}

/* The packed micro-kernel on data that stays in L1, one thread, for ~0.3 s: the practical
 * matmul peak of one core that the prefill figures are compared with.  dt: the weights' dtype,
 * which picks the bf16 dot-product kernel for bf16 in RH_BF16DOT builds. */
static double bench_peak_gflops(rh_dtype dt) {
    enum { K = 256 };
    static float xp[K * RH_MR], p[K * RH_NR], y[RH_MR * RH_NR];
    volatile float sink = 0.0f;
    double best = 0.0;
    static uint32_t xp16[K / 2 * RH_MR], p16[K / 2 * RH_NR];
    int i, w, bf16dot = 0;
    for (i = 0; i < K * RH_MR; i++) xp[i] = 1e-3f * (float)(i % 7);
    for (i = 0; i < K * RH_NR; i++) p[i] = 1e-3f * (float)(i % 5);
#if defined(RH_BF16DOT)
    if (dt == RH_BF16) { /* the same kind of values as bf16 pairs */
        static uint16_t wh[RH_NR * K];
        for (i = 0; i < RH_NR * K; i++) wh[i] = k_f32_to_bf16(p[i]);
        k_pack_x_tile_bf16pair(xp, K, RH_MR, K, 0, xp16);
        k_pack_w_bf16pair(wh, K, RH_NR, K, p16);
        bf16dot = 1;
    }
#else
    (void)dt;
#endif
    for (w = 0; w < 5; w++) { /* best of 5 windows of 0.1 s: a busy neighbour only lowers a window */
        double t0 = rh_now(), t, g;
        long reps = 0;
        do {
            for (i = 0; i < 1000; i++) {
                if (bf16dot) k_gemm_bf16dot(xp16, p16, K, y, RH_NR, RH_MR, RH_NR);
                else k_gemm_packed(xp, p, K, y, RH_NR, RH_MR, RH_NR);
                sink += y[i % (RH_MR * RH_NR)];
            }
            reps += 1000;
            t = rh_now() - t0;
        } while (t < 0.1);
        g = 2.0 * RH_MR * RH_NR * K * (double)reps / t * 1e-9;
        if (g > best) best = g;
    }
    (void)sink;
    return best;
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
    size_t per = J->n / 256, i = 0;
    const float *p = J->buf + (size_t)task * per;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    (void)thread;
#if defined(RH_VEC)
    /* vector adds into 4 accumulators: the scalar loop below alone (4 dependent float adds per 16
     * bytes) is compute-bound and reads below the memory's bandwidth */
    {
        rh_v a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
        for (; i + 4 * RH_VL <= per; i += 4 * RH_VL) {
            a0 = V_ADD(a0, V_LOAD(p + i)); a1 = V_ADD(a1, V_LOAD(p + i + RH_VL));
            a2 = V_ADD(a2, V_LOAD(p + i + 2 * RH_VL)); a3 = V_ADD(a3, V_LOAD(p + i + 3 * RH_VL));
        }
        s0 = v_hsum(V_ADD(V_ADD(a0, a1), V_ADD(a2, a3)));
    }
#endif
    for (; i + 4 <= per; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
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


static int cmd_bench(const char *cmd, cli_args *a, int argc, char **argv) {
    const char *shape = a->shape;
    long n_dec = a->have_n ? a->n : 32, plens[16];
    int n_p = 0, i, r, rc = 0;
    rh_dtype dt = (rh_dtype)a->dtype;
    rh_config cfg;
    rh_model *m = NULL;
    char err[512], *kv_label = NULL;
    unsigned char *kv_keep = NULL;
    double peak, wbytes, first_rate = 0;
    int kv_pol = a->kv_keep_heads || a->have_kv_window || a->have_kv_sinks;
    (void)argc;
    (void)argv;
    if (shape && a->n_pos) return cli_fail(2, cmd, "--shape: give a MODEL or a --shape, not both");
    if (shape && !bench_shape(shape, &cfg)) return cli_fail(2, cmd, "--shape: '%s' is not " BENCH_SHAPES, shape);
    if (a->have_dtype && a->n_pos) return cli_fail(2, cmd, "--dtype: applies to --shape models only (a file keeps its dtype)");
    {
        const char *s = a->plist;
        while (*s) {
            char *end;
            long v;
            errno = 0;
            v = strtol(s, &end, 10);
            if (end == s || errno || v < 1 || v > RHW_MAX_CTX || (*end && *end != ',') || n_p == 16)
                return cli_fail(2, cmd, "-p: '%s' is not a comma-separated list of prompt lengths (1..%d, at most 16)", a->plist, RHW_MAX_CTX);
            plens[n_p++] = v;
            s = *end ? end + 1 : end;
        }
        if (n_p == 0) return cli_fail(2, cmd, "-p: no prompt lengths");
        for (i = 0; i < n_p; i++)
            if (a->n_ctx && a->n_ctx < plens[i] + n_dec)
                return cli_fail(2, cmd, "--ctx: %d is smaller than the %ld tokens of -p %ld and -n %ld", a->n_ctx,
                                plens[i] + n_dec, plens[i], n_dec);
    }
    if (a->n_pos) {
        if ((r = cli_open(cmd, a->pos[0], &m)) != 0) return r;
        cfg = m->cfg;
    } else {
        double t0 = rh_now();
        if (!shape) bench_shape(shape = "tinyllama-1.1b", &cfg);
        if (kv_pol) { /* the kept heads checked on the shape before its weights are made */
            rh_head_pick pk;
            rh_ctx_params pp;
            char msg[512];
            if (cli_kv_flags(a, &pk, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
            cli_ctx_params(a, &pp);
            if (rhm_kv_setup(&pk, &pp, cfg.n_layers, cfg.n_heads, &kv_keep, &kv_label, msg, sizeof msg))
                return cli_fail(2, cmd, "%s", msg);
            free(kv_keep);
            free(kv_label);
            kv_keep = NULL;
            kv_label = NULL;
        }
        for (i = 0; i < n_p; i++) if (plens[i] + 2 * n_dec > cfg.max_ctx) cfg.max_ctx = (int)(plens[i] + 2 * n_dec);
        if (rh_model_random(&cfg, dt, 1, &m, err, sizeof err) != RH_OK) return cli_fail(1, cmd, "%s", err);
        fprintf(stderr, "random %s weights (%s) made in %.1f s\n", shape, dtype_name(dt), rh_now() - t0);
    }
    if ((r = cli_kv_resolve(cmd, a, m, &kv_keep, &kv_label)) != 0) {
        rh_model_close(m);
        return r;
    }
    if (kv_pol) printf("KV cache policy: %s\n", kv_label);
    peak = bench_peak_gflops(rh_model_dtype(m));
    {
        rh_ctx *bc = NULL;
        rh_ctx_params bp;
        rh_ctx_params_default(&bp);
        bp.n_threads = a->threads;
        bp.n_ctx = 1;
        if (rh_ctx_new(m, &bp, &bc, err, sizeof err) == RH_OK) {
            printf("read bandwidth %.1f GB/s with %d threads\n", bench_bandwidth(bc), bc->n_threads);
            rh_ctx_free(bc);
        }
    }
    /* bytes of weights a decode step reads: every matrix but the embedding (one row of it),
     * which is read whole when it doubles as the output head; of a mixture's experts, the
     * n_experts_used a token is routed to */
    wbytes = (double)m->size - (m->cfg.tied_embeddings ? 0.0 : (double)m->embed.rows * m->embed.cols * dtype_size(m->embed.dt));
    if (m->cfg.n_experts)
        for (i = 0; i < m->cfg.n_layers; i++) {
            const rh_wt *we = m->layers[i].we;
            double one = 0;
            for (r = 0; r < 3; r++) one += (double)we[r].rows * we[r].cols * dtype_size(we[r].dt);
            wbytes -= one * (m->cfg.n_experts - m->cfg.n_experts_used);
        }
    printf("model %s, %s weights, kv %s, kernels %s; micro-kernel peak %.1f GFLOPS per thread (in L1)\n",
           a->n_pos ? rh_model_path(m) : shape, dtype_name(rh_model_dtype(m)), dtype_name((rh_dtype)a->kv), RH_SIMD_NAME, peak);
    printf("%8s %8s %12s %8s %7s %9s %8s %10s %12s %9s %12s %9s\n", "prompt", "threads", "prefill t/s", "GFLOPS", "%peak", "GF/cpu-s",
           "vs 1st", "decode n", "decode t/s", "GB/s", "+observe t/s", "overhead");
    for (i = 0; i < n_p; i++) {
        rh_ctx *c = NULL;
        int P = (int)plens[i], k, *ids = (int *)malloc(sizeof(int) * (size_t)P), tok;
        float *lg = (float *)malloc(sizeof(float) * (size_t)cfg.vocab_size);
        int32_t *top1 = (int32_t *)malloc(sizeof(int32_t) * (size_t)cfg.n_layers * cfg.n_heads);
        double t0, tp, td, tdo, fl, cpu;
        uint64_t s = 42;
        rh_observe ob;
        if (!ids || !lg || !top1) { free(ids); free(lg); free(top1); rc = cli_fail(1, cmd, "out of memory"); break; }
        for (k = 0; k < P; k++) ids[k] = (int)(rng_next(&s) % (uint64_t)(cfg.vocab_size < 256 ? cfg.vocab_size : 256));
        /* a policy's windows refuse the rewind before the observed steps: they then follow on */
        if ((rc = cli_ctx(cmd, a, m, P + (int)n_dec * (kv_pol ? 2 : 1), &c)) != 0) { free(ids); free(lg); free(top1); break; }
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
        if (i == 0) first_rate = P / tp;
        printf("%8d %8d %12.1f %8.1f %6.1f%% %9.1f %7.1f%% %10ld %12.2f %9.1f %12.2f %8.1f%%\n", P, c->n_threads, P / tp, fl / tp * 1e-9,
               100.0 * fl / tp * 1e-9 / (peak * c->n_threads), cpu > 0 ? fl / cpu * 1e-9 : 0.0, 100.0 * (P / tp) / first_rate, n_dec, n_dec / td,
               wbytes * n_dec / td * 1e-9, n_dec / tdo, 100.0 * (tdo - td) / td);
        fflush(stdout);
        rh_ctx_free(c);
        free(ids); free(lg); free(top1);
    }
    free(kv_keep);
    free(kv_label);
    rh_model_close(m);
    return rc;
}

/* ---- detect and niah: the flags into an rh_experiment, the run, the printed tables ---- */

/* Backslash escapes of a --template value: \n \t \\ (a shell passes no newline easily). */
static char *cli_unescape(const char *s) {
    rhm_buf b = {0};
    for (; *s; s++) {
        if (*s == '\\' && s[1] == 'n') {
            rhm_buf_put(&b, "\n", 1);
            s++;
        } else if (*s == '\\' && s[1] == 't') {
            rhm_buf_put(&b, "\t", 1);
            s++;
        } else if (*s == '\\' && s[1] == '\\') {
            rhm_buf_put(&b, "\\", 1);
            s++;
        } else {
            rhm_buf_put(&b, s, 1);
        }
    }
    if (!b.p) rhm_buf_put(&b, "", 0);
    return b.oom ? (rhm_buf_free(&b), (char *)NULL) : b.p;
}

/* One way of choosing heads from three flags (flag[0] top K of a score file, flag[1] K random
 * heads of one, flag[2] a list): at most one of them, --scores with the first two; into *pick
 * (with --scores and --seed as given).  0, or -1 with the message. */
static int cli_pick(const char *const flag[3], int top, int random, const char *heads, const cli_args *a,
                    rh_head_pick *pick, char *msg, size_t cap) {
    memset(pick, 0, sizeof *pick);
    pick->seed = a->seed;
    pick->scores = a->scores;
    if ((top > 0) + (random > 0) + (heads != NULL) > 1)
        return snprintf(msg, cap, "%s, %s and %s exclude one another", flag[0], flag[1], flag[2]), -1;
    if ((top || random) && !a->scores) return snprintf(msg, cap, "%s needs --scores FILE", top ? flag[0] : flag[1]), -1;
    if (heads) {
        pick->kind = RH_PICK_HEADS;
        pick->heads = heads;
    } else if (top) {
        pick->kind = RH_PICK_TOP;
        pick->k = top;
    } else if (random) {
        pick->kind = RH_PICK_RANDOM;
        pick->k = random;
    }
    return 0;
}

/* The mask flags, checked together (niah, generate, logits, eval): at most one way of choosing
 * heads, --scores with the two that read one, --seed with the one that draws (or, in eval, with
 * --fewshot). */
static int cli_mask_flags(const cli_args *a, rh_head_pick *pick, char *msg, size_t cap) {
    static const char *const flag[3] = {"--mask-top", "--mask-random", "--mask-heads"};
    if (cli_pick(flag, a->mask_top, a->mask_random, a->mask_heads, a, pick, msg, cap)) return -1;
    if (a->scores && !a->mask_top && !a->mask_random && !a->kv_keep_top && !a->kv_keep_random && !a->kv_sweep)
        return snprintf(msg, cap, "--scores is used only with --mask-top, --mask-random, --kv-keep-top or --kv-keep-random"), -1;
    if (a->seed_given && !a->mask_random && !a->kv_keep_random && !a->kv_sweep && !a->fewshot)
        return snprintf(msg, cap, "--seed is used only with --mask-random or --kv-keep-random"), -1; /* eval checks its own */
    if (pick->kind == RH_PICK_NONE && (a->mask_prefill || a->mask_mode != RH_MASK_UNIFORM))
        return snprintf(msg, cap, "--mask-mode and --mask-prefill need a mask (--mask-top, --mask-random or --mask-heads)"), -1;
    return 0;
}

/* The KV policy flags, checked together as the mask flags are: at most one way of choosing the
 * heads kept full, --scores with the two that read one, --kv-sinks with a policy. */
static int cli_kv_flags(const cli_args *a, rh_head_pick *pick, char *msg, size_t cap) {
    static const char *const flag[3] = {"--kv-keep-top", "--kv-keep-random", "--kv-keep-heads"};
    if (cli_pick(flag, a->kv_keep_top, a->kv_keep_random, a->kv_keep_heads, a, pick, msg, cap)) return -1;
    if (a->have_kv_sinks && pick->kind == RH_PICK_NONE && !a->have_kv_window && !a->kv_sweep)
        return snprintf(msg, cap, "--kv-sinks needs a KV policy (--kv-window, --kv-keep-top, --kv-keep-random or --kv-keep-heads)"), -1;
    return 0;
}

/* generate, logits, info: the policy's kept heads resolved on the model into a->kv_keep_flags
 * (*keep: free it) and the policy's label; an exit code. */
static int cli_kv_resolve(const char *cmd, cli_args *a, const rh_model *m, unsigned char **keep, char **label) {
    rh_head_pick pick;
    rh_ctx_params p;
    char msg[512];
    const rh_config *c = rh_model_config(m);
    *keep = NULL;
    *label = NULL;
    if (cli_kv_flags(a, &pick, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
    cli_ctx_params(a, &p);
    if (rhm_kv_setup(&pick, &p, c->n_layers, c->n_heads, keep, label, msg, sizeof msg))
        return cli_fail(2, cmd, "%s", msg);
    a->kv_keep_flags = *keep;
    return 0;
}

typedef struct {
    const char *cmd;
    int tty, line_open; /* a progress line is on stderr without its newline */
} cli_progress_state;

static void cli_progress(void *user, const rh_progress *p) {
    cli_progress_state *st = (cli_progress_state *)user;
    char se[32], sr[32];
    long v;
    int i;
    double secs[2];
    char *outs[2];
    secs[0] = p->elapsed_s;
    secs[1] = p->eta_s;
    outs[0] = se;
    outs[1] = sr;
    for (i = 0; i < 2; i++) {
        v = (long)(secs[i] + 0.5);
        if (v >= 3600) snprintf(outs[i], 32, "%ldh%02ldm%02lds", v / 3600, v / 60 % 60, v % 60);
        else if (v >= 60) snprintf(outs[i], 32, "%ldm%02lds", v / 60, v % 60);
        else snprintf(outs[i], 32, "%lds", v);
    }
    fprintf(stderr, "%s%s %d/%d (%d%%) elapsed %s ETA %s | len %d depth %g: %.0f \"%.30s\"%s", st->tty ? "\r\033[K" : "",
            st->cmd, p->done, p->total, (int)(100.0 * p->done / p->total), se, sr, p->length, p->depth, p->score, p->response,
            st->tty ? "" : "\n");
    st->line_open = st->tty;
}

static void cli_note(void *user, const char *line) {
    cli_progress_state *st = (cli_progress_state *)user;
    fprintf(stderr, "%sretrieval_heads: %s: %s\n", st->line_open ? "\n" : "", st->cmd, line);
    st->line_open = 0;
}

/* The KV policy and the cache it gives, one line (nothing without a policy). */
static void cli_print_kv(const rh_ctx_params *p, const char *label, const rh_ctx_sizes *z) {
    if (p->kv_window <= 0 || !label) return;
    printf("kv cache: %s; %d of %d KV heads full; %.0f bytes, %.1f%% of the full cache's %.0f (%d tokens)\n", label,
           z->kv_heads_full, z->kv_heads, z->kv_bytes, z->kv_full_bytes > 0 ? 100.0 * z->kv_bytes / z->kv_full_bytes : 0.0,
           z->kv_full_bytes, z->n_ctx);
}

static void cli_print_detect(const rh_experiment *x, const rh_experiment_result *res, int top) {
    const rh_scores *s = &res->scores;
    int n_lh = s->n_layers * s->n_heads, n_ret = 0, n_r = 0, shown, i;
    rhm_rank *r = NULL;
    if (rhm_rank_heads(s, &r, &n_r)) return;
    for (i = 0; i < n_lh && (res->n_kept || res->appended); i++) n_ret += rh_scores_mean(s, i) > 0.1;
    printf("detect: %s, %d layers x %d heads; %d tests: %d kept (answer retrieved, ROUGE-1 recall > 50%%), "
           "%d not kept, of them %d with no answer span located%s\n",
           x->model, s->n_layers, s->n_heads, res->n_kept + res->n_not_kept, res->n_kept, res->n_not_kept, res->n_no_span,
           res->appended ? "; appended to the earlier lists" : "");
    printf("%-6s %-8s %-10s %s\n", "rank", "head", "mean", "tests fired");
    shown = n_r < top ? n_r : top;
    for (i = 0; i < shown; i++) {
        int idx = r[i].idx, j, fired = 0;
        char hn[24];
        for (j = 0; j < s->n_tests[idx]; j++) fired += s->scores[idx][j] != 0;
        snprintf(hn, sizeof hn, "%d-%d", idx / s->n_heads, idx % s->n_heads);
        printf("%-6d %-8s %-10.4f %d/%d\n", i + 1, hn, r[i].mean, fired, s->n_tests[idx]);
    }
    printf("share of heads with mean > 0.1: %d/%d (%.1f%%)\n", n_ret, n_lh, 100.0 * n_ret / n_lh);
    cli_print_kv(&x->ctx, res->kv_label, &res->cost.ctx);
    printf("wrote %s, %s, %s, %s\n", res->paths[0], res->paths[1], res->paths[2], res->paths[3]);
    free(r);
}

/* The labels of the responses (rh_label), one line. */
static void cli_print_labels(const int *n) {
    int k;
    printf("labels:");
    for (k = 0; k < RH_N_LABELS; k++) printf("%s %s %d", k ? "," : "", rh_label_names[k], n[k]);
    printf("\n");
}

static void cli_print_niah(const rh_experiment *x, const rh_experiment_result *res) {
    int li, di;
    printf("niah: %s; mask: %s (%s, %s)\n", x->model, res->mask_label, rh_mask_mode_names[x->mask_mode],
           x->mask.kind != RH_PICK_NONE ? (x->mask_prefill ? "masked in prefill and decode" : "masked at decode steps only")
                                        : "unmasked");
    printf("%-12s", "depth\\length");
    for (li = 0; li < res->n_lengths; li++) printf(" %7d", res->lengths[li]);
    printf("\n");
    for (di = 0; di < res->n_depths; di++) {
        printf("%-12g", res->depths[di]);
        for (li = 0; li < res->n_lengths; li++) {
            int k = di * res->n_lengths + li;
            if (res->cell_n[k]) printf(" %7.1f", res->cell_mean[k]);
            else printf(" %7s", "-");
        }
        printf("\n");
    }
    cli_print_labels(res->n_labels);
    cli_print_kv(&x->ctx, res->kv_label, &res->cost.ctx);
    printf("wrote %s, %s, %s, %s\n", res->paths[0], res->paths[1], res->paths[2], res->paths[3]);
    printf("mean score: %.1f over %d tests\n", res->mean, res->n_scored);
}

static double cli_pct(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

/* A duration: 42 s, 3m05s, 2h07m. */
static void cli_dur(char *out, size_t cap, double s) {
    long v = (long)(s + 0.5);
    if (s < 10) snprintf(out, cap, "%.1f s", s);
    else if (v < 60) snprintf(out, cap, "%ld s", v);
    else if (v < 3600) snprintf(out, cap, "%ldm%02lds", v / 60, v % 60);
    else snprintf(out, cap, "%ldh%02ldm", v / 3600, v / 60 % 60);
}

/* Bytes in MiB or GiB. */
static void cli_bytes(char *out, size_t cap, double b) {
    if (b >= 1024.0 * 1024 * 1024) snprintf(out, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else snprintf(out, cap, "%.1f MiB", b / (1024.0 * 1024));
}

/* --dry-run: what the run costs. */
static void cli_print_cost(const char *cmd, const rh_experiment *x, const rh_experiment_result *res) {
    const rh_experiment_cost *c = &res->cost;
    const rh_cost_rates *r = &c->rates;
    char a[32], b[32], d[32], e[32], f[32], g[32];
    printf("%s --dry-run: %s; %d tests to run (%d lengths x %d depths x needles%s%s), %d finished before\n", cmd, x->model,
           c->n_tests, res->n_lengths, res->n_depths, x->shard_n > 1 ? ", this shard" : "", "", res->n_resumed);
    if (!c->n_tests) return;
    printf("  prefill    %.0f prompt tokens whole, %.0f with prefix reuse (%.1f%% kept in the KV cache); longest prompt %d\n",
           c->whole.prefill_tokens, c->reuse.prefill_tokens,
           cli_pct(c->whole.prefill_tokens - c->reuse.prefill_tokens, c->whole.prefill_tokens), c->longest_prompt);
    printf("             %.3g TFLOP whole, %.3g with reuse\n", c->whole.prefill_flops * 1e-12, c->reuse.prefill_flops * 1e-12);
    printf("  decode     %.0f steps expected (a needle's tokens and a newline per test), %.0f at most (--max-new %d)\n",
           c->reuse.decode_tokens, c->decode_tokens_max, x->max_new);
    cli_bytes(a, sizeof a, c->ctx.kv_bytes);
    cli_bytes(b, sizeof b, c->ctx.scratch_bytes);
    cli_bytes(d, sizeof d, c->ctx.weight_bytes);
    cli_bytes(e, sizeof e, c->plan_bytes);
    cli_bytes(f, sizeof f, c->peak_bytes);
    cli_bytes(g, sizeof g, c->ctx.available_bytes);
    printf("  memory     %s peak: KV cache %s (%d tokens, %s) + scratch %s (%d threads) + weights %s; the plan %s\n", f, a,
           c->ctx.n_ctx, rh_dtype_names[x->ctx.kv_dtype], b, c->ctx.n_threads, d, e);
    if (c->ctx.available_bytes > 0 && c->peak_bytes > c->ctx.available_bytes)
        printf("             more than the %s this machine has: the run would stop before its first test\n", g);
    else if (c->ctx.available_bytes > 0)
        printf("             of %s on this machine\n", g);
    printf("  this machine  prefill %.0f GFLOPS + %.1f ms per call of up to %d tokens, decode %.1f GB/s (weights and KV"
           " cache); measured in %.1f s on %d threads (prefills of 16 and %d tokens)\n",
           r->prefill_flop_s > 0 ? 1e-9 / r->prefill_flop_s : 0.0, r->prefill_chunk_s * 1e3, r->chunk,
           r->decode_byte_s > 0 ? 1e-9 / r->decode_byte_s : 0.0, r->measure_s, r->n_threads, r->prefill_tokens);
    cli_dur(a, sizeof a, c->reuse.seconds);
    cli_dur(b, sizeof b, c->whole.seconds);
    cli_dur(d, sizeof d, c->seconds_max);
    printf("  time       %.1f s (%s) with prefix reuse, %.1f s (%s) whole: %.2fx; %.1f s (%s) if every test decodes"
           " --max-new; building the prompts %.2f s of each\n", c->reuse.seconds, a, c->whole.seconds, b,
           c->reuse.seconds > 0 ? c->whole.seconds / c->reuse.seconds : 0.0, c->seconds_max, d, c->build_s);
}

/* eval --dry-run: what the run costs. */
static void cli_print_eval_cost(const rh_eval_task *x, const rh_eval_result *res) {
    const rh_eval_cost *c = &res->cost;
    const rh_cost_rates *r = &c->rates;
    char a[32], b[32], d[32], g[32];
    printf("eval --dry-run: %s; %d items to run (%d generate, %d choice, %d perplexity%s), %d finished before; mask %s\n",
           x->model, c->n_items, c->n_generate, c->n_choice, c->n_perplexity, x->shard_n > 1 ? ", this shard" : "",
           res->n_resumed, res->mask_label ? res->mask_label : "none");
    if (!c->n_items) return;
    printf("  prefill    %.0f tokens whole, %.0f keeping what the cache holds from the item before (%.1f%% kept);"
           " largest context %d tokens\n", c->whole.prefill_tokens, c->reuse.prefill_tokens,
           cli_pct(c->whole.prefill_tokens - c->reuse.prefill_tokens, c->whole.prefill_tokens), c->longest);
    printf("             %.3g TFLOP whole, %.3g with reuse (scored rows' output head included)\n",
           c->whole.prefill_flops * 1e-12, c->reuse.prefill_flops * 1e-12);
    printf("  decode     %.0f steps at most (--max-new %d per generate item; a stop string or EOS ends one sooner)\n",
           c->reuse.decode_tokens, x->max_new);
    cli_bytes(a, sizeof a, c->ctx.kv_bytes);
    cli_bytes(b, sizeof b, c->ctx.scratch_bytes);
    cli_bytes(d, sizeof d, c->ctx.weight_bytes);
    cli_bytes(g, sizeof g, c->peak_bytes);
    printf("  memory     %s peak: KV cache %s (%d tokens, %s) + scratch %s (%d threads) + weights %s\n", g, a, c->ctx.n_ctx,
           rh_dtype_names[x->ctx.kv_dtype], b, c->ctx.n_threads, d);
    cli_bytes(a, sizeof a, c->ctx.available_bytes);
    if (c->ctx.available_bytes > 0 && c->peak_bytes > c->ctx.available_bytes)
        printf("             more than the %s this machine has: the run would stop before its first item\n", a);
    else if (c->ctx.available_bytes > 0)
        printf("             of %s on this machine\n", a);
    printf("  this machine  prefill %.0f GFLOPS + %.1f ms per call of up to %d tokens, decode %.1f GB/s (weights and KV"
           " cache); measured in %.1f s on %d threads (prefills of 16 and %d tokens)\n",
           r->prefill_flop_s > 0 ? 1e-9 / r->prefill_flop_s : 0.0, r->prefill_chunk_s * 1e3, r->chunk,
           r->decode_byte_s > 0 ? 1e-9 / r->decode_byte_s : 0.0, r->measure_s, r->n_threads, r->prefill_tokens);
    cli_dur(a, sizeof a, c->reuse.seconds);
    cli_dur(b, sizeof b, c->whole.seconds);
    printf("  time       at most %.1f s (%s) with reuse, %.1f s (%s) whole: %.2fx\n", c->reuse.seconds, a, c->whole.seconds,
           b, c->reuse.seconds > 0 ? c->whole.seconds / c->reuse.seconds : 0.0);
}

/* niah --kv-sweep: the grid with the full cache, then at each window W with the three policies
 * (the --kv-keep-top K heads' KV heads full; K random heads' (as --kv-keep-random draws them);
 * every KV head windowed), each run's outputs at BASE.kv-POLICY-wW; then BASE.kv.csv and
 * BASE.kv.svg: the mean score against the KV memory (percent of the full cache). */
static int cli_kv_sweep(const char *cmd, const cli_args *a, const rh_experiment *x0, const double *wv, int n_w) {
    static const char *const pol_name[3] = {"top", "random", "windowed"};
    const char *base = x0->out ? x0->out : "niah";
    int n_runs = 1 + 3 * n_w, r, code = 0;
    double *kx = (double *)malloc(sizeof(double) * 3 * (size_t)n_w), *ky = (double *)malloc(sizeof(double) * 3 * (size_t)n_w);
    double full_mean = NAN, full_bytes = 0;
    rhm_buf csv = {0}, svg = {0}, path = {0}, title = {0};
    char msg[1024], names[3][96], *np[3];
    if (!kx || !ky) {
        free(kx);
        free(ky);
        return cli_fail(1, cmd, "out of memory");
    }
    rhm_buf_puts(&csv, "policy,window,sinks,kept,kv_heads_full,kv_heads,kv_cache_bytes,kv_cache_full_bytes,kv_percent,mean_score,tests\r\n");
    for (r = 0; r < n_runs && !code; r++) {
        rh_experiment x = *x0;
        rh_experiment_result res;
        int pol = r == 0 ? -1 : (r - 1) % 3, wi = r == 0 ? -1 : (r - 1) / 3, rc;
        char out[4200];
        const rh_ctx_sizes *z;
        memset(&x.kv_keep, 0, sizeof x.kv_keep);
        if (r == 0) {
            x.ctx.kv_window = 0;
            x.ctx.kv_sinks = 0;
            snprintf(out, sizeof out, "%s.kv-full", base);
        } else {
            x.ctx.kv_window = (int)wv[wi];
            x.ctx.kv_sinks = a->have_kv_sinks ? a->kv_sinks : 4;
            if (pol < 2) {
                x.kv_keep.kind = pol == 0 ? RH_PICK_TOP : RH_PICK_RANDOM;
                x.kv_keep.k = a->kv_keep_top;
                x.kv_keep.scores = a->scores;
                x.kv_keep.seed = a->seed;
            }
            snprintf(out, sizeof out, "%s.kv-%s-w%d", base, pol_name[pol], x.ctx.kv_window);
        }
        x.ctx.kv_keep = NULL;
        x.out = out;
        msg[0] = 0;
        rc = rh_experiment_run(&x, &res, msg, sizeof msg);
        if (rc) {
            code = cli_fail(res.running || rc == RH_ENOMEM ? 1 : 2, cmd, "%s", msg[0] ? msg : "out of memory");
            break;
        }
        z = &res.cost.ctx;
        printf("kv-sweep: %-8s window %-7s mean score %5.1f over %d tests; KV cache %.0f bytes, %.1f%% of the full cache (%s)\n",
               r == 0 ? "full" : pol_name[pol], r == 0 ? "-" : (snprintf(msg, sizeof msg, "%d", x.ctx.kv_window), msg), res.mean,
               res.n_scored, z->kv_bytes, z->kv_full_bytes > 0 ? 100.0 * z->kv_bytes / z->kv_full_bytes : 0.0, res.kv_label);
        rhm_buf_printf(&csv, "%s,%d,%d,", r == 0 ? "full" : pol_name[pol], x.ctx.kv_window, x.ctx.kv_sinks);
        rhm_csv_field(&csv, res.kv_label, strlen(res.kv_label));
        rhm_buf_printf(&csv, ",%d,%d,%.0f,%.0f,", z->kv_heads_full, z->kv_heads, z->kv_bytes, z->kv_full_bytes);
        rhm_buf_double(&csv, z->kv_full_bytes > 0 ? 100.0 * z->kv_bytes / z->kv_full_bytes : 0.0);
        rhm_buf_puts(&csv, ",");
        rhm_buf_double(&csv, res.mean);
        rhm_buf_printf(&csv, ",%d\r\n", res.n_scored);
        fflush(stdout);
        if (r == 0) {
            full_mean = res.mean;
            full_bytes = z->kv_bytes;
        } else {
            kx[pol * n_w + wi] = z->kv_full_bytes > 0 ? 100.0 * z->kv_bytes / z->kv_full_bytes : 0.0;
            ky[pol * n_w + wi] = res.mean;
        }
        rh_experiment_result_free(&res);
    }
    if (!code) {
        snprintf(names[0], sizeof names[0], "top-%d retrieval heads full", a->kv_keep_top);
        snprintf(names[1], sizeof names[1], "%d random heads full", a->kv_keep_top);
        snprintf(names[2], sizeof names[2], "every head windowed");
        np[0] = names[0];
        np[1] = names[1];
        np[2] = names[2];
        rhm_buf_printf(&title, "NIAH, %s: mean score against KV cache memory (sinks %d; windows", x0->model,
                       a->have_kv_sinks ? a->kv_sinks : 4);
        for (r = 0; r < n_w; r++) rhm_buf_printf(&title, "%s%.0f", r ? ", " : " ", wv[r]);
        rhm_buf_puts(&title, ")");
        rhm_svg_lines(&svg, title.p ? title.p : "", "KV cache memory, % of the full cache", "NIAH mean score", 3,
                      (const char *const *)np, kx, ky, n_w, full_mean, "full cache (100%)", NULL);
        if (csv.oom || svg.oom || title.oom) code = cli_fail(1, cmd, "out of memory");
        rhm_buf_printf(&path, "%s.kv.csv", base);
        if (!code && rhm_write_atomic(path.p, csv.p, csv.n, msg, sizeof msg)) code = cli_fail(1, cmd, "%s", msg);
        path.n = 0;
        rhm_buf_printf(&path, "%s.kv.svg", base);
        if (!code && rhm_write_atomic(path.p, svg.p, svg.n, msg, sizeof msg)) code = cli_fail(1, cmd, "%s", msg);
        if (!code) printf("wrote %s.kv.csv, %s.kv.svg (full cache: %.0f bytes, mean score %.1f)\n", base, base, full_bytes, full_mean);
    }
    rhm_buf_free(&csv);
    rhm_buf_free(&svg);
    rhm_buf_free(&path);
    rhm_buf_free(&title);
    free(kx);
    free(ky);
    return code;
}

static int cmd_experiment(const char *cmd, cli_args *a, int argc, char **argv) {
    rh_experiment x;
    rh_experiment_result res;
    cli_progress_state st;
    double *lv = NULL, *dv = NULL;
    int *lengths = NULL, n_len = 0, n_dep = 0, i, rc, code = 0;
    char msg[1024], *tmpl = NULL, model_buf[4200], hay_buf[4200], nd_buf[4200];
    const int detect = !strcmp(cmd, "detect");
    rh_model *shape_model = NULL;
    rh_config shape_cfg;
    char shape_name[96];
    double *sweep_w = NULL;
    int n_sweep = 0;
    rh_experiment_default(&x, detect ? RH_DETECT : RH_NIAH);
    msg[0] = 0;
    if (!detect && cli_mask_flags(a, &x.mask, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
    if (cli_kv_flags(a, &x.kv_keep, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
    if (detect && a->scores && !a->kv_keep_top && !a->kv_keep_random)
        return cli_fail(2, cmd, "--scores is used only with --kv-keep-top or --kv-keep-random");
    if (detect && a->seed_given && !a->kv_keep_random) return cli_fail(2, cmd, "--seed is used only with --kv-keep-random");
    if (a->kv_sweep && (!a->kv_keep_top || a->kv_keep_random || a->kv_keep_heads || a->have_kv_window || a->dry_run))
        return cli_fail(2, cmd, "--kv-sweep: needs --kv-keep-top K --scores FILE (K: the heads kept full), and takes no "
                                "--kv-keep-random, --kv-keep-heads, --kv-window or --dry-run (it runs each)");
    if (a->shape && a->n_pos) return cli_fail(2, cmd, "--shape: give a MODEL or a --shape, not both");
    if (a->have_dtype && !a->shape) return cli_fail(2, cmd, "--dtype: applies to --shape models only (a file keeps its dtype)");
    if (a->shape && !bench_shape(a->shape, &shape_cfg))
        return cli_fail(2, cmd, "--shape: '%s' is not " BENCH_SHAPES, a->shape);
    if (a->lengths) {
        if (rhm_parse_grid("--lengths", a->lengths, 1, 100000000, 1, 0, &lv, &n_len, msg, sizeof msg))
            return cli_fail(2, cmd, "%s", msg[0] ? msg : "out of memory");
        lengths = (int *)malloc((size_t)n_len * sizeof *lengths);
        if (!lengths) { free(lv); return cli_fail(1, cmd, "out of memory"); }
        for (i = 0; i < n_len; i++) lengths[i] = (int)lv[i];
        free(lv);
    }
    if (rhm_parse_grid("--depths", a->depths ? a->depths : a->compat == 1 ? "0:100:10" : "0:100:5", 0, 100, 0,
                       a->spacing == RH_DEPTHS_SIGMOID, &dv, &n_dep, msg, sizeof msg)) {
        free(lengths);
        return cli_fail(2, cmd, "%s", msg[0] ? msg : "out of memory");
    }
    if (a->template_arg && !(tmpl = cli_unescape(a->template_arg))) {
        free(lengths);
        free(dv);
        return cli_fail(1, cmd, "out of memory");
    }
    {
        char tried[8600];
        x.model = cli_model_path(a->n_pos ? a->pos[0] : NULL, model_buf, sizeof model_buf, tried, sizeof tried);
        if (!x.model) x.model = RH_DEFAULT_MODEL; /* opening it names the problem */
        x.haystack = a->have_haystack ? a->haystack
                                      : cli_find_default(x.model, "haystack", "weights/haystack", hay_buf, sizeof hay_buf, tried,
                                                         sizeof tried);
        if (!x.haystack) code = cli_fail(2, cmd, "--haystack: not given, and there is no default haystack (looked for %s)", tried);
        x.needles = a->have_needles ? a->needles
                                    : cli_find_default(x.model, "needles.jsonl", "weights/needles.jsonl", nd_buf, sizeof nd_buf,
                                                       tried, sizeof tried);
        if (!x.needles && !code) code = cli_fail(2, cmd, "--needles: not given, and there is no default needles file (looked for %s)", tried);
        if (code) {
            free(lengths);
            free(dv);
            free(tmpl);
            return code;
        }
    }
    if (a->shape) {
        /* the random weights (seed 1) stand for a model of the shape: the same bytes everywhere */
        if (rh_model_random(&shape_cfg, (rh_dtype)a->dtype, 1, &shape_model, msg, sizeof msg) != RH_OK) {
            free(lengths);
            free(dv);
            free(tmpl);
            return cli_fail(1, cmd, "--shape: %s", msg);
        }
        snprintf(shape_name, sizeof shape_name, "random %s %s", a->shape, rh_dtype_names[a->dtype]);
        x.model = shape_name;
        x.model_handle = shape_model;
    }
    x.n_needles = a->n_needles;
    x.needle_first = a->needle_first;
    x.needle_end = a->needle_end;
    x.lengths = lengths;
    x.n_lengths = n_len;
    x.depths = dv;
    x.n_depths = n_dep;
    x.depth_spacing = (rh_depth_spacing)a->spacing;
    x.buffer = a->buffer;
    x.template_text = tmpl;
    x.chat = a->chat;
    x.span = (rh_span_rule)a->span;
    x.span_search = (rh_span_search)a->span_search;
    x.max_new = a->max_new;
    x.score_set = a->score_set;
    x.append = a->append;
    x.mask_mode = (rh_mask_mode)a->mask_mode;
    x.mask_prefill = a->mask_prefill;
    cli_ctx_params(a, &x.ctx);
    x.shard_i = a->shard_i;
    x.shard_n = a->shard_n;
    x.fresh = a->fresh;
    x.no_prefix_reuse = a->no_prefix_reuse;
    x.dry_run = a->dry_run;
    x.compat_original = a->compat == 1;
    if (a->out) x.out = a->out;
    x.argc = argc;
    x.argv = argv;
    st.cmd = cmd;
    st.tty = isatty(2);
    st.line_open = 0;
    x.user = &st;
    x.progress = a->quiet ? NULL : cli_progress;
    x.note = a->quiet ? NULL : cli_note;
    if (a->kv_sweep) {
        if (rhm_parse_grid("--kv-sweep", a->kv_sweep, 1, RHW_MAX_CTX, 1, 0, &sweep_w, &n_sweep, msg, sizeof msg))
            code = cli_fail(2, cmd, "%s", msg[0] ? msg : "out of memory");
        else code = cli_kv_sweep(cmd, a, &x, sweep_w, n_sweep);
        if (st.line_open) fprintf(stderr, "\n");
        free(sweep_w);
        free(lengths);
        free(dv);
        free(tmpl);
        if (shape_model) rh_model_close(shape_model);
        return code;
    }
    rc = rh_experiment_run(&x, &res, msg, sizeof msg);
    if (st.line_open) fprintf(stderr, "\n");
    if (rc) {
        code = res.running || rc == RH_ENOMEM ? 1 : 2;
        cli_fail(code, cmd, "%s", msg[0] ? msg : "out of memory");
    } else {
        code = 0;
        if (x.compat_original)
            printf("compat: original (its prompt construction and decoding; README, \"--compat original\")\n");
        if (res.n_resumed && !x.dry_run)
            printf("resumed: %d of %d tests were finished by an earlier run of this configuration (%s); %d run now\n",
                   res.n_resumed, res.n_tests, res.paths[detect ? 3 : 0], res.n_run);
        if (x.dry_run) cli_print_cost(cmd, &x, &res);
        else if (detect) cli_print_detect(&x, &res, a->top);
        else cli_print_niah(&x, &res);
        if (!x.dry_run && !a->quiet && res.n_run) {
            const rh_experiment_cost *c = &res.cost;
            fprintf(stderr, "retrieval_heads: %s: prefilled %.0f of %.0f prompt tokens (%.1f%% kept in the KV cache; "
                    "planned %.1f%%), decoded %.0f tokens; %d tests in %.2f s (prefill %.2f s, decode %.2f s)\n", cmd,
                    res.done.prefill_tokens, c->whole.prefill_tokens,
                    cli_pct(c->whole.prefill_tokens - res.done.prefill_tokens, c->whole.prefill_tokens),
                    cli_pct(c->whole.prefill_tokens - c->reuse.prefill_tokens, c->whole.prefill_tokens),
                    res.done.decode_tokens, res.n_run, res.done.seconds, res.prefill_s, res.decode_s);
        }
        rh_experiment_result_free(&res);
    }
    free(lengths);
    free(dv);
    free(tmpl);
    if (shape_model) rh_model_close(shape_model);
    return code;
}

/* ---- eval: the flags into an rh_eval_task, the run, the printed figures ---- */

static void cli_eval_progress(void *user, const rh_eval_progress *p) {
    cli_progress_state *st = (cli_progress_state *)user;
    char se[32], sr[32], resp[40];
    long v[2];
    int i, k;
    char *outs[2];
    v[0] = (long)(p->elapsed_s + 0.5);
    v[1] = (long)(p->eta_s + 0.5);
    outs[0] = se;
    outs[1] = sr;
    for (i = 0; i < 2; i++) {
        if (v[i] >= 3600) snprintf(outs[i], 32, "%ldh%02ldm%02lds", v[i] / 3600, v[i] / 60 % 60, v[i] % 60);
        else if (v[i] >= 60) snprintf(outs[i], 32, "%ldm%02lds", v[i] / 60, v[i] % 60);
        else snprintf(outs[i], 32, "%lds", v[i]);
    }
    for (k = 0; k < 30 && p->response[k]; k++) resp[k] = p->response[k] == '\n' ? ' ' : p->response[k];
    resp[k] = 0;
    fprintf(stderr, "%s%s %d/%d (%d%%) elapsed %s ETA %s | %.30s: %s %.*g%s%s%s%s", st->tty ? "\r\033[K" : "", st->cmd, p->done,
            p->total, (int)(100.0 * p->done / p->total), se, sr, p->id, p->kind == RH_TASK_PERPLEXITY ? "nll/token" : "score",
            p->kind == RH_TASK_PERPLEXITY ? 4 : 3, p->score, k ? " \"" : "", resp, k ? "\"" : "", st->tty ? "" : "\n");
    st->line_open = st->tty;
}

static void cli_print_eval(const rh_eval_task *x, const rh_eval_result *r) {
    if (x->rescore) printf("eval --rescore %s: %d records; mask: %s\n", x->rescore, r->n_items, r->mask_label);
    else
        printf("eval: %s, %d items (%d generate, %d choice, %d perplexity); mask: %s (%s, %s)\n", x->model, r->n_items,
               r->n_generate, r->n_choice, r->n_perplexity, r->mask_label, rh_mask_mode_names[x->mask_mode],
               rhe_mask_steps(x->mask.kind != RH_PICK_NONE, x->mask_prefill));
    if (r->n_number)
        printf("number (lm-evaluation-harness's GSM8K filters): strict-match %.1f, flexible-extract %.1f over %d items\n",
               100.0 * r->n_strict / r->n_number, 100.0 * r->n_flexible / r->n_number, r->n_number);
    if (r->n_choice)
        printf("choice: acc %.1f, acc_norm %.1f, acc_bytes %.1f over %d items\n", 100.0 * r->n_acc / r->n_choice,
               100.0 * r->n_acc_norm / r->n_choice, 100.0 * r->n_acc_bytes / r->n_choice, r->n_choice);
    if (r->n_generate) {
        cli_print_labels(r->n_labels);
        if (r->n_stop_unmet)
            printf("%d of %d generate items met no stop string and ran to --max-new %d\n", r->n_stop_unmet, r->n_generate,
                   x->max_new);
    }
    if (x->ctx.kv_window > 0 && r->kv_label)
        printf("kv cache: %s; %.0f bytes, %.1f%% of the full cache's %.0f\n", r->kv_label, r->kv_bytes,
               r->kv_full_bytes > 0 ? 100.0 * r->kv_bytes / r->kv_full_bytes : 0.0, r->kv_full_bytes);
    printf("wrote %s, %s, %s\n", r->paths[0], r->paths[1], r->paths[2]);
    if (r->n_perplexity) {
        long other = r->n_tokens - r->n_copy_tokens;
        printf("perplexity of the copyable tokens %.4g over %ld, of the others %.4g over %ld\n",
               r->n_copy_tokens ? exp(r->copy_nll / (double)r->n_copy_tokens) : NAN, r->n_copy_tokens,
               other ? exp((r->nll - r->copy_nll) / (double)other) : NAN, other);
        if (r->n_generate + r->n_choice == 0)
            printf("perplexity: %.4f over %ld tokens\n", r->perplexity, r->n_tokens);
        else
            printf("perplexity: %.4f over %ld tokens (NLL %.4f per token)\n", r->perplexity, r->n_tokens,
                   r->n_tokens ? r->nll / (double)r->n_tokens : 0.0);
    }
    if (r->n_generate + r->n_choice) printf("accuracy: %.1f over %d items\n", r->accuracy, r->n_generate + r->n_choice);
}

static int cmd_eval(const char *cmd, cli_args *a, int argc, char **argv) {
    rh_eval_task x;
    rh_eval_result res;
    cli_progress_state st;
    char msg[1024], *stops[16], model_buf[4200], tried[8600];
    int i, rc, code = 0;
    rh_eval_task_default(&x);
    if (a->seed_given && !a->mask_random && !a->kv_keep_random && !a->fewshot)
        return cli_fail(2, cmd, "--seed is used only with --mask-random, --kv-keep-random or --fewshot");
    if (cli_mask_flags(a, &x.mask, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
    /* the default model beside the program as for the other commands (--rescore needs none) */
    x.model = cli_model_path(a->n_pos ? a->pos[0] : NULL, model_buf, sizeof model_buf, tried, sizeof tried);
    if (!x.model) {
        if (!a->rescore) return cli_no_model(cmd, tried);
        x.model = RH_DEFAULT_MODEL;
    }
    if (cli_kv_flags(a, &x.kv_keep, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
    for (i = 0; i < a->stop.n; i++)
        if (!(stops[i] = cli_unescape(a->stop.v[i]))) {
            while (i-- > 0) free(stops[i]);
            return cli_fail(1, cmd, "out of memory");
        }
    x.task = a->task;
    x.perplexity = a->perplexity;
    x.rescore = a->rescore;
    x.format = (rh_task_format)a->task_format;
    x.fewshot = a->fewshot;
    x.shots = a->shots;
    x.seed = a->seed;
    if (a->have_max_new) x.max_new = a->max_new;
    x.stop = (const char *const *)stops;
    x.n_stop = a->stop.n;
    x.window = a->window;
    x.stride = a->stride;
    x.mask_mode = (rh_mask_mode)a->mask_mode;
    x.mask_prefill = a->mask_prefill;
    cli_ctx_params(a, &x.ctx);
    x.shard_i = a->shard_i;
    x.shard_n = a->shard_n;
    x.fresh = a->fresh;
    x.dry_run = a->dry_run;
    if (a->out) x.out = a->out;
    x.argc = argc;
    x.argv = argv;
    st.cmd = cmd;
    st.tty = isatty(2);
    st.line_open = 0;
    x.user = &st;
    x.progress = a->quiet ? NULL : cli_eval_progress;
    x.note = cli_note; /* notices even with --quiet: a stop string never met is worth knowing */
    rc = rh_eval_task_run(&x, &res, msg, sizeof msg);
    if (st.line_open) fprintf(stderr, "\n");
    if (rc) {
        code = res.running || rc == RH_ENOMEM ? 1 : 2;
        cli_fail(code, cmd, "%s", msg[0] ? msg : "out of memory");
    } else {
        if (x.dry_run) cli_print_eval_cost(&x, &res);
        else cli_print_eval(&x, &res);
        rh_eval_result_free(&res);
    }
    for (i = 0; i < a->stop.n; i++) free(stops[i]);
    return code;
}

/* ---- report and compare: the paper's properties from any score file ---- */

/* Can path be written?  Found out before anything is printed. */
static int cli_writable(const char *cmd, const char *flag, const char *path) {
    char tmp[4200];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) return cli_fail(2, cmd, "%s: cannot write %s: %s", flag, tmp, strerror(errno));
    fclose(f);
    remove(tmp);
    return 0;
}

static int cmd_report(const char *cmd, cli_args *a, int argc, char **argv) {
    const char *file;
    int top = a->top, i, n_r, present = 0, hist[4] = {0, 0, 0, 0}, always = 0, dynamic = 0, never = 0;
    int min_t = INT_MAX, max_t = 0, ret_always = 0, ret_dyn = 0, shown;
    rh_scores s;
    rhm_rank *r = NULL;
    char msg[512];
    (void)argc;
    (void)argv;
    if (a->n_pos < 1) return cli_fail(2, cmd, "expected a score file");
    if (a->svg && cli_writable(cmd, "--svg", a->svg)) return 2;
    if (a->out && cli_writable(cmd, "--out", a->out)) return 2;
    if (a->format && !a->out) return cli_fail(2, cmd, "--format: needs --out FILE");
    file = a->pos[0];
    if (rh_scores_read(file, &s, msg, sizeof msg)) return cli_fail(2, cmd, "%s", msg);
    if (a->kv_heads && s.n_heads % a->kv_heads) {
        int nh = s.n_heads;
        rh_scores_free(&s);
        return cli_fail(2, cmd, "--kv-heads: %d KV heads do not divide the %d heads per layer of %s", a->kv_heads, nh, file);
    }
    if (rhm_rank_heads(&s, &r, &n_r)) {
        rh_scores_free(&s);
        return cli_fail(1, cmd, "out of memory");
    }
    for (i = 0; i < s.n_layers * s.n_heads; i++) {
        double m;
        int j, nz = 0;
        if (!s.present[i]) continue;
        present++;
        m = rh_scores_mean(&s, i);
        hist[m == 0 ? 0 : m <= 0.1 ? 1 : m <= 0.5 ? 2 : 3]++;
        if (s.n_tests[i] < min_t) min_t = s.n_tests[i];
        if (s.n_tests[i] > max_t) max_t = s.n_tests[i];
        for (j = 0; j < s.n_tests[i]; j++) nz += s.scores[i][j] != 0;
        if (nz == 0) never++;
        else if (nz == s.n_tests[i]) {
            always++;
            if (m > 0.1) ret_always++;
        } else {
            dynamic++;
            if (m > 0.1) ret_dyn++;
        }
    }
    printf("report: %s: %d layers x %d heads, %d heads present, ", file, s.n_layers, s.n_heads, present);
    if (min_t == max_t) printf("%d tests per head\n", max_t);
    else printf("%d..%d tests per head\n", min_t, max_t);
    printf("retrieval heads (mean > 0.1): %d of %d (%.2f%%)\n", hist[2] + hist[3], present,
           present ? 100.0 * (hist[2] + hist[3]) / present : 0.0);
    printf("histogram of mean scores: 0: %d (%.1f%%) | (0, 0.1]: %d (%.1f%%) | (0.1, 0.5]: %d (%.1f%%) | > 0.5: %d (%.1f%%)\n",
           hist[0], present ? 100.0 * hist[0] / present : 0.0, hist[1], present ? 100.0 * hist[1] / present : 0.0,
           hist[2], present ? 100.0 * hist[2] / present : 0.0, hist[3], present ? 100.0 * hist[3] / present : 0.0);
    printf("activation: always active (non-zero in every test) %d, dynamic (in some tests) %d, never %d;"
           " of the retrieval heads %d always active, %d dynamic\n", always, dynamic, never, ret_always, ret_dyn);
    printf("%-6s %-8s %-10s %-12s %s\n", "rank", "head", "mean", "tests fired", "activation");
    shown = n_r < top ? n_r : top;
    for (i = 0; i < shown; i++) {
        int idx = r[i].idx, j, nz = 0;
        char hn[24];
        for (j = 0; j < s.n_tests[idx]; j++) nz += s.scores[idx][j] != 0;
        snprintf(hn, sizeof hn, "%d-%d", idx / s.n_heads, idx % s.n_heads);
        printf("%-6d %-8s %-10.4f %5d/%-6d %s\n", i + 1, hn, r[i].mean, nz, s.n_tests[idx],
               nz == 0 ? "never" : nz == s.n_tests[idx] ? "always" : "dynamic");
    }
    if (always) {
        int k = 0;
        printf("always-active heads:");
        for (i = 0; i < n_r && k < 40; i++) {
            int idx = r[i].idx, j, nz = 0;
            for (j = 0; j < s.n_tests[idx]; j++) nz += s.scores[idx][j] != 0;
            if (nz && nz == s.n_tests[idx]) {
                printf(" %d-%d", idx / s.n_heads, idx % s.n_heads);
                k++;
            }
        }
        printf("%s\n", always > 40 ? " ..." : "");
    }
    if (a->svg) {
        double *mean = (double *)malloc((size_t)(present > 0 ? present : 1) * sizeof *mean);
        rhm_buf svg = {0}, title = {0};
        int k = 0, rc;
        if (!mean) {
            free(r);
            rh_scores_free(&s);
            return cli_fail(1, cmd, "out of memory");
        }
        for (i = 0; i < s.n_layers * s.n_heads; i++)
            if (s.present[i]) mean[k++] = rh_scores_mean(&s, i);
        rhm_buf_printf(&title, "%s: %d of %d heads above 0.1 (%d layers x %d heads)", file, hist[2] + hist[3], present, s.n_layers,
                       s.n_heads);
        rhm_svg_histogram(&svg, title.p ? title.p : "", mean, k, NULL);
        rc = svg.oom ? RH_ENOMEM : rhm_write_atomic(a->svg, svg.p, svg.n, msg, sizeof msg);
        free(mean);
        rhm_buf_free(&svg);
        rhm_buf_free(&title);
        if (rc) {
            free(r);
            rh_scores_free(&s);
            return cli_fail(rc == RH_ENOMEM ? 1 : 2, cmd, "%s", rc == RH_ENOMEM ? "out of memory" : msg);
        }
        printf("wrote %s\n", a->svg);
    }
    if (a->kv_heads) {
        /* KV head j of a layer serves query heads j*g .. j*g + g - 1 (repeat_kv) */
        int g = s.n_heads / a->kv_heads, n_kv = s.n_layers * a->kv_heads, k;
        rhm_rank *kr = (rhm_rank *)malloc((size_t)n_kv * sizeof *kr);
        double *sum = (double *)calloc((size_t)n_kv, sizeof *sum);
        if (!kr || !sum) {
            free(kr);
            free(sum);
            free(r);
            rh_scores_free(&s);
            return cli_fail(1, cmd, "out of memory");
        }
        for (k = 0; k < n_kv; k++) {
            int l = k / a->kv_heads, j = k % a->kv_heads, q;
            kr[k].idx = k;
            kr[k].mean = 0;
            for (q = j * g; q < (j + 1) * g; q++) {
                double m = rh_scores_mean(&s, l * s.n_heads + q);
                if (m > kr[k].mean) kr[k].mean = m;
                sum[k] += m;
            }
        }
        qsort(kr, (size_t)n_kv, sizeof *kr, rhm_rank_cmp);
        printf("KV heads (%d per layer, %d query heads each), by the maximum over their query heads:\n", a->kv_heads, g);
        printf("%-6s %-8s %-10s %-10s %s\n", "rank", "kv head", "max", "sum", "query heads");
        for (k = 0; k < n_kv && k < top; k++) {
            int l = kr[k].idx / a->kv_heads, j = kr[k].idx % a->kv_heads;
            char hn[24];
            snprintf(hn, sizeof hn, "%d-%d", l, j);
            printf("%-6d %-8s %-10.4f %-10.4f %d-%d..%d-%d\n", k + 1, hn, kr[k].mean, sum[kr[k].idx], l, j * g, l, (j + 1) * g - 1);
        }
        free(kr);
        free(sum);
    }
    if (a->out) {
        int wrc = a->format == 1 ? rh_scores_write_qrhead(a->out, &s, msg, sizeof msg) : rh_scores_write(a->out, &s, msg, sizeof msg);
        if (wrc) {
            free(r);
            rh_scores_free(&s);
            return cli_fail(wrc == RH_ENOMEM ? 1 : 2, cmd, "%s", msg);
        }
        printf("wrote %s (%s form)\n", a->out, cli_format_names[a->format]);
    }
    free(r);
    rh_scores_free(&s);
    return 0;
}

static int cmd_compare(const char *cmd, cli_args *a, int argc, char **argv) {
    const char *files[2];
    int top = a->top, rc, i, k, n = 0, ov = 0, ret[2] = {0, 0}, both = 0, nr[2];
    rh_scores s[2];
    rhm_rank *r[2] = {NULL, NULL};
    char msg[512];
    (void)argc;
    (void)argv;
    if (a->n_pos < 2) return cli_fail(2, cmd, "expected two score files");
    if (a->svg && cli_writable(cmd, "--svg", a->svg)) return 2;
    files[0] = a->pos[0];
    files[1] = a->pos[1];
    for (k = 0; k < 2; k++) {
        if (rh_scores_read(files[k], &s[k], msg, sizeof msg)) {
            if (k) rh_scores_free(&s[0]);
            return cli_fail(2, cmd, "%s", msg);
        }
    }
    for (k = 0; k < 2; k++) {
        if (rhm_rank_heads(&s[k], &r[k], &nr[k])) {
            rc = cli_fail(1, cmd, "out of memory");
            goto out;
        }
        for (i = 0; i < nr[k]; i++) ret[k] += r[k][i].mean > 0.1;
    }
    printf("compare: A = %s (%d x %d), B = %s (%d x %d)\n", files[0], s[0].n_layers, s[0].n_heads, files[1],
           s[1].n_layers, s[1].n_heads);
    printf("retrieval heads (mean > 0.1): A %d of %d (%.2f%%), B %d of %d (%.2f%%)\n", ret[0], nr[0],
           nr[0] ? 100.0 * ret[0] / nr[0] : 0.0, ret[1], nr[1], nr[1] ? 100.0 * ret[1] / nr[1] : 0.0);
    if (s[0].n_layers != s[1].n_layers || s[0].n_heads != s[1].n_heads) {
        printf("the shapes differ: heads cannot be matched, so no overlap or rank correlation\n");
        rc = 0;
        goto out;
    }
    {
        int K = top, nh = s[0].n_layers * s[0].n_heads;
        double *av = (double *)malloc((size_t)nh * sizeof *av), *bv = (double *)malloc((size_t)nh * sizeof *bv), rho;
        if (!av || !bv) {
            free(av);
            free(bv);
            rc = cli_fail(1, cmd, "out of memory");
            goto out;
        }
        if (K > nr[0]) K = nr[0];
        if (K > nr[1]) K = nr[1];
        printf("top-%d heads in both:", K);
        for (i = 0; i < K; i++) {
            int j;
            for (j = 0; j < K; j++)
                if (r[0][i].idx == r[1][j].idx) {
                    ov++;
                    printf(" %d-%d", r[0][i].idx / s[0].n_heads, r[0][i].idx % s[0].n_heads);
                }
        }
        printf("\ntop-%d overlap: %d/%d (%.1f%%)\n", K, ov, K, K ? 100.0 * ov / K : 0.0);
        for (i = 0; i < nh; i++) {
            if (!s[0].present[i] || !s[1].present[i]) continue;
            av[n] = rh_scores_mean(&s[0], i);
            bv[n] = rh_scores_mean(&s[1], i);
            if (av[n] > 0.1 && bv[n] > 0.1) both++;
            n++;
        }
        rho = rhm_spearman(av, bv, n);
        printf("retrieval heads in both: %d\n", both);
        if (isnan(rho)) printf("Spearman rank correlation over %d heads: undefined (constant scores)\n", n);
        else printf("Spearman rank correlation over %d heads: %.4f\n", n, rho);
        if (a->svg) {
            char **names = (char **)calloc((size_t)(n > 0 ? n : 1), sizeof *names);
            rhm_buf svg = {0}, title = {0};
            int j = 0, ok = names != NULL, wrc;
            for (i = 0; ok && i < nh; i++) {
                if (!s[0].present[i] || !s[1].present[i]) continue;
                if (!(names[j] = (char *)malloc(24))) ok = 0;
                else snprintf(names[j++], 24, "%d-%d", i / s[0].n_heads, i % s[0].n_heads);
            }
            if (ok) {
                if (isnan(rho)) rhm_buf_printf(&title, "mean retrieval score per head: %d heads", n);
                else rhm_buf_printf(&title, "mean retrieval score per head: %d heads, Spearman %.3f", n, rho);
                rhm_svg_scatter(&svg, title.p ? title.p : "", files[0], files[1], av, bv, names, n, 8, NULL);
            }
            wrc = !ok || svg.oom ? RH_ENOMEM : rhm_write_atomic(a->svg, svg.p, svg.n, msg, sizeof msg);
            for (i = 0; names && i < n; i++) free(names[i]);
            free(names);
            rhm_buf_free(&svg);
            rhm_buf_free(&title);
            if (wrc) {
                free(av);
                free(bv);
                rc = cli_fail(wrc == RH_ENOMEM ? 1 : 2, cmd, "%s", wrc == RH_ENOMEM ? "out of memory" : msg);
                goto out;
            }
            printf("wrote %s\n", a->svg);
        }
        free(av);
        free(bv);
    }
    rc = 0;
out:
    free(r[0]);
    free(r[1]);
    rh_scores_free(&s[0]);
    rh_scores_free(&s[1]);
    return rc;
}

/* ---- the program ---- */

static void usage(FILE *f) {
    int i;
    fprintf(f, "usage: retrieval_heads <command> [options]   (retrieval_heads %s, kernels %s)\n"
               "Retrieval heads (Wu et al., 2024) on Llama-family models, in one C file.\ncommands:\n",
            RH_VERSION, RH_SIMD_NAME);
    for (i = 0; i < CLI_N_COMMANDS; i++) fprintf(f, "  %-9s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "`retrieval_heads <command> --help` for a command's options.  MODEL defaults to " RH_DEFAULT_MODEL ".\n");
}

/* Said once on stderr when this CPU could run better kernels than the build has (a vendored
 * `cc -O2 retrieval_heads.c` builds the scalar ones); not when the scalar kernels were asked for
 * (-DRH_SIMD_SCALAR). */
static void cli_kernel_notice(const char *cmd) {
#if !defined(RH_SIMD_SCALAR) && (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    const char *better = NULL;
    __builtin_cpu_init();
#if !defined(RH_AVX512)
    if (__builtin_cpu_supports("avx512f")) better = "AVX-512";
#endif
#if !defined(RH_AVX512) && !defined(RH_AVX2)
    if (!better && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) better = "AVX2 and FMA";
#endif
    if (better)
        fprintf(stderr, "retrieval_heads: %s: note: this build has the %s kernels and this CPU has %s; build with -march=native "
                        "(`make`, or cc -O2 -march=native retrieval_heads.c -lm -lpthread) for faster runs\n",
                cmd, RH_SIMD_NAME, better);
#else
    (void)cmd;
#endif
}

int rh_cli(int argc, char **argv) {
    const cli_command *c;
    cli_args a;
    char msg[512];
    if (argc < 1 || !argv || !argv[0]) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[0], "--version")) {
        printf("retrieval_heads %s\n", RH_VERSION);
        return 0;
    }
    c = cli_find_command(argv[0]);
    if (!c) return cli_fail(2, argv[0], "unknown command (see retrieval_heads --help)");
    if (cli_parse(c, argc, argv, &a, msg, sizeof msg)) return cli_fail(2, c->name, "%s", msg);
    if (a.help) {
        cli_help(stdout, c);
        return 0;
    }
    if (c->bit & (C_RUNS | C_INFO)) cli_kernel_notice(c->name);
    return c->run(c->name, &a, argc, argv);
}

#ifndef RH_NO_MAIN
int main(int argc, char **argv) {
    rh_stdio_binary();
    return rh_cli(argc - 1, argv + 1);
}
#endif /* RH_NO_MAIN */
