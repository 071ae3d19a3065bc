/* HTTP/2 streams as requests (the head is in ed_http_v2_head.c): the
 * request body under flow control (a window reopens only as the handler
 * takes the bytes), and ed_http_v2_proto: the response as HEADERS and
 * DATA frames pulled by nghttp2 from a per-stream queue (file ranges
 * stay file ranges). */
#include "ed_http_v2.h"
#include "ed_stats.h"
#include "ed_tls.h"

#if ED_HAVE_HTTP2

/* A stream's output high water mark (spec: 64 KiB); low is a quarter. */
#define ED_V2_HIGH      (64 * 1024)
/* No DATA frame under min(this, the rest queued) for want of window. */
#define ED_V2_MIN_FRAME 1024

#define ed_v2_sess(st) ((st)->c->sess)

static void ed_v2_end(ed_v2_stream_t *st);
static void ed_v2_on_send_timeout(ed_timer_t *t);
static void ed_v2_on_body_timeout(ed_timer_t *t);

void
ed_http_v2_stream_init(ed_v2_stream_t *st)
{
    st->high = ED_V2_HIGH;
    st->timer.handler = ed_v2_on_send_timeout;
    st->timer.data = st;
    st->body_timer.handler = ed_v2_on_body_timeout;
    st->body_timer.data = st;
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
        ed_http_v2_release(ch);
    }
    st->out_last = NULL;
    st->out_bytes = 0;
    ed_http_v2_post(st->c);
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
        ed_http_v2_malformed(st, "client sent DATA over \"%s\" in HTTP/2 "
                        "request", "content-length", 14);
        return 0;
    }
    if (len == 0) {
        return 0;
    }
    ch = ed_http_v2_alloc(sizeof(ed_v2_chunk_t) + len);
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
        ed_http_v2_malformed(st, "client sent END_STREAM short of \"%s\" in "
                        "HTTP/2 request", "content-length", 14);
        return;
    }
    st->in_end = 1;
    if (st->reading) {
        st->body_due = 1;
        ed_http_v2_pending(st);
    }
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
            ed_http_v2_release(ch);
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
        ed_http_v2_release(ch);
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

/* The fields no HTTP/2 response carries (RFC 9113 8.2.2); TE and
 * Trailer may go. One switch on the length, not a compare per name. */
static bool
ed_v2_hop_by_hop(const ed_str_t *n)
{
    return (ED_HTTP_F_BIT(ed_http_field_id(n->data, n->len))
            & (ED_HTTP_F_BIT(ED_HTTP_F_CONNECTION)
               | ED_HTTP_F_BIT(ED_HTTP_F_KEEP_ALIVE)
               | ED_HTTP_F_BIT(ED_HTTP_F_PROXY_CONNECTION)
               | ED_HTTP_F_BIT(ED_HTTP_F_TRANSFER_ENCODING)
               | ED_HTTP_F_BIT(ED_HTTP_F_UPGRADE)))
           != 0;
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

/* A field whose name (and value, with NO_COPY_VALUE) is a literal:
 * nghttp2 keeps the pointer rather than a copy (the memory outlives the
 * session). */
static void
ed_v2_nv_lit(nghttp2_nv *nv, const char *n, size_t nl, const char *v,
             size_t vl, uint8_t flags)
{
    ed_v2_nv(nv, n, nl, v, vl);
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | flags;
}

/* The lower-case name of a field static handlers and the proxy add
 * most, as a literal (no copy made per response); NULL for the rest.
 * The spelling eddy's handlers write is compared first, a compare of a
 * constant length that needs no call. */
static const char *
ed_v2_common_name(const char *n, size_t len)
{
    static const char *const names[] = {
        "etag", "vary", "expires", "location", "last-modified",
        "accept-ranges", "cache-control", "content-range",
        "content-encoding",
    };
    size_t i;

    switch (len) {
    case 4:
        if (memcmp(n, "ETag", 4) == 0) {
            return names[0];
        }
        break;
    case 13:
        if (memcmp(n, "Last-Modified", 13) == 0) {
            return names[4];
        }
        if (memcmp(n, "Accept-Ranges", 13) == 0) {
            return names[5];
        }
        break;
    }

    switch (len) {
    case 4: i = (ed_tolower(n[0]) == 'e') ? 0 : 1; break;
    case 7: i = 2; break;
    case 8: i = 3; break;
    case 13:
        i = ed_tolower(n[0]) == 'l' ? 4
            : ed_tolower(n[0]) == 'a' ? 5
            : ed_tolower(n[1]) == 'a' ? 6 : 7;
        break;
    case 16: i = 8; break;
    default: return NULL;
    }
    return strncasecmp(n, names[i], len) == 0 ? names[i] : NULL;
}

static int
ed_v2_queue(ed_v2_stream_t *st, const ed_http_piece_t *p)
{
    ed_v2_chunk_t *ch;

    ch = ed_http_v2_alloc(sizeof(ed_v2_chunk_t) + (p->fd < 0 ? p->len : 0));
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
    const char           *lit;
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
    if (r->status == 200) {
        ed_v2_nv_lit(nv++, ":status", 7, "200", 3,
                     NGHTTP2_NV_FLAG_NO_COPY_VALUE);
    } else {
        status[0] = (char)('0' + r->status / 100 % 10);
        status[1] = (char)('0' + r->status / 10 % 10);
        status[2] = (char)('0' + r->status % 10);
        ed_v2_nv_lit(nv++, ":status", 7, status, 3, 0);
    }
    if (r->clcf->server_tokens) {
        ed_v2_nv_lit(nv++, "server", 6, "eddy/" ED_VERSION,
                     sizeof("eddy/" ED_VERSION) - 1,
                     NGHTTP2_NV_FLAG_NO_COPY_VALUE);
    } else {
        ed_v2_nv_lit(nv++, "server", 6, "eddy", 4,
                     NGHTTP2_NV_FLAG_NO_COPY_VALUE);
    }
    /* The cached date's buffer is rewritten each second: copied. */
    ed_v2_nv_lit(nv++, "date", 4, ed_cached_http_time.data,
                 ed_cached_http_time.len, 0);
    if (r->content_type.len && has_body) {
        ed_v2_nv_lit(nv++, "content-type", 12, r->content_type.data,
                     r->content_type.len, 0);
    }
    if (!has_body) {
        r->content_length = -1;
    } else if (r->content_length >= 0) {
        cl = status + 4;
        ed_v2_nv_lit(nv++, "content-length", 14, cl,
                     (size_t)(ed_sprint_u64(cl, (uint64_t)r->content_length)
                              - cl), 0);
    }
    r->bytes_sent += 20 + ed_cached_http_time.len + r->content_type.len;
    for (i = 0; i < r->headers_out.nelts; i++) {
        if (ed_v2_hop_by_hop(&h[i].name)) {
            continue;
        }
        lit = ed_v2_common_name(h[i].name.data, h[i].name.len);
        if (lit != NULL) {
            ed_v2_nv_lit(nv++, lit, h[i].name.len, h[i].value.data,
                         h[i].value.len, 0);
        } else {
            name = ed_pnalloc(r->pool, h[i].name.len);
            if (name == NULL) {
                return ED_ERROR;
            }
            for (j = 0; j < h[i].name.len; j++) {
                name[j] = ed_tolower(h[i].name.data[j]);
            }
            ed_v2_nv(nv++, name, h[i].name.len, h[i].value.data,
                     h[i].value.len);
        }
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

/* Keeps r->trailers_out ("name: value\r\n"..., lower-case names) as
 * the stream's nghttp2_nv array: the request may be gone when the data
 * provider reaches the end. ED_OK or ED_ERROR. */
static int
ed_v2_keep_trailers(ed_v2_stream_t *st, const ed_str_t *t)
{
    const char *p = t->data, *end = t->data + t->len, *eol, *colon;
    nghttp2_nv *nv;
    char       *buf;
    size_t      n = 0;

    for (eol = p; (eol = memchr(eol, '\n', (size_t)(end - eol))) != NULL;
         eol++)
    {
        n++;
    }
    if (n == 0) {
        return ED_OK;
    }
    nv = malloc(n * sizeof(nghttp2_nv) + t->len);
    if (nv == NULL) {
        return ED_ERROR;
    }
    buf = (char *)(nv + n);
    memcpy(buf, t->data, t->len);
    p = buf;
    end = buf + t->len;
    st->trailers = nv;
    st->ntrailers = 0;
    while (p < end && (eol = memchr(p, '\r', (size_t)(end - p))) != NULL) {
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL && colon + 1 < eol) {
            ed_v2_nv(&nv[st->ntrailers++], p, (size_t)(colon - p),
                     colon + 2, (size_t)(eol - colon - 2));
        } else if (colon != NULL) {
            ed_v2_nv(&nv[st->ntrailers++], p, (size_t)(colon - p), "", 0);
        }
        p = eol + 2;
    }
    return ED_OK;
}

/* At the end of the body: the trailers go as a last HEADERS, which
 * then carries END_STREAM rather than the last DATA. */
static void
ed_v2_submit_trailers(ed_v2_stream_t *st, uint32_t *flags)
{
    if (st->trailers == NULL) {
        return;
    }
    if (nghttp2_submit_trailer(ed_v2_sess(st), st->id, st->trailers,
                               st->ntrailers) == 0)
    {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    free(st->trailers);
    st->trailers = NULL;
}

static int
ed_v2_end_body(ed_http_request_t *r)
{
    ed_v2_stream_t *st = r->v2;

    if (r->trailers_out.len && !st->out_end && st->trailers == NULL
        && ed_v2_keep_trailers(st, &r->trailers_out) != ED_OK)
    {
        return ED_ERROR;
    }
    st->out_end = 1;
    ed_v2_resume(st);
    return ED_OK;
}

/* The payload that would end a DATA frame queued now where the
 * socket's next write buffer ends. */
static size_t
ed_v2_record_room(ed_v2_conn_t *c)
{
    ed_stream_t *s = &c->hc->c.stream;
    size_t       size = s->bufs->size;

    return size - (s->wqueued + 9) % size;
}

ssize_t
ed_http_v2_data_read(nghttp2_session *sess, int32_t id, uint8_t *buf,
                     size_t length, uint32_t *flags,
                     nghttp2_data_source *src, void *user)
{
    ed_v2_stream_t *st = src->ptr;
    ed_v2_chunk_t  *ch = st->out;
    size_t          n, room;

    ed_unused(sess);
    ed_unused(id);
    ed_unused(buf);
    ed_unused(user);
    if (ch == NULL) {
        if (st->out_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            st->eof_sent = 1;
            ed_v2_submit_trailers(st, flags);
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
    if (ch->fd >= 0 && st->c->tls) {
        /* The socket's queue goes to TLS in buffers read whole, a
         * record each (ed_stream.c): a frame of a file ending where a
         * buffer ends lets the next buffer start with one read. */
        room = ed_v2_record_room(st->c);
        if (room >= ED_V2_MIN_FRAME && room < n) {
            n = room;
        }
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->out_bytes && st->out_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        st->eof_sent = 1;
        ed_v2_submit_trailers(st, flags);
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
    if (st->out_bytes < length) {
        /* The stream was reset after nghttp2 made this frame (it waited
         * for room): its bytes went with the stream's output, and a
         * header without them would break the connection's framing. */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
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
            /* A new mark: its place among the waiters is found again
             * when it waits again. */
            ed_http_v2_unwait(st);
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
            ed_http_v2_release(ch);
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
    /* r->v2 stays: the pool's cleanups (a proxy's teardown) may still
     * call the protocol, which then finds a stream without request. */
    st->r = NULL;
    st->done = 1;
    st->reading = 0;
    st->body_stopped = 1;
    /* What the handler did not take: consumed, the window reopens. */
    while ((ch = st->in) != NULL) {
        st->in = ch->next;
        if (!st->closed) {
            nghttp2_session_consume(c->sess, st->id, ch->len);
        } else {
            nghttp2_session_consume_connection(c->sess, ch->len);
        }
        ed_http_v2_release(ch);
    }
    st->in_last = NULL;
    st->in_bytes = 0;
    c->nstreams--;
    ed_stats_v2(streams_active, -1);
    /* Nothing waits for its ranges any more: an ended stream is freed
     * (as a zombie) once they are out, never run again. */
    ed_http_v2_unwait(st);
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

    ed_http_v2_unwait(st);
    while ((ch = st->out) != NULL) {
        st->out = ch->next;
        ed_http_v2_release(ch);
    }
    while ((ch = st->in) != NULL) {
        st->in = ch->next;
        ed_http_v2_release(ch);
    }
    if (st->pool != NULL) {
        ed_http_pool_put(st->pool);
    }
    free(st->trailers);
    if (st->c->hd_st == st) {
        st->c->hd_st = NULL;
        st->c->hd_id = 0;
    }
    ed_http_v2_release(st);
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
        ed_http_v2_start_request(st);
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
    } else if (r != NULL && st->flush_on && st->out == NULL) {
        /* Made pending again once the socket is past its ranges. */
        ed_http_v2_wait(st);
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
