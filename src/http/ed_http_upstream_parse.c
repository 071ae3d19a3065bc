/* Zero-copy parser of upstream response heads, as strict as the request
 * parser: a response the proxy cannot frame exactly is refused (502). */
#include "ed_http_upstream.h"

#define ed_ups_is(c, cls) (ed_http_char[(u_char)(c)] & (cls))

/* Fields checked across lines. */
typedef struct {
    const u_char *cl;          /* first Content-Length value */
    size_t        cl_len;
    unsigned      te:1;
    unsigned      te_chunked:1;
    unsigned      te_last_chunked:1;
    unsigned      te_other:1;
} ed_ups_parse_state_t;

/* Case-insensitive equality of [s, s + n) and a lowercase literal. */
static bool
ed_ups_eq(const u_char *s, size_t n, const char *lit, size_t litlen)
{
    size_t i;

    if (n != litlen) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if ((u_char)ed_tolower((char)s[i]) != (u_char)lit[i]) {
            return false;
        }
    }
    return true;
}

#define ed_ups_eq_lit(s, n, lit) ed_ups_eq(s, n, lit, sizeof(lit) - 1)

static void
ed_ups_trim(const u_char **s, const u_char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t')) {
        (*s)++;
    }
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) {
        (*e)--;
    }
}

/* Calls fn for each trimmed element of a comma-separated list; stops at
 * the first non-OK answer and returns it. */
typedef int (*ed_ups_elt_pt)(ed_http_resp_head_t *h, ed_ups_parse_state_t *st,
                             const u_char *s, size_t n);

static int
ed_ups_list(ed_http_resp_head_t *h, ed_ups_parse_state_t *st,
            const u_char *v, const u_char *end, ed_ups_elt_pt fn)
{
    const u_char *p, *c, *s, *e;
    int           rc;

    for (p = v;; p = c + 1) {
        c = memchr(p, ',', (size_t)(end - p));
        s = p;
        e = c ? c : end;
        ed_ups_trim(&s, &e);
        rc = fn(h, st, s, (size_t)(e - s));
        if (rc != ED_OK || c == NULL) {
            return rc;
        }
    }
}

/* Content-Length: identical decimal values only. ED_OK or ED_ERROR. */
static int
ed_ups_content_length(ed_http_resp_head_t *h, ed_ups_parse_state_t *st,
                      const u_char *s, size_t n)
{
    int64_t v = ed_atoi((const char *)s, n);

    if (v < 0) {
        return ED_ERROR;
    }
    if (st->cl == NULL) {
        st->cl = s;
        st->cl_len = n;
        h->content_length = v;
        return ED_OK;
    }
    return st->cl_len == n && memcmp(st->cl, s, n) == 0 ? ED_OK : ED_ERROR;
}

/* Transfer-Encoding codings: tokens; chunked at most once. */
static int
ed_ups_coding(ed_http_resp_head_t *h, ed_ups_parse_state_t *st,
              const u_char *s, size_t n)
{
    size_t i;

    ed_unused(h);
    if (n == 0) {
        return ED_OK;
    }
    for (i = 0; i < n; i++) {
        if (!ed_ups_is(s[i], ED_HTTP_C_TOKEN)) {
            return ED_ERROR;
        }
    }
    if (ed_ups_eq_lit(s, n, "chunked")) {
        if (st->te_chunked) {
            return ED_ERROR;
        }
        st->te_chunked = 1;
        st->te_last_chunked = 1;
        return ED_OK;
    }
    st->te_last_chunked = 0;
    st->te_other = 1;
    return ED_OK;
}

/* Connection options: close, keep-alive, upgrade. Returns ED_OK. */
static int
ed_ups_connection(ed_http_resp_head_t *h, ed_ups_parse_state_t *st,
                  const u_char *s, size_t n)
{
    ed_unused(st);
    if (ed_ups_eq_lit(s, n, "close")) {
        h->conn_close = 1;
    } else if (ed_ups_eq_lit(s, n, "keep-alive")) {
        h->conn_keepalive = 1;
    } else if (ed_ups_eq_lit(s, n, "upgrade")) {
        h->conn_upgrade = 1;
    }
    return ED_OK;
}

/* Interprets one field. ED_OK or ED_ERROR. */
static int
ed_ups_field(ed_http_resp_head_t *h, ed_ups_parse_state_t *st,
             const u_char *name, size_t nlen, const u_char *v,
             const u_char *vend)
{
    switch (nlen) {
    case 7:
        if (ed_ups_eq_lit(name, nlen, "upgrade")) {
            h->upgrade.data = (char *)v;
            h->upgrade.len = (size_t)(vend - v);
        }
        break;
    case 10:
        if (ed_ups_eq_lit(name, nlen, "connection")) {
            return ed_ups_list(h, st, v, vend, ed_ups_connection);
        }
        break;
    case 12:
        if (ed_ups_eq_lit(name, nlen, "content-type")
            && h->content_type.data == NULL)
        {
            h->content_type.data = (char *)v;
            h->content_type.len = (size_t)(vend - v);
        }
        break;
    case 14:
        if (ed_ups_eq_lit(name, nlen, "content-length")) {
            return ed_ups_list(h, st, v, vend, ed_ups_content_length);
        }
        break;
    case 17:
        if (ed_ups_eq_lit(name, nlen, "transfer-encoding")) {
            st->te = 1;
            return ed_ups_list(h, st, v, vend, ed_ups_coding);
        }
        break;
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
    const u_char         *p, *end, *name, *v, *vend, *q;
    ed_ups_parse_state_t  st;
    ed_http_header_t     *hd;
    size_t                nlen;

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
        name = p;
        while (ed_ups_is(*p, ED_HTTP_C_TOKEN)) {
            p++;
        }
        if (p == name || *p != ':') {
            return ED_ERROR;
        }
        nlen = (size_t)(p - name);
        p++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        v = p;
        while (ed_ups_is(*p, ED_HTTP_C_VALUE)) {
            p++;
        }
        vend = p;
        p = ed_ups_eol(p);
        if (p == NULL) {
            return ED_ERROR;
        }
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) {
            vend--;
        }
        if (h->nheaders == max_headers) {
            return ED_ERROR;
        }
        hd = &hdrs[h->nheaders++];
        hd->name.data = (char *)name;
        hd->name.len = nlen;
        hd->value.data = (char *)v;
        hd->value.len = (size_t)(vend - v);
        if (ed_ups_field(h, &st, name, nlen, v, vend) != ED_OK) {
            return ED_ERROR;
        }
    }
    h->head_len = (size_t)(p - (const u_char *)buf);

    if (st.te) {
        /* No guessing between two framings, no chunked from HTTP/1.0,
         * and nothing but chunked last: a body delimited otherwise would
         * need the close to find its end, which a smuggled byte could
         * fake. */
        if (st.cl != NULL || h->version == 10 || !st.te_last_chunked
            || st.te_other)
        {
            return ED_ERROR;
        }
        h->chunked = 1;
    }
    return ED_OK;
}
