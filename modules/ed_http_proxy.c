/* The proxy module: forwards requests to upstream groups or URLs and
 * streams bodies both ways with bounded memory; retries, upgrades. Its
 * configuration is in ed_http_proxy_conf.c. */
#include "ed_http_proxy.h"

#include <sys/socket.h>

#define ED_PROXY_MAX_HEADERS 100
#define ED_PROXY_SLACK       128   /* pieces fit one pooled buffer */

typedef struct {
    ed_http_request_t         *r;
    ed_http_proxy_conf_t      *pcf;
    ed_http_upstream_attempts_t a;        /* the servers tried */
    ed_http_cache_req_t       *cache;        /* NULL: no cache */
    ed_http_decoder_t          rbody;        /* the response body */
    size_t                     piece;
    /* The request body as sent, kept for a retry while it is small. */
    char                      *replay;
    size_t                     replay_len;
    size_t                     replay_cap;

    unsigned                   has_body:1;     /* the request has one */
    unsigned                   body_started:1;
    unsigned                   body_done:1;
    unsigned                   body_chunked:1; /* sent chunked upstream */
    unsigned                   replay_lost:1;  /* cannot resend the body */
    unsigned                   connected:1;    /* the attempt's uc is up */
    /* Bytes of the request may have reached an upstream (sticky over
     * the attempts): a non-idempotent request is then never resent. */
    unsigned                   sent:1;
    unsigned                   stale_retried:1;
    unsigned                   head_received:1;
    unsigned                   reusable:1;     /* uc may go back idle */
    unsigned                   upgrade:1;      /* WebSocket asked */
    unsigned                   done:1;         /* torn down */
} ed_http_proxy_ctx_t;

static void ed_proxy_fail(ed_http_proxy_ctx_t *ctx, int ft, int status);
static void ed_proxy_finish(ed_http_proxy_ctx_t *ctx, int rc);
static void ed_proxy_on_head(ed_stream_t *s, int status, char *data,
                             size_t len);
static void ed_proxy_on_body(ed_stream_t *s, int status, char *data,
                             size_t len);
static void ed_proxy_body_failed(ed_http_proxy_ctx_t *ctx, int status);
static int ed_proxy_commit(ed_http_proxy_ctx_t *ctx);
static int ed_proxy_copy_headers(ed_http_proxy_ctx_t *ctx,
                                 const ed_http_resp_head_t *h);
static void ed_proxy_retry_stale(ed_http_proxy_ctx_t *ctx);
static bool ed_proxy_may_resend(ed_http_proxy_ctx_t *ctx);
static int ed_proxy_go(ed_http_proxy_ctx_t *ctx);
static void ed_proxy_cache_resume(ed_http_request_t *r, void *data, int rc);

/* The upstream request. */

int
ed_http_proxy_request_init(ed_http_request_t *r,
                           const ed_http_proxy_conf_t *pcf,
                           const ed_str_t *server_host,
                           ed_http_upstream_req_t *q,
                           const ed_http_proxy_header_t **bad)
{
    ed_http_proxy_header_t *sh;
    ed_str_t               *names, *vals;
    size_t                  i;

    *bad = NULL;
    memset(q, 0, sizeof(*q));
    q->host = pcf->pass_host && r->head.host.len ? &r->head.host
                                                 : server_host;
    q->uri = pcf->has_uri ? &pcf->uri : NULL;
    q->forwarded = pcf->forwarded ? 1 : 0;
    q->keepalive = pcf->ups->keepalive > 0;
    if (pcf->remove_headers) {
        q->remove = pcf->remove_headers->elts;
        q->nremove = pcf->remove_headers->nelts;
    }
    if (pcf->set_headers && pcf->set_headers->nelts) {
        sh = pcf->set_headers->elts;
        q->nset = pcf->set_headers->nelts;
        names = ed_palloc(r->pool, 2 * q->nset * sizeof(ed_str_t));
        if (names == NULL) {
            return ED_ERROR;
        }
        vals = names + q->nset;
        for (i = 0; i < q->nset; i++) {
            names[i] = sh[i].name;
            if (ed_http_template_run(r, sh[i].value, &vals[i]) != ED_OK) {
                *bad = &sh[i];
                return ED_ERROR;
            }
        }
        q->set_names = names;
        q->set_values = vals;
    }
    return ED_OK;
}

/* Queues the request head on the upstream connection. ED_OK or
 * ED_ERROR. */
static int
ed_proxy_send_head(ed_http_proxy_ctx_t *ctx)
{
    ed_http_request_t      *r = ctx->r;
    ed_http_proxy_conf_t   *pcf = ctx->pcf;
    const ed_http_proxy_header_t *bad;
    ed_http_upstream_req_t        q;
    char                         *head;
    size_t                        len;

    if (ed_http_proxy_request_init(r, pcf, &ctx->a.server->host, &q, &bad)
        != ED_OK)
    {
        return ED_ERROR;
    }
    if (ctx->cache) {
        ed_http_cache_request(ctx->cache, &q);
    }
    q.websocket = ctx->upgrade;
    /* An error page or a local redirect run through the proxy sends no
     * body, even when the client's was read whole (a chunked one whose
     * length fastcgi learned): no framing may promise one. */
    if (!ctx->has_body && (r->internal || ed_http_has_body(r))) {
        q.body = ED_HTTP_UPS_BODY_NONE;
    } else if (r->body_dec.kind == ED_HTTP_BODY_CHUNKED) {
        /* Chunked even once the whole body is read: a resend replays
         * it as it went out the first time. */
        ctx->body_chunked = 1;
        q.body = ED_HTTP_UPS_BODY_CHUNKED;
    } else if (r->head.content_length >= 0 && !r->internal
               && (r->head.content_length > 0
                   || ed_http_header(r, "Content-Length")))
    {
        q.body = ED_HTTP_UPS_BODY_LENGTH;
    }
    head = ed_http_upstream_request_head(r, &q, &len);
    if (head == NULL) {
        return ED_ERROR;
    }
    r->upstream->head.data = head;
    r->upstream->head.len = len;
    return ed_stream_write(&ctx->a.uc->c.stream, head, len);
}

/* Attempts. */

/* Tears the proxying down: timers, body reader, the client stream's
 * settings; the connection is closed unless kept (then released). */
static void
ed_proxy_teardown(ed_http_proxy_ctx_t *ctx, bool keep)
{
    ed_http_request_t *r = ctx->r;

    if (ctx->done) {
        return;
    }
    ctx->done = 1;
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    ed_http_body_stop(r);
    ed_http_upstream_attempts_release(&ctx->a, keep);
}

static void
ed_proxy_cleanup(void *data)
{
    ed_http_proxy_ctx_t *ctx = data;

    if (ctx->done) {
        return;
    }
    ed_proxy_teardown(ctx, false);
}

/* No upstream gave a response (ft: how the last one failed; rc the
 * status to answer): a stale entry may answer instead (use_stale,
 * stale-if-error). Last call. */
static void
ed_proxy_finish_failed(ed_http_proxy_ctx_t *ctx, int ft, int rc)
{
    int s;

    s = ed_http_cache_failed(ctx->r, ctx->cache,
                             ed_http_cache_stale_cond(ft), true, rc);
    if (s != ED_DECLINED) {
        rc = s;
    }
    ed_proxy_finish(ctx, rc);
}

/* Ends the request with rc (ED_OK, ED_ERROR or a status). Last call. */
static void
ed_proxy_finish(ed_http_proxy_ctx_t *ctx, int rc)
{
    ed_http_request_t *r = ctx->r;

    ed_proxy_teardown(ctx, false);
    if (rc >= 300 && r->header_sent) {
        rc = ED_ERROR;
    }
    ed_http_finalize(r, rc);
}

/* The response is complete: the connection goes back to the pool when
 * the exchange left it clean. Last call. */
static void
ed_proxy_done(ed_http_proxy_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;

    /* The whole body arrived: a response being stored takes its place
     * in the cache. */
    if (ctx->cache) {
        ed_http_cache_done(r, ctx->cache);
    }
    if (ctx->a.try) {
        ctx->a.try->msec = ed_current_msec - ctx->a.start;
    }
    ed_http_upstream_succeeded(ctx->a.server);
    ed_proxy_teardown(ctx, ctx->reusable && ctx->body_done);
    ed_http_finalize(r, ED_OK);
}

static void
ed_proxy_on_utimer(ed_timer_t *t)
{
    ed_http_proxy_ctx_t *ctx = t->data;

    ed_http_upstream_attempts_timed_out(&ctx->a);
    if (ctx->head_received) {
        ed_proxy_body_failed(ctx, 504);
        return;
    }
    ed_proxy_fail(ctx, ED_HTTP_UPS_FT_TIMEOUT, 504);
}

/* Keeps the encoded body bytes for a resend while they fit. */
static void
ed_proxy_keep(ed_http_proxy_ctx_t *ctx, const char *p, size_t len)
{
    if (ctx->replay_lost) {
        return;
    }
    if (ctx->head_received || ctx->replay_len + len > ctx->replay_cap) {
        ctx->replay_lost = 1;
        return;
    }
    memcpy(ctx->replay + ctx->replay_len, p, len);
    ctx->replay_len += len;
}

/* Sends body bytes upstream (and keeps them). */
static void
ed_proxy_body_out(ed_http_proxy_ctx_t *ctx, const char *p, size_t len)
{
    ed_proxy_keep(ctx, p, len);
    ed_stream_write(&ctx->a.uc->c.stream, p, len);
}

static void
ed_proxy_on_upstream_drain(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_http_proxy_ctx_t     *ctx = uc->owner;

    s->on_drain = NULL;
    if (ctx->a.kind == ED_HTTP_UPS_T_SEND) {
        ed_timer_del(ed_worker->loop, &ctx->a.timer);
    }
    ed_http_body_resume(ctx->r);
}

/* The request body, piece by piece, to the upstream (re-chunked when
 * its length is unknown). A failed write is reported by the upstream
 * stream's on_close, so results are not checked here. */
static void
ed_proxy_on_request_body(ed_http_request_t *r, void *data, int rc,
                         const char *p, size_t len)
{
    ed_http_proxy_ctx_t *ctx = data;
    ed_stream_t         *us;
    char                 size[24];
    int                  n;

    if (rc != ED_OK && rc != ED_DONE) {
        ed_http_log(ED_LOG_INFO, ctx->r, 0,
                    "reading the client request body failed (%d)", rc);
        ed_proxy_finish(ctx, rc);
        return;
    }
    if (ctx->a.uc == NULL) {
        return;
    }
    us = &ctx->a.uc->c.stream;
    if (len && ctx->body_chunked) {
        n = snprintf(size, sizeof(size), "%zx\r\n", len);
        ed_proxy_body_out(ctx, size, (size_t)n);
        ed_proxy_body_out(ctx, p, len);
        ed_proxy_body_out(ctx, "\r\n", 2);
    } else if (len) {
        ed_proxy_body_out(ctx, p, len);
    }
    if (rc == ED_DONE) {
        if (ctx->body_chunked && r->trailers.len) {
            /* The client's trailers (HTTP/2) end the chunked body. */
            ed_proxy_body_out(ctx, "0\r\n", 3);
            ed_proxy_body_out(ctx, r->trailers.data, r->trailers.len);
            ed_proxy_body_out(ctx, "\r\n", 2);
        } else if (ctx->body_chunked) {
            ed_proxy_body_out(ctx, "0\r\n\r\n", 5);
        }
        ctx->body_done = 1;
        if (!ctx->head_received) {
            ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                            ctx->pcf->read_timeout);
        }
    } else if (ed_stream_write_blocked(us)) {
        ed_http_body_pause(r);
        us->on_drain = ed_proxy_on_upstream_drain;
        if (!ctx->head_received) {
            ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_SEND,
                                            ctx->pcf->send_timeout);
        }
    }
}

/* The TLS handshake with the upstream is over: the request goes on
 * under its own timeouts. */
static void
ed_proxy_on_handshake(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_http_proxy_ctx_t     *ctx = uc->owner;

    s->on_flushed = NULL;
    if (ctx == NULL || ctx->a.kind != ED_HTTP_UPS_T_CONNECT) {
        return;
    }
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    if (ctx->body_done) {
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                        ctx->pcf->read_timeout);
    }
}

/* The connection is up (or reused): the body starts, the response is
 * awaited. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_proxy_connected(ed_http_proxy_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;
    int                rc;

    ctx->connected = 1;
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    if (ed_stream_read_until_scan(&ctx->a.uc->c.stream, ed_http_head_end,
                                  ctx->piece, ed_proxy_on_head) != ED_OK)
    {
        return ED_ERROR;
    }
    if (ctx->has_body && !ctx->body_started) {
        ctx->body_started = 1;
        rc = ed_http_read_body(r, ed_proxy_on_request_body, ctx);
        if (rc == ED_ERROR) {
            return ED_ERROR;
        }
        if (rc == ED_DONE) {
            ctx->body_done = 1;
        }
    } else if (ctx->body_started && !ctx->body_done) {
        ed_http_body_resume(r);
    }
    if (ctx->body_done || !ctx->has_body) {
        ctx->body_done = 1;
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                        ctx->pcf->read_timeout);
    }
    if (ed_tls_handshaking(&ctx->a.uc->c.stream)) {
        /* The handshake is part of connecting. The head stays queued
         * until it is over: the queue empties after it. */
        ctx->a.uc->c.stream.on_flushed = ed_proxy_on_handshake;
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_CONNECT,
                                        ctx->pcf->connect_timeout);
    }
    return ED_OK;
}

/* The result of a new connection. Returns ED_OK, or ED_DONE when uc
 * was closed here. */
static int
ed_proxy_on_connect(ed_http_upstream_conn_t *uc, int rc)
{
    ed_http_proxy_ctx_t *ctx = uc->owner;

    if (rc != ED_OK) {
        ed_http_upstream_attempts_connect_failed(&ctx->a);
        ed_proxy_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
        return ED_DONE;
    }
    if (ed_proxy_connected(ctx) != ED_OK) {
        ed_proxy_finish(ctx, 500);
        return ED_DONE;
    }
    return ED_OK;
}

/* A write to the upstream failed: it is gone. */
static void
ed_proxy_on_upstream_close(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_http_proxy_ctx_t     *ctx = uc->owner;

    if (ctx->head_received) {
        /* The response is on its way; its reading tells how it ends. */
        return;
    }
    if (ctx->a.reused && !ctx->stale_retried && ed_proxy_may_resend(ctx)) {
        ed_proxy_retry_stale(ctx);
        return;
    }
    ed_proxy_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
}

/* Starts one exchange on server ctx->a.server: a pooled connection when
 * allowed and available, else a new one. ED_AGAIN, or ED_ERROR (connect
 * failed at once, errno set), or 500 (ENOMEM). */
static int
ed_proxy_attempt(ed_http_upstream_attempts_t *a, bool pooled)
{
    ed_http_proxy_ctx_t     *ctx = ed_container_of(a, ed_http_proxy_ctx_t, a);
    ed_http_upstream_conn_t *uc;
    int                      rc;

    ctx->connected = 0;
    rc = ed_http_upstream_attempts_open(a, pooled, ctx->pcf->tls, ctx,
                                        ed_proxy_on_connect);
    if (rc == ED_ERROR) {
        return ED_ERROR;
    }
    uc = a->uc;
    uc->c.stream.on_close = ed_proxy_on_upstream_close;
    ed_stream_set_water(&uc->c.stream, ctx->pcf->buffer_size / 4,
                        ctx->pcf->buffer_size);
    if (ed_proxy_send_head(ctx) != ED_OK) {
        return 500;
    }
    if (ctx->body_started && ctx->replay_len) {
        if (ed_stream_write(&uc->c.stream, ctx->replay, ctx->replay_len)
            != ED_OK)
        {
            return 500;
        }
    }
    if (rc == ED_AGAIN) {
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_CONNECT,
                                        ctx->pcf->connect_timeout);
        return ED_AGAIN;
    }
    return ed_proxy_connected(ctx) == ED_OK ? ED_AGAIN : 500;
}

/* Notes that bytes of the request may have reached the attempt's
 * upstream: from the moment its connection is up, over TLS once the
 * handshake is over (no early data is sent). A refused or timed-out
 * connect or a failed handshake sent none. Called while uc is open. */
static void
ed_proxy_note_sent(ed_http_proxy_ctx_t *ctx)
{
    if (ctx->a.uc != NULL && ctx->connected
        && !ed_tls_handshaking(&ctx->a.uc->c.stream))
    {
        ctx->sent = 1;
    }
}

/* Whether the request may go to an upstream again, on any retry path
 * (a stale pooled connection, next_upstream): its body is still at
 * hand, and its method is idempotent (RFC 9110 9.2.2) or no byte of it
 * reached an upstream, since the backend may have acted on it. */
static bool
ed_proxy_may_resend(ed_http_proxy_ctx_t *ctx)
{
    ed_proxy_note_sent(ctx);
    if (ctx->body_started && ctx->replay_lost) {
        return false;
    }
    return !ctx->sent || ed_http_upstream_idempotent(ctx->r);
}

/* An attempt failed before the response head went to the client: the
 * next server, or the final status. Last call. */
static void
ed_proxy_fail(ed_http_proxy_ctx_t *ctx, int ft, int status)
{
    int rc;

    ed_proxy_note_sent(ctx);
    ed_http_upstream_attempts_failed(&ctx->a, ft, status);
    if (ctx->r->header_sent) {
        ed_proxy_finish(ctx, ED_ERROR);
        return;
    }
    if (!ed_http_upstream_attempts_retry(&ctx->a, ft, status)
        || !ed_proxy_may_resend(ctx))
    {
        ed_proxy_finish_failed(ctx, ft, ctx->a.fail_status);
        return;
    }
    ctx->head_received = 0;
    rc = ed_http_upstream_attempts_next(&ctx->a);
    if (rc != ED_AGAIN) {
        ed_proxy_finish_failed(ctx, ft, rc);
    }
}

/* A pooled connection the upstream had closed: the same server again on
 * a fresh connection, once, not counted as a try. Last call. */
static void
ed_proxy_retry_stale(ed_http_proxy_ctx_t *ctx)
{
    int rc;

    ctx->stale_retried = 1;
    ed_http_upstream_attempts_close(&ctx->a);
    rc = ed_proxy_attempt(&ctx->a, false);
    if (rc == ED_AGAIN) {
        return;
    }
    if (rc == ED_ERROR) {
        ed_proxy_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
        return;
    }
    ed_proxy_finish(ctx, rc);
}

/* The response. */

/* Asks for the next piece of the response body. */
static void
ed_proxy_read_more(ed_http_proxy_ctx_t *ctx)
{
    ed_stream_t *us = &ctx->a.uc->c.stream;
    size_t       max = ctx->piece;

    if (ctx->rbody.kind == ED_HTTP_BODY_LENGTH
        && ctx->rbody.left < (int64_t)max)
    {
        max = (size_t)ctx->rbody.left;
    }
    ed_stream_read_some(us, max, ed_proxy_on_body);
    ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                    ctx->pcf->read_timeout);
}

/* The client can take more of the response. */
static void
ed_proxy_on_client_ready(ed_http_request_t *r, void *data)
{
    ed_http_proxy_ctx_t *ctx = data;

    ed_unused(r);
    if (ctx->a.uc) {
        ed_proxy_read_more(ctx);
    }
}

/* After bytes went to the client: read on, or wait for it to take them
 * (core bounds the wait by send_timeout). */
static void
ed_proxy_flow(ed_http_proxy_ctx_t *ctx)
{
    if (ed_http_output_busy(ctx->r)) {
        ed_timer_del(ed_worker->loop, &ctx->a.timer);
        ed_http_output_wait(ctx->r, ed_proxy_on_client_ready, ctx);
        return;
    }
    ed_proxy_read_more(ctx);
}

/* Checks buf[0..len), a chunked body from its start, without passing
 * it on: ED_AGAIN (good so far), ED_DONE (its end) or ED_ERROR, with
 * *end just after the end or the first invalid byte. */
static int
ed_proxy_chunked_check(const char *buf, size_t len, size_t *end)
{
    ed_http_decoder_t d;

    ed_http_decoder_init(&d, ED_HTTP_BODY_CHUNKED, -1);
    *end = 0;
    return ed_http_decode_run(&d, buf, len, end, NULL, NULL);
}

/* A read_until_scan scanner: the chunked body up to its end or its
 * first invalid byte, 0 while neither is in buf. It starts over each
 * time (*resume stays 0): it runs only once the upstream has closed,
 * over at most one buffer. */
static size_t
ed_proxy_scan_chunked(const char *buf, size_t len, size_t *resume)
{
    size_t end;

    (void)resume;

    return ed_proxy_chunked_check(buf, len, &end) == ED_AGAIN ? 0 : end;
}

/* The upstream failed after its response head. Before anything was
 * sent to the client, the answer is status after all (error_pages
 * apply). After, the bytes already given to the client go out, then
 * the connection closes: no last chunk nor a body filter's end, so the
 * body cannot look complete (ED_ERROR would close at once and drop
 * them). Last call. */
static void
ed_proxy_body_failed(ed_http_proxy_ctx_t *ctx, int status)
{
    ed_http_request_t *r = ctx->r;

    ed_http_upstream_failed(ctx->a.ups, ctx->a.server, ed_current_msec, r);
    if (!r->header_sent) {
        /* The upstream's head was only prepared. */
        r->headers_out.nelts = 0;
        r->content_type.data = NULL;
        r->content_type.len = 0;
        r->content_length = -1;
        ed_proxy_finish(ctx, status);
        return;
    }
    ed_proxy_teardown(ctx, false);
    ed_http_finalize(r, ED_HTTP_CUT);
}

/* The chunked body ended: its trailer fields, as kept, go to the client
 * after the body (those RFC 9110 6.5.1 keeps out of trailers left out).
 * ED_OK or ED_ERROR. */
static int
ed_proxy_trailers(ed_http_proxy_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;
    ed_http_chunked_t *c = &ctx->rbody.chunked;
    size_t             len;
    char              *p;

    if (ctx->rbody.kind != ED_HTTP_BODY_CHUNKED || c->keep == NULL
        || c->trailers <= 1)
    {
        return ED_OK;
    }
    len = c->trailers - 1;  /* without the CR of the last, empty line */
    p = ed_pnalloc(r->pool, 2 * len);
    if (p == NULL) {
        return ED_ERROR;
    }
    r->trailers_out.data = p;
    r->trailers_out.len = ed_http_trailers_copy(p, c->keep, len,
                                                r->v2 != NULL);
    return ED_OK;
}

/* Passes a slice of the response body on (and into the cache file of
 * a response being stored): ED_OK, or ED_DECLINED when the client's
 * side failed. */
static int
ed_proxy_slice(void *data, const char *p, size_t n)
{
    ed_http_proxy_ctx_t *ctx = data;

    if (ctx->cache) {
        return ed_http_cache_slice(ctx->r, ctx->cache, p, n);
    }
    return ed_http_send_body(ctx->r, (char *)p, n) == ED_OK ? ED_OK
                                                            : ED_DECLINED;
}

static void
ed_proxy_on_body(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_http_proxy_ctx_t     *ctx = uc->owner;
    ed_http_request_t       *r = ctx->r;
    size_t                   pos;
    int                      rc;

    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    if (status == ED_DECLINED) {
        /* Held head: a piece of chunked body with neither its end nor
         * an error; it streams from here. */
        if (ed_proxy_commit(ctx) != ED_OK) {
            ed_proxy_finish(ctx, ED_ERROR);
            return;
        }
        ed_proxy_flow(ctx);
        return;
    }
    if (status != ED_OK) {
        if (ctx->rbody.kind == ED_HTTP_BODY_CLOSE && status == ED_DONE) {
            /* Through the cache too: a fill's client reads its file. */
            if (len && ed_proxy_slice(ctx, data, len) != ED_OK) {
                ed_proxy_finish(ctx, ED_ERROR);
                return;
            }
            ctx->reusable = 0;
            ed_proxy_done(ctx);
            return;
        }
        ed_http_log(ED_LOG_ERR, ctx->r, 0,
                    "upstream %s closed the connection while sending the "
                    "response body (upstream \"%s\")",
                    ctx->a.server->name.data, ctx->a.ups->name.data);
        ed_proxy_body_failed(ctx, 502);
        return;
    }
    if (!r->header_sent) {
        /* Held head: the first bytes of the body decide. */
        if (ctx->rbody.kind == ED_HTTP_BODY_CHUNKED
            && ed_proxy_chunked_check(data, len, &pos) == ED_ERROR)
        {
            goto invalid;
        }
        if (ed_proxy_commit(ctx) != ED_OK) {
            ed_proxy_finish(ctx, ED_ERROR);
            return;
        }
    }
    pos = 0;
    rc = ed_http_decode_run(&ctx->rbody, data, len, &pos, ed_proxy_slice,
                            ctx);
    if (rc == ED_ERROR) {
        goto invalid;
    }
    if (rc != ED_AGAIN && rc != ED_DONE) {
        ed_proxy_finish(ctx, ED_ERROR);
        return;
    }
    if (rc == ED_DONE) {
        if (pos != len) {
            /* Bytes after the body: not a connection to keep. */
            ctx->reusable = 0;
        }
        if (ed_proxy_trailers(ctx) != ED_OK) {
            ed_proxy_finish(ctx, ED_ERROR);
            return;
        }
        ed_proxy_done(ctx);
        return;
    }
    ed_proxy_flow(ctx);
    return;

invalid:
    ed_http_log(ED_LOG_ERR, ctx->r, 0,
                "upstream %s sent an invalid chunked body (upstream \"%s\")",
                ctx->a.server->name.data, ctx->a.ups->name.data);
    ed_proxy_body_failed(ctx, 502);
}

/* The tunnel after a 101 ended. */
static void
ed_proxy_tunnel_done(void *data)
{
    ed_http_proxy_ctx_t *ctx = data;

    ctx->r->keepalive = 0;
    ed_proxy_finish(ctx, ED_OK);
}

/* Answers 101 and starts the tunnel. Last call. */
static void
ed_proxy_upgrade(ed_http_proxy_ctx_t *ctx, const ed_http_resp_head_t *h)
{
    ed_http_request_t *r = ctx->r;

    ed_http_upstream_attempts_end(&ctx->a, 101);
    if (ed_proxy_copy_headers(ctx, h) != ED_OK
        || (!r->connect_protocol
            && (ed_http_add_header(r, "Upgrade", 7, "websocket", 9) != ED_OK
                || ed_http_add_header(r, "Connection", 10, "upgrade", 7)
                       != ED_OK)))
    {
        ed_proxy_finish(ctx, 502);
        return;
    }
    /* No "Connection: close" on a 101; the connection ends with the
     * tunnel. Over HTTP/2 (RFC 8441) the answer is a 200 whose body is
     * the tunnel's, on the stream. */
    r->keepalive = 1;
    r->status = r->connect_protocol ? 200 : 101;
    r->content_length = -1;
    r->streamed = 1;
    if (r->connect_protocol) {
        ed_http_out_header_del(r, "Sec-WebSocket-Accept", 20);
    }
    if (ed_http_send_header(r) != ED_OK) {
        ed_proxy_finish(ctx, ED_ERROR);
        return;
    }
    r->keepalive = 0;
    ctx->reusable = 0;
    if (!r->connect_protocol) {
        ed_http_body_stop(r);
    }
    if (ed_http_upstream_tunnel(r, ctx->a.uc, ctx->piece,
                                ctx->pcf->read_timeout, ed_proxy_tunnel_done,
                                ctx) != ED_OK)
    {
        ed_proxy_finish(ctx, ED_ERROR);
    }
}

/* Passes the upstream's end-to-end headers and content type on (they
 * point into the request pool's copy of the head). ED_OK or ED_ERROR. */
static int
ed_proxy_copy_headers(ed_http_proxy_ctx_t *ctx, const ed_http_resp_head_t *h)
{
    ed_http_request_t *r = ctx->r;
    ed_http_header_t  *f;
    size_t             i;

    r->content_type = h->content_type;
    for (i = 0; i < h->nheaders; i++) {
        f = &h->headers[i];
        if (ed_http_upstream_skip_response_header(h, &f->name)) {
            continue;
        }
        if (ed_http_add_header(r, f->name.data, f->name.len, f->value.data,
                               f->value.len) != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

/* Makes the client's response head from the upstream's (sent by
 * ed_proxy_commit) and the framing of the body. ED_OK or ED_ERROR. */
static int
ed_proxy_prepare(ed_http_proxy_ctx_t *ctx, ed_http_resp_head_t *h)
{
    ed_http_request_t *r = ctx->r;

    r->status = h->status;
    r->content_length = -1;
    if (ed_worker->quitting && !ed_http_quit_keepalive(r->hc)) {
        /* Shutting down meanwhile: this response is the last (unless
         * its connection is to move to the new generation). */
        r->keepalive = 0;
    }
    if (ed_proxy_copy_headers(ctx, h) != ED_OK) {
        return ED_ERROR;
    }
    /* A cache fetch went upstream as a GET: its body comes whatever
     * the client's method (a HEAD client gets none of it). */
    if ((r->head_only && !(ctx->cache && ctx->cache->may_store))
        || h->status == 204 || h->status == 304 || h->status < 200)
    {
        ed_http_decoder_init(&ctx->rbody, ED_HTTP_BODY_NONE, -1);
        r->content_length = h->content_length;
    } else if (h->chunked) {
        ed_http_decoder_init(&ctx->rbody, ED_HTTP_BODY_CHUNKED, -1);
        if (ed_http_trailers_wanted(r)) {
            /* The upstream's trailers are passed on (ed_proxy_trailers). */
            ctx->rbody.chunked.keep = ed_pnalloc(r->pool,
                                                 ED_HTTP_TRAILERS_MAX);
            if (ctx->rbody.chunked.keep == NULL) {
                return ED_ERROR;
            }
        }
    } else if (h->content_length >= 0) {
        ed_http_decoder_init(&ctx->rbody,
                             h->content_length ? ED_HTTP_BODY_LENGTH
                                               : ED_HTTP_BODY_NONE,
                             h->content_length);
        r->content_length = h->content_length;
    } else {
        ed_http_decoder_init(&ctx->rbody, ED_HTTP_BODY_CLOSE, -1);
    }
    ctx->reusable = ctx->rbody.kind != ED_HTTP_BODY_CLOSE && !h->conn_close
                    && (h->version == 11 || h->conn_keepalive)
                    && !ctx->upgrade;
    if (ctx->cache == NULL) {
        return ED_OK;
    }
    return ed_http_cache_response(r, &ctx->pcf->cache_conf, ctx->cache, h,
                                  ctx->rbody.kind == ED_HTTP_BODY_CLOSE);
}

/* Sends the prepared response head. ED_OK or ED_ERROR. */
static int
ed_proxy_commit(ed_http_proxy_ctx_t *ctx)
{
    /* The body streams in pieces as the upstream sends them. */
    ctx->r->streamed = 1;
    return ed_http_send_header(ctx->r);
}

/* The response head is in. It goes to the client now, unless body bytes
 * came with it or the upstream has closed already: these tell at once
 * whether the body fails, and a failure known before anything was sent
 * is a 502 (http.md), whatever the timing of the reads. Last call. */
static void
ed_proxy_start_body(ed_http_proxy_ctx_t *ctx)
{
    ed_stream_t *us = &ctx->a.uc->c.stream;
    int          rc;

    if (ctx->rbody.kind == ED_HTTP_BODY_NONE) {
        if (ed_proxy_commit(ctx) != ED_OK) {
            ed_proxy_finish(ctx, ED_ERROR);
            return;
        }
        ed_proxy_done(ctx);
        return;
    }
    if (ctx->rbody.kind != ED_HTTP_BODY_CLOSE
        && (us->rdhup || us->eof || us->error))
    {
        /* All the upstream sent is here or in the socket: up to a piece
         * is read before the head goes, so that a body ending early is
         * seen. The scanner stops at the body's end or first bad byte
         * (a piece without either is ED_DECLINED). */
        if (ctx->rbody.kind == ED_HTTP_BODY_LENGTH) {
            rc = ed_stream_read_bytes(us, (size_t)ed_min(ctx->rbody.left,
                                                         (int64_t)ctx->piece),
                                      ed_proxy_on_body);
        } else {
            rc = ed_stream_read_until_scan(us, ed_proxy_scan_chunked,
                                           ctx->piece, ed_proxy_on_body);
        }
        if (rc != ED_OK) {
            ed_proxy_finish(ctx, 500);
            return;
        }
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                        ctx->pcf->read_timeout);
        return;
    }
    if (ctx->rbody.kind == ED_HTTP_BODY_CHUNKED && ed_stream_buffered(us)) {
        /* Checked by ed_proxy_on_body before the head goes. */
        ed_proxy_read_more(ctx);
        return;
    }
    if (ed_proxy_commit(ctx) != ED_OK) {
        ed_proxy_finish(ctx, ED_ERROR);
        return;
    }
    ed_proxy_flow(ctx);
}

static void
ed_proxy_on_head(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_http_proxy_ctx_t     *ctx = uc->owner;
    ed_http_header_t         hdrs[ED_PROXY_MAX_HEADERS];
    ed_http_resp_head_t      h;
    char                    *copy;
    int                      rc;

    if (status == ED_DECLINED) {
        ed_http_log(ED_LOG_ERR, ctx->r, 0,
                    "upstream %s sent a response head larger than %zu bytes "
                    "(upstream \"%s\")",
                    ctx->a.server->name.data, ctx->piece,
                    ctx->a.ups->name.data);
        ed_proxy_fail(ctx, ED_HTTP_UPS_FT_INVALID, 502);
        return;
    }
    if (status != ED_OK) {
        if (len == 0 && ctx->a.reused && !ctx->stale_retried
            && ed_proxy_may_resend(ctx))
        {
            ed_proxy_retry_stale(ctx);
            return;
        }
        ed_http_log(ED_LOG_ERR, ctx->r, 0,
                    "upstream %s closed the connection %s (upstream \"%s\")",
                    ctx->a.server->name.data,
                    len ? "in the middle of the response head"
                        : "without a response",
                    ctx->a.ups->name.data);
        ed_proxy_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
        return;
    }
    /* The head is copied so that response headers outlive the
     * upstream's buffer (filters may look at them later). */
    copy = ed_pnalloc(ctx->r->pool, len);
    if (copy == NULL) {
        ed_proxy_finish(ctx, 500);
        return;
    }
    memcpy(copy, data, len);
    if (ed_http_parse_response(copy, len, &h, hdrs, ED_PROXY_MAX_HEADERS)
        != ED_OK)
    {
        ed_http_log(ED_LOG_ERR, ctx->r, 0,
                    "upstream %s sent an invalid response head "
                    "(upstream \"%s\")",
                    ctx->a.server->name.data, ctx->a.ups->name.data);
        ed_proxy_fail(ctx, ED_HTTP_UPS_FT_INVALID, 502);
        return;
    }
    if (h.status < 200 && h.status != 101) {
        /* 100, 102, 103: interim answers the client does not need. */
        ed_stream_read_until_scan(s, ed_http_head_end, ctx->piece,
                                  ed_proxy_on_head);
        return;
    }
    ctx->head_received = 1;
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    if (h.status == 101) {
        /* Only to the protocol asked for: anything else would carry
         * requests past every check of this server. */
        if (!ctx->upgrade || !ed_http_upstream_websocket_accepted(&h)
            || (ctx->r->connect_protocol
                && !ed_http_upstream_websocket_accept_ok(ctx->r, &h)))
        {
            ed_http_log(ED_LOG_ERR, ctx->r, 0,
                        "upstream %s switched protocols %s "
                        "(upstream \"%s\")",
                        ctx->a.server->name.data,
                        !ctx->upgrade ? "unasked"
                        : ctx->r->connect_protocol
                            ? "without the Sec-WebSocket-Accept its key asks"
                            : "to something other than websocket",
                        ctx->a.ups->name.data);
            ed_proxy_fail(ctx, ED_HTTP_UPS_FT_INVALID, 502);
            return;
        }
        ed_proxy_upgrade(ctx, &h);
        return;
    }
    if (ed_http_upstream_attempts_status(&ctx->a, h.status)
        && ed_proxy_may_resend(ctx))
    {
        ed_http_log(ED_LOG_WARN, ctx->r, 0,
                    "upstream %s answered %d, trying the next server "
                    "(upstream \"%s\")",
                    ctx->a.server->name.data, h.status, ctx->a.ups->name.data);
        ed_http_upstream_failed(ctx->a.ups, ctx->a.server, ed_current_msec,
                                ctx->r);
        ed_proxy_fail(ctx, ED_HTTP_UPS_FT_STATUS, h.status);
        return;
    }
    ed_http_upstream_attempts_end(&ctx->a, h.status);
    if (ctx->cache && ctx->cache->stale
        && ed_http_cache_stale_status(h.status))
    {
        /* An error status a stale entry may answer for (use_stale). */
        rc = ed_http_cache_failed(ctx->r, ctx->cache,
                                  ed_http_cache_stale_status(h.status),
                                  false, h.status);
        if (rc != ED_DECLINED) {
            ed_proxy_teardown(ctx, false);
            ed_http_finalize(ctx->r, rc);
            return;
        }
    }
    if (ctx->cache && ctx->cache->revalidating && h.status == 304) {
        /* The stale entry is still good: refreshed and served. */
        ed_http_upstream_succeeded(ctx->a.server);
        ed_proxy_teardown(ctx, false);
        rc = ed_http_cache_revalidated(ctx->r, &ctx->pcf->cache_conf,
                                       ctx->cache, &h);
        if (rc != ED_AGAIN) {
            /* (ED_AGAIN: a large entry's copy finalizes when over.) */
            ed_http_finalize(ctx->r, rc);
        }
        return;
    }
    if (ed_proxy_prepare(ctx, &h) != ED_OK) {
        ed_proxy_finish(ctx, 500);
        return;
    }
    ed_proxy_start_body(ctx);
}

/* The handler. */

/* The content handler: ED_AGAIN while proxying, or a status (500 on
 * ENOMEM, 502 when no server can be tried). */
int
ed_http_proxy_handler(ed_http_request_t *r)
{
    ed_http_proxy_loc_conf_t *lcf = ed_http_loc_conf(r,
                                                     ed_http_proxy_module);
    ed_http_proxy_conf_t *pcf = lcf->block;
    ed_http_proxy_ctx_t  *ctx;
    int                   rc;

    ctx = ed_pcalloc(r->pool, sizeof(ed_http_proxy_ctx_t));
    if (ctx == NULL
        || ed_http_upstream_attempts_init(&ctx->a, r, pcf->ups,
                                          pcf->next_upstream,
                                          pcf->next_upstream_tries,
                                          ed_proxy_attempt,
                                          ed_proxy_on_utimer, ctx) != ED_OK
        || ed_pool_cleanup_add(r->pool, ed_proxy_cleanup, ctx) != ED_OK)
    {
        return 500;
    }
    if (r->upstream == NULL) {
        r->upstream = ed_pcalloc(r->pool, sizeof(ed_http_upstream_state_t));
        if (r->upstream == NULL) {
            return 500;
        }
    }
    r->upstream->owner = ctx;
    r->upstream->scheme = pcf->tls ? "https://" : "http://";
    r->upstream->peer = pcf->ups->name;
    r->upstream->head.len = 0;
    ctx->r = r;
    ctx->pcf = pcf;
    ctx->piece = ed_worker->bufs.size > 2 * ED_PROXY_SLACK
                     ? ed_worker->bufs.size - ED_PROXY_SLACK
                     : ed_worker->bufs.size;
    ctx->piece = ed_min(ctx->piece, pcf->buffer_size);
    /* An error page run through the proxy sends no body: what is left of
     * the client's is discarded. */
    ctx->has_body = !r->internal && ed_http_has_body(r)
                    && !r->connect_protocol;
    ctx->upgrade = pcf->websocket && !r->internal
                   && ed_http_upstream_websocket_asked(r);
    if (ctx->has_body) {
        ctx->replay_cap = ed_http_decoder_want(&r->body_dec,
                                               pcf->buffer_size);
        ctx->replay = ed_pnalloc(r->pool, ctx->replay_cap + 1);
        if (ctx->replay == NULL) {
            return 500;
        }
    }

    rc = ed_http_cache_start(r, &pcf->cache_conf, &ctx->cache,
                             ed_proxy_cache_resume, ctx);
    if (rc == ED_AGAIN) {
        /* Another request fetches the key: woken when it is done. */
        return ED_AGAIN;
    }
    if (rc != ED_DECLINED) {
        /* A hit served, or an answer without the upstream. */
        ed_proxy_teardown(ctx, false);
        return rc;
    }
    rc = ed_proxy_go(ctx);
    if (rc != ED_AGAIN) {
        ed_proxy_teardown(ctx, false);
        if (rc >= 500) {
            /* No server to try: a stale entry may answer. */
            int s = ed_http_cache_failed(r, ctx->cache,
                                         ED_CACHE_STALE_ERROR, true,
                                         rc);

            rc = s != ED_DECLINED ? s : rc;
        }
        return rc;
    }
    return ED_AGAIN;
}

/* Picks the first server and starts: ED_AGAIN, or the status to answer
 * with. */
static int
ed_proxy_go(ed_http_proxy_ctx_t *ctx)
{
    /* Sized for the upstream's pieces (a cache hit keeps the default:
     * file ranges of any size). */
    ed_http_output_buffer(ctx->r, ctx->pcf->buffer_size);
    if (ed_http_upstream_attempts_hash(&ctx->a) != ED_OK) {
        return 500;
    }
    return ed_http_upstream_attempts_next(&ctx->a);
}

/* A request that waited for another one's fetch goes on. */
static void
ed_proxy_cache_resume(ed_http_request_t *r, void *data, int rc)
{
    ed_http_proxy_ctx_t *ctx = data;

    ed_unused(r);
    if (rc == ED_DECLINED) {
        rc = ed_proxy_go(ctx);
        if (rc == ED_AGAIN) {
            return;
        }
        ed_proxy_finish_failed(ctx, ED_HTTP_UPS_FT_ERROR, rc);
        return;
    }
    ed_proxy_finish(ctx, rc);
}
