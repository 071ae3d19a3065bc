/* The rewrite module's rule engine, for the module and its unit tests. */
#ifndef ED_HTTP_REWRITE_H
#define ED_HTTP_REWRITE_H

#include "ed_http.h"

enum {
    ED_REWRITE_NONE = 0,   /* the next rule sees the new URI */
    ED_REWRITE_LAST,       /* stop; choose the location again */
    ED_REWRITE_BREAK,      /* stop; stay in this location */
    ED_REWRITE_REDIRECT,   /* 302 */
    ED_REWRITE_PERMANENT   /* 301 */
};

/* One rule: `{regex, replacement, flag}`. */
typedef struct {
    ed_node_t          *node;         /* the block (ed_conf_block_t) */
    ed_node_t          *regex;
    ed_node_t          *replacement;
    int                 flag;
    pcre2_code         *re;
    ed_http_template_t *to;           /* the replacement up to its first
                                       * '?' (as written: a '?' a
                                       * variable brings is a byte of
                                       * the path) */
    ed_http_template_t *args;         /* what follows that '?', without
                                       * a trailing '?'; NULL: none */
    unsigned            jit:1;        /* re was JIT compiled */
    unsigned            absolute:1;   /* http://, https://, $scheme: a
                                       * redirect whatever the flag */
    unsigned            drop_args:1;  /* a trailing '?': the request's
                                       * query is not appended */
} ed_http_rewrite_rule_t;

/* A level's rules (the module's location struct; a server's are in
 * its server-level struct). */
typedef struct {
    ed_array_t *rules;   /* ed_http_rewrite_rule_t *, file order */
} ed_http_rewrite_conf_t;

extern ed_module_t ed_http_rewrite_module;

/* What the rules did to a request (ed_http_rewrite_apply). */
typedef struct {
    int       status;     /* 0; 301/302 (location set); 400, 500 */
    ed_str_t  location;   /* for a redirect */
    unsigned  rule;       /* the last rule that matched, 1-based */
    unsigned  changed:1;  /* r->uri (and maybe $args) changed */
    unsigned  stop:1;     /* `break`: stay in the location */
} ed_http_rewrite_result_t;

/* Applies rules (ed_http_rewrite_rule_t *, in order) to r->uri: each
 * matching rule's replacement (with its captures, and any variable, seen
 * as the request stands after the rules before it) becomes the URI, and
 * its query the request's (the old one appended after '&' unless the
 * replacement ends with '?'). Stops at a rule with a flag, or at a
 * redirect. Internal results are normalised as a request path: ".." above
 * the root is 400; a result not starting with '/', or holding CR, LF or
 * NUL, is 500. Sets r->uri, r->head.query and r->uri_rewritten when the
 * URI changed. ED_OK with *res filled, or ED_ERROR (ENOMEM). */
int ed_http_rewrite_apply(ed_http_request_t *r, const ed_array_t *rules,
                          ed_http_rewrite_result_t *res);

/* Normalises an internal rewrite result in place: '//' and '.' segments
 * dropped, '..' removes the segment before it (the URI is decoded
 * already: '%' is an ordinary byte). ED_OK with *len set, 400 for a ".."
 * above the root, 500 for CR, LF or NUL or no leading '/'. */
int ed_http_rewrite_normalize(char *p, size_t *len);

#endif /* ED_HTTP_REWRITE_H */
