/* HTTP/2 request heads: streams begin (refused over
 * max_concurrent_streams), their fields checked as they arrive and at
 * END_HEADERS (spec/http2.md, Malformed: eddy's own rules, nghttp2's
 * HTTP checks are off), then the request head filled from them by the
 * HTTP/1 parser's own field rules (ed_http_head_*), measured as the
 * HTTP/1.1 text it stands for, so that both protocols give the same
 * verdicts and sizes; RFC 8441's extended CONNECT reads as the upgrade
 * it stands for. */
#include "ed_http_v2.h"
#include "ed_stats.h"
#include "ed_tls.h"

#include <openssl/rand.h>

#if ED_HAVE_HTTP2

#define ed_v2_sess(st) ((st)->c->sess)
#define ed_cpymem(p, s, n) ((char *)memcpy(p, s, n) + (n))

/* Malformed requests: RST_STREAM(PROTOCOL_ERROR), an info line, 400 in
 * the access log, a token of the resets budget. */
void
ed_http_v2_malformed(ed_v2_stream_t *st, const char *fmt, const char *what,
                size_t len)
{
    ed_http_request_t *r = st->r;

    if (st->malformed != NULL || r == NULL) {
        return;
    }
    st->malformed = fmt;
    ed_http_log(ED_LOG_INFO, r, 0, fmt, ed_http_log_str(r, what, len, 64));
    if (!r->header_sent) {
        r->status = 400;
    }
    ed_http_v2_rst(st, NGHTTP2_PROTOCOL_ERROR);
    ed_http_v2_reset_token(st->c);
    /* A request already running ends now; one still arriving ends when
     * the stream closes. */
    if (st->headers_done) {
        st->abort_due = 1;
        ed_http_v2_pending(st);
    }
}

/* Streams begin. */

int
ed_http_v2_on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame,
                            void *data)
{
    ed_v2_conn_t      *c = data;
    ed_v2_stream_t    *st;
    ed_http_request_t *r;
    int32_t            id = frame->hd.stream_id;
    double             max;

    if (frame->hd.type != NGHTTP2_HEADERS
        || frame->headers.cat != NGHTTP2_HCAT_REQUEST || c->flood
        || c->closing)
    {
        return 0;
    }
    /* Reset streams count until their handler let go (upstream, files
     * closed): a client resetting and reopening streams gets refused. */
    if (c->nstreams >= (unsigned)c->conf->max_concurrent_streams) {
        nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, id,
                                  NGHTTP2_REFUSED_STREAM);
        ed_stats_v2(refused_streams, 1);
        if (++c->refused > (unsigned)c->conf->max_concurrent_streams) {
            ed_http_v2_flood(c, "refused");
        }
        return 0;
    }
    st = ed_http_v2_calloc(1, sizeof(ed_v2_stream_t));
    r = st ? ed_http_request_new(c->hc, &ed_http_v2_proto) : NULL;
    if (r == NULL) {
        ed_http_v2_release(st);
        nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, id,
                                  NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    if (id > c->last_id) {
        c->last_id = id;   /* a stream eddy began (GOAWAY names it) */
    }
    st->c = c;
    st->r = r;
    st->id = id;
    ed_http_v2_stream_init(st);
    r->v2 = st;
    r->stream_id = (uint32_t)id;
    r->nrequest = ++c->nrequests;
    r->head.version = 20;
    st->next = c->streams;
    if (c->streams) {
        c->streams->prev = st;
    }
    c->streams = st;
    c->nstreams++;
    c->opened++;
    max = 1000.0;
    c->control.tokens = ed_min(c->control.tokens + 4.0, max);
    ed_stats_v2(streams_active, 1);
    nghttp2_session_set_stream_user_data(sess, id, st);
    c->hd_st = st;
    c->hd_id = id;
    if (c->nrequests >= (unsigned)c->clcf->keepalive_requests) {
        /* keepalive_requests streams: the graceful GOAWAY, as on quit. */
        ed_http_v2_graceful(c);
    }
    return 0;
}

/* The fields, as they arrive. */

/* Whether name is a field name HTTP/2 allows: a token, lower case. */
static bool
ed_v2_name_ok(const uint8_t *name, size_t len)
{
    size_t i;

    if (len == 0) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!(ed_http_char[name[i]] & ED_HTTP_C_TOKEN)
            || (name[i] >= 'A' && name[i] <= 'Z'))
        {
            return false;
        }
    }
    return true;
}

/* RFC 9113 8.2.1: no NUL, CR or LF; no leading or trailing SP/HTAB
 * (else -1, malformed). 1 for a value HTTP/2 allows that holds another
 * CTL or DEL, which no HTTP/1.1 field may (400 when kept); 0 for the
 * rest. One pass, eight bytes a step while all is well. */
static int
ed_v2_value_check(const uint8_t *v, size_t len)
{
    size_t i;

    if (len && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' '
                || v[len - 1] == '\t'))
    {
        return -1;
    }
    i = ed_http_value_len((const char *)v, len);
    if (i == len) {
        return 0;
    }
    for (; i < len; i++) {
        if (v[i] == '\0' || v[i] == '\r' || v[i] == '\n') {
            return -1;
        }
    }
    return 1;
}

#define ed_v2_value_ok(v, len) (ed_v2_value_check(v, len) >= 0)

/* A pseudo-header: stored once, before any regular field; a value
 * from HPACK's static table (stat: GET, POST, http, https, /), valid
 * as it is, is neither checked nor copied. */
static void
ed_v2_pseudo(ed_v2_stream_t *st, const uint8_t *name, size_t nlen,
             const uint8_t *value, size_t vlen, bool stat)
{
    ed_http_request_t *r = st->r;
    ed_str_t          *slot;

    if (st->nfields || st->cookie.data != NULL) {
        ed_http_v2_malformed(st, "client sent pseudo-header \"%s\" after a "
                        "regular header in HTTP/2 request",
                        (const char *)name, nlen);
        return;
    }
    /* One compare each: the length and a byte tell them apart. */
    slot = NULL;
    switch (nlen) {
    case 5:
        slot = ed_v2_is(name, nlen, ":path") ? &st->path : NULL;
        break;
    case 7:
        slot = name[1] == 'm' ? (ed_v2_is(name, nlen, ":method")
                                 ? &st->method : NULL)
                              : (ed_v2_is(name, nlen, ":scheme")
                                 ? &st->scheme : NULL);
        break;
    case 9:
        slot = ed_v2_is(name, nlen, ":protocol")
                       && st->c->conf->enable_connect_protocol
               ? &st->protocol : NULL;
        break;
    case 10:
        slot = ed_v2_is(name, nlen, ":authority") ? &st->authority : NULL;
        break;
    }
    if (slot == NULL) {
        ed_http_v2_malformed(st, "client sent invalid pseudo-header \"%s\" in "
                        "HTTP/2 request", (const char *)name, nlen);
        return;
    }
    if (slot->data != NULL) {
        ed_http_v2_malformed(st, "client sent duplicate pseudo-header \"%s\" in "
                        "HTTP/2 request", (const char *)name, nlen);
        return;
    }
    if (!stat && !ed_v2_value_ok(value, vlen)) {
        ed_http_v2_malformed(st, "client sent invalid header \"%s\" in HTTP/2 "
                        "request", (const char *)name, nlen);
        return;
    }
    slot->data = stat ? (char *)value
                      : ed_pstrdup(r->pool, (const char *)value, vlen);
    slot->len = vlen;
    st->text += vlen + 1;
}

/*
 * Room for n more bytes at the end of s, whose buffer holds *size: a
 * new buffer twice as large when it is short, so that a head of many
 * small crumbs or trailer fields costs its size, not its square (each
 * one is a callback of its own). ED_OK or ED_ERROR.
 */
static int
ed_v2_grow(ed_pool_t *pool, ed_str_t *s, size_t *size, size_t n)
{
    size_t  need = s->len + n;
    char   *p;

    if (s->data != NULL && need <= *size) {
        return ED_OK;
    }
    need = ed_max(need, ed_max(*size * 2, 64));
    p = ed_pnalloc(pool, need);
    if (p == NULL) {
        return ED_ERROR;
    }
    if (s->len) {
        memcpy(p, s->data, s->len);
    }
    s->data = p;
    *size = need;
    return ED_OK;
}

/* Appends a trailer field to r->trailers ("name: value\r\n"...). */
static int
ed_v2_trailer_keep(ed_v2_stream_t *st, const uint8_t *name, size_t nlen,
                   const uint8_t *value, size_t vlen)
{
    ed_http_request_t *r = st->r;
    char              *p;

    if (ed_v2_grow(r->pool, &r->trailers, &st->trailers_size,
                   nlen + vlen + 4)
        != ED_OK)
    {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    p = r->trailers.data + r->trailers.len;
    p = ed_cpymem(p, name, nlen);
    p = ed_cpymem(p, ": ", 2);
    p = ed_cpymem(p, value, vlen);
    memcpy(p, "\r\n", 2);
    r->trailers.len += nlen + vlen + 4;
    return 0;
}

/* Room in st->hdrs for n more fields; hdrs[0] stays for the Host.
 * ED_OK or ED_ERROR. */
static int
ed_v2_room(ed_v2_stream_t *st, unsigned n)
{
    ed_http_header_t *h;
    unsigned          cap;

    if (st->hdrs != NULL && st->nhdrs + n <= st->hcap) {
        return ED_OK;
    }
    /* 16 fields hold most heads at once. */
    cap = ed_max(st->hcap * 2, ed_max(st->nhdrs + n, 16));
    h = ed_palloc(st->r->pool, cap * sizeof(ed_http_header_t));
    if (h == NULL) {
        return ED_ERROR;
    }
    if (st->nhdrs) {
        memcpy(h, st->hdrs, st->nhdrs * sizeof(ed_http_header_t));
    } else {
        st->nhdrs = 1;
    }
    st->hdrs = h;
    st->hcap = cap;
    return ED_OK;
}

/* Keeps a field for the head (its strings stay where they are: the
 * request's pool or static). ED_OK or ED_ERROR. */
static int
ed_v2_keep(ed_v2_stream_t *st, const char *name, size_t nlen,
           const char *value, size_t vlen)
{
    ed_http_header_t *h;

    if (ed_v2_room(st, 1) != ED_OK) {
        return ED_ERROR;
    }
    h = &st->hdrs[st->nhdrs++];
    h->name.data = (char *)name;
    h->name.len = nlen;
    h->value.data = (char *)value;
    h->value.len = vlen;
    st->flen += nlen + vlen + 4;
    return ED_OK;
}

int
ed_http_v2_on_header(nghttp2_session *sess, const nghttp2_frame *frame,
                     nghttp2_rcbuf *nbuf, nghttp2_rcbuf *vbuf, uint8_t flags,
                     void *data)
{
    ed_v2_conn_t      *c = data;
    ed_v2_stream_t    *st;
    ed_http_request_t *r;
    const uint8_t     *name, *value;
    size_t             nlen, vlen, max, n;
    nghttp2_vec        vec;
    char              *p, *nm, *vl;
    bool               snm, svl;
    int                vc;

    ed_unused(flags);
    st = c->hd_id == frame->hd.stream_id
         ? c->hd_st
         : nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    if (st == NULL || st->r == NULL || st->malformed != NULL) {
        return 0;  /* decoded all the same: HPACK stays in step */
    }
    r = st->r;
    vec = nghttp2_rcbuf_get_buf(nbuf);
    name = vec.base;
    nlen = vec.len;
    vec = nghttp2_rcbuf_get_buf(vbuf);
    value = vec.base;
    vlen = vec.len;
    if (st->headers_done) {
        /* Trailers: regular fields only; kept for a body that goes on
         * chunked (the proxy), within max_header_size. A value with a
         * CTL or DEL, which no HTTP/1.1 field may hold (a chunked
         * trailer with one is a 400 there), is not relayed: the body
         * is on its way by now. */
        vc = ed_v2_value_check(value, vlen);
        if ((nlen && name[0] == ':') || !ed_v2_name_ok(name, nlen)
            || vc < 0)
        {
            ed_http_v2_malformed(st, "client sent invalid trailer \"%s\" in "
                            "HTTP/2 request", (const char *)name, nlen);
            return 0;
        }
        if (vc > 0 || !ed_http_trailer_allowed((const char *)name, nlen)
            || r->trailers.len + nlen + vlen + 4 > r->clcf->max_header_size)
        {
            return 0;
        }
        return ed_v2_trailer_keep(st, name, nlen, value, vlen);
    }
    if (nlen && name[0] == ':') {
        ed_v2_pseudo(st, name, nlen, value, vlen,
                     nghttp2_rcbuf_is_static(vbuf));
        return 0;
    }
    /* HPACK's static names and values are all valid (lower-case
     * tokens; "gzip, deflate", ...). */
    snm = nghttp2_rcbuf_is_static(nbuf);
    svl = nghttp2_rcbuf_is_static(vbuf);
    vc = svl ? 0 : ed_v2_value_check(value, vlen);
    if ((!snm && !ed_v2_name_ok(name, nlen)) || vc < 0
        || ed_v2_is(name, nlen, "connection")
        || ed_v2_is(name, nlen, "keep-alive")
        || ed_v2_is(name, nlen, "proxy-connection")
        || ed_v2_is(name, nlen, "transfer-encoding")
        || ed_v2_is(name, nlen, "upgrade")
        || (ed_v2_is(name, nlen, "te") && !ed_v2_is(value, vlen, "trailers")))
    {
        ed_http_v2_malformed(st, "client sent invalid header \"%s\" in HTTP/2 "
                        "request", (const char *)name, nlen);
        return 0;
    }
    if (ed_v2_is(name, nlen, "content-length")) {
        for (n = 0; n < vlen && value[n] >= '0' && value[n] <= '9'; n++) {
        }
        if (vlen == 0 || n != vlen || vlen > 18 || st->cl_seen) {
            ed_http_v2_malformed(st, "client sent invalid header \"%s\" in "
                            "HTTP/2 request", (const char *)name, nlen);
            return 0;
        }
        st->cl_seen = 1;
        for (n = 0, st->content_length = 0; n < vlen; n++) {
            st->content_length = st->content_length * 10 + (value[n] - '0');
        }
    }
    if (ed_v2_is(name, nlen, "host")) {
        if (vlen == 0 || st->host_seen) {
            ed_http_v2_malformed(st, "client sent invalid header \"%s\" in "
                            "HTTP/2 request", (const char *)name, nlen);
            return 0;
        }
        st->host_seen = 1;
        if (st->authority.data != NULL) {
            /* Compared with :authority at the end of the head, and not
             * kept twice. */
            st->host.data = ed_pstrdup(r->pool, (const char *)value, vlen);
            st->host.len = vlen;
            return 0;
        }
    }
    max = r->clcf->max_header_size;
    if (ed_v2_is(name, nlen, "cookie")) {
        /* Crumbs joined with "; " (RFC 9113 8.2.3), measured joined.
         * An empty crumb adds nothing to the field (none is written when
         * all are empty), so it is not counted as one either; it is a
         * regular field all the same (no pseudo-header after it). */
        if (vlen == 0) {
            if (st->cookie.data == NULL) {
                st->cookie.data = "";
            }
            return 0;
        }
        st->text += st->cookie.len ? 2 + vlen : nlen + 4 + vlen;
        if (st->text > max) {
            st->too_large = 1;
            return 0;
        }
        if (ed_v2_grow(r->pool, &st->cookie, &st->cookie_size, 2 + vlen)
            != ED_OK)
        {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        p = st->cookie.data + st->cookie.len;
        if (st->cookie.len) {
            p = ed_cpymem(p, "; ", 2);
            st->cookie.len += 2;
        } else {
            st->nfields++;
        }
        memcpy(p, value, vlen);
        st->cookie.len += vlen;
        st->ctl |= vc;
        return 0;
    }
    st->text += nlen + vlen + 4;
    if (st->text > max || st->nfields >= (unsigned)r->clcf->max_headers) {
        /* Decoded, not kept: the verdict is 431. */
        st->too_large = 1;
        return 0;
    }
    /* A name or value from HPACK's static table stays where it is; the
     * rest is copied, in one piece, as nghttp2 lets go of it. */
    nm = (char *)name;
    vl = (char *)value;
    if (!snm || !svl) {
        p = ed_pnalloc(r->pool, (snm ? 0 : nlen) + (svl ? 0 : vlen));
        if (p == NULL) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        if (!snm) {
            nm = p;
            p = ed_cpymem(p, name, nlen);
        }
        if (!svl) {
            vl = memcpy(p, value, vlen);
        }
    }
    if (ed_v2_keep(st, nm, nlen, vl, vlen) != ED_OK) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    st->ctl |= vc;
    st->nfields++;
    return 0;
}

/* The authority without a default port, lowercased, for comparing
 * :authority with host (RFC 9113 8.3.1). */
static bool
ed_v2_same_authority(const ed_str_t *a, const ed_str_t *b,
                     const ed_str_t *scheme)
{
    ed_str_t x = *a, y = *b;
    size_t   i;

    if (scheme->len == 5 && memcmp(scheme->data, "https", 5) == 0) {
        if (x.len > 4 && memcmp(x.data + x.len - 4, ":443", 4) == 0) {
            x.len -= 4;
        }
        if (y.len > 4 && memcmp(y.data + y.len - 4, ":443", 4) == 0) {
            y.len -= 4;
        }
    } else {
        if (x.len > 3 && memcmp(x.data + x.len - 3, ":80", 3) == 0) {
            x.len -= 3;
        }
        if (y.len > 3 && memcmp(y.data + y.len - 3, ":80", 3) == 0) {
            y.len -= 3;
        }
    }
    if (x.len != y.len) {
        return false;
    }
    for (i = 0; i < x.len; i++) {
        if (ed_tolower(x.data[i]) != ed_tolower(y.data[i])) {
            return false;
        }
    }
    return true;
}

/* The end of the request head (END_HEADERS): the checks that need all
 * of it, then the request starts from the dispatch. */
void
ed_http_v2_headers_end(ed_v2_stream_t *st, bool end_stream)
{
    bool connect;

    if (st->headers_done) {
        /* Trailers end the body. */
        if (!end_stream) {
            ed_http_v2_malformed(st, "client sent trailers without END_STREAM "
                            "in HTTP/2 request%s", "", 0);
            return;
        }
        ed_http_v2_data_end(st);
        return;
    }
    st->headers_done = 1;
    if (st->malformed != NULL || st->r == NULL) {
        return;
    }
    connect = st->method.len == 7 && memcmp(st->method.data, "CONNECT", 7)
                                         == 0;
    if (st->protocol.data != NULL
        && (!connect || st->scheme.data == NULL || st->path.data == NULL))
    {
        ed_http_v2_malformed(st, "client sent invalid pseudo-header \"%s\" in "
                        "HTTP/2 request", ":protocol", 9);
        return;
    }
    if (st->method.data == NULL
        || (connect && st->protocol.data == NULL
            && (st->scheme.data != NULL || st->path.data != NULL
                || st->authority.data == NULL))
        || (!(connect && st->protocol.data == NULL)
            && (st->scheme.data == NULL || st->path.data == NULL)))
    {
        const char *miss = st->method.data == NULL ? ":method"
                           : st->scheme.data == NULL ? ":scheme"
                           : st->path.data == NULL ? ":path"
                                                   : ":authority";

        ed_http_v2_malformed(st, "client sent no \"%s\" pseudo-header in "
                        "HTTP/2 request", miss, strlen(miss));
        return;
    }
    if (st->path.data != NULL
        && (st->path.len == 0
            || (st->path.data[0] != '/'
                && !(st->path.len == 1 && st->path.data[0] == '*'
                     && st->method.len == 7
                     && memcmp(st->method.data, "OPTIONS", 7) == 0))))
    {
        ed_http_v2_malformed(st, "client sent invalid \"%s\" pseudo-header in "
                        "HTTP/2 request", ":path", 5);
        return;
    }
    if ((st->authority.data == NULL && !st->host_seen)
        || (st->authority.data != NULL
            && (st->authority.len == 0
                || memchr(st->authority.data, '@', st->authority.len))))
    {
        ed_http_v2_malformed(st, "client sent invalid \"%s\" pseudo-header in "
                        "HTTP/2 request", ":authority", 10);
        return;
    }
    if (st->authority.data != NULL && st->host.data != NULL
        && !ed_v2_same_authority(&st->authority, &st->host, &st->scheme))
    {
        ed_http_v2_malformed(st, "client sent \"%s\" unlike :authority in "
                        "HTTP/2 request", "host", 4);
        return;
    }
    if (end_stream && st->cl_seen && st->content_length > 0) {
        ed_http_v2_malformed(st, "client sent END_STREAM short of "
                        "\"%s\" in HTTP/2 request", "content-length", 14);
        return;
    }
    st->in_end = end_stream;
    st->bodyless = end_stream;
    st->start_due = 1;
    ed_http_v2_pending(st);
}

/* RFC 8441: an extended CONNECT for WebSocket reads, for the request
 * core and the proxy, as the HTTP/1.1 upgrade it stands for: a GET with
 * Connection: upgrade, Upgrade: websocket and a fresh Sec-WebSocket-Key
 * (the client sends none: the proxy checks the upstream's accept
 * itself). The fields go with the others. ED_OK or ED_ERROR. */
static int
ed_v2_websocket_head(ed_v2_stream_t *st)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char     key[18];
    char             *text;
    size_t            i;

    if (RAND_bytes(key, 16) != 1) {
        return ED_ERROR;
    }
    text = ed_pnalloc(st->r->pool, 24);
    if (text == NULL) {
        return ED_ERROR;
    }
    key[16] = key[17] = 0;
    for (i = 0; i < 6; i++) {
        uint32_t v = (uint32_t)key[3 * i] << 16 | (uint32_t)key[3 * i + 1] << 8
                     | key[3 * i + 2];

        text[4 * i] = b64[v >> 18 & 63];
        text[4 * i + 1] = b64[v >> 12 & 63];
        text[4 * i + 2] = b64[v >> 6 & 63];
        text[4 * i + 3] = b64[v & 63];
    }
    text[22] = text[23] = '=';
    st->method.data = "GET";
    st->method.len = 3;
    if (ed_v2_keep(st, "connection", 10, "upgrade", 7) != ED_OK
        || ed_v2_keep(st, "upgrade", 7, "websocket", 9) != ED_OK
        || ed_v2_keep(st, "sec-websocket-key", 17, text, 24) != ED_OK)
    {
        return ED_ERROR;
    }
    return ED_OK;
}

/* $request and $request_method say what the client sent: "CONNECT". */
static int
ed_v2_websocket_line(ed_v2_stream_t *st, const ed_str_t *target)
{
    ed_http_request_t *r = st->r;
    size_t             n = 8 + target->len + sizeof(" HTTP/2.0\r\n") - 1;
    char              *p;

    p = ed_pnalloc(r->pool, n);
    if (p == NULL) {
        return ED_ERROR;
    }
    r->head.method.data = p;
    r->head.method.len = 7;
    r->head.line = p;
    r->head.line_len = n;
    r->head.method_id = ED_HTTP_CONNECT;
    r->connect_protocol = 1;
    p = ed_cpymem(p, "CONNECT ", 8);
    p = ed_cpymem(p, target->data, target->len);
    memcpy(p, " HTTP/2.0\r\n", 11);
    return ED_OK;
}

/* The request line as the logs and $request show it ("GET /x
 * HTTP/2.0\r\n", line bytes); method and target point into it. NULL
 * when out of memory. */
static char *
ed_v2_line(ed_v2_stream_t *st, const ed_str_t *target, size_t line)
{
    char *buf, *p;

    buf = ed_pnalloc(st->r->pool, line);
    if (buf == NULL) {
        return NULL;
    }
    p = ed_cpymem(buf, st->method.data, st->method.len);
    *p++ = ' ';
    p = ed_cpymem(p, target->data, target->len);
    memcpy(p, " HTTP/2.0\r\n", 11);
    return buf;
}

/* The request head from the decoded fields, in the order of the
 * HTTP/1.1 head they stand for (Host from :authority, the fields, the
 * cookie crumbs joined, a zero Content-Length), by the HTTP/1 parser's
 * rules for each (ed_http_head_*), as that head would be judged.
 * ED_OK or an HTTP status. */
static int
ed_v2_fill(ed_v2_stream_t *st, const ed_str_t *target, size_t line,
           bool zero)
{
    ed_http_request_t    *r = st->r;
    ed_http_req_head_t   *h = &r->head;
    ed_http_head_state_t  hs;
    ed_http_header_t     *f, *end;
    char                 *buf;
    int                   rc;

    if ((st->cookie.len
         && ed_v2_keep(st, "cookie", 6, st->cookie.data, st->cookie.len)
                != ED_OK)
        || (zero && ed_v2_keep(st, "content-length", 14, "0", 1) != ED_OK)
        || ed_v2_room(st, 0) != ED_OK)
    {
        return 500;
    }
    f = st->hdrs + 1;
    if (st->authority.data != NULL) {
        f--;
        ed_str_set(&f->name, "host");
        f->value = st->authority;
    }
    end = st->hdrs + st->nhdrs;
    buf = ed_v2_line(st, target, line);
    if (buf == NULL) {
        return 500;
    }
    /* The fields are judged in place: the array becomes the head's. */
    ed_http_head_begin(h, &hs, f, (size_t)r->clcf->max_headers);
    h->version = 11;
    h->line = buf;
    h->line_len = line;
    rc = ed_http_head_request(h, buf, st->method.len,
                              buf + st->method.len + 1, target->len);
    if (rc != ED_OK && h->method.data == NULL) {
        /* No request line by HTTP/1.1's grammar (a method that is no
         * token): none for $request either, as on HTTP/1.1. */
        h->line = NULL;
        h->line_len = 0;
    }
    for (; rc == ED_OK && f < end; f++) {
        if (st->ctl
            && ed_http_value_len(f->value.data, f->value.len) != f->value.len)
        {
            rc = 400;
            break;
        }
        rc = ed_http_head_field(h, &hs, f->name.data, f->name.len,
                                f->value.data, f->value.len);
    }
    if (rc == ED_OK) {
        rc = ed_http_head_verdict(h, &hs);
    }
    h->version = 20;
    return rc;
}

/* The request starts: its head filled from the fields, then served. */
void
ed_http_v2_start_request(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;
    ed_str_t          *target, host;
    SSL               *ssl;
    size_t             len, line, max = r->clcf->max_header_size;
    char              *buf;
    bool               zero;
    int                rc;

    st->started = 1;
    target = st->path.data ? &st->path : &st->authority;
    if (st->protocol.data != NULL && ed_v2_websocket_head(st) != ED_OK) {
        ed_http_finalize(r, 500);
        return;
    }
    line = st->method.len + 1 + target->len + sizeof(" HTTP/1.1\r\n") - 1;
    /* A POST, PUT or PATCH ended on its HEADERS has an empty body that
     * an upstream must not wait for: Content-Length: 0 says so. */
    zero = st->bodyless && !st->cl_seen
           && (ed_v2_is(st->method.data, st->method.len, "POST")
               || ed_v2_is(st->method.data, st->method.len, "PUT")
               || ed_v2_is(st->method.data, st->method.len, "PATCH"));
    len = line + (st->authority.data ? st->authority.len + 8 : 0)
          + st->flen + (st->cookie.len ? st->cookie.len + 10 : 0)
          + (zero ? sizeof("content-length: 0\r\n") - 1 : 0) + 2;
    r->head.head_len = len;
    if (line > max || st->too_large || len > max) {
        /* The head is measured as its HTTP/1.1 text: 414 when the
         * request line alone is over max_header_size. */
        buf = line <= max ? ed_v2_line(st, target, line) : NULL;
        if (buf != NULL) {
            r->head.method.data = buf;
            r->head.method.len = st->method.len;
            r->head.line = buf;
            r->head.line_len = line;
        }
        r->error = 1;
        ed_http_finalize(r, line > max ? 414 : 431);
        return;
    }
    rc = ed_v2_fill(st, target, line, zero);
    r->head.head_len = len;
    ed_http_underscores(r);
    if (rc == ED_OK && st->protocol.data != NULL
        && ed_v2_websocket_line(st, target) != ED_OK)
    {
        rc = 500;
    }
    if (rc != ED_OK) {
        r->error = 1;
        ed_http_finalize(r, rc);
        return;
    }
    if (st->protocol.data != NULL
        && !ed_v2_is(st->protocol.data, st->protocol.len, "websocket"))
    {
        /* An extended CONNECT for another protocol. */
        ed_http_finalize(r, 501);
        return;
    }
    /* The body: none after END_STREAM, a length, or until END_STREAM
     * (sent upstream chunked). */
    if (st->bodyless) {
        ed_http_decoder_init(&r->body_dec, ED_HTTP_BODY_NONE, 0);
    } else if (st->cl_seen) {
        ed_http_decoder_init(&r->body_dec, ED_HTTP_BODY_LENGTH,
                             st->content_length);
    } else {
        ed_http_decoder_init(&r->body_dec, ED_HTTP_BODY_CHUNKED, -1);
    }
    if (st->scheme.data != NULL
        && !ed_v2_is(st->scheme.data, st->scheme.len, "http")
        && !ed_v2_is(st->scheme.data, st->scheme.len, "https"))
    {
        r->error = 1;
        ed_http_finalize(r, 400);
        return;
    }
    /* Over TLS, an authority whose server has another certificate than
     * the handshake's is misdirected (RFC 9110 15.5.20). */
    ssl = ed_tls_ssl(&r->hc->c.stream);
    if (ssl != NULL && r->head.host.len
        && ed_http_host_parse(r->pool, &r->head.host, &host) == ED_OK)
    {
        ed_http_server_t *srv;

        srv = ed_http_find_server(ed_http_conn_addr(r->hc), r, &host);
        if (srv->tls_ctx != NULL && srv->tls_ctx != SSL_get_SSL_CTX(ssl)) {
            r->server = srv;
            r->loc_conf = srv->loc_conf;
            r->clcf = r->loc_conf[ed_http_core_module.index];
            ed_http_finalize(r, 421);
            return;
        }
    }
    ed_http_process(r);
}

#endif /* ED_HAVE_HTTP2 */
