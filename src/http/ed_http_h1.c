/* HTTP/1.1: the protocol side of requests on an HTTP/1.1 connection
 * (ed_http_proto_t): the head and the body's framing, flow control on
 * the connection's stream, its timer for send_timeout. The connection's
 * life (keep-alive, pipelining, discard, lingering close) is in
 * ed_http_request.c, the request body in ed_http_body.c. */
#include "ed_http.h"
#include "ed_stats.h"

#define ed_h1_stream(r) (&(r)->hc->c.stream)

#define ed_cpy(p, s) (memcpy(p, s, sizeof(s) - 1), (p) + sizeof(s) - 1)
#define ed_cpyn(p, s, n) (memcpy(p, s, n), (p) + (n))

/* Builds the HTTP/1.1 head into pool memory, with extra bytes of room
 * after it. NULL on ENOMEM. */
static char *
ed_http_build_head(ed_http_request_t *r, size_t extra, size_t *len)
{
    ed_http_out_header_t *h;
    const char           *text;
    char                 *buf, *p;
    size_t                size, i;
    bool                  body;

    h = r->headers_out.elts;
    body = ed_http_status_has_body(r->status);
    text = ed_http_status_text(r->status);
    size = sizeof("HTTP/1.1 000 \r\n") + strlen(text)
           + sizeof("Server: eddy/" ED_VERSION "\r\n")
           + sizeof("Date: \r\n") + ed_cached_http_time.len
           + sizeof("Content-Type: \r\n") + r->content_type.len
           + sizeof("Content-Length: \r\n") + 20
           + sizeof("Transfer-Encoding: chunked\r\n")
           + sizeof("Connection: keep-alive\r\n") + 2;
    for (i = 0; i < r->headers_out.nelts; i++) {
        size += h[i].name.len + h[i].value.len + 4;
    }
    buf = ed_pnalloc(r->pool, size + extra);
    if (buf == NULL) {
        return NULL;
    }
    p = ed_cpy(buf, "HTTP/1.1 ");
    *p++ = (char)('0' + r->status / 100);
    *p++ = (char)('0' + r->status / 10 % 10);
    *p++ = (char)('0' + r->status % 10);
    *p++ = ' ';
    p = ed_cpyn(p, text, strlen(text));
    p = ed_cpy(p, "\r\n");
    if (r->clcf->server_tokens) {
        p = ed_cpy(p, "Server: eddy/" ED_VERSION "\r\n");
    } else {
        p = ed_cpy(p, "Server: eddy\r\n");
    }
    p = ed_cpy(p, "Date: ");
    p = ed_cpyn(p, ed_cached_http_time.data, ed_cached_http_time.len);
    p = ed_cpy(p, "\r\n");
    if (r->content_type.len && body) {
        p = ed_cpy(p, "Content-Type: ");
        p = ed_cpyn(p, r->content_type.data, r->content_type.len);
        p = ed_cpy(p, "\r\n");
    }
    if (!body) {
        r->content_length = -1;
    } else if (r->content_length >= 0) {
        p = ed_cpy(p, "Content-Length: ");
        p = ed_sprint_u64(p, (uint64_t)r->content_length);
        p = ed_cpy(p, "\r\n");
    } else if (r->head.version == 11) {
        p = ed_cpy(p, "Transfer-Encoding: chunked\r\n");
        r->chunked_out = !r->head_only;
    } else {
        /* HTTP/1.0 without a length: the body ends at close. */
        r->keepalive = 0;
    }
    /* Draining (QUIT's drain_delay): every connection closes after its
     * response, so that its client reconnects through the balancer; a
     * request that began before the drain gets it too. Not a 101: the
     * tunnel ends the connection. */
    if (r->status != 101 && ed_stats_draining()) {
        r->keepalive = 0;
    }
    /* Said explicitly whenever the connection ends, also when the
     * request was too malformed to know its version. */
    if (r->head.version == 10 && r->keepalive) {
        p = ed_cpy(p, "Connection: keep-alive\r\n");
    } else if (!r->keepalive) {
        p = ed_cpy(p, "Connection: close\r\n");
    }
    for (i = 0; i < r->headers_out.nelts; i++) {
        p = ed_cpyn(p, h[i].name.data, h[i].name.len);
        p = ed_cpy(p, ": ");
        p = ed_cpyn(p, h[i].value.data, h[i].value.len);
        p = ed_cpy(p, "\r\n");
    }
    p = ed_cpy(p, "\r\n");
    *len = (size_t)(p - buf);
    return buf;
}

/* Writes the head, with body[0..len) after it in one write. */
static int
ed_http_h1_head(ed_http_request_t *r, const void *body, size_t len)
{
    char   *head;
    size_t  hlen;

    if (r->head_only || !ed_http_status_has_body(r->status)) {
        len = 0;
    }
    head = ed_http_build_head(r, len, &hlen);
    if (head == NULL) {
        return ED_ERROR;
    }
    if (len == 0
        && (r->streamed || r->chunked_out
            || (r->content_length < 0 && !r->keepalive && !r->head_only)))
    {
        /* A body that goes out in pieces over time (streamed, chunked or
         * up to the close) must not wait for ACKs. */
        ed_http_nodelay(r->hc);
    }
    if (len) {
        memcpy(head + hlen, body, len);
        r->body_bytes_sent += len;
    }
    r->header_sent = 1;
    r->bytes_sent += hlen + len;
    return ed_stream_write(ed_h1_stream(r), head, hlen + len);
}

static int
ed_http_h1_piece(ed_http_request_t *r, const ed_http_piece_t *p)
{
    ed_stream_t *s = ed_h1_stream(r);
    char         size[24];
    int          n;

    r->body_bytes_sent += p->len;
    r->bytes_sent += p->len;
    if (r->chunked_out) {
        n = sprintf(size, "%zx\r\n", p->len);
        if (ed_stream_write(s, size, (size_t)n) != ED_OK) {
            return ED_ERROR;
        }
    }
    if (p->fd >= 0) {
        r->out_file = 1;
        if (ed_stream_write_file(s, p->fd, (off_t)p->off, p->len) != ED_OK) {
            return ED_ERROR;
        }
    } else if (ed_stream_write(s, p->data, p->len) != ED_OK) {
        return ED_ERROR;
    }
    if (r->chunked_out && ed_stream_write(s, "\r\n", 2) != ED_OK) {
        return ED_ERROR;
    }
    return ED_OK;
}

/* The end of the body: the chunked terminator when chunked, with the
 * trailer fields (set only for a client that takes them). */
static int
ed_http_h1_end(ed_http_request_t *r)
{
    ed_stream_t *s = ed_h1_stream(r);

    if (!r->chunked_out) {
        return ED_OK;
    }
    if (r->trailers_out.len == 0) {
        return ed_stream_write(s, "0\r\n\r\n", 5);
    }
    if (ed_stream_write(s, "0\r\n", 3) != ED_OK
        || ed_stream_write(s, r->trailers_out.data, r->trailers_out.len)
               != ED_OK
        || ed_stream_write(s, "\r\n", 2) != ED_OK)
    {
        return ED_ERROR;
    }
    r->bytes_sent += r->trailers_out.len;
    return ED_OK;
}

static bool
ed_http_h1_blocked(ed_http_request_t *r)
{
    return ed_stream_write_blocked(ed_h1_stream(r));
}

static size_t
ed_http_h1_queued(ed_http_request_t *r)
{
    return ed_h1_stream(r)->wqueued;
}

static bool
ed_http_h1_written(ed_http_request_t *r)
{
    ed_stream_t *s = ed_h1_stream(r);

    return s->wqueued == 0 && !ed_stream_flush_posted(s);
}

/* The stream's callbacks reach the request in progress through the
 * connection: a request that has ended hears nothing. */
static void
ed_http_h1_on_drain(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    s->on_drain = NULL;
    if (hc->r != NULL && !hc->r->finalized) {
        ed_http_output_drained(hc->r);
    }
}

static void
ed_http_h1_notify_drain(ed_http_request_t *r, bool on)
{
    ed_stream_t *s = ed_h1_stream(r);

    if (on) {
        s->on_drain = ed_http_h1_on_drain;
    } else if (s->on_drain == ed_http_h1_on_drain) {
        s->on_drain = NULL;
    }
}

static void
ed_http_h1_on_flushed(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    s->on_flushed = NULL;
    if (hc->r != NULL) {
        ed_http_output_flushed(hc->r);
    }
}

static void
ed_http_h1_notify_flushed(ed_http_request_t *r)
{
    ed_h1_stream(r)->on_flushed = ed_http_h1_on_flushed;
}

/* The connection's water marks; ed_http_next puts the defaults back. */
static void
ed_http_h1_buffer(ed_http_request_t *r, size_t size)
{
    ed_stream_set_water(ed_h1_stream(r), size / 4, size);
    r->out_buffer = 1;
}

/* The connection's timer is free while a request runs (the header and
 * keep-alive timeouts are between requests); ed_http_on_timeout asks
 * ed_http_output_timeout first. */
static ed_timer_t *
ed_http_h1_timer(ed_http_request_t *r)
{
    return &r->hc->timer;
}

const ed_http_proto_t ed_http_h1_proto = {
    .name = "HTTP/1.1",
    .head = ed_http_h1_head,
    .piece = ed_http_h1_piece,
    .end = ed_http_h1_end,
    .blocked = ed_http_h1_blocked,
    .queued = ed_http_h1_queued,
    .written = ed_http_h1_written,
    .notify_drain = ed_http_h1_notify_drain,
    .notify_flushed = ed_http_h1_notify_flushed,
    .buffer = ed_http_h1_buffer,
    .timer = ed_http_h1_timer,
    .read_body = ed_http_h1_read_body,
    .body_pause = ed_http_h1_body_pause,
    .body_resume = ed_http_h1_body_resume,
    .body_stop = ed_http_h1_body_stop,
    .done = ed_http_h1_done,
    .fail = ed_http_h1_fail,
};
