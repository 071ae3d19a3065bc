/* The cgi content handler (fastcgi-cgi.md, cgi): finds the script with
 * the walk (ed_http_cgi_walk.c), builds its argv and environment, starts
 * it (ed_http_cgi_proc.c) and relays through three non-blocking pipe
 * streams: the request body into stdin under back-pressure, stdout
 * through the shared CGI head parser (src/http/ed_http_cgi.c) to the
 * response, stderr to the error log. Its configuration is in
 * ed_http_cgi_conf.c. */
#include "ed_http_cgi_handler.h"
#include "ed_http_cgi.h"
#include "ed_stats.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

/* How long a response whose stdout ended waits for the end of stderr
 * (a script's last lines), at most. */
#define ED_CGI_STDERR_GRACE 500
/* How often an HTTP/1 client that may have gone is checked while its
 * script runs (nothing reads its connection meanwhile). */
#define ED_CGI_WATCH 500
/* At max_processes, while a script whose output ended is still exiting:
 * how long a request waits, woken when a process is reaped, before 503.
 * A client's next request comes back faster than a process exits, so
 * without it max_processes 1 refuses most requests of a kept connection
 * sent one after the other. */
#define ED_CGI_SLOT_WAIT 1000

typedef struct {
    ed_http_request_t    *r;
    ed_http_cgi_conf_t   *ccf;
    ed_http_cgi_proc_t   *proc;
    char                 *script;     /* the file, NUL-terminated */
    char                 *exec;       /* it resolved: what is executed */
    char                 *dir;        /* its directory */
    const char           *name;       /* script, escaped for logs */
    ed_stream_t           in;
    ed_stream_t           out;
    ed_stream_t           err;
    ed_timer_t            grace;
    ed_timer_t            watch;
    ed_http_cgi_slot_t    slot;       /* waiting for max_processes */
    ed_timer_t            slot_timer; /* ... at most ED_CGI_SLOT_WAIT */
    /* A body of unknown length, read before the start. */
    char                 *body;
    size_t                body_len;
    /* stdout before the head's end: parsed as it grows. */
    char                 *head;
    size_t                head_len;
    ed_http_cgi_head_t    h;
    ed_http_header_t      fields[ED_HTTP_CGI_MAX_FIELDS];
    ed_http_cgi_stderr_t *elog;
    int64_t               left;       /* of a Content-Length body; -1 */
    unsigned              in_open:1;
    unsigned              out_open:1;
    unsigned              err_open:1;
    unsigned              head_done:1;
    unsigned              out_eof:1;
    unsigned              done:1;
    unsigned              warned_extra:1;
} ed_cgi_ctx_t;

static void ed_cgi_read_out(ed_cgi_ctx_t *ctx);
static void ed_cgi_read_err(ed_cgi_ctx_t *ctx);

/* Teardown. */

/* Closes the pipes and lets the process go (killed when kill is set,
 * else left to end within its timeout). */
static void
ed_cgi_teardown(ed_cgi_ctx_t *ctx, bool kill)
{
    if (ctx->done) {
        return;
    }
    ctx->done = 1;
    ed_timer_del(ed_worker->loop, &ctx->grace);
    ed_timer_del(ed_worker->loop, &ctx->watch);
    ed_timer_del(ed_worker->loop, &ctx->slot_timer);
    ed_http_cgi_slot_cancel(&ctx->slot);
    ed_http_body_stop(ctx->r);
    if (ctx->in_open) {
        ctx->in_open = 0;
        ed_stream_close(&ctx->in);
    }
    if (ctx->out_open) {
        ctx->out_open = 0;
        ed_stream_close(&ctx->out);
    }
    if (ctx->err_open) {
        ctx->err_open = 0;
        ed_stream_close(&ctx->err);
    }
    if (ctx->elog) {
        ed_http_cgi_stderr_end(ctx->r, ctx->elog);
    }
    if (ctx->proc) {
        ed_http_cgi_proc_detach(ctx->proc, kill);
        ctx->proc = NULL;
    }
}

/* The request ended before the script (the client went away, the
 * connection timed out, the worker exits): its group is killed. */
static void
ed_cgi_cleanup(void *data)
{
    ed_cgi_teardown(data, true);
}

/* Ends the request with rc (ED_OK, a status, ED_ERROR, ED_HTTP_CUT). A
 * status after the head went out closes the connection instead. */
static void
ed_cgi_finish(ed_cgi_ctx_t *ctx, int rc, bool kill)
{
    ed_http_request_t *r = ctx->r;

    ed_cgi_teardown(ctx, kill);
    if (rc >= 300 && r->header_sent) {
        rc = ED_ERROR;
    }
    ed_http_finalize(r, rc);
}

/* The process. */

static void
ed_cgi_on_exit(void *data, int code, int status)
{
    ed_cgi_ctx_t      *ctx = data;
    ed_http_request_t *r = ctx->r;
    char               when[32];

    if (code == -1) {
        ed_http_cgi_duration(ctx->ccf->timeout, when, sizeof(when));
        ed_http_log(ED_LOG_ERR, r, 0, "cgi script \"%s\" timed out after %s",
                    ctx->name, when);
        if (ctx->out_eof && ctx->head_done && ctx->left <= 0) {
            /* The output was whole; only its stderr was waited for. */
            ed_cgi_finish(ctx, ED_OK, true);
            return;
        }
        /* Before the head: 504; after: the client connection closes
         * (HTTP/2: RST_STREAM), never a short body that looks
         * complete. */
        ed_cgi_finish(ctx, ctx->head_done ? ED_ERROR : 504, true);
        return;
    }
    if (code == CLD_EXITED && status != 0) {
        ed_http_log(ED_LOG_WARN, r, 0, "cgi script \"%s\" exited with "
                    "status %d", ctx->name, status);
    } else if (code == CLD_KILLED || code == CLD_DUMPED) {
        ed_http_log(ED_LOG_WARN, r, 0, "cgi script \"%s\" exited on "
                    "signal %d", ctx->name, status);
    }
    /* The response ends at stdout's EOF, which follows. */
}

/* The client going away: HTTP/2 resets the stream (core ends the
 * request); an HTTP/1 connection nobody reads is looked at here. Its
 * end (a FIN, even behind a pipelined request nobody read yet; also a
 * half-close, as nginx takes it) or an error kills the script. */
static void
ed_cgi_on_watch(ed_timer_t *t)
{
    ed_cgi_ctx_t  *ctx = t->data;
    ed_stream_t   *s = &ctx->r->hc->c.stream;
    struct pollfd  pfd;
    int            n;

    /* An accepted connection is registered with epoll only once it has
     * to wait, so no RDHUP edge can be counted on: the socket is asked.
     * POLLRDHUP, not a peek: bytes a client sent ahead of its FIN would
     * hide it from recv(MSG_PEEK) until the script's timeout. */
    pfd.fd = s->ev.fd;
    pfd.events = POLLRDHUP;
    pfd.revents = 0;
    n = s->closed ? 1 : poll(&pfd, 1, 0);
    if (s->closed || (n > 0 && pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
        || (n < 0 && errno != EINTR))
    {
        ed_http_log(ED_LOG_INFO, ctx->r, 0, "client closed the connection "
                    "while cgi script \"%s\" ran", ctx->name);
        ed_cgi_finish(ctx, ED_ERROR, true);
        return;
    }
    ed_timer_add(ed_worker->loop, t, ED_CGI_WATCH);
}

/* stderr. */

static void
ed_cgi_on_err(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_cgi_ctx_t *ctx = s->data;

    if (len) {
        ed_http_cgi_stderr(ctx->r, ctx->elog, data, len);
    }
    if (status != ED_OK) {
        ctx->err_open = 0;
        ed_stream_close(&ctx->err);
        if (ctx->out_eof) {
            ed_cgi_finish(ctx, ED_OK, false);
        }
        return;
    }
    ed_cgi_read_err(ctx);
}

static void
ed_cgi_read_err(ed_cgi_ctx_t *ctx)
{
    if (ed_stream_read_some(&ctx->err, ED_HTTP_CGI_LINE_MAX, ed_cgi_on_err)
        != ED_OK)
    {
        ctx->err_open = 0;
        ed_stream_close(&ctx->err);
    }
}

/* stdin: the request body. */

static void
ed_cgi_close_in(ed_stream_t *s)
{
    ed_cgi_ctx_t *ctx = s->data;

    if (ctx->in_open) {
        ctx->in_open = 0;
        ed_stream_close(&ctx->in);
    }
}

/* The body is all written (or none is to be): EOF on stdin once the
 * queue is out. */
static void
ed_cgi_end_in(ed_cgi_ctx_t *ctx)
{
    if (!ctx->in_open) {
        return;
    }
    if (ctx->in.wqueued == 0) {
        ed_cgi_close_in(&ctx->in);
        return;
    }
    ctx->in.on_flushed = ed_cgi_close_in;
}

/* EPIPE: the script closed stdin; the rest of the body is discarded. */
static void
ed_cgi_on_in_close(ed_stream_t *s)
{
    ed_cgi_ctx_t *ctx = s->data;

    ed_cgi_close_in(s);
    if (!ctx->done) {
        ed_http_body_stop(ctx->r);
    }
}

static void
ed_cgi_on_in_drain(ed_stream_t *s)
{
    ed_cgi_ctx_t *ctx = s->data;

    s->on_drain = NULL;
    ed_http_body_resume(ctx->r);
}

static void
ed_cgi_on_body(ed_http_request_t *r, void *data, int rc, const char *p,
               size_t len)
{
    ed_cgi_ctx_t *ctx = data;

    if (rc != ED_OK && rc != ED_DONE) {
        ed_http_log(ED_LOG_INFO, r, 0, "reading the client request body "
                    "failed (%d)", rc);
        ed_cgi_finish(ctx, rc, true);
        return;
    }
    if (!ctx->in_open) {
        return;
    }
    if (len && ed_stream_write(&ctx->in, p, len) != ED_OK) {
        ed_cgi_close_in(&ctx->in);
        ed_http_body_stop(r);
        return;
    }
    if (rc == ED_DONE) {
        ed_cgi_end_in(ctx);
    } else if (ed_stream_write_blocked(&ctx->in)) {
        /* The client is read no faster than the script takes it. */
        ed_http_body_pause(r);
        ctx->in.on_drain = ed_cgi_on_in_drain;
    }
}

/* stdout: the head, then the body. */

static void
ed_cgi_on_grace(ed_timer_t *t)
{
    ed_cgi_finish(t->data, ED_OK, false);
}

/* stdout ended: the response is complete unless a Content-Length says
 * more was due; then, once stderr is over too (briefly waited for), the
 * request ends. */
static void
ed_cgi_out_end(ed_cgi_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;

    ctx->out_open = 0;
    ed_stream_close(&ctx->out);
    ctx->out_eof = 1;
    if (ctx->left > 0) {
        ed_http_log(ED_LOG_ERR, r, 0, "cgi script \"%s\" sent %lld bytes "
                    "less than its Content-Length", ctx->name,
                    (long long)ctx->left);
        ed_cgi_finish(ctx, ED_HTTP_CUT, false);
        return;
    }
    if (!ctx->err_open) {
        ed_cgi_finish(ctx, ED_OK, false);
        return;
    }
    ctx->grace.handler = ed_cgi_on_grace;
    ctx->grace.data = ctx;
    ed_timer_add(ed_worker->loop, &ctx->grace, ED_CGI_STDERR_GRACE);
}

/* Passes body bytes on within the Content-Length. ED_OK or ED_ERROR
 * (the client's side failed). */
static int
ed_cgi_body_out(ed_cgi_ctx_t *ctx, const char *p, size_t len)
{
    if (ctx->left >= 0 && (int64_t)len > ctx->left) {
        if (!ctx->warned_extra) {
            ctx->warned_extra = 1;
            ed_http_log(ED_LOG_WARN, ctx->r, 0, "cgi script \"%s\" sent "
                        "more than its Content-Length; the rest is "
                        "dropped", ctx->name);
        }
        len = (size_t)ctx->left;
    }
    if (ctx->left >= 0) {
        ctx->left -= (int64_t)len;
    }
    if (len == 0) {
        return ED_OK;
    }
    return ed_http_send_body(ctx->r, p, len);
}

static void
ed_cgi_on_client_ready(ed_http_request_t *r, void *data)
{
    ed_unused(r);
    ed_cgi_read_out(data);
}

static void
ed_cgi_on_out_body(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_cgi_ctx_t *ctx = s->data;

    if (len && ed_cgi_body_out(ctx, data, len) != ED_OK) {
        ed_cgi_finish(ctx, ED_ERROR, true);
        return;
    }
    if (status != ED_OK) {
        ed_cgi_out_end(ctx);
        return;
    }
    if (ed_http_output_busy(ctx->r)) {
        ed_http_output_wait(ctx->r, ed_cgi_on_client_ready, ctx);
        return;
    }
    ed_cgi_read_out(ctx);
}

/* The head is parsed: a local redirect, or the response head and the
 * body bytes that came with it. */
static void
ed_cgi_start_response(ed_cgi_ctx_t *ctx)
{
    ed_http_request_t *r = ctx->r;
    ed_str_t           loc;
    int                rc;

    rc = ed_http_cgi_head_apply(r, &ctx->h);
    if (rc == ED_DECLINED) {
        /* RFC 3875 6.2.2: the rest of the output is dropped; the script
         * ends by itself (within its timeout). */
        loc.len = ctx->h.location.len;
        loc.data = ed_pnalloc(r->pool, loc.len + 1);
        if (loc.data == NULL) {
            ed_cgi_finish(ctx, 500, true);
            return;
        }
        memcpy(loc.data, ctx->h.location.data, loc.len);
        loc.data[loc.len] = '\0';
        ed_cgi_teardown(ctx, false);
        rc = ed_http_cgi_redirect(r, &loc);
        if (rc != ED_AGAIN) {
            ed_http_finalize(r, rc);
        }
        return;
    }
    if (rc != ED_OK) {
        ed_cgi_finish(ctx, 500, true);
        return;
    }
    ctx->head_done = 1;
    ctx->left = r->content_length;
    r->streamed = 1;
    ed_http_output_buffer(r, ctx->ccf->buffer_size);
    if (ed_http_send_header(r) != ED_OK) {
        ed_cgi_finish(ctx, ED_ERROR, true);
        return;
    }
    if (ctx->head_len > ctx->h.head_len
        && ed_cgi_body_out(ctx, ctx->head + ctx->h.head_len,
                           ctx->head_len - ctx->h.head_len)
               != ED_OK)
    {
        ed_cgi_finish(ctx, ED_ERROR, true);
        return;
    }
    if (ctx->out_eof) {
        ed_cgi_out_end(ctx);
        return;
    }
    if (ed_http_output_busy(r)) {
        ed_http_output_wait(r, ed_cgi_on_client_ready, ctx);
        return;
    }
    ed_cgi_read_out(ctx);
}

static void
ed_cgi_bad_head(ed_cgi_ctx_t *ctx)
{
    ed_http_log(ED_LOG_ERR, ctx->r, 0, "cgi script \"%s\" sent an invalid "
                "response head%s%s%s", ctx->name,
                ctx->h.error ? " (" : "", ctx->h.error ? ctx->h.error : "",
                ctx->h.error ? ")" : "");
    ed_cgi_finish(ctx, 502, true);
}

static void
ed_cgi_on_out_head(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_cgi_ctx_t *ctx = s->data;
    size_t        room = ctx->ccf->buffer_size - ctx->head_len;
    int           rc;

    if (len > room) {
        len = room;  /* read_some asked for room bytes at most */
    }
    memcpy(ctx->head + ctx->head_len, data, len);
    ctx->head_len += len;
    if (status != ED_OK) {
        /* The output ended (or failed) here. */
        ctx->out_open = 0;
        ed_stream_close(&ctx->out);
        ctx->out_eof = 1;
    }
    rc = ed_http_cgi_head_parse(&ctx->h, ctx->head, ctx->head_len);
    if (rc == ED_OK) {
        ed_cgi_start_response(ctx);
        return;
    }
    if (rc == ED_ERROR || ctx->out_eof) {
        ed_cgi_bad_head(ctx);
        return;
    }
    ed_cgi_read_out(ctx);
}

static void
ed_cgi_read_out(ed_cgi_ctx_t *ctx)
{
    int rc;

    if (ctx->head_done) {
        rc = ed_stream_read_some(&ctx->out, ctx->ccf->buffer_size,
                                 ed_cgi_on_out_body);
    } else {
        rc = ed_stream_read_some(&ctx->out,
                                 ctx->ccf->buffer_size - ctx->head_len,
                                 ed_cgi_on_out_head);
    }
    if (rc != ED_OK) {
        ed_cgi_finish(ctx, ctx->head_done ? ED_HTTP_CUT : 502, true);
    }
}

/* Starting. */

typedef struct {
    ed_http_request_t *r;
    ed_array_t        *env;   /* char * */
} ed_cgi_env_build_t;

/* Appends "name=value" to the environment. ED_OK or ED_ERROR. */
static int
ed_cgi_env_add(void *data, const char *name, size_t nlen, const char *value,
               size_t vlen)
{
    ed_cgi_env_build_t *b = data;
    char              **slot, *s;

    s = ed_pnalloc(b->r->pool, nlen + vlen + 2);
    slot = ed_array_push(b->env);
    if (s == NULL || slot == NULL) {
        return ED_ERROR;
    }
    memcpy(s, name, nlen);
    s[nlen] = '=';
    memcpy(s + nlen + 1, value, vlen);
    s[nlen + 1 + vlen] = '\0';
    /* A value cannot hold a NUL in an environment: cut there. */
    *slot = s;
    return ED_OK;
}

/* The environment: the meta-variables, then env (PATH by default),
 * nothing else; NULL-terminated in r's pool. NULL on ENOMEM. */
static char **
ed_cgi_envp(ed_cgi_ctx_t *ctx)
{
    ed_http_request_t  *r = ctx->r;
    ed_cgi_env_build_t  b;
    ed_http_cgi_env_t  *e;
    ed_str_t            v;
    size_t              i;
    char              **end;
    unsigned            flags = ED_HTTP_CGI_REMOTE_HOST;

    b.r = r;
    b.env = ed_array_create(r->pool, 48, sizeof(char *));
    if (b.env == NULL) {
        return NULL;
    }
    if (ctx->ccf->pass_authorization) {
        flags |= ED_HTTP_CGI_AUTHORIZATION;
    }
    if (ed_http_cgi_meta(r, flags, ed_cgi_env_add, &b) != ED_OK) {
        return NULL;
    }
    if (!ctx->ccf->env_path
        && ed_cgi_env_add(&b, "PATH", 4, ED_CGI_PATH,
                          sizeof(ED_CGI_PATH) - 1)
               != ED_OK)
    {
        return NULL;
    }
    e = ctx->ccf->env ? ctx->ccf->env->elts : NULL;
    for (i = 0; e && i < ctx->ccf->env->nelts; i++) {
        if (ed_http_template_run(r, e[i].value, &v) != ED_OK
            || ed_cgi_env_add(&b, e[i].name.data, e[i].name.len, v.data,
                              v.len)
                   != ED_OK)
        {
            return NULL;
        }
    }
    end = ed_array_push(b.env);
    if (end == NULL) {
        return NULL;
    }
    *end = NULL;
    return b.env->elts;
}

/* argv: the interpreter list of the script's extension then the
 * script, or the script alone; never words of the query (RFC 3875 4.4,
 * CVE-2012-1823). NULL on ENOMEM. */
static char **
ed_cgi_argv(ed_cgi_ctx_t *ctx)
{
    ed_http_cgi_interp_t *in = NULL;
    const char           *base, *dot;
    ed_str_t             *a;
    size_t                i, n = 0, elen;
    char                **argv;

    base = strrchr(ctx->script, '/');
    base = base ? base + 1 : ctx->script;
    dot = strrchr(base, '.');
    if (dot && ctx->ccf->interpreters) {
        elen = strlen(dot);
        in = ctx->ccf->interpreters->elts;
        for (i = 0; i < ctx->ccf->interpreters->nelts; i++) {
            if (in[i].ext.len == elen && memcmp(in[i].ext.data, dot, elen)
                                             == 0)
            {
                break;
            }
        }
        in = i < ctx->ccf->interpreters->nelts ? &in[i] : NULL;
    }
    if (in) {
        n = in->argv->nelts;
    }
    argv = ed_palloc(ctx->r->pool, (n + 2) * sizeof(char *));
    if (argv == NULL) {
        return NULL;
    }
    a = in ? in->argv->elts : NULL;
    for (i = 0; i < n; i++) {
        argv[i] = a[i].data;
    }
    argv[n] = ctx->exec;
    argv[n + 1] = NULL;
    return argv;
}

/* Sets a pipe's worker end up as a stream. ED_OK or ED_ERROR. */
static int
ed_cgi_stream(ed_cgi_ctx_t *ctx, ed_stream_t *s, int fd)
{
    if (ed_stream_init(s, ed_worker->loop, &ed_worker->bufs, fd, ctx)
        != ED_OK)
    {
        close(fd);
        return ED_ERROR;
    }
    s->io = &ed_stream_pipe_io;
    return ED_OK;
}

static int ed_cgi_start(ed_cgi_ctx_t *ctx);

static int
ed_cgi_no_slot(ed_cgi_ctx_t *ctx)
{
    ed_stats_add(cgi_refused, 1);
    ed_http_log(ED_LOG_WARN, ctx->r, 0, "cgi max_processes (%d) reached",
                ctx->ccf->max_processes);
    return 503;
}

/* A process was reaped: the slot is tried again. */
static void
ed_cgi_on_slot(ed_defer_t *d)
{
    ed_cgi_ctx_t *ctx = ed_container_of(d, ed_cgi_ctx_t, slot.wake);
    int           rc;

    rc = ed_cgi_start(ctx);
    if (rc != ED_AGAIN) {
        ed_cgi_finish(ctx, rc, true);
    }
}

/* No process ended in time: 503. */
static void
ed_cgi_on_slot_timeout(ed_timer_t *t)
{
    ed_cgi_ctx_t *ctx = t->data;

    ed_http_cgi_slot_cancel(&ctx->slot);
    ed_cgi_finish(ctx, ed_cgi_no_slot(ctx), true);
}

/* Starts the script with the body known (in memory, or streamed).
 * Returns ED_AGAIN (it goes on, or waits for a slot), or a status. */
static int
ed_cgi_start(ed_cgi_ctx_t *ctx)
{
    ed_http_request_t    *r = ctx->r;
    ed_http_cgi_spawn_t   sp;
    ed_http_cgi_stderr_t *elog;
    char                 *prefix;
    int                   p[3][2], i, err, rc;
    bool                  exec_failed;

    if (!ed_http_cgi_proc_room(ctx->ccf->max_processes)) {
        if (!ed_http_cgi_proc_ending()) {
            ed_timer_del(ed_worker->loop, &ctx->slot_timer);
            return ed_cgi_no_slot(ctx);
        }
        /* A process without a request is about to exit: its reap wakes
         * this request (or another waiter took the slot: queued again,
         * the first deadline kept). */
        ctx->slot.wake.handler = ed_cgi_on_slot;
        if (!ed_timer_active(&ctx->slot_timer)) {
            ctx->slot_timer.handler = ed_cgi_on_slot_timeout;
            ctx->slot_timer.data = ctx;
            ed_timer_add(ed_worker->loop, &ctx->slot_timer,
                         ED_CGI_SLOT_WAIT);
        }
        ed_http_cgi_slot_wait(&ctx->slot, ctx->ccf->max_processes);
        return ED_AGAIN;
    }
    ed_timer_del(ed_worker->loop, &ctx->slot_timer);
    memset(&sp, 0, sizeof(sp));
    sp.dir = ctx->dir;
    sp.argv = ed_cgi_argv(ctx);
    sp.envp = ed_cgi_envp(ctx);
    sp.limits = ctx->ccf->limits;
    if (sp.argv == NULL || sp.envp == NULL) {
        return 500;
    }
    /* The interpreter when the extension names one, else the script. */
    sp.path = sp.argv[0];
    for (i = 0; i < 3; i++) {
        if (pipe2(p[i], O_CLOEXEC) != 0) {
            err = errno;
            while (i--) {
                close(p[i][0]);
                close(p[i][1]);
            }
            ed_http_log(ED_LOG_ERR, r, err, "cgi pipe() for \"%s\" failed",
                        ctx->name);
            return 503;
        }
    }
    /* The child's ends: stdin's read end, stdout's and stderr's write
     * ends. */
    sp.fds[0] = p[0][0];
    sp.fds[1] = p[1][1];
    sp.fds[2] = p[2][1];
    ctx->proc = ed_http_cgi_spawn(&sp, ctx->script, ctx->ccf->timeout,
                                  ctx->ccf->kill_after, &err, &exec_failed);
    close(p[0][0]);
    close(p[1][1]);
    close(p[2][1]);
    if (ctx->proc == NULL) {
        close(p[0][1]);
        close(p[1][0]);
        close(p[2][0]);
        if (exec_failed) {
            ed_http_log(ED_LOG_ERR, r, err, "cgi exec \"%s\" failed",
                        ctx->name);
            return 502;
        }
        ed_http_log(ED_LOG_ERR, r, err, "cgi spawning \"%s\" failed",
                    ctx->name);
        return 503;
    }
    ed_http_cgi_proc_attach(ctx->proc, ed_cgi_on_exit, ctx);
    for (i = 0; i < 3; i++) {
        (void)fcntl(p[i][i == 0 ? 1 : 0], F_SETFL, O_NONBLOCK);
    }
    rc = ed_cgi_stream(ctx, &ctx->in, p[0][1]);
    ctx->in_open = rc == ED_OK;
    if (ed_cgi_stream(ctx, &ctx->out, p[1][0]) != ED_OK) {
        close(p[2][0]);
        return 500;
    }
    ctx->out_open = 1;
    if (ed_cgi_stream(ctx, &ctx->err, p[2][0]) != ED_OK) {
        return 500;
    }
    ctx->err_open = 1;
    if (rc != ED_OK) {
        return 500;
    }
    ctx->in.on_close = ed_cgi_on_in_close;
    /* Set only now: teardown ends the log of a script that ran. */
    prefix = ed_pnalloc(r->pool, strlen(ctx->name) + 20);
    elog = ed_palloc(r->pool, sizeof(ed_http_cgi_stderr_t));
    if (prefix == NULL || elog == NULL) {
        return 500;
    }
    sprintf(prefix, "cgi stderr from \"%s\"", ctx->name);
    ed_http_cgi_stderr_init(elog, prefix, "");
    ctx->elog = elog;

    if (ctx->body) {
        if (ctx->body_len
            && ed_stream_write_ref(&ctx->in, ctx->body, ctx->body_len)
                   != ED_OK)
        {
            return 500;
        }
        ed_cgi_end_in(ctx);
    } else if (ed_http_cgi_has_body(r)) {
        rc = ed_http_read_body(r, ed_cgi_on_body, ctx);
        if (rc == ED_ERROR) {
            return 500;
        }
        if (rc == ED_DONE) {
            ed_cgi_end_in(ctx);
        }
    } else {
        ed_cgi_end_in(ctx);
    }
    ed_cgi_read_err(ctx);
    ed_cgi_read_out(ctx);
    if (r->v2 == NULL && r->parent == NULL) {
        ctx->watch.handler = ed_cgi_on_watch;
        ctx->watch.data = ctx;
        ed_timer_add(ed_worker->loop, &ctx->watch, ED_CGI_WATCH);
    }
    return ED_AGAIN;
}

/* A body of unknown length is read into memory to learn CONTENT_LENGTH
 * (RFC 3875 4.1.2); over buffer_size: 411. */
static void
ed_cgi_on_body_mem(ed_http_request_t *r, void *data, int rc, const char *p,
                   size_t len)
{
    ed_cgi_ctx_t      *ctx = data;
    ed_http_cgi_req_t *cr;

    if (rc != ED_OK && rc != ED_DONE) {
        ed_http_log(ED_LOG_INFO, r, 0, "reading the client request body "
                    "failed (%d)", rc);
        ed_cgi_finish(ctx, rc, true);
        return;
    }
    if (len > ctx->ccf->buffer_size - ctx->body_len) {
        ed_http_log(ED_LOG_INFO, r, 0, "cgi: a request body of unknown "
                    "length is over buffer_size (%zu bytes)",
                    ctx->ccf->buffer_size);
        ed_http_body_stop(r);
        ed_cgi_finish(ctx, 411, true);
        return;
    }
    if (len) {
        memcpy(ctx->body + ctx->body_len, p, len);
        ctx->body_len += len;
    }
    if (rc != ED_DONE) {
        return;
    }
    cr = ed_http_cgi_request(r);
    if (cr == NULL) {
        ed_cgi_finish(ctx, 500, true);
        return;
    }
    cr->content_length = (int64_t)ctx->body_len;
    rc = ed_cgi_start(ctx);
    if (rc != ED_AGAIN) {
        ed_cgi_finish(ctx, rc, true);
    }
}

/* Logs a walk's refusal and returns its status. */
static int
ed_cgi_refuse(ed_http_request_t *r, const ed_http_cgi_walk_t *w,
              const char *path)
{
    const char *name = ed_http_log_str(r, path, strlen(path), 1024);

    switch (w->verdict) {
    case ED_CGI_NOT_FOUND:
        ed_http_log(ED_LOG_INFO, r, 0, "cgi script \"%s\" not found", name);
        break;
    case ED_CGI_FAILED:
        ed_http_log(ED_LOG_ERR, r, w->err, "cgi script \"%s\" cannot be "
                    "opened", name);
        break;
    default:
        ed_http_log(ED_LOG_ERR, r, w->verdict == ED_CGI_DENIED ? w->err : 0,
                    "cgi script \"%s\" %s", name,
                    ed_http_cgi_walk_reason(w->verdict));
        break;
    }
    return ed_http_cgi_walk_status(w->verdict);
}

int
ed_http_cgi_find(ed_http_request_t *r, const ed_http_cgi_conf_t *ccf,
                 ed_http_cgi_script_t *f)
{
    static const ed_str_t none = ed_null_string;
    const ed_str_t       *prefix = &none;
    ed_str_t              path, *sn;
    size_t                root_len, rest_len, info_len, slen;
    char                 *s;
    int                   rc;

    memset(f, 0, sizeof(*f));
    if (ccf->alias.data && r->loc->kind != ED_HTTP_LOC_REGEX
        && r->loc->kind != ED_HTTP_LOC_REGEX_CASELESS)
    {
        prefix = &r->loc->match;
    }
    rc = ed_http_map_path(r->pool, ccf->root.data ? &ccf->root
                                                  : &r->clcf->root,
                          ccf->alias.data ? &ccf->alias : NULL, prefix,
                          &r->uri, 0, &path, &root_len);
    if (rc != ED_OK) {
        return rc;
    }
    /* The directory (root "/" keeps no byte of the path) and the rest
     * below it, which the walk goes through. */
    f->root = ed_pnalloc(r->pool, root_len + 2);
    if (f->root == NULL) {
        return 500;
    }
    memcpy(f->root, path.data, root_len);
    f->root[root_len] = '\0';
    f->root_len = root_len;
    if (root_len == 0) {
        f->root[0] = '/';
        f->root[1] = '\0';
    }
    rest_len = path.len - root_len;
    ed_http_cgi_walk(f->root, path.data + root_len, rest_len, ccf->symlinks,
                     ccf->index, &f->w);

    /* The script's file: root + the walked names (+ "/" + index). */
    slen = root_len + f->w.script_end;
    s = ed_pnalloc(r->pool, slen + f->w.index_len + 2);
    if (s == NULL) {
        return 500;
    }
    memcpy(s, path.data, slen);
    if (f->w.index) {
        if (slen == 0 || s[slen - 1] != '/') {
            s[slen++] = '/';
        }
        memcpy(s + slen, f->w.index, f->w.index_len);
        slen += f->w.index_len;
    }
    while (f->w.verdict == ED_CGI_NO_INDEX && slen > 1 && s[slen - 1] == '/')
    {
        slen--;  /* the directory, named without its slash */
    }
    s[slen] = '\0';
    f->script = s;
    f->script_len = slen;
    if (f->w.verdict != ED_CGI_OK) {
        return ED_OK;
    }

    /* SCRIPT_NAME is the URI up to the script; PATH_INFO the rest. */
    info_len = f->w.index ? 0 : rest_len - f->w.script_end;
    f->path_info.data = r->uri.data + r->uri.len - info_len;
    f->path_info.len = info_len;
    sn = &f->script_name;
    if (f->w.index) {
        sn->data = ed_pnalloc(r->pool, r->uri.len + 1 + f->w.index_len);
        if (sn->data == NULL) {
            return 500;
        }
        memcpy(sn->data, r->uri.data, r->uri.len);
        sn->len = r->uri.len;
        if (sn->len == 0 || sn->data[sn->len - 1] != '/') {
            sn->data[sn->len++] = '/';
        }
        memcpy(sn->data + sn->len, f->w.index, f->w.index_len);
        sn->len += f->w.index_len;
    } else {
        sn->data = r->uri.data;
        sn->len = r->uri.len - info_len;
    }
    return ED_OK;
}

int
ed_http_cgi_handler(ed_http_request_t *r)
{
    ed_http_cgi_loc_conf_t *lcf = ed_http_loc_conf(r, ed_http_cgi_module);
    ed_http_cgi_conf_t     *ccf = lcf->block;
    ed_http_cgi_script_t    f;
    ed_http_cgi_req_t      *cr;
    ed_cgi_ctx_t           *ctx;
    char                   *s;
    size_t                  slen, elen;
    int                     rc;

    rc = ed_http_cgi_find(r, ccf, &f);
    if (rc != ED_OK) {
        if (rc == 404) {
            ed_http_log(ED_LOG_INFO, r, 0, "cgi script \"%s\" not found",
                        ed_http_log_str(r, r->uri.data, r->uri.len, 1024));
        }
        return rc;
    }
    if (f.w.verdict != ED_CGI_OK) {
        return ed_cgi_refuse(r, &f.w, f.script);
    }
    s = f.script;
    slen = f.script_len;

    ctx = ed_pcalloc(r->pool, sizeof(*ctx));
    cr = ed_http_cgi_request(r);
    if (ctx == NULL || cr == NULL) {
        return 500;
    }
    ctx->r = r;
    ctx->ccf = ccf;
    ctx->script = s;
    ctx->left = -1;
    ctx->name = ed_http_log_str(r, s, slen, 1024);
    /* The file the walk judged, not the names again: a link put in
     * their way since is not followed (the interpreter opens it too). */
    elen = strlen(f.w.resolved);
    ctx->exec = ed_pnalloc(r->pool, elen + 1);
    ctx->dir = ed_pnalloc(r->pool, elen + 2);
    ctx->head = ed_pnalloc(r->pool, ccf->buffer_size);
    if (ctx->exec == NULL || ctx->dir == NULL || ctx->head == NULL) {
        return 500;
    }
    memcpy(ctx->exec, f.w.resolved, elen + 1);
    memcpy(ctx->dir, f.w.resolved, elen + 1);
    *strrchr(ctx->dir, '/') = '\0';
    if (ctx->dir[0] == '\0') {
        ctx->dir[0] = '/';
        ctx->dir[1] = '\0';
    }
    ed_http_cgi_head_init(&ctx->h, ctx->fields, ccf->buffer_size);

    cr->root.data = f.root;
    cr->root.len = f.root_len;
    cr->script_filename.data = s;
    cr->script_filename.len = slen;
    cr->script_name = f.script_name;
    cr->path_info = f.path_info;
    if (ed_pool_cleanup_add(r->pool, ed_cgi_cleanup, ctx) != ED_OK) {
        return 500;
    }

    if (ed_http_cgi_has_body(r)
        && r->body_dec.kind == ED_HTTP_BODY_CHUNKED)
    {
        ctx->body = ed_pnalloc(r->pool, ccf->buffer_size);
        if (ctx->body == NULL) {
            return 500;
        }
        rc = ed_http_read_body(r, ed_cgi_on_body_mem, ctx);
        if (rc == ED_ERROR) {
            return 500;
        }
        if (rc == ED_OK) {
            return ED_AGAIN;
        }
        cr->content_length = 0;
    }
    rc = ed_cgi_start(ctx);
    if (rc != ED_AGAIN) {
        ed_cgi_teardown(ctx, true);
    }
    return rc;
}
