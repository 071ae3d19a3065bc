/* Upstream groups: the module, the `upstreams` key, address resolution,
 * the groups `pass` URLs make, shared memory, $upstream_*. Balancing is
 * in ed_http_upstream_balance.c, connections and their keep-alive pool
 * in ed_http_upstream_pool.c. */
#include "ed_http_upstream.h"
#include "ed_shm.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/un.h>

typedef struct {
    ed_array_t  groups;   /* ed_http_upstream_t *, named and implicit */
} ed_http_upstream_main_conf_t;

/* One `servers` item: an address, or a map with one. */
typedef struct {
    ed_node_t *node;
    ed_str_t   address;
    int        weight;
    int        max_fails;
    ed_msec_t  fail_timeout;
    int        backup;
} ed_http_upstream_item_t;

static const char *ed_ups_set_upstreams(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
static const char *ed_ups_set_hash_key(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static const char *ed_ups_set_expect(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);
static const char *ed_ups_item_address(ed_conf_t *cf, ed_node_t *node,
                                       void *block);
static const char *ed_ups_check_null(ed_conf_t *cf, ed_node_t *node,
                                     void *block);
static const char *ed_ups_check_check(ed_conf_t *cf, ed_node_t *node,
                                      void *block);
static int ed_ups_postconf(ed_conf_t *cf);
static int ed_ups_init_worker(ed_worker_t *w);
static void ed_ups_exit_worker(ed_worker_t *w);

static const ed_conf_enum_t ed_ups_balance_enum[] = {
    { "round_robin", ED_HTTP_BALANCE_ROUND_ROBIN },
    { "least_conn", ED_HTTP_BALANCE_LEAST_CONN },
    { "ip_hash", ED_HTTP_BALANCE_IP_HASH },
    { "hash", ED_HTTP_BALANCE_HASH },
    { "random_two", ED_HTTP_BALANCE_RANDOM_TWO },
    { NULL, 0 }
};

static const ed_conf_bounds_t ed_ups_keepalive_bounds = { 0, 100000 };
static const ed_conf_bounds_t ed_ups_weight_bounds = { 1, 1000 };
static const ed_conf_bounds_t ed_ups_fails_bounds = { 0, 1000 };
static const ed_conf_bounds_t ed_ups_check_bounds = { 1, 1000 };
static const ed_conf_bounds_t ed_ups_interval_bounds = { 10, 86400000 };

#define ED_UPS_IKEY(name, flags, set, field, arg, def)                       \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_upstream_item_t, field), arg, def }

/* The keys of a `servers` item written as a map. */
static const ed_key_t ed_ups_item_keys[] = {
    ED_UPS_IKEY("address", ED_KEY_STR, ed_conf_set_str, address, NULL,
                NULL),
    ED_UPS_IKEY("weight", ED_KEY_INT, ed_conf_set_int, weight,
                &ed_ups_weight_bounds, "1"),
    ED_UPS_IKEY("max_fails", ED_KEY_INT, ed_conf_set_int, max_fails,
                &ed_ups_fails_bounds, "1"),
    ED_UPS_IKEY("fail_timeout", ED_KEY_MSEC, ed_conf_set_msec, fail_timeout,
                NULL, "10s"),
    ED_UPS_IKEY("backup", ED_KEY_INT, ed_conf_set_bool, backup, NULL,
                "false"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_ups_item_block = {
    .name = "servers",
    .keys = ed_ups_item_keys,
    .size = sizeof(ed_http_upstream_item_t),
    .scalar = ed_ups_item_address,
    .expect = "expected an address like 127.0.0.1:9001 or a map with "
              "\"address\"",
    .list = 1,
};

#define ED_UPS_CKEY(name, flags, set, field, arg, def)                       \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_upstream_check_t, field), arg, def }

static const ed_key_t ed_ups_check_keys[] = {
    ED_UPS_CKEY("path", ED_KEY_STR, ed_conf_set_str, path, NULL, "/"),
    ED_UPS_CKEY("interval", ED_KEY_MSEC, ed_conf_set_msec, interval,
                &ed_ups_interval_bounds, "5s"),
    ED_UPS_CKEY("timeout", ED_KEY_MSEC, ed_conf_set_msec, timeout,
                &ed_ups_interval_bounds, "2s"),
    ED_UPS_CKEY("fails", ED_KEY_INT, ed_conf_set_int, fails,
                &ed_ups_check_bounds, "3"),
    ED_UPS_CKEY("passes", ED_KEY_INT, ed_conf_set_int, passes,
                &ed_ups_check_bounds, "2"),
    ED_UPS_CKEY("expect_status", ED_KEY_INT, ed_ups_set_expect, status_min,
                NULL, "200-399"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

/* `health_check:` alone (null) checks with every default. */
static const ed_conf_block_t ed_ups_check_block = {
    .name = "health_check",
    .keys = ed_ups_check_keys,
    .size = sizeof(ed_http_upstream_check_t),
    .scalar = ed_ups_check_null,
    .check = ed_ups_check_check,
    .expect = "expected a mapping for health_check",
};

#define ED_UPS_KEY(name, flags, set, field, arg, def)                        \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_upstream_t, field), arg, def }

/* The keys of one group (config.md, Upstreams). */
static const ed_key_t ed_ups_group_keys[] = {
    ED_UPS_KEY("balance", ED_KEY_INT, ed_conf_set_enum, balance,
               ed_ups_balance_enum, "round_robin"),
    ED_UPS_KEY("hash_key", ED_KEY_PTR, ed_ups_set_hash_key, hash_key, NULL,
               NULL),
    ED_UPS_KEY("keepalive", ED_KEY_INT, ed_conf_set_int, keepalive,
               &ed_ups_keepalive_bounds, "0"),
    ED_UPS_KEY("keepalive_timeout", ED_KEY_MSEC, ed_conf_set_msec,
               keepalive_timeout, NULL, "60s"),
    ED_UPS_KEY("servers", ED_KEY_BLOCK, ed_conf_set_block, items,
               &ed_ups_item_block, NULL),
    ED_UPS_KEY("health_check", ED_KEY_BLOCK, ed_conf_set_block, check,
               &ed_ups_check_block, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

/* What each value of `upstreams` holds, for -T (ed_ups_group applies
 * the keys itself). */
static const ed_conf_block_t ed_ups_group_block = {
    .name = "upstream",
    .keys = ed_ups_group_keys,
    .size = sizeof(ed_http_upstream_t),
    .expect = "expected a mapping of name -> upstream",
};

static const ed_key_t ed_ups_keys[] = {
    { "upstreams", ED_CTX_MAIN, ED_KEY_NONE | ED_KEY_INCLUDE_KEYS,
      ed_ups_set_upstreams, ED_CONF_MAIN, 0, &ed_ups_group_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static int ed_ups_var_addr(ed_http_request_t *r, ed_str_t *out);
static int ed_ups_var_status(ed_http_request_t *r, ed_str_t *out);
static int ed_ups_var_response_time(ed_http_request_t *r, ed_str_t *out);

static const ed_http_variable_t ed_ups_variables[] = {
    { "upstream_addr", ed_ups_var_addr },
    { "upstream_status", ed_ups_var_status },
    { "upstream_response_time", ed_ups_var_response_time },
    { NULL, NULL }
};

ed_module_t ed_http_upstream_module = {
    .name = "http_upstream",
    .keys = ed_ups_keys,
    .conf_size = { sizeof(ed_http_upstream_main_conf_t), 0, 0, 0 },
    .variables = ed_ups_variables,
    .postconf = ed_ups_postconf,
    .init_worker = ed_ups_init_worker,
    .exit_worker = ed_ups_exit_worker,
};

/* The registry of groups of the cycle being loaded. */
static ed_http_upstream_main_conf_t *
ed_ups_main_conf(ed_conf_t *cf)
{
    return cf->cycle->main_conf[ed_http_upstream_module.index];
}

/* Adds a group to the registry. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_ups_register(ed_conf_t *cf, ed_http_upstream_t *ups)
{
    ed_http_upstream_main_conf_t *umcf = ed_ups_main_conf(cf);
    ed_http_upstream_t          **slot;

    if (umcf->groups.elts == NULL
        && ed_array_init(&umcf->groups, cf->pool, 4,
                         sizeof(ed_http_upstream_t *)) != ED_OK)
    {
        return ED_ERROR;
    }
    slot = ed_array_push(&umcf->groups);
    if (slot == NULL) {
        return ED_ERROR;
    }
    *slot = ups;
    return ED_OK;
}

/* Configuration. */

/* A `servers` item written as an address alone. Returns NULL or a
 * message. */
static const char *
ed_ups_item_address(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_upstream_item_t *it = block;

    ed_unused(cf);
    if (node->value.len == 0) {
        return ed_ups_item_block.expect;
    }
    it->address = node->value;
    return NULL;
}

/* `health_check:` with no value: the defaults. Returns NULL or a
 * message. */
static const char *
ed_ups_check_null(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_unused(cf);
    ed_unused(block);
    if (node->value.len != 0 || node->quoted) {
        return ed_ups_check_block.expect;
    }
    return NULL;
}

/* The path goes into a request line as it is; a timeout longer than
 * the interval would overlap the next round. Returns NULL (errors
 * recorded). */
static const char *
ed_ups_check_check(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_upstream_check_t *chk = block;

    if (chk->path.len == 0 || chk->path.data[0] != '/'
        || strpbrk(chk->path.data, " \r\n\t") != NULL)
    {
        ed_conf_error(cf, ed_conf_get(node, "path"),
                      "invalid health_check path: expected a URI "
                      "starting with \"/\" without spaces");
        return NULL;
    }
    if (chk->timeout > chk->interval) {
        chk->timeout = chk->interval;
    }
    return NULL;
}

/* hash_key: a string with variables. Returns NULL or a message. */
static const char *
ed_ups_set_hash_key(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    ed_http_template_t *t;
    const char         *err = NULL;

    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a string with variables, like $request_uri";
    }
    t = ed_http_template_compile(cf, node, &err);
    if (t == NULL) {
        return err;
    }
    *(ed_http_template_t **)((char *)conf + key->offset) = t;
    return NULL;
}

/* expect_status: "200", "200-399". Sets status_min and status_max. */
static const char *
ed_ups_set_expect(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                  void *conf)
{
    ed_http_upstream_check_t *chk = conf;
    const char               *s = node->value.data, *dash;
    int64_t                   lo, hi;

    ed_unused(cf);
    ed_unused(key);
    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a status or a range like 200-399";
    }
    dash = strchr(s, '-');
    if (dash) {
        lo = ed_atoi(s, (size_t)(dash - s));
        hi = ed_atoi(dash + 1, strlen(dash + 1));
    } else {
        lo = hi = ed_atoi(s, node->value.len);
    }
    if (lo < 100 || hi > 599 || lo > hi) {
        return "expected a status or a range like 200-399 (100 to 599)";
    }
    chk->status_min = (int)lo;
    chk->status_max = (int)hi;
    return NULL;
}

/* Text of an address: "1.2.3.4:80", "[::1]:80" or "unix:/path". */
static size_t
ed_ups_addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int  n;

    if (ss->ss_family == AF_UNIX) {
        n = snprintf(buf, size, "unix:%s",
                     ((const struct sockaddr_un *)ss)->sun_path);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
    }
    return n < 0 ? 0 : ed_min((size_t)n, size - 1);
}

/* Appends one server for ss to a. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_ups_push(ed_pool_t *pool, ed_array_t *a, const struct sockaddr_storage *ss,
            socklen_t len, const char *host)
{
    ed_http_upstream_server_t *s;
    char                       text[sizeof(struct sockaddr_un) + 16];
    size_t                     n;

    s = ed_array_push(a);
    if (s == NULL) {
        return ED_ERROR;
    }
    memcpy(&s->addr, ss, len);
    s->addrlen = len;
    s->weight = 1;
    s->max_fails = 1;
    s->fail_timeout = 10000;
    n = ed_ups_addr_text(ss, text, sizeof(text));
    if (ed_str_dup(pool, &s->name, text, n) != ED_OK
        || ed_str_dup(pool, &s->host, host, strlen(host)) != ED_OK)
    {
        return ED_ERROR;
    }
    return ED_OK;
}

/* ED_OK, or ED_ERROR with *err. */
int
ed_http_upstream_resolve(ed_pool_t *pool, const char *text, ed_array_t *a,
                         const char **err)
{
    struct sockaddr_storage  ss;
    struct sockaddr_un      *sun = (struct sockaddr_un *)&ss;
    struct addrinfo          hints, *res, *ai;
    const char              *colon, *hs, *port = "80";
    char                     host[256], portbuf[8];
    size_t                   hl;
    int64_t                  p;
    int                      rc;

    memset(&ss, 0, sizeof(ss));
    if (strncmp(text, "unix:", 5) == 0) {
        if (text[5] != '/' || strlen(text + 5) >= sizeof(sun->sun_path)) {
            *err = "expected an absolute unix socket path that fits "
                   "sun_path";
            return ED_ERROR;
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, text + 5);
        if (ed_ups_push(pool, a, &ss, sizeof(struct sockaddr_un),
                        "localhost") != ED_OK)
        {
            *err = "out of memory";
            return ED_ERROR;
        }
        return ED_OK;
    }
    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || (colon[1] != ':' && colon[1] != '\0')) {
            *err = "expected an address like \"[::1]:8080\"";
            return ED_ERROR;
        }
        hs = text + 1;
        hl = (size_t)(colon - hs);
        if (colon[1] == ':') {
            port = colon + 2;
        }
    } else {
        colon = strrchr(text, ':');
        hs = text;
        hl = colon ? (size_t)(colon - text) : strlen(text);
        if (colon) {
            port = colon + 1;
        }
    }
    if (hl == 0 || hl >= sizeof(host)) {
        *err = "expected host:port, [ipv6]:port or unix:/path";
        return ED_ERROR;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    p = ed_atoi(port, strlen(port));
    if (p < 1 || p > 65535) {
        *err = "invalid port: expected 1-65535";
        return ED_ERROR;
    }
    snprintf(portbuf, sizeof(portbuf), "%d", (int)p);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portbuf, &hints, &res);
    if (rc != 0) {
        *err = gai_strerror(rc);
        return ED_ERROR;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            || ai->ai_addrlen > sizeof(ss))
        {
            continue;
        }
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        if (ed_ups_push(pool, a, &ss, ai->ai_addrlen, text) != ED_OK) {
            freeaddrinfo(res);
            *err = "out of memory";
            return ED_ERROR;
        }
    }
    freeaddrinfo(res);
    if (a->nelts == 0) {
        *err = "the host name has no IPv4 or IPv6 address";
        return ED_ERROR;
    }
    return ED_OK;
}

/* Resolves one `servers` item into a. ED_OK or ED_ERROR (recorded). */
static int
ed_ups_server_item(ed_conf_t *cf, ed_http_upstream_t *ups,
                   const ed_http_upstream_item_t *it, ed_array_t *a)
{
    ed_http_upstream_server_t *s;
    ed_node_t                 *addr = it->node;
    const char                *err;
    size_t                     first = a->nelts, i;

    if (it->node->type == ED_NODE_MAP) {
        addr = ed_conf_get(it->node, "address");
        if (addr == NULL) {
            return ed_conf_error(cf, it->node, "upstream server without "
                                 "\"address\" in upstream \"%s\"",
                                 ups->name.data);
        }
    }
    if (addr->type != ED_NODE_SCALAR) {
        return ed_conf_error(cf, addr, "expected an address");
    }
    if (strstr(addr->value.data, "://") != NULL) {
        return ed_conf_error(cf, addr, "invalid upstream server \"%s\": "
                             "servers are addresses like 127.0.0.1:9001; "
                             "for TLS to them, use pass: https://%s",
                             addr->value.data, ups->name.data);
    }
    if (ed_http_upstream_resolve(cf->pool, addr->value.data, a, &err)
        != ED_OK)
    {
        return ed_conf_error(cf, addr, "invalid upstream server \"%s\": %s",
                             addr->value.data, err);
    }
    for (i = first; i < a->nelts; i++) {
        s = (ed_http_upstream_server_t *)a->elts + i;
        s->weight = it->weight;
        s->max_fails = it->max_fails;
        s->fail_timeout = it->fail_timeout;
        s->backup = it->backup ? 1 : 0;
    }
    return ED_OK;
}

/* Resolves the `servers` of a group. ED_OK or ED_ERROR (recorded). */
static int
ed_ups_servers(ed_conf_t *cf, ed_http_upstream_t *ups)
{
    ed_http_upstream_item_t **items;
    ed_node_t                *node = ed_conf_get(ups->node, "servers");
    ed_array_t                a;
    size_t                    i;
    int                       rc = ED_OK;

    if (node == NULL) {
        return ed_conf_error(cf, ups->node, "upstream \"%s\" has no "
                             "\"servers\"", ups->name.data);
    }
    if (ups->items == NULL) {
        return ED_ERROR; /* reported */
    }
    if (node->type == ED_NODE_SEQ && node->n == 0) {
        return ed_conf_error(cf, node, "upstream \"%s\" has an empty "
                             "\"servers\" list", ups->name.data);
    }
    if (ups->items->nelts == 0) {
        return ED_ERROR; /* every item was invalid: reported */
    }
    if (ed_array_init(&a, cf->pool, ups->items->nelts,
                      sizeof(ed_http_upstream_server_t))
        != ED_OK)
    {
        return ed_conf_error(cf, node, "out of memory");
    }
    items = ups->items->elts;
    for (i = 0; i < ups->items->nelts; i++) {
        if (ed_ups_server_item(cf, ups, items[i], &a) != ED_OK) {
            rc = ED_ERROR;
        }
    }
    ups->servers = a.elts;
    ups->nservers = a.nelts;
    return rc;
}

/* Reads one group map. ED_OK or ED_ERROR (recorded). */
static int
ed_ups_group(ed_conf_t *cf, ed_node_t *name, ed_node_t *map)
{
    ed_http_upstream_t *ups;
    char                what[128];
    int                 rc;

    if (name->value.len == 0) {
        return ed_conf_error(cf, name, "empty upstream name");
    }
    if (strchr(name->value.data, ':') || strchr(name->value.data, '/')) {
        return ed_conf_error(cf, name, "invalid upstream name \"%s\": a "
                             "name has no ':' or '/'", name->value.data);
    }
    if (map->type != ED_NODE_MAP) {
        return ed_conf_error(cf, map, "expected a mapping for upstream "
                             "\"%s\"", name->value.data);
    }
    ups = ed_pcalloc(cf->pool, sizeof(ed_http_upstream_t));
    if (ups == NULL || ed_ups_register(cf, ups) != ED_OK) {
        return ed_conf_error(cf, map, "out of memory");
    }
    ed_conf_init_keys(ed_ups_group_keys, ups);
    ups->name = name->value;
    ups->node = map;
    snprintf(what, sizeof(what), "upstream \"%.100s\"", name->value.data);
    rc = ed_conf_apply_keys(cf, map, ed_ups_group_keys, ups, what);
    if (ed_conf_defaults(cf, ed_ups_group_keys, ED_CONF_UPS, ups) != ED_OK) {
        return ED_ERROR;
    }
    if (ed_ups_servers(cf, ups) != ED_OK) {
        rc = ED_ERROR;
    }
    if (ups->balance == ED_HTTP_BALANCE_HASH && ups->hash_key == NULL) {
        return ed_conf_error(cf, ed_conf_get(map, "balance"),
                             "balance \"hash\" needs a \"hash_key\" in "
                             "upstream \"%s\"", ups->name.data);
    }
    if (ups->balance != ED_HTTP_BALANCE_HASH && ups->hash_key != NULL) {
        return ed_conf_error(cf, ed_conf_get(map, "hash_key"),
                             "\"hash_key\" is used only with balance: "
                             "hash in upstream \"%s\"", ups->name.data);
    }
    return rc;
}

/* upstreams: {name: group}. Errors are recorded per group; returns
 * NULL or a message for the whole value. */
static const char *
ed_ups_set_upstreams(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                     void *conf)
{
    size_t i, j;

    ed_unused(key);
    ed_unused(conf);
    if (node->type == ED_NODE_SCALAR && node->value.len == 0
        && !node->quoted)
    {
        return NULL;
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of name -> upstream";
    }
    for (i = 0; i < node->n; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(node->items[2 * j]->value.data,
                       node->items[2 * i]->value.data) == 0)
            {
                break;
            }
        }
        if (j < i) {
            ed_conf_error(cf, node->items[2 * i], "duplicate upstream "
                          "\"%s\"", node->items[2 * i]->value.data);
            continue;
        }
        ed_ups_group(cf, node->items[2 * i], node->items[2 * i + 1]);
    }
    return NULL;
}

/* Returns the named (not implicit) group, or NULL. */
ed_http_upstream_t *
ed_http_upstream_find(ed_conf_t *cf, const ed_str_t *name)
{
    ed_http_upstream_main_conf_t *umcf = ed_ups_main_conf(cf);
    ed_http_upstream_t          **g = umcf->groups.elts;
    size_t                        i;

    for (i = 0; i < umcf->groups.nelts; i++) {
        if (!g[i]->implicit && ed_str_eq(&g[i]->name, name)) {
            return g[i];
        }
    }
    return NULL;
}

/* Returns the new group, or NULL after recording an error. */
ed_http_upstream_t *
ed_http_upstream_add_url(ed_conf_t *cf, ed_node_t *node, const char *addr,
                         const char *host)
{
    ed_http_upstream_t        *ups;
    ed_http_upstream_server_t *s;
    ed_array_t                 a;
    const char                *err;
    size_t                     i;

    ups = ed_pcalloc(cf->pool, sizeof(ed_http_upstream_t));
    if (ups == NULL
        || ed_array_init(&a, cf->pool, 2, sizeof(ed_http_upstream_server_t))
               != ED_OK)
    {
        ed_conf_error(cf, node, "out of memory");
        return NULL;
    }
    if (ed_http_upstream_resolve(cf->pool, addr, &a, &err) != ED_OK) {
        ed_conf_error(cf, node, "invalid proxy address \"%s\": %s", addr,
                      err);
        return NULL;
    }
    s = a.elts;
    for (i = 0; i < a.nelts; i++) {
        if (s[i].addr.ss_family != AF_UNIX
            && ed_str_dup(cf->pool, &s[i].host, host, strlen(host))
                   != ED_OK)
        {
            ed_conf_error(cf, node, "out of memory");
            return NULL;
        }
    }
    ups->implicit = 1;
    ups->node = node;
    ups->keepalive_timeout = 60000;
    ups->servers = a.elts;
    ups->nservers = a.nelts;
    if (ed_str_dup(cf->pool, &ups->name, addr, strlen(addr)) != ED_OK
        || ed_ups_register(cf, ups) != ED_OK)
    {
        ed_conf_error(cf, node, "out of memory");
        return NULL;
    }
    return ups;
}

/* After every key is applied (and proxies made their URL groups in
 * attach): derived state and the shared memory of every server. */
static int
ed_ups_postconf(ed_conf_t *cf)
{
    ed_http_upstream_main_conf_t *umcf = ed_ups_main_conf(cf);
    ed_http_upstream_t          **g = umcf->groups.elts;
    ed_http_upstream_shm_t       *shm;
    size_t                        i, j, total = 0;

    for (i = 0; i < umcf->groups.nelts; i++) {
        if (ed_http_upstream_init(cf->pool, g[i]) != ED_OK) {
            return ED_ERROR;
        }
        total += g[i]->nservers;
    }
    if (total == 0) {
        return ED_OK;
    }
    shm = ed_shm_alloc(cf->pool, total * sizeof(ed_http_upstream_shm_t));
    if (shm == NULL) {
        return ed_conf_error(cf, NULL, "shared memory for %zu upstream "
                             "servers failed: %s", total, strerror(errno));
    }
    for (i = 0; i < umcf->groups.nelts; i++) {
        for (j = 0; j < g[i]->nservers; j++) {
            g[i]->servers[j].shm = shm++;
        }
    }
    return ED_OK;
}

/* Seeds the random generator and starts the health checks. ED_OK or
 * ED_ERROR. */
static int
ed_ups_init_worker(ed_worker_t *w)
{
    ed_http_upstream_main_conf_t *umcf;

    ed_http_upstream_seed(((uint64_t)getpid() << 32)
                          ^ (uint64_t)ed_current_msec
                          ^ (uint64_t)(uintptr_t)w);
    umcf = w->cycle->main_conf[ed_http_upstream_module.index];
    if (umcf->groups.nelts == 0) {
        return ED_OK;
    }
    return ed_http_upstream_check_start(w, &umcf->groups);
}

static void
ed_ups_exit_worker(ed_worker_t *w)
{
    ed_http_upstream_check_stop(w);
}

/* Variables. */

enum { ED_UPS_VAR_ADDR, ED_UPS_VAR_STATUS, ED_UPS_VAR_TIME };

/* One value per attempt, joined by ", ". ED_OK, ED_DECLINED (no upstream
 * tried), ED_ERROR. */
static int
ed_ups_variable(ed_http_request_t *r, int which, ed_str_t *out)
{
    ed_http_upstream_state_t *st = r->upstream;
    ed_http_upstream_try_t   *t;
    size_t                    i, len = 0;
    char                     *p;

    if (st == NULL || st->ntries == 0) {
        return ED_DECLINED;
    }
    for (i = 0; i < st->ntries; i++) {
        len += st->tries[i].addr.len + 24;
    }
    p = ed_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    for (i = 0; i < st->ntries; i++) {
        t = &st->tries[i];
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }
        switch (which) {
        case ED_UPS_VAR_ADDR:
            memcpy(p, t->addr.data, t->addr.len);
            p += t->addr.len;
            break;
        case ED_UPS_VAR_STATUS:
            p = ed_sprint_u64(p, (uint64_t)(t->status ? t->status : 502));
            break;
        default:
            p += sprintf(p, "%lld.%03lld", (long long)(t->msec / 1000),
                         (long long)(t->msec % 1000));
            break;
        }
    }
    *p = '\0';
    out->len = (size_t)(p - out->data);
    return ED_OK;
}

static int
ed_ups_var_addr(ed_http_request_t *r, ed_str_t *out)
{
    return ed_ups_variable(r, ED_UPS_VAR_ADDR, out);
}

static int
ed_ups_var_status(ed_http_request_t *r, ed_str_t *out)
{
    return ed_ups_variable(r, ED_UPS_VAR_STATUS, out);
}

static int
ed_ups_var_response_time(ed_http_request_t *r, ed_str_t *out)
{
    return ed_ups_variable(r, ED_UPS_VAR_TIME, out);
}

/* next_upstream, for proxy and fastcgi: see the header. */
const char *
ed_http_upstream_set_next(ed_conf_t *cf, const ed_key_t *key,
                          ed_node_t *node, void *conf)
{
    static const struct {
        const char *name;
        int         bit;
    } names[] = {
        { "error", ED_HTTP_UPS_NEXT_ERROR },
        { "timeout", ED_HTTP_UPS_NEXT_TIMEOUT },
        { "502", ED_HTTP_UPS_NEXT_502 }, { "503", ED_HTTP_UPS_NEXT_503 },
        { "504", ED_HTTP_UPS_NEXT_504 }, { "http_502", ED_HTTP_UPS_NEXT_502 },
        { "http_503", ED_HTTP_UPS_NEXT_503 }, { "http_504", ED_HTTP_UPS_NEXT_504 },
        { "off", 0 },
    };
    ed_node_t  *item;
    const char *p, *e;
    size_t      i, j, n, len;
    int         mask = 0;

    ed_unused(cf);
    if (node->type == ED_NODE_MAP) {
        return "expected a list of error, timeout, 502, 503, 504 or off";
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        if (item->type != ED_NODE_SCALAR) {
            return "expected a list of error, timeout, 502, 503, 504 or off";
        }
        for (p = item->value.data; *p; p = *e ? e + 1 : e) {
            while (*p == ' ' || *p == ',') {
                p++;
            }
            for (e = p; *e && *e != ',' && *e != ' '; e++) {
                /* the word */
            }
            len = (size_t)(e - p);
            if (len == 0) {
                break;
            }
            for (j = 0; j < ed_nelems(names); j++) {
                if (strlen(names[j].name) == len
                    && memcmp(names[j].name, p, len) == 0)
                {
                    break;
                }
            }
            if (j == ed_nelems(names)) {
                return "expected error, timeout, 502, 503, 504 or off";
            }
            mask |= names[j].bit;
        }
    }
    *(int *)((char *)conf + key->offset) = mask;
    return NULL;
}
