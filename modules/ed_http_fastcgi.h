/* The fastcgi module's private declarations, shared by its configuration
 * (ed_http_fastcgi_conf.c) and its handler (ed_http_fastcgi.c). */
#ifndef ED_HTTP_FASTCGI_H
#define ED_HTTP_FASTCGI_H

#include "ed_http_upstream.h"
#include "ed_http_cgi.h"
#include "ed_http_fastcgi_record.h"
#include "ed_http_explain.h"
#include "ed_http_cache_req.h"

/* One entry of `params`. */
typedef struct {
    ed_str_t            name;
    ed_http_template_t *value;   /* NULL: `~`, the default is removed */
    /* A value that is one variable alone: its name, for the param to be
     * left out when the variable has no value (absent is not empty). */
    ed_str_t            var;
} ed_http_fastcgi_param_t;

typedef struct {
    ed_node_t          *node;            /* the block */
    ed_str_t            pass;
    ed_str_t            root;
    ed_str_t            index;
    ed_str_t            split_path_info;
    int                 check_script;
    ed_array_t         *params;          /* ed_http_fastcgi_param_t */
    ed_msec_t           connect_timeout;
    ed_msec_t           send_timeout;
    ed_msec_t           read_timeout;
    int                 next_upstream;   /* ED_HTTP_UPS_NEXT_* mask */
    int                 next_upstream_tries;
    size_t              buffer_size;
    /* The cache (cache.md): the proxy's keys (ED_HTTP_CACHE_KEYS). */
    ed_http_cache_loc_t cache_conf;

    ed_http_upstream_t *ups;
    pcre2_code         *split;           /* split_path_info compiled */
    ed_str_t            doc_root;        /* root, else the location's */
} ed_http_fastcgi_conf_t;

typedef struct {
    ed_http_fastcgi_conf_t *block;       /* `fastcgi` here, or NULL */
} ed_http_fastcgi_loc_conf_t;

extern ed_module_t ed_http_fastcgi_module;

/* The content handler of a location with a `fastcgi` block. */
int ed_http_fastcgi_handler(ed_http_request_t *r);
/* Finds r's script (split_path_info, index) and sets r's CGI record;
 * *file is root + script name. With check_script, 404 unless it is a
 * regular file (an info line when log). ED_OK, 404 or 500. */
int ed_http_fastcgi_script(ed_http_request_t *r, ed_http_fastcgi_conf_t *fcf,
                           bool log, const char **file);
/* Gives every param r sends to cb: the meta-variables merged with
 * `params`. ED_OK, ED_ERROR or cb's first other answer. */
int ed_http_fastcgi_params(ed_http_request_t *r, ed_http_fastcgi_conf_t *fcf,
                           ed_http_cgi_var_pt cb, void *data);
/* eddy explain (ed_http_fastcgi_explain.c). */
int ed_http_fastcgi_explain(ed_explain_t *ex);

#endif /* ED_HTTP_FASTCGI_H */
