/* Request bodies for handlers: streamed piece by piece with bounded
 * memory, dechunked, 100-continue, client_body_timeout and back-pressure. */
#include "ed_http.h"

/* Pieces stay this much under the worker's buffer size so that a copy
 * into another stream's write queue fits one pooled buffer. */
#define ED_HTTP_BODY_SLACK 128

struct ed_http_body_s {
    ed_http_request_t *r;
    ed_http_body_pt    cb;
    void              *data;
    ed_timer_t         timer;     /* client_body_timeout */
    bool              *alive;     /* a delivering loop's flag, on its stack */
    unsigned           reading:1; /* our read is pending on the stream */
    unsigned           paused:1;
    unsigned           stopped:1; /* done, failed or stopped: no more calls */
};

static void ed_http_body_on_read(ed_stream_t *s, int status, char *data,
                                 size_t len);

/* Returns the client stream the body arrives on. */
static ed_stream_t *
ed_http_body_stream(ed_http_body_t *b)
{
    return &b->r->hc->c.stream;
}

/* Cancels our pending read, and only ours: the discard of the core may
 * have replaced it. */
static void
ed_http_body_unread(ed_http_body_t *b)
{
    ed_stream_t *s = ed_http_body_stream(b);

    if (b->reading && s->read_cb == ed_http_body_on_read) {
        ed_stream_read_stop(s);
    }
    b->reading = 0;
    ed_timer_del(ed_worker->loop, &b->timer);
}

/* The request's pool is reset: nothing may run for it any more. */
static void
ed_http_body_cleanup(void *data)
{
    ed_http_body_t *b = data;

    if (b->alive) {
        *b->alive = false;
        b->alive = NULL;
    }
    ed_http_body_unread(b);
    b->stopped = 1;
}

/* Asks the stream for the next piece and arms the timeout. ED_OK or
 * ED_ERROR (the stream is closed: its owner hears of it). */
static int
ed_http_body_arm(ed_http_body_t *b)
{
    ed_http_request_t *r = b->r;
    size_t             max;

    max = ed_worker->bufs.size > 2 * ED_HTTP_BODY_SLACK
              ? ed_worker->bufs.size - ED_HTTP_BODY_SLACK
              : ed_worker->bufs.size;
    max = ed_http_decoder_want(&r->body_dec, max);
    if (ed_stream_read_some(ed_http_body_stream(b), max,
                            ed_http_body_on_read) != ED_OK)
    {
        return ED_ERROR;
    }
    b->reading = 1;
    if (r->clcf->client_body_timeout > 0) {
        ed_timer_add(ed_worker->loop, &b->timer,
                     r->clcf->client_body_timeout);
    }
    return ED_OK;
}

/* Ends the body with an error status for the handler. */
static void
ed_http_body_fail(ed_http_body_t *b, int rc)
{
    ed_http_body_unread(b);
    b->stopped = 1;
    b->r->keepalive = 0;
    b->cb(b->r, b->data, rc, NULL, 0);
}

static void
ed_http_body_on_timeout(ed_timer_t *t)
{
    ed_http_body_t *b = t->data;

    ed_http_body_fail(b, 408);
}

/* A run of the decoder over one piece: the body, and whether the pool
 * is still there (the handler may end the request from its callback). */
typedef struct {
    ed_http_body_t *b;
    bool            alive;
} ed_http_body_run_t;

/* Gives one decoded slice to the handler: ED_OK to go on, 413 over
 * client_max_body_size, ED_AGAIN once the handler paused, stopped or
 * ended the request (ED_DECLINED if it freed it). */
static int
ed_http_body_slice(void *data, const char *p, size_t n)
{
    ed_http_body_run_t *run = data;
    ed_http_body_t     *b = run->b;
    ed_http_request_t  *r = b->r;
    size_t              max = r->clcf->client_max_body_size;

    if (max && r->body_dec.total > (int64_t)max) {
        return 413;
    }
    b->cb(r, b->data, ED_OK, (char *)p, n);
    if (!run->alive) {
        return ED_DECLINED;
    }
    return b->stopped || b->paused || r->finalized ? ED_AGAIN : ED_OK;
}

/* A chunked piece: delivers each decoded slice; bytes after the body's
 * end, or after the handler paused or stopped, go back to the stream. */
static void
ed_http_body_chunked(ed_http_body_t *b, ed_stream_t *s, char *data,
                     size_t len)
{
    ed_http_request_t  *r = b->r;
    ed_http_body_run_t  run = { b, true };
    size_t              pos = 0;
    int                 rc;

    b->alive = &run.alive;
    rc = ed_http_decode_run(&r->body_dec, data, len, &pos,
                            ed_http_body_slice, &run);
    if (!run.alive) {
        return;
    }
    b->alive = NULL;
    if (rc == ED_ERROR || rc == 413) {
        if (rc == ED_ERROR) {
            r->error = 1;
        }
        ed_http_body_fail(b, rc == ED_ERROR ? 400 : 413);
        return;
    }
    /* Not decoded yet, or after the body: left for the next read (ours,
     * the discard's or the next request's). */
    s->rpos -= len - pos;
    if (rc == ED_DONE) {
        b->stopped = 1;
        b->cb(r, b->data, ED_DONE, NULL, 0);
        return;
    }
    if (!b->stopped && !b->paused && !r->finalized) {
        ed_http_body_arm(b);
    }
}

static void
ed_http_body_on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t    *hc = s->data;
    ed_http_request_t *r = hc->r;
    ed_http_body_t    *b = r->body;
    size_t             pos = 0;
    bool               last;

    b->reading = 0;
    ed_timer_del(ed_worker->loop, &b->timer);
    if (status != ED_OK) {
        /* The client closed or failed before the end of its body. */
        ed_http_body_fail(b, ED_ERROR);
        return;
    }
    if (r->body_dec.kind == ED_HTTP_BODY_CHUNKED) {
        ed_http_body_chunked(b, s, data, len);
        return;
    }
    /* A length: the read asked no more than the rest of the body, so
     * the whole piece is one slice of it, handed as it is (with the end,
     * when it is the last one). */
    last = ed_http_decode_run(&r->body_dec, data, len, &pos, NULL, NULL)
           == ED_DONE;
    if (last) {
        b->stopped = 1;
    } else if (!b->paused) {
        /* Asked before the call: a pause inside it cancels the read. */
        ed_http_body_arm(b);
    }
    b->cb(r, b->data, last ? ED_DONE : ED_OK, data, len);
}

/* ED_OK, ED_DONE (no body to read), or ED_ERROR (ENOMEM, or a reader
 * still running). */
int
ed_http_h1_read_body(ed_http_request_t *r, ed_http_body_pt cb, void *data)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ed_http_body_t   *b = r->body;

    if (!ed_http_has_body(r)) {
        return ED_DONE;
    }
    if (b == NULL) {
        b = ed_pcalloc(r->pool, sizeof(ed_http_body_t));
        if (b == NULL
            || ed_pool_cleanup_add(r->pool, ed_http_body_cleanup, b)
                   != ED_OK)
        {
            return ED_ERROR;
        }
        b->r = r;
        b->timer.handler = ed_http_body_on_timeout;
        b->timer.data = b;
        r->body = b;
    } else if (!b->stopped) {
        return ED_ERROR;
    }
    b->cb = cb;
    b->data = data;
    b->stopped = 0;
    b->paused = 0;
    if (r->head.expect_continue && !r->header_sent) {
        /* The client waits for this before sending its body; once sent,
         * the connection may be kept alive again. */
        if (ed_stream_write(&r->hc->c.stream, cont, sizeof(cont) - 1)
            != ED_OK)
        {
            return ED_ERROR;
        }
        r->head.expect_continue = 0;
    }
    return ed_http_body_arm(b) == ED_OK ? ED_OK : ED_ERROR;
}

void
ed_http_h1_body_pause(ed_http_request_t *r)
{
    ed_http_body_t *b = r->body;

    if (b == NULL || b->stopped || b->paused) {
        return;
    }
    b->paused = 1;
    ed_http_body_unread(b);
}

void
ed_http_h1_body_resume(ed_http_request_t *r)
{
    ed_http_body_t *b = r->body;

    if (b == NULL || b->stopped || !b->paused) {
        return;
    }
    b->paused = 0;
    /* A closed stream tells its owner through on_close. */
    ed_http_body_arm(b);
}

void
ed_http_h1_body_stop(ed_http_request_t *r)
{
    ed_http_body_t *b = r->body;

    if (b == NULL) {
        return;
    }
    ed_http_body_unread(b);
    b->stopped = 1;
    b->paused = 0;
}
