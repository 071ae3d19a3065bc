/* Subrequests: a GET eddy makes itself, answered by one of the server's
 * locations as a client's request would be, with its output captured
 * instead of sent. The child is a request of its own (its own pool,
 * location, handler state) on a protocol of its own, ed_http_sub_proto:
 * the handler and the output path do not know the difference, so a
 * handler that goes only through the output path (return, proxy: the
 * locations with loc->subrequest) answers it unchanged, the proxy with
 * its upstream pool and timeouts. It runs and ends from the loop, never
 * inside the call that started it. auth_request is the first user. */
#include "ed_http.h"

struct ed_http_sub_s {
    ed_http_request_t   *sr;
    ed_http_request_t   *parent;
    ed_http_sub_body_pt  body;
    ed_http_sub_done_pt  done;
    void                *data;
    ed_defer_t           post;     /* runs the handler, then the end */
    ed_timer_t           timer;    /* the protocol's; never armed */
    int                  rc;       /* the result, for done */
    unsigned             started:1;
    unsigned             ended:1;
    unsigned             freed:1;
};

#define ED_SUB_POOL_SIZE 4096

/* The capturing protocol: the head is kept in sr (status, headers_out,
 * content_type, content_length), body pieces go to the owner's body
 * callback, and the flow never blocks (nothing is queued). */

static int
ed_http_sub_piece(ed_http_request_t *r, const ed_http_piece_t *p)
{
    ed_http_sub_t *sub = r->sub;

    r->body_bytes_sent += p->len;
    if (sub->body == NULL || p->len == 0) {
        return ED_OK;
    }
    return sub->body(r, sub->data, p);
}

static int
ed_http_sub_head(ed_http_request_t *r, const void *body, size_t len)
{
    ed_http_piece_t p;

    r->header_sent = 1;
    if (len == 0 || r->head_only || !ed_http_status_has_body(r->status)) {
        return ED_OK;
    }
    p.data = body;
    p.len = len;
    p.fd = -1;
    p.off = 0;
    return ed_http_sub_piece(r, &p);
}

static int
ed_http_sub_end(ed_http_request_t *r)
{
    ed_unused(r);
    return ED_OK;
}

static bool
ed_http_sub_blocked(ed_http_request_t *r)
{
    ed_unused(r);
    return false;
}

static size_t
ed_http_sub_queued(ed_http_request_t *r)
{
    ed_unused(r);
    return 0;
}

static bool
ed_http_sub_written(ed_http_request_t *r)
{
    ed_unused(r);
    return true;
}

static void
ed_http_sub_notify(ed_http_request_t *r, bool on)
{
    ed_unused(r);
    ed_unused(on);
}

static void
ed_http_sub_notify_flushed(ed_http_request_t *r)
{
    ed_unused(r);
}

static void
ed_http_sub_buffer(ed_http_request_t *r, size_t size)
{
    ed_unused(r);
    ed_unused(size);
}

static ed_timer_t *
ed_http_sub_timer(ed_http_request_t *r)
{
    return &r->sub->timer;
}

/* A subrequest has no body. */
static int
ed_http_sub_read_body(ed_http_request_t *r, ed_http_body_pt cb, void *data)
{
    ed_unused(r);
    ed_unused(cb);
    ed_unused(data);
    return ED_DONE;
}

static void
ed_http_sub_body_noop(ed_http_request_t *r)
{
    ed_unused(r);
}

static const ed_http_proto_t ed_http_sub_proto = {
    .name = "subrequest",
    .head = ed_http_sub_head,
    .piece = ed_http_sub_piece,
    .end = ed_http_sub_end,
    .blocked = ed_http_sub_blocked,
    .queued = ed_http_sub_queued,
    .written = ed_http_sub_written,
    .notify_drain = ed_http_sub_notify,
    .notify_flushed = ed_http_sub_notify_flushed,
    .buffer = ed_http_sub_buffer,
    .timer = ed_http_sub_timer,
    .read_body = ed_http_sub_read_body,
    .body_pause = ed_http_sub_body_noop,
    .body_resume = ed_http_sub_body_noop,
    .body_stop = ed_http_sub_body_noop,
};

/* Whether the parent's field h goes to the subrequest: not hop-by-hop
 * (nor named by Connection), no framing of a body it does not have, no
 * Expect, nothing the caller sets itself. */
static bool
ed_http_sub_keep(const ed_http_request_t *r, const ed_http_header_t *h,
                 const ed_http_sub_conf_t *c)
{
    bool   found;
    size_t i;

    if ((ED_HTTP_HOP_BY_HOP | ED_HTTP_F_BIT(ED_HTTP_F_CONTENT_LENGTH)
         | ED_HTTP_F_BIT(ED_HTTP_F_EXPECT)
         | ED_HTTP_F_BIT(ED_HTTP_F_HTTP2_SETTINGS))
        & ED_HTTP_F_BIT(ed_http_field_id(h->name.data, h->name.len)))
    {
        return false;
    }
    for (i = 0; i < c->nheaders; i++) {
        if (ed_http_token_eq(h->name.data, h->name.len,
                             c->headers[i].name.data,
                             c->headers[i].name.len))
        {
            return false;
        }
    }
    ed_http_fields_list(r->head.headers, r->head.nheaders, "connection", 10,
                        h->name.data, h->name.len, &found);
    return !found;
}

/* sr's head: a GET for the path, HTTP/1.1, the parent's Host and kept
 * fields, then the caller's. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_http_sub_head_init(ed_http_request_t *sr, ed_http_request_t *r,
                      const ed_http_sub_conf_t *c)
{
    ed_http_req_head_t *h = &sr->head;
    ed_http_header_t   *f;
    size_t              i, n = 0;

    f = ed_palloc(sr->pool, (r->head.nheaders + c->nheaders + 1)
                                * sizeof(ed_http_header_t));
    if (f == NULL) {
        return ED_ERROR;
    }
    for (i = 0; i < r->head.nheaders; i++) {
        if (ed_http_sub_keep(r, &r->head.headers[i], c)) {
            f[n++] = r->head.headers[i];
        }
    }
    for (i = 0; i < c->nheaders; i++) {
        f[n++] = c->headers[i];
    }
    memset(h, 0, sizeof(*h));
    ed_str_set(&h->method, "GET");
    h->method_id = ED_HTTP_GET;
    h->target = c->uri;
    h->path = c->uri;
    h->version = 11;
    h->headers = f;
    h->nheaders = n;
    h->fields = f;
    h->nfields = n;
    h->host = r->head.host;
    h->content_length = -1;
    return ED_OK;
}

/* Runs the handler (first post), then the owner's callback (second). */
static void
ed_http_sub_on_post(ed_defer_t *d)
{
    ed_http_sub_t     *sub = ed_container_of(d, ed_http_sub_t, post);
    ed_http_request_t *sr = sub->sr;
    int                rc;

    if (!sub->started) {
        sub->started = 1;
        if (!sr->loc->subrequest) {
            ed_http_log(ED_LOG_ERR, sr, 0, "location \"%s\" cannot answer "
                        "a subrequest", sr->loc->name.data);
            rc = 500;
        } else {
            rc = sr->loc->handler(sr);
        }
        if (rc != ED_AGAIN) {
            ed_http_finalize(sr, rc);
        }
        return;
    }
    sub->done(sr, sub->data, sub->rc);
}

static void
ed_http_sub_cleanup(void *data)
{
    ed_http_sub_t *sub = data;

    if (!sub->freed) {
        ed_http_subrequest_free(sub->sr);
    }
}

ed_http_request_t *
ed_http_subrequest(ed_http_request_t *r, const ed_http_sub_conf_t *c)
{
    ed_http_request_t *sr;
    ed_http_sub_t     *sub;
    ed_pool_t         *pool;
    char              *buf;

    sub = ed_pcalloc(r->pool, sizeof(ed_http_sub_t));
    if (sub == NULL
        || ed_pool_cleanup_add(r->pool, ed_http_sub_cleanup, sub) != ED_OK)
    {
        return NULL;
    }
    /* Freed already, for the cleanup, until the child exists. */
    sub->freed = 1;
    pool = ed_pool_create(ED_SUB_POOL_SIZE);
    if (pool == NULL) {
        return NULL;
    }
    sr = ed_pcalloc(pool, sizeof(ed_http_request_t));
    buf = ed_pnalloc(pool, c->uri.len + 1);
    if (sr == NULL || buf == NULL
        || ed_array_init(&sr->headers_out, pool, 4,
                         sizeof(ed_http_out_header_t)) != ED_OK)
    {
        ed_pool_destroy(pool);
        return NULL;
    }
    sr->pool = pool;
    sub->freed = 0;
    sub->sr = sr;
    sub->parent = r;
    sub->body = c->body;
    sub->done = c->done;
    sub->data = c->data;
    sub->post.handler = ed_http_sub_on_post;
    sub->timer.data = sub;

    sr->proto = &ed_http_sub_proto;
    sr->hc = r->hc;
    sr->parent = r;
    sr->sub = sub;
    sr->remote = r->remote;
    sr->server = r->server;
    sr->host = r->host;
    sr->remote_user = r->remote_user;
    sr->request_id = r->request_id;
    sr->start_msec = ed_current_msec;
    sr->content_length = -1;
    /* No error pages, no body upstream: as an error page's request. */
    sr->internal = 1;
    if (ed_http_sub_head_init(sr, r, c) != ED_OK
        || ed_http_normalize_path(c->uri.data, c->uri.len, buf, &sr->uri.len)
               != ED_OK)
    {
        ed_http_subrequest_free(sr);
        return NULL;
    }
    buf[sr->uri.len] = '\0';
    sr->uri.data = buf;
    sr->loc = ed_http_find_location(sr->server, sr, &sr->uri);
    sr->loc_conf = sr->loc->conf;
    sr->clcf = sr->loc_conf[ed_http_core_module.index];
    ed_loop_post(ed_worker->loop, &sub->post);
    return sr;
}

void
ed_http_subrequest_finalize(ed_http_request_t *sr, int rc)
{
    ed_http_sub_t *sub = sr->sub;

    if (sr->finalized) {
        return;
    }
    sr->finalized = 1;
    if (rc >= 100 && !sr->header_sent) {
        /* What a client would get: that status's error response. */
        sr->status = rc;
        ed_http_out_headers_error(sr, rc);
        rc = ED_OK;
    } else if (rc != ED_OK || !sr->header_sent) {
        rc = ED_ERROR;
    }
    sub->rc = rc;
    sub->ended = 1;
    /* From the loop: the handler that finalized unwinds first. */
    ed_loop_post(ed_worker->loop, &sub->post);
}

void
ed_http_subrequest_free(ed_http_request_t *sr)
{
    ed_http_sub_t *sub = sr->sub;

    if (sub->freed) {
        return;
    }
    sub->freed = 1;
    ed_loop_unpost(ed_worker->loop, &sub->post);
    /* Its cleanups run: a proxy closes its upstream connection. */
    ed_pool_destroy(sr->pool);
}
