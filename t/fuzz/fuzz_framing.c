/* libFuzzer target: the body decoder (ed_http_decode, ed_http_decode_run)
 * for each framing, fed whole, bytewise and in pieces: every delivery
 * gives one answer, one body and one end; and fed as the request body
 * readers feed it (reads no larger than ed_http_decoder_want), which
 * never hands a length body a byte past its end. */
#include "ed_core.h"
#include "ed_http_fields.h"
#include "fuzz.h"

typedef struct {
    char   *buf;
    size_t  len;
} ed_fuzz_sink_t;

static int
ed_fuzz_sink(void *data, const char *p, size_t n)
{
    ed_fuzz_sink_t *k = data;

    ed_fuzz_assert(n > 0);
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    return ED_OK;
}

/* Runs in[0..len) through a decoder of kind in deliveries of step bytes
 * (0: at once). Returns the final answer with the body in k and the
 * input consumed in *used. */
static int
ed_fuzz_run(int kind, int64_t length, const char *in, size_t len,
            size_t step, ed_fuzz_sink_t *k, size_t *used)
{
    ed_http_decoder_t d;
    size_t            pos = 0, avail;
    int               rc;

    ed_http_decoder_init(&d, kind, length);
    k->len = 0;
    avail = step ? ed_min(step, len) : len;
    for (;;) {
        rc = ed_http_decode_run(&d, in, avail, &pos, ed_fuzz_sink, k);
        ed_fuzz_assert(rc == ED_AGAIN || rc == ED_DONE || rc == ED_ERROR);
        ed_fuzz_assert(pos <= avail);
        ed_fuzz_assert(d.total == (int64_t)k->len);
        if (rc == ED_AGAIN) {
            ed_fuzz_assert(pos == avail);
        }
        if (rc != ED_AGAIN || avail == len) {
            break;
        }
        avail = step ? ed_min(avail + step, len) : len;
    }
    *used = pos;
    /* Over exactly when it said so; never for a body up to the close. */
    ed_fuzz_assert(ed_http_decoder_done(&d)
                   == (rc == ED_DONE && kind != ED_HTTP_BODY_CLOSE));
    ed_fuzz_assert(ed_http_decoder_done(&d) == (d.left == 0));
    switch (kind) {
    case ED_HTTP_BODY_LENGTH:
        ed_fuzz_assert(rc != ED_ERROR);
        ed_fuzz_assert((rc == ED_DONE) == ((int64_t)len >= length));
        ed_fuzz_assert(k->len == (size_t)ed_min((int64_t)len, length));
        ed_fuzz_assert(memcmp(k->buf, in, k->len) == 0);
        ed_fuzz_assert(ed_http_decode_eof(&d)
                       == (rc == ED_DONE ? ED_DONE : ED_ERROR));
        break;
    case ED_HTTP_BODY_CLOSE:
        ed_fuzz_assert(rc == ED_AGAIN && k->len == len && pos == len);
        ed_fuzz_assert(memcmp(k->buf, in, len) == 0);
        ed_fuzz_assert(ed_http_decode_eof(&d) == ED_DONE);
        break;
    case ED_HTTP_BODY_CHUNKED:
        if (rc == ED_DONE) {
            /* At least "0\r\n\r\n", and a byte of input a body byte. */
            ed_fuzz_assert(pos >= k->len + 5);
        }
        ed_fuzz_assert(ed_http_decode_eof(&d)
                       == (rc == ED_DONE ? ED_DONE : ED_ERROR));
        break;
    default:
        ed_fuzz_assert(rc == ED_DONE && pos == 0 && k->len == 0);
        break;
    }
    return rc;
}

/* Feeds in[0..len) as a request body reader does: each read asks
 * ed_http_decoder_want(step) bytes, and what a run leaves unconsumed
 * goes back to the input. Returns the final answer, the body in k and
 * the input consumed in *used. */
static int
ed_fuzz_reader(int kind, int64_t length, const char *in, size_t len,
               size_t step, ed_fuzz_sink_t *k, size_t *used)
{
    ed_http_decoder_t d;
    size_t            pos = 0, want, got, at;
    int               rc = ED_AGAIN;

    ed_http_decoder_init(&d, kind, length);
    k->len = 0;
    while (!ed_http_decoder_done(&d) && pos < len) {
        want = ed_http_decoder_want(&d, step);
        ed_fuzz_assert(want > 0 && want <= step);
        if (d.left > 0) {
            ed_fuzz_assert((int64_t)want <= d.left);
        }
        got = ed_min(want, len - pos);
        at = 0;
        rc = ed_http_decode_run(&d, in + pos, got, &at, ed_fuzz_sink, k);
        ed_fuzz_assert(at <= got);
        if (kind != ED_HTTP_BODY_CHUNKED) {
            /* A read no larger than the rest: all of it is body. */
            ed_fuzz_assert(at == got && rc != ED_ERROR);
        }
        pos += at;
        if (rc == ED_ERROR) {
            break;
        }
    }
    if (ed_http_decoder_done(&d)) {
        rc = ED_DONE;
    }
    *used = pos;
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t steps[] = { 1, 2, 7, 100 };
    ed_fuzz_sink_t      k1, k2;
    const char         *in;
    size_t              len, i, u1, u2;
    int64_t             length;
    int                 kind, rc1, rc2;

    if (size < 2) {
        return 0;
    }
    /* Byte 0: the framing; byte 1: a length (scaled); then the body. */
    kind = data[0] & 3;
    length = (int64_t)data[1] * (data[0] & 4 ? 16 : 1);
    in = (const char *)data + 2;
    len = size - 2;
    k1.buf = malloc(len + 1);
    k2.buf = malloc(len + 1);
    if (k1.buf == NULL || k2.buf == NULL) {
        abort();
    }
    rc1 = ed_fuzz_run(kind, length, in, len, 0, &k1, &u1);
    for (i = 0; i < ed_nelems(steps); i++) {
        rc2 = ed_fuzz_run(kind, length, in, len, steps[i], &k2, &u2);
        ed_fuzz_assert(rc1 == rc2);
        if (rc1 != ED_ERROR) {
            ed_fuzz_assert(u1 == u2 && k1.len == k2.len
                           && memcmp(k1.buf, k2.buf, k1.len) == 0);
        }
        rc2 = ed_fuzz_reader(kind, length, in, len, steps[i], &k2, &u2);
        ed_fuzz_assert(rc1 == rc2);
        if (rc1 != ED_ERROR) {
            ed_fuzz_assert(u1 == u2 && k1.len == k2.len
                           && memcmp(k1.buf, k2.buf, k1.len) == 0);
        }
    }
    free(k1.buf);
    free(k2.buf);
    return 0;
}
