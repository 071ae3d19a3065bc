/* HTTP/2 connections: an nghttp2 server session driven from the event
 * loop. eddy owns the socket and its buffers: bytes read go to
 * nghttp2_session_mem_recv, frames nghttp2 makes go to the stream's
 * write queue (coalesced, written before the loop sleeps), DATA of file
 * ranges as a frame header and a file range (sendfile on cleartext).
 * nghttp2's callbacks only record what happened; handlers run from the
 * connection's dispatch (ed_v2_run), never inside the library. Limits
 * and floods (spec/http2.md, Protections) are counted here. */
#include "ed_http_v2.h"
#include "ed_stats.h"
#include "ed_tls.h"

#include <sys/mman.h>
#include <unistd.h>

#if ED_HAVE_HTTP2

/* Flood budgets (spec/http2.md). */
#define ED_V2_CONTROL_MAX     1000
#define ED_V2_CONTROL_RATE    100
#define ED_V2_CONTROL_STREAM  4
#define ED_V2_CONTINUATIONS   4
#define ED_V2_WINDOW_UPDATES  100
/* A flood's GOAWAY gets this long to be written. */
#define ED_V2_FLOOD_MSEC      1000
/* Dispatch rounds per run: handlers that keep posting work yield. */
#define ED_V2_ROUNDS          16
/* Idle this long, a connection gives its output frame buffer's pages
 * back and its session sleeps (ed_v2_compact): once per idle period, not
 * per request. The libFuzzer build sleeps at every idle moment (0). */
#ifndef ED_V2_COMPACT_MSEC
#define ED_V2_COMPACT_MSEC    1000
#endif
/* nghttp2's frame buffer: a frame header, a pad length byte and the
 * largest payload it makes (NGHTTP2_FRAMEBUF_CHUNKLEN). */
#define ED_V2_FRAMEBUF        (9 + 1 + 16384)
/* The HPACK encoder's dynamic table (see ed_v2_init). */
#define ED_V2_ENC_TABLE       512

static nghttp2_session_callbacks *ed_v2_callbacks;
static nghttp2_option            *ed_v2_option;

static void ed_v2_on_read(ed_stream_t *s, int status, char *data,
                          size_t len);
static int ed_v2_run(ed_v2_conn_t *c);
static void ed_v2_close(ed_v2_conn_t *c);
static void ed_v2_end(ed_v2_conn_t *c, bool linger);
static void ed_v2_close_after_flush(ed_v2_conn_t *c, ed_msec_t wait);
static void ed_v2_arm(ed_v2_conn_t *c);
static ed_msec_t ed_v2_idle_timeout(ed_v2_conn_t *c);
static void ed_v2_shutdown(ed_conn_t *conn);
static void ed_v2_on_block_timer(ed_timer_t *t);

static ed_v2_conn_t *
ed_v2_conn(ed_http_conn_t *hc)
{
    return hc->v2;
}

/* Token buckets. */

static bool
ed_v2_take(ed_v2_bucket_t *b, double max, double rate)
{
    ed_msec_t now = ed_current_msec;

    b->tokens += (double)(now - b->last) * rate / 1000.0;
    b->last = now;
    if (b->tokens > max) {
        b->tokens = max;
    }
    if (b->tokens < 1.0) {
        return false;
    }
    b->tokens -= 1.0;
    return true;
}

bool
ed_http_v2_reset_token(ed_v2_conn_t *c)
{
    double mcs = c->conf->max_concurrent_streams;

    if (c->flood) {
        return false;
    }
    if (!ed_v2_take(&c->resets, 2 * mcs, mcs / 4)) {
        ed_http_v2_flood(c, "resets");
        return false;
    }
    return true;
}

static bool
ed_v2_control_token(ed_v2_conn_t *c)
{
    if (c->flood) {
        return false;
    }
    if (!ed_v2_take(&c->control, ED_V2_CONTROL_MAX, ED_V2_CONTROL_RATE)) {
        ed_http_v2_flood(c, "control");
        return false;
    }
    return true;
}

/* The connection's client and server for log lines. */
static void
ed_v2_log_flood(ed_v2_conn_t *c, const char *limit)
{
    char client[64];

    ed_peer_text(&c->hc->c.peer, client, sizeof(client));
    ed_log(ED_LOG_WARN, ed_log_cur, 0, "http2 flood \"%s\" detected, "
           "closing connection, client: %s, server: %s", limit, client,
           c->server->server_name.len ? c->server->server_name.data : "");
}

/* The flood reaction: GOAWAY(ENHANCE_YOUR_CALM, the last stream eddy
 * began), every stream cancelled, the connection closed once that is
 * written (ED_V2_FLOOD_MSEC at most). */
void
ed_http_v2_flood(ed_v2_conn_t *c, const char *limit)
{
    ed_v2_stream_t *st;
    static const char *limits[ED_STATS_FLOODS] = {
        "resets", "refused", "continuations", "control", "window_updates"
    };
    unsigned i;

    if (c->flood) {
        return;
    }
    c->flood = 1;
    for (i = 0; i < ED_STATS_FLOODS; i++) {
        if (strcmp(limits[i], limit) == 0) {
            ed_stats_v2(floods[i], 1);
        }
    }
    ed_v2_log_flood(c, limit);
    nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE, c->last_id,
                          NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0);
    for (st = c->streams; st; st = st->next) {
        if (st->r != NULL) {
            st->abort_due = 1;
            ed_http_v2_pending(st);
        }
    }
    c->closing = 1;
    ed_http_v2_post(c);
}

/* Streams and the dispatch. */

void
ed_http_v2_pending(ed_v2_stream_t *st)
{
    ed_v2_conn_t *c = st->c;

    if (st->pending) {
        return;
    }
    st->pending = 1;
    st->pnext = NULL;
    if (c->pending_last) {
        c->pending_last->pnext = st;
    } else {
        c->pending = st;
    }
    c->pending_last = st;
    ed_http_v2_post(c);
}

void
ed_http_v2_wait(ed_v2_stream_t *st)
{
    ed_v2_conn_t   *c = st->c;
    ed_v2_stream_t *p;

    if (st->waiting) {
        return;
    }
    /* Marks grow in queue order: the place is nearly always the end. */
    for (p = c->waiters_last; p != NULL && p->file_mark > st->file_mark;
         p = p->wprev)
    {
        /* void */
    }
    st->wprev = p;
    st->wnext = p ? p->wnext : c->waiters;
    if (st->wnext) {
        st->wnext->wprev = st;
    } else {
        c->waiters_last = st;
    }
    if (p) {
        p->wnext = st;
    } else {
        c->waiters = st;
    }
    st->waiting = 1;
}

void
ed_http_v2_unwait(ed_v2_stream_t *st)
{
    ed_v2_conn_t *c = st->c;

    if (!st->waiting) {
        return;
    }
    if (st->wprev) {
        st->wprev->wnext = st->wnext;
    } else {
        c->waiters = st->wnext;
    }
    if (st->wnext) {
        st->wnext->wprev = st->wprev;
    } else {
        c->waiters_last = st->wprev;
    }
    st->wnext = st->wprev = NULL;
    st->waiting = 0;
}

static void
ed_v2_on_post(ed_defer_t *d)
{
    ed_v2_conn_t *c = ed_container_of(d, ed_v2_conn_t, post);

    ed_v2_run(c);
}

void
ed_http_v2_post(ed_v2_conn_t *c)
{
    if (c->running) {
        c->again = 1;
        return;
    }
    ed_loop_post(ed_worker->loop, &c->post);
}

void
ed_http_v2_stream_unlink(ed_v2_stream_t *st)
{
    ed_v2_conn_t   *c = st->c;
    ed_v2_stream_t *p, **pp;

    if (st->pending) {
        for (pp = &c->pending, p = NULL; *pp; p = *pp, pp = &(*pp)->pnext) {
            if (*pp == st) {
                *pp = st->pnext;
                if (c->pending_last == st) {
                    c->pending_last = p;
                }
                break;
            }
        }
        st->pending = 0;
    }
    if (st->prev) {
        st->prev->next = st->next;
    } else if (c->streams == st) {
        c->streams = st->next;
    }
    if (st->next) {
        st->next->prev = st->prev;
    }
    st->next = st->prev = NULL;
}

/* Frees what ended, once the queue holds none of its file bytes. */
static void
ed_v2_free_zombies(ed_v2_conn_t *c, bool all)
{
    ed_v2_stream_t *st, **pp;

    for (pp = &c->zombies; (st = *pp) != NULL;) {
        if (all || ed_http_v2_files_out(st)) {
            *pp = st->pnext;
            st->pnext = NULL;
            ed_http_v2_stream_free(st);
        } else {
            pp = &st->pnext;
        }
    }
}

/* nghttp2's callbacks. */

static ssize_t
ed_v2_send(nghttp2_session *sess, const uint8_t *data, size_t len,
           int flags, void *user)
{
    ed_v2_conn_t *c = user;
    ed_stream_t  *s = &c->hc->c.stream;

    ed_unused(sess);
    ed_unused(flags);
    if (ed_stream_write_blocked(s)) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (ed_stream_write(s, data, len) != ED_OK) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    c->queued_total += len;
    return (ssize_t)len;
}

static int
ed_v2_on_begin_frame(nghttp2_session *sess, const nghttp2_frame_hd *hd,
                     void *user)
{
    ed_v2_conn_t *c = user;

    ed_unused(sess);
    if (c->flood) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    switch (hd->type) {
    case NGHTTP2_DATA:
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM)
            && !ed_v2_control_token(c))
        {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
    case NGHTTP2_HEADERS:
        c->continuations = 0;
        c->block_start = ed_current_msec;
        if (hd->length == 0 && !ed_v2_control_token(c)) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        if (!(hd->flags & NGHTTP2_FLAG_END_HEADERS)) {
            /* A header block open past client_header_timeout is a
             * CONTINUATION flood too. */
            ed_timer_add(ed_worker->loop, &c->block_timer,
                         c->clcf->client_header_timeout);
        }
        break;
    case NGHTTP2_CONTINUATION:
        if ((hd->length == 0 && !ed_v2_control_token(c))
            || c->flood)
        {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        if (hd->flags & NGHTTP2_FLAG_END_HEADERS) {
            ed_timer_del(ed_worker->loop, &c->block_timer);
        }
        if (++c->continuations > ED_V2_CONTINUATIONS
            || ed_current_msec - c->block_start
                   > c->clcf->client_header_timeout)
        {
            ed_http_v2_flood(c, "continuations");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
    case NGHTTP2_RST_STREAM:
        ed_stats_v2(resets_received, 1);
        if (!ed_http_v2_reset_token(c)) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (++c->window_updates > ED_V2_WINDOW_UPDATES + 2 * c->opened
                                      + 4 * c->data_sent)
        {
            ed_http_v2_flood(c, "window_updates");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_GOAWAY:
    case NGHTTP2_PUSH_PROMISE:
        break;
    default:
        /* PING, PRIORITY, PRIORITY_UPDATE, unknown types. */
        if (!ed_v2_control_token(c)) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
    }
    return 0;
}

static int
ed_v2_on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame,
                    void *user)
{
    ed_v2_conn_t   *c = user;
    ed_v2_stream_t *st;
    bool            end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        st = c->hd_id == frame->hd.stream_id
             ? c->hd_st
             : nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
        if (st != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
            ed_http_v2_headers_end(st, end);
        }
        break;
    case NGHTTP2_DATA:
        st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
        if (st != NULL && end) {
            ed_http_v2_data_end(st);
        }
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !c->preface) {
            /* The preface is complete: client_header_timeout ends. */
            c->preface = 1;
            c->hc->state = ed_stats_state(c->hc->state, ED_STATS_IDLE);
            ed_v2_arm(c);
        }
        break;
    case NGHTTP2_WINDOW_UPDATE:
        ed_http_v2_window(c, frame->hd.stream_id);
        break;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && c->ping_out) {
            c->ping_out = 0;
            if (c->shutdown && !c->goaway_final) {
                /* The client saw the first GOAWAY: the streams it began
                 * before are known, the rest it retries elsewhere. */
                c->goaway_final = 1;
                nghttp2_submit_goaway(sess, NGHTTP2_FLAG_NONE, c->last_id,
                                      NGHTTP2_NO_ERROR, NULL, 0);
            }
            ed_v2_arm(c);
        }
        break;
    }
    return 0;
}

static int
ed_v2_on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame,
                    void *user)
{
    ed_v2_conn_t   *c = user;
    ed_v2_stream_t *st;

    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)
        && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    {
        st = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
        if (st != NULL) {
            ed_http_v2_sent_end(st);
        }
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        ed_stats_v2(goaway[ed_min(frame->goaway.error_code,
                                  ED_STATS_GOAWAY_CODES - 1)], 1);
    } else if (frame->hd.type == NGHTTP2_DATA) {
        c->data_sent++;
    }
    return 0;
}

static int
ed_v2_on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code,
                      void *user)
{
    ed_v2_stream_t *st;

    ed_unused(code);
    ed_unused(user);
    st = nghttp2_session_get_stream_user_data(sess, id);
    if (st == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    if (st->c->hd_st == st) {
        st->c->hd_st = NULL;
        st->c->hd_id = 0;
    }
    st->closed = 1;
    if (st->r != NULL && !st->started) {
        /* Reset before its handler ran: let go at once, so that a
         * client resetting streams in a burst is not refused for them
         * (no handler code runs here). */
        ed_http_v2_stream_abort(st);
    }
    /* A request still running ends from the dispatch. */
    ed_http_v2_pending(st);
    return 0;
}

static int
ed_v2_on_invalid_frame(nghttp2_session *sess, const nghttp2_frame *frame,
                       int err, void *user)
{
    ed_v2_conn_t *c = user;
    char          client[64];

    ed_unused(sess);
    ed_peer_text(&c->hc->c.peer, client, sizeof(client));
    ed_log(ED_LOG_INFO, ed_log_cur, 0, "client sent invalid HTTP/2 frame "
           "(type %u, stream %d): %s, client: %s", frame->hd.type,
           frame->hd.stream_id, nghttp2_strerror(err), client);
    return 0;
}

static int
ed_v2_on_error(nghttp2_session *sess, int code, const char *msg, size_t len,
               void *user)
{
    ed_v2_conn_t *c = user;
    char          client[64];

    ed_unused(sess);
    ed_unused(code);
    ed_peer_text(&c->hc->c.peer, client, sizeof(client));
    ed_log(ED_LOG_INFO, ed_log_cur, 0, "http2 error: %.*s, client: %s",
           (int)ed_min(len, 200), msg, client);
    return 0;
}

/* Small blocks (a stream, its small output chunks, nghttp2's blocks
 * that its connection's arena does not take) come from free lists per
 * size class, kept per worker:
 * with many streams in flight the C library's per-size caches (7
 * blocks) overflow and every block took its slow path. A block starts
 * with its header; the lists keep at most ED_V2_KEEP blocks a class and
 * ED_V2_KEEP_BYTES in all (none in sanitizer builds, which then see
 * every use after free). */
#define ED_V2_CLASS_SHIFT 6
#define ED_V2_CLASSES     24      /* blocks up to 1536 bytes */
#if defined(__SANITIZE_ADDRESS__)
#define ED_V2_KEEP        0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ED_V2_KEEP        0
#endif
#endif
#ifndef ED_V2_KEEP
#define ED_V2_KEEP        64
#endif
#define ED_V2_KEEP_BYTES  (256 * 1024)  /* on all the lists of a worker */

typedef struct ed_v2_block_s ed_v2_block_t;

struct ed_v2_block_s {
    _Alignas(16) size_t  cls;      /* ED_V2_CLASSES: the C library's */
    size_t               size;     /* what it holds */
};

typedef union {
    ed_v2_block_t  hdr;
    void          *next;           /* on a free list */
} ed_v2_free_t;

static void          *ed_v2_lists[ED_V2_CLASSES];
static unsigned       ed_v2_nfree[ED_V2_CLASSES];
static const unsigned ed_v2_keep = ED_V2_KEEP;
static size_t         ed_v2_kept;    /* bytes on the lists */

void *
ed_http_v2_alloc(size_t size)
{
    ed_v2_block_t *b;
    size_t         cls;

    if (size > SIZE_MAX / 2) {
        return NULL;
    }
    cls = (size + sizeof(ed_v2_block_t) - 1) >> ED_V2_CLASS_SHIFT;
    if (cls >= ED_V2_CLASSES) {
        b = malloc(sizeof(ed_v2_block_t) + size);
        if (b == NULL) {
            return NULL;
        }
        b->cls = ED_V2_CLASSES;
        b->size = size;
        return b + 1;
    }
    b = ed_v2_lists[cls];
    if (b != NULL) {
        ed_v2_lists[cls] = ((ed_v2_free_t *)b)->next;
        ed_v2_nfree[cls]--;
        ed_v2_kept -= (cls + 1) << ED_V2_CLASS_SHIFT;
    } else {
        b = malloc((cls + 1) << ED_V2_CLASS_SHIFT);
        if (b == NULL) {
            return NULL;
        }
    }
    b->cls = cls;
    b->size = ((cls + 1) << ED_V2_CLASS_SHIFT) - sizeof(ed_v2_block_t);
    return b + 1;
}

void *
ed_http_v2_calloc(size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    p = ed_http_v2_alloc(n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

size_t
ed_http_v2_block_size(const void *p)
{
    return ((const ed_v2_block_t *)p - 1)->size;
}

void
ed_http_v2_release(void *p)
{
    ed_v2_block_t *b;
    size_t         cls;

    if (p == NULL) {
        return;
    }
    b = (ed_v2_block_t *)p - 1;
    cls = b->cls;    /* the link overwrites it */
    if (cls < ED_V2_CLASSES && ed_v2_nfree[cls] < ed_v2_keep
        && ed_v2_kept + ((cls + 1) << ED_V2_CLASS_SHIFT) <= ED_V2_KEEP_BYTES)
    {
        ((ed_v2_free_t *)b)->next = ed_v2_lists[cls];
        ed_v2_lists[cls] = b;
        ed_v2_nfree[cls]++;
        ed_v2_kept += (cls + 1) << ED_V2_CLASS_SHIFT;
        return;
    }
    free(b);
}

/* nghttp2's memory: blocks from the connection's arena (whose pages
 * sleep with the idle session), but for the stream map's table and the
 * output frame buffer the session makes when created, which
 * ed_v2_compact gives back to the kernel while the connection idles.
 * Both sit in one unit of whole pages (the table's page, then the
 * buffer's), carved from mmap'd slabs: a page-aligned malloc would leave
 * a gap of up to a page in front of each, per connection. Units are
 * reused, never unmapped (as connection blocks). */
static size_t         ed_v2_page, ed_v2_unit;
static ed_v2_slab_t   ed_v2_slab;
/* The free units, a stack kept outside them: a link written into the
 * table's page, given back while its connection idled, would take a
 * page of memory back. */
static ed_v2_stack_t  ed_v2_units;

static char *
ed_v2_unit_get(ed_v2_conn_t *c)
{
    char *u;

    if (c->unit != NULL) {
        return c->unit;
    }
    u = ed_v2_stack_pop(&ed_v2_units);
    if (u == NULL) {
        u = ed_v2_slab_take(&ed_v2_slab, ed_v2_unit);
        if (u == NULL) {
            return NULL;
        }
    }
    c->unit = u;
    return u;
}

/* After the session is gone. */
static void
ed_v2_unit_put(ed_v2_conn_t *c)
{
    if (c->unit != NULL && !ed_v2_stack_push(&ed_v2_units, c->unit)) {
        /* Lost to the address space only: no memory under it. */
        (void)madvise(c->unit, ed_v2_unit, MADV_DONTNEED);
    }
    c->unit = NULL;
}

static void *
ed_v2_malloc(size_t size, void *data)
{
    ed_v2_conn_t *c = data;
    char         *u;

    if (c->creating && c->framebuf == NULL && size == ED_V2_FRAMEBUF) {
        u = ed_v2_unit_get(c);
        if (u == NULL) {
            return NULL;
        }
        /* Every page of it is the buffer's alone, the last (partly
         * past the buffer's end) too. */
        c->framebuf = u + ed_v2_page;
        c->framebuf_len = ed_v2_unit - ed_v2_page;
        return c->framebuf;
    }
    return ed_v2_arena_alloc(&c->arena, size);
}

static void
ed_v2_free(void *ptr, void *data)
{
    ed_v2_conn_t *c = data;

    /* The unit goes with the connection (ed_v2_unit_put). */
    if (ptr != NULL && ptr == c->framebuf) {
        c->framebuf = NULL;
        return;
    }
    if (ptr != NULL && ptr == c->streamtab) {
        c->streamtab = NULL;
        return;
    }
    ed_v2_arena_release(&c->arena, ptr);
}

static void *
ed_v2_calloc(size_t n, size_t size, void *data)
{
    ed_v2_conn_t *c = data;
    char         *u;

    /* libnghttp2 1.52 makes its stream map's table (256 buckets of 16
     * bytes) when the session is made; empty, it is all zeros, which is
     * what a page given back reads as. */
    if (c->creating && c->streamtab == NULL && size != 0
        && n <= ed_v2_page / size && n * size == ed_v2_page)
    {
        u = ed_v2_unit_get(c);
        if (u == NULL) {
            return NULL;
        }
        memset(u, 0, ed_v2_page);
        c->streamtab = u;
        return u;
    }
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    u = ed_v2_arena_alloc(&c->arena, n * size);
    if (u != NULL) {
        memset(u, 0, n * size);
    }
    return u;
}

/* Whether a page holds zeros only. */
static bool
ed_v2_zero_page(const char *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t        any = 0;
    size_t          i;

    for (i = 0; i < len / sizeof(uint64_t); i++) {
        any |= w[i];
    }
    return any == 0;
}

static void *
ed_v2_realloc(void *ptr, size_t size, void *data)
{
    ed_v2_conn_t *c = data;
    size_t        have;
    void         *p;

    if (ptr == NULL) {
        /* nghttp2 makes its buffers with realloc(NULL, size). */
        return ed_v2_malloc(size, data);
    }
    if (ptr == c->framebuf) {
        have = c->framebuf_len;
    } else if (ptr == c->streamtab) {
        have = ed_v2_page;
    } else {
        have = ed_v2_arena_block_size(ptr);
        if (size <= have) {
            return ptr;
        }
    }
    p = ed_v2_arena_alloc(&c->arena, size);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, ptr, ed_min(have, size));
    ed_v2_free(ptr, data);
    return p;
}

/* The connection idles (no stream, nothing for nghttp2 to write): the
 * frame buffer's content is dead, its pages go back to the kernel
 * (read back as zeros when next touched); so does the stream map's
 * table when it is empty (all zeros, which the kernel gives back).
 * Then the session sleeps: its arena's pages are encoded and given
 * back too, until the next event on the connection (ed_v2_wake). */
static void
ed_v2_compact(ed_v2_conn_t *c)
{
    if (c->sleeping != NULL || c->nstreams != 0
        || nghttp2_session_want_write(c->sess))
    {
        return;
    }
    if (c->framebuf != NULL) {
        (void)madvise(c->framebuf, c->framebuf_len, MADV_DONTNEED);
    }
    if (c->streamtab != NULL && ed_v2_zero_page(c->streamtab, ed_v2_page)) {
        (void)madvise(c->streamtab, ed_v2_page, MADV_DONTNEED);
    }
    if (c->streams == NULL && c->zombies == NULL && c->waiters == NULL
        && c->preface && !c->closing && !c->shutdown && !c->ping_out
        && c->hc->c.stream.wqueued == 0 && ed_v2_arena_sleep(&c->arena))
    {
        c->sleeping = c->sess;
        c->sess = NULL;
        c->hd_st = NULL;
        c->hd_id = 0;
        ed_log(ED_LOG_DEBUG, ed_log_cur, 0, "http2 session asleep in %zu "
               "bytes, %u blocks outside its pages",
               ed_v2_arena_asleep_bytes(&c->arena), c->arena.outside);
    }
}

/* The session back where it was, before anything calls nghttp2. */
static void
ed_v2_wake(ed_v2_conn_t *c)
{
    if (c->sleeping != NULL) {
        ed_v2_arena_wake(&c->arena);
        c->sess = c->sleeping;
        c->sleeping = NULL;
    }
}

/* Made once per worker: the callbacks and options every session has. */
static int
ed_v2_init(void)
{
    nghttp2_session_callbacks *cb;

    if (ed_v2_callbacks != NULL) {
        return ED_OK;
    }
    ed_v2_page = (size_t)sysconf(_SC_PAGESIZE);
    ed_v2_unit = ed_v2_page
                 + (ED_V2_FRAMEBUF + ed_v2_page - 1) / ed_v2_page * ed_v2_page;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return ED_ERROR;
    }
    nghttp2_session_callbacks_set_send_callback(cb, ed_v2_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(
        cb, ed_v2_on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, ed_v2_on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(
        cb, ed_v2_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, ed_v2_on_stream_close);
    nghttp2_session_callbacks_set_on_begin_headers_callback(
        cb, ed_http_v2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb,
                                                      ed_http_v2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, ed_http_v2_on_data);
    nghttp2_session_callbacks_set_send_data_callback(cb,
                                                     ed_http_v2_send_data);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
        cb, ed_v2_on_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(cb, ed_v2_on_error);
    if (nghttp2_option_new(&ed_v2_option) != 0) {
        nghttp2_session_callbacks_del(cb);
        return ED_ERROR;
    }
    /* Body bytes are acknowledged as handlers take them. */
    nghttp2_option_set_no_auto_window_update(ed_v2_option, 1);
    /* eddy checks the fields itself (spec/http2.md, Malformed): the
     * library's checks changed across releases. */
    nghttp2_option_set_no_http_messaging(ed_v2_option, 1);
    /* The preface was read to tell HTTP/2 from HTTP/1.x. */
    nghttp2_option_set_no_recv_client_magic(ed_v2_option, 1);
    nghttp2_option_set_max_settings(ed_v2_option, 32);
    nghttp2_option_set_max_outbound_ack(ed_v2_option, 1000);
    /* The encoder's table holds 512 bytes whatever the client allows:
     * room for the fields that repeat (server, date within its second,
     * content-type, accept-ranges), which then cost an index instead of
     * a Huffman-coded literal each time: 16% fewer instructions per
     * static h2c response than without a table (callgrind), for about
     * 1.3 KB more per idle connection (bench/idle.sh). 256 bytes churn
     * (costlier than none); 4096 save nothing more. nghttp2 itself
     * never indexes content-length, etag, location, set-cookie. */
    nghttp2_option_set_max_deflate_dynamic_table_size(ed_v2_option,
                                                      ED_V2_ENC_TABLE);
    /* PRIORITY_UPDATE (RFC 9218) reaches on_begin_frame, so that the
     * control budget counts it. */
    nghttp2_option_set_builtin_recv_extension_type(ed_v2_option,
                                                   NGHTTP2_PRIORITY_UPDATE);
    ed_v2_callbacks = cb;
    return ED_OK;
}

/* The server whose settings the connection takes: SNI's, else the
 * address's default server. */
static ed_http_server_t *
ed_v2_server(ed_http_conn_t *hc)
{
    ed_http_addr_t    *ha = ed_http_conn_addr(hc);
    ed_http_server_t **srv = ha->servers.elts;
    SSL               *ssl = ed_tls_ssl(&hc->c.stream);
    SSL_CTX           *ctx;
    size_t             i;

    if (ssl != NULL) {
        ctx = SSL_get_SSL_CTX(ssl);
        for (i = 0; i < ha->servers.nelts; i++) {
            if (srv[i]->tls_ctx == ctx) {
                return srv[i];
            }
        }
    }
    return ha->default_server;
}

bool
ed_http_v2_alpn(ed_http_conn_t *hc)
{
    SSL                 *ssl = ed_tls_ssl(&hc->c.stream);
    const unsigned char *p;
    unsigned             n;

    if (ssl == NULL) {
        return false;
    }
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

bool
ed_http_v2_start(ed_http_conn_t *hc)
{
    ed_v2_conn_t            *c;
    ed_http_v2_conf_t       *conf;
    nghttp2_settings_entry   iv[7];
    nghttp2_mem              mem;
    ed_stream_t             *s = &hc->c.stream;
    size_t                   hsize;
    int                      rc;

    if (ed_v2_init() != ED_OK) {
        return false;
    }
    c = calloc(1, sizeof(ed_v2_conn_t));
    if (c == NULL) {
        return false;
    }
    c->hc = hc;
    c->server = ed_v2_server(hc);
    c->conf = conf = ed_http_v2_conf(c->server);
    c->clcf = c->server->loc_conf[ed_http_core_module.index];
    c->tls = ed_tls_ssl(s) != NULL;
    mem.mem_user_data = c;
    mem.malloc = ed_v2_malloc;
    mem.free = ed_v2_free;
    mem.calloc = ed_v2_calloc;
    mem.realloc = ed_v2_realloc;
    c->creating = 1;
    rc = nghttp2_session_server_new3(&c->sess, ed_v2_callbacks, c,
                                     ed_v2_option, &mem);
    c->creating = 0;
    if (rc != 0) {
        ed_v2_arena_drop(&c->arena);
        ed_v2_unit_put(c);
        free(c);
        return false;
    }
    hc->v2 = c;
    c->timer.data = c;
    c->ping_timer.data = c;
    c->block_timer.data = c;
    c->block_timer.handler = ed_v2_on_block_timer;
    c->post.handler = ed_v2_on_post;
    c->resets.tokens = 2.0 * conf->max_concurrent_streams;
    c->resets.last = ed_current_msec;
    c->control.tokens = ED_V2_CONTROL_MAX;
    c->control.last = ed_current_msec;
    c->last_recv = ed_current_msec;
    hsize = c->clcf->max_header_size + 32 * (size_t)(c->clcf->max_headers + 5);
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = (uint32_t)conf->max_concurrent_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = (uint32_t)conf->initial_window_size;
    iv[2].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE;
    iv[2].value = (uint32_t)conf->max_frame_size;
    iv[3].settings_id = NGHTTP2_SETTINGS_HEADER_TABLE_SIZE;
    iv[3].value = (uint32_t)conf->header_table_size;
    iv[4].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[4].value = (uint32_t)hsize;
    iv[5].settings_id = NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
    iv[5].value = conf->enable_connect_protocol ? 1 : 0;
    iv[6].settings_id = NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES;
    iv[6].value = 1;
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 7) != 0
        || nghttp2_session_set_local_window_size(
               c->sess, NGHTTP2_FLAG_NONE, 0,
               (int32_t)ed_min(conf->connection_window_size, INT32_MAX))
               != 0)
    {
        hc->v2 = NULL;
        nghttp2_session_del(c->sess);
        ed_v2_arena_drop(&c->arena);
        ed_v2_unit_put(c);
        free(c);
        return false;
    }
    s->on_drain = NULL;
    s->on_flushed = NULL;
    hc->c.shutdown = ed_v2_shutdown;
    ed_stream_set_water(s, ED_STREAM_LOW_WATER, ED_STREAM_HIGH_WATER);
    ed_http_nodelay(hc);
    ed_stats_v2(connections[c->tls ? 0 : 1], 1);
    ed_stats_v2(connections_active, 1);
    hc->state = ed_stats_state(hc->state, ED_STATS_READING);
    if (ed_stream_read_some(s, ed_worker->bufs.size, ed_v2_on_read)
        != ED_OK)
    {
        ed_v2_close(c);
        return true;
    }
    ed_v2_arm(c);
    ed_http_v2_post(c);
    return true;
}

/* Timers: the preface's client_header_timeout, idle_timeout with no
 * stream open, PINGs, and the wait of a closing connection. */
static void
ed_v2_on_timer(ed_timer_t *t)
{
    ed_v2_conn_t *c = t->data;

    if (c->closing) {
        ed_v2_close(c);
        return;
    }
    if (!c->preface) {
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "client timed out sending the "
               "HTTP/2 preface");
        ed_v2_close(c);
        return;
    }
    if (c->compact_due) {
        /* Idle for ED_V2_COMPACT_MSEC: the rest of idle_timeout to go. */
        c->compact_due = 0;
        ed_v2_compact(c);
        ed_timer_add(ed_worker->loop, &c->timer, c->idle_rest);
        return;
    }
    /* idle_timeout: no stream open that long. */
    ed_v2_wake(c);
    nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE, c->last_id,
                          NGHTTP2_NO_ERROR, NULL, 0);
    c->closing = 1;
    ed_http_v2_post(c);
}

static void
ed_v2_on_block_timer(ed_timer_t *t)
{
    ed_v2_conn_t *c = t->data;

    ed_v2_wake(c);
    ed_http_v2_flood(c, "continuations");
    ed_http_v2_post(c);
}

static void
ed_v2_on_ping_timer(ed_timer_t *t)
{
    ed_v2_conn_t *c = t->data;

    if (c->ping_out) {
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "client timed out answering "
               "an HTTP/2 PING");
        ed_v2_close(c);
        return;
    }
    ed_v2_wake(c);
    if (nghttp2_submit_ping(c->sess, NGHTTP2_FLAG_NONE, NULL) == 0) {
        c->ping_out = 1;
    }
    ed_v2_arm(c);
    ed_http_v2_post(c);
}

static ed_msec_t
ed_v2_idle_timeout(ed_v2_conn_t *c)
{
    return c->conf->idle_timeout != ED_CONF_UNSET_MSEC
               ? c->conf->idle_timeout : c->clcf->keepalive_timeout;
}

static void
ed_v2_arm(ed_v2_conn_t *c)
{
    ed_http_v2_conf_t *conf = c->conf;
    ed_msec_t          idle, since;

    c->timer.handler = ed_v2_on_timer;
    c->ping_timer.handler = ed_v2_on_ping_timer;
    c->compact_due = 0;
    if (c->closing) {
        return;
    }
    if (!c->preface) {
        ed_timer_add(ed_worker->loop, &c->timer,
                     c->clcf->client_header_timeout);
        return;
    }
    if (c->ping_out) {
        ed_timer_add(ed_worker->loop, &c->ping_timer, conf->ping_timeout);
    } else if (c->nstreams && conf->ping_interval > 0) {
        since = ed_current_msec - c->last_recv;
        ed_timer_add(ed_worker->loop, &c->ping_timer,
                     since < conf->ping_interval
                         ? conf->ping_interval - since : 0);
    } else {
        ed_timer_del(ed_worker->loop, &c->ping_timer);
    }
    if (c->nstreams) {
        ed_timer_del(ed_worker->loop, &c->timer);
        return;
    }
    idle = ed_v2_idle_timeout(c);
    if (c->framebuf != NULL && idle > ED_V2_COMPACT_MSEC) {
        c->compact_due = 1;
        c->idle_rest = idle - ED_V2_COMPACT_MSEC;
        idle = ED_V2_COMPACT_MSEC;
    }
    ed_timer_add(ed_worker->loop, &c->timer, idle);
}

/* Graceful shutdown (quit, reload, keepalive_requests): GOAWAY with the
 * largest id and a PING; at its ACK (or ping_timeout) the GOAWAY that
 * names the last stream eddy began. */
static void
ed_v2_graceful(ed_v2_conn_t *c)
{
    if (c->shutdown) {
        return;
    }
    ed_v2_wake(c);
    c->shutdown = 1;
    nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE, (1U << 31) - 1,
                          NGHTTP2_NO_ERROR, NULL, 0);
    if (!c->ping_out && nghttp2_submit_ping(c->sess, NGHTTP2_FLAG_NONE,
                                            NULL) == 0)
    {
        c->ping_out = 1;
    }
    ed_timer_add(ed_worker->loop, &c->ping_timer, c->conf->ping_timeout);
    ed_http_v2_post(c);
}

static void
ed_v2_shutdown(ed_conn_t *conn)
{
    ed_http_conn_t *hc = (ed_http_conn_t *)conn;
    ed_v2_conn_t   *c = ed_v2_conn(hc);

    if (ed_worker->terminating) {
        ed_v2_close(c);
        return;
    }
    ed_v2_graceful(c);
}

/* I/O. */

static void
ed_v2_on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t *hc = s->data;
    ed_v2_conn_t   *c = ed_v2_conn(hc);
    ssize_t         rv;
    bool            woke;

    if (status != ED_OK) {
        /* The client closed or failed: nothing more can be answered. */
        ed_v2_close(c);
        return;
    }
    woke = c->sleeping != NULL;
    ed_v2_wake(c);
    c->last_recv = ed_current_msec;
    rv = nghttp2_session_mem_recv(c->sess, (const uint8_t *)data, len);
    if (rv == NGHTTP2_ERR_FLOODED) {
        /* nghttp2's own bound: more ACKs (of PING, SETTINGS) queued than
         * it keeps, from a client that asks while it does not read
         * (paced under the control budget). The same reaction as to
         * the budget. */
        ed_http_v2_flood(c, "control");
    } else if (rv < 0) {
        if (!c->flood) {
            ed_log(ED_LOG_INFO, ed_log_cur, 0, "http2 session error: %s",
                   nghttp2_strerror((int)rv));
        }
        c->closing = 1;
    }
    if (ed_v2_run(c) != ED_OK) {
        return;
    }
    if (!c->closing
        && ed_stream_read_some(s, ed_worker->bufs.size, ed_v2_on_read)
               != ED_OK)
    {
        ed_v2_close(c);
        return;
    }
    if (c->ping_out || c->nstreams) {
        ed_v2_arm(c);
        return;
    }
    if (!ed_stream_buffered(s)) {
        /* Idle: the read buffer goes back to the worker's free list. */
        ed_stream_release_buffer(s);
    }
    if (woke && !c->closing && !c->shutdown && !c->compact_due
        && ed_timer_active(&c->timer)
        && c->timer.handler == ed_v2_on_timer
        && c->timer.when > ed_current_msec + ED_V2_COMPACT_MSEC)
    {
        /* Woken by frames that began no stream (a PING, SETTINGS): asleep
         * again after a second, idle_timeout unchanged. */
        c->idle_rest = c->timer.when - ed_current_msec - ED_V2_COMPACT_MSEC;
        c->compact_due = 1;
        ed_timer_add(ed_worker->loop, &c->timer, ED_V2_COMPACT_MSEC);
    }
}

static void
ed_v2_on_drain(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    ed_http_v2_post(ed_v2_conn(hc));
}

static void
ed_v2_on_flushed(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;
    ed_v2_conn_t   *c = ed_v2_conn(hc);

    ed_v2_wake(c);
    ed_v2_free_zombies(c, false);
    if (c->closing && !nghttp2_session_want_write(c->sess)) {
        ed_v2_end(c, true);
        return;
    }
    ed_http_v2_post(c);
}

static void
ed_v2_on_sock_close(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;

    ed_v2_close(ed_v2_conn(hc));
}

/* Runs what is due on the streams, then lets nghttp2 write. ED_OK, or
 * ED_DONE when the connection was closed (c is freed). */
static int
ed_v2_run(ed_v2_conn_t *c)
{
    ed_stream_t    *s = &c->hc->c.stream;
    ed_v2_stream_t *st;
    unsigned        rounds;
    int             rv;

    if (c->running) {
        c->again = 1;
        return ED_OK;
    }
    ed_v2_wake(c);
    c->running = 1;
    s->on_drain = ed_v2_on_drain;
    s->on_flushed = ed_v2_on_flushed;
    s->on_close = ed_v2_on_sock_close;
    /* Requests waiting for their file ranges to be written. */
    while ((st = c->waiters) != NULL && ed_http_v2_files_out(st)) {
        ed_http_v2_unwait(st);
        ed_http_v2_pending(st);
    }
    for (rounds = 0; rounds < ED_V2_ROUNDS; rounds++) {
        c->again = 0;
        while ((st = c->pending) != NULL) {
            c->pending = st->pnext;
            if (c->pending == NULL) {
                c->pending_last = NULL;
            }
            st->pnext = NULL;
            st->pending = 0;
            ed_http_v2_stream_run(st);
        }
        if (!ed_stream_write_blocked(s) && nghttp2_session_want_write(c->sess))
        {
            rv = nghttp2_session_send(c->sess);
            if (rv != 0) {
                ed_log(ED_LOG_INFO, ed_log_cur, 0, "http2 send error: %s",
                       nghttp2_strerror(rv));
                c->running = 0;
                ed_v2_close(c);
                return ED_DONE;
            }
        }
        if (c->pending == NULL && !c->again) {
            break;
        }
    }
    c->running = 0;
    if (c->pending != NULL || c->again) {
        ed_loop_post(ed_worker->loop, &c->post);
    }
    ed_v2_free_zombies(c, false);
    if (c->shutdown && c->nstreams == 0 && c->goaway_final) {
        c->closing = 1;
    }
    if (!nghttp2_session_want_read(c->sess)
        && !nghttp2_session_want_write(c->sess))
    {
        c->closing = 1;
    }
    if (c->closing && c->shutdown && !c->goaway_final && !c->flood) {
        /* Nothing is left: the GOAWAY naming the last stream eddy began
         * goes before the close, without waiting for the PING. */
        c->goaway_final = 1;
        if (nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE, c->last_id,
                                  NGHTTP2_NO_ERROR, NULL, 0) == 0)
        {
            nghttp2_session_send(c->sess);
        }
    }
    if (c->closing) {
        ed_v2_close_after_flush(c, c->flood ? ED_V2_FLOOD_MSEC
                                            : c->clcf->send_timeout);
        if (s->wqueued == 0 && !ed_stream_flush_posted(s)) {
            ed_v2_end(c, true);
            return ED_DONE;
        }
        return ED_OK;
    }
    c->hc->state = ed_stats_state(c->hc->state,
                                  !c->preface ? ED_STATS_READING
                                  : c->nstreams ? ED_STATS_WRITING
                                                : ED_STATS_IDLE);
    return ED_OK;
}

static void
ed_v2_close_after_flush(ed_v2_conn_t *c, ed_msec_t wait)
{
    ed_v2_stream_t *st;

    ed_stream_read_stop(&c->hc->c.stream);
    for (st = c->streams; st; st = st->next) {
        if (st->r != NULL && !st->abort_due) {
            st->abort_due = 1;
            ed_http_v2_pending(st);
        }
    }
    ed_timer_del(ed_worker->loop, &c->ping_timer);
    ed_timer_del(ed_worker->loop, &c->block_timer);
    if (!ed_timer_active(&c->timer) || c->timer.handler != ed_v2_on_timer
        || !c->closing)
    {
        ed_timer_add(ed_worker->loop, &c->timer, wait);
    } else if (c->timer.when > ed_current_msec + wait) {
        ed_timer_add(ed_worker->loop, &c->timer, wait);
    }
}

static void
ed_v2_close(ed_v2_conn_t *c)
{
    ed_v2_end(c, false);
}

/* Ends the connection. With linger, and everything written (the last
 * GOAWAY included), the HTTP/1 connection underneath shuts its write side
 * and drains what the client still sends before it closes: a close with
 * the client's frames unread (a flood's, most often) would reset the
 * connection and could take the GOAWAY with it. */
static void
ed_v2_end(ed_v2_conn_t *c, bool linger)
{
    ed_http_conn_t *hc = c->hc;
    ed_stream_t    *s = &hc->c.stream;
    ed_v2_stream_t *st;

    /* What the streams' ends ask for (a dispatch, timers) is not
     * posted or armed any more. */
    c->closing = 1;
    c->running = 1;
    linger = linger && s->wqueued == 0 && !ed_stream_flush_posted(s)
             && !s->closed && !s->error && !s->eof && !ed_worker->terminating;
    /* Requests still running end without their response; the queue
     * goes first, so that no file range outlives its descriptor (when
     * lingering, nothing is queued). */
    if (!linger) {
        ed_stream_close(s);
    }
    while ((st = c->streams) != NULL) {
        if (st->r != NULL) {
            ed_http_v2_stream_abort(st);
        }
        st->closed = 1;
        ed_http_v2_stream_unlink(st);
        ed_http_v2_stream_free(st);
    }
    ed_v2_free_zombies(c, true);
    ed_timer_del(ed_worker->loop, &c->timer);
    ed_timer_del(ed_worker->loop, &c->ping_timer);
    ed_timer_del(ed_worker->loop, &c->block_timer);
    ed_loop_unpost(ed_worker->loop, &c->post);
    /* Asleep, a session that holds nothing but its arena's pages and the
     * unit goes without waking; one holding blocks of the worker's lists
     * (made while its arena was full and kept: HPACK table entries
     * indexed during a burst of streams) is woken to free them. */
    if (c->sleeping != NULL && c->arena.outside != 0) {
        ed_v2_wake(c);
    }
    if (c->sleeping == NULL) {
        nghttp2_session_del(c->sess);
    }
    ed_v2_arena_drop(&c->arena);
    ed_v2_unit_put(c);
    ed_stats_v2(connections_active, -1);
    hc->v2 = NULL;
    free(c);
    hc->requests = 0;
    if (linger) {
        ed_http_linger_close(hc);
        return;
    }
    ed_http_close(hc);
}

void
ed_http_v2_zombie(ed_v2_stream_t *st)
{
    ed_v2_conn_t *c = st->c;

    st->pnext = c->zombies;
    c->zombies = st;
}

void
ed_http_v2_graceful(ed_v2_conn_t *c)
{
    ed_v2_graceful(c);
}

void
ed_http_v2_arm(ed_v2_conn_t *c)
{
    ed_v2_arm(c);
}

#endif /* ED_HAVE_HTTP2 */
