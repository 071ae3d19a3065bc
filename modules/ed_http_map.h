/* The map module's lookup, for the module and its unit tests. */
#ifndef ED_HTTP_MAP_H
#define ED_HTTP_MAP_H

#include "ed_http.h"

/* An exact key (hashed, lowercased) or a hostname wildcard. */
typedef struct {
    ed_str_t            key;     /* lowercased; a wildcard without '*' */
    ed_http_template_t *value;
    ed_node_t          *node;    /* the key as written */
} ed_http_map_entry_t;

typedef struct {
    pcre2_code         *re;
    ed_http_template_t *value;
    unsigned            jit:1;
} ed_http_map_regex_t;

typedef struct ed_http_map_main_conf_s ed_http_map_main_conf_t;

/* One map: $NAME. */
typedef struct {
    ed_http_conf_var_t   var;      /* first: what templates call */
    ed_str_t             name;
    unsigned             index;    /* in the request's cache */
    ed_http_map_main_conf_t *mcf;
    ed_node_t           *node;     /* the map's mapping (NULL until the
                                    * `maps` key is applied) */
    ed_node_t           *source_node;
    ed_node_t           *default_node;
    ed_node_t           *entries;
    int                  hostnames;
    ed_http_template_t  *source;
    ed_http_template_t  *def;
    /* Exact keys: an open-addressing table of nbuckets (a power of
     * two), NULL slots empty. */
    ed_http_map_entry_t **buckets;
    size_t               nbuckets;
    ed_array_t           head_wild;  /* "*.a.com", ".a.com": key ".a.com" */
    ed_array_t           tail_wild;  /* "www.a.*": key "www.a." */
    ed_array_t           regexes;    /* ed_http_map_regex_t, in order */
    unsigned             visit;      /* cycle check */
} ed_http_map_t;

struct ed_http_map_main_conf_s {
    ed_array_t maps;   /* ed_http_map_t *, in the order first named */
};

/* The value of map m for the request r (source evaluated, then exact
 * keys, hostname wildcards, regexes in order, else the default), not
 * cached. ED_OK or ED_ERROR (ENOMEM). */
int ed_http_map_lookup(ed_http_request_t *r, ed_http_map_t *m,
                       ed_str_t *out);
/* The map named so in cycle, or NULL. */
ed_http_map_t *ed_http_map_find(ed_cycle_t *cycle, const char *name,
                                size_t len);

#endif /* ED_HTTP_MAP_H */
