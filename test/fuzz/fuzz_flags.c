/* The command line's parsers: --lengths / --depths grids, --mask-heads lists, --ids lists,
 * integers (input: one flag value, bytes up to the first NUL), and the option-table parser of
 * every command (input: an argv, arguments separated by NUL bytes). */
#define FUZZ_WITH_CLI
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_cstr(data, size);
    char msg[512];
    double *v = NULL;
    int n = 0, i, *ids = NULL;
    long x;
    unsigned char flags[12 * 7];
    if (rhm_parse_grid("--lengths", s, 1, 1e7, 1, 0, &v, &n, msg, sizeof msg) == 0) {
        FUZZ_ASSERT(n >= 1 && n <= 10000);
        for (i = 0; i < n; i++) FUZZ_ASSERT(v[i] >= 1 && v[i] <= 1e7);
        free(v);
    }
    if (rhm_parse_grid("--depths", s, 0, 100, 0, 1, &v, &n, msg, sizeof msg) == 0) {
        for (i = 0; i < n; i++) FUZZ_ASSERT(v[i] >= 0 && v[i] <= 100);
        free(v);
    }
    memset(flags, 0, sizeof flags);
    if (rhm_parse_heads("--mask-heads", s, 12, 7, flags, msg, sizeof msg) == 0) {
        int any = 0;
        for (i = 0; i < 12 * 7; i++) any |= flags[i];
        FUZZ_ASSERT(any);
    }
    if (cli_ids(s, &ids, msg, sizeof msg) > 0) free(ids);
    if (cli_int(s, -5, 5, &x)) FUZZ_ASSERT(x >= -5 && x <= 5);
    free(s);
    {
        /* the whole input as an argv: NUL-separated arguments after the command name */
        char *buf = (char *)malloc(size + 1), *argv[64];
        int argc = 1, c;
        size_t k;
        if (!buf) abort();
        if (size) memcpy(buf, data, size);
        buf[size] = 0;
        argv[1] = buf;
        for (k = 0; k < size && argc < 63; k++)
            if (buf[k] == 0) argv[++argc] = buf + k + 1;
        if (size) argc++;
        for (c = 0; c < CLI_N_COMMANDS; c++) {
            cli_args a;
            argv[0] = (char *)(uintptr_t)cli_commands[c].name;
            if (cli_parse(&cli_commands[c], argc, argv, &a, msg, sizeof msg) == 0) {
                FUZZ_ASSERT(a.n_pos <= cli_commands[c].max_pos && a.threads >= 0 && a.threads <= 1024);
                FUZZ_ASSERT(a.shard_n >= 1 && a.shard_i >= 0 && a.shard_i < a.shard_n);
            } else {
                FUZZ_ASSERT(msg[0] && !strchr(msg, '\n'));
            }
        }
        free(buf);
    }
    return 0;
}
