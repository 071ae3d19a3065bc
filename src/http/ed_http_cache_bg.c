/* The cache's detached fetches: a request of their own, without
 * a client, on a protocol whose output goes nowhere. A background
 * refresh (background_update) lets the client that found the stale
 * entry go; a miss's fetch (cache.md, Misses: the streaming miss) reads
 * the upstream at its own pace into the temp file the client follows,
 * and goes on if the client goes. */
#include "ed_http_cache_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

/* A refresh lives in its own pool, with copies of what it needs of the
 * client's request (head, connection's addresses). */
typedef struct ed_cache_bg_s {
    ed_http_request_t *br;
    ed_defer_t         post;      /* runs the handler, then frees */
    ed_timer_t         timer;     /* the protocol's; never armed */
    ed_http_conn_t     hc;        /* addresses and listener only */
    ed_listener_t      ls;        /* a wildcard listener's copy */
    ed_defer_t         drain;     /* a fill's client took its lag */
    unsigned           started:1;
    unsigned           ended:1;
    unsigned           drain_wanted:1;
    /* The worker's fetches under way, for its exit. */
    struct ed_cache_bg_s *next;
    struct ed_cache_bg_s *prev;
} ed_cache_bg_t;

static ed_cache_bg_t *ed_cache_bg_live;

static ed_cache_bg_t *
ed_cache_bg(ed_http_request_t *r)
{
    return ((ed_http_cache_req_t *)r->upstream->cache)->bg;
}

static int
ed_cache_bg_head(ed_http_request_t *r, const void *body, size_t len)
{
    ed_unused(body);
    ed_unused(len);
    r->header_sent = 1;
    return ED_OK;
}

static int
ed_cache_bg_piece(ed_http_request_t *r, const ed_http_piece_t *p)
{
    ed_unused(r);
    ed_unused(p);
    return ED_OK;
}

static int
ed_cache_bg_end(ed_http_request_t *r)
{
    ed_unused(r);
    return ED_OK;
}

/* Bytes the worker's private files hold ahead of what their clients
 * took. */
static uint64_t
ed_cache_bg_ahead(void)
{
    ed_http_cache_req_t   *c, *ic;
    ed_cache_bg_t         *bg;
    uint64_t               n = 0;

    for (bg = ed_cache_bg_live; bg != NULL; bg = bg->next) {
        c = bg->br->upstream->cache;
        ic = c->initiator;
        if ((c->spool || c->unstored) && ic != NULL
            && c->written > ic->soff)
        {
            n += c->written - ic->soff;
        }
    }
    return n;
}

/* A fetch writing a response not stored for its client (a private
 * file, or a fill past max_entry_size) waits when the client lags too
 * far behind (the file it follows stays small): more than c->lag, or
 * more than a short lag once the worker's such files together are that
 * far ahead (clients that never read would each pin c->lag, or
 * max_size, of disk otherwise). Any other reads at the upstream's
 * pace, as one whose client went. */
static bool
ed_cache_bg_blocked(ed_http_request_t *r)
{
    ed_http_cache_req_t   *c = r->upstream->cache, *ic = c->initiator;
    uint64_t               small;

    if (!(c->spool || c->unstored) || ic == NULL) {
        return false;
    }
    small = 4 * (uint64_t)ed_max(c->conf->buffer_size, (size_t)16384);
    if (c->written <= ic->soff + ed_min(small, c->lag)) {
        return false;
    }
    return c->written > ic->soff + c->lag || ed_cache_bg_ahead() > c->lag;
}

static bool
ed_cache_bg_true(ed_http_request_t *r)
{
    ed_unused(r);
    return true;
}

static size_t
ed_cache_bg_queued(ed_http_request_t *r)
{
    ed_unused(r);
    return 0;
}

static void
ed_cache_bg_notify(ed_http_request_t *r, bool on)
{
    ed_cache_bg(r)->drain_wanted = on;
}

static void
ed_cache_bg_drain(ed_defer_t *d)
{
    ed_cache_bg_t *bg = ed_container_of(d, ed_cache_bg_t, drain);

    if (!bg->ended) {
        ed_http_output_drained(bg->br);
    }
}

void
ed_pc_fill_drained(ed_http_cache_req_t *c)
{
    ed_cache_bg_t *bg = c->bg;

    if (bg != NULL && bg->drain_wanted && !ed_cache_bg_blocked(bg->br)) {
        bg->drain_wanted = 0;
        ed_loop_post(ed_worker->loop, &bg->drain);
    }
}

/* send_timeout of a fetch waiting for its client: the client's own
 * send_timeout ends it, and so this fetch. */
static void
ed_cache_bg_timeout(ed_timer_t *t)
{
    ed_unused(t);
}

static void
ed_cache_bg_noop(ed_http_request_t *r)
{
    ed_unused(r);
}

static void
ed_cache_bg_buffer(ed_http_request_t *r, size_t size)
{
    ed_unused(r);
    ed_unused(size);
}

static ed_timer_t *
ed_cache_bg_timer(ed_http_request_t *r)
{
    return &ed_cache_bg(r)->timer;
}

static int
ed_cache_bg_read_body(ed_http_request_t *r, ed_http_body_pt cb, void *data)
{
    ed_unused(r);
    ed_unused(cb);
    ed_unused(data);
    return ED_DONE;
}

/* The refresh is over: its pool goes, from the loop. */
static void
ed_cache_bg_end_request(ed_http_request_t *r)
{
    ed_cache_bg_t *bg = ed_cache_bg(r);

    bg->ended = 1;
    ed_loop_post(ed_worker->loop, &bg->post);
}

static const ed_http_proto_t ed_cache_bg_proto = {
    .name = "cache refresh",
    .head = ed_cache_bg_head,
    .piece = ed_cache_bg_piece,
    .end = ed_cache_bg_end,
    .blocked = ed_cache_bg_blocked,
    .queued = ed_cache_bg_queued,
    .written = ed_cache_bg_true,
    .notify_drain = ed_cache_bg_notify,
    .notify_flushed = ed_cache_bg_noop,
    .buffer = ed_cache_bg_buffer,
    .timer = ed_cache_bg_timer,
    .read_body = ed_cache_bg_read_body,
    .body_pause = ed_cache_bg_noop,
    .body_resume = ed_cache_bg_noop,
    .body_stop = ed_cache_bg_noop,
    .done = ed_cache_bg_end_request,
    .fail = ed_cache_bg_end_request,
};

static void
ed_cache_bg_free(ed_cache_bg_t *bg)
{
    if (bg->prev) {
        bg->prev->next = bg->next;
    } else {
        ed_cache_bg_live = bg->next;
    }
    if (bg->next) {
        bg->next->prev = bg->prev;
    }
    ed_timer_del(ed_worker->loop, &bg->timer);
    ed_loop_unpost(ed_worker->loop, &bg->drain);
    ed_loop_unpost(ed_worker->loop, &bg->post);
    ed_pool_destroy(bg->br->pool);
}

/* First post: the proxy handler; second: the pool goes. */
static void
ed_cache_bg_run(ed_defer_t *d)
{
    ed_cache_bg_t     *bg = ed_container_of(d, ed_cache_bg_t, post);
    ed_http_request_t *br = bg->br;
    int                rc;

    if (!bg->started) {
        bg->started = 1;
        rc = br->loc->handler(br);
        if (rc != ED_AGAIN) {
            ed_http_finalize(br, rc >= 100 ? ED_ERROR : rc);
        }
        return;
    }
    ed_cache_bg_free(bg);
}

/* The worker exits with fetches under way (past shutdown_timeout, or
 * stopped): each ends as a request whose client went would, its temp
 * file removed and its key's fill released, its upstream closed. */
void
ed_http_cache_bg_exit(void)
{
    while (ed_cache_bg_live != NULL) {
        ed_cache_bg_free(ed_cache_bg_live);
    }
}

/* $server_addr and $server_port (fastcgi's SERVER_ADDR, SERVER_PORT)
 * ask a wildcard listener's connection for the address its client
 * reached: the fetch has no socket, and gets in bg->ls a copy of the
 * client's listener bound to that address. False: the client's listener
 * says it (one address and port, a unix socket), or it is unknown. */
static bool
ed_cache_bg_listener(ed_http_request_t *r, ed_cache_bg_t *bg)
{
    const ed_listener_t *ls = r->hc->c.ls;
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ls->addr;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ls->addr;
    socklen_t len = sizeof(bg->ls.addr);

    if ((ls->addr.ss_family == AF_INET && in->sin_port != 0
         && in->sin_addr.s_addr != htonl(INADDR_ANY))
        || (ls->addr.ss_family == AF_INET6 && in6->sin6_port != 0
            && !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
        || (ls->addr.ss_family != AF_INET && ls->addr.ss_family != AF_INET6)
        || r->hc->c.stream.ev.fd < 0)
    {
        return false;
    }
    bg->ls = *ls;
    if (getsockname(r->hc->c.stream.ev.fd, (struct sockaddr *)&bg->ls.addr,
                    &len) != 0)
    {
        return false;
    }
    bg->ls.addrlen = len;
    return true;
}

/* Copies s into pool memory. */
static int
ed_cache_dup(ed_pool_t *pool, ed_str_t *s)
{
    return s->data ? ed_str_dup(pool, s, s->data, s->len) : ED_OK;
}

/* Starts a fetch of c's key detached from r, which hands it its fill
 * of the key (the temp file waiters watch): a refresh, or (handed) the
 * fetch of a miss or of a stale entry that r follows, with r's lookup
 * (a dup of the stale entry to revalidate). ED_OK, or ED_ERROR: r keeps
 * the fill and fetches itself. */
int
ed_pc_background(ed_http_request_t *r, ed_http_cache_req_t *c,
                 bool handed)
{
    ed_http_request_t     *br;
    ed_http_cache_req_t   *bc;
    ed_cache_bg_t         *bg;
    ed_http_header_t      *f;
    ed_pool_t             *pool;
    char                  *tmp;
    size_t                 i;

    pool = ed_pool_create(4096);
    if (pool == NULL) {
        return ED_ERROR;
    }
    br = ed_pcalloc(pool, sizeof(ed_http_request_t));
    bg = ed_pcalloc(pool, sizeof(ed_cache_bg_t));
    bc = ed_pcalloc(pool, sizeof(ed_http_cache_req_t));
    f = ed_palloc(pool, (r->head.nheaders + 1) * sizeof(ed_http_header_t));
    if (br == NULL || bg == NULL || bc == NULL || f == NULL
        || ed_array_init(&br->headers_out, pool, 4,
                         sizeof(ed_http_out_header_t)) != ED_OK
        || (br->upstream = ed_pcalloc(pool,
                                      sizeof(ed_http_upstream_state_t)))
               == NULL)
    {
        goto failed;
    }
    br->pool = pool;
    br->proto = &ed_cache_bg_proto;
    /* The client's addresses and listener, nothing of its socket. */
    bg->hc.c.ls = ed_cache_bg_listener(r, bg) ? &bg->ls : r->hc->c.ls;
    bg->hc.c.peer = r->hc->c.peer;
    bg->hc.c.stream.ev.fd = -1;
    bg->hc.number = r->hc->number;
    bg->hc.r = br;
    br->hc = &bg->hc;
    br->head = r->head;
    br->head.method_id = ED_HTTP_GET;
    ed_str_set(&br->head.method, "GET");
    br->head.content_length = -1;
    br->head.chunked = 0;
    for (i = 0; i < r->head.nheaders; i++) {
        f[i] = r->head.headers[i];
        if (ed_cache_dup(pool, &f[i].name) != ED_OK
            || ed_cache_dup(pool, &f[i].value) != ED_OK)
        {
            goto failed;
        }
    }
    br->head.headers = br->head.fields = f;
    br->head.nfields = r->head.nheaders;
    /* The request line of its log lines: the client's buffer that held
     * it is reused once the client goes, and the fetch outlives it. */
    if (r->head.line != NULL) {
        br->head.line = ed_pstrdup(pool, r->head.line, r->head.line_len);
        if (br->head.line == NULL) {
            goto failed;
        }
    }
    br->uri = r->uri;
    br->host = r->host;
    br->request_id = r->request_id;
    if (ed_cache_dup(pool, &br->head.target) != ED_OK
        || ed_cache_dup(pool, &br->head.path) != ED_OK
        || ed_cache_dup(pool, &br->head.query) != ED_OK
        || ed_cache_dup(pool, &br->head.authority) != ED_OK
        || ed_cache_dup(pool, &br->head.host) != ED_OK
        || ed_cache_dup(pool, &br->uri) != ED_OK
        || ed_cache_dup(pool, &br->host) != ED_OK
        || ed_cache_dup(pool, &br->request_id) != ED_OK)
    {
        goto failed;
    }
    if (r->remote && r->remote != &r->hc->c.peer) {
        ed_peer_addr_t *a = ed_palloc(pool, sizeof(*a));

        if (a == NULL) {
            goto failed;
        }
        *a = *r->remote;
        br->remote = a;
    }
    br->server = r->server;
    br->loc = r->loc;
    br->loc_conf = r->loc_conf;
    br->clcf = r->clcf;
    br->uri_rewritten = r->uri_rewritten;
    br->redirects = r->redirects;
    br->start_msec = ed_current_msec;
    br->content_length = -1;
    br->head_only = 1;       /* nothing of the body goes anywhere */
    br->background = 1;

    /* The fill and the stale entry's key go to the refresh. */
    bc->r = br;
    bc->conf = c->conf;
    bc->cache = c->cache;
    bc->fd = -1;
    bc->sfd = -1;
    bc->sfd_prev = -1;
    bc->tmp_fd = -1;         /* until all else is done: the cleanup */
    bc->bg = bg;
    bc->key = c->key;
    memcpy(bc->main_hash, c->main_hash, ED_CACHE_HASH_LEN);
    memcpy(bc->lock_hash, c->lock_hash, ED_CACHE_HASH_LEN);
    bc->serial = c->serial;
    bc->start = c->start;
    bc->gen = c->gen;
    bc->marker = c->marker;
    bc->vary = c->vary;
    tmp = NULL;
    if (ed_cache_dup(pool, &bc->key) != ED_OK
        || ed_cache_dup(pool, &bc->vary) != ED_OK
        || (c->tmp_path
            && (tmp = ed_pstrdup(pool, c->tmp_path, strlen(c->tmp_path)))
               == NULL)
        || ed_pool_cleanup_add(pool, ed_pc_cleanup, bc) != ED_OK)
    {
        goto failed;
    }
    if (handed) {
        /* The client's lookup, as if the fetch had made it. */
        bc->handed = 1;
        bc->fwd = c->fwd;
        bc->status = c->status;
        bc->uses = c->uses;
        bc->igen = c->igen;
        memcpy(bc->hash, c->hash, ED_CACHE_HASH_LEN);
        bc->stale = c->stale;
        bc->revalidating = c->revalidating;
        bc->lookup = 1;
        bc->may_store = 1;
        if (c->stale && c->fd >= 0) {
            bc->hdr = c->hdr;
            bc->read = c->read;
            bc->prefix = ed_pnalloc(pool, c->read ? c->read : 1);
            if (bc->prefix == NULL) {
                goto failed;
            }
            memcpy(bc->prefix, c->prefix, c->read);
            bc->fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
            if (bc->fd < 0) {
                goto failed;
            }
        }
        bc->initiator = c;
        c->fill = bc;
    }
    bc->tmp_fd = c->tmp_fd;
    bc->tmp_path = tmp;
    bc->locked = c->locked;
    c->locked = 0;
    c->tmp_fd = -1;
    c->tmp_path = NULL;
    br->upstream->cache = bc;
    bg->br = br;
    bg->drain.handler = ed_cache_bg_drain;
    bg->timer.handler = ed_cache_bg_timeout;
    bg->timer.data = bg;
    bg->post.handler = ed_cache_bg_run;
    ed_loop_post(ed_worker->loop, &bg->post);
    bg->next = ed_cache_bg_live;
    if (bg->next) {
        bg->next->prev = bg;
    }
    ed_cache_bg_live = bg;
    return ED_OK;

failed:
    ed_pool_destroy(pool);
    return ED_ERROR;
}

/* The refresh's own start: the stale entry again (its validators), then
 * upstream. ED_DECLINED, or ED_ERROR when there is nothing to do. */
int
ed_pc_bg_start(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    int rc;

    if (c->handed) {
        /* Its client looked up already. */
        return ED_DECLINED;
    }
    c->may_store = 1;
    c->lookup = 1;
    c->fwd = "stale";
    c->status = "EXPIRED";
    rc = ed_pc_find(r, c);
    c->uses = UINT32_MAX;    /* counted by the request that started it */
    if (rc == ED_OK && c->hdr.lifetime > 0 && ed_pc_ttl(&c->hdr) > 0) {
        /* Refreshed meanwhile. */
        return ED_ERROR;
    }
    if (rc == ED_OK) {
        c->stale = 1;
        c->revalidating = c->conf->revalidate
                          && (c->hdr.etag_len || c->hdr.last_modified >= 0);
    }
    return rc == ED_ERROR ? ED_ERROR : ED_DECLINED;
}

