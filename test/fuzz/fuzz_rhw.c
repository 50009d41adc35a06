/* The .rhw loader on arbitrary bytes; a file it accepts must also run one token. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rh_model *m = NULL;
    char err[512];
    if (rh_model_open_memory(data, size, "fuzz.rhw", &m, err, sizeof err) == RH_OK) {
        const rh_config *c = rh_model_config(m);
        rh_ctx_params p;
        rh_ctx *ctx = NULL;
        FUZZ_ASSERT(c->vocab_size > 0 && c->n_layers > 0);
        rh_ctx_params_default(&p);
        p.n_threads = 1;
        p.n_ctx = 4;
        /* Keep each run cheap: a loaded file this small has small shapes anyway. */
        if ((double)c->dim * c->hidden_dim * c->n_layers < 4e6 &&
            rh_ctx_new(m, &p, &ctx, err, sizeof err) == RH_OK) {
            int ids[2] = {0, c->vocab_size - 1};
            float *logits = (float *)malloc(sizeof(float) * (size_t)c->vocab_size);
            if (!logits) abort();
            FUZZ_ASSERT(rh_eval(ctx, ids, 2, logits, 0) == RH_OK);
            free(logits);
            rh_ctx_free(ctx);
        }
        rh_model_close(m);
    } else {
        FUZZ_ASSERT(err[0] != 0);
    }
    return 0;
}
