/* libFuzzer target: Accept-Encoding values (request headers, untrusted)
 * as the static and gzip modules read them, with invariants checked. */
#include "ed_http_range.h"
#include "fuzz.h"

#include <strings.h>

/* Whether the value holds s anywhere, in any case. */
static bool
ed_fuzz_has(const uint8_t *data, size_t size, const char *s)
{
    size_t n = strlen(s), i;

    for (i = 0; i + n <= size; i++) {
        if (strncasecmp((const char *)data + i, s, n) == 0) {
            return true;
        }
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *codings[] = { "gzip", "br", "identity", "deflate" };
    ed_str_t           ae;
    size_t             i;
    bool               yes;
    char              *copy;

    /* An exact-size heap copy: a read past the value is caught. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    ae.data = copy;
    ae.len = size;
    for (i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        yes = ed_http_accepts_coding(&ae, codings[i], strlen(codings[i]));
        /* Deterministic, and the coding's case does not matter. */
        ed_fuzz_assert(yes == ed_http_accepts_coding(&ae, codings[i],
                                                     strlen(codings[i])));
        /* Only a mention of the coding or of "*" can accept it. */
        if (yes) {
            ed_fuzz_assert(ed_fuzz_has(data, size, codings[i])
                           || memchr(data, '*', size) != NULL);
        }
    }
    ed_fuzz_assert(ed_http_accepts_coding(&ae, "GZIP", 4)
                   == ed_http_accepts_coding(&ae, "gzip", 4));
    /* No header at all accepts nothing. */
    ed_fuzz_assert(!ed_http_accepts_coding(NULL, "gzip", 4));
    free(copy);
    return 0;
}
