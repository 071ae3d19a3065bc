/* The real_ip module: `real_ip: {from, header, recursive}` (main or
 * server level, inherited whole; `off` cancels). When the peer is one of
 * `from`, the client address becomes the one the header names (or the
 * PROXY protocol header's source), for everything that uses it: access,
 * limit keys, ip_hash, logs, X-Real-IP. $realip_remote_addr keeps the
 * peer. Runs first in the access phase (modules.list order), once per
 * request. */
#include "ed_http_explain.h"
#include "ed_http_fields.h"
#include "ed_cidr.h"

#include <arpa/inet.h>

typedef struct {
    ed_node_t   *node;       /* the block (ed_conf_block_t) */
    ed_array_t  *from;       /* ed_cidr_t */
    ed_str_t     header;
    int          recursive;
    unsigned     unix_from:1;  /* "unix:": unix-socket peers */
    unsigned     pp:1;         /* header: proxy_protocol */
    unsigned     off:1;
} ed_http_real_ip_t;

typedef struct {
    ed_http_real_ip_t *real_ip;
} ed_http_real_ip_conf_t;

static const char *ed_http_real_ip_set_from(ed_conf_t *cf,
                                            const ed_key_t *key,
                                            ed_node_t *node, void *conf);
static const char *ed_http_real_ip_set_header(ed_conf_t *cf,
                                              const ed_key_t *key,
                                              ed_node_t *node, void *conf);
static const char *ed_http_real_ip_scalar(ed_conf_t *cf, ed_node_t *node,
                                          void *block);
static const char *ed_http_real_ip_check_block(ed_conf_t *cf,
                                               ed_node_t *node, void *block);
static int ed_http_real_ip_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_real_ip_postconf(ed_conf_t *cf);
static int ed_http_real_ip_explain(ed_explain_t *ex);

#define ED_RIKEY(name, flags, set, field, arg, def)                          \
    { name, ED_CTX_MAIN | ED_CTX_SERVER, flags, set, ED_CONF_LOC,            \
      offsetof(ed_http_real_ip_t, field), arg, def }

static const ed_key_t ed_http_real_ip_block_keys[] = {
    ED_RIKEY("from", ED_KEY_PTR, ed_http_real_ip_set_from, from, NULL, NULL),
    ED_RIKEY("header", ED_KEY_STR, ed_http_real_ip_set_header, header, NULL,
             "X-Forwarded-For"),
    ED_RIKEY("recursive", ED_KEY_INT, ed_conf_set_bool, recursive, NULL,
             "true"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_real_ip_block = {
    .name = "real_ip",
    .keys = ed_http_real_ip_block_keys,
    .size = sizeof(ed_http_real_ip_t),
    .scalar = ed_http_real_ip_scalar,
    .check = ed_http_real_ip_check_block,
    .expect = "expected off or a mapping {from, header, recursive}",
};

static const ed_key_t ed_http_real_ip_keys[] = {
    { "real_ip", ED_CTX_MAIN | ED_CTX_SERVER, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_real_ip_conf_t, real_ip), &ed_http_real_ip_block,
      NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_real_ip_module = {
    .name = "real_ip",
    .keys = ed_http_real_ip_keys,
    .conf_size = { 0, 0, sizeof(ed_http_real_ip_conf_t), 0 },
    .attach = ed_http_real_ip_attach,
    .postconf = ed_http_real_ip_postconf,
    .explain = ed_http_real_ip_explain,
};

/* from: a list of addresses, CIDR blocks, "all" or "unix:". */
static const char *
ed_http_real_ip_set_from(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                         void *conf)
{
    ed_http_real_ip_t *ri = conf;
    ed_array_t        *a;
    ed_cidr_t         *c;
    const char        *err;
    size_t             i, n;

    ed_unused(key);
    if (node->type == ED_NODE_MAP) {
        return "expected a list of addresses, CIDR blocks or \"unix:\"";
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    if (n == 0) {
        return "empty \"from\": no peer would be believed";
    }
    a = ed_array_create(cf->pool, n, sizeof(ed_cidr_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        ed_node_t *v = node->type == ED_NODE_SEQ ? node->items[i] : node;

        if (v->type != ED_NODE_SCALAR) {
            ed_conf_error(cf, v, "invalid address in real_ip.from: expected "
                          "an address, a CIDR block or \"unix:\"");
            continue;
        }
        if (strcmp(v->value.data, "unix:") == 0) {
            ri->unix_from = 1;
            continue;
        }
        c = ed_array_push(a);
        if (c == NULL) {
            return "out of memory";
        }
        if (ed_cidr_parse(v->value.data, v->value.len, c, &err) != ED_OK) {
            ed_conf_error(cf, v, "invalid address \"%s\" in real_ip.from: %s",
                          v->value.data, err);
            a->nelts--;
        }
    }
    ri->from = a;
    return NULL;
}

/* header: a field name (a token), or proxy_protocol. */
static const char *
ed_http_real_ip_set_header(ed_conf_t *cf, const ed_key_t *key,
                           ed_node_t *node, void *conf)
{
    ed_http_real_ip_t *ri = conf;

    ed_unused(key);
    if (node->type != ED_NODE_SCALAR || node->value.len == 0
        || !ed_http_field_ok(&node->value, ED_HTTP_C_TOKEN))
    {
        return "expected a header name (a token) or proxy_protocol";
    }
    ri->pp = strcmp(node->value.data, "proxy_protocol") == 0;
    return ed_str_dup(cf->pool, &ri->header, node->value.data,
                      node->value.len) == ED_OK ? NULL : "out of memory";
}

/* `real_ip: off` cancels an inherited one. */
static const char *
ed_http_real_ip_scalar(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_real_ip_t *ri = block;

    ed_unused(cf);
    if (ed_conf_parse_bool(node->value.data, node->value.len) != 0) {
        return "expected off or a mapping {from, header, recursive}";
    }
    ri->off = 1;
    return NULL;
}

static const char *
ed_http_real_ip_check_block(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_real_ip_t *ri = block;

    ed_unused(cf);
    if (!ri->off && ri->from == NULL && ed_conf_get(node, "from") == NULL) {
        return "\"from\" is required: the peers whose header is believed";
    }
    return NULL;
}

static ed_http_real_ip_t *
ed_http_real_ip_get(void **loc_conf)
{
    ed_http_real_ip_conf_t *c = loc_conf[ed_http_real_ip_module.index];
    ed_http_real_ip_t      *ri = c ? c->real_ip : NULL;

    return ri == NULL || ri->off || ri->from == NULL ? NULL : ri;
}

static bool
ed_http_real_ip_trusted(const ed_http_real_ip_t *ri,
                        const ed_peer_addr_t *a)
{
    const ed_cidr_t *c = ri->from->elts;
    size_t           i;

    if (a->sa.sa_family == AF_UNIX) {
        return ri->unix_from;
    }
    for (i = 0; i < ri->from->nelts; i++) {
        if (ed_cidr_match(&c[i], &a->sa)) {
            return true;
        }
    }
    return false;
}

/* An IPv4 or IPv6 address, nothing else (no port, no brackets). */
static int
ed_http_real_ip_parse(const ed_str_t *s, ed_peer_addr_t *a)
{
    char buf[48];

    if (s->len == 0 || s->len >= sizeof(buf)) {
        return ED_ERROR;
    }
    memcpy(buf, s->data, s->len);
    buf[s->len] = '\0';
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, buf, &a->in.sin_addr) == 1) {
        a->in.sin_family = AF_INET;
        return ED_OK;
    }
    if (inet_pton(AF_INET6, buf, &a->in6.sin6_addr) == 1) {
        a->in6.sin6_family = AF_INET6;
        return ED_OK;
    }
    return ED_ERROR;
}

static size_t
ed_http_real_ip_commas(const ed_str_t *v)
{
    size_t i, n = 0;

    for (i = 0; i < v->len; i++) {
        n += v->data[i] == ',';
    }
    return n;
}

/* The client X-Forwarded-For names: its elements over every field in
 * order, walked from the right. Recursive: the rightmost not in from
 * (all trusted: the leftmost); else the last. An element that is not an
 * address ends the walk with nothing. ED_OK with *a set, or
 * ED_DECLINED. */
static int
ed_http_real_ip_xff(ed_http_request_t *r, const ed_http_real_ip_t *ri,
                    ed_peer_addr_t *a)
{
    ed_str_t       *elts, e;
    ed_http_list_t  l;
    size_t          i, n = 0, cap = 0;

    /* Two passes: count, then collect (a walk from the right over a
     * list read left to right). */
    for (i = 0; i < r->head.nheaders; i++) {
        ed_http_header_t *h = &r->head.headers[i];

        if (ed_http_token_eq(h->name.data, h->name.len, ri->header.data,
                             ri->header.len))
        {
            cap += 1 + ed_http_real_ip_commas(&h->value);
        }
    }
    if (cap == 0) {
        return ED_DECLINED;
    }
    elts = ed_palloc(r->pool, cap * sizeof(ed_str_t));
    if (elts == NULL) {
        return ED_DECLINED;
    }
    for (i = 0; i < r->head.nheaders; i++) {
        ed_http_header_t *h = &r->head.headers[i];

        if (!ed_http_token_eq(h->name.data, h->name.len, ri->header.data,
                              ri->header.len))
        {
            continue;
        }
        ed_http_list_init(&l, h->value.data, h->value.len);
        while (n < cap && ed_http_list_next(&l, &e)) {
            if (e.len) {
                elts[n++] = e;
            }
        }
    }
    while (n--) {
        if (ed_http_real_ip_parse(&elts[n], a) != ED_OK) {
            return ED_DECLINED;
        }
        if (!ri->recursive || n == 0 || !ed_http_real_ip_trusted(ri, a)) {
            return ED_OK;
        }
    }
    return ED_DECLINED;
}

/* Another header: its one value (the last field of that name, which the
 * nearest proxy wrote). */
static int
ed_http_real_ip_one(ed_http_request_t *r, const ed_http_real_ip_t *ri,
                    ed_peer_addr_t *a)
{
    ed_str_t v = ed_null_string;
    size_t   i;

    for (i = 0; i < r->head.nheaders; i++) {
        ed_http_header_t *h = &r->head.headers[i];

        if (ed_http_token_eq(h->name.data, h->name.len, ri->header.data,
                             ri->header.len))
        {
            v = h->value;
        }
    }
    while (v.len && ed_http_ows(v.data[v.len - 1])) {
        v.len--;
    }
    while (v.len && ed_http_ows(v.data[0])) {
        v.data++;
        v.len--;
    }
    return v.data ? ed_http_real_ip_parse(&v, a) == ED_OK ? ED_OK
                                                          : ED_DECLINED
                  : ED_DECLINED;
}

static int
ed_http_real_ip_check(ed_http_request_t *r)
{
    const ed_http_real_ip_t *ri = ed_http_real_ip_get(r->loc_conf);
    const ed_peer_addr_t    *peer = &r->hc->c.peer, *src;
    ed_peer_addr_t           a, *p;
    int                      rc;

    /* Once per request: an internal redirect keeps what was found. */
    if (ri == NULL || r->remote != NULL) {
        return ED_DECLINED;
    }
    r->remote = peer;
    if (!ed_http_real_ip_trusted(ri, peer)) {
        return ED_DECLINED;
    }
    if (ri->pp) {
        src = ed_http_pp_src(r->hc);
        if (src != NULL) {
            r->remote = src;
        }
        return ED_DECLINED;
    }
    rc = ed_http_token_eq_lit(ri->header.data, ri->header.len,
                              "x-forwarded-for")
         ? ed_http_real_ip_xff(r, ri, &a) : ed_http_real_ip_one(r, ri, &a);
    if (rc == ED_OK) {
        p = ed_palloc(r->pool, sizeof(*p));
        if (p != NULL) {
            *p = a;
            r->remote = p;
        }
    }
    return ED_DECLINED;
}

/* eddy explain: runs the check itself on the explained request, so the
 * rules after it (access, limit_req) see the address it sets, as the
 * server's would. A PROXY header's source is not known to explain. */
static int
ed_http_real_ip_explain(ed_explain_t *ex)
{
    ed_http_request_t       *r = ex->r;
    const ed_http_real_ip_t *ri;
    const ed_peer_addr_t    *peer = &r->hc->c.peer;
    const char              *from;
    char                     pa[64], ca[64];

    if (ex->phase != ED_EXPLAIN_RULES
        || (ri = ed_http_real_ip_get(ex->loc->conf)) == NULL)
    {
        return ED_DECLINED;
    }
    from = ed_explain_from(ex, NULL, "real_ip", NULL, 0);
    r->remote = NULL;
    ed_http_real_ip_check(r);
    ed_peer_text(peer, pa, sizeof(pa));
    if (!ed_http_real_ip_trusted(ri, peer)) {
        ed_explain_rule(ex, "real_ip", "peer not trusted", 0, "%s is not in "
                        "from: the client is the peer (%s)", pa, from);
    } else if (ri->pp) {
        ed_explain_rule(ex, "real_ip", "trusted", 0, "%s; the client would "
                        "be the PROXY header's source, which explain does "
                        "not know (%s)", pa, from);
    } else if (ed_http_remote(r) != peer) {
        ed_peer_text(ed_http_remote(r), ca, sizeof(ca));
        ed_explain_rule(ex, "real_ip", "trusted", 0, "client %s from %.*s, "
                        "sent by %s (%s)", ca, (int)ri->header.len,
                        ri->header.data, pa, from);
    } else {
        ed_explain_rule(ex, "real_ip", "trusted", 0, "%s sent no usable "
                        "%.*s: the client is the peer (%s)", pa,
                        (int)ri->header.len, ri->header.data, from);
    }
    return ED_OK;
}

static int
ed_http_real_ip_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    if (ed_http_real_ip_get(loc->conf) == NULL) {
        return ED_OK;
    }
    return ed_http_access_add(cf, loc, ed_http_real_ip_check);
}

/* header: proxy_protocol in a server none of whose addresses has the
 * PROXY header would never find one. */
static int
ed_http_real_ip_postconf(ed_conf_t *cf)
{
    ed_http_core_main_conf_t *cmcf;
    ed_http_core_srv_conf_t  *cscf;
    ed_http_server_t        **srvs;
    ed_http_listen_t        **items;
    ed_http_real_ip_t        *ri;
    ed_node_t                *h;
    size_t                    i, j;
    bool                      pp;
    int                       rc = ED_OK;

    cmcf = cf->cycle->main_conf[ed_http_core_module.index];
    srvs = cmcf->servers.elts;
    for (i = 0; i < cmcf->servers.nelts; i++) {
        ri = ed_http_real_ip_get(srvs[i]->loc_conf);
        if (ri == NULL || !ri->pp) {
            continue;
        }
        cscf = srvs[i]->srv_conf[ed_http_core_module.index];
        pp = false;
        items = cscf->listen ? cscf->listen->elts : NULL;
        for (j = 0; items && j < cscf->listen->nelts; j++) {
            pp = pp || items[j]->proxy_protocol == 1;
        }
        if (!pp) {
            h = ed_conf_get(ri->node, "header");
            rc = ed_conf_error(cf, h ? h : ri->node, "real_ip header "
                               "\"proxy_protocol\" in server #%u, which has "
                               "no listen address with proxy_protocol",
                               srvs[i]->index);
        }
    }
    return rc;
}
