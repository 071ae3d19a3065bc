/* The HTTP/1.x connection: reading heads, dispatching requests, keep-alive,
 * pipelining, discarding unread bodies, timeouts and closing. */
#include "ed_http.h"
#include "ed_handover.h"
#include "ed_stats.h"
#include "ed_tls.h"

#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define ED_HTTP_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ED_HTTP_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ED_HTTP_POISON(p, n)
#define ED_HTTP_UNPOISON(p, n)
#endif

#define ED_HTTP_POOL_SIZE     4096
#define ED_HTTP_POOL_CACHE    64
#define ED_HTTP_LINGER_MSEC   2000
/* A lingering close drains at most this much: enough for what was in
 * flight when the response went out, not a way to make eddy read a
 * refused body whole. Fits hc->linger_left. */
#define ED_HTTP_LINGER_MAX    (1024 * 1024)
/* A worker told to quit closes an idle keep-alive connection only once it
 * has been idle that long: a client sending requests in a loop sends the
 * next one within it and gets it answered (with Connection: close), where
 * closing at once would race with that request (a reset under it). */
#define ED_HTTP_QUIT_IDLE_MSEC 1000
/* Connections are carved from blocks of this size. */
#define ED_HTTP_CONN_BLOCK    65536

static void ed_http_wait_head(ed_http_conn_t *hc);
static void ed_http_on_head(ed_stream_t *s, int status, char *data,
                            size_t len);
static void ed_http_next(ed_http_conn_t *hc);
static void ed_http_close_after_flush(ed_http_conn_t *hc);
static void ed_http_on_timeout(ed_timer_t *t);
static void ed_http_on_stream_close(ed_stream_t *s);
static void ed_http_conn_shutdown(ed_conn_t *c);
static int ed_http_handoff(ed_http_conn_t *hc);
static void ed_http_discard_body(ed_http_request_t *r);
static void ed_http_wait_drain(ed_http_conn_t *hc);
static bool ed_http_unread_input(ed_conn_t *c);
static bool ed_http_conn_silent(ed_http_conn_t *hc);
static void ed_http_on_linger(ed_stream_t *s, int status, char *data,
                              size_t len);
static void ed_http_on_flushed_handoff(ed_stream_t *s);

/* Request pools are reused: a keep-alive request costs no malloc. */
static ed_pool_t *ed_http_pools[ED_HTTP_POOL_CACHE];
static size_t     ed_http_npools;

ed_pool_t *
ed_http_pool_get(void)
{
    if (ed_http_npools) {
        return ed_http_pools[--ed_http_npools];
    }
    return ed_pool_create(ED_HTTP_POOL_SIZE);
}

void
ed_http_pool_put(ed_pool_t *pool)
{
    ed_pool_reset(pool);
    if (ed_http_npools < ED_HTTP_POOL_CACHE) {
        ed_http_pools[ed_http_npools++] = pool;
    } else {
        ed_pool_destroy(pool);
    }
}

/* Connections come from blocks of ED_HTTP_CONN_BLOCK bytes and go back
 * to a free list, never to malloc: no malloc header per connection (idle
 * ones are many and small) and no malloc call per accept once the worker
 * has seen its peak. The blocks, linked through their first word, stay
 * for the worker's life. Free slots are poisoned for AddressSanitizer. */
typedef union ed_http_conn_slot_u ed_http_conn_slot_t;

union ed_http_conn_slot_u {
    ed_http_conn_t       hc;
    ed_http_conn_slot_t *next;
};

static ed_http_conn_slot_t *ed_http_conn_free;
static void                *ed_http_conn_blocks;

/* A zeroed connection, or NULL on ENOMEM (logged). */
static ed_http_conn_t *
ed_http_conn_alloc(void)
{
    ed_http_conn_slot_t *sl;
    char                *b;
    size_t               i, n;

    if (ed_http_conn_free == NULL) {
        b = malloc(ED_HTTP_CONN_BLOCK);
        if (b == NULL) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "malloc() failed");
            return NULL;
        }
        *(void **)b = ed_http_conn_blocks;
        ed_http_conn_blocks = b;
        sl = (ed_http_conn_slot_t *)(b + sizeof(ed_http_conn_slot_t));
        n = ED_HTTP_CONN_BLOCK / sizeof(ed_http_conn_slot_t) - 1;
        for (i = 0; i < n; i++) {
            sl[i].next = i + 1 < n ? &sl[i + 1] : NULL;
            ED_HTTP_POISON(&sl[i], sizeof(ed_http_conn_slot_t));
        }
        ed_http_conn_free = sl;
    }
    sl = ed_http_conn_free;
    ED_HTTP_UNPOISON(sl, sizeof(ed_http_conn_slot_t));
    ed_http_conn_free = sl->next;
    memset(sl, 0, sizeof(ed_http_conn_slot_t));
    return &sl->hc;
}

static void
ed_http_conn_release(ed_http_conn_t *hc)
{
    ed_http_conn_slot_t *sl = (ed_http_conn_slot_t *)hc;

    ed_http_pp_free(hc);
    sl->next = ed_http_conn_free;
    ed_http_conn_free = sl;
    ED_HTTP_POISON(sl, sizeof(ed_http_conn_slot_t));
}

static ed_http_core_loc_conf_t *
ed_http_conn_clcf(ed_http_conn_t *hc)
{
    return ed_http_conn_addr(hc)->default_server
        ->loc_conf[ed_http_core_module.index];
}

/* A response written whole in one writev is never held by Nagle's
 * algorithm, so a connection that serves one request and closes needs no
 * TCP_NODELAY (a system call saved per connection, as nginx). It is set
 * once a connection goes keep-alive (a small response must not wait for
 * the ACK of the previous one), on TLS, and when a response streams. */
void
ed_http_nodelay(ed_http_conn_t *hc)
{
    int one = 1;

    if (!hc->nodelay && hc->c.peer.sa.sa_family != AF_UNIX) {
        setsockopt(hc->c.stream.ev.fd, IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof(one));
    }
    hc->nodelay = 1;
}

void
ed_http_accept(ed_listener_t *ls, int fd, const ed_peer_addr_t *peer)
{
    ed_http_conn_t *hc;

    hc = ed_http_conn_alloc();
    if (hc == NULL) {
        close(fd);
        return;
    }
    ed_stream_init_lazy(&hc->c.stream, ed_worker->loop, &ed_worker->bufs, fd,
                        hc);
    hc->c.ls = ls;
    hc->c.peer = *peer;
    hc->c.shutdown = ed_http_conn_shutdown;
    hc->c.stream.on_close = ed_http_on_stream_close;
    hc->timer.data = hc;
    hc->number = ed_stats_connection_number();
    /* A connection silent since its accept is idle from here (a QUIT
     * closes it as an idle keep-alive one). */
    hc->c.idle_since = (uint32_t)ed_current_msec;
    ed_conn_link(&hc->c);
    ed_stats_add(active, 1);
    if (ed_http_conn_addr(hc)->proxy_protocol) {
        /* Before anything else, the TLS handshake included. */
        hc->state = ed_stats_state(hc->state, ED_STATS_READING);
        ed_http_pp_read(hc);
        return;
    }
    ed_http_accept_done(hc, ED_OK);
}

void
ed_http_accept_done(ed_http_conn_t *hc, int rc)
{
    ed_listener_t *ls = hc->c.ls;

    hc->timer.handler = ed_http_on_timeout;
    if (rc != ED_OK
        || (ls->tls
            && ed_tls_accept(&hc->c.stream,
                             ed_http_conn_addr(hc)->default_server->tls_ctx,
                             hc) != ED_OK))
    {
        ed_http_close(hc);
        return;
    }
    if (ls->tls) {
        /* Handshake flights and records: never wait for Nagle. */
        ed_http_nodelay(hc);
    }
    ed_http_wait_head(hc);
}

/* Waits for the next request head: the header timeout when a request has
 * started arriving (or on a new connection), the keep-alive timeout when
 * the connection is idle. */
static void
ed_http_wait_head(ed_http_conn_t *hc)
{
    ed_http_core_loc_conf_t *clcf = ed_http_conn_clcf(hc);
    ed_stream_t             *s = &hc->c.stream;
    ed_msec_t                t;

    /* The first head on an http2 address may be the HTTP/2 preface. */
    if (ed_stream_read_until_scan(s, hc->requests == 0
                                         && ed_http_conn_addr(hc)->http2
                                     ? ed_http_v2_head_end
                                     : ed_http_head_end,
                                  clcf->max_header_size, ed_http_on_head)
        != ED_OK)
    {
        ed_http_close(hc);
        return;
    }
    if (hc->requests) {
        /* A second response (pipelined, or after an idle wait) must not
         * wait for the ACK of the first. */
        ed_http_nodelay(hc);
    }
    if (hc->requests == 0 || ed_stream_buffered(s)) {
        t = clcf->client_header_timeout;
        hc->keepalive = 0;
    } else {
        t = clcf->keepalive_timeout;
        hc->keepalive = 1;
        hc->c.idle_since = (uint32_t)ed_current_msec;
        ed_stream_release_buffer(s);
    }
    hc->state = ed_stats_state(hc->state, hc->keepalive ? ED_STATS_IDLE
                                                        : ED_STATS_READING);
    ed_timer_add(ed_worker->loop, &hc->timer, t);
    if (hc->keepalive && ed_worker->handover_gen) {
        /* A response in flight at the reload is complete: its connection
         * may follow the idle ones once the response is written. */
        if (s->wqueued || ed_stream_flush_posted(s)) {
            s->on_flushed = ed_http_on_flushed_handoff;
        } else {
            ed_http_conn_shutdown(&hc->c);
        }
    }
}

ed_http_request_t *
ed_http_request_new(ed_http_conn_t *hc, const ed_http_proto_t *proto)
{
    ed_http_request_t *r;
    ed_pool_t         *pool;

    pool = ed_http_pool_get();
    if (pool == NULL) {
        return NULL;
    }
    r = ed_pcalloc(pool, sizeof(ed_http_request_t));
    if (r == NULL
        || ed_array_init(&r->headers_out, pool, 4,
                         sizeof(ed_http_out_header_t)) != ED_OK)
    {
        ed_http_pool_put(pool);
        return NULL;
    }
    r->pool = pool;
    r->proto = proto;
    r->hc = hc;
    r->server = ed_http_conn_addr(hc)->default_server;
    r->loc_conf = r->server->loc_conf;
    r->clcf = r->loc_conf[ed_http_core_module.index];
    r->content_length = -1;
    r->start_msec = ed_current_msec;
    r->head.content_length = -1;
    ed_stats_add(requests, 1);
    return r;
}

static ed_http_request_t *
ed_http_request_create(ed_http_conn_t *hc)
{
    ed_http_request_t *r;

    r = ed_http_request_new(hc, &ed_http_h1_proto);
    if (r == NULL) {
        return NULL;
    }
    r->nrequest = hc->requests + 1;
    hc->r = r;
    hc->state = ed_stats_state(hc->state, ED_STATS_WRITING);
    return r;
}

/*
 * underscores_in_headers: unless the request's settings allow them, the
 * fields whose name holds '_' are hidden from everything after the parser
 * (the proxy, $http_*, every module): a CGI-style backend would otherwise
 * take X_Real_IP for X-Real-IP (both are HTTP_X_REAL_IP to it), next to the
 * one eddy sets. They still count against max_headers and
 * max_header_size. Called again as the request's settings become more
 * specific (default server, server, location): the visible fields are a
 * copy, so that a location allowing them can show them again.
 */
void
ed_http_underscores(ed_http_request_t *r)
{
    ed_http_req_head_t *h = &r->head;
    ed_http_header_t   *to;
    size_t              i, n;

    if (h->underscores == 0) {
        return;
    }
    if (r->clcf->underscores_in_headers) {
        h->headers = h->fields;
        h->nheaders = h->nfields;
        return;
    }
    if (h->headers != h->fields) {
        return;
    }
    to = ed_palloc(r->pool, h->nfields * sizeof(ed_http_header_t));
    if (to == NULL) {
        /* Without a copy they go for good (never shown, whatever). */
        to = h->fields;
        h->underscores = 0;
    }
    for (i = 0, n = 0; i < h->nfields; i++) {
        if (memchr(h->fields[i].name.data, '_', h->fields[i].name.len)
            == NULL)
        {
            to[n++] = h->fields[i];
        }
    }
    h->headers = to;
    h->nheaders = n;
    if (to == h->fields) {
        h->nfields = n;
    }
}

static void
ed_http_on_head(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t    *hc = s->data;
    ed_http_request_t *r;
    ed_http_header_t  *hdrs;
    size_t             nhdrs;
    int                rc;

    ed_timer_del(ed_worker->loop, &hc->timer);
    hc->quit_check = 0;
    if (status == ED_ERROR) {
        ed_http_close(hc);
        return;
    }
    if (status == ED_DONE) {
        /* The peer shut its side: answers already queued for it (a
         * half-closed client) still go out before the close. */
        ed_http_close_after_flush(hc);
        return;
    }
    if (hc->requests == 0 && ed_http_conn_addr(hc)->http2
        && (ed_http_v2_preface(data, len) || ed_http_v2_alpn(hc)))
    {
        /* h2c by prior knowledge, or h2 chosen by ALPN, which must
         * start with the preface. */
        if (!ed_http_v2_preface(data, len) || !ed_http_v2_start(hc)) {
            ed_http_close(hc);
        }
        return;
    }
    r = ed_http_request_create(hc);
    if (r == NULL) {
        ed_http_close(hc);
        return;
    }
    if (status == ED_DECLINED) {
        /* The head did not fit in max_header_size: 414 when even the
         * request line did not. */
        r->error = 1;
        ed_http_finalize(r, memchr(data, '\n', len) ? 431 : 414);
        return;
    }
    ed_stream_keep(s, (size_t)(data + len - s->rbuf));
    nhdrs = ed_http_head_lines(data, len, (size_t)r->clcf->max_headers);
    hdrs = ed_palloc(r->pool, nhdrs * sizeof(ed_http_header_t));
    if (hdrs == NULL) {
        ed_http_finalize(r, 500);
        return;
    }
    rc = ed_http_parse_request(data, len, &r->head, hdrs, nhdrs);
    /* The fields are parsed with the address's default server settings
     * (the server is chosen from them), an error response included. */
    ed_http_underscores(r);
    if (rc != ED_OK) {
        r->error = 1;
        ed_http_finalize(r, rc);
        return;
    }
    ed_http_process(r);
}

int
ed_http_host_parse(ed_pool_t *pool, const ed_str_t *h, ed_str_t *host)
{
    char   *p;
    size_t  i, len = h->len;

    if (len == 0) {
        /* HTTP/1.0 without Host: the default server answers. */
        ed_str_set(host, "");
        return ED_OK;
    }
    if (h->data[0] == '[') {
        p = memchr(h->data, ']', len);
        if (p == NULL) {
            return 400;
        }
        len = (size_t)(p - h->data) + 1;
    } else {
        p = memchr(h->data, ':', len);
        if (p) {
            len = (size_t)(p - h->data);
        }
    }
    while (len && h->data[len - 1] == '.') {
        len--;
    }
    host->data = ed_pnalloc(pool, len + 1);
    if (host->data == NULL) {
        return 500;
    }
    for (i = 0; i < len; i++) {
        char c = ed_tolower(h->data[i]);

        if (c == '/' || c == '\\' || c == '\0' || (unsigned char)c <= ' ') {
            return 400;
        }
        host->data[i] = c;
    }
    host->data[len] = '\0';
    host->len = len;
    return ED_OK;
}

void
ed_http_process(ed_http_request_t *r)
{
    ed_http_conn_t *hc = r->hc;
    ed_http_core_loc_conf_t *clcf;
    char           *buf;
    int             rc;

    r->head_only = r->head.method_id == ED_HTTP_HEAD;
    rc = ed_http_host_parse(r->pool, &r->head.host, &r->host);
    if (rc != ED_OK) {
        r->error = 1;
        ed_http_finalize(r, rc);
        return;
    }
    r->server = ed_http_find_server(ed_http_conn_addr(hc), r, &r->host);
    r->loc_conf = r->server->loc_conf;
    r->clcf = clcf = r->loc_conf[ed_http_core_module.index];
    ed_http_underscores(r);

    if (r->proto == &ed_http_h1_proto) {
        r->keepalive = (r->head.version == 11 ? !r->head.conn_close
                                              : r->head.conn_keepalive)
                       && clcf->keepalive_timeout > 0
                       && hc->requests + 1
                              < (unsigned)clcf->keepalive_requests
                       && (!ed_worker->quitting
                           || ed_http_quit_keepalive(hc))
                       && !ed_stats_draining();
        ed_http_decoder_request(&r->body_dec, &r->head);
    }

    if (r->head.asterisk) {
        ed_http_add_header(r, "Allow", 5,
                           "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH",
                           44);
        ed_http_finalize(r, ed_http_send_response(r, 200, NULL, NULL, 0));
        return;
    }
    if (r->head.method_id == ED_HTTP_CONNECT && !r->connect_protocol) {
        ed_http_add_header(r, "Allow", 5,
                           "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH",
                           44);
        ed_http_finalize(r, 405);
        return;
    }
    buf = ed_pnalloc(r->pool, r->head.path.len + 1);
    if (buf == NULL) {
        ed_http_finalize(r, 500);
        return;
    }
    if (ed_http_normalize_path(r->head.path.data, r->head.path.len, buf,
                               &r->uri.len) != ED_OK)
    {
        r->error = 1;
        ed_http_finalize(r, 400);
        return;
    }
    buf[r->uri.len] = '\0';
    r->uri.data = buf;

    rc = ed_http_choose(r);
    if (rc == ED_DONE) {
        /* A rewrite rule answered (a redirect). */
        ed_http_finalize(r, ED_OK);
        return;
    }
    if (rc == ED_OK && r->head.expect_other) {
        r->error = 1;
        rc = 417;
    }
    if (rc == ED_OK) {
        rc = ed_http_run_location(r);
    }
    if (rc != ED_AGAIN) {
        ed_http_finalize(r, rc);
    }
}

static void
ed_http_send_error(ed_http_request_t *r, int status)
{
    static const ed_str_t html = ed_string("text/html");
    char   body[512];
    size_t n;

    if (status == 414 || status == 431 || status == 400 || status == 408
        || status == 413 || status == 417 || status == 501 || status == 505)
    {
        r->keepalive = 0;
    }
    n = ed_http_status_page(status, body, sizeof(body));
    r->content_length = -1;
    if (status != 405 && status != 200) {
        ed_http_out_headers_error(r, status);
    }
    if (ed_http_send_response(r, status, &html, body, n) != ED_OK) {
        r->keepalive = 0;
    }
}

void
ed_http_finalize(ed_http_request_t *r, int rc)
{
    if (r->parent) {
        /* A subrequest's end is its owner's business, not the
         * connection's. */
        ed_http_subrequest_finalize(r, rc);
        return;
    }
    if (r->finalized) {
        return;
    }
    if (r->body) {
        /* A handler's body reader calls it no more; what is unread is
         * discarded below (or the connection closed). */
        ed_http_body_stop(r);
    }
    if (rc == ED_HTTP_CUT) {
        /* What was given goes out, then the connection closes: no end
         * of the body, which must not look complete. */
        r->keepalive = 0;
        r->chunked_out = 0;
    }
    if (rc >= 100 && !r->header_sent) {
        if (ed_http_error_page(r, rc) == ED_OK) {
            return;
        }
        ed_http_send_error(r, rc);
        rc = ED_OK;
    }
    switch (ed_http_output_end(r, rc)) {
    case ED_OK:
        break;
    case ED_AGAIN:
        /* The file reader or the write of file ranges goes on: it comes
         * back here or to ed_http_finalize_done. */
        return;
    default:
        rc = ED_ERROR;
        break;
    }
    if (rc == ED_ERROR) {
        /* The response cannot be completed: closing is the only honest
         * end (a short body must not look complete). */
        r->finalized = 1;
        r->proto->fail(r);
        return;
    }
    ed_http_finalize_done(r);
}

void
ed_http_finalize_done(ed_http_request_t *r)
{
    r->finalized = 1;
    if (r->proto->done) {
        r->proto->done(r);   /* a subrequest's end is its owner's */
    }
}

void
ed_http_h1_fail(ed_http_request_t *r)
{
    ed_http_close(r->hc);
}

void
ed_http_h1_done(ed_http_request_t *r)
{
    if (r->error || r->head.expect_continue) {
        /* A client waiting for 100 Continue never got it: whether its
         * body follows is unknown, so the connection cannot be reused. */
        r->keepalive = 0;
    }
    if (r->keepalive && ed_http_has_body(r)) {
        ed_http_discard_body(r);
        return;
    }
    ed_http_next(r->hc);
}

/* The request is complete: start the next one or close. */
void
ed_http_log_phase(ed_http_request_t *r)
{
    ed_http_location_t *loc = r->loc ? r->loc : r->server->fallback;

    if (loc->log) {
        loc->log(r);
    }
    if (r->status >= 100 && r->status < 600) {
        ed_stats_add(responses[r->status / 100 - 1], 1);
    }
    ed_stats_v2(requests[r->stream_id ? ED_STATS_PROTO_20
                         : r->head.version == 10 ? ED_STATS_PROTO_10
                                                 : ED_STATS_PROTO_11], 1);
    /* Bytes in: the head and what was read of a Content-Length body. */
    ed_stats_add(bytes_in, r->head.head_len
                               + (r->body_dec.kind == ED_HTTP_BODY_LENGTH
                                      ? (uint64_t)r->body_dec.total
                                      : 0));
    ed_stats_add(bytes_out, r->bytes_sent);
}

static void
ed_http_next(ed_http_conn_t *hc)
{
    ed_http_request_t  *r = hc->r;
    bool                keepalive = r->keepalive, unread;

    /* Quitting: the connection closes after this response, unless it is
     * to move to the new generation. */
    keepalive = keepalive
                && (!ed_worker->quitting || ed_http_quit_keepalive(hc));
    hc->http10 = r->head.version == 10;
    ed_http_log_phase(r);
    unread = (ed_http_has_body(r) || r->error) && !r->discard_over;
    if (r->out_buffer) {
        ed_stream_set_water(&hc->c.stream, ED_STREAM_LOW_WATER,
                            ED_STREAM_HIGH_WATER);
    }
    hc->r = NULL;
    hc->requests++;
    ed_http_pool_put(r->pool);
    ed_stream_keep(&hc->c.stream, 0);
    if (!keepalive) {
        hc->lingering = unread;
        ed_http_close_after_flush(hc);
        return;
    }
    if (ed_stream_write_blocked(&hc->c.stream)) {
        ed_http_wait_drain(hc);
        return;
    }
    ed_http_wait_head(hc);
}

/* The client's queue is back under its low water mark: the next head
 * may be read. */
static void
ed_http_on_drain_head(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    s->on_drain = NULL;
    hc->draining = 0;
    if (ed_worker->quitting && !ed_http_quit_keepalive(hc)
        && !ed_http_unread_input(&hc->c))
    {
        ed_http_close_after_flush(hc);
        return;
    }
    ed_http_wait_head(hc);
}

/* A client that sends requests ahead but does not read the responses
 * gets no more of them until it takes what is queued: each response
 * would otherwise be queued in memory, keepalive_requests of them per
 * connection. The wait is bounded by send_timeout, as a response's. */
static void
ed_http_wait_drain(ed_http_conn_t *hc)
{
    ed_stream_t             *s = &hc->c.stream;
    ed_http_core_loc_conf_t *clcf = ed_http_conn_clcf(hc);

    hc->draining = 1;
    hc->keepalive = 0;
    hc->linger_left = ed_min(s->wqueued, ED_HTTP_DRAIN_MAX);
    hc->state = ed_stats_state(hc->state, ED_STATS_WRITING);
    s->on_drain = ed_http_on_drain_head;
    ed_timer_del(ed_worker->loop, &hc->timer);
    if (clcf->send_timeout > 0) {
        ed_timer_add(ed_worker->loop, &hc->timer, clcf->send_timeout);
    }
}

/* Discards the unread body of a finished keep-alive request so the next
 * request can be parsed, bounded by client_body_timeout. */
static void
ed_http_on_discard(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t    *hc = s->data;
    ed_http_request_t *r = hc->r;
    size_t             pos = 0;
    int                rc;

    if (status != ED_OK) {
        ed_http_close(hc);
        return;
    }
    rc = ed_http_decode_run(&r->body_dec, data, len, &pos, NULL, NULL);
    if (rc == ED_ERROR) {
        r->keepalive = 0;
        r->error = 1;
        ed_timer_del(ed_worker->loop, &hc->timer);
        ed_http_next(hc);
        return;
    }
    /* Whatever follows the body stays buffered for the next head. */
    s->rpos -= len - pos;
    r->discarded += (int64_t)pos;
    ed_http_discard_body(r);
}

static void
ed_http_discard_body(ed_http_request_t *r)
{
    ed_http_conn_t *hc = r->hc;
    ed_stream_t    *s = &hc->c.stream;
    size_t          max;
    int64_t         limit;

    if (!ed_http_has_body(r)) {
        ed_timer_del(ed_worker->loop, &hc->timer);
        ed_http_next(hc);
        return;
    }
    max = ed_http_decoder_want(&r->body_dec, 65536);
    limit = (int64_t)r->clcf->client_max_body_size;
    if (limit > 0) {
        if (r->discarded >= limit) {
            /* A body nobody reads, past client_max_body_size (framing
             * included: chunk extensions and trailers are bytes too):
             * the response is out, the connection ends here, draining
             * nothing more. */
            r->keepalive = 0;
            r->discard_over = 1;
            ed_timer_del(ed_worker->loop, &hc->timer);
            ed_http_next(hc);
            return;
        }
        max = (size_t)ed_min((int64_t)max, limit - r->discarded);
    }
    if (ed_stream_read_some(s, max, ed_http_on_discard) != ED_OK) {
        ed_http_close(hc);
        return;
    }
    ed_timer_add(ed_worker->loop, &hc->timer, r->clcf->client_body_timeout);
}

/* Drains the input of a closing connection, ED_HTTP_LINGER_MAX bytes at
 * most (the timer bounds the time). */
static void
ed_http_linger(ed_http_conn_t *hc)
{
    if (ed_stream_read_some(&hc->c.stream, ed_min(hc->linger_left, 65536),
                            ed_http_on_linger)
        != ED_OK)
    {
        ed_http_close(hc);
    }
}

static void
ed_http_on_linger(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t *hc = s->data;

    ed_unused(data);
    if (status != ED_OK || len >= hc->linger_left) {
        ed_http_close(hc);
        return;
    }
    hc->linger_left -= len;
    ed_http_linger(hc);
}

static void
ed_http_on_flushed_close(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    s->on_flushed = NULL;
    if (!hc->lingering) {
        ed_http_close(hc);
        return;
    }
    /* Unread input may still arrive: closing now would reset the
     * connection and could destroy the response in flight. Shut the
     * write side (after close_notify on TLS) and drain for a while
     * instead. */
    ed_tls_shutdown_write(s);
    ed_timer_add(ed_worker->loop, &hc->timer, ED_HTTP_LINGER_MSEC);
    hc->linger_left = ED_HTTP_LINGER_MAX;
    ed_http_linger(hc);
}

/* A connection whose protocol (HTTP/2) is over, its output written:
 * closed as HTTP/1 closes one with input unread. */
void
ed_http_linger_close(ed_http_conn_t *hc)
{
    ed_stream_t *s = &hc->c.stream;

    hc->lingering = 1;
    hc->keepalive = 0;
    hc->draining = 0;
    hc->quit_check = 0;
    hc->c.shutdown = ed_http_conn_shutdown;
    s->on_drain = NULL;
    s->on_close = ed_http_on_stream_close;
    ed_http_close_after_flush(hc);
}

static void
ed_http_close_after_flush(ed_http_conn_t *hc)
{
    ed_stream_t *s = &hc->c.stream;

    ed_timer_del(ed_worker->loop, &hc->timer);
    ed_stream_read_stop(s);
    if (s->wqueued == 0 && !ed_stream_flush_posted(s)) {
        ed_http_on_flushed_close(s);
        return;
    }
    s->on_flushed = ed_http_on_flushed_close;
    ed_timer_add(ed_worker->loop, &hc->timer,
                 ed_http_conn_clcf(hc)->send_timeout);
}

void
ed_http_close(ed_http_conn_t *hc)
{
    ed_timer_del(ed_worker->loop, &hc->timer);
    if (hc->r) {
        ed_stats_add(bytes_out, hc->r->bytes_sent);
        ed_http_pool_put(hc->r->pool);
        hc->r = NULL;
    }
    hc->state = ed_stats_state(hc->state, ED_STATS_NONE);
    ed_stats_add(active, -1);
    ed_stream_close(&hc->c.stream);
    ed_conn_unlink(&hc->c);
    ed_http_conn_release(hc);
}

static void
ed_http_on_timeout(ed_timer_t *timer)
{
    ed_http_conn_t    *hc = timer->data;
    ed_http_request_t *r = hc->r;
    ed_msec_t          t, elapsed;

    if (hc->quit_check) {
        /* A connection silent since its accept when the worker began to
         * quit: closed if it still is, else its head has the rest of
         * client_header_timeout. */
        hc->quit_check = 0;
        if (r == NULL && ed_http_conn_silent(hc)
            && !ed_http_unread_input(&hc->c))
        {
            ed_http_close(hc);
            return;
        }
        elapsed = (uint32_t)ed_current_msec - hc->c.idle_since;
        t = ed_http_conn_clcf(hc)->client_header_timeout;
        ed_timer_add(ed_worker->loop, &hc->timer,
                     t > elapsed ? t - elapsed : 0);
        return;
    }
    if (hc->draining) {
        if (hc->c.stream.wqueued < hc->linger_left) {
            /* The client took some: send_timeout runs again. */
            hc->linger_left = hc->c.stream.wqueued;
            ed_timer_add(ed_worker->loop, &hc->timer,
                         ed_http_conn_clcf(hc)->send_timeout);
            return;
        }
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "client timed out taking "
               "responses to requests sent ahead");
        ed_http_close(hc);
        return;
    }
    if (r == NULL && hc->keepalive && ed_stream_buffered(&hc->c.stream)) {
        /* A request head started arriving on the idle connection: it
         * gets client_header_timeout from here, as on a new connection,
         * rather than being cut off by keepalive_timeout. */
        hc->keepalive = 0;
        hc->state = ed_stats_state(hc->state, ED_STATS_READING);
        ed_timer_add(ed_worker->loop, &hc->timer,
                     ed_http_conn_clcf(hc)->client_header_timeout);
        return;
    }
    if (r != NULL && ed_http_output_timeout(r)) {
        return;  /* the client is slow, not stuck: send_timeout again */
    }
    if (r == NULL && !hc->keepalive && hc->c.stream.on_flushed == NULL
        && !hc->lingering)
    {
        /* client_header_timeout: answer 408 and close. */
        r = ed_http_request_create(hc);
        if (r) {
            ed_stream_read_stop(&hc->c.stream);
            r->error = 1;
            hc->lingering = 1;
            ed_http_finalize(r, 408);
            return;
        }
    }
    ed_http_close(hc);
}

static void
ed_http_on_stream_close(ed_stream_t *s)
{
    ed_http_close(s->data);
}

/* Whether the connection has had nothing from its client yet: no
 * request, none arriving, nothing being written or drained. */
static bool
ed_http_conn_silent(ed_http_conn_t *hc)
{
    return hc->requests == 0 && hc->r == NULL && !hc->lingering
           && !hc->draining && hc->c.stream.on_flushed == NULL
           && !ed_stream_buffered(&hc->c.stream);
}

/* Whether the peer sent bytes the stream has not read yet: they may be
 * the next request, arrived in the same loop turn as the signal. */
static bool
ed_http_unread_input(ed_conn_t *c)
{
    char b;

    if (ed_stream_buffered(&c->stream)) {
        return true;
    }
    return recv(c->stream.ev.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void
ed_http_conn_shutdown(ed_conn_t *c)
{
    ed_http_conn_t *hc = (ed_http_conn_t *)c;
    ed_msec_t       idle;

    if (ed_worker->terminating) {
        ed_http_close(hc);
        return;
    }
    if (ed_worker->handover_gen) {
        switch (ed_http_handoff(hc)) {
        case ED_OK:       /* handed over: hc is gone */
        case ED_AGAIN:    /* kept: asked again when the channel drains */
            return;
        default:
            break;        /* not eligible: as without a handover */
        }
    }
    /* The request in flight, or one that has started arriving, finishes
     * with Connection: close (keepalive is off while quitting); closing
     * with its bytes unread would reset the connection under the client.
     * Idle between requests: close, now or when the keep-alive timer
     * fires ED_HTTP_QUIT_IDLE_MSEC after the last request. */
    if (hc->r != NULL || (!hc->keepalive && !ed_http_conn_silent(hc))
        || c->stream.wqueued || ed_http_unread_input(c))
    {
        return;
    }
    /* A connection that has sent nothing since its accept (a browser's
     * spare connection, a port scan) is as idle: the same second, then
     * closed, rather than holding the worker for shutdown_timeout. */
    idle = (uint32_t)ed_current_msec - hc->c.idle_since;
    if (idle >= ED_HTTP_QUIT_IDLE_MSEC) {
        if (ed_worker->handover_gen && hc->requests) {
            ed_worker->handover_closed++;
        }
        ed_http_close(hc);
        return;
    }
    if (!ed_timer_active(&hc->timer)
        || hc->timer.when > ed_current_msec - idle + ED_HTTP_QUIT_IDLE_MSEC)
    {
        hc->quit_check = !hc->keepalive;
        ed_timer_add(ed_worker->loop, &hc->timer,
                     ED_HTTP_QUIT_IDLE_MSEC - idle);
    }
}

const char *
ed_http_protocol(ed_http_request_t *r)
{
    if (r->stream_id) {
        return "HTTP/2.0";
    }
    return r->head.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
}

/* Handing an idle keep-alive connection to the new generation at a
 * reload (fleet.md). ED_OK: handed over, hc is gone; ED_AGAIN: the
 * channel is full, hc stays as it was and is asked again; ED_DECLINED:
 * not eligible (TLS, a request in progress or arriving, output not yet
 * written, a close due, PROXY TLVs that the message cannot carry). */
static int
ed_http_handoff(ed_http_conn_t *hc)
{
    ed_stream_t       *s = &hc->c.stream;
    ed_loop_t         *loop = ed_worker->loop;
    ed_handover_msg_t  m;
    uint32_t           mask = s->ev.mask;
    int                n = 0, rc;

    if (hc->c.ls->tls || hc->r != NULL || !hc->keepalive || hc->lingering
        || hc->draining || hc->quit_check || s->on_flushed != NULL
        || s->wqueued || ed_stream_flush_posted(s) || ed_stream_buffered(s)
        || s->closed || s->eof || s->error || s->rdhup
        || s->read_cb == NULL || !ed_http_pp_movable(hc))
    {
        return ED_DECLINED;
    }
    if (ed_worker->handover_blocked) {
        return ED_AGAIN;
    }
    /* Out of this worker's epoll set first: epoll follows the open file,
     * which lives on in the new worker after this copy closes. Bytes
     * arriving from here wait in the socket for the new worker. */
    if (mask && ed_loop_del(loop, &s->ev) != ED_OK) {
        return ED_DECLINED;
    }
    if (ioctl(s->ev.fd, FIONREAD, &n) != 0 || n > 0) {
        rc = ED_DECLINED;     /* a request arrived: served here */
        goto keep;
    }
    memset(&m, 0, sizeof(m));
    m.connection = hc->number;
    m.requests = hc->requests;
    m.flags = hc->http10 ? ED_HO_F_HTTP10 : 0;
    m.idle_since = (uint64_t)ed_current_msec
                   - (uint32_t)((uint32_t)ed_current_msec - hc->c.idle_since);
    ed_http_pp_export(hc, &m);
    rc = ed_handover_give(ed_worker, s->ev.fd, &m);
    if (rc == ED_OK) {
        /* Only this process's copy closes: no FIN, no reset. */
        ed_http_close(hc);
        return ED_OK;
    }
    rc = rc == ED_AGAIN ? ED_AGAIN : ED_DECLINED;
keep:
    if (mask && ed_loop_add(loop, &s->ev, mask) != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "epoll_ctl(%d) failed",
               s->ev.fd);
        ed_http_close(hc);
        return ED_OK;
    }
    return rc;
}

/* The response written, a connection kept while handing over is asked
 * again. */
static void
ed_http_on_flushed_handoff(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    s->on_flushed = NULL;
    if (ed_worker->quitting && hc->r == NULL) {
        ed_http_conn_shutdown(&hc->c);
    }
}

int
ed_http_adopt(ed_listener_t *ls, int fd, const ed_handover_msg_t *m)
{
    ed_http_addr_t          *ha = ls->servers;
    ed_http_core_loc_conf_t *clcf;
    ed_http_conn_t          *hc;
    ed_peer_addr_t           peer;
    socklen_t                len = sizeof(peer);
    ed_msec_t                idle, t;

    clcf = ha->default_server->loc_conf[ed_http_core_module.index];
    /* The same reading of the bytes as where it came from: PROXY header
     * or not. */
    if (!ha->proxy_protocol != !(m->flags & ED_HO_F_PROXY)
        || clcf->keepalive_timeout == 0)
    {
        return ED_DECLINED;
    }
    memset(&peer, 0, sizeof(peer));
    if (getpeername(fd, &peer.sa, &len) != 0) {
        return ED_DECLINED;
    }
    if (peer.sa.sa_family != AF_INET && peer.sa.sa_family != AF_INET6) {
        memset(&peer, 0, sizeof(peer));
        peer.sa.sa_family = AF_UNIX;
    }
    hc = ed_http_conn_alloc();
    if (hc == NULL) {
        return ED_DECLINED;
    }
    if (ed_http_pp_import(hc, m) != ED_OK) {
        ed_http_conn_release(hc);
        return ED_DECLINED;
    }
    ed_stream_init_lazy(&hc->c.stream, ed_worker->loop, &ed_worker->bufs, fd,
                        hc);
    hc->c.ls = ls;
    hc->c.peer = peer;
    hc->c.shutdown = ed_http_conn_shutdown;
    hc->c.stream.on_close = ed_http_on_stream_close;
    hc->timer.data = hc;
    hc->timer.handler = ed_http_on_timeout;
    hc->number = m->connection;
    hc->requests = (unsigned)m->requests;
    hc->http10 = (m->flags & ED_HO_F_HTTP10) != 0;
    ed_conn_link(&hc->c);
    ed_stats_add(active, 1);
    ed_http_wait_head(hc);
    if (hc->keepalive) {
        /* keepalive_timeout counts from when it went idle over there. */
        idle = (uint64_t)ed_current_msec > m->idle_since
                   ? (ed_msec_t)((uint64_t)ed_current_msec - m->idle_since)
                   : 0;
        t = clcf->keepalive_timeout;
        hc->c.idle_since = (uint32_t)m->idle_since;
        ed_timer_add(ed_worker->loop, &hc->timer, t > idle ? t - idle : 0);
    }
    return ED_OK;
}
