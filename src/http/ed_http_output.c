/* The output path: every response body goes from its source (a content
 * handler) through the location's filters to the client here. Core owns
 * what sits between: flow control toward the client (sources pause while
 * the client's queue is above its high water mark, and go on from
 * ed_http_output_wait), send_timeout, the wait for file ranges to be
 * written, and reading file pieces into memory for filters that must see
 * the bytes.
 * The HTTP/1.1 framing of what reaches the end of the chain is in
 * ed_http_response.c. */
#include "ed_http.h"

/* Reading a file piece for a filter that needs memory: ED_OUT_PIECE
 * bytes per pread, ED_OUT_BUDGET per loop turn (other connections get
 * theirs), pausing while the client is busy. Memory stays one piece plus
 * the client's queue, whatever the file's size. */
#define ED_OUT_PIECE   (32 * 1024)
#define ED_OUT_BUDGET  (256 * 1024)

struct ed_http_out_s {
    ed_http_link_t  links[ED_HTTP_FILTERS_MAX];
    unsigned        nlinks;
    unsigned        memory:1;     /* a link needs bytes in memory */
    unsigned        reading:1;    /* the file reader has work */
    unsigned        finalize:1;   /* ed_http_finalize waits for it */
    /* The file reader. */
    int             fd;
    int64_t         off;
    int64_t         end;
    char           *buf;
    ed_timer_t      turn;         /* the next loop turn's share */
    ed_http_request_t *r;
};

static int ed_http_out_read(ed_http_request_t *r);

int
ed_http_filter_add(ed_conf_t *cf, ed_http_location_t *loc,
                   const ed_http_filter_t *f)
{
    if (loc->nfilters == ED_HTTP_FILTERS_MAX) {
        return ed_conf_error(cf, loc->node, "too many output filters in "
                             "location \"%s\"", loc->name.data);
    }
    loc->filters[loc->nfilters++] = f;
    return ED_OK;
}

ed_http_out_header_t *
ed_http_out_header(ed_http_request_t *r, const char *name, size_t nlen)
{
    ed_http_out_header_t *h = r->headers_out.elts;
    size_t                i;

    for (i = 0; i < r->headers_out.nelts; i++) {
        if (h[i].name.len == nlen
            && ed_strncasecmp(h[i].name.data, name, nlen) == 0)
        {
            return &h[i];
        }
    }
    return NULL;
}

void
ed_http_out_header_del(ed_http_request_t *r, const char *name, size_t nlen)
{
    ed_http_out_header_t *h = r->headers_out.elts;
    size_t                i, j = 0;

    for (i = 0; i < r->headers_out.nelts; i++) {
        if (h[i].name.len == nlen
            && ed_strncasecmp(h[i].name.data, name, nlen) == 0)
        {
            continue;
        }
        h[j++] = h[i];
    }
    r->headers_out.nelts = j;
}

void
ed_http_out_headers_error(ed_http_request_t *r, int status)
{
    ed_http_out_header_t *h = r->headers_out.elts;
    size_t                i, j = 0;

    for (i = 0; i < r->headers_out.nelts; i++) {
        if ((status == 401 && h[i].name.len == 16
             && ed_strncasecmp(h[i].name.data, "WWW-Authenticate", 16) == 0)
            || (h[i].name.len == 12
                && ed_strncasecmp(h[i].name.data, "Cache-Status", 12) == 0))
        {
            h[j++] = h[i];
        }
    }
    r->headers_out.nelts = j;
}

/* Request pool cleanup: nothing of the output state outlives the
 * request. */
static void
ed_http_out_cleanup(void *data)
{
    ed_http_out_t *out = data;

    ed_timer_del(ed_worker->loop, &out->turn);
}

static void
ed_http_out_on_turn(ed_timer_t *t)
{
    ed_http_out_t     *out = t->data;
    ed_http_request_t *r = out->r;

    if (ed_http_out_read(r) == ED_ERROR) {
        ed_http_finalize(r, ED_ERROR);
    }
}

static ed_http_out_t *
ed_http_out_get(ed_http_request_t *r)
{
    ed_http_out_t *out = r->out;

    if (out == NULL) {
        out = ed_pcalloc(r->pool, sizeof(ed_http_out_t));
        if (out == NULL
            || ed_pool_cleanup_add(r->pool, ed_http_out_cleanup, out)
                   != ED_OK)
        {
            return NULL;
        }
        out->r = r;
        out->fd = -1;
        out->turn.handler = ed_http_out_on_turn;
        out->turn.data = out;
        r->out = out;
    }
    return out;
}

int
ed_http_filter_start(ed_http_request_t *r, const ed_http_filter_t *f,
                     void *ctx)
{
    ed_http_out_t  *out = ed_http_out_get(r);
    ed_http_link_t *l;

    if (out == NULL) {
        return ED_ERROR;
    }
    l = &out->links[out->nlinks];
    l->filter = f;
    l->ctx = ctx;
    l->index = out->nlinks++;
    r->out_filtered = 1;
    if (f->memory) {
        out->memory = 1;
    }
    return ED_OK;
}

int
ed_http_header_filters(ed_http_request_t *r)
{
    ed_http_location_t *loc;
    unsigned            i;

    if (r->error_status && r->status == 200) {
        /* An error page keeps the status of the error it stands for. */
        r->status = r->error_status;
    }
    /* Every response of a location passes its filters: error pages, and
     * responses to requests that never reached a location (those use
     * the server's own settings). */
    loc = r->loc ? r->loc : r->server->fallback;
    if (r->parent) {
        /* A subrequest's answer is captured as its handler made it:
         * filters shape what a client gets. */
        return ED_OK;
    }
    for (i = 0; i < loc->nfilters; i++) {
        if (loc->filters[i]->header
            && loc->filters[i]->header(r, loc->filters[i]) != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

/* The end of the chain: the bytes go to the client with the response's
 * framing. */
static int
ed_http_out_wire(ed_http_request_t *r, const ed_http_piece_t *p, bool last)
{
    if (last) {
        r->out_ended = 1;
        return r->proto->end(r);
    }
    if (p->len == 0) {
        return ED_OK;
    }
    return r->proto->piece(r, p);
}

int
ed_http_filter_next(ed_http_request_t *r, ed_http_link_t *link,
                    const ed_http_piece_t *p, bool last)
{
    unsigned        i = link ? link->index + 1 : 0;
    ed_http_link_t *next;

    if (r->out == NULL || i >= r->out->nlinks) {
        return ed_http_out_wire(r, p, last);
    }
    next = &r->out->links[i];
    return next->filter->body(r, next, p, last);
}

/* Feeds the file piece to the chain until its end, a pause or the
 * turn's budget. ED_OK (all read, or paused: out->reading says),
 * ED_ERROR. */
static int
ed_http_out_read(ed_http_request_t *r)
{
    ed_http_out_t  *out = r->out;
    ed_http_piece_t p;
    size_t          budget = ED_OUT_BUDGET;
    ssize_t         n;
    int             err;

    while (out->off < out->end) {
        if (r->proto->blocked(r)) {
            ed_http_output_wait(r, NULL, NULL);
            return ED_OK;
        }
        if (budget == 0) {
            ed_timer_add(ed_worker->loop, &out->turn, 0);
            return ED_OK;
        }
        n = pread(out->fd, out->buf,
                  (size_t)ed_min(out->end - out->off, ED_OUT_PIECE),
                  (off_t)out->off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            /* Shortened meanwhile: the body cannot be completed. */
            err = n < 0 ? errno : 0;
            ed_http_log(ED_LOG_ERR, r, err, "reading \"%s\" failed",
                        ed_http_log_str(r, r->uri.data, r->uri.len, 200));
            return ED_ERROR;
        }
        p.data = out->buf;
        p.len = (size_t)n;
        p.fd = -1;
        p.off = 0;
        out->off += n;
        if (ed_http_filter_next(r, NULL, &p, false) != ED_OK) {
            return ED_ERROR;
        }
        budget -= ed_min(budget, (size_t)n);
    }
    out->reading = 0;
    out->fd = -1;
    if (out->finalize) {
        out->finalize = 0;
        ed_http_finalize(r, ED_OK);
    } else if (r->out_ready && r->proto->blocked(r)) {
        ed_http_output_wait(r, NULL, NULL);
    } else if (r->out_ready) {
        ed_http_ready_pt cb = r->out_ready;

        r->out_ready = NULL;
        cb(r, r->out_ready_data);
    }
    return ED_OK;
}

int
ed_http_send_piece(ed_http_request_t *r, const ed_http_piece_t *p)
{
    ed_http_out_t *out = r->out;

    if (r->head_only || p->len == 0 || r->status < 200 || r->status == 204
        || r->status == 304)
    {
        return ED_OK;
    }
    if (out && out->reading) {
        ed_http_log(ED_LOG_ALERT, r, 0, "a body piece given while a file "
                    "piece is being read");
        return ED_ERROR;
    }
    if (p->fd >= 0 && out && out->memory) {
        /* A filter must see these bytes: core reads them for it. */
        if (out->buf == NULL) {
            out->buf = ed_pnalloc(r->pool, ED_OUT_PIECE);
            if (out->buf == NULL) {
                return ED_ERROR;
            }
        }
        out->fd = p->fd;
        out->off = p->off;
        out->end = p->off + (int64_t)p->len;
        out->reading = 1;
        return ed_http_out_read(r);
    }
    return ed_http_filter_next(r, NULL, p, false);
}

int
ed_http_send_body(ed_http_request_t *r, const void *data, size_t len)
{
    ed_http_piece_t p;

    p.data = data;
    p.len = len;
    p.fd = -1;
    p.off = 0;
    return ed_http_send_piece(r, &p);
}

int
ed_http_send_file(ed_http_request_t *r, int fd, int64_t off, size_t len)
{
    ed_http_piece_t p;

    p.data = NULL;
    p.len = len;
    p.fd = fd;
    p.off = off;
    return ed_http_send_piece(r, &p);
}

bool
ed_http_output_busy(ed_http_request_t *r)
{
    return (r->out && r->out->reading) || r->proto->blocked(r);
}

/* Arms send_timeout on the protocol's timer: it fires only when the
 * client took nothing meanwhile. */
static void
ed_http_out_arm(ed_http_request_t *r)
{
    r->out_queued = r->proto->queued(r);
    r->out_waiting = 1;
    if (r->clcf->send_timeout > 0) {
        ed_timer_add(ed_worker->loop, r->proto->timer(r),
                     r->clcf->send_timeout);
    }
}

static void
ed_http_out_disarm(ed_http_request_t *r)
{
    if (r->out_waiting) {
        r->out_waiting = 0;
        ed_timer_del(ed_worker->loop, r->proto->timer(r));
    }
}

void
ed_http_output_wait(ed_http_request_t *r, ed_http_ready_pt cb, void *data)
{
    if (cb) {
        r->out_ready = cb;
        r->out_ready_data = data;
    }
    if (r->proto->blocked(r)) {
        r->proto->notify_drain(r, true);
        if (!r->out_waiting) {
            ed_http_out_arm(r);
        }
    }
    /* Else the file reader runs and calls back when done. */
}

void
ed_http_output_drained(ed_http_request_t *r)
{
    ed_http_ready_pt cb;

    ed_http_out_disarm(r);
    if (r->out && r->out->reading) {
        if (ed_http_out_read(r) == ED_ERROR) {
            ed_http_finalize(r, ED_ERROR);
        }
        return;
    }
    cb = r->out_ready;
    if (cb) {
        r->out_ready = NULL;
        cb(r, r->out_ready_data);
    }
}

void
ed_http_output_buffer(ed_http_request_t *r, size_t size)
{
    r->proto->buffer(r, size);
}

bool
ed_http_output_timeout(ed_http_request_t *r)
{
    if (!r->out_waiting) {
        return false;
    }
    if (r->proto->queued(r) < r->out_queued) {
        /* The client took some: send_timeout runs again from here. */
        ed_http_out_arm(r);
        return true;
    }
    r->out_waiting = 0;
    ed_http_log(ED_LOG_INFO, r, 0, "client timed out sending \"%s\"",
                ed_http_log_str(r, r->uri.data, r->uri.len, 200));
    return false;
}

/* The response's bytes are all written (file ranges included): the
 * request goes on to its end. */
void
ed_http_output_flushed(ed_http_request_t *r)
{
    ed_http_out_disarm(r);
    ed_http_finalize_done(r);
}

bool
ed_http_trailers_wanted(ed_http_request_t *r)
{
    bool found;

    if (r->v2 != NULL) {
        return true;
    }
    if (r->head.version < 11) {
        return false;
    }
    ed_http_fields_list(r->head.headers, r->head.nheaders, "te", 2,
                        "trailers", 8, &found);
    return found;
}

int
ed_http_output_end(ed_http_request_t *r, int rc)
{
    if (rc == ED_OK && r->out && r->out->reading) {
        /* The file reader finishes first; it finalizes again. */
        r->out->finalize = 1;
        return ED_AGAIN;
    }
    if (r->out) {
        r->out->reading = 0;
        ed_timer_del(ed_worker->loop, &r->out->turn);
    }
    if (r->out_ready) {
        r->out_ready = NULL;
        r->proto->notify_drain(r, false);
    }
    ed_http_out_disarm(r);
    if (rc == ED_OK && r->header_sent && !r->out_ended
        && (r->out_filtered || r->chunked_out))
    {
        /* The filters' last bytes (the gzip trailer), then the chunked
         * terminator; a body a filter cannot end is an error. */
        if (ed_http_filter_next(r, NULL, NULL, true) != ED_OK) {
            return ED_ERROR;
        }
    }
    if (!r->out_file) {
        return ED_OK;
    }
    /* File ranges are queued: their descriptors stay open (with the
     * request) until written, bounded by send_timeout. */
    if (rc != ED_ERROR && !r->proto->written(r)) {
        r->proto->notify_flushed(r);
        ed_http_out_arm(r);
        r->finalized = 1;
        return ED_AGAIN;
    }
    return ED_OK;
}
