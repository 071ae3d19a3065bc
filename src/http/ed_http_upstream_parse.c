/* Zero-copy parser of upstream response heads, as strict as the request
 * parser: a response the proxy cannot frame exactly is refused (502). */
#include "ed_http_upstream.h"
#include "ed_http_fields.h"

#define ed_ups_is(c, cls) (ed_http_char[(u_char)(c)] & (cls))

/* Interprets one field. ED_OK or ED_ERROR. */
static int
ed_ups_field(ed_http_resp_head_t *h, ed_http_framing_t *f,
             const u_char *name, size_t nlen, const u_char *v,
             const u_char *vend)
{
    switch (ed_http_field_id((const char *)name, nlen)) {
    case ED_HTTP_F_UPGRADE:
        h->upgrade.data = (char *)v;
        h->upgrade.len = (size_t)(vend - v);
        break;
    case ED_HTTP_F_CONNECTION:
        ed_http_head_connection(h, v, (size_t)(vend - v));
        break;
    case ED_HTTP_F_CONTENT_TYPE:
        if (h->content_type.data == NULL) {
            h->content_type.data = (char *)v;
            h->content_type.len = (size_t)(vend - v);
        }
        break;
    case ED_HTTP_F_CONTENT_LENGTH:
        if (ed_http_content_length(f, (const char *)v, (size_t)(vend - v))
            != ED_OK)
        {
            return ED_ERROR;
        }
        h->content_length = f->content_length;
        break;
    case ED_HTTP_F_TRANSFER_ENCODING:
        return ed_http_transfer_encoding(f, (const char *)v,
                                         (size_t)(vend - v));
    }
    return ED_OK;
}

/* Ends a line at p: CRLF or a bare LF (RFC 9112 2.2). Returns the byte
 * after it, or NULL. */
static const u_char *
ed_ups_eol(const u_char *p)
{
    if (*p == '\r' && p[1] == '\n') {
        return p + 2;
    }
    if (*p == '\n') {
        return p + 1;
    }
    return NULL;
}

/*
 * The last LF of buf bounds every scan, as in the request parser: each
 * loop stops at a byte outside its class and LF is outside all of them.
 * Returns ED_OK or ED_ERROR.
 */
int
ed_http_parse_response(const char *buf, size_t len, ed_http_resp_head_t *h,
                       ed_http_header_t *hdrs, size_t max_headers)
{
    const u_char         *p, *end, *q;
    ed_http_framing_t     st;
    ed_http_header_t     *hd;

    memset(h, 0, sizeof(*h));
    memset(&st, 0, sizeof(st));
    h->content_length = -1;
    h->headers = hdrs;
    if (len == 0) {
        return ED_ERROR;
    }
    p = (const u_char *)buf;
    end = memrchr(p, '\n', len);
    if (end == NULL) {
        return ED_ERROR;
    }
    end++;

    /* Empty lines before the status line (a stray CRLF after a previous
     * body) are skipped, as ed_http_head_end does. */
    for (;;) {
        q = ed_ups_eol(p);
        if (q == NULL) {
            break;
        }
        p = q;
        if (p == end) {
            return ED_ERROR;
        }
    }

    /* "HTTP/1.x" SP 3DIGIT [SP reason] EOL */
    if (end - p < 13 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0'
        || p[7] > '9' || p[8] != ' ')
    {
        return ED_ERROR;
    }
    h->version = p[7] == '0' ? 10 : 11;
    p += 9;
    if (p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0'
        || p[2] > '9')
    {
        return ED_ERROR;
    }
    h->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    if (*p == ' ') {
        p++;
        h->reason.data = (char *)p;
        while (ed_ups_is(*p, ED_HTTP_C_VALUE)) {
            p++;
        }
        h->reason.len = (size_t)(p - (const u_char *)h->reason.data);
    }
    p = ed_ups_eol(p);
    if (p == NULL) {
        return ED_ERROR;
    }

    for (;;) {
        if (p == end) {
            return ED_ERROR;
        }
        q = ed_ups_eol(p);
        if (q != NULL) {
            p = q;
            break;
        }
        if (h->nheaders == max_headers) {
            return ED_ERROR;
        }
        hd = &hdrs[h->nheaders];
        p = (const u_char *)ed_http_parse_field((const char *)p,
                                                (const char *)end, hd);
        if (p == NULL) {
            return ED_ERROR;
        }
        h->nheaders++;
        if (ed_ups_field(h, &st, (const u_char *)hd->name.data,
                         hd->name.len, (const u_char *)hd->value.data,
                         (const u_char *)hd->value.data + hd->value.len)
            != ED_OK)
        {
            return ED_ERROR;
        }
    }
    h->head_len = (size_t)(p - (const u_char *)buf);

    /* As for requests, and more: nothing but chunked, as a body
     * delimited otherwise would need the close to find its end, which a
     * smuggled byte could fake. */
    if (ed_http_framing_verdict(&st, h->version) != ED_OK
        || (st.te && st.te_other))
    {
        return ED_ERROR;
    }
    h->chunked = st.te;
    return ED_OK;
}
