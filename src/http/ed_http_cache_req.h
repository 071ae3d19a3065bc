/* A request's use of the shared HTTP cache (cache.md), for the modules
 * whose locations take the cache keys (proxy, fastcgi): the settings of
 * a location (ed_http_cache_loc_t, its key table ED_HTTP_CACHE_KEYS), a
 * request's cache state (ed_http_cache_req_t) and the calls an upstream
 * module makes at each step of its exchange. The lookup and serving are
 * ed_http_cache_lookup.c, storing ed_http_cache_store.c, detached
 * fetches ed_http_cache_bg.c (they run the location's own handler). */
#ifndef ED_HTTP_CACHE_REQ_H
#define ED_HTTP_CACHE_REQ_H

#include "ed_http_upstream.h"
#include "ed_http_cache.h"

/* The cache settings of a location (cache.md, In a proxy location),
 * embedded as `cache_conf` in the module's block struct. */
typedef struct {
    ed_str_t            cache_name;
    ed_http_template_t *cache_key;
    ed_array_t         *cache_valid;     /* ed_http_cache_valid_t */
    int                 cache_methods;   /* ED_CACHE_M_* */
    ed_array_t         *cache_bypass;    /* ed_http_template_t * */
    ed_array_t         *no_cache;        /* ed_http_template_t * */
    int                 cache_ignore;    /* ED_CACHE_IGN_* */
    ed_http_cache_lock_t *cache_lock;
    int                 use_stale;       /* ED_CACHE_STALE_* */
    int                 background_update;
    int                 revalidate;
    int                 min_uses;
    int                 purge;

    ed_http_cache_t    *cache;           /* NULL: no cache */
    /* The module's own settings the cache paces itself by (set at
     * attach): its buffer_size and read_timeout. */
    size_t              buffer_size;
    ed_msec_t           read_timeout;
} ed_http_cache_loc_t;

extern const ed_conf_bounds_t ed_http_cache_uses_bounds;

#define ED_HTTP_CACHE_KEY(type, name, flags, set, field, arg, def)           \
    { name, ED_CTX_LOCATION, flags, set, ED_CONF_LOC,                        \
      offsetof(type, cache_conf.field), arg, def }

/* The cache keys of a block whose struct `type` embeds `cache_conf`: one
 * table for every module that takes them (proxy, fastcgi). */
#define ED_HTTP_CACHE_KEYS(type)                                             \
    ED_HTTP_CACHE_KEY(type, "cache", ED_KEY_STR, ed_conf_set_str,           \
                      cache_name, NULL, NULL),                               \
    ED_HTTP_CACHE_KEY(type, "cache_key", ED_KEY_PTR,                        \
                      ed_http_set_key_template, cache_key, NULL,             \
                      "$scheme://$host$request_uri"),                        \
    ED_HTTP_CACHE_KEY(type, "cache_valid", ED_KEY_PTR,                      \
                      ed_http_cache_set_valid, cache_valid, NULL, NULL),     \
    ED_HTTP_CACHE_KEY(type, "cache_methods", ED_KEY_INT,                    \
                      ed_http_cache_set_methods, cache_methods, NULL,        \
                      "GET, HEAD"),                                          \
    ED_HTTP_CACHE_KEY(type, "cache_bypass", ED_KEY_PTR,                     \
                      ed_http_cache_set_templates, cache_bypass, NULL,       \
                      NULL),                                                 \
    ED_HTTP_CACHE_KEY(type, "no_cache", ED_KEY_PTR,                         \
                      ed_http_cache_set_templates, no_cache, NULL, NULL),    \
    ED_HTTP_CACHE_KEY(type, "cache_ignore_headers", ED_KEY_INT,             \
                      ed_http_cache_set_ignore, cache_ignore, NULL, NULL),   \
    ED_HTTP_CACHE_KEY(type, "cache_lock", ED_KEY_BLOCK, ed_conf_set_block,  \
                      cache_lock, &ed_http_cache_lock_block, NULL),          \
    ED_HTTP_CACHE_KEY(type, "use_stale", ED_KEY_INT,                        \
                      ed_http_cache_set_use_stale, use_stale, NULL, NULL),   \
    ED_HTTP_CACHE_KEY(type, "background_update", ED_KEY_INT,                \
                      ed_conf_set_bool, background_update, NULL, "true"),    \
    ED_HTTP_CACHE_KEY(type, "revalidate", ED_KEY_INT, ed_conf_set_bool,     \
                      revalidate, NULL, "true"),                             \
    ED_HTTP_CACHE_KEY(type, "min_uses", ED_KEY_INT, ed_conf_set_int,        \
                      min_uses, &ed_http_cache_uses_bounds, "1"),            \
    ED_HTTP_CACHE_KEY(type, "purge", ED_KEY_INT, ed_conf_set_bool, purge,   \
                      NULL, "false")

/* A block's check (ed_conf_block_t's): unset lists made empty, and the
 * keys that need `cache` refused without it (an error at the key,
 * naming the block). */
void ed_http_cache_loc_check(ed_conf_t *cf, ed_node_t *node,
                             ed_http_cache_loc_t *cl, const char *block);
/* At attach, with `cache` set: resolves it to a cache of `caches` (did
 * you mean), checks that `purge: true` has an access rule for PURGE,
 * and lets ranges of hits be cut. block is the module's block node.
 * ED_OK or ED_ERROR (recorded). */
int ed_http_cache_loc_resolve(ed_conf_t *cf, ed_http_cache_loc_t *cl,
                              ed_node_t *block, ed_http_location_t *loc);
/* Whether name is one of the keys that need `cache` (-T leaves them out
 * of a block without it). */
bool ed_http_cache_loc_key(const char *name);

/* Called when a request that waited for another one's fetch goes on:
 * rc is ED_DECLINED (go upstream) or what serving the entry returned. */
typedef void (*ed_http_cache_resume_pt)(ed_http_request_t *r,
                                              void *data, int rc);

/* A request's use of the cache (ed_http_cache_lookup.c). */
typedef struct {
    ed_http_request_t   *r;
    const ed_http_cache_loc_t *conf; /* the location's */
    ed_http_cache_t     *cache;
    ed_str_t             key;
    uint8_t              hash[ED_CACHE_HASH_LEN];  /* its file's */
    uint8_t              main_hash[ED_CACHE_HASH_LEN];  /* the key's */
    ed_str_t             vary;        /* the Vary names a marker gave */
    /* The marker's generation (its variants carry it: a new marker,
     * after a PURGE or another Vary, leaves older variants unused), and
     * the one of the marker this response writes. */
    uint64_t             gen;
    uint64_t             new_gen;
    int64_t              start;       /* the request's (unix msec): a
                                       * PURGE since keeps its response
                                       * out */
    ed_str_t             variant;     /* the request's values for them */
    uint32_t             uses;        /* of the key, min_uses */
    uint32_t             igen;        /* the index's generation of the
                                       * entry looked up (not a Vary
                                       * marker's): a 304 updates that
                                       * entry only */
    /* The entry found (stale, being revalidated), or served: from its
     * descriptor fd, or from file, held in the open-file cache with hit,
     * the worker's checked copy of its head (ed_http_cache_hit.c). */
    int                  fd;
    struct ed_http_file_s *file;
    struct ed_pc_hit_s  *hit;
    ed_http_cache_hdr_t  hdr;
    char                *prefix;
    size_t               read;        /* bytes of the file in prefix */
    /* The entry being written. */
    int                  tmp_fd;
    char                *tmp_path;
    char                *new_prefix;
    ed_http_cache_hdr_t  new_hdr;
    ed_str_t             new_vary;    /* Vary names of the response */
    ed_str_t             etag;        /* validators sent upstream */
    ed_str_t             ims;
    char                 ims_buf[32];
    uint64_t             written;
    /* Body bytes not written yet (ed_http_cache_store.c): they go to the
     * file in pieces ending at ED_CACHE_STAGE boundaries of it, or after
     * ED_CACHE_STAGE_MSEC (stage_timer) for its followers. */
    char                *stage;
    size_t               staged;
    size_t               stage_size;
    ed_timer_t           stage_timer;
    /* A 304's update copying a large body (ed_http_cache_update.c), and
     * the head it serves once done. */
    struct ed_pc_update_s *update;
    ed_http_cache_hdr_t *upd_hdr;
    char                *upd_prefix;
    uint64_t             seen;        /* body bytes from the upstream */
    int                  sfd;         /* a waiter's: the fetch's file */
    int                  sfd_prev;    /* the one before a swap: ranges of
                                       * it may still be queued */
    uint64_t             soff;        /* body bytes it streamed */
    unsigned             sgone;       /* ED_CACHE_WAIT_GONE bits seen */
    int64_t              range_start; /* a miss's single Range, cut from */
    int64_t              range_end;   /* the stream (ranged set) */
    /* cache_lock: the fill this request holds (lock_hash, its temp
     * file's serial), or the one it waits for. */
    uint8_t              lock_hash[ED_CACHE_HASH_LEN];
    uint32_t             serial;
    ed_http_cache_waiter_t waiter;
    ed_http_cache_resume_pt resume;
    void                *resume_data;
    const char          *detail;      /* why not stored, known early */
    void                *bg;          /* a background refresh's state */
    /* A miss's fill handed to a detached fetch (cache.md, Misses): the
     * client follows the fetch's file (fill set), the fetch tells it
     * what happens (initiator set). Either side's cleanup clears both
     * pointers. */
    void                *fill;        /* the client's: the fetch's c */
    void                *initiator;   /* the fetch's: the client's c */
    char                *fill_cs;     /* Cache-Status the fetch gave */
    uint64_t             lag;         /* a private file's bound */
    uint64_t             punched;     /* its start given back */
    ed_str_t            *cookies;     /* Set-Cookie of a stored response */
    size_t               ncookies;    /* (ignored): for the client only */
    int                  fail_cond;   /* the fetch failed before a head: */
    int                  fail_status; /* what the client answers with */
    const char          *fwd;         /* Cache-Status fwd= */
    const char          *status;      /* $upstream_cache_status */
    unsigned             lookup:1;    /* looked up: may store */
    unsigned             may_store:1; /* looked up or bypassed */
    unsigned             no_store:1;  /* request no-store, no_cache */
    unsigned             marker:1;    /* the key has a Vary marker */
    unsigned             revalidating:1;
    unsigned             store:1;     /* writing tmp_fd */
    unsigned             locked:1;    /* holds the key's fill */
    unsigned             stale:1;     /* fd is a stale entry */
    unsigned             ranged:1;
    unsigned             streaming:1; /* a waiter streaming the fetch */
    unsigned             no_stream:1;
    unsigned             waiting:1;
    unsigned             handed:1;    /* a fetch a client handed a fill */
    unsigned             following:1; /* a client following its fill */
    unsigned             spool:1;     /* tmp_fd: a response not stored,
                                       * for the initiator only */
    unsigned             unstored:1;  /* past max_entry_size: written on
                                       * for its followers, not kept */
    unsigned             fill_stored:1; /* the fill is being stored */
    unsigned             failed:1;    /* fail_* set */
    unsigned             fail_fetch:1;
} ed_http_cache_req_t;

/* The lookup, before any upstream is tried: ED_OK (a hit was served),
 * ED_DECLINED (go upstream; *cp is the request's cache state, NULL
 * without a cache), ED_AGAIN (it waits for another request's fetch of
 * the key: resume(r, data, rc) is called later), or a status. */
int ed_http_cache_start(ed_http_request_t *r,
                        const ed_http_cache_loc_t *conf,
                        ed_http_cache_req_t **cp,
                        ed_http_cache_resume_pt resume,
                        void *data);
/* The fetch failed before a response went out: cond is the
 * ED_CACHE_STALE_* condition, fetch whether it is a failure to fetch
 * (error, timeout) rather than an error status, status what the request
 * answers otherwise. Returns ED_DECLINED
 * (answer as usual), or the result of serving the stale entry, or 504
 * (a stale must-revalidate entry that could not be revalidated). */
int ed_http_cache_failed(ed_http_request_t *r, ed_http_cache_req_t *c,
                         int cond, bool fetch, int status);
/* Whether c's fetch is the cache's own (a GET, HEAD converted, without
 * Range, If-Range nor the client's conditions: eddy applies them to the
 * stored response); revalidating a stale entry, *inm and *ims get its
 * validators to send (NULL: none). For a module that builds its request
 * itself: fastcgi passes them as HTTP_IF_NONE_MATCH and
 * HTTP_IF_MODIFIED_SINCE. */
bool ed_http_cache_fetch(ed_http_cache_req_t *c, const ed_str_t **inm,
                         const ed_str_t **ims);
/* The upstream request of a cache fetch (proxy). */
void ed_http_cache_request(ed_http_cache_req_t *c,
                           ed_http_upstream_req_t *q);
/* The response head is in: whether to store it (a temp file is opened),
 * and Cache-Status. close: the body is close-delimited. ED_OK or
 * ED_ERROR (ENOMEM). */
int ed_http_cache_response(ed_http_request_t *r,
                           const ed_http_cache_loc_t *conf,
                           ed_http_cache_req_t *c,
                           const ed_http_resp_head_t *h, bool close);
/* A 304 answered a revalidation: the entry is refreshed and served.
 * ED_OK, ED_ERROR or a status for ed_http_finalize; or ED_AGAIN: the
 * body of a large entry is copied a step per loop turn, and the cache
 * finalizes r when it is over. */
int ed_http_cache_revalidated(ed_http_request_t *r,
                              const ed_http_cache_loc_t *conf,
                              ed_http_cache_req_t *c,
                              const ed_http_resp_head_t *h);
/* Body bytes of a response being stored. */
void ed_http_cache_body(ed_http_request_t *r, ed_http_cache_req_t *c,
                        const char *p, size_t n);
/* A slice of the upstream's body: stored, and passed to the client (the
 * part inside a miss's Range). ED_OK, or ED_DECLINED when the client's
 * side failed. */
int ed_http_cache_slice(ed_http_request_t *r, ed_http_cache_req_t *c,
                        const char *p, size_t n);
/* The answer is one the cache cannot store (fastcgi's local redirect):
 * the waiters go at once, and for 30 s nobody queues for the key
 * (hit-for-miss). */
void ed_http_cache_not_stored(ed_http_cache_req_t *c);
/* The whole body arrived: the entry is put in place. */
void ed_http_cache_done(ed_http_request_t *r,
                        ed_http_cache_req_t *c);
/* The ED_CACHE_STALE_* condition of an attempt's failure of kind ft
 * (ED_HTTP_UPS_FT_*), and of an upstream's status (0: none). */
int ed_http_cache_stale_cond(int ft);
int ed_http_cache_stale_status(int status);
/* Ends the worker's detached fetches still under way (its exit). */
void ed_http_cache_bg_exit(void);

#endif /* ED_HTTP_CACHE_REQ_H */
