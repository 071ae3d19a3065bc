/* The fastcgi module: a FastCGI 1.0 responder client (fastcgi-cgi.md).
 * One request per application connection (request id 1), kept alive
 * with FCGI_KEEP_CONN when the group keeps connections; bodies streamed
 * both ways with bounded memory; the upstream groups' balancing,
 * retries, timeouts and $upstream_* as the proxy's. The records are
 * ed_http_fastcgi_record.c's, the CGI head and meta-variables
 * ed_http_cgi.c's; the configuration is in ed_http_fastcgi_conf.c. */
#include "ed_http_fastcgi.h"

#include <inttypes.h>
#include <sys/stat.h>

#define ED_FCGI_SLACK 128   /* pieces fit one pooled buffer */

typedef struct {
    ed_http_request_t         *r;
    ed_http_fastcgi_conf_t    *fcf;
    ed_http_upstream_attempts_t a;        /* the servers tried */
    ed_http_cache_req_t       *cache;        /* NULL: no cache */
    size_t                     piece;

    /* BEGIN_REQUEST and PARAMS (and STDIN when the body is in memory or
     * none), written first on every attempt. */
    u_char                    *req;
    size_t                     req_len;
    /* A streamed body's bytes, kept for a resend (as STDIN records made
     * anew) while they fit in buffer_size. */
    char                      *replay;
    size_t                     replay_len;
    size_t                     replay_cap;
    /* A body of unknown length, read to learn it. */
    char                      *learn;
    size_t                     learn_len;

    /* The response. */
    ed_fcgi_parser_t           fp;
    ed_http_cgi_head_t         head;
    ed_http_header_t          *fields;
    char                      *hbuf;         /* the head */
    size_t                     hlen;
    size_t                     hcap;         /* hbuf's size */
    ed_http_cgi_stderr_t      *err;
    int64_t                    left;         /* Content-Length to send;
                                              * -1: none */

    unsigned                   stream_body:1;  /* STDIN as it arrives */
    unsigned                   body_started:1;
    unsigned                   body_done:1;    /* STDIN ended */
    unsigned                   replay_lost:1;
    unsigned                   connected:1;
    unsigned                   sent:1;         /* bytes may have reached
                                                * an application */
    unsigned                   stale_retried:1;
    unsigned                   stdout_seen:1;
    unsigned                   head_done:1;    /* the CGI head is parsed */
    unsigned                   discard:1;      /* no body goes out (HEAD,
                                                * 204, 304) */
    unsigned                   keep:1;         /* FCGI_KEEP_CONN */
    unsigned                   extra:1;        /* bytes past
                                                * Content-Length warned */
    unsigned                   done:1;         /* torn down */
} ed_fcgi_ctx_t;

static void ed_fcgi_fail(ed_fcgi_ctx_t *ctx, int ft, int status);
static void ed_fcgi_read_more(ed_fcgi_ctx_t *ctx);
static void ed_fcgi_finish(ed_fcgi_ctx_t *ctx, int rc);
static int ed_fcgi_go(ed_fcgi_ctx_t *ctx);
static void ed_fcgi_cache_resume(ed_http_request_t *r, void *data, int rc);

/* The request records. */

/* Room before the pairs for BEGIN_REQUEST and the PARAMS header: the
 * usual params (one record) are sent from where they were built. */
#define ED_FCGI_PARAMS_HEAD  (16 + ED_FCGI_HEADER_LEN)

/* A growing buffer of encoded name-value pairs, in the request pool:
 * ED_FCGI_PARAMS_HEAD bytes, the pairs (len), and room for `tail` more
 * (padding, the empty PARAMS, the STDIN records). */
typedef struct {
    ed_fcgi_ctx_t *ctx;
    u_char        *buf;
    size_t         len;
    size_t         cap;
    size_t         tail;
    bool           cache_fetch;   /* the cache's GET (ed_fcgi_on_param) */
} ed_fcgi_params_t;

static int
ed_fcgi_pair_add(ed_fcgi_params_t *pp, const char *name, size_t nlen,
                 const char *value, size_t vlen)
{
    size_t  need = ed_fcgi_pair_len(nlen, vlen);
    u_char *nb;

    if (ED_FCGI_PARAMS_HEAD + pp->len + need + pp->tail > pp->cap) {
        pp->cap = ed_max(2 * pp->cap, ED_FCGI_PARAMS_HEAD + pp->len + need
                                      + pp->tail + 1024);
        nb = ed_pnalloc(pp->ctx->r->pool, pp->cap);
        if (nb == NULL) {
            return ED_ERROR;
        }
        if (pp->len) {
            memcpy(nb + ED_FCGI_PARAMS_HEAD, pp->buf + ED_FCGI_PARAMS_HEAD,
                   pp->len);
        }
        pp->buf = nb;
    }
    ed_fcgi_pair(pp->buf + ED_FCGI_PARAMS_HEAD + pp->len, name, nlen, value,
                 vlen);
    pp->len += need;
    return ED_OK;
}

/* The param of that name in `params`, or NULL. */
static ed_http_fastcgi_param_t *
ed_fcgi_param(ed_http_fastcgi_conf_t *fcf, const char *name, size_t nlen)
{
    ed_http_fastcgi_param_t *pm;
    size_t                   i;

    if (fcf->params == NULL) {
        return NULL;
    }
    pm = fcf->params->elts;
    for (i = 0; i < fcf->params->nelts; i++) {
        if (pm[i].name.len == nlen && memcmp(pm[i].name.data, name, nlen) == 0)
        {
            return &pm[i];
        }
    }
    return NULL;
}

typedef struct {
    ed_http_fastcgi_conf_t *fcf;
    ed_http_cgi_var_pt      cb;
    void                   *data;
} ed_fcgi_walk_t;

/* A default meta-variable: given on unless `params` names it. */
static int
ed_fcgi_on_meta(void *data, const char *name, size_t nlen, const char *value,
                size_t vlen)
{
    ed_fcgi_walk_t *w = data;

    if (ed_fcgi_param(w->fcf, name, nlen) != NULL) {
        return ED_OK;
    }
    return w->cb(w->data, name, nlen, value, vlen);
}

int
ed_http_fastcgi_params(ed_http_request_t *r, ed_http_fastcgi_conf_t *fcf,
                       ed_http_cgi_var_pt cb, void *data)
{
    ed_fcgi_walk_t           w = { fcf, cb, data };
    ed_http_fastcgi_param_t *pm;
    ed_str_t                 v;
    size_t                   i;
    int                      rc;

    /* fastcgi passes Authorization: the application checks it (nginx
     * does the same); cgi's pass_authorization is about scripts. */
    rc = ed_http_cgi_meta(r, ED_HTTP_CGI_AUTHORIZATION, ed_fcgi_on_meta, &w);
    if (rc != ED_OK || fcf->params == NULL) {
        return rc;
    }
    pm = fcf->params->elts;
    for (i = 0; i < fcf->params->nelts; i++) {
        if (pm[i].value == NULL) {
            continue;
        }
        if (pm[i].var.len) {
            rc = ed_http_variable(r, pm[i].var.data, pm[i].var.len, &v);
            if (rc == ED_DECLINED) {
                continue;
            }
        } else {
            rc = ed_http_template_run(r, pm[i].value, &v);
        }
        if (rc != ED_OK) {
            return ED_ERROR;
        }
        rc = cb(data, pm[i].name.data, pm[i].name.len, v.data, v.len);
        if (rc != ED_OK) {
            return rc;
        }
    }
    return ED_OK;
}

/* The params a cache fetch leaves out: it is a GET without the
 * client's range and conditions, which eddy applies to the stored
 * response (cache.md, What is stored). */
static bool
ed_fcgi_cache_drops(const char *name, size_t nlen)
{
    static const ed_str_t drop[] = {
        ed_string("HTTP_RANGE"), ed_string("HTTP_IF_RANGE"),
        ed_string("HTTP_IF_MATCH"), ed_string("HTTP_IF_NONE_MATCH"),
        ed_string("HTTP_IF_MODIFIED_SINCE"),
        ed_string("HTTP_IF_UNMODIFIED_SINCE"),
    };
    size_t i;

    for (i = 0; i < ed_nelems(drop); i++) {
        if (drop[i].len == nlen && memcmp(drop[i].data, name, nlen) == 0) {
            return true;
        }
    }
    return false;
}

static int
ed_fcgi_on_param(void *data, const char *name, size_t nlen,
                 const char *value, size_t vlen)
{
    ed_fcgi_params_t *pp = data;

    if (pp->cache_fetch) {
        if (nlen == 14 && memcmp(name, "REQUEST_METHOD", 14) == 0) {
            /* HEAD converted: the entry serves GET and HEAD. */
            return ed_fcgi_pair_add(data, name, nlen, "GET", 3);
        }
        if (ed_fcgi_cache_drops(name, nlen)) {
            return ED_OK;
        }
    }
    return ed_fcgi_pair_add(data, name, nlen, value, vlen);
}

/* Builds BEGIN_REQUEST, PARAMS and the empty PARAMS, then, when the body
 * is in memory (or there is none), its STDIN records and the empty STDIN.
 * ED_OK or ED_ERROR (ENOMEM, a param that cannot be evaluated). */
static int
ed_fcgi_build(ed_fcgi_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;
    ed_fcgi_params_t   pp = { ctx, NULL, 0, 0, 0, false };
    const ed_str_t    *inm, *ims;
    size_t             len, pad, stdin_len = 0;
    u_char            *p;

    if (!ctx->stream_body) {
        stdin_len = ed_fcgi_stream_len(ctx->learn_len) + ED_FCGI_HEADER_LEN;
    }
    pp.tail = 7 + ED_FCGI_HEADER_LEN + stdin_len;
    pp.cache_fetch = ed_http_cache_fetch(ctx->cache, &inm, &ims);
    if (ed_http_fastcgi_params(r, ctx->fcf, ed_fcgi_on_param, &pp)
        != ED_OK)
    {
        return ED_ERROR;
    }
    /* A stale entry's validators: the application may answer Status:
     * 304 (cache.md, revalidate). */
    if ((inm != NULL
         && ed_fcgi_pair_add(&pp, "HTTP_IF_NONE_MATCH", 18, inm->data,
                             inm->len) != ED_OK)
        || (ims != NULL
            && ed_fcgi_pair_add(&pp, "HTTP_IF_MODIFIED_SINCE", 22,
                                ims->data, ims->len) != ED_OK))
    {
        return ED_ERROR;
    }
    if (pp.len > 0 && pp.len <= ED_FCGI_CONTENT_MAX) {
        /* One PARAMS record: in place, the room was kept. */
        pad = ed_fcgi_pad(pp.len);
        ctx->req = pp.buf;
        p = ed_fcgi_begin_request(ctx->req, ctx->keep);
        p = ed_fcgi_header(p, ED_FCGI_PARAMS, pp.len, pad);
        p += pp.len;
        memset(p, 0, pad);
        p += pad;
    } else {
        len = 16 + ed_fcgi_stream_len(pp.len) + ED_FCGI_HEADER_LEN
              + stdin_len;
        ctx->req = ed_pnalloc(r->pool, len);
        if (ctx->req == NULL) {
            return ED_ERROR;
        }
        p = ed_fcgi_begin_request(ctx->req, ctx->keep);
        p = ed_fcgi_stream(p, ED_FCGI_PARAMS,
                           pp.buf ? (char *)pp.buf + ED_FCGI_PARAMS_HEAD : "",
                           pp.len);
    }
    p = ed_fcgi_header(p, ED_FCGI_PARAMS, 0, 0);
    if (!ctx->stream_body) {
        p = ed_fcgi_stream(p, ED_FCGI_STDIN, ctx->learn, ctx->learn_len);
        p = ed_fcgi_header(p, ED_FCGI_STDIN, 0, 0);
    }
    ctx->req_len = (size_t)(p - ctx->req);
    return ED_OK;
}

/* Attempts. */

/* Tears the exchange down: timers, body reader, stderr's last line; the
 * connection is closed unless kept (then released). */
static void
ed_fcgi_teardown(ed_fcgi_ctx_t *ctx, bool keep)
{
    ed_http_request_t *r = ctx->r;

    if (ctx->done) {
        return;
    }
    ctx->done = 1;
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    ed_http_body_stop(r);
    if (ctx->err) {
        ed_http_cgi_stderr_end(r, ctx->err);
    }
    ed_http_upstream_attempts_release(&ctx->a, keep);
}

/* Head-field arrays (ED_HTTP_CGI_MAX_FIELDS entries, past the pool's
 * block limit: a malloc and a free per request) kept by the worker for
 * the next requests, a few: one per request in flight. */
#define ED_FCGI_FIELDS_KEPT  8

static ed_http_header_t *ed_fcgi_fields_kept[ED_FCGI_FIELDS_KEPT];
static size_t            ed_fcgi_nfields_kept;

static ed_http_header_t *
ed_fcgi_fields_get(void)
{
    if (ed_fcgi_nfields_kept) {
        return ed_fcgi_fields_kept[--ed_fcgi_nfields_kept];
    }
    return malloc(ED_HTTP_CGI_MAX_FIELDS * sizeof(ed_http_header_t));
}

static void
ed_fcgi_fields_put(ed_http_header_t *f)
{
    if (ed_fcgi_nfields_kept < ED_FCGI_FIELDS_KEPT) {
        ed_fcgi_fields_kept[ed_fcgi_nfields_kept++] = f;
    } else {
        free(f);
    }
}

/* At the request's end (its pool): the head, if any, was applied. */
static void
ed_fcgi_cleanup(void *data)
{
    ed_fcgi_ctx_t *ctx = data;

    ed_fcgi_teardown(ctx, false);
    if (ctx->fields != NULL) {
        ed_fcgi_fields_put(ctx->fields);
        ctx->fields = NULL;
    }
}

/* Ends the request with rc (ED_OK, ED_ERROR or a status). Last call. */
static void
ed_fcgi_finish(ed_fcgi_ctx_t *ctx, int rc)
{
    ed_http_request_t *r = ctx->r;

    ed_fcgi_teardown(ctx, false);
    if (rc >= 300 && r->header_sent) {
        rc = ED_ERROR;
    }
    ed_http_finalize(r, rc);
}

/* The application failed after the response head went out: what was
 * given goes out, then the client connection closes (HTTP/2: the stream
 * is reset), so the body cannot look complete. Before, the status. Last
 * call. */
static void
ed_fcgi_body_failed(ed_fcgi_ctx_t *ctx, int status)
{
    ed_http_request_t *r = ctx->r;

    ed_http_upstream_failed(ctx->a.ups, ctx->a.server, ed_current_msec, r);
    if (!r->header_sent) {
        r->headers_out.nelts = 0;
        r->content_type.data = NULL;
        r->content_type.len = 0;
        r->content_length = -1;
        ed_fcgi_finish(ctx, status);
        return;
    }
    ed_fcgi_teardown(ctx, false);
    ed_http_finalize(r, ED_HTTP_CUT);
}

static void
ed_fcgi_on_utimer(ed_timer_t *t)
{
    ed_fcgi_ctx_t *ctx = t->data;

    ed_http_upstream_attempts_timed_out(&ctx->a);
    if (ctx->head_done) {
        ed_fcgi_body_failed(ctx, 504);
        return;
    }
    ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_TIMEOUT, 504);
}

/* Writes body bytes as STDIN records. A failed write is reported by the
 * stream's on_close. */
static void
ed_fcgi_stdin_write(ed_stream_t *us, const char *p, size_t len)
{
    u_char              hdr[ED_FCGI_HEADER_LEN];
    static const u_char zero[8];
    size_t              c, pad;

    while (len) {
        c = ed_min(len, (size_t)ED_FCGI_CONTENT_MAX);
        pad = ed_fcgi_pad(c);
        ed_fcgi_header(hdr, ED_FCGI_STDIN, c, pad);
        ed_stream_write(us, hdr, sizeof(hdr));
        ed_stream_write(us, p, c);
        if (pad) {
            ed_stream_write(us, zero, pad);
        }
        p += c;
        len -= c;
    }
}

/* Writes body bytes, keeping them for a resend while they fit: the
 * bytes, not their records, so that the records' headers and padding do
 * not eat the room a body of buffer_size has. */
static void
ed_fcgi_stdin_out(ed_fcgi_ctx_t *ctx, const char *p, size_t len)
{
    if (!ctx->replay_lost && len) {
        if (ctx->stdout_seen || ctx->replay_len + len > ctx->replay_cap) {
            ctx->replay_lost = 1;
        } else {
            memcpy(ctx->replay + ctx->replay_len, p, len);
            ctx->replay_len += len;
        }
    }
    ed_fcgi_stdin_write(&ctx->a.uc->c.stream, p, len);
}

static void
ed_fcgi_on_upstream_drain(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_fcgi_ctx_t           *ctx = uc->owner;

    s->on_drain = NULL;
    if (ctx->a.kind == ED_HTTP_UPS_T_SEND) {
        ed_timer_del(ed_worker->loop, &ctx->a.timer);
    }
    ed_http_body_resume(ctx->r);
}

/* A piece of the client's body, streamed as STDIN records. The client is
 * read no faster than the application takes them. */
static void
ed_fcgi_on_body(ed_http_request_t *r, void *data, int rc, const char *p,
                size_t len)
{
    ed_fcgi_ctx_t *ctx = data;
    ed_stream_t   *us;
    u_char         hdr[ED_FCGI_HEADER_LEN];

    if (rc != ED_OK && rc != ED_DONE) {
        ed_http_log(ED_LOG_INFO, r, 0,
                    "reading the client request body failed (%d)", rc);
        ed_fcgi_finish(ctx, rc);
        return;
    }
    if (ctx->a.uc == NULL) {
        return;
    }
    us = &ctx->a.uc->c.stream;
    ed_fcgi_stdin_out(ctx, p, len);
    if (rc == ED_DONE) {
        ed_fcgi_header(hdr, ED_FCGI_STDIN, 0, 0);
        ed_stream_write(us, hdr, sizeof(hdr));
        ctx->body_done = 1;
        if (!ctx->stdout_seen) {
            ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                            ctx->fcf->read_timeout);
        }
    } else if (ed_stream_write_blocked(us)) {
        ed_http_body_pause(r);
        us->on_drain = ed_fcgi_on_upstream_drain;
        if (!ctx->stdout_seen) {
            ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_SEND,
                                            ctx->fcf->send_timeout);
        }
    }
}

/* The connection is up (or reused): the body starts, the response is
 * awaited. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_fcgi_connected(ed_fcgi_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;
    int                rc;

    ctx->connected = 1;
    ctx->sent = 1;
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    /* The response is read from now on: an application may answer
     * before it has read the whole body. */
    ed_fcgi_read_more(ctx);
    if (ctx->stream_body && !ctx->body_started) {
        ctx->body_started = 1;
        rc = ed_http_read_body(r, ed_fcgi_on_body, ctx);
        if (rc == ED_ERROR) {
            return ED_ERROR;
        }
        if (rc == ED_DONE) {
            ed_fcgi_on_body(r, ctx, ED_DONE, NULL, 0);
        }
    } else if (ctx->body_started && !ctx->body_done) {
        ed_http_body_resume(r);
    }
    return ED_OK;
}

/* The result of a new connection. ED_OK, or ED_DONE when uc was closed
 * here. */
static int
ed_fcgi_on_connect(ed_http_upstream_conn_t *uc, int rc)
{
    ed_fcgi_ctx_t *ctx = uc->owner;

    if (rc != ED_OK) {
        ed_http_upstream_attempts_connect_failed(&ctx->a);
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
        return ED_DONE;
    }
    if (ed_fcgi_connected(ctx) != ED_OK) {
        ed_fcgi_finish(ctx, 500);
        return ED_DONE;
    }
    return ED_OK;
}

/* Whether the request may go to an application again: its body is at
 * hand, and its method is idempotent or no byte of it went out. */
static bool
ed_fcgi_may_resend(ed_fcgi_ctx_t *ctx)
{
    if (ctx->body_started && ctx->replay_lost) {
        return false;
    }
    return !ctx->sent || ed_http_upstream_idempotent(ctx->r);
}

static void ed_fcgi_retry_stale(ed_fcgi_ctx_t *ctx);

/* A write to the application failed: it is gone. */
static void
ed_fcgi_on_upstream_close(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_fcgi_ctx_t           *ctx = uc->owner;

    if (ctx->stdout_seen) {
        /* The response is on its way; its reading tells how it ends. */
        return;
    }
    if (ctx->a.reused && !ctx->stale_retried && ctx->fp.records == 0
        && ed_fcgi_may_resend(ctx))
    {
        ed_fcgi_retry_stale(ctx);
        return;
    }
    ed_http_log(ED_LOG_ERR, ctx->r, 0, "upstream %s closed the connection "
                "while reading the request (upstream \"%s\")",
                ctx->a.server->name.data, ctx->a.ups->name.data);
    ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
}

#define ed_fcgi_cpy(p, s, n) ((char *)memcpy(p, s, n) + (n))

/* Names the stderr logger's lines: the prefix after ctx->a.server (each
 * attempt's), the suffix after the group. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_fcgi_stderr_names(ed_fcgi_ctx_t *ctx)
{
    static const char  pre[] = "fastcgi stderr from ";
    const ed_str_t    *sn = &ctx->a.server->name, *gn = &ctx->a.ups->name;
    char              *p;

    p = ed_pnalloc(ctx->r->pool, sizeof(pre) - 1 + sn->len + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    ctx->err->prefix = p;
    p = ed_fcgi_cpy(p, pre, sizeof(pre) - 1);
    p = ed_fcgi_cpy(p, sn->data, sn->len);
    *p = '\0';
    if (ctx->err->suffix[0] != '\0') {
        return ED_OK;
    }
    p = ed_pnalloc(ctx->r->pool, sizeof(" (upstream \"\")") + gn->len);
    if (p == NULL) {
        return ED_ERROR;
    }
    ctx->err->suffix = p;
    p = ed_fcgi_cpy(p, " (upstream \"", sizeof(" (upstream \"") - 1);
    p = ed_fcgi_cpy(p, gn->data, gn->len);
    memcpy(p, "\")", sizeof("\")"));
    return ED_OK;
}

/* The stderr logger, made at the first STDERR record: most responses
 * have none, and it holds a line buffer. NULL on ENOMEM. */
static ed_http_cgi_stderr_t *
ed_fcgi_stderr_logger(ed_fcgi_ctx_t *ctx)
{
    if (ctx->err == NULL) {
        ctx->err = ed_palloc(ctx->r->pool, sizeof(ed_http_cgi_stderr_t));
        if (ctx->err == NULL) {
            return NULL;
        }
        ed_http_cgi_stderr_init(ctx->err, "fastcgi stderr", "");
        if (ed_fcgi_stderr_names(ctx) != ED_OK) {
            ctx->err = NULL;
            return NULL;
        }
    }
    return ctx->err;
}

/* Starts one exchange on ctx->a.server: a pooled connection when allowed
 * and available, else a new one. ED_AGAIN, ED_ERROR (connect failed at
 * once, errno set), or 500. */
static int
ed_fcgi_attempt(ed_http_upstream_attempts_t *a, bool pooled)
{
    ed_fcgi_ctx_t           *ctx = ed_container_of(a, ed_fcgi_ctx_t, a);
    ed_http_upstream_conn_t *uc;
    int                      rc;

    ctx->connected = 0;
    memset(&ctx->fp, 0, sizeof(ctx->fp));
    ctx->hlen = 0;
    ctx->stdout_seen = 0;
    ed_http_cgi_head_init(&ctx->head, ctx->fields, ctx->fcf->buffer_size);
    rc = ed_http_upstream_attempts_open(a, pooled, NULL, ctx,
                                        ed_fcgi_on_connect);
    if (rc == ED_ERROR) {
        return ED_ERROR;
    }
    uc = a->uc;
    /* Its stderr lines name the application. */
    if (ctx->err != NULL && ed_fcgi_stderr_names(ctx) != ED_OK) {
        return 500;
    }
    uc->c.stream.on_close = ed_fcgi_on_upstream_close;
    ed_stream_set_water(&uc->c.stream, ctx->fcf->buffer_size / 4,
                        ctx->fcf->buffer_size);
    if (ed_stream_write(&uc->c.stream, ctx->req, ctx->req_len) != ED_OK) {
        return 500;
    }
    if (ctx->body_started) {
        /* What went to the previous attempt (all of it: the body is
         * resent only when nothing was lost), and its end if read. */
        ed_fcgi_stdin_write(&uc->c.stream, ctx->replay, ctx->replay_len);
        if (ctx->body_done) {
            u_char hdr[ED_FCGI_HEADER_LEN];

            ed_fcgi_header(hdr, ED_FCGI_STDIN, 0, 0);
            ed_stream_write(&uc->c.stream, hdr, sizeof(hdr));
        }
    }
    if (rc == ED_AGAIN) {
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_CONNECT,
                                        ctx->fcf->connect_timeout);
        return ED_AGAIN;
    }
    return ed_fcgi_connected(ctx) == ED_OK ? ED_AGAIN : 500;
}

/* No application gave a response (ft: how the last one failed; rc the
 * status to answer): a stale entry may answer instead (use_stale,
 * stale-if-error), as for the proxy. Last call. */
static void
ed_fcgi_finish_failed(ed_fcgi_ctx_t *ctx, int ft, int rc)
{
    int s;

    s = ed_http_cache_failed(ctx->r, ctx->cache, ed_http_cache_stale_cond(ft),
                             true, rc);
    ed_fcgi_finish(ctx, s != ED_DECLINED ? s : rc);
}

/* An attempt failed before the response head went out: the next server,
 * or the final status. Last call. */
static void
ed_fcgi_fail(ed_fcgi_ctx_t *ctx, int ft, int status)
{
    int rc;

    ed_http_upstream_attempts_failed(&ctx->a, ft, status);
    if (ctx->r->header_sent) {
        ed_fcgi_finish(ctx, ED_ERROR);
        return;
    }
    if (!ed_http_upstream_attempts_retry(&ctx->a, ft, status)
        || !ed_fcgi_may_resend(ctx))
    {
        ed_fcgi_finish_failed(ctx, ft, ctx->a.fail_status);
        return;
    }
    rc = ed_http_upstream_attempts_next(&ctx->a);
    if (rc != ED_AGAIN) {
        ed_fcgi_finish_failed(ctx, ft, rc);
    }
}

/* A pooled connection the application had closed: the same server on a
 * fresh connection, once, not counted as a try. Last call. */
static void
ed_fcgi_retry_stale(ed_fcgi_ctx_t *ctx)
{
    int rc;

    ctx->stale_retried = 1;
    ed_http_upstream_attempts_close(&ctx->a);
    rc = ed_fcgi_attempt(&ctx->a, false);
    if (rc == ED_AGAIN) {
        return;
    }
    if (rc == ED_ERROR) {
        ed_http_upstream_attempts_connect_failed(&ctx->a);
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
        return;
    }
    ed_fcgi_finish(ctx, rc);
}

/* The response. */

static void ed_fcgi_on_read(ed_stream_t *s, int status, char *data,
                            size_t len);

static void
ed_fcgi_read_more(ed_fcgi_ctx_t *ctx)
{
    ed_stream_read_some(&ctx->a.uc->c.stream, ctx->piece, ed_fcgi_on_read);
    if (ctx->body_done || ctx->stdout_seen) {
        ed_http_upstream_attempts_timer(&ctx->a, ED_HTTP_UPS_T_READ,
                                        ctx->fcf->read_timeout);
    }
}

static void
ed_fcgi_on_client_ready(ed_http_request_t *r, void *data)
{
    ed_fcgi_ctx_t *ctx = data;

    ed_unused(r);
    if (ctx->a.uc && !ctx->done) {
        ed_fcgi_read_more(ctx);
    }
}

/* Passes body bytes on, bounded by the head's Content-Length (bytes past
 * it are dropped with a warning). ED_OK or ED_ERROR (the client's side
 * failed). */
static int
ed_fcgi_body_out(ed_fcgi_ctx_t *ctx, const char *p, size_t n)
{
    if (ctx->discard || n == 0) {
        return ED_OK;
    }
    if (ctx->left >= 0 && (int64_t)n > ctx->left) {
        if (!ctx->extra) {
            ctx->extra = 1;
            ed_http_log(ED_LOG_WARN, ctx->r, 0,
                        "upstream %s sent more than its Content-Length of "
                        "%" PRId64 " bytes; the rest is dropped "
                        "(upstream \"%s\")", ctx->a.server->name.data,
                        ctx->head.content_length, ctx->a.ups->name.data);
        }
        n = (size_t)ctx->left;
        if (n == 0) {
            return ED_OK;
        }
    }
    if (ctx->left >= 0) {
        ctx->left -= (int64_t)n;
    }
    if (ctx->cache) {
        /* Into the cache file of a response being stored too. */
        return ed_http_cache_slice(ctx->r, ctx->cache, p, n) == ED_OK
                   ? ED_OK : ED_ERROR;
    }
    return ed_http_send_body(ctx->r, p, n);
}

/* The CGI head as the cache takes a response head (status st): its
 * fields, Content-Type and Location as fields, the length it gives.
 * ED_OK or ED_ERROR. */
static int
ed_fcgi_resp_head(ed_fcgi_ctx_t *ctx, int st, ed_http_resp_head_t *rh)
{
    ed_http_cgi_head_t *h = &ctx->head;
    ed_http_header_t   *f;
    size_t              n;

    f = ed_palloc(ctx->r->pool, (h->nfields + 2) * sizeof(ed_http_header_t));
    if (f == NULL) {
        return ED_ERROR;
    }
    memset(rh, 0, sizeof(*rh));
    memcpy(f, h->fields, h->nfields * sizeof(ed_http_header_t));
    n = h->nfields;
    if (h->content_type.data != NULL) {
        ed_str_set(&f[n].name, "Content-Type");
        f[n++].value = h->content_type;
        rh->content_type = h->content_type;
    }
    if (h->location.data != NULL) {
        ed_str_set(&f[n].name, "Location");
        f[n++].value = h->location;
    }
    rh->version = 11;
    rh->status = st;
    /* Without a Status line no reason at all: an empty one, as a
     * status line's, for those that copy it (never a NULL source). */
    if (h->reason.data != NULL) {
        rh->reason = h->reason;
    } else {
        ed_str_set(&rh->reason, "");
    }
    rh->headers = f;
    rh->nheaders = n;
    rh->content_length = h->content_length;
    rh->head_len = h->head_len;
    return ED_OK;
}

/* The CGI head is parsed: a local redirect, a retry on a listed status,
 * or the response head goes out. ED_OK to go on with the body, ED_DONE
 * when the request went elsewhere (last call made). */
static int
ed_fcgi_on_head(ed_fcgi_ctx_t *ctx)
{
    ed_http_request_t  *r = ctx->r;
    ed_http_cgi_head_t *h = &ctx->head;
    int                 rc, st;

    ctx->head_done = 1;
    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    st = h->status ? h->status : 200;
    if (ed_http_upstream_attempts_status(&ctx->a, st)
        && ed_fcgi_may_resend(ctx))
    {
        ed_http_log(ED_LOG_WARN, r, 0, "upstream %s answered %d, trying the "
                    "next server (upstream \"%s\")", ctx->a.server->name.data,
                    st, ctx->a.ups->name.data);
        ed_http_upstream_failed(ctx->a.ups, ctx->a.server, ed_current_msec, r);
        ctx->head_done = 0;
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_STATUS, st);
        return ED_DONE;
    }
    if (ctx->cache && ctx->cache->stale && ed_http_cache_stale_status(st)) {
        /* An error status a stale entry may answer for (use_stale). */
        rc = ed_http_cache_failed(r, ctx->cache,
                                  ed_http_cache_stale_status(st), false, st);
        if (rc != ED_DECLINED) {
            ed_http_upstream_attempts_end(&ctx->a, st);
            ed_fcgi_teardown(ctx, false);
            ed_http_finalize(r, rc);
            return ED_DONE;
        }
    }
    if (ctx->cache && ctx->cache->revalidating && st == 304) {
        /* The stale entry is still good: refreshed and served. */
        ed_http_resp_head_t rh;

        ed_http_upstream_attempts_end(&ctx->a, st);
        ed_http_upstream_succeeded(ctx->a.server);
        if (ed_fcgi_resp_head(ctx, st, &rh) != ED_OK) {
            ed_fcgi_finish(ctx, 500);
            return ED_DONE;
        }
        ed_fcgi_teardown(ctx, false);
        rc = ed_http_cache_revalidated(r, &ctx->fcf->cache_conf, ctx->cache,
                                       &rh);
        if (rc != ED_AGAIN) {
            /* (ED_AGAIN: a large entry's copy finalizes when over.) */
            ed_http_finalize(r, rc);
        }
        return ED_DONE;
    }
    rc = ed_http_cgi_head_apply(r, h);
    if (rc == ED_DECLINED) {
        /* A local redirect: the rest of the output is not wanted. */
        ed_http_upstream_attempts_end(&ctx->a, 200);
        ed_http_upstream_succeeded(ctx->a.server);
        ed_fcgi_teardown(ctx, false);
        if (ctx->cache) {
            /* Not a response to store. A detached fetch has no client to
             * redirect: the one that handed it the key asks itself. */
            ed_http_cache_not_stored(ctx->cache);
            if (r->background) {
                ed_http_finalize(r, ED_OK);
                return ED_DONE;
            }
        }
        rc = ed_http_cgi_redirect(r, &h->location);
        if (rc != ED_AGAIN) {
            ed_http_finalize(r, rc);
        }
        return ED_DONE;
    }
    if (rc != ED_OK) {
        ed_fcgi_finish(ctx, 500);
        return ED_DONE;
    }
    ed_http_upstream_attempts_end(&ctx->a, r->status);
    if (ed_worker->quitting && !ed_http_quit_keepalive(r->hc)) {
        r->keepalive = 0;
    }
    ctx->left = r->content_length;
    /* A cache fetch went as a GET: its body comes whatever the client's
     * method (a HEAD client gets none of it). */
    ctx->discard = (r->head_only && !(ctx->cache && ctx->cache->may_store))
                   || !ed_http_status_has_body(r->status);
    if (ctx->cache) {
        ed_http_resp_head_t rh;

        /* Whether it is stored, and Cache-Status. END_REQUEST ends the
         * body: never close-delimited. */
        if (ed_fcgi_resp_head(ctx, r->status, &rh) != ED_OK
            || ed_http_cache_response(r, &ctx->fcf->cache_conf, ctx->cache,
                                      &rh, false) != ED_OK)
        {
            ed_fcgi_finish(ctx, 500);
            return ED_DONE;
        }
    }
    r->streamed = 1;
    if (ed_http_send_header(r) != ED_OK) {
        ed_fcgi_finish(ctx, ED_ERROR);
        return ED_DONE;
    }
    /* What followed the head in its buffer is body. */
    if (ed_fcgi_body_out(ctx, ctx->hbuf + h->head_len, ctx->hlen - h->head_len)
        != ED_OK)
    {
        ed_fcgi_finish(ctx, ED_ERROR);
        return ED_DONE;
    }
    return ED_OK;
}

/* STDOUT bytes. ED_OK, or ED_DONE after a last call. */
static int
ed_fcgi_stdout(ed_fcgi_ctx_t *ctx, const char *p, size_t n)
{
    size_t take, cap;
    char  *hb;
    int    rc;

    ctx->stdout_seen = 1;
    if (ctx->head_done) {
        if (ed_fcgi_body_out(ctx, p, n) != ED_OK) {
            ed_fcgi_finish(ctx, ED_ERROR);
            return ED_DONE;
        }
        return ED_OK;
    }
    if (ctx->hlen + n > ctx->hcap && ctx->hcap < ctx->fcf->buffer_size) {
        /* First the piece's size: a head and a short body usually come
         * in one record, and pool blocks hold that without a malloc of
         * buffer_size. Then buffer_size; what the parser found in the
         * old buffer stays in the pool, pointed at. */
        cap = ctx->hlen == 0 ? ed_min(n, ctx->fcf->buffer_size)
                             : ctx->fcf->buffer_size;
        hb = ed_pnalloc(ctx->r->pool, cap);
        if (hb == NULL) {
            ed_fcgi_finish(ctx, 500);
            return ED_DONE;
        }
        if (ctx->hlen) {
            memcpy(hb, ctx->hbuf, ctx->hlen);
        }
        ctx->hbuf = hb;
        ctx->hcap = cap;
    }
    take = ed_min(n, ctx->hcap - ctx->hlen);
    memcpy(ctx->hbuf + ctx->hlen, p, take);
    ctx->hlen += take;
    rc = ed_http_cgi_head_parse(&ctx->head, ctx->hbuf, ctx->hlen);
    if (rc == ED_AGAIN) {
        return ED_OK;
    }
    if (rc == ED_ERROR) {
        ed_http_log(ED_LOG_ERR, ctx->r, 0, "upstream %s sent an invalid "
                    "response head (upstream \"%s\")",
                    ctx->a.server->name.data, ctx->a.ups->name.data);
        ed_http_log(ED_LOG_INFO, ctx->r, 0, "invalid CGI response head: %s",
                    ctx->head.error);
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_INVALID, 502);
        return ED_DONE;
    }
    if (ed_fcgi_on_head(ctx) != ED_OK) {
        return ED_DONE;
    }
    /* The rest of this piece, past what the head buffer took. */
    if (ed_fcgi_body_out(ctx, p + take, n - take) != ED_OK) {
        ed_fcgi_finish(ctx, ED_ERROR);
        return ED_DONE;
    }
    return ED_OK;
}

/* END_REQUEST: the response is complete. Last call. */
static void
ed_fcgi_end(ed_fcgi_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;
    ed_stream_t       *us = &ctx->a.uc->c.stream;
    bool               keep;

    if (ctx->fp.app_status != 0) {
        ed_http_log(ED_LOG_INFO, r, 0, "upstream %s ended the request with "
                    "appStatus %u (upstream \"%s\")", ctx->a.server->name.data,
                    ctx->fp.app_status, ctx->a.ups->name.data);
    }
    if (!ctx->head_done) {
        /* The output ended before the head's empty line. */
        ed_http_log(ED_LOG_ERR, r, 0, "upstream %s sent an invalid response "
                    "head (upstream \"%s\")", ctx->a.server->name.data,
                    ctx->a.ups->name.data);
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_INVALID, 502);
        return;
    }
    if (ctx->left > 0 && !ctx->discard) {
        ed_http_log(ED_LOG_ERR, r, 0, "upstream %s sent %" PRId64 " bytes "
                    "less than its Content-Length (upstream \"%s\")",
                    ctx->a.server->name.data, ctx->left,
                    ctx->a.ups->name.data);
        ed_fcgi_teardown(ctx, false);
        ed_http_finalize(r, ED_HTTP_CUT);
        return;
    }
    /* The whole body arrived (END_REQUEST): a response being stored
     * takes its place in the cache. */
    if (ctx->cache) {
        ed_http_cache_done(r, ctx->cache);
    }
    if (ctx->a.try) {
        ctx->a.try->msec = ed_current_msec - ctx->a.start;
    }
    ed_http_upstream_succeeded(ctx->a.server);
    keep = ctx->keep && ctx->body_done && !ed_stream_buffered(us)
           && !us->rdhup && !us->eof && !us->error;
    ed_fcgi_teardown(ctx, keep);
    ed_http_finalize(r, ED_OK);
}

/* A bad record or an early close. Last call. */
static void
ed_fcgi_broken(ed_fcgi_ctx_t *ctx)
{
    if (!ctx->stdout_seen) {
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_ERROR, 502);
    } else if (!ctx->head_done) {
        ed_fcgi_fail(ctx, ED_HTTP_UPS_FT_INVALID, 502);
    } else {
        ed_fcgi_body_failed(ctx, 502);
    }
}

static void
ed_fcgi_on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_fcgi_ctx_t           *ctx = uc->owner;
    size_t                   pos = 0, used, off, n;
    int                      rc, ev;

    ed_timer_del(ed_worker->loop, &ctx->a.timer);
    if (status == ED_OK || (status == ED_DONE && len)) {
        while (pos < len) {
            rc = ed_fcgi_parse(&ctx->fp, data + pos, len - pos, &used, &ev,
                               &off, &n);
            if (rc == ED_ERROR) {
                ed_http_log(ED_LOG_ERR, ctx->r, 0, "upstream %s sent an "
                            "invalid FastCGI record (%s) (upstream \"%s\")",
                            ctx->a.server->name.data, ctx->fp.error,
                            ctx->a.ups->name.data);
                ed_fcgi_broken(ctx);
                return;
            }
            if (rc == ED_OK && ev == ED_FCGI_EV_STDOUT) {
                if (ed_fcgi_stdout(ctx, data + pos + off, n) != ED_OK) {
                    return;
                }
            } else if (rc == ED_OK && ev == ED_FCGI_EV_STDERR) {
                if (ed_fcgi_stderr_logger(ctx) == NULL) {
                    ed_fcgi_finish(ctx, 500);
                    return;
                }
                ed_http_cgi_stderr(ctx->r, ctx->err, data + pos + off, n);
            } else if (rc == ED_OK) {
                if (pos + used < len) {
                    /* Checked at once: the parser reports it. */
                    pos += used;
                    continue;
                }
                ed_fcgi_end(ctx);
                return;
            }
            pos += used;
        }
        if (status == ED_OK) {
            if (ed_http_output_busy(ctx->r)) {
                ed_http_output_wait(ctx->r, ed_fcgi_on_client_ready, ctx);
                return;
            }
            ed_fcgi_read_more(ctx);
            return;
        }
    }
    /* The application closed (or the connection failed). */
    if (ctx->a.reused && !ctx->stale_retried && ctx->fp.records == 0
        && !ctx->stdout_seen && ed_fcgi_may_resend(ctx))
    {
        ed_fcgi_retry_stale(ctx);
        return;
    }
    ed_http_log(ED_LOG_ERR, ctx->r, 0, "upstream %s closed the connection "
                "%s (upstream \"%s\")", ctx->a.server->name.data,
                ctx->fp.records == 0 ? "without a response"
                                     : "before END_REQUEST",
                ctx->a.ups->name.data);
    ed_fcgi_broken(ctx);
}

/* The handler. */

/* Whether a path holds a segment starting with '.' other than
 * /.well-known/ (as static: hidden files are not served). */
static bool
ed_fcgi_dot_segment(const ed_str_t *uri)
{
    size_t i;

    for (i = 0; i + 1 < uri->len; i++) {
        if (uri->data[i] == '/' && uri->data[i + 1] == '.') {
            if (i == 0 && uri->len >= 12
                && memcmp(uri->data, "/.well-known", 12) == 0
                && (uri->len == 12 || uri->data[12] == '/'))
            {
                continue;
            }
            return true;
        }
    }
    return false;
}

int
ed_http_fastcgi_script(ed_http_request_t *r, ed_http_fastcgi_conf_t *fcf,
                       bool log, const char **file)
{
    ed_http_cgi_req_t      *c;
    pcre2_match_data       *md;
    PCRE2_SIZE             *ov;
    ed_str_t                sn;
    struct stat             st;
    char                   *path;
    int                     rc;

    c = ed_http_cgi_request(r);
    if (c == NULL) {
        return 500;
    }
    c->root = fcf->doc_root;
    sn = r->uri;
    c->path_info.data = "";
    c->path_info.len = 0;
    if (fcf->split) {
        md = pcre2_match_data_create_from_pattern(fcf->split, NULL);
        if (md == NULL) {
            return 500;
        }
        rc = pcre2_match(fcf->split, (PCRE2_SPTR)r->uri.data, r->uri.len, 0,
                         0, md, NULL);
        if (rc >= 3) {
            ov = pcre2_get_ovector_pointer(md);
            if (ov[2] != PCRE2_UNSET) {
                sn.data = r->uri.data + ov[2];
                sn.len = ov[3] - ov[2];
            }
            if (ov[4] != PCRE2_UNSET) {
                c->path_info.data = r->uri.data + ov[4];
                c->path_info.len = ov[5] - ov[4];
            }
        }
        pcre2_match_data_free(md);
    }
    if (fcf->index.len && sn.len && sn.data[sn.len - 1] == '/') {
        path = ed_pnalloc(r->pool, sn.len + fcf->index.len + 1);
        if (path == NULL) {
            return 500;
        }
        memcpy(path, sn.data, sn.len);
        memcpy(path + sn.len, fcf->index.data, fcf->index.len);
        sn.data = path;
        sn.len += fcf->index.len;
    }
    c->script_name = sn;
    path = ed_pnalloc(r->pool, c->root.len + sn.len + 1);
    if (path == NULL) {
        return 500;
    }
    if (c->root.len) {
        memcpy(path, c->root.data, c->root.len);
    }
    memcpy(path + c->root.len, sn.data, sn.len);
    path[c->root.len + sn.len] = '\0';
    *file = path;
    if (fcf->check_script != 1) {
        return ED_OK;
    }
    if (ed_fcgi_dot_segment(&sn) || stat(path, &st) != 0
        || !S_ISREG(st.st_mode))
    {
        if (log) {
            ed_http_log(ED_LOG_INFO, r, 0, "fastcgi script \"%s\" is not a "
                        "regular file", ed_http_log_str(r, path, strlen(path),
                                                        1024));
        }
        return 404;
    }
    return ED_OK;
}

/* Picks the first server and starts. ED_AGAIN or a status. */
static int
ed_fcgi_start(ed_fcgi_ctx_t *ctx)
{
    if (ed_fcgi_build(ctx) != ED_OK
        || ed_http_upstream_attempts_hash(&ctx->a) != ED_OK)
    {
        return 500;
    }
    return ed_http_upstream_attempts_next(&ctx->a);
}

/* A body of unknown length, read to learn CONTENT_LENGTH (RFC 3875
 * 4.1.2): up to buffer_size, else 411. */
static void
ed_fcgi_on_learn(ed_http_request_t *r, void *data, int rc, const char *p,
                 size_t len)
{
    ed_fcgi_ctx_t *ctx = data;

    if (rc != ED_OK && rc != ED_DONE) {
        ed_fcgi_finish(ctx, rc);
        return;
    }
    if (len > ctx->fcf->buffer_size - ctx->learn_len) {
        ed_http_log(ED_LOG_INFO, r, 0, "a request body of unknown length "
                    "over %zu bytes (fastcgi buffer_size): 411",
                    ctx->fcf->buffer_size);
        r->keepalive = 0;
        ed_fcgi_finish(ctx, 411);
        return;
    }
    if (len) {
        memcpy(ctx->learn + ctx->learn_len, p, len);
        ctx->learn_len += len;
    }
    if (rc == ED_DONE) {
        r->cgi->content_length = (int64_t)ctx->learn_len;
        rc = ed_fcgi_start(ctx);
        if (rc != ED_AGAIN) {
            ed_fcgi_finish(ctx, rc);
        }
    }
}

int
ed_http_fastcgi_handler(ed_http_request_t *r)
{
    ed_http_fastcgi_loc_conf_t *lcf = ed_http_loc_conf(r,
                                                       ed_http_fastcgi_module);
    ed_http_fastcgi_conf_t     *fcf = lcf->block;
    ed_fcgi_ctx_t              *ctx;
    int                         rc;

    ctx = ed_pcalloc(r->pool, sizeof(ed_fcgi_ctx_t));
    if (ctx == NULL
        || ed_http_upstream_attempts_init(&ctx->a, r, fcf->ups,
                                          fcf->next_upstream,
                                          fcf->next_upstream_tries,
                                          ed_fcgi_attempt,
                                          ed_fcgi_on_utimer, ctx) != ED_OK
        || ed_pool_cleanup_add(r->pool, ed_fcgi_cleanup, ctx) != ED_OK
        || (ctx->fields = ed_fcgi_fields_get()) == NULL)
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
    r->upstream->scheme = "fastcgi://";
    r->upstream->peer = fcf->ups->name;
    r->upstream->head.len = 0;
    ctx->r = r;
    ctx->fcf = fcf;
    ctx->left = -1;
    ctx->keep = fcf->ups->keepalive > 0;
    ctx->piece = ed_worker->bufs.size > 2 * ED_FCGI_SLACK
                     ? ed_worker->bufs.size - ED_FCGI_SLACK
                     : ed_worker->bufs.size;
    ctx->piece = ed_min(ctx->piece, fcf->buffer_size);

    rc = ed_http_cache_start(r, &fcf->cache_conf, &ctx->cache,
                             ed_fcgi_cache_resume, ctx);
    if (rc == ED_AGAIN) {
        /* Another request fetches the key: woken when it is done. */
        return ED_AGAIN;
    }
    if (rc != ED_DECLINED) {
        /* A hit served, or an answer without the application. */
        ed_fcgi_teardown(ctx, false);
        return rc;
    }
    rc = ed_fcgi_go(ctx);
    if (rc != ED_AGAIN) {
        ed_fcgi_teardown(ctx, false);
        if (rc >= 500) {
            /* No application to try: a stale entry may answer. */
            int st = ed_http_cache_failed(r, ctx->cache,
                                          ED_CACHE_STALE_ERROR, true, rc);

            rc = st != ED_DECLINED ? st : rc;
        }
    }
    return rc;
}

/* Finds the script, reads a body of unknown length, builds the request
 * and tries the first application: ED_AGAIN, or the status to answer
 * with. */
static int
ed_fcgi_go(ed_fcgi_ctx_t *ctx)
{
    ed_http_request_t      *r = ctx->r;
    ed_http_fastcgi_conf_t *fcf = ctx->fcf;
    const char             *file;
    int                     rc;

    /* Sized for the application's pieces (a cache hit keeps the
     * default: file ranges of any size). */
    ed_http_output_buffer(r, fcf->buffer_size);
    rc = ed_http_fastcgi_script(r, fcf, true, &file);
    if (rc != ED_OK) {
        return rc;
    }
    if (ed_http_cgi_has_body(r)) {
        ctx->body_started = 0;
        if (r->body_dec.kind == ED_HTTP_BODY_CHUNKED) {
            ctx->body_done = 1;
            ctx->learn = ed_pnalloc(r->pool, fcf->buffer_size);
            if (ctx->learn == NULL) {
                return 500;
            }
            rc = ed_http_read_body(r, ed_fcgi_on_learn, ctx);
            if (rc == ED_ERROR) {
                return 500;
            }
            if (rc == ED_AGAIN || rc == ED_OK) {
                return ED_AGAIN;
            }
            r->cgi->content_length = 0;
        } else {
            ctx->stream_body = 1;
            ctx->replay_cap = ed_http_decoder_want(&r->body_dec,
                                                   fcf->buffer_size);
            ctx->replay = ed_pnalloc(r->pool, ctx->replay_cap + 1);
            if (ctx->replay == NULL) {
                return 500;
            }
        }
    }
    if (!ctx->stream_body) {
        ctx->body_done = 1;
    }
    return ed_fcgi_start(ctx);
}

/* A request that waited for another one's fetch goes on. */
static void
ed_fcgi_cache_resume(ed_http_request_t *r, void *data, int rc)
{
    ed_fcgi_ctx_t *ctx = data;

    ed_unused(r);
    if (rc == ED_DECLINED) {
        rc = ed_fcgi_go(ctx);
        if (rc == ED_AGAIN) {
            return;
        }
        if (rc >= 500) {
            ed_fcgi_finish_failed(ctx, ED_HTTP_UPS_FT_ERROR, rc);
            return;
        }
    }
    ed_fcgi_finish(ctx, rc);
}
