/* libFuzzer target: chunked bodies, fed whole, in pieces and bytewise. */
#include "ed_core.h"
#include "ed_http_parse.h"
#include "fuzz.h"

/*
 * Decodes in[0..len) with the bytes arriving step at a time (0: all at
 * once; first: the size of the first delivery when not 0), checking every
 * answer. Fills body and *blen, *consumed. Returns the final result.
 */
static int
ed_fuzz_decode(const char *in, size_t len, size_t first, size_t step,
               char *body, size_t *blen, size_t *consumed)
{
    ed_http_chunked_t c;
    size_t            pos = 0, avail, used, off, n;
    int               rc;

    memset(&c, 0, sizeof(c));
    *blen = 0;
    avail = first ? ed_min(first, len) : step ? ed_min(step, len) : len;
    for (;;) {
        used = off = n = (size_t)-1;
        rc = ed_http_chunked_parse(&c, in + pos, avail - pos, &used, &off,
                                   &n);
        ed_fuzz_assert(used <= avail - pos);
        if (rc == ED_OK) {
            ed_fuzz_assert(n > 0 && off + n == used && off < used);
            memcpy(body + *blen, in + pos + off, n);
            *blen += n;
            ed_fuzz_assert(c.total == (int64_t)*blen);
            pos += used;
            continue;
        }
        ed_fuzz_assert(rc == ED_AGAIN || rc == ED_DONE || rc == ED_ERROR);
        ed_fuzz_assert(n == 0);
        pos += used;
        if (rc == ED_AGAIN) {
            ed_fuzz_assert(pos == avail);
        }
        if (rc != ED_AGAIN || avail == len) {
            break;
        }
        avail = step ? ed_min(avail + step, len) : len;
    }
    ed_fuzz_assert(c.total == (int64_t)*blen && c.size >= 0);
    *consumed = pos;

    /* Both ends are sticky. */
    if (rc == ED_DONE || rc == ED_ERROR) {
        ed_fuzz_assert(ed_http_chunked_parse(&c, "0\r\n\r\n", 5, &used, &off,
                                             &n) == rc && used == 0);
    }
    return rc;
}

/* Checks that every way of delivering in[0..len) gives one answer. */
static void
ed_fuzz_chunked(const char *in, size_t len, size_t cut)
{
    char   *b1, *b2;
    size_t  l1, l2, u1, u2, steps[3] = { 0, 1, 7 };
    size_t  i;
    int     rc1, rc2;

    b1 = malloc(len + 1);
    b2 = malloc(len + 1);
    if (b1 == NULL || b2 == NULL) {
        abort();
    }
    rc1 = ed_fuzz_decode(in, len, 0, 0, b1, &l1, &u1);
    ed_fuzz_assert(l1 <= len && u1 <= len);
    if (rc1 == ED_DONE) {
        /* The framing is at least "0\r\n\r\n" and each byte of body
         * costs one of input. */
        ed_fuzz_assert(u1 >= l1 + 5);
    }
    for (i = 0; i <= ed_nelems(steps); i++) {
        if (i < ed_nelems(steps)) {
            rc2 = ed_fuzz_decode(in, len, 0, steps[i], b2, &l2, &u2);
        } else {
            rc2 = ed_fuzz_decode(in, len, cut, 0, b2, &l2, &u2);
        }
        ed_fuzz_assert(rc1 == rc2);
        if (rc1 != ED_ERROR) {
            ed_fuzz_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
            ed_fuzz_assert(u1 == u2);
        }
    }
    free(b1);
    free(b2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cut = size ? data[0] % (size + 1) : 0;

    ed_fuzz_chunked((const char *)data, size, cut);
    return 0;
}
