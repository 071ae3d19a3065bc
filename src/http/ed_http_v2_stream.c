/* HTTP/2 streams as requests: the head checked (spec/http2.md,
 * Malformed) and turned into the HTTP/1.1 text the request core parses
 * (the same verdicts and sizes as HTTP/1.1), the request body under flow
 * control (a window reopens only as the handler takes the bytes), and
 * ed_http_v2_proto: the response as HEADERS and DATA frames pulled by
 * nghttp2 from a per-stream queue (file ranges stay file ranges). */
#include "ed_http_v2.h"
#include "ed_stats.h"
#include "ed_tls.h"

#include <openssl/rand.h>

#if ED_HAVE_HTTP2

/* A stream's output high water mark (spec: 64 KiB); low is a quarter. */
#define ED_V2_HIGH      (64 * 1024)
/* No DATA frame under min(this, the rest queued) for want of window. */
#define ED_V2_MIN_FRAME 1024

#define ed_v2_sess(st) ((st)->c->sess)
#define ed_cpymem(p, s, n) ((char *)memcpy(p, s, n) + (n))

static void ed_v2_end(ed_v2_stream_t *st);
static void ed_v2_on_send_timeout(ed_timer_t *t);
static void ed_v2_on_body_timeout(ed_timer_t *t);

/* Malformed requests: RST_STREAM(PROTOCOL_ERROR), an info line, 400 in
 * the access log, a token of the resets budget. */
static void
ed_v2_malformed(ed_v2_stream_t *st, const char *fmt, const char *what,
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

void
ed_http_v2_rst(ed_v2_stream_t *st, uint32_t code)
{
    ed_v2_chunk_t *ch;

    if (!st->closed && !st->rst_sent) {
        nghttp2_submit_rst_stream(ed_v2_sess(st), NGHTTP2_FLAG_NONE, st->id,
                                  code);
        st->rst_sent = 1;
    }
    /* Nothing more of the response goes out. */
    while ((ch = st->out) != NULL) {
        st->out = ch->next;
        free(ch);
    }
    st->out_last = NULL;
    st->out_bytes = 0;
    ed_http_v2_post(st->c);
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
    if (id > c->last_id) {
        c->last_id = id;
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
    st = calloc(1, sizeof(ed_v2_stream_t));
    r = st ? ed_http_request_new(c->hc, &ed_http_v2_proto) : NULL;
    if (r == NULL) {
        free(st);
        nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, id,
                                  NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    st->c = c;
    st->r = r;
    st->id = id;
    st->high = ED_V2_HIGH;
    st->timer.handler = ed_v2_on_send_timeout;
    st->timer.data = st;
    st->body_timer.handler = ed_v2_on_body_timeout;
    st->body_timer.data = st;
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

/* RFC 9113 8.2.1: no NUL, CR or LF; no leading or trailing SP/HTAB. */
static bool
ed_v2_value_ok(const uint8_t *v, size_t len)
{
    size_t i;

    if (len && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' '
                || v[len - 1] == '\t'))
    {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (v[i] == '\0' || v[i] == '\r' || v[i] == '\n') {
            return false;
        }
    }
    return true;
}

#define ed_v2_is(n, nl, lit)                                                 \
    ((nl) == sizeof(lit) - 1 && memcmp(n, lit, sizeof(lit) - 1) == 0)

/* A pseudo-header: stored once, before any regular field. */
static void
ed_v2_pseudo(ed_v2_stream_t *st, const uint8_t *name, size_t nlen,
             const uint8_t *value, size_t vlen)
{
    ed_http_request_t *r = st->r;
    ed_str_t          *slot;

    if (st->nfields || st->cookie.len) {
        ed_v2_malformed(st, "client sent pseudo-header \"%s\" after a "
                        "regular header in HTTP/2 request",
                        (const char *)name, nlen);
        return;
    }
    if (ed_v2_is(name, nlen, ":method")) {
        slot = &st->method;
    } else if (ed_v2_is(name, nlen, ":scheme")) {
        slot = &st->scheme;
    } else if (ed_v2_is(name, nlen, ":path")) {
        slot = &st->path;
    } else if (ed_v2_is(name, nlen, ":authority")) {
        slot = &st->authority;
    } else if (ed_v2_is(name, nlen, ":protocol")
               && st->c->conf->enable_connect_protocol)
    {
        slot = &st->protocol;
    } else {
        ed_v2_malformed(st, "client sent invalid pseudo-header \"%s\" in "
                        "HTTP/2 request", (const char *)name, nlen);
        return;
    }
    if (slot->data != NULL) {
        ed_v2_malformed(st, "client sent duplicate pseudo-header \"%s\" in "
                        "HTTP/2 request", (const char *)name, nlen);
        return;
    }
    if (!ed_v2_value_ok(value, vlen)) {
        ed_v2_malformed(st, "client sent invalid header \"%s\" in HTTP/2 "
                        "request", (const char *)name, nlen);
        return;
    }
    slot->data = ed_pstrdup(r->pool, (const char *)value, vlen);
    slot->len = vlen;
    st->text += vlen + 1;
}

/* Appends "name: value\r\n" to the fields kept for the head. */
static int
ed_v2_keep(ed_v2_stream_t *st, const char *name, size_t nlen,
           const char *value, size_t vlen)
{
    size_t  need = nlen + vlen + 4, size;
    char   *p;

    if (st->flen + need > st->fsize) {
        size = ed_max(st->fsize * 2, st->flen + need + 256);
        p = ed_pnalloc(st->r->pool, size);
        if (p == NULL) {
            return ED_ERROR;
        }
        if (st->flen) {
            memcpy(p, st->fields, st->flen);
        }
        st->fields = p;
        st->fsize = size;
    }
    p = st->fields + st->flen;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vlen);
    p += vlen;
    *p++ = '\r';
    *p++ = '\n';
    st->flen += need;
    return ED_OK;
}

int
ed_http_v2_on_header(nghttp2_session *sess, const nghttp2_frame *frame,
                     const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen, uint8_t flags, void *data)
{
    ed_v2_stream_t    *st;
    ed_http_request_t *r;
    size_t             max, n;
    char              *p;

    ed_unused(flags);
    ed_unused(data);
    st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    if (st == NULL || st->r == NULL || st->malformed != NULL) {
        return 0;  /* decoded all the same: HPACK stays in step */
    }
    r = st->r;
    if (st->headers_done) {
        /* Trailers: regular fields only, dropped. */
        if ((nlen && name[0] == ':') || !ed_v2_name_ok(name, nlen)
            || !ed_v2_value_ok(value, vlen))
        {
            ed_v2_malformed(st, "client sent invalid trailer \"%s\" in "
                            "HTTP/2 request", (const char *)name, nlen);
        }
        return 0;
    }
    if (nlen && name[0] == ':') {
        ed_v2_pseudo(st, name, nlen, value, vlen);
        return 0;
    }
    if (!ed_v2_name_ok(name, nlen) || !ed_v2_value_ok(value, vlen)
        || ed_v2_is(name, nlen, "connection")
        || ed_v2_is(name, nlen, "keep-alive")
        || ed_v2_is(name, nlen, "proxy-connection")
        || ed_v2_is(name, nlen, "transfer-encoding")
        || ed_v2_is(name, nlen, "upgrade")
        || (ed_v2_is(name, nlen, "te") && !ed_v2_is(value, vlen, "trailers")))
    {
        ed_v2_malformed(st, "client sent invalid header \"%s\" in HTTP/2 "
                        "request", (const char *)name, nlen);
        return 0;
    }
    if (ed_v2_is(name, nlen, "content-length")) {
        for (n = 0; n < vlen && value[n] >= '0' && value[n] <= '9'; n++) {
        }
        if (vlen == 0 || n != vlen || vlen > 18 || st->cl_seen) {
            ed_v2_malformed(st, "client sent invalid header \"%s\" in "
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
            ed_v2_malformed(st, "client sent invalid header \"%s\" in "
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
        /* Crumbs joined with "; " (RFC 9113 8.2.3), measured joined. */
        st->text += st->cookie.len ? 2 + vlen : nlen + 4 + vlen;
        if (st->text > max) {
            st->too_large = 1;
            return 0;
        }
        p = ed_pnalloc(r->pool, st->cookie.len + 2 + vlen);
        if (p == NULL) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        if (st->cookie.len) {
            memcpy(p, st->cookie.data, st->cookie.len);
            memcpy(p + st->cookie.len, "; ", 2);
            memcpy(p + st->cookie.len + 2, value, vlen);
            st->cookie.len += 2 + vlen;
        } else {
            memcpy(p, value, vlen);
            st->cookie.len = vlen;
            st->nfields++;
        }
        st->cookie.data = p;
        return 0;
    }
    st->text += nlen + vlen + 4;
    if (st->text > max || st->nfields >= (unsigned)r->clcf->max_headers) {
        /* Decoded, not kept: the verdict is 431. */
        st->too_large = 1;
        return 0;
    }
    if (ed_v2_keep(st, (const char *)name, nlen, (const char *)value, vlen)
        != ED_OK)
    {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
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
            ed_v2_malformed(st, "client sent trailers without END_STREAM "
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
        ed_v2_malformed(st, "client sent invalid pseudo-header \"%s\" in "
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

        ed_v2_malformed(st, "client sent no \"%s\" pseudo-header in "
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
        ed_v2_malformed(st, "client sent invalid \"%s\" pseudo-header in "
                        "HTTP/2 request", ":path", 5);
        return;
    }
    if ((st->authority.data == NULL && !st->host_seen)
        || (st->authority.data != NULL
            && (st->authority.len == 0
                || memchr(st->authority.data, '@', st->authority.len))))
    {
        ed_v2_malformed(st, "client sent invalid \"%s\" pseudo-header in "
                        "HTTP/2 request", ":authority", 10);
        return;
    }
    if (st->authority.data != NULL && st->host.data != NULL
        && !ed_v2_same_authority(&st->authority, &st->host, &st->scheme))
    {
        ed_v2_malformed(st, "client sent \"%s\" unlike :authority in "
                        "HTTP/2 request", "host", 4);
        return;
    }
    if (end_stream && st->cl_seen && st->content_length > 0) {
        ed_v2_malformed(st, "client sent END_STREAM short of "
                        "\"%s\" in HTTP/2 request", "content-length", 14);
        return;
    }
    st->in_end = end_stream;
    st->bodyless = end_stream;
    st->start_due = 1;
    ed_http_v2_pending(st);
}

/* DATA: kept (unacknowledged) until the handler takes it. */
int
ed_http_v2_on_data(nghttp2_session *sess, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *user)
{
    ed_v2_stream_t *st;
    ed_v2_chunk_t  *ch;

    ed_unused(flags);
    ed_unused(user);
    st = nghttp2_session_get_stream_user_data(sess, id);
    if (st == NULL || st->r == NULL || st->malformed != NULL || st->done) {
        /* Late DATA: consumed, the window stays open. */
        nghttp2_session_consume(sess, id, len);
        return 0;
    }
    st->in_total += (int64_t)len;
    if (st->cl_seen && st->in_total > st->content_length) {
        nghttp2_session_consume(sess, id, len);
        ed_v2_malformed(st, "client sent DATA over \"%s\" in HTTP/2 "
                        "request", "content-length", 14);
        return 0;
    }
    if (len == 0) {
        return 0;
    }
    ch = malloc(sizeof(ed_v2_chunk_t) + len);
    if (ch == NULL) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    ch->next = NULL;
    ch->len = len;
    ch->pos = 0;
    ch->fd = -1;
    ch->off = 0;
    memcpy(ch->data, data, len);
    if (st->in_last) {
        st->in_last->next = ch;
    } else {
        st->in = ch;
    }
    st->in_last = ch;
    st->in_bytes += len;
    if (st->reading && !st->body_paused) {
        st->body_due = 1;
        ed_http_v2_pending(st);
    }
    return 0;
}

void
ed_http_v2_data_end(ed_v2_stream_t *st)
{
    if (st->r == NULL || st->malformed != NULL || st->done) {
        st->in_end = 1;
        return;
    }
    if (st->cl_seen && st->in_total != st->content_length) {
        ed_v2_malformed(st, "client sent END_STREAM short of \"%s\" in "
                        "HTTP/2 request", "content-length", 14);
        return;
    }
    st->in_end = 1;
    if (st->reading) {
        st->body_due = 1;
        ed_http_v2_pending(st);
    }
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
    char              text[25];
    size_t            i;

    if (RAND_bytes(key, 16) != 1) {
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
    text[24] = '\0';
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
    r->head.line_len = n;
    r->head.method_id = ED_HTTP_CONNECT;
    r->connect_protocol = 1;
    p = ed_cpymem(p, "CONNECT ", 8);
    p = ed_cpymem(p, target->data, target->len);
    memcpy(p, " HTTP/2.0\r\n", 11);
    return ED_OK;
}

/* The request starts: the head as HTTP/1.1 text, parsed by the request
 * core's parser, then served. */
static void
ed_v2_start(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;
    ed_http_header_t  *hdrs;
    ed_str_t          *target, host;
    SSL               *ssl;
    size_t             len, line, max = r->clcf->max_header_size;
    char              *buf, *p;
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
        buf = ed_pnalloc(r->pool, line);
        if (buf != NULL && line <= max) {
            p = ed_cpymem(buf, st->method.data, st->method.len);
            *p++ = ' ';
            p = ed_cpymem(p, target->data, target->len);
            memcpy(p, " HTTP/2.0\r\n", 11);
            r->head.method.data = buf;
            r->head.method.len = st->method.len;
            r->head.line_len = line;
        }
        r->error = 1;
        ed_http_finalize(r, line > max ? 414 : 431);
        return;
    }
    buf = ed_pnalloc(r->pool, len);
    hdrs = ed_palloc(r->pool, (size_t)r->clcf->max_headers
                                  * sizeof(ed_http_header_t));
    if (buf == NULL || hdrs == NULL) {
        ed_http_finalize(r, 500);
        return;
    }
    p = ed_cpymem(buf, st->method.data, st->method.len);
    *p++ = ' ';
    p = ed_cpymem(p, target->data, target->len);
    p = ed_cpymem(p, " HTTP/1.1\r\n", 11);
    if (st->authority.data) {
        p = ed_cpymem(p, "host: ", 6);
        p = ed_cpymem(p, st->authority.data, st->authority.len);
        p = ed_cpymem(p, "\r\n", 2);
    }
    if (st->flen) {
        p = ed_cpymem(p, st->fields, st->flen);
    }
    if (st->cookie.len) {
        p = ed_cpymem(p, "cookie: ", 8);
        p = ed_cpymem(p, st->cookie.data, st->cookie.len);
        p = ed_cpymem(p, "\r\n", 2);
    }
    if (zero) {
        p = ed_cpymem(p, "content-length: 0\r\n", 19);
    }
    p = ed_cpymem(p, "\r\n", 2);
    rc = ed_http_parse_request(buf, (size_t)(p - buf), &r->head, hdrs,
                               (size_t)r->clcf->max_headers);
    /* $request and the logs say what the client spoke. */
    memcpy(buf + line - 5, "2.0", 3);
    r->head.version = 20;
    r->head.head_len = (size_t)(p - buf);
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

/* The request body. */

static void
ed_v2_body_fail(ed_v2_stream_t *st, int rc)
{
    ed_http_request_t *r = st->r;

    st->body_stopped = 1;
    st->reading = 0;
    ed_timer_del(ed_worker->loop, &st->body_timer);
    st->body_cb(r, st->body_data, rc, NULL, 0);
}

static void
ed_v2_on_body_timeout(ed_timer_t *t)
{
    ed_v2_stream_t *st = t->data;

    if (st->r != NULL && st->reading && !st->body_stopped) {
        ed_v2_body_fail(st, 408);
    }
}

/* Hands what was received to the handler, acknowledging it. */
static void
ed_v2_body_deliver(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;
    ed_v2_chunk_t     *ch;
    size_t             max;
    bool               last;

    while (st->r == r && st->reading && !st->body_paused
           && !st->body_stopped)
    {
        ch = st->in;
        if (ch == NULL && !st->in_end) {
            if (r->clcf->client_body_timeout > 0) {
                ed_timer_add(ed_worker->loop, &st->body_timer,
                             r->clcf->client_body_timeout);
            }
            return;
        }
        ed_timer_del(ed_worker->loop, &st->body_timer);
        if (ch != NULL) {
            st->in = ch->next;
            if (st->in == NULL) {
                st->in_last = NULL;
            }
            st->in_bytes -= ch->len;
            r->body_dec.total += (int64_t)ch->len;
            if (r->body_dec.left > 0) {
                r->body_dec.left -= ed_min(r->body_dec.left,
                                           (int64_t)ch->len);
            }
            nghttp2_session_consume(ed_v2_sess(st), st->id, ch->len);
        }
        max = r->clcf->client_max_body_size;
        if (max && r->body_dec.total > (int64_t)max) {
            free(ch);
            if (r->header_sent) {
                st->cancelled = 1;
            }
            ed_v2_body_fail(st, 413);
            return;
        }
        last = st->in == NULL && st->in_end;
        if (last) {
            r->body_dec.left = 0;
            st->body_stopped = 1;
            st->reading = 0;
        }
        st->body_cb(r, st->body_data, last ? ED_DONE : ED_OK,
                    ch ? ch->data : NULL, ch ? ch->len : 0);
        free(ch);
        if (last) {
            return;
        }
    }
}

static int
ed_v2_read_body(ed_http_request_t *r, ed_http_body_pt cb, void *data)
{
    ed_v2_stream_t *st = r->v2;
    nghttp2_nv      nv = { (uint8_t *)":status", (uint8_t *)"100", 7, 3,
                           NGHTTP2_NV_FLAG_NONE };

    if (!ed_http_has_body(r)) {
        return ED_DONE;
    }
    if (st->reading && !st->body_stopped) {
        return ED_ERROR;
    }
    if (r->head.expect_continue && !r->header_sent) {
        /* The client waits for this before sending its body. */
        if (nghttp2_submit_headers(ed_v2_sess(st), NGHTTP2_FLAG_NONE, st->id,
                                   NULL, &nv, 1, NULL) < 0)
        {
            return ED_ERROR;
        }
        r->head.expect_continue = 0;
    }
    st->body_cb = cb;
    st->body_data = data;
    st->reading = 1;
    st->body_paused = 0;
    st->body_stopped = 0;
    st->body_due = 1;
    ed_http_v2_pending(st);
    return ED_OK;
}

static void
ed_v2_body_pause(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    if (st->reading && !st->body_stopped) {
        st->body_paused = 1;
        ed_timer_del(ed_worker->loop, &st->body_timer);
    }
}

static void
ed_v2_body_resume(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    if (st->reading && !st->body_stopped && st->body_paused) {
        st->body_paused = 0;
        st->body_due = 1;
        ed_http_v2_pending(st);
    }
}

static void
ed_v2_body_stop(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    st->body_stopped = 1;
    st->reading = 0;
    st->body_paused = 0;
    ed_timer_del(ed_worker->loop, &st->body_timer);
}

/* The response. */

static bool
ed_v2_hop_by_hop(const ed_str_t *n)
{
    return ed_str_caseeq(n, "connection") || ed_str_caseeq(n, "keep-alive")
           || ed_str_caseeq(n, "proxy-connection")
           || ed_str_caseeq(n, "transfer-encoding")
           || ed_str_caseeq(n, "upgrade");
}

static void
ed_v2_nv(nghttp2_nv *nv, const char *n, size_t nl, const char *v, size_t vl)
{
    nv->name = (uint8_t *)n;
    nv->namelen = nl;
    nv->value = (uint8_t *)v;
    nv->valuelen = vl;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

static int
ed_v2_queue(ed_v2_stream_t *st, const ed_http_piece_t *p)
{
    ed_v2_chunk_t *ch;

    ch = malloc(sizeof(ed_v2_chunk_t) + (p->fd < 0 ? p->len : 0));
    if (ch == NULL) {
        return ED_ERROR;
    }
    ch->next = NULL;
    ch->len = p->len;
    ch->pos = 0;
    ch->fd = p->fd;
    ch->off = p->off;
    if (p->fd < 0) {
        memcpy(ch->data, p->data, p->len);
    }
    if (st->out_last) {
        st->out_last->next = ch;
    } else {
        st->out = ch;
    }
    st->out_last = ch;
    st->out_bytes += p->len;
    return ED_OK;
}

static void
ed_v2_resume(ed_v2_stream_t *st)
{
    if (st->deferred && !st->closed) {
        st->deferred = 0;
        nghttp2_session_resume_data(ed_v2_sess(st), st->id);
    }
    ed_http_v2_post(st->c);
}

static int
ed_v2_head(ed_http_request_t *r, const void *body, size_t len)
{
    ed_v2_stream_t       *st = r->v2;
    ed_http_out_header_t *h = r->headers_out.elts;
    nghttp2_data_provider dp;
    nghttp2_nv           *nva, *nv;
    ed_http_piece_t       piece;
    char                 *status, *cl, *name;
    size_t                i, j;
    bool                  has_body, none;

    has_body = ed_http_status_has_body(r->status);
    if (r->head_only || !has_body) {
        len = 0;
    }
    r->header_sent = 1;
    if (st->closed || st->rst_sent) {
        return ED_OK;  /* nobody to answer: the request ends soon */
    }
    nva = ed_palloc(r->pool, (r->headers_out.nelts + 5) * sizeof(nghttp2_nv));
    status = ed_pnalloc(r->pool, 4 + 21);
    if (nva == NULL || status == NULL) {
        return ED_ERROR;
    }
    nv = nva;
    status[0] = (char)('0' + r->status / 100 % 10);
    status[1] = (char)('0' + r->status / 10 % 10);
    status[2] = (char)('0' + r->status % 10);
    ed_v2_nv(nv++, ":status", 7, status, 3);
    if (r->clcf->server_tokens) {
        ed_v2_nv(nv++, "server", 6, "eddy/" ED_VERSION,
                 sizeof("eddy/" ED_VERSION) - 1);
    } else {
        ed_v2_nv(nv++, "server", 6, "eddy", 4);
    }
    ed_v2_nv(nv++, "date", 4, ed_cached_http_time.data,
             ed_cached_http_time.len);
    if (r->content_type.len && has_body) {
        ed_v2_nv(nv++, "content-type", 12, r->content_type.data,
                 r->content_type.len);
    }
    if (!has_body) {
        r->content_length = -1;
    } else if (r->content_length >= 0) {
        cl = status + 4;
        ed_v2_nv(nv++, "content-length", 14, cl,
                 (size_t)(ed_sprint_u64(cl, (uint64_t)r->content_length)
                          - cl));
    }
    r->bytes_sent += 20 + ed_cached_http_time.len + r->content_type.len;
    for (i = 0; i < r->headers_out.nelts; i++) {
        if (ed_v2_hop_by_hop(&h[i].name)) {
            continue;
        }
        name = ed_pnalloc(r->pool, h[i].name.len);
        if (name == NULL) {
            return ED_ERROR;
        }
        for (j = 0; j < h[i].name.len; j++) {
            name[j] = ed_tolower(h[i].name.data[j]);
        }
        ed_v2_nv(nv++, name, h[i].name.len, h[i].value.data, h[i].value.len);
        r->bytes_sent += h[i].name.len + h[i].value.len + 4;
    }
    none = r->head_only || !has_body
           || (len == 0 && r->content_length == 0);
    if (len) {
        piece.data = body;
        piece.len = len;
        piece.fd = -1;
        piece.off = 0;
        if (ed_v2_queue(st, &piece) != ED_OK) {
            return ED_ERROR;
        }
        r->body_bytes_sent += len;
        r->bytes_sent += len;
        st->out_end = 1;
    }
    if (none) {
        /* END_STREAM rides on HEADERS. */
        st->out_end = 1;
        st->eof_sent = 1;
        if (nghttp2_submit_response(ed_v2_sess(st), st->id, nva,
                                    (size_t)(nv - nva), NULL) != 0)
        {
            return ED_ERROR;
        }
    } else {
        dp.source.ptr = st;
        dp.read_callback = ed_http_v2_data_read;
        st->provider = 1;
        if (len == 0) {
            /* The end comes from ed_http_output_end. */
            r->chunked_out = 1;
        }
        if (nghttp2_submit_response(ed_v2_sess(st), st->id, nva,
                                    (size_t)(nv - nva), &dp) != 0)
        {
            return ED_ERROR;
        }
    }
    ed_http_v2_post(st->c);
    return ED_OK;
}

static int
ed_v2_piece(ed_http_request_t *r, const ed_http_piece_t *p)
{
    ed_v2_stream_t *st = r->v2;

    r->body_bytes_sent += p->len;
    r->bytes_sent += p->len;
    if (st->closed || st->rst_sent || st->out_end) {
        return ED_OK;
    }
    if (ed_v2_queue(st, p) != ED_OK) {
        return ED_ERROR;
    }
    if (p->fd >= 0) {
        r->out_file = 1;
    }
    ed_v2_resume(st);
    return ED_OK;
}

static int
ed_v2_end_body(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    st->out_end = 1;
    ed_v2_resume(st);
    return ED_OK;
}

ssize_t
ed_http_v2_data_read(nghttp2_session *sess, int32_t id, uint8_t *buf,
                     size_t length, uint32_t *flags,
                     nghttp2_data_source *src, void *user)
{
    ed_v2_stream_t *st = src->ptr;
    ed_v2_chunk_t  *ch = st->out;
    size_t          n;

    ed_unused(sess);
    ed_unused(id);
    ed_unused(buf);
    ed_unused(user);
    if (ch == NULL) {
        if (st->out_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            st->eof_sent = 1;
            return 0;
        }
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (length < ED_V2_MIN_FRAME && length < st->out_bytes) {
        /* A window this small: wait for more rather than dribble. */
        st->deferred = 1;
        st->window_wait = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    n = ed_min(length, ch->len);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->out_bytes && st->out_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        st->eof_sent = 1;
    }
    return (ssize_t)n;
}

/* A DATA frame goes out: its header, then the bytes, a file range
 * staying a file range (sendfile on cleartext). */
int
ed_http_v2_send_data(nghttp2_session *sess, nghttp2_frame *frame,
                     const uint8_t *framehd, size_t length,
                     nghttp2_data_source *src, void *user)
{
    ed_v2_stream_t *st = src->ptr;
    ed_v2_conn_t   *c = user;
    ed_stream_t    *s = &c->hc->c.stream;
    ed_v2_chunk_t  *ch;
    size_t          k;

    ed_unused(sess);
    if (frame->data.padlen) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (ed_stream_write_blocked(s)) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (ed_stream_write(s, framehd, 9) != ED_OK) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    c->queued_total += 9;
    while (length && (ch = st->out) != NULL) {
        k = ed_min(length, ch->len);
        if (ch->fd < 0) {
            if (ed_stream_write(s, ch->data + ch->pos, k) != ED_OK) {
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
        } else {
            if (ed_stream_write_file(s, ch->fd, (off_t)ch->off, k) != ED_OK) {
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
            ch->off += (int64_t)k;
            st->file_sent = 1;
        }
        c->queued_total += k;
        if (ch->fd >= 0) {
            st->file_mark = c->queued_total;
        }
        ch->pos += k;
        ch->len -= k;
        st->out_bytes -= k;
        length -= k;
        if (ch->len == 0) {
            st->out = ch->next;
            if (st->out == NULL) {
                st->out_last = NULL;
            }
            free(ch);
        }
    }
    if (st->drain_on && st->out_bytes <= st->high / 4) {
        st->drain_due = 1;
        ed_http_v2_pending(st);
    }
    if (st->flush_on && st->out == NULL) {
        ed_http_v2_pending(st);
    }
    return 0;
}

static bool
ed_v2_blocked(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    return st->out_bytes >= st->high;
}

static size_t
ed_v2_queued(ed_http_request_t *r)
{
    return r->v2->out_bytes;
}

/* Written: nothing queued on the stream, and the file ranges it gave
 * the connection's queue are out (their descriptors close with r). */
static bool
ed_v2_written(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    return st->out == NULL && ed_http_v2_files_out(st);
}

static void
ed_v2_notify_drain(ed_http_request_t *r, bool on)
{
    r->v2->drain_on = on;
}

static void
ed_v2_notify_flushed(ed_http_request_t *r)
{
    r->v2->flush_on = 1;
    ed_http_v2_pending(r->v2);
}

static void
ed_v2_buffer(ed_http_request_t *r, size_t size)
{
    r->v2->high = size;
}

static ed_timer_t *
ed_v2_timer(ed_http_request_t *r)
{
    return &r->v2->timer;
}

/* send_timeout on a stream: the connection stalled (its window at 0 or
 * its queue not taken) closes; one stream's window at 0 resets it. */
static void
ed_v2_on_send_timeout(ed_timer_t *t)
{
    ed_v2_stream_t    *st = t->data;
    ed_http_request_t *r = st->r;
    ed_v2_conn_t      *c = st->c;

    if (r == NULL || ed_http_output_timeout(r)) {
        return;
    }
    if (nghttp2_session_get_remote_window_size(c->sess) <= 0
        || ed_stream_write_blocked(&c->hc->c.stream))
    {
        c->closing = 1;
        ed_http_v2_post(c);
        return;
    }
    ed_http_v2_rst(st, NGHTTP2_CANCEL);
    st->abort_due = 1;
    ed_http_v2_pending(st);
}

/* The end of a stream's request. */

/* Lets the request go: the log phase was run; the pool goes (its
 * cleanups close files and upstreams) unless file ranges of it are
 * still queued on the connection. */
static void
ed_v2_release(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;
    ed_v2_conn_t      *c = st->c;
    ed_v2_chunk_t     *ch;

    ed_timer_del(ed_worker->loop, &st->timer);
    ed_timer_del(ed_worker->loop, &st->body_timer);
    st->r = NULL;
    st->done = 1;
    r->v2 = NULL;
    /* What the handler did not take: consumed, the window reopens. */
    while ((ch = st->in) != NULL) {
        st->in = ch->next;
        if (!st->closed) {
            nghttp2_session_consume(c->sess, st->id, ch->len);
        } else {
            nghttp2_session_consume_connection(c->sess, ch->len);
        }
        free(ch);
    }
    st->in_last = NULL;
    st->in_bytes = 0;
    c->nstreams--;
    ed_stats_v2(streams_active, -1);
    if (!ed_http_v2_files_out(st)) {
        st->pool = r->pool;
    } else {
        ed_http_pool_put(r->pool);
    }
    ed_http_v2_arm(c);
    ed_http_v2_pending(st);
}

/* proto->done: the response is out. */
static void
ed_v2_done(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    if (!st->closed && !st->rst_sent) {
        if (st->cancelled) {
            ed_http_v2_rst(st, NGHTTP2_CANCEL);
        } else if (r->tunnel_error) {
            /* RFC 8441 (RFC 9113 8.5): the upstream of a tunnel failed. */
            ed_http_v2_rst(st, NGHTTP2_CONNECT_ERROR);
        } else if (!r->header_sent || (!st->out_end && !st->eof_sent)) {
            /* A body that ended early must not look complete. */
            ed_http_v2_rst(st, NGHTTP2_INTERNAL_ERROR);
        } else {
            st->out_end = 1;
            ed_v2_resume(st);
        }
    }
    ed_v2_end(st);
}

/* proto->fail: the response cannot be completed. */
static void
ed_v2_fail(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    ed_http_v2_rst(st, NGHTTP2_INTERNAL_ERROR);
    ed_v2_end(st);
}

static void
ed_v2_end(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;

    st->reading = 0;
    st->body_stopped = 1;
    r->finalized = 1;
    ed_http_log_phase(r);
    ed_v2_release(st);
}

void
ed_http_v2_stream_abort(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;

    if (r == NULL) {
        return;
    }
    if (!st->closed && !st->rst_sent) {
        ed_http_v2_rst(st, NGHTTP2_CANCEL);
    }
    if (!r->header_sent && st->malformed == NULL && r->status == 0) {
        /* The client went away before the response (nginx's 499). */
        r->status = 499;
    }
    ed_v2_end(st);
}

void
ed_http_v2_stream_free(ed_v2_stream_t *st)
{
    ed_v2_chunk_t *ch;

    while ((ch = st->out) != NULL) {
        st->out = ch->next;
        free(ch);
    }
    while ((ch = st->in) != NULL) {
        st->in = ch->next;
        free(ch);
    }
    if (st->pool != NULL) {
        ed_http_pool_put(st->pool);
    }
    free(st);
}

/* What is due on a stream, from the connection's dispatch. */
void
ed_http_v2_stream_run(ed_v2_stream_t *st)
{
    ed_http_request_t *r = st->r;

    if (r != NULL && (st->abort_due || (st->closed && !st->eof_sent))) {
        ed_http_v2_stream_abort(st);
        r = NULL;
    }
    if (r != NULL && st->start_due) {
        st->start_due = 0;
        ed_v2_start(st);
        r = st->r;
    }
    if (r != NULL && st->body_due) {
        st->body_due = 0;
        ed_v2_body_deliver(st);
        r = st->r;
    }
    if (r != NULL && st->drain_due) {
        st->drain_due = 0;
        if (st->drain_on) {
            st->drain_on = 0;
            ed_http_output_drained(r);
            r = st->r;
        }
    }
    if (r != NULL && st->flush_on && ed_v2_written(r)) {
        st->flush_on = 0;
        ed_http_output_flushed(r);
        r = st->r;
    }
    if (r == NULL && st->closed) {
        ed_http_v2_stream_unlink(st);
        if (st->pool != NULL) {
            ed_http_v2_zombie(st);
        } else {
            ed_http_v2_stream_free(st);
        }
    }
}

/* After a frame with END_STREAM went out: a request body still
 * arriving is not wanted (RFC 9113 8.1). */
void
ed_http_v2_sent_end(ed_v2_stream_t *st)
{
    if (!st->in_end && !st->rst_sent && !st->closed) {
        nghttp2_submit_rst_stream(ed_v2_sess(st), NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_NO_ERROR);
        st->rst_sent = 1;
    }
}

/* WINDOW_UPDATE: streams waiting for window go on. */
void
ed_http_v2_window(ed_v2_conn_t *c, int32_t id)
{
    ed_v2_stream_t *st;

    for (st = c->streams; st; st = st->next) {
        if (st->window_wait && (id == 0 || st->id == id)) {
            st->window_wait = 0;
            ed_v2_resume(st);
        }
    }
}

const ed_http_proto_t ed_http_v2_proto = {
    .name = "HTTP/2.0",
    .head = ed_v2_head,
    .piece = ed_v2_piece,
    .end = ed_v2_end_body,
    .blocked = ed_v2_blocked,
    .queued = ed_v2_queued,
    .written = ed_v2_written,
    .notify_drain = ed_v2_notify_drain,
    .notify_flushed = ed_v2_notify_flushed,
    .buffer = ed_v2_buffer,
    .timer = ed_v2_timer,
    .read_body = ed_v2_read_body,
    .body_pause = ed_v2_body_pause,
    .body_resume = ed_v2_body_resume,
    .body_stop = ed_v2_body_stop,
    .done = ed_v2_done,
    .fail = ed_v2_fail,
};

#endif /* ED_HAVE_HTTP2 */
