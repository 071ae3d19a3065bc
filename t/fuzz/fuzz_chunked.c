/* libFuzzer target: chunked bodies, fed whole, in pieces and bytewise;
 * the kept trailer section and its rewriting for the client. */
#include "ed_core.h"
#include "ed_http_fields.h"
#include "ed_http_parse.h"
#include "fuzz.h"

/* The trailer section kept by the last ed_fuzz_decode: a heap buffer of
 * exactly ED_HTTP_TRAILERS_MAX bytes (a sanitizer sees any overflow),
 * and its length once the body is done. */
static char   *ed_fuzz_keep;
static size_t  ed_fuzz_kept;

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
    c.keep = ed_fuzz_keep;
    ed_fuzz_kept = 0;
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
    ed_fuzz_assert(rc == ED_ERROR || c.trailers <= ED_HTTP_TRAILERS_MAX);
    *consumed = pos;
    if (rc == ED_DONE) {
        /* The section, without the last empty line's CR. */
        ed_fuzz_assert(c.trailers >= 1);
        ed_fuzz_kept = c.trailers - 1;
    }

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

    char   *t1, *out;
    size_t  k1, k;

    b1 = malloc(len + 1);
    b2 = malloc(len + 1);
    t1 = malloc(ED_HTTP_TRAILERS_MAX);
    out = malloc(2 * ED_HTTP_TRAILERS_MAX);
    ed_fuzz_keep = malloc(ED_HTTP_TRAILERS_MAX);
    if (b1 == NULL || b2 == NULL || t1 == NULL || out == NULL
        || ed_fuzz_keep == NULL)
    {
        abort();
    }
    rc1 = ed_fuzz_decode(in, len, 0, 0, b1, &l1, &u1);
    ed_fuzz_assert(l1 <= len && u1 <= len);
    k1 = ed_fuzz_kept;
    memcpy(t1, ed_fuzz_keep, k1);
    if (rc1 == ED_DONE) {
        /* The framing is at least "0\r\n\r\n" and each byte of body
         * costs one of input. */
        ed_fuzz_assert(u1 >= l1 + 5);
        /* Kept fields are CRLF-ended lines; rewritten, they fit in
         * twice their size, every line "name: value" CRLF. */
        ed_fuzz_assert(k1 == 0 || (k1 >= 2 && memcmp(t1 + k1 - 2, "\r\n", 2)
                                              == 0));
        k = ed_http_trailers_copy(out, t1, k1, true);
        ed_fuzz_assert(k <= 2 * k1);
        ed_fuzz_assert(k == 0 || memcmp(out + k - 2, "\r\n", 2) == 0);
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
        if (rc1 == ED_DONE) {
            ed_fuzz_assert(ed_fuzz_kept == k1
                           && memcmp(ed_fuzz_keep, t1, k1) == 0);
        }
    }
    free(b1);
    free(b2);
    free(t1);
    free(out);
    free(ed_fuzz_keep);
    ed_fuzz_keep = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cut = size ? data[0] % (size + 1) : 0;

    ed_fuzz_chunked((const char *)data, size, cut);
    return 0;
}
