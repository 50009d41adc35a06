/* The score-file JSON reader (published {"layer-head": [...]} form), the needles JSONL reader and
 * eval's task-file reader (both formats).  A score file that parses must survive a write/read
 * round trip with the same content; a task file that is refused says why. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    rh_scores s;
    rhm_needle *nd = NULL;
    int n = 0;
    if (rh_scores_parse((const char *)data, size, "fuzz.json", &s, err, sizeof err) == RH_OK) {
        rhm_buf b = {0};
        rh_scores t;
        int i, j;
        rhm_scores_format(&s, &b);
        FUZZ_ASSERT(b.p != NULL);
        FUZZ_ASSERT(rh_scores_parse(b.p, b.n, "fuzz-rt.json", &t, err, sizeof err) == RH_OK);
        FUZZ_ASSERT(t.n_layers == s.n_layers && t.n_heads == s.n_heads);
        for (i = 0; i < s.n_layers * s.n_heads; i++) {
            FUZZ_ASSERT(t.present[i] == s.present[i] && t.n_tests[i] == s.n_tests[i]);
            for (j = 0; j < s.n_tests[i]; j++) FUZZ_ASSERT(t.scores[i][j] == s.scores[i][j]);
        }
        rh_scores_free(&t);
        rhm_buf_free(&b);
        rh_scores_free(&s);
    } else {
        FUZZ_ASSERT(err[0] != 0);
    }
    if (rhm_needles_parse((const char *)data, size, "fuzz.jsonl", &nd, &n, err, sizeof err) == 0)
        rhm_needles_free(nd, n);
    {
        rhe_item *it = NULL;
        int f;
        for (f = 0; f < 2; f++) {
            err[0] = 0;
            if (rhe_items_parse((const char *)data, size, "fuzz-task.jsonl", (rh_task_format)f, &it, &n, err, sizeof err) == RH_OK) {
                FUZZ_ASSERT(n > 0 && it[0].id != NULL);
                rhe_items_free(it, n);
            } else {
                FUZZ_ASSERT(err[0] != 0);
            }
        }
    }
    return 0;
}
