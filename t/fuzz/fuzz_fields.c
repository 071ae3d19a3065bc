/* libFuzzer target: the header-field rules (ed_http_fields.c) against
 * naive models of RFC 9110, and the request and response parsers
 * against each other on the framing fields. */
#include "ed_core.h"
#include "ed_http_fields.h"
#include "ed_http_upstream.h"
#include "fuzz.h"

#define ED_FUZZ_MAX 4096

/* A model of an element: v[s..e) trimmed of SP and HTAB. */
static void
ed_fuzz_trim(const char *v, size_t *s, size_t *e)
{
    while (*s < *e && (v[*s] == ' ' || v[*s] == '\t')) {
        (*s)++;
    }
    while (*e > *s && (v[*e - 1] == ' ' || v[*e - 1] == '\t')) {
        (*e)--;
    }
}

static bool
ed_fuzz_caseeq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen) {
        return false;
    }
    for (i = 0; i < alen; i++) {
        if ((a[i] | (a[i] >= 'A' && a[i] <= 'Z' ? 0x20 : 0))
            != (b[i] | (b[i] >= 'A' && b[i] <= 'Z' ? 0x20 : 0)))
        {
            return false;
        }
    }
    return true;
}

/* The list walk gives the model's elements, in order, and the rules
 * built on it agree with models written from the RFC's words. */
static void
ed_fuzz_list(const char *v, size_t len)
{
    ed_http_list_t l;
    ed_str_t       e;
    size_t         s = 0, t, i, count = 0;
    bool           close = false;
    unsigned       conn;

    ed_http_list_init(&l, v, len);
    for (;;) {
        for (t = s; t < len && v[t] != ','; t++) {
            /* up to the next comma */
        }
        i = t;
        ed_fuzz_trim(v, &s, &i);
        ed_fuzz_assert(ed_http_list_next(&l, &e));
        ed_fuzz_assert(e.data == v + s && e.len == i - s);
        count++;
        if (ed_fuzz_caseeq(e.data, e.len, "close", 5)) {
            close = true;
        }
        if (t == len) {
            break;
        }
        s = t + 1;
    }
    ed_fuzz_assert(!ed_http_list_next(&l, &e));
    ed_fuzz_assert(count >= 1);

    conn = ed_http_connection(v, len);
    ed_fuzz_assert(((conn & ED_HTTP_CONN_CLOSE) != 0) == close);
    ed_fuzz_assert(ed_http_list_has(v, len, "close", 5) || !close);
}

/* Content-Length: ED_OK exactly when every element is the same
 * non-empty run of digits that fits an int64_t. */
static void
ed_fuzz_content_length(const char *v, size_t len)
{
    ed_http_framing_t f;
    ed_http_list_t    l;
    ed_str_t          e, first = ed_null_string;
    bool              ok = true;
    size_t            i;
    int               rc;

    memset(&f, 0, sizeof(f));
    rc = ed_http_content_length(&f, v, len);
    ed_http_list_init(&l, v, len);
    while (ed_http_list_next(&l, &e)) {
        for (i = 0; i < e.len; i++) {
            if (e.data[i] < '0' || e.data[i] > '9') {
                ok = false;
            }
        }
        if (e.len == 0 || ed_atoi(e.data, e.len) < 0) {
            ok = false;
        }
        if (first.data == NULL) {
            first = e;
        } else if (first.len != e.len
                   || memcmp(first.data, e.data, e.len) != 0)
        {
            ok = false;
        }
    }
    ed_fuzz_assert((rc == ED_OK) == ok);
    if (ok) {
        ed_fuzz_assert(f.content_length == ed_atoi(first.data, first.len));
    }
}

/* The body a parsed request head starts: chunked as the head says, a
 * length only for a positive Content-Length, none otherwise (never up
 * to the close); unread until done. */
static void
ed_fuzz_request_body(const ed_http_req_head_t *h)
{
    ed_http_decoder_t d;

    ed_http_decoder_request(&d, h);
    if (h->chunked) {
        ed_fuzz_assert(d.kind == ED_HTTP_BODY_CHUNKED);
    } else if (h->content_length > 0) {
        ed_fuzz_assert(d.kind == ED_HTTP_BODY_LENGTH
                       && d.left == h->content_length);
    } else {
        ed_fuzz_assert(d.kind == ED_HTTP_BODY_NONE);
    }
    ed_fuzz_assert(ed_http_decoder_done(&d) == (d.kind == ED_HTTP_BODY_NONE));
    ed_fuzz_assert(ed_http_decoder_want(&d, 4096)
                   == (d.kind == ED_HTTP_BODY_LENGTH
                           ? (size_t)ed_min(h->content_length, 4096)
                           : d.kind == ED_HTTP_BODY_NONE ? 0 : 4096));
}

/* The two head parsers read the framing fields one way: a request and a
 * response with the same Content-Length and Transfer-Encoding fields get
 * the same length, and chunked only where both may. */
static void
ed_fuzz_heads(const uint8_t *data, size_t size)
{
    static char      req[ED_FUZZ_MAX + 256], resp[ED_FUZZ_MAX + 256];
    ed_http_header_t h1[64], h2[64];
    ed_http_req_head_t  rq;
    ed_http_resp_head_t rs;
    size_t           i, rl, sl, nl = 0;
    uint8_t          sel;
    int              rc1, rc2;
    const char      *name;

    rl = (size_t)snprintf(req, sizeof(req), "POST / HTTP/1.%c\r\nHost: a\r\n",
                          size && (data[0] & 1) ? '0' : '1');
    sl = (size_t)snprintf(resp, sizeof(resp), "HTTP/1.%c 200 OK\r\n",
                          size && (data[0] & 1) ? '0' : '1');
    /* After byte 0 (the version), lines: a byte choosing the name, then
     * the value. */
    for (i = 1; i < size; i = nl + 1) {
        sel = data[i++];
        for (nl = i; nl < size && data[nl] != '\n'; nl++) {
            /* one field value a line */
        }
        nl = ed_min(nl, size);
        name = sel & 2 ? "Transfer-Encoding: " : "Content-Length: ";
        if (sel & 4) {
            name = sel & 2 ? "transfer-ENCODING: " : "CONTENT-length: ";
        }
        if (rl + (nl - i) + 24 > sizeof(req)) {
            break;
        }
        rl += (size_t)sprintf(req + rl, "%s", name);
        sl += (size_t)sprintf(resp + sl, "%s", name);
        memcpy(req + rl, data + i, nl - i);
        memcpy(resp + sl, data + i, nl - i);
        rl += nl - i;
        sl += nl - i;
        memcpy(req + rl, "\r\n", 2);
        memcpy(resp + sl, "\r\n", 2);
        rl += 2;
        sl += 2;
    }
    memcpy(req + rl, "\r\n", 2);
    memcpy(resp + sl, "\r\n", 2);
    rl += 2;
    sl += 2;

    rc1 = ed_http_parse_request(req, rl, &rq, h1, ed_nelems(h1));
    rc2 = ed_http_parse_response(resp, sl, &rs, h2, ed_nelems(h2));
    if (rc2 == ED_OK) {
        /* The response parser is the stricter one. */
        ed_fuzz_assert(rc1 == ED_OK || rc1 == 431);
        if (rc1 == ED_OK) {
            ed_fuzz_assert(rq.content_length == rs.content_length);
            ed_fuzz_assert(rq.chunked == rs.chunked);
        }
    }
    if (rc1 == ED_OK) {
        ed_fuzz_assert(!rq.chunked || rq.content_length == -1);
        ed_fuzz_assert(!rq.chunked || rq.version == 11);
        ed_fuzz_request_body(&rq);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    ed_str_t    name;
    int         id;

    if (size > ED_FUZZ_MAX) {
        return 0;
    }
    ed_fuzz_list(v, size);
    ed_fuzz_content_length(v, size);

    /* A field name: known names in any case, nothing else. */
    id = ed_http_field_id(v, size);
    ed_fuzz_assert(id != ED_HTTP_F_OTHER
                   || !ed_fuzz_caseeq(v, size, "transfer-encoding", 17));
    if (id == ED_HTTP_F_CONTENT_LENGTH) {
        ed_fuzz_assert(ed_fuzz_caseeq(v, size, "content-length", 14));
    }
    name.data = (char *)v;
    name.len = size;
    ed_fuzz_assert(!ed_http_hop_by_hop(&name)
                   || (ED_HTTP_HOP_BY_HOP & ED_HTTP_F_BIT(id)));

    ed_fuzz_heads(data, size);
    return 0;
}
