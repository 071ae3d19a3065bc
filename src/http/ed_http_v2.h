/* HTTP/2 (RFC 9113) towards clients, with libnghttp2 for framing, HPACK
 * and stream states: the http2 block (ed_http_v2_module.c), connections
 * (ed_http_v2.c), streams as requests (ed_http_v2_stream.c). */
#ifndef ED_HTTP_V2_H
#define ED_HTTP_V2_H

#include "ed_http.h"

/* The http2 block (main or server level, inherited field by field). */
typedef struct {
    ed_node_t  *node;
    int         max_concurrent_streams;
    size_t      initial_window_size;
    size_t      connection_window_size;
    size_t      max_frame_size;
    size_t      header_table_size;
    ed_msec_t   idle_timeout;      /* unset: keepalive_timeout */
    ed_msec_t   ping_interval;
    ed_msec_t   ping_timeout;
    int         enable_connect_protocol;
} ed_http_v2_conf_t;

typedef struct {
    ed_http_v2_conf_t *block;
} ed_http_v2_loc_conf_t;

extern ed_module_t ed_http_v2_module;

/* The http2 settings of a server. */
ed_http_v2_conf_t *ed_http_v2_conf(ed_http_server_t *srv);

#if ED_HAVE_HTTP2

#include <nghttp2/nghttp2.h>

typedef struct ed_v2_conn_s ed_v2_conn_t;
typedef struct ed_v2_stream_s ed_v2_stream_t;
typedef struct ed_v2_chunk_s ed_v2_chunk_t;

/* A token bucket for flood limits: at most max tokens, refilled at rate
 * per second. */
typedef struct {
    double      tokens;
    ed_msec_t   last;
} ed_v2_bucket_t;

/* Output or buffered input of a stream: memory (fd < 0, the bytes
 * follow the header) or a file range. */
struct ed_v2_chunk_s {
    ed_v2_chunk_t *next;
    size_t         len;    /* bytes left */
    size_t         pos;    /* memory: bytes already taken */
    int            fd;
    int64_t        off;
    char           data[];
};

struct ed_v2_stream_s {
    ed_v2_conn_t       *c;
    ed_http_request_t  *r;         /* NULL once the request let go */
    int32_t             id;
    ed_v2_stream_t     *next;      /* the connection's list */
    ed_v2_stream_t     *prev;
    ed_v2_stream_t     *pnext;     /* the pending list */
    ed_v2_stream_t     *wnext, *wprev;  /* the waiters list */

    /* The head as it arrives. */
    ed_str_t            method, scheme, path, authority, protocol;
    /* The regular fields kept, from hdrs[1] (hdrs[0] is the room for
     * the Host that :authority stands for): the request head's own
     * array once the request starts. */
    ed_http_header_t   *hdrs;
    unsigned            nhdrs;     /* used, hdrs[0] included */
    unsigned            hcap;
    size_t              flen;      /* their "name: value\r\n" bytes */
    size_t              text;      /* the head as HTTP/1.1 text */
    unsigned            nfields;
    ed_str_t            cookie;
    size_t              cookie_size;   /* room at cookie.data */
    size_t              trailers_size; /* room at r->trailers.data */
    ed_str_t            host;      /* a host field beside :authority */
    int64_t             content_length;
    const char         *malformed; /* why the stream is malformed */

    /* The request body as received, not yet handed over. */
    ed_v2_chunk_t      *in, *in_last;
    size_t              in_bytes;
    int64_t             in_total;  /* DATA bytes received */
    ed_http_body_pt     body_cb;
    void               *body_data;
    ed_timer_t          body_timer;  /* client_body_timeout */

    /* The response body queued for DATA frames. */
    ed_v2_chunk_t      *out, *out_last;
    size_t              out_bytes;
    size_t              high;      /* the high water mark */
    ed_timer_t          timer;     /* send_timeout */
    ed_pool_t          *pool;      /* the ended request's, kept while
                                    * its file ranges are queued */
    uint64_t            file_mark; /* queued_total after its last range */
    /* Trailer fields for a last HEADERS, from the request's
     * trailers_out when its body ended (one block, the strings follow
     * the array); NULL: none. */
    nghttp2_nv         *trailers;
    size_t              ntrailers;

    unsigned            pending:1;
    unsigned            waiting:1;      /* on the waiters list */
    unsigned            host_seen:1;
    unsigned            cl_seen:1;
    unsigned            too_large:1;    /* over max_header_size or
                                         * max_headers: 431 */
    unsigned            ctl:1;          /* a kept value holds a CTL or
                                         * DEL: 400, as in HTTP/1.1 */
    unsigned            window_wait:1;  /* DATA waits for window */
    unsigned            headers_done:1; /* END_HEADERS seen */
    unsigned            start_due:1;
    unsigned            in_end:1;       /* END_STREAM received */
    unsigned            bodyless:1;     /* END_STREAM on HEADERS */
    unsigned            started:1;      /* its handler may run */
    unsigned            reading:1;      /* a body reader is set */
    unsigned            body_paused:1;
    unsigned            body_stopped:1;
    unsigned            body_due:1;
    unsigned            drain_on:1;
    unsigned            drain_due:1;
    unsigned            flush_on:1;
    unsigned            out_end:1;      /* the last piece is queued */
    unsigned            provider:1;     /* a data provider runs */
    unsigned            deferred:1;     /* it waits for data */
    unsigned            eof_sent:1;
    unsigned            closed:1;       /* nghttp2 closed it */
    unsigned            abort_due:1;
    unsigned            done:1;         /* the request ended */
    unsigned            rst_sent:1;
    unsigned            file_sent:1;    /* file ranges went to the queue */
    unsigned            refused:1;
    unsigned            cancelled:1;    /* 413 after the head: CANCEL */
};

/* Whole pages carved from mmap'd slabs of 64 units, never unmapped
 * (ed_http_v2_arena.c); no huge page under them, so that they go back
 * to the kernel one by one. NULL if mmap fails. */
typedef struct {
    char                    *next, *end;
} ed_v2_slab_t;

char *ed_v2_slab_take(ed_v2_slab_t *s, size_t unit);

/* A stack of free pages or units, kept outside them (ed_http_v2_arena.c):
 * false when it cannot grow. */
typedef struct {
    char                   **v;
    unsigned                 n, cap;
} ed_v2_stack_t;

bool ed_v2_stack_push(ed_v2_stack_t *s, char *p);
/* NULL when empty. */
char *ed_v2_stack_pop(ed_v2_stack_t *s);

/* A connection's nghttp2 memory (ed_http_v2_arena.c). */
#define ED_V2A_CLASSES 16

typedef struct {
    char                   **pages;
    char                    *bump, *end;  /* the last page's free tail */
    void                    *free[ED_V2A_CLASSES];
    char                    *blob;        /* asleep: the pages' bytes */
    unsigned                 npages, cap;
    unsigned                 outside;     /* live blocks from the worker's
                                           * lists */
} ed_v2_arena_t;

void *ed_v2_arena_alloc(ed_v2_arena_t *a, size_t size);
void ed_v2_arena_release(ed_v2_arena_t *a, void *p);
size_t ed_v2_arena_block_size(const void *p);
/* Encodes the pages and gives them back to the kernel: true if done
 * (nothing of the arena may be touched until ed_v2_arena_wake). */
bool ed_v2_arena_sleep(ed_v2_arena_t *a);
void ed_v2_arena_wake(ed_v2_arena_t *a);
/* Returns the pages (the session is gone, or asleep and dropped). */
void ed_v2_arena_drop(ed_v2_arena_t *a);
/* The bytes an asleep arena keeps (0 when awake). */
size_t ed_v2_arena_asleep_bytes(const ed_v2_arena_t *a);

struct ed_v2_conn_s {
    ed_http_conn_t          *hc;
    nghttp2_session         *sess;      /* NULL while asleep */
    nghttp2_session         *sleeping;  /* the session, while asleep */
    ed_v2_arena_t            arena;
    ed_http_v2_conf_t       *conf;      /* the connection's server's */
    ed_http_core_loc_conf_t *clcf;
    ed_http_server_t        *server;
    ed_timer_t               timer;     /* idle, ping, close wait */
    ed_timer_t               ping_timer;
    ed_timer_t               block_timer; /* a header block open */
    ed_defer_t               post;
    ed_v2_stream_t          *streams;   /* every stream of ours */
    ed_v2_stream_t          *pending, *pending_last;
    ed_v2_stream_t          *zombies;   /* ended, file bytes queued */
    /* The stream whose header block is being read (its fields come
     * one callback each: no lookup in nghttp2's map for every one). */
    ed_v2_stream_t          *hd_st;
    int32_t                  hd_id;
    unsigned                 nstreams;  /* requests holding resources */
    unsigned                 nrequests;
    int32_t                  last_id;   /* the last stream begun */
    ed_v2_bucket_t           resets;
    ed_v2_bucket_t           control;
    /* Bytes ever given to the socket's queue: with its wqueued, how far
     * writing got (a stream's file ranges are out once past its mark). */
    uint64_t                 queued_total;
    /* Streams waiting for their file ranges to be written, by
     * file_mark (ed_http_v2_wait). */
    ed_v2_stream_t          *waiters, *waiters_last;
    uint64_t                 window_updates;
    uint64_t                 data_sent;
    unsigned                 opened;
    unsigned                 refused;
    unsigned                 continuations;
    int32_t                  cont_stream;
    ed_msec_t                block_start;
    ed_msec_t                last_recv;
    ed_msec_t                idle_rest;  /* idle_timeout left after the
                                          * compaction (compact_due) */
    /* nghttp2's output frame buffer (16 KiB, made with the session):
     * page-aligned, so that its pages go back to the kernel while the
     * connection idles (ed_v2_compact). */
    char                    *framebuf;
    size_t                   framebuf_len;
    char                    *streamtab;  /* nghttp2's first stream map
                                          * table, a page of its own */
    char                    *unit;       /* the pages of both */

    unsigned                 running:1;
    unsigned                 again:1;
    unsigned                 closing:1;   /* close once written */
    unsigned                 shutdown:1;  /* graceful GOAWAY begun */
    unsigned                 goaway_final:1;
    unsigned                 ping_out:1;  /* a PING of ours unanswered */
    unsigned                 flood:1;
    unsigned                 tls:1;
    unsigned                 preface:1;   /* the client's SETTINGS came */
    unsigned                 creating:1;  /* in nghttp2_session_*_new */
    unsigned                 compact_due:1; /* c->timer compacts first */
};

/* Small blocks from per-worker free lists (ed_http_v2.c): streams,
 * their small chunks, nghttp2's blocks outside its arenas. */
void *ed_http_v2_alloc(size_t size);
void *ed_http_v2_calloc(size_t n, size_t size);
void ed_http_v2_release(void *p);
/* What a block from ed_http_v2_alloc holds. */
size_t ed_http_v2_block_size(const void *p);

/* The connection (ed_http_v2.c). */
void ed_http_v2_post(ed_v2_conn_t *c);
void ed_http_v2_pending(ed_v2_stream_t *st);
/* A client fault or reset: a token of the `resets` budget; false when
 * the budget is gone (the flood reaction has begun). */
bool ed_http_v2_reset_token(ed_v2_conn_t *c);
void ed_http_v2_flood(ed_v2_conn_t *c, const char *limit);
void ed_http_v2_stream_unlink(ed_v2_stream_t *st);
void ed_http_v2_stream_free(ed_v2_stream_t *st);
/* An ended stream whose file bytes are still queued: freed once the
 * connection's queue is written. */
void ed_http_v2_zombie(ed_v2_stream_t *st);
void ed_http_v2_graceful(ed_v2_conn_t *c);
/* Whether the file ranges a stream gave the socket's queue are written
 * (their descriptors may close). */
#define ed_http_v2_files_out(st)                                             \
    (!(st)->file_sent                                                        \
     || (st)->c->queued_total - (st)->c->hc->c.stream.wqueued                \
            >= (st)->file_mark)
void ed_http_v2_arm(ed_v2_conn_t *c);
/* Puts a stream whose file ranges are queued but not yet written on the
 * connection's waiters, made pending once the socket is past them. */
void ed_http_v2_wait(ed_v2_stream_t *st);
void ed_http_v2_unwait(ed_v2_stream_t *st);

/* Streams (ed_http_v2_head.c, ed_http_v2_stream.c). */
#define ed_v2_is(n, nl, lit)                                                 \
    ((nl) == sizeof(lit) - 1 && memcmp(n, lit, sizeof(lit) - 1) == 0)

int ed_http_v2_on_begin_headers(nghttp2_session *sess,
                                const nghttp2_frame *frame, void *data);
int ed_http_v2_on_header(nghttp2_session *sess, const nghttp2_frame *frame,
                         nghttp2_rcbuf *name, nghttp2_rcbuf *value,
                         uint8_t flags, void *data);
int ed_http_v2_on_data(nghttp2_session *sess, uint8_t flags, int32_t id,
                       const uint8_t *data, size_t len, void *user);
void ed_http_v2_headers_end(ed_v2_stream_t *st, bool end_stream);
void ed_http_v2_data_end(ed_v2_stream_t *st);
ssize_t ed_http_v2_data_read(nghttp2_session *sess, int32_t id,
                             uint8_t *buf, size_t length, uint32_t *flags,
                             nghttp2_data_source *src, void *user);
int ed_http_v2_send_data(nghttp2_session *sess, nghttp2_frame *frame,
                         const uint8_t *framehd, size_t length,
                         nghttp2_data_source *src, void *user);
/* A malformed request (fmt has one %s for what): RST_STREAM(
 * PROTOCOL_ERROR), an info line, 400 in the access log, a resets token
 * (ed_http_v2_head.c). */
void ed_http_v2_malformed(ed_v2_stream_t *st, const char *fmt,
                          const char *what, size_t len);
/* A new stream's output high water mark and timers. */
void ed_http_v2_stream_init(ed_v2_stream_t *st);
/* The head is complete: the request starts (from the dispatch). */
void ed_http_v2_start_request(ed_v2_stream_t *st);
/* Runs what is due on a stream (from the connection's dispatch). */
void ed_http_v2_stream_run(ed_v2_stream_t *st);
/* Ends a stream's request without a response (reset, connection
 * closing): logs it and lets it go. */
void ed_http_v2_stream_abort(ed_v2_stream_t *st);
/* After a frame with END_STREAM went out; after a WINDOW_UPDATE (id 0:
 * the connection's). */
void ed_http_v2_sent_end(ed_v2_stream_t *st);
void ed_http_v2_window(ed_v2_conn_t *c, int32_t id);
/* Resets a stream with code (eddy's side). */
void ed_http_v2_rst(ed_v2_stream_t *st, uint32_t code);

extern const ed_http_proto_t ed_http_v2_proto;

#endif /* ED_HAVE_HTTP2 */

#endif /* ED_HTTP_V2_H */
