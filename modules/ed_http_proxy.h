/* The proxy module's private declarations, shared by its
 * configuration (ed_http_proxy_conf.c) and its handler
 * (ed_http_proxy.c). */
#ifndef ED_HTTP_PROXY_H
#define ED_HTTP_PROXY_H

#include "ed_http_upstream.h"
#include "ed_http_explain.h"
#include "ed_http_cache_req.h"

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
    /* The cache (cache.md, In a proxy location; keys shared with
     * fastcgi: ED_HTTP_CACHE_KEYS). */
    ed_http_cache_loc_t cache_conf;

    ed_http_upstream_t *ups;
    ed_http_upstream_tls_t *tls;         /* an https pass */
    ed_str_t            uri;             /* path of a URL pass */
    unsigned            has_uri:1;
} ed_http_proxy_conf_t;

typedef struct {
    ed_http_proxy_conf_t *block;  /* `proxy` in this location, or NULL */
} ed_http_proxy_loc_conf_t;

extern ed_module_t ed_http_proxy_module;

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
