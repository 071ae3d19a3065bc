/* The tunnel after a 101 (WebSocket, the only upgrade relayed): bytes
 * relayed both ways between a client and an upstream connection, each
 * direction paused while the other side's write queue is above its high
 * water. Over HTTP/2 (RFC 8441) the client side is the request's stream:
 * its DATA through the request body API, the upstream's bytes through
 * the output path, each flow-controlled. */
#include "ed_http_upstream.h"

#include <sys/socket.h>

typedef struct {
    ed_http_request_t       *r;
    ed_http_upstream_conn_t *uc;
    ed_timer_t               timer;      /* idle */
    ed_msec_t                idle;
    size_t                   piece;
    void                   (*done)(void *data);
    void                    *data;
    unsigned                 client_eof:1;
    unsigned                 over:1;
    unsigned                 stream:1;   /* the client is an HTTP/2 stream */
} ed_ups_tunnel_t;

static void ed_ups_tunnel_on_client(ed_stream_t *s, int status, char *data,
                                    size_t len);
static void ed_ups_tunnel_on_upstream(ed_stream_t *s, int status,
                                      char *data, size_t len);

#define ed_ups_tunnel_client(t) (&(t)->r->hc->c.stream)

/* Stops everything of the tunnel's own; touches uc only when alive. */
static void
ed_ups_tunnel_stop(ed_ups_tunnel_t *t, bool uc_alive)
{
    ed_stream_t *cs = ed_ups_tunnel_client(t), *us;

    t->over = 1;
    ed_timer_del(ed_worker->loop, &t->timer);
    if (t->stream) {
        cs = NULL;
    } else if (cs->read_cb == ed_ups_tunnel_on_client) {
        ed_stream_read_stop(cs);
    }
    if (cs != NULL) {
        cs->on_drain = NULL;
    }
    if (uc_alive) {
        us = &t->uc->c.stream;
        ed_stream_read_stop(us);
        us->on_drain = NULL;
        us->on_flushed = NULL;
        us->on_close = NULL;
    }
}

/* The end, either way: the owner closes uc and finalizes. Last call. */
static void
ed_ups_tunnel_end(ed_ups_tunnel_t *t)
{
    if (t->over) {
        return;
    }
    ed_ups_tunnel_stop(t, true);
    t->done(t->data);
}

/* The request's pool is reset (the client connection closed): the owner
 * closes uc in its own cleanup. */
static void
ed_ups_tunnel_cleanup(void *data)
{
    ed_ups_tunnel_t *t = data;

    if (!t->over) {
        ed_ups_tunnel_stop(t, false);
    }
}

static void
ed_ups_tunnel_on_idle(ed_timer_t *tm)
{
    ed_ups_tunnel_t *t = tm->data;

    ed_http_log(ED_LOG_INFO, t->r, 0, "tunnel idle: closing");
    ed_ups_tunnel_end(t);
}

static void
ed_ups_tunnel_touch(ed_ups_tunnel_t *t)
{
    if (t->idle > 0) {
        ed_timer_add(ed_worker->loop, &t->timer, t->idle);
    }
}

static void
ed_ups_tunnel_read_upstream(ed_ups_tunnel_t *t)
{
    if (ed_stream_read_some(&t->uc->c.stream, t->piece,
                            ed_ups_tunnel_on_upstream) != ED_OK)
    {
        ed_ups_tunnel_end(t);
    }
}

static void
ed_ups_tunnel_read_client(ed_ups_tunnel_t *t)
{
    if (ed_stream_read_some(ed_ups_tunnel_client(t), t->piece,
                            ed_ups_tunnel_on_client) != ED_OK)
    {
        ed_ups_tunnel_end(t);
    }
}

static void
ed_ups_tunnel_client_drain(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    s->on_drain = NULL;
    ed_ups_tunnel_read_upstream(hc->r->upstream->tunnel);
}

static void
ed_ups_tunnel_upstream_drain(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_ups_tunnel_t         *t = uc->owner;

    s->on_drain = NULL;
    if (t->stream) {
        if (!t->client_eof && !t->over) {
            ed_http_body_resume(t->r);
        }
        return;
    }
    if (!t->client_eof) {
        ed_ups_tunnel_read_client(t);
    }
}

/* Everything the client sent is out: the upstream hears the half-close
 * and may still answer. */
static void
ed_ups_tunnel_half_close(ed_stream_t *s)
{
    s->on_flushed = NULL;
    shutdown(s->ev.fd, SHUT_WR);
}

static void
ed_ups_tunnel_on_upstream_close(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_ups_tunnel_t         *t = uc->owner;

    if (t->stream) {
        t->r->tunnel_error = 1;
    }
    ed_ups_tunnel_end(t);
}

/* HTTP/2: the client's stream takes more. */
static void
ed_ups_tunnel_stream_ready(ed_http_request_t *r, void *data)
{
    ed_ups_tunnel_t *t = data;

    ed_unused(r);
    if (!t->over) {
        ed_ups_tunnel_read_upstream(t);
    }
}

/* HTTP/2: the upstream's bytes go out as DATA. */
static void
ed_ups_tunnel_stream_out(ed_ups_tunnel_t *t, int status, char *data,
                         size_t len)
{
    ed_http_request_t *r = t->r;

    if (len > 0 && ed_http_send_body(r, data, len) != ED_OK) {
        ed_ups_tunnel_end(t);
        return;
    }
    if (status != ED_OK) {
        /* EOF: END_STREAM after what it said; an error: CONNECT_ERROR. */
        if (status == ED_ERROR) {
            r->tunnel_error = 1;
        }
        ed_ups_tunnel_end(t);
        return;
    }
    ed_ups_tunnel_touch(t);
    if (ed_http_output_busy(r)) {
        ed_http_output_wait(r, ed_ups_tunnel_stream_ready, t);
        return;
    }
    ed_ups_tunnel_read_upstream(t);
}

/* HTTP/2: the client's DATA go upstream; END_STREAM half-closes it. */
static void
ed_ups_tunnel_on_body(ed_http_request_t *r, void *data, int rc,
                      const char *p, size_t len)
{
    ed_ups_tunnel_t *t = data;
    ed_stream_t     *us;

    if (t->over) {
        return;
    }
    us = &t->uc->c.stream;
    if (rc != ED_OK && rc != ED_DONE) {
        ed_ups_tunnel_end(t);
        return;
    }
    if (len > 0 && ed_stream_write(us, p, len) != ED_OK) {
        ed_ups_tunnel_end(t);
        return;
    }
    ed_ups_tunnel_touch(t);
    if (rc == ED_DONE) {
        t->client_eof = 1;
        if (us->wqueued == 0) {
            ed_ups_tunnel_half_close(us);
        } else {
            us->on_flushed = ed_ups_tunnel_half_close;
        }
        return;
    }
    if (ed_stream_write_blocked(us)) {
        ed_http_body_pause(r);
        us->on_drain = ed_ups_tunnel_upstream_drain;
    }
}

static void
ed_ups_tunnel_on_upstream(ed_stream_t *s, int status, char *data,
                          size_t len)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_ups_tunnel_t         *t = uc->owner;
    ed_http_request_t       *r = t->r;
    ed_stream_t             *cs;

    if (t->stream) {
        ed_ups_tunnel_stream_out(t, status, data, len);
        return;
    }
    cs = ed_ups_tunnel_client(t);

    if (len > 0) {
        r->bytes_sent += len;
        r->body_bytes_sent += len;
        if (ed_stream_write(cs, data, len) != ED_OK) {
            ed_ups_tunnel_end(t);
            return;
        }
    }
    if (status != ED_OK) {
        /* The upstream ended: what it said still reaches the client,
         * whose connection closes after the flush. */
        ed_ups_tunnel_end(t);
        return;
    }
    ed_ups_tunnel_touch(t);
    if (ed_stream_write_blocked(cs)) {
        cs->on_drain = ed_ups_tunnel_client_drain;
        return;
    }
    ed_ups_tunnel_read_upstream(t);
}

static void
ed_ups_tunnel_on_client(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t  *hc = s->data;
    ed_ups_tunnel_t *t = hc->r->upstream->tunnel;
    ed_stream_t     *us = &t->uc->c.stream;

    if (status == ED_ERROR) {
        ed_ups_tunnel_end(t);
        return;
    }
    if (len > 0 && ed_stream_write(us, data, len) != ED_OK) {
        ed_ups_tunnel_end(t);
        return;
    }
    ed_ups_tunnel_touch(t);
    if (status != ED_OK) {
        t->client_eof = 1;
        if (us->wqueued == 0) {
            ed_ups_tunnel_half_close(us);
        } else {
            us->on_flushed = ed_ups_tunnel_half_close;
        }
        return;
    }
    if (ed_stream_write_blocked(us)) {
        us->on_drain = ed_ups_tunnel_upstream_drain;
        return;
    }
    ed_ups_tunnel_read_client(t);
}

/* ED_OK or ED_ERROR (ENOMEM, or a stream already closed). */
int
ed_http_upstream_tunnel(ed_http_request_t *r, ed_http_upstream_conn_t *uc,
                        size_t piece, ed_msec_t idle,
                        void (*done)(void *data), void *data)
{
    ed_ups_tunnel_t *t;

    t = ed_pcalloc(r->pool, sizeof(ed_ups_tunnel_t));
    if (t == NULL
        || ed_pool_cleanup_add(r->pool, ed_ups_tunnel_cleanup, t) != ED_OK)
    {
        return ED_ERROR;
    }
    t->r = r;
    t->uc = uc;
    t->idle = idle;
    t->piece = piece;
    t->done = done;
    t->data = data;
    t->timer.handler = ed_ups_tunnel_on_idle;
    t->timer.data = t;
    r->upstream->tunnel = t;
    uc->owner = t;
    uc->c.stream.on_close = ed_ups_tunnel_on_upstream_close;
    if (r->stream_id) {
        t->stream = 1;
        if (ed_http_read_body(r, ed_ups_tunnel_on_body, t) == ED_ERROR
            || ed_stream_read_some(&uc->c.stream, piece,
                                   ed_ups_tunnel_on_upstream) != ED_OK)
        {
            ed_ups_tunnel_stop(t, true);
            return ED_ERROR;
        }
        ed_ups_tunnel_touch(t);
        return ED_OK;
    }
    if (ed_stream_read_some(ed_ups_tunnel_client(t), piece,
                            ed_ups_tunnel_on_client) != ED_OK
        || ed_stream_read_some(&uc->c.stream, piece,
                               ed_ups_tunnel_on_upstream) != ED_OK)
    {
        ed_ups_tunnel_stop(t, true);
        return ED_ERROR;
    }
    ed_ups_tunnel_touch(t);
    return ED_OK;
}
