/* libFuzzer target: upstream response heads (scanner and parser), then
 * the body framing the proxy derives from them. */
#include "ed_http_upstream.h"
#include "fuzz.h"

#define ED_FUZZ_MAX_HEADERS 100

/* s lies inside buf[0..len) (an empty string may point anywhere). */
static void
ed_fuzz_inside(const ed_str_t *s, const char *buf, size_t len)
{
    uintptr_t b = (uintptr_t)buf, d = (uintptr_t)s->data;

    if (s->len == 0) {
        return;
    }
    ed_fuzz_assert(d >= b && s->len <= len && d - b <= len - s->len);
}

static bool
ed_fuzz_clean(const char *p, size_t n)
{
    return n == 0
           || (memchr(p, '\r', n) == NULL && memchr(p, '\n', n) == NULL
               && memchr(p, '\0', n) == NULL);
}

/* Checks a head that parsed: everything points into buf[0..len), and
 * nothing the proxy copies to the client can split a header line. */
static void
ed_fuzz_check(const ed_http_resp_head_t *h, const char *buf, size_t len,
              bool exact)
{
    const ed_http_header_t *hd;
    size_t                  i;

    ed_fuzz_assert(exact ? h->head_len == len : h->head_len <= len);
    ed_fuzz_assert(h->version == 10 || h->version == 11);
    ed_fuzz_assert(h->status >= 100 && h->status <= 599);
    ed_fuzz_assert(h->content_length >= -1);
    ed_fuzz_assert(!(h->chunked && h->content_length != -1));
    ed_fuzz_assert(!(h->chunked && h->version != 11));
    ed_fuzz_assert(h->nheaders <= ED_FUZZ_MAX_HEADERS);
    ed_fuzz_inside(&h->reason, buf, len);
    ed_fuzz_inside(&h->content_type, buf, len);
    ed_fuzz_inside(&h->upgrade, buf, len);
    ed_fuzz_assert(ed_fuzz_clean(h->reason.data, h->reason.len));
    ed_fuzz_assert(ed_fuzz_clean(h->upgrade.data, h->upgrade.len));
    ed_fuzz_assert(ed_fuzz_clean(h->content_type.data, h->content_type.len));
    for (i = 0; i < h->nheaders; i++) {
        hd = &h->headers[i];
        ed_fuzz_assert(hd->name.len > 0);
        ed_fuzz_inside(&hd->name, buf, len);
        ed_fuzz_inside(&hd->value, buf, len);
        ed_fuzz_assert(ed_fuzz_clean(hd->name.data, hd->name.len));
        ed_fuzz_assert(memchr(hd->name.data, ':', hd->name.len) == NULL);
        ed_fuzz_assert(ed_fuzz_clean(hd->value.data, hd->value.len));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_http_header_t    hdrs[ED_FUZZ_MAX_HEADERS];
    ed_http_resp_head_t h, h2;
    ed_http_chunked_t   c;
    char               *buf;
    size_t              end, i, used, off, n, pos;
    int                 rc, rc2;

    /* A copy of exactly the input, so that ASan sees any overread. */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);

    /* As the proxy does: the scanner finds the end, the parser reads
     * exactly that. */
    end = ed_http_head_end(buf, size, NULL);
    ed_fuzz_assert(end <= size);
    if (end > 0) {
        rc = ed_http_parse_response(buf, end, &h, hdrs, ED_FUZZ_MAX_HEADERS);
        ed_fuzz_assert(rc == ED_OK || rc == ED_ERROR);
        if (rc == ED_OK) {
            ed_fuzz_check(&h, buf, end, true);
            /* Deterministic. */
            rc2 = ed_http_parse_response(buf, end, &h2, hdrs,
                                         ED_FUZZ_MAX_HEADERS);
            ed_fuzz_assert(rc2 == ED_OK && h2.status == h.status
                           && h2.content_length == h.content_length
                           && h2.nheaders == h.nheaders);
            if (h.chunked) {
                /* What follows goes through the body decoder. */
                memset(&c, 0, sizeof(c));
                for (pos = end; pos < size; pos += used) {
                    rc2 = ed_http_chunked_parse(&c, buf + pos, size - pos,
                                                &used, &off, &n);
                    ed_fuzz_assert(used <= size - pos);
                    if (rc2 != ED_OK) {
                        break;
                    }
                    ed_fuzz_assert(n > 0 && off + n <= used);
                }
            }
        }
    }

    /* The parser alone on any input and length (bytes may follow the
     * head): it never reads past len. */
    for (i = 0; i <= ed_min(size, (size_t)8); i++) {
        rc = ed_http_parse_response(buf, size - i, &h, hdrs,
                                    ED_FUZZ_MAX_HEADERS);
        ed_fuzz_assert(rc == ED_OK || rc == ED_ERROR);
        if (rc == ED_OK) {
            ed_fuzz_check(&h, buf, size - i, false);
        }
    }
    free(buf);
    return 0;
}
