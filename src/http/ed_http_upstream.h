/* Upstream groups: servers, balancing, keep-alive pools, passive and
 * active health, and the parser of upstream response heads. */
#ifndef ED_HTTP_UPSTREAM_H
#define ED_HTTP_UPSTREAM_H

#include "ed_http.h"
#include "ed_tls.h"

#include <stdatomic.h>
#include <sys/socket.h>

enum {
    ED_HTTP_BALANCE_ROUND_ROBIN = 0,
    ED_HTTP_BALANCE_LEAST_CONN,
    ED_HTTP_BALANCE_IP_HASH,
    ED_HTTP_BALANCE_HASH,
    ED_HTTP_BALANCE_RANDOM_TWO
};

/* The state of one server that every worker sees (shared memory). */
typedef struct {
    _Atomic int64_t   next_check;  /* monotonic msec of the next check */
    _Atomic uint32_t  down;        /* active health check says down */
    _Atomic uint32_t  fails;       /* consecutive failed checks */
    _Atomic uint32_t  passes;      /* consecutive passed checks */
    _Atomic uint32_t  checked;     /* at least one check ran */
    _Atomic uint64_t  requests;    /* attempts sent to the server */
    _Atomic uint64_t  failures;    /* attempts that failed */
    /* Attempts by time to the response head (or to the failure), for
     * status: counts per bucket of ed_http_upstream_time_bounds, the
     * last one open-ended, and the sum of the times in msec. */
    _Atomic uint64_t  time_hist[12];
    _Atomic uint64_t  time_sum;
} ed_http_upstream_shm_t;

/* Upper bounds (msec) of the response-time buckets but the last. */
#define ED_HTTP_UPSTREAM_TIME_BOUNDS                                         \
    { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 }

/* Counts one attempt of ms in the server's histogram. */
static inline void
ed_http_upstream_time(ed_http_upstream_shm_t *shm, ed_msec_t ms)
{
    static const ed_msec_t bounds[] = ED_HTTP_UPSTREAM_TIME_BOUNDS;
    size_t                 i = 0;

    if (shm == NULL) {
        return;
    }
    while (i < sizeof(bounds) / sizeof(bounds[0]) && ms > bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&shm->time_hist[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&shm->time_sum, (uint64_t)ms,
                              memory_order_relaxed);
}

typedef struct ed_http_upstream_s ed_http_upstream_t;
typedef struct ed_http_upstream_conn_s ed_http_upstream_conn_t;

/* TLS to the servers of a group (an https pass). */
typedef struct {
    SSL_CTX       *ctx;
    ed_str_t       name;      /* tls_server_name; empty: each server's
                               * host without its port */
    unsigned       verify:1;
    SSL_SESSION  **sessions;  /* per server, per worker: to resume */
} ed_http_upstream_tls_t;

/* One server (one address) of a group. The mutable fields are each
 * worker's own (copies of the cycle's memory after fork). */
typedef struct {
    ed_str_t                 name;      /* address text, for logs/$vars */
    ed_str_t                 host;      /* Host for pass_host: false */
    struct sockaddr_storage  addr;
    socklen_t                addrlen;
    int                      weight;
    int                      max_fails; /* 0: passive checks off */
    ed_msec_t                fail_timeout;
    unsigned                 backup:1;
    ed_http_upstream_shm_t  *shm;

    /* Per worker. */
    int                      current_weight;  /* smooth round robin */
    unsigned                 conns;           /* requests in flight */
    unsigned                 fails;           /* within fail_timeout */
    ed_msec_t                fail_start;
    ed_msec_t                down_until;      /* passive: out until */
} ed_http_upstream_server_t;

/* A point of the consistent-hash ring. */
typedef struct {
    uint32_t hash;
    uint32_t server;   /* index into servers */
} ed_http_upstream_point_t;

/* A group's `health_check:` block. */
typedef struct {
    ed_node_t *node;
    ed_str_t   path;
    ed_msec_t  interval;
    ed_msec_t  timeout;
    int        fails;
    int        passes;
    int        status_min;
    int        status_max;
} ed_http_upstream_check_t;

struct ed_http_upstream_s {
    ed_str_t                   name;
    ed_node_t                 *node;
    int                        balance;    /* ED_HTTP_BALANCE_* */
    ed_http_template_t        *hash_key;
    int                        keepalive;  /* idle connections kept */
    ed_msec_t                  keepalive_timeout;
    ed_array_t                *items;      /* `servers`: blocks of
                                            * ed_http_upstream_item_t */
    ed_http_upstream_check_t  *check;      /* NULL: no active checks */
    ed_http_upstream_server_t *servers;    /* primary first, then backup */
    size_t                     nservers;
    size_t                     nprimary;
    ed_http_upstream_point_t  *points;     /* hash: sorted ring */
    size_t                     npoints;
    ed_http_upstream_tls_t    *tls;        /* health checks: as the
                                            * first https pass */
    unsigned                   implicit:1; /* made for a URL in `pass` */
    /* The handler whose `pass` names the group ("proxy", "fastcgi"):
     * one protocol per group. NULL: none yet. */
    const char                *protocol;

    /* Per worker: idle keep-alive connections, most recent first. */
    ed_http_upstream_conn_t   *idle;
    size_t                     nidle;
};

/* A connection to an upstream server. Lives on the heap: it outlives
 * requests while idle in its group's pool. */
struct ed_http_upstream_conn_s {
    ed_conn_t                  c;         /* stream; counted by the worker */
    ed_http_upstream_t        *ups;
    ed_http_upstream_server_t *server;
    const ed_http_upstream_tls_t *tls;    /* NULL: plain */
    ed_http_upstream_conn_t   *next;      /* idle list */
    ed_http_upstream_conn_t   *prev;
    ed_timer_t                 timer;     /* idle: keepalive_timeout */
    void                      *owner;
    /* The result of connect(): ED_OK or ED_ERROR (errno set). Returns
     * ED_OK, or ED_DONE when it closed uc (always so on ED_ERROR). */
    int                      (*on_connect)(ed_http_upstream_conn_t *uc,
                                           int rc);
    ed_event_pt                stream_handler; /* while connecting */
    unsigned                   requests;  /* requests sent on it */
    unsigned                   connecting:1;
    unsigned                   idle:1;
};

/* A parsed upstream response head; strings point into the buffer. */
typedef struct {
    int               version;        /* 10 or 11 */
    int               status;
    ed_str_t          reason;
    ed_http_header_t *headers;
    size_t            nheaders;
    int64_t           content_length; /* -1 when absent */
    ed_str_t          content_type;
    ed_str_t          upgrade;
    unsigned          chunked:1;
    unsigned          conn_close:1;
    unsigned          conn_keepalive:1;
    unsigned          conn_upgrade:1;
    size_t            head_len;
} ed_http_resp_head_t;

/* What $upstream_* report: one entry per attempt. */
typedef struct {
    ed_str_t   addr;
    int        status;     /* 0: no response (shown as 502 or 504) */
    ed_msec_t  msec;
} ed_http_upstream_try_t;

struct ed_http_upstream_state_s {
    ed_http_upstream_try_t tries[8];
    size_t                 ntries;
    void                  *owner;    /* the proxy's context */
    void                  *tunnel;   /* after a 101 */
    /* For the error log's "upstream: SCHEME://PEER/TARGET"
     * (ed_http_log_ctx): "http://" or "https://" (NULL: not proxied),
     * the server of the current attempt (the group's name before one is
     * chosen), and the head last sent upstream (empty before). */
    const char            *scheme;
    ed_str_t               peer;
    ed_str_t               head;
    /* $upstream_cache_status (HIT, MISS, ...); NULL: not looked up. */
    const char            *cache_status;
    /* The cache state a background refresh starts with. */
    void                  *cache;
};

extern ed_module_t ed_http_upstream_module;

/* The group of that name, or NULL. */
ed_http_upstream_t *ed_http_upstream_find(ed_conf_t *cf, const ed_str_t *name);
/* Makes a group for the URL of a `pass`: every address addr ("host:port"
 * or "unix:/path") resolves to, with host as their Host header. NULL
 * after recording an error at node. */
ed_http_upstream_t *ed_http_upstream_add_url(ed_conf_t *cf, ed_node_t *node,
                                             const char *addr,
                                             const char *host);
/* Resolves "host:port", "[v6]:port" or "unix:/path" (text as written is
 * each server's Host) into server slots appended to a (several for a
 * name with several addresses). ED_OK, or ED_ERROR with a message in
 * *err. */
int ed_http_upstream_resolve(ed_pool_t *pool, const char *text,
                             ed_array_t *a, const char **err);

/* Builds a group's derived state (backup order, ring) once its servers
 * are set (ed_http_upstream_balance.c). ED_OK or ED_ERROR (ENOMEM). */
int ed_http_upstream_init(ed_pool_t *pool, ed_http_upstream_t *ups);

/* Balancing: picks an available server not marked in tried (a bitmap of
 * nservers bits, may be NULL); hash is the request's key hash for
 * ip_hash and hash. Backup servers are chosen only when no primary one
 * is available. Returns the server's index, or -1 when none is left. */
int ed_http_upstream_pick(ed_http_upstream_t *ups, uint32_t hash,
                          const uint8_t *tried, ed_msec_t now);
/* next_upstream: the failures after which another server is tried
 * (proxy and fastcgi alike). */
#define ED_HTTP_UPS_NEXT_ERROR   0x01
#define ED_HTTP_UPS_NEXT_TIMEOUT 0x02
#define ED_HTTP_UPS_NEXT_502     0x04
#define ED_HTTP_UPS_NEXT_503     0x08
#define ED_HTTP_UPS_NEXT_504     0x10

/* Config setter of next_upstream (an int of ED_HTTP_UPS_NEXT_* bits): a
 * list, or a comma-separated scalar, of error, timeout, 502, 503, 504
 * (or http_502...), or off. */
const char *ed_http_upstream_set_next(ed_conf_t *cf, const ed_key_t *key,
                                      ed_node_t *node, void *conf);

/* The next server of a request's attempt chain (proxy, fastcgi): picks
 * one not marked in tried, marks it, counts *tries and the server's
 * requests, sets r->upstream's peer and opens its entry in the tries
 * list (*try; NULL once the list is full). Returns the server, or NULL
 * when none is left ("no live upstreams" logged when none was tried). */
ed_http_upstream_server_t *ed_http_upstream_next(ed_http_request_t *r,
    ed_http_upstream_t *ups, uint32_t hash, uint8_t *tried, unsigned *tries,
    ed_http_upstream_try_t **try);
/* One request's attempts on a group, as proxy and fastcgi make them
 * (ed_http_upstream_attempt.c): the servers tried, the current one and
 * its connection, the upstream timer and the next_upstream rules. The
 * handler's context embeds it and gives the step that starts one
 * exchange on a.server (a pooled connection when allowed); ED_AGAIN,
 * ED_ERROR (connect failed at once, errno set), or a status. */
typedef struct ed_http_upstream_attempts_s ed_http_upstream_attempts_t;
typedef int (*ed_http_upstream_attempt_pt)(ed_http_upstream_attempts_t *a,
                                           bool pooled);

/* How an attempt failed. */
enum {
    ED_HTTP_UPS_FT_ERROR = 1,  /* connect/reset/closed before a response */
    ED_HTTP_UPS_FT_TIMEOUT,    /* connect, send or read timeout */
    ED_HTTP_UPS_FT_INVALID,    /* an invalid response */
    ED_HTTP_UPS_FT_STATUS      /* a 502/503/504 listed in next_upstream */
};

/* What the upstream timer stands for. */
enum {
    ED_HTTP_UPS_T_CONNECT = 1,
    ED_HTTP_UPS_T_SEND,
    ED_HTTP_UPS_T_READ
};

struct ed_http_upstream_attempts_s {
    ed_http_request_t           *r;
    ed_http_upstream_t          *ups;
    ed_http_upstream_conn_t     *uc;
    ed_http_upstream_server_t   *server;
    ed_http_upstream_try_t      *try;      /* its $upstream_* entry */
    uint8_t                     *tried;    /* a bit per server */
    uint32_t                     hash;     /* ip_hash, hash */
    unsigned                     tries;
    unsigned                     max_tries; /* next_upstream_tries; 0: any */
    int                          next;     /* ED_HTTP_UPS_NEXT_* */
    int                          fail_status; /* 502 or 504 at the end */
    ed_msec_t                    start;    /* of the attempt */
    ed_timer_t                   timer;    /* the handler's handler */
    int                          kind;     /* ED_HTTP_UPS_T_* */
    ed_http_upstream_attempt_pt  attempt;
    unsigned                     reused:1; /* uc came from the pool */
};

/* Sets a up for r on ups (its tried bitmap in r's pool). ED_OK or
 * ED_ERROR (ENOMEM). */
int ed_http_upstream_attempts_init(ed_http_upstream_attempts_t *a,
                                   ed_http_request_t *r,
                                   ed_http_upstream_t *ups, int next,
                                   int max_tries,
                                   ed_http_upstream_attempt_pt attempt,
                                   ed_timer_pt on_timer, void *data);
/* The request's key for ip_hash and hash. ED_OK or ED_ERROR. */
int ed_http_upstream_attempts_keyed(ed_http_upstream_attempts_t *a);
static inline int
ed_http_upstream_attempts_hash(ed_http_upstream_attempts_t *a)
{
    return a->ups->balance == ED_HTTP_BALANCE_IP_HASH
           || a->ups->balance == ED_HTTP_BALANCE_HASH
           ? ed_http_upstream_attempts_keyed(a) : ED_OK;
}
/* Picks servers until an attempt is under way: ED_AGAIN, or the status
 * to answer with (a failed connect is logged, counted and followed by
 * the next server when next_upstream has error). */
int ed_http_upstream_attempts_next(ed_http_upstream_attempts_t *a);
/* Opens the attempt's connection to a->server, owned by owner: a pooled
 * one when pooled and one is idle (ED_OK, a->reused), else a new one
 * (ED_AGAIN: on_connect tells; ED_OK when it connected at once), or
 * ED_ERROR (errno). */
int ed_http_upstream_attempts_open(ed_http_upstream_attempts_t *a,
                                   bool pooled,
                                   const ed_http_upstream_tls_t *tls,
                                   void *owner,
                                   int (*on_connect)(
                                       ed_http_upstream_conn_t *uc, int rc));
/* Closes the attempt's connection (never to be reused). */
void ed_http_upstream_attempts_close(ed_http_upstream_attempts_t *a);
/* Gives the connection back to the pool when keep, else closes it. */
void ed_http_upstream_attempts_release(ed_http_upstream_attempts_t *a,
                                       bool keep);
/* Logs that connecting to a->server failed (errno). */
void ed_http_upstream_attempts_connect_failed(ed_http_upstream_attempts_t *a);
/* The attempt failed (kind ft, status): its timer and connection go,
 * its entry and the server's health (unless for a status) say so, and
 * fail_status becomes 504 for a timeout, else 502. */
void ed_http_upstream_attempts_failed(ed_http_upstream_attempts_t *a, int ft,
                                      int status);
/* The attempt is over with status: its $upstream_* entry and the
 * server's response time. */
static inline void
ed_http_upstream_attempts_end(ed_http_upstream_attempts_t *a, int status)
{
    if (a->try) {
        a->try->status = status;
        a->try->msec = ed_current_msec - a->start;
        ed_http_upstream_time(a->server->shm, a->try->msec);
    }
}
/* Whether next_upstream lets a failure of kind ft (status for
 * ED_HTTP_UPS_FT_STATUS) go to another server before the response head
 * went out; the caller still asks whether the request may be resent. */
bool ed_http_upstream_attempts_retry(ed_http_upstream_attempts_t *a, int ft,
                                     int status);
/* Whether a response with status is one next_upstream moves past while
 * another server is left to try. */
bool ed_http_upstream_attempts_status(ed_http_upstream_attempts_t *a,
                                      int status);
/* Arms the upstream timer for kind. */
static inline void
ed_http_upstream_attempts_timer(ed_http_upstream_attempts_t *a, int kind,
                                ed_msec_t t)
{
    a->kind = kind;
    ed_timer_add(ed_worker->loop, &a->timer, t);
}
/* Logs that the timer of the current kind fired. */
void ed_http_upstream_attempts_timed_out(ed_http_upstream_attempts_t *a);
/* Whether r's method may be sent twice (RFC 9110 9.2.2). */
bool ed_http_upstream_idempotent(ed_http_request_t *r);

/* Whether a server may be chosen now (health, passive and active). */
bool ed_http_upstream_available(const ed_http_upstream_server_t *s,
                                ed_msec_t now);
/* Passive health: an attempt on s failed or succeeded. r is the request
 * whose attempt failed, for the log's context (NULL: none). */
void ed_http_upstream_failed(ed_http_upstream_t *ups,
                             ed_http_upstream_server_t *s, ed_msec_t now,
                             ed_http_request_t *r);
void ed_http_upstream_succeeded(ed_http_upstream_server_t *s);
/* The 32-bit hash used for keys and the ring (MurmurHash3). */
uint32_t ed_http_upstream_hash(const void *data, size_t len);
/* The per-worker random number generator (xorshift), for random_two. */
uint64_t ed_http_upstream_random(void);
/* Mixes seed into it (each worker at start, so that workers differ). */
void ed_http_upstream_seed(uint64_t seed);

/* Connections. Takes an idle connection to server s with the TLS
 * settings tls (NULL: plain) from the pool, or NULL. The caller owns it
 * (and sets its callbacks). */
ed_http_upstream_conn_t *ed_http_upstream_get_idle(
    ed_http_upstream_t *ups, ed_http_upstream_server_t *s,
    const ed_http_upstream_tls_t *tls);
/* Opens a new connection to s, over TLS when tls is not NULL (the
 * handshake runs with the first write): ED_OK (connected), ED_AGAIN
 * (on_connect is called later with ED_OK or ED_ERROR, errno set), or
 * ED_ERROR (errno set; *ucp is NULL). */
int ed_http_upstream_connect(ed_http_upstream_t *ups,
                             ed_http_upstream_server_t *s,
                             const ed_http_upstream_tls_t *tls, void *owner,
                             int (*on_connect)(ed_http_upstream_conn_t *uc,
                                               int rc),
                             ed_http_upstream_conn_t **ucp);
/* Gives a connection back after a complete exchange: kept idle when the
 * group keeps connections and the worker is not quitting, else closed. */
void ed_http_upstream_release(ed_http_upstream_conn_t *uc);
/* Closes and frees a connection. */
void ed_http_upstream_close(ed_http_upstream_conn_t *uc);

/* Active health checks (ed_http_upstream_check.c): starts the checks of
 * every group of groups (ed_http_upstream_t *) in this worker; ED_OK or
 * ED_ERROR. Stop frees them at exit. */
int ed_http_upstream_check_start(ed_worker_t *w, ed_array_t *groups);
void ed_http_upstream_check_stop(ed_worker_t *w);

/* Relays bytes both ways between the client of r and uc after a 101,
 * reading at most piece bytes at a time, each direction paused while the
 * other side is above its high water mark; a client's half-close is
 * passed on. Ends when either side closes or fails, or after idle ms
 * without a byte (0: never): then done(data) is called, last, and the
 * caller closes uc and finalizes r. ED_OK or ED_ERROR (ENOMEM). */
int ed_http_upstream_tunnel(ed_http_request_t *r, ed_http_upstream_conn_t *uc,
                            size_t piece, ed_msec_t idle,
                            void (*done)(void *data), void *data);

/* Request heads (ed_http_upstream_request.c). */
enum {
    ED_HTTP_UPS_BODY_NONE = 0,
    ED_HTTP_UPS_BODY_LENGTH,   /* the client's Content-Length */
    ED_HTTP_UPS_BODY_CHUNKED
};

/* What makes the request head sent upstream besides the request. */
typedef struct {
    const ed_str_t *host;        /* the Host value */
    const ed_str_t *uri;         /* replaces the location's prefix in the
                                  * normalised path; NULL: the target as
                                  * received */
    const ed_str_t *set_names;   /* set_headers, values evaluated; they
                                  * replace the forwarding headers too */
    const ed_str_t *set_values;
    size_t          nset;
    const ed_str_t *remove;      /* names never forwarded */
    size_t          nremove;
    int             body;        /* ED_HTTP_UPS_BODY_* */
    /* A cache fetch (cache.md): validators of a stored entry to send,
     * NULL when none. */
    const ed_str_t *if_none_match;
    const ed_str_t *if_modified_since;
    /* A cache fetch: a GET (HEAD converted) without Range, If-Range and
     * the client's conditional headers: eddy applies them itself. */
    unsigned        cache:1;
    unsigned        forwarded:1; /* X-Forwarded-*, X-Real-IP */
    unsigned        keepalive:1; /* else Connection: close */
    unsigned        websocket:1; /* Upgrade: websocket, to tunnel */
} ed_http_upstream_req_t;

/* Builds the head for r: HTTP/1.1, the client's end-to-end headers (not
 * the hop-by-hop ones, nor those its Connection names: never its
 * Upgrade nor HTTP2-Settings), then q's. Its size is counted by the
 * code that writes it. In r's pool; NULL on ENOMEM, else the length in
 * *len. */
char *ed_http_upstream_request_head(ed_http_request_t *r,
                                    const ed_http_upstream_req_t *q,
                                    size_t *len);
/* Whether a request header name is one the proxy writes itself or never
 * passes on (Host, framing, hop-by-hop, Expect): set_headers cannot set
 * it. */
bool ed_http_upstream_own_header(const ed_str_t *name);
/* Whether r asks for WebSocket, the only upgrade relayed: HTTP/1.1 GET
 * without a body, Connection naming upgrade, and the token websocket
 * (any case) in its Upgrade list. */
bool ed_http_upstream_websocket_asked(ed_http_request_t *r);
/* Whether a 101 switches to WebSocket: its Upgrade fields together list
 * websocket and nothing else. */
bool ed_http_upstream_websocket_accepted(const ed_http_resp_head_t *h);
/* For an HTTP/2 extended CONNECT (RFC 8441), whose key eddy made: the
 * 101's Sec-WebSocket-Accept is the one that key asks for (RFC 6455
 * 4.2.2). */
bool ed_http_upstream_websocket_accept_ok(ed_http_request_t *r,
                                          const ed_http_resp_head_t *h);
/* Whether an upstream response header stops at the proxy: hop-by-hop
 * ones, those Connection names, framing, Content-Type (passed apart),
 * Date and Server (the proxy's own). */
bool ed_http_upstream_skip_response_header(const ed_http_resp_head_t *h,
                                           const ed_str_t *name);

/* Parses one complete response head buf[0..len) (as found by
 * ed_http_head_end) into h, using hdrs[0..max_headers) for the fields.
 * Returns ED_OK, or ED_ERROR for anything invalid (status line, field
 * syntax, framing conflicts, too many fields). */
int ed_http_parse_response(const char *buf, size_t len,
                           ed_http_resp_head_t *h, ed_http_header_t *hdrs,
                           size_t max_headers);

#endif /* ED_HTTP_UPSTREAM_H */
