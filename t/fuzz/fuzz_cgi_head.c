/* libFuzzer target: the CGI response-head parser fastcgi and cgi share
 * (ed_http_cgi_head.c), given the output whole and in two pieces, with a
 * small and a large buffer_size. */
#include "ed_http_cgi.h"
#include "fuzz.h"

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
ed_fuzz_clean(const ed_str_t *s)
{
    return s->len == 0
           || (memchr(s->data, '\r', s->len) == NULL
               && memchr(s->data, '\n', s->len) == NULL
               && memchr(s->data, '\0', s->len) == NULL);
}

static void
ed_fuzz_check(const ed_http_cgi_head_t *h, const char *buf, size_t len)
{
    size_t i;

    ed_fuzz_assert(h->head_len > 0 && h->head_len <= len
                   && h->head_len <= h->max);
    ed_fuzz_assert(buf[h->head_len - 1] == '\n');
    ed_fuzz_assert(h->status == 0
                   || (h->status >= 200 && h->status <= 599));
    ed_fuzz_assert(h->content_length >= -1);
    ed_fuzz_assert(h->nfields <= ED_HTTP_CGI_MAX_FIELDS);
    ed_fuzz_inside(&h->location, buf, h->head_len);
    ed_fuzz_inside(&h->content_type, buf, h->head_len);
    ed_fuzz_inside(&h->reason, buf, h->head_len);
    ed_fuzz_assert(ed_fuzz_clean(&h->location));
    ed_fuzz_assert(ed_fuzz_clean(&h->content_type));
    ed_fuzz_assert(h->location.data == NULL || h->location.len > 0);
    for (i = 0; i < h->nfields; i++) {
        ed_fuzz_assert(h->fields[i].name.len > 0);
        ed_fuzz_inside(&h->fields[i].name, buf, h->head_len);
        ed_fuzz_inside(&h->fields[i].value, buf, h->head_len);
        ed_fuzz_assert(ed_http_field_ok(&h->fields[i].name,
                                        ED_HTTP_C_TOKEN));
        ed_fuzz_assert(ed_fuzz_clean(&h->fields[i].value));
        ed_fuzz_assert(!ed_http_hop_by_hop(&h->fields[i].name));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t  maxes[] = { 64, 65536 };
    ed_http_header_t     f1[ED_HTTP_CGI_MAX_FIELDS], f2[ED_HTTP_CGI_MAX_FIELDS];
    ed_http_cgi_head_t   h1, h2;
    char                *buf;
    size_t               m, cut;
    int                  rc1, rc2;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    for (m = 0; m < ed_nelems(maxes); m++) {
        ed_http_cgi_head_init(&h1, f1, maxes[m]);
        rc1 = ed_http_cgi_head_parse(&h1, buf, size);
        ed_fuzz_assert(rc1 == ED_OK || rc1 == ED_AGAIN || rc1 == ED_ERROR);
        ed_fuzz_assert(rc1 != ED_AGAIN || size < maxes[m]);
        ed_fuzz_assert(rc1 != ED_ERROR || h1.error != NULL);
        if (rc1 == ED_OK) {
            ed_fuzz_check(&h1, buf, size);
        }
        /* In two pieces, cut where the first byte says: the same. */
        cut = size ? data[0] % (size + 1) : 0;
        ed_http_cgi_head_init(&h2, f2, maxes[m]);
        rc2 = ed_http_cgi_head_parse(&h2, buf, cut);
        if (rc2 == ED_AGAIN) {
            rc2 = ed_http_cgi_head_parse(&h2, buf, size);
        }
        if (rc1 == ED_OK) {
            ed_fuzz_assert(rc2 == ED_OK && h2.head_len == h1.head_len
                           && h2.nfields == h1.nfields
                           && h2.status == h1.status
                           && h2.content_length == h1.content_length);
        } else {
            ed_fuzz_assert(rc2 == rc1 || (rc2 == ED_OK && cut < size));
        }
    }
    free(buf);
    return 0;
}
