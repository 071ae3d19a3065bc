/* HTTP: servers, locations, requests, and the API handlers use. */
#ifndef ED_HTTP_H
#define ED_HTTP_H

#include "ed_conn.h"
#include "ed_http_parse.h"
#include "ed_http_fields.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef struct ed_http_template_s ed_http_template_t;
typedef struct ed_http_body_s ed_http_body_t;
typedef struct ed_http_upstream_state_s ed_http_upstream_state_t;
typedef struct ed_http_out_s ed_http_out_t;
typedef struct ed_http_proto_s ed_http_proto_t;

/* A content handler: returns ED_OK when the whole response is queued,
 * ED_AGAIN when it goes on asynchronously (it calls ed_http_finalize
 * later), ED_ERROR to drop the connection, or an HTTP status (>= 300)
 * for core to answer with an error response. */
typedef int (*ed_http_handler_pt)(ed_http_request_t *r);

/* A piece of a response body: len bytes in memory at data (fd < 0), or
 * len bytes of the open file fd from off (sent with sendfile where the
 * connection allows; the descriptor must stay open until the request
 * ends, which core delays until the bytes are written). */
typedef struct {
    const char *data;
    size_t      len;
    int         fd;
    int64_t     off;
} ed_http_piece_t;

typedef struct ed_http_filter_s ed_http_filter_t;
typedef struct ed_http_link_s ed_http_link_t;

/* An output filter (ed_http_output.c). A location's filters form a chain
 * in modules/modules.list order, built at config load by the modules'
 * attach (ed_http_filter_add); a location without filters pays one
 * compare per response.
 * - header runs once per response, when its head is built (status final),
 *   in chain order: it may edit status, content_type, content_length and
 *   headers_out, and take the body over for this response with
 *   ed_http_filter_start. NULL: none. Returns ED_OK or ED_ERROR (ENOMEM).
 * - body sees, in order, what the filters before it pass on: pieces, then
 *   p NULL with last set once at the end. It passes what it makes on with
 *   ed_http_filter_next (last included). Returns ED_OK or ED_ERROR. Its
 *   state (link->ctx) lives in the request pool.
 * - memory: the body part needs bytes in memory; core reads file pieces
 *   for it (bounded, paced by the client) before the chain. */
struct ed_http_filter_s {
    const char *name;
    int       (*header)(ed_http_request_t *r, const ed_http_filter_t *self);
    int       (*body)(ed_http_request_t *r, ed_http_link_t *link,
                      const ed_http_piece_t *p, bool last);
    unsigned    memory:1;
};

/* A filter's body part taking part in one response. */
struct ed_http_link_s {
    const ed_http_filter_t *filter;
    void                   *ctx;
    unsigned                index;
};

/* Filters per location at most. */
#define ED_HTTP_FILTERS_MAX 8

/* Called when the output can take more after ed_http_output_wait. */
typedef void (*ed_http_ready_pt)(ed_http_request_t *r, void *data);

/* An access-phase check, run after the location is chosen and before its
 * content handler: ED_DECLINED lets the request go on, an HTTP status
 * (>= 300) answers it with that error response. */
typedef int (*ed_http_access_pt)(ed_http_request_t *r);

/* A rewrite step (the rewrite module), run before a location is chosen
 * (the server's rules) and after (the location's). ED_DECLINED: go on
 * with the location (the URI is unchanged, or a rule said `break`);
 * ED_AGAIN: r->uri changed, the location is chosen again; ED_OK: the
 * request is answered (a redirect was sent); else an HTTP status. */
typedef int (*ed_http_rewrite_pt)(ed_http_request_t *r);

/* Checks per location: real_ip, access, limit_req, limit_conn,
 * auth_basic, auth_request (modules.list order). A check may also return
 * ED_AGAIN: it goes on by itself and calls ed_http_access_resume. */
#define ED_HTTP_ACCESS_MAX 8

enum {
    ED_HTTP_LOC_PREFIX = 0,
    ED_HTTP_LOC_EXACT,
    ED_HTTP_LOC_NOREGEX,    /* ^~ */
    ED_HTTP_LOC_REGEX,      /* ~ */
    ED_HTTP_LOC_REGEX_CASELESS  /* ~* */
};

struct ed_http_location_s {
    ed_str_t              match;    /* the path or the pattern */
    int                   kind;     /* ED_HTTP_LOC_* */
    pcre2_code           *re;
    uint32_t              ncaptures;
    ed_str_t              name;     /* the key as written, for messages */
    void                **conf;     /* per-module location structs */
    ed_http_handler_pt    handler;
    /* The access phase, filled by the modules' attach in modules.list
     * order; empty for most locations (the loop costs one compare). */
    ed_http_access_pt     access[ED_HTTP_ACCESS_MAX];
    unsigned              naccess;
    /* The output filters, modules.list order (ed_http_filter_add). */
    const ed_http_filter_t *filters[ED_HTTP_FILTERS_MAX];
    unsigned              nfilters;
    void                (*log)(ed_http_request_t *r); /* log phase */
    /* The location's rewrite rules, run after it is chosen (NULL: none;
     * see ed_http_rewrite_pt). */
    ed_http_rewrite_pt    rewrite;
    /* The content handler may answer Range requests (static): the range
     * filter is attached. */
    unsigned              ranges:1;
    /* The content handler relays WebSocket over an HTTP/2 extended
     * CONNECT (RFC 8441): proxy with websocket. */
    unsigned              websocket:1;
    /* `internal: true`: a request whose URI is the client's gets 404;
     * internal redirects and subrequests reach it. */
    unsigned              internal:1;
    /* The content handler may answer a subrequest: its whole output goes
     * through the output path (ed_http_subrequest.c), none of it to the
     * client's connection directly (return, proxy). */
    unsigned              subrequest:1;
    ed_http_server_t     *server;
    ed_node_t            *node;
};

/* A server name: exact, *.suffix, prefix.*, or a regex. */
typedef struct {
    ed_str_t    name;       /* lowercased; for wildcards without the star */
    int         kind;       /* 0 exact, 1 leading *, 2 trailing *, 3 regex */
    pcre2_code *re;
} ed_http_name_t;

struct ed_http_server_s {
    unsigned              index;      /* 1-based, for messages */
    void                **srv_conf;   /* per-module server structs */
    void                **loc_conf;   /* server-level location structs */
    ed_array_t            names;      /* ed_http_name_t */
    ed_array_t            locations;  /* ed_http_location_t *, file order */
    ed_http_location_t   *fallback;   /* no location matched */
    ed_str_t              server_name; /* first name, for $server_name */
    ed_node_t            *node;
    void                 *tls_ctx;    /* SSL_CTX when the server has tls */
    /* The server's rewrite rules, run before a location is chosen. */
    ed_http_rewrite_pt    rewrite;
};

/* The servers listening on one address. */
typedef struct {
    ed_array_t            servers;   /* ed_http_server_t * */
    ed_http_server_t     *default_server;
    /* Every connection starts with a PROXY protocol header. */
    unsigned              proxy_protocol:1;
    /* HTTP/2: ALPN h2 on TLS, the preface (h2c) on cleartext. */
    unsigned              http2:1;
} ed_http_addr_t;

/* The HTTP core settings of one level (main, server or location). */
typedef struct {
    ed_str_t    root;
    ed_msec_t   keepalive_timeout;
    int         keepalive_requests;
    ed_msec_t   client_header_timeout;
    ed_msec_t   client_body_timeout;
    ed_msec_t   send_timeout;
    size_t      client_max_body_size;
    size_t      max_header_size;
    int         max_headers;
    int         server_tokens;
    int         underscores_in_headers;
    ed_array_t *error_pages;  /* ed_http_error_page_t */
    int         internal;     /* a location's own, not inherited */
} ed_http_core_loc_conf_t;

typedef struct {
    int      status;
    ed_str_t uri;
} ed_http_error_page_t;

/* One `listen` item: an address, or {address, default, backlog, tls,
 * proxy_protocol, deferred}. */
typedef struct {
    ed_node_t *node;      /* the item (ed_conf_block_t) */
    ed_node_t *address;
    int        is_default;
    int        backlog;   /* unset: events' backlog */
    int        tls;       /* unset: whether the server has a tls block */
    int        proxy_protocol;
    int        http2;     /* unset: true on TLS, false on cleartext */
    int        deferred;  /* unset: true */
} ed_http_listen_t;

/* The HTTP core settings of a server. */
typedef struct {
    ed_array_t *listen;   /* ed_http_listen_t * */
    ed_node_t *names;
    ed_node_t *locations;
} ed_http_core_srv_conf_t;

typedef struct {
    ed_array_t  servers;      /* ed_http_server_t * */
    char       *memory;       /* the memory estimate's lines, "# ..." */
} ed_http_core_main_conf_t;

typedef struct {
    ed_str_t name;
    ed_str_t value;
    /* Written by eddy itself from what it knows to be valid (a literal
     * name; a date, an etag, a literal value): the check of every head
     * passes it by (ed_http_add_checked_header). A filter that rewrites
     * such a value keeps it valid (gzip's weak "W/" etag). */
    unsigned checked:1;
} ed_http_out_header_t;

/* The HTTP connection: one per accepted socket, idle ones by the
 * thousand: keep it small (the listener gives the address's servers). */
typedef struct {
    ed_conn_t           c;
    ed_http_request_t  *r;          /* the request in progress */
    ed_timer_t          timer;
    /* What the PROXY protocol header said (ed_http_pp_conn.c); NULL
     * when the address has none. */
    struct ed_http_pp_info_s *pp;
    /* The HTTP/2 connection once the connection speaks it. */
    struct ed_v2_conn_s *v2;
    uint64_t            number;     /* $connection */
    unsigned            requests;
    /* Keep-alive: c.idle_since is when the last request ended (before
     * the first request: when the connection was accepted). */
    unsigned            state:2;    /* ED_STATS_*, for the gauges */
    unsigned            keepalive:1;
    unsigned            lingering:1;
    unsigned            nodelay:1;   /* TCP_NODELAY set */
    unsigned            draining:1;  /* the next head waits for the
                                      * client to take the responses */
    unsigned            quit_check:1; /* the timer checks a connection
                                       * still silent at a quit */
    unsigned            http10:1;    /* the last request was HTTP/1.0 */
    unsigned            linger_left:24; /* bytes a lingering close may
                                         * still drain; while draining
                                         * (never both): the queue when
                                         * send_timeout was armed,
                                         * ED_HTTP_DRAIN_MAX at most */
} ed_http_conn_t;

#define ED_HTTP_DRAIN_MAX  0xffffff

/* The servers of the connection's address. */
#define ed_http_conn_addr(hc) ((ed_http_addr_t *)(hc)->c.ls->servers)

struct ed_http_request_s {
    /* Where the request came from and where its response goes: the
     * protocol's side of the output path and of the request body. */
    const ed_http_proto_t    *proto;
    ed_http_conn_t           *hc;
    ed_pool_t                *pool;
    /* The request's number on its connection (1 for the first), and
     * its HTTP/2 stream (0 on HTTP/1.x). */
    uint32_t                  nrequest;
    uint32_t                  stream_id;
    struct ed_v2_stream_s    *v2;        /* the HTTP/2 stream */
    /* The client's address when real_ip changed it; NULL: the peer's.
     * Read it through ed_http_remote(r). */
    const ed_peer_addr_t     *remote;
    ed_http_req_head_t        head;
    ed_str_t                  uri;       /* normalised path */
    ed_str_t                  host;      /* lowercased, port removed */
    ed_http_server_t         *server;
    ed_http_location_t       *loc;
    void                    **loc_conf;
    ed_http_core_loc_conf_t  *clcf;

    /* Regex captures of the location (or server name) that matched. */
    const char               *cap_subject;
    PCRE2_SIZE               *caps;      /* 2 * ncaps offsets */
    uint32_t                  ncaps;
    pcre2_code               *cap_re;    /* for named captures */
    /* The server name's captures, kept when a regex location matches. */
    const char               *srv_cap_subject;
    PCRE2_SIZE               *srv_caps;
    uint32_t                  srv_ncaps;
    pcre2_code               *srv_cap_re;

    /* The response. */
    int                       status;
    int                       error_status;  /* error_pages redirect */
    ed_str_t                  content_type;
    int64_t                   content_length;  /* -1 unknown */
    ed_array_t                headers_out;     /* ed_http_out_header_t */

    ed_msec_t                 start_msec;
    uint64_t                  bytes_sent;
    uint64_t                  body_bytes_sent;
    /* The request body, whatever its framing: unread until done. */
    ed_http_decoder_t         body_dec;
    int64_t                   discarded;   /* bytes of it dropped unread */
    ed_http_body_t           *body;        /* body reader (ed_http_body.c) */
    ed_http_upstream_state_t *upstream;    /* $upstream_* (proxy) */
    ed_str_t                  request_id;
    /* The request's trailer fields ("name: value\r\n"...), for a body
     * the proxy sends on chunked (HTTP/2 only); len 0: none. */
    ed_str_t                  trailers;
    /* The response's trailer fields ("name: value\r\n"...), sent after
     * the body: a last HEADERS on HTTP/2, the trailer section of a
     * chunked body on HTTP/1.1 (ed_http_trailers_wanted); len 0: none. */
    ed_str_t                  trailers_out;
    /* The user auth_basic verified ($remote_user); len 0: none. */
    ed_str_t                  remote_user;
    /* The representation's modification time, for If-Range, when
     * allow_ranges is set. */
    time_t                    mtime;
    /* The output path's state (ed_http_output.c), made when a filter
     * takes the body or core reads a file for one; NULL on the plain
     * path. */
    ed_http_out_t            *out;
    /* ed_http_output_wait's callback. */
    ed_http_ready_pt          out_ready;
    void                     *out_ready_data;
    size_t                    out_queued;  /* send_timeout progress */
    /* limit_req's record of the zones this request was counted in: an
     * internal redirect runs limit_req again, a zone counts it once. */
    void                     *limit_req;
    /* limit_conn's slots held by this request (released at its end). */
    void                     *limit_conn;
    /* The values of the maps this request used (computed on first use). */
    void                     *maps;
    /* URI changes so far: internal redirects and rewrites that choose
     * the location again (ED_HTTP_REDIRECTS_MAX). */
    unsigned                  redirects;
    /* The access check that runs next (a check that returned ED_AGAIN
     * resumes the phase there). */
    unsigned                  access_next;
    /* A subrequest: the request it serves, and its own state
     * (ed_http_subrequest.c); NULL for a client's request. */
    ed_http_request_t        *parent;
    struct ed_http_sub_s     *sub;
    /* auth_request's state for this request ($auth_status). */
    void                     *auth_request;
    /* What a fastcgi or cgi handler found (ed_http_cgi.h): the root,
     * script and path info the meta-variables and $document_root,
     * $fastcgi_script_name, $fastcgi_path_info read. */
    struct ed_http_cgi_req_s *cgi;

    unsigned                  header_sent:1;
    /* A rewrite rule changed the URI: the proxy sends all of it,
     * re-encoded, whatever its pass says (nginx). */
    unsigned                  uri_rewritten:1;
    unsigned                  keepalive:1;
    unsigned                  head_only:1;    /* HEAD */
    unsigned                  chunked_out:1;
    unsigned                  finalized:1;
    /* An error_pages redirect was made: no second one, and the proxy
     * sends the upstream no body. */
    unsigned                  internal:1;
    /* A CGI local redirect (fastcgi, cgi) made this request: a cache
     * key of its new location would still name the client's URI
     * ($request_uri), under which another resource's response must not
     * be found nor stored. */
    unsigned                  cgi_redirected:1;
    unsigned                  error:1;        /* malformed input: close */
    unsigned                  discard_over:1; /* the unread body passed
                                               * client_max_body_size:
                                               * close, reading no more */
    /* Set by the content handler before the head: */
    unsigned                  allow_ranges:1; /* the body is one piece of
                                               * the whole representation:
                                               * the range filter may cut */
    unsigned                  streamed:1;     /* the body comes in pieces
                                               * over time (no Nagle) */
    /* The output path's own: */
    unsigned                  out_file:1;     /* file ranges queued */
    unsigned                  out_waiting:1;  /* send_timeout runs */
    unsigned                  out_buffer:1;   /* water marks changed */
    unsigned                  out_ended:1;    /* last passed the chain */
    unsigned                  out_filtered:1; /* a filter took the body */
    /* An HTTP/2 extended CONNECT for WebSocket (RFC 8441): the head
     * reads as a GET with Upgrade: websocket and a key of eddy's. */
    unsigned                  connect_protocol:1;
    /* Its tunnel's upstream failed (not a clean end): CONNECT_ERROR. */
    unsigned                  tunnel_error:1;
    /* A cache refresh made without a client (background_update): its
     * output goes nowhere. */
    unsigned                  background:1;
};

extern ed_module_t ed_http_core_module;

/* The client's address for everything that uses it (access, limit keys,
 * ip_hash, logs, $remote_addr, X-Real-IP): the peer's, unless real_ip
 * took the one a trusted proxy named. */
#define ed_http_remote(r)                                                    \
    ((r)->remote ? (r)->remote : &(r)->hc->c.peer)

/* The PROXY protocol on a connection (ed_http_pp_conn.c). */

/* Reads the header of a new connection on a proxy_protocol address
 * before anything else, within client_header_timeout; then calls
 * ed_http_accept_done(hc, ED_OK), or ED_ERROR when it is missing,
 * malformed or late (logged at info). */
void ed_http_pp_read(ed_http_conn_t *hc);
void ed_http_pp_free(ed_http_conn_t *hc);
/* A handover's PROXY addresses: put in m (flags included), or taken from
 * it by an adopted connection (ED_OK or ED_ERROR, ENOMEM). */
void ed_http_pp_export(ed_http_conn_t *hc, ed_handover_msg_t *m);
/* Whether what the header said fits a handover message: not when TLVs
 * are kept (they would be lost, and a rule on them change mid-way). */
bool ed_http_pp_movable(ed_http_conn_t *hc);
int ed_http_pp_import(ed_http_conn_t *hc, const ed_handover_msg_t *m);
/* Goes on with a connection whose PROXY header was read (rc ED_OK: TLS
 * handshake, request head), or closes it (ED_ERROR). */
void ed_http_accept_done(ed_http_conn_t *hc, int rc);
/* The PROXY header's source address, NULL when it named none (no
 * header, LOCAL, UNKNOWN, AF_UNSPEC). For real_ip. */
const ed_peer_addr_t *ed_http_pp_src(ed_http_conn_t *hc);
/* $proxy_protocol_*: name without "proxy_protocol_". ED_DECLINED when
 * there is no such value; -1 from _known when the name is unknown. */
int ed_http_pp_variable(ed_http_request_t *r, const char *name, size_t len,
                        ed_str_t *out);
bool ed_http_pp_variable_known(const char *name, size_t len);

#define ed_http_loc_conf(r, module) ((r)->loc_conf[(module).index])
#define ed_http_conf_at(loc, module) ((loc)->conf[(module).index])

/* The output path (ed_http_output.c): the one way a response goes out.
 * Content handlers call these and never touch the connection, its
 * water marks or its timers. */

/* Sends the response head built from r->status, content_type,
 * content_length and headers_out, after the location's header filters.
 * ED_OK or ED_ERROR. */
int ed_http_send_header(ed_http_request_t *r);
/* Passes a body piece on, through the filters that took the body (a
 * memory piece is copied, a file piece queued as a range). ED_OK, or
 * ED_ERROR (the client's side failed: finalize with ED_ERROR). Give more
 * only while ed_http_output_busy is false. */
int ed_http_send_piece(ed_http_request_t *r, const ed_http_piece_t *p);
int ed_http_send_body(ed_http_request_t *r, const void *data, size_t len);
int ed_http_send_file(ed_http_request_t *r, int fd, int64_t off,
                      size_t len);
/* Whether the source should pause: the client's queue is above its high
 * water mark, or core is still reading a file piece for a filter. */
bool ed_http_output_busy(ed_http_request_t *r);
/* Calls cb(r, data) once, from the loop, when the output is no longer
 * busy. send_timeout bounds the wait (the connection is then closed and
 * the request's cleanups run). */
void ed_http_output_wait(ed_http_request_t *r, ed_http_ready_pt cb,
                         void *data);
/* Sizes the client-side buffer for this request (the high water mark;
 * the low one is a quarter): how much a source may run ahead of the
 * client. Back to the connection's default when the request ends. */
void ed_http_output_buffer(ed_http_request_t *r, size_t size);
/* A filter's header part takes the body of this response (ctx is its
 * state). ED_OK or ED_ERROR (ENOMEM). */
int ed_http_filter_start(ed_http_request_t *r, const ed_http_filter_t *f,
                         void *ctx);
/* A filter's body part passes a piece (or the end) to the next one. */
int ed_http_filter_next(ed_http_request_t *r, ed_http_link_t *link,
                        const ed_http_piece_t *p, bool last);
/* Adds a filter to a location's chain (from a module's attach, so in
 * modules.list order). ED_OK, or ED_ERROR after recording an error. */
int ed_http_filter_add(ed_conf_t *cf, ed_http_location_t *loc,
                       const ed_http_filter_t *f);
/* A response header of that name (case-insensitive), or NULL. */
ed_http_out_header_t *ed_http_out_header(ed_http_request_t *r,
                                         const char *name, size_t nlen);
/* Removes every response header of that name. */
void ed_http_out_header_del(ed_http_request_t *r, const char *name,
                            size_t nlen);
/* Clears the response headers before an error response or page for
 * status, except the challenge of a 401 (WWW-Authenticate, which
 * auth_basic sets before refusing): a custom 401 page still asks the
 * browser for credentials, as in nginx; and Cache-Status (RFC 9211):
 * every response of a cache location says what the cache did, an error
 * as well (cache.md). */
void ed_http_out_headers_error(ed_http_request_t *r, int status);
/* Sends a complete response with a body in one write. ED_OK or
 * ED_ERROR. */
int ed_http_send_response(ed_http_request_t *r, int status,
                          const ed_str_t *content_type, const void *body,
                          size_t len);
/* Adds a check to a location's access phase (from a module's attach).
 * ED_OK, or ED_ERROR after recording an error when the phase is full. */
int ed_http_access_add(ed_conf_t *cf, ed_http_location_t *loc,
                       ed_http_access_pt check);
/* Adds a response header. Names and values are checked when the head is
 * written (ed_http_response.c). ED_OK or ED_ERROR. */
int ed_http_add_header(ed_http_request_t *r, const char *name, size_t nlen,
                       const char *value, size_t vlen);
/* The same for a header eddy made from what it knows to be valid: a
 * token name, a value of visible bytes and spaces (no Location, which is
 * always %-encoded), that the check need not go through again. */
int ed_http_add_checked_header(ed_http_request_t *r, const char *name,
                               size_t nlen, const char *value, size_t vlen);
/* Ends the request: rc is ED_OK after a handler gave its whole response
 * (core then ends the body and waits for file ranges to be written), a
 * status to answer with an error response, ED_ERROR to close at once, or
 * ED_HTTP_CUT when the body cannot be completed after its head went out
 * (what was given goes out, then the connection closes, without the end
 * of the body: it must not look complete). Then logs and moves the
 * connection on (next request, keep-alive wait, or close). */
#define ED_HTTP_CUT (-100)

void ed_http_finalize(ed_http_request_t *r, int rc);
/* Sets TCP_NODELAY on the connection once (see ed_http_request.c): for
 * responses written in several pieces over time (streaming). */
void ed_http_nodelay(ed_http_conn_t *hc);

/* The memory estimate (ed_http_memory.c, operator.md): computed at the
 * end of the HTTP core's postconf, with a warning when it exceeds the
 * memory available. ED_OK or ED_ERROR (ENOMEM). */
int ed_http_memory_check(ed_conf_t *cf);
/* Its lines, each "# ...\n", for -t and -T; NULL before the check. */
const char *ed_http_memory_text(ed_cycle_t *cycle);
/* The reason phrase of a status, or "Unknown". */
const char *ed_http_status_text(int status);
/* Writes the small HTML page naming a status; returns its length. */
size_t ed_http_status_page(int status, char *buf, size_t size);
/* Looks a request header up (case-insensitive); NULL when absent. */
const ed_str_t *ed_http_header(ed_http_request_t *r, const char *name);

/* The phases after the request head (ed_http_phase.c). */

/* Internal redirects a request may make; one more is a 500 (nginx's
 * bound on URI changes). */
#define ED_HTTP_REDIRECTS_MAX 10

/* Shows or hides the request fields named with '_' as r->clcf's
 * underscores_in_headers says (ed_http_request.c). */
void ed_http_underscores(ed_http_request_t *r);
/* Chooses the location of r->uri and sets r->loc, r->loc_conf and
 * r->clcf, and the fields it shows. Returns ED_OK, or 413 when the body that is still to be read
 * is over that location's client_max_body_size. */
int ed_http_find_config(ed_http_request_t *r);
/* Chooses the location as ed_http_find_config does, running the rewrite
 * rules: the server's first, then those of each location chosen (a URI
 * they change chooses again, counted as an internal redirect). ED_OK: the
 * location is set; ED_DONE: a rule answered the request (a redirect);
 * else a status (400, 413, 500 for a cycle). */
int ed_http_choose(ed_http_request_t *r);
/* Runs the access phase of r's location (access, limit_req), then its
 * content handler. Returns the status of a check that refused, or what
 * the handler returned: ED_OK, ED_AGAIN, ED_ERROR or a status. */
int ed_http_run_location(ed_http_request_t *r);
/* Goes on with the access phase after a check that returned ED_AGAIN:
 * rc ED_DECLINED runs the checks after it, then the content handler; a
 * status refuses the request with it. Finalizes r unless the phase or
 * the handler goes on by itself. */
void ed_http_access_resume(ed_http_request_t *r, int rc);

/* Subrequests (ed_http_subrequest.c): a GET made by eddy itself for a
 * path of r's server, answered by that path's location (whose handler
 * must have loc->subrequest: return, proxy) with its access phase
 * skipped, and its output captured instead of sent. The child is a
 * request with its own pool; it carries r's fields but the hop-by-hop
 * ones, the framing and Expect (it has no body), plus the caller's. */
typedef struct ed_http_sub_s ed_http_sub_t;

/* A captured body piece (memory, or a file range as it is). ED_OK, or
 * ED_ERROR to stop the response there (the subrequest then ends with
 * ED_ERROR, its handler's cleanups closing what it had open). */
typedef int (*ed_http_sub_body_pt)(ed_http_request_t *sr, void *data,
                                   const ed_http_piece_t *p);
/* The subrequest ended, called from the loop: rc ED_OK with the answer
 * in sr->status, sr->headers_out and sr->content_type (a status the
 * handler answered with stands for its error response), or ED_ERROR (no
 * complete answer). sr lives until ed_http_subrequest_free or r's end. */
typedef void (*ed_http_sub_done_pt)(ed_http_request_t *sr, void *data,
                                    int rc);

typedef struct {
    ed_str_t                 uri;       /* a path, as a target holds it */
    const ed_http_header_t  *headers;   /* set, replacing r's of those */
    size_t                   nheaders;  /* names; in memory outliving sr */
    ed_http_sub_body_pt      body;      /* NULL: the body is dropped */
    ed_http_sub_done_pt      done;
    void                    *data;
} ed_http_sub_conf_t;

/* Creates the subrequest and posts its start: nothing runs before the
 * loop does, and done is called exactly once unless sr is freed first.
 * NULL on ENOMEM. */
ed_http_request_t *ed_http_subrequest(ed_http_request_t *r,
                                      const ed_http_sub_conf_t *c);
/* Ends sr now (its cleanups run: a proxy's upstream connection closes),
 * without done. */
void ed_http_subrequest_free(ed_http_request_t *sr);
/* ed_http_finalize of a subrequest. */
void ed_http_subrequest_finalize(ed_http_request_t *sr, int rc);
/* An internal redirect: r is served again as a request for uri (a path
 * starting with '/') with args as $args (NULL: $args stay; bytes a query
 * cannot hold are %-encoded): the location is chosen again, the state
 * the previous one set is reset, its access phase and content handler
 * run. Every internal redirect goes through it (try_files fallbacks,
 * index files, error_pages). Returns as ed_http_run_location (a content
 * handler returns that as its own result). Past ED_HTTP_REDIRECTS_MAX
 * redirects, logs the cycle and returns 500. */
int ed_http_internal_redirect(ed_http_request_t *r, const ed_str_t *uri,
                              const ed_str_t *args);
/* error_pages: answers status with the page configured for it in r's
 * location through an internal redirect. ED_OK when that took the
 * request over (it is finalized or going on), ED_DECLINED to send the
 * built-in page of status. For ed_http_finalize. */
int ed_http_error_page(ed_http_request_t *r, int status);
/* The page error_pages configures for status in r's location, or NULL
 * (none, or r is already internal: an error page's own error). */
const ed_http_error_page_t *ed_http_error_page_find(ed_http_request_t *r,
                                                    int status);
/* Sets r->uri (a NUL-terminated copy of uri) and, when args is given,
 * r->head.query (bytes a query cannot hold %-encoded). ED_OK or ED_ERROR
 * (ENOMEM). */
int ed_http_set_uri(ed_http_request_t *r, const ed_str_t *uri,
                    const ed_str_t *args);
/* Splits "uri?args" at its first '?': uri keeps what is before it.
 * Returns whether there was one (*args set). */
bool ed_http_split_args(ed_str_t *uri, ed_str_t *args);

/* The error log's context for a request (ed_http_log.c): ", client:
 * ADDR, server: NAME, request: "LINE"" then ", upstream: "URL"" and
 * ", host: "HOST"" when known, with what the client sent escaped
 * (ed_log_escape) and each field bounded. An ed_log_ctx_pt; data is the
 * request (NULL: no context). */
size_t ed_http_log_ctx(void *data, char *buf, size_t size);
/* Logs a line about request r, ending with its context. Every log line
 * written while serving a request goes through it. */
#define ed_http_log(lvl, r, err, ...)                                        \
    ed_log_ctx(lvl, ed_log_cur, err, ed_http_log_ctx, (r), __VA_ARGS__)
/* s[0..len) escaped for a quoted part of a log message (ed_log_escape),
 * NUL-terminated in r's pool, at most max bytes of output ("" on
 * ENOMEM): for paths, keys and URIs a client chose. */
const char *ed_http_log_str(ed_http_request_t *r, const char *s, size_t len,
                            size_t max);

/* The Host h as the server is chosen by: lowercased, without the port
 * nor trailing dots, in pool ("" for none). ED_OK, 400 for an invalid
 * one, or 500 (ed_http_request.c). */
int ed_http_host_parse(ed_pool_t *pool, const ed_str_t *h, ed_str_t *host);
/* Chooses the server for a Host on an address, and the location for a
 * normalised path (filling the captures). */
ed_http_server_t *ed_http_find_server(ed_http_addr_t *addr,
                                      ed_http_request_t *r,
                                      const ed_str_t *host);
ed_http_location_t *ed_http_find_location(ed_http_server_t *srv,
                                          ed_http_request_t *r,
                                          const ed_str_t *path);
/* Compiles a PCRE2 pattern with JIT. NULL with *err in pool memory. */
pcre2_code *ed_http_regex_compile(ed_pool_t *pool, const char *pattern,
                                  size_t len, bool caseless,
                                  const char **err);
/* Whether re was JIT compiled: ed_http_regex_exec may take the fast
 * path (pcre2_jit_match, without the checks pcre2_match repeats). */
bool ed_http_regex_jit(pcre2_code *re);
#define ed_http_regex_exec(re, jit, s, len, md)                              \
    ((jit) ? pcre2_jit_match((re), (PCRE2_SPTR)(s), (len), 0, 0, (md), NULL) \
           : pcre2_match((re), (PCRE2_SPTR)(s), (len), 0, 0, (md), NULL))
/* Whether t has no variable: ed_http_template_run then gives the
 * template's own text, which is not to be written to. */
bool ed_http_template_literal(const ed_http_template_t *t);
/* Evaluates t like ed_http_template_run, but a template that is one
 * variable alone gives that variable's value as it is (not copied, not
 * NUL-terminated): for values only compared or hashed. */
int ed_http_template_value(ed_http_request_t *r, const ed_http_template_t *t,
                           ed_str_t *out);

/* A variable: get returns ED_OK, ED_DECLINED (no value) or ED_ERROR;
 * the value lives in the request's pool or longer. The core's are in
 * ed_http_variables.c; a module lists its own in its `variables` (no
 * name starting with http_, arg_ or cookie_, which name headers,
 * arguments and cookies). */
typedef int (*ed_http_variable_pt)(ed_http_request_t *r, ed_str_t *out);

typedef struct {
    const char          *name;
    ed_http_variable_pt  get;
} ed_http_variable_t;

/* While a server's (a location's) keys are applied: that server (and
 * location), else NULL. The template compiler checks captures against
 * the regexes they hold. */
extern ed_http_server_t   *ed_http_cur_server;
extern ed_http_location_t *ed_http_cur_location;

/* While a rewrite rule's or a map's replacement is compiled: the regex
 * whose captures it may use ($1..$9, names), checked before the ones of
 * locations and server names; NULL otherwise. */
typedef struct {
    const char *pattern;
    size_t      len;
    pcre2_code *re;
    const char *written;  /* names it in messages: "rewrite regex" */
} ed_http_cur_regex_t;

extern const ed_http_cur_regex_t *ed_http_cur_regex;

/* A variable the configuration defines (a map's $NAME): found by name
 * through the modules' conf_variable hooks; its struct starts with this
 * one. */
typedef struct ed_http_conf_var_s ed_http_conf_var_t;

struct ed_http_conf_var_s {
    int (*get)(ed_http_request_t *r, ed_http_conf_var_t *v, ed_str_t *out);
};

/* Templates: strings with $variables, compiled once at config time. */
ed_http_template_t *ed_http_template_compile(ed_conf_t *cf,
                                             const ed_node_t *node,
                                             const char **err);
/* A key whose value is a non-empty string with variables (a limit's
 * key): compiles it into the ed_http_template_t * at the key's offset.
 * Returns NULL or a message. */
const char *ed_http_set_key_template(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);
/* Evaluates into pool memory. ED_OK or ED_ERROR. */
int ed_http_template_run(ed_http_request_t *r, const ed_http_template_t *t,
                         ed_str_t *out);
/* Evaluates one variable by name (without '$'). ED_OK, ED_DECLINED when
 * it has no value, ED_ERROR on ENOMEM. */
int ed_http_variable(ed_http_request_t *r, const char *name, size_t len,
                     ed_str_t *out);
/* The getter of a built-in or a module's variable (not a family, a
 * capture or a map), or NULL: resolved once, called per request without
 * the lookup by name. */
ed_http_variable_pt ed_http_variable_getter(const char *name, size_t len);
/* Whether a variable name is known (for config-time checks). */
bool ed_http_variable_known(const char *name, size_t len);
/* Whether name is a built-in variable or in a family (http_, arg_,
 * cookie_, proxy_protocol_) or a module's: names a map may not take. */
bool ed_http_variable_reserved(const char *name, size_t len);
/* The variables the configuration defines that t uses: at most max put
 * in out; returns how many there are. */
size_t ed_http_template_conf_vars(const ed_http_template_t *t,
                                  ed_http_conf_var_t **out, size_t max);
/* Evaluates t with the captures of a regex match (subject, ovector of
 * ncaps pairs, re for names) in place of the location's. */
int ed_http_template_run_caps(ed_http_request_t *r,
                              const ed_http_template_t *t,
                              const char *subject, PCRE2_SIZE *caps,
                              uint32_t ncaps, pcre2_code *re,
                              ed_str_t *out);

/* Request bodies (ed_http_body.c): streamed to the handler with bounded
 * memory, dechunked. */

/* Receives the body: rc ED_OK with a piece p[0..len) (valid during the
 * call only), ED_DONE with the last piece (len may be 0), or an error:
 * 400 (malformed chunked framing), 408 (client_body_timeout), 413
 * (client_max_body_size), ED_ERROR (the client went away). Nothing is
 * called after ED_DONE or an error. The callback may finalize r. */
typedef void (*ed_http_body_pt)(ed_http_request_t *r, void *data, int rc,
                                const char *p, size_t len);

/* Whether the request has a body still to be read. */
#define ed_http_has_body(r) (!ed_http_decoder_done(&(r)->body_dec))

/* Starts reading the body into cb (with data), first answering a client
 * that waits with `Expect: 100-continue`. ED_OK, ED_DONE when there is no
 * body to read (cb is never called), or ED_ERROR (ENOMEM). */
#define ed_http_read_body(r, cb, data) ((r)->proto->read_body((r), (cb), (data)))
/* Back-pressure: stops reading the client until resumed (no timeout
 * runs meanwhile). */
#define ed_http_body_pause(r) ((r)->proto->body_pause(r))
#define ed_http_body_resume(r) ((r)->proto->body_resume(r))
/* Stops for good: cb is not called again; what is left unread is
 * discarded by ed_http_finalize (or the connection closed). */
#define ed_http_body_stop(r) ((r)->proto->body_stop(r))

/* A protocol: where requests come from and where their responses go.
 * Core's output path (ed_http_output.c) and the request-body API call
 * these; handlers and filters never do. HTTP/1.1 connections are one
 * implementation (ed_http_h1.c, ed_http_body.c, ed_http_request.c);
 * HTTP/2 streams will be the second. */
struct ed_http_proto_s {
    const char  *name;
    /* Writes the response head (r->status, content_type, content_length,
     * headers_out, all checked), with body[0..len) after it in the same
     * write when len > 0. ED_OK or ED_ERROR. */
    int        (*head)(ed_http_request_t *r, const void *body, size_t len);
    /* Writes a body piece (a file piece stays a file range), or the end
     * of the body. ED_OK or ED_ERROR. */
    int        (*piece)(ed_http_request_t *r, const ed_http_piece_t *p);
    int        (*end)(ed_http_request_t *r);
    /* Flow control toward the client: whether it is over its buffer, the
     * bytes given and not yet taken, whether all is written. */
    bool       (*blocked)(ed_http_request_t *r);
    size_t     (*queued)(ed_http_request_t *r);
    bool       (*written)(ed_http_request_t *r);
    /* Calls ed_http_output_drained(r) once the client took enough (on),
     * or no more (off); calls ed_http_output_flushed(r) once everything
     * is written. */
    void       (*notify_drain)(ed_http_request_t *r, bool on);
    void       (*notify_flushed)(ed_http_request_t *r);
    /* Sizes the client-side buffer (the high mark; low is a quarter). */
    void       (*buffer)(ed_http_request_t *r, size_t size);
    /* The timer send_timeout runs on (its expiry calls
     * ed_http_output_timeout, then closes unless that says to wait). */
    ed_timer_t *(*timer)(ed_http_request_t *r);
    /* The request body (ed_http_read_body and the rest, above). */
    int        (*read_body)(ed_http_request_t *r, ed_http_body_pt cb,
                            void *data);
    void       (*body_pause)(ed_http_request_t *r);
    void       (*body_resume)(ed_http_request_t *r);
    void       (*body_stop)(ed_http_request_t *r);
    /* The response is out (r->finalized): the log phase, then what the
     * protocol does next (HTTP/1.1: discard, keep-alive or close). */
    void       (*done)(ed_http_request_t *r);
    /* The response cannot be completed (ED_ERROR): HTTP/1.1 closes the
     * connection, HTTP/2 resets the stream. */
    void       (*fail)(ed_http_request_t *r);
};

extern const ed_http_proto_t ed_http_h1_proto;

/* The request core shared by the protocols (ed_http_request.c). */

/* Request pools, reused across requests. */
ed_pool_t *ed_http_pool_get(void);
void ed_http_pool_put(ed_pool_t *pool);
/* A request of connection hc speaking proto, with its own pool and the
 * address's default server; NULL on ENOMEM. */
ed_http_request_t *ed_http_request_new(ed_http_conn_t *hc,
                                       const ed_http_proto_t *proto);
/* Serves a parsed head: host, server, body framing, path, location,
 * handler. */
void ed_http_process(ed_http_request_t *r);
/* The log phase and the statistics of an ended request. */
void ed_http_log_phase(ed_http_request_t *r);
/* Closes a client connection at once and frees it. */
void ed_http_close(ed_http_conn_t *hc);
void ed_http_linger_close(ed_http_conn_t *hc);
/* HTTP/1.1's done and fail (ed_http_request.c). */
void ed_http_h1_done(ed_http_request_t *r);
void ed_http_h1_fail(ed_http_request_t *r);
/* The protocol name of $server_protocol ("HTTP/1.1", "HTTP/2.0"). */
const char *ed_http_protocol(ed_http_request_t *r);

/* HTTP/2 (ed_http_v2.c): whether buf[0..len) is the client preface;
 * the scanner of a first head on an http2 address, which also finds
 * the preface; starting HTTP/2 on a connection whose preface was read
 * (false: not built in, or no memory: the caller closes). */
bool ed_http_v2_preface(const char *buf, size_t len);
size_t ed_http_v2_head_end(const char *buf, size_t len, size_t *resume);
bool ed_http_v2_start(ed_http_conn_t *hc);
/* Whether TLS chose h2 by ALPN on this connection. */
bool ed_http_v2_alpn(ed_http_conn_t *hc);

/* Core-internal steps of the output path. */

/* Runs the header filters of r's location. ED_OK or ED_ERROR. */
int ed_http_header_filters(ed_http_request_t *r);
/* Validates the response headers (a bad one is dropped, Location
 * %-encoded) before any protocol writes them. ED_OK or ED_ERROR. */
int ed_http_check_headers(ed_http_request_t *r);
/* Whether a response with this status has a body. */
#define ed_http_status_has_body(status)                                      \
    (!((status) < 200 || (status) == 204 || (status) == 304))
/* From ed_http_finalize: ends the body (rc ED_OK: the filters' end and
 * the terminator) and waits for file ranges to be written. ED_OK to go
 * on, ED_AGAIN when it calls ed_http_finalize_done (or ed_http_finalize)
 * later, ED_ERROR to close. */
int ed_http_output_end(ed_http_request_t *r, int rc);
/* Whether the client takes response trailers: always on HTTP/2; on
 * HTTP/1.1 when its TE lists "trailers" (RFC 9110 10.1.4), the body
 * then going chunked. */
bool ed_http_trailers_wanted(ed_http_request_t *r);
/* The rest of ed_http_finalize once the response is out. */
void ed_http_finalize_done(ed_http_request_t *r);
/* From the protocol (see ed_http_proto_t). */
void ed_http_output_drained(ed_http_request_t *r);
void ed_http_output_flushed(ed_http_request_t *r);
/* From the send_timeout timer while the output waits: true when it
 * waits on (the client took bytes), false to close. */
bool ed_http_output_timeout(ed_http_request_t *r);
/* The HTTP/1.1 request body (ed_http_body.c), for ed_http_h1_proto. */
int ed_http_h1_read_body(ed_http_request_t *r, ed_http_body_pt cb,
                         void *data);
void ed_http_h1_body_pause(ed_http_request_t *r);
void ed_http_h1_body_resume(ed_http_request_t *r);
void ed_http_h1_body_stop(ed_http_request_t *r);

/* Accepts connections for HTTP listeners (each one's handler, set at
 * postconf). */
void ed_http_accept(ed_listener_t *ls, int fd, const ed_peer_addr_t *peer);
/* ls->adopt: an idle keep-alive connection handed over at a reload. */
int ed_http_adopt(ed_listener_t *ls, int fd, const ed_handover_msg_t *m);
/* Whether a response in flight while the worker quits may keep its
 * connection: it is then handed over to the new generation (a plaintext
 * HTTP/1 connection during a reload with handover). */
#define ed_http_quit_keepalive(hc)                                           \
    (ed_worker->handover_gen != 0 && !(hc)->c.ls->tls)

#endif /* ED_HTTP_H */
