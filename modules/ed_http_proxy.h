/* The proxy module's private declarations, shared by its
 * configuration (ed_http_proxy_conf.c) and its handler
 * (ed_http_proxy.c). */
#ifndef ED_HTTP_PROXY_H
#define ED_HTTP_PROXY_H

#include "ed_http_upstream.h"
#include "ed_http_explain.h"
#include "ed_http_cache.h"

typedef struct {
    ed_str_t            name;
    ed_http_template_t *value;
} ed_http_proxy_header_t;

typedef struct {
    ed_node_t          *node;        /* the block (ed_conf_block_t) */
    ed_str_t            pass;
    ed_msec_t           connect_timeout;
    ed_msec_t           send_timeout;
    ed_msec_t           read_timeout;
    int                 next_upstream;   /* ED_HTTP_UPS_NEXT_* mask */
    int                 next_upstream_tries;
    int                 pass_host;
    ed_array_t         *set_headers;     /* ed_http_proxy_header_t */
    ed_array_t         *remove_headers;  /* ed_str_t */
    int                 forwarded;
    size_t              buffer_size;
    int                 websocket;
    int                 tls_verify;
    ed_str_t            tls_ca;
    ed_str_t            tls_server_name;
    /* The cache (cache.md, In a proxy location). */
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

    ed_http_upstream_t *ups;
    ed_http_upstream_tls_t *tls;         /* an https pass */
    ed_http_cache_t    *cache;           /* NULL: no cache */
    ed_str_t            uri;             /* path of a URL pass */
    unsigned            has_uri:1;
} ed_http_proxy_conf_t;

typedef struct {
    ed_http_proxy_conf_t *block;  /* `proxy` in this location, or NULL */
} ed_http_proxy_loc_conf_t;

extern ed_module_t ed_http_proxy_module;

/* Called when a request that waited for another one's fetch goes on:
 * rc is ED_DECLINED (go upstream) or what serving the entry returned. */
typedef void (*ed_http_proxy_cache_resume_pt)(ed_http_request_t *r,
                                              void *data, int rc);

/* A request's use of the cache (ed_http_proxy_cache.c). */
typedef struct {
    ed_http_request_t   *r;
    ed_http_proxy_conf_t *pcf;
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
    /* The entry found (stale, being revalidated), or served: from its
     * descriptor fd, or from file, held in the open-file cache with hit,
     * the worker's checked copy of its head (ed_http_proxy_cache_hit.c). */
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
    ed_http_proxy_cache_resume_pt resume;
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
} ed_http_proxy_cache_t;

/* The lookup, before any upstream is tried: ED_OK (a hit was served),
 * ED_DECLINED (go upstream; *cp is the request's cache state, NULL
 * without a cache), ED_AGAIN (it waits for another request's fetch of
 * the key: resume(r, data, rc) is called later), or a status. */
int ed_http_proxy_cache_start(ed_http_request_t *r,
                              ed_http_proxy_conf_t *pcf,
                              ed_http_proxy_cache_t **cp,
                              ed_http_proxy_cache_resume_pt resume,
                              void *data);
/* The fetch failed before a response went out: cond is the
 * ED_CACHE_STALE_* condition, fetch whether it is a failure to fetch
 * (error, timeout) rather than an error status, status what the request
 * answers otherwise. Returns ED_DECLINED
 * (answer as usual), or the result of serving the stale entry, or 504
 * (a stale must-revalidate entry that could not be revalidated). */
int ed_http_proxy_cache_failed(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                               int cond, bool fetch, int status);
/* The upstream request of a cache fetch. */
void ed_http_proxy_cache_request(ed_http_proxy_cache_t *c,
                                 ed_http_upstream_req_t *q);
/* The response head is in: whether to store it (a temp file is opened),
 * and Cache-Status. close: the body is close-delimited. ED_OK or
 * ED_ERROR (ENOMEM). */
int ed_http_proxy_cache_response(ed_http_request_t *r,
                                 ed_http_proxy_conf_t *pcf,
                                 ed_http_proxy_cache_t *c,
                                 const ed_http_resp_head_t *h, bool close);
/* A 304 answered a revalidation: the entry is refreshed and served.
 * ED_OK, ED_ERROR or a status. */
int ed_http_proxy_cache_revalidated(ed_http_request_t *r,
                                    ed_http_proxy_conf_t *pcf,
                                    ed_http_proxy_cache_t *c,
                                    const ed_http_resp_head_t *h);
/* Body bytes of a response being stored. */
void ed_http_proxy_cache_body(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                              const char *p, size_t n);
/* A slice of the upstream's body: stored, and passed to the client (the
 * part inside a miss's Range). ED_OK, or ED_DECLINED when the client's
 * side failed. */
int ed_http_proxy_cache_slice(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                              const char *p, size_t n);
/* The whole body arrived: the entry is put in place. */
void ed_http_proxy_cache_done(ed_http_request_t *r,
                              ed_http_proxy_cache_t *c);

/* The content handler of a location with a `proxy` block. */
int ed_http_proxy_handler(ed_http_request_t *r);
/* Fills q, the upstream request head's settings that come from pcf:
 * Host (the client's with pass_host, else server_host), target,
 * Forwarded, keep-alive and the header set and remove lists, the set
 * values evaluated for r. ED_OK, or ED_ERROR with *bad the set_headers
 * entry that cannot be evaluated (NULL: out of memory). The caller sets
 * the body and upgrade fields. */
int ed_http_proxy_request_init(ed_http_request_t *r,
                               const ed_http_proxy_conf_t *pcf,
                               const ed_str_t *server_host,
                               ed_http_upstream_req_t *q,
                               const ed_http_proxy_header_t **bad);
/* eddy explain: the upstream, the target and the head it would get
 * (ed_http_proxy_explain.c). */
int ed_http_proxy_explain(ed_explain_t *ex);

#endif /* ED_HTTP_PROXY_H */
