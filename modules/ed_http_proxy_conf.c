/* The proxy module's configuration: the `proxy` block, resolving
 * `pass` to an upstream group and installing the handler
 * (ed_http_proxy.c). */
#include "ed_http_proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <sys/socket.h>

static const char *ed_proxy_check(ed_conf_t *cf, ed_node_t *node,
                                  void *block);
static const char *ed_proxy_set_headers(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
static const char *ed_proxy_set_server_name(ed_conf_t *cf,
                                            const ed_key_t *key,
                                            ed_node_t *node, void *conf);
static int ed_proxy_attach(ed_conf_t *cf, ed_http_location_t *loc);

static const ed_conf_bounds_t ed_proxy_tries_bounds = { 0, 1000 };
static const ed_conf_bounds_t ed_proxy_buffer_bounds = { 1024, 67108864 };

#define ED_PROXY_KEY(name, flags, set, field, arg, def)                      \
    { name, ED_CTX_LOCATION, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_proxy_conf_t, field), arg, def }

/* The keys of the `proxy` block (config.md, proxy). */
static const ed_key_t ed_proxy_block_keys[] = {
    ED_PROXY_KEY("pass", ED_KEY_STR, ed_conf_set_str, pass, NULL, NULL),
    ED_PROXY_KEY("connect_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 connect_timeout, NULL, "5s"),
    ED_PROXY_KEY("send_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 send_timeout, NULL, "60s"),
    ED_PROXY_KEY("read_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                 read_timeout, NULL, "60s"),
    ED_PROXY_KEY("next_upstream", ED_KEY_INT, ed_http_upstream_set_next,
                 next_upstream, NULL, "error, timeout"),
    ED_PROXY_KEY("next_upstream_tries", ED_KEY_INT, ed_conf_set_int,
                 next_upstream_tries, &ed_proxy_tries_bounds, "3"),
    ED_PROXY_KEY("pass_host", ED_KEY_INT, ed_conf_set_bool, pass_host, NULL,
                 "true"),
    ED_PROXY_KEY("set_headers", ED_KEY_PTR, ed_proxy_set_headers,
                 set_headers, NULL, NULL),
    ED_PROXY_KEY("remove_headers", ED_KEY_PTR, ed_conf_set_str_list,
                 remove_headers, NULL, NULL),
    ED_PROXY_KEY("forwarded", ED_KEY_INT, ed_conf_set_bool, forwarded, NULL,
                 "true"),
    ED_PROXY_KEY("buffer_size", ED_KEY_SIZE, ed_conf_set_size, buffer_size,
                 &ed_proxy_buffer_bounds, "64k"),
    ED_PROXY_KEY("websocket", ED_KEY_INT, ed_conf_set_bool, websocket, NULL,
                 "true"),
    ED_PROXY_KEY("tls_verify", ED_KEY_INT, ed_conf_set_bool, tls_verify,
                 NULL, "true"),
    ED_PROXY_KEY("tls_ca", ED_KEY_STR, ed_conf_set_path, tls_ca, NULL, NULL),
    ED_PROXY_KEY("tls_server_name", ED_KEY_STR, ed_proxy_set_server_name,
                 tls_server_name, NULL, NULL),
    ED_HTTP_CACHE_KEYS(ed_http_proxy_conf_t),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_proxy_block = {
    .name = "proxy",
    .keys = ed_proxy_block_keys,
    .size = sizeof(ed_http_proxy_conf_t),
    .check = ed_proxy_check,
    .expect = "expected a mapping like {pass: app}",
};

static const ed_key_t ed_proxy_keys[] = {
    { "proxy", ED_CTX_LOCATION, ED_KEY_BLOCK, ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_proxy_loc_conf_t, block), &ed_proxy_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_proxy_module = {
    .name = "proxy",
    .keys = ed_proxy_keys,
    .conf_size = { 0, 0, sizeof(ed_http_proxy_loc_conf_t), 0 },
    .attach = ed_proxy_attach,
    .explain = ed_http_proxy_explain,
};

/* Configuration. */

/* tls_server_name: a host name or an address, as sent in SNI and
 * checked against the certificate. */
static const char *
ed_proxy_set_server_name(ed_conf_t *cf, const ed_key_t *key,
                         ed_node_t *node, void *conf)
{
    unsigned char addr[sizeof(struct in6_addr)];
    const char   *p, *label;

    ed_unused(cf);
    if (node->type != ED_NODE_SCALAR || node->value.len == 0
        || node->value.len > 253)
    {
        return "expected a host name like api.internal";
    }
    if (inet_pton(AF_INET6, node->value.data, addr) == 1) {
        *(ed_str_t *)((char *)conf + key->offset) = node->value;
        return NULL;
    }
    /* Labels of 1 to 63 letters, digits, '-' or '_', not starting or
     * ending with '-' (an IPv4 address is such a name too). */
    for (label = p = node->value.data;; p++) {
        if (*p == '.' || *p == '\0') {
            if (p == label || p - label > 63 || *label == '-'
                || p[-1] == '-')
            {
                return "expected a host name like api.internal or an IP "
                       "address";
            }
            if (*p == '\0') {
                break;
            }
            label = p + 1;
        } else if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            return "expected a host name like api.internal or an IP "
                   "address";
        }
    }
    *(ed_str_t *)((char *)conf + key->offset) = node->value;
    return NULL;
}

/* set_headers: {Name: value with $vars}. */
static const char *
ed_proxy_set_headers(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                     void *conf)
{
    ed_http_proxy_header_t *h;
    ed_array_t             *a;
    const char             *err;
    size_t                  i, j;

    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of header name -> value";
    }
    a = ed_array_create(cf->pool, node->n ? node->n : 1,
                        sizeof(ed_http_proxy_header_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        ed_node_t *k = node->items[2 * i], *v = node->items[2 * i + 1];

        for (j = 0; j < k->value.len; j++) {
            if (!(ed_http_char[(u_char)k->value.data[j]] & ED_HTTP_C_TOKEN)) {
                break;
            }
        }
        if (k->value.len == 0 || j < k->value.len) {
            ed_conf_error(cf, k, "invalid header name \"%s\" in set_headers",
                          k->value.data);
            continue;
        }
        if (ed_http_upstream_own_header(&k->value)) {
            ed_conf_error(cf, k, "header \"%s\" cannot be set: the proxy "
                          "writes it itself (Host: see pass_host; "
                          "hop-by-hop and framing headers)", k->value.data);
            continue;
        }
        if (v->type != ED_NODE_SCALAR) {
            ed_conf_error(cf, v, "expected a string for header \"%s\"",
                          k->value.data);
            continue;
        }
        if (strpbrk(v->value.data, "\r\n")) {
            ed_conf_error(cf, v, "a header value cannot hold CR or LF");
            continue;
        }
        h = ed_array_push(a);
        if (h == NULL) {
            return "out of memory";
        }
        h->name = k->value;
        h->value = ed_http_template_compile(cf, v, &err);
        if (h->value == NULL) {
            ed_conf_error(cf, v, "invalid value for header \"%s\": %s",
                          k->value.data, err);
        }
    }
    *(ed_array_t **)((char *)conf + key->offset) = a;
    return NULL;
}

/* A proxy block needs pass; the cache keys need cache. Returns NULL (the
 * errors are recorded at the block or the key). */
static const char *
ed_proxy_check(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_proxy_conf_t *pcf = block;

    if (pcf->pass.data == NULL) {
        ed_conf_error(cf, node, "proxy needs \"pass\": an upstream name or "
                      "a URL like http://127.0.0.1:9000");
    }
    ed_http_cache_loc_check(cf, node, &pcf->cache_conf, "proxy");
    return NULL;
}

/* Frees the sessions a worker kept for an https pass. */
static void
ed_proxy_tls_cleanup(void *data)
{
    ed_http_proxy_conf_t *pcf = data;
    size_t                i;

    for (i = 0; i < pcf->ups->nservers; i++) {
        if (pcf->tls->sessions[i] != NULL) {
            SSL_SESSION_free(pcf->tls->sessions[i]);
            pcf->tls->sessions[i] = NULL;
        }
    }
}

/* Makes the TLS settings of an https pass: the client context (CA
 * certificates loaded now, so -t finds a bad tls_ca), the server name and
 * a session slot per server. ED_OK or ED_ERROR (recorded). */
static int
ed_proxy_tls(ed_conf_t *cf, ed_http_proxy_conf_t *pcf)
{
    ed_http_upstream_tls_t *tls;
    ed_node_t              *node;
    char                    err[1024];

    tls = ed_pcalloc(cf->pool, sizeof(ed_http_upstream_tls_t));
    if (tls == NULL) {
        return ed_conf_error(cf, pcf->node, "out of memory");
    }
    tls->sessions = ed_pcalloc(cf->pool,
                               pcf->ups->nservers * sizeof(SSL_SESSION *));
    tls->ctx = ed_tls_client_ctx(pcf->tls_verify != 0, pcf->tls_ca.data,
                                 err, sizeof(err));
    if (tls->ctx == NULL) {
        node = ed_conf_get(pcf->node, "tls_ca");
        return ed_conf_error(cf, node ? node : pcf->node, "%s", err);
    }
    if (ed_pool_cleanup_add(cf->pool, (ed_pool_cleanup_pt)SSL_CTX_free,
                            tls->ctx) != ED_OK
        || tls->sessions == NULL)
    {
        return ed_conf_error(cf, pcf->node, "out of memory");
    }
    tls->verify = pcf->tls_verify != 0;
    tls->name = pcf->tls_server_name;
    pcf->tls = tls;
    if (ed_pool_cleanup_add(cf->pool, ed_proxy_tls_cleanup, pcf) != ED_OK) {
        return ed_conf_error(cf, pcf->node, "out of memory");
    }
    if (pcf->ups->tls == NULL) {
        pcf->ups->tls = tls;
    }
    return ED_OK;
}

/* Resolves `pass` to a group: a name, http[s]://host[:port][/path] (host
 * may name a group) or unix:/path. ED_OK or ED_ERROR (recorded). */
static int
ed_proxy_resolve_pass(ed_conf_t *cf, ed_http_proxy_conf_t *pcf,
                      ed_http_location_t *loc)
{
    ed_node_t  *node = ed_conf_get(pcf->node, "pass");
    const char *s = pcf->pass.data, *auth, *slash;
    char        addr[320], host[300];
    size_t      alen;
    ed_str_t    name;
    bool        tls = strncmp(s, "https://", 8) == 0;

    if (strncmp(s, "unix:", 5) == 0) {
        pcf->ups = ed_http_upstream_add_url(cf, node, s, "localhost");
        return pcf->ups ? ED_OK : ED_ERROR;
    }
    if (strncmp(s, "http://", 7) != 0 && !tls) {
        if (strchr(s, ':') || strchr(s, '/')) {
            return ed_conf_error(cf, node, "invalid pass \"%s\": expected "
                                 "an upstream name or a URL like "
                                 "http://127.0.0.1:9000", s);
        }
        pcf->ups = ed_http_upstream_find(cf, &pcf->pass);
        if (pcf->ups == NULL) {
            return ed_conf_error(cf, node, "unknown upstream \"%s\"", s);
        }
        return ED_OK;
    }
    auth = s + (tls ? 8 : 7);
    slash = strchr(auth, '/');
    alen = slash ? (size_t)(slash - auth) : strlen(auth);
    if (alen == 0 || alen >= sizeof(host) - 8 || memchr(auth, '?', alen)
        || memchr(auth, '@', alen))
    {
        return ed_conf_error(cf, node, "invalid pass \"%s\": expected "
                             "%s://host[:port][/path]", s,
                             tls ? "https" : "http");
    }
    memcpy(host, auth, alen);
    host[alen] = '\0';
    /* A port is given unless the authority ends in a name or "]". */
    if (strrchr(host, ':') == NULL || host[alen - 1] == ']') {
        snprintf(addr, sizeof(addr), "%s:%s", host, tls ? "443" : "80");
    } else {
        snprintf(addr, sizeof(addr), "%s", host);
    }
    if (slash) {
        /* It goes into the request line as it is, which eddy's own
         * parser (and a strict upstream) must accept. Not quoted: the
         * bytes could split the message. */
        if (!ed_http_path_ok(slash, strlen(slash))) {
            return ed_conf_error(cf, node, "invalid pass: the path may "
                                 "hold only RFC 3986 path characters "
                                 "(letters, digits, \"-._~!$&'()*+,;=:@/\" "
                                 "and %%XX), no query");
        }
        if (loc->kind == ED_HTTP_LOC_REGEX
            || loc->kind == ED_HTTP_LOC_REGEX_CASELESS)
        {
            return ed_conf_error(cf, node, "pass with a path is not "
                                 "allowed in a regex location (the part to "
                                 "replace is unknown)");
        }
        pcf->uri.data = (char *)slash;
        pcf->uri.len = strlen(slash);
        pcf->has_uri = 1;
    }
    /* http://app names the group app when there is one (as nginx). */
    name.data = host;
    name.len = alen;
    pcf->ups = ed_http_upstream_find(cf, &name);
    if (pcf->ups == NULL) {
        pcf->ups = ed_http_upstream_add_url(cf, node, addr, host);
    }
    if (pcf->ups == NULL) {
        return ED_ERROR;
    }
    return tls ? ed_proxy_tls(cf, pcf) : ED_OK;
}

/* Installs the handler in a location with a `proxy` block, resolving
 * `pass`. ED_OK or ED_ERROR (recorded). */
static int
ed_proxy_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_proxy_loc_conf_t *lcf = ed_http_conf_at(loc,
                                                    ed_http_proxy_module);
    ed_http_proxy_conf_t     *pcf = lcf->block;

    if (pcf == NULL || pcf->pass.data == NULL) {
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"proxy\" conflicts with another one");
        return ED_ERROR;
    }
    if (ed_proxy_resolve_pass(cf, pcf, loc) != ED_OK) {
        return ED_ERROR;
    }
    if (pcf->ups->protocol != NULL
        && strcmp(pcf->ups->protocol, "proxy") != 0)
    {
        return ed_conf_error(cf, ed_conf_get(pcf->node, "pass"),
                             "upstream \"%s\" is used by %s; a group serves "
                             "proxy or fastcgi, not both",
                             pcf->ups->name.data, pcf->ups->protocol);
    }
    pcf->ups->protocol = "proxy";
    pcf->cache_conf.buffer_size = pcf->buffer_size;
    pcf->cache_conf.read_timeout = pcf->read_timeout;
    if (pcf->cache_conf.cache_name.data != NULL
        && ed_http_cache_loc_resolve(cf, &pcf->cache_conf, pcf->node, loc)
           != ED_OK)
    {
        return ED_ERROR;
    }
    if (pcf->tls == NULL) {
        static const char *keys[] = { "tls_verify", "tls_ca",
                                      "tls_server_name" };
        ed_node_t         *k;
        size_t             i;

        for (i = 0; i < ed_nelems(keys); i++) {
            k = ed_conf_get(pcf->node, keys[i]);
            if (k != NULL) {
                return ed_conf_error(cf, k, "%s applies to https upstreams "
                                     "only (pass: https://...)", keys[i]);
            }
        }
    }
    loc->handler = ed_http_proxy_handler;
    loc->websocket = pcf->websocket == 1;
    loc->subrequest = 1;
    return ED_OK;
}
