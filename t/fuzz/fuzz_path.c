/* libFuzzer target: the path normaliser, with its output checked. */
#include "ed_core.h"
#include "ed_http_parse.h"
#include "fuzz.h"

/* A normal path: starts with '/', no NUL, no empty, "." or ".." segment. */
static void
ed_fuzz_check_normal(const char *out, size_t olen)
{
    size_t i, s, n;

    ed_fuzz_assert(olen >= 1 && out[0] == '/');
    ed_fuzz_assert(memchr(out, '\0', olen) == NULL);
    for (s = 1; s < olen; s = i + 1) {
        for (i = s; i < olen && out[i] != '/'; i++) {
            /* the end of the segment */
        }
        n = i - s;
        ed_fuzz_assert(n != 0);
        ed_fuzz_assert(!(n == 1 && out[s] == '.'));
        ed_fuzz_assert(!(n == 2 && out[s] == '.' && out[s + 1] == '.'));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char       *out, *again;
    size_t      olen, alen;
    int         rc;

    /* Exactly size bytes: the documented minimum, so ASan sees overruns. */
    out = malloc(size ? size : 1);
    again = malloc(size ? size : 1);
    if (out == NULL || again == NULL) {
        abort();
    }
    olen = (size_t)-1;
    rc = ed_http_normalize_path(in, size, out, &olen);
    ed_fuzz_assert(rc == ED_OK || rc == ED_ERROR);
    if (size == 0 || in[0] != '/') {
        ed_fuzz_assert(rc == ED_ERROR);
    }
    if (rc == ED_OK) {
        ed_fuzz_assert(olen <= size);
        ed_fuzz_check_normal(out, olen);
        /* Idempotent when nothing is left to decode. */
        if (memchr(out, '%', olen) == NULL) {
            rc = ed_http_normalize_path(out, olen, again, &alen);
            ed_fuzz_assert(rc == ED_OK && alen == olen
                           && memcmp(again, out, olen) == 0);
        }
        /* In place gives the same answer. */
        memcpy(again, in, size);
        rc = ed_http_normalize_path(again, size, again, &alen);
        ed_fuzz_assert(rc == ED_OK && alen == olen
                       && memcmp(again, out, olen) == 0);
    }
    free(out);
    free(again);
    return 0;
}
