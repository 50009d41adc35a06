/* Tokenizers on arbitrary bytes.  The first byte picks a committed tokenizer section
 * (SentencePiece BPE with byte fallback and with <unk>, Llama-2 and Llama-3 and Qwen3 style from
 * tokenizer.json); the rest is the text.  Ids must be in range and decode must not fail.  With
 * first byte >= 0xF0 the rest is itself loaded as a tokenizer section (tok_load's parser). */
#include "fuzz_common.h"

static const char *const fuzz_secs[] = {"sp_bf", "sp_unk", "llama2", "llama3", "qwen3", "gpt2_aps"};
#define N_SECS ((int)(sizeof fuzz_secs / sizeof fuzz_secs[0]))
static rh_model *fuzz_models[N_SECS];

static rh_model *fuzz_model_for(const unsigned char *sec, size_t n) {
    rh_config c;
    rh_tokenizer *t = NULL;
    rh_model *m = NULL;
    char err[512];
    if (tok_load(&t, sec, n, 1 << 24, "fuzz", err, sizeof err) != RH_OK) return NULL;
    memset(&c, 0, sizeof c);
    c.dim = 8; c.hidden_dim = 8; c.n_layers = 1; c.n_heads = 1; c.n_kv_heads = 1; c.head_dim = 8;
    c.max_ctx = 16; c.rope_theta = 10000; c.norm_eps = 1e-5f; c.bos_id = 1; c.rope_factor = 1;
    c.vocab_size = t->n_tokens < 300 ? 300 : t->n_tokens;
    if (rh_model_random(&c, RH_F32, 1, &m, err, sizeof err) != RH_OK) { tok_free(t); return NULL; }
    tok_free(m->tok);
    m->tok = t;
    return m;
}

static void fuzz_init(void) {
    int i;
    for (i = 0; i < N_SECS; i++) {
        char path[256];
        FILE *f;
        long n;
        unsigned char *b;
        snprintf(path, sizeof path, "test/tok/%s.sec", fuzz_secs[i]);
        f = fopen(path, "rb");
        if (!f) { fprintf(stderr, "fuzz_tok: run from the repository root (%s)\n", path); abort(); }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        b = (unsigned char *)malloc((size_t)n);
        if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) abort();
        fclose(f);
        fuzz_models[i] = fuzz_model_for(b, (size_t)n);
        free(b);
        if (!fuzz_models[i]) { fprintf(stderr, "fuzz_tok: cannot load %s\n", path); abort(); }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    char err[512];
    const rh_model *m;
    int *ids = NULL, n = 0, i;
    if (!ready) { fuzz_init(); ready = 1; }
    if (size < 1) return 0;
    if (data[0] >= 0xF0) {
        rh_tokenizer *t = NULL;
        if (tok_load(&t, data + 1, size - 1, 1 << 20, "fuzz", err, sizeof err) == RH_OK) tok_free(t);
        else FUZZ_ASSERT(err[0] != 0);
        return 0;
    }
    m = fuzz_models[data[0] % N_SECS];
    if (rh_tokenize(m, (const char *)data + 1, size - 1, data[0] & 0x80 ? 1 : 0, &ids, &n, err,
                    sizeof err) == RH_OK) {
        char *text = NULL;
        size_t len = 0;
        rh_decoder d;
        char buf[4096];
        for (i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < rh_n_tokens(m));
        FUZZ_ASSERT(rh_detokenize(m, ids, n, RH_DETOK_STRIP_LEADING, &text, &len, err, sizeof err) == RH_OK);
        free(text);
        rh_decoder_init(&d, m, 0);
        for (i = 0; i < n; i++) FUZZ_ASSERT(rh_decoder_push(&d, ids[i], buf, sizeof buf) >= 0);
        FUZZ_ASSERT(rh_decoder_flush(&d, buf, sizeof buf) >= 0);
        free(ids);
    }
    return 0;
}
