/* The HTTP core module: servers, listen, names, locations, and the
 * inheritable connection and limit keys. Builds the lookup structures. */
#include "ed_http.h"

#include <strings.h>
#include <sys/stat.h>

static const char *ed_http_set_servers(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static const char *ed_http_set_locations(ed_conf_t *cf, const ed_key_t *key,
                                         ed_node_t *node, void *conf);
static const char *ed_http_set_error_pages(ed_conf_t *cf,
                                           const ed_key_t *key,
                                           ed_node_t *node, void *conf);
static const char *ed_http_set_root(ed_conf_t *cf, const ed_key_t *key,
                                    ed_node_t *node, void *conf);
static const char *ed_http_set_address(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static const char *ed_http_listen_address(ed_conf_t *cf, ed_node_t *node,
                                          void *block);
static const char *ed_http_listen_check(ed_conf_t *cf, ed_node_t *node,
                                        void *block);
static int ed_http_core_postconf(ed_conf_t *cf);
static size_t ed_http_listener_describe(ed_listener_t *ls, char *buf,
                                        size_t size);

static const char *ed_http_set_http2(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);

static const ed_conf_bounds_t ed_http_requests_bounds = { 1, 100000000 };
static const ed_conf_bounds_t ed_http_header_size_bounds = { 256, 1048576 };
static const ed_conf_bounds_t ed_http_headers_bounds = { 1, 10000 };

static const ed_conf_bounds_t ed_http_backlog_bounds = { 1, 65535 };

#define ED_HTTP_LISTEN_KEY(name, flags, set, field, arg)                     \
    { name, ED_CTX_SERVER, flags, set, ED_CONF_SRV,                          \
      offsetof(ed_http_listen_t, field), arg, NULL }

/* The keys of a `listen` item. */
static const ed_key_t ed_http_listen_keys[] = {
    ED_HTTP_LISTEN_KEY("address", ED_KEY_PTR, ed_http_set_address, address,
                       NULL),
    ED_HTTP_LISTEN_KEY("default", ED_KEY_INT, ed_conf_set_bool, is_default,
                       NULL),
    ED_HTTP_LISTEN_KEY("backlog", ED_KEY_INT, ed_conf_set_int, backlog,
                       &ed_http_backlog_bounds),
    ED_HTTP_LISTEN_KEY("tls", ED_KEY_INT, ed_conf_set_bool, tls, NULL),
    { "proxy_protocol", ED_CTX_SERVER, ED_KEY_INT, ed_conf_set_bool,
      ED_CONF_SRV, offsetof(ed_http_listen_t, proxy_protocol), NULL,
      "false" },
    { "deferred", ED_CTX_SERVER, ED_KEY_INT, ed_conf_set_bool, ED_CONF_SRV,
      offsetof(ed_http_listen_t, deferred), NULL, "true" },
    ED_HTTP_LISTEN_KEY("http2", ED_KEY_INT, ed_http_set_http2, http2, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_listen_block = {
    .name = "listen",
    .keys = ed_http_listen_keys,
    .size = sizeof(ed_http_listen_t),
    .scalar = ed_http_listen_address,
    .check = ed_http_listen_check,
    .expect = "expected an address, or a mapping {address, default, "
              "backlog, tls, proxy_protocol, deferred, http2}",
    .list = 1,
};

#define ED_HTTP_LKEY(name, flags, set, field, arg, def)                      \
    { name, ED_CTX_ANY_HTTP, (flags) | ED_KEY_INHERIT, set, ED_CONF_LOC,     \
      offsetof(ed_http_core_loc_conf_t, field), arg, def }

static const ed_key_t ed_http_core_keys[] = {
    { "servers", ED_CTX_MAIN, ED_KEY_NONE | ED_KEY_INCLUDE_ITEMS,
      ed_http_set_servers, ED_CONF_MAIN, 0, NULL, NULL },
    { "listen", ED_CTX_SERVER, ED_KEY_BLOCK, ed_conf_set_block, ED_CONF_SRV,
      offsetof(ed_http_core_srv_conf_t, listen), &ed_http_listen_block,
      NULL },
    { "names", ED_CTX_SERVER, ED_KEY_PTR, ed_conf_set_node, ED_CONF_SRV,
      offsetof(ed_http_core_srv_conf_t, names), NULL, NULL },
    { "locations", ED_CTX_SERVER, ED_KEY_PTR, ed_http_set_locations,
      ED_CONF_SRV, offsetof(ed_http_core_srv_conf_t, locations), NULL,
      NULL },
    ED_HTTP_LKEY("root", ED_KEY_STR, ed_http_set_root, root, NULL, NULL),
    ED_HTTP_LKEY("keepalive_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 keepalive_timeout, NULL, "75s"),
    ED_HTTP_LKEY("keepalive_requests", ED_KEY_INT, ed_conf_set_int,
                 keepalive_requests, &ed_http_requests_bounds, "1000"),
    ED_HTTP_LKEY("client_header_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 client_header_timeout, NULL, "60s"),
    ED_HTTP_LKEY("client_body_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 client_body_timeout, NULL, "60s"),
    ED_HTTP_LKEY("send_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 send_timeout, NULL, "60s"),
    ED_HTTP_LKEY("client_max_body_size", ED_KEY_SIZE, ed_conf_set_size,
                 client_max_body_size, NULL, "1m"),
    ED_HTTP_LKEY("max_header_size", ED_KEY_SIZE, ed_conf_set_size,
                 max_header_size, &ed_http_header_size_bounds, "8k"),
    ED_HTTP_LKEY("max_headers", ED_KEY_INT, ed_conf_set_int, max_headers,
                 &ed_http_headers_bounds, "100"),
    ED_HTTP_LKEY("server_tokens", ED_KEY_INT, ed_conf_set_bool,
                 server_tokens, NULL, "true"),
    ED_HTTP_LKEY("underscores_in_headers", ED_KEY_INT, ed_conf_set_bool,
                 underscores_in_headers, NULL, "false"),
    ED_HTTP_LKEY("error_pages", ED_KEY_PTR, ed_http_set_error_pages,
                 error_pages, NULL, NULL),
    /* A location's own: not inherited (a server of internal locations
     * would answer nothing). */
    { "internal", ED_CTX_LOCATION, ED_KEY_INT, ed_conf_set_bool,
      ED_CONF_LOC, offsetof(ed_http_core_loc_conf_t, internal), NULL,
      "false" },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_core_module = {
    .name = "http_core",
    .keys = ed_http_core_keys,
    .conf_size = { sizeof(ed_http_core_main_conf_t), sizeof(ed_http_core_srv_conf_t),
      sizeof(ed_http_core_loc_conf_t), 0 },
    .postconf = ed_http_core_postconf,
};

/* The server whose map is being applied (the loader is single-threaded). */
ed_http_server_t   *ed_http_cur_server;
ed_http_location_t *ed_http_cur_location;

/* listen.address: 8080, "127.0.0.1:8080", "[::1]:8080" or unix:/path,
 * checked when the listener is made. Returns NULL or a message. */
static const char *
ed_http_set_address(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected an address like 8080, \"127.0.0.1:8080\", "
               "\"[::1]:8080\" or unix:/path";
    }
    return ed_conf_set_node(cf, key, node, conf);
}

/* A listen item that is an address alone. Returns NULL or a message. */
static const char *
ed_http_listen_address(ed_conf_t *cf, ed_node_t *node, void *block)
{
    return ed_http_set_address(cf, &ed_http_listen_keys[0], node, block);
}

/* listen.http2: true or false; refused by a build without HTTP/2.
 * Returns NULL or a message. */
static const char *
ed_http_set_http2(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                  void *conf)
{
#if !ED_HAVE_HTTP2
    if (strcmp(node->file, "(default)") != 0) {
        ed_conf_error(cf, node, "eddy was built without HTTP/2");
        return NULL;
    }
#endif
    return ed_conf_set_bool(cf, key, node, conf);
}

/* A listen item needs an address. Returns NULL (the error is recorded
 * at the item). */
static const char *
ed_http_listen_check(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_listen_t *l = block;

    if (l->address == NULL && ed_conf_get(node, "address") == NULL) {
        ed_conf_error(cf, node, "listen item without \"address\"");
    }
    return NULL;
}

/* root: a path that must name an existing directory. */
static const char *
ed_http_set_root(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    const char  *err = ed_conf_set_path(cf, key, node, conf);
    ed_str_t    *root = (ed_str_t *)((char *)conf + key->offset);
    struct stat  st;

    if (err) {
        return err;
    }
    if (stat(root->data, &st) != 0) {
        ed_conf_error(cf, node, "root \"%s\" cannot be used: %s",
                      root->data, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        ed_conf_error(cf, node, "root \"%s\" is not a directory",
                      root->data);
    }
    return NULL;
}

/* Allocates the per-module structs of one level into a new array. */
static void **
ed_http_confs(ed_conf_t *cf, unsigned level)
{
    void       **confs;
    ed_module_t *m;
    size_t       i;

    confs = ed_pcalloc(cf->pool, ed_modules_n * sizeof(void *));
    if (confs == NULL) {
        return NULL;
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->conf_size[level]) {
            confs[i] = ed_conf_create(cf, m, level);
            if (confs[i] == NULL) {
                return NULL;
            }
        }
    }
    return confs;
}

static const char *
ed_http_set_servers(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    ed_http_core_main_conf_t *cmcf = conf;
    ed_http_server_t         *srv, **slot;
    void                    **saved_loc;
    const char               *saved_name;
    unsigned                  saved_ctx;
    char                      name[32];
    size_t                    i;

    ed_unused(key);
    if (node->type != ED_NODE_SEQ) {
        return "expected a list of servers";
    }
    if (cmcf->servers.elts == NULL
        && ed_array_init(&cmcf->servers, cf->pool, 4,
                         sizeof(ed_http_server_t *)) != ED_OK)
    {
        return "out of memory";
    }
    saved_loc = cf->confs[ED_CONF_LOC];
    saved_ctx = cf->ctx;
    saved_name = cf->ctx_name;
    for (i = 0; i < node->n; i++) {
        ed_node_t *item = node->items[i];

        if (item->type != ED_NODE_MAP) {
            ed_conf_error(cf, item, "expected a server mapping");
            continue;
        }
        srv = ed_pcalloc(cf->pool, sizeof(ed_http_server_t));
        slot = ed_array_push(&cmcf->servers);
        if (srv == NULL || slot == NULL) {
            return "out of memory";
        }
        *slot = srv;
        srv->index = (unsigned)cmcf->servers.nelts;
        srv->node = item;
        srv->srv_conf = ed_http_confs(cf, ED_CONF_SRV);
        srv->loc_conf = ed_http_confs(cf, ED_CONF_LOC);
        if (srv->srv_conf == NULL || srv->loc_conf == NULL
            || ed_array_init(&srv->locations, cf->pool, 8,
                             sizeof(ed_http_location_t *)) != ED_OK)
        {
            return "out of memory";
        }
        snprintf(name, sizeof(name), "server #%u", srv->index);
        cf->ctx = ED_CTX_SERVER;
        cf->ctx_name = ed_pstrdup(cf->pool, name, strlen(name));
        cf->confs[ED_CONF_SRV] = srv->srv_conf;
        cf->confs[ED_CONF_LOC] = srv->loc_conf;
        ed_http_cur_server = srv;
        ed_conf_apply(cf, item);
    }
    ed_http_cur_server = NULL;
    cf->confs[ED_CONF_SRV] = NULL;
    cf->confs[ED_CONF_LOC] = saved_loc;
    cf->ctx = saved_ctx;
    cf->ctx_name = saved_name;
    return NULL;
}

/* Parses a location key: "= /x", "^~ /x", "~ re", "~* re", "/prefix". */
static const char *
ed_http_location_match(ed_conf_t *cf, ed_http_location_t *loc,
                       ed_node_t *key)
{
    const char *s = key->value.data, *err;
    size_t      skip;

    if (strncmp(s, "= ", 2) == 0) {
        loc->kind = ED_HTTP_LOC_EXACT;
        skip = 2;
    } else if (strncmp(s, "^~ ", 3) == 0) {
        loc->kind = ED_HTTP_LOC_NOREGEX;
        skip = 3;
    } else if (strncmp(s, "~* ", 3) == 0) {
        loc->kind = ED_HTTP_LOC_REGEX_CASELESS;
        skip = 3;
    } else if (strncmp(s, "~ ", 2) == 0) {
        loc->kind = ED_HTTP_LOC_REGEX;
        skip = 2;
    } else {
        loc->kind = ED_HTTP_LOC_PREFIX;
        skip = 0;
    }
    while (s[skip] == ' ') {
        skip++;
    }
    loc->match.data = (char *)s + skip;
    loc->match.len = key->value.len - skip;
    if (loc->match.len == 0) {
        return "empty location match";
    }
    if (loc->kind == ED_HTTP_LOC_REGEX
        || loc->kind == ED_HTTP_LOC_REGEX_CASELESS)
    {
        loc->re = ed_http_regex_compile(cf->pool, loc->match.data,
                                        loc->match.len,
                                        loc->kind
                                            == ED_HTTP_LOC_REGEX_CASELESS,
                                        &err);
        if (loc->re == NULL) {
            return err;
        }
        pcre2_pattern_info(loc->re, PCRE2_INFO_CAPTURECOUNT,
                           &loc->ncaptures);
        return NULL;
    }
    if (loc->match.data[0] != '/') {
        return "expected a location starting with \"/\", or \"= \", "
               "\"^~ \", \"~ \", \"~* \" followed by a space";
    }
    return NULL;
}

static const char *
ed_http_set_locations(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                      void *conf)
{
    ed_http_server_t   *srv = ed_http_cur_server;
    ed_http_location_t *loc, **slot;
    void              **saved_loc;
    const char         *saved_name, *err;
    size_t              i;
    char                name[128];

    ed_unused(key);
    ed_unused(conf);
    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of match -> location";
    }
    saved_loc = cf->confs[ED_CONF_LOC];
    saved_name = cf->ctx_name;
    for (i = 0; i < node->n; i++) {
        ed_node_t *k = node->items[2 * i], *v = node->items[2 * i + 1];

        loc = ed_pcalloc(cf->pool, sizeof(ed_http_location_t));
        slot = ed_array_push(&srv->locations);
        if (loc == NULL || slot == NULL) {
            return "out of memory";
        }
        *slot = loc;
        loc->server = srv;
        loc->node = v;
        loc->name = k->value;
        err = ed_http_location_match(cf, loc, k);
        if (err) {
            ed_conf_error(cf, k, "invalid location \"%s\": %s",
                          k->value.data, err);
            continue;
        }
        loc->conf = ed_http_confs(cf, ED_CONF_LOC);
        if (loc->conf == NULL) {
            return "out of memory";
        }
        if (v->type == ED_NODE_SCALAR && v->value.len == 0 && !v->quoted) {
            continue; /* an empty location: inherits everything */
        }
        if (v->type != ED_NODE_MAP) {
            ed_conf_error(cf, v, "expected a mapping for location \"%s\"",
                          k->value.data);
            continue;
        }
        snprintf(name, sizeof(name), "location \"%.100s\"", k->value.data);
        cf->ctx = ED_CTX_LOCATION;
        cf->ctx_name = ed_pstrdup(cf->pool, name, strlen(name));
        cf->confs[ED_CONF_LOC] = loc->conf;
        ed_http_cur_location = loc;
        ed_conf_apply(cf, v);
        ed_http_cur_location = NULL;
    }
    cf->ctx = ED_CTX_SERVER;
    cf->ctx_name = saved_name;
    cf->confs[ED_CONF_LOC] = saved_loc;
    return NULL;
}

/* error_pages: {404: /404.html, 500: /50x.html} */
static const char *
ed_http_set_error_pages(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                        void *conf)
{
    ed_array_t           *pages;
    ed_http_error_page_t *p;
    size_t                i;
    int64_t               status;

    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of status -> URI";
    }
    pages = ed_array_create(cf->pool, node->n ? node->n : 1,
                            sizeof(ed_http_error_page_t));
    if (pages == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        ed_node_t *k = node->items[2 * i], *v = node->items[2 * i + 1];

        status = ed_atoi(k->value.data, k->value.len);
        if (status < 300 || status > 599) {
            ed_conf_error(cf, k, "invalid status \"%s\" in error_pages: "
                          "expected 300-599", k->value.data);
            continue;
        }
        if (v->type != ED_NODE_SCALAR || v->value.data[0] != '/') {
            ed_conf_error(cf, v, "expected a URI starting with \"/\" in "
                          "error_pages");
            continue;
        }
        p = ed_array_push(pages);
        if (p == NULL) {
            return "out of memory";
        }
        p->status = (int)status;
        p->uri = v->value;
    }
    *(ed_array_t **)((char *)conf + key->offset) = pages;
    return NULL;
}

/* Adds one `listen` item of a server to its listener. */
static int
ed_http_listen_item(ed_conf_t *cf, ed_http_server_t *srv,
                    const ed_http_listen_t *item)
{
    ed_core_conf_t *ccf = ed_core_conf(cf->cycle);
    ed_node_t      *addr = item->address;
    ed_listener_t  *ls;
    ed_http_addr_t *ha;
    ed_http_server_t **slot;
    const char     *err;
    int             backlog = item->backlog, tls = item->tls;
    int             http2 = item->http2;
    size_t          i;

    /* A server with a tls block makes its addresses TLS unless an item
     * says tls: false. */
    if (tls == ED_CONF_UNSET) {
        tls = ed_conf_get(srv->node, "tls") != NULL;
    }
    /* HTTP/2 is on by default where ALPN lets every client fall back
     * (TLS), off on cleartext, where only prior knowledge finds it. */
    if (http2 == ED_CONF_UNSET) {
        http2 = tls && ED_HAVE_HTTP2;
    }
    ls = ed_cycle_listener(cf->cycle, addr->value.data, &err);
    if (ls == NULL) {
        return ed_conf_error(cf, addr, "invalid listen address \"%s\": %s",
                             addr->value.data, err);
    }
    ls->handler = ed_http_accept;
    ls->adopt = ed_http_adopt;
    ls->describe = ed_http_listener_describe;
    if (ls->backlog == 0 || backlog > 0) {
        ls->backlog = backlog > 0 ? backlog : ccf->events->backlog;
    }
    ha = ls->servers;
    if (ha && (int)ls->tls != tls) {
        return ed_conf_error(cf, addr, "listen address \"%s\" is used both "
                             "with and without TLS", ls->name);
    }
    if (ha && ha->proxy_protocol != (item->proxy_protocol == 1)) {
        return ed_conf_error(cf, addr, "listen address \"%s\" is used both "
                             "with and without proxy_protocol", ls->name);
    }
    if (ha && ha->http2 != (http2 == 1)) {
        slot = ha->servers.elts;
        return ed_conf_error(cf, ed_conf_get(item->node, "http2")
                                     ? ed_conf_get(item->node, "http2")
                                     : addr,
                             "listen \"%s\" has http2: %s here but %s in "
                             "server #%u", ls->name,
                             http2 == 1 ? "true" : "false",
                             ha->http2 ? "true" : "false", slot[0]->index);
    }
    if (ha && ls->deferred != (item->deferred != 0)) {
        return ed_conf_error(cf, addr, "listen address \"%s\" is used both "
                             "with and without deferred", ls->name);
    }
    ls->tls = tls ? 1 : 0;
    ls->deferred = item->deferred != 0;
    if (ha == NULL) {
        ha = ed_pcalloc(cf->pool, sizeof(ed_http_addr_t));
        if (ha == NULL || ed_array_init(&ha->servers, cf->pool, 2,
                                        sizeof(ed_http_server_t *)) != ED_OK)
        {
            return ED_ERROR;
        }
        ls->servers = ha;
        ha->proxy_protocol = item->proxy_protocol == 1;
        ha->http2 = http2 == 1;
    }
    slot = ha->servers.elts;
    for (i = 0; i < ha->servers.nelts; i++) {
        if (slot[i] == srv) {
            return ed_conf_error(cf, addr, "duplicate listen address \"%s\"",
                                 ls->name);
        }
    }
    slot = ed_array_push(&ha->servers);
    if (slot == NULL) {
        return ED_ERROR;
    }
    *slot = srv;
    if (item->is_default == 1) {
        if (ha->default_server) {
            return ed_conf_error(cf, addr, "a default server for \"%s\" is "
                                 "already defined (server #%u)", ls->name,
                                 ha->default_server->index);
        }
        ha->default_server = srv;
    }
    return ED_OK;
}

/* Appends text to buf[*n..size), cut to fit. */
static void
ed_http_describe_add(char *buf, size_t size, size_t *n, const char *text)
{
    int k = snprintf(buf + *n, size - *n, "%s", text);

    *n = k < 0 ? *n : ed_min(*n + (size_t)k, size - 1);
}

/* "(http) for a, b; default: FILE:LINE:COL": the names of every server
 * on the address, as written, and where the default server is. */
static size_t
ed_http_listener_describe(ed_listener_t *ls, char *buf, size_t size)
{
    ed_http_addr_t           *ha = ls->servers;
    ed_http_server_t        **srvs;
    ed_http_core_srv_conf_t  *cscf;
    ed_node_t                *names, *d;
    char                      pos[512];
    size_t                    n = 0, i, j;
    bool                      any = false;

    buf[0] = '\0';
    ed_http_describe_add(buf, size, &n, ls->tls ? "(tls) for " : "(http) for ");
    srvs = ha ? ha->servers.elts : NULL;
    for (i = 0; ha && i < ha->servers.nelts; i++) {
        cscf = srvs[i]->srv_conf[ed_http_core_module.index];
        names = cscf->names;
        for (j = 0; names && j < (names->type == ED_NODE_SEQ ? names->n : 1);
             j++)
        {
            const ed_node_t *nm = names->type == ED_NODE_SEQ
                                  ? names->items[j] : names;

            if (nm->type != ED_NODE_SCALAR) {
                continue;
            }
            ed_http_describe_add(buf, size, &n, any ? ", " : "");
            ed_http_describe_add(buf, size, &n, nm->value.data);
            any = true;
        }
    }
    if (!any) {
        ed_http_describe_add(buf, size, &n, "no names");
    }
    d = ha && ha->default_server ? ha->default_server->node : NULL;
    if (d) {
        snprintf(pos, sizeof(pos), "; default: %s:%u:%u", d->file, d->line,
                 d->col);
        ed_http_describe_add(buf, size, &n, pos);
    }
    return n;
}

static int
ed_http_server_names(ed_conf_t *cf, ed_http_server_t *srv, ed_node_t *node)
{
    ed_node_t      **items = &node, *n;
    ed_http_name_t  *name;
    size_t           count = 1, i;
    const char      *err;

    if (ed_array_init(&srv->names, cf->pool, 2, sizeof(ed_http_name_t))
        != ED_OK)
    {
        return ED_ERROR;
    }
    if (node == NULL) {
        return ED_OK;
    }
    if (node->type == ED_NODE_SEQ) {
        items = node->items;
        count = node->n;
    }
    for (i = 0; i < count; i++) {
        n = items[i];
        if (n->type != ED_NODE_SCALAR || n->value.len == 0) {
            ed_conf_error(cf, n, "expected a server name");
            continue;
        }
        name = ed_array_push(&srv->names);
        if (name == NULL) {
            return ED_ERROR;
        }
        if (srv->server_name.len == 0) {
            srv->server_name = n->value;
        }
        if (n->value.data[0] == '~') {
            name->kind = 3;
            name->re = ed_http_regex_compile(cf->pool, n->value.data + 1,
                                             n->value.len - 1, true, &err);
            if (name->re == NULL) {
                ed_conf_error(cf, n, "invalid server name regex: %s", err);
            }
            continue;
        }
        name->name.data = ed_pnalloc(cf->pool, n->value.len);
        if (name->name.data == NULL) {
            return ED_ERROR;
        }
        ed_strlow(name->name.data, n->value.data, n->value.len);
        name->name.len = n->value.len;
        if (n->value.len > 2 && memcmp(n->value.data, "*.", 2) == 0) {
            name->kind = 1;
            name->name.data += 1; /* keep the dot: ".example.com" */
            name->name.len -= 1;
        } else if (n->value.len > 2
                   && memcmp(n->value.data + n->value.len - 2, ".*", 2) == 0)
        {
            name->kind = 2;
            name->name.len -= 1; /* keep the dot: "www." */
        } else if (strchr(n->value.data, '*')) {
            ed_conf_error(cf, n, "invalid server name \"%s\": a wildcard "
                          "is allowed only as \"*.name\" or \"name.*\"",
                          n->value.data);
        }
    }
    return ED_OK;
}

int
ed_http_access_add(ed_conf_t *cf, ed_http_location_t *loc,
                   ed_http_access_pt check)
{
    if (loc->naccess == ED_HTTP_ACCESS_MAX) {
        return ed_conf_error(cf, loc->node, "too many access checks in %s",
                             cf->ctx_name);
    }
    loc->access[loc->naccess++] = check;
    return ED_OK;
}

/* Merges levels and attaches handlers to one location. */
static int
ed_http_location_init(ed_conf_t *cf, ed_http_server_t *srv,
                      ed_http_location_t *loc)
{
    ed_http_core_loc_conf_t *clcf;
    ed_module_t             *m;
    size_t                   i;
    char                     name[128];

    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->conf_size[ED_CONF_LOC]) {
            ed_conf_merge(m->keys, ED_CONF_LOC, srv->loc_conf[i],
                          loc->conf[i]);
        }
    }
    snprintf(name, sizeof(name), "location \"%.100s\"", loc->name.data);
    cf->ctx = ED_CTX_LOCATION;
    cf->ctx_name = ed_pstrdup(cf->pool, name, strlen(name));
    if (cf->ctx_name == NULL) {
        return ED_ERROR;
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->attach && m->attach(cf, loc) != ED_OK) {
            return ED_ERROR;
        }
    }
    clcf = loc->conf[ed_http_core_module.index];
    loc->internal = clcf->internal == 1;
    return ED_OK;
}

/* The name nodes of a server's `names` (a scalar or a list) in *items.
 * Returns their count. */
static size_t
ed_http_name_nodes(ed_http_server_t *srv, ed_node_t ***items)
{
    ed_http_core_srv_conf_t *cscf;
    ed_node_t               *names;

    cscf = srv->srv_conf[ed_http_core_module.index];
    names = cscf->names;
    if (names == NULL) {
        return 0;
    }
    if (names->type == ED_NODE_SEQ) {
        *items = names->items;
        return names->n;
    }
    *items = &cscf->names;
    return 1;
}

/* Warnings for one address: a name a server earlier on the address
 * already has (the later one is never chosen for it), and a default
 * decided only by the order of the files. */
static void
ed_http_check_addr(ed_conf_t *cf, ed_listener_t *ls, ed_http_addr_t *ha)
{
    ed_http_server_t **srvs = ha->servers.elts;
    ed_node_t        **a, **b;
    size_t             i, j, k, l, na, nb;
    bool               files = false;

    for (i = 0; i < ha->servers.nelts; i++) {
        na = ed_http_name_nodes(srvs[i], &a);
        for (k = 0; k < na; k++) {
            if (a[k]->type != ED_NODE_SCALAR || a[k]->value.len == 0) {
                continue;
            }
            for (j = 0; j < i; j++) {
                nb = ed_http_name_nodes(srvs[j], &b);
                for (l = 0; l < nb; l++) {
                    if (b[l]->type == ED_NODE_SCALAR
                        && b[l]->value.len == a[k]->value.len
                        && strncasecmp(b[l]->value.data, a[k]->value.data,
                                       a[k]->value.len) == 0)
                    {
                        break;
                    }
                }
                if (l < nb) {
                    ed_conf_warn(cf, a[k], "server name \"%s\" on %s is "
                                 "already used by server #%u (%s:%u:%u); "
                                 "this server is never chosen for it",
                                 a[k]->value.data, ls->name, srvs[j]->index,
                                 b[l]->file, b[l]->line, b[l]->col);
                    break;
                }
            }
        }
        if (i > 0 && srvs[i]->node->file && srvs[0]->node->file
            && strcmp(srvs[i]->node->file, srvs[0]->node->file) != 0)
        {
            files = true;
        }
    }
    if (ha->default_server == NULL && files) {
        ed_conf_warn(cf, srvs[0]->node, "%s has no \"default: true\" "
                     "server; this one is the default only because its file "
                     "sorts first", ls->name);
    }
}

static int
ed_http_core_postconf(ed_conf_t *cf)
{
    ed_http_core_main_conf_t *cmcf;
    ed_http_core_srv_conf_t  *cscf;
    ed_http_server_t        **srvs, *srv;
    ed_http_location_t      **locs;
    ed_module_t              *m;
    ed_listener_t           **ls;
    ed_http_addr_t           *ha;
    ed_http_listen_t        **items;
    size_t                    i, j;
    static ed_str_t           fallback_name = ed_string("(none)");

    cmcf = cf->cycle->main_conf[ed_http_core_module.index];
    srvs = cmcf->servers.elts;
    if (cmcf->servers.nelts == 0) {
        ed_node_t top;

        /* Nothing would accept a connection: a mistake, not a choice
         * (an include that found no file, a misspelt "servers"). */
        memset(&top, 0, sizeof(top));
        top.file = cf->cycle->conf_file;
        top.line = 1;
        top.col = 1;
        return ed_conf_error(cf, &top, "no server listens anywhere (no "
                             "servers defined); add a server with "
                             "\"listen\"");
    }
    for (i = 0; i < cmcf->servers.nelts; i++) {
        srv = srvs[i];
        cscf = srv->srv_conf[ed_http_core_module.index];
        for (j = 0; (m = ed_modules[j]) != NULL; j++) {
            if (m->conf_size[ED_CONF_LOC]) {
                ed_conf_merge(m->keys, ED_CONF_LOC, cf->confs[ED_CONF_LOC][j],
                              srv->loc_conf[j]);
            }
        }
        if (cscf->listen == NULL) {
            ed_conf_error(cf, srv->node, "server #%u has no \"listen\"",
                          srv->index);
        } else {
            items = cscf->listen->elts;
            for (j = 0; j < cscf->listen->nelts; j++) {
                ed_http_listen_item(cf, srv, items[j]);
            }
        }
        if (ed_http_server_names(cf, srv, cscf->names) != ED_OK) {
            return ED_ERROR;
        }
        locs = srv->locations.elts;
        for (j = 0; j < srv->locations.nelts; j++) {
            if (locs[j]->conf
                && ed_http_location_init(cf, srv, locs[j]) != ED_OK)
            {
                return ED_ERROR;
            }
        }
        /* Requests no location matches use the server's own settings. */
        srv->fallback = ed_pcalloc(cf->pool, sizeof(ed_http_location_t));
        if (srv->fallback == NULL) {
            return ED_ERROR;
        }
        srv->fallback->server = srv;
        srv->fallback->conf = srv->loc_conf;
        srv->fallback->name = fallback_name;
        cf->ctx = ED_CTX_SERVER;
        cf->ctx_name = "server";
        for (j = 0; (m = ed_modules[j]) != NULL; j++) {
            if (m->attach && m->attach(cf, srv->fallback) != ED_OK) {
                return ED_ERROR;
            }
        }
    }
    ls = cf->cycle->listeners.elts;
    for (i = 0; i < cf->cycle->listeners.nelts; i++) {
        ha = ls[i]->servers;
        if (ha) {
            ed_http_check_addr(cf, ls[i], ha);
        }
        if (ha && ha->default_server == NULL) {
            ha->default_server = ((ed_http_server_t **)ha->servers.elts)[0];
        }
    }
    return ed_http_memory_check(cf);
}
