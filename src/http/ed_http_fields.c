/* The rules of header fields and the body decoder (see ed_http_fields.h):
 * the request parser, the upstream response parser, the proxy's request
 * writer and the body readers all ask here, so that no two of them can
 * read one message two ways. */
#include "ed_core.h"
#include "ed_http_fields.h"

bool
ed_http_list_has(const char *v, size_t len, const char *tok, size_t tlen)
{
    ed_http_list_t l;
    ed_str_t       e;
    size_t         i;

    ed_http_list_init(&l, v, len);
    while (ed_http_list_next(&l, &e)) {
        for (i = 0; i < e.len; i++) {
            if (e.data[i] == ';' || e.data[i] == '=' || ed_http_ows(e.data[i]))
            {
                break;
            }
        }
        if (ed_http_token_eq(e.data, i, tok, tlen)) {
            return true;
        }
    }
    return false;
}

bool
ed_http_trailer_allowed(const char *name, size_t len)
{
    static const char *no[] = {
        /* framing and connection */
        "content-length", "transfer-encoding", "connection", "keep-alive",
        "proxy-connection", "upgrade", "te", "trailer",
        /* routing, request modifiers, authentication */
        "host", "expect", "max-forwards", "range", "if-match",
        "if-none-match", "if-modified-since", "if-unmodified-since",
        "if-range", "authorization", "proxy-authorization", "cookie",
        "www-authenticate", "proxy-authenticate", "set-cookie",
        /* response controls, content format */
        "cache-control", "pragma", "expires", "age", "vary", "location",
        "retry-after", "content-type", "content-encoding",
        "content-range", NULL
    };
    size_t i;

    for (i = 0; no[i]; i++) {
        if (strlen(no[i]) == len && ed_strncasecmp(no[i], name, len) == 0) {
            return false;
        }
    }
    return true;
}

size_t
ed_http_trailers_copy(char *out, const char *in, size_t len, bool lower)
{
    const char *end = in + len, *line, *eol, *colon, *v, *ve;
    char       *p = out;
    size_t      i;

    for (line = in; line < end; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(end - line));
        if (eol == NULL || eol + 1 >= end) {
            break;  /* the parser ends every line in CRLF */
        }
        colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || colon == line
            || !ed_http_trailer_allowed(line, (size_t)(colon - line)))
        {
            continue;
        }
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++) {
            /* OWS */
        }
        for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
            /* OWS */
        }
        for (i = 0; i < (size_t)(colon - line); i++) {
            *p++ = lower ? ed_tolower(line[i]) : line[i];
        }
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, v, (size_t)(ve - v));
        p += ve - v;
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - out);
}

size_t
ed_http_fields_list(const ed_http_header_t *hdrs, size_t n,
                    const char *field, size_t flen, const char *tok,
                    size_t tlen, bool *found)
{
    ed_http_list_t l;
    ed_str_t       e;
    size_t         i, count = 0;

    *found = false;
    for (i = 0; i < n; i++) {
        if (!ed_http_token_eq(hdrs[i].name.data, hdrs[i].name.len, field,
                              flen))
        {
            continue;
        }
        ed_http_list_init(&l, hdrs[i].value.data, hdrs[i].value.len);
        while (ed_http_list_next(&l, &e)) {
            if (e.len == 0) {
                continue;
            }
            count++;
            if (ed_http_token_eq(e.data, e.len, tok, tlen)) {
                *found = true;
            }
        }
    }
    return count;
}

int
ed_http_content_length(ed_http_framing_t *f, const char *v, size_t len)
{
    ed_http_list_t l;
    ed_str_t       e;
    int64_t        n;

    ed_http_list_init(&l, v, len);
    while (ed_http_list_next(&l, &e)) {
        n = ed_atoi(e.data, e.len);
        if (n < 0) {
            /* Empty, non-digit or overflowing. */
            return ED_ERROR;
        }
        if (f->cl == NULL) {
            f->cl = e.data;
            f->cl_len = e.len;
            f->content_length = n;
        } else if (f->cl_len != e.len || memcmp(f->cl, e.data, e.len) != 0) {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

int
ed_http_transfer_encoding(ed_http_framing_t *f, const char *v, size_t len)
{
    ed_http_list_t l;
    ed_str_t       e;

    f->te = 1;
    ed_http_list_init(&l, v, len);
    while (ed_http_list_next(&l, &e)) {
        if (e.len == 0) {
            continue;
        }
        if (!ed_http_field_ok(&e, ED_HTTP_C_TOKEN)) {
            return ED_ERROR;
        }
        f->te_codings = 1;
        if (ed_http_str_eq_lit(&e, "chunked")) {
            if (f->te_chunked) {
                return ED_ERROR;
            }
            f->te_chunked = 1;
            f->te_last_chunked = 1;
            continue;
        }
        f->te_last_chunked = 0;
        f->te_other = 1;
        if (!ed_http_str_eq_lit(&e, "gzip")
            && !ed_http_str_eq_lit(&e, "deflate")
            && !ed_http_str_eq_lit(&e, "compress")
            && !ed_http_str_eq_lit(&e, "identity"))
        {
            f->te_unknown = 1;
        }
    }
    return ED_OK;
}

int
ed_http_framing_verdict(const ed_http_framing_t *f, int version)
{
    if (!f->te) {
        return ED_OK;
    }
    if (f->cl != NULL || version == 10 || !f->te_codings) {
        return 400;
    }
    if (f->te_chunked && !f->te_last_chunked) {
        return 400;
    }
    if (f->te_unknown) {
        return 501;
    }
    if (!f->te_last_chunked) {
        return 400;
    }
    /* gzip, deflate, compress or identity before chunked: eddy takes
     * only chunked off, and a body passed on without the others would
     * no longer say how it is coded (as nginx, 501). */
    return f->te_other ? 501 : ED_OK;
}

unsigned
ed_http_connection(const char *v, size_t len)
{
    ed_http_list_t l;
    ed_str_t       e;
    unsigned       opts = 0;

    ed_http_list_init(&l, v, len);
    while (ed_http_list_next(&l, &e)) {
        if (ed_http_str_eq_lit(&e, "close")) {
            opts |= ED_HTTP_CONN_CLOSE;
        } else if (ed_http_str_eq_lit(&e, "keep-alive")) {
            opts |= ED_HTTP_CONN_KEEPALIVE;
        } else if (ed_http_str_eq_lit(&e, "upgrade")) {
            opts |= ED_HTTP_CONN_UPGRADE;
        }
    }
    return opts;
}

void
ed_http_decoder_init(ed_http_decoder_t *d, int kind, int64_t length)
{
    memset(d, 0, sizeof(*d));
    d->kind = kind;
    switch (kind) {
    case ED_HTTP_BODY_LENGTH:
        d->left = length;
        break;
    case ED_HTTP_BODY_CHUNKED:
    case ED_HTTP_BODY_CLOSE:
        d->left = -1;
        break;
    default:
        d->left = 0;
        break;
    }
}

void
ed_http_decoder_request(ed_http_decoder_t *d, const ed_http_req_head_t *h)
{
    if (h->chunked) {
        ed_http_decoder_init(d, ED_HTTP_BODY_CHUNKED, -1);
    } else if (h->content_length > 0) {
        ed_http_decoder_init(d, ED_HTTP_BODY_LENGTH, h->content_length);
    } else {
        ed_http_decoder_init(d, ED_HTTP_BODY_NONE, 0);
    }
}

int
ed_http_decode(ed_http_decoder_t *d, const char *p, size_t len,
               size_t *used, size_t *off, size_t *n)
{
    size_t k;
    int    rc;

    *used = 0;
    *off = 0;
    *n = 0;
    switch (d->kind) {
    case ED_HTTP_BODY_CHUNKED:
        rc = ed_http_chunked_parse(&d->chunked, p, len, used, off, n);
        d->total = d->chunked.total;
        if (rc == ED_DONE) {
            d->left = 0;
        }
        return rc;
    case ED_HTTP_BODY_LENGTH:
        k = (uint64_t) d->left < len ? (size_t) d->left : len;
        d->left -= (int64_t) k;
        d->total += (int64_t) k;
        *used = k;
        *n = k;
        if (d->left == 0) {
            return ED_DONE;
        }
        return k ? ED_OK : ED_AGAIN;
    case ED_HTTP_BODY_CLOSE:
        d->total += (int64_t) len;
        *used = len;
        *n = len;
        return len ? ED_OK : ED_AGAIN;
    default:
        return ED_DONE;
    }
}

int
ed_http_decode_run(ed_http_decoder_t *d, const char *p, size_t len,
                   size_t *pos, ed_http_slice_pt slice, void *data)
{
    size_t used, off, n;
    int    rc, src;

    do {
        rc = ed_http_decode(d, p + *pos, len - *pos, &used, &off, &n);
        if (rc == ED_ERROR) {
            /* Just past the first invalid byte. */
            *pos += used;
            return rc;
        }
        if (n != 0 && slice != NULL) {
            src = slice(data, p + *pos + off, n);
            if (src != ED_OK) {
                *pos += used;
                return src;
            }
        }
        *pos += used;
    } while (rc == ED_OK && *pos < len);
    return rc == ED_DONE ? ED_DONE : ED_AGAIN;
}

int
ed_http_decode_eof(const ed_http_decoder_t *d)
{
    return d->kind == ED_HTTP_BODY_CLOSE || ed_http_decoder_done(d)
               ? ED_DONE
               : ED_ERROR;
}
