/* Shared by the libFuzzer targets (make fuzz): the whole program as a library, method included. */
#ifndef RH_FUZZ_COMMON_H
#define RH_FUZZ_COMMON_H
#ifdef FUZZ_WITH_CLI
/* The CLI's own parsers are static in section 9: compile it, with main renamed. */
#define main rh_fuzz_cli_main
#else
#define RH_NO_MAIN
#endif
#ifndef RH_HAVE_METHOD
#define RH_HAVE_METHOD
#endif
#include "../../retrieval_heads.c"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A fuzz target that finds a real problem aborts: ASan/UBSan report it and libFuzzer saves the
 * input.  This is for properties the sanitizers cannot see (e.g. an id out of range). */
#define FUZZ_ASSERT(x) \
    do { if (!(x)) { fprintf(stderr, "fuzz assertion failed: %s (%s:%d)\n", #x, __FILE__, __LINE__); abort(); } } while (0)

/* Input bytes as a NUL-terminated string (the CLI parsers take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = (char *)malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}
#endif
